/*
 * lib/crypto/fe25519.h -- arithmetic in GF(2^255 - 19), for the
 * Montgomery <-> Edwards conversions of XEdDSA (internal header).
 *
 * libsodium 1.0.18 exposes no field arithmetic (spec section 9), so this is
 * a small, plain implementation: eight 32-bit limbs, little-endian, values
 * kept below 2^256 between operations and reduced fully (canonical, < p)
 * only by sotto_fe_tobytes(). It is meant for PUBLIC data (public keys):
 * it is branch-free in the limb loops but makes no constant-time promise.
 */
#ifndef SOTTO_LIB_FE25519_H
#define SOTTO_LIB_FE25519_H

#include <stdint.h>

typedef struct sotto_fe {
    uint32_t v[8];
} sotto_fe;

/* Loads 32 little-endian bytes; bit 255 is ignored (masked off). */
void sotto_fe_frombytes(sotto_fe *r, const uint8_t s[32]);
/* Stores the canonical (fully reduced, < p) little-endian encoding. */
void sotto_fe_tobytes(uint8_t s[32], const sotto_fe *a);
void sotto_fe_set_u32(sotto_fe *r, uint32_t x);
void sotto_fe_add(sotto_fe *r, const sotto_fe *a, const sotto_fe *b);
void sotto_fe_sub(sotto_fe *r, const sotto_fe *a, const sotto_fe *b);
void sotto_fe_mul(sotto_fe *r, const sotto_fe *a, const sotto_fe *b);
/* r = a^(p-2) = 1/a for a != 0; the inverse of 0 is 0. */
void sotto_fe_invert(sotto_fe *r, const sotto_fe *a);

/*
 * Birational maps between the Montgomery u-coordinate of Curve25519 and the
 * Edwards y-coordinate of Ed25519 (RFC 7748 section 4.1), canonical
 * 32-byte encodings out, bit 255 of the output clear:
 *   y = (u - 1) / (u + 1)      (u = -1 gives y = 0, as Signal does)
 *   u = (1 + y) / (1 - y)      (y = 1 gives u = 0)
 * Bit 255 of the input is ignored.
 */
void sotto_fe_mont_u_to_ed_y(uint8_t y[32], const uint8_t u[32]);
void sotto_fe_ed_y_to_mont_u(uint8_t u[32], const uint8_t y[32]);

#endif /* SOTTO_LIB_FE25519_H */
