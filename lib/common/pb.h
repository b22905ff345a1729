/*
 * lib/common/pb.h -- minimal protobuf (proto2) encoding on top of buf.h
 * (internal header).
 *
 * libsotto writes the Signal wire messages by hand rather than through
 * protobuf-c: the output must match libsignal-protocol-c byte for byte
 * (fields in ascending number order, every field it always writes), and
 * the library must not depend on a protobuf runtime (the interop peer
 * exports its own copy of protobuf-c). Only the wire types the Signal
 * messages use are supported: varint (0), 64-bit (1), length-delimited (2)
 * and 32-bit (5). Groups (3, 4) are rejected as malformed.
 */
#ifndef SOTTO_LIB_PB_H
#define SOTTO_LIB_PB_H

#include "common/buf.h"

enum { SOTTO_PB_VARINT = 0, SOTTO_PB_I64 = 1, SOTTO_PB_LEN = 2, SOTTO_PB_I32 = 5 };

/* One decoded field. For LEN fields `ptr`/`len` point into the input. */
typedef struct sotto_pb_field {
    uint32_t num;
    uint8_t wire_type;
    uint64_t value;     /* VARINT, I64, I32 */
    const uint8_t *ptr; /* LEN */
    size_t len;         /* LEN */
} sotto_pb_field;

/*
 * Reads the next field. Returns 1 when a field was read, 0 at the clean end
 * of input, SOTTO_ERR_INVALID_MESSAGE on malformed input (bad tag, field
 * number 0 or > 2^29-1, group wire types, truncated value).
 */
SOTTO_WUR int sotto_pb_next(sotto_rbuf *r, sotto_pb_field *f);

void sotto_pb_put_tag(sotto_wbuf *w, uint32_t num, uint8_t wire_type);
void sotto_pb_put_uint(sotto_wbuf *w, uint32_t num, uint64_t v);
void sotto_pb_put_bytes(sotto_wbuf *w, uint32_t num, const void *p, size_t n);
void sotto_pb_put_fixed64(sotto_wbuf *w, uint32_t num, uint64_t v);

/*
 * Helpers for decoders: take a field's value with type checks.
 * sotto_pb_get_u32 rejects a wire type other than VARINT and a value > 2^32-1.
 * sotto_pb_get_bytes rejects a wire type other than LEN.
 */
SOTTO_WUR int sotto_pb_get_u32(const sotto_pb_field *f, uint32_t *out);
SOTTO_WUR int sotto_pb_get_bytes(const sotto_pb_field *f, const uint8_t **p, size_t *n);

#endif /* SOTTO_LIB_PB_H */
