/*
 * sotto-auditor's verification core (auditor/audit.h) against a log built
 * here the way the server builds it: updates from libsotto's encoder, the
 * prefix tree (sotto_prefix_tree, not the directory the auditor uses) and
 * the array Merkle root (not the incremental log), heads signed with a test
 * server key. The honest log is accepted and countersigned (the
 * countersignature verifies); each kind of server misbehaviour STOPS the
 * auditor with its reason, and the stop survives a reopen; a corrupted
 * auditor.db is refused at open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit.h"
#include "sotto/kt.h"
#include "sotto/prefix_tree.h"

#define DAY (UINT64_C(86400000))
#define DAY0 (UINT64_C(19700) * DAY) /* 2023-12-08 */
#define N 300
#define USERS 120

static char tmpdir[256];
static int case_no;
static uint8_t server_pk[32], server_sk[64], auditor_pk[32], auditor_sk[64];

/* ------------------------------------------------------------ the "server" */

/* n honest updates over USERS indices, dates advancing every 40 updates. */
static sotto_kt_update *gen_updates(size_t n)
{
    sotto_kt_update *u = calloc(n, sizeof *u);
    uint64_t counters[USERS] = {0};

    assert_non_null(u);
    for (size_t i = 0; i < n; i++) {
        unsigned k = (unsigned)((i * 7919u) % USERS);
        uint8_t seed[8] = {'u', 's', 'e', 'r', (uint8_t)k, 0, 0, 0};
        uint8_t cseed[8] = {'c', (uint8_t)(i >> 8), (uint8_t)i, 0, 0, 0, 0, 0};
        crypto_hash_sha256(u[i].index, seed, sizeof seed);
        crypto_hash_sha256(u[i].commitment, cseed, sizeof cseed);
        u[i].counter = ++counters[k];
        u[i].timestamp_ms = DAY0 + (i / 40) * DAY;
    }
    return u;
}

/* Leaf hashes of the log the updates build (the server's computation). */
static uint8_t (*server_leaves(const sotto_kt_update *u, size_t n))[32]
{
    sotto_prefix_tree *t = NULL;
    uint8_t(*leaves)[32] = calloc(n ? n : 1, 32);
    uint8_t value[32], root[32];

    assert_non_null(leaves);
    assert_int_equal(sotto_prefix_tree_new(&t), SOTTO_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sotto_kt_leaf_value(value, u[i].counter, u[i].commitment), SOTTO_OK);
        assert_int_equal(sotto_prefix_tree_set(t, u[i].index, value), SOTTO_OK);
        assert_int_equal(sotto_prefix_tree_root(t, root), SOTTO_OK);
        assert_int_equal(sotto_kt_leaf_hash(leaves[i], root, u[i].timestamp_ms), SOTTO_OK);
    }
    sotto_prefix_tree_free(t);
    return leaves;
}

/* A head over the first `size` leaves, stamped ts, signed with sk. */
static void sign_head(uint8_t out[SOTTO_KT_HEAD_BYTES], const uint8_t (*leaves)[32], uint64_t size,
                      uint64_t ts, const uint8_t sk[64])
{
    sotto_kt_tree_head h;

    memset(&h, 0, sizeof h);
    h.size = size;
    h.timestamp_ms = ts;
    assert_int_equal(sotto_merkle_root(leaves, size, h.root), SOTTO_OK);
    assert_int_equal(sotto_kt_head_sign(&h, sk), SOTTO_OK);
    assert_int_equal(sotto_kt_head_encode(&h, out), SOTTO_OK);
}

/* "now" for head checks: a day after the last update's date. */
static uint64_t now_for(const sotto_kt_update *u, size_t n)
{
    return u[n - 1].timestamp_ms + DAY;
}

/* ------------------------------------------------------------ helpers */

static void db_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/case%d.db", tmpdir, ++case_no);
}

static aud_state *fresh(char *path, size_t cap)
{
    aud_config cfg;
    aud_state *s = NULL;
    char err[512];

    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.server, sizeof cfg.server, "https://127.0.0.1:1");
    memset(cfg.pin_hex, 'a', 64);
    memcpy(cfg.server_key, server_pk, 32);
    db_path(path, cap);
    assert_int_equal(aud_db_create(path, &cfg, err, sizeof err), AUD_OK);
    assert_int_equal(aud_open(&s, path, err, sizeof err), AUD_OK);
    assert_null(aud_stopped(s));
    return s;
}

/* Feeds updates [from, to) in pages of `page`; returns the first non-OK. */
static int feed_range(aud_state *s, const sotto_kt_update *u, size_t from, size_t to, size_t page,
                      char *err, size_t errlen)
{
    uint8_t(*enc)[SOTTO_KT_UPDATE_BYTES] = calloc(page, SOTTO_KT_UPDATE_BYTES);
    const uint8_t **ptr = calloc(page, sizeof *ptr);
    size_t *lens = calloc(page, sizeof *lens);
    int rc = AUD_OK;

    assert_true(enc && ptr && lens);
    for (size_t i = from; i < to && rc == AUD_OK; i += page) {
        size_t k = 0;
        for (; k < page && i + k < to; k++) {
            /* raw encoding, so tests can feed what the encoder refuses */
            sotto_kt_update x = u[i + k];
            uint8_t *p = enc[k];
            for (int b = 0; b < 8; b++)
                p[b] = (uint8_t)(x.timestamp_ms >> (56 - 8 * b));
            memcpy(p + 8, x.index, 32);
            for (int b = 0; b < 8; b++)
                p[40 + b] = (uint8_t)(x.counter >> (56 - 8 * b));
            memcpy(p + 48, x.commitment, 32);
            ptr[k] = enc[k];
            lens[k] = SOTTO_KT_UPDATE_BYTES;
        }
        rc = aud_feed(s, ptr, lens, k, err, errlen);
    }
    free(enc);
    free(ptr);
    free(lens);
    return rc;
}

static void reopen(aud_state **s, const char *path)
{
    char err[512];

    aud_close(*s);
    *s = NULL;
    assert_int_equal(aud_open(s, path, err, sizeof err), AUD_OK);
}

/* The auditor is stopped, with a reason containing `needle`, in memory,
 * after a reopen, in aud_db_info, and refuses to feed or sign again. */
static void assert_stopped_for_good(aud_state **s, const char *path, const char *needle,
                                    const uint8_t head[SOTTO_KT_HEAD_BYTES], uint64_t now)
{
    char err[512];
    aud_info info;
    uint8_t sig[64];
    const uint8_t *p = head;
    size_t len = SOTTO_KT_HEAD_BYTES;

    assert_non_null(aud_stopped(*s));
    if (strstr(aud_stopped(*s), needle) == NULL)
        fail_msg("stop reason \"%s\" lacks \"%s\"", aud_stopped(*s), needle);
    reopen(s, path);
    assert_non_null(aud_stopped(*s));
    assert_non_null(strstr(aud_stopped(*s), needle));
    assert_int_equal(aud_db_info(path, &info, err, sizeof err), AUD_OK);
    assert_non_null(strstr(info.stopped, needle));
    assert_true(info.stopped_at_ms > 0);
    assert_int_equal(aud_feed(*s, &p, &len, 1, err, sizeof err), AUD_E_STOPPED);
    assert_int_equal(
        aud_cosign(*s, head, SOTTO_KT_HEAD_BYTES, 0, now, auditor_sk, sig, NULL, err, sizeof err),
        AUD_E_STOPPED);
    assert_non_null(strstr(err, needle));
}

/* ------------------------------------------------------------ tests */

static void test_honest_log_is_countersigned(void **state)
{
    sotto_kt_update *u = gen_updates(N + 50);
    uint8_t(*leaves)[32] = server_leaves(u, N + 50);
    uint8_t head[SOTTO_KT_HEAD_BYTES], older[SOTTO_KT_HEAD_BYTES], sig[64];
    sotto_kt_tree_head h;
    char path[512], err[512];
    aud_info info;
    uint64_t now = now_for(u, N);
    aud_state *s = fresh(path, sizeof path);

    (void)state;
    sign_head(head, leaves, N, now - 1000, server_sk);
    /* before the updates: the head is beyond the verified log */
    assert_int_equal(aud_check_head(s, head, sizeof head, 1, now, NULL, err, sizeof err),
                     AUD_LATER);
    assert_int_equal(feed_range(s, u, 0, N, 100, err, sizeof err), AUD_OK);
    assert_int_equal(aud_verified_size(s), N);
    assert_int_equal(aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, &h, err, sizeof err),
                     AUD_OK);
    assert_int_equal(h.size, N);
    assert_int_equal(sotto_kt_cosig_verify(sig, &h, auditor_pk), SOTTO_OK);
    assert_int_not_equal(sotto_kt_cosig_verify(sig, &h, server_pk), SOTTO_OK);
    /* an older head (a pending one) of a prefix is fine too */
    sign_head(older, leaves, 150, now - 5000, server_sk);
    assert_int_equal(
        aud_cosign(s, older, sizeof older, 0, now, auditor_sk, sig, &h, err, sizeof err), AUD_OK);
    assert_int_equal(sotto_kt_cosig_verify(sig, &h, auditor_pk), SOTTO_OK);
    /* the last countersigned head stays the newest one */
    assert_int_equal(aud_last_cosigned(s)->size, N);

    /* restart: replays its own copy, keeps going with the next updates */
    reopen(&s, path);
    assert_int_equal(aud_verified_size(s), N);
    assert_null(aud_stopped(s));
    assert_int_equal(aud_db_info(path, &info, err, sizeof err), AUD_OK);
    assert_int_equal(info.verified_size, N);
    assert_int_equal(info.have_cosigned, 1);
    assert_int_equal(info.cosigned.size, N);
    assert_int_equal(info.cosigned_at_ms, now);
    assert_int_equal(feed_range(s, u, N, N + 50, 7, err, sizeof err), AUD_OK);
    now = now_for(u, N + 50);
    sign_head(head, leaves, N + 50, now, server_sk);
    assert_int_equal(aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, &h, err, sizeof err),
                     AUD_OK);
    assert_int_equal(sotto_kt_cosig_verify(sig, &h, auditor_pk), SOTTO_OK);
    aud_close(s);
    free(u);
    free(leaves);
}

static void stop_on_update(sotto_kt_update *u, size_t bad, const char *needle)
{
    uint8_t(*leaves)[32] = server_leaves(u, bad);
    uint8_t head[SOTTO_KT_HEAD_BYTES];
    char path[512], err[512];
    aud_state *s = fresh(path, sizeof path);

    assert_int_equal(feed_range(s, u, 0, N, 64, err, sizeof err), AUD_E_STOPPED);
    assert_non_null(strstr(err, needle));
    /* the good updates before the bad one are kept, nothing after it */
    assert_int_equal(aud_verified_size(s), bad);
    sign_head(head, leaves, bad, now_for(u, bad), server_sk);
    assert_stopped_for_good(&s, path, needle, head, now_for(u, bad));
    assert_int_equal(aud_verified_size(s), bad);
    aud_close(s);
    free(leaves);
}

static void test_skipped_counter_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);

    (void)state;
    /* entry 200 is some index's update; bump its counter by one more */
    u[200].counter += 1;
    stop_on_update(u, 200, "update 200: index");
    free(u);
}

static void test_repeated_counter_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);
    char needle[64];

    (void)state;
    assert_true(u[201].counter >= 2);
    u[201].counter -= 1;
    snprintf(needle, sizeof needle, "has counter %llu after %llu",
             (unsigned long long)u[201].counter, (unsigned long long)u[201].counter);
    stop_on_update(u, 201, needle);
    free(u);
}

static void test_new_index_must_start_at_one(void **state)
{
    sotto_kt_update *u = gen_updates(N);

    (void)state;
    memset(u[150].index, 0xee, 32); /* an index never seen */
    u[150].counter = 2;
    stop_on_update(u, 150, "has counter 2 after 0 (must be 1)");
    free(u);
}

static void test_time_going_back_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);

    (void)state;
    u[170].timestamp_ms = u[169].timestamp_ms - DAY;
    stop_on_update(u, 170, "update 170: time goes back");
    free(u);
}

static void test_time_of_day_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);

    (void)state;
    u[10].timestamp_ms += 1234;
    stop_on_update(u, 10, "not a date");
    free(u);
}

static void test_unparsable_update_stops(void **state)
{
    sotto_kt_update *u = gen_updates(10);
    uint8_t(*leaves)[32] = server_leaves(u, 10);
    uint8_t bad[81] = {0}, head[SOTTO_KT_HEAD_BYTES];
    const uint8_t *p = bad;
    size_t len = 79;
    char path[512], err[512];
    aud_state *s = fresh(path, sizeof path);

    (void)state;
    assert_int_equal(feed_range(s, u, 0, 10, 10, err, sizeof err), AUD_OK);
    assert_int_equal(aud_feed(s, &p, &len, 1, err, sizeof err), AUD_E_STOPPED);
    assert_non_null(strstr(err, "update 10 does not parse (79 bytes)"));
    sign_head(head, leaves, 10, now_for(u, 10), server_sk);
    assert_stopped_for_good(&s, path, "does not parse", head, now_for(u, 10));
    aud_close(s);
    free(u);
    free(leaves);
}

/* Feeds the honest N updates; returns the open state. */
static aud_state *verified(char *path, size_t cap, const sotto_kt_update *u)
{
    char err[512];
    aud_state *s = fresh(path, cap);

    assert_int_equal(feed_range(s, u, 0, N, 1000, err, sizeof err), AUD_OK);
    assert_int_equal(aud_verified_size(s), N);
    return s;
}

static void test_head_with_other_root_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);
    uint8_t(*leaves)[32] = server_leaves(u, N);
    uint8_t head[SOTTO_KT_HEAD_BYTES], sig[64];
    char path[512], err[512];
    uint64_t now = now_for(u, N);
    aud_state *s = verified(path, sizeof path, u);

    (void)state;
    leaves[N - 1][0] ^= 1; /* the server signs a root over another last leaf */
    sign_head(head, leaves, N, now, server_sk);
    memset(sig, 0, sizeof sig);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err),
        AUD_E_STOPPED);
    assert_string_equal(err, "the server's tree head 300 does not match the log I verified");
    for (size_t i = 0; i < sizeof sig; i++)
        assert_int_equal(sig[i], 0); /* nothing signed */
    assert_stopped_for_good(&s, path, "does not match the log I verified", head, now);
    aud_close(s);
    free(u);
    free(leaves);
}

static void test_truncated_log_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);
    uint8_t(*leaves)[32] = server_leaves(u, N);
    uint8_t head[SOTTO_KT_HEAD_BYTES], sig[64];
    char path[512], err[512];
    uint64_t now = now_for(u, N);
    aud_state *s = verified(path, sizeof path, u);

    (void)state;
    sign_head(head, leaves, 200, now, server_sk);
    /* as an older (pending) head it is fine ... */
    assert_int_equal(aud_check_head(s, head, sizeof head, 0, now, NULL, err, sizeof err), AUD_OK);
    /* ... as the server's newest head it says the log shrank */
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err),
        AUD_E_STOPPED);
    assert_string_equal(err, "log truncated: head size 200 < verified 300");
    assert_stopped_for_good(&s, path, "log truncated: head size 200 < verified 300", head, now);
    aud_close(s);
    free(u);
    free(leaves);
}

static void test_forged_head_signature_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);
    uint8_t(*leaves)[32] = server_leaves(u, N);
    uint8_t head[SOTTO_KT_HEAD_BYTES], other_pk[32], other_sk[64], sig[64];
    char path[512], err[512];
    uint64_t now = now_for(u, N);
    aud_state *s = verified(path, sizeof path, u);
    aud_state *s2;
    char path2[512];

    (void)state;
    /* the right root, signed by another key */
    crypto_sign_keypair(other_pk, other_sk);
    sign_head(head, leaves, N, now, other_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err),
        AUD_E_STOPPED);
    assert_non_null(strstr(err, "size 300) whose signature does not verify under the pinned"));
    assert_stopped_for_good(&s, path, "does not verify under the pinned server key", head, now);
    aud_close(s);

    /* the right key, one bit of the signature flipped */
    s2 = verified(path2, sizeof path2, u);
    sign_head(head, leaves, N, now, server_sk);
    head[SOTTO_KT_HEAD_BYTES - 1] ^= 0x40;
    assert_int_equal(aud_check_head(s2, head, sizeof head, 1, now, NULL, err, sizeof err),
                     AUD_E_STOPPED);
    assert_non_null(strstr(aud_stopped(s2), "does not verify"));
    aud_close(s2);
    free(u);
    free(leaves);
}

static void test_rewritten_earlier_update_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N + 20);
    uint8_t(*leaves)[32] = server_leaves(u, N + 20);
    uint8_t(*rewritten)[32];
    uint8_t head[SOTTO_KT_HEAD_BYTES], sig[64];
    char path[512], err[512];
    uint64_t now = now_for(u, N);
    aud_state *s = verified(path, sizeof path, u);

    (void)state;
    sign_head(head, leaves, N, now, server_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err), AUD_OK);
    /* the operator edits entry 10 (another value for that index) and the
     * server rebuilds its log from the edited rows, then grows it */
    u[10].commitment[5] ^= 0x80;
    rewritten = server_leaves(u, N + 20);
    /* that index is updated again at 130 and 250, so the directory ends
     * up the same: only the history (leaves 10..249) differs */
    assert_memory_not_equal(rewritten[10], leaves[10], 32);
    assert_memory_equal(rewritten[N + 19], leaves[N + 19], 32);
    /* the new updates themselves are fine: they apply */
    assert_int_equal(feed_range(s, u, N, N + 20, 1000, err, sizeof err), AUD_OK);
    now = now_for(u, N + 20);
    sign_head(head, (const uint8_t(*)[32])rewritten, N + 20, now, server_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err),
        AUD_E_STOPPED);
    assert_string_equal(err, "the server's tree head 320 does not match the log I verified");
    assert_stopped_for_good(&s, path, "tree head 320 does not match", head, now);
    aud_close(s);
    free(u);
    free(leaves);
    free(rewritten);
}

static void test_head_time_going_back_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N + 1);
    uint8_t(*leaves)[32] = server_leaves(u, N + 1);
    uint8_t head[SOTTO_KT_HEAD_BYTES], sig[64];
    char path[512], err[512];
    uint64_t now = now_for(u, N + 1);
    aud_state *s = verified(path, sizeof path, u);

    (void)state;
    sign_head(head, leaves, N, now - 1000, server_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err), AUD_OK);
    /* a fresh head of the same size, later: fine */
    sign_head(head, leaves, N, now - 500, server_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err), AUD_OK);
    /* a larger head stamped before the countersigned one: time goes back */
    assert_int_equal(feed_range(s, u, N, N + 1, 1, err, sizeof err), AUD_OK);
    sign_head(head, leaves, N + 1, now - 800, server_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err),
        AUD_E_STOPPED);
    assert_non_null(strstr(err, "time goes back: tree head 301 stamped"));
    assert_stopped_for_good(&s, path, "time goes back", head, now);
    aud_close(s);
    free(u);
    free(leaves);
}

static void test_older_head_stamped_later_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);
    uint8_t(*leaves)[32] = server_leaves(u, N);
    uint8_t head[SOTTO_KT_HEAD_BYTES], sig[64];
    char path[512], err[512];
    uint64_t now = now_for(u, N);
    aud_state *s = verified(path, sizeof path, u);

    (void)state;
    sign_head(head, leaves, N, now - 1000, server_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err), AUD_OK);
    /* a "pending" head of 150 entries stamped after the head of 300 */
    sign_head(head, leaves, 150, now - 999, server_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 0, now, auditor_sk, sig, NULL, err, sizeof err),
        AUD_E_STOPPED);
    assert_non_null(strstr(err, "time goes back: tree head 150 stamped"));
    assert_non_null(strstr(err, "countersigned head 300"));
    aud_close(s);
    free(u);
    free(leaves);
}

static void test_head_before_its_last_entry_stops(void **state)
{
    sotto_kt_update *u = gen_updates(N);
    uint8_t(*leaves)[32] = server_leaves(u, N);
    uint8_t head[SOTTO_KT_HEAD_BYTES];
    char path[512], err[512];
    uint64_t now = now_for(u, N);
    aud_state *s = verified(path, sizeof path, u);

    (void)state;
    sign_head(head, leaves, N, u[N - 1].timestamp_ms - 1, server_sk);
    assert_int_equal(aud_check_head(s, head, sizeof head, 1, now, NULL, err, sizeof err),
                     AUD_E_STOPPED);
    assert_non_null(strstr(err, "before its last entry"));
    aud_close(s);
    free(u);
    free(leaves);
}

static void test_future_head_waits(void **state)
{
    sotto_kt_update *u = gen_updates(N);
    uint8_t(*leaves)[32] = server_leaves(u, N);
    uint8_t head[SOTTO_KT_HEAD_BYTES], sig[64];
    char path[512], err[512];
    uint64_t now = now_for(u, N);
    aud_state *s = verified(path, sizeof path, u);

    (void)state;
    sign_head(head, leaves, N, now + AUD_MAX_FUTURE_MS + 1000, server_sk);
    assert_int_equal(
        aud_cosign(s, head, sizeof head, 1, now, auditor_sk, sig, NULL, err, sizeof err),
        AUD_LATER);
    assert_non_null(strstr(err, "in the future"));
    assert_null(aud_stopped(s));
    assert_null(aud_last_cosigned(s));
    /* once this machine's clock gets there, it is signed */
    assert_int_equal(aud_cosign(s, head, sizeof head, 1, now + 2 * AUD_MAX_FUTURE_MS, auditor_sk,
                                sig, NULL, err, sizeof err),
                     AUD_OK);
    aud_close(s);
    free(u);
    free(leaves);
}

static void test_edited_db_is_refused(void **state)
{
    sotto_kt_update *u = gen_updates(N);
    char path[512], err[512];
    aud_state *s = verified(path, sizeof path, u);
    sqlite3 *db = NULL;

    (void)state;
    aud_close(s);
    s = NULL;
    /* someone flips a counter byte of stored update 77 */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE updates SET data = substr(data, 1, 47) || x'63' || "
                                  "substr(data, 49) WHERE pos = 77",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    assert_int_equal(aud_open(&s, path, err, sizeof err), AUD_E_IO);
    assert_null(s);
    assert_non_null(strstr(err, "corrupt or was edited: stored update 77"));
    free(u);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(sodium_init() >= 0, 1);
    crypto_sign_keypair(server_pk, server_sk);
    crypto_sign_keypair(auditor_pk, auditor_sk);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-auditor-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_honest_log_is_countersigned),
        cmocka_unit_test(test_skipped_counter_stops),
        cmocka_unit_test(test_repeated_counter_stops),
        cmocka_unit_test(test_new_index_must_start_at_one),
        cmocka_unit_test(test_time_going_back_stops),
        cmocka_unit_test(test_time_of_day_stops),
        cmocka_unit_test(test_unparsable_update_stops),
        cmocka_unit_test(test_head_with_other_root_stops),
        cmocka_unit_test(test_truncated_log_stops),
        cmocka_unit_test(test_forged_head_signature_stops),
        cmocka_unit_test(test_rewritten_earlier_update_stops),
        cmocka_unit_test(test_head_time_going_back_stops),
        cmocka_unit_test(test_older_head_stamped_later_stops),
        cmocka_unit_test(test_head_before_its_last_entry_stops),
        cmocka_unit_test(test_future_head_waits),
        cmocka_unit_test(test_edited_db_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
