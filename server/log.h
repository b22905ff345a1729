/*
 * server/log.h -- sottod's structured log lines.
 *
 * Design: one line per event on stderr, logfmt style:
 *   ts=2026-11-30T04:40:00Z level=info event=login_ok dev=2
 * Only event names, counts, sizes, device ids and status codes are logged:
 * never message bodies, keys, signatures, tokens, usernames or IP
 * addresses. libwebsockets' own messages (which may contain peer
 * addresses) go through sottod_log_lws(), which blanks anything that looks
 * like an address.
 */
#ifndef SOTTOD_LOG_H
#define SOTTOD_LOG_H

enum { SOTTOD_LOG_DEBUG = 0, SOTTOD_LOG_INFO = 1, SOTTOD_LOG_WARN = 2, SOTTOD_LOG_ERROR = 3 };

/* Sets the minimum level written. */
void sottod_log_set_level(int level);

/* Parses "debug", "info", "warn", "error"; returns the level or -1. */
int sottod_log_parse_level(const char *s);

/* Writes one line: `event` is a bare word, `fmt` (may be NULL) continues
 * the line with more key=value pairs. */
void sottod_log(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Emitter for lws_set_log_level(): scrubs addresses, logs at warn/error. */
void sottod_log_lws(int lws_level, const char *line);

#endif /* SOTTOD_LOG_H */
