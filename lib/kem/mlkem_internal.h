/*
 * lib/kem/mlkem_internal.h -- internals of lib/kem/mlkem.c exposed for the
 * unit tests only (not exported from libsotto.so).
 */
#ifndef SOTTO_KEM_MLKEM_INTERNAL_H
#define SOTTO_KEM_MLKEM_INTERNAL_H

#include <stdint.h>

/* floor(x / 3329) by the multiply-shift mlkem.c uses; exact for x < 2^24. */
uint32_t sotto_mlkem_div_q(uint32_t x);
/* zeta^BitRev7(i) mod q (FIPS 203 section 4.3), i < 128. */
uint16_t sotto_mlkem_zeta(unsigned i);

#endif
