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
 */
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "internal.h"
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
    case PROTOBUF_C_TYPE_ENUM:
        ed = (const ProtobufCEnumDescriptor *)f->descriptor;
        if (!protobuf_c_enum_descriptor_get_value(ed, ((const int *)elems)[i]))
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
