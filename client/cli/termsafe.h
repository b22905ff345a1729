/*
 * client/cli/termsafe.h -- writing untrusted text (message texts, names,
 * group names, file names, notices embedding them) to a terminal so that it
 * can neither act on the terminal nor forge a line (docs/cli.md,
 * "Untrusted text on a terminal").
 */
#ifndef SOTTO_CLI_TERMSAFE_H
#define SOTTO_CLI_TERMSAFE_H

#include <stddef.h>
#include <stdio.h>

/* The marker that starts every continuation line of a multi-line text on a
 * terminal: a genuine event line starts with '[', a continuation never. */
#define TS_CONTINUATION "  | "

typedef enum {
    TS_NAME, /* a name, file name or notice: one line; newline and tab are escaped too */
    TS_BODY  /* a message text: tab kept, a newline starts a TS_CONTINUATION line */
} ts_mode;

/* Writes len bytes of s to f, neutralised: every character sc_cp_unsafe()
 * names (C0 and C1 controls, DEL, bidi controls and marks, U+2028/U+2029)
 * is written as the visible escape "<U+XXXX>" (4 to 6 hex digits), except a
 * newline in TS_BODY, which is written as "\n" TS_CONTINUATION, and a tab in
 * TS_BODY, written as is; an invalid UTF-8 byte is written as "\xNN". Every
 * other character is written as it is. s may be NULL (nothing written).
 * Write errors are left in f's error indicator. */
void ts_write(FILE *f, const char *s, size_t len, ts_mode mode);

#endif
