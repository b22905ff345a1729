/*
 * tests/unit/test_client_content.c -- client pieces without a server:
 * content padding (docs/protocol.md "Content"), UTF-8 checks and cutting,
 * name validation, the content protobuf round trip with hostile input, and
 * attachment pointers as history rows store them (round trip, hostile rows).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "internal.h"

static void test_pad_sizes(void **state)
{
    uint8_t in[400];
    (void)state;
    memset(in, 0xAB, sizeof in);
    /* len -> padded length: smallest bucket 160, 320 * 2^k, 480 * 2^k >= len + 1 */
    static const size_t cases[][2] = {{0, 160},   {1, 160},   {159, 160}, {160, 320}, {161, 320},
                                      {239, 320}, {240, 320}, {319, 320}, {320, 480}, {399, 480}};
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

/* Every bucket edge of the table in docs/protocol.md "Padding": the last
 * length that fits a bucket, and the first that does not. */
static void test_pad_buckets(void **state)
{
    static const size_t buckets[] = {160,   320,   480,   640,   960,   1280,  1920,
                                     2560,  3840,  5120,  7680,  10240, 15360, 20480,
                                     30720, 40960, 61440, 81920, 122880};
    const size_t nb = sizeof buckets / sizeof buckets[0];
    (void)state;
    assert_int_equal(buckets[nb - 1], SC_PAD_BUCKET_MAX);
    for (size_t i = 0; i < nb; i++) {
        /* len + 1 == bucket: fits exactly */
        assert_int_equal(sc_pad_size(buckets[i] - 1), buckets[i]);
        /* one more byte: the next bucket (past the last: the next 160) */
        assert_int_equal(sc_pad_size(buckets[i]), i + 1 < nb ? buckets[i + 1] : buckets[i] + 160);
        /* the smallest length of the bucket */
        if (i > 0)
            assert_int_equal(sc_pad_size(buckets[i - 1]), buckets[i]);
    }
    /* beyond the table: multiples of 160 */
    assert_int_equal(sc_pad_size(122880 + 159), 122880 + 160);
    assert_int_equal(sc_pad_size(122880 + 160), 122880 + 320);
    assert_int_equal(sc_pad_size(200000), 200160);
    /* no size_t overflow */
    assert_int_equal(sc_pad_size(SIZE_MAX), 0);
    assert_int_equal(sc_pad_size(SIZE_MAX - 319), 0);
    {
        uint8_t b = 0, *out = (uint8_t *)&b;
        size_t ol = 7;
        assert_int_equal(sc_pad(&b, SIZE_MAX, &out, &ol), SC_E_INTERNAL);
        assert_null(out);
        assert_int_equal(ol, 0);
    }
    /* every length up to the table's end: never shorter than len + 1, a
     * multiple of 160 (never finer than the old blocks), at most 1.5x the
     * need (2x just past 160), monotonic, and only 19 sizes in all */
    {
        size_t prev = 0, distinct = 0;
        for (size_t len = 0; len < SC_PAD_BUCKET_MAX; len++) {
            size_t p = sc_pad_size(len);
            assert_true(p >= len + 1);
            assert_true(p >= prev);
            assert_true(p % 160 == 0);
            assert_true(len < 320 || p * 2 <= (len + 1) * 3);
            assert_true(p <= 2 * (len + 1) || p == 160);
            if (p != prev)
                distinct++;
            prev = p;
        }
        assert_int_equal(distinct, nb);
    }
    /* a round trip at a large size across the table's end */
    {
        const size_t big = SC_PAD_BUCKET_MAX;
        const size_t lens[] = {0, 959, 960, 61439, 61440, big - 1, big, big + 1000};
        uint8_t *in = malloc(SC_PAD_BUCKET_MAX + 1000);
        assert_non_null(in);
        for (size_t i = 0; i < SC_PAD_BUCKET_MAX + 1000; i++)
            in[i] = (uint8_t)(i * 7 + 1) | 0x01; /* never 0x00: ends must be found by the marker */
        in[500] = 0x80;
        in[501] = 0x00;
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            uint8_t *out = NULL;
            size_t ol = 0, back = 1;
            assert_int_equal(sc_pad(in, lens[i], &out, &ol), SC_OK);
            assert_int_equal(ol, sc_pad_size(lens[i]));
            assert_int_equal(sc_unpad(out, ol, &back), SC_OK);
            assert_int_equal(back, lens[i]);
            assert_memory_equal(out, in, lens[i]);
            free(out);
        }
        free(in);
    }
}

/* What an older Sotto client sent (multiples of 160) and what an older
 * client's receiver does with ours: the same rule either way. */
static void test_unpad_old_and_new(void **state)
{
    uint8_t buf[480];
    size_t n = 0;
    (void)state;
    /* an old sender: 700 bytes of content in 800 (new uses 960) */
    {
        uint8_t old_one[960];
        memset(old_one, 0, sizeof old_one);
        memset(old_one, 'o', 700);
        old_one[700] = 0x80;
        assert_int_equal(sc_pad_size(700), 960);
        assert_int_equal(sc_unpad(old_one, 800, &n), SC_OK);
        assert_int_equal(n, 700);
        assert_int_equal(sc_unpad(old_one, 960, &n), SC_OK);
        assert_int_equal(n, 700);
    }
    /* 200 bytes in 320 (the same for both schemes) */
    memset(buf, 0, sizeof buf);
    memset(buf, 'o', 200);
    buf[200] = 0x80;
    assert_int_equal(sc_unpad(buf, 320, &n), SC_OK);
    assert_int_equal(n, 200);
    /* any length holding the terminator: the old receiver's rule (strip
     * zeros, one 0x80) is the one sc_unpad applies */
    assert_int_equal(sc_unpad(buf, 240, &n), SC_OK);
    assert_int_equal(n, 200);
    /* cut inside the content (the terminator lost): refused */
    assert_int_equal(sc_unpad(buf, 200, &n), SC_E_USAGE);
    assert_int_equal(n, 0);
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
    /* only the terminator: an empty content */
    buf[0] = 0x80;
    assert_int_equal(sc_unpad(buf, 1, &n), SC_OK);
    assert_int_equal(n, 0);
    /* a single zero byte, and a single non-marker byte */
    buf[0] = 0x00;
    n = 5;
    assert_int_equal(sc_unpad(buf, 1, &n), SC_E_USAGE);
    assert_int_equal(n, 0);
    buf[0] = 0x7f;
    assert_int_equal(sc_unpad(buf, 1, &n), SC_E_USAGE);
    /* marker followed by 0x01 (a bucket's tail must be all zeros) */
    memset(buf, 0, sizeof buf);
    buf[0] = 'a';
    buf[1] = 0x80;
    buf[150] = 0x01;
    assert_int_equal(sc_unpad(buf, 160, &n), SC_E_USAGE);
    /* 0xff and 0x00 runs of a whole large bucket: refused without reading
     * outside the buffer (ASan builds check the bound) */
    {
        uint8_t *big = malloc(SC_PAD_BUCKET_MAX);
        assert_non_null(big);
        memset(big, 0x00, SC_PAD_BUCKET_MAX);
        assert_int_equal(sc_unpad(big, SC_PAD_BUCKET_MAX, &n), SC_E_USAGE);
        memset(big, 0xff, SC_PAD_BUCKET_MAX);
        assert_int_equal(sc_unpad(big, SC_PAD_BUCKET_MAX, &n), SC_E_USAGE);
        big[0] = 0x80;
        memset(big + 1, 0x00, SC_PAD_BUCKET_MAX - 1);
        assert_int_equal(sc_unpad(big, SC_PAD_BUCKET_MAX, &n), SC_OK);
        assert_int_equal(n, 0);
        free(big);
    }
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
    assert_int_equal(plen, sc_pad_size(n));
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

/* One stored pointer object parsed from JSON text. */
static int parse_one(const char *text, Sotto__Content__AttachmentPointer *out)
{
    json_t *o = json_loads(text, 0, NULL);
    int rc;
    assert_non_null(o);
    rc = sc_attachment_pointer_from_json(o, out);
    json_decref(o);
    return rc;
}

static void test_pointer_stored_round_trip(void **state)
{
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__AttachmentPointer p = SOTTO__CONTENT__ATTACHMENT_POINTER__INIT, q;
    Sotto__Content__AttachmentPointer *pp = &p;
    uint8_t key[64], digest[32];
    char *s;
    json_t *o;
    (void)state;

    for (size_t i = 0; i < 64; i++)
        key[i] = (uint8_t)(255 - i);
    for (size_t i = 0; i < 32; i++)
        digest[i] = (uint8_t)(i * 3);
    p.id = "00112233445566778899aabbccddeeff";
    p.key.data = key;
    p.key.len = 64;
    p.digest.data = digest;
    p.digest.len = 32;
    p.size = 104857600; /* 100 MiB: the largest accepted */
    p.content_type = "image/png";
    p.file_name = "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80.png";
    dm.attachments = &pp;
    dm.n_attachments = 1;
    s = sc_attachment_pointers_json(&dm);
    assert_non_null(s);
    o = json_loads(s, 0, NULL);
    assert_non_null(o);
    assert_int_equal(
        sc_attachment_pointer_from_json(json_array_get(json_object_get(o, "attachments"), 0), &q),
        SC_OK);
    assert_string_equal(q.id, p.id);
    assert_int_equal(q.key.len, 64);
    assert_memory_equal(q.key.data, key, 64);
    assert_int_equal(q.digest.len, 32);
    assert_memory_equal(q.digest.data, digest, 32);
    assert_int_equal(q.size, 104857600);
    assert_string_equal(q.content_type, "image/png");
    assert_string_equal(q.file_name, p.file_name);
    sc_attachment_pointer_clear(&q);
    json_decref(o);
    sc_free_secret_str(s);

    /* a pointer with a short key is stored with key "" and refused on parse */
    p.key.len = 63;
    s = sc_attachment_pointers_json(&dm);
    assert_non_null(s);
    o = json_loads(s, 0, NULL);
    assert_int_equal(
        sc_attachment_pointer_from_json(json_array_get(json_object_get(o, "attachments"), 0), &q),
        SC_E_INTEGRITY);
    json_decref(o);
    free(s);
    /* no attachments: nothing stored */
    dm.n_attachments = 0;
    assert_null(sc_attachment_pointers_json(&dm));
}

static void test_pointer_stored_hostile(void **state)
{
#define K128                                                                                       \
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
    "000000000000000000000000000000000000"
#define D64 "0000000000000000000000000000000000000000000000000000000000000000"
#define ID "00112233445566778899aabbccddeeff"
    static const char *const bad[] = {
        "{}",
        "[]",
        "{\"id\":\"" ID "\",\"key\":\"" K128 "\",\"digest\":\"" D64 "\"}", /* no size */
        "{\"id\":\"" ID "\",\"key\":\"" K128 "\",\"digest\":\"" D64 "\",\"size\":-1}",
        "{\"id\":\"" ID "\",\"key\":\"" K128 "\",\"digest\":\"" D64 "\",\"size\":104857601}",
        "{\"id\":\"" ID "\",\"key\":\"" K128 "\",\"digest\":\"" D64 "\",\"size\":\"5\"}",
        "{\"id\":\"" ID "\",\"key\":\"" K128 "0\",\"digest\":\"" D64 "\",\"size\":5}",
        "{\"id\":\"" ID "\",\"key\":\"" K128 "\",\"digest\":\"" D64 "00\",\"size\":5}",
        "{\"id\":\"" ID "\",\"key\":\"" K128 "\",\"digest\":\"g" D64 "\",\"size\":5}",
        "{\"id\":\"00112233445566778899AABBCCDDEEFF\",\"key\":\"" K128 "\",\"digest\":\"" D64
        "\",\"size\":5}",
        "{\"id\":\"../../../../etc/passwd000000000\",\"key\":\"" K128 "\",\"digest\":\"" D64
        "\",\"size\":5}",
        "{\"id\":5,\"key\":\"" K128 "\",\"digest\":\"" D64 "\",\"size\":5}",
        "{\"id\":\"" ID "\",\"key\":null,\"digest\":\"" D64 "\",\"size\":5}",
    };
    Sotto__Content__AttachmentPointer q;
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_one(bad[i], &q), SC_E_INTEGRITY);
        /* left in the initial state: nothing to free, no key */
        assert_string_equal(q.id, "");
        assert_null(q.key.data);
        assert_int_equal(q.key.len, 0);
    }
    /* the minimal good one, with missing names defaulted */
    assert_int_equal(
        parse_one("{\"id\":\"" ID "\",\"key\":\"" K128 "\",\"digest\":\"" D64 "\",\"size\":0}", &q),
        SC_OK);
    assert_int_equal(q.size, 0);
    assert_string_equal(q.file_name, "");
    assert_string_equal(q.content_type, "application/octet-stream");
    sc_attachment_pointer_clear(&q);
#undef K128
#undef D64
#undef ID
}

static void test_content_decode(void **state)
{
    Sotto__Content__Content c = SOTTO__CONTENT__CONTENT__INIT;
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    Sotto__Content__Content *out = NULL;
    uint8_t *buf, *padded = NULL;
    size_t n, plen = 0;
    (void)state;

    dm.body = "x";
    c.timestamp = 9;
    c.data = &dm;
    n = sotto__content__content__get_packed_size(&c);
    buf = malloc(n);
    assert_non_null(buf);
    sotto__content__content__pack(&c, buf);
    assert_int_equal(sc_pad(buf, n, &padded, &plen), SC_OK);
    assert_int_equal(sc_content_decode(padded, plen, &out), SC_OK);
    assert_non_null(out);
    assert_int_equal(out->timestamp, 9);
    assert_string_equal(out->data->body, "x");
    sotto__content__content__free_unpacked(out, NULL);
    /* unpadded: refused */
    assert_int_equal(sc_content_decode(buf, n, &out), SC_E_USAGE);
    assert_null(out);
    /* padding only: an empty Content (key-only) */
    assert_int_equal(sc_content_decode((const uint8_t *)"\x80\0\0", 3, &out), SC_OK);
    assert_null(out->data);
    sotto__content__content__free_unpacked(out, NULL);
    /* padded garbage */
    padded[0] = 0xff;
    assert_int_equal(sc_content_decode(padded, plen, &out), SC_E_USAGE);
    assert_null(out);
    free(buf);
    free(padded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_sizes),
        cmocka_unit_test(test_pad_buckets),
        cmocka_unit_test(test_unpad_old_and_new),
        cmocka_unit_test(test_unpad_hostile),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_content_round_trip),
        cmocka_unit_test(test_pointer_stored_round_trip),
        cmocka_unit_test(test_pointer_stored_hostile),
        cmocka_unit_test(test_content_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
