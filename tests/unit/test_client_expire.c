/*
 * tests/unit/test_client_expire.c -- wiping a message from the client store
 * (client/core/expire.c sc_wipe_message, sc_store_scrub, sc_expire_tick;
 * docs/protocol.md "Disappearing messages"): every trace of the text goes --
 * from the tables and from the bytes of store.db and store.db-wal, searched
 * while the connection is still open -- and nothing else does.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "everyday.h"
#include "internal.h"

static char tmpdir[256];

static sc_client *fresh_account(const char *name)
{
    sc_options o;
    sc_client *c = NULL;
    char err[256], home[300];

    snprintf(home, sizeof home, "%s/%s", tmpdir, name);
    memset(&o, 0, sizeof o);
    o.account = name;
    o.data_home = home;
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    c->username = strdup(name); /* as if registered */
    assert_non_null(c->username);
    return c;
}

/* Occurrences of needle in the file at path (0 when it does not exist). */
static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    int hits = 0;
    size_t nl = strlen(needle);

    if (f == NULL)
        return 0;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    for (char *p = buf; n > 0 && (p = memmem(p, (size_t)(buf + n - p), needle, nl)) != NULL;
         p += nl)
        hits++;
    free(buf);
    return hits;
}

/* Occurrences of needle in the account's store.db and store.db-wal. */
static int in_store(sc_client *c, const char *needle)
{
    char p[600];
    int n;

    snprintf(p, sizeof p, "%s/store.db", c->dir);
    n = count_in_file(p, needle);
    snprintf(p, sizeof p, "%s/store.db-wal", c->dir);
    return n + count_in_file(p, needle);
}

static void sql(sc_client *c, const char *s)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, s, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", s, msg ? msg : "?");
}

static long long count(sc_client *c, const char *q)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    assert_int_equal(sqlite3_prepare_v2(c->db, q, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t add(sc_client *c, int dir, const char *sender, uint64_t ts, const char *kind,
                   const char *body, const char *extra, const char *target, uint64_t tts,
                   uint64_t expires_ms)
{
    sc_msg_row m;
    int64_t id = 0;

    memset(&m, 0, sizeof m);
    m.conv_kind = "contact";
    m.conv = "bob";
    m.direction = dir;
    m.sender = sender;
    m.sender_device = 1;
    m.timestamp = ts;
    m.kind = kind;
    m.body = body;
    m.body_len = strlen(body);
    m.extra = extra;
    m.target_sender = target;
    m.target_ts = tts;
    m.expire_s = expires_ms ? 60 : 0;
    m.expires_ms = expires_ms;
    assert_int_equal(sc_msg_insert(c, &m, &id), SC_OK);
    return id;
}

/* A packed Content of timestamp ts with body, as retry.c keeps it. */
static void keep_retry(sc_client *c, const char *key, uint64_t ts, const char *body)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    uint8_t buf[512];
    size_t n;

    dm.body = (char *)body;
    ct.timestamp = ts;
    ct.data = &dm;
    n = sotto__content__content__get_packed_size(&ct);
    assert_true(n <= sizeof buf);
    sotto__content__content__pack(&ct, buf);
    assert_int_equal(sc_cfg_set_blob(c, key, buf, n), SC_OK);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Delete for everyone: a tombstone stays; every trace of the text goes,
 * and nothing of another message. */
static void test_wipe_tombstone(void **state)
{
    sc_client *c = fresh_account("erin");
    char inside[600], outside[600], extra[1400], q[300];
    int64_t a, b, ctl, del;
    const uint64_t ts = 1796600000123ull;
    sc_msg m;

    (void)state;
    snprintf(inside, sizeof inside, "%s/1796600000123-pic.txt", c->att_dir);
    snprintf(outside, sizeof outside, "%s/outside-pic.txt", tmpdir);
    write_text(inside, "SECRET-FILE-IN");
    write_text(outside, "KEEP-FILE-OUT");
    snprintf(extra, sizeof extra,
             "{\"attachments\":[{\"file_name\":\"pic.txt\",\"path\":\"%s\"},"
             "{\"file_name\":\"o.txt\",\"path\":\"%s\"},{\"file_name\":\"x\",\"path\":\"%s/..\"}],"
             "\"quote\":{\"text\":\"SECRET-QUOTE-X\"}}",
             inside, outside, c->att_dir);
    a = add(c, 1, "erin", ts, "text", "SECRET-BODY-ALPHA", extra, NULL, 0, 0);
    b = add(c, 0, "bob", ts + 5, "text", "KEEP-BODY-BRAVO", NULL, NULL, 0, 0);
    ctl = add(c, 0, "bob", ts + 6, "reaction", "", "{\"emoji\":\"SECRET-EMOJI-R\"}", "erin", ts, 0);
    del = add(c, 0, "bob", ts + 7, "delete", "", NULL, "erin", ts, 0);
    add(c, 0, "bob", ts + 8, "edit", "SECRET-EDIT-ROW", NULL, "erin", ts, 0);
    snprintf(q, sizeof q,
             "INSERT INTO client_edits VALUES('erin', %llu, %llu, 'SECRET-EDIT-VERSION', NULL, 1);"
             "INSERT INTO client_reactions VALUES('erin', %llu, 'bob', 'X', 1);"
             "INSERT INTO client_receipts VALUES(%llu, 'bob', 2, 1);",
             (unsigned long long)ts, (unsigned long long)ts + 9, (unsigned long long)ts,
             (unsigned long long)ts);
    sql(c, q);
    snprintf(q, sizeof q,
             "INSERT INTO client_outgoing(destination, timestamp, content, msg_id, created_ms)"
             " VALUES('bob', %llu, CAST('SECRET-QUEUED-Q' AS BLOB), %lld, 1),"
             " ('erin', %llu, CAST('SECRET-SYNCCOPY-S' AS BLOB), NULL, 1),"
             " ('bob', %llu, CAST('KEEP-QUEUED-B' AS BLOB), %lld, 1)",
             (unsigned long long)ts, (long long)a, (unsigned long long)ts,
             (unsigned long long)ts + 5, (long long)b);
    sql(c, q);
    keep_retry(c, "retry_sent:1796600000200:bob", ts, "SECRET-RETRY-COPY");
    keep_retry(c, "retry_sent:1796600000300:bob", ts + 5, "KEEP-RETRY-COPY");
    /* the texts are in the files now: the searches below can find them */
    assert_int_equal(sc_store_scrub(c), SC_OK);
    assert_true(in_store(c, "SECRET-BODY-ALPHA") > 0);
    assert_true(in_store(c, "SECRET-RETRY-COPY") > 0);

    assert_int_equal(sc_wipe_message(c, a, true), SC_OK);
    assert_false(c->scrub_due);
    assert_int_equal(sc_msg_get(c, a, &m), SC_OK);
    assert_true(m.deleted);
    assert_int_equal(m.body_len, 0);
    assert_null(m.extra);
    sc_msg_free(&m);
    assert_int_equal(sc_msg_get(c, ctl, &m), SC_E_NOT_FOUND);
    assert_int_equal(sc_msg_get(c, del, &m), SC_OK); /* the delete event stays */
    sc_msg_free(&m);
    assert_int_equal(count(c, "SELECT count(*) FROM client_edits"), 0);
    assert_int_equal(count(c, "SELECT count(*) FROM client_reactions"), 0);
    assert_int_equal(count(c, "SELECT count(*) FROM client_receipts"), 0);
    assert_int_equal(count(c, "SELECT count(*) FROM client_outgoing"), 1);
    assert_int_equal(count(c, "SELECT count(*) FROM client_config WHERE key LIKE 'retry_sent:%'"),
                     1);
    assert_int_equal(access(inside, F_OK), -1);
    assert_int_equal(access(outside, F_OK), 0);
    assert_int_equal(access(c->att_dir, F_OK), 0);
    /* the bytes: store.db and store.db-wal, the connection still open */
    {
        static const char *const gone[] = {
            "SECRET-BODY-ALPHA",   "SECRET-QUOTE-X",  "SECRET-EMOJI-R",    "SECRET-EDIT-ROW",
            "SECRET-EDIT-VERSION", "SECRET-QUEUED-Q", "SECRET-SYNCCOPY-S", "SECRET-RETRY-COPY",
        };
        for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
            if (in_store(c, gone[i]) != 0)
                fail_msg("%s still in the store files", gone[i]);
        }
    }
    assert_true(in_store(c, "KEEP-BODY-BRAVO") > 0);
    assert_true(in_store(c, "KEEP-QUEUED-B") > 0);
    assert_true(in_store(c, "KEEP-RETRY-COPY") > 0);
    assert_int_equal(sc_wipe_message(c, 999999, false), SC_E_NOT_FOUND);
    sc_close(c);
}

/* Inside a transaction the scrub is left to the caller (scrub_due); the
 * disappearing wipe deletes the row. */
static void test_wipe_in_transaction(void **state)
{
    sc_client *c = fresh_account("fred");
    int64_t a;
    sc_msg m;

    (void)state;
    a = add(c, 0, "bob", 1000, "text", "SECRET-IN-TX", NULL, NULL, 0, 0);
    assert_int_equal(sc_store_scrub(c), SC_OK);
    assert_int_equal(sc_db_begin(c), SC_OK);
    assert_int_equal(sc_wipe_message(c, a, false), SC_OK);
    assert_true(c->scrub_due);
    assert_int_equal(sc_db_commit(c), SC_OK);
    assert_int_equal(sc_store_scrub(c), SC_OK);
    assert_false(c->scrub_due);
    assert_int_equal(sc_msg_get(c, a, &m), SC_E_NOT_FOUND);
    assert_int_equal(in_store(c, "SECRET-IN-TX"), 0);
    sc_close(c);
}

/* sc_expire_tick removes what ran out, keeps what did not; the timer of a
 * conversation: the newest change wins, replays change nothing. */
static void test_tick_and_timer(void **state)
{
    sc_client *c = fresh_account("gina");
    uint64_t now = sc_now_ms(), ets = 0;
    uint32_t s = 0;
    bool changed = false;
    int64_t gone, kept, never;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    sc_msg m;

    (void)state;
    gone = add(c, 1, "gina", now - 70000, "text", "SECRET-RAN-OUT", NULL, NULL, 0, now - 10000);
    kept = add(c, 0, "bob", now - 5000, "text", "KEEP-RUNNING", NULL, NULL, 0, now + 600000);
    never = add(c, 0, "bob", now - 4000, "text", "KEEP-NO-TIMER", NULL, NULL, 0, 0);
    assert_int_equal(sc_expire_tick(c), SC_OK);
    assert_int_equal(sc_msg_get(c, gone, &m), SC_E_NOT_FOUND);
    assert_int_equal(sc_msg_get(c, kept, &m), SC_OK);
    sc_msg_free(&m);
    assert_int_equal(sc_msg_get(c, never, &m), SC_OK);
    sc_msg_free(&m);
    assert_int_equal(in_store(c, "SECRET-RAN-OUT"), 0);

    /* a read starts the countdown; an earlier one already running stays */
    assert_int_equal(sc_expire_start(c, never, now), SC_OK); /* no timer: nothing */
    assert_int_equal(sc_msg_get(c, never, &m), SC_OK);
    assert_int_equal(m.expires_ms, 0);
    sc_msg_free(&m);
    assert_int_equal(sc_expire_start(c, kept, now + 1000000), SC_OK);
    assert_int_equal(sc_msg_get(c, kept, &m), SC_OK);
    assert_int_equal(m.expires_ms, now + 600000);
    sc_msg_free(&m);

    assert_int_equal(sc_conv_timer_set(c, "contact", "bob", 3600, 200, &changed), SC_OK);
    assert_true(changed);
    assert_int_equal(sc_conv_timer_set(c, "contact", "bob", 30, 100, &changed), SC_OK);
    assert_false(changed); /* older */
    assert_int_equal(sc_conv_timer_set(c, "contact", "bob", 3600, 200, &changed), SC_OK);
    assert_false(changed); /* same timestamp: a replay */
    assert_int_equal(sc_conv_timer_set(c, "contact", "bob", 7200, 200, &changed), SC_OK);
    assert_false(changed); /* same timestamp, longer timer: the shorter one wins a tie */
    assert_int_equal(sc_conv_timer_get(c, "contact", "bob", &s, &ets), SC_OK);
    assert_int_equal(s, 3600);
    assert_int_equal(ets, 200);
    assert_int_equal(sc_expire_decorate(c, "contact", "bob", &dm, &s), SC_OK);
    assert_int_equal(dm.expire_timer, 3600);
    assert_int_equal(sc_expire_decorate(c, "contact", "carol", &dm, &s), SC_OK);
    assert_int_equal(dm.expire_timer, 0);

    /* an ordinary message with another timer: only a newer one changes it
     * (as Signal); a group change carries none and changes nothing */
    {
        sc_envelope e;
        Sotto__Content__DataMessage in = SOTTO__CONTENT__DATA_MESSAGE__INIT;
        Sotto__Content__GroupContext g = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
        bool handled = true;
        memset(&e, 0, sizeof e);
        in.expire_timer = 60;
        assert_int_equal(
            sc_expire_data(c, &e, "bob", false, "contact", "bob", 150, &in, NULL, &handled), SC_OK);
        assert_false(handled);
        assert_int_equal(sc_conv_timer_get(c, "contact", "bob", &s, NULL), SC_OK);
        assert_int_equal(s, 3600);
        g.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE;
        in.group = &g;
        in.expire_timer = 0;
        assert_int_equal(
            sc_expire_data(c, &e, "bob", false, "contact", "bob", 400, &in, NULL, &handled), SC_OK);
        assert_int_equal(sc_conv_timer_get(c, "contact", "bob", &s, NULL), SC_OK);
        assert_int_equal(s, 3600);
        in.group = NULL;
        in.expire_timer = 60;
        assert_int_equal(
            sc_expire_data(c, &e, "bob", false, "contact", "bob", 300, &in, NULL, &handled), SC_OK);
        assert_int_equal(sc_conv_timer_get(c, "contact", "bob", &s, &ets), SC_OK);
        assert_int_equal(s, 60);
        assert_int_equal(ets, 300);
    }
    sc_close(c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-expire-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wipe_tombstone),
        cmocka_unit_test(test_wipe_in_transaction),
        cmocka_unit_test(test_tick_and_timer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
