/*
 * tests/unit/test_store_common.h -- conformance checks every implementation
 * of the sotto/store.h interfaces must pass (memory and SQLite stores).
 * Included by test_store_memory.c and test_store_sqlite.c after cmocka.h.
 */
#ifndef SOTTO_TEST_STORE_COMMON_H
#define SOTTO_TEST_STORE_COMMON_H

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/store.h"

static sotto_address tsc_addr(const char *name, uint32_t dev)
{
    sotto_address a = {name, strlen(name), dev};
    return a;
}

static void tsc_fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static void tsc_sessions(sotto_protocol_store *ps)
{
    sotto_session_store *ss = &ps->session;
    sotto_address alice1 = tsc_addr("alice", 1), alice2 = tsc_addr("alice", 2),
                  alice7 = tsc_addr("alice", 7), alic = tsc_addr("alic", 1),
                  bob1 = tsc_addr("bob", 1);
    uint8_t rec[300], *got = NULL;
    size_t got_len = 0;
    uint32_t *ids = NULL;
    size_t count = 99;

    assert_int_equal(ss->load(ss->user_data, &alice1, &got, &got_len), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(ss->device_ids(ss->user_data, "alice", 5, &ids, &count), SOTTO_OK);
    assert_int_equal(count, 0);
    assert_null(ids);

    tsc_fill(rec, sizeof rec, 1);
    assert_int_equal(ss->store(ss->user_data, &alice1, rec, 100), SOTTO_OK);
    tsc_fill(rec, sizeof rec, 2);
    assert_int_equal(ss->store(ss->user_data, &alice7, rec, 50), SOTTO_OK);
    assert_int_equal(ss->store(ss->user_data, &alice2, rec, 60), SOTTO_OK);
    assert_int_equal(ss->store(ss->user_data, &alic, rec, 10), SOTTO_OK);
    assert_int_equal(ss->store(ss->user_data, &bob1, rec, 10), SOTTO_OK);

    /* round trip */
    assert_int_equal(ss->load(ss->user_data, &alice1, &got, &got_len), SOTTO_OK);
    tsc_fill(rec, sizeof rec, 1);
    assert_int_equal(got_len, 100);
    assert_memory_equal(got, rec, 100);
    free(got);
    got = NULL;

    /* replace with a longer, then a shorter record */
    tsc_fill(rec, sizeof rec, 9);
    assert_int_equal(ss->store(ss->user_data, &alice1, rec, 300), SOTTO_OK);
    assert_int_equal(ss->load(ss->user_data, &alice1, &got, &got_len), SOTTO_OK);
    assert_int_equal(got_len, 300);
    assert_memory_equal(got, rec, 300);
    free(got);
    got = NULL;
    tsc_fill(rec, sizeof rec, 10);
    assert_int_equal(ss->store(ss->user_data, &alice1, rec, 3), SOTTO_OK);
    assert_int_equal(ss->load(ss->user_data, &alice1, &got, &got_len), SOTTO_OK);
    assert_int_equal(got_len, 3);
    assert_memory_equal(got, rec, 3);
    free(got);
    got = NULL;

    /* device list: only "alice", ascending */
    assert_int_equal(ss->device_ids(ss->user_data, "alice", 5, &ids, &count), SOTTO_OK);
    assert_int_equal(count, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 7);
    free(ids);
    ids = NULL;

    /* remove */
    assert_int_equal(ss->remove(ss->user_data, &alice2), SOTTO_OK);
    assert_int_equal(ss->load(ss->user_data, &alice2, &got, &got_len), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(ss->remove(ss->user_data, &alice2), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(ss->device_ids(ss->user_data, "alice", 5, &ids, &count), SOTTO_OK);
    assert_int_equal(count, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 7);
    free(ids);

    /* hostile arguments */
    char longname[SOTTO_MAX_NAME_BYTES + 1];
    memset(longname, 'x', sizeof longname);
    sotto_address too_long = {longname, sizeof longname, 1};
    assert_int_equal(ss->store(ss->user_data, &too_long, rec, 3), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(ss->store(ss->user_data, &bob1, NULL, 3), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(ss->store(ss->user_data, &bob1, rec, 0), SOTTO_ERR_INVALID_ARGUMENT);
}

static void tsc_prekeys(sotto_protocol_store *ps)
{
    sotto_prekey_store *p = &ps->prekey;
    sotto_prekey pk[3], got;

    assert_int_equal(sotto_prekeys_generate(pk, 10, 3), SOTTO_OK);
    assert_int_equal(p->load(p->user_data, pk[0].id, &got), SOTTO_ERR_NOT_FOUND);
    for (int i = 0; i < 3; i++)
        assert_int_equal(p->store(p->user_data, &pk[i]), SOTTO_OK);
    for (int i = 0; i < 3; i++) {
        memset(&got, 0, sizeof got);
        assert_int_equal(p->load(p->user_data, pk[i].id, &got), SOTTO_OK);
        assert_int_equal(got.id, pk[i].id);
        assert_memory_equal(got.key.pub.bytes, pk[i].key.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
        assert_memory_equal(got.key.priv, pk[i].key.priv, SOTTO_PRIVATE_KEY_BYTES);
    }
    /* the same key again is fine; a different key under a used id is refused */
    assert_int_equal(p->store(p->user_data, &pk[0]), SOTTO_OK);
    sotto_prekey other = pk[1];
    other.id = pk[0].id;
    assert_int_equal(p->store(p->user_data, &other), SOTTO_ERR_STORE);
    assert_int_equal(p->load(p->user_data, pk[0].id, &got), SOTTO_OK);
    assert_memory_equal(got.key.priv, pk[0].key.priv, SOTTO_PRIVATE_KEY_BYTES);

    /* removed: gone, and its id still cannot take another key */
    assert_int_equal(p->remove(p->user_data, pk[0].id), SOTTO_OK);
    assert_int_equal(p->load(p->user_data, pk[0].id, &got), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(p->remove(p->user_data, pk[0].id), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(p->store(p->user_data, &other), SOTTO_ERR_STORE);
    assert_int_equal(p->load(p->user_data, pk[1].id, &got), SOTTO_OK);
    sodium_memzero(pk, sizeof pk);
    sodium_memzero(&got, sizeof got);
    sodium_memzero(&other, sizeof other);
}

static void tsc_signed_prekeys(sotto_protocol_store *ps, const sotto_key_pair *identity)
{
    sotto_signed_prekey_store *p = &ps->signed_prekey;
    sotto_signed_prekey a, b, got;

    assert_int_equal(sotto_signed_prekey_generate(&a, identity, 5, 1700000000123ull), SOTTO_OK);
    assert_int_equal(sotto_signed_prekey_generate(&b, identity, 6, 1700000000456ull), SOTTO_OK);
    assert_int_equal(p->load(p->user_data, 5, &got), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(p->store(p->user_data, &a), SOTTO_OK);
    assert_int_equal(p->store(p->user_data, &b), SOTTO_OK);
    assert_int_equal(p->load(p->user_data, 5, &got), SOTTO_OK);
    assert_int_equal(got.id, 5);
    assert_memory_equal(got.key.pub.bytes, a.key.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_memory_equal(got.key.priv, a.key.priv, SOTTO_PRIVATE_KEY_BYTES);
    assert_memory_equal(got.signature, a.signature, SOTTO_SIGNATURE_BYTES);
    assert_true(got.timestamp_ms == 1700000000123ull);
    assert_int_equal(p->remove(p->user_data, 5), SOTTO_OK);
    assert_int_equal(p->load(p->user_data, 5, &got), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(p->load(p->user_data, 6, &got), SOTTO_OK);
    assert_true(got.timestamp_ms == 1700000000456ull);
    assert_memory_equal(got.signature, b.signature, SOTTO_SIGNATURE_BYTES);
    sodium_memzero(&a, sizeof a);
    sodium_memzero(&b, sizeof b);
    sodium_memzero(&got, sizeof got);
}

static void tsc_identities(sotto_protocol_store *ps, const sotto_key_pair *identity,
                           uint32_t reg_id)
{
    sotto_identity_store *is = &ps->identity;
    sotto_key_pair kp;
    sotto_key_pair k1, k2;
    sotto_public_key got;
    uint32_t reg = 0;
    sotto_address carol = tsc_addr("carol", 1), carol2 = tsc_addr("carol", 2);

    assert_int_equal(is->get_identity_key_pair(is->user_data, &kp), SOTTO_OK);
    assert_memory_equal(kp.pub.bytes, identity->pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_memory_equal(kp.priv, identity->priv, SOTTO_PRIVATE_KEY_BYTES);
    assert_int_equal(is->get_local_registration_id(is->user_data, &reg), SOTTO_OK);
    assert_int_equal(reg, reg_id);

    assert_int_equal(sotto_key_pair_generate(&k1), SOTTO_OK);
    assert_int_equal(sotto_key_pair_generate(&k2), SOTTO_OK);

    /* first use: trusted, nothing saved yet */
    assert_int_equal(is->get(is->user_data, &carol, &got), SOTTO_ERR_NOT_FOUND);
    assert_int_equal(is->is_trusted(is->user_data, &carol, &k1.pub), SOTTO_TRUSTED);
    assert_int_equal(is->save(is->user_data, &carol, &k1.pub), SOTTO_OK);
    assert_int_equal(is->get(is->user_data, &carol, &got), SOTTO_OK);
    assert_memory_equal(got.bytes, k1.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    assert_int_equal(is->is_trusted(is->user_data, &carol, &k1.pub), SOTTO_TRUSTED);

    /* changed key: untrusted until saved */
    assert_int_equal(is->is_trusted(is->user_data, &carol, &k2.pub), SOTTO_UNTRUSTED);
    assert_int_equal(is->is_trusted(is->user_data, &carol2, &k2.pub), SOTTO_TRUSTED);
    assert_int_equal(is->save(is->user_data, &carol, &k2.pub), SOTTO_OK);
    assert_int_equal(is->is_trusted(is->user_data, &carol, &k2.pub), SOTTO_TRUSTED);
    assert_int_equal(is->is_trusted(is->user_data, &carol, &k1.pub), SOTTO_UNTRUSTED);
    assert_int_equal(is->get(is->user_data, &carol, &got), SOTTO_OK);
    assert_memory_equal(got.bytes, k2.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);

    sotto_public_key bad = k1.pub;
    bad.bytes[0] = 0x06;
    assert_int_equal(is->save(is->user_data, &carol2, &bad), SOTTO_ERR_INVALID_ARGUMENT);
    sotto_key_pair_wipe(&kp);
    sotto_key_pair_wipe(&k1);
    sotto_key_pair_wipe(&k2);
}

static void tsc_sender_keys(sotto_protocol_store *ps)
{
    sotto_sender_key_store *sk = &ps->sender_key;
    static const uint8_t g1[] = {0x01, 0x00, 0xff, 0x10}, g2[] = {0x01, 0x00, 0xff, 0x11};
    sotto_sender_key_name n1 = {g1, sizeof g1, {"dave", 4, 1}};
    sotto_sender_key_name n2 = {g2, sizeof g2, {"dave", 4, 1}};
    sotto_sender_key_name n3 = {g1, sizeof g1, {"dave", 4, 2}};
    uint8_t rec[200], *got = NULL;
    size_t got_len = 0;

    assert_int_equal(sk->load(sk->user_data, &n1, &got, &got_len), SOTTO_ERR_NOT_FOUND);
    tsc_fill(rec, sizeof rec, 3);
    assert_int_equal(sk->store(sk->user_data, &n1, rec, 200), SOTTO_OK);
    tsc_fill(rec, sizeof rec, 4);
    assert_int_equal(sk->store(sk->user_data, &n2, rec, 20), SOTTO_OK);
    assert_int_equal(sk->load(sk->user_data, &n3, &got, &got_len), SOTTO_ERR_NOT_FOUND);

    assert_int_equal(sk->load(sk->user_data, &n1, &got, &got_len), SOTTO_OK);
    tsc_fill(rec, sizeof rec, 3);
    assert_int_equal(got_len, 200);
    assert_memory_equal(got, rec, 200);
    free(got);
    assert_int_equal(sk->load(sk->user_data, &n2, &got, &got_len), SOTTO_OK);
    tsc_fill(rec, sizeof rec, 4);
    assert_int_equal(got_len, 20);
    assert_memory_equal(got, rec, 20);
    free(got);

    tsc_fill(rec, sizeof rec, 5);
    assert_int_equal(sk->store(sk->user_data, &n1, rec, 77), SOTTO_OK);
    assert_int_equal(sk->load(sk->user_data, &n1, &got, &got_len), SOTTO_OK);
    assert_int_equal(got_len, 77);
    assert_memory_equal(got, rec, 77);
    free(got);
}

#endif
