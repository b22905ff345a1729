/*
 * lib/protocol/session.c -- the 1:1 session API of sotto/session.h:
 * bundle processing (X3DH as initiator), encryption, and transactional
 * decryption of SignalMessage / PreKeySignalMessage.
 * Spec: signal-protocol.md 2.2-2.6.
 *
 * Transactions: every call works on the record it loaded (a private copy);
 * the per-state decrypt computes everything into temporaries and changes
 * the state only after the MAC verified and the plaintext was produced.
 * Nothing is written to any store before that point, nor when the state
 * that decrypted talks to an identity that is not trusted (review R1).
 */
#include "sotto/session.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "protocol/ratchet.h"
#include "protocol/session_record.h"
#include "protocol/wire.h"

/* ---------------------------------------------------------------------- */
/* Argument checks and record I/O                                           */

static bool address_ok(const sotto_address *a)
{
    return a != NULL && (a->name != NULL || a->name_len == 0) &&
           a->name_len <= SOTTO_MAX_NAME_BYTES;
}

static bool session_store_ok(const sotto_protocol_store *s)
{
    return s != NULL && s->session.load != NULL && s->session.store != NULL;
}

/*
 * Loads the record of `remote` into `rec` (initialised here). A missing
 * record gives SOTTO_OK with an empty record and *found false.
 */
static int record_load(const sotto_protocol_store *s, const sotto_address *remote,
                       sotto_session_record *rec, bool *found)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    sotto_session_record_init(rec);
    *found = false;
    rc = s->session.load(s->session.user_data, remote, &data, &len);
    if (rc == SOTTO_ERR_NOT_FOUND) {
        if (data != NULL) {
            sodium_memzero(data, len);
            free(data);
        }
        return SOTTO_OK;
    }
    if (rc != SOTTO_OK) {
        if (data != NULL) {
            sodium_memzero(data, len);
            free(data);
        }
        return rc > 0 ? SOTTO_ERR_STORE : rc;
    }
    if (data == NULL)
        return SOTTO_ERR_CORRUPT_RECORD;
    *found = true;
    return sotto_session_record_decode(rec, data, len, false);
}

/* Records up to this size (a session with a few chains and skipped keys)
 * are serialised on the stack: no allocation per message. */
#define RECORD_SCRATCH_BYTES 2048

static int record_save(const sotto_protocol_store *s, const sotto_address *remote,
                       const sotto_session_record *rec)
{
    uint8_t scratch[RECORD_SCRATCH_BYTES];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = sotto_session_record_encode_buf(rec, scratch, sizeof scratch, &data, &len);
    if (rc != SOTTO_OK)
        return rc;
    rc = s->session.store(s->session.user_data, remote, data, len);
    sodium_memzero(data, len);
    if (data != scratch)
        free(data);
    return rc > 0 ? SOTTO_ERR_STORE : rc;
}

static int store_rc(int rc)
{
    return rc > 0 ? SOTTO_ERR_STORE : rc;
}

/* ---------------------------------------------------------------------- */
/* Per-state decryption (spec 2.4, 2.6 "Per-state decrypt checks")         */

/* Hard failures stop the search over states; others mean "not this state". */
static bool hard_error(int rc)
{
    return rc == SOTTO_ERR_NOMEM || rc == SOTTO_ERR_CRYPTO || rc == SOTTO_ERR_INTERNAL ||
           rc == SOTTO_ERR_CORRUPT_RECORD || rc == SOTTO_ERR_INVALID_ARGUMENT;
}

static sotto_recv_chain *find_chain(sotto_session_state *st, const sotto_public_key *k)
{
    for (uint32_t i = 0; i < st->n_recv; i++)
        if (memcmp(st->recv[i].their_ratchet.bytes, k->bytes, SOTTO_PUBLIC_KEY_BYTES) == 0)
            return &st->recv[i];
    return NULL;
}

static void chain_remove_skipped(sotto_recv_chain *c, uint32_t k)
{
    sodium_memzero(&c->skipped[k], sizeof c->skipped[k]);
    memmove(&c->skipped[k], &c->skipped[k + 1],
            (size_t)(c->n_skipped - k - 1) * sizeof c->skipped[0]);
    c->n_skipped--;
    sodium_memzero(&c->skipped[c->n_skipped], sizeof c->skipped[0]);
}

/*
 * Chain steps (one HMAC each) that one decryption may derive over all the
 * states it tries (review R1: a forged message otherwise costs up to
 * 41 x 2001 steps). The state that knows the message's chain is tried
 * first and always within budget; see record_decrypt().
 */
#define DECRYPT_STEP_BUDGET (2u * (SOTTO_MAX_FORWARD_JUMP + 1u))

/* Does `st` have a receiver chain for the message's ratchet key? */
static bool state_knows_chain(sotto_session_state *st, const sotto_signal_message *m)
{
    return st->has_sender_chain && find_chain(st, &m->ratchet_key) != NULL;
}

/*
 * Tries to decrypt `m` with `st`. On success the state is advanced and
 * *pt / *pt_len hold the plaintext (malloc()ed, >= 1 byte allocated). On
 * failure `st` is unchanged. *chain_known tells whether the message's
 * ratchet key names a receiver chain of this state. The chain steps this
 * try needs are taken from *budget; if fewer remain, the state is not
 * tried (SOTTO_ERR_INVALID_MESSAGE, nothing derived). The new ratchet key
 * pair and the second root KDF of a DH step are computed only after the
 * MAC verified and the plaintext was produced.
 */
static int state_decrypt(sotto_session_state *st, const sotto_signal_message *m, uint32_t *budget,
                         uint8_t **pt, size_t *pt_len, bool *chain_known)
{
    int rc = SOTTO_ERR_INVALID_MESSAGE;
    sotto_recv_chain *c;
    uint8_t ck[SOTTO_CHAIN_KEY_BYTES];
    uint8_t seed[SOTTO_MESSAGE_SEED_BYTES];
    uint8_t rk1[SOTTO_ROOT_KEY_BYTES], rk2[SOTTO_ROOT_KEY_BYTES];
    uint8_t cks[SOTTO_CHAIN_KEY_BYTES];
    sotto_key_pair next_ratchet;
    sotto_message_keys mk;
    sotto_skipped_key *skipped = NULL;
    uint32_t n_skipped = 0, idx = 0;
    int64_t used_skipped = -1;
    bool new_chain = false;
    uint8_t *out = NULL;
    size_t out_cap = 0, out_len = 0;

    sodium_memzero(&next_ratchet, sizeof next_ratchet);
    *pt = NULL;
    *pt_len = 0;
    *chain_known = false;
    if (!st->has_sender_chain)
        goto out;

    c = find_chain(st, &m->ratchet_key);
    if (c != NULL) {
        *chain_known = true;
        if (m->counter < c->index) {
            for (uint32_t k = 0; k < c->n_skipped; k++) {
                if (c->skipped[k].counter == m->counter) {
                    used_skipped = k;
                    break;
                }
            }
            if (used_skipped < 0) {
                rc = SOTTO_ERR_DUPLICATE_MESSAGE;
                goto out;
            }
            memcpy(seed, c->skipped[used_skipped].seed, sizeof seed);
        } else {
            /* Limit checked before deriving any key (spec 2.5). */
            if (m->counter - c->index > SOTTO_MAX_FORWARD_JUMP) {
                rc = SOTTO_ERR_TOO_FAR_AHEAD;
                goto out;
            }
            if (m->counter - c->index + 1u > *budget)
                goto out;
            *budget -= m->counter - c->index + 1u;
            memcpy(ck, c->chain_key, sizeof ck);
            idx = c->index;
        }
    } else {
        if (m->counter > SOTTO_MAX_FORWARD_JUMP) {
            rc = SOTTO_ERR_TOO_FAR_AHEAD;
            goto out;
        }
        if (m->counter + 1u > *budget)
            goto out;
        *budget -= m->counter + 1u;
        /* DH ratchet step (spec 2.4), receiving half, into temporaries; the
         * sending half waits until the message is authenticated. */
        rc = sotto_root_kdf(st->root_key, st->sender_ratchet.priv, &m->ratchet_key, rk1, ck);
        if (rc != SOTTO_OK)
            goto map_out;
        idx = 0;
        new_chain = true;
    }

    if (used_skipped < 0) {
        n_skipped = m->counter - idx;
        if (n_skipped > 0) {
            skipped = malloc((size_t)n_skipped * sizeof *skipped);
            if (skipped == NULL) {
                rc = SOTTO_ERR_NOMEM;
                goto out;
            }
        }
        for (uint32_t i = 0; i < n_skipped; i++) {
            skipped[i].counter = idx + i;
            rc = sotto_chain_step(ck, skipped[i].seed, ck);
            if (rc != SOTTO_OK)
                goto out;
        }
        rc = sotto_chain_step(ck, seed, ck);
        if (rc != SOTTO_OK)
            goto out;
    }

    rc = sotto_message_keys_derive(seed, &mk);
    if (rc != SOTTO_OK)
        goto out;
    /* Verify before decrypting (spec 1.3): sender = remote, receiver = local. */
    rc = sotto_signal_message_verify_mac(m, mk.mac_key, &st->remote_identity, &st->local_identity);
    if (rc != SOTTO_OK)
        goto out;
    out_cap = m->ciphertext_len > 0 ? m->ciphertext_len : 1;
    out = malloc(out_cap);
    if (out == NULL) {
        rc = SOTTO_ERR_NOMEM;
        goto out;
    }
    rc = sotto_aes256_cbc_decrypt(out, &out_len, mk.cipher_key, mk.iv, m->ciphertext,
                                  m->ciphertext_len);
    if (rc != SOTTO_OK) {
        rc = SOTTO_ERR_INVALID_MESSAGE; /* indistinguishable from a bad MAC */
        goto out;
    }
    if (new_chain) {
        /* Sending half of the DH step: only for an authenticated message. */
        rc = sotto_key_pair_generate(&next_ratchet);
        if (rc != SOTTO_OK)
            goto out;
        rc = sotto_root_kdf(rk1, next_ratchet.priv, &m->ratchet_key, rk2, cks);
        if (rc != SOTTO_OK)
            goto map_out;
    }

    /* ---- commit ---- */
    if (used_skipped >= 0) {
        chain_remove_skipped(c, (uint32_t)used_skipped);
    } else if (!new_chain) {
        rc = sotto_recv_chain_add_skipped(c, skipped, n_skipped);
        if (rc != SOTTO_OK)
            goto out;
        memcpy(c->chain_key, ck, sizeof ck);
        c->index = m->counter + 1;
    } else {
        if (st->n_recv == SOTTO_MAX_RECEIVER_CHAINS) {
            sotto_recv_chain *old = &st->recv[0];
            if (old->skipped != NULL) {
                sodium_memzero(old->skipped, (size_t)old->cap_skipped * sizeof *old->skipped);
                free(old->skipped);
            }
            memmove(&st->recv[0], &st->recv[1],
                    (SOTTO_MAX_RECEIVER_CHAINS - 1) * sizeof st->recv[0]);
            st->n_recv--;
        }
        c = &st->recv[st->n_recv];
        sodium_memzero(c, sizeof *c);
        st->n_recv++;
        c->their_ratchet = m->ratchet_key;
        memcpy(c->chain_key, ck, sizeof ck);
        c->index = m->counter + 1;
        rc = sotto_recv_chain_add_skipped(c, skipped, n_skipped);
        if (rc != SOTTO_OK)
            goto out;
        memcpy(st->root_key, rk2, sizeof rk2);
        st->previous_counter = st->sender_index > 0 ? st->sender_index - 1 : 0;
        st->sender_ratchet = next_ratchet;
        memcpy(st->sender_chain_key, cks, sizeof cks);
        st->sender_index = 0;
    }
    st->pending_prekey = false;
    st->pending_has_prekey_id = false;
    st->pending_prekey_id = 0;
    st->pending_signed_prekey_id = 0;
    *pt = out;
    *pt_len = out_len;
    out = NULL;
    rc = SOTTO_OK;
    goto out;
map_out:
    /* A ratchet key that gives a degenerate DH is a bad message. */
    if (rc == SOTTO_ERR_INVALID_KEY)
        rc = SOTTO_ERR_INVALID_MESSAGE;
out:
    if (out != NULL) {
        sodium_memzero(out, out_cap);
        free(out);
    }
    if (skipped != NULL) {
        sodium_memzero(skipped, (size_t)n_skipped * sizeof *skipped);
        free(skipped);
    }
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(rk1, sizeof rk1);
    sodium_memzero(rk2, sizeof rk2);
    sodium_memzero(cks, sizeof cks);
    sodium_memzero(&next_ratchet, sizeof next_ratchet);
    sodium_memzero(&mk, sizeof mk);
    return rc;
}

/*
 * Identity check of the state that decrypted (review R1; as Java
 * libsignal's SessionCipher): the identity this state talks to must be
 * trusted for `remote` now. Otherwise an archived state of an identity the
 * user replaced would be promoted back to current by one late (or forged,
 * by whoever holds the old device's state) message.
 */
static int state_trust(const sotto_protocol_store *store, const sotto_address *remote,
                       const sotto_public_key *identity)
{
    int rc = store->identity.is_trusted(store->identity.user_data, remote, identity);
    if (rc < 0)
        return rc;
    return rc == SOTTO_TRUSTED ? SOTTO_OK : SOTTO_ERR_UNTRUSTED_IDENTITY;
}

/*
 * Accepts or refuses the state `st` that decrypted: when `expect` is given
 * (repeated PreKey message) its remote identity must equal it, then it must
 * be trusted. On refusal the plaintext is wiped and freed.
 */
static int accept_state(const sotto_protocol_store *store, const sotto_address *remote,
                        const sotto_session_state *st, const sotto_public_key *expect, uint8_t **pt,
                        size_t *pt_len)
{
    int rc = SOTTO_OK;
    if (expect != NULL && !sotto_public_key_equal(&st->remote_identity, expect))
        rc = SOTTO_ERR_INVALID_MESSAGE;
    else
        rc = state_trust(store, remote, &st->remote_identity);
    if (rc != SOTTO_OK && *pt != NULL) {
        sodium_memzero(*pt, *pt_len);
        free(*pt);
        *pt = NULL;
        *pt_len = 0;
    }
    return rc;
}

/*
 * Tries the states of the record (spec 2.6 "Decrypt SignalMessage"); a
 * working archived state is promoted. Order: first the states that have a
 * receiver chain for the message's ratchet key, then the others, each pass
 * current first then archived (most recent first). All tries share
 * DECRYPT_STEP_BUDGET chain steps: the first state knowing the chain gets
 * up to SOTTO_MAX_FORWARD_JUMP + 1 steps, so a message on a known chain is
 * always tried with its own state; a message opening a new chain at
 * counter n is tried on as many states (in that order) as the remaining
 * budget pays n + 1 steps each -- every state when n <= 96 -- and the
 * current state always. A forged message thus costs at most
 * DECRYPT_STEP_BUDGET steps plus one DH per state.
 * When all fail, the error of the first state that knew the message's
 * chain is returned, else the first tried state's (the current one's when
 * there is one). The state that decrypted must pass accept_state()
 * (trusted identity, equal to `expect` if given), else its error is
 * returned and the caller must not store `rec` (its states may have
 * advanced in memory).
 */
static int record_decrypt(const sotto_protocol_store *store, const sotto_address *remote,
                          sotto_session_record *rec, const sotto_signal_message *m,
                          const sotto_public_key *expect, uint8_t **pt, size_t *pt_len)
{
    int rc, first_rc = 0, known_rc = 0;
    uint32_t budget = DECRYPT_STEP_BUDGET;
    bool known;

    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = rec->has_current ? -1 : 0; i < (int64_t)rec->n_archived; i++) {
            sotto_session_state *st;
            if (i < 0) {
                st = &rec->current;
            } else {
                rc = sotto_session_record_parse_archived(rec, (uint32_t)i);
                if (rc != SOTTO_OK)
                    return rc;
                st = rec->archived[i].state;
            }
            if (state_knows_chain(st, m) != (pass == 0))
                continue;
            rc = state_decrypt(st, m, &budget, pt, pt_len, &known);
            if (rc == SOTTO_OK) {
                rc = accept_state(store, remote, st, expect, pt, pt_len);
                if (rc == SOTTO_OK && i >= 0)
                    sotto_session_record_promote_archived(rec, (uint32_t)i);
                return rc;
            }
            if (hard_error(rc))
                return rc;
            if (first_rc == 0)
                first_rc = rc;
            if (known && known_rc == 0)
                known_rc = rc;
        }
    }
    if (known_rc != 0)
        return known_rc;
    return first_rc != 0 ? first_rc : SOTTO_ERR_NO_SESSION;
}

/* ---------------------------------------------------------------------- */
/* Public API                                                               */

int sotto_session_process_bundle(const sotto_protocol_store *store, const sotto_address *remote,
                                 const sotto_prekey_bundle *bundle)
{
    int rc = SOTTO_ERR_INVALID_ARGUMENT;
    sotto_session_record rec;
    sotto_session_state st;
    sotto_key_pair our_identity, base, ratchet;
    uint32_t local_reg = 0;
    bool found;

    sotto_session_record_init(&rec);
    sodium_memzero(&st, sizeof st);
    sodium_memzero(&our_identity, sizeof our_identity);
    sodium_memzero(&base, sizeof base);
    sodium_memzero(&ratchet, sizeof ratchet);
    if (!session_store_ok(store) || !address_ok(remote) || bundle == NULL ||
        store->identity.is_trusted == NULL || store->identity.save == NULL ||
        store->identity.get_identity_key_pair == NULL ||
        store->identity.get_local_registration_id == NULL)
        goto out;
    rc = SOTTO_ERR_INVALID_KEY;
    if (bundle->identity_key.bytes[0] != SOTTO_KEY_TYPE_DJB ||
        bundle->signed_prekey.bytes[0] != SOTTO_KEY_TYPE_DJB ||
        (bundle->has_prekey && bundle->prekey.bytes[0] != SOTTO_KEY_TYPE_DJB))
        goto out;

    /* 1. Trust. */
    rc = store->identity.is_trusted(store->identity.user_data, remote, &bundle->identity_key);
    if (rc < 0)
        goto out;
    if (rc != SOTTO_TRUSTED) {
        rc = SOTTO_ERR_UNTRUSTED_IDENTITY;
        goto out;
    }
    /* 2. Signature over the 33-byte signed prekey. */
    rc = sotto_signed_prekey_verify(&bundle->identity_key, &bundle->signed_prekey,
                                    bundle->signed_prekey_signature);
    if (rc != SOTTO_OK) {
        rc = SOTTO_ERR_INVALID_SIGNATURE;
        goto out;
    }
    rc = store_rc(store->identity.get_identity_key_pair(store->identity.user_data, &our_identity));
    if (rc != SOTTO_OK)
        goto out;
    rc = store_rc(store->identity.get_local_registration_id(store->identity.user_data, &local_reg));
    if (rc != SOTTO_OK)
        goto out;
    rc = record_load(store, remote, &rec, &found);
    if (rc != SOTTO_OK)
        goto out;

    /* 3. X3DH with a fresh base key and a fresh ratchet key. */
    rc = sotto_key_pair_generate(&base);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_key_pair_generate(&ratchet);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_x3dh_alice(&st, &our_identity, &base, &ratchet, &bundle->identity_key,
                          &bundle->signed_prekey, bundle->has_prekey ? &bundle->prekey : NULL);
    if (rc != SOTTO_OK)
        goto out;
    st.local_registration_id = local_reg;
    st.remote_registration_id = bundle->registration_id;
    st.pending_prekey = true;
    st.pending_signed_prekey_id = bundle->signed_prekey_id;
    st.pending_has_prekey_id = bundle->has_prekey;
    st.pending_prekey_id = bundle->has_prekey ? bundle->prekey_id : 0;
    rc = sotto_session_record_promote_new(&rec, &st);
    if (rc != SOTTO_OK)
        goto out;

    /* Store the session, then save the identity. */
    rc = record_save(store, remote, &rec);
    if (rc != SOTTO_OK)
        goto out;
    rc = store_rc(store->identity.save(store->identity.user_data, remote, &bundle->identity_key));
out:
    sotto_session_state_clear(&st);
    sotto_session_record_clear(&rec);
    sotto_key_pair_wipe(&our_identity);
    sotto_key_pair_wipe(&base);
    sotto_key_pair_wipe(&ratchet);
    return rc;
}

int sotto_session_encrypt(const sotto_protocol_store *store, const sotto_address *remote,
                          const uint8_t *pt, size_t pt_len, uint8_t **msg, size_t *msg_len,
                          int *msg_type)
{
    int rc = SOTTO_ERR_INVALID_ARGUMENT;
    sotto_session_record rec;
    sotto_session_state *st;
    uint8_t seed[SOTTO_MESSAGE_SEED_BYTES], next[SOTTO_CHAIN_KEY_BYTES];
    sotto_message_keys mk;
    uint8_t *inner = NULL, *outer = NULL;
    size_t inner_len = 0, outer_len = 0;
    int type = SOTTO_MSG_SIGNAL;
    bool found;

    sotto_session_record_init(&rec);
    sodium_memzero(&mk, sizeof mk);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(next, sizeof next);
    if (msg != NULL)
        *msg = NULL;
    if (msg_len != NULL)
        *msg_len = 0;
    if (msg_type != NULL)
        *msg_type = 0;
    if (!session_store_ok(store) || !address_ok(remote) || (pt == NULL && pt_len != 0) ||
        pt_len > SOTTO_MAX_PLAINTEXT_BYTES || msg == NULL || msg_len == NULL || msg_type == NULL ||
        store->identity.is_trusted == NULL)
        goto out;
    rc = record_load(store, remote, &rec, &found);
    if (rc != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_NO_SESSION;
    if (!rec.has_current || !rec.current.has_sender_chain)
        goto out;
    st = &rec.current;
    /* Never encrypt to an identity that is not trusted now (review R1). */
    rc = state_trust(store, remote, &st->remote_identity);
    if (rc != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_INTERNAL;
    if (st->sender_index == UINT32_MAX)
        goto out;

    rc = sotto_chain_step(st->sender_chain_key, seed, next);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_message_keys_derive(seed, &mk);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_signal_message_encode(&st->sender_ratchet.pub, st->sender_index,
                                     st->previous_counter, &mk, &st->local_identity,
                                     &st->remote_identity, pt, pt_len, &inner, &inner_len);
    if (rc != SOTTO_OK)
        goto out;
    if (st->pending_prekey) {
        sotto_prekey_message_info info;
        memset(&info, 0, sizeof info);
        info.registration_id = st->local_registration_id;
        info.has_prekey_id = st->pending_has_prekey_id;
        info.prekey_id = st->pending_prekey_id;
        info.signed_prekey_id = st->pending_signed_prekey_id;
        info.base_key = st->alice_base_key;
        info.identity_key = st->local_identity;
        rc = sotto_prekey_signal_message_encode(&info, inner, inner_len, &outer, &outer_len);
        if (rc != SOTTO_OK)
            goto out;
        free(inner);
        inner = outer;
        inner_len = outer_len;
        outer = NULL;
        type = SOTTO_MSG_PREKEY;
    }
    /* Advance the chain and store before handing the message out. */
    memcpy(st->sender_chain_key, next, sizeof next);
    st->sender_index++;
    rc = record_save(store, remote, &rec);
    if (rc != SOTTO_OK)
        goto out;
    *msg = inner;
    *msg_len = inner_len;
    *msg_type = type;
    inner = NULL;
out:
    free(inner);
    free(outer);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(next, sizeof next);
    sodium_memzero(&mk, sizeof mk);
    sotto_session_record_clear(&rec);
    return rc;
}

/* Does any state of the record have this base key? (spec 2.6 PreKey step 2) */
static int record_has_base_key(sotto_session_record *rec, const sotto_public_key *base, bool *has)
{
    *has = false;
    if (rec->has_current && rec->current.has_alice_base_key &&
        sotto_public_key_equal(&rec->current.alice_base_key, base)) {
        *has = true;
        return SOTTO_OK;
    }
    for (uint32_t i = 0; i < rec->n_archived; i++) {
        int rc = sotto_session_record_parse_archived(rec, i);
        if (rc != SOTTO_OK)
            return rc;
        const sotto_session_state *a = rec->archived[i].state;
        if (a->has_alice_base_key && sotto_public_key_equal(&a->alice_base_key, base)) {
            *has = true;
            return SOTTO_OK;
        }
    }
    return SOTTO_OK;
}

static int not_found_as(int rc, int code)
{
    return rc == SOTTO_ERR_NOT_FOUND ? code : store_rc(rc);
}

static int decrypt_prekey(const sotto_protocol_store *store, const sotto_address *remote,
                          const uint8_t *msg, size_t msg_len, uint8_t **pt, size_t *pt_len)
{
    int rc;
    sotto_prekey_signal_message m;
    sotto_session_record rec;
    sotto_session_state st;
    sotto_signed_prekey spk;
    sotto_prekey opk;
    sotto_key_pair our_identity;
    uint32_t local_reg = 0;
    bool found, has, known, remove_prekey = false;
    uint8_t *out = NULL;
    size_t out_len = 0;

    sotto_session_record_init(&rec);
    sodium_memzero(&st, sizeof st);
    sodium_memzero(&spk, sizeof spk);
    sodium_memzero(&opk, sizeof opk);
    sodium_memzero(&our_identity, sizeof our_identity);

    rc = SOTTO_ERR_INVALID_ARGUMENT;
    if (store->identity.is_trusted == NULL || store->identity.save == NULL ||
        store->identity.get_identity_key_pair == NULL ||
        store->identity.get_local_registration_id == NULL || store->signed_prekey.load == NULL ||
        store->prekey.load == NULL || store->prekey.remove == NULL)
        goto out;
    rc = sotto_prekey_signal_message_decode(&m, msg, msg_len);
    if (rc != SOTTO_OK)
        goto out;
    rc = store->identity.is_trusted(store->identity.user_data, remote, &m.info.identity_key);
    if (rc < 0)
        goto out;
    if (rc != SOTTO_TRUSTED) {
        rc = SOTTO_ERR_UNTRUSTED_IDENTITY;
        goto out;
    }
    rc = record_load(store, remote, &rec, &found);
    if (rc != SOTTO_OK)
        goto out;
    rc = record_has_base_key(&rec, &m.info.base_key, &has);
    if (rc != SOTTO_OK)
        goto out;
    if (has) {
        /* A repeated PreKey message: decrypt with the state we already have.
         * Its outer identityKey is not authenticated, so the decrypting
         * state's (MAC-covered) identity must equal the one trust-checked
         * above: else SOTTO_ERR_INVALID_MESSAGE (review R1). */
        rc = record_decrypt(store, remote, &rec, &m.message, &m.info.identity_key, &out, &out_len);
        if (rc != SOTTO_OK)
            goto out;
    } else {
        rc = not_found_as(store->signed_prekey.load(store->signed_prekey.user_data,
                                                    m.info.signed_prekey_id, &spk),
                          SOTTO_ERR_UNKNOWN_SIGNED_PREKEY_ID);
        if (rc != SOTTO_OK)
            goto out;
        if (m.info.has_prekey_id) {
            rc = not_found_as(store->prekey.load(store->prekey.user_data, m.info.prekey_id, &opk),
                              SOTTO_ERR_UNKNOWN_PREKEY_ID);
            if (rc != SOTTO_OK)
                goto out;
        }
        rc = store_rc(
            store->identity.get_identity_key_pair(store->identity.user_data, &our_identity));
        if (rc != SOTTO_OK)
            goto out;
        rc = store_rc(
            store->identity.get_local_registration_id(store->identity.user_data, &local_reg));
        if (rc != SOTTO_OK)
            goto out;
        rc = sotto_x3dh_bob(&st, &our_identity, &spk.key, m.info.has_prekey_id ? &opk.key : NULL,
                            &m.info.identity_key, &m.info.base_key);
        if (rc == SOTTO_ERR_INVALID_KEY)
            rc = SOTTO_ERR_INVALID_MESSAGE;
        if (rc != SOTTO_OK)
            goto out;
        st.local_registration_id = local_reg;
        st.remote_registration_id = m.info.registration_id;
        uint32_t budget = DECRYPT_STEP_BUDGET;
        rc = state_decrypt(&st, &m.message, &budget, &out, &out_len, &known);
        if (rc != SOTTO_OK)
            goto out;
        rc = sotto_session_record_promote_new(&rec, &st);
        if (rc != SOTTO_OK)
            goto out;
        remove_prekey = m.info.has_prekey_id && m.info.prekey_id != SOTTO_PREKEY_LAST_RESORT_ID;
    }
    /* Authenticated and decrypted: session, then identity, then prekey. The
     * identity saved is the one of the state that decrypted (now current):
     * the MAC covers it; it equals the trusted outer identityKey. */
    rc = record_save(store, remote, &rec);
    if (rc != SOTTO_OK)
        goto out;
    rc = store_rc(
        store->identity.save(store->identity.user_data, remote, &rec.current.remote_identity));
    if (rc != SOTTO_OK)
        goto out;
    if (remove_prekey) {
        rc = store->prekey.remove(store->prekey.user_data, m.info.prekey_id);
        if (rc == SOTTO_ERR_NOT_FOUND)
            rc = SOTTO_OK;
        rc = store_rc(rc);
        if (rc != SOTTO_OK)
            goto out;
    }
    *pt = out;
    *pt_len = out_len;
    out = NULL;
out:
    if (out != NULL) {
        sodium_memzero(out, out_len);
        free(out);
    }
    sotto_session_state_clear(&st);
    sotto_session_record_clear(&rec);
    sodium_memzero(&spk, sizeof spk);
    sodium_memzero(&opk, sizeof opk);
    sotto_key_pair_wipe(&our_identity);
    return rc;
}

int sotto_session_decrypt(const sotto_protocol_store *store, const sotto_address *remote,
                          int msg_type, const uint8_t *msg, size_t msg_len, uint8_t **pt,
                          size_t *pt_len)
{
    int rc = SOTTO_ERR_INVALID_ARGUMENT;
    sotto_signal_message m;
    sotto_session_record rec;
    uint8_t *out = NULL;
    size_t out_len = 0;
    bool found;

    sotto_session_record_init(&rec);
    if (pt != NULL)
        *pt = NULL;
    if (pt_len != NULL)
        *pt_len = 0;
    if (!session_store_ok(store) || !address_ok(remote) || (msg == NULL && msg_len != 0) ||
        pt == NULL || pt_len == NULL || store->identity.is_trusted == NULL)
        goto out;
    if (msg_type == SOTTO_MSG_PREKEY) {
        rc = decrypt_prekey(store, remote, msg, msg_len, pt, pt_len);
        goto out;
    }
    if (msg_type != SOTTO_MSG_SIGNAL)
        goto out;
    /* Parse before touching the store. */
    rc = sotto_signal_message_decode(&m, msg, msg_len);
    if (rc != SOTTO_OK)
        goto out;
    rc = record_load(store, remote, &rec, &found);
    if (rc != SOTTO_OK)
        goto out;
    rc = SOTTO_ERR_NO_SESSION;
    if (!rec.has_current && rec.n_archived == 0)
        goto out;
    rc = record_decrypt(store, remote, &rec, &m, NULL, &out, &out_len);
    if (rc != SOTTO_OK)
        goto out;
    rc = record_save(store, remote, &rec);
    if (rc != SOTTO_OK)
        goto out;
    *pt = out;
    *pt_len = out_len;
    out = NULL;
out:
    if (out != NULL) {
        sodium_memzero(out, out_len);
        free(out);
    }
    sotto_session_record_clear(&rec);
    return rc;
}

int sotto_prekey_message_inspect(sotto_prekey_message_info *out, const uint8_t *msg, size_t msg_len)
{
    sotto_prekey_signal_message m;
    int rc;

    if (out == NULL || (msg == NULL && msg_len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_prekey_signal_message_decode(&m, msg, msg_len);
    if (rc == SOTTO_OK)
        *out = m.info;
    else
        memset(out, 0, sizeof *out);
    return rc;
}

/* Loads the record and requires a current state. */
static int load_current(const sotto_protocol_store *store, const sotto_address *remote,
                        sotto_session_record *rec)
{
    bool found;
    int rc;
    if (!session_store_ok(store) || !address_ok(remote)) {
        sotto_session_record_init(rec);
        return SOTTO_ERR_INVALID_ARGUMENT;
    }
    rc = record_load(store, remote, rec, &found);
    if (rc == SOTTO_OK && !rec->has_current)
        rc = SOTTO_ERR_NO_SESSION;
    return rc;
}

int sotto_session_exists(const sotto_protocol_store *store, const sotto_address *remote,
                         bool *exists)
{
    sotto_session_record rec;
    int rc;
    if (exists == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *exists = false;
    rc = load_current(store, remote, &rec);
    if (rc == SOTTO_OK)
        *exists = rec.current.has_sender_chain;
    else if (rc == SOTTO_ERR_NO_SESSION)
        rc = SOTTO_OK;
    sotto_session_record_clear(&rec);
    return rc;
}

int sotto_session_remote_registration_id(const sotto_protocol_store *store,
                                         const sotto_address *remote, uint32_t *out)
{
    sotto_session_record rec;
    int rc;
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = 0;
    rc = load_current(store, remote, &rec);
    if (rc == SOTTO_OK)
        *out = rec.current.remote_registration_id;
    sotto_session_record_clear(&rec);
    return rc;
}

int sotto_session_remote_identity(const sotto_protocol_store *store, const sotto_address *remote,
                                  sotto_public_key *out)
{
    sotto_session_record rec;
    int rc;
    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    rc = load_current(store, remote, &rec);
    if (rc == SOTTO_OK)
        *out = rec.current.remote_identity;
    sotto_session_record_clear(&rec);
    return rc;
}

int sotto_session_delete(const sotto_protocol_store *store, const sotto_address *remote)
{
    int rc;
    if (store == NULL || store->session.remove == NULL || !address_ok(remote))
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = store->session.remove(store->session.user_data, remote);
    if (rc == SOTTO_ERR_NOT_FOUND)
        rc = SOTTO_OK;
    return store_rc(rc);
}

int sotto_session_record_validate(const uint8_t *data, size_t len)
{
    sotto_session_record rec;
    uint8_t *copy;
    int rc;

    if (data == NULL && len != 0)
        return SOTTO_ERR_CORRUPT_RECORD;
    if (len > SOTTO_MAX_RECORD_BYTES)
        return SOTTO_ERR_CORRUPT_RECORD;
    copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return SOTTO_ERR_NOMEM;
    if (len > 0)
        memcpy(copy, data, len);
    sotto_session_record_init(&rec);
    rc = sotto_session_record_decode(&rec, copy, len, true);
    sotto_session_record_clear(&rec);
    if (rc == SOTTO_ERR_INVALID_MESSAGE)
        rc = SOTTO_ERR_CORRUPT_RECORD;
    return rc;
}
