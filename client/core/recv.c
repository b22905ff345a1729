/*
 * client/core/recv.c -- receiving: decrypt each envelope, store what it
 * says, THEN ack; de-duplicate; hold messages whose sender's identity
 * changed; turn undecryptable envelopes into a notice plus a session reset;
 * emit events from stored history rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "internal.h"
#include "sotto/error.h"

static const char row_cols[] =
    "SELECT id, conv_kind, conv, direction, sender, sender_device, timestamp, server_ts, kind,"
    " body, extra FROM client_messages";

int sc_emit_row(sc_client *c, sqlite3_stmt *st, sc_event_cb cb, void *ud)
{
    sc_event ev;
    json_t *extra = NULL;
    const char *conv_kind = (const char *)sqlite3_column_text(st, 1);
    const char *conv = (const char *)sqlite3_column_text(st, 2);
    const char *kind = (const char *)sqlite3_column_text(st, 8);
    const char *extra_s = (const char *)sqlite3_column_text(st, 10);
    sc_attachment_info *atts = NULL;
    const char **members = NULL;
    char *gname = NULL;
    size_t na = 0, nm = 0;
    bool is_group = conv_kind && strcmp(conv_kind, "group") == 0;

    memset(&ev, 0, sizeof ev);
    ev.id = sqlite3_column_int64(st, 0);
    ev.sender = (const char *)sqlite3_column_text(st, 4);
    ev.sender_device = (uint32_t)sqlite3_column_int64(st, 5);
    ev.timestamp = (uint64_t)sqlite3_column_int64(st, 6);
    ev.server_timestamp = (uint64_t)sqlite3_column_int64(st, 7);
    ev.body = (const char *)sqlite3_column_text(st, 9);
    ev.body_len = (size_t)sqlite3_column_bytes(st, 9);
    if (ev.body == NULL)
        ev.body = "";
    if (kind && strcmp(kind, "notice") == 0) {
        ev.kind = SC_EV_NOTICE;
    } else if (kind && strcmp(kind, "group") == 0) {
        ev.kind = SC_EV_GROUP;
    } else if (sqlite3_column_int(st, 3) == 1) {
        ev.kind = SC_EV_SENT;
        ev.destination = is_group ? NULL : conv;
    } else {
        ev.kind = SC_EV_MESSAGE;
    }
    if (is_group) {
        uint8_t gid[SC_GROUP_ID_BYTES];
        size_t bl = 0;
        sqlite3_stmt *g = NULL;
        ev.group_id = conv;
        if (sodium_hex2bin(gid, sizeof gid, conv, strlen(conv), NULL, &bl, NULL) == 0 &&
            bl == sizeof gid &&
            sqlite3_prepare_v2(c->db, "SELECT name FROM client_groups WHERE id = ?", -1, &g,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_blob(g, 1, gid, sizeof gid, SQLITE_STATIC);
            if (sqlite3_step(g) == SQLITE_ROW)
                gname = strdup((const char *)sqlite3_column_text(g, 0));
        }
        sqlite3_finalize(g);
        ev.group_name = gname;
    }
    if (extra_s)
        extra = json_loads(extra_s, 0, NULL);
    if (extra) {
        json_t *arr = json_object_get(extra, "attachments");
        json_t *mem = json_object_get(extra, "members");
        ev.notice = json_string_value(json_object_get(extra, "notice"));
        ev.group_action = json_string_value(json_object_get(extra, "group_action"));
        if (json_string_value(json_object_get(extra, "group_name")) && ev.kind == SC_EV_GROUP)
            ev.group_name = json_string_value(json_object_get(extra, "group_name"));
        if (json_is_array(arr) && json_array_size(arr) > 0) {
            na = json_array_size(arr);
            atts = calloc(na, sizeof *atts);
            for (size_t i = 0; atts && i < na; i++) {
                json_t *a = json_array_get(arr, i);
                atts[i].file_name = json_string_value(json_object_get(a, "file_name"));
                atts[i].content_type = json_string_value(json_object_get(a, "content_type"));
                json_int_t sz = json_integer_value(json_object_get(a, "size"));
                atts[i].size = sz > 0 ? (uint64_t)sz : 0;
                atts[i].path = json_string_value(json_object_get(a, "path"));
                atts[i].error = json_string_value(json_object_get(a, "error"));
            }
            if (atts == NULL)
                na = 0;
        }
        if (json_is_array(mem)) {
            nm = json_array_size(mem);
            members = calloc(nm + 1, sizeof *members);
            for (size_t i = 0; members && i < nm; i++)
                members[i] = json_string_value(json_array_get(mem, i));
            if (members == NULL)
                nm = 0;
        }
    }
    ev.attachments = atts;
    ev.n_attachments = na;
    ev.group_members = members;
    ev.n_group_members = nm;
    cb(ud, &ev);
    free(atts);
    free(members);
    free(gname);
    json_decref(extra);
    return SC_OK;
}

static void emit_rowid(sc_client *c, int64_t rowid, sc_event_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    char sql[256];

    if (cb == NULL || rowid <= 0)
        return;
    snprintf(sql, sizeof sql, "%s WHERE id = ?", row_cols);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, rowid);
        if (sqlite3_step(st) == SQLITE_ROW)
            (void)sc_emit_row(c, st, cb, ud);
    }
    sqlite3_finalize(st);
}

int sc_history(sc_client *c, const char *conv, bool is_group, size_t limit, sc_event_cb cb,
               void *ud)
{
    sqlite3_stmt *st = NULL;
    char sql[512];
    char gid_hex[33];
    uint8_t gid[SC_GROUP_ID_BYTES];
    const char *key = conv;
    int rc;

    if (is_group) {
        rc = sc_group_resolve(c, conv, gid);
        if (rc != SC_OK)
            return rc;
        sc_hex(gid, sizeof gid, gid_hex);
        key = gid_hex;
    }
    snprintf(sql, sizeof sql,
             "SELECT * FROM (%s WHERE conv_kind = ? AND conv = ? ORDER BY id DESC LIMIT ?)"
             " ORDER BY id",
             row_cols);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sc_fail(c, SC_E_STORE, "database error: %s", sqlite3_errmsg(c->db));
    sqlite3_bind_text(st, 1, is_group ? "group" : "contact", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
    while (sqlite3_step(st) == SQLITE_ROW)
        (void)sc_emit_row(c, st, cb, ud);
    sqlite3_finalize(st);
    return SC_OK;
}

/* Stores a notice row in the conversation with `who`. */
static int store_notice(sc_client *c, const char *who, uint32_t dev, uint64_t server_ts,
                        const char *code, const char *text, int64_t *rowid)
{
    sc_msg_row m;
    char extra[128];

    snprintf(extra, sizeof extra, "{\"notice\":\"%s\"}", code);
    memset(&m, 0, sizeof m);
    m.conv_kind = "contact";
    m.conv = who;
    m.direction = 0;
    m.sender = who;
    m.sender_device = dev;
    m.timestamp = server_ts;
    m.server_ts = server_ts;
    m.kind = "notice";
    m.body = text;
    m.body_len = strlen(text);
    m.extra = extra;
    return sc_msg_insert(c, &m, rowid);
}

/* A key-only message to `who` so that it starts a fresh session with us. */
static int queue_session_reset(sc_client *c, const char *who)
{
    Sotto__Content__Content content = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__NullMessage nm = SOTTO__CONTENT__NULL_MESSAGE__INIT;

    content.timestamp = sc_next_timestamp(c);
    content.null_message = &nm;
    return sc_enqueue_content(c, who, &content, 0);
}

/* After commit: downloads the attachments of history row `rowid` that have
 * neither a local path nor an error yet (their pointers are in the row's
 * extra JSON, attach.c), records the path or the error, and wipes the key
 * of every attachment that reached a final state. */
static void fetch_attachments(sc_client *c, int64_t rowid)
{
    sqlite3_stmt *st = NULL;
    json_t *extra = NULL, *arr;
    uint64_t ts = 0;
    bool changed = false;
    char *s;

    if (sqlite3_prepare_v2(c->db, "SELECT extra, timestamp FROM client_messages WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, rowid);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        extra = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        ts = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    arr = json_object_get(extra, "attachments");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        Sotto__Content__AttachmentPointer p;
        char *path = NULL;
        json_t *a = json_array_get(arr, i);
        int rc;

        if (!json_is_object(a) || json_string_value(json_object_get(a, "path")) ||
            json_string_value(json_object_get(a, "error")))
            continue; /* done before (or not an attachment) */
        changed = true;
        rc = sc_attachment_pointer_from_json(a, &p);
        if (rc == SC_OK) {
            rc = sc_attachment_download(c, &p, ts, &path);
            sc_attachment_pointer_clear(&p);
        } else {
            rc = sc_fail(c, SC_E_INTEGRITY, "malformed attachment pointer");
        }
        if (rc == SC_OK) {
            json_object_set_new(a, "path", json_string(path));
        } else {
            if (rc == SC_E_INTEGRITY)
                c->integrity_failures++;
            json_object_set_new(a, "error", json_string(c->err));
        }
        if (rc == SC_OK || rc == SC_E_INTEGRITY) {
            /* final: the key is of no further use */
            json_object_del(a, "key");
            json_object_del(a, "digest");
        }
        free(path);
    }
    if (changed && (s = json_dumps(extra, JSON_COMPACT)) != NULL) {
        (void)sc_msg_set_extra(c, rowid, s);
        sodium_memzero(s, strlen(s));
        free(s);
    }
    json_decref(extra);
}

/* SOTTO_TEST_CRASH_AFTER_DECRYPT=N (docs/cli.md "Test hooks"): the process
 * _exit()s with status 99 right after the transaction of the N-th envelope
 * it processed committed, before any event is shown or the envelope acked. */
static void test_crash_hook(void)
{
    static long count;
    const char *v = getenv("SOTTO_TEST_CRASH_AFTER_DECRYPT");
    char *end = NULL;
    long n;

    if (v == NULL || v[0] == '\0')
        return;
    n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 1)
        n = 1;
    if (++count == n) {
        fflush(stdout);
        _exit(99);
    }
}

/* Shows a stored row: fetches its attachments, takes it off the pending
 * list, then emits its event. A process killed before the pending mark is
 * removed shows the row at its next receive/listen (sc_emit_pending); one
 * killed after it keeps the row in the history only. */
static void finish_row(sc_client *c, int64_t rowid, sc_event_cb cb, void *ud)
{
    fetch_attachments(c, rowid);
    (void)sc_pending_event_done(c, rowid);
    emit_rowid(c, rowid, cb, ud);
}

int sc_emit_pending(sc_client *c, sc_event_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    int64_t *rows = NULL;
    size_t n = 0, cap = 0;
    int rc = SC_OK;

    if (sqlite3_prepare_v2(c->db, "SELECT msg_id FROM client_pending_events ORDER BY msg_id", -1,
                           &st, NULL) != SQLITE_OK)
        return sc_fail(c, SC_E_STORE, "database error: %s", sqlite3_errmsg(c->db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *nr = realloc(rows, nc * sizeof *rows);
            if (nr == NULL) {
                rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
                break;
            }
            rows = nr;
            cap = nc;
        }
        rows[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; rc == SC_OK && i < n; i++)
        finish_row(c, rows[i], cb, ud);
    free(rows);
    return rc;
}

typedef struct pending_emit {
    int64_t rows[4];
    size_t n;
} pending_emit;

static void pend(pending_emit *p, int64_t row)
{
    if (row > 0 && p->n < 4)
        p->rows[p->n++] = row;
}

/* Highest history row id (0 when empty). */
static int64_t max_row(sc_client *c)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;

    if (sqlite3_prepare_v2(c->db, "SELECT max(id) FROM client_messages", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int sc_content_decode(const uint8_t *pt, size_t pt_len, Sotto__Content__Content **out)
{
    size_t content_len = 0;

    *out = NULL;
    if (sc_unpad(pt, pt_len, &content_len) != SC_OK)
        return SC_E_USAGE;
    *out = sotto__content__content__unpack(NULL, content_len, pt);
    return *out != NULL ? SC_OK : SC_E_USAGE;
}

/* Wipes every string and bytes field of m and its sub-messages (texts,
 * names, attachment keys) before protobuf-c frees them. */
static void wipe_message(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d;

    if (m == NULL)
        return;
    d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *base = (char *)m;
        size_t n = 1;
        void *v;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_BYTES)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(size_t *)(base + f->quantifier_offset);
            v = *(void **)(base + f->offset);
        } else {
            v = base + f->offset;
        }
        for (size_t k = 0; v != NULL && k < n; k++) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                wipe_message(((ProtobufCMessage **)v)[k]);
            } else if (f->type == PROTOBUF_C_TYPE_STRING) {
                char *str = ((char **)v)[k];
                if (str != NULL && str != protobuf_c_empty_string)
                    sodium_memzero(str, strlen(str));
            } else {
                ProtobufCBinaryData *b = &((ProtobufCBinaryData *)v)[k];
                if (b->data != NULL && b->len > 0)
                    sodium_memzero(b->data, b->len);
            }
        }
    }
}

void sc_content_free(Sotto__Content__Content *ct)
{
    if (ct == NULL)
        return;
    wipe_message(&ct->base);
    sotto__content__content__free_unpacked(ct, NULL);
}

/* Handles decrypted content from (source, dev). Inside the transaction. */
static int handle_content(sc_client *c, const Sotto__Api__Envelope *e,
                          const Sotto__Content__Content *ct, pending_emit *pe)
{
    const char *src = e->source;
    bool from_self = c->username && strcmp(src, c->username) == 0;
    bool seen = false;
    sc_msg_row m;
    int64_t rowid = 0;
    char gid_hex[33];
    char *extra = NULL;
    int rc;

    if (from_self) {
        const Sotto__Content__SyncMessage__Sent *s = ct->sync ? ct->sync->sent : NULL;
        const Sotto__Content__DataMessage *dm = s ? s->message : NULL;
        if (dm == NULL)
            return SC_OK;
        rc = sc_msg_seen(c, src, s->timestamp, &seen);
        if (rc != SC_OK || seen)
            return rc;
        if (!sc_utf8_valid(dm->body, strlen(dm->body)))
            return SC_OK;
        if (dm->group) {
            if (dm->group->id.len != SC_GROUP_ID_BYTES)
                return SC_OK;
            if (dm->group->type != SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER) {
                int64_t before = max_row(c);
                rc = sc_group_apply_update(c, src, e->source_device_id, dm->group, s->timestamp,
                                           e->server_timestamp_ms);
                if (rc == SC_OK && max_row(c) > before)
                    pend(pe, max_row(c));
                return rc;
            }
            sc_hex(dm->group->id.data, SC_GROUP_ID_BYTES, gid_hex);
        } else if (!sc_username_valid(s->destination)) {
            return SC_OK;
        }
        extra = sc_attachment_pointers_json(dm);
        memset(&m, 0, sizeof m);
        m.conv_kind = dm->group ? "group" : "contact";
        m.conv = dm->group ? gid_hex : s->destination;
        m.direction = 1;
        m.sender = src;
        m.sender_device = e->source_device_id;
        m.timestamp = s->timestamp;
        m.server_ts = e->server_timestamp_ms;
        m.kind = "text";
        m.body = dm->body;
        m.body_len = strlen(dm->body);
        m.extra = extra;
        rc = sc_msg_insert(c, &m, &rowid);
        sc_free_secret_str(extra);
        if (rc == SC_OK)
            pend(pe, rowid);
        return rc;
    }
    if (ct->data == NULL)
        return SC_OK; /* receipts, null messages: nothing visible */
    rc = sc_msg_seen(c, src, ct->timestamp, &seen);
    if (rc != SC_OK || seen)
        return rc;
    if (!sc_utf8_valid(ct->data->body, strlen(ct->data->body)))
        return store_notice(c, src, e->source_device_id, e->server_timestamp_ms, "malformed",
                            "a message with invalid text was dropped", &rowid) == SC_OK
                   ? (pend(pe, rowid), SC_OK)
                   : SC_E_STORE;
    if (ct->data->group) {
        const Sotto__Content__GroupContext *g = ct->data->group;
        char **members = NULL;
        size_t nm = 0;
        char *name = NULL;
        bool active = false, member = false;

        if (g->id.len != SC_GROUP_ID_BYTES)
            return SC_OK;
        if (g->type != SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER) {
            int64_t before = max_row(c);
            rc = sc_group_apply_update(c, src, e->source_device_id, g, ct->timestamp,
                                       e->server_timestamp_ms);
            if (rc == SC_OK && max_row(c) > before)
                pend(pe, max_row(c));
            return rc;
        }
        rc = sc_group_members(c, g->id.data, &members, &nm, &name, &active);
        if (rc == SC_E_NOT_FOUND) {
            /* A group we were never told about: drop (its creator sends an
             * UPDATE first). */
            return SC_OK;
        }
        if (rc != SC_OK)
            return rc;
        for (size_t i = 0; i < nm; i++)
            if (strcmp(members[i], src) == 0)
                member = true;
        sc_strv_free(members, nm);
        free(name);
        if (!active || !member)
            return SC_OK; /* not (or no longer) a member: nothing visible */
        sc_hex(g->id.data, SC_GROUP_ID_BYTES, gid_hex);
    }
    extra = sc_attachment_pointers_json(ct->data);
    memset(&m, 0, sizeof m);
    m.conv_kind = ct->data->group ? "group" : "contact";
    m.conv = ct->data->group ? gid_hex : src;
    m.direction = 0;
    m.sender = src;
    m.sender_device = e->source_device_id;
    m.timestamp = ct->timestamp;
    m.server_ts = e->server_timestamp_ms;
    m.kind = "text";
    m.body = ct->data->body;
    m.body_len = strlen(ct->data->body);
    m.extra = extra;
    rc = sc_msg_insert(c, &m, &rowid);
    sc_free_secret_str(extra);
    if (rc == SC_OK)
        pend(pe, rowid);
    return rc;
}

int sc_process_envelope(sc_client *c, const Sotto__Api__Envelope *e, bool from_held, sc_event_cb cb,
                        void *ud)
{
    sotto_address a;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    Sotto__Content__Content *ct = NULL;
    pending_emit pe;
    int64_t rowid = 0;
    bool seen = false;
    char text[256];
    int rc, e2;

    memset(&pe, 0, sizeof pe);
    if (e == NULL || e->source == NULL || !sc_username_valid(e->source) || e->id.len == 0 ||
        e->id.len > 64)
        return SC_OK; /* nothing we can attribute: ack and forget */
    if (!from_held) {
        rc = sc_envelope_seen(c, e->id.data, e->id.len, &seen);
        if (rc != SC_OK)
            return rc;
        if (seen)
            return SC_OK;
    }
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    a.name = e->source;
    a.name_len = strlen(e->source);
    a.device_id = e->source_device_id;
    if (e->type != SOTTO_MSG_SIGNAL && e->type != SOTTO_MSG_PREKEY) {
        snprintf(text, sizeof text, "a message of unsupported type %u from %s was dropped", e->type,
                 e->source);
        rc = store_notice(c, e->source, e->source_device_id, e->server_timestamp_ms, "unsupported",
                          text, &rowid);
        pend(&pe, rowid);
        goto mark;
    }
    e2 = sotto_session_decrypt(&c->ps, &a, (int)e->type, e->body.data, e->body.len, &pt, &pt_len);
    if (e2 == SOTTO_ERR_UNTRUSTED_IDENTITY && !from_held) {
        sotto_prekey_message_info info;
        if (sotto_prekey_message_inspect(&info, e->body.data, e->body.len) == SOTTO_OK)
            rc = sc_pending_identity_set(c, e->source, e->source_device_id, &info.identity_key);
        if (rc == SC_OK)
            rc = sc_held_add(c, e);
        snprintf(text, sizeof text,
                 "safety number with %s changed; message held until you"
                 " compare it and run `sotto trust %s`",
                 e->source, e->source);
        if (rc == SC_OK)
            rc = store_notice(c, e->source, e->source_device_id, e->server_timestamp_ms,
                              "identity_changed", text, &rowid);
        pend(&pe, rowid);
        goto mark;
    }
    if (e2 == SOTTO_ERR_DUPLICATE_MESSAGE)
        goto mark; /* a replay of something already decrypted: nothing visible */
    if (e2 != SOTTO_OK) {
        snprintf(text, sizeof text,
                 "a message from %s (device %u) could not be decrypted (%s);"
                 " starting a new session",
                 e->source, e->source_device_id, sotto_strerror(e2));
        rc = store_notice(c, e->source, e->source_device_id, e->server_timestamp_ms,
                          "undecryptable", text, &rowid);
        pend(&pe, rowid);
        if (rc == SC_OK && e2 != SOTTO_ERR_UNTRUSTED_IDENTITY) {
            /* The next send to this device starts from a fresh bundle (the
             * current state is archived, so late messages still decrypt). */
            sqlite3_stmt *st = NULL;
            if (sqlite3_prepare_v2(c->db,
                                   "INSERT OR IGNORE INTO client_session_reset(name,"
                                   " device_id) VALUES(?, ?)",
                                   -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, e->source, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, e->source_device_id);
                if (sqlite3_step(st) != SQLITE_DONE)
                    rc = sc_fail(c, SC_E_STORE, "database error");
            }
            sqlite3_finalize(st);
            if (rc == SC_OK)
                rc = queue_session_reset(c, e->source);
        }
        goto mark;
    }
    (void)sc_contact_touch(c, e->source, e->source_device_id);
    if (sc_content_decode(pt, pt_len, &ct) != SC_OK) {
        snprintf(text, sizeof text, "a message from %s (device %u) was malformed", e->source,
                 e->source_device_id);
        rc = store_notice(c, e->source, e->source_device_id, e->server_timestamp_ms, "malformed",
                          text, &rowid);
        pend(&pe, rowid);
        goto mark;
    }
    rc = handle_content(c, e, ct, &pe);
mark:
    for (size_t i = 0; rc == SC_OK && i < pe.n; i++)
        rc = sc_pending_event_add(c, pe.rows[i]);
    if (rc == SC_OK)
        rc = sc_envelope_mark(c, e->id.data, e->id.len);
    if (rc == SC_OK)
        rc = sc_db_commit(c);
    else
        sc_db_rollback(c);
    if (rc == SC_OK) {
        test_crash_hook();
        for (size_t i = 0; i < pe.n; i++)
            finish_row(c, pe.rows[i], cb, ud);
    }
    sc_content_free(ct);
    if (pt) {
        sodium_memzero(pt, pt_len);
        free(pt);
    }
    return rc;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int sc_receive(sc_client *c, bool stay, volatile int *stop, sc_event_cb cb, void *ud)
{
    unsigned backoff = 1000;
    uint32_t processed, expected;
    bool first = true;
    int rc;

    for (;;) {
        Sotto__Api__ClientFrame pf = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__PrekeyStatusRequest ps = SOTTO__API__PREKEY_STATUS_REQUEST__INIT;
        Sotto__Api__ServerFrame *r = NULL;
        unsigned idle = 0;

        rc = sc_connect(c);
        if (rc == SC_E_NETWORK && stay) {
            for (unsigned w = 0; w < backoff && !(stop && *stop); w += 100)
                sleep_ms(100);
            if (stop && *stop)
                return SC_OK;
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
            continue;
        }
        if (rc != SC_OK)
            return rc;
        backoff = 1000;
        if (first) {
            /* what a killed predecessor stored but never showed */
            first = false;
            sc_attachment_cleanup_temp(c);
            rc = sc_emit_pending(c, cb, ud);
            if (rc != SC_OK)
                return rc;
        }
        (void)sc_flush(c, NULL);
        /* A round trip so that queued pushes are on their way. */
        pf.op_case = SOTTO__API__CLIENT_FRAME__OP_PREKEY_STATUS;
        pf.prekey_status = &ps;
        if (sc_api(c, &pf, &r) == SC_OK && r) {
            if (r->status == SOTTO__API__STATUS__STATUS_OK && r->prekey_status &&
                r->prekey_status->prekeys_low)
                (void)sc_keys_maintain(c, true);
            sotto__api__server_frame__free_unpacked(r, NULL);
        }
        processed = 0;
        expected = c->login_queued;
        for (;;) {
            Sotto__Api__ServerFrame *f;
            if (c->conn == NULL)
                break;
            /* drain: wait (up to 15 s) for the envelopes the login
             * announced, then until 400 ms pass without one */
            f = sc_conn_next_push(c->conn, stay ? 1000 : (processed < expected ? 15000 : 400),
                                  stop);
            if (f == NULL) {
                if (stop && *stop) {
                    (void)sc_conn_flush(c->conn, 2000);
                    return SC_OK;
                }
                if (c->conn && sc_conn_device_removed(c->conn))
                    return sc_fail(c, SC_E_STATE, "this device was removed from its account");
                if (c->conn == NULL || !sc_conn_alive(c->conn))
                    break;
                if (sc_conn_take_prekeys_low(c->conn))
                    (void)sc_keys_maintain(c, true);
                if (!stay) {
                    /* drained: send what decryption queued (session resets) */
                    (void)sc_flush(c, NULL);
                    if (c->conn)
                        (void)sc_conn_flush(c->conn, 2000);
                    if (c->integrity_failures)
                        return sc_fail(c, SC_E_INTEGRITY,
                                       "%u attachment(s) failed verification"
                                       " and were not saved",
                                       c->integrity_failures);
                    return SC_OK;
                }
                if (++idle % 30 == 0)
                    (void)sc_flush(c, NULL);
                continue;
            }
            rc = sc_process_envelope(c, f->push, false, cb, ud);
            if (rc != SC_OK) {
                /* not stored: do not ack, it will come again */
                sotto__api__server_frame__free_unpacked(f, NULL);
                return rc;
            }
            (void)sc_conn_ack(c->conn, f->id);
            sotto__api__server_frame__free_unpacked(f, NULL);
            processed++;
            if (sc_conn_take_prekeys_low(c->conn))
                (void)sc_keys_maintain(c, true);
        }
        sc_disconnect(c);
        if (!stay)
            return sc_fail(c, SC_E_NETWORK, "connection lost while receiving");
        if (stop && *stop)
            return SC_OK;
    }
}
