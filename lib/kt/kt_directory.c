/*
 * lib/kt/kt_directory.c -- the key-transparency directory as a sequence of
 * log updates builds it (sotto/kt.h "sotto_kt_directory", docs/protocol.md
 * "The directory").
 *
 * A prefix tree (index -> leaf value) plus a table index -> counter.
 *
 * The table is open addressing with linear probing, a power-of-two number
 * of 16-byte slots (a pointer to the tree's own copy of the index, and the
 * counter), at most 3/4 full, doubled when an insert would pass that. The
 * slot of an index is SipHash-2-4 (libsodium crypto_shorthash) of the whole
 * index under a random key drawn per directory: the indices are VRF outputs,
 * but an auditor reads them from the server it audits, and a server that
 * chose indices sharing their first bytes must not be able to pile them
 * into one probe run (which would make each insert cost O(n), the replay
 * O(n^2)). Without the key it cannot aim at a slot. Entries are compared on
 * all 32 bytes.
 */
#include "sotto/kt.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "kt/kt_internal.h"

#define IB SOTTO_PT_INDEX_BYTES
#define MIN_SLOTS 64

struct slot {
    const uint8_t *index; /* NULL: empty; else points into the tree */
    uint64_t counter;
};

struct sotto_kt_directory {
    sotto_prefix_tree *tree;
    struct slot *slots;
    size_t mask; /* number of slots - 1 */
    uint64_t used;
    uint64_t last_ts;
    uint8_t key[crypto_shorthash_KEYBYTES];
};

/* The keyed hash of an index; its low bits pick the first slot. */
static uint64_t hash_of(const sotto_kt_directory *d, const uint8_t index[IB])
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;

    crypto_shorthash(h, index, IB, d->key);
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return v;
}

/* The slot holding index, or NULL. */
static struct slot *find(const sotto_kt_directory *d, const uint8_t index[IB])
{
    size_t i = (size_t)hash_of(d, index) & d->mask;

    for (;;) {
        struct slot *s = &d->slots[i];
        if (s->index == NULL)
            return NULL;
        if (memcmp(s->index, index, IB) == 0)
            return s;
        i = (i + 1) & d->mask;
    }
}

/* Puts an entry known to be absent into a table with a free slot. */
static void place(struct slot *slots, size_t mask, const sotto_kt_directory *d,
                  const uint8_t *index, uint64_t counter)
{
    size_t i = (size_t)hash_of(d, index) & mask;

    while (slots[i].index != NULL)
        i = (i + 1) & mask;
    slots[i].index = index;
    slots[i].counter = counter;
}

/* Makes room for one more entry (load <= 3/4 after it). On failure the
 * table is as it was. */
static int reserve_one(sotto_kt_directory *d)
{
    size_t n_slots = d->mask + 1, new_n;
    struct slot *fresh;

    if ((d->used + 1) * 4 <= (uint64_t)n_slots * 3)
        return SOTTO_OK;
    if (n_slots > SIZE_MAX / 2 / sizeof *fresh)
        return SOTTO_ERR_NOMEM;
    new_n = n_slots * 2;
    fresh = calloc(new_n, sizeof *fresh);
    if (fresh == NULL)
        return SOTTO_ERR_NOMEM;
    for (size_t i = 0; i < n_slots; i++)
        if (d->slots[i].index != NULL)
            place(fresh, new_n - 1, d, d->slots[i].index, d->slots[i].counter);
    free(d->slots);
    d->slots = fresh;
    d->mask = new_n - 1;
    return SOTTO_OK;
}

int sotto_kt_directory_new(sotto_kt_directory **out)
{
    sotto_kt_directory *d;
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = NULL;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return SOTTO_ERR_NOMEM;
    d->slots = calloc(MIN_SLOTS, sizeof *d->slots);
    rc = d->slots == NULL ? SOTTO_ERR_NOMEM : sotto_prefix_tree_new(&d->tree);
    if (rc != SOTTO_OK) {
        free(d->slots);
        free(d);
        return rc;
    }
    d->mask = MIN_SLOTS - 1;
    sotto_random_buf(d->key, sizeof d->key);
    *out = d;
    return SOTTO_OK;
}

void sotto_kt_directory_free(sotto_kt_directory *d)
{
    if (d == NULL)
        return;
    sotto_prefix_tree_free(d->tree);
    free(d->slots);
    sodium_memzero(d->key, sizeof d->key);
    free(d);
}

int sotto_kt_directory_apply(sotto_kt_directory *d, const sotto_kt_update *u,
                             uint8_t prefix_root[SOTTO_PT_HASH_BYTES])
{
    uint8_t value[SOTTO_PT_VALUE_BYTES];
    const uint8_t *stored = NULL;
    struct slot *s;
    uint64_t current;
    int rc;

    if (d == NULL || u == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    s = find(d, u->index);
    current = s == NULL ? 0 : s->counter;
    /* counter == current + 1, written so that current == UINT64_MAX cannot
     * wrap to a counter of 0 */
    if (u->counter == 0 || u->counter - 1 != current || u->timestamp_ms < d->last_ts)
        return SOTTO_ERR_KT_UPDATE_INVALID;
    rc = sotto_kt_leaf_value(value, u->counter, u->commitment);
    if (rc != SOTTO_OK)
        return rc;
    /* everything that can fail before anything changes */
    if (s == NULL) {
        rc = reserve_one(d);
        if (rc != SOTTO_OK)
            return rc;
    }
    rc = sotto_pt_set_ref(d->tree, u->index, value, &stored);
    if (rc != SOTTO_OK)
        return rc;
    if (s == NULL) {
        place(d->slots, d->mask, d, stored, u->counter);
        d->used++;
    } else {
        s->counter = u->counter;
    }
    d->last_ts = u->timestamp_ms;
    if (prefix_root != NULL)
        return sotto_prefix_tree_root(d->tree, prefix_root);
    return SOTTO_OK;
}

uint64_t sotto_kt_directory_counter(const sotto_kt_directory *d, const uint8_t index[IB])
{
    const struct slot *s;

    if (d == NULL || index == NULL)
        return 0;
    s = find(d, index);
    return s == NULL ? 0 : s->counter;
}

uint64_t sotto_kt_directory_count(const sotto_kt_directory *d)
{
    return d == NULL ? 0 : sotto_prefix_tree_count(d->tree);
}

uint64_t sotto_kt_directory_last_timestamp(const sotto_kt_directory *d)
{
    return d == NULL ? 0 : d->last_ts;
}

size_t sotto_kt_directory_memory(const sotto_kt_directory *d)
{
    if (d == NULL)
        return 0;
    return sizeof *d + (d->mask + 1) * sizeof *d->slots + sotto_prefix_tree_memory(d->tree);
}

int sotto_kt_directory_root(const sotto_kt_directory *d, uint8_t root[SOTTO_PT_HASH_BYTES])
{
    if (d == NULL || root == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return sotto_prefix_tree_root(d->tree, root);
}

int sotto_kt_directory_prove(const sotto_kt_directory *d, const uint8_t index[IB],
                             sotto_pt_proof *proof)
{
    if (d == NULL || index == NULL || proof == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return sotto_prefix_tree_prove(d->tree, index, proof);
}
