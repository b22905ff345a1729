/*
 * sotto/common.h -- macros shared by every public header of libsotto.
 *
 * SOTTO_API marks a function exported from libsotto.so (everything else is
 * built with -fvisibility=hidden). SOTTO_WUR marks a function whose result
 * must be checked: every fallible libsotto function returns 0 (SOTTO_OK) on
 * success or a negative SOTTO_ERR_* code (see sotto/error.h).
 */
#ifndef SOTTO_COMMON_H
#define SOTTO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define SOTTO_API __attribute__((visibility("default")))
#define SOTTO_WUR __attribute__((warn_unused_result))
#else
#define SOTTO_API
#define SOTTO_WUR
#endif

#ifdef __cplusplus
#define SOTTO_STATIC_N(n)
#else
/* Fixed-size array parameter: the caller must pass at least n bytes. */
#define SOTTO_STATIC_N(n) static n
#endif

#endif /* SOTTO_COMMON_H */
