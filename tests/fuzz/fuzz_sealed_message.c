/*
 * Fuzz target: the sealed sender v1 opener (sotto_sealed_decrypt).
 * Input: first byte = mode, the rest:
 *  even: a sealed sender v1 message, opened with the harness recipient's
 *        identity key (what a client gets from the server);
 *  odd:  the INNER UnidentifiedSenderMessage.Message bytes, which the
 *        harness seals from its sender (alice) to its recipient (bob)
 *        through both layers (sotto_sealed_encrypt_usmc) before opening,
 *        so that mutated inner messages get past both MACs and reach the
 *        inner parser and the certificate checks.
 * The harness owns fixed trust-root, server, alice and bob keys and a
 * deterministic RNG; SOTTO_FUZZ_WRITE_SEEDS=dir writes valid sealed
 * messages (types 1, 2, 7, 8) and their inner messages.
 * Invariants (abort on violation):
 *  - nothing crashes; only documented codes come back; on error the result
 *    is all zero (no content, no certificate);
 *  - on success: a known type, content_len >= 1, the certificate validates
 *    on its own and its identity key is the sender's (alice's in odd mode:
 *    any other certificate key must give SEALED_MISMATCH);
 *  - an opened message does not open for another recipient.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "sealed/sealed_internal.h"
#include "sotto/sealed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1765065600000ull

static uint64_t g_ctr;
static sotto_key_pair g_root, g_server, g_alice, g_bob, g_carol;
static uint8_t *g_cert;
static size_t g_cert_len;
static int g_ready;

static void det_rng(void *ctx, void *p, size_t n)
{
    uint8_t seed[randombytes_SEEDBYTES] = {0};
    (void)ctx;
    memcpy(seed, &g_ctr, sizeof g_ctr);
    g_ctr++;
    randombytes_buf_deterministic(p, n, seed);
}

static void key_from(sotto_key_pair *kp, uint8_t fill)
{
    uint8_t priv[32];
    memset(priv, fill, sizeof priv);
    if (sotto_key_pair_from_private(kp, priv) != SOTTO_OK)
        abort();
}

static void write_file(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t n)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fputc(mode, f) == EOF || fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

/* UnidentifiedSenderMessage.Message {1: type, 2: cert, 3: content}. */
static size_t make_usmc(uint8_t *o, uint8_t type, const uint8_t *content, size_t n)
{
    size_t k = 0, v;
    o[k++] = 0x08;
    o[k++] = type;
    o[k++] = 0x12;
    v = g_cert_len;
    while (v >= 0x80) {
        o[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[k++] = (uint8_t)v;
    memcpy(o + k, g_cert, g_cert_len);
    k += g_cert_len;
    o[k++] = 0x1a;
    o[k++] = (uint8_t)n; /* n < 128 */
    memcpy(o + k, content, n);
    return k + n;
}

static void write_seeds(const char *dir)
{
    static const uint8_t types[] = {SOTTO_SEALED_TYPE_PREKEY, SOTTO_SEALED_TYPE_MESSAGE,
                                    SOTTO_SEALED_TYPE_SENDERKEY, SOTTO_SEALED_TYPE_PLAINTEXT};
    static const char content[] = "\x33\x0a\x21\x05 a Signal message";
    uint8_t usmc[1024];
    char name[64];

    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t *m = NULL;
        size_t n = 0;
        /* Two full messages, every type as an inner message (the replay
         * mutates every byte of every seed: keep the count small). */
        if (i < 2) {
            if (sotto_sealed_encrypt(&m, &n, &g_alice, &g_bob.pub, types[i], g_cert, g_cert_len,
                                     (const uint8_t *)content, sizeof content - 1) != SOTTO_OK)
                abort();
            snprintf(name, sizeof name, "sealed_type%u.bin", (unsigned)types[i]);
            write_file(dir, name, 0, m, n);
            free(m);
        }
        n = make_usmc(usmc, types[i], (const uint8_t *)content, sizeof content - 1);
        snprintf(name, sizeof name, "inner_type%u.bin", (unsigned)types[i]);
        write_file(dir, name, 1, usmc, n);
    }
}

static void setup_once(void)
{
    const char *dir;
    uint8_t *srv = NULL;
    size_t srv_len = 0;

    if (g_ready)
        return;
    g_ready = 1;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(det_rng, NULL);
    key_from(&g_root, 0x11);
    key_from(&g_server, 0x22);
    key_from(&g_alice, 0x44);
    key_from(&g_bob, 0x55);
    key_from(&g_carol, 0x66);
    if (sotto_server_certificate_create(&srv, &srv_len, 9, &g_server.pub, g_root.priv) !=
            SOTTO_OK ||
        sotto_sender_certificate_create(&g_cert, &g_cert_len, "alice", 2, &g_alice.pub,
                                        NOW + 86400000ull, srv, srv_len, g_server.priv) != SOTTO_OK)
        abort();
    free(srv);
    dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    if (dir != NULL && dir[0] != '\0')
        write_seeds(dir);
}

static int documented(int rc)
{
    switch (rc) {
    case SOTTO_ERR_UNSUPPORTED_VERSION:
    case SOTTO_ERR_INVALID_MESSAGE:
    case SOTTO_ERR_INVALID_KEY:
    case SOTTO_ERR_CERT_MALFORMED:
    case SOTTO_ERR_CERT_UNTRUSTED:
    case SOTTO_ERR_CERT_SIGNATURE:
    case SOTTO_ERR_CERT_EXPIRED:
    case SOTTO_ERR_SEALED_MISMATCH:
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

static void open_and_check(const uint8_t *m, size_t n, int harness_sealed)
{
    sotto_sealed_result r, r2;
    sotto_sender_certificate c;
    int rc;

    memset(&r, 0xA5, sizeof r);
    rc = sotto_sealed_decrypt(&r, m, n, &g_bob, &g_root.pub, NOW);
    if (rc != SOTTO_OK) {
        if (!documented(rc) || !all_zero(&r, sizeof r))
            abort();
        /* Sealed by the harness: both MACs hold, so no MAC failure can be
         * reported as a key or version problem. */
        if (harness_sealed && (rc == SOTTO_ERR_UNSUPPORTED_VERSION || rc == SOTTO_ERR_INVALID_KEY))
            abort();
        return;
    }
    if (r.content == NULL || r.content_len == 0 ||
        (r.type != 1 && r.type != 2 && r.type != 7 && r.type != 8))
        abort();
    if (!sotto_public_key_equal(&r.sender.identity_key, &g_alice.pub) ||
        sotto_sender_certificate_validate(&c, g_cert, g_cert_len, &g_root.pub, NOW) != SOTTO_OK)
        abort();
    if (sotto_sealed_decrypt(&r2, m, n, &g_carol, &g_root.pub, NOW) != SOTTO_ERR_INVALID_MESSAGE ||
        r2.content != NULL)
        abort();
    sotto_sealed_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *m = NULL;
    size_t n = 0;

    setup_once();
    if (size == 0 || size > 64 * 1024)
        return 0;
    if ((data[0] & 1) == 0) {
        open_and_check(data + 1, size - 1, 0);
        return 0;
    }
    if (sotto_sealed_encrypt_usmc(&m, &n, &g_alice, &g_bob.pub, data + 1, size - 1) != SOTTO_OK)
        abort();
    open_and_check(m, n, 1);
    free(m);
    return 0;
}
