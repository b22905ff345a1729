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

#endif /* SOTTOD_RATELIMIT_H */
