/*
 * Fuzz target: the sealed sender certificates (sotto/sealed.h).
 * Input: first byte = mode (low 2 bits), the rest:
 *  0: a serialised SenderCertificate (as found inside a sealed message);
 *  1: the INNER SenderCertificate.Certificate bytes, which the harness signs
 *     with its server certificate key and wraps, so that mutated inner
 *     certificates get past the signature check;
 *  2: a serialised ServerCertificate;
 *  3: the inner ServerCertificate.Certificate bytes, signed by the harness's
 *     trust root and wrapped.
 * The harness owns fixed trust-root and server keys (deterministic RNG);
 * SOTTO_FUZZ_WRITE_SEEDS=dir writes seeds for every mode made with them.
 * Invariants (abort on violation):
 *  - nothing crashes; only documented codes come back; the output is left
 *    untouched on error;
 *  - validate OK implies decode OK with the same fields, a valid username,
 *    a device id in 1 .. 2^31-1, and EXPIRED one millisecond after expiry;
 *  - a certificate validated under the harness root also fails under
 *    another root (UNTRUSTED);
 *  - an inner certificate the harness signed never gives CERT_SIGNATURE.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "sotto/sealed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1765065600000ull

static uint64_t g_ctr;
static sotto_key_pair g_root, g_server, g_other_root, g_alice;
static uint8_t *g_srv_cert;
static size_t g_srv_cert_len;
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

/* The inner bytes of an outer {1: inner, 2: sig}: field 1 comes first. */
static const uint8_t *inner_of(const uint8_t *c, size_t n, size_t *inner_len)
{
    size_t len = 0, i = 1;
    unsigned shift = 0;
    if (n < 2 || c[0] != 0x0a)
        abort();
    while (i < n && (c[i] & 0x80)) {
        len |= (size_t)(c[i] & 0x7f) << shift;
        shift += 7;
        i++;
    }
    len |= (size_t)c[i] << shift;
    *inner_len = len;
    return c + i + 1;
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

static void write_seeds(const char *dir)
{
    uint8_t *c = NULL;
    size_t n = 0, il = 0;
    const uint8_t *in;

    if (sotto_sender_certificate_create(&c, &n, "alice", 3, &g_alice.pub, NOW + 86400000ull,
                                        g_srv_cert, g_srv_cert_len, g_server.priv) != SOTTO_OK)
        abort();
    write_file(dir, "sender_alice.bin", 0, c, n);
    in = inner_of(c, n, &il);
    write_file(dir, "sender_alice_inner.bin", 1, in, il);
    free(c);
    if (sotto_sender_certificate_create(&c, &n, "a_very_long.username_of_32chars", 0x7FFFFFFF,
                                        &g_alice.pub, UINT64_MAX, g_srv_cert, g_srv_cert_len,
                                        g_server.priv) != SOTTO_OK)
        abort();
    write_file(dir, "sender_long.bin", 0, c, n);
    in = inner_of(c, n, &il);
    write_file(dir, "sender_long_inner.bin", 1, in, il);
    free(c);
    write_file(dir, "server.bin", 2, g_srv_cert, g_srv_cert_len);
    in = inner_of(g_srv_cert, g_srv_cert_len, &il);
    write_file(dir, "server_inner.bin", 3, in, il);
}

static void setup_once(void)
{
    const char *dir;
    if (g_ready)
        return;
    g_ready = 1;
    if (sotto_init() != SOTTO_OK)
        abort();
    sotto_test_set_random(det_rng, NULL);
    key_from(&g_root, 0x11);
    key_from(&g_server, 0x22);
    key_from(&g_other_root, 0x33);
    key_from(&g_alice, 0x44);
    if (sotto_server_certificate_create(&g_srv_cert, &g_srv_cert_len, 9, &g_server.pub,
                                        g_root.priv) != SOTTO_OK)
        abort();
    dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    if (dir != NULL && dir[0] != '\0')
        write_seeds(dir);
}

/* {1: inner, 2: XEdDSA(priv, inner)} into a fresh heap buffer. */
static uint8_t *wrap(const uint8_t *inner, size_t n, const uint8_t priv[32], size_t *out_len)
{
    uint8_t sig[64];
    uint8_t *o = malloc(n + 16 + 66);
    size_t k = 0, v = n;
    if (o == NULL || sotto_xeddsa_sign(sig, priv, inner, n) != SOTTO_OK)
        abort();
    o[k++] = 0x0a;
    while (v >= 0x80) {
        o[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[k++] = (uint8_t)v;
    if (n > 0)
        memcpy(o + k, inner, n);
    k += n;
    o[k++] = 0x12;
    o[k++] = 64;
    memcpy(o + k, sig, 64);
    *out_len = k + 64;
    return o;
}

static int is_cert_error(int rc)
{
    return rc == SOTTO_ERR_CERT_MALFORMED || rc == SOTTO_ERR_CERT_UNTRUSTED ||
           rc == SOTTO_ERR_CERT_SIGNATURE || rc == SOTTO_ERR_CERT_EXPIRED;
}

static void fuzz_sender(const uint8_t *c, size_t n, int harness_signed)
{
    sotto_sender_certificate v, d, sentinel;
    int rc, rd;

    memset(&sentinel, 0xA5, sizeof sentinel);
    v = sentinel;
    rc = sotto_sender_certificate_validate(&v, c, n, &g_root.pub, NOW);
    d = sentinel;
    rd = sotto_sender_certificate_decode(&d, c, n);
    if (rd != SOTTO_OK && rd != SOTTO_ERR_CERT_MALFORMED)
        abort();
    if (rd != SOTTO_OK && memcmp(&d, &sentinel, sizeof d) != 0)
        abort();
    if (rc != SOTTO_OK) {
        if (!is_cert_error(rc) || memcmp(&v, &sentinel, sizeof v) != 0)
            abort();
        if (rd != SOTTO_OK && rc != SOTTO_ERR_CERT_MALFORMED)
            abort();
        if (harness_signed && rc == SOTTO_ERR_CERT_SIGNATURE)
            abort();
        return;
    }
    if (rd != SOTTO_OK || memcmp(&v, &d, sizeof v) != 0)
        abort();
    if (!sotto_username_valid(v.sender) || v.device_id == 0 || v.device_id > 0x7FFFFFFFu ||
        v.identity_key.bytes[0] != SOTTO_KEY_TYPE_DJB)
        abort();
    if (v.expires_ms != UINT64_MAX &&
        sotto_sender_certificate_validate(&d, c, n, &g_root.pub, v.expires_ms + 1) !=
            SOTTO_ERR_CERT_EXPIRED)
        abort();
    if (sotto_sender_certificate_validate(&d, c, n, &g_other_root.pub, NOW) !=
        SOTTO_ERR_CERT_UNTRUSTED)
        abort();
}

static void fuzz_server(const uint8_t *c, size_t n)
{
    sotto_server_certificate v, sentinel;
    int rc;

    memset(&sentinel, 0x5A, sizeof sentinel);
    v = sentinel;
    rc = sotto_server_certificate_validate(&v, c, n, &g_root.pub);
    if (rc != SOTTO_OK) {
        if ((rc != SOTTO_ERR_CERT_MALFORMED && rc != SOTTO_ERR_CERT_UNTRUSTED) ||
            memcmp(&v, &sentinel, sizeof v) != 0)
            abort();
        return;
    }
    if (v.key.bytes[0] != SOTTO_KEY_TYPE_DJB ||
        sotto_server_certificate_validate(&v, c, n, &g_other_root.pub) != SOTTO_ERR_CERT_UNTRUSTED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *w;
    size_t wl;

    setup_once();
    if (size == 0 || size > 4 * SOTTO_CERT_MAX_BYTES)
        return 0;
    switch (data[0] & 3) {
    case 0:
        fuzz_sender(data + 1, size - 1, 0);
        break;
    case 1:
        w = wrap(data + 1, size - 1, g_server.priv, &wl);
        fuzz_sender(w, wl, 1);
        free(w);
        break;
    case 2:
        fuzz_server(data + 1, size - 1);
        break;
    default:
        w = wrap(data + 1, size - 1, g_root.priv, &wl);
        fuzz_server(w, wl);
        free(w);
        break;
    }
    return 0;
}
