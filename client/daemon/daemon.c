/*
 * client/daemon/daemon.c -- `sotto daemon`: opens and locks the accounts,
 * listens on the Unix socket and/or stdio, and runs the I/O loop (poll):
 * lines in -> dm_handle_line (rpc.c), queued output -> the connections.
 */
#define _GNU_SOURCE /* accept4 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"

#define MAX_ACCOUNTS 64
#define MAX_CONNS 256
#define MAX_LINE (8u * 1024 * 1024) /* a request line longer than this closes the connection */
/* a connection with more unread output than this is not read from until
 * it takes its answers: a client that never reads cannot make the daemon
 * buffer without bound */
#define MAX_PENDING_OUT (1024u * 1024)
/* A connection whose unread output grows past this (a subscriber that stopped
 * reading: events keep coming) is closed; its unacknowledged events are
 * redelivered when it subscribes again, so nothing is lost. */
#define MAX_UNREAD_OUT (64u * 1024 * 1024)

typedef struct conn {
    uint64_t id;
    int fd_in, fd_out; /* the same socket, or stdin/stdout */
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    bool eof; /* no more input: closed once its output is written */
} conn;

static volatile sig_atomic_t g_quit;
static int g_sig_pipe[2] = {-1, -1};

static void on_quit(int sig)
{
    (void)sig;
    g_quit = 1;
    if (g_sig_pipe[1] >= 0) {
        char b = 1;
        ssize_t w = write(g_sig_pipe[1], &b, 1);
        (void)w;
    }
}

bool sotto_daemon_socket_path(char *buf, size_t cap)
{
    const char *env = getenv("SOTTO_DAEMON_SOCKET"), *rt = getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && env[0])
        n = snprintf(buf, cap, "%s", env);
    else if (rt && rt[0])
        n = snprintf(buf, cap, "%s/sotto/daemon.sock", rt);
    else
        n = snprintf(buf, cap, "/tmp/sotto-%lu/daemon.sock", (unsigned long)getuid());
    return n > 0 && (size_t)n < cap && (size_t)n < sizeof(((struct sockaddr_un *)0)->sun_path);
}

/* ------------------------------------------------------------ accounts */

static int data_home(const sc_options *opt, char *buf, size_t cap)
{
    const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n;
    if (opt->data_home && opt->data_home[0])
        n = snprintf(buf, cap, "%s/sotto", opt->data_home);
    else if (x && x[0])
        n = snprintf(buf, cap, "%s/sotto", x);
    else if (home && home[0])
        n = snprintf(buf, cap, "%s/.local/share/sotto", home);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Opens, checks and locks one account. 0, or the exit code (reported). */
static int open_account(const sc_options *opt, const char *name, bool explicit_name,
                        sc_client **out)
{
    sc_options o = *opt;
    char err[512];
    sc_lock_holder h;
    int rc;

    *out = NULL;
    o.account = name;
    o.must_exist = true;
    rc = sc_open(out, &o, err, sizeof err);
    if (rc != SC_OK) {
        fprintf(stderr, "sotto daemon: %s: %s\n", name, err);
        return explicit_name ? (rc == SC_E_USAGE ? 2 : 8) : -1;
    }
    if (sc_username(*out) == NULL) {
        if (explicit_name)
            fprintf(stderr, "sotto daemon: account %s is not registered\n", name);
        sc_close(*out);
        *out = NULL;
        return explicit_name ? 8 : -1;
    }
    rc = sc_lock(*out, "sotto daemon", &h);
    if (rc != SC_OK) {
        fprintf(stderr, "sotto daemon: %s\n", sc_errmsg(*out));
        sc_close(*out);
        *out = NULL;
        return rc == SC_E_BUSY ? SOTTO_DAEMON_EXIT_BUSY : 1;
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every registered account under the data directory, sorted by name. */
static int open_all(const sc_options *opt, sc_client **clients, size_t *n)
{
    char dir[4096];
    char *names[MAX_ACCOUNTS];
    size_t nn = 0;
    DIR *dp;
    struct dirent *de;
    int rc = 0;

    if (data_home(opt, dir, sizeof dir) != 0) {
        fprintf(stderr, "sotto daemon: neither XDG_DATA_HOME nor HOME is set\n");
        return 2;
    }
    dp = opendir(dir);
    if (dp == NULL) {
        fprintf(stderr, "sotto daemon: no accounts in %s\n", dir);
        return 8;
    }
    while ((de = readdir(dp)) != NULL && nn < MAX_ACCOUNTS) {
        char p[4400];
        struct stat st;
        if (!sc_account_name_valid(de->d_name))
            continue;
        if ((size_t)snprintf(p, sizeof p, "%s/%s/store.db", dir, de->d_name) >= sizeof p)
            continue;
        if (stat(p, &st) != 0)
            continue;
        names[nn] = strdup(de->d_name);
        if (names[nn])
            nn++;
    }
    closedir(dp);
    qsort(names, nn, sizeof *names, name_cmp);
    for (size_t i = 0; i < nn; i++) {
        sc_client *c = NULL;
        int r = rc == 0 ? open_account(opt, names[i], false, &c) : -1;
        if (r > 0)
            rc = r;
        else if (c)
            clients[(*n)++] = c;
        free(names[i]);
    }
    if (rc == 0 && *n == 0) {
        fprintf(stderr, "sotto daemon: no registered account in %s\n", dir);
        rc = 8;
    }
    return rc;
}

/* ------------------------------------------------------------ socket */

static int make_parent(const char *path)
{
    char dir[4096];
    char *slash;
    struct stat st;

    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid())
        return -1;
    if ((st.st_mode & 0077) != 0 && chmod(dir, 0700) != 0)
        return -1;
    return 0;
}

/* Listening socket on path; -1 (reported) when another daemon serves it or
 * it cannot be made; *busy for the first. */
static int listen_socket(const char *path, bool *busy)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd;

    *busy = false;
    if (make_parent(path) != 0) {
        fprintf(stderr, "sotto daemon: cannot make a private directory for %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        fprintf(stderr, "sotto daemon: another daemon serves %s\n", path);
        close(fd);
        *busy = true;
        return -1;
    }
    close(fd);
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "sotto daemon: %s exists and is not a socket: not replacing it\n", path);
        return -1;
    }
    (void)unlink(path); /* a stale socket of a daemon that died */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(path, 0600) != 0 ||
        listen(fd, 64) != 0) {
        fprintf(stderr, "sotto daemon: cannot listen on %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------ connections */

static conn *conn_new(conn **conns, size_t *n, uint64_t id, int fd_in, int fd_out)
{
    conn *c;
    if (*n >= MAX_CONNS)
        return NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->id = id;
    c->fd_in = fd_in;
    c->fd_out = fd_out;
    conns[(*n)++] = c;
    return c;
}

static void conn_free(conn *c)
{
    if (c->fd_in > 2)
        close(c->fd_in);
    if (c->fd_out > 2 && c->fd_out != c->fd_in)
        close(c->fd_out);
    free(c->in);
    free(c->out);
    free(c);
}

static int append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n)
            nc *= 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL)
            return -1;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

/* Reads what is there; hands complete lines to the daemon. false: closed. */
static bool conn_read(dm_daemon *d, conn *c)
{
    char tmp[65536];
    ssize_t r = read(c->fd_in, tmp, sizeof tmp);
    size_t start = 0;

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (r <= 0) {
        c->eof = true;
        return true;
    }
    if (append(&c->in, &c->in_len, &c->in_cap, tmp, (size_t)r) != 0)
        return false;
    for (size_t i = 0; i < c->in_len; i++) {
        if (c->in[i] == '\n') {
            dm_handle_line(d, c->id, c->in + start, i - start);
            start = i + 1;
        }
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    return c->in_len <= MAX_LINE;
}

static bool conn_write(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd_out, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (c->out_off >= c->out_len / 2) { /* a steady slow reader: keep it compact */
                memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
                c->out_len -= c->out_off;
                c->out_off = 0;
            }
            return true;
        }
        if (w <= 0)
            return false;
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    return true;
}

/* ------------------------------------------------------------ main */

static int usage(const char *msg)
{
    fprintf(stderr, "sotto: daemon: %s (see sotto daemon --help)\n", msg);
    return 2;
}

int sotto_daemon_main(int argc, char **argv, const sc_options *opt_in)
{
    sc_options opt = *opt_in;
    const char *names[MAX_ACCOUNTS], *sock_opt = NULL;
    size_t n_names = 0, n_clients = 0, n_conns = 0;
    sc_client *clients[MAX_ACCOUNTS];
    conn *conns[MAX_CONNS];
    bool use_stdio = false, no_socket = false, busy = false;
    char sock[512];
    int lfd = -1, rc = 0;
    uint64_t next_id = 2;
    dm_daemon *d = NULL;
    struct sigaction sa;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--account") == 0 && i + 1 < argc) {
            if (n_names == MAX_ACCOUNTS)
                return usage("too many --account");
            names[n_names++] = argv[++i];
        } else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            sock_opt = argv[++i];
        } else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            opt.data_home = argv[++i];
        } else if (strcmp(argv[i], "--stdio") == 0) {
            use_stdio = true;
        } else if (strcmp(argv[i], "--no-socket") == 0) {
            no_socket = true;
        } else {
            char m[300];
            snprintf(m, sizeof m, "unknown argument %.200s", argv[i]);
            return usage(m);
        }
    }
    if (no_socket && !use_stdio)
        return usage("--no-socket needs --stdio");
    if (sock_opt) {
        if (strlen(sock_opt) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return usage("--socket: path too long");
        snprintf(sock, sizeof sock, "%s", sock_opt);
    } else if (!sotto_daemon_socket_path(sock, sizeof sock)) {
        return usage("socket path too long");
    }
    opt.progress = false;
    if (n_names > 0) {
        for (size_t i = 0; i < n_names && rc == 0; i++) {
            sc_client *c = NULL;
            rc = open_account(&opt, names[i], true, &c);
            if (rc == 0)
                clients[n_clients++] = c;
        }
    } else {
        rc = open_all(&opt, clients, &n_clients);
    }
    if (rc == 0 && !no_socket) {
        lfd = listen_socket(sock, &busy);
        if (lfd < 0)
            rc = busy ? SOTTO_DAEMON_EXIT_BUSY : 1;
    }
    if (rc == 0 && !no_socket) {
        /* each account's lock names this socket, so its CLI forwards here
         * and nowhere else (a relative --socket is made absolute) */
        char abs[sizeof sock + 4096];
        char cwd[4096];
        if (sock[0] == '/')
            snprintf(abs, sizeof abs, "%s", sock);
        else if (getcwd(cwd, sizeof cwd) != NULL)
            snprintf(abs, sizeof abs, "%s/%s", cwd, sock);
        else
            abs[0] = '\0';
        for (size_t i = 0; i < n_clients && abs[0]; i++)
            if (sc_lock_note_socket(clients[i], abs) != SC_OK)
                fprintf(stderr, "sotto daemon: %s: %s (the CLI will not forward to it)\n",
                        sc_account_name(clients[i]), sc_errmsg(clients[i]));
    }
    if (rc != 0) {
        for (size_t i = 0; i < n_clients; i++)
            sc_close(clients[i]);
        return rc;
    }
    if (pipe(g_sig_pipe) != 0) {
        perror("sotto daemon: pipe");
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_quit;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    d = dm_new(clients, n_clients, false);
    if (d == NULL || dm_start(d) != 0) {
        fprintf(stderr, "sotto daemon: cannot start (out of memory or threads)\n");
        return 1;
    }
    fprintf(stderr, "sotto daemon: serving");
    for (size_t i = 0; i < n_clients; i++)
        fprintf(stderr, " %s", sc_account_name(clients[i]));
    if (lfd >= 0)
        fprintf(stderr, " on %s", sock);
    fprintf(stderr, "%s\n", use_stdio ? (lfd >= 0 ? " and stdio" : " on stdio") : "");
    if (use_stdio) {
        (void)fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
        conn_new(conns, &n_conns, 1, 0, 1);
    }

    while (!g_quit) {
        /* signal pipe, output pipe, listener, each connection's input, and
         * stdout for the stdio connection (its output fd is its own) */
        struct pollfd pf[MAX_CONNS + 4];
        size_t np = 0;
        uint64_t cid;
        char *text;

        /* queued output to its connection */
        while (dm_take_output(d, &cid, &text)) {
            for (size_t i = 0; i < n_conns; i++) {
                if (conns[i]->id == cid) {
                    if (append(&conns[i]->out, &conns[i]->out_len, &conns[i]->out_cap, text,
                               strlen(text)) != 0 ||
                        append(&conns[i]->out, &conns[i]->out_len, &conns[i]->out_cap, "\n", 1) !=
                            0)
                        conns[i]->eof = true;
                }
            }
            free(text);
        }
        for (size_t i = 0; i < n_conns;) {
            conn *c = conns[i];
            bool ok = c->out_len == 0 || conn_write(c);
            if (ok && c->out_len - c->out_off > MAX_UNREAD_OUT) {
                fprintf(stderr,
                        "sotto daemon: closing a connection that has not read %zu bytes of"
                        " answers and events (they are redelivered when it subscribes again)\n",
                        c->out_len - c->out_off);
                ok = false;
            }
            if (!ok || (c->eof && c->out_len == 0 && (c->id != 1 || dm_idle(d)))) {
                if (c->id == 1 && lfd < 0)
                    g_quit = 1; /* stdio only: its end is the daemon's end */
                dm_conn_closed(d, c->id);
                conn_free(c);
                conns[i] = conns[--n_conns];
                continue;
            }
            i++;
        }
        if (g_quit)
            break;
        pf[np++] = (struct pollfd){g_sig_pipe[0], POLLIN, 0};
        pf[np++] = (struct pollfd){dm_output_fd(d), POLLIN, 0};
        if (lfd >= 0)
            pf[np++] = (struct pollfd){lfd, POLLIN, 0};
        size_t base = np;
        for (size_t i = 0; i < n_conns; i++) {
            bool stalled = conns[i]->out_len - conns[i]->out_off > MAX_PENDING_OUT;
            short ev = conns[i]->eof || stalled ? 0 : POLLIN;
            pf[np] = (struct pollfd){conns[i]->fd_in, ev, 0};
            if (conns[i]->out_len > 0 && conns[i]->fd_out == conns[i]->fd_in)
                pf[np].events |= POLLOUT;
            np++;
        }
        for (size_t i = 0; i < n_conns; i++)
            if (conns[i]->out_len > 0 && conns[i]->fd_out != conns[i]->fd_in)
                pf[np++] = (struct pollfd){conns[i]->fd_out, POLLOUT, 0};
        if (poll(pf, np, 1000) < 0 && errno != EINTR)
            break;
        if (pf[1].revents & POLLIN) {
            char b[256];
            while (read(dm_output_fd(d), b, sizeof b) == (ssize_t)sizeof b)
                ; /* non-blocking (rpc.c): drained */
        }
        if (lfd >= 0 && (pf[2].revents & POLLIN)) {
            int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (cfd >= 0 && conn_new(conns, &n_conns, next_id++, cfd, cfd) == NULL)
                close(cfd);
        }
        for (size_t i = 0, k = base; i < n_conns && k < np; i++, k++) {
            if (pf[k].fd != conns[i]->fd_in)
                break; /* the list changed (accept appended at the end): next turn */
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (!conn_read(d, conns[i]))
                    conns[i]->eof = true;
            }
        }
    }
    fprintf(stderr, "sotto daemon: stopping\n");
    if (lfd >= 0) {
        close(lfd);
        (void)unlink(sock);
    }
    dm_free(d); /* answers queued calls, closes the accounts (their locks go) */
    for (size_t i = 0; i < n_conns; i++)
        conn_free(conns[i]);
    return 0;
}
