/*
 * lib/kt/vrf_internal.h -- the steps of ECVRF-EDWARDS25519-SHA512-TAI
 * (RFC 9381 section 5, suite 5.5) exposed to the tests, which check the
 * RFC's intermediate values (internal header, not installed).
 *
 * Points are 32-byte RFC 8032 encodings, scalars 32-byte little-endian.
 * Every function returns SOTTO_OK or a negative SOTTO_ERR_* code.
 */
#ifndef SOTTO_LIB_KT_VRF_INTERNAL_H
#define SOTTO_LIB_KT_VRF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sotto/common.h"
#include "sotto/error.h"

#define SOTTO_VRF_C_BYTES 16 /* cLen */

/* string_to_point (RFC 8032 5.1.3): SOTTO_OK when `p` is the canonical
 * encoding of a point of the curve (any order), else
 * SOTTO_ERR_INVALID_KEY. */
SOTTO_WUR int sotto_vrf_string_to_point(const uint8_t p[32]);

/* The secret scalar x (SHA-512(sk) low half, clamped, not reduced) and the
 * nonce prefix (high half). Both secret: the caller wipes them. */
SOTTO_WUR int sotto_vrf_expand_secret(uint8_t x[32], uint8_t prefix[32], const uint8_t sk[32]);

/* ECVRF_encode_to_curve_try_and_increment (5.4.1.1) with salt = pk:
 * h = 8 * the first point found; `*ctr` (may be NULL) gets the counter.
 * SOTTO_ERR_INTERNAL if no point within 256 tries (RFC: fail). */
SOTTO_WUR int sotto_vrf_encode_to_curve(uint8_t h[32], int *ctr, const uint8_t pk[32],
                                        const uint8_t *alpha, size_t alpha_len);

/* ECVRF_nonce_generation_RFC8032 (5.4.2.2): k = SHA-512(prefix || h) mod
 * L. Secret: the caller wipes k. */
SOTTO_WUR int sotto_vrf_nonce(uint8_t k[32], const uint8_t prefix[32], const uint8_t h[32]);

/* ECVRF_challenge_generation (5.4.3): the first 16 bytes of
 * SHA-512(0x03 || 0x02 || p1 || ... || p5 || 0x00). */
SOTTO_WUR int sotto_vrf_challenge(uint8_t c[SOTTO_VRF_C_BYTES], const uint8_t p1[32],
                                  const uint8_t p2[32], const uint8_t p3[32], const uint8_t p4[32],
                                  const uint8_t p5[32]);

/* out = n * p for any point p that passed sotto_vrf_string_to_point (also
 * of small order or with a torsion part, which libsodium's scalar
 * multiplication refuses) and any 32-byte integer n (not reduced: the
 * torsion part needs n mod 8). The identity is a valid result. */
SOTTO_WUR int sotto_vrf_point_mul(uint8_t out[32], const uint8_t n[32], const uint8_t p[32]);

/* out = 8 * p for any point p that passed sotto_vrf_string_to_point. */
SOTTO_WUR int sotto_vrf_mul_cofactor(uint8_t out[32], const uint8_t p[32]);

#endif /* SOTTO_LIB_KT_VRF_INTERNAL_H */
