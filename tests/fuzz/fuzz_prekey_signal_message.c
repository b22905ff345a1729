/*
 * Fuzz target: PreKeySignalMessage parsing and responder-side X3DH +
 * decryption.
 * Input: one PreKeySignalMessage (type 3) as received from the network.
 * Setup (once, deterministic RNG: a counter-seeded libsodium stream):
 * Alice fetches Bob's bundle (with one-time prekey 31) and encrypts the seed
 * messages, exactly as when the corpus was made. For every input Bob gets a
 * fresh memory store holding his identity, signed prekey and prekey 31.
 * Invariants (abort on violation):
 *  - the decoder never crashes; inspect agrees with it;
 *  - sotto_session_decrypt returns SOTTO_OK or a documented error;
 *  - on failure Bob's store is untouched: no session, prekey 31 still
 *    there, no identity saved;
 *  - on success the plaintext is one Alice sent, a session is stored, the
 *    identity saved, and the one-time prekey consumed.
 * SOTTO_FUZZ_WRITE_SEEDS=dir writes the seeds; SOTTO_FUZZ_STATS prints the
 * number of successful decryptions at exit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "protocol/wire.h"
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

static const char *const g_texts[] = {"first prekey message", "second, same base key"};
#define N_TEXTS (sizeof g_texts / sizeof g_texts[0])
static const sotto_address g_alice_addr = {"alice", 5, 1};
static const sotto_address g_bob_addr = {"bob", 3, 1};
static sotto_key_pair g_idb;
static sotto_signed_prekey g_spk;
static sotto_prekey g_opk;
static int g_ready;
static unsigned long g_ok;

static void print_stats(void)
{
    fprintf(stderr, "fuzz_prekey_signal_message: %lu successful decryptions\n", g_ok);
}

static void write_seed(const char *name, const uint8_t *d, size_t n)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    char path[1024];
    FILE *f;
    if (dir == NULL)
        return;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(d, 1, n, f) != n)
        abort();
    fclose(f);
}

static void setup_once(void)
{
    sotto_key_pair ida;
    sotto_memory_store *alice = NULL;
    sotto_prekey_bundle bundle;
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    int type = 0;

    if (g_ready)
        return;
    g_ready = 1;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(det_rng, NULL);
    if (getenv("SOTTO_FUZZ_STATS") != NULL)
        atexit(print_stats);
    if (sotto_identity_key_pair_generate(&ida) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&g_idb) != SOTTO_OK ||
        sotto_signed_prekey_generate(&g_spk, &g_idb, 5, 0) != SOTTO_OK ||
        sotto_key_pair_generate(&g_opk.key) != SOTTO_OK ||
        sotto_memory_store_new(&ida, 1111, &alice) != SOTTO_OK)
        abort();
    g_opk.id = 31;
    memset(&bundle, 0, sizeof bundle);
    bundle.registration_id = 2222;
    bundle.device_id = 1;
    bundle.has_prekey = true;
    bundle.prekey_id = g_opk.id;
    bundle.prekey = g_opk.key.pub;
    bundle.signed_prekey_id = g_spk.id;
    bundle.signed_prekey = g_spk.key.pub;
    memcpy(bundle.signed_prekey_signature, g_spk.signature, SOTTO_SIGNATURE_BYTES);
    bundle.identity_key = g_idb.pub;
    if (sotto_session_process_bundle(sotto_memory_store_protocol(alice), &g_bob_addr, &bundle) !=
        SOTTO_OK)
        abort();
    for (size_t i = 0; i < N_TEXTS; i++) {
        char name[32];
        if (sotto_session_encrypt(sotto_memory_store_protocol(alice), &g_bob_addr,
                                  (const uint8_t *)g_texts[i], strlen(g_texts[i]), &msg, &msg_len,
                                  &type) != SOTTO_OK ||
            type != SOTTO_MSG_PREKEY)
            abort();
        snprintf(name, sizeof name, "prekey_%zu.bin", i);
        write_seed(name, msg, msg_len);
        free(msg);
    }
    sotto_memory_store_free(alice);
    sotto_key_pair_wipe(&ida);
}

static int known_error(int rc)
{
    return rc == SOTTO_ERR_INVALID_MESSAGE || rc == SOTTO_ERR_DUPLICATE_MESSAGE ||
           rc == SOTTO_ERR_INVALID_KEY || rc == SOTTO_ERR_TOO_FAR_AHEAD ||
           rc == SOTTO_ERR_LEGACY_MESSAGE || rc == SOTTO_ERR_UNSUPPORTED_VERSION ||
           rc == SOTTO_ERR_UNKNOWN_PREKEY_ID || rc == SOTTO_ERR_UNKNOWN_SIGNED_PREKEY_ID ||
           rc == SOTTO_ERR_UNTRUSTED_IDENTITY;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sotto_prekey_signal_message m;
    sotto_prekey_message_info info;
    sotto_memory_store *bob = NULL;
    sotto_protocol_store *bs;
    sotto_public_key saved;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    int rc, rc2;

    setup_once();
    rc = sotto_prekey_signal_message_decode(&m, data, size);
    rc2 = sotto_prekey_message_inspect(&info, data, size);
    if (rc != rc2 || (rc == SOTTO_OK && memcmp(&info, &m.info, sizeof info) != 0))
        abort();
    if (rc == SOTTO_OK && (m.message.data < data || m.message.data + m.message.len > data + size))
        abort();

    if (sotto_memory_store_new(&g_idb, 2222, &bob) != SOTTO_OK)
        abort();
    bs = sotto_memory_store_protocol(bob);
    if (bs->signed_prekey.store(bs->signed_prekey.user_data, &g_spk) != SOTTO_OK ||
        bs->prekey.store(bs->prekey.user_data, &g_opk) != SOTTO_OK)
        abort();
    rc = sotto_session_decrypt(bs, &g_alice_addr, SOTTO_MSG_PREKEY, data, size, &pt, &pt_len);
    if (rc == SOTTO_OK) {
        int known = 0;
        for (size_t i = 0; i < N_TEXTS; i++)
            if (pt_len == strlen(g_texts[i]) && memcmp(pt, g_texts[i], pt_len) == 0)
                known = 1;
        if (!known || sotto_memory_store_session_count(bob) != 1 ||
            bs->identity.get(bs->identity.user_data, &g_alice_addr, &saved) != SOTTO_OK ||
            (info.has_prekey_id && info.prekey_id == g_opk.id &&
             sotto_memory_store_prekey_count(bob) != 0))
            abort();
        g_ok++;
        free(pt);
    } else {
        if (!known_error(rc) || pt != NULL || sotto_memory_store_session_count(bob) != 0 ||
            sotto_memory_store_prekey_count(bob) != 1 ||
            bs->identity.get(bs->identity.user_data, &g_alice_addr, &saved) != SOTTO_ERR_NOT_FOUND)
            abort();
    }
    sotto_memory_store_free(bob);
    return 0;
}
