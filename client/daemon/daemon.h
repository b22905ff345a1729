/*
 * client/daemon/daemon.h -- `sotto daemon` (docs/rpc.md): one process that
 * holds the server connection of each local account it serves and answers
 * JSON-RPC 2.0 on a Unix socket and/or stdio. Internal to the `sotto`
 * binary: client/cli/main.c runs the commands, client/daemon/ serves them.
 *
 * Threads: one I/O thread (poll) reads requests and writes responses and
 * notifications; one worker thread per account exclusively owns that
 * account's sc_client (the core is single-threaded), runs its receive loop
 * and executes the calls queued for it (woken through sc_set_wake).
 */
#ifndef SOTTO_DAEMON_H
#define SOTTO_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sotto_client.h"

/* The streams a command run by sotto_cli_run uses instead of the process's
 * own (every one non-NULL), and whether each counts as a terminal. */
typedef struct sotto_cli_io {
    FILE *in, *out, *err;
    bool in_tty, out_tty, err_tty;
} sotto_cli_io;

/* ---- implemented by client/cli/main.c ---- */

/* Runs one CLI command on `c` on the calling thread, exactly as `sotto
 * --account A [--json] ARGV...` would after opening the account: argv[0]
 * is the command's name, then its arguments (global options removed).
 * Output to io. Returns the command's exit code (docs/cli.md). */
int sotto_cli_run(sc_client *c, bool json, int argc, char **argv, const sotto_cli_io *io);

/* The event as `sotto --json receive` prints it: one JSON object (no
 * newline), malloc()ed, NULL when out of memory. */
char *sotto_cli_event_json(sc_client *c, const sc_event *ev);

/* ---- implemented by client/daemon/ ---- */

#define SOTTO_DAEMON_EXIT_BUSY 10 /* = the CLI's exit code 10 */

/* `sotto daemon [--account NAME ...] [--socket PATH] [--stdio]`: argv[0] is
 * "daemon". opt: the global options (data_home). Returns the exit code. */
int sotto_daemon_main(int argc, char **argv, const sc_options *opt);

/* The daemon's default socket: $XDG_RUNTIME_DIR/sotto/daemon.sock (else
 * /tmp/sotto-UID/daemon.sock); $SOTTO_DAEMON_SOCKET overrides it. Writes
 * into buf (cap bytes); false when it does not fit. */
bool sotto_daemon_socket_path(char *buf, size_t cap);

/* The CLI side of forwarding (client/daemon/forward.c): runs `argv` (the
 * command's name and arguments) for `account` through the daemon on
 * `socket_path`, copying its output to stdout/stderr and reading stdin
 * when the command would. Returns the command's exit code, or -1 when the
 * daemon could not be reached or does not serve the account (nothing
 * was run). */
int sotto_daemon_forward(const char *socket_path, const char *account, bool json, int argc,
                         char **argv);

/* The subscriber name every `sotto receive`/`listen` run through a daemon
 * uses (docs/rpc.md "The CLI through the daemon"): one shared cursor. */
#define SOTTO_DAEMON_CLI_SUBSCRIBER "cli"

/* Called with one event: `event_json` is the object `sotto --json receive`
 * prints for it (NUL-terminated, valid only during the call). It returns
 * once the event was written to stdout (a write failure ends the process,
 * so the event stays unacknowledged). */
typedef void (*sotto_daemon_event_fn)(void *ud, const char *event_json);

/* Results of sotto_daemon_receive besides 0 (done). */
#define SOTTO_DAEMON_UNREACHABLE (-1) /* nothing subscribed or printed */
#define SOTTO_DAEMON_GONE (-2)        /* the daemon closed the connection */

/* `receive`/`listen` for `account` through the daemon on `socket_path`:
 * subscribes as SOTTO_DAEMON_CLI_SUBSCRIBER, calls fn for each event that
 * subscriber has not acknowledged (oldest first, each id once) and
 * acknowledges it after fn returned. stay false: returns after the waiting
 * events and `quiet_ms` without a new one; stay true: until *stop becomes
 * non-zero (checked every 100 ms). Returns 0 (every acknowledgement
 * answered), SOTTO_DAEMON_UNREACHABLE or SOTTO_DAEMON_GONE. */
int sotto_daemon_receive(const char *socket_path, const char *account, bool stay, unsigned quiet_ms,
                         const volatile int *stop, sotto_daemon_event_fn fn, void *ud);

/* ---- the request layer (rpc.c), also used by tests/fuzz/fuzz_rpc_request.c ---- */

typedef struct dm_daemon dm_daemon;

/* A daemon over already opened (and locked) accounts, without sockets.
 * sync: calls run on the caller's thread inside dm_handle_line (the fuzz
 * target); else each account gets a worker thread (dm_start). Takes
 * ownership of the clients. NULL when out of memory. */
dm_daemon *dm_new(sc_client **clients, size_t n, bool sync);
int dm_start(dm_daemon *d);
/* Stops the workers (their calls answered) and frees everything. */
void dm_free(dm_daemon *d);

/* Handles one line (one JSON-RPC request or batch) from connection `conn`.
 * Responses and notifications are queued for their connection: take them
 * with dm_take_output. */
void dm_handle_line(dm_daemon *d, uint64_t conn, const char *line, size_t len);
/* The connection is gone: its subscriptions end. */
void dm_conn_closed(dm_daemon *d, uint64_t conn);

/* One queued output line (JSON, no newline), malloc()ed; false when none.
 * *conn: its connection. */
bool dm_take_output(dm_daemon *d, uint64_t *conn, char **text);
/* A pipe end that becomes readable when output is queued (drain it). */
int dm_output_fd(dm_daemon *d);
/* No line waits for an answer and no output is queued. */
bool dm_idle(dm_daemon *d);

#endif /* SOTTO_DAEMON_H */
