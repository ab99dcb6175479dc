/*
 * rpc_wire.c — the frame of the services, in the protobuf wire format.
 *
 * Every transport carries the same bytes: one shoal.rpc.Frame message
 * (schemas/shoal/rpc.proto) per frame, so that a peer written with any protobuf
 * library can speak to a shoal server over nng. The frame is small and flat, so it is
 * encoded and decoded here directly (varints and length-delimited fields) rather than
 * through generated code. Decoding is strict where it matters for safety — every
 * length is checked against the buffer, a varint has at most ten bytes, a known field
 * must have its wire type — and lenient as protobuf is otherwise: unknown fields are
 * skipped, a repeated scalar keeps its last value.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

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

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    int failed;
} wbuf;

static void w_room(wbuf *w, size_t more)
{
    if (w->failed || w->n + more <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < w->n + more)
        cap *= 2;
    uint8_t *p = realloc(w->p, cap);
    if (!p) {
        w->failed = 1;
        return;
    }
    w->p = p;
    w->cap = cap;
}

static void w_varint(wbuf *w, uint64_t v)
{
    w_room(w, 10);
    if (w->failed)
        return;
    while (v >= 0x80) {
        w->p[w->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    w->p[w->n++] = (uint8_t)v;
}

static void w_uint(wbuf *w, int field, uint64_t v)
{
    if (v == 0)
        return; /* proto3: defaults are not sent */
    w_varint(w, (uint64_t)field << 3 | WT_VARINT);
    w_varint(w, v);
}

static void w_bytes(wbuf *w, int field, const void *data, size_t len)
{
    w_varint(w, (uint64_t)field << 3 | WT_LEN);
    w_varint(w, len);
    w_room(w, len);
    if (w->failed || !len)
        return;
    memcpy(w->p + w->n, data, len);
    w->n += len;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void w_pair(wbuf *w, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    size_t inner = 1 + varint_size(kl) + kl + 1 + varint_size(vl) + vl;
    w_varint(w, (uint64_t)F_MD << 3 | WT_LEN);
    w_varint(w, inner);
    w_bytes(w, 1, key, kl);
    w_bytes(w, 2, value, vl);
}

int rpc__frame_encode(const rpc_frame *f, const shoal_rpc_md *md, uint8_t **out,
                      size_t *len)
{
    wbuf w = {0};
    w_room(&w, 32 + f->payload_len + f->method_len + f->detail_len);
    w_uint(&w, F_CALL, f->call);
    w_uint(&w, F_TYPE, f->type);
    w_uint(&w, F_FLAGS, f->flags);
    if (f->method_len)
        w_bytes(&w, F_METHOD, f->method, f->method_len);
    w_uint(&w, F_TIMEOUT, f->timeout_ns > 0 ? (uint64_t)f->timeout_ns : 0);
    for (size_t i = 0; md && i < md->count; i++)
        w_pair(&w, md->items[i].key, md->items[i].value);
    if (f->has_payload)
        w_bytes(&w, F_PAYLOAD, f->payload, f->payload_len);
    w_uint(&w, F_CODE, f->code);
    if (f->detail_len)
        w_bytes(&w, F_DETAIL, f->detail, f->detail_len);
    w_uint(&w, F_CREDIT, f->credit);
    if (w.failed) {
        free(w.p);
        return shoal__err(SHOAL_ENOMEM, "rpc frame: out of memory");
    }
    *out = w.p;
    *len = w.n;
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------- */

typedef struct rbuf {
    const uint8_t *p, *end;
} rbuf;

static int r_varint(rbuf *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return shoal__err(SHOAL_EINVALID_DATA, "rpc frame: truncated varint");
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return shoal__err(SHOAL_EINVALID_DATA, "rpc frame: varint longer than ten bytes");
}

/* A length-delimited field's bytes. */
static int r_len(rbuf *r, const uint8_t **data, size_t *len)
{
    uint64_t n;
    int rc = r_varint(r, &n);
    if (rc < 0)
        return rc;
    if (n > (uint64_t)(r->end - r->p))
        return shoal__err(SHOAL_EINVALID_DATA,
                          "rpc frame: a field of %llu bytes overruns the frame",
                          (unsigned long long)n);
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

static int r_skip(rbuf *r, unsigned wt)
{
    uint64_t v;
    const uint8_t *d;
    size_t n;
    size_t fixed = wt == WT_I64 ? 8 : 4;
    switch (wt) {
    case WT_VARINT:
        return r_varint(r, &v);
    case WT_LEN:
        return r_len(r, &d, &n);
    case WT_I64:
    case WT_I32:
        if ((size_t)(r->end - r->p) < fixed)
            return shoal__err(SHOAL_EINVALID_DATA, "rpc frame: truncated fixed field");
        r->p += fixed;
        return 0;
    default:
        return shoal__err(SHOAL_EINVALID_DATA, "rpc frame: wire type %u", wt);
    }
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
    rbuf r = {d, d + n};
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

static int r_field(rbuf *r, unsigned field, unsigned wt, rpc_frame *f, shoal_rpc_md *md)
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
    rbuf r = {buf, buf + len};
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
