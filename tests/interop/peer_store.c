/*
 * tests/interop/peer_store.c -- one party of the libsignal-protocol-c peer:
 * identity, registration id and in-memory stores for all five store types
 * (spec section 5.2), as a client keeps them: every record goes in and out
 * of the store serialised, on every call.
 *
 * Return conventions of libsignal-protocol-c (notes file): load session 1 =
 * found / 0 = not found; load (signed) prekey 0 = found /
 * SG_ERR_INVALID_KEY_ID = missing; delete session 1 = deleted / 0 = not;
 * is_trusted_identity 1 = trusted / 0 = not (trust on first use);
 * get_local_registration_id takes user_data first.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <signal/key_helper.h>

#include "peer.h"

/* A small byte-keyed map: linear search, enough for a test peer. */
typedef struct peer_kv_entry {
    uint8_t *key;
    size_t key_len;
    uint8_t *val;
    size_t val_len;
} peer_kv_entry;

typedef struct peer_kv {
    peer_kv_entry *e;
    size_t n, cap;
} peer_kv;

struct peer_party {
    signal_context *ctx;
    signal_protocol_store_context *store;
    ratchet_identity_key_pair *identity;
    uint32_t registration_id;
    peer_kv sessions, prekeys, signed_prekeys, identities, sender_keys;
};

static peer_kv_entry *kv_find(peer_kv *kv, const uint8_t *key, size_t key_len)
{
    for (size_t i = 0; i < kv->n; i++)
        if (kv->e[i].key_len == key_len && memcmp(kv->e[i].key, key, key_len) == 0)
            return &kv->e[i];
    return NULL;
}

static int kv_put(peer_kv *kv, const uint8_t *key, size_t key_len, const uint8_t *val,
                  size_t val_len)
{
    peer_kv_entry *e = kv_find(kv, key, key_len);
    uint8_t *copy = malloc(val_len ? val_len : 1);

    if (copy == NULL)
        return SG_ERR_NOMEM;
    if (val_len)
        memcpy(copy, val, val_len);
    if (e != NULL) {
        OPENSSL_cleanse(e->val, e->val_len);
        free(e->val);
        e->val = copy;
        e->val_len = val_len;
        return 0;
    }
    if (kv->n == kv->cap) {
        size_t cap = kv->cap ? kv->cap * 2 : 8;
        peer_kv_entry *ne = realloc(kv->e, cap * sizeof(*ne));
        if (ne == NULL) {
            free(copy);
            return SG_ERR_NOMEM;
        }
        kv->e = ne;
        kv->cap = cap;
    }
    e = &kv->e[kv->n];
    e->key = malloc(key_len ? key_len : 1);
    if (e->key == NULL) {
        free(copy);
        return SG_ERR_NOMEM;
    }
    if (key_len)
        memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->val = copy;
    e->val_len = val_len;
    kv->n++;
    return 0;
}

static int kv_del(peer_kv *kv, const uint8_t *key, size_t key_len)
{
    peer_kv_entry *e = kv_find(kv, key, key_len);

    if (e == NULL)
        return 0;
    OPENSSL_cleanse(e->val, e->val_len);
    free(e->val);
    free(e->key);
    *e = kv->e[kv->n - 1];
    kv->n--;
    return 1;
}

static void kv_free(peer_kv *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        OPENSSL_cleanse(kv->e[i].val, kv->e[i].val_len);
        free(kv->e[i].val);
        free(kv->e[i].key);
    }
    free(kv->e);
    memset(kv, 0, sizeof(*kv));
}

/* Map key of an address: name || 0x00 || device id (4 bytes). */
static size_t addr_key(uint8_t *out, size_t cap, const char *name, size_t name_len, int32_t dev)
{
    if (name_len + 5 > cap)
        return 0;
    memcpy(out, name, name_len);
    out[name_len] = 0;
    memcpy(out + name_len + 1, &dev, 4);
    return name_len + 5;
}

/* ---- session store ---- */

static int ss_load(signal_buffer **record, signal_buffer **user_record,
                   const signal_protocol_address *a, void *ud)
{
    peer_party *p = ud;
    uint8_t k[600];
    size_t kl = addr_key(k, sizeof(k), a->name, a->name_len, a->device_id);
    peer_kv_entry *e;

    (void)user_record;
    if (kl == 0)
        return SG_ERR_INVAL;
    e = kv_find(&p->sessions, k, kl);
    if (e == NULL)
        return 0;
    *record = signal_buffer_create(e->val, e->val_len);
    return *record == NULL ? SG_ERR_NOMEM : 1;
}

static int ss_sub_devices(signal_int_list **sessions, const char *name, size_t name_len, void *ud)
{
    peer_party *p = ud;
    signal_int_list *list = signal_int_list_alloc();

    if (list == NULL)
        return SG_ERR_NOMEM;
    for (size_t i = 0; i < p->sessions.n; i++) {
        peer_kv_entry *e = &p->sessions.e[i];
        int32_t dev;
        if (e->key_len != name_len + 5 || memcmp(e->key, name, name_len) != 0)
            continue;
        memcpy(&dev, e->key + name_len + 1, 4);
        if (signal_int_list_push_back(list, dev) != 0) {
            signal_int_list_free(list);
            return SG_ERR_NOMEM;
        }
    }
    *sessions = list;
    return (int)signal_int_list_size(list);
}

static int ss_store(const signal_protocol_address *a, uint8_t *record, size_t len,
                    uint8_t *user_record, size_t user_len, void *ud)
{
    peer_party *p = ud;
    uint8_t k[600];
    size_t kl = addr_key(k, sizeof(k), a->name, a->name_len, a->device_id);

    (void)user_record;
    (void)user_len;
    if (kl == 0)
        return SG_ERR_INVAL;
    return kv_put(&p->sessions, k, kl, record, len);
}

static int ss_contains(const signal_protocol_address *a, void *ud)
{
    peer_party *p = ud;
    uint8_t k[600];
    size_t kl = addr_key(k, sizeof(k), a->name, a->name_len, a->device_id);

    return kl != 0 && kv_find(&p->sessions, k, kl) != NULL;
}

static int ss_delete(const signal_protocol_address *a, void *ud)
{
    peer_party *p = ud;
    uint8_t k[600];
    size_t kl = addr_key(k, sizeof(k), a->name, a->name_len, a->device_id);

    if (kl == 0)
        return SG_ERR_INVAL;
    return kv_del(&p->sessions, k, kl);
}

static int ss_delete_all(const char *name, size_t name_len, void *ud)
{
    peer_party *p = ud;
    int n = 0;

    for (size_t i = 0; i < p->sessions.n;) {
        peer_kv_entry *e = &p->sessions.e[i];
        if (e->key_len == name_len + 5 && memcmp(e->key, name, name_len) == 0) {
            uint8_t k[600];
            memcpy(k, e->key, e->key_len);
            n += kv_del(&p->sessions, k, name_len + 5);
        } else {
            i++;
        }
    }
    return n;
}

/* ---- prekey and signed prekey stores ---- */

static int pk_load_from(peer_kv *kv, signal_buffer **record, uint32_t id)
{
    peer_kv_entry *e = kv_find(kv, (const uint8_t *)&id, sizeof(id));

    if (e == NULL)
        return SG_ERR_INVALID_KEY_ID;
    *record = signal_buffer_create(e->val, e->val_len);
    return *record == NULL ? SG_ERR_NOMEM : 0;
}

static int pk_load(signal_buffer **record, uint32_t id, void *ud)
{
    return pk_load_from(&((peer_party *)ud)->prekeys, record, id);
}

static int pk_store(uint32_t id, uint8_t *record, size_t len, void *ud)
{
    return kv_put(&((peer_party *)ud)->prekeys, (const uint8_t *)&id, sizeof(id), record, len);
}

static int pk_contains(uint32_t id, void *ud)
{
    return kv_find(&((peer_party *)ud)->prekeys, (const uint8_t *)&id, sizeof(id)) != NULL;
}

static int pk_remove(uint32_t id, void *ud)
{
    kv_del(&((peer_party *)ud)->prekeys, (const uint8_t *)&id, sizeof(id));
    return 0;
}

static int spk_load(signal_buffer **record, uint32_t id, void *ud)
{
    return pk_load_from(&((peer_party *)ud)->signed_prekeys, record, id);
}

static int spk_store(uint32_t id, uint8_t *record, size_t len, void *ud)
{
    return kv_put(&((peer_party *)ud)->signed_prekeys, (const uint8_t *)&id, sizeof(id), record,
                  len);
}

static int spk_contains(uint32_t id, void *ud)
{
    return kv_find(&((peer_party *)ud)->signed_prekeys, (const uint8_t *)&id, sizeof(id)) != NULL;
}

static int spk_remove(uint32_t id, void *ud)
{
    kv_del(&((peer_party *)ud)->signed_prekeys, (const uint8_t *)&id, sizeof(id));
    return 0;
}

/* ---- identity store ---- */

static int id_get_pair(signal_buffer **pub, signal_buffer **priv, void *ud)
{
    peer_party *p = ud;
    int rc;

    rc = ec_public_key_serialize(pub, ratchet_identity_key_pair_get_public(p->identity));
    if (rc != 0)
        return rc;
    rc = ec_private_key_serialize(priv, ratchet_identity_key_pair_get_private(p->identity));
    if (rc != 0) {
        signal_buffer_free(*pub);
        *pub = NULL;
    }
    return rc;
}

static int id_get_reg(void *ud, uint32_t *reg)
{
    *reg = ((peer_party *)ud)->registration_id;
    return 0;
}

static int id_save(const signal_protocol_address *a, uint8_t *key, size_t key_len, void *ud)
{
    peer_party *p = ud;
    uint8_t k[600];
    size_t kl = addr_key(k, sizeof(k), a->name, a->name_len, a->device_id);

    if (kl == 0)
        return SG_ERR_INVAL;
    if (key == NULL) {
        kv_del(&p->identities, k, kl);
        return 0;
    }
    return kv_put(&p->identities, k, kl, key, key_len);
}

static int id_trusted(const signal_protocol_address *a, uint8_t *key, size_t key_len, void *ud)
{
    peer_party *p = ud;
    uint8_t k[600];
    size_t kl = addr_key(k, sizeof(k), a->name, a->name_len, a->device_id);
    peer_kv_entry *e;

    if (kl == 0)
        return SG_ERR_INVAL;
    e = kv_find(&p->identities, k, kl);
    if (e == NULL)
        return 1; /* trust on first use */
    return e->val_len == key_len && CRYPTO_memcmp(e->val, key, key_len) == 0;
}

/* ---- sender key store ---- */

static size_t sk_key(uint8_t *out, size_t cap, const signal_protocol_sender_key_name *n)
{
    size_t al;

    if (n->group_id_len + 1 > cap)
        return 0;
    memcpy(out, n->group_id, n->group_id_len);
    out[n->group_id_len] = 0;
    al = addr_key(out + n->group_id_len + 1, cap - n->group_id_len - 1, n->sender.name,
                  n->sender.name_len, n->sender.device_id);
    return al == 0 ? 0 : n->group_id_len + 1 + al;
}

static int sk_store(const signal_protocol_sender_key_name *n, uint8_t *record, size_t len,
                    uint8_t *user_record, size_t user_len, void *ud)
{
    uint8_t k[1200];
    size_t kl = sk_key(k, sizeof(k), n);

    (void)user_record;
    (void)user_len;
    if (kl == 0)
        return SG_ERR_INVAL;
    return kv_put(&((peer_party *)ud)->sender_keys, k, kl, record, len);
}

static int sk_load(signal_buffer **record, signal_buffer **user_record,
                   const signal_protocol_sender_key_name *n, void *ud)
{
    uint8_t k[1200];
    size_t kl = sk_key(k, sizeof(k), n);
    peer_kv_entry *e;

    (void)user_record;
    if (kl == 0)
        return SG_ERR_INVAL;
    e = kv_find(&((peer_party *)ud)->sender_keys, k, kl);
    if (e == NULL)
        return 0;
    *record = signal_buffer_create(e->val, e->val_len);
    return *record == NULL ? SG_ERR_NOMEM : 1;
}

/* ---- party ---- */

int peer_party_regenerate_identity(peer_party *p)
{
    ratchet_identity_key_pair *kp = NULL;
    uint32_t reg = 0;
    int rc;

    rc = signal_protocol_key_helper_generate_identity_key_pair(&kp, p->ctx);
    if (rc != 0)
        return rc;
    rc = signal_protocol_key_helper_generate_registration_id(&reg, 0, p->ctx);
    if (rc != 0) {
        SIGNAL_UNREF(kp);
        return rc;
    }
    if (p->identity != NULL)
        SIGNAL_UNREF(p->identity);
    p->identity = kp;
    p->registration_id = reg;
    return 0;
}

int peer_party_new(peer_party **out, signal_context *ctx)
{
    peer_party *p = calloc(1, sizeof(*p));
    signal_protocol_session_store ss;
    signal_protocol_pre_key_store pks;
    signal_protocol_signed_pre_key_store spks;
    signal_protocol_identity_key_store ids;
    signal_protocol_sender_key_store sks;
    int rc;

    *out = NULL;
    if (p == NULL)
        return SG_ERR_NOMEM;
    p->ctx = ctx;
    rc = peer_party_regenerate_identity(p);
    if (rc != 0)
        goto out;
    rc = signal_protocol_store_context_create(&p->store, ctx);
    if (rc != 0)
        goto out;

    memset(&ss, 0, sizeof(ss));
    ss.load_session_func = ss_load;
    ss.get_sub_device_sessions_func = ss_sub_devices;
    ss.store_session_func = ss_store;
    ss.contains_session_func = ss_contains;
    ss.delete_session_func = ss_delete;
    ss.delete_all_sessions_func = ss_delete_all;
    ss.user_data = p;

    memset(&pks, 0, sizeof(pks));
    pks.load_pre_key = pk_load;
    pks.store_pre_key = pk_store;
    pks.contains_pre_key = pk_contains;
    pks.remove_pre_key = pk_remove;
    pks.user_data = p;

    memset(&spks, 0, sizeof(spks));
    spks.load_signed_pre_key = spk_load;
    spks.store_signed_pre_key = spk_store;
    spks.contains_signed_pre_key = spk_contains;
    spks.remove_signed_pre_key = spk_remove;
    spks.user_data = p;

    memset(&ids, 0, sizeof(ids));
    ids.get_identity_key_pair = id_get_pair;
    ids.get_local_registration_id = id_get_reg;
    ids.save_identity = id_save;
    ids.is_trusted_identity = id_trusted;
    ids.user_data = p;

    memset(&sks, 0, sizeof(sks));
    sks.store_sender_key = sk_store;
    sks.load_sender_key = sk_load;
    sks.user_data = p;

    if ((rc = signal_protocol_store_context_set_session_store(p->store, &ss)) != 0 ||
        (rc = signal_protocol_store_context_set_pre_key_store(p->store, &pks)) != 0 ||
        (rc = signal_protocol_store_context_set_signed_pre_key_store(p->store, &spks)) != 0 ||
        (rc = signal_protocol_store_context_set_identity_key_store(p->store, &ids)) != 0 ||
        (rc = signal_protocol_store_context_set_sender_key_store(p->store, &sks)) != 0)
        goto out;
    *out = p;
    p = NULL;
out:
    peer_party_free(p);
    return rc;
}

void peer_party_free(peer_party *p)
{
    if (p == NULL)
        return;
    if (p->store != NULL)
        signal_protocol_store_context_destroy(p->store);
    if (p->identity != NULL)
        SIGNAL_UNREF(p->identity);
    kv_free(&p->sessions);
    kv_free(&p->prekeys);
    kv_free(&p->signed_prekeys);
    kv_free(&p->identities);
    kv_free(&p->sender_keys);
    free(p);
}

signal_protocol_store_context *peer_party_store(peer_party *p)
{
    return p->store;
}

ratchet_identity_key_pair *peer_party_identity(peer_party *p)
{
    return p->identity;
}

uint32_t peer_party_registration_id(peer_party *p)
{
    return p->registration_id;
}

size_t peer_party_prekey_count(peer_party *p)
{
    return p->prekeys.n;
}
