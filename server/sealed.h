/*
 * server/sealed.h -- sealed sender in sottod (issue 12; docs/api.md "Sealed
 * sender", docs/operating.md "Sealed sender keys"; the certificate formats
 * are libsotto's, include/sotto/sealed.h).
 *
 * Keys (data directory, 0600, 32 raw bytes each, created at the first start
 * that finds them missing, also on an existing data directory; but a lost
 * sealed-root.key is not replaced once the store is marked as having handed
 * a root out: see sottod_sealed_start):
 *   sealed-root.key    the trust root's X25519 private key. Its public key
 *                      (33 bytes, 0x05 || u) goes to every client in
 *                      RegisterResponse / LoginResponse.sealed_trust_root
 *                      and is pinned there; `sottod admin sealed-root`
 *                      prints it (hex) so operators can publish it.
 *   sealed-server.key  the server certificate key (key id 1), which signs
 *                      sender certificates.
 * At start the server certificate (key id 1, signed by the root) is made
 * once and kept in memory; every sender certificate embeds it. Rotation of
 * either key is not implemented (docs/operating.md): losing sealed-root.key
 * makes every client refuse sealed messages signed under a new root.
 *
 * Test hooks (sottod-test only, never the installed sottod): the
 * environment variable SOTTOD_TEST_SENDER_CERT at start makes every sender
 * certificate wrong in one way, for the client's end-to-end tests:
 *   expired     expires 1 s before it is issued (already expired)
 *   other       names the username "mallory" instead of the device's owner
 *   rogue_root  signed by a server certificate under a fresh, different
 *               root (the advertised root stays the real one)
 * Everything here runs on the event-loop thread.
 */
#ifndef SOTTOD_SEALED_H
#define SOTTOD_SEALED_H

#include <stddef.h>
#include <stdint.h>

typedef struct sottod_server sottod_server;
typedef struct sottod_sealed sottod_sealed;

#define SOTTOD_SEALED_ROOT_BYTES 33   /* serialised public key, 0x05 || u */
#define SOTTOD_SEALED_SERVER_KEY_ID 1 /* the server certificate's key id */

/* Loads (or creates, when missing) both keys in srv->cfg.data_dir, makes
 * the server certificate and reads the test hook; sets srv->sealed. The
 * root is created only while srv->store lacks the marker meta('sealed_root')
 * (sottod_store_sealed_root_mark, set here once the root is loaded): a
 * missing sealed-root.key in a marked store is refused (restore it, or
 * `sottod admin new-sealed-root`). Needs srv->store open; drains it.
 * Returns 0, or -1 with a one-line reason in why (why_cap bytes). */
int sottod_sealed_start(sottod_server *srv, char *why, size_t why_cap);

/* Wipes the keys and frees srv->sealed (NULL-safe). */
void sottod_sealed_stop(sottod_server *srv);

/* The trust root's public key (SOTTOD_SEALED_ROOT_BYTES bytes), valid while
 * the server runs; NULL before sottod_sealed_start succeeded. */
const uint8_t *sottod_sealed_root(const sottod_server *srv);

/* Issues a sender certificate for (username, device_id, identity_key (33
 * bytes, the device's stored identity key)) expiring now_ms +
 * sender_cert_validity_s * 1000 (the test hooks change it, see above).
 * *cert (heap, *cert_len bytes) belongs to the caller (free()). Returns 0,
 * or -1 (bad key, out of memory; nothing allocated). */
int sottod_sealed_issue(sottod_server *srv, const char *username, uint32_t device_id,
                        const uint8_t *identity_key, uint64_t now_ms, uint8_t **cert,
                        size_t *cert_len, uint64_t *expires_ms);

/* `sottod admin new-sealed-root`: creates a new DATA_DIR/sealed-root.key
 * (0600) when it is missing -- the only way past the start-up refusal after
 * a lost root (a store marked as having handed out a root, see
 * sottod_sealed_start) -- and prints the new public key as 66 hex digits
 * and a newline on stdout. Never replaces an existing file. Returns the
 * exit code: 0, or 1 (the file exists, or it cannot be written; reason on
 * stderr). */
int sottod_sealed_new_root(const char *data_dir);

/* `sottod admin sealed-root`: prints the trust root's public key of
 * data_dir as 66 hex digits and a newline on stdout. Never creates a key.
 * Returns the exit code: 0, or 1 (missing or unreadable key, reason on
 * stderr). */
int sottod_sealed_print_root(const char *data_dir);

#endif /* SOTTOD_SEALED_H */
