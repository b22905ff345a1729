/*
 * tests/server/test_kt_server.c -- key transparency in a real sottod (API
 * v3 ops 25-30) over real TLS WebSocket connections (tclient.c), with every
 * answer verified by libsotto as a client and an auditor would:
 *  - search: the audited head checks (sotto_kt_audited_head_check), the
 *    result verifies (sotto_kt_search_verify under the VRF key from
 *    kt_config), the value's account key and list hash are the registered
 *    ones, the counter goes 1 -> 2 after a device-list change, the old head
 *    is consistent with the new one; NOT_FOUND for no account;
 *  - a restart keeps the log and its root; kt_consistency from an old size
 *    verifies; kt_audit's updates replayed (sotto_kt_directory_apply) give
 *    the signed root;
 *  - with an auditor configured: PENDING until its countersignature, then
 *    the head carries it; a cosign by an unconfigured key is FORBIDDEN, a
 *    bad countersignature INVALID_SIGNATURE; the public KT ops are not
 *    limited by the pre-login request cap;
 *  - (SOTTO_KT_BENCH=N) start-up replay time of N updates.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sotto/kt.h"
#include "sotto/merkle.h"
#include "tclient.h"

#define OK SOTTO__API__STATUS__STATUS_OK
#define PENDING SOTTO__API__STATUS__STATUS_KT_PENDING

typedef struct tstate {
    tc_server srv;
} tstate;

static int setup(void **state)
{
    tstate *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(tc_server_init(&t->srv), 0);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tstate *t = *state;
    tc_server_cleanup(&t->srv);
    free(t);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct ktcfg {
    uint8_t server_key[32], vrf_key[32];
    uint64_t log_size;
    size_t n_auditors;
} ktcfg;

static void kt_config(tc_conn *c, ktcfg *out)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtConfigRequest rq = SOTTO__API__KT_CONFIG_REQUEST__INIT;
    tc_sframe *r;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_CONFIG;
    f.kt_config = &rq;
    r = tc_call(c, &f, 5000);
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_int_equal(r->kt_config->server_key.len, 32);
    assert_int_equal(r->kt_config->vrf_key.len, 32);
    memcpy(out->server_key, r->kt_config->server_key.data, 32);
    memcpy(out->vrf_key, r->kt_config->vrf_key.data, 32);
    out->log_size = r->kt_config->log_size;
    out->n_auditors = r->kt_config->n_auditors;
    tc_free(r);
}

/* kt_search; returns the response (status in it), caller frees. */
static tc_sframe *kt_search_raw(tc_conn *c, const char *user, uint64_t known)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtSearchRequest rq = SOTTO__API__KT_SEARCH_REQUEST__INIT;
    rq.username = (char *)user;
    rq.known_size = known;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_SEARCH;
    f.kt_search = &rq;
    return tc_call(c, &f, 5000);
}

/* A verified search: retries while PENDING (up to 10 s), then checks the
 * head (server key, auditors, fresh) and the result; fills value, counter
 * and the head. If old != NULL, the consistency path from it verifies. */
static void kt_search_ok(tc_conn *c, const ktcfg *cfg, const uint8_t (*auditors)[32], size_t na,
                         const char *user, const sotto_kt_tree_head *old, sotto_kt_value *value,
                         uint64_t *counter, sotto_kt_audited_head *head)
{
    sotto_kt_search_result *res = malloc(sizeof(*res));
    tc_sframe *r = NULL;
    assert_non_null(res);
    for (int i = 0; i < 200; i++) {
        r = kt_search_raw(c, user, old != NULL ? old->size : 0);
        assert_non_null(r);
        if (r->status != PENDING)
            break;
        assert_true(r->retry_after_ms > 0);
        tc_free(r);
        r = NULL;
        usleep(50000);
    }
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_int_equal(
        sotto_kt_audited_head_parse(r->kt_search->head.data, r->kt_search->head.len, head),
        SOTTO_OK);
    assert_int_equal(sotto_kt_audited_head_check(head, cfg->server_key, auditors, na, now_ms(),
                                                 SOTTO_KT_DEFAULT_MAX_AGE_MS),
                     SOTTO_OK);
    assert_int_equal(
        sotto_kt_search_result_parse(r->kt_search->result.data, r->kt_search->result.len, res),
        SOTTO_OK);
    assert_int_equal(sotto_kt_search_verify(value, cfg->vrf_key, user, res, &head->head), SOTTO_OK);
    *counter = res->counter;
    if (old != NULL) {
        if (old->size == head->head.size)
            assert_int_equal(r->kt_search->consistency.len, 0);
        assert_int_equal(sotto_kt_head_verify_consistency(old, &head->head,
                                                          r->kt_search->consistency.data,
                                                          r->kt_search->consistency.len),
                         SOTTO_OK);
    }
    /* Tampering with the value is caught by the client's check. */
    res->value.version++;
    assert_int_not_equal(sotto_kt_search_verify(NULL, cfg->vrf_key, user, res, &head->head),
                         SOTTO_OK);
    tc_free(r);
    free(res);
}

static void assert_value_is(const sotto_kt_value *v, const tc_device *owner, tc_conn *c,
                            uint64_t version)
{
    uint8_t raw[SOTTO_DEVICE_LIST_MAX_BYTES], h[32];
    size_t len = 0;
    sotto_device_list *l = malloc(sizeof(*l));
    assert_non_null(l);
    assert_memory_equal(v->account_key, owner->account.pub.bytes, 33);
    assert_int_equal(tc_fetch_list(c, l, raw, &len), OK);
    assert_int_equal(l->version, version);
    crypto_hash_sha256(h, raw, len);
    assert_memory_equal(v->device_list_hash, h, 32);
    assert_int_equal(v->version, version);
    free(l);
}

static void kt_consistency(tc_conn *c, uint64_t s1, uint64_t s2, int want, uint8_t root2[32],
                           uint8_t root1[32], uint8_t path[64][32], size_t *plen)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtConsistencyRequest rq = SOTTO__API__KT_CONSISTENCY_REQUEST__INIT;
    tc_sframe *r;
    rq.size1 = s1;
    rq.size2 = s2;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_CONSISTENCY;
    f.kt_consistency = &rq;
    r = tc_call(c, &f, 5000);
    assert_non_null(r);
    assert_int_equal(r->status, want);
    if (want == OK) {
        assert_int_equal(r->kt_consistency->root1.len, 32);
        assert_int_equal(r->kt_consistency->root2.len, 32);
        memcpy(root1, r->kt_consistency->root1.data, 32);
        memcpy(root2, r->kt_consistency->root2.data, 32);
        if (s1 == s2) {
            assert_int_equal(r->kt_consistency->proof.len, 0);
            *plen = 0;
        } else {
            assert_int_equal(sotto_merkle_proof_parse(r->kt_consistency->proof.data,
                                                      r->kt_consistency->proof.len, path, plen),
                             SOTTO_OK);
        }
    }
    tc_free(r);
}

static tc_sframe *kt_audit(tc_conn *c, uint64_t from, uint32_t max)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtAuditRequest rq = SOTTO__API__KT_AUDIT_REQUEST__INIT;
    rq.from = from;
    rq.max = max;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_AUDIT;
    f.kt_audit = &rq;
    return tc_call(c, &f, 5000);
}

static int kt_cosign(tc_conn *c, const uint8_t head[112], const uint8_t pk[32],
                     const uint8_t sig[64], bool *published)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtCosignRequest rq = SOTTO__API__KT_COSIGN_REQUEST__INIT;
    tc_sframe *r;
    int st;
    rq.head.data = (uint8_t *)head;
    rq.head.len = 112;
    rq.auditor_key.data = (uint8_t *)pk;
    rq.auditor_key.len = 32;
    rq.signature.data = (uint8_t *)sig;
    rq.signature.len = 64;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_COSIGN;
    f.kt_cosign = &rq;
    r = tc_call(c, &f, 5000);
    assert_non_null(r);
    st = r->status;
    if (st == OK && published != NULL)
        *published = r->kt_cosign->published;
    tc_free(r);
    return st;
}

/* An honest auditor: fetches every update, replays them, and checks its
 * root against the signed head. Returns the verified head. */
static void audit_all(tc_conn *c, const ktcfg *cfg, sotto_kt_tree_head *head_out,
                      uint8_t head_wire[112])
{
    sotto_kt_directory *d = NULL;
    sotto_merkle_log *log = NULL;
    sotto_kt_tree_head h;
    uint64_t from = 0, size = 0;
    uint8_t root[32];
    assert_int_equal(sotto_kt_directory_new(&d), SOTTO_OK);
    assert_int_equal(sotto_merkle_log_new(&log), SOTTO_OK);
    for (;;) {
        tc_sframe *r = kt_audit(c, from, 7); /* small pages: exercises paging */
        assert_non_null(r);
        assert_int_equal(r->status, OK);
        assert_int_equal(
            sotto_kt_head_parse(r->kt_audit->head.data, r->kt_audit->head.len, cfg->server_key, &h),
            SOTTO_OK);
        size = h.size;
        if (head_wire != NULL)
            memcpy(head_wire, r->kt_audit->head.data, 112);
        for (size_t i = 0; i < r->kt_audit->n_updates; i++) {
            sotto_kt_update u;
            uint8_t proot[32], leaf[32];
            assert_int_equal(sotto_kt_update_parse(r->kt_audit->updates[i].data,
                                                   r->kt_audit->updates[i].len, &u),
                             SOTTO_OK);
            assert_int_equal(sotto_kt_directory_apply(d, &u, proot), SOTTO_OK);
            assert_int_equal(sotto_kt_leaf_hash(leaf, proot, u.timestamp_ms), SOTTO_OK);
            assert_int_equal(sotto_merkle_log_append(log, leaf), SOTTO_OK);
        }
        from += r->kt_audit->n_updates;
        bool done = r->kt_audit->n_updates == 0 || from >= size;
        tc_free(r);
        if (done)
            break;
    }
    assert_int_equal(from, size);
    assert_int_equal(sotto_merkle_log_root(log, size, root), SOTTO_OK);
    assert_memory_equal(root, h.root, 32);
    *head_out = h;
    sotto_kt_directory_free(d);
    sotto_merkle_log_free(log);
}

/* ---- tests -------------------------------------------------------------------- */

/* PRAGMA data_version of a second connection to the server's database: it
 * changes whenever the server commits anything (sqlite.org/pragma.html). */
static int data_version(tstate *t, char *path, size_t cap, sqlite3 **db)
{
    sqlite3_stmt *st = NULL;
    int n = -1;

    if (*db == NULL) {
        snprintf(path, cap, "%s/sottod.db", t->srv.dir);
        assert_int_equal(sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    }
    assert_int_equal(sqlite3_prepare_v2(*db, "PRAGMA data_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void test_kt_search_honest(void **state)
{
    tstate *t = *state;
    tc_device alice, bob, bob2;
    tc_conn *a, *b;
    ktcfg cfg, cfg2;
    sotto_kt_value v;
    sotto_kt_audited_head h1, h2, h3;
    sotto_kt_tree_head ah;
    uint64_t counter = 0;
    uint8_t r1[32], r2[32], path[64][32];
    size_t plen = 0;
    tc_sframe *r;

    assert_int_equal(tc_server_start(&t->srv, NULL), 0);
    a = tc_new_user(&t->srv, &alice, "alice", 2);
    b = tc_new_user(&t->srv, &bob, "bob", 2);
    assert_non_null(a);
    assert_non_null(b);
    kt_config(a, &cfg);
    assert_int_equal(cfg.n_auditors, 0);

    /* bob as registered: counter 1, version 1, his account key and list. */
    kt_search_ok(a, &cfg, NULL, 0, "bob", NULL, &v, &counter, &h1);
    assert_int_equal(counter, 1);
    assert_value_is(&v, &bob, b, 1);
    /* alice sees herself too; an unknown name is NOT_FOUND */
    kt_search_ok(b, &cfg, NULL, 0, "alice", NULL, &v, &counter, &h2);
    assert_memory_equal(v.account_key, alice.account.pub.bytes, 33);
    r = kt_search_raw(a, "nobody", 0);
    assert_non_null(r);
    assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_NOT_FOUND);
    tc_free(r);

    /* A device-list change: counter 2, version 2, consistent with h1. */
    tc_device_new(&bob2, "bob");
    assert_int_equal(tc_add_device(b, &bob, &bob2), OK);
    for (int i = 0; i < 100; i++) {
        kt_search_ok(a, &cfg, NULL, 0, "bob", &h1.head, &v, &counter, &h2);
        if (counter == 2)
            break;
        usleep(50000);
    }
    assert_int_equal(counter, 2);
    assert_value_is(&v, &bob, b, 2);
    assert_true(h2.head.size > h1.head.size);

    /* kt_consistency between the two sizes verifies with its roots. */
    kt_consistency(a, h1.head.size, h2.head.size, OK, r2, r1, path, &plen);
    assert_memory_equal(r1, h1.head.root, 32);
    assert_memory_equal(r2, h2.head.root, 32);
    assert_int_equal(sotto_merkle_verify_consistency(h1.head.size, h2.head.size, r1, r2,
                                                     (const uint8_t(*)[32])path, plen),
                     SOTTO_OK);
    kt_consistency(a, 0, h2.head.size, SOTTO__API__STATUS__STATUS_BAD_REQUEST, r2, r1, path, &plen);
    kt_consistency(a, 1, h2.head.size + 100, SOTTO__API__STATUS__STATUS_BAD_REQUEST, r2, r1, path,
                   &plen);

    /* An honest auditor's replay reaches the signed root. */
    audit_all(a, &cfg, &ah, NULL);
    assert_int_equal(ah.size, h2.head.size);

    /* A cosign by a key the server is not configured with: FORBIDDEN. */
    {
        uint8_t pk[32], sk[64], wire[112], sig[64];
        crypto_sign_keypair(pk, sk);
        assert_int_equal(sotto_kt_head_encode(&ah, wire), SOTTO_OK);
        assert_int_equal(sotto_kt_cosign(sig, &ah, sk), SOTTO_OK);
        assert_int_equal(kt_cosign(a, wire, pk, sig, NULL), SOTTO__API__STATUS__STATUS_FORBIDDEN);
    }

    /* disclose (issue 12) prints no KT entry (public to whoever searches
     * the name) and no opening. */
    {
        const char *args[] = {"disclose", "bob", NULL};
        int status = -1;
        char *out = tc_admin(&t->srv, args, &status);
        assert_non_null(out);
        assert_int_equal(status, 0);
        assert_non_null(strstr(out, "\"device_count\": "));
        assert_null(strstr(out, "key_transparency"));
        assert_null(strstr(out, "\"counter\""));
        assert_null(strstr(out, "opening"));
        free(out);
    }

    /* A restart keeps the log and its root; old heads stay consistent. */
    tc_close(a);
    tc_close(b);
    assert_int_equal(tc_server_stop(&t->srv), 0);
    assert_int_equal(tc_server_restart(&t->srv), 0);
    a = tc_connect(&t->srv);
    assert_non_null(a);
    assert_int_equal(tc_login(a, &alice), OK);
    kt_config(a, &cfg2);
    assert_memory_equal(cfg2.server_key, cfg.server_key, 32);
    assert_memory_equal(cfg2.vrf_key, cfg.vrf_key, 32);
    assert_int_equal(cfg2.log_size, h2.head.size);
    kt_search_ok(a, &cfg, NULL, 0, "bob", &h1.head, &v, &counter, &h3);
    assert_int_equal(counter, 2);
    assert_int_equal(h3.head.size, h2.head.size);
    assert_memory_equal(h3.head.root, h2.head.root, 32);
    tc_close(a);
    assert_int_equal(tc_server_stop(&t->srv), 0);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
    tc_device_wipe(&bob2);
}

static void test_kt_auditor(void **state)
{
    tstate *t = *state;
    tc_device alice, bob;
    tc_conn *a, *b, *aud;
    ktcfg cfg;
    uint8_t apk[32], ask[64], wire[112], sig[64], bad[64];
    char hex[65], set[96];
    const char *sets[3];
    sotto_kt_tree_head h;
    sotto_kt_audited_head ah;
    sotto_kt_value v;
    uint64_t counter = 0;
    bool published = false;
    tc_sframe *r;

    crypto_sign_keypair(apk, ask);
    sodium_bin2hex(hex, sizeof(hex), apk, 32);
    snprintf(set, sizeof(set), "kt_auditors=%s", hex);
    sets[0] = set;
    sets[1] = "kt_head_interval_s=3600";
    sets[2] = NULL;
    assert_int_equal(tc_server_start(&t->srv, sets), 0);
    a = tc_new_user(&t->srv, &alice, "alice", 2);
    b = tc_new_user(&t->srv, &bob, "bob", 2);
    assert_non_null(a);
    assert_non_null(b);
    kt_config(a, &cfg);
    assert_int_equal(cfg.n_auditors, 1);

    /* Nothing is published before the auditor countersigned. */
    r = kt_search_raw(a, "bob", 0);
    assert_non_null(r);
    assert_int_equal(r->status, PENDING);
    assert_true(r->retry_after_ms > 0);
    tc_free(r);

    /* The auditor (never logged in) catches up; more public KT requests
     * than the pre-login cap (16) are fine. */
    aud = tc_connect(&t->srv);
    assert_non_null(aud);
    for (int i = 0; i < 20; i++)
        kt_config(aud, &cfg);
    /* wait until both registrations are in the log */
    for (int i = 0; i < 100 && cfg.log_size < 2; i++) {
        usleep(50000);
        kt_config(aud, &cfg);
    }
    assert_int_equal(cfg.log_size, 2);
    audit_all(aud, &cfg, &h, wire);
    assert_int_equal(h.size, 2);

    /* Wrong countersignature, unknown key, unknown head. */
    assert_int_equal(sotto_kt_cosign(sig, &h, ask), SOTTO_OK);
    memcpy(bad, sig, 64);
    bad[5] ^= 1;
    assert_int_equal(kt_cosign(aud, wire, apk, bad, NULL),
                     SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    {
        uint8_t opk[32], osk[64], osig[64], forged[112];
        sotto_kt_tree_head fh = h;
        crypto_sign_keypair(opk, osk);
        assert_int_equal(sotto_kt_cosign(osig, &h, osk), SOTTO_OK);
        assert_int_equal(kt_cosign(aud, wire, opk, osig, NULL),
                         SOTTO__API__STATUS__STATUS_FORBIDDEN);
        /* a head the server never signed (its own signature broken) */
        memcpy(forged, wire, 112);
        forged[60] ^= 1;
        fh.timestamp_ms++;
        assert_int_equal(sotto_kt_cosign(osig, &fh, ask), SOTTO_OK);
        assert_int_equal(kt_cosign(aud, forged, apk, osig, NULL),
                         SOTTO__API__STATUS__STATUS_NOT_FOUND);
    }
    /* Still nothing published. */
    r = kt_search_raw(a, "bob", 0);
    assert_non_null(r);
    assert_int_equal(r->status, PENDING);
    tc_free(r);

    /* The good countersignature publishes the head. */
    assert_int_equal(kt_cosign(aud, wire, apk, sig, &published), OK);
    assert_true(published);
    kt_search_ok(a, &cfg, (const uint8_t(*)[32])apk, 1, "bob", NULL, &v, &counter, &ah);
    assert_int_equal(counter, 1);
    assert_int_equal(ah.head.size, 2);
    assert_int_equal(ah.n_cosigs, 1);
    assert_memory_equal(ah.cosigs[0].auditor_pk, apk, 32);
    assert_memory_equal(v.account_key, bob.account.pub.bytes, 33);

    /* Anyone can replay a published countersignature before login: it is
     * answered (not published again) and commits nothing. */
    {
        char path[512];
        sqlite3 *db = NULL;
        int before = data_version(t, path, sizeof(path), &db);
        for (int i = 0; i < 50; i++) {
            published = true;
            assert_int_equal(kt_cosign(aud, wire, apk, sig, &published), OK);
            assert_false(published);
        }
        assert_int_equal(data_version(t, path, sizeof(path), &db), before);
        sqlite3_close(db);
    }

    tc_close(aud);
    tc_close(a);
    tc_close(b);
    assert_int_equal(tc_server_stop(&t->srv), 0);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

/* SOTTO_KT_BENCH=N: start-up replay of N updates (written straight into
 * kt_log), read from sottod's kt_replayed log line. */
static void test_kt_replay_bench(void **state)
{
    tstate *t = *state;
    const char *env = getenv("SOTTO_KT_BENCH");
    long n = env != NULL ? strtol(env, NULL, 10) : 0;
    char path[512], line[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    FILE *fp;

    if (n <= 0) {
        skip();
        return;
    }
    assert_int_equal(tc_server_start(&t->srv, NULL), 0);
    assert_int_equal(tc_server_stop(&t->srv), 0);
    snprintf(path, sizeof(path), "%s/sottod.db", t->srv.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO kt_log(pos, ts_ms, vrf_index, counter,"
                                        " commitment) VALUES(?1, ?2, ?3, 1, ?4)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (long i = 0; i < n; i++) {
        uint8_t idx[32], com[32];
        randombytes_buf(idx, 32);
        randombytes_buf(com, 32);
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_int64(st, 2, 1767225600000LL);
        sqlite3_bind_blob(st, 3, idx, 32, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 4, com, 32, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(tc_server_restart(&t->srv), 0);
    assert_int_equal(tc_server_stop(&t->srv), 0);
    snprintf(path, sizeof(path), "%s/sottod.log", t->srv.dir);
    fp = fopen(path, "r");
    assert_non_null(fp);
    bool found = false;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, "event=kt_replayed") != NULL && strstr(line, "log_size=0 ") == NULL) {
            printf("# %s", line);
            found = true;
        }
    }
    fclose(fp);
    assert_true(found);
}

/* Issue 12: what kt_heads keeps. Head times are whole kt_head_interval_s
 * (at most an hour), not milliseconds, and superseded heads are dropped:
 * only heads of the two newest head times (and countersigned ones) stay.
 * Before: one row per batch and per re-sign, each with the millisecond
 * the accounts in it changed their keys. */
static void heads_in_db(tstate *t, int64_t *rows, int64_t *times, int64_t *off_quantum,
                        int64_t quantum_ms)
{
    char path[300], sql[200];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    snprintf(path, sizeof(path), "%s/sottod.db", t->srv.dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    snprintf(sql, sizeof(sql),
             "SELECT count(*), count(DISTINCT ts_ms), total(ts_ms %% %lld <> 0) FROM kt_heads",
             (long long)quantum_ms);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *rows = sqlite3_column_int64(st, 0);
    *times = sqlite3_column_int64(st, 1);
    *off_quantum = sqlite3_column_int64(st, 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_kt_heads_kept(void **state)
{
    tstate *t = *state;
    static const char *const sets[] = {"kt_head_interval_s=1", NULL};
    tc_device d[5];
    tc_conn *c[5];
    ktcfg cfg;
    int64_t rows, times, off;

    assert_int_equal(tc_server_start(&t->srv, sets), 0);
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "user%d", i);
        c[i] = tc_new_user(&t->srv, &d[i], name, 1);
        assert_non_null(c[i]);
        usleep(1200000); /* the next batch falls in another second */
    }
    kt_config(c[0], &cfg);
    for (int i = 0; i < 100 && cfg.log_size < 5; i++) {
        usleep(50000);
        kt_config(c[0], &cfg);
    }
    assert_int_equal(cfg.log_size, 5);
    heads_in_db(t, &rows, &times, &off, 1000);
    print_message("kt_heads after 5 batches and ~6 s of re-signing every second: %lld rows, "
                  "%lld distinct times, %lld not on a whole second\n",
                  (long long)rows, (long long)times, (long long)off);
    assert_true(rows >= 1);
    assert_true(times >= 1 && times <= 2);
    assert_int_equal(off, 0);
    /* the newest head still verifies (and is fresh) for a client */
    {
        sotto_kt_value v;
        sotto_kt_audited_head ah;
        uint64_t ctr = 0;
        kt_search_ok(c[0], &cfg, NULL, 0, "user4", NULL, &v, &ctr, &ah);
        assert_int_equal(ctr, 1);
        assert_int_equal(ah.head.timestamp_ms % 1000, 0);
    }
    for (int i = 0; i < 5; i++) {
        tc_close(c[i]);
        tc_device_wipe(&d[i]);
    }
    assert_int_equal(tc_server_stop(&t->srv), 0);
}

/* At the default kt_head_interval_s (3600) head times are whole hours. */
static void test_kt_heads_hourly(void **state)
{
    tstate *t = *state;
    tc_device a, b;
    tc_conn *ca, *cb;
    ktcfg cfg;
    int64_t rows, times, off;

    assert_int_equal(tc_server_start(&t->srv, NULL), 0);
    ca = tc_new_user(&t->srv, &a, "alice", 1);
    cb = tc_new_user(&t->srv, &b, "bob", 1);
    assert_non_null(ca);
    assert_non_null(cb);
    kt_config(ca, &cfg);
    for (int i = 0; i < 100 && cfg.log_size < 2; i++) {
        usleep(50000);
        kt_config(ca, &cfg);
    }
    assert_int_equal(cfg.log_size, 2);
    heads_in_db(t, &rows, &times, &off, 3600000);
    print_message("kt_heads at the defaults: %lld rows, %lld distinct times, %lld not on a "
                  "whole hour\n",
                  (long long)rows, (long long)times, (long long)off);
    assert_true(rows >= 1);
    assert_int_equal(off, 0);
    {
        sotto_kt_value v;
        sotto_kt_audited_head ah;
        uint64_t ctr = 0;
        kt_search_ok(ca, &cfg, NULL, 0, "bob", NULL, &v, &ctr, &ah);
        assert_int_equal(ah.head.timestamp_ms % 3600000, 0);
        assert_true(ah.head.timestamp_ms + 3600000 > now_ms());
    }
    tc_close(ca);
    tc_close(cb);
    tc_device_wipe(&a);
    tc_device_wipe(&b);
    assert_int_equal(tc_server_stop(&t->srv), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kt_search_honest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kt_auditor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kt_heads_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kt_heads_hourly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kt_replay_bench, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0 || sotto_init() != SOTTO_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
