/*
 * tests/server/tclient.c -- see tclient.h.
 */
#define _GNU_SOURCE 1
#include "tclient.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "sotto/account.h"

#define TC_MAX_MESSAGE (64u << 20)

/* ---- time -------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining(int64_t deadline)
{
    int64_t r;

    if (deadline < 0)
        return -1;
    r = deadline - now_ms();
    return r < 0 ? 0 : (int)r;
}

/* ---- sottod process ------------------------------------------------------------ */

const char *tc_sottod_path(void)
{
    const char *env = getenv("SOTTOD");

    if (env != NULL && env[0] != '\0')
        return env;
#ifdef SOTTOD_PATH
    return SOTTOD_PATH;
#else
    return "sottod";
#endif
}

int tc_server_init(tc_server *s)
{
    memset(s, 0, sizeof(*s));
    s->pid = -1;
    s->out_fd = -1;
    snprintf(s->dir, sizeof(s->dir), "/tmp/sotto-srvtest-XXXXXX");
    return mkdtemp(s->dir) != NULL ? 0 : -1;
}

static int parse_hex32(const char *hex, uint8_t out[32])
{
    size_t bin_len = 0;

    if (strlen(hex) != 64)
        return -1;
    if (sodium_hex2bin(out, 32, hex, 64, NULL, &bin_len, NULL) != 0 || bin_len != 32)
        return -1;
    return 0;
}

static int spawn(tc_server *s)
{
    int pfd[2];
    char logpath[300];
    char *argv[64];
    int argc = 0, i;
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/sottod.log", s->dir);
    argv[argc++] = (char *)tc_sottod_path();
    argv[argc++] = (char *)"--data-dir";
    argv[argc++] = s->dir;
    argv[argc++] = (char *)"--listen";
    argv[argc++] = (char *)"127.0.0.1:0";
    for (i = 0; i < s->nsets && argc < 60; i++) {
        argv[argc++] = (char *)"--set";
        argv[argc++] = s->sets[i];
    }
    argv[argc] = NULL;
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        int lfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);

        /* Never outlive the test or benchmark that started us. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);

        dup2(pfd[1], 1);
        if (lfd >= 0)
            dup2(lfd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    s->pid = pid;
    s->out_fd = pfd[0];
    return 0;
}

/* Reads sottod's two start lines (10 s at most). */
static int read_banner(tc_server *s)
{
    char buf[1024];
    size_t len = 0;
    bool have_port = false, have_fp = false;
    int64_t deadline = now_ms() + 10000;

    while (!(have_port && have_fp)) {
        struct pollfd p = {.fd = s->out_fd, .events = POLLIN};
        char *nl;
        ssize_t r;

        if (poll(&p, 1, remaining(deadline)) <= 0)
            return -1;
        r = read(s->out_fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        while ((nl = strchr(buf, '\n')) != NULL) {
            char *colon;

            *nl = '\0';
            if (strncmp(buf, "sottod: listening on https://", 29) == 0) {
                colon = strrchr(buf + 29, ':');
                if (colon == NULL || (size_t)(colon - (buf + 29)) >= sizeof(s->host))
                    return -1;
                memcpy(s->host, buf + 29, (size_t)(colon - (buf + 29)));
                s->host[colon - (buf + 29)] = '\0';
                {
                    char *end = NULL;
                    long port = strtol(colon + 1, &end, 10);

                    s->port = (end != colon + 1 && *end == '\0' && port > 0 && port < 65536)
                                  ? (int)port
                                  : 0;
                }
                have_port = s->port > 0;
            } else if (strncmp(buf, "sottod: certificate sha256 ", 27) == 0) {
                have_fp = parse_hex32(buf + 27, s->fp) == 0;
            }
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len + 1);
        }
        if (len >= sizeof(buf) - 1)
            return -1;
    }
    return 0;
}

int tc_server_start(tc_server *s, const char *const *sets)
{
    /* Every test client connects from 127.0.0.1: the per-source
     * registration limits are lifted unless the test sets them itself
     * (given later, its settings win); the server-wide bucket stays.
     * tests/server/test_register_limits.c tests the per-source limits. */
    static const char *const lifted[] = {"rate_register_source_burst=1000000",
                                         "rate_register_prefix_burst=1000000"};
    size_t i = 0;
    s->nsets = 0;
    for (; s->nsets < 2; s->nsets++)
        snprintf(s->sets[s->nsets], sizeof(s->sets[0]), "%s", lifted[s->nsets]);
    while (sets != NULL && sets[i] != NULL &&
           s->nsets < (int)(sizeof(s->sets) / sizeof(s->sets[0]))) {
        snprintf(s->sets[s->nsets], sizeof(s->sets[0]), "%s", sets[i++]);
        s->nsets++;
    }
    return tc_server_restart(s);
}

int tc_server_restart(tc_server *s)
{
    if (spawn(s) != 0)
        return -1;
    if (read_banner(s) != 0) {
        tc_server_kill9(s);
        return -1;
    }
    return 0;
}

static int reap(tc_server *s, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    int status = -1;

    while (s->pid > 0) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);

        if (r == s->pid) {
            s->pid = -1;
            break;
        }
        if (r < 0) {
            s->pid = -1;
            break;
        }
        if (now_ms() > deadline)
            return -2;
        usleep(2000);
    }
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
    return status;
}

int tc_server_stop(tc_server *s)
{
    int st;

    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    st = reap(s, 10000);
    if (st == -2) {
        kill(s->pid, SIGKILL);
        st = reap(s, 10000);
    }
    return st;
}

void tc_server_kill9(tc_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    (void)reap(s, 10000);
}

bool tc_server_alive(tc_server *s)
{
    int status;

    if (s->pid <= 0)
        return false;
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
        s->pid = -1;
        return false;
    }
    return true;
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[1024];

    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (e->d_type == DT_DIR)
            rm_rf(sub);
        else
            unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

void tc_server_cleanup(tc_server *s)
{
    if (s->pid > 0)
        tc_server_kill9(s);
    if (s->dir[0] != '\0' && getenv("TC_KEEP") == NULL)
        rm_rf(s->dir);
}

char *tc_admin(const tc_server *s, const char *const *args, int *status)
{
    int pfd[2];
    char *argv[32];
    int argc = 0;
    pid_t pid;
    char *out = NULL;
    size_t len = 0, cap = 0;
    int st = -1;

    if (pipe2(pfd, O_CLOEXEC) != 0)
        return NULL;
    argv[argc++] = (char *)tc_sottod_path();
    argv[argc++] = (char *)"admin";
    argv[argc++] = (char *)"--data-dir";
    argv[argc++] = (char *)s->dir;
    while (args != NULL && *args != NULL && argc < 30)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        ssize_t r;

        if (len + 4096 + 1 > cap) {
            char *n = realloc(out, cap + 65536);

            if (n == NULL)
                break;
            out = n;
            cap += 65536;
        }
        r = read(pfd[0], out + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(pfd[0]);
    if (pid > 0)
        waitpid(pid, &st, 0);
    if (status != NULL)
        *status = st;
    if (out != NULL)
        out[len] = '\0';
    return out;
}

/* ---- TLS connection ------------------------------------------------------------- */

/* Waits until the socket is readable (want_write false) or writable. */
static int io_wait(tc_conn *c, bool want_write, int64_t deadline)
{
    struct pollfd p = {.fd = c->fd, .events = want_write ? POLLOUT : POLLIN};
    int r = poll(&p, 1, remaining(deadline));

    if (r < 0)
        return errno == EINTR ? 0 : TC_ERR;
    return r == 0 ? TC_TIMEOUT : 0;
}

static int write_all(tc_conn *c, const uint8_t *p, size_t len)
{
    int64_t deadline = now_ms() + 10000;

    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int r = SSL_write(c->ssl, p, chunk);

        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_WRITE:
            if (io_wait(c, true, deadline) != 0)
                return TC_TIMEOUT;
            break;
        case SSL_ERROR_WANT_READ:
            if (io_wait(c, false, deadline) != 0)
                return TC_TIMEOUT;
            break;
        default:
            ERR_clear_error();
            c->closed = true;
            return TC_CLOSED;
        }
    }
    return 0;
}

/* Reads what TLS has into rbuf. Returns >0 bytes, TC_TIMEOUT, TC_CLOSED. */
static int read_some(tc_conn *c, int64_t deadline)
{
    for (;;) {
        int r;

        if (c->rcap - c->rlen < 16384) {
            size_t ncap = c->rcap ? c->rcap * 2 : 65536;
            uint8_t *n = realloc(c->rbuf, ncap);

            if (n == NULL)
                return TC_ERR;
            c->rbuf = n;
            c->rcap = ncap;
        }
        r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
        if (r > 0) {
            c->rlen += (size_t)r;
            return r;
        }
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            if (deadline >= 0 && remaining(deadline) == 0) {
                /* One last non-blocking look. */
                struct pollfd p = {.fd = c->fd, .events = POLLIN};

                if (poll(&p, 1, 0) <= 0)
                    return TC_TIMEOUT;
                break;
            }
            r = io_wait(c, false, deadline);
            if (r != 0)
                return r;
            break;
        case SSL_ERROR_WANT_WRITE:
            r = io_wait(c, true, deadline);
            if (r != 0)
                return r;
            break;
        default:
            ERR_clear_error();
            c->closed = true;
            return TC_CLOSED;
        }
    }
}

static int cert_pin_ok(SSL *ssl, const uint8_t fp[32])
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    unsigned char *der = NULL;
    uint8_t h[32];
    int len, ok = 0;

    if (cert == NULL)
        return 0;
    len = i2d_X509(cert, &der);
    if (len > 0) {
        SHA256(der, (size_t)len, h);
        ok = sodium_memcmp(h, fp, 32) == 0;
    }
    OPENSSL_free(der);
    X509_free(cert);
    return ok;
}

static char g_origin_src[64], g_origin_xff[256];

int tc_set_origin(const char *src, const char *xff)
{
    if ((src != NULL && strlen(src) >= sizeof(g_origin_src)) ||
        (xff != NULL && strlen(xff) >= sizeof(g_origin_xff)))
        return -1;
    snprintf(g_origin_src, sizeof(g_origin_src), "%s", src != NULL ? src : "");
    snprintf(g_origin_xff, sizeof(g_origin_xff), "%s", xff != NULL ? xff : "");
    return 0;
}

static int ws_handshake(tc_conn *c, const char *host, int port)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t key_raw[16], sha[20];
    char key[32], accept[40], req[1024], cat[128], xff[300] = "";
    int64_t deadline = now_ms() + 10000;
    char *end = NULL, *hdr;
    size_t hlen;
    int n;

    randombytes_buf(key_raw, sizeof(key_raw));
    sodium_bin2base64(key, sizeof(key), key_raw, sizeof(key_raw), sodium_base64_VARIANT_ORIGINAL);
    if (g_origin_xff[0] != '\0')
        snprintf(xff, sizeof(xff), "X-Forwarded-For: %s\r\n", g_origin_xff);
    n = snprintf(req, sizeof(req),
                 "GET /v1/websocket HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                 "%s\r\n",
                 host, port, key, xff);
    if (write_all(c, (const uint8_t *)req, (size_t)n) != 0)
        return -1;
    while (end == NULL) {
        if (c->rlen > 0 && c->rlen < c->rcap) {
            c->rbuf[c->rlen] = '\0';
            end = strstr((char *)c->rbuf, "\r\n\r\n");
            if (end != NULL)
                break;
        }
        if (c->rlen > 8192 || read_some(c, deadline) <= 0)
            return -1;
    }
    hlen = (size_t)(end - (char *)c->rbuf) + 4;
    hdr = strndup((char *)c->rbuf, hlen);
    if (hdr == NULL)
        return -1;
    memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
    c->rlen -= hlen;
    snprintf(cat, sizeof(cat), "%s%s", key, guid);
    SHA1((const unsigned char *)cat, strlen(cat), sha);
    sodium_bin2base64(accept, sizeof(accept), sha, sizeof(sha), sodium_base64_VARIANT_ORIGINAL);
    n = strncmp(hdr, "HTTP/1.1 101", 12) == 0 && strcasestr(hdr, accept) != NULL ? 0 : -1;
    free(hdr);
    return n;
}

tc_conn *tc_connect_to(const char *host, int port, const uint8_t fp[32])
{
    tc_conn *c = calloc(1, sizeof(*c));
    struct sockaddr_in sa;
    int64_t deadline = now_ms() + 10000;
    int one = 1;

    signal(SIGPIPE, SIG_IGN);
    if (c == NULL)
        return NULL;
    c->fd = -1;
    c->close_code = -1;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION))
        goto fail;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL); /* pinned below instead */
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto fail;
    if (g_origin_src[0] != '\0') {
        struct sockaddr_in src;
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        if (inet_pton(AF_INET, g_origin_src, &src.sin_addr) != 1 ||
            bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0)
            goto fail;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        goto fail;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
        goto fail;
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd))
        goto fail;
    for (;;) {
        int r = SSL_connect(c->ssl);

        if (r == 1)
            break;
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            if (io_wait(c, false, deadline) != 0)
                goto fail;
            break;
        case SSL_ERROR_WANT_WRITE:
            if (io_wait(c, true, deadline) != 0)
                goto fail;
            break;
        default:
            goto fail;
        }
    }
    if (SSL_version(c->ssl) != TLS1_3_VERSION || !cert_pin_ok(c->ssl, fp))
        goto fail;
    if (SSL_export_keying_material(c->ssl, c->exporter, 32, "EXPORTER-Channel-Binding", 24, NULL, 0,
                                   0) != 1)
        goto fail;
    if (ws_handshake(c, host, port) != 0)
        goto fail;
    return c;
fail:
    ERR_clear_error();
    tc_close(c);
    return NULL;
}

tc_conn *tc_connect(const tc_server *s)
{
    return tc_connect_to(s->host, s->port, s->fp);
}

int tc_fd(const tc_conn *c)
{
    return c->fd;
}

void tc_close(tc_conn *c)
{
    tc_msg *m;

    if (c == NULL)
        return;
    if (c->ssl != NULL) {
        (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    SSL_CTX_free(c->ctx);
    while ((m = c->pushes) != NULL) {
        c->pushes = m->next;
        tc_free(m->frame);
        free(m);
    }
    free(c->rbuf);
    free(c->frag);
    free(c->wbuf);
    free(c);
}

void tc_cork(tc_conn *c, bool on)
{
    c->corked = on;
}

int tc_flush(tc_conn *c)
{
    int r = 0;

    if (c->wlen > 0) {
        r = write_all(c, c->wbuf, c->wlen);
        c->wlen = 0;
    }
    return r;
}

/* ---- WebSocket framing ------------------------------------------------------------ */

int tc_ws_send(tc_conn *c, int opcode, bool fin, const uint8_t *p, size_t len)
{
    uint8_t hdr[14], mask[4];
    size_t hl = 0, i;
    uint8_t *buf;
    int r;

    hdr[hl++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        hdr[hl++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xFFFF) {
        hdr[hl++] = 0x80 | 126;
        hdr[hl++] = (uint8_t)(len >> 8);
        hdr[hl++] = (uint8_t)len;
    } else {
        hdr[hl++] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            hdr[hl++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    randombytes_buf(mask, sizeof(mask));
    memcpy(hdr + hl, mask, 4);
    hl += 4;
    if (c->corked) {
        if (c->wlen + hl + len > c->wcap) {
            size_t ncap = (c->wlen + hl + len) * 2;
            uint8_t *n = realloc(c->wbuf, ncap);

            if (n == NULL)
                return TC_ERR;
            c->wbuf = n;
            c->wcap = ncap;
        }
        buf = c->wbuf + c->wlen;
    } else {
        buf = malloc(hl + len);
        if (buf == NULL)
            return TC_ERR;
    }
    memcpy(buf, hdr, hl);
    for (i = 0; i < len; i++)
        buf[hl + i] = p[i] ^ mask[i & 3];
    if (c->corked) {
        c->wlen += hl + len;
        return 0;
    }
    r = write_all(c, buf, hl + len);
    free(buf);
    return r;
}

int tc_send_raw(tc_conn *c, const uint8_t *p, size_t len)
{
    return write_all(c, p, len);
}

/* Parses one frame at the head of rbuf. Returns 1 and fills the outputs
 * (payload unmasked in place), 0 if incomplete, TC_ERR if malformed. */
static int parse_frame(tc_conn *c, int *op, bool *fin, uint8_t **payload, size_t *plen,
                       size_t *consumed)
{
    const uint8_t *b = c->rbuf;
    size_t need = 2, len, i;
    bool masked;
    uint8_t mask[4] = {0};

    if (c->rlen < 2)
        return 0;
    *fin = (b[0] & 0x80) != 0;
    *op = b[0] & 0x0F;
    masked = (b[1] & 0x80) != 0;
    len = b[1] & 0x7F;
    if (len == 126) {
        need += 2;
        if (c->rlen < need)
            return 0;
        len = ((size_t)b[2] << 8) | b[3];
    } else if (len == 127) {
        uint64_t l = 0;

        need += 8;
        if (c->rlen < need)
            return 0;
        for (i = 0; i < 8; i++)
            l = (l << 8) | b[2 + i];
        if (l > TC_MAX_MESSAGE)
            return TC_ERR;
        len = (size_t)l;
    }
    if (masked) {
        if (c->rlen < need + 4)
            return 0;
        memcpy(mask, b + need, 4);
        need += 4;
    }
    if (c->rlen < need + len)
        return 0;
    *payload = c->rbuf + need;
    *plen = len;
    if (masked)
        for (i = 0; i < len; i++)
            (*payload)[i] ^= mask[i & 3];
    *consumed = need + len;
    return 1;
}

static void consume(tc_conn *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

int tc_ws_recv(tc_conn *c, int timeout_ms, uint8_t **out, size_t *outlen)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

    *out = NULL;
    *outlen = 0;
    for (;;) {
        uint8_t *payload;
        size_t plen, used;
        bool fin;
        int op, r = c->rlen > 0 ? parse_frame(c, &op, &fin, &payload, &plen, &used) : 0;

        if (r < 0)
            return TC_ERR;
        if (r == 0) {
            if (c->closed)
                return TC_CLOSED;
            r = read_some(c, deadline);
            if (r < 0)
                return r;
            continue;
        }
        switch (op) {
        case TC_WS_PING: {
            uint8_t *copy = malloc(plen + 1);

            if (copy == NULL)
                return TC_ERR;
            memcpy(copy, payload, plen);
            consume(c, used);
            r = tc_ws_send(c, TC_WS_PONG, true, copy, plen);
            free(copy);
            if (r != 0)
                return r;
            continue;
        }
        case TC_WS_PONG:
            consume(c, used);
            continue;
        case TC_WS_CLOSE:
            c->close_code = plen >= 2 ? (payload[0] << 8) | payload[1] : -1;
            consume(c, used);
            c->closed = true;
            return TC_CLOSED;
        case TC_WS_CONT:
        case TC_WS_TEXT:
        case TC_WS_BINARY: {
            uint8_t *n;

            if (op != TC_WS_CONT) {
                free(c->frag);
                c->frag = NULL;
                c->flen = 0;
                c->fop = op;
            }
            if (c->flen + plen > TC_MAX_MESSAGE)
                return TC_ERR;
            n = realloc(c->frag, c->flen + plen + 1);
            if (n == NULL)
                return TC_ERR;
            c->frag = n;
            memcpy(c->frag + c->flen, payload, plen);
            c->flen += plen;
            consume(c, used);
            if (!fin)
                continue;
            *out = c->frag;
            *outlen = c->flen;
            c->frag = NULL;
            c->flen = 0;
            return c->fop;
        }
        default:
            return TC_ERR;
        }
    }
}

/* ---- API frames ------------------------------------------------------------------ */

int tc_send(tc_conn *c, const tc_cframe *f)
{
    size_t len = sotto__api__client_frame__get_packed_size(f);
    uint8_t *buf = malloc(len ? len : 1);
    int r;

    if (buf == NULL)
        return TC_ERR;
    sotto__api__client_frame__pack(f, buf);
    if (getenv("TC_DUMP_FRAMES") != NULL) {
        /* Capture real requests (the fuzz seed corpus was made this way). */
        static unsigned long n;
        char path[512];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/op%d-%lu", getenv("TC_DUMP_FRAMES"), (int)f->op_case, n++);
        fp = fopen(path, "wb");
        if (fp != NULL) {
            if (fwrite(buf, 1, len, fp) != len)
                r = TC_ERR;
            fclose(fp);
        }
    }
    r = tc_ws_send(c, TC_WS_BINARY, true, buf, len);
    free(buf);
    return r;
}

tc_sframe *tc_recv(tc_conn *c, int timeout_ms, int *rc)
{
    uint8_t *msg = NULL;
    size_t len = 0;
    tc_sframe *f = NULL;
    int r = tc_ws_recv(c, timeout_ms, &msg, &len);

    if (r == TC_WS_BINARY) {
        f = sotto__api__server_frame__unpack(NULL, len, msg);
        r = f != NULL ? 0 : TC_ERR;
    } else if (r >= 0) {
        r = TC_ERR; /* text from the server: not in the API */
    }
    free(msg);
    if (rc != NULL)
        *rc = r;
    return f;
}

void tc_free(tc_sframe *f)
{
    if (f != NULL)
        sotto__api__server_frame__free_unpacked(f, NULL);
}

static bool is_push(const tc_sframe *f)
{
    return f->result_case == SOTTO__API__SERVER_FRAME__RESULT_PUSH ||
           f->result_case == SOTTO__API__SERVER_FRAME__RESULT_NOTICE;
}

static void queue_push(tc_conn *c, tc_sframe *f)
{
    tc_msg *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        tc_free(f);
        return;
    }
    m->frame = f;
    if (c->pushes_tail != NULL)
        c->pushes_tail->next = m;
    else
        c->pushes = m;
    c->pushes_tail = m;
}

tc_sframe *tc_call(tc_conn *c, tc_cframe *f, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    f->id = ++c->next_id;
    if (tc_send(c, f) != 0)
        return NULL;
    for (;;) {
        tc_sframe *r = tc_recv(c, remaining(deadline), NULL);

        if (r == NULL)
            return NULL;
        if (is_push(r)) {
            queue_push(c, r);
            continue;
        }
        if (r->id == f->id)
            return r;
        tc_free(r); /* a late answer to something else */
    }
}

tc_sframe *tc_next_push(tc_conn *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    tc_msg *m = c->pushes;

    if (m != NULL) {
        tc_sframe *f = m->frame;

        c->pushes = m->next;
        if (c->pushes == NULL)
            c->pushes_tail = NULL;
        free(m);
        return f;
    }
    for (;;) {
        tc_sframe *r = tc_recv(c, remaining(deadline), NULL);

        if (r == NULL || is_push(r))
            return r;
        tc_free(r);
    }
}

int tc_ack(tc_conn *c, uint64_t push_id)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__Ack ack = SOTTO__API__ACK__INIT;

    f.id = push_id;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_ACK;
    f.ack = &ack;
    return tc_send(c, &f);
}

/* ---- devices and auth ----------------------------------------------------------------- */

void tc_device_new(tc_device *d, const char *username)
{
    memset(d, 0, sizeof(*d));
    if (sodium_init() < 0 || sotto_init() != SOTTO_OK)
        abort();
    snprintf(d->username, sizeof(d->username), "%s", username);
    d->device_id = 1;
    crypto_sign_keypair(d->auth_pk, d->auth_sk);
    if (sotto_identity_key_pair_generate(&d->identity) != SOTTO_OK ||
        sotto_registration_id_generate(&d->registration_id) != SOTTO_OK ||
        sotto_signed_prekey_generate(&d->spk, &d->identity, 1, 1767225600000ull) != SOTTO_OK ||
        sotto_identity_key_pair_generate(&d->account) != SOTTO_OK)
        abort();
    d->next_prekey_id = 0;
}

void tc_entry_of(const tc_device *d, uint32_t device_id, sotto_device_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->device_id = device_id;
    e->registration_id = d->registration_id;
    e->identity_key = d->identity.pub;
    memcpy(e->auth_key, d->auth_pk, sizeof(e->auth_key));
}

int tc_list_sign(const sotto_key_pair *account, const char *username, uint64_t version,
                 const sotto_device_entry *e, size_t n, uint8_t *out, size_t *len)
{
    sotto_device_list *l = calloc(1, sizeof(*l));
    int rc = TC_ERR;

    if (l == NULL || n > SOTTO_DEVICE_LIST_MAX)
        goto out;
    snprintf(l->username, sizeof(l->username), "%s", username);
    l->version = version;
    l->timestamp_ms = 1767225600000ull + version;
    l->n_devices = n;
    memcpy(l->devices, e, n * sizeof(*e));
    for (size_t i = 1; i < n; i++) /* insertion sort by id */
        for (size_t j = i; j > 0 && l->devices[j - 1].device_id > l->devices[j].device_id; j--) {
            sotto_device_entry t = l->devices[j];
            l->devices[j] = l->devices[j - 1];
            l->devices[j - 1] = t;
        }
    if (sotto_device_list_sign(l, account, out, SOTTO_DEVICE_LIST_MAX_BYTES, len) == SOTTO_OK)
        rc = 0;
out:
    free(l);
    return rc;
}

void tc_device_wipe(tc_device *d)
{
    sodium_memzero(d, sizeof(*d));
}

void tc_auth_sign(const tc_device *d, uint8_t purpose, const uint8_t exporter[32],
                  const uint8_t nonce[32], uint32_t device_id, uint8_t sig[64])
{
    /* The bytes come from libsotto (sotto/account.h). A username the
     * library refuses (the tests send bad ones on purpose) gets an all-zero
     * signature: the server must refuse the name before the signature. */
    if (sotto_auth_sign(sig, d->auth_sk, purpose, exporter, nonce, d->username, device_id) !=
        SOTTO_OK)
        sodium_memzero(sig, 64);
}

/* challenge; fills nonce. Returns status. */
static int challenge(tc_conn *c, uint8_t nonce[32])
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ChallengeRequest rq = SOTTO__API__CHALLENGE_REQUEST__INIT;
    tc_sframe *r;
    int st;

    f.op_case = SOTTO__API__CLIENT_FRAME__OP_CHALLENGE;
    f.challenge = &rq;
    r = tc_call(c, &f, 10000);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    if (st == 0) {
        if (r->result_case != SOTTO__API__SERVER_FRAME__RESULT_CHALLENGE ||
            r->challenge->nonce.len != 32)
            st = TC_ERR;
        else
            memcpy(nonce, r->challenge->nonce.data, 32);
    }
    tc_free(r);
    return st;
}

int tc_register(tc_conn *c, tc_device *d, const char *invite)
{
    uint8_t list[SOTTO_DEVICE_LIST_MAX_BYTES];
    sotto_device_entry e;
    size_t len = 0;

    if (d->v1)
        return tc_register_ex(c, d, invite, NULL, NULL, 0, false, 1);
    tc_entry_of(d, 1, &e);
    /* A username the library refuses (tests send bad ones on purpose): no
     * list can be signed; send a dummy the server must never look at. */
    if (tc_list_sign(&d->account, d->username, 1, &e, 1, list, &len) != 0) {
        memset(list, 0xEE, 200);
        len = 200;
    }
    return tc_register_ex(c, d, invite, d->account.pub.bytes, list, len, false, 1);
}

int tc_register_ex(tc_conn *c, tc_device *d, const char *invite, const uint8_t *account_key,
                   const uint8_t *list, size_t list_len, bool recover, uint32_t sig_device_id)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__RegisterRequest rq = SOTTO__API__REGISTER_REQUEST__INIT;
    uint8_t nonce[32], sig[64];
    tc_sframe *r;
    int st = challenge(c, nonce);

    if (st != 0)
        return st;
    tc_auth_sign(d, 0x01, c->exporter, nonce, sig_device_id, sig);
    if (account_key != NULL) {
        rq.account_key.data = (uint8_t *)account_key;
        rq.account_key.len = 33;
    }
    if (list != NULL) {
        rq.device_list.data = (uint8_t *)list;
        rq.device_list.len = list_len;
    }
    rq.recover = recover;
    rq.username = d->username;
    rq.auth_key.data = d->auth_pk;
    rq.auth_key.len = 32;
    rq.signature.data = sig;
    rq.signature.len = 64;
    rq.invite = (char *)(invite != NULL ? invite : "");
    rq.identity_key.data = d->identity.pub.bytes;
    rq.identity_key.len = 33;
    rq.registration_id = d->registration_id;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_REGISTER;
    f.register_ = &rq;
    r = tc_call(c, &f, 10000);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    c->last_retry_after_ms = r->retry_after_ms;
    snprintf(c->last_error, sizeof(c->last_error), "%s", r->error != NULL ? r->error : "");
    if (st == 0 && r->result_case == SOTTO__API__SERVER_FRAME__RESULT_REGISTER)
        d->device_id = r->register_->device_id;
    if (st == 0 && r->result_case == SOTTO__API__SERVER_FRAME__RESULT_REGISTER &&
        r->register_->sealed_trust_root.len <= sizeof(c->sealed_root)) {
        memcpy(c->sealed_root, r->register_->sealed_trust_root.data,
               r->register_->sealed_trust_root.len);
        c->sealed_root_len = r->register_->sealed_trust_root.len;
    }
    tc_free(r);
    return st;
}

int tc_login(tc_conn *c, const tc_device *d)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__LoginRequest rq = SOTTO__API__LOGIN_REQUEST__INIT;
    uint8_t nonce[32], sig[64];
    tc_sframe *r;
    int st = challenge(c, nonce);

    if (st != 0)
        return st;
    tc_auth_sign(d, 0x02, c->exporter, nonce, d->device_id, sig);
    rq.username = (char *)d->username;
    rq.device_id = d->device_id;
    rq.signature.data = sig;
    rq.signature.len = 64;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LOGIN;
    f.login = &rq;
    r = tc_call(c, &f, 10000);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    if (st == 0 && r->result_case == SOTTO__API__SERVER_FRAME__RESULT_LOGIN &&
        r->login->sealed_trust_root.len <= sizeof(c->sealed_root)) {
        memcpy(c->sealed_root, r->login->sealed_trust_root.data, r->login->sealed_trust_root.len);
        c->sealed_root_len = r->login->sealed_trust_root.len;
    }
    tc_free(r);
    return st;
}

int tc_set_keys(tc_conn *c, tc_device *d, bool with_spk, size_t n, uint32_t *remaining_out)
{
    do {
        tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
        Sotto__Api__SetKeysRequest rq = SOTTO__API__SET_KEYS_REQUEST__INIT;
        Sotto__Api__SignedPreKey spk = SOTTO__API__SIGNED_PRE_KEY__INIT;
        Sotto__Api__PreKey pks[100], *pkp[100];
        sotto_prekey gen[100];
        size_t batch = n > 100 ? 100 : n, i;
        tc_sframe *r;
        int st;

        if (batch > 0 && sotto_prekeys_generate(gen, d->next_prekey_id, batch) != SOTTO_OK)
            return TC_ERR;
        d->next_prekey_id += (uint32_t)batch;
        for (i = 0; i < batch; i++) {
            sotto__api__pre_key__init(&pks[i]);
            pks[i].id = gen[i].id;
            pks[i].public_key.data = gen[i].key.pub.bytes;
            pks[i].public_key.len = 33;
            pkp[i] = &pks[i];
        }
        rq.n_prekeys = batch;
        rq.prekeys = pkp;
        if (with_spk) {
            spk.id = d->spk.id;
            spk.public_key.data = d->spk.key.pub.bytes;
            spk.public_key.len = 33;
            spk.signature.data = d->spk.signature;
            spk.signature.len = 64;
            spk.timestamp_ms = d->spk.timestamp_ms;
            rq.signed_prekey = &spk;
            with_spk = false;
        }
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_KEYS;
        f.set_keys = &rq;
        r = tc_call(c, &f, 10000);
        sodium_memzero(gen, sizeof(gen));
        if (r == NULL)
            return c->closed ? TC_CLOSED : TC_ERR;
        st = r->status;
        if (st == 0 && remaining_out != NULL &&
            r->result_case == SOTTO__API__SERVER_FRAME__RESULT_SET_KEYS)
            *remaining_out = r->set_keys->prekeys_remaining;
        tc_free(r);
        if (st != 0)
            return st;
        n -= batch;
    } while (n > 0);
    return 0;
}

int tc_fetch_list(tc_conn *c, sotto_device_list *out, uint8_t *raw, size_t *raw_len)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__ListDevicesRequest rq = SOTTO__API__LIST_DEVICES_REQUEST__INIT;
    tc_sframe *r;
    int st;

    memset(out, 0, sizeof(*out));
    if (raw_len != NULL)
        *raw_len = 0;
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_LIST_DEVICES;
    f.list_devices = &rq;
    r = tc_call(c, &f, 10000);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    if (st == 0 && r->list_devices->device_list.len > 0) {
        const ProtobufCBinaryData *b = &r->list_devices->device_list;

        if (sotto_device_list_parse(out, b->data, b->len, NULL) != SOTTO_OK ||
            b->len > SOTTO_DEVICE_LIST_MAX_BYTES)
            st = TC_ERR;
        else if (raw != NULL) {
            memcpy(raw, b->data, b->len);
            *raw_len = b->len;
        }
    }
    tc_free(r);
    return st;
}

int tc_remove_device_with_list(tc_conn *c, uint32_t device_id, const uint8_t *list, size_t list_len)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__RemoveDeviceRequest rq = SOTTO__API__REMOVE_DEVICE_REQUEST__INIT;
    tc_sframe *r;
    int st;

    rq.device_id = device_id;
    if (list != NULL) {
        rq.device_list.data = (uint8_t *)list;
        rq.device_list.len = list_len;
    }
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_REMOVE_DEVICE;
    f.remove_device = &rq;
    r = tc_call(c, &f, 10000);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    tc_free(r);
    return st;
}

int tc_remove_device(tc_conn *c, const tc_device *me, uint32_t device_id)
{
    sotto_device_list *l = calloc(1, sizeof(*l));
    uint8_t *out = malloc(SOTTO_DEVICE_LIST_MAX_BYTES);
    size_t len = 0, k = 0;
    int st = TC_ERR;

    if (l == NULL || out == NULL)
        goto done;
    if (me->v1) {
        st = tc_remove_device_with_list(c, device_id, NULL, 0);
        goto done;
    }
    st = tc_fetch_list(c, l, NULL, NULL);
    if (st != 0)
        goto done;
    if (l->n_devices == 0) {
        st = tc_remove_device_with_list(c, device_id, NULL, 0);
        goto done;
    }
    for (size_t i = 0; i < l->n_devices; i++)
        if (l->devices[i].device_id != device_id)
            l->devices[k++] = l->devices[i];
    if (k == 0) {
        /* The last device: no list can hold zero devices; the server
         * refuses the removal before it looks at a list. */
        st = tc_remove_device_with_list(c, device_id, NULL, 0);
        goto done;
    }
    st = TC_ERR;
    if (tc_list_sign(&me->account, me->username, l->version + 1, l->devices, k, out, &len) != 0)
        goto done;
    st = tc_remove_device_with_list(c, device_id, out, len);
done:
    free(l);
    free(out);
    return st;
}

int tc_add_device(tc_conn *c, const tc_device *me, tc_device *newdev)
{
    sotto_device_list *l = calloc(1, sizeof(*l));
    uint8_t *out = malloc(SOTTO_DEVICE_LIST_MAX_BYTES);
    size_t len = 0;
    uint32_t id = 2;
    int st = TC_ERR;

    if (l == NULL || out == NULL)
        goto done;
    if (!me->v1) {
        st = tc_fetch_list(c, l, NULL, NULL);
        if (st != 0)
            goto done;
    }
    if (me->v1 || l->n_devices == 0) {
        st = tc_add_device_with_list(c, me, newdev, NULL, 0);
        goto done;
    }
    for (size_t i = 0; i < l->n_devices; i++) /* sorted: the first gap >= 2 */
        if (l->devices[i].device_id == id)
            id++;
    st = TC_ERR;
    if (l->n_devices >= SOTTO_DEVICE_LIST_MAX)
        goto done;
    tc_entry_of(newdev, id, &l->devices[l->n_devices]);
    if (tc_list_sign(&me->account, me->username, l->version + 1, l->devices, l->n_devices + 1, out,
                     &len) != 0)
        goto done;
    st = tc_add_device_with_list(c, me, newdev, out, len);
    if (st == 0)
        newdev->account = me->account;
done:
    free(l);
    free(out);
    return st;
}

int tc_add_device_with_list(tc_conn *c, const tc_device *me, tc_device *newdev, const uint8_t *list,
                            size_t list_len)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__AddDeviceRequest rq = SOTTO__API__ADD_DEVICE_REQUEST__INIT;
    uint8_t sig[64];
    tc_sframe *r;
    int st;

    if (sotto_add_device_sign(sig, me->auth_sk, me->username, newdev->auth_pk,
                              newdev->identity.pub.bytes, newdev->registration_id) != SOTTO_OK)
        return TC_ERR;
    rq.auth_key.data = newdev->auth_pk;
    rq.auth_key.len = 32;
    rq.signature.data = sig;
    rq.signature.len = 64;
    rq.identity_key.data = newdev->identity.pub.bytes;
    rq.identity_key.len = 33;
    rq.registration_id = newdev->registration_id;
    if (list != NULL) {
        rq.device_list.data = (uint8_t *)list;
        rq.device_list.len = list_len;
    }
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_ADD_DEVICE;
    f.add_device = &rq;
    r = tc_call(c, &f, 10000);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    if (st == 0 && r->result_case == SOTTO__API__SERVER_FRAME__RESULT_ADD_DEVICE)
        newdev->device_id = r->add_device->device_id;
    tc_free(r);
    return st;
}

int tc_send_msg(tc_conn *c, const char *dest, const uint32_t *device_ids, const uint32_t *reg_ids,
                size_t n, const uint8_t *body, size_t body_len, tc_sframe **resp)
{
    return tc_send_ex(c, dest, NULL, 2, device_ids, reg_ids, n, body, body_len, resp);
}

int tc_send_ex(tc_conn *c, const char *dest, const uint8_t *token, uint32_t type,
               const uint32_t *device_ids, const uint32_t *reg_ids, size_t n, const uint8_t *body,
               size_t body_len, tc_sframe **resp)
{
    tc_cframe f = SOTTO__API__CLIENT_FRAME__INIT;
    Sotto__Api__SendRequest rq = SOTTO__API__SEND_REQUEST__INIT;
    Sotto__Api__OutgoingMessage *om = calloc(n ? n : 1, sizeof(*om));
    Sotto__Api__OutgoingMessage **omp = calloc(n ? n : 1, sizeof(*omp));
    tc_sframe *r;
    size_t i;
    int st;

    if (resp != NULL)
        *resp = NULL;
    if (om == NULL || omp == NULL) {
        free(om);
        free(omp);
        return TC_ERR;
    }
    for (i = 0; i < n; i++) {
        sotto__api__outgoing_message__init(&om[i]);
        om[i].device_id = device_ids[i];
        om[i].registration_id = reg_ids[i];
        om[i].type = type;
        om[i].body.data = (uint8_t *)body;
        om[i].body.len = body_len;
        omp[i] = &om[i];
    }
    rq.destination = (char *)dest;
    rq.n_messages = n;
    rq.messages = omp;
    if (token != NULL) {
        rq.delivery_token.data = (uint8_t *)token;
        rq.delivery_token.len = 16;
    }
    f.op_case = SOTTO__API__CLIENT_FRAME__OP_SEND;
    f.send = &rq;
    r = tc_call(c, &f, 20000);
    free(om);
    free(omp);
    if (r == NULL)
        return c->closed ? TC_CLOSED : TC_ERR;
    st = r->status;
    if (resp != NULL)
        *resp = r;
    else
        tc_free(r);
    return st;
}

tc_conn *tc_new_user(const tc_server *s, tc_device *d, const char *username, size_t prekeys)
{
    tc_conn *c = tc_connect(s);

    tc_device_new(d, username);
    if (c == NULL)
        return NULL;
    if (tc_register(c, d, NULL) != 0 || tc_set_keys(c, d, true, prekeys, NULL) != 0) {
        tc_close(c);
        return NULL;
    }
    return c;
}
