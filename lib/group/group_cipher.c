/*
 * Sender Keys: own key creation and distribution, SKDM processing, group
 * encrypt and decrypt (spec 1.5, 1.6, 2.5, 2.7; API in sotto/group.h).
 *
 * Every operation loads the record, decodes it into a private sotto_skr,
 * works on that copy and stores the re-encoded record only when the whole
 * operation succeeded. Any failure wipes the copy and leaves the store as it
 * was.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "group/sender_key_message.h"
#include "group/sender_key_record.h"
#include "keys/xeddsa.h"
#include "sotto/group.h"

#define SK_MESSAGE_KEY_BYTES 48 /* HKDF "WhisperGroup" output: IV[16] || key[32] */

static const uint8_t whisper_group[] = {'W', 'h', 'i', 's', 'p', 'e', 'r', 'G', 'r', 'o', 'u', 'p'};

/* ---- chain (spec 2.7) --------------------------------------------------- */

/* seed = HMAC(ck, 0x01); ck = HMAC(ck, 0x02). `seed` may be NULL. */
static int chain_step(uint8_t ck[SOTTO_SENDER_CHAIN_KEY_BYTES],
                      uint8_t seed[SOTTO_SENDER_SEED_BYTES])
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t next[SOTTO_SENDER_CHAIN_KEY_BYTES];
    int ret;
    if (seed != NULL &&
        (ret = sotto_hmac_sha256(seed, ck, SOTTO_SENDER_CHAIN_KEY_BYTES, &one, 1)) != SOTTO_OK)
        goto out;
    if ((ret = sotto_hmac_sha256(next, ck, SOTTO_SENDER_CHAIN_KEY_BYTES, &two, 1)) != SOTTO_OK)
        goto out;
    memcpy(ck, next, sizeof next);
out:
    sodium_memzero(next, sizeof next);
    return ret;
}

/* IV = [0:16], cipher key = [16:48] of HKDF(seed, zero salt, "WhisperGroup"). */
static int message_key(uint8_t mk[SK_MESSAGE_KEY_BYTES],
                       const uint8_t seed[SOTTO_SENDER_SEED_BYTES])
{
    return sotto_hkdf_sha256(mk, SK_MESSAGE_KEY_BYTES, NULL, 0, seed, SOTTO_SENDER_SEED_BYTES,
                             whisper_group, sizeof whisper_group);
}

/* ---- record I/O --------------------------------------------------------- */

static int check_name(const sotto_sender_key_name *name)
{
    if (name == NULL || (name->group_id == NULL && name->group_id_len > 0) ||
        name->group_id_len > SOTTO_MAX_NAME_BYTES ||
        (name->sender.name == NULL && name->sender.name_len > 0) ||
        name->sender.name_len > SOTTO_MAX_NAME_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return SOTTO_OK;
}

static int check_store(const sotto_sender_key_store *store)
{
    if (store == NULL || store->load == NULL || store->store == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    return SOTTO_OK;
}

/* Loads and decodes; a missing record gives SOTTO_ERR_NOT_FOUND and an
 * empty `rec`. */
static int record_load(const sotto_sender_key_store *store, const sotto_sender_key_name *name,
                       sotto_skr *rec)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    int ret;

    sotto_skr_init(rec);
    ret = store->load(store->user_data, name, &raw, &raw_len);
    if (ret != SOTTO_OK)
        goto out;
    ret = sotto_skr_decode(rec, raw, raw_len);
out:
    if (raw != NULL) {
        sodium_memzero(raw, raw_len);
        free(raw);
    }
    if (ret > 0)
        ret = SOTTO_ERR_STORE; /* a store broke the 0 / negative convention */
    return ret;
}

static int record_save(const sotto_sender_key_store *store, const sotto_sender_key_name *name,
                       const sotto_skr *rec)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    int ret = sotto_skr_encode(rec, &raw, &raw_len);
    if (ret != SOTTO_OK)
        return ret;
    ret = store->store(store->user_data, name, raw, raw_len);
    if (ret > 0)
        ret = SOTTO_ERR_STORE;
    sodium_memzero(raw, raw_len);
    free(raw);
    return ret;
}

/* ---- own sender key ----------------------------------------------------- */

/* Adds a new own state: random key id in [0, 2^31 - 1), random chain key at
 * iteration 0, fresh signing key pair. */
static int create_own_state(sotto_skr *rec)
{
    sotto_key_pair signing;
    uint8_t ck[SOTTO_SENDER_CHAIN_KEY_BYTES];
    uint32_t key_id;
    int ret;

    do {
        key_id = sotto_random_u32() & 0x7FFFFFFFu;
    } while (key_id > SOTTO_SENDER_KEY_MAX_ID);
    sotto_random_buf(ck, sizeof ck);
    if ((ret = sotto_key_pair_generate(&signing)) != SOTTO_OK)
        goto out;
    (void)sotto_skr_add_state(rec, key_id, 0, ck, &signing.pub, signing.priv);
out:
    sotto_key_pair_wipe(&signing);
    sodium_memzero(ck, sizeof ck);
    return ret;
}

static int own_distribution(const sotto_sender_key_store *store, const sotto_sender_key_name *name,
                            bool rotate, uint8_t **skdm, size_t *skdm_len)
{
    sotto_skr rec;
    sotto_sender_key_distribution d;
    bool created = false;
    int ret;

    sotto_skr_init(&rec);
    memset(&d, 0, sizeof d);
    if ((ret = check_store(store)) != SOTTO_OK || (ret = check_name(name)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_ARGUMENT;
    if (skdm == NULL || skdm_len == NULL)
        goto out;
    ret = record_load(store, name, &rec);
    if (ret != SOTTO_OK && ret != SOTTO_ERR_NOT_FOUND)
        goto out;
    if (rotate || rec.count == 0 || !rec.states[0].has_private) {
        if ((ret = create_own_state(&rec)) != SOTTO_OK)
            goto out;
        created = true;
    }
    d.key_id = rec.states[0].key_id;
    d.iteration = rec.states[0].iteration;
    memcpy(d.chain_key, rec.states[0].chain_key, sizeof d.chain_key);
    d.signing_key = rec.states[0].signing_pub;
    if (created && (ret = record_save(store, name, &rec)) != SOTTO_OK)
        goto out;
    ret = sotto_sender_key_distribution_encode(&d, skdm, skdm_len);
out:
    sodium_memzero(&d, sizeof d);
    sotto_skr_wipe(&rec);
    return ret;
}

int sotto_group_create_distribution(const sotto_sender_key_store *store,
                                    const sotto_sender_key_name *name, uint8_t **skdm,
                                    size_t *skdm_len)
{
    return own_distribution(store, name, false, skdm, skdm_len);
}

int sotto_group_rotate(const sotto_sender_key_store *store, const sotto_sender_key_name *name,
                       uint8_t **skdm, size_t *skdm_len)
{
    return own_distribution(store, name, true, skdm, skdm_len);
}

/* ---- receiving a sender key --------------------------------------------- */

int sotto_group_process_distribution(const sotto_sender_key_store *store,
                                     const sotto_sender_key_name *name, const uint8_t *skdm,
                                     size_t skdm_len)
{
    sotto_skr rec;
    sotto_sender_key_distribution d;
    int ret;

    sotto_skr_init(&rec);
    memset(&d, 0, sizeof d);
    if ((ret = check_store(store)) != SOTTO_OK || (ret = check_name(name)) != SOTTO_OK)
        goto out;
    if ((ret = sotto_sender_key_distribution_decode(&d, skdm, skdm_len)) != SOTTO_OK)
        goto out;
    ret = record_load(store, name, &rec);
    if (ret != SOTTO_OK && ret != SOTTO_ERR_NOT_FOUND)
        goto out;
    /* A record holding a signing private key is our own sender key: an SKDM
     * processed under our own name is a caller error, and accepting it could
     * replace our sending state (our key id is public in every SKM). */
    ret = SOTTO_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < rec.count; i++) {
        if (rec.states[i].has_private)
            goto out;
    }

    for (size_t i = 0; i < rec.count; i++) {
        sotto_skr_state *st = &rec.states[i];
        if (st->key_id != d.key_id)
            continue;
        if (sodium_memcmp(st->signing_pub.bytes, d.signing_key.bytes, SOTTO_PUBLIC_KEY_BYTES) !=
            0) {
            sotto_skr_remove(&rec, i); /* a different key under this id: replace */
            break;
        }
        /* The same sender key again: only ever move forwards. Stored message
         * keys all lie below the old iteration, so they stay valid. */
        ret = SOTTO_OK;
        if (d.iteration <= st->iteration)
            goto out;
        memcpy(st->chain_key, d.chain_key, sizeof st->chain_key);
        st->iteration = d.iteration;
        sotto_skr_promote(&rec, i);
        ret = record_save(store, name, &rec);
        goto out;
    }
    (void)sotto_skr_add_state(&rec, d.key_id, d.iteration, d.chain_key, &d.signing_key, NULL);
    ret = record_save(store, name, &rec);
out:
    sodium_memzero(&d, sizeof d);
    sotto_skr_wipe(&rec);
    return ret;
}

/* ---- encrypt ------------------------------------------------------------ */

int sotto_group_encrypt(const sotto_sender_key_store *store, const sotto_sender_key_name *name,
                        const uint8_t *pt, size_t pt_len, uint8_t **msg, size_t *msg_len)
{
    sotto_skr rec;
    sotto_skr_state *st;
    uint8_t seed[SOTTO_SENDER_SEED_BYTES];
    uint8_t mk[SK_MESSAGE_KEY_BYTES];
    uint8_t *ct = NULL;
    size_t ct_cap = 0, ct_len = 0;
    uint8_t *out = NULL;
    size_t out_len = 0;
    int ret;

    sotto_skr_init(&rec);
    if ((ret = check_store(store)) != SOTTO_OK || (ret = check_name(name)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_ARGUMENT;
    if ((pt == NULL && pt_len > 0) || pt_len > SOTTO_GROUP_MAX_PLAINTEXT_BYTES || msg == NULL ||
        msg_len == NULL)
        goto out;
    ret = record_load(store, name, &rec);
    if (ret == SOTTO_ERR_NOT_FOUND)
        ret = SOTTO_ERR_NO_SESSION;
    if (ret != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_NO_SESSION;
    if (rec.count == 0)
        goto out;
    st = &rec.states[0];
    ret = SOTTO_ERR_NO_SIGNING_KEY;
    if (!st->has_private)
        goto out;
    ret = SOTTO_ERR_INTERNAL; /* 2^32 - 1 messages: the key must be rotated */
    if (st->iteration == UINT32_MAX)
        goto out;

    if ((ret = chain_step(st->chain_key, seed)) != SOTTO_OK ||
        (ret = message_key(mk, seed)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_NOMEM;
    ct_cap = pt_len + SOTTO_AES_BLOCK_BYTES;
    ct = malloc(ct_cap);
    if (ct == NULL)
        goto out;
    if ((ret = sotto_aes256_cbc_encrypt(ct, &ct_len, mk + 16, mk, pt != NULL ? pt : mk, pt_len)) !=
        SOTTO_OK)
        goto out;
    if ((ret = sotto_skm_encode(st->key_id, st->iteration, ct, ct_len, st->signing_priv, &out,
                                &out_len)) != SOTTO_OK)
        goto out;
    st->iteration++;
    if ((ret = record_save(store, name, &rec)) != SOTTO_OK)
        goto out;
    *msg = out;
    *msg_len = out_len;
    out = NULL;
out:
    free(out);
    if (ct != NULL) {
        sodium_memzero(ct, ct_cap);
        free(ct);
    }
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(mk, sizeof mk);
    sotto_skr_wipe(&rec);
    return ret;
}

/* ---- decrypt ------------------------------------------------------------ */

/*
 * XEdDSA verification (spec 3.3) of an SKM under the state's signing key,
 * using the Edwards y cached in the state (sender_key_record.h) instead of
 * converting the Montgomery u for every message.
 */
static int verify_signature(const sotto_skr_state *st, const sotto_skm *m)
{
    return sotto_xeddsa_verify_ed(st->signing_ed, m->signed_part, m->signed_len, m->signature);
}

/*
 * The message-key seed for `iteration` in state `st`: a stored one (removed
 * from the state), or derived by advancing the chain, storing the keys
 * skipped over. Refuses a jump beyond SOTTO_MAX_FORWARD_JUMP before deriving
 * anything.
 */
static int seed_for_iteration(sotto_skr_state *st, uint32_t iteration,
                              uint8_t seed[SOTTO_SENDER_SEED_BYTES])
{
    uint8_t skipped[SOTTO_SENDER_SEED_BYTES];
    int ret;

    if (iteration < st->iteration)
        return sotto_skr_state_take_mk(st, iteration, seed) ? SOTTO_OK
                                                            : SOTTO_ERR_DUPLICATE_MESSAGE;
    if (iteration - st->iteration > SOTTO_MAX_FORWARD_JUMP)
        return SOTTO_ERR_TOO_FAR_AHEAD;
    if (iteration == UINT32_MAX)
        return SOTTO_ERR_INVALID_MESSAGE; /* the chain could not advance past it */
    if ((ret = sotto_skr_state_make_room(st, iteration - st->iteration)) != SOTTO_OK)
        return ret;
    while (st->iteration < iteration) {
        if ((ret = chain_step(st->chain_key, skipped)) != SOTTO_OK ||
            (ret = sotto_skr_state_add_mk(st, st->iteration, skipped)) != SOTTO_OK)
            goto out;
        st->iteration++;
    }
    if ((ret = chain_step(st->chain_key, seed)) != SOTTO_OK)
        goto out;
    st->iteration++;
out:
    sodium_memzero(skipped, sizeof skipped);
    return ret;
}

int sotto_group_decrypt(const sotto_sender_key_store *store, const sotto_sender_key_name *name,
                        const uint8_t *msg, size_t msg_len, uint8_t **pt, size_t *pt_len)
{
    sotto_skr rec;
    sotto_skm m;
    sotto_skr_state *st;
    uint8_t seed[SOTTO_SENDER_SEED_BYTES];
    uint8_t mk[SK_MESSAGE_KEY_BYTES];
    uint8_t *out = NULL;
    size_t out_cap = 0, out_len = 0;
    int ret;

    sotto_skr_init(&rec);
    if ((ret = check_store(store)) != SOTTO_OK || (ret = check_name(name)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_ARGUMENT;
    if (pt == NULL || pt_len == NULL)
        goto out;
    if ((ret = sotto_skm_decode(&m, msg, msg_len)) != SOTTO_OK)
        goto out;
    ret = record_load(store, name, &rec);
    if (ret == SOTTO_ERR_NOT_FOUND)
        ret = SOTTO_ERR_NO_SESSION;
    if (ret != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_KEY_ID;
    st = sotto_skr_find(&rec, m.key_id);
    if (st == NULL)
        goto out;
    /* Authenticate before touching the chain. */
    if ((ret = verify_signature(st, &m)) != SOTTO_OK)
        goto out;
    if ((ret = seed_for_iteration(st, m.iteration, seed)) != SOTTO_OK ||
        (ret = message_key(mk, seed)) != SOTTO_OK)
        goto out;
    ret = SOTTO_ERR_INVALID_MESSAGE;
    if (m.ciphertext_len == 0 || m.ciphertext_len % SOTTO_AES_BLOCK_BYTES != 0)
        goto out;
    ret = SOTTO_ERR_NOMEM;
    out_cap = m.ciphertext_len;
    out = malloc(out_cap);
    if (out == NULL)
        goto out;
    if (sotto_aes256_cbc_decrypt(out, &out_len, mk + 16, mk, m.ciphertext, m.ciphertext_len) !=
        SOTTO_OK) {
        ret = SOTTO_ERR_INVALID_MESSAGE;
        goto out;
    }
    if ((ret = record_save(store, name, &rec)) != SOTTO_OK)
        goto out;
    *pt = out;
    *pt_len = out_len;
    out = NULL;
out:
    if (out != NULL) {
        sodium_memzero(out, out_cap);
        free(out);
    }
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(mk, sizeof mk);
    sotto_skr_wipe(&rec);
    return ret;
}
