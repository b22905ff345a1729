/*
 * The sender-key record codec (lib/group/sender_key_record.h): exact layout,
 * round trips, the state and message-key caps, and every kind of corrupt
 * record refused with SOTTO_ERR_CORRUPT_RECORD.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "group/sender_key_record.h"
#include "testutil.h"

static sotto_public_key pub_of(uint8_t b)
{
    sotto_public_key k;
    k.bytes[0] = 0x05;
    memset(k.bytes + 1, b, 32);
    return k;
}

/* Two states: [0] own (private key, no stored keys), [1] received with two
 * stored message keys. */
static void build(sotto_skr *rec)
{
    uint8_t ck[32], seed[32], priv[32];
    sotto_public_key p1 = pub_of(0x11), p2 = pub_of(0x22);
    sotto_skr_init(rec);
    memset(ck, 0xc2, sizeof ck);
    sotto_skr_state *st = sotto_skr_add_state(rec, 0x0a0b0c0d, 7, ck, &p2, NULL);
    memset(seed, 0x53, sizeof seed);
    assert_int_equal(sotto_skr_state_add_mk(st, 2, seed), SOTTO_OK);
    memset(seed, 0x54, sizeof seed);
    assert_int_equal(sotto_skr_state_add_mk(st, 5, seed), SOTTO_OK);
    memset(ck, 0xc1, sizeof ck);
    memset(priv, 0x99, sizeof priv);
    (void)sotto_skr_add_state(rec, 1, 0, ck, &p1, priv);
}

static const char expected_hex[] =
    "01"
    "02" /* format 1, two states */
    "00000001"
    "00000000" /* key id 1, iteration 0 */
    "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"
    "05"
    "1111111111111111111111111111111111111111111111111111111111111111"
    /* Edwards y = (u - 1) / (u + 1) mod 2^255 - 19, computed independently */
    "ecc44eecc44eecc44eecc44eecc44eecc44eecc44eecc44eecc44eecc44eec04"
    "01"
    "9999999999999999999999999999999999999999999999999999999999999999"
    "0000" /* no message keys */
    "0a0b0c0d"
    "00000007"
    "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2"
    "05"
    "2222222222222222222222222222222222222222222222222222222222222222"
    "363ffad18f7ef4a31ffde8473ffad18f7ef4a31ffde8473ffad18f7ef4a31f7d"
    "00" /* no private key */
    "0002"
    "00000002"
    "5353535353535353535353535353535353535353535353535353535353535353"
    "00000005"
    "5454545454545454545454545454545454545454545454545454545454545454";

static void test_layout_and_round_trip(void **state)
{
    (void)state;
    sotto_skr rec, back;
    uint8_t *enc = NULL, *enc2 = NULL;
    size_t enc_len, enc2_len, exp_len;

    build(&rec);
    assert_int_equal(sotto_skr_encode(&rec, &enc, &enc_len), SOTTO_OK);
    uint8_t *exp = tu_unhex(expected_hex, &exp_len);
    assert_int_equal(enc_len, exp_len);
    assert_memory_equal(enc, exp, exp_len);

    assert_int_equal(sotto_skr_decode(&back, enc, enc_len), SOTTO_OK);
    assert_int_equal(back.count, 2);
    assert_int_equal(back.states[0].key_id, 1);
    assert_true(back.states[0].has_private);
    assert_int_equal(back.states[0].signing_priv[0], 0x99);
    assert_int_equal(back.states[1].key_id, 0x0a0b0c0d);
    assert_int_equal(back.states[1].iteration, 7);
    assert_false(back.states[1].has_private);
    assert_int_equal(back.states[1].mk_count, 2);
    assert_int_equal(back.states[1].mks[1].iteration, 5);
    assert_non_null(sotto_skr_find(&back, 0x0a0b0c0d));
    assert_null(sotto_skr_find(&back, 2));

    /* canonical: re-encoding gives the same bytes */
    assert_int_equal(sotto_skr_encode(&back, &enc2, &enc2_len), SOTTO_OK);
    assert_int_equal(enc2_len, enc_len);
    assert_memory_equal(enc2, enc, enc_len);

    /* taking a stored key removes it */
    uint8_t seed[32];
    assert_false(sotto_skr_state_take_mk(&back.states[1], 3, seed));
    assert_true(sotto_skr_state_take_mk(&back.states[1], 5, seed));
    assert_int_equal(seed[0], 0x54);
    assert_false(sotto_skr_state_take_mk(&back.states[1], 5, seed));
    assert_int_equal(back.states[1].mk_count, 1);

    free(exp);
    free(enc);
    free(enc2);
    sotto_skr_wipe(&rec);
    sotto_skr_wipe(&back);
}

static void test_caps(void **state)
{
    (void)state;
    sotto_skr rec;
    uint8_t ck[32] = {0}, seed[32] = {0};
    sotto_public_key p = pub_of(1);

    sotto_skr_init(&rec);
    for (uint32_t i = 0; i < 7; i++)
        (void)sotto_skr_add_state(&rec, 100 + i, 0, ck, &p, NULL);
    assert_int_equal(rec.count, SOTTO_MAX_SENDER_KEY_STATES);
    assert_int_equal(rec.states[0].key_id, 106);
    assert_int_equal(rec.states[4].key_id, 102);
    assert_null(sotto_skr_find(&rec, 101));

    sotto_skr_state *st = &rec.states[0];
    st->iteration = 3000;
    for (uint32_t i = 0; i < 2005; i++) {
        seed[0] = (uint8_t)i;
        assert_int_equal(sotto_skr_state_add_mk(st, i, seed), SOTTO_OK);
    }
    assert_int_equal(st->mk_count, SOTTO_MAX_MESSAGE_KEYS);
    assert_int_equal(st->mks[0].iteration, 5); /* oldest evicted */
    assert_int_equal(sotto_skr_state_add_mk(st, 2004, seed), SOTTO_ERR_INTERNAL); /* order */

    /* room for 10 more: the 10 oldest go at once */
    assert_int_equal(sotto_skr_state_make_room(st, 10), SOTTO_OK);
    assert_int_equal(st->mk_count, SOTTO_MAX_MESSAGE_KEYS - 10);
    assert_int_equal(st->mks[0].iteration, 15);

    /* promote and remove keep the other states intact */
    sotto_skr_promote(&rec, 3);
    assert_int_equal(rec.states[0].key_id, 103);
    assert_int_equal(rec.states[1].key_id, 106);
    assert_int_equal(rec.states[1].mk_count, SOTTO_MAX_MESSAGE_KEYS - 10);
    sotto_skr_remove(&rec, 0);
    assert_int_equal(rec.count, 4);
    assert_int_equal(rec.states[0].key_id, 106);

    uint8_t *enc = NULL;
    size_t enc_len;
    sotto_skr back;
    assert_int_equal(sotto_skr_encode(&rec, &enc, &enc_len), SOTTO_OK);
    assert_int_equal(sotto_skr_decode(&back, enc, enc_len), SOTTO_OK);
    assert_int_equal(back.states[0].mk_count, SOTTO_MAX_MESSAGE_KEYS - 10);
    assert_int_equal(back.states[0].mks[back.states[0].mk_count - 1].iteration, 2004);
    sotto_skr_wipe(&back);
    free(enc);
    sotto_skr_wipe(&rec);
}

static int decode_rc(const uint8_t *p, size_t n)
{
    sotto_skr rec;
    int rc = sotto_skr_decode(&rec, p, n);
    if (rc != SOTTO_OK)
        assert_int_equal(rec.count, 0); /* left empty */
    sotto_skr_wipe(&rec);
    return rc;
}

static void test_corrupt(void **state)
{
    (void)state;
    size_t n;
    uint8_t *good = tu_unhex(expected_hex, &n);
    uint8_t *b = malloc(n + 1);
    assert_non_null(b);

    assert_int_equal(decode_rc(good, n), SOTTO_OK);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(decode_rc(good, cut), SOTTO_ERR_CORRUPT_RECORD);
    assert_int_equal(decode_rc(NULL, 0), SOTTO_ERR_CORRUPT_RECORD);

#define MUTATE(off, val)                                                                           \
    do {                                                                                           \
        memcpy(b, good, n);                                                                        \
        b[(off)] = (val);                                                                          \
        assert_int_equal(decode_rc(b, n), SOTTO_ERR_CORRUPT_RECORD);                               \
    } while (0)
    const size_t s0 = 2, s1 = 2 + 4 + 4 + 32 + 33 + 32 + 1 + 32 + 2;
    MUTATE(0, 0x02); /* unknown format version */
    MUTATE(0, 0x00);
    MUTATE(1, 0x06);            /* six states */
    MUTATE(1, 0x03);            /* three announced, two present */
    MUTATE(s0 + 40, 0x06);      /* key type byte */
    MUTATE(s0 + 73 + 31, 0x84); /* cached Edwards y with bit 255 set */
    MUTATE(s0 + 105, 0x02);     /* private-key flag */
    MUTATE(s1 + 105, 0x01);     /* flag says private key: rest misparses */
    MUTATE(s1 + 107, 0x03);     /* three message keys, two present */
    memcpy(b, good, n);         /* 2001 message keys */
    b[s1 + 106] = 0x07;
    b[s1 + 107] = 0xd1;
    assert_int_equal(decode_rc(b, n), SOTTO_ERR_CORRUPT_RECORD);
    MUTATE(s1 + 108 + 3, 0x07);      /* stored key at the chain's iteration */
    MUTATE(s1 + 108 + 3, 0x09);      /* ... or ahead of it */
    MUTATE(s1 + 108 + 36 + 3, 0x02); /* not ascending: 2, 2 */
    MUTATE(s1 + 108 + 36 + 3, 0x01); /* not ascending: 2, 1 */
    MUTATE(s1 + 7, 0x00);            /* iteration 7 -> 0: keys now ahead */
#undef MUTATE
    memcpy(b, good, n);
    b[n] = 0x00; /* trailing byte */
    assert_int_equal(decode_rc(b, n + 1), SOTTO_ERR_CORRUPT_RECORD);

    /* an empty record is valid */
    static const uint8_t empty[] = {0x01, 0x00};
    assert_int_equal(decode_rc(empty, sizeof empty), SOTTO_OK);
    free(b);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_round_trip),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
