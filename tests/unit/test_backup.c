/*
 * Backup files and recovery codes (sotto/backup.h): a known-answer file
 * computed OUTSIDE libsotto (Argon2id by the reference `argon2` CLI,
 * XChaCha20-Poly1305 by Python's ChaCha20Poly1305 after an HChaCha20 checked
 * against draft-irtf-cfrg-xchacha 2.2.1), round trips through the public
 * API with real (INTERACTIVE and default) parameters, wrong code, every bit
 * of the header and body flipped, every truncation, parameters out of
 * range, and recovery-code generation, display and parsing.
 *
 * Most files here use cheap Argon2id parameters (1 pass, 8 KiB) through
 * the internal *_with functions, which take the accepted bounds as an
 * argument; the public functions refuse such files (tested below).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "backup/backup_internal.h"
#include "sotto/keys.h"
#include "testutil.h"

/* code 0123456789 x3, ops 1, mem 8192, salt 01 x16, nonce 02 x24,
 * payload "hello, backup" (13 bytes): 68 + 13 + 16 = 97 bytes. */
static const char KAT_FILE_HEX[] = "534f54544f2d4241434b55502d56310a" /* "SOTTO-BACKUP-V1\n" */
                                   "00000001"                         /* opslimit */
                                   "0000000000002000"                 /* memlimit 8192 */
                                   "01010101010101010101010101010101" /* salt */
                                   "020202020202020202020202020202020202020202020202" /* nonce */
                                   "751eb5d94062ad7dca4eb07b8a"        /* ciphertext */
                                   "34bfabfb3094dc189775bde028bab3b6"; /* tag */

static const sotto_backup_limits CHEAP = {{1, 8192}, {4, 1024 * 1024}};
static const sotto_backup_params CHEAP_PARAMS = {1, 8192};

static void kat_code(sotto_recovery_code *c)
{
    assert_int_equal(sotto_recovery_code_parse(c, "01234 56789 01234 56789 01234 56789"), SOTTO_OK);
}

static void assert_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b[i], 0);
}

static int setup(void **state)
{
    (void)state;
    return sotto_init() == SOTTO_OK ? 0 : -1;
}

static void test_kat(void **state)
{
    sotto_recovery_code code;
    uint8_t salt[16], nonce[24], out[128], pt[64];
    size_t n = 0, want_len = 0, pn = 0;
    uint8_t *want = tu_unhex(KAT_FILE_HEX, &want_len);
    sotto_backup_params p;

    (void)state;
    kat_code(&code);
    memset(salt, 0x01, sizeof salt);
    memset(nonce, 0x02, sizeof nonce);
    assert_int_equal(want_len, 97);
    assert_int_equal(sotto_backup_seal_with(out, sizeof out, &n, (const uint8_t *)"hello, backup",
                                            13, &code, &CHEAP_PARAMS, salt, nonce, &CHEAP),
                     SOTTO_OK);
    assert_int_equal(n, 97);
    assert_memory_equal(out, want, 97);
    assert_int_equal(sotto_backup_open_with(pt, sizeof pt, &pn, want, want_len, &code, &CHEAP),
                     SOTTO_OK);
    assert_int_equal(pn, 13);
    assert_memory_equal(pt, "hello, backup", 13);
    assert_int_equal(sotto_backup_read_params_with(want, want_len, &p, &CHEAP), SOTTO_OK);
    assert_int_equal(p.opslimit, 1);
    assert_true(p.memlimit == 8192);
    /* the public API refuses a file this cheap, before deriving anything */
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, want, want_len, &code),
                     SOTTO_ERR_BACKUP_PARAMS);
    assert_int_equal(pn, 0);
    assert_int_equal(sotto_backup_read_params(want, want_len, &p), SOTTO_ERR_BACKUP_PARAMS);
    assert_int_equal(p.opslimit, 1); /* still reported */
    sotto_recovery_code_wipe(&code);
    free(want);
}

static void test_public_round_trip(void **state)
{
    sotto_recovery_code code, wrong;
    sotto_backup_params p = {crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE};
    static const char payload[] = "account key, contacts, groups";
    uint8_t file[256], pt[256], file2[256];
    size_t n = 0, pn = 0, n2 = 0;

    (void)state;
    assert_int_equal(sotto_recovery_code_generate(&code), SOTTO_OK);
    assert_int_equal(sotto_backup_seal(file, sizeof file, &n, (const uint8_t *)payload,
                                       sizeof payload, &code, &p),
                     SOTTO_OK);
    assert_int_equal(n, sizeof payload + SOTTO_BACKUP_OVERHEAD);
    assert_memory_equal(file, SOTTO_BACKUP_MAGIC, 16);
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, file, n, &code), SOTTO_OK);
    assert_int_equal(pn, sizeof payload);
    assert_memory_equal(pt, payload, sizeof payload);
    /* fresh salt and nonce: sealing again gives another file */
    assert_int_equal(sotto_backup_seal(file2, sizeof file2, &n2, (const uint8_t *)payload,
                                       sizeof payload, &code, &p),
                     SOTTO_OK);
    assert_int_equal(n2, n);
    assert_memory_not_equal(file2 + 28, file + 28, 40);
    /* wrong code: its own error, no plaintext left */
    wrong = code;
    wrong.digits[29] = (char)(wrong.digits[29] == '9' ? '0' : wrong.digits[29] + 1);
    memset(pt, 0xee, sizeof pt);
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, file, n, &wrong),
                     SOTTO_ERR_BACKUP_WRONG_CODE);
    assert_int_equal(pn, 0);
    assert_zero(pt, sizeof pt);
    /* output buffers one byte short */
    assert_int_equal(sotto_backup_open(pt, sizeof payload - 1, &pn, file, n, &code),
                     SOTTO_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(
        sotto_backup_seal(file2, n - 1, &n2, (const uint8_t *)payload, sizeof payload, &code, &p),
        SOTTO_ERR_BUFFER_TOO_SMALL);
    assert_zero(file2, n - 1);
    sotto_recovery_code_wipe(&code);
    sotto_recovery_code_wipe(&wrong);
}

static void test_default_params(void **state)
{
    sotto_recovery_code code;
    sotto_backup_params p, d;
    uint8_t file[SOTTO_BACKUP_OVERHEAD], pt[1];
    size_t n = 0, pn = 1;

    (void)state;
    sotto_backup_params_default(&d);
    assert_int_equal(d.opslimit, 3);
    assert_true(d.memlimit == 256u * 1024 * 1024);
    kat_code(&code);
    /* an empty payload, default (MODERATE) parameters written to the header */
    assert_int_equal(sotto_backup_seal(file, sizeof file, &n, NULL, 0, &code, NULL), SOTTO_OK);
    assert_int_equal(n, SOTTO_BACKUP_OVERHEAD);
    assert_int_equal(sotto_backup_read_params(file, n, &p), SOTTO_OK);
    assert_int_equal(p.opslimit, d.opslimit);
    assert_true(p.memlimit == d.memlimit);
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, file, n, &code), SOTTO_OK);
    assert_int_equal(pn, 0);
}

static void test_every_bit_flipped(void **state)
{
    sotto_recovery_code code;
    size_t want_len = 0, pn;
    uint8_t *file = tu_unhex(KAT_FILE_HEX, &want_len);
    uint8_t pt[64];
    int format = 0, params = 0, wrong = 0;

    (void)state;
    kat_code(&code);
    for (size_t i = 0; i < want_len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            int rc;
            file[i] ^= (uint8_t)(1u << bit);
            memset(pt, 0xee, sizeof pt);
            rc = sotto_backup_open_with(pt, sizeof pt, &pn, file, want_len, &code, &CHEAP);
            file[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(rc, SOTTO_OK);
            assert_zero(pt, sizeof pt);
            if (i < SOTTO_BACKUP_MAGIC_BYTES) {
                assert_int_equal(rc, SOTTO_ERR_BACKUP_FORMAT);
                format++;
            } else if (i < SOTTO_BACKUP_MAGIC_BYTES + 12) {
                /* params: out of the bounds, or in them but another key */
                assert_true(rc == SOTTO_ERR_BACKUP_PARAMS || rc == SOTTO_ERR_BACKUP_WRONG_CODE);
                params += rc == SOTTO_ERR_BACKUP_PARAMS;
                wrong += rc == SOTTO_ERR_BACKUP_WRONG_CODE;
            } else {
                assert_int_equal(rc, SOTTO_ERR_BACKUP_WRONG_CODE);
                wrong++;
            }
        }
    }
    assert_int_equal(format, 16 * 8);
    assert_true(params > 0);
    assert_int_equal(params + wrong, (int)(want_len - 16) * 8);
    /* an opslimit or memlimit bit that keeps the params in bounds is still
     * caught: the header is the associated data */
    file[19] = 2; /* opslimit 2 */
    assert_int_equal(sotto_backup_open_with(pt, sizeof pt, &pn, file, want_len, &code, &CHEAP),
                     SOTTO_ERR_BACKUP_WRONG_CODE);
    free(file);
}

static void test_truncations(void **state)
{
    sotto_recovery_code code;
    size_t len = 0, pn;
    uint8_t *file = tu_unhex(KAT_FILE_HEX, &len);
    uint8_t pt[64];
    sotto_backup_params p;

    (void)state;
    kat_code(&code);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *c = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
        int rc;
        assert_non_null(c);
        memcpy(c, file, cut);
        rc = sotto_backup_open_with(pt, sizeof pt, &pn, c, cut, &code, &CHEAP);
        assert_int_equal(rc, cut < SOTTO_BACKUP_OVERHEAD ? SOTTO_ERR_BACKUP_FORMAT
                                                         : SOTTO_ERR_BACKUP_WRONG_CODE);
        assert_int_equal(sotto_backup_read_params_with(c, cut, &p, &CHEAP),
                         cut < SOTTO_BACKUP_OVERHEAD ? SOTTO_ERR_BACKUP_FORMAT : SOTTO_OK);
        free(c);
    }
    /* appended bytes fail authentication too */
    {
        uint8_t *c = malloc(len + 1);
        assert_non_null(c);
        memcpy(c, file, len);
        c[len] = 0;
        assert_int_equal(sotto_backup_open_with(pt, sizeof pt, &pn, c, len + 1, &code, &CHEAP),
                         SOTTO_ERR_BACKUP_WRONG_CODE);
        free(c);
    }
    free(file);
}

/* Writes a header with the given params in front of a 16-byte fake tag. */
static size_t fake_file(uint8_t *f, uint32_t ops, uint64_t mem)
{
    memset(f, 0, SOTTO_BACKUP_OVERHEAD);
    memcpy(f, SOTTO_BACKUP_MAGIC, 16);
    for (int i = 0; i < 4; i++)
        f[16 + i] = (uint8_t)(ops >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        f[20 + i] = (uint8_t)(mem >> (56 - 8 * i));
    return SOTTO_BACKUP_OVERHEAD;
}

static void test_params_out_of_range(void **state)
{
    sotto_recovery_code code;
    uint8_t f[SOTTO_BACKUP_OVERHEAD], pt[1], out[256];
    size_t n, pn;
    sotto_backup_params p;
    const uint32_t inter_ops = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
    const uint64_t inter_mem = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;

    (void)state;
    kat_code(&code);
    /* each of these is refused before any Argon2id work */
    n = fake_file(f, inter_ops - 1, inter_mem);
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, f, n, &code), SOTTO_ERR_BACKUP_PARAMS);
    n = fake_file(f, inter_ops, inter_mem - 1);
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, f, n, &code), SOTTO_ERR_BACKUP_PARAMS);
    n = fake_file(f, SOTTO_BACKUP_OPSLIMIT_MAX + 1, inter_mem);
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, f, n, &code), SOTTO_ERR_BACKUP_PARAMS);
    n = fake_file(f, inter_ops, SOTTO_BACKUP_MEMLIMIT_MAX + 1);
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, f, n, &code), SOTTO_ERR_BACKUP_PARAMS);
    n = fake_file(f, UINT32_MAX, UINT64_MAX);
    assert_int_equal(sotto_backup_read_params(f, n, &p), SOTTO_ERR_BACKUP_PARAMS);
    assert_true(p.opslimit == UINT32_MAX && p.memlimit == UINT64_MAX);
    /* the bounds themselves are accepted by the header check */
    n = fake_file(f, SOTTO_BACKUP_OPSLIMIT_MAX, SOTTO_BACKUP_MEMLIMIT_MAX);
    assert_int_equal(sotto_backup_read_params(f, n, &p), SOTTO_OK);
    n = fake_file(f, inter_ops, inter_mem);
    assert_int_equal(sotto_backup_read_params(f, n, &p), SOTTO_OK);
    /* sealing refuses what opening would refuse */
    p.opslimit = 1;
    p.memlimit = inter_mem;
    assert_int_equal(sotto_backup_seal(out, sizeof out, &n, (const uint8_t *)"x", 1, &code, &p),
                     SOTTO_ERR_BACKUP_PARAMS);
    assert_int_equal(n, 0);
    p.opslimit = inter_ops;
    p.memlimit = SOTTO_BACKUP_MEMLIMIT_MAX * 2;
    assert_int_equal(sotto_backup_seal(out, sizeof out, &n, (const uint8_t *)"x", 1, &code, &p),
                     SOTTO_ERR_BACKUP_PARAMS);
    /* not a backup: magic */
    n = fake_file(f, inter_ops, inter_mem);
    f[15] = '\r';
    assert_int_equal(sotto_backup_open(pt, sizeof pt, &pn, f, n, &code), SOTTO_ERR_BACKUP_FORMAT);
    /* larger than any payload allows: refused unread */
    n = fake_file(f, inter_ops, inter_mem);
    assert_int_equal(
        sotto_backup_read_params(f, SOTTO_BACKUP_PAYLOAD_MAX + SOTTO_BACKUP_OVERHEAD + 1, &p),
        SOTTO_ERR_BACKUP_FORMAT);
    assert_int_equal(
        sotto_backup_seal(out, sizeof out, &n, out, SOTTO_BACKUP_PAYLOAD_MAX + 1, &code, NULL),
        SOTTO_ERR_INVALID_ARGUMENT);
}

static void test_large_payload(void **state)
{
    sotto_recovery_code code;
    const size_t len = 1u << 20;
    uint8_t *pt = malloc(len), *file = malloc(len + SOTTO_BACKUP_OVERHEAD), *back = malloc(len);
    uint8_t salt[16] = {0}, nonce[24] = {0};
    size_t n = 0, bn = 0;

    (void)state;
    assert_non_null(pt);
    assert_non_null(file);
    assert_non_null(back);
    randombytes_buf(pt, len);
    kat_code(&code);
    assert_int_equal(sotto_backup_seal_with(file, len + SOTTO_BACKUP_OVERHEAD, &n, pt, len, &code,
                                            &CHEAP_PARAMS, salt, nonce, &CHEAP),
                     SOTTO_OK);
    assert_int_equal(sotto_backup_open_with(back, len, &bn, file, n, &code, &CHEAP), SOTTO_OK);
    assert_int_equal(bn, len);
    assert_memory_equal(back, pt, len);
    file[n / 2] ^= 0x80;
    assert_int_equal(sotto_backup_open_with(back, len, &bn, file, n, &code, &CHEAP),
                     SOTTO_ERR_BACKUP_WRONG_CODE);
    assert_zero(back, len);
    free(pt);
    free(file);
    free(back);
}

static void test_recovery_code(void **state)
{
    sotto_recovery_code a, b, c;
    char text[SOTTO_RECOVERY_CODE_TEXT_BYTES];
    unsigned counts[10] = {0};
    char long_input[SOTTO_RECOVERY_CODE_INPUT_MAX + 8];

    (void)state;
    assert_int_equal(sotto_recovery_code_generate(&a), SOTTO_OK);
    assert_int_equal(sotto_recovery_code_generate(&b), SOTTO_OK);
    assert_int_equal(strlen(a.digits), 30);
    assert_string_not_equal(a.digits, b.digits);
    assert_int_equal(sotto_recovery_code_format(&a, text), SOTTO_OK);
    assert_int_equal(strlen(text), 35);
    for (int i = 0; i < 35; i++)
        assert_true((i % 6 == 5) ? text[i] == ' ' : (text[i] >= '0' && text[i] <= '9'));
    assert_int_equal(sotto_recovery_code_parse(&c, text), SOTTO_OK);
    assert_string_equal(c.digits, a.digits);

    /* digits are uniform: 3000 digits, each count within 300 +- 75 */
    for (int k = 0; k < 100; k++) {
        assert_int_equal(sotto_recovery_code_generate(&b), SOTTO_OK);
        for (int i = 0; i < 30; i++)
            counts[b.digits[i] - '0']++;
    }
    for (int d = 0; d < 10; d++)
        assert_true(counts[d] > 225 && counts[d] < 375);

    /* accepted: dashes, several spaces, leading and trailing separators */
    assert_int_equal(sotto_recovery_code_parse(&c, "01234-56789-01234-56789-01234-56789"),
                     SOTTO_OK);
    assert_string_equal(c.digits, "012345678901234567890123456789");
    assert_int_equal(sotto_recovery_code_parse(&c, " - 0123456789  0123456789--0123456789 "),
                     SOTTO_OK);
    assert_string_equal(c.digits, "012345678901234567890123456789");
    /* refused: too few, too many, letters, tab, newline, UTF-8, empty */
    static const char *bad[] = {
        "01234 56789 01234 56789 01234 5678",
        "01234 56789 01234 56789 01234 567890",
        "01234 56789 01234 56789 01234 5678O",
        "01234\t56789 01234 56789 01234 56789",
        "01234 56789 01234 56789 01234 56789\n",
        "01234 56789 01234 56789 01234 \331\2406789", /* U+0660 ARABIC-INDIC ZERO */
        "",
        "0123456789012345678901234567890123456789",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0x55, sizeof c);
        assert_int_equal(sotto_recovery_code_parse(&c, bad[i]), SOTTO_ERR_RECOVERY_CODE);
        assert_zero(&c, sizeof c);
    }
    /* longer than SOTTO_RECOVERY_CODE_INPUT_MAX, even if the digits are right */
    memset(long_input, ' ', sizeof long_input);
    memcpy(long_input + sizeof long_input - 31, "012345678901234567890123456789", 30);
    long_input[sizeof long_input - 1] = '\0';
    assert_int_equal(sotto_recovery_code_parse(&c, long_input), SOTTO_ERR_RECOVERY_CODE);
    assert_int_equal(sotto_recovery_code_parse(&c, long_input + 8), SOTTO_OK);
    /* a code struct that is not 30 digits is refused by every user */
    memset(&c, 0, sizeof c);
    assert_int_equal(sotto_recovery_code_format(&c, text), SOTTO_ERR_INVALID_ARGUMENT);
    {
        uint8_t out[128];
        size_t n = 1;
        assert_int_equal(sotto_backup_seal(out, sizeof out, &n, (const uint8_t *)"x", 1, &c, NULL),
                         SOTTO_ERR_INVALID_ARGUMENT);
        assert_int_equal(n, 0);
    }
    assert_int_equal(sotto_recovery_code_parse(NULL, "0"), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_recovery_code_parse(&c, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_recovery_code_wipe(&a);
    assert_zero(&a, sizeof a);
    sotto_recovery_code_wipe(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kat),
        cmocka_unit_test(test_public_round_trip),
        cmocka_unit_test(test_default_params),
        cmocka_unit_test(test_every_bit_flipped),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_params_out_of_range),
        cmocka_unit_test(test_large_payload),
        cmocka_unit_test(test_recovery_code),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
