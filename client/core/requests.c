/*
 * client/core/requests.c -- message requests and blocking (issue 11,
 * everyday.h; docs/protocol.md "Message requests and blocking").
 *
 * A conversation (client_conversations.accepted) is accepted when we write
 * in it (sc_requests_on_send, also a Sent copy from another device of
 * ours), when the user accepts it, when it came by link sync or a backup as
 * accepted, or -- a group -- when we created it, changed it, or the member
 * who added us is an accepted contact. What arrives in a conversation that
 * is not accepted is stored with request = 1: no receipts are sent for it
 * (receipts.c) and no profile key goes to it (profile.c) until the user
 * answers: accept, delete (the rows are wiped) or block.
 *
 * Blocked accounts (client_blocked): their content is dropped on arrival
 * before anything is stored (sc_requests_screen) and we do not write to
 * them. The whole block list goes to our other devices on every change
 * (SyncMessage.blocked; the newest Content.timestamp wins, kept in
 * client_config "blocked_sync_ts") and in link sync; an answered request
 * goes as SyncMessage.message_request_response.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "everyday.h"

#define BLOCKED_SYNC_TS "blocked_sync_ts"
#define MAX_BLOCKED 10000 /* names in one synced block list */
#define EXCERPT_BYTES 80

typedef Sotto__Content__SyncMessage__MessageRequestResponse ReqResp;

static bool is_self(const sc_client *c, const char *name)
{
    return c->username && strcmp(c->username, name) == 0;
}

int sc_requests_accept_conv(sc_client *c, const char *conv_kind, const char *conv)
{
    int rc = sc_conv_set_accepted(c, conv_kind, conv, true);

    if (rc == SC_OK)
        rc = sc_msg_clear_requests(c, conv_kind, conv);
    return rc;
}

int sc_requests_on_send(sc_client *c, const char *conv_kind, const char *conv)
{
    bool blocked = false;
    int rc;

    if (strcmp(conv_kind, "contact") == 0) {
        if (is_self(c, conv))
            return SC_OK;
        rc = sc_blocked_is(c, conv, &blocked);
        if (rc != SC_OK)
            return rc;
        if (blocked)
            return sc_fail(c, SC_E_USAGE, "%s is blocked: unblock first (sotto unblock %s)", conv,
                           conv);
    }
    return sc_requests_accept_conv(c, conv_kind, conv);
}

int sc_requests_screen(sc_client *c, const char *src, const Sotto__Content__Content *ct, bool *drop)
{
    (void)ct;
    *drop = false;
    if (is_self(c, src))
        return SC_OK;
    return sc_blocked_is(c, src, drop);
}

int sc_requests_is_request(sc_client *c, const char *conv_kind, const char *conv, bool *request)
{
    bool accepted = false;
    int rc;

    *request = false;
    if (strcmp(conv_kind, "contact") == 0 && is_self(c, conv))
        return SC_OK;
    rc = sc_conv_accepted(c, conv_kind, conv, &accepted);
    if (rc == SC_OK)
        *request = !accepted;
    return rc;
}

int sc_requests_group_joined(sc_client *c, const char *gid_hex, const char *adder)
{
    bool accepted = is_self(c, adder);
    int rc = SC_OK;

    if (!accepted)
        rc = sc_conv_accepted(c, "contact", adder, &accepted);
    if (rc == SC_OK && accepted)
        rc = sc_requests_accept_conv(c, "group", gid_hex);
    return rc;
}

/* ------------------------------------------------------------ wiping */

/* Wipes every row of a conversation (a deleted or blocked request);
 * *n (may be NULL) counts them. Inside the caller's transaction; the WAL
 * is scrubbed afterwards by whoever commits (c->scrub_due). */
static int wipe_conv(sc_client *c, const char *conv_kind, const char *conv, size_t *n)
{
    int64_t *ids = NULL;
    size_t k = 0;
    int rc = sc_msg_conv_ids(c, conv_kind, conv, &ids, &k);

    for (size_t i = 0; rc == SC_OK && i < k; i++)
        rc = sc_wipe_message(c, ids[i], false);
    free(ids);
    if (rc == SC_OK && k > 0)
        c->scrub_due = true;
    if (n)
        *n = rc == SC_OK ? k : 0;
    return rc;
}

/* Removes a pending request of conversation (kind, conv): its rows are
 * wiped unless it is accepted. */
static int drop_request(sc_client *c, const char *conv_kind, const char *conv, size_t *n)
{
    bool accepted = false;
    int rc = sc_conv_accepted(c, conv_kind, conv, &accepted);

    if (n)
        *n = 0;
    if (rc != SC_OK || accepted)
        return rc;
    return wipe_conv(c, conv_kind, conv, n);
}

/* ------------------------------------------------------------ syncs */

/* Queues a SyncMessage for our other devices (flushed by the caller). */
static int queue_sync(sc_client *c, Sotto__Content__SyncMessage *sync)
{
    Sotto__Content__Content content = SOTTO__CONTENT__CONTENT__INIT;

    content.timestamp = sc_next_timestamp(c);
    content.sync = sync;
    return sc_enqueue_content(c, c->username, &content, 0);
}

static int queue_response(sc_client *c, const char *conv_kind, const char *conv, int type)
{
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    ReqResp r = SOTTO__CONTENT__SYNC_MESSAGE__MESSAGE_REQUEST_RESPONSE__INIT;
    uint8_t gid[SC_GROUP_ID_BYTES];
    size_t bl = 0;

    if (strcmp(conv_kind, "group") == 0) {
        if (sodium_hex2bin(gid, sizeof gid, conv, strlen(conv), NULL, &bl, NULL) != 0 ||
            bl != sizeof gid)
            return sc_fail(c, SC_E_INTERNAL, "bad group id %s", conv);
        r.group_id.data = gid;
        r.group_id.len = sizeof gid;
    } else {
        r.thread = (char *)conv;
    }
    r.type = type;
    sync.message_request_response = &r;
    return queue_sync(c, &sync);
}

/* The whole block list to our other devices; its timestamp is kept so
 * that an older list from another device does not replace it. */
static int queue_blocked(sc_client *c)
{
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__Blocked b = SOTTO__CONTENT__SYNC_MESSAGE__BLOCKED__INIT;
    Sotto__Content__Content content = SOTTO__CONTENT__CONTENT__INIT;
    char **names = NULL;
    size_t n = 0;
    int rc = sc_blocked_list(c, &names, NULL, &n);

    if (rc != SC_OK)
        return rc;
    b.names = names;
    b.n_names = n;
    sync.blocked = &b;
    content.timestamp = sc_next_timestamp(c);
    content.sync = &sync;
    rc = sc_cfg_set_u64(c, BLOCKED_SYNC_TS, content.timestamp);
    if (rc == SC_OK)
        rc = sc_enqueue_content(c, c->username, &content, 0);
    sc_strv_free(names, n);
    return rc;
}

static bool in_names(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

int sc_requests_sync_blocked(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                             pending_emit *pe)
{
    const Sotto__Content__SyncMessage__Blocked *b = ct->sync ? ct->sync->blocked : NULL;
    uint64_t held = 0;
    char **old = NULL;
    size_t nold = 0;
    int rc;

    (void)e, (void)pe;
    if (b == NULL || b->n_names > MAX_BLOCKED)
        return SC_OK;
    for (size_t i = 0; i < b->n_names; i++)
        if (!sc_username_valid(b->names[i]) || is_self(c, b->names[i]))
            return SC_OK; /* not a list we can apply */
    rc = sc_cfg_get_u64(c, BLOCKED_SYNC_TS, &held);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    if (rc == SC_OK && ct->timestamp <= held)
        return SC_OK; /* an older list (or this one again) */
    rc = sc_blocked_list(c, &old, NULL, &nold);
    for (size_t i = 0; rc == SC_OK && i < nold; i++)
        if (!in_names(b->names, b->n_names, old[i]))
            rc = sc_blocked_remove(c, old[i], NULL);
    for (size_t i = 0; rc == SC_OK && i < b->n_names; i++) {
        bool added = false;
        rc = sc_blocked_add(c, b->names[i], ct->timestamp, &added);
        if (rc == SC_OK)
            rc = sc_contact_touch(c, b->names[i], 0);
        if (rc == SC_OK && added)
            rc = drop_request(c, "contact", b->names[i], NULL);
    }
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, BLOCKED_SYNC_TS, ct->timestamp);
    sc_strv_free(old, nold);
    return rc;
}

int sc_requests_sync_response(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                              pending_emit *pe)
{
    const ReqResp *r = ct->sync ? ct->sync->message_request_response : NULL;
    char gid_hex[2 * SC_GROUP_ID_BYTES + 1];
    const char *kind, *conv;

    (void)e, (void)pe;
    if (r == NULL)
        return SC_OK;
    if (r->group_id.len == SC_GROUP_ID_BYTES) {
        sc_hex(r->group_id.data, SC_GROUP_ID_BYTES, gid_hex);
        kind = "group";
        conv = gid_hex;
    } else if (r->group_id.len == 0 && sc_username_valid(r->thread) && !is_self(c, r->thread)) {
        kind = "contact";
        conv = r->thread;
    } else {
        return SC_OK;
    }
    switch (r->type) {
    case SOTTO__CONTENT__SYNC_MESSAGE__MESSAGE_REQUEST_RESPONSE__TYPE__ACCEPT:
        return sc_requests_accept_conv(c, kind, conv);
    case SOTTO__CONTENT__SYNC_MESSAGE__MESSAGE_REQUEST_RESPONSE__TYPE__DELETE:
        return drop_request(c, kind, conv, NULL);
    case SOTTO__CONTENT__SYNC_MESSAGE__MESSAGE_REQUEST_RESPONSE__TYPE__BLOCK: {
        int rc = SC_OK;
        if (strcmp(kind, "contact") == 0) {
            rc = sc_blocked_add(c, conv, ct->timestamp, NULL);
            if (rc == SC_OK)
                rc = sc_contact_touch(c, conv, 0);
        }
        return rc == SC_OK ? drop_request(c, kind, conv, NULL) : rc;
    }
    default:
        return SC_OK;
    }
}

/* ------------------------------------------------------------ link sync */

int sc_requests_ls_contact_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Contact *k)
{
    bool accepted = false, blocked = false;
    int rc = sc_conv_accepted(c, "contact", k->name, &accepted);

    if (rc == SC_OK)
        rc = sc_blocked_is(c, k->name, &blocked);
    k->accepted = accepted;
    k->blocked = blocked;
    return rc;
}

int sc_requests_ls_contact_apply(sc_client *c,
                                 const Sotto__Content__SyncMessage__LinkSync__Contact *k)
{
    int rc = SC_OK;

    if (!sc_username_valid(k->name) || is_self(c, k->name))
        return SC_OK;
    if (k->accepted)
        rc = sc_conv_set_accepted(c, "contact", k->name, true);
    if (rc == SC_OK && k->blocked)
        rc = sc_blocked_add(c, k->name, sc_now_ms(), NULL);
    return rc;
}

int sc_requests_ls_group_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Group *g)
{
    char hex[2 * SC_GROUP_ID_BYTES + 1];
    bool accepted = false;
    int rc;

    if (g->id.len != SC_GROUP_ID_BYTES)
        return SC_OK;
    sc_hex(g->id.data, SC_GROUP_ID_BYTES, hex);
    rc = sc_conv_accepted(c, "group", hex, &accepted);
    g->accepted = accepted;
    return rc;
}

int sc_requests_ls_group_apply(sc_client *c, const Sotto__Content__SyncMessage__LinkSync__Group *g)
{
    char hex[2 * SC_GROUP_ID_BYTES + 1];

    if (g->id.len != SC_GROUP_ID_BYTES || !g->accepted)
        return SC_OK;
    sc_hex(g->id.data, SC_GROUP_ID_BYTES, hex);
    return sc_conv_set_accepted(c, "group", hex, true);
}

/* ------------------------------------------------------------ public API */

/* (conv, is_group) as stored: a valid contact name, or a group's id hex. */
static int resolve(sc_client *c, const char *conv, bool is_group, char out[33], const char **key)
{
    uint8_t gid[SC_GROUP_ID_BYTES];
    int rc;

    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (is_group) {
        rc = sc_group_resolve(c, conv, gid);
        if (rc != SC_OK)
            return rc;
        sc_hex(gid, sizeof gid, out);
        *key = out;
        return SC_OK;
    }
    if (!sc_username_valid(conv))
        return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", conv);
    if (is_self(c, conv))
        return sc_fail(c, SC_E_USAGE, "%s is this account", conv);
    *key = conv;
    return SC_OK;
}

/* request delete of a contact: there must be something to delete -- a
 * contact, or a conversation with rows -- so that a mistyped name is an
 * error, not a silent no-op */
static int contact_conv_exists(sc_client *c, const char *name)
{
    bool known = false;
    sc_msg *rows = NULL;
    size_t n = 0;
    int rc = sc_contact_known(c, name, &known);

    if (rc == SC_OK && !known) {
        rc = sc_msg_history(c, "contact", name, 1, &rows, &n);
        sc_msg_list_free(rows, n);
        if (rc == SC_OK && n == 0)
            rc = sc_fail(c, SC_E_NOT_FOUND, "no conversation with %s", name);
    }
    return rc;
}

/* Commits the caller's transaction (rolls back on rc != SC_OK), then
 * scrubs the WAL when rows were wiped and sends the syncs queued. A sync
 * that cannot go now stays queued for the next connection. */
static int finish(sc_client *c, int rc)
{
    if (rc == SC_OK)
        rc = sc_db_commit(c);
    else
        sc_db_rollback(c);
    if (c->scrub_due) {
        c->scrub_due = false;
        if (rc == SC_OK)
            rc = sc_store_scrub(c);
        else
            (void)sc_store_scrub(c);
    }
    if (rc == SC_OK)
        (void)sc_flush(c, NULL);
    return rc;
}

int sc_accept(sc_client *c, const char *conv, bool is_group)
{
    char hex[33];
    const char *key = NULL;
    int rc = resolve(c, conv, is_group, hex, &key);

    /* a contact may be accepted before it ever wrote (in advance) */
    if (rc != SC_OK)
        return rc;
    if ((rc = sc_db_begin(c)) != SC_OK)
        return rc;
    rc = sc_requests_accept_conv(c, is_group ? "group" : "contact", key);
    if (rc == SC_OK)
        rc = queue_response(c, is_group ? "group" : "contact", key,
                            SOTTO__CONTENT__SYNC_MESSAGE__MESSAGE_REQUEST_RESPONSE__TYPE__ACCEPT);
    return finish(c, rc);
}

int sc_request_delete(sc_client *c, const char *conv, bool is_group, size_t *wiped)
{
    char hex[33];
    const char *key = NULL;
    const char *kind = is_group ? "group" : "contact";
    bool accepted = false;
    int rc = resolve(c, conv, is_group, hex, &key);

    if (wiped)
        *wiped = 0;
    if (rc == SC_OK && !is_group)
        rc = contact_conv_exists(c, key);
    if (rc != SC_OK)
        return rc;
    if ((rc = sc_db_begin(c)) != SC_OK)
        return rc;
    rc = sc_conv_accepted(c, kind, key, &accepted);
    if (rc == SC_OK && accepted)
        rc = sc_fail(c, SC_E_STATE,
                     "the conversation with %s is accepted, not a message request: nothing"
                     " deleted",
                     conv);
    if (rc == SC_OK)
        rc = wipe_conv(c, kind, key, wiped);
    if (rc == SC_OK)
        rc = queue_response(c, kind, key,
                            SOTTO__CONTENT__SYNC_MESSAGE__MESSAGE_REQUEST_RESPONSE__TYPE__DELETE);
    return finish(c, rc);
}

static int check_names(sc_client *c, const char *const *names, size_t n)
{
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (n == 0)
        return sc_fail(c, SC_E_USAGE, "no name given");
    for (size_t i = 0; i < n; i++) {
        if (!sc_username_valid(names[i]))
            return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", names[i]);
        if (is_self(c, names[i]))
            return sc_fail(c, SC_E_USAGE, "%s is this account: it cannot be blocked", names[i]);
    }
    return SC_OK;
}

int sc_block(sc_client *c, const char *const *names, size_t n, size_t *changed)
{
    size_t count = 0;
    int rc = check_names(c, names, n);

    if (changed)
        *changed = 0;
    if (rc != SC_OK)
        return rc;
    if ((rc = sc_db_begin(c)) != SC_OK)
        return rc;
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        bool added = false, accepted = true;
        size_t wiped = 0;
        rc = sc_blocked_add(c, names[i], sc_now_ms(), &added);
        if (rc == SC_OK)
            rc = sc_contact_touch(c, names[i], 0);
        if (rc == SC_OK)
            rc = sc_conv_accepted(c, "contact", names[i], &accepted);
        /* blocking answers a pending request: it goes */
        if (rc == SC_OK && !accepted)
            rc = wipe_conv(c, "contact", names[i], &wiped);
        if (rc == SC_OK && wiped > 0)
            rc =
                queue_response(c, "contact", names[i],
                               SOTTO__CONTENT__SYNC_MESSAGE__MESSAGE_REQUEST_RESPONSE__TYPE__BLOCK);
        count += added;
    }
    if (rc == SC_OK)
        rc = queue_blocked(c);
    /* issue 12: whoever we block may hold our profile key, hence our
     * delivery token (sealed sends): a new key cuts them off. Marked due
     * in this transaction (profile.c's "profile_rotate_due"), so that a
     * rotation that cannot finish now is retried by the tick */
    if (rc == SC_OK && count > 0)
        rc = sc_cfg_set_u64(c, "profile_rotate_due", 1);
    rc = finish(c, rc);
    if (rc == SC_OK && count > 0) {
        /* the block stands whatever happens here; a failure stays due
         * (the caller may ask sc_profile_rotate_due) */
        (void)sc_profile_rotate_key(c, NULL);
    }
    if (rc == SC_OK && changed)
        *changed = count;
    return rc;
}

int sc_unblock(sc_client *c, const char *const *names, size_t n, size_t *changed)
{
    size_t count = 0;
    int rc = check_names(c, names, n);

    if (changed)
        *changed = 0;
    if (rc != SC_OK)
        return rc;
    if ((rc = sc_db_begin(c)) != SC_OK)
        return rc;
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        bool removed = false;
        rc = sc_blocked_remove(c, names[i], &removed);
        count += removed;
    }
    if (rc == SC_OK)
        rc = queue_blocked(c);
    rc = finish(c, rc);
    if (rc == SC_OK && changed)
        *changed = count;
    return rc;
}

int sc_blocked(sc_client *c, void (*cb)(void *ud, const char *name, uint64_t blocked_ms), void *ud)
{
    char **names = NULL;
    uint64_t *at = NULL;
    size_t n = 0;
    int rc = sc_blocked_list(c, &names, &at, &n);

    for (size_t i = 0; rc == SC_OK && i < n; i++)
        cb(ud, names[i], at[i]);
    sc_strv_free(names, n);
    free(at);
    return rc;
}

int sc_contact_request_state(sc_client *c, const char *name, bool *accepted, bool *blocked)
{
    int rc;

    *accepted = *blocked = false;
    if (is_self(c, name)) {
        *accepted = true;
        return SC_OK;
    }
    rc = sc_conv_accepted(c, "contact", name, accepted);
    if (rc == SC_OK)
        rc = sc_blocked_is(c, name, blocked);
    return rc;
}

int sc_requests(sc_client *c, void (*cb)(void *ud, const sc_request_info *ri), void *ud)
{
    sc_request_row *v = NULL;
    size_t n = 0;
    int rc = sc_request_rows(c, &v, &n);

    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        sc_request_info ri;
        char excerpt[EXCERPT_BYTES + 1];
        char *gname = NULL;
        size_t len = strlen(v[i].first_body);
        size_t cut = sc_utf8_cut(v[i].first_body, len, EXCERPT_BYTES);

        memcpy(excerpt, v[i].first_body, cut);
        excerpt[cut] = '\0';
        memset(&ri, 0, sizeof ri);
        ri.conv_kind = v[i].conv_kind;
        ri.conv = v[i].conv;
        ri.count = v[i].count;
        ri.first_timestamp = v[i].first_ts;
        ri.last_timestamp = v[i].last_ts;
        ri.excerpt = excerpt;
        if (strcmp(v[i].conv_kind, "group") == 0) {
            uint8_t gid[SC_GROUP_ID_BYTES];
            size_t bl = 0;
            char **m = NULL;
            size_t nm = 0;
            if (sodium_hex2bin(gid, sizeof gid, v[i].conv, strlen(v[i].conv), NULL, &bl, NULL) ==
                    0 &&
                bl == sizeof gid && sc_group_members(c, gid, &m, &nm, &gname, NULL) == SC_OK)
                sc_strv_free(m, nm);
            ri.group_name = gname;
        }
        cb(ud, &ri);
        sodium_memzero(excerpt, sizeof excerpt);
        free(gname);
    }
    sc_request_rows_free(v, n);
    return rc;
}
