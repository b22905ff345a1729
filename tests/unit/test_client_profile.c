/*
 * tests/unit/test_client_profile.c -- profile keys without a server
 * (client/core/profile.c, issue 11): our key rides only on messages to
 * accepted conversations (never a message request), none without a
 * profile; a contact's key is stored (a fetch becomes due when it changes)
 * and a FLAG_PROFILE_KEY_UPDATE message is handled (nothing shown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "everyday.h"
#include "internal.h"

static char tmpdir[256];

static sc_client *open_account(const char *name)
{
    sc_options o;
    sc_client *c = NULL;
    char err[256];

    memset(&o, 0, sizeof o);
    o.account = name;
    o.data_home = tmpdir;
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_int_equal(sc_cfg_set_text(c, "username", name), SC_OK);
    assert_int_equal(sc_cfg_set_u64(c, "device_id", 1), SC_OK);
    sc_close(c);
    assert_int_equal(sc_open(&c, &o, err, sizeof err), SC_OK);
    assert_non_null(c->username);
    return c;
}

static void test_decorate_only_accepted(void **state)
{
    sc_client *c = open_account("alice");
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    uint8_t key[32];
    sc_keep keep;
    (void)state;

    memset(&keep, 0, sizeof keep);

    /* no profile set: no key anywhere */
    assert_int_equal(sc_requests_accept_conv(c, "contact", "bob"), SC_OK);
    assert_int_equal(sc_profile_decorate(c, "contact", "bob", &dm, &keep), SC_OK);
    assert_int_equal(dm.profile_key.len, 0);

    randombytes_buf(key, sizeof key);
    assert_int_equal(sc_cfg_set_blob(c, "profile_key", key, sizeof key), SC_OK);
    /* carol's conversation was never accepted: a request, no key */
    assert_int_equal(sc_profile_decorate(c, "contact", "carol", &dm, &keep), SC_OK);
    assert_int_equal(dm.profile_key.len, 0);
    assert_null(dm.profile_key.data);
    /* a group never accepted either */
    assert_int_equal(
        sc_profile_decorate(c, "group", "00112233445566778899aabbccddeeff", &dm, &keep), SC_OK);
    assert_int_equal(dm.profile_key.len, 0);
    /* bob's is accepted: our key */
    assert_int_equal(sc_profile_decorate(c, "contact", "bob", &dm, &keep), SC_OK);
    assert_int_equal(dm.profile_key.len, 32);
    assert_memory_equal(dm.profile_key.data, key, 32);
    /* and once carol's is accepted, hers too */
    assert_int_equal(sc_requests_accept_conv(c, "contact", "carol"), SC_OK);
    memset(&dm, 0, sizeof dm);
    sotto__content__data_message__init(&dm);
    assert_int_equal(sc_profile_decorate(c, "contact", "carol", &dm, &keep), SC_OK);
    assert_int_equal(dm.profile_key.len, 32);
    sc_keep_release(&keep); /* the copies are wiped and freed */
    sc_close(c);
}

static void test_incoming_key(void **state)
{
    sc_client *c = open_account("bob");
    Sotto__Content__DataMessage dm = SOTTO__CONTENT__DATA_MESSAGE__INIT;
    sc_envelope e;
    sc_profile_row row;
    uint8_t k1[32], k2[32];
    bool handled = true;
    (void)state;

    memset(&e, 0, sizeof e);
    randombytes_buf(k1, sizeof k1);
    randombytes_buf(k2, sizeof k2);
    dm.body = (char *)"hi";
    dm.profile_key.data = k1;
    dm.profile_key.len = 32;
    assert_int_equal(sc_profile_data(c, &e, "alice", false, &dm, &handled), SC_OK);
    assert_false(handled); /* a text with a key: still shown */
    assert_int_equal(sc_profile_row_get(c, "alice", &row), SC_OK);
    assert_true(row.has_key);
    assert_memory_equal(row.key, k1, 32);
    assert_int_equal(row.fetched_ms, 0); /* a fetch is due */
    sc_profile_row_clear(&row);
    /* fetched: the same key again changes nothing */
    assert_int_equal(sc_profile_fetched(c, "alice", "Alice", NULL, NULL, 1234), SC_OK);
    assert_int_equal(sc_profile_data(c, &e, "alice", false, &dm, &handled), SC_OK);
    assert_int_equal(sc_profile_row_get(c, "alice", &row), SC_OK);
    assert_int_equal(row.fetched_ms, 1234);
    assert_string_equal(row.display_name, "Alice");
    sc_profile_row_clear(&row);
    /* a new key (key-only update message): stored, due again, nothing shown */
    dm.profile_key.data = k2;
    dm.flags = SOTTO__CONTENT__DATA_MESSAGE__FLAGS__FLAG_PROFILE_KEY_UPDATE;
    assert_int_equal(sc_profile_data(c, &e, "alice", false, &dm, &handled), SC_OK);
    assert_true(handled);
    assert_int_equal(sc_profile_row_get(c, "alice", &row), SC_OK);
    assert_memory_equal(row.key, k2, 32);
    assert_int_equal(row.fetched_ms, 0);
    sc_profile_row_clear(&row);
    /* a key of the wrong size, or our own copy, is not stored */
    dm.profile_key.len = 31;
    dm.flags = 0;
    assert_int_equal(sc_profile_data(c, &e, "mallory", false, &dm, &handled), SC_OK);
    assert_int_equal(sc_profile_row_get(c, "mallory", &row), SC_E_NOT_FOUND);
    dm.profile_key.len = 32;
    assert_int_equal(sc_profile_data(c, &e, "bob", false, &dm, &handled), SC_OK);
    assert_int_equal(sc_profile_row_get(c, "bob", &row), SC_E_NOT_FOUND);
    sc_close(c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sotto-test-profile-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decorate_only_accepted),
        cmocka_unit_test(test_incoming_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
