/*
 * client/core/db.c -- the client's own tables, kept in the same SQLite file
 * as libsotto's protocol store (store.db in the account directory). Table
 * names start with "client_" (libsotto owns "sotto_").
 *
 * Schema (version 1, PRAGMA-free: CREATE IF NOT EXISTS):
 *   client_config            key -> value (server URL, pin, username,
 *                            device id, Ed25519 auth key, counters)
 *   client_contacts          one row per contact account
 *   client_contact_devices   device ids seen for a contact (for safety numbers)
 *   client_pending_identity  a changed identity key waiting for `trust`
 *   client_groups, client_group_members
 *   client_messages          history (text stored byte-exact)
 *   client_seen_messages     (sender, timestamp) already shown
 *   client_seen_envelopes    envelope ids already processed
 *   client_outgoing          the outgoing queue (survives restarts)
 *   client_held_envelopes    envelopes held until `trust`
 *   client_signed_prekeys    signed prekey ids with creation/replacement time
 *   client_session_reset     devices to start a fresh session with (after an
 *                            undecryptable message), done at the next send
 *   client_device_auth       Ed25519 auth keys of contacts' devices (checked
 *                            device-add signatures, docs/api.md)
 *   client_pending_events    history rows stored by a received envelope but
 *                            not yet shown (their attachments not yet
 *                            fetched): a client killed between storing and
 *                            showing shows them at its next receive/listen
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS client_config (key TEXT PRIMARY KEY, value BLOB);"
    "CREATE TABLE IF NOT EXISTS client_contacts (name TEXT PRIMARY KEY,"
    " created_ms INTEGER NOT NULL, verified INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS client_contact_devices (name TEXT NOT NULL,"
    " device_id INTEGER NOT NULL, PRIMARY KEY(name, device_id));"
    "CREATE TABLE IF NOT EXISTS client_pending_identity (name TEXT NOT NULL,"
    " device_id INTEGER NOT NULL, identity_key BLOB NOT NULL, seen_ms INTEGER NOT NULL,"
    " PRIMARY KEY(name, device_id));"
    "CREATE TABLE IF NOT EXISTS client_groups (id BLOB PRIMARY KEY, name TEXT NOT NULL,"
    " active INTEGER NOT NULL DEFAULT 1, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS client_group_members (group_id BLOB NOT NULL,"
    " member TEXT NOT NULL, PRIMARY KEY(group_id, member));"
    "CREATE TABLE IF NOT EXISTS client_messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " conv_kind TEXT NOT NULL, conv TEXT NOT NULL, direction INTEGER NOT NULL,"
    " sender TEXT NOT NULL, sender_device INTEGER NOT NULL, timestamp INTEGER NOT NULL,"
    " server_ts INTEGER NOT NULL, received_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
    " body TEXT NOT NULL, extra TEXT);"
    "CREATE INDEX IF NOT EXISTS client_messages_conv ON client_messages(conv_kind, conv, id);"
    "CREATE TABLE IF NOT EXISTS client_seen_messages (sender TEXT NOT NULL,"
    " timestamp INTEGER NOT NULL, PRIMARY KEY(sender, timestamp));"
    "CREATE TABLE IF NOT EXISTS client_seen_envelopes (id BLOB PRIMARY KEY,"
    " seen_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS client_outgoing (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " destination TEXT NOT NULL, timestamp INTEGER NOT NULL, content BLOB NOT NULL,"
    " msg_id INTEGER, attempts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS client_held_envelopes (id BLOB PRIMARY KEY,"
    " source TEXT NOT NULL, source_device INTEGER NOT NULL, type INTEGER NOT NULL,"
    " body BLOB NOT NULL, server_ts INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS client_signed_prekeys (id INTEGER PRIMARY KEY,"
    " created_ms INTEGER NOT NULL, replaced_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS client_session_reset (name TEXT NOT NULL,"
    " device_id INTEGER NOT NULL, PRIMARY KEY(name, device_id));"
    "CREATE TABLE IF NOT EXISTS client_device_auth (name TEXT NOT NULL,"
    " device_id INTEGER NOT NULL, auth_key BLOB NOT NULL, PRIMARY KEY(name, device_id));"
    "CREATE TABLE IF NOT EXISTS client_pending_events (msg_id INTEGER PRIMARY KEY);";

int sc_db_init(sc_client *c)
{
    char *msg = NULL;

    if (sqlite3_exec(c->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = sc_fail(c, SC_E_STORE, "cannot create the client tables: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    return SC_OK;
}

static int prep(sc_client *c, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
        return sc_fail(c, SC_E_STORE, "database error: %s", sqlite3_errmsg(c->db));
    return SC_OK;
}

static int step_done(sc_client *c, sqlite3_stmt *st)
{
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        return sc_fail(c, SC_E_STORE, "database error: %s", sqlite3_errmsg(c->db));
    return SC_OK;
}

int sc_db_begin(sc_client *c)
{
    if (sotto_sqlite_store_begin(c->store) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot begin a transaction");
    return SC_OK;
}

int sc_db_commit(sc_client *c)
{
    if (sotto_sqlite_store_commit(c->store) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot commit");
    return SC_OK;
}

void sc_db_rollback(sc_client *c)
{
    if (sotto_sqlite_store_rollback(c->store) != SOTTO_OK)
        (void)sc_fail(c, SC_E_STORE, "rollback failed");
}

/* ------------------------------------------------------------ config */

static int cfg_get(sc_client *c, const char *key, sqlite3_stmt **st)
{
    int rc = prep(c, "SELECT value FROM client_config WHERE key = ?", st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(*st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(*st) != SQLITE_ROW || sqlite3_column_type(*st, 0) == SQLITE_NULL) {
        sqlite3_finalize(*st);
        *st = NULL;
        return SC_E_NOT_FOUND;
    }
    return SC_OK;
}

int sc_cfg_get_text(sc_client *c, const char *key, char **out)
{
    sqlite3_stmt *st = NULL;
    int rc = cfg_get(c, key, &st);
    const unsigned char *t;

    *out = NULL;
    if (rc != SC_OK)
        return rc;
    t = sqlite3_column_text(st, 0);
    *out = strdup(t ? (const char *)t : "");
    sqlite3_finalize(st);
    return *out ? SC_OK : sc_fail(c, SC_E_INTERNAL, "out of memory");
}

int sc_cfg_get_blob(sc_client *c, const char *key, uint8_t **out, size_t *len)
{
    sqlite3_stmt *st = NULL;
    int rc = cfg_get(c, key, &st);
    int n;

    *out = NULL;
    *len = 0;
    if (rc != SC_OK)
        return rc;
    n = sqlite3_column_bytes(st, 0);
    *out = malloc(n > 0 ? (size_t)n : 1);
    if (*out == NULL) {
        sqlite3_finalize(st);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    if (n > 0)
        memcpy(*out, sqlite3_column_blob(st, 0), (size_t)n);
    *len = (size_t)n;
    sqlite3_finalize(st);
    return SC_OK;
}

int sc_cfg_get_u64(sc_client *c, const char *key, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = cfg_get(c, key, &st);

    *out = 0;
    if (rc != SC_OK)
        return rc;
    *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return SC_OK;
}

static int cfg_set(sc_client *c, const char *key, sqlite3_stmt **st)
{
    int rc = prep(c,
                  "INSERT INTO client_config(key, value) VALUES(?, ?)"
                  " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                  st);
    if (rc == SC_OK)
        sqlite3_bind_text(*st, 1, key, -1, SQLITE_STATIC);
    return rc;
}

int sc_cfg_set_text(sc_client *c, const char *key, const char *v)
{
    sqlite3_stmt *st = NULL;
    int rc = cfg_set(c, key, &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    return step_done(c, st);
}

int sc_cfg_set_blob(sc_client *c, const char *key, const uint8_t *v, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc = cfg_set(c, key, &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_blob(st, 2, v, (int)len, SQLITE_STATIC);
    return step_done(c, st);
}

int sc_cfg_set_u64(sc_client *c, const char *key, uint64_t v)
{
    sqlite3_stmt *st = NULL;
    int rc = cfg_set(c, key, &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_int64(st, 2, (sqlite3_int64)v);
    return step_done(c, st);
}

/* ------------------------------------------------------------ contacts */

int sc_contact_touch(sc_client *c, const char *name, uint32_t device_id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (c->username && strcmp(name, c->username) != 0) {
        rc = prep(c, "INSERT OR IGNORE INTO client_contacts(name, created_ms) VALUES(?, ?)", &st);
        if (rc != SC_OK)
            return rc;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)sc_now_ms());
        rc = step_done(c, st);
        if (rc != SC_OK)
            return rc;
    }
    if (device_id == 0)
        return SC_OK;
    rc = prep(c, "INSERT OR IGNORE INTO client_contact_devices(name, device_id) VALUES(?, ?)", &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
    return step_done(c, st);
}

int sc_contact_devices(sc_client *c, const char *name, uint32_t **ids, size_t *n)
{
    sqlite3_stmt *st = NULL;
    uint32_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = prep(
        c, "SELECT device_id FROM client_contact_devices WHERE name = ? ORDER BY device_id", &st);

    *ids = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (cnt == cap) {
            uint32_t *nv;
            cap = cap ? cap * 2 : 8;
            nv = realloc(v, cap * sizeof *v);
            if (nv == NULL) {
                free(v);
                sqlite3_finalize(st);
                return sc_fail(c, SC_E_INTERNAL, "out of memory");
            }
            v = nv;
        }
        v[cnt++] = (uint32_t)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    *ids = v;
    *n = cnt;
    return SC_OK;
}

int sc_contact_forget_device(sc_client *c, const char *name, uint32_t device_id)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "DELETE FROM client_contact_devices WHERE name = ? AND device_id = ?", &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
    return step_done(c, st);
}

int sc_pending_identity_set(sc_client *c, const char *name, uint32_t device_id,
                            const sotto_public_key *key)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "INSERT INTO client_pending_identity(name, device_id, identity_key, seen_ms)"
                  " VALUES(?, ?, ?, ?) ON CONFLICT(name, device_id) DO UPDATE SET"
                  " identity_key = excluded.identity_key, seen_ms = excluded.seen_ms",
                  &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, device_id);
    sqlite3_bind_blob(st, 3, key->bytes, SOTTO_PUBLIC_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)sc_now_ms());
    return step_done(c, st);
}

int sc_pending_identity_any(sc_client *c, const char *name, bool *any)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "SELECT 1 FROM client_pending_identity WHERE name = ? LIMIT 1", &st);

    *any = false;
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    *any = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return SC_OK;
}

/* ------------------------------------------------------------ messages */

int sc_msg_insert(sc_client *c, const sc_msg_row *m, int64_t *rowid)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "INSERT INTO client_messages(conv_kind, conv, direction, sender,"
                  " sender_device, timestamp, server_ts, received_ms, kind, body, extra)"
                  " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                  &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, m->conv_kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->conv, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, m->direction);
    sqlite3_bind_text(st, 4, m->sender ? m->sender : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, m->sender_device);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)m->timestamp);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)m->server_ts);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)sc_now_ms());
    sqlite3_bind_text(st, 9, m->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, m->body ? m->body : "", m->body ? (int)m->body_len : 0,
                      SQLITE_STATIC);
    if (m->extra)
        sqlite3_bind_text(st, 11, m->extra, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 11);
    rc = step_done(c, st);
    if (rc == SC_OK && rowid)
        *rowid = sqlite3_last_insert_rowid(c->db);
    return rc;
}

int sc_msg_set_extra(sc_client *c, int64_t rowid, const char *extra)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "UPDATE client_messages SET extra = ? WHERE id = ?", &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, extra, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, rowid);
    return step_done(c, st);
}

int sc_msg_seen(sc_client *c, const char *sender, uint64_t timestamp, bool *seen)
{
    sqlite3_stmt *st = NULL;
    int rc =
        prep(c, "INSERT OR IGNORE INTO client_seen_messages(sender, timestamp) VALUES(?, ?)", &st);

    *seen = false;
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)timestamp);
    rc = step_done(c, st);
    if (rc == SC_OK)
        *seen = sqlite3_changes(c->db) == 0;
    return rc;
}

int sc_envelope_seen(sc_client *c, const uint8_t *id, size_t len, bool *seen)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "SELECT 1 FROM client_seen_envelopes WHERE id = ?", &st);

    *seen = false;
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_blob(st, 1, id, (int)len, SQLITE_STATIC);
    *seen = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return SC_OK;
}

int sc_envelope_mark(sc_client *c, const uint8_t *id, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "INSERT OR IGNORE INTO client_seen_envelopes(id, seen_ms) VALUES(?, ?)", &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_blob(st, 1, id, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)sc_now_ms());
    return step_done(c, st);
}

int sc_out_add(sc_client *c, const char *destination, uint64_t timestamp, const uint8_t *content,
               size_t len, int64_t msg_rowid)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "INSERT INTO client_outgoing(destination, timestamp, content, msg_id,"
                  " created_ms) VALUES(?, ?, ?, ?, ?)",
                  &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, destination, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)timestamp);
    sqlite3_bind_blob(st, 3, content, (int)len, SQLITE_STATIC);
    if (msg_rowid > 0)
        sqlite3_bind_int64(st, 4, msg_rowid);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)sc_now_ms());
    return step_done(c, st);
}

int sc_held_add(sc_client *c, const Sotto__Api__Envelope *e)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "INSERT OR IGNORE INTO client_held_envelopes(id, source, source_device, type,"
                  " body, server_ts) VALUES(?, ?, ?, ?, ?, ?)",
                  &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_blob(st, 1, e->id.data, (int)e->id.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, e->source_device_id);
    sqlite3_bind_int64(st, 4, e->type);
    sqlite3_bind_blob(st, 5, e->body.data, (int)e->body.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)e->server_timestamp_ms);
    return step_done(c, st);
}

int sc_device_auth_get(sc_client *c, const char *name, uint32_t dev, uint8_t key[32])
{
    sqlite3_stmt *st = NULL;
    int rc =
        prep(c, "SELECT auth_key FROM client_device_auth WHERE name = ? AND device_id = ?", &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, dev);
    rc = SC_E_NOT_FOUND;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
        memcpy(key, sqlite3_column_blob(st, 0), 32);
        rc = SC_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int sc_device_auth_set(sc_client *c, const char *name, uint32_t dev, const uint8_t key[32])
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c,
                  "INSERT OR REPLACE INTO client_device_auth(name, device_id, auth_key)"
                  " VALUES(?, ?, ?)",
                  &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, dev);
    sqlite3_bind_blob(st, 3, key, 32, SQLITE_STATIC);
    return step_done(c, st);
}

int sc_pending_event_add(sc_client *c, int64_t rowid)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "INSERT OR IGNORE INTO client_pending_events(msg_id) VALUES(?)", &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_int64(st, 1, rowid);
    return step_done(c, st);
}

int sc_pending_event_done(sc_client *c, int64_t rowid)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, "DELETE FROM client_pending_events WHERE msg_id = ?", &st);
    if (rc != SC_OK)
        return rc;
    sqlite3_bind_int64(st, 1, rowid);
    return step_done(c, st);
}
