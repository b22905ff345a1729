/*
 * bench/vrf_bench.c -- sotto-bench-vrf: cost of the ECVRF of sotto/vrf.h
 * (RFC 9381, ECVRF-EDWARDS25519-SHA512-TAI) beside the libsodium
 * primitives it is built from, in one run.
 *
 * Rows (microseconds per operation, CPU time of this process,
 * CLOCK_PROCESS_CPUTIME_ID, best of 3 runs):
 *   vrf_prove          sotto_vrf_prove of a 16-byte alpha
 *   vrf_verify         sotto_vrf_verify of that proof
 *   vrf_proof_to_hash  sotto_vrf_proof_to_hash
 *   ed25519_sign       libsodium crypto_sign_detached (reference)
 *   ed25519_verify     libsodium crypto_sign_verify_detached (reference)
 *   scalarmult         libsodium crypto_scalarmult_ed25519_noclamp
 *   scalarmult_base    libsodium crypto_scalarmult_ed25519_base_noclamp
 * Output: one line per row, `bench <row> us_per_op=<x> ops=<n>`.
 *
 * Usage: sotto-bench-vrf [ITERATIONS]   (default 10000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/vrf.h"

#define RUNS 3

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

enum row { PROVE, VERIFY, TO_HASH, SIGN, SIGN_VERIFY, SMULT, SMULT_BASE, NROWS };
static const char *const NAMES[NROWS] = {
    "vrf_prove",      "vrf_verify", "vrf_proof_to_hash", "ed25519_sign",
    "ed25519_verify", "scalarmult", "scalarmult_base",
};

static sotto_vrf_key_pair g_kp;
static uint8_t g_alpha[16], g_pi[80], g_pi_new[80], g_beta[64];
static uint8_t g_sign_sk[64], g_sign_pk[32], g_sig[64], g_sig_new[64];
static uint8_t g_scalar[32], g_point[32], g_out[32];
static volatile unsigned g_sink;

static void op(enum row r, unsigned long i)
{
    g_alpha[0] = (uint8_t)i;
    g_alpha[1] = (uint8_t)(i >> 8);
    switch (r) {
    case PROVE:
        if (sotto_vrf_prove(g_pi_new, &g_kp, g_alpha, sizeof g_alpha) != SOTTO_OK)
            abort();
        break;
    case VERIFY:
        g_alpha[0] = g_alpha[1] = 0; /* the proof made in main() */
        if (sotto_vrf_verify(g_beta, g_kp.pk, g_alpha, sizeof g_alpha, g_pi) != SOTTO_OK)
            abort();
        break;
    case TO_HASH:
        if (sotto_vrf_proof_to_hash(g_beta, g_pi) != SOTTO_OK)
            abort();
        break;
    case SIGN:
        crypto_sign_detached(g_sig_new, NULL, g_alpha, sizeof g_alpha, g_sign_sk);
        break;
    case SIGN_VERIFY:
        g_alpha[0] = g_alpha[1] = 0;
        if (crypto_sign_verify_detached(g_sig, g_alpha, sizeof g_alpha, g_sign_pk) != 0)
            abort();
        break;
    case SMULT:
        if (crypto_scalarmult_ed25519_noclamp(g_out, g_scalar, g_point) != 0)
            abort();
        break;
    case SMULT_BASE:
        if (crypto_scalarmult_ed25519_base_noclamp(g_out, g_scalar) != 0)
            abort();
        break;
    default:
        abort();
    }
    g_sink += g_beta[0] ^ g_out[0] ^ g_pi_new[0] ^ g_sig_new[0];
}

int main(int argc, char **argv)
{
    unsigned long n = 10000;
    uint8_t wide[64];

    if (argc > 1) {
        char *end;
        n = strtoul(argv[1], &end, 10);
        if (*end != '\0' || n == 0) {
            fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
            return 2;
        }
    }
    if (sotto_init() != SOTTO_OK || sotto_vrf_key_pair_generate(&g_kp) != SOTTO_OK)
        return 1;
    randombytes_buf(g_alpha, sizeof g_alpha);
    g_alpha[0] = g_alpha[1] = 0;
    if (sotto_vrf_prove(g_pi, &g_kp, g_alpha, sizeof g_alpha) != SOTTO_OK)
        return 1;
    crypto_sign_keypair(g_sign_pk, g_sign_sk);
    crypto_sign_detached(g_sig, NULL, g_alpha, sizeof g_alpha, g_sign_sk);
    randombytes_buf(wide, sizeof wide);
    crypto_core_ed25519_scalar_reduce(g_scalar, wide);
    if (crypto_scalarmult_ed25519_base_noclamp(g_point, g_scalar) != 0)
        return 1;

    for (int r = 0; r < NROWS; r++) {
        double best = 0;
        for (int run = 0; run < RUNS; run++) {
            double t0 = now_us();
            for (unsigned long i = 0; i < n; i++)
                op((enum row)r, i);
            double us = (now_us() - t0) / (double)n;
            if (run == 0 || us < best)
                best = us;
        }
        printf("bench %s us_per_op=%.2f ops=%lu\n", NAMES[r], best, n);
    }
    sotto_vrf_key_pair_wipe(&g_kp);
    sodium_memzero(g_sign_sk, sizeof g_sign_sk);
    return 0;
}
