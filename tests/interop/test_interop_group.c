/*
 * tests/interop/test_interop_group.c -- Sender Keys between libsotto and
 * libsignal-protocol-c 2.3.3 (spec sections 1.5, 1.6, 2.7 and the group
 * list of section 7): basic, out of order, duplicates, late join, the
 * 2000 forward-jump limit and tampering, with each library as the sender.
 *
 * The SKDM would travel over a 1:1 session; here the harness carries it
 * directly (the 1:1 path is covered by test_interop_session).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "harness.h"
#include "sotto/group.h"
#include "testutil.h"

#define GROUP_ID "interop-group"

typedef struct fx {
    ih_peer *p;
    ih_party *u;
    char *gid_hex;
    sotto_sender_key_name peer_name; /* the peer's sender key, as we know it */
    sotto_sender_key_name our_name;  /* our own sender key */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->p = ih_peer_start("peer");
    f->u = ih_party_new();
    f->gid_hex = tu_hex((const uint8_t *)GROUP_ID, strlen(GROUP_ID));
    f->peer_name.group_id = (const uint8_t *)GROUP_ID;
    f->peer_name.group_id_len = strlen(GROUP_ID);
    f->peer_name.sender = ih_addr("peer");
    f->our_name = f->peer_name;
    f->our_name.sender = ih_addr(IH_US_NAME);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    ih_peer_stop(f->p);
    ih_party_free(f->u);
    free(f->gid_hex);
    free(f);
    return 0;
}

static const sotto_sender_key_store *sks(fx *f)
{
    return &f->u->st->sender_key;
}

/* ---- messages ---- */

static ih_msg peer_group_encrypt(fx *f, const char *text)
{
    ih_msg m;
    char *hex = strlen(text) ? tu_hex((const uint8_t *)text, strlen(text)) : strdup("-");

    memset(&m, 0, sizeof(m));
    assert_true(strlen(text) < sizeof(m.text));
    snprintf(m.text, sizeof(m.text), "%s", text);
    ih_peer_ok(f->p, "group_encrypt %s peer 1 %s", f->gid_hex, hex);
    free(hex);
    assert_int_equal(f->p->ntok, 2);
    m.type = SOTTO_MSG_SENDERKEY;
    m.hex = strdup(f->p->tok[1]);
    m.bytes = tu_unhex(m.hex, &m.len);
    return m;
}

static ih_msg us_group_encrypt(fx *f, const char *text)
{
    ih_msg m;
    uint8_t *ct = NULL;
    size_t ct_len = 0;

    memset(&m, 0, sizeof(m));
    assert_true(strlen(text) < sizeof(m.text));
    snprintf(m.text, sizeof(m.text), "%s", text);
    assert_int_equal(sotto_group_encrypt(sks(f), &f->our_name, (const uint8_t *)text, strlen(text),
                                         &ct, &ct_len),
                     SOTTO_OK);
    m.type = SOTTO_MSG_SENDERKEY;
    m.bytes = ct;
    m.len = ct_len;
    m.hex = tu_hex(ct, ct_len);
    return m;
}

static int us_group_decrypt_try(fx *f, const ih_msg *m)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    int rc = sotto_group_decrypt(sks(f), &f->peer_name, m->bytes, m->len, &pt, &pt_len);

    if (rc == SOTTO_OK) {
        assert_int_equal(pt_len, strlen(m->text));
        assert_memory_equal(pt, m->text, pt_len);
        sodium_memzero(pt, pt_len);
    } else {
        assert_null(pt);
    }
    free(pt);
    return rc;
}

static void us_group_decrypt_ok(fx *f, const ih_msg *m)
{
    int rc = us_group_decrypt_try(f, m);

    if (rc != SOTTO_OK)
        fail_msg("libsotto group decrypt of '%s': %s", m->text, sotto_strerror(rc));
}

static void peer_group_decrypt_ok(fx *f, const ih_msg *m)
{
    char *want = strlen(m->text) ? tu_hex((const uint8_t *)m->text, strlen(m->text)) : strdup("-");

    ih_peer_ok(f->p, "group_decrypt %s %s 1 %s", f->gid_hex, IH_US_NAME, m->hex);
    assert_int_equal(f->p->ntok, 2);
    assert_string_equal(f->p->tok[1], want);
    free(want);
}

static void peer_group_decrypt_err(fx *f, const ih_msg *m, const char *name)
{
    ih_peer_err(f->p, name, "group_decrypt %s %s 1 %s", f->gid_hex, IH_US_NAME, m->hex);
}

/* The peer creates (or re-sends) its SKDM; libsotto processes it. */
static void peer_distributes(fx *f)
{
    uint8_t *skdm;
    size_t len = 0;

    ih_peer_ok(f->p, "group_create %s peer 1", f->gid_hex);
    skdm = tu_unhex(f->p->tok[1], &len);
    assert_int_equal(sotto_group_process_distribution(sks(f), &f->peer_name, skdm, len), SOTTO_OK);
    sodium_memzero(skdm, len);
    free(skdm);
}

/* libsotto creates (or re-sends) its SKDM; the peer processes it. */
static void we_distribute(fx *f)
{
    uint8_t *skdm = NULL;
    size_t len = 0;
    char *hex;

    assert_int_equal(sotto_group_create_distribution(sks(f), &f->our_name, &skdm, &len), SOTTO_OK);
    assert_int_equal(skdm[0], 0x33);
    hex = tu_hex(skdm, len);
    ih_peer_ok(f->p, "group_process %s %s 1 %s", f->gid_hex, IH_US_NAME, hex);
    sodium_memzero(skdm, len);
    free(skdm);
    free(hex);
}

static uint8_t *our_record(fx *f, size_t *len)
{
    uint8_t *rec = NULL;

    assert_int_equal(sks(f)->load(sks(f)->user_data, &f->peer_name, &rec, len), SOTTO_OK);
    return rec;
}

/* ---- tests ---- */

static void test_peer_sends(void **state)
{
    fx *f = *state;
    ih_msg m[20], bad_sig, bad_body;
    size_t idx[20], l0 = 0, l1 = 0;
    uint8_t *r0, *r1;
    char text[64];

    /* No SKDM received yet: NO_SESSION. */
    ih_peer_ok(f->p, "group_create %s peer 1", f->gid_hex);
    m[0] = peer_group_encrypt(f, "before distribution");
    assert_int_equal(us_group_decrypt_try(f, &m[0]), SOTTO_ERR_NO_SESSION);
    ih_msg_free(&m[0]);

    peer_distributes(f);
    for (int i = 0; i < 20; i++) {
        snprintf(text, sizeof(text), "group message %d", i);
        m[i] = peer_group_encrypt(f, i == 7 ? "" : text);
    }
    us_group_decrypt_ok(f, &m[0]);
    ih_shuffle(idx, 19, 5);
    for (int i = 0; i < 19; i++)
        us_group_decrypt_ok(f, &m[idx[i] + 1]); /* out of order */
    for (int i = 0; i < 20; i += 3)
        assert_int_equal(us_group_decrypt_try(f, &m[i]), SOTTO_ERR_DUPLICATE_MESSAGE);

    /* Tampering: a signature bit and a ciphertext bit; nothing stored. */
    ih_msg_free(&m[0]);
    m[0] = peer_group_encrypt(f, "genuine");
    bad_sig = ih_msg_tampered(&m[0], -5, 0x10);
    bad_body = ih_msg_tampered(&m[0], (long)m[0].len - 64 - 3, 0x01);
    r0 = our_record(f, &l0);
    assert_int_equal(us_group_decrypt_try(f, &bad_sig), SOTTO_ERR_INVALID_SIGNATURE);
    assert_int_equal(us_group_decrypt_try(f, &bad_body), SOTTO_ERR_INVALID_SIGNATURE);
    r1 = our_record(f, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(r0, r1, l0);
    us_group_decrypt_ok(f, &m[0]);
    free(r0);
    free(r1);
    ih_msg_free(&bad_sig);
    ih_msg_free(&bad_body);
    for (int i = 0; i < 20; i++)
        ih_msg_free(&m[i]);
}

static void test_sotto_sends(void **state)
{
    fx *f = *state;
    ih_msg m[20], bad_sig, bad_body;
    size_t idx[20];
    char text[64];

    we_distribute(f);
    for (int i = 0; i < 20; i++) {
        snprintf(text, sizeof(text), "our group message %d", i);
        m[i] = us_group_encrypt(f, i == 4 ? "" : text);
    }
    ih_shuffle(idx, 20, 9);
    for (int i = 0; i < 20; i++)
        peer_group_decrypt_ok(f, &m[idx[i]]);
    for (int i = 0; i < 20; i += 3)
        peer_group_decrypt_err(f, &m[i], "DUPLICATE");

    ih_msg_free(&m[0]);
    m[0] = us_group_encrypt(f, "genuine");
    bad_sig = ih_msg_tampered(&m[0], -5, 0x10);
    bad_body = ih_msg_tampered(&m[0], (long)m[0].len - 64 - 3, 0x01);
    peer_group_decrypt_err(f, &bad_sig, "INVALID_MESSAGE");
    peer_group_decrypt_err(f, &bad_body, "INVALID_MESSAGE");
    peer_group_decrypt_ok(f, &m[0]);
    ih_msg_free(&bad_sig);
    ih_msg_free(&bad_body);
    for (int i = 0; i < 20; i++)
        ih_msg_free(&m[i]);
}

/* A member joins after 100 messages: the new SKDM carries the current
 * iteration; it reads what follows, not what came before. */
static void test_late_join_sotto_receives(void **state)
{
    fx *f = *state;
    ih_msg early[100], next;
    char text[64];

    ih_peer_ok(f->p, "group_create %s peer 1", f->gid_hex); /* SKDM not for us */
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "before you joined %d", i);
        early[i] = peer_group_encrypt(f, text);
    }
    peer_distributes(f);
    next = peer_group_encrypt(f, "welcome");
    us_group_decrypt_ok(f, &next);
    assert_int_equal(us_group_decrypt_try(f, &early[99]), SOTTO_ERR_DUPLICATE_MESSAGE);
    assert_int_equal(us_group_decrypt_try(f, &early[0]), SOTTO_ERR_DUPLICATE_MESSAGE);
    ih_msg_free(&next);
    for (int i = 0; i < 100; i++)
        ih_msg_free(&early[i]);
}

static void test_late_join_peer_receives(void **state)
{
    fx *f = *state;
    ih_msg early[100], next;
    uint8_t *skdm = NULL;
    size_t len = 0;
    char text[64];

    assert_int_equal(sotto_group_create_distribution(sks(f), &f->our_name, &skdm, &len), SOTTO_OK);
    free(skdm);
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "before you joined %d", i);
        early[i] = us_group_encrypt(f, text);
    }
    we_distribute(f);
    next = us_group_encrypt(f, "welcome");
    peer_group_decrypt_ok(f, &next);
    peer_group_decrypt_err(f, &early[99], "DUPLICATE");
    peer_group_decrypt_err(f, &early[0], "DUPLICATE");
    ih_msg_free(&next);
    for (int i = 0; i < 100; i++)
        ih_msg_free(&early[i]);
}

static void test_forward_jump_sotto_receives(void **state)
{
    fx *f = *state;
    enum { N = 2002 };
    ih_msg *m = calloc(N, sizeof(*m));
    char text[64];

    assert_non_null(m);
    peer_distributes(f);
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "g%d", i);
        m[i] = peer_group_encrypt(f, text);
    }
    assert_int_equal(us_group_decrypt_try(f, &m[2001]), SOTTO_ERR_TOO_FAR_AHEAD);
    us_group_decrypt_ok(f, &m[2000]);
    us_group_decrypt_ok(f, &m[0]);
    us_group_decrypt_ok(f, &m[1999]);
    us_group_decrypt_ok(f, &m[2001]);
    assert_int_equal(us_group_decrypt_try(f, &m[2000]), SOTTO_ERR_DUPLICATE_MESSAGE);
    for (int i = 0; i < N; i++)
        ih_msg_free(&m[i]);
    free(m);
}

static void test_forward_jump_peer_receives(void **state)
{
    fx *f = *state;
    enum { N = 2002 };
    ih_msg *m = calloc(N, sizeof(*m));
    char text[64];

    assert_non_null(m);
    we_distribute(f);
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "g%d", i);
        m[i] = us_group_encrypt(f, text);
    }
    peer_group_decrypt_err(f, &m[2001], "INVALID_MESSAGE");
    peer_group_decrypt_ok(f, &m[2000]);
    peer_group_decrypt_ok(f, &m[0]);
    peer_group_decrypt_ok(f, &m[1999]);
    peer_group_decrypt_ok(f, &m[2001]);
    peer_group_decrypt_err(f, &m[2000], "DUPLICATE");
    for (int i = 0; i < N; i++)
        ih_msg_free(&m[i]);
    free(m);
}

/* Both send in one group, interleaved. */
static void test_both_send(void **state)
{
    fx *f = *state;
    char text[64];

    peer_distributes(f);
    we_distribute(f);
    for (int i = 0; i < 10; i++) {
        ih_msg a, b;
        snprintf(text, sizeof(text), "from libsignal %d", i);
        a = peer_group_encrypt(f, text);
        snprintf(text, sizeof(text), "from sotto %d", i);
        b = us_group_encrypt(f, text);
        us_group_decrypt_ok(f, &a);
        peer_group_decrypt_ok(f, &b);
        ih_msg_free(&a);
        ih_msg_free(&b);
    }
}

/* We rotate our sender key (e.g. a member left): the peer keeps the old
 * state for messages in flight and uses the new one from then on. */
static void test_rotation(void **state)
{
    fx *f = *state;
    ih_msg old_key, new_key;
    uint8_t *skdm = NULL;
    size_t len = 0;
    char *hex;

    we_distribute(f);
    old_key = us_group_encrypt(f, "sent with the old key");
    assert_int_equal(sotto_group_rotate(sks(f), &f->our_name, &skdm, &len), SOTTO_OK);
    hex = tu_hex(skdm, len);
    ih_peer_ok(f->p, "group_process %s %s 1 %s", f->gid_hex, IH_US_NAME, hex);
    new_key = us_group_encrypt(f, "sent with the new key");
    peer_group_decrypt_ok(f, &new_key);
    peer_group_decrypt_ok(f, &old_key);
    peer_group_decrypt_err(f, &old_key, "DUPLICATE");
    sodium_memzero(skdm, len);
    free(skdm);
    free(hex);
    ih_msg_free(&old_key);
    ih_msg_free(&new_key);
}

/* A member that only has the newest key gets a message under an older
 * key id: libsignal-protocol-c reports an unknown key id as
 * INVALID_MESSAGE (libsotto's own code for it is SOTTO_ERR_INVALID_KEY_ID). */
static void test_unknown_key_id(void **state)
{
    fx *f = *state;
    ih_msg old_key, m;
    uint8_t *skdm = NULL;
    size_t len = 0;

    /* libsotto sends: the peer only got the SKDM after the rotation. */
    assert_int_equal(sotto_group_create_distribution(sks(f), &f->our_name, &skdm, &len), SOTTO_OK);
    free(skdm);
    old_key = us_group_encrypt(f, "old key");
    assert_int_equal(sotto_group_rotate(sks(f), &f->our_name, &skdm, &len), SOTTO_OK);
    free(skdm);
    we_distribute(f);
    m = us_group_encrypt(f, "new key");
    peer_group_decrypt_ok(f, &m);
    peer_group_decrypt_err(f, &old_key, "INVALID_MESSAGE");
    ih_msg_free(&old_key);
    ih_msg_free(&m);

    /* libsotto receives: the peer's key for another group (another key id)
     * arrives under this group's name. */
    peer_distributes(f);
    {
        char *other = tu_hex((const uint8_t *)"another-group", 13);
        ih_peer_ok(f->p, "group_create %s peer 1", other);
        ih_peer_ok(f->p, "group_encrypt %s peer 1 %s", other, "6f74686572");
        m.type = SOTTO_MSG_SENDERKEY;
        snprintf(m.text, sizeof(m.text), "other");
        m.hex = strdup(f->p->tok[1]);
        m.bytes = tu_unhex(m.hex, &m.len);
        assert_int_equal(us_group_decrypt_try(f, &m), SOTTO_ERR_INVALID_KEY_ID);
        ih_msg_free(&m);
        free(other);
    }
    m = peer_group_encrypt(f, "this group");
    us_group_decrypt_ok(f, &m);
    ih_msg_free(&m);
}

/* SKDM and SKM: the same fields in the same order as libsignal-protocol-c
 * writes them, iteration 0 included (spec 1.5, 1.6). Lengths are not
 * compared: the random key ids have varints of different lengths. */
static void test_wire_layout(void **state)
{
    fx *f = *state;
    static const uint32_t want_skdm[] = {1 << 3, 2 << 3, 3 << 3 | 2, 4 << 3 | 2};
    static const uint32_t want_skm[] = {1 << 3, 2 << 3, 3 << 3 | 2};
    uint32_t k1[8], k2[8];
    size_t n1, n2, l1 = 0;
    uint8_t *theirs, *ours = NULL;
    size_t l2 = 0;
    ih_msg a, b;

    ih_peer_ok(f->p, "group_create %s peer 1", f->gid_hex);
    theirs = tu_unhex(f->p->tok[1], &l1);
    assert_int_equal(sotto_group_create_distribution(sks(f), &f->our_name, &ours, &l2), SOTTO_OK);
    assert_int_equal(theirs[0], 0x33);
    assert_int_equal(ours[0], 0x33);
    n1 = ih_pb_keys(theirs + 1, l1 - 1, k1, 8, 0, NULL, NULL);
    n2 = ih_pb_keys(ours + 1, l2 - 1, k2, 8, 0, NULL, NULL);
    assert_int_equal(n1, 4);
    assert_memory_equal(k1, want_skdm, sizeof(want_skdm));
    assert_int_equal(n2, 4);
    assert_memory_equal(k2, want_skdm, sizeof(want_skdm));
    sodium_memzero(ours, l2);
    sodium_memzero(theirs, l1);
    free(ours);
    free(theirs);

    a = peer_group_encrypt(f, "same length");
    b = us_group_encrypt(f, "same length");
    n1 = ih_pb_keys(a.bytes + 1, a.len - 1 - 64, k1, 8, 0, NULL, NULL);
    n2 = ih_pb_keys(b.bytes + 1, b.len - 1 - 64, k2, 8, 0, NULL, NULL);
    assert_int_equal(n1, 3);
    assert_memory_equal(k1, want_skm, sizeof(want_skm));
    assert_int_equal(n2, 3);
    assert_memory_equal(k2, want_skm, sizeof(want_skm));
    ih_msg_free(&a);
    ih_msg_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_peer_sends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sotto_sends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_join_sotto_receives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_join_peer_receives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_jump_sotto_receives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_jump_peer_receives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_both_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_id, setup, teardown),
    };

    return cmocka_run_group_tests_name("interop_group", tests, NULL, NULL);
}
