/*
 * tests/server/test_sottod.c -- sottod tested as a black box: a real sottod
 * per test on 127.0.0.1:0 with a temp data dir, reached over real TLS 1.3
 * WebSocket connections (tests/server/tclient.c, which pins the certificate
 * sottod prints), speaking proto/api.proto.
 *
 * Scenarios: registration (valid, invalid names, taken, invite mode), login
 * failures (wrong signature, replayed challenge, other connection's
 * challenge, unknown/removed device), prekeys (upload, fetch, exhaustion,
 * concurrency), sends with missing/extra/stale devices, offline queue,
 * acks, redelivery, TTL expiry, full queue, rate limits, hostile frames
 * before and after login, cross-device acks, kill -9 during a send storm,
 * `sottod admin disclose`, the data directory rules (a second sottod on it
 * refused, a 0-byte / missing / garbled database refused, a new directory
 * initialised, --init), sottod-test's SOTTOD_TEST_FAIL_SEND hook, and the
 * signed device lists of API v2 (register / add / remove / set with correct
 * lists and every kind of wrong one refused, get_device_list without a
 * prekey and before login, device_list_changed notices, recovery, the
 * transition switch require_device_lists).
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sotto/account.h"
#include "sotto/device_list.h"
#include "tclient.h"

#define OK SOTTO__API__STATUS__STATUS_OK

typedef struct tstate {
    tc_server srv;
    bool started;
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

static tc_server *start(void **state, const char *const *sets)
{
    tstate *t = *state;

    assert_int_equal(tc_server_start(&t->srv, sets), 0);
    t->started = true;
    return &t->srv;
}

/* Asserts the server still answers a fresh connection (ping). */
static void assert_server_healthy(tc_server *s)
{
    tc_conn *c;
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__PingRequest p = SOTTO__API__PING_REQUEST__INIT;
    tc_sframe *r;

    assert_true(tc_server_alive(s));
    c = tc_connect(s);
    assert_non_null(c);
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_PING;
    f.ping = &p;
    r = tc_call(c, &f, 5000);
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_int_equal(r->result_case, SOTTO__API__SERVER_FRAME__RESULT_PING);
    assert_true(r->ping->server_time_ms > 1700000000000ull);
    tc_free(r);
    tc_close(c);
}

static int ping(tc_conn *c)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__PingRequest p = SOTTO__API__PING_REQUEST__INIT;
    tc_sframe *r;
    int st;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_PING;
    f.ping = &p;
    r = tc_call(c, &f, 5000);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    tc_free(r);
    return st;
}

/* get_bundle; returns the response (caller frees) or NULL. */
static tc_sframe *get_bundle(tc_conn *c, const char *user, uint32_t device_id)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__GetBundleRequest rq = SOTTO__API__GET_BUNDLE_REQUEST__INIT;

    rq.username = (char *)user;
    rq.device_id = device_id;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_BUNDLE;
    f.get_bundle = &rq;
    return tc_call(c, &f, 10000);
}

static int send1(tc_conn *c, const char *dest, const tc_device *to, const char *body)
{
    return tc_send_msg(c, dest, &to->device_id, &to->registration_id, 1, (const uint8_t *)body,
                       strlen(body), NULL);
}

/* Receives pushes until `want` distinct bodies or timeout; acks each if
 * `ack`. Bodies are copied into out[i] (64 bytes). Returns the count. */
static int collect(tc_conn *c, int want, bool ack, char out[][64], int timeout_ms)
{
    int n = 0;

    while (n < want) {
        tc_sframe *p = tc_next_push(c, timeout_ms);

        if (p == NULL)
            break;
        if (p->result_case == SOTTO__API__SERVER_FRAME__RESULT_PUSH) {
            size_t l = p->push->body.len < 63 ? p->push->body.len : 63;

            if (out != NULL) {
                memcpy(out[n], p->push->body.data, l);
                out[n][l] = '\0';
            }
            n++;
            if (ack)
                assert_int_equal(tc_ack(c, p->id), 0);
        }
        tc_free(p);
    }
    return n;
}

/* ---- registration ------------------------------------------------------------------ */

static void test_register(void **state)
{
    tc_server *s = start(state, NULL);
    static const char *const bad[] = {
        "ab",           "Alice", "al ice",  "al-ice", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 33 */,
        "\xc3\xa9lise", "",      "alice\n", NULL,
    };
    tc_device d, d2;
    tc_conn *c;
    int i;

    /* Valid. */
    c = tc_connect(s);
    assert_non_null(c);
    tc_device_new(&d, "alice");
    assert_int_equal(tc_register(c, &d, NULL), OK);
    assert_int_equal(d.device_id, 1);
    /* The connection is logged in: a second register is refused. */
    tc_device_new(&d2, "alice2");
    assert_int_equal(tc_register(c, &d2, NULL), SOTTO__API__STATUS__STATUS_ALREADY_AUTHENTICATED);
    tc_close(c);

    /* Taken. */
    c = tc_connect(s);
    assert_non_null(c);
    tc_device_new(&d2, "alice");
    assert_int_equal(tc_register(c, &d2, NULL), SOTTO__API__STATUS__STATUS_USERNAME_TAKEN);
    tc_close(c);

    /* Invalid names: each on a fresh connection (3 failures close one). */
    for (i = 0; bad[i] != NULL; i++) {
        c = tc_connect(s);
        assert_non_null(c);
        tc_device_new(&d2, bad[i]);
        print_message("name %d\n", i);
        assert_int_equal(tc_register(c, &d2, NULL), SOTTO__API__STATUS__STATUS_INVALID_USERNAME);
        tc_close(c);
    }
    /* Boundary names are fine. */
    c = tc_connect(s);
    tc_device_new(&d2, "abc");
    assert_int_equal(tc_register(c, &d2, NULL), OK);
    tc_close(c);
    c = tc_connect(s);
    tc_device_new(&d2, "a_b.c0123456789012345678901234_z"); /* 32 */
    assert_int_equal(strlen(d2.username), 32);
    assert_int_equal(tc_register(c, &d2, NULL), OK);
    tc_close(c);

    /* A registration signed with a key other than auth_key is refused and
     * creates nothing. */
    c = tc_connect(s);
    tc_device_new(&d2, "mallory");
    {
        uint8_t other_pk[32];

        crypto_sign_keypair(other_pk, d2.auth_sk); /* sign with a different secret key */
    }
    assert_int_equal(tc_register(c, &d2, NULL), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c);
    c = tc_connect(s);
    tc_device_new(&d2, "mallory");
    assert_int_equal(tc_register(c, &d2, NULL), OK); /* the name was not taken */
    tc_close(c);

    /* Register without a challenge. */
    c = tc_connect(s);
    {
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__RegisterRequest rq = SOTTO__API__REGISTER_REQUEST__INIT;
        uint8_t sig[64] = {0}, zeros[32] = {0};
        tc_sframe *r;

        sotto_device_entry e;
        uint8_t list[SOTTO_DEVICE_LIST_MAX_BYTES];
        size_t list_len = 0;

        tc_device_new(&d2, "nochallenge");
        tc_auth_sign(&d2, 0x01, c->exporter, zeros, 1, sig);
        /* a well-formed v2 request (account key and list): only the
         * missing challenge is wrong */
        tc_entry_of(&d2, 1, &e);
        assert_int_equal(tc_list_sign(&d2.account, d2.username, 1, &e, 1, list, &list_len), 0);
        rq.account_key.data = d2.account.pub.bytes;
        rq.account_key.len = 33;
        rq.device_list.data = list;
        rq.device_list.len = list_len;
        rq.username = d2.username;
        rq.auth_key.data = d2.auth_pk;
        rq.auth_key.len = 32;
        rq.signature.data = sig;
        rq.signature.len = 64;
        rq.identity_key.data = d2.identity.pub.bytes;
        rq.identity_key.len = 33;
        rq.registration_id = d2.registration_id;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_REGISTER;
        f.register_ = &rq;
        r = tc_call(c, &f, 5000);
        assert_non_null(r);
        assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
        tc_free(r);
    }
    tc_close(c);
    tc_device_wipe(&d);
    tc_device_wipe(&d2);
    assert_server_healthy(s);
}

static void test_register_invite_mode(void **state)
{
    static const char *const sets[] = {"registration=invite", NULL};
    static const char *const args[] = {"invite", "--count", "2", NULL};
    tc_server *s = start(state, sets);
    char *out, *tok1, *tok2, *nl;
    tc_device d;
    tc_conn *c;
    int status = -1;

    c = tc_connect(s);
    tc_device_new(&d, "ivan");
    assert_int_equal(tc_register(c, &d, NULL), SOTTO__API__STATUS__STATUS_INVITE_REQUIRED);
    assert_int_equal(tc_register(c, &d, "not-a-real-invite-token"),
                     SOTTO__API__STATUS__STATUS_INVITE_REQUIRED);
    tc_close(c);

    out = tc_admin(s, args, &status);
    assert_non_null(out);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* One token per line. */
    tok1 = out;
    nl = strchr(tok1, '\n');
    assert_non_null(nl);
    *nl = '\0';
    tok2 = nl + 1;
    nl = strchr(tok2, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_string_not_equal(tok1, tok2);
    assert_true(strlen(tok1) >= 16);

    c = tc_connect(s);
    assert_int_equal(tc_register(c, &d, tok1), OK);
    tc_close(c);
    /* Used once only. */
    c = tc_connect(s);
    tc_device_new(&d, "ivan2");
    assert_int_equal(tc_register(c, &d, tok1), SOTTO__API__STATUS__STATUS_INVITE_REQUIRED);
    assert_int_equal(tc_register(c, &d, tok2), OK);
    tc_close(c);
    free(out);
    tc_device_wipe(&d);
}

/* ---- login --------------------------------------------------------------------------- */

static int raw_login(tc_conn *c, const tc_device *d, uint32_t device_id, const uint8_t sig[64])
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__LoginRequest rq = SOTTO__API__LOGIN_REQUEST__INIT;
    tc_sframe *r;
    int st;

    rq.username = (char *)d->username;
    rq.device_id = device_id;
    rq.signature.data = (uint8_t *)sig;
    rq.signature.len = 64;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LOGIN;
    f.login = &rq;
    r = tc_call(c, &f, 5000);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    tc_free(r);
    return st;
}

static int get_nonce(tc_conn *c, uint8_t nonce[32])
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ChallengeRequest rq = SOTTO__API__CHALLENGE_REQUEST__INIT;
    tc_sframe *r;
    int st;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_CHALLENGE;
    f.challenge = &rq;
    r = tc_call(c, &f, 5000);
    if (r == NULL)
        return TC_ERR;
    st = r->status;
    if (st == OK && r->challenge != NULL && r->challenge->nonce.len == 32)
        memcpy(nonce, r->challenge->nonce.data, 32);
    else if (st == OK)
        st = TC_ERR;
    tc_free(r);
    return st;
}

static void test_login_failures(void **state)
{
    tc_server *s = start(state, NULL);
    tc_device alice, second, stranger;
    tc_conn *a, *c, *c2;
    uint8_t nonce[32], sig[64];

    a = tc_new_user(s, &alice, "alice", 5);
    assert_non_null(a);

    /* Correct login works (a second connection of device 1); the older
     * connection of the same device is closed (close code 4000). */
    c = tc_connect(s);
    assert_int_equal(tc_login(c, &alice), OK);
    assert_int_equal(ping(a), TC_CLOSED);
    assert_int_equal(a->close_code, 4000);
    tc_close(a);
    a = c;

    /* Wrong signature (a different key). */
    c = tc_connect(s);
    tc_device_new(&stranger, "alice");
    assert_int_equal(tc_login(c, &stranger), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    /* Replayed challenge: a valid signature over a nonce already consumed. */
    assert_int_equal(get_nonce(c, nonce), OK);
    tc_auth_sign(&stranger, 0x02, c->exporter, nonce, 1, sig);
    assert_int_equal(raw_login(c, &alice, 1, sig), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_auth_sign(&alice, 0x02, c->exporter, nonce, 1, sig); /* right key, used nonce */
    {
        int st = raw_login(c, &alice, 1, sig);

        /* Third failure: the answer is UNAUTHENTICATED and/or the close. */
        assert_true(st == SOTTO__API__STATUS__STATUS_UNAUTHENTICATED || st == TC_CLOSED);
    }
    /* After three failures the connection is closed by the server. */
    assert_int_equal(ping(c), TC_CLOSED);
    tc_close(c);

    /* A signature made for another connection's exporter does not work
     * here, even with this connection's nonce. */
    c = tc_connect(s);
    c2 = tc_connect(s);
    assert_int_equal(get_nonce(c, nonce), OK);
    tc_auth_sign(&alice, 0x02, c2->exporter, nonce, 1, sig);
    assert_int_equal(raw_login(c, &alice, 1, sig), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    /* A register-purpose signature is not a login signature. */
    assert_int_equal(get_nonce(c, nonce), OK);
    tc_auth_sign(&alice, 0x01, c->exporter, nonce, 1, sig);
    assert_int_equal(raw_login(c, &alice, 1, sig), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c);
    tc_close(c2);

    /* Login without any challenge. */
    c = tc_connect(s);
    memset(sig, 0, sizeof(sig));
    assert_int_equal(raw_login(c, &alice, 1, sig), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c);

    /* Unknown account and unknown device answer exactly like a bad signature. */
    c = tc_connect(s);
    tc_device_new(&stranger, "nobody");
    assert_int_equal(tc_login(c, &stranger), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c);
    c = tc_connect(s);
    second = alice;
    second.device_id = 7;
    assert_int_equal(tc_login(c, &second), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c);

    /* Removed device: add device 2, log it in, remove it, it cannot log in. */
    tc_device_new(&second, "alice");
    assert_int_equal(tc_add_device(a, &alice, &second), OK);
    assert_int_equal(second.device_id, 2);
    c = tc_connect(s);
    assert_int_equal(tc_login(c, &second), OK);
    assert_int_equal(tc_remove_device(a, &alice, 2), OK);
    /* The removed device's live connection gets device_removed and is closed. */
    {
        tc_sframe *n = tc_next_push(c, 5000);

        assert_non_null(n);
        assert_int_equal(n->result_case, SOTTO__API__SERVER_FRAME__RESULT_NOTICE);
        assert_int_equal(n->notice->kind_case, SOTTO__API__NOTICE__KIND_DEVICE_REMOVED);
        tc_free(n);
        assert_int_equal(ping(c), TC_CLOSED);
    }
    tc_close(c);
    c = tc_connect(s);
    assert_int_equal(tc_login(c, &second), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c);

    /* Requests that need login are refused before it. */
    c = tc_connect(s);
    assert_int_equal(send1(c, "alice", &alice, "x"), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c);
    tc_close(a);
    tc_device_wipe(&alice);
    tc_device_wipe(&second);
    tc_device_wipe(&stranger);
    assert_server_healthy(s);
}

/* ---- prekeys -------------------------------------------------------------------------- */

typedef struct fetch_ctx {
    tc_server *s;
    char user[40];
    int idx;
    int fetches;
    uint32_t got[64];
    int ngot;
    int empty;
    int errors;
} fetch_ctx;

static void *fetch_thread(void *arg)
{
    fetch_ctx *fc = arg;
    tc_device me;
    char name[40];
    tc_conn *c;
    int i;

    snprintf(name, sizeof(name), "fetcher%d", fc->idx);
    c = tc_new_user(fc->s, &me, name, 1);
    if (c == NULL) {
        fc->errors++;
        return NULL;
    }
    for (i = 0; i < fc->fetches; i++) {
        tc_sframe *r = get_bundle(c, fc->user, 1);

        if (r == NULL || r->status != OK || r->get_bundle->n_devices != 1) {
            fc->errors++;
        } else if (r->get_bundle->devices[0]->prekey != NULL) {
            fc->got[fc->ngot++] = r->get_bundle->devices[0]->prekey->id;
        } else {
            fc->empty++;
        }
        tc_free(r);
    }
    tc_close(c);
    tc_device_wipe(&me);
    return NULL;
}

static void test_prekeys(void **state)
{
    /* Exhaustion and concurrent fetches need the per-target limit on
     * one-time prekeys (issue 12, test_abuse.c) out of the way. */
    static const char *const sets[] = {"rate_prekey_target_burst=1000000", NULL};
    tc_server *s = start(state, sets);
    tc_device bob, carol;
    tc_conn *b, *c;
    tc_sframe *r;
    uint32_t remaining = 0;
    fetch_ctx fc[4];
    pthread_t th[4];
    int seen[64] = {0}, i, j, total = 0, empty = 0;

    b = tc_new_user(s, &bob, "bob", 0);
    assert_non_null(b);
    c = tc_new_user(s, &carol, "carol", 0);
    assert_non_null(c);

    /* Prekeys before a signed prekey: refused for a fresh device. */
    {
        tc_device dave;
        tc_conn *d = tc_connect(s);

        tc_device_new(&dave, "dave");
        assert_int_equal(tc_register(d, &dave, NULL), OK);
        assert_int_equal(tc_set_keys(d, &dave, false, 3, NULL), SOTTO__API__STATUS__STATUS_NO_KEYS);
        /* ...and it has no bundle. */
        r = get_bundle(c, "dave", 0);
        assert_non_null(r);
        assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_NOT_FOUND);
        tc_free(r);
        tc_close(d);
    }

    /* A bad signed prekey signature is refused. */
    {
        tc_device tmp = bob;

        tmp.spk.signature[5] ^= 1;
        assert_int_equal(tc_set_keys(b, &tmp, true, 0, NULL),
                         SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    }

    /* Upload 40 one-time prekeys (ids 1..40). */
    assert_int_equal(tc_set_keys(b, &bob, false, 40, &remaining), OK);
    assert_int_equal(remaining, 40);
    /* More than 100 in one request: TOO_LARGE. */
    {
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__SetKeysRequest rq = SOTTO__API__SET_KEYS_REQUEST__INIT;
        Sotto__Api__PreKey pks[101], *pkp[101];
        uint8_t pub[33];

        memset(pub, 0x05, sizeof(pub));
        for (i = 0; i < 101; i++) {
            sotto__api__pre_key__init(&pks[i]);
            pks[i].id = (uint32_t)(1000 + i);
            pks[i].public_key.data = pub;
            pks[i].public_key.len = 33;
            pkp[i] = &pks[i];
        }
        rq.prekeys = pkp;
        rq.n_prekeys = 101;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_KEYS;
        f.set_keys = &rq;
        r = tc_call(b, &f, 5000);
        assert_non_null(r);
        assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_TOO_LARGE);
        tc_free(r);
    }

    /* One fetch: bob's bundle is complete and verifiable. */
    r = get_bundle(c, "bob", 0);
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_int_equal(r->get_bundle->n_devices, 1);
    {
        Sotto__Api__DeviceBundle *db = r->get_bundle->devices[0];
        sotto_public_key ik, spk;

        assert_int_equal(db->device_id, 1);
        assert_int_equal(db->registration_id, bob.registration_id);
        assert_int_equal(db->identity_key.len, 33);
        assert_memory_equal(db->identity_key.data, bob.identity.pub.bytes, 33);
        assert_memory_equal(db->auth_key.data, bob.auth_pk, 32);
        assert_non_null(db->signed_prekey);
        memcpy(ik.bytes, db->identity_key.data, 33);
        memcpy(spk.bytes, db->signed_prekey->public_key.data, 33);
        assert_int_equal(sotto_signed_prekey_verify(&ik, &spk, db->signed_prekey->signature.data),
                         SOTTO_OK);
        assert_non_null(db->prekey);
        assert_int_equal(db->prekey->id, 1); /* lowest id first */
        seen[1] = 1;
    }
    tc_free(r);

    /* 4 connections fetch concurrently 12 times each: 39 keys left, 48
     * fetches: every key handed out exactly once, 9 fetches get none. */
    for (i = 0; i < 4; i++) {
        memset(&fc[i], 0, sizeof(fc[i]));
        fc[i].s = s;
        fc[i].idx = i;
        snprintf(fc[i].user, sizeof(fc[i].user), "bob");
        fc[i].fetches = 12;
        assert_int_equal(pthread_create(&th[i], NULL, fetch_thread, &fc[i]), 0);
    }
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < 4; i++) {
        assert_int_equal(fc[i].errors, 0);
        for (j = 0; j < fc[i].ngot; j++) {
            assert_true(fc[i].got[j] >= 1 && fc[i].got[j] <= 40);
            assert_int_equal(seen[fc[i].got[j]], 0); /* never twice */
            seen[fc[i].got[j]] = 1;
            total++;
        }
        empty += fc[i].empty;
    }
    assert_int_equal(total, 39);
    assert_int_equal(empty, 9);

    /* Exhausted: bundle without prekey; bob is told (prekeys_low notice and
     * prekey_status). */
    r = get_bundle(c, "bob", 1);
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_null(r->get_bundle->devices[0]->prekey);
    assert_non_null(r->get_bundle->devices[0]->signed_prekey);
    tc_free(r);
    {
        tc_sframe *n = tc_next_push(b, 3000);

        assert_non_null(n);
        assert_int_equal(n->result_case, SOTTO__API__SERVER_FRAME__RESULT_NOTICE);
        assert_int_equal(n->notice->kind_case, SOTTO__API__NOTICE__KIND_PREKEYS_LOW);
        assert_true(n->notice->prekeys_low->prekeys_remaining < 10);
        tc_free(n);
    }
    {
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__PrekeyStatusRequest rq = SOTTO__API__PREKEY_STATUS_REQUEST__INIT;

        f.op_case = SOTTO__API__CLIENT_FRAME__OP_PREKEY_STATUS;
        f.prekey_status = &rq;
        r = tc_call(b, &f, 5000);
        assert_non_null(r);
        assert_int_equal(r->status, OK);
        assert_int_equal(r->prekey_status->prekeys_remaining, 0);
        assert_true(r->prekey_status->prekeys_low);
        tc_free(r);
    }
    /* Unknown account / device. */
    r = get_bundle(c, "nosuchuser", 0);
    assert_non_null(r);
    assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_NOT_FOUND);
    tc_free(r);
    r = get_bundle(c, "bob", 9);
    assert_non_null(r);
    assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_NOT_FOUND);
    tc_free(r);

    tc_close(b);
    tc_close(c);
    tc_device_wipe(&bob);
    tc_device_wipe(&carol);
}

/* ---- sending ------------------------------------------------------------------------------ */

static void test_send_device_mismatch(void **state)
{
    tc_server *s = start(state, NULL);
    tc_device alice, bob, bob2;
    tc_conn *a, *b, *b2;
    tc_sframe *resp = NULL;
    uint32_t ids[3], regs[3];

    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 2);
    assert_non_null(a);
    assert_non_null(b);
    tc_device_new(&bob2, "bob");
    assert_int_equal(tc_add_device(b, &bob, &bob2), OK);
    b2 = tc_connect(s);
    assert_int_equal(tc_login(b2, &bob2), OK);

    /* bob2 has no keys yet: a send to bob's device 1 only is complete. */
    assert_int_equal(send1(a, "bob", &bob, "before-keys"), OK);
    assert_int_equal(tc_set_keys(b2, &bob2, true, 2, NULL), OK);

    /* Missing: only device 1. */
    ids[0] = 1;
    regs[0] = bob.registration_id;
    assert_int_equal(tc_send_msg(a, "bob", ids, regs, 1, (const uint8_t *)"m", 1, &resp),
                     SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES);
    assert_non_null(resp->mismatch);
    assert_int_equal(resp->mismatch->n_missing, 1);
    assert_int_equal(resp->mismatch->missing[0], 2);
    assert_int_equal(resp->mismatch->n_extra, 0);
    tc_free(resp);

    /* Extra: devices 1, 2 and 5. */
    ids[1] = 2;
    regs[1] = bob2.registration_id;
    ids[2] = 5;
    regs[2] = 77;
    assert_int_equal(tc_send_msg(a, "bob", ids, regs, 3, (const uint8_t *)"m", 1, &resp),
                     SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES);
    assert_int_equal(resp->mismatch->n_extra, 1);
    assert_int_equal(resp->mismatch->extra[0], 5);
    assert_int_equal(resp->mismatch->n_missing, 0);
    tc_free(resp);

    /* Duplicate id counts as extra. */
    ids[2] = 2;
    regs[2] = bob2.registration_id;
    assert_int_equal(tc_send_msg(a, "bob", ids, regs, 3, (const uint8_t *)"m", 1, &resp),
                     SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES);
    assert_int_equal(resp->mismatch->n_extra, 1);
    tc_free(resp);

    /* Stale: right devices, wrong registration id for device 2. */
    regs[1] = bob2.registration_id ^ 1;
    assert_int_equal(tc_send_msg(a, "bob", ids, regs, 2, (const uint8_t *)"m", 1, &resp),
                     SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES);
    assert_int_equal(resp->mismatch->n_stale, 1);
    assert_int_equal(resp->mismatch->stale[0], 2);
    tc_free(resp);

    /* Nothing of the refused sends was queued: bob's devices get exactly the
     * complete sends. */
    regs[1] = bob2.registration_id;
    assert_int_equal(tc_send_msg(a, "bob", ids, regs, 2, (const uint8_t *)"good", 4, NULL), OK);
    {
        char got[4][64];

        assert_int_equal(collect(b, 4, true, got, 2500), 2);
        assert_string_equal(got[0], "before-keys");
        assert_string_equal(got[1], "good");
        assert_int_equal(collect(b2, 4, true, got, 2500), 1);
        assert_string_equal(got[0], "good");
    }

    /* Sender's own other devices: alice sends to her own account with no
     * other device: an empty set is correct; listing herself is extra. */
    ids[0] = 1;
    regs[0] = alice.registration_id;
    assert_int_equal(tc_send_msg(a, "alice", ids, regs, 1, (const uint8_t *)"self", 4, &resp),
                     SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES);
    tc_free(resp);

    /* Unknown destination; oversized body. */
    assert_int_equal(send1(a, "nosuchuser", &bob, "x"), SOTTO__API__STATUS__STATUS_NOT_FOUND);
    {
        uint8_t *big = calloc(1, 131073);

        assert_non_null(big);
        ids[0] = 1;
        regs[0] = bob.registration_id;
        ids[1] = 2;
        regs[1] = bob2.registration_id;
        assert_int_equal(tc_send_msg(a, "bob", ids, regs, 2, big, 131073, NULL),
                         SOTTO__API__STATUS__STATUS_TOO_LARGE);
        free(big);
    }
    tc_close(a);
    tc_close(b);
    tc_close(b2);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
    tc_device_wipe(&bob2);
}

static void test_offline_queue_ack_redelivery(void **state)
{
    tc_server *s = start(state, NULL);
    tc_device alice, bob;
    tc_conn *a, *b;
    char got[16][64];
    char body[32];
    int i;

    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 2);
    assert_non_null(a);
    assert_non_null(b);
    tc_close(b); /* bob goes offline */

    for (i = 0; i < 10; i++) {
        snprintf(body, sizeof(body), "offline-%d", i);
        assert_int_equal(send1(a, "bob", &bob, body), OK);
    }
    /* bob connects: LoginResponse says 10 queued, the pushes come in order. */
    b = tc_connect(s);
    assert_int_equal(tc_login(b, &bob), OK);
    for (i = 0; i < 10; i++) {
        tc_sframe *p = tc_next_push(b, 5000);

        assert_non_null(p);
        assert_int_equal(p->result_case, SOTTO__API__SERVER_FRAME__RESULT_PUSH);
        snprintf(body, sizeof(body), "offline-%d", i);
        assert_int_equal(p->push->body.len, strlen(body));
        assert_memory_equal(p->push->body.data, body, strlen(body));
        assert_string_equal(p->push->source, "alice");
        assert_int_equal(p->push->source_device_id, 1);
        assert_int_equal(p->push->id.len, 16);
        if (i % 2 == 0) /* ack the even ones only */
            assert_int_equal(tc_ack(b, p->id), 0);
        tc_free(p);
    }
    /* Acks get no answer. A send from bob is a barrier: the store runs
     * writes in submission order, so once the send is acked (committed),
     * the deletes submitted before it are committed too. (Without it, a
     * very quick reconnect may see acked envelopes again: harmless, clients
     * de-duplicate, but not what this test checks.) */
    assert_int_equal(send1(b, "alice", &alice, "barrier"), OK);
    tc_close(b);

    /* Reconnect: exactly the 5 unacked ones again, in order. */
    b = tc_connect(s);
    assert_int_equal(tc_login(b, &bob), OK);
    assert_int_equal(collect(b, 16, true, got, 2500), 5);
    for (i = 0; i < 5; i++) {
        snprintf(body, sizeof(body), "offline-%d", 2 * i + 1);
        assert_string_equal(got[i], body);
    }
    assert_int_equal(send1(b, "alice", &alice, "barrier"), OK);
    tc_close(b);
    /* All acked: nothing more. */
    b = tc_connect(s);
    assert_int_equal(tc_login(b, &bob), OK);
    assert_int_equal(collect(b, 16, true, got, 1000), 0);

    /* Online delivery: sent while bob is connected arrives at once. */
    assert_int_equal(send1(a, "bob", &bob, "online"), OK);
    assert_int_equal(collect(b, 1, true, got, 3000), 1);
    assert_string_equal(got[0], "online");
    tc_close(a);
    tc_close(b);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

static void test_cannot_ack_other_devices(void **state)
{
    tc_server *s = start(state, NULL);
    tc_device alice, bob, eve;
    tc_conn *a, *b, *e;
    char got[8][64];
    uint64_t push_ids[3];
    int i;

    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 2);
    e = tc_new_user(s, &eve, "eve", 2);
    for (i = 0; i < 3; i++)
        assert_int_equal(send1(a, "bob", &bob, "for-bob"), OK);
    /* bob receives (does not ack) */
    for (i = 0; i < 3; i++) {
        tc_sframe *p = tc_next_push(b, 5000);

        assert_non_null(p);
        push_ids[i] = p->id;
        tc_free(p);
    }
    /* eve acks every push id bob got, and a range around them. */
    for (i = 0; i < 3; i++)
        assert_int_equal(tc_ack(e, push_ids[i]), 0);
    for (i = 0; i < 200; i++)
        assert_int_equal(tc_ack(e, (uint64_t)i), 0);
    assert_int_equal(ping(e), OK);
    /* bob's envelopes are still there. */
    tc_close(b);
    b = tc_connect(s);
    assert_int_equal(tc_login(b, &bob), OK);
    assert_int_equal(collect(b, 8, false, got, 2500), 3);
    /* And eve never received bob's envelopes. */
    assert_int_equal(collect(e, 8, false, got, 300), 0);
    tc_close(a);
    tc_close(b);
    tc_close(e);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
    tc_device_wipe(&eve);
}

static void test_ttl_expiry(void **state)
{
    tc_server *s = start(state, NULL);
    static const char *const expire_args[] = {"expire", NULL};
    tc_device alice, bob;
    tc_conn *a;
    sqlite3 *db = NULL;
    char path[300], got[4][64];
    int status = -1;
    char *out;

    a = tc_new_user(s, &alice, "alice", 2);
    tc_close(tc_new_user(s, &bob, "bob", 2));
    assert_int_equal(send1(a, "bob", &bob, "will-expire"), OK);
    assert_int_equal(send1(a, "bob", &bob, "will-stay"), OK);
    tc_close(a);
    assert_int_equal(tc_server_stop(s), 0);

    /* Age the first envelope past its TTL (30 days) while sottod is down:
     * the store keeps the absolute expiry per envelope. */
    snprintf(path, sizeof(path), "%s/sottod.db", s->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    {
        sqlite3_stmt *q = NULL;

        assert_int_equal(
            sqlite3_prepare_v2(
                db,
                "SELECT expires_at - CAST(strftime('%s','now') AS INTEGER) FROM envelopes"
                " ORDER BY seq",
                -1, &q, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        /* The default TTL: 30 days from the send. */
        assert_true(sqlite3_column_int64(q, 0) > 30 * 86400 - 120);
        assert_true(sqlite3_column_int64(q, 0) <= 30 * 86400);
        sqlite3_finalize(q);
    }
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE envelopes SET expires_at = 1000"
                                  " WHERE seq = (SELECT min(seq) FROM envelopes)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    /* Restarted, the expired envelope is not delivered. */
    assert_int_equal(tc_server_restart(s), 0);
    a = tc_connect(s);
    assert_int_equal(tc_login(a, &bob), OK);
    assert_int_equal(collect(a, 4, false, got, 2500), 1);
    assert_string_equal(got[0], "will-stay");
    tc_close(a);

    /* `sottod admin expire` deletes it from the database. */
    out = tc_admin(s, expire_args, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(out);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    {
        sqlite3_stmt *q = NULL;

        assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM envelopes", -1, &q, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 1);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

static void test_queue_full(void **state)
{
    static const char *const sets[] = {"queue_max=5", NULL};
    tc_server *s = start(state, sets);
    tc_device alice, bob;
    tc_conn *a, *b;
    char got[8][64];
    int i;

    a = tc_new_user(s, &alice, "alice", 2);
    tc_close(tc_new_user(s, &bob, "bob", 2));
    for (i = 0; i < 5; i++)
        assert_int_equal(send1(a, "bob", &bob, "fill"), OK);
    assert_int_equal(send1(a, "bob", &bob, "overflow"), SOTTO__API__STATUS__STATUS_QUEUE_FULL);
    /* bob drains; room again. */
    b = tc_connect(s);
    assert_int_equal(tc_login(b, &bob), OK);
    assert_int_equal(collect(b, 8, true, got, 2500), 5);
    for (i = 0; i < 5; i++)
        assert_string_equal(got[i], "fill");
    assert_int_equal(ping(b), OK);
    assert_int_equal(send1(a, "bob", &bob, "after"), OK);
    assert_int_equal(collect(b, 1, true, got, 3000), 1);
    assert_string_equal(got[0], "after");
    tc_close(a);
    tc_close(b);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

static void test_rate_limits(void **state)
{
    static const char *const sets[] = {"rate_send_per_min=60", "rate_send_burst=5",
                                       "rate_bundle_per_min=60", "rate_bundle_burst=3", NULL};
    tc_server *s = start(state, sets);
    tc_device alice, bob;
    tc_conn *a, *b;
    tc_sframe *r = NULL;
    int i, st;

    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 10);
    for (i = 0; i < 5; i++)
        assert_int_equal(send1(a, "bob", &bob, "ok"), OK);
    st = tc_send_msg(a, "bob", &bob.device_id, &bob.registration_id, 1, (const uint8_t *)"limited",
                     7, &r);
    assert_int_equal(st, SOTTO__API__STATUS__STATUS_RATE_LIMITED);
    assert_true(r->retry_after_ms > 0 && r->retry_after_ms <= 1000 + 100);
    tc_free(r);
    /* Limits are per device: bob can still send. */
    assert_int_equal(send1(b, "alice", &alice, "from-bob"), OK);
    /* After retry_after the bucket has a token again. */
    usleep(1100 * 1000);
    assert_int_equal(send1(a, "bob", &bob, "again"), OK);

    /* Bundle fetches. */
    for (i = 0; i < 3; i++) {
        r = get_bundle(a, "bob", 0);
        assert_non_null(r);
        assert_int_equal(r->status, OK);
        tc_free(r);
    }
    r = get_bundle(a, "bob", 0);
    assert_non_null(r);
    assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_RATE_LIMITED);
    tc_free(r);
    tc_close(a);
    tc_close(b);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

/* ---- devices and pre-login limits ---------------------------------------------------- */

static tc_sframe *list_devices(tc_conn *c)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ListDevicesRequest rq = SOTTO__API__LIST_DEVICES_REQUEST__INIT;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LIST_DEVICES;
    f.list_devices = &rq;
    return tc_call(c, &f, 5000);
}

static void test_devices(void **state)
{
    static const char *const sets[] = {"max_devices=3", NULL};
    tc_server *s = start(state, sets);
    tc_device alice, d2, d3, d4, forged;
    tc_conn *a;
    tc_sframe *r;

    a = tc_new_user(s, &alice, "alice", 0);
    assert_non_null(a);
    tc_device_new(&d2, "alice");
    tc_device_new(&d3, "alice");
    tc_device_new(&d4, "alice");
    assert_int_equal(tc_add_device(a, &alice, &d2), OK);
    assert_int_equal(d2.device_id, 2);

    /* An add signed by a key that is not the logged-in device's. */
    tc_device_new(&forged, "alice");
    assert_int_equal(tc_add_device(a, &forged, &d3), SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    assert_int_equal(tc_add_device(a, &alice, &d3), OK);
    assert_int_equal(d3.device_id, 3);
    /* max_devices = 3. */
    assert_int_equal(tc_add_device(a, &alice, &d4), SOTTO__API__STATUS__STATUS_DEVICE_LIMIT);

    /* The list shows who added whom, with a signature anyone can check. */
    r = list_devices(a);
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_int_equal(r->list_devices->n_devices, 3);
    {
        Sotto__Api__DeviceInfo *di = r->list_devices->devices[1];

        assert_int_equal(r->list_devices->devices[0]->device_id, 1);
        assert_int_equal(r->list_devices->devices[0]->added_by, 0);
        assert_int_equal(di->device_id, 2);
        assert_int_equal(di->added_by, 1);
        assert_memory_equal(di->auth_key.data, d2.auth_pk, 32);
        assert_int_equal(di->add_signature.len, 64);
        /* the statement's bytes: sotto/account.h (pinned by tests/unit/test_account.c) */
        assert_int_equal(sotto_add_device_verify(alice.auth_pk, "alice", d2.auth_pk,
                                                 d2.identity.pub.bytes, d2.registration_id,
                                                 di->add_signature.data),
                         SOTTO_OK);
        assert_int_equal(strlen(di->created), 10); /* a date, YYYY-MM-DD */
    }
    tc_free(r);

    /* Remove 2 and 3; the last device cannot be removed. */
    assert_int_equal(tc_remove_device(a, &alice, 3), OK);
    assert_int_equal(tc_remove_device(a, &alice, 3), SOTTO__API__STATUS__STATUS_NOT_FOUND);
    assert_int_equal(tc_remove_device(a, &alice, 2), OK);
    assert_int_equal(tc_remove_device(a, &alice, 1), SOTTO__API__STATUS__STATUS_FORBIDDEN);
    /* The freed ids are handed out again, lowest first. */
    assert_int_equal(tc_add_device(a, &alice, &d4), OK);
    assert_int_equal(d4.device_id, 2);
    tc_close(a);
    tc_device_wipe(&alice);
    tc_device_wipe(&d2);
    tc_device_wipe(&d3);
    tc_device_wipe(&d4);
    tc_device_wipe(&forged);
}

/* ---- signed device lists (API v2, issue 8) --------------------------------------------- */

static const char *const REQUIRE_LISTS[] = {"require_device_lists=yes", NULL};

static tc_sframe *get_device_list(tc_conn *c, const char *user)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__GetDeviceListRequest rq = SOTTO__API__GET_DEVICE_LIST_REQUEST__INIT;

    rq.username = (char *)user;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_DEVICE_LIST;
    f.get_device_list = &rq;
    return tc_call(c, &f, 10000);
}

static int set_device_list(tc_conn *c, const uint8_t *account_key, const uint8_t *list, size_t len)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SetDeviceListRequest rq = SOTTO__API__SET_DEVICE_LIST_REQUEST__INIT;
    tc_sframe *r;
    int st;

    if (account_key != NULL) {
        rq.account_key.data = (uint8_t *)account_key;
        rq.account_key.len = 33;
    }
    rq.device_list.data = (uint8_t *)list;
    rq.device_list.len = len;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_DEVICE_LIST;
    f.set_device_list = &rq;
    r = tc_call(c, &f, 10000);
    if (r == NULL)
        return TC_ERR;
    st = r->status;
    tc_free(r);
    return st;
}

static uint32_t prekeys_left(tc_conn *c)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__PrekeyStatusRequest rq = SOTTO__API__PREKEY_STATUS_REQUEST__INIT;
    tc_sframe *r;
    uint32_t n;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_PREKEY_STATUS;
    f.prekey_status = &rq;
    r = tc_call(c, &f, 5000);
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    n = r->prekey_status->prekeys_remaining;
    tc_free(r);
    return n;
}

/* The server's list of c's account (verified here under `account`):
 * version and device ids. */
static void assert_server_list(tc_conn *c, const tc_device *owner, uint64_t version,
                               const uint32_t *ids, size_t n)
{
    sotto_device_list *l = calloc(1, sizeof(*l)), *v = calloc(1, sizeof(*v));
    uint8_t raw[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t len = 0;

    assert_non_null(l);
    assert_non_null(v);
    assert_int_equal(tc_fetch_list(c, l, raw, &len), OK);
    assert_int_equal(sotto_device_list_verify(v, raw, len, &owner->account.pub, owner->username),
                     SOTTO_OK);
    assert_int_equal(v->version, version);
    assert_int_equal(v->n_devices, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v->devices[i].device_id, ids[i]);
    free(l);
    free(v);
}

/* Waits for a device_list_changed notice on c (skipping other frames)
 * and checks its list verifies under owner's account key at `version`. */
static void expect_list_changed(tc_conn *c, const tc_device *owner, uint64_t version)
{
    for (;;) {
        tc_sframe *n = tc_next_push(c, 5000);

        assert_non_null(n);
        if (n->result_case == SOTTO__API__SERVER_FRAME__RESULT_NOTICE &&
            n->notice->kind_case == SOTTO__API__NOTICE__KIND_DEVICE_LIST_CHANGED) {
            sotto_device_list *v = calloc(1, sizeof(*v));
            const Sotto__Api__DeviceListChanged *d = n->notice->device_list_changed;

            assert_non_null(v);
            assert_int_equal(d->version, version);
            assert_int_equal(sotto_device_list_verify(v, d->device_list.data, d->device_list.len,
                                                      &owner->account.pub, owner->username),
                             SOTTO_OK);
            assert_int_equal(v->version, version);
            free(v);
            tc_free(n);
            return;
        }
        tc_free(n);
    }
}

/* Register, add and remove with correct lists; every kind of wrong list
 * refused with nothing changed; the list served with bundles, list_devices
 * and get_device_list (which takes no prekey); device_list_changed reaches
 * the account's other connected devices. */
static void test_device_lists(void **state)
{
    tc_server *s = start(state, REQUIRE_LISTS);
    tc_device alice, bob, d2, d3, d4, forged;
    sotto_device_entry e[4];
    uint8_t list[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t len = 0;
    tc_conn *a, *b, *c2, *c3;
    tc_sframe *r;
    static const uint32_t ids1[] = {1}, ids12[] = {1, 2}, ids123[] = {1, 2, 3};

    a = tc_new_user(s, &alice, "alice", 5);
    b = tc_new_user(s, &bob, "bob", 5);
    assert_non_null(a);
    assert_non_null(b);
    assert_server_list(a, &alice, 1, ids1, 1);

    /* Bundles carry the account key and the list of the same transaction. */
    r = get_bundle(b, "alice", 0);
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_int_equal(r->get_bundle->account_key.len, 33);
    assert_memory_equal(r->get_bundle->account_key.data, alice.account.pub.bytes, 33);
    {
        sotto_device_list v;

        assert_int_equal(sotto_device_list_verify(&v, r->get_bundle->device_list.data,
                                                  r->get_bundle->device_list.len,
                                                  &alice.account.pub, "alice"),
                         SOTTO_OK);
        assert_int_equal(v.version, 1);
    }
    tc_free(r);

    /* get_device_list: the same bytes, and no one-time prekey consumed. */
    assert_int_equal(prekeys_left(a), 4);
    for (int i = 0; i < 3; i++) {
        r = get_device_list(b, "alice");
        assert_non_null(r);
        assert_int_equal(r->status, OK);
        assert_int_equal(r->result_case, SOTTO__API__SERVER_FRAME__RESULT_GET_DEVICE_LIST);
        assert_memory_equal(r->get_device_list->account_key.data, alice.account.pub.bytes, 33);
        assert_true(r->get_device_list->device_list.len > 64);
        tc_free(r);
    }
    assert_int_equal(prekeys_left(a), 4);
    r = get_device_list(b, "nobody");
    assert_non_null(r);
    assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_NOT_FOUND);
    tc_free(r);

    /* Add device 2 with a correct list: the answer is the list's id. */
    tc_device_new(&d2, "alice");
    assert_int_equal(tc_add_device(a, &alice, &d2), OK);
    assert_int_equal(d2.device_id, 2);
    assert_server_list(a, &alice, 2, ids12, 2);
    expect_list_changed(a, &alice, 2); /* the requester hears too */
    c2 = tc_connect(s);
    assert_int_equal(tc_login(c2, &d2), OK);

    /* Refusals for adding d3; after each, nothing changed. */
    tc_device_new(&d3, "alice");
    tc_device_new(&d4, "alice");
    tc_device_new(&forged, "alice");
    tc_entry_of(&alice, 1, &e[0]);
    tc_entry_of(&d2, 2, &e[1]);
    tc_entry_of(&d3, 3, &e[2]);
    tc_entry_of(&d4, 4, &e[3]);
    /* signed by another account key */
    assert_int_equal(tc_list_sign(&forged.account, "alice", 3, e, 3, list, &len), 0);
    assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len),
                     SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    /* one bit flipped in a correctly signed list */
    assert_int_equal(tc_list_sign(&alice.account, "alice", 3, e, 3, list, &len), 0);
    list[30] ^= 0x01;
    assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len),
                     SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    /* signed for another username (a list of bob's signed by alice's key) */
    assert_int_equal(tc_list_sign(&alice.account, "bob", 3, e, 3, list, &len), 0);
    assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len),
                     SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    /* version not higher than the stored 2 */
    assert_int_equal(tc_list_sign(&alice.account, "alice", 2, e, 3, list, &len), 0);
    assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len),
                     SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE);
    /* a list that adds two devices */
    assert_int_equal(tc_list_sign(&alice.account, "alice", 3, e, 4, list, &len), 0);
    assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len),
                     SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    /* a list whose new device has other keys than the request (d4's) */
    {
        sotto_device_entry other[3] = {e[0], e[1], e[3]};

        other[2].device_id = 3;
        assert_int_equal(tc_list_sign(&alice.account, "alice", 3, other, 3, list, &len), 0);
        assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len),
                         SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    }
    /* a list that changes an existing device's keys */
    {
        sotto_device_entry swap[3] = {e[0], e[3], e[2]};

        swap[1].device_id = 2;
        assert_int_equal(tc_list_sign(&alice.account, "alice", 3, swap, 3, list, &len), 0);
        assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len),
                         SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    }
    /* a list that drops device 2 while adding 3 */
    {
        sotto_device_entry drop[2] = {e[0], e[2]};

        assert_int_equal(tc_list_sign(&alice.account, "alice", 3, drop, 2, list, &len), 0);
        assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len),
                         SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    }
    /* no list at all, for an account with an account key */
    assert_int_equal(tc_add_device_with_list(a, &alice, &d3, NULL, 0),
                     SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    assert_server_list(a, &alice, 2, ids12, 2);
    {
        /* and nothing was added: a send to devices 1 and 2 is complete */
        r = list_devices(a);
        assert_non_null(r);
        assert_int_equal(r->list_devices->n_devices, 2);
        assert_memory_equal(r->list_devices->account_key.data, alice.account.pub.bytes, 33);
        tc_free(r);
    }

    /* The correct add; the other connected device (2) hears of it. */
    assert_int_equal(tc_list_sign(&alice.account, "alice", 3, e, 3, list, &len), 0);
    assert_int_equal(tc_add_device_with_list(a, &alice, &d3, list, len), OK);
    assert_int_equal(d3.device_id, 3);
    expect_list_changed(c2, &alice, 3);
    assert_server_list(a, &alice, 3, ids123, 3);
    c3 = tc_connect(s);
    assert_int_equal(tc_login(c3, &d3), OK);

    /* Removal refusals. */
    assert_int_equal(tc_list_sign(&alice.account, "alice", 4, e, 3, list, &len), 0);
    assert_int_equal(tc_remove_device_with_list(a, 3, list, len), /* still lists 3 */
                     SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    assert_int_equal(tc_list_sign(&alice.account, "alice", 4, e, 1, list, &len), 0);
    assert_int_equal(tc_remove_device_with_list(a, 3, list, len), /* drops 2 as well */
                     SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    assert_int_equal(tc_list_sign(&alice.account, "alice", 3, e, 2, list, &len), 0);
    assert_int_equal(tc_remove_device_with_list(a, 3, list, len), /* version 3 again */
                     SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE);
    assert_int_equal(tc_list_sign(&forged.account, "alice", 4, e, 2, list, &len), 0);
    assert_int_equal(tc_remove_device_with_list(a, 3, list, len),
                     SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    assert_int_equal(tc_remove_device_with_list(a, 3, NULL, 0),
                     SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    assert_server_list(a, &alice, 3, ids123, 3);

    /* The correct removal: 3 is closed, 2 hears the new list. */
    assert_int_equal(tc_list_sign(&alice.account, "alice", 4, e, 2, list, &len), 0);
    assert_int_equal(tc_remove_device_with_list(a, 3, list, len), OK);
    expect_list_changed(c2, &alice, 4);
    {
        tc_sframe *n = tc_next_push(c3, 5000);

        assert_non_null(n);
        assert_int_equal(n->notice->kind_case, SOTTO__API__NOTICE__KIND_DEVICE_REMOVED);
        tc_free(n);
    }
    assert_server_list(a, &alice, 4, ids12, 2);

    /* set_device_list: same devices, higher version; the key cannot change. */
    assert_int_equal(tc_list_sign(&alice.account, "alice", 5, e, 2, list, &len), 0);
    assert_int_equal(set_device_list(a, forged.account.pub.bytes, list, len),
                     SOTTO__API__STATUS__STATUS_FORBIDDEN);
    assert_int_equal(set_device_list(a, NULL, list, len), OK);
    expect_list_changed(c2, &alice, 5);
    assert_int_equal(set_device_list(a, NULL, list, len),
                     SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE);
    assert_int_equal(tc_list_sign(&alice.account, "alice", 6, e, 3, list, &len), 0);
    assert_int_equal(set_device_list(a, NULL, list, len), SOTTO__API__STATUS__STATUS_BAD_REQUEST);

    /* A register whose list is not exactly this device 1 is refused. */
    {
        tc_device eve, other;
        tc_conn *c = tc_connect(s);
        sotto_device_entry ee[2];

        tc_device_new(&eve, "eve");
        tc_device_new(&other, "eve");
        tc_entry_of(&eve, 1, &ee[0]);
        tc_entry_of(&other, 2, &ee[1]);
        assert_int_equal(tc_list_sign(&eve.account, "eve", 1, ee, 2, list, &len), 0);
        assert_int_equal(tc_register_ex(c, &eve, NULL, eve.account.pub.bytes, list, len, false, 1),
                         SOTTO__API__STATUS__STATUS_BAD_REQUEST);
        assert_int_equal(tc_list_sign(&eve.account, "eve", 1, &ee[1], 1, list, &len), 0);
        assert_int_equal(tc_register_ex(c, &eve, NULL, eve.account.pub.bytes, list, len, false, 1),
                         SOTTO__API__STATUS__STATUS_BAD_REQUEST);
        assert_int_equal(tc_list_sign(&other.account, "eve", 1, ee, 1, list, &len), 0);
        assert_int_equal(tc_register_ex(c, &eve, NULL, eve.account.pub.bytes, list, len, false, 1),
                         SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
        /* require_device_lists = yes: a v1 register is refused */
        assert_int_equal(tc_register_ex(c, &eve, NULL, NULL, NULL, 0, false, 1),
                         SOTTO__API__STATUS__STATUS_BAD_REQUEST);
        tc_close(c);
        c = tc_connect(s);
        assert_int_equal(tc_register(c, &eve, NULL), OK); /* and the name was not taken */
        tc_close(c);
        tc_device_wipe(&eve);
        tc_device_wipe(&other);
    }
    tc_close(a);
    tc_close(b);
    tc_close(c2);
    tc_close(c3);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
    tc_device_wipe(&d2);
    tc_device_wipe(&d3);
    tc_device_wipe(&d4);
    tc_device_wipe(&forged);
    assert_server_healthy(s);
}

/* Recovery: refused with another account key, a version not higher, a
 * list of two devices or an unknown name; accepted with the account key:
 * every old device is gone (its connection closed, its login refused, its
 * queue deleted) and the new device is logged in and receives. */
static void test_device_list_recover(void **state)
{
    tc_server *s = start(state, REQUIRE_LISTS);
    static const char *const disclose[] = {"disclose", "bob", NULL};
    tc_device alice, bob, bob2, nb, stranger;
    sotto_device_entry e[2];
    uint8_t list[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t len = 0;
    tc_conn *a, *b, *c, *c2;
    char got[4][64];
    int status = -1;
    char *out;

    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 2);
    assert_non_null(a);
    assert_non_null(b);
    tc_device_new(&bob2, "bob");
    assert_int_equal(tc_add_device(b, &bob, &bob2), OK);
    c2 = tc_connect(s);
    assert_int_equal(tc_login(c2, &bob2), OK);
    assert_int_equal(tc_set_keys(c2, &bob2, true, 2, NULL), OK);
    tc_close(c2);
    /* Something waits in both old devices' queues (bob 1 online, not acking). */
    {
        uint32_t ids[2] = {1, 2}, regs[2] = {bob.registration_id, bob2.registration_id};

        assert_int_equal(tc_send_msg(a, "bob", ids, regs, 2, (const uint8_t *)"old", 3, NULL), OK);
        assert_int_equal(collect(b, 1, false, got, 5000), 1);
    }

    tc_device_new(&nb, "bob");
    tc_entry_of(&nb, 1, &e[0]);
    tc_entry_of(&bob2, 2, &e[1]);
    c = tc_connect(s);
    /* another account key (a new identity is never a recovery) */
    tc_device_new(&stranger, "bob");
    assert_int_equal(tc_list_sign(&stranger.account, "bob", 9, e, 1, list, &len), 0);
    assert_int_equal(tc_register_ex(c, &nb, NULL, stranger.account.pub.bytes, list, len, true, 1),
                     SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    /* the right key claimed, signed by another */
    assert_int_equal(tc_register_ex(c, &nb, NULL, bob.account.pub.bytes, list, len, true, 1),
                     SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE);
    /* a version not higher than the stored 2, and a lower one */
    assert_int_equal(tc_list_sign(&bob.account, "bob", 2, e, 1, list, &len), 0);
    assert_int_equal(tc_register_ex(c, &nb, NULL, bob.account.pub.bytes, list, len, true, 1),
                     SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE);
    assert_int_equal(tc_list_sign(&bob.account, "bob", 1, e, 1, list, &len), 0);
    assert_int_equal(tc_register_ex(c, &nb, NULL, bob.account.pub.bytes, list, len, true, 1),
                     SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE);
    tc_close(c);
    c = tc_connect(s);
    /* two devices in a recovery list */
    assert_int_equal(tc_list_sign(&bob.account, "bob", 3, e, 2, list, &len), 0);
    assert_int_equal(tc_register_ex(c, &nb, NULL, bob.account.pub.bytes, list, len, true, 1),
                     SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    /* an unknown name */
    {
        tc_device ghost;

        tc_device_new(&ghost, "ghost");
        tc_entry_of(&ghost, 1, &e[1]);
        assert_int_equal(tc_list_sign(&ghost.account, "ghost", 2, &e[1], 1, list, &len), 0);
        assert_int_equal(
            tc_register_ex(c, &ghost, NULL, ghost.account.pub.bytes, list, len, true, 1),
            SOTTO__API__STATUS__STATUS_NOT_FOUND);
        tc_device_wipe(&ghost);
    }
    tc_close(c);
    /* Still both old devices and list version 2 after all refusals. */
    out = tc_admin(s, disclose, &status);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"device_count\": 2"));
    free(out);
    assert_server_list(b, &bob, 2, (const uint32_t[]){1, 2}, 2);

    /* The recovery: device 1 with new keys, list v3 by bob's account key. */
    c = tc_connect(s);
    assert_int_equal(tc_list_sign(&bob.account, "bob", 3, e, 1, list, &len), 0);
    assert_int_equal(tc_register_ex(c, &nb, NULL, bob.account.pub.bytes, list, len, true, 1), OK);
    assert_int_equal(nb.device_id, 1);
    nb.account = bob.account;
    /* The old device 1's connection is told and closed. */
    {
        tc_sframe *n = tc_next_push(b, 5000);

        assert_non_null(n);
        assert_int_equal(n->result_case, SOTTO__API__SERVER_FRAME__RESULT_NOTICE);
        assert_int_equal(n->notice->kind_case, SOTTO__API__NOTICE__KIND_DEVICE_REMOVED);
        tc_free(n);
        assert_int_equal(ping(b), TC_CLOSED);
    }
    /* The old devices cannot log in. */
    c2 = tc_connect(s);
    assert_int_equal(tc_login(c2, &bob), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c2);
    c2 = tc_connect(s);
    assert_int_equal(tc_login(c2, &bob2), SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(c2);
    /* One device left (its queue is gone: it gets nothing old, below). */
    out = tc_admin(s, disclose, &status);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"device_count\": 1"));
    assert_null(strstr(out, "\"device_id\": 2"));
    free(out);
    /* The new device is logged in by the recovery, gets nothing old, and
     * receives what alice sends now. */
    assert_int_equal(tc_set_keys(c, &nb, true, 2, NULL), OK);
    assert_server_list(c, &bob, 3, (const uint32_t[]){1}, 1);
    assert_int_equal(collect(c, 1, true, got, 500), 0);
    assert_int_equal(send1(a, "bob", &bob, "to the old key"),
                     SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES); /* stale regid */
    assert_int_equal(send1(a, "bob", &nb, "after recovery"), OK);
    assert_int_equal(collect(c, 1, true, got, 5000), 1);
    assert_string_equal(got[0], "after recovery");
    tc_close(c);
    /* And it logs in again normally. */
    c = tc_connect(s);
    assert_int_equal(tc_login(c, &nb), OK);
    tc_close(c);
    tc_close(b);
    tc_close(a);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
    tc_device_wipe(&bob2);
    tc_device_wipe(&nb);
    tc_device_wipe(&stranger);
    assert_server_healthy(s);
}

/* The transition switch: with require_device_lists = no an API v1 client
 * still registers and adds/removes devices without lists; its first device
 * can then give the account a key (set_device_list), after which lists are
 * required; restarted with require_device_lists = yes, a remaining v1
 * account can change its devices only after publishing a list. */
static void test_device_lists_transition(void **state)
{
    static const char *const v1_allowed[] = {"require_device_lists=no", NULL};
    tc_server *s = start(state, v1_allowed);
    tc_device old, old2, old3, late;
    sotto_device_entry e[3];
    uint8_t list[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t len = 0;
    tc_conn *a, *c2;
    tc_sframe *r;

    tc_device_new(&old, "oldie");
    old.v1 = true;
    a = tc_connect(s);
    assert_int_equal(tc_register(a, &old, NULL), OK);
    tc_device_new(&old2, "oldie");
    assert_int_equal(tc_add_device(a, &old, &old2), OK);
    assert_int_equal(old2.device_id, 2);
    r = list_devices(a);
    assert_non_null(r);
    assert_int_equal(r->list_devices->account_key.len, 0);
    assert_int_equal(r->list_devices->device_list.len, 0);
    tc_free(r);
    r = get_device_list(a, "oldie");
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_int_equal(r->get_device_list->account_key.len, 0);
    tc_free(r);
    /* A list for an account without a key: publish the key first. */
    tc_device_new(&old3, "oldie");
    tc_entry_of(&old, 1, &e[0]);
    tc_entry_of(&old2, 2, &e[1]);
    tc_entry_of(&old3, 3, &e[2]);
    assert_int_equal(tc_list_sign(&old.account, "oldie", 2, e, 3, list, &len), 0);
    assert_int_equal(tc_add_device_with_list(a, &old, &old3, list, len),
                     SOTTO__API__STATUS__STATUS_FORBIDDEN);

    /* Only device 1 may give the account its key; the list must be the
     * device set. */
    assert_int_equal(tc_list_sign(&old.account, "oldie", 1, e, 2, list, &len), 0);
    c2 = tc_connect(s);
    assert_int_equal(tc_login(c2, &old2), OK);
    assert_int_equal(set_device_list(c2, old.account.pub.bytes, list, len),
                     SOTTO__API__STATUS__STATUS_FORBIDDEN);
    tc_close(c2);
    assert_int_equal(set_device_list(a, NULL, list, len), SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    {
        uint8_t l1[SOTTO_DEVICE_LIST_MAX_BYTES];
        size_t l1len = 0;

        assert_int_equal(tc_list_sign(&old.account, "oldie", 1, e, 1, l1, &l1len), 0);
        assert_int_equal(set_device_list(a, old.account.pub.bytes, l1, l1len),
                         SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    }
    assert_int_equal(set_device_list(a, old.account.pub.bytes, list, len), OK);
    old.v1 = false;
    assert_server_list(a, &old, 1, (const uint32_t[]){1, 2}, 2);
    /* Now a list is required even with the switch off. */
    assert_int_equal(tc_add_device_with_list(a, &old, &old3, NULL, 0),
                     SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    assert_int_equal(tc_remove_device_with_list(a, 2, NULL, 0),
                     SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    assert_int_equal(tc_add_device(a, &old, &old3), OK);
    assert_int_equal(old3.device_id, 3);
    assert_int_equal(tc_remove_device(a, &old, 2), OK);
    assert_server_list(a, &old, 3, (const uint32_t[]){1, 3}, 2);

    /* Another v1 account, then the switch is turned on. */
    tc_device_new(&late, "late");
    late.v1 = true;
    c2 = tc_connect(s);
    assert_int_equal(tc_register(c2, &late, NULL), OK);
    tc_close(c2);
    tc_close(a);
    assert_int_equal(tc_server_stop(s), 0);
    assert_true(s->nsets < 16);
    snprintf(s->sets[s->nsets++], sizeof(s->sets[0]), "require_device_lists=yes");
    assert_int_equal(tc_server_restart(s), 0);
    c2 = tc_connect(s);
    assert_int_equal(tc_login(c2, &late), OK);
    tc_device_new(&old2, "late");
    old2.v1 = true;
    assert_int_equal(tc_add_device(c2, &late, &old2), SOTTO__API__STATUS__STATUS_FORBIDDEN);
    tc_entry_of(&late, 1, &e[0]);
    assert_int_equal(tc_list_sign(&late.account, "late", 1, e, 1, list, &len), 0);
    assert_int_equal(set_device_list(c2, late.account.pub.bytes, list, len), OK);
    late.v1 = false;
    assert_int_equal(tc_add_device(c2, &late, &old2), OK);
    assert_server_list(c2, &late, 2, (const uint32_t[]){1, 2}, 2);
    tc_close(c2);
    tc_device_wipe(&old);
    tc_device_wipe(&old2);
    tc_device_wipe(&old3);
    tc_device_wipe(&late);
}

/* get_device_list before login (a device restored from a backup learns the
 * version to sign next): the stored key and list, NOT_FOUND for an unknown
 * name; it takes tokens from the server-wide registration bucket and
 * counts against the 16 requests allowed before login. */
static void test_device_list_preauth(void **state)
{
    static const char *const sets[] = {"require_device_lists=yes", "rate_register_burst=3",
                                       "rate_register_per_min=1", NULL};
    tc_server *s = start(state, sets);
    tc_device alice;
    tc_conn *a, *c;
    tc_sframe *r;
    sotto_device_list l;
    int i;

    a = tc_new_user(s, &alice, "alice", 1); /* registration token 1 */
    assert_non_null(a);
    c = tc_connect(s);
    assert_non_null(c);
    r = get_device_list(c, "alice"); /* token 2 */
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    assert_int_equal(r->result_case, SOTTO__API__SERVER_FRAME__RESULT_GET_DEVICE_LIST);
    assert_int_equal(r->get_device_list->account_key.len, 33);
    assert_memory_equal(r->get_device_list->account_key.data, alice.account.pub.bytes, 33);
    assert_int_equal(sotto_device_list_verify(&l, r->get_device_list->device_list.data,
                                              r->get_device_list->device_list.len,
                                              &alice.account.pub, "alice"),
                     SOTTO_OK);
    assert_int_equal(l.version, 1);
    assert_int_equal(l.n_devices, 1);
    assert_int_equal(l.devices[0].device_id, 1);
    tc_free(r);
    r = get_device_list(c, "nobody"); /* token 3 */
    assert_non_null(r);
    assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_NOT_FOUND);
    tc_free(r);
    /* the bucket is empty: rate limited, still before login */
    r = get_device_list(c, "alice");
    assert_non_null(r);
    assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_RATE_LIMITED);
    tc_free(r);
    /* requests 4..16 are answered, the 17th closes the connection */
    for (i = 4; i <= 16; i++) {
        r = get_device_list(c, "alice");
        assert_non_null(r);
        assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_RATE_LIMITED);
        tc_free(r);
    }
    r = get_device_list(c, "alice");
    if (r != NULL) {
        assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_PROTOCOL_ERROR);
        tc_free(r);
    }
    assert_int_equal(ping(c), TC_CLOSED);
    tc_close(c);
    /* logged in, it uses the per-device bundle bucket, not the registration one */
    r = get_device_list(a, "alice");
    assert_non_null(r);
    assert_int_equal(r->status, OK);
    tc_free(r);
    tc_close(a);
    tc_device_wipe(&alice);
    assert_server_healthy(s);
}

static void test_preauth_limits(void **state)
{
    tc_server *s = start(state, NULL);
    tc_conn *c;
    int i, st = OK;

    /* 16 requests without logging in are served, then the connection is
     * closed with a protocol error. */
    c = tc_connect(s);
    assert_non_null(c);
    for (i = 0; i < 16; i++)
        assert_int_equal(ping(c), OK);
    st = ping(c);
    assert_true(st == SOTTO__API__STATUS__STATUS_PROTOCOL_ERROR || st == TC_CLOSED);
    assert_int_equal(ping(c), TC_CLOSED);
    tc_close(c);

    /* A frame just over the 4 KiB pre-login cap: protocol error, close 1009. */
    c = tc_connect(s);
    {
        uint8_t *buf = calloc(1, 4097);
        int rc = 0;
        tc_sframe *r;

        assert_non_null(buf);
        assert_int_equal(tc_ws_send(c, TC_WS_BINARY, true, buf, 4097), 0);
        r = tc_recv(c, 3000, &rc);
        if (r != NULL) {
            assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_PROTOCOL_ERROR);
            tc_free(r);
            r = tc_recv(c, 3000, &rc);
        }
        assert_null(r);
        assert_int_equal(rc, TC_CLOSED);
        assert_int_equal(c->close_code, 1009);
        free(buf);
    }
    tc_close(c);
    assert_server_healthy(s);
}

/* ---- hostile frames -------------------------------------------------------------------------- */

/* Expects the server to answer a protocol error and/or close. */
static void expect_dropped(tc_conn *c)
{
    int rc = 0, tries;

    for (tries = 0; tries < 10; tries++) {
        tc_sframe *f = tc_recv(c, 3000, &rc);

        if (f == NULL)
            break;
        if (f->status == SOTTO__API__STATUS__STATUS_PROTOCOL_ERROR) {
            tc_free(f);
            continue;
        }
        tc_free(f);
    }
    assert_int_equal(rc, TC_CLOSED);
}

static void hostile_round(tc_server *s, tc_conn *bystander, const tc_device *bob,
                          const tc_device *login_as)
{
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02,
                                      0x03, 0x99, 0x88, 0x77, 0x66, 0x55};
    uint8_t *big;
    tc_conn *c;
    size_t cap = login_as ? (1u << 20) : 4096;
    int i;

    big = calloc(1, cap + 1);
    assert_non_null(big);

#define FRESH()                                                                                    \
    do {                                                                                           \
        c = tc_connect(s);                                                                         \
        assert_non_null(c);                                                                        \
        if (login_as != NULL)                                                                      \
            assert_int_equal(tc_login(c, login_as), OK);                                           \
    } while (0)

    /* 1. Oversized binary message (one frame over the cap). */
    FRESH();
    assert_int_equal(tc_ws_send(c, TC_WS_BINARY, true, big, cap + 1), 0);
    expect_dropped(c);
    assert_true(c->close_code == 1009 || c->close_code == 1008 || c->close_code == -1);
    tc_close(c);

    /* 2. Oversized through fragments that each are small. */
    FRESH();
    for (i = 0; i < 5 && !c->closed; i++)
        (void)tc_ws_send(c, i == 0 ? TC_WS_BINARY : TC_WS_CONT, false, big, cap / 4);
    (void)tc_ws_send(c, TC_WS_CONT, true, big, 16);
    expect_dropped(c);
    tc_close(c);

    /* 3. Garbage protobuf in a binary message. */
    FRESH();
    assert_int_equal(tc_ws_send(c, TC_WS_BINARY, true, garbage, sizeof(garbage)), 0);
    expect_dropped(c);
    tc_close(c);

    /* 4. A text message. */
    FRESH();
    assert_int_equal(tc_ws_send(c, TC_WS_TEXT, true, (const uint8_t *)"{\"op\":1}", 8), 0);
    expect_dropped(c);
    tc_close(c);

    /* 5. A frame with no op set (empty ClientFrame). */
    FRESH();
    assert_int_equal(tc_ws_send(c, TC_WS_BINARY, true, (const uint8_t *)"\x08\x05", 2), 0);
    expect_dropped(c);
    tc_close(c);

    /* 6. Truncated frame: a header announcing 1000 bytes, 10 sent, then the
     *    client hangs up. */
    FRESH();
    {
        uint8_t hdr[8 + 10] = {0x82, 0x80 | 126, 0x03, 0xE8, 1, 2, 3, 4};

        assert_int_equal(tc_send_raw(c, hdr, sizeof(hdr)), 0);
    }
    tc_close(c);

    /* 7. Raw garbage on the WebSocket byte stream (reserved opcode, RSV bits,
     *    unmasked client frame). */
    FRESH();
    {
        static const uint8_t bad_op[] = {0xF3, 0x80, 1, 2, 3, 4};

        assert_int_equal(tc_send_raw(c, bad_op, sizeof(bad_op)), 0);
        expect_dropped(c);
    }
    tc_close(c);
    FRESH();
    {
        static const uint8_t unmasked[] = {0x82, 0x02, 0x08, 0x01};

        assert_int_equal(tc_send_raw(c, unmasked, sizeof(unmasked)), 0);
        expect_dropped(c);
    }
    tc_close(c);

    /* 8. Plain garbage on the TCP port (not even TLS). */
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
        ssize_t w;

        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        w = write(fd, "GET / HTTP/1.0\r\n\r\n\x00\xff\xfe", 21);
        (void)w;
        close(fd);
    }
#undef FRESH

    /* The server is up and the bystander is unaffected: it can still send. */
    assert_server_healthy(s);
    assert_int_equal(ping(bystander), OK);
    assert_int_equal(send1(bystander, "bob", bob, "still-works"), OK);
    free(big);
}

static void test_hostile_frames(void **state)
{
    tc_server *s = start(state, NULL);
    tc_device alice, bob, mallory;
    tc_conn *a, *b;
    char got[4][64];

    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 2);
    assert_non_null(a);
    assert_non_null(b);
    tc_close(tc_new_user(s, &mallory, "mallory", 0));
    hostile_round(s, a, &bob, NULL);     /* before login */
    hostile_round(s, a, &bob, &mallory); /* after login */
    assert_int_equal(collect(b, 2, true, got, 3000), 2);
    assert_string_equal(got[0], "still-works");
    tc_close(a);
    tc_close(b);
    tc_device_wipe(&mallory);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

/* ---- kill -9 during a send storm --------------------------------------------------------------
 */

#define STORM_SENDERS 3
#define STORM_PER_SENDER 3000

typedef struct storm {
    tc_server *s;
    tc_device dev;
    tc_device *bob;
    int idx;
    uint8_t acked[STORM_PER_SENDER];
    _Atomic int nacked;
    _Atomic int sent;
} storm;

/* Pipelines sends (up to 16 in flight) until the server dies. */
static void *storm_thread(void *arg)
{
    storm *st = arg;
    tc_conn *c = tc_connect(st->s);
    int inflight = 0, next = 0;
    uint64_t base;

    if (c == NULL || tc_login(c, &st->dev) != OK)
        goto out;
    base = c->next_id;
    while (next < STORM_PER_SENDER || inflight > 0) {
        while (next < STORM_PER_SENDER && inflight < 16) {
            tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
            Sotto__Api__SendRequest rq = SOTTO__API__SEND_REQUEST__INIT;
            Sotto__Api__OutgoingMessage om = SOTTO__API__OUTGOING_MESSAGE__INIT, *omp = &om;
            char body[32];

            snprintf(body, sizeof(body), "s%d-%d", st->idx, next);
            om.device_id = 1;
            om.registration_id = st->bob->registration_id;
            om.type = 2;
            om.body.data = (uint8_t *)body;
            om.body.len = strlen(body);
            rq.destination = st->bob->username;
            rq.messages = &omp;
            rq.n_messages = 1;
            f.op_case = SOTTO__API__CLIENT_FRAME__OP_SEND;
            f.send = &rq;
            f.id = base + 1 + (uint64_t)next;
            if (tc_send(c, &f) != 0)
                goto out;
            next++;
            inflight++;
            st->sent = next;
        }
        {
            int rc;
            tc_sframe *r = tc_recv(c, 5000, &rc);

            if (r == NULL)
                goto out; /* the server died */
            if (r->result_case != SOTTO__API__SERVER_FRAME__RESULT_PUSH &&
                r->result_case != SOTTO__API__SERVER_FRAME__RESULT_NOTICE) {
                inflight--;
                if (r->status == OK && r->id > base && r->id <= base + STORM_PER_SENDER) {
                    st->acked[r->id - base - 1] = 1;
                    st->nacked++;
                }
            }
            tc_free(r);
        }
    }
out:
    tc_close(c);
    return NULL;
}

static void test_kill9_send_storm(void **state)
{
    static const char *const sets[] = {"rate_send_per_min=1000000", "rate_send_burst=1000000",
                                       "queue_max=100000", NULL};
    tc_server *s = start(state, sets);
    tc_device bob;
    storm *st = calloc(STORM_SENDERS, sizeof(*st));
    pthread_t th[STORM_SENDERS];
    uint8_t(*got)[STORM_PER_SENDER] = calloc(STORM_SENDERS, STORM_PER_SENDER);
    uint8_t(*ids)[16] = calloc(STORM_SENDERS * STORM_PER_SENDER * 2, 16);
    size_t nids = 0, distinct_ids = 0, distinct_msgs = 0, dup_msgs = 0;
    int i, j, acked = 0, lost = 0, sent = 0;
    tc_conn *b;

    assert_non_null(st);
    assert_non_null(got);
    assert_non_null(ids);
    tc_close(tc_new_user(s, &bob, "bob", 1));
    for (i = 0; i < STORM_SENDERS; i++) {
        char name[16];

        snprintf(name, sizeof(name), "storm%d", i);
        tc_close(tc_new_user(s, &st[i].dev, name, 1));
        st[i].s = s;
        st[i].bob = &bob;
        st[i].idx = i;
    }
    for (i = 0; i < STORM_SENDERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, storm_thread, &st[i]), 0);
    /* Kill when the storm is well under way (at most 60 s of waiting). */
    for (j = 0; j < 30000; j++) {
        int total = 0;

        for (i = 0; i < STORM_SENDERS; i++)
            total += st[i].nacked;
        if (total >= STORM_SENDERS * STORM_PER_SENDER / 3)
            break;
        usleep(2000);
    }
    assert_true(tc_server_alive(s));
    tc_server_kill9(s);
    for (i = 0; i < STORM_SENDERS; i++) {
        pthread_join(th[i], NULL);
        acked += st[i].nacked;
        sent += st[i].sent;
    }
    print_message("storm: %d sends issued, %d acked before kill -9\n", sent, acked);
    assert_true(acked < sent); /* the kill really hit mid-storm */

    /* Restart; bob collects everything, acking as he goes. */
    assert_int_equal(tc_server_restart(s), 0);
    b = tc_connect(s);
    assert_non_null(b);
    assert_int_equal(tc_login(b, &bob), OK);
    for (;;) {
        tc_sframe *p = tc_next_push(b, 2000);
        int sidx, n;

        if (p == NULL)
            break;
        if (p->result_case == SOTTO__API__SERVER_FRAME__RESULT_PUSH) {
            char body[32];
            size_t l = p->push->body.len < 31 ? p->push->body.len : 31;
            bool dup_id = false;
            size_t k;

            memcpy(body, p->push->body.data, l);
            body[l] = '\0';
            assert_int_equal(sscanf(body, "s%d-%d", &sidx, &n), 2);
            assert_true(sidx >= 0 && sidx < STORM_SENDERS && n >= 0 && n < STORM_PER_SENDER);
            assert_true(n < st[sidx].sent); /* never something not sent */
            assert_int_equal(p->push->id.len, 16);
            /* Client-side dedupe by envelope id. */
            for (k = 0; k < nids; k++)
                if (memcmp(ids[k], p->push->id.data, 16) == 0)
                    dup_id = true;
            if (!dup_id) {
                memcpy(ids[nids++], p->push->id.data, 16);
                distinct_ids++;
                if (got[sidx][n])
                    dup_msgs++; /* same message under two envelope ids */
                else
                    distinct_msgs++;
                got[sidx][n] = 1;
            }
            assert_int_equal(tc_ack(b, p->id), 0);
        }
        tc_free(p);
    }
    for (i = 0; i < STORM_SENDERS; i++)
        for (j = 0; j < STORM_PER_SENDER; j++)
            if (st[i].acked[j] && !got[i][j])
                lost++;
    print_message("storm: %zu delivered after restart (distinct ids), %d acked sends lost, "
                  "%zu duplicated messages\n",
                  distinct_ids, lost, dup_msgs);
    assert_int_equal(lost, 0);     /* every acked send is delivered */
    assert_int_equal(dup_msgs, 0); /* after dedupe the count is exact */
    assert_int_equal(distinct_ids, distinct_msgs);
    assert_true(distinct_msgs >= (size_t)acked);
    tc_close(b);
    tc_device_wipe(&bob);
    free(ids);
    free(got);
    free(st);
}

/* ---- the data directory: one server, refusal rules -------------------------------------- */

/* Starts `bin ARGS...` with stdout and stderr appended to `logpath`. */
static pid_t spawn_logged(const char *bin, const char *const *args, const char *logpath)
{
    char *argv[16];
    int argc = 0;
    pid_t pid;

    argv[argc++] = (char *)bin;
    while (args != NULL && *args != NULL && argc < 15)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);

        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to timeout_ms for pid to exit. Returns its exit code, 1000 +
 * signal if a signal ended it, or -1 if it still ran (it is then killed:
 * a server that should have refused to start). */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int status = 0;

    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Reads a whole (small) file; malloc'd, NUL-terminated ("" if missing). */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf = calloc(1, 65537);
    size_t n = 0;

    assert_non_null(buf);
    if (fp != NULL) {
        n = fread(buf, 1, 65536, fp);
        fclose(fp);
    }
    buf[n] = '\0';
    return buf;
}

/* Runs sottod on dir and expects it to refuse to start: exit code != 0
 * within 10 s. Returns what it printed (malloc'd). */
static char *expect_refusal(const char *dir, const char *const *extra)
{
    char logpath[400];
    const char *args[12] = {"--data-dir", dir, "--listen", "127.0.0.1:0"};
    int n = 4, rc;
    char *out;

    while (extra != NULL && *extra != NULL && n < 11)
        args[n++] = *extra++;
    args[n] = NULL;
    snprintf(logpath, sizeof(logpath), "%s.refusal.log", dir);
    unlink(logpath);
    rc = wait_exit(spawn_logged(tc_sottod_path(), args, logpath), 10000);
    out = slurp(logpath);
    unlink(logpath);
    if (rc <= 0 || rc >= 1000)
        print_message("sottod did not refuse (rc %d); it printed:\n%s\n", rc, out);
    assert_true(rc > 0 && rc < 1000);
    assert_null(strstr(out, "listening on"));
    return out;
}

/* Loss found by the fault campaign: a second sottod on the same data
 * directory started silently and acked sends it never stored. */
static void test_second_server_refused(void **state)
{
    tc_server *s = start(state, NULL);
    tc_device alice, bob;
    tc_conn *a, *b;
    char path[400], want[64], got[2][64];
    char *out, *pidfile;

    out = expect_refusal(s->dir, NULL);
    print_message("second sottod said: %s", out);
    assert_non_null(strstr(out, s->dir)); /* names the directory */
    snprintf(want, sizeof(want), "pid %d", (int)s->pid);
    assert_non_null(strstr(out, want)); /* and the server holding it */
    free(out);
    /* It left the first one's pid file alone. */
    snprintf(path, sizeof(path), "%s/sottod.pid", s->dir);
    pidfile = slurp(path);
    snprintf(want, sizeof(want), "%d\n", (int)s->pid);
    assert_string_equal(pidfile, want);
    free(pidfile);

    /* The first keeps serving: register, send, receive. */
    assert_server_healthy(s);
    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 2);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(send1(a, "bob", &bob, "after-refusal"), OK);
    assert_int_equal(collect(b, 1, true, got, 5000), 1);
    assert_string_equal(got[0], "after-refusal");
    tc_close(a);
    tc_close(b);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
    /* Stopped, the directory can be used again. */
    assert_int_equal(tc_server_stop(s), 0);
    assert_int_equal(tc_server_restart(s), 0);
    assert_server_healthy(s);
}

/* Loss found by the fault campaign: a 0-byte (or missing) database next to
 * the old certificate started as a brand-new empty server. */
static void test_empty_or_missing_db_refused(void **state)
{
    tc_server *s = start(state, NULL);
    static const char *const init[] = {"--init", NULL};
    tc_device alice;
    tc_conn *a;
    char db[400], logpath[400];
    uint8_t fp[32];
    struct stat sb;
    char *out;
    pid_t pid;

    a = tc_new_user(s, &alice, "alice", 2);
    assert_non_null(a);
    tc_close(a);
    memcpy(fp, s->fp, sizeof(fp));
    assert_int_equal(tc_server_stop(s), 0);
    snprintf(db, sizeof(db), "%s/sottod.db", s->dir);

    /* 0 bytes: refused, with the file named and the way out. */
    assert_int_equal(truncate(db, 0), 0);
    out = expect_refusal(s->dir, NULL);
    print_message("0-byte database: %s", out);
    assert_non_null(strstr(out, db));
    assert_non_null(strstr(out, "--init"));
    free(out);
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_size, 0); /* not touched */

    /* Missing, next to the old certificate: refused too, nothing created. */
    assert_int_equal(unlink(db), 0);
    out = expect_refusal(s->dir, NULL);
    print_message("missing database: %s", out);
    assert_non_null(strstr(out, db));
    free(out);
    assert_int_equal(stat(db, &sb), -1);

    /* Told to initialise: a new empty store, the same certificate. */
    snprintf(logpath, sizeof(logpath), "%s.init.log", s->dir);
    {
        const char *args[] = {"--data-dir", s->dir, "--listen", "127.0.0.1:0", init[0], NULL};
        int i;

        pid = spawn_logged(tc_sottod_path(), args, logpath);
        for (i = 0; i < 1000; i++) {
            out = slurp(logpath);
            bool up = strstr(out, "sottod: certificate sha256 ") != NULL;

            free(out);
            if (up)
                break;
            usleep(10000);
        }
        assert_true(i < 1000);
        kill(pid, SIGTERM);
        assert_int_equal(wait_exit(pid, 10000), 0);
        unlink(logpath);
    }
    assert_int_equal(tc_server_restart(s), 0);
    assert_memory_equal(s->fp, fp, sizeof(fp));
    a = tc_connect(s);
    assert_non_null(a);
    assert_int_not_equal(tc_login(a, &alice), OK); /* the old accounts are gone */
    tc_close(a);
    tc_device_wipe(&alice);
}

/* Loss found by the fault campaign: a garbled database started with no
 * integrity check. Pages of a real database are overwritten while sottod
 * is stopped. */
static void test_garbled_db_refused(void **state)
{
    tc_server *s = start(state, NULL);
    tc_device alice, bob;
    tc_conn *a;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    char path[400], body[32];
    uint8_t junk[4096];
    int64_t pages[2] = {0, 0}, page_size = 0;
    char *out;
    int fd, i;

    a = tc_new_user(s, &alice, "alice", 4);
    tc_close(tc_new_user(s, &bob, "bob", 4));
    for (i = 0; i < 20; i++) {
        snprintf(body, sizeof(body), "queued-%d", i);
        assert_int_equal(send1(a, "bob", &bob, body), OK);
    }
    tc_close(a);
    assert_int_equal(tc_server_stop(s), 0);

    /* Which pages hold the devices and one-time prekey tables (read only
     * after login, never at start-up). */
    snprintf(path, sizeof(path), "%s/sottod.db", s->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT (SELECT rootpage FROM sqlite_schema WHERE name='devices'),"
                           " (SELECT rootpage FROM sqlite_schema WHERE name='one_time_prekeys'),"
                           " (SELECT page_size FROM pragma_page_size)",
                           -1, &q, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    pages[0] = sqlite3_column_int64(q, 0);
    pages[1] = sqlite3_column_int64(q, 1);
    page_size = sqlite3_column_int64(q, 2);
    sqlite3_finalize(q);
    sqlite3_close(db);
    assert_true(pages[0] > 1 && pages[1] > 1);
    assert_true(page_size > 0 && page_size <= (int64_t)sizeof(junk));

    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    for (i = 0; i < 2; i++) {
        randombytes_buf(junk, sizeof(junk));
        assert_int_equal(pwrite(fd, junk, (size_t)page_size, (pages[i] - 1) * page_size),
                         page_size);
    }
    close(fd);
    out = expect_refusal(s->dir, NULL);
    print_message("garbled pages: %s", out);
    assert_non_null(strstr(out, path));
    assert_non_null(strstr(out, "integrity check failed"));
    free(out);
    /* --init never replaces a database that holds something. */
    {
        static const char *const init[] = {"--init", NULL};

        out = expect_refusal(s->dir, init);
        assert_non_null(strstr(out, "integrity check failed"));
        free(out);
    }

    /* Garbage over the first page: "not a database", said as such. */
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    randombytes_buf(junk, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, 100, 0), 100);
    close(fd);
    out = expect_refusal(s->dir, NULL);
    print_message("garbled header: %s", out);
    assert_non_null(strstr(out, "not a database"));
    free(out);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

/* A brand-new data directory (absent, or holding only files that are not
 * the server's, like the log the test client puts there) initialises as
 * before, so `make demo` and the README need no extra step. */
static void test_new_dir_initialises(void **state)
{
    tstate *t = *state;
    char dir[400], lock[420], logpath[420];
    const char *args[] = {"--data-dir", dir, "--listen", "127.0.0.1:0", NULL};
    struct stat sb;
    pid_t pid;
    char *out = NULL;
    int i;

    /* The usual case, with sottod.log already in the directory. */
    tc_server *s = start(state, NULL);
    assert_server_healthy(s);
    snprintf(lock, sizeof(lock), "%s/sottod.lock", s->dir);
    assert_int_equal(stat(lock, &sb), 0);
    assert_int_equal(tc_server_stop(s), 0);

    /* A directory that does not exist yet. */
    snprintf(dir, sizeof(dir), "%s/new/data", t->srv.dir);
    snprintf(logpath, sizeof(logpath), "%s/new.log", t->srv.dir);
    pid = spawn_logged(tc_sottod_path(), args, logpath);
    for (i = 0; i < 1000; i++) {
        free(out);
        out = slurp(logpath);
        if (strstr(out, "sottod: certificate sha256 ") != NULL)
            break;
        usleep(10000);
    }
    if (i == 1000)
        print_message("%s\n", out);
    assert_true(i < 1000);
    free(out);
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 10000), 0);
    snprintf(lock, sizeof(lock), "%s/sottod.db", dir);
    assert_int_equal(stat(lock, &sb), 0);
    assert_true(sb.st_size > 0);
}

#ifdef SOTTOD_TEST_PATH
/* The test-only fault hook of sottod-test: SOTTOD_TEST_FAIL_SEND=N makes
 * the next N sends fail as a storage error does, nothing queued. */
static void test_fail_send_hook(void **state)
{
    tstate *t = *state;
    tc_device alice, bob;
    tc_conn *a, *b;
    tc_sframe *r = NULL;
    char got[4][64];
    uint8_t *bin;
    FILE *fp;
    size_t n;

    setenv("SOTTOD", SOTTOD_TEST_PATH, 1);
    setenv("SOTTOD_TEST_FAIL_SEND", "2", 1);
    tc_server *s = start(state, NULL);
    unsetenv("SOTTOD");
    unsetenv("SOTTOD_TEST_FAIL_SEND");
    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 2);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(tc_send_msg(a, "bob", &bob.device_id, &bob.registration_id, 1,
                                 (const uint8_t *)"fail-1", 6, &r),
                     SOTTO__API__STATUS__STATUS_INTERNAL);
    assert_non_null(r);
    assert_string_equal(r->error, "storage error, retry later");
    tc_free(r);
    assert_int_equal(send1(a, "bob", &bob, "fail-2"), SOTTO__API__STATUS__STATUS_INTERNAL);
    assert_int_equal(send1(a, "bob", &bob, "works-3"), OK);
    assert_int_equal(send1(a, "bob", &bob, "works-4"), OK);
    /* Exactly the two that were acked arrive; the failed ones were never queued. */
    assert_int_equal(collect(b, 4, true, got, 2500), 2);
    assert_string_equal(got[0], "works-3");
    assert_string_equal(got[1], "works-4");
    tc_close(a);
    tc_close(b);
    assert_int_equal(tc_server_stop(s), 0);

    /* The real sottod has no such hook: the variable changes nothing. */
    setenv("SOTTOD_TEST_FAIL_SEND", "2", 1);
    assert_int_equal(tc_server_restart(s), 0);
    unsetenv("SOTTOD_TEST_FAIL_SEND");
    a = tc_connect(s);
    assert_int_equal(tc_login(a, &alice), OK);
    assert_int_equal(send1(a, "bob", &bob, "plain-sottod"), OK);
    tc_close(a);
    fp = fopen(tc_sottod_path(), "rb");
    assert_non_null(fp);
    bin = malloc(64u << 20);
    assert_non_null(bin);
    n = fread(bin, 1, 64u << 20, fp);
    fclose(fp);
    assert_true(n > 0);
    assert_null(memmem(bin, n, "SOTTOD_TEST_FAIL_SEND", 21));
    free(bin);
    (void)t;
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}
#endif

/* ---- disclose ------------------------------------------------------------------------------- */

/* Profiles (issue 11): set/get of opaque ciphertext -- empty refused,
 * 128 KiB accepted, one byte more TOO_LARGE, login needed, NOT_FOUND for
 * an account without one, served byte for byte to another account, and
 * nothing of it in the server's log. */
static tc_sframe *profile_call(tc_conn *c, const uint8_t *ct, size_t len, const char *get_user)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SetProfileRequest sp = SOTTO__API__SET_PROFILE_REQUEST__INIT;
    Sotto__Api__GetProfileRequest gp = SOTTO__API__GET_PROFILE_REQUEST__INIT;

    if (get_user != NULL) {
        gp.username = (char *)get_user;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_PROFILE;
        f.get_profile = &gp;
    } else {
        sp.ciphertext.data = (uint8_t *)ct;
        sp.ciphertext.len = len;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_PROFILE;
        f.set_profile = &sp;
    }
    return tc_call(c, &f, 10000);
}

static int profile_status(tc_conn *c, const uint8_t *ct, size_t len, const char *get_user)
{
    tc_sframe *r = profile_call(c, ct, len, get_user);
    int st;

    assert_non_null(r);
    st = (int)r->status;
    tc_free(r);
    return st;
}

static void test_profiles(void **state)
{
    tc_server *s = start(state, NULL);
    tc_device alice, bob;
    tc_conn *a, *b, *anon;
    uint8_t *big = malloc(128 * 1024 + 1);
    char logpath[300], *log;
    tc_sframe *r;

    assert_non_null(big);
    randombytes_buf(big, 128 * 1024 + 1);
    memcpy(big, "PROFILE-CIPHERTEXT-MARK", 23);
    anon = tc_connect(s);
    assert_non_null(anon);
    assert_int_equal(profile_status(anon, big, 100, NULL),
                     SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    assert_int_equal(profile_status(anon, NULL, 0, "alice"),
                     SOTTO__API__STATUS__STATUS_UNAUTHENTICATED);
    tc_close(anon);
    a = tc_new_user(s, &alice, "alice", 1);
    b = tc_new_user(s, &bob, "bob", 1);
    assert_int_equal(profile_status(b, NULL, 0, "alice"), SOTTO__API__STATUS__STATUS_NOT_FOUND);
    assert_int_equal(profile_status(b, NULL, 0, "nobody"), SOTTO__API__STATUS__STATUS_NOT_FOUND);
    assert_int_equal(profile_status(b, NULL, 0, "Bad Name"),
                     SOTTO__API__STATUS__STATUS_INVALID_USERNAME);
    assert_int_equal(profile_status(a, big, 0, NULL), SOTTO__API__STATUS__STATUS_BAD_REQUEST);
    assert_int_equal(profile_status(a, big, 128 * 1024 + 1, NULL),
                     SOTTO__API__STATUS__STATUS_TOO_LARGE);
    assert_int_equal(profile_status(b, NULL, 0, "alice"), SOTTO__API__STATUS__STATUS_NOT_FOUND);
    assert_int_equal(profile_status(a, big, 128 * 1024, NULL), SOTTO__API__STATUS__STATUS_OK);
    r = profile_call(b, NULL, 0, "alice");
    assert_non_null(r);
    assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_OK);
    assert_int_equal(r->result_case, SOTTO__API__SERVER_FRAME__RESULT_GET_PROFILE);
    assert_int_equal(r->get_profile->ciphertext.len, 128 * 1024);
    assert_memory_equal(r->get_profile->ciphertext.data, big, 128 * 1024);
    tc_free(r);
    /* replaced by the next set */
    assert_int_equal(profile_status(a, big + 1000, 500, NULL), SOTTO__API__STATUS__STATUS_OK);
    r = profile_call(b, NULL, 0, "alice");
    assert_non_null(r);
    assert_int_equal(r->get_profile->ciphertext.len, 500);
    assert_memory_equal(r->get_profile->ciphertext.data, big + 1000, 500);
    tc_free(r);
    tc_close(a);
    tc_close(b);
    assert_int_equal(tc_server_stop(s), 0);
    snprintf(logpath, sizeof(logpath), "%s/sottod.log", s->dir);
    log = slurp(logpath);
    assert_non_null(log);
    assert_null(strstr(log, "PROFILE-CIPHERTEXT"));
    assert_null(strstr(log, "profile"));
    free(log);
    free(big);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

static void test_admin_disclose(void **state)
{
    tc_server *s = start(state, NULL);
    static const char *const args[] = {"disclose", "bob", NULL};
    static const char *const args_none[] = {"disclose", "nobody", NULL};
    tc_device alice, bob;
    tc_conn *a, *b;
    uint8_t body[300];
    char hex[601], b64[420], sk_hex[129], ik_priv_hex[65];
    char *out;
    int status = -1;

    a = tc_new_user(s, &alice, "alice", 2);
    b = tc_new_user(s, &bob, "bob", 5);
    tc_close(b);
    randombytes_buf(body, sizeof(body));
    memcpy(body, "PLAINTEXT-LOOKING-CIPHERTEXT", 28);
    assert_int_equal(
        tc_send_msg(a, "bob", &bob.device_id, &bob.registration_id, 1, body, sizeof(body), NULL),
        OK);

    out = tc_admin(s, args, &status);
    assert_non_null(out);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    print_message("%s\n", out);
    assert_non_null(strstr(out, "\"bob\""));
    /* No body in any encoding. */
    sodium_bin2hex(hex, sizeof(hex), body, sizeof(body));
    sodium_bin2base64(b64, sizeof(b64), body, sizeof(body), sodium_base64_VARIANT_ORIGINAL);
    assert_null(strstr(out, "PLAINTEXT-LOOKING"));
    hex[64] = '\0';
    assert_null(strstr(out, hex));
    b64[40] = '\0';
    assert_null(strstr(out, b64));
    /* No private key (auth secret, identity private key). */
    sodium_bin2hex(sk_hex, sizeof(sk_hex), bob.auth_sk, 32); /* the seed half */
    sodium_bin2hex(ik_priv_hex, sizeof(ik_priv_hex), bob.identity.priv, 32);
    assert_null(strstr(out, sk_hex));
    assert_null(strstr(out, ik_priv_hex));
    /* API v2: the account PUBLIC key is listed, the account private key is
     * not; issue 12: neither the device list version, the queue (one
     * envelope waits), the one-time prekey count (5) nor the registration
     * id -- only dates, the device count and public keys. */
    {
        char ak_hex[67], reg[64];

        sodium_bin2hex(ak_hex, sizeof(ak_hex), bob.account.pub.bytes, 33);
        assert_non_null(strstr(out, ak_hex));
        sodium_bin2hex(ak_hex, sizeof(ak_hex), bob.account.priv, 32);
        assert_null(strstr(out, ak_hex));
        assert_non_null(strstr(out, "\"device_count\": 1"));
        assert_non_null(strstr(out, "\"last_seen_date\": \"20"));
        assert_null(strstr(out, "device_list_version"));
        assert_null(strstr(out, "undelivered"));
        assert_null(strstr(out, "one_time_prekeys"));
        assert_null(strstr(out, "key_transparency"));
        assert_null(strstr(out, "profile"));
        assert_null(strstr(out, "registration_id"));
        snprintf(reg, sizeof(reg), ": %u,", (unsigned)bob.registration_id);
        if (bob.registration_id != 1) /* 1 is the device id */
            assert_null(strstr(out, reg));
    }
    /* No IP address, no sender (alice) and no time of day. */
    assert_null(strstr(out, "127.0.0.1"));
    assert_null(strstr(out, "alice"));
    {
        /* any "HH:MM" pattern */
        const char *p;

        for (p = out; *p != '\0'; p++)
            assert_false(p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] == ':' &&
                         p[3] >= '0' && p[3] <= '9' && p[4] >= '0' && p[4] <= '9');
    }
    free(out);

    out = tc_admin(s, args_none, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    free(out);
    tc_close(a);
    tc_device_wipe(&alice);
    tc_device_wipe(&bob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_invite_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_device_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_queue_ack_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cannot_ack_other_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_list_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_list_preauth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_lists_transition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preauth_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_send_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_disclose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_server_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_or_missing_db_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbled_db_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_dir_initialises, setup, teardown),
#ifdef SOTTOD_TEST_PATH
        cmocka_unit_test_setup_teardown(test_fail_send_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
#endif
    };

    signal(SIGPIPE, SIG_IGN);
    if (getenv("SOTTO_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("SOTTO_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
