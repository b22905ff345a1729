/*
 * The signed statements of the client-server protocol (sotto/account.h):
 * docs/api.md section 4 "Authentication" and "Adding a device".
 *
 * Each statement is written with the bounded writer of common/buf.h into
 * the caller's buffer: label || 0x00, then the fields in order. The small
 * encoders below (label, username) are shared with the signed device list
 * (device_list.c) through account/statement.h.
 */
#include "sotto/account.h"

#include <sodium.h>
#include <string.h>

#include "account/statement.h"
#include "common/buf.h"

#define AUTH_LABEL "SOTTO-AUTH-V1"
#define ADD_DEVICE_LABEL "SOTTO-ADD-DEVICE-V1"

_Static_assert(SOTTO_AUTH_KEY_BYTES == crypto_sign_PUBLICKEYBYTES, "Ed25519 public key size");
_Static_assert(SOTTO_AUTH_SECRET_KEY_BYTES == crypto_sign_SECRETKEYBYTES, "Ed25519 secret key");
_Static_assert(SOTTO_AUTH_SIGNATURE_BYTES == crypto_sign_BYTES, "Ed25519 signature size");
_Static_assert(SOTTO_AUTH_TRANSCRIPT_MAX_BYTES ==
                   sizeof(AUTH_LABEL) + 1 + SOTTO_AUTH_EXPORTER_BYTES + SOTTO_AUTH_NONCE_BYTES + 1 +
                       SOTTO_USERNAME_MAX_LEN + 4,
               "auth transcript maximum");
_Static_assert(SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES ==
                   sizeof(ADD_DEVICE_LABEL) + 1 + SOTTO_USERNAME_MAX_LEN + SOTTO_AUTH_KEY_BYTES +
                       SOTTO_PUBLIC_KEY_BYTES + 4,
               "add-device statement maximum");

/* Length of a valid username, or 0 when `s` is not one. Reads at most
 * SOTTO_USERNAME_MAX_LEN + 1 bytes. Shared with device_list.c
 * (account/statement.h). */
size_t sotto_stmt_username_len(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; n <= SOTTO_USERNAME_MAX_LEN && s[n] != '\0'; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'))
            return 0;
    }
    if (n < SOTTO_USERNAME_MIN_LEN || n > SOTTO_USERNAME_MAX_LEN)
        return 0;
    return n;
}

bool sotto_username_valid(const char *username)
{
    return sotto_stmt_username_len(username) != 0;
}

/* The domain separator: ASCII label then 0x00. */
void sotto_stmt_put_label(sotto_wbuf *w, const char *label)
{
    sotto_wbuf_put(w, label, strlen(label));
    sotto_wbuf_put_u8(w, 0x00);
}

/* One length byte and the characters (ul already validated, <= 32). */
void sotto_stmt_put_username(sotto_wbuf *w, const char *username, size_t ul)
{
    sotto_wbuf_put_u8(w, (uint8_t)ul);
    sotto_wbuf_put(w, username, ul);
}

/* Ends a build: on success reports the length; otherwise nothing is handed
 * out (the caller's buffer is zeroed, *out_len is 0). */
static int finish(sotto_wbuf *w, int rc, uint8_t *out, size_t out_cap, size_t *out_len)
{
    if (rc == SOTTO_OK)
        rc = sotto_wbuf_error(w);
    if (rc != SOTTO_OK) {
        if (out != NULL && out_cap > 0)
            sodium_memzero(out, out_cap);
        if (out_len != NULL)
            *out_len = 0;
        return rc;
    }
    *out_len = w->len;
    return SOTTO_OK;
}

int sotto_auth_transcript(uint8_t *out, size_t out_cap, size_t *out_len, uint8_t purpose,
                          const uint8_t exporter[SOTTO_AUTH_EXPORTER_BYTES],
                          const uint8_t nonce[SOTTO_AUTH_NONCE_BYTES], const char *username,
                          uint32_t device_id)
{
    sotto_wbuf w;
    size_t ul = sotto_stmt_username_len(username);
    int rc = SOTTO_OK;

    sotto_wbuf_init_fixed(&w, out, out != NULL ? out_cap : 0);
    if (out == NULL || out_len == NULL || exporter == NULL || nonce == NULL || username == NULL ||
        (purpose != SOTTO_AUTH_PURPOSE_REGISTER && purpose != SOTTO_AUTH_PURPOSE_LOGIN) ||
        device_id == 0) {
        rc = SOTTO_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if (ul == 0) {
        rc = SOTTO_ERR_INVALID_USERNAME;
        goto out;
    }
    sotto_stmt_put_label(&w, AUTH_LABEL);
    sotto_wbuf_put_u8(&w, purpose);
    sotto_wbuf_put(&w, exporter, SOTTO_AUTH_EXPORTER_BYTES);
    sotto_wbuf_put(&w, nonce, SOTTO_AUTH_NONCE_BYTES);
    sotto_stmt_put_username(&w, username, ul);
    sotto_wbuf_put_u32be(&w, device_id);
out:
    return finish(&w, rc, out, out_cap, out_len);
}

int sotto_auth_sign(uint8_t sig[SOTTO_AUTH_SIGNATURE_BYTES],
                    const uint8_t auth_sk[SOTTO_AUTH_SECRET_KEY_BYTES], uint8_t purpose,
                    const uint8_t exporter[SOTTO_AUTH_EXPORTER_BYTES],
                    const uint8_t nonce[SOTTO_AUTH_NONCE_BYTES], const char *username,
                    uint32_t device_id)
{
    uint8_t msg[SOTTO_AUTH_TRANSCRIPT_MAX_BYTES];
    size_t n = 0;
    int rc;

    if (sig == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sodium_memzero(sig, SOTTO_AUTH_SIGNATURE_BYTES);
    if (auth_sk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_auth_transcript(msg, sizeof(msg), &n, purpose, exporter, nonce, username, device_id);
    if (rc == SOTTO_OK && crypto_sign_detached(sig, NULL, msg, n, auth_sk) != 0) {
        sodium_memzero(sig, SOTTO_AUTH_SIGNATURE_BYTES);
        rc = SOTTO_ERR_CRYPTO;
    }
    sodium_memzero(msg, sizeof(msg));
    return rc;
}

int sotto_auth_verify(const uint8_t auth_key[SOTTO_AUTH_KEY_BYTES], uint8_t purpose,
                      const uint8_t exporter[SOTTO_AUTH_EXPORTER_BYTES],
                      const uint8_t nonce[SOTTO_AUTH_NONCE_BYTES], const char *username,
                      uint32_t device_id, const uint8_t sig[SOTTO_AUTH_SIGNATURE_BYTES])
{
    uint8_t msg[SOTTO_AUTH_TRANSCRIPT_MAX_BYTES];
    size_t n = 0;
    int rc;

    if (auth_key == NULL || sig == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_auth_transcript(msg, sizeof(msg), &n, purpose, exporter, nonce, username, device_id);
    if (rc == SOTTO_OK && crypto_sign_verify_detached(sig, msg, n, auth_key) != 0)
        rc = SOTTO_ERR_INVALID_SIGNATURE;
    sodium_memzero(msg, sizeof(msg));
    return rc;
}

int sotto_add_device_statement(uint8_t *out, size_t out_cap, size_t *out_len, const char *username,
                               const uint8_t auth_key[SOTTO_AUTH_KEY_BYTES],
                               const uint8_t identity_key[SOTTO_PUBLIC_KEY_BYTES],
                               uint32_t registration_id)
{
    sotto_wbuf w;
    size_t ul = sotto_stmt_username_len(username);
    int rc = SOTTO_OK;

    sotto_wbuf_init_fixed(&w, out, out != NULL ? out_cap : 0);
    if (out == NULL || out_len == NULL || username == NULL || auth_key == NULL ||
        identity_key == NULL || registration_id == 0 ||
        registration_id > SOTTO_REGISTRATION_ID_MAX) {
        rc = SOTTO_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if (ul == 0) {
        rc = SOTTO_ERR_INVALID_USERNAME;
        goto out;
    }
    if (identity_key[0] != SOTTO_KEY_TYPE_DJB) {
        rc = SOTTO_ERR_INVALID_KEY;
        goto out;
    }
    sotto_stmt_put_label(&w, ADD_DEVICE_LABEL);
    sotto_stmt_put_username(&w, username, ul);
    sotto_wbuf_put(&w, auth_key, SOTTO_AUTH_KEY_BYTES);
    sotto_wbuf_put(&w, identity_key, SOTTO_PUBLIC_KEY_BYTES);
    sotto_wbuf_put_u32be(&w, registration_id);
out:
    return finish(&w, rc, out, out_cap, out_len);
}

int sotto_add_device_sign(uint8_t sig[SOTTO_AUTH_SIGNATURE_BYTES],
                          const uint8_t signer_sk[SOTTO_AUTH_SECRET_KEY_BYTES],
                          const char *username, const uint8_t auth_key[SOTTO_AUTH_KEY_BYTES],
                          const uint8_t identity_key[SOTTO_PUBLIC_KEY_BYTES],
                          uint32_t registration_id)
{
    uint8_t msg[SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES];
    size_t n = 0;
    int rc;

    if (sig == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sodium_memzero(sig, SOTTO_AUTH_SIGNATURE_BYTES);
    if (signer_sk == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_add_device_statement(msg, sizeof(msg), &n, username, auth_key, identity_key,
                                    registration_id);
    if (rc == SOTTO_OK && crypto_sign_detached(sig, NULL, msg, n, signer_sk) != 0) {
        sodium_memzero(sig, SOTTO_AUTH_SIGNATURE_BYTES);
        rc = SOTTO_ERR_CRYPTO;
    }
    sodium_memzero(msg, sizeof(msg));
    return rc;
}

int sotto_add_device_verify(const uint8_t signer_key[SOTTO_AUTH_KEY_BYTES], const char *username,
                            const uint8_t auth_key[SOTTO_AUTH_KEY_BYTES],
                            const uint8_t identity_key[SOTTO_PUBLIC_KEY_BYTES],
                            uint32_t registration_id, const uint8_t sig[SOTTO_AUTH_SIGNATURE_BYTES])
{
    uint8_t msg[SOTTO_ADD_DEVICE_STATEMENT_MAX_BYTES];
    size_t n = 0;
    int rc;

    if (signer_key == NULL || sig == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_add_device_statement(msg, sizeof(msg), &n, username, auth_key, identity_key,
                                    registration_id);
    if (rc == SOTTO_OK && crypto_sign_verify_detached(sig, msg, n, signer_key) != 0)
        rc = SOTTO_ERR_INVALID_SIGNATURE;
    sodium_memzero(msg, sizeof(msg));
    return rc;
}
