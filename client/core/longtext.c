/*
 * client/core/longtext.c -- texts over 2 KiB: a short body plus the whole
 * text as an attachment (issue 11, everyday.h; docs/protocol.md "Long
 * texts").
 *
 * Sending: a body over SC_LONG_TEXT_INLINE_BYTES is cut on a code-point
 * boundary (sc_utf8_cut) and the whole text goes as DataMessage.long_text,
 * an AttachmentPointer of content type SC_LONG_TEXT_TYPE. The text is
 * written (0600, mkstemp) to <account dir>/.longtext-XXXXXX and the
 * message queued with a pending pointer naming that file (outupload.h), so
 * the upload happens at flush like a file's: a send without the server
 * stays queued and goes later; the flush deletes the file once every
 * queued copy holds the real pointer. The sender's own history row keeps
 * the whole text (send.c).
 *
 * Receiving: the row is stored with the short body and extra "long_text"
 * {id, key, digest, size} (everyday.c); before its event is shown,
 * attach.c's att_fetch calls sc_longtext_fetch, which downloads and
 * verifies it with the attachment machinery, checks it, and replaces the
 * body.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "everyday.h"
#include "outupload.h"

#define LT_PREFIX ".longtext-"

/* A queued long text's pointer and its file, released after the send. */
typedef struct lt_keep {
    sc_client *c;
    Sotto__Content__AttachmentPointer ptr;
    char *path;
    char *body; /* the cut body */
} lt_keep;

/* After the send: the file goes unless a queued row still needs it (the
 * send was refused before queueing, or the flush uploaded it already). */
static void lt_release(void *p)
{
    lt_keep *k = p;
    bool used = false;

    if (k->path) {
        if (sc_out_mentions(k->c, k->ptr.id, &used) != SC_OK)
            used = true; /* when in doubt the file stays: the queue may need it */
        if (!used)
            (void)unlink(k->path);
        free(k->path);
    }
    sc_attachment_pointer_clear(&k->ptr);
    if (k->body) {
        sodium_memzero(k->body, strlen(k->body));
        free(k->body);
    }
    free(k);
}

/* Writes all n bytes of p to fd. 0 or the errno. */
static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sc_longtext_decorate(sc_client *c, Sotto__Content__DataMessage *dm, sc_keep *k)
{
    size_t len = strlen(dm->body), cut, cap;
    lt_keep *lk;
    int fd, e, rc;

    if (len <= SC_LONG_TEXT_INLINE_BYTES)
        return SC_OK;
    if (len > SC_MAX_TEXT_BYTES)
        return sc_fail(c, SC_E_USAGE, "text longer than %u bytes", SC_MAX_TEXT_BYTES);
    lk = calloc(1, sizeof *lk);
    if (lk == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    lk->c = c;
    sotto__content__attachment_pointer__init(&lk->ptr);
    cap = strlen(c->dir) + sizeof "/" LT_PREFIX "XXXXXX";
    lk->path = malloc(cap);
    cut = sc_utf8_cut(dm->body, len, SC_LONG_TEXT_INLINE_BYTES);
    lk->body = malloc(cut + 1);
    if (lk->path == NULL || lk->body == NULL) {
        free(lk->path);
        lk->path = NULL;
        lt_release(lk);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    memcpy(lk->body, dm->body, cut);
    lk->body[cut] = '\0';
    snprintf(lk->path, cap, "%s/" LT_PREFIX "XXXXXX", c->dir);
    fd = mkstemp(lk->path); /* 0600 */
    if (fd < 0) {
        rc = sc_fail(c, SC_E_STORE, "cannot write the long text: %s", strerror(errno));
        free(lk->path);
        lk->path = NULL;
        lt_release(lk);
        return rc;
    }
    e = write_full(fd, dm->body, len);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        rc = sc_fail(c, SC_E_STORE, "cannot write the long text: %s", strerror(e));
        (void)unlink(lk->path);
        free(lk->path);
        lk->path = NULL;
        lt_release(lk);
        return rc;
    }
    /* a pending pointer (outupload.h): uploaded by the flush that sends it */
    lk->ptr.id = malloc(strlen(SC_PENDING_UPLOAD_PREFIX) + strlen(lk->path) + 1);
    lk->ptr.content_type = strdup(SC_LONG_TEXT_TYPE);
    lk->ptr.file_name = strdup("");
    if (lk->ptr.id == NULL || lk->ptr.content_type == NULL || lk->ptr.file_name == NULL) {
        lt_release(lk);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    memcpy(lk->ptr.id, SC_PENDING_UPLOAD_PREFIX, strlen(SC_PENDING_UPLOAD_PREFIX));
    memcpy(lk->ptr.id + strlen(SC_PENDING_UPLOAD_PREFIX), lk->path, strlen(lk->path) + 1);
    lk->ptr.size = len;
    rc = sc_keep_add(k, lk, lt_release);
    if (rc != SC_OK)
        return sc_fail(c, rc, "too many parts in one message");
    dm->body = lk->body;
    dm->long_text = &lk->ptr;
    return SC_OK;
}

bool sc_longtext_is_temp(sc_client *c, const char *path)
{
    size_t n = strlen(c->dir);

    return path && strncmp(path, c->dir, n) == 0 && path[n] == '/' &&
           strncmp(path + n + 1, LT_PREFIX, strlen(LT_PREFIX)) == 0 &&
           strchr(path + n + 1, '/') == NULL;
}

/* ------------------------------------------------------------ receiving */

/* Reads the downloaded text at path (exactly size bytes, at most
 * SC_MAX_TEXT_BYTES, valid UTF-8) into *out (malloc()ed, NUL-terminated). */
static int read_text(sc_client *c, const char *path, uint64_t size, char **out)
{
    struct stat sb;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc;

    *out = NULL;
    if (size > SC_MAX_TEXT_BYTES)
        return sc_fail(c, SC_E_INTEGRITY, "the long text is larger than %u bytes",
                       SC_MAX_TEXT_BYTES);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail(c, SC_E_STORE, "cannot read the long text: %s", strerror(errno));
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != size) {
        close(fd);
        return sc_fail(c, SC_E_INTEGRITY, "the long text has the wrong size");
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        close(fd);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, (size_t)size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    if (got != size)
        rc = sc_fail(c, SC_E_STORE, "cannot read the long text");
    else if (!sc_utf8_valid(buf, got))
        rc = sc_fail(c, SC_E_INTEGRITY, "the long text is not valid UTF-8");
    else
        rc = SC_OK;
    if (rc != SC_OK) {
        sodium_memzero(buf, got);
        free(buf);
        return rc;
    }
    *out = buf;
    return SC_OK;
}

/* Wipes the key and digest strings of object o, then drops them. */
static void forget_key(json_t *o)
{
    static const char *const f[] = {"key", "digest"};

    for (size_t i = 0; i < 2; i++) {
        const char *s = json_string_value(json_object_get(o, f[i]));
        if (s)
            sodium_memzero((char *)s, strlen(s));
        json_object_del(o, f[i]);
    }
}

/* Frees extra JSON o, wiping the keys it may hold. */
static void extra_free(json_t *o)
{
    json_t *arr = json_object_get(o, "attachments");

    if (json_is_object(json_object_get(o, "long_text")))
        forget_key(json_object_get(o, "long_text"));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *a = json_array_get(arr, i);
        const char *s = json_string_value(json_object_get(a, "key"));
        if (s)
            sodium_memzero((char *)s, strlen(s));
    }
    json_decref(o);
}

/* The "attachments" entry that shows a long text's failure (made when
 * missing); NULL when out of memory. */
static json_t *error_entry(json_t *extra, uint64_t size)
{
    json_t *arr = json_object_get(extra, "attachments"), *a;

    for (size_t i = 0; i < json_array_size(arr); i++) {
        a = json_array_get(arr, i);
        if (json_is_true(json_object_get(a, "long_text")))
            return a;
    }
    if (!json_is_array(arr)) {
        arr = json_array();
        if (arr == NULL || json_object_set_new(extra, "attachments", arr) != 0)
            return NULL;
    }
    a = json_pack("{s:s, s:s, s:I, s:b}", "file_name", "long text", "content_type",
                  SC_LONG_TEXT_TYPE, "size", (json_int_t)size, "long_text", 1);
    if (a == NULL || json_array_append_new(arr, a) != 0)
        return NULL;
    return a;
}

/* Records the outcome in row `rowid` (read again inside one transaction):
 * text (NULL: failed with msg; final: the key is forgotten). */
static int record(sc_client *c, int64_t rowid, const char *text, const char *msg, bool final)
{
    sc_msg row;
    json_t *extra = NULL, *lt, *arr;
    char *s = NULL;
    int rc;

    rc = sc_db_begin(c);
    if (rc != SC_OK)
        return rc;
    rc = sc_msg_get(c, rowid, &row);
    if (rc != SC_OK)
        goto out;
    extra = row.extra ? json_loads(row.extra, 0, NULL) : NULL;
    lt = json_object_get(extra, "long_text");
    if (!json_is_string(json_object_get(lt, "key"))) {
        rc = SC_E_NOT_FOUND; /* done meanwhile (another process), or gone */
        goto out;
    }
    if (text) {
        forget_key(lt);
        json_object_del(extra, "long_text");
        arr = json_object_get(extra, "attachments");
        for (size_t i = json_array_size(arr); i-- > 0;)
            if (json_is_true(json_object_get(json_array_get(arr, i), "long_text")))
                json_array_remove(arr, i);
        if (json_is_array(arr) && json_array_size(arr) == 0)
            json_object_del(extra, "attachments");
    } else {
        json_t *a = error_entry(extra, (uint64_t)json_integer_value(json_object_get(lt, "size")));
        if (a == NULL) {
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
            goto out;
        }
        json_object_set_new(a, "error", json_string(msg));
        if (final) {
            forget_key(lt);
            json_object_set_new(lt, "error", json_string(msg));
        }
    }
    if (json_object_size(extra) > 0 && (s = json_dumps(extra, JSON_COMPACT)) == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    if (text)
        rc = sc_msg_set_body_extra(c, rowid, text, strlen(text), s);
    else
        rc = sc_msg_set_extra(c, rowid, s);
out:
    if (rc == SC_OK)
        rc = sc_db_commit(c);
    else
        sc_db_rollback(c);
    extra_free(extra);
    sc_free_secret_str(s);
    sc_msg_free(&row);
    return rc == SC_E_NOT_FOUND ? SC_OK : rc;
}

int sc_longtext_fetch(sc_client *c, int64_t rowid, bool *transient)
{
    Sotto__Content__AttachmentPointer p;
    sc_msg row;
    json_t *extra = NULL, *lt;
    char *path = NULL, *text = NULL;
    char msg[sizeof c->err + 64];
    bool final;
    int rc, drc;

    rc = sc_msg_get(c, rowid, &row);
    if (rc != SC_OK)
        return rc == SC_E_NOT_FOUND ? SC_OK : rc;
    extra = row.extra ? json_loads(row.extra, 0, NULL) : NULL;
    lt = json_object_get(extra, "long_text");
    if (!json_is_string(json_object_get(lt, "key")))
        goto out; /* none, or fetched (or failed for good) before */
    drc = sc_attachment_pointer_from_json(lt, &p);
    if (drc == SC_OK) {
        if (p.size > SC_MAX_TEXT_BYTES)
            drc = sc_fail(c, SC_E_INTEGRITY, "the long text is larger than %u bytes",
                          SC_MAX_TEXT_BYTES);
        else
            drc = sc_attachment_download(c, &p, row.timestamp, &path);
        if (drc == SC_OK) {
            drc = read_text(c, path, p.size, &text);
            (void)unlink(path); /* the text lives in the row from now on */
        }
        sc_attachment_pointer_clear(&p);
    } else {
        drc = sc_fail(c, SC_E_INTEGRITY, "malformed long-text pointer");
    }
    if (drc == SC_OK) {
        rc = record(c, rowid, text, NULL, true);
        goto out;
    }
    /* like a file's (attach.c): verification failed or gone from the
     * server is final; the network, the server or our disk may pass */
    final = drc == SC_E_INTEGRITY || drc == SC_E_NOT_FOUND;
    if (drc == SC_E_INTEGRITY)
        c->integrity_failures++;
    if (final) {
        snprintf(msg, sizeof msg, "the whole text could not be fetched: %s", c->err);
    } else {
        *transient = true;
        c->att_transient++;
        if (c->att_transient_rc == 0 || c->att_transient_rc == SC_E_NETWORK) {
            c->att_transient_rc = drc;
            snprintf(c->att_transient_err, sizeof c->att_transient_err, "%s", c->err);
        }
        snprintf(msg, sizeof msg, "the whole text is not fetched yet: %s (will retry)", c->err);
    }
    rc = record(c, rowid, NULL, msg, final);
out:
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    free(path);
    extra_free(extra);
    sc_msg_free(&row);
    return rc;
}
