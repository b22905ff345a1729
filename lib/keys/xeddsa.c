/*
 * lib/keys/xeddsa.c -- Signal's Curve25519 signatures ("XEdDSA" with the
 * Edwards sign bit stored in the signature), spec signal-protocol.md 3.3
 * and the libsodium recipe of section 9.
 *
 * Signing uses the clamped Montgomery private key a directly as the Ed25519
 * scalar; A = a.B gives the sign bit that travels in sig[63] bit 7.
 * Verification maps the Montgomery u to the Edwards y with our own field
 * arithmetic (crypto/fe25519.c), puts the sign bit from the signature into
 * the encoded point and runs libsodium's standard Ed25519 verification.
 */
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/fe25519.h"
#include "keys/xeddsa.h"
#include "sotto/keys.h"

int sotto_xeddsa_sign(uint8_t sig[SOTTO_SIGNATURE_BYTES],
                      const uint8_t priv[SOTTO_PRIVATE_KEY_BYTES], const uint8_t *msg,
                      size_t msg_len)
{
    static const uint8_t prefix[32] = {
        0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    };
    crypto_hash_sha512_state hs;
    uint8_t wide[64];
    uint8_t k[32]; /* clamped private key, unreduced (hashed into r) */
    uint8_t a[32]; /* private scalar reduced mod L */
    uint8_t A[32]; /* Edwards public key */
    uint8_t r[32]; /* nonce scalar */
    uint8_t R[32];
    uint8_t h[32];
    uint8_t S[32];
    uint8_t Z[64];
    uint8_t sign_bit;
    int rc = SOTTO_ERR_CRYPTO;

    if (sig == NULL || priv == NULL || (msg == NULL && msg_len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;

    /*
     * Clamp a copy: a no-op for every key this library (or libsignal)
     * generates, and it keeps A consistent with the X25519 public key if a
     * caller passes unclamped bytes. a = k mod L gives the same point as
     * the clamped scalar, since L is the order of B.
     */
    memcpy(k, priv, sizeof k);
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    memset(wide, 0, sizeof wide);
    memcpy(wide, k, 32);
    crypto_core_ed25519_scalar_reduce(a, wide);
    if (crypto_scalarmult_ed25519_base_noclamp(A, a) != 0)
        goto out;
    sign_bit = A[31] & 0x80;

    /* r = SHA-512(0xFE || 0xFF*31 || k || M || Z) mod L, k unreduced. */
    sotto_random_buf(Z, sizeof Z);
    crypto_hash_sha512_init(&hs);
    crypto_hash_sha512_update(&hs, prefix, sizeof prefix);
    crypto_hash_sha512_update(&hs, k, sizeof k);
    crypto_hash_sha512_update(&hs, msg, msg_len);
    crypto_hash_sha512_update(&hs, Z, sizeof Z);
    crypto_hash_sha512_final(&hs, wide);
    crypto_core_ed25519_scalar_reduce(r, wide);
    if (crypto_scalarmult_ed25519_base_noclamp(R, r) != 0)
        goto out;

    /* h = SHA-512(R || A || M) mod L; S = r + h a mod L. */
    crypto_hash_sha512_init(&hs);
    crypto_hash_sha512_update(&hs, R, sizeof R);
    crypto_hash_sha512_update(&hs, A, sizeof A);
    crypto_hash_sha512_update(&hs, msg, msg_len);
    crypto_hash_sha512_final(&hs, wide);
    crypto_core_ed25519_scalar_reduce(h, wide);
    crypto_core_ed25519_scalar_mul(S, h, a);
    crypto_core_ed25519_scalar_add(S, S, r);

    memcpy(sig, R, 32);
    memcpy(sig + 32, S, 32);
    sig[63] = (uint8_t)((sig[63] & 0x7F) | sign_bit);
    rc = SOTTO_OK;
out:
    if (rc != SOTTO_OK)
        sodium_memzero(sig, SOTTO_SIGNATURE_BYTES);
    sodium_memzero(&hs, sizeof hs);
    sodium_memzero(wide, sizeof wide);
    sodium_memzero(k, sizeof k);
    sodium_memzero(a, sizeof a);
    sodium_memzero(r, sizeof r);
    sodium_memzero(Z, sizeof Z);
    sodium_memzero(h, sizeof h);
    sodium_memzero(S, sizeof S);
    return rc;
}

int sotto_ed25519_verify_internal(const uint8_t ed_pub[32], const uint8_t *msg, size_t msg_len,
                                  const uint8_t sig[64])
{
    if (ed_pub == NULL || sig == NULL || (msg == NULL && msg_len != 0))
        return SOTTO_ERR_INVALID_SIGNATURE;
    if (crypto_sign_verify_detached(sig, msg, msg_len, ed_pub) != 0)
        return SOTTO_ERR_INVALID_SIGNATURE;
    return SOTTO_OK;
}

int sotto_xeddsa_verify_ed(const uint8_t ed_y[32], const uint8_t *msg, size_t msg_len,
                           const uint8_t sig[SOTTO_SIGNATURE_BYTES])
{
    uint8_t A[32];
    uint8_t s2[SOTTO_SIGNATURE_BYTES];

    if (ed_y == NULL || sig == NULL || (msg == NULL && msg_len != 0))
        return SOTTO_ERR_INVALID_SIGNATURE;
    /* 2. The Edwards sign bit travels in bit 7 of sig[63]. */
    memcpy(A, ed_y, sizeof A);
    A[31] = (uint8_t)((A[31] & 0x7F) | (sig[63] & 0x80));
    /* 3. Clear it in a copy of the signature. */
    memcpy(s2, sig, sizeof s2);
    s2[63] &= 0x7F;
    /* 4. libsignal-protocol-c's extra check on the top bits of S. */
    if (s2[63] & 0xE0)
        return SOTTO_ERR_INVALID_SIGNATURE;
    /* 5. Standard Ed25519 verification. */
    return sotto_ed25519_verify_internal(A, msg, msg_len, s2);
}

int sotto_xeddsa_verify(const sotto_public_key *pub, const uint8_t *msg, size_t msg_len,
                        const uint8_t sig[SOTTO_SIGNATURE_BYTES])
{
    uint8_t y[32];

    if (pub == NULL || sig == NULL || (msg == NULL && msg_len != 0) ||
        pub->bytes[0] != SOTTO_KEY_TYPE_DJB)
        return SOTTO_ERR_INVALID_SIGNATURE;
    /* 1. y = (u - 1) / (u + 1), top bit of u ignored, canonical encoding. */
    sotto_fe_mont_u_to_ed_y(y, pub->bytes + 1);
    /* Steps 2-5. */
    return sotto_xeddsa_verify_ed(y, msg, msg_len, sig);
}
