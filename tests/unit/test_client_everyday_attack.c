/*
 * tests/unit/test_client_everyday_attack.c -- issue 11 against hostile
 * peers: a malicious contact, group member or stranger crafts Content
 * protobufs that go through the real receive path (sc_content_handle, right
 * after decryption, as tests/fuzz/fuzz_content_handler.c does) and must not
 * break the promises of docs/protocol.md "Everyday messaging": edits and
 * deletes by the author only and within 24 hours (of the server's clock,
 * which the sender does not control), one disappearing timer that every
 * device agrees on, bounded values.
 *
 * The account is alice (device 1, offline: the server address refuses
 * connections); bob and carol are accepted contacts and members of group G
 * with alice; mallory is a stranger.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "everyday.h"
#include "internal.h"
#include "store.h"

#define T0 1800000000000ull /* a message's timestamp (ms) */
#define DAY (24ull * 3600 * 1000)

static char tmpdir[256];
static const uint8_t G[SC_GROUP_ID_BYTES] = {0x47, 0x47, 0x47, 0x47, 0x47, 0x47, 0x47, 0x47,
                                             0x47, 0x47, 0x47, 0x47, 0x47, 0x47, 0x47, 0x47};
static uint64_t seq;

static sc_client *fresh(const char *dirname)
{
    sc_options o;
    sc_client *c = NULL;
    char err[256], home[512], hex[33];
    char *members[3] = {(char *)"alice", (char *)"bob", (char *)"carol"};

    snprintf(home, sizeof home, "%s/%s", tmpdir, dirname);
    memset(&o, 0, sizeof o);
    o.account = "alice";
    o.data_home = home;
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_int_equal(sc_cfg_set_text(c, "username", "alice"), SC_OK);
    assert_int_equal(sc_cfg_set_u64(c, "device_id", 1), SC_OK);
    assert_int_equal(sc_cfg_set_text(c, "server_url", "https://127.0.0.1:1"), SC_OK);
    sc_close(c);
    c = NULL;
    o.must_exist = true;
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_non_null(sc_username(c));
    assert_int_equal(sc_contact_touch(c, "bob", 1), SC_OK);
    assert_int_equal(sc_contact_touch(c, "carol", 1), SC_OK);
    assert_int_equal(sc_requests_on_send(c, "contact", "bob"), SC_OK);
    assert_int_equal(sc_requests_on_send(c, "contact", "carol"), SC_OK);
    assert_int_equal(sc_group_upsert(c, G, "G", true), SC_OK);
    assert_int_equal(sc_group_set_members(c, G, members, 3), SC_OK);
    sc_hex(G, sizeof G, hex);
    assert_int_equal(sc_requests_on_send(c, "group", hex), SC_OK);
    return c;
}

/* Hands content ct from `who` (device 1), stamped by the server at
 * server_ts, to the receive path. */
static void deliver(sc_client *c, const char *who, uint64_t server_ts,
                    const Sotto__Content__Content *ct)
{
    size_t len = sotto__content__content__get_packed_size(ct), plen = 0;
    uint8_t *buf = malloc(len ? len : 1), *padded = NULL;
    pending_emit *pe = sc_pend_new();
    Sotto__Content__Content *out = NULL;
    sc_envelope e;

    assert_non_null(buf);
    assert_non_null(pe);
    sotto__content__content__pack(ct, buf);
    assert_int_equal(sc_pad(buf, len, &padded, &plen), SC_OK);
    memset(&e, 0, sizeof e);
    seq++;
    memcpy(e.id, &seq, sizeof seq);
    e.id_len = sizeof seq;
    snprintf(e.source, sizeof e.source, "%s", who);
    e.source_device = 1;
    e.server_ts = server_ts;
    assert_int_equal(sc_db_begin(c), SC_OK);
    assert_int_equal(sc_content_handle(c, &e, padded, plen, pe, &out), SC_OK);
    assert_int_equal(sc_db_commit(c), SC_OK);
    c->scrub_due = false;
    sc_content_free(out);
    free(padded);
    free(buf);
    free(pe);
}

static void text(sc_client *c, const char *who, uint64_t ts, uint64_t server_ts, const char *body,
                 bool group)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;

    ct.timestamp = ts;
    dm.body = (char *)body;
    if (group) {
        gc.id.data = (uint8_t *)G;
        gc.id.len = sizeof G;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        dm.group = &gc;
    }
    ct.data = &dm;
    deliver(c, who, server_ts, &ct);
}

static void edit(sc_client *c, const char *who, uint64_t ts, uint64_t server_ts, uint64_t target,
                 const char *body, bool group)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__EditMessage em = SOTTO__CONTENT__EDIT_MESSAGE__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;

    dm.body = (char *)body;
    if (group) {
        gc.id.data = (uint8_t *)G;
        gc.id.len = sizeof G;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        dm.group = &gc;
    }
    em.target_timestamp = target;
    em.data = &dm;
    ct.timestamp = ts;
    ct.edit = &em;
    deliver(c, who, server_ts, &ct);
}

static void del(sc_client *c, const char *who, uint64_t ts, uint64_t server_ts, uint64_t target,
                bool group)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__DataMessage__Delete d = SOTTO__CONTENT__DATA_MESSAGE__DELETE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;

    if (group) {
        gc.id.data = (uint8_t *)G;
        gc.id.len = sizeof G;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        dm.group = &gc;
    }
    d.target_timestamp = target;
    dm.delete_ = &d;
    ct.timestamp = ts;
    ct.data = &dm;
    deliver(c, who, server_ts, &ct);
}

static void timer(sc_client *c, const char *who, uint64_t ts, uint64_t server_ts, uint32_t secs,
                  bool group)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;

    if (group) {
        gc.id.data = (uint8_t *)G;
        gc.id.len = sizeof G;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        dm.group = &gc;
    }
    dm.flags = SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_EXPIRATION_TIMER_UPDATE;
    dm.expire_timer = secs;
    ct.timestamp = ts;
    ct.data = &dm;
    deliver(c, who, server_ts, &ct);
}

/* The body of message (sender, ts) in (kind, conv); "" for a tombstone,
 * NULL when there is no such row. malloc()ed. */
static char *body_of(sc_client *c, const char *kind, const char *conv, const char *sender,
                     uint64_t ts, bool *deleted)
{
    int64_t rowid = 0;
    sc_msg m;
    char *s;

    if (sc_msgops_find(c, kind, conv, sender, ts, &rowid) != SC_OK)
        return NULL;
    assert_int_equal(sc_msg_get(c, rowid, &m), SC_OK);
    s = strdup(m.body);
    if (deleted)
        *deleted = m.deleted;
    sc_msg_free(&m);
    return s;
}

static void assert_body(sc_client *c, const char *kind, const char *conv, const char *sender,
                        uint64_t ts, const char *want)
{
    bool deleted = true;
    char *b = body_of(c, kind, conv, sender, ts, &deleted);
    assert_non_null(b);
    assert_string_equal(b, want);
    assert_false(deleted);
    free(b);
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

static void gid_hex(char hex[33])
{
    sc_hex(G, sizeof G, hex);
}

/* ---------------------------------------------------------------- tests */

/* bob edits and deletes alice's and carol's messages, in 1:1 and in the
 * group, and through an edit that names the group: nothing changes. */
static void test_others_messages(void **state)
{
    sc_client *c = fresh("others");
    char hex[33];
    (void)state;

    gid_hex(hex);
    text(c, "carol", T0, T0 + 5, "carol in the group", true);
    text(c, "carol", T0 + 1, T0 + 6, "carol to alice", false);
    /* bob targets carol's timestamps, in the group and 1:1 */
    edit(c, "bob", T0 + 100, T0 + 105, T0, "bob was here", true);
    edit(c, "bob", T0 + 101, T0 + 106, T0 + 1, "bob was here", false);
    del(c, "bob", T0 + 102, T0 + 107, T0, true);
    del(c, "bob", T0 + 103, T0 + 108, T0 + 1, false);
    assert_body(c, "group", hex, "carol", T0, "carol in the group");
    assert_body(c, "contact", "carol", "carol", T0 + 1, "carol to alice");
    /* mallory (not a member) edits in the group */
    edit(c, "mallory", T0 + 110, T0 + 115, T0, "mallory", true);
    assert_body(c, "group", hex, "carol", T0, "carol in the group");
    sc_close(c);
}

/* An edit or delete days after the message, with Content timestamps the
 * sender forged to look like minutes: the receiver goes by the server's
 * clock (envelope server timestamps) and refuses both. */
static void test_late_edit_delete_forged_timestamps(void **state)
{
    sc_client *c = fresh("late");
    (void)state;

    text(c, "bob", T0, T0 + 10, "what I said", false);
    text(c, "bob", T0 + 1, T0 + 11, "keep this", false);
    /* three days later by the server, 1 min later by bob's claim */
    edit(c, "bob", T0 + 60000, T0 + 3 * DAY, T0, "what I never said", false);
    assert_body(c, "contact", "bob", "bob", T0, "what I said");
    del(c, "bob", T0 + 60001, T0 + 3 * DAY + 1, T0 + 1, false);
    assert_body(c, "contact", "bob", "bob", T0 + 1, "keep this");
    /* within the window by both clocks: applied (the check is not too strict) */
    edit(c, "bob", T0 + 60002, T0 + 3600000, T0, "fixed a typo", false);
    assert_body(c, "contact", "bob", "bob", T0, "fixed a typo");
    sc_close(c);
}

/* Timer values out of range: UINT32_MAX seconds is refused (the sender
 * side refuses more than SC_EXPIRE_MAX_S; so does the receiver). */
static void test_timer_absurd_value(void **state)
{
    sc_client *c = fresh("timer_max");
    uint32_t s = 7;
    (void)state;

    timer(c, "bob", T0, T0 + 10, 3600, false);
    assert_int_equal(sc_conv_timer_get(c, "contact", "bob", &s, NULL), SC_OK);
    assert_int_equal(s, 3600);
    timer(c, "bob", T0 + 1, T0 + 11, UINT32_MAX, false);
    assert_int_equal(sc_conv_timer_get(c, "contact", "bob", &s, NULL), SC_OK);
    assert_true(s <= SC_EXPIRE_MAX_S);
    assert_int_equal(s, 3600);
    /* nor through an ordinary message's timer */
    {
        Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
        Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
        dm.body = (char *)"hi";
        dm.expire_timer = UINT32_MAX;
        ct.timestamp = T0 + 2;
        ct.data = &dm;
        deliver(c, "bob", T0 + 12, &ct);
    }
    assert_int_equal(sc_conv_timer_get(c, "contact", "bob", &s, NULL), SC_OK);
    assert_int_equal(s, 3600);
    sc_close(c);
}

/* bob turns the timer off with an ordinary message carrying expire_timer
 * 0 (no timer update flag): the change is shown as a timer row, never
 * silent (alice's next messages would no longer disappear). */
static void test_timer_silent_change(void **state)
{
    sc_client *c = fresh("silent");
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    uint32_t s = 7;
    (void)state;

    timer(c, "bob", T0, T0 + 10, 3600, false);
    assert_int_equal(count(c, "SELECT count(*) FROM client_messages WHERE kind = 'timer'"), 1);
    dm.body = (char *)"by the way";
    dm.expire_timer = 0;
    ct.timestamp = T0 + 100;
    ct.data = &dm;
    deliver(c, "bob", T0 + 110, &ct);
    assert_int_equal(sc_conv_timer_get(c, "contact", "bob", &s, NULL), SC_OK);
    assert_int_equal(s, 0);
    assert_int_equal(count(c, "SELECT count(*) FROM client_messages WHERE kind = 'timer' AND"
                              " extra = '{\"expire_timer\":0}'"),
                     1);
    sc_close(c);
}

/* Two members change the group timer with the same Content.timestamp; two
 * devices get them in opposite orders and must end with the same timer. */
static void test_timer_tie_deterministic(void **state)
{
    sc_client *a = fresh("tie_a"), *b = fresh("tie_b");
    char hex[33];
    uint32_t sa = 0, sb = 0;
    (void)state;

    gid_hex(hex);
    timer(a, "bob", T0, T0 + 10, 60, true);
    timer(a, "carol", T0, T0 + 11, 86400, true);
    timer(b, "carol", T0, T0 + 10, 86400, true);
    timer(b, "bob", T0, T0 + 11, 60, true);
    assert_int_equal(sc_conv_timer_get(a, "group", hex, &sa, NULL), SC_OK);
    assert_int_equal(sc_conv_timer_get(b, "group", hex, &sb, NULL), SC_OK);
    assert_int_equal(sa, sb);
    /* the same with "off" against a timer */
    timer(a, "bob", T0 + 5, T0 + 20, 0, true);
    timer(a, "carol", T0 + 5, T0 + 21, 300, true);
    timer(b, "carol", T0 + 5, T0 + 20, 300, true);
    timer(b, "bob", T0 + 5, T0 + 21, 0, true);
    assert_int_equal(sc_conv_timer_get(a, "group", hex, &sa, NULL), SC_OK);
    assert_int_equal(sc_conv_timer_get(b, "group", hex, &sb, NULL), SC_OK);
    assert_int_equal(sa, sb);
    sc_close(a);
    sc_close(b);
}

/* carol stamps a timer change far in the future: it must not freeze the
 * group's timer against every later change by the others. */
static void test_timer_future_lock(void **state)
{
    sc_client *c = fresh("future");
    char hex[33];
    uint32_t s = 0;
    (void)state;

    gid_hex(hex);
    timer(c, "carol", T0 + 3650 * DAY, T0 + 10, 5, true);
    timer(c, "bob", T0 + 1000, T0 + 1010, 3600, true);
    assert_int_equal(sc_conv_timer_get(c, "group", hex, &s, NULL), SC_OK);
    assert_int_equal(s, 3600);
    sc_close(c);
}

/* Reactions and receipts across conversations: carol's receipt for our
 * message to bob and mallory's reaction into the group change nothing. */
static void test_cross_conversation(void **state)
{
    sc_client *c = fresh("cross");
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__ReceiptMessage rm = SOTTO__CONTENT__RECEIPT_MESSAGE__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__DataMessage__Reaction re = SOTTO__CONTENT__DATA_MESSAGE__REACTION__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    sc_msg_row m;
    uint64_t tss[1] = {T0};
    (void)state;

    /* our own message to bob */
    memset(&m, 0, sizeof m);
    m.conv_kind = "contact";
    m.conv = "bob";
    m.direction = 1;
    m.sender = "alice";
    m.sender_device = 1;
    m.timestamp = T0;
    m.kind = "text";
    m.body = "for bob only";
    m.body_len = strlen(m.body);
    assert_int_equal(sc_msg_insert(c, &m, NULL), SC_OK);
    rm.type = SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ;
    rm.n_timestamps = 1;
    rm.timestamps = tss;
    ct.timestamp = T0 + 5;
    ct.receipt = &rm;
    deliver(c, "carol", T0 + 6, &ct);
    assert_int_equal(count(c, "SELECT count(*) FROM client_receipts"), 0);
    /* a group message by bob; mallory (not a member) reacts into the group */
    text(c, "bob", T0 + 10, T0 + 11, "group text", true);
    gc.id.data = (uint8_t *)G;
    gc.id.len = sizeof G;
    gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
    re.emoji = (char *)"\xf0\x9f\x91\x8d";
    re.target_author = (char *)"bob";
    re.target_timestamp = T0 + 10;
    dm.reaction = &re;
    dm.group = &gc;
    sotto__content__content__init(&ct);
    ct.timestamp = T0 + 20;
    ct.data = &dm;
    deliver(c, "mallory", T0 + 21, &ct);
    assert_int_equal(count(c, "SELECT count(*) FROM client_reactions"), 0);
    /* carol reacts in the 1:1 with alice to alice's message to bob */
    dm.group = NULL;
    re.target_author = (char *)"alice";
    re.target_timestamp = T0;
    ct.timestamp = T0 + 22;
    deliver(c, "carol", T0 + 23, &ct);
    assert_int_equal(count(c, "SELECT count(*) FROM client_reactions"), 0);
    sc_close(c);
}

/* A stranger's content: a timer change is no way around the request (its
 * row is part of the request), a typing indicator shows nothing. */
static int typing_events;
static void on_event(void *ud, const sc_event *ev)
{
    (void)ud;
    if (ev->kind == SC_EV_TYPING)
        typing_events++;
}

static void test_stranger_controls(void **state)
{
    sc_client *c = fresh("stranger");
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__TypingMessage tm = SOTTO__CONTENT__TYPING_MESSAGE__INIT;
    (void)state;

    timer(c, "mallory", T0, T0 + 10, 60, false);
    assert_int_equal(count(c, "SELECT count(*) FROM client_messages WHERE conv = 'mallory' AND"
                              " request = 0"),
                     0);
    c->recv_cb = on_event;
    typing_events = 0;
    tm.action = SOTTO__CONTENT__TYPING_MESSAGE__ACTION__STARTED;
    tm.timestamp = T0 + 20;
    ct.timestamp = T0 + 20;
    ct.typing = &tm;
    deliver(c, "mallory", T0 + 21, &ct);
    assert_int_equal(typing_events, 0);
    /* bob (accepted) does show */
    deliver(c, "bob", T0 + 22, &ct);
    assert_int_equal(typing_events, 1);
    /* nor in a group mallory made with us that we never accepted */
    {
        static const uint8_t g2[SC_GROUP_ID_BYTES] = {0x4d, 0x4d, 0x4d, 0x4d, 0x4d, 0x4d,
                                                      0x4d, 0x4d, 0x4d, 0x4d, 0x4d, 0x4d,
                                                      0x4d, 0x4d, 0x4d, 0x4d};
        char *mem[2] = {(char *)"alice", (char *)"mallory"};
        assert_int_equal(sc_group_upsert(c, g2, "spam", true), SC_OK);
        assert_int_equal(sc_group_set_members(c, g2, mem, 2), SC_OK);
        tm.group_id.data = (uint8_t *)g2;
        tm.group_id.len = sizeof g2;
        ct.timestamp = T0 + 30;
        deliver(c, "mallory", T0 + 31, &ct);
        assert_int_equal(typing_events, 1);
    }
    c->recv_cb = NULL;
    sc_close(c);
}

/* bob quotes carol's group message with words she never wrote: the
 * excerpt shown is the one of carol's message as we hold it. */
static void test_forged_quote(void **state)
{
    sc_client *c = fresh("quote");
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__DataMessage__Quote q = SOTTO__CONTENT__DATA_MESSAGE__QUOTE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    char hex[33];
    int64_t rowid = 0;
    sc_msg m;
    (void)state;

    gid_hex(hex);
    text(c, "carol", T0, T0 + 5, "see you at noon", true);
    gc.id.data = (uint8_t *)G;
    gc.id.len = sizeof G;
    gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
    q.id = T0;
    q.author = (char *)"carol";
    q.text = (char *)"I never liked alice";
    dm.body = (char *)"really?";
    dm.quote = &q;
    dm.group = &gc;
    ct.timestamp = T0 + 50;
    ct.data = &dm;
    deliver(c, "bob", T0 + 55, &ct);
    assert_int_equal(sc_msgops_find(c, "group", hex, "bob", T0 + 50, &rowid), SC_OK);
    assert_int_equal(sc_msg_get(c, rowid, &m), SC_OK);
    assert_non_null(m.extra);
    assert_null(strstr(m.extra, "never liked"));
    assert_non_null(strstr(m.extra, "see you at noon"));
    sc_msg_free(&m);
    sc_close(c);
}

/* Reactions and edits for messages that never arrive are kept for when
 * they come: a flood of them must not grow the store without bound. */
static void test_orphan_flood(void **state)
{
    sc_client *c = fresh("flood");
    (void)state;

    assert_int_equal(sc_db_begin(c), SC_OK);
    for (uint64_t i = 0; i < 2000; i++) {
        Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
        Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
        Sotto__Content__DataMessage__Reaction re = SOTTO__CONTENT__DATA_MESSAGE__REACTION__INIT;
        Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
        Sotto__Content__EditMessage em = SOTTO__CONTENT__EDIT_MESSAGE__INIT;
        Sotto__Content__DataMessage ed = SOTTO__CONTENT__DATA_MESSAGE__INIT;
        size_t len, plen = 0;
        uint8_t buf[512], *padded = NULL;
        pending_emit *pe = sc_pend_new();
        Sotto__Content__Content *out = NULL;
        sc_envelope e;

        gc.id.data = (uint8_t *)G;
        gc.id.len = sizeof G;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        re.emoji = (char *)"\xf0\x9f\x91\x8d";
        re.target_author = (char *)"bob";
        re.target_timestamp = T0 + 1000 + i;
        dm.reaction = &re;
        dm.group = &gc;
        ct.timestamp = T0 + 100000 + i;
        if (i % 2 == 0) {
            ct.data = &dm;
        } else {
            ed.body = (char *)"an edit of nothing";
            em.target_timestamp = T0 + 1000 + i;
            em.data = &ed;
            ct.edit = &em;
        }
        len = sotto__content__content__get_packed_size(&ct);
        assert_true(len <= sizeof buf);
        sotto__content__content__pack(&ct, buf);
        assert_int_equal(sc_pad(buf, len, &padded, &plen), SC_OK);
        memset(&e, 0, sizeof e);
        seq++;
        memcpy(e.id, &seq, sizeof seq);
        e.id_len = sizeof seq;
        snprintf(e.source, sizeof e.source, "%s", i % 2 ? "bob" : "carol");
        e.source_device = 1;
        e.server_ts = T0 + 100000 + i;
        assert_int_equal(sc_content_handle(c, &e, padded, plen, pe, &out), SC_OK);
        sc_content_free(out);
        free(padded);
        free(pe);
    }
    assert_int_equal(sc_db_commit(c), SC_OK);
    assert_true(count(c, "SELECT count(*) FROM client_reactions") <= 256);
    assert_true(count(c, "SELECT count(*) FROM client_edits") <= 256);
    assert_true(count(c, "SELECT count(*) FROM client_messages") <= 600);
    /* deletes of 1000 messages that never come */
    for (uint64_t i = 0; i < 1000; i++)
        del(c, "bob", T0 + 300000 + i, T0 + 300000 + i, T0 + 200000 + i, false);
    assert_true(count(c, "SELECT count(*) FROM client_tombstones") <= 256);
    /* bob edits his own message 1000 times, each 3000 bytes (a sender
     * sends at most 2048 bytes in an edit) */
    text(c, "bob", T0 + 400000, T0 + 400000, "the original", false);
    {
        char big[3001];
        memset(big, 'x', 3000);
        big[3000] = '\0';
        edit(c, "bob", T0 + 400001, T0 + 400001, T0 + 400000, big, false);
        assert_body(c, "contact", "bob", "bob", T0 + 400000, "the original");
    }
    for (uint64_t i = 0; i < 1000; i++)
        edit(c, "bob", T0 + 400010 + i, T0 + 400010 + i, T0 + 400000, "version", false);
    assert_true(count(c, "SELECT count(*) FROM client_edits WHERE target_ts = 1800000400000") <=
                128);
    assert_true(count(c, "SELECT count(*) FROM client_messages WHERE kind = 'edit'") <= 512);
    sc_close(c);
}

/* The rest of the list, which holds: a non-member's group timer change
 * and group text, a read receipt then a late delivery receipt (no flip
 * back), a receipt with 100,000 timestamps. */
static void test_holds(void **state)
{
    sc_client *c = fresh("holds");
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__ReceiptMessage rm = SOTTO__CONTENT__RECEIPT_MESSAGE__INIT;
    sc_msg_row m;
    uint64_t *tss = calloc(100000, sizeof *tss);
    char hex[33];
    uint32_t s = 9;
    (void)state;

    assert_non_null(tss);
    gid_hex(hex);
    timer(c, "mallory", T0, T0 + 1, 60, true);
    assert_int_equal(sc_conv_timer_get(c, "group", hex, &s, NULL), SC_OK);
    assert_int_equal(s, 0);
    text(c, "mallory", T0 + 2, T0 + 3, "let me in", true);
    assert_int_equal(count(c, "SELECT count(*) FROM client_messages WHERE sender = 'mallory'"), 0);
    memset(&m, 0, sizeof m);
    m.conv_kind = "contact";
    m.conv = "bob";
    m.direction = 1;
    m.sender = "alice";
    m.sender_device = 1;
    m.timestamp = T0;
    m.kind = "text";
    m.body = "for bob";
    m.body_len = strlen(m.body);
    assert_int_equal(sc_msg_insert(c, &m, NULL), SC_OK);
    tss[0] = T0;
    rm.timestamps = tss;
    rm.n_timestamps = 1;
    rm.type = SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ;
    ct.timestamp = T0 + 10;
    ct.receipt = &rm;
    deliver(c, "bob", T0 + 11, &ct);
    assert_int_equal(count(c, "SELECT count(*) FROM client_messages WHERE kind = 'receipt'"), 1);
    rm.type = SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__DELIVERY;
    ct.timestamp = T0 + 12;
    deliver(c, "bob", T0 + 13, &ct);
    assert_int_equal(count(c, "SELECT state FROM client_receipts WHERE recipient = 'bob'"), 2);
    /* the late delivery receipt, and the read one again under a new
     * timestamp, change nothing: no new receipt event */
    rm.type = SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ;
    ct.timestamp = T0 + 16;
    deliver(c, "bob", T0 + 17, &ct);
    assert_int_equal(count(c, "SELECT count(*) FROM client_messages WHERE kind = 'receipt'"), 1);
    rm.type = SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__DELIVERY;
    for (size_t i = 0; i < 100000; i++)
        tss[i] = T0 + 1000 + i;
    rm.n_timestamps = 100000;
    ct.timestamp = T0 + 14;
    deliver(c, "bob", T0 + 15, &ct);
    assert_int_equal(count(c, "SELECT count(*) FROM client_receipts"), 1);
    free(tss);
    sc_close(c);
}

/* carol (group G) reacts in G to a message of bob's that is not here
 * yet; it turns out to be bob's private message to alice: carol's
 * reaction must not show on it. Invalid emoji are dropped. */
static int n_reactions_seen;
static void on_row(void *ud, const sc_event *ev)
{
    (void)ud;
    n_reactions_seen = (int)ev->n_reactions;
}

static void test_reaction_cross_conversation(void **state)
{
    sc_client *c = fresh("xreact");
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__DataMessage__Reaction re = SOTTO__CONTENT__DATA_MESSAGE__REACTION__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    static const char *const bad[] = {"abc", "", "\xf0\x9f", "\xc2\x85",
                                      "\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d"
                                      "\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d"
                                      "\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d"};
    int64_t rowid = 0;
    sc_msg m;
    (void)state;

    gc.id.data = (uint8_t *)G;
    gc.id.len = sizeof G;
    gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
    re.target_author = (char *)"bob";
    re.target_timestamp = T0 + 77;
    dm.reaction = &re;
    dm.group = &gc;
    ct.data = &dm;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        re.emoji = (char *)bad[i];
        ct.timestamp = T0 + 10 + i;
        deliver(c, "carol", T0 + 10 + i, &ct);
    }
    assert_int_equal(count(c, "SELECT count(*) FROM client_reactions"), 0);
    re.emoji = (char *)"\xf0\x9f\x98\x82";
    ct.timestamp = T0 + 50;
    deliver(c, "carol", T0 + 51, &ct);
    text(c, "bob", T0 + 77, T0 + 80, "just between us", false);
    assert_int_equal(sc_msgops_find(c, "contact", "bob", "bob", T0 + 77, &rowid), SC_OK);
    assert_int_equal(sc_msg_get(c, rowid, &m), SC_OK);
    n_reactions_seen = -1;
    assert_int_equal(sc_emit_row(c, &m, on_row, NULL), SC_OK);
    sc_msg_free(&m);
    assert_int_equal(n_reactions_seen, 0);
    sc_close(c);
}

/* carol is blocked: her content of every kind leaves nothing behind. */
static void test_blocked_every_kind(void **state)
{
    sc_client *c = fresh("blocked");
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__ReceiptMessage rm = SOTTO__CONTENT__RECEIPT_MESSAGE__INIT;
    Sotto__Content__TypingMessage tm = SOTTO__CONTENT__TYPING_MESSAGE__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__DataMessage__Reaction re = SOTTO__CONTENT__DATA_MESSAGE__REACTION__INIT;
    uint64_t tss[1] = {T0};
    long long before;
    bool added = false;
    char hex[33];
    uint32_t s = 0;
    (void)state;

    gid_hex(hex);
    text(c, "bob", T0, T0 + 1, "bob's", true);
    assert_int_equal(sc_blocked_add(c, "carol", T0, &added), SC_OK);
    assert_true(added);
    before = count(c, "SELECT count(*) FROM client_messages");
    text(c, "carol", T0 + 10, T0 + 11, "let me in", false);
    text(c, "carol", T0 + 12, T0 + 13, "in the group", true);
    edit(c, "carol", T0 + 14, T0 + 15, T0 + 10, "x", false);
    del(c, "carol", T0 + 16, T0 + 17, T0 + 10, false);
    timer(c, "carol", T0 + 18, T0 + 19, 60, true);
    rm.type = SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ;
    rm.n_timestamps = 1;
    rm.timestamps = tss;
    ct.timestamp = T0 + 20;
    ct.receipt = &rm;
    deliver(c, "carol", T0 + 21, &ct);
    sotto__content__content__init(&ct);
    re.emoji = (char *)"\xf0\x9f\x91\x8d";
    re.target_author = (char *)"bob";
    re.target_timestamp = T0;
    dm.reaction = &re;
    ct.timestamp = T0 + 22;
    ct.data = &dm;
    deliver(c, "carol", T0 + 23, &ct);
    c->recv_cb = on_event;
    typing_events = 0;
    sotto__content__content__init(&ct);
    tm.action = SOTTO__CONTENT__TYPING_MESSAGE__ACTION__STARTED;
    ct.timestamp = T0 + 24;
    ct.typing = &tm;
    deliver(c, "carol", T0 + 25, &ct);
    c->recv_cb = NULL;
    assert_int_equal(typing_events, 0);
    assert_int_equal(count(c, "SELECT count(*) FROM client_messages"), before);
    assert_int_equal(count(c, "SELECT count(*) FROM client_reactions"), 0);
    assert_int_equal(count(c, "SELECT count(*) FROM client_edits"), 0);
    assert_int_equal(count(c, "SELECT count(*) FROM client_tombstones"), 0);
    assert_int_equal(sc_conv_timer_get(c, "group", hex, &s, NULL), SC_OK);
    assert_int_equal(s, 0);
    sc_close(c);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-everyday-attack.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_others_messages),
        cmocka_unit_test(test_late_edit_delete_forged_timestamps),
        cmocka_unit_test(test_timer_absurd_value),
        cmocka_unit_test(test_timer_silent_change),
        cmocka_unit_test(test_timer_tie_deterministic),
        cmocka_unit_test(test_timer_future_lock),
        cmocka_unit_test(test_cross_conversation),
        cmocka_unit_test(test_stranger_controls),
        cmocka_unit_test(test_forged_quote),
        cmocka_unit_test(test_orphan_flood),
        cmocka_unit_test(test_holds),
        cmocka_unit_test(test_reaction_cross_conversation),
        cmocka_unit_test(test_blocked_every_kind),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
