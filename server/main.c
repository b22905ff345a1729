/*
 * server/main.c -- sottod's command line: run the server, or an admin
 * command against the data directory's database.
 *
 *   sottod [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--set KEY=VALUE]... [--init]
 *   sottod admin [--config FILE | --data-dir DIR] invite [--count N]
 *   sottod admin [--config FILE | --data-dir DIR] disclose USERNAME
 *   sottod admin [--config FILE | --data-dir DIR] expire [--at UNIX_SECONDS]
 *   sottod admin [--config FILE | --data-dir DIR] delete-account USERNAME
 *   sottod admin [--config FILE | --data-dir DIR] sealed-root
 *   sottod admin [--config FILE | --data-dir DIR] new-sealed-root
 *   sottod --kt-info [--config FILE | --data-dir DIR]
 *   sottod --help | --version
 *
 * Admin commands open the store directly (SQLite in WAL mode allows this
 * next to a running server) and never go through the network. They never
 * create a database: a missing one is an error, not a new empty server.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config.h"
#include "kt.h"
#include "log.h"
#include "net.h"
#include "sealed.h"
#include "store/store.h"

#define SOTTOD_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out, "usage: sottod [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--set "
                 "KEY=VALUE]... [--init]\n"
                 "       sottod admin [--config FILE | --data-dir DIR] COMMAND\n"
                 "       sottod --kt-info [--config FILE | --data-dir DIR]\n"
                 "       sottod --help | --version\n"
                 "\n"
                 "Runs the Sotto server: one HTTPS port (TLS 1.3) with the WebSocket API at\n"
                 "/v1/websocket, attachments at /v1/attachments/{id} and /healthz; /metrics\n"
                 "and /healthz on a separate loopback listener (metrics_listen).\n"
                 "On start it prints these lines on stdout:\n"
                 "  sottod: metrics on http://HOST:PORT/metrics   (unless metrics_listen = off)\n"
                 "  sottod: listening on https://HOST:PORT\n"
                 "  sottod: certificate sha256 HEX   (pin this in clients)\n"
                 "SIGTERM/SIGINT: graceful shutdown. SIGHUP: reload the certificate.\n"
                 "\n"
                 "Start-up: one sottod per data directory (DATA_DIR/sottod.lock); the database\n"
                 "is integrity-checked. A brand-new data directory is initialised; one that\n"
                 "holds an earlier server's files but a missing, empty or damaged database is\n"
                 "refused (exit 1, reason logged) -- restore the database, or use --init.\n"
                 "\n"
                 "Options:\n"
                 "  --config FILE       read `key = value` settings (see below)\n"
                 "  --data-dir DIR      same as --set data_dir=DIR\n"
                 "  --listen HOST:PORT  same as --set listen=HOST:PORT (port 0: any free port)\n"
                 "  --set KEY=VALUE     set one key (after --config, in order)\n"
                 "  --kt-info           print the key-transparency keys (kt_server_key,\n"
                 "                      kt_vrf_key: what clients and auditors pin), kt_log_size\n"
                 "                      and kt_auditors, then exit\n"
                 "  --init              create a new, empty database if sottod.db is missing or\n"
                 "                      empty even though the directory was used before (never\n"
                 "                      replaces a database that holds anything)\n"
                 "\n"
                 "Admin commands (open DATA_DIR/sottod.db directly):\n"
                 "  invite [--count N]  create N invite tokens (printed one per line)\n"
                 "  disclose USERNAME   print as JSON what is disclosed about an account\n"
                 "  expire [--at T]     delete envelopes expired now (or at unix time T)\n"
                 "  delete-account USERNAME  delete an account, its devices, keys and queues\n"
                 "  sealed-root         print the sealed-sender trust root public key (hex; what\n"
                 "                      clients pin, for operators to publish)\n"
                 "  new-sealed-root     after a lost sealed-root.key: make a new root (clients\n"
                 "                      that pinned the old one refuse sealed messages)\n"
                 "\n"
                 "Configuration keys (docs/operating.md):\n");
    sottod_config_print_keys(out);
}

/* Parses the shared options; *argi is left at the first non-option.
 * --listen is accepted if allow_listen, --init if init is not NULL. */
static int parse_common(int argc, char **argv, int *argi, sottod_config *cfg, bool allow_listen,
                        bool *init)
{
    char err[512];
    for (; *argi < argc; (*argi)++) {
        const char *a = argv[*argi];
        const char *val = (*argi + 1 < argc) ? argv[*argi + 1] : NULL;
        if (strcmp(a, "--config") == 0 && val != NULL) {
            if (sottod_config_load(cfg, val, err, sizeof(err)) != 0) {
                fprintf(stderr, "sottod: %s\n", err);
                return -1;
            }
            (*argi)++;
        } else if (strcmp(a, "--data-dir") == 0 && val != NULL) {
            if (sottod_config_set(cfg, "data_dir", val, err, sizeof(err)) != 0) {
                fprintf(stderr, "sottod: %s\n", err);
                return -1;
            }
            (*argi)++;
        } else if (allow_listen && strcmp(a, "--listen") == 0 && val != NULL) {
            if (sottod_config_set(cfg, "listen", val, err, sizeof(err)) != 0) {
                fprintf(stderr, "sottod: %s\n", err);
                return -1;
            }
            (*argi)++;
        } else if (init != NULL && strcmp(a, "--init") == 0) {
            *init = true;
        } else if (strcmp(a, "--set") == 0 && val != NULL) {
            char kv[2048];
            snprintf(kv, sizeof(kv), "%s", val);
            char *eq = strchr(kv, '=');
            if (eq == NULL) {
                fprintf(stderr, "sottod: --set needs KEY=VALUE\n");
                return -1;
            }
            *eq = '\0';
            if (sottod_config_set(cfg, kv, eq + 1, err, sizeof(err)) != 0) {
                fprintf(stderr, "sottod: %s\n", err);
                return -1;
            }
            (*argi)++;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "sottod: unknown option %s (see --help)\n", a);
            return -1;
        } else {
            break;
        }
    }
    return 0;
}

static int64_t g_admin_now; /* expire --at: the clock the admin store uses */

static int64_t admin_clock(void *arg)
{
    (void)arg;
    return g_admin_now;
}

static int open_admin_store(const sottod_config *cfg, sottod_store **st)
{
    char db[SOTTOD_PATH_MAX + 16], why[1024];
    sottod_store_config scfg;
    if (cfg->data_dir[0] == '\0') {
        fprintf(stderr, "sottod admin: data_dir is not set (--data-dir or --config)\n");
        return -1;
    }
    snprintf(db, sizeof(db), "%s/sottod.db", cfg->data_dir);
    memset(&scfg, 0, sizeof(scfg));
    scfg.path = db;
    scfg.max_queue = (uint32_t)cfg->queue_max;
    if (g_admin_now != 0)
        scfg.now = admin_clock;
    scfg.must_exist = true; /* never create an empty server's database */
    scfg.why = why;
    scfg.why_cap = sizeof(why);
    int rc = sottod_store_open(&scfg, st);
    if (rc != SOTTOD_STORE_OK) {
        fprintf(stderr, "sottod admin: %s\n", why[0] != '\0' ? why : sottod_store_strerror(rc));
        if (rc == SOTTOD_STORE_NOT_FOUND)
            fprintf(stderr, "sottod admin: start sottod on this data directory first\n");
        return -1;
    }
    return 0;
}

typedef struct admin_result {
    int status;
    uint32_t deleted;
} admin_result;

static void admin_done(void *arg, const sottod_store_result *res)
{
    admin_result *r = arg;
    r->status = res->status;
    if (res->type == SOTTOD_OP_ENVELOPES_EXPIRE)
        r->deleted = res->u.deleted.deleted;
}

static int admin_invite(const sottod_config *cfg, sottod_store *st, int argc, char **argv, int i)
{
    unsigned long count = 1;
    if (i < argc && strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
        char *end = NULL;
        count = strtoul(argv[i + 1], &end, 10);
        if (end == argv[i + 1] || *end != '\0' || count == 0 || count > 1000) {
            fprintf(stderr, "sottod admin invite: --count must be 1..1000\n");
            return 2;
        }
    } else if (i < argc) {
        fprintf(stderr, "sottod admin invite: unexpected %s\n", argv[i]);
        return 2;
    }
    int64_t expires = sottod_store_now(st) + (int64_t)cfg->invite_ttl_days * 86400;
    for (unsigned long k = 0; k < count; k++) {
        uint8_t raw[16];
        char token[33];
        admin_result r = {SOTTOD_STORE_ERR, 0};
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
        sodium_memzero(raw, sizeof(raw));
        if (sottod_store_invite_create(st, (const uint8_t *)token, strlen(token), expires,
                                       admin_done, &r) != SOTTOD_STORE_OK ||
            sottod_store_drain(st) != SOTTOD_STORE_OK || r.status != SOTTOD_STORE_OK) {
            fprintf(stderr, "sottod admin invite: storing the invite failed\n");
            sodium_memzero(token, sizeof(token));
            return 1;
        }
        printf("%s\n", token);
        sodium_memzero(token, sizeof(token));
    }
    return 0;
}

/* Sends SIGUSR1 to the sottod running on this data dir (DATA_DIR/sottod.pid,
 * checked against /proc/PID/comm) so that it closes the connections of
 * devices that no longer exist. Returns 0 if a server was told, -1 if none
 * runs (it also checks once a minute by itself). */
static int notify_server(const sottod_config *cfg)
{
    char path[SOTTOD_PATH_MAX + 16], buf[64], comm[64];
    snprintf(path, sizeof(path), "%s/sottod.pid", cfg->data_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    bool got = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    if (!got)
        return -1;
    char *end = NULL;
    long pid = strtol(buf, &end, 10);
    if (pid <= 1 || end == buf || (*end != '\n' && *end != '\0'))
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    got = fgets(comm, sizeof(comm), f) != NULL;
    fclose(f);
    /* (sottod-test is the same server with test hooks, tests/server.) */
    if (!got || (strcmp(comm, "sottod\n") != 0 && strcmp(comm, "sottod-test\n") != 0))
        return -1;
    return kill((pid_t)pid, SIGUSR1) == 0 ? 0 : -1;
}

static void admin_usage(FILE *out)
{
    fprintf(out, "usage: sottod admin [--config FILE | --data-dir DIR] COMMAND [ARGS]\n"
                 "\n"
                 "Works on DATA_DIR/sottod.db directly (next to a running sottod, or while it\n"
                 "is stopped); never creates a database.\n"
                 "\n"
                 "Commands:\n"
                 "  invite [--count N]       create N invite tokens (printed one per line)\n"
                 "  disclose USERNAME        print as JSON what is disclosed about an account\n"
                 "                           (what an operator could be compelled to hand over)\n"
                 "  expire [--at T]          delete envelopes expired now (or at unix time T)\n"
                 "  delete-account USERNAME  delete an account, its devices, keys and queues\n"
                 "                           (its connected devices are disconnected)\n"
                 "  sealed-root              print the sealed-sender trust root public key\n"
                 "                           (66 hex digits: 0x05 || X25519; clients pin it)\n"
                 "  new-sealed-root          only after sealed-root.key was lost (sottod then\n"
                 "                           refuses to start): creates a new root and prints\n"
                 "                           it; clients that pinned the old root refuse sealed\n"
                 "                           messages (docs/operating.md)\n"
                 "\n"
                 "Exit codes: 0 done, 1 store error or no such account, 2 usage.\n"
                 "The server's own options: sottod --help.\n");
}

static int admin_main(int argc, char **argv)
{
    sottod_config cfg;
    sottod_store *st = NULL;
    int argi = 2, rc = 2;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            admin_usage(stdout);
            return 0;
        }
    }
    sottod_config_defaults(&cfg);
    if (parse_common(argc, argv, &argi, &cfg, false, NULL) != 0)
        return 2;
    if (argi >= argc) {
        fprintf(stderr, "sottod admin: missing command (invite, disclose, expire, delete-account, "
                        "sealed-root, new-sealed-root; see sottod --help)\n");
        return 2;
    }
    const char *cmd = argv[argi++];
    if (strcmp(cmd, "sealed-root") == 0) {
        /* Reads DATA_DIR/sealed-root.key only; never opens the store. */
        if (argi != argc) {
            fprintf(stderr, "usage: sottod admin sealed-root\n");
            return 2;
        }
        if (sodium_init() < 0)
            return 1;
        return sottod_sealed_print_root(cfg.data_dir);
    }
    if (strcmp(cmd, "new-sealed-root") == 0) {
        /* Writes DATA_DIR/sealed-root.key only (never replaces it); the
         * store keeps its marker, so the next start loads the new root. */
        if (argi != argc) {
            fprintf(stderr, "usage: sottod admin new-sealed-root\n");
            return 2;
        }
        if (sodium_init() < 0)
            return 1;
        return sottod_sealed_new_root(cfg.data_dir);
    }
    if (strcmp(cmd, "invite") != 0 && strcmp(cmd, "disclose") != 0 && strcmp(cmd, "expire") != 0 &&
        strcmp(cmd, "delete-account") != 0) {
        fprintf(stderr, "sottod admin: unknown command %s\n", cmd);
        return 2;
    }
    if ((strcmp(cmd, "disclose") == 0 || strcmp(cmd, "delete-account") == 0) && argi + 1 != argc) {
        fprintf(stderr, "usage: sottod admin %s USERNAME\n", cmd);
        return 2;
    }
    if (strcmp(cmd, "expire") == 0 && argi < argc) {
        char *end = NULL;
        long long at = (argi + 2 == argc && strcmp(argv[argi], "--at") == 0)
                           ? strtoll(argv[argi + 1], &end, 10)
                           : 0;
        if (at <= 0 || end == NULL || *end != '\0') {
            fprintf(stderr, "usage: sottod admin expire [--at UNIX_SECONDS]\n");
            return 2;
        }
        g_admin_now = (int64_t)at;
    }
    if (sodium_init() < 0)
        return 1;
    sottod_log_set_level(SOTTOD_LOG_WARN);
    if (open_admin_store(&cfg, &st) != 0)
        return 1;
    if (strcmp(cmd, "invite") == 0) {
        rc = admin_invite(&cfg, st, argc, argv, argi);
    } else if (strcmp(cmd, "disclose") == 0) {
        char *json = NULL;
        int s = sottod_store_disclose(st, argv[argi], &json);
        if (s == SOTTOD_STORE_NOT_FOUND) {
            fprintf(stderr, "sottod admin disclose: no such account\n");
            rc = 1;
        } else if (s != SOTTOD_STORE_OK || json == NULL) {
            fprintf(stderr, "sottod admin disclose: %s\n", sottod_store_strerror(s));
            rc = 1;
        } else {
            printf("%s\n", json);
            rc = 0;
        }
        free(json);
    } else if (strcmp(cmd, "delete-account") == 0) {
        sottod_account acct;
        admin_result r = {SOTTOD_STORE_ERR, 0};
        int s = sottod_store_account_lookup(st, argv[argi], &acct);
        if (s == SOTTOD_STORE_NOT_FOUND) {
            fprintf(stderr, "sottod admin delete-account: no such account\n");
            rc = 1;
        } else if (s != SOTTOD_STORE_OK ||
                   sottod_store_account_delete(st, acct.account_id, admin_done, &r) !=
                       SOTTOD_STORE_OK ||
                   sottod_store_drain(st) != SOTTOD_STORE_OK || r.status != SOTTOD_STORE_OK) {
            fprintf(stderr, "sottod admin delete-account: failed\n");
            rc = 1;
        } else {
            printf("deleted\n");
            if (notify_server(&cfg) == 0)
                printf("running server told to close the account's connections\n");
            rc = 0;
        }
    } else {
        admin_result r = {SOTTOD_STORE_ERR, 0};
        if (sottod_store_envelopes_expire(st, admin_done, &r) != SOTTOD_STORE_OK ||
            sottod_store_drain(st) != SOTTOD_STORE_OK || r.status != SOTTOD_STORE_OK) {
            fprintf(stderr, "sottod admin expire: failed\n");
            rc = 1;
        } else {
            printf("expired %u envelopes\n", r.deleted);
            rc = 0;
        }
    }
    sottod_store_close(st);
    return rc;
}

int main(int argc, char **argv)
{
    sottod_config cfg;
    char err[512];
    int argi = 1;
    bool init = false;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("sottod %s\n", SOTTOD_VERSION);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "admin") == 0)
        return admin_main(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kt-info") == 0) {
            /* The other options as usual (--config, --data-dir, --set). */
            for (int k = i; k + 1 < argc; k++)
                argv[k] = argv[k + 1];
            argc--;
            sottod_config_defaults(&cfg);
            if (parse_common(argc, argv, &argi, &cfg, false, NULL) != 0)
                return 2;
            if (argi < argc) {
                fprintf(stderr, "sottod: unexpected argument %s (see --help)\n", argv[argi]);
                return 2;
            }
            sottod_log_set_level(SOTTOD_LOG_WARN);
            return sottod_kt_info(cfg.data_dir, cfg.kt_auditors);
        }
    }

    sottod_config_defaults(&cfg);
    if (parse_common(argc, argv, &argi, &cfg, true, &init) != 0)
        return 2;
    if (argi < argc) {
        fprintf(stderr, "sottod: unexpected argument %s (see --help)\n", argv[argi]);
        return 2;
    }
    if (sottod_config_check(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "sottod: %s (e.g. sottod --data-dir DIR; see sottod --help)\n", err);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return sottod_serve(&cfg, init);
}
