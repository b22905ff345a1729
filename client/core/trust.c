/*
 * client/core/trust.c -- contacts, trust on first use, changed identity
 * keys, `trust`, and safety numbers (sotto/fingerprint.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "sotto/error.h"
#include "sotto/fingerprint.h"

int sc_contacts(sc_client *c, sc_contact_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(c->db,
                           "SELECT name, verified,"
                           " (SELECT count(*) FROM client_contact_devices d WHERE d.name = c.name),"
                           " EXISTS(SELECT 1 FROM client_pending_identity p WHERE p.name = c.name)"
                           " FROM client_contacts c ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return sc_fail(c, SC_E_STORE, "database error");
    while (sqlite3_step(st) == SQLITE_ROW) {
        sc_contact_info ci;
        ci.name = (const char *)sqlite3_column_text(st, 0);
        ci.verified = sqlite3_column_int(st, 1) != 0;
        ci.n_devices = (size_t)sqlite3_column_int64(st, 2);
        ci.identity_changed = sqlite3_column_int(st, 3) != 0;
        cb(ud, &ci);
    }
    sqlite3_finalize(st);
    return SC_OK;
}

static int contact_known(sc_client *c, const char *name)
{
    sqlite3_stmt *st = NULL;
    int found = 0;

    if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM client_contacts WHERE name = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

int sc_trust(sc_client *c, const char *contact, sc_event_cb cb, void *ud)
{
    sqlite3_stmt *st = NULL;
    int rc;
    size_t n_held = 0;

    if (!sc_username_valid(contact))
        return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", contact);
    if (!contact_known(c, contact) && !(c->username && strcmp(contact, c->username) == 0))
        return sc_fail(c, SC_E_NOT_FOUND, "unknown contact: %s", contact);
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT device_id, identity_key FROM client_pending_identity"
                           " WHERE name = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sc_fail(c, SC_E_STORE, "database error");
        goto fail;
    }
    sqlite3_bind_text(st, 1, contact, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        sotto_public_key key;
        sotto_address a = {contact, strlen(contact), (uint32_t)sqlite3_column_int64(st, 0)};
        if (sotto_public_key_decode(&key, sqlite3_column_blob(st, 1),
                                    (size_t)sqlite3_column_bytes(st, 1)) != SOTTO_OK)
            continue;
        if (c->ps.identity.save(c->ps.identity.user_data, &a, &key) != SOTTO_OK) {
            rc = sc_fail(c, SC_E_STORE, "cannot save the identity");
            sqlite3_finalize(st);
            goto fail;
        }
        /* the device's auth key is learned again (and checked) */
        {
            sqlite3_stmt *d = NULL;
            if (sqlite3_prepare_v2(c->db,
                                   "DELETE FROM client_device_auth WHERE name = ? AND"
                                   " device_id = ?",
                                   -1, &d, NULL) == SQLITE_OK) {
                sqlite3_bind_text(d, 1, contact, -1, SQLITE_STATIC);
                sqlite3_bind_int64(d, 2, a.device_id);
                sqlite3_step(d);
            }
            sqlite3_finalize(d);
        }
        /* the old session was built with the old key */
        if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
            (void)sc_fail(c, SC_E_STORE, "cannot delete a session");
        (void)sc_contact_touch(c, contact, a.device_id);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(c->db, "DELETE FROM client_pending_identity WHERE name = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, contact, -1, SQLITE_STATIC);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(c->db, "UPDATE client_contacts SET verified = 1 WHERE name = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, contact, -1, SQLITE_STATIC);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = sc_db_commit(c);
    if (rc != SC_OK)
        return rc;
    /* Messages held because of the change can now be decrypted. */
    for (;;) {
        Sotto__Api__Envelope e = SOTTO__API__ENVELOPE__INIT;
        uint8_t idbuf[64];
        size_t idlen;
        uint8_t *body = NULL;

        if (sqlite3_prepare_v2(c->db,
                               "SELECT id, source_device, type, body, server_ts FROM"
                               " client_held_envelopes WHERE source = ? ORDER BY rowid LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK)
            return sc_fail(c, SC_E_STORE, "database error");
        sqlite3_bind_text(st, 1, contact, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            break;
        }
        idlen = (size_t)sqlite3_column_bytes(st, 0);
        if (idlen > sizeof idbuf)
            idlen = sizeof idbuf;
        memcpy(idbuf, sqlite3_column_blob(st, 0), idlen);
        e.id.data = idbuf;
        e.id.len = idlen;
        e.source = (char *)contact;
        e.source_device_id = (uint32_t)sqlite3_column_int64(st, 1);
        e.type = (uint32_t)sqlite3_column_int64(st, 2);
        e.body.len = (size_t)sqlite3_column_bytes(st, 3);
        body = malloc(e.body.len ? e.body.len : 1);
        if (body && e.body.len)
            memcpy(body, sqlite3_column_blob(st, 3), e.body.len);
        e.body.data = body;
        e.server_timestamp_ms = (uint64_t)sqlite3_column_int64(st, 4);
        sqlite3_finalize(st);
        st = NULL;
        if (body)
            (void)sc_process_envelope(c, &e, true, cb, ud);
        free(body);
        if (sqlite3_prepare_v2(c->db, "DELETE FROM client_held_envelopes WHERE id = ?", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_blob(st, 1, idbuf, (int)idlen, SQLITE_STATIC);
            sqlite3_step(st);
        }
        sqlite3_finalize(st);
        st = NULL;
        n_held++;
    }
    (void)n_held;
    return SC_OK;
fail:
    sc_db_rollback(c);
    return rc;
}

/* Identity keys of `name` as we would compare them: the pending (new) key
 * of a device when there is one, else the trusted one. */
static int keys_of(sc_client *c, const char *name, sotto_public_key *out, size_t cap, size_t *n)
{
    uint32_t *ids = NULL;
    size_t nd = 0;
    int rc = sc_contact_devices(c, name, &ids, &nd);

    *n = 0;
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < nd && *n < cap; i++) {
        sotto_address a = {name, strlen(name), ids[i]};
        sqlite3_stmt *st = NULL;
        bool got = false;
        if (sqlite3_prepare_v2(c->db,
                               "SELECT identity_key FROM client_pending_identity WHERE"
                               " name = ? AND device_id = ?",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, ids[i]);
            if (sqlite3_step(st) == SQLITE_ROW &&
                sotto_public_key_decode(&out[*n], sqlite3_column_blob(st, 0),
                                        (size_t)sqlite3_column_bytes(st, 0)) == SOTTO_OK)
                got = true;
        }
        sqlite3_finalize(st);
        if (!got && c->ps.identity.get(c->ps.identity.user_data, &a, &out[*n]) == SOTTO_OK)
            got = true;
        if (got)
            (*n)++;
    }
    free(ids);
    return SC_OK;
}

int sc_safety_number(sc_client *c, const char *contact, char digits[61], uint8_t **scannable,
                     size_t *scannable_len)
{
    sotto_public_key local[SOTTO_FP_MAX_KEYS], remote[SOTTO_FP_MAX_KEYS];
    sotto_key_pair me;
    size_t nl = 0, nr = 0;
    sotto_fingerprint *fp = NULL;
    const uint8_t *scan = NULL;
    size_t scan_len = 0;
    int rc;

    *scannable = NULL;
    *scannable_len = 0;
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    if (!sc_username_valid(contact))
        return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", contact);
    rc = keys_of(c, contact, remote, SOTTO_FP_MAX_KEYS, &nr);
    if (rc != SC_OK)
        return rc;
    if (nr == 0) {
        rc = sc_fetch_identity_keys(c, contact);
        if (rc != SC_OK && rc != SC_E_UNTRUSTED)
            return rc;
        rc = keys_of(c, contact, remote, SOTTO_FP_MAX_KEYS, &nr);
        if (rc != SC_OK)
            return rc;
        if (nr == 0)
            return sc_fail(c, SC_E_NOT_FOUND, "no identity key known for %s", contact);
    }
    if (sotto_sqlite_store_get_local_identity(c->store, &me, NULL) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "no local identity");
    local[nl++] = me.pub;
    sotto_key_pair_wipe(&me);
    {
        size_t more = 0;
        if (keys_of(c, c->username, local + nl, SOTTO_FP_MAX_KEYS - nl, &more) == SC_OK)
            nl += more;
    }
    rc = sotto_fingerprint_create(&fp, SOTTO_FP_DEFAULT_ITERATIONS, SOTTO_FP_SCANNABLE_V1,
                                  c->username, local, nl, contact, remote, nr);
    if (rc != SOTTO_OK)
        return sc_fail(c, SC_E_INTERNAL, "cannot compute the safety number: %s",
                       sotto_strerror(rc));
    snprintf(digits, 61, "%s", sotto_fingerprint_display(fp));
    if (sotto_fingerprint_scannable(fp, &scan, &scan_len) == SOTTO_OK && scan_len > 0) {
        *scannable = malloc(scan_len);
        if (*scannable) {
            memcpy(*scannable, scan, scan_len);
            *scannable_len = scan_len;
        }
    }
    sotto_fingerprint_free(fp);
    return SC_OK;
}
