/*
 * client/core/store.c -- the client's storage layer (store.h): every SQL
 * statement of client/ is in this file.
 *
 * The client's tables are kept in the same SQLite file as libsotto's
 * protocol store (store.db in the account directory), so that one
 * transaction covers a ratchet step and the history row it produced. Table
 * names start with "client_" (libsotto owns "sotto_" and PRAGMA
 * user_version, which therefore is not ours to use).
 *
 * Schema (version 3):
 *   client_schema_version    one row: the client schema version (from v2)
 *   client_config            key -> value (server URL, pin, username,
 *                            device id, Ed25519 auth key, counters)
 *   client_contacts          one row per contact account (verified flag)
 *   client_contact_devices   device ids seen for a contact (safety numbers)
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
 *   client_pending_events    history rows stored by a received envelope but
 *                            not yet handed out, with the process that
 *                            claimed each (pid, random token, time)
 *   client_accounts          pinned account key, pending changed key and the
 *                            newest accepted signed device list per account
 *   client_subscribers, client_subscriber_acks
 *                            the daemon's event subscribers and what each
 *                            acknowledged (v5)
 *
 * Version history (migrations[i] takes version i to i + 1; never edit a
 * released step, add one):
 *   v1  commit c810c49 and before: the tables above except
 *       client_schema_version, client_pending_events(msg_id) only. Those
 *       stores carry no version: one with client_ tables and no
 *       client_schema_version table is v1 (its step is written with
 *       IF NOT EXISTS, so a store that predates client_pending_events gets
 *       it too).
 *   v2  client_schema_version; client_pending_events gains claim_pid,
 *       claim_token, claim_ms (a row is removed only after its event was
 *       handed out, and claimed first so that two processes never both
 *       show it).
 *   v3  client_accounts: per account (contacts and our own) the pinned
 *       account key, a changed key waiting for `trust`, and the newest
 *       signed device list accepted (docs/protocol.md "Account key and
 *       device list"); client_device_auth (auth keys learned on first use
 *       to check add-device signatures) is dropped: the lists replace it.
 *   v4  key transparency (docs/protocol.md "Key transparency"; names as in
 *       the issue 9 design, without the client_ prefix): kt_head (the
 *       audited tree head held), kt_own (own monitoring baseline),
 *       kt_own_lists (hashes of own signed lists by version), kt_gossip,
 *       kt_gossip_pending (heads gossiped by contacts, to check), and
 *       kt_evidence (what an alert was based on).
 *   v5  the daemon's event subscribers (docs/rpc.md "Events"):
 *       client_subscribers (name, acked_upto: every event id up to it is
 *       acknowledged) and client_subscriber_acks (ids acknowledged above
 *       it, out of order).
 *   v6  group revisions and admins (docs/protocol.md "Groups"):
 *       client_groups gains revision and open (groups of older stores:
 *       revision 0, open -- everyone may change them, as before);
 *       client_group_members gains admin; client_group_asks (when we last
 *       asked a member for a group's state, per group: rate limit).
 *
 * Each step runs in its own transaction, re-reading the version inside it
 * (another process may have migrated meanwhile). A store whose version is
 * newer than SC_STORE_VERSION is refused before anything is written.
 * tests/unit/test_client_store_migration.c opens a fixture written by every
 * released version (tests/fixtures/client-store-v*.db).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "internal.h"

/* ------------------------------------------------------------ statements */

typedef struct query {
    sc_client *c;
    sqlite3_stmt *st;
    int err; /* first SQLite error while binding */
    int n;   /* parameters bound so far */
} query;

static int store_fail(sc_client *c)
{
    return sc_fail(c, SC_E_STORE, "local store: %s", sqlite3_errmsg(c->db));
}

static int q_open(sc_client *c, query *q, const char *sql)
{
    memset(q, 0, sizeof *q);
    q->c = c;
    if (c->db == NULL)
        return sc_fail(c, SC_E_STORE, "local store: not open");
    if (sqlite3_prepare_v2(c->db, sql, -1, &q->st, NULL) != SQLITE_OK) {
        int rc = store_fail(c);
        sqlite3_finalize(q->st);
        q->st = NULL;
        return rc;
    }
    return SC_OK;
}

static void q_bound(query *q, int r)
{
    if (q->err == SQLITE_OK && r != SQLITE_OK)
        q->err = r;
}

static void q_i64(query *q, int64_t v)
{
    q_bound(q, sqlite3_bind_int64(q->st, ++q->n, (sqlite3_int64)v));
}

static void q_u64(query *q, uint64_t v)
{
    q_i64(q, (int64_t)v);
}

static void q_null(query *q)
{
    q_bound(q, sqlite3_bind_null(q->st, ++q->n));
}

/* NULL binds SQL NULL */
static void q_text(query *q, const char *s)
{
    if (s == NULL)
        q_null(q);
    else
        q_bound(q, sqlite3_bind_text64(q->st, ++q->n, s, strlen(s), SQLITE_STATIC, SQLITE_UTF8));
}

static void q_textn(query *q, const char *s, size_t n)
{
    q_bound(q,
            sqlite3_bind_text64(q->st, ++q->n, s ? s : "", s ? n : 0, SQLITE_STATIC, SQLITE_UTF8));
}

/* an empty blob is a blob, not NULL */
static void q_blob(query *q, const void *p, size_t n)
{
    q_bound(q, sqlite3_bind_blob64(q->st, ++q->n, n ? p : "", n, SQLITE_STATIC));
}

/* One step: 1 for a row, 0 when done, SC_E_STORE (negative) on error. */
static int q_step(query *q)
{
    int r;

    if (q->err != SQLITE_OK)
        return sc_fail(q->c, SC_E_STORE, "local store: %s", sqlite3_errstr(q->err));
    r = sqlite3_step(q->st);
    if (r == SQLITE_ROW)
        return 1;
    if (r == SQLITE_DONE)
        return 0;
    return store_fail(q->c);
}

static void q_close(query *q)
{
    sqlite3_finalize(q->st);
    q->st = NULL;
}

/* Runs a query that returns a row or none; *exists says which; finalizes it. */
static int exists_of(query *q, bool *exists)
{
    int r = q_step(q);

    q_close(q);
    if (r < 0)
        return r;
    *exists = r == 1;
    return SC_OK;
}

/* Runs a statement that returns no rows; finalizes it. */
static int q_exec(query *q)
{
    int r = q_step(q);
    q_close(q);
    return r < 0 ? r : SC_OK;
}

static char *col_dup(query *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q->st, i);
    return strdup(t ? (const char *)t : "");
}

static uint64_t col_u64(query *q, int i)
{
    return (uint64_t)sqlite3_column_int64(q->st, i);
}

static int nomem(sc_client *c)
{
    return sc_fail(c, SC_E_INTERNAL, "out of memory");
}

/* Makes room for one more element in a row array: when cnt == *cap, reallocs
 * *(void **)vp (elements of `size` bytes) to twice *cap (16 at first) and
 * updates *cap. Returns false on overflow or out of memory, leaving the array
 * and *cap as they were (the caller frees it and reports nomem). */
static bool grow(void *vp, size_t *cap, size_t cnt, size_t size)
{
    void **p = vp;
    size_t ncap;
    void *nv;

    if (cnt < *cap)
        return true;
    ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / size)
        return false;
    nv = realloc(*p, ncap * size);
    if (nv == NULL)
        return false;
    *p = nv;
    *cap = ncap;
    return true;
}

/* Runs SQL without results (schema changes). */
static int exec_sql(sc_client *c, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = sc_fail(c, SC_E_STORE, "local store: %s", msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        return rc;
    }
    return SC_OK;
}

/* ------------------------------------------------------------ transactions */

int sc_db_begin(sc_client *c)
{
    if (sotto_sqlite_store_begin(c->store) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "local store: cannot begin a transaction: %s",
                       sqlite3_errmsg(c->db));
    return SC_OK;
}

int sc_db_commit(sc_client *c)
{
    if (sotto_sqlite_store_commit(c->store) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "local store: cannot commit: %s", sqlite3_errmsg(c->db));
    return SC_OK;
}

void sc_db_rollback(sc_client *c)
{
    if (sotto_sqlite_store_rollback(c->store) != SOTTO_OK)
        (void)sc_fail(c, SC_E_STORE, "local store: rollback failed: %s", sqlite3_errmsg(c->db));
}

/* Ends a transaction this file opened: commit when rc is SC_OK, else roll
 * back (keeping the first error's message). */
static int tx_end(sc_client *c, int rc)
{
    if (rc == SC_OK)
        return sc_db_commit(c);
    {
        char msg[sizeof c->err];
        snprintf(msg, sizeof msg, "%s", c->err);
        sc_db_rollback(c);
        snprintf(c->err, sizeof c->err, "%s", msg);
    }
    return rc;
}

/* ------------------------------------------------------------ schema */

/* Version 1: the schema of commit c810c49, exactly (IF NOT EXISTS: also
 * completes a store of an older commit). */
static const char schema_v1[] =
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

static const char schema_v2[] =
    "CREATE TABLE client_schema_version (version INTEGER NOT NULL);"
    "INSERT INTO client_schema_version(version) VALUES(1);"
    "ALTER TABLE client_pending_events ADD COLUMN claim_pid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE client_pending_events ADD COLUMN claim_token INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE client_pending_events ADD COLUMN claim_ms INTEGER NOT NULL DEFAULT 0;";

static const char schema_v3[] =
    "CREATE TABLE client_accounts (name TEXT PRIMARY KEY, account_key BLOB NOT NULL,"
    " pending_key BLOB, list BLOB, list_version INTEGER NOT NULL DEFAULT 0,"
    " pinned_ms INTEGER NOT NULL);"
    /* device-add signatures learned on first use: replaced by signed lists */
    "DROP TABLE IF EXISTS client_device_auth;";

/* key transparency (issue 9): table names as in the shared design */
static const char schema_v4[] =
    "CREATE TABLE kt_head (id INTEGER PRIMARY KEY CHECK (id = 1), head BLOB NOT NULL,"
    " accepted_ms INTEGER NOT NULL);"
    "CREATE TABLE kt_own (id INTEGER PRIMARY KEY CHECK (id = 1), counter INTEGER NOT NULL,"
    " version INTEGER NOT NULL, checked_ms INTEGER NOT NULL);"
    "CREATE TABLE kt_own_lists (version INTEGER PRIMARY KEY, list_hash BLOB NOT NULL);"
    "CREATE TABLE kt_gossip (contact TEXT PRIMARY KEY, last_sent_ms INTEGER NOT NULL);"
    "CREATE TABLE kt_gossip_pending (id INTEGER PRIMARY KEY, contact TEXT NOT NULL,"
    " head BLOB NOT NULL, received_ms INTEGER NOT NULL);"
    "CREATE TABLE kt_evidence (id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL, text TEXT NOT NULL, head_a BLOB, head_b BLOB);";

/* the daemon's event subscribers (issue 10, docs/rpc.md "Events"): per
 * subscriber name, every event id <= acked_upto is acknowledged, and so are
 * the ids listed in client_subscriber_acks (acknowledged out of order) */
static const char schema_v5[] =
    "CREATE TABLE client_subscribers (name TEXT PRIMARY KEY, acked_upto INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE client_subscriber_acks (name TEXT NOT NULL, event_id INTEGER NOT NULL,"
    " PRIMARY KEY(name, event_id));";

/* group revisions, admins, "everyone may edit" (issue 10, docs/protocol.md
 * "Groups"); groups made before have no admins: open, as they were */
static const char schema_v6[] =
    "ALTER TABLE client_groups ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE client_groups ADD COLUMN open INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE client_group_members ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE client_group_asks (group_id BLOB PRIMARY KEY, asked_ms INTEGER NOT NULL);";

/* everyday messaging (issue 11, docs/protocol.md "Everyday messaging").
 * client_messages gains: target_sender/target_ts (a control row -- kinds
 * "receipt", "reaction", "edit", "delete", "read" -- names the message it
 * acts on; NULL otherwise); read_ms (an incoming message was read, here or
 * on an own device; 0 not yet); expire_s and expires_ms (disappearing: the
 * timer the message was sent under, and when it goes: 0 = not started);
 * edited_ts (Content.timestamp of the edit shown, 0 none); deleted (deleted
 * for everyone: body and extra wiped, the row a tombstone); request (the
 * row belongs to a message request). Stores made before: every contact and
 * group is accepted (nothing becomes a request by upgrading). */
static const char schema_v7[] =
    "ALTER TABLE client_messages ADD COLUMN target_sender TEXT;"
    "ALTER TABLE client_messages ADD COLUMN target_ts INTEGER;"
    "ALTER TABLE client_messages ADD COLUMN read_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE client_messages ADD COLUMN expire_s INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE client_messages ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE client_messages ADD COLUMN edited_ts INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE client_messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE client_messages ADD COLUMN request INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX client_messages_msgid ON client_messages(sender, timestamp);"
    "CREATE INDEX client_messages_target ON client_messages(target_sender, target_ts)"
    " WHERE target_sender IS NOT NULL;"
    "CREATE INDEX client_messages_expiry ON client_messages(expires_ms) WHERE expires_ms > 0;"
    /* receipts for our own messages: per message and recipient the best
     * state seen (1 delivered, 2 read) */
    "CREATE TABLE client_receipts (timestamp INTEGER NOT NULL, recipient TEXT NOT NULL,"
    " state INTEGER NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY(timestamp, recipient));"
    /* receipts we owe (type 0 delivery, 1 read), sent batched once due */
    "CREATE TABLE client_receipts_out (recipient TEXT NOT NULL, timestamp INTEGER NOT NULL,"
    " type INTEGER NOT NULL, due_ms INTEGER NOT NULL, PRIMARY KEY(recipient, timestamp, type));"
    /* reactions: one per reactor per message; emoji '' = removed (kept, so
     * that an older reaction arriving late cannot come back) */
    "CREATE TABLE client_reactions (target_sender TEXT NOT NULL, target_ts INTEGER NOT NULL,"
    " reactor TEXT NOT NULL, emoji TEXT NOT NULL, reacted_ts INTEGER NOT NULL,"
    " PRIMARY KEY(target_sender, target_ts, reactor));"
    /* every version of an edited message (the original included, edit_ts
     * = its own timestamp), also edits that came before their message */
    "CREATE TABLE client_edits (target_sender TEXT NOT NULL, target_ts INTEGER NOT NULL,"
    " edit_ts INTEGER NOT NULL, body TEXT NOT NULL, extra TEXT, received_ms INTEGER NOT NULL,"
    " PRIMARY KEY(target_sender, target_ts, edit_ts));"
    /* deletes for everyone, also those that came before their message */
    "CREATE TABLE client_tombstones (sender TEXT NOT NULL, timestamp INTEGER NOT NULL,"
    " deleted_ms INTEGER NOT NULL, PRIMARY KEY(sender, timestamp));"
    /* per conversation: disappearing timer (and the Content.timestamp of
     * the change that set it: the newest change wins), message-request
     * state */
    "CREATE TABLE client_conversations (conv_kind TEXT NOT NULL, conv TEXT NOT NULL,"
    " expire_s INTEGER NOT NULL DEFAULT 0, expire_ts INTEGER NOT NULL DEFAULT 0,"
    " accepted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(conv_kind, conv));"
    "INSERT INTO client_conversations(conv_kind, conv, accepted)"
    " SELECT 'contact', name, 1 FROM client_contacts;"
    "INSERT OR IGNORE INTO client_conversations(conv_kind, conv, accepted)"
    " SELECT DISTINCT 'contact', conv, 1 FROM client_messages WHERE conv_kind = 'contact';"
    "INSERT OR IGNORE INTO client_conversations(conv_kind, conv, accepted)"
    " SELECT 'group', lower(hex(id)), 1 FROM client_groups;"
    /* the block list (synced to own devices; updated_ms orders syncs) */
    "CREATE TABLE client_blocked (name TEXT PRIMARY KEY, blocked_ms INTEGER NOT NULL);"
    /* others' profiles: their profile key, and what it opened */
    "CREATE TABLE client_profiles (name TEXT PRIMARY KEY, profile_key BLOB,"
    " display_name TEXT, avatar_path TEXT, fetched_ms INTEGER NOT NULL DEFAULT 0);";

/* migrations[i]: version i -> i + 1 (0 is an empty store). */
static const char *const migrations[] = {schema_v1, schema_v2, schema_v3, schema_v4,
                                         schema_v5, schema_v6, schema_v7};

_Static_assert(sizeof migrations / sizeof migrations[0] == SC_STORE_VERSION,
               "one migration per schema version");

/* The client schema version: client_schema_version's row; 1 for a store
 * with client_ tables but no version table; 0 for none. */
static int read_version(sc_client *c, int *version)
{
    query q;
    int rc, r;
    bool have_table = false, have_client = false;

    *version = 0;
    rc = q_open(c, &q,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND"
                " substr(name, 1, 7) = 'client_'");
    if (rc != SC_OK)
        return rc;
    while ((r = q_step(&q)) == 1) {
        const unsigned char *n = sqlite3_column_text(q.st, 0);
        have_client = true;
        if (n && strcmp((const char *)n, "client_schema_version") == 0)
            have_table = true;
    }
    q_close(&q);
    if (r < 0)
        return r;
    if (!have_table) {
        *version = have_client ? 1 : 0;
        return SC_OK;
    }
    rc = q_open(c, &q,
                "SELECT version, (SELECT count(*) FROM client_schema_version)"
                " FROM client_schema_version");
    if (rc != SC_OK)
        return rc;
    r = q_step(&q);
    if (r == 1 && sqlite3_column_int64(q.st, 1) == 1 && sqlite3_column_int64(q.st, 0) >= 1 &&
        sqlite3_column_int64(q.st, 0) <= INT_MAX)
        *version = (int)sqlite3_column_int64(q.st, 0);
    q_close(&q);
    if (r < 0)
        return r;
    if (*version == 0)
        return sc_fail(c, SC_E_STORE, "local store: client_schema_version is damaged");
    return SC_OK;
}

static int write_version(sc_client *c, int version)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_schema_version SET version = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, version);
    rc = q_exec(&q);
    if (rc == SC_OK && sqlite3_changes(c->db) != 1)
        rc = sc_fail(c, SC_E_STORE, "local store: cannot record the schema version");
    return rc;
}

int sc_store_version(sc_client *c, int *version)
{
    return read_version(c, version);
}

static int newer_store(sc_client *c, int v)
{
    return sc_fail(c, SC_E_STORE,
                   "the local store was written by a newer sotto (client schema version %d;"
                   " this one knows up to %d): use that version",
                   v, SC_STORE_VERSION);
}

int sc_store_precheck(sc_client *c, const char *path, bool must_exist)
{
    sqlite3 *db = NULL, *saved = c->db;
    int v = 0, rc;

    /* a connection of our own that only reads (the file exists: sc_open
     * created it): nothing is written */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        rc = sc_fail(c, SC_E_STORE, "cannot open the local store %s: %s", path,
                     db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    /* and no checkpoint of a WAL a killed process left, when closing */
    if (sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK) {
        rc = sc_fail(c, SC_E_STORE, "local store: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return rc;
    }
    c->db = db;
    rc = read_version(c, &v);
    c->db = saved;
    if (sqlite3_close(db) != SQLITE_OK && rc == SC_OK)
        rc = sc_fail(c, SC_E_STORE, "local store: cannot close %s", path);
    if (rc == SC_OK && v > SC_STORE_VERSION)
        rc = newer_store(c, v);
    if (rc == SC_OK && v == 0 && must_exist)
        rc = sc_fail(c, SC_E_STORE,
                     "the local store %s holds no account (it was emptied or damaged):"
                     " restore from a backup (sotto register --restore FILE)",
                     path);
    return rc;
}

int sc_store_init(sc_client *c)
{
    for (;;) {
        int v = 0, rc = read_version(c, &v);

        if (rc != SC_OK)
            return rc;
        if (v > SC_STORE_VERSION)
            return newer_store(c, v);
        if (v == SC_STORE_VERSION)
            return SC_OK;
        rc = sc_db_begin(c);
        if (rc != SC_OK)
            return rc;
        /* again inside the write lock: another process may have done it */
        rc = read_version(c, &v);
        if (rc == SC_OK && v < SC_STORE_VERSION) {
            rc = exec_sql(c, migrations[v]);
            /* client_schema_version exists from version 2 on (before, the
             * version is implied by the client_ tables) */
            if (rc == SC_OK && v + 1 >= 2)
                rc = write_version(c, v + 1);
            if (rc != SC_OK) {
                char why[sizeof c->err];
                snprintf(why, sizeof why, "%s", c->err);
                (void)sc_fail(c, SC_E_STORE, "cannot migrate the local store to version %d (%s)",
                              v + 1, why);
            }
        }
        rc = tx_end(c, rc);
        if (rc != SC_OK)
            return rc;
    }
}

/* ------------------------------------------------------------ config */

static int cfg_get(sc_client *c, const char *key, query *q)
{
    int rc = q_open(c, q, "SELECT value FROM client_config WHERE key = ?");
    int r;

    if (rc != SC_OK)
        return rc;
    q_text(q, key);
    r = q_step(q);
    if (r == 1 && sqlite3_column_type(q->st, 0) != SQLITE_NULL)
        return SC_OK;
    q_close(q);
    return r < 0 ? r : SC_E_NOT_FOUND;
}

int sc_cfg_get_text(sc_client *c, const char *key, char **out)
{
    query q;
    int rc = cfg_get(c, key, &q);

    *out = NULL;
    if (rc != SC_OK)
        return rc;
    *out = col_dup(&q, 0);
    q_close(&q);
    return *out ? SC_OK : nomem(c);
}

int sc_cfg_get_blob(sc_client *c, const char *key, uint8_t **out, size_t *len)
{
    query q;
    int rc = cfg_get(c, key, &q);
    int n;

    *out = NULL;
    *len = 0;
    if (rc != SC_OK)
        return rc;
    n = sqlite3_column_bytes(q.st, 0);
    *out = malloc(n > 0 ? (size_t)n : 1);
    if (*out == NULL) {
        q_close(&q);
        return nomem(c);
    }
    if (n > 0)
        memcpy(*out, sqlite3_column_blob(q.st, 0), (size_t)n);
    *len = (size_t)n;
    q_close(&q);
    return SC_OK;
}

int sc_cfg_get_u64(sc_client *c, const char *key, uint64_t *out)
{
    query q;
    int rc = cfg_get(c, key, &q);

    *out = 0;
    if (rc != SC_OK)
        return rc;
    *out = col_u64(&q, 0);
    q_close(&q);
    return SC_OK;
}

static int cfg_set(sc_client *c, const char *key, query *q)
{
    int rc = q_open(c, q,
                    "INSERT INTO client_config(key, value) VALUES(?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (rc == SC_OK)
        q_text(q, key);
    return rc;
}

int sc_cfg_set_text(sc_client *c, const char *key, const char *v)
{
    query q;
    int rc = cfg_set(c, key, &q);
    if (rc != SC_OK)
        return rc;
    q_text(&q, v);
    return q_exec(&q);
}

int sc_cfg_set_blob(sc_client *c, const char *key, const uint8_t *v, size_t len)
{
    query q;
    int rc = cfg_set(c, key, &q);
    if (rc != SC_OK)
        return rc;
    q_blob(&q, v, len);
    return q_exec(&q);
}

int sc_cfg_set_u64(sc_client *c, const char *key, uint64_t v)
{
    query q;
    int rc = cfg_set(c, key, &q);
    if (rc != SC_OK)
        return rc;
    q_u64(&q, v);
    return q_exec(&q);
}

/* ------------------------------------------------------------ contacts */

int sc_contact_touch(sc_client *c, const char *name, uint32_t device_id)
{
    query q;
    int rc;

    if (c->username && strcmp(name, c->username) != 0) {
        rc = q_open(c, &q, "INSERT OR IGNORE INTO client_contacts(name, created_ms) VALUES(?, ?)");
        if (rc != SC_OK)
            return rc;
        q_text(&q, name);
        q_u64(&q, sc_now_ms());
        rc = q_exec(&q);
        if (rc != SC_OK)
            return rc;
    }
    if (device_id == 0)
        return SC_OK;
    rc =
        q_open(c, &q, "INSERT OR IGNORE INTO client_contact_devices(name, device_id) VALUES(?, ?)");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_i64(&q, device_id);
    return q_exec(&q);
}

int sc_contact_known(sc_client *c, const char *name, bool *known)
{
    query q;
    int rc = q_open(c, &q, "SELECT 1 FROM client_contacts WHERE name = ?");

    *known = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    return exists_of(&q, known);
}

int sc_contact_forget_device(sc_client *c, const char *name, uint32_t device_id)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_contact_devices WHERE name = ? AND device_id = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_i64(&q, device_id);
    return q_exec(&q);
}

int sc_contact_set_verified(sc_client *c, const char *name)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_contacts SET verified = 1 WHERE name = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    return q_exec(&q);
}

void sc_contact_list_free(sc_contact_info *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free((char *)v[i].name);
    free(v);
}

int sc_contact_list(sc_client *c, sc_contact_info **out, size_t *n)
{
    query q;
    sc_contact_info *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, r;

    *out = NULL;
    *n = 0;
    rc = q_open(c, &q,
                "SELECT name, verified,"
                " (SELECT count(*) FROM client_contact_devices d WHERE d.name = c.name),"
                " EXISTS(SELECT 1 FROM client_pending_identity p WHERE p.name = c.name)"
                " FROM client_contacts c ORDER BY name");
    if (rc != SC_OK)
        return rc;
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v))
            goto oom;
        v[cnt].name = col_dup(&q, 0);
        if (v[cnt].name == NULL)
            goto oom;
        v[cnt].verified = sqlite3_column_int(q.st, 1) != 0;
        v[cnt].n_devices = (size_t)sqlite3_column_int64(q.st, 2);
        v[cnt].identity_changed = sqlite3_column_int(q.st, 3) != 0;
        cnt++;
    }
    q_close(&q);
    if (r < 0) {
        sc_contact_list_free(v, cnt);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
oom:
    q_close(&q);
    sc_contact_list_free(v, cnt);
    return nomem(c);
}

/* ------------------------------------------------------------ identities */

int sc_pending_identity_set(sc_client *c, const char *name, uint32_t device_id,
                            const sotto_public_key *key)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_pending_identity(name, device_id, identity_key, seen_ms)"
                    " VALUES(?, ?, ?, ?) ON CONFLICT(name, device_id) DO UPDATE SET"
                    " identity_key = excluded.identity_key, seen_ms = excluded.seen_ms");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_i64(&q, device_id);
    q_blob(&q, key->bytes, SOTTO_PUBLIC_KEY_BYTES);
    q_u64(&q, sc_now_ms());
    return q_exec(&q);
}

int sc_pending_identity_any(sc_client *c, const char *name, bool *any)
{
    query q;
    int rc = q_open(c, &q, "SELECT 1 FROM client_pending_identity WHERE name = ? LIMIT 1");

    *any = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    return exists_of(&q, any);
}

static bool col_key(query *q, int i, sotto_public_key *out)
{
    const void *b = sqlite3_column_blob(q->st, i);
    int n = sqlite3_column_bytes(q->st, i);
    return b != NULL && n > 0 && sotto_public_key_decode(out, b, (size_t)n) == SOTTO_OK;
}

int sc_pending_identity_list(sc_client *c, const char *name, sc_pending_identity **out, size_t *n)
{
    query q;
    sc_pending_identity *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, r;

    *out = NULL;
    *n = 0;
    rc = q_open(c, &q,
                "SELECT device_id, identity_key FROM client_pending_identity WHERE name = ?"
                " ORDER BY device_id");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            free(v);
            q_close(&q);
            return nomem(c);
        }
        v[cnt].device_id = (uint32_t)sqlite3_column_int64(q.st, 0);
        if (col_key(&q, 1, &v[cnt].key))
            cnt++;
    }
    q_close(&q);
    if (r < 0) {
        free(v);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
}

int sc_pending_identity_clear(sc_client *c, const char *name)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_pending_identity WHERE name = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    return q_exec(&q);
}

/* ------------------------------------------------------------ history */

#define MSG_COLS                                                                                   \
    "SELECT id, conv_kind, conv, direction, sender, sender_device, timestamp, server_ts, kind,"    \
    " body, extra, target_sender, target_ts, read_ms, expire_s, expires_ms, edited_ts, deleted,"   \
    " request FROM client_messages"

int sc_msg_insert(sc_client *c, const sc_msg_row *m, int64_t *rowid)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_messages(conv_kind, conv, direction, sender,"
                    " sender_device, timestamp, server_ts, received_ms, kind, body, extra,"
                    " target_sender, target_ts, expire_s, expires_ms, request)"
                    " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (rc != SC_OK)
        return rc;
    q_text(&q, m->conv_kind);
    q_text(&q, m->conv);
    q_i64(&q, m->direction);
    q_text(&q, m->sender ? m->sender : "");
    q_i64(&q, m->sender_device);
    q_u64(&q, m->timestamp);
    q_u64(&q, m->server_ts);
    q_u64(&q, sc_now_ms());
    q_text(&q, m->kind);
    q_textn(&q, m->body, m->body_len);
    q_text(&q, m->extra);
    q_text(&q, m->target_sender);
    if (m->target_sender)
        q_u64(&q, m->target_ts);
    else
        q_null(&q);
    q_i64(&q, m->expire_s);
    q_u64(&q, m->expires_ms);
    q_i64(&q, m->request ? 1 : 0);
    rc = q_exec(&q);
    if (rc == SC_OK && rowid)
        *rowid = sqlite3_last_insert_rowid(c->db);
    return rc;
}

void sc_msg_free(sc_msg *m)
{
    if (m == NULL)
        return;
    free(m->conv_kind);
    free(m->conv);
    free(m->sender);
    free(m->kind);
    free(m->target_sender);
    if (m->body) {
        sodium_memzero(m->body, m->body_len);
        free(m->body);
    }
    sc_free_secret_str(m->extra);
    memset(m, 0, sizeof *m);
}

void sc_msg_list_free(sc_msg *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        sc_msg_free(&v[i]);
    free(v);
}

/* The current row of an MSG_COLS query into *m. */
static int msg_from_row(query *q, sc_msg *m)
{
    const void *body = sqlite3_column_text(q->st, 9);
    size_t body_len = (size_t)sqlite3_column_bytes(q->st, 9);

    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(q->st, 0);
    m->direction = sqlite3_column_int(q->st, 3);
    m->sender_device = (uint32_t)sqlite3_column_int64(q->st, 5);
    m->timestamp = col_u64(q, 6);
    m->server_ts = col_u64(q, 7);
    m->conv_kind = col_dup(q, 1);
    m->conv = col_dup(q, 2);
    m->sender = col_dup(q, 4);
    m->kind = col_dup(q, 8);
    m->body = malloc(body_len + 1);
    if (m->body) {
        if (body_len)
            memcpy(m->body, body, body_len);
        m->body[body_len] = '\0';
        m->body_len = body_len;
    }
    if (sqlite3_column_type(q->st, 10) != SQLITE_NULL) {
        m->extra = col_dup(q, 10);
        if (m->extra == NULL)
            goto oom;
    }
    if (sqlite3_column_type(q->st, 11) != SQLITE_NULL) {
        m->target_sender = col_dup(q, 11);
        if (m->target_sender == NULL)
            goto oom;
        m->target_ts = col_u64(q, 12);
    }
    m->read_ms = col_u64(q, 13);
    m->expire_s = (uint32_t)sqlite3_column_int64(q->st, 14);
    m->expires_ms = col_u64(q, 15);
    m->edited_ts = col_u64(q, 16);
    m->deleted = sqlite3_column_int(q->st, 17) != 0;
    m->request = sqlite3_column_int(q->st, 18) != 0;
    if (m->conv_kind && m->conv && m->sender && m->kind && m->body)
        return SC_OK;
oom:
    sc_msg_free(m);
    return nomem(q->c);
}

int sc_msg_get(sc_client *c, int64_t rowid, sc_msg *out)
{
    query q;
    int rc = q_open(c, &q, MSG_COLS " WHERE id = ?");
    int r;

    memset(out, 0, sizeof *out);
    if (rc != SC_OK)
        return rc;
    q_i64(&q, rowid);
    r = q_step(&q);
    rc = r < 0 ? r : r == 0 ? SC_E_NOT_FOUND : msg_from_row(&q, out);
    q_close(&q);
    return rc;
}

/* Every row of an opened, bound MSG_COLS query (at most `max`) into a
 * malloc'd list (sc_msg_list_free); the query is closed. */
static int msg_rows(sc_client *c, query *q, size_t max, sc_msg **out, size_t *n)
{
    sc_msg *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = 0;

    while (cnt < max && (r = q_step(q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            r = nomem(c);
            break;
        }
        r = msg_from_row(q, &v[cnt]);
        if (r != SC_OK)
            break;
        cnt++;
    }
    q_close(q);
    if (r < 0) {
        sc_msg_list_free(v, cnt);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
}

int sc_msg_history(sc_client *c, const char *conv_kind, const char *conv, size_t limit,
                   sc_msg **out, size_t *n)
{
    query q;
    int rc;

    *out = NULL;
    *n = 0;
    rc = q_open(c, &q,
                "SELECT * FROM (" MSG_COLS " WHERE conv_kind = ? AND conv = ?"
                " AND target_sender IS NULL ORDER BY id DESC"
                " LIMIT ?) ORDER BY id");
    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    q_i64(&q, limit && limit <= INT64_MAX ? (int64_t)limit : -1);
    return msg_rows(c, &q, SIZE_MAX, out, n);
}

int sc_msg_set_extra(sc_client *c, int64_t rowid, const char *extra)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_messages SET extra = ? WHERE id = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, extra);
    q_i64(&q, rowid);
    return q_exec(&q);
}

int sc_msg_max_id(sc_client *c, int64_t *out)
{
    query q;
    int rc = q_open(c, &q, "SELECT max(id) FROM client_messages");
    int r;

    *out = 0;
    if (rc != SC_OK)
        return rc;
    r = q_step(&q);
    if (r == 1)
        *out = sqlite3_column_int64(q.st, 0); /* NULL (empty) reads as 0 */
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_msg_seen(sc_client *c, const char *sender, uint64_t timestamp, bool *seen)
{
    query q;
    int rc =
        q_open(c, &q, "INSERT OR IGNORE INTO client_seen_messages(sender, timestamp) VALUES(?, ?)");

    *seen = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, sender);
    q_u64(&q, timestamp);
    rc = q_exec(&q);
    if (rc == SC_OK)
        *seen = sqlite3_changes(c->db) == 0;
    return rc;
}

int sc_msg_exists(sc_client *c, const char *conv_kind, const char *conv, const char *sender,
                  uint64_t timestamp, bool *exists)
{
    query q;
    /* the conversation's rows through client_messages_conv */
    int rc = q_open(c, &q,
                    "SELECT 1 FROM client_messages WHERE conv_kind = ? AND conv = ? AND sender = ?"
                    " AND timestamp = ? AND kind <> 'notice' LIMIT 1");

    *exists = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    q_text(&q, sender);
    q_u64(&q, timestamp);
    return exists_of(&q, exists);
}

int sc_msg_delete_unsent(sc_client *c, int64_t msg_id, uint64_t ts, const char *own_username,
                         bool *deleted)
{
    query q;
    bool gone = false;
    int rc;

    if (deleted)
        *deleted = false;
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    rc = q_open(c, &q, "DELETE FROM client_messages WHERE id = ? AND conv_kind = 'contact'");
    if (rc == SC_OK) {
        q_i64(&q, msg_id);
        rc = q_exec(&q);
        gone = rc == SC_OK && sqlite3_changes(c->db) > 0;
    }
    if (rc == SC_OK && gone && own_username) {
        rc = q_open(c, &q, "DELETE FROM client_outgoing WHERE timestamp = ? AND destination = ?");
        if (rc == SC_OK) {
            q_u64(&q, ts);
            q_text(&q, own_username);
            rc = q_exec(&q);
        }
    }
    rc = tx_end(c, rc);
    if (rc == SC_OK && deleted)
        *deleted = gone;
    return rc;
}

/* ------------------------------------------------------------ envelopes */

int sc_envelope_seen(sc_client *c, const uint8_t *id, size_t len, bool *seen)
{
    query q;
    int rc = q_open(c, &q, "SELECT 1 FROM client_seen_envelopes WHERE id = ?");

    *seen = false;
    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, len);
    return exists_of(&q, seen);
}

int sc_envelope_mark(sc_client *c, const uint8_t *id, size_t len)
{
    query q;
    int rc = q_open(c, &q, "INSERT OR IGNORE INTO client_seen_envelopes(id, seen_ms) VALUES(?, ?)");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, len);
    q_u64(&q, sc_now_ms());
    return q_exec(&q);
}

int sc_held_add(sc_client *c, const sc_envelope *e)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT OR IGNORE INTO client_held_envelopes(id, source, source_device, type,"
                    " body, server_ts) VALUES(?, ?, ?, ?, ?, ?)");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, e->id, e->id_len <= sizeof e->id ? e->id_len : sizeof e->id);
    q_text(&q, e->source);
    q_i64(&q, e->source_device);
    q_i64(&q, e->type);
    q_blob(&q, e->body, e->body_len);
    q_u64(&q, e->server_ts);
    return q_exec(&q);
}

int sc_held_next(sc_client *c, const char *source, sc_envelope *e, int64_t *row)
{
    query q;
    int rc, r;

    memset(e, 0, sizeof *e);
    *row = 0;
    rc = q_open(c, &q,
                "SELECT rowid, id, source_device, type, body, server_ts FROM"
                " client_held_envelopes WHERE source = ? ORDER BY rowid LIMIT 1");
    if (rc != SC_OK)
        return rc;
    q_text(&q, source);
    r = q_step(&q);
    if (r != 1) {
        q_close(&q);
        return r < 0 ? r : SC_E_NOT_FOUND;
    }
    {
        size_t idl = (size_t)sqlite3_column_bytes(q.st, 1);
        size_t bl = (size_t)sqlite3_column_bytes(q.st, 4);
        const void *id = sqlite3_column_blob(q.st, 1);
        const void *body = sqlite3_column_blob(q.st, 4);

        *row = sqlite3_column_int64(q.st, 0);
        e->id_len = idl < sizeof e->id ? idl : sizeof e->id;
        if (e->id_len)
            memcpy(e->id, id, e->id_len);
        snprintf(e->source, sizeof e->source, "%s",
                 strlen(source) < sizeof e->source ? source : "");
        e->source_device = (uint32_t)sqlite3_column_int64(q.st, 2);
        e->type = (uint32_t)sqlite3_column_int64(q.st, 3);
        e->server_ts = col_u64(&q, 5);
        e->body = malloc(bl ? bl : 1);
        if (e->body == NULL) {
            q_close(&q);
            return nomem(c);
        }
        if (bl)
            memcpy(e->body, body, bl);
        e->body_len = bl;
    }
    q_close(&q);
    return SC_OK;
}

int sc_held_delete(sc_client *c, int64_t row)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_held_envelopes WHERE rowid = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, row);
    return q_exec(&q);
}

/* A held envelope of h.source that no `trust` waits for (store.h). */
#define HELD_WAITING                                                                               \
    " NOT EXISTS (SELECT 1 FROM client_accounts a WHERE a.name = h.source"                         \
    " AND a.pending_key IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM client_pending_identity p"      \
    " WHERE p.name = h.source)"

/* The first (text) column of every row of `sql` (no parameters) as a
 * malloc'd string vector (sc_strv_free). SC_OK, SC_E_STORE or SC_E_INTERNAL. */
static int text_column(sc_client *c, const char *sql, char ***names, size_t *n)
{
    query q;
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = q_open(c, &q, sql);
    int r;

    *names = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            r = nomem(c);
            break;
        }
        if ((v[cnt] = col_dup(&q, 0)) == NULL) {
            r = nomem(c);
            break;
        }
        cnt++;
    }
    q_close(&q);
    if (r < 0) {
        sc_strv_free(v, cnt);
        return r;
    }
    *names = v;
    *n = cnt;
    return SC_OK;
}

int sc_held_waiting_senders(sc_client *c, char ***names, size_t *n)
{
    return text_column(c,
                       "SELECT h.source FROM client_held_envelopes h WHERE" HELD_WAITING
                       " GROUP BY h.source ORDER BY min(h.rowid)",
                       names, n);
}

int sc_held_waiting_any(sc_client *c, const char *source, bool *any)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT 1 FROM client_held_envelopes h WHERE h.source = ? AND" HELD_WAITING
                    " LIMIT 1");

    *any = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, source);
    return exists_of(&q, any);
}

/* ------------------------------------------------------------ outbox */

int sc_out_add(sc_client *c, const char *destination, uint64_t timestamp, const uint8_t *content,
               size_t len, int64_t msg_rowid)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_outgoing(destination, timestamp, content, msg_id,"
                    " created_ms) VALUES(?, ?, ?, ?, ?)");
    if (rc != SC_OK)
        return rc;
    q_text(&q, destination);
    q_u64(&q, timestamp);
    q_blob(&q, content, len);
    if (msg_rowid > 0)
        q_i64(&q, msg_rowid);
    else
        q_null(&q);
    q_u64(&q, sc_now_ms());
    return q_exec(&q);
}

void sc_out_row_clear(sc_out_row *r)
{
    if (r == NULL)
        return;
    free(r->destination);
    if (r->content) {
        sodium_memzero(r->content, r->len);
        free(r->content);
    }
    memset(r, 0, sizeof *r);
}

int sc_out_next(sc_client *c, int64_t after_id, sc_out_row *out)
{
    query q;
    int rc, r;

    memset(out, 0, sizeof *out);
    rc = q_open(c, &q,
                "SELECT id, destination, content, timestamp, msg_id, attempts FROM"
                " client_outgoing WHERE id > ? ORDER BY id LIMIT 1");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, after_id);
    r = q_step(&q);
    if (r != 1) {
        q_close(&q);
        return r < 0 ? r : SC_E_NOT_FOUND;
    }
    out->id = sqlite3_column_int64(q.st, 0);
    out->destination = col_dup(&q, 1);
    out->len = (size_t)sqlite3_column_bytes(q.st, 2);
    out->content = malloc(out->len ? out->len : 1);
    if (out->destination == NULL || out->content == NULL) {
        q_close(&q);
        sc_out_row_clear(out);
        return nomem(c);
    }
    if (out->len)
        memcpy(out->content, sqlite3_column_blob(q.st, 2), out->len);
    out->timestamp = col_u64(&q, 3);
    out->msg_id = sqlite3_column_int64(q.st, 4); /* NULL reads as 0 */
    out->attempts = (uint32_t)sqlite3_column_int64(q.st, 5);
    q_close(&q);
    return SC_OK;
}

int sc_out_set_content(sc_client *c, int64_t id, const uint8_t *content, size_t len)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_outgoing SET content = ? WHERE id = ?");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, content, len);
    q_i64(&q, id);
    return q_exec(&q);
}

int sc_out_delete(sc_client *c, int64_t id)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_outgoing WHERE id = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, id);
    return q_exec(&q);
}

int sc_out_bump(sc_client *c, int64_t id)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_outgoing SET attempts = attempts + 1 WHERE id = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, id);
    return q_exec(&q);
}

static int count_of(query *q, size_t *n)
{
    int r = q_step(q);
    if (r == 1)
        *n = (size_t)sqlite3_column_int64(q->st, 0);
    q_close(q);
    return r < 0 ? r : SC_OK;
}

int sc_out_count(sc_client *c, size_t *n)
{
    query q;
    int rc = q_open(c, &q, "SELECT count(*) FROM client_outgoing");

    *n = 0;
    if (rc != SC_OK)
        return rc;
    return count_of(&q, n);
}

int sc_out_count_messages(sc_client *c, size_t *n)
{
    query q;
    int rc = q_open(c, &q, "SELECT count(DISTINCT timestamp) FROM client_outgoing");

    *n = 0;
    if (rc != SC_OK)
        return rc;
    return count_of(&q, n);
}

int sc_out_count_ts(sc_client *c, uint64_t ts, size_t *n)
{
    query q;
    int rc = q_open(c, &q, "SELECT count(*) FROM client_outgoing WHERE timestamp = ?");

    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_u64(&q, ts);
    return count_of(&q, n);
}

int sc_out_count_ts_to(sc_client *c, uint64_t ts, const char *dest, size_t *n)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT count(*) FROM client_outgoing WHERE timestamp = ? AND destination = ?");

    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_u64(&q, ts);
    q_text(&q, dest);
    return count_of(&q, n);
}

/* ------------------------------------------------------------ session resets */

int sc_session_reset_add(sc_client *c, const char *name, uint32_t device_id)
{
    query q;
    int rc =
        q_open(c, &q, "INSERT OR IGNORE INTO client_session_reset(name, device_id) VALUES(?, ?)");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_i64(&q, device_id);
    return q_exec(&q);
}

int sc_session_reset_list(sc_client *c, const char *name, uint32_t *ids, size_t cap, size_t *n)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT device_id FROM client_session_reset WHERE name = ? ORDER BY device_id"
                    " LIMIT ?");
    int r = 0;

    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_i64(&q, (int64_t)cap);
    while (*n < cap && (r = q_step(&q)) == 1)
        ids[(*n)++] = (uint32_t)sqlite3_column_int64(q.st, 0);
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_session_reset_remove(sc_client *c, const char *name, uint32_t device_id)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_session_reset WHERE name = ? AND device_id = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_i64(&q, device_id);
    return q_exec(&q);
}

/* ------------------------------------------------------------ signed prekeys */

int sc_spk_add(sc_client *c, uint32_t id, uint64_t now_ms)
{
    query q;
    int rc = sc_db_begin(c);

    if (rc != SC_OK)
        return rc;
    rc =
        q_open(c, &q, "UPDATE client_signed_prekeys SET replaced_ms = ? WHERE replaced_ms IS NULL");
    if (rc == SC_OK) {
        q_u64(&q, now_ms);
        rc = q_exec(&q);
    }
    if (rc == SC_OK)
        rc = q_open(c, &q,
                    "INSERT OR REPLACE INTO client_signed_prekeys(id, created_ms, replaced_ms)"
                    " VALUES(?, ?, NULL)");
    if (rc == SC_OK) {
        q_i64(&q, id);
        q_u64(&q, now_ms);
        rc = q_exec(&q);
    }
    return tx_end(c, rc);
}

int sc_spk_current_created(sc_client *c, uint64_t *created_ms)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT created_ms FROM client_signed_prekeys WHERE replaced_ms IS NULL"
                    " ORDER BY id DESC LIMIT 1");
    int r;

    *created_ms = 0;
    if (rc != SC_OK)
        return rc;
    r = q_step(&q);
    if (r == 1)
        *created_ms = col_u64(&q, 0);
    q_close(&q);
    return r < 0 ? r : r == 1 ? SC_OK : SC_E_NOT_FOUND;
}

int sc_spk_replaced_before(sc_client *c, uint64_t cutoff_ms, uint32_t *ids, size_t cap, size_t *n)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT id FROM client_signed_prekeys WHERE replaced_ms IS NOT NULL AND"
                    " replaced_ms < ? ORDER BY id LIMIT ?");
    int r = 0;

    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_u64(&q, cutoff_ms);
    q_i64(&q, (int64_t)cap);
    while (*n < cap && (r = q_step(&q)) == 1)
        ids[(*n)++] = (uint32_t)sqlite3_column_int64(q.st, 0);
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_spk_delete(sc_client *c, uint32_t id)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_signed_prekeys WHERE id = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, id);
    return q_exec(&q);
}

/* ------------------------------------------------------------ groups */

int sc_group_members(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char ***members, size_t *n,
                     char **name, bool *active)
{
    query q;
    char **v = NULL;
    size_t cnt = 0;
    int rc, r;

    *members = NULL;
    *n = 0;
    if (name)
        *name = NULL;
    rc = q_open(c, &q, "SELECT name, active FROM client_groups WHERE id = ?");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, SC_GROUP_ID_BYTES);
    r = q_step(&q);
    if (r != 1) {
        q_close(&q);
        return r < 0 ? r : sc_fail(c, SC_E_NOT_FOUND, "no such group");
    }
    if (active)
        *active = sqlite3_column_int(q.st, 1) != 0;
    if (name && (*name = col_dup(&q, 0)) == NULL) {
        q_close(&q);
        return nomem(c);
    }
    q_close(&q);
    rc = q_open(c, &q,
                "SELECT member FROM client_group_members WHERE group_id = ? ORDER BY member"
                " LIMIT ?");
    if (rc == SC_OK) {
        q_blob(&q, id, SC_GROUP_ID_BYTES);
        q_i64(&q, SC_MAX_GROUP_MEMBERS + 1);
        v = calloc(SC_MAX_GROUP_MEMBERS + 2, sizeof *v);
        if (v == NULL)
            rc = nomem(c);
        while (rc == SC_OK && cnt < SC_MAX_GROUP_MEMBERS + 1 && (r = q_step(&q)) == 1)
            if ((v[cnt++] = col_dup(&q, 0)) == NULL)
                rc = nomem(c);
        if (rc == SC_OK && r < 0)
            rc = r;
        q_close(&q);
    }
    if (rc != SC_OK) {
        sc_strv_free(v, cnt);
        if (name) {
            free(*name);
            *name = NULL;
        }
        return rc;
    }
    *members = v;
    *n = cnt;
    return SC_OK;
}

int sc_group_exists(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], bool *exists)
{
    query q;
    int rc = q_open(c, &q, "SELECT 1 FROM client_groups WHERE id = ?");

    *exists = false;
    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, SC_GROUP_ID_BYTES);
    return exists_of(&q, exists);
}

int sc_group_by_name(sc_client *c, const char *name, uint8_t id[SC_GROUP_ID_BYTES], size_t *count)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT id, active FROM client_groups WHERE name = ?"
                    " ORDER BY active DESC, updated_ms DESC");
    size_t total = 0, active = 0;
    int r;

    *count = 0;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    while ((r = q_step(&q)) == 1) {
        if (sqlite3_column_bytes(q.st, 0) != SC_GROUP_ID_BYTES)
            continue;
        if (total++ == 0)
            memcpy(id, sqlite3_column_blob(q.st, 0), SC_GROUP_ID_BYTES);
        if (sqlite3_column_int64(q.st, 1) != 0)
            active++;
    }
    q_close(&q);
    /* a name is unique when one active group has it (groups left or
     * removed from do not count then) */
    *count = active > 0 ? active : total;
    return r < 0 ? r : SC_OK;
}

int sc_group_upsert(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const char *name,
                    bool active)
{
    query q;
    uint64_t now = sc_now_ms();
    int rc = q_open(c, &q,
                    "INSERT INTO client_groups(id, name, active, created_ms, updated_ms)"
                    " VALUES(?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                    " name = excluded.name, active = excluded.active,"
                    " updated_ms = excluded.updated_ms");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, SC_GROUP_ID_BYTES);
    q_text(&q, name ? name : "");
    q_i64(&q, active ? 1 : 0);
    q_u64(&q, now);
    q_u64(&q, now);
    return q_exec(&q);
}

/* In one transaction: `reset` (group id bound) once, then `each` (group id,
 * name bound) for every name. */
static int group_member_rows(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], const char *reset,
                             const char *each, char *const *names, size_t n)
{
    query q;
    int rc = sc_db_begin(c);

    if (rc != SC_OK)
        return rc;
    rc = q_open(c, &q, reset);
    if (rc == SC_OK) {
        q_blob(&q, id, SC_GROUP_ID_BYTES);
        rc = q_exec(&q);
    }
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        rc = q_open(c, &q, each);
        if (rc == SC_OK) {
            q_blob(&q, id, SC_GROUP_ID_BYTES);
            q_text(&q, names[i]);
            rc = q_exec(&q);
        }
    }
    return tx_end(c, rc);
}

int sc_group_set_members(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char *const *m,
                         size_t n)
{
    return group_member_rows(
        c, id, "DELETE FROM client_group_members WHERE group_id = ?",
        "INSERT OR IGNORE INTO client_group_members(group_id, member) VALUES(?, ?)", m, n);
}

int sc_group_ids(sc_client *c, uint8_t **ids, size_t *n)
{
    query q;
    uint8_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, r;

    *ids = NULL;
    *n = 0;
    rc = q_open(c, &q, "SELECT id FROM client_groups ORDER BY created_ms, id");
    if (rc != SC_OK)
        return rc;
    while ((r = q_step(&q)) == 1) {
        if (sqlite3_column_bytes(q.st, 0) != SC_GROUP_ID_BYTES)
            continue;
        if (!grow(&v, &cap, cnt, SC_GROUP_ID_BYTES)) {
            free(v);
            q_close(&q);
            return nomem(c);
        }
        memcpy(v + cnt * SC_GROUP_ID_BYTES, sqlite3_column_blob(q.st, 0), SC_GROUP_ID_BYTES);
        cnt++;
    }
    q_close(&q);
    if (r < 0) {
        free(v);
        return r;
    }
    *ids = v;
    *n = cnt;
    return SC_OK;
}

int sc_group_meta(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], uint64_t *revision, bool *open)
{
    query q;
    int r, rc = q_open(c, &q, "SELECT revision, open FROM client_groups WHERE id = ?");

    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, SC_GROUP_ID_BYTES);
    r = q_step(&q);
    if (r == 1) {
        if (revision)
            *revision = (uint64_t)sqlite3_column_int64(q.st, 0);
        if (open)
            *open = sqlite3_column_int(q.st, 1) != 0;
    }
    q_close(&q);
    if (r < 0)
        return r;
    return r == 1 ? SC_OK : sc_fail(c, SC_E_NOT_FOUND, "no such group");
}

int sc_group_set_meta(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], uint64_t revision,
                      bool open)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_groups SET revision = ?, open = ? WHERE id = ?");

    if (rc != SC_OK)
        return rc;
    q_u64(&q, revision);
    q_i64(&q, open ? 1 : 0);
    q_blob(&q, id, SC_GROUP_ID_BYTES);
    return q_exec(&q);
}

int sc_group_admins(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char ***admins, size_t *n)
{
    query q;
    char **v = NULL;
    size_t cnt = 0;
    int r = 0, rc = q_open(c, &q,
                           "SELECT member FROM client_group_members WHERE group_id = ? AND"
                           " admin = 1 ORDER BY member LIMIT ?");

    *admins = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, SC_GROUP_ID_BYTES);
    q_i64(&q, SC_MAX_GROUP_MEMBERS + 1);
    v = calloc(SC_MAX_GROUP_MEMBERS + 2, sizeof *v);
    if (v == NULL)
        rc = nomem(c);
    while (rc == SC_OK && cnt < SC_MAX_GROUP_MEMBERS + 1 && (r = q_step(&q)) == 1)
        if ((v[cnt++] = col_dup(&q, 0)) == NULL)
            rc = nomem(c);
    if (rc == SC_OK && r < 0)
        rc = r;
    q_close(&q);
    if (rc != SC_OK) {
        sc_strv_free(v, cnt);
        return rc;
    }
    *admins = v;
    *n = cnt;
    return SC_OK;
}

int sc_group_set_admins(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], char *const *a, size_t n)
{
    return group_member_rows(
        c, id, "UPDATE client_group_members SET admin = 0 WHERE group_id = ?",
        "UPDATE client_group_members SET admin = 1 WHERE group_id = ? AND member = ?", a, n);
}

int sc_group_ask_due(sc_client *c, const uint8_t id[SC_GROUP_ID_BYTES], uint64_t min_gap_ms,
                     bool *due)
{
    query q;
    uint64_t now = sc_now_ms();
    int r, rc = q_open(c, &q, "SELECT asked_ms FROM client_group_asks WHERE group_id = ?");

    *due = false;
    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, SC_GROUP_ID_BYTES);
    r = q_step(&q);
    if (r == 1) {
        uint64_t at = (uint64_t)sqlite3_column_int64(q.st, 0);
        /* a clock set back counts as due */
        *due = at > now || now - at >= min_gap_ms;
    } else if (r == 0) {
        *due = true;
    }
    q_close(&q);
    if (r < 0)
        return r;
    if (!*due)
        return SC_OK;
    rc = q_open(c, &q, "INSERT OR REPLACE INTO client_group_asks(group_id, asked_ms) VALUES(?, ?)");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, id, SC_GROUP_ID_BYTES);
    q_u64(&q, now);
    return q_exec(&q);
}

/* ------------------------------------------------------------ pending events */

/* This process's claim: its pid and a random token (a later process that
 * gets the same pid is a different claimer). */
typedef struct claimer {
    pid_t pid;
    int64_t token;
} claimer;

static claimer self_claimer(void)
{
    static claimer me;
    pid_t pid = getpid();

    if (me.pid != pid || me.token == 0) {
        uint64_t t = 0;
        while ((t & INT64_MAX) == 0)
            randombytes_buf(&t, sizeof t);
        me.pid = pid;
        me.token = (int64_t)(t & INT64_MAX);
    }
    return me;
}

static bool pid_alive(int64_t pid)
{
    if (pid <= 0 || pid > INT_MAX)
        return false;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int sc_pending_event_add(sc_client *c, int64_t rowid)
{
    claimer me = self_claimer();
    query q;
    int rc = q_open(c, &q,
                    "INSERT OR IGNORE INTO client_pending_events(msg_id, claim_pid, claim_token,"
                    " claim_ms) VALUES(?, ?, ?, ?)");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, rowid);
    q_i64(&q, me.pid);
    q_i64(&q, me.token);
    q_u64(&q, sc_now_ms());
    return q_exec(&q);
}

int sc_pending_event_add_unclaimed(sc_client *c, int64_t rowid)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT OR IGNORE INTO client_pending_events(msg_id, claim_pid, claim_token,"
                    " claim_ms) VALUES(?, 0, 0, 0)");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, rowid);
    return q_exec(&q);
}

typedef struct pending_claim {
    int64_t row, pid, token, ms;
} pending_claim;

/* Whether a row with this claim may be taken over by `me` at `now`. */
static bool claimable(const pending_claim *p, claimer me, uint64_t now)
{
    uint64_t ms = (uint64_t)p->ms;

    if (p->pid == 0 && p->token == 0)
        return true; /* unclaimed (a v1 row, or released) */
    if (p->pid == me.pid)
        return p->token != me.token; /* ours, or an earlier process with our pid */
    if (!pid_alive(p->pid))
        return true;
    /* alive: only when the claim is stale (hung claimer, or a reused pid);
     * a claim from the future (clock set back) counts from now */
    return ms < now ? now - ms > SC_PENDING_CLAIM_STALE_MS : ms - now > SC_PENDING_CLAIM_STALE_MS;
}

int sc_pending_event_claim_next(sc_client *c, int64_t after, int64_t *rowid)
{
    claimer me = self_claimer();

    *rowid = 0;
    for (;;) {
        pending_claim cand[32];
        size_t n = 0;
        uint64_t now = sc_now_ms();
        query q;
        int rc, r;

        rc = q_open(c, &q,
                    "SELECT msg_id, claim_pid, claim_token, claim_ms FROM client_pending_events"
                    " WHERE msg_id > ? ORDER BY msg_id LIMIT 32");
        if (rc != SC_OK)
            return rc;
        q_i64(&q, after);
        while (n < 32 && (r = q_step(&q)) == 1) {
            cand[n].row = sqlite3_column_int64(q.st, 0);
            cand[n].pid = sqlite3_column_int64(q.st, 1);
            cand[n].token = sqlite3_column_int64(q.st, 2);
            cand[n].ms = sqlite3_column_int64(q.st, 3);
            n++;
        }
        q_close(&q);
        if (n < 32 && r < 0)
            return r;
        if (n == 0)
            return SC_E_NOT_FOUND;
        for (size_t i = 0; i < n; i++) {
            if (!claimable(&cand[i], me, now))
                continue;
            /* atomically: only if nobody claimed it since we read it */
            rc = q_open(c, &q,
                        "UPDATE client_pending_events SET claim_pid = ?, claim_token = ?,"
                        " claim_ms = ? WHERE msg_id = ? AND claim_pid = ? AND claim_token = ?"
                        " AND claim_ms = ?");
            if (rc != SC_OK)
                return rc;
            q_i64(&q, me.pid);
            q_i64(&q, me.token);
            q_u64(&q, now);
            q_i64(&q, cand[i].row);
            q_i64(&q, cand[i].pid);
            q_i64(&q, cand[i].token);
            q_i64(&q, cand[i].ms);
            rc = q_exec(&q);
            if (rc != SC_OK)
                return rc;
            if (sqlite3_changes(c->db) == 1) {
                *rowid = cand[i].row;
                return SC_OK;
            }
        }
        after = cand[n - 1].row;
    }
}

/* Runs `sql` (msg_id, pid, token parameters) on this process's claim of
 * rowid: SC_OK when it changed exactly that row, else SC_E_NOT_FOUND. */
static int own_claim(sc_client *c, int64_t rowid, const char *sql, bool with_time)
{
    claimer me = self_claimer();
    query q;
    int rc = q_open(c, &q, sql);

    if (rc != SC_OK)
        return rc;
    if (with_time)
        q_u64(&q, sc_now_ms());
    q_i64(&q, rowid);
    q_i64(&q, me.pid);
    q_i64(&q, me.token);
    rc = q_exec(&q);
    if (rc != SC_OK)
        return rc;
    return sqlite3_changes(c->db) == 1 ? SC_OK : SC_E_NOT_FOUND;
}

int sc_pending_event_hold(sc_client *c, int64_t rowid)
{
    return own_claim(c, rowid,
                     "UPDATE client_pending_events SET claim_ms = ? WHERE msg_id = ? AND"
                     " claim_pid = ? AND claim_token = ?",
                     true);
}

int sc_pending_event_done(sc_client *c, int64_t rowid)
{
    return own_claim(c, rowid,
                     "DELETE FROM client_pending_events WHERE msg_id = ? AND claim_pid = ? AND"
                     " claim_token = ?",
                     false);
}

/* ------------------------------------------------------------ accounts (v3) */

void sc_account_row_clear(sc_account_row *r)
{
    free(r->list);
    memset(r, 0, sizeof *r);
}

int sc_account_get(sc_client *c, const char *name, sc_account_row *out)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT account_key, pending_key, list, list_version FROM client_accounts"
                    " WHERE name = ?");
    int r;

    memset(out, 0, sizeof *out);
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    r = q_step(&q);
    if (r <= 0) {
        q_close(&q);
        return r < 0 ? r : SC_E_NOT_FOUND;
    }
    if (sqlite3_column_bytes(q.st, 0) == SC_ACCOUNT_KEY_BYTES) {
        memcpy(out->account_key, sqlite3_column_blob(q.st, 0), SC_ACCOUNT_KEY_BYTES);
        out->has_key = true;
    }
    if (sqlite3_column_bytes(q.st, 1) == SC_ACCOUNT_KEY_BYTES) {
        memcpy(out->pending_key, sqlite3_column_blob(q.st, 1), SC_ACCOUNT_KEY_BYTES);
        out->has_pending = true;
    }
    if (sqlite3_column_type(q.st, 2) == SQLITE_BLOB && sqlite3_column_bytes(q.st, 2) > 0) {
        size_t n = (size_t)sqlite3_column_bytes(q.st, 2);
        out->list = malloc(n);
        if (out->list == NULL) {
            q_close(&q);
            return nomem(c);
        }
        memcpy(out->list, sqlite3_column_blob(q.st, 2), n);
        out->list_len = n;
    }
    out->list_version = col_u64(&q, 3);
    q_close(&q);
    return SC_OK;
}

int sc_account_pin(sc_client *c, const char *name, const uint8_t key[SC_ACCOUNT_KEY_BYTES])
{
    query q;
    int rc =
        q_open(c, &q, "INSERT INTO client_accounts(name, account_key, pinned_ms) VALUES(?, ?, ?)");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_blob(&q, key, SC_ACCOUNT_KEY_BYTES);
    q_u64(&q, sc_now_ms());
    return q_exec(&q);
}

int sc_account_set_list(sc_client *c, const char *name, const uint8_t *list, size_t len,
                        uint64_t version)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_accounts SET list = ?, list_version = ? WHERE name = ?");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, list, len);
    q_u64(&q, version);
    q_text(&q, name);
    rc = q_exec(&q);
    if (rc == SC_OK && sqlite3_changes(c->db) != 1)
        rc = sc_fail(c, SC_E_STORE, "local store: no pinned account key for %s", name);
    return rc;
}

int sc_account_set_pending(sc_client *c, const char *name, const uint8_t key[SC_ACCOUNT_KEY_BYTES])
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_accounts SET pending_key = ? WHERE name = ?");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, key, SC_ACCOUNT_KEY_BYTES);
    q_text(&q, name);
    return q_exec(&q);
}

int sc_account_accept_pending(sc_client *c, const char *name, bool *changed)
{
    query q;
    int rc = q_open(c, &q,
                    "UPDATE client_accounts SET account_key = pending_key, pending_key = NULL,"
                    " list = NULL, list_version = 0, pinned_ms = ?"
                    " WHERE name = ? AND pending_key IS NOT NULL");
    *changed = false;
    if (rc != SC_OK)
        return rc;
    q_u64(&q, sc_now_ms());
    q_text(&q, name);
    rc = q_exec(&q);
    if (rc == SC_OK)
        *changed = sqlite3_changes(c->db) > 0;
    return rc;
}

int sc_account_forget(sc_client *c, const char *name)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_accounts WHERE name = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    return q_exec(&q);
}

int sc_cfg_delete(sc_client *c, const char *key)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_config WHERE key = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, key);
    return q_exec(&q);
}

int sc_cfg_prune(sc_client *c, const char *prefix, uint64_t cutoff, bool by_key)
{
    query q;
    int rc = q_open(c, &q,
                    by_key ? "DELETE FROM client_config WHERE substr(key, 1, length(?1)) = ?1"
                             " AND CAST(substr(key, length(?1) + 1) AS INTEGER) < ?2"
                           : "DELETE FROM client_config WHERE substr(key, 1, length(?1)) = ?1"
                             " AND CAST(value AS INTEGER) < ?2");
    if (rc != SC_OK)
        return rc;
    q_text(&q, prefix);
    q_u64(&q, cutoff);
    return q_exec(&q);
}

/* ------------------------------------------------------------ backup (backup.c) */

int sc_account_names(sc_client *c, char ***names, size_t *n)
{
    return text_column(c, "SELECT name FROM client_accounts ORDER BY name", names, n);
}

int sc_contact_import(sc_client *c, const char *name, bool verified)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_contacts(name, created_ms, verified) VALUES(?, ?, ?)"
                    " ON CONFLICT(name) DO UPDATE SET verified = excluded.verified");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_u64(&q, sc_now_ms());
    q_i64(&q, verified ? 1 : 0);
    return q_exec(&q);
}

int sc_account_import(sc_client *c, const char *name, const uint8_t key[SC_ACCOUNT_KEY_BYTES],
                      const uint8_t *list, size_t len, uint64_t version)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_accounts(name, account_key, list, list_version,"
                    " pinned_ms) VALUES(?, ?, ?, ?, ?)");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_blob(&q, key, SC_ACCOUNT_KEY_BYTES);
    if (list != NULL && len > 0)
        q_blob(&q, list, len);
    else
        q_null(&q);
    q_u64(&q, list != NULL && len > 0 ? version : 0);
    q_u64(&q, sc_now_ms());
    return q_exec(&q);
}

int sc_msg_page(sc_client *c, int64_t after_id, size_t limit, sc_msg **out, size_t *n)
{
    query q;
    int rc;

    *out = NULL;
    *n = 0;
    if (limit == 0 || limit > 100000)
        return sc_fail(c, SC_E_INTERNAL, "sc_msg_page: limit 1..100000");
    rc = q_open(c, &q, MSG_COLS " WHERE id > ? ORDER BY id LIMIT ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, after_id);
    q_i64(&q, (int64_t)limit);
    return msg_rows(c, &q, limit, out, n);
}

int sc_store_is_empty(sc_client *c, bool *empty)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT (SELECT count(*) FROM client_contacts)"
                    " + (SELECT count(*) FROM client_accounts)"
                    " + (SELECT count(*) FROM client_groups)"
                    " + (SELECT count(*) FROM client_messages)"
                    " + (SELECT count(*) FROM client_config WHERE key IN"
                    " ('username', 'account_sk', 'account_pk'))");
    int r;

    *empty = false;
    if (rc != SC_OK)
        return rc;
    r = q_step(&q);
    if (r == 1)
        *empty = sqlite3_column_int64(q.st, 0) == 0;
    q_close(&q);
    return r < 0 ? r : r == 1 ? SC_OK : sc_fail(c, SC_E_STORE, "local store: no answer");
}

/* ------------------------------------------------------------ attachment downloads */

int sc_store_att_rows_to_fetch(sc_client *c, int64_t after, size_t max, int64_t *rows, size_t *n)
{
    query q;
    int rc, r;

    *n = 0;
    /* instr() is a cheap byte search that every row of a busy history
     * passes through; attach.c decides per attachment from the parsed JSON */
    rc = q_open(c, &q,
                "SELECT id FROM client_messages WHERE id > ? AND extra IS NOT NULL"
                " AND instr(extra, '\"key\":') > 0"
                " AND id NOT IN (SELECT msg_id FROM client_pending_events)"
                " ORDER BY id LIMIT ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, after);
    q_u64(&q, max);
    while (*n < max && (r = q_step(&q)) == 1)
        rows[(*n)++] = sqlite3_column_int64(q.st, 0);
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_account_clear_pending(sc_client *c, const char *name)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_accounts SET pending_key = NULL WHERE name = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    return q_exec(&q);
}

/* ------------------------------------------------------------ key transparency (v4) */

/* Copies blob column i into a malloc()ed buffer (NULL/0 for SQL NULL). */
static int col_blob_dup(query *q, int i, uint8_t **out, size_t *len)
{
    int n = sqlite3_column_bytes(q->st, i);

    *out = NULL;
    *len = 0;
    if (sqlite3_column_type(q->st, i) == SQLITE_NULL)
        return SC_OK;
    *out = malloc(n > 0 ? (size_t)n : 1);
    if (*out == NULL)
        return nomem(q->c);
    if (n > 0)
        memcpy(*out, sqlite3_column_blob(q->st, i), (size_t)n);
    *len = (size_t)n;
    return SC_OK;
}

int sc_kt_head_get(sc_client *c, uint8_t **head, size_t *len, uint64_t *accepted_ms)
{
    query q;
    int rc = q_open(c, &q, "SELECT head, accepted_ms FROM kt_head WHERE id = 1");
    int r;

    *head = NULL;
    *len = 0;
    if (accepted_ms)
        *accepted_ms = 0;
    if (rc != SC_OK)
        return rc;
    r = q_step(&q);
    if (r <= 0) {
        q_close(&q);
        return r < 0 ? r : SC_E_NOT_FOUND;
    }
    rc = col_blob_dup(&q, 0, head, len);
    if (rc == SC_OK && accepted_ms)
        *accepted_ms = col_u64(&q, 1);
    q_close(&q);
    return rc;
}

int sc_kt_head_set(sc_client *c, const uint8_t *head, size_t len, uint64_t accepted_ms)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO kt_head(id, head, accepted_ms) VALUES(1, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET head = excluded.head,"
                    " accepted_ms = excluded.accepted_ms");
    if (rc != SC_OK)
        return rc;
    q_blob(&q, head, len);
    q_u64(&q, accepted_ms);
    return q_exec(&q);
}

int sc_kt_own_get(sc_client *c, uint64_t *counter, uint64_t *version, uint64_t *checked_ms)
{
    query q;
    int rc = q_open(c, &q, "SELECT counter, version, checked_ms FROM kt_own WHERE id = 1");
    int r;

    *counter = *version = *checked_ms = 0;
    if (rc != SC_OK)
        return rc;
    r = q_step(&q);
    if (r == 1) {
        *counter = col_u64(&q, 0);
        *version = col_u64(&q, 1);
        *checked_ms = col_u64(&q, 2);
    }
    q_close(&q);
    return r < 0 ? r : r == 1 ? SC_OK : SC_E_NOT_FOUND;
}

int sc_kt_own_set(sc_client *c, uint64_t counter, uint64_t version, uint64_t checked_ms)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO kt_own(id, counter, version, checked_ms) VALUES(1, ?, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET counter = excluded.counter,"
                    " version = excluded.version, checked_ms = excluded.checked_ms");
    if (rc != SC_OK)
        return rc;
    q_u64(&q, counter);
    q_u64(&q, version);
    q_u64(&q, checked_ms);
    return q_exec(&q);
}

int sc_kt_own_list_set(sc_client *c, uint64_t version, const uint8_t hash[32])
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO kt_own_lists(version, list_hash) VALUES(?, ?)"
                    " ON CONFLICT(version) DO UPDATE SET list_hash = excluded.list_hash");
    if (rc != SC_OK)
        return rc;
    q_u64(&q, version);
    q_blob(&q, hash, 32);
    return q_exec(&q);
}

int sc_kt_own_list_get(sc_client *c, uint64_t version, uint8_t hash[32])
{
    query q;
    int rc = q_open(c, &q, "SELECT list_hash FROM kt_own_lists WHERE version = ?");
    int r;

    if (rc != SC_OK)
        return rc;
    q_u64(&q, version);
    r = q_step(&q);
    if (r == 1 && sqlite3_column_bytes(q.st, 0) == 32)
        memcpy(hash, sqlite3_column_blob(q.st, 0), 32);
    else if (r == 1)
        r = sc_fail(c, SC_E_STORE, "local store: kt_own_lists row %llu is damaged",
                    (unsigned long long)version);
    q_close(&q);
    return r < 0 ? r : r == 1 ? SC_OK : SC_E_NOT_FOUND;
}

int sc_kt_gossip_last_sent(sc_client *c, const char *contact, uint64_t *last_sent_ms)
{
    query q;
    int rc = q_open(c, &q, "SELECT last_sent_ms FROM kt_gossip WHERE contact = ?");
    int r;

    *last_sent_ms = 0;
    if (rc != SC_OK)
        return rc;
    q_text(&q, contact);
    r = q_step(&q);
    if (r == 1)
        *last_sent_ms = col_u64(&q, 0);
    q_close(&q);
    return r < 0 ? r : r == 1 ? SC_OK : SC_E_NOT_FOUND;
}

int sc_kt_gossip_set_last_sent(sc_client *c, const char *contact, uint64_t sent_ms)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO kt_gossip(contact, last_sent_ms) VALUES(?, ?)"
                    " ON CONFLICT(contact) DO UPDATE SET last_sent_ms = excluded.last_sent_ms");
    if (rc != SC_OK)
        return rc;
    q_text(&q, contact);
    q_u64(&q, sent_ms);
    return q_exec(&q);
}

int sc_kt_gossip_pending_add(sc_client *c, const char *contact, const uint8_t *head, size_t len,
                             uint64_t received_ms, int64_t *id)
{
    query q;
    int rc =
        q_open(c, &q, "INSERT INTO kt_gossip_pending(contact, head, received_ms) VALUES(?, ?, ?)");
    if (id)
        *id = 0;
    if (rc != SC_OK)
        return rc;
    q_text(&q, contact);
    q_blob(&q, head, len);
    q_u64(&q, received_ms);
    rc = q_exec(&q);
    if (rc == SC_OK && id)
        *id = (int64_t)sqlite3_last_insert_rowid(c->db);
    return rc;
}

void sc_kt_gossip_pending_free(sc_kt_gossip_pending *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].contact);
        free(v[i].head);
    }
    free(v);
}

int sc_kt_gossip_pending_list(sc_client *c, sc_kt_gossip_pending **out, size_t *n)
{
    query q;
    sc_kt_gossip_pending *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc =
        q_open(c, &q, "SELECT id, contact, head, received_ms FROM kt_gossip_pending ORDER BY id");
    int r;

    *out = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            r = nomem(c);
            break;
        }
        memset(&v[cnt], 0, sizeof v[cnt]);
        v[cnt].id = sqlite3_column_int64(q.st, 0);
        v[cnt].received_ms = col_u64(&q, 3);
        v[cnt].contact = col_dup(&q, 1);
        cnt++;
        if (v[cnt - 1].contact == NULL) {
            r = nomem(c);
            break;
        }
        r = col_blob_dup(&q, 2, &v[cnt - 1].head, &v[cnt - 1].head_len);
        if (r != SC_OK)
            break;
    }
    q_close(&q);
    if (r < 0) {
        sc_kt_gossip_pending_free(v, cnt);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
}

int sc_kt_gossip_pending_delete(sc_client *c, int64_t id)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM kt_gossip_pending WHERE id = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, id);
    return q_exec(&q);
}

int sc_kt_evidence_add(sc_client *c, const char *kind, const char *text, const uint8_t *a,
                       size_t alen, const uint8_t *b, size_t blen)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO kt_evidence(created_ms, kind, text, head_a, head_b)"
                    " VALUES(?, ?, ?, ?, ?)");
    if (rc != SC_OK)
        return rc;
    q_u64(&q, sc_now_ms());
    q_text(&q, kind ? kind : "");
    q_text(&q, text ? text : "");
    if (a && alen)
        q_blob(&q, a, alen);
    else
        q_null(&q);
    if (b && blen)
        q_blob(&q, b, blen);
    else
        q_null(&q);
    return q_exec(&q);
}

void sc_kt_evidence_list_free(sc_kt_evidence *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].kind);
        free(v[i].text);
        free(v[i].head_a);
        free(v[i].head_b);
    }
    free(v);
}

int sc_kt_evidence_list(sc_client *c, sc_kt_evidence **out, size_t *n)
{
    query q;
    sc_kt_evidence *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = q_open(c, &q,
                    "SELECT id, created_ms, kind, text, head_a, head_b FROM kt_evidence"
                    " ORDER BY id");
    int r;

    *out = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    while ((r = q_step(&q)) == 1) {
        sc_kt_evidence *e;
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            r = nomem(c);
            break;
        }
        e = &v[cnt++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(q.st, 0);
        e->created_ms = col_u64(&q, 1);
        e->kind = col_dup(&q, 2);
        e->text = col_dup(&q, 3);
        if (e->kind == NULL || e->text == NULL) {
            r = nomem(c);
            break;
        }
        r = col_blob_dup(&q, 4, &e->head_a, &e->head_a_len);
        if (r == SC_OK)
            r = col_blob_dup(&q, 5, &e->head_b, &e->head_b_len);
        if (r != SC_OK)
            break;
    }
    q_close(&q);
    if (r < 0) {
        sc_kt_evidence_list_free(v, cnt);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
}

int sc_kt_evidence_count(sc_client *c, size_t *n)
{
    query q;
    int rc = q_open(c, &q, "SELECT count(*) FROM kt_evidence");

    *n = 0;
    if (rc != SC_OK)
        return rc;
    return count_of(&q, n);
}

/* ------------------------------------------------------------ daemon subscribers (v5) */

/* The rows sc_receive hands out as events: everything received, and our
 * own outgoing rows only when another device of ours sent them (sync
 * copies); what this device sent itself is not an event. */
#define EVENT_ROWS "(direction = 0 OR sender_device != ?)"

int sc_sub_open(sc_client *c, const char *name, int64_t start, int64_t *acked_upto)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT OR IGNORE INTO client_subscribers(name, acked_upto, created_ms)"
                    " VALUES(?, ?, ?)");
    int r;

    *acked_upto = 0;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_i64(&q, start);
    q_u64(&q, sc_now_ms());
    if ((rc = q_exec(&q)) != SC_OK)
        return rc;
    if ((rc = q_open(c, &q, "SELECT acked_upto FROM client_subscribers WHERE name = ?")) != SC_OK)
        return rc;
    q_text(&q, name);
    r = q_step(&q);
    if (r == 1)
        *acked_upto = sqlite3_column_int64(q.st, 0);
    q_close(&q);
    return r < 0 ? r : r == 0 ? sc_fail(c, SC_E_STORE, "local store: subscriber lost") : SC_OK;
}

int sc_sub_unacked(sc_client *c, const char *name, uint32_t own_device, sc_msg **out, size_t *n)
{
    query q;
    int rc;

    *out = NULL;
    *n = 0;
    rc = q_open(c, &q,
                MSG_COLS " WHERE id > (SELECT acked_upto FROM client_subscribers WHERE name = ?)"
                         " AND " EVENT_ROWS " AND id NOT IN (SELECT event_id FROM"
                         " client_subscriber_acks WHERE name = ?) ORDER BY id");
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_i64(&q, own_device);
    q_text(&q, name);
    return msg_rows(c, &q, SIZE_MAX, out, n);
}

/* One transaction: the acks, then acked_upto moves up to just below the
 * oldest event still unacknowledged (or the newest row), and the ids at or
 * below it are dropped from the out-of-order list. */
int sc_sub_ack(sc_client *c, const char *name, uint32_t own_device, const int64_t *ids, size_t n,
               int64_t up_to, int64_t *acked_upto)
{
    query q;
    int64_t cur = 0, next = 0;
    bool exists = false;
    int rc, r;

    *acked_upto = 0;
    if ((rc = sc_db_begin(c)) != SC_OK)
        return rc;
    rc = q_open(c, &q, "SELECT acked_upto FROM client_subscribers WHERE name = ?");
    if (rc != SC_OK)
        goto out;
    q_text(&q, name);
    r = q_step(&q);
    if (r == 1) {
        exists = true;
        cur = sqlite3_column_int64(q.st, 0);
    }
    q_close(&q);
    if (r < 0) {
        rc = r;
        goto out;
    }
    if (!exists) {
        rc = sc_fail(c, SC_E_NOT_FOUND, "no subscriber %s (subscribeReceive first)", name);
        goto out;
    }
    if (up_to > cur)
        cur = up_to;
    for (size_t i = 0; i < n && rc == SC_OK; i++) {
        if (ids[i] <= cur)
            continue;
        if ((rc = q_open(c, &q,
                         "INSERT OR IGNORE INTO client_subscriber_acks(name, event_id)"
                         " VALUES(?, ?)")) != SC_OK)
            goto out;
        q_text(&q, name);
        q_i64(&q, ids[i]);
        rc = q_exec(&q);
    }
    if (rc != SC_OK)
        goto out;
    rc = q_open(c, &q,
                "SELECT coalesce((SELECT min(id) - 1 FROM client_messages WHERE id > ?1 AND"
                " (direction = 0 OR sender_device != ?2) AND id NOT IN (SELECT event_id FROM"
                " client_subscriber_acks WHERE name = ?3)), (SELECT max(id) FROM"
                " client_messages), 0)");
    if (rc != SC_OK)
        goto out;
    q_i64(&q, cur);
    q_i64(&q, own_device);
    q_text(&q, name);
    r = q_step(&q);
    if (r == 1)
        next = sqlite3_column_int64(q.st, 0);
    q_close(&q);
    if (r < 0) {
        rc = r;
        goto out;
    }
    if (next < cur)
        next = cur;
    if ((rc = q_open(c, &q, "UPDATE client_subscribers SET acked_upto = ? WHERE name = ?")) !=
        SC_OK)
        goto out;
    q_i64(&q, next);
    q_text(&q, name);
    if ((rc = q_exec(&q)) != SC_OK)
        goto out;
    if ((rc = q_open(c, &q,
                     "DELETE FROM client_subscriber_acks WHERE name = ? AND event_id <= ?")) !=
        SC_OK)
        goto out;
    q_text(&q, name);
    q_i64(&q, next);
    rc = q_exec(&q);
    *acked_upto = next;
out:
    if (rc == SC_OK)
        return sc_db_commit(c);
    sc_db_rollback(c);
    return rc;
}

/* ---- issue 11: requests ---- */

int sc_conv_accepted(sc_client *c, const char *conv_kind, const char *conv, bool *accepted)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT 1 FROM client_conversations WHERE conv_kind = ? AND conv = ? AND"
                    " accepted = 1");

    *accepted = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    return exists_of(&q, accepted);
}

int sc_conv_set_accepted(sc_client *c, const char *conv_kind, const char *conv, bool accepted)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_conversations(conv_kind, conv, accepted) VALUES(?, ?, ?)"
                    " ON CONFLICT(conv_kind, conv) DO UPDATE SET accepted = excluded.accepted");

    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    q_i64(&q, accepted ? 1 : 0);
    return q_exec(&q);
}

int sc_msg_clear_requests(sc_client *c, const char *conv_kind, const char *conv)
{
    query q;
    int rc = q_open(c, &q,
                    "UPDATE client_messages SET request = 0 WHERE conv_kind = ? AND conv = ? AND"
                    " request != 0");

    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    return q_exec(&q);
}

int sc_msg_conv_ids(sc_client *c, const char *conv_kind, const char *conv, int64_t **ids, size_t *n)
{
    query q;
    int64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, r;

    *ids = NULL;
    *n = 0;
    rc = q_open(c, &q,
                "SELECT id FROM client_messages WHERE conv_kind = ? AND conv = ? ORDER BY id");
    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            q_close(&q);
            free(v);
            return nomem(c);
        }
        v[cnt++] = sqlite3_column_int64(q.st, 0);
    }
    q_close(&q);
    if (r < 0) {
        free(v);
        return r;
    }
    *ids = v;
    *n = cnt;
    return SC_OK;
}

int sc_blocked_is(sc_client *c, const char *name, bool *blocked)
{
    query q;
    int rc = q_open(c, &q, "SELECT 1 FROM client_blocked WHERE name = ?");

    *blocked = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    return exists_of(&q, blocked);
}

int sc_blocked_add(sc_client *c, const char *name, uint64_t at_ms, bool *added)
{
    query q;
    int rc = q_open(c, &q, "INSERT OR IGNORE INTO client_blocked(name, blocked_ms) VALUES(?, ?)");

    if (added)
        *added = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_u64(&q, at_ms);
    rc = q_exec(&q);
    if (rc == SC_OK && added)
        *added = sqlite3_changes(c->db) > 0;
    return rc;
}

int sc_blocked_remove(sc_client *c, const char *name, bool *removed)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_blocked WHERE name = ?");

    if (removed)
        *removed = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    rc = q_exec(&q);
    if (rc == SC_OK && removed)
        *removed = sqlite3_changes(c->db) > 0;
    return rc;
}

int sc_blocked_list(sc_client *c, char ***names, uint64_t **at_ms, size_t *n)
{
    query q;
    char **v = NULL;
    uint64_t *t = NULL;
    size_t cnt = 0, cap = 0, tcap = 0;
    int rc, r;

    *names = NULL;
    if (at_ms)
        *at_ms = NULL;
    *n = 0;
    rc = q_open(c, &q, "SELECT name, blocked_ms FROM client_blocked ORDER BY name");
    if (rc != SC_OK)
        return rc;
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v) || !grow(&t, &tcap, cnt, sizeof *t))
            goto oom;
        v[cnt] = col_dup(&q, 0);
        if (v[cnt] == NULL)
            goto oom;
        t[cnt] = col_u64(&q, 1);
        cnt++;
    }
    q_close(&q);
    if (r < 0) {
        sc_strv_free(v, cnt);
        free(t);
        return r;
    }
    *names = v;
    *n = cnt;
    if (at_ms)
        *at_ms = t;
    else
        free(t);
    return SC_OK;
oom:
    q_close(&q);
    sc_strv_free(v, cnt);
    free(t);
    return nomem(c);
}

int sc_blocked_clear(sc_client *c)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_blocked");

    if (rc != SC_OK)
        return rc;
    return q_exec(&q);
}

void sc_request_rows_free(sc_request_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].conv_kind);
        free(v[i].conv);
        sc_free_secret_str(v[i].first_body);
    }
    free(v);
}

int sc_request_rows(sc_client *c, sc_request_row **out, size_t *n)
{
    query q;
    sc_request_row *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, r;

    *out = NULL;
    *n = 0;
    rc = q_open(c, &q,
                "SELECT m.conv_kind, m.conv, count(*), min(m.timestamp), max(m.timestamp),"
                " (SELECT f.body FROM client_messages f WHERE f.conv_kind = m.conv_kind AND"
                " f.conv = m.conv AND f.request != 0 ORDER BY f.id LIMIT 1)"
                " FROM client_messages m WHERE m.request != 0"
                " GROUP BY m.conv_kind, m.conv ORDER BY min(m.id)");
    if (rc != SC_OK)
        return rc;
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v))
            goto oom;
        memset(&v[cnt], 0, sizeof v[cnt]);
        v[cnt].conv_kind = col_dup(&q, 0);
        v[cnt].conv = col_dup(&q, 1);
        v[cnt].first_body = col_dup(&q, 5);
        v[cnt].count = (size_t)sqlite3_column_int64(q.st, 2);
        v[cnt].first_ts = col_u64(&q, 3);
        v[cnt].last_ts = col_u64(&q, 4);
        cnt++;
        if (!v[cnt - 1].conv_kind || !v[cnt - 1].conv || !v[cnt - 1].first_body)
            goto oom;
    }
    q_close(&q);
    if (r < 0) {
        sc_request_rows_free(v, cnt);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
oom:
    q_close(&q);
    sc_request_rows_free(v, cnt);
    return nomem(c);
}

/* ---- issue 11: expire ---- */

int sc_msg_wipe(sc_client *c, int64_t rowid, bool tombstone)
{
    static const char *const common[] = {
        /* edits, reactions, receipts of our own message (author, timestamp) */
        "DELETE FROM client_edits WHERE target_sender = ?1 AND target_ts = ?2",
        "DELETE FROM client_reactions WHERE target_sender = ?1 AND target_ts = ?2",
        "DELETE FROM client_receipts WHERE timestamp = ?2 AND ?1 = ?4",
        /* control rows acting on it ("delete" kept for a tombstone: the
         * event that says so) */
        "DELETE FROM client_messages WHERE target_sender = ?1 AND target_ts = ?2 AND id != ?3"
        " AND NOT (?5 AND kind = 'delete')",
        /* "attachment_ready" notices naming its saved files */
        "DELETE FROM client_messages WHERE kind = 'notice' AND extra IS NOT NULL AND"
        " instr(extra, '\"attachment_ready\"') > 0 AND"
        " json_valid(extra) AND json_extract(extra, '$.message_id') = ?3",
        /* our own message not sent yet: its queued copies (the plaintext
         * content), the sync copy for our other devices included */
        "DELETE FROM client_outgoing WHERE ?1 = ?4 AND (msg_id = ?3 OR (destination = ?4 AND"
        " timestamp = ?2))",
    };
    sc_msg m;
    query q;
    int rc = sc_msg_get(c, rowid, &m);

    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; rc == SC_OK && i < sizeof common / sizeof common[0]; i++) {
        rc = q_open(c, &q, common[i]);
        if (rc != SC_OK)
            break;
        int np = sqlite3_bind_parameter_count(q.st);
        q_text(&q, m.sender);
        q_u64(&q, m.timestamp);
        if (np >= 3)
            q_i64(&q, rowid);
        if (np >= 4)
            q_text(&q, c->username ? c->username : "");
        if (np >= 5)
            q_i64(&q, tombstone ? 1 : 0);
        rc = q_exec(&q);
    }
    if (rc == SC_OK && m.direction == 1 && c->username && strcmp(m.sender, c->username) == 0) {
        /* the copies kept to answer retry requests (retry.c): a packed
         * Content starts with its timestamp (field 1, a varint) */
        uint8_t pre[11];
        size_t pn = 0;
        uint64_t v = m.timestamp;
        pre[pn++] = 0x08;
        do {
            pre[pn++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v != 0);
        rc = q_open(c, &q,
                    "DELETE FROM client_config WHERE key >= 'retry_sent:' AND key < 'retry_sent;'"
                    " AND substr(value, 1, ?) = ?");
        if (rc == SC_OK) {
            q_i64(&q, (int64_t)pn);
            q_blob(&q, pre, pn);
            rc = q_exec(&q);
        }
    }
    if (rc == SC_OK) {
        rc = q_open(c, &q,
                    tombstone ? "UPDATE client_messages SET body = '', extra = NULL, deleted = 1,"
                                " expires_ms = 0 WHERE id = ?"
                              : "DELETE FROM client_messages WHERE id = ?");
        if (rc == SC_OK) {
            q_i64(&q, rowid);
            rc = q_exec(&q);
        }
    }
    if (rc == SC_OK) {
        /* events of rows that are gone */
        rc = q_open(c, &q,
                    "DELETE FROM client_pending_events WHERE msg_id NOT IN (SELECT id FROM"
                    " client_messages)");
        if (rc == SC_OK)
            rc = q_exec(&q);
    }
    sc_msg_free(&m);
    return rc;
}

int sc_store_checkpoint(sc_client *c, bool *done)
{
    query q;
    int rc, r;

    *done = false;
    rc = q_open(c, &q, "PRAGMA wal_checkpoint(TRUNCATE)");
    if (rc != SC_OK)
        return rc;
    r = q_step(&q);
    /* (busy, log frames, checkpointed frames): busy = 0 when the WAL was
     * copied back and truncated */
    if (r == 1)
        *done = sqlite3_column_int(q.st, 0) == 0;
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_msg_expired(sc_client *c, uint64_t now, size_t max, int64_t *rows, size_t *n)
{
    query q;
    int rc, r;

    *n = 0;
    rc = q_open(c, &q,
                "SELECT id FROM client_messages WHERE expires_ms > 0 AND expires_ms <= ?"
                " ORDER BY expires_ms LIMIT ?");
    if (rc != SC_OK)
        return rc;
    q_u64(&q, now);
    q_u64(&q, max);
    while (*n < max && (r = q_step(&q)) == 1)
        rows[(*n)++] = sqlite3_column_int64(q.st, 0);
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_msg_expire_start(sc_client *c, int64_t rowid, uint64_t from_ms)
{
    query q;
    int rc = q_open(c, &q,
                    "UPDATE client_messages SET expires_ms = ?1 + expire_s * 1000 WHERE id = ?2"
                    " AND expire_s > 0 AND (expires_ms = 0 OR expires_ms > ?1 + expire_s * 1000)");

    if (rc != SC_OK)
        return rc;
    q_u64(&q, from_ms);
    q_i64(&q, rowid);
    return q_exec(&q);
}

int sc_conv_timer_get(sc_client *c, const char *conv_kind, const char *conv, uint32_t *expire_s,
                      uint64_t *expire_ts)
{
    query q;
    int rc, r;

    *expire_s = 0;
    if (expire_ts)
        *expire_ts = 0;
    rc = q_open(c, &q,
                "SELECT expire_s, expire_ts FROM client_conversations WHERE conv_kind = ? AND"
                " conv = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    r = q_step(&q);
    if (r == 1) {
        int64_t s = sqlite3_column_int64(q.st, 0);
        *expire_s = s > 0 && s <= UINT32_MAX ? (uint32_t)s : 0;
        if (expire_ts)
            *expire_ts = col_u64(&q, 1);
    }
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_conv_timer_set(sc_client *c, const char *conv_kind, const char *conv, uint32_t expire_s,
                      uint64_t ts, bool *changed)
{
    query q;
    int rc;

    if (changed)
        *changed = false;
    /* the newest change (by its Content.timestamp) wins, so a replay or a
     * late older one changes nothing; two different changes with the same
     * timestamp: the shorter timer wins (off counts as the longest), so
     * every device ends with the same one whatever the order of arrival */
    rc = q_open(c, &q,
                "INSERT INTO client_conversations(conv_kind, conv, expire_s, expire_ts)"
                " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(conv_kind, conv) DO UPDATE SET"
                " expire_s = excluded.expire_s, expire_ts = excluded.expire_ts"
                " WHERE excluded.expire_ts > client_conversations.expire_ts OR"
                " (excluded.expire_ts = client_conversations.expire_ts AND"
                " (CASE excluded.expire_s WHEN 0 THEN 4294967296 ELSE excluded.expire_s END) <"
                " (CASE client_conversations.expire_s WHEN 0 THEN 4294967296"
                " ELSE client_conversations.expire_s END))");
    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    q_i64(&q, expire_s);
    q_u64(&q, ts);
    rc = q_exec(&q);
    if (rc == SC_OK && changed)
        *changed = sqlite3_changes(c->db) > 0;
    return rc;
}

int sc_msg_set_body_extra(sc_client *c, int64_t rowid, const char *body, size_t body_len,
                          const char *extra)
{
    query q;
    int rc = q_open(c, &q, "UPDATE client_messages SET body = ?, extra = ? WHERE id = ?");

    if (rc != SC_OK)
        return rc;
    q_textn(&q, body, body_len);
    q_text(&q, extra);
    q_i64(&q, rowid);
    return q_exec(&q);
}

/* ---- issue 11: receipts ---- */

int sc_rcpt_out_add(sc_client *c, const char *recipient, uint64_t timestamp, int type,
                    uint64_t due_ms)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT OR IGNORE INTO client_receipts_out(recipient, timestamp, type, due_ms)"
                    " VALUES(?,?,?,?)");
    if (rc != SC_OK)
        return rc;
    q_text(&q, recipient);
    q_u64(&q, timestamp);
    q_i64(&q, type);
    q_u64(&q, due_ms);
    return q_exec(&q);
}

int sc_rcpt_out_pending(sc_client *c, size_t *n, uint64_t *max_due)
{
    query q;
    int r, rc = q_open(c, &q, "SELECT count(*), coalesce(max(due_ms), 0) FROM client_receipts_out");

    *n = 0;
    *max_due = 0;
    if (rc != SC_OK)
        return rc;
    r = q_step(&q);
    if (r == 1) {
        *n = (size_t)sqlite3_column_int64(q.st, 0);
        *max_due = col_u64(&q, 1);
    }
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_rcpt_out_batch(sc_client *c, uint64_t now_ms, char **recipient, int *type, uint64_t *ts,
                      size_t cap, size_t *n)
{
    query q;
    int r, rc;

    *recipient = NULL;
    *type = 0;
    *n = 0;
    rc = q_open(c, &q,
                "SELECT recipient, type FROM client_receipts_out WHERE due_ms <= ?"
                " ORDER BY due_ms, recipient LIMIT 1");
    if (rc != SC_OK)
        return rc;
    q_u64(&q, now_ms);
    r = q_step(&q);
    if (r == 1) {
        *recipient = col_dup(&q, 0);
        *type = sqlite3_column_int(q.st, 1);
    }
    q_close(&q);
    if (r < 0)
        return r;
    if (r == 0)
        return SC_E_NOT_FOUND;
    if (*recipient == NULL)
        return nomem(c);
    rc = q_open(c, &q,
                "SELECT timestamp FROM client_receipts_out WHERE recipient = ? AND type = ?"
                " AND due_ms <= ? ORDER BY timestamp LIMIT ?");
    if (rc != SC_OK)
        goto fail;
    q_text(&q, *recipient);
    q_i64(&q, *type);
    q_u64(&q, now_ms);
    q_i64(&q, (int64_t)cap);
    while (*n < cap && (r = q_step(&q)) == 1)
        ts[(*n)++] = col_u64(&q, 0);
    q_close(&q);
    if (r >= 0)
        return SC_OK;
    rc = r;
fail:
    free(*recipient);
    *recipient = NULL;
    return rc;
}

int sc_rcpt_out_delete(sc_client *c, const char *recipient, int type, const uint64_t *ts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        query q;
        int rc = q_open(c, &q,
                        "DELETE FROM client_receipts_out WHERE recipient = ? AND type = ? AND"
                        " timestamp = ?");
        if (rc != SC_OK)
            return rc;
        q_text(&q, recipient);
        q_i64(&q, type);
        q_u64(&q, ts[i]);
        if ((rc = q_exec(&q)) != SC_OK)
            return rc;
    }
    return SC_OK;
}

int sc_rcpt_out_drop_type(sc_client *c, int type)
{
    query q;
    int rc = q_open(c, &q, "DELETE FROM client_receipts_out WHERE type = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, type);
    return q_exec(&q);
}

int sc_rcpt_set(sc_client *c, uint64_t timestamp, const char *recipient, int state, uint64_t at_ms,
                bool *changed)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_receipts(timestamp, recipient, state, at_ms)"
                    " VALUES(?,?,?,?) ON CONFLICT(timestamp, recipient) DO UPDATE SET"
                    " state = excluded.state, at_ms = excluded.at_ms"
                    " WHERE excluded.state > client_receipts.state");
    if (changed)
        *changed = false;
    if (rc != SC_OK)
        return rc;
    q_u64(&q, timestamp);
    q_text(&q, recipient);
    q_i64(&q, state);
    q_u64(&q, at_ms);
    rc = q_exec(&q);
    if (rc == SC_OK && changed)
        *changed = sqlite3_changes(c->db) > 0;
    return rc;
}

int sc_rcpt_list(sc_client *c, uint64_t timestamp, sc_rcpt_row **out, size_t *n)
{
    query q;
    sc_rcpt_row *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = 0, rc;

    *out = NULL;
    *n = 0;
    rc = q_open(c, &q,
                "SELECT recipient, state, at_ms FROM client_receipts WHERE timestamp = ?"
                " ORDER BY recipient");
    if (rc != SC_OK)
        return rc;
    q_u64(&q, timestamp);
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            r = nomem(c);
            break;
        }
        v[cnt].recipient = col_dup(&q, 0);
        if (v[cnt].recipient == NULL) {
            r = nomem(c);
            break;
        }
        v[cnt].state = sqlite3_column_int(q.st, 1);
        v[cnt].at_ms = col_u64(&q, 2);
        cnt++;
    }
    q_close(&q);
    if (r < 0) {
        sc_rcpt_list_free(v, cnt);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
}

void sc_rcpt_list_free(sc_rcpt_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].recipient);
    free(v);
}

int sc_msg_find(sc_client *c, const char *conv_kind, const char *conv, const char *sender,
                uint64_t timestamp, int direction, int64_t *rowid)
{
    query q;
    int r, rc = q_open(c, &q,
                       "SELECT id FROM client_messages WHERE (?1 IS NULL OR sender = ?1) AND"
                       " timestamp = ?2 AND direction = ?3 AND kind = 'text' AND"
                       " target_sender IS NULL AND (?4 IS NULL OR (conv_kind = ?4 AND"
                       " conv = ?5)) ORDER BY id LIMIT 1");

    *rowid = 0;
    if (rc != SC_OK)
        return rc;
    q_text(&q, sender);
    q_u64(&q, timestamp);
    q_i64(&q, direction);
    q_text(&q, conv_kind);
    q_text(&q, conv);
    r = q_step(&q);
    if (r == 1)
        *rowid = sqlite3_column_int64(q.st, 0);
    q_close(&q);
    return r < 0 ? r : r == 0 ? SC_E_NOT_FOUND : SC_OK;
}

int sc_msg_unread(sc_client *c, const char *conv_kind, const char *conv, int64_t **ids, size_t *n)
{
    query q;
    int64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = 0, rc;

    *ids = NULL;
    *n = 0;
    rc = q_open(c, &q,
                "SELECT id FROM client_messages WHERE conv_kind = ? AND conv = ? AND"
                " direction = 0 AND kind = 'text' AND target_sender IS NULL AND read_ms = 0"
                " ORDER BY id");
    if (rc != SC_OK)
        return rc;
    q_text(&q, conv_kind);
    q_text(&q, conv);
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            r = nomem(c);
            break;
        }
        v[cnt++] = sqlite3_column_int64(q.st, 0);
    }
    q_close(&q);
    if (r < 0) {
        free(v);
        return r;
    }
    *ids = v;
    *n = cnt;
    return SC_OK;
}

int sc_msg_set_read(sc_client *c, int64_t rowid, uint64_t read_ms, uint64_t expires_ms,
                    bool *changed)
{
    query q;
    int rc = q_open(c, &q,
                    "UPDATE client_messages SET read_ms = ?, expires_ms = CASE WHEN"
                    " expires_ms = 0 THEN ? ELSE expires_ms END WHERE id = ? AND read_ms = 0");
    *changed = false;
    if (rc != SC_OK)
        return rc;
    q_u64(&q, read_ms);
    q_u64(&q, expires_ms);
    q_i64(&q, rowid);
    rc = q_exec(&q);
    if (rc == SC_OK)
        *changed = sqlite3_changes(c->db) > 0;
    return rc;
}

bool sc_db_in_transaction(sc_client *c)
{
    return c->db != NULL && !sqlite3_get_autocommit(c->db);
}

/* ---- issue 11: msgops ---- */

int sc_msgops_find(sc_client *c, const char *conv_kind, const char *conv, const char *sender,
                   uint64_t ts, int64_t *rowid)
{
    query q;
    int rc, r;

    *rowid = 0;
    if (conv_kind)
        rc = q_open(c, &q,
                    "SELECT id FROM client_messages WHERE sender = ? AND timestamp = ?"
                    " AND kind = 'text' AND target_sender IS NULL AND conv_kind = ? AND conv = ?"
                    " ORDER BY id LIMIT 1");
    else
        rc = q_open(c, &q,
                    "SELECT id FROM client_messages WHERE sender = ? AND timestamp = ?"
                    " AND kind = 'text' AND target_sender IS NULL ORDER BY id LIMIT 1");
    if (rc != SC_OK)
        return rc;
    q_text(&q, sender);
    q_u64(&q, ts);
    if (conv_kind) {
        q_text(&q, conv_kind);
        q_text(&q, conv);
    }
    r = q_step(&q);
    if (r == 1)
        *rowid = sqlite3_column_int64(q.st, 0);
    q_close(&q);
    return r < 0 ? r : r == 1 ? SC_OK : SC_E_NOT_FOUND;
}

int sc_msgops_senders_at(sc_client *c, const char *conv_kind, const char *conv, uint64_t ts,
                         char ***senders, size_t *n)
{
    query q;
    char **v = NULL;
    size_t cnt = 0;
    int rc = q_open(c, &q,
                    "SELECT DISTINCT sender FROM client_messages WHERE timestamp = ?"
                    " AND kind = 'text' AND target_sender IS NULL AND conv_kind = ? AND conv = ?"
                    " ORDER BY sender LIMIT 16");
    int r = 0;

    *senders = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_u64(&q, ts);
    q_text(&q, conv_kind);
    q_text(&q, conv);
    v = calloc(16, sizeof *v);
    if (v == NULL) {
        q_close(&q);
        return nomem(c);
    }
    while (cnt < 16 && (r = q_step(&q)) == 1) {
        v[cnt] = col_dup(&q, 0);
        if (v[cnt] == NULL) {
            r = nomem(c);
            break;
        }
        cnt++;
    }
    q_close(&q);
    if (r < 0) {
        sc_strv_free(v, cnt);
        return r;
    }
    *senders = v;
    *n = cnt;
    return SC_OK;
}

int sc_reaction_put(sc_client *c, const char *target_sender, uint64_t target_ts,
                    const char *reactor, const char *emoji, uint64_t reacted_ts, bool *changed)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_reactions(target_sender, target_ts, reactor, emoji,"
                    " reacted_ts) VALUES(?,?,?,?,?) ON CONFLICT(target_sender, target_ts, reactor)"
                    " DO UPDATE SET emoji = excluded.emoji, reacted_ts = excluded.reacted_ts"
                    " WHERE excluded.reacted_ts > client_reactions.reacted_ts");

    *changed = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, target_sender);
    q_u64(&q, target_ts);
    q_text(&q, reactor);
    q_text(&q, emoji);
    q_u64(&q, reacted_ts);
    rc = q_exec(&q);
    if (rc == SC_OK)
        *changed = sqlite3_changes(c->db) > 0;
    return rc;
}

int sc_reaction_get(sc_client *c, const char *target_sender, uint64_t target_ts,
                    const char *reactor, char **emoji)
{
    query q;
    int rc = q_open(c, &q,
                    "SELECT emoji FROM client_reactions WHERE target_sender = ? AND target_ts = ?"
                    " AND reactor = ?");
    int r;

    *emoji = NULL;
    if (rc != SC_OK)
        return rc;
    q_text(&q, target_sender);
    q_u64(&q, target_ts);
    q_text(&q, reactor);
    r = q_step(&q);
    if (r == 1) {
        *emoji = col_dup(&q, 0);
        if (*emoji == NULL)
            r = nomem(c);
    }
    q_close(&q);
    return r < 0 ? r : r == 1 ? SC_OK : SC_E_NOT_FOUND;
}

int sc_reaction_list(sc_client *c, const char *target_sender, uint64_t target_ts,
                     sc_reaction_row **out, size_t *n)
{
    query q;
    sc_reaction_row *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = 0;
    int rc = q_open(c, &q,
                    "SELECT reactor, emoji, reacted_ts FROM client_reactions WHERE"
                    " target_sender = ? AND target_ts = ? AND emoji <> '' ORDER BY reacted_ts,"
                    " reactor");

    *out = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_text(&q, target_sender);
    q_u64(&q, target_ts);
    while ((r = q_step(&q)) == 1) {
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            r = nomem(c);
            break;
        }
        v[cnt].reactor = col_dup(&q, 0);
        v[cnt].emoji = col_dup(&q, 1);
        v[cnt].reacted_ts = col_u64(&q, 2);
        cnt++;
        if (v[cnt - 1].reactor == NULL || v[cnt - 1].emoji == NULL) {
            r = nomem(c);
            break;
        }
    }
    q_close(&q);
    if (r < 0) {
        sc_reaction_list_free(v, cnt);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
}

void sc_reaction_list_free(sc_reaction_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].reactor);
        free(v[i].emoji);
    }
    free(v);
}

int sc_edit_add(sc_client *c, const char *target_sender, uint64_t target_ts, uint64_t edit_ts,
                const char *body, size_t body_len, const char *extra, bool *added)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT OR IGNORE INTO client_edits(target_sender, target_ts, edit_ts, body,"
                    " extra, received_ms) VALUES(?,?,?,?,?,?)");

    *added = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, target_sender);
    q_u64(&q, target_ts);
    q_u64(&q, edit_ts);
    q_textn(&q, body, body_len);
    q_text(&q, extra);
    q_u64(&q, sc_now_ms());
    rc = q_exec(&q);
    if (rc == SC_OK)
        *added = sqlite3_changes(c->db) > 0;
    return rc;
}

int sc_edit_list(sc_client *c, const char *target_sender, uint64_t target_ts, sc_edit_row **out,
                 size_t *n)
{
    query q;
    sc_edit_row *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = 0;
    int rc = q_open(c, &q,
                    "SELECT edit_ts, body, extra FROM client_edits WHERE target_sender = ?"
                    " AND target_ts = ? ORDER BY edit_ts");

    *out = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_text(&q, target_sender);
    q_u64(&q, target_ts);
    while ((r = q_step(&q)) == 1) {
        const void *b = sqlite3_column_text(q.st, 1);
        size_t bl = (size_t)sqlite3_column_bytes(q.st, 1);
        if (!grow(&v, &cap, cnt, sizeof *v)) {
            r = nomem(c);
            break;
        }
        memset(&v[cnt], 0, sizeof v[cnt]);
        v[cnt].edit_ts = col_u64(&q, 0);
        v[cnt].body = malloc(bl + 1);
        v[cnt].body_len = bl;
        if (v[cnt].body) {
            if (bl)
                memcpy(v[cnt].body, b, bl);
            v[cnt].body[bl] = '\0';
        }
        if (sqlite3_column_type(q.st, 2) != SQLITE_NULL)
            v[cnt].extra = col_dup(&q, 2);
        cnt++;
        if (v[cnt - 1].body == NULL ||
            (sqlite3_column_type(q.st, 2) != SQLITE_NULL && v[cnt - 1].extra == NULL)) {
            r = nomem(c);
            break;
        }
    }
    q_close(&q);
    if (r < 0) {
        sc_edit_list_free(v, cnt);
        return r;
    }
    *out = v;
    *n = cnt;
    return SC_OK;
}

void sc_edit_list_free(sc_edit_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        if (v[i].body) {
            sodium_memzero(v[i].body, v[i].body_len);
            free(v[i].body);
        }
        sc_free_secret_str(v[i].extra);
    }
    free(v);
}

int sc_msg_set_edited(sc_client *c, int64_t rowid, const char *body, size_t body_len,
                      const char *extra, uint64_t edited_ts)
{
    query q;
    int rc = q_open(c, &q,
                    "UPDATE client_messages SET body = ?, extra = ?, edited_ts = ? WHERE id = ?"
                    " AND deleted = 0");
    if (rc != SC_OK)
        return rc;
    q_textn(&q, body, body_len);
    q_text(&q, extra);
    q_u64(&q, edited_ts);
    q_i64(&q, rowid);
    return q_exec(&q);
}

int sc_tombstone_add(sc_client *c, const char *sender, uint64_t ts)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT OR IGNORE INTO client_tombstones(sender, timestamp, deleted_ms)"
                    " VALUES(?,?,?)");
    if (rc != SC_OK)
        return rc;
    q_text(&q, sender);
    q_u64(&q, ts);
    q_u64(&q, sc_now_ms());
    return q_exec(&q);
}

int sc_tombstone_has(sc_client *c, const char *sender, uint64_t ts, bool *has)
{
    query q;
    int rc = q_open(c, &q, "SELECT 1 FROM client_tombstones WHERE sender = ? AND timestamp = ?");

    *has = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, sender);
    q_u64(&q, ts);
    return exists_of(&q, has);
}

int sc_msgops_forget(sc_client *c, const char *sender, uint64_t ts)
{
    static const char *const sql[] = {
        "DELETE FROM client_edits WHERE target_sender = ? AND target_ts = ?",
        "DELETE FROM client_reactions WHERE target_sender = ? AND target_ts = ?",
        ("DELETE FROM client_messages WHERE target_sender = ? AND target_ts = ?"
         " AND kind IN ('edit', 'reaction')"),
    };
    int rc = SC_OK;

    for (size_t i = 0; rc == SC_OK && i < sizeof sql / sizeof sql[0]; i++) {
        query q;
        rc = q_open(c, &q, sql[i]);
        if (rc != SC_OK)
            break;
        q_text(&q, sender);
        q_u64(&q, ts);
        rc = q_exec(&q);
    }
    return rc;
}

int sc_msgops_tombstone_row(sc_client *c, int64_t rowid)
{
    query q;
    int rc = q_open(c, &q,
                    "UPDATE client_messages SET body = '', extra = NULL, deleted = 1,"
                    " edited_ts = 0 WHERE id = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, rowid);
    return q_exec(&q);
}

/* ---- issue 11: profiles ---- */

void sc_profile_row_clear(sc_profile_row *r)
{
    if (r == NULL)
        return;
    sodium_memzero(r->key, sizeof r->key);
    free(r->display_name);
    free(r->avatar_path);
    free(r->avatar_type);
    memset(r, 0, sizeof *r);
}

int sc_profile_row_get(sc_client *c, const char *name, sc_profile_row *out)
{
    query q;
    int r, rc = q_open(c, &q,
                       "SELECT profile_key, display_name, avatar_path, fetched_ms"
                       " FROM client_profiles WHERE name = ?");
    memset(out, 0, sizeof *out);
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    r = q_step(&q);
    if (r == 1) {
        const void *k = sqlite3_column_blob(q.st, 0);
        const unsigned char *dn = sqlite3_column_text(q.st, 1);
        const unsigned char *ap = sqlite3_column_text(q.st, 2);
        if (k != NULL && sqlite3_column_bytes(q.st, 0) == SC_PROFILE_KEY_BYTES) {
            memcpy(out->key, k, SC_PROFILE_KEY_BYTES);
            out->has_key = true;
        }
        out->display_name = dn ? strdup((const char *)dn) : NULL;
        if (ap) {
            /* avatar_path holds "TYPE\nPATH" */
            const char *nl = strchr((const char *)ap, '\n');
            if (nl) {
                out->avatar_type = strndup((const char *)ap, (size_t)(nl - (const char *)ap));
                out->avatar_path = strdup(nl + 1);
            }
        }
        out->fetched_ms = col_u64(&q, 3);
        if ((dn && out->display_name == NULL) ||
            (ap && strchr((const char *)ap, '\n') &&
             (out->avatar_type == NULL || out->avatar_path == NULL))) {
            q_close(&q);
            sc_profile_row_clear(out);
            return nomem(c);
        }
    }
    q_close(&q);
    if (r < 0)
        return r;
    return r == 1 ? SC_OK : SC_E_NOT_FOUND;
}

int sc_profile_key_put(sc_client *c, const char *name, const uint8_t key[SC_PROFILE_KEY_BYTES],
                       bool *changed)
{
    query q;
    int rc = q_open(c, &q,
                    "INSERT INTO client_profiles (name, profile_key, fetched_ms) VALUES (?, ?, 0)"
                    " ON CONFLICT(name) DO UPDATE SET profile_key = excluded.profile_key,"
                    " fetched_ms = 0 WHERE profile_key IS NULL OR"
                    " profile_key <> excluded.profile_key");
    *changed = false;
    if (rc != SC_OK)
        return rc;
    q_text(&q, name);
    q_blob(&q, key, SC_PROFILE_KEY_BYTES);
    rc = q_exec(&q);
    if (rc == SC_OK)
        *changed = sqlite3_changes(c->db) > 0;
    return rc;
}

int sc_profile_fetched(sc_client *c, const char *name, const char *display_name,
                       const char *avatar_type, const char *avatar_path, uint64_t fetched_ms)
{
    query q;
    char *ap = NULL;
    int rc;

    if (avatar_type && avatar_path) {
        size_t n = strlen(avatar_type) + strlen(avatar_path) + 2;
        ap = malloc(n);
        if (ap == NULL)
            return nomem(c);
        snprintf(ap, n, "%s\n%s", avatar_type, avatar_path);
    }
    rc = q_open(c, &q,
                "UPDATE client_profiles SET display_name = ?, avatar_path = ?, fetched_ms = ?"
                " WHERE name = ?");
    if (rc == SC_OK) {
        q_text(&q, display_name);
        q_text(&q, ap);
        q_u64(&q, fetched_ms);
        q_text(&q, name);
        rc = q_exec(&q);
    }
    free(ap);
    return rc;
}

int sc_profile_due(sc_client *c, uint64_t stale_before_ms, size_t max, char ***names, size_t *n)
{
    query q;
    char **v = NULL;
    size_t cnt = 0;
    int r, rc = q_open(c, &q,
                       "SELECT name FROM client_profiles WHERE profile_key IS NOT NULL AND"
                       " fetched_ms <= ? ORDER BY fetched_ms, name LIMIT ?");
    *names = NULL;
    *n = 0;
    if (rc != SC_OK)
        return rc;
    q_u64(&q, stale_before_ms);
    q_u64(&q, max);
    v = calloc(max + 1, sizeof *v);
    if (v == NULL) {
        q_close(&q);
        return nomem(c);
    }
    while ((r = q_step(&q)) == 1 && cnt < max) {
        v[cnt] = col_dup(&q, 0);
        if (v[cnt] == NULL) {
            r = nomem(c);
            break;
        }
        cnt++;
    }
    q_close(&q);
    if (r < 0) {
        sc_strv_free(v, cnt);
        return r;
    }
    *names = v;
    *n = cnt;
    return SC_OK;
}

int sc_out_mentions(sc_client *c, const char *needle, bool *found)
{
    query q;
    int rc = q_open(c, &q, "SELECT 1 FROM client_outgoing WHERE instr(content, ?) > 0 LIMIT 1");

    *found = false;
    if (rc != SC_OK)
        return rc;
    q_blob(&q, needle, strlen(needle));
    return exists_of(&q, found);
}

/* (issue 11: msgops) */
#define MSGOPS_QUOTING                                                                             \
    " extra IS NOT NULL AND instr(extra, '\"quote\"') > 0 AND CASE WHEN json_valid(extra) THEN"    \
    " json_extract(extra, '$.quote.author') = ? AND json_extract(extra, '$.quote.timestamp') = ?"  \
    " ELSE 0 END"

int sc_msgops_unquote(sc_client *c, const char *sender, uint64_t ts, const char *own)
{
    uint64_t mine[64];
    size_t n = 0;
    query q;
    int rc, r;

    /* our replies quoting it: the copies retry.c keeps of them go */
    rc = q_open(c, &q, "SELECT timestamp FROM client_messages WHERE sender = ? AND" MSGOPS_QUOTING);
    if (rc != SC_OK)
        return rc;
    q_text(&q, own ? own : "");
    q_text(&q, sender);
    q_u64(&q, ts);
    while (n < sizeof mine / sizeof mine[0] && (r = q_step(&q)) == 1)
        mine[n++] = col_u64(&q, 0);
    q_close(&q);
    if (r < 0)
        return r;
    for (size_t i = 0; rc == SC_OK && i < n; i++)
        rc = sc_msgops_forget_sent(c, mine[i]);
    if (rc != SC_OK)
        return rc;
    rc = q_open(c, &q,
                "UPDATE client_messages SET extra = json_set(extra, '$.quote.text', '')"
                " WHERE" MSGOPS_QUOTING);
    if (rc != SC_OK)
        return rc;
    q_text(&q, sender);
    q_u64(&q, ts);
    return q_exec(&q);
}

/* (issue 11: msgops) */
int sc_msgops_forget_sent(sc_client *c, uint64_t content_ts)
{
    /* retry.c keeps what it sent as "retry_sent:..." config values: a
     * packed Content, which starts with its timestamp (field 1, varint) */
    uint8_t pre[11];
    size_t pn = 0;
    uint64_t v = content_ts;
    query q;
    int rc;

    pre[pn++] = 0x08;
    do {
        pre[pn++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    rc = q_open(c, &q,
                "DELETE FROM client_config WHERE key >= 'retry_sent:' AND key < 'retry_sent;'"
                " AND substr(value, 1, ?) = ?");
    if (rc != SC_OK)
        return rc;
    q_i64(&q, (int64_t)pn);
    q_blob(&q, pre, pn);
    return q_exec(&q);
}

/* ---- issue 11: hostile peers (msgops) ---- */

int sc_msgops_orphans(sc_client *c, const char *who, int what, size_t limit, size_t *n)
{
    static const char *const sql[] = {
        "SELECT count(*) FROM (SELECT DISTINCT e.target_ts FROM client_edits e"
        " WHERE e.target_sender = ?1 AND NOT EXISTS (SELECT 1 FROM client_messages m"
        " WHERE m.sender = e.target_sender AND m.timestamp = e.target_ts AND"
        " m.kind = 'text' AND m.target_sender IS NULL) LIMIT ?2)",
        "SELECT count(*) FROM (SELECT 1 FROM client_reactions r WHERE r.reactor = ?1"
        " AND NOT EXISTS (SELECT 1 FROM client_messages m WHERE m.sender ="
        " r.target_sender AND m.timestamp = r.target_ts AND m.kind = 'text' AND"
        " m.target_sender IS NULL) LIMIT ?2)",
        "SELECT count(*) FROM (SELECT 1 FROM client_tombstones t WHERE t.sender = ?1"
        " AND NOT EXISTS (SELECT 1 FROM client_messages m WHERE m.sender = t.sender AND"
        " m.timestamp = t.timestamp AND m.kind = 'text' AND m.target_sender IS NULL)"
        " LIMIT ?2)",
    };
    query q;
    int r, rc;

    *n = 0;
    if (what < 0 || what > 2)
        return sc_fail(c, SC_E_INTERNAL, "bad orphan kind %d", what);
    rc = q_open(c, &q, sql[what]);
    if (rc != SC_OK)
        return rc;
    q_text(&q, who);
    q_i64(&q, (int64_t)limit);
    r = q_step(&q);
    if (r == 1)
        *n = (size_t)sqlite3_column_int64(q.st, 0);
    q_close(&q);
    return r < 0 ? r : SC_OK;
}

int sc_reaction_remove(sc_client *c, const char *target_sender, uint64_t target_ts,
                       const char *reactor)
{
    query q;
    int rc = q_open(c, &q,
                    "DELETE FROM client_reactions WHERE target_sender = ? AND target_ts = ? AND"
                    " reactor = ?");
    if (rc != SC_OK)
        return rc;
    q_text(&q, target_sender);
    q_u64(&q, target_ts);
    q_text(&q, reactor);
    return q_exec(&q);
}
