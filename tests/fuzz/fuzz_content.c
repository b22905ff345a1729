/*
 * Fuzz target: the client's parsers of peer-controlled and stored data
 * (client/core):
 *
 *  - first byte even: the rest is a decrypted, padded Content
 *    (proto/content.proto) as sc_process_envelope() gets it from the
 *    session: sc_content_decode() (padding, then protobuf-c), then the
 *    checks the receive path applies (UTF-8 texts, usernames, group ids),
 *    then the attachment pointers as they are stored in a history row
 *    (sc_attachment_pointers_json) and parsed back for the download
 *    (sc_attachment_pointer_from_json);
 *  - first byte odd: the rest is a history row's stored `extra` JSON
 *    (a damaged or hostile local database) handed to the stored-pointer
 *    parser.
 *
 * Invariants (abort on violation):
 *  - nothing crashes or reads out of bounds (ASan/UBSan in the fuzz build);
 *  - a decoded Content re-encodes stably: pack(unpack(pack(c))) == pack(c)
 *    (when it has no unknown fields, see fuzz_api_request.c);
 *  - a pointer survives the store/parse round trip exactly (id, key,
 *    digest, size, and the names when they are valid UTF-8) when it is
 *    well-formed, and is refused (SC_E_INTEGRITY) when it is not;
 *  - whatever the stored-pointer parser accepts satisfies its contract:
 *    32 lowercase hex id, 64-byte key, 32-byte digest, size <= 100 MiB,
 *    NUL-terminated strings.
 *
 * With SOTTO_FUZZ_WRITE_SEEDS=DIR the target writes its seed corpus
 * (tests/fuzz/corpus/content/): Content messages built and padded exactly
 * as the client sends them (text, a 2 KiB+ UTF-8 text, group update,
 * group message, quit, attachment pointer, sync copy, receipt, null
 * message) and stored-row JSON.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "sotto/attachment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

static void touch_str(const char *s)
{
    if (s == NULL)
        abort();
    touch(s, strlen(s) + 1);
}

static bool hex32_id(const char *id)
{
    return id != NULL && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

static bool pointer_well_formed(const Sotto__Content__AttachmentPointer *p)
{
    return hex32_id(p->id) && p->key.len == SOTTO_ATTACHMENT_KEY_BYTES && p->digest.len == 32 &&
           p->size <= SC_ATTACHMENT_MAX;
}

/* What the stored-pointer parser hands out must meet its contract. */
static void check_parsed(const Sotto__Content__AttachmentPointer *q)
{
    if (!hex32_id(q->id) || q->key.len != SOTTO_ATTACHMENT_KEY_BYTES || q->digest.len != 32 ||
        q->size > SC_ATTACHMENT_MAX)
        abort();
    touch(q->key.data, q->key.len);
    touch(q->digest.data, q->digest.len);
    touch_str(q->content_type);
    touch_str(q->file_name);
}

/* The stored form of dm's pointers parses back to the same pointers. */
static void check_pointer_round_trip(const Sotto__Content__DataMessage *dm)
{
    char *s = sc_attachment_pointers_json(dm);
    json_t *o, *arr;

    if (dm->n_attachments == 0) {
        if (s != NULL)
            abort();
        return;
    }
    if (s == NULL)
        return; /* out of memory, or jansson refused a string */
    o = json_loads(s, 0, NULL);
    if (o == NULL)
        abort(); /* we wrote it: it must load */
    arr = json_object_get(o, "attachments");
    if (json_array_size(arr) != dm->n_attachments)
        abort();
    for (size_t i = 0; i < dm->n_attachments; i++) {
        const Sotto__Content__AttachmentPointer *p = dm->attachments[i];
        Sotto__Content__AttachmentPointer q;
        int rc = sc_attachment_pointer_from_json(json_array_get(arr, i), &q);

        if (!pointer_well_formed(p)) {
            if (rc != SC_E_INTEGRITY)
                abort();
            continue;
        }
        if (rc != SC_OK)
            abort();
        check_parsed(&q);
        if (strcmp(q.id, p->id) != 0 || memcmp(q.key.data, p->key.data, q.key.len) != 0 ||
            memcmp(q.digest.data, p->digest.data, q.digest.len) != 0 || q.size != p->size)
            abort();
        if (sc_utf8_valid(p->file_name, strlen(p->file_name)) &&
            strcmp(q.file_name, p->file_name) != 0)
            abort();
        if (p->content_type[0] != '\0' && sc_utf8_valid(p->content_type, strlen(p->content_type)) &&
            strcmp(q.content_type, p->content_type) != 0)
            abort();
        sc_attachment_pointer_clear(&q);
    }
    json_decref(o);
    free(s);
}

static void check_data(const Sotto__Content__DataMessage *dm)
{
    if (dm == NULL)
        return;
    touch_str(dm->body);
    g_sink ^= (uint8_t)sc_utf8_valid(dm->body, strlen(dm->body));
    if (dm->n_attachments > 0 && dm->attachments == NULL)
        abort();
    for (size_t i = 0; i < dm->n_attachments; i++) {
        const Sotto__Content__AttachmentPointer *p = dm->attachments[i];
        if (p == NULL)
            abort();
        touch_str(p->id);
        touch_str(p->content_type);
        touch_str(p->file_name);
        touch(p->key.data, p->key.len);
        touch(p->digest.data, p->digest.len);
    }
    if (dm->group) {
        const Sotto__Content__GroupContext *g = dm->group;
        touch(g->id.data, g->id.len);
        touch_str(g->name);
        if (g->n_members > 0 && g->members == NULL)
            abort();
        for (size_t i = 0; i < g->n_members; i++) {
            touch_str(g->members[i]);
            g_sink ^= (uint8_t)sc_username_valid(g->members[i]);
        }
    }
    check_pointer_round_trip(dm);
}

/* Unknown fields anywhere in m (nested messages included): protobuf-c keeps
 * them, e.g. a known field number with the wrong wire type, and re-packs
 * them after the known fields, so such a message does not re-encode to the
 * same bytes. The client ignores unknown fields. */
static bool has_unknown(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d;

    if (m == NULL)
        return false;
    if (m->n_unknown_fields > 0)
        return true;
    d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (has_unknown(v[k]))
                    return true;
        } else if (has_unknown(*(ProtobufCMessage *const *)(base + f->offset))) {
            return true;
        }
    }
    return false;
}

static void check_reencode(const Sotto__Content__Content *ct)
{
    size_t n = sotto__content__content__get_packed_size(ct), n2;
    uint8_t *a = malloc(n + 1), *b = NULL;
    Sotto__Content__Content *again = NULL;

    if (a == NULL)
        abort();
    if (sotto__content__content__pack(ct, a) != n)
        abort();
    again = sotto__content__content__unpack(NULL, n, a);
    if (again == NULL) {
        /* only unknown fields may fail to re-decode (see file comment) */
        if (!has_unknown(&ct->base))
            abort();
        free(a);
        return;
    }
    n2 = sotto__content__content__get_packed_size(again);
    b = malloc(n2 + 1);
    if (b == NULL)
        abort();
    if (sotto__content__content__pack(again, b) != n2)
        abort();
    if ((n2 != n || memcmp(a, b, n) != 0) && !has_unknown(&ct->base))
        abort();
    sotto__content__content__free_unpacked(again, NULL);
    free(a);
    free(b);
}

static void fuzz_content(const uint8_t *data, size_t size)
{
    Sotto__Content__Content *ct = NULL;
    uint8_t *copy = malloc(size + 1);

    if (copy == NULL)
        abort();
    if (size > 0)
        memcpy(copy, data, size);
    if (sc_content_decode(copy, size, &ct) != SC_OK) {
        if (ct != NULL)
            abort();
        free(copy);
        return;
    }
    check_data(ct->data);
    if (ct->sync && ct->sync->sent) {
        touch_str(ct->sync->sent->destination);
        check_data(ct->sync->sent->message);
    }
    if (ct->receipt) {
        if (ct->receipt->n_timestamps > 0 && ct->receipt->timestamps == NULL)
            abort();
        touch(ct->receipt->timestamps, ct->receipt->n_timestamps * sizeof(uint64_t));
    }
    if (ct->null_message)
        touch(ct->null_message->padding.data, ct->null_message->padding.len);
    check_reencode(ct);
    sc_content_free(ct); /* walks every field once more */
    free(copy);
}

static void fuzz_stored(const uint8_t *data, size_t size)
{
    json_t *o = json_loadb((const char *)data, size, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *arr;

    if (o == NULL)
        return;
    arr = json_object_get(o, "attachments");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        Sotto__Content__AttachmentPointer q;
        int rc = sc_attachment_pointer_from_json(json_array_get(arr, i), &q);
        if (rc == SC_OK) {
            check_parsed(&q);
            sc_attachment_pointer_clear(&q);
        } else if (rc != SC_E_INTEGRITY && rc != SC_E_INTERNAL) {
            abort();
        }
    }
    /* a top-level object that is itself a pointer */
    {
        Sotto__Content__AttachmentPointer q;
        if (sc_attachment_pointer_from_json(o, &q) == SC_OK) {
            check_parsed(&q);
            sc_attachment_pointer_clear(&q);
        }
    }
    json_decref(o);
}

/* ------------------------------------------------------------ seeds */

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t n)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fputc(mode, f) == EOF || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* Packs and pads ct exactly as the client does before encrypting. */
static void write_content(const char *dir, const char *name, const Sotto__Content__Content *ct)
{
    size_t n = sotto__content__content__get_packed_size(ct), plen = 0;
    uint8_t *buf = malloc(n + 1), *padded = NULL;

    if (buf == NULL)
        abort();
    sotto__content__content__pack(ct, buf);
    if (sc_pad(buf, n, &padded, &plen) != SC_OK)
        abort();
    write_seed(dir, name, 0, padded, plen);
    free(buf);
    free(padded);
}

static void write_seeds(const char *dir)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext g = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    Sotto__Content__AttachmentPointer ap = SOTTO__CONTENT__ATTACHMENT_POINTER__INIT;
    Sotto__Content__AttachmentPointer *aps[1] = {&ap};
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__Sent sent = SOTTO__CONTENT__SYNC_MESSAGE__SENT__INIT;
    Sotto__Content__ReceiptMessage rc = SOTTO__CONTENT__RECEIPT_MESSAGE__INIT;
    Sotto__Content__NullMessage nm = SOTTO__CONTENT__NULL_MESSAGE__INIT;
    uint64_t rts[2] = {1796013758745ull, 1796013758746ull};
    uint8_t gid[16], key[64], digest[32], pad[7] = {0};
    char *members[3] = {"alice", "bob", "carol"};
    char *big = NULL, *stored = NULL;
    size_t big_len = 0;
    const char *unit = "snow \xe2\x98\x83 caf\xc3\xa9 \xf0\x9f\x98\x80 ";

    for (size_t i = 0; i < sizeof gid; i++)
        gid[i] = (uint8_t)(0xa0 + i);
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof digest; i++)
        digest[i] = (uint8_t)(0xff - i);

    ct.timestamp = 1796013758745ull;
    ct.data = &dm;
    dm.body = "hello bob \xe2\x98\x83";
    write_content(dir, "text", &ct);

    /* a UTF-8 text over 2 KiB (the cut-mid-character case) */
    big = malloc(2600);
    if (big == NULL)
        abort();
    while (big_len + strlen(unit) < 2500) {
        memcpy(big + big_len, unit, strlen(unit));
        big_len += strlen(unit);
    }
    big[big_len] = '\0';
    dm.body = big;
    write_content(dir, "text_2k_utf8", &ct);
    free(big);

    dm.body = "";
    g.id.data = gid;
    g.id.len = sizeof gid;
    g.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE;
    g.name = "Caf\xc3\xa9 \xe2\x98\x95";
    g.members = members;
    g.n_members = 3;
    dm.group = &g;
    write_content(dir, "group_update", &ct);

    g.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
    g.name = "";
    g.n_members = 0;
    g.members = NULL;
    dm.body = "hello group";
    write_content(dir, "group_message", &ct);

    g.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__QUIT;
    dm.body = "";
    write_content(dir, "group_quit", &ct);

    dm.group = NULL;
    ap.id = "0123456789abcdef0123456789abcdef";
    ap.key.data = key;
    ap.key.len = sizeof key;
    ap.digest.data = digest;
    ap.digest.len = sizeof digest;
    ap.size = 307200;
    ap.content_type = "image/png";
    ap.file_name = "photo \xc3\xa9t\xc3\xa9.png";
    dm.attachments = aps;
    dm.n_attachments = 1;
    dm.body = "here is the photo";
    write_content(dir, "attachment", &ct);

    /* the same pointer as a history row stores it */
    stored = sc_attachment_pointers_json(&dm);
    if (stored == NULL)
        abort();
    write_seed(dir, "stored_row", 1, (const uint8_t *)stored, strlen(stored));
    free(stored);
    {
        static const char row[] =
            "{\"attachments\":[{\"id\":\"0123456789abcdef0123456789abcdef\",\"key\":\"\","
            "\"digest\":\"\",\"size\":12,\"content_type\":\"text/plain\",\"file_name\":\"a.txt\","
            "\"path\":null,\"error\":\"download failed\"}],\"notice\":\"undecryptable\","
            "\"members\":[\"alice\",\"bob\"]}";
        write_seed(dir, "stored_row_error", 1, (const uint8_t *)row, sizeof row - 1);
    }

    sent.destination = "bob";
    sent.timestamp = ct.timestamp;
    sent.message = &dm;
    sync.sent = &sent;
    ct.data = NULL;
    ct.sync = &sync;
    write_content(dir, "sync_sent", &ct);

    {
        /* a link-sync part (client/core/linksync.c): a contact, a group and
         * a history row */
        static uint8_t akey[33] = {0x05, 0x11, 0x22};
        Sotto__Content__SyncMessage__LinkSync ls = SOTTO__CONTENT__SYNC_MESSAGE__LINK_SYNC__INIT;
        Sotto__Content__SyncMessage__LinkSync__Contact lc =
            SOTTO__CONTENT__SYNC_MESSAGE__LINK_SYNC__CONTACT__INIT;
        Sotto__Content__SyncMessage__LinkSync__Group lg =
            SOTTO__CONTENT__SYNC_MESSAGE__LINK_SYNC__GROUP__INIT;
        Sotto__Content__SyncMessage__LinkSync__HistoryRow lh =
            SOTTO__CONTENT__SYNC_MESSAGE__LINK_SYNC__HISTORY_ROW__INIT;
        Sotto__Content__SyncMessage__LinkSync__Contact *lcs[1] = {&lc};
        Sotto__Content__SyncMessage__LinkSync__Group *lgs[1] = {&lg};
        Sotto__Content__SyncMessage__LinkSync__HistoryRow *lhs[1] = {&lh};
        Sotto__Content__SyncMessage ls_sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;

        lc.name = "bob";
        lc.account_key.data = akey;
        lc.account_key.len = sizeof akey;
        lc.verified = true;
        lg.id.data = gid;
        lg.id.len = sizeof gid;
        lg.name = "friends";
        lg.members = members;
        lg.n_members = 3;
        lg.active = true;
        lh.conv_kind = "group";
        lh.conv = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
        lh.sender = "bob";
        lh.sender_device = 1;
        lh.timestamp = 1796013758700ull;
        lh.server_ts = 1796013758701ull;
        lh.kind = "text";
        lh.body = "m2 from bob";
        ls.target_device_id = 2;
        ls.sync_id = ct.timestamp;
        ls.sequence = 1;
        ls.total = 1;
        ls.history_days = 30;
        ls.contacts = lcs;
        ls.n_contacts = 1;
        ls.groups = lgs;
        ls.n_groups = 1;
        ls.history = lhs;
        ls.n_history = 1;
        ls_sync.link_sync = &ls;
        ct.sync = &ls_sync;
        write_content(dir, "sync_link", &ct);
    }

    ct.sync = NULL;
    rc.type = SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ;
    rc.timestamps = rts;
    rc.n_timestamps = 2;
    ct.receipt = &rc;
    write_content(dir, "receipt", &ct);

    ct.receipt = NULL;
    nm.padding.data = pad;
    nm.padding.len = sizeof pad;
    ct.null_message = &nm;
    write_content(dir, "null_message", &ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int seeded;

    if (!seeded) {
        const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
        seeded = 1;
        if (dir != NULL && dir[0] != '\0')
            write_seeds(dir);
    }
    if (size == 0)
        return 0;
    if ((data[0] & 1) == 0)
        fuzz_content(data + 1, size - 1);
    else
        fuzz_stored(data + 1, size - 1);
    return 0;
}
