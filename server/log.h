/*
 * server/log.h -- sottod's structured log lines.
 *
 * Design: one line per event on stderr, logfmt style:
 *   ts=2026-11-30 level=info event=started registration=open
 * Private detail (the default, issue 12): timestamps are DATES, and
 * per-user events (sottod_log_user: logins, registrations, device changes,
 * a client's protocol error) are not written one by one but counted, and
 * the day's counts written as one `event=user_events date=D login_ok=N ...`
 * line when the date changes (sottod_log_flush) and at shutdown. Debug
 * detail (log_detail = debug, an operator's choice, warned at start)
 * writes time of day (ts=2026-11-30T04:40:00Z) and every per-user event.
 * Only event names, counts, sizes, device ids and status codes are logged:
 * never message bodies, keys, signatures, tokens, usernames or IP
 * addresses. libwebsockets' own messages (which may contain peer
 * addresses) go through sottod_log_lws(), which blanks anything that looks
 * like an address.
 */
#ifndef SOTTOD_LOG_H
#define SOTTOD_LOG_H

#include <stdbool.h>

enum { SOTTOD_LOG_DEBUG = 0, SOTTOD_LOG_INFO = 1, SOTTOD_LOG_WARN = 2, SOTTOD_LOG_ERROR = 3 };

/* Sets the minimum level written. */
void sottod_log_set_level(int level);

/* Parses "debug", "info", "warn", "error"; returns the level or -1. */
int sottod_log_parse_level(const char *s);

/* Writes one line: `event` is a bare word, `fmt` (may be NULL) continues
 * the line with more key=value pairs. */
void sottod_log(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* true: debug detail (times of day, every per-user event); false
 * (default): private detail. */
void sottod_log_set_debug_detail(bool on);

/* A per-user event (one account's or connection's action): written as
 * sottod_log() in debug detail; in private detail only counted per event
 * name for the day's user_events line (the fields are dropped). */
void sottod_log_user(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Private detail: writes the user_events line of a finished day (force:
 * also today's counts so far, at shutdown) and resets the counts. Call it
 * from a timer (sottod: housekeeping, every minute). */
void sottod_log_flush(bool force);

/* Emitter for lws_set_log_level(): scrubs addresses, logs at warn/error. */
void sottod_log_lws(int lws_level, const char *line);

#endif /* SOTTOD_LOG_H */
