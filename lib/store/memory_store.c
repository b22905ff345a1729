/*
 * lib/store/memory_store.c -- the storage interfaces of sotto/store.h in
 * process memory (see sotto/memory_store.h for the policies).
 *
 * Every table is one small chained hash map from a byte-string key to a
 * byte-string value, hashed with SipHash (crypto_shorthash) under a random
 * per-store key so a peer choosing names cannot degrade lookups. Keys:
 *   address          u32be name_len || name || u32be device_id
 *   sender key name  u32be group_id_len || group_id || address key
 *   prekey id        u32be id
 * Values are copies of the records; a replaced value reuses its buffer when
 * it fits, which keeps the store-after-every-message pattern of the session
 * and group ciphers cheap. Every value is wiped before it is freed or
 * overwritten.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "sotto/memory_store.h"

#define MS_INITIAL_BUCKETS 64u
#define MS_ADDR_KEY_MAX (4 + SOTTO_MAX_NAME_BYTES + 4)
#define MS_SKN_KEY_MAX (4 + SOTTO_MAX_NAME_BYTES + MS_ADDR_KEY_MAX)

typedef struct ms_entry {
    struct ms_entry *next;
    uint64_t hash;
    uint8_t *key;
    size_t key_len;
    uint8_t *val;
    size_t val_len;
    size_t val_cap;
} ms_entry;

typedef struct ms_map {
    ms_entry **buckets;
    size_t nbuckets;
    size_t count;
    const uint8_t *hash_key; /* crypto_shorthash_KEYBYTES, owned by the store */
} ms_map;

struct sotto_memory_store {
    sotto_protocol_store iface;
    sotto_key_pair *identity; /* sodium_malloc()ed */
    uint32_t registration_id;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    ms_map sessions;
    ms_map prekeys;        /* id -> sotto_prekey */
    ms_map prekey_used;    /* id -> public key of every id ever stored */
    ms_map signed_prekeys; /* id -> sotto_signed_prekey */
    ms_map identities;     /* address -> public key */
    ms_map sender_keys;
};

/* ---- hash map ----------------------------------------------------------- */

static uint64_t ms_hash(const ms_map *m, const uint8_t *key, size_t key_len)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;
    crypto_shorthash(h, key, key_len, m->hash_key);
    for (size_t i = 0; i < sizeof h; i++)
        v = (v << 8) | h[i];
    return v;
}

static int ms_map_init(ms_map *m, const uint8_t *hash_key)
{
    m->buckets = calloc(MS_INITIAL_BUCKETS, sizeof *m->buckets);
    if (m->buckets == NULL)
        return SOTTO_ERR_NOMEM;
    m->nbuckets = MS_INITIAL_BUCKETS;
    m->count = 0;
    m->hash_key = hash_key;
    return SOTTO_OK;
}

static void ms_entry_free(ms_entry *e)
{
    if (e == NULL)
        return;
    if (e->val != NULL) {
        sodium_memzero(e->val, e->val_cap);
        free(e->val);
    }
    free(e->key);
    free(e);
}

static void ms_map_clear(ms_map *m)
{
    if (m->buckets == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        ms_entry *e = m->buckets[i];
        while (e != NULL) {
            ms_entry *next = e->next;
            ms_entry_free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

static ms_entry *ms_map_find(const ms_map *m, const uint8_t *key, size_t key_len)
{
    uint64_t h = ms_hash(m, key, key_len);
    for (ms_entry *e = m->buckets[h % m->nbuckets]; e != NULL; e = e->next) {
        if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return e;
    }
    return NULL;
}

/* Doubles the bucket array; on allocation failure the map stays as it was. */
static void ms_map_grow(ms_map *m)
{
    size_t n = m->nbuckets * 2;
    ms_entry **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        ms_entry *e = m->buckets[i];
        while (e != NULL) {
            ms_entry *next = e->next;
            e->next = b[e->hash % n];
            b[e->hash % n] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

/* Inserts or replaces key -> copy of val. */
static int ms_map_put(ms_map *m, const uint8_t *key, size_t key_len, const uint8_t *val,
                      size_t val_len)
{
    int ret = SOTTO_ERR_NOMEM;
    ms_entry *e = ms_map_find(m, key, key_len);
    ms_entry *fresh = NULL;
    uint8_t *buf = NULL;

    if (e != NULL) {
        if (val_len <= e->val_cap && val_len > 0) {
            if (e->val_len > val_len)
                sodium_memzero(e->val + val_len, e->val_len - val_len);
            memcpy(e->val, val, val_len);
            e->val_len = val_len;
            ret = SOTTO_OK;
            goto out;
        }
        buf = malloc(val_len > 0 ? val_len : 1);
        if (buf == NULL)
            goto out;
        memcpy(buf, val, val_len);
        sodium_memzero(e->val, e->val_cap);
        free(e->val);
        e->val = buf;
        e->val_len = val_len;
        e->val_cap = val_len > 0 ? val_len : 1;
        buf = NULL;
        ret = SOTTO_OK;
        goto out;
    }

    fresh = calloc(1, sizeof *fresh);
    if (fresh == NULL)
        goto out;
    fresh->key = malloc(key_len > 0 ? key_len : 1);
    fresh->val = malloc(val_len > 0 ? val_len : 1);
    if (fresh->key == NULL || fresh->val == NULL)
        goto out;
    memcpy(fresh->key, key, key_len);
    fresh->key_len = key_len;
    memcpy(fresh->val, val, val_len);
    fresh->val_len = val_len;
    fresh->val_cap = val_len > 0 ? val_len : 1;
    fresh->hash = ms_hash(m, key, key_len);
    if (m->count >= m->nbuckets)
        ms_map_grow(m);
    fresh->next = m->buckets[fresh->hash % m->nbuckets];
    m->buckets[fresh->hash % m->nbuckets] = fresh;
    m->count++;
    fresh = NULL;
    ret = SOTTO_OK;
out:
    ms_entry_free(fresh);
    return ret;
}

/* Removes key; SOTTO_ERR_NOT_FOUND when absent. */
static int ms_map_remove(ms_map *m, const uint8_t *key, size_t key_len)
{
    uint64_t h = ms_hash(m, key, key_len);
    ms_entry **pp = &m->buckets[h % m->nbuckets];
    for (; *pp != NULL; pp = &(*pp)->next) {
        ms_entry *e = *pp;
        if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0) {
            *pp = e->next;
            ms_entry_free(e);
            m->count--;
            return SOTTO_OK;
        }
    }
    return SOTTO_ERR_NOT_FOUND;
}

/* A malloc()ed copy of an entry's value for a load callback. */
static int ms_copy_out(const ms_entry *e, uint8_t **record, size_t *len)
{
    uint8_t *p = malloc(e->val_len > 0 ? e->val_len : 1);
    if (p == NULL)
        return SOTTO_ERR_NOMEM;
    memcpy(p, e->val, e->val_len);
    *record = p;
    *len = e->val_len;
    return SOTTO_OK;
}

/* ---- keys --------------------------------------------------------------- */

static int ms_addr_key(const sotto_address *addr, uint8_t *key, size_t cap, size_t *key_len)
{
    sotto_wbuf w;
    if (addr == NULL || (addr->name == NULL && addr->name_len > 0) ||
        addr->name_len > SOTTO_MAX_NAME_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sotto_wbuf_init_fixed(&w, key, cap);
    sotto_wbuf_put_lp32(&w, addr->name, addr->name_len);
    sotto_wbuf_put_u32be(&w, addr->device_id);
    if (sotto_wbuf_error(&w) != SOTTO_OK)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *key_len = w.len;
    return SOTTO_OK;
}

static int ms_skn_key(const sotto_sender_key_name *n, uint8_t *key, size_t cap, size_t *key_len)
{
    sotto_wbuf w;
    size_t alen = 0;
    int ret;
    if (n == NULL || (n->group_id == NULL && n->group_id_len > 0) ||
        n->group_id_len > SOTTO_MAX_NAME_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sotto_wbuf_init_fixed(&w, key, cap);
    sotto_wbuf_put_lp32(&w, n->group_id, n->group_id_len);
    if (sotto_wbuf_error(&w) != SOTTO_OK)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ret = ms_addr_key(&n->sender, key + w.len, cap - w.len, &alen);
    if (ret != SOTTO_OK)
        return ret;
    *key_len = w.len + alen;
    return SOTTO_OK;
}

static void ms_id_key(uint32_t id, uint8_t key[4])
{
    key[0] = (uint8_t)(id >> 24);
    key[1] = (uint8_t)(id >> 16);
    key[2] = (uint8_t)(id >> 8);
    key[3] = (uint8_t)id;
}

static int ms_check_record(const uint8_t *record, size_t len)
{
    if (record == NULL || len == 0 || len > SOTTO_MAX_RECORD_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return SOTTO_OK;
}

/* ---- session store ------------------------------------------------------ */

static int ms_session_load(void *ud, const sotto_address *addr, uint8_t **record, size_t *len)
{
    sotto_memory_store *s = ud;
    uint8_t key[MS_ADDR_KEY_MAX];
    size_t key_len;
    int ret = ms_addr_key(addr, key, sizeof key, &key_len);
    if (ret != SOTTO_OK)
        return ret;
    if (record == NULL || len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    const ms_entry *e = ms_map_find(&s->sessions, key, key_len);
    if (e == NULL)
        return SOTTO_ERR_NOT_FOUND;
    return ms_copy_out(e, record, len);
}

static int ms_session_store(void *ud, const sotto_address *addr, const uint8_t *record, size_t len)
{
    sotto_memory_store *s = ud;
    uint8_t key[MS_ADDR_KEY_MAX];
    size_t key_len;
    int ret = ms_addr_key(addr, key, sizeof key, &key_len);
    if (ret != SOTTO_OK)
        return ret;
    ret = ms_check_record(record, len);
    if (ret != SOTTO_OK)
        return ret;
    return ms_map_put(&s->sessions, key, key_len, record, len);
}

static int ms_session_remove(void *ud, const sotto_address *addr)
{
    sotto_memory_store *s = ud;
    uint8_t key[MS_ADDR_KEY_MAX];
    size_t key_len;
    int ret = ms_addr_key(addr, key, sizeof key, &key_len);
    if (ret != SOTTO_OK)
        return ret;
    return ms_map_remove(&s->sessions, key, key_len);
}

static int ms_session_device_ids(void *ud, const char *name, size_t name_len, uint32_t **ids,
                                 size_t *count)
{
    sotto_memory_store *s = ud;
    uint32_t *out = NULL;
    size_t n = 0, cap = 0;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;

    if (ids == NULL || count == NULL || (name == NULL && name_len > 0) ||
        name_len > SOTTO_MAX_NAME_BYTES)
        goto out;
    for (size_t i = 0; i < s->sessions.nbuckets; i++) {
        for (const ms_entry *e = s->sessions.buckets[i]; e != NULL; e = e->next) {
            sotto_rbuf r;
            const uint8_t *nm;
            size_t nm_len;
            uint32_t dev;
            sotto_rbuf_init(&r, e->key, e->key_len);
            if (sotto_rbuf_get_lp32(&r, SOTTO_MAX_NAME_BYTES, &nm, &nm_len) != SOTTO_OK ||
                sotto_rbuf_get_u32be(&r, &dev) != SOTTO_OK) {
                ret = SOTTO_ERR_INTERNAL;
                goto out;
            }
            if (nm_len != name_len || (name_len > 0 && memcmp(nm, name, name_len) != 0))
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                uint32_t *p = realloc(out, ncap * sizeof *p);
                if (p == NULL) {
                    ret = SOTTO_ERR_NOMEM;
                    goto out;
                }
                out = p;
                cap = ncap;
            }
            out[n++] = dev;
        }
    }
    /* Ascending order, so callers get a stable list. */
    for (size_t i = 1; i < n; i++) {
        uint32_t v = out[i];
        size_t j = i;
        for (; j > 0 && out[j - 1] > v; j--)
            out[j] = out[j - 1];
        out[j] = v;
    }
    *ids = n > 0 ? out : NULL;
    *count = n;
    if (n > 0)
        out = NULL;
    ret = SOTTO_OK;
out:
    free(out);
    return ret;
}

/* ---- prekey stores ------------------------------------------------------ */

/* Copies the fixed-size value stored under `id` in `map` into out. */
static int ms_load_by_id(const ms_map *map, uint32_t id, void *out, size_t size)
{
    uint8_t key[4];
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ms_id_key(id, key);
    const ms_entry *e = ms_map_find(map, key, sizeof key);
    if (e == NULL)
        return SOTTO_ERR_NOT_FOUND;
    if (e->val_len != size)
        return SOTTO_ERR_INTERNAL;
    memcpy(out, e->val, size);
    return SOTTO_OK;
}

static int ms_prekey_load(void *ud, uint32_t id, sotto_prekey *out)
{
    sotto_memory_store *s = ud;
    return ms_load_by_id(&s->prekeys, id, out, sizeof *out);
}

static int ms_prekey_store(void *ud, const sotto_prekey *prekey)
{
    sotto_memory_store *s = ud;
    uint8_t key[4];
    int ret;
    if (prekey == NULL || prekey->key.pub.bytes[0] != SOTTO_KEY_TYPE_DJB)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ms_id_key(prekey->id, key);
    const ms_entry *used = ms_map_find(&s->prekey_used, key, sizeof key);
    if (used != NULL) {
        if (used->val_len != SOTTO_PUBLIC_KEY_BYTES ||
            sodium_memcmp(used->val, prekey->key.pub.bytes, SOTTO_PUBLIC_KEY_BYTES) != 0)
            return SOTTO_ERR_STORE;
        /* Removed means consumed: a one-time prekey never comes back, not
         * even the same key (it would let a second session use it). */
        if (ms_map_find(&s->prekeys, key, sizeof key) == NULL)
            return SOTTO_ERR_STORE;
    } else {
        ret = ms_map_put(&s->prekey_used, key, sizeof key, prekey->key.pub.bytes,
                         SOTTO_PUBLIC_KEY_BYTES);
        if (ret != SOTTO_OK)
            return ret;
    }
    return ms_map_put(&s->prekeys, key, sizeof key, (const uint8_t *)prekey, sizeof *prekey);
}

static int ms_prekey_remove(void *ud, uint32_t id)
{
    sotto_memory_store *s = ud;
    uint8_t key[4];
    ms_id_key(id, key);
    return ms_map_remove(&s->prekeys, key, sizeof key);
}

static int ms_spk_load(void *ud, uint32_t id, sotto_signed_prekey *out)
{
    sotto_memory_store *s = ud;
    return ms_load_by_id(&s->signed_prekeys, id, out, sizeof *out);
}

static int ms_spk_store(void *ud, const sotto_signed_prekey *spk)
{
    sotto_memory_store *s = ud;
    uint8_t key[4];
    if (spk == NULL || spk->key.pub.bytes[0] != SOTTO_KEY_TYPE_DJB)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ms_id_key(spk->id, key);
    return ms_map_put(&s->signed_prekeys, key, sizeof key, (const uint8_t *)spk, sizeof *spk);
}

static int ms_spk_remove(void *ud, uint32_t id)
{
    sotto_memory_store *s = ud;
    uint8_t key[4];
    ms_id_key(id, key);
    return ms_map_remove(&s->signed_prekeys, key, sizeof key);
}

/* ---- identity store ----------------------------------------------------- */

static int ms_get_identity_key_pair(void *ud, sotto_key_pair *out)
{
    sotto_memory_store *s = ud;
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memcpy(out, s->identity, sizeof *out);
    return SOTTO_OK;
}

static int ms_get_local_registration_id(void *ud, uint32_t *out)
{
    sotto_memory_store *s = ud;
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = s->registration_id;
    return SOTTO_OK;
}

static int ms_identity_save(void *ud, const sotto_address *addr, const sotto_public_key *pub)
{
    sotto_memory_store *s = ud;
    uint8_t key[MS_ADDR_KEY_MAX];
    size_t key_len;
    int ret = ms_addr_key(addr, key, sizeof key, &key_len);
    if (ret != SOTTO_OK)
        return ret;
    if (pub == NULL || pub->bytes[0] != SOTTO_KEY_TYPE_DJB)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return ms_map_put(&s->identities, key, key_len, pub->bytes, SOTTO_PUBLIC_KEY_BYTES);
}

static int ms_identity_is_trusted(void *ud, const sotto_address *addr, const sotto_public_key *pub)
{
    sotto_memory_store *s = ud;
    uint8_t key[MS_ADDR_KEY_MAX];
    size_t key_len;
    int ret = ms_addr_key(addr, key, sizeof key, &key_len);
    if (ret != SOTTO_OK)
        return ret;
    if (pub == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    const ms_entry *e = ms_map_find(&s->identities, key, key_len);
    if (e == NULL)
        return SOTTO_TRUSTED; /* trust on first use */
    if (e->val_len == SOTTO_PUBLIC_KEY_BYTES &&
        sodium_memcmp(e->val, pub->bytes, SOTTO_PUBLIC_KEY_BYTES) == 0)
        return SOTTO_TRUSTED;
    return SOTTO_UNTRUSTED;
}

static int ms_identity_get(void *ud, const sotto_address *addr, sotto_public_key *out)
{
    sotto_memory_store *s = ud;
    uint8_t key[MS_ADDR_KEY_MAX];
    size_t key_len;
    int ret = ms_addr_key(addr, key, sizeof key, &key_len);
    if (ret != SOTTO_OK)
        return ret;
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    const ms_entry *e = ms_map_find(&s->identities, key, key_len);
    if (e == NULL)
        return SOTTO_ERR_NOT_FOUND;
    if (e->val_len != SOTTO_PUBLIC_KEY_BYTES)
        return SOTTO_ERR_INTERNAL;
    memcpy(out->bytes, e->val, SOTTO_PUBLIC_KEY_BYTES);
    return SOTTO_OK;
}

/* ---- sender key store --------------------------------------------------- */

static int ms_sender_key_load(void *ud, const sotto_sender_key_name *name, uint8_t **record,
                              size_t *len)
{
    sotto_memory_store *s = ud;
    uint8_t key[MS_SKN_KEY_MAX];
    size_t key_len;
    int ret = ms_skn_key(name, key, sizeof key, &key_len);
    if (ret != SOTTO_OK)
        return ret;
    if (record == NULL || len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    const ms_entry *e = ms_map_find(&s->sender_keys, key, key_len);
    if (e == NULL)
        return SOTTO_ERR_NOT_FOUND;
    return ms_copy_out(e, record, len);
}

static int ms_sender_key_store(void *ud, const sotto_sender_key_name *name, const uint8_t *record,
                               size_t len)
{
    sotto_memory_store *s = ud;
    uint8_t key[MS_SKN_KEY_MAX];
    size_t key_len;
    int ret = ms_skn_key(name, key, sizeof key, &key_len);
    if (ret != SOTTO_OK)
        return ret;
    ret = ms_check_record(record, len);
    if (ret != SOTTO_OK)
        return ret;
    return ms_map_put(&s->sender_keys, key, key_len, record, len);
}

/* ---- lifetime ----------------------------------------------------------- */

int sotto_memory_store_new(const sotto_key_pair *identity, uint32_t registration_id,
                           sotto_memory_store **out)
{
    sotto_memory_store *s = NULL;
    int ret = SOTTO_ERR_INVALID_ARGUMENT;

    if (identity == NULL || out == NULL)
        goto out;
    ret = SOTTO_ERR_CRYPTO;
    if (sodium_init() < 0)
        goto out;
    ret = SOTTO_ERR_NOMEM;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto out;
    s->identity = sodium_malloc(sizeof *s->identity);
    if (s->identity == NULL)
        goto out;
    memcpy(s->identity, identity, sizeof *s->identity);
    s->registration_id = registration_id;
    randombytes_buf(s->hash_key, sizeof s->hash_key);
    if (ms_map_init(&s->sessions, s->hash_key) != SOTTO_OK ||
        ms_map_init(&s->prekeys, s->hash_key) != SOTTO_OK ||
        ms_map_init(&s->prekey_used, s->hash_key) != SOTTO_OK ||
        ms_map_init(&s->signed_prekeys, s->hash_key) != SOTTO_OK ||
        ms_map_init(&s->identities, s->hash_key) != SOTTO_OK ||
        ms_map_init(&s->sender_keys, s->hash_key) != SOTTO_OK)
        goto out;

    s->iface.session = (sotto_session_store){ms_session_load, ms_session_store, ms_session_remove,
                                             ms_session_device_ids, s};
    s->iface.prekey = (sotto_prekey_store){ms_prekey_load, ms_prekey_store, ms_prekey_remove, s};
    s->iface.signed_prekey =
        (sotto_signed_prekey_store){ms_spk_load, ms_spk_store, ms_spk_remove, s};
    s->iface.identity =
        (sotto_identity_store){ms_get_identity_key_pair, ms_get_local_registration_id,
                               ms_identity_save,         ms_identity_is_trusted,
                               ms_identity_get,          s};
    s->iface.sender_key = (sotto_sender_key_store){ms_sender_key_load, ms_sender_key_store, s};
    *out = s;
    s = NULL;
    ret = SOTTO_OK;
out:
    sotto_memory_store_free(s);
    return ret;
}

void sotto_memory_store_free(sotto_memory_store *s)
{
    if (s == NULL)
        return;
    ms_map_clear(&s->sessions);
    ms_map_clear(&s->prekeys);
    ms_map_clear(&s->prekey_used);
    ms_map_clear(&s->signed_prekeys);
    ms_map_clear(&s->identities);
    ms_map_clear(&s->sender_keys);
    if (s->identity != NULL)
        sodium_free(s->identity); /* sodium_free wipes */
    sodium_memzero(s, sizeof *s);
    free(s);
}

sotto_protocol_store *sotto_memory_store_protocol(sotto_memory_store *s)
{
    return s != NULL ? &s->iface : NULL;
}

size_t sotto_memory_store_prekey_count(const sotto_memory_store *s)
{
    return s != NULL ? s->prekeys.count : 0;
}

size_t sotto_memory_store_session_count(const sotto_memory_store *s)
{
    return s != NULL ? s->sessions.count : 0;
}
