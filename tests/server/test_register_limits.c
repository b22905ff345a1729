/*
 * tests/server/test_register_limits.c -- issue 12's registration limits per
 * source (server/ratelimit.h): per source address and per source prefix
 * (IPv4 /24, IPv6 /48), besides the server-wide bucket, in a bounded table.
 *
 *   - the table and the keys, directly (server/ratelimit.c): least
 *     recently used entry evicted at the bound, the count never above it;
 *     one /24 or /48 shares a prefix key, another does not; IPv4-mapped
 *     IPv6 is IPv4; X-Forwarded-For's last entry.
 *   - the control, per-source limits lifted: one source in a loop takes
 *     all of the server-wide bucket and another source cannot register.
 *   - a real sottod (tests/server/tclient.c), clients bound to different
 *     loopback addresses: one source registering in a loop is capped at
 *     the configured burst (RATE_LIMITED "this address", retry_after_ms
 *     set), a second address of the same /24 at what is left of the
 *     prefix's burst ("this network"), an address of another /24 still
 *     registers -- the refused attempts took nothing from the server-wide
 *     bucket -- until the server-wide bucket is empty. X-Forwarded-For is
 *     ignored unless register_proxy names the peer.
 *   - behind a trusted proxy (register_proxy=127.0.0.1): the last
 *     X-Forwarded-For address is the source; addresses a client puts in
 *     front of it change nothing.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ratelimit.h"
#include "tclient.h"

#define OK SOTTO__API__STATUS__STATUS_OK
#define LIMITED SOTTO__API__STATUS__STATUS_RATE_LIMITED

static int setup(void **state)
{
    tc_server *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    assert_int_equal(tc_server_init(s), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    tc_server *s = *state;

    tc_set_origin(NULL, NULL);
    tc_server_cleanup(s);
    free(s);
    return 0;
}

/* ---- the table and the keys ------------------------------------------------------------ */

static void test_table_bounded_lru(void **state)
{
    sottod_source_table t = {0};
    uint64_t retry = 0;
    int64_t now = 1000000;

    (void)state;
    /* burst 1, 1 a minute: the second take of a key is refused */
    for (uint64_t k = 1; k <= 4; k++) {
        assert_true(sottod_source_table_take(&t, k, 1, 1, 4, now, &retry));
        assert_false(sottod_source_table_take(&t, k, 1, 1, 4, now, &retry));
        assert_true(retry > 59000 && retry <= 60001);
    }
    assert_int_equal(t.count, 4);
    /* key 2 used again (refused): key 1 is now the least recently used */
    assert_false(sottod_source_table_take(&t, 2, 1, 1, 4, now, NULL));
    /* a fifth key evicts key 1 only */
    assert_true(sottod_source_table_take(&t, 5, 1, 1, 4, now, NULL));
    assert_int_equal(t.count, 4);
    assert_false(sottod_source_table_take(&t, 2, 1, 1, 4, now, NULL));
    assert_false(sottod_source_table_take(&t, 5, 1, 1, 4, now, NULL));
    /* key 1 was forgotten: it starts full again (and evicts key 3) */
    assert_true(sottod_source_table_take(&t, 1, 1, 1, 4, now, NULL));
    assert_int_equal(t.count, 4);
    assert_true(sottod_source_table_take(&t, 3, 1, 1, 4, now, NULL));
    /* a refund gives the one token back, never more than the burst */
    sottod_source_table_refund(&t, 3, 1);
    sottod_source_table_refund(&t, 3, 1);
    assert_true(sottod_source_table_take(&t, 3, 1, 1, 4, now, NULL));
    assert_false(sottod_source_table_take(&t, 3, 1, 1, 4, now, NULL));
    sottod_source_table_refund(&t, 999, 1); /* unknown: nothing */
    assert_int_equal(t.count, 4);
    /* a minute later a token is back */
    assert_true(sottod_source_table_take(&t, 5, 1, 1, 4, now + 60000000, NULL));
    /* many keys: never more than the bound */
    for (uint64_t k = 100; k < 10100; k++)
        (void)sottod_source_table_take(&t, k, 1, 1, 4, now, NULL);
    assert_int_equal(t.count, 4);
    sottod_source_table_free(&t);
    assert_int_equal(t.count, 0);
    assert_null(t.oldest);
    print_message("source table entry: %zu bytes\n", sizeof(sottod_source_entry));
}

static void keys_of(const char *text, const uint8_t hk[16], uint64_t *a, uint64_t *p)
{
    uint8_t addr[SOTTOD_SOURCE_ADDR_BYTES];

    assert_true(sottod_source_parse(text, addr));
    sottod_source_keys(addr, hk, a, p);
}

static void test_source_keys(void **state)
{
    uint8_t hk[16], addr[SOTTOD_SOURCE_ADDR_BYTES], other[16];
    uint64_t a1, p1, a2, p2, a3, p3;

    (void)state;
    randombytes_buf(hk, sizeof(hk));
    /* IPv4: one /24 shares the prefix key, not the address key */
    keys_of("192.0.2.1", hk, &a1, &p1);
    keys_of("192.0.2.200", hk, &a2, &p2);
    keys_of("192.0.3.1", hk, &a3, &p3);
    assert_true(a1 != a2 && p1 == p2);
    assert_true(p1 != p3 && a1 != a3);
    /* IPv4-mapped IPv6 is the same source as IPv4 */
    keys_of(" ::ffff:192.0.2.1 ", hk, &a2, &p2);
    assert_true(a1 == a2 && p1 == p2);
    /* IPv6: one /48 shares the prefix key */
    keys_of("2001:db8:1:2::1", hk, &a1, &p1);
    keys_of("2001:db8:1:ffff::9", hk, &a2, &p2);
    keys_of("2001:db8:2::1", hk, &a3, &p3);
    assert_true(a1 != a2 && p1 == p2);
    assert_true(p1 != p3);
    /* IPv6: the address key is the /64 (a host picks any of its /128s) */
    keys_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd", hk, &a2, &p2);
    assert_true(a1 == a2 && p1 == p2);
    /* another hash key: other keys (nothing stable to correlate) */
    memcpy(other, hk, sizeof(other));
    other[0] ^= 1;
    keys_of("2001:db8:1:2::1", other, &a2, &p2);
    assert_true(a1 != a2 && p1 != p2);
    /* not addresses */
    assert_false(sottod_source_parse("", addr));
    assert_false(sottod_source_parse("example.org", addr));
    assert_false(sottod_source_parse("192.0.2.1:443", addr));
    assert_false(sottod_source_parse("192.0.2.1, 192.0.2.2", addr));
    /* X-Forwarded-For: the last entry, the one the proxy appended */
    assert_true(sottod_source_xff_last("203.0.113.9, 10.0.0.1,198.51.100.7", addr));
    assert_true(sottod_source_parse("198.51.100.7", other));
    assert_memory_equal(addr, other, 16);
    assert_true(sottod_source_xff_last("2001:db8::5", addr));
    assert_false(sottod_source_xff_last("198.51.100.7, unknown", addr));
    assert_false(sottod_source_xff_last(NULL, addr));
}

/* ---- a real sottod ------------------------------------------------------------------------ */

typedef struct tally {
    int ok, limited, other;
    uint64_t retry_ms; /* of the last refusal */
    char error[160];   /* of the last refusal */
} tally;

/* n registration attempts from src (a loopback address, NULL = default)
 * with X-Forwarded-For xff (NULL = none), each on a fresh connection with
 * a fresh name PREFIX-i. */
static tally attempts(const tc_server *s, const char *src, const char *xff, const char *prefix,
                      int n)
{
    tally t;

    memset(&t, 0, sizeof(t));
    assert_int_equal(tc_set_origin(src, xff), 0);
    for (int i = 0; i < n; i++) {
        char name[32];
        tc_device d;
        tc_conn *c = tc_connect(s);
        int st;

        assert_non_null(c);
        snprintf(name, sizeof(name), "%s%d", prefix, i);
        tc_device_new(&d, name);
        st = tc_register(c, &d, NULL);
        if (st == OK) {
            t.ok++;
        } else if (st == LIMITED) {
            t.limited++;
            t.retry_ms = c->last_retry_after_ms;
            snprintf(t.error, sizeof(t.error), "%s", c->last_error);
        } else {
            t.other++;
        }
        tc_close(c);
        tc_device_wipe(&d);
    }
    assert_int_equal(tc_set_origin(NULL, NULL), 0);
    print_message("  from %-10s xff %-32s: %2d registered, %2d rate limited%s%s%s\n",
                  src != NULL ? src : "127.0.0.1", xff != NULL ? xff : "-", t.ok, t.limited,
                  t.limited ? " (\"" : "", t.limited ? t.error : "", t.limited ? "\")" : "");
    return t;
}

/* The control: without per-source limits (only the server-wide bucket, as
 * before issue 12's limits) one source in a loop takes every registration
 * and nobody else can register. */
static void test_without_source_limits(void **state)
{
    tc_server *s = *state;
    static const char *const sets[] = {"rate_register_source_burst=1000000",
                                       "rate_register_prefix_burst=1000000",
                                       "rate_register_per_min=1", "rate_register_burst=12", NULL};
    tally t;

    assert_int_equal(tc_server_start(s, sets), 0);
    t = attempts(s, "127.0.0.1", NULL, "loopa", 20);
    assert_int_equal(t.ok, 12);
    assert_int_equal(t.limited, 8);
    t = attempts(s, "127.0.1.1", NULL, "loopc", 3);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.limited, 3);
    assert_non_null(strstr(t.error, "on this server"));
    assert_int_equal(tc_server_stop(s), 0);
}

static void test_sources_capped_others_register(void **state)
{
    tc_server *s = *state;
    static const char *const sets[] = {"rate_register_source_per_min=1",
                                       "rate_register_source_burst=5",
                                       "rate_register_prefix_per_min=1",
                                       "rate_register_prefix_burst=8",
                                       "rate_register_per_min=1",
                                       "rate_register_burst=12",
                                       NULL};
    tally t;

    assert_int_equal(tc_server_start(s, sets), 0);
    /* one source in a loop: capped at its burst */
    t = attempts(s, "127.0.0.1", NULL, "loopa", 20);
    assert_int_equal(t.ok, 5);
    assert_int_equal(t.limited, 15);
    assert_int_equal(t.other, 0);
    assert_non_null(strstr(t.error, "this address"));
    assert_true(t.retry_ms > 1000 && t.retry_ms <= 60001);
    /* X-Forwarded-For is not trusted without register_proxy */
    t = attempts(s, "127.0.0.1", "192.0.2.77", "xffa", 3);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.limited, 3);
    /* another address of the same /24: what is left of the prefix's 8 */
    t = attempts(s, "127.0.0.2", NULL, "loopb", 20);
    assert_int_equal(t.ok, 3);
    assert_int_equal(t.limited, 17);
    assert_non_null(strstr(t.error, "this network"));
    /* another /24 still registers: the 35 refusals above took no token of
     * the server-wide 12; it gets the 4 left, then the server-wide limit */
    t = attempts(s, "127.0.1.1", NULL, "loopc", 6);
    assert_int_equal(t.ok, 4);
    assert_int_equal(t.limited, 2);
    assert_non_null(strstr(t.error, "on this server"));
    t = attempts(s, "127.0.2.1", NULL, "loopd", 1);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.limited, 1);
    assert_int_equal(tc_server_stop(s), 0);
}

/* Before login a restored device may fetch a device list (docs/api.md); it
 * takes a registration token. Those fetches are limited per source too: a
 * source fetching in a loop cannot empty the server-wide bucket and so
 * stop everyone else from registering. */
static void test_prelogin_list_fetches(void **state)
{
    tc_server *s = *state;
    static const char *const sets[] = {"rate_register_source_per_min=1",
                                       "rate_register_source_burst=5",
                                       "rate_register_prefix_per_min=1",
                                       "rate_register_prefix_burst=100",
                                       "rate_register_per_min=1",
                                       "rate_register_burst=12",
                                       NULL};
    int allowed = 0, limited = 0;
    tally t;
    tc_conn *c;

    assert_int_equal(tc_server_start(s, sets), 0);
    assert_int_equal(tc_set_origin("127.0.0.1", NULL), 0);
    c = tc_connect(s);
    assert_non_null(c);
    for (int i = 0; i < 12; i++) {
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__GetDeviceListRequest rq = SOTTO__API__GET_DEVICE_LIST_REQUEST__INIT;
        tc_sframe *r;

        rq.username = (char *)"nobody";
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_DEVICE_LIST;
        f.get_device_list = &rq;
        r = tc_call(c, &f, 10000);
        assert_non_null(r);
        if (r->status == LIMITED) {
            limited++;
            assert_non_null(strstr(r->error, "this address"));
        } else {
            assert_int_equal(r->status, SOTTO__API__STATUS__STATUS_NOT_FOUND);
            allowed++;
        }
        tc_free(r);
    }
    tc_close(c);
    assert_int_equal(tc_set_origin(NULL, NULL), 0);
    print_message("  12 pre-login device list fetches from 127.0.0.1: %d answered, %d rate "
                  "limited\n",
                  allowed, limited);
    assert_int_equal(allowed, 5);
    assert_int_equal(limited, 7);
    /* another source still registers (7 of the server-wide 12 are left) */
    t = attempts(s, "127.0.1.1", NULL, "after", 1);
    assert_int_equal(t.ok, 1);
    assert_int_equal(tc_server_stop(s), 0);
}

static void test_behind_trusted_proxy(void **state)
{
    tc_server *s = *state;
    static const char *const sets[] = {"register_proxy=127.0.0.1",
                                       "rate_register_source_per_min=1",
                                       "rate_register_source_burst=2",
                                       "rate_register_prefix_per_min=1",
                                       "rate_register_prefix_burst=3",
                                       "rate_register_burst=1000",
                                       NULL};
    tally t;

    assert_int_equal(tc_server_start(s, sets), 0);
    t = attempts(s, NULL, "203.0.113.5, 198.51.100.7", "pxa", 4);
    assert_int_equal(t.ok, 2);
    assert_int_equal(t.limited, 2);
    assert_non_null(strstr(t.error, "this address"));
    /* what a client writes in front of the proxy's entry changes nothing */
    t = attempts(s, NULL, "192.0.2.1, 198.51.100.7", "pxb", 2);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.limited, 2);
    /* the same /24 behind the proxy: one left of the prefix's 3 */
    t = attempts(s, NULL, "198.51.100.8", "pxc", 3);
    assert_int_equal(t.ok, 1);
    assert_int_equal(t.limited, 2);
    assert_non_null(strstr(t.error, "this network"));
    /* other clients of the proxy, IPv4 and IPv6, still register */
    t = attempts(s, NULL, "198.51.101.7", "pxd", 1);
    assert_int_equal(t.ok, 1);
    t = attempts(s, NULL, "2001:db8:1::1", "pxe", 2);
    assert_int_equal(t.ok, 2);
    /* a connection that is not from the proxy: its own address (127.0.0.2) */
    t = attempts(s, "127.0.0.2", "198.51.100.7", "pxf", 1);
    assert_int_equal(t.ok, 1);
    assert_int_equal(tc_server_stop(s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_bounded_lru),
        cmocka_unit_test(test_source_keys),
        cmocka_unit_test_setup_teardown(test_without_source_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sources_capped_others_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prelogin_list_fetches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_behind_trusted_proxy, setup, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
