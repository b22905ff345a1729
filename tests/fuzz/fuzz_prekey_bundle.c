/*
 * Fuzz target: our prekey bundle encoding (docs/protocol.md "Prekey bundle
 * encoding") and bundle processing.
 * Input: one encoded bundle, as a client receives it.
 * Invariants (abort on violation):
 *  - sotto_prekey_bundle_decode never crashes and returns SOTTO_OK or a
 *    documented error; on error the output is zeroed;
 *  - a decoded bundle re-encodes to exactly the input bytes;
 *  - processing a decoded bundle succeeds only when its signature verifies,
 *    and stores a session exactly then (nothing stored on failure).
 * Seeds: bundles with and without a one-time prekey, made by libsotto
 * (SOTTO_FUZZ_WRITE_SEEDS=dir writes them).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
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

static const sotto_address g_bob_addr = {"bob", 3, 1};
static sotto_key_pair g_ida;
static int g_ready;

static void write_seed(const char *name, const sotto_prekey_bundle *b)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    uint8_t buf[SOTTO_PREKEY_BUNDLE_MAX_BYTES];
    size_t n;
    char path[1024];
    FILE *f;
    if (dir == NULL)
        return;
    if (sotto_prekey_bundle_encode(b, buf, &n) != SOTTO_OK)
        abort();
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, n, f) != n)
        abort();
    fclose(f);
}

static void setup_once(void)
{
    sotto_key_pair idb;
    sotto_signed_prekey spk;
    sotto_prekey_bundle b;
    if (g_ready)
        return;
    g_ready = 1;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(det_rng, NULL);
    if (sotto_identity_key_pair_generate(&g_ida) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&idb) != SOTTO_OK ||
        sotto_signed_prekey_generate(&spk, &idb, 77, 0) != SOTTO_OK)
        abort();
    memset(&b, 0, sizeof b);
    b.registration_id = 4321;
    b.device_id = 2;
    b.signed_prekey_id = spk.id;
    b.signed_prekey = spk.key.pub;
    memcpy(b.signed_prekey_signature, spk.signature, SOTTO_SIGNATURE_BYTES);
    b.identity_key = idb.pub;
    write_seed("bundle_no_opk.bin", &b);
    b.has_prekey = true;
    b.prekey_id = 1000;
    {
        sotto_key_pair opk;
        if (sotto_key_pair_generate(&opk) != SOTTO_OK)
            abort();
        b.prekey = opk.pub;
        sotto_key_pair_wipe(&opk);
    }
    write_seed("bundle_opk.bin", &b);
    sotto_key_pair_wipe(&idb);
    sodium_memzero(&spk, sizeof spk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sotto_prekey_bundle b;
    static const uint8_t zero[sizeof(sotto_prekey_bundle)];
    uint8_t buf[SOTTO_PREKEY_BUNDLE_MAX_BYTES];
    size_t n = 0;
    sotto_memory_store *alice = NULL;
    int rc, sig;

    setup_once();
    rc = sotto_prekey_bundle_decode(&b, data, size);
    if (rc != SOTTO_OK) {
        if ((rc != SOTTO_ERR_INVALID_MESSAGE && rc != SOTTO_ERR_INVALID_KEY &&
             rc != SOTTO_ERR_UNSUPPORTED_VERSION && rc != SOTTO_ERR_INVALID_ARGUMENT) ||
            memcmp(&b, zero, sizeof b) != 0)
            abort();
        return 0;
    }
    if (sotto_prekey_bundle_encode(&b, buf, &n) != SOTTO_OK || n != size ||
        memcmp(buf, data, size) != 0)
        abort();
    sig = sotto_signed_prekey_verify(&b.identity_key, &b.signed_prekey, b.signed_prekey_signature);
    if (sotto_memory_store_new(&g_ida, 1111, &alice) != SOTTO_OK)
        abort();
    rc = sotto_session_process_bundle(sotto_memory_store_protocol(alice), &g_bob_addr, &b);
    if ((rc == SOTTO_OK) != (sig == SOTTO_OK) && rc != SOTTO_ERR_INVALID_KEY)
        abort();
    if (sotto_memory_store_session_count(alice) != (rc == SOTTO_OK ? 1u : 0u))
        abort();
    sotto_memory_store_free(alice);
    return 0;
}
