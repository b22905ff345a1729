/*
 * Identity changes on 1:1 sessions (review R1, include/sotto/session.h
 * "Identity changes", docs/protocol.md "Decryption control flow"):
 * once the user accepted a new identity for an address, nothing that the
 * old identity's session (or whoever holds that old device's state) sends
 * may make the old session current again or put the old identity back in
 * the identity store; and sotto_session_encrypt never encrypts to an
 * identity that is not trusted.
 *
 * Every refusal is checked to leave the session record byte-identical and
 * the trusted identity unchanged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_session_store_helper.h"

/* The identity `owner` trusts for `peer` (must exist). */
static sotto_public_key trusted_of(party *owner, party *peer)
{
    sotto_public_key k;
    assert_int_equal(owner->ps->identity.get(owner->ps->identity.user_data, &peer->addr, &k),
                     SOTTO_OK);
    return k;
}

static sotto_public_key current_of(party *owner, party *peer)
{
    sotto_public_key k;
    assert_int_equal(sotto_session_remote_identity(owner->ps, &peer->addr, &k), SOTTO_OK);
    return k;
}

/* Rewrites the outer identityKey (field 3, 33 bytes) of a PreKey message. */
static void rewrite_outer_identity(wire_msg *m, const sotto_public_key *from,
                                   const sotto_public_key *to)
{
    assert_int_equal(m->type, SOTTO_MSG_PREKEY);
    for (size_t i = 1; i + 2 + SOTTO_PUBLIC_KEY_BYTES <= m->len; i++) {
        if (m->data[i] == 0x1a && m->data[i + 1] == SOTTO_PUBLIC_KEY_BYTES &&
            memcmp(m->data + i + 2, from->bytes, SOTTO_PUBLIC_KEY_BYTES) == 0) {
            memcpy(m->data + i + 2, to->bytes, SOTTO_PUBLIC_KEY_BYTES);
            return;
        }
    }
    fail_msg("identityKey field not found");
}

/*
 * Alice (old identity `a`) and Bob talk; `late` is a message of a's session
 * that the server holds back. Alice reinstalls (`a2`: same address, new
 * identity), Bob's user accepts a2's identity, a2's first message decrypts.
 * With `acked`, Bob replied first so `late` is a SignalMessage; otherwise
 * it is a repeated PreKey message of a's session.
 */
typedef struct scene {
    party a, a2, b;
    wire_msg late;
} scene;

static void scene_setup(scene *s, bool acked)
{
    party_init(&s->a, "alice", 1);
    party_init(&s->b, "bob", 1);
    party_start(&s->a, &s->b, true);
    wire_msg m1 = party_encrypt(&s->a, &s->b, "one");
    s->late = party_encrypt(&s->a, &s->b, "two (late)");
    assert_int_equal(party_decrypt(&s->b, &s->a, &m1, "one"), SOTTO_OK);
    if (acked) {
        wire_msg r = party_encrypt(&s->b, &s->a, "reply");
        assert_int_equal(party_decrypt(&s->a, &s->b, &r, "reply"), SOTTO_OK);
        wire_free(&r);
        wire_free(&s->late);
        s->late = party_encrypt(&s->a, &s->b, "two (late)");
        assert_int_equal(s->late.type, SOTTO_MSG_SIGNAL);
    } else {
        assert_int_equal(s->late.type, SOTTO_MSG_PREKEY);
    }
    wire_free(&m1);

    party_init(&s->a2, "alice", 1);
    party_start(&s->a2, &s->b, true);
    wire_msg m3 = party_encrypt(&s->a2, &s->b, "new device");
    expect_reject_unchanged(&s->b, &s->a2, &m3, SOTTO_ERR_UNTRUSTED_IDENTITY);
    assert_int_equal(
        s->b.ps->identity.save(s->b.ps->identity.user_data, &s->a2.addr, &s->a2.identity.pub),
        SOTTO_OK);
    assert_int_equal(party_decrypt(&s->b, &s->a2, &m3, "new device"), SOTTO_OK);
    wire_free(&m3);
}

static void scene_free(scene *s)
{
    wire_free(&s->late);
    party_free(&s->a);
    party_free(&s->a2);
    party_free(&s->b);
}

/* After the refusal: Bob still talks to the accepted identity, both ways. */
static void assert_still_new(scene *s)
{
    sotto_public_key cur = current_of(&s->b, &s->a2);
    sotto_public_key tr = trusted_of(&s->b, &s->a2);
    assert_true(sotto_public_key_equal(&cur, &s->a2.identity.pub));
    assert_true(sotto_public_key_equal(&tr, &s->a2.identity.pub));

    wire_msg nx = party_encrypt(&s->b, &s->a2, "for the new device");
    /* The old device's state cannot read it ... */
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    assert_int_not_equal(
        sotto_session_decrypt(s->a.ps, &s->b.addr, nx.type, nx.data, nx.len, &pt, &pt_len),
        SOTTO_OK);
    assert_null(pt);
    /* ... the accepted device can, and the conversation goes on. */
    assert_int_equal(party_decrypt(&s->a2, &s->b, &nx, "for the new device"), SOTTO_OK);
    for (int i = 0; i < 3; i++) {
        wire_msg x = party_encrypt(&s->a2, &s->b, "from new");
        assert_int_equal(x.type, SOTTO_MSG_SIGNAL);
        assert_int_equal(party_decrypt(&s->b, &s->a2, &x, "from new"), SOTTO_OK);
        wire_free(&x);
        wire_msg y = party_encrypt(&s->b, &s->a2, "to new");
        assert_int_equal(party_decrypt(&s->a2, &s->b, &y, "to new"), SOTTO_OK);
        wire_free(&y);
    }
    wire_free(&nx);
}

/* A late SignalMessage of the replaced session is refused (it would be
 * decrypted by the archived old state and promote it to current). */
static void test_late_signal_message_refused(void **unused)
{
    (void)unused;
    scene s;
    scene_setup(&s, true);
    expect_reject_unchanged(&s.b, &s.a, &s.late, SOTTO_ERR_UNTRUSTED_IDENTITY);
    sotto_public_key tr = trusted_of(&s.b, &s.a2);
    assert_true(sotto_public_key_equal(&tr, &s.a2.identity.pub));
    /* Refused again on replay: nothing was consumed. */
    expect_reject_unchanged(&s.b, &s.a, &s.late, SOTTO_ERR_UNTRUSTED_IDENTITY);
    assert_still_new(&s);
    scene_free(&s);
}

/* A late repeated PreKey message of the old session: as sent, its outer
 * identity is the old (now untrusted) key. */
static void test_late_prekey_message_refused(void **unused)
{
    (void)unused;
    scene s;
    scene_setup(&s, false);
    expect_reject_unchanged(&s.b, &s.a, &s.late, SOTTO_ERR_UNTRUSTED_IDENTITY);
    assert_still_new(&s);
    scene_free(&s);
}

/* The outer identityKey of a repeated PreKey message is not authenticated:
 * rewritten to the trusted new key it passes the first trust check, but the
 * decrypting state's identity differs from it: INVALID_MESSAGE, and the old
 * identity is not saved back. */
static void test_late_prekey_rewritten_identity_refused(void **unused)
{
    (void)unused;
    scene s;
    scene_setup(&s, false);
    rewrite_outer_identity(&s.late, &s.a.identity.pub, &s.a2.identity.pub);
    expect_reject_unchanged(&s.b, &s.a, &s.late, SOTTO_ERR_INVALID_MESSAGE);
    sotto_public_key tr = trusted_of(&s.b, &s.a2);
    assert_true(sotto_public_key_equal(&tr, &s.a2.identity.pub));
    assert_still_new(&s);
    scene_free(&s);
}

/* If the user goes back to the old identity (save), the late message of
 * the old session decrypts again: the refusal is the trust decision, not a
 * lost state. */
static void test_late_message_after_reaccepting_old(void **unused)
{
    (void)unused;
    scene s;
    scene_setup(&s, true);
    expect_reject_unchanged(&s.b, &s.a, &s.late, SOTTO_ERR_UNTRUSTED_IDENTITY);
    assert_int_equal(
        s.b.ps->identity.save(s.b.ps->identity.user_data, &s.a.addr, &s.a.identity.pub), SOTTO_OK);
    assert_int_equal(party_decrypt(&s.b, &s.a, &s.late, "two (late)"), SOTTO_OK);
    sotto_public_key cur = current_of(&s.b, &s.a);
    assert_true(sotto_public_key_equal(&cur, &s.a.identity.pub));
    scene_free(&s);
}

/* An honest repeated PreKey message (unacknowledged session) still works. */
static void test_repeated_prekey_message_ok(void **unused)
{
    (void)unused;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, true);
    wire_msg m1 = party_encrypt(&a, &b, "one");
    wire_msg m2 = party_encrypt(&a, &b, "two");
    assert_int_equal(m2.type, SOTTO_MSG_PREKEY);
    assert_int_equal(party_decrypt(&b, &a, &m1, "one"), SOTTO_OK);
    assert_int_equal(party_decrypt(&b, &a, &m2, "two"), SOTTO_OK);
    sotto_public_key tr = trusted_of(&b, &a);
    assert_true(sotto_public_key_equal(&tr, &a.identity.pub));
    wire_free(&m1);
    wire_free(&m2);
    party_free(&a);
    party_free(&b);
}

/* sotto_session_encrypt refuses while the current state's identity is not
 * the trusted one (the user accepted another key but no session with it
 * exists yet), storing nothing; it works again once trusted. */
static void test_encrypt_checks_trust(void **unused)
{
    (void)unused;
    party a, b, other;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_init(&other, "alice", 1);
    party_start(&a, &b, true);
    wire_msg m1 = party_encrypt(&a, &b, "one");
    assert_int_equal(party_decrypt(&b, &a, &m1, "one"), SOTTO_OK);
    wire_free(&m1);

    assert_int_equal(b.ps->identity.save(b.ps->identity.user_data, &a.addr, &other.identity.pub),
                     SOTTO_OK);
    size_t before_len, after_len;
    uint8_t *before = party_record(&b, &a, &before_len);
    uint8_t *msg = (uint8_t *)"x";
    size_t msg_len = 99;
    int type = 99;
    assert_int_equal(
        sotto_session_encrypt(b.ps, &a.addr, (const uint8_t *)"hi", 2, &msg, &msg_len, &type),
        SOTTO_ERR_UNTRUSTED_IDENTITY);
    assert_null(msg);
    assert_int_equal(msg_len, 0);
    assert_int_equal(type, 0);
    uint8_t *after = party_record(&b, &a, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);

    /* A SignalMessage decrypted by the current state is refused too. */
    wire_msg m2 = party_encrypt(&a, &b, "two");
    expect_reject_unchanged(&b, &a, &m2, SOTTO_ERR_UNTRUSTED_IDENTITY);

    assert_int_equal(b.ps->identity.save(b.ps->identity.user_data, &a.addr, &a.identity.pub),
                     SOTTO_OK);
    assert_int_equal(party_decrypt(&b, &a, &m2, "two"), SOTTO_OK);
    wire_msg r = party_encrypt(&b, &a, "reply");
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    wire_free(&m2);
    wire_free(&r);
    party_free(&a);
    party_free(&b);
    party_free(&other);
}

/* A store without is_trusted cannot be used to encrypt or decrypt. */
static void test_needs_is_trusted(void **unused)
{
    (void)unused;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, true);
    sotto_protocol_store ps = *a.ps;
    ps.identity.is_trusted = NULL;
    uint8_t *msg = NULL, *pt = NULL;
    size_t msg_len = 0, pt_len = 0;
    int type = 0;
    assert_int_equal(
        sotto_session_encrypt(&ps, &b.addr, (const uint8_t *)"x", 1, &msg, &msg_len, &type),
        SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_session_decrypt(&ps, &b.addr, SOTTO_MSG_SIGNAL, (const uint8_t *)"\x33",
                                           1, &pt, &pt_len),
                     SOTTO_ERR_INVALID_ARGUMENT);
    assert_null(msg);
    assert_null(pt);
    party_free(&a);
    party_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_late_signal_message_refused),
        cmocka_unit_test(test_late_prekey_message_refused),
        cmocka_unit_test(test_late_prekey_rewritten_identity_refused),
        cmocka_unit_test(test_late_message_after_reaccepting_old),
        cmocka_unit_test(test_repeated_prekey_message_ok),
        cmocka_unit_test(test_encrypt_checks_trust),
        cmocka_unit_test(test_needs_is_trusted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
