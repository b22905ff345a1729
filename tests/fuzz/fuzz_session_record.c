/*
 * Fuzz target: the session record decoder (docs/protocol.md "Session
 * record format"), as used on every load from a store.
 * Input: one stored session record.
 * Invariants (abort on violation):
 *  - sotto_session_record_validate never crashes and returns SOTTO_OK or
 *    SOTTO_ERR_CORRUPT_RECORD;
 *  - the lazy decoder (used on the hot path) accepts everything the full
 *    validator accepts, and both re-encode to exactly the input bytes (the
 *    format is canonical);
 *  - a valid record can be used: encrypting with it either works (and the
 *    new record is valid) or fails cleanly, leaving the stored bytes alone.
 * Seeds: records written by libsotto (SOTTO_FUZZ_WRITE_SEEDS=dir writes
 * them: Alice's and Bob's records after a short conversation with skipped
 * messages and one session reset).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "protocol/session_record.h"
#include "sotto/memory_store.h"
#include "sotto/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t g_ctr;

static void det_rng(void *ctx, void *p, size_t n)
{
    uint8_t seed[randombytes_SEEDBYTES] = {0};
    (void)ctx;
    memcpy(seed, &g_ctr, sizeof g_ctr);
    g_ctr++;
    randombytes_buf_deterministic(p, n, seed);
}

static const sotto_address g_alice_addr = {"alice", 5, 1};
static const sotto_address g_bob_addr = {"bob", 3, 1};
static sotto_memory_store *g_alice, *g_bob;
static sotto_protocol_store *g_as, *g_bs;

static void write_seed(const char *name, sotto_protocol_store *s, const sotto_address *peer)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    char path[1024];
    uint8_t *rec = NULL;
    size_t len = 0;
    FILE *f;
    if (dir == NULL)
        return;
    if (s->session.load(s->session.user_data, peer, &rec, &len) != SOTTO_OK)
        abort();
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(rec, 1, len, f) != len)
        abort();
    fclose(f);
    free(rec);
}

static void send(sotto_protocol_store *from, sotto_protocol_store *to, const sotto_address *to_addr,
                 const sotto_address *from_addr, int deliver)
{
    uint8_t *msg = NULL, *pt = NULL;
    size_t msg_len = 0, pt_len = 0;
    int type = 0;
    if (sotto_session_encrypt(from, to_addr, (const uint8_t *)"msg", 3, &msg, &msg_len, &type) !=
        SOTTO_OK)
        abort();
    if (deliver &&
        sotto_session_decrypt(to, from_addr, type, msg, msg_len, &pt, &pt_len) != SOTTO_OK)
        abort();
    free(msg);
    free(pt);
}

static void start(sotto_key_pair *idb, sotto_signed_prekey *spk)
{
    sotto_prekey_bundle b;
    memset(&b, 0, sizeof b);
    b.registration_id = 2222;
    b.device_id = 1;
    b.signed_prekey_id = spk->id;
    b.signed_prekey = spk->key.pub;
    memcpy(b.signed_prekey_signature, spk->signature, SOTTO_SIGNATURE_BYTES);
    b.identity_key = idb->pub;
    if (sotto_session_process_bundle(g_as, &g_bob_addr, &b) != SOTTO_OK)
        abort();
}

static void setup_once(void)
{
    sotto_key_pair ida, idb;
    sotto_signed_prekey spk;

    if (g_alice != NULL)
        return;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(det_rng, NULL);
    if (sotto_identity_key_pair_generate(&ida) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&idb) != SOTTO_OK ||
        sotto_signed_prekey_generate(&spk, &idb, 1, 0) != SOTTO_OK ||
        sotto_memory_store_new(&ida, 1111, &g_alice) != SOTTO_OK ||
        sotto_memory_store_new(&idb, 2222, &g_bob) != SOTTO_OK)
        abort();
    g_as = sotto_memory_store_protocol(g_alice);
    g_bs = sotto_memory_store_protocol(g_bob);
    if (g_bs->signed_prekey.store(g_bs->signed_prekey.user_data, &spk) != SOTTO_OK)
        abort();
    start(&idb, &spk);
    send(g_as, g_bs, &g_bob_addr, &g_alice_addr, 1);
    write_seed("alice_pending.bin", g_as, &g_bob_addr);
    send(g_bs, g_as, &g_alice_addr, &g_bob_addr, 0); /* skipped */
    send(g_bs, g_as, &g_alice_addr, &g_bob_addr, 1);
    send(g_as, g_bs, &g_bob_addr, &g_alice_addr, 0); /* skipped */
    send(g_as, g_bs, &g_bob_addr, &g_alice_addr, 1);
    write_seed("bob_skipped.bin", g_bs, &g_alice_addr);
    start(&idb, &spk); /* reset: one archived state */
    send(g_as, g_bs, &g_bob_addr, &g_alice_addr, 1);
    send(g_bs, g_as, &g_alice_addr, &g_bob_addr, 1);
    write_seed("alice_archived.bin", g_as, &g_bob_addr);
    sotto_key_pair_wipe(&ida);
    sotto_key_pair_wipe(&idb);
    sodium_memzero(&spk, sizeof spk);
}

static void check_roundtrip(const uint8_t *data, size_t size, int full)
{
    sotto_session_record rec;
    uint8_t *copy = malloc(size > 0 ? size : 1), *out = NULL;
    size_t out_len = 0;
    if (copy == NULL)
        abort();
    if (size > 0)
        memcpy(copy, data, size);
    sotto_session_record_init(&rec);
    if (sotto_session_record_decode(&rec, copy, size, full) != SOTTO_OK ||
        sotto_session_record_encode(&rec, &out, &out_len) != SOTTO_OK || out_len != size ||
        memcmp(out, data, size) != 0)
        abort();
    free(out);
    sotto_session_record_clear(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *msg = NULL, *now = NULL;
    size_t msg_len = 0, now_len = 0;
    int type = 0, rc;

    setup_once();
    rc = sotto_session_record_validate(data, size);
    if (rc != SOTTO_OK) {
        if (rc != SOTTO_ERR_CORRUPT_RECORD)
            abort();
        return 0;
    }
    check_roundtrip(data, size, 0);
    check_roundtrip(data, size, 1);

    /* Use it: Alice encrypts with this record. */
    if (g_as->session.store(g_as->session.user_data, &g_bob_addr, data, size) != SOTTO_OK)
        abort();
    rc = sotto_session_encrypt(g_as, &g_bob_addr, (const uint8_t *)"x", 1, &msg, &msg_len, &type);
    if (g_as->session.load(g_as->session.user_data, &g_bob_addr, &now, &now_len) != SOTTO_OK)
        abort();
    if (rc == SOTTO_OK) {
        if (msg == NULL || (type != SOTTO_MSG_SIGNAL && type != SOTTO_MSG_PREKEY) ||
            sotto_session_record_validate(now, now_len) != SOTTO_OK)
            abort();
    } else {
        /* UNTRUSTED: the record's current state names another identity
         * than the one trusted for Bob (encrypt checks trust, review R1). */
        if ((rc != SOTTO_ERR_NO_SESSION && rc != SOTTO_ERR_INTERNAL &&
             rc != SOTTO_ERR_INVALID_KEY && rc != SOTTO_ERR_UNTRUSTED_IDENTITY) ||
            msg != NULL || now_len != size || memcmp(now, data, size) != 0)
            abort();
    }
    free(msg);
    free(now);
    return 0;
}
