/*
 * sotto/attachment.h -- attachment encryption as Signal does it.
 *
 * An attachment is encrypted once, uploaded as an opaque blob, and the
 * pointer to it (blob id, key, digest, size, content type, file name)
 * travels inside the end-to-end encrypted message content.
 *
 * Blob format (docs/protocol.md, "Attachments"):
 *
 *     key    = 64 fresh random bytes: aes_key (32) || mac_key (32)
 *     padded = plaintext || 0x00 * (padded_size(size) - size)
 *     blob   = iv (16, random) || AES-256-CBC-PKCS7(aes_key, iv, padded)
 *              || HMAC-SHA256(mac_key, iv || ciphertext) (32)
 *     digest = SHA-256(blob) (32)
 *
 * padded_size() is Signal's bucket function (sotto_attachment_padded_size):
 * max(541, floor(1.05 ^ ceil(log_1.05(size)))) (computed as the
 * smallest double-precision product 1.05 * 1.05 * ... >= size, floored), which hides the exact size
 * of a file from the server.
 *
 * Both directions are streaming (init / update / final), so a file of any
 * size is never held whole in memory. The blob size follows from the
 * plaintext size alone (sotto_attachment_blob_size), so a receiver knows
 * exactly how many bytes to expect and rejects a blob that is longer or
 * shorter.
 *
 * Verification comes before plaintext: sotto_attachment_verifier checks the
 * MAC and the digest of a blob without producing any plaintext; a receiver
 * runs it over the downloaded blob first and decrypts only a verified blob.
 * The decryptor checks MAC and digest again in its final call; plaintext it
 * produced from `update` is unauthenticated until `final` returns SOTTO_OK
 * and must be discarded otherwise. sotto_attachment_decrypt() (one shot)
 * writes no plaintext at all unless the blob verifies.
 *
 * All contexts hold key material in sodium_malloc()ed memory and wipe it on
 * _free. Errors from peer input are SOTTO_ERR_INVALID_MESSAGE (truncated,
 * too long, bad MAC, bad digest, bad padding: all look the same).
 */
#ifndef SOTTO_ATTACHMENT_H
#define SOTTO_ATTACHMENT_H

#include <stdbool.h>

#include "sotto/common.h"
#include "sotto/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_ATTACHMENT_KEY_BYTES 64 /* aes key (32) || hmac key (32) */
#define SOTTO_ATTACHMENT_IV_BYTES 16
#define SOTTO_ATTACHMENT_MAC_BYTES 32    /* HMAC-SHA256, not truncated */
#define SOTTO_ATTACHMENT_DIGEST_BYTES 32 /* SHA-256 of the whole blob */
/* Largest plaintext accepted (so that every size computation fits). */
#define SOTTO_ATTACHMENT_MAX_SIZE ((uint64_t)1 << 40)
/* An update/final output buffer must hold in_len + this many bytes. */
#define SOTTO_ATTACHMENT_UPDATE_SLACK 48

/*
 * Signal's padding bucket for a plaintext of `size` bytes (>= size, >= 541;
 * docs/protocol.md "Attachments"). Returns 0 when size >
 * SOTTO_ATTACHMENT_MAX_SIZE.
 */
SOTTO_API uint64_t sotto_attachment_padded_size(uint64_t size);

/*
 * Exact blob length for a plaintext of `size` bytes:
 * 16 + (padded_size(size) / 16 + 1) * 16 + 32. Returns 0 when size is over
 * SOTTO_ATTACHMENT_MAX_SIZE.
 */
SOTTO_API uint64_t sotto_attachment_blob_size(uint64_t size);

/* ---- encryption ---- */

typedef struct sotto_attachment_encryptor sotto_attachment_encryptor;

/*
 * Starts encrypting a plaintext of exactly `size` bytes. Generates a fresh
 * 64-byte key (copied to key_out, which the caller must keep secret, put in
 * the pointer, and wipe) and a random IV. *out is freed with
 * sotto_attachment_encryptor_free.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL, size too large),
 * SOTTO_ERR_NOMEM or SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int
sotto_attachment_encryptor_new(sotto_attachment_encryptor **out, uint64_t size,
                               uint8_t key_out[SOTTO_STATIC_N(SOTTO_ATTACHMENT_KEY_BYTES)]);

/*
 * Same, with a caller-chosen key and IV (tests and known-answer checks).
 */
SOTTO_API SOTTO_WUR int sotto_attachment_encryptor_new_with_key(
    sotto_attachment_encryptor **out, uint64_t size,
    const uint8_t key[SOTTO_STATIC_N(SOTTO_ATTACHMENT_KEY_BYTES)],
    const uint8_t iv[SOTTO_STATIC_N(SOTTO_ATTACHMENT_IV_BYTES)]);

/*
 * Feeds `in_len` plaintext bytes and writes blob bytes to `out` (which must
 * hold at least in_len + SOTTO_ATTACHMENT_UPDATE_SLACK bytes; the first call
 * also emits the IV). *out_len gets the bytes written.
 * Returns SOTTO_OK, SOTTO_ERR_BUFFER_TOO_SMALL, SOTTO_ERR_CRYPTO, or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, after final, or more than `size` bytes
 * in total fed).
 */
SOTTO_API SOTTO_WUR int sotto_attachment_encrypt_update(sotto_attachment_encryptor *enc,
                                                        const uint8_t *in, size_t in_len,
                                                        uint8_t *out, size_t out_cap,
                                                        size_t *out_len);

/*
 * Finishes the blob: encrypts the zero padding, the PKCS#7 block and
 * appends the MAC. Because padding can be large (up to 5% of the size),
 * final writes at most `out_cap` bytes per call (out_cap >=
 * SOTTO_ATTACHMENT_UPDATE_SLACK + 16); call it until *done is true. Then
 * digest_out (if not NULL) receives SHA-256 of the blob.
 * Returns SOTTO_OK, SOTTO_ERR_BUFFER_TOO_SMALL, SOTTO_ERR_INVALID_ARGUMENT
 * (fewer than `size` bytes were fed) or SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int
sotto_attachment_encrypt_final(sotto_attachment_encryptor *enc, uint8_t *out, size_t out_cap,
                               size_t *out_len, bool *done,
                               uint8_t digest_out[SOTTO_ATTACHMENT_DIGEST_BYTES]);

/* Wipes and frees (NULL is fine). */
SOTTO_API void sotto_attachment_encryptor_free(sotto_attachment_encryptor *enc);

/* ---- verification (no plaintext) ---- */

typedef struct sotto_attachment_verifier sotto_attachment_verifier;

/*
 * Starts checking a blob that claims to hold `size` plaintext bytes under
 * the 64-byte `key`, with the 32-byte SHA-256 `digest` from the pointer
 * (both copied; the caller keeps and wipes its key). *out is freed with
 * sotto_attachment_verifier_free. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, size over SOTTO_ATTACHMENT_MAX_SIZE),
 * SOTTO_ERR_NOMEM or SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int
sotto_attachment_verifier_new(sotto_attachment_verifier **out, uint64_t size,
                              const uint8_t key[SOTTO_STATIC_N(SOTTO_ATTACHMENT_KEY_BYTES)],
                              const uint8_t digest[SOTTO_STATIC_N(SOTTO_ATTACHMENT_DIGEST_BYTES)]);

/* Feeds `in_len` blob bytes. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT
 * (NULL) or SOTTO_ERR_INVALID_MESSAGE when the blob runs too long (the
 * verifier then fails for good). */
SOTTO_API SOTTO_WUR int sotto_attachment_verify_update(sotto_attachment_verifier *v,
                                                       const uint8_t *in, size_t in_len);

/* SOTTO_OK when length, MAC and digest all match, else
 * SOTTO_ERR_INVALID_MESSAGE (also on a second call: the verifier is used
 * up), or SOTTO_ERR_INVALID_ARGUMENT (NULL). MAC and digest compared in
 * constant time. */
SOTTO_API SOTTO_WUR int sotto_attachment_verify_final(sotto_attachment_verifier *v);

/* Wipes and frees (NULL is fine). */
SOTTO_API void sotto_attachment_verifier_free(sotto_attachment_verifier *v);

/* ---- decryption ---- */

typedef struct sotto_attachment_decryptor sotto_attachment_decryptor;

/* Starts decrypting; arguments, copies and errors as for the verifier;
 * *out is freed with sotto_attachment_decryptor_free. */
SOTTO_API SOTTO_WUR int
sotto_attachment_decryptor_new(sotto_attachment_decryptor **out, uint64_t size,
                               const uint8_t key[SOTTO_STATIC_N(SOTTO_ATTACHMENT_KEY_BYTES)],
                               const uint8_t digest[SOTTO_STATIC_N(SOTTO_ATTACHMENT_DIGEST_BYTES)]);

/*
 * Feeds blob bytes; writes plaintext (never more than `size` bytes in
 * total, padding removed) to `out`, which must hold in_len +
 * SOTTO_ATTACHMENT_UPDATE_SLACK bytes. The output is NOT yet authenticated:
 * keep it aside (a temporary file) until final returns SOTTO_OK.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL),
 * SOTTO_ERR_BUFFER_TOO_SMALL, SOTTO_ERR_INVALID_MESSAGE (blob too long) or
 * SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int sotto_attachment_decrypt_update(sotto_attachment_decryptor *dec,
                                                        const uint8_t *in, size_t in_len,
                                                        uint8_t *out, size_t out_cap,
                                                        size_t *out_len);

/*
 * Checks length, MAC, digest and padding; writes the last plaintext bytes
 * (out must hold SOTTO_ATTACHMENT_UPDATE_SLACK bytes). SOTTO_OK only when
 * everything verifies; SOTTO_ERR_INVALID_MESSAGE otherwise (then discard
 * all output of this decryptor), or SOTTO_ERR_INVALID_ARGUMENT (NULL) /
 * SOTTO_ERR_BUFFER_TOO_SMALL.
 */
SOTTO_API SOTTO_WUR int sotto_attachment_decrypt_final(sotto_attachment_decryptor *dec,
                                                       uint8_t *out, size_t out_cap,
                                                       size_t *out_len);

/* Wipes and frees, key included (NULL is fine). */
SOTTO_API void sotto_attachment_decryptor_free(sotto_attachment_decryptor *dec);

/*
 * One-shot decryption of a whole blob of `blob_len` bytes held in memory:
 * verifies length, MAC and digest FIRST and only then decrypts into `out`
 * (capacity `size` bytes, the plaintext size from the pointer; exactly
 * `size` bytes are written on success). On any failure nothing is written
 * to `out`. The caller wipes `out` when done.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT, SOTTO_ERR_NOMEM or
 * SOTTO_ERR_INVALID_MESSAGE.
 */
SOTTO_API SOTTO_WUR int
sotto_attachment_decrypt(uint8_t *out, uint64_t size,
                         const uint8_t key[SOTTO_STATIC_N(SOTTO_ATTACHMENT_KEY_BYTES)],
                         const uint8_t digest[SOTTO_STATIC_N(SOTTO_ATTACHMENT_DIGEST_BYTES)],
                         const uint8_t *blob, size_t blob_len);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_ATTACHMENT_H */
