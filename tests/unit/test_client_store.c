/*
 * tests/unit/test_client_store.c -- the client storage layer
 * (client/core/store.c): schema versions and migrations, and the claims of
 * the pending-event list.
 *
 * Migrations: every released client version left a fixture, a small
 * store.db written by that version's own binaries
 * (tests/fixtures/client-store-vN.db, made by
 * tests/fixtures/make-client-store-fixture.sh; contents in
 * tests/fixtures/README.md). Each is copied to a temporary directory,
 * opened with this code, and must come out at SC_STORE_VERSION with its
 * account, contacts, history (byte-exact), group, outgoing queue and
 * pending event intact. A new version adds one line to `fixtures` below.
 * A store claiming a version newer than this code is refused and left
 * byte-identical.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "everyday.h"
#include "internal.h"

/* Every released client schema version's fixture: one line per version. */
static const char *const fixtures[] = {
    "client-store-v1.db", /* commit c810c49 (unversioned = v1) */
    "client-store-v2.db", /* the client-core redesign (issue 7) */
    "client-store-v3.db", /* commit fcc230d (client accounts, issue 8) */
    "client-store-v4.db", /* commit eb0858a (key transparency, issue 9) */
    "client-store-v5.db", /* issue 10 work tree before schema v6 (daemon subscribers) */
    "client-store-v6.db", /* commit 70ce80b (group revisions, issue 10) */
};

static char tmpdir[256];
static int case_no;

/* ------------------------------------------------------------ helpers */

static void fixture_path(const char *name, char *out, size_t cap)
{
    const char *env = getenv("SOTTO_FIXTURES_DIR");
    if (env && env[0]) {
        snprintf(out, cap, "%s/%s", env, name);
        return;
    }
    /* __FILE__ is absolute in CMake builds: tests/unit/ -> tests/fixtures/ */
    {
        const char *f = __FILE__;
        const char *slash = strrchr(f, '/');
        int dl = slash ? (int)(slash - f) : 1;
        snprintf(out, cap, "%.*s/../fixtures/%s", dl, slash ? f : ".", name);
    }
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

/* A fresh data home holding `fixture` as alice's store; its path into
 * home (and the store's into db). */
static void install(const char *fixture, char *home, size_t hcap, char *db, size_t dcap)
{
    char src[512], d[600];
    uint8_t *p;
    size_t n;

    snprintf(home, hcap, "%s/case%d", tmpdir, ++case_no);
    snprintf(d, sizeof d, "%s/sotto", home);
    assert_int_equal(mkdir(home, 0700), 0);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(d, sizeof d, "%s/sotto/alice", home);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(db, dcap, "%s/store.db", d);
    fixture_path(fixture, src, sizeof src);
    p = read_file(src, &n);
    write_file(db, p, n);
    free(p);
}

static int open_alice(const char *home, sc_client **c, char *err, size_t errlen)
{
    sc_options o;
    memset(&o, 0, sizeof o);
    o.account = "alice";
    o.data_home = home;
    o.must_exist = true;
    return sc_open(c, &o, err, errlen);
}

typedef struct ev_copy {
    int kind;
    char sender[64];
    char body[256];
    size_t body_len;
    char group_name[64];
    size_t n_members;
} ev_copy;

typedef struct evs {
    ev_copy v[16];
    size_t n;
} evs;

static void collect(void *ud, const sc_event *ev)
{
    evs *e = ud;
    ev_copy *x;
    assert_true(e->n < 16);
    x = &e->v[e->n++];
    memset(x, 0, sizeof *x);
    x->kind = ev->kind;
    snprintf(x->sender, sizeof x->sender, "%s", ev->sender ? ev->sender : "");
    assert_true(ev->body_len < sizeof x->body);
    memcpy(x->body, ev->body, ev->body_len);
    x->body_len = ev->body_len;
    snprintf(x->group_name, sizeof x->group_name, "%s", ev->group_name ? ev->group_name : "");
    x->n_members = ev->n_group_members;
}

static void assert_body(const ev_copy *x, int kind, const char *sender, const char *body)
{
    assert_int_equal(x->kind, kind);
    assert_string_equal(x->sender, sender);
    assert_int_equal(x->body_len, strlen(body));
    assert_memory_equal(x->body, body, strlen(body));
}

typedef struct names {
    char v[8][64];
    bool flag[8];
    size_t n[8];
    size_t count;
} names;

static void collect_contact(void *ud, const sc_contact_info *ci)
{
    names *n = ud;
    assert_true(n->count < 8);
    snprintf(n->v[n->count], sizeof n->v[0], "%s", ci->name);
    n->n[n->count] = ci->n_devices;
    n->flag[n->count++] = ci->identity_changed;
}

typedef struct groups {
    char id[33], name[64], members[4][64];
    size_t n_members, count;
    bool active;
} groups;

static void collect_group(void *ud, const sc_group_info *g)
{
    groups *x = ud;
    x->count++;
    snprintf(x->id, sizeof x->id, "%s", g->id_hex);
    snprintf(x->name, sizeof x->name, "%s", g->name);
    x->n_members = g->n_members;
    for (size_t i = 0; i < g->n_members && i < 4; i++)
        snprintf(x->members[i], sizeof x->members[0], "%s", g->members[i]);
    x->active = g->active;
}

/* ------------------------------------------------------------ migrations */

/* What every fixture holds (tests/fixtures/README.md), checked through the
 * client's own calls. */
static void check_fixture_content(sc_client *c)
{
    evs h;
    names cn;
    groups g;
    char *pin = NULL, *url = NULL;
    size_t queued = 0;
    sc_out_row row;
    int version = 0;

    assert_int_equal(sc_store_version(c, &version), SC_OK);
    assert_int_equal(version, SC_STORE_VERSION);

    /* config */
    assert_non_null(sc_username(c));
    assert_string_equal(sc_username(c), "alice");
    assert_int_equal(sc_device_id(c), 1);
    assert_int_equal(sc_cfg_get_text(c, "pin", &pin), SC_OK);
    assert_int_equal(strlen(pin), 64);
    assert_int_equal(sc_cfg_get_text(c, "server_url", &url), SC_OK);
    assert_memory_equal(url, "https://127.0.0.1:", 18);
    free(pin);
    free(url);

    /* contacts */
    memset(&cn, 0, sizeof cn);
    assert_int_equal(sc_contacts(c, collect_contact, &cn), SC_OK);
    assert_int_equal(cn.count, 1);
    assert_string_equal(cn.v[0], "bob");
    assert_int_equal(cn.n[0], 1);
    assert_false(cn.flag[0]);

    /* 1:1 history, both ways, byte-exact */
    memset(&h, 0, sizeof h);
    assert_int_equal(sc_history(c, "bob", false, 0, collect, &h), SC_OK);
    assert_int_equal(h.n, 3);
    assert_body(&h.v[0], SC_EV_SENT, "alice",
                "Hello Bob \xe2\x80\x94 \xc3\xbcn\xc3\xaf"
                "c\xc3\xb6"
                "d\xc3\xa9 \xe2\x9c\x93");
    assert_body(&h.v[1], SC_EV_MESSAGE, "bob", "Hi Alice,\ntwo lines");
    assert_body(&h.v[2], SC_EV_SENT, "alice", "queued while the server was down");

    /* the group */
    memset(&g, 0, sizeof g);
    assert_int_equal(sc_group_list(c, collect_group, &g), SC_OK);
    assert_int_equal(g.count, 1);
    assert_string_equal(g.name, "Fixture group \xe2\x98\x95");
    assert_int_equal(g.n_members, 2);
    assert_string_equal(g.members[0], "alice");
    assert_string_equal(g.members[1], "bob");
    assert_true(g.active);
    memset(&h, 0, sizeof h);
    assert_int_equal(sc_history(c, g.id, true, 0, collect, &h), SC_OK);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.v[0].kind, SC_EV_GROUP);
    assert_string_equal(h.v[0].group_name, "Fixture group \xe2\x98\x95");
    assert_int_equal(h.v[0].n_members, 2);
    assert_body(&h.v[1], SC_EV_MESSAGE, "bob", "group hello from bob");
    assert_string_equal(h.v[1].group_name, "Fixture group \xe2\x98\x95");

    /* the outgoing queue: one message, to bob and its copy for our devices */
    assert_int_equal(sc_outbox_count(c, &queued), SC_OK);
    assert_int_equal(queued, 1);
    assert_int_equal(sc_out_count(c, &queued), SC_OK);
    assert_int_equal(queued, 2);
    assert_int_equal(sc_out_next(c, 0, &row), SC_OK);
    assert_string_equal(row.destination, "bob");
    assert_true(row.len > 0);
    assert_true(row.msg_id > 0);
    sc_out_row_clear(&row);
}

static void migrate_one(const char *fixture)
{
    char home[300], db[700], err[256];
    sc_client *c = NULL;
    evs ev;

    install(fixture, home, sizeof home, db, sizeof db);
    assert_int_equal(open_alice(home, &c, err, sizeof err), SC_OK);
    check_fixture_content(c);
    /* the message the old client stored but never showed is shown once */
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_emit_pending(c, collect, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    assert_body(&ev.v[0], SC_EV_MESSAGE, "bob", "group hello from bob");
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_emit_pending(c, collect, &ev), SC_OK);
    assert_int_equal(ev.n, 0);
    /* v7 (issue 11): the contacts and groups of an older store are accepted
     * conversations, not message requests; someone new is one */
    {
        uint8_t gid[SC_GROUP_ID_BYTES];
        char hex[33];
        bool req = true;
        assert_int_equal(sc_requests_is_request(c, "contact", "bob", &req), SC_OK);
        assert_false(req);
        assert_int_equal(sc_group_resolve(c, "Fixture group \xe2\x98\x95", gid), SC_OK);
        sc_hex(gid, sizeof gid, hex);
        req = true;
        assert_int_equal(sc_requests_is_request(c, "group", hex, &req), SC_OK);
        assert_false(req);
        req = false;
        assert_int_equal(sc_requests_is_request(c, "contact", "mallory", &req), SC_OK);
        assert_true(req);
    }
    /* v6: a group of an older store has revision 0, no admins and is open
     * (everyone may change it, as before); it takes a revision and admins */
    if (strstr(fixture, "-v6.db") != NULL) {
        /* made by a v6 client: the creator is its admin, revision 1 */
        uint8_t gid[SC_GROUP_ID_BYTES];
        uint64_t rev = 0;
        bool open = true;
        char **admins = NULL;
        size_t na = 0;
        assert_int_equal(sc_group_resolve(c, "Fixture group \xe2\x98\x95", gid), SC_OK);
        assert_int_equal(sc_group_meta(c, gid, &rev, &open), SC_OK);
        assert_int_equal(rev, 1);
        assert_false(open);
        assert_int_equal(sc_group_admins(c, gid, &admins, &na), SC_OK);
        assert_int_equal(na, 1);
        assert_string_equal(admins[0], "alice");
        sc_strv_free(admins, na);
    } else {
        uint8_t gid[SC_GROUP_ID_BYTES];
        uint64_t rev = 9;
        bool open = false;
        char **admins = NULL, *who[1] = {(char *)"alice"};
        size_t na = 9;
        assert_int_equal(sc_group_resolve(c, "Fixture group \xe2\x98\x95", gid), SC_OK);
        assert_int_equal(sc_group_meta(c, gid, &rev, &open), SC_OK);
        assert_int_equal(rev, 0);
        assert_true(open);
        assert_int_equal(sc_group_admins(c, gid, &admins, &na), SC_OK);
        assert_int_equal(na, 0);
        sc_strv_free(admins, na);
        admins = NULL;
        assert_int_equal(sc_group_set_admins(c, gid, who, 1), SC_OK);
        assert_int_equal(sc_group_set_meta(c, gid, 4, false), SC_OK);
        assert_int_equal(sc_group_meta(c, gid, &rev, &open), SC_OK);
        assert_int_equal(rev, 4);
        assert_false(open);
        assert_int_equal(sc_group_admins(c, gid, &admins, &na), SC_OK);
        assert_int_equal(na, 1);
        assert_string_equal(admins[0], "alice");
        sc_strv_free(admins, na);
        /* back as it was: the reopening check below expects the fixture */
        assert_int_equal(sc_group_set_admins(c, gid, NULL, 0), SC_OK);
        assert_int_equal(sc_group_set_meta(c, gid, 0, true), SC_OK);
    }
    /* v4: the key-transparency tables exist, empty, and take rows; a store
     * written by a v4 client (or later: v5) keeps the tree head it held */
    if (strstr(fixture, "-v4.db") != NULL || strstr(fixture, "-v5.db") != NULL ||
        strstr(fixture, "-v6.db") != NULL) {
        uint8_t *head = NULL;
        size_t len = 0;
        assert_int_equal(sc_kt_head_get(c, &head, &len, NULL), SC_OK);
        assert_true(len > 0);
        free(head);
        assert_int_equal(sc_kt_own_set(c, 3, 2, 1234), SC_OK);
    } else {
        uint8_t *head = NULL, hash[32];
        size_t len = 0, n = 1;
        uint64_t a = 1, b = 1, t = 1;
        sc_kt_gossip_pending *pend = NULL;
        assert_int_equal(sc_kt_head_get(c, &head, &len, NULL), SC_E_NOT_FOUND);
        assert_null(head);
        assert_int_equal(sc_kt_own_get(c, &a, &b, &t), SC_E_NOT_FOUND);
        assert_int_equal(sc_kt_own_list_get(c, 1, hash), SC_E_NOT_FOUND);
        assert_int_equal(sc_kt_gossip_last_sent(c, "bob", &t), SC_E_NOT_FOUND);
        assert_int_equal(sc_kt_gossip_pending_list(c, &pend, &n), SC_OK);
        assert_int_equal(n, 0);
        sc_kt_gossip_pending_free(pend, n);
        assert_int_equal(sc_kt_evidence_count(c, &n), SC_OK);
        assert_int_equal(n, 0);
        assert_int_equal(sc_kt_own_set(c, 3, 2, 1234), SC_OK);
    }
    sc_close(c);
    /* opening again changes nothing */
    assert_int_equal(open_alice(home, &c, err, sizeof err), SC_OK);
    check_fixture_content(c);
    {
        uint64_t a = 0, b = 0, t = 0;
        assert_int_equal(sc_kt_own_get(c, &a, &b, &t), SC_OK);
        assert_int_equal(a, 3);
        assert_int_equal(b, 2);
        assert_int_equal(t, 1234);
    }
    sc_close(c);
}

static void test_fixtures_migrate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        migrate_one(fixtures[i]);
}

static void test_new_store_is_current(void **state)
{
    sc_options o;
    sc_client *c = NULL;
    char err[256], home[300];
    int version = 0;

    (void)state;
    snprintf(home, sizeof home, "%s/fresh", tmpdir);
    memset(&o, 0, sizeof o);
    o.account = "carol";
    o.data_home = home;
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_int_equal(sc_store_version(c, &version), SC_OK);
    assert_int_equal(version, SC_STORE_VERSION);
    sc_close(c);
}

static void sql_on_file(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    assert_int_equal(sqlite3_close(h), SQLITE_OK); /* last connection: checkpoints the WAL */
}

static void test_future_version_refused(void **state)
{
    char home[300], db[700], err[256], sql[128];
    sc_client *c = NULL;
    uint8_t *before, *after;
    size_t nb, na;
    struct stat st;

    (void)state;
    install(fixtures[0], home, sizeof home, db, sizeof db);
    assert_int_equal(open_alice(home, &c, err, sizeof err), SC_OK);
    sc_close(c);
    snprintf(sql, sizeof sql, "UPDATE client_schema_version SET version = %d",
             SC_STORE_VERSION + 1);
    sql_on_file(db, sql);
    before = read_file(db, &nb);

    c = NULL;
    assert_int_equal(open_alice(home, &c, err, sizeof err), SC_E_STORE);
    assert_null(c);
    assert_non_null(strstr(err, "newer"));
    after = read_file(db, &na);
    assert_int_equal(na, nb);
    assert_memory_equal(after, before, nb);
    /* no write waits in a WAL file either */
    {
        char wal[720];
        snprintf(wal, sizeof wal, "%s-wal", db);
        assert_true(stat(wal, &st) != 0 || st.st_size == 0);
    }
    free(before);
    free(after);
}

/* ------------------------------------------------------------ daemon subscribers (v5) */

typedef struct sub_evs {
    int64_t id[8];
    char body[8][64];
    size_t n;
} sub_evs;

static void collect_sub(void *ud, const sc_event *ev)
{
    sub_evs *x = ud;
    if (x->n < 8) {
        x->id[x->n] = ev->id;
        snprintf(x->body[x->n], sizeof x->body[0], "%s", ev->body);
        x->n++;
    }
}

/* The v4 fixture migrated to v5: a subscriber's unacknowledged events are
 * the rows a receive hands out (received, not alice's own sends or group
 * creation), out-of-order acks move the mark only over what is acked,
 * and all of it survives closing the store. */
static void test_subscribers(void **state)
{
    char home[300], db[700], err[256];
    sc_client *c = NULL;
    sub_evs e;
    int64_t upto = -1;
    size_t n = 0;

    (void)state;
    install("client-store-v4.db", home, sizeof home, db, sizeof db);
    assert_int_equal(open_alice(home, &c, err, sizeof err), SC_OK);
    assert_int_equal(sc_subscriber_ack(c, "bot", NULL, 0, 1, &upto), SC_E_NOT_FOUND);
    assert_int_equal(sc_subscriber_open(c, "", 0, &upto), SC_E_USAGE);
    assert_int_equal(sc_subscriber_open(c, "bot", 0, &upto), SC_OK);
    assert_int_equal(upto, 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(sc_subscriber_unacked(c, "bot", collect_sub, &e, &n), SC_OK);
    assert_int_equal(n, 2);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.body[0], "Hi Alice,\ntwo lines");
    assert_string_equal(e.body[1], "group hello from bob");
    assert_true(e.id[0] < e.id[1]);
    /* the second acked first: the mark stays below the first */
    assert_int_equal(sc_subscriber_ack(c, "bot", &e.id[1], 1, 0, &upto), SC_OK);
    assert_int_equal(upto, e.id[0] - 1);
    sc_close(c);
    assert_int_equal(open_alice(home, &c, err, sizeof err), SC_OK);
    /* opening again keeps the subscriber's mark (start is ignored) */
    assert_int_equal(sc_subscriber_open(c, "bot", 999, &upto), SC_OK);
    assert_int_equal(upto, e.id[0] - 1);
    {
        sub_evs f;
        memset(&f, 0, sizeof f);
        assert_int_equal(sc_subscriber_unacked(c, "bot", collect_sub, &f, &n), SC_OK);
        assert_int_equal(n, 1);
        assert_int_equal(f.id[0], e.id[0]);
    }
    /* now the first: everything is acknowledged, the mark is the newest row */
    assert_int_equal(sc_subscriber_ack(c, "bot", &e.id[0], 1, 0, &upto), SC_OK);
    assert_true(upto >= e.id[1]);
    assert_int_equal(sc_subscriber_unacked(c, "bot", collect_sub, &e, &n), SC_OK);
    assert_int_equal(n, 0);
    /* another subscriber is independent; one starting at a mark sees nothing older */
    assert_int_equal(sc_subscriber_open(c, "other", e.id[0], &upto), SC_OK);
    assert_int_equal(sc_subscriber_unacked(c, "other", collect_sub, &e, &n), SC_OK);
    assert_int_equal(n, 1);
    sc_close(c);
}

/* ------------------------------------------------------------ pending claims */

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
    return c;
}

static int64_t add_row(sc_client *c, const char *body)
{
    sc_msg_row m;
    int64_t id = 0;

    memset(&m, 0, sizeof m);
    m.conv_kind = "contact";
    m.conv = "bob";
    m.sender = "bob";
    m.sender_device = 1;
    m.timestamp = 1;
    m.kind = "text";
    m.body = body;
    m.body_len = strlen(body);
    assert_int_equal(sc_msg_insert(c, &m, &id), SC_OK);
    return id;
}

static void set_claim(sc_client *c, int64_t row, long long pid, long long token, long long ms)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE client_pending_events SET claim_pid = %lld, claim_token = %lld,"
             " claim_ms = %lld WHERE msg_id = %lld",
             pid, token, ms, (long long)row);
    assert_int_equal(sqlite3_exec(c->db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(c->db), 1);
}

/* A pid that is certainly not running: a child that has exited and been
 * reaped. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(0);
    assert_int_equal(waitpid(p, NULL, 0), p);
    return p;
}

static void test_pending_claims(void **state)
{
    sc_client *c = fresh_account("dave");
    int64_t r1, r2, r3, r4, got = 0;
    long long now = (long long)sc_now_ms();
    evs ev;

    (void)state;
    r1 = add_row(c, "one");
    r2 = add_row(c, "two");
    r3 = add_row(c, "three");
    r4 = add_row(c, "four");
    assert_int_equal(sc_pending_event_add(c, r1), SC_OK);
    assert_int_equal(sc_pending_event_add(c, r2), SC_OK);
    assert_int_equal(sc_pending_event_add(c, r3), SC_OK);
    assert_int_equal(sc_pending_event_add(c, r4), SC_OK);

    /* added rows are ours: not claimable again by us, held, done once */
    assert_int_equal(sc_pending_event_claim_next(c, 0, &got), SC_E_NOT_FOUND);
    assert_int_equal(sc_pending_event_hold(c, r1), SC_OK);

    /* r1: a live other process (our parent) claimed it just now: not ours */
    set_claim(c, r1, (long long)getppid(), 12345, now);
    assert_int_equal(sc_pending_event_hold(c, r1), SC_E_NOT_FOUND);
    assert_int_equal(sc_pending_event_done(c, r1), SC_E_NOT_FOUND);
    /* r2: its claimer died */
    set_claim(c, r2, (long long)dead_pid(), 777, now);
    /* r3: a live claimer, but the claim is stale */
    set_claim(c, r3, (long long)getppid(), 999, now - (long long)SC_PENDING_CLAIM_STALE_MS - 1000);
    /* r4: unclaimed (as a v1 store's rows) */
    set_claim(c, r4, 0, 0, 0);

    assert_int_equal(sc_pending_event_claim_next(c, 0, &got), SC_OK);
    assert_int_equal(got, r2);
    assert_int_equal(sc_pending_event_claim_next(c, got, &got), SC_OK);
    assert_int_equal(got, r3);
    assert_int_equal(sc_pending_event_claim_next(c, got, &got), SC_OK);
    assert_int_equal(got, r4);
    assert_int_equal(sc_pending_event_claim_next(c, got, &got), SC_E_NOT_FOUND);
    /* claimed by us now: from the start, nothing more to claim */
    assert_int_equal(sc_pending_event_claim_next(c, 0, &got), SC_E_NOT_FOUND);
    assert_int_equal(sc_pending_event_done(c, r2), SC_OK);
    assert_int_equal(sc_pending_event_done(c, r2), SC_E_NOT_FOUND);

    /* sc_emit_pending shows what it can claim (nothing: r1 is another
     * live process's, r3 and r4 are ours in flight) */
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_emit_pending(c, collect, &ev), SC_OK);
    assert_int_equal(ev.n, 0);
    /* ... until r1's claimer is gone: shown once */
    set_claim(c, r1, (long long)dead_pid(), 12345, now);
    assert_int_equal(sc_emit_pending(c, collect, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    assert_body(&ev.v[0], SC_EV_MESSAGE, "bob", "one");
    assert_int_equal(sc_emit_pending(c, collect, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    sc_close(c);
}

/* Nested transactions: an inner rollback undoes only the inner writes. */
static void test_nested_transactions(void **state)
{
    sc_client *c = fresh_account("erin");
    uint64_t v = 0;

    (void)state;
    assert_int_equal(sc_db_begin(c), SC_OK);
    assert_int_equal(sc_cfg_set_u64(c, "outer", 1), SC_OK);
    assert_int_equal(sc_db_begin(c), SC_OK);
    assert_int_equal(sc_cfg_set_u64(c, "inner", 2), SC_OK);
    sc_db_rollback(c);
    /* a store call that opens its own transaction inside ours */
    assert_int_equal(sc_spk_add(c, 7, 1000), SC_OK);
    assert_int_equal(sc_db_commit(c), SC_OK);
    assert_int_equal(sc_cfg_get_u64(c, "outer", &v), SC_OK);
    assert_int_equal(v, 1);
    assert_int_equal(sc_cfg_get_u64(c, "inner", &v), SC_E_NOT_FOUND);
    assert_int_equal(sc_spk_current_created(c, &v), SC_OK);
    assert_int_equal(v, 1000);
    /* a failing statement reports SQLite's message */
    assert_int_equal(sc_spk_add(c, 8, 2000), SC_OK);
    {
        uint32_t ids[4];
        size_t n = 0;
        assert_int_equal(sc_spk_replaced_before(c, 3000, ids, 4, &n), SC_OK);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], 7);
    }
    assert_int_equal(sqlite3_exec(c->db, "DROP TABLE client_session_reset", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sc_session_reset_add(c, "bob", 1), SC_E_STORE);
    assert_non_null(strstr(sc_errmsg(c), "no such table"));
    sc_close(c);
}

/* ------------------------------------------------------------ key transparency (v4) */

/* Which held envelopes receive tries again by itself (recv.c
 * sc_held_release): those no `trust` waits for -- not of a sender with a
 * changed account key or a changed identity key waiting for `trust`. */
static void hold(sc_client *c, const char *source, uint8_t id)
{
    sc_envelope e;
    uint8_t body[3] = {1, 2, 3};

    memset(&e, 0, sizeof e);
    memset(e.id, id, sizeof e.id);
    e.id_len = sizeof e.id;
    snprintf(e.source, sizeof e.source, "%s", source);
    e.source_device = 1;
    e.type = 3;
    e.body = body;
    e.body_len = sizeof body;
    e.server_ts = id;
    assert_int_equal(sc_held_add(c, &e), SC_OK);
}

static void test_held_waiting(void **state)
{
    sc_client *c = fresh_account("hank");
    uint8_t k1[SC_ACCOUNT_KEY_BYTES], k2[SC_ACCOUNT_KEY_BYTES];
    sotto_key_pair kp;
    char **who = NULL;
    size_t n = 9;
    bool any = true;

    (void)state;
    memset(k1, 0x05, sizeof k1);
    memset(k2, 0x06, sizeof k2);
    assert_int_equal(sc_held_waiting_senders(c, &who, &n), SC_OK);
    assert_int_equal(n, 0);
    /* new (no pinned key), pinned, changed key, changed identity */
    hold(c, "pinned", 1);
    hold(c, "newbie", 2);
    hold(c, "pinned", 3);
    hold(c, "rekeyed", 4);
    hold(c, "reinstalled", 5);
    assert_int_equal(sc_account_pin(c, "pinned", k1), SC_OK);
    assert_int_equal(sc_account_pin(c, "rekeyed", k1), SC_OK);
    assert_int_equal(sc_account_set_pending(c, "rekeyed", k2), SC_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&kp), SOTTO_OK);
    assert_int_equal(sc_pending_identity_set(c, "reinstalled", 1, &kp.pub), SC_OK);
    sotto_key_pair_wipe(&kp);
    assert_int_equal(sc_held_waiting_senders(c, &who, &n), SC_OK);
    assert_int_equal(n, 2);
    assert_string_equal(who[0], "pinned"); /* the oldest held envelope first */
    assert_string_equal(who[1], "newbie");
    sc_strv_free(who, n);
    assert_int_equal(sc_held_waiting_any(c, "newbie", &any), SC_OK);
    assert_true(any);
    assert_int_equal(sc_held_waiting_any(c, "rekeyed", &any), SC_OK);
    assert_false(any);
    assert_int_equal(sc_held_waiting_any(c, "reinstalled", &any), SC_OK);
    assert_false(any);
    assert_int_equal(sc_held_waiting_any(c, "nobody", &any), SC_OK);
    assert_false(any);
    /* `trust` accepts the change: rekeyed's are no longer waiting for it */
    assert_int_equal(sc_account_clear_pending(c, "rekeyed"), SC_OK);
    assert_int_equal(sc_held_waiting_any(c, "rekeyed", &any), SC_OK);
    assert_true(any);
    sc_close(c);
}

static void test_kt_tables(void **state)
{
    sc_client *c = fresh_account("kate");
    uint8_t h1[32], h2[32], got[32], a[120], b[112];
    uint8_t *head = NULL;
    size_t len = 0, n = 0;
    uint64_t ctr = 0, ver = 0, ms = 0;
    int64_t id1 = 0, id2 = 0;
    sc_kt_gossip_pending *pend = NULL;
    sc_kt_evidence *ev = NULL;

    (void)state;
    memset(h1, 0x11, sizeof h1);
    memset(h2, 0x22, sizeof h2);
    memset(a, 0xaa, sizeof a);
    memset(b, 0xbb, sizeof b);

    /* kt_head: one row, replaced */
    assert_int_equal(sc_kt_head_set(c, a, 113, 100), SC_OK);
    assert_int_equal(sc_kt_head_set(c, b, 112, 200), SC_OK);
    assert_int_equal(sc_kt_head_get(c, &head, &len, &ms), SC_OK);
    assert_int_equal(len, 112);
    assert_memory_equal(head, b, 112);
    assert_int_equal(ms, 200);
    free(head);
    /* the CHECK keeps it a single row even when written around the API */
    assert_int_not_equal(
        sqlite3_exec(c->db, "INSERT INTO kt_head(id, head, accepted_ms) VALUES(2, x'00', 1)", NULL,
                     NULL, NULL),
        SQLITE_OK);

    /* kt_own: baseline replaced */
    assert_int_equal(sc_kt_own_set(c, 1, 1, 10), SC_OK);
    assert_int_equal(sc_kt_own_set(c, 4, 3, 20), SC_OK);
    assert_int_equal(sc_kt_own_get(c, &ctr, &ver, &ms), SC_OK);
    assert_int_equal(ctr, 4);
    assert_int_equal(ver, 3);
    assert_int_equal(ms, 20);

    /* kt_own_lists: by version, replace */
    assert_int_equal(sc_kt_own_list_set(c, 1, h1), SC_OK);
    assert_int_equal(sc_kt_own_list_set(c, 2, h1), SC_OK);
    assert_int_equal(sc_kt_own_list_set(c, 2, h2), SC_OK);
    assert_int_equal(sc_kt_own_list_get(c, 1, got), SC_OK);
    assert_memory_equal(got, h1, 32);
    assert_int_equal(sc_kt_own_list_get(c, 2, got), SC_OK);
    assert_memory_equal(got, h2, 32);
    assert_int_equal(sc_kt_own_list_get(c, 3, got), SC_E_NOT_FOUND);

    /* kt_gossip */
    assert_int_equal(sc_kt_gossip_last_sent(c, "bob", &ms), SC_E_NOT_FOUND);
    assert_int_equal(ms, 0);
    assert_int_equal(sc_kt_gossip_set_last_sent(c, "bob", 500), SC_OK);
    assert_int_equal(sc_kt_gossip_set_last_sent(c, "bob", 700), SC_OK);
    assert_int_equal(sc_kt_gossip_set_last_sent(c, "carl", 600), SC_OK);
    assert_int_equal(sc_kt_gossip_last_sent(c, "bob", &ms), SC_OK);
    assert_int_equal(ms, 700);

    /* kt_gossip_pending: oldest first, delete one */
    assert_int_equal(sc_kt_gossip_pending_add(c, "bob", a, 120, 1000, &id1), SC_OK);
    assert_int_equal(sc_kt_gossip_pending_add(c, "carl", b, 112, 2000, &id2), SC_OK);
    assert_true(id1 > 0 && id2 > id1);
    assert_int_equal(sc_kt_gossip_pending_list(c, &pend, &n), SC_OK);
    assert_int_equal(n, 2);
    assert_int_equal(pend[0].id, id1);
    assert_string_equal(pend[0].contact, "bob");
    assert_int_equal(pend[0].head_len, 120);
    assert_memory_equal(pend[0].head, a, 120);
    assert_int_equal(pend[0].received_ms, 1000);
    assert_string_equal(pend[1].contact, "carl");
    assert_int_equal(pend[1].head_len, 112);
    sc_kt_gossip_pending_free(pend, n);
    assert_int_equal(sc_kt_gossip_pending_delete(c, id1), SC_OK);
    assert_int_equal(sc_kt_gossip_pending_list(c, &pend, &n), SC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pend[0].id, id2);
    sc_kt_gossip_pending_free(pend, n);

    /* kt_evidence: with two heads, with none */
    assert_int_equal(sc_kt_evidence_add(c, "equivocation", "two heads", a, 120, b, 112), SC_OK);
    assert_int_equal(sc_kt_evidence_add(c, "own", "an update", NULL, 0, NULL, 0), SC_OK);
    assert_int_equal(sc_kt_evidence_count(c, &n), SC_OK);
    assert_int_equal(n, 2);
    assert_int_equal(sc_kt_evidence_list(c, &ev, &n), SC_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ev[0].kind, "equivocation");
    assert_string_equal(ev[0].text, "two heads");
    assert_int_equal(ev[0].head_a_len, 120);
    assert_memory_equal(ev[0].head_a, a, 120);
    assert_int_equal(ev[0].head_b_len, 112);
    assert_memory_equal(ev[0].head_b, b, 112);
    assert_true(ev[0].created_ms > 0);
    assert_string_equal(ev[1].kind, "own");
    assert_null(ev[1].head_a);
    assert_null(ev[1].head_b);
    assert_int_equal(ev[1].head_a_len, 0);
    sc_kt_evidence_list_free(ev, n);
    sc_close(c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-store-XXXXXX");
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
        cmocka_unit_test(test_fixtures_migrate),       cmocka_unit_test(test_new_store_is_current),
        cmocka_unit_test(test_future_version_refused), cmocka_unit_test(test_pending_claims),
        cmocka_unit_test(test_nested_transactions),    cmocka_unit_test(test_kt_tables),
        cmocka_unit_test(test_held_waiting),           cmocka_unit_test(test_subscribers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
