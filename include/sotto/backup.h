/*
 * sotto/backup.h -- account recovery: a backup file sealed with a random
 * recovery code (issue 8, "Account recovery").
 *
 * Spec: docs/protocol.md "Backup file". The payload is opaque here (the
 * client puts the account key, contacts, groups ... in it); this module
 * only seals and opens it.
 *
 * Recovery code: 30 decimal digits (log2(10^30) = 99.66 bits), each drawn
 * with libsodium's randombytes_uniform(10), shown as six groups of five
 * separated by spaces. Parsing accepts spaces and dashes between digits.
 *
 * File (integers big-endian):
 *
 *   magic "SOTTO-BACKUP-V1\n" (16) | opslimit (4) | memlimit (8) |
 *   salt (16) | nonce (24) | ciphertext (payload length + 16)
 *
 *   key        = Argon2id (crypto_pwhash, ALG_ARGON2ID13) of the 30 ASCII
 *                digits (no separators), salt, opslimit, memlimit: 32 bytes
 *   ciphertext = XChaCha20-Poly1305-IETF (crypto_aead_xchacha20poly1305_ietf)
 *                of the payload under key and nonce, with the whole 68-byte
 *                header as associated data
 *
 * Opening refuses Argon2id parameters below libsodium's INTERACTIVE
 * (opslimit 2, memlimit 64 MiB) or above SOTTO_BACKUP_OPSLIMIT_MAX /
 * SOTTO_BACKUP_MEMLIMIT_MAX before deriving anything, so a file cannot make
 * the reader do unbounded work, nor be brute-forced more cheaply than the
 * floor allows.
 *
 * Buffers are the caller's (nothing allocates but Argon2id's own working
 * memory). Recovery codes and opened payloads are secret: wipe them.
 */
#ifndef SOTTO_BACKUP_H
#define SOTTO_BACKUP_H

#include <stdbool.h>

#include "sotto/common.h"
#include "sotto/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_RECOVERY_CODE_DIGITS 30
#define SOTTO_RECOVERY_CODE_GROUP 5 /* digits per displayed group */
/* "ddddd ddddd ddddd ddddd ddddd ddddd" and its NUL: 30 + 5 + 1 bytes. */
#define SOTTO_RECOVERY_CODE_TEXT_BYTES 36
/* sotto_recovery_code_parse() reads at most this many bytes; longer input
 * (with its NUL) is refused. */
#define SOTTO_RECOVERY_CODE_INPUT_MAX 128

#define SOTTO_BACKUP_MAGIC "SOTTO-BACKUP-V1\n"
#define SOTTO_BACKUP_MAGIC_BYTES 16
#define SOTTO_BACKUP_SALT_BYTES 16
#define SOTTO_BACKUP_NONCE_BYTES 24
#define SOTTO_BACKUP_TAG_BYTES 16
/* magic 16 + opslimit 4 + memlimit 8 + salt 16 + nonce 24 */
#define SOTTO_BACKUP_HEADER_BYTES 68
/* A sealed file is the payload plus this many bytes. */
#define SOTTO_BACKUP_OVERHEAD (SOTTO_BACKUP_HEADER_BYTES + SOTTO_BACKUP_TAG_BYTES)
/* Largest payload (256 MiB); larger files are refused unread. */
#define SOTTO_BACKUP_PAYLOAD_MAX ((size_t)256 * 1024 * 1024)
/* Upper bounds on the Argon2id parameters a file may ask for. */
#define SOTTO_BACKUP_OPSLIMIT_MAX 32u
#define SOTTO_BACKUP_MEMLIMIT_MAX ((uint64_t)1024 * 1024 * 1024) /* 1 GiB */

/* A recovery code: 30 ASCII digits and a NUL. Secret: wipe it
 * (sotto_recovery_code_wipe) when done. */
typedef struct sotto_recovery_code {
    char digits[SOTTO_RECOVERY_CODE_DIGITS + 1];
} sotto_recovery_code;

/* Argon2id cost, stored in the file header. */
typedef struct sotto_backup_params {
    uint32_t opslimit; /* passes */
    uint64_t memlimit; /* bytes */
} sotto_backup_params;

/*
 * Draws a new recovery code (randombytes_uniform(10) per digit). Returns
 * SOTTO_OK or SOTTO_ERR_INVALID_ARGUMENT (NULL). `*out` is secret.
 */
SOTTO_API SOTTO_WUR int sotto_recovery_code_generate(sotto_recovery_code *out);

/*
 * Writes the code for display as six groups of five digits separated by
 * single spaces into `text` (SOTTO_RECOVERY_CODE_TEXT_BYTES bytes,
 * NUL-terminated). `text` is as secret as the code. Returns SOTTO_OK or
 * SOTTO_ERR_INVALID_ARGUMENT (NULL, or a code that is not 30 digits).
 */
SOTTO_API SOTTO_WUR int
sotto_recovery_code_format(const sotto_recovery_code *code,
                           char text[SOTTO_STATIC_N(SOTTO_RECOVERY_CODE_TEXT_BYTES)]);

/*
 * Parses a recovery code typed by the user: a NUL-terminated string of
 * exactly 30 digits with any number of spaces and dashes between or around
 * them (no other character, not even a tab or newline: strip the line end
 * first), shorter than SOTTO_RECOVERY_CODE_INPUT_MAX characters (reads at
 * most that many bytes). Returns
 * SOTTO_OK, SOTTO_ERR_RECOVERY_CODE (another character, fewer or more than
 * 30 digits, too long) or SOTTO_ERR_INVALID_ARGUMENT (NULL); on error
 * `*out` is zeroed.
 */
SOTTO_API SOTTO_WUR int sotto_recovery_code_parse(sotto_recovery_code *out, const char *text);

/* Wipes a recovery code (sodium_memzero). NULL is a no-op. */
SOTTO_API void sotto_recovery_code_wipe(sotto_recovery_code *code);

/* The parameters sotto_backup_seal() uses when given NULL: libsodium's
 * crypto_pwhash_OPSLIMIT_MODERATE (3) and MEMLIMIT_MODERATE (256 MiB). */
SOTTO_API void sotto_backup_params_default(sotto_backup_params *out);

/*
 * Seals `payload_len` bytes of `payload` (may be NULL when 0; at most
 * SOTTO_BACKUP_PAYLOAD_MAX) with `code` into `out` (`out_cap` bytes, at
 * least payload_len + SOTTO_BACKUP_OVERHEAD); *out_len gets exactly that
 * length. `params` NULL means sotto_backup_params_default(); explicit
 * parameters must lie in the range sotto_backup_open() accepts. Salt and
 * nonce are fresh random bytes. Takes the time and memory of one Argon2id
 * run. Returns SOTTO_OK, SOTTO_ERR_INVALID_ARGUMENT (NULL, payload too
 * large, a code that is not 30 digits), SOTTO_ERR_BACKUP_PARAMS,
 * SOTTO_ERR_BUFFER_TOO_SMALL, SOTTO_ERR_NOMEM (Argon2id could not get its
 * memory) or SOTTO_ERR_CRYPTO; on error `out` is zeroed and *out_len is 0.
 * The derived key is wiped before returning.
 */
SOTTO_API SOTTO_WUR int sotto_backup_seal(uint8_t *out, size_t out_cap, size_t *out_len,
                                          const uint8_t *payload, size_t payload_len,
                                          const sotto_recovery_code *code,
                                          const sotto_backup_params *params);

/*
 * Reads the Argon2id parameters of a backup file (untrusted input of `len`
 * bytes) without deriving anything, e.g. to tell the user what opening
 * will cost. Returns SOTTO_OK with `*out` filled, SOTTO_ERR_BACKUP_FORMAT
 * (shorter than header and tag, wrong magic, longer than any payload
 * allows), SOTTO_ERR_BACKUP_PARAMS (out of the accepted range; `*out` still
 * holds them) or SOTTO_ERR_INVALID_ARGUMENT (NULL).
 */
SOTTO_API SOTTO_WUR int sotto_backup_read_params(const uint8_t *file, size_t len,
                                                 sotto_backup_params *out);

/*
 * Opens a backup file (untrusted input of `file_len` bytes) with `code`:
 * checks the header, derives the key, authenticates and decrypts into `out`
 * (`out_cap` bytes, at least file_len - SOTTO_BACKUP_OVERHEAD); *out_len
 * gets the payload length. The payload is secret: the caller wipes it.
 * Returns SOTTO_OK or:
 *   SOTTO_ERR_BACKUP_FORMAT      truncated, wrong magic, too long;
 *   SOTTO_ERR_BACKUP_PARAMS      Argon2id parameters out of range (checked
 *                                before any work);
 *   SOTTO_ERR_BACKUP_WRONG_CODE  authentication failed: a wrong code, or a
 *                                file altered anywhere after the magic (the
 *                                two cannot be told apart);
 *   SOTTO_ERR_BUFFER_TOO_SMALL, SOTTO_ERR_NOMEM, SOTTO_ERR_INVALID_ARGUMENT.
 * On error `out` (when not NULL) is zeroed and *out_len (when not NULL) is
 * 0: no plaintext is ever returned from a file that does not authenticate.
 */
SOTTO_API SOTTO_WUR int sotto_backup_open(uint8_t *out, size_t out_cap, size_t *out_len,
                                          const uint8_t *file, size_t file_len,
                                          const sotto_recovery_code *code);

#ifdef __cplusplus
}
#endif
#endif /* SOTTO_BACKUP_H */
