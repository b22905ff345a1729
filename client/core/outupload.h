/*
 * client/core/outupload.h -- a file's upload as part of the outgoing queue.
 *
 * `send --file` queues the message (history row and one queue row per
 * recipient account and for the own other devices) BEFORE the file is
 * uploaded, with a pending attachment pointer whose id is
 * SC_PENDING_UPLOAD_PREFIX followed by the file's absolute path (such a
 * pointer never leaves the device). The flush that meets a row holding one
 * uploads the file and rewrites every queued row of that message with the
 * real pointer before delivering. So an interrupted upload (Ctrl-C, a lost
 * connection, a crash) leaves the message queued, and `flush` (or any
 * command that connects) uploads and sends it.
 */
#ifndef SOTTO_CLIENT_OUTUPLOAD_H
#define SOTTO_CLIENT_OUTUPLOAD_H

#include <stdbool.h>

#include "internal.h"
#include "store.h"

#define SC_PENDING_UPLOAD_PREFIX "file:"

/* The content type sent for a file, from its name's extension (attach.c);
 * "application/octet-stream" when unknown. Static storage. */
const char *sc_attachment_type_of(const char *name);

/* Fills ptr (initialised by the caller, fields malloc()ed: free with
 * sc_attachment_pointer_clear) as a pending pointer for the file at path:
 * file name, size, content type, id SC_PENDING_UPLOAD_PREFIX + absolute
 * path. Checks what can be checked before anything is queued: a readable
 * regular file of at most SC_ATTACHMENT_MAX bytes (else SC_E_USAGE). */
int sc_pending_pointer(sc_client *c, const char *path, Sotto__Content__AttachmentPointer *ptr);

/* Before row is delivered: when its content holds a pending pointer, the
 * file is uploaded (progress bar as for any upload) and every queued row of
 * the same message (same timestamp) gets the real pointer; row->content is
 * replaced too. SC_OK also when there was nothing to upload. On failure
 * *final says whether the message can never be sent (the file is gone or
 * unreadable, or the server refused it): then every other queued row of the
 * message is deleted already and the caller drops row as refused; else
 * (network, retry later, a local failure) the rows stay queued as they are.
 */
int sc_out_upload_pending(sc_client *c, sc_out_row *row, bool *final);

#endif
