/*
 * lib/store/sqlite_store.c -- the storage interfaces of sotto/store.h on
 * SQLite (see sotto/sqlite_store.h for file handling, policies and
 * transactions).
 *
 * Every query is a prepared statement kept for the life of the store
 * (prepared on first use with SQLITE_PREPARE_PERSISTENT), reset and cleared
 * after each use. Names and group ids are stored as BLOBs (they are byte
 * strings, not necessarily NUL-free text). Every value read back is checked
 * for its SQLite type and length before use: a row that fails gives
 * SOTTO_ERR_CORRUPT_RECORD.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "sotto/sqlite_store.h"

/*
 * Schema migrations: migrations[i] takes user_version i to i + 1. Never edit
 * a released entry; append a new one and bump SOTTO_SQLITE_SCHEMA_VERSION.
 */
static const char *const migrations[SOTTO_SQLITE_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE sotto_local_identity ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  public_key BLOB NOT NULL,"
    "  private_key BLOB NOT NULL,"
    "  registration_id INTEGER NOT NULL);"
    "CREATE TABLE sotto_sessions ("
    "  name BLOB NOT NULL,"
    "  device_id INTEGER NOT NULL,"
    "  record BLOB NOT NULL,"
    "  PRIMARY KEY (name, device_id)) WITHOUT ROWID;"
    /* private_key is NULL once the prekey was removed: the row keeps the id
     * bound to its public key so it is never reused for another key. */
    "CREATE TABLE sotto_prekeys ("
    "  id INTEGER PRIMARY KEY,"
    "  public_key BLOB NOT NULL,"
    "  private_key BLOB);"
    "CREATE TABLE sotto_signed_prekeys ("
    "  id INTEGER PRIMARY KEY,"
    "  public_key BLOB NOT NULL,"
    "  private_key BLOB NOT NULL,"
    "  signature BLOB NOT NULL,"
    "  timestamp_ms INTEGER NOT NULL);"
    "CREATE TABLE sotto_identities ("
    "  name BLOB NOT NULL,"
    "  device_id INTEGER NOT NULL,"
    "  public_key BLOB NOT NULL,"
    "  PRIMARY KEY (name, device_id)) WITHOUT ROWID;"
    "CREATE TABLE sotto_sender_keys ("
    "  group_id BLOB NOT NULL,"
    "  name BLOB NOT NULL,"
    "  device_id INTEGER NOT NULL,"
    "  record BLOB NOT NULL,"
    "  PRIMARY KEY (group_id, name, device_id)) WITHOUT ROWID;",
};

enum {
    ST_LOCAL_GET,
    ST_LOCAL_SET,
    ST_SESSION_LOAD,
    ST_SESSION_STORE,
    ST_SESSION_REMOVE,
    ST_SESSION_DEVICES,
    ST_PREKEY_LOAD,
    ST_PREKEY_STORE,
    ST_PREKEY_REMOVE,
    ST_PREKEY_COUNT,
    ST_SPK_LOAD,
    ST_SPK_STORE,
    ST_SPK_REMOVE,
    ST_ID_SAVE,
    ST_ID_GET,
    ST_SK_LOAD,
    ST_SK_STORE,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_LOCAL_GET] = "SELECT public_key, private_key, registration_id "
                     "FROM sotto_local_identity WHERE id = 1",
    [ST_LOCAL_SET] = "INSERT INTO sotto_local_identity (id, public_key, private_key, "
                     "registration_id) VALUES (1, ?1, ?2, ?3)",
    [ST_SESSION_LOAD] = "SELECT record FROM sotto_sessions WHERE name = ?1 AND device_id = ?2",
    [ST_SESSION_STORE] = "INSERT INTO sotto_sessions (name, device_id, record) VALUES (?1, ?2, ?3) "
                         "ON CONFLICT (name, device_id) DO UPDATE SET record = excluded.record",
    [ST_SESSION_REMOVE] = "DELETE FROM sotto_sessions WHERE name = ?1 AND device_id = ?2",
    [ST_SESSION_DEVICES] = "SELECT device_id FROM sotto_sessions WHERE name = ?1 "
                           "ORDER BY device_id",
    [ST_PREKEY_LOAD] = "SELECT public_key, private_key FROM sotto_prekeys WHERE id = ?1",
    [ST_PREKEY_STORE] = "INSERT INTO sotto_prekeys (id, public_key, private_key) "
                        "VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (id) DO UPDATE SET private_key = excluded.private_key "
                        "WHERE private_key IS NOT NULL",
    [ST_PREKEY_REMOVE] = "UPDATE sotto_prekeys SET private_key = NULL "
                         "WHERE id = ?1 AND private_key IS NOT NULL",
    [ST_PREKEY_COUNT] = "SELECT count(*) FROM sotto_prekeys WHERE private_key IS NOT NULL",
    [ST_SPK_LOAD] = "SELECT public_key, private_key, signature, timestamp_ms "
                    "FROM sotto_signed_prekeys WHERE id = ?1",
    [ST_SPK_STORE] = "INSERT OR REPLACE INTO sotto_signed_prekeys "
                     "(id, public_key, private_key, signature, timestamp_ms) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_SPK_REMOVE] = "DELETE FROM sotto_signed_prekeys WHERE id = ?1",
    [ST_ID_SAVE] = "INSERT INTO sotto_identities (name, device_id, public_key) "
                   "VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (name, device_id) DO UPDATE SET public_key = excluded.public_key",
    [ST_ID_GET] = "SELECT public_key FROM sotto_identities WHERE name = ?1 AND device_id = ?2",
    [ST_SK_LOAD] = "SELECT record FROM sotto_sender_keys "
                   "WHERE group_id = ?1 AND name = ?2 AND device_id = ?3",
    [ST_SK_STORE] = "INSERT INTO sotto_sender_keys (group_id, name, device_id, record) "
                    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (group_id, name, device_id) "
                    "DO UPDATE SET record = excluded.record",
};

struct sotto_sqlite_store {
    sotto_protocol_store iface;
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    unsigned tx_depth;
    sotto_key_pair *identity; /* sodium_malloc()ed cache, valid when have_identity */
    uint32_t registration_id;
    bool have_identity;
};

/* ---- statements --------------------------------------------------------- */

static int ss_stmt(sotto_sqlite_store *s, int id, sqlite3_stmt **out)
{
    if (s->stmt[id] == NULL &&
        sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id],
                           NULL) != SQLITE_OK)
        return SOTTO_ERR_STORE;
    *out = s->stmt[id];
    return SOTTO_OK;
}

static void ss_done(sqlite3_stmt *st)
{
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Binds a byte string; an empty one binds a zero-length BLOB, never NULL. */
static int ss_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    static const uint8_t empty = 0;
    if (n > (size_t)INT32_MAX)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (sqlite3_bind_blob(st, i, n > 0 ? p : &empty, (int)n, SQLITE_STATIC) != SQLITE_OK)
        return SOTTO_ERR_STORE;
    return SOTTO_OK;
}

static int ss_bind_int(sqlite3_stmt *st, int i, int64_t v)
{
    return sqlite3_bind_int64(st, i, v) == SQLITE_OK ? SOTTO_OK : SOTTO_ERR_STORE;
}

/* A BLOB column of exactly `n` bytes (n == 0: any length 1..max_len). */
static int ss_col_blob(sqlite3_stmt *st, int col, size_t n, size_t max_len, const uint8_t **p,
                       size_t *len)
{
    if (sqlite3_column_type(st, col) != SQLITE_BLOB)
        return SOTTO_ERR_CORRUPT_RECORD;
    const uint8_t *b = sqlite3_column_blob(st, col);
    int bytes = sqlite3_column_bytes(st, col);
    if (b == NULL || bytes <= 0)
        return SOTTO_ERR_CORRUPT_RECORD;
    if (n != 0 ? (size_t)bytes != n : (size_t)bytes > max_len)
        return SOTTO_ERR_CORRUPT_RECORD;
    *p = b;
    if (len != NULL)
        *len = (size_t)bytes;
    return SOTTO_OK;
}

static int ss_col_u32(sqlite3_stmt *st, int col, uint32_t *out)
{
    if (sqlite3_column_type(st, col) != SQLITE_INTEGER)
        return SOTTO_ERR_CORRUPT_RECORD;
    sqlite3_int64 v = sqlite3_column_int64(st, col);
    if (v < 0 || v > (sqlite3_int64)UINT32_MAX)
        return SOTTO_ERR_CORRUPT_RECORD;
    *out = (uint32_t)v;
    return SOTTO_OK;
}

/* A serialised public key column: 33 bytes starting with 0x05. */
static int ss_col_pub(sqlite3_stmt *st, int col, sotto_public_key *out)
{
    const uint8_t *p;
    int ret = ss_col_blob(st, col, SOTTO_PUBLIC_KEY_BYTES, 0, &p, NULL);
    if (ret != SOTTO_OK)
        return ret;
    if (p[0] != SOTTO_KEY_TYPE_DJB)
        return SOTTO_ERR_CORRUPT_RECORD;
    memcpy(out->bytes, p, SOTTO_PUBLIC_KEY_BYTES);
    return SOTTO_OK;
}

static int ss_col_priv(sqlite3_stmt *st, int col, uint8_t out[SOTTO_PRIVATE_KEY_BYTES])
{
    const uint8_t *p;
    int ret = ss_col_blob(st, col, SOTTO_PRIVATE_KEY_BYTES, 0, &p, NULL);
    if (ret != SOTTO_OK)
        return ret;
    memcpy(out, p, SOTTO_PRIVATE_KEY_BYTES);
    return SOTTO_OK;
}

/* Runs a statement that returns no row. */
static int ss_exec_done(sqlite3_stmt *st)
{
    return sqlite3_step(st) == SQLITE_DONE ? SOTTO_OK : SOTTO_ERR_STORE;
}

static int ss_check_addr(const sotto_address *addr)
{
    if (addr == NULL || (addr->name == NULL && addr->name_len > 0) ||
        addr->name_len > SOTTO_MAX_NAME_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return SOTTO_OK;
}

static int ss_bind_addr(sqlite3_stmt *st, int first, const sotto_address *addr)
{
    int ret = ss_bind_blob(st, first, addr->name, addr->name_len);
    if (ret == SOTTO_OK)
        ret = ss_bind_int(st, first + 1, addr->device_id);
    return ret;
}

/* Loads a record column of the single row of `st` into a malloc()ed copy. */
static int ss_load_record(sqlite3_stmt *st, int col, uint8_t **record, size_t *len)
{
    const uint8_t *p;
    size_t n;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return SOTTO_ERR_NOT_FOUND;
    if (rc != SQLITE_ROW)
        return SOTTO_ERR_STORE;
    int ret = ss_col_blob(st, col, 0, SOTTO_MAX_RECORD_BYTES, &p, &n);
    if (ret != SOTTO_OK)
        return ret;
    uint8_t *copy = malloc(n);
    if (copy == NULL)
        return SOTTO_ERR_NOMEM;
    memcpy(copy, p, n);
    *record = copy;
    *len = n;
    return SOTTO_OK;
}

static int ss_check_record(const uint8_t *record, size_t len)
{
    if (record == NULL || len == 0 || len > SOTTO_MAX_RECORD_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return SOTTO_OK;
}

/* ---- session store ------------------------------------------------------ */

static int ss_session_load(void *ud, const sotto_address *addr, uint8_t **record, size_t *len)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    int ret = ss_check_addr(addr);
    if (ret != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_ARGUMENT;
    if (record == NULL || len == NULL)
        goto out;
    if ((ret = ss_stmt(s, ST_SESSION_LOAD, &st)) != SOTTO_OK ||
        (ret = ss_bind_addr(st, 1, addr)) != SOTTO_OK)
        goto out;
    ret = ss_load_record(st, 0, record, len);
out:
    ss_done(st);
    return ret;
}

static int ss_session_store(void *ud, const sotto_address *addr, const uint8_t *record, size_t len)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    int ret = ss_check_addr(addr);
    if (ret != SOTTO_OK || (ret = ss_check_record(record, len)) != SOTTO_OK)
        goto out;
    if ((ret = ss_stmt(s, ST_SESSION_STORE, &st)) != SOTTO_OK ||
        (ret = ss_bind_addr(st, 1, addr)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 3, record, len)) != SOTTO_OK)
        goto out;
    ret = ss_exec_done(st);
out:
    ss_done(st);
    return ret;
}

static int ss_session_remove(void *ud, const sotto_address *addr)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    int ret = ss_check_addr(addr);
    if (ret != SOTTO_OK)
        goto out;
    if ((ret = ss_stmt(s, ST_SESSION_REMOVE, &st)) != SOTTO_OK ||
        (ret = ss_bind_addr(st, 1, addr)) != SOTTO_OK || (ret = ss_exec_done(st)) != SOTTO_OK)
        goto out;
    ret = sqlite3_changes(s->db) > 0 ? SOTTO_OK : SOTTO_ERR_NOT_FOUND;
out:
    ss_done(st);
    return ret;
}

static int ss_session_device_ids(void *ud, const char *name, size_t name_len, uint32_t **ids,
                                 size_t *count)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    uint32_t *out = NULL;
    size_t n = 0, cap = 0;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;
    int rc;

    if (ids == NULL || count == NULL || (name == NULL && name_len > 0) ||
        name_len > SOTTO_MAX_NAME_BYTES)
        goto out;
    if ((ret = ss_stmt(s, ST_SESSION_DEVICES, &st)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 1, name, name_len)) != SOTTO_OK)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t dev;
        if ((ret = ss_col_u32(st, 0, &dev)) != SOTTO_OK)
            goto out;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            uint32_t *p = realloc(out, ncap * sizeof *p);
            if (p == NULL) {
                ret = SOTTO_ERR_NOMEM;
                goto out;
            }
            out = p;
            cap = ncap;
        }
        out[n++] = dev;
    }
    ret = SOTTO_ERR_STORE;
    if (rc != SQLITE_DONE)
        goto out;
    *ids = n > 0 ? out : NULL;
    *count = n;
    if (n > 0)
        out = NULL;
    ret = SOTTO_OK;
out:
    ss_done(st);
    free(out);
    return ret;
}

/* ---- prekey stores ------------------------------------------------------ */

static int ss_prekey_load(void *ud, uint32_t id, sotto_prekey *out)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    sotto_prekey pk;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;
    int rc;

    memset(&pk, 0, sizeof pk);
    if (out == NULL)
        goto out;
    if ((ret = ss_stmt(s, ST_PREKEY_LOAD, &st)) != SOTTO_OK ||
        (ret = ss_bind_int(st, 1, id)) != SOTTO_OK)
        goto out;
    rc = sqlite3_step(st);
    ret = SOTTO_ERR_NOT_FOUND;
    if (rc == SQLITE_DONE)
        goto out;
    ret = SOTTO_ERR_STORE;
    if (rc != SQLITE_ROW)
        goto out;
    ret = SOTTO_ERR_NOT_FOUND;
    if (sqlite3_column_type(st, 1) == SQLITE_NULL) /* removed */
        goto out;
    if ((ret = ss_col_pub(st, 0, &pk.key.pub)) != SOTTO_OK ||
        (ret = ss_col_priv(st, 1, pk.key.priv)) != SOTTO_OK)
        goto out;
    pk.id = id;
    *out = pk;
    ret = SOTTO_OK;
out:
    ss_done(st);
    sodium_memzero(&pk, sizeof pk);
    return ret;
}

static int ss_prekey_store(void *ud, const sotto_prekey *prekey)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    sotto_public_key used;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;
    int rc;

    if (prekey == NULL || prekey->key.pub.bytes[0] != SOTTO_KEY_TYPE_DJB)
        goto out;
    /* An id once used stays bound to its public key. */
    if ((ret = ss_stmt(s, ST_PREKEY_LOAD, &st)) != SOTTO_OK ||
        (ret = ss_bind_int(st, 1, prekey->id)) != SOTTO_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if ((ret = ss_col_pub(st, 0, &used)) != SOTTO_OK)
            goto out;
        ret = SOTTO_ERR_STORE;
        if (sodium_memcmp(used.bytes, prekey->key.pub.bytes, SOTTO_PUBLIC_KEY_BYTES) != 0)
            goto out;
        /* A removed (consumed) prekey never comes back, not even the same
         * key: that would let a second session use it. */
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            goto out;
    } else if (rc != SQLITE_DONE) {
        ret = SOTTO_ERR_STORE;
        goto out;
    }
    ss_done(st);
    if ((ret = ss_stmt(s, ST_PREKEY_STORE, &st)) != SOTTO_OK ||
        (ret = ss_bind_int(st, 1, prekey->id)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 2, prekey->key.pub.bytes, SOTTO_PUBLIC_KEY_BYTES)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 3, prekey->key.priv, SOTTO_PRIVATE_KEY_BYTES)) != SOTTO_OK)
        goto out;
    ret = ss_exec_done(st);
out:
    ss_done(st);
    return ret;
}

/* Deletes the row `id` with the prepared DELETE `which`; NOT_FOUND if none. */
static int ss_remove_by_id(sotto_sqlite_store *s, int which, uint32_t id)
{
    sqlite3_stmt *st = NULL;
    int ret;
    if ((ret = ss_stmt(s, which, &st)) != SOTTO_OK || (ret = ss_bind_int(st, 1, id)) != SOTTO_OK ||
        (ret = ss_exec_done(st)) != SOTTO_OK)
        goto out;
    ret = sqlite3_changes(s->db) > 0 ? SOTTO_OK : SOTTO_ERR_NOT_FOUND;
out:
    ss_done(st);
    return ret;
}

static int ss_prekey_remove(void *ud, uint32_t id)
{
    return ss_remove_by_id(ud, ST_PREKEY_REMOVE, id);
}

static int ss_spk_load(void *ud, uint32_t id, sotto_signed_prekey *out)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    sotto_signed_prekey spk;
    const uint8_t *sig;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;
    int rc;

    memset(&spk, 0, sizeof spk);
    if (out == NULL)
        goto out;
    if ((ret = ss_stmt(s, ST_SPK_LOAD, &st)) != SOTTO_OK ||
        (ret = ss_bind_int(st, 1, id)) != SOTTO_OK)
        goto out;
    rc = sqlite3_step(st);
    ret = SOTTO_ERR_NOT_FOUND;
    if (rc == SQLITE_DONE)
        goto out;
    ret = SOTTO_ERR_STORE;
    if (rc != SQLITE_ROW)
        goto out;
    if ((ret = ss_col_pub(st, 0, &spk.key.pub)) != SOTTO_OK ||
        (ret = ss_col_priv(st, 1, spk.key.priv)) != SOTTO_OK ||
        (ret = ss_col_blob(st, 2, SOTTO_SIGNATURE_BYTES, 0, &sig, NULL)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_CORRUPT_RECORD;
    if (sqlite3_column_type(st, 3) != SQLITE_INTEGER || sqlite3_column_int64(st, 3) < 0)
        goto out;
    memcpy(spk.signature, sig, SOTTO_SIGNATURE_BYTES);
    spk.timestamp_ms = (uint64_t)sqlite3_column_int64(st, 3);
    spk.id = id;
    *out = spk;
    ret = SOTTO_OK;
out:
    ss_done(st);
    sodium_memzero(&spk, sizeof spk);
    return ret;
}

static int ss_spk_store(void *ud, const sotto_signed_prekey *spk)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;
    if (spk == NULL || spk->key.pub.bytes[0] != SOTTO_KEY_TYPE_DJB ||
        spk->timestamp_ms > (uint64_t)INT64_MAX)
        goto out;
    if ((ret = ss_stmt(s, ST_SPK_STORE, &st)) != SOTTO_OK ||
        (ret = ss_bind_int(st, 1, spk->id)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 2, spk->key.pub.bytes, SOTTO_PUBLIC_KEY_BYTES)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 3, spk->key.priv, SOTTO_PRIVATE_KEY_BYTES)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 4, spk->signature, SOTTO_SIGNATURE_BYTES)) != SOTTO_OK ||
        (ret = ss_bind_int(st, 5, (int64_t)spk->timestamp_ms)) != SOTTO_OK)
        goto out;
    ret = ss_exec_done(st);
out:
    ss_done(st);
    return ret;
}

static int ss_spk_remove(void *ud, uint32_t id)
{
    return ss_remove_by_id(ud, ST_SPK_REMOVE, id);
}

/* ---- identity store ----------------------------------------------------- */

/* Fills the identity cache from the database. */
static int ss_local_load(sotto_sqlite_store *s)
{
    sqlite3_stmt *st = NULL;
    int ret;
    int rc;
    if (s->have_identity)
        return SOTTO_OK;
    if ((ret = ss_stmt(s, ST_LOCAL_GET, &st)) != SOTTO_OK)
        goto out;
    rc = sqlite3_step(st);
    ret = SOTTO_ERR_NOT_FOUND;
    if (rc == SQLITE_DONE)
        goto out;
    ret = SOTTO_ERR_STORE;
    if (rc != SQLITE_ROW)
        goto out;
    if ((ret = ss_col_pub(st, 0, &s->identity->pub)) != SOTTO_OK ||
        (ret = ss_col_priv(st, 1, s->identity->priv)) != SOTTO_OK ||
        (ret = ss_col_u32(st, 2, &s->registration_id)) != SOTTO_OK) {
        sodium_memzero(s->identity, sizeof *s->identity);
        goto out;
    }
    s->have_identity = true;
    ret = SOTTO_OK;
out:
    ss_done(st);
    return ret;
}

static int ss_get_identity_key_pair(void *ud, sotto_key_pair *out)
{
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return sotto_sqlite_store_get_local_identity(ud, out, NULL);
}

static int ss_get_local_registration_id(void *ud, uint32_t *out)
{
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return sotto_sqlite_store_get_local_identity(ud, NULL, out);
}

static int ss_identity_get(void *ud, const sotto_address *addr, sotto_public_key *out)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    int ret = ss_check_addr(addr);
    int rc;
    if (ret != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_ARGUMENT;
    if (out == NULL)
        goto out;
    if ((ret = ss_stmt(s, ST_ID_GET, &st)) != SOTTO_OK ||
        (ret = ss_bind_addr(st, 1, addr)) != SOTTO_OK)
        goto out;
    rc = sqlite3_step(st);
    ret = rc == SQLITE_DONE ? SOTTO_ERR_NOT_FOUND : SOTTO_ERR_STORE;
    if (rc != SQLITE_ROW)
        goto out;
    ret = ss_col_pub(st, 0, out);
out:
    ss_done(st);
    return ret;
}

static int ss_identity_save(void *ud, const sotto_address *addr, const sotto_public_key *pub)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    int ret = ss_check_addr(addr);
    if (ret != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_ARGUMENT;
    if (pub == NULL || pub->bytes[0] != SOTTO_KEY_TYPE_DJB)
        goto out;
    if ((ret = ss_stmt(s, ST_ID_SAVE, &st)) != SOTTO_OK ||
        (ret = ss_bind_addr(st, 1, addr)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 3, pub->bytes, SOTTO_PUBLIC_KEY_BYTES)) != SOTTO_OK)
        goto out;
    ret = ss_exec_done(st);
out:
    ss_done(st);
    return ret;
}

static int ss_identity_is_trusted(void *ud, const sotto_address *addr, const sotto_public_key *pub)
{
    sotto_public_key known;
    int ret;
    if (pub == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ret = ss_identity_get(ud, addr, &known);
    if (ret == SOTTO_ERR_NOT_FOUND)
        return SOTTO_TRUSTED; /* trust on first use */
    if (ret != SOTTO_OK)
        return ret;
    return sodium_memcmp(known.bytes, pub->bytes, SOTTO_PUBLIC_KEY_BYTES) == 0 ? SOTTO_TRUSTED
                                                                               : SOTTO_UNTRUSTED;
}

/* ---- sender key store --------------------------------------------------- */

static int ss_check_skn(const sotto_sender_key_name *n)
{
    if (n == NULL || (n->group_id == NULL && n->group_id_len > 0) ||
        n->group_id_len > SOTTO_MAX_NAME_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return ss_check_addr(&n->sender);
}

static int ss_sender_key_load(void *ud, const sotto_sender_key_name *name, uint8_t **record,
                              size_t *len)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    int ret = ss_check_skn(name);
    if (ret != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_ARGUMENT;
    if (record == NULL || len == NULL)
        goto out;
    if ((ret = ss_stmt(s, ST_SK_LOAD, &st)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 1, name->group_id, name->group_id_len)) != SOTTO_OK ||
        (ret = ss_bind_addr(st, 2, &name->sender)) != SOTTO_OK)
        goto out;
    ret = ss_load_record(st, 0, record, len);
out:
    ss_done(st);
    return ret;
}

static int ss_sender_key_store(void *ud, const sotto_sender_key_name *name, const uint8_t *record,
                               size_t len)
{
    sotto_sqlite_store *s = ud;
    sqlite3_stmt *st = NULL;
    int ret = ss_check_skn(name);
    if (ret != SOTTO_OK || (ret = ss_check_record(record, len)) != SOTTO_OK)
        goto out;
    if ((ret = ss_stmt(s, ST_SK_STORE, &st)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 1, name->group_id, name->group_id_len)) != SOTTO_OK ||
        (ret = ss_bind_addr(st, 2, &name->sender)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 4, record, len)) != SOTTO_OK)
        goto out;
    ret = ss_exec_done(st);
out:
    ss_done(st);
    return ret;
}

/* ---- open, migrate, close ----------------------------------------------- */

/* Creates the file with mode 0600, or narrows an existing one to 0600. */
static int ss_prepare_file(const char *path)
{
    int ret = SOTTO_ERR_STORE;
    struct stat sb;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        goto out;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        goto out;
    if ((sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)
        goto out;
    ret = SOTTO_OK;
out:
    if (fd >= 0)
        close(fd);
    return ret;
}

static int ss_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? SOTTO_OK : SOTTO_ERR_STORE;
}

static int ss_user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st = NULL;
    int ret = SOTTO_ERR_STORE;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto out;
    *out = sqlite3_column_int(st, 0);
    ret = SOTTO_OK;
out:
    sqlite3_finalize(st);
    return ret;
}

static int ss_migrate(sqlite3 *db)
{
    int ret;
    int version = 0;
    char sql[64];

    if ((ret = ss_exec(db, "BEGIN IMMEDIATE")) != SOTTO_OK)
        return ret;
    if ((ret = ss_user_version(db, &version)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_STORE;
    if (version < 0 || version > SOTTO_SQLITE_SCHEMA_VERSION)
        goto out; /* written by a newer libsotto: do not touch */
    for (int v = version; v < SOTTO_SQLITE_SCHEMA_VERSION; v++) {
        if ((ret = ss_exec(db, migrations[v])) != SOTTO_OK)
            goto out;
    }
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SOTTO_SQLITE_SCHEMA_VERSION);
    if ((ret = ss_exec(db, sql)) != SOTTO_OK)
        goto out;
    ret = ss_exec(db, "COMMIT");
out:
    if (ret != SOTTO_OK)
        (void)ss_exec(db, "ROLLBACK");
    return ret;
}

int sotto_sqlite_store_open(const char *path, sotto_sqlite_store **out)
{
    return sotto_sqlite_store_open_ex(path, 0, out);
}

int sotto_sqlite_store_open_ex(const char *path, unsigned flags, sotto_sqlite_store **out)
{
    sotto_sqlite_store *s = NULL;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;
    bool in_memory;

    if (path == NULL || out == NULL || (flags & ~SOTTO_SQLITE_SYNC_NORMAL) != 0)
        goto out;
    ret = SOTTO_ERR_CRYPTO;
    if (sodium_init() < 0)
        goto out;
    ret = SOTTO_ERR_NOMEM;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto out;
    s->identity = sodium_malloc(sizeof *s->identity);
    if (s->identity == NULL)
        goto out;
    sodium_memzero(s->identity, sizeof *s->identity);

    in_memory = strcmp(path, ":memory:") == 0;
    if (!in_memory && (ret = ss_prepare_file(path)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_STORE;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                            SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK)
        goto out;
    sqlite3_extended_result_codes(s->db, 1);
    if (sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK)
        goto out;
    /* journal_mode reads the header first: a file that is not a database
     * fails here. */
    if ((ret = ss_exec(s->db, in_memory ? "PRAGMA journal_mode = MEMORY"
                                        : "PRAGMA journal_mode = WAL")) != SOTTO_OK ||
        (ret = ss_exec(s->db, "PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON")) != SOTTO_OK ||
        (ret = ss_exec(s->db, (flags & SOTTO_SQLITE_SYNC_NORMAL) ? "PRAGMA synchronous = NORMAL"
                                                                 : "PRAGMA synchronous = FULL")) !=
            SOTTO_OK ||
        (ret = ss_migrate(s->db)) != SOTTO_OK)
        goto out;

    s->iface.session = (sotto_session_store){ss_session_load, ss_session_store, ss_session_remove,
                                             ss_session_device_ids, s};
    s->iface.prekey = (sotto_prekey_store){ss_prekey_load, ss_prekey_store, ss_prekey_remove, s};
    s->iface.signed_prekey =
        (sotto_signed_prekey_store){ss_spk_load, ss_spk_store, ss_spk_remove, s};
    s->iface.identity =
        (sotto_identity_store){ss_get_identity_key_pair, ss_get_local_registration_id,
                               ss_identity_save,         ss_identity_is_trusted,
                               ss_identity_get,          s};
    s->iface.sender_key = (sotto_sender_key_store){ss_sender_key_load, ss_sender_key_store, s};
    *out = s;
    s = NULL;
    ret = SOTTO_OK;
out:
    sotto_sqlite_store_close(s);
    return ret;
}

void sotto_sqlite_store_close(sotto_sqlite_store *s)
{
    if (s == NULL)
        return;
    if (s->db != NULL && !sqlite3_get_autocommit(s->db))
        (void)ss_exec(s->db, "ROLLBACK");
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    if (s->db != NULL)
        sqlite3_close_v2(s->db);
    if (s->identity != NULL)
        sodium_free(s->identity); /* wipes */
    sodium_memzero(s, sizeof *s);
    free(s);
}

int sotto_sqlite_store_set_local_identity(sotto_sqlite_store *s, const sotto_key_pair *identity,
                                          uint32_t registration_id)
{
    sqlite3_stmt *st = NULL;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;

    if (s == NULL || identity == NULL || identity->pub.bytes[0] != SOTTO_KEY_TYPE_DJB)
        goto out;
    ret = ss_local_load(s);
    if (ret == SOTTO_OK) {
        /* Already set: the same values are a no-op, others are refused. */
        bool same = sodium_memcmp(s->identity, identity, sizeof *identity) == 0 &&
                    s->registration_id == registration_id;
        ret = same ? SOTTO_OK : SOTTO_ERR_STORE;
        goto out;
    }
    if (ret != SOTTO_ERR_NOT_FOUND)
        goto out;
    if ((ret = ss_stmt(s, ST_LOCAL_SET, &st)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 1, identity->pub.bytes, SOTTO_PUBLIC_KEY_BYTES)) != SOTTO_OK ||
        (ret = ss_bind_blob(st, 2, identity->priv, SOTTO_PRIVATE_KEY_BYTES)) != SOTTO_OK ||
        (ret = ss_bind_int(st, 3, registration_id)) != SOTTO_OK ||
        (ret = ss_exec_done(st)) != SOTTO_OK)
        goto out;
    memcpy(s->identity, identity, sizeof *identity);
    s->registration_id = registration_id;
    s->have_identity = true;
    ret = SOTTO_OK;
out:
    ss_done(st);
    return ret;
}

int sotto_sqlite_store_get_local_identity(sotto_sqlite_store *s, sotto_key_pair *identity,
                                          uint32_t *registration_id)
{
    int ret;
    if (s == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if ((ret = ss_local_load(s)) != SOTTO_OK)
        return ret;
    if (identity != NULL)
        memcpy(identity, s->identity, sizeof *identity);
    if (registration_id != NULL)
        *registration_id = s->registration_id;
    return SOTTO_OK;
}

sotto_protocol_store *sotto_sqlite_store_protocol(sotto_sqlite_store *s)
{
    return s != NULL ? &s->iface : NULL;
}

struct sqlite3 *sotto_sqlite_store_db(sotto_sqlite_store *s)
{
    return s != NULL ? s->db : NULL;
}

/* ---- transactions ------------------------------------------------------- */

int sotto_sqlite_store_begin(sotto_sqlite_store *s)
{
    char sql[48];
    int ret;
    if (s == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (s->tx_depth == 0)
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE");
    else
        snprintf(sql, sizeof sql, "SAVEPOINT sotto_sp%u", s->tx_depth);
    ret = ss_exec(s->db, sql);
    if (ret == SOTTO_OK)
        s->tx_depth++;
    return ret;
}

int sotto_sqlite_store_commit(sotto_sqlite_store *s)
{
    char sql[48];
    int ret;
    if (s == NULL || s->tx_depth == 0)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (s->tx_depth == 1)
        snprintf(sql, sizeof sql, "COMMIT");
    else
        snprintf(sql, sizeof sql, "RELEASE sotto_sp%u", s->tx_depth - 1);
    ret = ss_exec(s->db, sql);
    if (ret == SOTTO_OK)
        s->tx_depth--;
    else if (sqlite3_get_autocommit(s->db))
        s->tx_depth = 0; /* SQLite rolled the whole transaction back */
    return ret;
}

int sotto_sqlite_store_rollback(sotto_sqlite_store *s)
{
    char sql[96];
    int ret;
    if (s == NULL || s->tx_depth == 0)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (s->tx_depth == 1 || sqlite3_get_autocommit(s->db)) {
        ret = sqlite3_get_autocommit(s->db) ? SOTTO_OK : ss_exec(s->db, "ROLLBACK");
        s->tx_depth = 0;
        s->have_identity = false; /* the cache may hold a rolled-back value */
        sodium_memzero(s->identity, sizeof *s->identity);
        return ret;
    }
    snprintf(sql, sizeof sql, "ROLLBACK TO sotto_sp%u; RELEASE sotto_sp%u", s->tx_depth - 1,
             s->tx_depth - 1);
    ret = ss_exec(s->db, sql);
    if (ret == SOTTO_OK)
        s->tx_depth--;
    s->have_identity = false;
    sodium_memzero(s->identity, sizeof *s->identity);
    return ret;
}

int sotto_sqlite_store_prekey_count(sotto_sqlite_store *s, size_t *out)
{
    sqlite3_stmt *st = NULL;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;
    if (s == NULL || out == NULL)
        goto out;
    if ((ret = ss_stmt(s, ST_PREKEY_COUNT, &st)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_STORE;
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    *out = (size_t)sqlite3_column_int64(st, 0);
    ret = SOTTO_OK;
out:
    ss_done(st);
    return ret;
}
