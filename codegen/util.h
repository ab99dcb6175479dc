/*
 * util.h — memory, growable text buffers and name helpers for the schema compiler.
 *
 * The plugin is a short-lived process: everything the model allocates comes from one
 * arena (sg_alloc and friends) released in one call at exit, so that leak checkers
 * stay quiet without every structure needing its own destructor.
 */
#ifndef SHOAL_CODEGEN_UTIL_H
#define SHOAL_CODEGEN_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Zeroed memory from the arena; exits with a message when memory runs out. */
void *sg_alloc(size_t n);
/* Grows an arena array of `*cap` elements of `size` bytes to hold at least `need`. */
void *sg_grow(void *arr, size_t size, size_t *cap, size_t need);
char *sg_strdup(const char *s);
/* The n bytes at p as a byte-string literal b"\x..", the same in Python and Rust. */
const char *sg_bytes_literal(const char *p, size_t n);
char *sg_strndup(const char *s, size_t n);
char *sg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Releases everything sg_alloc handed out. */
void sg_free_all(void);

/* A growable text (or byte) buffer, always NUL-terminated; memory from malloc. */
typedef struct sg_buf {
    char *data;
    size_t len, cap;
} sg_buf;

void sg_buf_add(sg_buf *b, const void *p, size_t n);
void sg_buf_puts(sg_buf *b, const char *s);
void sg_buf_printf(sg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sg_buf_vprintf(sg_buf *b, const char *fmt, va_list ap);
void sg_buf_free(sg_buf *b);

/* FNV-1a-64, the hash shoal uses for layout hashes (same as shoal_fnv1a). */
uint64_t sg_fnv1a(const void *data, size_t len);

/* protoc-c's naming rules, so generated code can name protoc-c's types:
 * "orders.OrderItem" -> "Orders__OrderItem" (sg_pbc_type) and
 * "orders__order_item" (sg_pbc_lower). */
char *sg_pbc_type(const char *full_name);
char *sg_pbc_lower(const char *full_name);
char *sg_pbc_upper(const char *full_name); /* "ORDERS__ORDER_ITEM" */

/* Whether s is a keyword of C or C++, a macro compilers predefine (unix, linux) or a
 * name the standard headers that generated code includes define (size_t, FILE,
 * int32_t, INT_MAX, ...). A field with that name gets a '_' appended; a message or
 * enum with that C name is a schema error. */
int sg_is_keyword(const char *s);
/* Whether s is one of C++98's keywords (the only names protoc-c escapes). */
int sg_is_cxx98_keyword(const char *s);

/* Undoes protoc's C escaping of a bytes default ("\\001", "\\x7f", "\\n", ...). */
sg_buf sg_unescape(const char *s);

#endif
