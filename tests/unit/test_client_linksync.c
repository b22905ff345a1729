/*
 * tests/unit/test_client_linksync.c -- the receiving side of linked-device
 * sync (client/core/linksync.c) without a server: two devices of one
 * account ("alice" device 1, the primary, and device 2) with real Signal
 * sessions between them; crafted SyncMessage.link_sync parts handed to
 * sc_process_envelope() (the sender check against the signed list is
 * sc_accept_envelope's, tested end to end in tests/e2e/e2e_link_sync.sh).
 *
 *  - a sync in two parts delivered last part first: everything is applied,
 *    one notice "synced from device 1: ..." once both are in, not before;
 *  - the same parts again (new envelopes, same sync id), and a whole new
 *    sync of the same data: nothing changes, no notice;
 *  - a key this device pinned itself wins over the synced one (notice
 *    device_sync_conflict; not verified); a pending key is carried over;
 *  - a part for another device, or from this device itself, is ignored;
 *  - malformed items (names, group ids, kinds) are skipped, the rest is
 *    applied.
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

typedef Sotto__Content__SyncMessage__LinkSync LinkSync;
typedef Sotto__Content__SyncMessage__LinkSync__Contact LsContact;
typedef Sotto__Content__SyncMessage__LinkSync__Group LsGroup;
typedef Sotto__Content__SyncMessage__LinkSync__HistoryRow LsRow;

static char tmpdir[256];
static uint32_t next_id = 1;
static uint8_t next_env = 1;

typedef struct events {
    int n;
    int synced; /* device_synced notices */
    int conflicts;
    char body[512]; /* of the last device_synced notice */
} events;

static void collect(void *ud, const sc_event *ev)
{
    events *e = ud;
    e->n++;
    if (ev->notice && strcmp(ev->notice, "device_synced") == 0) {
        e->synced++;
        snprintf(e->body, sizeof e->body, "%.*s", (int)ev->body_len, ev->body);
    }
    if (ev->notice && strcmp(ev->notice, "device_sync_conflict") == 0)
        e->conflicts++;
}

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
    assert_int_equal(sc_cfg_set_text(c, "username", "alice"), SC_OK);
    assert_int_equal(sc_cfg_set_u64(c, "device_id", device_id), SC_OK);
    assert_int_equal(sc_cfg_set_text(c, "server_url", "https://127.0.0.1:1"), SC_OK);
    assert_int_equal(sc_cfg_set_blob(c, "account_pk", acct->pub.bytes, SOTTO_PUBLIC_KEY_BYTES),
                     SC_OK);
    if (primary)
        assert_int_equal(sc_cfg_set_blob(c, "account_sk", acct->priv, sizeof acct->priv), SC_OK);
    sc_close(c);
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_non_null(c->username);
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

/* Encrypts ct from s to r and hands r the envelope as coming from device
 * `claimed` of s's account. */
static int deliver(sc_client *s, sc_client *r, uint32_t claimed, const Sotto__Content__Content *ct,
                   events *ev)
{
    sc_envelope e = {0};
    sotto_address a = {r->username, strlen(r->username), r->device_id};
    size_t n = sotto__content__content__get_packed_size(ct);
    uint8_t *buf = malloc(n + 1), *padded = NULL, *msg = NULL;
    size_t plen = 0, mlen = 0;
    int type = 0, rc;

    assert_non_null(buf);
    sotto__content__content__pack(ct, buf);
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
    free(buf);
    free(padded);
    free(msg);
    return rc;
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

/* The items of the test sync: bob (key kb, verified), carol (key kc,
 * pending key kp), one group, three history rows. */
typedef struct items {
    sotto_key_pair kb, kc, kp;
    uint8_t gid[SC_GROUP_ID_BYTES];
    char gid_hex[33];
    char *members[3];
    LsContact c[2];
    LsContact *cp[2];
    LsGroup g;
    LsGroup *gp[1];
    LsRow h[3];
    LsRow *hp[3];
} items;

static void items_make(items *it)
{
    assert_int_equal(sotto_identity_key_pair_generate(&it->kb), SOTTO_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&it->kc), SOTTO_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&it->kp), SOTTO_OK);
    for (size_t i = 0; i < sizeof it->gid; i++)
        it->gid[i] = (uint8_t)(0x10 + i);
    sc_hex(it->gid, sizeof it->gid, it->gid_hex);
    it->members[0] = "alice";
    it->members[1] = "bob";
    it->members[2] = "carol";
    for (int i = 0; i < 2; i++) {
        sotto__content__sync_message__link_sync__contact__init(&it->c[i]);
        it->cp[i] = &it->c[i];
        it->c[i].account_key.len = SOTTO_PUBLIC_KEY_BYTES;
    }
    it->c[0].name = "bob";
    it->c[0].account_key.data = it->kb.pub.bytes;
    it->c[0].verified = true;
    it->c[1].name = "carol";
    it->c[1].account_key.data = it->kc.pub.bytes;
    it->c[1].pending_account_key.data = it->kp.pub.bytes;
    it->c[1].pending_account_key.len = SOTTO_PUBLIC_KEY_BYTES;
    sotto__content__sync_message__link_sync__group__init(&it->g);
    it->g.id.data = it->gid;
    it->g.id.len = sizeof it->gid;
    it->g.name = "friends";
    it->g.members = it->members;
    it->g.n_members = 3;
    it->g.active = true;
    it->gp[0] = &it->g;
    for (int i = 0; i < 3; i++) {
        sotto__content__sync_message__link_sync__history_row__init(&it->h[i]);
        it->hp[i] = &it->h[i];
        it->h[i].conv_kind = "group";
        it->h[i].conv = it->gid_hex;
        it->h[i].kind = "text";
        it->h[i].timestamp = 1796000000000ull + (uint64_t)i;
        it->h[i].server_ts = 1796000000100ull + (uint64_t)i;
        it->h[i].sender_device = 1;
    }
    it->h[0].sender = "alice";
    it->h[0].direction = 1;
    it->h[0].body = "m1 from alice";
    it->h[1].sender = "bob";
    it->h[1].body = "m2 from bob";
    it->h[2].sender = "carol";
    it->h[2].body = "m3 from carol";
}

static void items_free(items *it)
{
    sotto_key_pair_wipe(&it->kb);
    sotto_key_pair_wipe(&it->kc);
    sotto_key_pair_wipe(&it->kp);
}

/* One part of sync `id` from device `from` (claimed) for device `target`. */
static int send_part(pair *p, uint32_t from, uint32_t target, uint64_t id, uint32_t seq,
                     uint32_t total, LsContact **c, size_t nc, LsGroup **g, size_t ng, LsRow **h,
                     size_t nh, events *ev)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    LinkSync ls = SOTTO__CONTENT__SYNC_MESSAGE__LINK_SYNC__INIT;

    ls.target_device_id = target;
    ls.sync_id = id;
    ls.sequence = seq;
    ls.total = total;
    ls.history_days = 30;
    ls.contacts = c;
    ls.n_contacts = nc;
    ls.groups = g;
    ls.n_groups = ng;
    ls.history = h;
    ls.n_history = nh;
    sync.link_sync = &ls;
    ct.timestamp = id + seq;
    ct.sync = &sync;
    return deliver(p->d1, p->d2, from, &ct, ev);
}

/* The whole test sync as two parts, last part first. */
static void send_both(pair *p, items *it, uint64_t id, events *e2, events *e1)
{
    assert_int_equal(send_part(p, 1, 2, id, 2, 2, NULL, 0, it->gp, 1, it->hp, 3, e2), SC_OK);
    assert_int_equal(send_part(p, 1, 2, id, 1, 2, it->cp, 2, NULL, 0, NULL, 0, e1), SC_OK);
}

static void test_two_parts_then_replays(void **state)
{
    pair p;
    items it;
    events e1, e2;
    sc_account_row row;
    (void)state;

    pair_open(&p, "t1", "t2");
    items_make(&it);
    send_both(&p, &it, 1796000005000ull, &e2, &e1);
    /* the notice only once both parts are in */
    assert_int_equal(e2.synced, 0);
    assert_int_equal(e1.synced, 1);
    assert_string_equal(e1.body, "synced from device 1: 2 contacts, 1 group, 3 messages");
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_contacts"), 2);
    assert_int_equal(count(p.d2, "SELECT verified FROM client_contacts WHERE name = 'bob'"), 1);
    assert_int_equal(count(p.d2, "SELECT verified FROM client_contacts WHERE name = 'carol'"), 0);
    assert_int_equal(sc_account_get(p.d2, "bob", &row), SC_OK);
    assert_true(row.has_key);
    assert_memory_equal(row.account_key, it.kb.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_false(row.has_pending);
    sc_account_row_clear(&row);
    assert_int_equal(sc_account_get(p.d2, "carol", &row), SC_OK);
    assert_memory_equal(row.account_key, it.kc.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_true(row.has_pending);
    assert_memory_equal(row.pending_key, it.kp.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    sc_account_row_clear(&row);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_group_members"), 3);
    assert_int_equal(count(p.d2, "SELECT active FROM client_groups WHERE name = 'friends'"), 1);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_messages WHERE kind = 'text'"), 3);
    assert_int_equal(
        count(p.d2, "SELECT direction FROM client_messages WHERE body = 'm1 from alice'"), 1);
    /* nothing about the sync is left but its done marker */
    assert_int_equal(
        count(p.d2, "SELECT count(*) FROM client_config WHERE key LIKE 'link_sync_rx:%'"), 0);

    /* the same parts again, in new envelopes: nothing changes, no notice */
    send_both(&p, &it, 1796000005000ull, &e2, &e1);
    assert_int_equal(e1.n + e2.n, 0);
    /* a new sync of the same data: nothing new, no notice */
    send_both(&p, &it, 1796000009000ull, &e2, &e1);
    assert_int_equal(e1.n + e2.n, 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_messages"), 4); /* + 1 notice */
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_contacts"), 2);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_groups"), 1);
    items_free(&it);
    pair_close(&p);
}

static void test_own_pin_wins(void **state)
{
    pair p;
    items it;
    events ev;
    sotto_key_pair mine;
    sc_account_row row;
    (void)state;

    pair_open(&p, "w1", "w2");
    items_make(&it);
    /* device 2 pinned another key for bob itself (and knows the group with
     * another name: its copy is kept) */
    assert_int_equal(sotto_identity_key_pair_generate(&mine), SOTTO_OK);
    assert_int_equal(sc_account_pin(p.d2, "bob", mine.pub.bytes), SC_OK);
    assert_int_equal(sc_contact_touch(p.d2, "bob", 0), SC_OK);
    assert_int_equal(sc_group_upsert(p.d2, it.gid, "ours", true), SC_OK);
    assert_int_equal(send_part(&p, 1, 2, 1796000007000ull, 1, 1, it.cp, 2, it.gp, 1, NULL, 0, &ev),
                     SC_OK);
    assert_int_equal(ev.conflicts, 1);
    assert_int_equal(ev.synced, 1);
    /* carol is new; bob's contact row existed and was not verified: the
     * synced verification is for another key */
    assert_string_equal(ev.body, "synced from device 1: 1 contact, 0 groups, 0 messages");
    assert_int_equal(sc_account_get(p.d2, "bob", &row), SC_OK);
    assert_memory_equal(row.account_key, mine.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_false(row.has_pending);
    sc_account_row_clear(&row);
    assert_int_equal(count(p.d2, "SELECT verified FROM client_contacts WHERE name = 'bob'"), 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_groups WHERE name = 'ours'"), 1);
    sotto_key_pair_wipe(&mine);
    items_free(&it);
    pair_close(&p);
}

static void test_not_for_us(void **state)
{
    pair p;
    items it;
    events ev;
    (void)state;

    pair_open(&p, "n1", "n2");
    items_make(&it);
    /* for device 3 */
    assert_int_equal(send_part(&p, 1, 3, 1796000001000ull, 1, 1, it.cp, 2, it.gp, 1, it.hp, 3, &ev),
                     SC_OK);
    assert_int_equal(ev.n, 0);
    /* claiming to come from device 2 itself (no session under that
     * address: at most an undecryptable notice) */
    assert_int_equal(send_part(&p, 2, 2, 1796000002000ull, 1, 1, it.cp, 2, it.gp, 1, it.hp, 3, &ev),
                     SC_OK);
    assert_int_equal(ev.synced, 0);
    /* sequence out of range */
    assert_int_equal(send_part(&p, 1, 2, 1796000003000ull, 3, 2, it.cp, 2, it.gp, 1, it.hp, 3, &ev),
                     SC_OK);
    assert_int_equal(ev.n, 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_contacts"), 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_groups"), 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_messages WHERE kind <> 'notice'"), 0);
    items_free(&it);
    pair_close(&p);
}

static void test_malformed_items(void **state)
{
    pair p;
    items it;
    events ev;
    (void)state;

    pair_open(&p, "m1", "m2");
    items_make(&it);
    it.c[0].name = "Bob!";          /* not a username */
    it.c[1].name = "alice";         /* ourselves */
    it.g.id.len = 15;               /* not a group id */
    it.h[0].conv = "not-hex";       /* a group conversation that is no id */
    it.h[1].kind = "notice";        /* notices are not synced */
    it.h[2].body = "m3 from carol"; /* the one good row */
    assert_int_equal(send_part(&p, 1, 2, 1796000004000ull, 1, 1, it.cp, 2, it.gp, 1, it.hp, 3, &ev),
                     SC_OK);
    assert_int_equal(ev.synced, 1);
    assert_string_equal(ev.body, "synced from device 1: 0 contacts, 0 groups, 1 message");
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_contacts"), 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_accounts"), 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_groups"), 0);
    assert_int_equal(count(p.d2, "SELECT count(*) FROM client_messages WHERE kind = 'text'"), 1);
    items_free(&it);
    pair_close(&p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-linksync-XXXXXX");
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
        cmocka_unit_test(test_two_parts_then_replays),
        cmocka_unit_test(test_own_pin_wins),
        cmocka_unit_test(test_not_for_us),
        cmocka_unit_test(test_malformed_items),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
