/*
 * tests/server/test_store_kt.c -- the key-transparency part of sottod's
 * store (schema version 4): kt_append writes log rows, entries and a head
 * atomically (a refused or failing op leaves nothing behind), heads and
 * countersignatures, the reads start-up uses (log pages, entries, newest
 * head, cosig and account scans), reopen, the 3 -> 4 migration, and
 * disclose printing the entry without its opening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    sottod_store *st;
} fixture;

static sottod_store *open_store(const char *path)
{
    sottod_store_config cfg = {.path = path};
    sottod_store *st = NULL;
    assert_int_equal(sottod_store_open(&cfg, &st), SOTTOD_STORE_OK);
    return st;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sotto-storekt-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/sottod.db", f->dir);
    f->st = open_store(f->path);
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

typedef struct box {
    int called;
    int status;
} box;

static void box_done(void *arg, const sottod_store_result *res)
{
    box *b = arg;
    b->called++;
    b->status = res->status;
}

static int wait_box(sottod_store *st, box *b)
{
    assert_int_equal(sottod_store_drain(st), SOTTOD_STORE_OK);
    assert_int_equal(b->called, 1);
    return b->status;
}

static void make_row(sottod_kt_log_row *r, uint64_t pos, uint8_t seed, uint64_t counter)
{
    memset(r, 0, sizeof(*r));
    r->pos = pos;
    r->ts_ms = 1767225600000ULL;
    memset(r->index, seed, sizeof(r->index));
    r->counter = counter;
    memset(r->commitment, seed ^ 0x5a, sizeof(r->commitment));
}

static void make_entry(sottod_kt_entry *e, const char *name, uint8_t seed, uint64_t counter,
                       uint64_t pos)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->username, sizeof(e->username), "%s", name);
    memset(e->index, seed, sizeof(e->index));
    memset(e->vrf_proof, seed ^ 1, sizeof(e->vrf_proof));
    memset(e->opening, 0xC3, sizeof(e->opening));
    memset(e->value, seed ^ 2, sizeof(e->value));
    e->counter = counter;
    e->pos = pos;
}

static void make_head(sottod_kt_head_rec *h, uint64_t size, uint64_t ts)
{
    memset(h, 0, sizeof(*h));
    h->size = size;
    h->ts_ms = ts;
    memset(h->signature, (int)(size + ts), sizeof(h->signature));
}

static int append(sottod_store *st, const sottod_kt_log_row *rows, size_t n,
                  const sottod_kt_entry *e, size_t ne, const sottod_kt_head_rec *h)
{
    box b = {0};
    int rc = sottod_store_kt_append(st, rows, n, e, ne, h, box_done, &b);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    return wait_box(st, &b);
}

static uint64_t log_size(sottod_store *st)
{
    uint64_t n = 99;
    assert_int_equal(sottod_store_kt_log_size(st, &n), SOTTOD_STORE_OK);
    return n;
}

/* Three updates of two names, then a later batch; reads give them back. */
static void fill(sottod_store *st)
{
    sottod_kt_log_row rows[3];
    sottod_kt_entry e[2];
    sottod_kt_head_rec h;
    make_row(&rows[0], 0, 0x11, 1);
    make_row(&rows[1], 1, 0x22, 1);
    make_row(&rows[2], 2, 0x11, 2);
    make_entry(&e[0], "alice", 0x11, 2, 2);
    make_entry(&e[1], "bob", 0x22, 1, 1);
    make_head(&h, 3, 1000);
    assert_int_equal(append(st, rows, 3, e, 2, &h), SOTTOD_STORE_OK);
}

static void test_kt_append_and_reads(void **state)
{
    fixture *f = *state;
    sottod_kt_log_row out[8], want;
    sottod_kt_entry e, we;
    sottod_kt_head_rec h, wh;
    size_t n = 0;

    assert_int_equal(log_size(f->st), 0);
    assert_int_equal(sottod_store_kt_head_latest(f->st, &h), SOTTOD_STORE_NOT_FOUND);
    fill(f->st);
    assert_int_equal(log_size(f->st), 3);
    assert_int_equal(sottod_store_kt_log_read(f->st, 1, 8, out, &n), SOTTOD_STORE_OK);
    assert_int_equal(n, 2);
    make_row(&want, 1, 0x22, 1);
    assert_memory_equal(&out[0], &want, sizeof(want));
    make_row(&want, 2, 0x11, 2);
    assert_memory_equal(&out[1], &want, sizeof(want));
    assert_int_equal(sottod_store_kt_log_read(f->st, 3, 8, out, &n), SOTTOD_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(sottod_store_kt_entry_get(f->st, "alice", &e), SOTTOD_STORE_OK);
    make_entry(&we, "alice", 0x11, 2, 2);
    assert_memory_equal(&e, &we, sizeof(e));
    assert_int_equal(sottod_store_kt_entry_get(f->st, "carol", &e), SOTTOD_STORE_NOT_FOUND);
    assert_int_equal(sottod_store_kt_head_latest(f->st, &h), SOTTOD_STORE_OK);
    make_head(&wh, 3, 1000);
    assert_memory_equal(&h, &wh, sizeof(h));

    /* A re-signed head for the same size is the newest; one beyond the log
     * is refused. */
    {
        box b = {0};
        make_head(&wh, 3, 2000);
        assert_int_equal(sottod_store_kt_head_add(f->st, &wh, box_done, &b), SOTTOD_STORE_OK);
        assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
        assert_int_equal(sottod_store_kt_head_latest(f->st, &h), SOTTOD_STORE_OK);
        assert_int_equal(h.ts_ms, 2000);
        assert_int_equal(sottod_store_kt_head_get(f->st, 3, 1000, &h), SOTTOD_STORE_OK);
        memset(&b, 0, sizeof(b));
        make_head(&wh, 4, 3000);
        assert_int_equal(sottod_store_kt_head_add(f->st, &wh, box_done, &b), SOTTOD_STORE_OK);
        assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_CONFLICT);
        assert_int_equal(sottod_store_kt_head_get(f->st, 4, 3000, &h), SOTTOD_STORE_NOT_FOUND);
    }
    /* Malformed arguments are refused at submission. */
    {
        sottod_kt_log_row rows[2];
        make_row(&rows[0], 3, 0x33, 1);
        make_row(&rows[1], 5, 0x44, 1); /* a gap */
        make_head(&wh, 5, 5000);
        assert_int_equal(append(f->st, rows, 2, NULL, 0, &wh), SOTTOD_STORE_INVALID);
        make_row(&rows[1], 4, 0x44, 0); /* counter 0 */
        assert_int_equal(append(f->st, rows, 2, NULL, 0, &wh), SOTTOD_STORE_INVALID);
        make_row(&rows[1], 4, 0x44, 1);
        make_head(&wh, 5, 5000); /* head size != log size after the rows */
        assert_int_equal(append(f->st, rows, 1, NULL, 0, &wh), SOTTOD_STORE_INVALID);
    }
}

/* A batch that does not start at the stored log size, or that fails half
 * way (an index already held by another name), writes nothing at all. */
static void test_kt_append_atomic(void **state)
{
    fixture *f = *state;
    sottod_kt_log_row rows[2], out[8];
    sottod_kt_entry e[2], got;
    sottod_kt_head_rec h;
    size_t n = 0;

    fill(f->st);
    /* stale view of the log: CONFLICT */
    make_row(&rows[0], 2, 0x33, 1);
    make_entry(&e[0], "carol", 0x33, 1, 2);
    make_head(&h, 3, 4000);
    assert_int_equal(append(f->st, rows, 1, e, 1, &h), SOTTOD_STORE_CONFLICT);
    assert_int_equal(log_size(f->st), 3);
    assert_int_equal(sottod_store_kt_entry_get(f->st, "carol", &got), SOTTOD_STORE_NOT_FOUND);
    assert_int_equal(sottod_store_kt_head_get(f->st, 3, 4000, &h), SOTTOD_STORE_NOT_FOUND);

    /* the log rows are written first, then an entry fails (dave's index
     * is alice's): the rows are rolled back with it */
    make_row(&rows[0], 3, 0x33, 1);
    make_row(&rows[1], 4, 0x11, 3);
    make_entry(&e[0], "carol", 0x33, 1, 3);
    make_entry(&e[1], "dave", 0x11, 3, 4);
    make_head(&h, 5, 4000);
    assert_int_equal(append(f->st, rows, 2, e, 2, &h), SOTTOD_STORE_CONFLICT);
    assert_int_equal(log_size(f->st), 3);
    assert_int_equal(sottod_store_kt_log_read(f->st, 3, 8, out, &n), SOTTOD_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(sottod_store_kt_entry_get(f->st, "carol", &got), SOTTOD_STORE_NOT_FOUND);
    assert_int_equal(sottod_store_kt_head_get(f->st, 5, 4000, &h), SOTTOD_STORE_NOT_FOUND);

    /* the same batch without the bad entry goes in whole */
    make_entry(&e[1], "alice", 0x11, 3, 4);
    make_head(&h, 5, 4000);
    assert_int_equal(append(f->st, rows, 2, e, 2, &h), SOTTOD_STORE_OK);
    assert_int_equal(log_size(f->st), 5);
    assert_int_equal(sottod_store_kt_entry_get(f->st, "alice", &got), SOTTOD_STORE_OK);
    assert_int_equal(got.counter, 3);
    assert_int_equal(got.pos, 4);
}

typedef struct cosigs {
    size_t n;
    sottod_kt_cosig_rec c[8];
} cosigs;

static int cosig_cb(void *arg, const sottod_kt_cosig_rec *c)
{
    cosigs *cs = arg;
    if (cs->n < 8)
        cs->c[cs->n++] = *c;
    return 0;
}

typedef struct accts {
    size_t n, with_entry;
    char names[8][16];
    uint64_t versions[8];
} accts;

static int acct_cb(void *arg, const char *name, const sottod_device_list_rec *l,
                   const sottod_kt_entry *e)
{
    accts *a = arg;
    assert_true(l->present);
    if (a->n < 8) {
        snprintf(a->names[a->n], sizeof(a->names[0]), "%s", name);
        a->versions[a->n] = l->version;
        a->n++;
    }
    if (e != NULL) {
        assert_string_equal(e->username, name);
        a->with_entry++;
    }
    return 0;
}

static void test_kt_cosigs_accounts_reopen(void **state)
{
    fixture *f = *state;
    sottod_kt_cosig_rec c;
    sottod_device_new dev;
    sottod_device_list_rec l;
    cosigs cs;
    accts ac;
    box b = {0};

    fill(f->st);
    memset(&c, 0, sizeof(c));
    c.size = 3;
    c.ts_ms = 999; /* no such head */
    memset(c.auditor_key, 0xAA, 32);
    memset(c.signature, 0xBB, 64);
    assert_int_equal(sottod_store_kt_cosig_add(f->st, &c, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_NOT_FOUND);
    c.ts_ms = 1000;
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_kt_cosig_add(f->st, &c, box_done, &b), SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);

    /* accounts: alice (has an entry) with a list, bob without an entry...
     * and carol without an account key (not listed) */
    memset(&dev, 0, sizeof(dev));
    dev.registration_id = 7;
    memset(dev.auth_key, 1, 32);
    dev.identity_key[0] = 5;
    memset(&l, 0, sizeof(l));
    l.present = true;
    l.account_key[0] = 5;
    l.version = 4;
    l.len = 100;
    memset(l.list, 9, 100);
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        sottod_store_account_create_listed(f->st, "alice", NULL, 0, &dev, &l, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    l.version = 1;
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        sottod_store_account_create_listed(f->st, "zed", NULL, 0, &dev, &l, box_done, &b),
        SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(sottod_store_account_create(f->st, "carol", NULL, 0, &dev, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);

    /* reopen: everything is read back from the file */
    sottod_store_close(f->st);
    f->st = open_store(f->path);
    assert_int_equal(log_size(f->st), 3);
    memset(&cs, 0, sizeof(cs));
    assert_int_equal(sottod_store_kt_cosigs_scan(f->st, cosig_cb, &cs), SOTTOD_STORE_OK);
    assert_int_equal(cs.n, 1);
    assert_memory_equal(&cs.c[0], &c, sizeof(c));
    memset(&ac, 0, sizeof(ac));
    assert_int_equal(sottod_store_kt_accounts_scan(f->st, acct_cb, &ac), SOTTOD_STORE_OK);
    assert_int_equal(ac.n, 2);
    assert_string_equal(ac.names[0], "alice");
    assert_int_equal(ac.versions[0], 4);
    assert_string_equal(ac.names[1], "zed");
    assert_int_equal(ac.with_entry, 1);

    /* disclose (issue 12: dates, device count, public keys) prints no KT
     * entry -- it is public to whoever searches the name -- and never the
     * opening (0xC3 bytes) */
    {
        char *json = NULL;
        assert_int_equal(sottod_store_disclose(f->st, "alice", &json), SOTTOD_STORE_OK);
        assert_null(strstr(json, "key_transparency"));
        assert_null(strstr(json, "log_position"));
        assert_null(strstr(json, "c3c3c3c3"));
        free(json);
    }
}

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void test_migration_v3_to_v4(void **state)
{
    fixture *f = *state;
    sottod_device_new dev;
    sottod_account acc;
    sqlite3 *db = NULL;
    box b = {0};

    memset(&dev, 0, sizeof(dev));
    dev.registration_id = 7;
    memset(dev.auth_key, 1, 32);
    dev.identity_key[0] = 5;
    assert_int_equal(sottod_store_account_create(f->st, "alice", NULL, 0, &dev, box_done, &b),
                     SOTTOD_STORE_OK);
    assert_int_equal(wait_box(f->st, &b), SOTTOD_STORE_OK);
    sottod_store_close(f->st);
    f->st = NULL;
    /* back to version 3: no KT tables */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN; DROP TABLE kt_log; DROP TABLE kt_entries;"
                                  " DROP TABLE kt_heads; DROP TABLE kt_cosigs;"
                                  " DROP TABLE profiles;" /* version 5 */
                                  " ALTER TABLE accounts DROP COLUMN delivery_token;" /* 6 */
                                  " DROP INDEX envelopes_source;"
                                  " ALTER TABLE envelopes DROP COLUMN source_id; COMMIT;"
                                  " PRAGMA user_version=3;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 3);
    f->st = open_store(f->path);
    assert_int_equal(db_int(f->path, "PRAGMA user_version"), 6);
    assert_int_equal(db_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND"
                                     " name IN ('kt_log','kt_entries','kt_heads','kt_cosigs')"),
                     4);
    assert_int_equal(sottod_store_account_lookup(f->st, "alice", &acc), SOTTOD_STORE_OK);
    assert_int_equal(log_size(f->st), 0);
    fill(f->st);
    assert_int_equal(log_size(f->st), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kt_append_and_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kt_append_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kt_cosigs_accounts_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_v3_to_v4, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
