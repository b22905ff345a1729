/*
 * client/core/kt.c -- key transparency on the client (issue 9;
 * docs/protocol.md "Key transparency", docs/cli.md "Key transparency"):
 *
 *  - the server's tree-head key and VRF key, pinned on first use (KtConfig)
 *    or given out of band (register --kt-key/--kt-vrf-key), in client_config
 *    "kt_server_key" / "kt_vrf_key" (hex);
 *  - the audited tree head this device holds (kt_head): a newer head is
 *    accepted only when the server signed it, it is fresh (kt_max_age_s),
 *    every auditor the user configured (kt_auditors) countersigned it, and
 *    it extends the held one (consistency proof; size never goes down, the
 *    same size has the same root);
 *  - before a contact's account key is pinned (first contact, `trust`), the
 *    published directory must hold that key and a device list not newer
 *    than the one being accepted;
 *  - own monitoring (the owner rule of the design): what the directory holds
 *    for our own account must be our key and lists our account signed, and
 *    its update counter must not have moved more than the list version.
 *
 * The server is not trusted with any of this: every answer is verified with
 * libsotto (sotto/kt.h) before it is used.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "api.h"
#include "internal.h"
#include "sotto/error.h"
#include "sotto/kt.h"

#define KT_OWN_ALERTS_KEY "kt_own_alerts"
/* since when (ms) the own entry could not be checked (sc_kt_own_unverified) */
#define KT_OWN_UNVERIFIED_KEY "kt_own_unverified_ms"

/* ------------------------------------------------------------ helpers */

static void kt_date(uint64_t ms, char out[11])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, 11, "%Y-%m-%d", &tm) != 10)
        snprintf(out, 11, "?");
}

/* 64 hex chars -> 32 bytes; false otherwise. */
static bool hex32(const char *hex, uint8_t out[32])
{
    size_t bl = 0;

    return hex && strlen(hex) == 64 && sodium_hex2bin(out, 32, hex, 64, NULL, &bl, NULL) == 0 &&
           bl == 32;
}

static int unsupported(sc_client *c, const sc_api_result *r)
{
    c->kt_unsupported = true;
    /* a server from before v3 closes the connection after such a frame */
    if (r->status == SC_ST_PROTOCOL_ERROR)
        sc_disconnect(c);
    return sc_fail(c, SC_E_KT, "the server does not run key transparency");
}

/* A 32-byte key kept as hex in client_config; SC_E_NOT_FOUND when absent. */
static int cfg_key32(sc_client *c, const char *key, uint8_t out[32])
{
    char *hex = NULL;
    int rc = sc_cfg_get_text(c, key, &hex);

    if (rc == SC_OK && !hex32(hex, out))
        rc = sc_fail(c, SC_E_STORE, "local store: %s is damaged", key);
    free(hex);
    return rc;
}

static int set_key32(sc_client *c, const char *key, const uint8_t k[32])
{
    char hex[65];

    sc_hex(k, 32, hex);
    return sc_cfg_set_text(c, key, hex);
}

/* Whether this device pinned the server's key-transparency keys: the server
 * ran key transparency once, so "unsupported" from it is a downgrade. */
static bool kt_pinned(sc_client *c)
{
    uint8_t sk[32], vk[32];

    return sc_kt_keys(c, sk, vk) == SC_OK;
}

static uint64_t max_age_ms(sc_client *c)
{
    uint64_t s = 0;

    if (sc_cfg_get_u64(c, "kt_max_age_s", &s) != SC_OK || s == 0)
        s = SC_KT_DEFAULT_MAX_AGE_S;
    return s * 1000;
}

int sc_kt_keys(sc_client *c, uint8_t server_key[32], uint8_t vrf_key[32])
{
    int rc = cfg_key32(c, "kt_server_key", server_key);

    if (rc == SC_OK)
        rc = cfg_key32(c, "kt_vrf_key", vrf_key);
    return rc;
}

int sc_kt_auditors(sc_client *c, uint8_t aud[SOTTO_KT_MAX_AUDITORS][32], size_t *n)
{
    char *list = NULL;
    int rc = sc_cfg_get_text(c, "kt_auditors", &list);
    const char *p;

    *n = 0;
    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    for (p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char one[65];
        if (len != 0) {
            if (len != 64 || *n >= SOTTO_KT_MAX_AUDITORS) {
                free(list);
                return sc_fail(c, SC_E_STORE, "local store: kt_auditors is damaged");
            }
            memcpy(one, p, 64);
            one[64] = '\0';
            if (!hex32(one, aud[*n])) {
                free(list);
                return sc_fail(c, SC_E_STORE, "local store: kt_auditors is damaged");
            }
            (*n)++;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    free(list);
    return SC_OK;
}

static int auditors_store(sc_client *c, uint8_t aud[SOTTO_KT_MAX_AUDITORS][32], size_t n)
{
    char text[SOTTO_KT_MAX_AUDITORS * 65 + 1] = "";
    size_t off = 0;

    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            text[off++] = ',';
        sc_hex(aud[i], 32, text + off);
        off += 64;
    }
    text[off] = '\0';
    return n == 0 ? sc_cfg_delete(c, "kt_auditors") : sc_cfg_set_text(c, "kt_auditors", text);
}

/* ------------------------------------------------------------ config */

int sc_kt_config(sc_client *c)
{
    uint8_t sk[32], vk[32];
    sc_api_kt_cfg k;
    sc_api_result r;
    bool pinned;
    int rc;

    if (c->kt_unsupported)
        return sc_fail(c, SC_E_KT, "the server does not run key transparency");
    rc = sc_kt_keys(c, sk, vk);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    pinned = rc == SC_OK;
    if (pinned && c->kt_config_done)
        return SC_OK;
    if (c->conn == NULL && sc_api_open(c, &r) != SC_API_OK)
        return sc_api_fail(c, &r, "connect");
    if (sc_api_kt_config(c, &k, &r) != SC_API_OK) {
        if (sc_api_kt_unsupported(&r))
            return unsupported(c, &r);
        return sc_api_fail(c, &r, "key-transparency configuration");
    }
    if (!pinned) {
        /* trust on first use of the server's keys (or given at register) */
        rc = sc_db_begin(c);
        if (rc == SC_OK) {
            rc = set_key32(c, "kt_server_key", k.server_key);
            if (rc == SC_OK)
                rc = set_key32(c, "kt_vrf_key", k.vrf_key);
            rc = rc == SC_OK ? sc_db_commit(c) : (sc_db_rollback(c), rc);
        }
    } else if (sodium_memcmp(sk, k.server_key, 32) != 0 || sodium_memcmp(vk, k.vrf_key, 32) != 0) {
        char pinned_hex[65], served_hex[65];
        bool server = sodium_memcmp(sk, k.server_key, 32) != 0;
        sc_hex(server ? sk : vk, 32, pinned_hex);
        sc_hex(server ? k.server_key : k.vrf_key, 32, served_hex);
        rc = sc_fail(c, SC_E_KT,
                     "the server's key-transparency key changed (%s key: pinned %s, served %s):"
                     " nothing it says about keys is accepted",
                     server ? "tree-head" : "VRF", pinned_hex, served_hex);
    }
    sc_api_kt_config_clear(&k);
    if (rc == SC_OK)
        c->kt_config_done = true;
    return rc;
}

int sc_kt_pin_keys(sc_client *c, const char *server_key_hex, const char *vrf_key_hex)
{
    uint8_t sk[32], vk[32], old_sk[32], old_vk[32];
    int rc;

    if (!hex32(server_key_hex, sk) || !hex32(vrf_key_hex, vk))
        return sc_fail(c, SC_E_USAGE,
                       "--kt-key and --kt-vrf-key are 64 hex characters each (sottod --kt-info"
                       " prints them)");
    rc = sc_kt_keys(c, old_sk, old_vk);
    if (rc == SC_OK) {
        if (sodium_memcmp(old_sk, sk, 32) != 0 || sodium_memcmp(old_vk, vk, 32) != 0)
            return sc_fail(c, SC_E_KT,
                           "other key-transparency keys are pinned for this account already");
        return SC_OK;
    }
    if (rc != SC_E_NOT_FOUND)
        return rc;
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    rc = set_key32(c, "kt_server_key", sk);
    if (rc == SC_OK)
        rc = set_key32(c, "kt_vrf_key", vk);
    if (rc == SC_OK)
        return sc_db_commit(c);
    sc_db_rollback(c);
    return rc;
}

/* ------------------------------------------------------------ heads */

int sc_kt_held_head(sc_client *c, uint8_t *out, size_t cap, size_t *len)
{
    uint8_t *h = NULL;
    size_t n = 0;
    int rc = sc_kt_head_get(c, &h, &n, NULL);

    *len = 0;
    if (rc != SC_OK)
        return rc;
    if (n > cap) {
        free(h);
        return sc_fail(c, SC_E_STORE, "local store: the held tree head is damaged");
    }
    memcpy(out, h, n);
    *len = n;
    free(h);
    return SC_OK;
}

/* The held head parsed, *have false when none. */
static int held_parsed(sc_client *c, sotto_kt_audited_head *ah, uint8_t *raw, size_t *raw_len,
                       bool *have)
{
    int rc = sc_kt_held_head(c, raw, SOTTO_KT_AUDITED_HEAD_MAX_BYTES, raw_len);

    *have = false;
    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    if (sotto_kt_audited_head_parse(raw, *raw_len, ah) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "local store: the held tree head is damaged");
    *have = true;
    return SC_OK;
}

/* An inconsistent log: kept as evidence (both heads), then SC_E_KT. */
static int inconsistent(sc_client *c, const uint8_t *held, size_t held_len, const uint8_t *head,
                        size_t head_len, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int inconsistent(sc_client *c, const uint8_t *held, size_t held_len, const uint8_t *head,
                        size_t head_len, const char *fmt, ...)
{
    char text[sizeof c->err];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    (void)sc_kt_evidence_add(c, "inconsistent", text, held, held_len, head, head_len);
    return sc_fail(c, SC_E_KT, "%s", text);
}

/* Step 4 of accept_head, in one transaction with the read of the held
 * head (another process on this account may accept heads too). */
static int accept_held(sc_client *c, const sotto_kt_audited_head *ah, const uint8_t *head,
                       size_t head_len, const uint8_t *consistency, size_t cons_len,
                       bool have_asked, uint64_t asked_size, uint64_t now)
{
    uint8_t held_raw[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    sotto_kt_audited_head held;
    size_t held_len = 0;
    bool have_held = false, store;
    int rc = held_parsed(c, &held, held_raw, &held_len, &have_held), e;

    if (rc != SC_OK)
        return rc;
    if (have_asked && (have_held ? held.head.size : 0) != asked_size)
        /* the path is from the size held when the request was made: it
         * proves nothing about the head held now; not evidence */
        return sc_fail(c, SC_E_RETRY,
                       "the key directory's tree head held here changed while the server"
                       " answered (another process on this account): asking again");
    store = !have_held;
    if (have_held) {
        if (ah->head.size < held.head.size)
            return inconsistent(c, held_raw, held_len, head, head_len,
                                "the key directory's log went back: the server served a tree head"
                                " of size %llu after one of size %llu (a truncated log)",
                                (unsigned long long)ah->head.size,
                                (unsigned long long)held.head.size);
        if (ah->head.size == held.head.size) {
            if (sodium_memcmp(ah->head.root, held.head.root, 32) != 0)
                return inconsistent(c, held_raw, held_len, head, head_len,
                                    "the key directory's log was rewritten: two tree heads of"
                                    " size %llu with different roots",
                                    (unsigned long long)ah->head.size);
            store = ah->head.timestamp_ms > held.head.timestamp_ms;
        } else {
            e = sotto_kt_head_verify_consistency(&held.head, &ah->head, consistency, cons_len);
            if (e != SOTTO_OK)
                return inconsistent(c, held_raw, held_len, head, head_len,
                                    "the key directory's log is inconsistent: the tree head of size"
                                    " %llu does not extend the one of size %llu this device holds"
                                    " (%s)",
                                    (unsigned long long)ah->head.size,
                                    (unsigned long long)held.head.size, sotto_strerror(e));
            store = true;
        }
    }
    return store ? sc_kt_head_set(c, head, head_len, now) : SC_OK;
}

static int accept_head(sc_client *c, const uint8_t *head, size_t head_len,
                       const uint8_t *consistency, size_t cons_len, bool have_asked,
                       uint64_t asked_size, sotto_kt_audited_head *out)
{
    uint8_t sk[32], vk[32], aud[SOTTO_KT_MAX_AUDITORS][32];
    sotto_kt_audited_head ah;
    size_t n_aud = 0;
    uint64_t now = sc_now_ms(), max_age = max_age_ms(c);
    int rc, e;

    if (out)
        memset(out, 0, sizeof *out);
    c->kt_head_stale = false;
    rc = sc_kt_keys(c, sk, vk);
    if (rc == SC_E_NOT_FOUND)
        return sc_fail(c, SC_E_KT, "no key-transparency key is pinned for this server yet");
    if (rc == SC_OK)
        rc = sc_kt_auditors(c, aud, &n_aud);
    if (rc != SC_OK)
        return rc;
    if (sotto_kt_audited_head_parse(head, head_len, &ah) != SOTTO_OK)
        return sc_fail(c, SC_E_KT, "the key directory sent a malformed tree head");
    /* 1. the server's signature */
    if (sotto_kt_head_verify(&ah.head, sk) != SOTTO_OK)
        return sc_fail(c, SC_E_KT,
                       "the key directory's tree head (size %llu) does not carry a valid"
                       " signature of the server's pinned key-transparency key",
                       (unsigned long long)ah.head.size);
    /* 2. freshness */
    e = sotto_kt_audited_head_check(&ah, sk, NULL, 0, now, max_age);
    if (e == SOTTO_ERR_KT_HEAD_STALE) {
        char date[11];
        kt_date(ah.head.timestamp_ms, date);
        if (ah.head.timestamp_ms > now)
            return sc_fail(c, SC_E_KT,
                           "the key directory's tree head (size %llu) is stamped in the future"
                           " (%s): check this device's clock",
                           (unsigned long long)ah.head.size, date);
        c->kt_head_stale = true;
        return sc_fail(c, SC_E_KT,
                       "the key directory's tree head is stale: size %llu signed %s, older than"
                       " the %llu s accepted (the server or its auditors stopped signing)",
                       (unsigned long long)ah.head.size, date,
                       (unsigned long long)(max_age / 1000));
    }
    if (e != SOTTO_OK)
        return sc_fail(c, SC_E_KT, "the key directory's tree head was refused: %s",
                       sotto_strerror(e));
    /* 3. every auditor this device requires */
    for (size_t i = 0; i < n_aud; i++) {
        const sotto_kt_cosig *cs = NULL;
        char hex[65];
        sc_hex(aud[i], 32, hex);
        for (size_t j = 0; j < ah.n_cosigs && cs == NULL; j++)
            if (sodium_memcmp(ah.cosigs[j].auditor_pk, aud[i], 32) == 0)
                cs = &ah.cosigs[j];
        if (cs == NULL)
            return sc_fail(c, SC_E_KT,
                           "the key directory's tree head (size %llu) is not countersigned by"
                           " auditor %s: that auditor has not checked this log",
                           (unsigned long long)ah.head.size, hex);
        if (sotto_kt_cosig_verify(cs->signature, &ah.head, aud[i]) != SOTTO_OK)
            return sc_fail(c, SC_E_KT,
                           "the countersignature of auditor %s on the key directory's tree head"
                           " (size %llu) does not verify",
                           hex, (unsigned long long)ah.head.size);
    }
    e = sotto_kt_audited_head_check(&ah, sk, (const uint8_t(*)[32])aud, n_aud, now, max_age);
    if (e != SOTTO_OK)
        return sc_fail(c, SC_E_KT, "the key directory's tree head was refused: %s",
                       sotto_strerror(e));
    /* 4. consistency with the head held (evidence kept even when the
     * answer is refused: committed either way) */
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    rc = accept_held(c, &ah, head, head_len, consistency, cons_len, have_asked, asked_size, now);
    if (rc == SC_OK || rc == SC_E_KT || rc == SC_E_RETRY) {
        char keep[sizeof c->err];
        int crc;
        memcpy(keep, c->err, sizeof keep);
        crc = sc_db_commit(c);
        if (crc != SC_OK) {
            sc_db_rollback(c);
            return crc;
        }
        memcpy(c->err, keep, sizeof keep);
    } else {
        sc_db_rollback(c);
    }
    if (rc != SC_OK)
        return rc;
    if (out)
        *out = ah;
    return SC_OK;
}

int sc_kt_accept_head(sc_client *c, const uint8_t *head, size_t head_len,
                      const uint8_t *consistency, size_t cons_len, sotto_kt_audited_head *out)
{
    return accept_head(c, head, head_len, consistency, cons_len, false, 0, out);
}

int sc_kt_accept_head_asked(sc_client *c, const uint8_t *head, size_t head_len,
                            const uint8_t *consistency, size_t cons_len, uint64_t asked_size,
                            sotto_kt_audited_head *out)
{
    return accept_head(c, head, head_len, consistency, cons_len, true, asked_size, out);
}

/* ------------------------------------------------------------ search */

static int lookup_once(sc_client *c, const char *name, sc_kt_entry *out, bool *again)
{
    uint8_t sk[32], vk[32], held_raw[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    sotto_kt_audited_head held, ah;
    sotto_kt_search_result *res = NULL;
    sotto_kt_value v;
    sc_api_kt_answer ans;
    sc_api_result r;
    size_t held_len = 0;
    bool have_held = false;
    int rc, e;

    memset(out, 0, sizeof *out);
    c->kt_head_stale = false;
    rc = sc_kt_config(c);
    if (rc == SC_OK)
        rc = sc_kt_keys(c, sk, vk);
    if (rc == SC_OK)
        rc = held_parsed(c, &held, held_raw, &held_len, &have_held);
    if (rc != SC_OK)
        return rc;
    if (sc_api_kt_search(c, name, have_held ? held.head.size : 0, &ans, &r) != SC_API_OK) {
        if (sc_api_kt_unsupported(&r))
            return unsupported(c, &r);
        if (r.outcome == SC_API_RETRY && r.status == SC_ST_KT_PENDING) {
            c->retry_at_ms = r.retry_at_ms;
            rc =
                sc_fail(c, SC_E_RETRY, "waiting until the key directory publishes %s's keys", name);
            c->kt_wait = true; /* this contact only: the others go on */
            return rc;
        }
        if (r.outcome == SC_API_REFUSED && r.status == SC_ST_NOT_FOUND)
            return sc_fail(c, SC_E_NOT_FOUND, "the key directory has no account %s", name);
        return sc_api_fail(c, &r, "key directory search");
    }
    rc = sc_kt_accept_head_asked(c, ans.head, ans.head_len, ans.consistency, ans.consistency_len,
                                 have_held ? held.head.size : 0, &ah);
    *again = rc == SC_E_RETRY;
    if (rc == SC_OK && (res = malloc(sizeof *res)) == NULL)
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
    if (rc == SC_OK) {
        e = sotto_kt_search_result_parse(ans.result, ans.result_len, res);
        if (e == SOTTO_OK)
            e = sotto_kt_search_verify(&v, vk, name, res, &ah.head);
        if (e != SOTTO_OK) {
            rc = sc_fail(c, SC_E_KT,
                         "the key directory's answer for %s does not verify against its tree"
                         " head (size %llu): %s",
                         name, (unsigned long long)ah.head.size, sotto_strerror(e));
        } else {
            memcpy(out->account_key, v.account_key, sizeof out->account_key);
            memcpy(out->list_hash, v.device_list_hash, sizeof out->list_hash);
            out->version = v.version;
            out->counter = res->counter;
            out->timestamp_ms = res->leaf_timestamp_ms;
            out->head_size = ah.head.size;
        }
    }
    free(res);
    sc_api_kt_answer_clear(&ans);
    return rc;
}

int sc_kt_lookup(sc_client *c, const char *name, sc_kt_entry *out)
{
    int rc = SC_E_RETRY;

    /* another process on this account may move the held head between our
     * request and its answer: then ask again (a few times at most) */
    for (int i = 0; i < 3; i++) {
        bool again = false;
        rc = lookup_once(c, name, out, &again);
        if (!again)
            break;
    }
    return rc;
}

int sc_kt_verify_account(sc_client *c, const char *name, const uint8_t account_key[33],
                         const uint8_t *list, size_t list_len, uint64_t list_version)
{
    sc_kt_entry ent;
    uint8_t h[32];
    int rc = sc_kt_lookup(c, name, &ent);

    if (rc == SC_E_NOT_FOUND)
        return sc_fail(c, SC_E_KT,
                       "the key directory has no entry for %s although the server serves keys"
                       " for it: refusing to pin them",
                       name);
    if (rc == SC_E_KT && c->kt_unsupported)
        return sc_fail(c, SC_E_KT,
                       "the server does not run key transparency: %s's account key cannot be"
                       " checked against a key directory, so it is not pinned",
                       name);
    if (rc != SC_OK)
        return rc;
    if (sodium_memcmp(ent.account_key, account_key, 33) != 0)
        return sc_fail(c, SC_E_KT,
                       "the key directory holds another account key for %s than the server"
                       " served (directory version %llu): refusing to pin it",
                       name, (unsigned long long)ent.version);
    if (list == NULL)
        return SC_OK;
    if (list_version < ent.version)
        return sc_fail(c, SC_E_KT,
                       "the server served device list version %llu for %s, older than the"
                       " version %llu the key directory holds: refusing it",
                       (unsigned long long)list_version, name, (unsigned long long)ent.version);
    if (list_version == ent.version) {
        if (sotto_kt_device_list_hash(h, list, list_len) != SOTTO_OK)
            return sc_fail(c, SC_E_INTERNAL, "cannot hash a device list");
        if (sodium_memcmp(h, ent.list_hash, 32) != 0)
            return sc_fail(c, SC_E_KT,
                           "the server served a device list for %s (version %llu) other than the"
                           " one the key directory holds for that version: refusing it",
                           name, (unsigned long long)list_version);
    }
    return SC_OK;
}

/* ------------------------------------------------------------ own monitoring */

int sc_kt_own_list_note(sc_client *c, const uint8_t *list, size_t len, uint64_t version)
{
    uint8_t h[32];

    if (sotto_kt_device_list_hash(h, list, len) != SOTTO_OK)
        return sc_fail(c, SC_E_INTERNAL, "cannot hash a device list");
    return sc_kt_own_list_set(c, version, h);
}

static void report_alert(sc_kt_own_report *rep, const sc_kt_entry *ent, const char *what)
{
    char date[11];

    if (rep->n_alerts >= sizeof rep->alerts / sizeof rep->alerts[0])
        return;
    kt_date(ent->timestamp_ms, date);
    snprintf(rep->alerts[rep->n_alerts++], sizeof rep->alerts[0],
             "key directory: as of %s, your account's entry (list version %llu, update %llu)"
             " %s",
             date, (unsigned long long)ent->version, (unsigned long long)ent->counter, what);
}

int sc_kt_own_rule(sc_client *c, const sc_kt_entry *ent, sc_kt_own_report *rep)
{
    sotto_public_key own;
    sc_account_row row;
    uint8_t h[32];
    uint64_t c0 = 0, v0 = 0, t0 = 0;
    char what[320];
    bool have_base;
    int rc = sc_own_account_key(c, &own);

    if (rc != SC_OK)
        return rc;
    if (sodium_memcmp(ent->account_key, own.bytes, 33) != 0)
        report_alert(rep, ent,
                     "holds an account key that is not yours: the server published"
                     " a key it could impersonate you with");
    rc = sc_account_get(c, c->username, &row);
    if (rc == SC_E_NOT_FOUND) {
        row.list = NULL;
        row.list_version = 0;
    } else if (rc != SC_OK) {
        return rc;
    }
    if (ent->version > row.list_version && row.list_version != 0) {
        /* a change our account made a moment ago that this device has not
         * seen yet? fetch our list once more */
        sotto_device_list l;
        sc_account_row_clear(&row);
        rc = sc_account_refresh(c, c->username, &l);
        if (rc == SC_E_STORE || rc == SC_E_INTERNAL)
            return rc;
        if (rc != SC_OK && rc != SC_E_UNTRUSTED)
            /* the server publishes a newer version and does not hand out
             * that list: the check cannot finish (no baseline), on the same
             * clock as an entry kept from us -- a hostile server could fail
             * every such request */
            return sc_kt_own_unverified(c,
                                        "with a device list version newer than this device's"
                                        " but not that list",
                                        rep);
        rc = sc_account_get(c, c->username, &row);
        if (rc != SC_OK)
            return rc;
    }
    if (ent->version > row.list_version) {
        snprintf(what, sizeof what,
                 "holds a device list version %llu newer than your account's newest (%llu):"
                 " a device list your account never signed",
                 (unsigned long long)ent->version, (unsigned long long)row.list_version);
        report_alert(rep, ent, what);
    } else if (ent->version == row.list_version) {
        if (sotto_kt_device_list_hash(h, row.list, row.list_len) != SOTTO_OK) {
            sc_account_row_clear(&row);
            return sc_fail(c, SC_E_INTERNAL, "cannot hash a device list");
        }
        if (sodium_memcmp(h, ent->list_hash, 32) != 0)
            report_alert(rep, ent,
                         "holds a device list your account did not sign (another"
                         " list under your current version)");
    } else {
        rc = sc_kt_own_list_get(c, ent->version, h);
        if (rc == SC_OK && sodium_memcmp(h, ent->list_hash, 32) != 0)
            report_alert(rep, ent, "holds an old device list your account did not sign");
        else if (rc != SC_OK && rc != SC_E_NOT_FOUND) {
            sc_account_row_clear(&row);
            return rc;
        }
    }
    sc_account_row_clear(&row);
    /* the counter rule: each legitimate update raises the list version */
    rc = sc_kt_own_get(c, &c0, &v0, &t0);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    have_base = rc == SC_OK;
    if (have_base) {
        if (ent->counter < c0 || ent->version < v0) {
            snprintf(what, sizeof what,
                     "went back: update %llu, version %llu after update %llu, version %llu at"
                     " the last check",
                     (unsigned long long)ent->counter, (unsigned long long)ent->version,
                     (unsigned long long)c0, (unsigned long long)v0);
            report_alert(rep, ent, what);
        } else if (ent->counter - c0 > ent->version - v0) {
            snprintf(what, sizeof what,
                     "was changed %llu time(s) since the last check (update %llu then %llu)"
                     " while your device list version rose by %llu: %llu update(s) your"
                     " account did not make",
                     (unsigned long long)(ent->counter - c0), (unsigned long long)c0,
                     (unsigned long long)ent->counter, (unsigned long long)(ent->version - v0),
                     (unsigned long long)((ent->counter - c0) - (ent->version - v0)));
            report_alert(rep, ent, what);
        }
    }
    if (rep->n_alerts == 0) {
        rc = sc_kt_own_set(c, ent->counter, ent->version, sc_now_ms());
        if (rc == SC_OK)
            rc = sc_cfg_delete(c, KT_OWN_UNVERIFIED_KEY); /* shown: the clock stops */
        return rc;
    }
    return SC_OK;
}

/*
 * The own entry could not be checked: the server answered "not published
 * yet", "no such account", or (to a device that pinned its key-transparency
 * keys) "no key transparency". Fine for a while -- a change our account made
 * waits for the auditors' countersignatures -- but contacts pin keys from the
 * published directory and only our own devices can tell a forged entry from
 * ours, so a server that never shows us our entry could hide one there for
 * good. The first such answer after a good check starts a clock
 * (client_config KT_OWN_UNVERIFIED_KEY); once it has run longer than
 * SC_KT_OWN_UNVERIFIED_MAX_MS (and kt_max_age_s) the check alerts. A good
 * check stops the clock (sc_kt_own_rule). The alert text depends on the
 * start date only, so it is stored once while the condition lasts.
 */
int sc_kt_own_unverified(sc_client *c, const char *answer, sc_kt_own_report *rep)
{
    uint64_t since = 0, now = sc_now_ms(), limit = max_age_ms(c);
    char date[11];
    int rc = sc_cfg_get_u64(c, KT_OWN_UNVERIFIED_KEY, &since);

    if (limit < SC_KT_OWN_UNVERIFIED_MAX_MS)
        limit = SC_KT_OWN_UNVERIFIED_MAX_MS;
    if (rc == SC_E_NOT_FOUND || (rc == SC_OK && since > now))
        return sc_cfg_set_u64(c, KT_OWN_UNVERIFIED_KEY, now); /* a clock set back: anew */
    if (rc != SC_OK)
        return rc;
    if (now - since <= limit || rep->n_alerts >= sizeof rep->alerts / sizeof rep->alerts[0])
        return SC_OK;
    kt_date(since, date);
    snprintf(rep->alerts[rep->n_alerts++], sizeof rep->alerts[0],
             "key directory: your account's entry has not been shown to this device since %s"
             " (the server answers %s). Contacts pin your keys from the published directory"
             " and only your devices can tell an entry your account did not make: a server"
             " that keeps your entry from you may be hiding one there",
             date, answer);
    return SC_OK;
}

/* One own check: fills rep; SC_OK also when alerts were found. */
static int own_check(sc_client *c, sc_kt_own_report *rep)
{
    const char *texts[sizeof rep->alerts / sizeof rep->alerts[0]];
    sc_kt_entry ent;
    int rc;

    memset(rep, 0, sizeof *rep);
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "account %s is not registered", c->account);
    rc = sc_kt_lookup(c, c->username, &ent);
    if ((rc == SC_E_RETRY && !c->kt_wait) || rc == SC_E_NETWORK || rc == SC_E_SERVER) {
        /* busy, rate limited, refused or cut off: asked again at the next
         * check -- but a server that does this to every own check keeps
         * our entry from us like "not published": the same clock */
        char keep[sizeof c->err];
        int orc = rc;
        memcpy(keep, c->err, sizeof keep);
        rc = sc_kt_own_unverified(c, "the own search with errors", rep);
        if (rc != SC_OK)
            return rc;
        if (rep->n_alerts == 0) {
            memcpy(c->err, keep, sizeof keep);
            return orc == SC_E_RETRY ? SC_OK : orc;
        }
    } else if (rc == SC_E_NOT_FOUND || rc == SC_E_RETRY) {
        /* not (yet) in the published directory: nothing to check, for a while */
        rc = sc_kt_own_unverified(
            c, rc == SC_E_RETRY ? "that it is not published yet" : "that your account is not in it",
            rep);
        if (rc != SC_OK)
            return rc;
    } else if (rc == SC_E_KT && c->kt_unsupported) {
        /* a server that ran key transparency (its keys are pinned here) and
         * now says it does not: a downgrade, not an old server */
        if (!kt_pinned(c))
            return sc_fail(c, SC_E_KT, "the server does not run key transparency");
        rc = sc_kt_own_unverified(c, "that it does not run key transparency", rep);
        if (rc != SC_OK)
            return rc;
    } else if (rc == SC_E_KT && c->kt_head_stale) {
        /* an old head: the server or its auditors stopped signing (contacts
         * refuse it too); the same clock as above, shown to us only */
        rc = sc_kt_own_unverified(c, "with a tree head older than this device accepts", rep);
        if (rc != SC_OK)
            return rc;
    } else if (rc == SC_E_KT) {
        /* a head or an answer this device refuses: the server misbehaves */
        snprintf(rep->alerts[0], sizeof rep->alerts[0], "key directory: %s", c->err);
        rep->n_alerts = 1;
    } else if (rc != SC_OK) {
        return rc;
    } else {
        rep->published = true;
        rep->counter = ent.counter;
        rep->version = ent.version;
        rep->timestamp_ms = ent.timestamp_ms;
        rep->head_size = ent.head_size;
        rc = sc_kt_own_rule(c, &ent, rep);
        if (rc != SC_OK)
            return rc;
    }
    for (size_t i = 0; i < rep->n_alerts; i++) {
        texts[i] = rep->alerts[i];
        if (rep->published)
            (void)sc_kt_evidence_add(c, "own", rep->alerts[i], NULL, 0, NULL, 0);
    }
    return sc_own_alerts_set(c, KT_OWN_ALERTS_KEY, texts, rep->n_alerts);
}

int sc_kt_monitor_own(sc_client *c, bool *alert)
{
    sc_kt_own_report *rep = malloc(sizeof *rep);
    int rc;

    *alert = false;
    if (rep == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    if (c->kt_unsupported && !kt_pinned(c)) {
        free(rep);
        return SC_OK; /* a server from before key transparency */
    }
    rc = own_check(c, rep);
    c->kt_checked_ms = sc_now_ms();
    if (rc == SC_E_KT && c->kt_unsupported)
        rc = SC_OK; /* a server without key transparency: nothing to monitor */
    *alert = rc == SC_OK && rep->n_alerts > 0;
    free(rep);
    return rc;
}

bool sc_kt_monitor_due(sc_client *c)
{
    uint64_t ctr = 0, ver = 0, checked = 0, now = sc_now_ms();

    if (c->username == NULL || (c->kt_unsupported && !kt_pinned(c)))
        return false;
    /* the last check run by this process (good or not), else the last good
     * one stored: at most one a day */
    if (c->kt_checked_ms != 0)
        return now - c->kt_checked_ms >= SC_KT_MONITOR_INTERVAL_MS;
    if (sc_kt_own_get(c, &ctr, &ver, &checked) != SC_OK)
        return true;
    return now - checked >= SC_KT_MONITOR_INTERVAL_MS;
}

/* ------------------------------------------------------------ public (CLI) */

int sc_kt_check_own(sc_client *c, sc_kt_own_report *out)
{
    int rc = sc_connect(c);

    memset(out, 0, sizeof *out);
    if (rc != SC_OK)
        return rc;
    return own_check(c, out);
}

int sc_kt_check_user(sc_client *c, const char *name, sc_kt_user_report *out)
{
    sc_kt_entry ent;
    sc_account_row row;
    int rc;

    memset(out, 0, sizeof *out);
    if (!sc_username_valid(name))
        return sc_fail(c, SC_E_USAGE, "invalid username: %s", name);
    rc = sc_connect(c);
    if (rc == SC_OK)
        rc = sc_kt_lookup(c, name, &ent);
    if (rc != SC_OK)
        return rc;
    sc_hex(ent.account_key, sizeof ent.account_key, out->account_key);
    out->version = ent.version;
    out->counter = ent.counter;
    out->timestamp_ms = ent.timestamp_ms;
    out->head_size = ent.head_size;
    rc = sc_account_get(c, name, &row);
    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    out->pinned = row.has_key;
    out->key_matches = row.has_key && sodium_memcmp(row.account_key, ent.account_key, 33) == 0;
    out->list_version = row.list_version;
    if (out->pinned && !out->key_matches)
        rc = sc_fail(c, SC_E_KT,
                     "the key directory holds another account key for %s than the one pinned"
                     " here",
                     name);
    else if (row.list && row.list_version == ent.version) {
        uint8_t h[32];
        if (sotto_kt_device_list_hash(h, row.list, row.list_len) != SOTTO_OK)
            rc = sc_fail(c, SC_E_INTERNAL, "cannot hash a device list");
        else if (sodium_memcmp(h, ent.list_hash, 32) != 0)
            rc = sc_fail(c, SC_E_KT,
                         "the key directory holds another device list for %s (version %llu)"
                         " than the one accepted here",
                         name, (unsigned long long)ent.version);
    } else if (row.list && row.list_version < ent.version) {
        /* the directory is newer than what this device saw: fine, the next
         * message fetches it */
    }
    sc_account_row_clear(&row);
    return rc;
}

int sc_kt_status(sc_client *c, sc_kt_status_info *out)
{
    uint8_t sk[32], vk[32], aud[SOTTO_KT_MAX_AUDITORS][32];
    uint8_t raw[SOTTO_KT_AUDITED_HEAD_MAX_BYTES];
    sotto_kt_audited_head ah;
    uint8_t *h = NULL;
    size_t n = 0, hl = 0;
    int rc;

    memset(out, 0, sizeof *out);
    rc = sc_kt_keys(c, sk, vk);
    if (rc == SC_OK) {
        out->has_keys = true;
        sc_hex(sk, 32, out->server_key);
        sc_hex(vk, 32, out->vrf_key);
    } else if (rc != SC_E_NOT_FOUND) {
        return rc;
    }
    rc = sc_kt_head_get(c, &h, &hl, &out->head_accepted_ms);
    if (rc == SC_OK) {
        if (hl > sizeof raw || sotto_kt_audited_head_parse(h, hl, &ah) != SOTTO_OK) {
            free(h);
            return sc_fail(c, SC_E_STORE, "local store: the held tree head is damaged");
        }
        memcpy(raw, h, hl);
        out->has_head = true;
        out->head_size = ah.head.size;
        out->head_timestamp_ms = ah.head.timestamp_ms;
        for (size_t i = 0; i < ah.n_cosigs && i < SC_KT_MAX_AUDITORS; i++)
            sc_hex(ah.cosigs[i].auditor_pk, 32, out->cosigners[out->n_cosigners++]);
    } else if (rc != SC_E_NOT_FOUND) {
        return rc;
    }
    free(h);
    rc = sc_kt_auditors(c, aud, &n);
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        sc_hex(aud[i], 32, out->auditors[out->n_auditors++]);
    out->max_age_s = max_age_ms(c) / 1000;
    rc = sc_kt_own_get(c, &out->own_counter, &out->own_version, &out->own_checked_ms);
    if (rc == SC_OK)
        out->has_own = true;
    else if (rc != SC_E_NOT_FOUND)
        return rc;
    return sc_kt_evidence_count(c, &out->evidence);
}

int sc_kt_max_age_set(sc_client *c, uint64_t seconds)
{
    if (seconds < SC_KT_MIN_MAX_AGE_S || seconds > SC_KT_MAX_MAX_AGE_S)
        return sc_fail(c, SC_E_USAGE, "the maximum age of a tree head is %u..%u seconds",
                       (unsigned)SC_KT_MIN_MAX_AGE_S, (unsigned)SC_KT_MAX_MAX_AGE_S);
    return sc_cfg_set_u64(c, "kt_max_age_s", seconds);
}

int sc_kt_auditor_add(sc_client *c, const char *key_hex)
{
    uint8_t aud[SOTTO_KT_MAX_AUDITORS][32], k[32];
    size_t n = 0;
    int rc;

    if (!hex32(key_hex, k))
        return sc_fail(c, SC_E_USAGE, "an auditor key is 64 hex characters");
    rc = sc_kt_auditors(c, aud, &n);
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (sodium_memcmp(aud[i], k, 32) == 0)
            return SC_OK;
    if (n >= SOTTO_KT_MAX_AUDITORS)
        return sc_fail(c, SC_E_USAGE, "at most %d auditors", SOTTO_KT_MAX_AUDITORS);
    memcpy(aud[n++], k, 32);
    return auditors_store(c, aud, n);
}

int sc_kt_auditor_remove(sc_client *c, const char *key_hex)
{
    uint8_t aud[SOTTO_KT_MAX_AUDITORS][32], k[32];
    size_t n = 0, j = 0;
    bool found = false;
    int rc;

    if (!hex32(key_hex, k))
        return sc_fail(c, SC_E_USAGE, "an auditor key is 64 hex characters");
    rc = sc_kt_auditors(c, aud, &n);
    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (sodium_memcmp(aud[i], k, 32) == 0)
            found = true;
        else
            memmove(aud[j++], aud[i], 32);
    }
    if (!found)
        return sc_fail(c, SC_E_NOT_FOUND, "auditor %s is not configured", key_hex);
    return auditors_store(c, aud, j);
}

int sc_kt_auditor_list(sc_client *c, char keys[SC_KT_MAX_AUDITORS][SC_KT_KEY_HEX + 1], size_t *n)
{
    uint8_t aud[SOTTO_KT_MAX_AUDITORS][32];
    int rc = sc_kt_auditors(c, aud, n);

    if (rc != SC_OK)
        return rc;
    for (size_t i = 0; i < *n; i++)
        sc_hex(aud[i], 32, keys[i]);
    return SC_OK;
}
