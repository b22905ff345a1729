/*
 * tests/interop/peer.h -- the libsignal-protocol-c side of the interop tests
 * and of the library benchmark (program sotto-interop-peer).
 *
 * The peer links Debian's libsignal-protocol-c 2.3.3 with a crypto provider
 * on OpenSSL libcrypto (peer_crypto.c) and in-memory stores for all five
 * store types (peer_store.c). It never links libsotto, libsodium or the
 * system protobuf-c: libsignal-protocol-c exports unprefixed internals
 * (crypto_hash_sha512, a bundled protobuf-c) that would clash
 * (shared/specs/libsignal-protocol-c-notes.md). It runs in its own process,
 * driven over stdin/stdout by the line protocol of peer.c.
 *
 * A "party" is one local device: identity key pair, registration id and its
 * own store context, so one process can hold two parties (the benchmark
 * talks Alice to Bob inside the peer process).
 */
#ifndef SOTTO_INTEROP_PEER_H
#define SOTTO_INTEROP_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <signal/signal_protocol.h>

typedef struct peer_party peer_party;

/*
 * Creates a signal_context with the OpenSSL crypto provider and recursive
 * locks installed. Returns 0 or a negative SG_ERR_* code; the caller frees
 * with peer_context_free().
 */
int peer_context_new(signal_context **out);
void peer_context_free(signal_context *ctx);
/* Frees the calling thread's cached OpenSSL contexts (call before exit). */
void peer_crypto_thread_cleanup(void);

/*
 * Creates a party with a fresh identity key pair and registration id and an
 * empty set of in-memory stores. Returns 0 or a negative SG_ERR_* code.
 */
int peer_party_new(peer_party **out, signal_context *ctx);
void peer_party_free(peer_party *p);

/* Replaces the party's identity key pair and registration id by fresh ones
 * (sessions and prekeys are kept). Returns 0 or SG_ERR_*. */
int peer_party_regenerate_identity(peer_party *p);

signal_protocol_store_context *peer_party_store(peer_party *p);
ratchet_identity_key_pair *peer_party_identity(peer_party *p);
uint32_t peer_party_registration_id(peer_party *p);

/* Number of one-time prekeys currently stored. */
size_t peer_party_prekey_count(peer_party *p);

/* Maps an SG_ERR_* code to a stable name (e.g. "DUPLICATE"). */
const char *peer_error_name(int code);

/* The benchmark scenarios run inside the peer (bench/lib_peer_bench.c).
 * Runs `scenario` for `count` operations; *ns receives the elapsed
 * nanoseconds of the timed part. Returns 0 or a negative SG_ERR_* code
 * (-1 for an unknown scenario or a plaintext mismatch). */
int peer_bench_run(signal_context *ctx, const char *scenario, unsigned count, uint64_t *ns);

#endif
