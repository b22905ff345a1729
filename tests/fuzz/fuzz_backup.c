/*
 * Fuzz target: backup files (sotto/backup.h).
 * Input: a backup file. The harness knows the recovery code of its seeds
 * and opens with cheap Argon2id bounds (1..2 passes, 8..64 KiB, through the
 * internal sotto_backup_open_with) so thousands of files a second get past
 * the key derivation; the seeds decrypt. To reach past the AEAD on mutated
 * input, one input in two (low bit of an FNV-1a hash) is RE-SEALED: when
 * its header parses, the bytes after the header (minus a tag's worth) are
 * sealed as a payload with the header's own parameters, salt and nonce.
 * Invariants (abort on violation):
 *  - open never crashes, returns only documented codes, and leaves the
 *    output zeroed with length 0 on error;
 *  - a file that opens re-seals (same params, salt, nonce, code) to exactly
 *    its own bytes;
 *  - a re-sealed payload opens to the same bytes, not with another code
 *    (SOTTO_ERR_BACKUP_WRONG_CODE), not with its last byte cut;
 *  - read_params agrees with open on FORMAT and PARAMS.
 * Seeds: SOTTO_FUZZ_WRITE_SEEDS=dir writes them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "backup/backup_internal.h"
#include "sotto/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 4096

static const sotto_backup_limits LIMITS = {{1, 8192}, {2, 64 * 1024}};
static sotto_recovery_code g_code, g_other;
static int g_ready;

static void write_seed(const char *name, size_t payload_len, uint32_t ops, uint64_t mem)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    uint8_t payload[512], file[512 + SOTTO_BACKUP_OVERHEAD], salt[16], nonce[24];
    sotto_backup_params p = {ops, mem};
    size_t n = 0;
    char path[1024];
    FILE *f;

    if (dir == NULL)
        return;
    for (size_t i = 0; i < payload_len; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    memset(salt, (int)payload_len, sizeof salt);
    memset(nonce, (int)ops, sizeof nonce);
    if (sotto_backup_seal_with(file, sizeof file, &n, payload, payload_len, &g_code, &p, salt,
                               nonce, &LIMITS) != SOTTO_OK)
        abort();
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(file, 1, n, f) != n)
        abort();
    fclose(f);
}

static void setup_once(void)
{
    if (g_ready)
        return;
    g_ready = 1;
    if (sotto_init() != SOTTO_OK ||
        sotto_recovery_code_parse(&g_code, "11111-22222-33333-44444-55555-66666") != SOTTO_OK ||
        sotto_recovery_code_parse(&g_other, "11111-22222-33333-44444-55555-66667") != SOTTO_OK)
        abort();
    write_seed("empty.bin", 0, 1, 8192);
    write_seed("short.bin", 13, 1, 8192);
    write_seed("longer.bin", 300, 2, 16384);
}

static uint32_t fnv1a(const uint8_t *d, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return h;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return 0;
    }
    return 1;
}

/* Seals `payload` with the header of `hdr` (params, salt, nonce). */
static size_t reseal(uint8_t *out, size_t cap, const uint8_t *hdr, const sotto_backup_params *p,
                     const uint8_t *payload, size_t len)
{
    size_t n = 0;
    if (sotto_backup_seal_with(out, cap, &n, payload, len, &g_code, p, hdr + 28, hdr + 44,
                               &LIMITS) != SOTTO_OK ||
        n != len + SOTTO_BACKUP_OVERHEAD)
        abort();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[FUZZ_MAX_INPUT], again[FUZZ_MAX_INPUT + SOTTO_BACKUP_OVERHEAD];
    sotto_backup_params p;
    uint8_t *file;
    size_t n = 1, an;
    int rc, prc;

    setup_once();
    if (size > FUZZ_MAX_INPUT)
        return 0;
    file = malloc(size ? size : 1); /* exact size, so ASan sees overreads */
    if (file == NULL)
        abort();
    memcpy(file, data, size);
    prc = sotto_backup_read_params_with(file, size, &p, &LIMITS);

    if ((fnv1a(data, size) & 1) && prc == SOTTO_OK) {
        /* re-sealed: the mutated body becomes the payload */
        size_t plen = size - SOTTO_BACKUP_OVERHEAD;
        uint8_t *sealed = malloc(plen + SOTTO_BACKUP_OVERHEAD);
        if (sealed == NULL)
            abort();
        an = reseal(sealed, plen + SOTTO_BACKUP_OVERHEAD, file, &p,
                    file + SOTTO_BACKUP_HEADER_BYTES, plen);
        if (sotto_backup_open_with(out, sizeof out, &n, sealed, an, &g_code, &LIMITS) != SOTTO_OK ||
            n != plen || memcmp(out, file + SOTTO_BACKUP_HEADER_BYTES, plen) != 0)
            abort();
        if (sotto_backup_open_with(out, sizeof out, &n, sealed, an, &g_other, &LIMITS) !=
                SOTTO_ERR_BACKUP_WRONG_CODE ||
            n != 0 || !all_zero(out, sizeof out))
            abort();
        rc = sotto_backup_open_with(out, sizeof out, &n, sealed, an - 1, &g_code, &LIMITS);
        if ((rc != SOTTO_ERR_BACKUP_WRONG_CODE && rc != SOTTO_ERR_BACKUP_FORMAT) || n != 0)
            abort();
        free(sealed);
        free(file);
        return 0;
    }

    memset(out, 0xee, sizeof out);
    rc = sotto_backup_open_with(out, sizeof out, &n, file, size, &g_code, &LIMITS);
    if (rc != SOTTO_OK) {
        if ((rc != SOTTO_ERR_BACKUP_FORMAT && rc != SOTTO_ERR_BACKUP_PARAMS &&
             rc != SOTTO_ERR_BACKUP_WRONG_CODE) ||
            n != 0 || !all_zero(out, sizeof out))
            abort();
        if ((rc == SOTTO_ERR_BACKUP_WRONG_CODE) != (prc == SOTTO_OK) ||
            (rc != SOTTO_ERR_BACKUP_WRONG_CODE && rc != prc))
            abort();
    } else {
        if (prc != SOTTO_OK || n != size - SOTTO_BACKUP_OVERHEAD)
            abort();
        an = reseal(again, sizeof again, file, &p, out, n);
        if (an != size || memcmp(again, file, size) != 0)
            abort();
    }
    free(file);
    return 0;
}
