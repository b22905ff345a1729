/*
 * lib/kem/mlkem.c -- ML-KEM-768/1024 (FIPS 203) and round-3 Kyber-1024.
 *
 * Written from FIPS 203 (Algorithms 3-18, section 7 input checks) and the
 * CRYSTALS-Kyber round-3 specification v3.02 (Algorithms 4-9). The hash
 * functions (SHA3-256 = H, SHA3-512 = G, SHAKE-128 = XOF, SHAKE-256 = PRF,
 * J and the round-3 KDF) are OpenSSL's.
 *
 * Arithmetic: coefficients are int16_t, lazily reduced: Montgomery
 * reduction (R = 2^16) for products, Barrett reduction for sums, a mask
 * for the final [0, q) (bounds at each function). Compress divides by q
 * with an exact multiply-shift (div_q), so no '%' or '/' ever sees a
 * secret. The NTT follows Algorithms 9-12 with the zeta table computed
 * once from zeta = 17 and BitRev7 (times R).
 *
 * Constant time: loops and memory indices depend only on the parameter set
 * and public data (rho, the public key, the ciphertext length). The only
 * data-dependent loop, SampleNTT's rejection sampling, reads the public
 * seed rho only. Decapsulation compares the re-encryption with an OR of
 * XORs and selects the secret with a mask.
 *
 * Round 3 versus FIPS 203 (docs/protocol.md "ML-KEM"):
 *  - key generation: (rho, sigma) = G(d), FIPS 203: G(d || k);
 *  - encapsulation: m is first replaced by H(m); FIPS 203 uses m as is;
 *  - shared secret: round 3 K = SHAKE-256(K' || H(c), 32), FIPS 203 K = K';
 *  - rejection: round 3 SHAKE-256(z || H(c), 32), FIPS 203
 *    J(z || c) = SHAKE-256(z || c, 32).
 * Everything else (sampling, NTT, encodings, compression, key layouts) is
 * identical.
 */
#include "sotto/kem.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "crypto/crypto.h"
#include "kem/mlkem_internal.h"

/*
 * Values derived from secrets but public by design (rho, which goes into
 * the encapsulation key) are declassified for the valgrind constant-time
 * test (tests/unit/test_mlkem_ct.c): memcheck then flags only branches and
 * indices on what really is secret. Without valgrind this costs a few
 * instructions.
 */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define CT_DECLASSIFY(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#endif
#endif
#ifndef CT_DECLASSIFY
#define CT_DECLASSIFY(p, n) ((void)(p), (void)(n))
#endif

#define N 256
#define Q 3329
#define KMAX 4
#define POLY_BYTES 384 /* ByteEncode12 of one polynomial */

typedef struct params {
    unsigned k, eta1, eta2, du, dv;
    int round3;
} params;

typedef struct poly {
    int16_t c[N];
} poly;

static const params P768 = {3, 2, 2, 10, 4, 0};
static const params P1024 = {4, 2, 2, 11, 5, 0};
static const params PKYBER1024 = {4, 2, 2, 11, 5, 1};

static const params *get_params(sotto_kem_alg alg)
{
    switch (alg) {
    case SOTTO_KEM_MLKEM768:
        return &P768;
    case SOTTO_KEM_MLKEM1024:
        return &P1024;
    case SOTTO_KEM_KYBER1024:
        return &PKYBER1024;
    }
    return NULL;
}

static size_t ek_bytes(const params *p)
{
    return POLY_BYTES * p->k + 32;
}

static size_t dk_bytes(const params *p)
{
    return 2 * POLY_BYTES * p->k + 96;
}

static size_t ct_bytes(const params *p)
{
    return 32 * (p->du * p->k + p->dv);
}

size_t sotto_kem_public_key_bytes(sotto_kem_alg alg)
{
    const params *p = get_params(alg);
    return p ? ek_bytes(p) : 0;
}

size_t sotto_kem_secret_key_bytes(sotto_kem_alg alg)
{
    const params *p = get_params(alg);
    return p ? dk_bytes(p) : 0;
}

size_t sotto_kem_ciphertext_bytes(sotto_kem_alg alg)
{
    const params *p = get_params(alg);
    return p ? ct_bytes(p) : 0;
}

/* ---------------------------------------------------------------------- */
/* Hash functions (OpenSSL EVP)                                            */

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha3_256, *md_sha3_512, *md_shake128, *md_shake256;
static int md_ok;

static void md_init(void)
{
    md_sha3_256 = EVP_MD_fetch(NULL, "SHA3-256", NULL);
    md_sha3_512 = EVP_MD_fetch(NULL, "SHA3-512", NULL);
    md_shake128 = EVP_MD_fetch(NULL, "SHAKE128", NULL);
    md_shake256 = EVP_MD_fetch(NULL, "SHAKE256", NULL);
    md_ok = md_sha3_256 && md_sha3_512 && md_shake128 && md_shake256;
}

/*
 * out (out_len bytes) = md(a || b || c); xof selects EVP_DigestFinalXOF.
 * Parts may be NULL with length 0. md points at one of the md_* globals,
 * read only after md_init has run.
 */
static int hash3(EVP_MD *const *md, int xof, uint8_t *out, size_t out_len, const uint8_t *a,
                 size_t a_len, const uint8_t *b, size_t b_len, const uint8_t *c, size_t c_len)
{
    EVP_MD_CTX *ctx;
    unsigned int len = 0;
    int ok;

    if (pthread_once(&md_once, md_init) != 0 || !md_ok)
        return SOTTO_ERR_CRYPTO;
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return SOTTO_ERR_CRYPTO;
    ok = EVP_DigestInit_ex2(ctx, *md, NULL) == 1;
    ok = ok && (a_len == 0 || EVP_DigestUpdate(ctx, a, a_len) == 1);
    ok = ok && (b_len == 0 || EVP_DigestUpdate(ctx, b, b_len) == 1);
    ok = ok && (c_len == 0 || EVP_DigestUpdate(ctx, c, c_len) == 1);
    if (xof)
        ok = ok && EVP_DigestFinalXOF(ctx, out, out_len) == 1;
    else
        ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == out_len;
    EVP_MD_CTX_free(ctx);
    return ok ? SOTTO_OK : SOTTO_ERR_CRYPTO;
}

/* H = SHA3-256 */
static int hash_h(uint8_t out[32], const uint8_t *in, size_t len)
{
    return hash3(&md_sha3_256, 0, out, 32, in, len, NULL, 0, NULL, 0);
}

/* G = SHA3-512 of a || b */
static int hash_g(uint8_t out[64], const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    return hash3(&md_sha3_512, 0, out, 64, a, a_len, b, b_len, NULL, 0);
}

/* SHAKE-256(a || b, 32): J of FIPS 203 and the round-3 KDF. */
static int hash_shake256_32(uint8_t out[32], const uint8_t *a, size_t a_len, const uint8_t *b,
                            size_t b_len)
{
    return hash3(&md_shake256, 1, out, 32, a, a_len, b, b_len, NULL, 0);
}

/* ---------------------------------------------------------------------- */
/* Arithmetic mod q                                                        */

/*
 * Coefficients are int16_t with lazily bounded magnitude. Products are
 * reduced by Montgomery reduction (R = 2^16): mont_reduce(a) = a R^-1 mod
 * q in (-q, q) for |a| < 2^15 q; sums by Barrett reduction to the centred
 * range [-(q-1)/2, (q-1)/2]. Both are branch-free. Zetas and gammas are
 * stored times R, so fqmul(zeta R, x) = zeta x.
 */
#define QINV (-3327)   /* q^-1 mod 2^16, signed */
#define MONT_R2 1353   /* 2^32 mod q: fqmul(x, MONT_R2) = x R */
#define INV_NTT_F 1441 /* R^2 / 128 mod q: the final scaling of NTT^-1 */

static inline int16_t mont_reduce(int32_t a)
{
    int16_t t = (int16_t)(uint16_t)((uint32_t)a * (uint32_t)(uint16_t)QINV);
    return (int16_t)((a - (int32_t)t * Q) >> 16);
}

static inline int16_t fqmul(int16_t a, int16_t b)
{
    return mont_reduce((int32_t)a * b);
}

/* Centred representative of a mod q, |result| <= (q-1)/2, any int16 a. */
static inline int16_t barrett_reduce(int16_t a)
{
    const int32_t v = ((1 << 26) + Q / 2) / Q;
    int16_t t = (int16_t)((v * a + (1 << 25)) >> 26);
    return (int16_t)(a - t * Q);
}

/* a + q if a < 0, without a branch: maps (-q, q) to [0, q). */
static inline int16_t cadd_q(int16_t a)
{
    return (int16_t)(a + ((a >> 15) & Q));
}

/* floor(x / q) for x < 2^24, by an exact multiply-shift (checked in tests). */
#define DIVQ_MUL 330282857u /* ceil(2^40 / q) */
static inline uint32_t div_q(uint32_t x)
{
    return (uint32_t)(((uint64_t)x * DIVQ_MUL) >> 40);
}

uint32_t sotto_mlkem_div_q(uint32_t x)
{
    return div_q(x);
}

/* zetas[i] = 17^BitRev7(i) R, gammas[i] = 17^(2 BitRev7(i) + 1) R mod q, centred. */
static int16_t zetas[128], gammas[128];
static uint16_t zetas_plain[128];
static pthread_once_t zeta_once = PTHREAD_ONCE_INIT;

static unsigned bitrev7(unsigned i)
{
    unsigned r = 0;
    for (int b = 0; b < 7; b++)
        r |= ((i >> b) & 1u) << (6 - b);
    return r;
}

static uint32_t pow17(unsigned e)
{
    uint32_t r = 1;
    for (unsigned i = 0; i < e; i++)
        r = r * 17 % Q; /* public constants only */
    return r;
}

static int16_t to_mont_centred(uint32_t x)
{
    uint32_t m = x * 2285u % Q; /* 2^16 mod q = 2285 */
    return (int16_t)(m > Q / 2 ? (int32_t)m - Q : (int32_t)m);
}

static void zeta_init(void)
{
    for (unsigned i = 0; i < 128; i++) {
        zetas_plain[i] = (uint16_t)pow17(bitrev7(i));
        zetas[i] = to_mont_centred(zetas_plain[i]);
        gammas[i] = to_mont_centred(pow17(2 * bitrev7(i) + 1));
    }
}

uint16_t sotto_mlkem_zeta(unsigned i)
{
    (void)pthread_once(&zeta_once, zeta_init);
    return zetas_plain[i & 127];
}

/* Algorithm 9. Input |f| <= q; output |f| <= (q-1)/2 (reduced at the end). */
static void ntt(poly *f)
{
    unsigned i = 1;
    for (unsigned len = 128; len >= 2; len /= 2) {
        for (unsigned start = 0; start < N; start += 2 * len) {
            int16_t z = zetas[i++];
            for (unsigned j = start; j < start + len; j++) {
                int16_t t = fqmul(z, f->c[j + len]);
                f->c[j + len] = (int16_t)(f->c[j] - t);
                f->c[j] = (int16_t)(f->c[j] + t);
            }
        }
    }
    for (unsigned j = 0; j < N; j++)
        f->c[j] = barrett_reduce(f->c[j]);
}

/*
 * Algorithm 10, also removing one factor R^-1 (the scaling constant is
 * R^2/128): input a base-multiplication result, |f| <= (q-1)/2; output
 * |f| < q.
 */
static void ntt_inv(poly *f)
{
    unsigned i = 127;
    for (unsigned len = 2; len <= 128; len *= 2) {
        for (unsigned start = 0; start < N; start += 2 * len) {
            int16_t z = zetas[i--];
            for (unsigned j = start; j < start + len; j++) {
                int16_t t = f->c[j];
                f->c[j] = barrett_reduce((int16_t)(t + f->c[j + len]));
                f->c[j + len] = fqmul(z, (int16_t)(f->c[j + len] - t));
            }
        }
    }
    for (unsigned j = 0; j < N; j++)
        f->c[j] = fqmul(f->c[j], INV_NTT_F);
}

/*
 * acc += f * g in the NTT domain times R^-1 (Algorithms 11 and 12). Inputs
 * |f|, |g| < 2^12; each call adds less than 2q per coefficient, so up to 4
 * calls stay below 2^15 before the caller's reduction.
 */
static void ntt_mul_acc(poly *acc, const poly *f, const poly *g)
{
    for (unsigned i = 0; i < 128; i++) {
        int16_t a0 = f->c[2 * i], a1 = f->c[2 * i + 1];
        int16_t b0 = g->c[2 * i], b1 = g->c[2 * i + 1];
        acc->c[2 * i] = (int16_t)(acc->c[2 * i] + fqmul(fqmul(a1, b1), gammas[i]) + fqmul(a0, b0));
        acc->c[2 * i + 1] = (int16_t)(acc->c[2 * i + 1] + fqmul(a0, b1) + fqmul(a1, b0));
    }
}

static void poly_reduce(poly *f)
{
    for (unsigned j = 0; j < N; j++)
        f->c[j] = barrett_reduce(f->c[j]);
}

/* Reduces fully to [0, q). */
static void poly_normalize(poly *f)
{
    for (unsigned j = 0; j < N; j++)
        f->c[j] = cadd_q(barrett_reduce(f->c[j]));
}

static void poly_add(poly *r, const poly *a)
{
    for (unsigned j = 0; j < N; j++)
        r->c[j] = (int16_t)(r->c[j] + a->c[j]);
}

/* ---------------------------------------------------------------------- */
/* Encodings and compression (Algorithms 5 and 6, section 4.2.1)           */

/* ByteEncode_d of 256 values in [0, 2^d): 32 d bytes. */
static void byte_encode(uint8_t *out, const poly *f, unsigned d)
{
    uint64_t acc = 0;
    unsigned bits = 0, o = 0;
    for (unsigned i = 0; i < N; i++) {
        acc |= (uint64_t)(uint16_t)f->c[i] << bits;
        bits += d;
        while (bits >= 8) {
            out[o++] = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
}

/* ByteDecode_d without the final reduction: values in [0, 2^d). */
static void byte_decode(poly *f, const uint8_t *in, unsigned d)
{
    uint64_t acc = 0;
    unsigned bits = 0, o = 0;
    uint32_t mask = (1u << d) - 1;
    for (unsigned i = 0; i < N; i++) {
        while (bits < d) {
            acc |= (uint64_t)in[o++] << bits;
            bits += 8;
        }
        f->c[i] = (int16_t)(acc & mask);
        acc >>= d;
        bits -= d;
    }
}

/*
 * ByteDecode12 of secret data. FIPS 203 reduces mod q; here values stay in
 * [0, 4096), which represent the same residues: every later use (the
 * Montgomery products of ntt_mul_acc) reduces them.
 */
static void decode12_secret(poly *f, const uint8_t *in)
{
    byte_decode(f, in, 12);
}

/* 1 if ByteDecode12(in) has a coefficient >= q (public data only). */
static int decode12_unreduced(const uint8_t *in, unsigned npolys)
{
    for (size_t i = 0; i < (size_t)POLY_BYTES * npolys; i += 3) {
        unsigned c0 = in[i] | ((in[i + 1] & 0x0fu) << 8);
        unsigned c1 = (in[i + 1] >> 4) | ((unsigned)in[i + 2] << 4);
        if (c0 >= Q || c1 >= Q)
            return 1;
    }
    return 0;
}

/*
 * Compress_d of values in [0, q): round(2^d x / q) mod 2^d
 * = floor((2^d x + (q-1)/2) / q) mod 2^d.
 */
static void compress(poly *f, unsigned d)
{
    for (unsigned i = 0; i < N; i++) {
        uint32_t x = (uint32_t)(uint16_t)f->c[i];
        f->c[i] = (int16_t)(div_q((x << d) + Q / 2) & ((1u << d) - 1));
    }
}

/* Decompress_d: round(q y / 2^d), in [0, q). */
static void decompress(poly *f, unsigned d)
{
    for (unsigned i = 0; i < N; i++)
        f->c[i] = (int16_t)(((uint32_t)(uint16_t)f->c[i] * Q + (1u << (d - 1))) >> d);
}

/* ---------------------------------------------------------------------- */
/* Sampling (Algorithms 7 and 8)                                           */

/*
 * SampleNTT(rho || j || i). OpenSSL 3.0 cannot squeeze a XOF twice, so
 * the stream is taken whole: 3 blocks of SHAKE-128 (504 bytes; 256
 * coefficients need 473 on average, and 3 blocks fall short for about 1%
 * of seeds), and when they do not suffice the prefix-stable output is
 * regenerated twice as long. Depends on public data only. Output in
 * [0, q).
 */
static int sample_ntt(poly *a, const uint8_t rho[32], uint8_t j, uint8_t i)
{
    uint8_t ji[2] = {j, i};
    uint8_t buf[168 * 24];
    size_t len = 168 * 3;

    for (;;) {
        unsigned n = 0;
        size_t pos = 0;
        int rc = hash3(&md_shake128, 1, buf, len, rho, 32, ji, 2, NULL, 0);
        if (rc != SOTTO_OK)
            return rc;
        while (n < N && pos + 3 <= len) {
            uint16_t d1 = (uint16_t)(buf[pos] | ((buf[pos + 1] & 0x0f) << 8));
            uint16_t d2 = (uint16_t)((buf[pos + 1] >> 4) | (buf[pos + 2] << 4));
            pos += 3;
            if (d1 < Q)
                a->c[n++] = (int16_t)d1;
            if (d2 < Q && n < N)
                a->c[n++] = (int16_t)d2;
        }
        if (n == N)
            return SOTTO_OK;
        if (len == sizeof buf)
            return SOTTO_ERR_CRYPTO; /* probability far below 2^-200 */
        len *= 2;
    }
}

/* Â[i][j] = SampleNTT(rho || j || i). */
static int gen_matrix(poly a[KMAX][KMAX], const params *p, const uint8_t rho[32])
{
    for (unsigned i = 0; i < p->k; i++) {
        for (unsigned j = 0; j < p->k; j++) {
            int rc = sample_ntt(&a[i][j], rho, (uint8_t)j, (uint8_t)i);
            if (rc != SOTTO_OK)
                return rc;
        }
    }
    return SOTTO_OK;
}

/*
 * SamplePolyCBD_eta(PRF_eta(s, b)) = CBD of SHAKE-256(s || b, 64 eta), eta
 * 2 or 3. Output in [-eta, eta] (the signed representative).
 */
static int sample_cbd(poly *f, const uint8_t s[32], uint8_t b, unsigned eta)
{
    uint8_t buf[64 * 3];
    uint8_t bb = b;
    int rc = hash3(&md_shake256, 1, buf, 64 * eta, s, 32, &bb, 1, NULL, 0);
    if (rc != SOTTO_OK)
        return rc;
    if (eta == 2) {
        /* 4 coefficients from each 16 bits: x = b0 + b1, y = b2 + b3 */
        for (unsigned i = 0; i < N / 8; i++) {
            uint32_t t = (uint32_t)buf[4 * i] | (uint32_t)buf[4 * i + 1] << 8 |
                         (uint32_t)buf[4 * i + 2] << 16 | (uint32_t)buf[4 * i + 3] << 24;
            uint32_t d = (t & 0x55555555u) + ((t >> 1) & 0x55555555u);
            for (unsigned k = 0; k < 8; k++) {
                int16_t x = (int16_t)((d >> (4 * k)) & 3u);
                int16_t y = (int16_t)((d >> (4 * k + 2)) & 3u);
                f->c[8 * i + k] = (int16_t)(x - y);
            }
        }
    } else {
        for (unsigned i = 0; i < N; i++) {
            int16_t x = 0, y = 0;
            for (unsigned k = 0; k < eta; k++) {
                unsigned bx = 2 * i * eta + k, by = 2 * i * eta + eta + k;
                x = (int16_t)(x + ((buf[bx >> 3] >> (bx & 7)) & 1));
                y = (int16_t)(y + ((buf[by >> 3] >> (by & 7)) & 1));
            }
            f->c[i] = (int16_t)(x - y);
        }
    }
    sodium_memzero(buf, sizeof buf);
    return SOTTO_OK;
}

/* ---------------------------------------------------------------------- */
/* K-PKE (Algorithms 13-15)                                                */

typedef struct pke_work {
    poly a[KMAX][KMAX];
    poly s[KMAX], e[KMAX], t[KMAX];
    poly v, w;
} pke_work;

static void wipe_work(pke_work *w)
{
    sodium_memzero(w, sizeof *w);
}

/* K-PKE.KeyGen: ek_pke (384k + 32) and dk_pke (384k) from the 32-byte d. */
static int pke_keygen(const params *p, uint8_t *ek, uint8_t *dk, const uint8_t d[32])
{
    pke_work w;
    uint8_t g[64];
    uint8_t kbyte = (uint8_t)p->k;
    const uint8_t *rho = g, *sigma = g + 32;
    uint8_t nonce = 0;
    int rc;

    rc = hash_g(g, d, 32, &kbyte, p->round3 ? 0 : 1);
    CT_DECLASSIFY(g, 32); /* rho is public: it is part of ek */
    if (rc == SOTTO_OK)
        rc = gen_matrix(w.a, p, rho);
    for (unsigned i = 0; rc == SOTTO_OK && i < p->k; i++)
        rc = sample_cbd(&w.s[i], sigma, nonce++, p->eta1);
    for (unsigned i = 0; rc == SOTTO_OK && i < p->k; i++)
        rc = sample_cbd(&w.e[i], sigma, nonce++, p->eta1);
    if (rc == SOTTO_OK) {
        for (unsigned i = 0; i < p->k; i++) {
            ntt(&w.s[i]);
            ntt(&w.e[i]);
        }
        for (unsigned i = 0; i < p->k; i++) {
            /* t^ = Â s^ + e^: the products carry R^-1, removed by fqmul(., R^2) */
            memset(&w.t[i], 0, sizeof w.t[i]);
            for (unsigned j = 0; j < p->k; j++)
                ntt_mul_acc(&w.t[i], &w.a[i][j], &w.s[j]);
            for (unsigned n = 0; n < N; n++)
                w.t[i].c[n] = fqmul(barrett_reduce(w.t[i].c[n]), MONT_R2);
            poly_add(&w.t[i], &w.e[i]);
            poly_normalize(&w.t[i]);
            poly_normalize(&w.s[i]);
            byte_encode(ek + POLY_BYTES * i, &w.t[i], 12);
            byte_encode(dk + POLY_BYTES * i, &w.s[i], 12);
        }
        memcpy(ek + POLY_BYTES * p->k, rho, 32);
    }
    sodium_memzero(g, sizeof g);
    wipe_work(&w);
    return rc;
}

/* K-PKE.Encrypt(ek_pke, m, r) into c. ek must have passed the modulus check. */
static int pke_encrypt(const params *p, uint8_t *c, const uint8_t *ek, const uint8_t m[32],
                       const uint8_t r[32])
{
    pke_work w; /* s = y, e = e1, t = t^ */
    poly *y = w.s, *e1 = w.e, *t = w.t;
    poly e2;
    uint8_t nonce = 0;
    int rc;

    rc = gen_matrix(w.a, p, ek + POLY_BYTES * p->k);
    for (unsigned i = 0; rc == SOTTO_OK && i < p->k; i++)
        rc = sample_cbd(&y[i], r, nonce++, p->eta1);
    for (unsigned i = 0; rc == SOTTO_OK && i < p->k; i++)
        rc = sample_cbd(&e1[i], r, nonce++, p->eta2);
    if (rc == SOTTO_OK)
        rc = sample_cbd(&e2, r, nonce, p->eta2);
    if (rc == SOTTO_OK) {
        for (unsigned i = 0; i < p->k; i++) {
            byte_decode(&t[i], ek + POLY_BYTES * i, 12);
            ntt(&y[i]);
        }
        /* u = NTT^-1(Â^T y^) + e1 */
        for (unsigned i = 0; i < p->k; i++) {
            memset(&w.w, 0, sizeof w.w);
            for (unsigned j = 0; j < p->k; j++)
                ntt_mul_acc(&w.w, &w.a[j][i], &y[j]);
            poly_reduce(&w.w);
            ntt_inv(&w.w);
            poly_add(&w.w, &e1[i]);
            poly_normalize(&w.w);
            compress(&w.w, p->du);
            byte_encode(c + 32 * p->du * i, &w.w, p->du);
        }
        /* v = NTT^-1(t^T y^) + e2 + Decompress1(m) */
        memset(&w.v, 0, sizeof w.v);
        for (unsigned j = 0; j < p->k; j++)
            ntt_mul_acc(&w.v, &t[j], &y[j]);
        poly_reduce(&w.v);
        ntt_inv(&w.v);
        poly_add(&w.v, &e2);
        byte_decode(&w.w, m, 1);
        decompress(&w.w, 1);
        poly_add(&w.v, &w.w);
        poly_normalize(&w.v);
        compress(&w.v, p->dv);
        byte_encode(c + 32 * p->du * p->k, &w.v, p->dv);
    }
    sodium_memzero(&e2, sizeof e2);
    wipe_work(&w);
    return rc;
}

/* K-PKE.Decrypt(dk_pke, c) into m. */
static void pke_decrypt(const params *p, uint8_t m[32], const uint8_t *dk, const uint8_t *c)
{
    poly s, u, w, acc;

    memset(&acc, 0, sizeof acc);
    for (unsigned i = 0; i < p->k; i++) {
        byte_decode(&u, c + 32 * p->du * i, p->du);
        decompress(&u, p->du);
        ntt(&u);
        decode12_secret(&s, dk + POLY_BYTES * i);
        ntt_mul_acc(&acc, &s, &u);
    }
    poly_reduce(&acc);
    ntt_inv(&acc);
    byte_decode(&w, c + 32 * p->du * p->k, p->dv);
    decompress(&w, p->dv);
    for (unsigned j = 0; j < N; j++)
        w.c[j] = (int16_t)(w.c[j] - acc.c[j]);
    poly_normalize(&w);
    compress(&w, 1);
    byte_encode(m, &w, 1);
    sodium_memzero(&s, sizeof s);
    sodium_memzero(&u, sizeof u);
    sodium_memzero(&w, sizeof w);
    sodium_memzero(&acc, sizeof acc);
}

/* ---------------------------------------------------------------------- */
/* The KEM (Algorithms 16-21; round 3 Algorithms 7-9)                      */

int sotto_kem_keygen_from_seed(sotto_kem_alg alg, uint8_t *ek, size_t ek_cap, uint8_t *dk,
                               size_t dk_cap, const uint8_t seed[SOTTO_KEM_SEED_BYTES])
{
    const params *p = get_params(alg);
    size_t ekl, dkl;
    int rc;

    if (p == NULL || ek == NULL || dk == NULL || seed == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ekl = ek_bytes(p);
    dkl = dk_bytes(p);
    if (ek_cap < ekl || dk_cap < dkl)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    (void)pthread_once(&zeta_once, zeta_init);

    /* dk = dk_pke || ek || H(ek) || z */
    rc = pke_keygen(p, ek, dk, seed);
    if (rc == SOTTO_OK) {
        memcpy(dk + POLY_BYTES * p->k, ek, ekl);
        rc = hash_h(dk + POLY_BYTES * p->k + ekl, ek, ekl);
        memcpy(dk + dkl - 32, seed + 32, 32);
    }
    if (rc != SOTTO_OK) {
        sodium_memzero(ek, ekl);
        sodium_memzero(dk, dkl);
    }
    return rc;
}

int sotto_kem_keygen(sotto_kem_alg alg, uint8_t *ek, size_t ek_cap, uint8_t *dk, size_t dk_cap)
{
    uint8_t seed[SOTTO_KEM_SEED_BYTES];
    int rc;

    sotto_random_buf(seed, sizeof seed);
    rc = sotto_kem_keygen_from_seed(alg, ek, ek_cap, dk, dk_cap, seed);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int sotto_kem_check_public_key(sotto_kem_alg alg, const uint8_t *ek, size_t ek_len)
{
    const params *p = get_params(alg);

    if (p == NULL || ek == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (ek_len != ek_bytes(p) || decode12_unreduced(ek, p->k))
        return SOTTO_ERR_INVALID_KEY;
    return SOTTO_OK;
}

int sotto_kem_check_secret_key(sotto_kem_alg alg, const uint8_t *dk, size_t dk_len)
{
    const params *p = get_params(alg);
    const uint8_t *ek;
    uint8_t h[32];
    size_t ekl;
    int rc;

    if (p == NULL || dk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (dk_len != dk_bytes(p))
        return SOTTO_ERR_INVALID_KEY;
    ekl = ek_bytes(p);
    ek = dk + POLY_BYTES * p->k;
    rc = hash_h(h, ek, ekl);
    if (rc != SOTTO_OK)
        return rc;
    /* ek and H(ek) are public; sodium_memcmp anyway (scripts/check-banned.sh). */
    if (sodium_memcmp(h, ek + ekl, 32) != 0 || decode12_unreduced(ek, p->k))
        return SOTTO_ERR_INVALID_KEY;
    return SOTTO_OK;
}

int sotto_kem_encaps_deterministic(sotto_kem_alg alg, uint8_t *ct, size_t ct_cap,
                                   uint8_t ss[SOTTO_KEM_SHARED_BYTES], const uint8_t *ek,
                                   size_t ek_len, const uint8_t m_in[SOTTO_KEM_MSG_BYTES])
{
    const params *p = get_params(alg);
    uint8_t m[32], hek[32], kr[64];
    size_t ctl;
    int rc;

    if (p == NULL || ct == NULL || ss == NULL || ek == NULL || m_in == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ctl = ct_bytes(p);
    if (ct_cap < ctl) {
        sodium_memzero(ss, SOTTO_KEM_SHARED_BYTES);
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    }
    rc = sotto_kem_check_public_key(alg, ek, ek_len);
    if (rc != SOTTO_OK) {
        sodium_memzero(ct, ctl);
        sodium_memzero(ss, SOTTO_KEM_SHARED_BYTES);
        return rc;
    }
    (void)pthread_once(&zeta_once, zeta_init);

    if (p->round3)
        rc = hash_h(m, m_in, 32); /* round 3: m <- H(m), "do not send system RNG output" */
    else
        memcpy(m, m_in, 32);
    if (rc == SOTTO_OK)
        rc = hash_h(hek, ek, ek_len);
    if (rc == SOTTO_OK)
        rc = hash_g(kr, m, 32, hek, 32); /* (K, r) = G(m || H(ek)) */
    if (rc == SOTTO_OK)
        rc = pke_encrypt(p, ct, ek, m, kr + 32);
    if (rc == SOTTO_OK) {
        if (p->round3) {
            uint8_t hc[32];
            rc = hash_h(hc, ct, ctl);
            if (rc == SOTTO_OK)
                rc = hash_shake256_32(ss, kr, 32, hc, 32); /* K = KDF(K' || H(c)) */
        } else {
            memcpy(ss, kr, 32);
        }
    }
    if (rc != SOTTO_OK) {
        sodium_memzero(ct, ctl);
        sodium_memzero(ss, SOTTO_KEM_SHARED_BYTES);
    }
    sodium_memzero(m, sizeof m);
    sodium_memzero(kr, sizeof kr);
    return rc;
}

int sotto_kem_encaps(sotto_kem_alg alg, uint8_t *ct, size_t ct_cap,
                     uint8_t ss[SOTTO_KEM_SHARED_BYTES], const uint8_t *ek, size_t ek_len)
{
    uint8_t m[SOTTO_KEM_MSG_BYTES];
    int rc;

    sotto_random_buf(m, sizeof m);
    rc = sotto_kem_encaps_deterministic(alg, ct, ct_cap, ss, ek, ek_len, m);
    sodium_memzero(m, sizeof m);
    return rc;
}

/* 0xff if a == b (n bytes), else 0x00, without a data-dependent branch. */
static uint8_t ct_eq_mask(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (uint32_t)(a[i] ^ b[i]);
    return (uint8_t)(0u - ((acc - 1u) >> 31));
}

int sotto_kem_decaps(sotto_kem_alg alg, uint8_t ss[SOTTO_KEM_SHARED_BYTES], const uint8_t *ct,
                     size_t ct_len, const uint8_t *dk, size_t dk_len)
{
    const params *p = get_params(alg);
    uint8_t m[32], kr[64], kbar[32], ct2[SOTTO_KEM_MAX_CIPHERTEXT_BYTES];
    const uint8_t *ek, *h, *z;
    size_t ekl, ctl;
    uint8_t eq;
    int rc;

    if (p == NULL || ss == NULL || ct == NULL || dk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ctl = ct_bytes(p);
    if (ct_len != ctl) {
        sodium_memzero(ss, SOTTO_KEM_SHARED_BYTES);
        return SOTTO_ERR_INVALID_MESSAGE;
    }
    rc = sotto_kem_check_secret_key(alg, dk, dk_len);
    if (rc != SOTTO_OK) {
        sodium_memzero(ss, SOTTO_KEM_SHARED_BYTES);
        return rc;
    }
    (void)pthread_once(&zeta_once, zeta_init);
    ekl = ek_bytes(p);
    ek = dk + POLY_BYTES * p->k;
    h = ek + ekl;
    z = h + 32;

    pke_decrypt(p, m, dk, ct);
    rc = hash_g(kr, m, 32, h, 32); /* (K', r') = G(m' || h) */
    if (rc == SOTTO_OK)
        rc = pke_encrypt(p, ct2, ek, m, kr + 32);
    if (rc == SOTTO_OK) {
        eq = ct_eq_mask(ct, ct2, ctl);
        if (p->round3) {
            /* K = KDF((c == c' ? K' : z) || H(c)) */
            uint8_t hc[32];
            for (size_t i = 0; i < 32; i++)
                kbar[i] = (uint8_t)((kr[i] & eq) | (z[i] & (uint8_t)~eq));
            rc = hash_h(hc, ct, ctl);
            if (rc == SOTTO_OK)
                rc = hash_shake256_32(ss, kbar, 32, hc, 32);
        } else {
            /* K = c == c' ? K' : J(z || c) */
            rc = hash_shake256_32(kbar, z, 32, ct, ctl);
            for (size_t i = 0; i < 32; i++)
                ss[i] = (uint8_t)((kr[i] & eq) | (kbar[i] & (uint8_t)~eq));
        }
    }
    if (rc != SOTTO_OK)
        sodium_memzero(ss, SOTTO_KEM_SHARED_BYTES);
    sodium_memzero(m, sizeof m);
    sodium_memzero(kr, sizeof kr);
    sodium_memzero(kbar, sizeof kbar);
    sodium_memzero(ct2, sizeof ct2);
    return rc;
}
