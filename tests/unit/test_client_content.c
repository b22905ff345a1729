/*
 * tests/unit/test_client_content.c -- client pieces without a server:
 * content padding (docs/protocol.md "Content"), UTF-8 checks and cutting,
 * name validation, and the content protobuf round trip with hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "content.pb-c.h"
#include "sotto_client.h"

static void test_pad_sizes(void **state)
{
    uint8_t in[400];
    (void)state;
    memset(in, 0xAB, sizeof in);
    /* len -> padded length: smallest multiple of 160 >= len + 1 */
    static const size_t cases[][2] = {{0, 160},   {1, 160},   {159, 160}, {160, 320},
                                      {161, 320}, {319, 320}, {320, 480}, {399, 480}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *out = NULL;
        size_t out_len = 0, back = 0;
        assert_int_equal(sc_pad(in, cases[i][0], &out, &out_len), SC_OK);
        assert_int_equal(out_len, cases[i][1]);
        assert_memory_equal(out, in, cases[i][0]);
        assert_int_equal(out[cases[i][0]], 0x80);
        for (size_t k = cases[i][0] + 1; k < out_len; k++)
            assert_int_equal(out[k], 0x00);
        assert_int_equal(sc_unpad(out, out_len, &back), SC_OK);
        assert_int_equal(back, cases[i][0]);
        free(out);
    }
}

static void test_unpad_hostile(void **state)
{
    uint8_t buf[200];
    size_t n = 99;
    (void)state;
    /* all zeros: no 0x80 marker */
    memset(buf, 0, sizeof buf);
    assert_int_equal(sc_unpad(buf, sizeof buf, &n), SC_E_USAGE);
    assert_int_equal(n, 0);
    /* empty */
    assert_int_equal(sc_unpad(buf, 0, &n), SC_E_USAGE);
    /* last non-zero byte is not 0x80 */
    buf[10] = 0x81;
    assert_int_equal(sc_unpad(buf, sizeof buf, &n), SC_E_USAGE);
    /* content that itself ends in 0x80 0x00 survives: the LAST 0x80 is the marker */
    memset(buf, 0, sizeof buf);
    buf[0] = 'a';
    buf[1] = 0x80;
    buf[2] = 0x00;
    buf[3] = 0x80;
    assert_int_equal(sc_unpad(buf, sizeof buf, &n), SC_OK);
    assert_int_equal(n, 3);
    /* no padding at all: marker is the very last byte */
    buf[199] = 0x80;
    assert_int_equal(sc_unpad(buf, sizeof buf, &n), SC_OK);
    assert_int_equal(n, 199);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(sc_utf8_valid("", 0));
    assert_true(sc_utf8_valid("abc", 3));
    assert_true(sc_utf8_valid("\xc3\xbc", 2));          /* ü */
    assert_true(sc_utf8_valid("\xe2\x98\x83", 3));      /* ☃ */
    assert_true(sc_utf8_valid("\xf0\x9f\x98\x80", 4));  /* 😀 */
    assert_false(sc_utf8_valid("a\0b", 3));             /* NUL */
    assert_false(sc_utf8_valid("\xc3", 1));             /* truncated */
    assert_false(sc_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(sc_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(sc_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(sc_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(sc_utf8_valid("\xff", 1));
    assert_false(sc_utf8_valid("\x80", 1)); /* lone continuation */
}

static void test_utf8_cut(void **state)
{
    /* "a☃b": a(1) ☃(3) b(1) */
    const char *s = "a\xe2\x98\x83"
                    "b";
    (void)state;
    assert_int_equal(sc_utf8_cut(s, 5, 10), 5);
    assert_int_equal(sc_utf8_cut(s, 5, 4), 4);
    assert_int_equal(sc_utf8_cut(s, 5, 3), 1); /* would split ☃ */
    assert_int_equal(sc_utf8_cut(s, 5, 2), 1);
    assert_int_equal(sc_utf8_cut(s, 5, 1), 1);
    assert_int_equal(sc_utf8_cut(s, 5, 0), 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(sc_username_valid("bob"));
    assert_true(sc_username_valid("a.b_c9"));
    assert_false(sc_username_valid("ab"));
    assert_false(sc_username_valid("Bob"));
    assert_false(sc_username_valid("bob!"));
    assert_false(sc_username_valid("b\xc3\xbc"
                                   "b"));
    assert_false(sc_username_valid("abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
    assert_true(sc_username_valid("abcdefghijklmnopqrstuvwxyz012345"));   /* 32 */
    assert_true(sc_account_name_valid("Alice-2.x"));
    assert_false(sc_account_name_valid(".hidden"));
    assert_false(sc_account_name_valid("a/b"));
    assert_false(sc_account_name_valid(""));
    assert_false(sc_account_name_valid(NULL));
}

static void test_content_round_trip(void **state)
{
    Sotto__Content__Content c = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__GroupContext gc = SOTTO__CONTENT__GROUP_CONTEXT__INIT;
    Sotto__Content__Content *back;
    uint8_t gid[16], *buf, *padded = NULL;
    char *members[] = {"alice", "bob"};
    char body[3001];
    size_t n, plen = 0, unp = 0;
    (void)state;

    /* 1000 x "☃" = 3000 bytes of UTF-8 */
    for (int i = 0; i < 1000; i++)
        memcpy(body + 3 * i, "\xe2\x98\x83", 3);
    body[3000] = '\0';
    memset(gid, 0x42, sizeof gid);
    gc.id.data = gid;
    gc.id.len = sizeof gid;
    gc.type = SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE;
    gc.name = "Caf\xc3\xa9";
    gc.members = members;
    gc.n_members = 2;
    dm.body = body;
    dm.group = &gc;
    c.timestamp = 1796013758745ull;
    c.data = &dm;
    n = sotto__content__content__get_packed_size(&c);
    buf = malloc(n);
    assert_non_null(buf);
    sotto__content__content__pack(&c, buf);
    assert_int_equal(sc_pad(buf, n, &padded, &plen), SC_OK);
    assert_int_equal(plen % 160, 0);
    assert_int_equal(sc_unpad(padded, plen, &unp), SC_OK);
    assert_int_equal(unp, n);
    back = sotto__content__content__unpack(NULL, unp, padded);
    assert_non_null(back);
    assert_int_equal(back->timestamp, 1796013758745ull);
    assert_non_null(back->data);
    assert_string_equal(back->data->body, body);
    assert_int_equal(strlen(back->data->body), 3000);
    assert_non_null(back->data->group);
    assert_int_equal(back->data->group->type, SOTTO__CONTENT__GROUP_CONTEXT__TYPE__UPDATE);
    assert_memory_equal(back->data->group->id.data, gid, 16);
    assert_string_equal(back->data->group->name, "Caf\xc3\xa9");
    assert_int_equal(back->data->group->n_members, 2);
    assert_string_equal(back->data->group->members[1], "bob");
    sotto__content__content__free_unpacked(back, NULL);

    /* hostile: every truncation of the encoding either fails to parse or
     * parses to something else; never crashes (run under ASan). */
    for (size_t cut = 0; cut < n; cut += 7) {
        Sotto__Content__Content *t = sotto__content__content__unpack(NULL, cut, buf);
        if (t)
            sotto__content__content__free_unpacked(t, NULL);
    }
    /* garbage */
    {
        uint8_t junk[64];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)(0xff - i);
        back = sotto__content__content__unpack(NULL, sizeof junk, junk);
        assert_null(back);
    }
    free(buf);
    free(padded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_sizes), cmocka_unit_test(test_unpad_hostile),
        cmocka_unit_test(test_utf8),      cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_names),     cmocka_unit_test(test_content_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
