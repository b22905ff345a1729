/*
 * client/core/account.c -- account keys and signed device lists on the
 * client (docs/protocol.md "Account key and device list"):
 *
 *  - our own account key pair (the private half on the primary device only,
 *    client_config "account_sk"; every device keeps the public half,
 *    "account_pk") and the lists the primary signs;
 *  - contacts' account keys, pinned on first use, and the newest signed list
 *    accepted for each (client_accounts): a device is encrypted to, and its
 *    messages are shown, only when a list signed by the pinned key with a
 *    version at least as high as any seen contains it;
 *  - own-device monitoring: every device checks that the devices the server
 *    lists for its own account are exactly those of the signed list.
 *
 * The server is not trusted with any of this: it stores and serves the
 * lists, and every answer is checked here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "api.h"
#include "internal.h"
#include "sotto/account.h"
#include "sotto/device_list.h"
#include "sotto/error.h"

/* ------------------------------------------------------------ notices */

int sc_notice_add(sc_client *c, const char *who, const char *code, const char *text)
{
    int64_t rowid = 0;
    int rc = sc_notice_row(c, who, 0, sc_now_ms(), code, text, &rowid);

    if (rc == SC_OK)
        rc = sc_pending_event_add_unclaimed(c, rowid); /* shown by the next receive/listen */
    return rc;
}

static void date_of(uint64_t ms, char out[11])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, 11, "%Y-%m-%d", &tm) != 10)
        snprintf(out, 11, "?");
}

/* ------------------------------------------------------------ own account */

int sc_own_account_key(sc_client *c, sotto_public_key *pk)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = sc_cfg_get_blob(c, "account_pk", &b, &n);

    if (rc == SC_OK && (n != SOTTO_PUBLIC_KEY_BYTES || sotto_public_key_decode(pk, b, n)))
        rc = sc_fail(c, SC_E_STORE, "the stored account key is damaged");
    free(b);
    return rc;
}

int sc_account_key_create(sc_client *c)
{
    sotto_key_pair kp;
    int rc;

    if (sotto_identity_key_pair_generate(&kp) != SOTTO_OK)
        return sc_fail(c, SC_E_INTERNAL, "cannot generate the account key");
    rc = sc_cfg_set_blob(c, "account_sk", kp.priv, sizeof kp.priv);
    if (rc == SC_OK)
        rc = sc_cfg_set_blob(c, "account_pk", kp.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_key_pair_wipe(&kp);
    return rc;
}

int sc_account_key_load(sc_client *c, sotto_key_pair *kp)
{
    uint8_t *b = NULL;
    size_t n = 0;
    sotto_public_key pk;
    int rc = sc_cfg_get_blob(c, "account_sk", &b, &n);

    memset(kp, 0, sizeof *kp);
    if (rc == SC_E_NOT_FOUND)
        return sc_fail(c, SC_E_STATE,
                       "this device does not hold the account key: only the primary device"
                       " can change the account's devices");
    if (rc != SC_OK)
        return rc;
    if (n != SOTTO_PRIVATE_KEY_BYTES || sotto_key_pair_from_private(kp, b) != SOTTO_OK)
        rc = sc_fail(c, SC_E_STORE, "the stored account key is damaged");
    sodium_memzero(b, n);
    free(b);
    if (rc == SC_OK && (rc = sc_own_account_key(c, &pk)) == SC_OK &&
        !sotto_public_key_equal(&pk, &kp->pub))
        rc = sc_fail(c, SC_E_STORE, "the stored account key pair does not match");
    if (rc != SC_OK)
        sotto_key_pair_wipe(kp);
    return rc;
}

bool sc_is_primary(sc_client *c)
{
    uint8_t *b = NULL;
    size_t n = 0;
    bool yes = sc_cfg_get_blob(c, "account_sk", &b, &n) == SC_OK;

    if (b) {
        sodium_memzero(b, n);
        free(b);
    }
    return yes;
}

int sc_own_device_entry(sc_client *c, uint32_t device_id, sotto_device_entry *e)
{
    uint8_t *sk = NULL;
    size_t skl = 0;
    sotto_key_pair id;
    uint32_t regid = 0;
    int rc;

    memset(e, 0, sizeof *e);
    if (sotto_sqlite_store_get_local_identity(c->store, &id, &regid) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "no local identity");
    e->device_id = device_id;
    e->registration_id = regid;
    e->identity_key = id.pub;
    sotto_key_pair_wipe(&id);
    rc = sc_cfg_get_blob(c, "auth_sk", &sk, &skl);
    if (rc == SC_OK && skl == crypto_sign_SECRETKEYBYTES)
        crypto_sign_ed25519_sk_to_pk(e->auth_key, sk);
    else if (rc == SC_OK)
        rc = sc_fail(c, SC_E_STORE, "the device auth key is damaged");
    if (sk) {
        sodium_memzero(sk, skl);
        free(sk);
    }
    return rc;
}

int sc_own_list_sign(sc_client *c, const sotto_device_list *l, uint8_t **out, size_t *len)
{
    sotto_key_pair kp;
    uint8_t *buf = malloc(SOTTO_DEVICE_LIST_MAX_BYTES);
    int rc;

    *out = NULL;
    *len = 0;
    if (buf == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    rc = sc_account_key_load(c, &kp);
    if (rc == SC_OK &&
        sotto_device_list_sign(l, &kp, buf, SOTTO_DEVICE_LIST_MAX_BYTES, len) != SOTTO_OK)
        rc = sc_fail(c, SC_E_INTERNAL, "cannot sign the device list");
    sotto_key_pair_wipe(&kp);
    if (rc != SC_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    return SC_OK;
}

/* ------------------------------------------------------------ accepted lists */

int sc_account_current(sc_client *c, const char *name, sotto_device_list *out)
{
    sc_account_row row;
    sotto_public_key key;
    int rc = sc_account_get(c, name, &row);

    memset(out, 0, sizeof *out);
    if (rc != SC_OK)
        return rc;
    if (row.list == NULL || !row.has_key) {
        sc_account_row_clear(&row);
        return SC_E_NOT_FOUND;
    }
    if (sotto_public_key_decode(&key, row.account_key, sizeof row.account_key) != SOTTO_OK ||
        sotto_device_list_verify(out, row.list, row.list_len, &key, name) != SOTTO_OK)
        rc = sc_fail(c, SC_E_STORE, "the stored device list of %s does not verify", name);
    sc_account_row_clear(&row);
    return rc;
}

/* Notices for what changed between two accepted lists of a contact. */
static int notice_changes(sc_client *c, const char *name, const sotto_device_list *older,
                          const sotto_device_list *newer, bool own)
{
    sotto_device_list_diff d;
    char text[256], date[11];
    int rc = SC_OK;

    if (sotto_device_list_diff_compute(older, newer, &d) != SOTTO_OK)
        return SC_OK;
    date_of(newer->timestamp_ms, date);
    for (size_t i = 0; rc == SC_OK && i < d.n_added; i++) {
        if (own && d.added[i] == c->device_id)
            continue;
        if (own)
            snprintf(text, sizeof text, "your account linked a new device (device %u) on %s",
                     d.added[i], date);
        else
            snprintf(text, sizeof text, "%s linked a new device on %s", name, date);
        rc = sc_notice_add(c, name, "device_linked", text);
    }
    for (size_t i = 0; rc == SC_OK && i < d.n_removed; i++) {
        if (own)
            snprintf(text, sizeof text, "your account removed device %u on %s", d.removed[i], date);
        else
            snprintf(text, sizeof text, "%s removed a device on %s", name, date);
        rc = sc_notice_add(c, name, "device_removed", text);
    }
    for (size_t i = 0; rc == SC_OK && i < d.n_changed; i++) {
        snprintf(text, sizeof text, "%s replaced the keys of a device on %s", name, date);
        rc = sc_notice_add(c, name, "device_changed", text);
    }
    return rc;
}

int sc_account_accept(sc_client *c, const char *name, const sc_api_account *a,
                      sotto_device_list *out)
{
    bool own = c->username && strcmp(name, c->username) == 0;
    sc_account_row row;
    sotto_public_key served, pinned;
    sotto_device_list held;
    int rc, e;

    memset(out, 0, sizeof *out);
    if (!a->has_account_key || a->device_list == NULL ||
        sotto_public_key_decode(&served, a->account_key, sizeof a->account_key) != SOTTO_OK)
        return sc_fail(c, SC_E_UNTRUSTED,
                       "%s's account has no account key or signed device list on the server (an"
                       " account from before account keys, or the server withholds them): its"
                       " devices cannot be checked, so nothing is sent to or shown from them",
                       name);
    rc = sc_account_get(c, name, &row);
    if (rc == SC_E_NOT_FOUND) {
        if (own) {
            /* our own key is never learned from the server */
            rc = sc_own_account_key(c, &pinned);
            if (rc == SC_OK)
                rc = sc_account_pin(c, name, pinned.bytes);
        } else {
            /* trust on first use, once the key directory (key transparency)
             * holds that key and no newer list than the one served */
            sotto_device_list first;
            bool lv = sotto_device_list_verify(&first, a->device_list, a->device_list_len, &served,
                                               name) == SOTTO_OK;
            rc = sc_kt_verify_account(c, name, served.bytes, lv ? a->device_list : NULL,
                                      lv ? a->device_list_len : 0, lv ? first.version : 0);
            if (rc == SC_OK)
                rc = sc_account_pin(c, name, served.bytes);
        }
        if (rc == SC_OK)
            rc = sc_account_get(c, name, &row);
    }
    if (rc != SC_OK)
        return rc;
    if (sotto_public_key_decode(&pinned, row.account_key, sizeof row.account_key) != SOTTO_OK) {
        sc_account_row_clear(&row);
        return sc_fail(c, SC_E_STORE, "the pinned account key of %s is damaged", name);
    }
    if (!sotto_public_key_equal(&pinned, &served)) {
        sc_account_row_clear(&row);
        if (own)
            return sc_fail(c, SC_E_UNTRUSTED,
                           "the server served another account key for your own account");
        rc = sc_account_set_pending(c, name, served.bytes);
        return rc != SC_OK ? rc
                           : sc_fail(c, SC_E_UNTRUSTED,
                                     "safety number with %s changed (a new account key):"
                                     " compare it (sotto safety-number %s) and run"
                                     " `sotto trust %s`",
                                     name, name, name);
    }
    if (row.has_pending) {
        /* the server serves the pinned key again: the change it showed
         * before is void (`trust` must never pin a key not served now) */
        rc = sc_account_clear_pending(c, name);
        if (rc != SC_OK) {
            sc_account_row_clear(&row);
            return rc;
        }
    }
    e = sotto_device_list_verify(out, a->device_list, a->device_list_len, &pinned, name);
    if (e != SOTTO_OK) {
        sc_account_row_clear(&row);
        return sc_fail(c, SC_E_UNTRUSTED,
                       "the server served a device list for %s that %s's account key did not"
                       " sign (%s): refusing it",
                       name, name, sotto_strerror(e));
    }
    if (row.list) {
        if (sotto_device_list_verify(&held, row.list, row.list_len, &pinned, name) != SOTTO_OK) {
            sc_account_row_clear(&row);
            return sc_fail(c, SC_E_STORE, "the stored device list of %s does not verify", name);
        }
        e = sotto_device_list_check_update(&held, out);
        if (e == SOTTO_ERR_DEVICE_LIST_STALE) {
            rc = sc_fail(c, SC_E_UNTRUSTED,
                         "the server served an older device list for %s: version %llu, already"
                         " seen %llu",
                         name, (unsigned long long)out->version, (unsigned long long)held.version);
        } else if (e != SOTTO_OK) {
            rc = sc_fail(c, SC_E_UNTRUSTED,
                         "the server served a device list for %s that conflicts with one"
                         " already seen (version %llu): %s",
                         name, (unsigned long long)out->version, sotto_strerror(e));
        } else if (out->version > held.version) {
            rc = notice_changes(c, name, &held, out, own);
            if (rc == SC_OK)
                rc = sc_account_set_list(c, name, a->device_list, a->device_list_len, out->version);
        }
    } else {
        rc = sc_account_set_list(c, name, a->device_list, a->device_list_len, out->version);
    }
    sc_account_row_clear(&row);
    /* own lists accepted: their hashes for own monitoring (kt.c) */
    if (rc == SC_OK && own)
        rc = sc_kt_own_list_note(c, a->device_list, a->device_list_len, out->version);
    if (rc != SC_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int sc_account_refresh(sc_client *c, const char *name, sotto_device_list *out)
{
    sc_api_account a;
    sc_api_result r;
    int rc;

    if (sc_api_get_device_list(c, name, &a, &r) != SC_API_OK) {
        if (r.outcome == SC_API_REFUSED && r.status == SC_ST_NOT_FOUND)
            return sc_fail(c, SC_E_NOT_FOUND, "no such user: %s", name);
        return sc_api_fail(c, &r, "device list");
    }
    rc = sc_account_accept(c, name, &a, out);
    sc_api_account_clear(&a);
    return rc;
}

/* ------------------------------------------------------------ own devices */

/*
 * Own-device alerts are shown once while their condition lasts: the set of
 * active alert texts is kept (client_config "own_alerts", one per line); a
 * text not in the previous set is a new notice, and a condition that is
 * gone leaves the set, so it alerts again if it comes back.
 */
typedef struct alerts {
    char text[SOTTO_DEVICE_LIST_MAX + 1][sizeof((sc_client *)0)->err + 128];
    size_t n;
} alerts;

static void alert_add(alerts *a, const char *text)
{
    if (a->n < sizeof a->text / sizeof a->text[0])
        snprintf(a->text[a->n++], sizeof a->text[0], "%s", text);
}

static int alerts_publish(sc_client *c, const char *key, const alerts *now)
{
    char *prev = NULL, *joined;
    size_t cap = 1;
    int rc = sc_cfg_get_text(c, key, &prev);

    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    rc = SC_OK;
    for (size_t i = 0; rc == SC_OK && i < now->n; i++) {
        bool seen = false;
        for (const char *p = prev; p && *p && !seen;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            seen = len == strlen(now->text[i]) && strncmp(p, now->text[i], len) == 0;
            p = nl ? nl + 1 : p + len;
        }
        if (!seen)
            rc = sc_notice_add(c, c->username, "own_device_alert", now->text[i]);
    }
    free(prev);
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < now->n; i++)
        cap += strlen(now->text[i]) + 1;
    joined = calloc(1, cap);
    if (joined == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < now->n; i++) {
        strncat(joined, now->text[i], cap - strlen(joined) - 1);
        strncat(joined, "\n", cap - strlen(joined) - 1);
    }
    rc = sc_cfg_set_text(c, key, joined);
    free(joined);
    return rc;
}

int sc_own_alerts_set(sc_client *c, const char *key, const char *const *texts, size_t n)
{
    alerts *now = calloc(1, sizeof *now);
    int rc;

    if (now == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++)
        alert_add(now, texts[i]);
    rc = alerts_publish(c, key, now);
    free(now);
    return rc;
}

int sc_own_devices_check(sc_client *c, bool *alert)
{
    sc_api_device *devs = NULL;
    sc_api_account a;
    sc_api_result r;
    sotto_device_list l;
    alerts *now = calloc(1, sizeof *now);
    size_t n = 0;
    char text[sizeof now->text[0]];
    int rc;

    *alert = false;
    if (now == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    if (sc_api_list_devices(c, &devs, &n, &a, &r) != SC_API_OK) {
        free(now);
        return sc_api_fail(c, &r, "devices");
    }
    rc = sc_account_accept(c, c->username, &a, &l);
    sc_api_account_clear(&a);
    if (rc == SC_E_UNTRUSTED) {
        snprintf(text, sizeof text,
                 "the server's device list for your account is not one your account key"
                 " signed: %s",
                 c->err);
        alert_add(now, text);
        rc = SC_OK;
        n = 0; /* nothing to compare the devices with */
    }
    for (size_t i = 0; rc == SC_OK && i < n; i++) {
        const sotto_device_entry *e = sotto_device_list_find(&l, devs[i].device_id);
        if (e != NULL && devs[i].has_auth_key && devs[i].has_identity_key &&
            sodium_memcmp(e->auth_key, devs[i].auth_key, sizeof e->auth_key) == 0 &&
            sodium_memcmp(e->identity_key.bytes, devs[i].identity_key, SOTTO_PUBLIC_KEY_BYTES) ==
                0 &&
            e->registration_id == devs[i].registration_id)
            continue;
        snprintf(text, sizeof text,
                 "the server lists device %u for your account, which your account's signed"
                 " device list %s",
                 devs[i].device_id, e ? "names with other keys" : "does not contain");
        alert_add(now, text);
    }
    free(devs);
    *alert = now->n > 0;
    if (rc == SC_OK)
        rc = alerts_publish(c, "own_alerts", now);
    free(now);
    return rc;
}
