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

#include "internal.h"
#include "sotto/error.h"

static sotto_address addr_of(const char *name, uint32_t dev)
{
    sotto_address a = {name, strlen(name), dev};
    return a;
}

/* Checks a bundle's identity against what we trust; records a change. */
static int check_identity(sc_client *c, const char *name, uint32_t dev, const sotto_public_key *key)
{
    sotto_address a = addr_of(name, dev);
    sotto_public_key known;
    int r = c->ps.identity.get(c->ps.identity.user_data, &a, &known);

    if (r == SOTTO_ERR_NOT_FOUND)
        return SC_OK; /* first use */
    if (r != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot read the trusted identity of %s", name);
    if (sotto_public_key_equal(&known, key))
        return SC_OK;
    (void)sc_pending_identity_set(c, name, dev, key);
    return sc_fail(c, SC_E_UNTRUSTED,
                   "safety number with %s changed: compare it (sotto"
                   " safety-number %s) and run `sotto trust %s` to send again",
                   name, name, name);
}

/*
 * "Cannot silently add a device" (docs/api.md "Adding a device"): a device
 * other than 1 must carry the signature of the device that added it over
 * its keys. Device 1's auth key is learned on first use; every other
 * device's signer key comes from this response or from what we learned
 * before. A device whose auth key changed is treated like a changed
 * identity (run `trust`).
 */
static int check_device(sc_client *c, const char *name, const Sotto__Api__DeviceBundle *d,
                        const Sotto__Api__GetBundleResponse *all)
{
    uint8_t known[32], signer[32], msg[19 + 1 + 1 + 32 + 32 + SOTTO_PUBLIC_KEY_BYTES + 4];
    size_t n = 0, ul = strlen(name);
    bool have_signer = false;
    sotto_public_key idk;

    if (d->auth_key.len != 32 || d->identity_key.len != SOTTO_PUBLIC_KEY_BYTES ||
        sotto_public_key_decode(&idk, d->identity_key.data, d->identity_key.len) != SOTTO_OK)
        return sc_fail(c, SC_E_SERVER, "the server sent a malformed device record for %s", name);
    if (sc_device_auth_get(c, name, d->device_id, known) == SC_OK &&
        sodium_memcmp(known, d->auth_key.data, 32) != 0) {
        (void)sc_pending_identity_set(c, name, d->device_id, &idk);
        return sc_fail(c, SC_E_UNTRUSTED,
                       "device %u of %s has a new key: compare the safety"
                       " number (sotto safety-number %s) and run `sotto trust %s`",
                       d->device_id, name, name, name);
    }
    if (d->device_id != 1) {
        if (d->added_by == 0 || d->add_signature.len != crypto_sign_BYTES)
            goto unsigned_device;
        /* the signer's key: learned before, or device 1 in this answer (TOFU) */
        if (sc_device_auth_get(c, name, d->added_by, signer) == SC_OK)
            have_signer = true;
        for (size_t i = 0; !have_signer && d->added_by == 1 && all && i < all->n_devices; i++) {
            const Sotto__Api__DeviceBundle *o = all->devices[i];
            if (o->device_id == 1 && o->auth_key.len == 32) {
                memcpy(signer, o->auth_key.data, 32);
                have_signer = true;
            }
        }
        if (!have_signer && c->username && strcmp(name, c->username) == 0 &&
            d->added_by == c->device_id) {
            uint8_t *sk = NULL;
            size_t skl = 0;
            if (sc_cfg_get_blob(c, "auth_sk", &sk, &skl) == SC_OK && skl == 64) {
                crypto_sign_ed25519_sk_to_pk(signer, sk);
                have_signer = true;
            }
            if (sk) {
                sodium_memzero(sk, skl);
                free(sk);
            }
        }
        if (!have_signer)
            goto unsigned_device;
        memcpy(msg + n, "SOTTO-ADD-DEVICE-V1", 19);
        n += 19;
        msg[n++] = 0x00;
        msg[n++] = (uint8_t)ul;
        memcpy(msg + n, name, ul);
        n += ul;
        memcpy(msg + n, d->auth_key.data, 32);
        n += 32;
        memcpy(msg + n, d->identity_key.data, SOTTO_PUBLIC_KEY_BYTES);
        n += SOTTO_PUBLIC_KEY_BYTES;
        msg[n++] = (uint8_t)(d->registration_id >> 24);
        msg[n++] = (uint8_t)(d->registration_id >> 16);
        msg[n++] = (uint8_t)(d->registration_id >> 8);
        msg[n++] = (uint8_t)d->registration_id;
        if (crypto_sign_verify_detached(d->add_signature.data, msg, n, signer) != 0)
            goto unsigned_device;
    }
    return sc_device_auth_set(c, name, d->device_id, d->auth_key.data);
unsigned_device:
    return sc_fail(c, SC_E_UNTRUSTED,
                   "device %u of %s was not added by one of %s's devices"
                   " (no valid signature): refusing to send to it",
                   d->device_id, name, name);
}

/* Fetches bundles of `name` (device 0 = all) and starts sessions. */
static int fetch_bundles(sc_client *c, const char *name, uint32_t device_id, bool *none)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__GetBundleRequest gb = SOTTO__API__GET_BUNDLE_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
    bool self = c->username && strcmp(name, c->username) == 0;
    int rc;

    if (none)
        *none = false;
    gb.username = (char *)name;
    gb.device_id = device_id;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_BUNDLE;
    f.get_bundle = &gb;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        return rc;
    if (r->status == SOTTO__API__STATUS__STATUS_NOT_FOUND) {
        if (none)
            *none = true;
        rc = sc_fail(c, SC_E_NOT_FOUND, "no such user (or no device with keys): %s", name);
        goto out;
    }
    if (r->status != SOTTO__API__STATUS__STATUS_OK || r->get_bundle == NULL) {
        rc = sc_status_error(c, r, "fetching keys");
        goto out;
    }
    for (size_t i = 0; i < r->get_bundle->n_devices; i++) {
        const Sotto__Api__DeviceBundle *d = r->get_bundle->devices[i];
        sotto_prekey_bundle b;
        sotto_address a;

        if (self && d->device_id == c->device_id)
            continue;
        memset(&b, 0, sizeof b);
        if (d->signed_prekey == NULL ||
            sotto_public_key_decode(&b.identity_key, d->identity_key.data, d->identity_key.len) ||
            sotto_public_key_decode(&b.signed_prekey, d->signed_prekey->public_key.data,
                                    d->signed_prekey->public_key.len) ||
            d->signed_prekey->signature.len != SOTTO_SIGNATURE_BYTES) {
            rc = sc_fail(c, SC_E_SERVER, "the server sent a malformed key bundle for %s", name);
            goto out;
        }
        b.registration_id = d->registration_id;
        b.device_id = d->device_id;
        b.signed_prekey_id = d->signed_prekey->id;
        memcpy(b.signed_prekey_signature, d->signed_prekey->signature.data, SOTTO_SIGNATURE_BYTES);
        if (d->prekey) {
            if (sotto_public_key_decode(&b.prekey, d->prekey->public_key.data,
                                        d->prekey->public_key.len) != SOTTO_OK) {
                rc = sc_fail(c, SC_E_SERVER, "malformed one-time prekey for %s", name);
                goto out;
            }
            b.has_prekey = true;
            b.prekey_id = d->prekey->id;
        }
        rc = check_identity(c, name, d->device_id, &b.identity_key);
        if (rc == SC_OK)
            rc = check_device(c, name, d, r->get_bundle);
        if (rc != SC_OK)
            goto out;
        a = addr_of(name, d->device_id);
        rc = sotto_session_process_bundle(&c->ps, &a, &b);
        if (rc == SOTTO_ERR_UNTRUSTED_IDENTITY) {
            (void)sc_pending_identity_set(c, name, d->device_id, &b.identity_key);
            rc = sc_fail(c, SC_E_UNTRUSTED, "safety number with %s changed: run `sotto trust %s`",
                         name, name);
            goto out;
        }
        if (rc != SOTTO_OK) {
            rc = sc_fail(c, SC_E_SERVER, "bad key bundle from %s device %u: %s", name, d->device_id,
                         sotto_strerror(rc));
            goto out;
        }
        (void)sc_contact_touch(c, name, d->device_id);
    }
    rc = SC_OK;
out:
    sotto__api__server_frame__free_unpacked(r, NULL);
    return rc;
}

int sc_fetch_identity_keys(sc_client *c, const char *name)
{
    int rc = sc_connect(c);
    if (rc != SC_OK)
        return rc;
    return fetch_bundles(c, name, 0, NULL);
}

/* Own account: the other devices that have keys (list_devices). */
static int own_other_devices(sc_client *c, uint32_t **ids, size_t *n)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ListDevicesRequest ld = SOTTO__API__LIST_DEVICES_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
    int rc;

    *ids = NULL;
    *n = 0;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LIST_DEVICES;
    f.list_devices = &ld;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        return rc;
    if (r->status != SOTTO__API__STATUS__STATUS_OK || r->list_devices == NULL) {
        rc = sc_status_error(c, r, "devices");
    } else {
        *ids = calloc(r->list_devices->n_devices + 1, sizeof **ids);
        if (*ids == NULL) {
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        } else {
            for (size_t i = 0; i < r->list_devices->n_devices; i++) {
                const Sotto__Api__DeviceInfo *d = r->list_devices->devices[i];
                if (d->device_id != c->device_id && d->has_keys)
                    (*ids)[(*n)++] = d->device_id;
            }
        }
    }
    sotto__api__server_frame__free_unpacked(r, NULL);
    return rc;
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
    sqlite3_stmt *st = NULL;
    uint32_t ids[16];
    size_t n = 0;
    int rc = SC_OK;

    if (sqlite3_prepare_v2(c->db,
                           "SELECT device_id FROM client_session_reset WHERE name = ?"
                           " LIMIT 16",
                           -1, &st, NULL) != SQLITE_OK)
        return sc_fail(c, SC_E_STORE, "database error");
    sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
    while (n < 16 && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        bool none = false;
        rc = fetch_bundles(c, dest, ids[i], &none);
        if (rc == SC_E_NOT_FOUND) {
            /* that device is gone: forget its session */
            sotto_address a = addr_of(dest, ids[i]);
            if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
                return sc_fail(c, SC_E_STORE, "cannot delete a session");
            rc = SC_OK;
        }
        if (rc == SC_OK) {
            st = NULL;
            if (sqlite3_prepare_v2(c->db,
                                   "DELETE FROM client_session_reset WHERE name = ? AND"
                                   " device_id = ?",
                                   -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, ids[i]);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
        }
    }
    return rc;
}

static void free_outgoing(Sotto__Api__OutgoingMessage **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i]) {
            free(v[i]->body.data);
            free(v[i]);
        }
    }
    free(v);
}

int sc_deliver(sc_client *c, const char *dest, const uint8_t *content, size_t len)
{
    bool self = c->username && strcmp(dest, c->username) == 0;
    uint8_t *padded = NULL;
    size_t padded_len = 0;
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc;

    rc = sc_pad(content, len, &padded, &padded_len);
    if (rc != SC_OK)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    rc = reset_sessions(c, dest);
    if (rc != SC_OK)
        goto out;
    for (int attempt = 0, rate_waits = 0; attempt <= SC_SEND_RETRIES; attempt++) {
        Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__SendRequest sr = SOTTO__API__SEND_REQUEST__INIT;
        Sotto__Api__ServerFrame *r = NULL;
        Sotto__Api__OutgoingMessage **msgs = NULL;
        bool mismatch = false;

        free(ids);
        ids = NULL;
        rc = session_devices(c, dest, &ids, &n);
        if (rc != SC_OK)
            goto out;
        if (n == 0) {
            if (self) {
                uint32_t *own = NULL;
                size_t on = 0;
                rc = own_other_devices(c, &own, &on);
                if (rc == SC_OK && on == 0) {
                    free(own);
                    goto out; /* no other device to keep in sync */
                }
                for (size_t i = 0; rc == SC_OK && i < on; i++)
                    rc = fetch_bundles(c, dest, own[i], NULL);
                free(own);
            } else {
                rc = fetch_bundles(c, dest, 0, NULL);
            }
            if (rc != SC_OK)
                goto out;
            free(ids);
            ids = NULL;
            rc = session_devices(c, dest, &ids, &n);
            if (rc != SC_OK)
                goto out;
            if (n == 0) {
                rc = self ? SC_OK : sc_fail(c, SC_E_NOT_FOUND, "%s has no device to send to", dest);
                goto out;
            }
        }
        msgs = calloc(n, sizeof *msgs);
        if (msgs == NULL) {
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
            goto out;
        }
        /* One write transaction for the ratchet steps, so that another
         * process on the same account (a running `listen`) cannot
         * interleave its own read-modify-write of these sessions. */
        rc = sc_db_begin(c);
        if (rc != SC_OK) {
            free(msgs);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            sotto_address a = addr_of(dest, ids[i]);
            uint8_t *ct = NULL;
            size_t ct_len = 0;
            int type = 0;
            uint32_t regid = 0;
            int e;

            msgs[i] = calloc(1, sizeof **msgs);
            if (msgs[i] == NULL) {
                rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
                free_outgoing(msgs, n);
                sc_db_rollback(c);
                goto out;
            }
            sotto__api__outgoing_message__init(msgs[i]);
            e = sotto_session_encrypt(&c->ps, &a, padded, padded_len, &ct, &ct_len, &type);
            if (e == SOTTO_OK)
                e = sotto_session_remote_registration_id(&c->ps, &a, &regid);
            if (e == SOTTO_ERR_UNTRUSTED_IDENTITY) {
                /* The session still names an identity the user has not
                 * accepted (libsotto checks trust on encrypt). */
                free(ct);
                rc = sc_fail(c, SC_E_UNTRUSTED, "safety number with %s changed: run `sotto trust %s`",
                             dest, dest);
                free_outgoing(msgs, n);
                sc_db_rollback(c);
                goto out;
            }
            if (e != SOTTO_OK) {
                free(ct);
                rc = sc_fail(c, SC_E_INTERNAL, "cannot encrypt for %s device %u: %s", dest, ids[i],
                             sotto_strerror(e));
                free_outgoing(msgs, n);
                sc_db_rollback(c);
                goto out;
            }
            msgs[i]->device_id = ids[i];
            msgs[i]->registration_id = regid;
            msgs[i]->type = (uint32_t)type;
            msgs[i]->body.data = ct;
            msgs[i]->body.len = ct_len;
        }
        rc = sc_db_commit(c);
        if (rc != SC_OK) {
            free_outgoing(msgs, n);
            goto out;
        }
        sr.destination = (char *)dest;
        sr.n_messages = n;
        sr.messages = msgs;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SEND;
        f.send = &sr;
        rc = sc_api(c, &f, &r);
        free_outgoing(msgs, n);
        if (rc != SC_OK)
            goto out;
        if (r->status == SOTTO__API__STATUS__STATUS_OK) {
            sotto__api__server_frame__free_unpacked(r, NULL);
            rc = SC_OK;
            goto out;
        }
        if (r->status == SOTTO__API__STATUS__STATUS_MISMATCHED_DEVICES && r->mismatch) {
            const Sotto__Api__MismatchedDevices *m = r->mismatch;
            mismatch = true;
            rc = SC_OK;
            for (size_t i = 0; i < m->n_extra; i++) {
                sotto_address a = addr_of(dest, m->extra[i]);
                if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
                    (void)sc_fail(c, SC_E_STORE, "cannot delete a session");
                (void)sc_contact_forget_device(c, dest, m->extra[i]);
            }
            for (size_t i = 0; rc == SC_OK && i < m->n_stale; i++) {
                sotto_address a = addr_of(dest, m->stale[i]);
                if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
                    (void)sc_fail(c, SC_E_STORE, "cannot delete a session");
                rc = fetch_bundles(c, dest, m->stale[i], NULL);
            }
            for (size_t i = 0; rc == SC_OK && i < m->n_missing; i++)
                rc = fetch_bundles(c, dest, m->missing[i], NULL);
        } else if (r->status == SOTTO__API__STATUS__STATUS_NOT_FOUND) {
            rc = sc_fail(c, SC_E_NOT_FOUND, "no such user: %s", dest);
        } else if (r->status == SOTTO__API__STATUS__STATUS_RATE_LIMITED &&
                   rate_waits < SC_RATE_LIMIT_WAITS &&
                   r->retry_after_ms <= SC_RATE_LIMIT_MAX_WAIT_MS) {
            /* wait as told and send again (re-encrypted: the ciphertext
             * that was refused is never delivered, the receiver just skips
             * its ratchet step); a longer wait: the message stays queued */
            uint64_t ms = r->retry_after_ms < 50 ? 50 : r->retry_after_ms;
            struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
            rate_waits++;
            attempt--;
            mismatch = true;
            rc = SC_OK;
            nanosleep(&ts, NULL);
        } else {
            rc = sc_status_error(c, r, "send");
        }
        sotto__api__server_frame__free_unpacked(r, NULL);
        if (!mismatch || rc != SC_OK)
            goto out;
    }
    rc = sc_fail(c, SC_E_SERVER, "send to %s: the device list kept changing", dest);
out:
    free(ids);
    if (padded) {
        sodium_memzero(padded, padded_len);
        free(padded);
    }
    return rc;
}

/* ------------------------------------------------------------ queue */

int sc_enqueue_content(sc_client *c, const char *dest, Sotto__Content__Content *content,
                       int64_t msg_rowid)
{
    size_t n = sotto__content__content__get_packed_size(content);
    uint8_t *buf = malloc(n ? n : 1);
    int rc;

    if (buf == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    sotto__content__content__pack(content, buf);
    rc = sc_out_add(c, dest, content->timestamp, buf, n, msg_rowid);
    sodium_memzero(buf, n);
    free(buf);
    return rc;
}

int sc_flush(sc_client *c, size_t *left)
{
    return sc_flush_ex(c, left, 0, NULL);
}

int sc_flush_ex(sc_client *c, size_t *left, uint64_t focus_ts, int *focus_rc)
{
    sqlite3_stmt *st = NULL;
    int first_err = SC_OK;
    char focus_msg[sizeof c->err] = "";
    char first_msg[sizeof c->err] = "";
    int64_t last_id = 0;

    if (left)
        *left = 0;
    for (;;) {
        int64_t id, msg_id;
        uint64_t row_ts;
        char *dest = NULL;
        uint8_t *content = NULL;
        size_t len;
        int rc;

        if (sqlite3_prepare_v2(c->db,
                               "SELECT id, destination, content, timestamp, msg_id FROM client_outgoing"
                               " WHERE id > ? ORDER BY id LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK)
            return sc_fail(c, SC_E_STORE, "database error: %s", sqlite3_errmsg(c->db));
        sqlite3_bind_int64(st, 1, last_id);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            st = NULL;
            break;
        }
        id = sqlite3_column_int64(st, 0);
        row_ts = (uint64_t)sqlite3_column_int64(st, 3);
        msg_id = sqlite3_column_int64(st, 4);
        dest = strdup((const char *)sqlite3_column_text(st, 1));
        len = (size_t)sqlite3_column_bytes(st, 2);
        content = malloc(len ? len : 1);
        if (dest == NULL || content == NULL) {
            free(dest);
            free(content);
            sqlite3_finalize(st);
            return sc_fail(c, SC_E_INTERNAL, "out of memory");
        }
        if (len)
            memcpy(content, sqlite3_column_blob(st, 2), len);
        sqlite3_finalize(st);
        st = NULL;
        last_id = id;

        rc = sc_connect(c);
        if (rc == SC_OK)
            rc = sc_deliver(c, dest, content, len);
        sodium_memzero(content, len);
        free(content);
        if (rc == SC_E_UNTRUSTED && c->username && strcmp(dest, c->username) == 0)
            rc = SC_OK; /* a sync copy for an own device that changed: dropped */
        if (rc == SC_OK || rc == SC_E_NOT_FOUND || rc == SC_E_UNTRUSTED) {
            /* delivered, or refused for good (no such user; safety number
             * changed: nothing is sent, the user sends again after trust):
             * leave the queue */
            if (sqlite3_prepare_v2(c->db, "DELETE FROM client_outgoing WHERE id = ?", -1, &st,
                                   NULL) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, id);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
            st = NULL;
            if (rc != SC_OK && msg_id > 0 &&
                sqlite3_prepare_v2(c->db, "DELETE FROM client_messages WHERE id = ? AND"
                                   " conv_kind = 'contact'", -1, &st, NULL) == SQLITE_OK) {
                /* a 1:1 message that was never sent leaves no history, and
                 * its copy for our other devices is not sent either */
                sqlite3_bind_int64(st, 1, msg_id);
                if (sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(c->db) > 0) {
                    sqlite3_finalize(st);
                    st = NULL;
                    if (sqlite3_prepare_v2(c->db, "DELETE FROM client_outgoing WHERE"
                                           " timestamp = ? AND destination = ?", -1, &st,
                                           NULL) == SQLITE_OK) {
                        sqlite3_bind_int64(st, 1, (sqlite3_int64)row_ts);
                        sqlite3_bind_text(st, 2, c->username, -1, SQLITE_STATIC);
                        sqlite3_step(st);
                    }
                }
            }
            sqlite3_finalize(st);
            st = NULL;
        } else {
            if (sqlite3_prepare_v2(c->db,
                                   "UPDATE client_outgoing SET attempts = attempts + 1"
                                   " WHERE id = ?",
                                   -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, id);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
            st = NULL;
        }
        if (rc != SC_OK && first_err == SC_OK) {
            first_err = rc;
            snprintf(first_msg, sizeof first_msg, "%s", c->err);
        }
        if (rc != SC_OK && focus_rc && *focus_rc == SC_OK && focus_ts != 0 && row_ts == focus_ts) {
            *focus_rc = rc;
            snprintf(focus_msg, sizeof focus_msg, "%s", c->err);
        }
        free(dest);
        if (rc == SC_E_NETWORK)
            break; /* the rest stays queued */
    }
    if (left) {
        if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM client_outgoing", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            *left = (size_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (focus_rc) {
        /* the caller cares about one message: rows of it never tried
         * (the connection dropped before) count as a network failure */
        if (*focus_rc == SC_OK && sqlite3_prepare_v2(c->db,
                                                     "SELECT count(*) FROM client_outgoing"
                                                     " WHERE timestamp = ?",
                                                     -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)focus_ts);
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0) {
                *focus_rc = first_err != SC_OK ? first_err : SC_E_NETWORK;
                snprintf(focus_msg, sizeof focus_msg, "%s",
                         first_err != SC_OK ? first_msg : "not sent yet");
            }
        }
        sqlite3_finalize(st);
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
                          const Sotto__Content__DataMessage *dm, uint64_t ts, const char *path,
                          int64_t *rowid)
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

    if (dm->n_attachments == 0)
        return NULL;
    o = json_object();
    arr = json_array();
    for (size_t i = 0; i < dm->n_attachments; i++) {
        const Sotto__Content__AttachmentPointer *p = dm->attachments[i];
        json_t *a = json_object();
        json_object_set_new(a, "id", json_string(p->id));
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

/* Queues data message dm for a contact or group, then flushes. */
static int send_data(sc_client *c, const char *to, bool to_group, Sotto__Content__DataMessage *dm,
                     const char *local_path, uint64_t *ts_out)
{
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
        rc = check_trust_all(c, members, n_members);
    } else {
        if (!sc_username_valid(to))
            return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", to);
        one[0] = (char *)to;
        rc = check_trust_all(c, one, 1);
    }
    if (rc != SC_OK)
        goto out;
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        goto out;
    ts = sc_next_timestamp(c);
    if (to_group) {
        gc.id.data = gid;
        gc.id.len = sizeof gid;
        gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__DELIVER;
        dm->group = &gc;
    }
    rc = store_outgoing(c, to_group ? "group" : "contact", to_group ? gid_hex : to, dm, ts,
                        local_path, &rowid);
    content.timestamp = ts;
    content.data = dm;
    if (rc == SC_OK && to_group) {
        for (size_t i = 0; rc == SC_OK && i < n_members; i++)
            if (strcmp(members[i], c->username) != 0)
                rc = sc_enqueue_content(c, members[i], &content, rowid);
    } else if (rc == SC_OK && strcmp(to, c->username) != 0) {
        rc = sc_enqueue_content(c, to, &content, rowid);
        if (rc == SC_OK)
            rc = sc_contact_touch(c, to, 0);
    }
    /* to ourselves ("note to self"): the history row and the sync copy for
     * our other devices below are all there is to do */
    if (rc == SC_OK) {
        /* a copy for our other devices */
        Sotto__Content__Content sc2 = SOTTO__CONTENT__CONTENT__INIT;
        sent.destination = (char *)(to_group ? "" : to);
        sent.timestamp = ts;
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
    {
        int focus = SC_OK;
        rc = sc_flush_ex(c, &left, ts, &focus);
    }
out:
    sc_strv_free(members, n_members);
    free(gname);
    return rc;
}

int sc_send_text(sc_client *c, const char *to, bool to_group, const char *text, size_t len,
                 uint64_t *timestamp_out)
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
    rc = send_data(c, to, to_group, &dm, NULL, timestamp_out);
    sodium_memzero(body, len);
    free(body);
    return rc;
}

int sc_send_file(sc_client *c, const char *to, bool to_group, const char *path, const char *text,
                 uint64_t *timestamp_out)
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
    rc = sc_connect(c);
    if (rc != SC_OK)
        return rc;
    rc = sc_attachment_upload(c, path, &ptr);
    if (rc != SC_OK)
        return rc;
    abs = realpath(path, NULL);
    dm.body = (char *)(text ? text : "");
    dm.n_attachments = 1;
    dm.attachments = &pp;
    rc = send_data(c, to, to_group, &dm, abs ? abs : path, timestamp_out);
    sc_attachment_pointer_clear(&ptr);
    free(abs);
    return rc;
}
