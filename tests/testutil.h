/*
 * tests/testutil.h -- helpers shared by the tests: hex, vector files.
 */
#ifndef SOTTO_TESTUTIL_H
#define SOTTO_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Decodes hex (any case) into a malloc()ed buffer; aborts the test on bad hex. */
uint8_t *tu_unhex(const char *hex, size_t *len);
/* Decodes exactly `len` bytes of hex into out; aborts on mismatch. */
void tu_unhex_into(const char *hex, uint8_t *out, size_t len);
/* Hex-encodes into a static-per-call malloc()ed string (caller frees). */
char *tu_hex(const uint8_t *p, size_t len);
/* Path of a file under shared/ (SOTTO_SHARED_DIR or ../shared); caller frees. */
char *tu_shared_path(const char *rel);
/* Loads a Wycheproof JSON file under shared/vectors/wycheproof/; aborts if missing. */
json_t *tu_load_wycheproof(const char *file);
/* Reads a whole file; returns NULL if missing. Caller frees. */
uint8_t *tu_read_file(const char *path, size_t *len);

#endif
