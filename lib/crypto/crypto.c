/*
 * lib/crypto/crypto.c -- HMAC-SHA256, HKDF-SHA256 (RFC 5869), AES-256-CBC
 * with PKCS#7 (OpenSSL EVP) and the RNG with its test hook.
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
/* HMAC-SHA256 and HKDF-SHA256                                              */

int sotto_hmac_sha256(uint8_t out[SOTTO_HMAC_SHA256_BYTES],
                      const uint8_t *key, size_t key_len,
                      const uint8_t *msg, size_t msg_len)
{
    static const uint8_t empty[1];
    crypto_auth_hmacsha256_state st;

    if (out == NULL || (key == NULL && key_len != 0) || (msg == NULL && msg_len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    /* libsodium accepts any key length (keys over 64 bytes are hashed),
     * but wants a non-NULL pointer even for an empty key. */
    crypto_auth_hmacsha256_init(&st, key != NULL ? key : empty, key_len);
    crypto_auth_hmacsha256_update(&st, msg, msg_len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
    return SOTTO_OK;
}

int sotto_hkdf_sha256(uint8_t *out, size_t out_len,
                      const uint8_t *salt, size_t salt_len,
                      const uint8_t *ikm, size_t ikm_len,
                      const uint8_t *info, size_t info_len)
{
    static const uint8_t zero_salt[32];
    crypto_auth_hmacsha256_state st;
    uint8_t prk[32];
    uint8_t t[32];
    size_t done = 0;
    size_t take;
    uint8_t counter;
    int rc = SOTTO_ERR_INVALID_ARGUMENT;

    if (out == NULL || out_len == 0 || out_len > SOTTO_HKDF_MAX_OUTPUT ||
        (salt == NULL && salt_len != 0) || (ikm == NULL && ikm_len != 0) ||
        (info == NULL && info_len != 0))
        goto out;
    if (salt == NULL || salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof zero_salt;
    }
    /* Extract: PRK = HMAC(salt, IKM). */
    crypto_auth_hmacsha256_init(&st, salt, salt_len);
    crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
    crypto_auth_hmacsha256_final(&st, prk);

    /* Expand: T(i) = HMAC(PRK, T(i-1) || info || i), i from 0x01. */
    for (counter = 1; done < out_len; counter++) {
        crypto_auth_hmacsha256_init(&st, prk, sizeof prk);
        if (counter > 1)
            crypto_auth_hmacsha256_update(&st, t, sizeof t);
        crypto_auth_hmacsha256_update(&st, info, info_len);
        crypto_auth_hmacsha256_update(&st, &counter, 1);
        crypto_auth_hmacsha256_final(&st, t);
        take = out_len - done < sizeof t ? out_len - done : sizeof t;
        memcpy(out + done, t, take);
        done += take;
    }
    rc = SOTTO_OK;
out:
    sodium_memzero(&st, sizeof st);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(t, sizeof t);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* AES-256-CBC                                                              */

static pthread_once_t aes_once = PTHREAD_ONCE_INIT;
static pthread_key_t aes_ctx_key;
static EVP_CIPHER *aes_cipher;   /* fetched once, lives for the process */
static int aes_init_ok;

static void aes_ctx_destroy(void *p)
{
    EVP_CIPHER_CTX_free(p);
}

static void aes_global_init(void)
{
    if (pthread_key_create(&aes_ctx_key, aes_ctx_destroy) != 0)
        return;
    aes_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (aes_cipher == NULL)
        return;
    aes_init_ok = 1;
}

int sotto_crypto_global_init(void)
{
    if (pthread_once(&aes_once, aes_global_init) != 0 || !aes_init_ok)
        return SOTTO_ERR_CRYPTO;
    return SOTTO_OK;
}

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
        pthread_setspecific(aes_ctx_key, ctx) != 0) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int aes_cbc(int enc, uint8_t *out, size_t *out_len,
                   const uint8_t key[SOTTO_AES256_KEY_BYTES],
                   const uint8_t iv[SOTTO_AES_BLOCK_BYTES],
                   const uint8_t *in, size_t in_len)
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
    if (EVP_CipherInit_ex2(ctx, NULL, key, iv, enc, NULL) != 1)
        goto out;
    if (EVP_CIPHER_CTX_set_padding(ctx, 1) != 1)
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
                             const uint8_t iv[SOTTO_AES_BLOCK_BYTES],
                             const uint8_t *pt, size_t pt_len)
{
    return aes_cbc(1, out, out_len, key, iv, pt, pt_len);
}

int sotto_aes256_cbc_decrypt(uint8_t *out, size_t *out_len,
                             const uint8_t key[SOTTO_AES256_KEY_BYTES],
                             const uint8_t iv[SOTTO_AES_BLOCK_BYTES],
                             const uint8_t *ct, size_t ct_len)
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
