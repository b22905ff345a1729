/*
 * client/core/outupload.c -- a file's upload as part of the outgoing queue
 * (outupload.h).
 */
#include "outupload.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "everyday.h"
#include "sotto/error.h"

int sc_pending_pointer(sc_client *c, const char *path, Sotto__Content__AttachmentPointer *ptr)
{
    struct stat sb;
    char *abs, *copy;
    FILE *f;
    int rc = SC_OK;

    sotto__content__attachment_pointer__init(ptr);
    f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = sc_fail(c, SC_E_USAGE, "cannot read %s: %s", path,
                     f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        return rc;
    }
    fclose(f);
    if ((uint64_t)sb.st_size > SC_ATTACHMENT_MAX)
        return sc_fail(c, SC_E_USAGE, "%s is larger than 100 MiB", path);
    abs = realpath(path, NULL);
    copy = strdup(path);
    if (abs == NULL || copy == NULL) {
        rc = abs == NULL ? sc_fail(c, SC_E_USAGE, "cannot resolve %s: %s", path, strerror(errno))
                         : sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    ptr->id = malloc(strlen(SC_PENDING_UPLOAD_PREFIX) + strlen(abs) + 1);
    ptr->file_name = strdup(basename(copy));
    ptr->content_type = strdup(sc_attachment_type_of(path));
    if (ptr->id == NULL || ptr->file_name == NULL || ptr->content_type == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        sc_attachment_pointer_clear(ptr);
        goto out;
    }
    memcpy(ptr->id, SC_PENDING_UPLOAD_PREFIX, strlen(SC_PENDING_UPLOAD_PREFIX));
    memcpy(ptr->id + strlen(SC_PENDING_UPLOAD_PREFIX), abs, strlen(abs) + 1);
    if (!sc_utf8_valid(ptr->file_name, strlen(ptr->file_name)))
        ptr->file_name[0] = '\0';
    ptr->size = (uint64_t)sb.st_size;
out:
    free(abs);
    free(copy);
    return rc;
}

static Sotto__Content__DataMessage *dm_of(Sotto__Content__Content *ct)
{
    if (ct->data)
        return ct->data;
    if (ct->sync && ct->sync->sent && ct->sync->sent->message)
        return ct->sync->sent->message;
    return NULL;
}

static bool is_pending(const Sotto__Content__AttachmentPointer *p)
{
    return p && p->id &&
           strncmp(p->id, SC_PENDING_UPLOAD_PREFIX, strlen(SC_PENDING_UPLOAD_PREFIX)) == 0;
}

/* The path of the first pending pointer in content (malloc()ed), or NULL. */
static char *pending_path(const uint8_t *content, size_t len)
{
    Sotto__Content__Content *ct = sotto__content__content__unpack(NULL, len, content);
    Sotto__Content__DataMessage *dm;
    char *path = NULL;

    if (ct == NULL)
        return NULL;
    dm = dm_of(ct);
    for (size_t i = 0; dm && path == NULL && i < dm->n_attachments; i++)
        if (is_pending(dm->attachments[i]))
            path = strdup(dm->attachments[i]->id + strlen(SC_PENDING_UPLOAD_PREFIX));
    /* issue 11: a long text's whole text (longtext.c) */
    if (dm && path == NULL && is_pending(dm->long_text))
        path = strdup(dm->long_text->id + strlen(SC_PENDING_UPLOAD_PREFIX));
    sotto__content__content__free_unpacked(ct, NULL);
    return path;
}

/* Whether p is a pending pointer naming the file at path. */
static bool pending_of(const Sotto__Content__AttachmentPointer *p, const char *path)
{
    return is_pending(p) && strcmp(p->id + strlen(SC_PENDING_UPLOAD_PREFIX), path) == 0;
}

/* content with every pending pointer of the file at path replaced by up,
 * into *out (malloc()ed, *out_len bytes); SC_OK, or SC_E_NOT_FOUND when
 * content holds none. A long text's pointer keeps its content type and
 * no file name (longtext.c). */
static int repack(sc_client *c, const uint8_t *content, size_t len, const char *path,
                  Sotto__Content__AttachmentPointer *up, uint8_t **out, size_t *out_len)
{
    Sotto__Content__Content *ct = sotto__content__content__unpack(NULL, len, content);
    Sotto__Content__DataMessage *dm;
    Sotto__Content__AttachmentPointer *saved[8], *saved_lt = NULL, lt;
    size_t n = 0, swapped = 0;
    int rc = SC_OK;

    if (ct == NULL)
        return SC_E_NOT_FOUND;
    dm = dm_of(ct);
    if (dm)
        n = dm->n_attachments < 8 ? dm->n_attachments : 8;
    for (size_t i = 0; i < n; i++) {
        saved[i] = dm->attachments[i];
        if (pending_of(saved[i], path)) {
            dm->attachments[i] = up;
            swapped++;
        }
    }
    if (dm && pending_of(dm->long_text, path)) {
        lt = *up;
        lt.content_type = (char *)SC_LONG_TEXT_TYPE;
        lt.file_name = (char *)"";
        saved_lt = dm->long_text;
        dm->long_text = &lt;
        swapped++;
    }
    if (swapped == 0) {
        rc = SC_E_NOT_FOUND;
    } else {
        *out_len = sotto__content__content__get_packed_size(ct);
        *out = malloc(*out_len ? *out_len : 1);
        if (*out == NULL)
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        else
            sotto__content__content__pack(ct, *out);
    }
    for (size_t i = 0; i < n; i++)
        dm->attachments[i] = saved[i];
    if (saved_lt)
        dm->long_text = saved_lt;
    sotto__content__content__free_unpacked(ct, NULL);
    return rc;
}

/* Every queued row of the message at timestamp ts: rewritten with up
 * (rewrite) or deleted (but keep_id). */
static int for_siblings(sc_client *c, uint64_t ts, const char *path,
                        Sotto__Content__AttachmentPointer *up, int64_t keep_id, sc_out_row *row)
{
    int64_t after = 0;
    int rc = sc_db_begin(c);

    while (rc == SC_OK) {
        sc_out_row r;
        uint8_t *buf = NULL;
        size_t blen = 0;

        rc = sc_out_next(c, after, &r);
        if (rc == SC_E_NOT_FOUND) {
            rc = SC_OK;
            break;
        }
        if (rc != SC_OK)
            break;
        after = r.id;
        if (r.timestamp == ts && up == NULL && r.id != keep_id) {
            rc = sc_out_delete(c, r.id);
        } else if (r.timestamp == ts && up != NULL) {
            int e = repack(c, r.content, r.len, path, up, &buf, &blen);
            if (e == SC_OK) {
                rc = sc_out_set_content(c, r.id, buf, blen);
                if (rc == SC_OK && r.id == row->id) {
                    /* the row being delivered: its new content */
                    sodium_memzero(row->content, row->len);
                    free(row->content);
                    row->content = buf, row->len = blen;
                    buf = NULL;
                }
            } else if (e != SC_E_NOT_FOUND) {
                rc = e;
            }
            if (buf) {
                sodium_memzero(buf, blen);
                free(buf);
            }
        }
        sc_out_row_clear(&r);
    }
    if (rc != SC_OK) {
        sc_db_rollback(c);
        return rc;
    }
    return sc_db_commit(c);
}

int sc_out_upload_pending(sc_client *c, sc_out_row *row, bool *final)
{
    Sotto__Content__AttachmentPointer up;
    char *path;
    int rc = SC_OK, rounds = 0;

    *final = false;
    /* one upload per pending file (a file and a long text: two) */
    while (rc == SC_OK && rounds++ < 8 && (path = pending_path(row->content, row->len)) != NULL) {
        rc = sc_attachment_upload(c, path, &up);
        if (rc == SC_OK) {
            rc = for_siblings(c, row->timestamp, path, &up, 0, row);
            /* every queued copy holds the real pointer: a long text's
             * temporary file is done (longtext.c) */
            if (rc == SC_OK && sc_longtext_is_temp(c, path))
                (void)unlink(path);
        } else if (rc == SC_E_USAGE || rc == SC_E_SERVER) {
            /* the file is gone or unreadable, or the server refused it for
             * good: the message can never go; its other rows go now */
            char why[sizeof c->err];
            snprintf(why, sizeof why, "%s", c->err);
            *final = true;
            (void)for_siblings(c, row->timestamp, path, NULL, row->id, row);
            if (sc_longtext_is_temp(c, path))
                (void)unlink(path);
            rc = sc_fail(c, rc, "%s; the message with the file was not sent", why);
        }
        sc_attachment_pointer_clear(&up);
        free(path);
    }
    return rc;
}
