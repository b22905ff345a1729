/*
 * server/datadir.c -- the data directory lock and the "brand new?" test
 * (see datadir.h).
 */
#include "datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include "config.h"
#include "log.h"

/* Reads the pid written in the lock file; 0 if none. */
static long pid_in_file(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    char *end = NULL;
    long pid;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    pid = strtol(buf, &end, 10);
    if (end == buf || pid <= 0 || (*end != '\n' && *end != '\0'))
        return 0;
    return pid;
}

int sottod_datadir_lock(const char *dir, char *why, size_t why_cap)
{
    char path[SOTTOD_PATH_MAX + 16], text[32];
    struct flock fl;
    int fd, n;

    if ((size_t)snprintf(path, sizeof(path), "%s/sottod.lock", dir) >= sizeof(path)) {
        snprintf(why, why_cap, "data directory path too long");
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, why_cap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int err = errno;
        long pid = 0;

        if (err == EACCES || err == EAGAIN) {
            struct flock who;

            memset(&who, 0, sizeof(who));
            who.l_type = F_WRLCK;
            who.l_whence = SEEK_SET;
            if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK && who.l_pid > 0)
                pid = (long)who.l_pid;
            else
                pid = pid_in_file(fd);
            if (pid > 0)
                snprintf(why, why_cap,
                         "data directory %s is in use by another sottod (pid %ld); "
                         "refusing to start a second server on it",
                         dir, pid);
            else
                snprintf(why, why_cap,
                         "data directory %s is in use by another sottod (pid unknown); "
                         "refusing to start a second server on it",
                         dir);
        } else {
            snprintf(why, why_cap, "cannot lock %s: %s", path, strerror(err));
        }
        close(fd);
        return -1;
    }
    /* The lock is what matters; the pid text is for people, so failing to
     * write it is not an error. */
    n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    bool wrote = ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)n, 0) == n;
    (void)wrote;
    return fd;
}

void sottod_datadir_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* True if the directory at path exists and has an entry. */
static bool dir_has_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    bool any = false;

    if (d == NULL)
        return false;
    while (!any && (e = readdir(d)) != NULL)
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return any;
}

bool sottod_datadir_is_new(const char *dir, char *found, size_t found_cap)
{
    static const char *const files[] = {"sottod.db", "sottod.db-wal", "sottod.db-shm",
                                        "sottod.db-journal", "sottod.pid"};
    static const char *const dirs[] = {"tls", "attachments"};
    char path[SOTTOD_PATH_MAX + 32];
    struct stat sb;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        if (lstat(path, &sb) == 0) {
            snprintf(found, found_cap, "%s", files[i]);
            return false;
        }
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, dirs[i]);
        if (dir_has_entries(path)) {
            snprintf(found, found_cap, "%s/", dirs[i]);
            return false;
        }
    }
    return true;
}

int sottod_key_file(const char *dir, const char *name, const char *tag, uint8_t out[32],
                    bool may_create, const char *missing_hint, char *why, size_t why_cap)
{
    char path[SOTTOD_PATH_MAX + 32], event[48];
    struct stat sb;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && may_create) {
        randombytes_buf(out, 32);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, out, 32) != 32 || fsync(fd) != 0) {
            snprintf(why, why_cap, "cannot create %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            sodium_memzero(out, 32);
            return -1;
        }
        close(fd);
        snprintf(event, sizeof(event), "%s_key_created", tag);
        sottod_log(SOTTOD_LOG_INFO, event, "file=%s", name);
        return 0;
    }
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(why, why_cap, "%s is missing%s", path,
                     missing_hint != NULL ? missing_hint
                                          : " (start sottod on this data directory once)");
        else
            snprintf(why, why_cap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || sb.st_size != 32 || read(fd, out, 32) != 32) {
        snprintf(why, why_cap, "%s must hold exactly 32 bytes", path);
        close(fd);
        sodium_memzero(out, 32);
        return -1;
    }
    close(fd);
    if ((sb.st_mode & 077) != 0) {
        snprintf(event, sizeof(event), "%s_key_permissions", tag);
        sottod_log(SOTTOD_LOG_WARN, event, "file=%s mode=%o", name, (unsigned)(sb.st_mode & 0777));
    }
    return 0;
}
