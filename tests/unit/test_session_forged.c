/*
 * Cost of rejecting forged SignalMessages against a full record (review
 * R1, MEDIUM): one decryption derives at most 2 x (SOTTO_MAX_FORWARD_JUMP
 * + 1) chain steps over all the states it tries (lib/protocol/session.c
 * DECRYPT_STEP_BUDGET, docs/protocol.md "Decryption control flow"), while
 * genuine messages keep their 2000-ahead acceptance on their own state.
 * Every refusal leaves the record byte-identical.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "protocol/ratchet.h"
#include "protocol/wire.h"
#include "test_session_store_helper.h"

#define N_STATES (1 + SOTTO_MAX_ARCHIVED_STATES)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Alice's stored record for Bob (copy) and its restoration. */
static uint8_t *save_rec(party *a, party *b, size_t *len)
{
    uint8_t *r = party_record(a, b, len);
    assert_non_null(r);
    return r;
}

static void restore_rec(party *a, party *b, uint8_t *r, size_t len)
{
    assert_int_equal(a->ps->session.store(a->ps->session.user_data, &b->addr, r, len), SOTTO_OK);
}

/* `extra` more sessions a -> b, each acknowledged by one decrypted message:
 * Bob's older states move into the archive. */
static void more_sessions(party *a, party *b, int extra)
{
    for (int i = 0; i < extra; i++) {
        party_start(a, b, false);
        wire_msg m = party_encrypt(a, b, "x");
        assert_int_equal(party_decrypt(b, a, &m, "x"), SOTTO_OK);
        wire_free(&m);
    }
}

/* Encrypts `n` messages and returns only the last (the others are lost). */
static wire_msg skip_then_encrypt(party *a, party *b, uint32_t n, const char *text)
{
    for (uint32_t i = 0; i + 1 < n; i++) {
        wire_msg m = party_encrypt(a, b, "lost");
        wire_free(&m);
    }
    return party_encrypt(a, b, text);
}

/* A SignalMessage with a fresh random ratchet key (or `rk` if given), the
 * given counter, and a MAC under a made-up key. */
static wire_msg forge(party *a, party *b, const sotto_public_key *rk, uint32_t counter)
{
    sotto_key_pair k;
    sotto_message_keys mk;
    wire_msg w;
    assert_int_equal(sotto_key_pair_generate(&k), SOTTO_OK);
    memset(&mk, 7, sizeof mk);
    w.type = SOTTO_MSG_SIGNAL;
    assert_int_equal(sotto_signal_message_encode(rk != NULL ? rk : &k.pub, counter, 0, &mk,
                                                 &a->identity.pub, &b->identity.pub,
                                                 (const uint8_t *)"forged", 6, &w.data, &w.len),
                     SOTTO_OK);
    sotto_key_pair_wipe(&k);
    return w;
}

static double time_decrypt(party *b, party *a, const wire_msg *m, int expect_rc, int reps)
{
    double best = 1e9;
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        assert_int_equal(party_decrypt(b, a, m, NULL), expect_rc);
        double t = now_s() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

/*
 * A forged message (random ratchet key, counter 2000) against 1 current +
 * 40 archived states is refused with the record unchanged, and costs about
 * what one genuine 2000-ahead message on the current state costs (budget:
 * 2x its chain steps, plus one DH per state), not 41x (as before the fix).
 * The ratio bound (8) leaves room for timing noise.
 */
static void test_forged_cost_bounded(void **unused)
{
    (void)unused;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    more_sessions(&a, &b, N_STATES);

    wire_msg f = forge(&a, &b, NULL, SOTTO_MAX_FORWARD_JUMP);
    expect_reject_unchanged(&b, &a, &f, SOTTO_ERR_INVALID_MESSAGE);
    double forged = time_decrypt(&b, &a, &f, SOTTO_ERR_INVALID_MESSAGE, 3);

    /* Reference: a genuine message 2000 ahead on the current state's
     * known chain (index 1), decrypted on a copy of Bob's record each time. */
    size_t blen;
    uint8_t *bsaved = save_rec(&b, &a, &blen);
    wire_msg g = skip_then_encrypt(&a, &b, SOTTO_MAX_FORWARD_JUMP + 1, "genuine");
    double genuine = 1e9;
    for (int i = 0; i < 3; i++) {
        restore_rec(&b, &a, bsaved, blen);
        double t0 = now_s();
        assert_int_equal(party_decrypt(&b, &a, &g, "genuine"), SOTTO_OK);
        double t = now_s() - t0;
        if (t < genuine)
            genuine = t;
    }
    print_message("forged vs 1+40 states: %.2f ms; genuine 2000 ahead: %.2f ms\n", forged * 1e3,
                  genuine * 1e3);
    assert_true(forged < 8.0 * genuine);
    free(bsaved);
    wire_free(&f);
    wire_free(&g);
    party_free(&a);
    party_free(&b);
}

/*
 * The oldest archived state still takes a genuine message 2000 ahead on
 * its known chain, also right after a forged message that reused that
 * chain's ratchet key (seen on the wire) with counter 2000.
 */
static void test_oldest_state_known_chain_2000_ahead(void **unused)
{
    (void)unused;
    party a, b;
    size_t len;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, false);
    wire_msg m0 = party_encrypt(&a, &b, "first");
    assert_int_equal(party_decrypt(&b, &a, &m0, "first"), SOTTO_OK);
    uint8_t *old = save_rec(&a, &b, &len);
    more_sessions(&a, &b, SOTTO_MAX_ARCHIVED_STATES); /* old state: archived[39] */

    restore_rec(&a, &b, old, len);
    wire_msg g = skip_then_encrypt(&a, &b, SOTTO_MAX_FORWARD_JUMP, "late and far");
    assert_int_equal(g.type, SOTTO_MSG_PREKEY); /* Bob never replied in it */

    /* Forgery on the same (public) ratchet key, counter 2000 ahead: the
     * ratchet key of the old chain, read from the inner message of m0. */
    sotto_prekey_signal_message pm;
    assert_int_equal(sotto_prekey_signal_message_decode(&pm, m0.data, m0.len), SOTTO_OK);
    sotto_public_key rk = pm.message.ratchet_key;
    wire_msg f = forge(&a, &b, &rk, SOTTO_MAX_FORWARD_JUMP);
    expect_reject_unchanged(&b, &a, &f, SOTTO_ERR_INVALID_MESSAGE);

    assert_int_equal(party_decrypt(&b, &a, &g, "late and far"), SOTTO_OK);
    /* promoted: Bob's reply goes to the old session and Alice reads it */
    wire_msg r = party_encrypt(&b, &a, "reply");
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    free(old);
    wire_free(&m0);
    wire_free(&g);
    wire_free(&f);
    wire_free(&r);
    party_free(&a);
    party_free(&b);
}

/* A genuine message opening a new chain 2000 ahead on the current state is
 * accepted with 40 archived states present. */
static void test_current_new_chain_2000_ahead(void **unused)
{
    (void)unused;
    party a, b;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    more_sessions(&a, &b, N_STATES);
    wire_msg r = party_encrypt(&b, &a, "reply");
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK); /* Alice: new chain */
    wire_msg g = skip_then_encrypt(&a, &b, SOTTO_MAX_FORWARD_JUMP + 1, "new chain far");
    assert_int_equal(g.type, SOTTO_MSG_SIGNAL);
    assert_int_equal(party_decrypt(&b, &a, &g, "new chain far"), SOTTO_OK);
    wire_free(&r);
    wire_free(&g);
    party_free(&a);
    party_free(&b);
}

/*
 * The documented limit: a message opening a new chain at counter n is tried
 * on a state only while the budget pays n + 1 steps per state tried before
 * it. For the oldest of 41 states that is n <= 96: n = 97 is refused
 * (record unchanged), n = 96 is accepted, and once its chain is known the
 * n = 97 message decrypts too.
 */
static void test_oldest_state_new_chain_limit(void **unused)
{
    (void)unused;
    party a, b;
    size_t len;
    party_init(&a, "alice", 1);
    party_init(&b, "bob", 1);
    party_start(&a, &b, false);
    wire_msg m0 = party_encrypt(&a, &b, "first");
    assert_int_equal(party_decrypt(&b, &a, &m0, "first"), SOTTO_OK);
    wire_msg r = party_encrypt(&b, &a, "reply");
    assert_int_equal(party_decrypt(&a, &b, &r, "reply"), SOTTO_OK);
    uint8_t *old = save_rec(&a, &b, &len); /* Alice's next chain is new to Bob */
    more_sessions(&a, &b, SOTTO_MAX_ARCHIVED_STATES);

    restore_rec(&a, &b, old, len);
    wire_msg m96 = skip_then_encrypt(&a, &b, 97, "counter 96");
    wire_msg m97 = party_encrypt(&a, &b, "counter 97");
    assert_int_equal(m97.type, SOTTO_MSG_SIGNAL);
    expect_reject_unchanged(&b, &a, &m97, SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(party_decrypt(&b, &a, &m96, "counter 96"), SOTTO_OK);
    assert_int_equal(party_decrypt(&b, &a, &m97, "counter 97"), SOTTO_OK);
    free(old);
    wire_free(&m0);
    wire_free(&r);
    wire_free(&m96);
    wire_free(&m97);
    party_free(&a);
    party_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forged_cost_bounded),
        cmocka_unit_test(test_oldest_state_known_chain_2000_ahead),
        cmocka_unit_test(test_current_new_chain_2000_ahead),
        cmocka_unit_test(test_oldest_state_new_chain_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
