/*
 * auditor/main.c -- the sotto-auditor command (auditor/README.md).
 *
 *   sotto-auditor init   --dir D --server URL (--pin HEX | --ca FILE) [--server-key HEX]
 *   sotto-auditor run    --dir D [--interval SECONDS] [--once]
 *   sotto-auditor status --dir D
 *   sotto-auditor --help | help COMMAND | COMMAND --help
 *
 * Follows a sottod key-transparency log (KtAudit), verifies every update
 * with the core in audit.c and countersigns (KtCosign) each tree head that
 * matches its own copy of the log. The connection is the client's
 * (client/core/net.c); frames are built here with the Sotto__Api__ types.
 *
 * Exit codes: 0 ok, 1 usage, 2 network or I/O, 3 stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "net.h"
#include "sotto/keys.h"
#include "sotto/kt.h"

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_IO = 2, EXIT_STOPPED = 3 };

#define KEY_FILE "auditor.key"
#define DB_FILE "auditor.db"
#define LOCK_FILE "auditor.lock"
#define PAGE_MAX 1000
#define CONNECT_TIMEOUT_MS 10000
#define REQUEST_TIMEOUT_MS 30000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define LOG_EVERY_MS 60000

static volatile sig_atomic_t g_quit;

/* ------------------------------------------------------------ output */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("sotto-auditor: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see sotto-auditor --help)\n", stderr);
    return EXIT_USAGE;
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("sotto-auditor: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static int stopped(const char *why)
{
    fprintf(stderr, "sotto-auditor: STOPPED: %s\n", why);
    return EXIT_STOPPED;
}

static uint64_t wall_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void fmt_time(char *out, size_t cap, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "%" PRIu64 " ms", ms);
}

/* One line of the run log (stdout, line buffered), with the time. */
static void logline(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logline(FILE *f, const char *fmt, ...)
{
    char t[40];
    va_list ap;

    fmt_time(t, sizeof t, wall_ms());
    fprintf(f, "%s sotto-auditor: ", t);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}

static void hex_of(char *out, size_t cap, const uint8_t *p, size_t n)
{
    sodium_bin2hex(out, cap, p, n);
}

static int parse_hex32(const char *hex, uint8_t out[32])
{
    size_t n = 0;

    if (hex == NULL || strlen(hex) != 64 || sodium_hex2bin(out, 32, hex, 64, NULL, &n, NULL) != 0 ||
        n != 32)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ help */

typedef struct command {
    const char *name;
    const char *synopsis;
    const char *help;
} command;

static const command COMMANDS[] = {
    {"init", "init --dir DIR --server URL (--pin HEX | --ca FILE) [--server-key HEX]",
     "Creates the auditor's directory DIR (mode 0700) with a new Ed25519 key\n"
     "(auditor.key, 0600) and its state (auditor.db, 0600), and pins the\n"
     "server's key-transparency signing key: the one given with --server-key,\n"
     "else the one the server announces now (KtConfig; this needs the server).\n"
     "Prints the auditor's public key: the server operator adds it to sottod's\n"
     "`kt_auditors`, and users who trust this auditor run\n"
     "`sotto kt auditor add KEY`.\n"
     "\n"
     "  --dir DIR         the auditor's directory (created; must hold no auditor)\n"
     "  --server URL      https://HOST[:PORT] of sottod\n"
     "  --pin HEX         SHA-256 of the server's TLS certificate (64 hex), or\n"
     "  --ca FILE         trust the server's certificate through this CA file\n"
     "  --server-key HEX  the server's KT key (sottod --kt-info: kt_server_key),\n"
     "                    checked out of band: safer than trusting the first answer\n"
     "\n"
     "Example:\n"
     "  sotto-auditor init --dir /var/lib/sotto-auditor --server https://chat.example:8443 \\\n"
     "      --pin 3f1c...e9 --server-key 8a88...5c\n"
     "\n"
     "Exit codes: 0 created, 1 usage (or DIR already holds an auditor), 2 network or I/O.\n"},
    {"run", "run --dir DIR [--interval SECONDS] [--once]",
     "Follows the server's log: fetches the updates it has not verified yet\n"
     "(KtAudit, pages of 1000), verifies each (counter of its index +1, dates\n"
     "not going back), stores them (one transaction per page), and\n"
     "countersigns (KtCosign) the server's newest tree head and the pending\n"
     "head when its own log root at that size equals the head's root. At\n"
     "start it replays and re-verifies every stored update from auditor.db.\n"
     "Network failures are retried with a backoff (1 s doubling to 60 s); the\n"
     "auditor never stops signing because of one. Any contradiction (an update\n"
     "that does not follow, a head whose root differs, a log that shrank, a head\n"
     "not signed by the pinned server key, time going back) stops it for good:\n"
     "it prints `sotto-auditor: STOPPED: WHY`, exits 3 and refuses to run again.\n"
     "Logs at most one line a minute about countersigned heads (stdout).\n"
     "\n"
     "  --dir DIR           the auditor's directory (from init)\n"
     "  --interval SECONDS  time between polls (default 10; fractions allowed)\n"
     "  --once              one pass: catch up, countersign, exit (network\n"
     "                      failure: exit 2 at once, for scripts)\n"
     "\n"
     "Examples:\n"
     "  sotto-auditor run --dir /var/lib/sotto-auditor\n"
     "  sotto-auditor run --dir ./aud --once --interval 0.2\n"
     "\n"
     "Exit codes: 0 done (--once, or SIGINT/SIGTERM), 1 usage, 2 network (--once)\n"
     "or I/O, 3 STOPPED.\n"},
    {"status", "status --dir DIR",
     "Shows the server, the pinned server key, the auditor's key, the number of\n"
     "verified updates, the last countersigned head, and the STOPPED reason if\n"
     "any. Reads auditor.db only (works while `run` runs).\n"
     "\n"
     "Example:\n"
     "  sotto-auditor status --dir /var/lib/sotto-auditor\n"
     "\n"
     "Exit codes: 0 not stopped (whether or not `run` runs now), 1 usage,\n"
     "2 I/O, 3 STOPPED.\n"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    return NULL;
}

static void overview(FILE *f)
{
    fputs("usage: sotto-auditor COMMAND [OPTIONS]\n"
          "\n"
          "An independent auditor of a sottod key-transparency log: it verifies every\n"
          "update and countersigns the server's tree heads that match its own copy.\n"
          "\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  sotto-auditor %s\n", COMMANDS[i].synopsis);
    fputs("  sotto-auditor help COMMAND   (or COMMAND --help)\n"
          "\n"
          "Example (auditor and server operator):\n"
          "  sotto-auditor init --dir ./aud --server https://chat.example:8443 --pin HEX\n"
          "  # operator: kt_auditors = <the printed auditor key> in sottod's config\n"
          "  sotto-auditor run --dir ./aud\n"
          "\n"
          "Exit codes: 0 ok, 1 usage, 2 network or I/O, 3 STOPPED (the log contradicts\n"
          "itself; see `sotto-auditor status`).\n",
          f);
}

static int command_help(const command *c, FILE *f)
{
    fprintf(f, "usage: sotto-auditor %s\n\n%s", c->synopsis, c->help);
    return EXIT_OK;
}

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* ------------------------------------------------------------ files */

static int path_in(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Loads the Ed25519 key pair from the 32-byte seed in auditor.key; sk is
 * sodium_malloc'ed (caller frees with sodium_free). */
static int load_key(const char *dir, uint8_t pk[32], uint8_t **sk_out)
{
    char path[AUD_PATH_MAX];
    uint8_t seed[33];
    uint8_t *sk = NULL;
    struct stat st;
    ssize_t n;
    int fd, rc = EXIT_IO;

    *sk_out = NULL;
    if (path_in(path, sizeof path, dir, KEY_FILE) != 0)
        return fail(EXIT_USAGE, "--dir too long");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(EXIT_IO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
        fprintf(stderr, "sotto-auditor: warning: %s is readable by others (chmod 600 it)\n", path);
    n = read(fd, seed, sizeof seed);
    close(fd);
    if (n != 32) {
        fail(EXIT_IO, "%s: not a 32-byte key", path);
        goto out;
    }
    sk = sodium_malloc(SOTTO_KT_SIGN_SECRET_KEY_BYTES);
    if (sk == NULL || crypto_sign_seed_keypair(pk, sk, seed) != 0) {
        fail(EXIT_IO, "cannot derive the auditor key");
        goto out;
    }
    *sk_out = sk;
    sk = NULL;
    rc = EXIT_OK;
out:
    sodium_memzero(seed, sizeof seed);
    if (sk != NULL)
        sodium_free(sk);
    return rc;
}

static int write_key(const char *path, uint8_t pk[32])
{
    uint8_t seed[32], sk[64];
    int fd, ok;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(EXIT_IO, "%s: %s", path, strerror(errno));
    randombytes_buf(seed, sizeof seed);
    ok = crypto_sign_seed_keypair(pk, sk, seed) == 0 && write(fd, seed, sizeof seed) == 32 &&
         fsync(fd) == 0;
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    if (close(fd) != 0)
        ok = 0;
    if (!ok) {
        unlink(path);
        return fail(EXIT_IO, "%s: cannot write the key", path);
    }
    return EXIT_OK;
}

/* An auditor's database must exist before `run` or `status` touches DIR:
 * a clear message for a DIR that init never made (or a typo). */
static int need_auditor(const char *dir, const char *db_path)
{
    struct stat st;

    if (stat(db_path, &st) != 0 && errno == ENOENT)
        return fail(EXIT_IO,
                    "%s holds no auditor (no %s): create one with sotto-auditor init --dir %s", dir,
                    DB_FILE, dir);
    return EXIT_OK;
}

/* ------------------------------------------------------------ network */

typedef struct net {
    sc_server srv;
    sc_conn *conn;
    int status; /* status of the last answer, -1 for none (network) */
    char err[256];
} net;

enum { CALL_OK = 0, CALL_NET = -1, CALL_REFUSED = -2, CALL_RETRY = -3 };

/* Sends f and waits for its answer. CALL_OK with *resp (status OK, free
 * it); CALL_RETRY (rate limited: *retry_ms); CALL_REFUSED (another status,
 * n->err says which); CALL_NET (connection lost: closed). */
static int call(net *n, Sotto__Api__ClientFrame *f, Sotto__Api__ServerFrame **resp,
                uint64_t *retry_ms)
{
    Sotto__Api__ServerFrame *r = NULL;

    *resp = NULL;
    n->status = -1;
    if (n->conn == NULL) {
        if (sc_conn_open(&n->conn, &n->srv, CONNECT_TIMEOUT_MS, n->err, sizeof n->err) != 0) {
            n->conn = NULL;
            return CALL_NET;
        }
    }
    if (sc_conn_request(n->conn, f, &r, REQUEST_TIMEOUT_MS, n->err, sizeof n->err) != 0) {
        sc_conn_free(n->conn);
        n->conn = NULL;
        return CALL_NET;
    }
    n->status = (int)r->status;
    if (r->status == SOTTO__API__STATUS__STATUS_RATE_LIMITED ||
        r->status == SOTTO__API__STATUS__STATUS_UNAVAILABLE ||
        r->status == SOTTO__API__STATUS__STATUS_INTERNAL) {
        snprintf(n->err, sizeof n->err, "server answered status %d%s%s", (int)r->status,
                 r->error && r->error[0] ? ": " : "", r->error ? r->error : "");
        if (retry_ms)
            *retry_ms = r->retry_after_ms > 50 ? r->retry_after_ms : 1000;
        sotto__api__server_frame__free_unpacked(r, NULL);
        return CALL_RETRY;
    }
    if (r->status != SOTTO__API__STATUS__STATUS_OK) {
        snprintf(n->err, sizeof n->err, "server refused (status %d%s%s)", (int)r->status,
                 r->error && r->error[0] ? ": " : "", r->error ? r->error : "");
        sotto__api__server_frame__free_unpacked(r, NULL);
        return CALL_REFUSED;
    }
    *resp = r;
    return CALL_OK;
}

/* "WHAT: " before the current error text. */
static void prefix_err(net *n, const char *what)
{
    char tmp[sizeof n->err];

    memcpy(tmp, n->err, sizeof tmp);
    snprintf(n->err, sizeof n->err, "%s: %.200s", what, tmp);
}

static void net_close(net *n)
{
    sc_conn_free(n->conn);
    n->conn = NULL;
}

/* KtConfig: the server's KT key (and its auditor list, its log size). */
static int kt_config(net *n, Sotto__Api__ServerFrame **resp)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtConfigRequest q = SOTTO__API__KT_CONFIG_REQUEST__INIT;
    int r;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_CONFIG;
    f.kt_config = &q;
    r = call(n, &f, resp, NULL);
    if (r == CALL_OK && ((*resp)->result_case != SOTTO__API__SERVER_FRAME__RESULT_KT_CONFIG ||
                         (*resp)->kt_config == NULL ||
                         (*resp)->kt_config->server_key.len != SOTTO_KT_SIGN_PUBLIC_KEY_BYTES)) {
        snprintf(n->err, sizeof n->err, "the server sent a malformed KtConfig answer");
        sotto__api__server_frame__free_unpacked(*resp, NULL);
        *resp = NULL;
        return CALL_REFUSED;
    }
    return r;
}

/* ------------------------------------------------------------ init */

static int cmd_init(int argc, char **argv)
{
    const char *dir = NULL, *server = NULL, *pin = NULL, *ca = NULL, *skey = NULL;
    aud_config cfg;
    char path[AUD_PATH_MAX], kpath[AUD_PATH_MAX], err[512], hex[65], ca_real[PATH_MAX];
    char host[256];
    uint8_t pk[32];
    struct stat st;
    int port, rc, from_server = 0;
    uint64_t log_size = 0;
    size_t n_auditors = 0;

    for (int i = 0; i < argc; i++) {
        const char **slot = NULL;
        if (is_help(argv[i]))
            return command_help(find_command("init"), stdout);
        if (strcmp(argv[i], "--dir") == 0)
            slot = &dir;
        else if (strcmp(argv[i], "--server") == 0)
            slot = &server;
        else if (strcmp(argv[i], "--pin") == 0)
            slot = &pin;
        else if (strcmp(argv[i], "--ca") == 0)
            slot = &ca;
        else if (strcmp(argv[i], "--server-key") == 0)
            slot = &skey;
        else
            return usage_error("init: unknown option %s", argv[i]);
        if (i + 1 >= argc)
            return usage_error("init: %s needs a value", argv[i]);
        *slot = argv[++i];
    }
    if (dir == NULL || server == NULL)
        return usage_error("init: give --dir DIR and --server URL");
    if ((pin == NULL) == (ca == NULL))
        return usage_error("init: give either --pin HEX or --ca FILE");
    memset(&cfg, 0, sizeof cfg);
    if (sc_url_parse(server, host, sizeof host, &port) != 0 || strlen(server) >= sizeof cfg.server)
        return usage_error("init: bad --server %s (want https://HOST[:PORT])", server);
    snprintf(cfg.server, sizeof cfg.server, "%s", server);
    if (pin != NULL) {
        uint8_t tmp[32];
        if (parse_hex32(pin, tmp) != 0)
            return usage_error("init: --pin needs 64 hex characters");
        snprintf(cfg.pin_hex, sizeof cfg.pin_hex, "%s", pin);
    } else {
        if (realpath(ca, ca_real) == NULL)
            return fail(EXIT_IO, "--ca %s: %s", ca, strerror(errno));
        if (strlen(ca_real) >= sizeof cfg.ca_file)
            return usage_error("init: --ca path too long");
        snprintf(cfg.ca_file, sizeof cfg.ca_file, "%s", ca_real);
    }
    if (skey != NULL && parse_hex32(skey, cfg.server_key) != 0)
        return usage_error("init: --server-key needs 64 hex characters");
    if (path_in(path, sizeof path, dir, DB_FILE) != 0 ||
        path_in(kpath, sizeof kpath, dir, KEY_FILE) != 0)
        return usage_error("init: --dir too long");
    if (access(path, F_OK) == 0 || access(kpath, F_OK) == 0)
        return fail(EXIT_USAGE, "%s already holds an auditor (sotto-auditor status --dir %s)", dir,
                    dir);

    if (skey == NULL) {
        /* pin the key the server announces now (trust on first use) */
        net n = {.srv = {cfg.server, pin, ca != NULL ? cfg.ca_file : NULL}};
        Sotto__Api__ServerFrame *resp = NULL;
        rc = kt_config(&n, &resp);
        if (rc != CALL_OK) {
            net_close(&n);
            return fail(EXIT_IO, "cannot get the server's KT key from %s: %s", server, n.err);
        }
        memcpy(cfg.server_key, resp->kt_config->server_key.data, 32);
        log_size = resp->kt_config->log_size;
        n_auditors = resp->kt_config->n_auditors;
        sotto__api__server_frame__free_unpacked(resp, NULL);
        net_close(&n);
        from_server = 1;
    }

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail(EXIT_IO, "%s: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(EXIT_IO, "%s: not a directory", dir);
    if (chmod(dir, 0700) != 0)
        return fail(EXIT_IO, "%s: %s", dir, strerror(errno));
    if ((rc = write_key(kpath, pk)) != EXIT_OK)
        return rc;
    if (aud_db_create(path, &cfg, err, sizeof err) != AUD_OK) {
        unlink(kpath);
        return fail(EXIT_IO, "%s", err);
    }
    hex_of(hex, sizeof hex, cfg.server_key, 32);
    printf("server key: %s (%s)\n", hex,
           from_server ? "pinned from the server's answer now" : "given with --server-key");
    if (from_server)
        printf("  check it out of band: the operator's `sottod --kt-info` prints it as "
               "kt_server_key\n"
               "  (server log size %" PRIu64 ", %zu auditor key(s) configured)\n",
               log_size, n_auditors);
    hex_of(hex, sizeof hex, pk, 32);
    printf("auditor key: %s\n", hex);
    printf("Next: the server operator adds this auditor key to sottod's configuration\n"
           "  kt_auditors = %s   (comma-separated with the other auditors' keys)\n"
           "and users who trust this auditor run\n"
           "  sotto kt auditor add %s\n"
           "Then start it: sotto-auditor run --dir %s\n",
           hex, hex, dir);
    return EXIT_OK;
}

/* ------------------------------------------------------------ status */

static int cmd_status(int argc, char **argv)
{
    const char *dir = NULL;
    char path[AUD_PATH_MAX], err[512], hex[65], t1[40], t2[40];
    uint8_t pk[32], *sk = NULL;
    aud_info info;

    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i]))
            return command_help(find_command("status"), stdout);
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else
            return usage_error("status: unexpected %s", argv[i]);
    }
    if (dir == NULL)
        return usage_error("status: give --dir DIR");
    if (path_in(path, sizeof path, dir, DB_FILE) != 0)
        return usage_error("status: --dir too long");
    if (need_auditor(dir, path) != EXIT_OK)
        return EXIT_IO;
    if (aud_db_info(path, &info, err, sizeof err) != AUD_OK)
        return fail(EXIT_IO, "%s", err);
    printf("server:            %s\n", info.config.server);
    if (info.config.pin_hex[0])
        printf("TLS pin:           %s\n", info.config.pin_hex);
    else
        printf("TLS CA file:       %s\n", info.config.ca_file);
    hex_of(hex, sizeof hex, info.config.server_key, 32);
    printf("server KT key:     %s\n", hex);
    if (load_key(dir, pk, &sk) == EXIT_OK) {
        hex_of(hex, sizeof hex, pk, 32);
        printf("auditor key:       %s\n", hex);
        sodium_free(sk);
    }
    printf("verified updates:  %" PRIu64 "\n", info.verified_size);
    if (info.have_cosigned) {
        fmt_time(t1, sizeof t1, info.cosigned.timestamp_ms);
        fmt_time(t2, sizeof t2, info.cosigned_at_ms);
        printf("countersigned:     head size %" PRIu64 " stamped %s, signed %s\n",
               info.cosigned.size, t1, t2);
    } else {
        printf("countersigned:     no head yet\n");
    }
    if (info.stopped[0]) {
        fmt_time(t1, sizeof t1, info.stopped_at_ms);
        printf("state:             STOPPED since %s: %s\n", t1, info.stopped);
        return EXIT_STOPPED;
    }
    printf("state:             ok\n");
    return EXIT_OK;
}

/* ------------------------------------------------------------ run */

typedef struct runner {
    aud_state *st;
    net n;
    uint8_t pk[32];
    uint8_t *sk;
    /* the last head the server accepted our countersignature for */
    uint8_t acked[SOTTO_KT_HEAD_BYTES];
    bool have_acked;
    bool warned_key;
    /* log rate limits */
    uint64_t last_cosign_log_ms;
    uint64_t cosigns_unlogged;
    uint64_t last_note_ms;
    char last_note[400];
} runner;

enum { PASS_OK = 0, PASS_NET = 1, PASS_IO = 2, PASS_STOPPED = 3, PASS_QUIT = 4 };

static int sleep_ms(uint64_t ms)
{
    uint64_t end = mono_ms() + ms;

    while (!g_quit) {
        uint64_t now = mono_ms();
        struct timespec ts;
        if (now >= end)
            return 0;
        ts.tv_sec = (time_t)((end - now) / 1000u);
        ts.tv_nsec = (long)((end - now) % 1000u) * 1000000L;
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Calls f, sleeping through rate limits (not network failures). */
static int call_patiently(runner *r, Sotto__Api__ClientFrame *f, Sotto__Api__ServerFrame **resp)
{
    for (int tries = 0;; tries++) {
        uint64_t wait = 0;
        int c = call(&r->n, f, resp, &wait);
        if (c != CALL_RETRY)
            return c;
        if (tries >= 20)
            return CALL_NET;
        if (sleep_ms(wait > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait) != 0)
            return CALL_NET;
    }
}

/* At each new connection: the server must still announce the pinned key;
 * warn (once) when it does not list this auditor. */
static int check_config(runner *r)
{
    Sotto__Api__ServerFrame *resp = NULL;
    const aud_config *cfg = aud_get_config(r->st);
    char err[AUD_REASON_MAX], a[65], b[65];
    bool listed = false;
    int c = kt_config(&r->n, &resp);

    if (c == CALL_NET)
        return PASS_NET;
    if (c != CALL_OK) {
        prefix_err(&r->n, "KtConfig");
        return PASS_NET;
    }
    if (sodium_memcmp(resp->kt_config->server_key.data, cfg->server_key, 32) != 0) {
        char why[300];
        hex_of(a, sizeof a, cfg->server_key, 32);
        hex_of(b, sizeof b, resp->kt_config->server_key.data, 32);
        snprintf(why, sizeof why,
                 "the server's KT key changed: pinned %.16s..., announced %.16s...", a, b);
        sotto__api__server_frame__free_unpacked(resp, NULL);
        aud_stop(r->st, why, err, sizeof err);
        return PASS_STOPPED;
    }
    for (size_t i = 0; i < resp->kt_config->n_auditors; i++)
        if (resp->kt_config->auditors[i].len == 32 &&
            sodium_memcmp(resp->kt_config->auditors[i].data, r->pk, 32) == 0)
            listed = true;
    if (!listed && !r->warned_key) {
        hex_of(a, sizeof a, r->pk, 32);
        logline(stderr,
                "warning: the server does not list this auditor (add kt_auditors = %s to sottod's "
                "configuration); its countersignatures are refused until then",
                a);
        r->warned_key = true;
    }
    sotto__api__server_frame__free_unpacked(resp, NULL);
    return PASS_OK;
}

/* Reports why a head was not countersigned (now), at most once a minute
 * for the same text. */
static void note(runner *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(runner *r, const char *fmt, ...)
{
    char text[sizeof r->last_note];
    uint64_t now = mono_ms();
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (strcmp(text, r->last_note) != 0 || now - r->last_note_ms >= LOG_EVERY_MS) {
        logline(stderr, "%s", text);
        memcpy(r->last_note, text, sizeof text);
        r->last_note_ms = now;
    }
}

/* Checks one head (wire bytes); countersigns it and sends the signature. */
static int handle_head(runner *r, const ProtobufCBinaryData *head, int newest)
{
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__KtCosignRequest q = SOTTO__API__KT_COSIGN_REQUEST__INIT;
    Sotto__Api__ServerFrame *resp = NULL;
    sotto_kt_tree_head h;
    uint8_t sig[SOTTO_KT_SIGNATURE_BYTES];
    char err[AUD_REASON_MAX], t[40];
    int a, c;

    if (head->len == 0)
        return PASS_OK;
    a = aud_cosign(r->st, head->data, head->len, newest, wall_ms(), r->sk, sig, &h, err,
                   sizeof err);
    if (a == AUD_E_STOPPED)
        return PASS_STOPPED;
    if (a == AUD_LATER) {
        note(r, "not countersigning yet: %s", err);
        return PASS_OK;
    }
    if (a != AUD_OK) {
        logline(stderr, "error: %s", err);
        return PASS_IO;
    }
    if (r->have_acked && sodium_memcmp(r->acked, head->data, SOTTO_KT_HEAD_BYTES) == 0)
        return PASS_OK; /* already countersigned and accepted */
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_COSIGN;
    f.kt_cosign = &q;
    q.head.data = head->data;
    q.head.len = head->len;
    q.auditor_key.data = r->pk;
    q.auditor_key.len = 32;
    q.signature.data = sig;
    q.signature.len = sizeof sig;
    c = call_patiently(r, &f, &resp);
    if (c == CALL_NET)
        return PASS_NET;
    if (c != CALL_OK) {
        /* e.g. FORBIDDEN: not in kt_auditors (yet); keep verifying */
        note(r, "the server did not take the countersignature of head %" PRIu64 ": %s", h.size,
             r->n.err);
        return PASS_OK;
    }
    memcpy(r->acked, head->data, SOTTO_KT_HEAD_BYTES);
    r->have_acked = true;
    r->cosigns_unlogged++;
    if (mono_ms() - r->last_cosign_log_ms >= LOG_EVERY_MS || r->last_cosign_log_ms == 0) {
        fmt_time(t, sizeof t, h.timestamp_ms);
        logline(stdout,
                "countersigned head %" PRIu64 " stamped %s%s (%" PRIu64 " since the last line)",
                h.size, t,
                resp->result_case == SOTTO__API__SERVER_FRAME__RESULT_KT_COSIGN &&
                        resp->kt_cosign && resp->kt_cosign->published
                    ? ", now published"
                    : "",
                r->cosigns_unlogged);
        r->last_cosign_log_ms = mono_ms();
        r->cosigns_unlogged = 0;
    }
    sotto__api__server_frame__free_unpacked(resp, NULL);
    return PASS_OK;
}

static uint64_t claimed_size(const ProtobufCBinaryData *head)
{
    uint64_t v = 0;

    if (head->len < 8)
        return 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | head->data[i];
    return v;
}

/* One pass: catch up with the log, then check and countersign the pending
 * and the newest head. */
static int pass(runner *r)
{
    Sotto__Api__ServerFrame *resp = NULL;
    Sotto__Api__KtAuditResponse *ar;
    char err[AUD_REASON_MAX];
    int rc = PASS_OK, c;

    for (;;) {
        Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__KtAuditRequest q = SOTTO__API__KT_AUDIT_REQUEST__INIT;
        const uint8_t **ptr = NULL;
        size_t *lens = NULL;
        uint64_t before = aud_verified_size(r->st);
        int a;

        if (g_quit) {
            rc = PASS_QUIT;
            goto out;
        }
        if (resp != NULL)
            sotto__api__server_frame__free_unpacked(resp, NULL);
        resp = NULL;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_AUDIT;
        f.kt_audit = &q;
        q.from = before;
        q.max = PAGE_MAX;
        c = call_patiently(r, &f, &resp);
        if (c == CALL_NET)
            return PASS_NET;
        if (c != CALL_OK && r->n.status == SOTTO__API__STATUS__STATUS_KT_PENDING) {
            /* no tree head at all yet: nothing to audit */
            note(r, "the server's log is empty (no tree head yet)");
            return PASS_OK;
        }
        if (c != CALL_OK) {
            prefix_err(&r->n, "KtAudit");
            return PASS_NET;
        }
        if (resp->result_case != SOTTO__API__SERVER_FRAME__RESULT_KT_AUDIT ||
            resp->kt_audit == NULL) {
            snprintf(r->n.err, sizeof r->n.err, "KtAudit: the server sent a malformed answer");
            rc = PASS_NET;
            goto out;
        }
        ar = resp->kt_audit;
        if (ar->n_updates > 0) {
            ptr = calloc(ar->n_updates, sizeof *ptr);
            lens = calloc(ar->n_updates, sizeof *lens);
            if (ptr == NULL || lens == NULL) {
                free(ptr);
                free(lens);
                rc = PASS_IO;
                goto out;
            }
            for (size_t i = 0; i < ar->n_updates; i++) {
                ptr[i] = ar->updates[i].data;
                lens[i] = ar->updates[i].len;
            }
            a = aud_feed(r->st, ptr, lens, ar->n_updates, err, sizeof err);
            free(ptr);
            free(lens);
            if (a == AUD_E_STOPPED) {
                rc = PASS_STOPPED;
                goto out;
            }
            if (a != AUD_OK) {
                logline(stderr, "error: %s", err);
                rc = PASS_IO;
                goto out;
            }
        }
        /* more to fetch: a full page, or a page that still leaves the
         * newest head ahead of what was verified */
        if (ar->n_updates == 0 ||
            (ar->n_updates < PAGE_MAX && aud_verified_size(r->st) >= claimed_size(&ar->head)))
            break;
    }
    /* the pending head first (older), then the newest */
    if ((rc = handle_head(r, &ar->pending, 0)) != PASS_OK)
        goto out;
    rc = handle_head(r, &ar->head, 1);
out:
    if (resp != NULL)
        sotto__api__server_frame__free_unpacked(resp, NULL);
    return rc;
}

static void on_signal(int sig)
{
    (void)sig;
    g_quit = 1;
}

static int parse_interval(const char *s, uint64_t *ms)
{
    char *e;
    double v;

    errno = 0;
    v = strtod(s, &e);
    if (errno != 0 || e == s || *e != '\0' || !isfinite(v) || v < 0.01 || v > 86400.0)
        return -1;
    *ms = (uint64_t)(v * 1000.0 + 0.5);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *dir = NULL;
    char path[AUD_PATH_MAX], lpath[AUD_PATH_MAX], err[512];
    uint64_t interval_ms = 10000, backoff = 0, t0, net_down_since = 0, last_net_log = 0;
    bool once = false;
    runner r;
    struct sigaction sa;
    int lock_fd = -1, rc = EXIT_IO, p;
    bool connected = false, was_up = false;

    memset(&r, 0, sizeof r);
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i]))
            return command_help(find_command("run"), stdout);
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            if (parse_interval(argv[++i], &interval_ms) != 0)
                return usage_error("run: --interval takes seconds from 0.01 to 86400");
        } else if (strcmp(argv[i], "--once") == 0)
            once = true;
        else
            return usage_error("run: unexpected %s", argv[i]);
    }
    if (dir == NULL)
        return usage_error("run: give --dir DIR");
    if (path_in(path, sizeof path, dir, DB_FILE) != 0 ||
        path_in(lpath, sizeof lpath, dir, LOCK_FILE) != 0)
        return usage_error("run: --dir too long");
    if (need_auditor(dir, path) != EXIT_OK)
        return EXIT_IO;

    lock_fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0)
        return fail(EXIT_IO, "%s: %s", lpath, strerror(errno));
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        close(lock_fd);
        return fail(EXIT_IO, "another sotto-auditor runs on %s", dir);
    }
    t0 = mono_ms();
    if (aud_open(&r.st, path, err, sizeof err) != AUD_OK) {
        fail(EXIT_IO, "%s", err);
        goto out;
    }
    if (aud_stopped(r.st) != NULL) {
        rc = stopped(aud_stopped(r.st));
        goto out;
    }
    if ((rc = load_key(dir, r.pk, &r.sk)) != EXIT_OK)
        goto out;
    {
        const aud_config *cfg = aud_get_config(r.st);
        uint64_t dt = mono_ms() - t0;
        r.n.srv.url = cfg->server;
        r.n.srv.pin_hex = cfg->pin_hex[0] ? cfg->pin_hex : NULL;
        r.n.srv.ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
        logline(stdout,
                "following %s; replayed %" PRIu64 " verified updates from %s in %.2f s (%.1f "
                "MiB)",
                cfg->server, aud_verified_size(r.st), DB_FILE, (double)dt / 1000.0,
                (double)aud_memory(r.st) / (1024.0 * 1024.0));
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    while (!g_quit) {
        p = PASS_OK;
        if (r.n.conn == NULL)
            connected = false;
        if (!connected) {
            p = check_config(&r);
            if (p == PASS_OK)
                connected = true;
        }
        if (p == PASS_OK)
            p = pass(&r);
        if (p == PASS_STOPPED) {
            rc = stopped(aud_stopped(r.st) ? aud_stopped(r.st) : "stopped");
            goto out;
        }
        if (p == PASS_IO) {
            rc = EXIT_IO;
            goto out;
        }
        if (p == PASS_QUIT)
            break;
        if (p == PASS_NET) {
            net_close(&r.n);
            connected = false;
            if (once) {
                rc = fail(EXIT_IO, "cannot audit now: %s", r.n.err[0] ? r.n.err : "no answer");
                goto out;
            }
            /* sottod closes a connection that has not logged in after its
             * auth_timeout_s (30 s by default), and an auditor never logs in:
             * a connection that worked until now is reopened at once, quietly
             * (the pass is repeated; fetching and countersigning again is
             * harmless). Only a failure of the new connection is reported. */
            if (was_up) {
                was_up = false;
                continue;
            }
            backoff = backoff == 0 ? BACKOFF_MIN_MS
                                   : (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2);
            if (net_down_since == 0 || mono_ms() - last_net_log >= LOG_EVERY_MS) {
                logline(stderr, "cannot audit now: %s (retrying, backoff up to %d s)", r.n.err,
                        BACKOFF_MAX_MS / 1000);
                last_net_log = mono_ms();
            }
            if (net_down_since == 0)
                net_down_since = mono_ms();
            sleep_ms(backoff);
            continue;
        }
        if (net_down_since != 0) {
            logline(stdout, "reconnected after %" PRIu64 " s", (mono_ms() - net_down_since) / 1000);
            net_down_since = 0;
        }
        backoff = 0;
        was_up = true;
        if (once)
            break;
        sleep_ms(interval_ms);
    }
    rc = EXIT_OK;
out:
    net_close(&r.n);
    if (r.sk != NULL)
        sodium_free(r.sk);
    aud_close(r.st);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    const command *c;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return usage_error("missing command");
    if (is_help(argv[1])) {
        overview(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc == 2) {
            overview(stdout);
            return EXIT_OK;
        }
        if ((c = find_command(argv[2])) == NULL)
            return usage_error("help: no command %s", argv[2]);
        return command_help(c, stdout);
    }
    if (find_command(argv[1]) == NULL)
        return usage_error("unknown command %s", argv[1]);
    if (sotto_init() != SOTTO_OK)
        return fail(EXIT_IO, "cannot initialise libsotto");
    if (strcmp(argv[1], "init") == 0)
        return cmd_init(argc - 2, argv + 2);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    return cmd_status(argc - 2, argv + 2);
}
