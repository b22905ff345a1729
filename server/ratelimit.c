/*
 * server/ratelimit.c -- token buckets (see ratelimit.h).
 */
#include "ratelimit.h"

#include <stddef.h>
#include <stdlib.h>

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

static size_t table_hash(int64_t k1, int64_t k2, size_t n)
{
    uint64_t h = (uint64_t)k1 * 0x9E3779B97F4A7C15ULL ^ (uint64_t)k2 * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 29;
    return (size_t)(h % n);
}

static bool refilled(const sottod_bucket *b, uint64_t per_min, uint64_t burst, int64_t now_us)
{
    double t = b->tokens;
    if (now_us > b->last_us)
        t += (double)(now_us - b->last_us) * (double)per_min / 60e6;
    return t >= (double)burst;
}

/* Drops the entries that are full again, then doubles the slots if the
 * table is still crowded. */
static void table_grow(sottod_bucket_table *t, uint64_t per_min, uint64_t burst, int64_t now_us)
{
    for (size_t i = 0; i < t->nslots; i++) {
        sottod_keyed_bucket **pp = &t->slots[i];
        while (*pp != NULL) {
            sottod_keyed_bucket *e = *pp;
            if (refilled(&e->b, per_min, burst, now_us)) {
                *pp = e->next;
                free(e);
                t->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    if (t->slots != NULL && t->count < t->nslots)
        return;
    size_t n = t->nslots ? t->nslots * 2 : 64;
    sottod_keyed_bucket **ns = calloc(n, sizeof(*ns));
    if (ns == NULL)
        return;
    for (size_t i = 0; i < t->nslots; i++) {
        sottod_keyed_bucket *e = t->slots[i];
        while (e != NULL) {
            sottod_keyed_bucket *next = e->next;
            size_t h = table_hash(e->k1, e->k2, n);
            e->next = ns[h];
            ns[h] = e;
            e = next;
        }
    }
    free(t->slots);
    t->slots = ns;
    t->nslots = n;
}

bool sottod_bucket_table_take(sottod_bucket_table *t, int64_t k1, int64_t k2, uint64_t per_min,
                              uint64_t burst, int64_t now_us, uint64_t *retry_after_ms)
{
    if (t->slots == NULL || t->count >= t->nslots * 2)
        table_grow(t, per_min, burst, now_us);
    if (t->slots == NULL)
        return true;
    size_t h = table_hash(k1, k2, t->nslots);
    sottod_keyed_bucket *e = t->slots[h];
    while (e != NULL && !(e->k1 == k1 && e->k2 == k2))
        e = e->next;
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            return true;
        e->k1 = k1;
        e->k2 = k2;
        sottod_bucket_init(&e->b, burst, now_us);
        e->next = t->slots[h];
        t->slots[h] = e;
        t->count++;
    }
    return sottod_bucket_take(&e->b, per_min, burst, now_us, retry_after_ms);
}

void sottod_bucket_table_free(sottod_bucket_table *t)
{
    for (size_t i = 0; i < t->nslots; i++) {
        sottod_keyed_bucket *e = t->slots[i];
        while (e != NULL) {
            sottod_keyed_bucket *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->slots);
    t->slots = NULL;
    t->nslots = 0;
    t->count = 0;
}
