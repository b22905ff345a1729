/* Minimal protobuf encoding (see pb.h). */
#include "common/pb.h"

int sotto_pb_next(sotto_rbuf *r, sotto_pb_field *f)
{
    uint64_t key;
    size_t save = r->pos;
    if (sotto_rbuf_remaining(r) == 0)
        return 0;
    if (sotto_rbuf_get_varint(r, &key) != SOTTO_OK)
        goto bad;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        goto bad;
    f->num = (uint32_t)(key >> 3);
    f->wire_type = (uint8_t)(key & 7);
    f->value = 0;
    f->ptr = NULL;
    f->len = 0;
    switch (f->wire_type) {
    case SOTTO_PB_VARINT:
        if (sotto_rbuf_get_varint(r, &f->value) != SOTTO_OK)
            goto bad;
        break;
    case SOTTO_PB_I64: {
        const uint8_t *p;
        if (sotto_rbuf_get_ptr(r, 8, &p) != SOTTO_OK)
            goto bad;
        for (int i = 7; i >= 0; i--)
            f->value = (f->value << 8) | p[i];
        break;
    }
    case SOTTO_PB_I32: {
        const uint8_t *p;
        if (sotto_rbuf_get_ptr(r, 4, &p) != SOTTO_OK)
            goto bad;
        for (int i = 3; i >= 0; i--)
            f->value = (f->value << 8) | p[i];
        break;
    }
    case SOTTO_PB_LEN: {
        uint64_t n;
        if (sotto_rbuf_get_varint(r, &n) != SOTTO_OK || n > sotto_rbuf_remaining(r))
            goto bad;
        if (sotto_rbuf_get_ptr(r, (size_t)n, &f->ptr) != SOTTO_OK)
            goto bad;
        f->len = (size_t)n;
        break;
    }
    default:
        goto bad;
    }
    return 1;
bad:
    r->pos = save;
    return SOTTO_ERR_INVALID_MESSAGE;
}

void sotto_pb_put_tag(sotto_wbuf *w, uint32_t num, uint8_t wire_type)
{
    sotto_wbuf_put_varint(w, ((uint64_t)num << 3) | wire_type);
}

void sotto_pb_put_uint(sotto_wbuf *w, uint32_t num, uint64_t v)
{
    sotto_pb_put_tag(w, num, SOTTO_PB_VARINT);
    sotto_wbuf_put_varint(w, v);
}

void sotto_pb_put_bytes(sotto_wbuf *w, uint32_t num, const void *p, size_t n)
{
    sotto_pb_put_tag(w, num, SOTTO_PB_LEN);
    sotto_wbuf_put_varint(w, n);
    sotto_wbuf_put(w, p, n);
}

void sotto_pb_put_fixed64(sotto_wbuf *w, uint32_t num, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    sotto_pb_put_tag(w, num, SOTTO_PB_I64);
    sotto_wbuf_put(w, b, 8);
}

int sotto_pb_get_u32(const sotto_pb_field *f, uint32_t *out)
{
    if (f->wire_type != SOTTO_PB_VARINT || f->value > UINT32_MAX)
        return SOTTO_ERR_INVALID_MESSAGE;
    *out = (uint32_t)f->value;
    return SOTTO_OK;
}

int sotto_pb_get_bytes(const sotto_pb_field *f, const uint8_t **p, size_t *n)
{
    if (f->wire_type != SOTTO_PB_LEN)
        return SOTTO_ERR_INVALID_MESSAGE;
    *p = f->ptr;
    *n = f->len;
    return SOTTO_OK;
}
