/*
 * client/core/expire.c -- disappearing messages and wiping a message from
 * the store (issue 11, everyday.h; docs/protocol.md "Disappearing
 * messages").
 *
 * A conversation (contact or group) has a timer (client_conversations
 * expire_s, and expire_ts: the Content.timestamp of the change that set
 * it; the newest change wins, so a replayed or late older change leaves the
 * state as it is). A change travels as a DataMessage with flag
 * EXPIRATION_TIMER_UPDATE and expire_timer (0 = off), sent to every member
 * and to our own devices (the Sent copy), and is stored as a visible
 * "timer" row. Every other data message we send carries the timer in
 * expire_timer; one that arrives with a different timer and is newer than
 * the last change updates the conversation (as Signal does).
 *
 * A message sent under a timer disappears expire_s seconds after it was
 * sent (our own, and our own devices' Sent copies) or read (incoming:
 * sc_expire_start, called by `read`): sc_expire_tick wipes every row whose
 * expires_ms has passed -- at every start of a registered account
 * (sc_open) and about once a second while receiving -- and then
 * checkpoints and truncates the WAL so that no old page holds the text.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "everyday.h"

/* How far a peer's Content.timestamp may be ahead of the server's clock
 * (e->server_ts) for its timer change to count (clock skew). */
#define TIMER_FUTURE_MS (3600ull * 1000)

/* ------------------------------------------------------------ wiping */

/* Whether path names a file directly inside the account's attachments
 * directory (resolved through symlinks): only such files are ours to
 * delete; a file we sent from lies elsewhere and stays. */
static bool in_att_dir(sc_client *c, const char *path)
{
    char dir[PATH_MAX], file[PATH_MAX];
    size_t n;
    const char *slash;

    if (c->att_dir == NULL || path == NULL || path[0] == '\0')
        return false;
    if (realpath(c->att_dir, dir) == NULL || realpath(path, file) == NULL)
        return false;
    n = strlen(dir);
    if (strncmp(file, dir, n) != 0 || file[n] != '/')
        return false;
    slash = strchr(file + n + 1, '/');
    return slash == NULL && file[n + 1] != '\0';
}

/* Deletes the downloaded files named in extra JSON s ("attachments"[].path). */
static void unlink_files(sc_client *c, const char *s)
{
    json_t *o = s ? json_loads(s, 0, NULL) : NULL;
    json_t *arr = json_object_get(o, "attachments");

    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *p = json_string_value(json_object_get(json_array_get(arr, i), "path"));
        if (in_att_dir(c, p))
            (void)unlink(p);
    }
    json_decref(o);
}

int sc_wipe_message(sc_client *c, int64_t rowid, bool tombstone)
{
    sc_msg m;
    int rc = sc_msg_get(c, rowid, &m);

    if (rc != SC_OK)
        return rc == SC_E_NOT_FOUND ? sc_fail(c, rc, "no message %lld", (long long)rowid) : rc;
    rc = sc_msg_wipe(c, rowid, tombstone);
    if (rc == SC_OK)
        unlink_files(c, m.extra);
    sc_msg_free(&m);
    if (rc == SC_OK)
        rc = sc_store_scrub(c); /* inside a transaction: marks c->scrub_due */
    return rc;
}

int sc_store_scrub(sc_client *c)
{
    bool done = false;
    int rc = SC_OK;

    if (c->db == NULL)
        return SC_OK;
    if (sc_db_in_transaction(c)) {
        c->scrub_due = true; /* the caller runs it after its commit */
        return SC_OK;
    }
    for (int i = 0; i < 10 && !done; i++) {
        rc = sc_store_checkpoint(c, &done);
        if (rc != SC_OK)
            break;
        if (!done) {
            /* another connection (a reader) holds the WAL: a moment */
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    /* still busy: sc_expire_tick tries again */
    c->scrub_due = !done;
    return rc;
}

/* ------------------------------------------------------------ timers */

int sc_expire_start(sc_client *c, int64_t rowid, uint64_t read_ms)
{
    return sc_msg_expire_start(c, rowid, read_ms);
}

int sc_expire_decorate(sc_client *c, const char *conv_kind, const char *conv,
                       Sotto__Content__DataMessage *dm, uint32_t *expire_s)
{
    uint32_t s = 0;
    int rc = sc_conv_timer_get(c, conv_kind, conv, &s, NULL);

    *expire_s = 0;
    if (rc != SC_OK)
        return rc;
    dm->expire_timer = s;
    *expire_s = s;
    return SC_OK;
}

/* Stores the visible "timer" row of a change (author, ts) to expire_s. */
static int timer_row(sc_client *c, const char *conv_kind, const char *conv, bool outgoing,
                     const char *author, uint32_t device, uint64_t ts, uint64_t server_ts,
                     uint32_t expire_s, bool request, int64_t *rowid)
{
    sc_msg_row m;
    char extra[48];

    snprintf(extra, sizeof extra, "{\"expire_timer\":%u}", (unsigned)expire_s);
    memset(&m, 0, sizeof m);
    m.conv_kind = conv_kind;
    m.conv = conv;
    m.direction = outgoing ? 1 : 0;
    m.sender = author;
    m.sender_device = device;
    m.timestamp = ts;
    m.server_ts = server_ts;
    m.kind = "timer";
    m.body = "";
    m.body_len = 0;
    m.extra = extra;
    m.request = request;
    return sc_msg_insert(c, &m, rowid);
}

int sc_expire_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                   const char *conv_kind, const char *conv, uint64_t ts,
                   const Sotto__Content__DataMessage *dm, pending_emit *pe, bool *handled)
{
    uint32_t cur = 0;
    uint64_t cur_ts = 0;
    int64_t rowid = 0;
    int rc;

    *handled = false;
    /* a peer's change that cannot be right is ignored: a timer over the
     * longest one (the sender side refuses it too), or a Content.timestamp
     * more than TIMER_FUTURE_MS ahead of the server's clock -- it would
     * outrank ("newest wins") every honest change for as long as it lies */
    if (!outgoing && (dm->expire_timer > SC_EXPIRE_MAX_S || ts > e->server_ts + TIMER_FUTURE_MS)) {
        *handled =
            (dm->flags & SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_EXPIRATION_TIMER_UPDATE) != 0;
        return SC_OK;
    }
    if (dm->flags & SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_EXPIRATION_TIMER_UPDATE) {
        bool request = false;
        *handled = true;
        /* a stranger's change is part of its message request (requests.c) */
        rc = outgoing ? SC_OK : sc_requests_is_request(c, conv_kind, conv, &request);
        if (rc == SC_OK)
            rc = sc_conv_timer_set(c, conv_kind, conv, dm->expire_timer, ts, NULL);
        if (rc == SC_OK)
            rc = timer_row(c, conv_kind, conv, outgoing, author, e->source_device, ts, e->server_ts,
                           dm->expire_timer, request, &rowid);
        if (rc == SC_OK)
            sc_pend_row(pe, rowid);
        return rc;
    }
    /* an ordinary message: its timer is the sender's view of the
     * conversation's; newer than the last change and different, it wins
     * (group changes carry none: left alone) */
    if (dm->group && dm->group->type != SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER)
        return SC_OK;
    rc = sc_conv_timer_get(c, conv_kind, conv, &cur, &cur_ts);
    if (rc != SC_OK || cur == dm->expire_timer || ts <= cur_ts)
        return rc;
    {
        /* a change all the same: shown as one (a timer turned off or
         * changed must never go unnoticed) */
        bool changed = false, request = false;
        rc = outgoing ? SC_OK : sc_requests_is_request(c, conv_kind, conv, &request);
        if (rc == SC_OK)
            rc = sc_conv_timer_set(c, conv_kind, conv, dm->expire_timer, ts, &changed);
        if (rc == SC_OK && changed)
            rc = timer_row(c, conv_kind, conv, outgoing, author, e->source_device, ts, e->server_ts,
                           dm->expire_timer, request, &rowid);
        if (rc == SC_OK && changed && pe)
            sc_pend_row(pe, rowid);
        return rc;
    }
}

int sc_expire_tick(sc_client *c)
{
    int64_t rows[64];
    size_t n = 0;
    bool wiped = false;
    int rc;

    if (c == NULL || c->db == NULL)
        return SC_OK;
    do {
        rc = sc_msg_expired(c, sc_now_ms(), sizeof rows / sizeof rows[0], rows, &n);
        for (size_t i = 0; rc == SC_OK && i < n; i++) {
            rc = sc_db_begin(c);
            if (rc != SC_OK)
                break;
            rc = sc_wipe_message(c, rows[i], false);
            if (rc == SC_E_NOT_FOUND)
                rc = SC_OK; /* gone meanwhile (another process) */
            if (rc == SC_OK)
                rc = sc_db_commit(c);
            else
                sc_db_rollback(c);
            wiped = true;
        }
    } while (rc == SC_OK && n == sizeof rows / sizeof rows[0]);
    if (wiped || c->scrub_due) {
        int src = sc_store_scrub(c);
        if (rc == SC_OK)
            rc = src;
    }
    return rc;
}

/* ------------------------------------------------------------ the command */

/* The conversation key of (to, to_group): a contact's name or the group
 * id in hex (gid_hex holds 33). */
static int conv_of(sc_client *c, const char *to, bool to_group, char gid_hex[33], const char **conv)
{
    uint8_t gid[SC_GROUP_ID_BYTES];
    int rc;

    if (!to_group) {
        if (!sc_username_valid(to))
            return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", to);
        *conv = to;
        return SC_OK;
    }
    rc = sc_group_resolve(c, to, gid);
    if (rc != SC_OK)
        return rc;
    sc_hex(gid, sizeof gid, gid_hex);
    *conv = gid_hex;
    return SC_OK;
}

int sc_timer_get(sc_client *c, const char *to, bool to_group, uint32_t *seconds)
{
    char gid_hex[33];
    const char *conv = NULL;
    int rc;

    *seconds = 0;
    rc = conv_of(c, to, to_group, gid_hex, &conv);
    if (rc != SC_OK)
        return rc;
    return sc_conv_timer_get(c, to_group ? "group" : "contact", conv, seconds, NULL);
}

int sc_timer_set(sc_client *c, const char *to, bool to_group, uint32_t seconds,
                 uint64_t *timestamp_out)
{
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    const char *kind = to_group ? "group" : "contact";
    char gid_hex[33];
    const char *conv = NULL;
    uint64_t ts = 0;
    int rc, lrc;

    if (timestamp_out)
        *timestamp_out = 0;
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (seconds > SC_EXPIRE_MAX_S)
        return sc_fail(c, SC_E_USAGE, "a disappearing timer is at most %u seconds",
                       (unsigned)SC_EXPIRE_MAX_S);
    rc = conv_of(c, to, to_group, gid_hex, &conv);
    if (rc != SC_OK)
        return rc;
    dm.flags = SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_EXPIRATION_TIMER_UPDATE;
    dm.expire_timer = seconds;
    rc = sc_send_data(c, to, to_group, &dm, NULL, NULL, true, &ts, NULL);
    if (ts == 0)
        return rc; /* refused before anything was queued */
    /* queued (sent, or sent by a later flush): the change holds here */
    lrc = sc_db_begin(c);
    if (lrc == SC_OK) {
        lrc = sc_conv_timer_set(c, kind, conv, seconds, ts, NULL);
        if (lrc == SC_OK)
            lrc = timer_row(c, kind, conv, true, c->username, c->device_id, ts, 0, seconds, false,
                            NULL);
        if (lrc == SC_OK)
            lrc = sc_db_commit(c);
        else
            sc_db_rollback(c);
    }
    if (timestamp_out)
        *timestamp_out = ts;
    return lrc != SC_OK ? lrc : rc;
}

/* ------------------------------------------------------------ link sync */

int sc_expire_ls_contact_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Contact *k)
{
    return sc_conv_timer_get(c, "contact", k->name, &k->expire_timer, NULL);
}

int sc_expire_ls_group_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Group *g)
{
    char hex[33];

    if (g->id.len != SC_GROUP_ID_BYTES)
        return SC_OK;
    sc_hex(g->id.data, SC_GROUP_ID_BYTES, hex);
    return sc_conv_timer_get(c, "group", hex, &g->expire_timer, NULL);
}

/* The synced timer counts as the oldest possible change (timestamp 1):
 * it fills a conversation never set here, and every real change wins. */
int sc_expire_ls_contact_apply(sc_client *c,
                               const Sotto__Content__SyncMessage__LinkSync__Contact *k)
{
    if (k->expire_timer == 0 || k->expire_timer > SC_EXPIRE_MAX_S || !sc_username_valid(k->name))
        return SC_OK;
    return sc_conv_timer_set(c, "contact", k->name, k->expire_timer, 1, NULL);
}

int sc_expire_ls_group_apply(sc_client *c, const Sotto__Content__SyncMessage__LinkSync__Group *g)
{
    char hex[33];

    if (g->expire_timer == 0 || g->expire_timer > SC_EXPIRE_MAX_S || g->id.len != SC_GROUP_ID_BYTES)
        return SC_OK;
    sc_hex(g->id.data, SC_GROUP_ID_BYTES, hex);
    return sc_conv_timer_set(c, "group", hex, g->expire_timer, 1, NULL);
}
