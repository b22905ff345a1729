/*
 * Fuzz target: XEdDSA verification and the GF(2^255-19) conversion on
 * arbitrary keys, signatures and messages.
 * Input: u (32 bytes) || signature (64 bytes) || message (rest). Shorter
 * inputs are zero-padded.
 * Invariants checked (abort on violation):
 *  - verification never crashes and returns SOTTO_OK or
 *    SOTTO_ERR_INVALID_SIGNATURE; an accepted signature has sig[63] & 0x60
 *    clear;
 *  - for u != -1, the Montgomery -> Edwards -> Montgomery round trip gives
 *    the canonical u back;
 *  - a signature made with the first 32 bytes as a private key (with a
 *    deterministic RNG) verifies under its public key, and not under the
 *    message with one bit flipped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/fe25519.h"
#include "sotto/keys.h"

static void fixed_rng(void *ctx, void *p, size_t n)
{
    (void)ctx;
    memset(p, 0x5a, n);
}

static void canonical(uint8_t out[32], const uint8_t in[32])
{
    /* Independent byte-wise reduction of u (bit 255 dropped) below p. */
    uint8_t t[32];
    uint8_t p[32];
    int i;
    int borrow = 0;

    memcpy(t, in, 32);
    t[31] &= 0x7F;
    /* p = 2^255 - 19 */
    memset(p, 0xFF, 32);
    p[0] = 0xED;
    p[31] = 0x7F;
    /* t < 2^255 < 2p: subtract p once if t >= p. */
    for (i = 31; i >= 0; i--) {
        if (t[i] != p[i])
            break;
    }
    if (i < 0 || t[i] > p[i]) {
        for (i = 0; i < 32; i++) {
            int d = t[i] - p[i] - borrow;
            borrow = d < 0;
            t[i] = (uint8_t)d;
        }
    }
    memcpy(out, t, 32);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    uint8_t head[96];
    const uint8_t *msg = size > 96 ? data + 96 : NULL;
    size_t msg_len = size > 96 ? size - 96 : 0;
    sotto_public_key pub;
    int rc;

    if (!inited) {
        if (sotto_init() != SOTTO_OK)
            abort();
        inited = 1;
    }
    memset(head, 0, sizeof head);
    memcpy(head, data, size < sizeof head ? size : sizeof head);

    pub.bytes[0] = SOTTO_KEY_TYPE_DJB;
    memcpy(pub.bytes + 1, head, 32);
    rc = sotto_xeddsa_verify(&pub, msg, msg_len, head + 32);
    if (rc != SOTTO_OK && rc != SOTTO_ERR_INVALID_SIGNATURE)
        abort();
    if (rc == SOTTO_OK && (head[32 + 63] & 0x60) != 0)
        abort();

    /* Round trip of the coordinate maps. */
    {
        uint8_t y[32], u2[32], cu[32], minus1[32];
        canonical(cu, head);
        memset(minus1, 0xFF, 32);
        minus1[0] = 0xEC;
        minus1[31] = 0x7F;
        if (memcmp(cu, minus1, 32) != 0) {
            sotto_fe_mont_u_to_ed_y(y, head);
            sotto_fe_ed_y_to_mont_u(u2, y);
            if (memcmp(u2, cu, 32) != 0)
                abort();
        }
    }

    /* Sign with the input as a private key, verify. */
    {
        sotto_key_pair kp;
        uint8_t sig[64];
        if (sotto_key_pair_from_private(&kp, head) != SOTTO_OK)
            abort();
        sotto_test_set_random(fixed_rng, NULL);
        rc = sotto_xeddsa_sign(sig, kp.priv, msg, msg_len);
        sotto_test_set_random(NULL, NULL);
        if (rc != SOTTO_OK)
            abort();
        if (sotto_xeddsa_verify(&kp.pub, msg, msg_len, sig) != SOTTO_OK)
            abort();
        if (msg_len > 0) {
            uint8_t *m2 = malloc(msg_len);
            if (m2 == NULL)
                abort();
            memcpy(m2, msg, msg_len);
            m2[msg_len - 1] ^= 1;
            if (sotto_xeddsa_verify(&kp.pub, m2, msg_len, sig) != SOTTO_ERR_INVALID_SIGNATURE)
                abort();
            free(m2);
        }
        sodium_memzero(&kp, sizeof kp);
    }
    return 0;
}
