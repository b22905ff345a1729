/*
 * tests/e2e/crash_shim.c -- an LD_PRELOAD library that kills the `sotto`
 * client (SIGKILL, no clean-up) at a chosen point while it processes a
 * received envelope, for e2e_crash_before_ack.sh. It complements the
 * client's own hook (SOTTO_TEST_CRASH_AFTER_DECRYPT, docs/cli.md) with the
 * points that hook does not reach: before the commit and after the output.
 * It depends on two details of client/core (the envelope transaction inserts
 * into client_seen_envelopes; COMMIT goes through sqlite3_exec): if they
 * change, the test says "never reached the crash point". The after-sql and
 * pause hooks name the SQL they wait for (client/core/store.c) in the test.
 *
 * The client processes a pushed envelope as one local transaction (decrypt,
 * store the message, mark the envelope id as seen: "INSERT ... INTO
 * client_seen_envelopes"), COMMITs, prints the event, and only then acks it
 * to the server (client/core/recv.c). The shim watches the client's SQLite
 * calls (sqlite3_prepare_v2 / sqlite3_exec are resolved through the dynamic
 * libsqlite3, so they can be interposed) and stdout flushes:
 *
 *   SOTTO_E2E_CRASH=before-commit  die at the COMMIT of the first envelope
 *                                  transaction, before it runs (decrypted,
 *                                  nothing stored, nothing acked)
 *   SOTTO_E2E_CRASH=after-commit   die right after that COMMIT succeeded
 *                                  (stored, not shown, not acked)
 *   SOTTO_E2E_CRASH=after-output   die after the first stdout flush that
 *                                  follows that COMMIT (stored and shown,
 *                                  not acked)
 *   SOTTO_E2E_CRASH=after-sql      die right after the first statement whose
 *                                  SQL contains SOTTO_E2E_CRASH_SQL was
 *                                  stepped (e2e_pending_events.sh: after
 *                                  "DELETE FROM client_pending_events")
 *   SOTTO_E2E_CRASH_MARK=FILE      created just before dying, so the test
 *                                  knows the crash point was reached.
 *
 * And a pause (no crash), to make two processes race deterministically:
 *   SOTTO_E2E_PAUSE_SQL=TEXT       before the first step of the first UPDATE
 *   SOTTO_E2E_PAUSE_MS=N           or DELETE statement whose SQL contains
 *                                  TEXT, sleep N ms (once per process) and
 *                                  create SOTTO_E2E_PAUSE_MARK=FILE (if set)
 *                                  first.
 *
 * Test code only; never linked into anything.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

typedef int (*prepare_fn)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
typedef int (*exec_fn)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *,
                       char **);
typedef int (*fflush_fn)(FILE *);
typedef int (*step_fn)(sqlite3_stmt *);

static int g_marked;    /* an envelope transaction is open */
static int g_committed; /* ... and was committed */

static const char *mode(void)
{
    const char *m = getenv("SOTTO_E2E_CRASH");
    return m != NULL ? m : "";
}

static void die(void)
{
    const char *mark = getenv("SOTTO_E2E_CRASH_MARK");
    if (mark != NULL) {
        int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            ssize_t w = write(fd, mode(), strlen(mode()));
            (void)w; /* best effort: the file's existence is the signal */
            close(fd);
        }
    }
    raise(SIGKILL);
    _exit(137); /* not reached */
}

int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st, const char **tail)
{
    static prepare_fn real;
    if (real == NULL)
        real = (prepare_fn)dlsym(RTLD_NEXT, "sqlite3_prepare_v2");
    if (sql != NULL && strstr(sql, "INTO client_seen_envelopes") != NULL)
        g_marked = 1;
    return real(db, sql, n, st, tail);
}

static int sql_has(sqlite3_stmt *st, const char *needle)
{
    const char *sql = st != NULL ? sqlite3_sql(st) : NULL;
    return sql != NULL && needle != NULL && needle[0] != '\0' && strstr(sql, needle) != NULL;
}

int sqlite3_step(sqlite3_stmt *st)
{
    static step_fn real;
    static int paused;
    const char *pause = getenv("SOTTO_E2E_PAUSE_SQL");
    int rc;

    if (real == NULL)
        real = (step_fn)dlsym(RTLD_NEXT, "sqlite3_step");
    if (!paused && sql_has(st, pause) &&
        (strncmp(sqlite3_sql(st), "UPDATE", 6) == 0 ||
         strncmp(sqlite3_sql(st), "DELETE", 6) == 0)) {
        const char *ms = getenv("SOTTO_E2E_PAUSE_MS");
        const char *mark = getenv("SOTTO_E2E_PAUSE_MARK");
        long n = ms != NULL ? strtol(ms, NULL, 10) : 1000;
        struct timespec ts = {n / 1000, (n % 1000) * 1000000L};
        paused = 1;
        if (mark != NULL) {
            int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd >= 0)
                close(fd);
        }
        nanosleep(&ts, NULL);
    }
    rc = real(st);
    if ((rc == SQLITE_DONE || rc == SQLITE_ROW) && strcmp(mode(), "after-sql") == 0 &&
        sql_has(st, getenv("SOTTO_E2E_CRASH_SQL")))
        die();
    return rc;
}

int sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **), void *arg,
                 char **err)
{
    static exec_fn real;
    int rc;
    int is_commit = sql != NULL && strcmp(sql, "COMMIT") == 0;
    if (real == NULL)
        real = (exec_fn)dlsym(RTLD_NEXT, "sqlite3_exec");
    if (is_commit && g_marked && strcmp(mode(), "before-commit") == 0)
        die();
    rc = real(db, sql, cb, arg, err);
    if (is_commit && g_marked && rc == SQLITE_OK) {
        if (strcmp(mode(), "after-commit") == 0)
            die();
        g_committed = 1;
    }
    return rc;
}

int fflush(FILE *f)
{
    static fflush_fn real;
    int rc;
    if (real == NULL)
        real = (fflush_fn)dlsym(RTLD_NEXT, "fflush");
    rc = real(f);
    if (f == stdout && g_committed && strcmp(mode(), "after-output") == 0)
        die();
    return rc;
}
