/*
 * bench/server/server_load.c -- sotto-bench-server: load benchmark of sottod.
 *
 * Starts a private sottod (temp data dir, 127.0.0.1:0), opens N
 * authenticated TLS WebSocket connections (one account each, client code
 * tests/server/tclient.c) and sends M envelopes between them: connection i
 * sends to account (i+1) mod N, every envelope acked by the server only
 * after its durable commit, pushed to the recipient, acked by it. Two runs:
 * as fast as possible (a window of sends in flight per connection) and at a
 * fixed rate. Latency is measured from the SCHEDULED send time to receipt
 * of the push at the recipient (so queueing behind a slow server counts).
 * Server CPU per envelope comes from /proc/PID/stat (utime+stime) over the
 * traffic phase; RSS per idle connection is (VmRSS after N logged-in idle
 * connections - VmRSS before any) / N.
 *
 * Sealed sender (issue 12, on unless --no-sealed): the same N accounts
 * then exchange the same M envelopes SEALED, as a Sotto client sends them:
 * every account has set a delivery token (op 34); each sender sends from a
 * second connection that never logs in, with the recipient's token, type 6
 * and a body as long as a real sealed sender v1 message of a BODY-byte
 * inner message (made once with sotto_sealed_encrypt and a sender
 * certificate fetched from the server, op 33); pushes arrive on the
 * recipients' logged-in connections. The identified and sealed rows of the
 * same run are compared (goal: sealed within 10%). For a fair comparison
 * the sealed connections are opened BEFORE the identified runs and stay
 * open (idle) through them, as a client keeps both of its connections: every
 * row runs with the same 2N connections in sottod's poll set (lws's poll()
 * costs per open descriptor, so N more idle connections otherwise made only
 * the sealed rows pay for them).
 *
 * In the same run, a reference row: the same pattern through a private
 * mosquitto broker (Debian's, TLS 1.3 with the same self-signed
 * certificate, QoS 1, libmosquitto clients, client i subscribed to u/i and
 * publishing to u/(i+1)). Mosquitto keeps QoS 1 messages in memory only
 * (no fsync), so its row is not durable.
 *
 * Usage: sotto-bench-server [-n CONNS] [-m ENVELOPES] [-r RATE] [-b BODY]
 *                           [-d full|process] [-t SECONDS] [--no-mosquitto]
 * Every phase has a time limit; the whole run ends by itself.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <mosquitto.h>

#include <sodium.h>

#include "sotto/sealed.h"
#include "tclient.h"

#define WINDOW_FAST 4  /* sends in flight per connection, max mode */
#define WINDOW_RATE 16 /* ... fixed-rate mode (server allows 32) */

typedef struct opts {
    int n;
    int m;
    int rate;
    int body;
    const char *durability;
    int phase_timeout_s;
    bool mosquitto;
    bool sealed;
} opts;

typedef struct result {
    const char *system;
    char mode[32];
    int sent, received;
    double seconds;
    double env_per_s;
    double p50_ms, p99_ms, p999_ms;
    double cpu_us_per_env;
    double rss_kib_per_conn;
    double client_cpu_us_per_env;
    bool complete;
} result;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- /proc ---------------------------------------------------------------------- */

static long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(fp);
    return kib;
}

/* utime + stime of pid, in microseconds. */
static double proc_cpu_us(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long ut = 0, st = 0;
    FILE *fp;
    size_t n;
    int field;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* comm may contain spaces */
    if (p == NULL)
        return -1;
    p += 2;
    /* after ')' : field 3 is state; utime is field 14, stime 15 */
    for (field = 3; field < 14 && p != NULL; field++) {
        p = strchr(p, ' ');
        if (p != NULL)
            p++;
    }
    if (p == NULL || sscanf(p, "%lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void percentiles(int64_t *lat, int n, result *r)
{
    if (n == 0)
        return;
    qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
    r->p50_ms = (double)lat[(size_t)((double)n * 0.50)] / 1e6;
    r->p99_ms = (double)lat[(size_t)((double)(n - 1) * 0.99)] / 1e6;
    r->p999_ms = (double)lat[(size_t)((double)(n - 1) * 0.999)] / 1e6;
}

/* ---- message schedule and body ------------------------------------------------- */

typedef struct sched {
    int m, n, rate;
    int64_t t0;
} sched;

static int64_t sched_time(const sched *s, int k)
{
    if (s->rate <= 0)
        return 0; /* max mode: time of actual send */
    return s->t0 + (int64_t)((double)k * 1e9 / s->rate);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Per-connection FIFO of message indices due but not yet sent. */
typedef struct fifo {
    int *v;
    int head, tail, cap;
} fifo;

static void fifo_push(fifo *f, int x)
{
    if (f->tail == f->cap) {
        if (f->head > 0) {
            memmove(f->v, f->v + f->head, (size_t)(f->tail - f->head) * sizeof(int));
            f->tail -= f->head;
            f->head = 0;
        } else {
            int ncap = f->cap ? f->cap * 2 : 8;
            int *nv = realloc(f->v, (size_t)ncap * sizeof(int));

            if (nv == NULL)
                abort();
            f->v = nv;
            f->cap = ncap;
        }
    }
    f->v[f->tail++] = x;
}

static bool fifo_empty(const fifo *f)
{
    return f->head == f->tail;
}

static int fifo_pop(fifo *f)
{
    return f->v[f->head++];
}

/* ---- sottod ------------------------------------------------------------------------ */

typedef struct peer {
    tc_conn *c;
    tc_conn *anon; /* sealed sends: a connection that never logs in */
    tc_device dev;
    uint8_t token[SOTTO_DELIVERY_TOKEN_BYTES]; /* this account's delivery token */
    int inflight;
    bool dirty; /* has corked output to flush */
    fifo pending;
    int64_t *sent_at; /* per message index (shared array) */
} peer;

typedef struct sottod_bench {
    const opts *o;
    tc_server srv;
    peer *p;
    int ep;
    int *dirty; /* indices of peers with output */
    int ndirty;
    bool sealed_ok;      /* the server took every delivery token and gave a certificate */
    bool sealed_mode;    /* this run sends sealed (from p[i].anon) */
    uint8_t *sealed_msg; /* a real sealed sender v1 message of a BODY-byte inner message */
    size_t sealed_len;
    size_t ident_len;     /* identified body length of this run (BODY, or sealed_len) */
    char ident_label[48]; /* "sottod identified, N B" for the latter */
} sottod_bench;

static void mark_dirty(sottod_bench *b, int i)
{
    if (!b->p[i].dirty) {
        b->p[i].dirty = true;
        b->dirty[b->ndirty++] = i;
    }
}

/* Writes the corked output of every peer that has some. */
static int flush_dirty(sottod_bench *b)
{
    int rc = 0;

    for (int k = 0; k < b->ndirty; k++) {
        peer *p = &b->p[b->dirty[k]];

        p->dirty = false;
        if (tc_flush(p->c) != 0 || (p->anon != NULL && tc_flush(p->anon) != 0))
            rc = -1;
    }
    b->ndirty = 0;
    return rc;
}

/* Sealed sender: every account sets a delivery token (op 34); account 0
 * fetches a sender certificate (op 33) and seals one BODY-byte message to
 * account 1 with it, whose length every sealed send uses. Before the
 * connections are corked. Returns 0, or -1 with the reason printed. */
static int sealed_prepare(sottod_bench *b)
{
    const opts *o = b->o;
    uint8_t profile_key[SOTTO_PROFILE_KEY_BYTES], *inner;
    tc_sframe *r;
    int rc;

    for (int i = 0; i < o->n; i++) {
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__SetDeliveryTokenRequest rq = SOTTO__API__SET_DELIVERY_TOKEN_REQUEST__INIT;

        randombytes_buf(profile_key, sizeof(profile_key));
        if (sotto_delivery_token_derive(b->p[i].token, profile_key) != SOTTO_OK)
            return -1;
        rq.token.data = b->p[i].token;
        rq.token.len = sizeof(b->p[i].token);
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_DELIVERY_TOKEN;
        f.set_delivery_token = &rq;
        r = tc_call(b->p[i].c, &f, 10000);
        rc = r == NULL ? TC_ERR : (int)r->status;
        tc_free(r);
        if (rc != SOTTO__API__STATUS__STATUS_OK) {
            fprintf(stderr, "sotto-bench-server: set_delivery_token refused (%d): no sealed rows\n",
                    rc);
            return -1;
        }
    }
    {
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__SenderCertificateRequest rq = SOTTO__API__SENDER_CERTIFICATE_REQUEST__INIT;

        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SENDER_CERTIFICATE;
        f.sender_certificate = &rq;
        r = tc_call(b->p[0].c, &f, 10000);
        if (r == NULL || r->status != SOTTO__API__STATUS__STATUS_OK ||
            r->result_case != SOTTO__API__SERVER_FRAME__RESULT_SENDER_CERTIFICATE) {
            fprintf(stderr, "sotto-bench-server: no sender certificate (%d): no sealed rows\n",
                    r == NULL ? TC_ERR : (int)r->status);
            tc_free(r);
            return -1;
        }
    }
    inner = calloc(1, (size_t)o->body);
    rc = inner == NULL
             ? SOTTO_ERR_NOMEM
             : sotto_sealed_encrypt(&b->sealed_msg, &b->sealed_len, &b->p[0].dev.identity,
                                    &b->p[1].dev.identity.pub, SOTTO_SEALED_TYPE_MESSAGE,
                                    r->sender_certificate->certificate.data,
                                    r->sender_certificate->certificate.len, inner, (size_t)o->body);
    free(inner);
    tc_free(r);
    if (rc != SOTTO_OK) {
        fprintf(stderr, "sotto-bench-server: sotto_sealed_encrypt: %s\n", sotto_strerror(rc));
        return -1;
    }
    return 0;
}

/* Opens every sender's sealed connection (never logged in), in the epoll
 * set as n + i. Returns 0 or -1. */
static int sealed_open(sottod_bench *b)
{
    int64_t t = now_ns();

    for (int i = 0; i < b->o->n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(b->o->n + i)};

        b->p[i].anon = tc_connect(&b->srv);
        if (b->p[i].anon == NULL) {
            fprintf(stderr, "sotto-bench-server: sealed connection %d failed\n", i);
            return -1;
        }
        epoll_ctl(b->ep, EPOLL_CTL_ADD, tc_fd(b->p[i].anon), &ev);
        tc_cork(b->p[i].anon, true);
    }
    fprintf(stderr, "sottod: %d sealed-send connections (not logged in) opened in %.1f s\n",
            b->o->n, (double)(now_ns() - t) / 1e9);
    return 0;
}

static int sottod_setup(sottod_bench *b)
{
    const opts *o = b->o;
    char maxc[64], dur[64];
    const char *sets[24];
    int ns = 0, i;
    long rss0, rss1;
    int64_t t;

    /* sealed runs: a second connection per sender, which never logs in */
    snprintf(maxc, sizeof(maxc), "max_connections=%d", (o->sealed ? 2 : 1) * o->n + 100);
    snprintf(dur, sizeof(dur), "durability=%s", o->durability);
    sets[ns++] = maxc;
    sets[ns++] = dur;
    sets[ns++] = "rate_send_per_min=1000000";
    sets[ns++] = "rate_send_burst=1000000";
    sets[ns++] = "rate_pair_per_min=1000000";
    sets[ns++] = "rate_pair_burst=1000000";
    sets[ns++] = "rate_register_per_min=1000000";
    sets[ns++] = "rate_register_burst=1000000";
    sets[ns++] = "queue_max=1000000";
    sets[ns++] = "log_level=warn";
    /* every account registers from 127.0.0.1 */
    sets[ns++] = "rate_register_source_per_min=1000000";
    sets[ns++] = "rate_register_source_burst=1000000";
    sets[ns++] = "rate_register_prefix_per_min=1000000";
    sets[ns++] = "rate_register_prefix_burst=1000000";
    /* sealed sends: the per recipient limit (all senders together) */
    sets[ns++] = "rate_sealed_per_min=1000000";
    sets[ns++] = "rate_sealed_burst=1000000";
    /* every sender's sealed connection comes from 127.0.0.1 */
    sets[ns++] = "sealed_conns_per_source=1000000";
    sets[ns++] = "sealed_conns_share=100";
    /* the sealed connections are opened before the identified runs and
     * send nothing until the sealed ones: no login deadline meanwhile */
    sets[ns++] = "auth_timeout_s=3600";
    sets[ns++] = "metrics_listen=off";
    sets[ns] = NULL;
    if (tc_server_init(&b->srv) != 0 || tc_server_start(&b->srv, sets) != 0) {
        fprintf(stderr, "sotto-bench-server: cannot start %s\n", tc_sottod_path());
        return -1;
    }
    usleep(200 * 1000);
    rss0 = proc_rss_kib(b->srv.pid);
    b->p = calloc((size_t)o->n, sizeof(*b->p));
    if (b->p == NULL)
        return -1;
    t = now_ns();
    for (i = 0; i < o->n; i++) {
        char name[32];

        snprintf(name, sizeof(name), "user%05d", i);
        b->p[i].c = tc_new_user(&b->srv, &b->p[i].dev, name, 0);
        if (b->p[i].c == NULL) {
            fprintf(stderr, "sotto-bench-server: connection %d failed\n", i);
            return -1;
        }
        if ((now_ns() - t) / 1000000000 > b->o->phase_timeout_s) {
            fprintf(stderr, "sotto-bench-server: setup too slow (%d connections)\n", i);
            return -1;
        }
    }
    if (o->sealed)
        b->sealed_ok = sealed_prepare(b) == 0;
    fprintf(stderr, "sottod: %d accounts registered and logged in in %.1f s\n", o->n,
            (double)(now_ns() - t) / 1e9);
    usleep(500 * 1000);
    rss1 = proc_rss_kib(b->srv.pid);
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    b->dirty = calloc((size_t)o->n, sizeof(int));
    if (b->dirty == NULL)
        return -1;
    for (i = 0; i < o->n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};

        epoll_ctl(b->ep, EPOLL_CTL_ADD, tc_fd(b->p[i].c), &ev);
        tc_cork(b->p[i].c, true); /* one write per peer per loop turn */
    }
    return (int)(rss1 - rss0);
}

static int sottod_try_send(sottod_bench *b, int i, const sched *s, int window, uint8_t *body,
                           result *r)
{
    peer *p = &b->p[i];
    int dest = (i + 1) % b->o->n;

    while (!fifo_empty(&p->pending) && p->inflight < window) {
        int k = fifo_pop(&p->pending);
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__SendRequest rq = SOTTO__API__SEND_REQUEST__INIT;
        Sotto__Api__OutgoingMessage om = SOTTO__API__OUTGOING_MESSAGE__INIT, *omp = &om;
        int64_t t = s->rate > 0 ? sched_time(s, k) : now_ns();
        size_t len = b->sealed_mode ? b->sealed_len : b->ident_len;

        /* message index and scheduled time in the last 16 bytes */
        put_u64(body + len - 16, (uint64_t)k);
        put_u64(body + len - 8, (uint64_t)t);
        om.device_id = 1;
        om.registration_id = b->p[dest].dev.registration_id;
        om.type = b->sealed_mode ? 6 : 2;
        om.body.data = body;
        om.body.len = len;
        rq.destination = b->p[dest].dev.username;
        rq.n_messages = 1;
        rq.messages = &omp;
        if (b->sealed_mode) {
            rq.delivery_token.data = b->p[dest].token;
            rq.delivery_token.len = sizeof(b->p[dest].token);
        }
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SEND;
        f.send = &rq;
        f.id = (uint64_t)k + 1;
        if (tc_send(b->sealed_mode ? p->anon : p->c, &f) != 0)
            return -1;
        mark_dirty(b, i);
        p->inflight++;
        r->sent++;
    }
    return 0;
}

static void sottod_run(sottod_bench *b, int rate, result *r)
{
    const opts *o = b->o;
    sched s = {.m = o->m, .n = o->n, .rate = rate};
    int64_t *lat = calloc((size_t)o->m, sizeof(int64_t));
    uint8_t *seen = calloc((size_t)o->m, 1);
    size_t body_len = b->sealed_mode ? b->sealed_len : b->ident_len;
    uint8_t *body = calloc(1, body_len);
    int window = rate > 0 ? WINDOW_RATE : WINDOW_FAST;
    int next = 0, nlat = 0, failures = 0, wrong = 0, i;
    double cpu0, cpu1, ccpu0;
    int64_t t_end, deadline;

    memset(r, 0, sizeof(*r));
    r->system = b->sealed_mode                    ? "sottod sealed v1"
                : b->ident_len != (size_t)o->body ? b->ident_label
                                                  : "sottod identified";
    if (rate > 0)
        snprintf(r->mode, sizeof(r->mode), "%d/s", rate);
    else
        snprintf(r->mode, sizeof(r->mode), "max");
    if (lat == NULL || seen == NULL || body == NULL)
        abort();
    if (b->sealed_mode)
        memcpy(body, b->sealed_msg, body_len);
    else
        for (i = 0; i < (int)body_len; i++)
            body[i] = (uint8_t)(i * 31 + 7);
    cpu0 = proc_cpu_us(b->srv.pid);
    ccpu0 = self_cpu_us();
    s.t0 = now_ns();
    deadline = s.t0 + (int64_t)o->phase_timeout_s * 1000000000;
    if (rate <= 0) {
        /* Max mode: everything is due now, spread over the senders. */
        for (next = 0; next < o->m; next++)
            fifo_push(&b->p[next % o->n].pending, next);
        for (i = 0; i < o->n; i++)
            if (sottod_try_send(b, i, &s, window, body, r) != 0)
                goto out;
    }
    while (nlat < o->m && now_ns() < deadline) {
        struct epoll_event evs[256];
        int64_t now = now_ns();
        int timeout_ms = 5, nev, e;

        if (rate > 0) {
            while (next < o->m && sched_time(&s, next) <= now) {
                int snd = next % o->n;

                fifo_push(&b->p[snd].pending, next);
                next++;
                if (sottod_try_send(b, snd, &s, window, body, r) != 0)
                    goto out;
            }
            if (next < o->m) {
                int64_t wait = sched_time(&s, next) - now_ns();

                timeout_ms =
                    wait <= 0 ? 0 : (int)((wait + 999999) / 1000000); /* no busy wait: round up */
            }
        }
        if (flush_dirty(b) != 0)
            goto out;
        nev = epoll_wait(b->ep, evs, 256, timeout_ms);
        for (e = 0; e < nev; e++) {
            int ev_i = (int)evs[e].data.u32;
            int ci = ev_i >= o->n ? ev_i - o->n : ev_i; /* n + i: i's sealed connection */
            peer *p = &b->p[ci];
            tc_conn *conn = ev_i >= o->n ? p->anon : p->c;
            int rc;
            tc_sframe *f;

            while ((f = tc_recv(conn, 0, &rc)) != NULL) {
                if (f->result_case == SOTTO__API__SERVER_FRAME__RESULT_PUSH) {
                    const ProtobufCBinaryData *bd = &f->push->body;

                    if (bd->len >= 16) {
                        uint64_t k = get_u64(bd->data + bd->len - 16);

                        if (k < (uint64_t)o->m && !seen[k]) {
                            seen[k] = 1;
                            lat[nlat++] = now_ns() - (int64_t)get_u64(bd->data + bd->len - 8);
                        }
                        if (f->push->type != (b->sealed_mode ? 6u : 2u) ||
                            (b->sealed_mode &&
                             (f->push->source[0] != '\0' || f->push->source_device_id != 0)))
                            wrong++;
                    }
                    (void)tc_ack(p->c, f->id);
                    mark_dirty(b, ci);
                } else if (f->result_case != SOTTO__API__SERVER_FRAME__RESULT_NOTICE) {
                    p->inflight--;
                    if (f->status != SOTTO__API__STATUS__STATUS_OK && f->id >= 1 &&
                        f->id <= (uint64_t)o->m) {
                        if (failures++ == 0)
                            fprintf(stderr, "sottod: send refused: status %d %s\n", (int)f->status,
                                    f->error != NULL ? f->error : "");
                        fifo_push(&p->pending, (int)f->id - 1); /* retry */
                        r->sent--;
                    }
                    if (sottod_try_send(b, ci, &s, window, body, r) != 0)
                        goto out;
                }
                tc_free(f);
            }
            if (rc == TC_CLOSED || rc == TC_ERR) {
                fprintf(stderr, "sotto-bench-server: connection %d lost\n", ev_i);
                epoll_ctl(b->ep, EPOLL_CTL_DEL, tc_fd(conn), NULL);
            }
        }
    }
out:
    t_end = now_ns();
    cpu1 = proc_cpu_us(b->srv.pid);
    r->received = nlat;
    r->complete = nlat == o->m;
    r->seconds = (double)(t_end - s.t0) / 1e9;
    r->env_per_s = (double)nlat / r->seconds;
    r->cpu_us_per_env = nlat > 0 ? (cpu1 - cpu0) / nlat : 0;
    r->client_cpu_us_per_env = nlat > 0 ? (self_cpu_us() - ccpu0) / nlat : 0;
    percentiles(lat, nlat, r);
    if (failures > 0)
        fprintf(stderr, "sottod: %d sends refused and retried\n", failures);
    if (wrong > 0) {
        fprintf(stderr, "sottod: %d envelopes pushed with the wrong type or a sender\n", wrong);
        r->complete = false;
    }
    /* Drain: wait for outstanding responses so the next run starts clean. */
    {
        int64_t until = now_ns() + 2000000000;
        int busy = 1;

        while (busy && now_ns() < until) {
            struct epoll_event evs[256];
            int nev = epoll_wait(b->ep, evs, 256, 20);

            busy = 0;
            for (int e = 0; e < nev; e++) {
                int ev_i = (int)evs[e].data.u32, ci = ev_i >= o->n ? ev_i - o->n : ev_i;
                peer *p = &b->p[ci];
                tc_conn *conn = ev_i >= o->n ? p->anon : p->c;
                int rc;
                tc_sframe *f;

                while ((f = tc_recv(conn, 0, &rc)) != NULL) {
                    if (f->result_case == SOTTO__API__SERVER_FRAME__RESULT_PUSH) {
                        (void)tc_ack(p->c, f->id);
                        mark_dirty(b, ci);
                    } else if (f->result_case != SOTTO__API__SERVER_FRAME__RESULT_NOTICE)
                        p->inflight--;
                    tc_free(f);
                }
            }
            (void)flush_dirty(b);
            for (i = 0; i < o->n; i++) {
                b->p[i].pending.head = b->p[i].pending.tail = 0;
                if (b->p[i].inflight > 0)
                    busy = 1;
            }
        }
    }
    free(lat);
    free(seen);
    free(body);
}

static void sottod_teardown(sottod_bench *b)
{
    for (int i = 0; b->p != NULL && i < b->o->n; i++) {
        if (b->p[i].anon != NULL)
            tc_close(b->p[i].anon);
        tc_close(b->p[i].c);
        tc_device_wipe(&b->p[i].dev);
        free(b->p[i].pending.v);
    }
    free(b->p);
    free(b->dirty);
    free(b->sealed_msg);
    b->sealed_msg = NULL;
    if (b->ep > 0)
        close(b->ep);
    tc_server_stop(&b->srv);
}

/* ---- mosquitto -------------------------------------------------------------------------- */

typedef struct mq_bench {
    const opts *o;
    pid_t pid;
    int port;
    char dir[256];
    struct mosquitto **m;
    int *connected;
    int *subscribed;
    int *inflight;
    fifo *pending;
    int64_t *lat;
    uint8_t *seen;
    int nlat;
    int acks;
    int ep;
    int window;
    const sched *s;
    uint8_t *body;
    int sent;
} mq_bench;

static mq_bench *g_mq;

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void mq_on_connect(struct mosquitto *m, void *ud, int rc)
{
    int i = (int)(intptr_t)ud - 1;
    char topic[32];

    (void)rc;
    g_mq->connected[i] = 1;
    snprintf(topic, sizeof(topic), "u/%d", i);
    mosquitto_subscribe(m, NULL, topic, 1);
}

static void mq_on_subscribe(struct mosquitto *m, void *ud, int mid, int qos_count,
                            const int *granted)
{
    (void)m;
    (void)mid;
    (void)qos_count;
    (void)granted;
    g_mq->subscribed[(int)(intptr_t)ud - 1] = 1;
}

static void mq_try_send(mq_bench *q, int i);

static void mq_on_publish(struct mosquitto *m, void *ud, int mid)
{
    int i = (int)(intptr_t)ud - 1;

    (void)m;
    (void)mid;
    g_mq->inflight[i]--;
    g_mq->acks++;
    mq_try_send(g_mq, i);
}

static void mq_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    (void)ud;
    if (msg->payloadlen >= 16) {
        uint64_t k = get_u64(msg->payload);

        if (k < (uint64_t)g_mq->o->m && !g_mq->seen[k]) {
            g_mq->seen[k] = 1;
            g_mq->lat[g_mq->nlat++] =
                now_ns() - (int64_t)get_u64((const uint8_t *)msg->payload + 8);
        }
    }
}

static void mq_try_send(mq_bench *q, int i)
{
    char topic[32];
    int dest = (i + 1) % q->o->n;

    if (q->s == NULL)
        return;
    snprintf(topic, sizeof(topic), "u/%d", dest);
    while (!fifo_empty(&q->pending[i]) && q->inflight[i] < q->window) {
        int k = fifo_pop(&q->pending[i]);
        int64_t t = q->s->rate > 0 ? sched_time(q->s, k) : now_ns();

        put_u64(q->body, (uint64_t)k);
        put_u64(q->body + 8, (uint64_t)t);
        if (mosquitto_publish(q->m[i], NULL, topic, q->o->body, q->body, 1, false) !=
            MOSQ_ERR_SUCCESS)
            return;
        q->inflight[i]++;
        q->sent++;
    }
}

/* Services every client whose socket is ready (and writes pending output). */
static void mq_poll(mq_bench *q, int timeout_ms)
{
    struct epoll_event evs[256];
    int nev = epoll_wait(q->ep, evs, 256, timeout_ms), e, i;

    for (e = 0; e < nev; e++) {
        i = (int)evs[e].data.u32;
        mosquitto_loop_read(q->m[i], 1);
    }
    for (i = 0; i < q->o->n; i++)
        if (mosquitto_want_write(q->m[i]))
            mosquitto_loop_write(q->m[i], 1);
}

static int mq_setup(mq_bench *q, const char *cert, const char *key)
{
    const opts *o = q->o;
    char conf[300], pfile[300];
    FILE *fp;
    int i, ok;
    int64_t deadline;

    q->port = free_port();
    snprintf(q->dir, sizeof(q->dir), "/tmp/sotto-bench-mq-XXXXXX");
    if (q->port < 0 || mkdtemp(q->dir) == NULL)
        return -1;
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", q->dir);
    snprintf(pfile, sizeof(pfile), "%s/mosquitto.log", q->dir);
    fp = fopen(conf, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp,
            "per_listener_settings false\nallow_anonymous true\npersistence false\n"
            "log_dest file %s\nlog_type error\nmax_inflight_messages 32\n"
            "max_queued_messages 1000000\nlistener %d 127.0.0.1\n"
            "certfile %s\nkeyfile %s\ntls_version tlsv1.3\n",
            pfile, q->port, cert, key);
    /* As root, mosquitto drops to user `mosquitto`, which cannot read the
     * key in sottod's 0700 data dir; this private, loopback-only broker
     * keeps the invoking user instead. */
    if (geteuid() == 0)
        fprintf(fp, "user root\n");
    fclose(fp);
    q->pid = fork();
    if (q->pid == 0) {
        int null = open("/dev/null", O_RDWR);

        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the benchmark */

        dup2(null, 1);
        dup2(null, 2);
        execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    /* Wait until it listens. */
    deadline = now_ns() + 10000000000;
    for (ok = 0; !ok && now_ns() < deadline;) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)q->port)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (!ok)
            usleep(20000);
    }
    if (!ok)
        return -1;
    usleep(100000);

    mosquitto_lib_init();
    q->m = calloc((size_t)o->n, sizeof(*q->m));
    q->connected = calloc((size_t)o->n, sizeof(int));
    q->subscribed = calloc((size_t)o->n, sizeof(int));
    q->inflight = calloc((size_t)o->n, sizeof(int));
    q->pending = calloc((size_t)o->n, sizeof(fifo));
    if (q->m == NULL || q->connected == NULL || q->subscribed == NULL || q->inflight == NULL ||
        q->pending == NULL)
        return -1;
    q->ep = epoll_create1(EPOLL_CLOEXEC);
    {
        long rss0 = proc_rss_kib(q->pid), rss1;
        int64_t t = now_ns();
        int nconn = 0, nsub = 0;

        for (i = 0; i < o->n; i++) {
            char id[32];
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};

            snprintf(id, sizeof(id), "bench%05d", i);
            q->m[i] = mosquitto_new(id, true, (void *)(intptr_t)(i + 1)); /* NULL would mean "m" */
            if (q->m[i] == NULL)
                return -1;
            mosquitto_int_option(q->m[i], MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
            if (mosquitto_tls_set(q->m[i], cert, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS ||
                mosquitto_tls_opts_set(q->m[i], 0, "tlsv1.3", NULL) != MOSQ_ERR_SUCCESS)
                return -1;
            mosquitto_tls_insecure_set(q->m[i], true);
            mosquitto_connect_callback_set(q->m[i], mq_on_connect);
            mosquitto_subscribe_callback_set(q->m[i], mq_on_subscribe);
            mosquitto_publish_callback_set(q->m[i], mq_on_publish);
            mosquitto_message_callback_set(q->m[i], mq_on_message);
            if (mosquitto_connect(q->m[i], "127.0.0.1", q->port, 600) != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "mosquitto: client %d cannot connect\n", i);
                return -1;
            }
            epoll_ctl(q->ep, EPOLL_CTL_ADD, mosquitto_socket(q->m[i]), &ev);
        }
        deadline = now_ns() + (int64_t)o->phase_timeout_s * 1000000000;
        while (now_ns() < deadline) {
            mq_poll(q, 10);
            for (i = 0, nconn = 0, nsub = 0; i < o->n; i++) {
                nconn += q->connected[i];
                nsub += q->subscribed[i];
            }
            if (nsub == o->n)
                break;
        }
        if (nsub != o->n) {
            fprintf(stderr, "mosquitto: only %d/%d connected, %d subscribed\n", nconn, o->n, nsub);
            return -1;
        }
        fprintf(stderr, "mosquitto: %d clients connected and subscribed in %.1f s\n", o->n,
                (double)(now_ns() - t) / 1e9);
        for (int k = 0; k < 50; k++)
            mq_poll(q, 10);
        rss1 = proc_rss_kib(q->pid);
        return (int)(rss1 - rss0);
    }
}

static void mq_run(mq_bench *q, int rate, result *r)
{
    const opts *o = q->o;
    sched s = {.m = o->m, .n = o->n, .rate = rate};
    double cpu0, cpu1, ccpu0;
    int next = 0, i;
    int64_t deadline, last_misc = 0;

    memset(r, 0, sizeof(*r));
    r->system = "mosquitto QoS 1 (TLS 1.3)";
    if (rate > 0)
        snprintf(r->mode, sizeof(r->mode), "%d/s", rate);
    else
        snprintf(r->mode, sizeof(r->mode), "max");
    q->lat = calloc((size_t)o->m, sizeof(int64_t));
    q->seen = calloc((size_t)o->m, 1);
    q->body = calloc(1, (size_t)o->body < 16 ? 16 : (size_t)o->body);
    if (q->lat == NULL || q->seen == NULL || q->body == NULL)
        abort();
    q->nlat = 0;
    q->sent = 0;
    q->window = rate > 0 ? WINDOW_RATE : WINDOW_FAST;
    q->s = &s;
    cpu0 = proc_cpu_us(q->pid);
    ccpu0 = self_cpu_us();
    s.t0 = now_ns();
    deadline = s.t0 + (int64_t)o->phase_timeout_s * 1000000000;
    if (rate <= 0) {
        for (next = 0; next < o->m; next++)
            fifo_push(&q->pending[next % o->n], next);
        for (i = 0; i < o->n; i++)
            mq_try_send(q, i);
    }
    while (q->nlat < o->m && now_ns() < deadline) {
        int64_t now = now_ns();
        int timeout_ms = 5;

        if (rate > 0) {
            while (next < o->m && sched_time(&s, next) <= now) {
                fifo_push(&q->pending[next % o->n], next);
                mq_try_send(q, next % o->n);
                next++;
            }
            if (next < o->m) {
                int64_t wait = sched_time(&s, next) - now_ns();

                timeout_ms =
                    wait <= 0 ? 0 : (int)((wait + 999999) / 1000000); /* no busy wait: round up */
            }
        }
        mq_poll(q, timeout_ms);
        if (now - last_misc > 500000000) {
            for (i = 0; i < o->n; i++)
                mosquitto_loop_misc(q->m[i]);
            last_misc = now;
        }
    }
    cpu1 = proc_cpu_us(q->pid);
    r->sent = q->sent;
    r->received = q->nlat;
    r->complete = q->nlat == o->m;
    r->seconds = (double)(now_ns() - s.t0) / 1e9;
    r->env_per_s = (double)q->nlat / r->seconds;
    r->cpu_us_per_env = q->nlat > 0 ? (cpu1 - cpu0) / q->nlat : 0;
    r->client_cpu_us_per_env = q->nlat > 0 ? (self_cpu_us() - ccpu0) / q->nlat : 0;
    percentiles(q->lat, q->nlat, r);
    /* settle outstanding acks */
    for (i = 0; i < 50; i++)
        mq_poll(q, 10);
    for (i = 0; i < o->n; i++)
        q->pending[i].head = q->pending[i].tail = 0;
    q->s = NULL;
    free(q->lat);
    free(q->seen);
    free(q->body);
}

static void mq_teardown(mq_bench *q)
{
    char cmd[300];

    for (int i = 0; q->m != NULL && i < q->o->n; i++) {
        if (q->m[i] != NULL) {
            mosquitto_disconnect(q->m[i]);
            mosquitto_destroy(q->m[i]);
        }
        if (q->pending != NULL)
            free(q->pending[i].v);
    }
    mosquitto_lib_cleanup();
    if (q->pid > 0) {
        kill(q->pid, SIGTERM);
        waitpid(q->pid, NULL, 0);
    }
    if (q->ep > 0)
        close(q->ep);
    free(q->m);
    free(q->connected);
    free(q->subscribed);
    free(q->inflight);
    free(q->pending);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", q->dir);
    if (q->dir[0] != '\0' && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", q->dir);
}

/* ---- main -------------------------------------------------------------------------------- */

static void print_row(const result *r, double rss)
{
    printf("%-26s %-8s %9.0f %8.2f %8.2f %9.2f %10.1f %11.1f %10.1f%s\n", r->system, r->mode,
           r->env_per_s, r->p50_ms, r->p99_ms, r->p999_ms, r->cpu_us_per_env, rss,
           r->client_cpu_us_per_env, r->complete ? "" : "  (INCOMPLETE: time limit)");
    if (!r->complete)
        fprintf(stderr, "  %s %s: %d/%d received in the time limit\n", r->system, r->mode,
                r->received, r->sent);
}

static int num(const char *v)
{
    char *end = NULL;
    long x = strtol(v, &end, 10);

    if (end == v || *end != '\0' || x < 0 || x > 100000000)
        return -1;
    return (int)x;
}

static void usage(void)
{
    fprintf(stderr, "usage: sotto-bench-server [-n CONNS] [-m ENVELOPES] [-r RATE] [-b BODY]\n"
                    "                          [-d full|process] [-t PHASE_SECONDS] "
                    "[--no-mosquitto] [--no-sealed]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = {.n = 1000,
              .m = 50000,
              .rate = 5000,
              .body = 160,
              .durability = "full",
              .phase_timeout_s = 30,
              .mosquitto = true,
              .sealed = true};
    struct rlimit rl;
    sottod_bench sb;
    mq_bench mq;
    result r_fast, r_rate, r_long, s_fast, s_rate, q_fast, q_rate;
    bool have_sealed = false;
    int rss_sottod, rss_mq = 0;
    bool have_mq = false;
    char cert[300], key[300];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--no-mosquitto") == 0) {
            o.mosquitto = false;
            continue;
        }
        if (strcmp(a, "--no-sealed") == 0) {
            o.sealed = false;
            continue;
        }
        if (v == NULL)
            usage();
        if (strcmp(a, "-n") == 0)
            o.n = num(v);
        else if (strcmp(a, "-m") == 0)
            o.m = num(v);
        else if (strcmp(a, "-r") == 0)
            o.rate = num(v);
        else if (strcmp(a, "-b") == 0)
            o.body = num(v);
        else if (strcmp(a, "-d") == 0)
            o.durability = v;
        else if (strcmp(a, "-t") == 0)
            o.phase_timeout_s = num(v);
        else
            usage();
        i++;
    }
    if (o.n < 2 || o.m < 1 || o.rate < 0 || o.body < 16 || o.body > 131072 || o.phase_timeout_s < 1)
        usage();
    signal(SIGPIPE, SIG_IGN);
    /* sottod's side needs N sockets (2N with the sealed ones), mosquitto's N, plus some. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(3 * o.n + 256)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    memset(&sb, 0, sizeof(sb));
    sb.o = &o;
    rss_sottod = sottod_setup(&sb);
    if (rss_sottod < 0) {
        sottod_teardown(&sb);
        return 1;
    }
    sb.ident_len = (size_t)o.body;
    /* sealed connections first: every row runs with the same connections open */
    if (sb.sealed_ok && sealed_open(&sb) == 0)
        have_sealed = true;
    sottod_run(&sb, 0, &r_fast);
    sottod_run(&sb, o.rate, &r_rate);
    if (sb.sealed_ok) {
        /* identified with bodies as long as the sealed ones: separates the
         * cost of the longer body from that of the sealed path */
        sb.ident_len = sb.sealed_len;
        snprintf(sb.ident_label, sizeof(sb.ident_label), "sottod identified %zu B", sb.sealed_len);
        sottod_run(&sb, 0, &r_long);
    }
    if (have_sealed) {
        sb.sealed_mode = true;
        sottod_run(&sb, 0, &s_fast);
        sottod_run(&sb, o.rate, &s_rate);
    }
    snprintf(cert, sizeof(cert), "%s/tls/cert.pem", sb.srv.dir);
    snprintf(key, sizeof(key), "%s/tls/key.pem", sb.srv.dir);

    memset(&mq, 0, sizeof(mq));
    mq.o = &o;
    g_mq = &mq;
    if (o.mosquitto) {
        struct stat stt;

        if (stat(cert, &stt) != 0 || stat(key, &stt) != 0) {
            fprintf(stderr, "mosquitto: no certificate at %s (row skipped)\n", cert);
        } else {
            rss_mq = mq_setup(&mq, cert, key);
            if (rss_mq >= 0) {
                mq_run(&mq, 0, &q_fast);
                mq_run(&mq, o.rate, &q_rate);
                have_mq = true;
            } else {
                fprintf(stderr, "mosquitto: setup failed (row skipped)\n");
            }
            mq_teardown(&mq);
        }
    }
    sottod_teardown(&sb);
    tc_server_cleanup(&sb.srv);

    printf("\nsotto-bench-server: %d connections, %d envelopes per run (%d B body), "
           "sottod durability=%s, %ld CPUs\n",
           o.n, o.m, o.body, o.durability, sysconf(_SC_NPROCESSORS_ONLN));
    {
        double la[3] = {0, 0, 0};

        if (getloadavg(la, 3) == 3)
            printf("load average now %.2f %.2f %.2f (other processes share the CPUs: "
                   "numbers are noisy when it is above ~1)\n",
                   la[0], la[1], la[2]);
    }
    printf("latency: scheduled send -> push received by the recipient; env/s: envelopes "
           "delivered per second\n");
    printf("%-26s %-8s %9s %8s %8s %9s %10s %11s %10s\n", "system", "mode", "env/s", "p50 ms",
           "p99 ms", "p99.9 ms", "srv us/env", "KiB/idle cx", "cli us/env");
    print_row(&r_fast, (double)rss_sottod / o.n);
    print_row(&r_rate, (double)rss_sottod / o.n);
    if (sb.sealed_ok)
        print_row(&r_long, (double)rss_sottod / o.n);
    if (have_sealed) {
        print_row(&s_fast, (double)rss_sottod / o.n);
        print_row(&s_rate, (double)rss_sottod / o.n);
    }
    if (have_mq) {
        print_row(&q_fast, (double)rss_mq / o.n);
        print_row(&q_rate, (double)rss_mq / o.n);
    }
    printf("targets (2 cores): >= 20000 env/s durable; p99 <= 20 ms at 5000/s; "
           "<= 32 KiB per idle TLS connection\n");
    printf("mosquitto keeps QoS 1 messages in memory (no fsync): not durable, a reference only\n");
    if (have_sealed) {
        printf("sealed bodies: %zu B (a sealed sender v1 message of a %d B inner message), "
               "sent from connections that never log in, with the recipient's delivery token; "
               "every row ran with those %d connections open too (%d in all)\n",
               sb.sealed_len, o.body, o.n, 2 * o.n);
        printf("bench server_sealed max_env_per_s=%.0f identified_max_env_per_s=%.0f ratio=%.2f "
               "p99_ms_at_%d=%.2f identified_p99_ms=%.2f ratio=%.2f (goal: within 10%%)\n",
               s_fast.env_per_s, r_fast.env_per_s,
               r_fast.env_per_s > 0 ? s_fast.env_per_s / r_fast.env_per_s : 0, o.rate,
               s_rate.p99_ms, r_rate.p99_ms, r_rate.p99_ms > 0 ? s_rate.p99_ms / r_rate.p99_ms : 0);
        printf("bench server_sealed_cpu srv_us_per_env=%.1f identified=%.1f identified_%zuB=%.1f "
               "(server CPU per envelope, max mode)\n",
               s_fast.cpu_us_per_env, r_fast.cpu_us_per_env, sb.sealed_len, r_long.cpu_us_per_env);
    } else if (o.sealed) {
        printf("sealed rows: not measured (see the messages above)\n");
    }
    return r_fast.complete && r_rate.complete &&
                   (!have_sealed || (r_long.complete && s_fast.complete && s_rate.complete))
               ? 0
               : 1;
}
