/*
 * lib/crypto/fe25519.c -- GF(2^255 - 19) arithmetic for the XEdDSA
 * coordinate conversions (see fe25519.h). Spec: signal-protocol.md 3.3, 9.
 *
 * Representation: eight 32-bit limbs, value = sum v[i] * 2^(32 i), any
 * value below 2^256 (so not necessarily reduced mod p). Reduction uses
 * 2^256 = 2 * 2^255 = 2 * 19 = 38 (mod p).
 */
#include "crypto/fe25519.h"

#include <string.h>

/* Adds c * 38 into r (value < 2^256 plus a small carry), looping until no
 * carry is left. c is small (at most a few hundred). */
static void fold_carry(sotto_fe *r, uint64_t c)
{
    int i;

    while (c != 0) {
        uint64_t t = c * 38u;

        for (i = 0; i < 8; i++) {
            t += r->v[i];
            r->v[i] = (uint32_t)t;
            t >>= 32;
        }
        c = t;
    }
}

void sotto_fe_frombytes(sotto_fe *r, const uint8_t s[32])
{
    int i;

    for (i = 0; i < 8; i++) {
        r->v[i] = (uint32_t)s[4 * i] | (uint32_t)s[4 * i + 1] << 8 | (uint32_t)s[4 * i + 2] << 16 |
                  (uint32_t)s[4 * i + 3] << 24;
    }
    r->v[7] &= 0x7FFFFFFFu;
}

/* For a < 2^256 - 19: if a >= p, subtract p. With t = a + 19, a >= p
 * exactly when bit 255 of t is set (given a < 2^255 + 19 < 2^256 - 19), and
 * then a - p = t - 2^255. */
static void reduce_once(sotto_fe *a)
{
    sotto_fe t;
    uint64_t c = 19;
    int i;

    for (i = 0; i < 8; i++) {
        c += a->v[i];
        t.v[i] = (uint32_t)c;
        c >>= 32;
    }
    if (t.v[7] & 0x80000000u) {
        t.v[7] &= 0x7FFFFFFFu;
        *a = t;
    }
}

void sotto_fe_tobytes(uint8_t s[32], const sotto_fe *a)
{
    sotto_fe t = *a;
    uint64_t top;
    int i;

    /* Fold bit 255: t = (t mod 2^255) + 19 * (t >> 255) < 2^255 + 19. */
    top = t.v[7] >> 31;
    t.v[7] &= 0x7FFFFFFFu;
    {
        uint64_t c = 19u * top;

        for (i = 0; i < 8; i++) {
            c += t.v[i];
            t.v[i] = (uint32_t)c;
            c >>= 32;
        }
    }
    /* Now t < 2^255 + 19 < 2p, so one conditional subtraction of p
     * leaves the canonical value (t - p < 38 when it happens). */
    reduce_once(&t);
    for (i = 0; i < 8; i++) {
        s[4 * i] = (uint8_t)t.v[i];
        s[4 * i + 1] = (uint8_t)(t.v[i] >> 8);
        s[4 * i + 2] = (uint8_t)(t.v[i] >> 16);
        s[4 * i + 3] = (uint8_t)(t.v[i] >> 24);
    }
}

void sotto_fe_set_u32(sotto_fe *r, uint32_t x)
{
    memset(r, 0, sizeof *r);
    r->v[0] = x;
}

void sotto_fe_add(sotto_fe *r, const sotto_fe *a, const sotto_fe *b)
{
    uint64_t c = 0;
    int i;

    for (i = 0; i < 8; i++) {
        c += (uint64_t)a->v[i] + b->v[i];
        r->v[i] = (uint32_t)c;
        c >>= 32;
    }
    fold_carry(r, c);
}

void sotto_fe_sub(sotto_fe *r, const sotto_fe *a, const sotto_fe *b)
{
    /*
     * r = a - b + 2^256 - 38*k style: compute a + (4p - b) where
     * 4p = 2^257 - 76 > any b < 2^256, so no borrow; the result is below
     * 2^258 and its carry (0..3) is folded as carry * 38.
     * 4p as limbs: v[0] = 2^32 - 76, v[1..6] = 2^32 - 1, v[7] = 2^32 - 1,
     * plus 2^256 (carry 1).
     */
    uint64_t c = 0;
    int64_t borrow = 0;
    uint32_t fourp[8];
    int i;

    fourp[0] = 0xFFFFFFB4u; /* 2^32 - 76 */
    for (i = 1; i < 8; i++)
        fourp[i] = 0xFFFFFFFFu;
    /* t = 4p - b (as 8 limbs plus a top word that starts at 1) */
    {
        uint32_t t[8];
        int64_t top = 1;

        for (i = 0; i < 8; i++) {
            int64_t d = (int64_t)fourp[i] - (int64_t)b->v[i] + borrow;
            t[i] = (uint32_t)d;
            borrow = d < 0 ? -1 : 0;
        }
        top += borrow; /* 0 or 1; 4p > b so never negative */
        for (i = 0; i < 8; i++) {
            c += (uint64_t)a->v[i] + t[i];
            r->v[i] = (uint32_t)c;
            c >>= 32;
        }
        c += (uint64_t)top;
    }
    fold_carry(r, c);
}

void sotto_fe_mul(sotto_fe *r, const sotto_fe *a, const sotto_fe *b)
{
    uint32_t w[16];
    uint64_t c;
    int i;
    int j;

    memset(w, 0, sizeof w);
    for (i = 0; i < 8; i++) {
        c = 0;
        for (j = 0; j < 8; j++) {
            /* (2^32-1)^2 + 2 (2^32-1) = 2^64 - 1: no overflow. */
            c += (uint64_t)a->v[i] * b->v[j] + w[i + j];
            w[i + j] = (uint32_t)c;
            c >>= 32;
        }
        w[i + 8] = (uint32_t)c;
    }
    /* low + 38 * high */
    c = 0;
    for (i = 0; i < 8; i++) {
        c += (uint64_t)w[i] + (uint64_t)w[i + 8] * 38u;
        r->v[i] = (uint32_t)c;
        c >>= 32;
    }
    fold_carry(r, c);
}

void sotto_fe_invert(sotto_fe *r, const sotto_fe *a)
{
    /* p - 2 = 2^255 - 21, little-endian bytes: eb ff .. ff 7f. */
    static const uint8_t e[32] = {
        0xeb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    };
    sotto_fe x = *a;
    sotto_fe acc;
    int bit;

    sotto_fe_set_u32(&acc, 1);
    for (bit = 254; bit >= 0; bit--) {
        sotto_fe_mul(&acc, &acc, &acc);
        if ((e[bit >> 3] >> (bit & 7)) & 1)
            sotto_fe_mul(&acc, &acc, &x);
    }
    *r = acc;
}

void sotto_fe_mont_u_to_ed_y(uint8_t y[32], const uint8_t u[32])
{
    sotto_fe fu;
    sotto_fe one;
    sotto_fe num;
    sotto_fe den;

    sotto_fe_frombytes(&fu, u);
    sotto_fe_set_u32(&one, 1);
    sotto_fe_sub(&num, &fu, &one);
    sotto_fe_add(&den, &fu, &one);
    sotto_fe_invert(&den, &den);
    sotto_fe_mul(&num, &num, &den);
    sotto_fe_tobytes(y, &num);
}

void sotto_fe_ed_y_to_mont_u(uint8_t u[32], const uint8_t y[32])
{
    sotto_fe fy;
    sotto_fe one;
    sotto_fe num;
    sotto_fe den;

    sotto_fe_frombytes(&fy, y);
    sotto_fe_set_u32(&one, 1);
    sotto_fe_add(&num, &one, &fy);
    sotto_fe_sub(&den, &one, &fy);
    sotto_fe_invert(&den, &den);
    sotto_fe_mul(&num, &num, &den);
    sotto_fe_tobytes(u, &num);
}
