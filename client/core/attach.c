/*
 * client/core/attach.c -- attachment transfer: encrypt while uploading
 * (PUT /v1/attachments/{id}, streamed), download into a temporary file of
 * ciphertext, verify MAC and digest, and only then decrypt into a second
 * temporary file that is renamed into place. No plaintext byte reaches the
 * disk before the blob verified.
 *
 * A failed download is one of three kinds, never confused: integrity (the
 * blob failed verification: final, SC_E_INTEGRITY), local storage (our disk
 * refused a write: SC_E_STORE naming errno's text) and network (the transfer
 * or the server failed: SC_E_NETWORK). The pointer and key of a received
 * attachment stay in its history row until the file was saved or the
 * failure is final; the others are fetched again by
 * sc_attachment_retry_pending (at the start of receive/listen), which
 * announces each file it saves with an "attachment_ready" notice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "api.h"
#include "everyday.h"
#include "internal.h"
#include "sotto/attachment.h"
#include "sotto/error.h"
#include "outupload.h"
#include "store.h"
#include "textsafe.h"

#define CHUNK 16384

static void progress_bar(void *ud, uint64_t done, uint64_t total)
{
    const char *what = ud;
    int pct = total ? (int)(done * 100 / total) : 100;
    int bars = pct / 4;
    char bar[26];

    for (int i = 0; i < 25; i++)
        bar[i] = i < bars ? '#' : ' ';
    bar[25] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%% %.1f/%.1f MiB", what, bar, pct, done / 1048576.0,
            total / 1048576.0);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
}

void sc_attachment_pointer_clear(Sotto__Content__AttachmentPointer *p)
{
    if (p->key.data) {
        sodium_memzero(p->key.data, p->key.len);
        free(p->key.data);
    }
    free(p->digest.data);
    if (p->id != protobuf_c_empty_string)
        free(p->id);
    if (p->file_name != protobuf_c_empty_string)
        free(p->file_name);
    if (p->content_type != protobuf_c_empty_string)
        free(p->content_type);
    sotto__content__attachment_pointer__init(p);
}

/* ------------------------------------------------------------ pointers as stored */

char *sc_attachment_pointers_json(const Sotto__Content__DataMessage *dm)
{
    json_t *o, *arr;
    char *s;

    if (dm == NULL || dm->n_attachments == 0)
        return NULL;
    o = json_object();
    arr = json_array();
    if (o == NULL || arr == NULL || json_object_set_new(o, "attachments", arr) != 0) {
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < dm->n_attachments; i++) {
        const Sotto__Content__AttachmentPointer *p = dm->attachments[i];
        json_t *a = json_object();
        char key[2 * SOTTO_ATTACHMENT_KEY_BYTES + 1] = "", dig[65] = "";
        const char *id = p && p->id ? p->id : "";
        const char *ctype = p && p->content_type ? p->content_type : "";
        const char *fname = p && p->file_name ? p->file_name : "";

        if (a == NULL || json_array_append_new(arr, a) != 0)
            continue;
        if (p && p->key.len == SOTTO_ATTACHMENT_KEY_BYTES && p->key.data)
            sc_hex(p->key.data, SOTTO_ATTACHMENT_KEY_BYTES, key);
        if (p && p->digest.len == 32 && p->digest.data)
            sc_hex(p->digest.data, 32, dig);
        json_object_set_new(a, "id", json_string(sc_utf8_valid(id, strlen(id)) ? id : ""));
        json_object_set_new(a, "key", json_string(key));
        json_object_set_new(a, "digest", json_string(dig));
        json_object_set_new(
            a, "size",
            json_integer(p && p->size <= SC_ATTACHMENT_MAX ? (json_int_t)p->size : (json_int_t)-1));
        json_object_set_new(a, "content_type",
                            json_string(ctype[0] && sc_utf8_valid(ctype, strlen(ctype))
                                            ? ctype
                                            : "application/octet-stream"));
        json_object_set_new(a, "file_name",
                            json_string(sc_utf8_valid(fname, strlen(fname)) ? fname : ""));
        sodium_memzero(key, sizeof key);
    }
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* hex field `name` of `a` into exactly n bytes (malloc()ed) */
static int hex_field(const json_t *a, const char *name, size_t n, ProtobufCBinaryData *out)
{
    const char *h = json_string_value(json_object_get(a, name));
    size_t bl = 0;

    out->data = NULL;
    out->len = 0;
    if (h == NULL || strlen(h) != 2 * n)
        return -1;
    out->data = malloc(n);
    if (out->data == NULL)
        return -1;
    if (sodium_hex2bin(out->data, n, h, 2 * n, NULL, &bl, NULL) != 0 || bl != n) {
        sodium_memzero(out->data, n);
        free(out->data);
        out->data = NULL;
        return -1;
    }
    out->len = n;
    return 0;
}

int sc_attachment_pointer_from_json(const json_t *a, Sotto__Content__AttachmentPointer *out)
{
    const char *id = json_string_value(json_object_get(a, "id"));
    const char *ctype = json_string_value(json_object_get(a, "content_type"));
    const char *fname = json_string_value(json_object_get(a, "file_name"));
    json_t *size = json_object_get(a, "size");
    int rc = SC_E_INTEGRITY;

    sotto__content__attachment_pointer__init(out);
    if (!json_is_object(a) || id == NULL || strlen(id) != 32 ||
        strspn(id, "0123456789abcdef") != 32 || !json_is_integer(size) ||
        json_integer_value(size) < 0 || (uint64_t)json_integer_value(size) > SC_ATTACHMENT_MAX)
        goto out;
    if (hex_field(a, "key", SOTTO_ATTACHMENT_KEY_BYTES, &out->key) != 0 ||
        hex_field(a, "digest", 32, &out->digest) != 0)
        goto out;
    out->size = (uint64_t)json_integer_value(size);
    out->id = strdup(id);
    out->content_type = strdup(ctype ? ctype : "application/octet-stream");
    out->file_name = strdup(fname ? fname : "");
    if (out->id == NULL || out->content_type == NULL || out->file_name == NULL) {
        rc = SC_E_INTERNAL;
        goto out;
    }
    rc = SC_OK;
out:
    if (rc != SC_OK)
        sc_attachment_pointer_clear(out);
    return rc;
}

static const char *guess_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *const map[][2] = {
        {".txt", "text/plain"},  {".png", "image/png"}, {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"}, {".gif", "image/gif"}, {".pdf", "application/pdf"},
        {".mp3", "audio/mpeg"},  {".mp4", "video/mp4"}, {".zip", "application/zip"},
    };
    if (dot)
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (strcasecmp(dot, map[i][0]) == 0)
                return map[i][1];
    return "application/octet-stream";
}

const char *sc_attachment_type_of(const char *name)
{
    return guess_type(name);
}

/* PUT body source: reads plaintext, hands out ciphertext. */
typedef struct enc_src {
    FILE *f;
    sotto_attachment_encryptor *enc;
    uint8_t in[CHUNK];
    uint8_t out[CHUNK + SOTTO_ATTACHMENT_UPDATE_SLACK + 64];
    size_t out_len, out_pos;
    bool eof, done;
    uint8_t digest[32];
    bool failed;
} enc_src;

static long enc_body(void *ud, uint8_t *buf, size_t cap)
{
    enc_src *s = ud;
    size_t w = 0;

    while (w < cap) {
        if (s->out_pos < s->out_len) {
            size_t n = s->out_len - s->out_pos;
            if (n > cap - w)
                n = cap - w;
            memcpy(buf + w, s->out + s->out_pos, n);
            s->out_pos += n;
            w += n;
            continue;
        }
        if (s->done)
            break;
        s->out_len = s->out_pos = 0;
        if (!s->eof) {
            size_t r = fread(s->in, 1, sizeof s->in, s->f);
            if (r == 0) {
                if (ferror(s->f))
                    goto fail;
                s->eof = true;
                continue;
            }
            if (sotto_attachment_encrypt_update(s->enc, s->in, r, s->out, sizeof s->out,
                                                &s->out_len) != SOTTO_OK)
                goto fail;
        } else {
            if (sotto_attachment_encrypt_final(s->enc, s->out, sizeof s->out, &s->out_len, &s->done,
                                               s->digest) != SOTTO_OK)
                goto fail;
        }
    }
    return (long)w;
fail:
    s->failed = true;
    return -1;
}

int sc_attachment_upload(sc_client *c, const char *path, Sotto__Content__AttachmentPointer *ptr)
{
    sc_api_result r;
    char slot_id[33];
    uint64_t slot_max = 0;
    enc_src *s = NULL;
    struct stat sb;
    uint64_t size, blob;
    char upath[128], err[256];
    char *pcopy = NULL;
    int status = 0, rc;
    uint8_t key[SOTTO_ATTACHMENT_KEY_BYTES];
    sc_server srv = sc_server_of(c);

    sotto__content__attachment_pointer__init(ptr);
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    s->f = fopen(path, "rb");
    if (s->f == NULL || fstat(fileno(s->f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = sc_fail(c, SC_E_USAGE, "cannot read %s: %s", path,
                     s->f ? "not a regular file" : strerror(errno));
        goto out;
    }
    size = (uint64_t)sb.st_size;
    if (size > SC_ATTACHMENT_MAX) {
        rc = sc_fail(c, SC_E_USAGE, "%s is larger than 100 MiB", path);
        goto out;
    }
    blob = sotto_attachment_blob_size(size);
    if (sc_api_attachment_slot(c, blob, slot_id, &slot_max, &r) != SC_API_OK) {
        rc = sc_api_fail(c, &r, "attachment");
        goto out;
    }
    if (slot_max != 0 && blob > slot_max) {
        rc = sc_fail(c, SC_E_USAGE, "%s is larger than this server accepts (%llu bytes)", path,
                     (unsigned long long)slot_max);
        goto out;
    }
    if (sotto_attachment_encryptor_new(&s->enc, size, key) != SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTERNAL, "cannot start encrypting");
        goto out;
    }
    snprintf(upath, sizeof upath, "/v1/attachments/%s", slot_id);
    if (sc_http_put(c->conn, &srv, upath, blob, enc_body, s,
                    c->progress && size > (1u << 20) ? progress_bar : NULL, (void *)"upload",
                    &status, err, sizeof err) != 0) {
        rc = s->failed ? sc_fail(c, SC_E_USAGE, "cannot read %s", path)
                       : sc_fail(c, SC_E_NETWORK, "upload failed: %s", err);
        goto out;
    }
    if (status != 201 && status != 200) {
        rc = sc_fail(c, SC_E_SERVER, "upload refused (HTTP %d)", status);
        goto out;
    }
    if (!s->done) {
        rc = sc_fail(c, SC_E_INTERNAL, "upload ended early");
        goto out;
    }
    pcopy = strdup(path);
    ptr->id = strdup(slot_id);
    ptr->key.data = malloc(sizeof key);
    ptr->digest.data = malloc(32);
    ptr->file_name = pcopy ? strdup(basename(pcopy)) : NULL;
    ptr->content_type = strdup(guess_type(path));
    if (!ptr->id || !ptr->key.data || !ptr->digest.data || !ptr->file_name || !ptr->content_type) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(ptr->key.data, key, sizeof key);
    ptr->key.len = sizeof key;
    memcpy(ptr->digest.data, s->digest, 32);
    ptr->digest.len = 32;
    ptr->size = size;
    if (!sc_utf8_valid(ptr->file_name, strlen(ptr->file_name)))
        ptr->file_name[0] = '\0';
    rc = SC_OK;
out:
    if (rc != SC_OK)
        sc_attachment_pointer_clear(ptr);
    sodium_memzero(key, sizeof key);
    if (s) {
        if (s->f)
            fclose(s->f);
        sotto_attachment_encryptor_free(s->enc);
        sodium_memzero(s, sizeof *s);
        free(s);
    }
    free(pcopy);
    return rc;
}

/* ------------------------------------------------------------ download */

/* Writes all n bytes to fd (raw write(2), no stdio buffer, so a full disk
 * is seen where it happens). 0, or the errno of the failure. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 && errno != 0 ? errno : EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct dl_sink {
    int fd;
    sotto_attachment_verifier *v;
    bool bad; /* the blob failed verification */
    int werr; /* errno of a local write failure, else 0 */
} dl_sink;

static int dl_write(void *ud, const uint8_t *p, size_t n)
{
    dl_sink *s = ud;
    if (sotto_attachment_verify_update(s->v, p, n) != SOTTO_OK) {
        s->bad = true;
        return -1;
    }
    s->werr = write_all(s->fd, p, n);
    return s->werr == 0 ? 0 : -1;
}

/* A safe local file name (textsafe.h): no control, bidi or direction
 * characters, no invalid UTF-8, no '/' or '\\', not starting with '.', at
 * most 100 bytes (cut on a character boundary). */
static void safe_name(const char *in, char *out, size_t cap)
{
    sc_safe_file_name(in, 100, out, cap);
}

/* SC_E_STORE naming the local cause of a failed write (errno value e). */
static int write_failed(sc_client *c, int e)
{
    return sc_fail(c, SC_E_STORE, "cannot write the attachment: %s", strerror(e));
}

/* Decrypts the verified ciphertext in ct_fd (from its start) into pt_fd and
 * makes it durable. SC_OK, SC_E_STORE (local read/write failure, with the
 * cause) or SC_E_INTEGRITY (the decryptor refused). */
static int decrypt_to(sc_client *c, const Sotto__Content__AttachmentPointer *ptr, int ct_fd,
                      int pt_fd, uint8_t *in, uint8_t *out)
{
    const size_t out_cap = CHUNK + SOTTO_ATTACHMENT_UPDATE_SLACK;
    sotto_attachment_decryptor *dec = NULL;
    size_t w = 0;
    int rc, e;

    if (lseek(ct_fd, 0, SEEK_SET) != 0)
        return sc_fail(c, SC_E_STORE, "cannot read the downloaded attachment: %s", strerror(errno));
    if (sotto_attachment_decryptor_new(&dec, ptr->size, ptr->key.data, ptr->digest.data) !=
        SOTTO_OK)
        return sc_fail(c, SC_E_INTEGRITY, "malformed attachment pointer");
    for (;;) {
        ssize_t r = read(ct_fd, in, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = sc_fail(c, SC_E_STORE, "cannot read the downloaded attachment: %s",
                         strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        if (sotto_attachment_decrypt_update(dec, in, (size_t)r, out, out_cap, &w) != SOTTO_OK) {
            rc = sc_fail(c, SC_E_INTEGRITY, "attachment failed to decrypt");
            goto out;
        }
        if ((e = write_all(pt_fd, out, w)) != 0) {
            rc = write_failed(c, e);
            goto out;
        }
    }
    if (sotto_attachment_decrypt_final(dec, out, out_cap, &w) != SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTEGRITY, "attachment failed verification");
        goto out;
    }
    if ((e = write_all(pt_fd, out, w)) != 0) {
        rc = write_failed(c, e);
        goto out;
    }
    /* a file system that allocates late reports a full disk here */
    if (fsync(pt_fd) != 0) {
        rc = write_failed(c, errno);
        goto out;
    }
    rc = SC_OK;
out:
    sotto_attachment_decryptor_free(dec);
    return rc;
}

int sc_attachment_download(sc_client *c, const Sotto__Content__AttachmentPointer *ptr, uint64_t ts,
                           char **path_out)
{
    sc_server srv = sc_server_of(c);
    dl_sink sink = {-1, NULL, false, 0};
    char *ct_path = NULL, *pt_path = NULL, *final = NULL;
    char name[128], upath[128], err[256];
    uint8_t *in = NULL, *out = NULL;
    size_t cap;
    uint64_t blob;
    int pt_fd = -1, status = 0, get_rc, rc;

    *path_out = NULL;
    if (ptr->key.len != SOTTO_ATTACHMENT_KEY_BYTES || ptr->digest.len != 32 ||
        strlen(ptr->id) != 32 || strspn(ptr->id, "0123456789abcdef") != 32 ||
        ptr->size > SC_ATTACHMENT_MAX)
        return sc_fail(c, SC_E_INTEGRITY, "malformed attachment pointer");
    blob = sotto_attachment_blob_size(ptr->size);
    cap = strlen(c->att_dir) + 64;
    ct_path = malloc(cap);
    pt_path = malloc(cap);
    in = malloc(CHUNK);
    out = malloc(CHUNK + SOTTO_ATTACHMENT_UPDATE_SLACK);
    if (!ct_path || !pt_path || !in || !out) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(ct_path, cap, "%s/.download-XXXXXX", c->att_dir);
    snprintf(pt_path, cap, "%s/.plain-XXXXXX", c->att_dir);
    sink.fd = mkstemp(ct_path);
    if (sink.fd < 0) {
        rc = sc_fail(c, SC_E_STORE, "cannot create a temporary file: %s", strerror(errno));
        ct_path[0] = '\0';
        goto out;
    }
    if (sotto_attachment_verifier_new(&sink.v, ptr->size, ptr->key.data, ptr->digest.data) !=
        SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTEGRITY, "malformed attachment pointer");
        goto out;
    }
    /* 1. ciphertext to disk, verifying as it comes */
    snprintf(upath, sizeof upath, "/v1/attachments/%s", ptr->id);
    get_rc = sc_http_get(c->conn, &srv, upath, blob, dl_write, &sink,
                         c->progress && ptr->size > (1u << 20) ? progress_bar : NULL,
                         (void *)"download", &status, err, sizeof err);
    if (get_rc != 0) {
        /* our disk refused first: a local cause, the blob may be fine; a
         * blob longer than the pointer's size announces is as bad as a
         * wrong MAC: exit 7; anything else is the network */
        if (sink.werr != 0)
            rc = write_failed(c, sink.werr);
        else if (sink.bad || get_rc == -2)
            rc = sc_fail(c, SC_E_INTEGRITY, "attachment failed verification (too long)");
        else
            rc = sc_fail(c, SC_E_NETWORK, "download failed: %s", err);
        goto out;
    }
    if (status == 404) {
        rc = sc_fail(c, SC_E_NOT_FOUND, "attachment no longer on the server");
        goto out;
    }
    if (status != 200) {
        /* busy, failing or restarting: try again later */
        rc = sc_fail(c, SC_E_NETWORK, "download failed: the server answered HTTP %d", status);
        goto out;
    }
    if (sotto_attachment_verify_final(sink.v) != SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTEGRITY, "attachment failed verification (MAC or digest)");
        goto out;
    }
    /* 2. verified: decrypt into a private temporary file */
    pt_fd = mkstemp(pt_path);
    if (pt_fd < 0) {
        rc = sc_fail(c, SC_E_STORE, "cannot create a temporary file: %s", strerror(errno));
        pt_path[0] = '\0';
        goto out;
    }
    rc = decrypt_to(c, ptr, sink.fd, pt_fd, in, out);
    if (rc != SC_OK)
        goto out;
    {
        int crc = close(pt_fd);
        pt_fd = -1;
        if (crc != 0) {
            rc = write_failed(c, errno);
            goto out;
        }
    }
    /* 3. into place: <attachments>/<timestamp>-<name> */
    safe_name(ptr->file_name, name, sizeof name);
    cap = strlen(c->att_dir) + strlen(name) + 48;
    final = malloc(cap);
    if (final == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (int k = 0;; k++) {
        struct stat sb;
        if (k == 0)
            snprintf(final, cap, "%s/%llu-%s", c->att_dir, (unsigned long long)ts, name);
        else
            snprintf(final, cap, "%s/%llu-%d-%s", c->att_dir, (unsigned long long)ts, k, name);
        if (stat(final, &sb) != 0)
            break;
        if (k > 1000) {
            rc = sc_fail(c, SC_E_STORE, "cannot name the attachment");
            goto out;
        }
    }
    if (rename(pt_path, final) != 0) {
        rc = sc_fail(c, SC_E_STORE, "cannot store the attachment: %s", strerror(errno));
        goto out;
    }
    pt_path[0] = '\0';
    {
        /* the new name durable before the history row points at it */
        int dfd = open(c->att_dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    *path_out = final;
    final = NULL;
    rc = SC_OK;
out:
    if (pt_fd >= 0)
        close(pt_fd);
    if (sink.fd >= 0)
        close(sink.fd);
    if (ct_path && ct_path[0])
        unlink(ct_path);
    if (pt_path && pt_path[0] && strstr(pt_path, "XXXXXX") == NULL)
        unlink(pt_path);
    sotto_attachment_verifier_free(sink.v);
    free(ct_path);
    free(pt_path);
    free(final);
    if (in) {
        sodium_memzero(in, CHUNK);
        free(in);
    }
    if (out) {
        sodium_memzero(out, CHUNK + SOTTO_ATTACHMENT_UPDATE_SLACK);
        free(out);
    }
    return rc;
}

void sc_free_secret_str(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

void sc_attachment_cleanup_temp(sc_client *c)
{
    DIR *d = opendir(c->att_dir);
    struct dirent *de;
    time_t now = time(NULL);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char p[4096];
        struct stat sb;
        if (strncmp(de->d_name, ".download-", 10) != 0 && strncmp(de->d_name, ".plain-", 7) != 0)
            continue;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", c->att_dir, de->d_name) >= sizeof p)
            continue;
        /* a younger one may belong to a transfer running in another process */
        if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && now - sb.st_mtime > 600)
            (void)unlink(p);
    }
    closedir(d);
}

/* ------------------------------------------------------------ a row's attachments */

/* Still to fetch: a pointer with its key and no saved file (store.h). */
static bool att_to_fetch(const json_t *a)
{
    return json_is_object(a) && json_is_string(json_object_get(a, "key")) &&
           !json_is_string(json_object_get(a, "path"));
}

/* A failure that may pass (network, server, local disk, memory): the
 * pointer and its key are kept and the download is tried again later. */
static bool att_transient(int rc)
{
    return rc != SC_OK && rc != SC_E_INTEGRITY && rc != SC_E_NOT_FOUND;
}

/* Wipes the key and digest strings of attachment object a (before
 * json_decref frees them). */
static void att_wipe_obj(json_t *a)
{
    static const char *const f[] = {"key", "digest"};

    for (size_t k = 0; k < 2; k++) {
        const char *s = json_string_value(json_object_get(a, f[k]));
        if (s)
            sodium_memzero((char *)s, strlen(s));
    }
}

/* Wipes the keys of a row's extra JSON, then frees it (NULL is fine). */
static void att_extra_free(json_t *extra)
{
    json_t *arr = json_object_get(extra, "attachments");

    for (size_t i = 0; i < json_array_size(arr); i++)
        att_wipe_obj(json_array_get(arr, i));
    json_decref(extra);
}

static void att_forget_key(json_t *a)
{
    att_wipe_obj(a);
    json_object_del(a, "key");
    json_object_del(a, "digest");
}

/* What one download of this pass gave. */
typedef struct att_result {
    bool tried;
    int rc;
    char *path;  /* SC_OK: the saved file (malloc()ed) */
    char *error; /* else: the message (malloc()ed) */
} att_result;

static void note_transient(sc_client *c, int rc, const char *msg)
{
    c->att_transient++;
    /* a local cause is named before a network one */
    if (c->att_transient_rc == 0 || c->att_transient_rc == SC_E_NETWORK) {
        c->att_transient_rc = rc;
        snprintf(c->att_transient_err, sizeof c->att_transient_err, "%s", msg);
    }
}

/* Stores (inside the caller's transaction) the "attachment_ready" notice for
 * the files in `ready` saved for row `row`, on the pending-events list. Its
 * body names the message and the saved path(s), so that the plain-text
 * output shows where the file is. */
static int att_notice(sc_client *c, const sc_msg *row, json_t *ready, int64_t *notice_id)
{
    json_t *ne;
    char *extra, *text = NULL;
    size_t n = json_array_size(ready), cap, len;
    sc_msg_row m;
    int rc;

    ne = json_pack("{s:s, s:I, s:O}", "notice", "attachment_ready", "message_id",
                   (json_int_t)row->id, "attachments", ready);
    extra = ne ? json_dumps(ne, JSON_COMPACT) : NULL;
    json_decref(ne);
    cap = 128 + strlen(row->sender);
    for (size_t i = 0; i < n; i++)
        cap += 2 + strlen(json_string_value(json_object_get(json_array_get(ready, i), "path")));
    if (extra == NULL || (text = malloc(cap)) == NULL) {
        free(extra);
        return sc_fail(c, SC_E_INTERNAL, "out of memory");
    }
    len = (size_t)snprintf(text, cap,
                           n == 1 ? "the attachment of message %lld from %s is saved: "
                                  : "the attachments of message %lld from %s are saved: ",
                           (long long)row->id, row->sender);
    for (size_t i = 0; i < n && len < cap; i++)
        len +=
            (size_t)snprintf(text + len, cap - len, "%s%s", i ? ", " : "",
                             json_string_value(json_object_get(json_array_get(ready, i), "path")));
    memset(&m, 0, sizeof m);
    m.conv_kind = row->conv_kind;
    m.conv = row->conv;
    m.direction = 0;
    m.sender = row->sender;
    m.sender_device = row->sender_device;
    m.timestamp = sc_now_ms();
    m.server_ts = 0;
    m.kind = "notice";
    m.body = text;
    m.body_len = strlen(text);
    m.extra = extra;
    rc = sc_msg_insert(c, &m, notice_id);
    if (rc == SC_OK)
        rc = sc_pending_event_add(c, *notice_id);
    free(extra);
    free(text);
    return rc;
}

/* Records this pass's results in row `rowid` in one transaction that reads
 * the row again, so that of two processes fetching the same row only one
 * records (and announces) a file; a file saved here that another process
 * recorded first is removed, and so is every file of a pass whose record
 * failed (the pointer stays: the next pass fetches it again). announce:
 * also stores an "attachment_ready" notice for the files recorded now; its
 * row id into *notice_id (0 when none). */
static int att_record(sc_client *c, int64_t rowid, att_result *res, size_t n, bool announce,
                      int64_t *notice_id)
{
    sc_msg row;
    json_t *extra = NULL, *arr, *ready = NULL;
    char *s = NULL;
    int rc;

    *notice_id = 0;
    memset(&row, 0, sizeof row);
    rc = sc_db_begin(c);
    if (rc != SC_OK)
        goto done;
    rc = sc_msg_get(c, rowid, &row);
    if (rc != SC_OK)
        goto out;
    extra = row.extra ? json_loads(row.extra, 0, NULL) : NULL;
    arr = json_object_get(extra, "attachments");
    if (extra == NULL) {
        rc = SC_E_NOT_FOUND; /* no pointers any more: nothing to record */
        goto out;
    }
    ready = json_array();
    if (ready == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(arr, i), *r;
        if (!res[i].tried)
            continue;
        if (!att_to_fetch(a)) {
            /* recorded meanwhile by another process */
            if (res[i].path && unlink(res[i].path) == 0) {
                free(res[i].path);
                res[i].path = NULL;
            }
            continue;
        }
        if (res[i].rc != SC_OK) {
            json_object_set_new(a, "error", json_string(res[i].error ? res[i].error : "error"));
            if (!att_transient(res[i].rc))
                att_forget_key(a); /* final: the key is of no further use */
            continue;
        }
        json_object_set_new(a, "path", json_string(res[i].path));
        json_object_del(a, "error");
        att_forget_key(a);
        r = json_pack("{s:O?, s:O?, s:O?, s:s}", "file_name", json_object_get(a, "file_name"),
                      "content_type", json_object_get(a, "content_type"), "size",
                      json_object_get(a, "size"), "path", res[i].path);
        if (r == NULL || json_array_append_new(ready, r) != 0) {
            rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
            goto out;
        }
    }
    s = json_dumps(extra, JSON_COMPACT);
    if (s == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    rc = sc_msg_set_extra(c, rowid, s);
    if (rc == SC_OK && announce && json_array_size(ready) > 0)
        rc = att_notice(c, &row, ready, notice_id);
out:
    if (rc == SC_OK)
        rc = sc_db_commit(c);
    else
        sc_db_rollback(c);
done:
    if (rc != SC_OK) {
        *notice_id = 0;
        for (size_t i = 0; i < n; i++)
            if (res[i].path)
                (void)unlink(res[i].path);
    }
    att_extra_free(extra);
    json_decref(ready);
    sc_free_secret_str(s);
    sc_msg_free(&row);
    return rc == SC_E_NOT_FOUND ? SC_OK : rc; /* the row is gone: nothing to record */
}

/* Fetches the attachments of row `rowid` still to fetch and records the
 * outcomes (att_record). retry: a pass over older rows: stop at the first
 * failure that may pass (*transient set) and announce what was saved. */
static int att_fetch(sc_client *c, int64_t rowid, bool retry, bool *transient, int64_t *notice_id)
{
    sc_msg row;
    json_t *extra = NULL, *arr;
    att_result *res = NULL;
    size_t n = 0;
    bool any = false;
    int rc;

    *notice_id = 0;
    rc = sc_msg_get(c, rowid, &row);
    if (rc == SC_E_NOT_FOUND)
        return SC_OK;
    if (rc != SC_OK)
        return rc;
    /* issue 11: a long text's whole text first (longtext.c) */
    if (!(retry && *transient) && row.extra && strstr(row.extra, "\"long_text\":{") != NULL) {
        rc = sc_longtext_fetch(c, rowid, transient);
        if (rc != SC_OK)
            goto out;
    }
    extra = row.extra ? json_loads(row.extra, 0, NULL) : NULL;
    arr = json_object_get(extra, "attachments");
    n = json_array_size(arr);
    if (n > 0 && (res = calloc(n, sizeof *res)) == NULL) {
        rc = sc_fail(c, SC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && !(retry && *transient); i++) {
        Sotto__Content__AttachmentPointer p;
        json_t *a = json_array_get(arr, i);
        char msg[sizeof c->err + 16];
        int drc;

        if (!att_to_fetch(a))
            continue; /* saved or failed for good before (or not an attachment) */
        any = true;
        res[i].tried = true;
        drc = sc_attachment_pointer_from_json(a, &p);
        if (drc == SC_OK) {
            drc = sc_attachment_download(c, &p, row.timestamp, &res[i].path);
            sc_attachment_pointer_clear(&p);
        } else {
            drc = sc_fail(c, SC_E_INTEGRITY, "malformed attachment pointer");
        }
        res[i].rc = drc;
        if (drc == SC_OK)
            continue;
        if (drc == SC_E_INTEGRITY)
            c->integrity_failures++;
        if (att_transient(drc)) {
            note_transient(c, drc, c->err);
            *transient = true;
            snprintf(msg, sizeof msg, "%s (will retry)", c->err);
        } else {
            snprintf(msg, sizeof msg, "%s", c->err);
        }
        res[i].error = strdup(msg);
    }
    if (any)
        rc = att_record(c, rowid, res, n, retry, notice_id);
out:
    for (size_t i = 0; res && i < n; i++) {
        free(res[i].path);
        free(res[i].error);
    }
    free(res);
    att_extra_free(extra);
    sc_msg_free(&row);
    return rc;
}

int sc_attachment_fetch_row(sc_client *c, int64_t rowid)
{
    bool transient = false;
    int64_t notice_id = 0;
    return att_fetch(c, rowid, false, &transient, &notice_id);
}

int sc_attachment_retry_pending(sc_client *c, sc_event_cb cb, void *ud)
{
    int64_t rows[32], after = 0;
    size_t n = 0;
    bool transient = false;
    int rc;

    do {
        rc = sc_store_att_rows_to_fetch(c, after, sizeof rows / sizeof rows[0], rows, &n);
        if (rc != SC_OK)
            return rc;
        for (size_t i = 0; i < n && !transient; i++) {
            int64_t notice_id = 0;
            rc = att_fetch(c, rows[i], true, &transient, &notice_id);
            if (rc != SC_OK)
                return rc;
            after = rows[i];
            if (notice_id > 0) {
                /* handed out, then off the pending list; a process killed
                 * in between shows it at its next receive (sc_emit_pending) */
                sc_msg m;
                if (sc_pending_event_hold(c, notice_id) != SC_OK)
                    continue; /* another process took it over */
                if (cb != NULL && sc_msg_get(c, notice_id, &m) == SC_OK) {
                    (void)sc_emit_row(c, &m, cb, ud);
                    sc_msg_free(&m);
                }
                (void)sc_pending_event_done(c, notice_id);
            }
        }
    } while (n == sizeof rows / sizeof rows[0] && !transient);
    return SC_OK;
}

int sc_attachment_outcome(sc_client *c)
{
    if (c->integrity_failures)
        return sc_fail(c, SC_E_INTEGRITY, "%u attachment(s) failed verification and were not saved",
                       c->integrity_failures);
    if (c->att_transient)
        return sc_fail(c, c->att_transient_rc,
                       "%u attachment(s) not saved yet: %s; the next receive or listen"
                       " tries again",
                       c->att_transient, c->att_transient_err);
    return SC_OK;
}
