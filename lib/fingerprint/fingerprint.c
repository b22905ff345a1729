/*
 * lib/fingerprint/fingerprint.c -- numeric fingerprint ("safety number")
 * and its scannable protobuf form. Spec: signal-protocol.md section 4;
 * the header sotto/fingerprint.h states the algorithm.
 *
 * The scannable form is written and read with common/pb.h. Our own
 * encoding is parsed back with the same parser that reads the peer's, so
 * the comparison works on two values of the same shape.
 */
#include "sotto/fingerprint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/pb.h"

#define FP_HASH_BYTES 64
#define FP_DISPLAY_BYTES 30 /* FINGERPRINT_LENGTH: bytes of hash shown per party */
#define FP_V1_CONTENT_BYTES 32

/* Protobuf field numbers (FingerprintProtocol.proto). */
enum {
    PB_COMBINED_VERSION = 1,
    PB_COMBINED_LOCAL = 2,
    PB_COMBINED_REMOTE = 3,
    PB_LOGICAL_CONTENT = 1,
    PB_LOGICAL_IDENTIFIER = 2,
};

struct sotto_fingerprint {
    uint32_t version;
    char display[SOTTO_FP_DISPLAY_DIGITS + 1];
    uint8_t *scannable; /* owned, malloc()ed */
    size_t scannable_len;
};

/* A LogicalFingerprint as read from the wire (pointers into the input). */
typedef struct logical_fp {
    bool present;
    bool has_content;
    const uint8_t *content;
    size_t content_len;
    bool has_identifier;
    const uint8_t *identifier;
    size_t identifier_len;
} logical_fp;

typedef struct combined_fp {
    uint32_t version; /* 0 when absent, as proto2 defaults */
    logical_fp local;
    logical_fp remote;
} combined_fp;

/* ---------------------------------------------------------------------- */

static int key_cmp(const void *a, const void *b)
{
    return memcmp(((const sotto_public_key *)a)->bytes, ((const sotto_public_key *)b)->bytes,
                  SOTTO_PUBLIC_KEY_BYTES);
}

/*
 * key_bytes of one party: its keys sorted ascending, each 33 bytes,
 * concatenated. *out is malloc()ed (caller frees).
 */
static int sorted_key_bytes(uint8_t **out, size_t *out_len, const sotto_public_key *keys, size_t n)
{
    sotto_public_key *copy = NULL;
    uint8_t *kb = NULL;
    size_t i;
    int rc;

    copy = malloc(n * sizeof *copy);
    kb = malloc(n * SOTTO_PUBLIC_KEY_BYTES);
    rc = SOTTO_ERR_NOMEM;
    if (copy == NULL || kb == NULL)
        goto out;
    for (i = 0; i < n; i++) {
        rc = SOTTO_ERR_INVALID_KEY;
        if (keys[i].bytes[0] != SOTTO_KEY_TYPE_DJB)
            goto out;
        copy[i] = keys[i];
    }
    qsort(copy, n, sizeof *copy, key_cmp);
    for (i = 0; i < n; i++)
        memcpy(kb + i * SOTTO_PUBLIC_KEY_BYTES, copy[i].bytes, SOTTO_PUBLIC_KEY_BYTES);
    *out = kb;
    *out_len = n * SOTTO_PUBLIC_KEY_BYTES;
    kb = NULL;
    rc = SOTTO_OK;
out:
    free(copy);
    free(kb);
    return rc;
}

/* hash = SHA-512^iterations starting from 0x00 0x00 || kb || id, each round
 * hashing (previous || kb). */
static void party_hash(uint8_t out[FP_HASH_BYTES], uint32_t iterations, const uint8_t *kb,
                       size_t kb_len, const char *id, size_t id_len)
{
    static const uint8_t version[2] = {0x00, 0x00};
    crypto_hash_sha512_state st;
    uint32_t i;

    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, version, sizeof version);
    crypto_hash_sha512_update(&st, kb, kb_len);
    crypto_hash_sha512_update(&st, (const uint8_t *)id, id_len);
    crypto_hash_sha512_update(&st, kb, kb_len);
    crypto_hash_sha512_final(&st, out);
    for (i = 1; i < iterations; i++) {
        crypto_hash_sha512_init(&st);
        crypto_hash_sha512_update(&st, out, FP_HASH_BYTES);
        crypto_hash_sha512_update(&st, kb, kb_len);
        crypto_hash_sha512_final(&st, out);
    }
}

/* 30 digits: six big-endian 40-bit chunks, each % 100000, zero-padded. */
static void display_part(char out[31], const uint8_t hash[FP_HASH_BYTES])
{
    int c;
    int k;

    for (c = 0; c < FP_DISPLAY_BYTES / 5; c++) {
        uint64_t v = 0;
        uint32_t d;

        for (k = 0; k < 5; k++)
            v = (v << 8) | hash[c * 5 + k];
        d = (uint32_t)(v % 100000u);
        for (k = 4; k >= 0; k--) {
            out[c * 5 + k] = (char)('0' + d % 10u);
            d /= 10u;
        }
    }
    out[30] = '\0';
}

static void put_logical(sotto_wbuf *w, uint32_t field, const uint8_t *content, size_t content_len,
                        const char *id, size_t id_len, bool with_id)
{
    sotto_wbuf sub;
    uint8_t *p = NULL;
    size_t n = 0;

    sotto_wbuf_init(&sub, SOTTO_FP_SCANNABLE_MAX);
    sotto_pb_put_bytes(&sub, PB_LOGICAL_CONTENT, content, content_len);
    if (with_id)
        sotto_pb_put_bytes(&sub, PB_LOGICAL_IDENTIFIER, id, id_len);
    if (sotto_wbuf_steal(&sub, &p, &n) != SOTTO_OK) {
        /* Propagate the failure into the outer writer (sticky). */
        if (w->err == SOTTO_OK)
            w->err = sotto_wbuf_error(&sub) != SOTTO_OK ? sotto_wbuf_error(&sub) : SOTTO_ERR_NOMEM;
        sotto_wbuf_free(&sub);
        return;
    }
    sotto_pb_put_bytes(w, field, p, n);
    free(p);
    sotto_wbuf_free(&sub);
}

static int parse_logical(logical_fp *out, const uint8_t *data, size_t len)
{
    sotto_rbuf r;
    sotto_pb_field f;
    int rc;

    memset(out, 0, sizeof *out);
    out->present = true;
    sotto_rbuf_init(&r, data, len);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        if (f.num == PB_LOGICAL_CONTENT) {
            if (sotto_pb_get_bytes(&f, &out->content, &out->content_len) != SOTTO_OK)
                return SOTTO_ERR_INVALID_MESSAGE;
            out->has_content = true;
        } else if (f.num == PB_LOGICAL_IDENTIFIER) {
            if (sotto_pb_get_bytes(&f, &out->identifier, &out->identifier_len) != SOTTO_OK)
                return SOTTO_ERR_INVALID_MESSAGE;
            out->has_identifier = true;
        }
        /* Unknown fields are skipped, as protobuf does. */
    }
    return rc == 0 ? SOTTO_OK : SOTTO_ERR_INVALID_MESSAGE;
}

/* Parses a serialised CombinedFingerprints (untrusted). Pointers in *out
 * point into data. A repeated field: the last one wins. */
static int parse_combined(combined_fp *out, const uint8_t *data, size_t len)
{
    sotto_rbuf r;
    sotto_pb_field f;
    const uint8_t *p;
    size_t n;
    int rc;

    memset(out, 0, sizeof *out);
    if (len > SOTTO_FP_SCANNABLE_MAX)
        return SOTTO_ERR_INVALID_MESSAGE;
    sotto_rbuf_init(&r, data, len);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case PB_COMBINED_VERSION:
            if (sotto_pb_get_u32(&f, &out->version) != SOTTO_OK)
                return SOTTO_ERR_INVALID_MESSAGE;
            break;
        case PB_COMBINED_LOCAL:
        case PB_COMBINED_REMOTE:
            if (sotto_pb_get_bytes(&f, &p, &n) != SOTTO_OK)
                return SOTTO_ERR_INVALID_MESSAGE;
            rc = parse_logical(f.num == PB_COMBINED_LOCAL ? &out->local : &out->remote, p, n);
            if (rc != SOTTO_OK)
                return rc;
            break;
        default:
            break;
        }
    }
    return rc == 0 ? SOTTO_OK : SOTTO_ERR_INVALID_MESSAGE;
}

/* ---------------------------------------------------------------------- */

int sotto_fingerprint_create(sotto_fingerprint **out, uint32_t iterations,
                             uint32_t scannable_version, const char *local_id,
                             const sotto_public_key *local_keys, size_t local_n,
                             const char *remote_id, const sotto_public_key *remote_keys,
                             size_t remote_n)
{
    sotto_fingerprint *fp = NULL;
    uint8_t *local_kb = NULL;
    uint8_t *remote_kb = NULL;
    size_t local_kb_len = 0;
    size_t remote_kb_len = 0;
    size_t local_id_len;
    size_t remote_id_len;
    uint8_t local_hash[FP_HASH_BYTES];
    uint8_t remote_hash[FP_HASH_BYTES];
    char local_digits[31];
    char remote_digits[31];
    sotto_wbuf w;
    bool v0 = scannable_version == SOTTO_FP_SCANNABLE_V0;
    int rc = SOTTO_ERR_INVALID_ARGUMENT;

    sotto_wbuf_init(&w, SOTTO_FP_SCANNABLE_MAX);
    if (out == NULL)
        goto out;
    *out = NULL;
    if (iterations == 0 || iterations > SOTTO_FP_MAX_ITERATIONS ||
        (scannable_version != SOTTO_FP_SCANNABLE_V0 &&
         scannable_version != SOTTO_FP_SCANNABLE_V1) ||
        local_id == NULL || remote_id == NULL || local_keys == NULL || remote_keys == NULL ||
        local_n == 0 || local_n > SOTTO_FP_MAX_KEYS || remote_n == 0 ||
        remote_n > SOTTO_FP_MAX_KEYS)
        goto out;
    local_id_len = strnlen(local_id, SOTTO_FP_MAX_ID_BYTES + 1);
    remote_id_len = strnlen(remote_id, SOTTO_FP_MAX_ID_BYTES + 1);
    if (local_id_len > SOTTO_FP_MAX_ID_BYTES || remote_id_len > SOTTO_FP_MAX_ID_BYTES)
        goto out;

    rc = sorted_key_bytes(&local_kb, &local_kb_len, local_keys, local_n);
    if (rc != SOTTO_OK)
        goto out;
    rc = sorted_key_bytes(&remote_kb, &remote_kb_len, remote_keys, remote_n);
    if (rc != SOTTO_OK)
        goto out;

    rc = SOTTO_ERR_NOMEM;
    fp = calloc(1, sizeof *fp);
    if (fp == NULL)
        goto out;
    fp->version = scannable_version;

    party_hash(local_hash, iterations, local_kb, local_kb_len, local_id, local_id_len);
    party_hash(remote_hash, iterations, remote_kb, remote_kb_len, remote_id, remote_id_len);

    /* Display: both 30-digit halves, the smaller first (spec 4). */
    display_part(local_digits, local_hash);
    display_part(remote_digits, remote_hash);
    if (strcmp(local_digits, remote_digits) <= 0) {
        memcpy(fp->display, local_digits, 30);
        memcpy(fp->display + 30, remote_digits, 30);
    } else {
        memcpy(fp->display, remote_digits, 30);
        memcpy(fp->display + 30, local_digits, 30);
    }
    fp->display[SOTTO_FP_DISPLAY_DIGITS] = '\0';

    /* Scannable: CombinedFingerprints{version, local, remote}. */
    sotto_pb_put_uint(&w, PB_COMBINED_VERSION, scannable_version);
    if (v0) {
        put_logical(&w, PB_COMBINED_LOCAL, local_kb, local_kb_len, local_id, local_id_len, true);
        put_logical(&w, PB_COMBINED_REMOTE, remote_kb, remote_kb_len, remote_id, remote_id_len,
                    true);
    } else {
        put_logical(&w, PB_COMBINED_LOCAL, local_hash, FP_V1_CONTENT_BYTES, NULL, 0, false);
        put_logical(&w, PB_COMBINED_REMOTE, remote_hash, FP_V1_CONTENT_BYTES, NULL, 0, false);
    }
    rc = sotto_wbuf_steal(&w, &fp->scannable, &fp->scannable_len);
    if (rc != SOTTO_OK)
        goto out;

    *out = fp;
    fp = NULL;
    rc = SOTTO_OK;
out:
    sotto_wbuf_free(&w);
    sotto_fingerprint_free(fp);
    free(local_kb);
    free(remote_kb);
    return rc;
}

void sotto_fingerprint_free(sotto_fingerprint *fp)
{
    if (fp == NULL)
        return;
    free(fp->scannable);
    free(fp);
}

const char *sotto_fingerprint_display(const sotto_fingerprint *fp)
{
    if (fp == NULL)
        return "";
    return fp->display;
}

int sotto_fingerprint_scannable(const sotto_fingerprint *fp, const uint8_t **data, size_t *len)
{
    if (fp == NULL || data == NULL || len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *data = fp->scannable;
    *len = fp->scannable_len;
    return SOTTO_OK;
}

/* Fingerprints are public, but the comparison is the user's verification
 * step: constant time, as every security comparison (scripts/check-banned.sh) */
static bool bytes_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    return a_len == 0 || sodium_memcmp(a, b, a_len) == 0;
}

int sotto_fingerprint_compare_scanned(const sotto_fingerprint *fp, const uint8_t *scanned,
                                      size_t len, bool *match)
{
    combined_fp ours;
    combined_fp theirs;
    int rc;

    if (match != NULL)
        *match = false;
    if (fp == NULL || match == NULL || (scanned == NULL && len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (parse_combined(&ours, fp->scannable, fp->scannable_len) != SOTTO_OK)
        return SOTTO_ERR_INTERNAL;
    rc = parse_combined(&theirs, scanned, len);
    if (rc != SOTTO_OK)
        return rc;

    /* As libsignal-protocol-c: a missing part counts as a version mismatch. */
    if (!theirs.local.has_content || !theirs.remote.has_content || theirs.version != ours.version)
        return SOTTO_ERR_FP_VERSION_MISMATCH;
    if (ours.version == SOTTO_FP_SCANNABLE_V0) {
        if (!theirs.remote.has_identifier || !theirs.local.has_identifier ||
            !bytes_equal(ours.local.identifier, ours.local.identifier_len, theirs.remote.identifier,
                         theirs.remote.identifier_len) ||
            !bytes_equal(ours.remote.identifier, ours.remote.identifier_len,
                         theirs.local.identifier, theirs.local.identifier_len))
            return SOTTO_ERR_FP_IDENT_MISMATCH;
    }
    *match = bytes_equal(ours.local.content, ours.local.content_len, theirs.remote.content,
                         theirs.remote.content_len) &&
             bytes_equal(ours.remote.content, ours.remote.content_len, theirs.local.content,
                         theirs.local.content_len);
    return SOTTO_OK;
}
