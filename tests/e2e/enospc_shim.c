/*
 * tests/e2e/enospc_shim.c -- an LD_PRELOAD library that plays a full local
 * disk for the `sotto` client's attachment files, for
 * e2e_attachment_disk_full.sh. No root, no loop mount: writes to chosen
 * files in a directory named `attachments` fail with ENOSPC, everything
 * else (the SQLite store, stdout) works, which is what a nearly full disk
 * looks like when a small message still fits and a file does not.
 *
 *   SOTTO_E2E_ENOSPC=PREFIX[:PREFIX...]  fail writes to files in a directory
 *                                        named "attachments" whose name
 *                                        starts with one of the prefixes
 *                                        (".download-" the ciphertext,
 *                                        ".plain-" the decrypted file, "*"
 *                                        any file); unset: no effect
 *   SOTTO_E2E_ENOSPC_MARK=FILE           created the first time a write was
 *                                        refused, so the test knows the
 *                                        fault was really injected
 *
 * Interposed: write, pwrite, fwrite, fsync, fdatasync (the client's calls go
 * through the PLT; glibc's stdio flushes do not, which is why fwrite itself
 * is interposed). Test code only; never linked into anything; not built with
 * sanitizers (the ASan runtime must come first in the library list).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef size_t (*fwrite_fn)(const void *, size_t, size_t, FILE *);
typedef int (*fsync_fn)(int);

static int g_marked;

/* Does fd name a file this process must not be able to write? */
static int refused(int fd)
{
    const char *spec = getenv("SOTTO_E2E_ENOSPC");
    char link[64], path[4096];
    const char *base, *dir;
    ssize_t n;

    if (spec == NULL || spec[0] == '\0' || fd < 0)
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    base = strrchr(path, '/');
    if (base == NULL || base == path)
        return 0;
    /* the directory's own name must be "attachments" */
    dir = base;
    while (dir > path && dir[-1] != '/')
        dir--;
    if ((size_t)(base - dir) != strlen("attachments") ||
        strncmp(dir, "attachments", (size_t)(base - dir)) != 0)
        return 0;
    base++;
    while (*spec) {
        const char *end = strchr(spec, ':');
        size_t len = end ? (size_t)(end - spec) : strlen(spec);
        if ((len == 1 && spec[0] == '*') || (len > 0 && strncmp(base, spec, len) == 0))
            return 1;
        spec += len;
        if (*spec == ':')
            spec++;
    }
    return 0;
}

static void mark(void)
{
    const char *m = getenv("SOTTO_E2E_ENOSPC_MARK");
    static write_fn real;
    int fd;

    if (g_marked || m == NULL)
        return;
    g_marked = 1;
    if (real == NULL)
        real = (write_fn)dlsym(RTLD_NEXT, "write");
    fd = open(m, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        (void)real(fd, "ENOSPC\n", 7);
        close(fd);
    }
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static write_fn real;
    if (real == NULL)
        real = (write_fn)dlsym(RTLD_NEXT, "write");
    if (n > 0 && refused(fd)) {
        mark();
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static pwrite_fn real;
    if (real == NULL)
        real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    if (n > 0 && refused(fd)) {
        mark();
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, n, off);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    static fwrite_fn real;
    if (real == NULL)
        real = (fwrite_fn)dlsym(RTLD_NEXT, "fwrite");
    if (size > 0 && n > 0 && refused(fileno(f))) {
        mark();
        errno = ENOSPC;
        return 0;
    }
    return real(p, size, n, f);
}

int fsync(int fd)
{
    static fsync_fn real;
    if (real == NULL)
        real = (fsync_fn)dlsym(RTLD_NEXT, "fsync");
    if (refused(fd)) {
        mark();
        errno = ENOSPC;
        return -1;
    }
    return real(fd);
}

int fdatasync(int fd)
{
    static fsync_fn real;
    if (real == NULL)
        real = (fsync_fn)dlsym(RTLD_NEXT, "fdatasync");
    if (refused(fd)) {
        mark();
        errno = ENOSPC;
        return -1;
    }
    return real(fd);
}
