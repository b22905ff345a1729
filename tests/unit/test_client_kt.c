/*
 * tests/unit/test_client_kt.c -- the client's key-transparency checks
 * (client/core/kt.c) without a server: tree heads are made here with a test
 * server key, test auditor keys and a Merkle log, and handed to
 * sc_kt_accept_head; the owner rule (sc_kt_own_rule) runs on entries made
 * here against a local account with a signed own device list.
 * With a real server: tests/e2e/e2e_kt_basic.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

#include "internal.h"
#include "sotto/device_list.h"
#include "sotto/kt.h"
#include "sotto/merkle.h"

static char tmpdir[256];
static int case_no;

/* the server's and two auditors' Ed25519 keys */
static uint8_t srv_pk[32], srv_sk[64], aud_pk[2][32], aud_sk[2][64];
static char srv_hex[65], vrf_hex[65], aud_hex[2][65];

static sc_client *fresh(void)
{
    sc_options o;
    sc_client *c = NULL;
    char err[256], home[300];

    snprintf(home, sizeof home, "%s/case%d", tmpdir, ++case_no);
    memset(&o, 0, sizeof o);
    o.account = "alice";
    o.data_home = home;
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_int_equal(sc_kt_pin_keys(c, srv_hex, vrf_hex), SC_OK);
    return c;
}

/* A log of n leaves (leaf i from byte i). */
static sotto_merkle_log *make_log(uint64_t n, uint8_t salt)
{
    sotto_merkle_log *log = NULL;
    uint8_t root[32];

    assert_int_equal(sotto_merkle_log_new(&log), SOTTO_OK);
    for (uint64_t i = 0; i < n; i++) {
        uint8_t h[32];
        memset(root, (int)(i + salt), sizeof root);
        assert_int_equal(sotto_kt_leaf_hash(h, root, 1000 + i), SOTTO_OK);
        assert_int_equal(sotto_merkle_log_append(log, h), SOTTO_OK);
    }
    return log;
}

/* The wire form of a head of the first `size` leaves of log stamped ts,
 * countersigned by the auditors in mask (bit i: auditor i). */
static size_t make_head(const sotto_merkle_log *log, uint64_t size, uint64_t ts, unsigned mask,
                        uint8_t out[SOTTO_KT_AUDITED_HEAD_MAX_BYTES])
{
    sotto_kt_audited_head ah;
    size_t len = 0;

    memset(&ah, 0, sizeof ah);
    ah.head.size = size;
    ah.head.timestamp_ms = ts;
    assert_int_equal(sotto_merkle_log_root(log, size, ah.head.root), SOTTO_OK);
    assert_int_equal(sotto_kt_head_sign(&ah.head, srv_sk), SOTTO_OK);
    for (int i = 0; i < 2; i++) {
        uint8_t sig[64];
        if (!(mask & (1u << i)))
            continue;
        assert_int_equal(sotto_kt_cosign(sig, &ah.head, aud_sk[i]), SOTTO_OK);
        assert_int_equal(sotto_kt_audited_head_add(&ah, aud_pk[i], sig), SOTTO_OK);
    }
    assert_int_equal(sotto_kt_audited_head_encode(&ah, out, SOTTO_KT_AUDITED_HEAD_MAX_BYTES, &len),
                     SOTTO_OK);
    return len;
}

static size_t make_cons(const sotto_merkle_log *log, uint64_t s1, uint64_t s2,
                        uint8_t out[SOTTO_MERKLE_PROOF_MAX_BYTES])
{
    uint8_t path[SOTTO_MERKLE_MAX_PROOF][32];
    size_t n = 0, len = 0;

    assert_int_equal(sotto_merkle_log_prove_consistency(log, s1, s2, path, &n), SOTTO_OK);
    assert_int_equal(sotto_merkle_proof_encode((const uint8_t(*)[32])path, n, out,
                                               SOTTO_MERKLE_PROOF_MAX_BYTES, &len),
                     SOTTO_OK);
    return len;
}

static uint64_t held_size(sc_client *c)
{
    sc_kt_status_info st;
    assert_int_equal(sc_kt_status(c, &st), SC_OK);
    return st.has_head ? st.head_size : 0;
}

static size_t evidence(sc_client *c)
{
    size_t n = 99;
    assert_int_equal(sc_kt_evidence_count(c, &n), SC_OK);
    return n;
}

#define HAS(c, s) assert_non_null(strstr(sc_errmsg(c), (s)))

/* ------------------------------------------------------------ heads */

static void test_accept_head_checks(void **state)
{
    sc_client *c = fresh();
    sotto_merkle_log *log = make_log(9, 0), *other = make_log(9, 100);
    uint8_t h[SOTTO_KT_AUDITED_HEAD_MAX_BYTES], p[SOTTO_MERKLE_PROOF_MAX_BYTES];
    uint64_t now = sc_now_ms();
    sotto_kt_audited_head got;
    size_t hl, pl;

    (void)state;
    /* the first head: held */
    hl = make_head(log, 3, now - 1000, 0, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, &got), SC_OK);
    assert_int_equal(got.head.size, 3);
    assert_int_equal(held_size(c), 3);

    /* not signed by the pinned server key */
    hl = make_head(log, 4, now, 0, h);
    h[SOTTO_KT_HEAD_BYTES - 1] ^= 1;
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_E_KT);
    HAS(c, "signature of the server's pinned key-transparency key");
    /* malformed */
    assert_int_equal(sc_kt_accept_head(c, h, 20, NULL, 0, NULL), SC_E_KT);
    HAS(c, "malformed");
    /* stale (two days old), and from the future */
    hl = make_head(log, 4, now - 2 * 86400000ull, 0, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_E_KT);
    HAS(c, "stale");
    hl = make_head(log, 4, now + 3600000ull, 0, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_E_KT);
    HAS(c, "future");
    /* a shorter max age makes a 10-minute-old head stale */
    assert_int_equal(sc_cfg_set_u64(c, "kt_max_age_s", 300), SC_OK);
    hl = make_head(log, 4, now - 600000, 0, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_E_KT);
    HAS(c, "older than the 300 s accepted");
    assert_int_equal(sc_cfg_delete(c, "kt_max_age_s"), SC_OK);

    /* a required auditor: missing, then a countersignature that does not verify */
    assert_int_equal(sc_kt_auditor_add(c, aud_hex[1]), SC_OK);
    pl = make_cons(log, 3, 5, p);
    hl = make_head(log, 5, now, 1, h); /* auditor 0 only */
    assert_int_equal(sc_kt_accept_head(c, h, hl, p, pl, NULL), SC_E_KT);
    HAS(c, "not countersigned by auditor");
    HAS(c, aud_hex[1]);
    hl = make_head(log, 5, now, 3, h);
    h[hl - 1] ^= 1; /* auditor 1's signature is last (keys in increasing order?) */
    {
        sotto_kt_audited_head ah;
        assert_int_equal(sotto_kt_audited_head_parse(h, hl, &ah), SOTTO_OK);
        if (memcmp(ah.cosigs[1].auditor_pk, aud_pk[1], 32) != 0) {
            h[hl - 1] ^= 1; /* auditor 1 is first: break its signature instead */
            h[SOTTO_KT_HEAD_BYTES + 1 + 32] ^= 1;
        }
    }
    assert_int_equal(sc_kt_accept_head(c, h, hl, p, pl, NULL), SC_E_KT);
    HAS(c, "does not verify");
    assert_int_equal(held_size(c), 3);
    /* countersigned by both, consistent: held */
    hl = make_head(log, 5, now, 3, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, p, pl, &got), SC_OK);
    assert_int_equal(held_size(c), 5);
    assert_int_equal(got.n_cosigs, 2);
    assert_int_equal(evidence(c), 0);

    /* the same size again (a fresher signature): fine */
    hl = make_head(log, 5, now + 1, 2, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_OK);
    /* the same size with another root: rewritten, kept as evidence */
    hl = make_head(other, 5, now, 3, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_E_KT);
    HAS(c, "rewritten");
    assert_int_equal(evidence(c), 1);
    /* a smaller size: truncated */
    hl = make_head(log, 4, now, 3, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_E_KT);
    HAS(c, "went back");
    assert_int_equal(evidence(c), 2);
    /* a bigger head of another log, with that log's proof: inconsistent */
    pl = make_cons(other, 5, 8, p);
    hl = make_head(other, 8, now + 2, 3, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, p, pl, NULL), SC_E_KT);
    HAS(c, "inconsistent");
    assert_int_equal(evidence(c), 3);
    /* no proof at all */
    hl = make_head(log, 8, now + 2, 3, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_E_KT);
    HAS(c, "inconsistent");
    assert_int_equal(held_size(c), 5);
    /* the right proof */
    pl = make_cons(log, 5, 8, p);
    assert_int_equal(sc_kt_accept_head(c, h, hl, p, pl, NULL), SC_OK);
    assert_int_equal(held_size(c), 8);
    /* a bigger head stamped before the held one: refused */
    pl = make_cons(log, 8, 9, p);
    hl = make_head(log, 9, now, 3, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, p, pl, NULL), SC_E_KT);
    HAS(c, "inconsistent");
    hl = make_head(log, 8, now + 2, 3, h);
    /* what sc_kt_held_head hands to gossip is those bytes */
    {
        uint8_t out[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
        size_t ol = 0;
        assert_int_equal(sc_kt_held_head(c, out, sizeof out, &ol), SC_OK);
        assert_int_equal(ol, hl);
        assert_memory_equal(out, h, hl);
    }
    sotto_merkle_log_free(log);
    sotto_merkle_log_free(other);
    sc_close(c);
}

/* Two processes on one account (a `listen` and a `send`): while one waits
 * for the server's answer (a head with the consistency path from the size
 * it held when it asked), the other accepts a newer head. The answer is not
 * evidence of anything: the path is from another size than the one held
 * now. No alert, no evidence; the caller asks again. */
static void test_accept_head_race(void **state)
{
    sc_client *c = fresh();
    sotto_merkle_log *log = make_log(9, 0);
    uint8_t h[SOTTO_KT_AUDITED_HEAD_MAX_BYTES], p[SOTTO_MERKLE_PROOF_MAX_BYTES];
    uint8_t h2[SOTTO_KT_AUDITED_HEAD_MAX_BYTES], p2[SOTTO_MERKLE_PROOF_MAX_BYTES];
    uint64_t now = sc_now_ms();
    size_t hl, pl, hl2, pl2;

    (void)state;
    hl = make_head(log, 3, now - 1000, 0, h);
    assert_int_equal(sc_kt_accept_head(c, h, hl, NULL, 0, NULL), SC_OK);
    /* "this" process asks with known size 3 and gets size 7 with 3 -> 7 ... */
    hl = make_head(log, 7, now, 0, h);
    pl = make_cons(log, 3, 7, p);
    /* ... the other one meanwhile holds 5, and later 8 */
    hl2 = make_head(log, 5, now - 500, 0, h2);
    pl2 = make_cons(log, 3, 5, p2);
    assert_int_equal(sc_kt_accept_head(c, h2, hl2, p2, pl2, NULL), SC_OK);
    assert_int_equal(sc_kt_accept_head_asked(c, h, hl, p, pl, 3, NULL), SC_E_RETRY);
    assert_int_equal(evidence(c), 0);
    assert_int_equal(held_size(c), 5);
    hl2 = make_head(log, 8, now, 0, h2);
    pl2 = make_cons(log, 5, 8, p2);
    assert_int_equal(sc_kt_accept_head(c, h2, hl2, p2, pl2, NULL), SC_OK);
    assert_int_equal(sc_kt_accept_head_asked(c, h, hl, p, pl, 3, NULL), SC_E_RETRY);
    assert_int_equal(evidence(c), 0);
    assert_int_equal(held_size(c), 8);
    /* asked with the size held now: checked as always (a bad path is evidence) */
    hl = make_head(log, 9, now, 0, h);
    pl = make_cons(log, 8, 9, p);
    assert_int_equal(sc_kt_accept_head_asked(c, h, hl, p, pl, 8, NULL), SC_OK);
    assert_int_equal(held_size(c), 9);
    assert_int_equal(evidence(c), 0);
    sotto_merkle_log_free(log);
    sc_close(c);
}

static void test_keys_and_auditors(void **state)
{
    sc_client *c = fresh();
    char keys[SC_KT_MAX_AUDITORS][SC_KT_KEY_HEX + 1], up[65];
    sc_kt_status_info st;
    size_t n = 0;

    (void)state;
    /* the same keys again: fine; others: refused; bad hex: usage */
    assert_int_equal(sc_kt_pin_keys(c, srv_hex, vrf_hex), SC_OK);
    assert_int_equal(sc_kt_pin_keys(c, vrf_hex, srv_hex), SC_E_KT);
    assert_int_equal(sc_kt_pin_keys(c, "abcd", vrf_hex), SC_E_USAGE);
    assert_int_equal(sc_kt_status(c, &st), SC_OK);
    assert_true(st.has_keys);
    assert_string_equal(st.server_key, srv_hex);
    assert_string_equal(st.vrf_key, vrf_hex);
    assert_false(st.has_head);
    assert_int_equal(st.max_age_s, 86400);

    assert_int_equal(sc_kt_auditor_list(c, keys, &n), SC_OK);
    assert_int_equal(n, 0);
    assert_int_equal(sc_kt_auditor_add(c, aud_hex[0]), SC_OK);
    /* upper case is the same key */
    for (size_t i = 0; i < 65; i++)
        up[i] = (char)(aud_hex[1][i] >= 'a' && aud_hex[1][i] <= 'f' ? aud_hex[1][i] - 32
                                                                    : aud_hex[1][i]);
    assert_int_equal(sc_kt_auditor_add(c, up), SC_OK);
    assert_int_equal(sc_kt_auditor_add(c, aud_hex[0]), SC_OK); /* twice: once */
    assert_int_equal(sc_kt_auditor_add(c, "zz"), SC_E_USAGE);
    assert_int_equal(sc_kt_auditor_list(c, keys, &n), SC_OK);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], aud_hex[0]);
    assert_string_equal(keys[1], aud_hex[1]);
    assert_int_equal(sc_kt_auditor_remove(c, aud_hex[0]), SC_OK);
    assert_int_equal(sc_kt_auditor_remove(c, aud_hex[0]), SC_E_NOT_FOUND);
    assert_int_equal(sc_kt_auditor_list(c, keys, &n), SC_OK);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0], aud_hex[1]);
    assert_int_equal(sc_kt_auditor_remove(c, aud_hex[1]), SC_OK);
    assert_int_equal(sc_kt_auditor_list(c, keys, &n), SC_OK);
    assert_int_equal(n, 0);
    sc_close(c);
}

/* ------------------------------------------------------------ the owner rule */

typedef struct own_fixture {
    sc_client *c;
    sotto_public_key pk;
    sotto_device_list l;
    uint8_t *list; /* current signed list */
    size_t len;
} own_fixture;

/* Our own account "alice" with a signed list of `version` held. */
static void own_setup(own_fixture *f, uint64_t version)
{
    sotto_key_pair id;

    memset(f, 0, sizeof *f);
    f->c = fresh();
    f->c->username = strdup("alice");
    f->c->device_id = 1;
    assert_int_equal(sc_account_key_create(f->c), SC_OK);
    assert_int_equal(sc_own_account_key(f->c, &f->pk), SC_OK);
    snprintf(f->l.username, sizeof f->l.username, "alice");
    f->l.version = version;
    f->l.timestamp_ms = sc_now_ms();
    f->l.n_devices = 1;
    f->l.devices[0].device_id = 1;
    f->l.devices[0].registration_id = 7;
    assert_int_equal(sotto_identity_key_pair_generate(&id), SOTTO_OK);
    f->l.devices[0].identity_key = id.pub;
    sotto_key_pair_wipe(&id);
    {
        uint8_t ask[64];
        crypto_sign_keypair(f->l.devices[0].auth_key, ask); /* a valid Ed25519 point */
        sodium_memzero(ask, sizeof ask);
    }
    assert_int_equal(sc_own_list_sign(f->c, &f->l, &f->list, &f->len), SC_OK);
    assert_int_equal(sc_account_pin(f->c, "alice", f->pk.bytes), SC_OK);
    assert_int_equal(sc_account_set_list(f->c, "alice", f->list, f->len, version), SC_OK);
}

/* A newer own list signed and held (what device-add does). */
static void own_next(own_fixture *f)
{
    free(f->list);
    f->l.version++;
    assert_int_equal(sc_own_list_sign(f->c, &f->l, &f->list, &f->len), SC_OK);
    assert_int_equal(sc_account_set_list(f->c, "alice", f->list, f->len, f->l.version), SC_OK);
}

static void own_free(own_fixture *f)
{
    free(f->list);
    sc_close(f->c);
}

/* The entry an honest directory holds for the current list. */
static sc_kt_entry honest(const own_fixture *f, uint64_t counter)
{
    sc_kt_entry e;

    memset(&e, 0, sizeof e);
    memcpy(e.account_key, f->pk.bytes, 33);
    assert_int_equal(sotto_kt_device_list_hash(e.list_hash, f->list, f->len), SOTTO_OK);
    e.version = f->l.version;
    e.counter = counter;
    e.timestamp_ms = 1700000000000ull; /* 2023-11-14 */
    e.head_size = 10;
    return e;
}

static void run_rule(own_fixture *f, const sc_kt_entry *e, sc_kt_own_report *rep)
{
    memset(rep, 0, sizeof *rep);
    assert_int_equal(sc_kt_own_rule(f->c, e, rep), SC_OK);
}

static void test_own_rule(void **state)
{
    own_fixture f;
    sc_kt_own_report rep;
    sc_kt_entry e;
    uint64_t c0 = 0, v0 = 0, t0 = 0;

    (void)state;
    own_setup(&f, 1);
    /* clean: the baseline is set */
    e = honest(&f, 1);
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 0);
    assert_int_equal(sc_kt_own_get(f.c, &c0, &v0, &t0), SC_OK);
    assert_int_equal(c0, 1);
    assert_int_equal(v0, 1);

    /* two updates our account did not make, the value restored after them */
    e = honest(&f, 3);
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 1);
    assert_non_null(strstr(rep.alerts[0], "key directory: as of 2023-11-14"));
    assert_non_null(strstr(rep.alerts[0], "list version 1, update 3"));
    assert_non_null(strstr(rep.alerts[0], "2 update(s) your account did not make"));
    /* the baseline stays at the last good check */
    assert_int_equal(sc_kt_own_get(f.c, &c0, &v0, &t0), SC_OK);
    assert_int_equal(c0, 1);

    /* our account makes a change: version 2, one update: clean */
    own_next(&f);
    e = honest(&f, 2);
    assert_int_equal(sc_kt_own_list_set(f.c, 2, e.list_hash), SC_OK);
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 0);
    assert_int_equal(sc_kt_own_get(f.c, &c0, &v0, &t0), SC_OK);
    assert_int_equal(c0, 2);
    assert_int_equal(v0, 2);

    /* another list under our current version */
    e = honest(&f, 2);
    e.list_hash[0] ^= 1;
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 1);
    assert_non_null(strstr(rep.alerts[0], "did not sign"));

    /* another account key */
    e = honest(&f, 2);
    e.account_key[5] ^= 1;
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 1);
    assert_non_null(strstr(rep.alerts[0], "account key that is not yours"));

    /* going back (update 1 after 2) */
    e = honest(&f, 1);
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 1);
    assert_non_null(strstr(rep.alerts[0], "went back"));
    own_free(&f);

    /* an older version: checked against the hash recorded for it */
    own_setup(&f, 3);
    e = honest(&f, 3);
    e.version = 2;
    assert_int_equal(sc_kt_own_list_set(f.c, 2, e.list_hash), SC_OK);
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 0); /* the one recorded: the directory lags behind */
    e.list_hash[31] ^= 1;
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 1);
    assert_non_null(strstr(rep.alerts[0], "old device list your account did not sign"));
    /* version 1, never recorded here: no list alert, but the counter rule
     * sees the version go below the baseline (2) */
    e.version = 1;
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 1);
    assert_non_null(strstr(rep.alerts[0], "went back"));
    own_free(&f);
}

/* The owner is kept from its own entry (PENDING, NOT_FOUND, an old head, or
 * "no key transparency" from a server whose keys are pinned): no alert for a
 * day, then one; a good check stops the clock. */
static void test_own_unverified(void **state)
{
    own_fixture f;
    sc_kt_own_report rep;
    sc_kt_entry e;
    uint64_t since = 0;

    (void)state;
    own_setup(&f, 1);
    memset(&rep, 0, sizeof rep);
    assert_int_equal(sc_kt_own_unverified(f.c, "that it is not published yet", &rep), SC_OK);
    assert_int_equal(rep.n_alerts, 0);
    assert_int_equal(sc_cfg_get_u64(f.c, "kt_own_unverified_ms", &since), SC_OK);
    assert_true(since > 0 && since <= sc_now_ms());
    /* 23 hours later: still nothing (an auditor may be slow) */
    setenv("SOTTO_TEST_CLOCK_OFFSET_MS", "82800000", 1);
    assert_int_equal(sc_kt_own_unverified(f.c, "that it is not published yet", &rep), SC_OK);
    assert_int_equal(rep.n_alerts, 0);
    /* 25 hours later: the alert, with the date the clock started */
    setenv("SOTTO_TEST_CLOCK_OFFSET_MS", "90000000", 1);
    assert_int_equal(sc_kt_own_unverified(f.c, "that it is not published yet", &rep), SC_OK);
    assert_int_equal(rep.n_alerts, 1);
    assert_non_null(
        strstr(rep.alerts[0], "key directory: your account's entry has not been shown"));
    assert_non_null(strstr(rep.alerts[0], "not published yet"));
    /* a longer kt_max_age_s (two days) moves the limit with it */
    assert_int_equal(sc_kt_max_age_set(f.c, 2 * 86400), SC_OK);
    memset(&rep, 0, sizeof rep);
    assert_int_equal(sc_kt_own_unverified(f.c, "x", &rep), SC_OK);
    assert_int_equal(rep.n_alerts, 0);
    assert_int_equal(sc_cfg_delete(f.c, "kt_max_age_s"), SC_OK);
    /* a good check stops the clock; the next refusal starts a new one */
    e = honest(&f, 1);
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 0);
    assert_int_equal(sc_cfg_get_u64(f.c, "kt_own_unverified_ms", &since), SC_E_NOT_FOUND);
    memset(&rep, 0, sizeof rep);
    assert_int_equal(sc_kt_own_unverified(f.c, "x", &rep), SC_OK);
    assert_int_equal(rep.n_alerts, 0);
    unsetenv("SOTTO_TEST_CLOCK_OFFSET_MS");
    /* a clock set back (the start is in the future): starts anew, no alert */
    memset(&rep, 0, sizeof rep);
    assert_int_equal(sc_kt_own_unverified(f.c, "x", &rep), SC_OK);
    assert_int_equal(rep.n_alerts, 0);
    assert_int_equal(sc_cfg_get_u64(f.c, "kt_own_unverified_ms", &since), SC_OK);
    assert_true(since <= sc_now_ms());

    /* a server whose keys are pinned here says it has no key transparency:
     * the own check stays due (a downgrade is not an old server) */
    assert_int_equal(sc_kt_own_set(f.c, 1, 1, 0), SC_OK); /* the last good check long ago */
    f.c->kt_unsupported = true;
    assert_true(sc_kt_monitor_due(f.c));
    /* ... while a server from before key transparency (nothing pinned) is
     * not asked */
    assert_int_equal(sc_cfg_delete(f.c, "kt_server_key"), SC_OK);
    assert_false(sc_kt_monitor_due(f.c));
    own_free(&f);
}

/* The directory holds a version newer than our list, and the server does not
 * hand out that list when asked (here: no connection at all; a hostile
 * server answers errors or drops the connection every time). Before: the
 * check failed with the network error, alerted never, and the login
 * ignored it. Now: a check that could not finish, on the same clock as a
 * withheld entry. */
static void test_own_refresh_withheld(void **state)
{
    own_fixture f;
    sc_kt_own_report rep;
    sc_kt_entry e;
    uint64_t c0 = 0, v0 = 0, t0 = 0;

    (void)state;
    own_setup(&f, 1);
    e = honest(&f, 1);
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 0);
    /* a forged version 2 (a device list our account never signed) */
    e = honest(&f, 2);
    e.version = 2;
    e.list_hash[0] ^= 1;
    run_rule(&f, &e, &rep);
    assert_int_equal(rep.n_alerts, 0);
    assert_int_equal(sc_kt_own_get(f.c, &c0, &v0, &t0), SC_OK);
    assert_int_equal(c0, 1); /* not a good check: the baseline stays */
    setenv("SOTTO_TEST_CLOCK_OFFSET_MS", "90000000", 1);
    run_rule(&f, &e, &rep);
    unsetenv("SOTTO_TEST_CLOCK_OFFSET_MS");
    assert_int_equal(rep.n_alerts, 1);
    assert_non_null(strstr(rep.alerts[0], "has not been shown to this device since"));
    assert_non_null(strstr(rep.alerts[0], "device list"));
    own_free(&f);
}

/* ------------------------------------------------------------ main */

static int setup(void **state)
{
    uint8_t vrf[32];
    (void)state;
    if (sodium_init() < 0 || sotto_init() != SOTTO_OK)
        return -1;
    crypto_sign_keypair(srv_pk, srv_sk);
    sc_hex(srv_pk, 32, srv_hex);
    randombytes_buf(vrf, sizeof vrf);
    sc_hex(vrf, 32, vrf_hex);
    for (int i = 0; i < 2; i++) {
        crypto_sign_keypair(aud_pk[i], aud_sk[i]);
        sc_hex(aud_pk[i], 32, aud_hex[i]);
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-kt-XXXXXX");
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
        cmocka_unit_test(test_accept_head_checks), cmocka_unit_test(test_accept_head_race),
        cmocka_unit_test(test_keys_and_auditors),  cmocka_unit_test(test_own_rule),
        cmocka_unit_test(test_own_unverified),     cmocka_unit_test(test_own_refresh_withheld),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
