/*
 * server/store/store_sqlite.c -- the SQLite backend of sottod's store.
 *
 * Design note.
 *  - Two connections to one database file in WAL mode: the WRITER
 *    connection, used only by the writer thread of store.c (and by open for
 *    migrations), and the READER connection (query_only), used under a mutex
 *    by whoever calls a [sync] read. WAL lets the reader see the last
 *    committed batch without ever blocking the writer.
 *  - Durability: synchronous=FULL by default. In WAL mode that means the WAL
 *    is fsynced at every COMMIT, so once a completion runs (and the sender
 *    is acked) the envelope survives kill -9 and power loss. Group commit
 *    makes that one fsync per batch, not per envelope. synchronous=NORMAL
 *    (SOTTOD_DURABILITY_PROCESS) skips the fsync: still safe against a
 *    crash of sottod (the WAL write() reached the kernel before COMMIT
 *    returned), not against power loss or a kernel crash.
 *  - secure_delete=ON: deleted envelopes (acked or expired) and one-time
 *    prekeys are overwritten with zeros in the database file, so the file
 *    holds no delivered ciphertext ("no message history"). Old page images
 *    survive in the WAL only until the scrub (sq_scrub, scheduled by
 *    store.c at most scrub_delay_s after a commit) checkpoints it and
 *    truncates it to 0 bytes.
 *  - Schema versions in PRAGMA user_version; MIGRATIONS[i] upgrades from
 *    version i to i+1, each in its own transaction. A file with a newer
 *    version than this binary knows is refused.
 *  - Every statement is prepared once (persistent) and reused.
 *  - The queue depth of a device is a counter in its row, kept in the same
 *    transaction as the envelope rows, so the full-queue check is O(1).
 *  - Envelope seqs: the writer hands them out from memory, but re-reads the
 *    highest one at every BEGIN IMMEDIATE (under SQLite's write lock), so a
 *    second writer on the same file can never make it reuse a seq. An
 *    INSERT OR IGNORE that inserts nothing is a retry only if the row with
 *    that envelope id holds the same body; anything else is an error, never
 *    an ack for an envelope that was not stored.
 *  - Every failure's SQLite message and errno (disk full, I/O error) is kept
 *    as text for sottod_store_last_error(); open refuses a damaged file
 *    (quick_check) and, with must_exist, a missing or empty one, with a
 *    reason in words.
 */
#include "store/store.h"
#include "store/store_op.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- schema ---------------------------------------------------------------- */

static const char *const MIGRATIONS[] = {
    /* 0 -> 1 */
    "CREATE TABLE accounts("
    "  id INTEGER PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE,"
    "  created TEXT NOT NULL);" /* date only: YYYY-MM-DD */
    "CREATE TABLE invites("
    "  hash BLOB PRIMARY KEY," /* SHA-256(token) */
    "  expires_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE devices("
    "  account_id INTEGER NOT NULL,"
    "  device_id INTEGER NOT NULL,"
    "  registration_id INTEGER NOT NULL,"
    "  auth_key BLOB NOT NULL,"              /* Ed25519 public, 32 bytes */
    "  identity_key BLOB NOT NULL,"          /* 33 bytes */
    "  added_by INTEGER NOT NULL DEFAULT 0," /* signer device id, 0 for device 1 */
    "  add_sig BLOB,"                        /* signer's Ed25519 signature */
    "  spk_id INTEGER, spk_pub BLOB, spk_sig BLOB,"
    "  created TEXT NOT NULL," /* date only */
    "  last_seen TEXT,"        /* date only */
    "  queue_depth INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(account_id, device_id)) WITHOUT ROWID;"
    "CREATE TABLE one_time_prekeys("
    "  account_id INTEGER NOT NULL,"
    "  device_id INTEGER NOT NULL,"
    "  key_id INTEGER NOT NULL,"
    "  pub BLOB NOT NULL,"
    "  PRIMARY KEY(account_id, device_id, key_id)) WITHOUT ROWID;"
    "CREATE TABLE envelopes("
    "  seq INTEGER PRIMARY KEY," /* set by the writer, see last_seq */
    "  account_id INTEGER NOT NULL,"
    "  device_id INTEGER NOT NULL,"
    "  envelope_id BLOB NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE UNIQUE INDEX envelopes_id ON envelopes(account_id, device_id, envelope_id);"
    "CREATE INDEX envelopes_queue ON envelopes(account_id, device_id, seq);"
    "CREATE INDEX envelopes_expiry ON envelopes(expires_at);"
    "CREATE TABLE attachments("
    "  id BLOB PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  referenced INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE INDEX attachments_expiry ON attachments(expires_at);"
    /* Highest envelope seq ever handed out, saved once per batch, so seqs
     * are never reused even after the newest envelopes were deleted. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta VALUES('envelope_seq', 0);",
    /* 1 -> 2: account ids are never reused. Without AUTOINCREMENT SQLite
     * hands out max(id)+1, so deleting the newest account gave its id to
     * the next registration. Rebuild accounts with AUTOINCREMENT (ids kept;
     * sqlite_sequence starts at the copied max(id)). No other table has a
     * REFERENCES clause to accounts (devices, one_time_prekeys, envelopes
     * hold plain account_id columns), and accounts has no index besides its
     * UNIQUE(username) one, which the new table recreates. Runs inside
     * migrate()'s transaction. Ids freed before this migration above the
     * surviving max(id) cannot be known and may still be handed out once. */
    "ALTER TABLE accounts RENAME TO accounts_v1;"
    "CREATE TABLE accounts("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  username TEXT NOT NULL UNIQUE,"
    "  created TEXT NOT NULL);" /* date only: YYYY-MM-DD */
    "INSERT INTO accounts(id, username, created)"
    "  SELECT id, username, created FROM accounts_v1 ORDER BY id;"
    "DROP TABLE accounts_v1;",
    /* 2 -> 3 (API v2, issue 8): the account key and the latest signed device
     * list with its version. Accounts created before stay NULL (no account
     * key) until their primary publishes one (set_device_list). */
    "ALTER TABLE accounts ADD COLUMN account_key BLOB;" /* 33 bytes, public */
    "ALTER TABLE accounts ADD COLUMN device_list BLOB;" /* statement || signature */
    "ALTER TABLE accounts ADD COLUMN device_list_version INTEGER;",
    /* 3 -> 4 (issue 9, key transparency): the log's updates, each
     * username's latest entry (VRF index and proof cached, the opening that
     * hides its value), the heads the server signed and the auditors'
     * countersignatures. Prefix roots and the log tree are recomputed from
     * kt_log at start (server/kt.c). */
    "CREATE TABLE kt_log("
    "  pos INTEGER PRIMARY KEY," /* 0, 1, 2, ... */
    "  ts_ms INTEGER NOT NULL,"  /* the date of the change (00:00 UTC) */
    "  vrf_index BLOB NOT NULL,"
    "  counter INTEGER NOT NULL,"
    "  commitment BLOB NOT NULL);"
    "CREATE TABLE kt_entries("
    "  username TEXT PRIMARY KEY,"
    "  vrf_index BLOB NOT NULL UNIQUE,"
    "  vrf_proof BLOB NOT NULL,"
    "  opening BLOB NOT NULL,"
    "  value BLOB NOT NULL,"
    "  counter INTEGER NOT NULL,"
    "  pos INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE kt_heads("
    "  size INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  signature BLOB NOT NULL,"
    "  PRIMARY KEY(size, ts_ms)) WITHOUT ROWID;"
    "CREATE TABLE kt_cosigs("
    "  size INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  auditor_key BLOB NOT NULL,"
    "  signature BLOB NOT NULL,"
    "  PRIMARY KEY(size, ts_ms, auditor_key)) WITHOUT ROWID;",
    /* 4 -> 5 (issue 11, profiles): per account the encrypted profile as
     * the owner uploaded it (opaque ciphertext, never parsed; deleted with
     * the account). */
    "CREATE TABLE profiles("
    "  account_id INTEGER PRIMARY KEY,"
    "  ciphertext BLOB NOT NULL);",
    /* 5 -> 6 (issue 12, sealed sender): per account the delivery token
     * (16 bytes, NULL = none: sealed sends to it are refused), and per
     * queued envelope the sender's account id while it waits (0 = sealed:
     * no sender), for the per-sender queue caps; the index counts them. */
    "ALTER TABLE accounts ADD COLUMN delivery_token BLOB;"
    "ALTER TABLE envelopes ADD COLUMN source_id INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX envelopes_source ON envelopes(account_id, device_id, source_id);",
};
#define SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

/* ---- statements ------------------------------------------------------------- */

enum {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_SAVEPOINT,
    W_RELEASE,
    W_ROLLBACK_TO,
    W_ACC_BY_NAME,
    W_INVITE_CONSUME,
    W_ACC_INSERT,
    W_DEV_INSERT,
    W_ACC_DELETE,
    W_ACC_DEL_DEVICES,
    W_ACC_DEL_OTPK,
    W_ACC_DEL_ENV,
    W_INVITE_INSERT,
    W_ACC_CHECK,
    W_DEV_IDS,
    W_DEV_DELETE,
    W_DEV_DEL_OTPK,
    W_DEV_DEL_ENV,
    W_DEV_TOUCH,
    W_DEV_EXISTS,
    W_SPK_SET,
    W_OTPK_INSERT,
    W_OTPK_COUNT,
    W_BUNDLE_DEVS,
    W_OTPK_FIRST,
    W_OTPK_DELETE,
    W_ENV_INSERT,
    W_DEPTH_INC,
    W_DEPTH_SUB,
    W_ENV_DELETE,
    W_ENV_EXPIRED_COUNTS,
    W_ENV_EXPIRE,
    W_ATT_INSERT,
    W_ATT_UPDATE,
    W_ATT_DELETE,
    W_ENV_SAME,
    W_SEQ_MAX,
    W_META_SEQ,
    W_ACC_LIST_GET,
    W_ACC_LIST_SET,
    W_ACC_KEY_SET,
    W_KT_LOG_COUNT,
    W_KT_LOG_INSERT,
    W_KT_ENTRY_PUT,
    W_KT_HEAD_PUT,
    W_KT_HEAD_PRUNE,
    W_KT_HEAD_CHECK,
    W_KT_COSIG_PUT,
    W_ACC_DEL_PROFILE,
    W_PROFILE_PUT,
    W_ENV_SOURCE_COUNT,
    W_DEPTH_GET,
    W_TOKEN_SET,
    W_SEALED_MARK,
    W_COUNT
};

static const char *const WSQL[W_COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_SAVEPOINT] = "SAVEPOINT op",
    [W_RELEASE] = "RELEASE op",
    [W_ROLLBACK_TO] = "ROLLBACK TO op",
    [W_ACC_BY_NAME] = "SELECT id FROM accounts WHERE username=?1",
    [W_INVITE_CONSUME] = "DELETE FROM invites WHERE hash=?1 AND expires_at>?2",
    [W_ACC_INSERT] = "INSERT INTO accounts(username, created) VALUES(?1, ?2)",
    [W_DEV_INSERT] = ("INSERT INTO devices(account_id, device_id, registration_id, auth_key,"
                      " identity_key, created, added_by, add_sig)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
    [W_ACC_DELETE] = "DELETE FROM accounts WHERE id=?1",
    [W_ACC_DEL_DEVICES] = "DELETE FROM devices WHERE account_id=?1",
    [W_ACC_DEL_OTPK] = "DELETE FROM one_time_prekeys WHERE account_id=?1",
    [W_ACC_DEL_ENV] = "DELETE FROM envelopes WHERE account_id=?1",
    [W_INVITE_INSERT] = "INSERT OR REPLACE INTO invites(hash, expires_at) VALUES(?1, ?2)",
    [W_ACC_CHECK] = "SELECT 1 FROM accounts WHERE id=?1",
    [W_DEV_IDS] = "SELECT device_id FROM devices WHERE account_id=?1 ORDER BY device_id",
    [W_DEV_DELETE] = "DELETE FROM devices WHERE account_id=?1 AND device_id=?2",
    [W_DEV_DEL_OTPK] = "DELETE FROM one_time_prekeys WHERE account_id=?1 AND device_id=?2",
    [W_DEV_DEL_ENV] = "DELETE FROM envelopes WHERE account_id=?1 AND device_id=?2",
    [W_DEV_TOUCH] = ("UPDATE devices SET last_seen=?3 WHERE account_id=?1 AND device_id=?2"
                     " AND (last_seen IS NULL OR last_seen<>?3)"),
    [W_DEV_EXISTS] = "SELECT 1 FROM devices WHERE account_id=?1 AND device_id=?2",
    [W_SPK_SET] = ("UPDATE devices SET spk_id=?3, spk_pub=?4, spk_sig=?5"
                   " WHERE account_id=?1 AND device_id=?2"),
    [W_OTPK_INSERT] = ("INSERT OR REPLACE INTO one_time_prekeys(account_id, device_id, key_id, pub)"
                       " VALUES(?1, ?2, ?3, ?4)"),
    [W_OTPK_COUNT] = "SELECT count(*) FROM one_time_prekeys WHERE account_id=?1 AND device_id=?2",
    [W_BUNDLE_DEVS] = ("SELECT device_id, registration_id, identity_key, spk_id, spk_pub, spk_sig,"
                       " auth_key, added_by, add_sig"
                       " FROM devices WHERE account_id=?1 AND (?2=0 OR device_id=?2)"
                       " ORDER BY device_id"),
    [W_OTPK_FIRST] = ("SELECT key_id, pub FROM one_time_prekeys WHERE account_id=?1 AND"
                      " device_id=?2 ORDER BY key_id LIMIT 1"),
    [W_OTPK_DELETE] = ("DELETE FROM one_time_prekeys WHERE account_id=?1 AND device_id=?2"
                       " AND key_id=?3"),
    [W_ENV_INSERT] = ("INSERT OR IGNORE INTO envelopes(account_id, device_id, seq, envelope_id,"
                      " expires_at, body, source_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
    /* per-sender cap: bounded by the cap (LIMIT), an index range */
    [W_ENV_SOURCE_COUNT] = ("SELECT count(*) FROM (SELECT 1 FROM envelopes WHERE account_id=?1"
                            " AND device_id=?2 AND source_id=?3 LIMIT ?4)"),
    [W_DEPTH_GET] = "SELECT queue_depth FROM devices WHERE account_id=?1 AND device_id=?2",
    [W_TOKEN_SET] = "UPDATE accounts SET delivery_token=?2 WHERE id=?1",
    [W_SEALED_MARK] = "INSERT OR IGNORE INTO meta(key, value) VALUES('sealed_root', 1)",
    [W_ENV_SAME] = ("SELECT body FROM envelopes WHERE account_id=?1 AND device_id=?2"
                    " AND envelope_id=?3"),
    [W_SEQ_MAX] = ("SELECT coalesce((SELECT max(seq) FROM envelopes), 0),"
                   " coalesce((SELECT value FROM meta WHERE key='envelope_seq'), 0)"),
    [W_META_SEQ] = "UPDATE meta SET value=?1 WHERE key='envelope_seq'",
    [W_DEPTH_INC] = ("UPDATE devices SET queue_depth=queue_depth+1"
                     " WHERE account_id=?1 AND device_id=?2 AND queue_depth<?3"),
    [W_DEPTH_SUB] = ("UPDATE devices SET queue_depth=max(queue_depth-?3, 0)"
                     " WHERE account_id=?1 AND device_id=?2"),
    [W_ENV_DELETE] = ("DELETE FROM envelopes WHERE account_id=?1 AND device_id=?2"
                      " AND envelope_id=?3"),
    [W_ENV_EXPIRED_COUNTS] = ("SELECT account_id, device_id, count(*) FROM envelopes"
                              " WHERE expires_at<=?1 GROUP BY account_id, device_id"),
    [W_ENV_EXPIRE] = "DELETE FROM envelopes WHERE expires_at<=?1",
    [W_ATT_INSERT] = ("INSERT INTO attachments(id, size, created_at, expires_at, referenced)"
                      " VALUES(?1, ?2, ?3, ?4, ?5)"),
    [W_ATT_UPDATE] = "UPDATE attachments SET size=?2, expires_at=?3, referenced=?4 WHERE id=?1",
    [W_ATT_DELETE] = "DELETE FROM attachments WHERE id=?1",
    [W_ACC_LIST_GET] = ("SELECT account_key, device_list, device_list_version FROM accounts"
                        " WHERE id=?1"),
    [W_ACC_LIST_SET] = "UPDATE accounts SET device_list=?2, device_list_version=?3 WHERE id=?1",
    [W_ACC_KEY_SET] = ("UPDATE accounts SET account_key=?4, device_list=?2, device_list_version=?3"
                       " WHERE id=?1"),
    [W_KT_LOG_COUNT] = "SELECT coalesce(max(pos) + 1, 0) FROM kt_log",
    [W_KT_LOG_INSERT] = ("INSERT INTO kt_log(pos, ts_ms, vrf_index, counter, commitment)"
                         " VALUES(?1, ?2, ?3, ?4, ?5)"),
    /* An upsert on the username only: an index held by ANOTHER name is a
     * constraint error (OR REPLACE would silently delete that name's row). */
    [W_KT_ENTRY_PUT] = ("INSERT INTO kt_entries(username, vrf_index, vrf_proof, opening, value,"
                        " counter, pos) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                        " ON CONFLICT(username) DO UPDATE SET vrf_index=excluded.vrf_index,"
                        " vrf_proof=excluded.vrf_proof, opening=excluded.opening,"
                        " value=excluded.value, counter=excluded.counter, pos=excluded.pos"),
    [W_KT_HEAD_PUT] = "INSERT OR REPLACE INTO kt_heads(size, ts_ms, signature) VALUES(?1, ?2, ?3)",
    /* issue 12: superseded heads are not kept -- only those of the two
     * newest head times (an auditor countersigning the previous head
     * still finds it) and the countersigned ones (the published head) */
    [W_KT_HEAD_PRUNE] = ("DELETE FROM kt_heads WHERE ts_ms < (SELECT ts_ms FROM"
                         " (SELECT DISTINCT ts_ms FROM kt_heads ORDER BY ts_ms DESC"
                         " LIMIT 1 OFFSET 1)) AND NOT EXISTS (SELECT 1 FROM kt_cosigs c"
                         " WHERE c.size = kt_heads.size AND c.ts_ms = kt_heads.ts_ms)"),
    [W_KT_HEAD_CHECK] = "SELECT 1 FROM kt_heads WHERE size=?1 AND ts_ms=?2",
    [W_ACC_DEL_PROFILE] = "DELETE FROM profiles WHERE account_id=?1",
    [W_PROFILE_PUT] = "INSERT OR REPLACE INTO profiles(account_id, ciphertext) VALUES(?1, ?2)",
    [W_KT_COSIG_PUT] = ("INSERT OR REPLACE INTO kt_cosigs(size, ts_ms, auditor_key, signature)"
                        " VALUES(?1, ?2, ?3, ?4)"),
};

#define DEVICE_COLS                                                                                \
    "device_id, registration_id, auth_key, identity_key, spk_id, spk_pub,"                         \
    " spk_sig, created, last_seen, queue_depth, added_by, add_sig"
#define ATT_COLS "id, size, created_at, expires_at, referenced"
#define KT_ENTRY_COLS "username, vrf_index, vrf_proof, opening, value, counter, pos"

enum {
    R_BEGIN,
    R_COMMIT,
    R_ACC_LOOKUP,
    R_ACC_CHECK,
    R_DEV_GET,
    R_DEV_LIST,
    R_OTPK_COUNT,
    R_ENV_LIST,
    R_DEPTH,
    R_ATT_GET,
    R_ATT_EXPIRED,
    R_ENV_STATS,
    R_DEPTH_TOTAL,
    R_ACC_LIST_GET,
    R_KT_LOG_COUNT,
    R_KT_LOG_READ,
    R_KT_ENTRY_GET,
    R_KT_HEAD_LATEST,
    R_KT_HEAD_GET,
    R_KT_COSIGS,
    R_KT_ACCOUNTS,
    R_PROFILE_GET,
    R_TOKEN_GET,
    R_SEALED_MARKED,
    R_COUNT
};

static const char *const RSQL[R_COUNT] = {
    [R_BEGIN] = "BEGIN",
    [R_COMMIT] = "COMMIT",
    [R_ACC_LOOKUP] = "SELECT id, username, created FROM accounts WHERE username=?1",
    [R_ACC_CHECK] = "SELECT 1 FROM accounts WHERE id=?1",
    [R_DEV_GET] = "SELECT " DEVICE_COLS " FROM devices WHERE account_id=?1 AND device_id=?2",
    [R_DEV_LIST] = "SELECT " DEVICE_COLS " FROM devices WHERE account_id=?1 ORDER BY device_id",
    [R_OTPK_COUNT] = "SELECT count(*) FROM one_time_prekeys WHERE account_id=?1 AND device_id=?2",
    [R_ENV_LIST] = ("SELECT seq, envelope_id, expires_at, body FROM envelopes"
                    " WHERE account_id=?1 AND device_id=?2 AND seq>?3 AND expires_at>?4"
                    " ORDER BY seq LIMIT ?5"),
    [R_DEPTH] = "SELECT queue_depth FROM devices WHERE account_id=?1 AND device_id=?2",
    [R_ATT_GET] = "SELECT " ATT_COLS " FROM attachments WHERE id=?1",
    [R_ATT_EXPIRED] = ("SELECT " ATT_COLS " FROM attachments WHERE expires_at<=?1"
                       " ORDER BY expires_at LIMIT ?2"),
    [R_ENV_STATS] = ("SELECT count(*), coalesce(sum(length(body)), 0) FROM envelopes"
                     " WHERE account_id=?1 AND device_id=?2"),
    [R_DEPTH_TOTAL] = "SELECT coalesce(sum(queue_depth), 0) FROM devices",
    [R_ACC_LIST_GET] = ("SELECT account_key, device_list, device_list_version FROM accounts"
                        " WHERE id=?1"),
    [R_KT_LOG_COUNT] = "SELECT coalesce(max(pos) + 1, 0) FROM kt_log",
    [R_KT_LOG_READ] = ("SELECT pos, ts_ms, vrf_index, counter, commitment FROM kt_log"
                       " WHERE pos>=?1 ORDER BY pos LIMIT ?2"),
    [R_PROFILE_GET] = ("SELECT p.ciphertext FROM profiles p JOIN accounts a ON a.id=p.account_id"
                       " WHERE a.username=?1"),
    [R_KT_ENTRY_GET] = ("SELECT " KT_ENTRY_COLS " FROM kt_entries WHERE username=?1"),
    [R_TOKEN_GET] = "SELECT delivery_token FROM accounts WHERE id=?1",
    [R_SEALED_MARKED] = "SELECT 1 FROM meta WHERE key='sealed_root'",
    [R_KT_HEAD_LATEST] = ("SELECT size, ts_ms, signature FROM kt_heads"
                          " ORDER BY size DESC, ts_ms DESC LIMIT 1"),
    [R_KT_HEAD_GET] = "SELECT size, ts_ms, signature FROM kt_heads WHERE size=?1 AND ts_ms=?2",
    [R_KT_COSIGS] = ("SELECT size, ts_ms, auditor_key, signature FROM kt_cosigs"
                     " ORDER BY size, ts_ms, auditor_key"),
    [R_KT_ACCOUNTS] = ("SELECT a.username, a.account_key, a.device_list, a.device_list_version,"
                       " e.username, e.vrf_index, e.vrf_proof, e.opening, e.value, e.counter, e.pos"
                       " FROM accounts a LEFT JOIN kt_entries e ON e.username=a.username"
                       " WHERE a.account_key IS NOT NULL ORDER BY a.username"),
};

typedef struct sq_backend {
    sottod_store_backend base; /* first: the front end sees this */
    sqlite3 *w;                /* writer connection */
    sqlite3 *r;                /* reader connection */
    pthread_mutex_t rmu;       /* serialises use of r */
    sqlite3_stmt *ws[W_COUNT];
    sqlite3_stmt *rs[R_COUNT];
    bool poisoned;       /* the open batch must not commit */
    int64_t last_seq;    /* highest envelope seq handed out (writer) */
    int64_t saved_seq;   /* last_seq at the start of the batch */
    int64_t reserved;    /* meta's envelope_seq as this writer last committed it: every seq
                            handed out is <= it (see seq_reserve) */
    pthread_mutex_t emu; /* guards err (writer and readers set it) */
    char err[256];       /* text of the most recent failure */
    bool err_fresh;      /* the current op set err itself (writer only) */
} sq_backend;

static sq_backend *SQ(sottod_store_backend *be)
{
    return (sq_backend *)be;
}

/* Records the text of a failure for sottod_store_last_error(). */
static void set_err(sq_backend *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(sq_backend *s, const char *fmt, ...)
{
    char buf[sizeof(s->err)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->emu);
    memcpy(s->err, buf, sizeof(buf));
    pthread_mutex_unlock(&s->emu);
}

/* errno right after the last failed sqlite3_step() of step_done() on this
 * thread: sqlite3_system_errno() is often 0 after a failed write (SQLite
 * reads errno again later, after other calls), so the OS reason of "disk
 * I/O error" would be lost. */
static _Thread_local int tl_errno;

/* Formats SQLite's message, code and the OS errno behind it (for I/O
 * errors) of the last failed call on db into out. */
static void db_error_text(sqlite3 *db, char *out, size_t cap)
{
    int code, sys;

    if (db == NULL) {
        snprintf(out, cap, "out of memory");
        return;
    }
    code = sqlite3_errcode(db);
    sys = sqlite3_system_errno(db);
    if (sys == 0 && (code == SQLITE_IOERR || code == SQLITE_FULL || code == SQLITE_CANTOPEN))
        sys = tl_errno != 0 ? tl_errno : errno;
    tl_errno = 0;
    if (code == SQLITE_OK)
        snprintf(out, cap, "unexpected data in the database");
    else if (sys != 0)
        snprintf(out, cap, "%s (sqlite %d, errno %d: %s)", sqlite3_errmsg(db), code, sys,
                 strerror(sys));
    else
        snprintf(out, cap, "%s (sqlite %d)", sqlite3_errmsg(db), code);
}

/* Records the last failure on db (call right after the failing call). */
static void note_db(sq_backend *s, sqlite3 *db)
{
    char buf[sizeof(s->err)];

    db_error_text(db, buf, sizeof(buf));
    set_err(s, "%s", buf);
}

static void sq_last_error(sottod_store_backend *be, char *buf, size_t cap)
{
    sq_backend *s = SQ(be);

    pthread_mutex_lock(&s->emu);
    snprintf(buf, cap, "%s", s->err);
    pthread_mutex_unlock(&s->emu);
}

/* Returns the cached statement idx, reset and unbound, or NULL. */
static sqlite3_stmt *stmt(sqlite3 *db, sqlite3_stmt **cache, const char *const *sql, int idx)
{
    if (cache[idx] == NULL) {
        if (sqlite3_prepare_v3(db, sql[idx], -1, SQLITE_PREPARE_PERSISTENT, &cache[idx], NULL) !=
            SQLITE_OK)
            return NULL;
    } else {
        sqlite3_reset(cache[idx]);
        sqlite3_clear_bindings(cache[idx]);
    }
    return cache[idx];
}

static sqlite3_stmt *WS(sq_backend *s, int idx)
{
    return stmt(s->w, s->ws, WSQL, idx);
}

static sqlite3_stmt *RS(sq_backend *s, int idx)
{
    return stmt(s->r, s->rs, RSQL, idx);
}

/* Runs a statement that returns no rows. */
static int step_done(sqlite3_stmt *st)
{
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    rc = sqlite3_step(st);
    tl_errno = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : errno;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return SOTTOD_STORE_OK;
    if (rc == SQLITE_CONSTRAINT)
        return SOTTOD_STORE_EXISTS;
    return SOTTOD_STORE_ERR;
}

static int exec_simple(sq_backend *s, int idx)
{
    return step_done(WS(s, idx));
}

static int bind_addr(sqlite3_stmt *st, sottod_addr a)
{
    if (st == NULL || sqlite3_bind_int64(st, 1, a.account_id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, a.device_id) != SQLITE_OK)
        return SOTTOD_STORE_ERR;
    return SOTTOD_STORE_OK;
}

/* Copies a blob column of exactly n bytes into out. */
static int col_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t n)
{
    const void *p = sqlite3_column_blob(st, col);

    if (p == NULL || (size_t)sqlite3_column_bytes(st, col) != n)
        return SOTTOD_STORE_ERR;
    memcpy(out, p, n);
    return SOTTOD_STORE_OK;
}

static void col_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(st, col);
    size_t len;

    out[0] = '\0';
    if (p == NULL)
        return;
    len = (size_t)sqlite3_column_bytes(st, col);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

static int64_t now(sq_backend *s)
{
    return sottod_store_now(s->base.front);
}

/* ---- transactions (writer thread) ------------------------------------------- */

static int sq_rollback(sottod_store_backend *be);

/*
 * Starts the batch's transaction and re-reads the highest envelope seq
 * under the write lock: if anything else wrote to this file (it should not:
 * sottod locks its data directory), the seqs handed out next are still
 * new.
 */
static int sq_begin(sottod_store_backend *be)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int64_t seq;

    s->poisoned = false;
    if (exec_simple(s, W_BEGIN) != SOTTOD_STORE_OK) {
        note_db(s, s->w);
        return SOTTOD_STORE_ERR;
    }
    st = WS(s, W_SEQ_MAX);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        note_db(s, s->w);
        if (st != NULL)
            sqlite3_reset(st);
        (void)sq_rollback(be);
        return SOTTOD_STORE_ERR;
    }
    seq = sqlite3_column_int64(st, 0);
    {
        /* meta differs from our own reservation only if another writer
         * reserved seqs: skip past all of them. */
        int64_t meta = sqlite3_column_int64(st, 1);
        if (meta != s->reserved && meta > seq)
            seq = meta;
    }
    sqlite3_reset(st);
    if (seq > s->last_seq)
        s->last_seq = seq;
    s->saved_seq = s->last_seq;
    return SOTTOD_STORE_OK;
}

static int sq_commit(sottod_store_backend *be)
{
    sq_backend *s = SQ(be);

    if (s->poisoned) {
        /* An operation failed half-way without a savepoint: nothing of
         * this batch may be committed. */
        s->poisoned = false;
        (void)sq_rollback(be);
        return SOTTOD_STORE_ERR;
    }
    /* No counter of the envelopes ever sent (issue 12): meta holds a
     * RESERVATION, not the last seq. Once the seqs handed out pass it, the
     * next one is the last seq plus a random jump of 2^20..2^21-1, so the
     * stored value says nothing finer than "some millions" about how many
     * envelopes went through. Seqs stay unique and increasing across
     * deletes, reopens and a second writer (sq_begin). */
    int64_t reserve = s->reserved;
    if (s->last_seq > s->reserved) {
        sqlite3_stmt *st = WS(s, W_META_SEQ);

        reserve = s->last_seq + (int64_t)(1u << 20) + (int64_t)randombytes_uniform(1u << 20);
        if (st == NULL || sqlite3_bind_int64(st, 1, reserve) != SQLITE_OK ||
            step_done(st) != SOTTOD_STORE_OK) {
            note_db(s, s->w);
            return SOTTOD_STORE_ERR;
        }
    }
    if (exec_simple(s, W_COMMIT) != SOTTOD_STORE_OK) {
        note_db(s, s->w); /* e.g. disk full: the batch is not durable */
        return SOTTOD_STORE_ERR;
    }
    s->reserved = reserve;
    s->saved_seq = s->last_seq;
    return SOTTOD_STORE_OK;
}

static int sq_rollback(sottod_store_backend *be)
{
    sq_backend *s = SQ(be);

    s->last_seq = s->saved_seq; /* the batch's envelopes are gone */
    if (sqlite3_get_autocommit(s->w))
        return SOTTOD_STORE_OK; /* a failed COMMIT may have rolled back already */
    return exec_simple(s, W_ROLLBACK);
}

/* ---- write operations --------------------------------------------------------- */

static int device_insert(sq_backend *s, int64_t account_id, uint32_t device_id,
                         const sottod_device_new *dev, const char *date)
{
    sqlite3_stmt *st = WS(s, W_DEV_INSERT);

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, device_id);
    sqlite3_bind_int64(st, 3, dev->registration_id);
    sqlite3_bind_blob(st, 4, dev->auth_key, SOTTOD_AUTH_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, dev->identity_key, SOTTOD_PUBLIC_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, date, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, device_id == 1 ? 0 : dev->added_by);
    /* A device without a signer (device 1; the device of a recovery) has
     * no add signature. */
    if (device_id != 1 && dev->added_by != 0)
        sqlite3_bind_blob(st, 8, dev->add_signature, SOTTOD_SIGNATURE_BYTES, SQLITE_STATIC);
    return step_done(st);
}

/* SOTTOD_STORE_OK if a row exists, NOT_FOUND if not, ERR on failure. */
static int exists(sqlite3_stmt *st)
{
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return SOTTOD_STORE_OK;
    return rc == SQLITE_DONE ? SOTTOD_STORE_NOT_FOUND : SOTTOD_STORE_ERR;
}

static int account_exists_w(sq_backend *s, int64_t account_id)
{
    sqlite3_stmt *st = WS(s, W_ACC_CHECK);

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, account_id);
    return exists(st);
}

static int device_exists_w(sq_backend *s, sottod_addr a)
{
    sqlite3_stmt *st = WS(s, W_DEV_EXISTS);

    if (bind_addr(st, a) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    return exists(st);
}

/* Reads the account key and list of account_id with statement st (W_ or
 * R_ACC_LIST_GET, bound here) into out. NOT_FOUND if no account; ERR if
 * the stored values are malformed. */
static int read_list(sqlite3_stmt *st, int64_t account_id, sottod_device_list_rec *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL || sqlite3_bind_int64(st, 1, account_id) != SQLITE_OK)
        return SOTTOD_STORE_ERR;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = SOTTOD_STORE_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        rc = SOTTOD_STORE_ERR;
    } else if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
        rc = SOTTOD_STORE_OK; /* an API v1 account: no key, no list */
    } else {
        const void *p = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        int64_t v = sqlite3_column_int64(st, 2);

        rc = SOTTOD_STORE_ERR;
        if (col_blob(st, 0, out->account_key, SOTTOD_PUBLIC_KEY_BYTES) == SOTTOD_STORE_OK &&
            p != NULL && len > 0 && len <= SOTTOD_DEVICE_LIST_MAX_BYTES && v >= 1) {
            memcpy(out->list, p, len);
            out->len = len;
            out->version = (uint64_t)v;
            out->present = true;
            rc = SOTTOD_STORE_OK;
        }
    }
    sqlite3_reset(st);
    if (rc == SOTTOD_STORE_ERR && !out->present)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Stores list (and, with_key, its account key) for account_id. */
static int write_list(sq_backend *s, int64_t account_id, const sottod_device_list_rec *list,
                      bool with_key)
{
    sqlite3_stmt *st = WS(s, with_key ? W_ACC_KEY_SET : W_ACC_LIST_SET);
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_blob(st, 2, list->list, (int)list->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)list->version);
    if (with_key)
        sqlite3_bind_blob(st, 4, list->account_key, SOTTOD_PUBLIC_KEY_BYTES, SQLITE_STATIC);
    rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    return sqlite3_changes(s->w) == 1 ? SOTTOD_STORE_OK : SOTTOD_STORE_NOT_FOUND;
}

static int op_account_create(sq_backend *s, sottod_store_op *op)
{
    char date[SOTTOD_DATE_BYTES];
    sqlite3_stmt *st;
    int64_t id;
    int rc;

    sottod_store_date(now(s), date);
    st = WS(s, W_ACC_BY_NAME);
    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_text(st, 1, op->username, -1, SQLITE_STATIC);
    rc = exists(st);
    if (rc == SOTTOD_STORE_OK)
        return SOTTOD_STORE_EXISTS;
    if (rc != SOTTOD_STORE_NOT_FOUND)
        return rc;
    if (op->has_invite) {
        st = WS(s, W_INVITE_CONSUME);
        if (st == NULL)
            return SOTTOD_STORE_ERR;
        sqlite3_bind_blob(st, 1, op->invite_hash, sizeof(op->invite_hash), SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now(s));
        rc = step_done(st);
        if (rc != SOTTOD_STORE_OK)
            return rc;
        if (sqlite3_changes(s->w) != 1)
            return SOTTOD_STORE_BAD_INVITE;
    }
    st = WS(s, W_ACC_INSERT);
    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_text(st, 1, op->username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, date, -1, SQLITE_STATIC);
    rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    id = sqlite3_last_insert_rowid(s->w);
    rc = device_insert(s, id, 1, &op->dev, date);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    if (op->list != NULL) {
        rc = write_list(s, id, op->list, true);
        if (rc != SOTTOD_STORE_OK)
            return rc == SOTTOD_STORE_NOT_FOUND ? SOTTOD_STORE_ERR : rc;
    }
    op->res.u.account_create.account_id = id;
    return SOTTOD_STORE_OK;
}

/* Runs the delete statements idx[0..n) bound to ?1 = account_id (and ?2 = device_id). */
static int delete_all(sq_backend *s, const int *idx, size_t n, sottod_addr a, bool with_device,
                      uint32_t *first_changes)
{
    size_t i;

    for (i = 0; i < n; i++) {
        sqlite3_stmt *st = WS(s, idx[i]);
        int rc;

        if (st == NULL)
            return SOTTOD_STORE_ERR;
        sqlite3_bind_int64(st, 1, a.account_id);
        if (with_device)
            sqlite3_bind_int64(st, 2, a.device_id);
        rc = step_done(st);
        if (rc != SOTTOD_STORE_OK)
            return rc;
        if (i == 0)
            *first_changes = (uint32_t)sqlite3_changes(s->w);
    }
    return SOTTOD_STORE_OK;
}

static int op_account_delete(sq_backend *s, sottod_store_op *op)
{
    static const int idx[] = {W_ACC_DELETE, W_ACC_DEL_DEVICES, W_ACC_DEL_OTPK, W_ACC_DEL_ENV,
                              W_ACC_DEL_PROFILE};
    sottod_addr a = {.account_id = op->account_id};
    uint32_t n = 0;
    int rc = delete_all(s, idx, 5, a, false, &n);

    if (rc != SOTTOD_STORE_OK)
        return rc;
    op->res.u.deleted.deleted = n;
    return n == 0 ? SOTTOD_STORE_NOT_FOUND : SOTTOD_STORE_OK;
}

static int op_invite_create(sq_backend *s, sottod_store_op *op)
{
    sqlite3_stmt *st = WS(s, W_INVITE_INSERT);

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_blob(st, 1, op->invite_hash, sizeof(op->invite_hash), SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->expires_at);
    return step_done(st);
}

static int op_device_add(sq_backend *s, sottod_store_op *op)
{
    char date[SOTTOD_DATE_BYTES];
    sqlite3_stmt *st;
    uint32_t count = 0, pick = 2, want = op->dev.device_id;
    bool taken = false;
    int rc;

    rc = account_exists_w(s, op->account_id);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    st = WS(s, W_DEV_IDS);
    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, op->account_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t id = (uint32_t)sqlite3_column_int64(st, 0);

        count++;
        if (id == want)
            taken = true;
        if (id == pick)
            pick++; /* ids come sorted: the first gap wins */
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return SOTTOD_STORE_ERR;
    if (count >= op->max_devices)
        return SOTTOD_STORE_DEVICE_LIMIT;
    if (want != 0 && taken)
        return SOTTOD_STORE_EXISTS;
    if (want == 0)
        want = pick;
    sottod_store_date(now(s), date);
    rc = device_insert(s, op->account_id, want, &op->dev, date);
    if (rc == SOTTOD_STORE_OK)
        op->res.u.device_add.device_id = want;
    return rc;
}

static int op_device_remove(sq_backend *s, sottod_store_op *op)
{
    static const int idx[] = {W_DEV_DELETE, W_DEV_DEL_OTPK, W_DEV_DEL_ENV};
    uint32_t n = 0;
    int rc = delete_all(s, idx, 3, op->addr, true, &n);

    if (rc != SOTTOD_STORE_OK)
        return rc;
    op->res.u.deleted.deleted = n;
    return n == 0 ? SOTTOD_STORE_NOT_FOUND : SOTTOD_STORE_OK;
}

/* One device-set change and the new list, after checking that the stored
 * version is still op->prev_version (runs inside the op's savepoint). */
static int op_device_list_change(sq_backend *s, sottod_store_op *op)
{
    static const int del_all[] = {W_ACC_DEL_DEVICES, W_ACC_DEL_OTPK, W_ACC_DEL_ENV};
    sottod_device_list_rec *held = malloc(sizeof(*held));
    uint32_t added = 0, deleted = 0;
    int rc;

    if (held == NULL)
        return SOTTOD_STORE_NOMEM;
    rc = read_list(WS(s, W_ACC_LIST_GET), op->account_id, held);
    if (rc != SOTTOD_STORE_OK)
        goto out;
    if ((held->present ? held->version : 0) != op->prev_version) {
        rc = SOTTOD_STORE_CONFLICT;
        goto out;
    }
    switch (op->list_kind) {
    case SOTTOD_LIST_ADD:
        rc = op_device_add(s, op);
        added = op->res.u.device_add.device_id;
        break;
    case SOTTOD_LIST_REMOVE:
        rc = op_device_remove(s, op);
        deleted = op->res.u.deleted.deleted;
        break;
    case SOTTOD_LIST_RECOVER: {
        char date[SOTTOD_DATE_BYTES];
        sottod_addr a = {.account_id = op->account_id};

        rc = delete_all(s, del_all, 3, a, false, &deleted);
        if (rc != SOTTOD_STORE_OK)
            break;
        sottod_store_date(now(s), date);
        op->dev.added_by = 0;
        rc = device_insert(s, op->account_id, op->dev.device_id, &op->dev, date);
        added = op->dev.device_id;
        break;
    }
    case SOTTOD_LIST_SET:
        rc = SOTTOD_STORE_OK;
        break;
    default:
        rc = SOTTOD_STORE_INVALID;
        break;
    }
    if (rc != SOTTOD_STORE_OK)
        goto out;
    if (op->list != NULL) {
        rc = write_list(s, op->account_id, op->list,
                        op->list_kind == SOTTOD_LIST_SET && !held->present);
        if (rc == SOTTOD_STORE_NOT_FOUND)
            rc = SOTTOD_STORE_ERR;
        if (rc != SOTTOD_STORE_OK)
            goto out;
    }
    memset(&op->res.u, 0, sizeof(op->res.u));
    op->res.u.list_change.device_id = added;
    op->res.u.list_change.deleted = deleted;
out:
    free(held);
    return rc;
}

static int op_device_touch(sq_backend *s, sottod_store_op *op)
{
    char date[SOTTOD_DATE_BYTES];
    sqlite3_stmt *st = WS(s, W_DEV_TOUCH);
    int rc;

    if (bind_addr(st, op->addr) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    sottod_store_date(now(s), date);
    sqlite3_bind_text(st, 3, date, -1, SQLITE_STATIC);
    rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    if (sqlite3_changes(s->w) == 1)
        return SOTTOD_STORE_OK;
    return device_exists_w(s, op->addr);
}

static int op_signed_prekey_set(sq_backend *s, sottod_store_op *op)
{
    sqlite3_stmt *st = WS(s, W_SPK_SET);
    int rc;

    if (bind_addr(st, op->addr) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 3, op->key_id);
    sqlite3_bind_blob(st, 4, op->pub, sizeof(op->pub), SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, op->sig, sizeof(op->sig), SQLITE_STATIC);
    rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    return sqlite3_changes(s->w) == 1 ? SOTTOD_STORE_OK : SOTTOD_STORE_NOT_FOUND;
}

static int otpk_count_w(sq_backend *s, sottod_addr a, uint32_t *count)
{
    sqlite3_stmt *st = WS(s, W_OTPK_COUNT);
    int rc;

    if (bind_addr(st, a) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *count = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? SOTTOD_STORE_OK : SOTTOD_STORE_ERR;
}

static int op_one_time_prekeys_add(sq_backend *s, sottod_store_op *op)
{
    size_t i;
    int rc = device_exists_w(s, op->addr);

    if (rc != SOTTOD_STORE_OK)
        return rc;
    for (i = 0; i < op->n; i++) {
        sqlite3_stmt *st = WS(s, W_OTPK_INSERT);

        if (bind_addr(st, op->addr) != SOTTOD_STORE_OK)
            return SOTTOD_STORE_ERR;
        sqlite3_bind_int64(st, 3, op->keys[i].id);
        sqlite3_bind_blob(st, 4, op->keys[i].pub, SOTTOD_PUBLIC_KEY_BYTES, SQLITE_STATIC);
        rc = step_done(st);
        if (rc != SOTTOD_STORE_OK)
            return rc;
    }
    return otpk_count_w(s, op->addr, &op->res.u.one_time_prekeys_add.count);
}

/* Takes (selects and deletes) the lowest-id one-time prekey of b's device,
 * unless the device has no signed prekey (no bundle to complete). */
static int take_one_time_prekey(sq_backend *s, sottod_addr a, sottod_bundle *b)
{
    sqlite3_stmt *st = WS(s, W_OTPK_FIRST);
    int rc;

    if (!b->has_signed_prekey)
        return otpk_count_w(s, a, &b->one_time_prekeys_left);
    if (bind_addr(st, a) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        b->one_time_prekey.id = (uint32_t)sqlite3_column_int64(st, 0);
        rc = col_blob(st, 1, b->one_time_prekey.pub, SOTTOD_PUBLIC_KEY_BYTES);
        b->has_one_time_prekey = rc == SOTTOD_STORE_OK;
    } else {
        rc = rc == SQLITE_DONE ? SOTTOD_STORE_OK : SOTTOD_STORE_ERR;
    }
    sqlite3_reset(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    if (b->has_one_time_prekey) {
        st = WS(s, W_OTPK_DELETE);
        if (bind_addr(st, a) != SOTTOD_STORE_OK)
            return SOTTOD_STORE_ERR;
        sqlite3_bind_int64(st, 3, b->one_time_prekey.id);
        rc = step_done(st);
        if (rc != SOTTOD_STORE_OK)
            return rc;
        if (sqlite3_changes(s->w) != 1)
            return SOTTOD_STORE_ERR;
    }
    return otpk_count_w(s, a, &b->one_time_prekeys_left);
}

/* Reads one device row of W_BUNDLE_DEVS into b. */
static int read_bundle_row(sqlite3_stmt *st, sottod_bundle *b)
{
    memset(b, 0, sizeof(*b));
    b->device_id = (uint32_t)sqlite3_column_int64(st, 0);
    b->registration_id = (uint32_t)sqlite3_column_int64(st, 1);
    if (col_blob(st, 2, b->identity_key, SOTTOD_PUBLIC_KEY_BYTES) != SOTTOD_STORE_OK ||
        col_blob(st, 6, b->auth_key, SOTTOD_AUTH_KEY_BYTES) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
        b->has_signed_prekey = true;
        b->signed_prekey_id = (uint32_t)sqlite3_column_int64(st, 3);
        if (col_blob(st, 4, b->signed_prekey, SOTTOD_PUBLIC_KEY_BYTES) != SOTTOD_STORE_OK ||
            col_blob(st, 5, b->signed_prekey_sig, SOTTOD_SIGNATURE_BYTES) != SOTTOD_STORE_OK)
            return SOTTOD_STORE_ERR;
    }
    b->added_by = (uint32_t)sqlite3_column_int64(st, 7);
    if (sqlite3_column_type(st, 8) != SQLITE_NULL &&
        col_blob(st, 8, b->add_signature, SOTTOD_SIGNATURE_BYTES) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    return SOTTOD_STORE_OK;
}

static int op_bundle_take(sq_backend *s, sottod_store_op *op)
{
    sqlite3_stmt *st = WS(s, W_BUNDLE_DEVS);
    sottod_bundle *bundles = NULL; /* owned until moved into op */
    size_t n = 0, cap = 0, i;
    int rc = SOTTOD_STORE_ERR, step;

    if (bind_addr(st, op->addr) != SOTTOD_STORE_OK)
        goto out;
    /* Collect the device rows first, then take prekeys: no statement is
     * left running while others modify the database. */
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            sottod_bundle *nb = realloc(bundles, ncap * sizeof(*nb));

            if (nb == NULL) {
                rc = SOTTOD_STORE_NOMEM;
                break;
            }
            bundles = nb;
            cap = ncap;
        }
        if (read_bundle_row(st, &bundles[n]) != SOTTOD_STORE_OK)
            break;
        n++;
    }
    sqlite3_reset(st);
    if (step != SQLITE_DONE)
        goto out;
    rc = SOTTOD_STORE_NOT_FOUND;
    if (n == 0)
        goto out;
    for (i = 0; i < n; i++) {
        sottod_addr a = {.account_id = op->addr.account_id, .device_id = bundles[i].device_id};

        /* skip_otpk (sottod_store_bundle_take_ex): the per-target limit on
         * one-time prekey fetches ran out; hand out the signed prekey only. */
        rc = op->skip_otpk ? otpk_count_w(s, a, &bundles[i].one_time_prekeys_left)
                           : take_one_time_prekey(s, a, &bundles[i]);
        if (rc != SOTTOD_STORE_OK)
            goto out;
    }
    op->out_list = malloc(sizeof(*op->out_list));
    if (op->out_list == NULL) {
        rc = SOTTOD_STORE_NOMEM;
        goto out;
    }
    rc = read_list(WS(s, W_ACC_LIST_GET), op->addr.account_id, op->out_list);
    if (rc != SOTTOD_STORE_OK) {
        rc = rc == SOTTOD_STORE_NOT_FOUND ? SOTTOD_STORE_ERR : rc;
        goto out;
    }
    op->out_bundles = bundles;
    op->res.u.bundle_take.bundles = bundles;
    op->res.u.bundle_take.n = n;
    op->res.u.bundle_take.list = op->out_list;
    bundles = NULL;
    rc = SOTTOD_STORE_OK;
out:
    free(bundles);
    return rc;
}

static int depth_sub(sq_backend *s, sottod_addr a, int64_t n);

/* Is envelope e already queued for its device? OK if the row with its id
 * holds the same body (the same envelope: a retry), EXISTS if that id holds
 * other bytes, NOT_FOUND if no row has the id, ERR on failure. */
static int same_envelope(sq_backend *s, const sottod_envelope_in *e)
{
    sqlite3_stmt *st = WS(s, W_ENV_SAME);
    const void *body;
    int rc;

    if (bind_addr(st, e->to) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_blob(st, 3, e->id, SOTTOD_ENVELOPE_ID_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        body = sqlite3_column_blob(st, 0);
        rc = (body != NULL && (size_t)sqlite3_column_bytes(st, 0) == e->body_len &&
              sodium_memcmp(body, e->body, e->body_len) == 0)
                 ? SOTTOD_STORE_OK
                 : SOTTOD_STORE_EXISTS;
    } else if (rc == SQLITE_DONE) {
        rc = SOTTOD_STORE_NOT_FOUND;
    } else {
        note_db(s, s->w);
        s->err_fresh = true;
        rc = SOTTOD_STORE_ERR;
    }
    sqlite3_reset(st);
    return rc;
}

/* Queues one envelope. Order matters for atomicity without a savepoint:
 * the only write before a refusal is none (or is undone before returning).
 * A retry of the same envelope (same id, same body) is recognised by the
 * unique index and counted; it is accepted even on a full queue, since it
 * adds nothing. */
/* The per-sender cap (issue 12) that applies to e: queue_sealed_max for a
 * sealed envelope (source_id 0), queue_per_sender_max for another account's;
 * 0 = none (also for the account's own devices: sync copies). */
static uint32_t sender_cap(const sq_backend *s, const sottod_envelope_in *e)
{
    if (e->source_id == 0)
        return s->base.cfg->queue_sealed_max;
    if (e->source_id == e->to.account_id)
        return 0;
    return s->base.cfg->queue_per_sender_max;
}

/* OK if fewer than cap envelopes from e's sender wait in e's device queue,
 * SENDER_FULL if not (or the very same envelope is queued: a retry, counted
 * as a duplicate, then *dup is set), ERR on failure. Nothing is written.
 * Cheap while the device's whole queue is shorter than cap (its depth
 * counter, one key lookup); only a deeper queue is counted per sender, an
 * index range of at most cap entries (~50 us for 1000). */
static int sender_room(sq_backend *s, sottod_store_op *op, const sottod_envelope_in *e,
                       uint32_t cap, bool *dup)
{
    sqlite3_stmt *st = WS(s, W_DEPTH_GET);
    int64_t n = 0;
    int rc;

    *dup = false;
    if (bind_addr(st, e->to) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) { /* no such device: enqueue_one says STALE */
        note_db(s, s->w);
        s->err_fresh = true;
        sqlite3_reset(st);
        return SOTTOD_STORE_ERR;
    }
    sqlite3_reset(st);
    if (n < (int64_t)cap)
        return SOTTOD_STORE_OK;
    st = WS(s, W_ENV_SOURCE_COUNT);
    if (bind_addr(st, e->to) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 3, e->source_id);
    sqlite3_bind_int64(st, 4, (int64_t)cap);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
        rc = SOTTOD_STORE_OK;
    } else {
        note_db(s, s->w);
        s->err_fresh = true;
        rc = SOTTOD_STORE_ERR;
    }
    sqlite3_reset(st);
    if (rc != SOTTOD_STORE_OK || n < (int64_t)cap)
        return rc;
    rc = same_envelope(s, e);
    if (rc == SOTTOD_STORE_OK) {
        op->res.u.enqueue.duplicates++;
        *dup = true;
        return SOTTOD_STORE_OK;
    }
    if (rc != SOTTOD_STORE_NOT_FOUND && rc != SOTTOD_STORE_EXISTS)
        return rc;
    op->res.u.enqueue.failed = e->to;
    op->res.u.enqueue.sealed = e->source_id == 0;
    return SOTTOD_STORE_SENDER_FULL;
}

static int enqueue_one(sq_backend *s, sottod_store_op *op, const sottod_envelope_in *e)
{
    sqlite3_stmt *st = WS(s, W_DEPTH_INC);
    uint32_t cap = sender_cap(s, e);
    int rc;

    if (cap > 0) {
        bool dup = false;
        rc = sender_room(s, op, e, cap, &dup);
        if (rc != SOTTOD_STORE_OK || dup)
            return rc;
    }
    if (bind_addr(st, e->to) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 3, s->base.cfg->max_queue);
    rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    if (sqlite3_changes(s->w) != 1) {
        /* No room, or no such device: nothing was written. A duplicate on
         * a full queue is still a duplicate. */
        rc = device_exists_w(s, e->to);
        op->res.u.enqueue.failed = e->to;
        if (rc == SOTTOD_STORE_NOT_FOUND)
            return SOTTOD_STORE_STALE;
        if (rc != SOTTOD_STORE_OK)
            return rc;
        rc = same_envelope(s, e);
        if (rc == SOTTOD_STORE_OK) {
            memset(&op->res.u.enqueue.failed, 0, sizeof(op->res.u.enqueue.failed));
            op->res.u.enqueue.duplicates++;
            return SOTTOD_STORE_OK;
        }
        return rc == SOTTOD_STORE_NOT_FOUND ? SOTTOD_STORE_QUEUE_FULL : rc;
    }
    st = WS(s, W_ENV_INSERT);
    if (bind_addr(st, e->to) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 3, ++s->last_seq);
    sqlite3_bind_blob(st, 4, e->id, SOTTOD_ENVELOPE_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, e->expires_at);
    sqlite3_bind_blob(st, 6, e->body, (int)e->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, e->source_id);
    rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    if (sqlite3_changes(s->w) == 0) {
        /* Nothing inserted: give the slot back first, then find out why.
         * Only the very same envelope already queued is a success. */
        int why = same_envelope(s, e);

        rc = depth_sub(s, e->to, 1);
        if (rc != SOTTOD_STORE_OK)
            return rc;
        if (why == SOTTOD_STORE_OK) {
            op->res.u.enqueue.duplicates++;
            return SOTTOD_STORE_OK;
        }
        if (why == SOTTOD_STORE_EXISTS) {
            op->res.u.enqueue.failed = e->to; /* id in use with other bytes */
            return SOTTOD_STORE_EXISTS;
        }
        if (why == SOTTOD_STORE_NOT_FOUND) { /* the seq was taken by another writer */
            set_err(s, "envelope seq %lld already used by another writer of this database",
                    (long long)s->last_seq);
            s->err_fresh = true;
        }
        return SOTTOD_STORE_ERR;
    }
    op->res.u.enqueue.queued++;
    return SOTTOD_STORE_OK;
}

static int op_envelopes_enqueue(sq_backend *s, sottod_store_op *op)
{
    size_t i;
    int rc;

    for (i = 0; i < op->n; i++) {
        rc = enqueue_one(s, op, &op->envs[i]);
        if (rc != SOTTOD_STORE_OK)
            return rc;
    }
    return SOTTOD_STORE_OK;
}

static int depth_sub(sq_backend *s, sottod_addr a, int64_t n)
{
    sqlite3_stmt *st = WS(s, W_DEPTH_SUB);

    if (bind_addr(st, a) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 3, n);
    return step_done(st);
}

static int op_envelopes_delete(sq_backend *s, sottod_store_op *op)
{
    uint32_t deleted = 0;
    size_t i;
    int rc;

    for (i = 0; i < op->n; i++) {
        sqlite3_stmt *st = WS(s, W_ENV_DELETE);

        if (bind_addr(st, op->addr) != SOTTOD_STORE_OK)
            return SOTTOD_STORE_ERR;
        sqlite3_bind_blob(st, 3, op->ids + i * SOTTOD_ENVELOPE_ID_BYTES, SOTTOD_ENVELOPE_ID_BYTES,
                          SQLITE_STATIC);
        rc = step_done(st);
        if (rc != SOTTOD_STORE_OK)
            return rc;
        deleted += (uint32_t)sqlite3_changes(s->w);
    }
    if (deleted > 0) {
        rc = depth_sub(s, op->addr, deleted);
        if (rc != SOTTOD_STORE_OK)
            return rc;
    }
    op->res.u.deleted.deleted = deleted;
    return SOTTOD_STORE_OK;
}

static int op_envelopes_expire(sq_backend *s, sottod_store_op *op)
{
    int64_t t = now(s);
    sqlite3_stmt *st = WS(s, W_ENV_EXPIRED_COUNTS);
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, t);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sottod_addr a = {.account_id = sqlite3_column_int64(st, 0),
                         .device_id = (uint32_t)sqlite3_column_int64(st, 1)};

        /* W_DEPTH_SUB is a different statement: updating devices while this
         * SELECT over envelopes is open is allowed. */
        if (depth_sub(s, a, sqlite3_column_int64(st, 2)) != SOTTOD_STORE_OK) {
            rc = SQLITE_ERROR;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return SOTTOD_STORE_ERR;
    st = WS(s, W_ENV_EXPIRE);
    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, t);
    rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    op->res.u.deleted.deleted = (uint32_t)sqlite3_changes(s->w);
    return SOTTOD_STORE_OK;
}

static int op_attachment(sq_backend *s, sottod_store_op *op)
{
    int idx = op->res.type == SOTTOD_OP_ATTACHMENT_CREATE   ? W_ATT_INSERT
              : op->res.type == SOTTOD_OP_ATTACHMENT_UPDATE ? W_ATT_UPDATE
                                                            : W_ATT_DELETE;
    sqlite3_stmt *st = WS(s, idx);
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_blob(st, 1, op->att.id, SOTTOD_ATTACHMENT_ID_BYTES, SQLITE_STATIC);
    if (idx == W_ATT_INSERT) {
        sqlite3_bind_int64(st, 2, (int64_t)op->att.size);
        /* Stored times are dates (issue 12): 00:00 UTC of the day. */
        sqlite3_bind_int64(st, 3, op->att.created_at - op->att.created_at % 86400);
        sqlite3_bind_int64(st, 4, op->att.expires_at);
        sqlite3_bind_int(st, 5, op->att.referenced ? 1 : 0);
    } else if (idx == W_ATT_UPDATE) {
        sqlite3_bind_int64(st, 2, (int64_t)op->att.size);
        sqlite3_bind_int64(st, 3, op->att.expires_at);
        sqlite3_bind_int(st, 4, op->att.referenced ? 1 : 0);
    }
    rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    if (idx != W_ATT_INSERT && sqlite3_changes(s->w) != 1)
        return SOTTOD_STORE_NOT_FOUND;
    return SOTTOD_STORE_OK;
}

/* ---- key transparency (writer) ------------------------------------------------ */

static int kt_log_count_w(sq_backend *s, uint64_t *n)
{
    sqlite3_stmt *st = WS(s, W_KT_LOG_COUNT);
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? SOTTOD_STORE_OK : SOTTOD_STORE_ERR;
}

static int kt_head_put(sq_backend *s, const sottod_kt_head_rec *h)
{
    sqlite3_stmt *st = WS(s, W_KT_HEAD_PUT);

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, (int64_t)h->size);
    sqlite3_bind_int64(st, 2, (int64_t)h->ts_ms);
    sqlite3_bind_blob(st, 3, h->signature, SOTTOD_KT_SIG_BYTES, SQLITE_STATIC);
    int rc = step_done(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    st = WS(s, W_KT_HEAD_PRUNE);
    return st != NULL ? step_done(st) : SOTTOD_STORE_ERR;
}

/* One KT batch: refuses (CONFLICT) before any write unless the rows start
 * right after the stored log; runs inside the op's savepoint. */
static int op_kt_append(sq_backend *s, sottod_store_op *op)
{
    uint64_t count = 0;
    size_t i;
    int rc = kt_log_count_w(s, &count);

    if (rc != SOTTOD_STORE_OK)
        return rc;
    if (op->kt_rows[0].pos != count)
        return SOTTOD_STORE_CONFLICT;
    for (i = 0; i < op->n; i++) {
        const sottod_kt_log_row *r = &op->kt_rows[i];
        sqlite3_stmt *st = WS(s, W_KT_LOG_INSERT);

        if (st == NULL)
            return SOTTOD_STORE_ERR;
        sqlite3_bind_int64(st, 1, (int64_t)r->pos);
        sqlite3_bind_int64(st, 2, (int64_t)r->ts_ms);
        sqlite3_bind_blob(st, 3, r->index, SOTTOD_KT_HASH_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)r->counter);
        sqlite3_bind_blob(st, 5, r->commitment, SOTTOD_KT_HASH_BYTES, SQLITE_STATIC);
        rc = step_done(st);
        if (rc != SOTTOD_STORE_OK)
            return rc == SOTTOD_STORE_EXISTS ? SOTTOD_STORE_CONFLICT : rc;
    }
    for (i = 0; i < op->kt_n_entries; i++) {
        const sottod_kt_entry *e = &op->kt_entries[i];
        sqlite3_stmt *st = WS(s, W_KT_ENTRY_PUT);

        if (st == NULL)
            return SOTTOD_STORE_ERR;
        sqlite3_bind_text(st, 1, e->username, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, e->index, SOTTOD_KT_HASH_BYTES, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, e->vrf_proof, SOTTOD_KT_VRF_PROOF_BYTES, SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, e->opening, SOTTOD_KT_HASH_BYTES, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, e->value, SOTTOD_KT_VALUE_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, (int64_t)e->counter);
        sqlite3_bind_int64(st, 7, (int64_t)e->pos);
        rc = step_done(st);
        if (rc != SOTTOD_STORE_OK)
            return rc == SOTTOD_STORE_EXISTS ? SOTTOD_STORE_CONFLICT : rc;
    }
    return kt_head_put(s, &op->kt_head);
}

static int op_kt_head_add(sq_backend *s, sottod_store_op *op)
{
    uint64_t count = 0;
    int rc = kt_log_count_w(s, &count);

    if (rc != SOTTOD_STORE_OK)
        return rc;
    if (op->kt_head.size > count)
        return SOTTOD_STORE_CONFLICT;
    return kt_head_put(s, &op->kt_head);
}

static int op_kt_cosig_add(sq_backend *s, sottod_store_op *op)
{
    const sottod_kt_cosig_rec *c = &op->kt_cosig;
    sqlite3_stmt *st = WS(s, W_KT_HEAD_CHECK);
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, (int64_t)c->size);
    sqlite3_bind_int64(st, 2, (int64_t)c->ts_ms);
    rc = exists(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    st = WS(s, W_KT_COSIG_PUT);
    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, (int64_t)c->size);
    sqlite3_bind_int64(st, 2, (int64_t)c->ts_ms);
    sqlite3_bind_blob(st, 3, c->auditor_key, SOTTOD_KT_KEY_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, c->signature, SOTTOD_KT_SIG_BYTES, SQLITE_STATIC);
    return step_done(st);
}

/* Stores the logged-in account's profile ciphertext (replacing the old one).
 * NOT_FOUND if the account is gone. */
static int op_profile_set(sq_backend *s, sottod_store_op *op)
{
    sqlite3_stmt *st = WS(s, W_ACC_CHECK);
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, op->account_id);
    rc = exists(st);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    st = WS(s, W_PROFILE_PUT);
    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, op->account_id);
    sqlite3_bind_blob(st, 2, op->blob, (int)op->blob_len, SQLITE_STATIC);
    return step_done(st);
}

/* Sets (blob_len 16) or clears (blob NULL) an account's delivery token.
 * NOT_FOUND if the account is gone. One UPDATE: atomic on its own. */
static int op_delivery_token_set(sq_backend *s, sottod_store_op *op)
{
    sqlite3_stmt *st = WS(s, W_TOKEN_SET);
    int rc;

    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, op->account_id);
    if (op->blob != NULL)
        sqlite3_bind_blob(st, 2, op->blob, (int)op->blob_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    rc = step_done(st);
    if (rc == SOTTOD_STORE_OK && sqlite3_changes(s->w) != 1)
        rc = SOTTOD_STORE_NOT_FOUND;
    return rc;
}

/* True for the frequent operations that are atomic without a savepoint:
 * they refuse before writing (see enqueue_one) or cannot be refused. */
static bool atomic_without_savepoint(const sottod_store_op *op)
{
    switch (op->res.type) {
    case SOTTOD_OP_ENVELOPES_ENQUEUE:
        return op->n == 1;
    case SOTTOD_OP_ENVELOPES_DELETE:
    case SOTTOD_OP_ENVELOPES_EXPIRE:
    case SOTTOD_OP_DEVICE_TOUCH:
    case SOTTOD_OP_BARRIER:
        return true;
    default:
        return false;
    }
}

static int sq_exec(sottod_store_backend *be, sottod_store_op *op)
{
    sq_backend *s = SQ(be);
    bool sp = !atomic_without_savepoint(op);
    int64_t seq_before = s->last_seq;
    int rc;

    s->err_fresh = false;
    if (sp && exec_simple(s, W_SAVEPOINT) != SOTTOD_STORE_OK) {
        op->res.status = SOTTOD_STORE_ERR;
        return SOTTOD_STORE_ERR;
    }
    switch (op->res.type) {
    case SOTTOD_OP_ACCOUNT_CREATE:
        rc = op_account_create(s, op);
        break;
    case SOTTOD_OP_ACCOUNT_DELETE:
        rc = op_account_delete(s, op);
        break;
    case SOTTOD_OP_INVITE_CREATE:
        rc = op_invite_create(s, op);
        break;
    case SOTTOD_OP_DEVICE_ADD:
        rc = op_device_add(s, op);
        break;
    case SOTTOD_OP_DEVICE_REMOVE:
        rc = op_device_remove(s, op);
        break;
    case SOTTOD_OP_DEVICE_TOUCH:
        rc = op_device_touch(s, op);
        break;
    case SOTTOD_OP_SIGNED_PREKEY_SET:
        rc = op_signed_prekey_set(s, op);
        break;
    case SOTTOD_OP_ONE_TIME_PREKEYS_ADD:
        rc = op_one_time_prekeys_add(s, op);
        break;
    case SOTTOD_OP_BUNDLE_TAKE:
        rc = op_bundle_take(s, op);
        break;
    case SOTTOD_OP_ENVELOPES_ENQUEUE:
        rc = op_envelopes_enqueue(s, op);
        break;
    case SOTTOD_OP_ENVELOPES_DELETE:
        rc = op_envelopes_delete(s, op);
        break;
    case SOTTOD_OP_ENVELOPES_EXPIRE:
        rc = op_envelopes_expire(s, op);
        break;
    case SOTTOD_OP_ATTACHMENT_CREATE:
    case SOTTOD_OP_ATTACHMENT_UPDATE:
    case SOTTOD_OP_ATTACHMENT_DELETE:
        rc = op_attachment(s, op);
        break;
    case SOTTOD_OP_BARRIER:
        rc = SOTTOD_STORE_OK;
        break;
    case SOTTOD_OP_DELIVERY_TOKEN_SET:
        rc = op_delivery_token_set(s, op);
        break;
    case SOTTOD_OP_SEALED_ROOT_MARK: {
        /* one INSERT OR IGNORE: atomic on its own */
        sqlite3_stmt *st = WS(s, W_SEALED_MARK);
        rc = st != NULL ? step_done(st) : SOTTOD_STORE_ERR;
        break;
    }
    case SOTTOD_OP_DEVICE_LIST_CHANGE:
        rc = op_device_list_change(s, op);
        break;
    case SOTTOD_OP_KT_APPEND:
        rc = op_kt_append(s, op);
        break;
    case SOTTOD_OP_KT_HEAD_ADD:
        rc = op_kt_head_add(s, op);
        break;
    case SOTTOD_OP_KT_COSIG_ADD:
        rc = op_kt_cosig_add(s, op);
        break;
    case SOTTOD_OP_PROFILE_SET:
        rc = op_profile_set(s, op);
        break;
    default:
        rc = SOTTOD_STORE_INVALID;
        break;
    }
    if (rc == SOTTOD_STORE_ERR && !s->err_fresh)
        note_db(s, s->w); /* before a ROLLBACK TO replaces the error */
    if (rc != SOTTOD_STORE_OK && op->res.type == SOTTOD_OP_BUNDLE_TAKE) {
        op->res.u.bundle_take.bundles = NULL;
        op->res.u.bundle_take.n = 0;
        op->res.u.bundle_take.list = NULL;
    }
    if (rc != SOTTOD_STORE_OK && op->res.type == SOTTOD_OP_DEVICE_LIST_CHANGE)
        memset(&op->res.u, 0, sizeof(op->res.u));
    if (rc != SOTTOD_STORE_OK && op->res.type == SOTTOD_OP_ENVELOPES_ENQUEUE)
        op->res.u.enqueue.queued = 0;
    if (sp) {
        if (rc != SOTTOD_STORE_OK && exec_simple(s, W_ROLLBACK_TO) != SOTTOD_STORE_OK)
            s->poisoned = true;
        if (exec_simple(s, W_RELEASE) != SOTTOD_STORE_OK)
            s->poisoned = true;
    } else if (rc == SOTTOD_STORE_ERR) {
        s->poisoned = true; /* may have written half of it */
    }
    if (rc != SOTTOD_STORE_OK)
        s->last_seq = seq_before; /* seqs of undone inserts may be reused */
    op->res.status = rc;
    return rc;
}

/* ---- reads ------------------------------------------------------------------ */

static int read_device(sqlite3_stmt *st, sottod_device *d)
{
    memset(d, 0, sizeof(*d));
    d->device_id = (uint32_t)sqlite3_column_int64(st, 0);
    d->registration_id = (uint32_t)sqlite3_column_int64(st, 1);
    if (col_blob(st, 2, d->auth_key, SOTTOD_AUTH_KEY_BYTES) != SOTTOD_STORE_OK ||
        col_blob(st, 3, d->identity_key, SOTTOD_PUBLIC_KEY_BYTES) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        d->has_signed_prekey = true;
        d->signed_prekey_id = (uint32_t)sqlite3_column_int64(st, 4);
        if (col_blob(st, 5, d->signed_prekey, SOTTOD_PUBLIC_KEY_BYTES) != SOTTOD_STORE_OK ||
            col_blob(st, 6, d->signed_prekey_sig, SOTTOD_SIGNATURE_BYTES) != SOTTOD_STORE_OK)
            return SOTTOD_STORE_ERR;
    }
    col_text(st, 7, d->created, sizeof(d->created));
    col_text(st, 8, d->last_seen, sizeof(d->last_seen));
    d->queue_depth = (uint32_t)sqlite3_column_int64(st, 9);
    d->added_by = (uint32_t)sqlite3_column_int64(st, 10);
    if (sqlite3_column_type(st, 11) != SQLITE_NULL &&
        col_blob(st, 11, d->add_signature, SOTTOD_SIGNATURE_BYTES) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    return SOTTOD_STORE_OK;
}

static int sq_account_lookup(sottod_store_backend *be, const char *username, sottod_account *out)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_ACC_LOOKUP);
    if (st == NULL)
        goto out;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        memset(out, 0, sizeof(*out));
        out->account_id = sqlite3_column_int64(st, 0);
        col_text(st, 1, out->username, sizeof(out->username));
        col_text(st, 2, out->created, sizeof(out->created));
        rc = SOTTOD_STORE_OK;
        break;
    case SQLITE_DONE:
        rc = SOTTOD_STORE_NOT_FOUND;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_device_get(sottod_store_backend *be, sottod_addr a, sottod_device *out)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_DEV_GET);
    if (bind_addr(st, a) != SOTTOD_STORE_OK)
        goto out;
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        rc = read_device(st, out);
        break;
    case SQLITE_DONE:
        rc = SOTTOD_STORE_NOT_FOUND;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* Lists devices with the reader mutex held. */
static int devices_list_locked(sq_backend *s, int64_t account_id, sottod_device *out, size_t max,
                               size_t *n)
{
    sqlite3_stmt *st = RS(s, R_DEV_LIST);
    size_t count = 0;
    int rc;

    *n = 0;
    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_int64(st, 1, account_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && count < max) {
        if (read_device(st, &out[count]) != SOTTOD_STORE_OK) {
            rc = SQLITE_CORRUPT;
            break;
        }
        count++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return SOTTOD_STORE_ERR;
    *n = count;
    if (count == 0) {
        st = RS(s, R_ACC_CHECK);
        if (st == NULL)
            return SOTTOD_STORE_ERR;
        sqlite3_bind_int64(st, 1, account_id);
        return exists(st);
    }
    return SOTTOD_STORE_OK;
}

static int sq_devices_list(sottod_store_backend *be, int64_t account_id, sottod_device *out,
                           size_t max, size_t *n)
{
    sq_backend *s = SQ(be);
    int rc;

    pthread_mutex_lock(&s->rmu);
    rc = devices_list_locked(s, account_id, out, max, n);
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_device_list_get(sottod_store_backend *be, int64_t account_id, sottod_device *out,
                              size_t max, size_t *n, sottod_device_list_rec *list)
{
    sq_backend *s = SQ(be);
    int rc;

    *n = 0;
    pthread_mutex_lock(&s->rmu);
    /* One read transaction: the list and the device rows of one commit. */
    rc = step_done(RS(s, R_BEGIN));
    if (rc == SOTTOD_STORE_OK) {
        rc = read_list(RS(s, R_ACC_LIST_GET), account_id, list);
        if (rc == SOTTOD_STORE_OK && max > 0)
            rc = devices_list_locked(s, account_id, out, max, n);
        (void)step_done(RS(s, R_COMMIT));
    }
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* Single-integer query on the reader with ?1 ?2 = addr. */
static int read_count(sq_backend *s, int idx, sottod_addr a, uint32_t *out)
{
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, idx);
    if (bind_addr(st, a) != SOTTOD_STORE_OK)
        goto out;
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        *out = (uint32_t)sqlite3_column_int64(st, 0);
        rc = SOTTOD_STORE_OK;
        break;
    case SQLITE_DONE:
        rc = SOTTOD_STORE_NOT_FOUND;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_one_time_prekey_count(sottod_store_backend *be, sottod_addr a, uint32_t *count)
{
    return read_count(SQ(be), R_OTPK_COUNT, a, count);
}

static int sq_queue_depth(sottod_store_backend *be, sottod_addr a, uint32_t *depth)
{
    return read_count(SQ(be), R_DEPTH, a, depth);
}

static int sq_envelopes_list(sottod_store_backend *be, sottod_addr a, int64_t after_seq,
                             size_t limit, sottod_envelope_fn fn, void *arg, int64_t *last_seq)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int64_t last = after_seq;
    int rc = SOTTOD_STORE_ERR, step;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_ENV_LIST);
    if (bind_addr(st, a) != SOTTOD_STORE_OK)
        goto out;
    sqlite3_bind_int64(st, 3, after_seq);
    sqlite3_bind_int64(st, 4, now(s));
    sqlite3_bind_int64(st, 5, limit > INT32_MAX ? INT32_MAX : (int64_t)limit);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        sottod_envelope e;

        memset(&e, 0, sizeof(e));
        e.seq = sqlite3_column_int64(st, 0);
        if (col_blob(st, 1, e.id, SOTTOD_ENVELOPE_ID_BYTES) != SOTTOD_STORE_OK)
            break;
        e.expires_at = sqlite3_column_int64(st, 2);
        e.body = sqlite3_column_blob(st, 3);
        e.body_len = (size_t)sqlite3_column_bytes(st, 3);
        last = e.seq;
        if (fn(arg, &e) != 0) {
            step = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    if (step == SQLITE_DONE)
        rc = SOTTOD_STORE_OK;
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    if (last_seq != NULL)
        *last_seq = last;
    return rc;
}

static int read_attachment(sqlite3_stmt *st, sottod_attachment *att)
{
    memset(att, 0, sizeof(*att));
    if (col_blob(st, 0, att->id, SOTTOD_ATTACHMENT_ID_BYTES) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    att->size = (uint64_t)sqlite3_column_int64(st, 1);
    att->created_at = sqlite3_column_int64(st, 2);
    att->expires_at = sqlite3_column_int64(st, 3);
    att->referenced = sqlite3_column_int(st, 4) != 0;
    return SOTTOD_STORE_OK;
}

static int sq_attachment_get(sottod_store_backend *be, const uint8_t *id, sottod_attachment *out)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_ATT_GET);
    if (st == NULL)
        goto out;
    sqlite3_bind_blob(st, 1, id, SOTTOD_ATTACHMENT_ID_BYTES, SQLITE_STATIC);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        rc = read_attachment(st, out);
        break;
    case SQLITE_DONE:
        rc = SOTTOD_STORE_NOT_FOUND;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_attachments_expired(sottod_store_backend *be, size_t limit, sottod_attachment_fn fn,
                                  void *arg)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR, step;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_ATT_EXPIRED);
    if (st == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, now(s));
    sqlite3_bind_int64(st, 2, limit > INT32_MAX ? INT32_MAX : (int64_t)limit);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        sottod_attachment att;

        if (read_attachment(st, &att) != SOTTOD_STORE_OK)
            break;
        if (fn(arg, &att) != 0) {
            step = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    if (step == SQLITE_DONE)
        rc = SOTTOD_STORE_OK;
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_queue_depth_total(sottod_store_backend *be, uint64_t *total)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_DEPTH_TOTAL);
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
        *total = (uint64_t)sqlite3_column_int64(st, 0);
        rc = SOTTOD_STORE_OK;
    }
    if (st != NULL)
        sqlite3_reset(st);
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* ---- key transparency (reads) --------------------------------------------------- */

static int sq_kt_log_size(sottod_store_backend *be, uint64_t *n)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_KT_LOG_COUNT);
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
        *n = (uint64_t)sqlite3_column_int64(st, 0);
        rc = SOTTOD_STORE_OK;
    }
    if (st != NULL)
        sqlite3_reset(st);
    if (rc != SOTTOD_STORE_OK)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_kt_log_read(sottod_store_backend *be, uint64_t from, size_t max,
                          sottod_kt_log_row *out, size_t *n)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    size_t k = 0;
    int rc = SOTTOD_STORE_ERR, step = SQLITE_ERROR;

    *n = 0;
    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_KT_LOG_READ);
    if (st == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, (int64_t)from);
    sqlite3_bind_int64(st, 2, max > INT32_MAX ? INT32_MAX : (int64_t)max);
    while (k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
        sottod_kt_log_row *r = &out[k];

        r->pos = (uint64_t)sqlite3_column_int64(st, 0);
        r->ts_ms = (uint64_t)sqlite3_column_int64(st, 1);
        r->counter = (uint64_t)sqlite3_column_int64(st, 3);
        if (col_blob(st, 2, r->index, SOTTOD_KT_HASH_BYTES) != SOTTOD_STORE_OK ||
            col_blob(st, 4, r->commitment, SOTTOD_KT_HASH_BYTES) != SOTTOD_STORE_OK) {
            step = SQLITE_CORRUPT;
            break;
        }
        k++;
    }
    sqlite3_reset(st);
    if (step == SQLITE_DONE || step == SQLITE_ROW) {
        *n = k;
        rc = SOTTOD_STORE_OK;
    }
out:
    if (rc != SOTTOD_STORE_OK)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* Reads an entry from columns c..c+6 (KT_ENTRY_COLS order). */
static int read_kt_entry(sqlite3_stmt *st, int c, sottod_kt_entry *e)
{
    memset(e, 0, sizeof(*e));
    col_text(st, c, e->username, sizeof(e->username));
    if (col_blob(st, c + 1, e->index, SOTTOD_KT_HASH_BYTES) != SOTTOD_STORE_OK ||
        col_blob(st, c + 2, e->vrf_proof, SOTTOD_KT_VRF_PROOF_BYTES) != SOTTOD_STORE_OK ||
        col_blob(st, c + 3, e->opening, SOTTOD_KT_HASH_BYTES) != SOTTOD_STORE_OK ||
        col_blob(st, c + 4, e->value, SOTTOD_KT_VALUE_BYTES) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    e->counter = (uint64_t)sqlite3_column_int64(st, c + 5);
    e->pos = (uint64_t)sqlite3_column_int64(st, c + 6);
    return SOTTOD_STORE_OK;
}

static int sq_kt_entry_get(sottod_store_backend *be, const char *username, sottod_kt_entry *out)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_KT_ENTRY_GET);
    if (st == NULL)
        goto out;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        rc = read_kt_entry(st, 0, out);
        break;
    case SQLITE_DONE:
        rc = SOTTOD_STORE_NOT_FOUND;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_profile_get(sottod_store_backend *be, const char *username, uint8_t **out,
                          size_t *len)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_PROFILE_GET);
    if (st == NULL)
        goto out;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW: {
        const void *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (p == NULL || n == 0 || n > SOTTOD_PROFILE_MAX)
            break;
        *out = malloc(n);
        if (*out == NULL) {
            rc = SOTTOD_STORE_NOMEM;
            break;
        }
        memcpy(*out, p, n);
        *len = n;
        rc = SOTTOD_STORE_OK;
        break;
    }
    case SQLITE_DONE:
        rc = SOTTOD_STORE_NOT_FOUND;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_delivery_token_get(sottod_store_backend *be, int64_t account_id,
                                 uint8_t out[SOTTOD_DELIVERY_TOKEN_BYTES], bool *present)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_TOKEN_GET);
    if (st == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, account_id);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW: {
        const void *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (p != NULL && n == SOTTOD_DELIVERY_TOKEN_BYTES) {
            memcpy(out, p, n);
            *present = true;
        }
        rc = SOTTOD_STORE_OK; /* NULL (or any other length): no token */
        break;
    }
    case SQLITE_DONE:
        rc = SOTTOD_STORE_NOT_FOUND;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_sealed_root_marked(sottod_store_backend *be, bool *marked)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_SEALED_MARKED);
    if (st == NULL)
        goto out;
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        *marked = true;
        rc = SOTTOD_STORE_OK;
        break;
    case SQLITE_DONE:
        *marked = false;
        rc = SOTTOD_STORE_OK;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_kt_head_get(sottod_store_backend *be, uint64_t size, uint64_t ts_ms,
                          sottod_kt_head_rec *out)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, size == 0 ? R_KT_HEAD_LATEST : R_KT_HEAD_GET);
    if (st == NULL)
        goto out;
    if (size != 0) {
        sqlite3_bind_int64(st, 1, (int64_t)size);
        sqlite3_bind_int64(st, 2, (int64_t)ts_ms);
    }
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        memset(out, 0, sizeof(*out));
        out->size = (uint64_t)sqlite3_column_int64(st, 0);
        out->ts_ms = (uint64_t)sqlite3_column_int64(st, 1);
        rc = col_blob(st, 2, out->signature, SOTTOD_KT_SIG_BYTES);
        break;
    case SQLITE_DONE:
        rc = SOTTOD_STORE_NOT_FOUND;
        break;
    default:
        break;
    }
    sqlite3_reset(st);
out:
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_kt_cosigs_scan(sottod_store_backend *be, sottod_kt_cosig_fn fn, void *arg)
{
    sq_backend *s = SQ(be);
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR, step = SQLITE_ERROR;

    pthread_mutex_lock(&s->rmu);
    st = RS(s, R_KT_COSIGS);
    if (st == NULL)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        sottod_kt_cosig_rec c;

        memset(&c, 0, sizeof(c));
        c.size = (uint64_t)sqlite3_column_int64(st, 0);
        c.ts_ms = (uint64_t)sqlite3_column_int64(st, 1);
        if (col_blob(st, 2, c.auditor_key, SOTTOD_KT_KEY_BYTES) != SOTTOD_STORE_OK ||
            col_blob(st, 3, c.signature, SOTTOD_KT_SIG_BYTES) != SOTTOD_STORE_OK) {
            step = SQLITE_CORRUPT;
            break;
        }
        if (fn(arg, &c) != 0) {
            step = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    if (step == SQLITE_DONE)
        rc = SOTTOD_STORE_OK;
out:
    if (rc != SOTTOD_STORE_OK)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int sq_kt_accounts_scan(sottod_store_backend *be, sottod_kt_account_fn fn, void *arg)
{
    sq_backend *s = SQ(be);
    sottod_device_list_rec *l = malloc(sizeof(*l));
    sottod_kt_entry *e = malloc(sizeof(*e));
    sqlite3_stmt *st;
    int rc = SOTTOD_STORE_ERR, step = SQLITE_ERROR;

    if (l == NULL || e == NULL) {
        free(l);
        free(e);
        return SOTTOD_STORE_NOMEM;
    }
    pthread_mutex_lock(&s->rmu);
    /* One snapshot: entries and accounts of the same commit. */
    if (step_done(RS(s, R_BEGIN)) != SOTTOD_STORE_OK)
        goto out;
    st = RS(s, R_KT_ACCOUNTS);
    while (st != NULL && (step = sqlite3_step(st)) == SQLITE_ROW) {
        char name[SOTTOD_USERNAME_MAX + 1];
        const void *p = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        int64_t v = sqlite3_column_int64(st, 3);
        bool has_entry = sqlite3_column_type(st, 4) != SQLITE_NULL;

        col_text(st, 0, name, sizeof(name));
        memset(l, 0, sizeof(*l));
        if (col_blob(st, 1, l->account_key, SOTTOD_PUBLIC_KEY_BYTES) != SOTTOD_STORE_OK ||
            p == NULL || len == 0 || len > SOTTOD_DEVICE_LIST_MAX_BYTES || v < 1 ||
            (has_entry && read_kt_entry(st, 4, e) != SOTTOD_STORE_OK)) {
            step = SQLITE_CORRUPT;
            break;
        }
        memcpy(l->list, p, len);
        l->len = len;
        l->version = (uint64_t)v;
        l->present = true;
        if (fn(arg, name, l, has_entry ? e : NULL) != 0) {
            step = SQLITE_DONE;
            break;
        }
    }
    if (st != NULL)
        sqlite3_reset(st);
    (void)step_done(RS(s, R_COMMIT));
    if (step == SQLITE_DONE)
        rc = SOTTOD_STORE_OK;
out:
    if (rc != SOTTOD_STORE_OK)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    sodium_memzero(e, sizeof(*e));
    free(e);
    free(l);
    return rc;
}

/* ---- disclose ------------------------------------------------------------------ */

/* Adds key -> lowercase hex of bin[0..len) to obj; 0 on success. */
static int json_hex(json_t *obj, const char *key, const uint8_t *bin, size_t len)
{
    char hex[2 * 64 + 1];

    if (len > 64)
        return -1;
    sodium_bin2hex(hex, sizeof(hex), bin, len);
    return json_object_set_new(obj, key, json_string(hex));
}

/* What a compelled operator hands over about an account (issue 12): the
 * account's creation date, its last-seen date (the latest of its devices'),
 * the device count and public keys -- nothing more, as Signal's published
 * answers (two dates). What else the server stores about an account, for
 * how long, and why it is not printed here is in docs/threat-model.md
 * ("What the server holds"). Device ids are kept only to tell the devices'
 * keys apart. */
static int disclose_locked(sq_backend *s, const char *username, char **json_out)
{
    sottod_device devs[SOTTOD_MAX_DEVICES];
    sottod_account acc;
    json_t *root = NULL, *jdevs = NULL;
    sqlite3_stmt *st;
    size_t n = 0, i;
    int rc, err = 0;
    const char *last_seen = NULL;

    st = RS(s, R_ACC_LOOKUP);
    if (st == NULL)
        return SOTTOD_STORE_ERR;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(&acc, 0, sizeof(acc));
        acc.account_id = sqlite3_column_int64(st, 0);
        col_text(st, 1, acc.username, sizeof(acc.username));
        col_text(st, 2, acc.created, sizeof(acc.created));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? SOTTOD_STORE_NOT_FOUND : SOTTOD_STORE_ERR;
    rc = devices_list_locked(s, acc.account_id, devs, SOTTOD_MAX_DEVICES, &n);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    for (i = 0; i < n; i++)
        if (devs[i].last_seen[0] != '\0' &&
            (last_seen == NULL || strcmp(devs[i].last_seen, last_seen) > 0))
            last_seen = devs[i].last_seen; /* YYYY-MM-DD: text order is date order */

    rc = SOTTOD_STORE_NOMEM;
    root = json_object();
    jdevs = json_array();
    if (root == NULL || jdevs == NULL)
        goto out;
    err |= json_object_set_new(root, "username", json_string(acc.username));
    err |= json_object_set_new(root, "account_created", json_string(acc.created));
    err |= json_object_set_new(root, "last_seen_date",
                               last_seen != NULL ? json_string(last_seen) : json_null());
    err |= json_object_set_new(root, "device_count", json_integer((json_int_t)n));
    {
        /* API v2: the account's public key (NULL for an API v1 account) */
        sottod_device_list_rec *l = malloc(sizeof(*l));

        if (l == NULL)
            goto out;
        rc = read_list(RS(s, R_ACC_LIST_GET), acc.account_id, l);
        if (rc == SOTTOD_STORE_OK)
            err |= l->present ? json_hex(root, "account_public_key", l->account_key,
                                         sizeof(l->account_key))
                              : json_object_set_new(root, "account_public_key", json_null());
        free(l);
        if (rc != SOTTOD_STORE_OK) {
            rc = SOTTOD_STORE_ERR;
            goto out;
        }
        rc = SOTTOD_STORE_NOMEM;
    }
    for (i = 0; i < n; i++) {
        const sottod_device *d = &devs[i];
        json_t *jd = json_object();

        if (jd == NULL || json_array_append_new(jdevs, jd) != 0)
            goto out;
        err |= json_object_set_new(jd, "device_id", json_integer(d->device_id));
        err |= json_hex(jd, "identity_public_key", d->identity_key, sizeof(d->identity_key));
        err |= json_hex(jd, "auth_public_key", d->auth_key, sizeof(d->auth_key));
        if (d->has_signed_prekey)
            err |= json_hex(jd, "signed_prekey_public_key", d->signed_prekey,
                            sizeof(d->signed_prekey));
    }
    err |= json_object_set_new(root, "devices", jdevs);
    jdevs = NULL;
    err |= json_object_set_new(
        root, "not_held",
        json_string("IP addresses, private keys, plaintext, contacts, groups, who wrote to "
                    "whom, delivered messages, times of day; see docs/threat-model.md for "
                    "what is stored and not printed here"));
    if (err != 0)
        goto out;
    *json_out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    rc = *json_out != NULL ? SOTTOD_STORE_OK : SOTTOD_STORE_NOMEM;
out:
    json_decref(jdevs);
    json_decref(root);
    return rc;
}

static int sq_disclose(sottod_store_backend *be, const char *username, char **json)
{
    sq_backend *s = SQ(be);
    int rc;

    pthread_mutex_lock(&s->rmu);
    /* One read transaction: a consistent snapshot of the account. */
    rc = step_done(RS(s, R_BEGIN));
    if (rc == SOTTOD_STORE_OK) {
        rc = disclose_locked(s, username, json);
        (void)step_done(RS(s, R_COMMIT));
    }
    if (rc == SOTTOD_STORE_ERR)
        note_db(s, s->r);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* ---- open / close ------------------------------------------------------------- */

static void finalize_all(sqlite3_stmt **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        sqlite3_finalize(v[i]);
        v[i] = NULL;
    }
}

static void sq_close(sottod_store_backend *be)
{
    sq_backend *s = SQ(be);

    if (s == NULL)
        return;
    finalize_all(s->ws, W_COUNT);
    finalize_all(s->rs, R_COUNT);
    sqlite3_close(s->r);
    sqlite3_close(s->w);
    pthread_mutex_destroy(&s->rmu);
    pthread_mutex_destroy(&s->emu);
    free(s);
}

/* Writer thread, no transaction open: copies every WAL frame into the
 * database (where secure_delete has zeroed deleted rows and free pages)
 * and truncates the WAL to 0 bytes. The reader connection is held meanwhile
 * so its snapshot cannot keep old frames alive. */
static int sq_scrub(sottod_store_backend *be)
{
    sq_backend *s = SQ(be);
    int log = -1, done = -1, rc;

    pthread_mutex_lock(&s->rmu);
    rc = sqlite3_wal_checkpoint_v2(s->w, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    pthread_mutex_unlock(&s->rmu);
    if (rc != SQLITE_OK) {
        note_db(s, s->w);
        return SOTTOD_STORE_ERR;
    }
    return SOTTOD_STORE_OK;
}

static const sottod_store_backend_ops SQ_OPS = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .exec = sq_exec,
    .account_lookup = sq_account_lookup,
    .device_get = sq_device_get,
    .devices_list = sq_devices_list,
    .one_time_prekey_count = sq_one_time_prekey_count,
    .envelopes_list = sq_envelopes_list,
    .queue_depth = sq_queue_depth,
    .attachment_get = sq_attachment_get,
    .attachments_expired = sq_attachments_expired,
    .disclose = sq_disclose,
    .device_list_get = sq_device_list_get,
    .queue_depth_total = sq_queue_depth_total,
    .kt_log_size = sq_kt_log_size,
    .kt_log_read = sq_kt_log_read,
    .kt_entry_get = sq_kt_entry_get,
    .kt_head_get = sq_kt_head_get,
    .kt_cosigs_scan = sq_kt_cosigs_scan,
    .kt_accounts_scan = sq_kt_accounts_scan,
    .profile_get = sq_profile_get,
    .delivery_token_get = sq_delivery_token_get,
    .sealed_root_marked = sq_sealed_root_marked,
    .last_error = sq_last_error,
    .scrub = sq_scrub,
};

static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = SOTTOD_STORE_ERR;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SOTTOD_STORE_OK;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* Writes "PATH: reason" into why (may be NULL). */
static void say_why(char *why, size_t cap, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say_why(char *why, size_t cap, const char *path, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (why == NULL || cap == 0)
        return;
    n = snprintf(why, cap, "%s: ", path);
    if (n < 0 || (size_t)n >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(why + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Says why the last call on db failed, as "PATH: WHAT: sqlite's reason". */
static void say_db(char *why, size_t cap, const char *path, const char *what, sqlite3 *db)
{
    char text[256];

    db_error_text(db, text, sizeof(text));
    say_why(why, cap, path, "%s: %s", what, text);
}

/* PRAGMA quick_check: 0 if it reports "ok"; else -1 with the first problem
 * it found (or why it could not run) in why. */
static int integrity_check(sqlite3 *db, const char *path, char *why, size_t cap)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *first;
    int rc = -1;

    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(3)", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        say_db(why, cap, path, "integrity check failed", db);
        goto out;
    }
    first = sqlite3_column_text(st, 0);
    if (first != NULL && strcmp((const char *)first, "ok") == 0) {
        rc = 0;
    } else {
        char text[512];

        /* One line: SQLite separates the problems it found by newlines. */
        snprintf(text, sizeof(text), "%s", first != NULL ? (const char *)first : "(no answer)");
        for (char *p = text; *p != '\0'; p++)
            if (*p == '\n')
                *p = ' ';
        say_why(why, cap, path, "integrity check failed: %s", text);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* Number of schema objects (tables, indexes) in db, or -1. */
static int schema_objects(sqlite3 *db)
{
    int n = -1;

    if (pragma_int(db, "SELECT count(*) FROM sqlite_schema", &n) != SOTTOD_STORE_OK)
        return -1;
    return n;
}

static int migrate(sqlite3 *db)
{
    char sql[64];
    int version = 0, v;

    if (pragma_int(db, "PRAGMA user_version", &version) != SOTTOD_STORE_OK)
        return SOTTOD_STORE_ERR;
    if (version < 0 || version > SCHEMA_VERSION)
        return SOTTOD_STORE_ERR; /* written by a newer sottod */
    for (v = version; v < SCHEMA_VERSION; v++) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return SOTTOD_STORE_ERR;
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", v + 1);
        if (sqlite3_exec(db, MIGRATIONS[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return SOTTOD_STORE_ERR;
        }
    }
    return SOTTOD_STORE_OK;
}

static int open_conn(const char *path, bool create, sqlite3 **db)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);

    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK)
        return SOTTOD_STORE_ERR;
    sqlite3_extended_result_codes(*db, 0);
    if (sqlite3_busy_timeout(*db, 10000) != SQLITE_OK)
        return SOTTOD_STORE_ERR;
    return SOTTOD_STORE_OK;
}

int sottod_store_sqlite_open(const sottod_store_config *cfg, sottod_store *front,
                             sottod_store_backend **out, char *why, size_t why_cap)
{
    const char *path = cfg->path;
    sq_backend *s = NULL;
    char *mode = NULL;
    sqlite3_stmt *st = NULL;
    bool mu = false, emu = false;
    int rc = SOTTOD_STORE_NOMEM, fd, version = 0;
    struct stat sb;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out;
    rc = SOTTOD_STORE_ERR;
    if (pthread_mutex_init(&s->rmu, NULL) != 0)
        goto out;
    mu = true;
    if (pthread_mutex_init(&s->emu, NULL) != 0)
        goto out;
    emu = true;
    s->base.ops = &SQ_OPS;
    s->base.cfg = cfg;
    s->base.front = front;

    /* A missing or 0-byte file is an empty store: created here unless the
     * caller said it must exist (a lost database must not silently become
     * a new, empty one). */
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT) {
            say_why(why, why_cap, path, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (cfg->must_exist) {
            say_why(why, why_cap, path, "the database is missing");
            rc = SOTTOD_STORE_NOT_FOUND;
            goto out;
        }
    } else if (sb.st_size == 0 && cfg->must_exist) {
        say_why(why, why_cap, path, "the database is empty (0 bytes)");
        rc = SOTTOD_STORE_NOT_FOUND;
        goto out;
    }

    /* Create the file readable by sottod's user only; SQLite gives the
     * -wal and -shm files the same mode. */
    if (!cfg->must_exist) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            say_why(why, why_cap, path, "cannot create: %s", strerror(errno));
            goto out;
        }
        close(fd);
    }

    if (open_conn(path, !cfg->must_exist, &s->w) != SOTTOD_STORE_OK) {
        say_db(why, why_cap, path, "cannot open", s->w);
        goto out;
    }
    if (sqlite3_prepare_v2(s->w, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW || sqlite3_column_text(st, 0) == NULL) {
        say_db(why, why_cap, path, "cannot open", s->w);
        goto out;
    }
    mode = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (mode == NULL || strcmp(mode, "wal") != 0) {
        say_why(why, why_cap, path, "cannot switch to WAL mode");
        goto out;
    }
    if (sqlite3_exec(s->w,
                     cfg->durability == SOTTOD_DURABILITY_PROCESS ? "PRAGMA synchronous=NORMAL"
                                                                  : "PRAGMA synchronous=FULL",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->w,
                     "PRAGMA secure_delete=ON; PRAGMA foreign_keys=OFF;"
                     " PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
                     /* Checkpoint every ~40 MB of WAL instead of 4 MB:
                      * envelopes live for milliseconds, so most pages
                      * are rewritten many times between checkpoints;
                      * checkpointing them once is ~1.5x the writer's
                      * throughput (bench). The file is cut back to
                      * 64 MB after a checkpoint. */
                     " PRAGMA wal_autocheckpoint=10000;"
                     " PRAGMA journal_size_limit=67108864",
                     NULL, NULL, NULL) != SQLITE_OK) {
        say_db(why, why_cap, path, "cannot open", s->w);
        goto out;
    }
    if (cfg->check && integrity_check(s->w, path, why, why_cap) != 0)
        goto out;
    if (pragma_int(s->w, "PRAGMA user_version", &version) != SOTTOD_STORE_OK) {
        say_db(why, why_cap, path, "cannot read the schema version", s->w);
        goto out;
    }
    if (version > SCHEMA_VERSION || version < 0) {
        say_why(why, why_cap, path, "schema version %d is newer than this sottod's (%d)", version,
                SCHEMA_VERSION);
        goto out;
    }
    if (version == 0 && cfg->must_exist) {
        int objects = schema_objects(s->w);

        if (objects < 0) {
            say_db(why, why_cap, path, "cannot read the schema", s->w);
            goto out;
        }
        say_why(why, why_cap, path,
                objects == 0 ? "the database holds no tables (never initialised)"
                             : "not a sottod database (schema version 0)");
        rc = objects == 0 ? SOTTOD_STORE_NOT_FOUND : SOTTOD_STORE_ERR;
        goto out;
    }
    if (migrate(s->w) != SOTTOD_STORE_OK) {
        say_db(why, why_cap, path, "schema migration failed", s->w);
        goto out;
    }
    if (sqlite3_prepare_v2(s->w, WSQL[W_SEQ_MAX], -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        say_db(why, why_cap, path, "cannot read the envelope sequence", s->w);
        goto out;
    }
    s->last_seq = sqlite3_column_int64(st, 0);
    if (sqlite3_column_int64(st, 1) > s->last_seq)
        s->last_seq = sqlite3_column_int64(st, 1);
    /* Start past the old reservation: the first commit reserves anew. */
    s->last_seq = s->saved_seq = s->reserved = s->last_seq;
    sqlite3_finalize(st);
    st = NULL;

    if (open_conn(path, false, &s->r) != SOTTOD_STORE_OK ||
        sqlite3_exec(s->r, "PRAGMA query_only=ON; PRAGMA cache_size=-8192", NULL, NULL, NULL) !=
            SQLITE_OK) {
        say_db(why, why_cap, path, "cannot open a reader", s->r);
        goto out;
    }
    *out = &s->base;
    s = NULL;
    rc = SOTTOD_STORE_OK;
out:
    sqlite3_finalize(st);
    free(mode);
    if (s != NULL) {
        sqlite3_close(s->r);
        sqlite3_close(s->w);
        if (mu)
            pthread_mutex_destroy(&s->rmu);
        if (emu)
            pthread_mutex_destroy(&s->emu);
        free(s);
    }
    return rc;
}
