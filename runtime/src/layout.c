/*
 * layout.c — layout descriptors stored in segment headers, and printing values
 * through them.
 *
 * A segment of a described struct type keeps a compact copy of the type's field list
 * in its header page, so that a tool (`shoal inspect`) or a dynamic binding can decode
 * values without the schema. The format (little-endian, version 1):
 *
 *   descriptor := 'S' 'L' u8(version = 1) type
 *   type       := u8(0) u8(name length) name u64(layout hash) u32(size) u32(align)
 *                 u16(field count) field*
 *               | u8(1) u16(index)      -- the index-th type defined so far (0-based)
 *               | u8(2)                 -- no type (an opaque struct)
 *   field      := u8(name length) name u32(number) u8(kind) u32(offset) u32(size)
 *                 u32(max_count) u32(max_len) [type, when kind is MESSAGE or UNION]
 *
 * Types used several times are written once and referred to by index. The decoder
 * trusts nothing, because the header may be damaged or written by a hostile process:
 * every length and reference is checked, a type must have a size and a power-of-two
 * alignment of at most 64, each field must lie inside its struct, and the whole tree,
 * expanded (a type referred to twice counts twice, a repeated struct field max_count
 * times), must have at most MAX_WEIGHT fields, so that printing a value through it is
 * bounded even when references make it exponentially large.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DESC_VERSION 1
#define MAX_TYPES    256
#define MAX_DEPTH    32
#define MAX_WEIGHT   (1u << 20) /* fields of the expanded tree */

int shoal_invalid(const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return shoal__err(SHOAL_EINVALID_DATA, "%s", buf);
}

/* ---- encoding ------------------------------------------------------------------------
 */

struct enc {
    unsigned char *buf;
    size_t cap, len;
    bool overflow;
    const shoal_type *seen[MAX_TYPES];
    bool done[MAX_TYPES];
    size_t nseen;
};

static void put(struct enc *e, const void *p, size_t n)
{
    if (e->overflow || n > e->cap - e->len) {
        e->overflow = true;
        return;
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static void put_u8(struct enc *e, unsigned v)
{
    unsigned char b = (unsigned char)v;
    put(e, &b, 1);
}

static void put_le(struct enc *e, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put(e, b, (size_t)bytes);
}

static void put_name(struct enc *e, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > 255) {
        e->overflow = true;
        return;
    }
    put_u8(e, (unsigned)n);
    put(e, s, n);
}

static void put_type(struct enc *e, const shoal_type *t, int depth)
{
    if (!t) {
        put_u8(e, 2);
        return;
    }
    for (size_t i = 0; i < e->nseen; i++) {
        if (e->seen[i] != t)
            continue;
        if (!e->done[i]) /* a type that contains itself cannot be described */
            e->overflow = true;
        put_u8(e, 1);
        put_le(e, i, 2);
        return;
    }
    if (e->nseen == MAX_TYPES || depth > MAX_DEPTH || t->nfields > UINT16_MAX) {
        e->overflow = true;
        return;
    }
    size_t idx = e->nseen++;
    e->seen[idx] = t;
    put_u8(e, 0);
    put_name(e, t->name);
    put_le(e, t->layout_hash, 8);
    put_le(e, t->size, 4);
    put_le(e, t->align, 4);
    put_le(e, t->nfields, 2);
    for (uint32_t i = 0; i < t->nfields && !e->overflow; i++) {
        const shoal_field *f = &t->fields[i];
        put_name(e, f->name);
        put_le(e, f->number, 4);
        put_u8(e, f->kind);
        put_le(e, f->offset, 4);
        put_le(e, f->size, 4);
        put_le(e, f->max_count, 4);
        put_le(e, f->max_len, 4);
        if (f->kind == SHOAL_FIELD_MESSAGE || f->kind == SHOAL_FIELD_UNION)
            put_type(e, f->type, depth + 1);
    }
    e->done[idx] = true;
}

size_t shoal__layout_encode(const shoal_type *type, unsigned char *buf, size_t cap)
{
    if (!type || !type->nfields || !type->fields || !buf)
        return 0;
    struct enc *e = calloc(1, sizeof(*e));
    if (!e)
        return 0;
    e->buf = buf;
    e->cap = cap;
    put(e, "SL", 2);
    put_u8(e, DESC_VERSION);
    put_type(e, type, 0);
    size_t n = e->overflow ? 0 : e->len;
    free(e);
    return n;
}

/* ---- decoding ------------------------------------------------------------------------
 */

/* Two passes over the bytes: the first counts (and checks), the second fills one
 * malloc'ed block, so the caller frees the whole tree with free(). */
struct dec {
    const unsigned char *p;
    size_t n, pos;
    bool bad;
    /* fill pass */
    shoal_type *types;
    shoal_field *fields;
    char *names;
    size_t ntypes, nfields, nnames;
    bool done[MAX_TYPES];
    uint64_t weight[MAX_TYPES]; /* fields of each type's expanded tree */
};

static bool take(struct dec *d, void *out, size_t k)
{
    if (d->bad || k > d->n - d->pos) {
        d->bad = true;
        if (out)
            memset(out, 0, k);
        return false;
    }
    if (out)
        memcpy(out, d->p + d->pos, k);
    d->pos += k;
    return true;
}

static uint64_t take_le(struct dec *d, int bytes)
{
    unsigned char b[8];
    uint64_t v = 0;
    if (!take(d, b, (size_t)bytes))
        return 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static const char *take_name(struct dec *d)
{
    size_t k = (size_t)take_le(d, 1);
    const unsigned char *s = d->p + d->pos;
    if (!take(d, NULL, k))
        return "";
    if (!d->names) {
        d->nnames += k + 1;
        return "";
    }
    char *out = d->names + d->nnames;
    memcpy(out, s, k);
    out[k] = '\0';
    d->nnames += k + 1;
    return out;
}

static const shoal_type *take_type(struct dec *d, int depth, uint64_t *weight);

/* Reads one field of a struct of `struct_size` bytes; adds its expanded weight. */
static void take_field(struct dec *d, shoal_field *f, uint32_t struct_size, int depth,
                       uint64_t *weight)
{
    f->name = take_name(d);
    f->number = (uint32_t)take_le(d, 4);
    f->kind = (uint32_t)take_le(d, 1);
    f->offset = (uint32_t)take_le(d, 4);
    f->size = (uint32_t)take_le(d, 4);
    f->max_count = (uint32_t)take_le(d, 4);
    f->max_len = (uint32_t)take_le(d, 4);
    f->type = NULL;
    if (f->kind < SHOAL_FIELD_INT8 || f->kind > SHOAL_FIELD_UNION ||
        (uint64_t)f->offset + f->size > struct_size)
        d->bad = true;
    uint64_t w = 1;
    if (f->kind == SHOAL_FIELD_MESSAGE || f->kind == SHOAL_FIELD_UNION) {
        f->type = take_type(d, depth + 1, &w);
        w *= f->max_count ? f->max_count : 1; /* at most 2^20 * 2^32: no overflow */
    }
    *weight += w < MAX_WEIGHT ? w : MAX_WEIGHT;
}

/* Reads a type (or a reference to one); sets *weight to its expanded field count. */
static const shoal_type *take_type(struct dec *d, int depth, uint64_t *weight)
{
    unsigned tag = (unsigned)take_le(d, 1);
    *weight = 1;
    if (d->bad || depth > MAX_DEPTH) {
        d->bad = true;
        return NULL;
    }
    if (tag == 2)
        return NULL;
    if (tag == 1) {
        size_t idx = (size_t)take_le(d, 2);
        if (idx >= d->ntypes || !d->done[idx]) { /* only complete, earlier types */
            d->bad = true;
            return NULL;
        }
        *weight = d->weight[idx];
        return d->types ? &d->types[idx] : NULL;
    }
    if (tag != 0 || d->ntypes == MAX_TYPES) {
        d->bad = true;
        return NULL;
    }
    size_t idx = d->ntypes++;
    shoal_type scratch = {0}, *t = d->types ? &d->types[idx] : &scratch;
    t->name = take_name(d);
    t->layout_hash = take_le(d, 8);
    t->size = (uint32_t)take_le(d, 4);
    t->align = (uint32_t)take_le(d, 4);
    t->nfields = (uint32_t)take_le(d, 2);
    t->typecode = 0;
    if (t->size == 0 || t->align == 0 || t->align > 64 || (t->align & (t->align - 1)))
        d->bad = true;
    shoal_field *fields = d->fields ? d->fields + d->nfields : NULL;
    t->fields = fields;
    d->nfields += t->nfields;
    uint64_t w = 1;
    for (uint32_t i = 0; i < t->nfields && !d->bad; i++) {
        shoal_field scratch_f;
        take_field(d, fields ? &fields[i] : &scratch_f, t->size, depth, &w);
    }
    if (w > MAX_WEIGHT)
        d->bad = true;
    d->weight[idx] = *weight = w;
    d->done[idx] = true;
    return d->types ? &d->types[idx] : NULL;
}

int shoal__layout_decode(const unsigned char *desc, size_t n, shoal_type **out)
{
    *out = NULL;
    struct dec d = {.p = desc, .n = n};
    char magic[2];
    if (!desc || !take(&d, magic, 2) || memcmp(magic, "SL", 2) ||
        take_le(&d, 1) != DESC_VERSION)
        return shoal__err(SHOAL_ECORRUPT, "layout descriptor: bad magic or version");
    size_t start = d.pos;
    uint64_t weight;
    take_type(&d, 0, &weight);
    if (d.bad || d.ntypes == 0)
        return shoal__err(SHOAL_ECORRUPT, "layout descriptor: does not decode");
    size_t bytes =
        d.ntypes * sizeof(shoal_type) + d.nfields * sizeof(shoal_field) + d.nnames;
    unsigned char *block = calloc(1, bytes ? bytes : 1);
    if (!block)
        return shoal__err(SHOAL_ENOMEM, "layout descriptor: out of memory");
    struct dec f = {.p = desc, .n = n, .pos = start};
    f.types = (shoal_type *)block;
    f.fields = (shoal_field *)(block + d.ntypes * sizeof(shoal_type));
    f.names = (char *)(f.fields + d.nfields);
    take_type(&f, 0, &weight);
    *out = f.types;
    return 0;
}

/* ---- printing --------------------------------------------------------------------- */

static uint64_t load(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    memcpy(&v, p, n); /* little-endian hosts only, like the layouts themselves */
    return v;
}

static size_t kind_size(uint32_t kind)
{
    switch (kind) {
    case SHOAL_FIELD_INT8:
    case SHOAL_FIELD_UINT8:
    case SHOAL_FIELD_BOOL:
    case SHOAL_FIELD_CHAR:
        return 1;
    case SHOAL_FIELD_INT16:
    case SHOAL_FIELD_UINT16:
        return 2;
    case SHOAL_FIELD_INT32:
    case SHOAL_FIELD_UINT32:
    case SHOAL_FIELD_FLOAT:
    case SHOAL_FIELD_ENUM:
        return 4;
    default:
        return 8;
    }
}

/* Bytes and alignment of one element of f. */
static void elem_shape(const shoal_field *f, size_t *size, size_t *align)
{
    if (f->kind == SHOAL_FIELD_STRING || f->kind == SHOAL_FIELD_BYTES) {
        *size = ((size_t)f->max_len + 4 + 3) / 4 * 4;
        *align = 4;
    } else if (f->kind == SHOAL_FIELD_MESSAGE || f->kind == SHOAL_FIELD_UNION) {
        *size = f->type ? f->type->size : f->size;
        *align = f->type && f->type->align ? f->type->align : 1;
    } else {
        *size = *align = kind_size(f->kind);
    }
}

static void print_text(FILE *out, const unsigned char *s, size_t n, bool raw_high)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if ((c >= 0x20 && c < 0x7f) || (raw_high && c >= 0x80))
            fputc(c, out);
        else
            fprintf(out, "\\x%02x", c);
    }
    fputc('"', out);
}

static void print_scalar(FILE *out, uint32_t kind, const unsigned char *p)
{
    switch (kind) {
    case SHOAL_FIELD_INT8:
        fprintf(out, "%d", (int)(int8_t)load(p, 1));
        break;
    case SHOAL_FIELD_UINT8:
        fprintf(out, "%u", (unsigned)load(p, 1));
        break;
    case SHOAL_FIELD_INT16:
        fprintf(out, "%d", (int)(int16_t)load(p, 2));
        break;
    case SHOAL_FIELD_UINT16:
        fprintf(out, "%u", (unsigned)load(p, 2));
        break;
    case SHOAL_FIELD_INT32:
    case SHOAL_FIELD_ENUM:
        fprintf(out, "%" PRId32, (int32_t)load(p, 4));
        break;
    case SHOAL_FIELD_UINT32:
        fprintf(out, "%" PRIu32, (uint32_t)load(p, 4));
        break;
    case SHOAL_FIELD_INT64:
        fprintf(out, "%" PRId64, (int64_t)load(p, 8));
        break;
    case SHOAL_FIELD_UINT64:
        fprintf(out, "%" PRIu64, load(p, 8));
        break;
    case SHOAL_FIELD_FLOAT: {
        float v;
        memcpy(&v, p, 4);
        fprintf(out, "%.9g", (double)v);
        break;
    }
    case SHOAL_FIELD_DOUBLE: {
        double v;
        memcpy(&v, p, 8);
        fprintf(out, "%.17g", v);
        break;
    }
    case SHOAL_FIELD_BOOL:
        if (p[0] <= 1)
            fputs(p[0] ? "true" : "false", out);
        else
            fprintf(out, "<bool holding %u>", p[0]);
        break;
    case SHOAL_FIELD_CHAR:
        print_text(out, p, 1, false);
        break;
    default:
        fputs("?", out);
    }
}

static void print_struct(const shoal_type *t, const unsigned char *p, size_t avail,
                         FILE *out, int depth);

/* One element of f at p (avail bytes readable). */
static void print_elem(const shoal_field *f, const unsigned char *p, size_t avail,
                       FILE *out, int depth)
{
    size_t esz, eal;
    elem_shape(f, &esz, &eal);
    if (esz > avail) {
        fputs("<out of bounds>", out);
        return;
    }
    if (f->kind == SHOAL_FIELD_STRING || f->kind == SHOAL_FIELD_BYTES) {
        uint32_t len = (uint32_t)load(p, 4);
        if (len > f->max_len)
            fprintf(out, "<length %" PRIu32 " over max_len %" PRIu32 ">", len,
                    f->max_len);
        else
            print_text(out, p + 4, len, f->kind == SHOAL_FIELD_STRING);
    } else if (f->kind == SHOAL_FIELD_MESSAGE) {
        if (f->type)
            print_struct(f->type, p, esz, out, depth + 1);
        else
            fputs("<opaque>", out);
    } else {
        print_scalar(out, f->kind, p);
    }
}

static void print_field(const shoal_field *f, const unsigned char *base, size_t avail,
                        FILE *out, int depth);

static void print_union(const shoal_field *f, const unsigned char *p, FILE *out,
                        int depth)
{
    uint32_t which = (uint32_t)load(p, 4);
    if (which == 0) {
        fprintf(out, "%s: <not set>", f->name);
        return;
    }
    for (uint32_t i = 0; f->type && i < f->type->nfields; i++) {
        const shoal_field *mf = &f->type->fields[i];
        if (mf->number == which) {
            print_field(mf, p, f->size, out, depth);
            return;
        }
    }
    fprintf(out, "%s: <unknown case %" PRIu32 ">", f->name, which);
}

static void print_repeated(const shoal_field *f, const unsigned char *p, FILE *out,
                           int depth)
{
    size_t esz, eal;
    elem_shape(f, &esz, &eal);
    size_t items = (4 + eal - 1) / eal * eal;
    uint32_t count = (uint32_t)load(p, 4);
    if (count > f->max_count) {
        fprintf(out, "<count %" PRIu32 " over max_count %" PRIu32 ">", count,
                f->max_count);
        return;
    }
    fputc('[', out);
    for (uint32_t i = 0; i < count; i++) {
        size_t at = items + (size_t)i * esz;
        fputs(i ? ", " : "", out);
        if (at + esz > f->size) {
            fputs("<out of bounds>", out);
            break;
        }
        print_elem(f, p + at, esz, out, depth);
    }
    fputc(']', out);
}

static void print_field(const shoal_field *f, const unsigned char *base, size_t avail,
                        FILE *out, int depth)
{
    if ((uint64_t)f->offset + f->size > avail || depth > MAX_DEPTH) {
        fprintf(out, "%s: <out of bounds>", f->name);
        return;
    }
    const unsigned char *p = base + f->offset;
    if (f->kind == SHOAL_FIELD_UNION) {
        print_union(f, p, out, depth);
        return;
    }
    fprintf(out, "%s: ", f->name);
    if (f->max_count)
        print_repeated(f, p, out, depth);
    else
        print_elem(f, p, f->size, out, depth);
}

static void print_struct(const shoal_type *t, const unsigned char *p, size_t avail,
                         FILE *out, int depth)
{
    if (t->size < avail)
        avail = t->size;
    fputc('{', out);
    for (uint32_t i = 0; i < t->nfields; i++) {
        fputs(i ? ", " : "", out);
        print_field(&t->fields[i], p, avail, out, depth);
    }
    fputc('}', out);
}

int shoal__type_print(const shoal_type *type, const void *data, size_t size, FILE *out)
{
    if (!type || !data || !out)
        return shoal__err(SHOAL_EINVAL, "print: NULL argument");
    if (type->typecode) {
        if (size < type->size)
            return shoal__err(SHOAL_EINVAL, "print: %zu bytes, %s needs %u", size,
                              type->name, type->size);
        static const uint32_t kinds[128] = {
            ['b'] = SHOAL_FIELD_INT8,  ['B'] = SHOAL_FIELD_UINT8,
            ['h'] = SHOAL_FIELD_INT16, ['H'] = SHOAL_FIELD_UINT16,
            ['i'] = SHOAL_FIELD_INT32, ['I'] = SHOAL_FIELD_UINT32,
            ['l'] = SHOAL_FIELD_INT64, ['L'] = SHOAL_FIELD_UINT64,
            ['q'] = SHOAL_FIELD_INT64, ['Q'] = SHOAL_FIELD_UINT64,
            ['f'] = SHOAL_FIELD_FLOAT, ['d'] = SHOAL_FIELD_DOUBLE,
            ['c'] = SHOAL_FIELD_CHAR,
        };
        print_scalar(out, kinds[type->typecode & 127], data);
        return 0;
    }
    print_struct(type, data, size, out, 0);
    return 0;
}

int shoal__layout_print(const unsigned char *desc, size_t n, const void *data, FILE *out)
{
    shoal_type *t;
    int rc = shoal__layout_decode(desc, n, &t);
    if (rc)
        return rc;
    rc = shoal__type_print(t, data, t->size, out);
    free(t);
    return rc;
}
