/* util.c — arena, text buffers, hashing and naming helpers. */
#include "util.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each arena block starts with a link to the previous one. */
struct sg_block {
    struct sg_block *prev;
    max_align_t data[];
};
static struct sg_block *arena;

static void out_of_memory(void)
{
    fputs("protoc-gen-shoal: out of memory\n", stderr);
    exit(1);
}

void *sg_alloc(size_t n)
{
    struct sg_block *b = calloc(1, sizeof(*b) + n);
    if (!b)
        out_of_memory();
    b->prev = arena;
    arena = b;
    return b->data;
}

void *sg_grow(void *arr, size_t size, size_t *cap, size_t need)
{
    if (need <= *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *n = sg_alloc(size * ncap);
    if (arr)
        memcpy(n, arr, size * *cap);
    *cap = ncap;
    return n;
}

char *sg_strndup(const char *s, size_t n)
{
    char *d = sg_alloc(n + 1);
    memcpy(d, s, n);
    return d;
}

char *sg_strdup(const char *s)
{
    return sg_strndup(s, strlen(s));
}

char *sg_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = sg_alloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void sg_free_all(void)
{
    while (arena) {
        struct sg_block *prev = arena->prev;
        free(arena);
        arena = prev;
    }
}

void sg_buf_add(sg_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 1024;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *d = realloc(b->data, ncap);
        if (!d)
            out_of_memory();
        b->data = d;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sg_buf_puts(sg_buf *b, const char *s)
{
    sg_buf_add(b, s, strlen(s));
}

void sg_buf_vprintf(sg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char small[256];
    if (n < (int)sizeof(small)) {
        vsnprintf(small, sizeof(small), fmt, ap);
        sg_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        out_of_memory();
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    sg_buf_add(b, big, (size_t)n);
    free(big);
}

void sg_buf_printf(sg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sg_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void sg_buf_free(sg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint64_t sg_fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Applies `piece` to each dot-separated component, joining them with "__". */
static char *pbc_join(const char *full_name,
                      void (*piece)(sg_buf *, const char *, size_t))
{
    sg_buf b = {0};
    const char *p = full_name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n) {
            if (b.len)
                sg_buf_puts(&b, "__");
            piece(&b, p, n);
        }
        p += n + (dot ? 1 : 0);
    }
    char *s = sg_strdup(b.data ? b.data : "");
    sg_buf_free(&b);
    return s;
}

/* protoc-c's ToCamel: "foo_bar" -> "FooBar". */
static void to_camel(sg_buf *b, const char *s, size_t n)
{
    int upper = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            upper = 1;
        } else {
            c = upper ? (char)toupper((unsigned char)c) : c;
            sg_buf_add(b, &c, 1);
            upper = 0;
        }
    }
}

/* protoc-c's CamelToLower: "OrderItem" -> "order_item", "MEntry" -> "mentry". */
static void camel_to_lower(sg_buf *b, const char *s, size_t n)
{
    int was_upper = 1;
    for (size_t i = 0; i < n; i++) {
        int is_upper = isupper((unsigned char)s[i]) != 0;
        char c = (char)tolower((unsigned char)s[i]);
        if (is_upper && !was_upper)
            sg_buf_add(b, "_", 1);
        sg_buf_add(b, &c, 1);
        was_upper = is_upper;
    }
}

/* protoc-c's CamelToUpper: "OrderItem" -> "ORDER_ITEM". */
static void camel_to_upper(sg_buf *b, const char *s, size_t n)
{
    int was_upper = 1;
    for (size_t i = 0; i < n; i++) {
        int is_upper = isupper((unsigned char)s[i]) != 0;
        char c = (char)toupper((unsigned char)s[i]);
        if (is_upper && !was_upper)
            sg_buf_add(b, "_", 1);
        sg_buf_add(b, &c, 1);
        was_upper = is_upper;
    }
}

char *sg_pbc_upper(const char *full_name)
{
    return pbc_join(full_name, camel_to_upper);
}

char *sg_pbc_type(const char *full_name)
{
    return pbc_join(full_name, to_camel);
}

char *sg_pbc_lower(const char *full_name)
{
    return pbc_join(full_name, camel_to_lower);
}

/* The names <stdint.h> and <limits.h> define: int8_t, uint_least16_t, INT32_MAX,
 * UINT64_C, INT_MAX, ... */
static int std_int_name(const char *s)
{
    static const char *const lim[] = {
        "SCHAR_MIN",   "SCHAR_MAX",   "UCHAR_MAX", "CHAR_MIN",  "CHAR_MAX",   "SHRT_MIN",
        "SHRT_MAX",    "USHRT_MAX",   "INT_MIN",   "INT_MAX",   "UINT_MAX",   "LONG_MIN",
        "LONG_MAX",    "ULONG_MAX",   "LLONG_MIN", "LLONG_MAX", "ULLONG_MAX", "SIZE_MAX",
        "PTRDIFF_MIN", "PTRDIFF_MAX", "MB_LEN_MAX"};
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++)
        if (!strcmp(lim[i], s))
            return 1;
    const char *p = s;
    if (*p == 'u' || *p == 'U')
        p++;
    bool upper = *p == 'I';
    if (strncmp(p, upper ? "INT" : "int", 3) != 0)
        return 0;
    p += 3;
    static const char *const mid[] = {"_LEAST", "_least", "_FAST", "_fast"};
    for (size_t i = 0; i < 4; i++)
        if (!strncmp(p, mid[i], strlen(mid[i])) && (i % 2 == 0) == upper)
            p += strlen(mid[i]);
    if (!strncmp(p, upper ? "MAX" : "max", 3))
        p += 3;
    else if (!strncmp(p, upper ? "PTR" : "ptr", 3))
        p += 3;
    else
        while (isdigit((unsigned char)*p))
            p++;
    if (!upper)
        return !strcmp(p, "_t");
    return !strcmp(p, "_MAX") || !strcmp(p, "_MIN") || !strcmp(p, "_C");
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], s))
            return true;
    return false;
}

int sg_is_cxx98_keyword(const char *s)
{
    static const char *const kw[] = {
        "and",
        "and_eq",
        "asm",
        "auto",
        "bitand",
        "bitor",
        "bool",
        "break",
        "case",
        "catch",
        "char",
        "class",
        "compl",
        "const",
        "const_cast",
        "continue",
        "default",
        "delete",
        "do",
        "double",
        "dynamic_cast",
        "else",
        "enum",
        "explicit",
        "extern",
        "false",
        "float",
        "for",
        "friend",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "mutable",
        "namespace",
        "new",
        "not",
        "not_eq",
        "operator",
        "or",
        "or_eq",
        "private",
        "protected",
        "public",
        "register",
        "reinterpret_cast",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "static_cast",
        "struct",
        "switch",
        "template",
        "this",
        "throw",
        "true",
        "try",
        "typedef",
        "typeid",
        "typename",
        "union",
        "unsigned",
        "using",
        "virtual",
        "void",
        "volatile",
        "wchar_t",
        "while",
        "xor",
        "xor_eq",
    };
    return in_list(s, kw, sizeof(kw) / sizeof(kw[0]));
}

int sg_is_keyword(const char *s)
{
    static const char *const kw[] = {
        /* besides C++98's */
        "alignas",   "alignof",     "char16_t",  "char32_t",       "char8_t",
        "co_await",  "co_return",   "co_yield",  "concept",        "consteval",
        "constexpr", "constinit",   "decltype",  "export",         "noexcept",
        "nullptr",   "requires",    "restrict",  "static_assert",  "thread_local",
        "_Alignas",  "_Alignof",    "_Atomic",   "_Bool",          "_Complex",
        "_Generic",  "_Imaginary",  "_Noreturn", "_Static_assert", "_Thread_local",
        "errno",     "NULL",        "EOF",       "unix",           "linux",
        "i386",      "assert",      "offsetof",  "INFINITY",       "NAN",
        "HUGE_VAL",  "HUGE_VALF",   "HUGE_VALL", "EXIT_SUCCESS",   "EXIT_FAILURE",
        "RAND_MAX",  "MB_CUR_MAX",  "CHAR_BIT",  "size_t",         "ssize_t",
        "ptrdiff_t", "max_align_t", "intptr_t",  "uintptr_t",      "intmax_t",
        "uintmax_t", "FILE",        "div_t",     "ldiv_t",         "lldiv_t",
        "float_t",   "double_t",    "nullptr_t",
    };
    return sg_is_cxx98_keyword(s) || in_list(s, kw, sizeof(kw) / sizeof(kw[0])) ||
           std_int_name(s);
}

static int hexval(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

sg_buf sg_unescape(const char *s)
{
    sg_buf b = {0};
    while (*s) {
        char c = *s++;
        if (c == '\\' && *s) {
            char e = *s++;
            if (e >= '0' && e <= '7') {
                int v = e - '0';
                for (int k = 0; k < 2 && *s >= '0' && *s <= '7'; k++)
                    v = v * 8 + (*s++ - '0');
                c = (char)v;
            } else if (e == 'x' && isxdigit((unsigned char)*s)) {
                int v = 0;
                for (int k = 0; k < 2 && isxdigit((unsigned char)*s); k++)
                    v = v * 16 + hexval(*s++);
                c = (char)v;
            } else {
                c = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
            }
        }
        sg_buf_add(&b, &c, 1);
    }
    return b;
}

const char *sg_bytes_literal(const char *p, size_t n)
{
    sg_buf b = {0};
    sg_buf_puts(&b, "b\"");
    for (size_t i = 0; i < n; i++)
        sg_buf_printf(&b, "\\x%02x", (unsigned char)p[i]);
    sg_buf_puts(&b, "\"");
    const char *s = sg_strdup(b.data);
    sg_buf_free(&b);
    return s;
}
