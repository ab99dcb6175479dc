/*
 * rpc_wire.c — the frame of the services, in the protobuf wire format.
 *
 * Every transport carries the same bytes: one shoal.rpc.Frame message
 * (schemas/shoal/rpc.proto) per frame, so that a peer written with any protobuf
 * library can speak to a shoal server over nng. The frame is small and flat, so it is
 * encoded and decoded here directly rather than through generated code: encoding is
 * one pass into a buffer sized by a cheap upper bound (most frames fit the sender's
 * stack buffer), decoding uses the wire primitives of pb_wire.h (those of the
 * fixed-message codec; a stream's plain message — call, type and payload, in that
 * order — is read straight, decode_plain). Decoding is strict where it matters
 * for safety — every length is checked against the buffer, a varint has at most ten
 * bytes, a known field must have its wire type — and lenient as protobuf is
 * otherwise: unknown fields are skipped, a repeated scalar keeps its last value.
 */
#include <stdlib.h>
#include <string.h>

#include "pb_wire.h"
#include "rpc_internal.h"

enum {
    F_CALL = 1,
    F_TYPE = 2,
    F_FLAGS = 3,
    F_METHOD = 4,
    F_TIMEOUT = 5,
    F_MD = 6,
    F_PAYLOAD = 7,
    F_CODE = 8,
    F_DETAIL = 9,
    F_CREDIT = 10
};

/* ---- encoding ----------------------------------------------------------------------
 *
 * One pass into a buffer of at least rpc__frame_bound() bytes (every field number is
 * below 16, so each tag is one byte; a varint takes at most ten). */

#define VARINT_MAX 10

/* A varint field; proto3: a default (0) is not sent. */
static uint8_t *w_uint(uint8_t *p, unsigned field, uint64_t v)
{
    if (v == 0)
        return p;
    *p++ = (uint8_t)(field << 3 | WT_VARINT);
    return pb_write_varint(p, v);
}

/* A length-delimited field: tag, length, bytes. */
static uint8_t *w_len(uint8_t *p, unsigned field, const void *data, size_t n)
{
    *p++ = (uint8_t)(field << 3 | WT_LEN);
    p = pb_write_varint(p, n);
    if (n)
        memcpy(p, data, n);
    return p + n;
}

/* One metadata pair: a Frame.Pair message (key = 1, value = 2). */
static uint8_t *w_pair(uint8_t *p, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    size_t inner = 2 + pb_varint_len(kl) + kl + pb_varint_len(vl) + vl;
    *p++ = (uint8_t)(F_MD << 3 | WT_LEN);
    p = pb_write_varint(p, inner);
    p = w_len(p, 1, key, kl);
    return w_len(p, 2, value, vl);
}

size_t rpc__frame_bound(const rpc_frame *f, const shoal_rpc_md *md)
{
    size_t n = 6 * (1 + VARINT_MAX) + 3 * (1 + VARINT_MAX) + f->method_len +
               f->payload_len + f->detail_len;
    for (size_t i = 0; md && i < md->count; i++)
        n += 3 * (1 + VARINT_MAX) + strlen(md->items[i].key) + strlen(md->items[i].value);
    return n;
}

/* The fields after call and type, for a frame that has more than a payload (out of
 * line: the common frame's writer stays short). */
__attribute__((noinline)) static uint8_t *w_rest(uint8_t *p, const rpc_frame *f,
                                                 const shoal_rpc_md *md)
{
    p = w_uint(p, F_FLAGS, f->flags);
    if (f->method_len)
        p = w_len(p, F_METHOD, f->method, f->method_len);
    p = w_uint(p, F_TIMEOUT, f->timeout_ns > 0 ? (uint64_t)f->timeout_ns : 0);
    for (size_t i = 0; md && i < md->count; i++)
        p = w_pair(p, md->items[i].key, md->items[i].value);
    if (f->has_payload)
        p = w_len(p, F_PAYLOAD, f->payload, f->payload_len);
    p = w_uint(p, F_CODE, f->code);
    if (f->detail_len)
        p = w_len(p, F_DETAIL, f->detail, f->detail_len);
    return w_uint(p, F_CREDIT, f->credit);
}

size_t rpc__frame_write(uint8_t *buf, const rpc_frame *f, const shoal_rpc_md *md)
{
    uint8_t *p = w_uint(buf, F_CALL, f->call);
    p = w_uint(p, F_TYPE, f->type);
    /* a stream's message (call, type, payload: decode_plain's frame) in one test */
    if (!md && f->has_payload && !(f->flags | f->code | f->credit) &&
        !(f->method_len | f->detail_len | (f->timeout_ns > 0)))
        p = w_len(p, F_PAYLOAD, f->payload, f->payload_len);
    else
        p = w_rest(p, f, md);
    return (size_t)(p - buf);
}

int rpc__frame_encode(const rpc_frame *f, const shoal_rpc_md *md, uint8_t **out,
                      size_t cap, size_t *len)
{
    size_t bound = rpc__frame_bound(f, md);
    uint8_t *buf = bound <= cap ? *out : malloc(bound);
    if (!buf)
        return shoal__err(SHOAL_ENOMEM, "rpc frame: out of memory");
    *out = buf;
    *len = rpc__frame_write(buf, f, md);
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------- */

static int bad_varint(void)
{
    return shoal__err(SHOAL_EINVALID_DATA,
                      "rpc frame: a varint is cut short or longer than ten bytes");
}

/* A varint; most in a frame (tags, types, small numbers) take one byte. */
static inline int r_varint(pb_in *r, uint64_t *v)
{
    if (SHOAL_LIKELY(r->p < r->end && *r->p < 0x80)) {
        *v = *r->p++;
        return 0;
    }
    return pb_get_varint(r, v) ? 0 : bad_varint();
}

/* A length-delimited field's bytes. */
static inline int r_len(pb_in *r, const uint8_t **data, size_t *len)
{
    uint64_t n;
    int rc = r_varint(r, &n);
    if (rc < 0)
        return rc;
    if (n > (uint64_t)(r->end - r->p))
        return shoal__err(SHOAL_EINVALID_DATA,
                          "rpc frame: a length-delimited field overruns the frame");
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

static int r_skip(pb_in *r, unsigned wt)
{
    return pb_skip(r, (int)wt) ? 0
                               : shoal__err(SHOAL_EINVALID_DATA,
                                            "rpc frame: a field of wire type %u does not "
                                            "decode",
                                            wt);
}

static char *dup_str(const uint8_t *d, size_t n, size_t max)
{
    if (n > max || memchr(d, 0, n))
        return NULL;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, d, n);
        s[n] = 0;
    }
    return s;
}

/* One metadata pair (a Frame.Pair message), appended to md. */
static int r_pair(const uint8_t *d, size_t n, shoal_rpc_md *md)
{
    pb_in r = {d, d + n};
    const uint8_t *kv[2] = {NULL, NULL};
    size_t kvn[2] = {0, 0};
    while (r.p < r.end) {
        uint64_t tag;
        int rc = r_varint(&r, &tag);
        if (rc < 0)
            return rc;
        unsigned field = (unsigned)(tag >> 3), wt = tag & 7;
        if ((field == 1 || field == 2) && wt == WT_LEN)
            rc = r_len(&r, &kv[field - 1], &kvn[field - 1]);
        else
            rc = r_skip(&r, wt);
        if (rc < 0)
            return rc;
    }
    if (!md)
        return 0;
    char *k = dup_str(kv[0] ? kv[0] : (const uint8_t *)"", kvn[0], SHOAL_RPC_KEY_MAX);
    char *v = dup_str(kv[1] ? kv[1] : (const uint8_t *)"", kvn[1], SHOAL_RPC_VALUE_MAX);
    int rc = k && v && *k
                 ? shoal_rpc_md_add(md, k, v)
                 : shoal__err(SHOAL_EINVALID_DATA,
                              "rpc frame: metadata pair with an empty, over-long "
                              "or NUL-holding key or value");
    free(k);
    free(v);
    return rc;
}

static int r_field(pb_in *r, unsigned field, unsigned wt, rpc_frame *f, shoal_rpc_md *md)
{
    uint64_t v = 0;
    const uint8_t *d = NULL;
    size_t n = 0;
    bool is_len =
        field == F_METHOD || field == F_MD || field == F_PAYLOAD || field == F_DETAIL;
    if (field < F_CALL || field > F_CREDIT)
        return r_skip(r, wt);
    if (wt != (is_len ? WT_LEN : WT_VARINT))
        return shoal__err(SHOAL_EINVALID_DATA, "rpc frame: field %u has wire type %u",
                          field, wt);
    int rc = is_len ? r_len(r, &d, &n) : r_varint(r, &v);
    if (rc < 0)
        return rc;
    switch (field) {
    case F_CALL:
        f->call = v;
        break;
    case F_TYPE:
        f->type = (uint32_t)v;
        break;
    case F_FLAGS:
        f->flags = (uint32_t)v;
        break;
    case F_TIMEOUT:
        f->timeout_ns = v > INT64_MAX ? INT64_MAX : (int64_t)v;
        break;
    case F_CODE:
        f->code = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
        break;
    case F_CREDIT:
        f->credit = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
        break;
    case F_METHOD:
        f->method = (const char *)d;
        f->method_len = n;
        break;
    case F_DETAIL:
        f->detail = (const char *)d;
        f->detail_len = n;
        break;
    case F_PAYLOAD:
        f->payload = d;
        f->payload_len = n;
        f->has_payload = 1;
        break;
    case F_MD:
        return r_pair(d, n, md);
    }
    return 0;
}

/* The common frame — call, type, then a payload that ends the frame, in the order
 * rpc__frame_encode writes them, as a stream's every request and response is — read
 * straight, with the checks the general decoder makes of those fields. False when
 * buf is not that frame: the general decoder reads it. */
static bool decode_plain(const uint8_t *buf, size_t len, rpc_frame *f)
{
    pb_in r = {buf + 1, buf + len};
    uint64_t call, type;
    const uint8_t *payload = NULL;
    size_t n = 0;
    if (len < 6 || buf[0] != (F_CALL << 3 | WT_VARINT) || r_varint(&r, &call) < 0 ||
        r.p == r.end || *r.p++ != (F_TYPE << 3 | WT_VARINT) || r_varint(&r, &type) < 0 ||
        type == 0 || type > RPC_F_TYPE_MAX || r.p == r.end ||
        *r.p++ != (F_PAYLOAD << 3 | WT_LEN) || r_len(&r, &payload, &n) < 0 ||
        r.p != r.end)
        return false;
    *f = (rpc_frame){.call = call,
                     .type = (uint32_t)type,
                     .payload = payload,
                     .payload_len = n,
                     .has_payload = 1};
    return true;
}

int rpc__frame_decode(const uint8_t *buf, size_t len, rpc_frame *f, shoal_rpc_md *md)
{
    if (decode_plain(buf, len, f))
        return 0;
    memset(f, 0, sizeof(*f));
    pb_in r = {buf, buf + len};
    while (r.p < r.end) {
        uint64_t tag;
        int rc = r_varint(&r, &tag);
        if (rc == 0 && tag >> 3 == 0)
            rc = shoal__err(SHOAL_EINVALID_DATA, "rpc frame: field number 0");
        if (rc == 0)
            rc = r_field(&r, (unsigned)(tag >> 3), tag & 7, f, md);
        if (rc < 0)
            return rc;
    }
    if (f->type == 0 || f->type > RPC_F_TYPE_MAX)
        return shoal__err(SHOAL_EINVALID_DATA, "rpc frame: unknown frame type %u",
                          f->type);
    return 0;
}
