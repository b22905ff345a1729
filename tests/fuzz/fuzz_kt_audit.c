/*
 * Fuzz target: an auditor's replay of the key-transparency log (sotto/kt.h,
 * sotto/merkle.h). The input is a stream of 80-byte log updates, fed to a
 * sotto_kt_directory and a sotto_merkle_log as an auditor does; then a tree
 * head over the resulting log root, signed with a harness-owned server key
 * (so the checks behind the signature are reached), is encoded, parsed and
 * checked with a harness auditor's countersignature, and an inclusion and a
 * consistency proof between two sizes are generated and verified.
 * Input: flags (1) | a (1) | b (1) | updates (80 bytes each, at most 48;
 * a trailing partial update is ignored)
 *   flags & 1  the harness rewrites each update's counter to the index's
 *              current counter + 1 (so mutated indices still apply)
 *   flags & 2  the harness raises each update's timestamp to the last one
 *              applied when it is lower
 *   flags & 4  bit (a * 256 + b) % 896 of the encoded head is flipped
 *   a, b       pick the sizes of the proofs
 * Invariants (abort on violation):
 *  - sotto_kt_update_parse accepts exactly the 80-byte encodings with a
 *    counter >= 1 and encodes back to the same bytes;
 *  - an update applies iff counter == the index's counter + 1 and its time
 *    is not before the last applied one; a refused update changes nothing
 *    (root, count, last time, the index's counter);
 *  - after each applied update the index proves PRESENT with
 *    sotto_kt_leaf_value(counter, commitment) under the returned root;
 *  - the log's root and proofs equal the array generators' over the same
 *    leaves and verify; the signed head parses and passes the audited-head
 *    check, a flipped one never parses; the consistency proof passes
 *    sotto_kt_head_verify_consistency and fails against a changed root.
 * Seeds: SOTTO_FUZZ_WRITE_SEEDS=dir writes them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/kt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HB 32
#define U SOTTO_KT_UPDATE_BYTES
#define MAX_UPDATES 48
#define TS UINT64_C(1700006400000)
#define DAY UINT64_C(86400000)

static uint8_t g_spk[32], g_ssk[64], g_apk[32], g_ask[64];
static int g_ready;

static void check(int ok)
{
    if (!ok)
        abort();
}

static void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64be(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void write_seed(const char *name, const uint8_t *p, size_t n)
{
    const char *dir = getenv("SOTTO_FUZZ_WRITE_SEEDS");
    char path[1024];
    FILE *f;

    if (dir == NULL)
        return;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    check(f != NULL && fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* A seed: flags, a, b, then n updates over `n_idx` indices in turn, each
 * with its right counter, a day apart every other update. */
static size_t make_seed(uint8_t *out, uint8_t flags, uint8_t a, uint8_t b, unsigned n,
                        unsigned n_idx)
{
    uint64_t counter[8] = {0};
    sotto_kt_update u;

    out[0] = flags;
    out[1] = a;
    out[2] = b;
    for (unsigned i = 0; i < n; i++) {
        unsigned k = i % n_idx;
        memset(&u, 0, sizeof u);
        u.timestamp_ms = TS + DAY * (i / 2);
        memset(u.index, (int)(0x40 + k), 32);
        u.index[31] = (uint8_t)k;
        u.counter = ++counter[k];
        memset(u.commitment, (int)(0x90 + i), 32);
        check(sotto_kt_update_encode(&u, out + 3 + (size_t)i * U) == SOTTO_OK);
    }
    return 3 + (size_t)n * U;
}

static void setup_once(void)
{
    static uint8_t buf[3 + 8 * U];
    uint8_t seed[32];
    size_t n;

    if (g_ready)
        return;
    g_ready = 1;
    check(sotto_init() == SOTTO_OK);
    memset(seed, 1, sizeof seed);
    check(crypto_sign_seed_keypair(g_spk, g_ssk, seed) == 0);
    memset(seed, 2, sizeof seed);
    check(crypto_sign_seed_keypair(g_apk, g_ask, seed) == 0);

    n = make_seed(buf, 0, 2, 3, 8, 3);
    write_seed("replay.bin", buf, n);
    n = make_seed(buf, 3, 0, 7, 6, 2);
    write_seed("replay_fixed.bin", buf, n);
    n = make_seed(buf, 4, 17, 200, 4, 4);
    write_seed("head_flip.bin", buf, n);
    /* a skipped counter (update 4 of index 1 says 3, not 2) */
    n = make_seed(buf, 0, 5, 1, 6, 3);
    put_u64be(buf + 3 + 4 * U + 40, 3);
    write_seed("counter_skip.bin", buf, n);
    /* time going back at update 3 */
    n = make_seed(buf, 0, 1, 1, 5, 5);
    put_u64be(buf + 3 + 3 * U, TS - 1);
    write_seed("time_back.bin", buf, n);
}

static int root_of(const sotto_kt_directory *d, uint8_t r[HB])
{
    return sotto_kt_directory_root(d, r);
}

/* Heads for sizes 1..n: root from the log, time of the size's last leaf. */
static void head_at(sotto_kt_tree_head *h, const sotto_merkle_log *log, const uint64_t *leaf_ts,
                    uint64_t size)
{
    memset(h, 0, sizeof *h);
    h->size = size;
    check(sotto_merkle_log_root(log, size, h->root) == SOTTO_OK);
    h->timestamp_ms = leaf_ts[size - 1];
    check(sotto_kt_head_sign(h, g_ssk) == SOTTO_OK);
}

static void check_proofs(const sotto_merkle_log *log, const uint8_t (*leaves)[HB],
                         const uint64_t *leaf_ts, uint64_t n, unsigned flags, unsigned a,
                         unsigned b)
{
    static uint8_t p1[SOTTO_MERKLE_MAX_PROOF][HB], p2[SOTTO_MERKLE_MAX_PROOF][HB];
    uint8_t enc[SOTTO_KT_HEAD_BYTES], penc[SOTTO_MERKLE_PROOF_MAX_BYTES], root[HB];
    uint8_t aenc[SOTTO_KT_AUDITED_HEAD_MAX_BYTES], sig[64];
    sotto_kt_tree_head h, parsed, older, newer;
    sotto_kt_audited_head ah, aparsed;
    uint64_t s1, s2, idx;
    size_t n1, n2, plen, alen;
    int rc;

    /* the log against the array generators */
    check(sotto_merkle_root(leaves, n, root) == SOTTO_OK);
    head_at(&h, log, leaf_ts, n);
    check(memcmp(root, h.root, HB) == 0);

    /* the signed head on the wire; a flipped bit never parses */
    check(sotto_kt_head_encode(&h, enc) == SOTTO_OK);
    if (flags & 4) {
        unsigned bit = (a * 256 + b) % (8 * SOTTO_KT_HEAD_BYTES);
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    rc = sotto_kt_head_parse(enc, sizeof enc, g_spk, &parsed);
    if (flags & 4) {
        check(rc == SOTTO_ERR_INVALID_SIGNATURE || rc == SOTTO_ERR_INVALID_MESSAGE);
    } else {
        check(rc == SOTTO_OK);
        check(parsed.size == n && memcmp(parsed.root, root, HB) == 0);
        /* countersigned by the harness auditor, as the auditor would */
        memset(&ah, 0, sizeof ah);
        ah.head = parsed;
        check(sotto_kt_cosign(sig, &parsed, g_ask) == SOTTO_OK);
        check(sotto_kt_audited_head_add(&ah, g_apk, sig) == SOTTO_OK);
        check(sotto_kt_audited_head_encode(&ah, aenc, sizeof aenc, &alen) == SOTTO_OK);
        check(sotto_kt_audited_head_parse(aenc, alen, &aparsed) == SOTTO_OK);
        check(sotto_kt_audited_head_check(&aparsed, g_spk, (const uint8_t(*)[32])g_apk, 1,
                                          parsed.timestamp_ms,
                                          SOTTO_KT_DEFAULT_MAX_AGE_MS) == SOTTO_OK);
    }

    /* inclusion of one leaf */
    idx = a % n;
    check(sotto_merkle_log_prove_inclusion(log, idx, n, p1, &n1) == SOTTO_OK);
    check(sotto_merkle_prove_inclusion(leaves, n, idx, p2, &n2) == SOTTO_OK);
    check(n1 == n2 && memcmp(p1, p2, n1 * HB) == 0);
    check(sotto_merkle_verify_inclusion(idx, n, leaves[idx], (const uint8_t(*)[HB])p1, n1, root) ==
          SOTTO_OK);

    /* consistency between two sizes, through the heads */
    s1 = 1 + a % n;
    s2 = s1 + b % (n - s1 + 1);
    check(sotto_merkle_log_prove_consistency(log, s1, s2, p1, &n1) == SOTTO_OK);
    check(sotto_merkle_prove_consistency(leaves, s2, s1, p2, &n2) == SOTTO_OK);
    check(n1 == n2 && memcmp(p1, p2, n1 * HB) == 0);
    check(sotto_merkle_proof_encode((const uint8_t(*)[HB])p1, n1, penc, sizeof penc, &plen) ==
          SOTTO_OK);
    head_at(&older, log, leaf_ts, s1);
    head_at(&newer, log, leaf_ts, s2);
    check(sotto_kt_head_verify_consistency(&older, &newer, penc, plen) == SOTTO_OK);
    older.root[b % HB] ^= 1;
    check(sotto_kt_head_verify_consistency(&older, &newer, penc, plen) == SOTTO_ERR_PROOF_INVALID);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t leaves[MAX_UPDATES][HB];
    static uint64_t leaf_ts[MAX_UPDATES];
    static sotto_pt_proof proof;
    sotto_kt_directory *d = NULL;
    sotto_merkle_log *log = NULL;
    unsigned flags, a, b;
    size_t n_updates;
    uint64_t n = 0;

    setup_once();
    if (size < 3)
        return 0;
    flags = data[0];
    a = data[1];
    b = data[2];
    n_updates = (size - 3) / U;
    if (n_updates > MAX_UPDATES)
        n_updates = MAX_UPDATES;
    check(sotto_kt_directory_new(&d) == SOTTO_OK);
    check(sotto_merkle_log_new(&log) == SOTTO_OK);

    for (size_t i = 0; i < n_updates; i++) {
        uint8_t raw[U], enc[U], before[HB], after[HB], root[HB], lv[HB];
        sotto_kt_update u;
        uint64_t cur, last, count, counter, ts;
        int rc, expect;

        memcpy(raw, data + 3 + i * U, U);
        cur = sotto_kt_directory_counter(d, raw + 8);
        last = sotto_kt_directory_last_timestamp(d);
        count = sotto_kt_directory_count(d);
        if ((flags & 1) && cur != UINT64_MAX)
            put_u64be(raw + 40, cur + 1);
        if ((flags & 2) && get_u64be(raw) < last)
            put_u64be(raw, last);
        counter = get_u64be(raw + 40);
        ts = get_u64be(raw);

        memset(&u, 0x55, sizeof u);
        rc = sotto_kt_update_parse(raw, U, &u);
        if (counter == 0) {
            sotto_kt_update zero;
            memset(&zero, 0, sizeof zero);
            check(rc == SOTTO_ERR_INVALID_MESSAGE && memcmp(&u, &zero, sizeof u) == 0);
            continue;
        }
        check(rc == SOTTO_OK && u.counter == counter && u.timestamp_ms == ts);
        check(sotto_kt_update_encode(&u, enc) == SOTTO_OK && memcmp(enc, raw, U) == 0);

        expect = counter - 1 == cur && ts >= last;
        check(root_of(d, before) == SOTTO_OK);
        memset(root, 0xee, sizeof root);
        rc = sotto_kt_directory_apply(d, &u, root);
        if (!expect) {
            check(rc == SOTTO_ERR_KT_UPDATE_INVALID);
            check(root_of(d, after) == SOTTO_OK && memcmp(before, after, HB) == 0);
            check(sotto_kt_directory_counter(d, u.index) == cur);
            check(sotto_kt_directory_last_timestamp(d) == last);
            check(sotto_kt_directory_count(d) == count);
            continue;
        }
        check(rc == SOTTO_OK);
        check(sotto_kt_directory_counter(d, u.index) == counter);
        check(sotto_kt_directory_last_timestamp(d) == ts);
        check(sotto_kt_directory_count(d) == count + (cur == 0));
        check(root_of(d, after) == SOTTO_OK && memcmp(root, after, HB) == 0);
        check(sotto_kt_leaf_value(lv, counter, u.commitment) == SOTTO_OK);
        check(sotto_kt_directory_prove(d, u.index, &proof) == SOTTO_OK);
        check(proof.kind == SOTTO_PT_PROOF_PRESENT);
        check(sotto_pt_verify(root, u.index, lv, &proof) == SOTTO_OK);

        /* the auditor's log entry for this state */
        check(sotto_kt_leaf_hash(leaves[n], root, ts) == SOTTO_OK);
        leaf_ts[n] = ts;
        check(sotto_merkle_log_append(log, leaves[n]) == SOTTO_OK);
        n++;
        check(sotto_merkle_log_size(log) == n);
    }
    if (n > 0)
        check_proofs(log, (const uint8_t(*)[HB])leaves, leaf_ts, n, flags, a, b);
    sotto_merkle_log_free(log);
    sotto_kt_directory_free(d);
    return 0;
}
