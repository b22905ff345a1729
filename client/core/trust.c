/*
 * client/core/trust.c -- contacts, trust on first use, changed identity
 * keys, `trust`, and safety numbers (sotto/fingerprint.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"
#include "internal.h"
#include "sotto/error.h"
#include "sotto/fingerprint.h"

int sc_contacts(sc_client *c, sc_contact_cb cb, void *ud)
{
    sc_contact_info *v = NULL;
    size_t n = 0;
    int rc = sc_contact_list(c, &v, &n);

    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        sotto_device_list l;
        sc_account_row a;
        /* the devices of the newest signed list accepted, when there is one */
        if (sc_account_current(c, v[i].name, &l) == SC_OK)
            v[i].n_devices = l.n_devices;
        /* a changed account key waits for `trust` too */
        if (sc_account_get(c, v[i].name, &a) == SC_OK) {
            if (a.has_pending) {
                v[i].identity_changed = true;
                v[i].verified = false;
            }
            sc_account_row_clear(&a);
        }
        cb(ud, &v[i]);
    }
    sc_contact_list_free(v, n);
    return SC_OK;
}

/*
 * Before a changed account key is accepted: is it the one the server serves
 * now? `trust` pins what the user compared, and only if it is still what
 * the contact's account has -- never a key the server showed once and has
 * taken back (that change is void: the safety number is the old one again).
 */
static int pending_is_current(sc_client *c, const char *contact)
{
    sc_account_row row;
    sc_api_account a;
    sc_api_result r;
    int rc = sc_account_get(c, contact, &row);

    if (rc == SC_E_NOT_FOUND) {
        if (c->username && strcmp(contact, c->username) == 0)
            return SC_OK;
        /* nothing pinned yet (e.g. only a message waiting for the key
         * directory): there is no key the user can have compared */
        return sc_fail(c, SC_E_STATE,
                       "no account key of %s is known here yet, so there is nothing to"
                       " trust: run `sotto safety-number %s` to fetch it (checked against"
                       " the key directory), compare it, then trust",
                       contact, contact);
    }
    if (rc != SC_OK)
        return rc;
    if (!row.has_pending) {
        sc_account_row_clear(&row);
        return SC_OK;
    }
    rc = sc_connect(c);
    if (rc == SC_OK && sc_api_get_device_list(c, contact, &a, &r) != SC_API_OK)
        rc = sc_api_fail(c, &r, "device list");
    if (rc != SC_OK) {
        sc_account_row_clear(&row);
        return rc;
    }
    if (a.has_account_key && sodium_memcmp(a.account_key, row.pending_key, 33) == 0) {
        /* the key directory (key transparency) must hold it too */
        sotto_public_key pk;
        sotto_device_list l;
        bool lv = sotto_public_key_decode(&pk, a.account_key, 33) == SOTTO_OK &&
                  sotto_device_list_verify(&l, a.device_list, a.device_list_len, &pk, contact) ==
                      SOTTO_OK;
        rc = sc_kt_verify_account(c, contact, a.account_key, lv ? a.device_list : NULL,
                                  lv ? a.device_list_len : 0, lv ? l.version : 0);
    } else if (a.has_account_key && sodium_memcmp(a.account_key, row.account_key, 33) == 0) {
        rc = sc_account_clear_pending(c, contact);
        if (rc == SC_OK)
            rc = sc_fail(c, SC_E_STATE,
                         "the server serves %s's earlier account key again: the change it"
                         " showed is void and nothing was trusted; the safety number is the"
                         " earlier one (sotto safety-number %s)",
                         contact, contact);
    } else if (a.has_account_key) {
        rc = sc_account_set_pending(c, contact, a.account_key);
        if (rc == SC_OK)
            rc = sc_fail(c, SC_E_UNTRUSTED,
                         "the server now serves yet another account key for %s: compare the"
                         " new safety number (sotto safety-number %s) before trusting it",
                         contact, contact);
    } else {
        rc = sc_fail(c, SC_E_UNTRUSTED,
                     "the server serves no account key for %s now: nothing was trusted", contact);
    }
    sc_api_account_clear(&a);
    sc_account_row_clear(&row);
    return rc;
}

int sc_trust(sc_client *c, const char *contact, sc_event_cb cb, void *ud)
{
    sc_pending_identity *pend = NULL;
    size_t n_pend = 0;
    bool known = false, key_changed = false;
    int rc;

    if (!sc_username_valid(contact))
        return sc_fail(c, SC_E_USAGE, "invalid contact name: %s", contact);
    rc = sc_contact_known(c, contact, &known);
    if (rc != SC_OK)
        return rc;
    if (!known && !(c->username && strcmp(contact, c->username) == 0))
        return sc_fail(c, SC_E_NOT_FOUND, "unknown contact: %s", contact);
    rc = pending_is_current(c, contact);
    if (rc != SC_OK)
        return rc;
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    /* a changed account key becomes the pinned one; its list is fetched
     * and checked again before anything is sent */
    rc = sc_account_accept_pending(c, contact, &key_changed);
    if (rc == SC_OK)
        rc = sc_pending_identity_list(c, contact, &pend, &n_pend);
    for (size_t i = 0; rc == SC_OK && i < n_pend; i++) {
        sotto_address a = {contact, strlen(contact), pend[i].device_id};
        if (c->ps.identity.save(c->ps.identity.user_data, &a, &pend[i].key) != SOTTO_OK) {
            rc = sc_fail(c, SC_E_STORE, "cannot save the identity");
            break;
        }
        /* the old session was built with the old key */
        if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
            (void)sc_fail(c, SC_E_STORE, "cannot delete a session");
        if (rc == SC_OK)
            (void)sc_contact_touch(c, contact, a.device_id);
    }
    free(pend);
    if (rc == SC_OK)
        rc = sc_pending_identity_clear(c, contact);
    if (rc == SC_OK)
        rc = sc_contact_set_verified(c, contact);
    if (rc != SC_OK) {
        sc_db_rollback(c);
        return rc;
    }
    rc = sc_db_commit(c);
    if (rc != SC_OK)
        return rc;
    /* Messages held because of the change can now be decrypted. One that
     * cannot be stored now stays held (the error is returned). */
    rc = sc_held_release_sender(c, contact, cb, ud);
    {
        /* group changes and messages kept queued for this contact while
         * its safety number was unconfirmed (send.c) go now, in order; a
         * failure leaves them queued for the next command that connects */
        char err[sizeof c->err];
        snprintf(err, sizeof err, "%s", c->err);
        (void)sc_flush(c, NULL);
        snprintf(c->err, sizeof c->err, "%s", err);
    }
    return rc;
}

/* The account key of `name` as the user compares it: the pending (changed)
 * one when there is one, else the pinned one, fetched and pinned now when
 * none is known yet. */
static int account_key_of(sc_client *c, const char *name, sotto_public_key *out)
{
    sc_account_row a;
    sotto_device_list l;
    int rc = sc_account_get(c, name, &a);

    if (rc == SC_E_NOT_FOUND) {
        rc = sc_connect(c);
        if (rc == SC_OK) {
            rc = sc_account_refresh(c, name, &l);
            if (rc == SC_E_UNTRUSTED)
                rc = SC_OK; /* a changed key is recorded as pending: shown below */
        }
        if (rc == SC_OK)
            rc = sc_account_get(c, name, &a);
    }
    if (rc != SC_OK)
        return rc;
    rc = sotto_public_key_decode(out, a.has_pending ? a.pending_key : a.account_key,
                                 SOTTO_PUBLIC_KEY_BYTES) == SOTTO_OK
             ? SC_OK
             : sc_fail(c, SC_E_STORE, "the account key of %s is damaged", name);
    sc_account_row_clear(&a);
    return rc;
}

/*
 * Safety numbers cover the two account keys (docs/protocol.md "Safety
 * numbers"), so they stay the same when either side links or removes a
 * device; a device's keys are vouched for by the signed device list.
 */
int sc_safety_number(sc_client *c, const char *contact, char digits[61], uint8_t **scannable,
                     size_t *scannable_len)
{
    sotto_public_key local, remote;
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
    rc = sc_own_account_key(c, &local);
    if (rc == SC_E_NOT_FOUND)
        return sc_fail(c, SC_E_STATE, "this device does not know its account key yet");
    if (rc == SC_OK)
        rc = account_key_of(c, contact, &remote);
    if (rc != SC_OK)
        return rc;
    rc = sotto_fingerprint_create(&fp, SOTTO_FP_DEFAULT_ITERATIONS, SOTTO_FP_SCANNABLE_V1,
                                  c->username, &local, 1, contact, &remote, 1);
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
