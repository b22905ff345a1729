/*
 * server/ratelimit.h -- token buckets.
 *
 * Design: a bucket holds up to `burst` tokens and refills at `per_min`
 * tokens a minute, computed lazily from a monotonic clock when a token is
 * taken (no timers). Buckets are embedded in the connection (per device
 * limits: a device has one connection at a time) or in the server
 * (registrations, server-wide), or in keyed tables (per sender-recipient
 * pair, per prekey target, per registration source address and prefix).
 */
#ifndef SOTTOD_RATELIMIT_H
#define SOTTOD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sottod_bucket {
    double tokens;
    int64_t last_us; /* monotonic microseconds of the last refill */
} sottod_bucket;

/* Starts full. */
void sottod_bucket_init(sottod_bucket *b, uint64_t burst, int64_t now_us);

/* Takes one token. Returns true if allowed; otherwise false and
 * *retry_after_ms (may be NULL) says when the next token is due. */
bool sottod_bucket_take(sottod_bucket *b, uint64_t per_min, uint64_t burst, int64_t now_us,
                        uint64_t *retry_after_ms);

/* A table of token buckets keyed by two integers (e.g. sender account,
 * recipient account), created on first use; zero-initialised = empty.
 * Entries whose bucket has refilled completely carry no information and
 * are dropped when the table grows, so its size follows the keys active
 * within one refill period. Used for the per-(sender, recipient) inbound
 * rate and the per-target one-time prekey limit (docs/operating.md). */
typedef struct sottod_keyed_bucket {
    struct sottod_keyed_bucket *next;
    int64_t k1, k2;
    sottod_bucket b;
} sottod_keyed_bucket;

typedef struct sottod_bucket_table {
    sottod_keyed_bucket **slots;
    size_t nslots, count;
} sottod_bucket_table;

/* Takes one token from the bucket of (k1, k2) (starting full). Returns
 * true if allowed; false with *retry_after_ms (may be NULL) otherwise. Out
 * of memory: allowed (a limit never refuses because of the server's own
 * trouble). */
bool sottod_bucket_table_take(sottod_bucket_table *t, int64_t k1, int64_t k2, uint64_t per_min,
                              uint64_t burst, int64_t now_us, uint64_t *retry_after_ms);

/* Gives back one token to the bucket of (k1, k2), at most up to burst:
 * for a request that took it and then turned out to cost nothing (e.g. a
 * sealed send whose envelopes the store refused). No-op for a key the
 * table does not hold (its bucket was full again and dropped). */
void sottod_bucket_table_refund(sottod_bucket_table *t, int64_t k1, int64_t k2, uint64_t burst);

/* Frees every entry; the table is empty and reusable afterwards. */
void sottod_bucket_table_free(sottod_bucket_table *t);

/* ---- registration sources (issue 12) ------------------------------------------
 *
 * Registrations are limited per source address and per source prefix
 * (IPv4 /24, IPv6 /48) besides the server-wide bucket, so one client can
 * neither take the whole server-wide budget nor spread around a per-address
 * limit inside its own network. Sources are kept in memory only (never on
 * disk, never logged) and not as addresses: a key is a keyed 64-bit hash
 * (SipHash-2-4, crypto_shorthash) of the address or prefix under a random
 * key made at start, so a core dump holds no address list either.
 *
 * A source table is bounded: at most `max` entries; taking a token for a
 * new key when it is full evicts the least recently used entry (which
 * then starts full again when it comes back: evicting only ever helps a
 * client that controls more than `max` sources, and the server-wide bucket
 * still holds it). Memory: one entry is sizeof(sottod_source_entry), 48
 * bytes on LP64 (64 with glibc malloc's overhead), plus one 8-byte slot
 * per possible entry: at most 72 bytes x max per table, 1.2 MiB per table
 * (2.3 MiB for the address and prefix tables) at the default 16384. */

typedef struct sottod_source_entry {
    struct sottod_source_entry *next;          /* hash chain */
    struct sottod_source_entry *older, *newer; /* use order */
    uint64_t key;
    sottod_bucket b;
} sottod_source_entry;

typedef struct sottod_source_table {
    sottod_source_entry **slots; /* allocated on first use */
    size_t nslots, count;
    sottod_source_entry *oldest, *newest;
} sottod_source_table;

/* Takes one token from the bucket of key (starting full), creating it and
 * evicting the least recently used entry if the table already holds
 * max_entries (>= 1). Returns true if allowed; false with *retry_after_ms
 * (may be NULL) otherwise. Out of memory: allowed. */
bool sottod_source_table_take(sottod_source_table *t, uint64_t key, uint64_t per_min,
                              uint64_t burst, size_t max_entries, int64_t now_us,
                              uint64_t *retry_after_ms);

/* Gives back the token just taken from key's bucket (when a later limit
 * refused the same request, so that the refusal costs the source
 * nothing); at most up to burst. No-op for an unknown key. */
void sottod_source_table_refund(sottod_source_table *t, uint64_t key, uint64_t burst);

/* Frees every entry; the table is empty and reusable afterwards. */
void sottod_source_table_free(sottod_source_table *t);

#define SOTTOD_SOURCE_ADDR_BYTES 16

/* Parses an IPv4 or IPv6 address literal (no port, no brackets; leading
 * and trailing spaces allowed) into 16 bytes, IPv4 as ::ffff:a.b.c.d.
 * Returns true, or false if text is not an address. */
bool sottod_source_parse(const char *text, uint8_t out[SOTTOD_SOURCE_ADDR_BYTES]);

/* Normalises a socket address (AF_INET or AF_INET6; an IPv4-mapped IPv6
 * address counts as IPv4) into 16 bytes. Returns true, or false for
 * another family. sa points to a struct sockaddr_in or sockaddr_in6. */
bool sottod_source_from_sockaddr(const void *sa, size_t salen,
                                 uint8_t out[SOTTOD_SOURCE_ADDR_BYTES]);

/* The two table keys of a normalised address under hash_key (16 bytes):
 * *addr_key for the address, *prefix_key for its /24 (IPv4) or /48
 * (IPv6). */
void sottod_source_keys(const uint8_t addr[SOTTOD_SOURCE_ADDR_BYTES], const uint8_t hash_key[16],
                        uint64_t *addr_key, uint64_t *prefix_key);

/* The last address of an X-Forwarded-For value ("a, b, c": the one the
 * trusted proxy itself appended) into out. Returns true, or false if
 * there is none or it is not an address literal. */
bool sottod_source_xff_last(const char *xff, uint8_t out[SOTTOD_SOURCE_ADDR_BYTES]);

/* ---- counts per source (issue 12) ---------------------------------------------
 *
 * How many of something (connections upgraded by a sealed send) each
 * source key (a keyed hash from sottod_source_keys) holds right now. An
 * entry exists only while its count is above 0, so the table never holds
 * more entries than the total the caller allows; no eviction. */

typedef struct sottod_count_entry {
    struct sottod_count_entry *next;
    uint64_t key;
    uint32_t n;
} sottod_count_entry;

typedef struct sottod_count_table {
    sottod_count_entry **slots; /* allocated on first use, grown by doubling */
    size_t nslots, count;
} sottod_count_table;

/* Adds one to key's count unless it already holds max_per_key. Returns
 * true if added; false if at max_per_key or out of memory (nothing was
 * added then, so the caller must not call release for it). */
bool sottod_count_table_add(sottod_count_table *t, uint64_t key, uint32_t max_per_key);

/* Takes one off key's count (after a successful add), freeing the entry
 * at 0. No-op for a key without an entry. */
void sottod_count_table_release(sottod_count_table *t, uint64_t key);

/* Frees every entry; the table is empty and reusable afterwards. */
void sottod_count_table_free(sottod_count_table *t);

#endif /* SOTTOD_RATELIMIT_H */
