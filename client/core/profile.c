/*
 * client/core/profile.c -- profiles: a display name and an optional avatar
 * encrypted with the account's profile key (issue 11, everyday.h;
 * docs/protocol.md "Profiles").
 *
 * The profile key is 32 random bytes (client_config "profile_key", made by
 * the first `profile set`). It goes out in DataMessage.profile_key only to
 * accepted conversations (sc_profile_decorate), to our own devices in
 * SyncMessage.profile_key (+ profile_name) and in link syncs (linksync.c).
 * A block and `profile rotate-key` replace it (sc_profile_rotate_key,
 * issue 12): profile and delivery token uploaded under the new key, which
 * then goes to our devices and, as a FLAG_PROFILE_KEY_UPDATE message, to
 * every accepted contact not blocked.
 * The server holds only the ciphertext of
 *
 *   plaintext = 0x01 | u64be time (ms, when the owner set it) | u8 name_len
 *               | name | u8 type_len | content type | u32be avatar_len
 *               | avatar | zero bytes up to the bucket
 *   bucket    = 512 bytes without an avatar, else the next multiple of
 *               4096 (the name's length never shows; an avatar's size
 *               shows to 4 KiB)
 *   key       = HKDF-SHA256(salt = 32 zero bytes, ikm = profile key,
 *                           info = "Sotto profile v1", 32 bytes)
 *   wire      = 0x01 | nonce (24 random bytes) |
 *               XChaCha20-Poly1305(key, nonce, AD = the owner's username,
 *                                  plaintext)
 *
 * A contact's profile is fetched when its key is new or changed, and again
 * once a day: from the event that shows the contact's message (after the
 * envelope's transaction: a network failure never fails the envelope) and
 * from sc_everyday_tick. A ciphertext that does not open under the key and
 * username, or a plaintext that is not exactly the format above, is
 * refused (SC_E_INTEGRITY) and nothing of it is stored or shown. So is one
 * whose time is older than the newest we opened under the same key (a
 * server serving an old profile again: client_config "profile_seen:<name>"
 * = BLAKE2b-128(key) | u64be time); the name held before stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "api.h"
#include "everyday.h"
#include "sotto/sealed.h"

#define PROFILE_VERSION 0x01
#define PROFILE_INFO "Sotto profile v1"
#define PROFILE_CT_MAX (128u * 1024)
#define PROFILE_TYPE_MAX 64
#define PROFILE_BUCKET_SMALL 512
#define PROFILE_BUCKET_AVATAR 4096
#define PROFILE_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define PROFILE_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PROFILE_REFRESH_MS (24ull * 3600 * 1000) /* contacts' profiles again daily */
#define PROFILE_RETRY_MS 60000                   /* after a network failure */
#define PROFILE_TICK_MAX 8                       /* fetches per tick */

_Static_assert(1 + 8 + 1 + SC_PROFILE_NAME_MAX + 1 + PROFILE_TYPE_MAX + 4 + SC_PROFILE_AVATAR_MAX +
                       PROFILE_BUCKET_AVATAR + 1 + PROFILE_NONCE + PROFILE_TAG <=
                   PROFILE_CT_MAX,
               "the largest profile fits the server's cap");

/* ---- the profile format ---- */

typedef struct profile {
    char name[SC_PROFILE_NAME_MAX + 1];
    char type[PROFILE_TYPE_MAX + 1];
    uint8_t *avatar; /* malloc()ed or NULL */
    size_t avatar_len;
    uint64_t time_ms; /* when the owner set it (rollback check) */
} profile;

static void profile_clear(profile *p)
{
    if (p->avatar) {
        sodium_memzero(p->avatar, p->avatar_len);
        free(p->avatar);
    }
    sodium_memzero(p, sizeof *p);
}

/* A display name: UTF-8, no control characters (C0, DEL, C1). */
static bool name_ok(const char *s, size_t len)
{
    if (len == 0 || len > SC_PROFILE_NAME_MAX || !sc_utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
        if (ch == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)
            return false; /* U+0080..U+009F */
    }
    return true;
}

/* A content type: printable ASCII without spaces, 1..64 bytes. */
static bool type_ok(const char *s, size_t len)
{
    if (len == 0 || len > PROFILE_TYPE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    return true;
}

static size_t bucket_of(size_t len, bool avatar)
{
    if (!avatar)
        return PROFILE_BUCKET_SMALL;
    return (len + PROFILE_BUCKET_AVATAR - 1) / PROFILE_BUCKET_AVATAR * PROFILE_BUCKET_AVATAR;
}

/* HKDF-SHA256 (RFC 5869) with one output block: the profile's AEAD key. */
static void derive_key(const uint8_t pk[SC_PROFILE_KEY_BYTES], uint8_t out[32])
{
    static const uint8_t salt[32];
    uint8_t prk[32];
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256(prk, pk, SC_PROFILE_KEY_BYTES, salt); /* extract: key = salt */
    crypto_auth_hmacsha256_init(&st, prk, sizeof prk);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)PROFILE_INFO, strlen(PROFILE_INFO));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)"\x01", 1);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(&st, sizeof st);
}

/* Encrypts p for username under profile key pk: *out malloc()ed. */
static int profile_seal(sc_client *c, const profile *p, const char *username,
                        const uint8_t pk[SC_PROFILE_KEY_BYTES], uint8_t **out, size_t *out_len)
{
    size_t nl = strlen(p->name), tl = p->avatar_len ? strlen(p->type) : 0;
    size_t used = 1 + 8 + 1 + nl + 1 + tl + 4 + p->avatar_len;
    size_t len = bucket_of(used, p->avatar_len > 0);
    uint8_t key[32], *pt, *ct;
    unsigned long long clen = 0;
    size_t o = 0;

    pt = calloc(1, len);
    ct = malloc(1 + PROFILE_NONCE + len + PROFILE_TAG);
    if (pt == NULL || ct == NULL) {
        free(pt);
        free(ct);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    pt[o++] = PROFILE_VERSION;
    for (int i = 7; i >= 0; i--)
        pt[o++] = (uint8_t)(p->time_ms >> (8 * i));
    pt[o++] = (uint8_t)nl;
    memcpy(pt + o, p->name, nl);
    o += nl;
    pt[o++] = (uint8_t)tl;
    memcpy(pt + o, p->type, tl);
    o += tl;
    pt[o++] = (uint8_t)(p->avatar_len >> 24);
    pt[o++] = (uint8_t)(p->avatar_len >> 16);
    pt[o++] = (uint8_t)(p->avatar_len >> 8);
    pt[o++] = (uint8_t)p->avatar_len;
    if (p->avatar_len)
        memcpy(pt + o, p->avatar, p->avatar_len);
    ct[0] = PROFILE_VERSION;
    randombytes_buf(ct + 1, PROFILE_NONCE);
    derive_key(pk, key);
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct + 1 + PROFILE_NONCE, &clen, pt, len,
                                               (const uint8_t *)username, strlen(username), NULL,
                                               ct + 1, key);
    sodium_memzero(key, sizeof key);
    sodium_memzero(pt, len);
    free(pt);
    *out = ct;
    *out_len = 1 + PROFILE_NONCE + (size_t)clen;
    return SC_OK;
}

/* Opens a profile of username; SC_E_INTEGRITY for anything but a valid
 * one. */
static int profile_open(sc_client *c, const uint8_t *ct, size_t ct_len, const char *username,
                        const uint8_t pk[SC_PROFILE_KEY_BYTES], profile *p)
{
    uint8_t key[32], *pt;
    unsigned long long plen = 0;
    size_t len, o = 0, nl, tl, al;
    bool ok;

    memset(p, 0, sizeof *p);
    if (ct_len < 1 + PROFILE_NONCE + PROFILE_TAG + 1 || ct_len > PROFILE_CT_MAX ||
        ct[0] != PROFILE_VERSION)
        return sc_fail(c, SC_E_INTEGRITY,
                       "the profile of %s from the server is malformed; it was refused", username);
    len = ct_len - 1 - PROFILE_NONCE - PROFILE_TAG;
    pt = malloc(len);
    if (pt == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    derive_key(pk, key);
    ok = crypto_aead_xchacha20poly1305_ietf_decrypt(
             pt, &plen, NULL, ct + 1 + PROFILE_NONCE, ct_len - 1 - PROFILE_NONCE,
             (const uint8_t *)username, strlen(username), ct + 1, key) == 0;
    sodium_memzero(key, sizeof key);
    if (!ok) {
        free(pt);
        return sc_fail(c, SC_E_INTEGRITY,
                       "the profile of %s from the server does not decrypt under %s's profile"
                       " key (forged or damaged); it was refused",
                       username, username);
    }
    /* exactly the format: version, lengths in range, zero padding to the
     * bucket */
    ok = len >= 15 && pt[o++] == PROFILE_VERSION;
    for (int i = 0; ok && i < 8; i++)
        p->time_ms = p->time_ms << 8 | pt[o++];
    nl = ok ? pt[o++] : 0;
    ok = ok && nl <= SC_PROFILE_NAME_MAX && o + nl + 1 + 4 <= len && name_ok((char *)pt + o, nl);
    if (ok) {
        memcpy(p->name, pt + o, nl);
        p->name[nl] = '\0';
        o += nl;
        tl = pt[o++];
        ok = o + tl + 4 <= len;
    }
    if (ok) {
        ok = tl == 0 || type_ok((char *)pt + o, tl);
        memcpy(p->type, pt + o, ok ? tl : 0);
        p->type[ok ? tl : 0] = '\0';
        o += tl;
    }
    if (ok) {
        al = (size_t)pt[o] << 24 | (size_t)pt[o + 1] << 16 | (size_t)pt[o + 2] << 8 | pt[o + 3];
        o += 4;
        ok = al <= SC_PROFILE_AVATAR_MAX && o + al <= len && (al == 0) == (tl == 0) &&
             len == bucket_of(o + al, al > 0);
        if (ok && al) {
            p->avatar = malloc(al);
            ok = p->avatar != NULL;
            if (ok) {
                memcpy(p->avatar, pt + o, al);
                p->avatar_len = al;
            }
        }
        if (ok)
            o += al;
    }
    for (size_t i = o; ok && i < len; i++)
        ok = pt[i] == 0;
    sodium_memzero(pt, len);
    free(pt);
    if (!ok) {
        profile_clear(p);
        return sc_fail(c, SC_E_INTEGRITY,
                       "the profile of %s is not a valid profile; it was refused", username);
    }
    return SC_OK;
}

/* ---- keys and local state ---- */

/* Our profile key: SC_E_NOT_FOUND when we never set a profile. */
static int own_key(sc_client *c, uint8_t key[SC_PROFILE_KEY_BYTES])
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = sc_cfg_get_blob(c, "profile_key", &b, &n);
    if (rc == SC_OK && n != SC_PROFILE_KEY_BYTES)
        rc = SC_E_NOT_FOUND;
    if (rc == SC_OK)
        memcpy(key, b, SC_PROFILE_KEY_BYTES);
    if (b) {
        sodium_memzero(b, n);
        free(b);
    }
    return rc;
}

/* Saves an avatar as <attachments>/avatar-<username> (0600). *path_out
 * malloc()ed. */
static int save_avatar(sc_client *c, const char *username, const profile *p, char **path_out)
{
    size_t n = strlen(c->att_dir) + strlen(username) + 32;
    char *path = malloc(n), *tmp = malloc(n + 8);
    int fd = -1, rc = SC_OK;

    *path_out = NULL;
    if (path == NULL || tmp == NULL) {
        free(path);
        free(tmp);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    snprintf(path, n, "%s/avatar-%s", c->att_dir, username);
    snprintf(tmp, n + 8, "%s.XXXXXX", path);
    fd = mkstemp(tmp); /* 0600 */
    if (fd < 0) {
        rc = sc_fail(c, SC_E_STORE, "cannot write the avatar: %s", strerror(errno));
    } else {
        size_t off = 0;
        while (rc == SC_OK && off < p->avatar_len) {
            ssize_t w = write(fd, p->avatar + off, p->avatar_len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                rc = sc_fail(c, SC_E_STORE, "cannot write the avatar: %s", strerror(errno));
            else
                off += (size_t)w;
        }
        if (rc == SC_OK && fsync(fd) != 0)
            rc = sc_fail(c, SC_E_STORE, "cannot write the avatar: %s", strerror(errno));
        if (close(fd) != 0 && rc == SC_OK)
            rc = sc_fail(c, SC_E_STORE, "cannot write the avatar: %s", strerror(errno));
        if (rc == SC_OK && rename(tmp, path) != 0)
            rc = sc_fail(c, SC_E_STORE, "cannot write the avatar: %s", strerror(errno));
        if (rc != SC_OK)
            (void)unlink(tmp);
    }
    free(tmp);
    if (rc != SC_OK) {
        free(path);
        return rc;
    }
    *path_out = path;
    return SC_OK;
}

static void remove_avatar(sc_client *c, const char *username)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/avatar-%s", c->att_dir, username) < sizeof path)
        (void)unlink(path);
}

/* The newest profile time we opened for `name` under key pk (0: none, or
 * one under another key); set stores t. */
static uint64_t seen_get(sc_client *c, const char *name, const uint8_t pk[SC_PROFILE_KEY_BYTES])
{
    char k[128];
    uint8_t h[16], *b = NULL;
    size_t n = 0;
    uint64_t t = 0;

    if ((size_t)snprintf(k, sizeof k, "profile_seen:%s", name) >= sizeof k ||
        sc_cfg_get_blob(c, k, &b, &n) != SC_OK)
        return 0;
    crypto_generichash(h, sizeof h, pk, SC_PROFILE_KEY_BYTES, NULL, 0);
    if (n == sizeof h + 8 && sodium_memcmp(b, h, sizeof h) == 0)
        for (size_t i = 0; i < 8; i++)
            t = t << 8 | b[sizeof h + i];
    free(b);
    return t;
}

static int seen_set(sc_client *c, const char *name, const uint8_t pk[SC_PROFILE_KEY_BYTES],
                    uint64_t t)
{
    char k[128];
    uint8_t v[16 + 8];

    if ((size_t)snprintf(k, sizeof k, "profile_seen:%s", name) >= sizeof k)
        return sc_fail(c, SC_E_USAGE, "username too long");
    crypto_generichash(v, 16, pk, SC_PROFILE_KEY_BYTES, NULL, 0);
    for (size_t i = 0; i < 8; i++)
        v[16 + i] = (uint8_t)(t >> (8 * (7 - i)));
    return sc_cfg_set_blob(c, k, v, sizeof v);
}

/* Fetches, opens and stores the profile of contact `name` with key pk.
 * Outside any transaction. SC_E_NOT_FOUND (no profile: stored as none),
 * SC_E_INTEGRITY (refused: stored as none), network errors (nothing
 * stored: still due). */
static int fetch_contact(sc_client *c, const char *name, const uint8_t pk[SC_PROFILE_KEY_BYTES])
{
    sc_api_result r;
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    profile p;
    char *path = NULL;
    int rc;

    if (sc_api_get_profile(c, name, &ct, &ct_len, &r) != SC_API_OK) {
        rc = sc_api_fail(c, &r, "profile");
        if (rc == SC_E_NOT_FOUND) {
            remove_avatar(c, name);
            (void)sc_profile_fetched(c, name, NULL, NULL, NULL, sc_now_ms());
            (void)sc_fail(c, SC_E_NOT_FOUND, "%s has no profile on the server", name);
        }
        return rc;
    }
    rc = profile_open(c, ct, ct_len, name, pk, &p);
    free(ct);
    if (rc == SC_OK && p.time_ms < seen_get(c, name, pk)) {
        /* an older profile served again: keep what we hold, fetched now */
        sc_profile_row row;
        profile_clear(&p);
        if (sc_profile_row_get(c, name, &row) == SC_OK) {
            (void)sc_profile_fetched(c, name, row.display_name, row.avatar_type, row.avatar_path,
                                     sc_now_ms());
            sc_profile_row_clear(&row);
        }
        return sc_fail(c, SC_E_INTEGRITY,
                       "the profile of %s from the server is older than one already seen"
                       " (rolled back); it was refused",
                       name);
    }
    if (rc != SC_OK) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", sc_errmsg(c));
        remove_avatar(c, name);
        (void)sc_profile_fetched(c, name, NULL, NULL, NULL, sc_now_ms());
        return sc_fail(c, rc, "%s", keep);
    }
    if (p.avatar_len)
        rc = save_avatar(c, name, &p, &path);
    else
        remove_avatar(c, name);
    if (rc == SC_OK)
        rc = sc_profile_fetched(c, name, p.name, p.avatar_len ? p.type : NULL, path, sc_now_ms());
    if (rc == SC_OK)
        rc = seen_set(c, name, pk, p.time_ms);
    free(path);
    profile_clear(&p);
    return rc;
}

/* Whether a network fetch may run now: connected, outside a transaction,
 * not within a minute of a network failure. */
static bool may_fetch(sc_client *c)
{
    uint64_t after = 0;
    if (c->username == NULL || c->conn == NULL || !c->logged_in || sc_db_in_transaction(c))
        return false;
    if (sc_cfg_get_u64(c, "profile_retry_after", &after) == SC_OK && after > sc_now_ms())
        return false;
    return true;
}

/* After a fetch attempt: a network-type failure delays the next one. */
static void fetch_outcome(sc_client *c, int rc)
{
    if (rc == SC_E_NETWORK || rc == SC_E_RETRY || rc == SC_E_SERVER)
        (void)sc_cfg_set_u64(c, "profile_retry_after", sc_now_ms() + PROFILE_RETRY_MS);
}

/* ---- everyday.h hooks ---- */

/* Wipes and frees a copy of the profile key (sc_keep). */
static void key_free(void *p)
{
    if (p) {
        sodium_memzero(p, SC_PROFILE_KEY_BYTES);
        free(p);
    }
}

int sc_profile_decorate(sc_client *c, const char *conv_kind, const char *conv,
                        Sotto__Content__DataMessage *dm, sc_keep *k)
{
    bool request = true;
    uint8_t *key;
    int rc;

    dm->profile_key.data = NULL;
    dm->profile_key.len = 0;
    /* only to accepted conversations: never to a message request */
    rc = sc_requests_is_request(c, conv_kind, conv, &request);
    if (rc != SC_OK || request)
        return rc;
    /* the DataMessage points to a copy that the send wipes when it is done
     * (the same key client_config holds) */
    key = malloc(SC_PROFILE_KEY_BYTES);
    if (key == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    rc = own_key(c, key);
    if (rc != SC_OK) {
        key_free(key);
        return rc == SC_E_NOT_FOUND ? SC_OK : rc; /* no profile: nothing to share */
    }
    if (sc_keep_add(k, key, key_free) != SC_OK)
        return sc_fail(c, SC_E_INTERNAL, "too many allocations for one send");
    dm->profile_key.data = key;
    dm->profile_key.len = SC_PROFILE_KEY_BYTES;
    return SC_OK;
}

int sc_profile_data(sc_client *c, const sc_envelope *e, const char *author, bool outgoing,
                    const Sotto__Content__DataMessage *dm, bool *handled)
{
    (void)e;
    *handled = false;
    if (outgoing || dm == NULL || author == NULL)
        return SC_OK;
    if (c->username && strcmp(author, c->username) != 0 &&
        dm->profile_key.len == SC_PROFILE_KEY_BYTES) {
        bool changed = false;
        int rc = sc_profile_key_put(c, author, dm->profile_key.data, &changed);
        if (rc != SC_OK)
            return rc;
        /* changed: fetched_ms is 0, the event or the next tick fetches it */
    }
    if (dm->flags & SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_PROFILE_KEY_UPDATE)
        *handled = true; /* carries only the key: nothing to show */
    return SC_OK;
}

int sc_profile_event(sc_client *c, const sc_msg *m, sc_event *ev, sc_keep *k)
{
    sc_profile_row row;
    int rc;

    if (m->sender == NULL || m->sender[0] == '\0' || m->direction != 0 ||
        (c->username && strcmp(m->sender, c->username) == 0))
        return SC_OK;
    rc = sc_profile_row_get(c, m->sender, &row);
    if (rc != SC_OK)
        return rc == SC_E_NOT_FOUND ? SC_OK : rc;
    if (row.has_key && row.fetched_ms == 0 && may_fetch(c)) {
        /* a new key: fetch now, after the envelope's transaction; a
         * failure leaves it due for the tick and never fails the event */
        uint8_t key[SC_PROFILE_KEY_BYTES];
        memcpy(key, row.key, sizeof key);
        sc_profile_row_clear(&row);
        fetch_outcome(c, fetch_contact(c, m->sender, key));
        sodium_memzero(key, sizeof key);
        rc = sc_profile_row_get(c, m->sender, &row);
        if (rc != SC_OK)
            return rc == SC_E_NOT_FOUND ? SC_OK : rc;
    }
    if (row.display_name && sc_keep_add(k, row.display_name, NULL) == SC_OK) {
        ev->display_name = row.display_name;
        row.display_name = NULL;
    }
    sc_profile_row_clear(&row);
    return SC_OK;
}

int sc_profile_sync(sc_client *c, const sc_envelope *e, const Sotto__Content__Content *ct,
                    pending_emit *pe)
{
    const Sotto__Content__SyncMessage *s = ct->sync;
    uint64_t have = 0;
    int rc = SC_OK;

    (void)e, (void)pe;
    if (s == NULL || (s->profile_key.len == 0 && s->profile_name[0] == '\0'))
        return SC_OK;
    /* the newest change (Content.timestamp) wins */
    if (sc_cfg_get_u64(c, "profile_ts", &have) == SC_OK && have > ct->timestamp)
        return SC_OK;
    if (s->profile_key.len == SC_PROFILE_KEY_BYTES)
        rc = sc_cfg_set_blob(c, "profile_key", s->profile_key.data, SC_PROFILE_KEY_BYTES);
    if (rc == SC_OK && s->profile_key.len == SC_PROFILE_KEY_BYTES)
        rc = sc_cfg_delete(c, "profile_key_auto"); /* sealed.c: the account's key now */
    if (rc == SC_OK && s->profile_name[0] != '\0' &&
        name_ok(s->profile_name, strlen(s->profile_name)))
        rc = sc_cfg_set_text(c, "profile_name", s->profile_name);
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, "profile_ts", ct->timestamp);
    return rc;
}

void sc_profile_tick(sc_client *c)
{
    char **names = NULL;
    size_t n = 0;

    if (!may_fetch(c))
        return;
    {
        /* a rotation a block started while offline (sc_block) */
        bool due = false;
        if (sc_profile_rotate_due(c, &due) == SC_OK && due)
            fetch_outcome(c, sc_profile_rotate_key(c, NULL));
        /* a delivery token upload that failed (sealed.c) */
        (void)sc_sealed_token_tick(c);
    }
    if (sc_profile_due(c, sc_now_ms() - PROFILE_REFRESH_MS, PROFILE_TICK_MAX, &names, &n) != SC_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        sc_profile_row row;
        int rc;
        if (sc_profile_row_get(c, names[i], &row) != SC_OK)
            continue;
        rc = row.has_key ? fetch_contact(c, names[i], row.key) : SC_OK;
        sc_profile_row_clear(&row);
        fetch_outcome(c, rc);
        if (rc == SC_E_NETWORK || rc == SC_E_RETRY || rc == SC_E_SERVER)
            break;
    }
    sc_strv_free(names, n);
}

/* ---- public API (sotto_client.h) ---- */

static const char *guess_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot == NULL)
        return "application/octet-stream";
    if (strcasecmp(dot, ".png") == 0)
        return "image/png";
    if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0)
        return "image/jpeg";
    if (strcasecmp(dot, ".gif") == 0)
        return "image/gif";
    if (strcasecmp(dot, ".webp") == 0)
        return "image/webp";
    return "application/octet-stream";
}

static int read_avatar(sc_client *c, const char *path, profile *p)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t off = 0;

    if (fd < 0)
        return sc_fail(c, SC_E_USAGE, "cannot read the avatar %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sc_fail(c, SC_E_USAGE, "the avatar %s is not a regular file", path);
    }
    if (sb.st_size <= 0 || (uint64_t)sb.st_size > SC_PROFILE_AVATAR_MAX) {
        close(fd);
        return sc_fail(c, SC_E_USAGE, "the avatar must be 1 to %u bytes (%s has %lld)",
                       (unsigned)SC_PROFILE_AVATAR_MAX, path, (long long)sb.st_size);
    }
    p->avatar = malloc((size_t)sb.st_size);
    if (p->avatar == NULL) {
        close(fd);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    while (off < (size_t)sb.st_size) {
        ssize_t r = read(fd, p->avatar + off, (size_t)sb.st_size - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            return sc_fail(c, SC_E_USAGE, "cannot read the avatar %s", path);
        }
        off += (size_t)r;
    }
    close(fd);
    p->avatar_len = off;
    return SC_OK;
}

/* Tells our other devices our profile key and name (queued, then
 * flushed: a failure leaves it queued). */
static int sync_own(sc_client *c, const uint8_t key[SC_PROFILE_KEY_BYTES], const char *name,
                    uint64_t ts)
{
    Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__SyncMessage sync = SOTTO__CONTENT__SYNC_MESSAGE__INIT;
    uint8_t k[SC_PROFILE_KEY_BYTES];
    int rc;

    memcpy(k, key, sizeof k);
    sync.profile_key.data = k;
    sync.profile_key.len = sizeof k;
    sync.profile_name = (char *)name;
    ct.timestamp = ts;
    ct.sync = &sync;
    rc = sc_enqueue_content(c, c->username, &ct, 0);
    sodium_memzero(k, sizeof k);
    return rc;
}

int sc_profile_set(sc_client *c, const char *name, const char *avatar_path,
                   const char *content_type)
{
    profile p;
    uint8_t key[SC_PROFILE_KEY_BYTES], *ct = NULL;
    size_t ct_len = 0;
    sc_api_result r;
    bool new_key = false;
    uint64_t ts, prev = 0;
    int rc;

    memset(&p, 0, sizeof p);
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "not registered");
    if (name == NULL || !name_ok(name, strlen(name)))
        return sc_fail(c, SC_E_USAGE,
                       "a display name is 1 to %d bytes of UTF-8 without control characters",
                       SC_PROFILE_NAME_MAX);
    memcpy(p.name, name, strlen(name) + 1);
    if (avatar_path) {
        const char *t = content_type ? content_type : guess_type(avatar_path);
        if (!type_ok(t, strlen(t)))
            return sc_fail(c, SC_E_USAGE, "bad content type");
        memcpy(p.type, t, strlen(t) + 1);
        rc = read_avatar(c, avatar_path, &p);
        if (rc != SC_OK) {
            profile_clear(&p);
            return rc;
        }
    }
    rc = own_key(c, key);
    {
        /* a key made for sealed sender before any profile (sealed.c,
         * "profile_key_auto"): the first profile gets a new one, so that
         * contacts holding the old key fetch the profile */
        uint64_t auto_key = 0;
        if (rc == SC_OK && sc_cfg_get_u64(c, "profile_key_auto", &auto_key) == SC_OK && auto_key)
            rc = SC_E_NOT_FOUND;
    }
    if (rc == SC_E_NOT_FOUND) {
        randombytes_buf(key, sizeof key);
        new_key = true;
        rc = SC_OK;
    }
    /* connected first: a login may send a link sync carrying the key we
     * hold now with a newer timestamp, which our sync below must beat
     * (newest wins on the new device) */
    if (rc == SC_OK)
        rc = sc_connect(c);
    /* inside the profile: contacts refuse older ones, so after the newest
     * of any of our devices (profile_ts, synced) even if our clock is behind */
    ts = sc_next_timestamp(c);
    if (sc_cfg_get_u64(c, "profile_ts", &prev) == SC_OK && prev >= ts)
        ts = prev + 1;
    p.time_ms = ts;
    if (rc == SC_OK)
        rc = profile_seal(c, &p, c->username, key, &ct, &ct_len);
    if (rc == SC_OK && sc_api_set_profile(c, ct, ct_len, &r) != SC_API_OK)
        rc = sc_api_fail(c, &r, "set profile");
    free(ct);
    /* uploaded: keep the key, the name and the avatar's path, and tell
     * our other devices */
    if (rc == SC_OK)
        rc = sc_db_begin(c);
    if (rc == SC_OK) {
        if (new_key)
            rc = sc_cfg_set_blob(c, "profile_key", key, sizeof key);
        if (rc == SC_OK && new_key)
            rc = sc_cfg_delete(c, "profile_key_auto");
        if (rc == SC_OK)
            rc = sc_cfg_set_text(c, "profile_name", name);
        if (rc == SC_OK)
            rc = sc_cfg_set_u64(c, "profile_ts", ts);
        if (rc == SC_OK)
            rc = sync_own(c, key, name, ts);
        if (rc == SC_OK)
            rc = sc_db_commit(c);
        else
            sc_db_rollback(c);
    }
    /* a new key: the server gets its delivery token now (sealed.c), before
     * any contact can hold the key */
    if (rc == SC_OK && new_key)
        rc = sc_sealed_token_refresh(c);
    if (rc == SC_OK) {
        if (p.avatar_len) {
            char *path = NULL;
            rc = save_avatar(c, c->username, &p, &path);
            if (rc == SC_OK) {
                char *v = malloc(strlen(p.type) + strlen(path) + 2);
                if (v) {
                    snprintf(v, strlen(p.type) + strlen(path) + 2, "%s\n%s", p.type, path);
                    rc = sc_cfg_set_text(c, "profile_avatar", v);
                }
                free(v);
            }
            free(path);
        } else {
            remove_avatar(c, c->username);
            (void)sc_cfg_delete(c, "profile_avatar");
        }
    }
    sodium_memzero(key, sizeof key);
    profile_clear(&p);
    if (rc == SC_OK)
        (void)sc_flush(c, NULL); /* the sync to our devices; left queued on failure */
    return rc;
}

/* ---- rotating the profile key (issue 12; sotto_client.h) ---- */

#define ROTATE_DUE "profile_rotate_due"
#define ROTATE_NEXT "profile_key_next"

int sc_profile_rotate_due(sc_client *c, bool *due)
{
    uint64_t v = 0;
    int rc = sc_cfg_get_u64(c, ROTATE_DUE, &v);

    *due = rc == SC_OK && v != 0;
    return rc == SC_E_NOT_FOUND ? SC_OK : rc;
}

/* The key a rotation under way uses (ROTATE_NEXT), made and stored now
 * when there is none yet. */
static int next_key(sc_client *c, uint8_t key[SC_PROFILE_KEY_BYTES])
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = sc_cfg_get_blob(c, ROTATE_NEXT, &b, &n);

    if (rc == SC_OK && n == SC_PROFILE_KEY_BYTES)
        memcpy(key, b, SC_PROFILE_KEY_BYTES);
    if (b) {
        sodium_memzero(b, n);
        free(b);
    }
    if (rc == SC_OK && n == SC_PROFILE_KEY_BYTES)
        return SC_OK;
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    randombytes_buf(key, SC_PROFILE_KEY_BYTES);
    return sc_cfg_set_blob(c, ROTATE_NEXT, key, SC_PROFILE_KEY_BYTES);
}

/* Our profile as set here (name, avatar) sealed under key at time ts;
 * *ct NULL when no name is set (nothing to upload). */
static int reseal_own(sc_client *c, const uint8_t key[SC_PROFILE_KEY_BYTES], uint64_t ts,
                      uint8_t **ct, size_t *ct_len)
{
    char *name = NULL, *av = NULL;
    profile p;
    int rc = sc_cfg_get_text(c, "profile_name", &name);

    *ct = NULL;
    *ct_len = 0;
    memset(&p, 0, sizeof p);
    if (rc == SC_E_NOT_FOUND || (rc == SC_OK && !name_ok(name, strlen(name)))) {
        free(name);
        return SC_OK;
    }
    if (rc != SC_OK)
        return rc;
    memcpy(p.name, name, strlen(name) + 1);
    free(name);
    rc = sc_cfg_get_text(c, "profile_avatar", &av);
    if (rc == SC_OK) {
        char *nl = strchr(av, '\n');
        if (nl && type_ok(av, (size_t)(nl - av))) {
            *nl = '\0';
            memcpy(p.type, av, strlen(av) + 1);
            rc = read_avatar(c, nl + 1, &p);
        }
        free(av);
    } else if (rc == SC_E_NOT_FOUND) {
        rc = SC_OK;
    }
    p.time_ms = ts;
    if (rc == SC_OK)
        rc = profile_seal(c, &p, c->username, key, ct, ct_len);
    profile_clear(&p);
    return rc;
}

/* Queues a profile-key update for every accepted contact that is not
 * blocked (inside the caller's transaction); *n counts them. */
static int queue_key_updates(sc_client *c, const uint8_t key[SC_PROFILE_KEY_BYTES], uint64_t ts,
                             size_t *n)
{
    sc_contact_info *v = NULL;
    size_t cnt = 0;
    uint8_t k[SC_PROFILE_KEY_BYTES];
    int rc = sc_contact_list(c, &v, &cnt);

    *n = 0;
    memcpy(k, key, sizeof k);
    for (size_t i = 0; rc == SC_OK && i < cnt; i++) {
        Sotto__Content__Content ct = SOTTO__CONTENT__CONTENT__INIT;
        Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
        bool accepted = false, blocked = true;
        uint32_t expire_s = 0;

        if (strcmp(v[i].name, c->username) == 0)
            continue;
        rc = sc_conv_accepted(c, "contact", v[i].name, &accepted);
        if (rc == SC_OK)
            rc = sc_blocked_is(c, v[i].name, &blocked);
        if (rc != SC_OK || !accepted || blocked)
            continue;
        dm.flags = SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_PROFILE_KEY_UPDATE;
        dm.profile_key.data = k;
        dm.profile_key.len = sizeof k;
        /* the conversation's timer rides along, as on every data message
         * (a missing one would read as "timer off", expire.c) */
        rc = sc_expire_decorate(c, "contact", v[i].name, &dm, &expire_s);
        ct.timestamp = ts;
        ct.data = &dm;
        if (rc == SC_OK)
            rc = sc_enqueue_content(c, v[i].name, &ct, 0);
        if (rc == SC_OK)
            (*n)++;
    }
    sodium_memzero(k, sizeof k);
    sc_contact_list_free(v, cnt);
    return rc;
}

int sc_profile_rotate_key(sc_client *c, size_t *notified)
{
    uint8_t key[SC_PROFILE_KEY_BYTES], token[SOTTO_DELIVERY_TOKEN_BYTES], *ct = NULL;
    size_t ct_len = 0, n = 0;
    sc_api_result r;
    char *name = NULL;
    uint64_t ts, prev = 0;
    int rc;

    if (notified)
        *notified = 0;
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "not registered");
    rc = own_key(c, key);
    sodium_memzero(key, sizeof key);
    if (rc == SC_E_NOT_FOUND) {
        /* no key ever given out: nothing to cut off */
        (void)sc_cfg_delete(c, ROTATE_DUE);
        return SC_OK;
    }
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, ROTATE_DUE, 1);
    if (rc == SC_OK)
        rc = next_key(c, key);
    if (rc != SC_OK)
        goto out;
    /* connected before the timestamp: a login may send a link sync with
     * the old key, which the sync below must be newer than */
    rc = sc_connect(c);
    if (rc != SC_OK)
        goto out;
    ts = sc_next_timestamp(c);
    if (sc_cfg_get_u64(c, "profile_ts", &prev) == SC_OK && prev >= ts)
        ts = prev + 1;
    /* 1. the profile under the new key; 2. the new delivery token: from
     * then on the old key's token is refused (server: UNAUTHENTICATED) */
    rc = reseal_own(c, key, ts, &ct, &ct_len);
    if (rc == SC_OK && ct && sc_api_set_profile(c, ct, ct_len, &r) != SC_API_OK)
        rc = sc_api_fail(c, &r, "set profile");
    free(ct);
    if (rc == SC_OK && sotto_delivery_token_derive(token, key) != SOTTO_OK)
        rc = sc_fail(c, SC_E_INTERNAL, "cannot derive the delivery token");
    /* (while the server serves another sealed-sender root than the pinned
     * one our token stays cleared: sealed.c) */
    if (rc == SC_OK &&
        sc_api_set_delivery_token(c, sc_sealed_root_mismatch(c) ? NULL : token, &r) != SC_API_OK)
        rc = sc_api_fail(c, &r, "set delivery token");
    if (rc != SC_OK)
        goto out;
    /* 3. keep it, tell our devices and our contacts */
    rc = sc_cfg_get_text(c, "profile_name", &name);
    if (rc == SC_E_NOT_FOUND)
        rc = SC_OK;
    if (rc == SC_OK)
        rc = sc_db_begin(c);
    if (rc != SC_OK)
        goto out;
    rc = sc_cfg_set_blob(c, "profile_key", key, sizeof key);
    if (rc == SC_OK)
        rc = sc_cfg_delete(c, "profile_key_auto");
    if (rc == SC_OK)
        rc = sc_cfg_set_blob(c, "sealed_token_sent", token, sizeof token); /* sealed.c */
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, "profile_ts", ts);
    if (rc == SC_OK)
        rc = sync_own(c, key, name ? name : "", ts);
    if (rc == SC_OK)
        rc = queue_key_updates(c, key, ts, &n);
    if (rc == SC_OK)
        rc = sc_cfg_delete(c, ROTATE_NEXT);
    if (rc == SC_OK)
        rc = sc_cfg_delete(c, ROTATE_DUE);
    if (rc == SC_OK)
        rc = sc_db_commit(c);
    else
        sc_db_rollback(c);
    if (rc == SC_OK) {
        (void)sc_flush(c, NULL); /* what cannot go now stays queued */
        if (notified)
            *notified = n;
    }
out:
    free(name);
    sodium_memzero(key, sizeof key);
    sodium_memzero(token, sizeof token);
    return rc;
}

void sc_profile_info_clear(sc_profile_info *p)
{
    if (p == NULL)
        return;
    free(p->username);
    free(p->display_name);
    free(p->avatar_path);
    free(p->avatar_type);
    memset(p, 0, sizeof *p);
}

static int own_info(sc_client *c, sc_profile_info *out)
{
    char *v = NULL;
    uint8_t key[SC_PROFILE_KEY_BYTES];
    int rc = own_key(c, key);

    sodium_memzero(key, sizeof key);
    out->has_key = rc == SC_OK;
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    rc = sc_cfg_get_text(c, "profile_name", &out->display_name);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    rc = sc_cfg_get_text(c, "profile_avatar", &v);
    if (rc == SC_OK) {
        char *nl = strchr(v, '\n');
        if (nl) {
            *nl = '\0';
            out->avatar_type = strdup(v);
            out->avatar_path = strdup(nl + 1);
        }
        free(v);
    } else if (rc != SC_E_NOT_FOUND) {
        return rc;
    }
    if (out->display_name == NULL && !out->has_key)
        return sc_fail(c, SC_E_NOT_FOUND, "no profile set (run: sotto profile set --name NAME)");
    return SC_OK;
}

int sc_profile_get(sc_client *c, const char *who, bool fetch, sc_profile_info *out)
{
    sc_profile_row row;
    int rc;

    memset(out, 0, sizeof *out);
    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE, "not registered");
    if (who == NULL || strcmp(who, c->username) == 0) {
        out->username = strdup(c->username);
        if (out->username == NULL)
            return sc_fail(c, SC_E_INTERNAL, "out of memory");
        rc = own_info(c, out);
        if (rc != SC_OK)
            sc_profile_info_clear(out);
        return rc;
    }
    if (!sc_username_valid(who))
        return sc_fail(c, SC_E_USAGE, "not a username: %s", who);
    rc = sc_profile_row_get(c, who, &row);
    if (rc == SC_E_NOT_FOUND || (rc == SC_OK && !row.has_key)) {
        sc_profile_row_clear(&row);
        return sc_fail(c, SC_E_NOT_FOUND, "%s has not shared a profile key with us", who);
    }
    if (rc != SC_OK)
        return rc;
    if (fetch) {
        uint8_t key[SC_PROFILE_KEY_BYTES];
        memcpy(key, row.key, sizeof key);
        sc_profile_row_clear(&row);
        rc = sc_connect(c);
        if (rc == SC_OK)
            rc = fetch_contact(c, who, key);
        sodium_memzero(key, sizeof key);
        if (rc != SC_OK)
            return rc;
        rc = sc_profile_row_get(c, who, &row);
        if (rc != SC_OK)
            return rc;
    }
    out->username = strdup(who);
    out->has_key = true;
    out->display_name = row.display_name;
    out->avatar_path = row.avatar_path;
    out->avatar_type = row.avatar_type;
    row.display_name = row.avatar_path = row.avatar_type = NULL;
    sc_profile_row_clear(&row);
    if (out->username == NULL) {
        sc_profile_info_clear(out);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    return SC_OK;
}

int sc_profile_display_name(sc_client *c, const char *who, char **out)
{
    sc_profile_row row;
    int rc;

    *out = NULL;
    rc = sc_profile_row_get(c, who, &row);
    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    *out = row.display_name;
    row.display_name = NULL;
    sc_profile_row_clear(&row);
    return SC_OK;
}

/* ---- link sync (linksync.c) ---- */

int sc_profile_ls_contact_fill(sc_client *c, Sotto__Content__SyncMessage__LinkSync__Contact *k)
{
    sc_profile_row row;
    int rc = sc_profile_row_get(c, k->name, &row);

    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    if (row.has_key) {
        uint8_t *p = malloc(SC_PROFILE_KEY_BYTES);
        if (p == NULL) {
            sc_profile_row_clear(&row);
            return sc_fail(c, SC_E_INTERNAL, "out of memory");
        }
        memcpy(p, row.key, SC_PROFILE_KEY_BYTES);
        k->profile_key.data = p;
        k->profile_key.len = SC_PROFILE_KEY_BYTES;
    }
    sc_profile_row_clear(&row);
    return SC_OK;
}

void sc_profile_ls_contact_free(Sotto__Content__SyncMessage__LinkSync__Contact *k)
{
    if (k->profile_key.data) {
        sodium_memzero(k->profile_key.data, k->profile_key.len);
        free(k->profile_key.data);
    }
    k->profile_key.data = NULL;
    k->profile_key.len = 0;
}

int sc_profile_ls_contact_apply(sc_client *c,
                                const Sotto__Content__SyncMessage__LinkSync__Contact *k)
{
    bool changed = false;

    if (k->profile_key.len != SC_PROFILE_KEY_BYTES || !sc_username_valid(k->name) ||
        (c->username && strcmp(k->name, c->username) == 0))
        return SC_OK;
    return sc_profile_key_put(c, k->name, k->profile_key.data, &changed);
}

int sc_profile_ls_own_fill(sc_client *c, Sotto__Content__SyncMessage *sync,
                           uint8_t key[SC_PROFILE_KEY_BYTES], char **name)
{
    int rc = own_key(c, key);

    *name = NULL;
    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    rc = sc_cfg_get_text(c, "profile_name", name);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
    sync->profile_key.data = key;
    sync->profile_key.len = SC_PROFILE_KEY_BYTES;
    if (*name)
        sync->profile_name = *name;
    return SC_OK;
}
