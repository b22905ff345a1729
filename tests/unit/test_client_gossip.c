/*
 * tests/unit/test_client_gossip.c -- key-transparency gossip
 * (client/core/gossip.c, docs/protocol.md "Gossip") without a server:
 * the decision on a received head, the check of a consistency answer
 * against real RFC 9162 proofs, when our head is attached to outgoing
 * content, and what a received head does to the receiver's store
 * (equivocation alert and evidence, heads ignored, heads kept for later
 * when the server cannot be asked, the pending cap).
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
#include "sotto/kt.h"
#include "sotto/merkle.h"

static char tmpdir[64];

/* ------------------------------------------------------------ helpers */

static void leaves_make(uint8_t (*l)[32], size_t n, uint8_t tag)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t data[2] = {tag, (uint8_t)i};
        assert_int_equal(sotto_merkle_leaf_hash(l[i], data, sizeof data), SOTTO_OK);
    }
}

static void head_of(sotto_kt_tree_head *h, const uint8_t (*l)[32], uint64_t size, uint64_t ts)
{
    memset(h, 0, sizeof *h);
    h->size = size;
    h->timestamp_ms = ts;
    assert_int_equal(sotto_merkle_root(l, size, h->root), SOTTO_OK);
}

/* Encoded consistency path from size1 to size2 over leaves l. */
static size_t proof_of(const uint8_t (*l)[32], uint64_t size1, uint64_t size2, uint8_t *out,
                       size_t cap)
{
    uint8_t path[SOTTO_MERKLE_MAX_PROOF][32];
    size_t path_len = 0, len = 0;

    assert_int_equal(sotto_merkle_prove_consistency(l, size2, size1, path, &path_len), SOTTO_OK);
    assert_int_equal(
        sotto_merkle_proof_encode((const uint8_t(*)[32])path, path_len, out, cap, &len), SOTTO_OK);
    return len;
}

/* ------------------------------------------------------------ pure logic */

static void test_compare(void **state)
{
    uint8_t l[8][32], f[8][32];
    sotto_kt_tree_head a, b;
    (void)state;

    leaves_make(l, 8, 1);
    leaves_make(f, 8, 2);
    head_of(&a, (const uint8_t(*)[32])l, 5, 1000);
    head_of(&b, (const uint8_t(*)[32])l, 5, 2000); /* re-signed later: same log */
    assert_int_equal(sc_gossip_compare(&a, &b), SC_GOSSIP_SAME);
    head_of(&b, (const uint8_t(*)[32])f, 5, 1000); /* same size, another log */
    assert_int_equal(sc_gossip_compare(&a, &b), SC_GOSSIP_FORK);
    assert_int_equal(sc_gossip_compare(&b, &a), SC_GOSSIP_FORK);
    head_of(&b, (const uint8_t(*)[32])l, 6, 1000);
    assert_int_equal(sc_gossip_compare(&a, &b), SC_GOSSIP_CHECK);
    assert_int_equal(sc_gossip_compare(&b, &a), SC_GOSSIP_CHECK);
    head_of(&b, (const uint8_t(*)[32])f, 3, 1000);
    assert_int_equal(sc_gossip_compare(&a, &b), SC_GOSSIP_CHECK);
}

static void test_check_answer(void **state)
{
    uint8_t l[16][32], f[16][32];
    uint8_t proof[SOTTO_MERKLE_PROOF_MAX_BYTES];
    sotto_kt_tree_head h4, h7, h7b, fork5, real5;
    const char *why = NULL;
    size_t plen;
    (void)state;

    leaves_make(l, 16, 1);
    memcpy(f, l, sizeof f);
    leaves_make(f + 4, 1, 9); /* a fork: leaf 4 differs */
    head_of(&h4, (const uint8_t(*)[32])l, 4, 1000);
    head_of(&h7, (const uint8_t(*)[32])l, 7, 2000);
    head_of(&h7b, (const uint8_t(*)[32])l, 7, 500); /* older timestamp: not our business */
    head_of(&fork5, (const uint8_t(*)[32])f, 5, 1500);
    head_of(&real5, (const uint8_t(*)[32])l, 5, 1500);

    /* an honest answer verifies, in either order of the heads */
    plen = proof_of((const uint8_t(*)[32])l, 4, 7, proof, sizeof proof);
    assert_int_equal(sc_gossip_check_answer(&h4, &h7, h4.root, h7.root, proof, plen, &why),
                     SOTTO_OK);
    assert_int_equal(sc_gossip_check_answer(&h7, &h4, h4.root, h7.root, proof, plen, NULL),
                     SOTTO_OK);
    assert_int_equal(sc_gossip_check_answer(&h4, &h7b, h4.root, h7.root, proof, plen, NULL),
                     SOTTO_OK);
    /* roots that are not the signed ones */
    assert_int_equal(sc_gossip_check_answer(&h4, &h7, h7.root, h7.root, proof, plen, &why),
                     SOTTO_ERR_PROOF_INVALID);
    assert_non_null(strstr(why, "smaller size"));
    assert_int_equal(sc_gossip_check_answer(&h4, &h7, h4.root, h4.root, proof, plen, &why),
                     SOTTO_ERR_PROOF_INVALID);
    assert_non_null(strstr(why, "larger size"));
    /* a damaged path, a missing path, a path with trailing bytes */
    proof[1] ^= 1;
    assert_int_equal(sc_gossip_check_answer(&h4, &h7, h4.root, h7.root, proof, plen, &why),
                     SOTTO_ERR_PROOF_INVALID);
    proof[1] ^= 1;
    assert_int_equal(sc_gossip_check_answer(&h4, &h7, h4.root, h7.root, NULL, 0, &why),
                     SOTTO_ERR_PROOF_INVALID);
    assert_int_equal(sc_gossip_check_answer(&h4, &h7, h4.root, h7.root, proof, plen + 1, &why),
                     SOTTO_ERR_PROOF_INVALID);

    /* the fork scenario: alice was shown a 5-entry log whose last leaf
     * differs; carol holds the real 7-entry head. The real server's root
     * at 5 is not alice's root ... */
    plen = proof_of((const uint8_t(*)[32])l, 5, 7, proof, sizeof proof);
    assert_int_equal(sc_gossip_check_answer(&h7, &fork5, real5.root, h7.root, proof, plen, &why),
                     SOTTO_ERR_PROOF_INVALID);
    assert_non_null(strstr(why, "smaller size"));
    /* ... and a server that answers with alice's root cannot make the real
     * path (or the fork's own path) prove it */
    assert_int_equal(sc_gossip_check_answer(&h7, &fork5, fork5.root, h7.root, proof, plen, &why),
                     SOTTO_ERR_PROOF_INVALID);
    assert_non_null(strstr(why, "does not verify"));
    plen = proof_of((const uint8_t(*)[32])f, 5, 7, proof, sizeof proof);
    assert_int_equal(sc_gossip_check_answer(&h7, &fork5, fork5.root, h7.root, proof, plen, &why),
                     SOTTO_ERR_PROOF_INVALID);
    /* the honest version of the same sizes verifies */
    plen = proof_of((const uint8_t(*)[32])l, 5, 7, proof, sizeof proof);
    assert_int_equal(sc_gossip_check_answer(&h7, &real5, real5.root, h7.root, proof, plen, &why),
                     SOTTO_OK);

    /* equal sizes (no head held: the server's root at that size) */
    assert_int_equal(sc_gossip_check_answer(&h7, &h7, h7.root, h7.root, NULL, 0, &why), SOTTO_OK);
    proof[0] = 0;
    assert_int_equal(sc_gossip_check_answer(&h7, &h7, h7.root, h7.root, proof, 1, &why), SOTTO_OK);
    assert_int_equal(sc_gossip_check_answer(&fork5, &fork5, real5.root, real5.root, NULL, 0, &why),
                     SOTTO_ERR_PROOF_INVALID);
    assert_int_equal(sc_gossip_check_answer(&fork5, &real5, fork5.root, fork5.root, NULL, 0, &why),
                     SOTTO_ERR_PROOF_INVALID);
}

/* ------------------------------------------------------------ with a store */

static uint8_t server_sk[64], server_pk[32];

static sc_client *open_account(const char *name)
{
    sc_options o;
    sc_client *c = NULL;
    char err[256], hex[65], vrf_hex[65];
    uint8_t vrf[32];
    sotto_key_pair id;
    uint32_t regid;

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
    /* the server's KT keys, pinned (as at register) */
    sc_hex(server_pk, 32, hex);
    randombytes_buf(vrf, sizeof vrf);
    sc_hex(vrf, 32, vrf_hex);
    assert_int_equal(sc_cfg_set_text(c, "kt_server_key", hex), SC_OK);
    assert_int_equal(sc_cfg_set_text(c, "kt_vrf_key", vrf_hex), SC_OK);
    sc_close(c);
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_non_null(c->username);
    return c;
}

/* A server-signed audited head (no countersignature) of leaves l[0..size)
 * in wire bytes; signed with sk (NULL: the server's). */
static size_t signed_head(const uint8_t (*l)[32], uint64_t size, const uint8_t *sk, uint8_t *out)
{
    sotto_kt_audited_head ah;
    size_t len = 0;

    memset(&ah, 0, sizeof ah);
    head_of(&ah.head, l, size, sc_now_ms());
    assert_int_equal(sotto_kt_head_sign(&ah.head, sk ? sk : server_sk), SOTTO_OK);
    assert_int_equal(sotto_kt_audited_head_encode(&ah, out, SOTTO_KT_AUDITED_HEAD_MAX_BYTES, &len),
                     SOTTO_OK);
    return len;
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

/* The kt_head of the queued row for dest with timestamp ts (length into
 * *len, bytes into out). */
static void queued_head(sc_client *c, const char *dest, uint64_t ts, uint8_t *out, size_t *len)
{
    int64_t last = 0;
    sc_out_row row;

    *len = SIZE_MAX;
    for (;;) {
        memset(&row, 0, sizeof row);
        assert_int_equal(sc_out_next(c, last, &row), SC_OK);
        last = row.id;
        if (strcmp(row.destination, dest) == 0 && row.timestamp == ts) {
            Sotto__Content__Content *ct =
                sotto__content__content__unpack(NULL, row.len, row.content);
            assert_non_null(ct);
            *len = ct->kt_head.len;
            if (ct->kt_head.len)
                memcpy(out, ct->kt_head.data, ct->kt_head.len);
            sotto__content__content__free_unpacked(ct, NULL);
            sc_out_row_clear(&row);
            return;
        }
        sc_out_row_clear(&row);
    }
}

static void enqueue(sc_client *c, const char *dest, uint64_t ts)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__NullMessage nm = SOTTO__CONTENT__NULL_MESSAGE__INIT;

    ct.timestamp = ts;
    ct.null_message = &nm;
    assert_int_equal(sc_enqueue_content(c, dest, &ct, 0), SC_OK);
    assert_null(ct.kt_head.data); /* the caller's Content is left as it was */
    assert_int_equal(ct.kt_head.len, 0);
}

static void test_attach(void **state)
{
    sc_client *a = open_account("galice");
    uint8_t l[8][32], head[SOTTO_KT_AUDITED_HEAD_MAX_BYTES], got[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    size_t hlen, glen;
    uint64_t last = 0;
    (void)state;

    leaves_make(l, 8, 1);
    /* no head held yet: nothing attached, nothing recorded */
    enqueue(a, "gbob", 10);
    queued_head(a, "gbob", 10, got, &glen);
    assert_int_equal(glen, 0);
    assert_int_equal(sc_kt_gossip_last_sent(a, "gbob", &last), SC_E_NOT_FOUND);

    hlen = signed_head((const uint8_t(*)[32])l, 5, NULL, head);
    assert_int_equal(sc_kt_head_set(a, head, hlen, sc_now_ms()), SC_OK);
    /* first message to a contact: the head rides along, the time is kept */
    enqueue(a, "gbob", 11);
    queued_head(a, "gbob", 11, got, &glen);
    assert_int_equal(glen, hlen);
    assert_memory_equal(got, head, hlen);
    assert_int_equal(sc_kt_gossip_last_sent(a, "gbob", &last), SC_OK);
    assert_true(last > 0 && last <= sc_now_ms());
    /* within the interval: not again */
    enqueue(a, "gbob", 12);
    queued_head(a, "gbob", 12, got, &glen);
    assert_int_equal(glen, 0);
    /* another contact (a group send queues one Content per member): yes */
    enqueue(a, "gcarol", 12);
    queued_head(a, "gcarol", 12, got, &glen);
    assert_int_equal(glen, hlen);
    /* our own other devices: never */
    enqueue(a, "galice", 13);
    queued_head(a, "galice", 13, got, &glen);
    assert_int_equal(glen, 0);
    assert_int_equal(sc_kt_gossip_last_sent(a, "galice", &last), SC_E_NOT_FOUND);
    /* the interval passed: again */
    assert_int_equal(sc_kt_gossip_set_last_sent(a, "gbob", sc_now_ms() - 3601 * 1000ull), SC_OK);
    enqueue(a, "gbob", 14);
    queued_head(a, "gbob", 14, got, &glen);
    assert_int_equal(glen, hlen);
    /* a configured interval: 0 attaches to every message */
    assert_int_equal(sc_cfg_set_u64(a, "kt_gossip_interval_s", 0), SC_OK);
    enqueue(a, "gbob", 15);
    queued_head(a, "gbob", 15, got, &glen);
    assert_int_equal(glen, hlen);
    /* a rolled-back queueing records nothing either */
    assert_int_equal(sc_cfg_set_u64(a, "kt_gossip_interval_s", 3600), SC_OK);
    assert_int_equal(sc_db_begin(a), SC_OK);
    enqueue(a, "gdave", 16);
    sc_db_rollback(a);
    assert_int_equal(sc_kt_gossip_last_sent(a, "gdave", &last), SC_E_NOT_FOUND);
    sc_close(a);
}

/* Gives carol a Content from alice carrying kt_head (head, len) through the
 * receive path (sc_process_envelope), as if alice's device had sent it. */
static uint32_t spk_id = 1;
static void make_session(sc_client *s, sc_client *r)
{
    sotto_key_pair rid;
    uint32_t regid;
    sotto_signed_prekey spk;
    sotto_prekey pk;
    sotto_prekey_bundle b;
    sotto_address a = {r->username, strlen(r->username), 1};

    assert_int_equal(sotto_sqlite_store_get_local_identity(r->store, &rid, &regid), SOTTO_OK);
    assert_int_equal(sotto_signed_prekey_generate(&spk, &rid, spk_id++, 1), SOTTO_OK);
    assert_int_equal(r->ps.signed_prekey.store(r->ps.signed_prekey.user_data, &spk), SOTTO_OK);
    assert_int_equal(sotto_prekeys_generate(&pk, spk_id * 10, 1), SOTTO_OK);
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

static void noop(void *ud, const sc_event *ev)
{
    (void)ev;
    ++*(int *)ud;
}

static void deliver(sc_client *s, sc_client *r, uint8_t *head, size_t len)
{
    static uint64_t ts = 1000;
    static uint8_t env = 1;
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    sotto_address a = {r->username, strlen(r->username), 1};
    sc_envelope e = {0};
    uint8_t *buf, *padded = NULL, *msg = NULL;
    size_t n, plen = 0, mlen = 0;
    int type = 0, shown = 0;

    dm.body = "hi";
    ct.timestamp = ++ts;
    ct.data = &dm;
    ct.kt_head.data = head;
    ct.kt_head.len = len;
    n = sotto__content__content__get_packed_size(&ct);
    buf = malloc(n);
    assert_non_null(buf);
    sotto__content__content__pack(&ct, buf);
    assert_int_equal(sc_pad(buf, n, &padded, &plen), SC_OK);
    assert_int_equal(sotto_session_encrypt(&s->ps, &a, padded, plen, &msg, &mlen, &type), SOTTO_OK);
    memset(e.id, env++, sizeof e.id);
    e.id_len = sizeof e.id;
    snprintf(e.source, sizeof e.source, "%s", s->username);
    e.source_device = 1;
    e.type = (uint32_t)type;
    e.body = msg;
    e.body_len = mlen;
    e.server_ts = ts;
    /* the message is stored and shown whatever its head says */
    assert_int_equal(sc_process_envelope(r, &e, false, noop, &shown), SC_OK);
    assert_int_equal(shown, 1);
    free(buf);
    free(padded);
    free(msg);
}

static size_t evidence(sc_client *c)
{
    size_t n = 99;
    assert_int_equal(sc_kt_evidence_count(c, &n), SC_OK);
    return n;
}

static void test_receive(void **state)
{
    sc_client *alice = open_account("ralice"), *carol = open_account("rcarol");
    uint8_t l[80][32], f[80][32], other_sk[64], other_pk[32];
    uint8_t ours[SOTTO_KT_AUDITED_HEAD_MAX_BYTES], h[SOTTO_KT_AUDITED_HEAD_MAX_BYTES + 8];
    size_t olen, hlen;
    sc_kt_evidence *ev = NULL;
    size_t n_ev = 0;
    (void)state;

    make_session(alice, carol);
    leaves_make(l, 80, 1);
    memcpy(f, l, sizeof f);
    leaves_make(f + 5, 1, 7); /* the fork's extra leaf */
    olen = signed_head((const uint8_t(*)[32])l, 6, NULL, ours);
    assert_int_equal(sc_kt_head_set(carol, ours, olen, sc_now_ms()), SC_OK);

    /* carol's own head back: nothing */
    deliver(alice, carol, ours, olen);
    assert_int_equal(evidence(carol), 0);
    /* garbage, too large, or signed by another key (a contact on another
     * server): ignored, no alert */
    memset(h, 0xA5, sizeof h);
    deliver(alice, carol, h, 50);
    deliver(alice, carol, h, sizeof h);
    crypto_sign_keypair(other_pk, other_sk);
    hlen = signed_head((const uint8_t(*)[32])f, 6, other_sk, h);
    deliver(alice, carol, h, hlen);
    assert_int_equal(evidence(carol), 0);
    assert_int_equal(count(carol, "SELECT count(*) FROM kt_gossip_pending"), 0);
    assert_int_equal(count(carol, "SELECT count(*) FROM client_messages WHERE kind = 'notice'"), 0);

    /* the same size with another root, both signed by our server:
     * equivocation, an alert in alice's conversation, both heads kept */
    hlen = signed_head((const uint8_t(*)[32])f, 6, NULL, h);
    deliver(alice, carol, h, hlen);
    assert_int_equal(evidence(carol), 1);
    assert_int_equal(sc_kt_evidence_list(carol, &ev, &n_ev), SC_OK);
    assert_int_equal(n_ev, 1);
    assert_string_equal(ev[0].kind, "equivocation");
    assert_non_null(strstr(ev[0].text, "the server showed ralice a different key directory"));
    assert_int_equal(ev[0].head_a_len, olen);
    assert_memory_equal(ev[0].head_a, ours, olen);
    assert_int_equal(ev[0].head_b_len, hlen);
    assert_memory_equal(ev[0].head_b, h, hlen);
    sc_kt_evidence_list_free(ev, n_ev);
    assert_int_equal(count(carol, "SELECT count(*) FROM client_messages WHERE kind = 'notice'"
                                  " AND conv = 'ralice' AND extra LIKE '%kt_equivocation%'"
                                  " AND body LIKE '%6 entries%'"),
                     1);
    /* the same head again (after the interval): no second alert */
    deliver(alice, carol, h, hlen);
    assert_int_equal(evidence(carol), 1);
    /* every message was stored */
    assert_int_equal(count(carol, "SELECT count(*) FROM client_messages WHERE kind = 'text'"), 6);

    /* another size: a consistency proof is needed, the server cannot be
     * reached: kept for later (once), nothing alerted */
    hlen = signed_head((const uint8_t(*)[32])l, 9, NULL, h);
    deliver(alice, carol, h, hlen);
    deliver(alice, carol, h, hlen);
    assert_int_equal(count(carol, "SELECT count(*) FROM kt_gossip_pending"), 1);
    assert_int_equal(evidence(carol), 1);
    assert_int_equal(sc_gossip_retry_pending(carol), SC_E_NETWORK);
    assert_int_equal(count(carol, "SELECT count(*) FROM kt_gossip_pending"), 1);
    /* the queue is capped: the oldest go */
    for (uint64_t s = 10; s < 80; s++) {
        hlen = signed_head((const uint8_t(*)[32])l, s, NULL, h);
        assert_int_equal(sc_gossip_receive(carol, "ralice", h, hlen), SC_OK);
    }
    assert_int_equal(count(carol, "SELECT count(*) FROM kt_gossip_pending"), SC_GOSSIP_PENDING_MAX);
    {
        sc_kt_gossip_pending *p = NULL;
        size_t n = 0;
        sotto_kt_audited_head first, lastone;
        assert_int_equal(sc_kt_gossip_pending_list(carol, &p, &n), SC_OK);
        assert_int_equal(n, SC_GOSSIP_PENDING_MAX);
        assert_int_equal(sotto_kt_audited_head_parse(p[0].head, p[0].head_len, &first), SOTTO_OK);
        assert_int_equal(sotto_kt_audited_head_parse(p[n - 1].head, p[n - 1].head_len, &lastone),
                         SOTTO_OK);
        assert_int_equal(first.head.size, 80 - SC_GOSSIP_PENDING_MAX);
        assert_int_equal(lastone.head.size, 79);
        assert_string_equal(p[0].contact, "ralice");
        sc_kt_gossip_pending_free(p, n);
    }
    sc_close(alice);
    sc_close(carol);
}

/* The server signature of a gossiped head is what makes it evidence: a
 * well-formed head signed by ANOTHER key (a contact on another server, or
 * a contact who forges one) is dropped before any comparison -- whatever
 * its size and root, with or without a head of our own -- while the very
 * same tree signed by our pinned server key is an equivocation. */
static void test_receive_foreign_key(void **state)
{
    sc_client *alice = open_account("falice"), *carol = open_account("fcarol");
    sc_client *dave = open_account("fdave");
    uint8_t l[16][32], f[16][32], other_sk[64], other_pk[32];
    uint8_t ours[SOTTO_KT_AUDITED_HEAD_MAX_BYTES], h[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    sotto_kt_audited_head parsed;
    size_t olen, hlen;
    (void)state;

    make_session(alice, carol);
    make_session(alice, dave);
    leaves_make(l, 16, 3);
    memcpy(f, l, sizeof f);
    leaves_make(f + 6, 1, 8); /* a fork at the last leaf of size 7 */
    olen = signed_head((const uint8_t(*)[32])l, 7, NULL, ours);
    assert_int_equal(sc_kt_head_set(carol, ours, olen, sc_now_ms()), SC_OK);
    crypto_sign_keypair(other_pk, other_sk);

    /* same size, another root, a valid form, signed by another key: no
     * alert, no evidence, nothing kept to check later */
    hlen = signed_head((const uint8_t(*)[32])f, 7, other_sk, h);
    assert_int_equal(sotto_kt_audited_head_parse(h, hlen, &parsed), SOTTO_OK);
    assert_int_equal(sotto_kt_head_verify(&parsed.head, other_pk), SOTTO_OK);
    assert_int_not_equal(sotto_kt_head_verify(&parsed.head, server_pk), SOTTO_OK);
    deliver(alice, carol, h, hlen);
    assert_int_equal(evidence(carol), 0);
    assert_int_equal(count(carol, "SELECT count(*) FROM client_messages WHERE kind = 'notice'"), 0);
    assert_int_equal(count(carol, "SELECT count(*) FROM kt_gossip_pending"), 0);
    /* another size signed by another key: not even a consistency check
     * (it would wait in kt_gossip_pending: the server cannot be reached) */
    hlen = signed_head((const uint8_t(*)[32])f, 9, other_sk, h);
    deliver(alice, carol, h, hlen);
    assert_int_equal(count(carol, "SELECT count(*) FROM kt_gossip_pending"), 0);
    /* dave holds no head: a foreign head is not checked against the
     * server either */
    hlen = signed_head((const uint8_t(*)[32])f, 7, other_sk, h);
    deliver(alice, dave, h, hlen);
    assert_int_equal(count(dave, "SELECT count(*) FROM kt_gossip_pending"), 0);
    assert_int_equal(evidence(dave), 0);
    /* the control: the same forked tree signed by our server is an alert */
    hlen = signed_head((const uint8_t(*)[32])f, 7, NULL, h);
    deliver(alice, carol, h, hlen);
    assert_int_equal(evidence(carol), 1);
    assert_int_equal(count(carol, "SELECT count(*) FROM client_messages WHERE kind = 'notice'"
                                  " AND extra LIKE '%kt_equivocation%'"),
                     1);
    sc_close(alice);
    sc_close(carol);
    sc_close(dave);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0 || sotto_init() != SOTTO_OK)
        return -1;
    crypto_sign_keypair(server_pk, server_sk);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-gossip-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_check_answer),
        cmocka_unit_test(test_attach),
        cmocka_unit_test(test_receive),
        cmocka_unit_test(test_receive_foreign_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
