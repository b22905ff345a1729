/*
 * server/sealed.c -- sealed sender keys and sender certificates in sottod
 * (see sealed.h for the design).
 */
#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "datadir.h"
#include "log.h"
#include "sottod.h"
#include "sotto/keys.h"
#include "sotto/sealed.h"
#include "store/store.h"

_Static_assert(SOTTOD_SEALED_ROOT_BYTES == SOTTO_PUBLIC_KEY_BYTES, "root size");

#define ROOT_FILE "sealed-root.key"
#define SERVER_FILE "sealed-server.key"

enum { HOOK_NONE = 0, HOOK_EXPIRED, HOOK_OTHER, HOOK_ROGUE_ROOT };

struct sottod_sealed {
    sotto_key_pair root;   /* trust root */
    sotto_key_pair server; /* server certificate key (key id 1) */
    uint8_t *server_cert;  /* serialised ServerCertificate, signed by root */
    size_t server_cert_len;
    int hook; /* HOOK_*: sottod-test only, else HOOK_NONE */
};

static int load_pair(const char *dir, const char *name, sotto_key_pair *kp, bool may_create,
                     char *why, size_t cap)
{
    uint8_t priv[32];
    int rc = 0;

    if (sottod_key_file(dir, name, "sealed", priv, may_create, NULL, why, cap) != 0)
        return -1;
    if (sotto_key_pair_from_private(kp, priv) != SOTTO_OK) {
        snprintf(why, cap, "%s: cannot derive the key pair", name);
        rc = -1;
    }
    sodium_memzero(priv, sizeof(priv));
    return rc;
}

/* True if DIR/sealed-root.key exists (any error but ENOENT counts as
 * existing: load_pair then reports it). */
static bool root_file_exists(const char *dir)
{
    char path[SOTTOD_PATH_MAX + 32];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/%s", dir, ROOT_FILE);
    return stat(path, &sb) == 0 || errno != ENOENT;
}

#ifdef SOTTOD_TEST_HOOKS
/* SOTTOD_TEST_SENDER_CERT (sealed.h). rogue_root: a fresh root signs the
 * server certificate instead of the real one. */
static int read_hook(sottod_sealed *s, char *why, size_t cap)
{
    const char *v = getenv("SOTTOD_TEST_SENDER_CERT");
    sotto_key_pair rogue;

    if (v == NULL || v[0] == '\0')
        return 0;
    if (strcmp(v, "expired") == 0) {
        s->hook = HOOK_EXPIRED;
    } else if (strcmp(v, "other") == 0) {
        s->hook = HOOK_OTHER;
    } else if (strcmp(v, "rogue_root") == 0) {
        s->hook = HOOK_ROGUE_ROOT;
        free(s->server_cert);
        s->server_cert = NULL;
        if (sotto_key_pair_generate(&rogue) != SOTTO_OK ||
            sotto_server_certificate_create(&s->server_cert, &s->server_cert_len,
                                            SOTTOD_SEALED_SERVER_KEY_ID, &s->server.pub,
                                            rogue.priv) != SOTTO_OK) {
            sotto_key_pair_wipe(&rogue);
            snprintf(why, cap, "test hook rogue_root: cannot make the certificate");
            return -1;
        }
        sotto_key_pair_wipe(&rogue);
    } else {
        snprintf(why, cap, "SOTTOD_TEST_SENDER_CERT must be expired, other or rogue_root");
        return -1;
    }
    sottod_log(SOTTOD_LOG_WARN, "test_hook", "sender_cert=%s", v);
    return 0;
}
#endif

static void mark_done(void *arg, const sottod_store_result *res)
{
    *(int *)arg = res->status;
}

int sottod_sealed_start(sottod_server *srv, char *why, size_t why_cap)
{
    sottod_sealed *s = calloc(1, sizeof(*s));
    bool marked = false;
    int status = SOTTOD_STORE_ERR;

    if (s == NULL) {
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    /* A root handed out before (the store's marker) is never silently
     * replaced: clients pinned it. A store without the marker (new, or
     * made before the marker existed) gets one once the root is loaded. */
    if (sottod_store_sealed_root_marked(srv->store, &marked) != SOTTOD_STORE_OK) {
        snprintf(why, why_cap, "cannot read the sealed-sender marker from the database");
        goto fail;
    }
    if (marked && !root_file_exists(srv->cfg.data_dir)) {
        snprintf(why, why_cap,
                 "%s/%s is missing but this data directory has handed out a sealed-sender trust "
                 "root before, which clients pinned: restore the file from a backup, or run "
                 "`sottod admin new-sealed-root` to make a new root (clients that pinned the old "
                 "one then send and receive identified only: see docs/operating.md)",
                 srv->cfg.data_dir, ROOT_FILE);
        goto fail;
    }
    if (load_pair(srv->cfg.data_dir, ROOT_FILE, &s->root, !marked, why, why_cap) != 0 ||
        load_pair(srv->cfg.data_dir, SERVER_FILE, &s->server, true, why, why_cap) != 0)
        goto fail;
    if (!marked &&
        (sottod_store_sealed_root_mark(srv->store, mark_done, &status) != SOTTOD_STORE_OK ||
         sottod_store_drain(srv->store) != SOTTOD_STORE_OK || status != SOTTOD_STORE_OK)) {
        snprintf(why, why_cap, "cannot store the sealed-sender marker in the database");
        goto fail;
    }
    if (sotto_server_certificate_create(&s->server_cert, &s->server_cert_len,
                                        SOTTOD_SEALED_SERVER_KEY_ID, &s->server.pub,
                                        s->root.priv) != SOTTO_OK) {
        snprintf(why, why_cap, "cannot make the sealed-sender server certificate");
        goto fail;
    }
#ifdef SOTTOD_TEST_HOOKS
    if (read_hook(s, why, why_cap) != 0)
        goto fail;
#endif
    srv->sealed = s;
    return 0;
fail:
    sotto_key_pair_wipe(&s->root);
    sotto_key_pair_wipe(&s->server);
    free(s->server_cert);
    free(s);
    return -1;
}

void sottod_sealed_stop(sottod_server *srv)
{
    sottod_sealed *s = srv->sealed;

    if (s == NULL)
        return;
    sotto_key_pair_wipe(&s->root);
    sotto_key_pair_wipe(&s->server);
    free(s->server_cert);
    free(s);
    srv->sealed = NULL;
}

const uint8_t *sottod_sealed_root(const sottod_server *srv)
{
    return srv->sealed != NULL ? srv->sealed->root.pub.bytes : NULL;
}

int sottod_sealed_issue(sottod_server *srv, const char *username, uint32_t device_id,
                        const uint8_t *identity_key, uint64_t now_ms, uint8_t **cert,
                        size_t *cert_len, uint64_t *expires_ms)
{
    sottod_sealed *s = srv->sealed;
    sotto_public_key ik;
    uint64_t exp = now_ms + srv->cfg.sender_cert_validity_s * 1000u;

    *cert = NULL;
    *cert_len = 0;
    if (s == NULL || sotto_public_key_decode(&ik, identity_key, SOTTO_PUBLIC_KEY_BYTES) != SOTTO_OK)
        return -1;
    if (s->hook == HOOK_EXPIRED)
        exp = now_ms - 1000;
    if (s->hook == HOOK_OTHER)
        username = "mallory";
    if (sotto_sender_certificate_create(cert, cert_len, username, device_id, &ik, exp,
                                        s->server_cert, s->server_cert_len,
                                        s->server.priv) != SOTTO_OK)
        return -1;
    *expires_ms = exp;
    return 0;
}

int sottod_sealed_new_root(const char *data_dir)
{
    sotto_key_pair kp;
    char why[SOTTOD_PATH_MAX + 128] = "cannot initialise libsotto";
    char hex[2 * SOTTO_PUBLIC_KEY_BYTES + 1];

    if (data_dir == NULL || data_dir[0] == '\0') {
        fprintf(stderr,
                "sottod admin new-sealed-root: data_dir is not set (--data-dir or --config)\n");
        return 1;
    }
    if (root_file_exists(data_dir)) {
        fprintf(stderr,
                "sottod admin new-sealed-root: %s/%s exists; this command only replaces a lost "
                "root (move the file away first if you really mean to replace the root)\n",
                data_dir, ROOT_FILE);
        return 1;
    }
    /* O_EXCL in sottod_key_file: never overwrites a file that appeared meanwhile */
    if (sotto_init() != SOTTO_OK ||
        load_pair(data_dir, ROOT_FILE, &kp, true, why, sizeof(why)) != 0) {
        fprintf(stderr, "sottod admin new-sealed-root: %s\n", why);
        return 1;
    }
    sodium_bin2hex(hex, sizeof(hex), kp.pub.bytes, sizeof(kp.pub.bytes));
    sotto_key_pair_wipe(&kp);
    printf("%s\n", hex);
    fprintf(stderr,
            "sottod admin new-sealed-root: created %s/%s; (re)start sottod to use it. Clients that "
            "pinned the old root stop sealing and clear their delivery tokens at their next "
            "login, so they send and receive identified only (docs/operating.md)\n",
            data_dir, ROOT_FILE);
    return 0;
}

int sottod_sealed_print_root(const char *data_dir)
{
    sotto_key_pair kp;
    char why[SOTTOD_PATH_MAX + 128] = "cannot initialise libsotto";
    char hex[2 * SOTTO_PUBLIC_KEY_BYTES + 1];

    if (data_dir == NULL || data_dir[0] == '\0') {
        fprintf(stderr, "sottod admin sealed-root: data_dir is not set (--data-dir or --config)\n");
        return 1;
    }
    if (sotto_init() != SOTTO_OK ||
        load_pair(data_dir, ROOT_FILE, &kp, false, why, sizeof(why)) != 0) {
        fprintf(stderr, "sottod admin sealed-root: %s\n", why);
        return 1;
    }
    sodium_bin2hex(hex, sizeof(hex), kp.pub.bytes, sizeof(kp.pub.bytes));
    sotto_key_pair_wipe(&kp);
    printf("%s\n", hex);
    return 0;
}
