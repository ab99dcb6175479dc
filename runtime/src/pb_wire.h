/*
 * pb_wire.h — the protobuf wire format's primitives, shared by the codec of fixed
 * messages (typed.c) and the services' frame (rpc_wire.c).
 *
 * Writing goes to a pb_out of fixed capacity that counts what does not fit, so one
 * encoder serves both to size a message (capacity 0) and to write it. Reading takes
 * from a pb_in and answers false on anything that does not decode — a varint cut short
 * or longer than ten bytes, a length that overruns the input, a group or an unknown
 * wire type — leaving the caller to name the message and field in its error.
 * pb_get_field reads a whole field (tag and value): the decoders that walk a message
 * field by field (typed.c's shoal__pb_field, the broker's Request decoder and the
 * client's Reply decoder in manager_value.c) use it, inlined. The writers serve the
 * hand-packed broker messages too (manager_value.c: the broker's replies, the
 * client's requests).
 */
#ifndef SHOAL_PB_WIRE_H
#define SHOAL_PB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* An output buffer that counts what does not fit. */
typedef struct pb_out {
    uint8_t *p;
    size_t cap, len; /* writing stops once len exceeds cap; len keeps counting */
} pb_out;

static inline void pb_put(pb_out *o, const void *src, size_t n)
{
    if (n && o->p && o->len <= o->cap && n <= o->cap - o->len)
        memcpy(o->p + o->len, src, n);
    o->len += n;
}

/* sint32 / sint64 as protobuf stores them (zigzag: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...);
 * an int32's code fits in 32 bits. */
static inline uint64_t pb_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t pb_unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* A varint's length in bytes (1 to 10). */
static inline unsigned pb_varint_len(uint64_t v)
{
    unsigned n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

/* Writes v as a varint at q, which has room for it (pb_varint_len: 10 at most);
 * returns the byte after it. */
static inline uint8_t *pb_write_varint(uint8_t *q, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        *q++ = (uint8_t)(v | 0x80);
    *q++ = (uint8_t)v;
    return q;
}

static inline void pb_put_varint(pb_out *o, uint64_t v)
{
    if (v < 0x80) { /* one byte: most tags and lengths */
        if (o->p && o->len < o->cap)
            o->p[o->len] = (uint8_t)v;
        o->len++;
        return;
    }
    uint8_t b[10];
    pb_put(o, b, (size_t)(pb_write_varint(b, v) - b));
}

static inline void pb_put_tag(pb_out *o, uint32_t number, int wt)
{
    pb_put_varint(o, ((uint64_t)number << 3) | (uint64_t)wt);
}

/* A length-delimited field: tag, length, bytes. */
static inline void pb_put_len(pb_out *o, uint32_t number, const void *data, size_t n)
{
    pb_put_tag(o, number, WT_LEN);
    pb_put_varint(o, n);
    pb_put(o, data, n);
}

typedef struct pb_in {
    const uint8_t *p, *end;
} pb_in;

static inline bool pb_get_varint(pb_in *in, uint64_t *v)
{
    if (in->p < in->end && !(*in->p & 0x80)) { /* one byte: most tags and lengths */
        *v = *in->p++;
        return true;
    }
    *v = 0;
    for (int shift = 0; shift < 64 && in->p < in->end; shift += 7) {
        uint8_t b = *in->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static inline bool pb_get_fixed(pb_in *in, size_t n, uint64_t *v)
{
    if ((size_t)(in->end - in->p) < n)
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v |= (uint64_t)in->p[i] << (8 * i);
    in->p += n;
    return true;
}

/* A length-delimited field's bytes (after its tag). */
static inline bool pb_get_len(pb_in *in, const uint8_t **data, size_t *n)
{
    uint64_t v;
    if (!pb_get_varint(in, &v) || v > (uint64_t)(in->end - in->p))
        return false;
    *data = in->p;
    *n = (size_t)v;
    in->p += v;
    return true;
}

/* Skips a field of wire type wt (after its tag). */
static inline bool pb_skip(pb_in *in, int wt)
{
    uint64_t v;
    const uint8_t *d;
    size_t n;
    switch (wt) {
    case WT_VARINT:
        return pb_get_varint(in, &v);
    case WT_I64:
        return pb_get_fixed(in, 8, &v);
    case WT_I32:
        return pb_get_fixed(in, 4, &v);
    case WT_LEN:
        return pb_get_len(in, &d, &n);
    default:
        return false; /* groups (3, 4) and unknown wire types */
    }
}

/* A field as pb_get_field reads it: its number and wire type; a varint's value, or a
 * fixed field's (little-endian, as an integer); a length-delimited field's bytes. */
typedef struct pb_field {
    uint32_t number;
    int wt;
    uint64_t value;     /* WT_VARINT, WT_I64, WT_I32 */
    const uint8_t *sub; /* WT_LEN: its bytes (in the input) and their length */
    size_t len;
} pb_field;

/* Reads the next field (its tag, then its value). False when it does not decode:
 * field number 0 or over 2^29 - 1, a group or an unknown wire type, a value cut
 * short. */
static inline __attribute__((always_inline)) bool pb_get_field(pb_in *in, pb_field *f)
{
    uint64_t tag;
    if (!pb_get_varint(in, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return false;
    f->number = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    switch (f->wt) {
    case WT_VARINT:
        return pb_get_varint(in, &f->value);
    case WT_LEN:
        return pb_get_len(in, &f->sub, &f->len);
    case WT_I64:
        return pb_get_fixed(in, 8, &f->value);
    case WT_I32:
        return pb_get_fixed(in, 4, &f->value);
    default:
        return false;
    }
}

#endif
