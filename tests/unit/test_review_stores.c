/*
 * tests/unit/test_review_stores.c -- misuse resistance of the provided
 * stores (review R1).
 *
 * A one-time prekey is used at most once. Before this review both stores
 * accepted storing the *same* key again under an id after it had been
 * removed (consumed by a PreKey message), which silently brought a used
 * one-time prekey back: an application that re-stores its generated batch
 * (after a crash, from a backup list, by retrying an upload) would let a
 * second session be built on the same one-time prekey. Now a consumed id is
 * refused for every key, the same one included (SOTTO_ERR_STORE), in the
 * memory and the SQLite store, also across a reopen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sotto/sqlite_store.h"
#include "test_session_store_helper.h"

static void consumed_prekey_refused(sotto_protocol_store *ps)
{
    sotto_prekey pk, got;

    assert_int_equal(sotto_prekeys_generate(&pk, 41, 1), SOTTO_OK); /* id 42 */
    assert_int_equal(ps->prekey.store(ps->prekey.user_data, &pk), SOTTO_OK);
    /* Storing it again while it is held stays idempotent. */
    assert_int_equal(ps->prekey.store(ps->prekey.user_data, &pk), SOTTO_OK);
    assert_int_equal(ps->prekey.remove(ps->prekey.user_data, pk.id), SOTTO_OK);
    /* Consumed: the same key is not brought back. */
    assert_int_equal(ps->prekey.store(ps->prekey.user_data, &pk), SOTTO_ERR_STORE);
    assert_int_equal(ps->prekey.load(ps->prekey.user_data, pk.id, &got), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(ps->prekey.remove(ps->prekey.user_data, pk.id), SOTTO_ERR_NOT_FOUND);
    sodium_memzero(&pk, sizeof pk);
    sodium_memzero(&got, sizeof got);
}

static void test_memory_store_consumed_prekey(void **state)
{
    (void)state;
    party p;
    party_init(&p, "pat", 1);
    consumed_prekey_refused(p.ps);
    assert_int_equal(sotto_memory_store_prekey_count(p.ms), 0);
    party_free(&p);
}

static void test_sqlite_store_consumed_prekey(void **state)
{
    (void)state;
    char path[] = "/tmp/sotto-review-XXXXXX";
    char db[64];
    int fd = mkstemp(path);
    sotto_sqlite_store *st = NULL;
    sotto_key_pair id;
    sotto_prekey pk;

    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    snprintf(db, sizeof db, "%s.db", path);
    assert_int_equal(sotto_init(), SOTTO_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&id), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_open(db, &st), SOTTO_OK);
    assert_int_equal(sotto_sqlite_store_set_local_identity(st, &id, 5), SOTTO_OK);
    consumed_prekey_refused(sotto_sqlite_store_protocol(st));
    size_t n = 99;
    assert_int_equal(sotto_sqlite_store_prekey_count(st, &n), SOTTO_OK);
    assert_int_equal(n, 0);

    /* After a reopen the consumed id is still refused. */
    sotto_sqlite_store_close(st);
    assert_int_equal(sotto_sqlite_store_open(db, &st), SOTTO_OK);
    sotto_protocol_store *ps = sotto_sqlite_store_protocol(st);
    assert_int_equal(sotto_prekeys_generate(&pk, 41, 1), SOTTO_OK); /* id 42, new key */
    assert_int_equal(ps->prekey.store(ps->prekey.user_data, &pk), SOTTO_ERR_STORE);
    sotto_sqlite_store_close(st);

    sodium_memzero(&pk, sizeof pk);
    sotto_key_pair_wipe(&id);
    unlink(db);
    char side[80];
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
}

/*
 * End to end: Bob's one-time prekey 100 is consumed by Alice's PreKey
 * message; Bob's application then re-stores the prekey it generated (it
 * kept the batch). Carol got the same bundle (a replaying or careless
 * server): her session must not be built on the consumed prekey.
 */
static void test_one_time_prekey_used_once(void **state)
{
    (void)state;
    party a, b, c;
    sotto_prekey_bundle bundle;
    sotto_prekey kept;

    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_init(&c, "carol", 1);
    party_bundle_id(&b, true, 100, &bundle);
    (void)party_start; /* helper unused here */
    assert_int_equal(b.ps->prekey.load(b.ps->prekey.user_data, 100, &kept), SOTTO_OK);

    assert_int_equal(sotto_session_process_bundle(a.ps, &b.addr, &bundle), SOTTO_OK);
    wire_msg m = party_encrypt(&a, &b, "from alice");
    assert_int_equal(party_decrypt(&b, &a, &m, "from alice"), SOTTO_OK);
    assert_int_equal(sotto_memory_store_prekey_count(b.ms), 0);

    assert_int_equal(b.ps->prekey.store(b.ps->prekey.user_data, &kept), SOTTO_ERR_STORE);

    assert_int_equal(sotto_session_process_bundle(c.ps, &b.addr, &bundle), SOTTO_OK);
    wire_msg mc = party_encrypt(&c, &b, "from carol");
    expect_reject_unchanged(&b, &c, &mc, SOTTO_ERR_UNKNOWN_PREKEY_ID);

    sodium_memzero(&kept, sizeof kept);
    wire_free(&m);
    wire_free(&mc);
    party_free(&a);
    party_free(&b);
    party_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_store_consumed_prekey),
        cmocka_unit_test(test_sqlite_store_consumed_prekey),
        cmocka_unit_test(test_one_time_prekey_used_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
