/*
 * lib/crypto/crypto.c -- HMAC-SHA256 (RFC 2104) and HKDF-SHA256 (RFC 5869)
 * on OpenSSL's EVP SHA-256, AES-256-CBC with PKCS#7 (OpenSSL EVP) and the
 * RNG with its test hook.
 *
 * Spec: shared/specs/signal-protocol.md sections 2.1, 2.3 and 9.
 *
 * AES: the cipher implementation is fetched once per process and each
 * thread keeps one EVP_CIPHER_CTX (freed by a pthread key destructor when
 * the thread exits), so the hot path does no allocation. After every call
 * the context is re-keyed with an all-zero key, so no key schedule of a
 * real message key stays behind in it.
 */
#include "crypto/crypto.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

/* ---------------------------------------------------------------------- */
/* Process setup                                                            */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static pthread_key_t aes_ctx_key;
static pthread_key_t md_ctx_key;
static EVP_CIPHER *aes_cipher; /* fetched once, lives for the process */
static EVP_MD *sha256_md;      /* fetched once, lives for the process */
static int global_init_ok;

static void aes_ctx_destroy(void *p)
{
    EVP_CIPHER_CTX_free(p);
}

static void md_ctx_destroy(void *p)
{
    EVP_MD_CTX_free(p);
}

static void global_init(void)
{
    if (pthread_key_create(&aes_ctx_key, aes_ctx_destroy) != 0)
        return;
    if (pthread_key_create(&md_ctx_key, md_ctx_destroy) != 0)
        return;
    aes_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (aes_cipher == NULL || sha256_md == NULL)
        return;
    global_init_ok = 1;
}

int sotto_crypto_global_init(void)
{
    if (pthread_once(&global_once, global_init) != 0 || !global_init_ok)
        return SOTTO_ERR_CRYPTO;
    return SOTTO_OK;
}

/* ---------------------------------------------------------------------- */
/* HMAC-SHA256 and HKDF-SHA256                                              */

/*
 * HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m)) (RFC 2104) on
 * OpenSSL's SHA-256. Each thread keeps one EVP_MD_CTX (freed by a pthread
 * key destructor). There is no precomputed ipad/opad state to copy: in
 * OpenSSL 3.0 EVP_MD_CTX_copy_ex() frees and re-allocates the provider
 * context on every copy, which costs more than the one SHA-256 compression
 * it would save (docs/protocol.md "Primitives").
 */
#define HMAC_BLOCK 64

/* The calling thread's reusable digest context, or NULL. */
static EVP_MD_CTX *md_thread_ctx(void)
{
    EVP_MD_CTX *ctx;

    if (sotto_crypto_global_init() != SOTTO_OK)
        return NULL;
    ctx = pthread_getspecific(md_ctx_key);
    if (ctx != NULL)
        return ctx;
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (pthread_setspecific(md_ctx_key, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* out = SHA-256(pad || parts...), the pad block being k0 ^ (0x36 or 0x5c). */
static int hmac_hash(EVP_MD_CTX *ctx, const uint8_t k0[HMAC_BLOCK], uint8_t xor_byte,
                     const uint8_t *const *parts, const size_t *lens, size_t n,
                     uint8_t out[SOTTO_HMAC_SHA256_BYTES])
{
    uint8_t pad[HMAC_BLOCK];
    unsigned int out_len = 0;
    int ok;

    for (size_t i = 0; i < HMAC_BLOCK; i++)
        pad[i] = (uint8_t)(k0[i] ^ xor_byte);
    ok = EVP_DigestInit_ex2(ctx, sha256_md, NULL) == 1 &&
         EVP_DigestUpdate(ctx, pad, sizeof pad) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        if (lens[i] != 0)
            ok = EVP_DigestUpdate(ctx, parts[i], lens[i]) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, out, &out_len) == 1 && out_len == SOTTO_HMAC_SHA256_BYTES;
    sodium_memzero(pad, sizeof pad);
    return ok ? SOTTO_OK : SOTTO_ERR_CRYPTO;
}

int sotto_hmac_key_init(sotto_hmac_key *k, const uint8_t *key, size_t key_len)
{
    EVP_MD_CTX *ctx;
    unsigned int len = 0;
    int rc = SOTTO_ERR_INVALID_ARGUMENT;

    if (k == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(k->k0, 0, sizeof k->k0);
    if (key == NULL && key_len != 0)
        goto out;
    if (key_len <= HMAC_BLOCK) {
        if (key_len != 0)
            memcpy(k->k0, key, key_len);
        return SOTTO_OK;
    }
    /* Keys longer than the block are replaced by their SHA-256. */
    rc = SOTTO_ERR_CRYPTO;
    ctx = md_thread_ctx();
    if (ctx == NULL)
        goto out;
    if (EVP_DigestInit_ex2(ctx, sha256_md, NULL) == 1 && EVP_DigestUpdate(ctx, key, key_len) == 1 &&
        EVP_DigestFinal_ex(ctx, k->k0, &len) == 1 && len == SOTTO_HMAC_SHA256_BYTES)
        rc = SOTTO_OK;
    /* Frees (and clears) OpenSSL's context, which holds the hashed key. */
    EVP_MD_CTX_reset(ctx);
out:
    if (rc != SOTTO_OK)
        sotto_hmac_key_wipe(k);
    return rc;
}

int sotto_hmac_key_mac(const sotto_hmac_key *k, const uint8_t *const *parts, const size_t *lens,
                       size_t n, uint8_t out[SOTTO_HMAC_SHA256_BYTES])
{
    const uint8_t *outer_parts[1];
    const size_t outer_lens[1] = {SOTTO_HMAC_SHA256_BYTES};
    uint8_t inner[SOTTO_HMAC_SHA256_BYTES];
    EVP_MD_CTX *ctx;
    int rc;

    if (k == NULL || out == NULL || (n != 0 && (parts == NULL || lens == NULL)))
        return SOTTO_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++) {
        if (parts[i] == NULL && lens[i] != 0)
            return SOTTO_ERR_INVALID_ARGUMENT;
    }
    ctx = md_thread_ctx();
    if (ctx == NULL) {
        rc = SOTTO_ERR_CRYPTO;
        goto out;
    }
    /* Inner hash first: `out` may alias a part. */
    rc = hmac_hash(ctx, k->k0, 0x36, parts, lens, n, inner);
    if (rc == SOTTO_OK) {
        outer_parts[0] = inner;
        rc = hmac_hash(ctx, k->k0, 0x5c, outer_parts, outer_lens, 1, out);
    }
    /* OpenSSL's finished context still holds the MAC (often the next chain
     * key). It is not reset here: the next EVP_DigestInit_ex2 on this thread
     * frees it (OPENSSL_clear_free) and sotto_hmac_key_wipe(), which every
     * user of a keyed state calls, resets it. So a chain step or an HKDF
     * pays one reset for all its MACs instead of one per MAC. On failure it
     * is reset at once. */
    if (rc != SOTTO_OK)
        EVP_MD_CTX_reset(ctx);
out:
    if (rc != SOTTO_OK)
        sodium_memzero(out, SOTTO_HMAC_SHA256_BYTES);
    sodium_memzero(inner, sizeof inner);
    return rc;
}

void sotto_hmac_key_wipe(sotto_hmac_key *k)
{
    EVP_MD_CTX *ctx;

    if (k != NULL)
        sodium_memzero(k, sizeof *k);
    /* Free (and clear) the digest state the last MAC left in this thread's
     * context (see sotto_hmac_key_mac). No-op when there is none. */
    if (sotto_crypto_global_init() == SOTTO_OK && (ctx = pthread_getspecific(md_ctx_key)) != NULL)
        EVP_MD_CTX_reset(ctx);
}

int sotto_sha256(uint8_t out[32], const uint8_t *p, size_t n)
{
    EVP_MD_CTX *ctx;
    unsigned int out_len = 0;

    if (out == NULL || (p == NULL && n != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    ctx = md_thread_ctx();
    if (ctx == NULL || EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 ||
        (n != 0 && EVP_DigestUpdate(ctx, p, n) != 1) ||
        EVP_DigestFinal_ex(ctx, out, &out_len) != 1 || out_len != 32)
        return SOTTO_ERR_CRYPTO;
    return SOTTO_OK;
}

int sotto_hmac_sha256(uint8_t out[SOTTO_HMAC_SHA256_BYTES], const uint8_t *key, size_t key_len,
                      const uint8_t *msg, size_t msg_len)
{
    const uint8_t *parts[1] = {msg};
    const size_t lens[1] = {msg_len};
    sotto_hmac_key k;
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_hmac_key_init(&k, key, key_len);
    if (rc == SOTTO_OK)
        rc = sotto_hmac_key_mac(&k, parts, lens, 1, out);
    sotto_hmac_key_wipe(&k);
    return rc;
}

int sotto_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len)
{
    static const uint8_t zero_salt[SOTTO_HMAC_SHA256_BYTES];
    sotto_hmac_key k;
    uint8_t prk[SOTTO_HMAC_SHA256_BYTES];
    uint8_t t[SOTTO_HMAC_SHA256_BYTES];
    size_t done = 0;
    size_t take;
    uint8_t counter;
    int rc = SOTTO_ERR_INVALID_ARGUMENT;

    memset(&k, 0, sizeof k);
    if (out == NULL || out_len == 0 || out_len > SOTTO_HKDF_MAX_OUTPUT ||
        (salt == NULL && salt_len != 0) || (ikm == NULL && ikm_len != 0) ||
        (info == NULL && info_len != 0))
        goto out;
    if (salt == NULL || salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof zero_salt;
    }
    /* Extract: PRK = HMAC(salt, IKM). */
    {
        const uint8_t *p[1] = {ikm};
        const size_t l[1] = {ikm_len};

        if ((rc = sotto_hmac_key_init(&k, salt, salt_len)) != SOTTO_OK ||
            (rc = sotto_hmac_key_mac(&k, p, l, 1, prk)) != SOTTO_OK)
            goto out;
    }
    /* Expand: T(i) = HMAC(PRK, T(i-1) || info || i), i from 0x01. */
    if ((rc = sotto_hmac_key_init(&k, prk, sizeof prk)) != SOTTO_OK)
        goto out;
    for (counter = 1; done < out_len; counter++) {
        const uint8_t *p[3] = {t, info, &counter};
        const size_t l[3] = {counter > 1 ? sizeof t : 0, info_len, 1};

        if ((rc = sotto_hmac_key_mac(&k, p, l, 3, t)) != SOTTO_OK)
            goto out;
        take = out_len - done < sizeof t ? out_len - done : sizeof t;
        memcpy(out + done, t, take);
        done += take;
    }
    rc = SOTTO_OK;
out:
    if (rc != SOTTO_OK && out != NULL && out_len <= SOTTO_HKDF_MAX_OUTPUT)
        sodium_memzero(out, out_len);
    sotto_hmac_key_wipe(&k);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(t, sizeof t);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* AES-256-CBC                                                              */

/* The calling thread's reusable context (created on first use), or NULL. */
static EVP_CIPHER_CTX *aes_thread_ctx(void)
{
    static const uint8_t zero[SOTTO_AES256_KEY_BYTES];
    EVP_CIPHER_CTX *ctx;

    if (sotto_crypto_global_init() != SOTTO_OK)
        return NULL;
    ctx = pthread_getspecific(aes_ctx_key);
    if (ctx != NULL)
        return ctx;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    /* Bind the cipher once; later inits pass cipher NULL, which keeps the
     * provider context instead of freeing and reallocating it. */
    if (EVP_CipherInit_ex2(ctx, aes_cipher, zero, zero, 1, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 1) != 1 || pthread_setspecific(aes_ctx_key, ctx) != 0) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int aes_cbc(int enc, uint8_t *out, size_t *out_len,
                   const uint8_t key[SOTTO_AES256_KEY_BYTES],
                   const uint8_t iv[SOTTO_AES_BLOCK_BYTES], const uint8_t *in, size_t in_len)
{
    static const uint8_t zero_key[SOTTO_AES256_KEY_BYTES];
    EVP_CIPHER_CTX *ctx;
    int n1 = 0;
    int n2 = 0;
    int rc;

    if (out == NULL || out_len == NULL || key == NULL || iv == NULL ||
        (in == NULL && in_len != 0) || in_len > (size_t)INT32_MAX - 32)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    if (!enc && (in_len == 0 || in_len % SOTTO_AES_BLOCK_BYTES != 0))
        return SOTTO_ERR_INVALID_MESSAGE;
    ctx = aes_thread_ctx();
    if (ctx == NULL)
        return SOTTO_ERR_CRYPTO;

    rc = SOTTO_ERR_CRYPTO;
    /* PKCS#7 padding was switched on once when the context was made; a
     * re-init keeps it (and nothing here turns it off). */
    if (EVP_CipherInit_ex2(ctx, NULL, key, iv, enc, NULL) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, out, &n1, in, (int)in_len) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + n1, &n2) != 1) {
        /* Only decryption can fail here, on bad padding. */
        rc = enc ? SOTTO_ERR_CRYPTO : SOTTO_ERR_INVALID_MESSAGE;
        goto out;
    }
    *out_len = (size_t)n1 + (size_t)n2;
    rc = SOTTO_OK;
out:
    if (rc != SOTTO_OK) {
        /* No partial plaintext (or ciphertext) leaves on failure. */
        sodium_memzero(out, enc ? in_len + SOTTO_AES_BLOCK_BYTES : in_len);
    }
    /* Overwrite the key schedule left in the reused context (no allocation). */
    if (EVP_CipherInit_ex2(ctx, NULL, zero_key, zero_key, 1, NULL) != 1)
        rc = SOTTO_ERR_CRYPTO;
    return rc;
}

int sotto_aes256_cbc_encrypt(uint8_t *out, size_t *out_len,
                             const uint8_t key[SOTTO_AES256_KEY_BYTES],
                             const uint8_t iv[SOTTO_AES_BLOCK_BYTES], const uint8_t *pt,
                             size_t pt_len)
{
    return aes_cbc(1, out, out_len, key, iv, pt, pt_len);
}

int sotto_aes256_cbc_decrypt(uint8_t *out, size_t *out_len,
                             const uint8_t key[SOTTO_AES256_KEY_BYTES],
                             const uint8_t iv[SOTTO_AES_BLOCK_BYTES], const uint8_t *ct,
                             size_t ct_len)
{
    return aes_cbc(0, out, out_len, key, iv, ct, ct_len);
}

/* ---------------------------------------------------------------------- */
/* Randomness                                                               */

static sotto_random_fn test_random_fn;
static void *test_random_ctx;

void sotto_test_set_random(sotto_random_fn fn, void *ctx)
{
    test_random_fn = fn;
    test_random_ctx = ctx;
}

void sotto_random_buf(void *p, size_t n)
{
    if (n == 0)
        return;
    if (test_random_fn != NULL)
        test_random_fn(test_random_ctx, p, n);
    else
        randombytes_buf(p, n);
}

uint32_t sotto_random_u32(void)
{
    uint8_t b[4];
    uint32_t v;

    sotto_random_buf(b, sizeof b);
    v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    sodium_memzero(b, sizeof b);
    return v;
}
