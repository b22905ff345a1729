/*
 * bench/kt_bench.c -- sotto-bench-kt: the key-transparency directory and
 * log (sotto/prefix_tree.h, sotto/merkle.h) at 10^4, 10^5 and 10^6
 * entries, beside the cost of the primitive (one SHA-256 of a node).
 *
 * Per size: in-memory build (random 32-byte indices and values, as VRF
 * outputs and commitments are), memory held, then over 1,000 present and
 * 1,000 absent indices: encoded proof size (mean, max) and verify time.
 * Log: a 2^20-leaf log, inclusion and consistency proof verify time.
 * Times are CPU time of this process (CLOCK_PROCESS_CPUTIME_ID), so other
 * work on the machine barely skews them.
 *
 * Output: `bench kt_<what> <key>=<value> ...` lines.
 * Usage: sotto-bench-kt [--quick]   (--quick: 10^4 and 10^5 only)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/merkle.h"
#include "sotto/prefix_tree.h"

#define SAMPLES 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "sotto-bench-kt: %s failed\n", what);
    exit(1);
}

static void det(void *p, size_t n, uint8_t tag)
{
    uint8_t seed[randombytes_SEEDBYTES] = {tag, 0x4b};
    randombytes_buf_deterministic(p, n, seed);
}

static void bench_tree(size_t n)
{
    uint8_t(*idx)[32] = malloc(n * 32), (*val)[32] = malloc(n * 32);
    uint8_t(*absent)[32] = malloc(SAMPLES * 32);
    sotto_pt_proof *proofs = malloc(2 * SAMPLES * sizeof *proofs);
    uint8_t root[32], enc[SOTTO_PT_PROOF_MAX_BYTES];
    sotto_prefix_tree *t;
    size_t bytes[2] = {0, 0}, maxb[2] = {0, 0}, len, sib = 0;
    double t0, t_build, t_ver[2];
    int reps = 20;

    if (idx == NULL || val == NULL || absent == NULL || proofs == NULL)
        die("malloc");
    det(idx, n * 32, 1);
    det(val, n * 32, 2);
    det(absent, SAMPLES * 32, 3);
    if (sotto_prefix_tree_new(&t) != SOTTO_OK)
        die("new");
    t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        if (sotto_prefix_tree_set(t, idx[i], val[i]) != SOTTO_OK)
            die("set");
    }
    t_build = now_s() - t0;
    if (sotto_prefix_tree_root(t, root) != SOTTO_OK)
        die("root");
    for (int k = 0; k < 2; k++) {
        for (size_t s = 0; s < SAMPLES; s++) {
            const uint8_t *ix = k == 0 ? idx[(s * 7919) % n] : absent[s];
            sotto_pt_proof *p = &proofs[k * SAMPLES + s];
            if (sotto_prefix_tree_prove(t, ix, p) != SOTTO_OK ||
                sotto_pt_proof_encode(p, enc, sizeof enc, &len) != SOTTO_OK)
                die("prove");
            bytes[k] += len;
            if (len > maxb[k])
                maxb[k] = len;
            if (k == 0)
                sib += p->n_siblings;
        }
        t0 = now_s();
        for (int r = 0; r < reps; r++) {
            for (size_t s = 0; s < SAMPLES; s++) {
                const uint8_t *ix = k == 0 ? idx[(s * 7919) % n] : absent[s];
                const uint8_t *v = k == 0 ? val[(s * 7919) % n] : NULL;
                if (sotto_pt_verify(root, ix, v, &proofs[k * SAMPLES + s]) != SOTTO_OK)
                    die("verify");
            }
        }
        t_ver[k] = (now_s() - t0) / (reps * SAMPLES);
    }
    printf("bench kt_prefix_tree entries=%zu build_s=%.2f inserts_per_s=%.0f memory_mib=%.1f "
           "siblings_mean=%.1f\n",
           n, t_build, (double)n / t_build, (double)sotto_prefix_tree_memory(t) / (1 << 20),
           (double)sib / SAMPLES);
    printf("bench kt_prefix_proof entries=%zu kind=present bytes_mean=%.0f bytes_max=%zu "
           "verify_us=%.2f\n",
           n, (double)bytes[0] / SAMPLES, maxb[0], t_ver[0] * 1e6);
    printf("bench kt_prefix_proof entries=%zu kind=absent bytes_mean=%.0f bytes_max=%zu "
           "verify_us=%.2f\n",
           n, (double)bytes[1] / SAMPLES, maxb[1], t_ver[1] * 1e6);
    fflush(stdout);
    sotto_prefix_tree_free(t);
    free(idx);
    free(val);
    free(absent);
    free(proofs);
}

static void bench_log(void)
{
    const uint64_t n = UINT64_C(1) << 20;
    uint8_t(*leaves)[32] = malloc(n * 32);
    uint8_t root[32], root1[32], path[SOTTO_MERKLE_MAX_PROOF][32];
    uint8_t cpath[SOTTO_MERKLE_MAX_PROOF][32];
    size_t len, clen;
    const uint64_t index = 123457, size1 = 777777;
    const int reps = 100000;
    double t0, t_inc, t_con;

    if (leaves == NULL)
        die("malloc");
    det(leaves, n * 32, 4);
    if (sotto_merkle_root((const uint8_t(*)[32])leaves, n, root) != SOTTO_OK ||
        sotto_merkle_root((const uint8_t(*)[32])leaves, size1, root1) != SOTTO_OK ||
        sotto_merkle_prove_inclusion((const uint8_t(*)[32])leaves, n, index, path, &len) !=
            SOTTO_OK ||
        sotto_merkle_prove_consistency((const uint8_t(*)[32])leaves, n, size1, cpath, &clen) !=
            SOTTO_OK)
        die("log proofs");
    t0 = now_s();
    for (int r = 0; r < reps; r++) {
        if (sotto_merkle_verify_inclusion(index, n, leaves[index], (const uint8_t(*)[32])path, len,
                                          root) != SOTTO_OK)
            die("verify inclusion");
    }
    t_inc = (now_s() - t0) / reps;
    t0 = now_s();
    for (int r = 0; r < reps; r++) {
        if (sotto_merkle_verify_consistency(size1, n, root1, root, (const uint8_t(*)[32])cpath,
                                            clen) != SOTTO_OK)
            die("verify consistency");
    }
    t_con = (now_s() - t0) / reps;
    printf("bench kt_log_inclusion size=%llu hashes=%zu bytes=%zu verify_us=%.2f\n",
           (unsigned long long)n, len, 1 + 32 * len, t_inc * 1e6);
    printf("bench kt_log_consistency size1=%llu size2=%llu hashes=%zu bytes=%zu verify_us=%.2f\n",
           (unsigned long long)size1, (unsigned long long)n, clen, 1 + 32 * clen, t_con * 1e6);
    free(leaves);
}

static void bench_primitive(void)
{
    uint8_t buf[65] = {0x11}, out[32];
    const int reps = 1000000;
    double t0 = now_s();

    for (int r = 0; r < reps; r++) {
        crypto_hash_sha256(out, buf, sizeof buf);
        buf[1] = out[0];
    }
    printf("bench kt_primitive sha256_65_bytes_us=%.3f\n", (now_s() - t0) / reps * 1e6);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;

    if (sotto_init() != SOTTO_OK)
        die("sotto_init");
    bench_primitive();
    bench_tree(10000);
    bench_tree(100000);
    if (!quick)
        bench_tree(1000000);
    bench_log();
    return 0;
}
