/*
 * client/core/attach.c -- attachment transfer: encrypt while uploading
 * (PUT /v1/attachments/{id}, streamed), download into a temporary file of
 * ciphertext, verify MAC and digest, and only then decrypt into a second
 * temporary file that is renamed into place. No plaintext byte reaches the
 * disk before the blob verified.
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

#include "internal.h"
#include "sotto/attachment.h"
#include "sotto/error.h"

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
        json_object_set_new(a, "size", json_integer(p && p->size <= SC_ATTACHMENT_MAX
                                                        ? (json_int_t)p->size
                                                        : (json_int_t)-1));
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
    Sotto__Api__ClientFrame f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__AttachmentSlotRequest as = SOTTO__API__ATTACHMENT_SLOT_REQUEST__INIT;
    Sotto__Api__ServerFrame *r = NULL;
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
    as.size = blob;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_ATTACHMENT_SLOT;
    f.attachment_slot = &as;
    rc = sc_api(c, &f, &r);
    if (rc != SC_OK)
        goto out;
    if (r->status != SOTTO__API__STATUS__STATUS_OK || r->attachment_slot == NULL) {
        rc = sc_status_error(c, r, "attachment");
        goto out;
    }
    if (strlen(r->attachment_slot->id) != 32 ||
        strspn(r->attachment_slot->id, "0123456789abcdef") != 32) {
        rc = sc_fail(c, SC_E_SERVER, "the server gave a malformed attachment id");
        goto out;
    }
    if (sotto_attachment_encryptor_new(&s->enc, size, key) != SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTERNAL, "cannot start encrypting");
        goto out;
    }
    snprintf(upath, sizeof upath, "/v1/attachments/%s", r->attachment_slot->id);
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
    ptr->id = strdup(r->attachment_slot->id);
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
    if (r)
        sotto__api__server_frame__free_unpacked(r, NULL);
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

typedef struct dl_sink {
    FILE *f;
    sotto_attachment_verifier *v;
    bool bad;
} dl_sink;

static int dl_write(void *ud, const uint8_t *p, size_t n)
{
    dl_sink *s = ud;
    if (sotto_attachment_verify_update(s->v, p, n) != SOTTO_OK) {
        s->bad = true;
        return -1;
    }
    return fwrite(p, 1, n, s->f) == n ? 0 : -1;
}

/* A safe local file name: base name, no control characters or '/', not
 * starting with '.', at most 100 bytes (cut on a character boundary). */
static void safe_name(const char *in, char *out, size_t cap)
{
    size_t o = 0, len = strlen(in);
    size_t keep = sc_utf8_cut(in, len, 100);

    for (size_t i = 0; i < keep && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch < 0x20 || ch == 0x7f || ch == '/' || ch == '\\')
            ch = '_';
        if (o == 0 && ch == '.')
            ch = '_';
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, cap, "attachment");
}

int sc_attachment_download(sc_client *c, const Sotto__Content__AttachmentPointer *ptr, uint64_t ts,
                           char **path_out)
{
    sc_server srv = sc_server_of(c);
    dl_sink sink = {NULL, NULL, false};
    sotto_attachment_decryptor *dec = NULL;
    char *ct_path = NULL, *pt_path = NULL, *final = NULL;
    char name[128], upath[128], err[256];
    uint8_t *in = NULL, *out = NULL;
    size_t cap;
    uint64_t blob;
    int fd = -1, status = 0, get_rc, rc;
    FILE *pf = NULL;

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
    fd = mkstemp(ct_path);
    if (fd < 0 || (sink.f = fdopen(fd, "w+b")) == NULL) {
        rc = sc_fail(c, SC_E_STORE, "cannot create a temporary file: %s", strerror(errno));
        goto out;
    }
    fd = -1;
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
        /* a blob longer than the pointer's size announces is as bad as a
         * wrong MAC: exit 7, not a network error */
        rc = sink.bad || get_rc == -2
                 ? sc_fail(c, SC_E_INTEGRITY, "attachment failed verification (too long)")
                 : sc_fail(c, SC_E_NETWORK, "download failed: %s", err);
        goto out;
    }
    if (status == 404) {
        rc = sc_fail(c, SC_E_NOT_FOUND, "attachment no longer on the server");
        goto out;
    }
    if (status != 200) {
        rc = sc_fail(c, SC_E_SERVER, "download refused (HTTP %d)", status);
        goto out;
    }
    if (fflush(sink.f) != 0 || sotto_attachment_verify_final(sink.v) != SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTEGRITY, "attachment failed verification (MAC or digest)");
        goto out;
    }
    /* 2. verified: decrypt into a private temporary file */
    rewind(sink.f);
    fd = mkstemp(pt_path);
    if (fd < 0 || (pf = fdopen(fd, "wb")) == NULL) {
        rc = sc_fail(c, SC_E_STORE, "cannot create a temporary file: %s", strerror(errno));
        goto out;
    }
    fd = -1;
    if (sotto_attachment_decryptor_new(&dec, ptr->size, ptr->key.data, ptr->digest.data) !=
        SOTTO_OK) {
        rc = sc_fail(c, SC_E_INTEGRITY, "malformed attachment pointer");
        goto out;
    }
    for (;;) {
        size_t r = fread(in, 1, CHUNK, sink.f), w = 0;
        if (r == 0)
            break;
        if (sotto_attachment_decrypt_update(dec, in, r, out, CHUNK + SOTTO_ATTACHMENT_UPDATE_SLACK,
                                            &w) != SOTTO_OK ||
            fwrite(out, 1, w, pf) != w) {
            rc = sc_fail(c, SC_E_INTEGRITY, "attachment failed to decrypt");
            goto out;
        }
    }
    {
        size_t w = 0;
        if (sotto_attachment_decrypt_final(dec, out, CHUNK + SOTTO_ATTACHMENT_UPDATE_SLACK, &w) !=
                SOTTO_OK ||
            fwrite(out, 1, w, pf) != w) {
            rc = sc_fail(c, SC_E_INTEGRITY, "attachment failed verification");
            goto out;
        }
    }
    if (fclose(pf) != 0) {
        pf = NULL;
        rc = sc_fail(c, SC_E_STORE, "cannot write the attachment");
        goto out;
    }
    pf = NULL;
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
    *path_out = final;
    final = NULL;
    rc = SC_OK;
out:
    if (fd >= 0)
        close(fd);
    if (pf)
        fclose(pf);
    if (sink.f)
        fclose(sink.f);
    if (ct_path && ct_path[0])
        unlink(ct_path);
    if (pt_path && pt_path[0] && strstr(pt_path, "XXXXXX") == NULL)
        unlink(pt_path);
    sotto_attachment_verifier_free(sink.v);
    sotto_attachment_decryptor_free(dec);
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
