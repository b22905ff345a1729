/*
 * lib/account/statement.h -- the encoders shared by every signed statement
 * of lib/account (internal header, not installed): the authentication
 * transcript and the add-device statement (statement.c) and the signed
 * device list (device_list.c).
 *
 * Layout rule of all statements: ASCII label, 0x00, then the fields;
 * usernames are one length byte and 3..32 characters of a-z 0-9 _ .
 */
#ifndef SOTTO_LIB_ACCOUNT_STATEMENT_H
#define SOTTO_LIB_ACCOUNT_STATEMENT_H

#include <stddef.h>

#include "common/buf.h"

/* Length of a valid username (docs/api.md section 3), or 0 when `s` is not
 * one (also for NULL). Reads at most SOTTO_USERNAME_MAX_LEN + 1 bytes. */
size_t sotto_stmt_username_len(const char *s);

/* The domain separator: the ASCII `label` then 0x00. */
void sotto_stmt_put_label(sotto_wbuf *w, const char *label);

/* One length byte and the characters; `ul` is sotto_stmt_username_len()
 * of a valid username (1..32). */
void sotto_stmt_put_username(sotto_wbuf *w, const char *username, size_t ul);

#endif /* SOTTO_LIB_ACCOUNT_STATEMENT_H */
