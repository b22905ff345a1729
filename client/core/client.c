/*
 * client/core/client.c -- the account: opening the local store, errors,
 * registration, login (docs/api.md "Authentication"), prekey upkeep and
 * device listing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "internal.h"
#include "sotto/error.h"

int sc_fail(sc_client *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return code;
}

const char *sc_errmsg(const sc_client *c)
{
    return c ? c->err : "no client";
}

uint64_t sc_now_ms(void)
{
    struct timespec ts;
    const char *off = getenv("SOTTO_TEST_CLOCK_OFFSET_MS");
    uint64_t v;

    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (off != NULL)
        v += (uint64_t)strtoll(off, NULL, 10); /* tests: pretend time passed */
    return v;
}

uint64_t sc_next_timestamp(sc_client *c)
{
    uint64_t last = 0, now = sc_now_ms();

    (void)sc_cfg_get_u64(c, "last_timestamp", &last);
    if (now <= last)
        now = last + 1;
    (void)sc_cfg_set_u64(c, "last_timestamp", now);
    return now;
}

void sc_hex(const uint8_t *p, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, p, n);
}

const char *sc_username(const sc_client *c)
{
    return c->username;
}

uint32_t sc_device_id(const sc_client *c)
{
    return c->device_id;
}

const char *sc_account_dir(const sc_client *c)
{
    return c->dir;
}

sc_server sc_server_of(sc_client *c)
{
    sc_server s = {c->server_url, c->pin_hex, c->ca_file};
    return s;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* mkdir with mode 0700; an existing directory is narrowed to 0700. */
static int make_private_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return chmod(path, 0700);
}

static int make_dirs(const char *path)
{
    char *tmp = strdup(path);
    int rc = 0;

    if (tmp == NULL)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                rc = -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        rc = -1;
    free(tmp);
    return rc;
}

static int dupopt(char **dst, const char *src)
{
    free(*dst);
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

int sc_open(sc_client **out, const sc_options *opt, char *err, size_t errlen)
{
    sc_client *c = NULL;
    char *base = NULL, *sotto_dir = NULL, *db_path = NULL;
    const char *home;
    uint64_t dev = 0;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (sotto_init() != SOTTO_OK || (c = calloc(1, sizeof *c)) == NULL) {
        if (err && errlen)
            snprintf(err, errlen, "cannot initialise");
        return SC_E_INTERNAL;
    }
    c->progress = opt->progress;
    if (!sc_account_name_valid(opt->account)) {
        rc = sc_fail(c, SC_E_USAGE, "invalid account name (use letters, digits, '_', '.', '-')");
        goto fail;
    }
    c->account = strdup(opt->account);
    if (opt->data_home && opt->data_home[0]) {
        base = strdup(opt->data_home);
    } else if ((home = getenv("XDG_DATA_HOME")) != NULL && home[0] == '/') {
        base = strdup(home);
    } else if ((home = getenv("HOME")) != NULL && home[0] != '\0') {
        base = path_join(home, ".local/share");
    } else {
        rc = sc_fail(c, SC_E_USAGE, "neither XDG_DATA_HOME nor HOME is set");
        goto fail;
    }
    if (base == NULL || c->account == NULL)
        goto nomem;
    sotto_dir = path_join(base, "sotto");
    if (sotto_dir == NULL)
        goto nomem;
    c->dir = path_join(sotto_dir, c->account);
    if (c->dir == NULL)
        goto nomem;
    c->att_dir = path_join(c->dir, "attachments");
    db_path = path_join(c->dir, "store.db");
    if (c->att_dir == NULL || db_path == NULL)
        goto nomem;
    if (opt->must_exist) {
        struct stat sb;
        if (stat(db_path, &sb) != 0) {
            rc = sc_fail(c, SC_E_STATE,
                         "no local account %s (in %s): register it first (sotto --account %s"
                         " --server URL --pin HEX register)",
                         c->account, sotto_dir, c->account);
            goto fail;
        }
    }
    if (make_dirs(base) != 0 || make_private_dir(sotto_dir) != 0 || make_private_dir(c->dir) != 0 ||
        make_private_dir(c->att_dir) != 0) {
        rc = sc_fail(c, SC_E_STORE, "cannot create %s: %s", c->dir, strerror(errno));
        goto fail;
    }
    /* The store holds the identity key: 0600 whatever the caller's umask
     * (SQLite gives its -wal and -shm files the database file's mode). */
    {
        int fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || fchmod(fd, 0600) != 0) {
            rc = sc_fail(c, SC_E_STORE, "cannot create %s: %s", db_path, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto fail;
        }
        close(fd);
    }
    if (sotto_sqlite_store_open(db_path, &c->store) != SOTTO_OK) {
        rc = sc_fail(c, SC_E_STORE, "cannot open the local store %s", db_path);
        goto fail;
    }
    c->db = sotto_sqlite_store_db(c->store);
    c->ps = *sotto_sqlite_store_protocol(c->store);
    rc = sc_db_init(c);
    if (rc != SC_OK)
        goto fail;
    (void)sc_cfg_get_text(c, "server_url", &c->server_url);
    (void)sc_cfg_get_text(c, "pin", &c->pin_hex);
    (void)sc_cfg_get_text(c, "ca_file", &c->ca_file);
    (void)sc_cfg_get_text(c, "username", &c->username);
    if (sc_cfg_get_u64(c, "device_id", &dev) == SC_OK)
        c->device_id = (uint32_t)dev;
    /* Options given on the command line win and are remembered. */
    if (opt->server_url) {
        if (dupopt(&c->server_url, opt->server_url) != 0)
            goto nomem;
        c->override_server = true;
    }
    if (opt->pin_hex) {
        if (dupopt(&c->pin_hex, opt->pin_hex) != 0 || dupopt(&c->ca_file, NULL) != 0)
            goto nomem;
        c->override_trust = true;
    }
    if (opt->ca_file) {
        if (dupopt(&c->ca_file, opt->ca_file) != 0 || dupopt(&c->pin_hex, NULL) != 0)
            goto nomem;
        c->override_trust = true;
    }
    free(base);
    free(sotto_dir);
    free(db_path);
    *out = c;
    return SC_OK;
nomem:
    rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
fail:
    /* keep the message readable after the client is gone */
    if (err && errlen) {
        size_t l = strlen(c->err) < errlen - 1 ? strlen(c->err) : errlen - 1;
        memcpy(err, c->err, l);
        err[l] = '\0';
    }
    free(base);
    free(sotto_dir);
    free(db_path);
    sc_close(c);
    *out = NULL;
    return rc;
}

void sc_close(sc_client *c)
{
    if (c == NULL)
        return;
    sc_disconnect(c);
    sotto_sqlite_store_close(c->store);
    free(c->account);
    free(c->dir);
    free(c->att_dir);
    free(c->server_url);
    free(c->pin_hex);
    free(c->ca_file);
    free(c->username);
    free(c);
}

/* ------------------------------------------------------------ api */

void sc_disconnect(sc_client *c)
{
    if (c->conn) {
        (void)sc_conn_flush(c->conn, 2000);
        sc_conn_free(c->conn);
    }
    c->conn = NULL;
    c->logged_in = false;
}

static const char *status_name(int s)
{
    static const char *const names[] = {
        "OK",
        "BAD_REQUEST",
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "NOT_FOUND",
        "USERNAME_TAKEN",
        "INVALID_USERNAME",
        "INVALID_SIGNATURE",
        "MISMATCHED_DEVICES",
        "QUEUE_FULL",
        "RATE_LIMITED",
        "TOO_LARGE",
        "DEVICE_LIMIT",
        "INVITE_REQUIRED",
        "INTERNAL",
        "UNAVAILABLE",
        "PROTOCOL_ERROR",
        "ALREADY_AUTHENTICATED",
        "NO_KEYS",
    };
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : "UNKNOWN";
}

int sc_status_error(sc_client *c, const Sotto__Api__ServerFrame *f, const char *what)
{
    int code = f->status == SOTTO__API__STATUS__STATUS_NOT_FOUND ? SC_E_NOT_FOUND : SC_E_SERVER;
    return sc_fail(c, code, "%s: server refused (%s)%s%s", what, status_name((int)f->status),
                   f->error && f->error[0] ? ": " : "", f->error ? f->error : "");
}

int sc_api(sc_client *c, Sotto__Api__ClientFrame *req, Sotto__Api__ServerFrame **resp)
{
    char err[256];

    if (c->conn == NULL)
        return sc_fail(c, SC_E_NETWORK, "not connected");
    if (sc_conn_request(c->conn, req, resp, SC_TIMEOUT_MS, err, sizeof err) != 0) {
        sc_disconnect(c);
        return sc_fail(c, SC_E_NETWORK, "%s", err);
    }
    return SC_OK;
}

static int open_conn(sc_client *c)
{
    sc_server srv = sc_server_of(c);
    char err[256];

    if (c->conn && sc_conn_alive(c->conn))
        return SC_OK;
    sc_disconnect(c);
    if (c->server_url == NULL)
        return sc_fail(c, SC_E_USAGE, "no server: give --server https://HOST:PORT (and --pin HEX)");
    if (sc_conn_open(&c->conn, &srv, SC_TIMEOUT_MS, err, sizeof err) != 0) {
        c->conn = NULL;
        return sc_fail(c, SC_E_NETWORK, "%s", err);
    }
    return SC_OK;
}

static int get_challenge(sc_client *c, uint8_t nonce[32])
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ChallengeRequest ch = SOTTO__API__CHALLENGE_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
    int rc;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_CHALLENGE;
    f.challenge = &ch;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        return rc;
    if (r->status != SOTTO__API__STATUS__STATUS_OK) {
        rc = sc_status_error(c, r, "challenge");
    } else if (r->result_case != SOTTO__API__SERVER_FRAME__RESULT_CHALLENGE || !r->challenge ||
               r->challenge->nonce.len != 32) {
        rc = sc_fail(c, SC_E_SERVER, "challenge: malformed answer");
    } else {
        memcpy(nonce, r->challenge->nonce.data, 32);
    }
    sotto__api__server_frame__free_unpacked(r, NULL);
    return rc;
}

/* docs/api.md "Authentication": the signed message. */
static int auth_sign(sc_client *c, uint8_t purpose, const char *username, uint32_t device_id,
                     const uint8_t sk[crypto_sign_SECRETKEYBYTES], uint8_t sig[64])
{
    uint8_t nonce[32], exporter[32];
    uint8_t msg[13 + 1 + 1 + 32 + 32 + 1 + 32 + 4];
    size_t n = 0, ul = strlen(username);
    int rc;

    if (ul > 32)
        return sc_fail(c, SC_E_USAGE, "username too long");
    rc = get_challenge(c, nonce);
    if (rc != SC_OK)
        return rc;
    if (sc_conn_exporter(c->conn, exporter) != 0)
        return sc_fail(c, SC_E_NETWORK, "cannot compute the TLS exporter");
    memcpy(msg + n, "SOTTO-AUTH-V1", 13);
    n += 13;
    msg[n++] = 0x00;
    msg[n++] = purpose;
    memcpy(msg + n, exporter, 32);
    n += 32;
    memcpy(msg + n, nonce, 32);
    n += 32;
    msg[n++] = (uint8_t)ul;
    memcpy(msg + n, username, ul);
    n += ul;
    msg[n++] = (uint8_t)(device_id >> 24);
    msg[n++] = (uint8_t)(device_id >> 16);
    msg[n++] = (uint8_t)(device_id >> 8);
    msg[n++] = (uint8_t)device_id;
    crypto_sign_detached(sig, NULL, msg, n, sk);
    return SC_OK;
}

static int load_auth_key(sc_client *c, uint8_t sk[crypto_sign_SECRETKEYBYTES], bool create)
{
    uint8_t *blob = NULL, pk[crypto_sign_PUBLICKEYBYTES];
    size_t len = 0;
    int rc = sc_cfg_get_blob(c, "auth_sk", &blob, &len);

    if (rc == SC_OK && len == crypto_sign_SECRETKEYBYTES) {
        memcpy(sk, blob, len);
        sodium_memzero(blob, len);
        free(blob);
        return SC_OK;
    }
    if (blob) {
        sodium_memzero(blob, len);
        free(blob);
    }
    if (!create)
        return sc_fail(c, SC_E_STORE, "the device auth key is missing");
    crypto_sign_keypair(pk, sk);
    return sc_cfg_set_blob(c, "auth_sk", sk, crypto_sign_SECRETKEYBYTES);
}

/* ------------------------------------------------------------ keys */

static int set_keys(sc_client *c, const sotto_signed_prekey *spk, const sotto_prekey *pks, size_t n)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SetKeysRequest sk = SOTTO__API__SET_KEYS_REQUEST__INIT;
    Sotto__Api__SignedPreKey s = SOTTO__API__SIGNED_PRE_KEY__INIT;
    Sotto__Api__PreKey pkv[SC_PREKEY_BATCH];
    Sotto__Api__PreKey *pkp[SC_PREKEY_BATCH];
    Sotto__Api__ServerFrame *r = NULL;
    int rc;

    if (n > SC_PREKEY_BATCH)
        return sc_fail(c, SC_E_INTERNAL, "prekey batch too large");
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
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        return rc;
    if (r->status != SOTTO__API__STATUS__STATUS_OK)
        rc = sc_status_error(c, r, "uploading keys");
    sotto__api__server_frame__free_unpacked(r, NULL);
    return rc;
}

/* Generates, stores and returns a batch of one-time prekeys. */
static int new_prekeys(sc_client *c, sotto_prekey *pks, size_t n)
{
    uint64_t start = 0;

    (void)sc_cfg_get_u64(c, "next_prekey_start", &start);
    if (sotto_prekeys_generate(pks, (uint32_t)(start % (SOTTO_PREKEY_MAX_ID - 1)), n) != SOTTO_OK)
        return sc_fail(c, SC_E_INTERNAL, "cannot generate prekeys");
    for (size_t i = 0; i < n; i++)
        if (c->ps.prekey.store(c->ps.prekey.user_data, &pks[i]) != SOTTO_OK)
            return sc_fail(c, SC_E_STORE, "cannot store a prekey");
    return sc_cfg_set_u64(c, "next_prekey_start", (start + n) % (SOTTO_PREKEY_MAX_ID - 1));
}

static int new_signed_prekey(sc_client *c, sotto_signed_prekey *spk)
{
    sotto_key_pair id;
    uint64_t next = 1;
    uint64_t now = sc_now_ms();
    sqlite3_stmt *st = NULL;
    int rc;

    (void)sc_cfg_get_u64(c, "next_signed_prekey_id", &next);
    if (next == 0 || next > 0xFFFFFF)
        next = 1;
    if (sotto_sqlite_store_get_local_identity(c->store, &id, NULL) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "no local identity");
    rc = sotto_signed_prekey_generate(spk, &id, (uint32_t)next, now);
    sotto_key_pair_wipe(&id);
    if (rc != SOTTO_OK)
        return sc_fail(c, SC_E_INTERNAL, "cannot generate a signed prekey");
    if (c->ps.signed_prekey.store(c->ps.signed_prekey.user_data, spk) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot store the signed prekey");
    if (sqlite3_prepare_v2(c->db,
                           "UPDATE client_signed_prekeys SET replaced_ms = ?"
                           " WHERE replaced_ms IS NULL",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "INSERT OR REPLACE INTO client_signed_prekeys(id, created_ms,"
                           " replaced_ms) VALUES(?, ?, NULL)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)next);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return sc_cfg_set_u64(c, "next_signed_prekey_id", next + 1);
}

/* Removes signed prekeys replaced more than the grace window ago. */
static void expire_signed_prekeys(sc_client *c)
{
    sqlite3_stmt *st = NULL;
    uint64_t cutoff = sc_now_ms() - SC_SIGNED_PREKEY_GRACE_MS;
    uint32_t ids[64];
    size_t n = 0;

    if (sqlite3_prepare_v2(c->db,
                           "SELECT id FROM client_signed_prekeys WHERE replaced_ms IS NOT"
                           " NULL AND replaced_ms < ? LIMIT 64",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)cutoff);
    while (n < 64 && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        (void)c->ps.signed_prekey.remove(c->ps.signed_prekey.user_data, ids[i]);
        if (sqlite3_prepare_v2(c->db, "DELETE FROM client_signed_prekeys WHERE id = ?", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, ids[i]);
            sqlite3_step(st);
        }
        sqlite3_finalize(st);
        st = NULL;
    }
}

static int upload_initial_keys(sc_client *c)
{
    sotto_signed_prekey spk;
    sotto_prekey *pks = calloc(SC_PREKEY_BATCH, sizeof *pks);
    int rc;

    if (pks == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    rc = new_signed_prekey(c, &spk);
    if (rc == SC_OK)
        rc = new_prekeys(c, pks, SC_PREKEY_BATCH);
    if (rc == SC_OK)
        rc = set_keys(c, &spk, pks, SC_PREKEY_BATCH);
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, "keys_uploaded", 1);
    sodium_memzero(&spk, sizeof spk);
    sodium_memzero(pks, SC_PREKEY_BATCH * sizeof *pks);
    free(pks);
    return rc;
}

int sc_keys_maintain(sc_client *c, bool prekeys_low)
{
    sqlite3_stmt *st = NULL;
    uint64_t created = 0;
    int rc = SC_OK;

    if (prekeys_low) {
        sotto_prekey *pks = calloc(SC_PREKEY_BATCH, sizeof *pks);
        if (pks == NULL)
            return sc_fail(c, SC_E_INTERNAL, "out of memory");
        rc = new_prekeys(c, pks, SC_PREKEY_BATCH);
        if (rc == SC_OK)
            rc = set_keys(c, NULL, pks, SC_PREKEY_BATCH);
        sodium_memzero(pks, SC_PREKEY_BATCH * sizeof *pks);
        free(pks);
        if (rc != SC_OK)
            return rc;
    }
    /* Weekly signed prekey rotation. */
    if (sqlite3_prepare_v2(c->db,
                           "SELECT created_ms FROM client_signed_prekeys WHERE replaced_ms"
                           " IS NULL ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        created = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    /* (a clock that went backwards never triggers a rotation) */
    if (created != 0 && sc_now_ms() > created &&
        sc_now_ms() - created >= SC_SIGNED_PREKEY_ROTATE_MS) {
        sotto_signed_prekey spk;
        rc = new_signed_prekey(c, &spk);
        if (rc == SC_OK)
            rc = set_keys(c, &spk, NULL, 0);
        sodium_memzero(&spk, sizeof spk);
    }
    expire_signed_prekeys(c);
    return rc;
}

/* ------------------------------------------------------------ register / login */

int sc_register(sc_client *c, const char *username, const char *invite)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__RegisterRequest reg = SOTTO__API__REGISTER_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
    uint8_t sk[crypto_sign_SECRETKEYBYTES], pk[crypto_sign_PUBLICKEYBYTES], sig[64];
    sotto_key_pair id;
    uint32_t regid = 0;
    int rc;

    memset(&id, 0, sizeof id);
    if (c->username)
        return sc_fail(c, SC_E_STATE, "account already registered as %s", c->username);
    if (!sc_username_valid(username))
        return sc_fail(c, SC_E_USAGE, "invalid username: 3 to 32 of a-z, 0-9, '_', '.'");
    if (c->server_url == NULL)
        return sc_fail(c, SC_E_USAGE, "register needs --server https://HOST:PORT");
    if ((c->pin_hex == NULL || !c->pin_hex[0]) && (c->ca_file == NULL || !c->ca_file[0]))
        return sc_fail(c, SC_E_USAGE, "register needs --pin HEX or --ca FILE");
    /* Identity (kept if an earlier attempt created one). */
    rc = sotto_sqlite_store_get_local_identity(c->store, &id, &regid);
    if (rc == SOTTO_ERR_NOT_FOUND) {
        if (sotto_identity_key_pair_generate(&id) != SOTTO_OK ||
            sotto_registration_id_generate(&regid) != SOTTO_OK) {
            rc = sc_fail(c, SC_E_INTERNAL, "cannot generate the identity key");
            goto out;
        }
        if (sotto_sqlite_store_set_local_identity(c->store, &id, regid) != SOTTO_OK) {
            rc = sc_fail(c, SC_E_STORE, "cannot store the identity key");
            goto out;
        }
    } else if (rc != SOTTO_OK) {
        rc = sc_fail(c, SC_E_STORE, "cannot read the identity key");
        goto out;
    }
    rc = load_auth_key(c, sk, true);
    if (rc != SC_OK)
        goto out;
    crypto_sign_ed25519_sk_to_pk(pk, sk);
    rc = open_conn(c);
    if (rc != SC_OK)
        goto out;
    rc = auth_sign(c, 0x01, username, 1, sk, sig);
    if (rc != SC_OK)
        goto out;
    reg.username = (char *)username;
    reg.auth_key.data = pk;
    reg.auth_key.len = sizeof pk;
    reg.signature.data = sig;
    reg.signature.len = sizeof sig;
    reg.invite = (char *)(invite ? invite : "");
    reg.identity_key.data = id.pub.bytes;
    reg.identity_key.len = SOTTO_PUBLIC_KEY_BYTES;
    reg.registration_id = regid;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_REGISTER;
    f.register_ = &reg;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        goto out;
    if (r->status != SOTTO__API__STATUS__STATUS_OK) {
        rc = sc_status_error(c, r, "register");
        goto out;
    }
    c->username = strdup(username);
    c->device_id = 1;
    if (c->username == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    if ((rc = sc_cfg_set_text(c, "username", username)) != SC_OK ||
        (rc = sc_cfg_set_u64(c, "device_id", 1)) != SC_OK ||
        (rc = sc_cfg_set_text(c, "server_url", c->server_url)) != SC_OK)
        goto out;
    if (c->pin_hex && (rc = sc_cfg_set_text(c, "pin", c->pin_hex)) != SC_OK)
        goto out;
    if (c->ca_file && (rc = sc_cfg_set_text(c, "ca_file", c->ca_file)) != SC_OK)
        goto out;
    c->logged_in = true;
    rc = upload_initial_keys(c);
out:
    if (r)
        sotto__api__server_frame__free_unpacked(r, NULL);
    sodium_memzero(sk, sizeof sk);
    sotto_key_pair_wipe(&id);
    return rc;
}

int sc_connect(sc_client *c)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__LoginRequest lg = SOTTO__API__LOGIN_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
    uint8_t sk[crypto_sign_SECRETKEYBYTES], sig[64];
    uint64_t uploaded = 0;
    bool low = false, has_keys = true;
    int rc;

    if (c->username == NULL)
        return sc_fail(c, SC_E_STATE,
                       "account %s is not registered (run: sotto --account %s"
                       " --server URL --pin HEX register)",
                       c->account, c->account);
    if (c->conn && c->logged_in && sc_conn_alive(c->conn))
        return SC_OK;
    rc = open_conn(c);
    if (rc != SC_OK)
        return rc;
    rc = load_auth_key(c, sk, false);
    if (rc != SC_OK)
        goto out;
    rc = auth_sign(c, 0x02, c->username, c->device_id, sk, sig);
    if (rc != SC_OK)
        goto out;
    lg.username = c->username;
    lg.device_id = c->device_id;
    lg.signature.data = sig;
    lg.signature.len = sizeof sig;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LOGIN;
    f.login = &lg;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        goto out;
    if (r->status != SOTTO__API__STATUS__STATUS_OK) {
        rc = sc_status_error(c, r, "login");
        sc_disconnect(c);
        goto out;
    }
    if (r->result_case == SOTTO__API__SERVER_FRAME__RESULT_LOGIN && r->login) {
        low = r->login->prekeys_low;
        has_keys = r->login->has_keys;
        c->login_queued = r->login->queued;
    }
    c->logged_in = true;
    /* Server and trust given on the command line are remembered once they
     * have worked. */
    if (c->override_server)
        (void)sc_cfg_set_text(c, "server_url", c->server_url);
    if (c->override_trust) {
        (void)sc_cfg_set_text(c, "pin", c->pin_hex ? c->pin_hex : "");
        (void)sc_cfg_set_text(c, "ca_file", c->ca_file ? c->ca_file : "");
    }
    c->override_server = c->override_trust = false;
    (void)sc_cfg_get_u64(c, "keys_uploaded", &uploaded);
    if (!has_keys || !uploaded)
        rc = upload_initial_keys(c);
    else
        rc = sc_keys_maintain(c, low);
out:
    if (r)
        sotto__api__server_frame__free_unpacked(r, NULL);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

int sc_devices(sc_client *c, sc_device_cb cb, void *ud)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ListDevicesRequest ld = SOTTO__API__LIST_DEVICES_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
    int rc = sc_connect(c);

    if (rc != SC_OK)
        return rc;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LIST_DEVICES;
    f.list_devices = &ld;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        return rc;
    if (r->status != SOTTO__API__STATUS__STATUS_OK) {
        rc = sc_status_error(c, r, "devices");
    } else if (r->list_devices) {
        for (size_t i = 0; i < r->list_devices->n_devices; i++) {
            const Sotto__Api__DeviceInfo *d = r->list_devices->devices[i];
            sc_device_info di = {d->device_id, d->created, d->last_seen, d->has_keys,
                                 d->device_id == c->device_id};
            cb(ud, &di);
        }
    }
    sotto__api__server_frame__free_unpacked(r, NULL);
    return rc;
}

/* ------------------------------------------------------------ linking devices */

#define SC_LINK_CODE_BYTES (32 + SOTTO_PUBLIC_KEY_BYTES + 4)

int sc_link_request(sc_client *c, char code_hex[2 * SC_LINK_CODE_BYTES + 1])
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES], code[SC_LINK_CODE_BYTES];
    sotto_key_pair id;
    uint32_t regid = 0;
    int rc;

    memset(&id, 0, sizeof id);
    if (c->username)
        return sc_fail(c, SC_E_STATE, "account already registered as %s", c->username);
    if (c->server_url == NULL ||
        ((c->pin_hex == NULL || !c->pin_hex[0]) && (c->ca_file == NULL || !c->ca_file[0])))
        return sc_fail(c, SC_E_USAGE, "link-request needs --server URL and --pin HEX (or --ca)");
    rc = sotto_sqlite_store_get_local_identity(c->store, &id, &regid);
    if (rc == SOTTO_ERR_NOT_FOUND) {
        if (sotto_identity_key_pair_generate(&id) != SOTTO_OK ||
            sotto_registration_id_generate(&regid) != SOTTO_OK ||
            sotto_sqlite_store_set_local_identity(c->store, &id, regid) != SOTTO_OK) {
            rc = sc_fail(c, SC_E_STORE, "cannot create the identity key");
            goto out;
        }
    } else if (rc != SOTTO_OK) {
        rc = sc_fail(c, SC_E_STORE, "cannot read the identity key");
        goto out;
    }
    rc = load_auth_key(c, sk, true);
    if (rc != SC_OK)
        goto out;
    crypto_sign_ed25519_sk_to_pk(code, sk);
    memcpy(code + 32, id.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    code[65] = (uint8_t)(regid >> 24);
    code[66] = (uint8_t)(regid >> 16);
    code[67] = (uint8_t)(regid >> 8);
    code[68] = (uint8_t)regid;
    sc_hex(code, sizeof code, code_hex);
    if ((rc = sc_cfg_set_text(c, "server_url", c->server_url)) != SC_OK)
        goto out;
    if (c->pin_hex && (rc = sc_cfg_set_text(c, "pin", c->pin_hex)) != SC_OK)
        goto out;
    if (c->ca_file && (rc = sc_cfg_set_text(c, "ca_file", c->ca_file)) != SC_OK)
        goto out;
    rc = SC_OK;
out:
    sodium_memzero(sk, sizeof sk);
    sotto_key_pair_wipe(&id);
    return rc;
}

int sc_device_add(sc_client *c, const char *code_hex, uint32_t *device_id)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__AddDeviceRequest ad = SOTTO__API__ADD_DEVICE_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
    uint8_t code[SC_LINK_CODE_BYTES], sk[crypto_sign_SECRETKEYBYTES], sig[64];
    uint8_t msg[19 + 1 + 1 + 32 + 32 + SOTTO_PUBLIC_KEY_BYTES + 4];
    sotto_public_key idk;
    size_t bl = 0, n = 0, ul;
    int rc;

    *device_id = 0;
    if (sodium_hex2bin(code, sizeof code, code_hex, strlen(code_hex), NULL, &bl, NULL) != 0 ||
        bl != sizeof code || strlen(code_hex) != 2 * sizeof code ||
        sotto_public_key_decode(&idk, code + 32, SOTTO_PUBLIC_KEY_BYTES) != SOTTO_OK)
        return sc_fail(c, SC_E_USAGE, "not a link code (run link-request on the new device)");
    rc = sc_connect(c);
    if (rc != SC_OK)
        return rc;
    ul = strlen(c->username);
    memcpy(msg + n, "SOTTO-ADD-DEVICE-V1", 19);
    n += 19;
    msg[n++] = 0x00;
    msg[n++] = (uint8_t)ul;
    memcpy(msg + n, c->username, ul);
    n += ul;
    memcpy(msg + n, code, 32 + SOTTO_PUBLIC_KEY_BYTES + 4);
    n += 32 + SOTTO_PUBLIC_KEY_BYTES + 4;
    rc = load_auth_key(c, sk, false);
    if (rc != SC_OK)
        return rc;
    crypto_sign_detached(sig, NULL, msg, n, sk);
    sodium_memzero(sk, sizeof sk);
    ad.auth_key.data = code;
    ad.auth_key.len = 32;
    ad.identity_key.data = code + 32;
    ad.identity_key.len = SOTTO_PUBLIC_KEY_BYTES;
    ad.registration_id = ((uint32_t)code[65] << 24) | ((uint32_t)code[66] << 16) |
                         ((uint32_t)code[67] << 8) | code[68];
    ad.signature.data = sig;
    ad.signature.len = sizeof sig;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_ADD_DEVICE;
    f.add_device = &ad;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        return rc;
    if (r->status != SOTTO__API__STATUS__STATUS_OK || r->add_device == NULL)
        rc = sc_status_error(c, r, "add device");
    else
        *device_id = r->add_device->device_id;
    sotto__api__server_frame__free_unpacked(r, NULL);
    return rc;
}

int sc_link_finish(sc_client *c, const char *username, uint32_t device_id)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc;

    if (c->username)
        return sc_fail(c, SC_E_STATE, "account already registered as %s", c->username);
    if (!sc_username_valid(username) || device_id < 2)
        return sc_fail(c, SC_E_USAGE, "usage: link-finish USERNAME DEVICE_ID (device id >= 2)");
    if (sc_cfg_get_blob(c, "auth_sk", &blob, &len) != SC_OK)
        return sc_fail(c, SC_E_STATE, "run link-request first");
    sodium_memzero(blob, len);
    free(blob);
    c->username = strdup(username);
    if (c->username == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    c->device_id = device_id;
    rc = sc_connect(c);
    if (rc != SC_OK) {
        free(c->username);
        c->username = NULL;
        c->device_id = 0;
        return rc;
    }
    if ((rc = sc_cfg_set_text(c, "username", username)) != SC_OK ||
        (rc = sc_cfg_set_u64(c, "device_id", device_id)) != SC_OK)
        return rc;
    return SC_OK;
}

int sc_device_remove(sc_client *c, uint32_t device_id)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__RemoveDeviceRequest rd = SOTTO__API__REMOVE_DEVICE_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
    int rc = sc_connect(c);

    if (rc != SC_OK)
        return rc;
    rd.device_id = device_id;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_REMOVE_DEVICE;
    f.remove_device = &rd;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        return rc;
    if (r->status != SOTTO__API__STATUS__STATUS_OK)
        rc = sc_status_error(c, r, "remove device");
    sotto__api__server_frame__free_unpacked(r, NULL);
    if (rc == SC_OK && c->username) {
        sotto_address a = {c->username, strlen(c->username), device_id};
        if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
            (void)sc_fail(c, SC_E_STORE, "cannot delete a session");
        (void)sc_contact_forget_device(c, c->username, device_id);
    }
    return rc;
}
