/*
 * lib/kt/vrf.c -- ECVRF-EDWARDS25519-SHA512-TAI, RFC 9381 section 5 with
 * the suite of section 5.5 (suite_string 0x03, cLen 16, try-and-increment
 * encode-to-curve, RFC 8032 nonce), written from the RFC text on top of
 * libsodium's Ed25519 point and scalar functions.
 *
 * libsodium and the cofactor. crypto_scalarmult_ed25519_*noclamp refuses a
 * point outside the prime-order subgroup (or of small order) and a result
 * that is the identity. The RFC needs more:
 *  - encode-to-curve decodes a hash as any curve point and multiplies it by
 *    the cofactor 8: done with three doublings (crypto_core_ed25519_add,
 *    whose extended-coordinate addition is complete on this curve and
 *    accepts every curve point);
 *  - verification computes c*Y and c*Gamma where Y (only checked not to be
 *    of small order, 5.4.5) and Gamma (only decoded, 5.4.4) may carry a
 *    torsion part: sotto_vrf_point_mul splits P = P_L + T (P_L = 8^-1 mod L
 *    times 8P, T = P - P_L) and adds (n mod L)*P_L and (n mod 8)*T, so the
 *    result is the RFC's for every decodable point;
 *  - proof_to_hash hashes 8*Gamma, which may be the identity;
 *  - a zero scalar gives the identity instead of an error.
 * Honest keys and proofs take the direct path (one libsodium scalar
 * multiplication each). Decoding (string_to_point) is RFC 8032's: the
 * encoding must be canonical (y < p, no sign bit on x = 0); it is checked
 * by decoding through libsodium (adding the identity) and comparing the
 * canonical re-encoding with the input.
 */
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "kt/vrf_internal.h"
#include "sotto/vrf.h"

#define SUITE_STRING 0x03

static const uint8_t IDENTITY[32] = {1};

static int is_identity(const uint8_t p[32])
{
    return sodium_memcmp(p, IDENTITY, 32) == 0;
}

/* out = n mod L for a 32-byte n. */
static void reduce32(uint8_t out[32], const uint8_t n[32])
{
    uint8_t wide[64];

    memcpy(wide, n, 32);
    memset(wide + 32, 0, 32);
    crypto_core_ed25519_scalar_reduce(out, wide);
    sodium_memzero(wide, sizeof wide);
}

int sotto_vrf_string_to_point(const uint8_t p[32])
{
    uint8_t t[32];

    if (p == NULL)
        return SOTTO_ERR_INVALID_KEY;
    /* Fails when y has no x; re-encodes y mod p and drops a sign bit on
     * x = 0, so a non-canonical input comes back different. */
    if (crypto_core_ed25519_add(t, p, IDENTITY) != 0)
        return SOTTO_ERR_INVALID_KEY;
    return sodium_memcmp(t, p, 32) == 0 ? SOTTO_OK : SOTTO_ERR_INVALID_KEY;
}

int sotto_vrf_mul_cofactor(uint8_t out[32], const uint8_t p[32])
{
    uint8_t t[32];

    if (crypto_core_ed25519_add(t, p, p) != 0 || crypto_core_ed25519_add(t, t, t) != 0 ||
        crypto_core_ed25519_add(out, t, t) != 0)
        return SOTTO_ERR_INTERNAL;
    return SOTTO_OK;
}

/* out = k * p for 0 <= k < 8 and any curve point p (double and add). */
static int mul_small(uint8_t out[32], unsigned k, const uint8_t p[32])
{
    uint8_t acc[32];

    memcpy(acc, IDENTITY, 32);
    for (int bit = 2; bit >= 0; bit--) {
        if (crypto_core_ed25519_add(acc, acc, acc) != 0)
            return SOTTO_ERR_INTERNAL;
        if (((k >> bit) & 1) && crypto_core_ed25519_add(acc, acc, p) != 0)
            return SOTTO_ERR_INTERNAL;
    }
    memcpy(out, acc, 32);
    return SOTTO_OK;
}

/* out = n * p, n already reduced mod L, p in the prime-order subgroup and
 * not the identity. */
static int mul_subgroup(uint8_t out[32], const uint8_t n[32], const uint8_t p[32])
{
    if (sodium_is_zero(n, 32)) {
        memcpy(out, IDENTITY, 32);
        return SOTTO_OK;
    }
    return crypto_scalarmult_ed25519_noclamp(out, n, p) == 0 ? SOTTO_OK : SOTTO_ERR_INTERNAL;
}

/* out = n * B, n already reduced mod L. */
static int mul_base(uint8_t out[32], const uint8_t n[32])
{
    if (sodium_is_zero(n, 32)) {
        memcpy(out, IDENTITY, 32);
        return SOTTO_OK;
    }
    return crypto_scalarmult_ed25519_base_noclamp(out, n) == 0 ? SOTTO_OK : SOTTO_ERR_INTERNAL;
}

int sotto_vrf_point_mul(uint8_t out[32], const uint8_t n[32], const uint8_t p[32])
{
    static const uint8_t eight[32] = {8};
    uint8_t nr[32], p8[32], inv8[32], pl[32], t[32], a[32], b[32];
    unsigned n8 = n[0] & 7u;
    int rc;

    reduce32(nr, n);
    /* Direct when libsodium accepts p. For a canonical point and 0 < nr < L
     * it refuses exactly the points of small order or with a torsion part
     * (the result of an order-L point cannot be the identity), so a refusal
     * means: take the torsion path. */
    if (sodium_is_zero(nr, 32) && crypto_core_ed25519_is_valid_point(p)) {
        memcpy(out, IDENTITY, 32);
        return SOTTO_OK;
    }
    if (!sodium_is_zero(nr, 32) && crypto_scalarmult_ed25519_noclamp(out, nr, p) == 0)
        return SOTTO_OK;
    if ((rc = sotto_vrf_mul_cofactor(p8, p)) != SOTTO_OK)
        return rc;
    if (is_identity(p8)) /* small order: only n mod 8 matters */
        return mul_small(out, n8, p);
    if (crypto_core_ed25519_scalar_invert(inv8, eight) != 0)
        return SOTTO_ERR_INTERNAL;
    if ((rc = mul_subgroup(pl, inv8, p8)) != SOTTO_OK) /* P_L */
        return rc;
    if (crypto_core_ed25519_sub(t, p, pl) != 0) /* T = P - P_L, order | 8 */
        return SOTTO_ERR_INTERNAL;
    if ((rc = mul_subgroup(a, nr, pl)) != SOTTO_OK || (rc = mul_small(b, n8, t)) != SOTTO_OK)
        return rc;
    return crypto_core_ed25519_add(out, a, b) == 0 ? SOTTO_OK : SOTTO_ERR_INTERNAL;
}

int sotto_vrf_expand_secret(uint8_t x[32], uint8_t prefix[32], const uint8_t sk[32])
{
    uint8_t hs[64];

    if (x == NULL || prefix == NULL || sk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    crypto_hash_sha512(hs, sk, 32);
    memcpy(x, hs, 32);
    x[0] &= 248;
    x[31] &= 127;
    x[31] |= 64;
    memcpy(prefix, hs + 32, 32);
    sodium_memzero(hs, sizeof hs);
    return SOTTO_OK;
}

int sotto_vrf_encode_to_curve(uint8_t h[32], int *ctr, const uint8_t pk[32], const uint8_t *alpha,
                              size_t alpha_len)
{
    static const uint8_t front[2] = {SUITE_STRING, 0x01};
    crypto_hash_sha512_state st;
    uint8_t hash[64];
    uint8_t tail[2];

    if (h == NULL || pk == NULL || (alpha == NULL && alpha_len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    for (int i = 0; i < 256; i++) {
        tail[0] = (uint8_t)i; /* ctr_string = int_to_string(ctr, 1) */
        tail[1] = 0x00;
        crypto_hash_sha512_init(&st);
        crypto_hash_sha512_update(&st, front, sizeof front);
        crypto_hash_sha512_update(&st, pk, 32); /* encode_to_curve_salt = PK_string */
        if (alpha_len != 0)
            crypto_hash_sha512_update(&st, alpha, alpha_len);
        crypto_hash_sha512_update(&st, tail, sizeof tail);
        crypto_hash_sha512_final(&st, hash);
        /* interpret_hash_value_as_a_point: the first 32 bytes. */
        if (sotto_vrf_string_to_point(hash) != SOTTO_OK)
            continue;
        if (sotto_vrf_mul_cofactor(h, hash) != SOTTO_OK)
            return SOTTO_ERR_INTERNAL;
        if (is_identity(h))
            continue;
        if (ctr != NULL)
            *ctr = i;
        return SOTTO_OK;
    }
    memset(h, 0, 32);
    return SOTTO_ERR_INTERNAL;
}

int sotto_vrf_nonce(uint8_t k[32], const uint8_t prefix[32], const uint8_t h[32])
{
    crypto_hash_sha512_state st;
    uint8_t k_string[64];

    if (k == NULL || prefix == NULL || h == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, prefix, 32);
    crypto_hash_sha512_update(&st, h, 32);
    crypto_hash_sha512_final(&st, k_string);
    crypto_core_ed25519_scalar_reduce(k, k_string);
    sodium_memzero(k_string, sizeof k_string);
    sodium_memzero(&st, sizeof st);
    return SOTTO_OK;
}

int sotto_vrf_challenge(uint8_t c[SOTTO_VRF_C_BYTES], const uint8_t p1[32], const uint8_t p2[32],
                        const uint8_t p3[32], const uint8_t p4[32], const uint8_t p5[32])
{
    static const uint8_t front[2] = {SUITE_STRING, 0x02};
    static const uint8_t back[1] = {0x00};
    crypto_hash_sha512_state st;
    uint8_t c_string[64];

    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, front, sizeof front);
    crypto_hash_sha512_update(&st, p1, 32);
    crypto_hash_sha512_update(&st, p2, 32);
    crypto_hash_sha512_update(&st, p3, 32);
    crypto_hash_sha512_update(&st, p4, 32);
    crypto_hash_sha512_update(&st, p5, 32);
    crypto_hash_sha512_update(&st, back, sizeof back);
    crypto_hash_sha512_final(&st, c_string);
    memcpy(c, c_string, SOTTO_VRF_C_BYTES);
    return SOTTO_OK;
}

int sotto_vrf_key_pair_from_seed(sotto_vrf_key_pair *out, const uint8_t sk[32])
{
    uint8_t x[32], prefix[32], xr[32], pk[32];
    int rc;

    if (out == NULL || sk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if ((rc = sotto_vrf_expand_secret(x, prefix, sk)) != SOTTO_OK)
        return rc;
    reduce32(xr, x);
    rc = mul_base(pk, xr) == SOTTO_OK ? SOTTO_OK : SOTTO_ERR_CRYPTO;
    if (rc == SOTTO_OK) {
        memcpy(out->pk, pk, 32);
        memmove(out->sk, sk, 32);
    }
    sodium_memzero(x, sizeof x);
    sodium_memzero(xr, sizeof xr);
    sodium_memzero(prefix, sizeof prefix);
    return rc;
}

int sotto_vrf_key_pair_generate(sotto_vrf_key_pair *out)
{
    uint8_t sk[32];
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sotto_random_buf(sk, sizeof sk);
    rc = sotto_vrf_key_pair_from_seed(out, sk);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

void sotto_vrf_key_pair_wipe(sotto_vrf_key_pair *kp)
{
    if (kp != NULL)
        sodium_memzero(kp, sizeof *kp);
}

int sotto_vrf_prove(uint8_t pi[SOTTO_VRF_PROOF_BYTES], const sotto_vrf_key_pair *kp,
                    const uint8_t *alpha, size_t alpha_len)
{
    uint8_t x[32], prefix[32], xr[32], k[32];
    uint8_t h[32], gamma[32], u[32], v[32];
    uint8_t c[32], cx[32], s[32];
    int rc;

    if (pi == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (kp == NULL || (alpha == NULL && alpha_len != 0)) {
        memset(pi, 0, SOTTO_VRF_PROOF_BYTES);
        return SOTTO_ERR_INVALID_ARGUMENT;
    }
    memset(c, 0, sizeof c);
    if ((rc = sotto_vrf_expand_secret(x, prefix, kp->sk)) != SOTTO_OK)
        goto out;
    reduce32(xr, x);
    if ((rc = sotto_vrf_encode_to_curve(h, NULL, kp->pk, alpha, alpha_len)) != SOTTO_OK)
        goto out;
    /* H is 8 * a point and not the identity: in the prime-order subgroup. */
    if ((rc = mul_subgroup(gamma, xr, h)) != SOTTO_OK)
        goto out;
    if ((rc = sotto_vrf_nonce(k, prefix, h)) != SOTTO_OK)
        goto out;
    if ((rc = mul_base(u, k)) != SOTTO_OK || (rc = mul_subgroup(v, k, h)) != SOTTO_OK)
        goto out;
    if ((rc = sotto_vrf_challenge(c, kp->pk, h, gamma, u, v)) != SOTTO_OK)
        goto out;
    crypto_core_ed25519_scalar_mul(cx, c, xr); /* c < 2^128 < L */
    crypto_core_ed25519_scalar_add(s, k, cx);  /* s = (k + c*x) mod q */
    memcpy(pi, gamma, 32);
    memcpy(pi + 32, c, SOTTO_VRF_C_BYTES);
    memcpy(pi + 32 + SOTTO_VRF_C_BYTES, s, 32);
    rc = SOTTO_OK;
out:
    if (rc != SOTTO_OK)
        memset(pi, 0, SOTTO_VRF_PROOF_BYTES);
    sodium_memzero(x, sizeof x);
    sodium_memzero(prefix, sizeof prefix);
    sodium_memzero(xr, sizeof xr);
    sodium_memzero(k, sizeof k);
    sodium_memzero(cx, sizeof cx);
    sodium_memzero(s, sizeof s);
    sodium_memzero(v, sizeof v);
    sodium_memzero(u, sizeof u);
    return rc;
}

/* ECVRF_decode_proof (5.4.4): Gamma must decode, s must be below L. */
static int decode_proof(const uint8_t pi[SOTTO_VRF_PROOF_BYTES])
{
    uint8_t sr[32];
    const uint8_t *s = pi + 32 + SOTTO_VRF_C_BYTES;

    if (sotto_vrf_string_to_point(pi) != SOTTO_OK)
        return SOTTO_ERR_INVALID_SIGNATURE;
    reduce32(sr, s); /* s < L exactly when reducing leaves it unchanged */
    if (sodium_memcmp(sr, s, 32) != 0)
        return SOTTO_ERR_INVALID_SIGNATURE;
    return SOTTO_OK;
}

/* ECVRF_proof_to_hash (5.2) on a decoded proof. */
static int hash_gamma(uint8_t beta[SOTTO_VRF_OUTPUT_BYTES], const uint8_t gamma[32])
{
    static const uint8_t front[2] = {SUITE_STRING, 0x03};
    static const uint8_t back[1] = {0x00};
    crypto_hash_sha512_state st;
    uint8_t g8[32];

    if (sotto_vrf_mul_cofactor(g8, gamma) != SOTTO_OK)
        return SOTTO_ERR_INTERNAL;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, front, sizeof front);
    crypto_hash_sha512_update(&st, g8, 32);
    crypto_hash_sha512_update(&st, back, sizeof back);
    crypto_hash_sha512_final(&st, beta);
    return SOTTO_OK;
}

int sotto_vrf_proof_to_hash(uint8_t beta[SOTTO_VRF_OUTPUT_BYTES],
                            const uint8_t pi[SOTTO_VRF_PROOF_BYTES])
{
    int rc;

    if (beta == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (pi == NULL) {
        rc = SOTTO_ERR_INVALID_ARGUMENT;
    } else if ((rc = decode_proof(pi)) == SOTTO_OK) {
        rc = hash_gamma(beta, pi);
    }
    if (rc != SOTTO_OK)
        memset(beta, 0, SOTTO_VRF_OUTPUT_BYTES);
    return rc;
}

/*
 * The canonical encodings of the 8 points of order dividing 8 (the
 * identity, (0, -1), (+-sqrt(-1), 0) and the four of order 8). For a
 * canonical encoding, "8*Y is the identity" (5.4.5) holds exactly for
 * these, and comparing is cheaper than three doublings; the unit test
 * checks each against sotto_vrf_mul_cofactor, the fuzz target every key.
 */
static const uint8_t SMALL_ORDER[8][32] = {
    {0x01},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0x00},
    {[31] = 0x80},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa},
};

int sotto_vrf_validate_key(const uint8_t pk[SOTTO_VRF_PUBLIC_KEY_BYTES])
{
    if (pk == NULL || sotto_vrf_string_to_point(pk) != SOTTO_OK)
        return SOTTO_ERR_INVALID_KEY;
    for (size_t i = 0; i < 8; i++) {
        if (sodium_memcmp(pk, SMALL_ORDER[i], 32) == 0)
            return SOTTO_ERR_INVALID_KEY;
    }
    return SOTTO_OK;
}

static int verify_inner(uint8_t beta[SOTTO_VRF_OUTPUT_BYTES], const uint8_t pk[32],
                        const uint8_t *alpha, size_t alpha_len,
                        const uint8_t pi[SOTTO_VRF_PROOF_BYTES])
{
    const uint8_t *gamma = pi;
    const uint8_t *s = pi + 32 + SOTTO_VRF_C_BYTES;
    uint8_t c[32], c2[SOTTO_VRF_C_BYTES];
    uint8_t h[32], sb[32], cy[32], u[32], sh[32], cg[32], v[32];
    int rc;

    if ((rc = sotto_vrf_validate_key(pk)) != SOTTO_OK)
        return rc;
    if ((rc = decode_proof(pi)) != SOTTO_OK)
        return rc;
    memset(c, 0, sizeof c);
    memcpy(c, pi + 32, SOTTO_VRF_C_BYTES);
    if (sotto_vrf_encode_to_curve(h, NULL, pk, alpha, alpha_len) != SOTTO_OK)
        return SOTTO_ERR_INVALID_SIGNATURE;
    /* U = s*B - c*Y */
    if (mul_base(sb, s) != SOTTO_OK || sotto_vrf_point_mul(cy, c, pk) != SOTTO_OK ||
        crypto_core_ed25519_sub(u, sb, cy) != 0)
        return SOTTO_ERR_INVALID_SIGNATURE;
    /* V = s*H - c*Gamma */
    if (mul_subgroup(sh, s, h) != SOTTO_OK || sotto_vrf_point_mul(cg, c, gamma) != SOTTO_OK ||
        crypto_core_ed25519_sub(v, sh, cg) != 0)
        return SOTTO_ERR_INVALID_SIGNATURE;
    if (sotto_vrf_challenge(c2, pk, h, gamma, u, v) != SOTTO_OK)
        return SOTTO_ERR_INVALID_SIGNATURE;
    if (sodium_memcmp(c, c2, SOTTO_VRF_C_BYTES) != 0)
        return SOTTO_ERR_INVALID_SIGNATURE;
    return hash_gamma(beta, gamma) == SOTTO_OK ? SOTTO_OK : SOTTO_ERR_INVALID_SIGNATURE;
}

int sotto_vrf_verify(uint8_t beta[SOTTO_VRF_OUTPUT_BYTES], const uint8_t pk[32],
                     const uint8_t *alpha, size_t alpha_len,
                     const uint8_t pi[SOTTO_VRF_PROOF_BYTES])
{
    int rc;

    if (beta == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (pk == NULL || pi == NULL || (alpha == NULL && alpha_len != 0))
        rc = SOTTO_ERR_INVALID_ARGUMENT;
    else
        rc = verify_inner(beta, pk, alpha, alpha_len, pi);
    if (rc != SOTTO_OK)
        memset(beta, 0, SOTTO_VRF_OUTPUT_BYTES);
    return rc;
}
