/*
 * Fuzz target: attachment blob decryption (sotto/attachment.h), the one
 * libsotto decoder of attacker-controlled bytes that had no fuzz target
 * (review R1).
 *
 * Two attackers, chosen by bit 0 of the first input byte:
 *
 *  - 0, a hostile SENDER: it knows the key, so it can make any blob
 *    authentic. Input: [mode][size u16 BE][chunk][iv || ciphertext]. The
 *    harness appends HMAC-SHA256(mac_key, iv || ciphertext) under a fixed
 *    key and takes digest = SHA-256(blob): the MAC and digest checks pass
 *    and the length, padding and size logic behind them is what is fuzzed.
 *  - 1, a hostile SERVER: it does not know the key. Input: [mode][chunk]
 *    [blob], checked against the key, digest and size of one genuine
 *    700-byte attachment made at setup.
 *
 * Invariants (abort on violation):
 *  - sotto_attachment_decrypt() returns SOTTO_OK, SOTTO_ERR_INVALID_MESSAGE
 *    or (a claimed size over the cap) SOTTO_ERR_INVALID_ARGUMENT, and writes
 *    nothing to `out` unless it returns SOTTO_OK;
 *  - the verifier agrees with it (no plaintext involved), and the streaming
 *    decryptor fed in chunks (sizes from the chunk byte) reaches SOTTO_OK in
 *    its final call exactly when the one-shot call does, with the same
 *    plaintext;
 *  - a hostile server succeeds only with the genuine blob (and gets the
 *    genuine plaintext);
 *  - whatever a hostile sender gets accepted is canonical: re-encrypting
 *    the plaintext with the same key and IV reproduces the blob byte for
 *    byte (claimed size, bucket padding of zeros and PKCS#7 all checked).
 *
 * SOTTO_FUZZ_WRITE_SEEDS=dir writes the seed corpus (the genuine blob for
 * the server, three sizes around the 541-byte minimum bucket for the
 * sender); SOTTO_FUZZ_STATS prints how many inputs were accepted (every
 * seed must be).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sotto/attachment.h"
#include "sotto/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GENUINE_SIZE 700u
#define MAX_CLAIMED 0xFFFFu
#define SENTINEL 0xA5

static uint8_t g_key[SOTTO_ATTACHMENT_KEY_BYTES];
static uint8_t g_iv[SOTTO_ATTACHMENT_IV_BYTES];
static uint8_t g_plain[GENUINE_SIZE];
static uint8_t *g_blob;
static size_t g_blob_len;
static uint8_t g_digest[SOTTO_ATTACHMENT_DIGEST_BYTES];
static int g_ready;
static unsigned long g_ok[2]; /* successes: [0] hostile sender, [1] hostile server */

static void print_stats(void)
{
    fprintf(stderr, "fuzz_attachment: accepted %lu sender blobs, %lu server blobs\n", g_ok[0],
            g_ok[1]);
}

/* Encrypts pt (n bytes) with key and iv into a malloc()ed blob. */
static uint8_t *encrypt_blob(const uint8_t *pt, size_t n, const uint8_t *key, const uint8_t *iv,
                             size_t *blob_len, uint8_t digest[SOTTO_ATTACHMENT_DIGEST_BYTES])
{
    sotto_attachment_encryptor *enc = NULL;
    size_t cap = (size_t)sotto_attachment_blob_size(n);
    uint8_t *blob = malloc(cap + 1);
    uint8_t chunk[4096 + SOTTO_ATTACHMENT_UPDATE_SLACK + 16];
    size_t pos = 0, w;
    bool done = false;

    if (blob == NULL || sotto_attachment_encryptor_new_with_key(&enc, n, key, iv) != SOTTO_OK ||
        sotto_attachment_encrypt_update(enc, pt, n, blob, cap + 1, &w) != SOTTO_OK)
        abort();
    pos = w;
    while (!done) {
        if (sotto_attachment_encrypt_final(enc, chunk, sizeof chunk, &w, &done, digest) !=
                SOTTO_OK ||
            w > cap - pos)
            abort();
        memcpy(blob + pos, chunk, w);
        pos += w;
    }
    sotto_attachment_encryptor_free(enc);
    if (pos != cap)
        abort();
    *blob_len = pos;
    return blob;
}

static void write_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static void write_seeds(void)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    static const size_t sizes[] = {1, 541, 1000};
    if (dir == NULL)
        return;
    /* hostile server: the genuine blob */
    uint8_t *in = malloc(2 + g_blob_len);
    if (in == NULL)
        abort();
    in[0] = 1;
    in[1] = 13;
    memcpy(in + 2, g_blob, g_blob_len);
    write_seed(dir, "server_genuine", in, 2 + g_blob_len);
    free(in);
    /* hostile sender: genuine blobs without their MAC */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t pt[1000];
        uint8_t dig[SOTTO_ATTACHMENT_DIGEST_BYTES];
        size_t bl;
        char name[32];
        for (size_t k = 0; k < sizes[i]; k++)
            pt[k] = (uint8_t)(k * 7 + i);
        uint8_t *blob = encrypt_blob(pt, sizes[i], g_key, g_iv, &bl, dig);
        size_t body = bl - SOTTO_ATTACHMENT_MAC_BYTES;
        in = malloc(4 + body);
        if (in == NULL)
            abort();
        in[0] = 0;
        in[1] = (uint8_t)(sizes[i] >> 8);
        in[2] = (uint8_t)sizes[i];
        in[3] = (uint8_t)(31 + i);
        memcpy(in + 4, blob, body);
        snprintf(name, sizeof name, "sender_%zu", sizes[i]);
        write_seed(dir, name, in, 4 + body);
        free(in);
        free(blob);
    }
}

static void setup_once(void)
{
    if (g_ready)
        return;
    if (sotto_init() != SOTTO_OK)
        abort();
    for (size_t i = 0; i < sizeof g_key; i++)
        g_key[i] = (uint8_t)(0x10 + i);
    for (size_t i = 0; i < sizeof g_iv; i++)
        g_iv[i] = (uint8_t)(0xC0 + i);
    for (size_t i = 0; i < sizeof g_plain; i++)
        g_plain[i] = (uint8_t)(i * 13 + 1);
    g_blob = encrypt_blob(g_plain, sizeof g_plain, g_key, g_iv, &g_blob_len, g_digest);
    g_ready = 1;
    if (getenv("SOTTO_FUZZ_STATS") != NULL)
        atexit(print_stats);
    write_seeds();
}

/* Streaming decryption in chunks of 1 + (k % step) bytes; returns the final
 * result and the plaintext (malloc()ed) in *pt / *pt_len. */
static int stream_decrypt(uint64_t claimed, const uint8_t *digest, const uint8_t *blob,
                          size_t blob_len, unsigned step, uint8_t **pt, size_t *pt_len)
{
    sotto_attachment_decryptor *dec = NULL;
    uint8_t *out = malloc(blob_len + SOTTO_ATTACHMENT_UPDATE_SLACK + 1);
    uint8_t buf[512 + SOTTO_ATTACHMENT_UPDATE_SLACK];
    size_t pos = 0, n = 0, w;
    unsigned k = 0;
    int rc;

    if (out == NULL)
        abort();
    rc = sotto_attachment_decryptor_new(&dec, claimed, g_key, digest);
    if (rc != SOTTO_OK)
        goto out;
    while (pos < blob_len) {
        size_t chunk = 1 + (k++ * 7919u) % step;
        if (chunk > blob_len - pos)
            chunk = blob_len - pos;
        if (chunk > 512)
            chunk = 512;
        rc = sotto_attachment_decrypt_update(dec, blob + pos, chunk, buf, sizeof buf, &w);
        if (rc != SOTTO_OK)
            goto out;
        if (w > chunk + SOTTO_ATTACHMENT_UPDATE_SLACK)
            abort();
        memcpy(out + n, buf, w);
        n += w;
        pos += chunk;
    }
    rc = sotto_attachment_decrypt_final(dec, buf, sizeof buf, &w);
    if (rc == SOTTO_OK) {
        memcpy(out + n, buf, w);
        n += w;
    }
out:
    sotto_attachment_decryptor_free(dec);
    *pt = out;
    *pt_len = n;
    return rc;
}

static int verify_only(uint64_t claimed, const uint8_t *digest, const uint8_t *blob, size_t n)
{
    sotto_attachment_verifier *v = NULL;
    int rc = sotto_attachment_verifier_new(&v, claimed, g_key, digest);
    if (rc == SOTTO_OK)
        rc = sotto_attachment_verify_update(v, blob, n);
    if (rc == SOTTO_OK)
        rc = sotto_attachment_verify_final(v);
    sotto_attachment_verifier_free(v);
    return rc;
}

static void check(uint64_t claimed, const uint8_t *digest, const uint8_t *blob, size_t blob_len,
                  unsigned step, bool hostile_server)
{
    size_t cap = (size_t)claimed + 1;
    uint8_t *out = malloc(cap);
    uint8_t *spt = NULL;
    size_t spt_len = 0;
    int rc, vrc, src;

    if (out == NULL)
        abort();
    memset(out, SENTINEL, cap);
    rc = sotto_attachment_decrypt(out, claimed, g_key, digest, blob, blob_len);
    if (rc != SOTTO_OK && rc != SOTTO_ERR_INVALID_MESSAGE && rc != SOTTO_ERR_INVALID_ARGUMENT)
        abort();
    if (rc != SOTTO_OK) {
        for (size_t i = 0; i < cap; i++)
            if (out[i] != SENTINEL)
                abort(); /* plaintext written on failure */
    } else if (out[claimed] != SENTINEL) {
        abort(); /* wrote past the claimed size */
    }
    vrc = verify_only(claimed, digest, blob, blob_len);
    if (rc == SOTTO_OK && vrc != SOTTO_OK)
        abort(); /* one-shot success without a verified blob */
    if (hostile_server && vrc == SOTTO_OK &&
        (blob_len != g_blob_len || memcmp(blob, g_blob, blob_len) != 0))
        abort(); /* a forged blob verified */
    src = stream_decrypt(claimed, digest, blob, blob_len, step, &spt, &spt_len);
    if ((src == SOTTO_OK) != (rc == SOTTO_OK))
        abort();
    if (rc == SOTTO_OK) {
        g_ok[hostile_server ? 1 : 0]++;
        if (spt_len != claimed || (claimed > 0 && memcmp(spt, out, (size_t)claimed) != 0))
            abort();
        if (hostile_server) {
            if (blob_len != g_blob_len || memcmp(blob, g_blob, blob_len) != 0 ||
                claimed != GENUINE_SIZE || memcmp(out, g_plain, GENUINE_SIZE) != 0)
                abort();
        } else {
            /* Canonical: the same key and IV give back exactly this blob. */
            size_t again_len;
            uint8_t dig[SOTTO_ATTACHMENT_DIGEST_BYTES];
            uint8_t *again = encrypt_blob(out, (size_t)claimed, g_key, blob, &again_len, dig);
            if (again_len != blob_len || memcmp(again, blob, blob_len) != 0 ||
                memcmp(dig, digest, sizeof dig) != 0)
                abort();
            free(again);
        }
    }
    if (spt != NULL) {
        sodium_memzero(spt, spt_len);
        free(spt);
    }
    sodium_memzero(out, cap);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    if (size < 2)
        return 0;
    if (data[0] & 1) {
        /* hostile server */
        check(GENUINE_SIZE, g_digest, data + 2, size - 2, 1u + data[1], true);
        return 0;
    }
    if (size < 4)
        return 0;
    uint64_t claimed = ((uint64_t)data[1] << 8) | data[2];
    size_t body = size - 4;
    uint8_t *blob = malloc(body + SOTTO_ATTACHMENT_MAC_BYTES);
    uint8_t digest[SOTTO_ATTACHMENT_DIGEST_BYTES];
    if (blob == NULL)
        abort();
    if (body > 0)
        memcpy(blob, data + 4, body);
    crypto_auth_hmacsha256(blob + body, blob, body, g_key + 32);
    crypto_hash_sha256(digest, blob, body + SOTTO_ATTACHMENT_MAC_BYTES);
    if (claimed <= MAX_CLAIMED)
        check(claimed, digest, blob, body + SOTTO_ATTACHMENT_MAC_BYTES, 1u + data[3], false);
    free(blob);
    return 0;
}
