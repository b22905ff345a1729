/*
 * server/disk.h -- the global disk budget (issue 12).
 *
 * Design: new envelopes and uploads are refused before the data directory
 * grows past data_dir_max (0 = no such limit) or the file system's free
 * space falls under disk_min_free; reads, acks and everything that frees
 * space keep working. The usage is measured (the database files every
 * 250 ms at most, the attachments directory every 10 s at most, statvfs
 * for free space) and, between measurements, what was admitted is added to
 * the estimate, so a burst cannot slip past a stale measurement.
 */
#ifndef SOTTOD_DISK_H
#define SOTTOD_DISK_H

#include <stdbool.h>
#include <stdint.h>

struct sottod_server;

typedef struct sottod_disk {
    uint64_t db_bytes;           /* sottod.db + -wal + -shm, as last measured */
    uint64_t att_bytes;          /* attachments/, as last measured */
    uint64_t free_bytes;         /* statvfs f_bavail, as last measured */
    uint64_t admitted;           /* admitted since the last db measurement */
    int64_t db_at_us, att_at_us; /* monotonic time of the measurements (0 = never) */
    /* sottod.db, open for reading its header for the server's lifetime
     * (-1: not yet / failed). Never closed while the store is open: on
     * Linux closing ANY descriptor of a file drops every POSIX lock this
     * process holds on it -- SQLite's locks included, after which another
     * process may delete the live WAL. sottod_disk_close() runs after
     * sottod_store_close(). */
    int db_fd;
    bool db_fd_tried;
} sottod_disk;

/* Closes the descriptor above; only after the store was closed. */
void sottod_disk_close(struct sottod_server *srv);

/* True if `incoming` more bytes fit the budget (and counts them as
 * admitted); false if they must be refused. */
bool sottod_disk_admit(struct sottod_server *srv, uint64_t incoming);

#endif /* SOTTOD_DISK_H */
