/*
 * tests/unit/test_session_store_helper.h -- parties for the 1:1 session
 * tests: one device = one memory store (sotto/memory_store.h) with an
 * identity, a registration id, a signed prekey and one-time prekeys.
 * Header-only (static functions), included by test_session*.c.
 * Include after <cmocka.h>.
 */
#ifndef SOTTO_TEST_SESSION_STORE_HELPER_H
#define SOTTO_TEST_SESSION_STORE_HELPER_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sotto/keys.h"
#include "sotto/memory_store.h"
#include "sotto/session.h"

typedef struct party {
    const char *name;
    sotto_address addr; /* this party's own address */
    sotto_key_pair identity;
    uint32_t registration_id;
    sotto_signed_prekey spk;
    sotto_memory_store *ms;
    sotto_protocol_store *ps;
    uint32_t next_prekey_id;
} party;

static void party_init(party *p, const char *name, uint32_t device_id)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(sotto_init(), SOTTO_OK);
    p->name = name;
    p->addr.name = name;
    p->addr.name_len = strlen(name);
    p->addr.device_id = device_id;
    assert_int_equal(sotto_identity_key_pair_generate(&p->identity), SOTTO_OK);
    assert_int_equal(sotto_registration_id_generate(&p->registration_id), SOTTO_OK);
    assert_int_equal(sotto_memory_store_new(&p->identity, p->registration_id, &p->ms), SOTTO_OK);
    p->ps = sotto_memory_store_protocol(p->ms);
    assert_int_equal(sotto_signed_prekey_generate(&p->spk, &p->identity, 7, 1700000000000ull),
                     SOTTO_OK);
    assert_int_equal(p->ps->signed_prekey.store(p->ps->signed_prekey.user_data, &p->spk), SOTTO_OK);
    p->next_prekey_id = 100;
}

static void party_free(party *p)
{
    sotto_memory_store_free(p->ms);
    sotto_key_pair_wipe(&p->identity);
    sodium_memzero(&p->spk, sizeof p->spk);
}

/* A fresh bundle of `p`; with a new one-time prekey (id given or next) if with_opk. */
static void party_bundle_id(party *p, bool with_opk, uint32_t opk_id, sotto_prekey_bundle *b)
{
    memset(b, 0, sizeof *b);
    b->registration_id = p->registration_id;
    b->device_id = p->addr.device_id;
    b->identity_key = p->identity.pub;
    b->signed_prekey_id = p->spk.id;
    b->signed_prekey = p->spk.key.pub;
    memcpy(b->signed_prekey_signature, p->spk.signature, SOTTO_SIGNATURE_BYTES);
    if (with_opk) {
        sotto_prekey pk;
        assert_int_equal(sotto_key_pair_generate(&pk.key), SOTTO_OK);
        pk.id = opk_id;
        assert_int_equal(p->ps->prekey.store(p->ps->prekey.user_data, &pk), SOTTO_OK);
        b->has_prekey = true;
        b->prekey_id = pk.id;
        b->prekey = pk.key.pub;
        sodium_memzero(&pk, sizeof pk);
    }
}

static void party_bundle(party *p, bool with_opk, sotto_prekey_bundle *b)
{
    party_bundle_id(p, with_opk, p->next_prekey_id++, b);
}

/* A wire message as a transport carries it. */
typedef struct wire_msg {
    uint8_t *data;
    size_t len;
    int type;
} wire_msg;

static void wire_free(wire_msg *m)
{
    free(m->data);
    m->data = NULL;
    m->len = 0;
}

/* `from` encrypts `text` for `to`. */
static wire_msg party_encrypt(party *from, party *to, const char *text)
{
    wire_msg m = {NULL, 0, 0};
    assert_int_equal(sotto_session_encrypt(from->ps, &to->addr, (const uint8_t *)text, strlen(text),
                                           &m.data, &m.len, &m.type),
                     SOTTO_OK);
    assert_non_null(m.data);
    return m;
}

/* `to` decrypts `m` from `from`; returns the result code, checks text on success. */
static int party_decrypt(party *to, party *from, const wire_msg *m, const char *expect)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    int rc = sotto_session_decrypt(to->ps, &from->addr, m->type, m->data, m->len, &pt, &pt_len);
    if (rc == SOTTO_OK) {
        assert_non_null(pt);
        if (expect != NULL) {
            assert_int_equal(pt_len, strlen(expect));
            assert_memory_equal(pt, expect, pt_len);
        }
        sodium_memzero(pt, pt_len);
        free(pt);
    } else {
        assert_null(pt);
        assert_int_equal(pt_len, 0);
    }
    return rc;
}

/* The stored session record bytes of `owner` for `peer` (NULL if none). */
static uint8_t *party_record(party *owner, party *peer, size_t *len)
{
    uint8_t *rec = NULL;
    *len = 0;
    int rc = owner->ps->session.load(owner->ps->session.user_data, &peer->addr, &rec, len);
    if (rc == SOTTO_ERR_NOT_FOUND)
        return NULL;
    assert_int_equal(rc, SOTTO_OK);
    return rec;
}

/* Asserts that decrypting `m` fails with `expect_rc` and leaves the record byte-identical. */
static void expect_reject_unchanged(party *to, party *from, const wire_msg *m, int expect_rc)
{
    size_t before_len, after_len;
    uint8_t *before = party_record(to, from, &before_len);
    size_t prekeys = sotto_memory_store_prekey_count(to->ms);
    size_t sessions = sotto_memory_store_session_count(to->ms);
    assert_int_equal(party_decrypt(to, from, m, NULL), expect_rc);
    uint8_t *after = party_record(to, from, &after_len);
    if (before == NULL) {
        assert_null(after);
    } else {
        assert_non_null(after);
        assert_int_equal(before_len, after_len);
        assert_memory_equal(before, after, before_len);
    }
    assert_int_equal(sotto_memory_store_prekey_count(to->ms), prekeys);
    assert_int_equal(sotto_memory_store_session_count(to->ms), sessions);
    free(before);
    free(after);
}

/* `a` starts a session with `b` from b's bundle. */
static void party_start(party *a, party *b, bool with_opk)
{
    sotto_prekey_bundle bundle;
    party_bundle(b, with_opk, &bundle);
    assert_int_equal(sotto_session_process_bundle(a->ps, &b->addr, &bundle), SOTTO_OK);
}

#endif /* SOTTO_TEST_SESSION_STORE_HELPER_H */
