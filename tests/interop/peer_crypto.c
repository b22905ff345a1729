/*
 * tests/interop/peer_crypto.c -- the crypto provider and locks that
 * libsignal-protocol-c needs from its application (spec section 5.1), on
 * OpenSSL 3 libcrypto.
 *
 *  - HMAC-SHA256 through EVP_MAC. OpenSSL 3 keeps the previous key when a
 *    context is initialised with an empty key, so an empty key is replaced
 *    by one zero byte: HMAC pads the key with zeros to the block size, so
 *    both give the same MAC (RFC 2104 section 2).
 *  - SHA-512 through EVP_MD; `final` re-initialises the context, as the
 *    fingerprint loop reuses it.
 *  - AES-CBC with PKCS#7 padding and AES-CTR without padding, key size
 *    chosen by key length.
 *  - Random bytes from RAND_bytes.
 *  - Recursive locks (the library re-enters its lock).
 *  - HMAC and AES contexts are reused (per thread) rather than allocated
 *    per call; peer_crypto_thread_cleanup() frees them.
 *
 * HMAC and SHA-512 `final` allocate their output buffer; HKDF calls cleanup
 * after a failed init, so cleanup accepts NULL.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "peer.h"

static pthread_mutex_t peer_lock_mutex;
static pthread_once_t peer_once = PTHREAD_ONCE_INIT;
static EVP_MAC *peer_hmac;
static EVP_MD *peer_sha512;
static EVP_CIPHER *peer_cbc[3]; /* AES-128/192/256-CBC */
static EVP_CIPHER *peer_ctr[3]; /* AES-128/192/256-CTR */
static int peer_init_ok;

static void peer_global_init(void)
{
    pthread_mutexattr_t attr;
    static const char *cbc[3] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"};
    static const char *ctr[3] = {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"};

    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&peer_lock_mutex, &attr);
    pthread_mutexattr_destroy(&attr);

    peer_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    peer_sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
    if (peer_hmac == NULL || peer_sha512 == NULL)
        return;
    for (int i = 0; i < 3; i++) {
        peer_cbc[i] = EVP_CIPHER_fetch(NULL, cbc[i], NULL);
        peer_ctr[i] = EVP_CIPHER_fetch(NULL, ctr[i], NULL);
        if (peer_cbc[i] == NULL || peer_ctr[i] == NULL)
            return;
    }
    peer_init_ok = 1;
}

static void peer_lock(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&peer_lock_mutex);
}

static void peer_unlock(void *ud)
{
    (void)ud;
    pthread_mutex_unlock(&peer_lock_mutex);
}

static int peer_random(uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    if (len == 0)
        return 0;
    if (len > INT32_MAX || RAND_bytes(data, (int)len) != 1)
        return SG_ERR_UNKNOWN;
    return 0;
}

/*
 * HMAC contexts are kept in a small per-thread pool and re-keyed on init,
 * and one AES context per thread is re-initialised per call: the library
 * runs a dozen HMACs per message, and allocating and configuring an
 * OpenSSL context each time would make the peer look slower than
 * libsignal-protocol-c is (the benchmark compares the libraries, not
 * provider overheads). Re-keying a reused context is exactly where the
 * OpenSSL 3 empty-key behaviour would bite, hence the zero-byte key.
 */
#define PEER_HMAC_POOL 8
static __thread EVP_MAC_CTX *peer_hmac_pool[PEER_HMAC_POOL];
static __thread int peer_hmac_pool_n;
static __thread EVP_CIPHER_CTX *peer_aes_ctx;

static EVP_MAC_CTX *peer_hmac_ctx_get(void)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC_CTX *mctx;

    if (peer_hmac_pool_n > 0)
        return peer_hmac_pool[--peer_hmac_pool_n];
    mctx = EVP_MAC_CTX_new(peer_hmac);
    if (mctx == NULL)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(mctx, params) != 1) {
        EVP_MAC_CTX_free(mctx);
        return NULL;
    }
    return mctx;
}

static void peer_hmac_ctx_put(EVP_MAC_CTX *mctx)
{
    if (mctx == NULL)
        return;
    if (peer_hmac_pool_n < PEER_HMAC_POOL)
        peer_hmac_pool[peer_hmac_pool_n++] = mctx;
    else
        EVP_MAC_CTX_free(mctx);
}

void peer_crypto_thread_cleanup(void)
{
    while (peer_hmac_pool_n > 0)
        EVP_MAC_CTX_free(peer_hmac_pool[--peer_hmac_pool_n]);
    EVP_CIPHER_CTX_free(peer_aes_ctx);
    peer_aes_ctx = NULL;
}

static int peer_hmac_init(void **hctx, const uint8_t *key, size_t key_len, void *ud)
{
    static const uint8_t zero_key[1] = {0};
    EVP_MAC_CTX *mctx;

    (void)ud;
    *hctx = NULL;
    mctx = peer_hmac_ctx_get();
    if (mctx == NULL)
        return SG_ERR_NOMEM;
    if (key_len == 0) {
        key = zero_key;
        key_len = sizeof(zero_key);
    }
    if (EVP_MAC_init(mctx, key, key_len, NULL) != 1) {
        EVP_MAC_CTX_free(mctx);
        return SG_ERR_UNKNOWN;
    }
    *hctx = mctx;
    return 0;
}

static int peer_hmac_update(void *hctx, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    if (EVP_MAC_update((EVP_MAC_CTX *)hctx, data, len) != 1)
        return SG_ERR_UNKNOWN;
    return 0;
}

static int peer_hmac_final(void *hctx, signal_buffer **output, void *ud)
{
    uint8_t md[32];
    size_t md_len = 0;
    signal_buffer *out;

    (void)ud;
    if (EVP_MAC_final((EVP_MAC_CTX *)hctx, md, &md_len, sizeof(md)) != 1 || md_len != 32)
        return SG_ERR_UNKNOWN;
    out = signal_buffer_create(md, md_len);
    OPENSSL_cleanse(md, sizeof(md));
    if (out == NULL)
        return SG_ERR_NOMEM;
    *output = out;
    return 0;
}

static void peer_hmac_cleanup(void *hctx, void *ud)
{
    (void)ud;
    peer_hmac_ctx_put((EVP_MAC_CTX *)hctx);
}

static int peer_sha512_init(void **dctx, void *ud)
{
    EVP_MD_CTX *mctx;

    (void)ud;
    *dctx = NULL;
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL)
        return SG_ERR_NOMEM;
    if (EVP_DigestInit_ex(mctx, peer_sha512, NULL) != 1) {
        EVP_MD_CTX_free(mctx);
        return SG_ERR_UNKNOWN;
    }
    *dctx = mctx;
    return 0;
}

static int peer_sha512_update(void *dctx, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    if (EVP_DigestUpdate((EVP_MD_CTX *)dctx, data, len) != 1)
        return SG_ERR_UNKNOWN;
    return 0;
}

static int peer_sha512_final(void *dctx, signal_buffer **output, void *ud)
{
    uint8_t md[64];
    unsigned int md_len = 0;
    signal_buffer *out;
    EVP_MD_CTX *mctx = dctx;

    (void)ud;
    if (EVP_DigestFinal_ex(mctx, md, &md_len) != 1 || md_len != 64)
        return SG_ERR_UNKNOWN;
    /* The library reuses the context after final. */
    if (EVP_DigestInit_ex(mctx, peer_sha512, NULL) != 1)
        return SG_ERR_UNKNOWN;
    out = signal_buffer_create(md, md_len);
    if (out == NULL)
        return SG_ERR_NOMEM;
    *output = out;
    return 0;
}

static void peer_sha512_cleanup(void *dctx, void *ud)
{
    (void)ud;
    EVP_MD_CTX_free((EVP_MD_CTX *)dctx);
}

static const EVP_CIPHER *peer_pick_cipher(int cipher, size_t key_len)
{
    int idx;

    switch (key_len) {
    case 16:
        idx = 0;
        break;
    case 24:
        idx = 1;
        break;
    case 32:
        idx = 2;
        break;
    default:
        return NULL;
    }
    if (cipher == SG_CIPHER_AES_CBC_PKCS5)
        return peer_cbc[idx];
    if (cipher == SG_CIPHER_AES_CTR_NOPADDING)
        return peer_ctr[idx];
    return NULL;
}

/* One AES pass: enc = 1 encrypts, 0 decrypts. */
static int peer_aes(signal_buffer **output, int enc, int cipher, const uint8_t *key, size_t key_len,
                    const uint8_t *iv, size_t iv_len, const uint8_t *in, size_t in_len)
{
    const EVP_CIPHER *evp = peer_pick_cipher(cipher, key_len);
    EVP_CIPHER_CTX *cctx;
    uint8_t *buf = NULL;
    int len1 = 0, len2 = 0;
    int rc = SG_ERR_UNKNOWN;

    if (evp == NULL || iv_len != 16 || in_len > INT32_MAX - 32)
        return SG_ERR_INVAL;
    if (peer_aes_ctx == NULL)
        peer_aes_ctx = EVP_CIPHER_CTX_new();
    cctx = peer_aes_ctx;
    buf = malloc(in_len + 32);
    if (cctx == NULL || buf == NULL) {
        rc = SG_ERR_NOMEM;
        goto out;
    }
    if (EVP_CipherInit_ex(cctx, evp, NULL, key, iv, enc) != 1)
        goto out;
    if (EVP_CIPHER_CTX_set_padding(cctx, cipher == SG_CIPHER_AES_CBC_PKCS5) != 1)
        goto out;
    if (EVP_CipherUpdate(cctx, buf, &len1, in, (int)in_len) != 1)
        goto out;
    if (EVP_CipherFinal_ex(cctx, buf + len1, &len2) != 1)
        goto out;
    *output = signal_buffer_create(buf, (size_t)len1 + (size_t)len2);
    rc = *output == NULL ? SG_ERR_NOMEM : 0;
out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, in_len + 32);
        free(buf);
    }
    return rc;
}

static int peer_encrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                        const uint8_t *iv, size_t iv_len, const uint8_t *pt, size_t pt_len,
                        void *ud)
{
    (void)ud;
    return peer_aes(output, 1, cipher, key, key_len, iv, iv_len, pt, pt_len);
}

static int peer_decrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                        const uint8_t *iv, size_t iv_len, const uint8_t *ct, size_t ct_len,
                        void *ud)
{
    (void)ud;
    return peer_aes(output, 0, cipher, key, key_len, iv, iv_len, ct, ct_len);
}

int peer_context_new(signal_context **out)
{
    signal_crypto_provider provider;
    signal_context *ctx = NULL;
    int rc;

    *out = NULL;
    pthread_once(&peer_once, peer_global_init);
    if (!peer_init_ok)
        return SG_ERR_UNKNOWN;
    memset(&provider, 0, sizeof(provider));
    provider.random_func = peer_random;
    provider.hmac_sha256_init_func = peer_hmac_init;
    provider.hmac_sha256_update_func = peer_hmac_update;
    provider.hmac_sha256_final_func = peer_hmac_final;
    provider.hmac_sha256_cleanup_func = peer_hmac_cleanup;
    provider.sha512_digest_init_func = peer_sha512_init;
    provider.sha512_digest_update_func = peer_sha512_update;
    provider.sha512_digest_final_func = peer_sha512_final;
    provider.sha512_digest_cleanup_func = peer_sha512_cleanup;
    provider.encrypt_func = peer_encrypt;
    provider.decrypt_func = peer_decrypt;

    rc = signal_context_create(&ctx, NULL);
    if (rc != 0)
        goto out;
    rc = signal_context_set_crypto_provider(ctx, &provider);
    if (rc != 0)
        goto out;
    rc = signal_context_set_locking_functions(ctx, peer_lock, peer_unlock);
    if (rc != 0)
        goto out;
    *out = ctx;
    ctx = NULL;
out:
    if (ctx != NULL)
        signal_context_destroy(ctx);
    return rc;
}

void peer_context_free(signal_context *ctx)
{
    if (ctx != NULL)
        signal_context_destroy(ctx);
}

const char *peer_error_name(int code)
{
    switch (code) {
    case SG_SUCCESS:
        return "OK";
    case SG_ERR_NOMEM:
        return "NOMEM";
    case SG_ERR_INVAL:
        return "INVAL";
    case SG_ERR_UNKNOWN:
        return "UNKNOWN";
    case SG_ERR_DUPLICATE_MESSAGE:
        return "DUPLICATE";
    case SG_ERR_INVALID_KEY:
        return "INVALID_KEY";
    case SG_ERR_INVALID_KEY_ID:
        return "INVALID_KEY_ID";
    case SG_ERR_INVALID_MAC:
        return "INVALID_MAC";
    case SG_ERR_INVALID_MESSAGE:
        return "INVALID_MESSAGE";
    case SG_ERR_INVALID_VERSION:
        return "INVALID_VERSION";
    case SG_ERR_LEGACY_MESSAGE:
        return "LEGACY_MESSAGE";
    case SG_ERR_NO_SESSION:
        return "NO_SESSION";
    case SG_ERR_STALE_KEY_EXCHANGE:
        return "STALE_KEY_EXCHANGE";
    case SG_ERR_UNTRUSTED_IDENTITY:
        return "UNTRUSTED";
    case SG_ERR_VRF_SIG_VERIF_FAILED:
        return "VRF_SIG_VERIF_FAILED";
    case SG_ERR_INVALID_PROTO_BUF:
        return "INVALID_PROTO_BUF";
    case SG_ERR_FP_VERSION_MISMATCH:
        return "FP_VERSION_MISMATCH";
    case SG_ERR_FP_IDENT_MISMATCH:
        return "FP_IDENT_MISMATCH";
    default:
        return "OTHER";
    }
}
