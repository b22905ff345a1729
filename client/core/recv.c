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

#include "api.h"
#include "everyday.h"
#include "internal.h"
#include "retry.h"
#include "sotto/error.h"

/* The issue-11 parts of a row's extra JSON (everyday.h): quote, mentions,
 * a reaction's emoji, a receipt's type and timestamps. Strings point into
 * `extra` (alive during the callback); arrays go into *k. Values of the
 * wrong type or out of range are left out. */
static void everyday_fields(sc_client *c, json_t *extra, sc_event *ev, sc_keep *k)
{
    json_t *q = json_object_get(extra, "quote");
    json_t *ms = json_object_get(extra, "mentions");
    json_t *ts = json_object_get(extra, "timestamps");
    json_int_t v;

    if (json_is_object(q)) {
        v = json_integer_value(json_object_get(q, "timestamp"));
        ev->quote_author = json_string_value(json_object_get(q, "author"));
        ev->quote_timestamp = v > 0 ? (uint64_t)v : 0;
        ev->quote_text = json_string_value(json_object_get(q, "text"));
        if (ev->quote_author == NULL || ev->quote_timestamp == 0)
            ev->quote_author = NULL, ev->quote_timestamp = 0, ev->quote_text = NULL;
    }
    if (json_is_array(ms) && json_array_size(ms) > 0) {
        size_t n = json_array_size(ms), j = 0;
        sc_mention *mv = calloc(n, sizeof *mv);
        for (size_t i = 0; mv && i < n; i++) {
            json_t *o = json_array_get(ms, i);
            const char *name = json_string_value(json_object_get(o, "name"));
            json_int_t st = json_integer_value(json_object_get(o, "start"));
            json_int_t ln = json_integer_value(json_object_get(o, "length"));
            if (name == NULL || st < 0 || ln <= 0 || (uint64_t)st + (uint64_t)ln > ev->body_len)
                continue;
            mv[j].name = name;
            mv[j].start = (uint32_t)st;
            mv[j].length = (uint32_t)ln;
            if (c->username && strcmp(name, c->username) == 0)
                ev->mentions_me = true;
            j++;
        }
        if (mv && sc_keep_add(k, mv, NULL) == SC_OK) {
            ev->mentions = mv;
            ev->n_mentions = j;
        }
    }
    if (ev->kind == SC_EV_REACTION) {
        ev->emoji = json_string_value(json_object_get(extra, "emoji"));
        ev->reaction_remove = json_is_true(json_object_get(extra, "remove"));
        if (ev->emoji == NULL)
            ev->emoji = "";
    }
    if (ev->kind == SC_EV_RECEIPT) {
        ev->receipt_type = json_string_value(json_object_get(extra, "receipt_type"));
        if (json_is_array(ts) && json_array_size(ts) > 0) {
            size_t n = json_array_size(ts), j = 0;
            uint64_t *tv = calloc(n, sizeof *tv);
            for (size_t i = 0; tv && i < n; i++) {
                v = json_integer_value(json_array_get(ts, i));
                if (v > 0)
                    tv[j++] = (uint64_t)v;
            }
            if (tv && sc_keep_add(k, tv, NULL) == SC_OK) {
                ev->receipt_timestamps = tv;
                ev->n_receipt_timestamps = j;
            }
        }
    }
}

int sc_emit_row(sc_client *c, const sc_msg *m, sc_event_cb cb, void *ud)
{
    sc_event ev;
    json_t *extra = NULL;
    const char *conv_kind = m->conv_kind;
    const char *conv = m->conv;
    const char *kind = m->kind;
    const char *extra_s = m->extra;
    sc_attachment_info *atts = NULL;
    const char **members = NULL;
    char *gname = NULL;
    size_t na = 0, nm = 0;
    bool is_group = conv_kind && strcmp(conv_kind, "group") == 0;
    sc_keep keep;

    memset(&ev, 0, sizeof ev);
    ev.id = m->id;
    ev.sender = m->sender;
    ev.sender_device = m->sender_device;
    ev.timestamp = m->timestamp;
    ev.server_timestamp = m->server_ts;
    ev.body = m->body;
    ev.body_len = m->body_len;
    if (ev.body == NULL)
        ev.body = "";
    if (kind && strcmp(kind, "notice") == 0) {
        ev.kind = SC_EV_NOTICE;
    } else if (kind && strcmp(kind, "receipt") == 0) {
        ev.kind = SC_EV_RECEIPT;
    } else if (kind && strcmp(kind, "reaction") == 0) {
        ev.kind = SC_EV_REACTION;
    } else if (kind && strcmp(kind, "edit") == 0) {
        ev.kind = SC_EV_EDIT;
    } else if (kind && strcmp(kind, "delete") == 0) {
        ev.kind = SC_EV_DELETE;
    } else if (kind && strcmp(kind, "timer") == 0) {
        ev.kind = SC_EV_TIMER;
    } else if (kind && strcmp(kind, "read") == 0) {
        ev.kind = SC_EV_READ;
    } else if (kind && strcmp(kind, "group") == 0) {
        ev.kind = SC_EV_GROUP;
    } else if (m->direction == 1) {
        ev.kind = SC_EV_SENT;
        ev.destination = is_group ? NULL : conv;
    } else {
        ev.kind = SC_EV_MESSAGE;
    }
    /* issue 11: what every row says of itself (everyday.h) */
    ev.conversation = is_group ? NULL : conv;
    ev.target_author = m->target_sender;
    ev.target_timestamp = m->target_ts;
    ev.read_ms = m->read_ms;
    ev.expire_timer_s = m->expire_s;
    ev.expires_at_ms = m->expires_ms;
    ev.edited = m->edited_ts != 0;
    ev.edited_timestamp = m->edited_ts;
    ev.deleted = m->deleted;
    ev.request = m->request;
    if (is_group) {
        uint8_t gid[SC_GROUP_ID_BYTES];
        size_t bl = 0;
        ev.group_id = conv;
        if (sodium_hex2bin(gid, sizeof gid, conv, strlen(conv), NULL, &bl, NULL) == 0 &&
            bl == sizeof gid) {
            char **gm = NULL;
            size_t ngm = 0;
            if (sc_group_members(c, gid, &gm, &ngm, &gname, NULL) == SC_OK)
                sc_strv_free(gm, ngm);
        }
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
    memset(&keep, 0, sizeof keep);
    if (extra)
        everyday_fields(c, extra, &ev, &keep);
    if (ev.kind == SC_EV_TIMER) {
        json_int_t t = json_integer_value(json_object_get(extra, "expire_timer"));
        ev.expire_timer_s = t > 0 && t <= UINT32_MAX ? (uint32_t)t : 0;
    }
    (void)sc_msgops_event(c, m, &ev, &keep);
    (void)sc_receipts_event(c, m, &ev, &keep);
    (void)sc_profile_event(c, m, &ev, &keep);
    cb(ud, &ev);
    sc_keep_release(&keep);
    free(atts);
    free(members);
    free(gname);
    json_decref(extra);
    return SC_OK;
}

static void emit_rowid(sc_client *c, int64_t rowid, sc_event_cb cb, void *ud)
{
    sc_msg m;

    if (cb == NULL || rowid <= 0)
        return;
    if (sc_msg_get(c, rowid, &m) == SC_OK) {
        (void)sc_emit_row(c, &m, cb, ud);
        sc_msg_free(&m);
    }
}

int sc_history(sc_client *c, const char *conv, bool is_group, size_t limit, sc_event_cb cb,
               void *ud)
{
    sc_msg *rows = NULL;
    size_t n = 0;
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
    rc = sc_msg_history(c, is_group ? "group" : "contact", key, limit, &rows, &n);
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        (void)sc_emit_row(c, &rows[i], cb, ud);
    sc_msg_list_free(rows, n);
    return SC_OK;
}

/* Stores a notice row in the conversation with `who`. */
int sc_notice_row(sc_client *c, const char *who, uint32_t dev, uint64_t server_ts, const char *code,
                  const char *text, int64_t *rowid)
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

/* A key-only message to `who` that starts a fresh session with it (the
 * caller marked the device for a reset, so the send fetches a new bundle)
 * and asks device `device_id` to send again the message the server stamped
 * `server_ts` (retry.c). */
static int queue_session_reset(sc_client *c, const char *who, uint32_t device_id,
                               uint64_t server_ts)
{
    Sotto__Content__Content content = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__RetryRequest rq = SOTTO__CONTENT__RETRY_REQUEST__INIT;

    content.timestamp = sc_next_timestamp(c);
    rq.server_timestamp = server_ts;
    rq.device_id = device_id;
    content.retry_request = &rq;
    return sc_enqueue_content(c, who, &content, 0);
}

/* An envelope from e's device that could not be decrypted (error e2): a
 * notice, and -- at most once per SC_RESET_INTERVAL_MS for that device -- a
 * fresh session with a retry request. Inside the transaction. */
static int undecryptable(sc_client *c, const sc_envelope *e, int e2, int64_t *rowid)
{
    char text[384], when[32];
    bool allowed = false;
    uint64_t last = 0;
    int rc;

    if (e2 == SOTTO_ERR_UNTRUSTED_IDENTITY) {
        snprintf(text, sizeof text, "a message from %s (device %u) could not be decrypted (%s)",
                 e->source, e->source_device, sotto_strerror(e2));
        return sc_notice_row(c, e->source, e->source_device, e->server_ts, "undecryptable", text,
                             rowid);
    }
    rc = sc_reset_claim(c, e->source, e->source_device, sc_now_ms(), &allowed, &last);
    if (rc != SC_OK)
        return rc;
    if (!allowed) {
        time_t t = (time_t)(last / 1000);
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL ||
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
            snprintf(when, sizeof when, "%llu ms", (unsigned long long)last);
        snprintf(text, sizeof text,
                 "a message from %s (device %u) could not be decrypted (%s); a new session"
                 " and a re-send were already requested at %s (at most one an hour): none"
                 " started now",
                 e->source, e->source_device, sotto_strerror(e2), when);
        return sc_notice_row(c, e->source, e->source_device, e->server_ts,
                             "undecryptable_reset_pending", text, rowid);
    }
    snprintf(text, sizeof text,
             "a message from %s (device %u) could not be decrypted (%s); starting a new session"
             " and asking %s to send it again",
             e->source, e->source_device, sotto_strerror(e2), e->source);
    rc = sc_notice_row(c, e->source, e->source_device, e->server_ts, "undecryptable", text, rowid);
    /* The next send to this device starts from a fresh bundle (the current
     * state is archived, so late messages still decrypt). */
    if (rc == SC_OK)
        rc = sc_session_reset_add(c, e->source, e->source_device);
    if (rc == SC_OK)
        rc = queue_session_reset(c, e->source, e->source_device, e->server_ts);
    return rc;
}

/* After commit: downloads the attachments of history row `rowid` still to
 * fetch and records the path or the error in the row; a download that
 * failed for a cause that may pass (network, local disk) keeps its pointer
 * and is tried again by sc_attachment_retry_pending (attach.c). */
static void fetch_attachments(sc_client *c, int64_t rowid)
{
    (void)sc_attachment_fetch_row(c, rowid);
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

/* Shows a stored row that this process holds on the pending list (its
 * envelope's transaction put it there claimed by us, or
 * sc_pending_event_claim_next took it over): fetches its attachments,
 * emits its event, and only then takes it off the list. A process killed
 * before that shows nothing lost: the row's claim dies with it and the next
 * receive/listen shows the row (sc_emit_pending). A row that another
 * process took over meanwhile (our claim went stale) is left to it. */
static void finish_row(sc_client *c, int64_t rowid, sc_event_cb cb, void *ud)
{
    fetch_attachments(c, rowid);
    if (sc_pending_event_hold(c, rowid) != SC_OK)
        return;
    emit_rowid(c, rowid, cb, ud);
    (void)sc_pending_event_done(c, rowid);
}

int sc_emit_pending(sc_client *c, sc_event_cb cb, void *ud)
{
    int64_t after = 0, row = 0;
    int rc;

    /* one row at a time, each claimed before it is shown: a second process
     * on this account never shows the same row */
    while ((rc = sc_pending_event_claim_next(c, after, &row)) == SC_OK) {
        finish_row(c, row, cb, ud);
        after = row;
    }
    return rc == SC_E_NOT_FOUND ? SC_OK : rc;
}

/* rows one envelope stored that are shown (at most SC_PEND_MAX: a read
 * sync names at most that many messages, everyday.h) */
#define SC_PEND_MAX 128
struct pending_emit {
    int64_t rows[SC_PEND_MAX];
    size_t n;
};

static void pend(pending_emit *p, int64_t row)
{
    if (row > 0 && p->n < SC_PEND_MAX)
        p->rows[p->n++] = row;
}

void sc_pend_row(pending_emit *pe, int64_t rowid)
{
    pend(pe, rowid);
}

/* Highest history row id (0 when empty). */
static int64_t max_row(sc_client *c)
{
    int64_t v = 0;

    (void)sc_msg_max_id(c, &v);
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
static int handle_content(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                          pending_emit *pe)
{
    const char *src = e->source;
    bool from_self = c->username && strcmp(src, c->username) == 0;
    bool seen = false;
    sc_msg_row m;
    int64_t rowid = 0;
    char gid_hex[33];
    char *extra = NULL;
    int rc;

    if (from_self && ct->sync &&
        (ct->sync->account_key_transfer || ct->sync->account_key_received)) {
        rc = sc_promote_handle(c, e, ct, &rowid); /* promote.c */
        if (rc == SC_OK)
            pend(pe, rowid);
        return rc;
    }
    if (from_self && ct->sync && ct->sync->link_sync) {
        int64_t rows[2];
        size_t nr = 0;
        rc = sc_link_sync_handle(c, e, ct, rows, 2, &nr); /* linksync.c */
        for (size_t i = 0; rc == SC_OK && i < nr; i++)
            pend(pe, rows[i]);
        return rc;
    }
    if (from_self && ct->sync &&
        (ct->sync->n_read > 0 || ct->sync->blocked || ct->sync->message_request_response ||
         ct->sync->configuration || ct->sync->profile_key.len > 0 ||
         ct->sync->profile_name[0] != '\0'))
        return sc_sync_extra_handle(c, e, ct, pe); /* receipts.c */
    if (from_self) {
        const Sotto__Content__SyncMessage__Sent *s = ct->sync ? ct->sync->sent : NULL;
        const Sotto__Content__DataMessage *dm = s ? s->message : NULL;
        bool handled = false;
        if (s && s->edit && s->message == NULL) {
            rc = sc_msg_seen(c, src, ct->timestamp, &seen);
            if (rc != SC_OK || seen)
                return rc;
            return sc_edit_handle(c, e, src, true, s->destination, s->timestamp, s->edit, pe);
        }
        if (dm == NULL)
            return SC_OK;
        rc = sc_msg_seen(c, src, s->timestamp, &seen);
        if (rc != SC_OK || seen)
            return rc;
        if (!sc_utf8_valid(dm->body, strlen(dm->body)))
            return SC_OK;
        if (!dm->group && !sc_username_valid(s->destination))
            return SC_OK;
        if (dm->group && dm->group->id.len == SC_GROUP_ID_BYTES)
            sc_hex(dm->group->id.data, SC_GROUP_ID_BYTES, gid_hex);
        if (dm->group == NULL || dm->group->id.len == SC_GROUP_ID_BYTES) {
            const char *ck = dm->group ? "group" : "contact";
            const char *cv = dm->group ? gid_hex : s->destination;
            rc = sc_msgops_data(c, e, src, true, ck, cv, s->timestamp, dm, pe, &handled);
            if (rc == SC_OK && !handled)
                rc = sc_expire_data(c, e, src, true, ck, cv, s->timestamp, dm, pe, &handled);
            if (rc != SC_OK || handled)
                return rc;
        }
        if (dm->group) {
            if (dm->group->id.len != SC_GROUP_ID_BYTES)
                return SC_OK;
            if (dm->group->type != SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER) {
                int64_t before = max_row(c);
                rc = sc_group_apply_update(c, src, e->source_device, dm->group, s->timestamp,
                                           e->server_ts);
                if (rc == SC_OK && max_row(c) > before)
                    pend(pe, max_row(c));
                return rc;
            }
            sc_hex(dm->group->id.data, SC_GROUP_ID_BYTES, gid_hex);
        } else if (!sc_username_valid(s->destination)) {
            return SC_OK;
        }
        extra = sc_data_extra_json(dm);
        memset(&m, 0, sizeof m);
        m.conv_kind = dm->group ? "group" : "contact";
        m.conv = dm->group ? gid_hex : s->destination;
        m.direction = 1;
        m.sender = src;
        m.sender_device = e->source_device;
        m.timestamp = s->timestamp;
        m.server_ts = e->server_ts;
        m.kind = "text";
        m.body = dm->body;
        m.body_len = strlen(dm->body);
        m.extra = extra;
        /* the sender's timer runs from the send (expire.c) */
        m.expire_s = dm->expire_timer;
        m.expires_ms = dm->expire_timer ? s->timestamp + (uint64_t)dm->expire_timer * 1000u : 0;
        rc = sc_msg_insert(c, &m, &rowid);
        sc_free_secret_str(extra);
        /* what we write in is accepted, on every device (requests.c) */
        if (rc == SC_OK)
            rc = sc_requests_accept_conv(c, m.conv_kind, m.conv);
        if (rc == SC_OK)
            rc = sc_msgops_on_stored(c, rowid, &m);
        if (rc == SC_OK)
            pend(pe, rowid);
        return rc;
    }
    /* issue 11 (everyday.h): blocked senders, receipts, typing, edits */
    {
        bool drop = false;
        rc = sc_requests_screen(c, src, ct, &drop);
        if (rc != SC_OK || drop)
            return rc;
    }
    if (ct->typing)
        return sc_typing_handle(c, e, ct);
    if (ct->receipt)
        return sc_receipt_handle(c, e, ct, pe);
    if (ct->edit) {
        rc = sc_msg_seen(c, src, ct->timestamp, &seen);
        if (rc != SC_OK || seen)
            return rc;
        return sc_edit_handle(c, e, src, false, NULL, ct->timestamp, ct->edit, pe);
    }
    if (ct->data == NULL)
        return SC_OK; /* null messages: nothing visible */
    rc = sc_msg_seen(c, src, ct->timestamp, &seen);
    if (rc != SC_OK || seen)
        return rc;
    if (!sc_utf8_valid(ct->data->body, strlen(ct->data->body)))
        return sc_notice_row(c, src, e->source_device, e->server_ts, "malformed",
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
            rc = sc_group_apply_update(c, src, e->source_device, g, ct->timestamp, e->server_ts);
            if (rc == SC_OK && max_row(c) > before)
                pend(pe, max_row(c));
            return rc;
        }
        /* a higher revision than ours, or a group we do not know (we
         * missed its creation): ask the sender for the state (groups.c) */
        sc_group_check_revision(c, src, g);
        rc = sc_group_members(c, g->id.data, &members, &nm, &name, &active);
        if (rc == SC_E_NOT_FOUND) {
            /* A group we were never told about (we missed its creation):
             * the message is shown under the group's id, never dropped;
             * the state asked for above comes as an UPDATE and names it. */
            active = member = true;
            rc = SC_OK;
        } else if (rc == SC_OK) {
            for (size_t i = 0; i < nm; i++)
                if (strcmp(members[i], src) == 0)
                    member = true;
            sc_strv_free(members, nm);
            free(name);
        }
        if (rc != SC_OK)
            return rc;
        if (!active || !member)
            return SC_OK; /* not (or no longer) a member: nothing visible */
        sc_hex(g->id.data, SC_GROUP_ID_BYTES, gid_hex);
    }
    {
        const char *ck = ct->data->group ? "group" : "contact";
        const char *cv = ct->data->group ? gid_hex : src;
        bool handled = false, request = false;
        rc = sc_profile_data(c, e, src, false, ct->data, &handled);
        if (rc == SC_OK && !handled)
            rc = sc_msgops_data(c, e, src, false, ck, cv, ct->timestamp, ct->data, pe, &handled);
        if (rc == SC_OK && !handled)
            rc = sc_expire_data(c, e, src, false, ck, cv, ct->timestamp, ct->data, pe, &handled);
        if (rc != SC_OK || handled)
            return rc;
        rc = sc_requests_is_request(c, ck, cv, &request);
        if (rc != SC_OK)
            return rc;
        memset(&m, 0, sizeof m);
        m.request = request;
    }
    extra = sc_data_extra_json(ct->data);
    m.conv_kind = ct->data->group ? "group" : "contact";
    m.conv = ct->data->group ? gid_hex : src;
    m.direction = 0;
    m.sender = src;
    m.sender_device = e->source_device;
    m.timestamp = ct->timestamp;
    m.server_ts = e->server_ts;
    m.kind = "text";
    m.body = ct->data->body;
    m.body_len = strlen(ct->data->body);
    m.extra = extra;
    m.expire_s = ct->data->expire_timer; /* starts when read (receipts.c, expire.c) */
    rc = sc_msg_insert(c, &m, &rowid);
    sc_free_secret_str(extra);
    if (rc == SC_OK)
        rc = sc_msgops_on_stored(c, rowid, &m);
    if (rc == SC_OK)
        rc = sc_receipts_on_stored(c, rowid, &m);
    if (rc == SC_OK)
        pend(pe, rowid);
    return rc;
}

int sc_content_handle(sc_client *c, const sc_envelope *e, const uint8_t *pt, size_t pt_len,
                      pending_emit *pe, Sotto__Content__Content **ct_out)
{
    int64_t rowid = 0;
    char text[256];
    int rc;

    *ct_out = NULL;
    if (sc_content_decode(pt, pt_len, ct_out) != SC_OK) {
        snprintf(text, sizeof text, "a message from %s (device %u) was malformed", e->source,
                 e->source_device);
        rc = sc_notice_row(c, e->source, e->source_device, e->server_ts, "malformed", text, &rowid);
        pend(pe, rowid);
        return rc;
    }
    return handle_content(c, e, *ct_out, pe);
}

pending_emit *sc_pend_new(void)
{
    return calloc(1, sizeof(pending_emit));
}

size_t sc_pend_rows(const pending_emit *pe, const int64_t **rows)
{
    *rows = pe->rows;
    return pe->n;
}

int sc_process_envelope(sc_client *c, const sc_envelope *e, bool from_held, sc_event_cb cb,
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
    if (e == NULL || !sc_username_valid(e->source) || e->id_len == 0)
        return SC_OK; /* nothing we can attribute: ack and forget */
    c->recv_cb = cb;
    c->recv_ud = ud;
    if (!from_held) {
        rc = sc_envelope_seen(c, e->id, e->id_len, &seen);
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
    a.device_id = e->source_device;
    if (e->type != SOTTO_MSG_SIGNAL && e->type != SOTTO_MSG_PREKEY) {
        snprintf(text, sizeof text, "a message of unsupported type %u from %s was dropped", e->type,
                 e->source);
        rc = sc_notice_row(c, e->source, e->source_device, e->server_ts, "unsupported", text,
                           &rowid);
        pend(&pe, rowid);
        goto mark;
    }
    e2 = sotto_session_decrypt(&c->ps, &a, (int)e->type, e->body, e->body_len, &pt, &pt_len);
    if (e2 == SOTTO_ERR_UNTRUSTED_IDENTITY && !from_held) {
        sotto_prekey_message_info info;
        if (sotto_prekey_message_inspect(&info, e->body, e->body_len) == SOTTO_OK)
            rc = sc_pending_identity_set(c, e->source, e->source_device, &info.identity_key);
        if (rc == SC_OK)
            rc = sc_held_add(c, e);
        snprintf(text, sizeof text,
                 "safety number with %s changed; message held until you"
                 " compare it and run `sotto trust %s`",
                 e->source, e->source);
        if (rc == SC_OK)
            rc = sc_notice_row(c, e->source, e->source_device, e->server_ts, "identity_changed",
                               text, &rowid);
        pend(&pe, rowid);
        goto mark;
    }
    if (e2 == SOTTO_ERR_DUPLICATE_MESSAGE)
        goto mark; /* a replay of something already decrypted: nothing visible */
    if (e2 != SOTTO_OK) {
        rc = undecryptable(c, e, e2, &rowid);
        pend(&pe, rowid);
        goto mark;
    }
    (void)sc_contact_touch(c, e->source, e->source_device);
    rc = sc_content_handle(c, e, pt, pt_len, &pe, &ct);
mark:
    for (size_t i = 0; rc == SC_OK && i < pe.n; i++)
        rc = sc_pending_event_add(c, pe.rows[i]);
    if (rc == SC_OK)
        rc = sc_envelope_mark(c, e->id, e->id_len);
    if (rc == SC_OK)
        rc = sc_db_commit(c);
    else
        sc_db_rollback(c);
    if (c->scrub_due) {
        /* a message was wiped (delete for everyone): no old page of the
         * WAL may keep its text */
        c->scrub_due = false;
        (void)sc_store_scrub(c);
    }
    if (rc == SC_OK) {
        test_crash_hook();
        for (size_t i = 0; i < pe.n; i++)
            finish_row(c, pe.rows[i], cb, ud);
        /* a contact's key-transparency head (gossip.c), checked after the
         * message is stored and shown, outside its transaction: whatever
         * the check finds never affects the message */
        if (ct != NULL && ct->kt_head.len > 0 && c->username && strcmp(e->source, c->username) != 0)
            (void)sc_gossip_receive(c, e->source, ct->kt_head.data, ct->kt_head.len);
        /* a contact that could not decrypt one of ours asks for it again
         * (retry.c): answered after the request is stored and acked-safe */
        if (ct != NULL && ct->retry_request != NULL)
            (void)sc_retry_answer(c, e->source, e->source_device, ct->retry_request);
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

/* ------------------------------------------------------------ senders
 *
 * A message is shown as genuine only when its sending device is in a list
 * the sender's pinned account key signed (docs/protocol.md "Account key and
 * device list"). The list we hold is checked first; a device not in it
 * makes us fetch the sender's current list (the server may not hide a newer
 * one behind an older one: sc_account_accept refuses a lower version).
 */
/* Whether list entry d is the device that sent e: for a PreKey message
 * (a new session) the identity key it carries must be the listed one. */
static bool same_device(const sotto_device_entry *d, const sc_envelope *e)
{
    sotto_prekey_message_info info;

    if (d == NULL)
        return false;
    if (e->type != SOTTO_MSG_PREKEY)
        return true;
    return sotto_prekey_message_inspect(&info, e->body, e->body_len) == SOTTO_OK &&
           sotto_public_key_equal(&info.identity_key, &d->identity_key);
}

int sc_vet_sender(sc_client *c, const sc_envelope *e, bool *genuine)
{
    const sotto_device_entry *d;
    sotto_device_list l;
    int rc = sc_account_current(c, e->source, &l);

    *genuine = false;
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    if (rc == SC_E_NOT_FOUND || !same_device(sotto_device_list_find(&l, e->source_device), e)) {
        rc = sc_connect(c);
        if (rc == SC_OK)
            rc = sc_account_refresh(c, e->source, &l);
        if (rc != SC_OK)
            return rc;
    }
    d = sotto_device_list_find(&l, e->source_device);
    if (!same_device(d, e))
        return SC_OK;
    *genuine = true;
    return sc_trust_vouched(c, e->source, d);
}

/* An envelope that is not shown now: held until `trust` (hold) or dropped,
 * with a notice saying why; marked processed, in one transaction. */
static int set_aside(sc_client *c, const sc_envelope *e, bool hold, const char *code,
                     const char *text, sc_event_cb cb, void *ud)
{
    int64_t rowid = 0;
    int rc = sc_db_begin(c);

    if (rc != SC_OK)
        return rc;
    if (hold)
        rc = sc_held_add(c, e);
    if (rc == SC_OK)
        rc = sc_notice_row(c, e->source, e->source_device, e->server_ts, code, text, &rowid);
    if (rc == SC_OK)
        rc = sc_pending_event_add(c, rowid);
    if (rc == SC_OK)
        rc = sc_envelope_mark(c, e->id, e->id_len);
    if (rc == SC_OK)
        rc = sc_db_commit(c);
    else
        sc_db_rollback(c);
    if (rc == SC_OK)
        finish_row(c, rowid, cb, ud);
    return rc;
}

/* Vets, then processes, one received envelope. SC_OK when it may be acked.
 * A sender whose keys the key directory has not published (SC_E_RETRY
 * marked kt_wait) or does not confirm (SC_E_KT) does not stall the queue:
 * the envelope is held (with a notice) and tried again by sc_held_release;
 * so are the sender's later ones while earlier ones are held (in order). */
int sc_accept_envelope(sc_client *c, const sc_envelope *e, bool from_held, sc_event_cb cb, void *ud)
{
    char text[sizeof c->err + 256];
    bool genuine = false, seen = false, waiting = false;
    int rc;

    if (!sc_username_valid(e->source) || e->id_len == 0)
        return SC_OK; /* nothing we can attribute: ack and forget */
    if (!from_held) {
        rc = sc_envelope_seen(c, e->id, e->id_len, &seen);
        if (rc != SC_OK || seen)
            return rc;
        rc = sc_held_waiting_any(c, e->source, &waiting);
        if (rc != SC_OK)
            return rc;
        if (waiting) {
            snprintf(text, sizeof text,
                     "a message from %s was held after the earlier held message(s) from %s, to"
                     " keep their order; it will be shown with them once the key directory"
                     " publishes and verifies %s's keys",
                     e->source, e->source, e->source);
            return set_aside(c, e, true, "key_directory_pending", text, cb, ud);
        }
    }
    rc = sc_vet_sender(c, e, &genuine);
    if (rc == SC_E_UNTRUSTED && !from_held) {
        snprintf(text, sizeof text, "a message from %s was held: %s", e->source, c->err);
        return set_aside(c, e, true, "identity_changed", text, cb, ud);
    }
    if (rc == SC_E_RETRY && c->kt_wait && !from_held) {
        snprintf(text, sizeof text,
                 "a message from %s was held: the key directory has not published %s's keys"
                 " yet; it will be shown once the key directory publishes them",
                 e->source, e->source);
        return set_aside(c, e, true, "key_directory_pending", text, cb, ud);
    }
    if (rc == SC_E_KT && !from_held) {
        snprintf(text, sizeof text,
                 "a message from %s was held: %s; it will be shown once the key directory"
                 " verifies %s's keys",
                 e->source, c->err, e->source);
        return set_aside(c, e, true, "key_directory_refused", text, cb, ud);
    }
    if (rc != SC_OK)
        return rc;
    if (!genuine) {
        snprintf(text, sizeof text,
                 "a message from device %u of %s was not shown: %s's signed device list does"
                 " not contain that device",
                 e->source_device, e->source, e->source);
        return set_aside(c, e, false, "unlisted_device", text, cb, ud);
    }
    return sc_process_envelope(c, e, from_held, cb, ud);
}

int sc_held_release_sender(sc_client *c, const char *who, sc_event_cb cb, void *ud)
{
    for (;;) {
        sc_envelope e;
        int64_t row = 0;
        int rc = sc_held_next(c, who, &e, &row);

        if (rc == SC_E_NOT_FOUND)
            return SC_OK;
        if (rc != SC_OK)
            return rc;
        rc = sc_accept_envelope(c, &e, true, cb, ud);
        sc_envelope_clear(&e);
        if (rc == SC_OK)
            rc = sc_held_delete(c, row);
        if (rc != SC_OK)
            return rc;
    }
}

int sc_held_release(sc_client *c, sc_event_cb cb, void *ud)
{
    char **names = NULL;
    size_t n = 0;
    int rc = sc_held_waiting_senders(c, &names, &n);

    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        int r = sc_held_release_sender(c, names[i], cb, ud);
        /* still waiting (not published, refused, a changed key now waiting
         * for `trust`, ...): that sender's envelopes stay held; a dead
         * network fails the others too */
        if (r == SC_E_STORE || r == SC_E_NETWORK)
            rc = r;
    }
    sc_strv_free(names, n);
    return rc == SC_E_NETWORK ? SC_OK : rc;
}

/* A push the server stored damaged (it does not parse): it can never be
 * shown, so it is reported once and acknowledged, never left to block the
 * queue behind it. */
static void report_bad_push(sc_client *c, const sc_push *p, sc_event_cb cb, void *ud)
{
    int64_t rowid = 0;
    char text[256];

    snprintf(text, sizeof text, "the server delivered a damaged envelope (%s); it was dropped",
             p->error[0] ? p->error : "unreadable");
    if (sc_notice_row(c, "", 0, sc_now_ms(), "damaged_envelope", text, &rowid) == SC_OK &&
        rowid > 0)
        emit_rowid(c, rowid, cb, ud);
}

/* The server says our account's device list changed (a hint: the list is
 * fetched and checked, not taken from the notice): own-device monitoring
 * runs again, and what it found is shown now. */
static void list_changed(sc_client *c, sc_event_cb cb, void *ud)
{
    bool alert = false;

    if (sc_own_devices_check(c, &alert) == SC_OK)
        (void)sc_emit_pending(c, cb, ud);
}

void sc_set_wake(sc_client *c, void (*fn)(void *ud, sc_client *c), void *ud)
{
    c->wake_fn = fn;
    c->wake_ud = ud;
}

void sc_set_conn_watch(sc_client *c, void (*fn)(void *ud, bool up, const char *why), void *ud)
{
    c->conn_fn = fn;
    c->conn_ud = ud;
}

/* sc_set_conn_watch: tells the front end of a change of the server's reach
 * (*down holds the state last told). */
static void conn_state(sc_client *c, bool *down, bool up, const char *why)
{
    if (*down == !up)
        return;
    *down = !up;
    if (c->conn_fn)
        c->conn_fn(c->conn_ud, up, why ? why : "");
}

/* *stop is set: the front end's wake hook runs first (sc_set_wake); true
 * when sc_receive must return. */
static bool stop_now(sc_client *c, volatile int *stop)
{
    if (stop == NULL || !*stop)
        return false;
    if (c->wake_fn)
        c->wake_fn(c->wake_ud, c);
    return *stop != 0;
}

int sc_receive(sc_client *c, bool stay, volatile int *stop, sc_event_cb cb, void *ud)
{
    unsigned backoff = 1000;
    uint32_t processed, expected;
    uint64_t connected_at = 0, released_at = 0;
    bool first = true, down = false;
    int rc;

    for (;;) {
        sc_api_result r;
        uint32_t remaining = 0;
        bool low = false;
        unsigned idle = 0;

        rc = sc_connect(c);
        if (stay && rc == SC_OK)
            conn_state(c, &down, true, "");
        if (rc == SC_E_NETWORK && stay) {
            conn_state(c, &down, false, c->err);
            for (unsigned w = 0; w < backoff && !stop_now(c, stop); w += 100)
                sleep_ms(100);
            if (stop && *stop)
                return SC_OK;
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
            continue;
        }
        if (rc != SC_OK)
            return rc;
        connected_at = sc_now_ms();
        if (first) {
            /* what a killed predecessor stored but never showed */
            first = false;
            sc_attachment_cleanup_temp(c);
            rc = sc_emit_pending(c, cb, ud);
            if (rc == SC_OK)
                rc = sc_attachment_retry_pending(c, cb, ud);
            /* held messages whose sender's keys the key directory may have
             * published since: before the queue, so that they come before
             * that sender's newer ones */
            if (rc == SC_OK)
                rc = sc_held_release(c, cb, ud);
            released_at = sc_now_ms();
            if (rc != SC_OK)
                return rc;
            c->recv_cb = cb;
            c->recv_ud = ud;
            sc_everyday_tick(c, cb, ud); /* receipts due, disappeared messages */
            c->everyday_tick_ms = sc_now_ms();
        }
        (void)sc_flush(c, NULL);
        /* A round trip so that queued pushes are on their way. */
        if (sc_api_prekey_status(c, &remaining, &low, &r) == SC_API_OK && low)
            (void)sc_keys_maintain(c, true);
        sc_api_result_clear(&r);
        processed = 0;
        expected = c->login_queued;
        for (;;) {
            sc_push p;
            if (c->conn == NULL)
                break;
            /* drain: wait (up to 15 s) for the envelopes the login
             * announced, then until 400 ms pass without one */
            sc_api_next_push(c, stay ? 1000 : (processed < expected ? 15000 : 400), stop, &p);
            if (p.kind == SC_PUSH_NONE) {
                if (stop_now(c, stop)) {
                    (void)sc_api_flush(c, 2000);
                    return SC_OK;
                }
                if (c->conn && sc_conn_device_removed(c->conn))
                    return sc_fail(c, SC_E_STATE, "this device was removed from its account");
                if (c->conn == NULL || !sc_conn_alive(c->conn))
                    break;
                if (sc_conn_take_prekeys_low(c->conn))
                    (void)sc_keys_maintain(c, true);
                if (sc_conn_take_device_list_changed(c->conn))
                    list_changed(c, cb, ud);
                if (!stay) {
                    /* drained: the receipts owed (receipts.c: a one-shot
                     * receive sends them before it ends), then what
                     * decryption queued (session resets); show the notices
                     * that checking senders stored */
                    (void)sc_receipts_tick(c, true);
                    (void)sc_flush(c, NULL);
                    (void)sc_api_flush(c, 2000);
                    (void)sc_emit_pending(c, cb, ud);
                    return sc_attachment_outcome(c);
                }
                if (sc_now_ms() - c->everyday_tick_ms >= 1000) {
                    c->recv_cb = cb;
                    c->recv_ud = ud;
                    sc_everyday_tick(c, cb, ud);
                    c->everyday_tick_ms = sc_now_ms();
                    (void)sc_emit_pending(c, cb, ud);
                }
                if (++idle % 30 == 0) {
                    bool kt_alert = false;
                    (void)sc_flush(c, NULL);
                    /* own key-directory check at least daily (kt.c) */
                    if (sc_kt_monitor_due(c))
                        (void)sc_kt_monitor_own(c, &kt_alert);
                    if (sc_now_ms() - released_at >= SC_HELD_RELEASE_INTERVAL_MS) {
                        released_at = sc_now_ms();
                        (void)sc_held_release(c, cb, ud);
                    }
                    /* a device linked meanwhile gets its sync (linksync.c) */
                    (void)sc_link_sync_pending(c);
                    (void)sc_emit_pending(c, cb, ud);
                    (void)sc_attachment_retry_pending(c, cb, ud);
                }
                continue;
            }
            if (p.kind == SC_PUSH_BAD) {
                report_bad_push(c, &p, cb, ud);
            } else if (p.envelope.type == 6) {
                /* sealed sender (sealed.c): opened, then as if identified */
                sc_envelope inner;
                bool done = false;
                rc = sc_sealed_open(c, &p.envelope, &inner, &done, cb, ud);
                if (rc == SC_OK && !done)
                    rc = sc_accept_envelope(c, &inner, false, cb, ud);
                sc_envelope_clear(&inner);
                if (rc != SC_OK) {
                    sc_push_clear(&p);
                    return rc;
                }
            } else {
                rc = sc_accept_envelope(c, &p.envelope, false, cb, ud);
                if (rc != SC_OK) {
                    /* not stored: do not ack, it will come again */
                    sc_push_clear(&p);
                    return rc;
                }
            }
            (void)sc_api_ack(c, p.push_id);
            sc_push_clear(&p);
            processed++;
            if (c->conn && sc_conn_take_prekeys_low(c->conn))
                (void)sc_keys_maintain(c, true);
            /* a front end's work is not kept waiting by a long stream */
            if (c->wake_fn && stop_now(c, stop)) {
                (void)sc_api_flush(c, 2000);
                return SC_OK;
            }
        }
        sc_disconnect(c);
        if (stay && !(stop && *stop))
            conn_state(c, &down, false, "the connection to the server was lost");
        if (!stay)
            return sc_fail(c, SC_E_NETWORK,
                           "connection lost while receiving (the server closed it; another"
                           " process on this account may have taken over the connection)");
        if (stop_now(c, stop))
            return SC_OK;
        /* A connection that ended soon after it opened (the server gave the
         * device's one connection to another process of the same account,
         * or keeps dropping it) is not retried at once: back off, so that
         * two `listen`s do not take the connection from each other in a
         * tight loop. A connection that lasted resets the backoff. */
        if (sc_now_ms() - connected_at < 5000) {
            for (unsigned w = 0; w < backoff && !stop_now(c, stop); w += 100)
                sleep_ms(100);
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
        } else {
            backoff = 1000;
        }
    }
}
