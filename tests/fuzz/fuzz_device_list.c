/*
 * Fuzz target: the signed device list (sotto/device_list.h).
 * Input: a signed list (statement || 64-byte signature), as a client gets
 * it from the server.
 * The harness owns a fixed account key; the seeds are lists it signed. To
 * get past the signature check, one input in two (low bit of an FNV-1a
 * hash of the input) is RE-SIGNED: the bytes before the last 64 are signed
 * with the harness key (deterministic RNG) and the signature replaced, so
 * the parser's post-verify paths, the diff and the update check all run on
 * mutated lists.
 * Invariants (abort on violation):
 *  - parse and verify never crash, return only documented codes, and leave
 *    the output zeroed on error;
 *  - a parse error E means verify gives INVALID_SIGNATURE or E, and exactly
 *    E when the signature is the harness's;
 *  - an accepted list re-encodes to exactly the signed bytes (canonical),
 *    verify and parse agree on it, it passes sotto_device_list_check, and
 *    signing it again gives a list that verifies to the same content;
 *  - diff against the seed base list agrees with find(); check_update
 *    agrees with the versions.
 * Seeds: SOTTO_FUZZ_WRITE_SEEDS=dir writes them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "sotto/device_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t g_ctr;
static sotto_key_pair g_account;
static sotto_device_list g_base;
static int g_ready;

static void det_rng(void *ctx, void *p, size_t n)
{
    uint8_t seed[randombytes_SEEDBYTES] = {0};
    (void)ctx;
    memcpy(seed, &g_ctr, sizeof g_ctr);
    g_ctr++;
    randombytes_buf_deterministic(p, n, seed);
}

static void make_device(sotto_device_entry *d, uint32_t id, uint32_t caps)
{
    uint8_t seed[32], sk[64];
    memset(seed, (int)(id & 0xff), sizeof seed);
    if (crypto_sign_seed_keypair(d->auth_key, sk, seed) != 0)
        abort();
    sodium_memzero(sk, sizeof sk);
    d->device_id = id;
    d->registration_id = 1 + id % SOTTO_REGISTRATION_ID_MAX;
    d->identity_key.bytes[0] = SOTTO_KEY_TYPE_DJB;
    memset(d->identity_key.bytes + 1, (int)id, 32);
    d->capabilities = caps;
}

static void write_seed(const char *name, const sotto_device_list *l)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    uint8_t buf[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t n = 0;
    char path[1024];
    FILE *f;

    if (dir == NULL)
        return;
    if (sotto_device_list_sign(l, &g_account, buf, sizeof buf, &n) != SOTTO_OK)
        abort();
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, n, f) != n)
        abort();
    fclose(f);
}

static void setup_once(void)
{
    uint8_t priv[32];
    sotto_device_list l;

    if (g_ready)
        return;
    g_ready = 1;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(det_rng, NULL);
    memset(priv, 0x42, sizeof priv);
    if (sotto_key_pair_from_private(&g_account, priv) != SOTTO_OK)
        abort();
    memset(&g_base, 0, sizeof g_base);
    snprintf(g_base.username, sizeof g_base.username, "alice");
    g_base.version = 5;
    g_base.timestamp_ms = 1765065600000ull;
    g_base.n_devices = 3;
    make_device(&g_base.devices[0], 1, 0);
    make_device(&g_base.devices[1], 2, SOTTO_DEVICE_CAP_PQ);
    make_device(&g_base.devices[2], 7, 0);
    write_seed("three_devices.bin", &g_base);
    l = g_base;
    l.version = 6;
    l.n_devices = 1;
    write_seed("one_device.bin", &l);
    memset(&l, 0, sizeof l);
    memset(l.username, 'a', SOTTO_USERNAME_MAX_LEN);
    l.version = UINT64_MAX;
    /* 8 devices, not 32: the replay mutates every byte of every seed, and
     * each accepted list costs one Ed25519 point check per device */
    l.n_devices = 8;
    for (uint32_t i = 0; i < 8; i++)
        make_device(&l.devices[i], 10 * i + 1, i);
    write_seed("eight_devices.bin", &l);
}

static uint32_t fnv1a(const uint8_t *d, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return h;
}

static int known_error(int rc)
{
    switch (rc) {
    case SOTTO_ERR_INVALID_MESSAGE:
    case SOTTO_ERR_TRAILING_DATA:
    case SOTTO_ERR_INVALID_USERNAME:
    case SOTTO_ERR_DEVICE_LIST_FIELD:
    case SOTTO_ERR_DEVICE_LIST_COUNT:
    case SOTTO_ERR_DEVICE_LIST_ORDER:
    case SOTTO_ERR_INVALID_KEY:
        return 1;
    }
    return 0;
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return 0;
    }
    return 1;
}

static void check_diff(const sotto_device_list *old, const sotto_device_list *new_)
{
    sotto_device_list_diff d;

    if (sotto_device_list_diff_compute(old, new_, &d) != SOTTO_OK) {
        if (strcmp(old->username, new_->username) == 0)
            abort();
        return;
    }
    if (d.n_added > SOTTO_DEVICE_LIST_MAX || d.n_removed > SOTTO_DEVICE_LIST_MAX ||
        d.n_changed > SOTTO_DEVICE_LIST_MAX ||
        old->n_devices + d.n_added - d.n_removed != new_->n_devices)
        abort();
    for (size_t i = 0; i < d.n_added; i++) {
        if (sotto_device_list_find(new_, d.added[i]) == NULL ||
            sotto_device_list_find(old, d.added[i]) != NULL)
            abort();
    }
    for (size_t i = 0; i < d.n_removed; i++) {
        if (sotto_device_list_find(old, d.removed[i]) == NULL ||
            sotto_device_list_find(new_, d.removed[i]) != NULL)
            abort();
    }
    for (size_t i = 0; i < d.n_changed; i++) {
        if (sotto_device_list_find(old, d.changed[i]) == NULL ||
            sotto_device_list_find(new_, d.changed[i]) == NULL)
            abort();
    }
}

static void check_accepted(const sotto_device_list *l, const uint8_t *signed_list, size_t n)
{
    uint8_t stmt[SOTTO_DEVICE_LIST_STATEMENT_MAX_BYTES], again[SOTTO_DEVICE_LIST_MAX_BYTES];
    size_t sn = 0, an = 0;
    sotto_device_list back;
    int up;

    if (sotto_device_list_check(l) != SOTTO_OK)
        abort();
    if (sotto_device_list_statement(l, stmt, sizeof stmt, &sn) != SOTTO_OK ||
        sn != n - SOTTO_SIGNATURE_BYTES || memcmp(stmt, signed_list, sn) != 0)
        abort();
    if (sotto_device_list_sign(l, &g_account, again, sizeof again, &an) != SOTTO_OK || an != n ||
        sotto_device_list_verify(&back, again, an, &g_account.pub, l->username) != 0 ||
        sotto_device_list_check_update(l, &back) != SOTTO_OK)
        abort();
    check_diff(&g_base, l);
    check_diff(l, &g_base);
    up = sotto_device_list_check_update(&g_base, l);
    if (strcmp(l->username, g_base.username) != 0) {
        if (up != SOTTO_ERR_DEVICE_LIST_ACCOUNT)
            abort();
    } else if ((l->version < g_base.version) != (up == SOTTO_ERR_DEVICE_LIST_STALE) ||
               (l->version > g_base.version && up != SOTTO_OK) ||
               (up != SOTTO_OK && up != SOTTO_ERR_DEVICE_LIST_STALE &&
                up != SOTTO_ERR_DEVICE_LIST_CONFLICT)) {
        abort();
    }
    for (size_t i = 0; i < l->n_devices; i++) {
        if (sotto_device_list_find(l, l->devices[i].device_id) != &l->devices[i])
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sotto_device_list parsed, verified;
    const uint8_t *sig = NULL;
    uint8_t *buf;
    int resign, prc, vrc;

    setup_once();
    if (size > SOTTO_DEVICE_LIST_MAX_BYTES + 64)
        return 0;
    buf = malloc(size ? size : 1); /* exact size, so ASan sees overreads */
    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    resign = (fnv1a(data, size) & 1) && size >= SOTTO_SIGNATURE_BYTES;
    if (resign && sotto_xeddsa_sign(buf + size - SOTTO_SIGNATURE_BYTES, g_account.priv, buf,
                                    size - SOTTO_SIGNATURE_BYTES) != SOTTO_OK)
        abort();

    prc = sotto_device_list_parse(&parsed, buf, size, &sig);
    vrc = sotto_device_list_verify(&verified, buf, size, &g_account.pub, "alice");
    if (prc != SOTTO_OK) {
        if (!known_error(prc) || sig != NULL || !all_zero(&parsed, sizeof parsed))
            abort();
        if (vrc != prc && (resign || vrc != SOTTO_ERR_INVALID_SIGNATURE))
            abort();
    } else {
        if (sig != buf + size - SOTTO_SIGNATURE_BYTES)
            abort();
        if (resign && vrc == SOTTO_ERR_INVALID_SIGNATURE)
            abort();
        if (vrc == SOTTO_OK &&
            (strcmp(parsed.username, "alice") != 0 || memcmp(&parsed, &verified, sizeof parsed)))
            abort();
        if (vrc == SOTTO_ERR_DEVICE_LIST_ACCOUNT && strcmp(parsed.username, "alice") == 0)
            abort();
        if (vrc != SOTTO_OK && vrc != SOTTO_ERR_INVALID_SIGNATURE &&
            vrc != SOTTO_ERR_DEVICE_LIST_ACCOUNT)
            abort();
        check_accepted(&parsed, buf, size);
    }
    if (vrc != SOTTO_OK && !all_zero(&verified, sizeof verified))
        abort();
    free(buf);
    return 0;
}
