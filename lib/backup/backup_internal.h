/*
 * lib/backup/backup_internal.h -- the seal and open steps of sotto/backup.h
 * with the Argon2id bounds, salt and nonce passed in (internal header, not
 * installed; the functions are hidden in libsotto.so).
 *
 * The public functions call these with the bounds of docs/protocol.md
 * "Backup file" and fresh random salt and nonce. Unit tests and the fuzz
 * target call them with cheap bounds (Argon2id at its 8 KiB minimum) so
 * that thousands of files can be opened per second, and with a fixed salt
 * and nonce for the known answer. No application can lower the floor.
 */
#ifndef SOTTO_LIB_BACKUP_INTERNAL_H
#define SOTTO_LIB_BACKUP_INTERNAL_H

#include "sotto/backup.h"

/* Accepted Argon2id parameters: min <= params <= max, field by field. */
typedef struct sotto_backup_limits {
    sotto_backup_params min;
    sotto_backup_params max;
} sotto_backup_limits;

/* The bounds of the public API: INTERACTIVE .. SOTTO_BACKUP_*_MAX. */
extern const sotto_backup_limits sotto_backup_public_limits;

/* sotto_backup_seal() with explicit params (required), salt, nonce and
 * bounds. Same contract and errors. */
SOTTO_WUR int sotto_backup_seal_with(uint8_t *out, size_t out_cap, size_t *out_len,
                                     const uint8_t *payload, size_t payload_len,
                                     const sotto_recovery_code *code,
                                     const sotto_backup_params *params,
                                     const uint8_t salt[SOTTO_BACKUP_SALT_BYTES],
                                     const uint8_t nonce[SOTTO_BACKUP_NONCE_BYTES],
                                     const sotto_backup_limits *limits);

/* sotto_backup_open() with explicit bounds. Same contract and errors. */
SOTTO_WUR int sotto_backup_open_with(uint8_t *out, size_t out_cap, size_t *out_len,
                                     const uint8_t *file, size_t file_len,
                                     const sotto_recovery_code *code,
                                     const sotto_backup_limits *limits);

/* sotto_backup_read_params() with explicit bounds. */
SOTTO_WUR int sotto_backup_read_params_with(const uint8_t *file, size_t len,
                                            sotto_backup_params *out,
                                            const sotto_backup_limits *limits);

#endif /* SOTTO_LIB_BACKUP_INTERNAL_H */
