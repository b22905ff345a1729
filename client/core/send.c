/*
 * client/core/send.c -- sending: the outgoing queue, bundle fetching with
 * trust checks, per-device encryption and the missing/extra/stale retry
 * loop (docs/api.md "Sending").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "api.h"
#include "everyday.h"
#include "internal.h"
#include "outupload.h"
#include "retry.h"
#include "sotto/account.h"
#include "sotto/error.h"

static sotto_address addr_of(const char *name, uint32_t dev)
{
    sotto_address a = {name, strlen(name), dev};
    return a;
}

/*
 * A device's identity key that a list signed by the account's pinned key
 * names is trusted: safety numbers cover account keys, so a contact who
 * links a device or reinstalls one keeps the same safety number
 * (docs/protocol.md "Account key and device list"). The account key itself
 * is what `trust` accepts.
 */
int sc_trust_vouched(sc_client *c, const char *name, const sotto_device_entry *e)
{
    sotto_address a = addr_of(name, e->device_id);
    sotto_public_key known;
    int r = c->ps.identity.get(c->ps.identity.user_data, &a, &known);

    if (r == SOTTO_OK && sotto_public_key_equal(&known, &e->identity_key))
        return SC_OK;
    if (r != SOTTO_OK && r != SOTTO_ERR_NOT_FOUND)
        return sc_fail(c, SC_E_STORE, "cannot read the trusted identity of %s", name);
    if (c->ps.identity.save(c->ps.identity.user_data, &a, &e->identity_key) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot save the identity of %s device %u", name,
                       e->device_id);
    /* a device with new keys (reinstalled): its old session is over */
    if (r == SOTTO_OK && sotto_session_delete(&c->ps, &a) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot delete a session");
    return sc_contact_touch(c, name, e->device_id);
}

/* A bundle device must be in the account's accepted signed list, with the
 * same keys and registration id; otherwise the server is offering a device
 * the account's owner did not authorise. */
static int check_device(sc_client *c, const char *name, const sc_api_bundle *d,
                        const sotto_device_list *l)
{
    const sotto_device_entry *e = sotto_device_list_find(l, d->device_id);

    if (e == NULL)
        return sc_fail(c, SC_E_UNTRUSTED,
                       "the server offered device %u of %s, which %s's signed device list"
                       " (version %llu) does not contain: refusing to send",
                       d->device_id, name, name, (unsigned long long)l->version);
    if (sodium_memcmp(e->identity_key.bytes, d->identity_key, SOTTO_PUBLIC_KEY_BYTES) != 0 ||
        sodium_memcmp(e->auth_key, d->auth_key, sizeof e->auth_key) != 0 ||
        e->registration_id != d->registration_id)
        return sc_fail(c, SC_E_UNTRUSTED,
                       "the server offered device %u of %s with keys that %s's signed device"
                       " list (version %llu) does not name: refusing to send",
                       d->device_id, name, name, (unsigned long long)l->version);
    return sc_trust_vouched(c, name, e);
}

/* Starts a session from one checked bundle. */
static int start_session(sc_client *c, const char *name, const sc_api_bundle *d)
{
    sotto_prekey_bundle b;
    sotto_address a = addr_of(name, d->device_id);
    int rc;

    memset(&b, 0, sizeof b);
    if (!d->has_signed_prekey ||
        sotto_public_key_decode(&b.identity_key, d->identity_key, sizeof d->identity_key) ||
        sotto_public_key_decode(&b.signed_prekey, d->signed_prekey, sizeof d->signed_prekey))
        return sc_fail(c, SC_E_SERVER, "the server sent a malformed key bundle for %s", name);
    b.registration_id = d->registration_id;
    b.device_id = d->device_id;
    b.signed_prekey_id = d->signed_prekey_id;
    memcpy(b.signed_prekey_signature, d->signed_prekey_signature, SOTTO_SIGNATURE_BYTES);
    if (d->has_prekey) {
        if (sotto_public_key_decode(&b.prekey, d->prekey, sizeof d->prekey) != SOTTO_OK)
            return sc_fail(c, SC_E_SERVER, "malformed one-time prekey for %s", name);
        b.has_prekey = true;
        b.prekey_id = d->prekey_id;
    }
    rc = sotto_session_process_bundle(&c->ps, &a, &b);
    if (rc == SOTTO_ERR_UNTRUSTED_IDENTITY) {
        (void)sc_pending_identity_set(c, name, d->device_id, &b.identity_key);
        return sc_fail(c, SC_E_UNTRUSTED, "safety number with %s changed: run `sotto trust %s`",
                       name, name);
    }
    if (rc != SOTTO_OK)
        return sc_fail(c, SC_E_SERVER, "bad key bundle from %s device %u: %s", name, d->device_id,
                       sotto_strerror(rc));
    return sc_contact_touch(c, name, d->device_id);
}

/* Fetches bundles of `name` (device 0 = all), checks the account key and
 * signed list that come with them, checks every device against the list
 * and starts sessions. Nothing is started when any device fails. */
static int fetch_bundles(sc_client *c, const char *name, uint32_t device_id)
{
    bool self = c->username && strcmp(name, c->username) == 0;
    sc_api_bundle *b = NULL;
    sc_api_account acct;
    sc_api_result r;
    sotto_device_list l;
    size_t n = 0;
    int rc;

    if (sc_api_get_bundles(c, name, device_id, &b, &n, &acct, &r) != SC_API_OK) {
        if (r.outcome == SC_API_REFUSED && r.status == SC_ST_NOT_FOUND)
            return sc_fail(c, SC_E_NOT_FOUND, "no such user (or no device with keys): %s", name);
        rc = sc_api_fail(c, &r, "fetching keys");
        sc_api_result_clear(&r);
        return rc;
    }
    rc = sc_account_accept(c, name, &acct, &l);
    sc_api_account_clear(&acct);
    for (size_t i = 0; rc == SC_OK && i < n; i++)
        if (!(self && b[i].device_id == c->device_id))
            rc = check_device(c, name, &b[i], &l);
    for (size_t i = 0; rc == SC_OK && i < n; i++)
        if (!(self && b[i].device_id == c->device_id))
            rc = start_session(c, name, &b[i]);
    free(b);
    return rc;
}

static bool has_id(const uint32_t *ids, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static int session_devices(sc_client *c, const char *name, uint32_t **ids, size_t *n)
{
    bool self = c->username && strcmp(name, c->username) == 0;
    size_t k = 0;

    *ids = NULL;
    *n = 0;
    if (c->ps.session.device_ids(c->ps.session.user_data, name, strlen(name), ids, n) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot list sessions");
    for (size_t i = 0; i < *n; i++) {
        bool ok = false;
        sotto_address a = addr_of(name, (*ids)[i]);
        if (self && (*ids)[i] == c->device_id)
            continue;
        if (sotto_session_exists(&c->ps, &a, &ok) == SOTTO_OK && ok)
            (*ids)[k++] = (*ids)[i];
    }
    *n = k;
    return SC_OK;
}

/* Devices of `dest` marked for a fresh session: fetch their bundle now
 * (sotto_session_process_bundle archives the old state). */
static int reset_sessions(sc_client *c, const char *dest)
{
    uint32_t ids[16];
    size_t n = 0;
    int rc = sc_session_reset_list(c, dest, ids, 16, &n);

    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        rc = fetch_bundles(c, dest, ids[i]);
        if (rc == SC_E_NOT_FOUND) {
            /* that device is gone: forget its session */
            sotto_address a = addr_of(dest, ids[i]);
            if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
                return sc_fail(c, SC_E_STORE, "cannot delete a session");
            rc = SC_OK;
        }
        if (rc == SC_OK)
            rc = sc_session_reset_remove(c, dest, ids[i]);
    }
    return rc;
}

/* ------------------------------------------------------------ sending in steps
 *
 * sc_deliver() sends one padded content to every device of an account in
 * four steps, each a function below: ensure_sessions (pending resets, then
 * bundles when there is no session), encrypt_all (one transaction),
 * sc_api_send, apply_mismatch. sc_deliver_split() is the same send with
 * another content for one of the devices (the account key transfer of
 * `promote`). The policy -- how often a mismatch is repaired, and what is
 * final -- is deliver_payload's alone; nothing here sleeps:
 * a server that asks to wait gives SC_E_RETRY with sc_retry_at().
 */

/* Step 1: the device ids of `dest` to encrypt to: those of its current
 * signed list with a session, starting sessions from fresh bundles for the
 * listed devices without one. A session with a device the list no longer
 * holds is deleted (a removed device gets nothing). *ids malloc()ed; *n 0
 * only for our own account without other devices. */
/* Whether our session with listed device e was made with e's keys. A
 * session with another identity key or registration id under the same id
 * (the id given to a new device, a device reinstalled or restored) is
 * ended: the new keys are trusted because the list names them, and a new
 * session is started from a bundle that must match them. */
static int session_matches_list(sc_client *c, const char *dest, const sotto_device_entry *e)
{
    sotto_address a = addr_of(dest, e->device_id);
    uint32_t regid = 0;
    int rc = sc_trust_vouched(c, dest, e); /* ends the session when the identity changed */

    if (rc != SC_OK)
        return rc;
    if (sotto_session_remote_registration_id(&c->ps, &a, &regid) == SOTTO_OK &&
        regid != e->registration_id && sotto_session_delete(&c->ps, &a) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot delete a session");
    return SC_OK;
}

static int ensure_sessions(sc_client *c, const char *dest, uint32_t **ids, size_t *n)
{
    bool self = c->username && strcmp(dest, c->username) == 0;
    sotto_device_list l;
    uint32_t *have = NULL;
    size_t nh = 0;
    int rc = sc_account_refresh(c, dest, &l);

    *ids = NULL;
    *n = 0;
    if (rc == SC_OK)
        rc = session_devices(c, dest, &have, &nh);
    for (size_t i = 0; rc == SC_OK && i < nh; i++) {
        const sotto_device_entry *e = sotto_device_list_find(&l, have[i]);
        if (e != NULL) {
            rc = session_matches_list(c, dest, e);
        } else {
            /* a device the list no longer holds gets nothing */
            sotto_address a = addr_of(dest, have[i]);
            if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
                rc = sc_fail(c, SC_E_STORE, "cannot delete a session");
        }
    }
    free(have);
    have = NULL;
    if (rc == SC_OK)
        rc = session_devices(c, dest, &have, &nh);
    for (size_t i = 0; rc == SC_OK && i < l.n_devices; i++) {
        uint32_t id = l.devices[i].device_id;
        if ((self && id == c->device_id) || has_id(have, nh, id))
            continue;
        rc = fetch_bundles(c, dest, id);
        if (rc == SC_E_NOT_FOUND)
            rc = SC_OK; /* listed, but no keys uploaded yet: the server says */
    }
    free(have);
    if (rc == SC_OK)
        rc = session_devices(c, dest, ids, n);
    if (rc == SC_OK && *n == 0 && !self)
        rc = sc_fail(c, SC_E_NOT_FOUND, "%s has no device to send to", dest);
    return rc;
}

static void free_ciphertexts(sc_api_outgoing *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        free((void *)m[i].body);
    free(m);
}

/* What one send carries: the same padded content for every device, except
 * that device `one_device` (0: none) gets `one` instead (sc_deliver_split). */
typedef struct payload {
    const uint8_t *all;
    size_t all_len;
    uint32_t one_device;
    const uint8_t *one;
    size_t one_len;
} payload;

/* Step 2: encrypts for every device in one write transaction, so that
 * another process on the same account (a running `listen`) cannot
 * interleave its own read-modify-write of these sessions. */
static int encrypt_all(sc_client *c, const char *dest, const payload *p, const uint32_t *ids,
                       size_t n, sc_api_outgoing **out)
{
    sc_api_outgoing *m = calloc(n ? n : 1, sizeof *m);
    int rc;

    *out = NULL;
    if (m == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    rc = sc_db_begin(c);
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        sotto_address a = addr_of(dest, ids[i]);
        bool one = p->one_device != 0 && ids[i] == p->one_device;
        uint8_t *ct = NULL;
        size_t ct_len = 0;
        int type = 0, e;

        e = sotto_session_encrypt(&c->ps, &a, one ? p->one : p->all, one ? p->one_len : p->all_len,
                                  &ct, &ct_len, &type);
        if (e == SOTTO_OK)
            e = sotto_session_remote_registration_id(&c->ps, &a, &m[i].registration_id);
        m[i].device_id = ids[i];
        m[i].type = (uint32_t)type;
        m[i].body = ct;
        m[i].body_len = ct_len;
        if (e == SOTTO_ERR_UNTRUSTED_IDENTITY)
            /* the session still names an identity the user has not
             * accepted (libsotto checks trust on encrypt) */
            rc = sc_fail(c, SC_E_UNTRUSTED, "safety number with %s changed: run `sotto trust %s`",
                         dest, dest);
        else if (e != SOTTO_OK)
            rc = sc_fail(c, SC_E_INTERNAL, "cannot encrypt for %s device %u: %s", dest, ids[i],
                         sotto_strerror(e));
    }
    if (rc == SC_OK)
        rc = sc_db_commit(c);
    else
        sc_db_rollback(c);
    if (rc != SC_OK) {
        free_ciphertexts(m, n);
        return rc;
    }
    *out = m;
    return SC_OK;
}

/* Step 4: what the server said about the device set: forget extra devices,
 * restart stale ones, start sessions with missing ones. */
static int apply_mismatch(sc_client *c, const char *dest, const sc_api_mismatch *m)
{
    int rc = SC_OK;

    for (size_t i = 0; i < m->n_extra; i++) {
        sotto_address a = addr_of(dest, m->extra[i]);
        if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
            return sc_fail(c, SC_E_STORE, "cannot delete a session");
        rc = sc_contact_forget_device(c, dest, m->extra[i]);
        if (rc != SC_OK)
            return rc;
    }
    for (size_t i = 0; rc == SC_OK && i < m->n_stale; i++) {
        sotto_address a = addr_of(dest, m->stale[i]);
        if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
            return sc_fail(c, SC_E_STORE, "cannot delete a session");
        rc = fetch_bundles(c, dest, m->stale[i]);
    }
    for (size_t i = 0; rc == SC_OK && i < m->n_missing; i++)
        rc = fetch_bundles(c, dest, m->missing[i]);
    return rc;
}

/* The delivery policy of sc_deliver and sc_deliver_split: the four steps,
 * a mismatch repaired at most SC_SEND_RETRIES times. With p->one_device
 * set, that device must be among those encrypted to (else SC_E_NOT_FOUND:
 * nothing is sent). */
static int deliver_payload(sc_client *c, const char *dest, const payload *p, uint64_t *server_ts)
{
    uint8_t token[16] = {0};
    bool seal = false;
    int rc = reset_sessions(c, dest);

    /* sealed sender (sealed.c): between accepted contacts the server gets
     * no sender; our own devices and strangers get identified sends */
    if (rc == SC_OK)
        rc = sc_sealed_decide(c, dest, &seal, token);

    for (int attempt = 0; rc == SC_OK; attempt++) {
        sc_api_outgoing *msgs = NULL;
        uint32_t *ids = NULL;
        sc_api_outcome outcome;
        sc_api_result r;
        size_t n = 0;

        if (attempt > SC_SEND_RETRIES) {
            /* the device set kept changing under us: not final, try later */
            c->retry_at_ms = sc_now_ms() + 1000;
            rc = sc_fail(c, SC_E_RETRY, "send to %s: the device list kept changing", dest);
            break;
        }
        rc = ensure_sessions(c, dest, &ids, &n);
        if (rc == SC_OK && p->one_device != 0 && !has_id(ids, n, p->one_device))
            rc = sc_fail(c, SC_E_NOT_FOUND,
                         "device %u of %s has no keys on the server yet (it has not logged in"
                         " since it was linked): nothing was sent",
                         p->one_device, dest);
        if (rc == SC_OK && n > 0)
            rc = encrypt_all(c, dest, p, ids, n, &msgs);
        free(ids);
        if (rc != SC_OK || n == 0)
            break;
        if (seal) {
            outcome = sc_sealed_send(c, dest, msgs, n, token, server_ts, &r);
            if (outcome == SC_API_REFUSED &&
                (r.status == SC_ST_UNAUTHENTICATED || r.status == SC_SEALED_LOCAL_REFUSAL)) {
                /* their token is stale (a new profile key), or we cannot
                 * seal now (no valid certificate): this send goes identified,
                 * with the same ciphertexts (none of them was queued) */
                if (r.status == SC_ST_UNAUTHENTICATED)
                    (void)sc_sealed_note_refused(c, dest, token);
                seal = false;
                sc_api_result_clear(&r);
                outcome = sc_api_send(c, dest, msgs, n, server_ts, &r);
            } else if (outcome == SC_API_RETRY &&
                       (r.status == SC_ST_QUEUE_FULL || r.status == SC_ST_RATE_LIMITED)) {
                /* the recipient's sealed quota or rate is shared by every
                 * sealed sender (the server cannot tell them apart), so
                 * anyone holding their token can fill it: this send goes
                 * identified at once, under our own per-sender caps (none
                 * of the ciphertexts was queued). Only this send: the next
                 * one tries sealed again. */
                sc_sealed_note_busy(c, dest, r.status == SC_ST_QUEUE_FULL);
                sc_api_result_clear(&r);
                outcome = sc_api_send(c, dest, msgs, n, server_ts, &r);
            }
        } else {
            outcome = sc_api_send(c, dest, msgs, n, server_ts, &r);
        }
        free_ciphertexts(msgs, n);
        if (outcome == SC_API_MISMATCH)
            rc = apply_mismatch(c, dest, &r.mismatch);
        else if (outcome != SC_API_OK)
            rc = sc_api_fail(c, &r, "send");
        sc_api_result_clear(&r);
        if (outcome != SC_API_MISMATCH)
            break;
    }
    sodium_memzero(token, sizeof token);
    return rc;
}

/* sc_deliver; *server_ts (may be NULL) gets the server's timestamp of the
 * send that was accepted (retry.c names a message by it). */
static int deliver_ts(sc_client *c, const char *dest, const uint8_t *content, size_t len,
                      uint64_t *server_ts)
{
    payload p;
    uint8_t *padded = NULL;
    size_t padded_len = 0;
    int rc;

    if (sc_pad(content, len, &padded, &padded_len) != SC_OK)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    memset(&p, 0, sizeof p);
    p.all = padded;
    p.all_len = padded_len;
    rc = deliver_payload(c, dest, &p, server_ts);
    sodium_memzero(padded, padded_len);
    free(padded);
    return rc;
}

int sc_deliver(sc_client *c, const char *dest, const uint8_t *content, size_t len)
{
    return deliver_ts(c, dest, content, len, NULL);
}

int sc_deliver_split(sc_client *c, const char *dest, uint32_t device_id, const uint8_t *one,
                     size_t one_len, const uint8_t *rest, size_t rest_len)
{
    payload p;
    uint8_t *pone = NULL, *prest = NULL;
    size_t pone_len = 0, prest_len = 0;
    int rc = SC_OK;

    if (device_id == 0)
        return sc_fail(c, SC_E_USAGE, "no device to send to");
    if (sc_pad(one, one_len, &pone, &pone_len) != SC_OK ||
        sc_pad(rest, rest_len, &prest, &prest_len) != SC_OK)
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
    if (rc == SC_OK) {
        memset(&p, 0, sizeof p);
        p.all = prest;
        p.all_len = prest_len;
        p.one_device = device_id;
        p.one = pone;
        p.one_len = pone_len;
        rc = deliver_payload(c, dest, &p, NULL);
    }
    if (pone) {
        sodium_memzero(pone, pone_len);
        free(pone);
    }
    if (prest) {
        sodium_memzero(prest, prest_len);
        free(prest);
    }
    return rc;
}

/* ------------------------------------------------------------ queue */

int sc_enqueue_content(sc_client *c, const char *dest, Sotto__Content__Content *content,
                       int64_t msg_rowid)
{
    uint8_t *gossip = NULL;
    size_t n;
    uint8_t *buf;
    int rc;

    /* our key-transparency head, now and then (gossip.c); without it when
     * that fails: gossip never stops a message */
    if (sc_gossip_attach(c, dest, content, &gossip) != SC_OK)
        gossip = NULL;
    n = sotto__content__content__get_packed_size(content);
    buf = malloc(n ? n : 1);
    if (buf != NULL)
        sotto__content__content__pack(content, buf);
    if (gossip != NULL) {
        /* the same Content goes to the next group member without it */
        content->kt_head.data = NULL;
        content->kt_head.len = 0;
        free(gossip);
    }
    if (buf == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    rc = sc_out_add(c, dest, content->timestamp, buf, n, msg_rowid);
    sodium_memzero(buf, n);
    free(buf);
    return rc;
}

int sc_flush(sc_client *c, size_t *left)
{
    return sc_flush_ex(c, left, 0, NULL);
}

int sc_outbox_count(sc_client *c, size_t *messages)
{
    return sc_out_count_messages(c, messages);
}

/* What a delivery outcome means for the queued row. */
typedef enum { ROW_SENT, ROW_REFUSED, ROW_KEEP, ROW_KEEP_STOP } row_fate;

static row_fate fate_of(int rc, bool kt_wait)
{
    switch (rc) {
    case SC_OK:
        return ROW_SENT;
    case SC_E_NOT_FOUND: /* no such user */
    case SC_E_UNTRUSTED: /* safety number changed: the user sends again after trust */
    case SC_E_SERVER:    /* refused for good (too large, forbidden, ...) */
        return ROW_REFUSED;
    case SC_E_RETRY:
        /* the key directory has not published this contact's keys yet: a
         * wait for this row's contact only, the next rows go on */
        return kt_wait ? ROW_KEEP : ROW_KEEP_STOP;
    case SC_E_NETWORK:
        return ROW_KEEP_STOP; /* the rest stays queued too */
    default:
        return ROW_KEEP; /* a local failure: try again with the next flush */
    }
}

/* Contacts whose keys the key directory has not published yet, met in one
 * flush: their later rows are kept without asking again (in order: none
 * overtakes the one waiting). More than FLUSH_WAITING_MAX are each asked. */
#define FLUSH_WAITING_MAX 16
typedef struct flush_waiting {
    char name[FLUSH_WAITING_MAX][33];
    size_t n;
} flush_waiting;

static bool is_waiting(const flush_waiting *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->name[i], name) == 0)
            return true;
    return false;
}

static void add_waiting(flush_waiting *w, const char *name)
{
    if (w->n < FLUSH_WAITING_MAX && strlen(name) < sizeof w->name[0] && !is_waiting(w, name))
        snprintf(w->name[w->n++], sizeof w->name[0], "%s", name);
}

/* A row carrying a group message or group change: for a member whose
 * safety number changed it stays queued until `trust` (docs/protocol.md
 * "Groups"), in order, instead of being refused like a 1:1 message. */
static bool row_is_group(const sc_out_row *row)
{
    Sotto__Content__Content *ct = sotto__content__content__unpack(NULL, row->len, row->content);
    bool g = ct && ct->data && ct->data->group;

    if (ct)
        sotto__content__content__free_unpacked(ct, NULL);
    return g;
}

int sc_flush_ex(sc_client *c, size_t *left, uint64_t focus_ts, int *focus_rc)
{
    int first_err = SC_OK, rc = SC_OK;
    char focus_msg[sizeof c->err] = "";
    char first_msg[sizeof c->err] = "";
    int64_t last_id = 0;
    flush_waiting waiting;
    sc_out_row row;

    waiting.n = 0;

    if (left)
        *left = 0;
    for (;;) {
        bool self, upload_final = false;
        uint64_t server_ts = 0;
        row_fate fate;

        memset(&row, 0, sizeof row);
        rc = sc_out_next(c, last_id, &row);
        if (rc == SC_E_NOT_FOUND)
            break;
        if (rc != SC_OK)
            return rc;
        last_id = row.id;
        self = c->username && strcmp(row.destination, c->username) == 0;
        rc = sc_connect(c);
        if (rc == SC_OK && is_waiting(&waiting, row.destination)) {
            rc = sc_fail(c, SC_E_RETRY, "waiting until the key directory publishes %s's keys",
                         row.destination);
            c->kt_wait = true;
        } else if (rc == SC_OK) {
            /* a file queued before its upload (outupload.h): uploaded first */
            rc = sc_out_upload_pending(c, &row, &upload_final);
            if (rc == SC_OK)
                rc = deliver_ts(c, row.destination, row.content, row.len, &server_ts);
            /* a message of the history, kept a day for retry requests
             * (retry.c); a failure to keep it never fails the send */
            if (rc == SC_OK && row.msg_id > 0 && !self)
                (void)sc_retry_note_sent(c, row.destination, server_ts, row.content, row.len);
        }
        fate = fate_of(rc, c->kt_wait);
        if (rc == SC_E_RETRY && c->kt_wait)
            add_waiting(&waiting, row.destination);
        if (self && fate == ROW_REFUSED) {
            /* a sync copy our own devices cannot take (a device that
             * changed, no account key known here): dropped; the message
             * itself went to its recipient and stays in the history */
            rc = SC_OK;
            fate = ROW_SENT;
        }
        if (upload_final)
            fate = ROW_REFUSED; /* its file can never go: nor can the message */
        if (fate == ROW_REFUSED && rc == SC_E_UNTRUSTED && !self && row_is_group(&row))
            fate = ROW_KEEP; /* a group member's copy waits for `trust` */
        if (c->group_noting && rc != SC_OK && !self && focus_ts != 0 && row.timestamp == focus_ts)
            sc_group_note(c, row.destination, rc, fate != ROW_SENT && fate != ROW_REFUSED, c->err);
        if (rc != SC_OK && first_err == SC_OK) {
            first_err = rc;
            snprintf(first_msg, sizeof first_msg, "%s", c->err);
        }
        if (rc != SC_OK && focus_rc && *focus_rc == SC_OK && focus_ts != 0 &&
            row.timestamp == focus_ts) {
            *focus_rc = rc;
            snprintf(focus_msg, sizeof focus_msg, "%s", c->err);
        }
        if (fate == ROW_SENT || fate == ROW_REFUSED) {
            int e = sc_out_delete(c, row.id);
            /* a 1:1 message refused for good leaves no history, and its
             * copy for our other devices is not sent either */
            if (e == SC_OK && fate == ROW_REFUSED && row.msg_id > 0)
                e = sc_msg_delete_unsent(c, row.msg_id, row.timestamp, c->username, NULL);
            if (e != SC_OK) {
                sc_out_row_clear(&row);
                return e;
            }
        } else {
            int e = sc_out_bump(c, row.id);
            if (e != SC_OK) {
                sc_out_row_clear(&row);
                return e;
            }
        }
        sc_out_row_clear(&row);
        if (fate == ROW_KEEP_STOP)
            break;
    }
    if (left && (rc = sc_out_count(c, left)) != SC_OK)
        return rc;
    if (focus_rc) {
        /* the caller cares about one message: rows of it never tried
         * (the connection dropped before) count as not sent yet */
        size_t pending = 0;
        if (*focus_rc == SC_OK && (rc = sc_out_count_ts(c, focus_ts, &pending)) != SC_OK)
            return rc;
        if (*focus_rc == SC_OK && pending > 0) {
            *focus_rc = first_err != SC_OK ? first_err : SC_E_NETWORK;
            snprintf(focus_msg, sizeof focus_msg, "%s",
                     first_err != SC_OK ? first_msg : "not sent yet");
        }
        if (*focus_rc != SC_OK)
            snprintf(c->err, sizeof c->err, "%s", focus_msg);
        return *focus_rc;
    }
    if (first_err != SC_OK)
        snprintf(c->err, sizeof c->err, "%s", first_msg);
    return first_err;
}

/* ------------------------------------------------------------ user-level send */

static char *attachments_json(const Sotto__Content__DataMessage *dm, const char *path);

/* Stores our outgoing message in history; rowid out. */
static int store_outgoing(sc_client *c, const char *conv_kind, const char *conv,
                          const Sotto__Content__DataMessage *dm, uint64_t ts, uint32_t expire_s,
                          const char *path, int64_t *rowid)
{
    sc_msg_row m;
    char *extra = attachments_json(dm, path);
    int rc;

    memset(&m, 0, sizeof m);
    m.conv_kind = conv_kind;
    m.conv = conv;
    m.direction = 1;
    m.sender = c->username;
    m.sender_device = c->device_id;
    m.timestamp = ts;
    m.kind = "text";
    m.body = dm->body;
    m.body_len = strlen(dm->body);
    m.extra = extra;
    /* the sender's disappearing timer runs from the send */
    m.expire_s = expire_s;
    m.expires_ms = expire_s ? ts + (uint64_t)expire_s * 1000u : 0;
    rc = sc_msg_insert(c, &m, rowid);
    sc_free_secret_str(extra); /* holds the attachment key */
    return rc;
}

/* The attachments of our own outgoing row: what is shown (names, size, the
 * local path); no key or digest -- the sender never needs them again. */
static char *attachments_json(const Sotto__Content__DataMessage *dm, const char *path)
{
    json_t *o, *arr;
    char *s;

    o = json_object();
    /* quote, mentions (everyday.c); a long text's pointer is left out: the
     * sender's row holds the whole text already */
    sc_data_extra_add(o, dm, false);
    if (dm->n_attachments == 0) {
        s = json_object_size(o) > 0 ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
    }
    arr = json_array();
    for (size_t i = 0; i < dm->n_attachments; i++) {
        const Sotto__Content__AttachmentPointer *p = dm->attachments[i];
        json_t *a = json_object();
        /* a file not uploaded yet (outupload.h) has no server id yet */
        bool pending =
            strncmp(p->id, SC_PENDING_UPLOAD_PREFIX, strlen(SC_PENDING_UPLOAD_PREFIX)) == 0;
        json_object_set_new(a, "id", json_string(pending ? "" : p->id));
        json_object_set_new(a, "size", json_integer((json_int_t)p->size));
        json_object_set_new(a, "content_type", json_string(p->content_type));
        json_object_set_new(a, "file_name", json_string(p->file_name));
        if (path)
            json_object_set_new(a, "path", json_string(path));
        json_array_append_new(arr, a);
    }
    json_object_set_new(o, "attachments", arr);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Is every recipient trusted? */
static int check_trust_all(sc_client *c, char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool any = false;
        if (c->username && strcmp(names[i], c->username) == 0)
            continue;
        if (sc_pending_identity_any(c, names[i], &any) != SC_OK)
            return SC_E_STORE;
        if (any)
            return sc_fail(c, SC_E_UNTRUSTED,
                           "safety number with %s changed: compare it (sotto"
                           " safety-number %s) and run `sotto trust %s` to send again",
                           names[i], names[i], names[i]);
    }
    return SC_OK;
}

/* Queues data message dm for a contact or group, then flushes
 * (everyday.h sc_send_data). */
int sc_send_data(sc_client *c, const char *to, bool to_group, Sotto__Content__DataMessage *dm,
                 const char *local_path, const sc_send_options *o, bool no_row, uint64_t *ts_out,
                 int64_t *rowid_out)
{
    Sotto__Content__EditMessage em = SOTTO__CONTENT__EDIT_MESSAGE__INIT;
    sc_keep keep;
    uint32_t expire_s = 0;
    const char *full_body = NULL;
    const char *conv_kind = to_group ? "group" : "contact";
    Sotto__Content__Content content = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    Sotto__Content__SyncMessage__Sent sent = SOTTO__CONTENT__SYNC_MESSAGE__SENT__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    uint8_t gid[SC_GROUP_ID_BYTES];
    char gid_hex[33];
    char **members = NULL;
    size_t n_members = 0;
    char *gname = NULL;
    bool active = false;
    char *one[1];
    int64_t rowid = 0;
    uint64_t ts;
    size_t left = 0;
    int rc;

    memset(&keep, 0, sizeof keep);
    if (rowid_out)
        *rowid_out = 0;
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (to_group) {
        rc = sc_group_resolve(c, to, gid);
        if (rc != SC_OK)
            return rc;
        rc = sc_group_members(c, gid, &members, &n_members, &gname, &active);
        if (rc != SC_OK)
            return rc;
        if (!active) {
            rc = sc_fail(c, SC_E_STATE, "you are no longer a member of group %s", to);
            goto out;
        }
        sc_hex(gid, sizeof gid, gid_hex);
        /* a member whose safety number changed is not refused up front: its
         * copy stays queued until `trust` (after any group change queued
         * for it before), the others get the message (sc_group_report) */
        c->group_nst = 0;
    } else {
        if (!sc_username_valid(to))
            return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", to);
        one[0] = (char *)to;
        rc = check_trust_all(c, one, 1);
    }
    if (rc != SC_OK)
        goto out;
    /* issue 11 (everyday.h): quote, mentions, long text; may refuse */
    if (!no_row) {
        rc = sc_msgops_decorate(c, conv_kind, to_group ? gid_hex : to, dm, o, &keep);
        full_body = dm->body; /* the sender's row keeps a long text whole */
        if (rc == SC_OK)
            rc = sc_longtext_decorate(c, dm, &keep);
        if (rc != SC_OK)
            goto out;
    }
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        goto out;
    ts = sc_next_timestamp(c);
    if (to_group) {
        gc.id.data = gid;
        gc.id.len = sizeof gid;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        gc.revision = sc_group_revision_of(c, gid);
        dm->group = &gc;
    }
    /* writing in a conversation accepts it; the conversation's timer and
     * (to accepted contacts) our profile key ride along (everyday.h) */
    rc = sc_requests_on_send(c, conv_kind, to_group ? gid_hex : to);
    if (rc == SC_OK &&
        (dm->flags & SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_EXPIRATION_TIMER_UPDATE) == 0)
        rc = sc_expire_decorate(c, conv_kind, to_group ? gid_hex : to, dm, &expire_s);
    if (rc == SC_OK)
        rc = sc_profile_decorate(c, conv_kind, to_group ? gid_hex : to, dm, &keep);
    if (rc != SC_OK) {
        sc_db_rollback(c);
        goto out;
    }
    if (o && o->edit_timestamp && !no_row) {
        rc =
            sc_edit_local(c, conv_kind, to_group ? gid_hex : to, o->edit_timestamp, ts, dm, &rowid);
        em.target_timestamp = o->edit_timestamp;
        em.data = dm;
        content.edit = &em;
    } else {
        if (!no_row) {
            /* a long text (longtext.c): the row holds the whole text, the
             * message the cut body and the pointer */
            char *cut = dm->body;
            if (dm->long_text && full_body)
                dm->body = (char *)full_body;
            rc = store_outgoing(c, conv_kind, to_group ? gid_hex : to, dm, ts, expire_s, local_path,
                                &rowid);
            dm->body = cut;
        }
        content.data = dm;
    }
    content.timestamp = ts;
    if (rc == SC_OK && to_group) {
        for (size_t i = 0; rc == SC_OK && i < n_members; i++)
            if (strcmp(members[i], c->username) != 0)
                rc = sc_enqueue_content(c, members[i], &content, rowid);
    } else if (rc == SC_OK && strcmp(to, c->username) != 0) {
        /* no contact row yet: `to` becomes a contact once its keys are
         * fetched (sc_trust_vouched), so a send to an unknown user leaves
         * no contact behind */
        rc = sc_enqueue_content(c, to, &content, rowid);
    }
    /* to ourselves ("note to self"): the history row and the sync copy for
     * our other devices below are all there is to do */
    if (rc == SC_OK) {
        /* a copy for our other devices */
        Sotto__Content__Content sc2 = SOTTO__CONTENT__CONTENT__INIT;
        sent.destination = (char *)(to_group ? "" : to);
        sent.timestamp = ts;
        if (content.edit)
            sent.edit = &em;
        else
            sent.message = dm;
        sync.sent = &sent;
        sc2.timestamp = ts;
        sc2.sync = &sync;
        rc = sc_enqueue_content(c, c->username, &sc2, 0);
    }
    if (rc != SC_OK) {
        sc_db_rollback(c);
        goto out;
    }
    rc = sc_db_commit(c);
    if (rc != SC_OK)
        goto out;
    if (ts_out)
        *ts_out = ts;
    if (rowid_out)
        *rowid_out = rowid;
    {
        int focus = SC_OK;
        if (to_group)
            sc_group_report_begin(c);
        rc = sc_flush_ex(c, &left, ts, &focus);
        if (to_group)
            sc_group_report_end(c, members, n_members, ts);
    }
out:
    sc_keep_release(&keep);
    sc_strv_free(members, n_members);
    free(gname);
    return rc;
}

int sc_send_text(sc_client *c, const char *to, bool to_group, const char *text, size_t len,
                 uint64_t *timestamp_out)
{
    return sc_send_message(c, to, to_group, text, len, NULL, NULL, timestamp_out);
}

static int send_text_opts(sc_client *c, const char *to, bool to_group, const char *text, size_t len,
                          const sc_send_options *o, uint64_t *timestamp_out)
{
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    char *body;
    int rc;

    if (len > SC_MAX_TEXT_BYTES)
        return sc_fail(c, SC_E_USAGE, "text longer than %u bytes", SC_MAX_TEXT_BYTES);
    if (!sc_utf8_valid(text, len))
        return sc_fail(c, SC_E_USAGE, "text is not valid UTF-8 (or contains NUL)");
    body = malloc(len + 1);
    if (body == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    memcpy(body, text, len);
    body[len] = '\0';
    dm.body = body;
    rc = sc_send_data(c, to, to_group, &dm, NULL, o, false, timestamp_out, NULL);
    sodium_memzero(body, len);
    free(body);
    return rc;
}

int sc_send_file(sc_client *c, const char *to, bool to_group, const char *path, const char *text,
                 uint64_t *timestamp_out)
{
    return sc_send_message(c, to, to_group, text, text ? strlen(text) : 0, path, NULL,
                           timestamp_out);
}

static int send_file_opts(sc_client *c, const char *to, bool to_group, const char *path,
                          const char *text, const sc_send_options *o, uint64_t *timestamp_out)
{
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__AttachmentPointer ptr = SOTTO__CONTENT__ATTACHMENT_POINTER__INIT;
    Sotto__Content__AttachmentPointer *pp = &ptr;
    char *abs = NULL;
    int rc;

    if (text && !sc_utf8_valid(text, strlen(text)))
        return sc_fail(c, SC_E_USAGE, "text is not valid UTF-8");
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    /* queued with a pending pointer, uploaded by the flush that sends it
     * (outupload.h): an interrupted upload leaves the message queued */
    rc = sc_pending_pointer(c, path, &ptr);
    if (rc != SC_OK)
        return rc;
    abs = realpath(path, NULL);
    dm.body = (char *)(text ? text : "");
    dm.n_attachments = 1;
    dm.attachments = &pp;
    rc = sc_send_data(c, to, to_group, &dm, abs ? abs : path, o, false, timestamp_out, NULL);
    sc_attachment_pointer_clear(&ptr);
    free(abs);
    return rc;
}

int sc_send_message(sc_client *c, const char *to, bool to_group, const char *text, size_t len,
                    const char *file, const sc_send_options *o, uint64_t *timestamp_out)
{
    char *t = NULL;
    int rc;

    if (file == NULL)
        return send_text_opts(c, to, to_group, text ? text : "", text ? len : 0, o, timestamp_out);
    if (text == NULL)
        return send_file_opts(c, to, to_group, file, NULL, o, timestamp_out);
    if (len > SC_MAX_TEXT_BYTES)
        return sc_fail(c, SC_E_USAGE, "text longer than %u bytes", SC_MAX_TEXT_BYTES);
    t = malloc(len + 1);
    if (t == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    memcpy(t, text, len);
    t[len] = '\0';
    rc = send_file_opts(c, to, to_group, file, t, o, timestamp_out);
    sodium_memzero(t, len);
    free(t);
    return rc;
}
