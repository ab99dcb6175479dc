/*
 * options.c — reading shoal's custom options.
 *
 * protoc passes custom options (extensions of FieldOptions, MessageOptions,
 * FileOptions) as serialised extension fields; protobuf-c, which knows nothing of the
 * extensions, keeps them in the options message's base.unknown_fields. A varint
 * entry's data is the varint; a length-delimited entry's data starts with its length
 * prefix. One tag may occur several times (protoc may split an option's value): for
 * the scalar options shoal defines, protobuf's merge rule is that the last occurrence
 * wins.
 */
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "model.h"

/* Decodes a varint from p[0..n); returns the bytes used, 0 if malformed. */
static size_t read_varint(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

/* The last unknown field with this tag, or NULL. */
static const ProtobufCMessageUnknownField *last_entry(const ProtobufCMessage *options,
                                                      uint32_t tag)
{
    const ProtobufCMessageUnknownField *found = NULL;
    if (!options)
        return NULL;
    for (unsigned i = 0; i < options->n_unknown_fields; i++)
        if (options->unknown_fields[i].tag == tag)
            found = &options->unknown_fields[i];
    return found;
}

int sg_option_varint(const ProtobufCMessage *options, uint32_t tag, uint64_t *out)
{
    const ProtobufCMessageUnknownField *f = last_entry(options, tag);
    if (!f)
        return 0;
    if (f->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT || !read_varint(f->data, f->len, out))
        return -1;
    return 1;
}

int sg_option_string(const ProtobufCMessage *options, uint32_t tag, const char **out)
{
    const ProtobufCMessageUnknownField *f = last_entry(options, tag);
    if (!f)
        return 0;
    uint64_t n;
    size_t used;
    if (f->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED ||
        !(used = read_varint(f->data, f->len, &n)) || n > f->len - used)
        return -1;
    *out = sg_strndup((const char *)f->data + used, (size_t)n);
    return 1;
}
