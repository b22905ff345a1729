/*
 * Key-transparency log updates and the directory they build (sotto/kt.h):
 * the 80-byte update encoding (known bytes, round trip, every hostile
 * length, counter 0); the leaf value as a known answer (hex from Python's
 * hashlib, and recomputed here with OpenSSL over bytes laid out by hand);
 * the device-list hash; the directory against a prefix tree built by hand;
 * refused updates (counter skipped, repeated, 0, time going back) leaving
 * root, counters and time byte-identical; a stream of indices sharing
 * their first 8 bytes; allocation failures (log and directory unchanged).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/kt.h"
#include "testutil.h"

#define HB 32
#define TS UINT64_C(1700006400000) /* a midnight UTC */
#define DAY UINT64_C(86400000)

/* ------------------------------------------------------------------------ */
/* Allocation failure injection (not under AddressSanitizer, which owns the
 * allocator): while g_fail_armed, the allocation number g_fail_at (from 0)
 * among those of at least g_fail_min bytes fails and every later one
 * succeeds. The test binary's definitions take the place of the C
 * library's for the whole process. OpenSSL 3.0 allocates a small context
 * per digest; the trees fall back to libsodium's SHA-256 when it fails (same
 * bytes), so the apply/append loop aims at the library's own arrays (all
 * of 512 bytes or more) with g_fail_min = 256.                             */
/* ------------------------------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__)
#define NO_ALLOC_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NO_ALLOC_HOOK 1
#endif
#endif

#ifndef NO_ALLOC_HOOK
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);

static int g_fail_armed;
static long g_fail_at, g_allocs;
static size_t g_fail_min;

static int should_fail(size_t n)
{
    if (!g_fail_armed || n < g_fail_min)
        return 0;
    return g_allocs++ == g_fail_at;
}

void *malloc(size_t n)
{
    return should_fail(n) ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    return should_fail(m != 0 && n > SIZE_MAX / m ? SIZE_MAX : n * m) ? NULL : __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    return should_fail(n) ? NULL : __libc_realloc(p, n);
}

static void fail_arm_min(long at, size_t min)
{
    g_allocs = 0;
    g_fail_at = at;
    g_fail_min = min;
    g_fail_armed = 1;
}

static void fail_arm(long at)
{
    fail_arm_min(at, 0);
}

/* Disarms; returns whether the planned failure happened. */
static int fail_disarm(void)
{
    g_fail_armed = 0;
    return g_allocs > g_fail_at;
}
#endif

/* ------------------------------------------------------------------------ */
/* Independent computations                                                 */
/* ------------------------------------------------------------------------ */

static void evp_sha256(uint8_t out[32], const uint8_t *p, size_t n)
{
    unsigned int len = 0;

    assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
    assert_int_equal(len, 32);
}

/* "SOTTO-KT-LEAF-VALUE-V1" 0x00 | counter (8, BE) | commitment, by hand. */
static void ref_leaf_value(uint8_t out[32], uint64_t counter, const uint8_t c[32])
{
    static const char label[] = "SOTTO-KT-LEAF-VALUE-V1";
    uint8_t buf[23 + 8 + 32];

    assert_int_equal(sizeof label, 23);
    memcpy(buf, label, 23);
    for (int i = 0; i < 8; i++)
        buf[23 + i] = (uint8_t)(counter >> (56 - 8 * i));
    memcpy(buf + 31, c, 32);
    evp_sha256(out, buf, sizeof buf);
}

static uint64_t g_rng = UINT64_C(0x243f6a8885a308d3);

static uint64_t rnd(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * UINT64_C(2685821657736338717);
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rnd() >> 56);
}

/* ------------------------------------------------------------------------ */
/* Updates, leaf values, list hash                                          */
/* ------------------------------------------------------------------------ */

static void test_update_encoding(void **state)
{
    sotto_kt_update u, back;
    uint8_t enc[SOTTO_KT_UPDATE_BYTES + 2], enc2[SOTTO_KT_UPDATE_BYTES], want[80];
    (void)state;

    memset(&u, 0, sizeof u);
    u.timestamp_ms = UINT64_C(0x0102030405060708);
    for (int i = 0; i < 32; i++) {
        u.index[i] = (uint8_t)(0x10 + i);
        u.commitment[i] = (uint8_t)(0xa0 + i);
    }
    u.counter = UINT64_C(0x1112131415161718);
    /* the bytes, laid out by hand */
    for (int i = 0; i < 8; i++) {
        want[i] = (uint8_t)(1 + i);
        want[40 + i] = (uint8_t)(0x11 + i);
    }
    for (int i = 0; i < 32; i++) {
        want[8 + i] = (uint8_t)(0x10 + i);
        want[48 + i] = (uint8_t)(0xa0 + i);
    }
    assert_int_equal(sotto_kt_update_encode(&u, enc), SOTTO_OK);
    assert_memory_equal(enc, want, 80);
    assert_int_equal(sotto_kt_update_parse(enc, 80, &back), SOTTO_OK);
    assert_memory_equal(&back, &u, sizeof u);
    assert_int_equal(sotto_kt_update_encode(&back, enc2), SOTTO_OK);
    assert_memory_equal(enc2, enc, 80);

    /* every length but 80 */
    enc[80] = enc[81] = 0;
    for (size_t len = 0; len <= sizeof enc; len++) {
        int rc;
        if (len == 80)
            continue;
        memset(&back, 0x55, sizeof back);
        rc = sotto_kt_update_parse(enc, len, &back);
        assert_int_equal(rc, len < 80 ? SOTTO_ERR_INVALID_MESSAGE : SOTTO_ERR_TRAILING_DATA);
        assert_int_equal(back.counter, 0);
        assert_int_equal(back.timestamp_ms, 0);
    }
    /* counter 0 on the wire, and any other counter byte */
    memset(enc + 40, 0, 8);
    memset(&back, 0x55, sizeof back);
    assert_int_equal(sotto_kt_update_parse(enc, 80, &back), SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(back.counter, 0);
    for (int i = 0; i < 8; i++) {
        enc[40 + i] = 1;
        assert_int_equal(sotto_kt_update_parse(enc, 80, &back), SOTTO_OK);
        assert_int_equal(back.counter, UINT64_C(1) << (8 * (7 - i)));
        enc[40 + i] = 0;
    }
    /* counter 0 does not encode; NULLs */
    u.counter = 0;
    assert_int_equal(sotto_kt_update_encode(&u, enc), SOTTO_ERR_INVALID_ARGUMENT);
    u.counter = 1;
    assert_int_equal(sotto_kt_update_encode(NULL, enc), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_update_parse(NULL, 80, &back), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_update_parse(enc, 80, NULL), SOTTO_ERR_INVALID_ARGUMENT);
}

static void test_leaf_value_known_answer(void **state)
{
    uint8_t c[32], out[32], ref[32], want[32];
    (void)state;

    for (int i = 0; i < 32; i++)
        c[i] = (uint8_t)i;
    /* hashlib.sha256(b"SOTTO-KT-LEAF-VALUE-V1\0" + struct.pack(">Q", ...) + c) */
    tu_unhex_into("a228a79f7e62667d9b97b03c4c73b206f7e68922a448cf7f7a2c663deb0f3f91", want, 32);
    assert_int_equal(sotto_kt_leaf_value(out, UINT64_C(0x0102030405060708), c), SOTTO_OK);
    assert_memory_equal(out, want, 32);
    ref_leaf_value(ref, UINT64_C(0x0102030405060708), c);
    assert_memory_equal(out, ref, 32);

    memset(c, 0xab, sizeof c);
    tu_unhex_into("70da9ea3c3c14415fd24d5a80836e68da1c4bcfd285ad02c51950600e13f7fae", want, 32);
    assert_int_equal(sotto_kt_leaf_value(out, 1, c), SOTTO_OK);
    assert_memory_equal(out, want, 32);
    /* every counter tried here gives another value */
    for (uint64_t k = 1; k < 40; k++) {
        uint64_t counter = k * UINT64_C(0x0123456789abcdef);
        if (counter == 0)
            continue;
        assert_int_equal(sotto_kt_leaf_value(out, counter, c), SOTTO_OK);
        ref_leaf_value(ref, counter, c);
        assert_memory_equal(out, ref, 32);
    }
    assert_int_equal(sotto_kt_leaf_value(out, 0, c), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_leaf_value(NULL, 1, c), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_leaf_value(out, 1, NULL), SOTTO_ERR_INVALID_ARGUMENT);
}

static void test_device_list_hash(void **state)
{
    uint8_t list[300], out[32], ref[32];
    (void)state;

    rnd_bytes(list, sizeof list);
    for (size_t n = 0; n <= sizeof list; n += 37) {
        assert_int_equal(sotto_kt_device_list_hash(out, list, n), SOTTO_OK);
        evp_sha256(ref, list, n);
        assert_memory_equal(out, ref, 32);
    }
    assert_int_equal(sotto_kt_device_list_hash(out, NULL, 0), SOTTO_OK);
    tu_unhex_into("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ref, 32);
    assert_memory_equal(out, ref, 32);
    assert_int_equal(sotto_kt_device_list_hash(out, NULL, 1), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_device_list_hash(NULL, list, 1), SOTTO_ERR_INVALID_ARGUMENT);
}

/* ------------------------------------------------------------------------ */
/* The directory                                                            */
/* ------------------------------------------------------------------------ */

typedef struct snapshot {
    uint8_t root[HB];
    uint64_t count, last_ts;
} snapshot;

static void snap(const sotto_kt_directory *d, snapshot *s)
{
    assert_int_equal(sotto_kt_directory_root(d, s->root), SOTTO_OK);
    s->count = sotto_kt_directory_count(d);
    s->last_ts = sotto_kt_directory_last_timestamp(d);
}

static void assert_same(const sotto_kt_directory *d, const snapshot *s)
{
    snapshot now;

    snap(d, &now);
    assert_memory_equal(now.root, s->root, HB);
    assert_int_equal(now.count, s->count);
    assert_int_equal(now.last_ts, s->last_ts);
}

static void make_update(sotto_kt_update *u, const uint8_t index[32], uint64_t counter, uint64_t ts)
{
    memset(u, 0, sizeof *u);
    memcpy(u->index, index, 32);
    u->counter = counter;
    u->timestamp_ms = ts;
    rnd_bytes(u->commitment, 32);
}

#define N_IDX 400

/* Applies random updates to the directory and to a prefix tree fed the
 * leaf values computed here; the roots agree after every step. */
static void test_directory_matches_tree(void **state)
{
    static uint8_t idx[N_IDX][32], last_commit[N_IDX][32];
    static uint64_t counter[N_IDX];
    sotto_kt_directory *d = NULL;
    sotto_prefix_tree *t = NULL;
    sotto_kt_update u;
    sotto_pt_proof *proof = malloc(sizeof *proof);
    uint8_t r1[HB], r2[HB], lv[32], zero[HB];
    uint64_t ts = TS;
    (void)state;

    assert_non_null(proof);
    assert_int_equal(sotto_kt_directory_new(&d), SOTTO_OK);
    assert_int_equal(sotto_prefix_tree_new(&t), SOTTO_OK);
    memset(zero, 0, sizeof zero);
    assert_int_equal(sotto_kt_directory_root(d, r1), SOTTO_OK);
    assert_memory_equal(r1, zero, HB);
    assert_int_equal(sotto_kt_directory_count(d), 0);
    assert_int_equal(sotto_kt_directory_last_timestamp(d), 0);
    for (int i = 0; i < N_IDX; i++)
        rnd_bytes(idx[i], 32);
    for (int step = 0; step < 3000; step++) {
        int i = (int)(rnd() % N_IDX);

        if (rnd() % 4 == 0)
            ts += DAY;
        make_update(&u, idx[i], counter[i] + 1, ts);
        memset(r1, 0xee, sizeof r1);
        assert_int_equal(sotto_kt_directory_apply(d, &u, (step & 1) ? r1 : NULL), SOTTO_OK);
        counter[i]++;
        memcpy(last_commit[i], u.commitment, 32);
        ref_leaf_value(lv, counter[i], u.commitment);
        assert_int_equal(sotto_prefix_tree_set(t, idx[i], lv), SOTTO_OK);
        assert_int_equal(sotto_prefix_tree_root(t, r2), SOTTO_OK);
        if (step & 1)
            assert_memory_equal(r1, r2, HB);
        assert_int_equal(sotto_kt_directory_root(d, r1), SOTTO_OK);
        assert_memory_equal(r1, r2, HB);
        assert_int_equal(sotto_kt_directory_counter(d, idx[i]), counter[i]);
        assert_int_equal(sotto_kt_directory_last_timestamp(d), ts);
    }
    assert_int_equal(sotto_kt_directory_count(d), sotto_prefix_tree_count(t));
    for (int i = 0; i < N_IDX; i++) {
        assert_int_equal(sotto_kt_directory_counter(d, idx[i]), counter[i]);
        assert_int_equal(sotto_kt_directory_prove(d, idx[i], proof), SOTTO_OK);
        if (counter[i] == 0) {
            assert_int_equal(sotto_pt_verify(r1, idx[i], NULL, proof), SOTTO_OK);
        } else {
            ref_leaf_value(lv, counter[i], last_commit[i]);
            assert_int_equal(proof->kind, SOTTO_PT_PROOF_PRESENT);
            assert_int_equal(sotto_pt_verify(r1, idx[i], lv, proof), SOTTO_OK);
            /* the previous counter's value is not what the tree holds */
            if (counter[i] > 1) {
                ref_leaf_value(lv, counter[i] - 1, last_commit[i]);
                assert_int_equal(sotto_pt_verify(r1, idx[i], lv, proof), SOTTO_ERR_PROOF_INVALID);
            }
        }
    }
    assert_true(sotto_kt_directory_memory(d) >= sotto_prefix_tree_memory(t));
    sotto_prefix_tree_free(t);
    sotto_kt_directory_free(d);
    free(proof);
}

static void test_directory_refusals(void **state)
{
    sotto_kt_directory *d = NULL;
    sotto_kt_update u;
    snapshot s;
    uint8_t a[32], b[32], r[HB], before_r[HB];
    (void)state;

    assert_int_equal(sotto_kt_directory_new(&d), SOTTO_OK);
    memset(a, 0xaa, sizeof a);
    memset(b, 0xaa, sizeof b);
    b[31] = 0xab; /* shares 255 bits with a */

    /* a new index must start at 1 */
    snap(d, &s);
    make_update(&u, a, 2, TS);
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_ERR_KT_UPDATE_INVALID);
    assert_same(d, &s);
    assert_int_equal(sotto_kt_directory_counter(d, a), 0);
    make_update(&u, a, 0, TS);
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_ERR_KT_UPDATE_INVALID);
    assert_same(d, &s);

    make_update(&u, a, 1, TS);
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_OK);
    make_update(&u, b, 1, TS);
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_OK);
    make_update(&u, a, 2, TS + DAY);
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_OK);
    memcpy(before_r, r, HB);
    snap(d, &s);
    assert_memory_equal(s.root, before_r, HB);

    /* a skipped counter, a repeated one, 0, the top value, an old one */
    {
        const uint64_t bad[] = {4, 2, 0, UINT64_MAX, 1, 100};
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            memset(r, 0x77, sizeof r);
            make_update(&u, a, bad[k], TS + DAY);
            assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_ERR_KT_UPDATE_INVALID);
            assert_same(d, &s);
            assert_int_equal(r[0], 0x77); /* not written */
            assert_int_equal(sotto_kt_directory_counter(d, a), 2);
        }
    }
    /* b repeating its first update */
    make_update(&u, b, 1, TS + DAY);
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_ERR_KT_UPDATE_INVALID);
    assert_same(d, &s);
    assert_int_equal(sotto_kt_directory_counter(d, b), 1);
    /* time going back by 1 ms, for an existing and for a new index */
    make_update(&u, b, 2, TS + DAY - 1);
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_ERR_KT_UPDATE_INVALID);
    assert_same(d, &s);
    memset(u.index, 0x01, 32);
    u.counter = 1;
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_ERR_KT_UPDATE_INVALID);
    assert_same(d, &s);
    assert_int_equal(sotto_kt_directory_counter(d, u.index), 0);
    /* the same time is fine (several changes on one date) */
    make_update(&u, b, 2, TS + DAY);
    assert_int_equal(sotto_kt_directory_apply(d, &u, r), SOTTO_OK);
    assert_memory_not_equal(r, before_r, HB);
    assert_int_equal(sotto_kt_directory_counter(d, b), 2);
    assert_int_equal(sotto_kt_directory_count(d), 2);

    /* arguments */
    assert_int_equal(sotto_kt_directory_apply(NULL, &u, r), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_directory_apply(d, NULL, r), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_directory_counter(NULL, a), 0);
    assert_int_equal(sotto_kt_directory_counter(d, NULL), 0);
    assert_int_equal(sotto_kt_directory_count(NULL), 0);
    assert_int_equal(sotto_kt_directory_last_timestamp(NULL), 0);
    assert_int_equal(sotto_kt_directory_memory(NULL), 0);
    assert_int_equal(sotto_kt_directory_root(NULL, r), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_directory_root(d, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_kt_directory_new(NULL), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_kt_directory_free(d);
    sotto_kt_directory_free(NULL);
}

/* Indices a server chose to share their first 8 bytes (and then to count
 * up): every one lands in the table correctly, and the replay stays fast
 * (seconds, where a table keyed by those 8 bytes would probe n^2 / 2
 * slots). */
#define N_HOSTILE 20000

static void test_directory_hostile_indices(void **state)
{
    sotto_kt_directory *d = NULL;
    sotto_kt_update u;
    uint8_t idx[32];
    clock_t t0;
    double dt;
    (void)state;

    assert_int_equal(sotto_kt_directory_new(&d), SOTTO_OK);
    memset(idx, 0x5a, sizeof idx);
    t0 = clock();
    for (uint32_t i = 0; i < N_HOSTILE; i++) {
        idx[8] = (uint8_t)(i >> 24);
        idx[9] = (uint8_t)(i >> 16);
        idx[10] = (uint8_t)(i >> 8);
        idx[11] = (uint8_t)i;
        make_update(&u, idx, 1, TS);
        assert_int_equal(sotto_kt_directory_apply(d, &u, NULL), SOTTO_OK);
    }
    for (uint32_t i = 0; i < N_HOSTILE; i += 97) {
        idx[8] = (uint8_t)(i >> 24);
        idx[9] = (uint8_t)(i >> 16);
        idx[10] = (uint8_t)(i >> 8);
        idx[11] = (uint8_t)i;
        make_update(&u, idx, 2, TS);
        assert_int_equal(sotto_kt_directory_apply(d, &u, NULL), SOTTO_OK);
        assert_int_equal(sotto_kt_directory_counter(d, idx), 2);
    }
    idx[11] = 0xff;
    idx[8] = 0xff; /* never inserted */
    assert_int_equal(sotto_kt_directory_counter(d, idx), 0);
    dt = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("%d indices sharing 8 leading bytes: %.3f s\n", N_HOSTILE, dt);
    assert_int_equal(sotto_kt_directory_count(d), N_HOSTILE);
    sotto_kt_directory_free(d);
}

/* Every allocation the log and the directory make, failed in turn: the
 * call reports SOTTO_ERR_NOMEM and nothing visible changes; the same call
 * then succeeds. */
static void test_allocation_failures(void **state)
{
#ifdef NO_ALLOC_HOOK
    (void)state;
    skip();
#else
    sotto_kt_directory *d = NULL;
    sotto_merkle_log *log = NULL;
    sotto_kt_update u;
    snapshot s;
    uint8_t leaf[HB], r1[HB], r2[HB];
    int failures = 0;
    (void)state;

    fail_arm(0);
    assert_int_equal(sotto_merkle_log_new(&log), SOTTO_ERR_NOMEM);
    assert_true(fail_disarm());
    assert_null(log);
    fail_arm(0);
    assert_int_equal(sotto_kt_directory_new(&d), SOTTO_ERR_NOMEM);
    assert_true(fail_disarm());
    fail_arm(1);
    assert_int_equal(sotto_kt_directory_new(&d), SOTTO_ERR_NOMEM);
    assert_true(fail_disarm());
    fail_arm(2);
    assert_int_equal(sotto_kt_directory_new(&d), SOTTO_ERR_NOMEM);
    assert_true(fail_disarm());
    assert_null(d);

    assert_int_equal(sotto_merkle_log_new(&log), SOTTO_OK);
    assert_int_equal(sotto_kt_directory_new(&d), SOTTO_OK);
    for (uint32_t n = 0; n < 3000; n++) {
        uint8_t idx[32];
        long at;
        int rc;

        /* the directory: a new index per step (table growth, arena chunks) */
        memset(idx, 0, sizeof idx);
        memcpy(idx, &n, sizeof n);
        crypto_hash_sha256(idx, idx, sizeof idx);
        make_update(&u, idx, 1, TS + n);
        for (at = 0;; at++) {
            snap(d, &s);
            fail_arm_min(at, 256);
            rc = sotto_kt_directory_apply(d, &u, r1);
            if (!fail_disarm()) {
                assert_int_equal(rc, SOTTO_OK);
                break;
            }
            assert_int_equal(rc, SOTTO_ERR_NOMEM);
            assert_same(d, &s);
            assert_int_equal(sotto_kt_directory_counter(d, idx), 0);
            failures++;
        }
        assert_int_equal(sotto_kt_directory_counter(d, idx), 1);

        /* the log: append the leaf of that state */
        assert_int_equal(sotto_kt_leaf_hash(leaf, r1, TS + n), SOTTO_OK);
        for (at = 0;; at++) {
            assert_int_equal(sotto_merkle_log_root(log, n, r2), SOTTO_OK);
            fail_arm_min(at, 256);
            rc = sotto_merkle_log_append(log, leaf);
            if (!fail_disarm()) {
                assert_int_equal(rc, SOTTO_OK);
                break;
            }
            assert_int_equal(rc, SOTTO_ERR_NOMEM);
            assert_int_equal(sotto_merkle_log_size(log), n);
            assert_int_equal(sotto_merkle_log_root(log, n, r1), SOTTO_OK);
            assert_memory_equal(r1, r2, HB);
            failures++;
        }
        assert_int_equal(sotto_merkle_log_size(log), n + 1);
    }
    /* table growths, arena chunks and log level growths were all hit */
    printf("allocation failures injected: %d\n", failures);
    assert_true(failures > 20);
    sotto_merkle_log_free(log);
    sotto_kt_directory_free(d);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_encoding),
        cmocka_unit_test(test_leaf_value_known_answer),
        cmocka_unit_test(test_device_list_hash),
        cmocka_unit_test(test_directory_matches_tree),
        cmocka_unit_test(test_directory_refusals),
        cmocka_unit_test(test_directory_hostile_indices),
        cmocka_unit_test(test_allocation_failures),
    };
    if (sotto_init() != SOTTO_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
