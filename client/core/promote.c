/*
 * client/core/promote.c -- handing the account key to another device of the
 * account (`sotto promote DEVICE_ID`, docs/protocol.md "Promoting another
 * device"):
 *
 *  - sc_promote, on the primary: one send to the account's own devices (the
 *    server wants every device covered) in which the target device's
 *    ciphertext carries SyncMessage.AccountKeyTransfer with the private key
 *    and every other device's the same message without it. Nothing is
 *    queued: a send that fails is reported and the user runs it again.
 *  - on the target (sc_promote_handle): the key is kept only when it comes
 *    from a listed device of our own account (sc_accept_envelope vetted the
 *    sender), names this device, and derives the account key this device
 *    pinned; then this device is a primary too and confirms with
 *    SyncMessage.AccountKeyReceived (queued like any sync message).
 *  - on the old primary: that confirmation, from the target device and for
 *    the transfer it sent last (client_config "promote_pending"), deletes
 *    its private key. Until then both hold it, so the key is never lost to
 *    a transfer that did not arrive.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "sotto/error.h"

/* client_config "promote_pending": "TARGET TIMESTAMP" of the last transfer
 * this primary sent, until the target confirms it. */
#define PENDING_KEY "promote_pending"

static int pending_get(sc_client *c, uint32_t *target, uint64_t *ts)
{
    char *v = NULL, *end = NULL;
    unsigned long t;
    unsigned long long s;
    int rc = sc_cfg_get_text(c, PENDING_KEY, &v);

    *target = 0;
    *ts = 0;
    if (rc != SC_OK)
        return rc;
    t = strtoul(v, &end, 10);
    if (end != v && *end == ' ') {
        const char *p = end + 1;
        s = strtoull(p, &end, 10);
        if (end != p && *end == '\0' && t > 0 && t <= UINT32_MAX) {
            *target = (uint32_t)t;
            *ts = (uint64_t)s;
        }
    }
    free(v);
    return *target != 0 ? SC_OK : SC_E_NOT_FOUND; /* a damaged value confirms nothing */
}

static int pending_set(sc_client *c, uint32_t target, uint64_t ts)
{
    char v[48];

    snprintf(v, sizeof v, "%" PRIu32 " %" PRIu64, target, ts);
    return sc_cfg_set_text(c, PENDING_KEY, v);
}

/* Packs ct into a new buffer (wipe it: it may hold the private key). */
static int pack(sc_client *c, const Sotto__Content__Content *ct, uint8_t **out, size_t *len)
{
    *len = sotto__content__content__get_packed_size(ct);
    *out = malloc(*len ? *len : 1);
    if (*out == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    sotto__content__content__pack(ct, *out);
    return SC_OK;
}

static void wipe_free(uint8_t *p, size_t n)
{
    if (p) {
        sodium_memzero(p, n);
        free(p);
    }
}

/* The highest device id this account gave out that we know of: the new
 * primary must never give a removed device's id to a new one. */
static uint32_t last_device_id(sc_client *c, const sotto_device_list *l)
{
    uint64_t last = 0;
    uint32_t id = 1;

    if (sc_cfg_get_u64(c, "last_device_id", &last) == SC_OK && last <= UINT32_MAX && last > id)
        id = (uint32_t)last;
    for (size_t i = 0; i < l->n_devices; i++)
        if (l->devices[i].device_id > id)
            id = l->devices[i].device_id;
    return id;
}

int sc_promote(sc_client *c, uint32_t device_id)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__AccountKeyTransfer t =
        SOTTO__CONTENT__SYNC_MESSAGE__ACCOUNT_KEY_TRANSFER__INIT;
    sotto_device_list l;
    sotto_key_pair kp;
    uint8_t *one = NULL, *rest = NULL;
    size_t one_len = 0, rest_len = 0;
    char *prev = NULL;
    uint64_t ts;
    int rc, e;

    memset(&kp, 0, sizeof kp);
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (!sc_is_primary(c))
        return sc_fail(c, SC_E_STATE,
                       "this device does not hold the account key: only the primary device can"
                       " promote another");
    if (device_id == c->device_id)
        return sc_fail(c, SC_E_STATE, "device %u is this device: it holds the account key",
                       device_id);
    rc = sc_connect(c);
    if (rc == SC_OK)
        rc = sc_account_refresh(c, c->username, &l);
    if (rc != SC_OK)
        return rc;
    if (sotto_device_list_find(&l, device_id) == NULL)
        return sc_fail(c, SC_E_STATE,
                       "device %u is not in your account's signed device list (version %llu):"
                       " see `sotto devices`",
                       device_id, (unsigned long long)l.version);
    rc = sc_account_key_load(c, &kp);
    if (rc != SC_OK)
        return rc;
    ts = sc_next_timestamp(c);
    t.target_device_id = device_id;
    t.account_public_key.data = kp.pub.bytes;
    t.account_public_key.len = SOTTO_PUBLIC_KEY_BYTES;
    t.last_device_id = last_device_id(c, &l);
    sync.account_key_transfer = &t;
    ct.timestamp = ts;
    ct.sync = &sync;
    /* the other devices' copy: without the private key */
    rc = pack(c, &ct, &rest, &rest_len);
    if (rc == SC_OK) {
        t.account_private_key.data = kp.priv;
        t.account_private_key.len = sizeof kp.priv;
        rc = pack(c, &ct, &one, &one_len);
        t.account_private_key.data = NULL;
        t.account_private_key.len = 0;
    }
    sotto_key_pair_wipe(&kp);
    /* recorded before sending: a confirmation read by another process (a
     * running listen) as soon as the transfer arrived finds it */
    if (rc == SC_OK && (e = sc_cfg_get_text(c, PENDING_KEY, &prev)) != SC_OK && e != SC_E_NOT_FOUND)
        rc = e;
    if (rc == SC_OK)
        rc = pending_set(c, device_id, ts);
    if (rc == SC_OK) {
        rc = sc_deliver_split(c, c->username, device_id, one, one_len, rest, rest_len);
        if (rc != SC_OK) {
            /* not sent: the earlier transfer (if any) is the one to confirm */
            char why[sizeof c->err];
            snprintf(why, sizeof why, "%s", c->err);
            if (prev)
                (void)sc_cfg_set_text(c, PENDING_KEY, prev);
            else
                (void)sc_cfg_delete(c, PENDING_KEY);
            snprintf(c->err, sizeof c->err, "%s", why);
        }
        if (rc == SC_E_NOT_FOUND)
            rc = SC_E_STATE; /* the target cannot be reached: a state of the account */
    }
    free(prev);
    wipe_free(one, one_len);
    wipe_free(rest, rest_len);
    return rc;
}

/* A notice in our own conversation, to be shown with the envelope. */
static int notice(sc_client *c, const sc_envelope *e, const char *code, const char *text,
                  int64_t *rowid)
{
    return sc_notice_row(c, c->username, e->source_device, e->server_ts, code, text, rowid);
}

/* Confirms to our own devices that this device holds the account key. */
static int confirm(sc_client *c, uint64_t transfer_ts)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__AccountKeyReceived r =
        SOTTO__CONTENT__SYNC_MESSAGE__ACCOUNT_KEY_RECEIVED__INIT;

    r.target_device_id = c->device_id;
    r.transfer_timestamp = transfer_ts;
    sync.account_key_received = &r;
    ct.timestamp = sc_next_timestamp(c);
    ct.sync = &sync;
    return sc_enqueue_content(c, c->username, &ct, 0);
}

static int transfer_received(sc_client *c, const sc_envelope *e, uint64_t ts,
                             const Sotto__Content__SyncMessage__AccountKeyTransfer *t,
                             int64_t *rowid)
{
    sotto_public_key pinned, carried;
    sotto_key_pair kp;
    uint64_t last = 0;
    char text[256];
    int rc = sc_own_account_key(c, &pinned);

    if (rc == SC_E_NOT_FOUND ||
        (rc == SC_OK && (t->account_public_key.len != SOTTO_PUBLIC_KEY_BYTES ||
                         sotto_public_key_decode(&carried, t->account_public_key.data,
                                                 t->account_public_key.len) != SOTTO_OK ||
                         !sotto_public_key_equal(&carried, &pinned)))) {
        snprintf(text, sizeof text,
                 "device %u of your account sent an account key transfer for another account"
                 " key than yours: it was ignored",
                 e->source_device);
        return notice(c, e, "primary_refused", text, rowid);
    }
    if (rc != SC_OK)
        return rc;
    if (t->target_device_id != c->device_id) {
        /* for another device: whatever this copy holds is not kept */
        snprintf(text, sizeof text,
                 "device %u of your account is now the primary (device %u handed it the account"
                 " key)",
                 t->target_device_id, e->source_device);
        return notice(c, e, "primary_changed", text, rowid);
    }
    if (t->account_private_key.len != SOTTO_PRIVATE_KEY_BYTES ||
        sotto_key_pair_from_private(&kp, t->account_private_key.data) != SOTTO_OK) {
        snprintf(text, sizeof text,
                 "device %u of your account sent this device an account key transfer without a"
                 " valid private key: nothing was stored",
                 e->source_device);
        return notice(c, e, "primary_refused", text, rowid);
    }
    if (!sotto_public_key_equal(&kp.pub, &pinned)) {
        sotto_key_pair_wipe(&kp);
        snprintf(text, sizeof text,
                 "device %u of your account sent this device a private key that is not your"
                 " account key's: nothing was stored",
                 e->source_device);
        return notice(c, e, "primary_refused", text, rowid);
    }
    rc = sc_cfg_set_blob(c, "account_sk", kp.priv, sizeof kp.priv);
    sotto_key_pair_wipe(&kp);
    if (rc == SC_OK && (rc = sc_cfg_get_u64(c, "last_device_id", &last)) == SC_E_NOT_FOUND)
        rc = SC_OK;
    if (rc == SC_OK && t->last_device_id > last)
        rc = sc_cfg_set_u64(c, "last_device_id", t->last_device_id);
    if (rc == SC_OK)
        rc = confirm(c, ts);
    if (rc != SC_OK)
        return rc;
    snprintf(text, sizeof text,
             "this device now holds the account key (primary): it can link and remove devices"
             " and make backups; device %u gives the key up when it sees this device's"
             " confirmation",
             e->source_device);
    return notice(c, e, "primary_received", text, rowid);
}

static int confirmation_received(sc_client *c, const sc_envelope *e,
                                 const Sotto__Content__SyncMessage__AccountKeyReceived *r,
                                 int64_t *rowid)
{
    uint32_t target = 0;
    uint64_t ts = 0;
    char text[256];
    int rc;

    /* a device confirms for itself only, and only the transfer we sent */
    if (r->target_device_id != e->source_device)
        return SC_OK;
    rc = pending_get(c, &target, &ts);
    if (rc == SC_E_NOT_FOUND ||
        (rc == SC_OK && (target != e->source_device || ts != r->transfer_timestamp)))
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    rc = sc_cfg_delete(c, "account_sk");
    if (rc == SC_OK)
        rc = sc_cfg_delete(c, PENDING_KEY);
    if (rc != SC_OK)
        return rc;
    snprintf(text, sizeof text,
             "device %u confirmed: it is now the primary; this device no longer holds the"
             " account key",
             e->source_device);
    return notice(c, e, "primary_confirmed", text, rowid);
}

int sc_promote_handle(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                      int64_t *rowid)
{
    const Sotto__Content__SyncMessage *s = ct->sync;

    *rowid = 0;
    if (s == NULL || c->username == NULL || strcmp(e->source, c->username) != 0 ||
        e->source_device == c->device_id)
        return SC_OK;
    if (s->account_key_transfer)
        return transfer_received(c, e, ct->timestamp, s->account_key_transfer, rowid);
    if (s->account_key_received)
        return confirmation_received(c, e, s->account_key_received, rowid);
    return SC_OK;
}
