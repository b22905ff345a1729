/*
 * Fuzz target: SenderKeyDistributionMessage parsing and processing.
 * Input: one SKDM as received over a 1:1 session.
 * Invariants checked (abort on violation):
 *  - decoding never crashes and returns SOTTO_OK or a documented error;
 *  - a decoded SKDM re-encodes to bytes that decode to the same values, and
 *    re-encoding is stable (encode(decode(encode(x))) == encode(x));
 *  - processing into a store that already holds a record either fails and
 *    leaves that record byte-identical, or succeeds and the new record
 *    decodes with the SKDM's key id, at most 5 states, and a chain at or
 *    past the SKDM's iteration.
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
static uint8_t *g_rec;
static size_t g_rec_len;
static const uint8_t g_group[] = {'g', 'r', 'o', 'u', 'p', 0x00, 0x01};
static const sotto_sender_key_name g_name = {g_group, sizeof g_group, {"alice", 5, 1}};

/* Bob's store with the record made by the seed corpus's first SKDM. */
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
    if (sotto_group_create_distribution(&sotto_memory_store_protocol(alice)->sender_key, &g_name,
                                        &skdm, &skdm_len) != SOTTO_OK ||
        sotto_group_process_distribution(g_sk, &g_name, skdm, skdm_len) != SOTTO_OK ||
        g_sk->load(g_sk->user_data, &g_name, &g_rec, &g_rec_len) != SOTTO_OK)
        abort();
    free(skdm);
    sotto_memory_store_free(alice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sotto_sender_key_distribution d, d2;
    uint8_t *enc = NULL, *enc2 = NULL, *now = NULL;
    size_t enc_len = 0, enc2_len = 0, now_len = 0;
    int rc, prc;

    setup_once();
    rc = sotto_sender_key_distribution_decode(&d, data, size);
    if (rc == SOTTO_OK) {
        if (sotto_sender_key_distribution_encode(&d, &enc, &enc_len) != SOTTO_OK ||
            sotto_sender_key_distribution_decode(&d2, enc, enc_len) != SOTTO_OK ||
            d2.key_id != d.key_id || d2.iteration != d.iteration ||
            memcmp(d2.chain_key, d.chain_key, sizeof d.chain_key) != 0 ||
            memcmp(d2.signing_key.bytes, d.signing_key.bytes, SOTTO_PUBLIC_KEY_BYTES) != 0 ||
            sotto_sender_key_distribution_encode(&d2, &enc2, &enc2_len) != SOTTO_OK ||
            enc2_len != enc_len || memcmp(enc, enc2, enc_len) != 0)
            abort();
        free(enc);
        free(enc2);
    } else if (rc != SOTTO_ERR_INVALID_MESSAGE && rc != SOTTO_ERR_LEGACY_MESSAGE &&
               rc != SOTTO_ERR_UNSUPPORTED_VERSION && rc != SOTTO_ERR_INVALID_KEY) {
        abort();
    }

    /* start every input from the same stored record */
    if (g_sk->store(g_sk->user_data, &g_name, g_rec, g_rec_len) != SOTTO_OK)
        abort();
    prc = sotto_group_process_distribution(g_sk, &g_name, data, size);
    if (prc != rc)
        abort(); /* processing fails exactly when decoding does */
    if (g_sk->load(g_sk->user_data, &g_name, &now, &now_len) != SOTTO_OK)
        abort();
    if (prc != SOTTO_OK) {
        if (now_len != g_rec_len || memcmp(now, g_rec, now_len) != 0)
            abort();
    } else {
        sotto_skr rec;
        sotto_skr_state *st;
        if (sotto_skr_decode(&rec, now, now_len) != SOTTO_OK ||
            rec.count > SOTTO_MAX_SENDER_KEY_STATES ||
            (st = sotto_skr_find(&rec, d.key_id)) == NULL || st->iteration < d.iteration)
            abort();
        sotto_skr_wipe(&rec);
    }
    free(now);
    return 0;
}
