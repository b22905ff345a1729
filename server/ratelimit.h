/*
 * server/ratelimit.h -- token buckets.
 *
 * Design: a bucket holds up to `burst` tokens and refills at `per_min`
 * tokens a minute, computed lazily from a monotonic clock when a token is
 * taken (no timers). Buckets are embedded in the connection (per device
 * limits: a device has one connection at a time) or in the server
 * (registrations, server-wide: there is no per-address limit because the
 * server does not keep addresses).
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

/* Frees every entry; the table is empty and reusable afterwards. */
void sottod_bucket_table_free(sottod_bucket_table *t);

#endif /* SOTTOD_RATELIMIT_H */
