/*
 * tests/unit/test_review_group.c -- misuse resistance of the sender-key API
 * (review R1).
 *
 * A sender-key record holds either our own sender key (states with a signing
 * private key, under (group, our address)) or a member's (received states,
 * under (group, their address)). Before this review an SKDM processed under
 * our own name was accepted: one carrying our key id (public in every group
 * message we send) with another signing key silently replaced our own
 * sending state, and any other made a received state the newest, so our
 * next group message failed with SOTTO_ERR_NO_SIGNING_KEY. Whoever could get
 * an SKDM processed under the wrong name (an application bug, or a peer
 * when the application takes the name from message content) could do it.
 * Now sotto_group_process_distribution() refuses a record that holds an own
 * state with SOTTO_ERR_INVALID_ARGUMENT and changes nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "sotto/group.h"
#include "sotto/memory_store.h"

static const uint8_t gid[] = {'r', 'e', 'v'};

typedef struct dev {
    sotto_key_pair identity;
    sotto_memory_store *ms;
    const sotto_sender_key_store *sk;
    sotto_sender_key_name name; /* (gid, this device) */
} dev;

static void dev_init(dev *d, const char *user)
{
    assert_int_equal(sotto_init(), SOTTO_OK);
    assert_int_equal(sotto_identity_key_pair_generate(&d->identity), SOTTO_OK);
    assert_int_equal(sotto_memory_store_new(&d->identity, 1, &d->ms), SOTTO_OK);
    d->sk = &sotto_memory_store_protocol(d->ms)->sender_key;
    d->name.group_id = gid;
    d->name.group_id_len = sizeof gid;
    d->name.sender.name = user;
    d->name.sender.name_len = strlen(user);
    d->name.sender.device_id = 1;
}

static void dev_free(dev *d)
{
    sotto_memory_store_free(d->ms);
    sotto_key_pair_wipe(&d->identity);
}

static uint8_t *record_of(const dev *d, const sotto_sender_key_name *n, size_t *len)
{
    uint8_t *r = NULL;
    assert_int_equal(d->sk->load(d->sk->user_data, n, &r, len), SOTTO_OK);
    return r;
}

static void test_skdm_under_own_name_refused(void **state)
{
    (void)state;
    dev alice, bob;
    uint8_t *own = NULL, *other = NULL, *forged = NULL, *msg = NULL, *pt = NULL;
    size_t own_len = 0, other_len = 0, forged_len = 0, msg_len = 0, pt_len = 0;
    sotto_sender_key_distribution d;

    dev_init(&alice, "alice");
    dev_init(&bob, "bob");
    assert_int_equal(sotto_group_create_distribution(alice.sk, &alice.name, &own, &own_len),
                     SOTTO_OK);
    assert_int_equal(sotto_group_create_distribution(bob.sk, &bob.name, &other, &other_len),
                     SOTTO_OK);

    /* An SKDM with Alice's key id and someone else's signing key. */
    assert_int_equal(sotto_sender_key_distribution_decode(&d, own, own_len), SOTTO_OK);
    sotto_key_pair k;
    assert_int_equal(sotto_key_pair_generate(&k), SOTTO_OK);
    d.signing_key = k.pub;
    sotto_key_pair_wipe(&k);
    assert_int_equal(sotto_sender_key_distribution_encode(&d, &forged, &forged_len), SOTTO_OK);

    size_t before_len, after_len;
    uint8_t *before = record_of(&alice, &alice.name, &before_len);
    const uint8_t *skdms[] = {forged, other, own};
    const size_t lens[] = {forged_len, other_len, own_len};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sotto_group_process_distribution(alice.sk, &alice.name, skdms[i], lens[i]),
                         SOTTO_ERR_INVALID_ARGUMENT);
        uint8_t *after = record_of(&alice, &alice.name, &after_len);
        assert_int_equal(after_len, before_len);
        assert_memory_equal(after, before, before_len);
        sodium_memzero(after, after_len);
        free(after);
    }

    /* Alice still sends, and Bob (who got her real SKDM) still reads. */
    assert_int_equal(sotto_group_process_distribution(bob.sk, &alice.name, own, own_len), SOTTO_OK);
    assert_int_equal(
        sotto_group_encrypt(alice.sk, &alice.name, (const uint8_t *)"still me", 8, &msg, &msg_len),
        SOTTO_OK);
    assert_int_equal(sotto_group_decrypt(bob.sk, &alice.name, msg, msg_len, &pt, &pt_len),
                     SOTTO_OK);
    assert_int_equal(pt_len, 8);
    assert_memory_equal(pt, "still me", 8);

    sodium_memzero(before, before_len);
    free(before);
    sodium_memzero(&d, sizeof d);
    sodium_memzero(own, own_len);
    sodium_memzero(other, other_len);
    sodium_memzero(forged, forged_len);
    free(own);
    free(other);
    free(forged);
    free(msg);
    free(pt);
    dev_free(&alice);
    dev_free(&bob);
}

/* The same SKDM processed twice under a member's name stays fine (the
 * refusal is only for records holding our own key). */
static void test_member_record_unaffected(void **state)
{
    (void)state;
    dev alice, bob;
    uint8_t *skdm = NULL;
    size_t len = 0;

    dev_init(&alice, "alice");
    dev_init(&bob, "bob");
    assert_int_equal(sotto_group_create_distribution(alice.sk, &alice.name, &skdm, &len), SOTTO_OK);
    assert_int_equal(sotto_group_process_distribution(bob.sk, &alice.name, skdm, len), SOTTO_OK);
    assert_int_equal(sotto_group_process_distribution(bob.sk, &alice.name, skdm, len), SOTTO_OK);
    sodium_memzero(skdm, len);
    free(skdm);
    dev_free(&alice);
    dev_free(&bob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skdm_under_own_name_refused),
        cmocka_unit_test(test_member_record_unaffected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
