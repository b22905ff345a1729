/*
 * The signed device list (sotto/device_list.h; docs/protocol.md "Account
 * key and device list").
 *
 * One validator (sotto_device_list_check) serves both directions: the
 * builder refuses to sign a list it would refuse to parse, and the parser
 * runs it on what it read. Writing goes through the fixed-buffer writer and
 * reading through the bounded cursor of common/buf.h; the label and
 * username encoders are those of the other statements (account/statement.h).
 *
 * Verification checks the account key's XEdDSA signature over the bytes
 * before the last 64 first, so the field parser only sees signed bytes.
 */
#include "sotto/device_list.h"

#include <sodium.h>
#include <string.h>

#include "account/statement.h"
#include "common/buf.h"

#define DEVICE_LIST_LABEL "SOTTO-DEVICE-LIST-V1"
#define LABEL_BYTES (sizeof(DEVICE_LIST_LABEL))  /* label and its 0x00 */
#define HEAD_BYTES (LABEL_BYTES + 1 + 8 + 8 + 1) /* without the username */

_Static_assert(SOTTO_DEVICE_LIST_ENTRY_BYTES ==
                   4 + 4 + SOTTO_PUBLIC_KEY_BYTES + SOTTO_AUTH_KEY_BYTES + 4,
               "device entry size");
_Static_assert(SOTTO_DEVICE_LIST_STATEMENT_MIN_BYTES ==
                   HEAD_BYTES + SOTTO_USERNAME_MIN_LEN + SOTTO_DEVICE_LIST_ENTRY_BYTES,
               "smallest statement");
_Static_assert(SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES ==
                   HEAD_BYTES + SOTTO_USERNAME_MAX_LEN +
                       SOTTO_DEVICE_LIST_MAX * SOTTO_DEVICE_LIST_ENTRY_BYTES,
               "largest statement");
_Static_assert(SOTTO_DEVICE_LIST_MAX <= 255, "n is one byte");

static bool auth_key_valid(const uint8_t key[SOTTO_AUTH_KEY_BYTES])
{
    /* canonical encoding, on the curve, in the main subgroup, not of small
     * order: what crypto_sign_verify_detached would accept as a key */
    return crypto_core_ed25519_is_valid_point(key) == 1;
}

int sotto_device_list_check(const sotto_device_list *list)
{
    uint32_t prev = 0;

    if (list == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    /* the username must be NUL-terminated inside its array */
    if (memchr(list->username, '\0', sizeof list->username) == NULL ||
        sotto_stmt_username_len(list->username) == 0)
        return SOTTO_ERR_INVALID_USERNAME;
    if (list->version == 0)
        return SOTTO_ERR_DEVICE_LIST_FIELD;
    if (list->n_devices == 0 || list->n_devices > SOTTO_DEVICE_LIST_MAX)
        return SOTTO_ERR_DEVICE_LIST_COUNT;
    for (size_t i = 0; i < list->n_devices; i++) {
        const sotto_device_entry *d = &list->devices[i];
        if (d->device_id == 0)
            return SOTTO_ERR_DEVICE_LIST_FIELD;
        if (i > 0 && d->device_id <= prev)
            return SOTTO_ERR_DEVICE_LIST_ORDER;
        prev = d->device_id;
        if (d->registration_id == 0 || d->registration_id > SOTTO_REGISTRATION_ID_MAX)
            return SOTTO_ERR_DEVICE_LIST_FIELD;
        if (d->identity_key.bytes[0] != SOTTO_KEY_TYPE_DJB || !auth_key_valid(d->auth_key))
            return SOTTO_ERR_INVALID_KEY;
    }
    return SOTTO_OK;
}

/* Writes the statement of a checked list. */
static void put_statement(sotto_wbuf *w, const sotto_device_list *list)
{
    sotto_stmt_put_label(w, DEVICE_LIST_LABEL);
    sotto_stmt_put_username(w, list->username, strlen(list->username));
    sotto_wbuf_put_u64be(w, list->version);
    sotto_wbuf_put_u64be(w, list->timestamp_ms);
    sotto_wbuf_put_u8(w, (uint8_t)list->n_devices);
    for (size_t i = 0; i < list->n_devices; i++) {
        const sotto_device_entry *d = &list->devices[i];
        sotto_wbuf_put_u32be(w, d->device_id);
        sotto_wbuf_put_u32be(w, d->registration_id);
        sotto_wbuf_put(w, d->identity_key.bytes, SOTTO_PUBLIC_KEY_BYTES);
        sotto_wbuf_put(w, d->auth_key, SOTTO_AUTH_KEY_BYTES);
        sotto_wbuf_put_u32be(w, d->capabilities);
    }
}

/* Ends a build: nothing is handed out on error. */
static int finish(int rc, uint8_t *out, size_t out_cap, size_t *out_len, size_t len)
{
    if (rc != SOTTO_OK) {
        if (out != NULL && out_cap > 0)
            sodium_memzero(out, out_cap);
        if (out_len != NULL)
            *out_len = 0;
        return rc;
    }
    *out_len = len;
    return SOTTO_OK;
}

int sotto_device_list_statement(const sotto_device_list *list, uint8_t *out, size_t out_cap,
                                size_t *out_len)
{
    sotto_wbuf w;
    int rc;

    sotto_wbuf_init_fixed(&w, out, out != NULL ? out_cap : 0);
    if (out == NULL || out_len == NULL)
        rc = SOTTO_ERR_INVALID_ARGUMENT;
    else
        rc = sotto_device_list_check(list);
    if (rc == SOTTO_OK) {
        put_statement(&w, list);
        rc = sotto_wbuf_error(&w);
    }
    return finish(rc, out, out_cap, out_len, w.len);
}

int sotto_device_list_sign(const sotto_device_list *list, const sotto_key_pair *account_key,
                           uint8_t *out, size_t out_cap, size_t *out_len)
{
    sotto_wbuf w;
    uint8_t *sig;
    size_t n = 0;
    int rc;

    sotto_wbuf_init_fixed(&w, out, out != NULL ? out_cap : 0);
    if (out == NULL || out_len == NULL || account_key == NULL) {
        rc = SOTTO_ERR_INVALID_ARGUMENT;
        goto out;
    }
    rc = sotto_device_list_check(list);
    if (rc != SOTTO_OK)
        goto out;
    put_statement(&w, list);
    n = w.len;
    sig = sotto_wbuf_reserve(&w, SOTTO_SIGNATURE_BYTES);
    rc = sotto_wbuf_error(&w);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_xeddsa_sign(sig, account_key->priv, out, n);
out:
    return finish(rc, out, out_cap, out_len, w.len);
}

/*
 * Reads one statement from `r` into `out` (zeroed by the caller); every
 * field is bounds-checked by the cursor, n before any entry is read.
 * Canonical checks are left to sotto_device_list_check().
 */
static int read_statement(sotto_rbuf *r, sotto_device_list *out)
{
    const uint8_t *p;
    uint8_t ul, n;

    if (sotto_rbuf_get_ptr(r, LABEL_BYTES, &p) != SOTTO_OK)
        return SOTTO_ERR_INVALID_MESSAGE;
    if (sodium_memcmp(p, DEVICE_LIST_LABEL, LABEL_BYTES) != 0) /* public, with its 0x00 */
        return SOTTO_ERR_INVALID_MESSAGE;
    if (sotto_rbuf_get_u8(r, &ul) != SOTTO_OK)
        return SOTTO_ERR_INVALID_MESSAGE;
    if (ul < SOTTO_USERNAME_MIN_LEN || ul > SOTTO_USERNAME_MAX_LEN)
        return SOTTO_ERR_INVALID_USERNAME;
    if (sotto_rbuf_get_copy(r, out->username, ul) != SOTTO_OK)
        return SOTTO_ERR_INVALID_MESSAGE;
    out->username[ul] = '\0';
    /* a NUL or a bad character inside the declared length */
    if (sotto_stmt_username_len(out->username) != ul)
        return SOTTO_ERR_INVALID_USERNAME;
    if (sotto_rbuf_get_u64be(r, &out->version) != SOTTO_OK ||
        sotto_rbuf_get_u64be(r, &out->timestamp_ms) != SOTTO_OK ||
        sotto_rbuf_get_u8(r, &n) != SOTTO_OK)
        return SOTTO_ERR_INVALID_MESSAGE;
    if (n == 0 || n > SOTTO_DEVICE_LIST_MAX)
        return SOTTO_ERR_DEVICE_LIST_COUNT;
    out->n_devices = n;
    for (size_t i = 0; i < n; i++) {
        sotto_device_entry *d = &out->devices[i];
        if (sotto_rbuf_get_u32be(r, &d->device_id) != SOTTO_OK ||
            sotto_rbuf_get_u32be(r, &d->registration_id) != SOTTO_OK ||
            sotto_rbuf_get_copy(r, d->identity_key.bytes, SOTTO_PUBLIC_KEY_BYTES) != SOTTO_OK ||
            sotto_rbuf_get_copy(r, d->auth_key, SOTTO_AUTH_KEY_BYTES) != SOTTO_OK ||
            sotto_rbuf_get_u32be(r, &d->capabilities) != SOTTO_OK)
            return SOTTO_ERR_INVALID_MESSAGE;
    }
    return SOTTO_OK;
}

/* Parses data[0 .. len-64] as exactly one canonical statement. */
static int parse_signed(sotto_device_list *out, const uint8_t *data, size_t len)
{
    sotto_rbuf r;
    int rc;

    if (len < SOTTO_SIGNATURE_BYTES || len > SOTTO_DEVICE_LIST_MAX_BYTES)
        return SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf_init(&r, data, len - SOTTO_SIGNATURE_BYTES);
    rc = read_statement(&r, out);
    if (rc == SOTTO_OK && sotto_rbuf_remaining(&r) != 0)
        rc = SOTTO_ERR_TRAILING_DATA;
    if (rc == SOTTO_OK)
        rc = sotto_device_list_check(out);
    return rc;
}

int sotto_device_list_parse(sotto_device_list *out, const uint8_t *data, size_t len,
                            const uint8_t **signature)
{
    int rc;

    if (signature != NULL)
        *signature = NULL;
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (data == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = parse_signed(out, data, len);
    if (rc != SOTTO_OK) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    if (signature != NULL)
        *signature = data + (len - SOTTO_SIGNATURE_BYTES);
    return SOTTO_OK;
}

int sotto_device_list_verify(sotto_device_list *out, const uint8_t *data, size_t len,
                             const sotto_public_key *account_key, const char *expected_username)
{
    size_t stmt_len;
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (data == NULL || account_key == NULL || expected_username == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (sotto_stmt_username_len(expected_username) == 0)
        return SOTTO_ERR_INVALID_USERNAME;
    if (len < SOTTO_SIGNATURE_BYTES || len > SOTTO_DEVICE_LIST_MAX_BYTES)
        return SOTTO_ERR_INVALID_MESSAGE;
    stmt_len = len - SOTTO_SIGNATURE_BYTES;
    if (sotto_xeddsa_verify(account_key, data, stmt_len, data + stmt_len) != SOTTO_OK)
        return SOTTO_ERR_INVALID_SIGNATURE;
    rc = parse_signed(out, data, len);
    if (rc == SOTTO_OK && strcmp(out->username, expected_username) != 0)
        rc = SOTTO_ERR_DEVICE_LIST_ACCOUNT;
    if (rc != SOTTO_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

static bool entry_equal(const sotto_device_entry *a, const sotto_device_entry *b)
{
    /* public values; sodium_memcmp only because memcmp is kept out of lib/ */
    return a->device_id == b->device_id && a->registration_id == b->registration_id &&
           a->capabilities == b->capabilities &&
           sodium_memcmp(a->identity_key.bytes, b->identity_key.bytes, SOTTO_PUBLIC_KEY_BYTES) ==
               0 &&
           sodium_memcmp(a->auth_key, b->auth_key, SOTTO_AUTH_KEY_BYTES) == 0;
}

int sotto_device_list_check_update(const sotto_device_list *held, const sotto_device_list *incoming)
{
    if (incoming == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (held == NULL)
        return SOTTO_OK;
    if (strncmp(held->username, incoming->username, sizeof held->username) != 0)
        return SOTTO_ERR_DEVICE_LIST_ACCOUNT;
    if (incoming->version < held->version)
        return SOTTO_ERR_DEVICE_LIST_STALE;
    if (incoming->version > held->version)
        return SOTTO_OK;
    if (incoming->timestamp_ms != held->timestamp_ms || incoming->n_devices != held->n_devices ||
        incoming->n_devices > SOTTO_DEVICE_LIST_MAX)
        return SOTTO_ERR_DEVICE_LIST_CONFLICT;
    for (size_t i = 0; i < incoming->n_devices; i++) {
        if (!entry_equal(&held->devices[i], &incoming->devices[i]))
            return SOTTO_ERR_DEVICE_LIST_CONFLICT;
    }
    return SOTTO_OK;
}

const sotto_device_entry *sotto_device_list_find(const sotto_device_list *list, uint32_t device_id)
{
    if (list == NULL || list->n_devices > SOTTO_DEVICE_LIST_MAX)
        return NULL;
    for (size_t i = 0; i < list->n_devices; i++) {
        if (list->devices[i].device_id == device_id)
            return &list->devices[i];
    }
    return NULL;
}

static bool sorted(const sotto_device_list *l)
{
    if (l->n_devices > SOTTO_DEVICE_LIST_MAX)
        return false;
    for (size_t i = 1; i < l->n_devices; i++) {
        if (l->devices[i].device_id <= l->devices[i - 1].device_id)
            return false;
    }
    return true;
}

int sotto_device_list_diff_compute(const sotto_device_list *older, const sotto_device_list *newer,
                                   sotto_device_list_diff *out)
{
    size_t i = 0, j = 0;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (older == NULL || newer == NULL || !sorted(older) || !sorted(newer))
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (strncmp(older->username, newer->username, sizeof older->username) != 0)
        return SOTTO_ERR_DEVICE_LIST_ACCOUNT;
    /* merge of two strictly increasing id sequences; each output array gets
     * at most SOTTO_DEVICE_LIST_MAX entries */
    while (i < older->n_devices || j < newer->n_devices) {
        const sotto_device_entry *a = i < older->n_devices ? &older->devices[i] : NULL;
        const sotto_device_entry *b = j < newer->n_devices ? &newer->devices[j] : NULL;
        if (b == NULL || (a != NULL && a->device_id < b->device_id)) {
            out->removed[out->n_removed++] = a->device_id;
            i++;
        } else if (a == NULL || b->device_id < a->device_id) {
            out->added[out->n_added++] = b->device_id;
            j++;
        } else {
            if (!entry_equal(a, b))
                out->changed[out->n_changed++] = a->device_id;
            i++;
            j++;
        }
    }
    return SOTTO_OK;
}
