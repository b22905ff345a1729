/*
 * bench/lib_peer_bench.c -- the libsignal-protocol-c half of the library
 * benchmark, compiled into sotto-interop-peer and run by its `bench`
 * command. bench/lib_bench.c runs the same scenarios on libsotto with the
 * same message sizes and counts; keep the two in step.
 *
 * Two parties (Alice and Bob) live in this process, each with its own
 * in-memory stores; libsignal-protocol-c loads and stores the serialised
 * session (or sender-key) record through them on every message, as a real
 * client does. One operation:
 *   setup      Alice processes Bob's bundle (with a one-time prekey), encrypts
 *              a 100-byte first message, Bob decrypts it (sessions deleted
 *              between operations, outside the timed part)
 *   one-way    Alice encrypts a 100-byte message, Bob decrypts it (symmetric
 *              ratchet only)
 *   ping-pong  as one-way but the direction alternates, so every message
 *              carries a new ratchet key (a DH ratchet step)
 *   4k         one-way with 4096-byte messages
 *   group      Alice sender-key encrypts 100 bytes, Bob decrypts
 * Every decrypted plaintext is compared with what was sent. Time is the
 * CPU time of this process (CLOCK_PROCESS_CPUTIME_ID), as in lib_bench.c.
 */
#include <string.h>
#include <time.h>

#include <signal/group_cipher.h>
#include <signal/group_session_builder.h>
#include <signal/key_helper.h>
#include <signal/protocol.h>
#include <signal/session_builder.h>
#include <signal/session_cipher.h>
#include <signal/session_pre_key.h>

#include "../tests/interop/peer.h"

#define PB_SMALL 100
#define PB_LARGE 4096
#define PB_MISMATCH (-1)

static uint64_t pb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: see the header */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* p[i] = seq * 31 + 7 * i (mod 256). The pattern repeats every 256 bytes,
 * so only the first 256 are computed and the rest doubled by memcpy: the
 * same bytes as a per-byte loop, without charging a 4 KiB byte loop (about
 * 1 us here) to the library being measured. */
static void pb_fill(uint8_t *p, size_t n, unsigned seq)
{
    size_t done = 0;

    for (; done < n && done < 256; done++)
        p[done] = (uint8_t)(seq * 31u + done * 7u);
    while (done < n) {
        size_t k = n - done < done ? n - done : done;
        memcpy(p + done, p, k);
        done += k;
    }
}

typedef struct pb_pair {
    signal_context *ctx;
    peer_party *alice, *bob;
    signal_protocol_address alice_addr, bob_addr; /* Bob as seen by Alice, and vice versa */
    session_cipher *a2b, *b2a;
} pb_pair;

static void pb_pair_free(pb_pair *pp)
{
    session_cipher_free(pp->a2b);
    session_cipher_free(pp->b2a);
    peer_party_free(pp->alice);
    peer_party_free(pp->bob);
}

static int pb_pair_new(pb_pair *pp, signal_context *ctx)
{
    int rc;

    memset(pp, 0, sizeof(*pp));
    pp->ctx = ctx;
    pp->alice_addr.name = "alice";
    pp->alice_addr.name_len = 5;
    pp->alice_addr.device_id = 1;
    pp->bob_addr.name = "bob";
    pp->bob_addr.name_len = 3;
    pp->bob_addr.device_id = 1;
    if ((rc = peer_party_new(&pp->alice, ctx)) != 0 || (rc = peer_party_new(&pp->bob, ctx)) != 0)
        return rc;
    if ((rc = session_cipher_create(&pp->a2b, peer_party_store(pp->alice), &pp->bob_addr, ctx)) !=
        0)
        return rc;
    return session_cipher_create(&pp->b2a, peer_party_store(pp->bob), &pp->alice_addr, ctx);
}

/* Bob's signed prekey 1 and one-time prekeys 1..count, stored in Bob's store. */
static int pb_bob_keys(pb_pair *pp, unsigned count)
{
    session_signed_pre_key *spk = NULL;
    signal_protocol_key_helper_pre_key_list_node *head = NULL, *it;
    int rc;

    rc = signal_protocol_key_helper_generate_signed_pre_key(&spk, peer_party_identity(pp->bob), 1,
                                                            1700000000000ull, pp->ctx);
    if (rc != 0)
        return rc;
    rc = signal_protocol_signed_pre_key_store_key(peer_party_store(pp->bob), spk);
    SIGNAL_UNREF(spk);
    if (rc != 0)
        return rc;
    rc = signal_protocol_key_helper_generate_pre_keys(&head, 1, count, pp->ctx);
    for (it = head; rc == 0 && it != NULL; it = signal_protocol_key_helper_key_list_next(it))
        rc = signal_protocol_pre_key_store_key(peer_party_store(pp->bob),
                                               signal_protocol_key_helper_key_list_element(it));
    signal_protocol_key_helper_key_list_free(head);
    return rc;
}

/* Alice processes Bob's bundle with one-time prekey `pk_id`. */
static int pb_process_bundle(pb_pair *pp, uint32_t pk_id)
{
    signal_protocol_store_context *bs = peer_party_store(pp->bob);
    session_pre_key *pk = NULL;
    session_signed_pre_key *spk = NULL;
    session_pre_key_bundle *bundle = NULL;
    session_builder *builder = NULL;
    int rc;

    if ((rc = signal_protocol_pre_key_load_key(bs, &pk, pk_id)) != 0)
        goto out;
    if ((rc = signal_protocol_signed_pre_key_load_key(bs, &spk, 1)) != 0)
        goto out;
    rc = session_pre_key_bundle_create(
        &bundle, peer_party_registration_id(pp->bob), 1, pk_id,
        ec_key_pair_get_public(session_pre_key_get_key_pair(pk)), 1,
        ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk)),
        session_signed_pre_key_get_signature(spk), session_signed_pre_key_get_signature_len(spk),
        ratchet_identity_key_pair_get_public(peer_party_identity(pp->bob)));
    if (rc != 0)
        goto out;
    if ((rc = session_builder_create(&builder, peer_party_store(pp->alice), &pp->bob_addr,
                                     pp->ctx)) != 0)
        goto out;
    rc = session_builder_process_pre_key_bundle(builder, bundle);
out:
    session_builder_free(builder);
    if (bundle != NULL)
        SIGNAL_UNREF(bundle);
    if (pk != NULL)
        SIGNAL_UNREF(pk);
    if (spk != NULL)
        SIGNAL_UNREF(spk);
    return rc;
}

/* Encrypts `len` bytes (pattern `seq`) with `from` and decrypts with `to`. */
static int pb_send(pb_pair *pp, session_cipher *from, session_cipher *to, size_t len, unsigned seq)
{
    uint8_t pt[PB_LARGE];
    ciphertext_message *msg = NULL;
    pre_key_signal_message *pkm = NULL;
    signal_message *sm = NULL;
    signal_buffer *out = NULL, *ser;
    int rc;

    pb_fill(pt, len, seq);
    if ((rc = session_cipher_encrypt(from, pt, len, &msg)) != 0)
        goto out;
    ser = ciphertext_message_get_serialized(msg);
    if (ciphertext_message_get_type(msg) == CIPHERTEXT_PREKEY_TYPE) {
        rc = pre_key_signal_message_deserialize(&pkm, signal_buffer_data(ser),
                                                signal_buffer_len(ser), pp->ctx);
        if (rc == 0)
            rc = session_cipher_decrypt_pre_key_signal_message(to, pkm, NULL, &out);
    } else {
        rc = signal_message_deserialize(&sm, signal_buffer_data(ser), signal_buffer_len(ser),
                                        pp->ctx);
        if (rc == 0)
            rc = session_cipher_decrypt_signal_message(to, sm, NULL, &out);
    }
    if (rc == 0 && (signal_buffer_len(out) != len || memcmp(signal_buffer_data(out), pt, len) != 0))
        rc = PB_MISMATCH;
out:
    if (msg != NULL)
        SIGNAL_UNREF(msg);
    if (pkm != NULL)
        SIGNAL_UNREF(pkm);
    if (sm != NULL)
        SIGNAL_UNREF(sm);
    signal_buffer_free(out);
    return rc;
}

/* Session Alice <-> Bob established and acknowledged (untimed). */
static int pb_establish(pb_pair *pp)
{
    int rc;

    if ((rc = pb_bob_keys(pp, 1)) != 0 || (rc = pb_process_bundle(pp, 1)) != 0)
        return rc;
    if ((rc = pb_send(pp, pp->a2b, pp->b2a, PB_SMALL, 0)) != 0)
        return rc;
    return pb_send(pp, pp->b2a, pp->a2b, PB_SMALL, 1);
}

static int pb_setup(pb_pair *pp, unsigned count, uint64_t *ns)
{
    int rc;

    if ((rc = pb_bob_keys(pp, count)) != 0)
        return rc;
    for (unsigned i = 0; i < count; i++) {
        uint64_t t0 = pb_now_ns();
        if ((rc = pb_process_bundle(pp, i + 1)) != 0)
            return rc;
        if ((rc = pb_send(pp, pp->a2b, pp->b2a, PB_SMALL, i)) != 0)
            return rc;
        *ns += pb_now_ns() - t0;
        signal_protocol_session_delete_session(peer_party_store(pp->alice), &pp->bob_addr);
        signal_protocol_session_delete_session(peer_party_store(pp->bob), &pp->alice_addr);
    }
    return 0;
}

static int pb_stream(pb_pair *pp, unsigned count, size_t len, int alternate, uint64_t *ns)
{
    uint64_t t0;
    int rc;

    if ((rc = pb_establish(pp)) != 0)
        return rc;
    t0 = pb_now_ns();
    for (unsigned i = 0; i < count; i++) {
        int a_sends = !alternate || (i % 2) == 0;
        rc =
            a_sends ? pb_send(pp, pp->a2b, pp->b2a, len, i) : pb_send(pp, pp->b2a, pp->a2b, len, i);
        if (rc != 0)
            return rc;
    }
    *ns = pb_now_ns() - t0;
    return 0;
}

static int pb_group(pb_pair *pp, unsigned count, uint64_t *ns)
{
    static const char gid[] = "bench-group";
    signal_protocol_sender_key_name name;
    group_session_builder *ab = NULL, *bb = NULL;
    group_cipher *ac = NULL, *bc = NULL;
    sender_key_distribution_message *skdm = NULL, *skdm2 = NULL;
    signal_buffer *ser;
    uint8_t pt[PB_SMALL];
    uint64_t t0;
    int rc;

    name.group_id = gid;
    name.group_id_len = sizeof(gid) - 1;
    name.sender = pp->alice_addr;
    if ((rc = group_session_builder_create(&ab, peer_party_store(pp->alice), pp->ctx)) != 0 ||
        (rc = group_session_builder_create(&bb, peer_party_store(pp->bob), pp->ctx)) != 0 ||
        (rc = group_session_builder_create_session(ab, &skdm, &name)) != 0)
        goto out;
    ser = ciphertext_message_get_serialized((ciphertext_message *)skdm);
    if ((rc = sender_key_distribution_message_deserialize(&skdm2, signal_buffer_data(ser),
                                                          signal_buffer_len(ser), pp->ctx)) != 0 ||
        (rc = group_session_builder_process_session(bb, &name, skdm2)) != 0)
        goto out;
    if ((rc = group_cipher_create(&ac, peer_party_store(pp->alice), &name, pp->ctx)) != 0 ||
        (rc = group_cipher_create(&bc, peer_party_store(pp->bob), &name, pp->ctx)) != 0)
        goto out;
    t0 = pb_now_ns();
    for (unsigned i = 0; i < count && rc == 0; i++) {
        ciphertext_message *msg = NULL;
        sender_key_message *skm = NULL;
        signal_buffer *out = NULL;

        pb_fill(pt, sizeof(pt), i);
        rc = group_cipher_encrypt(ac, pt, sizeof(pt), &msg);
        if (rc == 0) {
            ser = ciphertext_message_get_serialized(msg);
            rc = sender_key_message_deserialize(&skm, signal_buffer_data(ser),
                                                signal_buffer_len(ser), pp->ctx);
        }
        if (rc == 0)
            rc = group_cipher_decrypt(bc, skm, NULL, &out);
        if (rc == 0 && (signal_buffer_len(out) != sizeof(pt) ||
                        memcmp(signal_buffer_data(out), pt, sizeof(pt)) != 0))
            rc = PB_MISMATCH;
        if (msg != NULL)
            SIGNAL_UNREF(msg);
        if (skm != NULL)
            SIGNAL_UNREF(skm);
        signal_buffer_free(out);
    }
    *ns = pb_now_ns() - t0;
out:
    group_cipher_free(ac);
    group_cipher_free(bc);
    group_session_builder_free(ab);
    group_session_builder_free(bb);
    if (skdm != NULL)
        SIGNAL_UNREF(skdm);
    if (skdm2 != NULL)
        SIGNAL_UNREF(skdm2);
    return rc;
}

int peer_bench_run(signal_context *ctx, const char *scenario, unsigned count, uint64_t *ns)
{
    pb_pair pp;
    int rc;

    *ns = 0;
    rc = pb_pair_new(&pp, ctx);
    if (rc != 0)
        goto out;
    if (strcmp(scenario, "setup") == 0)
        rc = pb_setup(&pp, count, ns);
    else if (strcmp(scenario, "one-way") == 0)
        rc = pb_stream(&pp, count, PB_SMALL, 0, ns);
    else if (strcmp(scenario, "ping-pong") == 0)
        rc = pb_stream(&pp, count, PB_SMALL, 1, ns);
    else if (strcmp(scenario, "4k") == 0)
        rc = pb_stream(&pp, count, PB_LARGE, 0, ns);
    else if (strcmp(scenario, "group") == 0)
        rc = pb_group(&pp, count, ns);
    else
        rc = SG_ERR_INVAL;
out:
    pb_pair_free(&pp);
    return rc;
}
