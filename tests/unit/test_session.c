/*
 * 1:1 sessions end to end through sotto/session.h and memory stores:
 * X3DH from bundles, ratcheting, out-of-order delivery, limits, eviction,
 * duplicates, transactional failure on every kind of bad input, prekey
 * handling, session reset and simultaneous initiation
 * (spec signal-protocol.md 2.2-2.6 and the scenario list of section 7).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/pb.h"
#include "protocol/session_record.h"
#include "protocol/wire.h"
#include "test_session_store_helper.h"

/* ---------------------------------------------------------------------- */

static void msg_text(char *buf, size_t n, const char *who, int i)
{
    snprintf(buf, n, "%s message %d", who, i);
}

/* 10 each way, 10 alternating, 10 each way shuffled (libsignal's run_interaction). */
static void run_interaction(party *a, party *b)
{
    char t[64];
    wire_msg ms[10];

    for (int i = 0; i < 10; i++) {
        msg_text(t, sizeof t, "a->b", i);
        wire_msg m = party_encrypt(a, b, t);
        assert_int_equal(m.type, SOTTO_MSG_SIGNAL);
        assert_int_equal(party_decrypt(b, a, &m, t), SOTTO_OK);
        wire_free(&m);
    }
    for (int i = 0; i < 10; i++) {
        msg_text(t, sizeof t, "b->a", i);
        wire_msg m = party_encrypt(b, a, t);
        assert_int_equal(m.type, SOTTO_MSG_SIGNAL);
        assert_int_equal(party_decrypt(a, b, &m, t), SOTTO_OK);
        wire_free(&m);
    }
    for (int i = 0; i < 10; i++) {
        msg_text(t, sizeof t, "ping", i);
        wire_msg m = party_encrypt(a, b, t);
        assert_int_equal(party_decrypt(b, a, &m, t), SOTTO_OK);
        wire_free(&m);
        msg_text(t, sizeof t, "pong", i);
        m = party_encrypt(b, a, t);
        assert_int_equal(party_decrypt(a, b, &m, t), SOTTO_OK);
        wire_free(&m);
    }
    for (int dir = 0; dir < 2; dir++) {
        party *from = dir == 0 ? a : b, *to = dir == 0 ? b : a;
        for (int i = 0; i < 10; i++) {
            msg_text(t, sizeof t, "ooo", i);
            ms[i] = party_encrypt(from, to, t);
        }
        /* Remember the order by the counter embedded in the text. */
        int order[10];
        for (int i = 0; i < 10; i++)
            order[i] = i;
        for (int i = 9; i > 0; i--) {
            int j = (int)randombytes_uniform((uint32_t)i + 1);
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
            wire_msg tm = ms[i];
            ms[i] = ms[j];
            ms[j] = tm;
        }
        for (int i = 0; i < 10; i++) {
            msg_text(t, sizeof t, "ooo", order[i]);
            assert_int_equal(party_decrypt(to, from, &ms[i], t), SOTTO_OK);
            wire_free(&ms[i]);
        }
    }
}

/* The "session id" (alice_base_key) of the current state of owner's record. */
static void current_base_key(party *owner, party *peer, sotto_public_key *out)
{
    size_t len;
    uint8_t *raw = party_record(owner, peer, &len);
    assert_non_null(raw);
    sotto_session_record rec;
    sotto_session_record_init(&rec);
    assert_int_equal(sotto_session_record_decode(&rec, raw, len, true), SOTTO_OK);
    assert_true(rec.has_current);
    assert_true(rec.current.has_alice_base_key);
    *out = rec.current.alice_base_key;
    sotto_session_record_clear(&rec);
}

static bool same_session(party *a, party *b)
{
    sotto_public_key ka, kb;
    current_base_key(a, b, &ka);
    current_base_key(b, a, &kb);
    return memcmp(ka.bytes, kb.bytes, SOTTO_PUBLIC_KEY_BYTES) == 0;
}

/* Alice starts, sends a PreKey message, Bob replies: a confirmed session. */
static void establish(party *a, party *b, bool with_opk)
{
    party_start(a, b, with_opk);
    wire_msg m = party_encrypt(a, b, "hello bob");
    assert_int_equal(m.type, SOTTO_MSG_PREKEY);
    assert_int_equal(party_decrypt(b, a, &m, "hello bob"), SOTTO_OK);
    wire_free(&m);
    m = party_encrypt(b, a, "hello alice");
    assert_int_equal(m.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(party_decrypt(a, b, &m, "hello alice"), SOTTO_OK);
    wire_free(&m);
}

/* ---------------------------------------------------------------------- */

static void test_basic_prekey_session(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);

    sotto_prekey_bundle bundle;
    party_bundle(&b, true, &bundle);
    assert_int_equal(sotto_memory_store_prekey_count(b.ms), 1);
    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bundle), SOTTO_OK);

    bool exists = false;
    assert_int_equal(sotto_session_exists(a.ps, &b.addr, &exists), SOTTO_OK);
    assert_true(exists);
    uint32_t reg = 0;
    assert_int_equal(sotto_session_remote_registration_id(a.ps, &b.addr, &reg), SOTTO_OK);
    assert_int_equal(reg, b.registration_id);
    sotto_public_key rid;
    assert_int_equal(sotto_session_remote_identity(a.ps, &b.addr, &rid), SOTTO_OK);
    assert_memory_equal(rid.bytes, b.identity.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);

    /* Unacknowledged: every message is a PreKey message carrying our data. */
    wire_msg m1 = party_encrypt(&a, &b, "first");
    wire_msg m2 = party_encrypt(&a, &b, "second");
    assert_int_equal(m1.type, SOTTO_MSG_PREKEY);
    assert_int_equal(m2.type, SOTTO_MSG_PREKEY);
    sotto_prekey_message_info info;
    assert_int_equal(sotto_prekey_message_inspect(&info, m1.data, m1.len), SOTTO_OK);
    assert_true(info.has_prekey_id);
    assert_int_equal(info.prekey_id, bundle.prekey_id);
    assert_int_equal(info.signed_prekey_id, b.spk.id);
    assert_int_equal(info.registration_id, a.registration_id);
    assert_memory_equal(info.identity_key.bytes, a.identity.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);

    /* Bob has no session yet. */
    assert_int_equal(sotto_session_exists(b.ps, &a.addr, &exists), SOTTO_OK);
    assert_false(exists);

    assert_int_equal(party_decrypt(&b, &a, &m1, "first"), SOTTO_OK);
    /* One-time prekey consumed, identity saved, session stored. */
    assert_int_equal(sotto_memory_store_prekey_count(b.ms), 0);
    sotto_public_key saved;
    assert_int_equal(b.ps->identity.get(b.ps->identity.user_data, &a.addr, &saved), SOTTO_OK);
    assert_memory_equal(saved.bytes, a.identity.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_int_equal(sotto_session_remote_registration_id(b.ps, &a.addr, &reg), SOTTO_OK);
    assert_int_equal(reg, a.registration_id);
    /* Second PreKey message, same base key: decrypts with the existing state. */
    assert_int_equal(party_decrypt(&b, &a, &m2, "second"), SOTTO_OK);
    wire_free(&m1);
    wire_free(&m2);

    wire_msg r = party_encrypt(&b, &a, "reply");
    assert_int_equal(r.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    wire_free(&r);

    /* Acknowledged: plain SignalMessages from now on. */
    wire_msg m3 = party_encrypt(&a, &b, "third");
    assert_int_equal(m3.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(party_decrypt(&b, &a, &m3, "third"), SOTTO_OK);
    wire_free(&m3);

    /* Empty plaintext works too. */
    wire_msg e = party_encrypt(&a, &b, "");
    assert_int_equal(party_decrypt(&b, &a, &e, ""), SOTTO_OK);
    wire_free(&e);

    run_interaction(&a, &b);
    run_interaction(&b, &a);

    /* Delete: no session, encrypt says so. */
    assert_int_equal(sotto_session_delete(a.ps, &b.addr), SOTTO_OK);
    assert_int_equal(sotto_session_delete(a.ps, &b.addr), SOTTO_OK);
    assert_int_equal(sotto_session_exists(a.ps, &b.addr, &exists), SOTTO_OK);
    assert_false(exists);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int type = 0;
    assert_int_equal(
        sotto_session_encrypt(a.ps, &b.addr, (const uint8_t *)"x", 1, &out, &out_len, &type),
        SOTTO_ERR_NO_SESSION);
    assert_null(out);
    party_free(&a);
    party_free(&b);
}

/* previousCounter (spec 2.4 step 6): index of the last message sent on the
 * old sending chain, 0 when none was sent. The receiver never uses it, so
 * check it on the wire. */
static void test_previous_counter(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    establish(&a, &b, true);
    sotto_signal_message sm;
    /* Alice ratcheted on "hello alice" after sending 1 message (#0). */
    wire_msg m;
    for (int i = 0; i < 5; i++) {
        m = party_encrypt(&a, &b, "x");
        assert_int_equal(sotto_signal_message_decode(&sm, m.data, m.len), SOTTO_OK);
        assert_int_equal(sm.counter, (uint32_t)i);
        assert_int_equal(sm.previous_counter, 0);
        assert_int_equal(party_decrypt(&b, &a, &m, "x"), SOTTO_OK);
        wire_free(&m);
    }
    /* Bob sent #0 ("hello alice") on his first chain; after ratcheting on
     * Alice's new chain his new messages say previousCounter 0. */
    m = party_encrypt(&b, &a, "y");
    assert_int_equal(sotto_signal_message_decode(&sm, m.data, m.len), SOTTO_OK);
    assert_int_equal(sm.counter, 0);
    assert_int_equal(sm.previous_counter, 0);
    for (int i = 1; i < 3; i++) {
        wire_free(&m);
        m = party_encrypt(&b, &a, "y");
    }
    assert_int_equal(party_decrypt(&a, &b, &m, "y"), SOTTO_OK);
    wire_free(&m);
    /* Alice sent #0..#4 on the chain she now leaves. */
    m = party_encrypt(&a, &b, "z");
    assert_int_equal(sotto_signal_message_decode(&sm, m.data, m.len), SOTTO_OK);
    assert_int_equal(sm.counter, 0);
    assert_int_equal(sm.previous_counter, 4);
    assert_int_equal(party_decrypt(&b, &a, &m, "z"), SOTTO_OK);
    wire_free(&m);
    /* Bob sent #0..#2 on his chain. */
    m = party_encrypt(&b, &a, "w");
    assert_int_equal(sotto_signal_message_decode(&sm, m.data, m.len), SOTTO_OK);
    assert_int_equal(sm.previous_counter, 2);
    wire_free(&m);
    party_free(&a);
    party_free(&b);
}

/* Messages written by the session API have libsignal-protocol-c's exact
 * field layout (spec 1.3, 1.4): checked byte by byte on real output. */
static size_t varint_at(const uint8_t *p, uint64_t *v)
{
    size_t i = 0;
    *v = 0;
    do {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    } while (p[i++] & 0x80);
    return i;
}

static void check_signal_layout(const uint8_t *d, size_t len, uint32_t counter)
{
    uint64_t v;
    size_t i = 0;
    assert_int_equal(d[i++], 0x33);
    assert_int_equal(d[i++], 0x0a);
    assert_int_equal(d[i++], 0x21);
    assert_int_equal(d[i], 0x05);
    i += 33;
    assert_int_equal(d[i++], 0x10);
    i += varint_at(d + i, &v);
    assert_int_equal(v, counter);
    assert_int_equal(d[i++], 0x18);
    i += varint_at(d + i, &v);
    assert_int_equal(d[i++], 0x22);
    i += varint_at(d + i, &v);
    assert_int_equal(v % 16, 0);
    assert_int_equal(i + v + 8, len);
}

static void test_session_wire_layout(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, true);
    for (uint32_t k = 0; k < 3; k++) {
        wire_msg m = party_encrypt(&a, &b, "layout");
        assert_int_equal(m.type, SOTTO_MSG_PREKEY);
        uint64_t v;
        size_t i = 0;
        assert_int_equal(m.data[i++], 0x33);
        assert_int_equal(m.data[i++], 0x08); /* preKeyId */
        i += varint_at(m.data + i, &v);
        assert_int_equal(v, 100);
        assert_int_equal(m.data[i++], 0x12); /* baseKey */
        assert_int_equal(m.data[i++], 0x21);
        i += 33;
        assert_int_equal(m.data[i++], 0x1a); /* identityKey */
        assert_int_equal(m.data[i++], 0x21);
        assert_memory_equal(m.data + i, a.identity.pub.bytes, 33);
        i += 33;
        assert_int_equal(m.data[i++], 0x22); /* message */
        i += varint_at(m.data + i, &v);
        check_signal_layout(m.data + i, (size_t)v, k);
        i += (size_t)v;
        assert_int_equal(m.data[i++], 0x28); /* registrationId */
        i += varint_at(m.data + i, &v);
        assert_int_equal(v, a.registration_id);
        assert_int_equal(m.data[i++], 0x30); /* signedPreKeyId */
        i += varint_at(m.data + i, &v);
        assert_int_equal(v, b.spk.id);
        assert_int_equal(i, m.len);
        assert_int_equal(party_decrypt(&b, &a, &m, "layout"), SOTTO_OK);
        wire_free(&m);
    }
    wire_msg r = party_encrypt(&b, &a, "reply");
    check_signal_layout(r.data, r.len, 0);
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    wire_free(&r);
    for (uint32_t k = 0; k < 200; k++) {
        wire_msg m = party_encrypt(&a, &b, "seventeen bytes!!");
        assert_int_equal(m.type, SOTTO_MSG_SIGNAL);
        check_signal_layout(m.data, m.len, k);
        assert_int_equal(m.len, 1 + 35 + 1 + (k < 128 ? 1 : 2) + 2 + 2 + 32 + 8);
        assert_int_equal(party_decrypt(&b, &a, &m, "seventeen bytes!!"), SOTTO_OK);
        wire_free(&m);
    }
    party_free(&a);
    party_free(&b);
}

/* A store wrapper that logs the order of writes and forwards them. */
static sotto_protocol_store *g_inner;
static char g_log[64];

static void log_op(char c)
{
    size_t n = strlen(g_log);
    assert_true(n + 1 < sizeof g_log);
    g_log[n] = c;
    g_log[n + 1] = 0;
}

static int w_session_store(void *ud, const sotto_address *a, const uint8_t *r, size_t n)
{
    (void)ud;
    log_op('S');
    return g_inner->session.store(g_inner->session.user_data, a, r, n);
}

static int w_identity_save(void *ud, const sotto_address *a, const sotto_public_key *k)
{
    (void)ud;
    log_op('I');
    return g_inner->identity.save(g_inner->identity.user_data, a, k);
}

static int w_prekey_remove(void *ud, uint32_t id)
{
    (void)ud;
    log_op('P');
    return g_inner->prekey.remove(g_inner->prekey.user_data, id);
}

static int w_session_remove(void *ud, const sotto_address *a)
{
    (void)ud;
    log_op('R');
    return g_inner->session.remove(g_inner->session.user_data, a);
}

static void test_write_order(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    sotto_protocol_store wrapped = *b.ps;
    g_inner = b.ps;
    wrapped.session.store = w_session_store;
    wrapped.session.remove = w_session_remove;
    wrapped.identity.save = w_identity_save;
    wrapped.prekey.remove = w_prekey_remove;
    wrapped.signed_prekey.remove = NULL; /* never called */
    g_log[0] = 0;

    party_start(&a, &b, true);
    wire_msg m = party_encrypt(&a, &b, "order");
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    /* Failures write nothing at all. */
    uint8_t bad[512];
    memcpy(bad, m.data, m.len);
    bad[m.len - 15] ^= 1;
    assert_int_not_equal(sotto_session_decrypt(&wrapped, &a.addr, m.type, bad, m.len, &pt, &pt_len),
                         SOTTO_OK);
    assert_int_not_equal(
        sotto_session_decrypt(&wrapped, &a.addr, m.type, m.data, m.len - 1, &pt, &pt_len),
        SOTTO_OK);
    assert_string_equal(g_log, "");
    /* Success: session, identity, prekey, in that order. */
    assert_int_equal(sotto_session_decrypt(&wrapped, &a.addr, m.type, m.data, m.len, &pt, &pt_len),
                     SOTTO_OK);
    free(pt);
    assert_string_equal(g_log, "SIP");
    wire_free(&m);
    /* A repeated PreKey message: session and identity, no prekey. */
    g_log[0] = 0;
    m = party_encrypt(&a, &b, "again");
    assert_int_equal(sotto_session_decrypt(&wrapped, &a.addr, m.type, m.data, m.len, &pt, &pt_len),
                     SOTTO_OK);
    free(pt);
    assert_string_equal(g_log, "SI");
    wire_free(&m);
    /* Bob answers; a SignalMessage decrypt writes only the session. */
    m = party_encrypt(&b, &a, "ack");
    assert_int_equal(party_decrypt(&a, &b, &m, "ack"), SOTTO_OK);
    wire_free(&m);
    g_log[0] = 0;
    m = party_encrypt(&a, &b, "plain");
    assert_int_equal(m.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(sotto_session_decrypt(&wrapped, &a.addr, m.type, m.data, m.len, &pt, &pt_len),
                     SOTTO_OK);
    free(pt);
    assert_string_equal(g_log, "S");
    /* Duplicate: nothing. Encrypt: one session write. */
    g_log[0] = 0;
    assert_int_equal(sotto_session_decrypt(&wrapped, &a.addr, m.type, m.data, m.len, &pt, &pt_len),
                     SOTTO_ERR_DUPLICATE_MESSAGE);
    assert_string_equal(g_log, "");
    wire_free(&m);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int type = 0;
    assert_int_equal(
        sotto_session_encrypt(&wrapped, &a.addr, (const uint8_t *)"z", 1, &out, &out_len, &type),
        SOTTO_OK);
    free(out);
    assert_string_equal(g_log, "S");
    party_free(&a);
    party_free(&b);
}

static void test_no_session(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 2);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int type = 0;
    assert_int_equal(
        sotto_session_encrypt(a.ps, &b.addr, (const uint8_t *)"x", 1, &out, &out_len, &type),
        SOTTO_ERR_NO_SESSION);
    /* A genuine SignalMessage to someone without a session. */
    establish(&a, &b, true);
    wire_msg m = party_encrypt(&a, &b, "hi");
    party c;
    party_init(&c, "carol", 1);
    /* carol has no record for alice */
    expect_reject_unchanged(&c, &a, &m, SOTTO_ERR_NO_SESSION);
    uint32_t reg;
    assert_int_equal(sotto_session_remote_registration_id(c.ps, &a.addr, &reg),
                     SOTTO_ERR_NO_SESSION);
    /* Bad arguments. */
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    assert_int_equal(sotto_session_decrypt(b.ps, &a.addr, 7, m.data, m.len, &pt, &pt_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_decrypt(NULL, &a.addr, 2, m.data, m.len, &pt, &pt_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_encrypt(a.ps, &b.addr, NULL, 5, &out, &out_len, &type),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_encrypt(a.ps, &b.addr, (const uint8_t *)"x",
                                           SOTTO_MAX_PLAINTEXT_BYTES + 1, &out, &out_len, &type),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(party_decrypt(&b, &a, &m, "hi"), SOTTO_OK);
    wire_free(&m);
    party_free(&a);
    party_free(&b);
    party_free(&c);
}

static void test_optional_one_time_prekey(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, false);
    wire_msg m = party_encrypt(&a, &b, "no opk");
    assert_int_equal(m.type, SOTTO_MSG_PREKEY);
    sotto_prekey_message_info info;
    assert_int_equal(sotto_prekey_message_inspect(&info, m.data, m.len), SOTTO_OK);
    assert_false(info.has_prekey_id);
    assert_int_equal(party_decrypt(&b, &a, &m, "no opk"), SOTTO_OK);
    wire_free(&m);
    wire_msg r = party_encrypt(&b, &a, "ok");
    assert_int_equal(party_decrypt(&a, &b, &r, "ok"), SOTTO_OK);
    wire_free(&r);
    run_interaction(&a, &b);
    party_free(&a);
    party_free(&b);
}

static void test_last_resort_prekey_not_removed(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    sotto_prekey_bundle bundle;
    party_bundle_id(&b, true, SOTTO_PREKEY_LAST_RESORT_ID, &bundle);
    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bundle), SOTTO_OK);
    wire_msg m = party_encrypt(&a, &b, "last resort");
    assert_int_equal(party_decrypt(&b, &a, &m, "last resort"), SOTTO_OK);
    assert_int_equal(sotto_memory_store_prekey_count(b.ms), 1);
    wire_free(&m);
    party_free(&a);
    party_free(&b);
}

static void test_bad_bundle_signature(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    sotto_prekey_bundle good, bad;
    party_bundle(&b, true, &good);
    for (size_t i = 0; i < SOTTO_SIGNATURE_BYTES * 8; i++) {
        bad = good;
        bad.signed_prekey_signature[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bad),
                         SOTTO_ERR_INVALID_SIGNATURE);
    }
    /* A flipped bit in the signed prekey itself (not the type byte). */
    for (size_t i = 8; i < SOTTO_PUBLIC_KEY_BYTES * 8; i += 7) {
        bad = good;
        bad.signed_prekey.bytes[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bad),
                         SOTTO_ERR_INVALID_SIGNATURE);
    }
    bad = good;
    bad.signed_prekey.bytes[0] = 0x06;
    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bad), SOTTO_ERR_INVALID_KEY);
    /* Signed by another identity. */
    bad = good;
    bad.identity_key = a.identity.pub;
    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bad),
                     SOTTO_ERR_INVALID_SIGNATURE);
    /* Nothing stored, no identity saved. */
    assert_int_equal(sotto_memory_store_session_count(a.ms), 0);
    sotto_public_key saved;
    assert_int_equal(a.ps->identity.get(a.ps->identity.user_data, &b.addr, &saved),
                     SOTTO_ERR_NOT_FOUND);
    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &good), SOTTO_OK);
    assert_int_equal(sotto_memory_store_session_count(a.ms), 1);
    party_free(&a);
    party_free(&b);
}

static void test_untrusted_identity(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    establish(&a, &b, true);
    run_interaction(&a, &b);

    /* Alice reinstalls: same address, new identity. */
    party a2;
    party_init(&a2, "alice", 1);
    party_start(&a2, &b, true);
    wire_msg m = party_encrypt(&a2, &b, "new me");
    expect_reject_unchanged(&b, &a2, &m, SOTTO_ERR_UNTRUSTED_IDENTITY);
    /* The application learns the new key, accepts it, decrypts again. */
    sotto_prekey_message_info info;
    assert_int_equal(sotto_prekey_message_inspect(&info, m.data, m.len), SOTTO_OK);
    assert_memory_equal(info.identity_key.bytes, a2.identity.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_int_equal(b.ps->identity.save(b.ps->identity.user_data, &a2.addr, &info.identity_key),
                     SOTTO_OK);
    assert_int_equal(party_decrypt(&b, &a2, &m, "new me"), SOTTO_OK);
    wire_free(&m);

    /* A bundle with a changed identity is untrusted for the initiator too. */
    party b2;
    party_init(&b2, "bob", 1);
    sotto_prekey_bundle bundle;
    party_bundle(&b2, true, &bundle);
    size_t before_len;
    uint8_t *before = party_record(&a2, &b, &before_len);
    assert_int_equal(sotto_session_process_bundle(a2.ps, &b.addr, &bundle),
                     SOTTO_ERR_UNTRUSTED_IDENTITY);
    size_t after_len;
    uint8_t *after = party_record(&a2, &b, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
    party_free(&a);
    party_free(&a2);
    party_free(&b);
    party_free(&b2);
}

static void test_unknown_prekeys(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    sotto_prekey_bundle bundle;
    party_bundle(&b, true, &bundle);
    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bundle), SOTTO_OK);
    wire_msg m = party_encrypt(&a, &b, "x");
    /* Bob lost the one-time prekey. */
    assert_int_equal(b.ps->prekey.remove(b.ps->prekey.user_data, bundle.prekey_id), SOTTO_OK);
    expect_reject_unchanged(&b, &a, &m, SOTTO_ERR_UNKNOWN_PREKEY_ID);
    wire_free(&m);

    party_bundle(&b, false, &bundle);
    bundle.signed_prekey_id = 99; /* the signature covers the key, not the id */
    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bundle), SOTTO_OK);
    m = party_encrypt(&a, &b, "y");
    expect_reject_unchanged(&b, &a, &m, SOTTO_ERR_UNKNOWN_SIGNED_PREKEY_ID);
    wire_free(&m);
    party_free(&a);
    party_free(&b);
}

/* Rewrites field `num` of a SignalMessage's protobuf (varint value or bytes). */
static wire_msg forge_signal(const uint8_t *orig, size_t orig_len, const sotto_public_key *key,
                             int64_t counter)
{
    sotto_signal_message sm;
    assert_int_equal(sotto_signal_message_decode(&sm, orig, orig_len), SOTTO_OK);
    wire_msg out = {NULL, 0, SOTTO_MSG_SIGNAL};
    sotto_wbuf w;
    sotto_wbuf_init(&w, orig_len + 64);
    sotto_wbuf_put_u8(&w, 0x33);
    sotto_pb_put_bytes(&w, 1, key != NULL ? key->bytes : sm.ratchet_key.bytes, 33);
    sotto_pb_put_uint(&w, 2, counter >= 0 ? (uint64_t)counter : sm.counter);
    sotto_pb_put_uint(&w, 3, sm.previous_counter);
    sotto_pb_put_bytes(&w, 4, sm.ciphertext, sm.ciphertext_len);
    sotto_wbuf_put(&w, orig + orig_len - 8, 8);
    assert_int_equal(sotto_wbuf_steal(&w, &out.data, &out.len), SOTTO_OK);
    return out;
}

static void test_bad_signal_messages_change_nothing(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    establish(&a, &b, true);
    /* Bob learns Alice's current chain, so forgeries below hit a known chain. */
    wire_msg warm = party_encrypt(&a, &b, "warm up");
    assert_int_equal(party_decrypt(&b, &a, &warm, "warm up"), SOTTO_OK);
    wire_free(&warm);
    wire_msg good = party_encrypt(&a, &b, "the genuine one");
    wire_msg bad;
    uint8_t buf[4096];
    assert_true(good.len < sizeof buf);

    /* Every single flipped byte of the message (MAC, ciphertext, header). */
    for (size_t i = 0; i < good.len; i++) {
        memcpy(buf, good.data, good.len);
        buf[i] ^= 0x01;
        bad = (wire_msg){buf, good.len, SOTTO_MSG_SIGNAL};
        size_t before_len;
        uint8_t *before = party_record(&b, &a, &before_len);
        assert_int_not_equal(party_decrypt(&b, &a, &bad, NULL), SOTTO_OK);
        size_t after_len;
        uint8_t *after = party_record(&b, &a, &after_len);
        assert_int_equal(before_len, after_len);
        assert_memory_equal(before, after, before_len);
        free(before);
        free(after);
    }
    /* Flipped MAC byte: INVALID_MESSAGE precisely. */
    memcpy(buf, good.data, good.len);
    buf[good.len - 1] ^= 0x80;
    bad = (wire_msg){buf, good.len, SOTTO_MSG_SIGNAL};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    /* Flipped ciphertext byte: the same error (no oracle). */
    memcpy(buf, good.data, good.len);
    buf[good.len - 12] ^= 0x04;
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    /* Truncated at every length. */
    for (size_t n = 0; n < good.len; n++) {
        bad = (wire_msg){good.data, n, SOTTO_MSG_SIGNAL};
        assert_int_not_equal(party_decrypt(&b, &a, &bad, NULL), SOTTO_OK);
    }
    bad = (wire_msg){good.data, 0, SOTTO_MSG_SIGNAL};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    bad = (wire_msg){good.data, 1, SOTTO_MSG_SIGNAL};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    bad = (wire_msg){good.data, good.len - 1, SOTTO_MSG_SIGNAL};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    /* Wrong versions. */
    memcpy(buf, good.data, good.len);
    buf[0] = 0x23;
    bad = (wire_msg){buf, good.len, SOTTO_MSG_SIGNAL};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_LEGACY_MESSAGE);
    buf[0] = 0x13;
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_LEGACY_MESSAGE);
    buf[0] = 0x43;
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_UNSUPPORTED_VERSION);
    /* Garbage protobuf with a good version byte and room for a MAC. */
    memset(buf, 0xff, 64);
    buf[0] = 0x33;
    bad = (wire_msg){buf, 64, SOTTO_MSG_SIGNAL};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    randombytes_buf(buf + 1, 200);
    bad = (wire_msg){buf, 201, SOTTO_MSG_SIGNAL};
    {
        size_t bl, al;
        uint8_t *before = party_record(&b, &a, &bl);
        assert_int_not_equal(party_decrypt(&b, &a, &bad, NULL), SOTTO_OK);
        uint8_t *after = party_record(&b, &a, &al);
        assert_int_equal(bl, al);
        assert_memory_equal(before, after, bl);
        free(before);
        free(after);
    }
    /* Declared as the wrong type. */
    bad = good;
    bad.type = SOTTO_MSG_PREKEY;
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    /* A random ratchet key (a fake new chain), counter 500 ahead, and at 0. */
    sotto_key_pair fake;
    assert_int_equal(sotto_key_pair_generate(&fake), SOTTO_OK);
    bad = forge_signal(good.data, good.len, &fake.pub, 500);
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    wire_free(&bad);
    bad = forge_signal(good.data, good.len, &fake.pub, 0);
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    wire_free(&bad);
    /* The known chain, counter 500 ahead with a MAC that cannot match. */
    bad = forge_signal(good.data, good.len, NULL, 500);
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    wire_free(&bad);
    /* Invalid ratchet key type. */
    memcpy(buf, good.data, good.len);
    assert_int_equal(buf[1], 0x0a);
    assert_int_equal(buf[3], 0x05);
    buf[3] = 0x06;
    bad = (wire_msg){buf, good.len, SOTTO_MSG_SIGNAL};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_KEY);

    /* After all that, the genuine message still decrypts, exactly once. */
    assert_int_equal(party_decrypt(&b, &a, &good, "the genuine one"), SOTTO_OK);
    expect_reject_unchanged(&b, &a, &good, SOTTO_ERR_DUPLICATE_MESSAGE);
    wire_free(&good);
    run_interaction(&a, &b);
    party_free(&a);
    party_free(&b);
}

/* Offset and length of the inner SignalMessage inside a PreKeySignalMessage. */
static void inner_range(const wire_msg *m, size_t *off, size_t *len)
{
    sotto_prekey_signal_message pm;
    assert_int_equal(sotto_prekey_signal_message_decode(&pm, m->data, m->len), SOTTO_OK);
    *off = (size_t)(pm.message.data - m->data);
    *len = pm.message.len;
}

static void test_bad_prekey_message_consumes_nothing(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, true);
    wire_msg good = party_encrypt(&a, &b, "prekey hello");
    assert_int_equal(good.type, SOTTO_MSG_PREKEY);
    uint8_t buf[4096];
    wire_msg bad;
    sotto_public_key saved;
    size_t off, ilen;
    inner_range(&good, &off, &ilen);

    /* Every flipped byte of the authenticated inner message: rejected, no
     * session, prekey kept, no identity saved. (The outer fields are not
     * authenticated by the protocol; see the version cases below.) */
    for (size_t i = off; i < off + ilen; i++) {
        memcpy(buf, good.data, good.len);
        buf[i] ^= 0x20;
        bad = (wire_msg){buf, good.len, SOTTO_MSG_PREKEY};
        int rc = party_decrypt(&b, &a, &bad, NULL);
        if (rc == SOTTO_OK)
            fail_msg("flipped byte %zu accepted", i);
        assert_int_equal(sotto_memory_store_prekey_count(b.ms), 1);
        assert_int_equal(sotto_memory_store_session_count(b.ms), 0);
        assert_int_equal(b.ps->identity.get(b.ps->identity.user_data, &a.addr, &saved),
                         SOTTO_ERR_NOT_FOUND);
    }
    /* A bad MAC in the inner message: INVALID_MESSAGE. */
    memcpy(buf, good.data, good.len);
    buf[off + ilen - 1] ^= 0x01;
    bad = (wire_msg){buf, good.len, SOTTO_MSG_PREKEY};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    /* A different base key: X3DH gives other keys, the MAC fails. */
    memcpy(buf, good.data, good.len);
    assert_int_equal(buf[1 + 2], 0x12); /* after preKeyId (08 nn): baseKey tag */
    buf[1 + 2 + 2 + 10] ^= 0x01;
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    for (size_t n = 0; n < good.len; n++) {
        bad = (wire_msg){good.data, n, SOTTO_MSG_PREKEY};
        assert_int_not_equal(party_decrypt(&b, &a, &bad, NULL), SOTTO_OK);
    }
    memcpy(buf, good.data, good.len);
    buf[0] = 0x23;
    bad = (wire_msg){buf, good.len, SOTTO_MSG_PREKEY};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_LEGACY_MESSAGE);
    buf[0] = 0x53;
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_UNSUPPORTED_VERSION);
    /* Inner version differing from the outer one. */
    memcpy(buf, good.data, good.len);
    buf[off] = 0x23;
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_LEGACY_MESSAGE);
    assert_int_equal(sotto_memory_store_prekey_count(b.ms), 1);
    assert_int_equal(b.ps->identity.get(b.ps->identity.user_data, &a.addr, &saved),
                     SOTTO_ERR_NOT_FOUND);

    /* The genuine one: session stored, identity saved, prekey removed. */
    assert_int_equal(party_decrypt(&b, &a, &good, "prekey hello"), SOTTO_OK);
    assert_int_equal(sotto_memory_store_prekey_count(b.ms), 0);
    assert_int_equal(sotto_memory_store_session_count(b.ms), 1);
    assert_int_equal(b.ps->identity.get(b.ps->identity.user_data, &a.addr, &saved), SOTTO_OK);
    assert_memory_equal(saved.bytes, a.identity.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    /* Replayed: duplicate (the base key is known, the message key is gone). */
    expect_reject_unchanged(&b, &a, &good, SOTTO_ERR_DUPLICATE_MESSAGE);
    wire_free(&good);
    /* With an existing session, a bad PreKey message still changes nothing. */
    wire_msg m2 = party_encrypt(&a, &b, "second");
    inner_range(&m2, &off, &ilen);
    memcpy(buf, m2.data, m2.len);
    buf[off + ilen - 1] ^= 0x01;
    bad = (wire_msg){buf, m2.len, SOTTO_MSG_PREKEY};
    expect_reject_unchanged(&b, &a, &bad, SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(party_decrypt(&b, &a, &m2, "second"), SOTTO_OK);
    wire_free(&m2);
    party_free(&a);
    party_free(&b);
}

static void test_repeated_bundle_message(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, true);
    wire_msg m1 = party_encrypt(&a, &b, "one");
    wire_msg m2 = party_encrypt(&a, &b, "two");
    wire_msg m3 = party_encrypt(&a, &b, "three");
    sotto_prekey_message_info i1, i2;
    assert_int_equal(sotto_prekey_message_inspect(&i1, m1.data, m1.len), SOTTO_OK);
    assert_int_equal(sotto_prekey_message_inspect(&i2, m2.data, m2.len), SOTTO_OK);
    assert_memory_equal(i1.base_key.bytes, i2.base_key.bytes, SOTTO_PUBLIC_KEY_BYTES);
    /* Out of order: the later one first. */
    assert_int_equal(party_decrypt(&b, &a, &m2, "two"), SOTTO_OK);
    assert_int_equal(party_decrypt(&b, &a, &m1, "one"), SOTTO_OK);
    wire_msg r = party_encrypt(&b, &a, "reply");
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    assert_int_equal(party_decrypt(&b, &a, &m3, "three"), SOTTO_OK);
    assert_int_equal(sotto_memory_store_session_count(b.ms), 1);
    wire_free(&m1);
    wire_free(&m2);
    wire_free(&m3);
    wire_free(&r);
    run_interaction(&a, &b);
    party_free(&a);
    party_free(&b);
}

static void test_long_bursts_and_old_chains(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    establish(&a, &b, true);
    char t[64];

    /* Long one-way bursts in both directions. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 600; i++) {
            msg_text(t, sizeof t, "burst a", i);
            wire_msg m = party_encrypt(&a, &b, t);
            assert_int_equal(party_decrypt(&b, &a, &m, t), SOTTO_OK);
            wire_free(&m);
        }
        for (int i = 0; i < 600; i++) {
            msg_text(t, sizeof t, "burst b", i);
            wire_msg m = party_encrypt(&b, &a, t);
            assert_int_equal(party_decrypt(&a, &b, &m, t), SOTTO_OK);
            wire_free(&m);
        }
    }

    /* Out of order across chains: hold back 2 messages of each of 4 of
     * Alice's chains, keep ratcheting, deliver the old ones at the end. */
    wire_msg held[8];
    char held_text[8][64];
    for (int chain = 0; chain < 4; chain++) {
        for (int i = 0; i < 4; i++) {
            msg_text(t, sizeof t, "chain msg", chain * 10 + i);
            wire_msg m = party_encrypt(&a, &b, t);
            if (i == 0 || i == 2) {
                int h = chain * 2 + (i == 2);
                held[h] = m;
                memcpy(held_text[h], t, sizeof t);
            } else {
                assert_int_equal(party_decrypt(&b, &a, &m, t), SOTTO_OK);
                wire_free(&m);
            }
        }
        wire_msg r = party_encrypt(&b, &a, "turn");
        assert_int_equal(party_decrypt(&a, &b, &r, "turn"), SOTTO_OK);
        wire_free(&r);
    }
    for (int h = 7; h >= 0; h--) {
        assert_int_equal(party_decrypt(&b, &a, &held[h], held_text[h]), SOTTO_OK);
        expect_reject_unchanged(&b, &a, &held[h], SOTTO_ERR_DUPLICATE_MESSAGE);
        wire_free(&held[h]);
    }
    run_interaction(&a, &b);
    party_free(&a);
    party_free(&b);
}

/* The 5 receiver chains: a message on a sixth-oldest chain is gone. */
static void test_receiver_chain_cap(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    establish(&a, &b, true);
    wire_msg old[7];
    for (int i = 0; i < 7; i++) {
        old[i] = party_encrypt(&a, &b, "skipped");
        wire_msg next = party_encrypt(&a, &b, "next");
        assert_int_equal(party_decrypt(&b, &a, &next, "next"), SOTTO_OK);
        wire_free(&next);
        wire_msg r = party_encrypt(&b, &a, "turn");
        assert_int_equal(party_decrypt(&a, &b, &r, "turn"), SOTTO_OK);
        wire_free(&r);
    }
    /* Chains of old[0], old[1] were dropped (7 chains + hello chain > 5). */
    for (int i = 0; i < 7; i++) {
        if (i < 2) {
            int rc = party_decrypt(&b, &a, &old[i], NULL);
            assert_int_equal(rc, SOTTO_ERR_INVALID_MESSAGE);
        } else {
            assert_int_equal(party_decrypt(&b, &a, &old[i], "skipped"), SOTTO_OK);
        }
        wire_free(&old[i]);
    }
    party_free(&a);
    party_free(&b);
}

static void test_forward_jump_limit(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    establish(&a, &b, true);
    /* Bob's chain for Alice's current ratchet key is at index 0: Alice's
     * next chain is new for Bob (she ratcheted on "hello alice"). Encrypt
     * 2003 messages: #0..#2002. */
    enum { N = 2003 };
    wire_msg *m = calloc(N, sizeof *m);
    assert_non_null(m);
    char t[64];
    for (int i = 0; i < N; i++) {
        msg_text(t, sizeof t, "jump", i);
        m[i] = party_encrypt(&a, &b, t);
    }
    /* New chain (index 0): counter 2001 is too far, 2000 is fine. */
    expect_reject_unchanged(&b, &a, &m[2001], SOTTO_ERR_TOO_FAR_AHEAD);
    msg_text(t, sizeof t, "jump", 2000);
    assert_int_equal(party_decrypt(&b, &a, &m[2000], t), SOTTO_OK);
    /* Now the chain is at 2001 with 2000 skipped keys: #2001, #2002 next. */
    msg_text(t, sizeof t, "jump", 2001);
    assert_int_equal(party_decrypt(&b, &a, &m[2001], t), SOTTO_OK);
    msg_text(t, sizeof t, "jump", 2002);
    assert_int_equal(party_decrypt(&b, &a, &m[2002], t), SOTTO_OK);
    /* The 2000 skipped keys are all there. */
    for (int i = 0; i < 2000; i += 199) {
        msg_text(t, sizeof t, "jump", i);
        assert_int_equal(party_decrypt(&b, &a, &m[i], t), SOTTO_OK);
    }

    /* Existing chain at index 2003: 2000 ahead accepted, 2001 rejected,
     * and a counter near 2^32 is rejected at once (no key derived). */
    wire_msg far = forge_signal(m[5].data, m[5].len, NULL, 2003 + 2001);
    expect_reject_unchanged(&b, &a, &far, SOTTO_ERR_TOO_FAR_AHEAD);
    wire_free(&far);
    far = forge_signal(m[5].data, m[5].len, NULL, 0xFFFFFFF0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(party_decrypt(&b, &a, &far, NULL), SOTTO_ERR_TOO_FAR_AHEAD);
    wire_free(&far);
    for (int i = 0; i < N; i++)
        wire_free(&m[i]);
    for (int i = 0; i <= 2000; i++) {
        msg_text(t, sizeof t, "jump2", i);
        m[i] = party_encrypt(&a, &b, t);
    }
    msg_text(t, sizeof t, "jump2", 2000);
    /* counter 4003 on a chain at index 2003: exactly 2000 ahead. */
    assert_int_equal(party_decrypt(&b, &a, &m[2000], t), SOTTO_OK);
    for (int i = 0; i <= 2000; i++)
        wire_free(&m[i]);
    free(m);
    party_free(&a);
    party_free(&b);
}

static void test_message_key_eviction(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, true);
    enum { N = 2010 };
    wire_msg *m = calloc(N, sizeof *m);
    assert_non_null(m);
    char t[64];
    for (int i = 0; i < N; i++) {
        msg_text(t, sizeof t, "evict", i);
        m[i] = party_encrypt(&a, &b, t);
        assert_int_equal(m[i].type, SOTTO_MSG_PREKEY);
    }
    msg_text(t, sizeof t, "evict", 1000);
    assert_int_equal(party_decrypt(&b, &a, &m[1000], t), SOTTO_OK);
    msg_text(t, sizeof t, "evict", 2009);
    assert_int_equal(party_decrypt(&b, &a, &m[2009], t), SOTTO_OK);
    /* 1000 + 1008 skipped keys > 2000: the 8 oldest (#0..#7) are gone. */
    expect_reject_unchanged(&b, &a, &m[0], SOTTO_ERR_DUPLICATE_MESSAGE);
    expect_reject_unchanged(&b, &a, &m[7], SOTTO_ERR_DUPLICATE_MESSAGE);
    msg_text(t, sizeof t, "evict", 8);
    assert_int_equal(party_decrypt(&b, &a, &m[8], t), SOTTO_OK);
    msg_text(t, sizeof t, "evict", 2008);
    assert_int_equal(party_decrypt(&b, &a, &m[2008], t), SOTTO_OK);
    expect_reject_unchanged(&b, &a, &m[1000], SOTTO_ERR_DUPLICATE_MESSAGE);
    for (int i = 0; i < N; i++)
        wire_free(&m[i]);
    free(m);
    party_free(&a);
    party_free(&b);
}

static void test_session_reset_archived_state(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    establish(&a, &b, true);
    run_interaction(&a, &b);
    /* In flight on the old session, both directions. */
    wire_msg late_a = party_encrypt(&a, &b, "late from old session");
    wire_msg late_b = party_encrypt(&b, &a, "late reply from old session");

    /* Alice resets: new bundle, new session; the old one is archived. */
    party_start(&a, &b, true);
    wire_msg m = party_encrypt(&a, &b, "fresh start");
    assert_int_equal(m.type, SOTTO_MSG_PREKEY);
    assert_int_equal(party_decrypt(&b, &a, &m, "fresh start"), SOTTO_OK);
    wire_free(&m);
    m = party_encrypt(&b, &a, "fresh reply");
    assert_int_equal(party_decrypt(&a, &b, &m, "fresh reply"), SOTTO_OK);
    wire_free(&m);
    /* The old-session messages still decrypt from the archived states. */
    assert_int_equal(party_decrypt(&b, &a, &late_a, "late from old session"), SOTTO_OK);
    assert_int_equal(party_decrypt(&a, &b, &late_b, "late reply from old session"), SOTTO_OK);
    expect_reject_unchanged(&b, &a, &late_a, SOTTO_ERR_DUPLICATE_MESSAGE);
    wire_free(&late_a);
    wire_free(&late_b);
    /* Conversation continues (the sides may have promoted the old state:
     * they converge because each tries all its states). */
    run_interaction(&a, &b);
    run_interaction(&b, &a);
    party_free(&a);
    party_free(&b);
}

static void test_archive_cap(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    for (int i = 0; i < SOTTO_MAX_ARCHIVED_STATES + 3; i++) {
        party_start(&a, &b, false);
        wire_msg m = party_encrypt(&a, &b, "reset");
        assert_int_equal(party_decrypt(&b, &a, &m, "reset"), SOTTO_OK);
        wire_free(&m);
    }
    size_t len;
    uint8_t *rec = party_record(&b, &a, &len);
    assert_non_null(rec);
    assert_int_equal(sotto_session_record_validate(rec, len), SOTTO_OK);
    /* Format: version, flags, u32 len + current, then the archive count. */
    uint32_t cur = (uint32_t)rec[2] << 24 | (uint32_t)rec[3] << 16 | (uint32_t)rec[4] << 8 | rec[5];
    assert_int_equal(rec[6 + cur], SOTTO_MAX_ARCHIVED_STATES);
    free(rec);
    /* Alice's record is capped the same way. */
    rec = party_record(&a, &b, &len);
    assert_non_null(rec);
    cur = (uint32_t)rec[2] << 24 | (uint32_t)rec[3] << 16 | (uint32_t)rec[4] << 8 | rec[5];
    assert_int_equal(rec[6 + cur], SOTTO_MAX_ARCHIVED_STATES);
    free(rec);
    wire_msg again = party_encrypt(&a, &b, "after");
    assert_int_equal(party_decrypt(&b, &a, &again, "after"), SOTTO_OK);
    wire_free(&again);
    wire_msg r = party_encrypt(&b, &a, "reply");
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    wire_free(&r);
    assert_true(same_session(&a, &b));
    party_free(&a);
    party_free(&b);
}

/* ---- simultaneous initiation (libsignal test_simultaneous_initiate.c) ---- */

static void simultaneous_start(party *a, party *b, wire_msg *ma, wire_msg *mb)
{
    party_start(a, b, true);
    party_start(b, a, true);
    *ma = party_encrypt(a, b, "hey there");
    *mb = party_encrypt(b, a, "sample message");
    assert_int_equal(ma->type, SOTTO_MSG_PREKEY);
    assert_int_equal(mb->type, SOTTO_MSG_PREKEY);
}

static void converse_checked(party *a, party *b)
{
    wire_msg m = party_encrypt(a, b, "converge a");
    assert_int_equal(m.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(party_decrypt(b, a, &m, "converge a"), SOTTO_OK);
    wire_free(&m);
    m = party_encrypt(b, a, "converge b");
    assert_int_equal(m.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(party_decrypt(a, b, &m, "converge b"), SOTTO_OK);
    wire_free(&m);
    assert_true(same_session(a, b));
}

static void test_simultaneous_initiate(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    wire_msg ma, mb;
    simultaneous_start(&a, &b, &ma, &mb);
    assert_int_equal(party_decrypt(&b, &a, &ma, "hey there"), SOTTO_OK);
    assert_int_equal(party_decrypt(&a, &b, &mb, "sample message"), SOTTO_OK);
    wire_free(&ma);
    wire_free(&mb);
    /* Alice answers; Bob finds the state in his archive and promotes it. */
    wire_msg r = party_encrypt(&a, &b, "second message");
    assert_int_equal(r.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(party_decrypt(&b, &a, &r, "second message"), SOTTO_OK);
    wire_free(&r);
    r = party_encrypt(&b, &a, "reply");
    assert_int_equal(r.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    wire_free(&r);
    converse_checked(&a, &b);
    run_interaction(&a, &b);
    party_free(&a);
    party_free(&b);
}

static void test_simultaneous_initiate_lost_message(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    wire_msg ma, mb;
    simultaneous_start(&a, &b, &ma, &mb);
    assert_int_equal(party_decrypt(&b, &a, &ma, "hey there"), SOTTO_OK);
    assert_int_equal(party_decrypt(&a, &b, &mb, "sample message"), SOTTO_OK);
    wire_free(&ma);
    wire_free(&mb);
    /* Alice's answer is lost. */
    wire_msg lost = party_encrypt(&a, &b, "lost");
    wire_free(&lost);
    /* Bob speaks with his current state (responder to Alice's init). */
    wire_msg r = party_encrypt(&b, &a, "bob speaks");
    assert_int_equal(party_decrypt(&a, &b, &r, "bob speaks"), SOTTO_OK);
    wire_free(&r);
    converse_checked(&a, &b);
    run_interaction(&a, &b);
    party_free(&a);
    party_free(&b);
}

static void test_simultaneous_initiate_repeated(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    for (int round = 0; round < 15; round++) {
        wire_msg ma, mb;
        simultaneous_start(&a, &b, &ma, &mb);
        assert_int_equal(party_decrypt(&b, &a, &ma, "hey there"), SOTTO_OK);
        assert_int_equal(party_decrypt(&a, &b, &mb, "sample message"), SOTTO_OK);
        wire_free(&ma);
        wire_free(&mb);
    }
    /* 50 messages each way, then they agree. */
    char t[64];
    for (int i = 0; i < 50; i++) {
        msg_text(t, sizeof t, "rep a", i);
        wire_msg m = party_encrypt(&a, &b, t);
        assert_int_equal(party_decrypt(&b, &a, &m, t), SOTTO_OK);
        wire_free(&m);
    }
    for (int i = 0; i < 50; i++) {
        msg_text(t, sizeof t, "rep b", i);
        wire_msg m = party_encrypt(&b, &a, t);
        assert_int_equal(party_decrypt(&a, &b, &m, t), SOTTO_OK);
        wire_free(&m);
    }
    converse_checked(&a, &b);
    /* A lost simultaneous initiation on top. */
    wire_msg ma, mb;
    simultaneous_start(&a, &b, &ma, &mb);
    wire_free(&ma); /* lost */
    assert_int_equal(party_decrypt(&a, &b, &mb, "sample message"), SOTTO_OK);
    wire_free(&mb);
    wire_msg r = party_encrypt(&a, &b, "after lost");
    assert_int_equal(party_decrypt(&b, &a, &r, "after lost"), SOTTO_OK);
    wire_free(&r);
    converse_checked(&a, &b);
    run_interaction(&a, &b);
    party_free(&a);
    party_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_prekey_session),
        cmocka_unit_test(test_previous_counter),
        cmocka_unit_test(test_session_wire_layout),
        cmocka_unit_test(test_write_order),
        cmocka_unit_test(test_no_session),
        cmocka_unit_test(test_optional_one_time_prekey),
        cmocka_unit_test(test_last_resort_prekey_not_removed),
        cmocka_unit_test(test_bad_bundle_signature),
        cmocka_unit_test(test_untrusted_identity),
        cmocka_unit_test(test_unknown_prekeys),
        cmocka_unit_test(test_bad_signal_messages_change_nothing),
        cmocka_unit_test(test_bad_prekey_message_consumes_nothing),
        cmocka_unit_test(test_repeated_bundle_message),
        cmocka_unit_test(test_long_bursts_and_old_chains),
        cmocka_unit_test(test_receiver_chain_cap),
        cmocka_unit_test(test_forward_jump_limit),
        cmocka_unit_test(test_message_key_eviction),
        cmocka_unit_test(test_session_reset_archived_state),
        cmocka_unit_test(test_archive_cap),
        cmocka_unit_test(test_simultaneous_initiate),
        cmocka_unit_test(test_simultaneous_initiate_lost_message),
        cmocka_unit_test(test_simultaneous_initiate_repeated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
