/*
 * Fuzz target: SenderKeyMessage parsing and group decryption.
 * Input: one SKM as received from the network.
 * Setup (once, deterministic RNG = byte counter from 0): Alice creates her
 * sender key exactly as the seed corpus was made, Bob processes her SKDM.
 * Invariants checked (abort on violation):
 *  - parsing never crashes; on success the parsed fields lie inside the
 *    input and peek agrees with them;
 *  - sotto_group_decrypt returns SOTTO_OK or one of the documented errors;
 *  - after any failure Bob's stored record is byte-identical;
 *  - a success only happens for a message whose signature verifies under
 *    Alice's signing key (then the record is reset for the next input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "group/sender_key_message.h"
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
static sotto_memory_store *g_alice, *g_bob;
static const sotto_sender_key_store *g_bob_sk;
static sotto_public_key g_signing;
static uint8_t *g_rec;
static size_t g_rec_len;
static const uint8_t g_group[] = {'g', 'r', 'o', 'u', 'p', 0x00, 0x01};
static const sotto_sender_key_name g_name = {g_group, sizeof g_group, {"alice", 5, 1}};

static void setup_once(void)
{
    sotto_key_pair id;
    uint8_t *skdm = NULL;
    size_t skdm_len = 0;
    sotto_sender_key_distribution d;

    if (g_bob != NULL)
        return;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(counter_rng, &g_ctr);
    memset(&id, 0x42, sizeof id);
    id.pub.bytes[0] = 0x05;
    if (sotto_memory_store_new(&id, 1, &g_alice) != SOTTO_OK ||
        sotto_memory_store_new(&id, 2, &g_bob) != SOTTO_OK)
        abort();
    g_bob_sk = &sotto_memory_store_protocol(g_bob)->sender_key;
    if (sotto_group_create_distribution(&sotto_memory_store_protocol(g_alice)->sender_key, &g_name,
                                        &skdm, &skdm_len) != SOTTO_OK ||
        sotto_sender_key_distribution_decode(&d, skdm, skdm_len) != SOTTO_OK ||
        sotto_group_process_distribution(g_bob_sk, &g_name, skdm, skdm_len) != SOTTO_OK ||
        g_bob_sk->load(g_bob_sk->user_data, &g_name, &g_rec, &g_rec_len) != SOTTO_OK)
        abort();
    g_signing = d.signing_key;
    free(skdm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sotto_skm m;
    uint8_t *pt = NULL, *now = NULL;
    size_t pt_len = 0, now_len = 0;
    uint32_t key_id, iteration;
    int rc;

    setup_once();
    rc = sotto_skm_decode(&m, data, size);
    if (rc == SOTTO_OK) {
        if (m.ciphertext < data || m.ciphertext + m.ciphertext_len > data + size ||
            m.signed_len + SOTTO_SIGNATURE_BYTES != size || m.signature != data + m.signed_len)
            abort();
        if (sotto_sender_key_message_peek(data, size, &key_id, &iteration) != SOTTO_OK ||
            key_id != m.key_id || iteration != m.iteration)
            abort();
    } else if (rc != SOTTO_ERR_INVALID_MESSAGE && rc != SOTTO_ERR_LEGACY_MESSAGE &&
               rc != SOTTO_ERR_UNSUPPORTED_VERSION) {
        abort();
    }

    rc = sotto_group_decrypt(g_bob_sk, &g_name, data, size, &pt, &pt_len);
    switch (rc) {
    case SOTTO_OK:
        if (sotto_xeddsa_verify(&g_signing, data, size - SOTTO_SIGNATURE_BYTES,
                                data + size - SOTTO_SIGNATURE_BYTES) != SOTTO_OK)
            abort();
        free(pt);
        /* back to the initial record for the next input */
        if (g_bob_sk->store(g_bob_sk->user_data, &g_name, g_rec, g_rec_len) != SOTTO_OK)
            abort();
        return 0;
    case SOTTO_ERR_INVALID_MESSAGE:
    case SOTTO_ERR_LEGACY_MESSAGE:
    case SOTTO_ERR_UNSUPPORTED_VERSION:
    case SOTTO_ERR_INVALID_KEY_ID:
    case SOTTO_ERR_INVALID_SIGNATURE:
    case SOTTO_ERR_DUPLICATE_MESSAGE:
    case SOTTO_ERR_TOO_FAR_AHEAD:
        break;
    default:
        abort();
    }
    if (pt != NULL)
        abort();
    if (g_bob_sk->load(g_bob_sk->user_data, &g_name, &now, &now_len) != SOTTO_OK ||
        now_len != g_rec_len || memcmp(now, g_rec, now_len) != 0)
        abort();
    free(now);
    return 0;
}
