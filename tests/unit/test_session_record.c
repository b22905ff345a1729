/*
 * The session record format (docs/protocol.md "Session record format"):
 * round trips of real records, canonical encoding, caps, the size limit,
 * and hostile records (every truncation, bit flips, counts over the caps).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/session_record.h"
#include "test_session_store_helper.h"

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n > 0 ? n : 1);
    assert_non_null(d);
    memcpy(d, p, n);
    return d;
}

/* decode(bytes) then encode must give the same bytes (lazy and full). */
static void assert_roundtrip(const uint8_t *raw, size_t len)
{
    for (int full = 0; full < 2; full++) {
        sotto_session_record rec;
        uint8_t *out = NULL;
        size_t out_len = 0;
        sotto_session_record_init(&rec);
        assert_int_equal(sotto_session_record_decode(&rec, dup_bytes(raw, len), len, full),
                         SOTTO_OK);
        assert_int_equal(sotto_session_record_encode(&rec, &out, &out_len), SOTTO_OK);
        assert_int_equal(out_len, len);
        assert_memory_equal(out, raw, len);
        free(out);
        /* The same bytes through a caller's scratch buffer: used when the
         * record fits (exactly or with room), else a malloc()ed copy. */
        {
            uint8_t *scratch = malloc(len + 8);
            size_t caps[3] = {len, len + 8, len - 1};
            assert_non_null(scratch);
            for (int k = 0; k < 3; k++) {
                out = NULL;
                out_len = 0;
                assert_int_equal(
                    sotto_session_record_encode_buf(&rec, scratch, caps[k], &out, &out_len),
                    SOTTO_OK);
                assert_int_equal(out_len, len);
                assert_memory_equal(out, raw, len);
                if (k < 2) {
                    assert_ptr_equal(out, scratch);
                } else {
                    assert_ptr_not_equal(out, scratch);
                    free(out);
                }
            }
            free(scratch);
        }
        sotto_session_record_clear(&rec);
    }
    assert_int_equal(sotto_session_record_validate(raw, len), SOTTO_OK);
}

/* A record with an archive, several chains and skipped keys, made by use. */
static uint8_t *real_record(size_t *len)
{
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    for (int reset = 0; reset < 3; reset++) {
        party_start(&a, &b, reset != 1);
        wire_msg m = party_encrypt(&a, &b, "hi");
        assert_int_equal(party_decrypt(&b, &a, &m, "hi"), SOTTO_OK);
        wire_free(&m);
        for (int turn = 0; turn < 3; turn++) {
            wire_msg skipped = party_encrypt(&b, &a, "skip me");
            wire_msg r = party_encrypt(&b, &a, "reply");
            assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
            wire_free(&skipped);
            wire_free(&r);
            m = party_encrypt(&a, &b, "again");
            assert_int_equal(party_decrypt(&b, &a, &m, "again"), SOTTO_OK);
            wire_free(&m);
        }
    }
    uint8_t *raw = party_record(&a, &b, len);
    assert_non_null(raw);
    party_free(&a);
    party_free(&b);
    return raw;
}

static void test_real_record_roundtrip(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw = real_record(&len);
    assert_int_equal(raw[0], SOTTO_SESSION_RECORD_FORMAT_VERSION);
    assert_roundtrip(raw, len);

    sotto_session_record rec;
    sotto_session_record_init(&rec);
    assert_int_equal(sotto_session_record_decode(&rec, dup_bytes(raw, len), len, true), SOTTO_OK);
    assert_true(rec.has_current);
    assert_int_equal(rec.n_archived, 2);
    assert_int_equal(rec.current.n_recv, 4);
    assert_true(rec.current.has_sender_chain);
    assert_false(rec.current.pending_prekey);
    /* Each of Bob's 3 reply chains left one skipped key at Alice. */
    assert_int_equal(rec.current.recv[1].n_skipped, 1);
    assert_int_equal(rec.current.recv[1].skipped[0].counter, 0);
    assert_int_equal(rec.current.recv[1].index, 2);
    /* The middle reset had no one-time prekey; both archived are parsed. */
    assert_non_null(rec.archived[0].state);
    assert_non_null(rec.archived[1].state);
    sotto_session_record_clear(&rec);

    /* Promotion keeps everything encodable. */
    sotto_session_record_init(&rec);
    assert_int_equal(sotto_session_record_decode(&rec, dup_bytes(raw, len), len, false), SOTTO_OK);
    assert_null(rec.archived[1].state);
    assert_int_equal(sotto_session_record_parse_archived(&rec, 1), SOTTO_OK);
    sotto_public_key cur_base = rec.current.alice_base_key;
    sotto_public_key old_base = rec.archived[1].state->alice_base_key;
    sotto_session_record_promote_archived(&rec, 1);
    assert_memory_equal(rec.current.alice_base_key.bytes, old_base.bytes, 33);
    assert_memory_equal(rec.archived[0].state->alice_base_key.bytes, cur_base.bytes, 33);
    assert_int_equal(rec.n_archived, 2);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(sotto_session_record_encode(&rec, &out, &out_len), SOTTO_OK);
    assert_int_equal(out_len, len);
    assert_memory_not_equal(out, raw, len);
    assert_roundtrip(out, out_len);
    free(out);
    sotto_session_record_clear(&rec);
    free(raw);
}

static void test_hostile_records(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw = real_record(&len);

    /* Every truncation, and a trailing byte. */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(sotto_session_record_validate(raw, cut), SOTTO_ERR_CORRUPT_RECORD);
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, raw, len);
    longer[len] = 0;
    assert_int_equal(sotto_session_record_validate(longer, len + 1), SOTTO_ERR_CORRUPT_RECORD);
    free(longer);
    assert_int_equal(sotto_session_record_validate(NULL, 0), SOTTO_ERR_CORRUPT_RECORD);

    /* Every single bit flip: either rejected, or accepted and canonical
     * (re-encodes to exactly the flipped bytes). Flips of key material are
     * accepted; flips of structure are not. */
    size_t rejected = 0;
    for (size_t i = 0; i < len * 8; i++) {
        raw[i / 8] ^= (uint8_t)(1u << (i % 8));
        if (sotto_session_record_validate(raw, len) == SOTTO_OK)
            assert_roundtrip(raw, len);
        else
            rejected++;
        raw[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    assert_true(rejected > 100);
    /* Record format version. */
    raw[0] = 2;
    assert_int_equal(sotto_session_record_validate(raw, len), SOTTO_ERR_CORRUPT_RECORD);
    raw[0] = 1;
    /* Unknown record flag. */
    raw[1] |= 0x02;
    assert_int_equal(sotto_session_record_validate(raw, len), SOTTO_ERR_CORRUPT_RECORD);
    raw[1] &= (uint8_t)~0x02;
    /* State: session version, unknown flag, prekey-id flag without pending. */
    raw[6] = 2;
    assert_int_equal(sotto_session_record_validate(raw, len), SOTTO_ERR_CORRUPT_RECORD);
    raw[6] = 3;
    raw[7] |= 0x10;
    assert_int_equal(sotto_session_record_validate(raw, len), SOTTO_ERR_CORRUPT_RECORD);
    raw[7] &= (uint8_t)~0x10;
    assert_int_equal(raw[7] & 0x02, 0); /* not pending: Alice got replies */
    raw[7] |= 0x04;
    assert_int_equal(sotto_session_record_validate(raw, len), SOTTO_ERR_CORRUPT_RECORD);
    raw[7] &= (uint8_t)~0x04;
    /* A public key without its 0x05 type byte (local identity). */
    raw[8] = 0x06;
    assert_int_equal(sotto_session_record_validate(raw, len), SOTTO_ERR_CORRUPT_RECORD);
    raw[8] = 0x05;
    assert_int_equal(sotto_session_record_validate(raw, len), SOTTO_OK);
    free(raw);
}

/* A synthetic state with given numbers of chains and skipped keys. */
static void fill_state(sotto_session_state *st, uint32_t chains, uint32_t skipped)
{
    memset(st, 0, sizeof *st);
    st->local_identity.bytes[0] = 0x05;
    st->remote_identity.bytes[0] = 0x05;
    st->has_sender_chain = true;
    st->sender_ratchet.pub.bytes[0] = 0x05;
    st->has_alice_base_key = true;
    st->alice_base_key.bytes[0] = 0x05;
    st->n_recv = chains;
    for (uint32_t c = 0; c < chains; c++) {
        sotto_recv_chain *rc = &st->recv[c];
        rc->their_ratchet.bytes[0] = 0x05;
        rc->their_ratchet.bytes[1] = (uint8_t)c;
        rc->index = skipped + 1;
        if (skipped > 0) {
            rc->skipped = calloc(skipped, sizeof *rc->skipped);
            assert_non_null(rc->skipped);
            rc->cap_skipped = rc->n_skipped = skipped;
            for (uint32_t k = 0; k < skipped; k++)
                rc->skipped[k].counter = k;
        }
    }
}

/* Offsets inside a record holding one synthetic current state (no pending). */
enum {
    OFF_STATE = 6,
    OFF_NRECV = OFF_STATE + 112 + 101 + 33,
    OFF_CHAIN0 = OFF_NRECV + 1,
    OFF_NSKIP0 = OFF_CHAIN0 + 33 + 32 + 4,
    OFF_SKIP0 = OFF_NSKIP0 + 2,
};

static void test_record_caps(void **state)
{
    (void)state;
    sotto_session_record rec;
    sotto_session_state st;
    uint8_t *out = NULL;
    size_t len = 0;

    sotto_session_record_init(&rec);
    fill_state(&st, 5, SOTTO_MAX_MESSAGE_KEYS);
    assert_int_equal(sotto_session_record_promote_new(&rec, &st), SOTTO_OK);
    assert_int_equal(sotto_session_record_encode(&rec, &out, &len), SOTTO_OK);
    sotto_session_record_clear(&rec);
    assert_int_equal(out[OFF_NRECV], 5);
    assert_int_equal(out[OFF_NSKIP0], SOTTO_MAX_MESSAGE_KEYS >> 8);
    assert_int_equal(out[OFF_NSKIP0 + 1], SOTTO_MAX_MESSAGE_KEYS & 0xff);
    assert_roundtrip(out, len);
    /* Six chains, 2001 skipped keys: over the caps. */
    out[OFF_NRECV] = 6;
    assert_int_equal(sotto_session_record_validate(out, len), SOTTO_ERR_CORRUPT_RECORD);
    out[OFF_NRECV] = 5;
    out[OFF_NSKIP0 + 1]++;
    assert_int_equal(sotto_session_record_validate(out, len), SOTTO_ERR_CORRUPT_RECORD);
    out[OFF_NSKIP0 + 1]--;
    /* A skipped counter at or past the chain index (2001). */
    out[OFF_SKIP0 + 2] = 0x07;
    out[OFF_SKIP0 + 3] = 0xd1;
    assert_int_equal(sotto_session_record_validate(out, len), SOTTO_ERR_CORRUPT_RECORD);
    out[OFF_SKIP0 + 3] = 0xd0; /* 2000 < 2001: fine */
    assert_int_equal(sotto_session_record_validate(out, len), SOTTO_OK);
    /* A lying length prefix of the current state. */
    out[5]++;
    assert_int_equal(sotto_session_record_validate(out, len), SOTTO_ERR_CORRUPT_RECORD);
    out[5] -= 2;
    assert_int_equal(sotto_session_record_validate(out, len), SOTTO_ERR_CORRUPT_RECORD);
    free(out);

    /* 41 archived states: over the cap; and promote_new keeps 40. */
    sotto_session_record_init(&rec);
    for (int i = 0; i < SOTTO_MAX_ARCHIVED_STATES + 5; i++) {
        fill_state(&st, 1, 0);
        st.root_key[0] = (uint8_t)i;
        assert_int_equal(sotto_session_record_promote_new(&rec, &st), SOTTO_OK);
    }
    assert_int_equal(rec.n_archived, SOTTO_MAX_ARCHIVED_STATES);
    assert_int_equal(rec.current.root_key[0], SOTTO_MAX_ARCHIVED_STATES + 4);
    assert_int_equal(rec.archived[0].state->root_key[0], SOTTO_MAX_ARCHIVED_STATES + 3);
    assert_int_equal(rec.archived[39].state->root_key[0], 4);
    assert_int_equal(sotto_session_record_encode(&rec, &out, &len), SOTTO_OK);
    sotto_session_record_clear(&rec);
    assert_roundtrip(out, len);
    size_t cur = (size_t)out[2] << 24 | (size_t)out[3] << 16 | (size_t)out[4] << 8 | out[5];
    assert_int_equal(out[6 + cur], SOTTO_MAX_ARCHIVED_STATES);
    out[6 + cur] = SOTTO_MAX_ARCHIVED_STATES + 1;
    assert_int_equal(sotto_session_record_validate(out, len), SOTTO_ERR_CORRUPT_RECORD);
    free(out);
}

/* States that cannot all fit in SOTTO_MAX_RECORD_BYTES: the oldest
 * archived ones are dropped, the record stays valid. */
static void test_record_size_limit(void **state)
{
    (void)state;
    sotto_session_record rec;
    sotto_session_state st;
    uint8_t *out = NULL;
    size_t len = 0;
    sotto_session_record_init(&rec);
    for (int i = 0; i < 12; i++) {
        fill_state(&st, 5, SOTTO_MAX_MESSAGE_KEYS); /* ~360 KB each */
        st.root_key[0] = (uint8_t)i;
        assert_int_equal(sotto_session_record_promote_new(&rec, &st), SOTTO_OK);
    }
    assert_int_equal(rec.n_archived, 11);
    assert_int_equal(sotto_session_record_encode(&rec, &out, &len), SOTTO_OK);
    sotto_session_record_clear(&rec);
    assert_true(len <= SOTTO_MAX_RECORD_BYTES);
    sotto_session_record_init(&rec);
    assert_int_equal(sotto_session_record_decode(&rec, out, len, true), SOTTO_OK);
    assert_true(rec.n_archived < 11);
    assert_true(rec.n_archived >= 9);
    assert_int_equal(rec.current.root_key[0], 11);
    /* The most recent archived states are the ones kept. */
    assert_int_equal(rec.archived[0].state->root_key[0], 10);
    sotto_session_record_clear(&rec);
}

/* A corrupt stored record gives CORRUPT_RECORD and is left alone. */
static void test_corrupt_record_in_store(void **state)
{
    (void)state;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, true);
    wire_msg m = party_encrypt(&a, &b, "x");
    static const uint8_t junk[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x05, 0x03, 0x00};
    assert_int_equal(b.ps->session.store(b.ps->session.user_data, &a.addr, junk, sizeof junk),
                     SOTTO_OK);
    assert_int_equal(a.ps->session.store(a.ps->session.user_data, &b.addr, junk, sizeof junk),
                     SOTTO_OK);
    expect_reject_unchanged(&b, &a, &m, SOTTO_ERR_CORRUPT_RECORD);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int type = 0;
    assert_int_equal(
        sotto_session_encrypt(a.ps, &b.addr, (const uint8_t *)"y", 1, &out, &out_len, &type),
        SOTTO_ERR_CORRUPT_RECORD);
    bool exists;
    assert_int_equal(sotto_session_exists(a.ps, &b.addr, &exists), SOTTO_ERR_CORRUPT_RECORD);
    size_t len;
    uint8_t *raw = party_record(&a, &b, &len);
    assert_int_equal(len, sizeof junk);
    assert_memory_equal(raw, junk, len);
    free(raw);
    wire_free(&m);
    party_free(&a);
    party_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_record_roundtrip),
        cmocka_unit_test(test_hostile_records),
        cmocka_unit_test(test_record_caps),
        cmocka_unit_test(test_record_size_limit),
        cmocka_unit_test(test_corrupt_record_in_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
