/*
 * sotto/sealed.h -- sealed sender: server and sender certificates, sealed
 * sender v1 messages and delivery tokens.
 *
 * Spec: docs/protocol.md "Sealed sender" (the exact format and every
 * deviation from libsignal); shared/specs/signal-protocol.md, the sealed
 * sender entry (libsignal's rust/protocol/src/sealed_sender.rs and
 * proto/sealed_sender.proto).
 *
 * A trust root key (pinned by clients) signs a server certificate
 * {key id, server certificate key}; the server certificate key signs
 * short-lived sender certificates {sender username, device id, expiry,
 * sender identity key, the server certificate}. Signatures are XEdDSA
 * (sotto/keys.h) over the serialised inner Certificate message, as in
 * libsignal. A sealed sender v1 message carries the ordinary Signal
 * message (`content`) and the sender certificate, encrypted to the
 * recipient's identity key: version byte 0x11, then the protobuf
 * UnidentifiedSenderMessage {ephemeralPublic, encryptedStatic,
 * encryptedMessage}; two X25519 layers (ephemeral-static, then
 * static-static), HKDF-SHA256, AES-256-CTR and HMAC-SHA256 truncated to
 * 10 bytes.
 *
 * Deviation from libsignal: the sender is named by a Sotto username in
 * the certificate's uuidString field (6); no E164 is written. Everything
 * else is libsignal's v1 byte format.
 *
 * All functions are pure: time comes in as `now_ms` (ms since the Unix
 * epoch), randomness from libsotto's RNG. Outputs handed to the caller
 * as `uint8_t **out` are heap buffers the caller frees with free().
 */
#ifndef SOTTO_SEALED_H
#define SOTTO_SEALED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sotto/account.h"
#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_SEALED_V1_VERSION 0x11 /* first byte of a sealed sender v1 message */
#define SOTTO_SEALED_MAC_BYTES 10    /* truncated HMAC-SHA256 after each ciphertext */
#define SOTTO_CERT_MAX_BYTES 1024    /* largest server or sender certificate accepted */
#define SOTTO_SEALED_MAX_CONTENT_BYTES (1024u * 1024u)                  /* largest inner content */
#define SOTTO_SEALED_MAX_BYTES (SOTTO_SEALED_MAX_CONTENT_BYTES + 2048u) /* whole message */
#define SOTTO_PROFILE_KEY_BYTES 32
#define SOTTO_DELIVERY_TOKEN_BYTES 16

/* Inner message types (libsignal UnidentifiedSenderMessage.Message.Type). */
#define SOTTO_SEALED_TYPE_PREKEY 1    /* content is a PreKeySignalMessage */
#define SOTTO_SEALED_TYPE_MESSAGE 2   /* content is a SignalMessage */
#define SOTTO_SEALED_TYPE_SENDERKEY 7 /* content is a SenderKeyMessage */
#define SOTTO_SEALED_TYPE_PLAINTEXT 8 /* content is a plaintext content */

/* A decoded server certificate (public data). */
typedef struct sotto_server_certificate {
    uint32_t key_id;      /* the server certificate key's id */
    sotto_public_key key; /* the server certificate key (signs sender certificates) */
} sotto_server_certificate;

/* A decoded sender certificate (public data). */
typedef struct sotto_sender_certificate {
    char sender[SOTTO_USERNAME_MAX_LEN + 1]; /* NUL-terminated username */
    uint32_t device_id;                      /* 1 .. 2^31-1 */
    uint64_t expires_ms;                     /* valid while now_ms <= expires_ms */
    sotto_public_key identity_key;           /* the sender's identity key */
    sotto_server_certificate signer;         /* the server certificate that signed it */
} sotto_sender_certificate;

/*
 * Makes a serialised ServerCertificate {certificate = {id = key_id,
 * key = server_key (33 bytes)}, signature = XEdDSA(trust_root_priv,
 * certificate)}. *out (heap, *out_len bytes, at most SOTTO_CERT_MAX_BYTES)
 * belongs to the caller (free()). Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL), SOTTO_ERR_NOMEM or SOTTO_ERR_CRYPTO;
 * *out is NULL and *out_len 0 on failure.
 */
SOTTO_API SOTTO_WUR int sotto_server_certificate_create(
    uint8_t **out, size_t *out_len, uint32_t key_id, const sotto_public_key *server_key,
    const uint8_t trust_root_priv[SOTTO_STATIC_N(SOTTO_PRIVATE_KEY_BYTES)]);

/*
 * Decodes a serialised ServerCertificate (`len` bytes, peer input) and
 * checks its signature under the pinned `trust_root`. `*out` is written
 * only on success. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL),
 * SOTTO_ERR_CERT_MALFORMED (does not parse, a field missing or repeated,
 * a key that does not decode, longer than SOTTO_CERT_MAX_BYTES) or
 * SOTTO_ERR_CERT_UNTRUSTED (signature not by trust_root).
 */
SOTTO_API SOTTO_WUR int sotto_server_certificate_validate(sotto_server_certificate *out,
                                                          const uint8_t *data, size_t len,
                                                          const sotto_public_key *trust_root);

/*
 * Makes a serialised SenderCertificate for `sender` (a valid username,
 * sotto_username_valid), `device_id` (1 .. 2^31-1), the sender's
 * `identity_key` and `expires_ms`, signed with `server_priv`, the private
 * half of the key inside `server_cert` (a serialised ServerCertificate
 * of server_cert_len bytes, embedded as is; it must parse). *out (heap,
 * *out_len bytes, at most SOTTO_CERT_MAX_BYTES) belongs to the caller.
 * Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL, device id out of
 * range, server_priv not matching the certificate's key),
 * SOTTO_ERR_INVALID_USERNAME, SOTTO_ERR_CERT_MALFORMED (server_cert),
 * SOTTO_ERR_NOMEM or SOTTO_ERR_CRYPTO; *out is NULL on failure.
 */
SOTTO_API SOTTO_WUR int sotto_sender_certificate_create(
    uint8_t **out, size_t *out_len, const char *sender, uint32_t device_id,
    const sotto_public_key *identity_key, uint64_t expires_ms, const uint8_t *server_cert,
    size_t server_cert_len, const uint8_t server_priv[SOTTO_STATIC_N(SOTTO_PRIVATE_KEY_BYTES)]);

/*
 * Decodes a serialised SenderCertificate (peer input) WITHOUT checking
 * any signature or expiry: for display and for tests. Use
 * sotto_sender_certificate_validate() before trusting it. `*out` is
 * written only on success. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT
 * (NULL) or SOTTO_ERR_CERT_MALFORMED (does not parse, a required field
 * missing or repeated, sender not a valid username, device id 0 or over
 * 2^31-1, a key that does not decode, signer that does not parse).
 */
SOTTO_API SOTTO_WUR int sotto_sender_certificate_decode(sotto_sender_certificate *out,
                                                        const uint8_t *data, size_t len);

/*
 * Decodes and validates a serialised SenderCertificate as libsignal's
 * SenderCertificate::validate: the embedded server certificate is signed
 * by `trust_root`, the sender certificate by the server certificate key,
 * and now_ms <= expires_ms. `*out` is written only on success. Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL), SOTTO_ERR_CERT_MALFORMED,
 * SOTTO_ERR_CERT_UNTRUSTED, SOTTO_ERR_CERT_SIGNATURE or
 * SOTTO_ERR_CERT_EXPIRED (checked in this order).
 */
SOTTO_API SOTTO_WUR int sotto_sender_certificate_validate(sotto_sender_certificate *out,
                                                          const uint8_t *data, size_t len,
                                                          const sotto_public_key *trust_root,
                                                          uint64_t now_ms);

/*
 * Seals `content` (content_len bytes, 1 .. SOTTO_SEALED_MAX_CONTENT_BYTES,
 * an already encrypted Signal message of type `type`, one of
 * SOTTO_SEALED_TYPE_*) from `sender_identity` (the sender's identity key
 * pair, whose public key must be the one in `sender_cert`) to
 * `recipient_identity`, with the serialised SenderCertificate
 * `sender_cert` (sender_cert_len bytes; it must decode, it is not
 * validated here). Output: the sealed sender v1 message, *out (heap,
 * *out_len bytes) owned by the caller. Returns SOTTO_OK,
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, type, sizes), SOTTO_ERR_CERT_MALFORMED,
 * SOTTO_ERR_SEALED_MISMATCH (sender_identity is not the certificate's),
 * SOTTO_ERR_INVALID_KEY (recipient key), SOTTO_ERR_NOMEM or
 * SOTTO_ERR_CRYPTO; *out is NULL on failure.
 */
SOTTO_API SOTTO_WUR int sotto_sealed_encrypt(uint8_t **out, size_t *out_len,
                                             const sotto_key_pair *sender_identity,
                                             const sotto_public_key *recipient_identity,
                                             uint8_t type, const uint8_t *sender_cert,
                                             size_t sender_cert_len, const uint8_t *content,
                                             size_t content_len);

/* What sotto_sealed_decrypt() hands out. `content` is heap memory owned by
 * the result: release it with sotto_sealed_result_free(). */
typedef struct sotto_sealed_result {
    uint8_t type;                    /* SOTTO_SEALED_TYPE_* */
    sotto_sender_certificate sender; /* the validated sender certificate */
    uint8_t *content;                /* the inner Signal message */
    size_t content_len;
} sotto_sealed_result;

/*
 * Opens a sealed sender v1 message (`len` bytes, peer input) addressed
 * to `recipient_identity` (our identity key pair): both MACs are checked
 * before anything is decrypted; the inner sender certificate is validated
 * against `trust_root` at `now_ms`; the static key that the sender proved
 * (decrypted from encryptedStatic) must equal the certificate's identity
 * key. On success `*out` holds the type, the certificate and a heap copy
 * of the content; on failure `*out` is zeroed (content NULL) and no
 * plaintext is left anywhere. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT
 * (NULL), SOTTO_ERR_UNSUPPORTED_VERSION (first byte not 0x11),
 * SOTTO_ERR_INVALID_MESSAGE (truncated, malformed, a MAC that does not
 * verify, an unknown inner type, empty content), SOTTO_ERR_INVALID_KEY
 * (ephemeral or static key that does not decode / low order),
 * SOTTO_ERR_CERT_MALFORMED, SOTTO_ERR_CERT_UNTRUSTED,
 * SOTTO_ERR_CERT_SIGNATURE, SOTTO_ERR_CERT_EXPIRED,
 * SOTTO_ERR_SEALED_MISMATCH, SOTTO_ERR_NOMEM or SOTTO_ERR_CRYPTO.
 */
SOTTO_API SOTTO_WUR int sotto_sealed_decrypt(sotto_sealed_result *out, const uint8_t *data,
                                             size_t len, const sotto_key_pair *recipient_identity,
                                             const sotto_public_key *trust_root, uint64_t now_ms);

/* Wipes and frees the content of `r` and zeroes it. NULL is a no-op. */
SOTTO_API void sotto_sealed_result_free(sotto_sealed_result *r);

/*
 * Sotto's delivery token (our design, not libsignal's): the first 16
 * bytes of HMAC-SHA256(key = profile_key, "Sotto delivery token v1").
 * The recipient gives its profile key to accepted contacts and the
 * derived token to the server; a sealed envelope is admitted only with
 * the recipient's token. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT
 * (NULL) or SOTTO_ERR_CRYPTO (then `out` is zeroed).
 */
SOTTO_API SOTTO_WUR int
sotto_delivery_token_derive(uint8_t out[SOTTO_STATIC_N(SOTTO_DELIVERY_TOKEN_BYTES)],
                            const uint8_t profile_key[SOTTO_STATIC_N(SOTTO_PROFILE_KEY_BYTES)]);

/* Constant-time comparison of two delivery tokens (sodium_memcmp); false
 * when either is NULL. */
SOTTO_API bool sotto_delivery_token_equal(const uint8_t *a, const uint8_t *b);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_SEALED_H */
