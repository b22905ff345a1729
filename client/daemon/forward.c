/*
 * client/daemon/forward.c -- the CLI side of "the CLI uses a running
 * daemon": `sotto --account carol send bob hi` while a daemon holds carol
 * sends one `cli` request (docs/rpc.md) and prints what the command printed
 * in the daemon, byte for byte, with its exit code.
 *
 * What only the calling process has goes with the request: the text on
 * standard input (read here when the command would read it), absolute
 * paths for the files it names (the daemon's working directory is not
 * ours), and whether our stdout is a terminal.
 *
 * `receive` and `listen` are not run in the daemon: sotto_daemon_receive
 * subscribes as "cli" and hands each event to the CLI's printer, then
 * acknowledges it (docs/rpc.md "The CLI through the daemon").
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon.h"

#define MAX_STDIN (SC_MAX_TEXT_BYTES + 2)
#define MAX_ANSWER (64u * 1024 * 1024)

/* send / group send without a text (or with "-") read it from stdin */
static bool reads_stdin(int argc, char **argv)
{
    int first = 1, positional = 0;
    bool text_opt = false, file = false, dash = false, rest = false;

    if (strcmp(argv[0], "group") == 0) {
        if (argc < 2 || strcmp(argv[1], "send") != 0)
            return false;
        first = 2;
    } else if (strcmp(argv[0], "send") != 0) {
        return false;
    }
    for (int i = first; i < argc; i++) {
        if (!rest && (strcmp(argv[i], "--text") == 0 || strcmp(argv[i], "--file") == 0) &&
            i + 1 < argc) {
            if (argv[i][2] == 't')
                text_opt = true;
            else
                file = true;
            i++;
        } else if (!rest && strcmp(argv[i], "--") == 0) {
            rest = true;
        } else if (!rest && argv[i][0] == '-' && argv[i][1] != '\0') {
            continue;
        } else {
            positional++;
            if (positional == 2 && strcmp(argv[i], "-") == 0)
                dash = true;
        }
    }
    return !file && !text_opt && (positional < 2 || dash);
}

/* PATH as the daemon must see it */
static json_t *abs_path(const char *p)
{
    char cwd[PATH_MAX], buf[PATH_MAX * 2];
    if (p[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
        return json_string(p);
    snprintf(buf, sizeof buf, "%s/%s", cwd, p);
    return json_string(buf);
}

static json_t *argv_json(int argc, char **argv)
{
    json_t *a = json_array();
    bool backup_create =
        argc >= 2 && strcmp(argv[0], "backup") == 0 && strcmp(argv[1], "create") == 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            json_array_append_new(a, json_string(argv[i]));
            json_array_append_new(a, abs_path(argv[++i]));
        } else if (backup_create && i >= 2 && argv[i][0] != '-') {
            json_array_append_new(a, abs_path(argv[i]));
        } else {
            json_array_append_new(a, json_string(argv[i]));
        }
    }
    return a;
}

static char *read_all_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r;
        if (n == cap) {
            char *nb;
            if (cap > MAX_STDIN)
                break;
            cap *= 2;
            nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, stdin);
        if (r == 0)
            break;
        n += r;
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        close(fd);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* One line from fd (the response; notifications never come: we do not
 * subscribe). malloc()ed, NULL on EOF/error. */
static char *read_line(int fd)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        ssize_t r;
        char *nl;
        if (n == cap) {
            char *nb;
            if (cap >= MAX_ANSWER) {
                free(buf);
                return NULL;
            }
            nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        nl = memchr(buf + n, '\n', (size_t)r);
        n += (size_t)r;
        if (nl) {
            *nl = '\0';
            return buf;
        }
    }
    return NULL;
}

int sotto_daemon_forward(const char *socket_path, const char *account, bool json, int argc,
                         char **argv)
{
    json_t *req, *params, *ans = NULL, *res;
    char *line = NULL, *text = NULL, *in = NULL;
    size_t in_len = 0;
    int fd, rc = -1;

    fd = connect_to(socket_path);
    if (fd < 0)
        return -1;
    req = json_object();
    params = json_object();
    json_object_set_new(req, "jsonrpc", json_string("2.0"));
    json_object_set_new(req, "id", json_integer(1));
    json_object_set_new(req, "method", json_string("cli"));
    json_object_set_new(params, "account", json_string(account));
    json_object_set_new(params, "argv", argv_json(argc, argv));
    json_object_set_new(params, "json", json_boolean(json));
    json_object_set_new(params, "tty", json_boolean(isatty(1)));
    if (reads_stdin(argc, argv)) {
        if (isatty(0))
            fprintf(stderr, "sotto: reading the message from standard input (end with Ctrl-D)\n");
        in = read_all_stdin(&in_len);
        if (in && sc_utf8_valid(in, in_len))
            json_object_set_new(params, "stdin", json_stringn(in, in_len));
        else if (in)
            json_object_set_new(params, "stdin", json_string("")); /* refused as the CLI does */
    }
    json_object_set_new(req, "params", params);
    text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (in) {
        memset(in, 0, in_len);
        free(in);
    }
    if (text == NULL || !write_all(fd, text, strlen(text)) || !write_all(fd, "\n", 1))
        goto out;
    line = read_line(fd);
    if (line == NULL)
        goto out;
    ans = json_loads(line, 0, NULL);
    res = json_object_get(ans, "result");
    if (!json_is_object(res))
        goto out; /* an error: e.g. the daemon does not serve this account */
    {
        json_t *o = json_object_get(res, "stdout"), *e = json_object_get(res, "stderr");
        json_t *x = json_object_get(res, "exit");
        if (!json_is_integer(x))
            goto out;
        if (json_is_string(o))
            fwrite(json_string_value(o), 1, json_string_length(o), stdout);
        if (json_is_string(e))
            fwrite(json_string_value(e), 1, json_string_length(e), stderr);
        fflush(stdout);
        rc = (int)json_integer_value(x);
    }
out:
    if (text) {
        memset(text, 0, strlen(text)); /* it held the message */
        free(text);
    }
    if (line) {
        memset(line, 0, strlen(line));
        free(line);
    }
    json_decref(ans);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ receive/listen */

typedef struct rx {
    int fd;
    char *buf; /* bytes read, not yet a whole line */
    size_t len, cap;
    int64_t *seen; /* event ids handed to fn, sorted */
    size_t n_seen, cap_seen;
} rx;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Next whole line (NUL-terminated, malloc()ed) if one is buffered, else
 * NULL. */
static char *rx_take_line(rx *r)
{
    char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL, *line;
    size_t n;
    if (nl == NULL)
        return NULL;
    n = (size_t)(nl - r->buf);
    line = malloc(n + 1);
    if (line == NULL)
        return NULL;
    memcpy(line, r->buf, n);
    line[n] = '\0';
    memmove(r->buf, nl + 1, r->len - n - 1);
    r->len -= n + 1;
    return line;
}

/* Waits up to wait_ms for data and appends it: 1 read, 0 nothing yet,
 * -1 the connection ended (or the line grew past MAX_ANSWER). */
static int rx_fill(rx *r, int wait_ms)
{
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    ssize_t got;
    int pr = poll(&p, 1, wait_ms);
    if (pr < 0)
        return errno == EINTR ? 0 : -1;
    if (pr == 0)
        return 0;
    if (r->cap - r->len < 65536) {
        size_t ncap = r->cap ? r->cap * 2 : 131072;
        char *nb;
        if (ncap > MAX_ANSWER)
            return -1;
        nb = realloc(r->buf, ncap);
        if (nb == NULL)
            return -1;
        r->buf = nb;
        r->cap = ncap;
    }
    got = read(r->fd, r->buf + r->len, r->cap - r->len);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (got <= 0)
        return -1;
    r->len += (size_t)got;
    return 1;
}

/* true when id was handed out before; else records it */
static bool rx_seen(rx *r, int64_t id)
{
    size_t lo = 0, hi = r->n_seen;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->seen[mid] == id)
            return true;
        if (r->seen[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (r->n_seen == r->cap_seen) {
        size_t ncap = r->cap_seen ? r->cap_seen * 2 : 64;
        int64_t *nv = realloc(r->seen, ncap * sizeof *nv);
        if (nv == NULL)
            return false; /* printed again at worst */
        r->seen = nv;
        r->cap_seen = ncap;
    }
    memmove(r->seen + lo + 1, r->seen + lo, (r->n_seen - lo) * sizeof *r->seen);
    r->seen[lo] = id;
    r->n_seen++;
    return false;
}

static bool send_request(int fd, json_int_t id, const char *method, json_t *params)
{
    json_t *req = json_object();
    char *text;
    bool ok;
    json_object_set_new(req, "jsonrpc", json_string("2.0"));
    json_object_set_new(req, "id", json_integer(id));
    json_object_set_new(req, "method", json_string(method));
    json_object_set_new(req, "params", params);
    text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    ok = text != NULL && write_all(fd, text, strlen(text)) && write_all(fd, "\n", 1);
    free(text);
    return ok;
}

int sotto_daemon_receive(const char *socket_path, const char *account, bool stay, unsigned quiet_ms,
                         const volatile int *stop, sotto_daemon_event_fn fn, void *ud)
{
    rx r;
    json_t *params;
    json_int_t next_id = 2;
    size_t pending_acks = 0;
    bool subscribed = false, stopping = false;
    uint64_t last = 0, stop_deadline = 0;
    int rc = SOTTO_DAEMON_UNREACHABLE;

    memset(&r, 0, sizeof r);
    r.fd = connect_to(socket_path);
    if (r.fd < 0)
        return SOTTO_DAEMON_UNREACHABLE;
    params = json_object();
    json_object_set_new(params, "account", json_string(account));
    json_object_set_new(params, "subscriber", json_string(SOTTO_DAEMON_CLI_SUBSCRIBER));
    if (!send_request(r.fd, 1, "subscribeReceive", params))
        goto out;
    for (;;) {
        char *line;
        int f;

        while ((line = rx_take_line(&r)) != NULL) {
            json_t *m = json_loads(line, 0, NULL), *p = json_object_get(m, "params");
            json_t *id = json_object_get(m, "id");
            free(line);
            if (json_is_string(json_object_get(m, "method"))) {
                json_t *ev = json_object_get(p, "event");
                json_t *eid = json_object_get(p, "event_id");
                const char *sub = json_string_value(json_object_get(p, "subscriber"));
                if (strcmp(json_string_value(json_object_get(m, "method")), "receive") == 0 &&
                    json_is_object(ev) && json_is_null(eid) && sub &&
                    strcmp(sub, SOTTO_DAEMON_CLI_SUBSCRIBER) == 0) {
                    /* a live-only event (typing, docs/rpc.md): shown, never acked */
                    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
                    if (text)
                        fn(ud, text);
                    free(text);
                } else if (strcmp(json_string_value(json_object_get(m, "method")), "receive") ==
                               0 &&
                           json_is_object(ev) && json_is_integer(eid) && sub &&
                           strcmp(sub, SOTTO_DAEMON_CLI_SUBSCRIBER) == 0 &&
                           !rx_seen(&r, (int64_t)json_integer_value(eid))) {
                    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
                    json_t *ack = json_object(), *ids = json_array();
                    if (text)
                        fn(ud, text); /* written to stdout: now acknowledged */
                    free(text);
                    json_array_append(ids, eid);
                    json_object_set_new(ack, "account", json_string(account));
                    json_object_set_new(ack, "subscriber",
                                        json_string(SOTTO_DAEMON_CLI_SUBSCRIBER));
                    json_object_set_new(ack, "eventIds", ids);
                    if (send_request(r.fd, next_id++, "ack", ack))
                        pending_acks++;
                    last = now_ms();
                }
            } else if (json_is_integer(id) && json_integer_value(id) == 1) {
                if (!json_is_object(json_object_get(m, "result"))) {
                    json_decref(m);
                    goto out; /* does not serve the account: nothing printed */
                }
                subscribed = true;
                last = now_ms();
            } else if (json_is_integer(id) && pending_acks > 0) {
                pending_acks--; /* an error leaves the event to the next run */
            }
            json_decref(m);
        }
        if (subscribed && pending_acks == 0 && !stay && now_ms() - last >= quiet_ms) {
            rc = 0;
            break;
        }
        if (stopping && (pending_acks == 0 || now_ms() >= stop_deadline)) {
            rc = 0;
            break;
        }
        if (!stopping && stay && stop && *stop) {
            stopping = true; /* wait for the answers to the acks sent */
            stop_deadline = now_ms() + 2000;
        }
        f = rx_fill(&r, 100);
        if (f < 0) {
            rc = subscribed ? SOTTO_DAEMON_GONE : SOTTO_DAEMON_UNREACHABLE;
            break;
        }
    }
out:
    free(r.buf);
    free(r.seen);
    close(r.fd);
    return rc;
}
