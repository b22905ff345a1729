/*
 * client/core/receipts.c -- delivery and read receipts, read state, typing
 * indicators and their settings (issue 11, everyday.h; docs/protocol.md
 * "Receipts, read state and typing").
 *
 * Receipts we owe wait in client_receipts_out (durable) with a due time a
 * random 1-5 s after the message was stored or read, so that a receipt does
 * not mark the exact moment; once due they are batched per recipient and
 * type (one ReceiptMessage names up to 100 timestamps) and queued in the
 * outbox. Receipts for our own messages keep the best state per message and
 * recipient (client_receipts). Typing indicators are never stored: the ones
 * shown live in c->typing and expire after SC_TYPING_EXPIRE_MS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "everyday.h"

#define RCPT_DELIVERY 0 /* client_receipts_out.type */
#define RCPT_READ 1
#define RCPT_BATCH 100         /* timestamps per ReceiptMessage */
#define RCPT_DELAY_MIN_MS 1000 /* the random delay of a receipt */
#define RCPT_DELAY_MAX_MS 5000
#define READ_SYNC_BATCH 100 /* messages per SyncMessage.read */

/* ------------------------------------------------------------ settings */

static bool cfg_flag(sc_client *c, const char *key)
{
    uint64_t v = 1;

    if (sc_cfg_get_u64(c, key, &v) != SC_OK)
        return true; /* default on */
    return v != 0;
}

int sc_config_get(sc_client *c, sc_everyday_config *out)
{
    out->read_receipts = cfg_flag(c, "read_receipts");
    out->typing_indicators = cfg_flag(c, "typing_indicators");
    return SC_OK;
}

/* Queues SyncMessage.configuration (both settings) for our other devices;
 * Content.timestamp orders them (the newest wins). Inside a transaction. */
static int queue_config_sync(sc_client *c, uint64_t ts)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__Configuration conf =
        SOTTO__CONTENT__SYNC_MESSAGE__CONFIGURATION__INIT;
    sc_everyday_config cfg;

    (void)sc_config_get(c, &cfg);
    conf.read_receipts = cfg.read_receipts;
    conf.typing_indicators = cfg.typing_indicators;
    sync.configuration = &conf;
    ct.timestamp = ts;
    ct.sync = &sync;
    return sc_enqueue_content(c, c->username, &ct, 0);
}

int sc_config_set(sc_client *c, const char *key, bool on)
{
    const char *k;
    uint64_t ts;
    int rc;

    if (strcmp(key, "read-receipts") == 0)
        k = "read_receipts";
    else if (strcmp(key, "typing") == 0)
        k = "typing_indicators";
    else
        return sc_fail(c, SC_E_USAGE, "unknown setting %s (read-receipts, typing)", key);
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    ts = sc_next_timestamp(c);
    rc = sc_cfg_set_u64(c, k, on ? 1 : 0);
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, "config_ts", ts);
    /* read receipts off: the ones still owed are not sent */
    if (rc == SC_OK && !on && strcmp(k, "read_receipts") == 0)
        rc = sc_rcpt_out_drop_type(c, RCPT_READ);
    if (rc == SC_OK)
        rc = queue_config_sync(c, ts);
    if (rc != SC_OK) {
        sc_db_rollback(c);
        return rc;
    }
    rc = sc_db_commit(c);
    if (rc != SC_OK)
        return rc;
    (void)sc_flush(c, NULL); /* a failure leaves the sync queued */
    return SC_OK;
}

/* ------------------------------------------------------------ owing receipts */

/* The delay of a receipt: random 1-5 s, or SOTTO_TEST_RECEIPT_DELAY_MS
 * (docs/cli.md "Test hooks"). */
static uint64_t receipt_delay_ms(void)
{
    const char *v = getenv("SOTTO_TEST_RECEIPT_DELAY_MS");

    if (v != NULL && v[0] != '\0') {
        char *end = NULL;
        long long d = strtoll(v, &end, 10);
        if (end != v && *end == '\0' && d >= 0 && d <= 600000)
            return (uint64_t)d;
    }
    return RCPT_DELAY_MIN_MS + randombytes_uniform(RCPT_DELAY_MAX_MS - RCPT_DELAY_MIN_MS + 1);
}

int sc_receipts_on_stored(sc_client *c, int64_t rowid, const sc_msg_row *m)
{
    (void)rowid;
    /* a message request gets none until accepted; our own copies none */
    if (m->request || m->direction != 0 || m->sender == NULL || c->username == NULL ||
        strcmp(m->sender, c->username) == 0 || !sc_username_valid(m->sender))
        return SC_OK;
    return sc_rcpt_out_add(c, m->sender, m->timestamp, RCPT_DELIVERY,
                           sc_now_ms() + receipt_delay_ms());
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Queues one due batch; *done when none was due. */
static int queue_batch(sc_client *c, uint64_t now, bool *done)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__ReceiptMessage rm = SOTTO__CONTENT__RECEIPT_MESSAGE__INIT;
    uint64_t ts[RCPT_BATCH];
    char *to = NULL;
    int type = 0;
    size_t n = 0;
    int rc;

    *done = false;
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    rc = sc_rcpt_out_batch(c, now, &to, &type, ts, RCPT_BATCH, &n);
    if (rc == SC_E_NOT_FOUND) {
        *done = true;
        sc_db_rollback(c);
        return SC_OK;
    }
    if (rc == SC_OK && n > 0 && (type != RCPT_READ || cfg_flag(c, "read_receipts"))) {
        rm.type = type == RCPT_READ ? SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ
                                    : SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__DELIVERY;
        rm.timestamps = ts;
        rm.n_timestamps = n;
        ct.timestamp = sc_next_timestamp(c);
        ct.receipt = &rm;
        rc = sc_enqueue_content(c, to, &ct, 0);
    }
    if (rc == SC_OK)
        rc = sc_rcpt_out_delete(c, to, type, ts, n);
    free(to);
    if (rc != SC_OK) {
        sc_db_rollback(c);
        return rc;
    }
    return sc_db_commit(c);
}

int sc_receipts_send(sc_client *c, bool wait)
{
    size_t owed = 0, queued = 0;
    uint64_t max_due = 0, now;
    bool done = false;
    int rc;

    if (c->username == NULL)
        return SC_OK;
    rc = sc_rcpt_out_pending(c, &owed, &max_due);
    if (rc != SC_OK || owed == 0)
        return rc;
    now = sc_now_ms();
    if (wait && max_due > now) {
        /* at most the longest delay (a due time far ahead: a clock that
         * went back; it is sent now) */
        uint64_t d = max_due - now;
        sleep_ms(d > RCPT_DELAY_MAX_MS ? RCPT_DELAY_MAX_MS : d);
        now = max_due;
    }
    while (!done) {
        rc = queue_batch(c, now, &done);
        if (rc != SC_OK)
            return rc;
        if (!done)
            queued++;
    }
    if (queued > 0)
        (void)sc_flush(c, NULL); /* a failure leaves them queued */
    return SC_OK;
}

int sc_receipts_tick(sc_client *c, bool force)
{
    return sc_receipts_send(c, force);
}

/* ------------------------------------------------------------ incoming receipts */

/* Whether `who` was a recipient of our message stored in row rowid (1:1
 * with them, or a group they are a member of); *m gets the row. */
static int own_message_to(sc_client *c, int64_t rowid, const char *who, sc_msg *m, bool *ok)
{
    int rc = sc_msg_get(c, rowid, m);

    *ok = false;
    if (rc != SC_OK)
        return rc;
    if (strcmp(m->conv_kind, "contact") == 0) {
        *ok = strcmp(m->conv, who) == 0;
    } else if (strcmp(m->conv_kind, "group") == 0) {
        uint8_t gid[SC_GROUP_ID_BYTES];
        size_t bl = 0;
        char **mem = NULL;
        size_t nm = 0;
        if (sodium_hex2bin(gid, sizeof gid, m->conv, strlen(m->conv), NULL, &bl, NULL) == 0 &&
            bl == sizeof gid && sc_group_members(c, gid, &mem, &nm, NULL, NULL) == SC_OK) {
            for (size_t i = 0; i < nm; i++)
                if (strcmp(mem[i], who) == 0)
                    *ok = true;
            sc_strv_free(mem, nm);
        }
    }
    return SC_OK;
}

int sc_receipt_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                      pending_emit *pe)
{
    const Sotto__Content__ReceiptMessage *r = ct->receipt;
    bool read = r->type == SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ;
    int state = read ? 2 : 1;
    json_t *extra = NULL, *arr = NULL;
    char *first_kind = NULL, *first_conv = NULL, *extra_s = NULL;
    uint64_t first_ts = 0;
    size_t n = r->n_timestamps < RCPT_BATCH ? r->n_timestamps : RCPT_BATCH;
    bool seen = false;
    int rc = SC_OK;

    if (c->username == NULL || n == 0)
        return SC_OK;
    if (r->type != SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__READ &&
        r->type != SOTTO__CONTENT__RECEIPT_MESSAGE__TYPE__DELIVERY)
        return SC_OK;
    /* read receipts off: others' are not shown either (as Signal does) */
    if (read && !cfg_flag(c, "read_receipts"))
        return SC_OK;
    rc = sc_msg_seen(c, e->source, ct->timestamp, &seen);
    if (rc != SC_OK || seen)
        return rc;
    arr = json_array();
    if (arr == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        int64_t rowid = 0;
        sc_msg m;
        bool ok = false;
        rc = sc_msg_find(c, NULL, NULL, c->username, r->timestamps[i], 1, &rowid);
        if (rc == SC_E_NOT_FOUND) {
            rc = SC_OK; /* not ours (or gone): ignored */
            continue;
        }
        if (rc == SC_OK)
            rc = own_message_to(c, rowid, e->source, &m, &ok);
        if (rc != SC_OK)
            break;
        if (ok) {
            /* only what moved the state up is an event: a repeated or late
             * lower receipt (a replay with a new timestamp, a delivery after
             * the read) stores nothing */
            bool changed = false;
            rc = sc_rcpt_set(c, r->timestamps[i], e->source, state, sc_now_ms(), &changed);
            if (rc != SC_OK || !changed) {
                sc_msg_free(&m);
                continue;
            }
            json_array_append_new(arr, json_integer((json_int_t)r->timestamps[i]));
            if (first_kind == NULL) {
                first_kind = m.conv_kind, first_conv = m.conv;
                m.conv_kind = NULL, m.conv = NULL;
                first_ts = r->timestamps[i];
            }
        }
        sc_msg_free(&m);
    }
    if (rc == SC_OK && first_kind != NULL) {
        sc_msg_row row;
        int64_t rowid = 0;
        extra = json_object();
        json_object_set_new(extra, "receipt_type", json_string(read ? "read" : "delivery"));
        json_object_set(extra, "timestamps", arr);
        extra_s = json_dumps(extra, JSON_COMPACT);
        if (extra_s == NULL) {
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        } else {
            memset(&row, 0, sizeof row);
            row.conv_kind = first_kind;
            row.conv = first_conv;
            row.direction = 0;
            row.sender = e->source;
            row.sender_device = e->source_device;
            row.timestamp = ct->timestamp;
            row.server_ts = e->server_ts;
            row.kind = "receipt";
            row.body = "";
            row.extra = extra_s;
            row.target_sender = c->username;
            row.target_ts = first_ts;
            rc = sc_msg_insert(c, &row, &rowid);
            if (rc == SC_OK)
                sc_pend_row(pe, rowid);
        }
    }
    free(extra_s);
    json_decref(extra);
    json_decref(arr);
    free(first_kind);
    free(first_conv);
    return rc;
}

/* ------------------------------------------------------------ per-message state */

int sc_receipts_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k)
{
    char **names = NULL;
    size_t nn = 0, total = 0;
    sc_rcpt_row *rows = NULL;
    size_t nr = 0;
    sc_receipt_info *info;
    char *strs;
    bool read_on;
    int rc;

    if (c->username == NULL || m->direction != 1 || m->deleted || m->target_sender != NULL ||
        strcmp(m->kind, "text") != 0 || strcmp(m->sender, c->username) != 0)
        return SC_OK;
    if (strcmp(m->conv_kind, "contact") == 0) {
        if (strcmp(m->conv, c->username) == 0)
            return SC_OK; /* a note to self */
        names = calloc(1, sizeof *names);
        if (names == NULL || (names[0] = strdup(m->conv)) == NULL) {
            free(names);
            return SC_E_INTERNAL;
        }
        nn = 1;
    } else {
        uint8_t gid[SC_GROUP_ID_BYTES];
        size_t bl = 0;
        if (sodium_hex2bin(gid, sizeof gid, m->conv, strlen(m->conv), NULL, &bl, NULL) != 0 ||
            bl != sizeof gid || sc_group_members(c, gid, &names, &nn, NULL, NULL) != SC_OK)
            return SC_OK;
    }
    rc = sc_rcpt_list(c, m->timestamp, &rows, &nr);
    if (rc != SC_OK) {
        sc_strv_free(names, nn);
        return rc;
    }
    /* every member (and anyone who acknowledged it and left since) */
    for (size_t i = 0; i < nn; i++)
        total += strlen(names[i]) + 1;
    for (size_t j = 0; j < nr; j++)
        total += strlen(rows[j].recipient) + 1;
    info = calloc(1, (nn + nr) * sizeof *info + total + 1);
    if (info == NULL) {
        sc_strv_free(names, nn);
        sc_rcpt_list_free(rows, nr);
        return SC_E_INTERNAL;
    }
    strs = (char *)(info + nn + nr);
    read_on = cfg_flag(c, "read_receipts");
    {
        size_t cnt = 0;
        for (size_t i = 0; i < nn + nr; i++) {
            const char *who = i < nn ? names[i] : rows[i - nn].recipient;
            const sc_rcpt_row *hit = NULL;
            size_t l = strlen(who);
            bool dup = false;
            if (strcmp(who, c->username) == 0)
                continue;
            for (size_t x = 0; x < cnt; x++)
                if (strcmp(info[x].recipient, who) == 0)
                    dup = true;
            if (dup)
                continue;
            for (size_t j = 0; j < nr; j++)
                if (strcmp(rows[j].recipient, who) == 0)
                    hit = &rows[j];
            memcpy(strs, who, l + 1);
            info[cnt].recipient = strs;
            strs += l + 1;
            if (hit == NULL) {
                info[cnt].state = "sent";
                info[cnt].at_ms = 0;
            } else {
                /* read receipts off: no read state shown */
                info[cnt].state = hit->state >= 2 && read_on ? "read" : "delivered";
                info[cnt].at_ms = hit->at_ms;
            }
            cnt++;
        }
        sc_strv_free(names, nn);
        sc_rcpt_list_free(rows, nr);
        if (cnt == 0 || sc_keep_add(k, info, NULL) != SC_OK) {
            if (cnt == 0)
                free(info);
            return SC_OK;
        }
        ev->receipts = info;
        ev->n_receipts = cnt;
    }
    return SC_OK;
}

int sc_message_receipts(sc_client *c, const char *conv, bool is_group, uint64_t ts, sc_event_cb cb,
                        void *ud)
{
    char key[33];
    const char *ck = is_group ? "group" : "contact";
    const char *cv = conv;
    int64_t rowid = 0;
    sc_msg m;
    int rc;

    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (is_group) {
        uint8_t gid[SC_GROUP_ID_BYTES];
        rc = sc_group_resolve(c, conv, gid);
        if (rc != SC_OK)
            return rc;
        sc_hex(gid, sizeof gid, key);
        cv = key;
    }
    rc = sc_msg_find(c, ck, cv, c->username, ts, 1, &rowid);
    if (rc == SC_E_NOT_FOUND)
        return sc_fail(c, SC_E_NOT_FOUND, "no message of yours with timestamp %llu in %s",
                       (unsigned long long)ts, conv);
    if (rc == SC_OK)
        rc = sc_msg_get(c, rowid, &m);
    if (rc != SC_OK)
        return rc;
    rc = sc_emit_row(c, &m, cb, ud);
    sc_msg_free(&m);
    return rc;
}

/* ------------------------------------------------------------ reading */

/* Marks row rowid read now (timer started); *m gets the row, *changed
 * whether it was unread. */
static int mark_row(sc_client *c, int64_t rowid, uint64_t now, sc_msg *m, bool *changed)
{
    int rc = sc_msg_get(c, rowid, m);

    *changed = false;
    if (rc != SC_OK)
        return rc;
    rc = sc_msg_set_read(c, rowid, now, m->expire_s ? now + (uint64_t)m->expire_s * 1000u : 0,
                         changed);
    if (rc != SC_OK)
        sc_msg_free(m);
    return rc;
}

/* Queues SyncMessage.read for (senders[i], tss[i]), i < n (<= READ_SYNC_BATCH). */
static int queue_read_sync(sc_client *c, char **senders, const uint64_t *tss, size_t n)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__Read rd[READ_SYNC_BATCH];
    Sotto__Content__SyncMessage__Read *rp[READ_SYNC_BATCH];

    for (size_t i = 0; i < n; i++) {
        sotto__content__sync_message__read__init(&rd[i]);
        rd[i].sender = senders[i];
        rd[i].timestamp = tss[i];
        rp[i] = &rd[i];
    }
    sync.read = rp;
    sync.n_read = n;
    ct.timestamp = sc_next_timestamp(c);
    ct.sync = &sync;
    return sc_enqueue_content(c, c->username, &ct, 0);
}

int sc_read_mark(sc_client *c, const char *conv, bool is_group, const uint64_t *ts, size_t n,
                 size_t *marked)
{
    char key[33];
    const char *ck = is_group ? "group" : "contact";
    const char *cv = conv;
    int64_t *ids = NULL;
    size_t nids = 0, cnt = 0, ns = 0;
    char *senders[READ_SYNC_BATCH];
    uint64_t stss[READ_SYNC_BATCH];
    bool receipts_on;
    uint64_t now = sc_now_ms();
    int rc;

    if (marked)
        *marked = 0;
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (is_group) {
        uint8_t gid[SC_GROUP_ID_BYTES];
        rc = sc_group_resolve(c, conv, gid);
        if (rc != SC_OK)
            return rc;
        sc_hex(gid, sizeof gid, key);
        cv = key;
    } else if (!sc_username_valid(conv)) {
        return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", conv);
    }
    receipts_on = cfg_flag(c, "read_receipts");
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    if (n == 0) {
        rc = sc_msg_unread(c, ck, cv, &ids, &nids);
    } else {
        ids = calloc(n, sizeof *ids);
        if (ids == NULL)
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        for (size_t i = 0; rc == SC_OK && i < n; i++) {
            /* a group: an incoming message there (any member's); a contact:
             * its message (1:1 or in a group: a message id is author and
             * timestamp) */
            rc = is_group ? sc_msg_find(c, ck, cv, NULL, ts[i], 0, &ids[i])
                          : sc_msg_find(c, NULL, NULL, conv, ts[i], 0, &ids[i]);
            if (rc == SC_E_NOT_FOUND)
                rc = sc_fail(c, SC_E_NOT_FOUND, "no message with timestamp %llu from others in %s",
                             (unsigned long long)ts[i], conv);
        }
        nids = n;
    }
    for (size_t i = 0; rc == SC_OK && i < nids; i++) {
        sc_msg m;
        bool changed = false;
        rc = mark_row(c, ids[i], now, &m, &changed);
        if (rc != SC_OK)
            break;
        if (changed) {
            cnt++;
            if (receipts_on && !m.request && strcmp(m.sender, c->username) != 0)
                rc = sc_rcpt_out_add(c, m.sender, m.timestamp, RCPT_READ, now + receipt_delay_ms());
            if (rc == SC_OK) {
                senders[ns] = m.sender;
                m.sender = NULL;
                stss[ns++] = m.timestamp;
            }
            if (rc == SC_OK && ns == READ_SYNC_BATCH) {
                rc = queue_read_sync(c, senders, stss, ns);
                for (size_t j = 0; j < ns; j++)
                    free(senders[j]);
                ns = 0;
            }
        }
        sc_msg_free(&m);
    }
    if (rc == SC_OK && ns > 0)
        rc = queue_read_sync(c, senders, stss, ns);
    for (size_t j = 0; j < ns; j++)
        free(senders[j]);
    free(ids);
    if (rc != SC_OK) {
        sc_db_rollback(c);
        return rc;
    }
    rc = sc_db_commit(c);
    if (rc != SC_OK)
        return rc;
    if (marked)
        *marked = cnt;
    if (cnt > 0)
        (void)sc_flush(c, NULL); /* the read sync; a failure leaves it queued */
    return SC_OK;
}

/* ------------------------------------------------------------ own devices' syncs */

/* SyncMessage.read: the messages count as read here too. */
static int sync_read(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                     pending_emit *pe)
{
    const Sotto__Content__SyncMessage *s = ct->sync;
    uint64_t now = sc_now_ms();
    size_t n = s->n_read < READ_SYNC_BATCH ? s->n_read : READ_SYNC_BATCH;
    int rc = SC_OK;

    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        const Sotto__Content__SyncMessage__Read *r = s->read[i];
        int64_t rowid = 0, crow = 0;
        bool changed = false;
        sc_msg m;
        sc_msg_row row;

        if (r == NULL || !sc_username_valid(r->sender))
            continue;
        rc = sc_msg_find(c, NULL, NULL, r->sender, r->timestamp, 0, &rowid);
        if (rc == SC_E_NOT_FOUND) {
            rc = SC_OK; /* not here (yet): nothing to mark */
            continue;
        }
        if (rc == SC_OK)
            rc = mark_row(c, rowid, now, &m, &changed);
        if (rc != SC_OK)
            break;
        if (changed) {
            /* a "read" control row: subscribers learn it */
            memset(&row, 0, sizeof row);
            row.conv_kind = m.conv_kind;
            row.conv = m.conv;
            row.direction = 1;
            row.sender = c->username;
            row.sender_device = e->source_device;
            row.timestamp = ct->timestamp;
            row.server_ts = e->server_ts;
            row.kind = "read";
            row.body = "";
            row.target_sender = r->sender;
            row.target_ts = r->timestamp;
            rc = sc_msg_insert(c, &row, &crow);
            if (rc == SC_OK)
                sc_pend_row(pe, crow);
        }
        sc_msg_free(&m);
    }
    return rc;
}

/* SyncMessage.configuration: the newest (by Content.timestamp) wins. */
static int sync_config(sc_client *c, const Sotto__Content__Content *ct)
{
    const Sotto__Content__SyncMessage__Configuration *conf = ct->sync->configuration;
    uint64_t last = 0;
    int rc;

    (void)sc_cfg_get_u64(c, "config_ts", &last);
    if (ct->timestamp <= last)
        return SC_OK;
    rc = sc_cfg_set_u64(c, "read_receipts", conf->read_receipts ? 1 : 0);
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, "typing_indicators", conf->typing_indicators ? 1 : 0);
    if (rc == SC_OK && !conf->read_receipts)
        rc = sc_rcpt_out_drop_type(c, RCPT_READ);
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, "config_ts", ct->timestamp);
    return rc;
}

int sc_config_sync_apply(sc_client *c, const Sotto__Content__Content *ct)
{
    if (ct->sync == NULL || ct->sync->configuration == NULL)
        return SC_OK;
    return sync_config(c, ct);
}

int sc_config_sync_fill(sc_client *c, Sotto__Content__SyncMessage__Configuration *conf)
{
    sc_everyday_config cfg;
    int rc = sc_config_get(c, &cfg);
    if (rc != SC_OK)
        return rc;
    conf->read_receipts = cfg.read_receipts;
    conf->typing_indicators = cfg.typing_indicators;
    return SC_OK;
}

int sc_sync_extra_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                         pending_emit *pe)
{
    const Sotto__Content__SyncMessage *s = ct->sync;
    bool seen = false;
    int rc;

    if (s == NULL || c->username == NULL || strcmp(e->source, c->username) != 0)
        return SC_OK;
    rc = sc_msg_seen(c, e->source, ct->timestamp, &seen);
    if (rc != SC_OK || seen)
        return rc;
    if (s->n_read > 0)
        rc = sync_read(c, e, ct, pe);
    if (rc == SC_OK && s->configuration)
        rc = sync_config(c, ct);
    if (rc == SC_OK && s->blocked)
        rc = sc_requests_sync_blocked(c, e, ct, pe);
    if (rc == SC_OK && s->message_request_response)
        rc = sc_requests_sync_response(c, e, ct, pe);
    if (rc == SC_OK && (s->profile_key.len > 0 || s->profile_name[0] != '\0'))
        rc = sc_profile_sync(c, e, ct, pe);
    return rc;
}

/* ------------------------------------------------------------ typing */

typedef struct typing_entry {
    char sender[33];
    char group[33]; /* "" for 1:1 */
    uint32_t device;
    uint64_t expires_ms;
    struct typing_entry *next;
} typing_entry;

void sc_typing_free(sc_client *c)
{
    typing_entry *t = c->typing;

    while (t) {
        typing_entry *n = t->next;
        free(t);
        t = n;
    }
    c->typing = NULL;
}

static void typing_emit(sc_client *c, sc_event_cb cb, void *ud, const typing_entry *t, uint64_t ts,
                        bool started)
{
    sc_event ev;
    char *gname = NULL;

    if (cb == NULL)
        return;
    memset(&ev, 0, sizeof ev);
    ev.kind = SC_EV_TYPING;
    ev.id = 0;
    ev.sender = t->sender;
    ev.sender_device = t->device;
    ev.timestamp = ts;
    ev.body = "";
    ev.typing_started = started;
    if (t->group[0]) {
        uint8_t gid[SC_GROUP_ID_BYTES];
        size_t bl = 0;
        ev.group_id = t->group;
        if (sodium_hex2bin(gid, sizeof gid, t->group, strlen(t->group), NULL, &bl, NULL) == 0 &&
            bl == sizeof gid) {
            char **gm = NULL;
            size_t ngm = 0;
            if (sc_group_members(c, gid, &gm, &ngm, &gname, NULL) == SC_OK)
                sc_strv_free(gm, ngm);
        }
        ev.group_name = gname;
    } else {
        ev.conversation = t->sender;
    }
    cb(ud, &ev);
    free(gname);
}

int sc_typing_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct)
{
    const Sotto__Content__TypingMessage *tm = ct->typing;
    bool started = tm->action == SOTTO__CONTENT__TYPING_MESSAGE__ACTION__STARTED;
    typing_entry key, *t, **pp;
    uint64_t now = sc_now_ms();

    if (!cfg_flag(c, "typing_indicators") || strlen(e->source) >= sizeof key.sender)
        return SC_OK; /* off: none shown */
    if (tm->group_id.len == 0) {
        /* a stranger (a message request, or not even that): none shown */
        bool request = true;
        if (sc_requests_is_request(c, "contact", e->source, &request) != SC_OK || request)
            return SC_OK;
    }
    memset(&key, 0, sizeof key);
    snprintf(key.sender, sizeof key.sender, "%s", e->source);
    key.device = e->source_device;
    if (tm->group_id.len > 0) {
        char **mem = NULL, *name = NULL;
        size_t nm = 0;
        bool active = false, member = false;
        if (tm->group_id.len != SC_GROUP_ID_BYTES)
            return SC_OK;
        if (sc_group_members(c, tm->group_id.data, &mem, &nm, &name, &active) != SC_OK)
            return SC_OK; /* a group we do not know: nothing to show it in */
        for (size_t i = 0; i < nm; i++)
            if (strcmp(mem[i], e->source) == 0)
                member = true;
        sc_strv_free(mem, nm);
        free(name);
        if (!active || !member)
            return SC_OK;
        sc_hex(tm->group_id.data, SC_GROUP_ID_BYTES, key.group);
        {
            /* a group we have not accepted (a request): none shown */
            bool request = true;
            if (sc_requests_is_request(c, "group", key.group, &request) != SC_OK || request)
                return SC_OK;
        }
    }
    for (pp = (typing_entry **)&c->typing; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->sender, key.sender) == 0 && strcmp((*pp)->group, key.group) == 0)
            break;
    t = *pp;
    if (started) {
        uint64_t sent = tm->timestamp ? tm->timestamp : ct->timestamp;
        if (sent + SC_TYPING_EXPIRE_MS < now)
            return SC_OK; /* held back (offline, or by the server): over already */
        if (t != NULL) {
            t->expires_ms = now + SC_TYPING_EXPIRE_MS; /* still typing */
            return SC_OK;
        }
        t = malloc(sizeof *t);
        if (t == NULL)
            return SC_OK;
        *t = key;
        t->expires_ms = now + SC_TYPING_EXPIRE_MS;
        t->next = c->typing;
        c->typing = t;
        typing_emit(c, c->recv_cb, c->recv_ud, t, tm->timestamp ? tm->timestamp : ct->timestamp,
                    true);
        return SC_OK;
    }
    if (t == NULL)
        return SC_OK; /* not shown as typing: nothing to stop */
    *pp = t->next;
    typing_emit(c, c->recv_cb, c->recv_ud, t, tm->timestamp ? tm->timestamp : ct->timestamp, false);
    free(t);
    return SC_OK;
}

void sc_typing_tick(sc_client *c, sc_event_cb cb, void *ud)
{
    uint64_t now = sc_now_ms();
    typing_entry **pp = (typing_entry **)&c->typing;

    if (c->typing != NULL && !cfg_flag(c, "typing_indicators")) {
        sc_typing_free(c); /* turned off: none shown, none stopped either */
        return;
    }

    while (*pp) {
        typing_entry *t = *pp;
        if (t->expires_ms > now) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        typing_emit(c, cb, ud, t, now, false); /* expired: stopped */
        free(t);
    }
}

int sc_typing_send(sc_client *c, const char *to, bool is_group, bool started, bool *sent)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__TypingMessage tm = SOTTO__CONTENT__TYPING_MESSAGE__INIT;
    uint8_t gid[SC_GROUP_ID_BYTES];
    char **members = NULL;
    size_t nm = 0, len;
    uint8_t *buf = NULL;
    bool active = false;
    int rc = SC_OK, first = SC_OK;

    if (sent)
        *sent = false;
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (is_group) {
        rc = sc_group_resolve(c, to, gid);
        if (rc == SC_OK)
            rc = sc_group_members(c, gid, &members, &nm, NULL, &active);
        if (rc != SC_OK)
            return rc;
        if (!active) {
            sc_strv_free(members, nm);
            return sc_fail(c, SC_E_STATE, "you are no longer a member of group %s", to);
        }
        tm.group_id.data = gid;
        tm.group_id.len = sizeof gid;
    } else if (!sc_username_valid(to)) {
        return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", to);
    }
    if (!cfg_flag(c, "typing_indicators")) {
        sc_strv_free(members, nm);
        return SC_OK; /* off: none sent */
    }
    tm.action = started ? SOTTO__CONTENT__TYPING_MESSAGE__ACTION__STARTED
                        : SOTTO__CONTENT__TYPING_MESSAGE__ACTION__STOPPED;
    tm.timestamp = sc_now_ms();
    ct.timestamp = sc_next_timestamp(c);
    ct.typing = &tm;
    len = sotto__content__content__get_packed_size(&ct);
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        sc_strv_free(members, nm);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    sotto__content__content__pack(&ct, buf);
    rc = sc_connect(c);
    if (rc == SC_OK && is_group) {
        for (size_t i = 0; i < nm; i++) {
            if (strcmp(members[i], c->username) == 0)
                continue;
            int r = sc_deliver(c, members[i], buf, len);
            if (r != SC_OK && first == SC_OK)
                first = r;
        }
        rc = first;
    } else if (rc == SC_OK && strcmp(to, c->username) != 0) {
        rc = sc_deliver(c, to, buf, len);
    }
    free(buf);
    sc_strv_free(members, nm);
    if (rc == SC_OK && sent)
        *sent = true;
    return rc;
}
