/*
 * client/core/api.c -- the typed API layer (api.h): builds the request
 * protobufs of proto/api.proto, sends them over the account's connection
 * (net.c) and turns the answers into typed results. Nothing else in
 * client/core touches the generated Sotto__Api__* types.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"
#include "internal.h"
#include "sotto/sealed.h"

#define SC_BACKOFF_BUSY_MS 30000 /* storage failure / shutting down: try again after */
#define SC_BACKOFF_QUEUE_FULL_MS 60000

void sc_api_result_clear(sc_api_result *r)
{
    free(r->mismatch.missing);
    free(r->mismatch.extra);
    free(r->mismatch.stale);
    memset(r, 0, sizeof *r);
}

void sc_api_account_clear(sc_api_account *a)
{
    free(a->device_list);
    memset(a, 0, sizeof *a);
}

/* Copies an account key (33 bytes or empty) and a signed list; false on a
 * key of another size or out of memory. */
static bool copy_account(sc_api_account *a, const ProtobufCBinaryData *key,
                         const ProtobufCBinaryData *list)
{
    memset(a, 0, sizeof *a);
    if (key->len != 0) {
        if (key->len != sizeof a->account_key)
            return false;
        memcpy(a->account_key, key->data, key->len);
        a->has_account_key = true;
    }
    if (list->len != 0) {
        a->device_list = malloc(list->len);
        if (a->device_list == NULL)
            return false;
        memcpy(a->device_list, list->data, list->len);
        a->device_list_len = list->len;
    }
    return true;
}

void sc_envelope_clear(sc_envelope *e)
{
    if (e->body) {
        sodium_memzero(e->body, e->body_len);
        free(e->body);
    }
    memset(e, 0, sizeof *e);
}

void sc_push_clear(sc_push *p)
{
    sc_envelope_clear(&p->envelope);
    memset(p, 0, sizeof *p);
}

const char *sc_api_status_name(int s)
{
    static const char *const names[] = {
        "ok",
        "bad request",
        "not authenticated",
        "forbidden",
        "not found",
        "username taken",
        "invalid username",
        "invalid signature",
        "device list mismatch",
        "recipient's queue is full",
        "rate limited",
        "too large",
        "device limit reached",
        "invite required",
        "server storage failure",
        "server unavailable",
        "protocol error",
        "already authenticated",
        "no keys uploaded",
        "device list out of date",
        "not yet in the published key directory",
    };
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : "unknown status";
}

static sc_api_outcome set_network(sc_api_result *r, const char *why)
{
    r->outcome = SC_API_NETWORK;
    r->status = -1;
    snprintf(r->error, sizeof r->error, "%s", why);
    return r->outcome;
}

static sc_api_outcome set_malformed(sc_api_result *r, const char *what)
{
    r->outcome = SC_API_REFUSED;
    r->status = -1;
    snprintf(r->error, sizeof r->error, "the server sent a malformed %s", what);
    return r->outcome;
}

static int copy_ids(uint32_t **dst, size_t *n, const uint32_t *src, size_t count)
{
    *dst = NULL;
    *n = 0;
    if (count == 0)
        return 0;
    *dst = malloc(count * sizeof **dst);
    if (*dst == NULL)
        return -1;
    memcpy(*dst, src, count * sizeof **dst);
    *n = count;
    return 0;
}

/* Classifies an answer's status (the one place that decides what is
 * temporary). */
static sc_api_outcome classify(const Sotto__Api__ServerFrame *f, sc_api_result *r)
{
    r->status = (int)f->status;
    snprintf(r->error, sizeof r->error, "%s", f->error ? f->error : "");
    switch (f->status) {
    case SOTTO__API__STATUS__STATUS_OK:
        r->outcome = SC_API_OK;
        break;
    case SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES:
        if (f->mismatch == NULL) {
            r->outcome = SC_API_REFUSED;
            break;
        }
        if (copy_ids(&r->mismatch.missing, &r->mismatch.n_missing, f->mismatch->missing,
                     f->mismatch->n_missing) != 0 ||
            copy_ids(&r->mismatch.extra, &r->mismatch.n_extra, f->mismatch->extra,
                     f->mismatch->n_extra) != 0 ||
            copy_ids(&r->mismatch.stale, &r->mismatch.n_stale, f->mismatch->stale,
                     f->mismatch->n_stale) != 0)
            return set_network(r, "out of memory");
        r->outcome = SC_API_MISMATCH;
        break;
    case SOTTO__API__STATUS__STATUS_RATE_LIMITED:
        r->outcome = SC_API_RETRY;
        r->retry_at_ms = sc_now_ms() + (f->retry_after_ms < 50 ? 50 : f->retry_after_ms);
        break;
    case SOTTO__API__STATUS__STATUS_INTERNAL:
    case SOTTO__API__STATUS__STATUS_UNAVAILABLE:
        r->outcome = SC_API_RETRY;
        r->retry_at_ms = sc_now_ms() + SC_BACKOFF_BUSY_MS;
        break;
    case SOTTO__API__STATUS__STATUS_KT_PENDING:
        /* v3: the account's value is not published (audited) yet */
        r->outcome = SC_API_RETRY;
        r->retry_at_ms = sc_now_ms() + (f->retry_after_ms < 50 ? 50 : f->retry_after_ms);
        break;
    case SOTTO__API__STATUS__STATUS_QUEUE_FULL:
        r->outcome = SC_API_RETRY;
        r->retry_at_ms = sc_now_ms() + SC_BACKOFF_QUEUE_FULL_MS;
        break;
    default:
        r->outcome = SC_API_REFUSED;
        break;
    }
    return r->outcome;
}

/* Sends req and waits for the answer; *resp set only on SC_API_OK from
 * the transport's point of view (an answer arrived). */
static sc_api_outcome call_conn(sc_conn *conn, Sotto__Api__ClientFrame *req,
                                Sotto__Api__ServerFrame **resp, sc_api_result *r);

static sc_api_outcome call(sc_client *c, Sotto__Api__ClientFrame *req,
                           Sotto__Api__ServerFrame **resp, sc_api_result *r)
{
    sc_api_outcome o = call_conn(c->conn, req, resp, r);

    /* a transport failure (not "not connected"): the connection is gone */
    if (o == SC_API_NETWORK && c->conn != NULL && *resp == NULL)
        sc_disconnect(c);
    return o;
}

/* call() over another connection (the sealed-send one): a network
 * failure leaves both connections as they are (the caller frees conn). */
static sc_api_outcome call_conn(sc_conn *conn, Sotto__Api__ClientFrame *req,
                                Sotto__Api__ServerFrame **resp, sc_api_result *r)
{
    char err[256];

    memset(r, 0, sizeof *r);
    *resp = NULL;
    if (conn == NULL)
        return set_network(r, "not connected");
    if (sc_conn_request(conn, req, resp, SC_TIMEOUT_MS, err, sizeof err) != 0)
        return set_network(r, err);
    return classify(*resp, r);
}

/* A v5 server names its sealed-sender trust root in the register and login
 * answers (33 bytes); anything else counts as none. */
static void note_sealed_root(sc_client *c, const ProtobufCBinaryData *b)
{
    c->sealed_root_seen_ok = b->len == sizeof c->sealed_root_seen;
    if (c->sealed_root_seen_ok)
        memcpy(c->sealed_root_seen, b->data, sizeof c->sealed_root_seen);
    else
        memset(c->sealed_root_seen, 0, sizeof c->sealed_root_seen);
}

int sc_api_fail(sc_client *c, const sc_api_result *r, const char *what)
{
    const char *sep = r->error[0] ? ": " : "";

    switch (r->outcome) {
    case SC_API_OK:
        return SC_OK;
    case SC_API_NETWORK:
        return sc_fail(c, SC_E_NETWORK, "%s: %s", what, r->error[0] ? r->error : "no answer");
    case SC_API_RETRY:
        c->retry_at_ms = r->retry_at_ms;
        return sc_fail(c, SC_E_RETRY, "%s: %s", what,
                       r->error[0] ? r->error : sc_api_status_name(r->status));
    case SC_API_MISMATCH:
    case SC_API_REFUSED:
        break;
    }
    if (r->status == -1)
        return sc_fail(c, SC_E_SERVER, "%s: %s", what, r->error);
    return sc_fail(
        c, r->status == SOTTO__API__STATUS__STATUS_NOT_FOUND ? SC_E_NOT_FOUND : SC_E_SERVER,
        "%s: server refused (%s)%s%s", what, sc_api_status_name(r->status), sep, r->error);
}

/* ------------------------------------------------------------ connection */

sc_api_outcome sc_api_open(sc_client *c, sc_api_result *r)
{
    sc_server srv = sc_server_of(c);
    char err[256];

    memset(r, 0, sizeof *r);
    if (c->conn && sc_conn_alive(c->conn))
        return SC_API_OK;
    sc_disconnect(c);
    if (sc_conn_open(&c->conn, &srv, SC_TIMEOUT_MS, err, sizeof err) != 0) {
        c->conn = NULL;
        return set_network(r, err);
    }
    sc_wake_publish(c, c->conn); /* sc_wake may interrupt its waits now */
    return SC_API_OK;
}

sc_api_outcome sc_api_challenge(sc_client *c, uint8_t nonce[32], sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ChallengeRequest ch = SOTTO__API__CHALLENGE_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_CHALLENGE;
    f.challenge = &ch;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        if (resp->result_case != SOTTO__API__SERVER_FRAME__RESULT_CHALLENGE ||
            resp->challenge == NULL || resp->challenge->nonce.len != 32)
            set_malformed(r, "challenge");
        else
            memcpy(nonce, resp->challenge->nonce.data, 32);
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_exporter(sc_client *c, uint8_t exporter[32], sc_api_result *r)
{
    memset(r, 0, sizeof *r);
    if (c->conn == NULL || sc_conn_exporter(c->conn, exporter) != 0)
        return set_network(r, "cannot compute the TLS exporter");
    return SC_API_OK;
}

sc_api_outcome sc_api_register(sc_client *c, const sc_api_register_req *q, uint32_t *device_id,
                               sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__RegisterRequest reg = SOTTO__API__REGISTER_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    reg.username = (char *)q->username;
    reg.auth_key.data = (uint8_t *)q->auth_key;
    reg.auth_key.len = 32;
    reg.signature.data = (uint8_t *)q->signature;
    reg.signature.len = 64;
    reg.invite = (char *)(q->invite ? q->invite : "");
    reg.identity_key.data = (uint8_t *)q->identity_key;
    reg.identity_key.len = SOTTO_PUBLIC_KEY_BYTES;
    reg.registration_id = q->registration_id;
    if (q->account_key) {
        reg.account_key.data = (uint8_t *)q->account_key;
        reg.account_key.len = SOTTO_PUBLIC_KEY_BYTES;
    }
    reg.device_list.data = (uint8_t *)q->device_list;
    reg.device_list.len = q->device_list ? q->device_list_len : 0;
    reg.recover = q->recover;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_REGISTER;
    f.register_ = &reg;
    *device_id = 0;
    c->sealed_root_seen_ok = false;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        *device_id = resp->register_ && resp->register_->device_id ? resp->register_->device_id : 1;
        if (resp->register_)
            note_sealed_root(c, &resp->register_->sealed_trust_root);
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_login(sc_client *c, const char *username, uint32_t device_id,
                            const uint8_t signature[64], sc_api_login_info *info, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__LoginRequest lg = SOTTO__API__LOGIN_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    memset(info, 0, sizeof *info);
    info->has_keys = true;
    lg.username = (char *)username;
    lg.device_id = device_id;
    lg.signature.data = (uint8_t *)signature;
    lg.signature.len = 64;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LOGIN;
    f.login = &lg;
    c->sealed_root_seen_ok = false;
    if (call(c, &f, &resp, r) == SC_API_OK &&
        resp->result_case == SOTTO__API__SERVER_FRAME__RESULT_LOGIN && resp->login) {
        note_sealed_root(c, &resp->login->sealed_trust_root);
        info->prekeys_remaining = resp->login->prekeys_remaining;
        info->prekeys_low = resp->login->prekeys_low;
        info->has_keys = resp->login->has_keys;
        info->queued = resp->login->queued;
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_set_keys(sc_client *c, const sotto_signed_prekey *spk,
                               const sotto_prekey *pks, size_t n, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SetKeysRequest sk = SOTTO__API__SET_KEYS_REQUEST__INIT;
    Sotto__Api__SignedPreKey s = SOTTO__API__SIGNED_PRE_KEY__INIT;
    Sotto__Api__PreKey pkv[SC_PREKEY_BATCH];
    Sotto__Api__PreKey *pkp[SC_PREKEY_BATCH];
    Sotto__Api__ServerFrame *resp = NULL;

    memset(r, 0, sizeof *r);
    if (n > SC_PREKEY_BATCH) {
        r->outcome = SC_API_REFUSED;
        r->status = -1;
        snprintf(r->error, sizeof r->error, "prekey batch too large");
        return r->outcome;
    }
    if (spk) {
        s.id = spk->id;
        s.public_key.data = (uint8_t *)spk->key.pub.bytes;
        s.public_key.len = SOTTO_PUBLIC_KEY_BYTES;
        s.signature.data = (uint8_t *)spk->signature;
        s.signature.len = SOTTO_SIGNATURE_BYTES;
        s.timestamp_ms = spk->timestamp_ms;
        sk.signed_prekey = &s;
    }
    for (size_t i = 0; i < n; i++) {
        sotto__api__pre_key__init(&pkv[i]);
        pkv[i].id = pks[i].id;
        pkv[i].public_key.data = (uint8_t *)pks[i].key.pub.bytes;
        pkv[i].public_key.len = SOTTO_PUBLIC_KEY_BYTES;
        pkp[i] = &pkv[i];
    }
    sk.n_prekeys = n;
    sk.prekeys = pkp;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_KEYS;
    f.set_keys = &sk;
    call(c, &f, &resp, r);
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

/* ------------------------------------------------------------ devices */

sc_api_outcome sc_api_list_devices(sc_client *c, sc_api_device **devs, size_t *n,
                                   sc_api_account *acct, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ListDevicesRequest ld = SOTTO__API__LIST_DEVICES_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    *devs = NULL;
    *n = 0;
    if (acct)
        memset(acct, 0, sizeof *acct);
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LIST_DEVICES;
    f.list_devices = &ld;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__ListDevicesResponse *l = resp->list_devices;
        size_t count = l ? l->n_devices : 0;
        *devs = calloc(count ? count : 1, sizeof **devs);
        if (*devs == NULL) {
            set_network(r, "out of memory");
        } else {
            for (size_t i = 0; i < count; i++) {
                const Sotto__Api__DeviceInfo *d = l->devices[i];
                sc_api_device *o = &(*devs)[i];
                o->device_id = d->device_id;
                o->registration_id = d->registration_id;
                o->added_by = d->added_by;
                o->has_keys = d->has_keys;
                snprintf(o->created, sizeof o->created, "%s", d->created ? d->created : "");
                snprintf(o->last_seen, sizeof o->last_seen, "%s", d->last_seen ? d->last_seen : "");
                if (d->auth_key.len == 32) {
                    memcpy(o->auth_key, d->auth_key.data, 32);
                    o->has_auth_key = true;
                }
                if (d->identity_key.len == sizeof o->identity_key) {
                    memcpy(o->identity_key, d->identity_key.data, sizeof o->identity_key);
                    o->has_identity_key = true;
                }
            }
            *n = count;
            if (acct && l && !copy_account(acct, &l->account_key, &l->device_list)) {
                free(*devs);
                *devs = NULL;
                *n = 0;
                set_malformed(r, "account key");
            }
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_add_device(sc_client *c, const uint8_t auth_key[32],
                                 const uint8_t identity_key[33], uint32_t registration_id,
                                 const uint8_t signature[64], const uint8_t *list, size_t list_len,
                                 uint32_t *device_id, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__AddDeviceRequest ad = SOTTO__API__ADD_DEVICE_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    *device_id = 0;
    ad.auth_key.data = (uint8_t *)auth_key;
    ad.auth_key.len = 32;
    ad.identity_key.data = (uint8_t *)identity_key;
    ad.identity_key.len = SOTTO_PUBLIC_KEY_BYTES;
    ad.registration_id = registration_id;
    ad.signature.data = (uint8_t *)signature;
    ad.signature.len = 64;
    ad.device_list.data = (uint8_t *)list;
    ad.device_list.len = list ? list_len : 0;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_ADD_DEVICE;
    f.add_device = &ad;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        if (resp->add_device == NULL || resp->add_device->device_id < 2)
            set_malformed(r, "add-device answer");
        else
            *device_id = resp->add_device->device_id;
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_remove_device(sc_client *c, uint32_t device_id, const uint8_t *list,
                                    size_t list_len, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__RemoveDeviceRequest rd = SOTTO__API__REMOVE_DEVICE_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    rd.device_id = device_id;
    rd.device_list.data = (uint8_t *)list;
    rd.device_list.len = list ? list_len : 0;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_REMOVE_DEVICE;
    f.remove_device = &rd;
    call(c, &f, &resp, r);
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_set_device_list(sc_client *c, const uint8_t *list, size_t list_len,
                                      const uint8_t *account_key, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SetDeviceListRequest sl = SOTTO__API__SET_DEVICE_LIST_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    sl.device_list.data = (uint8_t *)list;
    sl.device_list.len = list_len;
    if (account_key) {
        sl.account_key.data = (uint8_t *)account_key;
        sl.account_key.len = SOTTO_PUBLIC_KEY_BYTES;
    }
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_DEVICE_LIST;
    f.set_device_list = &sl;
    call(c, &f, &resp, r);
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_get_device_list(sc_client *c, const char *username, sc_api_account *acct,
                                      sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__GetDeviceListRequest gl = SOTTO__API__GET_DEVICE_LIST_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    memset(acct, 0, sizeof *acct);
    gl.username = (char *)username;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_DEVICE_LIST;
    f.get_device_list = &gl;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        if (resp->result_case != SOTTO__API__SERVER_FRAME__RESULT_GET_DEVICE_LIST ||
            resp->get_device_list == NULL ||
            !copy_account(acct, &resp->get_device_list->account_key,
                          &resp->get_device_list->device_list)) {
            sc_api_account_clear(acct);
            set_malformed(r, "device list answer");
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

/* ------------------------------------------------------------ bundles */

static bool copy_bytes(uint8_t *dst, size_t want, const ProtobufCBinaryData *src)
{
    if (src->len != want)
        return false;
    memcpy(dst, src->data, want);
    return true;
}

static bool copy_bundle(sc_api_bundle *o, const Sotto__Api__DeviceBundle *d)
{
    memset(o, 0, sizeof *o);
    o->device_id = d->device_id;
    o->registration_id = d->registration_id;
    o->added_by = d->added_by;
    if (!copy_bytes(o->identity_key, sizeof o->identity_key, &d->identity_key) ||
        !copy_bytes(o->auth_key, sizeof o->auth_key, &d->auth_key))
        return false;
    if (d->signed_prekey) {
        if (!copy_bytes(o->signed_prekey, sizeof o->signed_prekey, &d->signed_prekey->public_key) ||
            !copy_bytes(o->signed_prekey_signature, sizeof o->signed_prekey_signature,
                        &d->signed_prekey->signature))
            return false;
        o->signed_prekey_id = d->signed_prekey->id;
        o->has_signed_prekey = true;
    }
    if (d->prekey) {
        if (!copy_bytes(o->prekey, sizeof o->prekey, &d->prekey->public_key))
            return false;
        o->prekey_id = d->prekey->id;
        o->has_prekey = true;
    }
    if (d->add_signature.len != 0) {
        if (!copy_bytes(o->add_signature, sizeof o->add_signature, &d->add_signature))
            return false;
        o->has_add_signature = true;
    }
    return true;
}

sc_api_outcome sc_api_get_bundles(sc_client *c, const char *username, uint32_t device_id,
                                  sc_api_bundle **out, size_t *n, sc_api_account *acct,
                                  sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__GetBundleRequest gb = SOTTO__API__GET_BUNDLE_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    *out = NULL;
    *n = 0;
    if (acct)
        memset(acct, 0, sizeof *acct);
    gb.username = (char *)username;
    gb.device_id = device_id;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_BUNDLE;
    f.get_bundle = &gb;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__GetBundleResponse *g = resp->get_bundle;
        size_t count = g ? g->n_devices : 0;
        if (g == NULL) {
            set_malformed(r, "key bundle answer");
        } else if ((*out = calloc(count ? count : 1, sizeof **out)) == NULL) {
            set_network(r, "out of memory");
        } else {
            for (size_t i = 0; i < count; i++) {
                if (!copy_bundle(&(*out)[i], g->devices[i])) {
                    free(*out);
                    *out = NULL;
                    count = 0;
                    snprintf(r->error, sizeof r->error,
                             "the server sent a malformed key bundle for %s", username);
                    r->outcome = SC_API_REFUSED;
                    r->status = -1;
                    break;
                }
            }
            *n = count;
            if (*out && acct && !copy_account(acct, &g->account_key, &g->device_list)) {
                free(*out);
                *out = NULL;
                *n = 0;
                set_malformed(r, "account key");
            }
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

/* ------------------------------------------------------------ send */

/* One SendRequest: identified over c's connection (conn NULL, token NULL),
 * or sealed over conn with the recipient's delivery token. */
static sc_api_outcome send_request(sc_client *c, sc_conn *conn, const char *destination,
                                   const sc_api_outgoing *msgs, size_t n, const uint8_t token[16],
                                   uint64_t *server_ts, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SendRequest sr = SOTTO__API__SEND_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;
    Sotto__Api__OutgoingMessage *mv = calloc(n ? n : 1, sizeof *mv);
    Sotto__Api__OutgoingMessage **mp = calloc(n ? n : 1, sizeof *mp);

    if (server_ts)
        *server_ts = 0;
    if (mv == NULL || mp == NULL) {
        free(mv);
        free(mp);
        memset(r, 0, sizeof *r);
        return set_network(r, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        sotto__api__outgoing_message__init(&mv[i]);
        mv[i].device_id = msgs[i].device_id;
        mv[i].registration_id = msgs[i].registration_id;
        mv[i].type = msgs[i].type;
        mv[i].body.data = (uint8_t *)msgs[i].body;
        mv[i].body.len = msgs[i].body_len;
        mp[i] = &mv[i];
    }
    sr.destination = (char *)destination;
    sr.n_messages = n;
    sr.messages = mp;
    if (token != NULL) {
        sr.delivery_token.data = (uint8_t *)token;
        sr.delivery_token.len = 16;
    }
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SEND;
    f.send = &sr;
    if ((conn != NULL ? call_conn(conn, &f, &resp, r) : call(c, &f, &resp, r)) == SC_API_OK &&
        server_ts && resp->send)
        *server_ts = resp->send->server_timestamp_ms;
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    free(mv);
    free(mp);
    return r->outcome;
}

sc_api_outcome sc_api_send(sc_client *c, const char *destination, const sc_api_outgoing *msgs,
                           size_t n, uint64_t *server_ts, sc_api_result *r)
{
    return send_request(c, NULL, destination, msgs, n, NULL, server_ts, r);
}

/* ------------------------------------------------------------ sealed sender (v5) */

static bool dup_bytes(uint8_t **dst, size_t *len, const ProtobufCBinaryData *b, size_t max);

sc_api_outcome sc_api_send_sealed(sc_client *c, sc_conn *conn, const char *destination,
                                  const sc_api_outgoing *msgs, size_t n, const uint8_t token[16],
                                  uint64_t *server_ts, sc_api_result *r)
{
    if (conn == NULL) { /* never the logged-in connection: it names the sender */
        memset(r, 0, sizeof *r);
        return set_network(r, "not connected");
    }
    return send_request(c, conn, destination, msgs, n, token, server_ts, r);
}

sc_api_outcome sc_api_sender_certificate(sc_client *c, uint8_t **cert, size_t *cert_len,
                                         uint64_t *expires_ms, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SenderCertificateRequest sq = SOTTO__API__SENDER_CERTIFICATE_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    *cert = NULL;
    *cert_len = 0;
    *expires_ms = 0;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SENDER_CERTIFICATE;
    f.sender_certificate = &sq;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__SenderCertificateResponse *k = resp->sender_certificate;
        if (resp->result_case != SOTTO__API__SERVER_FRAME__RESULT_SENDER_CERTIFICATE || k == NULL ||
            k->certificate.len == 0 ||
            !dup_bytes(cert, cert_len, &k->certificate, SOTTO_CERT_MAX_BYTES))
            set_malformed(r, "sender certificate answer");
        else
            *expires_ms = k->expires_ms;
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_set_delivery_token(sc_client *c, const uint8_t *token, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SetDeliveryTokenRequest st = SOTTO__API__SET_DELIVERY_TOKEN_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    st.token.data = (uint8_t *)token;
    st.token.len = token ? 16 : 0;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_DELIVERY_TOKEN;
    f.set_delivery_token = &st;
    call(c, &f, &resp, r);
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

/* ------------------------------------------------------------ profiles */

sc_api_outcome sc_api_set_profile(sc_client *c, const uint8_t *ct, size_t ct_len, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SetProfileRequest sp = SOTTO__API__SET_PROFILE_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    sp.ciphertext.data = (uint8_t *)ct;
    sp.ciphertext.len = ct_len;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_PROFILE;
    f.set_profile = &sp;
    if (call(c, &f, &resp, r) == SC_API_OK &&
        resp->result_case != SOTTO__API__SERVER_FRAME__RESULT_SET_PROFILE)
        set_malformed(r, "set profile answer");
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_get_profile(sc_client *c, const char *username, uint8_t **ct, size_t *ct_len,
                                  sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__GetProfileRequest gp = SOTTO__API__GET_PROFILE_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    *ct = NULL;
    *ct_len = 0;
    gp.username = (char *)username;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_PROFILE;
    f.get_profile = &gp;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__GetProfileResponse *g = resp->get_profile;
        if (resp->result_case != SOTTO__API__SERVER_FRAME__RESULT_GET_PROFILE || g == NULL ||
            g->ciphertext.len == 0 || (*ct = malloc(g->ciphertext.len)) == NULL) {
            set_malformed(r, "profile answer");
        } else {
            memcpy(*ct, g->ciphertext.data, g->ciphertext.len);
            *ct_len = g->ciphertext.len;
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

/* ------------------------------------------------------------ attachments */

sc_api_outcome sc_api_attachment_slot(sc_client *c, uint64_t size, char id[33], uint64_t *max_bytes,
                                      sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__AttachmentSlotRequest as = SOTTO__API__ATTACHMENT_SLOT_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    id[0] = '\0';
    *max_bytes = 0;
    as.size = size;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_ATTACHMENT_SLOT;
    f.attachment_slot = &as;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__AttachmentSlotResponse *a = resp->attachment_slot;
        bool ok = a && a->id && strlen(a->id) == 32;
        for (size_t i = 0; ok && i < 32; i++)
            ok = (a->id[i] >= '0' && a->id[i] <= '9') || (a->id[i] >= 'a' && a->id[i] <= 'f');
        if (!ok) {
            set_malformed(r, "attachment slot");
        } else {
            memcpy(id, a->id, 33);
            *max_bytes = a->max_bytes;
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_prekey_status(sc_client *c, uint32_t *remaining, bool *low, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__PrekeyStatusRequest ps = SOTTO__API__PREKEY_STATUS_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    *remaining = 0;
    *low = false;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_PREKEY_STATUS;
    f.prekey_status = &ps;
    if (call(c, &f, &resp, r) == SC_API_OK && resp->prekey_status) {
        *remaining = resp->prekey_status->prekeys_remaining;
        *low = resp->prekey_status->prekeys_low;
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

/* ------------------------------------------------------------ key transparency (v3) */

bool sc_api_kt_unsupported(const sc_api_result *r)
{
    /* a server built with the v3 protocol but without the handlers answers
     * "unknown operation"; one built before v3 does not know the field at
     * all: the frame has no operation for it (and it closes the connection) */
    if (r->outcome != SC_API_REFUSED)
        return false;
    if (r->status == SC_ST_BAD_REQUEST && strstr(r->error, "unknown operation") != NULL)
        return true;
    return r->status == SC_ST_PROTOCOL_ERROR &&
           strstr(r->error, "frame without an operation") != NULL;
}

void sc_api_kt_config_clear(sc_api_kt_cfg *k)
{
    free(k->auditors);
    memset(k, 0, sizeof *k);
}

sc_api_outcome sc_api_kt_config(sc_client *c, sc_api_kt_cfg *out, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtConfigRequest kc = SOTTO__API__KT_CONFIG_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    memset(out, 0, sizeof *out);
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_CONFIG;
    f.kt_config = &kc;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__KtConfigResponse *k = resp->kt_config;
        bool ok = k && copy_bytes(out->server_key, 32, &k->server_key) &&
                  copy_bytes(out->vrf_key, 32, &k->vrf_key) && k->n_auditors <= 8;
        if (ok && k->n_auditors > 0) {
            out->auditors = calloc(k->n_auditors, sizeof *out->auditors);
            ok = out->auditors != NULL;
            for (size_t i = 0; ok && i < k->n_auditors; i++)
                ok = copy_bytes(out->auditors[i], 32, &k->auditors[i]);
            if (ok)
                out->n_auditors = k->n_auditors;
        }
        if (ok) {
            out->log_size = k->log_size;
        } else {
            sc_api_kt_config_clear(out);
            set_malformed(r, "key-transparency configuration");
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

void sc_api_kt_answer_clear(sc_api_kt_answer *a)
{
    free(a->result);
    free(a->head);
    free(a->consistency);
    memset(a, 0, sizeof *a);
}

/* A malloc()ed copy of b (NULL/0 when empty); false when out of memory or
 * longer than max. */
static bool dup_bytes(uint8_t **dst, size_t *len, const ProtobufCBinaryData *b, size_t max)
{
    *dst = NULL;
    *len = 0;
    if (b->len == 0)
        return true;
    if (b->len > max || (*dst = malloc(b->len)) == NULL)
        return false;
    memcpy(*dst, b->data, b->len);
    *len = b->len;
    return true;
}

sc_api_outcome sc_api_kt_search(sc_client *c, const char *username, uint64_t known_size,
                                sc_api_kt_answer *out, sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtSearchRequest ks = SOTTO__API__KT_SEARCH_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    memset(out, 0, sizeof *out);
    ks.username = (char *)username;
    ks.known_size = known_size;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_SEARCH;
    f.kt_search = &ks;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__KtSearchResponse *k = resp->kt_search;
        if (k == NULL || k->result.len == 0 || k->head.len == 0 ||
            !dup_bytes(&out->result, &out->result_len, &k->result, SOTTO_KT_SEARCH_MAX_BYTES) ||
            !dup_bytes(&out->head, &out->head_len, &k->head, SOTTO_KT_AUDITED_HEAD_MAX_BYTES) ||
            !dup_bytes(&out->consistency, &out->consistency_len, &k->consistency,
                       SOTTO_MERKLE_PROOF_MAX_BYTES)) {
            sc_api_kt_answer_clear(out);
            set_malformed(r, "key-directory search answer");
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_kt_head(sc_client *c, uint64_t known_size, sc_api_kt_answer *out,
                              sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtHeadRequest kh = SOTTO__API__KT_HEAD_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    memset(out, 0, sizeof *out);
    kh.known_size = known_size;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_HEAD;
    f.kt_head = &kh;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__KtHeadResponse *k = resp->kt_head;
        if (k == NULL || k->head.len == 0 ||
            !dup_bytes(&out->head, &out->head_len, &k->head, SOTTO_KT_AUDITED_HEAD_MAX_BYTES) ||
            !dup_bytes(&out->consistency, &out->consistency_len, &k->consistency,
                       SOTTO_MERKLE_PROOF_MAX_BYTES)) {
            sc_api_kt_answer_clear(out);
            set_malformed(r, "key-directory head answer");
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

sc_api_outcome sc_api_kt_consistency(sc_client *c, uint64_t size1, uint64_t size2, uint8_t **proof,
                                     size_t *proof_len, uint8_t root1[32], uint8_t root2[32],
                                     sc_api_result *r)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtConsistencyRequest kc = SOTTO__API__KT_CONSISTENCY_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;

    *proof = NULL;
    *proof_len = 0;
    memset(root1, 0, 32);
    memset(root2, 0, 32);
    kc.size1 = size1;
    kc.size2 = size2;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_CONSISTENCY;
    f.kt_consistency = &kc;
    if (call(c, &f, &resp, r) == SC_API_OK) {
        const Sotto__Api__KtConsistencyResponse *k = resp->kt_consistency;
        if (k == NULL || !copy_bytes(root1, 32, &k->root1) || !copy_bytes(root2, 32, &k->root2) ||
            !dup_bytes(proof, proof_len, &k->proof, SOTTO_MERKLE_PROOF_MAX_BYTES)) {
            free(*proof);
            *proof = NULL;
            *proof_len = 0;
            memset(root1, 0, 32);
            memset(root2, 0, 32);
            set_malformed(r, "key-directory consistency answer");
        }
    }
    if (resp)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return r->outcome;
}

/* ------------------------------------------------------------ pushes */

static void envelope_from(sc_push *out, const Sotto__Api__Envelope *e)
{
    sc_envelope *v = &out->envelope;
    size_t sl = e->source ? strlen(e->source) : 0;

    out->kind = SC_PUSH_BAD;
    if (e->id.len != sizeof v->id) {
        snprintf(out->error, sizeof out->error, "envelope id of %zu bytes", e->id.len);
        return;
    }
    /* a sealed envelope (type 6) names no sender: it is inside (sealed.c) */
    if ((sl == 0 && e->type != 6) || sl >= sizeof v->source) {
        snprintf(out->error, sizeof out->error, "envelope without a valid sender");
        return;
    }
    v->body = malloc(e->body.len ? e->body.len : 1);
    if (v->body == NULL) {
        snprintf(out->error, sizeof out->error, "out of memory");
        return;
    }
    memcpy(v->id, e->id.data, sizeof v->id);
    v->id_len = sizeof v->id;
    v->server_ts = e->server_timestamp_ms;
    if (sl > 0)
        memcpy(v->source, e->source, sl + 1);
    else
        v->source[0] = '\0';
    v->source_device = e->source_device_id;
    v->type = e->type;
    if (e->body.len)
        memcpy(v->body, e->body.data, e->body.len);
    v->body_len = e->body.len;
    out->kind = SC_PUSH_ENVELOPE;
}

void sc_api_next_push(sc_client *c, int timeout_ms, volatile int *stop, sc_push *out)
{
    Sotto__Api__ServerFrame *f = NULL;
    uint64_t bad_id = 0;
    char why[128] = "";
    int k;

    memset(out, 0, sizeof *out);
    if (c->conn == NULL)
        return;
    k = sc_conn_next_push(c->conn, timeout_ms, stop, &f, &bad_id, why, sizeof why);
    if (k == SC_CONN_PUSH_BAD) {
        out->kind = SC_PUSH_BAD;
        out->push_id = bad_id;
        snprintf(out->error, sizeof out->error, "%s", why);
        return;
    }
    if (k != SC_CONN_PUSH_FRAME || f == NULL)
        return;
    out->push_id = f->id;
    if (f->push == NULL) {
        out->kind = SC_PUSH_BAD;
        snprintf(out->error, sizeof out->error, "push without an envelope");
    } else {
        envelope_from(out, f->push);
    }
    sotto__api__server_frame__free_unpacked(f, NULL);
}

int sc_api_ack(sc_client *c, uint64_t push_id)
{
    return c->conn ? sc_conn_ack(c->conn, push_id) : -1;
}

int sc_api_flush(sc_client *c, int timeout_ms)
{
    return c->conn ? sc_conn_flush(c->conn, timeout_ms) : -1;
}
