/*
 * server/log.c -- structured log lines (see log.h for the rules on what
 * may be logged).
 */
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int g_level = SOTTOD_LOG_INFO;

static const char *const g_names[] = {"debug", "info", "warn", "error"};

void sottod_log_set_level(int level)
{
    if (level >= SOTTOD_LOG_DEBUG && level <= SOTTOD_LOG_ERROR)
        g_level = level;
}

int sottod_log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, g_names[i]) == 0)
            return i;
    return -1;
}

static void write_prefix(char *line, size_t cap, size_t *len, int level, const char *event)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int n = snprintf(line, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02dZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     g_names[level], event);
    *len = (n < 0) ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

void sottod_log(int level, const char *event, const char *fmt, ...)
{
    char line[2048];
    size_t len = 0;
    if (level < g_level || level < SOTTOD_LOG_DEBUG || level > SOTTOD_LOG_ERROR)
        return;
    write_prefix(line, sizeof(line), &len, level, event);
    if (fmt != NULL && len + 2 < sizeof(line)) {
        va_list ap;
        line[len++] = ' ';
        va_start(ap, fmt);
        int n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
        va_end(ap);
        if (n > 0)
            len = ((size_t)n >= sizeof(line) - len) ? sizeof(line) - 1 : len + (size_t)n;
    }
    line[len] = '\0';
    fprintf(stderr, "%s\n", line);
}

/* True when s[0..n) looks like part of an IPv4/IPv6 address or port. */
static size_t addr_run(const char *s)
{
    size_t n = 0, dots = 0, colons = 0, digits = 0;
    while (s[n] != '\0' && (isxdigit((unsigned char)s[n]) || s[n] == '.' || s[n] == ':')) {
        if (s[n] == '.')
            dots++;
        else if (s[n] == ':')
            colons++;
        else if (isdigit((unsigned char)s[n]))
            digits++;
        n++;
    }
    if ((dots >= 3 && digits >= 4) || (colons >= 2 && n >= 3))
        return n;
    return 0;
}

void sottod_log_lws(int lws_level, const char *in)
{
    char clean[384];
    size_t o = 0;
    int level = (lws_level & 1) ? SOTTOD_LOG_ERROR : SOTTOD_LOG_WARN; /* LLL_ERR == 1 */
    for (size_t i = 0; in[i] != '\0' && o + 8 < sizeof(clean);) {
        size_t run = addr_run(in + i);
        if (run > 0) {
            memcpy(clean + o, "[addr]", 6);
            o += 6;
            i += run;
        } else if (in[i] == '\n' || in[i] == '"') {
            i++;
        } else {
            clean[o++] = isprint((unsigned char)in[i]) ? in[i] : '?';
            i++;
        }
    }
    clean[o] = '\0';
    sottod_log(level, "lws", "msg=\"%s\"", clean);
}
