/*
 * server/attach.c -- attachment blobs over HTTPS.
 *
 * Design: an authenticated device reserves an id over the WebSocket
 * (AttachmentSlotRequest); the store records {id, size 0, expiry in 24 h}.
 * `PUT /v1/attachments/{hex id}` streams the body straight into
 * DATA_DIR/attachments/{hex}.part (never held whole in memory), fsyncs,
 * renames it to {hex} and records its size and its expiry
 * (attachment_ttl_days) -- the answer 201 is sent after that commit.
 * `GET` serves the file with lws_serve_http_file (streamed from disk).
 * Attachments are not tied to accounts: the id, 128 random bits, is the
 * capability and travels only inside end-to-end encrypted messages.
 * Housekeeping deletes expired rows and their files.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "sottod.h"

#define ATT_HEX (SOTTOD_ATTACHMENT_ID_BYTES * 2)
#define SLOT_TTL_S 86400

static int att_path(const sottod_server *srv, const uint8_t id[SOTTOD_ATTACHMENT_ID_BYTES],
                    const char *suffix, char *out, size_t cap)
{
    char hex[ATT_HEX + 1];
    sodium_bin2hex(hex, sizeof(hex), id, SOTTOD_ATTACHMENT_ID_BYTES);
    int n = snprintf(out, cap, "%s/%s%s", srv->attach_dir, hex, suffix);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

/* Parses "/v1/attachments/<32 lowercase hex>"; returns 0 or -1. */
static int parse_id(const char *uri, uint8_t id[SOTTOD_ATTACHMENT_ID_BYTES])
{
    static const char prefix[] = "/v1/attachments/";
    size_t bin_len = 0;
    if (strncmp(uri, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    const char *hex = uri + sizeof(prefix) - 1;
    if (strlen(hex) != ATT_HEX)
        return -1;
    for (size_t i = 0; i < ATT_HEX; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return -1;
    if (sodium_hex2bin(id, SOTTOD_ATTACHMENT_ID_BYTES, hex, ATT_HEX, NULL, &bin_len, NULL) != 0 ||
        bin_len != SOTTOD_ATTACHMENT_ID_BYTES)
        return -1;
    return 0;
}

/* ---- slot ---------------------------------------------------------------- */

typedef struct slot_ctx {
    sottod_attach_slot_fn fn;
    void *arg;
    uint8_t id[SOTTOD_ATTACHMENT_ID_BYTES];
} slot_ctx;

static void slot_done(void *arg, const sottod_store_result *res)
{
    slot_ctx *sc = arg;
    sc->fn(sc->arg, res->status, sc->id);
    free(sc);
}

int sottod_attach_slot(sottod_server *srv, sottod_attach_slot_fn fn, void *arg)
{
    sottod_attachment att;
    slot_ctx *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return SOTTOD_STORE_NOMEM;
    sc->fn = fn;
    sc->arg = arg;
    randombytes_buf(sc->id, sizeof(sc->id));
    memset(&att, 0, sizeof(att));
    memcpy(att.id, sc->id, sizeof(att.id));
    att.size = 0;
    att.created_at = sottod_store_now(srv->store);
    /* Dates only (issue 12): valid until the end of the day after. */
    att.expires_at = att.created_at - att.created_at % 86400 + SLOT_TTL_S + 86400;
    att.referenced = false;
    int st = sottod_store_attachment_create(srv->store, &att, slot_done, sc);
    if (st != SOTTOD_STORE_OK)
        free(sc);
    return st;
}

/* ---- HTTP --------------------------------------------------------------------- */

static void discard_part(sottod_conn *c);

static int fail(sottod_conn *c, unsigned status, const char *msg)
{
    c->http_failed = true;
    return sottod_http_respond(c->wsi, status, "text/plain", msg, strlen(msg));
}

int sottod_attach_http(sottod_conn *c, const char *uri, bool is_put)
{
    sottod_server *srv = c->srv;
    sottod_attachment att;
    char path[SOTTOD_PATH_MAX + 64];

    if (parse_id(uri, c->http_att_id) != 0)
        return fail(c, 404, "not found\n");
    int st = sottod_store_attachment_get(srv->store, c->http_att_id, &att);
    int64_t now = sottod_store_now(srv->store);
    if (st == SOTTOD_STORE_NOT_FOUND || (st == SOTTOD_STORE_OK && att.expires_at <= now))
        return fail(c, 404, "not found\n");
    if (st != SOTTOD_STORE_OK) {
        sottod_log_store_error(srv, "store_error", "attachment_get", st);
        return fail(c, 500, "storage error\n");
    }

    if (!is_put) {
        if (!att.referenced)
            return fail(c, 404, "not found\n");
        if (att_path(srv, c->http_att_id, "", path, sizeof(path)) != 0)
            return fail(c, 500, "path too long\n");
        int n = lws_serve_http_file(c->wsi, path, "application/octet-stream", NULL, 0);
        if (n < 0 || ((n > 0) && lws_http_transaction_completed(c->wsi)))
            return -1;
        return 0;
    }

    /* PUT */
    char cl[32];
    if (att.referenced)
        return fail(c, 409, "already uploaded\n");
    if (lws_hdr_copy(c->wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return fail(c, 411, "content-length required\n");
    char *end = NULL;
    errno = 0;
    unsigned long long want = strtoull(cl, &end, 10);
    if (errno != 0 || end == cl || *end != '\0')
        return fail(c, 400, "bad content-length\n");
    if (want > srv->cfg.attachment_max)
        return fail(c, 413, "too large\n");
    if (want == 0)
        return fail(c, 400, "empty upload\n");
    /* The global disk budget (disk.h): refused before the disk fills. */
    if (!sottod_disk_admit(srv, want))
        return fail(c, 507, "server storage is full, retry later\n");
    /* The blob of a finished upload whose row is still being committed. */
    if (att_path(srv, c->http_att_id, "", path, sizeof(path)) != 0)
        return fail(c, 500, "path too long\n");
    if (access(path, F_OK) == 0)
        return fail(c, 409, "already uploaded\n");
    if (att_path(srv, c->http_att_id, ".part", path, sizeof(path)) != 0)
        return fail(c, 500, "path too long\n");
    c->http_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (c->http_fd < 0)
        return fail(c, errno == EEXIST ? 409 : 500,
                    errno == EEXIST ? "upload in progress\n" : "cannot store\n");
    c->http_expected = want;
    c->http_received = 0;
    c->http_started_us = sottod_mono_us();
    /* RFC 9110 section 10.1.1: a client that sent `Expect: 100-continue`
     * waits for this before sending the body. Only now, after every check
     * passed, so a refused upload is answered with its final status
     * instead. */
    char expect[32];
    if (lws_hdr_copy(c->wsi, expect, sizeof(expect), WSI_TOKEN_HTTP_EXPECT) > 0 &&
        strcasecmp(expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uint8_t buf[LWS_PRE + sizeof(cont)];
        memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
        if (lws_write(c->wsi, buf + LWS_PRE, sizeof(cont) - 1, LWS_WRITE_HTTP) < 0) {
            discard_part(c);
            return -1;
        }
    }
    return 0; /* body follows in LWS_CALLBACK_HTTP_BODY */
}

static void discard_part(sottod_conn *c)
{
    char path[SOTTOD_PATH_MAX + 64];
    if (c->http_fd >= 0) {
        close(c->http_fd);
        c->http_fd = -1;
        if (att_path(c->srv, c->http_att_id, ".part", path, sizeof(path)) == 0)
            unlink(path);
    }
}

int sottod_attach_body(sottod_conn *c, const uint8_t *data, size_t len)
{
    if (c->http_fd < 0)
        return 0; /* already failed; drain */
    if (c->http_received + len > c->http_expected) {
        discard_part(c);
        return fail(c, 413, "body longer than content-length\n");
    }
    /* Slowloris: lws drops a body that stalls for a few seconds; one that
     * trickles must, after a grace period, arrive at a minimum average
     * rate. */
    int64_t elapsed_us = sottod_mono_us() - c->http_started_us;
    if (elapsed_us > (int64_t)SOTTOD_UPLOAD_GRACE_S * 1000000 &&
        (double)(c->http_received + len) * 1e6 / (double)elapsed_us < SOTTOD_UPLOAD_MIN_BPS) {
        discard_part(c);
        c->http_failed = true;
        sottod_log_user(SOTTOD_LOG_INFO, "upload_too_slow", NULL);
        /* Closed from the next writeable callback (attach_writeable). */
        c->http_status = -1;
        lws_callback_on_writable(c->wsi);
        return 0;
    }

    while (len > 0) {
        ssize_t n = write(c->http_fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            discard_part(c);
            return fail(c, 500, "cannot store\n");
        }
        data += n;
        len -= (size_t)n;
        c->http_received += (uint64_t)n;
    }
    return 0;
}

static void upload_done(void *arg, const sottod_store_result *res)
{
    sottod_conn *c = arg;
    if (res->status != SOTTOD_STORE_OK) {
        sottod_log_store_error(c->srv, "store_error", "attachment_update", res->status);
        /* Not recorded: remove the blob so the slot can be used again. */
        char final[SOTTOD_PATH_MAX + 64];
        if (att_path(c->srv, c->http_att_id, "", final, sizeof(final)) == 0)
            unlink(final);
    }
    if (c->wsi != NULL) {
        c->http_status = res->status == SOTTOD_STORE_OK ? 201 : 500;
        if (res->status == SOTTOD_STORE_OK)
            c->srv->m.attachments_uploaded_total++;
        lws_callback_on_writable(c->wsi);
    }
    sottod_conn_unref(c);
}

/* Records a finished blob (the answer goes out from upload_done). */
static int record_upload(sottod_conn *c)
{
    sottod_server *srv = c->srv;
    sottod_attachment att;
    memset(&att, 0, sizeof(att));
    memcpy(att.id, c->http_att_id, sizeof(att.id));
    att.size = c->http_received;
    att.created_at = sottod_store_now(srv->store);
    /* A date, not a time: kept until the end of the day TTL days on. */
    att.expires_at = att.created_at - att.created_at % 86400 +
                     ((int64_t)srv->cfg.attachment_ttl_days + 1) * 86400;
    att.referenced = true;
    sottod_conn_ref(c);
    int st = sottod_store_attachment_update(srv->store, &att, upload_done, c);
    if (st != SOTTOD_STORE_OK) {
        char final[SOTTOD_PATH_MAX + 64];
        sottod_conn_unref(c);
        if (att_path(srv, c->http_att_id, "", final, sizeof(final)) == 0)
            unlink(final);
        return -1;
    }
    return 0;
}

/* fsync, close and publish a finished .part under its final name. link(),
 * not rename(): a second upload of the same id that started after this
 * one's .part was moved away (its row still being committed) must not
 * replace the finished blob; link() refuses to overwrite. Returns 0, or the
 * HTTP status to answer. Runs on a finisher thread (no shared state). */
static int finish_blob(int fd, const char *part, const char *final)
{
    int status = 0;
    /* Stored times are dates (issue 12): the blob's times become 00:00 UTC
     * of the upload day (ctime cannot be set; mount with noatime). */
    time_t day = time(NULL);
    struct timespec ts[2] = {{day - day % 86400, 0}, {day - day % 86400, 0}};
    (void)futimens(fd, ts);
    if (fsync(fd) != 0)
        status = 500;
    close(fd);
    if (status == 0 && link(part, final) != 0)
        status = errno == EEXIST ? 409 : 500;
    unlink(part);
    return status;
}

/*
 * The fsync of a large blob can take long; it runs on a short-lived
 * finisher thread so the event loop never waits for the disk. The thread
 * touches only its job; the loop takes the finished job back from
 * srv->att_done (woken by lws_cancel_service) and records the upload.
 */
typedef struct finish_job {
    struct finish_job *next;
    sottod_conn *c; /* a reference, taken and dropped on the loop */
    int fd;
    int status;
    char part[SOTTOD_PATH_MAX + 64], final[SOTTOD_PATH_MAX + 64];
} finish_job;

static void *finisher(void *arg)
{
    finish_job *j = arg;
    sottod_server *srv = j->c->srv;
    j->status = finish_blob(j->fd, j->part, j->final);
    pthread_mutex_lock(&srv->att_mu);
    j->next = srv->att_done;
    srv->att_done = j;
    pthread_mutex_unlock(&srv->att_mu);
    lws_cancel_service(srv->ctx);
    return NULL;
}

static void answer_later(sottod_conn *c, int status)
{
    if (c->wsi == NULL)
        return;
    c->http_status = status;
    lws_callback_on_writable(c->wsi);
}

void sottod_attach_run_finished(sottod_server *srv)
{
    finish_job *list;
    pthread_mutex_lock(&srv->att_mu);
    list = srv->att_done;
    srv->att_done = NULL;
    pthread_mutex_unlock(&srv->att_mu);
    while (list != NULL) {
        finish_job *j = list;
        list = j->next;
        srv->att_running--;
        if (j->status != 0)
            answer_later(j->c, j->status);
        else if (record_upload(j->c) != 0)
            answer_later(j->c, 500);
        sottod_conn_unref(j->c);
        free(j);
    }
}

int sottod_attach_body_done(sottod_conn *c)
{
    sottod_server *srv = c->srv;
    if (c->http_fd < 0)
        return c->http_failed ? 0 : fail(c, 400, "no upload\n");
    if (c->http_received != c->http_expected) {
        discard_part(c);
        return fail(c, 400, "body shorter than content-length\n");
    }
    finish_job *j = calloc(1, sizeof(*j));
    if (j == NULL || att_path(srv, c->http_att_id, ".part", j->part, sizeof(j->part)) != 0 ||
        att_path(srv, c->http_att_id, "", j->final, sizeof(j->final)) != 0) {
        free(j);
        discard_part(c);
        return fail(c, 500, "cannot store\n");
    }
    j->fd = c->http_fd;
    j->c = c;
    c->http_fd = -1; /* the job owns the file now */
    sottod_conn_ref(c);
    pthread_t t;
    pthread_attr_t attr;
    bool started = false;
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, finisher, j) == 0;
        pthread_attr_destroy(&attr);
    }
    if (started) {
        srv->att_running++;
        return 0; /* answered after the finisher and the store commit */
    }
    /* No thread: finish here (blocking, but correct). */
    int status = finish_blob(j->fd, j->part, j->final);
    sottod_conn_unref(c);
    free(j);
    if (status != 0)
        return fail(c, (unsigned)status, status == 409 ? "already uploaded\n" : "cannot store\n");
    if (record_upload(c) != 0)
        return fail(c, 500, "cannot store\n");
    return 0;
}

int sottod_attach_writeable(sottod_conn *c)
{
    int status = c->http_status;
    if (status == 0)
        return 0;
    c->http_status = 0;
    if (status < 0)
        return -1; /* cut (upload too slow) */
    switch (status) {
    case 201:
        return sottod_http_respond(c->wsi, 201, "text/plain", "created\n", 8);
    case 409:
        return sottod_http_respond(c->wsi, 409, "text/plain", "already uploaded\n", 17);
    default:
        return sottod_http_respond(c->wsi, 500, "text/plain", "cannot store\n", 13);
    }
}

void sottod_attach_closed(sottod_conn *c)
{
    discard_part(c); /* an interrupted upload leaves nothing behind */
}

/* ---- expiry ------------------------------------------------------------------- */

typedef struct expire_ctx {
    sottod_server *srv;
    size_t n;
    uint8_t ids[256][SOTTOD_ATTACHMENT_ID_BYTES];
} expire_ctx;

static int collect_expired(void *arg, const sottod_attachment *att)
{
    expire_ctx *ec = arg;
    if (ec->n >= 256)
        return 1;
    memcpy(ec->ids[ec->n++], att->id, SOTTOD_ATTACHMENT_ID_BYTES);
    return 0;
}

static void expire_done(void *arg, const sottod_store_result *res)
{
    sottod_server *srv = arg;
    if (res->status == SOTTOD_STORE_OK)
        srv->m.attachments_expired_total++;
}

void sottod_attach_expire(sottod_server *srv)
{
    expire_ctx *ec = calloc(1, sizeof(*ec));
    char path[SOTTOD_PATH_MAX + 64];
    if (ec == NULL)
        return;
    ec->srv = srv;
    if (sottod_store_attachments_expired(srv->store, 256, collect_expired, ec) != SOTTOD_STORE_OK) {
        free(ec);
        return;
    }
    for (size_t i = 0; i < ec->n; i++) {
        if (att_path(srv, ec->ids[i], "", path, sizeof(path)) == 0)
            unlink(path);
        if (att_path(srv, ec->ids[i], ".part", path, sizeof(path)) == 0)
            unlink(path);
        if (sottod_store_attachment_delete(srv->store, ec->ids[i], expire_done, srv) !=
            SOTTOD_STORE_OK)
            break;
    }
    if (ec->n > 0)
        sottod_log(SOTTOD_LOG_INFO, "attachments_expired", "count=%zu", ec->n);
    free(ec);
}
