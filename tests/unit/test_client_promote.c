/*
 * tests/unit/test_client_promote.c -- the receiving side of `sotto promote`
 * (client/core/promote.c) without a server: two devices of one account
 * ("bob" device 1, the primary, and device 2) with real Signal sessions
 * between them; crafted SyncMessages handed to sc_process_envelope().
 *
 *  - hostile or broken transfers store nothing and leave a primary_refused
 *    notice: a private key that does not derive the pinned account key
 *    (the public key field says the right key), another account's key pair,
 *    no private key, a transfer for another device carrying a key;
 *  - a good transfer stores exactly the key, raises last_device_id, and
 *    queues the confirmation for our own devices;
 *  - that queued confirmation, delivered to the old primary, deletes its
 *    key; confirmations that do not match the pending transfer (another
 *    timestamp, a device confirming for another, none pending) do not;
 *  - the copies with and without the private key pad to the same length.
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

#include "internal.h"

static char tmpdir[256];
static uint32_t next_id = 1;
static uint8_t next_env = 1;

typedef struct events {
    int n;
    char notice[32];
    char body[512];
} events;

static void collect(void *ud, const sc_event *ev)
{
    events *e = ud;
    e->n++;
    snprintf(e->notice, sizeof e->notice, "%s", ev->notice ? ev->notice : "");
    snprintf(e->body, sizeof e->body, "%.*s", (int)ev->body_len, ev->body);
}

/* A device of "bob" as local account `account`, pinned to account key
 * `acct`; the primary also holds its private half. */
static sc_client *open_device(const char *account, uint32_t device_id, const sotto_key_pair *acct,
                              bool primary)
{
    sc_options o;
    sc_client *c = NULL;
    sotto_key_pair id;
    uint32_t regid;
    char err[256];

    memset(&o, 0, sizeof o);
    o.account = account;
    o.data_home = tmpdir;
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&id), SOTTO_OK);
    assert_int_equal(sotto_registration_id_generate(&regid), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_set_local_identity(c->store, &id, regid), SOTTO_OK);
    sotto_key_pair_wipe(&id);
    assert_int_equal(sc_cfg_set_text(c, "username", "bob"), SC_OK);
    assert_int_equal(sc_cfg_set_u64(c, "device_id", device_id), SC_OK);
    assert_int_equal(sc_cfg_set_text(c, "server_url", "https://127.0.0.1:1"), SC_OK);
    assert_int_equal(sc_cfg_set_blob(c, "account_pk", acct->pub.bytes, SOTTO_PUBLIC_KEY_BYTES),
                     SC_OK);
    if (primary)
        assert_int_equal(sc_cfg_set_blob(c, "account_sk", acct->priv, sizeof acct->priv), SC_OK);
    sc_close(c);
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_non_null(c->username);
    assert_int_equal(c->device_id, device_id);
    return c;
}

/* s starts a session with device r (locally made bundle). */
static void make_session(sc_client *s, sc_client *r)
{
    sotto_key_pair rid;
    uint32_t regid;
    sotto_signed_prekey spk;
    sotto_prekey pk;
    sotto_prekey_bundle b;
    sotto_address a = {r->username, strlen(r->username), r->device_id};

    assert_int_equal(sotto_sqlite_store_get_local_identity(r->store, &rid, &regid), SOTTO_OK);
    assert_int_equal(sotto_signed_prekey_generate(&spk, &rid, next_id++, 1), SOTTO_OK);
    assert_int_equal(r->ps.signed_prekey.store(r->ps.signed_prekey.user_data, &spk), SOTTO_OK);
    assert_int_equal(sotto_prekeys_generate(&pk, 1000 + next_id++, 1), SOTTO_OK);
    assert_int_equal(r->ps.prekey.store(r->ps.prekey.user_data, &pk), SOTTO_OK);
    memset(&b, 0, sizeof b);
    b.registration_id = regid;
    b.device_id = r->device_id;
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

/* Encrypts packed content (buf, n) from device s to device r and hands r
 * the envelope, as coming from device `claimed` of s's account. */
static int deliver_bytes(sc_client *s, sc_client *r, uint32_t claimed, const uint8_t *buf, size_t n,
                         events *ev)
{
    sc_envelope e = {0};
    sotto_address a = {r->username, strlen(r->username), r->device_id};
    uint8_t *padded = NULL, *msg = NULL;
    size_t plen = 0, mlen = 0;
    int type = 0, rc;

    assert_int_equal(sc_pad(buf, n, &padded, &plen), SC_OK);
    assert_int_equal(sotto_session_encrypt(&s->ps, &a, padded, plen, &msg, &mlen, &type), SOTTO_OK);
    memset(e.id, next_env++, sizeof e.id);
    e.id_len = sizeof e.id;
    snprintf(e.source, sizeof e.source, "%s", s->username);
    e.source_device = claimed;
    e.type = (uint32_t)type;
    e.body = msg;
    e.body_len = mlen;
    e.server_ts = 5000 + next_env;
    memset(ev, 0, sizeof *ev);
    rc = sc_process_envelope(r, &e, false, collect, ev);
    sodium_memzero(padded, plen);
    free(padded);
    free(msg);
    return rc;
}

static int deliver(sc_client *s, sc_client *r, const Sotto__Content__Content *ct, events *ev)
{
    size_t n = sotto__content__content__get_packed_size(ct);
    uint8_t *buf = malloc(n + 1);
    int rc;

    assert_non_null(buf);
    sotto__content__content__pack(ct, buf);
    rc = deliver_bytes(s, r, s->device_id, buf, n, ev);
    sodium_memzero(buf, n);
    free(buf);
    return rc;
}

/* A transfer from s to r: target, private key (NULL: none), public key. */
static int send_transfer(sc_client *s, sc_client *r, uint64_t ts, uint32_t target,
                         const uint8_t *priv, const sotto_public_key *pub, events *ev)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__AccountKeyTransfer t =
        SOTTO__CONTENT__SYNC_MESSAGE__ACCOUNT_KEY_TRANSFER__INIT;

    t.target_device_id = target;
    if (priv) {
        t.account_private_key.data = (uint8_t *)priv;
        t.account_private_key.len = SOTTO_PRIVATE_KEY_BYTES;
    }
    t.account_public_key.data = (uint8_t *)pub->bytes;
    t.account_public_key.len = SOTTO_PUBLIC_KEY_BYTES;
    t.last_device_id = 7;
    sync.account_key_transfer = &t;
    ct.timestamp = ts;
    ct.sync = &sync;
    return deliver(s, r, &ct, ev);
}

static int send_confirmation(sc_client *s, sc_client *r, uint32_t target, uint64_t transfer_ts,
                             events *ev)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__AccountKeyReceived k =
        SOTTO__CONTENT__SYNC_MESSAGE__ACCOUNT_KEY_RECEIVED__INIT;

    k.target_device_id = target;
    k.transfer_timestamp = transfer_ts;
    sync.account_key_received = &k;
    ct.timestamp = transfer_ts + 1000 + next_env;
    ct.sync = &sync;
    return deliver(s, r, &ct, ev);
}

static int64_t count(sc_client *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_prepare_v2(c->db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t holds_key(sc_client *c)
{
    return count(c, "SELECT count(*) FROM client_config WHERE key = 'account_sk'");
}

typedef struct pair {
    sotto_key_pair acct;
    sc_client *d1, *d2;
} pair;

static void pair_open(pair *p, const char *a1, const char *a2)
{
    assert_int_equal(sotto_identity_key_pair_generate(&p->acct), SOTTO_OK);
    p->d1 = open_device(a1, 1, &p->acct, true);
    p->d2 = open_device(a2, 2, &p->acct, false);
    make_session(p->d1, p->d2);
    make_session(p->d2, p->d1);
}

static void pair_close(pair *p)
{
    sc_close(p->d1);
    sc_close(p->d2);
    sotto_key_pair_wipe(&p->acct);
}

static void test_hostile_transfers(void **state)
{
    pair p;
    sotto_key_pair other;
    events ev;
    (void)state;

    pair_open(&p, "h1", "h2");
    assert_int_equal(sotto_identity_key_pair_generate(&other), SOTTO_OK);

    /* the right public key, a private key that does not derive it */
    assert_int_equal(send_transfer(p.d1, p.d2, 100, 2, other.priv, &p.acct.pub, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.notice, "primary_refused");
    assert_non_null(strstr(ev.body, "not your account key's"));
    assert_int_equal(holds_key(p.d2), 0);

    /* another account key pair, consistent in itself */
    assert_int_equal(send_transfer(p.d1, p.d2, 101, 2, other.priv, &other.pub, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.notice, "primary_refused");
    assert_int_equal(holds_key(p.d2), 0);

    /* no private key for the target */
    assert_int_equal(send_transfer(p.d1, p.d2, 102, 2, NULL, &p.acct.pub, &ev), SC_OK);
    assert_string_equal(ev.notice, "primary_refused");
    assert_int_equal(holds_key(p.d2), 0);

    /* for device 3, yet with the key in this copy: not kept */
    assert_int_equal(send_transfer(p.d1, p.d2, 103, 3, p.acct.priv, &p.acct.pub, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.notice, "primary_changed");
    assert_non_null(strstr(ev.body, "device 3 of your account is now the primary"));
    assert_int_equal(holds_key(p.d2), 0);

    /* nothing of this was confirmed */
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_outgoing"), 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_config WHERE key = 'last_device_id'"),
                     0);
    sotto_key_pair_wipe(&other);
    pair_close(&p);
}

/* The confirmation device 2 queued, as packed Content. */
static void queued_confirmation(sc_client *c, uint8_t **buf, size_t *n)
{
    sc_out_row row;
    Sotto__Content__Content *ct;

    memset(&row, 0, sizeof row);
    assert_int_equal(sc_out_next(c, 0, &row), SC_OK);
    assert_string_equal(row.destination, "bob");
    ct = sotto__content__content__unpack(NULL, row.len, row.content);
    assert_non_null(ct);
    assert_non_null(ct->sync);
    assert_non_null(ct->sync->account_key_received);
    assert_int_equal(ct->sync->account_key_received->target_device_id, 2);
    assert_int_equal(ct->sync->account_key_received->transfer_timestamp, 200);
    assert_null(ct->sync->account_key_transfer);
    sotto__content__content__free_unpacked(ct, NULL);
    *buf = malloc(row.len);
    assert_non_null(*buf);
    memcpy(*buf, row.content, row.len);
    *n = row.len;
    sc_out_row_clear(&row);
}

static void test_transfer_and_confirmation(void **state)
{
    pair p;
    events ev;
    uint8_t *stored = NULL, *conf = NULL;
    size_t stored_len = 0, conf_len = 0;
    uint64_t last = 0;
    (void)state;

    pair_open(&p, "g1", "g2");
    /* what `promote 2` on device 1 records before it sends (promote.c) */
    assert_int_equal(sc_cfg_set_text(p.d1, "promote_pending", "2 200"), SC_OK);
    assert_int_equal(send_transfer(p.d1, p.d2, 200, 2, p.acct.priv, &p.acct.pub, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.notice, "primary_received");
    assert_int_equal(sc_cfg_get_blob(p.d2, "account_sk", &stored, &stored_len), SC_OK);
    assert_int_equal(stored_len, SOTTO_PRIVATE_KEY_BYTES);
    assert_memory_equal(stored, p.acct.priv, SOTTO_PRIVATE_KEY_BYTES);
    sodium_memzero(stored, stored_len);
    free(stored);
    assert_true(sc_is_primary(p.d2));
    assert_int_equal(sc_cfg_get_u64(p.d2, "last_device_id", &last), SC_OK);
    assert_int_equal(last, 7);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_outgoing"), 1);
    queued_confirmation(p.d2, &conf, &conf_len);

    /* confirmations that do not match the pending transfer change nothing */
    assert_int_equal(send_confirmation(p.d2, p.d1, 2, 199, &ev), SC_OK);
    assert_int_equal(ev.n, 0);
    assert_int_equal(holds_key(p.d1), 1);
    assert_int_equal(send_confirmation(p.d2, p.d1, 3, 200, &ev), SC_OK); /* for another device */
    assert_int_equal(ev.n, 0);
    assert_int_equal(holds_key(p.d1), 1);
    /* the right one, claimed by device 3 (not the target) */
    assert_int_equal(deliver_bytes(p.d2, p.d1, 3, conf, conf_len, &ev), SC_OK);
    assert_int_equal(holds_key(p.d1), 1);

    /* the queued confirmation from device 2: device 1 gives the key up */
    assert_int_equal(deliver_bytes(p.d2, p.d1, 2, conf, conf_len, &ev), SC_OK);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.notice, "primary_confirmed");
    assert_int_equal(holds_key(p.d1), 0);
    assert_false(sc_is_primary(p.d1));
    assert_int_equal(
        count(p.d1, "SELECT count(*) FROM client_config WHERE key = 'promote_pending'"), 0);
    assert_int_equal(holds_key(p.d2), 1);
    sodium_memzero(conf, conf_len);
    free(conf);
    pair_close(&p);
}

/* Without a pending transfer a confirmation deletes nothing. */
static void test_confirmation_without_transfer(void **state)
{
    pair p;
    events ev;
    (void)state;

    pair_open(&p, "n1", "n2");
    assert_int_equal(send_confirmation(p.d2, p.d1, 2, 300, &ev), SC_OK);
    assert_int_equal(ev.n, 0);
    assert_int_equal(holds_key(p.d1), 1);
    pair_close(&p);
}

/* The target's copy (with the private key) and the others' pad to the same
 * length, even with the largest field values: the server cannot tell from
 * the ciphertext lengths which device got the key (docs/protocol.md). */
static void test_copies_pad_alike(void **state)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__AccountKeyTransfer t =
        SOTTO__CONTENT__SYNC_MESSAGE__ACCOUNT_KEY_TRANSFER__INIT;
    uint8_t priv[SOTTO_PRIVATE_KEY_BYTES], pub[SOTTO_PUBLIC_KEY_BYTES], buf[256];
    uint8_t *padded = NULL;
    size_t without, with, plen = 0;
    (void)state;

    memset(priv, 0xff, sizeof priv);
    memset(pub, 0xff, sizeof pub);
    t.target_device_id = UINT32_MAX;
    t.last_device_id = UINT32_MAX;
    t.account_public_key.data = pub;
    t.account_public_key.len = sizeof pub;
    sync.account_key_transfer = &t;
    ct.timestamp = UINT64_MAX;
    ct.sync = &sync;
    without = sotto__content__content__get_packed_size(&ct);
    t.account_private_key.data = priv;
    t.account_private_key.len = sizeof priv;
    with = sotto__content__content__get_packed_size(&ct);
    assert_true(with > without);
    assert_true(with <= sizeof buf);
    sotto__content__content__pack(&ct, buf);
    assert_int_equal(sc_pad(buf, with, &padded, &plen), SC_OK);
    assert_int_equal(plen, 160);
    free(padded);
    assert_int_equal(sc_pad(buf, without, &padded, &plen), SC_OK);
    assert_int_equal(plen, 160);
    free(padded);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-promote-XXXXXX");
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
        cmocka_unit_test(test_hostile_transfers),
        cmocka_unit_test(test_transfer_and_confirmation),
        cmocka_unit_test(test_confirmation_without_transfer),
        cmocka_unit_test(test_copies_pad_alike),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
