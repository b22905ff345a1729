/*
 * client/core/lock.c -- the per-account lock (sc_lock, sotto_client.h).
 *
 * An account device has one connection to the server: the server keeps the
 * newest and closes the older one, so two processes connecting the same
 * account take the connection from each other in a loop. Every process
 * that connects an account therefore first takes an fcntl write lock on
 * `lock` in the account directory and keeps it for its lifetime (the
 * kernel drops it when the process ends, however it ends). The file holds
 * the holder's pid and command ("1234\nsotto listen\n") so that the second
 * process can say who holds it; the pid F_GETLK reports is the authority.
 *
 * fcntl locks belong to the process, and closing ANY descriptor of the file
 * in the process drops them: the file is opened once per sc_client and
 * only closed by sc_close. The daemon holds one per account it serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define LOCK_FILE "lock"

static void read_holder(int fd, sc_lock_holder *h)
{
    char buf[320];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    char *nl;

    h->command[0] = '\0';
    if (n <= 0)
        return;
    buf[n] = '\0';
    nl = strchr(buf, '\n');
    if (nl == NULL)
        return;
    nl++;
    size_t len = strcspn(nl, "\n");
    if (len >= sizeof h->command)
        len = sizeof h->command - 1;
    /* shown to the user: printable ASCII only */
    for (size_t i = 0; i < len; i++)
        h->command[i] = (nl[i] >= 0x20 && nl[i] < 0x7f) ? nl[i] : '?';
    h->command[len] = '\0';
    /* third line, written by sc_lock_note_socket: "socket PATH" */
    nl = strchr(nl, '\n');
    if (nl == NULL || strncmp(nl + 1, "socket /", 8) != 0)
        return;
    nl += 8;
    len = strcspn(nl, "\n");
    if (len > 0 && len < sizeof h->socket && nl[len] == '\n') {
        memcpy(h->socket, nl, len);
        h->socket[len] = '\0';
    }
}

int sc_lock_note_socket(sc_client *c, const char *socket_path)
{
    char line[256];
    int n;

    if (c->lock_fd < 0)
        return sc_fail(c, SC_E_STATE, "the account lock is not held");
    if (socket_path == NULL || socket_path[0] != '/' || strchr(socket_path, '\n') ||
        strlen(socket_path) >= sizeof(((sc_lock_holder *)0)->socket))
        return sc_fail(c, SC_E_USAGE, "the daemon socket path must be absolute and short");
    n = snprintf(line, sizeof line, "%ld\nsotto daemon\nsocket %s\n", (long)getpid(), socket_path);
    if (n < 0 || (size_t)n >= sizeof line)
        return sc_fail(c, SC_E_USAGE, "the daemon socket path is too long");
    if (ftruncate(c->lock_fd, 0) != 0 || pwrite(c->lock_fd, line, (size_t)n, 0) != (ssize_t)n)
        return sc_fail(c, SC_E_STORE, "cannot write the account lock file: %s", strerror(errno));
    return SC_OK;
}

int sc_lock(sc_client *c, const char *command, sc_lock_holder *holder)
{
    char path[4096], line[160];
    struct flock fl;
    int fd, n;

    if (holder)
        memset(holder, 0, sizeof *holder);
    if (c->lock_fd >= 0)
        return SC_OK; /* held already by this sc_client */
    if ((size_t)snprintf(path, sizeof path, "%s/%s", c->dir, LOCK_FILE) >= sizeof path)
        return sc_fail(c, SC_E_INTERNAL, "account directory path too long");
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return sc_fail(c, SC_E_STORE, "cannot open %s: %s", path, strerror(errno));
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        sc_lock_holder h;
        int e = errno;
        memset(&h, 0, sizeof h);
        if (e != EAGAIN && e != EACCES) {
            close(fd);
            return sc_fail(c, SC_E_STORE, "cannot lock %s: %s", path, strerror(e));
        }
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
            h.pid = (long)fl.l_pid;
        read_holder(fd, &h);
        close(fd);
        if (holder)
            *holder = h;
        return sc_fail(c, SC_E_BUSY, "account %s is in use by pid %ld (%s)", c->account, h.pid,
                       h.command[0] ? h.command : "sotto");
    }
    n = snprintf(line, sizeof line, "%ld\n%s\n", (long)getpid(), command ? command : "sotto");
    if (n < 0 || (size_t)n >= sizeof line)
        n = snprintf(line, sizeof line, "%ld\nsotto\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != (ssize_t)n) {
        /* the lock holds all the same; only the name shown to others is missing */
    }
    c->lock_fd = fd;
    return SC_OK;
}

void sc_unlock(sc_client *c)
{
    if (c->lock_fd >= 0) {
        (void)ftruncate(c->lock_fd, 0);
        close(c->lock_fd); /* drops the fcntl lock */
        c->lock_fd = -1;
    }
}

void sc_wake_publish(sc_client *c, sc_conn *conn)
{
    pthread_mutex_lock(&c->wake_mu);
    c->wake_conn = conn;
    pthread_mutex_unlock(&c->wake_mu);
}

void sc_wake(sc_client *c)
{
    pthread_mutex_lock(&c->wake_mu);
    sc_conn_cancel_wait(c->wake_conn);
    pthread_mutex_unlock(&c->wake_mu);
}
