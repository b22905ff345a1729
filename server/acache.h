/*
 * server/acache.h -- an in-memory cache of recipient accounts for sends.
 *
 * Design: every send needs the destination account's id and its device
 * list (ids, registration ids, whether each has keys) to check the
 * sender's device set. Reading both from the store costs two read
 * transactions per envelope on the event loop. They change only through
 * this server's own writes (device added, removed, first signed prekey,
 * account created, delivery token set) or through `sottod admin
 * delete-account` (which signals
 * the server with SIGUSR1). So the loop keeps them here and drops an
 * account's entry on each of those writes (sottod_acache_forget), drops
 * everything on SIGUSR1 and once a minute (sottod_acache_clear), and drops
 * an entry when the store refuses an enqueue as STALE. Only found accounts
 * are cached (a name registered a moment later is seen at once). Single
 * threaded: the event loop only. With a shared database (several sottod
 * nodes, later) this cache needs cross-node invalidation.
 */
#ifndef SOTTOD_ACACHE_H
#define SOTTOD_ACACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct sottod_acache_dev {
    uint32_t device_id;
    uint32_t registration_id;
    bool has_keys;
} sottod_acache_dev;

typedef struct sottod_acache_entry {
    struct sottod_acache_entry *next;
    int64_t account_id;
    char username[SOTTOD_USERNAME_MAX + 1];
    /* the account's delivery token (sealed sends, v5); dropped with the
     * entry when the account sets or clears it (sottod_acache_forget) */
    bool has_token;
    uint8_t token[SOTTOD_DELIVERY_TOKEN_BYTES];
    size_t n;
    sottod_acache_dev devs[SOTTOD_MAX_DEVICES];
} sottod_acache_entry;

typedef struct sottod_acache {
    sottod_acache_entry **b;
    size_t buckets, count;
} sottod_acache;

/* Looks `username` up in the cache, or reads it from the store and caches
 * it. Returns SOTTOD_STORE_OK with *out pointing into the cache (valid
 * until the next acache call), or the store's error (NOT_FOUND). */
int sottod_acache_get(sottod_acache *ac, sottod_store *st, const char *username,
                      const sottod_acache_entry **out);

/* Drops the entry of one account (by id). */
void sottod_acache_forget(sottod_acache *ac, int64_t account_id);

/* Drops everything (also frees the table). */
void sottod_acache_clear(sottod_acache *ac);

#endif /* SOTTOD_ACACHE_H */
