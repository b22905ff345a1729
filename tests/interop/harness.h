/*
 * tests/interop/harness.h -- drives sotto-interop-peer (libsignal-protocol-c
 * in its own process, see peer.c for the line protocol) from the cmocka
 * interop tests, and holds one libsotto device ("party") on a memory store.
 *
 * Conventions of the tests: the peer knows libsotto's device as address
 * ("sotto", 1); libsotto knows a peer as (its name, 1), e.g. ("peer", 1).
 * Every helper asserts (cmocka) instead of returning errors, except those
 * named *_try which return the error (a SOTTO_ERR_* code, or the peer's
 * error name).
 */
#ifndef SOTTO_INTEROP_HARNESS_H
#define SOTTO_INTEROP_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "sotto/keys.h"
#include "sotto/memory_store.h"
#include "sotto/session.h"

#define IH_US_NAME "sotto"
#define IH_MAX_TOKENS 16

/* ---- the peer process ---- */

typedef struct ih_peer {
    pid_t pid;
    FILE *to;   /* its stdin */
    FILE *from; /* its stdout */
    char *line; /* last response line (owned) */
    size_t cap;
    char *tok[IH_MAX_TOKENS]; /* tokens of the last response */
    int ntok;
    char name[32]; /* how libsotto addresses this peer */
} ih_peer;

/* Starts a peer process known to libsotto as `name` (device 1). The
 * binary is SOTTO_INTEROP_PEER_PATH (from CMake) unless the environment
 * variable SOTTO_INTEROP_PEER names another one. */
ih_peer *ih_peer_start(const char *name);
/* Sends quit, waits, asserts a clean exit status, frees. */
void ih_peer_stop(ih_peer *p);
/* Sends one request (printf format) and reads the response; returns the
 * response line, tokenised into p->tok / p->ntok. */
const char *ih_peer_cmd(ih_peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, asserting the response starts with "ok"; returns p->ntok. */
int ih_peer_ok(ih_peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, asserting the response is exactly "err <name>". */
void ih_peer_err(ih_peer *p, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the libsotto device ---- */

typedef struct ih_party {
    sotto_key_pair identity;
    uint32_t registration_id;
    sotto_memory_store *ms;
    const sotto_protocol_store *st;
    uint32_t next_prekey_id;
    uint32_t next_signed_prekey_id;
} ih_party;

ih_party *ih_party_new(void);
/* A party with the given identity key pair and registration id. */
ih_party *ih_party_new_with(const sotto_key_pair *identity, uint32_t registration_id);
void ih_party_free(ih_party *u);
sotto_address ih_addr(const char *name);

/* Generates and stores a one-time prekey; returns its id. */
uint32_t ih_party_add_prekey(ih_party *u);
/* Generates and stores a signed prekey; returns its id. */
uint32_t ih_party_add_signed_prekey(ih_party *u);
/* Bundle of `u` with signed prekey spk_id and (if pk_id != 0) prekey pk_id. */
sotto_prekey_bundle ih_party_bundle(ih_party *u, uint32_t pk_id, uint32_t spk_id);
/* The peer's bundle (it generates nothing here: ids must exist there). */
sotto_prekey_bundle ih_peer_bundle(ih_peer *p, uint32_t pk_id, uint32_t spk_id);
/* The peer processes a bundle of libsotto's device; returns "ok" or the
 * peer's error name (static string or pointer into p->line). */
const char *ih_peer_process_bundle_try(ih_peer *p, const sotto_prekey_bundle *b);

/* ---- messages ---- */

typedef struct ih_msg {
    int type;       /* 2, 3 (or 4 for group messages) */
    char *hex;      /* serialised message, hex (owned) */
    uint8_t *bytes; /* the same, raw (owned) */
    size_t len;
    char text[80]; /* the plaintext that was encrypted */
} ih_msg;

void ih_msg_free(ih_msg *m);
/* A copy of m with byte `at` (negative: from the end) XOR `mask`. */
ih_msg ih_msg_tampered(const ih_msg *m, long at, uint8_t mask);

/* Offset just past the inner SignalMessage (field 4) of a PreKey message:
 * the byte before it is the last byte of the inner MAC (spec 1.4). */
size_t ih_prekey_inner_end(const ih_msg *m);

/* Walks the protobuf in b[0..len) and writes each field's key (field
 * number << 3 | wire type) to keys[], in wire order; returns the count.
 * If inner_field is non-zero, *inner / *inner_len receive that
 * length-delimited field's contents. Asserts the encoding is well formed. */
size_t ih_pb_keys(const uint8_t *b, size_t len, uint32_t *keys, size_t max, uint32_t inner_field,
                  const uint8_t **inner, size_t *inner_len);

/* peer encrypts `text` for libsotto. */
ih_msg ih_peer_encrypt(ih_peer *p, const char *text);
/* libsotto encrypts `text` for peer `p`. */
ih_msg ih_us_encrypt(ih_party *u, ih_peer *p, const char *text);
/* peer decrypts m from libsotto and must get m->text. */
void ih_peer_decrypt_ok(ih_peer *p, const ih_msg *m);
/* peer must refuse m with error `name`. */
void ih_peer_decrypt_err(ih_peer *p, const ih_msg *m, const char *name);
/* libsotto decrypts m from peer `p`; returns the SOTTO_ERR_* code; on
 * success asserts the plaintext equals m->text. */
int ih_us_decrypt_try(ih_party *u, ih_peer *p, const ih_msg *m);
void ih_us_decrypt_ok(ih_party *u, ih_peer *p, const ih_msg *m);

/* One message each way helper: encrypt, decrypt, assert type (0 = any). */
void ih_peer_to_us(ih_peer *p, ih_party *u, const char *text, int want_type);
void ih_us_to_peer(ih_party *u, ih_peer *p, const char *text, int want_type);

/* The serialised session record libsotto holds for `p` (owned, may be NULL). */
uint8_t *ih_us_record(ih_party *u, ih_peer *p, size_t *len);

/* Session establishment. ih_peer_processes_our_bundle: libsotto's device
 * makes a fresh signed prekey (and one-time prekey when with_opk) and the
 * peer processes that bundle. ih_us_process_peer_bundle: the peer makes
 * signed prekey spk_id (and one-time prekey pk_id when with_opk) and
 * libsotto processes its bundle. */
void ih_peer_processes_our_bundle(ih_party *u, ih_peer *p, bool with_opk);
void ih_us_process_peer_bundle(ih_party *u, ih_peer *p, bool with_opk, uint32_t pk_id,
                               uint32_t spk_id);
/* Establishes an acknowledged session (initiator: peer if peer_starts). */
void ih_establish(ih_party *u, ih_peer *p, bool peer_starts);

/* Deterministic shuffle of n indices. */
void ih_shuffle(size_t *idx, size_t n, uint32_t seed);

#endif
