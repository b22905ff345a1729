/*
 * tests/unit/test_client_textsafe.c -- the characters that must not reach a
 * terminal or a file name as they are (client/core/textsafe.h): the UTF-8
 * decoder against hostile input, the unsafe set, and saved file names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "textsafe.h"

static void test_utf8_next(void **state)
{
    uint32_t cp = 0;
    (void)state;
    assert_int_equal(sc_utf8_next("A", 1, &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(sc_utf8_next("\xc3\xa9", 2, &cp), 2);
    assert_int_equal(cp, 0xe9);
    assert_int_equal(sc_utf8_next("\xe2\x80\xae", 3, &cp), 3);
    assert_int_equal(cp, 0x202e);
    assert_int_equal(sc_utf8_next("\xf0\x9f\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1f600);
    assert_int_equal(sc_utf8_next("\xc2\x9b", 2, &cp), 2); /* C1 CSI, valid UTF-8 */
    assert_int_equal(cp, 0x9b);
    /* invalid: stray continuation, overlong, surrogate, > U+10FFFF, cut short */
    assert_int_equal(sc_utf8_next("\x80", 1, &cp), 0);
    assert_int_equal(sc_utf8_next("\xc0\xaf", 2, &cp), 0);
    assert_int_equal(sc_utf8_next("\xe0\x80\xaf", 3, &cp), 0);
    assert_int_equal(sc_utf8_next("\xed\xa0\x80", 3, &cp), 0);
    assert_int_equal(sc_utf8_next("\xf4\x90\x80\x80", 4, &cp), 0);
    assert_int_equal(sc_utf8_next("\xe2\x80", 2, &cp), 0);
    assert_int_equal(sc_utf8_next("\xe2\x41\x41", 3, &cp), 0);
    assert_int_equal(sc_utf8_next("", 0, &cp), 0);
}

static void test_unsafe_set(void **state)
{
    static const uint32_t unsafe[] = {0x00,   0x09,   0x0a,   0x0d,   0x1b,   0x7f,
                                      0x80,   0x9b,   0x9f,   0x061c, 0x200e, 0x200f,
                                      0x2028, 0x2029, 0x202a, 0x202e, 0x2066, 0x2069};
    static const uint32_t safe[] = {0x20,   0x41,   0x7e,   0xa0,   0xe9,   0x05d0,
                                    0x200d, 0x2027, 0x202f, 0x2065, 0x206a, 0x1f600};
    (void)state;
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++)
        assert_true(sc_cp_unsafe(unsafe[i]));
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        assert_false(sc_cp_unsafe(safe[i]));
}

static void test_safe_file_name(void **state)
{
    char out[128];
    (void)state;
    sc_safe_file_name("photo\xe2\x80\xaegpj.exe", 100, out, sizeof out);
    assert_string_equal(out, "photo_gpj.exe");
    sc_safe_file_name("../../etc/passwd", 100, out, sizeof out);
    assert_string_equal(out, "_._.._etc_passwd");
    sc_safe_file_name(".bashrc", 100, out, sizeof out);
    assert_string_equal(out, "_bashrc");
    sc_safe_file_name("a\nb\rc\x1b[2J\xc2\x9b"
                      "d",
                      100, out, sizeof out);
    assert_string_equal(out, "a_b_c_[2J_d");
    sc_safe_file_name("bad\xff\xfe.txt", 100, out, sizeof out);
    assert_string_equal(out, "bad__.txt");
    sc_safe_file_name("\xe2\x81\xa6x\xe2\x81\xa9", 100, out, sizeof out); /* LRI x PDI */
    assert_string_equal(out, "_x_");
    sc_safe_file_name("caf\xc3\xa9 \xf0\x9f\x98\x80.jpg", 100, out, sizeof out);
    assert_string_equal(out, "caf\xc3\xa9 \xf0\x9f\x98\x80.jpg");
    sc_safe_file_name("", 100, out, sizeof out);
    assert_string_equal(out, "attachment");
    sc_safe_file_name(NULL, 100, out, sizeof out);
    assert_string_equal(out, "attachment");
    sc_safe_file_name("\xe2\x80\xae", 100, out, sizeof out);
    assert_string_equal(out, "_");
    /* cut on a character boundary: 3 bytes of "é" x 2 = "é" (2 bytes) */
    sc_safe_file_name("\xc3\xa9\xc3\xa9", 3, out, sizeof out);
    assert_string_equal(out, "\xc3\xa9");
    {
        char longname[300];
        memset(longname, 'x', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        sc_safe_file_name(longname, 100, out, sizeof out);
        assert_int_equal(strlen(out), 100);
        sc_safe_file_name(longname, 100, out, 20); /* cap wins */
        assert_int_equal(strlen(out), 19);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_next),
        cmocka_unit_test(test_unsafe_set),
        cmocka_unit_test(test_safe_file_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
