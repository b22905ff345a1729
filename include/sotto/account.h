/*
 * sotto/account.h -- the signed statements of the client-server protocol:
 * the authentication transcript (login and register) and the add-device
 * statement. The one place where their bytes are built; client, server and
 * the test client all call it.
 *
 * Spec: docs/api.md section 4 "Authentication" (the authentication message)
 * and "Adding a device" (the add-device statement). The hex examples there
 * are pinned by tests/unit/test_account.c.
 *
 * Keys: both statements are signed with a device's *auth key*, an Ed25519
 * key pair (RFC 8032, pure Ed25519, no pre-hash) separate from its Signal
 * identity key. The secret key is libsodium's 64-byte form (seed || public
 * key, crypto_sign_keypair()); the public key is 32 bytes.
 *   - The authentication transcript is signed by the device that logs in
 *     (or registers) with its own auth key.
 *   - The add-device statement is signed by an already logged-in device of
 *     the account (the "adder") with its auth key, over the NEW device's
 *     keys; the server and every peer verify it with the adder's auth key.
 *
 * Every statement starts with an ASCII label and a 0x00 byte, so a
 * signature over one kind can never be taken for another. Usernames are
 * 3..32 characters of a-z, 0-9, '_' and '.' (docs/api.md section 3) and are
 * written as one length byte and the characters.
 *
 * Building writes into a caller buffer (no allocation). On any error
 * nothing is returned: the buffer is zeroed and *out_len is 0. The
 * signed device list (account key, version, per-device keys) is in
 * sotto/device_list.h, with the same conventions.
 */
#ifndef SOTTO_ACCOUNT_H
#define SOTTO_ACCOUNT_H

#include <stdbool.h>

#include "sotto/common.h"
#include "sotto/error.h"
#include "sotto/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_USERNAME_MIN_LEN 3
#define SOTTO_USERNAME_MAX_LEN 32
#define SOTTO_AUTH_KEY_BYTES 32        /* Ed25519 public key */
#define SOTTO_AUTH_SECRET_KEY_BYTES 64 /* libsodium Ed25519 secret key (seed || public) */
#define SOTTO_AUTH_SIGNATURE_BYTES 64  /* Ed25519 signature */
#define SOTTO_AUTH_EXPORTER_BYTES 32   /* RFC 9266 tls-exporter value */
#define SOTTO_AUTH_NONCE_BYTES 32      /* the server's challenge nonce */
#define SOTTO_AUTH_PURPOSE_REGISTER 0x01
#define SOTTO_AUTH_PURPOSE_LOGIN 0x02
#define SOTTO_REGISTRATION_ID_MAX 16380 /* registration ids are 1 .. 16380 */

/* Largest authentication transcript: "SOTTO-AUTH-V1" 0x00 purpose exporter
 * nonce len username(32) device_id = 13+1+1+32+32+1+32+4 bytes. */
#define SOTTO_AUTH_TRANSCRIPT_MAX_BYTES 116
/* Largest add-device statement: "SOTTO-ADD-DEVICE-V1" 0x00 len username(32)
 * auth_key identity_key registration_id = 19+1+1+32+32+33+4 bytes. */
#define SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES 122

/*
 * True when `username` is a valid username (docs/api.md section 3): 3..32
 * characters, each one of a-z, 0-9, '_', '.'. Reads at most 33 bytes of
 * `username`; false for NULL.
 */
SOTTO_API bool sotto_username_valid(const char *username);

/*
 * Builds the authentication message of docs/api.md section 4 into `out`
 * (`out_cap` bytes, SOTTO_AUTH_TRANSCRIPT_MAX_BYTES always suffices):
 *
 *   "SOTTO-AUTH-V1" 0x00 | purpose (1) | exporter (32) | nonce (32) |
 *   len(username) (1) | username | device_id (4, big-endian)
 *
 * `purpose` is SOTTO_AUTH_PURPOSE_REGISTER or SOTTO_AUTH_PURPOSE_LOGIN;
 * `device_id` >= 1 (1 for register). On success *out_len is the length
 * (84 + strlen(username)). Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT
 * (NULL, unknown purpose, device id 0), SOTTO_ERR_INVALID_USERNAME or
 * SOTTO_ERR_BUFFER_TOO_SMALL; on error `out` (when not NULL) is zeroed and
 * *out_len (when not NULL) is 0.
 */
SOTTO_API SOTTO_WUR int
sotto_auth_transcript(uint8_t *out, size_t out_cap, size_t *out_len, uint8_t purpose,
                      const uint8_t exporter[SOTTO_STATIC_N(SOTTO_AUTH_EXPORTER_BYTES)],
                      const uint8_t nonce[SOTTO_STATIC_N(SOTTO_AUTH_NONCE_BYTES)],
                      const char *username, uint32_t device_id);

/*
 * Signs the authentication transcript (arguments as for
 * sotto_auth_transcript) with the device's Ed25519 auth secret key
 * `auth_sk` (64 bytes, secret: the caller keeps and wipes it) into the
 * 64-byte `sig`. Returns SOTTO_OK, the errors of sotto_auth_transcript, or
 * SOTTO_ERR_CRYPTO; on error `sig` is zeroed.
 */
SOTTO_API SOTTO_WUR int
sotto_auth_sign(uint8_t sig[SOTTO_STATIC_N(SOTTO_AUTH_SIGNATURE_BYTES)],
                const uint8_t auth_sk[SOTTO_STATIC_N(SOTTO_AUTH_SECRET_KEY_BYTES)], uint8_t purpose,
                const uint8_t exporter[SOTTO_STATIC_N(SOTTO_AUTH_EXPORTER_BYTES)],
                const uint8_t nonce[SOTTO_STATIC_N(SOTTO_AUTH_NONCE_BYTES)], const char *username,
                uint32_t device_id);

/*
 * Verifies a 64-byte Ed25519 signature `sig` over the authentication
 * transcript with the device's 32-byte auth public key `auth_key`. Returns
 * SOTTO_OK when it verifies, SOTTO_ERR_INVALID_SIGNATURE when it does not
 * (also for a small-order or non-canonical key), or the errors of
 * sotto_auth_transcript for bad arguments. Anything but SOTTO_OK means
 * "not authenticated".
 */
SOTTO_API SOTTO_WUR int
sotto_auth_verify(const uint8_t auth_key[SOTTO_STATIC_N(SOTTO_AUTH_KEY_BYTES)], uint8_t purpose,
                  const uint8_t exporter[SOTTO_STATIC_N(SOTTO_AUTH_EXPORTER_BYTES)],
                  const uint8_t nonce[SOTTO_STATIC_N(SOTTO_AUTH_NONCE_BYTES)], const char *username,
                  uint32_t device_id,
                  const uint8_t sig[SOTTO_STATIC_N(SOTTO_AUTH_SIGNATURE_BYTES)]);

/*
 * Builds the add-device statement of docs/api.md "Adding a device" into
 * `out` (`out_cap` bytes, SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES always
 * suffices):
 *
 *   "SOTTO-ADD-DEVICE-V1" 0x00 | len(username) (1) | username |
 *   auth_key (32) | identity_key (33) | registration_id (4, big-endian)
 *
 * `username` is the account's; `auth_key`, `identity_key` (serialised,
 * 0x05 || X25519) and `registration_id` (1..16380) are the NEW device's.
 * On success *out_len is the length (90 + strlen(username)). Returns
 * SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL, registration id out of
 * range), SOTTO_ERR_INVALID_USERNAME, SOTTO_ERR_INVALID_KEY (identity key
 * not starting with 0x05) or SOTTO_ERR_BUFFER_TOO_SMALL; on error `out`
 * (when not NULL) is zeroed and *out_len (when not NULL) is 0.
 */
SOTTO_API SOTTO_WUR int
sotto_add_device_statement(uint8_t *out, size_t out_cap, size_t *out_len, const char *username,
                           const uint8_t auth_key[SOTTO_STATIC_N(SOTTO_AUTH_KEY_BYTES)],
                           const uint8_t identity_key[SOTTO_STATIC_N(SOTTO_PUBLIC_KEY_BYTES)],
                           uint32_t registration_id);

/*
 * Signs the add-device statement (arguments as for
 * sotto_add_device_statement) with the ADDING device's Ed25519 auth secret
 * key `signer_sk` (64 bytes, secret: the caller keeps and wipes it) into
 * the 64-byte `sig`. Returns SOTTO_OK, the errors of
 * sotto_add_device_statement, or SOTTO_ERR_CRYPTO; on error `sig` is zeroed.
 */
SOTTO_API SOTTO_WUR int sotto_add_device_sign(
    uint8_t sig[SOTTO_STATIC_N(SOTTO_AUTH_SIGNATURE_BYTES)],
    const uint8_t signer_sk[SOTTO_STATIC_N(SOTTO_AUTH_SECRET_KEY_BYTES)], const char *username,
    const uint8_t auth_key[SOTTO_STATIC_N(SOTTO_AUTH_KEY_BYTES)],
    const uint8_t identity_key[SOTTO_STATIC_N(SOTTO_PUBLIC_KEY_BYTES)], uint32_t registration_id);

/*
 * Verifies a 64-byte Ed25519 signature `sig` over the add-device statement
 * with the ADDING device's 32-byte auth public key `signer_key`. Returns
 * SOTTO_OK when it verifies, SOTTO_ERR_INVALID_SIGNATURE when it does not,
 * or the errors of sotto_add_device_statement for bad arguments (peer
 * input: a malformed identity key gives SOTTO_ERR_INVALID_KEY). Anything but
 * SOTTO_OK means "this device was not added by that signer".
 */
SOTTO_API SOTTO_WUR int sotto_add_device_verify(
    const uint8_t signer_key[SOTTO_STATIC_N(SOTTO_AUTH_KEY_BYTES)], const char *username,
    const uint8_t auth_key[SOTTO_STATIC_N(SOTTO_AUTH_KEY_BYTES)],
    const uint8_t identity_key[SOTTO_STATIC_N(SOTTO_PUBLIC_KEY_BYTES)], uint32_t registration_id,
    const uint8_t sig[SOTTO_STATIC_N(SOTTO_AUTH_SIGNATURE_BYTES)]);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_ACCOUNT_H */
