/*
 * Sender Keys (sotto/group.h): the scenarios of libsignal-protocol-c's
 * test_group_cipher.c plus byte-exact layouts, signature tampering and
 * hostile input, each checking that a failure leaves the record unchanged.
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

#include "common/buf.h"
#include "common/pb.h"
#include "crypto/crypto.h"
#include "group/sender_key_record.h"
#include "sotto/group.h"
#include "sotto/memory_store.h"
#include "testutil.h"

static const uint8_t group_id[] = {'g', 'r', 'o', 'u', 'p', 0x00, 0x01};

typedef struct party {
    sotto_key_pair identity;
    sotto_memory_store *ms;
    const sotto_sender_key_store *sk;
} party;

typedef struct fixture {
    party alice, bob;
    sotto_sender_key_name alice_name; /* (group, alice.1): Alice's sender key */
} fixture;

static int party_init(party *p)
{
    if (sotto_identity_key_pair_generate(&p->identity) != SOTTO_OK ||
        sotto_memory_store_new(&p->identity, 1, &p->ms) != SOTTO_OK)
        return -1;
    p->sk = &sotto_memory_store_protocol(p->ms)->sender_key;
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || sotto_init() != SOTTO_OK || party_init(&f->alice) != 0 ||
        party_init(&f->bob) != 0)
        return -1;
    f->alice_name.group_id = group_id;
    f->alice_name.group_id_len = sizeof group_id;
    f->alice_name.sender.name = "alice";
    f->alice_name.sender.name_len = 5;
    f->alice_name.sender.device_id = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sotto_memory_store_free(f->alice.ms);
    sotto_memory_store_free(f->bob.ms);
    sotto_key_pair_wipe(&f->alice.identity);
    sotto_key_pair_wipe(&f->bob.identity);
    free(f);
    return 0;
}

/* Alice creates her sender key; Bob processes the SKDM. */
static void distribute(fixture *f)
{
    uint8_t *skdm = NULL;
    size_t skdm_len = 0;
    assert_int_equal(sotto_group_create_distribution(f->alice.sk, &f->alice_name, &skdm, &skdm_len),
                     SOTTO_OK);
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm, skdm_len),
                     SOTTO_OK);
    free(skdm);
}

typedef struct msg {
    uint8_t *p;
    size_t n;
} msg;

static msg encrypt_text(fixture *f, const char *text)
{
    msg m = {NULL, 0};
    assert_int_equal(sotto_group_encrypt(f->alice.sk, &f->alice_name, (const uint8_t *)text,
                                         strlen(text), &m.p, &m.n),
                     SOTTO_OK);
    return m;
}

static void expect_text(fixture *f, const msg *m, const char *text)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    assert_int_equal(sotto_group_decrypt(f->bob.sk, &f->alice_name, m->p, m->n, &pt, &pt_len),
                     SOTTO_OK);
    assert_int_equal(pt_len, strlen(text));
    assert_memory_equal(pt, text, pt_len);
    free(pt);
}

static int decrypt_rc(fixture *f, const uint8_t *p, size_t n)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    int rc = sotto_group_decrypt(f->bob.sk, &f->alice_name, p, n, &pt, &pt_len);
    if (rc == SOTTO_OK)
        free(pt);
    else
        assert_null(pt);
    return rc;
}

/* Bob's stored record for Alice's sender key (malloc()ed copy). */
static uint8_t *bob_record(fixture *f, size_t *len)
{
    uint8_t *r = NULL;
    assert_int_equal(f->bob.sk->load(f->bob.sk->user_data, &f->alice_name, &r, len), SOTTO_OK);
    return r;
}

static void assert_record_is(fixture *f, const uint8_t *rec, size_t len)
{
    size_t now_len;
    uint8_t *now = bob_record(f, &now_len);
    assert_int_equal(now_len, len);
    assert_memory_equal(now, rec, len);
    free(now);
}

static void text_n(char *buf, size_t cap, unsigned i)
{
    snprintf(buf, cap, "message number %u of the group", i);
}

/* Deterministic Fisher-Yates shuffle. */
static void shuffle(msg *m, size_t n, uint32_t seed)
{
    for (size_t i = n - 1; i > 0; i--) {
        seed = seed * 1103515245u + 12345u;
        size_t j = (seed >> 8) % (i + 1);
        msg t = m[i];
        m[i] = m[j];
        m[j] = t;
    }
}

/* ---- scenarios of test_group_cipher.c ----------------------------------- */

static void test_basic_encrypt_decrypt(void **state)
{
    fixture *f = *state;
    distribute(f);
    msg m = encrypt_text(f, "smert ze smert");
    assert_int_equal(m.p[0], 0x33);
    expect_text(f, &m, "smert ze smert");
    free(m.p);

    /* an empty plaintext is one block of padding */
    m.p = NULL;
    assert_int_equal(sotto_group_encrypt(f->alice.sk, &f->alice_name, NULL, 0, &m.p, &m.n),
                     SOTTO_OK);
    expect_text(f, &m, "");
    free(m.p);
}

static void test_no_session(void **state)
{
    fixture *f = *state;
    uint8_t *skdm = NULL;
    size_t skdm_len;
    /* Alice creates her key, but Bob never processes the SKDM. */
    assert_int_equal(sotto_group_create_distribution(f->alice.sk, &f->alice_name, &skdm, &skdm_len),
                     SOTTO_OK);
    free(skdm);
    msg m = encrypt_text(f, "smert ze smert");
    assert_int_equal(decrypt_rc(f, m.p, m.n), SOTTO_ERR_NO_SESSION);
    free(m.p);
}

static void test_encrypt_no_session(void **state)
{
    fixture *f = *state;
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(
        sotto_group_encrypt(f->alice.sk, &f->alice_name, (const uint8_t *)"x", 1, &out, &out_len),
        SOTTO_ERR_NO_SESSION);
    assert_null(out);
}

static void test_basic_ratchet(void **state)
{
    fixture *f = *state;
    distribute(f);
    msg m1 = encrypt_text(f, "smert ze smert");
    msg m2 = encrypt_text(f, "smert ze smert2");
    msg m3 = encrypt_text(f, "smert ze smert3");
    expect_text(f, &m1, "smert ze smert");

    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    assert_int_equal(decrypt_rc(f, m1.p, m1.n), SOTTO_ERR_DUPLICATE_MESSAGE);
    assert_record_is(f, rec, rec_len);
    free(rec);

    expect_text(f, &m2, "smert ze smert2");
    expect_text(f, &m3, "smert ze smert3");
    assert_int_equal(decrypt_rc(f, m3.p, m3.n), SOTTO_ERR_DUPLICATE_MESSAGE);
    free(m1.p);
    free(m2.p);
    free(m3.p);
}

static void test_late_join(void **state)
{
    fixture *f = *state;
    uint8_t *skdm = NULL;
    size_t skdm_len;
    msg early[100];
    char text[64];

    assert_int_equal(sotto_group_create_distribution(f->alice.sk, &f->alice_name, &skdm, &skdm_len),
                     SOTTO_OK);
    free(skdm);
    for (unsigned i = 0; i < 100; i++) {
        text_n(text, sizeof text, i);
        early[i] = encrypt_text(f, text);
    }
    /* Bob joins: the SKDM now carries iteration 100. */
    assert_int_equal(sotto_group_create_distribution(f->alice.sk, &f->alice_name, &skdm, &skdm_len),
                     SOTTO_OK);
    sotto_sender_key_distribution d;
    assert_int_equal(sotto_sender_key_distribution_decode(&d, skdm, skdm_len), SOTTO_OK);
    assert_int_equal(d.iteration, 100);
    sodium_memzero(&d, sizeof d);
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm, skdm_len),
                     SOTTO_OK);
    free(skdm);

    msg m = encrypt_text(f, "welcome bob");
    expect_text(f, &m, "welcome bob");
    free(m.p);
    /* what was said before he joined stays unreadable */
    for (unsigned i = 0; i < 100; i++) {
        assert_int_equal(decrypt_rc(f, early[i].p, early[i].n), SOTTO_ERR_DUPLICATE_MESSAGE);
        free(early[i].p);
    }
}

static void test_out_of_order(void **state)
{
    fixture *f = *state;
    msg m[100];
    char text[64];
    unsigned idx[100];
    distribute(f);
    for (unsigned i = 0; i < 100; i++) {
        text_n(text, sizeof text, i);
        m[i] = encrypt_text(f, text);
    }
    /* remember which text each message carries, then shuffle */
    for (unsigned i = 0; i < 100; i++) {
        uint32_t key_id, it;
        assert_int_equal(sotto_sender_key_message_peek(m[i].p, m[i].n, &key_id, &it), SOTTO_OK);
        assert_int_equal(it, i);
    }
    shuffle(m, 100, 0xC0FFEE);
    for (unsigned i = 0; i < 100; i++) {
        uint32_t key_id, it;
        assert_int_equal(sotto_sender_key_message_peek(m[i].p, m[i].n, &key_id, &it), SOTTO_OK);
        idx[i] = it;
        text_n(text, sizeof text, idx[i]);
        expect_text(f, &m[i], text);
    }
    /* everything consumed: no stored keys remain, every message is a duplicate */
    for (unsigned i = 0; i < 100; i++) {
        assert_int_equal(decrypt_rc(f, m[i].p, m[i].n), SOTTO_ERR_DUPLICATE_MESSAGE);
        free(m[i].p);
    }
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    sotto_skr skr;
    assert_int_equal(sotto_skr_decode(&skr, rec, rec_len), SOTTO_OK);
    assert_int_equal(skr.count, 1);
    assert_int_equal(skr.states[0].iteration, 100);
    assert_int_equal(skr.states[0].mk_count, 0);
    sotto_skr_wipe(&skr);
    free(rec);
}

/* Encrypts n messages "message number i ...". */
static msg *encrypt_many(fixture *f, unsigned n)
{
    char text[64];
    msg *m = calloc(n, sizeof *m);
    assert_non_null(m);
    for (unsigned i = 0; i < n; i++) {
        text_n(text, sizeof text, i);
        m[i] = encrypt_text(f, text);
    }
    return m;
}

static void free_many(msg *m, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        free(m[i].p);
    free(m);
}

static void test_too_far_in_future(void **state)
{
    fixture *f = *state;
    char text[64];
    distribute(f);
    msg *m = encrypt_many(f, 2002); /* iterations 0 .. 2001 */

    /* 2001 ahead of Bob's iteration 0: refused, record untouched */
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    assert_int_equal(decrypt_rc(f, m[2001].p, m[2001].n), SOTTO_ERR_TOO_FAR_AHEAD);
    assert_record_is(f, rec, rec_len);
    free(rec);

    /* exactly 2000 ahead: accepted; the 2000 skipped keys are all kept */
    text_n(text, sizeof text, 2000);
    expect_text(f, &m[2000], text);
    text_n(text, sizeof text, 0);
    expect_text(f, &m[0], text);
    text_n(text, sizeof text, 1999);
    expect_text(f, &m[1999], text);
    text_n(text, sizeof text, 2001);
    expect_text(f, &m[2001], text);
    free_many(m, 2002);
}

static void test_message_key_limit(void **state)
{
    fixture *f = *state;
    char text[64];
    distribute(f);
    msg *m = encrypt_many(f, 2010);

    text_n(text, sizeof text, 1000);
    expect_text(f, &m[1000], text); /* keeps keys 0 .. 999 */
    text_n(text, sizeof text, 2009);
    expect_text(f, &m[2009], text); /* adds 1001 .. 2008: 0 .. 7 evicted */
    assert_int_equal(decrypt_rc(f, m[0].p, m[0].n), SOTTO_ERR_DUPLICATE_MESSAGE);
    assert_int_equal(decrypt_rc(f, m[7].p, m[7].n), SOTTO_ERR_DUPLICATE_MESSAGE);
    text_n(text, sizeof text, 8);
    expect_text(f, &m[8], text);
    text_n(text, sizeof text, 2008);
    expect_text(f, &m[2008], text);
    free_many(m, 2010);
}

static void test_invalid_signature(void **state)
{
    fixture *f = *state;
    distribute(f);
    msg m = encrypt_text(f, "signed and sealed");
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    uint8_t *b = malloc(m.n);
    assert_non_null(b);

    /* every bit of the signature */
    for (size_t i = m.n - SOTTO_SIGNATURE_BYTES; i < m.n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, m.p, m.n);
            b[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(decrypt_rc(f, b, m.n), SOTTO_ERR_INVALID_SIGNATURE);
        }
    }
    /* every bit of the signed part: refused one way or another */
    for (size_t i = 0; i < m.n - SOTTO_SIGNATURE_BYTES; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, m.p, m.n);
            b[i] ^= (uint8_t)(1u << bit);
            int rc = decrypt_rc(f, b, m.n);
            assert_true(rc != SOTTO_OK);
            if (i == 0 && bit < 4)
                assert_int_equal(rc, SOTTO_ERR_INVALID_SIGNATURE); /* low nibble ignored */
        }
    }
    assert_record_is(f, rec, rec_len);

    /* a signature by another key over the same bytes */
    sotto_key_pair other;
    assert_int_equal(sotto_key_pair_generate(&other), SOTTO_OK);
    memcpy(b, m.p, m.n);
    assert_int_equal(sotto_xeddsa_sign(b + m.n - SOTTO_SIGNATURE_BYTES, other.priv, b,
                                       m.n - SOTTO_SIGNATURE_BYTES),
                     SOTTO_OK);
    assert_int_equal(decrypt_rc(f, b, m.n), SOTTO_ERR_INVALID_SIGNATURE);
    sotto_key_pair_wipe(&other);
    assert_record_is(f, rec, rec_len);

    expect_text(f, &m, "signed and sealed");
    free(b);
    free(rec);
    free(m.p);
}

static void test_receive_only_state_cannot_encrypt(void **state)
{
    fixture *f = *state;
    distribute(f);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(
        sotto_group_encrypt(f->bob.sk, &f->alice_name, (const uint8_t *)"x", 1, &out, &out_len),
        SOTTO_ERR_NO_SIGNING_KEY);
    assert_null(out);
}

static void test_state_cap(void **state)
{
    fixture *f = *state;
    msg m[6];
    uint8_t *skdm[6];
    size_t skdm_len[6];
    uint32_t ids[6];

    for (int i = 0; i < 6; i++) {
        int rc = i == 0 ? sotto_group_create_distribution(f->alice.sk, &f->alice_name, &skdm[i],
                                                          &skdm_len[i])
                        : sotto_group_rotate(f->alice.sk, &f->alice_name, &skdm[i], &skdm_len[i]);
        assert_int_equal(rc, SOTTO_OK);
        sotto_sender_key_distribution d;
        assert_int_equal(sotto_sender_key_distribution_decode(&d, skdm[i], skdm_len[i]), SOTTO_OK);
        assert_true(d.key_id <= SOTTO_SENDER_KEY_MAX_ID);
        assert_int_equal(d.iteration, 0);
        ids[i] = d.key_id;
        for (int j = 0; j < i; j++)
            assert_true(ids[j] != ids[i]); /* collision odds 2^-31 per pair */
        sodium_memzero(&d, sizeof d);
        char text[32];
        snprintf(text, sizeof text, "under key %d", i);
        m[i] = encrypt_text(f, text);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(
            sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm[i], skdm_len[i]),
            SOTTO_OK);
        free(skdm[i]);
    }
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    sotto_skr skr;
    assert_int_equal(sotto_skr_decode(&skr, rec, rec_len), SOTTO_OK);
    assert_int_equal(skr.count, SOTTO_MAX_SENDER_KEY_STATES);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(skr.states[i].key_id, ids[5 - i]); /* newest first */
        assert_false(skr.states[i].has_private);
    }
    sotto_skr_wipe(&skr);

    /* the oldest key was dropped */
    assert_int_equal(decrypt_rc(f, m[0].p, m[0].n), SOTTO_ERR_INVALID_KEY_ID);
    assert_record_is(f, rec, rec_len);
    free(rec);
    for (int i = 1; i < 6; i++) {
        char text[32];
        snprintf(text, sizeof text, "under key %d", i);
        expect_text(f, &m[i], text);
    }
    for (int i = 0; i < 6; i++)
        free(m[i].p);

    /* Alice's own record is capped too, and she encrypts with the newest */
    uint8_t *arec = NULL;
    size_t arec_len;
    assert_int_equal(f->alice.sk->load(f->alice.sk->user_data, &f->alice_name, &arec, &arec_len),
                     SOTTO_OK);
    assert_int_equal(sotto_skr_decode(&skr, arec, arec_len), SOTTO_OK);
    assert_int_equal(skr.count, 5);
    assert_int_equal(skr.states[0].key_id, ids[5]);
    assert_true(skr.states[0].has_private);
    assert_int_equal(skr.states[0].iteration, 1);
    sotto_skr_wipe(&skr);
    sodium_memzero(arec, arec_len);
    free(arec);
}

/* Re-processing an SKDM never moves a chain backwards; a later one advances it. */
static void test_skdm_forward_only(void **state)
{
    fixture *f = *state;
    uint8_t *skdm0 = NULL, *skdm10 = NULL;
    size_t len0, len10;
    char text[64];

    assert_int_equal(sotto_group_create_distribution(f->alice.sk, &f->alice_name, &skdm0, &len0),
                     SOTTO_OK);
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm0, len0),
                     SOTTO_OK);
    msg *m = encrypt_many(f, 10);
    /* a later SKDM, at iteration 10 */
    assert_int_equal(sotto_group_create_distribution(f->alice.sk, &f->alice_name, &skdm10, &len10),
                     SOTTO_OK);
    msg *more = realloc(m, 12 * sizeof *m);
    assert_non_null(more);
    m = more;
    text_n(text, sizeof text, 10);
    m[10] = encrypt_text(f, text);
    text_n(text, sizeof text, 11);
    m[11] = encrypt_text(f, text);
    for (unsigned i = 0; i < 3; i++) {
        text_n(text, sizeof text, i);
        expect_text(f, &m[i], text);
    }
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    /* the same SKDM again: nothing changes, old messages stay duplicates */
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm0, len0),
                     SOTTO_OK);
    assert_record_is(f, rec, rec_len);
    free(rec);
    assert_int_equal(decrypt_rc(f, m[0].p, m[0].n), SOTTO_ERR_DUPLICATE_MESSAGE);

    /* the later SKDM advances the chain */
    text_n(text, sizeof text, 5);
    expect_text(f, &m[5], text); /* 3, 4 stored as skipped */
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm10, len10),
                     SOTTO_OK);
    text_n(text, sizeof text, 4);
    expect_text(f, &m[4], text); /* stored key kept */
    assert_int_equal(decrypt_rc(f, m[7].p, m[7].n),
                     SOTTO_ERR_DUPLICATE_MESSAGE); /* skipped by SKDM */
    text_n(text, sizeof text, 11);
    expect_text(f, &m[11], text);
    text_n(text, sizeof text, 10);
    expect_text(f, &m[10], text);
    /* and the older SKDM cannot wind it back */
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm0, len0),
                     SOTTO_OK);
    assert_int_equal(decrypt_rc(f, m[1].p, m[1].n), SOTTO_ERR_DUPLICATE_MESSAGE);
    free(skdm0);
    free(skdm10);
    free_many(m, 12);
}

/* ---- byte-exact layouts -------------------------------------------------- */

static void test_skdm_layout(void **state)
{
    (void)state;
    sotto_sender_key_distribution d, back;
    uint8_t *out = NULL;
    size_t out_len = 0;
    d.key_id = 0x7ffffffe;
    d.iteration = 300;
    for (int i = 0; i < 32; i++)
        d.chain_key[i] = (uint8_t)i;
    d.signing_key.bytes[0] = 0x05;
    for (int i = 1; i < 33; i++)
        d.signing_key.bytes[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(sotto_sender_key_distribution_encode(&d, &out, &out_len), SOTTO_OK);
    size_t exp_len;
    uint8_t *exp = tu_unhex("33"
                            "08feffffff07" /* 1: id 0x7ffffffe */
                            "10ac02"       /* 2: iteration 300 */
                            "1a20000102030405060708090a0b0c0d0e0f"
                            "101112131415161718191a1b1c1d1e1f" /* 3: chain key */
                            "222105a1a2a3a4a5a6a7a8a9aaabacadaeafb0"
                            "b1b2b3b4b5b6b7b8b9babbbcbdbebfc0", /* 4: signing key */
                            &exp_len);
    assert_int_equal(out_len, exp_len);
    assert_memory_equal(out, exp, exp_len);
    assert_int_equal(sotto_sender_key_distribution_decode(&back, out, out_len), SOTTO_OK);
    assert_int_equal(back.key_id, d.key_id);
    assert_int_equal(back.iteration, d.iteration);
    assert_memory_equal(back.chain_key, d.chain_key, 32);
    assert_memory_equal(back.signing_key.bytes, d.signing_key.bytes, 33);
    free(out);
    free(exp);

    /* zero values are still written */
    d.key_id = 0;
    d.iteration = 0;
    assert_int_equal(sotto_sender_key_distribution_encode(&d, &out, &out_len), SOTTO_OK);
    assert_int_equal(out_len, 1 + 2 + 2 + 34 + 35);
    assert_memory_equal(out, "\x33\x08\x00\x10\x00\x1a\x20", 7);
    free(out);
}

static void test_skm_layout(void **state)
{
    fixture *f = *state;
    uint8_t *skdm = NULL;
    size_t skdm_len;
    sotto_sender_key_distribution d;
    static const char text[] = "exactly thirty-one bytes long!!"; /* 31 -> 32 bytes of ct */

    assert_int_equal(sotto_group_create_distribution(f->alice.sk, &f->alice_name, &skdm, &skdm_len),
                     SOTTO_OK);
    assert_int_equal(sotto_sender_key_distribution_decode(&d, skdm, skdm_len), SOTTO_OK);
    free(skdm);
    msg m0 = encrypt_text(f, "first");
    msg m = encrypt_text(f, text);

    /* 0x33 | 08 id | 10 01 | 1a 20 ct[32] | sig[64] */
    sotto_wbuf w;
    uint8_t head[16];
    sotto_wbuf_init_fixed(&w, head, sizeof head);
    sotto_wbuf_put_u8(&w, 0x33);
    sotto_wbuf_put_u8(&w, 0x08);
    sotto_wbuf_put_varint(&w, d.key_id);
    const uint8_t rest[] = {0x10, 0x01, 0x1a, 0x20};
    sotto_wbuf_put(&w, rest, sizeof rest);
    assert_int_equal(sotto_wbuf_error(&w), SOTTO_OK);
    assert_int_equal(m.n, w.len + 32 + 64);
    assert_memory_equal(m.p, head, w.len);
    assert_int_equal(sotto_xeddsa_verify(&d.signing_key, m.p, m.n - 64, m.p + m.n - 64), SOTTO_OK);

    /* The ciphertext is AES-256-CBC under the key of chain step 1 of the SKDM's
     * chain key: HMAC steps, HKDF "WhisperGroup", IV first (spec 2.7). */
    uint8_t ck[32], seed[32], okm[48], pt[32];
    size_t pt_len;
    memcpy(ck, d.chain_key, 32);
    assert_int_equal(sotto_hmac_sha256(ck, d.chain_key, 32, (const uint8_t *)"\x02", 1), SOTTO_OK);
    assert_int_equal(sotto_hmac_sha256(seed, ck, 32, (const uint8_t *)"\x01", 1), SOTTO_OK);
    assert_int_equal(
        sotto_hkdf_sha256(okm, 48, NULL, 0, seed, 32, (const uint8_t *)"WhisperGroup", 12),
        SOTTO_OK);
    assert_int_equal(sotto_aes256_cbc_decrypt(pt, &pt_len, okm + 16, okm, m.p + w.len, 32),
                     SOTTO_OK);
    assert_int_equal(pt_len, 31);
    assert_memory_equal(pt, text, 31);
    sodium_memzero(&d, sizeof d);
    free(m0.p);
    free(m.p);
}

/* ---- libsignal-protocol-c vectors --------------------------------------- */

/*
 * Produced by Debian's libsignal-protocol-c 2.3.3 (group_session_builder_
 * create_session, then group_cipher_encrypt of the three plaintexts below)
 * with an OpenSSL crypto provider whose RNG returns the byte counter
 * 0, 1, 2, ... : key id = bytes 0..3 (little-endian), chain key = 4..35,
 * signing private key = 36..67, then 64 signing nonce bytes per message.
 */
static const char lsc_skdm[] =
    "33088082881810001a200405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021"
    "2223222105f7161ac20bf80c387f05ca17363bfb96146d62e53b7786773b6b32b93ccf5e09";
static const char *const lsc_skm[3] = {
    "33088082881810001a1062a5c77d775a0e7b65b222f22f060e13fc45769cd7b39fd892f9e594879f"
    "afd7359d46fb94c9922f03991a7d9ed60dce037b8c01a39b8d514b3e2dc4ad7038d64d2098eec57e"
    "9bd4884752af4295700f",
    "33088082881810011a1003bb258d6fbdcfd6764ded273aab13ff66f6642563bb694abfab91286d64"
    "6bb74a750318502139914452481b02d7163177ba70903395b8a7e71987857aea68d6ff3980eb626d"
    "e9d0057ebc324425aa05",
    "33088082881810021a3053fb11b91b4b1402718a864405182ab1d5f900ec316e0c676c8f37a53fe7"
    "0e7debf289bf2cfb1f89b2b1fdf82bd43e01d2b09827a1bc8d9cd09e302519a08dd6ac43f9b3f620"
    "9c696f876efc97a370e0800963978d9ecc479c881694b2685c0114b7833da73a93ee873bcc5f7b80"
    "450f",
};
static const char *const lsc_pt[3] = {"smert ze smert", "", "a plaintext of exactly 32 bytes!"};

/* Their SKDM and SKMs decrypt here (last one first, so keys are skipped). */
static void test_libsignal_vectors_decrypt(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *skdm = tu_unhex(lsc_skdm, &n);
    sotto_sender_key_distribution d;
    assert_int_equal(sotto_sender_key_distribution_decode(&d, skdm, n), SOTTO_OK);
    assert_int_equal(d.key_id, 0x03020100);
    assert_int_equal(d.iteration, 0);
    assert_int_equal(d.chain_key[0], 0x04);
    sodium_memzero(&d, sizeof d);
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm, n),
                     SOTTO_OK);
    free(skdm);
    static const int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        msg m;
        m.p = tu_unhex(lsc_skm[i], &m.n);
        expect_text(f, &m, lsc_pt[i]);
        assert_int_equal(decrypt_rc(f, m.p, m.n), SOTTO_ERR_DUPLICATE_MESSAGE);
        free(m.p);
    }
}

static void counter_rng(void *ctx, void *p, size_t n)
{
    unsigned *ctr = ctx;
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((*ctr)++);
}

/* With the same RNG bytes, we write their SKDM and SKMs byte for byte. */
static void test_libsignal_vectors_encrypt(void **state)
{
    fixture *f = *state;
    unsigned ctr = 0;
    uint8_t *out = NULL;
    size_t out_len = 0, n;

    sotto_test_set_random(counter_rng, &ctr);
    int rc = sotto_group_create_distribution(f->alice.sk, &f->alice_name, &out, &out_len);
    sotto_test_set_random(NULL, NULL);
    assert_int_equal(rc, SOTTO_OK);
    uint8_t *exp = tu_unhex(lsc_skdm, &n);
    assert_int_equal(out_len, n);
    assert_memory_equal(out, exp, n);
    free(exp);
    free(out);
    for (int i = 0; i < 3; i++) {
        sotto_test_set_random(counter_rng, &ctr);
        rc = sotto_group_encrypt(f->alice.sk, &f->alice_name, (const uint8_t *)lsc_pt[i],
                                 strlen(lsc_pt[i]), &out, &out_len);
        sotto_test_set_random(NULL, NULL);
        assert_int_equal(rc, SOTTO_OK);
        exp = tu_unhex(lsc_skm[i], &n);
        assert_int_equal(out_len, n);
        assert_memory_equal(out, exp, n);
        free(exp);
        free(out);
    }
}

/* ---- hostile input ------------------------------------------------------- */

static void test_hostile_messages(void **state)
{
    fixture *f = *state;
    distribute(f);
    msg good = encrypt_text(f, "the real one");
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    uint8_t *b = malloc(good.n + 64);
    assert_non_null(b);

    /* every truncation */
    for (size_t cut = 0; cut < good.n; cut++) {
        int rc = decrypt_rc(f, cut ? good.p : NULL, cut);
        assert_true(rc == SOTTO_ERR_INVALID_MESSAGE || rc == SOTTO_ERR_INVALID_SIGNATURE);
    }
    assert_int_equal(decrypt_rc(f, good.p, 0), SOTTO_ERR_INVALID_MESSAGE);
    /* version nibbles */
    memcpy(b, good.p, good.n);
    b[0] = 0x23;
    assert_int_equal(decrypt_rc(f, b, good.n), SOTTO_ERR_LEGACY_MESSAGE);
    b[0] = 0x03;
    assert_int_equal(decrypt_rc(f, b, good.n), SOTTO_ERR_LEGACY_MESSAGE);
    b[0] = 0x43;
    assert_int_equal(decrypt_rc(f, b, good.n), SOTTO_ERR_UNSUPPORTED_VERSION);
    b[0] = 0xf3;
    assert_int_equal(decrypt_rc(f, b, good.n), SOTTO_ERR_UNSUPPORTED_VERSION);
    /* appended bytes shift the signature */
    memcpy(b, good.p, good.n);
    memset(b + good.n, 0x41, 64);
    assert_true(decrypt_rc(f, b, good.n + 64) != SOTTO_OK);
    /* garbage */
    for (uint32_t s = 1; s <= 200; s++) {
        size_t n = 1 + (s * 7919u) % (good.n + 40);
        uint32_t x = s;
        for (size_t i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;
            b[i] = (uint8_t)(x >> 24);
        }
        b[0] = (s & 1) ? 0x33 : b[0];
        assert_true(decrypt_rc(f, b, n) != SOTTO_OK);
    }
    assert_record_is(f, rec, rec_len);
    free(rec);
    expect_text(f, &good, "the real one");

    uint8_t *pt = NULL;
    size_t pt_len;
    assert_int_equal(sotto_group_decrypt(NULL, &f->alice_name, good.p, good.n, &pt, &pt_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_decrypt(f->bob.sk, NULL, good.p, good.n, &pt, &pt_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_group_decrypt(f->bob.sk, &f->alice_name, good.p, good.n, NULL, &pt_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    free(good.p);
    free(b);
}

/* An SKM missing a field, signed with a key Bob trusts: refused by the parser. */
static void test_missing_fields(void **state)
{
    fixture *f = *state;
    sotto_key_pair signing;
    sotto_sender_key_distribution d = {.key_id = 7, .iteration = 0};
    uint8_t *skdm = NULL;
    size_t skdm_len;
    assert_int_equal(sotto_key_pair_generate(&signing), SOTTO_OK);
    d.signing_key = signing.pub;
    memset(d.chain_key, 0x11, sizeof d.chain_key);
    assert_int_equal(sotto_sender_key_distribution_encode(&d, &skdm, &skdm_len), SOTTO_OK);
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, skdm, skdm_len),
                     SOTTO_OK);
    free(skdm);
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);

    static const uint8_t ct[16] = {0};
    for (int omit = 1; omit <= 3; omit++) {
        uint8_t buf[128];
        sotto_wbuf w;
        sotto_wbuf_init_fixed(&w, buf, sizeof buf);
        sotto_wbuf_put_u8(&w, 0x33);
        if (omit != 1)
            sotto_pb_put_uint(&w, 1, 7);
        if (omit != 2)
            sotto_pb_put_uint(&w, 2, 0);
        if (omit != 3)
            sotto_pb_put_bytes(&w, 3, ct, sizeof ct);
        uint8_t *sig = sotto_wbuf_reserve(&w, 64);
        assert_non_null(sig);
        assert_int_equal(sotto_xeddsa_sign(sig, signing.priv, buf, w.len - 64), SOTTO_OK);
        assert_int_equal(decrypt_rc(f, buf, w.len), SOTTO_ERR_INVALID_MESSAGE);
    }
    /* all present but the ciphertext is not a whole number of blocks: the
     * signature holds, decryption is refused, nothing stored */
    {
        uint8_t buf[128];
        sotto_wbuf w;
        sotto_wbuf_init_fixed(&w, buf, sizeof buf);
        sotto_wbuf_put_u8(&w, 0x33);
        sotto_pb_put_uint(&w, 1, 7);
        sotto_pb_put_uint(&w, 2, 5);
        sotto_pb_put_bytes(&w, 3, ct, 15);
        uint8_t *sig = sotto_wbuf_reserve(&w, 64);
        assert_non_null(sig);
        assert_int_equal(sotto_xeddsa_sign(sig, signing.priv, buf, w.len - 64), SOTTO_OK);
        assert_int_equal(decrypt_rc(f, buf, w.len), SOTTO_ERR_INVALID_MESSAGE);
        /* a wrong key id */
        sotto_wbuf_init_fixed(&w, buf, sizeof buf);
        sotto_wbuf_put_u8(&w, 0x33);
        sotto_pb_put_uint(&w, 1, 8);
        sotto_pb_put_uint(&w, 2, 0);
        sotto_pb_put_bytes(&w, 3, ct, 16);
        sig = sotto_wbuf_reserve(&w, 64);
        assert_int_equal(sotto_xeddsa_sign(sig, signing.priv, buf, w.len - 64), SOTTO_OK);
        assert_int_equal(decrypt_rc(f, buf, w.len), SOTTO_ERR_INVALID_KEY_ID);
        /* bad padding under the right key */
        sotto_wbuf_init_fixed(&w, buf, sizeof buf);
        sotto_wbuf_put_u8(&w, 0x33);
        sotto_pb_put_uint(&w, 1, 7);
        sotto_pb_put_uint(&w, 2, 3);
        sotto_pb_put_bytes(&w, 3, ct, 16);
        sig = sotto_wbuf_reserve(&w, 64);
        assert_int_equal(sotto_xeddsa_sign(sig, signing.priv, buf, w.len - 64), SOTTO_OK);
        /* 16 zero bytes under this fixed chain key decrypt to a block
         * without valid PKCS#7 padding (deterministic: fixed key, fixed IV) */
        assert_int_equal(decrypt_rc(f, buf, w.len), SOTTO_ERR_INVALID_MESSAGE);
    }
    assert_record_is(f, rec, rec_len);
    free(rec);
    sotto_key_pair_wipe(&signing);
}

static void test_hostile_skdm(void **state)
{
    fixture *f = *state;
    uint8_t *skdm = NULL;
    size_t skdm_len;
    distribute(f);
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    /* a fresh, valid SKDM of another key id, mangled */
    sotto_key_pair signing;
    assert_int_equal(sotto_key_pair_generate(&signing), SOTTO_OK);
    sotto_sender_key_distribution d = {.key_id = 99, .iteration = 4};
    d.signing_key = signing.pub;
    memset(d.chain_key, 0x22, 32);
    assert_int_equal(sotto_sender_key_distribution_encode(&d, &skdm, &skdm_len), SOTTO_OK);

    for (size_t cut = 0; cut < skdm_len; cut++) {
        int rc =
            sotto_group_process_distribution(f->bob.sk, &f->alice_name, cut ? skdm : NULL, cut);
        assert_true(rc == SOTTO_ERR_INVALID_MESSAGE || rc == SOTTO_ERR_INVALID_KEY);
    }
    uint8_t *b = malloc(skdm_len);
    memcpy(b, skdm, skdm_len);
    b[0] = 0x13;
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, b, skdm_len),
                     SOTTO_ERR_LEGACY_MESSAGE);
    b[0] = 0x53;
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, b, skdm_len),
                     SOTTO_ERR_UNSUPPORTED_VERSION);
    memcpy(b, skdm, skdm_len);
    b[skdm_len - 33] = 0x06; /* key type byte */
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, b, skdm_len),
                     SOTTO_ERR_INVALID_KEY);
    memcpy(b, skdm, skdm_len);
    b[6] = 0x1f; /* chain key length 31: the rest no longer parses as fields */
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, b, skdm_len),
                     SOTTO_ERR_INVALID_MESSAGE);
    memcpy(b, skdm, skdm_len);
    b[1] = 0x0a; /* field 1 as bytes */
    assert_true(sotto_group_process_distribution(f->bob.sk, &f->alice_name, b, skdm_len) !=
                SOTTO_OK);
    assert_record_is(f, rec, rec_len);

    /* unknown fields are skipped */
    uint8_t ext[200];
    memcpy(ext, skdm, skdm_len);
    ext[skdm_len] = 0x28; /* field 5 varint */
    ext[skdm_len + 1] = 0x01;
    assert_int_equal(sotto_group_process_distribution(f->bob.sk, &f->alice_name, ext, skdm_len + 2),
                     SOTTO_OK);
    size_t now_len;
    uint8_t *now = bob_record(f, &now_len);
    sotto_skr skr;
    assert_int_equal(sotto_skr_decode(&skr, now, now_len), SOTTO_OK);
    assert_int_equal(skr.count, 2);
    assert_int_equal(skr.states[0].key_id, 99);
    assert_int_equal(skr.states[0].iteration, 4);
    sotto_skr_wipe(&skr);
    free(now);
    free(b);
    free(rec);
    free(skdm);
    sotto_key_pair_wipe(&signing);
}

/* The signature is checked against the Edwards y cached in the record. */
static void test_cached_edwards_key_is_used(void **state)
{
    fixture *f = *state;
    distribute(f);
    msg m = encrypt_text(f, "hello");
    size_t rec_len;
    uint8_t *rec = bob_record(f, &rec_len);
    /* record: version, count, key id, iteration, chain key, public key, y */
    const size_t y_off = 2 + 4 + 4 + 32 + 33;
    rec[y_off] ^= 0x01;
    assert_int_equal(f->bob.sk->store(f->bob.sk->user_data, &f->alice_name, rec, rec_len),
                     SOTTO_OK);
    assert_int_equal(decrypt_rc(f, m.p, m.n), SOTTO_ERR_INVALID_SIGNATURE);
    assert_record_is(f, rec, rec_len);
    rec[y_off] ^= 0x01;
    assert_int_equal(f->bob.sk->store(f->bob.sk->user_data, &f->alice_name, rec, rec_len),
                     SOTTO_OK);
    expect_text(f, &m, "hello");
    free(rec);
    free(m.p);
}

/* A stored record that does not decode: SOTTO_ERR_CORRUPT_RECORD, no change. */
static void test_corrupt_stored_record(void **state)
{
    fixture *f = *state;
    distribute(f);
    msg m = encrypt_text(f, "hello");
    static const uint8_t junk[] = {0x01, 0x01, 0x00};
    assert_int_equal(f->bob.sk->store(f->bob.sk->user_data, &f->alice_name, junk, sizeof junk),
                     SOTTO_OK);
    assert_int_equal(decrypt_rc(f, m.p, m.n), SOTTO_ERR_CORRUPT_RECORD);
    assert_record_is(f, junk, sizeof junk);
    uint8_t *out = NULL;
    size_t out_len;
    assert_int_equal(
        sotto_group_encrypt(f->bob.sk, &f->alice_name, (const uint8_t *)"x", 1, &out, &out_len),
        SOTTO_ERR_CORRUPT_RECORD);
    free(m.p);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_basic_encrypt_decrypt),
        T(test_no_session),
        T(test_encrypt_no_session),
        T(test_basic_ratchet),
        T(test_late_join),
        T(test_out_of_order),
        T(test_too_far_in_future),
        T(test_message_key_limit),
        T(test_invalid_signature),
        T(test_receive_only_state_cannot_encrypt),
        T(test_state_cap),
        T(test_skdm_forward_only),
        T(test_skdm_layout),
        T(test_skm_layout),
        T(test_libsignal_vectors_decrypt),
        T(test_libsignal_vectors_encrypt),
        T(test_hostile_messages),
        T(test_missing_fields),
        T(test_hostile_skdm),
        T(test_cached_edwards_key_is_used),
        T(test_corrupt_stored_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
