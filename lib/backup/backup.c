/*
 * Backup files and recovery codes (sotto/backup.h; docs/protocol.md
 * "Backup file"): Argon2id (libsodium crypto_pwhash, ALG_ARGON2ID13) of the
 * 30-digit recovery code, then XChaCha20-Poly1305-IETF with the whole
 * header as associated data. Nothing here is new cryptography: two
 * libsodium constructions used as their documentation says.
 *
 * The header is written with the fixed writer and read with the bounded
 * cursor of common/buf.h. The Argon2id parameters are range-checked before
 * any key derivation, so a hostile file costs at most the maximum.
 */
#include "backup/backup_internal.h"

#include <sodium.h>
#include <string.h>

#include "common/buf.h"
#include "crypto/crypto.h"

#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES

_Static_assert(sizeof(SOTTO_BACKUP_MAGIC) - 1 == SOTTO_BACKUP_MAGIC_BYTES, "magic size");
_Static_assert(SOTTO_BACKUP_HEADER_BYTES == SOTTO_BACKUP_MAGIC_BYTES + 4 + 8 +
                                                SOTTO_BACKUP_SALT_BYTES + SOTTO_BACKUP_NONCE_BYTES,
               "header size");
_Static_assert(SOTTO_BACKUP_SALT_BYTES == crypto_pwhash_argon2id_SALTBYTES, "Argon2id salt");
_Static_assert(SOTTO_BACKUP_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
               "XChaCha20 nonce");
_Static_assert(SOTTO_BACKUP_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "Poly1305 tag");
_Static_assert(SOTTO_BACKUP_MEMLIMIT_MAX <= SIZE_MAX, "memlimit fits in size_t");
_Static_assert(SOTTO_RECOVERY_CODE_TEXT_BYTES ==
                   SOTTO_RECOVERY_CODE_DIGITS +
                       SOTTO_RECOVERY_CODE_DIGITS / SOTTO_RECOVERY_CODE_GROUP - 1 + 1,
               "display form");

const sotto_backup_limits sotto_backup_public_limits = {
    .min = {crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
            crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE},
    .max = {SOTTO_BACKUP_OPSLIMIT_MAX, SOTTO_BACKUP_MEMLIMIT_MAX},
};

/* ---- recovery codes ---- */

static bool code_valid(const sotto_recovery_code *code)
{
    if (code == NULL || code->digits[SOTTO_RECOVERY_CODE_DIGITS] != '\0')
        return false;
    for (size_t i = 0; i < SOTTO_RECOVERY_CODE_DIGITS; i++) {
        if (code->digits[i] < '0' || code->digits[i] > '9')
            return false;
    }
    return true;
}

int sotto_recovery_code_generate(sotto_recovery_code *out)
{
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < SOTTO_RECOVERY_CODE_DIGITS; i++)
        out->digits[i] = (char)('0' + randombytes_uniform(10)); /* uniform, no modulo bias */
    out->digits[SOTTO_RECOVERY_CODE_DIGITS] = '\0';
    return SOTTO_OK;
}

int sotto_recovery_code_format(const sotto_recovery_code *code,
                               char text[SOTTO_RECOVERY_CODE_TEXT_BYTES])
{
    size_t o = 0;

    if (text == NULL || !code_valid(code))
        return SOTTO_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < SOTTO_RECOVERY_CODE_DIGITS; i++) {
        if (i > 0 && i % SOTTO_RECOVERY_CODE_GROUP == 0)
            text[o++] = ' ';
        text[o++] = code->digits[i];
    }
    text[o] = '\0';
    return SOTTO_OK;
}

int sotto_recovery_code_parse(sotto_recovery_code *out, const char *text)
{
    size_t n = 0, i;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sodium_memzero(out, sizeof *out);
    if (text == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    for (i = 0; i < SOTTO_RECOVERY_CODE_INPUT_MAX && text[i] != '\0'; i++) {
        char ch = text[i];
        if (ch == ' ' || ch == '-')
            continue;
        if (ch < '0' || ch > '9' || n == SOTTO_RECOVERY_CODE_DIGITS)
            goto bad;
        out->digits[n++] = ch;
    }
    if (i == SOTTO_RECOVERY_CODE_INPUT_MAX || n != SOTTO_RECOVERY_CODE_DIGITS)
        goto bad;
    return SOTTO_OK;
bad:
    sodium_memzero(out, sizeof *out);
    return SOTTO_ERR_RECOVERY_CODE;
}

void sotto_recovery_code_wipe(sotto_recovery_code *code)
{
    if (code != NULL)
        sodium_memzero(code, sizeof *code);
}

/* ---- files ---- */

void sotto_backup_params_default(sotto_backup_params *out)
{
    if (out == NULL)
        return;
    out->opslimit = crypto_pwhash_argon2id_OPSLIMIT_MODERATE;
    out->memlimit = crypto_pwhash_argon2id_MEMLIMIT_MODERATE;
}

static bool params_in(const sotto_backup_params *p, const sotto_backup_limits *l)
{
    return p->opslimit >= l->min.opslimit && p->opslimit <= l->max.opslimit &&
           p->memlimit >= l->min.memlimit && p->memlimit <= l->max.memlimit &&
           p->opslimit >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
           p->memlimit >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
           p->memlimit <= SOTTO_BACKUP_MEMLIMIT_MAX;
}

/* key = Argon2id(digits, salt, params); 32 bytes, secret. */
static int derive_key(uint8_t key[KEY_BYTES], const sotto_recovery_code *code,
                      const uint8_t salt[SOTTO_BACKUP_SALT_BYTES], const sotto_backup_params *p)
{
    if (crypto_pwhash(key, KEY_BYTES, code->digits, SOTTO_RECOVERY_CODE_DIGITS, salt, p->opslimit,
                      (size_t)p->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sodium_memzero(key, KEY_BYTES);
        /* the parameters were checked: what is left is allocation */
        return SOTTO_ERR_NOMEM;
    }
    return SOTTO_OK;
}

int sotto_backup_seal_with(uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *payload,
                           size_t payload_len, const sotto_recovery_code *code,
                           const sotto_backup_params *params,
                           const uint8_t salt[SOTTO_BACKUP_SALT_BYTES],
                           const uint8_t nonce[SOTTO_BACKUP_NONCE_BYTES],
                           const sotto_backup_limits *limits)
{
    static const uint8_t empty[1];
    uint8_t key[KEY_BYTES];
    sotto_wbuf w;
    unsigned long long clen = 0;
    int rc;

    sodium_memzero(key, sizeof key);
    sotto_wbuf_init_fixed(&w, out, out != NULL ? out_cap : 0);
    if (out == NULL || out_len == NULL || (payload == NULL && payload_len > 0) ||
        payload_len > SOTTO_BACKUP_PAYLOAD_MAX || !code_valid(code) || params == NULL ||
        salt == NULL || nonce == NULL || limits == NULL) {
        rc = SOTTO_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if (!params_in(params, limits)) {
        rc = SOTTO_ERR_BACKUP_PARAMS;
        goto out;
    }
    if (out_cap < payload_len + SOTTO_BACKUP_OVERHEAD) {
        rc = SOTTO_ERR_BUFFER_TOO_SMALL;
        goto out;
    }
    sotto_wbuf_put(&w, SOTTO_BACKUP_MAGIC, SOTTO_BACKUP_MAGIC_BYTES);
    sotto_wbuf_put_u32be(&w, params->opslimit);
    sotto_wbuf_put_u64be(&w, params->memlimit);
    sotto_wbuf_put(&w, salt, SOTTO_BACKUP_SALT_BYTES);
    sotto_wbuf_put(&w, nonce, SOTTO_BACKUP_NONCE_BYTES);
    rc = sotto_wbuf_error(&w);
    if (rc != SOTTO_OK)
        goto out;
    rc = derive_key(key, code, salt, params);
    if (rc != SOTTO_OK)
        goto out;
    /* ciphertext || tag after the header; the header is the associated data */
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(
            out + SOTTO_BACKUP_HEADER_BYTES, &clen, payload != NULL ? payload : empty, payload_len,
            out, SOTTO_BACKUP_HEADER_BYTES, NULL, nonce, key) != 0 ||
        clen != payload_len + SOTTO_BACKUP_TAG_BYTES) {
        rc = SOTTO_ERR_CRYPTO;
        goto out;
    }
out:
    sodium_memzero(key, sizeof key);
    if (rc != SOTTO_OK) {
        if (out != NULL && out_cap > 0)
            sodium_memzero(out, out_cap);
        if (out_len != NULL)
            *out_len = 0;
        return rc;
    }
    *out_len = SOTTO_BACKUP_HEADER_BYTES + (size_t)clen;
    return SOTTO_OK;
}

int sotto_backup_seal(uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *payload,
                      size_t payload_len, const sotto_recovery_code *code,
                      const sotto_backup_params *params)
{
    uint8_t salt[SOTTO_BACKUP_SALT_BYTES], nonce[SOTTO_BACKUP_NONCE_BYTES];
    sotto_backup_params def;

    sotto_backup_params_default(&def);
    sotto_random_buf(salt, sizeof salt);
    sotto_random_buf(nonce, sizeof nonce);
    return sotto_backup_seal_with(out, out_cap, out_len, payload, payload_len, code,
                                  params != NULL ? params : &def, salt, nonce,
                                  &sotto_backup_public_limits);
}

int sotto_backup_read_params_with(const uint8_t *file, size_t len, sotto_backup_params *out,
                                  const sotto_backup_limits *limits)
{
    sotto_rbuf r;
    const uint8_t *magic;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (file == NULL || limits == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (len < SOTTO_BACKUP_OVERHEAD || len - SOTTO_BACKUP_OVERHEAD > SOTTO_BACKUP_PAYLOAD_MAX)
        return SOTTO_ERR_BACKUP_FORMAT;
    sotto_rbuf_init(&r, file, SOTTO_BACKUP_HEADER_BYTES);
    if (sotto_rbuf_get_ptr(&r, SOTTO_BACKUP_MAGIC_BYTES, &magic) != SOTTO_OK ||
        sodium_memcmp(magic, SOTTO_BACKUP_MAGIC, SOTTO_BACKUP_MAGIC_BYTES) != 0)
        return SOTTO_ERR_BACKUP_FORMAT;
    if (sotto_rbuf_get_u32be(&r, &out->opslimit) != SOTTO_OK ||
        sotto_rbuf_get_u64be(&r, &out->memlimit) != SOTTO_OK)
        return SOTTO_ERR_BACKUP_FORMAT;
    return params_in(out, limits) ? SOTTO_OK : SOTTO_ERR_BACKUP_PARAMS;
}

int sotto_backup_read_params(const uint8_t *file, size_t len, sotto_backup_params *out)
{
    return sotto_backup_read_params_with(file, len, out, &sotto_backup_public_limits);
}

int sotto_backup_open_with(uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *file,
                           size_t file_len, const sotto_recovery_code *code,
                           const sotto_backup_limits *limits)
{
    uint8_t key[KEY_BYTES];
    sotto_backup_params p;
    sotto_rbuf r;
    const uint8_t *salt, *nonce, *ct;
    unsigned long long mlen = 0;
    size_t ct_len;
    int rc;

    sodium_memzero(key, sizeof key);
    if (out == NULL || out_len == NULL || file == NULL || !code_valid(code) || limits == NULL) {
        rc = SOTTO_ERR_INVALID_ARGUMENT;
        goto out;
    }
    rc = sotto_backup_read_params_with(file, file_len, &p, limits);
    if (rc != SOTTO_OK)
        goto out;
    ct_len = file_len - SOTTO_BACKUP_HEADER_BYTES; /* >= the tag: checked above */
    if (out_cap < ct_len - SOTTO_BACKUP_TAG_BYTES) {
        rc = SOTTO_ERR_BUFFER_TOO_SMALL;
        goto out;
    }
    sotto_rbuf_init(&r, file, file_len);
    if (sotto_rbuf_get_ptr(&r, SOTTO_BACKUP_MAGIC_BYTES + 4 + 8, &salt) != SOTTO_OK ||
        sotto_rbuf_get_ptr(&r, SOTTO_BACKUP_SALT_BYTES, &salt) != SOTTO_OK ||
        sotto_rbuf_get_ptr(&r, SOTTO_BACKUP_NONCE_BYTES, &nonce) != SOTTO_OK ||
        sotto_rbuf_get_ptr(&r, ct_len, &ct) != SOTTO_OK) {
        rc = SOTTO_ERR_BACKUP_FORMAT;
        goto out;
    }
    rc = derive_key(key, code, salt, &p);
    if (rc != SOTTO_OK)
        goto out;
    /* verifies the tag over header and ciphertext before writing anything */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, ct_len, file,
                                                   SOTTO_BACKUP_HEADER_BYTES, nonce, key) != 0 ||
        mlen != ct_len - SOTTO_BACKUP_TAG_BYTES)
        rc = SOTTO_ERR_BACKUP_WRONG_CODE;
out:
    sodium_memzero(key, sizeof key);
    if (rc != SOTTO_OK) {
        if (out != NULL && out_cap > 0)
            sodium_memzero(out, out_cap);
        if (out_len != NULL)
            *out_len = 0;
        return rc;
    }
    *out_len = (size_t)mlen;
    return SOTTO_OK;
}

int sotto_backup_open(uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *file,
                      size_t file_len, const sotto_recovery_code *code)
{
    return sotto_backup_open_with(out, out_cap, out_len, file, file_len, code,
                                  &sotto_backup_public_limits);
}
