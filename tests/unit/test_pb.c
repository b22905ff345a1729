/* Bounded cursor and protobuf helpers: round trips and hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/pb.h"

static void test_varint_roundtrip(void **state)
{
    (void)state;
    static const uint64_t vals[] = {0, 1, 127, 128, 300, 0xffffffffu, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[16];
        sotto_wbuf w;
        sotto_wbuf_init_fixed(&w, b, sizeof b);
        sotto_wbuf_put_varint(&w, vals[i]);
        assert_int_equal(sotto_wbuf_error(&w), SOTTO_OK);
        sotto_rbuf r;
        sotto_rbuf_init(&r, b, w.len);
        uint64_t v;
        assert_int_equal(sotto_rbuf_get_varint(&r, &v), SOTTO_OK);
        assert_true(v == vals[i]);
        assert_int_equal(sotto_rbuf_remaining(&r), 0);
    }
    /* 300 is ac 02 on the wire */
    uint8_t b[4];
    sotto_wbuf w;
    sotto_wbuf_init_fixed(&w, b, sizeof b);
    sotto_wbuf_put_varint(&w, 300);
    assert_int_equal(w.len, 2);
    assert_int_equal(b[0], 0xac);
    assert_int_equal(b[1], 0x02);
}

static void test_varint_hostile(void **state)
{
    (void)state;
    uint64_t v;
    sotto_rbuf r;
    const uint8_t unterminated[] = {0x80, 0x80};
    sotto_rbuf_init(&r, unterminated, sizeof unterminated);
    assert_int_equal(sotto_rbuf_get_varint(&r, &v), SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(r.pos, 0);
    const uint8_t overflow[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    sotto_rbuf_init(&r, overflow, sizeof overflow);
    assert_int_equal(sotto_rbuf_get_varint(&r, &v), SOTTO_ERR_INVALID_MESSAGE);
    const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    sotto_rbuf_init(&r, eleven, sizeof eleven);
    assert_int_equal(sotto_rbuf_get_varint(&r, &v), SOTTO_ERR_INVALID_MESSAGE);
}

static void test_fields(void **state)
{
    (void)state;
    sotto_wbuf w;
    sotto_wbuf_init(&w, 1024);
    sotto_pb_put_bytes(&w, 1, "abc", 3);
    sotto_pb_put_uint(&w, 2, 7);
    sotto_pb_put_fixed64(&w, 5, 0x0102030405060708ull);
    uint8_t *out;
    size_t len;
    assert_int_equal(sotto_wbuf_steal(&w, &out, &len), SOTTO_OK);
    const uint8_t expect[] = {0x0a, 0x03, 'a',  'b',  'c',  0x10, 0x07, 0x29,
                              0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    assert_int_equal(len, sizeof expect);
    assert_memory_equal(out, expect, len);

    sotto_rbuf r;
    sotto_pb_field f;
    sotto_rbuf_init(&r, out, len);
    assert_int_equal(sotto_pb_next(&r, &f), 1);
    assert_int_equal(f.num, 1);
    assert_int_equal(f.len, 3);
    assert_int_equal(sotto_pb_next(&r, &f), 1);
    assert_int_equal(f.value, 7);
    assert_int_equal(sotto_pb_next(&r, &f), 1);
    assert_true(f.value == 0x0102030405060708ull);
    assert_int_equal(sotto_pb_next(&r, &f), 0);

    /* every truncation fails cleanly or ends early, never reads past len */
    for (size_t cut = 1; cut < len; cut++) {
        sotto_rbuf_init(&r, out, cut);
        int rc;
        while ((rc = sotto_pb_next(&r, &f)) == 1)
            ;
        assert_true(rc == 0 || rc == SOTTO_ERR_INVALID_MESSAGE);
        assert_true(r.pos <= cut);
    }
    free(out);
}

static void test_fields_hostile(void **state)
{
    (void)state;
    sotto_rbuf r;
    sotto_pb_field f;
    const uint8_t field0[] = {0x02, 0x00};             /* field number 0 */
    const uint8_t group[] = {0x0b};                    /* wire type 3 */
    const uint8_t biglen[] = {0x0a, 0xff, 0xff, 0x03}; /* length past end */
    sotto_rbuf_init(&r, field0, sizeof field0);
    assert_int_equal(sotto_pb_next(&r, &f), SOTTO_ERR_INVALID_MESSAGE);
    sotto_rbuf_init(&r, group, sizeof group);
    assert_int_equal(sotto_pb_next(&r, &f), SOTTO_ERR_INVALID_MESSAGE);
    sotto_rbuf_init(&r, biglen, sizeof biglen);
    assert_int_equal(sotto_pb_next(&r, &f), SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(r.pos, 0);
}

static void test_wbuf_max(void **state)
{
    (void)state;
    sotto_wbuf w;
    sotto_wbuf_init(&w, 10);
    sotto_wbuf_put(&w, "0123456789", 10);
    assert_int_equal(sotto_wbuf_error(&w), SOTTO_OK);
    sotto_wbuf_put_u8(&w, 1);
    assert_int_equal(sotto_wbuf_error(&w), SOTTO_ERR_BUFFER_TOO_SMALL);
    sotto_wbuf_put_u8(&w, 1); /* sticky, no effect */
    assert_int_equal(w.len, 10);
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(sotto_wbuf_steal(&w, &out, &len), SOTTO_ERR_BUFFER_TOO_SMALL);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_roundtrip), cmocka_unit_test(test_varint_hostile),
        cmocka_unit_test(test_fields),           cmocka_unit_test(test_fields_hostile),
        cmocka_unit_test(test_wbuf_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
