/*
 * server/ratelimit.c -- token buckets (see ratelimit.h).
 */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

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

void sottod_bucket_table_refund(sottod_bucket_table *t, int64_t k1, int64_t k2, uint64_t burst)
{
    if (t->slots == NULL)
        return;
    sottod_keyed_bucket *e = t->slots[table_hash(k1, k2, t->nslots)];
    while (e != NULL && !(e->k1 == k1 && e->k2 == k2))
        e = e->next;
    if (e == NULL)
        return;
    e->b.tokens += 1.0;
    if (e->b.tokens > (double)burst)
        e->b.tokens = (double)burst;
}

/* ---- registration sources ------------------------------------------------------ */

static void source_unlink(sottod_source_table *t, sottod_source_entry *e)
{
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        t->oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        t->newest = e->older;
    e->older = e->newer = NULL;
}

static void source_push_newest(sottod_source_table *t, sottod_source_entry *e)
{
    e->older = t->newest;
    e->newer = NULL;
    if (t->newest != NULL)
        t->newest->newer = e;
    else
        t->oldest = e;
    t->newest = e;
}

static size_t source_slot(const sottod_source_table *t, uint64_t key)
{
    /* keys are already keyed hashes: the low bits are uniform */
    return (size_t)(key % t->nslots);
}

static void source_remove(sottod_source_table *t, sottod_source_entry *e)
{
    sottod_source_entry **pp = &t->slots[source_slot(t, e->key)];
    while (*pp != NULL && *pp != e)
        pp = &(*pp)->next;
    if (*pp == e)
        *pp = e->next;
    source_unlink(t, e);
    free(e);
    t->count--;
}

bool sottod_source_table_take(sottod_source_table *t, uint64_t key, uint64_t per_min,
                              uint64_t burst, size_t max_entries, int64_t now_us,
                              uint64_t *retry_after_ms)
{
    if (max_entries == 0)
        max_entries = 1;
    if (t->slots == NULL) {
        t->slots = calloc(max_entries, sizeof(*t->slots));
        if (t->slots == NULL)
            return true;
        t->nslots = max_entries;
    }
    sottod_source_entry *e = t->slots[source_slot(t, key)];
    while (e != NULL && e->key != key)
        e = e->next;
    if (e == NULL) {
        while (t->count >= max_entries && t->oldest != NULL)
            source_remove(t, t->oldest);
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            return true;
        e->key = key;
        sottod_bucket_init(&e->b, burst, now_us);
        size_t h = source_slot(t, key);
        e->next = t->slots[h];
        t->slots[h] = e;
        t->count++;
    } else {
        source_unlink(t, e);
    }
    source_push_newest(t, e);
    return sottod_bucket_take(&e->b, per_min, burst, now_us, retry_after_ms);
}

void sottod_source_table_refund(sottod_source_table *t, uint64_t key, uint64_t burst)
{
    if (t->slots == NULL)
        return;
    sottod_source_entry *e = t->slots[source_slot(t, key)];
    while (e != NULL && e->key != key)
        e = e->next;
    if (e == NULL)
        return;
    e->b.tokens += 1.0;
    if (e->b.tokens > (double)burst)
        e->b.tokens = (double)burst;
}

void sottod_source_table_free(sottod_source_table *t)
{
    sottod_source_entry *e = t->oldest;
    while (e != NULL) {
        sottod_source_entry *n = e->newer;
        free(e);
        e = n;
    }
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool sottod_source_parse(const char *text, uint8_t out[SOTTOD_SOURCE_ADDR_BYTES])
{
    char buf[INET6_ADDRSTRLEN + 1];
    while (*text == ' ' || *text == '\t')
        text++;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, text, n);
    buf[n] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memcpy(out, v4_mapped, sizeof(v4_mapped));
        memcpy(out + 12, &a4, 4);
        return true;
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        memcpy(out, &a6, 16);
        return true;
    }
    return false;
}

bool sottod_source_from_sockaddr(const void *sa, size_t salen,
                                 uint8_t out[SOTTOD_SOURCE_ADDR_BYTES])
{
    sa_family_t fam;
    if (sa == NULL || salen < sizeof(fam))
        return false;
    memcpy(&fam, (const uint8_t *)sa + offsetof(struct sockaddr_in, sin_family), sizeof(fam));
    if (fam == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof(s4));
        memcpy(out, v4_mapped, sizeof(v4_mapped));
        memcpy(out + 12, &s4.sin_addr, 4);
        return true;
    }
    if (fam == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof(s6));
        memcpy(out, &s6.sin6_addr, 16);
        return true;
    }
    return false;
}

void sottod_source_keys(const uint8_t addr[SOTTOD_SOURCE_ADDR_BYTES], const uint8_t hash_key[16],
                        uint64_t *addr_key, uint64_t *prefix_key)
{
    uint8_t in[SOTTOD_SOURCE_ADDR_BYTES + 1], h[crypto_shorthash_BYTES];
    bool v4 = sodium_memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0;
    memcpy(in, addr, SOTTOD_SOURCE_ADDR_BYTES);
    /* The "address" of an IPv6 source is its /64: one host or subscriber is
     * handed a whole /64 (RFC 6177), so a full /128 would be free to vary. */
    if (!v4)
        memset(in + 8, 0, SOTTOD_SOURCE_ADDR_BYTES - 8);
    in[SOTTOD_SOURCE_ADDR_BYTES] = 'A';
    crypto_shorthash(h, in, sizeof(in), hash_key);
    memcpy(addr_key, h, sizeof(*addr_key));
    /* IPv4 (::ffff:a.b.c.d): keep a.b.c = 15 bytes; IPv6: the /48 = 6 bytes */
    size_t keep = v4 ? 15 : 6;
    memset(in + keep, 0, SOTTOD_SOURCE_ADDR_BYTES - keep);
    in[SOTTOD_SOURCE_ADDR_BYTES] = 'P';
    crypto_shorthash(h, in, sizeof(in), hash_key);
    memcpy(prefix_key, h, sizeof(*prefix_key));
    sodium_memzero(in, sizeof(in));
}

bool sottod_source_xff_last(const char *xff, uint8_t out[SOTTOD_SOURCE_ADDR_BYTES])
{
    if (xff == NULL)
        return false;
    const char *last = strrchr(xff, ',');
    return sottod_source_parse(last != NULL ? last + 1 : xff, out);
}

/* ---- counts per source ------------------------------------------------------------ */

static size_t count_slot(size_t nslots, uint64_t key)
{
    /* keys are already keyed hashes (SipHash): their low bits will do */
    return (size_t)(key % nslots);
}

/* Doubles the slots (64 at first). Returns false if out of memory. */
static bool count_grow(sottod_count_table *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 64;
    sottod_count_entry **ns = calloc(n, sizeof(*ns));
    if (ns == NULL)
        return false;
    for (size_t i = 0; i < t->nslots; i++) {
        sottod_count_entry *e = t->slots[i];
        while (e != NULL) {
            sottod_count_entry *next = e->next;
            size_t h = count_slot(n, e->key);
            e->next = ns[h];
            ns[h] = e;
            e = next;
        }
    }
    free(t->slots);
    t->slots = ns;
    t->nslots = n;
    return true;
}

bool sottod_count_table_add(sottod_count_table *t, uint64_t key, uint32_t max_per_key)
{
    if (t->slots == NULL && !count_grow(t))
        return false;
    sottod_count_entry *e = t->slots[count_slot(t->nslots, key)];
    while (e != NULL && e->key != key)
        e = e->next;
    if (e != NULL) {
        if (e->n >= max_per_key)
            return false;
        e->n++;
        return true;
    }
    if (max_per_key == 0)
        return false;
    if (t->count >= t->nslots)
        (void)count_grow(t); /* crowded, not full: chains just get longer */
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return false;
    size_t h = count_slot(t->nslots, key);
    e->key = key;
    e->n = 1;
    e->next = t->slots[h];
    t->slots[h] = e;
    t->count++;
    return true;
}

void sottod_count_table_release(sottod_count_table *t, uint64_t key)
{
    if (t->slots == NULL)
        return;
    sottod_count_entry **pp = &t->slots[count_slot(t->nslots, key)];
    while (*pp != NULL && (*pp)->key != key)
        pp = &(*pp)->next;
    if (*pp == NULL)
        return;
    sottod_count_entry *e = *pp;
    if (--e->n == 0) {
        *pp = e->next;
        free(e);
        t->count--;
    }
}

void sottod_count_table_free(sottod_count_table *t)
{
    for (size_t i = 0; i < t->nslots; i++) {
        sottod_count_entry *e = t->slots[i];
        while (e != NULL) {
            sottod_count_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->slots);
    memset(t, 0, sizeof(*t));
}
