/*
 * client/core/sealed.c -- sealed sender in the client (issue 12;
 * docs/protocol.md "Sealed sender", client rules; internal.h).
 *
 * Sending: to an accepted contact whose profile key we hold, every
 * per-device ciphertext is wrapped in a sealed sender v1 message
 * (sotto_sealed_encrypt, our sender certificate inside) and the batch goes
 * as a sealed send, with the contact's delivery token, over a connection
 * that never logs in: the server learns the recipient, not the sender.
 * Our own devices, strangers and message requests get identified sends.
 *
 * Receiving: a type-6 envelope is opened with our identity key under the
 * pinned trust root; the certificate's identity key must be the one the
 * sender's signed device list names for that device; the inner Signal
 * message then goes through the ordinary path as if it had come
 * identified from the certificate's sender and device. What can never be
 * opened is reported as an event (not stored) and acked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"
#include "everyday.h"
#include "internal.h"
#include "sotto/error.h"
#include "sotto/sealed.h"

/* a cached certificate is renewed min(1 h, half its validity) before expiry */
#define CERT_MARGIN_MS (3600ull * 1000)
/* a sealed envelope's certificate is checked at the envelope's server time,
 * unless that lies more than this in the future of our clock (then: ours) */
#define SERVER_TS_SKEW_MS (300ull * 1000)
/* a token the server refused is tried again after this long (the contact's
 * client uploads it again at its next login, e.g. after a server restore):
 * a refused try costs one round trip, then the send goes identified, so a
 * short wait keeps one refusal (which a hostile server can cause at will)
 * from making a contact identified for long */
#define REFUSED_RETRY_MS (10ull * 60 * 1000)

/* ------------------------------------------------------------ local state */

/* The pinned trust root; SC_E_NOT_FOUND when none is pinned. */
static int pinned_root(sc_client *c, sotto_public_key *root)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = sc_cfg_get_blob(c, "sealed_root", &b, &n);

    if (rc == SC_OK &&
        (n != SOTTO_PUBLIC_KEY_BYTES || sotto_public_key_decode(root, b, n) != SOTTO_OK))
        rc = sc_fail(c, SC_E_STORE, "the pinned sealed-sender trust root is damaged");
    free(b);
    return rc;
}

/* Our profile key (client_config "profile_key", as profile.c keeps it);
 * SC_E_NOT_FOUND when there is none. */
static int own_profile_key(sc_client *c, uint8_t key[SOTTO_PROFILE_KEY_BYTES])
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = sc_cfg_get_blob(c, "profile_key", &b, &n);

    if (rc == SC_OK && n != SOTTO_PROFILE_KEY_BYTES)
        rc = SC_E_NOT_FOUND;
    if (rc == SC_OK)
        memcpy(key, b, SOTTO_PROFILE_KEY_BYTES);
    if (b) {
        sodium_memzero(b, n);
        free(b);
    }
    return rc;
}

/* Whether client_config blob `key` holds exactly v (len bytes). */
static bool cfg_blob_is(sc_client *c, const char *key, const uint8_t *v, size_t len)
{
    uint8_t *b = NULL;
    size_t n = 0;
    bool same = sc_cfg_get_blob(c, key, &b, &n) == SC_OK && n == len && sodium_memcmp(b, v, n) == 0;

    free(b);
    return same;
}

/* SOTTO_DEBUG_SEALED=1: one line on stderr per sealed-sender decision
 * that is not visible otherwise (a fallback to identified). */
static void debug_line(const char *text)
{
    const char *v = getenv("SOTTO_DEBUG_SEALED");

    if (v && v[0] == '1')
        fprintf(stderr, "sealed: %s\n", text);
}

/* ------------------------------------------------------------ after login */

/* client_config: set while the last login's root differed from the pinned
 * one (pin_root); nothing is sealed and our token is cleared meanwhile */
#define ROOT_MISMATCH "sealed_root_mismatch"
/* client_config: set while the last token upload (or clearing) failed */
#define TOKEN_DUE "sealed_token_due"

bool sc_sealed_root_mismatch(sc_client *c)
{
    uint64_t v = 0;

    return sc_cfg_get_u64(c, ROOT_MISMATCH, &v) == SC_OK && v != 0;
}

static bool root_mismatch(sc_client *c)
{
    return sc_sealed_root_mismatch(c);
}

/* Whether the last register/login answer named `root`. */
static bool served_is(sc_client *c, const sotto_public_key *root)
{
    sotto_public_key served;

    return c->sealed_root_seen_ok &&
           sotto_public_key_decode(&served, c->sealed_root_seen, sizeof c->sealed_root_seen) ==
               SOTTO_OK &&
           sotto_public_key_equal(&served, root);
}

/* Forgets our cached sender certificate. */
static int drop_cert(sc_client *c)
{
    int rc = sc_cfg_delete(c, "sealed_cert");

    if (rc == SC_OK)
        rc = sc_cfg_delete(c, "sealed_cert_expires");
    if (rc == SC_OK)
        rc = sc_cfg_delete(c, "sealed_cert_renew");
    return rc;
}

/* Pins the root the server named, or reports (once per root) that it
 * named another one; the pinned one stays in use. */
static int pin_root(sc_client *c)
{
    sotto_public_key seen, pinned;
    char hex[2 * SOTTO_PUBLIC_KEY_BYTES + 1], text[384];
    uint64_t given = 0;
    int rc;

    if (!c->sealed_root_seen_ok)
        return SC_OK; /* a server before v5: nothing to pin, nothing sealed */
    if (sotto_public_key_decode(&seen, c->sealed_root_seen, sizeof c->sealed_root_seen) !=
        SOTTO_OK) {
        c->sealed_root_seen_ok = false;
        return SC_OK; /* not a key: ignored like a missing one */
    }
    rc = pinned_root(c, &pinned);
    if (rc == SC_E_NOT_FOUND)
        return sc_cfg_set_blob(c, "sealed_root", seen.bytes, SOTTO_PUBLIC_KEY_BYTES);
    if (rc != SC_OK)
        return rc;
    if (sc_cfg_get_u64(c, "sealed_root_given", &given) != SC_OK)
        given = 0;
    if (sotto_public_key_equal(&seen, &pinned)) {
        /* the roots agree (again): sealing may resume */
        rc = given ? sc_cfg_delete(c, "sealed_root_given") : SC_OK;
        return rc == SC_OK ? sc_cfg_delete(c, ROOT_MISMATCH) : rc;
    }
    /* they differ: nothing is sealed until they agree again (our cached
     * certificate may still validate under the pinned root, but recipients
     * who pinned the served one would drop what it seals), and
     * sc_sealed_token_refresh clears our token on the server, so that no
     * one sealing under the served root can reach us (we would drop it) */
    rc = sc_cfg_set_u64(c, ROOT_MISMATCH, 1);
    if (rc == SC_OK)
        rc = drop_cert(c);
    if (rc != SC_OK)
        return rc;
    if (cfg_blob_is(c, "sealed_root_alert", seen.bytes, SOTTO_PUBLIC_KEY_BYTES))
        return SC_OK; /* reported already */
    sc_hex(seen.bytes, SOTTO_PUBLIC_KEY_BYTES, hex);
    if (given) {
        /* register/link-request --sealed-root: the first answer must name
         * that root; the given one stays pinned (later: the notice) */
        char pinned_hex[2 * SOTTO_PUBLIC_KEY_BYTES + 1];
        sc_hex(pinned.bytes, SOTTO_PUBLIC_KEY_BYTES, pinned_hex);
        rc = sc_cfg_set_blob(c, "sealed_root_alert", seen.bytes, SOTTO_PUBLIC_KEY_BYTES);
        if (rc == SC_OK)
            rc = sc_cfg_delete(c, "sealed_root_given");
        if (rc != SC_OK)
            return rc;
        return sc_fail(c, SC_E_UNTRUSTED,
                       "the server's sealed-sender trust root %s is not the one given with"
                       " --sealed-root (%s): it is not used, sealed messages are checked against"
                       " the given one",
                       hex, pinned_hex);
    }
    snprintf(text, sizeof text,
             "the server named another sealed-sender trust root (%.16s...) than the one pinned"
             " at registration; it is not used: sealed messages are checked against the pinned"
             " one, and until the server names it again everything is sent identified and no"
             " one can send to this account sealed",
             hex);
    rc = sc_notice_add(c, c->username ? c->username : "", "sealed_root_changed", text);
    if (rc == SC_OK)
        rc = sc_cfg_set_blob(c, "sealed_root_alert", seen.bytes, SOTTO_PUBLIC_KEY_BYTES);
    return rc;
}

_Static_assert(SC_SEALED_ROOT_HEX == 2 * SOTTO_PUBLIC_KEY_BYTES, "root hex length");

int sc_sealed_pin_root(sc_client *c, const char *root_hex)
{
    uint8_t b[SOTTO_PUBLIC_KEY_BYTES];
    sotto_public_key k, old;
    size_t n = 0;
    int rc;

    if (root_hex == NULL || strlen(root_hex) != 2 * SOTTO_PUBLIC_KEY_BYTES ||
        sodium_hex2bin(b, sizeof b, root_hex, strlen(root_hex), NULL, &n, NULL) != 0 ||
        n != sizeof b || sotto_public_key_decode(&k, b, n) != SOTTO_OK)
        return sc_fail(c, SC_E_USAGE,
                       "--sealed-root is 66 hex characters (`sottod admin sealed-root` prints it)");
    rc = pinned_root(c, &old);
    if (rc == SC_OK)
        return sotto_public_key_equal(&old, &k)
                   ? SC_OK
                   : sc_fail(c, SC_E_STATE,
                             "another sealed-sender trust root is pinned for this account already");
    if (rc != SC_E_NOT_FOUND)
        return rc;
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    rc = sc_cfg_set_blob(c, "sealed_root", k.bytes, SOTTO_PUBLIC_KEY_BYTES);
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, "sealed_root_given", 1);
    if (rc == SC_OK)
        return sc_db_commit(c);
    sc_db_rollback(c);
    return rc;
}

int sc_sealed_root(sc_client *c, char hex[SC_SEALED_ROOT_HEX + 1], bool *pinned)
{
    sotto_public_key root;
    int rc = pinned_root(c, &root);

    hex[0] = '\0';
    *pinned = rc == SC_OK;
    if (rc == SC_OK)
        sc_hex(root.bytes, SOTTO_PUBLIC_KEY_BYTES, hex);
    return rc == SC_E_NOT_FOUND ? SC_OK : rc;
}

int sc_sealed_token_refresh(sc_client *c)
{
    uint8_t key[SOTTO_PROFILE_KEY_BYTES], token[SOTTO_DELIVERY_TOKEN_BYTES];
    sotto_public_key root;
    sc_api_result r;
    bool mismatch;
    int rc = pinned_root(c, &root);

    if (rc == SC_E_NOT_FOUND)
        return SC_OK; /* a server without sealed sender */
    if (rc != SC_OK)
        return rc;
    rc = own_profile_key(c, key);
    if (rc == SC_E_NOT_FOUND)
        return SC_OK; /* a linked device before its sync: the primary sets it */
    if (rc == SC_OK && sotto_delivery_token_derive(token, key) != SOTTO_OK)
        rc = sc_fail(c, SC_E_INTERNAL, "cannot derive the delivery token");
    sodium_memzero(key, sizeof key);
    if (rc != SC_OK)
        return rc;
    /* uploaded at every login, not only when it differs from what we last
     * sent: the server may have lost it (an operator cleared it, a restore
     * from an older backup), and op 34 is idempotent and cheap. While the
     * served root differs from the pinned one it is cleared instead. */
    mismatch = root_mismatch(c);
    if (sc_api_set_delivery_token(c, mismatch ? NULL : token, &r) == SC_API_OK) {
        rc = mismatch ? sc_cfg_delete(c, "sealed_token_sent")
                      : sc_cfg_set_blob(c, "sealed_token_sent", token, sizeof token);
        if (rc == SC_OK)
            rc = sc_cfg_delete(c, TOKEN_DUE);
    } else {
        /* advisory: tried again at the next housekeeping tick
         * (sc_sealed_token_tick) or login */
        rc = sc_cfg_set_u64(c, TOKEN_DUE, 1);
    }
    sc_api_result_clear(&r);
    sodium_memzero(token, sizeof token);
    return rc;
}

int sc_sealed_token_tick(sc_client *c)
{
    uint64_t due = 0;

    if (sc_cfg_get_u64(c, TOKEN_DUE, &due) != SC_OK || due == 0)
        return SC_OK;
    return sc_sealed_token_refresh(c);
}

int sc_sealed_after_auth(sc_client *c)
{
    uint8_t key[SOTTO_PROFILE_KEY_BYTES];
    int rc = pin_root(c);

    if (rc != SC_OK || !c->sealed_root_seen_ok || c->username == NULL)
        return rc;
    rc = own_profile_key(c, key);
    if (rc == SC_E_NOT_FOUND && c->device_id == 1) {
        /* sealed is the default between contacts: the primary makes the
         * profile key (profile.c shares it with accepted contacts, our
         * linked devices get it by link sync); marked, so that the first
         * `profile set` replaces it (contacts then fetch the profile) */
        randombytes_buf(key, sizeof key);
        rc = sc_cfg_set_blob(c, "profile_key", key, sizeof key);
        if (rc == SC_OK)
            rc = sc_cfg_set_u64(c, "profile_key_auto", 1);
    }
    sodium_memzero(key, sizeof key);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    return sc_sealed_token_refresh(c);
}

/* ------------------------------------------------------------ sending */

int sc_sealed_enabled(sc_client *c, bool *on)
{
    uint64_t off = 0;
    int rc = sc_cfg_get_u64(c, "sealed_off", &off);

    *on = rc == SC_E_NOT_FOUND || (rc == SC_OK && off == 0);
    return rc == SC_E_NOT_FOUND ? SC_OK : rc;
}

int sc_sealed_set_enabled(sc_client *c, bool on)
{
    return on ? sc_cfg_delete(c, "sealed_off") : sc_cfg_set_u64(c, "sealed_off", 1);
}

int sc_sealed_decide(sc_client *c, const char *dest, bool *seal, uint8_t token[16])
{
    sc_profile_row row;
    sotto_public_key root;
    uint64_t off = 0;
    bool request = true, blocked = false;
    char key[64];
    int rc;

    *seal = false;
    memset(token, 0, SOTTO_DELIVERY_TOKEN_BYTES);
    if (c->username == NULL || strcmp(dest, c->username) == 0)
        return SC_OK; /* our own devices: identified */
    if (sc_cfg_get_u64(c, "sealed_off", &off) == SC_OK && off != 0)
        return SC_OK;
    rc = pinned_root(c, &root);
    if (rc != SC_OK)
        return rc == SC_E_NOT_FOUND ? SC_OK : rc;
    if (root_mismatch(c))
        return SC_OK; /* the server serves another root: identified */
    rc = sc_requests_is_request(c, "contact", dest, &request);
    if (rc == SC_OK)
        rc = sc_blocked_is(c, dest, &blocked);
    if (rc != SC_OK || request || blocked)
        return rc;
    rc = sc_profile_row_get(c, dest, &row);
    if (rc != SC_OK)
        return rc == SC_E_NOT_FOUND ? SC_OK : rc;
    if (row.has_key && sotto_delivery_token_derive(token, row.key) == SOTTO_OK) {
        /* "sealed_refused:NAME" = the refused token || u64be when */
        uint8_t *b = NULL;
        size_t n = 0;
        snprintf(key, sizeof key, "sealed_refused:%s", dest);
        *seal = true;
        if (sc_cfg_get_blob(c, key, &b, &n) == SC_OK && n == SOTTO_DELIVERY_TOKEN_BYTES + 8 &&
            sodium_memcmp(b, token, SOTTO_DELIVERY_TOKEN_BYTES) == 0) {
            uint64_t at = 0;
            for (size_t i = 0; i < 8; i++)
                at = at << 8 | b[SOTTO_DELIVERY_TOKEN_BYTES + i];
            *seal = sc_now_ms() >= at + REFUSED_RETRY_MS;
        }
        free(b);
    }
    sc_profile_row_clear(&row);
    if (!*seal)
        sodium_memzero(token, SOTTO_DELIVERY_TOKEN_BYTES);
    return SC_OK;
}

int sc_sealed_note_refused_at(sc_client *c, const char *dest, const uint8_t token[16],
                              uint64_t at_ms)
{
    uint8_t v[SOTTO_DELIVERY_TOKEN_BYTES + 8];
    char key[64], text[128];

    snprintf(text, sizeof text, "the server refused %s's delivery token: sent identified", dest);
    debug_line(text);
    snprintf(key, sizeof key, "sealed_refused:%s", dest);
    memcpy(v, token, SOTTO_DELIVERY_TOKEN_BYTES);
    for (size_t i = 0; i < 8; i++)
        v[SOTTO_DELIVERY_TOKEN_BYTES + i] = (uint8_t)(at_ms >> (56 - 8 * i));
    return sc_cfg_set_blob(c, key, v, sizeof v);
}

void sc_sealed_note_busy(sc_client *c, const char *dest, bool queue_full)
{
    char text[160];

    (void)c;
    snprintf(text, sizeof text, "the server's sealed %s for %s is spent: sent identified",
             queue_full ? "queue (queue_sealed_max)" : "rate (rate_sealed_*)", dest);
    debug_line(text);
}

int sc_sealed_note_refused(sc_client *c, const char *dest, const uint8_t token[16])
{
    return sc_sealed_note_refused_at(c, dest, token, sc_now_ms());
}

/* Checks a certificate the server issued for us. The test hook
 * SOTTO_TEST_SEALED_ANY_CERT=1 (docs/cli.md "Test hooks") skips the check,
 * so that a test can make the recipient meet a bad certificate. */
static int check_own_cert(sc_client *c, const uint8_t *cert, size_t len, uint64_t now,
                          const sotto_public_key *root)
{
    sotto_sender_certificate sc;
    sotto_key_pair id;
    const char *hook = getenv("SOTTO_TEST_SEALED_ANY_CERT");
    int e;

    if (hook && strcmp(hook, "1") == 0)
        return sotto_sender_certificate_decode(&sc, cert, len) == SOTTO_OK
                   ? SC_OK
                   : sc_fail(c, SC_E_UNTRUSTED, "the server's sender certificate is malformed");
    e = sotto_sender_certificate_validate(&sc, cert, len, root, now);
    if (e != SOTTO_OK)
        return sc_fail(c, SC_E_UNTRUSTED,
                       "the server's sender certificate does not validate under the pinned"
                       " trust root: %s",
                       sotto_strerror(e));
    memset(&id, 0, sizeof id);
    if (c->ps.identity.get_identity_key_pair(c->ps.identity.user_data, &id) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot read the identity key");
    e = strcmp(sc.sender, c->username) == 0 && sc.device_id == c->device_id &&
        sotto_public_key_equal(&sc.identity_key, &id.pub);
    sotto_key_pair_wipe(&id);
    if (!e)
        return sc_fail(c, SC_E_UNTRUSTED,
                       "the server's sender certificate names %s device %u, not this device",
                       sc.sender, sc.device_id);
    return SC_OK;
}

uint64_t sc_sealed_cert_renew_at(uint64_t fetched_ms, uint64_t expires_ms)
{
    uint64_t half = expires_ms > fetched_ms ? (expires_ms - fetched_ms) / 2 : 0;

    return expires_ms - (half < CERT_MARGIN_MS ? half : CERT_MARGIN_MS);
}

int sc_sealed_cert(sc_client *c, uint8_t **cert, size_t *len)
{
    sotto_public_key root;
    uint64_t now = sc_now_ms(), renew = 0, server_exp = 0;
    sotto_sender_certificate dc;
    sc_api_result r;
    int rc;

    *cert = NULL;
    *len = 0;
    rc = pinned_root(c, &root);
    if (rc == SC_E_NOT_FOUND)
        return sc_fail(c, SC_E_STATE, "no sealed-sender trust root pinned");
    if (rc != SC_OK)
        return rc;
    /* nothing is sealed unless the root the server serves now (logged in:
     * the last login answer's) is the pinned one: a certificate that
     * validates under the pinned root only (a cached one from before the
     * operator's new-sealed-root) would be dropped by every recipient who
     * pinned the served one */
    if (root_mismatch(c) || (c->logged_in && !served_is(c, &root))) {
        (void)drop_cert(c);
        return sc_fail(c, SC_E_UNTRUSTED,
                       "the server serves another sealed-sender trust root than the pinned one:"
                       " not sealed until they agree");
    }
    if (sc_cfg_get_u64(c, "sealed_cert_renew", &renew) == SC_OK && now < renew &&
        sc_cfg_get_blob(c, "sealed_cert", cert, len) == SC_OK) {
        if (check_own_cert(c, *cert, *len, now, &root) == SC_OK)
            return SC_OK;
        free(*cert);
        *cert = NULL;
        *len = 0;
    }
    if (sc_api_sender_certificate(c, cert, len, &server_exp, &r) != SC_API_OK) {
        rc = sc_api_fail(c, &r, "sender certificate");
        sc_api_result_clear(&r);
        return rc;
    }
    sc_api_result_clear(&r);
    rc = check_own_cert(c, *cert, *len, now, &root);
    /* cached until min(1 h, half its validity) before the expiry the
     * certificate itself states (a short sender_cert_validity_s would
     * otherwise mean one request per send) */
    if (rc == SC_OK && sotto_sender_certificate_decode(&dc, *cert, *len) == SOTTO_OK &&
        (renew = sc_sealed_cert_renew_at(now, dc.expires_ms)) > now) {
        rc = sc_cfg_set_blob(c, "sealed_cert", *cert, *len);
        if (rc == SC_OK)
            rc = sc_cfg_set_u64(c, "sealed_cert_expires", dc.expires_ms);
        if (rc == SC_OK)
            rc = sc_cfg_set_u64(c, "sealed_cert_renew", renew);
    }
    if (rc != SC_OK) {
        free(*cert);
        *cert = NULL;
        *len = 0;
    }
    return rc;
}

static sc_api_outcome local_refusal(sc_api_result *r, const char *why)
{
    memset(r, 0, sizeof *r);
    r->outcome = SC_API_REFUSED;
    r->status = SC_SEALED_LOCAL_REFUSAL;
    snprintf(r->error, sizeof r->error, "%.200s", why);
    debug_line(r->error);
    return r->outcome;
}

static void free_bodies(sc_api_outgoing *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        free((void *)m[i].body);
    free(m);
}

sc_api_outcome sc_sealed_send(sc_client *c, const char *dest, const sc_api_outgoing *msgs, size_t n,
                              const uint8_t token[16], uint64_t *server_ts, sc_api_result *r)
{
    sc_api_outgoing *sm = NULL;
    sotto_key_pair id;
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    sc_api_outcome out;
    char err[256];

    if (server_ts)
        *server_ts = 0;
    memset(&id, 0, sizeof id);
    if (sc_sealed_cert(c, &cert, &cert_len) != SC_OK)
        return local_refusal(r, c->err);
    sm = calloc(n ? n : 1, sizeof *sm);
    if (sm == NULL ||
        c->ps.identity.get_identity_key_pair(c->ps.identity.user_data, &id) != SOTTO_OK) {
        free(sm);
        free(cert);
        return local_refusal(r, "cannot read the identity key");
    }
    for (size_t i = 0; i < n; i++) {
        sotto_address a = {dest, strlen(dest), msgs[i].device_id};
        sotto_public_key rk;
        uint8_t *body = NULL;
        size_t body_len = 0;
        uint8_t type = msgs[i].type == SOTTO_MSG_PREKEY   ? SOTTO_SEALED_TYPE_PREKEY
                       : msgs[i].type == SOTTO_MSG_SIGNAL ? SOTTO_SEALED_TYPE_MESSAGE
                                                          : 0;
        int e = type == 0 ? SOTTO_ERR_INVALID_ARGUMENT
                          : c->ps.identity.get(c->ps.identity.user_data, &a, &rk);
        if (e == SOTTO_OK)
            e = sotto_sealed_encrypt(&body, &body_len, &id, &rk, type, cert, cert_len, msgs[i].body,
                                     msgs[i].body_len);
        if (e != SOTTO_OK) {
            snprintf(err, sizeof err, "cannot seal for %s device %u: %s", dest, msgs[i].device_id,
                     sotto_strerror(e));
            free_bodies(sm, i);
            sotto_key_pair_wipe(&id);
            free(cert);
            return local_refusal(r, err);
        }
        sm[i].device_id = msgs[i].device_id;
        sm[i].registration_id = msgs[i].registration_id;
        sm[i].type = 6;
        sm[i].body = body;
        sm[i].body_len = body_len;
    }
    sotto_key_pair_wipe(&id);
    free(cert);
    /* the connection that never logs in: opened once, reused */
    if (c->sealed_conn && !sc_conn_alive(c->sealed_conn)) {
        sc_conn_free(c->sealed_conn);
        c->sealed_conn = NULL;
    }
    if (c->sealed_conn == NULL) {
        sc_server srv = sc_server_of(c);
        if (sc_conn_open(&c->sealed_conn, &srv, SC_TIMEOUT_MS, err, sizeof err) != 0) {
            c->sealed_conn = NULL;
            free_bodies(sm, n);
            memset(r, 0, sizeof *r);
            r->outcome = SC_API_NETWORK;
            r->status = -1;
            snprintf(r->error, sizeof r->error, "%s", err);
            return r->outcome;
        }
        /* a connection before its first good token has the server's
         * pre-login frame cap (docs/api.md "Sealed sender"): a send with no
         * message checks the token (answered "mismatched devices") and
         * lifts it, so that a large batch fits */
        out = sc_api_send_sealed(c, c->sealed_conn, dest, NULL, 0, token, NULL, r);
        if (out == SC_API_NETWORK || out == SC_API_RETRY ||
            (out == SC_API_REFUSED && r->status == SC_ST_UNAUTHENTICATED)) {
            free_bodies(sm, n);
            /* not lifted: the next sealed send starts on a new connection */
            sc_conn_free(c->sealed_conn);
            c->sealed_conn = NULL;
            return out;
        }
        sc_api_result_clear(r);
    }
    out = sc_api_send_sealed(c, c->sealed_conn, dest, sm, n, token, server_ts, r);
    free_bodies(sm, n);
    if (out == SC_API_NETWORK && c->sealed_conn) {
        sc_conn_free(c->sealed_conn);
        c->sealed_conn = NULL;
    }
    return out;
}

/* ------------------------------------------------------------ receiving */

/* Reports a sealed envelope that can never be shown (nothing stored). */
static void refuse(sc_client *c, const sc_envelope *e, const char *why, sc_event_cb cb, void *ud)
{
    sc_event ev;
    char text[384];

    snprintf(text, sizeof text, "a sealed message was refused and dropped: %s", why);
    debug_line(text);
    if (cb == NULL)
        return;
    memset(&ev, 0, sizeof ev);
    ev.kind = SC_EV_NOTICE;
    ev.sender = "";
    ev.timestamp = e->server_ts;
    ev.server_timestamp = e->server_ts;
    ev.body = text;
    ev.body_len = strlen(text);
    ev.notice = "sealed_refused";
    (void)c;
    cb(ud, &ev);
}

/* The certificate's identity key against the sender's signed device list
 * (the one held, else a fresh one). *mismatch true when the list names the
 * device with another key, or the server has no such account. Another
 * error fetching the list is returned as is (the envelope stays unacked,
 * or the caller lets sc_accept_envelope hold it); a device the list does
 * not name is left to sc_accept_envelope (dropped with its notice). */
static int check_listed(sc_client *c, const sotto_sender_certificate *cert, bool *mismatch)
{
    sotto_device_list l;
    const sotto_device_entry *d = NULL;
    int rc = sc_account_current(c, cert->sender, &l);

    *mismatch = false;
    if (rc == SC_OK)
        d = sotto_device_list_find(&l, cert->device_id);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    if (d == NULL || !sotto_public_key_equal(&d->identity_key, &cert->identity_key)) {
        rc = sc_connect(c);
        if (rc == SC_OK)
            rc = sc_account_refresh(c, cert->sender, &l);
        if (rc == SC_E_NOT_FOUND) {
            *mismatch = true; /* a certificate for an account the server does not have */
            return SC_OK;
        }
        if (rc != SC_OK)
            return rc;
        d = sotto_device_list_find(&l, cert->device_id);
    }
    *mismatch = d != NULL && !sotto_public_key_equal(&d->identity_key, &cert->identity_key);
    return SC_OK;
}

int sc_sealed_open(sc_client *c, const sc_envelope *e, sc_envelope *inner, bool *refused,
                   sc_event_cb cb, void *ud)
{
    sotto_sealed_result res;
    sotto_public_key root;
    sotto_key_pair id;
    bool seen = false, mismatch = false;
    uint64_t now, at;
    char why[256];
    int rc, e2;

    memset(inner, 0, sizeof *inner);
    memset(&res, 0, sizeof res);
    *refused = false;
    if (e->id_len == 0) {
        *refused = true; /* nothing to attribute or de-duplicate: ack and forget */
        return SC_OK;
    }
    rc = sc_envelope_seen(c, e->id, e->id_len, &seen);
    if (rc != SC_OK)
        return rc;
    if (seen) {
        *refused = true; /* a redelivery of one already handled: ack */
        return SC_OK;
    }
    rc = pinned_root(c, &root);
    if (rc == SC_E_NOT_FOUND) {
        refuse(c, e, "no sealed-sender trust root is pinned on this device", cb, ud);
        *refused = true;
        return SC_OK;
    }
    if (rc != SC_OK)
        return rc;
    memset(&id, 0, sizeof id);
    if (c->ps.identity.get_identity_key_pair(c->ps.identity.user_data, &id) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot read the identity key");
    /* the certificate is checked at the time the server took the envelope
     * (a recipient offline for longer than the certificate is valid still
     * gets it), not at a server time that is in our future */
    now = sc_now_ms();
    at = e->server_ts != 0 && e->server_ts <= now + SERVER_TS_SKEW_MS ? e->server_ts : now;
    e2 = sotto_sealed_decrypt(&res, e->body, e->body_len, &id, &root, at);
    sotto_key_pair_wipe(&id);
    if (e2 != SOTTO_OK) {
        snprintf(why, sizeof why, "%s", sotto_strerror(e2));
        refuse(c, e, why, cb, ud);
        *refused = true;
        return SC_OK;
    }
    if (res.type != SOTTO_SEALED_TYPE_PREKEY && res.type != SOTTO_SEALED_TYPE_MESSAGE) {
        snprintf(why, sizeof why, "from %s: inner message type %u is not supported",
                 res.sender.sender, res.type);
        goto refused;
    }
    if (c->username && strcmp(res.sender.sender, c->username) == 0) {
        /* our own devices send to us identified: a sealed one naming us
         * came from a certificate the server issued to someone else */
        snprintf(why, sizeof why, "its certificate names this account (%s)", res.sender.sender);
        goto refused;
    }
    if (res.type == SOTTO_SEALED_TYPE_PREKEY) {
        /* a new session: the identity key it carries must be the
         * certificate's */
        sotto_prekey_message_info info;
        if (sotto_prekey_message_inspect(&info, res.content, res.content_len) != SOTTO_OK ||
            !sotto_public_key_equal(&info.identity_key, &res.sender.identity_key)) {
            snprintf(why, sizeof why,
                     "from %s device %u: the message's identity key is not the certificate's",
                     res.sender.sender, res.sender.device_id);
            goto refused;
        }
    }
    rc = check_listed(c, &res.sender, &mismatch);
    if (rc == SC_E_NETWORK || rc == SC_E_STORE || rc == SC_E_INTERNAL) {
        sotto_sealed_result_free(&res);
        return rc; /* not acked: it comes again */
    }
    /* another error (a changed account key, the key directory): the inner
     * envelope goes on and sc_accept_envelope holds it with its notice */
    if (rc == SC_OK && mismatch) {
        snprintf(why, sizeof why,
                 "from %s device %u: its certificate's identity key is not one %s's signed"
                 " device list names (an identity change must come through the list)",
                 res.sender.sender, res.sender.device_id, res.sender.sender);
        goto refused;
    }
    memcpy(inner->id, e->id, sizeof inner->id);
    inner->id_len = e->id_len;
    inner->server_ts = e->server_ts;
    snprintf(inner->source, sizeof inner->source, "%s", res.sender.sender);
    inner->source_device = res.sender.device_id;
    inner->type = res.type == SOTTO_SEALED_TYPE_PREKEY ? SOTTO_MSG_PREKEY : SOTTO_MSG_SIGNAL;
    inner->body = res.content; /* handed over: sc_envelope_clear wipes and frees it */
    inner->body_len = res.content_len;
    res.content = NULL;
    res.content_len = 0;
    sotto_sealed_result_free(&res);
    return SC_OK;
refused:
    sotto_sealed_result_free(&res);
    refuse(c, e, why, cb, ud);
    *refused = true;
    return SC_OK;
}
