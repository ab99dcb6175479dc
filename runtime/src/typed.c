/*
 * typed.c — the runtime half of generated code (shoal/typed.h).
 *
 * Generated files keep only what their schema decides; the logic every message shares
 * lives here once:
 *
 * - text members: shoal_gen_set_text stores a bounded string or bytes field after
 *   checking its length (and, for strings, UTF-8, as protobuf requires); fixed
 *   messages' validators call shoal_utf8_valid on what they read.
 * - encoded messages: protoc-c's generated structs are described at run time by their
 *   ProtobufCMessageDescriptor, so one reflective walk validates any of them against
 *   the schema's bounds, which protoc-c does not know: the generated file passes a
 *   table of (descriptor, field number, max_len, max_count). Sending validates, packs
 *   (on the stack up to 1 KiB, else on the heap) and puts the bytes on a variable-size
 *   queue or pipe; receiving peeks the queue's slot (or receives from the pipe, on the
 *   heap when the message is large), unpacks with protoc-c's allocator, validates, and
 *   hands the caller a message to free with shoal_pb_free. Bytes that do not decode or
 *   validate are consumed and refused with SHOAL_EINVALID_DATA.
 * - the protobuf form of fixed messages: a generated table per message (field number,
 *   protobuf type, offsets of the member, of its has_ flag or oneof case, element size,
 *   bounds, nested table) drives one encoder and one decoder. Encoding writes what
 *   protoc's code writes (implicit-presence scalars only when not zero, has_ fields
 *   when set, the oneof member that is set, repeated scalars packed when declared so,
 *   nested messages always); a nested message's length comes from a sizing pass over
 *   it. Decoding merges over the struct (the caller starts from the defaults), skips
 *   unknown fields, takes repeated scalars packed or not, and refuses by name whatever
 *   does not fit the layout: a string over max_len, more elements than max_count, a
 *   value of the wrong wire type, bytes cut short.
 */
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "internal.h"
#include "pb_wire.h"
#include "shoal/typed.h"

/* ---- text ---------------------------------------------------------------------- */

bool shoal_utf8_valid(const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false; /* a continuation byte, 0xc0/0xc1 or 0xf5.. */
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

int shoal_gen_set_text(uint32_t *len, void *data, size_t cap, const void *p, size_t n,
                       bool utf8, bool *has, const char *what)
{
    if (n > cap)
        return shoal_invalid("%s: %zu bytes over max_len %zu", what, n, cap);
    if (utf8 && !shoal_utf8_valid(p, n))
        return shoal_invalid("%s: the string is not UTF-8", what);
    if (n)
        memcpy(data, p, n);
    *len = (uint32_t)n;
    if (has)
        *has = true;
    return 0;
}

/* ---- encoded messages: validation ------------------------------------------------- */

static const shoal_pb_bound *
bound_of(const shoal_pb_bounds *b, const ProtobufCMessageDescriptor *d, uint32_t number)
{
    for (size_t i = 0; b && i < b->n; i++)
        if (b->v[i].desc == d && b->v[i].number == number)
            return &b->v[i];
    return NULL;
}

/* Whether field f of m is present (repeated fields: *n elements at *elems). */
static bool present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                    size_t *n, const void **elems)
{
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        memcpy(n, base + f->quantifier_offset, sizeof(*n));
        memcpy((void *)elems, base + f->offset, sizeof(*elems));
        return *n > 0;
    }
    *n = 1;
    *elems = base + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which;
        memcpy(&which, base + f->quantifier_offset, sizeof(which));
        return which == f->id;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
        protobuf_c_boolean has;
        memcpy(&has, base + f->quantifier_offset, sizeof(has));
        return has != 0;
    }
    return true;
}

static int check(const ProtobufCMessage *m, const shoal_pb_bounds *b, int depth);

static int check_len(const ProtobufCMessageDescriptor *d,
                     const ProtobufCFieldDescriptor *f, const shoal_pb_bound *bd,
                     size_t n)
{
    if (bd && bd->max_len && n > bd->max_len)
        return shoal_invalid("%s.%s: length %zu over max_len %u", d->name, f->name, n,
                             (unsigned)bd->max_len);
    return 0;
}

static int check_elem(const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f, const shoal_pb_bound *bd,
                      const void *elems, size_t i, const shoal_pb_bounds *b, int depth)
{
    const ProtobufCEnumDescriptor *ed;
    const char *s;
    const ProtobufCMessage *sub;
    size_t n;
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM: /* an open enum keeps numbers it does not name */
        ed = (const ProtobufCEnumDescriptor *)f->descriptor;
        if (!(bd && bd->open_enum) &&
            !protobuf_c_enum_descriptor_get_value(ed, ((const int *)elems)[i]))
            return shoal_invalid("%s.%s: %d is not a value of %s", d->name, f->name,
                                 ((const int *)elems)[i], ed->name);
        return 0;
    case PROTOBUF_C_TYPE_STRING:
        s = ((char *const *)elems)[i];
        n = s ? strlen(s) : 0;
        if (!shoal_utf8_valid(s ? s : "", n))
            return shoal_invalid("%s.%s: the string is not UTF-8", d->name, f->name);
        return check_len(d, f, bd, n);
    case PROTOBUF_C_TYPE_BYTES:
        return check_len(d, f, bd, ((const ProtobufCBinaryData *)elems)[i].len);
    case PROTOBUF_C_TYPE_MESSAGE:
        sub = ((ProtobufCMessage *const *)elems)[i];
        return sub ? check(sub, b, depth + 1) : 0;
    default:
        return 0;
    }
}

static int check(const ProtobufCMessage *m, const shoal_pb_bounds *b, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > 100)
        return shoal_invalid("%s: nested more than 100 deep", d->name);
    for (unsigned k = 0; k < d->n_fields; k++) {
        const ProtobufCFieldDescriptor *f = &d->fields[k];
        const shoal_pb_bound *bd = bound_of(b, d, f->id);
        size_t n = 0;
        const void *elems = NULL;
        if (!present(m, f, &n, &elems))
            continue;
        if (bd && bd->max_count && n > bd->max_count)
            return shoal_invalid("%s.%s: count %zu over max_count %u", d->name, f->name,
                                 n, (unsigned)bd->max_count);
        for (size_t i = 0; i < n; i++) {
            int rc = check_elem(d, f, bd, elems, i, b, depth);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int shoal_pb_check(const ProtobufCMessage *m, const shoal_pb_bounds *b)
{
    return check(m, b, 0);
}

/* ---- encoded messages: channels -----------------------------------------------------
 */

int shoal_pb_send(shoal_queue *q, shoal_pipe *p, const ProtobufCMessage *m,
                  const shoal_pb_bounds *b, shoal_duration timeout)
{
    unsigned char stack[1024];
    int rc = check(m, b, 0);
    if (rc)
        return rc;
    size_t n = protobuf_c_message_get_packed_size(m);
    unsigned char *buf = n <= sizeof(stack) ? stack : malloc(n);
    if (!buf)
        return shoal__err(SHOAL_ENOMEM, "%s: no memory to pack %zu bytes",
                          m->descriptor->name, n);
    protobuf_c_message_pack(m, buf);
    rc = q ? shoal_queue_put(q, buf, n, timeout) : shoal_pipe_send(p, buf, n, timeout);
    if (buf != stack)
        free(buf);
    return rc;
}

static int unpack(const ProtobufCMessageDescriptor *d, const shoal_pb_bounds *b,
                  const void *data, size_t len, ProtobufCMessage **out)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, data);
    if (!m)
        return shoal_invalid("%s: a message of %zu bytes does not decode", d->name, len);
    int rc = check(m, b, 0);
    if (rc) {
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return 0;
}

static int queue_recv(shoal_queue *q, const ProtobufCMessageDescriptor *d,
                      const shoal_pb_bounds *b, ProtobufCMessage **out,
                      shoal_duration timeout)
{
    const void *data = NULL;
    size_t len = 0;
    int rc = shoal_queue_peek(q, &data, &len, timeout);
    if (rc)
        return rc;
    rc = unpack(d, b, data, len, out);
    shoal_queue_release(q, data);
    return rc;
}

static int pipe_recv(shoal_pipe *p, const ProtobufCMessageDescriptor *d,
                     const shoal_pb_bounds *b, ProtobufCMessage **out,
                     shoal_duration timeout)
{
    unsigned char stack[1024], *buf = stack;
    size_t len = 0;
    int rc = shoal_pipe_recv(p, stack, sizeof(stack), &len, timeout);
    if (rc == SHOAL_EMSGSIZE && len > sizeof(stack)) {
        if (!(buf = malloc(len)))
            return shoal__err(SHOAL_ENOMEM, "%s: no memory to receive %zu bytes", d->name,
                              len);
        rc = shoal_pipe_recv(p, buf, len, &len, SHOAL_NOWAIT);
    }
    if (rc == 0)
        rc = unpack(d, b, buf, len, out);
    if (buf != stack)
        free(buf);
    return rc;
}

int shoal_pb_recv(shoal_queue *q, shoal_pipe *p, const ProtobufCMessageDescriptor *d,
                  const shoal_pb_bounds *b, ProtobufCMessage **out,
                  shoal_duration timeout)
{
    *out = NULL;
    return q ? queue_recv(q, d, b, out, timeout) : pipe_recv(p, d, b, out, timeout);
}

void shoal_pb_free(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

const shoal_queue_config *shoal_pb_config(shoal_queue_config *c,
                                          const shoal_queue_config *cfg, int mode,
                                          size_t max_msg)
{
    memset(c, 0, sizeof(*c));
    if (cfg)
        *c = *cfg;
    c->type = NULL;
    if (!c->max_msg && mode != SHOAL_OPEN)
        c->max_msg = max_msg;
    return cfg || mode != SHOAL_OPEN ? c : NULL;
}

/* ---- the protobuf form of fixed messages ---------------------------------------------
 */

/* protobuf's FieldDescriptorProto.Type numbers */
enum {
    PT_DOUBLE = 1,
    PT_FLOAT = 2,
    PT_INT64 = 3,
    PT_UINT64 = 4,
    PT_INT32 = 5,
    PT_FIXED64 = 6,
    PT_FIXED32 = 7,
    PT_BOOL = 8,
    PT_STRING = 9,
    PT_MESSAGE = 11,
    PT_BYTES = 12,
    PT_UINT32 = 13,
    PT_ENUM = 14,
    PT_SFIXED32 = 15,
    PT_SFIXED64 = 16,
    PT_SINT32 = 17,
    PT_SINT64 = 18
};

static int wire_type(uint8_t type)
{
    switch (type) {
    case PT_DOUBLE:
    case PT_FIXED64:
    case PT_SFIXED64:
        return WT_I64;
    case PT_FLOAT:
    case PT_FIXED32:
    case PT_SFIXED32:
        return WT_I32;
    case PT_STRING:
    case PT_BYTES:
    case PT_MESSAGE:
        return WT_LEN;
    default:
        return WT_VARINT;
    }
}

/* Reads element i's scalar as the protobuf value's bits (sign-extended, zigzagged). */
static uint64_t scalar_bits(uint8_t type, const uint8_t *e)
{
    int32_t i32;
    int64_t i64;
    uint32_t u32;
    uint64_t u64;
    switch (type) {
    case PT_BOOL:
        return e[0] != 0;
    case PT_INT32:
    case PT_ENUM:
    case PT_SFIXED32:
        memcpy(&i32, e, 4);
        return type == PT_SFIXED32 ? (uint32_t)i32 : (uint64_t)(int64_t)i32;
    case PT_SINT32:
        memcpy(&i32, e, 4);
        return pb_zigzag(i32);
    case PT_SINT64:
        memcpy(&i64, e, 8);
        return pb_zigzag(i64);
    case PT_UINT32:
    case PT_FIXED32:
    case PT_FLOAT:
        memcpy(&u32, e, 4);
        return u32;
    default: /* 64-bit */
        memcpy(&u64, e, 8);
        return u64;
    }
}

static void put_scalar(pb_out *o, uint8_t type, const uint8_t *e)
{
    uint64_t v = scalar_bits(type, e);
    uint8_t b[8];
    switch (wire_type(type)) {
    case WT_I32:
        for (int i = 0; i < 4; i++)
            b[i] = (uint8_t)(v >> (8 * i));
        pb_put(o, b, 4);
        break;
    case WT_I64:
        for (int i = 0; i < 8; i++)
            b[i] = (uint8_t)(v >> (8 * i));
        pb_put(o, b, 8);
        break;
    default:
        pb_put_varint(o, v);
    }
}

static void encode(const shoal_pb_message *d, const uint8_t *m, pb_out *o);

/* The encoded size of message m. */
static size_t msg_size(const shoal_pb_message *d, const uint8_t *m)
{
    pb_out counter = {NULL, 0, 0};
    encode(d, m, &counter);
    return counter.len;
}

static void put_elem(pb_out *o, const shoal_pb_field *f, const uint8_t *e)
{
    uint32_t n;
    switch (f->type) {
    case PT_STRING:
    case PT_BYTES:
        memcpy(&n, e, 4);
        pb_put_varint(o, n);
        pb_put(o, e + 4, n);
        break;
    case PT_MESSAGE:
        pb_put_varint(o, msg_size(f->msg, e));
        encode(f->msg, e, o);
        break;
    default:
        put_scalar(o, f->type, e);
    }
}

/* Whether an implicit-presence (proto3) scalar holds its zero value. */
static bool is_zero(const shoal_pb_field *f, const uint8_t *e)
{
    uint32_t n;
    if (f->type == PT_STRING || f->type == PT_BYTES) {
        memcpy(&n, e, 4);
        return n == 0;
    }
    return f->type != PT_MESSAGE && scalar_bits(f->type, e) == 0;
}

static void encode_field(const shoal_pb_field *f, const uint8_t *m, pb_out *o)
{
    const uint8_t *member = m + f->offset;
    int wt = wire_type(f->type);
    if (!(f->flags & SHOAL_PB_REPEATED)) {
        if (!(f->flags & (SHOAL_PB_HAS | SHOAL_PB_ONEOF)) && is_zero(f, member))
            return;
        pb_put_tag(o, f->number, wt);
        put_elem(o, f, member);
        return;
    }
    uint32_t count;
    memcpy(&count, member, 4);
    if (count > f->max_count)
        count = f->max_count; /* not reached for a valid message */
    const uint8_t *items = member + f->items_offset;
    if (f->flags & SHOAL_PB_PACKED) {
        if (!count)
            return;
        pb_out counter = {NULL, 0, 0};
        for (uint32_t i = 0; i < count; i++)
            put_scalar(&counter, f->type, items + (size_t)i * f->elem_size);
        pb_put_tag(o, f->number, WT_LEN);
        pb_put_varint(o, counter.len);
        for (uint32_t i = 0; i < count; i++)
            put_scalar(o, f->type, items + (size_t)i * f->elem_size);
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        pb_put_tag(o, f->number, wt);
        put_elem(o, f, items + (size_t)i * f->elem_size);
    }
}

static bool field_present(const shoal_pb_field *f, const uint8_t *m)
{
    if (f->flags & SHOAL_PB_HAS)
        return m[f->has_offset] != 0;
    if (f->flags & SHOAL_PB_ONEOF) {
        uint32_t which;
        memcpy(&which, m + f->has_offset, 4);
        return which == f->number;
    }
    return true;
}

static void encode(const shoal_pb_message *d, const uint8_t *m, pb_out *o)
{
    for (uint32_t i = 0; i < d->nfields; i++)
        if (field_present(&d->fields[i], m))
            encode_field(&d->fields[i], m, o);
}

int shoal_pb_encode(const shoal_pb_message *d, const void *m, void *buf, size_t cap,
                    size_t *len)
{
    pb_out o = {buf, cap, 0};
    encode(d, m, &o);
    *len = o.len;
    if (o.len > cap)
        return shoal__err(SHOAL_EMSGSIZE, "%s: encodes to %zu bytes, over the %zu given",
                          d->name, o.len, cap);
    return 0;
}

/* ---- decoding ---- */

static int bad(const shoal_pb_message *d, const shoal_pb_field *f, const char *what)
{
    if (f)
        return shoal_invalid("%s.%s: %s", d->name, f->name, what);
    return shoal_invalid("%s: %s", d->name, what);
}

/* Stores a scalar value read from the wire into element e. */
static void store_scalar(uint8_t type, uint8_t *e, uint64_t v)
{
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    switch (type) {
    case PT_BOOL:
        e[0] = v != 0;
        break;
    case PT_SINT32:
        i32 = (int32_t)pb_unzigzag((uint32_t)v);
        memcpy(e, &i32, 4);
        break;
    case PT_SINT64:
        i64 = pb_unzigzag(v);
        memcpy(e, &i64, 8);
        break;
    case PT_INT32:
    case PT_ENUM:
    case PT_UINT32:
    case PT_FIXED32:
    case PT_SFIXED32:
    case PT_FLOAT:
        u32 = (uint32_t)v;
        memcpy(e, &u32, 4);
        break;
    default:
        memcpy(e, &v, 8);
    }
}

static bool get_scalar(pb_in *in, uint8_t type, uint64_t *v)
{
    switch (wire_type(type)) {
    case WT_I32:
        return pb_get_fixed(in, 4, v);
    case WT_I64:
        return pb_get_fixed(in, 8, v);
    default:
        return pb_get_varint(in, v);
    }
}

static int decode(const shoal_pb_message *d, uint8_t *m, pb_in *in, int depth);

/* Reads one element's value (after its tag) into e. */
static int decode_elem(const shoal_pb_message *d, const shoal_pb_field *f, uint8_t *e,
                       pb_in *in, int depth)
{
    uint64_t v;
    if (f->type == PT_STRING || f->type == PT_BYTES || f->type == PT_MESSAGE) {
        const uint8_t *data;
        size_t len;
        if (!pb_get_len(in, &data, &len))
            return bad(d, f, "a length runs past the end");
        pb_in sub = {data, data + len};
        if (f->type == PT_MESSAGE)
            return decode(f->msg, e, &sub, depth + 1);
        if (len > f->max_len)
            return shoal_invalid("%s.%s: %zu bytes over max_len %u", d->name, f->name,
                                 len, (unsigned)f->max_len);
        uint32_t n = (uint32_t)len;
        memcpy(e, &n, 4);
        if (n)
            memcpy(e + 4, data, n);
        return 0;
    }
    if (!get_scalar(in, f->type, &v))
        return bad(d, f, "a value is cut short");
    store_scalar(f->type, e, v);
    return 0;
}

/* The next free element of a repeated field, or NULL when it is full. */
static uint8_t *append(const shoal_pb_field *f, uint8_t *member)
{
    uint32_t count;
    memcpy(&count, member, 4);
    if (count >= f->max_count)
        return NULL;
    uint8_t *e = member + f->items_offset + (size_t)count * f->elem_size;
    if (f->type == PT_MESSAGE)
        memcpy(e, f->msg->init, f->elem_size);
    else
        memset(e, 0, f->elem_size);
    count++;
    memcpy(member, &count, 4);
    return e;
}

static int too_many(const shoal_pb_message *d, const shoal_pb_field *f)
{
    return shoal_invalid("%s.%s: more than max_count %u elements", d->name, f->name,
                         (unsigned)f->max_count);
}

static int decode_packed(const shoal_pb_message *d, const shoal_pb_field *f,
                         uint8_t *member, pb_in *in)
{
    uint64_t v;
    const uint8_t *data;
    size_t n;
    if (!pb_get_len(in, &data, &n))
        return bad(d, f, "a length runs past the end");
    pb_in sub = {data, data + n};
    while (sub.p < sub.end) {
        if (!get_scalar(&sub, f->type, &v))
            return bad(d, f, "a packed value is cut short");
        uint8_t *e = append(f, member);
        if (!e)
            return too_many(d, f);
        store_scalar(f->type, e, v);
    }
    return 0;
}

static int decode_field(const shoal_pb_message *d, const shoal_pb_field *f, uint8_t *m,
                        pb_in *in, int wt, int depth)
{
    uint8_t *member = m + f->offset;
    if (f->flags & SHOAL_PB_REPEATED) {
        bool scalar = wire_type(f->type) != WT_LEN;
        if (scalar && wt == WT_LEN)
            return decode_packed(d, f, member, in);
        if (wt != wire_type(f->type))
            return bad(d, f, "the wire type does not match the schema");
        uint8_t *e = append(f, member);
        return e ? decode_elem(d, f, e, in, depth) : too_many(d, f);
    }
    if (wt != wire_type(f->type))
        return bad(d, f, "the wire type does not match the schema");
    if (f->flags & SHOAL_PB_HAS)
        m[f->has_offset] = 1;
    if (f->flags & SHOAL_PB_ONEOF) {
        uint32_t which;
        memcpy(&which, m + f->has_offset, 4);
        if (which != f->number) { /* another member was set: start this one afresh */
            if (f->type == PT_MESSAGE)
                memcpy(member, f->msg->init, f->elem_size);
            else
                memset(member, 0, f->elem_size);
            memcpy(m + f->has_offset, &f->number, 4);
        }
    }
    return decode_elem(d, f, member, in, depth);
}

static int decode(const shoal_pb_message *d, uint8_t *m, pb_in *in, int depth)
{
    if (depth > 100)
        return bad(d, NULL, "nested more than 100 deep");
    while (in->p < in->end) {
        uint64_t tag;
        if (!pb_get_varint(in, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
            return bad(d, NULL, "a field tag does not decode");
        uint32_t number = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        const shoal_pb_field *f = NULL;
        for (uint32_t i = 0; i < d->nfields && !f; i++)
            if (d->fields[i].number == number)
                f = &d->fields[i];
        int rc = 0;
        if (!f) {
            if (!pb_skip(in, wt))
                rc = bad(d, NULL, "an unknown field does not decode");
        } else {
            rc = decode_field(d, f, m, in, wt, depth);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int shoal_pb_decode(const shoal_pb_message *d, void *m, const void *buf, size_t len)
{
    pb_in in = {buf, (const uint8_t *)buf + len};
    return decode(d, m, &in, 0);
}

int shoal__pb_field(const uint8_t **p, const uint8_t *end, uint32_t *number, int *wt,
                    uint64_t *value, const uint8_t **sub, size_t *sub_len)
{
    pb_in in = {*p, end};
    pb_field f;
    if (!pb_get_field(&in, &f))
        return -1;
    *number = f.number;
    *wt = f.wt;
    *value = f.wt == WT_VARINT ? f.value : 0;
    *sub = f.wt == WT_LEN ? f.sub : NULL;
    *sub_len = f.wt == WT_LEN ? f.len : 0;
    *p = in.p;
    return 0;
}

uint64_t shoal__pb_varint_of(const void *buf, size_t len, uint32_t number)
{
    pb_in in = {buf, (const uint8_t *)buf + len};
    pb_field f;
    while (in.p < in.end) {
        if (!pb_get_field(&in, &f))
            return 0;
        if (f.number == number && f.wt == WT_VARINT)
            return f.value;
    }
    return 0;
}
