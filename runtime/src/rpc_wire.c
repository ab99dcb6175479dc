/*
 * rpc_wire.c — the frame of the services, in the protobuf wire format.
 *
 * Every transport carries the same bytes: one shoal.rpc.Frame message
 * (schemas/shoal/rpc.proto) per frame, so that a peer written with any protobuf
 * library can speak to a shoal server over nng. The frame is small and flat, so it is
 * encoded and decoded here directly with the wire primitives of pb_wire.h (those of
 * the fixed-message codec) rather than through generated code: encoding is one pass
 * that sizes the frame and one that writes it. Decoding is strict where it matters
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

/* ---- encoding ---------------------------------------------------------------------- */

static void put_uint(pb_out *o, uint32_t field, uint64_t v)
{
    if (v == 0)
        return; /* proto3: defaults are not sent */
    pb_put_tag(o, field, WT_VARINT);
    pb_put_varint(o, v);
}

/* One metadata pair: a Frame.Pair message, sized first (a pb_out of capacity 0). */
static void put_pair(pb_out *o, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    pb_out inner = {NULL, 0, 0};
    pb_put_len(&inner, 1, key, kl);
    pb_put_len(&inner, 2, value, vl);
    pb_put_tag(o, F_MD, WT_LEN);
    pb_put_varint(o, inner.len);
    pb_put_len(o, 1, key, kl);
    pb_put_len(o, 2, value, vl);
}

static void put_frame(pb_out *o, const rpc_frame *f, const shoal_rpc_md *md)
{
    put_uint(o, F_CALL, f->call);
    put_uint(o, F_TYPE, f->type);
    put_uint(o, F_FLAGS, f->flags);
    if (f->method_len)
        pb_put_len(o, F_METHOD, f->method, f->method_len);
    put_uint(o, F_TIMEOUT, f->timeout_ns > 0 ? (uint64_t)f->timeout_ns : 0);
    for (size_t i = 0; md && i < md->count; i++)
        put_pair(o, md->items[i].key, md->items[i].value);
    if (f->has_payload)
        pb_put_len(o, F_PAYLOAD, f->payload, f->payload_len);
    put_uint(o, F_CODE, f->code);
    if (f->detail_len)
        pb_put_len(o, F_DETAIL, f->detail, f->detail_len);
    put_uint(o, F_CREDIT, f->credit);
}

int rpc__frame_encode(const rpc_frame *f, const shoal_rpc_md *md, uint8_t **out,
                      size_t cap, size_t *len)
{
    pb_out size = {NULL, 0, 0};
    put_frame(&size, f, md);
    pb_out o = {size.len <= cap ? *out : malloc(size.len ? size.len : 1), size.len, 0};
    if (!o.p)
        return shoal__err(SHOAL_ENOMEM, "rpc frame: out of memory");
    put_frame(&o, f, md);
    *out = o.p;
    *len = o.len;
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------- */

static int r_varint(pb_in *r, uint64_t *v)
{
    return pb_get_varint(r, v) ? 0
                               : shoal__err(SHOAL_EINVALID_DATA,
                                            "rpc frame: a varint is cut short or longer "
                                            "than ten bytes");
}

/* A length-delimited field's bytes. */
static int r_len(pb_in *r, const uint8_t **data, size_t *len)
{
    return pb_get_len(r, data, len)
               ? 0
               : shoal__err(SHOAL_EINVALID_DATA,
                            "rpc frame: a length-delimited field overruns the frame");
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

int rpc__frame_decode(const uint8_t *buf, size_t len, rpc_frame *f, shoal_rpc_md *md)
{
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
