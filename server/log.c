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
static bool g_debug_detail; /* false: dates only, per-user events counted */

/* Private detail: today's per-user event counts (by event name). */
#define USER_EVENTS_MAX 32
static struct {
    const char *event; /* a string literal of the caller */
    unsigned long long n;
} g_counts[USER_EVENTS_MAX];
static size_t g_ncounts;
static int g_count_day = -1; /* days since 1970 of the counts; -1 = none */

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
    int n;
    gmtime_r(&now, &tm);
    if (g_debug_detail)
        n = snprintf(line, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02dZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     g_names[level], event);
    else
        n = snprintf(line, cap, "ts=%04d-%02d-%02d level=%s event=%s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, g_names[level], event);
    *len = (n < 0) ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

void sottod_log_set_debug_detail(bool on)
{
    g_debug_detail = on;
}

static int today(void)
{
    return (int)(time(NULL) / 86400);
}

void sottod_log_flush(bool force)
{
    char line[1536];
    size_t o = 0;
    if (g_count_day < 0 || (!force && g_count_day == today()))
        return;
    time_t day = (time_t)g_count_day * 86400;
    struct tm tm;
    gmtime_r(&day, &tm);
    int n = snprintf(line, sizeof(line), "date=%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday);
    o = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < g_ncounts && o < sizeof(line); i++) {
        n = snprintf(line + o, sizeof(line) - o, " %s=%llu", g_counts[i].event, g_counts[i].n);
        if (n < 0 || (size_t)n >= sizeof(line) - o)
            break;
        o += (size_t)n;
    }
    g_ncounts = 0;
    g_count_day = -1;
    sottod_log(SOTTOD_LOG_INFO, "user_events", "%s", line);
}

void sottod_log_user(int level, const char *event, const char *fmt, ...)
{
    if (level < g_level || level < SOTTOD_LOG_DEBUG || level > SOTTOD_LOG_ERROR)
        return;
    if (g_debug_detail) {
        char rest[1536];
        rest[0] = '\0';
        if (fmt != NULL) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(rest, sizeof(rest), fmt, ap);
            va_end(ap);
        }
        if (fmt == NULL)
            sottod_log(level, event, NULL);
        else
            sottod_log(level, event, "%s", rest);
        return;
    }
    if (g_count_day >= 0 && g_count_day != today())
        sottod_log_flush(false);
    g_count_day = today();
    for (size_t i = 0; i < g_ncounts; i++) {
        if (strcmp(g_counts[i].event, event) == 0) {
            g_counts[i].n++;
            return;
        }
    }
    if (g_ncounts < USER_EVENTS_MAX) {
        g_counts[g_ncounts].event = event;
        g_counts[g_ncounts++].n = 1;
    }
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
