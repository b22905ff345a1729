/*
 * server/ratelimit.c -- token buckets (see ratelimit.h).
 */
#include "ratelimit.h"

#include <stddef.h>

void sottod_bucket_init(sottod_bucket *b, uint64_t burst, int64_t now_us)
{
    b->tokens = (double)burst;
    b->last_us = now_us;
}

bool sottod_bucket_take(sottod_bucket *b, uint64_t per_min, uint64_t burst, int64_t now_us,
                        uint64_t *retry_after_ms)
{
    double rate_per_us = (double)per_min / 60e6;
    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) * rate_per_us;
        if (b->tokens > (double)burst)
            b->tokens = (double)burst;
    }
    b->last_us = now_us;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    if (retry_after_ms != NULL)
        *retry_after_ms = (uint64_t)((1.0 - b->tokens) / rate_per_us / 1000.0) + 1;
    return false;
}
