/*
 * Fuzz target: SignalMessage parsing and 1:1 decryption.
 * Input: one SignalMessage (type 2) as received from the network.
 * Setup (once, deterministic RNG: a counter-seeded libsodium stream):
 * Alice and Bob build a session exactly as when the seed corpus was made
 * (bundle without one-time prekey, PreKey message, reply), then Alice
 * encrypts the seed messages; Bob's record is snapshotted.
 * Invariants (abort on violation):
 *  - the decoder never crashes; on success its pointers lie in the input;
 *  - sotto_session_decrypt returns SOTTO_OK or a documented peer-input error;
 *  - after any failure Bob's stored record is byte-identical to before;
 *  - a success yields one of the plaintexts Alice really sent.
 * Bob's record is reset to the snapshot before every input.
 * With SOTTO_FUZZ_WRITE_SEEDS=dir the setup writes its messages as seeds;
 * with SOTTO_FUZZ_STATS set, the number of successful decryptions is
 * printed at exit (the genuine seeds must decrypt).
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

static const char *const g_texts[] = {"fuzz seed zero", "",
                                      "a somewhat longer plaintext, 48 bytes of it...."};
#define N_TEXTS (sizeof g_texts / sizeof g_texts[0])
static const sotto_address g_alice_addr = {"alice", 5, 1};
static const sotto_address g_bob_addr = {"bob", 3, 1};
static sotto_memory_store *g_alice, *g_bob;
static sotto_protocol_store *g_bs;
static uint8_t *g_rec;
static size_t g_rec_len;
static unsigned long g_ok;

static void print_stats(void)
{
    fprintf(stderr, "fuzz_signal_message: %lu successful decryptions\n", g_ok);
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
    sotto_key_pair ida, idb;
    sotto_signed_prekey spk;
    sotto_prekey_bundle bundle;
    uint8_t *msg = NULL, *pt = NULL;
    size_t msg_len = 0, pt_len = 0;
    int type = 0;
    sotto_protocol_store *as;

    if (g_bob != NULL)
        return;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(det_rng, NULL);
    if (getenv("SOTTO_FUZZ_STATS") != NULL)
        atexit(print_stats);
    if (sotto_identity_key_pair_generate(&ida) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&idb) != SOTTO_OK ||
        sotto_memory_store_new(&ida, 1111, &g_alice) != SOTTO_OK ||
        sotto_memory_store_new(&idb, 2222, &g_bob) != SOTTO_OK ||
        sotto_signed_prekey_generate(&spk, &idb, 1, 0) != SOTTO_OK)
        abort();
    as = sotto_memory_store_protocol(g_alice);
    g_bs = sotto_memory_store_protocol(g_bob);
    if (g_bs->signed_prekey.store(g_bs->signed_prekey.user_data, &spk) != SOTTO_OK)
        abort();
    memset(&bundle, 0, sizeof bundle);
    bundle.registration_id = 2222;
    bundle.device_id = 1;
    bundle.signed_prekey_id = spk.id;
    bundle.signed_prekey = spk.key.pub;
    memcpy(bundle.signed_prekey_signature, spk.signature, SOTTO_SIGNATURE_BYTES);
    bundle.identity_key = idb.pub;
    if (sotto_session_process_bundle(as, &g_bob_addr, &bundle) != SOTTO_OK ||
        sotto_session_encrypt(as, &g_bob_addr, (const uint8_t *)"hi", 2, &msg, &msg_len, &type) !=
            SOTTO_OK ||
        sotto_session_decrypt(g_bs, &g_alice_addr, type, msg, msg_len, &pt, &pt_len) != SOTTO_OK)
        abort();
    free(msg);
    free(pt);
    if (sotto_session_encrypt(g_bs, &g_alice_addr, (const uint8_t *)"yo", 2, &msg, &msg_len,
                              &type) != SOTTO_OK ||
        sotto_session_decrypt(as, &g_bob_addr, type, msg, msg_len, &pt, &pt_len) != SOTTO_OK)
        abort();
    free(msg);
    free(pt);
    for (size_t i = 0; i < N_TEXTS; i++) {
        char name[32];
        if (sotto_session_encrypt(as, &g_bob_addr, (const uint8_t *)g_texts[i], strlen(g_texts[i]),
                                  &msg, &msg_len, &type) != SOTTO_OK ||
            type != SOTTO_MSG_SIGNAL)
            abort();
        snprintf(name, sizeof name, "signal_%zu.bin", i);
        write_seed(name, msg, msg_len);
        free(msg);
    }
    if (g_bs->session.load(g_bs->session.user_data, &g_alice_addr, &g_rec, &g_rec_len) != SOTTO_OK)
        abort();
    sotto_key_pair_wipe(&ida);
    sotto_key_pair_wipe(&idb);
    sodium_memzero(&spk, sizeof spk);
}

static int peer_error(int rc)
{
    return rc == SOTTO_ERR_INVALID_MESSAGE || rc == SOTTO_ERR_DUPLICATE_MESSAGE ||
           rc == SOTTO_ERR_INVALID_KEY || rc == SOTTO_ERR_TOO_FAR_AHEAD ||
           rc == SOTTO_ERR_LEGACY_MESSAGE || rc == SOTTO_ERR_UNSUPPORTED_VERSION;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sotto_signal_message m;
    uint8_t *pt = NULL, *now = NULL;
    size_t pt_len = 0, now_len = 0;
    int rc;

    setup_once();
    rc = sotto_signal_message_decode(&m, data, size);
    if (rc == SOTTO_OK) {
        if (m.data != data || m.len != size || m.ciphertext < data ||
            m.ciphertext + m.ciphertext_len > data + size)
            abort();
    } else if (!peer_error(rc)) {
        abort();
    }
    if (g_bs->session.store(g_bs->session.user_data, &g_alice_addr, g_rec, g_rec_len) != SOTTO_OK)
        abort();
    rc = sotto_session_decrypt(g_bs, &g_alice_addr, SOTTO_MSG_SIGNAL, data, size, &pt, &pt_len);
    if (rc == SOTTO_OK) {
        int known = 0;
        for (size_t i = 0; i < N_TEXTS; i++)
            if (pt_len == strlen(g_texts[i]) && memcmp(pt, g_texts[i], pt_len) == 0)
                known = 1;
        if (!known)
            abort();
        g_ok++;
        free(pt);
        return 0;
    }
    if (!peer_error(rc) || pt != NULL)
        abort();
    if (g_bs->session.load(g_bs->session.user_data, &g_alice_addr, &now, &now_len) != SOTTO_OK ||
        now_len != g_rec_len || memcmp(now, g_rec, g_rec_len) != 0)
        abort();
    free(now);
    return 0;
}
