/*
 * server/datadir.h -- sottod's data directory: one server at a time, and
 * telling a brand-new directory from one an earlier server used.
 *
 * Design: DATA_DIR/sottod.lock carries a POSIX record lock (fcntl) held for
 * the lifetime of the server process, so a second sottod on the same
 * directory is refused before it touches anything (two writers would hand
 * out the same envelope numbers). The lock is released by the kernel when
 * the process ends, however it ends; the file itself stays. It holds the
 * owner's pid as text, for people. `sottod admin` does not take the lock:
 * it is meant to run next to the server (SQLite WAL).
 */
#ifndef SOTTOD_DATADIR_H
#define SOTTOD_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Takes the lock on dir/sottod.lock (created 0600 if missing) and writes
 * the caller's pid into it. Returns the open descriptor that holds the lock
 * (>= 0; keep it open, sottod_datadir_unlock releases it), or -1 with a
 * one-line reason in why (why_cap bytes): for a lock held by another
 * process it names the directory and that process's pid when the kernel
 * or the file tells it. */
int sottod_datadir_lock(const char *dir, char *why, size_t why_cap);

/* Releases the lock (closes fd). The file is left in place: removing it
 * would let a third server lock a new file while a second still waits on
 * the old one. fd < 0 is a no-op. */
void sottod_datadir_unlock(int fd);

/* True if dir holds nothing an earlier sottod left: no sottod.db (nor its
 * -wal, -shm or -journal), no sottod.pid, and no file in tls/ or
 * attachments/. Other files (a log, a config file) do not count. If false,
 * the first such entry's name goes to found (found_cap bytes). */
bool sottod_datadir_is_new(const char *dir, char *found, size_t found_cap);

/* Reads the server key file dir/name (exactly 32 bytes: a private key or a
 * seed) into out. When the file is missing and may_create, it is created
 * instead: 32 random bytes, mode 0600, fsynced, and "<tag>_key_created" is
 * logged. A readable file with group/other permissions logs
 * "<tag>_key_permissions" (a warning) and is still used. Returns 0, or -1
 * with a one-line reason in why (why_cap bytes); missing_hint (may be NULL)
 * replaces the default advice for a missing file. out is wiped on failure;
 * on success the caller owns the secret and must wipe it (sodium_memzero). */
int sottod_key_file(const char *dir, const char *name, const char *tag, uint8_t out[32],
                    bool may_create, const char *missing_hint, char *why, size_t why_cap);

#endif /* SOTTOD_DATADIR_H */
