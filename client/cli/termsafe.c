/*
 * client/cli/termsafe.c -- untrusted text for a terminal (termsafe.h).
 */
#include "termsafe.h"

#include "textsafe.h"

/* The replacement for the character of n bytes at s (n == 0: one invalid
 * byte) in mode, into buf (>= 16 bytes); returns its length, 0 when the
 * character is written as it is. */
static size_t escape_of(const char *s, size_t n, uint32_t cp, ts_mode mode, char *buf)
{
    if (n == 0)
        return (size_t)snprintf(buf, 16, "\\x%02X", (unsigned)(unsigned char)s[0]);
    if (!sc_cp_unsafe(cp))
        return 0;
    if (mode == TS_BODY && cp == '\t')
        return 0;
    if (mode == TS_BODY && cp == '\n')
        return (size_t)snprintf(buf, 16, "\n%s", TS_CONTINUATION);
    return (size_t)snprintf(buf, 16, "<U+%04X>", (unsigned)cp);
}

void ts_write(FILE *f, const char *s, size_t len, ts_mode mode)
{
    size_t start = 0, i = 0;

    if (s == NULL)
        return;
    while (i < len) {
        uint32_t cp = 0;
        char esc[16];
        size_t n = sc_utf8_next(s + i, len - i, &cp);
        size_t e = escape_of(s + i, n, cp, mode, esc);

        if (e > 0) {
            fwrite(s + start, 1, i - start, f);
            fwrite(esc, 1, e, f);
            start = i + (n == 0 ? 1 : n);
        }
        i += n == 0 ? 1 : n;
    }
    fwrite(s + start, 1, len - start, f);
}
