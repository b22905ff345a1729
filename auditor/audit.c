/*
 * auditor/audit.c -- the verification core of sotto-auditor (see audit.h).
 *
 * auditor.db (SQLite, WAL, synchronous=FULL, user_version AUD_SCHEMA):
 *   config(id = 1, server TEXT, pin TEXT, ca TEXT, server_key BLOB(32))
 *   updates(pos INTEGER PRIMARY KEY, data BLOB(80))   entries 0..n-1
 *   state(id = 1, verified_size, cosigned_head BLOB(112) or NULL,
 *         cosigned_ms, stopped TEXT or NULL, stopped_ms)
 * updates and state change together, in one transaction per fed page, so
 * verified_size always equals the number of stored updates.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"

#define AUD_SCHEMA 1

struct aud_state {
    sqlite3 *db;
    aud_config cfg;
    sotto_kt_directory *dir;
    sotto_merkle_log *log;
    uint64_t *ts; /* timestamp of each verified entry */
    size_t ts_cap;
    uint64_t verified;
    int have_cosigned;
    sotto_kt_tree_head cosigned;
    uint64_t cosigned_at_ms;
    int is_stopped;
    char stopped[AUD_REASON_MAX];
    int broken; /* memory ahead of the database after an I/O failure */
};

static const char SCHEMA_SQL[] =
    "CREATE TABLE config(id INTEGER PRIMARY KEY CHECK (id = 1), server TEXT NOT NULL,"
    " pin TEXT NOT NULL, ca TEXT NOT NULL, server_key BLOB NOT NULL);"
    "CREATE TABLE updates(pos INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    "CREATE TABLE state(id INTEGER PRIMARY KEY CHECK (id = 1), verified_size INTEGER NOT NULL,"
    " cosigned_head BLOB, cosigned_ms INTEGER, stopped TEXT, stopped_ms INTEGER);"
    "INSERT INTO state(id, verified_size) VALUES (1, 0);";

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* "2024-05-01" or "2024-05-01 12:34:56Z" for a ms timestamp. */
static void fmt_time(char *out, size_t cap, uint64_t ms, int with_time)
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;

    if (ms / 1000u > (uint64_t)INT64_MAX / 2 || gmtime_r(&t, &tm) == NULL) {
        snprintf(out, cap, "%" PRIu64 " ms", ms);
        return;
    }
    if (strftime(out, cap, with_time ? "%Y-%m-%d %H:%M:%SZ" : "%Y-%m-%d", &tm) == 0)
        snprintf(out, cap, "%" PRIu64 " ms", ms);
}

/* ------------------------------------------------------------ SQLite */

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        seterr(err, errlen, "auditor.db: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return AUD_E_IO;
    }
    return AUD_OK;
}

static int db_open(const char *path, int create, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);

    *out = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        seterr(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return AUD_E_IO;
    }
    if (sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
        exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err, errlen) != 0) {
        sqlite3_close(db);
        return AUD_E_IO;
    }
    *out = db;
    return AUD_OK;
}

static int db_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    seterr(err, errlen, "auditor.db: %s: %s", what, sqlite3_errmsg(db));
    return AUD_E_IO;
}

int aud_db_create(const char *path, const aud_config *cfg, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int fd, rc = AUD_E_IO;
    char sql[64];

    if (path == NULL || cfg == NULL || cfg->server[0] == '\0' ||
        (cfg->pin_hex[0] != '\0') == (cfg->ca_file[0] != '\0')) {
        seterr(err, errlen, "auditor configuration needs a server and either a pin or a CA");
        return AUD_E_ARG;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return AUD_E_IO;
    }
    close(fd);
    if (db_open(path, 0, &db, err, errlen) != AUD_OK)
        goto out;
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", AUD_SCHEMA);
    if (exec_sql(db, "BEGIN", err, errlen) != 0 || exec_sql(db, SCHEMA_SQL, err, errlen) != 0 ||
        exec_sql(db, sql, err, errlen) != 0)
        goto out;
    if (sqlite3_prepare_v2(
            db, "INSERT INTO config(id, server, pin, ca, server_key) VALUES (1, ?, ?, ?, ?)", -1,
            &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, cfg->server, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, cfg->pin_hex, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, cfg->ca_file, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(st, 4, cfg->server_key, sizeof cfg->server_key, SQLITE_TRANSIENT) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        db_fail(db, "config", err, errlen);
        goto out;
    }
    if (exec_sql(db, "COMMIT", err, errlen) != 0)
        goto out;
    rc = AUD_OK;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc != AUD_OK)
        unlink(path);
    return rc;
}

static int copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t ? strlen((const char *)t) : 0;

    if (n >= cap)
        return -1;
    memcpy(dst, t ? (const char *)t : "", n);
    dst[n] = '\0';
    return 0;
}

/* Loads config and state rows (no replay). */
static int db_load(sqlite3 *db, aud_info *info, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = AUD_E_IO, ver = -1;
    const void *b;

    memset(info, 0, sizeof *info);
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        return db_fail(db, "schema", err, errlen);
    ver = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (ver != AUD_SCHEMA) {
        seterr(err, errlen, "auditor.db: schema version %d, this sotto-auditor knows %d", ver,
               AUD_SCHEMA);
        return AUD_E_IO;
    }
    if (sqlite3_prepare_v2(db, "SELECT server, pin, ca, server_key FROM config WHERE id = 1", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(db, "config", err, errlen);
    if (sqlite3_step(st) != SQLITE_ROW ||
        copy_text(info->config.server, sizeof info->config.server, st, 0) ||
        copy_text(info->config.pin_hex, sizeof info->config.pin_hex, st, 1) ||
        copy_text(info->config.ca_file, sizeof info->config.ca_file, st, 2) ||
        sqlite3_column_bytes(st, 3) != SOTTO_KT_SIGN_PUBLIC_KEY_BYTES ||
        (b = sqlite3_column_blob(st, 3)) == NULL) {
        seterr(err, errlen, "auditor.db: the configuration row is missing or malformed");
        goto out;
    }
    memcpy(info->config.server_key, b, SOTTO_KT_SIGN_PUBLIC_KEY_BYTES);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT verified_size, cosigned_head, cosigned_ms, stopped, stopped_ms "
                           "FROM state WHERE id = 1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "state", err, errlen);
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) < 0) {
        seterr(err, errlen, "auditor.db: the state row is missing or malformed");
        goto out;
    }
    info->verified_size = (uint64_t)sqlite3_column_int64(st, 0);
    if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
        /* the signature is checked by aud_open's replay, not here */
        const uint8_t *h = sqlite3_column_blob(st, 1);
        if (h == NULL || sqlite3_column_bytes(st, 1) != SOTTO_KT_HEAD_BYTES ||
            sotto_kt_head_parse(h, SOTTO_KT_HEAD_BYTES, info->config.server_key, &info->cosigned) !=
                SOTTO_OK) {
            seterr(err, errlen,
                   "auditor.db: the stored countersigned head is malformed or not signed by the "
                   "pinned server key");
            goto out;
        }
        info->have_cosigned = 1;
        info->cosigned_at_ms = (uint64_t)sqlite3_column_int64(st, 2);
    }
    if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
        if (copy_text(info->stopped, sizeof info->stopped, st, 3) != 0 || info->stopped[0] == '\0')
            snprintf(info->stopped, sizeof info->stopped, "%s", "(reason not readable)");
        info->stopped_at_ms = (uint64_t)sqlite3_column_int64(st, 4);
    }
    rc = AUD_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

int aud_db_info(const char *path, aud_info *out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc;

    if (path == NULL || out == NULL)
        return AUD_E_ARG;
    if (access(path, F_OK) != 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return AUD_E_IO;
    }
    if ((rc = db_open(path, 0, &db, err, errlen)) != AUD_OK)
        return rc;
    rc = db_load(db, out, err, errlen);
    sqlite3_close(db);
    return rc;
}

/* ------------------------------------------------------------ applying updates */

static int ts_push(aud_state *s, uint64_t ts)
{
    if (s->verified == s->ts_cap) {
        size_t cap = s->ts_cap ? s->ts_cap * 2 : 1024;
        uint64_t *p = realloc(s->ts, cap * sizeof *p);
        if (p == NULL)
            return -1;
        s->ts = p;
        s->ts_cap = cap;
    }
    s->ts[s->verified] = ts;
    return 0;
}

/*
 * Verifies and applies one update as entry s->verified. AUD_OK; AUD_E_STOPPED
 * with the reason in why (nothing changed); AUD_E_CRYPTO (nothing changed, or
 * s->broken set when the directory and log diverged).
 */
static int apply_one(aud_state *s, const uint8_t *in, size_t len, char *why, size_t whylen)
{
    sotto_kt_update u;
    uint8_t root[SOTTO_PT_HASH_BYTES], leaf[SOTTO_MERKLE_HASH_BYTES];
    uint64_t pos = s->verified, prev;
    char d1[32], d2[32], hex[17];
    int r;

    if (sotto_kt_update_parse(in, len, &u) != SOTTO_OK) {
        seterr(why, whylen, "update %" PRIu64 " does not parse (%zu bytes)", pos, len);
        return AUD_E_STOPPED;
    }
    if (u.timestamp_ms % AUD_DAY_MS != 0) {
        seterr(why, whylen,
               "update %" PRIu64 " is stamped %" PRIu64
               " ms, not a date (00:00 UTC): the server reveals the time of day of a change",
               pos, u.timestamp_ms);
        return AUD_E_STOPPED;
    }
    if (ts_push(s, u.timestamp_ms) != 0)
        return AUD_E_CRYPTO;
    r = sotto_kt_directory_apply(s->dir, &u, root);
    if (r == SOTTO_ERR_KT_UPDATE_INVALID) {
        prev = sotto_kt_directory_counter(s->dir, u.index);
        sodium_bin2hex(hex, sizeof hex, u.index, 8);
        if (u.counter != prev + 1) {
            seterr(why, whylen,
                   "update %" PRIu64 ": index %s... has counter %" PRIu64 " after %" PRIu64
                   " (must be %" PRIu64 ")",
                   pos, hex, u.counter, prev, prev + 1);
        } else {
            fmt_time(d1, sizeof d1, u.timestamp_ms, 0);
            fmt_time(d2, sizeof d2, sotto_kt_directory_last_timestamp(s->dir), 0);
            seterr(why, whylen, "update %" PRIu64 ": time goes back (%s after %s)", pos, d1, d2);
        }
        return AUD_E_STOPPED;
    }
    if (r != SOTTO_OK)
        return AUD_E_CRYPTO;
    if (sotto_kt_leaf_hash(leaf, root, u.timestamp_ms) != SOTTO_OK ||
        sotto_merkle_log_append(s->log, leaf) != SOTTO_OK) {
        s->broken = 1; /* the directory moved, the log did not */
        return AUD_E_CRYPTO;
    }
    s->verified++;
    return AUD_OK;
}

/* ------------------------------------------------------------ open / close */

static int replay(aud_state *s, uint64_t expect, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char why[AUD_REASON_MAX];
    int r, rc = AUD_E_IO;

    if (sqlite3_prepare_v2(s->db, "SELECT pos, data FROM updates ORDER BY pos", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s->db, "updates", err, errlen);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *d = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        if (sqlite3_column_int64(st, 0) != (int64_t)s->verified) {
            seterr(err, errlen, "auditor.db: update %" PRIu64 " is missing (corrupt or edited)",
                   s->verified);
            goto out;
        }
        r = apply_one(s, d, d ? n : 0, why, sizeof why);
        if (r == AUD_E_STOPPED) {
            seterr(err, errlen, "auditor.db is corrupt or was edited: stored %s", why);
            goto out;
        }
        if (r != AUD_OK) {
            rc = r;
            seterr(err, errlen, "replay: out of memory");
            goto out;
        }
    }
    if (r != SQLITE_DONE) {
        db_fail(s->db, "updates", err, errlen);
        goto out;
    }
    if (s->verified != expect) {
        seterr(err, errlen,
               "auditor.db: %" PRIu64 " stored updates but a verified size of %" PRIu64
               " (corrupt or edited)",
               s->verified, expect);
        goto out;
    }
    rc = AUD_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

int aud_open(aud_state **out, const char *path, char *err, size_t errlen)
{
    aud_state *s = NULL;
    aud_info info;
    uint8_t root[SOTTO_MERKLE_HASH_BYTES];
    int rc;

    if (out == NULL || path == NULL)
        return AUD_E_ARG;
    *out = NULL;
    if (access(path, F_OK) != 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return AUD_E_IO;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return AUD_E_CRYPTO;
    if ((rc = db_open(path, 0, &s->db, err, errlen)) != AUD_OK ||
        (rc = db_load(s->db, &info, err, errlen)) != AUD_OK)
        goto fail;
    s->cfg = info.config;
    s->have_cosigned = info.have_cosigned;
    s->cosigned = info.cosigned;
    s->cosigned_at_ms = info.cosigned_at_ms;
    if (info.stopped[0] != '\0') {
        /* stopped for good: no replay, every feeding call refuses */
        s->is_stopped = 1;
        memcpy(s->stopped, info.stopped, sizeof s->stopped);
        s->verified = info.verified_size;
        *out = s;
        return AUD_OK;
    }
    rc = AUD_E_CRYPTO;
    if (sotto_kt_directory_new(&s->dir) != SOTTO_OK || sotto_merkle_log_new(&s->log) != SOTTO_OK)
        goto fail;
    if ((rc = replay(s, info.verified_size, err, errlen)) != AUD_OK)
        goto fail;
    if (s->have_cosigned) {
        rc = AUD_E_IO;
        if (s->cosigned.size > s->verified ||
            sotto_merkle_log_root(s->log, s->cosigned.size, root) != SOTTO_OK ||
            sodium_memcmp(root, s->cosigned.root, sizeof root) != 0) {
            seterr(err, errlen,
                   "auditor.db: the countersigned head (size %" PRIu64
                   ") does not match the stored log (corrupt or edited)",
                   s->cosigned.size);
            goto fail;
        }
    }
    *out = s;
    return AUD_OK;
fail:
    aud_close(s);
    return rc;
}

void aud_close(aud_state *s)
{
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    sotto_kt_directory_free(s->dir);
    sotto_merkle_log_free(s->log);
    free(s->ts);
    free(s);
}

const aud_config *aud_get_config(const aud_state *s)
{
    return s ? &s->cfg : NULL;
}

uint64_t aud_verified_size(const aud_state *s)
{
    return s ? s->verified : 0;
}

const char *aud_stopped(const aud_state *s)
{
    return s && s->is_stopped ? s->stopped : NULL;
}

const sotto_kt_tree_head *aud_last_cosigned(const aud_state *s)
{
    return s && s->have_cosigned ? &s->cosigned : NULL;
}

size_t aud_memory(const aud_state *s)
{
    if (s == NULL)
        return 0;
    return sotto_kt_directory_memory(s->dir) + sotto_merkle_log_memory(s->log) +
           s->ts_cap * sizeof *s->ts;
}

/* ------------------------------------------------------------ stopping */

/* Records the stop in memory and in the database (in the open transaction
 * when there is one). */
static int store_stop(aud_state *s, const char *why, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int ok;

    ok = sqlite3_prepare_v2(s->db, "UPDATE state SET stopped = ?, stopped_ms = ? WHERE id = 1", -1,
                            &st, NULL) == SQLITE_OK &&
         sqlite3_bind_text(st, 1, why, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
         sqlite3_bind_int64(st, 2, (sqlite3_int64)now_ms()) == SQLITE_OK &&
         sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    if (!ok)
        return db_fail(s->db, "recording the stop", err, errlen);
    return AUD_OK;
}

int aud_stop(aud_state *s, const char *why, char *err, size_t errlen)
{
    if (s == NULL || why == NULL)
        return AUD_E_ARG;
    if (s->is_stopped) {
        seterr(err, errlen, "%s", s->stopped);
        return AUD_E_STOPPED;
    }
    s->is_stopped = 1;
    snprintf(s->stopped, sizeof s->stopped, "%s", why[0] ? why : "stopped");
    if (store_stop(s, s->stopped, err, errlen) != AUD_OK)
        return AUD_E_IO;
    seterr(err, errlen, "%s", s->stopped);
    return AUD_E_STOPPED;
}

static int refuse_if_stopped(const aud_state *s, char *err, size_t errlen)
{
    if (s->is_stopped) {
        seterr(err, errlen, "%s", s->stopped);
        return AUD_E_STOPPED;
    }
    if (s->broken) {
        seterr(err, errlen, "an earlier failure left the state unsaved: restart");
        return AUD_E_IO;
    }
    return AUD_OK;
}

/* ------------------------------------------------------------ feeding */

int aud_feed(aud_state *s, const uint8_t *const *updates, const size_t *lens, size_t n, char *err,
             size_t errlen)
{
    sqlite3_stmt *ins = NULL, *upd = NULL;
    char why[AUD_REASON_MAX] = "";
    int rc, r = AUD_OK;
    size_t i;

    if (s == NULL || (n > 0 && (updates == NULL || lens == NULL)))
        return AUD_E_ARG;
    if ((rc = refuse_if_stopped(s, err, errlen)) != AUD_OK)
        return rc;
    if (n == 0)
        return AUD_OK;
    if (exec_sql(s->db, "BEGIN IMMEDIATE", err, errlen) != AUD_OK)
        return AUD_E_IO;
    rc = AUD_E_IO;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO updates(pos, data) VALUES (?, ?)", -1, &ins, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "UPDATE state SET verified_size = ? WHERE id = 1", -1, &upd,
                           NULL) != SQLITE_OK) {
        db_fail(s->db, "prepare", err, errlen);
        goto rollback;
    }
    for (i = 0; i < n; i++) {
        uint64_t pos = s->verified;
        if (updates[i] == NULL && lens[i] != 0) {
            rc = AUD_E_ARG;
            goto rollback;
        }
        r = apply_one(s, updates[i], updates[i] ? lens[i] : 0, why, sizeof why);
        if (r == AUD_E_STOPPED)
            break;
        if (r != AUD_OK) {
            rc = r;
            seterr(err, errlen, "out of memory applying update %" PRIu64, pos);
            s->broken = 1;
            goto rollback;
        }
        if (sqlite3_reset(ins) != SQLITE_OK ||
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)pos) != SQLITE_OK ||
            sqlite3_bind_blob(ins, 2, updates[i], (int)lens[i], SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(ins) != SQLITE_DONE) {
            db_fail(s->db, "storing an update", err, errlen);
            s->broken = 1;
            goto rollback;
        }
    }
    if (sqlite3_bind_int64(upd, 1, (sqlite3_int64)s->verified) != SQLITE_OK ||
        sqlite3_step(upd) != SQLITE_DONE) {
        db_fail(s->db, "state", err, errlen);
        s->broken = 1;
        goto rollback;
    }
    if (r == AUD_E_STOPPED) {
        s->is_stopped = 1;
        snprintf(s->stopped, sizeof s->stopped, "%s", why);
        if (store_stop(s, why, err, errlen) != AUD_OK)
            goto rollback;
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    ins = upd = NULL;
    if (exec_sql(s->db, "COMMIT", err, errlen) != AUD_OK) {
        s->broken = 1;
        goto rollback;
    }
    if (r == AUD_E_STOPPED) {
        seterr(err, errlen, "%s", why);
        return AUD_E_STOPPED;
    }
    return AUD_OK;
rollback:
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    if (sqlite3_get_autocommit(s->db) == 0)
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    /* the memory state may be ahead of the rolled back database */
    s->broken = 1;
    return rc;
}

/* ------------------------------------------------------------ heads */

static int stop_with(aud_state *s, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int stop_with(aud_state *s, char *err, size_t errlen, const char *fmt, ...)
{
    char why[AUD_REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return aud_stop(s, why, err, errlen);
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int aud_check_head(aud_state *s, const uint8_t *head, size_t len, int newest, uint64_t now,
                   sotto_kt_tree_head *out, char *err, size_t errlen)
{
    sotto_kt_tree_head h;
    uint8_t root[SOTTO_MERKLE_HASH_BYTES];
    char t1[40], t2[40];
    int r;

    if (s == NULL || head == NULL)
        return AUD_E_ARG;
    if ((r = refuse_if_stopped(s, err, errlen)) != AUD_OK)
        return r;
    r = sotto_kt_head_parse(head, len, s->cfg.server_key, &h);
    if (r == SOTTO_ERR_INVALID_SIGNATURE)
        return stop_with(s, err, errlen,
                         "a tree head (size %" PRIu64
                         ") whose signature does not verify under the pinned server key",
                         len >= 8 ? be64(head) : 0);
    if (r != SOTTO_OK)
        return stop_with(s, err, errlen, "the server sent a malformed tree head (%zu bytes)", len);
    if (out != NULL)
        *out = h;
    if (newest && h.size < s->verified)
        return stop_with(s, err, errlen, "log truncated: head size %" PRIu64 " < verified %" PRIu64,
                         h.size, s->verified);
    if (h.size > s->verified) {
        seterr(err, errlen, "head %" PRIu64 " is beyond the %" PRIu64 " updates verified so far",
               h.size, s->verified);
        return AUD_LATER;
    }
    if (sotto_merkle_log_root(s->log, h.size, root) != SOTTO_OK)
        return AUD_E_CRYPTO;
    if (sodium_memcmp(root, h.root, sizeof root) != 0)
        return stop_with(s, err, errlen,
                         "the server's tree head %" PRIu64 " does not match the log I verified",
                         h.size);
    if (s->ts[h.size - 1] > h.timestamp_ms) {
        fmt_time(t1, sizeof t1, h.timestamp_ms, 1);
        fmt_time(t2, sizeof t2, s->ts[h.size - 1], 0);
        return stop_with(s, err, errlen,
                         "time goes back: tree head %" PRIu64 " is stamped %s, before its last "
                         "entry (%s)",
                         h.size, t1, t2);
    }
    if (s->have_cosigned &&
        ((h.size > s->cosigned.size && h.timestamp_ms < s->cosigned.timestamp_ms) ||
         (h.size < s->cosigned.size && h.timestamp_ms > s->cosigned.timestamp_ms))) {
        fmt_time(t1, sizeof t1, h.timestamp_ms, 1);
        fmt_time(t2, sizeof t2, s->cosigned.timestamp_ms, 1);
        return stop_with(s, err, errlen,
                         "time goes back: tree head %" PRIu64 " stamped %s against the "
                         "countersigned head %" PRIu64 " stamped %s",
                         h.size, t1, s->cosigned.size, t2);
    }
    if (h.timestamp_ms > now + AUD_MAX_FUTURE_MS) {
        seterr(err, errlen,
               "tree head %" PRIu64 " is stamped %" PRIu64
               " s in the future (is this machine's clock right?)",
               h.size, (h.timestamp_ms - now) / 1000u);
        return AUD_LATER;
    }
    return AUD_OK;
}

int aud_cosign(aud_state *s, const uint8_t *head, size_t len, int newest, uint64_t now,
               const uint8_t sk[SOTTO_KT_SIGN_SECRET_KEY_BYTES],
               uint8_t sig[SOTTO_KT_SIGNATURE_BYTES], sotto_kt_tree_head *out, char *err,
               size_t errlen)
{
    sotto_kt_tree_head h;
    sqlite3_stmt *st = NULL;
    uint8_t s_sig[SOTTO_KT_SIGNATURE_BYTES], enc[SOTTO_KT_HEAD_BYTES];
    int r, ok, advance;

    if (sk == NULL || sig == NULL)
        return AUD_E_ARG;
    if ((r = aud_check_head(s, head, len, newest, now, &h, err, errlen)) != AUD_OK)
        return r;
    if (sotto_kt_cosign(s_sig, &h, sk) != SOTTO_OK || sotto_kt_head_encode(&h, enc) != SOTTO_OK)
        return AUD_E_CRYPTO;
    /* the last countersigned head only moves forward (size, then time) */
    advance = !s->have_cosigned || h.size > s->cosigned.size ||
              (h.size == s->cosigned.size && h.timestamp_ms > s->cosigned.timestamp_ms);
    if (advance) {
        ok = sqlite3_prepare_v2(s->db,
                                "UPDATE state SET cosigned_head = ?, cosigned_ms = ? WHERE id = 1",
                                -1, &st, NULL) == SQLITE_OK &&
             sqlite3_bind_blob(st, 1, enc, sizeof enc, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_bind_int64(st, 2, (sqlite3_int64)now) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
        if (!ok)
            return db_fail(s->db, "recording the countersigned head", err, errlen);
        s->have_cosigned = 1;
        s->cosigned = h;
        s->cosigned_at_ms = now;
    }
    memcpy(sig, s_sig, sizeof s_sig);
    if (out != NULL)
        *out = h;
    return AUD_OK;
}
