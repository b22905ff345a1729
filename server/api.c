/*
 * server/api.c -- the WebSocket API: frame decoding, the handler table and
 * the handlers (docs/api.md is the contract; proto/api.proto the schema).
 *
 * Design: every ClientFrame is decoded with protobuf-c and dispatched
 * through g_handlers, a table of {op, needs login, handler}. A handler
 * answers exactly once through answer()/answer_status(), either at once
 * (reads are synchronous indexed lookups) or from the completion of a store
 * write: writes are submitted to the store's group-commit writer and the
 * answer is sent from the `done` callback, so the event loop never waits
 * for a disk and a sender's ack always follows the durable commit. Async
 * contexts hold a reference to the connection; if the socket is gone when
 * the completion runs, the answer is dropped.
 *
 * Device records carry `added_by` and `add_signature` (the adding device's
 * Ed25519 signature over the new device's keys, docs/api.md section 4) so
 * that device lists and bundles let peers check who added each device.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.pb-c.h"
#include "kt.h"
#include "log.h"
#include "sealed.h"
#include "sottod.h"
#include "sotto/account.h"
#include "sotto/device_list.h"
#include "sotto/keys.h"
#include "tls.h"

typedef Sotto__Api__ClientFrame ClientFrame;
typedef Sotto__Api__ServerFrame ServerFrame;

/* The signed statements' bytes are built by libsotto (sotto/account.h). */
#define AUTH_PURPOSE_REGISTER SOTTO_AUTH_PURPOSE_REGISTER
#define AUTH_PURPOSE_LOGIN SOTTO_AUTH_PURPOSE_LOGIN
_Static_assert(SOTTOD_EXPORTER_BYTES == SOTTO_AUTH_EXPORTER_BYTES, "exporter size");
_Static_assert(SOTTOD_NONCE_BYTES == SOTTO_AUTH_NONCE_BYTES, "nonce size");
#define MAX_DEVICES_LIST SOTTOD_MAX_DEVICES

/* ---- sending frames -------------------------------------------------------- */

static int send_frame(sottod_conn *c, const ServerFrame *f)
{
    size_t len = sotto__api__server_frame__get_packed_size(f);
    sottod_tx *t = sottod_tx_new(len);
    if (t == NULL)
        return -1;
    sotto__api__server_frame__pack(f, t->buf + LWS_PRE);
    return sottod_conn_send_tx(c, t);
}

/* Sends the one answer to request `id` and frees its in-flight slot. */
static void answer(sottod_conn *c, ServerFrame *f)
{
    if (c->inflight > 0)
        c->inflight--;
    if (c->wsi != NULL)
        (void)send_frame(c, f);
}

static void answer_status(sottod_conn *c, uint64_t id, Sotto__Api__Status st, const char *why)
{
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    f.id = id;
    f.status = st;
    f.error = (char *)why;
    answer(c, &f);
}

static void answer_rate_limited(sottod_conn *c, uint64_t id, uint64_t retry_ms)
{
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    f.id = id;
    f.status = SOTTO__API__STATUS__STATUS_RATE_LIMITED;
    f.error = (char *)"rate limited";
    f.retry_after_ms = retry_ms;
    c->srv->m.rate_limited_total++;
    answer(c, &f);
}

static void answer_store_error(sottod_conn *c, uint64_t id, int st)
{
    switch (st) {
    case SOTTOD_STORE_NOT_FOUND:
        answer_status(c, id, SOTTO__API__STATUS__STATUS_NOT_FOUND, "not found");
        break;
    case SOTTOD_STORE_CLOSED:
        answer_status(c, id, SOTTO__API__STATUS__STATUS_UNAVAILABLE, "server shutting down");
        break;
    case SOTTOD_STORE_INVALID:
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST, "invalid request");
        break;
    default:
        sottod_log_store_error(c->srv, "store_error", NULL, st);
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "storage error, retry later");
        break;
    }
}

void sottod_api_protocol_error(sottod_conn *c, uint64_t id, const char *why, uint16_t code)
{
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    f.id = id;
    f.status = SOTTO__API__STATUS__STATUS_PROTOCOL_ERROR;
    f.error = (char *)why;
    c->srv->m.protocol_errors_total++;
    sottod_log_user(SOTTOD_LOG_INFO, "protocol_error", "why=\"%s\"", why);
    (void)send_frame(c, &f);
    sottod_conn_close_after_tx(c, code);
}

void sottod_api_notice_prekeys_low(sottod_conn *c, uint32_t remaining)
{
    Sotto__Api__PrekeysLow low = SOTTO__API__PREKEYS_LOW__INIT;
    Sotto__Api__Notice n = SOTTO__API__NOTICE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    if (c->low_notified)
        return;
    c->low_notified = true;
    low.prekeys_remaining = remaining;
    n.kind_case = SOTTO__API__NOTICE__KIND_PREKEYS_LOW;
    n.prekeys_low = &low;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_NOTICE;
    f.notice = &n;
    (void)send_frame(c, &f);
}

void sottod_api_notice_device_removed(sottod_conn *c)
{
    Sotto__Api__DeviceRemoved dr = SOTTO__API__DEVICE_REMOVED__INIT;
    Sotto__Api__Notice n = SOTTO__API__NOTICE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    n.kind_case = SOTTO__API__NOTICE__KIND_DEVICE_REMOVED;
    n.device_removed = &dr;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_NOTICE;
    f.notice = &n;
    (void)send_frame(c, &f);
    c->authed = false;
    sottod_conn_close_after_tx(c, 4001);
}

void sottod_api_revalidate_sessions(sottod_server *srv)
{
    /* A snapshot first: closing a connection edits the registry. */
    size_t n = 0, closed = 0;
    sottod_conn **all = sottod_registry_list(srv, &n);

    for (size_t i = 0; i < n; i++) {
        sottod_conn *c = all[i];
        /* Gone, or the id now belongs to another device (a deleted
         * account's id can be reused by a new registration): compare the
         * auth key the connection logged in with. */
        sottod_device d;
        int st = sottod_store_device_get(srv->store, c->addr, &d);
        if (st == SOTTOD_STORE_NOT_FOUND ||
            (st == SOTTOD_STORE_OK &&
             sodium_memcmp(d.auth_key, c->auth_key, sizeof(d.auth_key)) != 0)) {
            sottod_registry_evict(srv, c);
            sottod_api_notice_device_removed(c);
            closed++;
        }
    }
    if (closed > 0)
        sottod_log_user(SOTTOD_LOG_INFO, "sessions_closed", "reason=device_gone count=%zu", closed);
    free(all);
}

/* ---- async request context ------------------------------------------------- */

typedef struct req {
    sottod_conn *c; /* holds a reference */
    uint64_t id;
    int64_t t0_us; /* submit time (commit latency metric) */
} req;

static req *req_new(sottod_conn *c, uint64_t id, size_t size)
{
    req *r = calloc(1, size);
    if (r == NULL)
        return NULL;
    r->c = c;
    r->id = id;
    r->t0_us = sottod_mono_us();
    sottod_conn_ref(c);
    return r;
}

static void req_free(req *r)
{
    sottod_conn_unref(r->c);
    free(r);
}

/* ---- helpers --------------------------------------------------------------- */

static bool username_ok(const char *s)
{
    return s != NULL && sottod_username_valid(s, strlen(s));
}

/* Checks a login/register signature against the connection's nonce, which
 * is consumed whatever the outcome. Returns true when valid. */
static bool check_auth_signature(sottod_conn *c, uint8_t purpose, const char *username,
                                 uint32_t device_id, const uint8_t auth_key[32],
                                 const ProtobufCBinaryData *sig)
{
    uint8_t exporter[SOTTOD_EXPORTER_BYTES];
    bool ok = false;
    bool had = c->has_nonce;
    int64_t age_ms = sottod_now_ms() - c->nonce_at;
    c->has_nonce = false;
    if (!had || age_ms < 0 || age_ms > SOTTOD_NONCE_TTL_S * 1000)
        goto out;
    if (sig->len != crypto_sign_BYTES)
        goto out;
    if (sottod_tls_exporter(lws_get_ssl(c->wsi), exporter) != 0)
        goto out;
    ok = sotto_auth_verify(auth_key, purpose, exporter, c->nonce, username, device_id, sig->data) ==
         SOTTO_OK;
out:
    sodium_memzero(c->nonce, sizeof(c->nonce));
    sodium_memzero(exporter, sizeof(exporter));
    return ok;
}

static void auth_failed(sottod_conn *c, uint64_t id, Sotto__Api__Status st, const char *why)
{
    c->srv->m.login_failures_total++;
    answer_status(c, id, st, why);
    if (++c->auth_failures >= SOTTOD_MAX_AUTH_FAILURES)
        sottod_conn_close_after_tx(c, 1008);
}

static bool identity_key_ok(const ProtobufCBinaryData *b)
{
    sotto_public_key pk;
    return sotto_public_key_decode(&pk, b->data, b->len) == SOTTO_OK;
}

static bool registration_id_ok(uint32_t r)
{
    return r >= 1 && r <= 16380;
}

/* Marks the connection logged in as (account_id, device_id). Returns false
 * (nothing changed) when the per-device state cannot be allocated. */
static bool become_authed(sottod_conn *c, int64_t account_id, uint32_t device_id,
                          const char *username, const uint8_t auth_key[SOTTOD_AUTH_KEY_BYTES])
{
    sottod_server *srv = c->srv;
    sottod_addr addr = {account_id, device_id};
    /* Rate-limit buckets belong to the device, not to the connection, so
     * that logging in again does not refill them. */
    sottod_devstate *dev = sottod_devstate_get(srv, addr);
    if (dev == NULL)
        return false;
    c->dev = dev;
    memcpy(c->auth_key, auth_key, sizeof(c->auth_key));
    sottod_api_sealed_conn_release(c); /* a sealed sender's no longer */
    c->authed = true;
    c->addr = addr;
    c->queue_more = true;
    snprintf(c->username, sizeof(c->username), "%s", username);
    c->cursor = 0;
    srv->m.connections_authed++;
    sottod_registry_add(srv, c);
    lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0); /* cancel the login deadline */
    if (sottod_store_device_touch(srv->store, c->addr, NULL, NULL) != SOTTOD_STORE_OK)
        sottod_log_user(SOTTOD_LOG_WARN, "touch_failed", NULL);
    return true;
}

static uint32_t prekey_count(sottod_conn *c, sottod_addr addr)
{
    uint32_t n = 0;
    if (sottod_store_one_time_prekey_count(c->srv->store, addr, &n) != SOTTOD_STORE_OK)
        n = 0;
    return n;
}

/* ---- device lists (API v2) --------------------------------------------------- */

_Static_assert(SOTTOD_DEVICE_LIST_MAX_BYTES >= SOTTO_DEVICE_LIST_MAX_BYTES, "list size");
_Static_assert(SOTTOD_PUBLIC_KEY_BYTES == SOTTO_PUBLIC_KEY_BYTES, "key size");

/* The transition switch (config require_device_lists, docs/api.md): true
 * when every register / add / remove must carry an account key and a
 * signed device list. */
static bool lists_required(const sottod_server *srv)
{
    return strcmp(srv->cfg.require_device_lists, "yes") == 0;
}

/* Verifies `data` as the signed device list of `username` under the
 * 33-byte `account_key` with libsotto (signature first, then the canonical
 * parse). On failure answers the request (INVALID_SIGNATURE for a
 * signature or account that does not match, BAD_REQUEST for a malformed
 * list) and returns false. */
static bool list_verify(sottod_conn *c, uint64_t id, const ProtobufCBinaryData *data,
                        const uint8_t *account_key, const char *username, sotto_device_list *out)
{
    sotto_public_key pk;
    int rc;
    if (data->len == 0) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "device_list required (API v2)");
        return false;
    }
    if (sotto_public_key_decode(&pk, account_key, SOTTOD_PUBLIC_KEY_BYTES) != SOTTO_OK) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "account_key must be 33 bytes starting with 0x05");
        return false;
    }
    rc = sotto_device_list_verify(out, data->data, data->len, &pk, username);
    if (rc == SOTTO_OK)
        return true;
    if (rc == SOTTO_ERR_INVALID_SIGNATURE || rc == SOTTO_ERR_INVALID_MESSAGE)
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE,
                      "device_list does not verify under the account key");
    else if (rc == SOTTO_ERR_DEVICE_LIST_ACCOUNT)
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE,
                      "device_list is signed for another username");
    else
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "device_list is signed but not canonical");
    return false;
}

/* An answer's account_key and device_list fields from a stored record
 * (pointers into it: the record outlives the answer). */
static void account_fields(const sottod_device_list_rec *r, ProtobufCBinaryData *key,
                           ProtobufCBinaryData *list)
{
    key->data = (uint8_t *)r->account_key;
    key->len = sizeof(r->account_key);
    list->data = (uint8_t *)r->list;
    list->len = r->len;
}

/* True when entry e holds exactly these keys and registration id. */
static bool entry_is(const sotto_device_entry *e, uint32_t regid,
                     const uint8_t identity_key[SOTTOD_PUBLIC_KEY_BYTES],
                     const uint8_t auth_key[SOTTOD_AUTH_KEY_BYTES])
{
    return e->registration_id == regid &&
           sodium_memcmp(e->identity_key.bytes, identity_key, SOTTOD_PUBLIC_KEY_BYTES) == 0 &&
           sodium_memcmp(e->auth_key, auth_key, SOTTOD_AUTH_KEY_BYTES) == 0;
}

/* Checks that list `l` holds exactly the devices devs[0..n) without
 * device `removed` (0: none), with the same ids, keys and registration
 * ids, plus exactly one more device when added_id != NULL (its id goes to
 * *added_id) or none. Returns true, or false with the first difference in
 * words in why (why_cap bytes). */
static bool list_matches_devices(const sotto_device_list *l, const sottod_device *devs, size_t n,
                                 uint32_t removed, uint32_t *added_id, char *why, size_t why_cap)
{
    size_t extra = 0;
    uint32_t extra_id = 0;
    for (size_t i = 0; i < n; i++) {
        const sottod_device *d = &devs[i];
        const sotto_device_entry *e = sotto_device_list_find(l, d->device_id);
        if (d->device_id == removed) {
            if (e != NULL) {
                snprintf(why, why_cap, "device_list still lists the removed device %u",
                         d->device_id);
                return false;
            }
            continue;
        }
        if (e == NULL) {
            snprintf(why, why_cap, "device_list lacks device %u of the account", d->device_id);
            return false;
        }
        if (!entry_is(e, d->registration_id, d->identity_key, d->auth_key)) {
            snprintf(why, why_cap,
                     "device_list has other keys or registration id for device %u than the "
                     "server",
                     d->device_id);
            return false;
        }
    }
    for (size_t k = 0; k < l->n_devices; k++) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = devs[i].device_id == l->devices[k].device_id;
        if (!known) {
            extra++;
            extra_id = l->devices[k].device_id;
        }
    }
    if (added_id == NULL && extra > 0) {
        snprintf(why, why_cap, "device_list lists device %u which the account does not have",
                 extra_id);
        return false;
    }
    if (added_id != NULL && extra != 1) {
        snprintf(why, why_cap, "device_list must add exactly one device (it adds %zu)", extra);
        return false;
    }
    if (added_id != NULL)
        *added_id = extra_id;
    return true;
}

/* Fills a store record from a verified list's bytes. */
static void list_rec_fill(sottod_device_list_rec *rec, const uint8_t *account_key,
                          const ProtobufCBinaryData *data, uint64_t version)
{
    memset(rec, 0, sizeof(*rec));
    rec->present = true;
    memcpy(rec->account_key, account_key, SOTTOD_PUBLIC_KEY_BYTES);
    rec->version = version;
    rec->len = data->len;
    memcpy(rec->list, data->data, data->len);
}

/* Refuses (DEVICE_LIST_STALE) a version that is not higher than held's. */
static bool version_higher(sottod_conn *c, uint64_t id, const sotto_device_list *l,
                           const sottod_device_list_rec *held)
{
    char why[160];
    if (l->version > held->version)
        return true;
    snprintf(why, sizeof(why), "device_list version %llu is not higher than the server's %llu",
             (unsigned long long)l->version, (unsigned long long)held->version);
    answer_status(c, id, SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE, why);
    return false;
}

/* Sends Notice{device_list_changed} with `list` to every logged-in
 * connection of account_id (the one that made the change too). */
static void notify_list_changed(sottod_server *srv, int64_t account_id,
                                const sottod_device_list_rec *list)
{
    size_t n = 0, sent = 0;
    sottod_conn **all = sottod_registry_list(srv, &n);
    Sotto__Api__DeviceListChanged dlc = SOTTO__API__DEVICE_LIST_CHANGED__INIT;
    Sotto__Api__Notice no = SOTTO__API__NOTICE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    dlc.version = list->version;
    dlc.device_list.data = (uint8_t *)list->list;
    dlc.device_list.len = list->len;
    no.kind_case = SOTTO__API__NOTICE__KIND_DEVICE_LIST_CHANGED;
    no.device_list_changed = &dlc;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_NOTICE;
    f.notice = &no;
    for (size_t i = 0; i < n; i++) {
        sottod_conn *o = all[i];
        if (o->addr.account_id != account_id || o->wsi == NULL || !o->authed)
            continue;
        (void)send_frame(o, &f);
        sent++;
    }
    free(all);
    sottod_log_user(SOTTOD_LOG_INFO, "device_list_changed", "version=%llu notified=%zu",
                    (unsigned long long)list->version, sent);
}

/* ---- challenge, ping -------------------------------------------------------- */

static void h_challenge(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    Sotto__Api__ChallengeResponse r = SOTTO__API__CHALLENGE_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    if (c->authed) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_ALREADY_AUTHENTICATED, "already logged in");
        return;
    }
    randombytes_buf(c->nonce, sizeof(c->nonce));
    c->has_nonce = true;
    c->nonce_at = sottod_now_ms();
    r.nonce.data = c->nonce;
    r.nonce.len = sizeof(c->nonce);
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_CHALLENGE;
    f.challenge = &r;
    answer(c, &f);
}

static void h_ping(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    Sotto__Api__PingResponse r = SOTTO__API__PING_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    r.server_time_ms = (uint64_t)sottod_now_ms();
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_PING;
    f.ping = &r;
    answer(c, &f);
}

/* ---- register ---------------------------------------------------------------- */

typedef struct register_req {
    req r;
    uint8_t auth_key[SOTTOD_AUTH_KEY_BYTES];
    char username[SOTTOD_USERNAME_MAX + 1];
    bool recover;
    int64_t account_id; /* recover: the account re-taken */
    uint32_t device_id; /* 1, or recover: the id in the list */
} register_req;

/* After a recovery committed: every connection of the account's old
 * devices is closed (device_removed), whatever its device id. */
static void evict_account(sottod_server *srv, int64_t account_id)
{
    size_t n = 0, closed = 0;
    sottod_conn **all = sottod_registry_list(srv, &n);
    for (size_t i = 0; i < n; i++) {
        if (all[i]->addr.account_id != account_id)
            continue;
        sottod_registry_evict(srv, all[i]);
        sottod_api_notice_device_removed(all[i]);
        closed++;
    }
    free(all);
    if (closed > 0)
        sottod_log_user(SOTTOD_LOG_INFO, "sessions_closed", "reason=recover count=%zu", closed);
}

static void register_done(void *arg, const sottod_store_result *res)
{
    register_req *rr = arg;
    sottod_conn *c = rr->r.c;
    int64_t account_id = rr->recover ? rr->account_id : res->u.account_create.account_id;
    sottod_metrics_commit(c->srv, rr->r.t0_us);
    if (res->status == SOTTOD_STORE_OK)
        sottod_kt_account_changed(c->srv, rr->username); /* key transparency */
    if (rr->recover && res->status == SOTTOD_STORE_OK) {
        /* Done whether or not the recovering connection is still there. */
        evict_account(c->srv, account_id);
        sottod_acache_forget(&c->srv->acache, account_id);
        sottod_log_user(SOTTOD_LOG_INFO, "recover_ok", "dev=%u deleted=%u", rr->device_id,
                        res->u.list_change.deleted);
    }
    if (c->wsi == NULL)
        goto out;
    if (res->status == SOTTOD_STORE_EXISTS && !rr->recover) {
        answer_status(c, rr->r.id, SOTTO__API__STATUS__STATUS_USERNAME_TAKEN, "username taken");
    } else if (res->status == SOTTOD_STORE_BAD_INVITE) {
        answer_status(c, rr->r.id, SOTTO__API__STATUS__STATUS_INVITE_REQUIRED,
                      "invite token unknown, used or expired");
    } else if (res->status == SOTTOD_STORE_CONFLICT) {
        answer_status(c, rr->r.id, SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE,
                      "the account's device list changed meanwhile");
    } else if (res->status != SOTTOD_STORE_OK) {
        answer_store_error(c, rr->r.id, res->status);
    } else if (c->authed) {
        /* A second register raced the first on this connection. */
        answer_status(c, rr->r.id, SOTTO__API__STATUS__STATUS_ALREADY_AUTHENTICATED,
                      "already logged in");
    } else if (!become_authed(c, account_id, rr->device_id, rr->username, rr->auth_key)) {
        answer_status(c, rr->r.id, SOTTO__API__STATUS__STATUS_INTERNAL,
                      "out of memory; log in again");
    } else {
        Sotto__Api__RegisterResponse rsp = SOTTO__API__REGISTER_RESPONSE__INIT;
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        c->srv->m.registrations_total++;
        /* A deleted account's id may be reused by this registration (an
         * admin delete this server did not hear of): no cached entry may
         * keep pointing at it. Registrations are rare and rate limited. */
        sottod_acache_clear(&c->srv->acache);
        if (!rr->recover)
            sottod_log_user(SOTTOD_LOG_INFO, "register_ok", NULL);
        rsp.device_id = rr->device_id;
        rsp.sealed_trust_root.data = (uint8_t *)sottod_sealed_root(c->srv); /* v5 */
        rsp.sealed_trust_root.len = rsp.sealed_trust_root.data ? SOTTOD_SEALED_ROOT_BYTES : 0;
        f.id = rr->r.id;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_REGISTER;
        f.register_ = &rsp;
        answer(c, &f);
    }
out:
    req_free(&rr->r);
}

/* The v2 part of a register: verifies device_list (under the request's
 * account key for a new account, under the stored one for a recovery),
 * which must list exactly one device with the request's keys. Fills
 * *rec, *device_id and, for a recovery, *account_id and *prev_version.
 * On failure answers and returns false. */
static bool register_list_check(sottod_conn *c, uint64_t id, const Sotto__Api__RegisterRequest *rq,
                                sottod_device_list_rec *rec, uint32_t *device_id,
                                int64_t *account_id, uint64_t *prev_version)
{
    sottod_server *srv = c->srv;
    sotto_device_list *l = malloc(sizeof(*l));
    sottod_device_list_rec *held = NULL;
    bool ok = false;
    if (l == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return false;
    }
    if (rq->account_key.len != SOTTOD_PUBLIC_KEY_BYTES) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "account_key (33 bytes) and device_list required (API v2)");
        goto out;
    }
    if (rq->recover) {
        sottod_account acct;
        int st = sottod_store_account_lookup(srv->store, rq->username, &acct);
        if (st == SOTTOD_STORE_NOT_FOUND) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_NOT_FOUND, "no such account");
            goto out;
        }
        held = malloc(sizeof(*held));
        if (held == NULL) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
            goto out;
        }
        if (st == SOTTOD_STORE_OK)
            st = sottod_store_device_list_get(srv->store, acct.account_id, held);
        if (st != SOTTOD_STORE_OK) {
            answer_store_error(c, id, st);
            goto out;
        }
        if (!held->present) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_FORBIDDEN,
                          "the account has no account key: it cannot be recovered");
            goto out;
        }
        /* A new account key is a new identity, never a recovery. */
        if (sodium_memcmp(rq->account_key.data, held->account_key, SOTTOD_PUBLIC_KEY_BYTES) != 0) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE,
                          "account_key is not the account's key");
            goto out;
        }
        if (!list_verify(c, id, &rq->device_list, held->account_key, rq->username, l) ||
            !version_higher(c, id, l, held))
            goto out;
        *account_id = acct.account_id;
        *prev_version = held->version;
    } else if (!list_verify(c, id, &rq->device_list, rq->account_key.data, rq->username, l)) {
        goto out;
    }
    if (l->n_devices != 1 || (!rq->recover && l->devices[0].device_id != 1)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      rq->recover ? "device_list must list exactly one device: this one"
                                  : "device_list must list exactly device 1: this one");
        goto out;
    }
    if (!entry_is(&l->devices[0], rq->registration_id, rq->identity_key.data, rq->auth_key.data)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "device_list has other keys or registration id than the request");
        goto out;
    }
    *device_id = l->devices[0].device_id;
    list_rec_fill(rec, rq->account_key.data, &rq->device_list, l->version);
    ok = true;
out:
    free(held);
    free(l);
    return ok;
}

/* Registration limits (docs/operating.md): per source address, per source
 * prefix (IPv4 /24, IPv6 /48), then server-wide; a request refused by one
 * takes no token from any (so a source that is out of tokens takes none
 * from the budgets others share). Returns true
 * if allowed; otherwise answers RATE_LIMITED naming the limit, with the
 * time until its next token. */
static bool register_allowed(sottod_conn *c, uint64_t id)
{
    sottod_server *srv = c->srv;
    const sottod_config *cfg = &srv->cfg;
    int64_t now = sottod_mono_us();
    uint64_t retry = 0;
    const char *why = NULL;
    size_t max = (size_t)cfg->register_sources_max;
    /* A token is taken only if every limit allows the request: a later
     * refusal gives back the earlier ones' tokens. */
    if (c->src_known && !sottod_source_table_take(
                            &srv->reg_sources, c->src_addr_key, cfg->rate_register_source_per_min,
                            cfg->rate_register_source_burst, max, now, &retry)) {
        why = "too many registrations from this address; retry later";
    } else if (c->src_known &&
               !sottod_source_table_take(&srv->reg_prefixes, c->src_prefix_key,
                                         cfg->rate_register_prefix_per_min,
                                         cfg->rate_register_prefix_burst, max, now, &retry)) {
        why = "too many registrations from this network; retry later";
        sottod_source_table_refund(&srv->reg_sources, c->src_addr_key,
                                   cfg->rate_register_source_burst);
    } else if (!sottod_bucket_take(&srv->register_bucket, cfg->rate_register_per_min,
                                   cfg->rate_register_burst, now, &retry)) {
        why = "too many registrations on this server; retry later";
        if (c->src_known) {
            sottod_source_table_refund(&srv->reg_sources, c->src_addr_key,
                                       cfg->rate_register_source_burst);
            sottod_source_table_refund(&srv->reg_prefixes, c->src_prefix_key,
                                       cfg->rate_register_prefix_burst);
        }
    }
    if (why == NULL)
        return true;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    f.id = id;
    f.status = SOTTO__API__STATUS__STATUS_RATE_LIMITED;
    f.error = (char *)why;
    f.retry_after_ms = retry;
    srv->m.rate_limited_total++;
    answer(c, &f);
    return false;
}

static void h_register(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__RegisterRequest *rq = fr->register_;
    sottod_server *srv = c->srv;
    sottod_device_new dev;
    sottod_device_list_rec *rec = NULL;
    uint64_t prev_version = 0;
    int64_t account_id = 0;
    uint32_t device_id = 1;
    const char *invite = rq->invite;
    size_t invite_len = invite != NULL ? strlen(invite) : 0;
    bool v2 = rq->account_key.len > 0 || rq->device_list.len > 0 || rq->recover;

    if (c->authed) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_ALREADY_AUTHENTICATED, "already logged in");
        return;
    }
    if (!username_ok(rq->username)) {
        c->has_nonce = false;
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_USERNAME,
                      "username must be 3 to 32 characters of a-z, 0-9, _ and .");
        return;
    }
    if (rq->auth_key.len != crypto_sign_PUBLICKEYBYTES ||
        crypto_core_ed25519_is_valid_point(rq->auth_key.data) != 1 ||
        !identity_key_ok(&rq->identity_key) || !registration_id_ok(rq->registration_id) ||
        invite_len > SOTTOD_INVITE_MAX) {
        c->has_nonce = false;
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "auth_key (32), identity_key (33) and registration_id (1..16380) required");
        return;
    }
    if (!v2 && lists_required(srv)) {
        c->has_nonce = false;
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "account_key and device_list required (API v2)");
        return;
    }
    /* A recovery re-takes an existing account: no invite needed. */
    if (srv->invite_only && invite_len == 0 && !rq->recover) {
        c->has_nonce = false;
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVITE_REQUIRED,
                      "this server needs an invite token to register");
        return;
    }
    if (!register_allowed(c, id)) {
        c->has_nonce = false;
        return;
    }
    if (v2) {
        rec = malloc(sizeof(*rec));
        if (rec == NULL) {
            c->has_nonce = false;
            answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
            return;
        }
        if (!register_list_check(c, id, rq, rec, &device_id, &account_id, &prev_version)) {
            c->has_nonce = false;
            goto out;
        }
    }
    /* The auth signature covers the device id the device will have: 1, or
     * the id in a recovery's list. */
    if (!check_auth_signature(c, AUTH_PURPOSE_REGISTER, rq->username, device_id, rq->auth_key.data,
                              &rq->signature)) {
        auth_failed(c, id, SOTTO__API__STATUS__STATUS_UNAUTHENTICATED,
                    "no valid challenge or bad signature");
        goto out;
    }
    memset(&dev, 0, sizeof(dev));
    dev.device_id = device_id;
    dev.registration_id = rq->registration_id;
    memcpy(dev.auth_key, rq->auth_key.data, sizeof(dev.auth_key));
    memcpy(dev.identity_key, rq->identity_key.data, sizeof(dev.identity_key));
    register_req *rr = (register_req *)req_new(c, id, sizeof(*rr));
    if (rr == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(rr->username, sizeof(rr->username), "%s", rq->username);
    memcpy(rr->auth_key, rq->auth_key.data, sizeof(rr->auth_key));
    rr->recover = rq->recover;
    rr->account_id = account_id;
    rr->device_id = device_id;
    int st;
    if (rq->recover)
        st = sottod_store_account_recover(srv->store, account_id, &dev, prev_version, rec,
                                          register_done, rr);
    else
        st = sottod_store_account_create_listed(
            srv->store, rq->username,
            (srv->invite_only && invite_len > 0) ? (const uint8_t *)invite : NULL,
            (srv->invite_only && invite_len > 0) ? invite_len : 0, &dev, rec, register_done, rr);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        req_free(&rr->r);
    }
out:
    free(rec);
}

/* ---- login --------------------------------------------------------------------- */

static void h_login(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__LoginRequest *rq = fr->login;
    sottod_server *srv = c->srv;
    sottod_account acct;
    sottod_device dev;
    bool found = false;
    memset(&acct, 0, sizeof(acct));
    memset(&dev, 0, sizeof(dev));
    static const uint8_t dummy_key[32] = {0x3b, 0x6a, 0x27, 0xbc, 0xce, 0xb6, 0xa4, 0x2d,
                                          0x62, 0xa3, 0xa8, 0xd0, 0x2a, 0x6f, 0x0d, 0x73,
                                          0x65, 0x32, 0x15, 0x77, 0x1d, 0xe2, 0x43, 0xa6,
                                          0x3a, 0xc0, 0x48, 0xa1, 0x8b, 0x59, 0xda, 0x29};

    if (c->authed) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_ALREADY_AUTHENTICATED, "already logged in");
        return;
    }
    int lst = SOTTOD_STORE_NOT_FOUND;
    if (username_ok(rq->username) && rq->device_id != 0) {
        lst = sottod_store_account_lookup(srv->store, rq->username, &acct);
        if (lst == SOTTOD_STORE_OK) {
            sottod_addr a = {acct.account_id, rq->device_id};
            lst = sottod_store_device_get(srv->store, a, &dev);
            found = lst == SOTTOD_STORE_OK;
        }
    }
    if (lst != SOTTOD_STORE_OK && lst != SOTTOD_STORE_NOT_FOUND) {
        /* A storage failure is not a bad login: say so, and do not count it. */
        c->has_nonce = false;
        sottod_log_store_error(srv, "store_error", "login_lookup", lst);
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "storage error, retry later");
        return;
    }
    /* Same work and the same answer whether or not the device exists. */
    bool ok =
        check_auth_signature(c, AUTH_PURPOSE_LOGIN, username_ok(rq->username) ? rq->username : "",
                             rq->device_id, found ? dev.auth_key : dummy_key, &rq->signature);
    if (!found || !ok) {
        sottod_log_user(SOTTOD_LOG_INFO, "login_failed", "known_device=%d", found ? 1 : 0);
        auth_failed(c, id, SOTTO__API__STATUS__STATUS_UNAUTHENTICATED, "login failed");
        return;
    }
    if (!become_authed(c, acct.account_id, rq->device_id, acct.username, dev.auth_key)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    srv->m.logins_total++;
    sottod_log_user(SOTTOD_LOG_INFO, "login_ok", "dev=%u", rq->device_id);

    Sotto__Api__LoginResponse rsp = SOTTO__API__LOGIN_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    uint32_t depth = 0;
    rsp.prekeys_remaining = prekey_count(c, c->addr);
    rsp.prekeys_low = rsp.prekeys_remaining < srv->cfg.prekey_low;
    rsp.has_keys = dev.has_signed_prekey;
    if (sottod_store_queue_depth(srv->store, c->addr, &depth) == SOTTOD_STORE_OK)
        rsp.queued = depth;
    if (rsp.prekeys_low)
        c->low_notified = true; /* the response already says so */
    rsp.sealed_trust_root.data = (uint8_t *)sottod_sealed_root(srv); /* v5 */
    rsp.sealed_trust_root.len = rsp.sealed_trust_root.data ? SOTTOD_SEALED_ROOT_BYTES : 0;
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_LOGIN;
    f.login = &rsp;
    answer(c, &f);
    sottod_delivery_fill(c);
}

/* ---- devices --------------------------------------------------------------------- */

/* A device-set change in flight: the new list to announce once committed. */
typedef struct add_device_req {
    req r;
    bool has_list;
    sottod_device_list_rec list;
} add_device_req;

static void add_device_done(void *arg, const sottod_store_result *res)
{
    add_device_req *ar = arg;
    sottod_conn *c = ar->r.c;
    sottod_metrics_commit(c->srv, ar->r.t0_us);
    if (res->status == SOTTOD_STORE_OK) {
        sottod_acache_forget(&c->srv->acache, c->addr.account_id);
        if (ar->has_list)
            notify_list_changed(c->srv, c->addr.account_id, &ar->list);
        sottod_kt_account_changed(c->srv, c->username); /* key transparency */
    }
    if (c->wsi == NULL)
        goto out;
    if (res->status == SOTTOD_STORE_DEVICE_LIMIT) {
        answer_status(c, ar->r.id, SOTTO__API__STATUS__STATUS_DEVICE_LIMIT,
                      "the account has the maximum number of devices");
    } else if (res->status == SOTTOD_STORE_CONFLICT) {
        answer_status(c, ar->r.id, SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE,
                      "the account's device list changed meanwhile");
    } else if (res->status == SOTTOD_STORE_EXISTS) {
        answer_status(c, ar->r.id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "the device id in device_list is in use");
    } else if (res->status != SOTTOD_STORE_OK) {
        answer_store_error(c, ar->r.id, res->status);
    } else {
        Sotto__Api__AddDeviceResponse rsp = SOTTO__API__ADD_DEVICE_RESPONSE__INIT;
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        rsp.device_id = res->u.list_change.device_id;
        f.id = ar->r.id;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_ADD_DEVICE;
        f.add_device = &rsp;
        sottod_log_user(SOTTOD_LOG_INFO, "device_added", "dev=%u", rsp.device_id);
        answer(c, &f);
    }
out:
    req_free(&ar->r);
}

/* Reads the account's devices and list in one snapshot into *devs (malloc'd
 * SOTTOD_MAX_DEVICES entries), *n and *held (malloc'd). On failure answers
 * and returns false (nothing left allocated). */
static bool read_account_devices(sottod_conn *c, uint64_t id, sottod_device **devs, size_t *n,
                                 sottod_device_list_rec **held)
{
    *devs = calloc(MAX_DEVICES_LIST, sizeof(**devs));
    *held = malloc(sizeof(**held));
    int st = SOTTOD_STORE_NOMEM;
    if (*devs != NULL && *held != NULL)
        st = sottod_store_devices_list_with_list(c->srv->store, c->addr.account_id, *devs,
                                                 MAX_DEVICES_LIST, n, *held);
    if (st == SOTTOD_STORE_OK)
        return true;
    if (st == SOTTOD_STORE_NOMEM)
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
    else
        answer_store_error(c, id, st);
    free(*devs);
    free(*held);
    *devs = NULL;
    *held = NULL;
    return false;
}

/* The v2 checks shared by add and remove: a list is required when the
 * account has an account key or the server requires lists; it must verify
 * under the stored key with a higher version and equal the device set
 * without `removed` (0: none) plus the added device (added_id != NULL).
 * Fills ar_list (has_list false for the v1 path). Answers and returns
 * false on refusal. */
static bool change_list_check(sottod_conn *c, uint64_t id, const ProtobufCBinaryData *data,
                              const sottod_device *devs, size_t n,
                              const sottod_device_list_rec *held, uint32_t removed,
                              uint32_t *added_id, sotto_device_list *l, bool *has_list,
                              sottod_device_list_rec *out)
{
    char why[160];
    *has_list = false;
    if (!held->present) {
        if (data->len > 0) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_FORBIDDEN,
                          "the account has no account key yet: publish one with "
                          "set_device_list first");
            return false;
        }
        if (lists_required(c->srv)) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_FORBIDDEN,
                          "this server requires signed device lists: publish the account key "
                          "with set_device_list first");
            return false;
        }
        return true; /* API v1 transition path */
    }
    if (data->len == 0) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "device_list required: the account has an account key");
        return false;
    }
    if (!list_verify(c, id, data, held->account_key, c->username, l) ||
        !version_higher(c, id, l, held))
        return false;
    if (!list_matches_devices(l, devs, n, removed, added_id, why, sizeof(why))) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST, why);
        return false;
    }
    list_rec_fill(out, held->account_key, data, l->version);
    *has_list = true;
    return true;
}

static void h_add_device(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__AddDeviceRequest *rq = fr->add_device;
    sottod_server *srv = c->srv;
    sottod_device me;
    sottod_device_new dev;
    sottod_device *devs = NULL;
    sottod_device_list_rec *held = NULL;
    sotto_device_list *l = NULL;
    add_device_req *ar = NULL;
    size_t n = 0;
    uint32_t new_id = 0;

    if (rq->auth_key.len != crypto_sign_PUBLICKEYBYTES ||
        crypto_core_ed25519_is_valid_point(rq->auth_key.data) != 1 ||
        !identity_key_ok(&rq->identity_key) || !registration_id_ok(rq->registration_id) ||
        rq->signature.len != crypto_sign_BYTES) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "auth_key (32), identity_key (33), registration_id (1..16380) and "
                      "signature (64) required");
        return;
    }
    if (sottod_store_device_get(srv->store, c->addr, &me) != SOTTOD_STORE_OK) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_UNAUTHENTICATED, "device no longer exists");
        return;
    }
    if (sotto_add_device_verify(me.auth_key, c->username, rq->auth_key.data, rq->identity_key.data,
                                rq->registration_id, rq->signature.data) != SOTTO_OK) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE,
                      "add-device signature does not verify");
        return;
    }
    ar = (add_device_req *)req_new(c, id, sizeof(*ar));
    l = malloc(sizeof(*l));
    if (ar == NULL || l == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        goto out;
    }
    if (!read_account_devices(c, id, &devs, &n, &held))
        goto out;
    if (!change_list_check(c, id, &rq->device_list, devs, n, held, 0, &new_id, l, &ar->has_list,
                           &ar->list))
        goto out;
    if (ar->has_list && !entry_is(sotto_device_list_find(l, new_id), rq->registration_id,
                                  rq->identity_key.data, rq->auth_key.data)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "the device device_list adds has other keys or registration id than the "
                      "request");
        goto out;
    }
    memset(&dev, 0, sizeof(dev));
    dev.added_by = c->addr.device_id;
    memcpy(dev.add_signature, rq->signature.data, sizeof(dev.add_signature));
    dev.registration_id = rq->registration_id;
    memcpy(dev.auth_key, rq->auth_key.data, 32);
    memcpy(dev.identity_key, rq->identity_key.data, 33);
    /* v1 (no list): id 0, the store picks the lowest free id >= 2. Either
     * way the store checks that the list version is still the one read. */
    dev.device_id = ar->has_list ? new_id : 0;
    int st = sottod_store_device_add_listed(
        srv->store, c->addr.account_id, &dev, (uint32_t)srv->cfg.max_devices,
        held->present ? held->version : 0, ar->has_list ? &ar->list : NULL, add_device_done, ar);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        goto out;
    }
    ar = NULL; /* owned by the completion */
out:
    if (ar != NULL)
        req_free(&ar->r);
    free(l);
    free(devs);
    free(held);
}

static void fill_device_info(Sotto__Api__DeviceInfo *di, sottod_device *d)
{
    sotto__api__device_info__init(di);
    di->device_id = d->device_id;
    di->auth_key.data = d->auth_key;
    di->auth_key.len = sizeof(d->auth_key);
    di->created = d->created;
    di->last_seen = d->last_seen;
    di->registration_id = d->registration_id;
    di->has_keys = d->has_signed_prekey;
    di->identity_key.data = d->identity_key;
    di->identity_key.len = sizeof(d->identity_key);
    di->added_by = d->added_by;
    if (d->added_by != 0) {
        di->add_signature.data = d->add_signature;
        di->add_signature.len = sizeof(d->add_signature);
    }
}

static void h_list_devices(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    Sotto__Api__DeviceInfo infos[MAX_DEVICES_LIST];
    Sotto__Api__DeviceInfo *ptrs[MAX_DEVICES_LIST];
    sottod_device *devs = NULL;
    sottod_device_list_rec *held = NULL;
    size_t n = 0;
    if (!read_account_devices(c, id, &devs, &n, &held))
        return;
    Sotto__Api__ListDevicesResponse rsp = SOTTO__API__LIST_DEVICES_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    for (size_t i = 0; i < n; i++) {
        fill_device_info(&infos[i], &devs[i]);
        ptrs[i] = &infos[i];
    }
    rsp.n_devices = n;
    rsp.devices = ptrs;
    if (held->present) {
        account_fields(held, &rsp.account_key, &rsp.device_list);
    }
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_LIST_DEVICES;
    f.list_devices = &rsp;
    answer(c, &f);
    free(devs);
    free(held);
}

typedef struct remove_device_req {
    req r;
    sottod_addr target;
    bool has_list;
    sottod_device_list_rec list;
} remove_device_req;

/* Removals submitted and not yet committed count as done for the
 * last-device rule: two concurrent removals must not leave an account with
 * no device (then nobody could ever log in to it again). */
static size_t removals_pending(const sottod_server *srv, int64_t account_id, uint32_t device_id,
                               bool *same)
{
    size_t n = 0;
    *same = false;
    for (size_t i = 0; i < srv->n_removing; i++) {
        if (srv->removing[i].account_id != account_id)
            continue;
        n++;
        if (srv->removing[i].device_id == device_id)
            *same = true;
    }
    return n;
}

static void removal_forget(sottod_server *srv, sottod_addr a)
{
    for (size_t i = 0; i < srv->n_removing; i++) {
        if (srv->removing[i].account_id == a.account_id &&
            srv->removing[i].device_id == a.device_id) {
            srv->removing[i] = srv->removing[--srv->n_removing];
            return;
        }
    }
}

static void remove_device_done(void *arg, const sottod_store_result *res)
{
    remove_device_req *rr = arg;
    sottod_conn *c = rr->r.c;
    sottod_server *srv = c->srv;
    sottod_metrics_commit(srv, rr->r.t0_us);
    removal_forget(srv, rr->target);
    if (res->status != SOTTOD_STORE_OK) {
        if (c->wsi == NULL)
            goto out;
        if (res->status == SOTTOD_STORE_CONFLICT)
            answer_status(c, rr->r.id, SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE,
                          "the account's device list changed meanwhile");
        else
            answer_store_error(c, rr->r.id, res->status);
        goto out;
    }
    sottod_log_user(SOTTOD_LOG_INFO, "device_removed", "dev=%u", rr->target.device_id);
    sottod_acache_forget(&srv->acache, rr->target.account_id);
    sottod_kt_account_changed(srv, c->username); /* key transparency */
    if (c->wsi != NULL) {
        Sotto__Api__RemoveDeviceResponse rsp = SOTTO__API__REMOVE_DEVICE_RESPONSE__INIT;
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        f.id = rr->r.id;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_REMOVE_DEVICE;
        f.remove_device = &rsp;
        answer(c, &f);
    }
    sottod_conn *victim = sottod_registry_find(srv, rr->target);
    if (victim != NULL) {
        sottod_registry_evict(srv, victim);
        sottod_api_notice_device_removed(victim);
    }
    /* The removed device is out of the registry now: the others hear. */
    if (rr->has_list)
        notify_list_changed(srv, rr->target.account_id, &rr->list);
out:
    req_free(&rr->r);
}

static void h_remove_device(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    uint32_t target = fr->remove_device->device_id;
    sottod_device *devs = NULL;
    sottod_device_list_rec *held = NULL;
    sotto_device_list *l = NULL;
    remove_device_req *rr = NULL;
    size_t n = 0;
    bool present = false;
    if (target == 0) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST, "device_id required");
        return;
    }
    if (!read_account_devices(c, id, &devs, &n, &held))
        return;
    for (size_t i = 0; i < n; i++)
        if (devs[i].device_id == target)
            present = true;
    if (!present) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_NOT_FOUND, "no such device");
        goto out;
    }
    bool already = false;
    size_t pending = removals_pending(c->srv, c->addr.account_id, target, &already);
    if (already) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_NOT_FOUND, "no such device");
        goto out;
    }
    if (n <= 1 + pending) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_FORBIDDEN, "cannot remove the last device");
        goto out;
    }
    if (c->srv->n_removing >= sizeof(c->srv->removing) / sizeof(c->srv->removing[0])) {
        answer_rate_limited(c, id, 100);
        goto out;
    }
    rr = (remove_device_req *)req_new(c, id, sizeof(*rr));
    l = malloc(sizeof(*l));
    if (rr == NULL || l == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        goto out;
    }
    if (!change_list_check(c, id, &fr->remove_device->device_list, devs, n, held, target, NULL, l,
                           &rr->has_list, &rr->list))
        goto out;
    rr->target.account_id = c->addr.account_id;
    rr->target.device_id = target;
    int st = sottod_store_device_remove_listed(
        c->srv->store, rr->target, held->present ? held->version : 0,
        rr->has_list ? &rr->list : NULL, remove_device_done, rr);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        goto out;
    }
    c->srv->removing[c->srv->n_removing++] = rr->target;
    rr = NULL; /* owned by the completion */
out:
    if (rr != NULL)
        req_free(&rr->r);
    free(l);
    free(devs);
    free(held);
}

/* ---- keys ---------------------------------------------------------------------------- */

typedef struct set_keys_req {
    req r;
    bool signed_prekey; /* the device may have become reachable: forget the cache */
    uint32_t prekeys;   /* one-time prekeys submitted (c->prekeys_pending) */
    int pending;        /* store operations still to complete */
    int status;         /* first failure */
    bool have_count;
    uint32_t count;
} set_keys_req;

static void prekey_answer(sottod_conn *c, uint64_t id, uint32_t remaining, bool set_keys)
{
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    Sotto__Api__SetKeysResponse sk = SOTTO__API__SET_KEYS_RESPONSE__INIT;
    Sotto__Api__PrekeyStatusResponse ps = SOTTO__API__PREKEY_STATUS_RESPONSE__INIT;
    bool low = remaining < c->srv->cfg.prekey_low;
    f.id = id;
    if (set_keys) {
        sk.prekeys_remaining = remaining;
        sk.prekeys_low = low;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_SET_KEYS;
        f.set_keys = &sk;
    } else {
        ps.prekeys_remaining = remaining;
        ps.prekeys_low = low;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_PREKEY_STATUS;
        f.prekey_status = &ps;
    }
    answer(c, &f);
}

static void set_keys_done(void *arg, const sottod_store_result *res)
{
    set_keys_req *sr = arg;
    sottod_conn *c = sr->r.c;
    if (res->status != SOTTOD_STORE_OK && sr->status == SOTTOD_STORE_OK)
        sr->status = res->status;
    if (res->type == SOTTOD_OP_ONE_TIME_PREKEYS_ADD && res->status == SOTTOD_STORE_OK) {
        sr->have_count = true;
        sr->count = res->u.one_time_prekeys_add.count;
    }
    if (--sr->pending > 0)
        return;
    c->prekeys_pending -= sr->prekeys <= c->prekeys_pending ? sr->prekeys : c->prekeys_pending;
    if (sr->signed_prekey)
        sottod_acache_forget(&c->srv->acache, c->addr.account_id);
    sottod_metrics_commit(c->srv, sr->r.t0_us);
    if (c->wsi != NULL) {
        if (sr->status != SOTTOD_STORE_OK) {
            answer_store_error(c, sr->r.id, sr->status);
        } else {
            uint32_t n = sr->have_count ? sr->count : prekey_count(c, c->addr);
            if (n >= c->srv->cfg.prekey_low)
                c->low_notified = false;
            prekey_answer(c, sr->r.id, n, true);
        }
    }
    req_free(&sr->r);
}

static bool prekey_pub_ok(const ProtobufCBinaryData *b)
{
    return identity_key_ok(b);
}

static void h_set_keys(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__SetKeysRequest *rq = fr->set_keys;
    sottod_server *srv = c->srv;
    sottod_device me;
    sottod_one_time_prekey *keys = NULL;
    const Sotto__Api__SignedPreKey *spk = rq->signed_prekey;
    size_t n = rq->n_prekeys;

    if (spk == NULL && n == 0) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST, "nothing to upload");
        return;
    }
    if (n > SOTTOD_PREKEYS_PER_UPLOAD) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_TOO_LARGE,
                      "at most 100 prekeys per upload");
        return;
    }
    if (sottod_store_device_get(srv->store, c->addr, &me) != SOTTOD_STORE_OK) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_UNAUTHENTICATED, "device no longer exists");
        return;
    }
    if (spk != NULL) {
        sotto_public_key ik, pk;
        if (spk->id > 0xFFFFFFu || !prekey_pub_ok(&spk->public_key) ||
            spk->signature.len != SOTTO_SIGNATURE_BYTES) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                          "signed_prekey needs id, a 33-byte public key and a 64-byte signature");
            return;
        }
        if (sotto_public_key_decode(&ik, me.identity_key, sizeof(me.identity_key)) != SOTTO_OK ||
            sotto_public_key_decode(&pk, spk->public_key.data, spk->public_key.len) != SOTTO_OK ||
            sotto_signed_prekey_verify(&ik, &pk, spk->signature.data) != SOTTO_OK) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE,
                          "signed prekey signature does not verify with the identity key");
            return;
        }
    } else if (!me.has_signed_prekey) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_NO_KEYS, "upload a signed prekey first");
        return;
    }
    if (n > 0) {
        /* Count uploads still in flight too, or 32 concurrent uploads
         * could each pass this check. (Replacing an existing id is counted
         * as an addition here: the cap errs on the safe side.) */
        uint32_t have = prekey_count(c, c->addr);
        if ((size_t)have + c->prekeys_pending + n > SOTTOD_PREKEYS_MAX_STORED) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_TOO_LARGE,
                          "a device keeps at most 1000 one-time prekeys");
            return;
        }
        keys = calloc(n, sizeof(*keys));
        if (keys == NULL) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
            return;
        }
        for (size_t i = 0; i < n; i++) {
            const Sotto__Api__PreKey *p = rq->prekeys[i];
            if (p->id == 0 || p->id > 0xFFFFFFu || !prekey_pub_ok(&p->public_key)) {
                free(keys);
                answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                              "prekey needs id 1..16777215 and a 33-byte public key");
                return;
            }
            keys[i].id = p->id;
            memcpy(keys[i].pub, p->public_key.data, SOTTOD_PUBLIC_KEY_BYTES);
        }
    }
    set_keys_req *sr = (set_keys_req *)req_new(c, id, sizeof(*sr));
    if (sr == NULL) {
        free(keys);
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    /* Both operations are submitted now; they run in order in the writer.
     * The answer goes out when the last one completed. */
    sr->pending = (spk != NULL) + (n > 0);
    sr->signed_prekey = spk != NULL;
    int submitted = 0, st = SOTTOD_STORE_OK;
    if (spk != NULL) {
        st = sottod_store_signed_prekey_set(srv->store, c->addr, spk->id, spk->public_key.data,
                                            spk->signature.data, set_keys_done, sr);
        if (st == SOTTOD_STORE_OK)
            submitted++;
    }
    if (st == SOTTOD_STORE_OK && n > 0) {
        st = sottod_store_one_time_prekeys_add(srv->store, c->addr, keys, n, set_keys_done, sr);
        if (st == SOTTOD_STORE_OK) {
            submitted++;
            sr->prekeys = (uint32_t)n;
            c->prekeys_pending += (uint32_t)n;
        }
    }
    free(keys);
    if (st != SOTTOD_STORE_OK) {
        if (submitted == 0) {
            answer_store_error(c, id, st);
            req_free(&sr->r);
        } else {
            /* The first op is in flight; let its completion answer. */
            sr->status = st;
            sr->pending = submitted;
        }
    }
}

static void h_prekey_status(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    prekey_answer(c, id, prekey_count(c, c->addr), false);
}

/* ---- bundles --------------------------------------------------------------------------- */

typedef struct bundle_req {
    req r;
    int64_t account_id;
    char username[SOTTOD_USERNAME_MAX + 1];
} bundle_req;

static void signed_prekey_msg(Sotto__Api__SignedPreKey *m, const sottod_bundle *b)
{
    sotto__api__signed_pre_key__init(m);
    m->id = b->signed_prekey_id;
    m->public_key.data = (uint8_t *)b->signed_prekey;
    m->public_key.len = SOTTOD_PUBLIC_KEY_BYTES;
    m->signature.data = (uint8_t *)b->signed_prekey_sig;
    m->signature.len = SOTTOD_SIGNATURE_BYTES;
}

static void bundle_done(void *arg, const sottod_store_result *res)
{
    bundle_req *br = arg;
    sottod_conn *c = br->r.c;
    sottod_server *srv = c->srv;
    Sotto__Api__DeviceBundle *db = NULL;
    Sotto__Api__DeviceBundle **dbp = NULL;
    Sotto__Api__SignedPreKey *spk = NULL;
    Sotto__Api__PreKey *pk = NULL;
    size_t out_n = 0;

    sottod_metrics_commit(srv, br->r.t0_us);
    if (res->status != SOTTOD_STORE_OK) {
        if (c->wsi != NULL)
            answer_store_error(c, br->r.id, res->status);
        goto out;
    }
    size_t nb = res->u.bundle_take.n;
    const sottod_bundle *bs = res->u.bundle_take.bundles;
    /* Tell devices that ran low (whoever fetched). */
    for (size_t i = 0; i < nb; i++) {
        if (bs[i].has_one_time_prekey)
            srv->m.prekeys_handed_out_total++;
        if (bs[i].has_signed_prekey && bs[i].one_time_prekeys_left < srv->cfg.prekey_low) {
            sottod_addr a = {br->account_id, bs[i].device_id};
            sottod_conn *owner = sottod_registry_find(srv, a);
            if (owner != NULL)
                sottod_api_notice_prekeys_low(owner, bs[i].one_time_prekeys_left);
        }
    }
    if (c->wsi == NULL)
        goto out;
    db = calloc(nb + 1, sizeof(*db));
    dbp = calloc(nb + 1, sizeof(*dbp));
    spk = calloc(nb + 1, sizeof(*spk));
    pk = calloc(nb + 1, sizeof(*pk));
    if (db == NULL || dbp == NULL || spk == NULL || pk == NULL) {
        answer_status(c, br->r.id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nb; i++) {
        const sottod_bundle *b = &bs[i];
        if (!b->has_signed_prekey)
            continue; /* no keys yet: not reachable */
        Sotto__Api__DeviceBundle *d = &db[out_n];
        sotto__api__device_bundle__init(d);
        d->device_id = b->device_id;
        d->registration_id = b->registration_id;
        d->identity_key.data = (uint8_t *)b->identity_key;
        d->identity_key.len = SOTTOD_PUBLIC_KEY_BYTES;
        signed_prekey_msg(&spk[out_n], b);
        d->signed_prekey = &spk[out_n];
        if (b->has_one_time_prekey) {
            sotto__api__pre_key__init(&pk[out_n]);
            pk[out_n].id = b->one_time_prekey.id;
            pk[out_n].public_key.data = (uint8_t *)b->one_time_prekey.pub;
            pk[out_n].public_key.len = SOTTOD_PUBLIC_KEY_BYTES;
            d->prekey = &pk[out_n];
        }
        d->auth_key.data = (uint8_t *)b->auth_key;
        d->auth_key.len = SOTTOD_AUTH_KEY_BYTES;
        d->added_by = b->added_by;
        if (b->added_by != 0) {
            d->add_signature.data = (uint8_t *)b->add_signature;
            d->add_signature.len = SOTTOD_SIGNATURE_BYTES;
        }
        dbp[out_n] = d;
        out_n++;
    }
    if (out_n == 0) {
        answer_status(c, br->r.id, SOTTO__API__STATUS__STATUS_NOT_FOUND, "no device with keys");
    } else {
        Sotto__Api__GetBundleResponse rsp = SOTTO__API__GET_BUNDLE_RESPONSE__INIT;
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        const sottod_device_list_rec *l = res->u.bundle_take.list;
        rsp.username = br->username;
        rsp.n_devices = out_n;
        rsp.devices = dbp;
        if (l != NULL && l->present) {
            account_fields(l, &rsp.account_key, &rsp.device_list);
        }
        f.id = br->r.id;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_GET_BUNDLE;
        f.get_bundle = &rsp;
        srv->m.bundles_total++;
        answer(c, &f);
    }
out:
    free(db);
    free(dbp);
    free(spk);
    free(pk);
    req_free(&br->r);
}

static void h_get_bundle(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__GetBundleRequest *rq = fr->get_bundle;
    sottod_server *srv = c->srv;
    sottod_account acct;
    uint64_t retry = 0;
    if (!username_ok(rq->username)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_USERNAME, "invalid username");
        return;
    }
    if (!sottod_bucket_take(&c->dev->bundle_bucket, srv->cfg.rate_bundle_per_min,
                            srv->cfg.rate_bundle_burst, sottod_mono_us(), &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    if (sottod_store_account_lookup(srv->store, rq->username, &acct) != SOTTOD_STORE_OK) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_NOT_FOUND, "no such account");
        return;
    }
    bundle_req *br = (bundle_req *)req_new(c, id, sizeof(*br));
    if (br == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    br->account_id = acct.account_id;
    snprintf(br->username, sizeof(br->username), "%s", rq->username);
#ifdef SOTTOD_TEST_HOOKS
    /* SOTTOD_TEST_KT_FORK: the viewer gets the forged identity's bundles
     * and list as target's, answered as a store take would be. */
    {
        sottod_bundle forged[SOTTOD_MAX_DEVICES];
        sottod_store_result res;
        memset(&res, 0, sizeof(res));
        if (sottod_kt_test_forged_bundles(srv, c->username, rq->username, rq->device_id, forged,
                                          SOTTOD_MAX_DEVICES, &res.u.bundle_take.n)) {
            res.type = SOTTOD_OP_BUNDLE_TAKE;
            res.status = SOTTOD_STORE_OK;
            res.u.bundle_take.bundles = forged;
            res.u.bundle_take.list = sottod_kt_test_forged_list(srv, c->username, rq->username);
            bundle_done(br, &res);
            return;
        }
    }
#endif
    /* Per-target limit on one-time prekeys (not for the own account):
     * beyond it the bundle carries the signed prekey only, which X3DH
     * allows, so nobody can drain a victim's one-time prekeys. */
    bool otpk = acct.account_id == c->addr.account_id ||
                sottod_bucket_table_take(&srv->prekey_buckets, acct.account_id, 0,
                                         srv->cfg.rate_prekey_target_per_min,
                                         srv->cfg.rate_prekey_target_burst, sottod_mono_us(), NULL);
    int st = sottod_store_bundle_take_ex(srv->store, acct.account_id, rq->device_id, otpk,
                                         bundle_done, br);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        req_free(&br->r);
    }
}

/* ---- set_device_list, get_device_list (API v2) ------------------------------------------ */

static void set_list_done(void *arg, const sottod_store_result *res)
{
    add_device_req *ar = arg; /* same shape: a request and the new list */
    sottod_conn *c = ar->r.c;
    sottod_metrics_commit(c->srv, ar->r.t0_us);
    if (res->status == SOTTOD_STORE_OK) {
        notify_list_changed(c->srv, c->addr.account_id, &ar->list);
        sottod_kt_account_changed(c->srv, c->username); /* key transparency */
    }
    if (c->wsi == NULL)
        goto out;
    if (res->status == SOTTOD_STORE_CONFLICT) {
        answer_status(c, ar->r.id, SOTTO__API__STATUS__STATUS_DEVICE_LIST_STALE,
                      "the account's device list changed meanwhile");
    } else if (res->status != SOTTOD_STORE_OK) {
        answer_store_error(c, ar->r.id, res->status);
    } else {
        Sotto__Api__SetDeviceListResponse rsp = SOTTO__API__SET_DEVICE_LIST_RESPONSE__INIT;
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        f.id = ar->r.id;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_SET_DEVICE_LIST;
        f.set_device_list = &rsp;
        answer(c, &f);
    }
out:
    req_free(&ar->r);
}

static void h_set_device_list(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__SetDeviceListRequest *rq = fr->set_device_list;
    sottod_device *devs = NULL;
    sottod_device_list_rec *held = NULL;
    sotto_device_list *l = NULL;
    add_device_req *ar = NULL;
    const uint8_t *key;
    char why[160];
    size_t n = 0;

    ar = (add_device_req *)req_new(c, id, sizeof(*ar));
    l = malloc(sizeof(*l));
    if (ar == NULL || l == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        goto out;
    }
    if (!read_account_devices(c, id, &devs, &n, &held))
        goto out;
    if (held->present) {
        if (rq->account_key.len != 0 && (rq->account_key.len != SOTTOD_PUBLIC_KEY_BYTES ||
                                         sodium_memcmp(rq->account_key.data, held->account_key,
                                                       SOTTOD_PUBLIC_KEY_BYTES) != 0)) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_FORBIDDEN,
                          "the account key cannot be changed");
            goto out;
        }
        key = held->account_key;
    } else {
        /* Giving an API v1 account its account key: its first device only. */
        if (c->addr.device_id != 1) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_FORBIDDEN,
                          "only device 1 can give the account its account key");
            goto out;
        }
        if (rq->account_key.len != SOTTOD_PUBLIC_KEY_BYTES) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                          "account_key (33 bytes) required");
            goto out;
        }
        key = rq->account_key.data;
    }
    if (!list_verify(c, id, &rq->device_list, key, c->username, l) ||
        (held->present && !version_higher(c, id, l, held)))
        goto out;
    if (!list_matches_devices(l, devs, n, 0, NULL, why, sizeof(why))) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST, why);
        goto out;
    }
    list_rec_fill(&ar->list, key, &rq->device_list, l->version);
    ar->has_list = true;
    int st = sottod_store_device_list_set(c->srv->store, c->addr.account_id,
                                          held->present ? held->version : 0, &ar->list,
                                          set_list_done, ar);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        goto out;
    }
    ar = NULL;
out:
    if (ar != NULL)
        req_free(&ar->r);
    free(l);
    free(devs);
    free(held);
}

static void h_get_device_list(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__GetDeviceListRequest *rq = fr->get_device_list;
    sottod_server *srv = c->srv;
    sottod_account acct;
    sottod_device_list_rec *held = NULL;
    uint64_t retry = 0;
    if (!username_ok(rq->username)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_USERNAME, "invalid username");
        return;
    }
    /* Logged in: shares the send bucket (a client fetches the recipient's
     * list before every send; it consumes no prekey, so the tighter bundle
     * bucket is not needed). Before login (a device being restored from a
     * backup learns the version to sign, docs/api.md): the registration
     * limits (per source, per prefix, server-wide), besides the
     * per-connection limit on requests before login. */
    if (!c->authed) {
        /* the registration limits: per source first, so one source
         * cannot empty the server-wide bucket for everyone */
        if (!register_allowed(c, id))
            return;
    } else if (!sottod_bucket_take(&c->dev->send_bucket, srv->cfg.rate_send_per_min,
                                   srv->cfg.rate_send_burst, sottod_mono_us(), &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    held = malloc(sizeof(*held));
    if (held == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    int st = sottod_store_account_lookup(srv->store, rq->username, &acct);
    if (st == SOTTOD_STORE_OK)
        st = sottod_store_device_list_get(srv->store, acct.account_id, held);
#ifdef SOTTOD_TEST_HOOKS
    /* SOTTOD_TEST_KT_FORK: the viewer gets the forged list as target's. */
    const sottod_device_list_rec *forged =
        c->authed && st == SOTTOD_STORE_OK
            ? sottod_kt_test_forged_list(srv, c->username, rq->username)
            : NULL;
    if (forged != NULL)
        *held = *forged;
#endif
    if (st == SOTTOD_STORE_NOT_FOUND) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_NOT_FOUND, "no such account");
    } else if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
    } else {
        Sotto__Api__DeviceListResponse rsp = SOTTO__API__DEVICE_LIST_RESPONSE__INIT;
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        if (held->present) {
            account_fields(held, &rsp.account_key, &rsp.device_list);
        }
        f.id = id;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_GET_DEVICE_LIST;
        f.get_device_list = &rsp;
        answer(c, &f);
    }
    free(held);
}

/* ---- send ----------------------------------------------------------------------------- */

#define SEALED_TYPE 6 /* OutgoingMessage/Envelope type of a sealed sender v1 message (v5) */

typedef struct send_req {
    req r;
    int64_t account_id;
    uint64_t ts_ms;
    size_t n;
    bool sealed; /* took a token from the recipient's sealed bucket */
    uint32_t devices[SOTTOD_MAX_DEVICES];
} send_req;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void answer_mismatch(sottod_conn *c, uint64_t id, uint32_t *missing, size_t nm,
                            uint32_t *extra, size_t ne, uint32_t *stale, size_t ns)
{
    Sotto__Api__MismatchedDevices md = SOTTO__API__MISMATCHED_DEVICES__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    qsort(missing, nm, sizeof(uint32_t), cmp_u32);
    qsort(extra, ne, sizeof(uint32_t), cmp_u32);
    qsort(stale, ns, sizeof(uint32_t), cmp_u32);
    md.n_missing = nm;
    md.missing = missing;
    md.n_extra = ne;
    md.extra = extra;
    md.n_stale = ns;
    md.stale = stale;
    f.id = id;
    f.status = SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES;
    f.error = (char *)"device list does not match the account's devices";
    f.mismatch = &md;
    c->srv->m.sends_mismatched_total++;
    answer(c, &f);
}

static void send_done(void *arg, const sottod_store_result *res)
{
    send_req *sr = arg;
    sottod_conn *c = sr->r.c;
    sottod_server *srv = c->srv;
    sottod_metrics_commit(srv, sr->r.t0_us);
    if (res->status == SOTTOD_STORE_OK) {
        srv->m.envelopes_queued_total += res->u.enqueue.queued;
        for (size_t i = 0; i < sr->n; i++) {
            sottod_addr a = {sr->account_id, sr->devices[i]};
            sottod_delivery_wake(srv, a);
        }
    } else if (sr->sealed) {
        /* nothing queued: the recipient's shared sealed rate is not spent */
        sottod_bucket_table_refund(&srv->sealed_buckets, 0, sr->account_id,
                                   srv->cfg.rate_sealed_burst);
    }
    if (c->wsi == NULL)
        goto out;
    if (res->status == SOTTOD_STORE_OK) {
        Sotto__Api__SendResponse rsp = SOTTO__API__SEND_RESPONSE__INIT;
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        rsp.server_timestamp_ms = sr->ts_ms;
        f.id = sr->r.id;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_SEND;
        f.send = &rsp;
        answer(c, &f);
    } else if (res->status == SOTTOD_STORE_QUEUE_FULL) {
        srv->m.sends_queue_full_total++;
        answer_status(c, sr->r.id, SOTTO__API__STATUS__STATUS_QUEUE_FULL,
                      "a recipient device's queue is full; nothing was sent");
    } else if (res->status == SOTTOD_STORE_SENDER_FULL) {
        /* Only this sender (or, sealed, every sealed sender) is capped. */
        srv->m.sends_queue_full_total++;
        answer_status(c, sr->r.id, SOTTO__API__STATUS__STATUS_QUEUE_FULL,
                      res->u.enqueue.sealed
                          ? "queue_sealed_max reached: too many sealed envelopes wait for a "
                            "recipient device; nothing was sent"
                          : "queue_per_sender_max reached: too many of your envelopes wait for a "
                            "recipient device; nothing was sent");
    } else if (res->status == SOTTOD_STORE_STALE) {
        /* A device went away between the check and the commit. */
        sottod_acache_forget(&srv->acache, sr->account_id);
        uint32_t extra = res->u.enqueue.failed.device_id;
        answer_mismatch(c, sr->r.id, NULL, 0, &extra, 1, NULL, 0);
    } else {
        answer_store_error(c, sr->r.id, res->status);
    }
out:
    req_free(&sr->r);
}

/* Sealed sends (v5, docs/api.md "Sealed sender"): true if the destination
 * account's delivery token (cached with the account, acache.h) equals
 * `token` (16 bytes; constant time); else answers UNAUTHENTICATED. */
static void answer_token_mismatch(sottod_conn *c, uint64_t id)
{
    answer_status(c, id, SOTTO__API__STATUS__STATUS_UNAUTHENTICATED,
                  "delivery token does not match the recipient's; nothing was sent");
}

static bool delivery_token_ok(sottod_conn *c, uint64_t id, const sottod_acache_entry *acct,
                              const uint8_t *token)
{
    bool ok =
        acct->has_token && sodium_memcmp(acct->token, token, SOTTOD_DELIVERY_TOKEN_BYTES) == 0;
    if (!ok)
        answer_token_mismatch(c, id);
    return ok;
}

/* The first sealed send whose token checks out on a connection that is not
 * logged in makes it a sealed sender's (frame_max, no login deadline;
 * net.c), within sealed_conns_per_source for its source address and
 * sealed_conns_share percent of max_connections in all. Returns true if the
 * connection is (now) one; else answers RATE_LIMITED naming the limit. */
static bool sealed_conn_upgrade(sottod_conn *c, uint64_t id)
{
    sottod_server *srv = c->srv;
    if (c->sealed_conn || c->authed)
        return true;
    uint64_t total = srv->cfg.max_connections * srv->cfg.sealed_conns_share / 100;
    const char *why = NULL;
    if (total == 0)
        total = 1;
    if (srv->sealed_conns_open >= total)
        why = "too many connections of sealed senders on this server (sealed_conns_share); "
              "nothing was sent: send on an open connection, log in, or retry later";
    else if (c->src_known &&
             !sottod_count_table_add(&srv->sealed_conn_sources, c->src_addr_key,
                                     (uint32_t)(srv->cfg.sealed_conns_per_source > UINT32_MAX
                                                    ? UINT32_MAX
                                                    : srv->cfg.sealed_conns_per_source)))
        why = "too many connections of sealed senders from your address "
              "(sealed_conns_per_source); nothing was sent: send on an open connection, log in, "
              "or retry later";
    if (why != NULL) {
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        f.id = id;
        f.status = SOTTO__API__STATUS__STATUS_RATE_LIMITED;
        f.error = (char *)why;
        f.retry_after_ms = 60000;
        srv->m.rate_limited_total++;
        answer(c, &f);
        return false;
    }
    srv->sealed_conns_open++;
    c->sealed_counted = true;
    c->sealed_conn = true;
    lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0); /* no login deadline */
    return true;
}

void sottod_api_sealed_conn_release(sottod_conn *c)
{
    sottod_server *srv = c->srv;
    if (!c->sealed_counted)
        return;
    c->sealed_counted = false;
    if (srv->sealed_conns_open > 0)
        srv->sealed_conns_open--;
    if (c->src_known)
        sottod_count_table_release(&srv->sealed_conn_sources, c->src_addr_key);
}

static void h_send(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__SendRequest *rq = fr->send;
    sottod_server *srv = c->srv;
    /* v5: a delivery token makes the send sealed: no login needed, no
     * sender stored or pushed, every message type 6 */
    bool sealed = rq->delivery_token.len > 0;
    const sottod_acache_entry *acct = NULL;
    sottod_envelope_in *envs = NULL;
    uint8_t **bodies = NULL;
    size_t ndev = 0, nm = 0, ne = 0, ns = 0, n = rq->n_messages;
    uint32_t missing[SOTTOD_MAX_DEVICES], extra[SOTTOD_MAX_DEVICES + 1], stale[SOTTOD_MAX_DEVICES];
    bool seen[SOTTOD_MAX_DEVICES];
    uint64_t retry = 0;
    send_req *sr = NULL;

    if (!sealed && !c->authed) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_UNAUTHENTICATED, "log in first");
        return;
    }
    if (sealed && rq->delivery_token.len != SOTTOD_DELIVERY_TOKEN_BYTES) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "delivery_token must be 16 bytes");
        return;
    }
    if (!username_ok(rq->destination)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_USERNAME, "invalid destination");
        return;
    }
    if (n > SOTTOD_MAX_DEVICES) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_TOO_LARGE, "too many messages");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Sotto__Api__OutgoingMessage *m = rq->messages[i];
        if (m->body.len == 0 || m->type == 0 || m->type > 255) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                          "each message needs a type and a non-empty body");
            return;
        }
        if (m->body.len > srv->cfg.ciphertext_max) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_TOO_LARGE,
                          "ciphertext larger than the server accepts");
            return;
        }
        if (sealed != (m->type == SEALED_TYPE)) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                          sealed ? "a sealed send (delivery_token) carries only type 6 messages"
                                 : "type 6 (sealed sender) needs a delivery_token");
            return;
        }
    }
    /* A connection that never logs in has its own send bucket. */
    if (!sottod_bucket_take(c->authed ? &c->dev->send_bucket : &c->sealed_bucket,
                            srv->cfg.rate_send_per_min, srv->cfg.rate_send_burst, sottod_mono_us(),
                            &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    int st = sottod_acache_get(&srv->acache, srv->store, rq->destination, &acct);
    if (st == SOTTOD_STORE_NOT_FOUND && sealed) {
        /* The token is checked before anything else about the recipient
         * is answered: no such account looks like a wrong token (no
         * account oracle for connections that never log in). */
        answer_token_mismatch(c, id);
        return;
    }
    if (st == SOTTOD_STORE_NOT_FOUND) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_NOT_FOUND, "no such account");
        return;
    }
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        return;
    }
    const sottod_acache_dev *devs = acct->devs;
    int64_t account_id = acct->account_id;
    ndev = acct->n;
    /* Sealed: the token first (nothing else is spent on a wrong one); one
     * that checks out makes this connection a sealed sender's (net.c). */
    if (sealed) {
        if (!delivery_token_ok(c, id, acct, rq->delivery_token.data))
            return;
        if (!sealed_conn_upgrade(c, id))
            return;
    }
    /* Per (sender account, recipient account) inbound rate, over all the
     * sender's devices: many accounts of one attacker each get their own
     * small share of a victim's queue; others still reach the victim.
     * Sealed sends (sender unknown) share one rate per recipient, taken
     * below, only by a send that queues envelopes. */
    if (!sealed && account_id != c->addr.account_id &&
        !sottod_bucket_table_take(&srv->pair_buckets, c->addr.account_id, account_id,
                                  srv->cfg.rate_pair_per_min, srv->cfg.rate_pair_burst,
                                  sottod_mono_us(), &retry)) {
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        f.id = id;
        f.status = SOTTO__API__STATUS__STATUS_RATE_LIMITED;
        f.error = (char *)"rate limited: too many messages to this recipient";
        f.retry_after_ms = retry;
        srv->m.rate_limited_total++;
        answer(c, &f);
        return;
    }
    /* The global disk budget (disk.h): refused before the disk fills. */
    {
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += rq->messages[i]->body.len + 128;
        if (!sottod_disk_admit(srv, bytes)) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_QUEUE_FULL,
                          "server storage is full; nothing was sent, retry later");
            return;
        }
    }
    /* Expected: the account's devices with keys, minus the sending device
     * (sealed: the sender is unknown, so every device with keys). */
    bool own = !sealed && account_id == c->addr.account_id;
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n; i++) {
        const Sotto__Api__OutgoingMessage *m = rq->messages[i];
        size_t k = 0;
        while (k < ndev && devs[k].device_id != m->device_id)
            k++;
        bool expected = k < ndev && devs[k].has_keys && !(own && m->device_id == c->addr.device_id);
        if (!expected || seen[k]) {
            if (ne < SOTTOD_MAX_DEVICES + 1)
                extra[ne++] = m->device_id;
            continue;
        }
        seen[k] = true;
        if (devs[k].registration_id != m->registration_id)
            stale[ns++] = m->device_id;
    }
    for (size_t k = 0; k < ndev; k++) {
        if (!devs[k].has_keys || seen[k] || (own && devs[k].device_id == c->addr.device_id))
            continue;
        missing[nm++] = devs[k].device_id;
    }
    if (nm > 0 || ne > 0 || ns > 0) {
        answer_mismatch(c, id, missing, nm, extra, ne, stale, ns);
        goto out;
    }
    if (n == 0) {
        /* Nothing to deliver (e.g. the sender's own account with one device). */
        Sotto__Api__SendResponse rsp = SOTTO__API__SEND_RESPONSE__INIT;
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        rsp.server_timestamp_ms = (uint64_t)sottod_now_ms();
        f.id = id;
        f.result_case = SOTTO__API__SERVER_FRAME__RESULT_SEND;
        f.send = &rsp;
        answer(c, &f);
        goto out;
    }
    /* The recipient's shared sealed rate (every sealed sender together):
     * only sends that queue envelopes take from it (one that queues
     * nothing, above, costs the connection's own bucket only), and a send
     * the store refuses gets its token back (send_done). */
    if (sealed &&
        !sottod_bucket_table_take(&srv->sealed_buckets, 0, account_id, srv->cfg.rate_sealed_per_min,
                                  srv->cfg.rate_sealed_burst, sottod_mono_us(), &retry)) {
        ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
        f.id = id;
        f.status = SOTTO__API__STATUS__STATUS_RATE_LIMITED;
        f.error = (char *)"rate limited: too many sealed messages to this recipient";
        f.retry_after_ms = retry;
        srv->m.rate_limited_total++;
        answer(c, &f);
        goto out;
    }
    sr = (send_req *)req_new(c, id, sizeof(*sr));
    envs = calloc(n, sizeof(*envs));
    bodies = calloc(n, sizeof(*bodies));
    if (sr != NULL) {
        sr->account_id = account_id;
        sr->sealed = sealed; /* from here every failure gives the token back */
    }
    if (sr == NULL || envs == NULL || bodies == NULL) {
        if (sr == NULL && sealed)
            sottod_bucket_table_refund(&srv->sealed_buckets, 0, account_id,
                                       srv->cfg.rate_sealed_burst);
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        goto out;
    }
    sr->account_id = account_id;
    sr->ts_ms = (uint64_t)sottod_now_ms();
    sr->n = n;
    int64_t expires = (int64_t)(sr->ts_ms / 1000) + (int64_t)srv->cfg.envelope_ttl_days * 86400;
    for (size_t i = 0; i < n; i++) {
        const Sotto__Api__OutgoingMessage *m = rq->messages[i];
        Sotto__Api__Envelope e = SOTTO__API__ENVELOPE__INIT;
        sottod_envelope_in *ei = &envs[i];
        ei->to.account_id = account_id;
        ei->to.device_id = m->device_id;
        randombytes_buf(ei->id, sizeof(ei->id));
        ei->expires_at = expires;
        e.id.data = ei->id;
        e.id.len = sizeof(ei->id);
        e.server_timestamp_ms = sr->ts_ms;
        /* sealed: no source at all (stored and pushed without one) */
        e.source = sealed ? (char *)"" : c->username;
        e.source_device_id = sealed ? 0 : c->addr.device_id;
        ei->source_id = sealed ? 0 : c->addr.account_id;
        e.type = m->type;
        e.body = m->body;
        size_t len = sotto__api__envelope__get_packed_size(&e);
        if (len > SOTTOD_ENVELOPE_MAX) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_TOO_LARGE, "envelope too large");
            goto out;
        }
        bodies[i] = malloc(len);
        if (bodies[i] == NULL) {
            answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
            goto out;
        }
        sotto__api__envelope__pack(&e, bodies[i]);
        ei->body = bodies[i];
        ei->body_len = len;
        sr->devices[i] = m->device_id;
    }
#ifdef SOTTOD_TEST_HOOKS
    /* sottod-test's fault hook (SOTTOD_TEST_FAIL_SEND): fail here, where
     * the envelopes would be queued, with the answer a storage error
     * gets; nothing is queued. */
    if (srv->test_fail_send > 0) {
        srv->test_fail_send--;
        sottod_log(SOTTOD_LOG_WARN, "test_hook_send_failed", "left=%llu",
                   (unsigned long long)srv->test_fail_send);
        answer_store_error(c, id, SOTTOD_STORE_ERR);
        goto out;
    }
#endif
    st = sottod_store_envelopes_enqueue(srv->store, envs, n, send_done, sr);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        goto out;
    }
    sr = NULL; /* owned by the completion now */
out:
    if (sr != NULL) {
        if (sr->sealed) /* refused before the store saw it: nothing queued */
            sottod_bucket_table_refund(&srv->sealed_buckets, 0, sr->account_id,
                                       srv->cfg.rate_sealed_burst);
        req_free(&sr->r);
    }
    if (bodies != NULL)
        for (size_t i = 0; i < n; i++)
            free(bodies[i]);
    free(bodies);
    free(envs);
}

/* ---- attachments ------------------------------------------------------------------ */

typedef struct slot_req {
    req r;
} slot_req;

static void slot_done(void *arg, int status, const uint8_t *att_id)
{
    slot_req *sr = arg;
    sottod_conn *c = sr->r.c;
    sottod_metrics_commit(c->srv, sr->r.t0_us);
    if (c->wsi != NULL) {
        if (status != SOTTOD_STORE_OK) {
            answer_store_error(c, sr->r.id, status);
        } else {
            char hex[SOTTOD_ATTACHMENT_ID_BYTES * 2 + 1];
            Sotto__Api__AttachmentSlotResponse rsp = SOTTO__API__ATTACHMENT_SLOT_RESPONSE__INIT;
            ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
            sodium_bin2hex(hex, sizeof(hex), att_id, SOTTOD_ATTACHMENT_ID_BYTES);
            rsp.id = hex;
            rsp.max_bytes = c->srv->cfg.attachment_max;
            rsp.expires_days = c->srv->cfg.attachment_ttl_days;
            f.id = sr->r.id;
            f.result_case = SOTTO__API__SERVER_FRAME__RESULT_ATTACHMENT_SLOT;
            f.attachment_slot = &rsp;
            answer(c, &f);
        }
    }
    req_free(&sr->r);
}

static void h_attachment_slot(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    uint64_t retry = 0;
    if (fr->attachment_slot->size > c->srv->cfg.attachment_max) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_TOO_LARGE, "attachment too large");
        return;
    }
    /* Slots share the send bucket: each one is a write. */
    if (!sottod_bucket_take(&c->dev->send_bucket, c->srv->cfg.rate_send_per_min,
                            c->srv->cfg.rate_send_burst, sottod_mono_us(), &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    /* The global disk budget (disk.h): no slot once the budget is reached
     * (the upload's bytes are admitted by the PUT itself, attach.c). */
    if (!sottod_disk_admit(c->srv, 0)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_QUEUE_FULL,
                      "server storage is full; retry later");
        return;
    }
    slot_req *sr = (slot_req *)req_new(c, id, sizeof(*sr));
    if (sr == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    int st = sottod_attach_slot(c->srv, slot_done, sr);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        req_free(&sr->r);
    }
}

/* ---- key transparency (API v3, docs/api.md "Key transparency") ------------------------- */

/* The public KT operations share one bucket per connection (kt.h). */
static bool kt_rate_ok(sottod_conn *c, uint64_t id)
{
    uint64_t retry = 0;
    if (sottod_bucket_take(&c->kt_bucket, SOTTOD_KT_RATE_PER_MIN, SOTTOD_KT_RATE_BURST,
                           sottod_mono_us(), &retry))
        return true;
    answer_rate_limited(c, id, retry);
    return false;
}

/* Answers a refusal of kt.c (SOTTOD_KT_*). */
static void answer_kt(sottod_conn *c, uint64_t id, int st, uint64_t retry_ms)
{
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    f.id = id;
    switch (st) {
    case SOTTOD_KT_PENDING:
        f.status = SOTTO__API__STATUS__STATUS_KT_PENDING;
        f.error = (char *)"not in the published key directory yet";
        f.retry_after_ms = retry_ms;
        break;
    case SOTTOD_KT_NOT_FOUND:
        f.status = SOTTO__API__STATUS__STATUS_NOT_FOUND;
        f.error = (char *)"not found";
        break;
    case SOTTOD_KT_BAD_REQUEST:
        f.status = SOTTO__API__STATUS__STATUS_BAD_REQUEST;
        f.error = (char *)"size or length out of range";
        break;
    case SOTTOD_KT_FORBIDDEN:
        f.status = SOTTO__API__STATUS__STATUS_FORBIDDEN;
        f.error = (char *)"not an auditor of this server";
        break;
    case SOTTOD_KT_INVALID_SIGNATURE:
        f.status = SOTTO__API__STATUS__STATUS_INVALID_SIGNATURE;
        f.error = (char *)"countersignature does not verify";
        break;
    default:
        f.status = SOTTO__API__STATUS__STATUS_INTERNAL;
        f.error = (char *)"key directory error, retry later";
        break;
    }
    answer(c, &f);
}

static void h_kt_config(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    Sotto__Api__KtConfigResponse rsp = SOTTO__API__KT_CONFIG_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    uint8_t server_key[32], vrf_key[32], auditors[8][32];
    ProtobufCBinaryData aud[8];
    size_t n = 0;
    (void)fr;
    if (!kt_rate_ok(c, id))
        return;
    sottod_kt_config(c->srv, server_key, vrf_key, auditors, &n, &rsp.log_size);
    for (size_t i = 0; i < n; i++) {
        aud[i].data = auditors[i];
        aud[i].len = 32;
    }
    rsp.server_key.data = server_key;
    rsp.server_key.len = 32;
    rsp.vrf_key.data = vrf_key;
    rsp.vrf_key.len = 32;
    rsp.n_auditors = n;
    rsp.auditors = aud;
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_KT_CONFIG;
    f.kt_config = &rsp;
    answer(c, &f);
}

static void h_kt_search(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__KtSearchRequest *rq = fr->kt_search;
    sottod_server *srv = c->srv;
    sottod_kt_blob result, head, cons;
    uint64_t retry = 0;
    if (!username_ok(rq->username)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_USERNAME, "invalid username");
        return;
    }
    /* The same bucket as get_device_list (a client searches the names whose
     * lists it fetches). */
    if (!sottod_bucket_take(&c->dev->send_bucket, srv->cfg.rate_send_per_min,
                            srv->cfg.rate_send_burst, sottod_mono_us(), &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    int st = sottod_kt_search(srv, c->username, rq->username, rq->known_size, &result, &head, &cons,
                              &retry);
    if (st != SOTTOD_KT_OK) {
        answer_kt(c, id, st, retry);
        return;
    }
    Sotto__Api__KtSearchResponse rsp = SOTTO__API__KT_SEARCH_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    rsp.result.data = result.data;
    rsp.result.len = result.len;
    rsp.head.data = head.data;
    rsp.head.len = head.len;
    rsp.consistency.data = cons.data;
    rsp.consistency.len = cons.len;
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_KT_SEARCH;
    f.kt_search = &rsp;
    answer(c, &f);
    free(result.data);
    free(head.data);
    free(cons.data);
}

static void h_kt_head(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    sottod_kt_blob head, cons;
    uint64_t retry = 0;
    if (!kt_rate_ok(c, id))
        return;
    int st = sottod_kt_head(c->srv, c->authed ? c->username : NULL, fr->kt_head->known_size, &head,
                            &cons, &retry);
    if (st != SOTTOD_KT_OK) {
        answer_kt(c, id, st, retry);
        return;
    }
    Sotto__Api__KtHeadResponse rsp = SOTTO__API__KT_HEAD_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    rsp.head.data = head.data;
    rsp.head.len = head.len;
    rsp.consistency.data = cons.data;
    rsp.consistency.len = cons.len;
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_KT_HEAD;
    f.kt_head = &rsp;
    answer(c, &f);
    free(head.data);
    free(cons.data);
}

static void h_kt_consistency(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__KtConsistencyRequest *rq = fr->kt_consistency;
    sottod_kt_blob proof;
    uint8_t root1[32], root2[32];
    if (!kt_rate_ok(c, id))
        return;
    int st = sottod_kt_consistency(c->srv, c->username, rq->size1, rq->size2, &proof, root1, root2);
    if (st != SOTTOD_KT_OK) {
        answer_kt(c, id, st, 0);
        return;
    }
    Sotto__Api__KtConsistencyResponse rsp = SOTTO__API__KT_CONSISTENCY_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    rsp.proof.data = proof.data;
    rsp.proof.len = proof.len;
    rsp.root1.data = root1;
    rsp.root1.len = 32;
    rsp.root2.data = root2;
    rsp.root2.len = 32;
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_KT_CONSISTENCY;
    f.kt_consistency = &rsp;
    answer(c, &f);
    free(proof.data);
}

static void h_kt_audit(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__KtAuditRequest *rq = fr->kt_audit;
    sottod_kt_blob ups;
    ProtobufCBinaryData *items = NULL;
    uint8_t head[112], pending[112];
    bool has_pending = false;
    size_t n = 0;
    if (!kt_rate_ok(c, id))
        return;
    int st = sottod_kt_audit(c->srv, rq->from, rq->max, &ups, &n, head, pending, &has_pending);
    if (st != SOTTOD_KT_OK) {
        answer_kt(c, id, st, 1000);
        return;
    }
    items = calloc(n + 1, sizeof(*items));
    if (items == NULL) {
        free(ups.data);
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].data = ups.data + i * 80;
        items[i].len = 80;
    }
    Sotto__Api__KtAuditResponse rsp = SOTTO__API__KT_AUDIT_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    rsp.n_updates = n;
    rsp.updates = items;
    rsp.head.data = head;
    rsp.head.len = sizeof(head);
    if (has_pending) {
        rsp.pending.data = pending;
        rsp.pending.len = sizeof(pending);
    }
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_KT_AUDIT;
    f.kt_audit = &rsp;
    answer(c, &f);
    free(items);
    free(ups.data);
}

static void kt_cosign_done(void *arg, int status, bool published)
{
    req *r = arg;
    sottod_conn *c = r->c;
    if (c->wsi != NULL) {
        if (status != SOTTOD_KT_OK) {
            answer_kt(c, r->id, status, 0);
        } else {
            Sotto__Api__KtCosignResponse rsp = SOTTO__API__KT_COSIGN_RESPONSE__INIT;
            ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
            rsp.published = published;
            f.id = r->id;
            f.result_case = SOTTO__API__SERVER_FRAME__RESULT_KT_COSIGN;
            f.kt_cosign = &rsp;
            answer(c, &f);
        }
    }
    req_free(r);
}

static void h_kt_cosign(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const Sotto__Api__KtCosignRequest *rq = fr->kt_cosign;
    if (!kt_rate_ok(c, id))
        return;
    req *r = req_new(c, id, sizeof(*r));
    if (r == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    int st = sottod_kt_cosign(c->srv, rq->head.data, rq->head.len, rq->auditor_key.data,
                              rq->auditor_key.len, rq->signature.data, rq->signature.len,
                              kt_cosign_done, r);
    if (st != SOTTOD_KT_OK) {
        answer_kt(c, id, st, 0);
        req_free(r);
    }
}

/* ---- profiles (issue 11, docs/api.md "Profiles") ---------------------------------------- */
/* The server stores and serves opaque ciphertext; nothing about a profile is
 * logged (not even its size). */

static void set_profile_done(void *arg, const sottod_store_result *res)
{
    req *r = arg;
    sottod_conn *c = r->c;
    sottod_metrics_commit(c->srv, r->t0_us);
    if (c->wsi != NULL) {
        if (res->status != SOTTOD_STORE_OK) {
            answer_store_error(c, r->id, res->status);
        } else {
            Sotto__Api__SetProfileResponse rsp = SOTTO__API__SET_PROFILE_RESPONSE__INIT;
            ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
            f.id = r->id;
            f.result_case = SOTTO__API__SERVER_FRAME__RESULT_SET_PROFILE;
            f.set_profile = &rsp;
            answer(c, &f);
        }
    }
    req_free(r);
}

static void h_set_profile(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const ProtobufCBinaryData *ct = &fr->set_profile->ciphertext;
    uint64_t retry = 0;
    if (ct->len == 0) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST, "empty profile");
        return;
    }
    if (ct->len > SOTTOD_PROFILE_MAX) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_TOO_LARGE, "profile too large");
        return;
    }
    if (!sottod_bucket_take(&c->dev->send_bucket, c->srv->cfg.rate_send_per_min,
                            c->srv->cfg.rate_send_burst, sottod_mono_us(), &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    req *r = req_new(c, id, sizeof(*r));
    if (r == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    int st = sottod_store_profile_set(c->srv->store, c->addr.account_id, ct->data, ct->len,
                                      set_profile_done, r);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        req_free(r);
    }
}

static void h_get_profile(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const char *name = fr->get_profile->username;
    uint8_t *ct = NULL;
    size_t len = 0;
    uint64_t retry = 0;
    if (!username_ok(name)) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INVALID_USERNAME, "invalid username");
        return;
    }
    /* The same bucket as get_device_list: a client fetches its contacts'. */
    if (!sottod_bucket_take(&c->dev->send_bucket, c->srv->cfg.rate_send_per_min,
                            c->srv->cfg.rate_send_burst, sottod_mono_us(), &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    int st = sottod_store_profile_get(c->srv->store, name, &ct, &len);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        return;
    }
    Sotto__Api__GetProfileResponse rsp = SOTTO__API__GET_PROFILE_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    rsp.ciphertext.data = ct;
    rsp.ciphertext.len = len;
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_GET_PROFILE;
    f.get_profile = &rsp;
    answer(c, &f);
    free(ct);
}

/* ---- sealed sender (v5, docs/api.md "Sealed sender") --------------------------------- */

/* A sender certificate for the logged-in device: its username, device id
 * and stored identity key, signed under the server certificate (sealed.h).
 * Rate limited with send. */
static void h_sender_certificate(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    sottod_server *srv = c->srv;
    sottod_device dev;
    uint8_t *cert = NULL;
    size_t len = 0;
    uint64_t retry = 0, expires = 0;
    (void)fr;
    if (!sottod_bucket_take(&c->dev->send_bucket, srv->cfg.rate_send_per_min,
                            srv->cfg.rate_send_burst, sottod_mono_us(), &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    int st = sottod_store_device_get(srv->store, c->addr, &dev);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        return;
    }
    if (sottod_sealed_issue(srv, c->username, c->addr.device_id, dev.identity_key,
                            (uint64_t)sottod_now_ms(), &cert, &len, &expires) != 0) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL,
                      "cannot issue a sender certificate");
        return;
    }
    Sotto__Api__SenderCertificateResponse rsp = SOTTO__API__SENDER_CERTIFICATE_RESPONSE__INIT;
    ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
    rsp.certificate.data = cert;
    rsp.certificate.len = len;
    rsp.expires_ms = expires;
    f.id = id;
    f.result_case = SOTTO__API__SERVER_FRAME__RESULT_SENDER_CERTIFICATE;
    f.sender_certificate = &rsp;
    answer(c, &f);
    free(cert);
}

typedef struct token_req {
    req r;
    int64_t account_id;
} token_req;

static void set_delivery_token_done(void *arg, const sottod_store_result *res)
{
    token_req *tr = arg;
    sottod_conn *c = tr->r.c;
    sottod_metrics_commit(c->srv, tr->r.t0_us);
    if (res->status == SOTTOD_STORE_OK) /* sends see the new token at once */
        sottod_acache_forget(&c->srv->acache, tr->account_id);
    if (c->wsi != NULL) {
        if (res->status != SOTTOD_STORE_OK) {
            answer_store_error(c, tr->r.id, res->status);
        } else {
            Sotto__Api__SetDeliveryTokenResponse rsp =
                SOTTO__API__SET_DELIVERY_TOKEN_RESPONSE__INIT;
            ServerFrame f = SOTTO__API__SERVER_FRAME__INIT;
            f.id = tr->r.id;
            f.result_case = SOTTO__API__SERVER_FRAME__RESULT_SET_DELIVERY_TOKEN;
            f.set_delivery_token = &rsp;
            answer(c, &f);
        }
    }
    req_free(&tr->r);
}

/* Sets (16 bytes) or clears (empty) the account's delivery token. Nothing
 * about it is logged. */
static void h_set_delivery_token(sottod_conn *c, uint64_t id, const ClientFrame *fr)
{
    const ProtobufCBinaryData *t = &fr->set_delivery_token->token;
    uint64_t retry = 0;
    if (t->len != 0 && t->len != SOTTOD_DELIVERY_TOKEN_BYTES) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST,
                      "token must be 16 bytes (or empty to clear it)");
        return;
    }
    if (!sottod_bucket_take(&c->dev->send_bucket, c->srv->cfg.rate_send_per_min,
                            c->srv->cfg.rate_send_burst, sottod_mono_us(), &retry)) {
        answer_rate_limited(c, id, retry);
        return;
    }
    token_req *tr = (token_req *)req_new(c, id, sizeof(*tr));
    if (tr == NULL) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_INTERNAL, "out of memory");
        return;
    }
    tr->account_id = c->addr.account_id;
    int st =
        sottod_store_delivery_token_set(c->srv->store, c->addr.account_id,
                                        t->len > 0 ? t->data : NULL, set_delivery_token_done, tr);
    if (st != SOTTOD_STORE_OK) {
        answer_store_error(c, id, st);
        req_free(&tr->r);
    }
}

/* ---- dispatch ---------------------------------------------------------------------- */

typedef void (*handler_fn)(sottod_conn *c, uint64_t id, const ClientFrame *f);

typedef struct handler {
    Sotto__Api__ClientFrame__OpCase op;
    bool needs_auth;
    handler_fn fn;
} handler;

static const handler g_handlers[] = {
    {SOTTO__API__CLIENT_FRAME__OP_CHALLENGE, false, h_challenge},
    {SOTTO__API__CLIENT_FRAME__OP_REGISTER, false, h_register},
    {SOTTO__API__CLIENT_FRAME__OP_LOGIN, false, h_login},
    {SOTTO__API__CLIENT_FRAME__OP_PING, false, h_ping},
    {SOTTO__API__CLIENT_FRAME__OP_ADD_DEVICE, true, h_add_device},
    {SOTTO__API__CLIENT_FRAME__OP_LIST_DEVICES, true, h_list_devices},
    {SOTTO__API__CLIENT_FRAME__OP_REMOVE_DEVICE, true, h_remove_device},
    {SOTTO__API__CLIENT_FRAME__OP_SET_KEYS, true, h_set_keys},
    {SOTTO__API__CLIENT_FRAME__OP_PREKEY_STATUS, true, h_prekey_status},
    {SOTTO__API__CLIENT_FRAME__OP_GET_BUNDLE, true, h_get_bundle},
    /* v5: a sealed send (delivery_token) needs no login; h_send checks */
    {SOTTO__API__CLIENT_FRAME__OP_SEND, false, h_send},
    {SOTTO__API__CLIENT_FRAME__OP_ATTACHMENT_SLOT, true, h_attachment_slot},
    {SOTTO__API__CLIENT_FRAME__OP_SET_DEVICE_LIST, true, h_set_device_list},
    /* public data (key transparency publishes it too); before login it is
     * what a restoring device signs the next version of */
    {SOTTO__API__CLIENT_FRAME__OP_GET_DEVICE_LIST, false, h_get_device_list},
    /* key transparency (v3): config, head, audit and cosign are public
     * (clients before login, auditors); search and consistency need login */
    {SOTTO__API__CLIENT_FRAME__OP_KT_CONFIG, false, h_kt_config},
    {SOTTO__API__CLIENT_FRAME__OP_KT_SEARCH, true, h_kt_search},
    {SOTTO__API__CLIENT_FRAME__OP_KT_HEAD, false, h_kt_head},
    {SOTTO__API__CLIENT_FRAME__OP_KT_CONSISTENCY, true, h_kt_consistency},
    {SOTTO__API__CLIENT_FRAME__OP_KT_AUDIT, false, h_kt_audit},
    {SOTTO__API__CLIENT_FRAME__OP_KT_COSIGN, false, h_kt_cosign},
    /* profiles (issue 11): ciphertext only */
    {SOTTO__API__CLIENT_FRAME__OP_SET_PROFILE, true, h_set_profile},
    {SOTTO__API__CLIENT_FRAME__OP_GET_PROFILE, true, h_get_profile},
    /* sealed sender (v5) */
    {SOTTO__API__CLIENT_FRAME__OP_SENDER_CERTIFICATE, true, h_sender_certificate},
    {SOTTO__API__CLIENT_FRAME__OP_SET_DELIVERY_TOKEN, true, h_set_delivery_token},
};

/* The public key-transparency operations: an auditor may send many before
 * (without) login; they are limited by the connection's kt_bucket instead
 * of SOTTOD_MAX_PREAUTH_REQUESTS. */
static bool kt_public_op(Sotto__Api__ClientFrame__OpCase op)
{
    return op == SOTTO__API__CLIENT_FRAME__OP_KT_CONFIG ||
           op == SOTTO__API__CLIENT_FRAME__OP_KT_HEAD ||
           op == SOTTO__API__CLIENT_FRAME__OP_KT_AUDIT ||
           op == SOTTO__API__CLIENT_FRAME__OP_KT_COSIGN;
}

int sottod_api_on_message(sottod_conn *c, const uint8_t *data, size_t len)
{
    sottod_server *srv = c->srv;
    ClientFrame *fr = sotto__api__client_frame__unpack(NULL, len, data);
    if (fr == NULL) {
        sottod_api_protocol_error(c, 0, "malformed frame", 1008);
        return -1;
    }
    uint64_t id = fr->id;
    if (fr->op_case == SOTTO__API__CLIENT_FRAME__OP__NOT_SET) {
        sotto__api__client_frame__free_unpacked(fr, NULL);
        sottod_api_protocol_error(c, id, "frame without an operation", 1008);
        return -1;
    }
    srv->m.requests_total++;
    /* Sealed sends (a send with a delivery token) are made on connections
     * that never log in: limited by c->sealed_bucket instead. */
    bool sealed_send = fr->op_case == SOTTO__API__CLIENT_FRAME__OP_SEND && fr->send != NULL &&
                       fr->send->delivery_token.len > 0;
    if (!c->authed && !kt_public_op(fr->op_case) && !sealed_send &&
        ++c->preauth_requests > SOTTOD_MAX_PREAUTH_REQUESTS) {
        sotto__api__client_frame__free_unpacked(fr, NULL);
        sottod_api_protocol_error(c, id, "too many requests before login", 1008);
        return -1;
    }
    if (fr->op_case == SOTTO__API__CLIENT_FRAME__OP_ACK) {
        if (c->authed)
            sottod_delivery_ack(c, id);
        sotto__api__client_frame__free_unpacked(fr, NULL);
        return 0;
    }
    const handler *h = NULL;
    for (size_t i = 0; i < sizeof(g_handlers) / sizeof(g_handlers[0]); i++)
        if (g_handlers[i].op == fr->op_case)
            h = &g_handlers[i];
    c->inflight++;
    if (h == NULL) {
        /* A field number this server does not know: a newer client. */
        answer_status(c, id, SOTTO__API__STATUS__STATUS_BAD_REQUEST, "unknown operation");
    } else if (srv->draining) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_UNAVAILABLE, "server shutting down");
    } else if (c->inflight > (c->authed ? SOTTOD_MAX_INFLIGHT : SOTTOD_MAX_INFLIGHT_PREAUTH)) {
        answer_rate_limited(c, id, 100);
    } else if (h->needs_auth && !c->authed) {
        answer_status(c, id, SOTTO__API__STATUS__STATUS_UNAUTHENTICATED, "log in first");
    } else {
        h->fn(c, id, fr);
    }
    sotto__api__client_frame__free_unpacked(fr, NULL);
    return 0;
}
