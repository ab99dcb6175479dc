/*
 * shoal/type.h — element types: the fixed scalar typecodes and described structs.
 *
 * Every typed object (Value, Array, fixed-slot Queue and Pipe) records its element
 * type's name, size and layout hash in its header; opening it with a different type is
 * a SHOAL_ELAYOUT error naming both types.
 *
 * Scalar typecodes follow Python's array module, with sizes fixed across languages
 * and platforms (unlike C's `long`):
 *
 *   code  type name  size   code  type name  size
 *   'b'   int8       1      'B'   uint8      1
 *   'h'   int16      2      'H'   uint16     2
 *   'i'   int32      4      'I'   uint32     4
 *   'l'   int64      8      'L'   uint64     8
 *   'q'   int64      8      'Q'   uint64     8
 *   'f'   float32    4      'd'   float64    8
 *   'c'   char       1
 *
 * ('l' and 'q' are the same type, as are 'L' and 'Q': objects made with one open with
 * the other.) A scalar's layout hash is FNV-1a-64 of its type name.
 *
 * Structs are described by a shoal_type the schema compiler generates (or a caller
 * fills in by hand): name, size, alignment, layout hash and an optional list of fields
 * used by `shoal inspect` and by dynamic bindings to decode values.
 */
#ifndef SHOAL_TYPE_H
#define SHOAL_TYPE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a field holds. Numbers are stable: bindings and segments store them. */
enum shoal_field_kind {
    SHOAL_FIELD_INT8 = 1,
    SHOAL_FIELD_UINT8 = 2,
    SHOAL_FIELD_INT16 = 3,
    SHOAL_FIELD_UINT16 = 4,
    SHOAL_FIELD_INT32 = 5,
    SHOAL_FIELD_UINT32 = 6,
    SHOAL_FIELD_INT64 = 7,
    SHOAL_FIELD_UINT64 = 8,
    SHOAL_FIELD_FLOAT = 9,
    SHOAL_FIELD_DOUBLE = 10,
    SHOAL_FIELD_BOOL = 11,    /* one byte, 0 or 1 */
    SHOAL_FIELD_CHAR = 12,    /* one byte */
    SHOAL_FIELD_ENUM = 13,    /* int32 */
    SHOAL_FIELD_STRING = 14,  /* uint32 length, then max_len bytes */
    SHOAL_FIELD_BYTES = 15,   /* uint32 length, then max_len bytes */
    SHOAL_FIELD_MESSAGE = 16, /* a nested struct: see shoal_field.type */
    SHOAL_FIELD_UNION = 17    /* a oneof: uint32 case number, then the largest member */
};

struct shoal_type;

/* One field of a described struct. */
typedef struct shoal_field {
    const char *name;
    uint32_t number;    /* the schema field number (0 if none) */
    uint32_t kind;      /* enum shoal_field_kind */
    uint32_t offset;    /* byte offset of the field in the struct */
    uint32_t size;      /* bytes the field occupies, all elements included */
    uint32_t max_count; /* repeated: capacity (a uint32 count precedes); else 0 */
    uint32_t max_len;   /* string/bytes: capacity in bytes; else 0 */
    const struct shoal_type *type; /* SHOAL_FIELD_MESSAGE: the nested type; else NULL */
} shoal_field;

/* An element type. */
typedef struct shoal_type {
    const char *name;     /* e.g. "int32" or "orders.Order"; at most 63 bytes */
    uint64_t layout_hash; /* identifies the exact layout; see the schema docs */
    uint32_t size;        /* sizeof the element, a multiple of align */
    uint32_t align;       /* a power of two, at most 64 */
    char typecode;        /* the array-module code for scalars, else 0 */
    uint32_t nfields;     /* number of entries in fields (0: opaque struct) */
    const shoal_field *fields;
} shoal_type;

/* Returns the scalar type for a typecode ('i', 'd', ...), or NULL if unknown. */
SHOAL_API const shoal_type *shoal_typecode(char code);

/* FNV-1a-64 over len bytes, continuing from h (start with SHOAL_FNV_OFFSET). */
#define SHOAL_FNV_OFFSET 0xcbf29ce484222325ULL
SHOAL_API uint64_t shoal_fnv1a(uint64_t h, const void *data, size_t len);

/*
 * Records a validation failure as the calling thread's detail message (see
 * shoal_errdetail) and returns SHOAL_EINVALID_DATA. Generated validation functions
 * call it, e.g. shoal_invalid("orders.Order.symbol: length %u over max_len 8", n).
 */
SHOAL_API int shoal_invalid(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif
#endif
