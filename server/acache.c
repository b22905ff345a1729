/*
 * server/acache.c -- recipient account cache (see acache.h).
 */
#include "acache.h"

#include <stdlib.h>
#include <string.h>

#define ACACHE_MAX 65536 /* entries; past this the cache starts over */

static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

void sottod_acache_clear(sottod_acache *ac)
{
    for (size_t i = 0; i < ac->buckets; i++) {
        sottod_acache_entry *e = ac->b[i];
        while (e != NULL) {
            sottod_acache_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(ac->b);
    ac->b = NULL;
    ac->buckets = ac->count = 0;
}

void sottod_acache_forget(sottod_acache *ac, int64_t account_id)
{
    /* By id: a full scan would be slow, but forget is rare (device and key
     * changes); entries are found by name, so walk every bucket. */
    for (size_t i = 0; i < ac->buckets; i++) {
        sottod_acache_entry **pp = &ac->b[i];
        while (*pp != NULL) {
            sottod_acache_entry *e = *pp;
            if (e->account_id == account_id) {
                *pp = e->next;
                free(e);
                ac->count--;
                return;
            }
            pp = &e->next;
        }
    }
}

static int load(sottod_store *st, const char *username, sottod_acache_entry *e)
{
    sottod_account acct;
    sottod_device *devs = NULL;
    size_t n = 0;
    int rc = sottod_store_account_lookup(st, username, &acct);
    if (rc != SOTTOD_STORE_OK)
        return rc;
    devs = calloc(SOTTOD_MAX_DEVICES, sizeof(*devs));
    if (devs == NULL)
        return SOTTOD_STORE_NOMEM;
    rc = sottod_store_devices_list(st, acct.account_id, devs, SOTTOD_MAX_DEVICES, &n);
    if (rc == SOTTOD_STORE_OK)
        rc = sottod_store_delivery_token_get(st, acct.account_id, e->token, &e->has_token);
    if (rc == SOTTOD_STORE_OK) {
        e->account_id = acct.account_id;
        memcpy(e->username, acct.username, sizeof(e->username));
        e->n = n;
        for (size_t i = 0; i < n; i++) {
            e->devs[i].device_id = devs[i].device_id;
            e->devs[i].registration_id = devs[i].registration_id;
            e->devs[i].has_keys = devs[i].has_signed_prekey;
        }
    }
    free(devs);
    return rc;
}

int sottod_acache_get(sottod_acache *ac, sottod_store *st, const char *username,
                      const sottod_acache_entry **out)
{
    size_t h = name_hash(username);
    if (ac->b != NULL) {
        for (sottod_acache_entry *e = ac->b[h & (ac->buckets - 1)]; e != NULL; e = e->next) {
            if (strcmp(e->username, username) == 0) {
                *out = e;
                return SOTTOD_STORE_OK;
            }
        }
    }
    sottod_acache_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return SOTTOD_STORE_NOMEM;
    int rc = load(st, username, e);
    if (rc != SOTTOD_STORE_OK) {
        free(e);
        return rc;
    }
    if (ac->count >= ACACHE_MAX)
        sottod_acache_clear(ac);
    if (ac->b == NULL) {
        ac->buckets = 16384;
        ac->b = calloc(ac->buckets, sizeof(*ac->b));
        if (ac->b == NULL) {
            ac->buckets = 0;
            free(e);
            return SOTTOD_STORE_NOMEM;
        }
    }
    size_t i = h & (ac->buckets - 1);
    e->next = ac->b[i];
    ac->b[i] = e;
    ac->count++;
    *out = e;
    return SOTTOD_STORE_OK;
}
