/*
 * Fuzz target: what the client DOES with decrypted content (issue 11) --
 * the handlers behind the decoder, not only the decoder (fuzz_content.c).
 *
 * An input is a sequence of records, each [who (1 byte)][len (2 bytes,
 * big-endian)][len bytes: a serialized Content (proto/content.proto),
 * unpadded]. Each record is padded as a sender pads it and handed to
 * sc_content_handle() -- the receive path right after the Signal session
 * decrypted an envelope -- as if it came from:
 *   who % 4 == 0  bob (device 1), an accepted contact, member of group G
 *   who % 4 == 1  carol (device 1), likewise
 *   who % 4 == 2  alice device 2: another device of this account (syncs)
 *   who % 4 == 3  mallory (device 1), a stranger
 * to the offline account alice (device 1; the server address refuses
 * connections, so queued answers -- receipts, group state -- stay queued).
 * Every row a record stores is then read back and turned into an event
 * (sc_emit_row), as receive/listen/the daemon do. The whole input runs in
 * one transaction that is rolled back at the end, so inputs do not leak
 * state into each other; records of one input see each other's effects
 * (a message, then its reaction, edit, delete; a delete before its message).
 *
 * Invariants (abort on violation): no crash or out-of-bounds access
 * (ASan/UBSan in the fuzz build); every row a handler reports exists and
 * makes an event whose strings are NUL-terminated and whose arrays hold
 * what their counts say; a record the handlers refuse leaves nothing
 * behind (its savepoint is rolled back: the history's row count is the
 * same as before it).
 *
 * With SOTTO_FUZZ_WRITE_SEEDS=DIR the target writes its seed corpus
 * (tests/fuzz/corpus/content_handler/): sequences built with the same
 * protobuf-c code the client sends with (a text, a reply, a mention, a
 * reaction and its removal, an edit, a delete, an edit and a delete before
 * their message, a timer change, receipts, typing, a read sync, a block
 * list, a configuration, a profile key, a long text pointer, a group
 * message).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "everyday.h"
#include "internal.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sc_client *g_c;
static uint8_t g_gid[SC_GROUP_ID_BYTES] = {0x47, 0x47, 0x47, 0x47, 0x47, 0x47, 0x47, 0x47,
                                           0x47, 0x47, 0x47, 0x47, 0x47, 0x47, 0x47, 0x47};
static volatile uint8_t g_sink;

static void touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t x = 0;

    if (n > 0 && p == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        x ^= b[i];
    g_sink ^= x;
}

static void touch_opt(const char *s)
{
    if (s)
        touch(s, strlen(s) + 1);
}

static void setup(void)
{
    static char tmpl[] = "/tmp/sotto-fuzz-content-handler.XXXXXX";
    char err[256];
    const char *home = mkdtemp(tmpl);
    char *members[3] = {(char *)"alice", (char *)"bob", (char *)"carol"};
    sc_options o;

    if (home == NULL)
        abort();
    memset(&o, 0, sizeof o);
    o.account = "alice";
    o.data_home = home;
    if (sc_open(&g_c, &o, err, sizeof err) != SC_OK)
        abort();
    if (sc_cfg_set_text(g_c, "username", "alice") != SC_OK ||
        sc_cfg_set_u64(g_c, "device_id", 1) != SC_OK ||
        sc_cfg_set_text(g_c, "server_url", "https://127.0.0.1:1") != SC_OK ||
        sc_cfg_set_text(g_c, "pin",
                        "0000000000000000000000000000000000000000000000000000000000000000") !=
            SC_OK)
        abort();
    sc_close(g_c);
    g_c = NULL;
    o.must_exist = true;
    if (sc_open(&g_c, &o, err, sizeof err) != SC_OK || sc_username(g_c) == NULL)
        abort();
    /* bob and carol: accepted contacts; group G: alice, bob, carol */
    if (sc_contact_touch(g_c, "bob", 1) != SC_OK || sc_contact_touch(g_c, "carol", 1) != SC_OK ||
        sc_requests_on_send(g_c, "contact", "bob") != SC_OK ||
        sc_requests_on_send(g_c, "contact", "carol") != SC_OK ||
        sc_group_upsert(g_c, g_gid, "G", true) != SC_OK ||
        sc_group_set_members(g_c, g_gid, members, 3) != SC_OK)
        abort();
    {
        char hex[33];
        sc_hex(g_gid, sizeof g_gid, hex);
        if (sc_requests_on_send(g_c, "group", hex) != SC_OK)
            abort();
    }
}

static void check_event(void *ud, const sc_event *ev)
{
    (void)ud;
    touch_opt(ev->sender);
    touch_opt(ev->conversation);
    touch_opt(ev->target_author);
    touch_opt(ev->emoji);
    touch_opt(ev->receipt_type);
    touch_opt(ev->quote_author);
    touch_opt(ev->quote_text);
    touch_opt(ev->display_name);
    touch_opt(ev->group_id);
    touch_opt(ev->group_name);
    if (ev->body == NULL)
        abort();
    touch(ev->body, ev->body_len);
    touch(ev->receipt_timestamps, ev->n_receipt_timestamps * sizeof(uint64_t));
    for (size_t i = 0; i < ev->n_mentions; i++) {
        touch_opt(ev->mentions[i].name);
        if ((uint64_t)ev->mentions[i].start + ev->mentions[i].length > ev->body_len)
            abort();
    }
    for (size_t i = 0; i < ev->n_reactions; i++) {
        touch_opt(ev->reactions[i].reactor);
        touch_opt(ev->reactions[i].emoji);
    }
    for (size_t i = 0; i < ev->n_receipts; i++) {
        touch_opt(ev->receipts[i].recipient);
        touch_opt(ev->receipts[i].state);
    }
    for (size_t i = 0; i < ev->n_attachments; i++) {
        touch_opt(ev->attachments[i].file_name);
        touch_opt(ev->attachments[i].path);
    }
}

static void run_record(uint8_t who, const uint8_t *p, size_t n, uint64_t seq)
{
    static const char *const names[4] = {"bob", "carol", "alice", "mallory"};
    uint8_t *padded = NULL;
    size_t padded_len = 0;
    sc_envelope e;
    pending_emit *pe = sc_pend_new();
    Sotto__Content__Content *ct = NULL;
    int64_t before = 0, after = 0;
    const int64_t *rows;
    size_t nr;
    int rc;

    if (pe == NULL || sc_pad(p, n, &padded, &padded_len) != SC_OK) {
        free(pe);
        return;
    }
    memset(&e, 0, sizeof e);
    memcpy(e.id, &seq, sizeof seq);
    snprintf(e.source, sizeof e.source, "%s", names[who % 4]);
    e.source_device = who % 4 == 2 ? 2 : 1;
    e.id_len = sizeof e.id;
    e.server_ts = 1800000000000ull + seq;
    (void)sc_msg_max_id(g_c, &before);
    if (sc_db_begin(g_c) != SC_OK)
        abort();
    rc = sc_content_handle(g_c, &e, padded, padded_len, pe, &ct);
    if (rc == SC_OK) {
        if (sc_db_commit(g_c) != SC_OK)
            abort();
        nr = sc_pend_rows(pe, &rows);
        for (size_t i = 0; i < nr; i++) {
            sc_msg m;
            if (sc_msg_get(g_c, rows[i], &m) != SC_OK)
                abort(); /* a reported row must exist */
            (void)sc_emit_row(g_c, &m, check_event, NULL);
            sc_msg_free(&m);
        }
    } else {
        sc_db_rollback(g_c);
        (void)sc_msg_max_id(g_c, &after);
        if (after != before)
            abort(); /* a refused record left rows behind */
    }
    g_c->scrub_due = false;
    sc_content_free(ct);
    free(padded);
    free(pe);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint64_t seq;
    size_t off = 0;

    if (g_c == NULL)
        setup();
    if (sc_db_begin(g_c) != SC_OK)
        abort();
    while (off + 3 <= size) {
        uint8_t who = data[off];
        size_t len = ((size_t)data[off + 1] << 8) | data[off + 2];
        off += 3;
        if (len > size - off)
            len = size - off;
        run_record(who, data + off, len, ++seq);
        off += len;
    }
    sc_db_rollback(g_c); /* the next input starts from the same store */
    return 0;
}

/* ------------------------------------------------------------ seeds */

typedef struct seedbuf {
    uint8_t b[16384];
    size_t n;
} seedbuf;

static void add(seedbuf *s, uint8_t who, const Sotto__Content__Content *ct)
{
    size_t len = sotto__content__content__get_packed_size(ct);
    if (s->n + 3 + len > sizeof s->b)
        abort();
    s->b[s->n++] = who;
    s->b[s->n++] = (uint8_t)(len >> 8);
    s->b[s->n++] = (uint8_t)len;
    sotto__content__content__pack(ct, s->b + s->n);
    s->n += len;
}

static void put(const char *dir, const char *name, const seedbuf *s)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(s->b, 1, s->n, f) != s->n)
        abort();
    fclose(f);
}

/* A text from `who` at ts, optionally in group G. */
static void text(seedbuf *s, uint8_t who, uint64_t ts, const char *body, bool group)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    ct.timestamp = ts;
    dm.body = (char *)body;
    if (group) {
        gc.id.data = g_gid;
        gc.id.len = sizeof g_gid;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        dm.group = &gc;
    }
    ct.data = &dm;
    add(s, who, &ct);
}

static void write_seeds(const char *dir)
{
    seedbuf s;
    Sotto__Content__Content ct;
    Sotto__Content__DataMessage dm;
    Sotto__Content__DataMessage__Reaction re;
    Sotto__Content__DataMessage__Delete de;
    Sotto__Content__DataMessage__Quote qu;
    Sotto__Content__DataMessage__Mention mn, *mnp = &mn;
    Sotto__Content__EditMessage em;
    Sotto__Content__ReceiptMessage rm;
    Sotto__Content__TypingMessage tm;
    Sotto__Content__SyncMessage sy;
    Sotto__Content__SyncMessage__Sent se;
    Sotto__Content__SyncMessage__Read rd, *rdp = &rd;
    Sotto__Content__SyncMessage__Blocked bl;
    Sotto__Content__SyncMessage__Configuration cf;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    Sotto__Content__AttachmentPointer lt = SOTTO__CONTENT__ATTACHMENT_POINTER__INIT;
    uint64_t tss[2] = {1800000000100ull, 1800000000101ull};
    uint8_t key[64], dig[32], pk[32];
    char *blocked[1] = {(char *)"mallory"};

    memset(key, 7, sizeof key);
    memset(dig, 9, sizeof dig);
    memset(pk, 5, sizeof pk);
    gc.id.data = g_gid;
    gc.id.len = sizeof g_gid;
    gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;

    /* a text, a reply to it, a reaction, its replacement and removal, an
     * edit, a delete */
    memset(&s, 0, sizeof s);
    text(&s, 0, 1800000000000ull, "hello alice", false);
    sotto__content__content__init(&ct);
    sotto__content__data_message__init(&dm);
    sotto__content__data_message__quote__init(&qu);
    qu.id = 1800000000000ull;
    qu.author = (char *)"bob";
    qu.text = (char *)"hello";
    dm.body = (char *)"a reply";
    dm.quote = &qu;
    ct.timestamp = 1800000000001ull;
    ct.data = &dm;
    add(&s, 0, &ct);
    for (int i = 0; i < 3; i++) {
        sotto__content__content__init(&ct);
        sotto__content__data_message__init(&dm);
        sotto__content__data_message__reaction__init(&re);
        re.emoji = (char *)(i == 0 ? "\xf0\x9f\x91\x8d" : "\xe2\x9d\xa4");
        re.remove = i == 2;
        re.target_author = (char *)"bob";
        re.target_timestamp = 1800000000000ull;
        dm.reaction = &re;
        ct.timestamp = 1800000000010ull + (uint64_t)i;
        ct.data = &dm;
        add(&s, 1 - (i == 1), &ct); /* carol, bob, carol */
    }
    sotto__content__content__init(&ct);
    sotto__content__edit_message__init(&em);
    sotto__content__data_message__init(&dm);
    dm.body = (char *)"hello alice (edited)";
    em.target_timestamp = 1800000000000ull;
    em.data = &dm;
    ct.timestamp = 1800000000020ull;
    ct.edit = &em;
    add(&s, 0, &ct);
    sotto__content__content__init(&ct);
    sotto__content__data_message__init(&dm);
    sotto__content__data_message__delete__init(&de);
    de.target_timestamp = 1800000000000ull;
    dm.delete_ = &de;
    ct.timestamp = 1800000000030ull;
    ct.data = &dm;
    add(&s, 0, &ct);
    put(dir, "react_edit_delete", &s);

    /* an edit and a delete before their message; the same record twice */
    memset(&s, 0, sizeof s);
    sotto__content__content__init(&ct);
    sotto__content__edit_message__init(&em);
    sotto__content__data_message__init(&dm);
    dm.body = (char *)"second version";
    em.target_timestamp = 1800000000200ull;
    em.data = &dm;
    ct.timestamp = 1800000000210ull;
    ct.edit = &em;
    add(&s, 1, &ct);
    add(&s, 1, &ct);
    text(&s, 1, 1800000000200ull, "first version", false);
    sotto__content__content__init(&ct);
    sotto__content__data_message__init(&dm);
    sotto__content__data_message__delete__init(&de);
    de.target_timestamp = 1800000000300ull;
    dm.delete_ = &de;
    ct.timestamp = 1800000000310ull;
    ct.data = &dm;
    add(&s, 0, &ct);
    text(&s, 0, 1800000000300ull, "deleted before it came", false);
    put(dir, "out_of_order", &s);

    /* a group message with a mention; a timer change; typing */
    memset(&s, 0, sizeof s);
    sotto__content__content__init(&ct);
    sotto__content__data_message__init(&dm);
    sotto__content__data_message__mention__init(&mn);
    dm.body = (char *)"hi @alice";
    mn.start = 3;
    mn.length = 6;
    mn.name = (char *)"alice";
    dm.n_mentions = 1;
    dm.mentions = &mnp;
    dm.group = &gc;
    ct.timestamp = 1800000000400ull;
    ct.data = &dm;
    add(&s, 0, &ct);
    sotto__content__content__init(&ct);
    sotto__content__data_message__init(&dm);
    dm.flags = SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_EXPIRATION_TIMER_UPDATE;
    dm.expire_timer = 3600;
    dm.group = &gc;
    ct.timestamp = 1800000000410ull;
    ct.data = &dm;
    add(&s, 1, &ct);
    text(&s, 1, 1800000000420ull, "this one disappears", true);
    sotto__content__content__init(&ct);
    sotto__content__typing_message__init(&tm);
    tm.action = SOTTO__CONTENT__TYPING_MESSAGE__ACTION__STARTED;
    tm.timestamp = 1800000000430ull;
    tm.group_id.data = g_gid;
    tm.group_id.len = sizeof g_gid;
    ct.timestamp = 1800000000430ull;
    ct.typing = &tm;
    add(&s, 0, &ct);
    put(dir, "group_mention_timer_typing", &s);

    /* our own message (a sync copy from device 2), bob's receipts for it */
    memset(&s, 0, sizeof s);
    sotto__content__content__init(&ct);
    sotto__content__sync_message__init(&sy);
    sotto__content__sync_message__sent__init(&se);
    sotto__content__data_message__init(&dm);
    dm.body = (char *)"sent from the laptop";
    se.destination = (char *)"bob";
    se.timestamp = tss[0];
    se.message = &dm;
    sy.sent = &se;
    ct.timestamp = tss[0];
    ct.sync = &sy;
    add(&s, 2, &ct);
    for (int i = 0; i < 2; i++) {
        sotto__content__content__init(&ct);
        sotto__content__receipt_message__init(&rm);
        rm.type = i == 0 ? SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__DELIVERY
                         : SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ;
        rm.n_timestamps = 2;
        rm.timestamps = tss;
        ct.timestamp = 1800000000110ull + (uint64_t)i;
        ct.receipt = &rm;
        add(&s, 0, &ct);
    }
    put(dir, "sync_and_receipts", &s);

    /* syncs from our other device: read state, block list, configuration,
     * profile key; then a message from the blocked stranger */
    memset(&s, 0, sizeof s);
    text(&s, 0, 1800000000500ull, "read on the laptop", false);
    sotto__content__content__init(&ct);
    sotto__content__sync_message__init(&sy);
    sotto__content__sync_message__read__init(&rd);
    rd.sender = (char *)"bob";
    rd.timestamp = 1800000000500ull;
    sy.n_read = 1;
    sy.read = &rdp;
    ct.timestamp = 1800000000510ull;
    ct.sync = &sy;
    add(&s, 2, &ct);
    sotto__content__content__init(&ct);
    sotto__content__sync_message__init(&sy);
    sotto__content__sync_message__blocked__init(&bl);
    bl.n_names = 1;
    bl.names = blocked;
    sy.blocked = &bl;
    ct.timestamp = 1800000000520ull;
    ct.sync = &sy;
    add(&s, 2, &ct);
    sotto__content__content__init(&ct);
    sotto__content__sync_message__init(&sy);
    sotto__content__sync_message__configuration__init(&cf);
    cf.read_receipts = false;
    cf.typing_indicators = true;
    sy.configuration = &cf;
    ct.timestamp = 1800000000530ull;
    ct.sync = &sy;
    add(&s, 2, &ct);
    sotto__content__content__init(&ct);
    sotto__content__sync_message__init(&sy);
    sy.profile_key.data = pk;
    sy.profile_key.len = sizeof pk;
    sy.profile_name = (char *)"Alice";
    ct.timestamp = 1800000000540ull;
    ct.sync = &sy;
    add(&s, 2, &ct);
    text(&s, 3, 1800000000550ull, "from a blocked stranger", false);
    put(dir, "own_syncs_and_block", &s);

    /* a stranger's request; a profile key; a long text pointer */
    memset(&s, 0, sizeof s);
    text(&s, 3, 1800000000600ull, "hi, we have not met", false);
    sotto__content__content__init(&ct);
    sotto__content__data_message__init(&dm);
    dm.body = (char *)"with my profile";
    dm.profile_key.data = pk;
    dm.profile_key.len = sizeof pk;
    ct.timestamp = 1800000000610ull;
    ct.data = &dm;
    add(&s, 0, &ct);
    sotto__content__content__init(&ct);
    sotto__content__data_message__init(&dm);
    dm.body = (char *)"the first 2 KiB of a long text";
    lt.id = (char *)"0123456789abcdef0123456789abcdef";
    lt.key.data = key;
    lt.key.len = sizeof key;
    lt.digest.data = dig;
    lt.digest.len = sizeof dig;
    lt.size = 3000;
    lt.content_type = (char *)SC_LONG_TEXT_TYPE;
    dm.long_text = &lt;
    ct.timestamp = 1800000000620ull;
    ct.data = &dm;
    add(&s, 1, &ct);
    put(dir, "request_profile_long_text", &s);
}

__attribute__((constructor)) static void maybe_write_seeds(void)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    if (dir && dir[0]) {
        write_seeds(dir);
        exit(0);
    }
}
