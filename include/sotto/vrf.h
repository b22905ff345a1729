/*
 * sotto/vrf.h -- verifiable random function ECVRF-EDWARDS25519-SHA512-TAI
 * (RFC 9381 section 5, suite of section 5.5, suite_string 0x03), for key
 * transparency (the directory index of a username is the VRF output).
 *
 * Encodings are those of RFC 9381 / RFC 8032: a secret key is a 32-byte
 * seed, a public key a 32-byte Edwards point, a proof pi is
 * Gamma (32) || c (16) || s (32) = 80 bytes, an output beta 64 bytes.
 * Encode-to-curve is try-and-increment (RFC 9381 5.4.1.1), the nonce is
 * derived as in RFC 8032 (5.4.2.2), and verification runs validate_key
 * (5.4.5): a public key of small order is refused.
 *
 * Built on libsodium's Ed25519 point and scalar functions; see
 * docs/protocol.md "VRF (key transparency)". Validated on the RFC's
 * examples (tests/unit/test_vrf.c).
 *
 * All buffers are owned by the caller. A key pair holds a secret: wipe it
 * with sotto_vrf_key_pair_wipe(). Call sotto_init() first.
 */
#ifndef SOTTO_VRF_H
#define SOTTO_VRF_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/common.h"
#include "sotto/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_VRF_SECRET_KEY_BYTES 32 /* SK: Ed25519 seed (RFC 8032 5.1.5) */
#define SOTTO_VRF_PUBLIC_KEY_BYTES 32 /* PK = x*B, RFC 8032 point encoding */
#define SOTTO_VRF_PROOF_BYTES 80      /* pi = Gamma || c || s */
#define SOTTO_VRF_OUTPUT_BYTES 64     /* beta = proof_to_hash(pi) */

/* A VRF key pair: `sk` is the secret seed, `pk` its public key. Build it
 * only with sotto_vrf_key_pair_from_seed() or sotto_vrf_key_pair_generate()
 * (prove uses `pk` as given). */
typedef struct sotto_vrf_key_pair {
    uint8_t pk[SOTTO_VRF_PUBLIC_KEY_BYTES];
    uint8_t sk[SOTTO_VRF_SECRET_KEY_BYTES];
} sotto_vrf_key_pair;

/*
 * Builds a key pair from a 32-byte secret key (RFC 9381 5.5 / RFC 8032
 * 5.1.5: SHA-512(sk), low half clamped is the scalar x, pk = x*B). `*out`
 * is written only on success; the caller wipes it and its own copy of
 * `sk`. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL) or
 * SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int
sotto_vrf_key_pair_from_seed(sotto_vrf_key_pair *out,
                             const uint8_t sk[SOTTO_STATIC_N(SOTTO_VRF_SECRET_KEY_BYTES)]);

/*
 * Generates a key pair from 32 bytes of the system RNG. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL) or SOTTO_ERR_CRYPTO. The caller wipes
 * `*out`.
 */
SOTTO_API SOTTO_WUR int sotto_vrf_key_pair_generate(sotto_vrf_key_pair *out);

/* Wipes a key pair (sodium_memzero). NULL is a no-op. */
SOTTO_API void sotto_vrf_key_pair_wipe(sotto_vrf_key_pair *kp);

/*
 * ECVRF_prove (RFC 9381 5.1): writes the 80-byte proof of `alpha_len`
 * bytes of `alpha` (may be NULL when alpha_len is 0) under `kp` into `pi`.
 * Deterministic: the same key and alpha give the same proof. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL) or SOTTO_ERR_INTERNAL
 * (a libsodium point operation refused; not expected); on error `pi` is
 * zeroed (when not NULL). Secret intermediates are wiped.
 */
SOTTO_API SOTTO_WUR int sotto_vrf_prove(uint8_t pi[SOTTO_STATIC_N(SOTTO_VRF_PROOF_BYTES)],
                                        const sotto_vrf_key_pair *kp, const uint8_t *alpha,
                                        size_t alpha_len);

/*
 * ECVRF_proof_to_hash (RFC 9381 5.2): beta = SHA-512(0x03 || 0x03 ||
 * 8*Gamma || 0x00) from a proof. Does NOT verify the proof: use it only on
 * a proof already verified (or one made by sotto_vrf_prove). Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL) or
 * SOTTO_ERR_INVALID_SIGNATURE (pi does not decode: Gamma not a point, or
 * s >= L); on error `beta` is zeroed (when not NULL).
 */
SOTTO_API SOTTO_WUR int
sotto_vrf_proof_to_hash(uint8_t beta[SOTTO_STATIC_N(SOTTO_VRF_OUTPUT_BYTES)],
                        const uint8_t pi[SOTTO_STATIC_N(SOTTO_VRF_PROOF_BYTES)]);

/*
 * ECVRF_validate_key (RFC 9381 5.4.5) with RFC 8032 decoding: SOTTO_OK when
 * `pk` is the canonical encoding of a curve point whose multiple by the
 * cofactor 8 is not the identity; otherwise SOTTO_ERR_INVALID_KEY (also for
 * NULL).
 */
SOTTO_API SOTTO_WUR int
sotto_vrf_validate_key(const uint8_t pk[SOTTO_STATIC_N(SOTTO_VRF_PUBLIC_KEY_BYTES)]);

/*
 * ECVRF_verify (RFC 9381 5.3, validate_key = TRUE): checks the 80-byte
 * proof `pi` of `alpha` (may be NULL when alpha_len is 0) under `pk`; on
 * success writes the 64-byte output into `beta`. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL), SOTTO_ERR_INVALID_KEY (pk fails
 * sotto_vrf_validate_key) or SOTTO_ERR_INVALID_SIGNATURE (any other
 * failure: pi does not decode, s >= L, or the challenge does not match);
 * on error `beta` is zeroed (when not NULL).
 */
SOTTO_API SOTTO_WUR int
sotto_vrf_verify(uint8_t beta[SOTTO_STATIC_N(SOTTO_VRF_OUTPUT_BYTES)],
                 const uint8_t pk[SOTTO_STATIC_N(SOTTO_VRF_PUBLIC_KEY_BYTES)], const uint8_t *alpha,
                 size_t alpha_len, const uint8_t pi[SOTTO_STATIC_N(SOTTO_VRF_PROOF_BYTES)]);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_VRF_H */
