/*
 * lib/attachment/attachment.c -- Signal-style attachment encryption
 * (sotto/attachment.h; format in docs/protocol.md, "Attachments").
 *
 * AES-256-CBC comes from OpenSSL EVP (streaming), HMAC-SHA256 and SHA-256
 * from libsodium's incremental states. Every context lives in
 * sodium_malloc()ed memory and is wiped by sodium_free().
 */
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "crypto/crypto.h"
#include "sotto/attachment.h"

#define AES_KEY_BYTES 32
#define MAC_KEY_BYTES 32
#define ZERO_CHUNK 4096

static const uint8_t zeros[ZERO_CHUNK];

uint64_t sotto_attachment_padded_size(uint64_t size)
{
    double p = 1.0;
    uint64_t padded;

    if (size > SOTTO_ATTACHMENT_MAX_SIZE)
        return 0;
    if (size <= 541)
        return 541;
    /* Signal: max(541, floor(1.05 ^ ceil(log(size) / log(1.05)))): the
     * smallest power of 1.05 that reaches size, floored. Computed by
     * repeated double multiplication (no libm; at most ~570 steps), with a
     * guard against rounding landing below size. */
    while (p < (double)size)
        p *= 1.05;
    padded = (uint64_t)p;
    if (padded < size)
        padded = size;
    return padded;
}

uint64_t sotto_attachment_blob_size(uint64_t size)
{
    uint64_t padded = sotto_attachment_padded_size(size);

    if (padded == 0)
        return 0;
    return SOTTO_ATTACHMENT_IV_BYTES + (padded / 16 + 1) * 16 + SOTTO_ATTACHMENT_MAC_BYTES;
}

/* ---------------------------------------------------------------- verify */

struct sotto_attachment_verifier {
    crypto_auth_hmacsha256_state mac;
    crypto_hash_sha256_state hash;
    uint8_t digest[SOTTO_ATTACHMENT_DIGEST_BYTES];
    uint8_t mac_tail[SOTTO_ATTACHMENT_MAC_BYTES];
    uint64_t blob_size;
    uint64_t pos;
    bool failed;
};

static int verifier_init(struct sotto_attachment_verifier *v, uint64_t size,
                         const uint8_t key[SOTTO_ATTACHMENT_KEY_BYTES],
                         const uint8_t digest[SOTTO_ATTACHMENT_DIGEST_BYTES])
{
    v->blob_size = sotto_attachment_blob_size(size);
    if (v->blob_size == 0)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (crypto_auth_hmacsha256_init(&v->mac, key + AES_KEY_BYTES, MAC_KEY_BYTES) != 0 ||
        crypto_hash_sha256_init(&v->hash) != 0)
        return SOTTO_ERR_CRYPTO;
    memcpy(v->digest, digest, SOTTO_ATTACHMENT_DIGEST_BYTES);
    v->pos = 0;
    v->failed = false;
    return SOTTO_OK;
}

/* Feeds blob bytes into MAC (all but the last 32) and hash (all). */
static int verifier_feed(struct sotto_attachment_verifier *v, const uint8_t *in, size_t in_len)
{
    uint64_t mac_start = v->blob_size - SOTTO_ATTACHMENT_MAC_BYTES;
    size_t body;

    if (v->failed)
        return SOTTO_ERR_INVALID_MESSAGE;
    if (in_len > v->blob_size - v->pos) {
        v->failed = true;
        return SOTTO_ERR_INVALID_MESSAGE;
    }
    crypto_hash_sha256_update(&v->hash, in, in_len);
    body = 0;
    if (v->pos < mac_start) {
        body = (size_t)(mac_start - v->pos < in_len ? mac_start - v->pos : in_len);
        crypto_auth_hmacsha256_update(&v->mac, in, body);
    }
    if (body < in_len)
        memcpy(v->mac_tail + (v->pos + body - mac_start), in + body, in_len - body);
    v->pos += in_len;
    return SOTTO_OK;
}

static int verifier_check(struct sotto_attachment_verifier *v)
{
    uint8_t mac[SOTTO_ATTACHMENT_MAC_BYTES];
    uint8_t digest[SOTTO_ATTACHMENT_DIGEST_BYTES];
    int mac_ok, digest_ok;
    int rc = SOTTO_ERR_INVALID_MESSAGE;

    if (v->failed || v->pos != v->blob_size)
        goto out;
    crypto_auth_hmacsha256_final(&v->mac, mac);
    crypto_hash_sha256_final(&v->hash, digest);
    v->failed = true; /* states are consumed: a second check fails */
    mac_ok = sodium_memcmp(mac, v->mac_tail, sizeof mac) == 0;
    digest_ok = sodium_memcmp(digest, v->digest, sizeof digest) == 0;
    if (mac_ok & digest_ok)
        rc = SOTTO_OK;
out:
    sodium_memzero(mac, sizeof mac);
    return rc;
}

int sotto_attachment_verifier_new(sotto_attachment_verifier **out, uint64_t size,
                                  const uint8_t key[SOTTO_ATTACHMENT_KEY_BYTES],
                                  const uint8_t digest[SOTTO_ATTACHMENT_DIGEST_BYTES])
{
    sotto_attachment_verifier *v = NULL;
    int rc;

    if (out == NULL || key == NULL || digest == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = NULL;
    v = sodium_malloc(sizeof *v);
    if (v == NULL)
        return SOTTO_ERR_NOMEM;
    rc = verifier_init(v, size, key, digest);
    if (rc != SOTTO_OK) {
        sodium_free(v);
        return rc;
    }
    *out = v;
    return SOTTO_OK;
}

int sotto_attachment_verify_update(sotto_attachment_verifier *v, const uint8_t *in, size_t in_len)
{
    if (v == NULL || (in == NULL && in_len > 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    return verifier_feed(v, in, in_len);
}

int sotto_attachment_verify_final(sotto_attachment_verifier *v)
{
    if (v == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return verifier_check(v);
}

void sotto_attachment_verifier_free(sotto_attachment_verifier *v)
{
    if (v != NULL)
        sodium_free(v); /* sodium_free wipes */
}

/* --------------------------------------------------------------- encrypt */

struct sotto_attachment_encryptor {
    EVP_CIPHER_CTX *ctx;
    crypto_auth_hmacsha256_state mac;
    crypto_hash_sha256_state hash;
    uint8_t iv[SOTTO_ATTACHMENT_IV_BYTES];
    uint64_t size;
    uint64_t fed;
    uint64_t pad_left;
    bool iv_sent;
    bool done;
};

/* Emits blob bytes that are MACed (IV and ciphertext). */
static void enc_account(sotto_attachment_encryptor *enc, const uint8_t *p, size_t n)
{
    crypto_auth_hmacsha256_update(&enc->mac, p, n);
    crypto_hash_sha256_update(&enc->hash, p, n);
}

static size_t enc_emit_iv(sotto_attachment_encryptor *enc, uint8_t *out)
{
    if (enc->iv_sent)
        return 0;
    memcpy(out, enc->iv, SOTTO_ATTACHMENT_IV_BYTES);
    enc_account(enc, out, SOTTO_ATTACHMENT_IV_BYTES);
    enc->iv_sent = true;
    return SOTTO_ATTACHMENT_IV_BYTES;
}

/* Encrypts n bytes of `in` into out (which holds n + 16). */
static int enc_cipher(sotto_attachment_encryptor *enc, const uint8_t *in, size_t n, uint8_t *out,
                      size_t *written)
{
    size_t done = 0;
    int outl;

    *written = 0;
    while (done < n) {
        size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
        if (EVP_EncryptUpdate(enc->ctx, out + *written, &outl, in + done, (int)chunk) != 1)
            return SOTTO_ERR_CRYPTO;
        enc_account(enc, out + *written, (size_t)outl);
        *written += (size_t)outl;
        done += chunk;
    }
    return SOTTO_OK;
}

int sotto_attachment_encryptor_new_with_key(sotto_attachment_encryptor **out, uint64_t size,
                                            const uint8_t key[SOTTO_ATTACHMENT_KEY_BYTES],
                                            const uint8_t iv[SOTTO_ATTACHMENT_IV_BYTES])
{
    sotto_attachment_encryptor *enc = NULL;
    int rc = SOTTO_ERR_INVALID_ARGUMENT;

    if (out == NULL || key == NULL || iv == NULL)
        goto out;
    *out = NULL;
    if (size > SOTTO_ATTACHMENT_MAX_SIZE)
        goto out;
    rc = SOTTO_ERR_NOMEM;
    enc = sodium_malloc(sizeof *enc);
    if (enc == NULL)
        goto out;
    memset(enc, 0, sizeof *enc);
    enc->ctx = EVP_CIPHER_CTX_new();
    if (enc->ctx == NULL)
        goto out;
    rc = SOTTO_ERR_CRYPTO;
    if (EVP_EncryptInit_ex(enc->ctx, EVP_aes_256_cbc(), NULL, key, iv) != 1)
        goto out;
    if (crypto_auth_hmacsha256_init(&enc->mac, key + AES_KEY_BYTES, MAC_KEY_BYTES) != 0 ||
        crypto_hash_sha256_init(&enc->hash) != 0)
        goto out;
    memcpy(enc->iv, iv, SOTTO_ATTACHMENT_IV_BYTES);
    enc->size = size;
    enc->pad_left = sotto_attachment_padded_size(size) - size;
    *out = enc;
    enc = NULL;
    rc = SOTTO_OK;
out:
    sotto_attachment_encryptor_free(enc);
    return rc;
}

int sotto_attachment_encryptor_new(sotto_attachment_encryptor **out, uint64_t size,
                                   uint8_t key_out[SOTTO_ATTACHMENT_KEY_BYTES])
{
    uint8_t iv[SOTTO_ATTACHMENT_IV_BYTES];

    if (key_out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sotto_random_buf(key_out, SOTTO_ATTACHMENT_KEY_BYTES);
    sotto_random_buf(iv, sizeof iv);
    return sotto_attachment_encryptor_new_with_key(out, size, key_out, iv);
}

int sotto_attachment_encrypt_update(sotto_attachment_encryptor *enc, const uint8_t *in,
                                    size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t n = 0, w;
    int rc;

    if (enc == NULL || out == NULL || out_len == NULL || (in == NULL && in_len > 0) || enc->done)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    if (in_len > enc->size - enc->fed)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (out_cap < SOTTO_ATTACHMENT_UPDATE_SLACK || out_cap - SOTTO_ATTACHMENT_UPDATE_SLACK < in_len)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    n += enc_emit_iv(enc, out);
    rc = enc_cipher(enc, in, in_len, out + n, &w);
    if (rc != SOTTO_OK)
        return rc;
    enc->fed += in_len;
    *out_len = n + w;
    return SOTTO_OK;
}

int sotto_attachment_encrypt_final(sotto_attachment_encryptor *enc, uint8_t *out, size_t out_cap,
                                   size_t *out_len, bool *done,
                                   uint8_t digest_out[SOTTO_ATTACHMENT_DIGEST_BYTES])
{
    size_t n = 0, w;
    int outl, rc;

    if (enc == NULL || out == NULL || out_len == NULL || done == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    *done = enc->done;
    if (enc->done)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (enc->fed != enc->size)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (out_cap < SOTTO_ATTACHMENT_UPDATE_SLACK + 16)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    n += enc_emit_iv(enc, out);
    /* Zero padding, at most out_cap - 64 bytes per call. */
    while (enc->pad_left > 0 && out_cap - n >= SOTTO_ATTACHMENT_UPDATE_SLACK + 16) {
        size_t room = out_cap - n - 16 - SOTTO_ATTACHMENT_UPDATE_SLACK;
        size_t chunk = enc->pad_left < ZERO_CHUNK ? (size_t)enc->pad_left : ZERO_CHUNK;
        if (chunk > room)
            chunk = room;
        if (chunk == 0)
            break;
        rc = enc_cipher(enc, zeros, chunk, out + n, &w);
        if (rc != SOTTO_OK)
            return rc;
        n += w;
        enc->pad_left -= chunk;
    }
    if (enc->pad_left > 0) {
        *out_len = n;
        return SOTTO_OK;
    }
    if (out_cap - n < SOTTO_ATTACHMENT_UPDATE_SLACK) {
        *out_len = n; /* the tail goes in the next call */
        return SOTTO_OK;
    }
    if (EVP_EncryptFinal_ex(enc->ctx, out + n, &outl) != 1)
        return SOTTO_ERR_CRYPTO;
    enc_account(enc, out + n, (size_t)outl);
    n += (size_t)outl;
    crypto_auth_hmacsha256_final(&enc->mac, out + n);
    crypto_hash_sha256_update(&enc->hash, out + n, SOTTO_ATTACHMENT_MAC_BYTES);
    n += SOTTO_ATTACHMENT_MAC_BYTES;
    if (digest_out != NULL)
        crypto_hash_sha256_final(&enc->hash, digest_out);
    enc->done = true;
    *done = true;
    *out_len = n;
    return SOTTO_OK;
}

void sotto_attachment_encryptor_free(sotto_attachment_encryptor *enc)
{
    if (enc == NULL)
        return;
    EVP_CIPHER_CTX_free(enc->ctx); /* OpenSSL cleanses the key schedule */
    sodium_free(enc);
}

/* --------------------------------------------------------------- decrypt */

struct sotto_attachment_decryptor {
    struct sotto_attachment_verifier v;
    EVP_CIPHER_CTX *ctx;
    uint8_t aes_key[AES_KEY_BYTES];
    uint8_t iv[SOTTO_ATTACHMENT_IV_BYTES];
    uint64_t size;
    uint64_t pt_out; /* plaintext bytes handed out */
    uint8_t pad_or;  /* OR of every padding byte: must stay 0 */
    bool cipher_ready;
};

/* Hands out decrypted bytes up to `size`; the rest is padding. */
static size_t dec_clip(sotto_attachment_decryptor *dec, uint8_t *buf, size_t n)
{
    uint64_t left = dec->size - dec->pt_out;
    size_t keep = n < left ? n : (size_t)left;
    size_t i;

    for (i = keep; i < n; i++)
        dec->pad_or |= buf[i];
    sodium_memzero(buf + keep, n - keep);
    dec->pt_out += keep;
    return keep;
}

int sotto_attachment_decryptor_new(sotto_attachment_decryptor **out, uint64_t size,
                                   const uint8_t key[SOTTO_ATTACHMENT_KEY_BYTES],
                                   const uint8_t digest[SOTTO_ATTACHMENT_DIGEST_BYTES])
{
    sotto_attachment_decryptor *dec = NULL;
    int rc = SOTTO_ERR_INVALID_ARGUMENT;

    if (out == NULL || key == NULL || digest == NULL)
        goto out;
    *out = NULL;
    rc = SOTTO_ERR_NOMEM;
    dec = sodium_malloc(sizeof *dec);
    if (dec == NULL)
        goto out;
    memset(dec, 0, sizeof *dec);
    rc = verifier_init(&dec->v, size, key, digest);
    if (rc != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_NOMEM;
    dec->ctx = EVP_CIPHER_CTX_new();
    if (dec->ctx == NULL)
        goto out;
    memcpy(dec->aes_key, key, AES_KEY_BYTES);
    dec->size = size;
    *out = dec;
    dec = NULL;
    rc = SOTTO_OK;
out:
    sotto_attachment_decryptor_free(dec);
    return rc;
}

int sotto_attachment_decrypt_update(sotto_attachment_decryptor *dec, const uint8_t *in,
                                    size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    uint64_t ct_end;
    uint64_t start;
    size_t i = 0, n = 0;
    int rc, outl;

    if (dec == NULL || out == NULL || out_len == NULL || (in == NULL && in_len > 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    if (out_cap < SOTTO_ATTACHMENT_UPDATE_SLACK || out_cap - SOTTO_ATTACHMENT_UPDATE_SLACK < in_len)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    start = dec->v.pos;
    rc = verifier_feed(&dec->v, in, in_len);
    if (rc != SOTTO_OK)
        return rc;
    ct_end = dec->v.blob_size - SOTTO_ATTACHMENT_MAC_BYTES;
    /* IV bytes */
    while (i < in_len && start + i < SOTTO_ATTACHMENT_IV_BYTES) {
        dec->iv[start + i] = in[i];
        i++;
    }
    if (!dec->cipher_ready && start + i == SOTTO_ATTACHMENT_IV_BYTES) {
        if (EVP_DecryptInit_ex(dec->ctx, EVP_aes_256_cbc(), NULL, dec->aes_key, dec->iv) != 1)
            return SOTTO_ERR_CRYPTO;
        dec->cipher_ready = true;
    }
    /* ciphertext bytes */
    while (i < in_len && start + i < ct_end) {
        size_t chunk =
            (size_t)(ct_end - (start + i) < in_len - i ? ct_end - (start + i) : in_len - i);
        if (chunk > (1u << 30))
            chunk = 1u << 30;
        if (EVP_DecryptUpdate(dec->ctx, out + n, &outl, in + i, (int)chunk) != 1)
            return SOTTO_ERR_INVALID_MESSAGE;
        n += dec_clip(dec, out + n, (size_t)outl);
        i += chunk;
    }
    *out_len = n;
    return SOTTO_OK;
}

int sotto_attachment_decrypt_final(sotto_attachment_decryptor *dec, uint8_t *out, size_t out_cap,
                                   size_t *out_len)
{
    int outl = 0;
    int cipher_ok = 0;
    int rc;
    size_t n = 0;

    if (dec == NULL || out == NULL || out_len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    if (out_cap < SOTTO_ATTACHMENT_UPDATE_SLACK)
        return SOTTO_ERR_BUFFER_TOO_SMALL;
    rc = verifier_check(&dec->v);
    if (dec->cipher_ready && EVP_DecryptFinal_ex(dec->ctx, out, &outl) == 1) {
        cipher_ok = 1;
        n = dec_clip(dec, out, (size_t)outl);
    }
    if (rc != SOTTO_OK || !cipher_ok || dec->pad_or != 0 || dec->pt_out != dec->size) {
        sodium_memzero(out, out_cap < 32 ? out_cap : 32);
        return SOTTO_ERR_INVALID_MESSAGE;
    }
    *out_len = n;
    return SOTTO_OK;
}

void sotto_attachment_decryptor_free(sotto_attachment_decryptor *dec)
{
    if (dec == NULL)
        return;
    EVP_CIPHER_CTX_free(dec->ctx);
    sodium_free(dec);
}

int sotto_attachment_decrypt(uint8_t *out, uint64_t size,
                             const uint8_t key[SOTTO_ATTACHMENT_KEY_BYTES],
                             const uint8_t digest[SOTTO_ATTACHMENT_DIGEST_BYTES],
                             const uint8_t *blob, size_t blob_len)
{
    sotto_attachment_verifier *v = NULL;
    sotto_attachment_decryptor *dec = NULL;
    uint8_t *tmp = NULL; /* chunk buffer */
    uint8_t *pt = NULL;  /* whole plaintext, copied to out only on success */
    size_t tmp_cap = ZERO_CHUNK + SOTTO_ATTACHMENT_UPDATE_SLACK;
    size_t written = 0;
    size_t pos = 0, n;
    int rc;

    if ((out == NULL && size > 0) || key == NULL || digest == NULL || blob == NULL ||
        size > SIZE_MAX - 1)
        return SOTTO_ERR_INVALID_ARGUMENT;
    /* 1. verify, producing nothing */
    rc = sotto_attachment_verifier_new(&v, size, key, digest);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_attachment_verify_update(v, blob, blob_len);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_attachment_verify_final(v);
    if (rc != SOTTO_OK)
        goto out;
    /* 2. decrypt the verified blob aside; hand it out only when the
     * padding also checks (the claimed size must fit the content). */
    rc = SOTTO_ERR_NOMEM;
    tmp = sodium_malloc(tmp_cap);
    pt = sodium_malloc((size_t)size + 1);
    if (tmp == NULL || pt == NULL)
        goto out;
    rc = sotto_attachment_decryptor_new(&dec, size, key, digest);
    if (rc != SOTTO_OK)
        goto out;
    while (pos < blob_len) {
        size_t chunk = blob_len - pos < ZERO_CHUNK ? blob_len - pos : ZERO_CHUNK;
        rc = sotto_attachment_decrypt_update(dec, blob + pos, chunk, tmp, tmp_cap, &n);
        if (rc != SOTTO_OK)
            goto out;
        memcpy(pt + written, tmp, n);
        written += n;
        pos += chunk;
    }
    rc = sotto_attachment_decrypt_final(dec, tmp, tmp_cap, &n);
    if (rc != SOTTO_OK)
        goto out;
    memcpy(pt + written, tmp, n);
    written += n;
    if (written > 0)
        memcpy(out, pt, written);
out:
    sotto_attachment_verifier_free(v);
    sotto_attachment_decryptor_free(dec);
    if (tmp != NULL)
        sodium_free(tmp);
    if (pt != NULL)
        sodium_free(pt);
    return rc;
}
