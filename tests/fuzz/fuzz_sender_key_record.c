/*
 * Fuzz target: the sender-key record decoder and the group operations on a
 * hostile stored record.
 * Input: a serialised sender-key record as a store would return it.
 * Invariants checked (abort on violation):
 *  - decoding never crashes; it succeeds or gives SOTTO_ERR_CORRUPT_RECORD;
 *  - the format is canonical: a decoded record re-encodes to the same bytes;
 *  - a decoded record respects the caps (5 states, 2000 keys, ascending
 *    stored iterations below the chain's);
 *  - with the input stored as Bob's record, decrypting a fixed valid SKM
 *    and encrypting return documented codes, succeed only on a record that
 *    decodes, and every failure leaves the stored bytes identical.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "group/sender_key_record.h"
#include "crypto/crypto.h"
#include "sotto/group.h"
#include "sotto/memory_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void counter_rng(void *ctx, void *p, size_t n)
{
    unsigned *ctr = ctx;
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((*ctr)++);
}

static unsigned g_ctr;
static sotto_memory_store *g_store;
static const sotto_sender_key_store *g_sk;
static uint8_t *g_skm;
static size_t g_skm_len;
static const uint8_t g_group[] = {'g', 'r', 'o', 'u', 'p', 0x00, 0x01};
static const sotto_sender_key_name g_name = {g_group, sizeof g_group, {"alice", 5, 1}};

/* Alice's first message, made with the same key as the corpus records. */
static void setup_once(void)
{
    sotto_key_pair id;
    sotto_memory_store *alice = NULL;
    uint8_t *skdm = NULL;
    size_t skdm_len = 0;

    if (g_store != NULL)
        return;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(counter_rng, &g_ctr);
    memset(&id, 0x42, sizeof id);
    id.pub.bytes[0] = 0x05;
    if (sotto_memory_store_new(&id, 1, &alice) != SOTTO_OK ||
        sotto_memory_store_new(&id, 2, &g_store) != SOTTO_OK)
        abort();
    g_sk = &sotto_memory_store_protocol(g_store)->sender_key;
    const sotto_sender_key_store *ask = &sotto_memory_store_protocol(alice)->sender_key;
    if (sotto_group_create_distribution(ask, &g_name, &skdm, &skdm_len) != SOTTO_OK ||
        sotto_group_encrypt(ask, &g_name, (const uint8_t *)"fuzz", 4, &g_skm, &g_skm_len) !=
            SOTTO_OK)
        abort();
    free(skdm);
    sotto_memory_store_free(alice);
}

static void check_unchanged(const uint8_t *data, size_t size)
{
    uint8_t *now = NULL;
    size_t now_len = 0;
    if (g_sk->load(g_sk->user_data, &g_name, &now, &now_len) != SOTTO_OK || now_len != size ||
        memcmp(now, data, size) != 0)
        abort();
    free(now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sotto_skr rec;
    uint8_t *enc = NULL, *out = NULL;
    size_t enc_len = 0, out_len = 0;
    int rc, drc, erc;

    setup_once();
    rc = sotto_skr_decode(&rec, data, size);
    if (rc == SOTTO_OK) {
        if (rec.count > SOTTO_MAX_SENDER_KEY_STATES)
            abort();
        for (size_t i = 0; i < rec.count; i++) {
            const sotto_skr_state *st = &rec.states[i];
            if (st->mk_count > SOTTO_MAX_MESSAGE_KEYS)
                abort();
            for (size_t k = 0; k < st->mk_count; k++) {
                if (st->mks[k].iteration >= st->iteration ||
                    (k > 0 && st->mks[k].iteration <= st->mks[k - 1].iteration))
                    abort();
            }
        }
        if (sotto_skr_encode(&rec, &enc, &enc_len) != SOTTO_OK || enc_len != size ||
            memcmp(enc, data, size) != 0)
            abort();
        free(enc);
        sotto_skr_wipe(&rec);
    } else if (rc != SOTTO_ERR_CORRUPT_RECORD) {
        abort();
    }

    if (size == 0 || size > SOTTO_MAX_RECORD_BYTES)
        return 0; /* a store never holds an empty record */
    if (g_sk->store(g_sk->user_data, &g_name, data, size) != SOTTO_OK)
        abort();
    drc = sotto_group_decrypt(g_sk, &g_name, g_skm, g_skm_len, &out, &out_len);
    if (drc == SOTTO_OK) {
        /* (a mutated chain key can yield other bytes with valid padding:
         * the record is trusted storage, only the message is signed) */
        if (rc != SOTTO_OK || out_len > 16)
            abort();
        free(out);
    } else {
        if (out != NULL)
            abort();
        if (rc != SOTTO_OK
                ? drc != SOTTO_ERR_CORRUPT_RECORD
                : (drc != SOTTO_ERR_INVALID_KEY_ID && drc != SOTTO_ERR_INVALID_SIGNATURE &&
                   drc != SOTTO_ERR_DUPLICATE_MESSAGE && drc != SOTTO_ERR_TOO_FAR_AHEAD &&
                   drc != SOTTO_ERR_INVALID_MESSAGE))
            abort();
        check_unchanged(data, size);
    }

    if (g_sk->store(g_sk->user_data, &g_name, data, size) != SOTTO_OK)
        abort();
    erc = sotto_group_encrypt(g_sk, &g_name, (const uint8_t *)"x", 1, &out, &out_len);
    if (erc == SOTTO_OK) {
        if (rc != SOTTO_OK)
            abort();
        free(out);
    } else {
        if (rc != SOTTO_OK ? erc != SOTTO_ERR_CORRUPT_RECORD
                           : (erc != SOTTO_ERR_NO_SESSION && erc != SOTTO_ERR_NO_SIGNING_KEY &&
                              erc != SOTTO_ERR_INTERNAL))
            abort();
        check_unchanged(data, size);
    }
    return 0;
}
