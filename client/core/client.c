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

#include "api.h"
#include "everyday.h"
#include "internal.h"
#include "sotto/account.h"
#include "sotto/error.h"

int sc_fail(sc_client *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->kt_wait = false; /* set by kt.c after the one error that is a per-contact wait */
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
    /* bad options are usage errors, found before anything is created */
    {
        char host[256];
        int port = 0;
        size_t pl = opt->pin_hex ? strlen(opt->pin_hex) : 64;
        bool hex = pl == 64;
        for (size_t i = 0; hex && opt->pin_hex && i < pl; i++)
            hex = (opt->pin_hex[i] >= '0' && opt->pin_hex[i] <= '9') ||
                  (opt->pin_hex[i] >= 'a' && opt->pin_hex[i] <= 'f') ||
                  (opt->pin_hex[i] >= 'A' && opt->pin_hex[i] <= 'F');
        if (opt->server_url && sc_url_parse(opt->server_url, host, sizeof host, &port) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "bad server URL %s: give https://HOST:PORT", opt->server_url);
            free(c);
            return SC_E_USAGE;
        }
        if (!hex) {
            if (err && errlen)
                snprintf(err, errlen,
                         "the certificate pin must be 64 hex characters (the whole sha256"
                         " sottod printed), not %zu",
                         pl);
            free(c);
            return SC_E_USAGE;
        }
    }
    c->progress = opt->progress;
    c->lock_fd = -1;
    pthread_mutex_init(&c->wake_mu, NULL);
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
    {
        struct stat sb;
        c->created_dir = stat(c->dir, &sb) != 0 && errno == ENOENT;
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
    /* a newer client's store is not even opened; an emptied one is not
     * taken for a new account */
    rc = sc_store_precheck(c, db_path, opt->must_exist);
    if (rc != SC_OK)
        goto fail;
    if (sotto_sqlite_store_open(db_path, &c->store) != SOTTO_OK) {
        rc = sc_fail(c, SC_E_STORE, "cannot open the local store %s", db_path);
        goto fail;
    }
    c->db = sotto_sqlite_store_db(c->store);
    c->ps = *sotto_sqlite_store_protocol(c->store);
    rc = sc_store_init(c);
    if (rc != SC_OK)
        goto fail;
    /* an unset value is NOT_FOUND; any other failure is the store's */
    if (((rc = sc_cfg_get_text(c, "server_url", &c->server_url)) != SC_OK &&
         rc != SC_E_NOT_FOUND) ||
        ((rc = sc_cfg_get_text(c, "pin", &c->pin_hex)) != SC_OK && rc != SC_E_NOT_FOUND) ||
        ((rc = sc_cfg_get_text(c, "ca_file", &c->ca_file)) != SC_OK && rc != SC_E_NOT_FOUND) ||
        ((rc = sc_cfg_get_text(c, "username", &c->username)) != SC_OK && rc != SC_E_NOT_FOUND) ||
        ((rc = sc_cfg_get_u64(c, "device_id", &dev)) != SC_OK && rc != SC_E_NOT_FOUND))
        goto fail;
    c->device_id = (uint32_t)dev;
    /* issue 11: messages whose disappearing timer ran out while no process
     * ran go now (expire.c); a failure here never stops the account opening */
    if (c->username != NULL)
        (void)sc_expire_tick(c);
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
        /* remembered as an absolute path: a relative --ca given at register
         * still names the same file from another working directory (not
         * resolved through symlinks: a renewed certificate behind a link is
         * picked up) */
        char *abs = NULL;
        if (opt->ca_file[0] != '/' && opt->ca_file[0] != '\0') {
            char *cwd = getcwd(NULL, 0);
            abs = cwd ? path_join(cwd, opt->ca_file) : NULL;
            free(cwd);
            if (abs == NULL) {
                rc = sc_fail(c, SC_E_STORE, "cannot resolve the --ca path %s: %s", opt->ca_file,
                             strerror(errno));
                goto fail;
            }
        }
        if (dupopt(&c->ca_file, abs ? abs : opt->ca_file) != 0 || dupopt(&c->pin_hex, NULL) != 0) {
            free(abs);
            goto nomem;
        }
        free(abs);
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
    sc_close_discard(c); /* a directory this call created goes again */
    *out = NULL;
    return rc;
}

void sc_close(sc_client *c)
{
    if (c == NULL)
        return;
    sc_disconnect(c);
    sc_unlock(c);
    sc_typing_free(c); /* receipts.c */
    pthread_mutex_destroy(&c->wake_mu);
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

void sc_close_discard(sc_client *c)
{
    static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm",
                                        "store.db-journal", "lock"};
    char *dir, *att;

    if (c == NULL)
        return;
    if (!c->created_dir || c->username != NULL) {
        sc_close(c);
        return;
    }
    dir = c->dir, att = c->att_dir;
    c->dir = NULL, c->att_dir = NULL;
    sc_close(c); /* the store closed and the lock dropped before the files go */
    if (dir && att) {
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            char *p = path_join(dir, files[i]);
            if (p)
                (void)unlink(p);
            free(p);
        }
        (void)rmdir(att);
        (void)rmdir(dir);
    }
    free(dir);
    free(att);
}

/* ------------------------------------------------------------ api */

void sc_disconnect(sc_client *c)
{
    if (c->conn) {
        (void)sc_conn_flush(c->conn, 2000);
        sc_wake_publish(c, NULL);
        sc_conn_free(c->conn);
    }
    c->conn = NULL;
    c->logged_in = false;
    if (c->sealed_conn) /* sealed.c: the connection that never logs in */
        sc_conn_free(c->sealed_conn);
    c->sealed_conn = NULL;
}

uint64_t sc_retry_at(const sc_client *c)
{
    return c->retry_at_ms;
}

static int open_conn(sc_client *c)
{
    sc_api_result r;

    if (c->server_url == NULL)
        return sc_fail(c, SC_E_USAGE, "no server: give --server https://HOST:PORT (and --pin HEX)");
    if (sc_api_open(c, &r) != SC_API_OK)
        return sc_api_fail(c, &r, "connect");
    return SC_OK;
}

/* docs/api.md "Authentication": the signed message. */
static int auth_sign(sc_client *c, uint8_t purpose, const char *username, uint32_t device_id,
                     const uint8_t sk[crypto_sign_SECRETKEYBYTES], uint8_t sig[64])
{
    uint8_t nonce[32], exporter[32];
    sc_api_result r;
    int rc;

    if (!sotto_username_valid(username))
        return sc_fail(c, SC_E_USAGE, "invalid username");
    if (sc_api_challenge(c, nonce, &r) != SC_API_OK)
        return sc_api_fail(c, &r, "challenge");
    if (sc_api_exporter(c, exporter, &r) != SC_API_OK)
        return sc_api_fail(c, &r, "login");
    /* The bytes are built by libsotto (sotto/account.h). */
    rc = sotto_auth_sign(sig, sk, purpose, exporter, nonce, username, device_id);
    sodium_memzero(exporter, sizeof exporter);
    if (rc != SOTTO_OK)
        return sc_fail(c, SC_E_USAGE, "cannot sign the login: %s", sotto_strerror(rc));
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
    sc_api_result r;
    int rc = SC_OK;

    if (sc_api_set_keys(c, spk, pks, n, &r) != SC_API_OK)
        rc = sc_api_fail(c, &r, "uploading keys");
    sc_api_result_clear(&r);
    return rc;
}

/* Generates, stores and returns a batch of one-time prekeys. */
static int new_prekeys(sc_client *c, sotto_prekey *pks, size_t n)
{
    uint64_t start = 0;
    int rc = sc_cfg_get_u64(c, "next_prekey_start", &start);

    /* a read error must not restart the ids at 0 (published ones would be
     * overwritten) */
    if (rc != SC_OK && rc != SC_E_NOT_FOUND)
        return rc;
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
    rc = sc_spk_add(c, (uint32_t)next, now);
    if (rc != SC_OK)
        return rc;
    return sc_cfg_set_u64(c, "next_signed_prekey_id", next + 1);
}

/* Removes signed prekeys replaced more than the grace window ago. */
static void expire_signed_prekeys(sc_client *c)
{
    uint64_t cutoff = sc_now_ms() - SC_SIGNED_PREKEY_GRACE_MS;
    uint32_t ids[64];
    size_t n = 0;

    /* best effort: what fails now is tried again at the next upkeep */
    if (sc_spk_replaced_before(c, cutoff, ids, 64, &n) != SC_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        int r = c->ps.signed_prekey.remove(c->ps.signed_prekey.user_data, ids[i]);
        if ((r != SOTTO_OK && r != SOTTO_ERR_NOT_FOUND) || sc_spk_delete(c, ids[i]) != SC_OK)
            return;
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
    rc = sc_spk_current_created(c, &created);
    if (rc == SC_E_NOT_FOUND)
        created = 0;
    else if (rc != SC_OK)
        return rc;
    rc = SC_OK;
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

/* Makes (or reuses, after an interrupted attempt) this device's identity
 * key and registration id. */
static int local_identity(sc_client *c, sotto_key_pair *id, uint32_t *regid)
{
    int rc = sotto_sqlite_store_get_local_identity(c->store, id, regid);

    if (rc == SOTTO_OK)
        return SC_OK;
    if (rc != SOTTO_ERR_NOT_FOUND)
        return sc_fail(c, SC_E_STORE, "cannot read the identity key");
    if (sotto_identity_key_pair_generate(id) != SOTTO_OK ||
        sotto_registration_id_generate(regid) != SOTTO_OK)
        return sc_fail(c, SC_E_INTERNAL, "cannot generate the identity key");
    if (sotto_sqlite_store_set_local_identity(c->store, id, *regid) != SOTTO_OK)
        return sc_fail(c, SC_E_STORE, "cannot store the identity key");
    return SC_OK;
}

int sc_register_device(sc_client *c, const char *username, const char *invite, bool recover,
                       uint64_t list_version)
{
    sc_api_register_req reg;
    sc_api_result r;
    sc_api_account own;
    sotto_device_list list, accepted;
    uint8_t sk[crypto_sign_SECRETKEYBYTES], pk[crypto_sign_PUBLICKEYBYTES], sig[64];
    uint8_t *signed_list = NULL;
    size_t signed_len = 0;
    sotto_public_key account_pk;
    sotto_key_pair id;
    uint32_t regid = 0, device_id = 0;
    int rc;

    memset(&id, 0, sizeof id);
    memset(&list, 0, sizeof list);
    if (c->server_url == NULL)
        return sc_fail(c, SC_E_USAGE, "register needs --server https://HOST:PORT");
    if ((c->pin_hex == NULL || !c->pin_hex[0]) && (c->ca_file == NULL || !c->ca_file[0]))
        return sc_fail(c, SC_E_USAGE, "register needs --pin HEX or --ca FILE");
    rc = local_identity(c, &id, &regid);
    if (rc == SC_OK)
        rc = load_auth_key(c, sk, true);
    if (rc == SC_OK)
        rc = sc_own_account_key(c, &account_pk);
    if (rc != SC_OK)
        goto out;
    crypto_sign_ed25519_sk_to_pk(pk, sk);
    /* the signed device list: this device alone, as device 1 */
    snprintf(list.username, sizeof list.username, "%s", username);
    list.version = list_version;
    list.timestamp_ms = sc_now_ms();
    list.n_devices = 1;
    rc = sc_own_device_entry(c, 1, &list.devices[0]);
    if (rc == SC_OK)
        rc = sc_own_list_sign(c, &list, &signed_list, &signed_len);
    if (rc == SC_OK)
        rc = open_conn(c);
    if (rc == SC_OK)
        rc = auth_sign(c, SOTTO_AUTH_PURPOSE_REGISTER, username, 1, sk, sig);
    if (rc != SC_OK)
        goto out;
    reg.username = username;
    reg.auth_key = pk;
    reg.signature = sig;
    reg.invite = invite;
    reg.identity_key = id.pub.bytes;
    reg.registration_id = regid;
    reg.account_key = account_pk.bytes;
    reg.device_list = signed_list;
    reg.device_list_len = signed_len;
    reg.recover = recover;
    if (sc_api_register(c, &reg, &device_id, &r) != SC_API_OK) {
        rc = sc_api_fail(c, &r, recover ? "restore" : "register");
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
    /* our own list is the first one we accept for our account */
    memset(&own, 0, sizeof own);
    own.has_account_key = true;
    memcpy(own.account_key, account_pk.bytes, sizeof own.account_key);
    own.device_list = signed_list;
    own.device_list_len = signed_len;
    rc = sc_account_accept(c, username, &own, &accepted);
    if (rc != SC_OK)
        goto out;
    c->logged_in = true;
    rc = upload_initial_keys(c);
    /* sealed sender (sealed.c): pin the trust root, upload our token */
    if (rc == SC_OK)
        rc = sc_sealed_after_auth(c);
    /* the server's key-transparency keys, pinned now (first use) or checked
     * against those given with --kt-key; a server without key transparency
     * or one that cannot answer now is asked again later */
    if (rc == SC_OK && (rc = sc_kt_config(c)) != SC_E_STORE &&
        !(rc == SC_E_KT && !c->kt_unsupported))
        rc = SC_OK;
out:
    free(signed_list);
    sodium_memzero(sk, sizeof sk);
    sotto_key_pair_wipe(&id);
    return rc;
}

int sc_register(sc_client *c, const char *username, const char *invite)
{
    sotto_public_key pk;
    int rc;

    if (c->username)
        return sc_fail(c, SC_E_STATE, "account already registered as %s", c->username);
    if (!sc_username_valid(username))
        return sc_fail(c, SC_E_USAGE, "invalid username: 3 to 32 of a-z, 0-9, '_', '.'");
    /* the account key (kept if an earlier attempt created one) */
    rc = sc_own_account_key(c, &pk);
    if (rc == SC_E_NOT_FOUND)
        rc = sc_account_key_create(c);
    if (rc != SC_OK)
        return rc;
    return sc_register_device(c, username, invite, false, 1);
}

/*
 * An account registered before account keys (client store v2 and older):
 * its primary (device 1) makes the account key and publishes a first signed
 * list of the devices the server has now. That first list is trust on first
 * use of the server's device set, like the first contact with a peer
 * (docs/protocol.md "Upgrading an account").
 */
static int upgrade_to_account_key(sc_client *c)
{
    sc_api_device *devs = NULL;
    sc_api_result r;
    sc_api_account own;
    sotto_device_list list, accepted;
    sotto_public_key pk;
    uint8_t *signed_list = NULL;
    size_t n = 0, signed_len = 0;
    int rc;

    if (sc_api_list_devices(c, &devs, &n, NULL, &r) != SC_API_OK)
        return sc_api_fail(c, &r, "devices");
    memset(&list, 0, sizeof list);
    snprintf(list.username, sizeof list.username, "%s", c->username);
    list.version = 1;
    list.timestamp_ms = sc_now_ms();
    for (size_t i = 0; i < n && list.n_devices < SOTTO_DEVICE_LIST_MAX; i++) {
        sotto_device_entry *e = &list.devices[list.n_devices];
        if (!devs[i].has_auth_key || !devs[i].has_identity_key ||
            sotto_public_key_decode(&e->identity_key, devs[i].identity_key,
                                    sizeof devs[i].identity_key) != SOTTO_OK)
            continue;
        e->device_id = devs[i].device_id;
        e->registration_id = devs[i].registration_id;
        memcpy(e->auth_key, devs[i].auth_key, sizeof e->auth_key);
        list.n_devices++;
    }
    free(devs);
    rc = sc_own_account_key(c, &pk);
    if (rc == SC_E_NOT_FOUND)
        rc = sc_account_key_create(c);
    if (rc == SC_OK)
        rc = sc_own_account_key(c, &pk);
    if (rc == SC_OK)
        rc = sc_own_list_sign(c, &list, &signed_list, &signed_len);
    if (rc != SC_OK)
        return rc;
    if (sc_api_set_device_list(c, signed_list, signed_len, pk.bytes, &r) != SC_API_OK) {
        rc = sc_api_fail(c, &r, "publishing the account key");
    } else {
        memset(&own, 0, sizeof own);
        own.has_account_key = true;
        memcpy(own.account_key, pk.bytes, sizeof own.account_key);
        own.device_list = signed_list;
        own.device_list_len = signed_len;
        rc = sc_account_accept(c, c->username, &own, &accepted);
    }
    free(signed_list);
    return rc;
}

/* After every login: own-device monitoring (account.c), or the upgrade of
 * an account from before account keys. */
static int own_account_check(sc_client *c)
{
    sotto_public_key pk;
    bool alert = false;
    int rc = sc_own_account_key(c, &pk);

    if (rc == SC_E_NOT_FOUND)
        return c->device_id == 1 ? upgrade_to_account_key(c) : SC_OK;
    if (rc != SC_OK)
        return rc;
    rc = sc_own_devices_check(c, &alert);
    if (rc != SC_OK)
        return rc;
    /* key transparency: what the key directory holds for our account (kt.c;
     * alerts are stored as notices). Advisory like the check above: a
     * server that cannot answer now is asked again at the next login. */
    rc = sc_kt_monitor_own(c, &alert);
    if (rc == SC_E_RETRY || rc == SC_E_SERVER || rc == SC_E_KT || rc == SC_E_NOT_FOUND)
        rc = SC_OK;
    return rc;
}

int sc_connect(sc_client *c)
{
    sc_api_login_info info;
    sc_api_result r;
    uint8_t sk[crypto_sign_SECRETKEYBYTES], sig[64];
    uint64_t uploaded = 0;
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
    if (sc_api_login(c, c->username, c->device_id, sig, &info, &r) != SC_API_OK) {
        if (r.outcome == SC_API_REFUSED && r.status == SC_ST_UNAUTHENTICATED)
            /* our own signature over a fresh nonce: the server no longer
             * has this device (docs/cli.md exit 8) */
            rc = sc_fail(c, SC_E_STATE,
                         "login refused: the server no longer has %s's device %u (it was"
                         " removed, the account was restored on another device, or deleted)",
                         c->username, c->device_id);
        else
            rc = sc_api_fail(c, &r, "login");
        sc_disconnect(c);
        goto out;
    }
    c->login_queued = info.queued;
    c->logged_in = true;
    /* sealed sender (sealed.c): the root pinned on first sight (a linked
     * device), our delivery token kept current; advisory but the store */
    rc = sc_sealed_after_auth(c);
    if (rc != SC_OK)
        goto out;
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
    if (!info.has_keys || !uploaded)
        rc = upload_initial_keys(c);
    else
        rc = sc_keys_maintain(c, info.prekeys_low);
    /* the check is advisory (sending and receiving check devices
     * themselves): a connection lost meanwhile is the caller's to notice,
     * and the check runs again at the next login */
    if (rc == SC_OK && (rc = own_account_check(c)) == SC_E_NETWORK)
        rc = SC_OK;
    /* a server from before key transparency closed the connection at the
     * first KT request: log in again (kt_unsupported: not asked again) */
    if (rc == SC_OK && c->conn == NULL && c->kt_unsupported)
        rc = sc_connect(c);
    /* heads contacts gossiped that could not be checked then (gossip.c):
     * advisory too, what it finds is stored as notices */
    if (rc == SC_OK && c->logged_in && c->conn != NULL)
        (void)sc_gossip_retry_pending(c);
    /* a linked device not synced yet gets contacts, groups and history
     * (linksync.c); advisory too: tried again at the next login */
    if (rc == SC_OK && c->logged_in && c->conn != NULL)
        (void)sc_link_sync_pending(c);
out:
    sodium_memzero(sk, sizeof sk);
    return rc;
}

int sc_devices(sc_client *c, sc_device_cb cb, void *ud)
{
    sc_api_device *devs = NULL;
    sc_api_result r;
    sotto_device_list l;
    size_t n = 0;
    bool have_list;
    int rc = sc_connect(c);

    if (rc != SC_OK)
        return rc;
    if (sc_api_list_devices(c, &devs, &n, NULL, &r) != SC_API_OK)
        return sc_api_fail(c, &r, "devices");
    have_list = sc_account_current(c, c->username, &l) == SC_OK;
    for (size_t i = 0; i < n; i++) {
        const sotto_device_entry *e =
            have_list ? sotto_device_list_find(&l, devs[i].device_id) : NULL;
        sc_device_info di = {devs[i].device_id,
                             devs[i].created,
                             devs[i].last_seen,
                             devs[i].has_keys,
                             devs[i].device_id == c->device_id,
                             e != NULL};
        cb(ud, &di);
    }
    free(devs);
    return SC_OK;
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

/* Our account's current signed list, checked against what the server
 * serves now (own-device monitoring does the same at every login). */
static int own_list(sc_client *c, sotto_device_list *l, sc_api_device **devs, size_t *n)
{
    sc_api_account a;
    sc_api_result r;
    int rc;

    if (sc_api_list_devices(c, devs, n, &a, &r) != SC_API_OK)
        return sc_api_fail(c, &r, "devices");
    rc = sc_account_accept(c, c->username, &a, l);
    sc_api_account_clear(&a);
    if (rc != SC_OK) {
        free(*devs);
        *devs = NULL;
    }
    return rc;
}

/* Signs `next` (version and date set here) and remembers it as accepted
 * once the server took it (`publish` sends it). */
static int sign_next(sc_client *c, sotto_device_list *next, const sotto_device_list *cur,
                     uint8_t **signed_list, size_t *signed_len)
{
    next->version = cur->version + 1;
    next->timestamp_ms = sc_now_ms();
    return sc_own_list_sign(c, next, signed_list, signed_len);
}

static int accept_own(sc_client *c, const uint8_t *signed_list, size_t signed_len)
{
    sc_api_account own;
    sotto_public_key pk;
    sotto_device_list l;
    int rc = sc_own_account_key(c, &pk);

    if (rc != SC_OK)
        return rc;
    memset(&own, 0, sizeof own);
    own.has_account_key = true;
    memcpy(own.account_key, pk.bytes, sizeof own.account_key);
    own.device_list = (uint8_t *)signed_list;
    own.device_list_len = signed_len;
    return sc_account_accept(c, c->username, &own, &l);
}

int sc_device_add(sc_client *c, const char *code_hex, uint32_t *device_id,
                  char account_key_hex[2 * SOTTO_PUBLIC_KEY_BYTES + 1])
{
    return sc_device_add_ex(c, code_hex, -1, device_id, account_key_hex);
}

int sc_device_add_ex(sc_client *c, const char *code_hex, int history_days, uint32_t *device_id,
                     char account_key_hex[2 * SOTTO_PUBLIC_KEY_BYTES + 1])
{
    sc_api_result r;
    sc_api_device *devs = NULL;
    sotto_device_list cur, next;
    sotto_device_entry e;
    sotto_public_key pk;
    uint8_t code[SC_LINK_CODE_BYTES], sk[crypto_sign_SECRETKEYBYTES], sig[64];
    uint8_t *signed_list = NULL;
    uint32_t regid, id = 2;
    uint64_t last_id = 0;
    size_t bl = 0, n = 0, k = 0;
    int rc;

    *device_id = 0;
    account_key_hex[0] = '\0';
    memset(&e, 0, sizeof e);
    if (sodium_hex2bin(code, sizeof code, code_hex, strlen(code_hex), NULL, &bl, NULL) != 0 ||
        bl != sizeof code || strlen(code_hex) != 2 * sizeof code ||
        sotto_public_key_decode(&e.identity_key, code + 32, SOTTO_PUBLIC_KEY_BYTES) != SOTTO_OK)
        return sc_fail(c, SC_E_USAGE, "not a link code (run link-request on the new device)");
    regid = ((uint32_t)code[65] << 24) | ((uint32_t)code[66] << 16) | ((uint32_t)code[67] << 8) |
            code[68];
    if (!sc_is_primary(c))
        return sc_fail(c, SC_E_STATE,
                       "only the primary device (the one holding the account key) can link"
                       " devices");
    rc = sc_connect(c);
    if (rc == SC_OK)
        rc = own_list(c, &cur, &devs, &n);
    if (rc != SC_OK)
        return rc;
    /* a new id, never one a removed device had: above every id in the list,
     * on the server, and that this primary ever gave out (contacts then
     * see "linked" and "removed", and an old session can never be taken
     * for the new device's) */
    rc = sc_cfg_get_u64(c, "last_device_id", &last_id);
    if (rc != SC_OK && rc != SC_E_NOT_FOUND) {
        free(devs);
        return rc;
    }
    id = last_id > 1 ? (uint32_t)last_id + 1 : 2;
    for (size_t i = 0; i < cur.n_devices; i++)
        if (cur.devices[i].device_id >= id)
            id = cur.devices[i].device_id + 1;
    for (size_t i = 0; i < n; i++)
        if (devs[i].device_id >= id)
            id = devs[i].device_id + 1;
    free(devs);
    if (cur.n_devices >= SOTTO_DEVICE_LIST_MAX)
        return sc_fail(c, SC_E_SERVER, "the account already has the most devices a list holds");
    e.device_id = id;
    e.registration_id = regid;
    memcpy(e.auth_key, code, 32);
    /* next = cur with e inserted in id order */
    next = cur;
    while (k < cur.n_devices && cur.devices[k].device_id < id)
        k++;
    memmove(&next.devices[k + 1], &cur.devices[k], (cur.n_devices - k) * sizeof e);
    next.devices[k] = e;
    next.n_devices = cur.n_devices + 1;
    /* the history the new device gets (linksync.c), recorded before it
     * exists: a crash after the add still syncs what was chosen */
    if ((rc = sc_link_history_days_set(c, id, history_days)) != SC_OK)
        return rc;
    rc = sign_next(c, &next, &cur, &signed_list, &bl);
    if (rc == SC_OK)
        rc = load_auth_key(c, sk, false);
    if (rc != SC_OK)
        goto out;
    /* docs/api.md "Adding a device": bytes built by libsotto (sotto/account.h) */
    rc = sotto_add_device_sign(sig, sk, c->username, code, code + 32, regid);
    sodium_memzero(sk, sizeof sk);
    if (rc != SOTTO_OK) {
        rc = sc_fail(c, SC_E_USAGE, "not a link code (run link-request on the new device): %s",
                     sotto_strerror(rc));
        goto out;
    }
    if (sc_api_add_device(c, code, code + 32, regid, sig, signed_list, bl, device_id, &r) !=
        SC_API_OK) {
        rc = sc_api_fail(c, &r, "add device");
        goto out;
    }
    if (*device_id != id) {
        rc = sc_fail(c, SC_E_SERVER, "the server added device %u, not %u", *device_id, id);
        goto out;
    }
    rc = accept_own(c, signed_list, bl);
    if (rc == SC_OK)
        rc = sc_cfg_set_u64(c, "last_device_id", id);
    if (rc == SC_OK)
        rc = sc_own_account_key(c, &pk);
    if (rc == SC_OK)
        sc_hex(pk.bytes, SOTTO_PUBLIC_KEY_BYTES, account_key_hex);
out:
    free(signed_list);
    return rc;
}

int sc_link_finish(sc_client *c, const char *username, uint32_t device_id,
                   const char *account_key_hex)
{
    uint8_t *blob = NULL, akey[SOTTO_PUBLIC_KEY_BYTES];
    size_t len = 0, bl = 0;
    sotto_public_key pk;
    sotto_device_list l;
    sotto_device_entry me;
    const sotto_device_entry *found;
    int rc;

    if (c->username)
        return sc_fail(c, SC_E_STATE, "account already registered as %s", c->username);
    if (!sc_username_valid(username) || device_id < 2)
        return sc_fail(c, SC_E_USAGE,
                       "usage: link-finish USERNAME DEVICE_ID ACCOUNT_KEY (device id >= 2)");
    if (account_key_hex == NULL ||
        sodium_hex2bin(akey, sizeof akey, account_key_hex, strlen(account_key_hex), NULL, &bl,
                       NULL) != 0 ||
        bl != sizeof akey || strlen(account_key_hex) != 2 * sizeof akey ||
        sotto_public_key_decode(&pk, akey, sizeof akey) != SOTTO_OK)
        return sc_fail(c, SC_E_USAGE,
                       "the account key is the 66 hex characters `device-add` printed on the"
                       " primary device");
    if (sc_cfg_get_blob(c, "auth_sk", &blob, &len) != SC_OK)
        return sc_fail(c, SC_E_STATE, "run link-request first");
    sodium_memzero(blob, len);
    free(blob);
    /* the account key comes from the primary, never from the server */
    rc = sc_cfg_set_blob(c, "account_pk", pk.bytes, SOTTO_PUBLIC_KEY_BYTES);
    if (rc != SC_OK)
        return rc;
    c->username = strdup(username);
    if (c->username == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    c->device_id = device_id;
    rc = sc_connect(c);
    if (rc == SC_OK)
        rc = sc_account_current(c, username, &l);
    if (rc == SC_OK)
        rc = sc_own_device_entry(c, device_id, &me);
    if (rc == SC_OK) {
        found = sotto_device_list_find(&l, device_id);
        if (found == NULL || sodium_memcmp(found->auth_key, me.auth_key, sizeof me.auth_key) != 0 ||
            !sotto_public_key_equal(&found->identity_key, &me.identity_key))
            rc = sc_fail(c, SC_E_UNTRUSTED,
                         "the account key you gave did not sign a device list with this"
                         " device as device %u",
                         device_id);
    } else if (rc == SC_E_NOT_FOUND) {
        rc = sc_fail(c, SC_E_UNTRUSTED,
                     "the server served no device list signed by that"
                     " account key");
    }
    if (rc != SC_OK) {
        /* nothing of this attempt stays: the next one starts clean */
        char why[sizeof c->err];
        snprintf(why, sizeof why, "%s", c->err);
        (void)sc_account_forget(c, username);
        (void)sc_cfg_delete(c, "account_pk");
        free(c->username);
        c->username = NULL;
        c->device_id = 0;
        sc_disconnect(c);
        snprintf(c->err, sizeof c->err, "%s", why);
        return rc;
    }
    if ((rc = sc_cfg_set_text(c, "username", username)) != SC_OK ||
        (rc = sc_cfg_set_u64(c, "device_id", device_id)) != SC_OK)
        return rc;
    return SC_OK;
}

int sc_device_remove(sc_client *c, uint32_t device_id)
{
    sc_api_result r;
    sc_api_device *devs = NULL;
    sotto_device_list cur, next;
    uint8_t *signed_list = NULL;
    size_t n = 0, len = 0, k = 0;
    int rc;

    if (!sc_is_primary(c))
        return sc_fail(c, SC_E_STATE,
                       "only the primary device (the one holding the account key) can remove"
                       " devices");
    rc = sc_connect(c);
    if (rc == SC_OK)
        rc = own_list(c, &cur, &devs, &n);
    if (rc != SC_OK)
        return rc;
    free(devs);
    if (device_id == c->device_id)
        return sc_fail(c, SC_E_USAGE, "the primary device cannot remove itself");
    if (sotto_device_list_find(&cur, device_id) == NULL)
        return sc_fail(c, SC_E_NOT_FOUND, "device %u is not in the account's device list",
                       device_id);
    next = cur;
    next.n_devices = 0;
    for (k = 0; k < cur.n_devices; k++)
        if (cur.devices[k].device_id != device_id)
            next.devices[next.n_devices++] = cur.devices[k];
    rc = sign_next(c, &next, &cur, &signed_list, &len);
    if (rc != SC_OK)
        return rc;
    if (sc_api_remove_device(c, device_id, signed_list, len, &r) != SC_API_OK)
        rc = sc_api_fail(c, &r, "remove device");
    if (rc == SC_OK)
        rc = accept_own(c, signed_list, len);
    free(signed_list);
    if (rc == SC_OK && c->username) {
        sotto_address a = {c->username, strlen(c->username), device_id};
        if (sotto_session_delete(&c->ps, &a) != SOTTO_OK)
            (void)sc_fail(c, SC_E_STORE, "cannot delete a session");
        (void)sc_contact_forget_device(c, c->username, device_id);
    }
    return rc;
}
