/*
 * server/net.h -- running the server: the libwebsockets context, the HTTP
 * routes, the WebSocket endpoint, housekeeping, signals and shutdown.
 */
#ifndef SOTTOD_NET_H
#define SOTTOD_NET_H

#include "config.h"

/* Runs sottod with cfg until SIGTERM/SIGINT. Prints the two parseable lines
 * ("sottod: listening on https://HOST:PORT", "sottod: certificate sha256
 * HEX") on stdout once listening. Returns the process exit code. */
int sottod_serve(const sottod_config *cfg);

#endif /* SOTTOD_NET_H */
