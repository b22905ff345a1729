/*
 * tests/server/test_store.c -- sottod's store (server/store/) tested directly:
 * group commit ordering and completions, one-time prekeys handed out once
 * under concurrent takes, full queues, TTL expiry, per-device deletes,
 * disclose contents, reopen, migrations, two writers on one file (never an
 * ack without a stored row), open refusals and failure causes, and an acked
 * write surviving kill -9 of the process that wrote it.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"

/* ---- fixtures --------------------------------------------------------------- */

static _Atomic int64_t fake_now = 1767225600; /* 2026-01-01 00:00:00 UTC */

static int64_t clock_fn(void *arg)
{
    (void)arg;
    return atomic_load(&fake_now);
}

typedef struct fixture {
    char dir[64];
    char path[128];
    sottod_store *st;
} fixture;

static sottod_store *open_store(const char *path, uint32_t max_queue)
{
    sottod_store_config cfg = {
        .path = path,
        .max_queue = max_queue,
        .now = clock_fn,
    };
    sottod_store *st = NULL;

    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_OK);
    assert_non_null(st);
    return st;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sotto-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/sottod.db", f->dir);
    atomic_store(&fake_now, 1767225600);
    f->st = open_store(f->path, 5);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[200];

    sottod_store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A completion that copies the result for the synchronous helpers below. */
typedef struct result_box {
    int called;
    sottod_store_result res;
    sottod_bundle bundles[8];
    sottod_device_list_rec list; /* BUNDLE_TAKE's account list, copied */
} result_box;

static void box_done(void *arg, const sottod_store_result *res)
{
    result_box *b = arg;

    b->called++;
    b->res = *res;
    if (res->type == SOTTOD_OP_BUNDLE_TAKE && res->status == SOTTOD_STORE_OK) {
        assert_true(res->u.bundle_take.n <= 8);
        memcpy(b->bundles, res->u.bundle_take.bundles,
               res->u.bundle_take.n * sizeof(sottod_bundle));
        b->res.u.bundle_take.bundles = b->bundles;
        assert_non_null(res->u.bundle_take.list);
        b->list = *res->u.bundle_take.list;
        b->res.u.bundle_take.list = &b->list;
    }
}

/* Waits for the op submitted with `box` and returns its status. */
static int wait_box(sottod_store *st, result_box *box)
{
    assert_int_equal(sottod_store_drain(st), SOTTOD_STORE_OK);
    assert_int_equal(box->called, 1);
    return box->res.status;
}

static void make_dev(sottod_device_new *d, uint32_t device_id, uint8_t seed)
{
    memset(d, 0, sizeof(*d));
    d->device_id = device_id;
    d->registration_id = 1000u + seed;
    memset(d->auth_key, 0xA0 ^ seed, sizeof(d->auth_key));
    d->identity_key[0] = 0x05;
    memset(d->identity_key + 1, 0x10 + seed, sizeof(d->identity_key) - 1);
}

static int64_t create_account(sottod_store *st, const char *name)
{
    sottod_device_new d;
    result_box b = {0};

    make_dev(&d, 1, 1);
    assert_int_equal(sottod_store_account_create(st, name, NULL, 0, &d, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(st, &b), SOTTOD_STORE_OK);
    assert_true(b.res.u.account_create.account_id > 0);
    return b.res.u.account_create.account_id;
}

static uint32_t add_device(sottod_store *st, int64_t acc, uint32_t want)
{
    sottod_device_new d;
    result_box b = {0};

    make_dev(&d, want, (uint8_t)(want + 7));
    d.added_by = 1;
    memset(d.add_signature, 0xD5, sizeof(d.add_signature));
    assert_int_equal(sottod_store_device_add(st, acc, &d, 8, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(st, &b), SOTTOD_STORE_OK);
    return b.res.u.device_add.device_id;
}

static void env_id(uint8_t id[SOTTOD_ENVELOPE_ID_BYTES], uint32_t n)
{
    memset(id, 0, SOTTOD_ENVELOPE_ID_BYTES);
    id[0] = (uint8_t)(n >> 24);
    id[1] = (uint8_t)(n >> 16);
    id[2] = (uint8_t)(n >> 8);
    id[3] = (uint8_t)n;
}

static int enqueue1(sottod_store *st, sottod_addr to, uint32_t n, const char *body,
                    int64_t expires_at, result_box *b)
{
    sottod_envelope_in e = {.to = to,
                            .expires_at = expires_at,
                            .body = (const uint8_t *)body,
                            .body_len = strlen(body)};

    env_id(e.id, n);
    memset(b, 0, sizeof(*b));
    assert_int_equal(sottod_store_envelopes_enqueue(st, &e, 1, box_done, b), SOTTOD_STORE_OK);
    return wait_box(st, b);
}

typedef struct listed {
    size_t n;
    int64_t seq[64];
    uint8_t id[64][SOTTOD_ENVELOPE_ID_BYTES];
    char body[64][64];
} listed;

static int list_cb(void *arg, const sottod_envelope *e)
{
    listed *l = arg;

    assert_true(l->n < 64);
    assert_true(e->body_len < 64);
    l->seq[l->n] = e->seq;
    memcpy(l->id[l->n], e->id, SOTTOD_ENVELOPE_ID_BYTES);
    memcpy(l->body[l->n], e->body, e->body_len);
    l->body[l->n][e->body_len] = '\0';
    l->n++;
    return 0;
}

static void list_all(sottod_store *st, sottod_addr a, listed *l)
{
    memset(l, 0, sizeof(*l));
    assert_int_equal(sottod_store_envelopes_list(st, a, 0, 64, list_cb, l, NULL), SOTTOD_STORE_OK);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_migrations_from_empty_file(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    sottod_store_config cfg = {.path = f->path, .now = clock_fn};
    sottod_store *st = NULL;
    struct stat sb;
    char path2[160];
    FILE *fp;

    /* The fixture opened a file that did not exist: schema version 2, the
     * tables in place, WAL mode, mode 0600. */
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 6);
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    assert_int_equal(
        sqlite3_prepare_v2(
            db,
            "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name IN"
            " ('accounts','invites','devices','one_time_prekeys','envelopes','attachments')",
            -1, &q, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 6);
    sqlite3_finalize(q);
    /* The queue scan is served by an index, not a table scan. */
    assert_int_equal(
        sqlite3_prepare_v2(
            db,
            "EXPLAIN QUERY PLAN SELECT seq, envelope_id, expires_at, body FROM envelopes"
            " WHERE account_id=1 AND device_id=1 AND seq>0 AND expires_at>0 ORDER BY seq LIMIT 10",
            -1, &q, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_non_null(strstr((const char *)sqlite3_column_text(q, 3), "USING INDEX envelopes_queue"));
    sqlite3_finalize(q);
    sqlite3_close(db);

    /* A zero-length existing file (touch) is an empty database: migrated. */
    snprintf(path2, sizeof(path2), "%s/empty.db", f->dir);
    fp = fopen(path2, "w");
    assert_non_null(fp);
    fclose(fp);
    cfg.path = path2;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_OK);
    assert_int_equal(create_account(st, "alice") > 0, 1);
    sottod_store_close(st);

    /* A database from a newer sottod (user_version 99) is refused. */
    assert_int_equal(sqlite3_open(path2, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    st = NULL;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_ERR);
    assert_null(st);

    /* Garbage is not a database. */
    fp = fopen(path2, "w");
    assert_non_null(fp);
    fputs("this is not an sqlite database, just some bytes.........................."
          "..................................................................",
          fp);
    fclose(fp);
    st = NULL;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_ERR);
    assert_null(st);
    unlink(path2);
}

static void test_accounts_and_invites(void **state)
{
    fixture *f = *state;
    sottod_device_new d;
    sottod_account acc;
    result_box b = {0};
    static const uint8_t tok[] = "invite-token-0123456789";
    static const uint8_t tok2[] = "invite-token-expiring";
    char longname[SOTTOD_USERNAME_MAX + 2];

    make_dev(&d, 1, 1);
    assert_int_equal(create_account(f->st, "alice"), 1);
    assert_int_equal(sottod_store_account_lookup(f->st, "alice", &acc), SOTTOD_STORE_OK);
    assert_int_equal(acc.account_id, 1);
    assert_string_equal(acc.username, "alice");
    assert_string_equal(acc.created, "2026-01-01");
    assert_int_equal(sottod_store_account_lookup(f->st, "bob", &acc), SOTTOD_STORE_NOT_FOUND);

    /* Taken. */
    assert_int_equal(sottod_store_account_create(f->st, "alice", NULL, 0, &d, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_EXISTS);

    /* Invalid names never reach the queue. */
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(sottod_store_account_create(f->st, longname, NULL, 0, &d, box_done, &b),
                     SOTTOD_STORE_INVALID);
    assert_int_equal(sottod_store_account_create(f->st, "", NULL, 0, &d, box_done, &b),
                     SOTTOD_STORE_INVALID);

    /* Invites: unknown token refused, a valid one works once. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        sottod_store_account_create(f->st, "bob", tok, sizeof(tok) - 1, &d, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_BAD_INVITE);
    assert_int_equal(sottod_store_account_lookup(f->st, "bob", &acc), SOTTOD_STORE_NOT_FOUND);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_invite_create(f->st, tok, sizeof(tok) - 1,
                                                atomic_load(&fake_now) + 3600, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    /* A taken name does not consume the invite. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        sottod_store_account_create(f->st, "alice", tok, sizeof(tok) - 1, &d, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_EXISTS);
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        sottod_store_account_create(f->st, "bob", tok, sizeof(tok) - 1, &d, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        sottod_store_account_create(f->st, "carol", tok, sizeof(tok) - 1, &d, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_BAD_INVITE);

    /* An expired invite is refused. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_invite_create(f->st, tok2, sizeof(tok2) - 1,
                                                atomic_load(&fake_now) + 60, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    atomic_fetch_add(&fake_now, 61);
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        sottod_store_account_create(f->st, "carol", tok2, sizeof(tok2) - 1, &d, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_BAD_INVITE);

    /* The invite table holds hashes, never the token. */
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        int rows = 0;

        assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT hash FROM invites", -1, &q, NULL),
                         SQLITE_OK);
        while (sqlite3_step(q) == SQLITE_ROW) {
            assert_int_equal(sqlite3_column_bytes(q, 0), 32);
            assert_null(memmem(sqlite3_column_blob(q, 0), 32, "invite-token", 12));
            rows++;
        }
        assert_int_equal(rows, 1); /* only the expired-but-unused one is left */
        sqlite3_finalize(q);
        sqlite3_close(db);
    }

    /* Account deletion removes everything. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_account_delete(f->st, 1, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_account_lookup(f->st, "alice", &acc), SOTTOD_STORE_NOT_FOUND);
    {
        sottod_addr a = {1, 1};
        sottod_device dev;

        assert_int_equal(sottod_store_device_get(f->st, a, &dev), SOTTOD_STORE_NOT_FOUND);
    }
}

/* Reads one integer from `sql` on a separate read-only connection. */
static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int64_t v;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void delete_account(sottod_store *st, int64_t id)
{
    result_box b = {0};

    assert_int_equal(sottod_store_account_delete(st, id, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(st, &b), SOTTOD_STORE_OK);
}

/* Account ids are never reused: deleting the account with the highest id
 * and registering again must not hand out the deleted id, not even after
 * a reopen. */
static void test_account_ids_never_reused(void **state)
{
    fixture *f = *state;
    sottod_account acc;
    int64_t a, b, c, d;

    a = create_account(f->st, "alice");
    b = create_account(f->st, "bob");
    assert_true(b > a);
    delete_account(f->st, b);
    c = create_account(f->st, "carol");
    assert_int_not_equal(c, b);
    assert_true(c > b);
    assert_int_equal(sottod_store_account_lookup(f->st, "carol", &acc), SOTTOD_STORE_OK);
    assert_int_equal(acc.account_id, c);

    /* Also across a reopen. */
    delete_account(f->st, c);
    sottod_store_close(f->st);
    f->st = open_store(f->path, 5);
    d = create_account(f->st, "dave");
    assert_true(d > c);
    assert_int_equal(sottod_store_account_lookup(f->st, "alice", &acc), SOTTOD_STORE_OK);
    assert_int_equal(acc.account_id, a);
}

/* A database written at schema version 1 (accounts without AUTOINCREMENT)
 * is migrated to the current version (6) on open: the rows and their ids are kept, the
 * UNIQUE username constraint still holds, devices still resolve, and ids
 * are not reused afterwards. */
static void test_migration_v1_to_v2(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    sottod_account acc;
    sottod_device dev;
    sottod_device_new nd;
    result_box b = {0};
    int64_t alice, bob, erin;
    sottod_addr bob1;

    alice = create_account(f->st, "alice");
    bob = create_account(f->st, "bob");
    bob1.account_id = bob;
    bob1.device_id = 1;
    sottod_store_close(f->st);
    f->st = NULL;

    /* Turn the file back into version 1: the old accounts table shape. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "BEGIN;"
                     "CREATE TABLE accounts_old("
                     "  id INTEGER PRIMARY KEY,"
                     "  username TEXT NOT NULL UNIQUE,"
                     "  created TEXT NOT NULL);"
                     "INSERT INTO accounts_old SELECT id, username, created FROM accounts;"
                     "DROP TABLE accounts;"
                     "ALTER TABLE accounts_old RENAME TO accounts;"
                     "DELETE FROM sqlite_sequence;"
                     "DROP TABLE kt_log; DROP TABLE kt_entries;" /* version 4 */
                     "DROP TABLE kt_heads; DROP TABLE kt_cosigs;"
                     "DROP TABLE profiles;"         /* version 5 */
                     "DROP INDEX envelopes_source;" /* version 6 */
                     "ALTER TABLE envelopes DROP COLUMN source_id;"
                     "COMMIT;"
                     "PRAGMA user_version=1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name='accounts'"
                                     " AND sql LIKE '%AUTOINCREMENT%'"),
                     0);

    f->st = open_store(f->path, 5);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 6);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name='accounts'"
                                     " AND sql LIKE '%AUTOINCREMENT%'"),
                     1);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM sqlite_schema"
                                     " WHERE name LIKE 'accounts_%'"),
                     0);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM accounts"), 2);
    assert_int_equal(sottod_store_account_lookup(f->st, "alice", &acc), SOTTOD_STORE_OK);
    assert_int_equal(acc.account_id, alice);
    assert_string_equal(acc.created, "2026-01-01");
    assert_int_equal(sottod_store_account_lookup(f->st, "bob", &acc), SOTTOD_STORE_OK);
    assert_int_equal(acc.account_id, bob);
    assert_int_equal(sottod_store_device_get(f->st, bob1, &dev), SOTTOD_STORE_OK);

    /* Usernames are still unique. */
    make_dev(&nd, 1, 1);
    assert_int_equal(sottod_store_account_create(f->st, "bob", NULL, 0, &nd, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_EXISTS);

    /* The highest id is not reused after the migration. */
    delete_account(f->st, bob);
    erin = create_account(f->st, "erin");
    assert_true(erin > bob);
}

/* ---- device lists (API v2) --------------------------------------------------- */

/* A list record with recognisable bytes: the store keeps bytes, it does
 * not parse them (sottod verifies with libsotto before storing). */
static void make_list(sottod_device_list_rec *l, uint8_t key_seed, uint64_t version, size_t len)
{
    memset(l, 0, sizeof(*l));
    l->present = true;
    l->account_key[0] = 0x05;
    memset(l->account_key + 1, key_seed, sizeof(l->account_key) - 1);
    l->version = version;
    l->len = len;
    for (size_t i = 0; i < len; i++)
        l->list[i] = (uint8_t)(version * 31 + i);
}

static void assert_list_is(sottod_store *st, int64_t acc, const sottod_device_list_rec *want)
{
    sottod_device_list_rec got;

    assert_int_equal(sottod_store_device_list_get(st, acc, &got), SOTTOD_STORE_OK);
    assert_int_equal(got.present, want->present);
    assert_int_equal(got.version, want->version);
    assert_int_equal(got.len, want->len);
    assert_memory_equal(got.list, want->list, want->len);
    assert_memory_equal(got.account_key, want->account_key, sizeof(got.account_key));
}

static size_t device_count(sottod_store *st, int64_t acc)
{
    sottod_device devs[SOTTOD_MAX_DEVICES];
    size_t n = 0;

    assert_int_equal(sottod_store_devices_list(st, acc, devs, SOTTOD_MAX_DEVICES, &n),
                     SOTTOD_STORE_OK);
    return n;
}

/* Each device-set change and its new list commit together, only when the
 * stored version is still the one the caller read (CONFLICT otherwise,
 * nothing written); recovery wipes every old device with its prekeys and
 * queue; bundles carry the list of the same transaction. */
static void test_device_list_changes(void **state)
{
    fixture *f = *state;
    sottod_device_list_rec l1, l2, l3, l4, l5, none;
    sottod_device_new d;
    sottod_device devs[SOTTOD_MAX_DEVICES];
    result_box b = {0};
    sottod_one_time_prekey k = {.id = 3, .pub = {0x05}};
    int64_t acc, old;
    size_t n = 0;
    listed q;

    /* Create with a list: the key and list are stored with device 1. */
    make_list(&l1, 0x61, 1, 150);
    make_dev(&d, 1, 1);
    assert_int_equal(
        sottod_store_account_create_listed(f->st, "alice", NULL, 0, &d, &l1, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    acc = b.res.u.account_create.account_id;
    assert_list_is(f->st, acc, &l1);
    /* A v1 account has none. */
    old = create_account(f->st, "oldie");
    memset(&none, 0, sizeof(none));
    assert_list_is(f->st, old, &none);

    /* Add under a given id with the next list. A stale prev_version is a
     * CONFLICT and adds nothing. */
    make_list(&l2, 0x61, 2, 227);
    make_dev(&d, 5, 5);
    d.added_by = 1;
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_add_listed(f->st, acc, &d, 8, 0, &l2, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_CONFLICT);
    assert_int_equal(device_count(f->st, acc), 1);
    assert_list_is(f->st, acc, &l1);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_add_listed(f->st, acc, &d, 8, 1, &l2, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.list_change.device_id, 5);
    assert_list_is(f->st, acc, &l2);
    /* A list must name the id; the version must go up (refused at submit). */
    d.device_id = 0;
    assert_int_equal(sottod_store_device_add_listed(f->st, acc, &d, 8, 2, &l2, box_done, &b),
                     SOTTOD_STORE_INVALID);
    d.device_id = 6;
    assert_int_equal(sottod_store_device_add_listed(f->st, acc, &d, 8, 2, &l2, box_done, &b),
                     SOTTOD_STORE_INVALID);
    /* The device list and rows come from one snapshot. */
    memset(&l5, 0, sizeof(l5));
    assert_int_equal(
        sottod_store_devices_list_with_list(f->st, acc, devs, SOTTOD_MAX_DEVICES, &n, &l5),
        SOTTOD_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(devs[1].device_id, 5);
    assert_int_equal(l5.version, 2);

    /* Bundles carry the list. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_bundle_take(f->st, acc, 0, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.list.version, 2);
    assert_int_equal(b.list.len, 227);
    assert_memory_equal(b.list.list, l2.list, 227);

    /* Remove device 5 with its prekeys and queue, and the list goes to v3. */
    sottod_addr a5 = {.account_id = acc, .device_id = 5};
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_one_time_prekeys_add(f->st, a5, &k, 1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(enqueue1(f->st, a5, 1, "for five", 1767225600 + 3600, &b), SOTTOD_STORE_OK);
    make_list(&l3, 0x61, 3, 150);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_remove_listed(f->st, a5, 1, &l3, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_CONFLICT);
    assert_int_equal(device_count(f->st, acc), 2);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_remove_listed(f->st, a5, 2, &l3, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(device_count(f->st, acc), 1);
    assert_list_is(f->st, acc, &l3);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM envelopes"), 0);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM one_time_prekeys"), 0);

    /* Recover: every old device goes with its prekeys and queue; the new
     * device (any id) and list v4 come in. */
    sottod_addr a1 = {.account_id = acc, .device_id = 1};
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_one_time_prekeys_add(f->st, a1, &k, 1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(enqueue1(f->st, a1, 2, "for one", 1767225600 + 3600, &b), SOTTOD_STORE_OK);
    make_list(&l4, 0x61, 4, 150);
    make_dev(&d, 3, 9);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_account_recover(f->st, acc, &d, 2, &l4, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_CONFLICT);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM envelopes"), 1);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_account_recover(f->st, acc, &d, 3, &l4, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.list_change.device_id, 3);
    assert_int_equal(b.res.u.list_change.deleted, 1);
    assert_int_equal(sottod_store_devices_list(f->st, acc, devs, SOTTOD_MAX_DEVICES, &n),
                     SOTTOD_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(devs[0].device_id, 3);
    assert_int_equal(devs[0].registration_id, 1009);
    assert_int_equal(devs[0].added_by, 0);
    assert_list_is(f->st, acc, &l4);
    list_all(f->st, a1, &q);
    assert_int_equal(q.n, 0);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM envelopes"), 0);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM one_time_prekeys"), 0);
    /* Recovery needs a list and an account that has one. */
    assert_int_equal(sottod_store_account_recover(f->st, acc, &d, 4, NULL, box_done, &b),
                     SOTTOD_STORE_INVALID);
    memset(&b, 0, sizeof(b));
    make_list(&l5, 0x62, 2, 150);
    assert_int_equal(sottod_store_account_recover(f->st, old, &d, 1, &l5, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_CONFLICT);
    assert_int_equal(device_count(f->st, old), 1);
    make_list(&l5, 0x62, 1, 150);

    /* set: a v1 account gets its key and list (prev 0) once. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_list_set(f->st, old, 0, &l5, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_list_is(f->st, old, &l5);
    memset(&b, 0, sizeof(b));
    make_list(&l2, 0x63, 2, 150); /* another key: must not replace the stored one */
    assert_int_equal(sottod_store_device_list_set(f->st, old, 0, &l2, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_CONFLICT);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_list_set(f->st, old, 1, &l2, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    {
        sottod_device_list_rec got;

        assert_int_equal(sottod_store_device_list_get(f->st, old, &got), SOTTOD_STORE_OK);
        assert_int_equal(got.version, 2);
        assert_memory_equal(got.account_key, l5.account_key, 33); /* key kept */
    }
    /* The v1 path with prev_version 0 is refused once a list exists. */
    make_dev(&d, 0, 4);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_add_listed(f->st, old, &d, 8, 0, NULL, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_CONFLICT);
    assert_int_equal(sottod_store_device_list_get(f->st, 99999, &none), SOTTOD_STORE_NOT_FOUND);
}

/* A database at schema version 2 (before account keys) migrates to 3: the
 * accounts, devices and queued envelopes are kept, the new columns are
 * NULL (no account key), and such an account can then get its list. */
static void test_migration_v2_to_v3(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    sottod_device_list_rec none, l1;
    result_box b = {0};
    int64_t alice, bob;
    sottod_addr bob1;
    listed q;

    alice = create_account(f->st, "alice");
    bob = create_account(f->st, "bob");
    bob1.account_id = bob;
    bob1.device_id = 1;
    assert_int_equal(add_device(f->st, alice, 0), 2);
    assert_int_equal(enqueue1(f->st, bob1, 7, "queued before", 1767225600 + 3600, &b),
                     SOTTOD_STORE_OK);
    sottod_store_close(f->st);
    f->st = NULL;

    /* Back to version 2: the accounts table without the three columns. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN;"
                                  "ALTER TABLE accounts DROP COLUMN account_key;"
                                  "ALTER TABLE accounts DROP COLUMN device_list;"
                                  "ALTER TABLE accounts DROP COLUMN device_list_version;"
                                  "DROP TABLE kt_log; DROP TABLE kt_entries;" /* version 4 */
                                  "DROP TABLE kt_heads; DROP TABLE kt_cosigs;"
                                  "DROP TABLE profiles;"                             /* version 5 */
                                  "ALTER TABLE accounts DROP COLUMN delivery_token;" /* 6 */
                                  "DROP INDEX envelopes_source;"
                                  "ALTER TABLE envelopes DROP COLUMN source_id;"
                                  "COMMIT;"
                                  "PRAGMA user_version=2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 2);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM pragma_table_info('accounts')"
                                     " WHERE name LIKE 'account_key'"),
                     0);

    f->st = open_store(f->path, 5);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 6);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM pragma_table_info('accounts')"
                                     " WHERE name IN ('account_key', 'device_list',"
                                     " 'device_list_version')"),
                     3);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM accounts WHERE account_key IS NULL"
                                     " AND device_list IS NULL AND device_list_version IS NULL"),
                     2);
    memset(&none, 0, sizeof(none));
    assert_list_is(f->st, alice, &none);
    assert_int_equal(device_count(f->st, alice), 2);
    list_all(f->st, bob1, &q);
    assert_int_equal(q.n, 1);
    assert_string_equal(q.body[0], "queued before");
    /* The migrated account takes its first list. */
    make_list(&l1, 0x44, 1, 160);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_list_set(f->st, bob, 0, &l1, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_list_is(f->st, bob, &l1);
}

static void test_devices(void **state)
{
    fixture *f = *state;
    int64_t acc = create_account(f->st, "alice");
    sottod_device devs[SOTTOD_MAX_DEVICES];
    sottod_device_new d;
    sottod_device dev;
    result_box b = {0};
    size_t n = 0;
    sottod_addr a1 = {acc, 1};

    assert_int_equal(sottod_store_device_get(f->st, a1, &dev), SOTTOD_STORE_OK);
    assert_int_equal(dev.device_id, 1);
    assert_int_equal(dev.registration_id, 1001);
    assert_int_equal(dev.auth_key[0], 0xA1);
    assert_int_equal(dev.identity_key[0], 0x05);
    assert_false(dev.has_signed_prekey);
    assert_string_equal(dev.created, "2026-01-01");
    assert_string_equal(dev.last_seen, "");

    /* Device 1 has no signer, whatever the caller put there. */
    assert_int_equal(dev.added_by, 0);
    {
        static const uint8_t zero[SOTTOD_SIGNATURE_BYTES];

        assert_memory_equal(dev.add_signature, zero, sizeof(zero));
    }

    /* Auto ids fill from 2, an explicit id in use is refused. */
    assert_int_equal(add_device(f->st, acc, 0), 2);
    assert_int_equal(sottod_store_device_get(f->st, (sottod_addr){acc, 2}, &dev), SOTTOD_STORE_OK);
    assert_int_equal(dev.added_by, 1);
    assert_int_equal(dev.add_signature[0], 0xD5);
    assert_int_equal(dev.add_signature[63], 0xD5);
    assert_int_equal(dev.auth_key[0], 0xA0 ^ 7); /* add_device(0) seeds with 0 + 7 */
    assert_int_equal(add_device(f->st, acc, 5), 5);
    assert_int_equal(add_device(f->st, acc, 0), 3);
    make_dev(&d, 5, 9);
    assert_int_equal(sottod_store_device_add(f->st, acc, &d, 8, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_EXISTS);
    /* Limit: 4 devices exist, limit 4 refuses the fifth. */
    memset(&b, 0, sizeof(b));
    make_dev(&d, 0, 9);
    assert_int_equal(sottod_store_device_add(f->st, acc, &d, 4, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_DEVICE_LIMIT);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_add(f->st, 999, &d, 4, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);
    assert_int_equal(sottod_store_device_add(f->st, acc, &d, SOTTOD_MAX_DEVICES + 1, box_done, &b),
                     SOTTOD_STORE_INVALID);

    assert_int_equal(sottod_store_devices_list(f->st, acc, devs, SOTTOD_MAX_DEVICES, &n),
                     SOTTOD_STORE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(devs[0].device_id, 1);
    assert_int_equal(devs[1].device_id, 2);
    assert_int_equal(devs[2].device_id, 3);
    assert_int_equal(devs[3].device_id, 5);
    assert_int_equal(sottod_store_devices_list(f->st, 999, devs, SOTTOD_MAX_DEVICES, &n),
                     SOTTOD_STORE_NOT_FOUND);

    /* Remove device 3 with its queue. */
    {
        sottod_addr a3 = {acc, 3};
        result_box e;
        uint32_t depth = 99;

        assert_int_equal(enqueue1(f->st, a3, 1, "x", atomic_load(&fake_now) + 100, &e),
                         SOTTOD_STORE_OK);
        memset(&b, 0, sizeof(b));
        assert_int_equal(sottod_store_device_remove(f->st, a3, box_done, &b), SOTTOD_STORE_OK);
        assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
        assert_int_equal(sottod_store_device_get(f->st, a3, &dev), SOTTOD_STORE_NOT_FOUND);
        assert_int_equal(sottod_store_queue_depth(f->st, a3, &depth), SOTTOD_STORE_NOT_FOUND);
        memset(&b, 0, sizeof(b));
        assert_int_equal(sottod_store_device_remove(f->st, a3, box_done, &b), SOTTOD_STORE_OK);
        assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);
        /* Its id is free again. */
        assert_int_equal(add_device(f->st, acc, 0), 3);
    }

    /* Last seen: a date, never a time; a later touch on another day moves it. */
    memset(&b, 0, sizeof(b));
    atomic_store(&fake_now, 1767225600 + 86400 * 40 + 13 * 3600 + 17 * 60 + 5);
    assert_int_equal(sottod_store_device_touch(f->st, a1, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_device_get(f->st, a1, &dev), SOTTOD_STORE_OK);
    assert_string_equal(dev.last_seen, "2026-02-10");
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_touch(f->st, a1, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    {
        sottod_addr nope = {acc, 77};

        memset(&b, 0, sizeof(b));
        assert_int_equal(sottod_store_device_touch(f->st, nope, box_done, &b), SOTTOD_STORE_OK);
        assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);
    }
}

/* ---- group commit ordering and completions ------------------------------------ */

#define GC_OPS 600

typedef struct gc_state {
    sottod_store *st;
    int order[GC_OPS];
    int statuses[GC_OPS];
    int n;
    int visible_at_completion; /* reads during callbacks saw the op's effect */
    pthread_t loop_thread;
    int wrong_thread;
    _Atomic int wakes;
    _Atomic int wake_on_loop_thread;
} gc_state;

typedef struct gc_arg {
    gc_state *gs;
    int idx;
    sottod_addr to;
} gc_arg;

static void gc_wake(void *arg)
{
    gc_state *gs = arg;

    atomic_fetch_add(&gs->wakes, 1);
    if (pthread_equal(pthread_self(), gs->loop_thread))
        atomic_fetch_add(&gs->wake_on_loop_thread, 1);
}

static int find_id_cb(void *arg, const sottod_envelope *e)
{
    uint8_t *want = arg;

    if (memcmp(e->id, want, SOTTOD_ENVELOPE_ID_BYTES) == 0) {
        want[0] ^= 0xFF; /* mark found */
        return 1;
    }
    return 0;
}

static void gc_done(void *arg, const sottod_store_result *res)
{
    gc_arg *ga = arg;
    gc_state *gs = ga->gs;
    uint8_t id[SOTTOD_ENVELOPE_ID_BYTES];
    uint8_t orig0;

    if (!pthread_equal(pthread_self(), gs->loop_thread))
        gs->wrong_thread++;
    gs->order[gs->n++] = ga->idx;
    gs->statuses[ga->idx] = res->status;
    if (res->status == SOTTOD_STORE_OK) {
        /* The effect is committed: the read connection already sees it. */
        env_id(id, (uint32_t)ga->idx);
        orig0 = id[0];
        assert_int_equal(
            sottod_store_envelopes_list(gs->st, ga->to, 0, 100000, find_id_cb, id, NULL),
            SOTTOD_STORE_OK);
        if (id[0] != orig0)
            gs->visible_at_completion++;
    }
    free(ga);
}

static void test_group_commit_order_and_callbacks(void **state)
{
    fixture *f = *state;
    sottod_store *st;
    gc_state *gs = calloc(1, sizeof(*gs));
    char path[160];
    int64_t acc;
    int i, ok = 0;

    assert_non_null(gs);
    snprintf(path, sizeof(path), "%s/gc.db", f->dir);
    st = open_store(path, 100000);
    gs->st = st;
    gs->loop_thread = pthread_self();
    sottod_store_set_wake(st, gc_wake, gs);
    acc = create_account(st, "alice");

    /* Submit a stream of enqueues; every 7th is to a device that does not
     * exist (STALE), which must not disturb its neighbours in the batch. */
    for (i = 0; i < GC_OPS; i++) {
        gc_arg *ga = calloc(1, sizeof(*ga));
        sottod_envelope_in e;
        char body[32];

        assert_non_null(ga);
        ga->gs = gs;
        ga->idx = i;
        ga->to.account_id = acc;
        ga->to.device_id = (i % 7 == 3) ? 9 : 1;
        snprintf(body, sizeof(body), "body-%d", i);
        memset(&e, 0, sizeof(e));
        e.to = ga->to;
        env_id(e.id, (uint32_t)i);
        e.expires_at = atomic_load(&fake_now) + 1000;
        e.body = (const uint8_t *)body;
        e.body_len = strlen(body);
        assert_int_equal(sottod_store_envelopes_enqueue(st, &e, 1, gc_done, ga), SOTTOD_STORE_OK);
    }
    /* Completions never run on their own: only when the loop asks. Wait
     * until the writer has committed everything (wake count stops). */
    for (i = 0; i < 2000; i++) {
        uint32_t depth = 0;

        assert_int_equal(sottod_store_queue_depth(st, (sottod_addr){acc, 1}, &depth),
                         SOTTOD_STORE_OK);
        if (depth == GC_OPS - GC_OPS / 7 - (GC_OPS % 7 > 3 ? 1 : 0))
            break;
        usleep(1000);
    }
    assert_int_equal(gs->n, 0);
    assert_true(atomic_load(&gs->wakes) >= 1);
    assert_int_equal(atomic_load(&gs->wake_on_loop_thread), 0); /* wake runs on the writer */

    while (gs->n < GC_OPS) {
        if (sottod_store_run_completions(st) == 0)
            usleep(1000);
    }
    for (i = 0; i < GC_OPS; i++) {
        assert_int_equal(gs->order[i], i); /* submission order */
        if (i % 7 == 3) {
            assert_int_equal(gs->statuses[i], SOTTOD_STORE_STALE);
        } else {
            assert_int_equal(gs->statuses[i], SOTTOD_STORE_OK);
            ok++;
        }
    }
    assert_int_equal(gs->visible_at_completion, ok);
    assert_int_equal(gs->wrong_thread, 0);
    /* Group commit: far fewer transactions (one wake per batch) than ops. */
    print_message("group commit: %d ops in %d batches\n", GC_OPS + 1, atomic_load(&gs->wakes));
    assert_true(atomic_load(&gs->wakes) < GC_OPS);
    {
        sottod_store_stats stats;

        sottod_store_stats_get(st, &stats);
        assert_int_equal(stats.ops, GC_OPS + 1);
        assert_int_equal(stats.batches, (uint64_t)atomic_load(&gs->wakes));
        assert_int_equal(stats.pending_ops, 0);
        assert_int_equal(stats.queue_depth_total, ok);
        assert_true(stats.commit_ns_total >= stats.last_commit_ns && stats.last_commit_ns > 0);
    }

    /* After close, submissions are refused and done is not called. */
    sottod_store_close(st);
    free(gs);
}

/* A completion may submit more work (re-entrancy). */
typedef struct chain_state {
    sottod_store *st;
    int64_t acc;
    int remaining;
    int completed;
} chain_state;

static void chain_done(void *arg, const sottod_store_result *res)
{
    chain_state *cs = arg;
    sottod_envelope_in e;
    static const uint8_t body[] = "chained";

    assert_int_equal(res->status, SOTTOD_STORE_OK);
    cs->completed++;
    if (cs->remaining-- <= 0)
        return;
    memset(&e, 0, sizeof(e));
    e.to.account_id = cs->acc;
    e.to.device_id = 1;
    env_id(e.id, (uint32_t)(1000 + cs->remaining));
    e.expires_at = atomic_load(&fake_now) + 100;
    e.body = body;
    e.body_len = sizeof(body);
    assert_int_equal(sottod_store_envelopes_enqueue(cs->st, &e, 1, chain_done, cs),
                     SOTTOD_STORE_OK);
}

static void test_completion_may_submit(void **state)
{
    fixture *f = *state;
    chain_state cs = {.st = f->st, .remaining = 4};
    sottod_store_result fake = {.type = SOTTOD_OP_BARRIER, .status = 0};
    int spins = 0;

    cs.acc = create_account(f->st, "alice");
    /* Five chained enqueues: exactly the fixture's queue cap of 5. */
    chain_done(&cs, &fake);
    while (cs.completed < 5 && spins++ < 5000) {
        if (sottod_store_run_completions(f->st) == 0)
            usleep(1000);
    }
    assert_int_equal(cs.completed, 5);
}

/* ---- one-time prekeys under concurrency ------------------------------------------- */

#define OTPK_KEYS 400
#define OTPK_THREADS 4
#define OTPK_TAKES_PER_THREAD 150

typedef struct otpk_state {
    sottod_store *st;
    int64_t acc;
    pthread_mutex_t mu;
    int handed[OTPK_KEYS + 1];
    int empty;
    int total;
    int bad;
} otpk_state;

static void otpk_done(void *arg, const sottod_store_result *res)
{
    otpk_state *os = arg;
    const sottod_bundle *b;

    pthread_mutex_lock(&os->mu);
    os->total++;
    if (res->status != SOTTOD_STORE_OK || res->u.bundle_take.n != 1) {
        os->bad++;
    } else {
        b = &res->u.bundle_take.bundles[0];
        if (b->has_one_time_prekey) {
            if (b->one_time_prekey.id >= 1 && b->one_time_prekey.id <= OTPK_KEYS &&
                b->one_time_prekey.pub[0] == 0x05 &&
                b->one_time_prekey.pub[1] == (uint8_t)b->one_time_prekey.id &&
                b->one_time_prekey.pub[2] == (uint8_t)(b->one_time_prekey.id >> 8))
                os->handed[b->one_time_prekey.id]++;
            else
                os->bad++;
        } else {
            os->empty++;
        }
        if (!b->has_signed_prekey || b->signed_prekey_id != 77 || b->identity_key[0] != 0x05)
            os->bad++;
    }
    pthread_mutex_unlock(&os->mu);
}

static void *otpk_thread(void *arg)
{
    otpk_state *os = arg;
    int i;

    for (i = 0; i < OTPK_TAKES_PER_THREAD; i++) {
        if (sottod_store_bundle_take(os->st, os->acc, 1, otpk_done, os) != SOTTOD_STORE_OK) {
            pthread_mutex_lock(&os->mu);
            os->bad++;
            pthread_mutex_unlock(&os->mu);
        }
        if (i % 10 == 0)
            (void)sottod_store_drain(os->st);
    }
    (void)sottod_store_drain(os->st);
    return NULL;
}

static void test_one_time_prekeys_handed_out_once(void **state)
{
    fixture *f = *state;
    otpk_state *os = calloc(1, sizeof(*os));
    sottod_one_time_prekey *keys = calloc(OTPK_KEYS, sizeof(*keys));
    pthread_t th[OTPK_THREADS];
    uint8_t spk[SOTTOD_PUBLIC_KEY_BYTES], sig[SOTTOD_SIGNATURE_BYTES];
    result_box b = {0};
    uint32_t count = 99;
    int i, handed = 0;

    assert_non_null(os);
    assert_non_null(keys);
    os->st = f->st;
    os->acc = create_account(f->st, "bob");
    pthread_mutex_init(&os->mu, NULL);
    memset(spk, 0x05, sizeof(spk));
    memset(sig, 0x5A, sizeof(sig));
    assert_int_equal(sottod_store_signed_prekey_set(f->st, (sottod_addr){os->acc, 1}, 77, spk, sig,
                                                    box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    /* Upload in two batches; ids 1..OTPK_KEYS, pub encodes the id. */
    for (i = 0; i < OTPK_KEYS; i++) {
        keys[i].id = (uint32_t)(i + 1);
        keys[i].pub[0] = 0x05;
        keys[i].pub[1] = (uint8_t)(i + 1);
        keys[i].pub[2] = (uint8_t)((i + 1) >> 8);
    }
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_one_time_prekeys_add(f->st, (sottod_addr){os->acc, 1}, keys, 250,
                                                       box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.one_time_prekeys_add.count, 250);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_one_time_prekeys_add(f->st, (sottod_addr){os->acc, 1}, keys + 250,
                                                       OTPK_KEYS - 250, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.one_time_prekeys_add.count, OTPK_KEYS);
    assert_int_equal(sottod_store_one_time_prekey_count(f->st, (sottod_addr){os->acc, 1}, &count),
                     SOTTOD_STORE_OK);
    assert_int_equal(count, OTPK_KEYS);

    for (i = 0; i < OTPK_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, otpk_thread, os), 0);
    for (i = 0; i < OTPK_THREADS; i++)
        pthread_join(th[i], NULL);
    (void)sottod_store_drain(f->st);

    assert_int_equal(os->bad, 0);
    assert_int_equal(os->total, OTPK_THREADS * OTPK_TAKES_PER_THREAD);
    for (i = 1; i <= OTPK_KEYS; i++) {
        assert_true(os->handed[i] <= 1); /* never twice */
        handed += os->handed[i];
    }
    assert_int_equal(handed, OTPK_KEYS); /* every key handed out */
    assert_int_equal(os->empty, OTPK_THREADS * OTPK_TAKES_PER_THREAD - OTPK_KEYS);
    assert_int_equal(sottod_store_one_time_prekey_count(f->st, (sottod_addr){os->acc, 1}, &count),
                     SOTTOD_STORE_OK);
    assert_int_equal(count, 0);

    /* Bundle of every device; unknown account / device. Device 2 has
     * one-time prekeys but no signed prekey: none of them is taken. */
    add_device(f->st, os->acc, 0);
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        sottod_store_one_time_prekeys_add(f->st, (sottod_addr){os->acc, 2}, keys, 3, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_bundle_take(f->st, os->acc, 0, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.bundle_take.n, 2);
    assert_int_equal(b.bundles[0].device_id, 1);
    assert_int_equal(b.bundles[1].device_id, 2);
    assert_false(b.bundles[1].has_signed_prekey);
    assert_false(b.bundles[1].has_one_time_prekey);
    assert_int_equal(b.bundles[1].one_time_prekeys_left, 3);
    assert_int_equal(b.bundles[1].added_by, 1);
    assert_int_equal(b.bundles[1].add_signature[10], 0xD5);
    assert_int_equal(b.bundles[1].auth_key[0], 0xA0 ^ 7); /* add_device(0) seeds with 0 + 7 */
    assert_int_equal(b.bundles[0].added_by, 0);
    assert_int_equal(b.bundles[0].auth_key[0], 0xA1);
    assert_int_equal(sottod_store_one_time_prekey_count(f->st, (sottod_addr){os->acc, 2}, &count),
                     SOTTOD_STORE_OK);
    assert_int_equal(count, 3);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_bundle_take(f->st, os->acc, 9, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_bundle_take(f->st, 4242, 0, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);

    pthread_mutex_destroy(&os->mu);
    free(keys);
    free(os);
}

/* ---- queues ---------------------------------------------------------------------- */

static void test_full_queue_refused_atomically(void **state)
{
    fixture *f = *state; /* max_queue = 5 */
    int64_t acc = create_account(f->st, "alice");
    sottod_addr a1 = {acc, 1}, a2;
    sottod_envelope_in batch[2];
    result_box b;
    uint32_t depth = 0;
    listed l;
    int i;

    a2.account_id = acc;
    a2.device_id = add_device(f->st, acc, 0);
    for (i = 0; i < 5; i++)
        assert_int_equal(enqueue1(f->st, a1, (uint32_t)i, "m", atomic_load(&fake_now) + 100, &b),
                         SOTTOD_STORE_OK);
    assert_int_equal(enqueue1(f->st, a1, 5, "m", atomic_load(&fake_now) + 100, &b),
                     SOTTOD_STORE_QUEUE_FULL);
    assert_int_equal(b.res.u.enqueue.failed.account_id, acc);
    assert_int_equal(b.res.u.enqueue.failed.device_id, 1);
    assert_int_equal(b.res.u.enqueue.queued, 0);

    /* A batch for (a2, a1-full) queues nothing, not even a2's. */
    memset(batch, 0, sizeof(batch));
    batch[0].to = a2;
    env_id(batch[0].id, 100);
    batch[1].to = a1;
    env_id(batch[1].id, 101);
    for (i = 0; i < 2; i++) {
        batch[i].expires_at = atomic_load(&fake_now) + 100;
        batch[i].body = (const uint8_t *)"zz";
        batch[i].body_len = 2;
    }
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_enqueue(f->st, batch, 2, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_QUEUE_FULL);
    assert_int_equal(sottod_store_queue_depth(f->st, a2, &depth), SOTTOD_STORE_OK);
    assert_int_equal(depth, 0);
    list_all(f->st, a2, &l);
    assert_int_equal(l.n, 0);
    assert_int_equal(sottod_store_queue_depth(f->st, a1, &depth), SOTTOD_STORE_OK);
    assert_int_equal(depth, 5);

    /* A duplicate id (retry) on a full queue is accepted as a duplicate. */
    assert_int_equal(enqueue1(f->st, a1, 4, "m", atomic_load(&fake_now) + 100, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.enqueue.duplicates, 1);
    assert_int_equal(b.res.u.enqueue.queued, 0);

    /* Ack one: room for one more. */
    {
        uint8_t id[SOTTOD_ENVELOPE_ID_BYTES];

        env_id(id, 0);
        memset(&b, 0, sizeof(b));
        assert_int_equal(sottod_store_envelopes_delete(f->st, a1, id, 1, box_done, &b),
                         SOTTOD_STORE_OK);
        assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
        assert_int_equal(b.res.u.deleted.deleted, 1);
    }
    assert_int_equal(enqueue1(f->st, a1, 6, "m", atomic_load(&fake_now) + 100, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(enqueue1(f->st, a1, 7, "m", atomic_load(&fake_now) + 100, &b),
                     SOTTOD_STORE_QUEUE_FULL);

    /* Now the same batch works once a1 is not full... and STALE for a
     * removed device. */
    batch[1].to.device_id = 42;
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_enqueue(f->st, batch, 2, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_STALE);
    assert_int_equal(b.res.u.enqueue.failed.device_id, 42);
    assert_int_equal(sottod_store_queue_depth(f->st, a2, &depth), SOTTOD_STORE_OK);
    assert_int_equal(depth, 0);

    /* Hostile sizes never reach the queue. */
    {
        sottod_envelope_in e = batch[0];
        uint8_t *big = calloc(1, SOTTOD_ENVELOPE_MAX + 1);

        assert_non_null(big);
        e.body = big;
        e.body_len = SOTTOD_ENVELOPE_MAX + 1;
        assert_int_equal(sottod_store_envelopes_enqueue(f->st, &e, 1, box_done, &b),
                         SOTTOD_STORE_INVALID);
        e.body_len = 0;
        assert_int_equal(sottod_store_envelopes_enqueue(f->st, &e, 1, box_done, &b),
                         SOTTOD_STORE_INVALID);
        e.body_len = 4;
        e.to.device_id = 0;
        assert_int_equal(sottod_store_envelopes_enqueue(f->st, &e, 1, box_done, &b),
                         SOTTOD_STORE_INVALID);
        assert_int_equal(sottod_store_envelopes_enqueue(f->st, &e, 0, box_done, &b),
                         SOTTOD_STORE_INVALID);
        free(big);
    }
}

static void test_ttl_expiry(void **state)
{
    fixture *f = *state;
    int64_t acc = create_account(f->st, "alice");
    sottod_addr a1 = {acc, 1};
    int64_t t0 = atomic_load(&fake_now);
    result_box b;
    uint32_t depth = 0;
    listed l;

    assert_int_equal(enqueue1(f->st, a1, 1, "short", t0 + 10, &b), SOTTOD_STORE_OK);
    assert_int_equal(enqueue1(f->st, a1, 2, "long", t0 + 1000, &b), SOTTOD_STORE_OK);
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.body[0], "short");
    assert_true(l.seq[0] < l.seq[1]);

    /* At exactly expires_at it is gone from listings... */
    atomic_store(&fake_now, t0 + 10);
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.body[0], "long");
    /* ...and the expiry pass deletes it and fixes the depth. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_expire(f->st, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.deleted.deleted, 1);
    assert_int_equal(sottod_store_queue_depth(f->st, a1, &depth), SOTTOD_STORE_OK);
    assert_int_equal(depth, 1);
    atomic_store(&fake_now, t0 + 5000);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_expire(f->st, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.deleted.deleted, 1);
    assert_int_equal(sottod_store_queue_depth(f->st, a1, &depth), SOTTOD_STORE_OK);
    assert_int_equal(depth, 0);
    /* The space is usable again: 5 more fit in the 5-deep queue. */
    {
        int i;

        for (i = 0; i < 5; i++)
            assert_int_equal(enqueue1(f->st, a1, (uint32_t)(10 + i), "n", t0 + 9000, &b),
                             SOTTOD_STORE_OK);
    }
}

static void test_delete_only_own_device(void **state)
{
    fixture *f = *state;
    int64_t alice = create_account(f->st, "alice");
    int64_t bob = create_account(f->st, "bob");
    sottod_addr a1 = {alice, 1}, a2, b1 = {bob, 1};
    uint8_t ids[3][SOTTOD_ENVELOPE_ID_BYTES];
    result_box b;
    listed l;

    a2.account_id = alice;
    a2.device_id = add_device(f->st, alice, 0);
    assert_int_equal(enqueue1(f->st, a1, 1, "for-a1", atomic_load(&fake_now) + 100, &b), 0);
    assert_int_equal(enqueue1(f->st, a2, 2, "for-a2", atomic_load(&fake_now) + 100, &b), 0);
    assert_int_equal(enqueue1(f->st, b1, 3, "for-b1", atomic_load(&fake_now) + 100, &b), 0);
    /* The same envelope id may exist in two queues (it is per device). */
    assert_int_equal(enqueue1(f->st, a2, 1, "a2-same-id", atomic_load(&fake_now) + 100, &b), 0);
    env_id(ids[0], 1);
    env_id(ids[1], 2);
    env_id(ids[2], 3);

    /* a2 acks every id it can think of: only its own go. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_delete(f->st, a2, &ids[0][0], 3, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.deleted.deleted, 2); /* its id 1 and id 2 */
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.body[0], "for-a1");
    list_all(f->st, b1, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.body[0], "for-b1");
    list_all(f->st, a2, &l);
    assert_int_equal(l.n, 0);

    /* bob acks alice's id: nothing happens. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_delete(f->st, b1, &ids[0][0], 1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.deleted.deleted, 0);
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 1);

    /* Paging: after_seq and limit. */
    {
        int64_t last = 0;
        int i;
        listed page;

        for (i = 0; i < 3; i++)
            assert_int_equal(
                enqueue1(f->st, b1, (uint32_t)(20 + i), "p", atomic_load(&fake_now) + 100, &b), 0);
        memset(&page, 0, sizeof(page));
        assert_int_equal(sottod_store_envelopes_list(f->st, b1, 0, 2, list_cb, &page, &last), 0);
        assert_int_equal(page.n, 2);
        assert_int_equal(last, page.seq[1]);
        assert_int_equal(sottod_store_envelopes_list(f->st, b1, last, 10, list_cb, &page, &last),
                         0);
        assert_int_equal(page.n, 4);
        assert_true(page.seq[2] > page.seq[1] && page.seq[3] > page.seq[2]);
    }
}

/* ---- disclose ----------------------------------------------------------------------- */

static void test_disclose_holds_no_secrets(void **state)
{
    fixture *f = *state;
    uint8_t ed_pk[crypto_sign_PUBLICKEYBYTES], ed_sk[crypto_sign_SECRETKEYBYTES];
    uint8_t body[200];
    char body_hex[401], sk_hex[2 * crypto_sign_SECRETKEYBYTES + 1];
    char *b64 = NULL, *json = NULL;
    size_t b64_len;
    sottod_device_new d;
    sottod_addr a1;
    sottod_envelope_in e;
    result_box b = {0};
    json_t *root;
    json_error_t jerr;
    sottod_one_time_prekey k = {.id = 5};
    uint8_t spk[33], sig[64];

    assert_int_equal(sodium_init() >= 0, 1);
    crypto_sign_keypair(ed_pk, ed_sk);
    make_dev(&d, 1, 3);
    memcpy(d.auth_key, ed_pk, sizeof(d.auth_key));
    assert_int_equal(sottod_store_account_create(f->st, "dora\"<evil>", NULL, 0, &d, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    a1.account_id = b.res.u.account_create.account_id;
    a1.device_id = 1;
    memset(spk, 0x05, sizeof(spk));
    memset(sig, 0x44, sizeof(sig));
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_signed_prekey_set(f->st, a1, 9, spk, sig, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    k.pub[0] = 0x05;
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_one_time_prekeys_add(f->st, a1, &k, 1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_device_touch(f->st, a1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);

    randombytes_buf(body, sizeof(body));
    memcpy(body, "CIPHERTEXT-MARKER", 17);
    memset(&e, 0, sizeof(e));
    e.to = a1;
    env_id(e.id, 1);
    e.expires_at = atomic_load(&fake_now) + 100;
    e.body = body;
    e.body_len = sizeof(body);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_enqueue(f->st, &e, 1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);

    assert_int_equal(sottod_store_disclose(f->st, "nobody", &json), SOTTOD_STORE_NOT_FOUND);
    assert_null(json);
    assert_int_equal(sottod_store_disclose(f->st, "dora\"<evil>", &json), SOTTOD_STORE_OK);
    assert_non_null(json);

    /* It is valid JSON with the expected facts... */
    root = json_loads(json, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "username")), "dora\"<evil>");
    assert_string_equal(json_string_value(json_object_get(root, "account_created")), "2026-01-01");
    {
        json_t *dev = json_array_get(json_object_get(root, "devices"), 0);
        char pk_hex[65];

        assert_non_null(dev);
        sodium_bin2hex(pk_hex, sizeof(pk_hex), ed_pk, sizeof(ed_pk));
        assert_string_equal(json_string_value(json_object_get(dev, "auth_public_key")), pk_hex);
        sodium_bin2hex(pk_hex, sizeof(pk_hex), spk, 32);
        assert_non_null(json_string_value(json_object_get(dev, "signed_prekey_public_key")));
        assert_non_null(
            strstr(json_string_value(json_object_get(dev, "signed_prekey_public_key")), pk_hex));
        assert_string_equal(json_string_value(json_object_get(root, "last_seen_date")),
                            "2026-01-01");
        assert_int_equal(json_integer_value(json_object_get(root, "device_count")), 1);
        /* issue 12: creation date, last-seen date, device count and public
         * keys, nothing else (no queue counts, prekey count, signed prekey
         * id or signature, registration id, device dates) */
        {
            static const char *const top[] = {
                "username",           "account_created", "last_seen_date", "device_count",
                "account_public_key", "devices",         "not_held"};
            static const char *const per_dev[] = {"device_id", "identity_public_key",
                                                  "auth_public_key", "signed_prekey_public_key"};
            const char *key;
            json_t *v;

            json_object_foreach(root, key, v)
            {
                size_t j = 0;
                while (j < sizeof(top) / sizeof(top[0]) && strcmp(top[j], key) != 0)
                    j++;
                if (j == sizeof(top) / sizeof(top[0]))
                    fail_msg("disclose prints an unexpected field %s", key);
            }
            json_object_foreach(dev, key, v)
            {
                size_t j = 0;
                while (j < sizeof(per_dev) / sizeof(per_dev[0]) && strcmp(per_dev[j], key) != 0)
                    j++;
                if (j == sizeof(per_dev) / sizeof(per_dev[0]))
                    fail_msg("disclose prints an unexpected device field %s", key);
            }
        }
    }
    json_decref(root);

    /* ...and no body in any encoding, no private key, no address, no time. */
    sodium_bin2hex(body_hex, sizeof(body_hex), body, sizeof(body));
    sodium_bin2hex(sk_hex, sizeof(sk_hex), ed_sk, sizeof(ed_sk));
    b64_len = sodium_base64_ENCODED_LEN(sizeof(body), sodium_base64_VARIANT_ORIGINAL);
    b64 = malloc(b64_len);
    assert_non_null(b64);
    sodium_bin2base64(b64, b64_len, body, sizeof(body), sodium_base64_VARIANT_ORIGINAL);
    assert_null(strstr(json, "CIPHERTEXT-MARKER"));
    assert_null(strstr(json, "434950484552544558542d4d41524b4552")); /* hex of the marker */
    assert_null(strstr(json, body_hex));
    assert_null(strstr(json, body_hex + 40));
    b64[40] = '\0';
    assert_null(strstr(json, b64));
    assert_null(strstr(json, sk_hex));
    sk_hex[64] = '\0'; /* the seed half of the secret key */
    assert_null(strstr(json, sk_hex));
    assert_null(strstr(json, "127.0.0.1"));
    assert_null(strstr(json, "00:00")); /* dates only, no times of day */
    sodium_memzero(ed_sk, sizeof(ed_sk));
    sodium_memzero(sk_hex, sizeof(sk_hex));
    free(b64);
    free(json);
}

/* ---- reopen and attachments --------------------------------------------------------- */

static void test_reopen_keeps_data(void **state)
{
    fixture *f = *state;
    int64_t acc = create_account(f->st, "alice");
    sottod_addr a1 = {acc, 1};
    sottod_account a;
    result_box b;
    listed l;
    int64_t seq1;
    uint8_t id[SOTTOD_ENVELOPE_ID_BYTES];

    assert_int_equal(enqueue1(f->st, a1, 1, "persisted", atomic_load(&fake_now) + 100, &b), 0);
    list_all(f->st, a1, &l);
    seq1 = l.seq[0];
    /* Delete it so its seq is the highest ever used but no longer present. */
    env_id(id, 1);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_delete(f->st, a1, id, 1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(enqueue1(f->st, a1, 2, "persisted-2", atomic_load(&fake_now) + 100, &b), 0);
    sottod_store_close(f->st);

    f->st = open_store(f->path, 5);
    assert_int_equal(sottod_store_account_lookup(f->st, "alice", &a), SOTTOD_STORE_OK);
    assert_int_equal(a.account_id, acc);
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.body[0], "persisted-2");
    assert_true(l.seq[0] > seq1);
    /* Sequence numbers are never reused, even after deletes and a reopen. */
    env_id(id, 2);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_delete(f->st, a1, id, 1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    seq1 = l.seq[0];
    sottod_store_close(f->st);
    f->st = open_store(f->path, 5);
    assert_int_equal(enqueue1(f->st, a1, 3, "persisted-3", atomic_load(&fake_now) + 100, &b), 0);
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 1);
    assert_true(l.seq[0] > seq1);
}

/* ---- nothing left after delivery (issue 12) -------------------------------------- */

/* Occurrences of needle[0..n) in the file at path (0 if it does not exist). */
static size_t count_in_file(const char *path, const uint8_t *needle, size_t n)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, hits = 0, r;

    if (fp == NULL)
        return 0;
    for (;;) {
        if (len + 65536 > cap) {
            cap = (cap + 65536) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        r = fread(buf + len, 1, cap - len, fp);
        if (r == 0)
            break;
        len += r;
    }
    fclose(fp);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, needle, n) == 0)
            hits++;
    free(buf);
    return hits;
}

/* Occurrences in the database, its WAL and its SHM file. */
static size_t count_in_store(const char *path, const uint8_t *needle, size_t n)
{
    char p[600];
    size_t hits = count_in_file(path, needle, n);

    snprintf(p, sizeof(p), "%s-wal", path);
    hits += count_in_file(p, needle, n);
    snprintf(p, sizeof(p), "%s-shm", path);
    hits += count_in_file(p, needle, n);
    return hits;
}

/*
 * An acked (deleted) envelope leaves no byte behind within scrub_delay_s:
 * not in the database (secure_delete zeroes the row, its index entries and
 * its freed overflow pages), not in the WAL (checkpointed and truncated to
 * 0 bytes), not in the SHM. Before the scrub existed the WAL kept the
 * envelope's page images until ~10,000 pages later (this test failed).
 */
static void test_scrub_leaves_no_trace(void **state)
{
    fixture *f = *state;
    static const char marker[] = "NOTRACE-MARKER-0123456789abcdef!"; /* 32 bytes */
    sottod_store_config cfg = {
        .path = f->path, .max_queue = 5, .now = clock_fn, .scrub_delay_s = 1};
    char body[6001];
    uint8_t eid[SOTTOD_ENVELOPE_ID_BYTES];
    sottod_store_stats ss;
    uint64_t scrubs0;
    result_box b;
    struct stat sb;
    char wal[600];
    int i;

    sottod_store_close(f->st);
    f->st = NULL;
    assert_int_equal(sottod_store_open(&cfg, &f->st), SOTTOD_STORE_OK);
    int64_t acc = create_account(f->st, "alice");
    sottod_addr a1 = {acc, 1};
    /* A body over several pages (overflow pages) with the marker inside. */
    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    memcpy(body, marker, 32);
    memcpy(body + 3000, marker, 32);
    memcpy(body + 5900, marker, 32);
    assert_int_equal(enqueue1(f->st, a1, 7, body, atomic_load(&fake_now) + 100, &b), 0);
    env_id(eid, 7);
    /* The scan works: the queued envelope is on disk. */
    assert_true(count_in_store(f->path, (const uint8_t *)marker, 32) > 0);
    assert_true(count_in_store(f->path, eid, sizeof(eid)) > 0);
    sottod_store_stats_get(f->st, &ss);
    scrubs0 = ss.scrubs;

    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_envelopes_delete(f->st, a1, eid, 1, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.deleted.deleted, 1);
    /* Within the delay (1 s) plus slack, every trace is gone. */
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    for (i = 0; i < 50; i++) {
        sottod_store_stats_get(f->st, &ss);
        if (ss.scrubs > scrubs0 && count_in_store(f->path, (const uint8_t *)marker, 32) == 0 &&
            count_in_store(f->path, eid, sizeof(eid)) == 0)
            break;
        usleep(100000);
    }
    assert_true(i < 50);
    assert_true(ss.scrubs > scrubs0);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(count_in_store(f->path, (const uint8_t *)marker, 32), 0);
    assert_int_equal(count_in_store(f->path, eid, sizeof(eid)), 0);
    /* The store still works after the scrub. */
    assert_int_equal(enqueue1(f->st, a1, 8, "after", atomic_load(&fake_now) + 100, &b), 0);
    assert_int_equal(b.res.u.enqueue.queued, 1);
}

/*
 * No counter of every envelope ever sent: the stored envelope_seq is a
 * reservation past the highest seq by a random 2^20..2^21-1, not the number
 * of envelopes (before issue 12 it was exactly 20 here).
 */
static void test_no_envelope_counter(void **state)
{
    fixture *f = *state;
    int64_t acc = create_account(f->st, "alice");
    sottod_addr a1 = {acc, 1};
    uint8_t eid[SOTTOD_ENVELOPE_ID_BYTES];
    result_box b;
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t meta, maxseq = 0;
    listed l;

    for (uint32_t n = 1; n <= 20; n++) {
        assert_int_equal(enqueue1(f->st, a1, n, "counted?", atomic_load(&fake_now) + 100, &b), 0);
        list_all(f->st, a1, &l);
        maxseq = l.seq[l.n - 1];
        env_id(eid, n);
        memset(&b, 0, sizeof(b));
        assert_int_equal(sottod_store_envelopes_delete(f->st, a1, eid, 1, box_done, &b), 0);
        assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    }
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='envelope_seq'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    meta = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(meta != 20);
    assert_true(meta >= maxseq + (1 << 20));
    assert_true(meta < maxseq + (1 << 21));
}

/*
 * "No row inserted" is success only for the very same envelope. Loss found
 * by the fault campaign: two sottod on one database both handed out the
 * same next seq from memory; the second one's INSERT OR IGNORE hit the
 * first one's row, changed nothing, and was counted as an idempotent retry
 * -- the sender was acked for an envelope that was never stored. Two store
 * objects on one file play the two servers.
 */
static void test_no_row_inserted_is_not_success(void **state)
{
    fixture *f = *state; /* max_queue = 5 */
    int64_t acc = create_account(f->st, "alice");
    sottod_addr a1 = {acc, 1};
    sottod_store *other = open_store(f->path, 5); /* a second writer on the same file */
    int64_t exp = atomic_load(&fake_now) + 100;
    uint32_t depth = 0;
    result_box b;
    listed l;

    /* Both writers start from the same seq in memory; the first queues. */
    assert_int_equal(enqueue1(f->st, a1, 1, "from-first", exp, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.enqueue.queued, 1);
    /* The second queues a different envelope: it must really be stored
     * (or fail), never acked as a duplicate of the first one's row. */
    assert_int_equal(enqueue1(other, a1, 2, "from-second", exp, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.enqueue.duplicates, 0);
    assert_int_equal(b.res.u.enqueue.queued, 1);
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.body[0], "from-first");
    assert_string_equal(l.body[1], "from-second");
    assert_true(l.seq[1] > l.seq[0]);

    /* Same id for the same device, different content: a conflict, not a
     * retry. Nothing changes. */
    assert_int_equal(enqueue1(other, a1, 1, "not-the-same", exp, &b), SOTTOD_STORE_EXISTS);
    assert_int_equal(b.res.u.enqueue.queued, 0);
    assert_int_equal(b.res.u.enqueue.duplicates, 0);
    assert_int_equal(sottod_store_queue_depth(f->st, a1, &depth), SOTTOD_STORE_OK);
    assert_int_equal(depth, 2);
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.body[0], "from-first");

    /* The real retry (same id, same bytes) is still an accepted duplicate. */
    assert_int_equal(enqueue1(f->st, a1, 1, "from-first", exp, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.enqueue.duplicates, 1);
    assert_int_equal(b.res.u.enqueue.queued, 0);
    assert_int_equal(sottod_store_queue_depth(f->st, a1, &depth), SOTTOD_STORE_OK);
    assert_int_equal(depth, 2);

    /* The same two cases on a full queue (the duplicate check there takes
     * another path). */
    assert_int_equal(enqueue1(f->st, a1, 3, "m3", exp, &b), SOTTOD_STORE_OK);
    assert_int_equal(enqueue1(other, a1, 4, "m4", exp, &b), SOTTOD_STORE_OK);
    assert_int_equal(enqueue1(f->st, a1, 5, "m5", exp, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_queue_depth(f->st, a1, &depth), SOTTOD_STORE_OK);
    assert_int_equal(depth, 5);
    assert_int_equal(enqueue1(f->st, a1, 2, "other-bytes", exp, &b), SOTTOD_STORE_EXISTS);
    assert_int_equal(enqueue1(f->st, a1, 2, "from-second", exp, &b), SOTTOD_STORE_OK);
    assert_int_equal(b.res.u.enqueue.duplicates, 1);
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.body[1], "from-second");
    assert_string_equal(l.body[3], "m4");
    sottod_store_close(other);
}

/* Child of test_open_refusals_and_causes: a store whose files may not grow
 * past 256 KiB (RLIMIT_FSIZE plays a full disk). Exits 0 if the failed
 * write's cause names the OS error (errno 27, EFBIG), 1 otherwise. */
static void fsize_child(const char *path)
{
    sottod_store *st = NULL;
    sottod_store_config cfg = {.path = path, .now = clock_fn, .max_queue = 1000};
    struct rlimit rl = {256 * 1024, 256 * 1024};
    sottod_device_new d;
    static uint8_t body[200 * 1024];
    char cause[256] = "";
    int status = SOTTOD_STORE_OK;
    result_box b;

    signal(SIGXFSZ, SIG_IGN);
    if (sottod_store_open(&cfg, &st) != SOTTOD_STORE_OK)
        _exit(2);
    make_dev(&d, 1, 1);
    memset(&b, 0, sizeof(b));
    if (sottod_store_account_create(st, "full", NULL, 0, &d, box_done, &b) != SOTTOD_STORE_OK ||
        sottod_store_drain(st) != SOTTOD_STORE_OK || b.res.status != SOTTOD_STORE_OK)
        _exit(3);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        _exit(4);
    for (uint32_t i = 0; i < 8 && status == SOTTOD_STORE_OK; i++) {
        sottod_envelope_in e = {.to = {b.res.u.account_create.account_id, 1},
                                .expires_at = atomic_load(&fake_now) + 100,
                                .body = body,
                                .body_len = sizeof(body)};

        env_id(e.id, i);
        memset(body, (int)i + 1, sizeof(body));
        memset(&b, 0, sizeof(b));
        if (sottod_store_envelopes_enqueue(st, &e, 1, box_done, &b) != SOTTOD_STORE_OK ||
            sottod_store_drain(st) != SOTTOD_STORE_OK)
            _exit(5);
        status = b.res.status;
    }
    sottod_store_last_error(st, cause, sizeof(cause));
    fprintf(stderr, "write past the file size limit: status %d, cause \"%s\"\n", status, cause);
    _exit(status == SOTTOD_STORE_ERR && strstr(cause, "errno 27") != NULL ? 0 : 1);
}

/* Opening: must_exist refuses a missing, empty or table-less database and
 * leaves it alone; check refuses a damaged one; every refusal and storage
 * failure says why in words. */
static void test_open_refusals_and_causes(void **state)
{
    fixture *f = *state;
    char path[160], why[512], cause[256];
    sottod_store_config cfg = {
        .now = clock_fn, .must_exist = true, .why = why, .why_cap = sizeof(why)};
    sottod_store *st = NULL;
    sottod_device dev;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int64_t acc, root = 0, page_size = 0;
    uint8_t junk[4096];
    struct stat sb;
    FILE *fp;
    pid_t pid;
    int status, fd;

    /* Missing: refused, nothing created. */
    snprintf(path, sizeof(path), "%s/other.db", f->dir);
    cfg.path = path;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_NOT_FOUND);
    assert_null(st);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "missing"));
    assert_int_equal(stat(path, &sb), -1);
    /* 0 bytes: refused, left at 0 bytes. */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_NOT_FOUND);
    assert_non_null(strstr(why, "empty"));
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    /* A SQLite file without a table: never initialised, refused. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x); DROP TABLE t;", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_NOT_FOUND);
    assert_non_null(strstr(why, "no tables"));
    /* Without must_exist, the same file is initialised (as before). */
    cfg.must_exist = false;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_OK);
    assert_true(create_account(st, "bob") > 0);
    sottod_store_close(st);
    st = NULL;
    /* A real store passes must_exist and check. */
    cfg.must_exist = true;
    cfg.check = true;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_OK);
    sottod_store_close(st);
    st = NULL;

    /* Garbage over the devices table of the fixture's store, written while
     * it is closed. */
    acc = create_account(f->st, "alice");
    sottod_store_close(f->st);
    f->st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT (SELECT rootpage FROM sqlite_schema WHERE name='devices'),"
                           " (SELECT page_size FROM pragma_page_size)",
                           -1, &q, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    root = sqlite3_column_int64(q, 0);
    page_size = sqlite3_column_int64(q, 1);
    sqlite3_finalize(q);
    sqlite3_close(db);
    assert_true(root > 1 && page_size > 0 && page_size <= (int64_t)sizeof(junk));
    fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    memset(junk, 0xA5, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, (size_t)page_size, (root - 1) * page_size), page_size);
    close(fd);
    cfg.path = f->path;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_ERR);
    assert_null(st);
    print_message("damaged: %s\n", why);
    assert_non_null(strstr(why, "integrity check failed"));
    /* Without the check it opens (what sottod did before), and the first
     * read of the damaged table fails -- with SQLite's reason on record. */
    cfg.check = false;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_OK);
    assert_string_equal(sottod_store_last_error(st, cause, sizeof(cause)), "");
    assert_int_equal(sottod_store_device_get(st, (sottod_addr){acc, 1}, &dev), SOTTOD_STORE_ERR);
    sottod_store_last_error(st, cause, sizeof(cause));
    print_message("read of the damaged table: %s\n", cause);
    assert_non_null(strstr(cause, "malformed"));
    sottod_store_close(st);

    /* A write that the OS refuses (file size limit, like a full disk): the
     * cause carries the errno, not just "storage failure". */
    snprintf(path, sizeof(path), "%s/full.db", f->dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        fsize_child(path);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

typedef struct att_list {
    int n;
    uint8_t first;
} att_list;

static int att_cb(void *arg, const sottod_attachment *att)
{
    att_list *al = arg;

    if (al->n++ == 0)
        al->first = att->id[0];
    return 0;
}

static void test_attachments(void **state)
{
    fixture *f = *state;
    int64_t t0 = atomic_load(&fake_now);
    sottod_attachment a = {.size = 1234, .created_at = t0, .expires_at = t0 + 3600};
    sottod_attachment got;
    result_box b = {0};
    att_list al = {0};

    a.id[0] = 1;
    assert_int_equal(sottod_store_attachment_create(f->st, &a, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_attachment_create(f->st, &a, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_EXISTS);
    a.id[0] = 2;
    a.expires_at = t0 + 60;
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_attachment_create(f->st, &a, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);

    assert_int_equal(sottod_store_attachment_get(f->st, a.id, &got), SOTTOD_STORE_OK);
    assert_int_equal(got.size, 1234);
    assert_false(got.referenced);
    /* Referenced by a message: expiry pushed out. */
    a.referenced = true;
    a.expires_at = t0 + 86400 * 30;
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_attachment_update(f->st, &a, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_attachment_get(f->st, a.id, &got), SOTTOD_STORE_OK);
    assert_true(got.referenced);
    assert_int_equal(got.expires_at, t0 + 86400 * 30);

    atomic_store(&fake_now, t0 + 7200);
    assert_int_equal(sottod_store_attachments_expired(f->st, 10, att_cb, &al), 0);
    assert_int_equal(al.n, 1);
    assert_int_equal(al.first, 1);
    a.id[0] = 1;
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_attachment_delete(f->st, a.id, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_attachment_delete(f->st, a.id, box_done, &b), 0);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);
    assert_int_equal(sottod_store_attachment_get(f->st, a.id, &got), SOTTOD_STORE_NOT_FOUND);
}

/* ---- acked writes survive kill -9 ------------------------------------------------------ */

typedef struct crash_arg {
    int fd;
    uint32_t n;
} crash_arg;

/* The ack leaves only in the completion, i.e. after COMMIT. */
static void crash_ack(void *arg, const sottod_store_result *res)
{
    crash_arg *ca = arg;

    if (res->status == SOTTOD_STORE_OK) {
        ssize_t w = write(ca->fd, &ca->n, sizeof(ca->n));

        (void)w;
    }
    free(ca);
}

static void crash_child(const char *path, int fd)
{
    sottod_store_config cfg = {.path = path, .max_queue = 1000000};
    sottod_store *st = NULL;
    uint8_t body[300];
    uint32_t i;

    if (sottod_store_open(&cfg, &st) != SOTTOD_STORE_OK)
        _exit(3);
    memset(body, 0x42, sizeof(body));
    for (i = 0;; i++) {
        crash_arg *ca = malloc(sizeof(*ca));
        sottod_envelope_in e;

        if (ca == NULL)
            _exit(4);
        ca->fd = fd;
        ca->n = i;
        memset(&e, 0, sizeof(e));
        e.to.account_id = 1;
        e.to.device_id = 1;
        env_id(e.id, i);
        e.expires_at = INT64_MAX / 2;
        e.body = body;
        e.body_len = sizeof(body);
        if (sottod_store_envelopes_enqueue(st, &e, 1, crash_ack, ca) != SOTTOD_STORE_OK)
            _exit(5);
        if (i % 64 == 0)
            (void)sottod_store_run_completions(st);
        if (i % 1024 == 0)
            usleep(500); /* let the queue not grow without bound */
    }
}

static int count_cb(void *arg, const sottod_envelope *e)
{
    uint8_t *seen = arg;
    uint32_t n = ((uint32_t)e->id[0] << 24) | ((uint32_t)e->id[1] << 16) |
                 ((uint32_t)e->id[2] << 8) | e->id[3];

    if (n < 4000000)
        seen[n] = 1;
    return 0;
}

/* Profiles (schema v5): the ciphertext is stored and served byte for
 * byte, replaced by the next set, capped at SOTTOD_PROFILE_MAX, and
 * deleted with the account. */
static void test_profiles(void **state)
{
    fixture *f = *state;
    result_box b = {0};
    uint8_t ct1[64], *big, *out = NULL;
    size_t len = 0;
    int64_t alice = create_account(f->st, "alice");

    (void)create_account(f->st, "bob");
    randombytes_buf(ct1, sizeof(ct1));
    assert_int_equal(sottod_store_profile_get(f->st, "alice", &out, &len), SOTTOD_STORE_NOT_FOUND);
    assert_int_equal(sottod_store_profile_get(f->st, "nobody", &out, &len), SOTTOD_STORE_NOT_FOUND);
    assert_int_equal(sottod_store_profile_set(f->st, alice, ct1, 0, box_done, &b),
                     SOTTOD_STORE_INVALID);
    big = calloc(1, SOTTOD_PROFILE_MAX + 1);
    assert_non_null(big);
    assert_int_equal(
        sottod_store_profile_set(f->st, alice, big, SOTTOD_PROFILE_MAX + 1, box_done, &b),
        SOTTOD_STORE_INVALID);
    assert_int_equal(sottod_store_profile_set(f->st, alice, ct1, sizeof(ct1), box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_profile_get(f->st, "alice", &out, &len), SOTTOD_STORE_OK);
    assert_int_equal(len, sizeof(ct1));
    assert_memory_equal(out, ct1, sizeof(ct1));
    free(out);
    assert_int_equal(sottod_store_profile_get(f->st, "bob", &out, &len), SOTTOD_STORE_NOT_FOUND);
    /* the largest allowed replaces it */
    memset(big, 0x5A, SOTTOD_PROFILE_MAX);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_profile_set(f->st, alice, big, SOTTOD_PROFILE_MAX, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_profile_get(f->st, "alice", &out, &len), SOTTOD_STORE_OK);
    assert_int_equal(len, SOTTOD_PROFILE_MAX);
    assert_memory_equal(out, big, SOTTOD_PROFILE_MAX);
    free(out);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM profiles"), 1);
    /* an account that does not exist */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_profile_set(f->st, 9999, ct1, sizeof(ct1), box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);
    /* deleted with the account */
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_account_delete(f->st, alice, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM profiles"), 0);
    assert_int_equal(sottod_store_profile_get(f->st, "alice", &out, &len), SOTTOD_STORE_NOT_FOUND);
    free(big);
}

/* ---- sealed sender (issue 12, schema version 6) ------------------------------ */

/* Delivery tokens: unset, set, replaced, cleared, gone with the account. */
static void test_delivery_tokens(void **state)
{
    fixture *f = *state;
    result_box b = {0};
    uint8_t t1[16], t2[16], out[16];
    bool present = true;
    int64_t alice = create_account(f->st, "alice");

    randombytes_buf(t1, sizeof(t1));
    randombytes_buf(t2, sizeof(t2));
    assert_int_equal(sottod_store_delivery_token_get(f->st, alice, out, &present), SOTTOD_STORE_OK);
    assert_false(present);
    assert_int_equal(sottod_store_delivery_token_get(f->st, 9999, out, &present),
                     SOTTOD_STORE_NOT_FOUND);
    assert_int_equal(sottod_store_delivery_token_set(f->st, 0, t1, box_done, &b),
                     SOTTOD_STORE_INVALID);
    assert_int_equal(sottod_store_delivery_token_set(f->st, alice, t1, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_delivery_token_get(f->st, alice, out, &present), SOTTOD_STORE_OK);
    assert_true(present);
    assert_memory_equal(out, t1, 16);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_delivery_token_set(f->st, alice, t2, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_delivery_token_get(f->st, alice, out, &present), SOTTOD_STORE_OK);
    assert_memory_equal(out, t2, 16);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_delivery_token_set(f->st, alice, NULL, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(sottod_store_delivery_token_get(f->st, alice, out, &present), SOTTOD_STORE_OK);
    assert_false(present);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM accounts WHERE delivery_token IS NULL"),
                     1);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_delivery_token_set(f->st, 9999, t1, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);
}

static int enqueue_from(sottod_store *st, sottod_addr to, uint32_t n, int64_t source)
{
    result_box b = {0};
    sottod_envelope_in e = {.to = to,
                            .expires_at = 1767225600 + 86400,
                            .body = (const uint8_t *)"capped",
                            .body_len = 6,
                            .source_id = source};

    env_id(e.id, n);
    assert_int_equal(sottod_store_envelopes_enqueue(st, &e, 1, box_done, &b), SOTTOD_STORE_OK);
    int rc = wait_box(st, &b);
    if (rc == SOTTOD_STORE_SENDER_FULL) {
        assert_int_equal(b.res.u.enqueue.failed.account_id, to.account_id);
        assert_int_equal(b.res.u.enqueue.failed.device_id, to.device_id);
        assert_int_equal(b.res.u.enqueue.sealed, source == 0);
    }
    return rc;
}

/* Per-sender caps: 3 from one other account, 4 sealed, own account
 * uncapped; others still get in; a retry of a queued envelope is still a
 * duplicate at the cap; acking frees the sender's share. */
static void test_sender_caps(void **state)
{
    fixture *f = *state;
    sottod_store_config cfg = {.path = f->path,
                               .max_queue = 100,
                               .now = clock_fn,
                               .queue_per_sender_max = 3,
                               .queue_sealed_max = 4};
    int64_t alice, mallory, bob;
    sottod_addr a1;
    uint32_t n = 1;
    int ok = 0;
    listed l;
    result_box b = {0};

    sottod_store_close(f->st);
    f->st = NULL;
    assert_int_equal(sottod_store_open(&cfg, &f->st), SOTTOD_STORE_OK);
    alice = create_account(f->st, "alice");
    mallory = create_account(f->st, "mallory");
    bob = create_account(f->st, "bob");
    a1.account_id = alice;
    a1.device_id = 1;

    for (int i = 0; i < 5; i++)
        ok += enqueue_from(f->st, a1, n++, mallory) == SOTTOD_STORE_OK;
    assert_int_equal(ok, 3);
    assert_int_equal(enqueue_from(f->st, a1, n++, mallory), SOTTOD_STORE_SENDER_FULL);
    /* a retry of mallory's first envelope: a duplicate, not a refusal */
    assert_int_equal(enqueue_from(f->st, a1, 1, mallory), SOTTOD_STORE_OK);
    assert_int_equal(enqueue_from(f->st, a1, n++, bob), SOTTOD_STORE_OK);
    ok = 0;
    for (int i = 0; i < 6; i++)
        ok += enqueue_from(f->st, a1, n++, 0) == SOTTOD_STORE_OK;
    assert_int_equal(ok, 4);
    /* own devices (sync copies) are not capped */
    ok = 0;
    for (int i = 0; i < 6; i++)
        ok += enqueue_from(f->st, a1, n++, alice) == SOTTOD_STORE_OK;
    assert_int_equal(ok, 6);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM envelopes WHERE source_id=0"), 4);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM envelopes"), 3 + 1 + 4 + 6);
    /* acking mallory's first envelope frees one place for him */
    list_all(f->st, a1, &l);
    assert_int_equal(l.n, 14);
    assert_int_equal(sottod_store_envelopes_delete(f->st, a1, l.id[0], 1, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    assert_int_equal(enqueue_from(f->st, a1, n++, mallory), SOTTOD_STORE_OK);
    assert_int_equal(enqueue_from(f->st, a1, n++, mallory), SOTTOD_STORE_SENDER_FULL);
}

/* A database at schema version 5 migrates to 6: queued envelopes are kept
 * (as sealed: source_id 0, so they count towards queue_sealed_max only),
 * accounts get no delivery token. */
static void test_migration_v5_to_v6(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    result_box b = {0};
    bool present = true;
    uint8_t out[16];
    listed q;
    int64_t bob = create_account(f->st, "bob");
    sottod_addr bob1 = {bob, 1};

    assert_int_equal(enqueue1(f->st, bob1, 7, "queued before", 1767225600 + 3600, &b),
                     SOTTOD_STORE_OK);
    sottod_store_close(f->st);
    f->st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN;"
                                  "ALTER TABLE accounts DROP COLUMN delivery_token;"
                                  "DROP INDEX envelopes_source;"
                                  "ALTER TABLE envelopes DROP COLUMN source_id;"
                                  "COMMIT;"
                                  "PRAGMA user_version=5;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM pragma_table_info('envelopes')"
                                     " WHERE name='source_id'"),
                     0);
    f->st = open_store(f->path, 5);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 6);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM pragma_table_info('accounts')"
                                     " WHERE name='delivery_token'"),
                     1);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM envelopes WHERE source_id=0"), 1);
    assert_int_equal(
        db_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name='envelopes_source'"), 1);
    list_all(f->st, bob1, &q);
    assert_int_equal(q.n, 1);
    assert_string_equal(q.body[0], "queued before");
    assert_int_equal(sottod_store_delivery_token_get(f->st, bob, out, &present), SOTTOD_STORE_OK);
    assert_false(present);
}

static void test_acked_survive_kill9(void **state)
{
    fixture *f = *state;
    char path[160];
    sottod_store *st;
    int pfd[2];
    pid_t pid;
    uint8_t *seen;
    uint32_t n, acked = 0, missing = 0, max_acked = 0;
    int status;
    ssize_t r;
    int64_t last = 0;

    snprintf(path, sizeof(path), "%s/crash.db", f->dir);
    st = open_store(path, 1000000);
    (void)create_account(st, "crash");
    sottod_store_close(st);

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        crash_child(path, pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    seen = calloc(4000000, 1);
    assert_non_null(seen);
    /* Read acks for a while, then kill -9 mid-stream. */
    {
        uint8_t *acks = calloc(4000000, 1);

        assert_non_null(acks);
        while ((r = read(pfd[0], &n, sizeof(n))) == sizeof(n)) {
            assert_true(n < 4000000);
            acks[n] = 1;
            acked++;
            if (n > max_acked)
                max_acked = n;
            if (acked == 3000) {
                kill(pid, SIGKILL);
            }
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        close(pfd[0]);

        st = open_store(path, 1000000);
        for (;;) {
            int64_t before = last;

            assert_int_equal(sottod_store_envelopes_list(st, (sottod_addr){1, 1}, last, 10000,
                                                         count_cb, seen, &last),
                             SOTTOD_STORE_OK);
            if (last == before)
                break;
        }
        for (n = 0; n <= max_acked; n++)
            if (acks[n] && !seen[n])
                missing++;
        free(acks);
    }
    print_message("kill -9: %u acked, %u missing after restart\n", acked, missing);
    assert_true(acked >= 3000);
    assert_int_equal(missing, 0);
    sottod_store_close(st);
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_from_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts_and_invites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_ids_never_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_v1_to_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_v2_to_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_list_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_order_and_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completion_may_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_time_prekeys_handed_out_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_refused_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_only_own_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disclose_holds_no_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrub_leaves_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_envelope_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_row_inserted_is_not_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refusals_and_causes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attachments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_v5_to_v6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acked_survive_kill9, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    if (getenv("SOTTO_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("SOTTO_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
