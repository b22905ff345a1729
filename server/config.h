/*
 * server/config.h -- sottod's configuration: a table of keys with types,
 * defaults and bounds, read from a simple `key = value` file.
 *
 * Design: every key lives in one table (config.c) with its default, range
 * and a one-line description; the parser, `sottod --help` and the checks
 * all come from that table, so docs/operating.md can list exactly the same
 * keys. Unknown keys and out-of-range values are errors (a typo must not
 * silently fall back to a default).
 */
#ifndef SOTTOD_CONFIG_H
#define SOTTOD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SOTTOD_PATH_MAX 1024

typedef struct sottod_config {
    char listen[128]; /* "HOST:PORT"; port 0 = pick a free one */
    char data_dir[SOTTOD_PATH_MAX];
    char tls_cert[SOTTOD_PATH_MAX]; /* "" = self-signed in data_dir/tls */
    char tls_key[SOTTOD_PATH_MAX];
    char registration[16]; /* "open" or "invite" */
    char durability[16];   /* "full" or "process" */
    char log_level[16];
    char require_device_lists[8]; /* "yes" or "no": API v2 transition switch (api.c) */
    uint64_t max_devices;
    uint64_t frame_max;
    uint64_t preauth_frame_max;
    uint64_t ciphertext_max;
    uint64_t queue_max;
    uint64_t envelope_ttl_days;
    uint64_t attachment_max;
    uint64_t attachment_ttl_days;
    uint64_t invite_ttl_days;
    uint64_t prekey_low;
    uint64_t max_connections;
    uint64_t auth_timeout_s;
    uint64_t idle_timeout_s;
    uint64_t rate_send_per_min;
    uint64_t rate_send_burst;
    uint64_t rate_bundle_per_min;
    uint64_t rate_bundle_burst;
    uint64_t rate_register_per_min;
    uint64_t rate_register_burst;
    /* registration limits per source (issue 12, ratelimit.h): per address
     * and per prefix (IPv4 /24, IPv6 /48), at most register_sources_max
     * remembered per table; register_proxy = a trusted proxy's address
     * whose X-Forwarded-For names the source ("" = none) */
    uint64_t rate_register_source_per_min;
    uint64_t rate_register_source_burst;
    uint64_t rate_register_prefix_per_min;
    uint64_t rate_register_prefix_burst;
    uint64_t register_sources_max;
    char register_proxy[64];
    /* abuse limits (issue 12): inbound sends per (sender account,
     * recipient account), and one-time prekeys handed out per target
     * account (beyond it bundles come without one) */
    uint64_t rate_pair_per_min;
    uint64_t rate_pair_burst;
    uint64_t rate_prekey_target_per_min;
    uint64_t rate_prekey_target_burst;
    /* all connections' buffered unfinished WebSocket messages (bytes), and
     * the seconds a logged-in client has to finish one */
    uint64_t rx_buffer_budget;
    uint64_t fragment_timeout_s;
    /* the global disk budget (disk.h): 0 = no data directory limit */
    uint64_t data_dir_max;
    uint64_t disk_min_free;
    /* key transparency (server/kt.c): 0..8 comma-separated hex Ed25519
     * keys of the auditors whose countersignatures publish a head, and the
     * age after which a fresh head is signed for the same log size */
    char kt_auditors[8 * 65 + 8];
    uint64_t kt_head_interval_s;
    /* nothing left after delivery (issue 12): seconds after a write before
     * the WAL is checkpointed and truncated (store scrub_delay_s); what the
     * logs hold ("private": dates and daily counts of per-user events;
     * "debug": every per-user event with its time of day, warned at start);
     * where /metrics is served ("off" or a loopback HOST:PORT) */
    uint64_t scrub_delay_s;
    char log_detail[16];
    char metrics_listen[128];
    /* sealed sender (issue 12, server/sealed.h): sender certificate
     * lifetime; per-sender caps in a device queue (store
     * queue_per_sender_max / queue_sealed_max, 0 = none); sealed sends per
     * recipient account (all senders together: keyed (recipient, sealed)
     * in the pair table) */
    uint64_t sender_cert_validity_s;
    uint64_t queue_per_sender_max;
    uint64_t queue_sealed_max;
    uint64_t rate_sealed_per_min;
    uint64_t rate_sealed_burst;
    /* connections upgraded by a sealed send that never log in (no login
     * deadline): at most sealed_conns_per_source from one source address,
     * at most sealed_conns_share percent of max_connections in all */
    uint64_t sealed_conns_per_source;
    uint64_t sealed_conns_share;
} sottod_config;

/* Fills every key with its default. */
void sottod_config_defaults(sottod_config *cfg);

/* Sets one key from its text value. Returns 0, or -1 with a message (no
 * secret ever appears in it) in err. */
int sottod_config_set(sottod_config *cfg, const char *key, const char *value, char *err,
                      size_t errlen);

/* Reads a file of `key = value` lines ('#' starts a comment). Returns 0 or
 * -1 with "FILE:LINE: reason" in err. */
int sottod_config_load(sottod_config *cfg, const char *path, char *err, size_t errlen);

/* Cross-key checks after loading (e.g. data_dir set, cert and key both or
 * neither). Returns 0 or -1 with err. */
int sottod_config_check(const sottod_config *cfg, char *err, size_t errlen);

/* Parses kt_auditors text ("" or HEX[,HEX...], 0..8 distinct valid Ed25519
 * public keys of 64 hex digits; spaces around commas allowed) into
 * out[0..*n), sorted in increasing byte order. Returns 0 or -1 with err. */
int sottod_config_kt_auditors(const char *text, uint8_t out[8][32], size_t *n, char *err,
                              size_t errlen);

/* Prints every key, its default and description (for --help). */
void sottod_config_print_keys(FILE *out);

/* Splits cfg->listen into host (NUL-terminated) and port. Returns 0 or -1. */
int sottod_config_listen(const sottod_config *cfg, char *host, size_t hostlen, int *port);

/* Splits "HOST:PORT" or "[V6]:PORT" text into host (NUL-terminated, at
 * most hostlen bytes) and port 0..65535. Returns 0 or -1. */
int sottod_config_hostport(const char *text, char *host, size_t hostlen, int *port);

#endif /* SOTTOD_CONFIG_H */
