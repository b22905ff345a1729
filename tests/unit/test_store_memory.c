/* The in-memory store: every interface of sotto/store.h and its policies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sotto/memory_store.h"
#include "test_store_common.h"

typedef struct fixture {
    sotto_key_pair identity;
    sotto_memory_store *ms;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || sotto_init() != SOTTO_OK ||
        sotto_identity_key_pair_generate(&f->identity) != SOTTO_OK ||
        sotto_memory_store_new(&f->identity, 4242, &f->ms) != SOTTO_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sotto_memory_store_free(f->ms);
    sotto_key_pair_wipe(&f->identity);
    free(f);
    return 0;
}

static void test_sessions(void **state)
{
    fixture *f = *state;
    tsc_sessions(sotto_memory_store_protocol(f->ms));
    assert_int_equal(sotto_memory_store_session_count(f->ms), 4);
}

static void test_prekeys(void **state)
{
    fixture *f = *state;
    tsc_prekeys(sotto_memory_store_protocol(f->ms));
    assert_int_equal(sotto_memory_store_prekey_count(f->ms), 2);
}

static void test_signed_prekeys(void **state)
{
    fixture *f = *state;
    tsc_signed_prekeys(sotto_memory_store_protocol(f->ms), &f->identity);
}

static void test_identities(void **state)
{
    fixture *f = *state;
    tsc_identities(sotto_memory_store_protocol(f->ms), &f->identity, 4242);
}

static void test_sender_keys(void **state)
{
    fixture *f = *state;
    tsc_sender_keys(sotto_memory_store_protocol(f->ms));
}

/* Many entries: the tables grow and every entry stays reachable. */
static void test_many_entries(void **state)
{
    fixture *f = *state;
    sotto_session_store *ss = &sotto_memory_store_protocol(f->ms)->session;
    char name[32];
    uint8_t rec[8];
    for (uint32_t i = 0; i < 3000; i++) {
        sotto_address a = {name, (size_t)snprintf(name, sizeof name, "user%u", i % 1000), i};
        memcpy(rec, &i, sizeof i);
        memcpy(rec + 4, &i, sizeof i);
        assert_int_equal(ss->store(ss->user_data, &a, rec, sizeof rec), SOTTO_OK);
    }
    assert_int_equal(sotto_memory_store_session_count(f->ms), 3000);
    for (uint32_t i = 0; i < 3000; i++) {
        sotto_address a = {name, (size_t)snprintf(name, sizeof name, "user%u", i % 1000), i};
        uint8_t *got = NULL;
        size_t len = 0;
        assert_int_equal(ss->load(ss->user_data, &a, &got, &len), SOTTO_OK);
        assert_int_equal(len, sizeof rec);
        assert_memory_equal(got, &i, sizeof i);
        free(got);
    }
    uint32_t *ids = NULL;
    size_t count = 0;
    assert_int_equal(ss->device_ids(ss->user_data, "user7", 5, &ids, &count), SOTTO_OK);
    assert_int_equal(count, 3);
    assert_int_equal(ids[0], 7);
    assert_int_equal(ids[1], 1007);
    assert_int_equal(ids[2], 2007);
    free(ids);
}

static void test_new_arguments(void **state)
{
    fixture *f = *state;
    sotto_memory_store *ms = NULL;
    assert_int_equal(sotto_memory_store_new(NULL, 1, &ms), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_memory_store_new(&f->identity, 1, NULL), SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(sotto_memory_store_protocol(NULL));
    sotto_memory_store_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_prekeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
