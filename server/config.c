/*
 * server/config.c -- the configuration table and its `key = value` parser.
 */
#include "config.h"
#include "ratelimit.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { T_STR, T_U64 };

typedef struct key_def {
    const char *key;
    int type;
    size_t off;
    size_t size;         /* T_STR: buffer size */
    const char *def;     /* default as text */
    uint64_t min, max;   /* T_U64 bounds */
    const char *choices; /* T_STR: "a|b" or NULL for free text */
    const char *doc;
} key_def;

#define S(k, d, ch, doc)                                                                           \
    {                                                                                              \
#k, T_STR, offsetof(sottod_config, k), sizeof(((sottod_config *)0)->k), d, 0, 0, ch, doc   \
    }
#define U(k, d, lo, hi, doc)                                                                       \
    {                                                                                              \
#k, T_U64, offsetof(sottod_config, k), 0, d, lo, hi, NULL, doc                             \
    }

static const key_def g_keys[] = {
    S(listen, "127.0.0.1:8443", NULL,
      "address and port to listen on (HOST:PORT, port 0 picks a free port)"),
    S(data_dir, "", NULL,
      "directory for the database, attachments and the self-signed certificate (required)"),
    S(tls_cert, "", NULL, "PEM certificate chain; empty = self-signed certificate in data_dir/tls"),
    S(tls_key, "", NULL, "PEM private key for tls_cert"),
    S(registration, "open", "open|invite",
      "who may register: anyone, or holders of an invite token"),
    S(durability, "full", "full|process",
      "full: fsync every commit; process: survive a crash of sottod only"),
    S(log_level, "info", "debug|info|warn|error", "lowest level logged"),
    /* TRANSITION SWITCH (issue 8, API v2): "yes" since the client always
     * sends signed device lists; "no" lets API v1 clients register and
     * add/remove devices without them (docs/api.md). */
    S(require_device_lists, "yes", "yes|no",
      "yes: register/add/remove need an account key and signed device list (API v2); "
      "no: accounts without an account key may still use API v1"),
    U(max_devices, "6", 1, 32, "devices per account"),
    U(frame_max, "1048576", 4096, 16777216, "largest WebSocket message after login (bytes)"),
    U(preauth_frame_max, "4096", 512, 65536, "largest WebSocket message before login (bytes)"),
    U(ciphertext_max, "131072", 256, 261120, "largest ciphertext per device in a send (bytes)"),
    U(queue_max, "10000", 1, 1000000, "envelopes queued per device before sends are refused"),
    U(envelope_ttl_days, "30", 1, 3650, "days an undelivered envelope is kept"),
    U(attachment_max, "104857600", 1, 4294967296ULL, "largest attachment (bytes)"),
    U(attachment_ttl_days, "30", 1, 3650, "days an attachment blob is kept after upload"),
    U(invite_ttl_days, "30", 1, 3650,
      "days an invite token from `sottod admin invite` stays valid"),
    U(prekey_low, "10", 0, 1000, "tell a device to upload more one-time prekeys below this count"),
    U(max_connections, "10000", 1, 1000000, "simultaneous connections"),
    U(auth_timeout_s, "30", 1, 3600, "seconds a connection may stay unauthenticated"),
    U(idle_timeout_s, "600", 10, 86400,
      "seconds without traffic before a WebSocket is pinged/closed"),
    U(rate_send_per_min, "600", 1, 1000000, "sends per device per minute (token bucket refill)"),
    U(rate_send_burst, "200", 1, 1000000, "send bucket size"),
    U(rate_bundle_per_min, "120", 1, 1000000, "bundle fetches per device per minute"),
    U(rate_bundle_burst, "60", 1, 1000000, "bundle fetch bucket size"),
    U(rate_register_per_min, "30", 1, 1000000, "registrations per minute, server-wide"),
    U(rate_register_burst, "30", 1, 1000000, "registration bucket size"),
    U(rate_register_source_per_min, "5", 1, 1000000,
      "registrations per minute from one source address (the TCP peer, or see register_proxy)"),
    U(rate_register_source_burst, "10", 1, 1000000, "per source address registration bucket size"),
    U(rate_register_prefix_per_min, "10", 1, 1000000,
      "registrations per minute from one source prefix (IPv4 /24, IPv6 /48)"),
    U(rate_register_prefix_burst, "20", 1, 1000000, "per source prefix registration bucket size"),
    U(register_sources_max, "16384", 1, 16777216,
      "source addresses (and, separately, prefixes) remembered for the registration limits; "
      "the least recently seen is forgotten first (at most 72 bytes each, in memory only)"),
    S(register_proxy, "", NULL,
      "IP address of a trusted reverse proxy: registrations through it are limited by the last "
      "address of its X-Forwarded-For header; empty = X-Forwarded-For is never trusted"),
    U(rate_pair_per_min, "120", 1, 1000000,
      "sends from one account to one recipient account per minute (over all devices)"),
    U(rate_pair_burst, "100", 1, 1000000, "per sender-recipient send bucket size"),
    U(rate_prekey_target_per_min, "2", 1, 1000000,
      "one-time prekeys handed out per target account per minute (then bundles come without)"),
    U(rate_prekey_target_burst, "20", 1, 1000000,
      "one-time prekey fetches per target account bucket size"),
    U(rx_buffer_budget, "67108864", 65536, 17179869184ULL,
      "bytes of unfinished incoming WebSocket messages buffered over all connections; a "
      "connection that needs more is closed with 1013 (try again later)"),
    U(fragment_timeout_s, "60", 1, 3600,
      "seconds a logged-in client has to finish a WebSocket message it started"),
    U(data_dir_max, "0", 0, UINT64_MAX,
      "bytes the data directory may use (database, WAL, attachments) before new envelopes "
      "and uploads are refused; 0 = no limit"),
    U(disk_min_free, "268435456", 0, UINT64_MAX,
      "bytes that must stay free on the data directory's file system; new envelopes and "
      "uploads are refused below it"),
    S(kt_auditors, "", NULL,
      "key transparency: auditors' Ed25519 public keys (HEX[,HEX...], 0..8) whose "
      "countersignatures publish a tree head; empty = heads are published unaudited"),
    U(kt_head_interval_s, "3600", 1, 86400,
      "key transparency: sign a fresh tree head when the newest is older than this (seconds)"),
    U(scrub_delay_s, "60", 1, 3600,
      "seconds after a write until no trace of deleted rows (acked envelopes) is left in the "
      "database, its WAL or free pages"),
    S(log_detail, "private", "private|debug",
      "private: log lines carry dates only and per-user events (logins, registrations, "
      "device changes) only as daily counts; debug: every per-user event with its time of day"),
    S(metrics_listen, "127.0.0.1:9465", NULL,
      "separate plain-HTTP listener for /metrics and /healthz (HOST:PORT, port 0 picks one; "
      "\"off\" = none); the public port does not serve /metrics"),
    /* sealed sender (issue 12, docs/api.md "Sealed sender") */
    U(sender_cert_validity_s, "86400", 60, 2592000,
      "seconds a sender certificate (sealed sender) stays valid after it is issued"),
    U(queue_per_sender_max, "250", 0, 1000000,
      "envelopes one other account may have waiting in one device's queue (0 = no cap)"),
    U(queue_sealed_max, "5000", 0, 1000000,
      "sealed (sender unknown) envelopes that may wait in one device's queue (0 = no cap)"),
    U(rate_sealed_per_min, "600", 1, 1000000,
      "sealed sends to one recipient account per minute, over all senders"),
    U(rate_sealed_burst, "300", 1, 1000000, "per recipient sealed send bucket size"),
    U(sealed_conns_per_source, "32", 1, 1000000,
      "connections from one source address that may stay open without logging in once a "
      "sealed send upgraded them (the TCP peer, or see register_proxy)"),
    U(sealed_conns_share, "50", 1, 100,
      "percent of max_connections that connections upgraded by a sealed send (never logged "
      "in) may hold in all"),
};

#define NKEYS (sizeof(g_keys) / sizeof(g_keys[0]))

static int set_from_def(sottod_config *cfg, const key_def *k, const char *value, char *err,
                        size_t errlen)
{
    char *base = (char *)cfg + k->off;
    if (k->type == T_STR) {
        size_t n = strlen(value);
        if (n >= k->size) {
            snprintf(err, errlen, "%s: value too long", k->key);
            return -1;
        }
        if (k->choices != NULL) {
            const char *c = k->choices;
            bool ok = false;
            while (*c != '\0') {
                size_t cl = strcspn(c, "|");
                if (cl == n && strncmp(c, value, n) == 0)
                    ok = true;
                c += cl;
                if (*c == '|')
                    c++;
            }
            if (!ok) {
                snprintf(err, errlen, "%s: must be one of %s", k->key, k->choices);
                return -1;
            }
        }
        memcpy(base, value, n + 1);
        return 0;
    }
    if (value[0] == '\0' || !isdigit((unsigned char)value[0])) {
        snprintf(err, errlen, "%s: not a number", k->key);
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0') {
        snprintf(err, errlen, "%s: not a number", k->key);
        return -1;
    }
    if (v < k->min || v > k->max) {
        snprintf(err, errlen, "%s: must be between %llu and %llu", k->key,
                 (unsigned long long)k->min, (unsigned long long)k->max);
        return -1;
    }
    memcpy(base, &(uint64_t){(uint64_t)v}, sizeof(uint64_t));
    return 0;
}

void sottod_config_defaults(sottod_config *cfg)
{
    char err[128];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; i++)
        if (set_from_def(cfg, &g_keys[i], g_keys[i].def, err, sizeof(err)) != 0)
            abort(); /* a broken default is a programming error */
}

int sottod_config_set(sottod_config *cfg, const char *key, const char *value, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(g_keys[i].key, key) == 0)
            return set_from_def(cfg, &g_keys[i], value, err, errlen);
    snprintf(err, errlen, "unknown key \"%.64s\"", key);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int sottod_config_load(sottod_config *cfg, const char *path, char *err, size_t errlen)
{
    int ret = -1;
    FILE *f = fopen(path, "r");
    char line[2048];
    unsigned lineno = 0;
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s:%u: line too long", path, lineno);
            goto out;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *s = trim(line);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%u: expected key = value", path, lineno);
            goto out;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        char why[256];
        if (sottod_config_set(cfg, key, value, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
            goto out;
        }
    }
    ret = 0;
out:
    fclose(f);
    return ret;
}

int sottod_config_listen(const sottod_config *cfg, char *host, size_t hostlen, int *port)
{
    return sottod_config_hostport(cfg->listen, host, hostlen, port);
}

int sottod_config_hostport(const char *text, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return -1;
    size_t hl = (size_t)(colon - text);
    const char *h = text;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [::1]:443 */
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

static int cmp_key32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

int sottod_config_kt_auditors(const char *text, uint8_t out[8][32], size_t *n, char *err,
                              size_t errlen)
{
    const char *p = text;
    *n = 0;
    while (*p != '\0') {
        char hex[65];
        size_t len;
        while (*p == ' ' || *p == '\t')
            p++;
        len = strcspn(p, ", \t");
        if (len == 0 && *p == '\0')
            break;
        if (len != 64) {
            snprintf(err, errlen, "kt_auditors: each key must be 64 hex digits");
            return -1;
        }
        if (*n == 8) {
            snprintf(err, errlen, "kt_auditors: at most 8 keys");
            return -1;
        }
        memcpy(hex, p, 64);
        hex[64] = '\0';
        for (size_t i = 0; i < 64; i++) {
            if (!isxdigit((unsigned char)hex[i])) {
                snprintf(err, errlen, "kt_auditors: not hex");
                return -1;
            }
        }
        for (size_t i = 0; i < 32; i++) {
            unsigned v = 0;
            for (size_t k = 0; k < 2; k++) {
                char ch = (char)tolower((unsigned char)hex[2 * i + k]);
                v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
            }
            out[*n][i] = (uint8_t)v;
        }
        (*n)++;
        p += 64;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == ',')
            p++;
        else if (*p != '\0') {
            snprintf(err, errlen, "kt_auditors: keys are separated by commas");
            return -1;
        }
    }
    qsort(out, *n, 32, cmp_key32);
    for (size_t i = 1; i < *n; i++) {
        if (memcmp(out[i - 1], out[i], 32) == 0) {
            snprintf(err, errlen, "kt_auditors: a key is listed twice");
            return -1;
        }
    }
    return 0;
}

int sottod_config_check(const sottod_config *cfg, char *err, size_t errlen)
{
    char host[128];
    int port;
    uint8_t keys[8][32];
    size_t nkeys = 0;
    if (sottod_config_kt_auditors(cfg->kt_auditors, keys, &nkeys, err, errlen) != 0)
        return -1;
    if (cfg->data_dir[0] == '\0') {
        snprintf(err, errlen, "data_dir is not set");
        return -1;
    }
    if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
        snprintf(err, errlen, "tls_cert and tls_key must be set together");
        return -1;
    }
    if (sottod_config_listen(cfg, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "listen: expected HOST:PORT");
        return -1;
    }
    if (strcmp(cfg->metrics_listen, "off") != 0 &&
        sottod_config_hostport(cfg->metrics_listen, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "metrics_listen: expected HOST:PORT or off");
        return -1;
    }
    uint8_t proxy[SOTTOD_SOURCE_ADDR_BYTES];
    if (cfg->register_proxy[0] != '\0' && !sottod_source_parse(cfg->register_proxy, proxy)) {
        snprintf(err, errlen, "register_proxy: expected an IPv4 or IPv6 address or nothing");
        return -1;
    }
    return 0;
}

void sottod_config_print_keys(FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const key_def *k = &g_keys[i];
        fprintf(out, "  %-22s default %-12s %s", k->key, k->def[0] ? k->def : "\"\"", k->doc);
        if (k->choices != NULL)
            fprintf(out, " (%s)", k->choices);
        fputc('\n', out);
    }
}
