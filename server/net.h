/*
 * server/net.h -- running the server: the libwebsockets context, the HTTP
 * routes, the WebSocket endpoint, housekeeping, signals and shutdown.
 */
#ifndef SOTTOD_NET_H
#define SOTTOD_NET_H

#include <stdbool.h>

#include "config.h"

/* Runs sottod with cfg until SIGTERM/SIGINT. Prints the two parseable lines
 * ("sottod: listening on https://HOST:PORT", "sottod: certificate sha256
 * HEX") on stdout once listening. Returns the process exit code (1 if it
 * could not start; the reason is logged).
 *
 * Start-up rules (docs/operating.md): the data directory is locked for the
 * process lifetime (a second sottod on it is refused); the database is
 * integrity-checked; a missing or empty database is created only if the
 * directory is brand new (sottod_datadir_is_new) or `init` is true (the
 * --init option); otherwise sottod refuses to start. `init` never replaces
 * a database that holds anything. */
int sottod_serve(const sottod_config *cfg, bool init);

#endif /* SOTTOD_NET_H */
