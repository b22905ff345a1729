/*
 * client/core/textsafe.h -- which characters of peer-supplied text may
 * reach a terminal or a file name as they are (docs/cli.md, "Untrusted
 * text"). Shared by the CLI's terminal printer (client/cli/termsafe.c) and
 * the attachment file names (attach.c).
 */
#ifndef SOTTO_CLIENT_TEXTSAFE_H
#define SOTTO_CLIENT_TEXTSAFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the UTF-8 character at the start of s (len > 0 bytes available).
 * Returns its length in bytes (1..4) and sets *cp; returns 0 for an invalid
 * sequence (a stray continuation byte, an overlong form, a surrogate, a
 * value above U+10FFFF, a sequence cut short), *cp then untouched: the
 * caller treats the first byte as one invalid byte. */
size_t sc_utf8_next(const char *s, size_t len, uint32_t *cp);

/* true for a code point that acts instead of showing, so that a sender
 * could use it to forge or disguise what a person reads: C0 controls
 * (U+0000..U+001F, newline and tab included), DEL, C1 controls
 * (U+0080..U+009F), the bidi embeddings, overrides and isolates
 * (U+202A..U+202E, U+2066..U+2069), the direction marks U+200E, U+200F,
 * U+061C, and the line and paragraph separators U+2028, U+2029. */
bool sc_cp_unsafe(uint32_t cp);

/* Makes a peer-supplied file name safe to create in a directory: at most
 * max_bytes bytes of in (cut on a character boundary) with every unsafe
 * character (sc_cp_unsafe), invalid UTF-8 byte, '/' and '\\' replaced by
 * '_', a leading '.' replaced by '_'; "attachment" when nothing is left.
 * out receives a NUL-terminated name of at most min(max_bytes, cap - 1)
 * bytes; cap >= 11. in may be NULL (treated as ""). */
void sc_safe_file_name(const char *in, size_t max_bytes, char *out, size_t cap);

#endif
