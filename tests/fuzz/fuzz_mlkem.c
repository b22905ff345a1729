/*
 * Fuzz target: ML-KEM-768/1024 and Kyber-1024 (sotto/kem.h) key parsing,
 * encapsulation and decapsulation on hostile inputs.
 * Input: mode (1) || alg (1) || payload. alg % 3 picks ML-KEM-768,
 * ML-KEM-1024 or Kyber-1024; mode % 4:
 *  0: payload is an encapsulation key;
 *  1: payload is a ciphertext for the harness's own key pair;
 *  2: payload is a list of (position (2, big endian), xor (1)) mutations
 *     applied to the harness's own ciphertext (near-valid ciphertexts);
 *  3: the same mutations applied to the harness's decapsulation key.
 * Invariants checked (abort on violation):
 *  - sotto_kem_check_public_key accepts exactly the keys of the right
 *    length whose every 12-bit coefficient is below q (checked here by a
 *    separate decoder), and encapsulation succeeds exactly then, with a
 *    shared secret that is all zero on error;
 *  - decapsulation of a ciphertext of the wrong length is
 *    SOTTO_ERR_INVALID_MESSAGE with a zero secret; of the right length it
 *    succeeds, giving the harness's secret if the ciphertext is the
 *    harness's, else exactly the implicit-rejection secret (FIPS 203
 *    J(z || c); round 3 SHAKE-256(z || SHA3-256(c))), recomputed here;
 *  - a mutated decapsulation key is accepted by decapsulation exactly when
 *    sotto_kem_check_secret_key accepts it (an unchanged one gives the
 *    harness's secret).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "sotto/kem.h"
#include "sotto/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct harness {
    sotto_kem_alg alg;
    size_t ekl, dkl, ctl;
    uint8_t ek[SOTTO_KEM_MAX_PUBLIC_KEY_BYTES], dk[SOTTO_KEM_MAX_SECRET_KEY_BYTES];
    uint8_t ct[SOTTO_KEM_MAX_CIPHERTEXT_BYTES], ss[SOTTO_KEM_SHARED_BYTES];
} harness;

static harness H[3];

static void harness_init(void)
{
    static const sotto_kem_alg algs[3] = {SOTTO_KEM_MLKEM768, SOTTO_KEM_MLKEM1024,
                                          SOTTO_KEM_KYBER1024};
    uint8_t seed[SOTTO_KEM_SEED_BYTES], m[SOTTO_KEM_MSG_BYTES];

    if (sotto_init() != SOTTO_OK)
        abort();
    for (int a = 0; a < 3; a++) {
        harness *h = &H[a];
        memset(seed, 0x40 + a, sizeof seed);
        memset(m, 0x60 + a, sizeof m);
        h->alg = algs[a];
        h->ekl = sotto_kem_public_key_bytes(h->alg);
        h->dkl = sotto_kem_secret_key_bytes(h->alg);
        h->ctl = sotto_kem_ciphertext_bytes(h->alg);
        if (sotto_kem_keygen_from_seed(h->alg, h->ek, sizeof h->ek, h->dk, sizeof h->dk, seed) !=
                SOTTO_OK ||
            sotto_kem_encaps_deterministic(h->alg, h->ct, sizeof h->ct, h->ss, h->ek, h->ekl, m) !=
                SOTTO_OK)
            abort();
    }
}

/* 1 if ek has the right length and every coefficient < 3329. */
static int ek_well_formed(const harness *h, const uint8_t *ek, size_t len)
{
    if (len != h->ekl)
        return 0;
    for (size_t i = 0; i + 3 <= len - 32; i += 3) {
        unsigned c0 = ek[i] | ((ek[i + 1] & 0x0fu) << 8);
        unsigned c1 = (ek[i + 1] >> 4) | ((unsigned)ek[i + 2] << 4);
        if (c0 >= 3329 || c1 >= 3329)
            return 0;
    }
    return 1;
}

static void rejection_secret(const harness *h, const uint8_t *dk, const uint8_t *ct,
                             uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t hc[32];
    unsigned int l = 0;
    int ok;

    if (c == NULL)
        abort();
    ok = EVP_DigestInit_ex(c, EVP_shake256(), NULL) == 1 &&
         EVP_DigestUpdate(c, dk + h->dkl - 32, 32) == 1;
    if (h->alg == SOTTO_KEM_KYBER1024) {
        ok = ok && EVP_Digest(ct, h->ctl, hc, &l, EVP_sha3_256(), NULL) == 1 && l == 32 &&
             EVP_DigestUpdate(c, hc, 32) == 1;
    } else {
        ok = ok && EVP_DigestUpdate(c, ct, h->ctl) == 1;
    }
    ok = ok && EVP_DigestFinalXOF(c, out, 32) == 1;
    EVP_MD_CTX_free(c);
    if (!ok)
        abort();
}

static void check_decaps(const harness *h, const uint8_t *ct, size_t len)
{
    uint8_t ss[32], rej[32];
    int rc = sotto_kem_decaps(h->alg, ss, ct, len, h->dk, h->dkl);

    if (len != h->ctl) {
        if (rc != SOTTO_ERR_INVALID_MESSAGE || !sodium_is_zero(ss, 32))
            abort();
        return;
    }
    if (rc != SOTTO_OK)
        abort();
    if (memcmp(ct, h->ct, h->ctl) == 0) {
        if (memcmp(ss, h->ss, 32) != 0)
            abort();
        return;
    }
    rejection_secret(h, h->dk, ct, rej);
    if (memcmp(ss, rej, 32) != 0 || memcmp(ss, h->ss, 32) == 0)
        abort();
}

static void apply_mutations(uint8_t *buf, size_t n, const uint8_t *p, size_t plen)
{
    for (size_t i = 0; i + 3 <= plen; i += 3) {
        size_t pos = ((size_t)p[i] << 8 | p[i + 1]) % n;
        buf[pos] ^= p[i + 2];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    const uint8_t *p = size > 2 ? data + 2 : NULL;
    size_t plen = size > 2 ? size - 2 : 0;
    const harness *h;

    if (!inited) {
        harness_init();
        inited = 1;
    }
    if (size < 2)
        return 0;
    h = &H[data[1] % 3];

    switch (data[0] % 4) {
    case 0: {
        uint8_t ct[SOTTO_KEM_MAX_CIPHERTEXT_BYTES], ss[32], m[32] = {7};
        int wf = ek_well_formed(h, p, plen);
        int rc1 = sotto_kem_check_public_key(h->alg, p ? p : data, plen);
        int rc2 = sotto_kem_encaps_deterministic(h->alg, ct, sizeof ct, ss, p ? p : data, plen, m);
        if ((rc1 == SOTTO_OK) != wf || rc1 != rc2)
            abort();
        if (rc1 != SOTTO_OK && (rc1 != SOTTO_ERR_INVALID_KEY || !sodium_is_zero(ss, 32)))
            abort();
        break;
    }
    case 1:
        check_decaps(h, p ? p : data, plen);
        break;
    case 2: {
        uint8_t ct[SOTTO_KEM_MAX_CIPHERTEXT_BYTES];
        memcpy(ct, h->ct, h->ctl);
        apply_mutations(ct, h->ctl, p, plen);
        check_decaps(h, ct, h->ctl);
        break;
    }
    default: {
        uint8_t dk[SOTTO_KEM_MAX_SECRET_KEY_BYTES], ss[32];
        memcpy(dk, h->dk, h->dkl);
        apply_mutations(dk, h->dkl, p, plen);
        int ok = sotto_kem_check_secret_key(h->alg, dk, h->dkl) == SOTTO_OK;
        int rc = sotto_kem_decaps(h->alg, ss, h->ct, h->ctl, dk, h->dkl);
        if (ok != (rc == SOTTO_OK))
            abort();
        if (!ok && (rc != SOTTO_ERR_INVALID_KEY || !sodium_is_zero(ss, 32)))
            abort();
        if (memcmp(dk, h->dk, h->dkl) == 0 && (!ok || memcmp(ss, h->ss, 32) != 0))
            abort();
        break;
    }
    }
    return 0;
}
