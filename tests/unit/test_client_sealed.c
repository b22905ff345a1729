/*
 * tests/unit/test_client_sealed.c -- sealed sender in the client without a
 * server (client/core/sealed.c, issue 12): when a send is sealed (accepted
 * contact with a profile key, root pinned, not ourselves, not blocked, not
 * switched off, no refused token); a sealed envelope from a contact opens
 * into the identified path and is stored as from the certificate's sender;
 * a rogue root, an expired certificate, damaged bytes, no pinned root, a
 * message whose identity key is not the certificate's and a certificate
 * naming the recipient's own account are refused with an event and leave
 * the store byte-identical; the certificate's expiry is checked at the
 * envelope's server time (a recipient offline for longer than the
 * certificate is valid still gets the message), not at one in our future;
 * a certificate the server hands us that does not validate is not used for
 * sending; a cached one is used until min(1 h, half its validity) before
 * it expires; after a login that names another root than the pinned one,
 * nothing is sealed (the cached certificate is dropped and, logged in, not
 * used) until a login names the pinned one again; a failed token upload is
 * owed ("sealed_token_due").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "everyday.h"
#include "internal.h"
#include "sotto/sealed.h"

static char tmpdir[256];

typedef struct events {
    int n;
    int kind;
    char notice[32];
    char body[512];
} events;

static void collect(void *ud, const sc_event *ev)
{
    events *e = ud;
    e->n++;
    e->kind = ev->kind;
    snprintf(e->notice, sizeof e->notice, "%s", ev->notice ? ev->notice : "");
    snprintf(e->body, sizeof e->body, "%.*s", (int)ev->body_len, ev->body);
}

static sc_client *open_account(const char *name)
{
    sc_options o;
    sc_client *c = NULL;
    sotto_key_pair id;
    uint32_t regid;
    char err[256];

    memset(&o, 0, sizeof o);
    o.account = name;
    o.data_home = tmpdir;
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&id), SOTTO_OK);
    assert_int_equal(sotto_registration_id_generate(&regid), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_set_local_identity(c->store, &id, regid), SOTTO_OK);
    sotto_key_pair_wipe(&id);
    assert_int_equal(sc_cfg_set_text(c, "username", name), SC_OK);
    assert_int_equal(sc_cfg_set_u64(c, "device_id", 1), SC_OK);
    /* nothing listens on port 1: every network attempt fails fast */
    assert_int_equal(sc_cfg_set_text(c, "server_url", "https://127.0.0.1:1"), SC_OK);
    assert_int_equal(sc_cfg_set_text(c, "pin",
                                     "00000000000000000000000000000000"
                                     "00000000000000000000000000000000"),
                     SC_OK);
    sc_close(c);
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_non_null(c->username);
    return c;
}

/* A trust root and a server certificate under it. */
typedef struct server_keys {
    sotto_key_pair root, server;
    uint8_t *cert;
    size_t cert_len;
} server_keys;

static void server_keys_make(server_keys *k)
{
    assert_int_equal(sotto_key_pair_generate(&k->root), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&k->server), SOTTO_OK);
    assert_int_equal(
        sotto_server_certificate_create(&k->cert, &k->cert_len, 1, &k->server.pub, k->root.priv),
        SOTTO_OK);
}

static void server_keys_free(server_keys *k)
{
    free(k->cert);
    sotto_key_pair_wipe(&k->root);
    sotto_key_pair_wipe(&k->server);
}

static void identity_of(sc_client *c, sotto_key_pair *id)
{
    uint32_t regid;
    assert_int_equal(sotto_sqlite_store_get_local_identity(c->store, id, &regid), SOTTO_OK);
}

/* A sender certificate for `name` device 1 with identity `pub`. */
static void sender_cert(const server_keys *k, const char *name, const sotto_public_key *pub,
                        uint64_t expires_ms, uint8_t **out, size_t *len)
{
    assert_int_equal(sotto_sender_certificate_create(out, len, name, 1, pub, expires_ms, k->cert,
                                                     k->cert_len, k->server.priv),
                     SOTTO_OK);
}

static void pin(sc_client *c, const server_keys *k)
{
    assert_int_equal(sc_cfg_set_blob(c, "sealed_root", k->root.pub.bytes, SOTTO_PUBLIC_KEY_BYTES),
                     SC_OK);
}

/* s's signed device list (device 1), pinned in r as if fetched. */
static void list_in(sc_client *s, sc_client *r)
{
    sotto_key_pair acct, id;
    sotto_device_list l;
    uint32_t regid;
    uint8_t buf[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t len = 0;

    assert_int_equal(sotto_identity_key_pair_generate(&acct), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_get_local_identity(s->store, &id, &regid), SOTTO_OK);
    memset(&l, 0, sizeof l);
    snprintf(l.username, sizeof l.username, "%s", s->username);
    l.version = 1;
    l.timestamp_ms = sc_now_ms();
    l.n_devices = 1;
    l.devices[0].device_id = 1;
    l.devices[0].registration_id = regid;
    l.devices[0].identity_key = id.pub;
    {
        uint8_t sk[crypto_sign_SECRETKEYBYTES];
        crypto_sign_keypair(l.devices[0].auth_key, sk);
        sodium_memzero(sk, sizeof sk);
    }
    assert_int_equal(sotto_device_list_sign(&l, &acct, buf, sizeof buf, &len), SOTTO_OK);
    assert_int_equal(sc_account_pin(r, s->username, acct.pub.bytes), SC_OK);
    assert_int_equal(sc_account_set_list(r, s->username, buf, len, 1), SC_OK);
    sotto_key_pair_wipe(&acct);
    sotto_key_pair_wipe(&id);
}

static uint32_t next_id = 1;

/* s starts a session with r from r's (locally made) bundle. */
static void make_session(sc_client *s, sc_client *r)
{
    sotto_key_pair rid;
    uint32_t regid;
    sotto_signed_prekey spk;
    sotto_prekey pk;
    sotto_prekey_bundle b;
    sotto_address a = {r->username, strlen(r->username), 1};

    identity_of(r, &rid);
    assert_int_equal(sotto_sqlite_store_get_local_identity(r->store, &rid, &regid), SOTTO_OK);
    assert_int_equal(sotto_signed_prekey_generate(&spk, &rid, next_id++, 1), SOTTO_OK);
    assert_int_equal(r->ps.signed_prekey.store(r->ps.signed_prekey.user_data, &spk), SOTTO_OK);
    assert_int_equal(sotto_prekeys_generate(&pk, next_id++ * 10, 1), SOTTO_OK);
    assert_int_equal(r->ps.prekey.store(r->ps.prekey.user_data, &pk), SOTTO_OK);
    memset(&b, 0, sizeof b);
    b.registration_id = regid;
    b.device_id = 1;
    b.has_prekey = true;
    b.prekey_id = pk.id;
    b.prekey = pk.key.pub;
    b.signed_prekey_id = spk.id;
    b.signed_prekey = spk.key.pub;
    memcpy(b.signed_prekey_signature, spk.signature, SOTTO_SIGNATURE_BYTES);
    b.identity_key = rid.pub;
    assert_int_equal(sotto_session_process_bundle(&s->ps, &a, &b), SOTTO_OK);
    sotto_key_pair_wipe(&rid);
}

/* A text from s to r (session encrypt), sealed by `sealer` (identity) with
 * cert, as the type-6 envelope the server would push (id byte env). */
static void sealed_envelope(sc_client *s, sc_client *r, const sotto_key_pair *sealer,
                            const uint8_t *cert, size_t cert_len, const char *text, uint8_t env,
                            sc_envelope *e)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    sotto_address a = {r->username, strlen(r->username), 1};
    sotto_key_pair rid;
    uint8_t *buf, *padded = NULL, *msg = NULL;
    size_t n, plen = 0, mlen = 0;
    int type = 0;

    dm.body = (char *)text;
    ct.data = &dm;
    ct.timestamp = 5000 + env;
    n = sotto__content__content__get_packed_size(&ct);
    buf = malloc(n);
    assert_non_null(buf);
    sotto__content__content__pack(&ct, buf);
    assert_int_equal(sc_pad(buf, n, &padded, &plen), SC_OK);
    assert_int_equal(sotto_session_encrypt(&s->ps, &a, padded, plen, &msg, &mlen, &type), SOTTO_OK);
    identity_of(r, &rid);
    memset(e, 0, sizeof *e);
    assert_int_equal(sotto_sealed_encrypt(&e->body, &e->body_len, sealer, &rid.pub,
                                          type == SOTTO_MSG_PREKEY ? SOTTO_SEALED_TYPE_PREKEY
                                                                   : SOTTO_SEALED_TYPE_MESSAGE,
                                          cert, cert_len, msg, mlen),
                     SOTTO_OK);
    memset(e->id, env, sizeof e->id);
    e->id_len = sizeof e->id;
    e->server_ts = sc_now_ms() - 1000 + env; /* when the server took it */
    e->type = 6;
    sotto_key_pair_wipe(&rid);
    free(buf);
    free(padded);
    free(msg);
}

/* A digest of the account's store files (db and WAL), to show that a
 * refusal changed no byte. */
static void store_digest(sc_client *c, uint8_t out[32])
{
    static const char *const files[] = {"store.db", "store.db-wal"};
    crypto_generichash_state st;
    char path[512];

    crypto_generichash_init(&st, NULL, 0, 32);
    for (size_t i = 0; i < 2; i++) {
        FILE *f;
        uint8_t b[4096];
        size_t k;
        snprintf(path, sizeof path, "%s/%s", c->dir, files[i]);
        f = fopen(path, "rb");
        if (f == NULL)
            continue;
        while ((k = fread(b, 1, sizeof b, f)) > 0)
            crypto_generichash_update(&st, b, k);
        fclose(f);
    }
    crypto_generichash_final(&st, out, 32);
}

static int64_t rows_with(sc_client *c, const char *body)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    assert_int_equal(sqlite3_prepare_v2(c->db,
                                        "SELECT count(*) FROM client_messages WHERE body = ?", -1,
                                        &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, body, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void test_decide(void **state)
{
    sc_client *c = open_account("alice");
    server_keys k;
    uint8_t key[32], key2[32], token[16], want[16];
    bool seal = true, changed = false, added = false, removed = false;
    (void)state;

    server_keys_make(&k);
    randombytes_buf(key, sizeof key);
    randombytes_buf(key2, sizeof key2);
    assert_int_equal(sotto_delivery_token_derive(want, key), SOTTO_OK);
    assert_int_equal(sc_profile_key_put(c, "bob", key, &changed), SC_OK);
    assert_int_equal(sc_requests_accept_conv(c, "contact", "bob"), SC_OK);

    /* no trust root pinned: identified */
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_false(seal);
    pin(c, &k);
    /* accepted contact with a profile key: sealed, with the derived token */
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_true(seal);
    assert_memory_equal(token, want, 16);
    /* ourselves (sync copies): identified */
    assert_int_equal(sc_sealed_decide(c, "alice", &seal, token), SC_OK);
    assert_false(seal);
    /* carol: we hold her key but her conversation is a request */
    assert_int_equal(sc_profile_key_put(c, "carol", key2, &changed), SC_OK);
    assert_int_equal(sc_sealed_decide(c, "carol", &seal, token), SC_OK);
    assert_false(seal);
    /* dave: accepted, but no profile key from him */
    assert_int_equal(sc_requests_accept_conv(c, "contact", "dave"), SC_OK);
    assert_int_equal(sc_sealed_decide(c, "dave", &seal, token), SC_OK);
    assert_false(seal);
    /* switched off on this device */
    assert_int_equal(sc_cfg_set_u64(c, "sealed_off", 1), SC_OK);
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_false(seal);
    assert_int_equal(sc_cfg_delete(c, "sealed_off"), SC_OK);
    /* blocked */
    assert_int_equal(sc_blocked_add(c, "bob", 1, &added), SC_OK);
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_false(seal);
    assert_int_equal(sc_blocked_remove(c, "bob", &removed), SC_OK);
    /* the server refused that token: identified until bob's key changes */
    assert_int_equal(sc_sealed_note_refused(c, "bob", want), SC_OK);
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_false(seal);
    /* ... still identified 9 minutes later ... */
    assert_int_equal(sc_sealed_note_refused_at(c, "bob", want, sc_now_ms() - 9ull * 60 * 1000),
                     SC_OK);
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_false(seal);
    /* ... and tried again after 10 minutes (bob's client uploads it again at
     * its next login: one refusal, which a hostile server can cause at will,
     * must not unseal bob for long) */
    assert_int_equal(sc_sealed_note_refused_at(c, "bob", want, sc_now_ms() - 11ull * 60 * 1000),
                     SC_OK);
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_true(seal);
    assert_int_equal(sc_sealed_note_refused(c, "bob", want), SC_OK);
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_false(seal);
    assert_int_equal(sc_profile_key_put(c, "bob", key2, &changed), SC_OK);
    assert_int_equal(sc_sealed_decide(c, "bob", &seal, token), SC_OK);
    assert_true(seal);
    assert_int_equal(sotto_delivery_token_derive(want, key2), SOTTO_OK);
    assert_memory_equal(token, want, 16);
    server_keys_free(&k);
    sc_close(c);
}

static void test_open_and_refusals(void **state)
{
    sc_client *alice = open_account("alice2");
    sc_client *bob = open_account("bob2");
    server_keys k, rogue;
    sotto_key_pair aid, mid;
    uint8_t *cert = NULL, *bad = NULL, d0[32], d1[32];
    size_t cert_len = 0, bad_len = 0;
    uint64_t now = sc_now_ms();
    sc_envelope e, inner;
    events ev;
    bool refused = false;
    (void)state;

    server_keys_make(&k);
    server_keys_make(&rogue);
    identity_of(alice, &aid);
    list_in(alice, bob);
    make_session(alice, bob);
    sender_cert(&k, "alice2", &aid.pub, now + 86400000ull, &cert, &cert_len);

    /* no root pinned on bob: refused, acked, nothing stored */
    sealed_envelope(alice, bob, &aid, cert, cert_len, "no root", 1, &e);
    memset(&ev, 0, sizeof ev);
    store_digest(bob, d0);
    assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
    assert_true(refused);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.notice, "sealed_refused");
    store_digest(bob, d1);
    assert_memory_equal(d0, d1, 32);
    sc_envelope_clear(&e);
    pin(bob, &k);

    /* each refusal below: one event, no byte of bob's store changed */
    struct {
        const char *what;
        int kind; /* 0 rogue root, 1 expired, 2 damaged, 3 identity not the cert's,
                     4 a certificate naming the recipient's own account */
    } cases[] = {
        {"rogue root", 0}, {"expired", 1}, {"damaged", 2}, {"identity", 3}, {"own name", 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const sotto_key_pair *sealer = &aid;
        free(bad);
        bad = NULL;
        if (cases[i].kind == 0)
            sender_cert(&rogue, "alice2", &aid.pub, now + 86400000ull, &bad, &bad_len);
        else if (cases[i].kind == 1)
            sender_cert(&k, "alice2", &aid.pub, now - 1000, &bad, &bad_len);
        else if (cases[i].kind == 3) {
            /* mallory's key in a certificate naming alice2: the session
             * message inside still carries alice2's identity key */
            assert_int_equal(sotto_identity_key_pair_generate(&mid), SOTTO_OK);
            sender_cert(&k, "alice2", &mid.pub, now + 86400000ull, &bad, &bad_len);
            sealer = &mid;
        } else if (cases[i].kind == 4)
            sender_cert(&k, "bob2", &aid.pub, now + 86400000ull, &bad, &bad_len);
        else
            sender_cert(&k, "alice2", &aid.pub, now + 86400000ull, &bad, &bad_len);
        /* a fresh session each time: a PreKey message */
        make_session(alice, bob);
        sealed_envelope(alice, bob, sealer, bad, bad_len, cases[i].what, (uint8_t)(10 + i), &e);
        if (cases[i].kind == 2)
            e.body[e.body_len / 2] ^= 0x01;
        memset(&ev, 0, sizeof ev);
        store_digest(bob, d0);
        assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
        print_message("%s: %s\n", cases[i].what, ev.body);
        assert_true(refused);
        assert_int_equal(ev.n, 1);
        assert_int_equal(ev.kind, SC_EV_NOTICE);
        assert_string_equal(ev.notice, "sealed_refused");
        assert_null(inner.body);
        store_digest(bob, d1);
        assert_memory_equal(d0, d1, 32);
        assert_int_equal(rows_with(bob, cases[i].what), 0);
        sc_envelope_clear(&e);
        if (cases[i].kind == 3)
            sotto_key_pair_wipe(&mid);
    }

    /* a good one: opened into an identified envelope from alice2 device 1,
     * then the ordinary path stores it under alice2 */
    make_session(alice, bob);
    sealed_envelope(alice, bob, &aid, cert, cert_len, "sealed hello", 30, &e);
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
    assert_false(refused);
    assert_int_equal(ev.n, 0);
    assert_string_equal(inner.source, "alice2");
    assert_int_equal(inner.source_device, 1);
    assert_int_equal(inner.type, SOTTO_MSG_PREKEY);
    assert_memory_equal(inner.id, e.id, 16);
    assert_int_equal(inner.server_ts, e.server_ts);
    assert_int_equal(sc_accept_envelope(bob, &inner, false, collect, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.kind, SC_EV_MESSAGE);
    assert_string_equal(ev.body, "sealed hello");
    assert_int_equal(rows_with(bob, "sealed hello"), 1);
    sc_envelope_clear(&inner);
    /* the same envelope again: acked without a second row or event */
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
    assert_true(refused);
    assert_int_equal(ev.n, 0);
    assert_int_equal(rows_with(bob, "sealed hello"), 1);
    sc_envelope_clear(&e);

    free(bad);
    free(cert);
    sotto_key_pair_wipe(&aid);
    server_keys_free(&k);
    server_keys_free(&rogue);
    sc_close(alice);
    sc_close(bob);
}

/* The certificate the server hands us is checked before it is used: one
 * under another root is not used (the send goes identified: a local
 * refusal), a good one is (the send gets as far as the network). */
static void test_own_cert_checked(void **state)
{
    sc_client *alice = open_account("alice3");
    sc_client *bob = open_account("bob3");
    server_keys k, rogue;
    sotto_key_pair aid;
    uint8_t *cert = NULL, token[16] = {0};
    size_t cert_len = 0;
    uint64_t now = sc_now_ms();
    sc_api_outgoing m;
    sc_api_result r;
    uint8_t body[40];
    (void)state;

    server_keys_make(&k);
    server_keys_make(&rogue);
    identity_of(alice, &aid);
    pin(alice, &k);
    make_session(alice, bob); /* bob3's identity saved in alice's store */
    randombytes_buf(body, sizeof body);
    memset(&m, 0, sizeof m);
    m.device_id = 1;
    m.type = SOTTO_MSG_SIGNAL;
    m.body = body;
    m.body_len = sizeof body;

    sender_cert(&rogue, "alice3", &aid.pub, now + 86400000ull, &cert, &cert_len);
    assert_int_equal(sc_cfg_set_blob(alice, "sealed_cert", cert, cert_len), SC_OK);
    assert_int_equal(sc_cfg_set_u64(alice, "sealed_cert_expires", now + 86400000ull), SC_OK);
    assert_int_equal(sc_cfg_set_u64(alice, "sealed_cert_renew", now + 82800000ull), SC_OK);
    assert_int_equal(sc_sealed_send(alice, "bob3", &m, 1, token, NULL, &r), SC_API_REFUSED);
    assert_int_equal(r.status, SC_SEALED_LOCAL_REFUSAL);
    print_message("rogue certificate: %s\n", r.error);
    sc_api_result_clear(&r);
    free(cert);

    /* one naming another account is not ours either */
    sender_cert(&k, "mallory", &aid.pub, now + 86400000ull, &cert, &cert_len);
    assert_int_equal(sc_cfg_set_blob(alice, "sealed_cert", cert, cert_len), SC_OK);
    assert_int_equal(sc_sealed_send(alice, "bob3", &m, 1, token, NULL, &r), SC_API_REFUSED);
    assert_int_equal(r.status, SC_SEALED_LOCAL_REFUSAL);
    sc_api_result_clear(&r);
    free(cert);

    sender_cert(&k, "alice3", &aid.pub, now + 86400000ull, &cert, &cert_len);
    assert_int_equal(sc_cfg_set_blob(alice, "sealed_cert", cert, cert_len), SC_OK);
    assert_int_equal(sc_sealed_send(alice, "bob3", &m, 1, token, NULL, &r), SC_API_NETWORK);
    sc_api_result_clear(&r);
    free(cert);

    /* a short-lived one (sender_cert_validity_s=60) stays in use for half
     * its validity: the send gets as far as the network, no new fetch */
    sender_cert(&k, "alice3", &aid.pub, now + 60000, &cert, &cert_len);
    assert_int_equal(sc_cfg_set_blob(alice, "sealed_cert", cert, cert_len), SC_OK);
    assert_int_equal(sc_cfg_set_u64(alice, "sealed_cert_expires", now + 60000), SC_OK);
    assert_int_equal(
        sc_cfg_set_u64(alice, "sealed_cert_renew", sc_sealed_cert_renew_at(now, now + 60000)),
        SC_OK);
    assert_int_equal(sc_sealed_send(alice, "bob3", &m, 1, token, NULL, &r), SC_API_NETWORK);
    sc_api_result_clear(&r);
    /* past its renewal time: fetched again (no server here: nothing sent) */
    assert_int_equal(sc_cfg_set_u64(alice, "sealed_cert_renew", now - 1), SC_OK);
    assert_int_equal(sc_sealed_send(alice, "bob3", &m, 1, token, NULL, &r), SC_API_REFUSED);
    assert_int_equal(r.status, SC_SEALED_LOCAL_REFUSAL);
    sc_api_result_clear(&r);
    free(cert);

    sotto_key_pair_wipe(&aid);
    server_keys_free(&k);
    server_keys_free(&rogue);
    sc_close(alice);
    sc_close(bob);
}

/* The server serves another trust root than the pinned one (an operator's
 * `sottod admin new-sealed-root`): from that login on nothing is sealed,
 * the cached certificate (valid under the pinned root) is dropped, a token
 * upload is owed; once the roots agree again sealing resumes. Logged in,
 * a certificate is used only under the root the server serves now. */
static void test_root_mismatch(void **state)
{
    sc_client *alice = open_account("alice5");
    sc_client *bob = open_account("bob5");
    server_keys k, fresh;
    sotto_key_pair aid;
    uint8_t key[32], token[16], *cert = NULL, *b = NULL;
    size_t cert_len = 0, n = 0;
    uint64_t now = sc_now_ms(), due = 0;
    bool seal = false, changed = false;
    sc_api_outgoing m;
    sc_api_result r;
    uint8_t body[40];
    (void)state;

    server_keys_make(&k);
    server_keys_make(&fresh);
    identity_of(alice, &aid);
    pin(alice, &k);
    make_session(alice, bob);
    randombytes_buf(key, sizeof key);
    assert_int_equal(sc_profile_key_put(alice, "bob5", key, &changed), SC_OK);
    assert_int_equal(sc_requests_accept_conv(alice, "contact", "bob5"), SC_OK);
    sender_cert(&k, "alice5", &aid.pub, now + 86400000ull, &cert, &cert_len);
    assert_int_equal(sc_cfg_set_blob(alice, "sealed_cert", cert, cert_len), SC_OK);
    assert_int_equal(sc_cfg_set_u64(alice, "sealed_cert_renew", now + 82800000ull), SC_OK);
    randombytes_buf(body, sizeof body);
    memset(&m, 0, sizeof m);
    m.device_id = 1;
    m.type = SOTTO_MSG_SIGNAL;
    m.body = body;
    m.body_len = sizeof body;

    /* a login that names the pinned root: sealed, with the cached cert */
    memcpy(alice->sealed_root_seen, k.root.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    alice->sealed_root_seen_ok = true;
    assert_int_equal(sc_sealed_after_auth(alice), SC_OK);
    assert_int_equal(sc_sealed_decide(alice, "bob5", &seal, token), SC_OK);
    assert_true(seal);
    /* (no server: the token upload failed and is owed to the next tick) */
    assert_int_equal(sc_cfg_get_u64(alice, "sealed_token_due", &due), SC_OK);
    assert_int_equal(due, 1);

    /* logged in under a server that now serves another root: the cached
     * certificate, valid under the pinned root, is not used */
    memcpy(alice->sealed_root_seen, fresh.root.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    alice->logged_in = true;
    assert_int_equal(sc_sealed_send(alice, "bob5", &m, 1, token, NULL, &r), SC_API_REFUSED);
    assert_int_equal(r.status, SC_SEALED_LOCAL_REFUSAL);
    print_message("served root differs: %s\n", r.error);
    sc_api_result_clear(&r);
    alice->logged_in = false;
    assert_int_equal(sc_cfg_set_blob(alice, "sealed_cert", cert, cert_len), SC_OK);

    /* the login that names it: identified from then on, the cert dropped */
    assert_int_equal(sc_sealed_after_auth(alice), SC_OK);
    assert_int_equal(sc_sealed_decide(alice, "bob5", &seal, token), SC_OK);
    assert_false(seal);
    assert_int_equal(sc_cfg_get_blob(alice, "sealed_cert", &b, &n), SC_E_NOT_FOUND);
    /* still after a restart of the client, before any login */
    alice->sealed_root_seen_ok = false;
    assert_int_equal(sc_cfg_set_blob(alice, "sealed_cert", cert, cert_len), SC_OK);
    assert_int_equal(sc_sealed_decide(alice, "bob5", &seal, token), SC_OK);
    assert_false(seal);
    assert_int_equal(sc_sealed_send(alice, "bob5", &m, 1, token, NULL, &r), SC_API_REFUSED);
    assert_int_equal(r.status, SC_SEALED_LOCAL_REFUSAL);
    sc_api_result_clear(&r);
    /* the pinned root stays pinned */
    assert_true(sc_cfg_get_blob(alice, "sealed_root", &b, &n) == SC_OK && n == 33 &&
                memcmp(b, k.root.pub.bytes, 33) == 0);
    free(b);

    /* the roots agree again (the old key restored): sealed again */
    memcpy(alice->sealed_root_seen, k.root.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    alice->sealed_root_seen_ok = true;
    assert_int_equal(sc_sealed_after_auth(alice), SC_OK);
    assert_int_equal(sc_sealed_decide(alice, "bob5", &seal, token), SC_OK);
    assert_true(seal);

    free(cert);
    sotto_key_pair_wipe(&aid);
    server_keys_free(&k);
    server_keys_free(&fresh);
    sc_close(alice);
    sc_close(bob);
}

/* The renewal margin: min(1 h, half the validity). */
static void test_cert_renew_at(void **state)
{
    const uint64_t t = 1800000000000ull;
    (void)state;

    /* 86400 s (the default): an hour before expiry */
    assert_int_equal(sc_sealed_cert_renew_at(t, t + 86400000ull), t + 82800000ull);
    /* 2 h: still an hour */
    assert_int_equal(sc_sealed_cert_renew_at(t, t + 7200000ull), t + 3600000ull);
    /* 60 s (the smallest sender_cert_validity_s): after 30 s, not at once */
    assert_int_equal(sc_sealed_cert_renew_at(t, t + 60000), t + 30000);
    /* 30 min: after 15 min */
    assert_int_equal(sc_sealed_cert_renew_at(t, t + 1800000ull), t + 900000ull);
    /* expired already (or a clock ahead of the server's): at once */
    assert_true(sc_sealed_cert_renew_at(t, t - 5000) <= t);
}

/* A recipient offline for longer than a certificate is valid: the expiry is
 * checked at the envelope's server time, as libsignal checks it at the
 * envelope's timestamp; a server time in our future is not believed. */
static void test_expiry_at_server_time(void **state)
{
    sc_client *alice = open_account("alice4");
    sc_client *bob = open_account("bob4");
    server_keys k;
    sotto_key_pair aid;
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    uint64_t now = sc_now_ms();
    sc_envelope e, inner;
    events ev;
    bool refused = true;
    (void)state;

    server_keys_make(&k);
    identity_of(alice, &aid);
    list_in(alice, bob);
    pin(bob, &k);
    /* valid for 60 s from 10 min ago: expired 9 min ago */
    sender_cert(&k, "alice4", &aid.pub, now - 540000ull, &cert, &cert_len);

    /* taken by the server 9 min 30 s ago, while it was valid: delivered */
    make_session(alice, bob);
    sealed_envelope(alice, bob, &aid, cert, cert_len, "offline a while", 40, &e);
    e.server_ts = now - 570000ull;
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
    if (refused)
        print_message("refused: %s\n", ev.body);
    assert_false(refused);
    assert_int_equal(ev.n, 0);
    assert_string_equal(inner.source, "alice4");
    assert_int_equal(sc_accept_envelope(bob, &inner, false, collect, &ev), SC_OK);
    assert_int_equal(ev.kind, SC_EV_MESSAGE);
    assert_string_equal(ev.body, "offline a while");
    sc_envelope_clear(&inner);
    sc_envelope_clear(&e);

    /* taken after it expired: refused */
    make_session(alice, bob);
    sealed_envelope(alice, bob, &aid, cert, cert_len, "after expiry", 41, &e);
    e.server_ts = now - 60000ull;
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
    assert_true(refused);
    assert_string_equal(ev.notice, "sealed_refused");
    sc_envelope_clear(&e);
    free(cert);

    /* a certificate valid for another 2 min, an envelope "taken" 1 h in our
     * future (more than the allowed 5 min skew): our clock is used, so it
     * opens (at that server time the certificate would have expired) */
    sender_cert(&k, "alice4", &aid.pub, now + 120000ull, &cert, &cert_len);
    make_session(alice, bob);
    sealed_envelope(alice, bob, &aid, cert, cert_len, "from the future", 42, &e);
    e.server_ts = now + 3600000ull;
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
    assert_false(refused);
    sc_envelope_clear(&inner);
    sc_envelope_clear(&e);
    /* 1 min ahead (within the skew): that time is used, and the
     * certificate is still valid then */
    make_session(alice, bob);
    sealed_envelope(alice, bob, &aid, cert, cert_len, "slightly ahead", 43, &e);
    e.server_ts = now + 60000ull;
    assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
    assert_false(refused);
    sc_envelope_clear(&inner);
    sc_envelope_clear(&e);
    /* 4 min ahead (within the skew, after the expiry): refused */
    make_session(alice, bob);
    sealed_envelope(alice, bob, &aid, cert, cert_len, "ahead, expired", 44, &e);
    e.server_ts = now + 240000ull;
    memset(&ev, 0, sizeof ev);
    assert_int_equal(sc_sealed_open(bob, &e, &inner, &refused, collect, &ev), SC_OK);
    assert_true(refused);
    sc_envelope_clear(&e);
    free(cert);

    sotto_key_pair_wipe(&aid);
    server_keys_free(&k);
    sc_close(alice);
    sc_close(bob);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-sealed-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return 0;
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
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_open_and_refusals),
        cmocka_unit_test(test_own_cert_checked),
        cmocka_unit_test(test_cert_renew_at),
        cmocka_unit_test(test_expiry_at_server_time),
        cmocka_unit_test(test_root_mismatch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
