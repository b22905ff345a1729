/*
 * server/disk.c -- the global disk budget (see disk.h).
 */
#include "disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "sottod.h"

#define DB_EVERY_US (250 * 1000)
#define ATT_EVERY_US (10 * 1000000)

static uint64_t file_bytes(const char *dir, const char *name)
{
    char path[SOTTOD_PATH_MAX + 32];
    struct stat sb;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return 0;
    if (stat(path, &sb) != 0)
        return 0;
    return (uint64_t)sb.st_blocks * 512u;
}

/* The database's live bytes: (pages - free pages) * page size from the
 * SQLite file header (as of the last checkpoint; what is newer is in the
 * WAL, counted separately), so space freed by deleted envelopes counts as
 * free although the file does not shrink. Falls back to the file size. */
static uint64_t db_live_bytes(sottod_disk *dk, const char *dir)
{
    char path[SOTTOD_PATH_MAX + 32];
    static const uint8_t magic[16] = "SQLite format 3";
    uint8_t h[100];
    bool is_db = true;
    if (!dk->db_fd_tried) {
        /* opened once and kept (see disk.h: a close would drop SQLite's locks) */
        dk->db_fd_tried = true;
        dk->db_fd = -1;
        if (snprintf(path, sizeof(path), "%s/sottod.db", dir) < (int)sizeof(path))
            dk->db_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (dk->db_fd < 0)
        return file_bytes(dir, "sottod.db");
    ssize_t n = pread(dk->db_fd, h, sizeof(h), 0);
    for (size_t i = 0; n == (ssize_t)sizeof(h) && i < sizeof magic; i++)
        is_db = is_db && h[i] == magic[i];
    if (n != (ssize_t)sizeof(h) || !is_db)
        return file_bytes(dir, "sottod.db");
    uint32_t psz = ((uint32_t)h[16] << 8) | h[17];
    uint64_t page = psz == 1 ? 65536u : psz;
    uint32_t pages =
        ((uint32_t)h[28] << 24) | ((uint32_t)h[29] << 16) | ((uint32_t)h[30] << 8) | h[31];
    uint32_t freel =
        ((uint32_t)h[36] << 24) | ((uint32_t)h[37] << 16) | ((uint32_t)h[38] << 8) | h[39];
    if (page < 512 || pages == 0 || freel > pages)
        return file_bytes(dir, "sottod.db");
    return (uint64_t)(pages - freel) * page;
}

static uint64_t dir_bytes(const char *dir, const char *name)
{
    char path[SOTTOD_PATH_MAX + 32];
    uint64_t total = 0;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return 0;
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (e->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_blocks * 512u;
    }
    closedir(d);
    return total;
}

static void measure(sottod_server *srv, int64_t now)
{
    sottod_disk *dk = &srv->disk;
    const char *dir = srv->cfg.data_dir;
    if (dk->db_at_us == 0 || now - dk->db_at_us >= DB_EVERY_US) {
        struct statvfs vs;
        dk->db_bytes = db_live_bytes(dk, dir) + file_bytes(dir, "sottod.db-wal") +
                       file_bytes(dir, "sottod.db-shm");
        if (statvfs(dir, &vs) == 0)
            dk->free_bytes = (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize;
        dk->admitted = 0;
        dk->db_at_us = now;
    }
    if (dk->att_at_us == 0 || now - dk->att_at_us >= ATT_EVERY_US) {
        dk->att_bytes = dir_bytes(dir, "attachments");
        dk->att_at_us = now;
    }
}

bool sottod_disk_admit(sottod_server *srv, uint64_t incoming)
{
    sottod_disk *dk = &srv->disk;
    measure(srv, sottod_mono_us());
    uint64_t want = dk->admitted + incoming;
    if (srv->cfg.data_dir_max != 0 && dk->db_bytes + dk->att_bytes + want > srv->cfg.data_dir_max)
        return false;
    if (dk->free_bytes < srv->cfg.disk_min_free + want)
        return false;
    dk->admitted += incoming;
    return true;
}

void sottod_disk_close(sottod_server *srv)
{
    if (srv->disk.db_fd_tried && srv->disk.db_fd >= 0)
        close(srv->disk.db_fd);
    srv->disk.db_fd = -1;
    srv->disk.db_fd_tried = false;
}
