/*
 * emit_c.c — the C emitter: <base>.shoal.h and <base>.shoal.c per schema file.
 *
 * Generated files hold only what the schema decides; the generic code is written once
 * in shoal/typed.h (macros) and libshoal (typed.c), nanopb's way. A fixed message
 * becomes a struct laid out exactly as the model says (checked by static assertions),
 * an init macro, and one SHOAL_GEN_FIXED line that expands to its typed wrappers over
 * Value, Array, Queue and Pipe and its protobuf form; the .c holds what those need: the
 * layout descriptor (shoal_type), the protobuf table (shoal_pb_message) and the
 * validation function. An encoded message is protoc-c's struct under the shoal name,
 * declared and defined by SHOAL_GEN_ENCODED_* over libshoal's protobuf-c helpers, with
 * the file's table of schema bounds; the .c includes protoc-c's .pb-c.c. Every
 * generated header checks SHOAL_GEN_ABI against the SG_GEN_ABI it was made for.
 *
 * Before emitting, the C-only rules run (C names unique and not reserved, protoc-c's
 * share compiled in this run, protoc-c's member names compilable): other languages
 * are not refused by them. The output is deterministic: the same schema always gives
 * the same bytes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

/* ---- small helpers -------------------------------------------------------------- */

/* Appends template t with @T (the C name), @N (the full name), and protoc-c's names
 * @P (type), @D (lower case) and @U (upper case) replaced. */
static void msg_tpl(sg_buf *b, const char *t, const sg_message *msg)
{
    for (const char *p = t; *p; p++) {
        const char *v = NULL;
        if (*p == '@') {
            switch (p[1]) {
            case 'T':
                v = msg->c_name;
                break;
            case 'N':
                v = msg->full_name;
                break;
            case 'P':
                v = sg_pbc_type(msg->full_name);
                break;
            case 'D':
                v = sg_pbc_lower(msg->full_name);
                break;
            case 'U':
                v = sg_pbc_upper(msg->full_name);
                break;
            }
        }
        if (v) {
            sg_buf_puts(b, v);
            p++;
        } else {
            sg_buf_add(b, p, 1);
        }
    }
}

static void indent(sg_buf *b, int n)
{
    for (int i = 0; i < n; i++)
        sg_buf_puts(b, "    ");
}

static const char *c_scalar(enum sg_kind k)
{
    switch (k) {
    case SG_INT8:
        return "int8_t";
    case SG_UINT8:
        return "uint8_t";
    case SG_INT16:
        return "int16_t";
    case SG_UINT16:
        return "uint16_t";
    case SG_INT32:
        return "int32_t";
    case SG_UINT32:
        return "uint32_t";
    case SG_INT64:
        return "int64_t";
    case SG_UINT64:
        return "uint64_t";
    case SG_FLOAT:
        return "float";
    case SG_DOUBLE:
        return "double";
    case SG_BOOL:
        return "bool";
    case SG_CHAR:
        return "char";
    case SG_ENUM:
        return "int32_t";
    default:
        return "?";
    }
}

static const char *kind_const(enum sg_kind k)
{
    switch (k) {
    case SG_INT8:
        return "SHOAL_FIELD_INT8";
    case SG_UINT8:
        return "SHOAL_FIELD_UINT8";
    case SG_INT16:
        return "SHOAL_FIELD_INT16";
    case SG_UINT16:
        return "SHOAL_FIELD_UINT16";
    case SG_INT32:
        return "SHOAL_FIELD_INT32";
    case SG_UINT32:
        return "SHOAL_FIELD_UINT32";
    case SG_INT64:
        return "SHOAL_FIELD_INT64";
    case SG_UINT64:
        return "SHOAL_FIELD_UINT64";
    case SG_FLOAT:
        return "SHOAL_FIELD_FLOAT";
    case SG_DOUBLE:
        return "SHOAL_FIELD_DOUBLE";
    case SG_BOOL:
        return "SHOAL_FIELD_BOOL";
    case SG_CHAR:
        return "SHOAL_FIELD_CHAR";
    case SG_ENUM:
        return "SHOAL_FIELD_ENUM";
    case SG_STRING:
        return "SHOAL_FIELD_STRING";
    case SG_BYTES:
        return "SHOAL_FIELD_BYTES";
    case SG_MESSAGE:
        return "SHOAL_FIELD_MESSAGE";
    case SG_UNION:
        return "SHOAL_FIELD_UNION";
    }
    return "0";
}

static const char *guard_name(const sg_file *f)
{
    char *g = sg_printf("SHOAL_GEN_%s_SHOAL_H", f->base);
    for (char *p = g; *p; p++)
        *p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    return g;
}

/* Messages of a file that get C code (map entries are protoc-c's business). */
static bool emitted(const sg_message *msg)
{
    return !msg->is_map_entry && !msg->failed;
}

/* ---- C names --------------------------------------------------------------------- */

/* The names generated for each message besides its own (the typed wrappers of
 * shoal/typed.h and the declarations of the header). */
static const char *const fixed_suffixes[] = {
    "_INIT",
    "_LAYOUT_HASH",
    "_type",
    "_validate",
    "_fields",
    "_value",
    "_value_open",
    "_value_close",
    "_value_name",
    "_value_read",
    "_value_write",
    "_value_snapshot",
    "_value_modify",
    "_value_commit",
    "_value_data",
    "_value_get_lock",
    "_array",
    "_array_open",
    "_array_close",
    "_array_name",
    "_array_len",
    "_array_check_",
    "_array_get",
    "_array_set",
    "_array_read",
    "_array_write",
    "_array_data",
    "_array_get_lock",
    "_queue",
    "_queue_open",
    "_queue_close",
    "_queue_name",
    "_queue_put",
    "_queue_try_put",
    "_queue_get",
    "_queue_try_get",
    "_queue_put_batch",
    "_queue_get_batch",
    "_queue_loan",
    "_queue_commit",
    "_queue_peek",
    "_queue_release",
    "_queue_shutdown",
    "_queue_stats",
    "_pipe",
    "_pipe_open",
    "_pipe_pair",
    "_pipe_close",
    "_pipe_name",
    "_pipe_send",
    "_pipe_try_send",
    "_pipe_recv",
    "_pipe_try_recv",
    "_pipe_poll",
};
static const char *const encoded_suffixes[] = {
    "_INIT",          "_validate",      "_free",          "_queue",
    "_queue_open",    "_queue_close",   "_queue_name",    "_queue_put",
    "_queue_try_put", "_queue_get",     "_queue_try_get", "_queue_shutdown",
    "_queue_stats",   "_pipe",          "_pipe_open",     "_pipe_pair",
    "_pipe_close",    "_pipe_name",     "_pipe_send",     "_pipe_try_send",
    "_pipe_recv",     "_pipe_try_recv", "_pipe_poll",
};

typedef struct c_ident {
    const char *name;
    const char *owner; /* "message a.B" */
    const char *where; /* "a.proto" */
} c_ident;

typedef struct c_idents {
    c_ident *v;
    size_t n, cap;
} c_idents;

static void ident(c_idents *t, const char *where, const char *owner, const char *name)
{
    t->v = sg_grow(t->v, sizeof(*t->v), &t->cap, t->n + 1);
    t->v[t->n++] = (c_ident){name, owner, where};
}

static void message_idents(c_idents *t, const sg_message *msg)
{
    const char *T = msg->c_name, *F = msg->file->name;
    const char *own = sg_printf("message %s", msg->full_name);
    ident(t, F, own, T);
    size_t n = msg->encoded ? sizeof(encoded_suffixes) / sizeof(encoded_suffixes[0])
                            : sizeof(fixed_suffixes) / sizeof(fixed_suffixes[0]);
    for (size_t i = 0; i < n; i++)
        ident(
            t, F, own,
            sg_printf("%s%s", T, msg->encoded ? encoded_suffixes[i] : fixed_suffixes[i]));
    if (msg->encoded)
        return;
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if ((f->kind == SG_STRING || f->kind == SG_BYTES) && !f->repeated &&
            f->oneof < 0) {
            ident(t, F, own, sg_printf("%s_set_%s", T, f->name));
            if (f->kind == SG_STRING)
                ident(t, F, own, sg_printf("%s_set_%s_n", T, f->name));
        }
    }
    for (size_t k = 0; k < msg->noneofs; k++) {
        const sg_oneof *o = &msg->oneofs[k];
        ident(t, F, own, sg_printf("%s_%s_NOT_SET", T, o->name));
        ident(t, F, own, sg_printf("%s_%s_members", T, o->name));
        ident(t, F, own, sg_printf("%s_%s_union", T, o->name));
        for (size_t j = o->first; j < o->first + o->count; j++)
            ident(t, F, own, sg_printf("%s_%s_%s", T, o->name, msg->fields[j].name));
    }
}

static void enum_idents(c_idents *t, const sg_enum *e)
{
    const char *own = sg_printf("enum %s", e->full_name), *F = e->file->name;
    ident(t, F, own, e->c_name);
    ident(t, F, own, sg_printf("%s_is_valid", e->c_name));
    ident(t, F, own, sg_printf("%s_name", e->c_name));
    for (size_t i = 0; i < e->nvalues; i++)
        ident(t, F, own, sg_printf("%s_%s", e->c_name, e->values[i].name));
}

/* The C names a service's stub and skeleton declare (emit_c_service.c). */
static void service_idents(c_idents *t, const sg_file *file, const sg_service *s)
{
    static const char *const suffixes[] = {"_SERVICE",  "_N_METHODS", "_methods",
                                           "_stub",     "_stub_open", "_stub_close",
                                           "_handlers", "_server",    "_server_add"};
    static const char *const method_suffixes[] = {
        "",        "_call",   "_start", "_send",     "_close_send", "_next",
        "_cancel", "_finish", "_free",  "_ctx_next", "_ctx_send",   "_serve_"};
    const char *own = sg_printf("service %s", s->full_name), *F = file->name;
    ident(t, F, own, s->c_name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        ident(t, F, own, sg_printf("%s%s", s->c_name, suffixes[i]));
    for (size_t j = 0; j < s->nmethods; j++) {
        ident(t, F, own, sg_printf("%s_METHOD_%s", s->c_name, s->methods[j].name));
        for (size_t i = 0; i < sizeof(method_suffixes) / sizeof(method_suffixes[0]); i++)
            ident(
                t, F, own,
                sg_printf("%s_%s%s", s->c_name, s->methods[j].name, method_suffixes[i]));
    }
}

static int cmp_ident(const void *a, const void *b)
{
    const c_ident *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->owner, y->owner);
}

/* A message or enum named like a C keyword or standard type cannot be declared. */
static void check_reserved(sg_model *m, const char *where, const char *owner,
                           const char *c_name)
{
    if (sg_is_keyword(c_name))
        sg_error(m,
                 "%s: %s: its C name %s is a C or C++ keyword or a name the standard "
                 "headers define; rename it or set (shoal.c_prefix)",
                 where, owner, c_name);
}

/* Every C name the generated files declare must be unique, and must not be a
 * keyword or protoc-c's name for a type in the same translation unit (which happens
 * without a package). */
static void check_c_names(sg_model *m)
{
    c_idents t = {0};
    for (size_t i = 0; i < m->nmessages; i++) {
        const sg_message *msg = m->messages[i];
        if (!msg->file->generate || !emitted(msg))
            continue;
        message_idents(&t, msg);
        check_reserved(m, msg->file->name, sg_printf("message %s", msg->full_name),
                       msg->c_name);
        if (msg->file->needs_pbc && !msg->encoded &&
            !strcmp(msg->c_name, sg_pbc_type(msg->full_name)))
            sg_error(m,
                     "%s: message %s: its C name %s is also protoc-c's name for it; give "
                     "the file a package or set (shoal.c_prefix)",
                     msg->file->name, msg->full_name, msg->c_name);
    }
    for (size_t i = 0; i < m->nenums; i++) {
        const sg_enum *e = m->enums[i];
        if (!e->file->generate)
            continue;
        enum_idents(&t, e);
        check_reserved(m, e->file->name, sg_printf("enum %s", e->full_name), e->c_name);
        if (e->file->needs_pbc && !strcmp(e->c_name, sg_pbc_type(e->full_name)))
            sg_error(m,
                     "%s: enum %s: its C name %s is also protoc-c's name for it; give "
                     "the file a package or set (shoal.c_prefix)",
                     e->file->name, e->full_name, e->c_name);
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        const sg_file *f = m->files[i];
        for (size_t j = 0; j < f->nservices && f->generate; j++) {
            service_idents(&t, f, &f->services[j]);
            check_reserved(m, f->name, sg_printf("service %s", f->services[j].full_name),
                           f->services[j].c_name);
        }
    }
    if (t.n)
        qsort(t.v, t.n, sizeof(*t.v), cmp_ident);
    const char **done = sg_alloc(sizeof(*done) * (t.n + 1)); /* owner pairs told */
    size_t ndone = 0;
    for (size_t i = 1; i < t.n; i++) {
        const c_ident *a = &t.v[i - 1], *b = &t.v[i];
        if (strcmp(a->name, b->name) != 0)
            continue;
        const char *pair = sg_printf("%s|%s", a->owner, b->owner);
        bool told = false;
        for (size_t k = 0; k < ndone && !told; k++)
            told = !strcmp(done[k], pair);
        if (told)
            continue;
        done[ndone++] = pair;
        if (!strcmp(a->owner, b->owner))
            sg_error(m,
                     "%s: %s: the C name %s is generated twice for it; rename a field, "
                     "oneof or value",
                     a->where, a->owner, a->name);
        else
            sg_error(m,
                     "%s: %s: the C name %s is also generated for %s (%s); rename one or "
                     "set (shoal.c_prefix)",
                     a->where, a->owner, a->name, b->owner, b->where);
    }
}

/* protoc-c names its struct members after the fields, lower-cased, escaping only
 * C++98's keywords: in a file whose protoc-c header is included, a field protoc-c
 * would name `export`, `restrict`, `unix` or `size_t` cannot compile. */
static void check_pbc_members(sg_model *m)
{
    for (size_t i = 0; i < m->nmessages; i++) {
        const sg_message *msg = m->messages[i];
        if (!msg->file->generate || !msg->file->needs_pbc_header || msg->is_map_entry)
            continue;
        for (size_t j = 0; j < msg->nfields; j++) {
            const sg_field *f = &msg->fields[j];
            if (f->is_has_flag)
                continue;
            char *low = sg_strdup(f->name);
            for (char *p = low; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if (sg_is_keyword(low) && !sg_is_cxx98_keyword(low))
                sg_error(m,
                         "%s: message %s, field %s: protoc-c's code (which the file's "
                         "encoded messages need) names its member %s, which is reserved "
                         "in C or C++; rename the field",
                         msg->file->name, msg->full_name, f->name, low);
        }
    }
}

/* protoc-c's code of every file it is needed for is compiled in with the files being
 * generated: they must all be in this run. */
static void check_pbc_files(sg_model *m)
{
    for (size_t i = 0; i < m->nmessages; i++) {
        const sg_message *msg = m->messages[i];
        if (msg->needs_pbc && !msg->file->generate)
            sg_error(m,
                     "%s: message %s is used by an encoded message, so protoc-c's code "
                     "for %s must be compiled too: list %s among the files to generate",
                     msg->file->name, msg->full_name, msg->file->name, msg->file->name);
    }
}

/* ---- struct members --------------------------------------------------------------- */

/* Declares one element of f under the declarator `decl` ("symbol", "items[4]"). */
static void elem_decl(sg_buf *b, const sg_field *f, const char *decl, int ind)
{
    indent(b, ind);
    if (f->kind == SG_STRING || f->kind == SG_BYTES) {
        sg_buf_puts(b, "struct {\n");
        indent(b, ind + 1);
        sg_buf_puts(b, "uint32_t len;\n");
        indent(b, ind + 1);
        sg_buf_printf(b, "%s data[%u];\n", f->kind == SG_STRING ? "char" : "uint8_t",
                      f->max_len);
        indent(b, ind);
        sg_buf_printf(b, "} %s;", decl);
    } else if (f->kind == SG_MESSAGE) {
        sg_buf_printf(b, "%s %s;", f->msg->c_name, decl);
    } else {
        sg_buf_printf(b, "%s %s;", c_scalar(f->kind), decl);
    }
    if (f->kind == SG_ENUM)
        sg_buf_printf(b, " /* %s */", f->enm->full_name);
    sg_buf_puts(b, "\n");
}

static void member_decl(sg_buf *b, const sg_field *f, int ind)
{
    if (!f->repeated) {
        elem_decl(b, f, f->c_name, ind);
        return;
    }
    indent(b, ind);
    sg_buf_puts(b, "struct {\n");
    indent(b, ind + 1);
    sg_buf_puts(b, "uint32_t count;\n");
    elem_decl(b, f, sg_printf("items[%u]", f->max_count), ind + 1);
    indent(b, ind);
    sg_buf_printf(b, "} %s;\n", f->c_name);
}

static void oneof_decl(sg_buf *b, const sg_message *msg, const sg_oneof *o)
{
    sg_buf_printf(b, "    uint32_t %s_case; /* %s_NOT_SET (0) or a member's number */\n",
                  o->name, sg_printf("%s_%s", msg->c_name, o->name));
    sg_buf_puts(b, "    union {\n");
    for (size_t i = o->first; i < o->first + o->count; i++)
        member_decl(b, &msg->fields[i], 2);
    sg_buf_printf(b, "    } %s;\n", o->c_name);
}

/* ---- initialisers --------------------------------------------------------------- */

static const char *int_literal(const sg_field *f, const char *v)
{
    switch (f->kind) {
    case SG_INT32:
        return !strcmp(v, "-2147483648") ? "INT32_MIN" : v;
    case SG_UINT32:
        return sg_printf("%su", v);
    case SG_INT64:
        return !strcmp(v, "-9223372036854775808") ? "INT64_MIN"
                                                  : sg_printf("INT64_C(%s)", v);
    case SG_UINT64:
        return sg_printf("UINT64_C(%s)", v);
    default:
        return v;
    }
}

static const char *float_literal(const char *v)
{
    if (!strcmp(v, "inf"))
        return "INFINITY";
    if (!strcmp(v, "-inf"))
        return "-INFINITY";
    if (!strcmp(v, "nan"))
        return "NAN";
    return strpbrk(v, ".eE") ? v : sg_printf("%s.0", v);
}

static const char *text_init(sg_model *m, const sg_message *msg, const sg_field *f)
{
    sg_buf raw = {0};
    if (f->kind == SG_BYTES)
        raw = sg_unescape(f->default_value);
    else
        sg_buf_puts(&raw, f->default_value);
    if (raw.len > f->max_len)
        sg_error(m,
                 "%s: message %s, field %s: the default value (%zu bytes) is longer than "
                 "(shoal.max_len) %u",
                 msg->file->name, msg->full_name, f->name, raw.len, f->max_len);
    sg_buf b = {0};
    sg_buf_printf(&b, "{%zu, {", raw.len);
    for (size_t i = 0; i < raw.len; i++)
        sg_buf_printf(&b, f->kind == SG_STRING ? "%s'\\x%02x'" : "%s0x%02x",
                      i ? ", " : "", (unsigned char)raw.data[i]);
    sg_buf_puts(&b, raw.len ? "}}" : "0}}");
    const char *s = sg_strdup(b.data);
    sg_buf_free(&b);
    sg_buf_free(&raw);
    return s;
}

static int32_t enum_default(const sg_field *f)
{
    if (f->default_value)
        for (size_t i = 0; i < f->enm->nvalues; i++)
            if (!strcmp(f->enm->values[i].name, f->default_value))
                return f->enm->values[i].number;
    /* proto2: the first value; proto3's first value is 0 */
    return f->enm->nvalues ? f->enm->values[0].number : 0;
}

/* The initialiser of one element; `dflt`: honour the schema's default. */
static const char *elem_init(sg_model *m, const sg_message *msg, const sg_field *f,
                             bool dflt)
{
    const char *d = dflt ? f->default_value : NULL;
    switch (f->kind) {
    case SG_STRING:
    case SG_BYTES:
        return d ? text_init(m, msg, f) : "{0, {0}}";
    case SG_MESSAGE:
        return sg_printf("%s_INIT", f->msg->c_name);
    case SG_ENUM:
        return sg_printf("%d", dflt ? enum_default(f) : 0);
    case SG_BOOL:
        return d && !strcmp(d, "true") ? "true" : "false";
    case SG_FLOAT:
    case SG_DOUBLE:
        return d ? float_literal(d) : "0";
    default:
        return d ? int_literal(f, d) : "0";
    }
}

static const char *member_init(sg_model *m, const sg_message *msg, const sg_field *f)
{
    if (f->repeated)
        return sg_printf("{0, {%s}}", elem_init(m, msg, f, false));
    return elem_init(m, msg, f, true);
}

static const char *message_init(sg_model *m, const sg_message *msg)
{
    sg_buf b = {0};
    sg_buf_puts(&b, "{");
    size_t k = 0;
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (k++)
            sg_buf_puts(&b, ", ");
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            sg_buf_printf(&b, "0, {%s}", elem_init(m, msg, f, false));
            i = o->first + o->count - 1;
        } else {
            sg_buf_puts(&b, member_init(m, msg, f));
        }
    }
    if (!k)
        sg_buf_puts(&b, "0");
    sg_buf_puts(&b, "}");
    const char *s = sg_strdup(b.data);
    sg_buf_free(&b);
    return s;
}

static bool needs_math(const sg_file *file)
{
    for (size_t i = 0; i < file->nmessages; i++) {
        const sg_message *msg = file->messages[i];
        if (!emitted(msg) || msg->encoded)
            continue;
        for (size_t j = 0; j < msg->nfields; j++) {
            const sg_field *f = &msg->fields[j];
            if ((f->kind == SG_FLOAT || f->kind == SG_DOUBLE) && f->default_value &&
                strpbrk(f->default_value, "in"))
                return true;
        }
    }
    return false;
}

/* ---- header: enums ----------------------------------------------------------------- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void emit_enum(sg_buf *b, const sg_enum *e)
{
    sg_buf_printf(b, "/* ---- enum %s ---- */\n", e->full_name);
    sg_buf_printf(b, "typedef enum %s {\n", e->c_name);
    for (size_t i = 0; i < e->nvalues; i++)
        sg_buf_printf(b, "    %s_%s = %d,\n", e->c_name, e->values[i].name,
                      e->values[i].number);
    sg_buf_printf(b, "} %s;\n", e->c_name);
    int32_t *v = sg_alloc(sizeof(*v) * (e->nvalues + 1));
    for (size_t i = 0; i < e->nvalues; i++)
        v[i] = e->values[i].number;
    qsort(v, e->nvalues, sizeof(*v), cmp_i32);
    size_t n = 0; /* distinct values */
    for (size_t i = 0; i < e->nvalues; i++)
        if (i == 0 || v[i] != v[i - 1])
            v[n++] = v[i];
    sg_buf_printf(b, "static inline bool %s_is_valid(int32_t v)\n{\n", e->c_name);
    if (n && (int64_t)v[n - 1] - v[0] + 1 == (int64_t)n) { /* one range */
        sg_buf_printf(b, "    return v >= %d && v <= %d;\n}\n", v[0], v[n - 1]);
    } else {
        sg_buf_puts(b, "    switch (v) {\n   ");
        for (size_t i = 0; i < n; i++)
            sg_buf_printf(b, " case %d:", v[i]);
        sg_buf_puts(b, "\n        return true;\n    default:\n        return false;\n"
                       "    }\n}\n");
    }
    sg_buf_printf(b, "const char *%s_name(int32_t v); /* NULL if unknown */\n\n",
                  e->c_name);
}

/* ---- header: fixed messages ----------------------------------------------------- */

/* Setters for bounded strings and bytes (shoal/typed.h's SHOAL_GEN_SET_*). */
static void emit_setters(sg_buf *b, const sg_message *msg)
{
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if ((f->kind != SG_STRING && f->kind != SG_BYTES) || f->repeated || f->oneof >= 0)
            continue;
        const char *has = i > 0 && msg->fields[i - 1].is_has_flag
                              ? sg_printf("&m->%s", msg->fields[i - 1].c_name)
                              : "NULL";
        sg_buf_printf(b, "SHOAL_GEN_SET_%s(%s, %s, %s, \"%s.%s\", %s)\n",
                      f->kind == SG_STRING ? "STRING" : "BYTES", msg->c_name, f->name,
                      f->c_name, msg->full_name, f->name, has);
    }
}

static void emit_assert(sg_buf *b, const sg_message *msg, const char *member,
                        const char *name, uint32_t offset, uint32_t size)
{
    sg_buf_printf(
        b,
        "SHOAL_GEN_ASSERT(offsetof(%s, %s) == %u && sizeof(((%s *)0)->%s) == %u, "
        "\"%s.%s\");\n",
        msg->c_name, member, offset, msg->c_name, member, size, msg->full_name, name);
}

static void emit_asserts(sg_buf *b, const sg_message *msg)
{
    const char *T = msg->c_name;
    sg_buf_printf(b,
                  "SHOAL_GEN_ASSERT(sizeof(%s) == %u && SHOAL_GEN_ALIGNOF(%s) == %u, "
                  "\"%s\");\n",
                  T, msg->size, T, msg->align, msg->full_name);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            emit_assert(b, msg, sg_printf("%s_case", o->name), o->name, o->case_offset,
                        4);
            emit_assert(b, msg, o->c_name, o->name, o->union_offset, o->union_size);
            i = o->first + o->count - 1;
            continue;
        }
        emit_assert(b, msg, f->c_name, f->name, f->offset, f->size);
    }
}

static void emit_fixed_header(sg_model *m, sg_buf *b, const sg_message *msg)
{
    sg_buf_printf(b,
                  "/* ---- message %s: fixed layout, %u bytes, align %u ---- */\n"
                  "typedef struct %s {\n",
                  msg->full_name, msg->size, msg->align, msg->c_name);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            oneof_decl(b, msg, o);
            i = o->first + o->count - 1;
        } else {
            member_decl(b, f, 1);
        }
    }
    if (!msg->nfields)
        sg_buf_puts(b, "    uint8_t shoal_empty_; /* C has no empty structs */\n");
    sg_buf_printf(b, "} %s;\n", msg->c_name);
    for (size_t i = 0; i < msg->noneofs; i++) {
        const sg_oneof *o = &msg->oneofs[i];
        sg_buf_printf(b, "enum { %s_%s_NOT_SET = 0", msg->c_name, o->name);
        for (size_t j = o->first; j < o->first + o->count; j++)
            sg_buf_printf(b, ", %s_%s_%s = %u", msg->c_name, o->name, msg->fields[j].name,
                          msg->fields[j].number);
        sg_buf_printf(b, " }; /* %s_case */\n", o->name);
    }
    sg_buf_printf(b, "#define %s_INIT %s\n", msg->c_name, message_init(m, msg));
    sg_buf_printf(b, "#define %s_LAYOUT_HASH UINT64_C(0x%016llx)\n", msg->c_name,
                  (unsigned long long)msg->hash);
    emit_asserts(b, msg);
    sg_buf_printf(b, "SHOAL_GEN_FIXED(%s)\n", msg->c_name);
    emit_setters(b, msg);
    sg_buf_puts(b, "\n");
}

/* ---- header: encoded messages ---------------------------------------------------- */

static void emit_encoded_header(sg_buf *b, const sg_message *msg)
{
    sg_buf_printf(b, "/* ---- message %s: encoded (%s) ---- */\n", msg->full_name,
                  msg->reason);
    msg_tpl(b,
            "typedef @P @T; /* protoc-c's struct */\n"
            "#define @T_INIT @U__INIT\n"
            "SHOAL_GEN_ENCODED_DECLARE(@T)\n\n",
            msg);
}

/* ---- header ------------------------------------------------------------------------ */

/* The generated headers this file's messages need: every other file whose message or
 * enum one of its fields uses. */
static void emit_includes(sg_model *m, sg_buf *b, const sg_file *file)
{
    for (size_t d = 0; d < file->ndeps; d++) {
        const sg_file *dep = file->deps[d];
        bool used = false;
        for (size_t i = 0; i < file->nmessages && !used; i++) {
            const sg_message *msg = file->messages[i];
            for (size_t j = 0; j < msg->nfields; j++) {
                const sg_field *f = &msg->fields[j];
                if ((f->msg && f->msg->file == dep) || (f->enm && f->enm->file == dep))
                    used = true;
            }
        }
        for (size_t i = 0; i < file->nservices; i++)
            for (size_t j = 0; j < file->services[i].nmethods; j++)
                used |= file->services[i].methods[j].input->file == dep ||
                        file->services[i].methods[j].output->file == dep;
        if (!used)
            continue;
        if (!dep->generate)
            sg_error(m,
                     "%s: it uses types of %s, which is not being generated: list %s "
                     "among the files to compile",
                     file->name, dep->name, dep->name);
        sg_buf_printf(b, "#include \"%s.shoal.h\"\n", dep->base);
    }
    if (file->has_encoded)
        sg_buf_printf(b, "#include \"%s.pb-c.h\"\n", file->base);
}

static void emit_header(sg_model *m, const sg_file *file, sg_outputs *out)
{
    sg_buf b = {0};
    const char *guard = guard_name(file);
    sg_buf_printf(&b,
                  "/* Generated by protoc-gen-shoal from %s. Do not edit.\n"
                  " * The API of each message: shoal/typed.h. */\n",
                  file->name);
    sg_buf_printf(&b, "#ifndef %s\n#define %s\n\n", guard, guard);
    if (needs_math(file))
        sg_buf_puts(&b, "#include <math.h>\n");
    sg_buf_puts(&b, "#include <shoal.h>\n#include <shoal/typed.h>\n");
    if (file->nservices)
        sg_buf_puts(&b, "#include <shoal/rpc.h>\n");
    emit_includes(m, &b, file);
    sg_buf_printf(&b,
                  "\n#if SHOAL_GEN_ABI != %d\n"
                  "#error \"%s.shoal.h was generated for another version of shoal: "
                  "regenerate it\"\n#endif\n",
                  SG_GEN_ABI, file->base);
    sg_buf_puts(&b, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    for (size_t i = 0; i < file->nenums; i++)
        emit_enum(&b, file->enums[i]);
    size_t n;
    const sg_message **order = sg_file_messages_ordered(file, &n);
    for (size_t i = 0; i < n; i++) {
        const sg_message *msg = order[i];
        if (!emitted(msg))
            continue;
        if (msg->encoded)
            emit_encoded_header(&b, msg);
        else
            emit_fixed_header(m, &b, msg);
    }
    sg_emit_c_services_header(&b, file);
    sg_buf_printf(&b, "#ifdef __cplusplus\n}\n#endif\n#endif\n");
    sg_output_add(out, sg_printf("%s.shoal.h", file->base), &b);
}

/* ---- source: enums and descriptors ---------------------------------------------------
 */

static void emit_enum_names(sg_buf *b, const sg_enum *e)
{
    sg_buf_printf(b, "const char *%s_name(int32_t v)\n{\n    switch (v) {\n", e->c_name);
    for (size_t i = 0; i < e->nvalues; i++) {
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            dup |= e->values[j].number == e->values[i].number;
        if (!dup)
            sg_buf_printf(b, "    case %d: return \"%s\";\n", e->values[i].number,
                          e->values[i].name);
    }
    sg_buf_puts(b, "    default: return NULL;\n    }\n}\n");
}

static void field_entry(sg_buf *b, const sg_field *f, uint32_t offset)
{
    sg_buf_printf(b, "    {\"%s\", %u, %s, %u, %u, %u, %u, %s},\n", f->name, f->number,
                  kind_const(f->kind), offset, f->size, f->repeated ? f->max_count : 0,
                  f->max_len, f->msg ? sg_printf("&%s_type", f->msg->c_name) : "NULL");
}

static void emit_descriptor(sg_buf *b, const sg_message *msg)
{
    for (size_t i = 0; i < msg->noneofs; i++) {
        const sg_oneof *o = &msg->oneofs[i];
        sg_buf_printf(b, "static const shoal_field %s_%s_members[] = {\n", msg->c_name,
                      o->name);
        for (size_t j = o->first; j < o->first + o->count; j++)
            field_entry(b, &msg->fields[j], o->union_offset - o->case_offset);
        sg_buf_printf(b, "};\n");
        sg_buf_printf(b,
                      "static const shoal_type %s_%s_union = {\"%s\", "
                      "UINT64_C(0x%016llx), %u, %u, 0, %zu, %s_%s_members};\n",
                      msg->c_name, o->name, o->name, (unsigned long long)o->hash, o->size,
                      o->union_align > 4 ? o->union_align : 4, o->count, msg->c_name,
                      o->name);
    }
    size_t n = 0;
    if (msg->nfields) {
        sg_buf_printf(b, "static const shoal_field %s_fields[] = {\n", msg->c_name);
        for (size_t i = 0; i < msg->nfields; i++) {
            const sg_field *f = &msg->fields[i];
            n++;
            if (f->oneof < 0) {
                field_entry(b, f, f->offset);
                continue;
            }
            const sg_oneof *o = &msg->oneofs[f->oneof];
            sg_buf_printf(
                b, "    {\"%s\", 0, SHOAL_FIELD_UNION, %u, %u, 0, 0, &%s_%s_union},\n",
                o->name, o->case_offset, o->size, msg->c_name, o->name);
            i = o->first + o->count - 1;
        }
        sg_buf_puts(b, "};\n");
    }
    sg_buf_printf(b,
                  "const shoal_type %s_type = {\"%s\", UINT64_C(0x%016llx), %u, %u, 0, "
                  "%zu, %s};\n",
                  msg->c_name, msg->full_name, (unsigned long long)msg->hash, msg->size,
                  msg->align, n, n ? sg_printf("%s_fields", msg->c_name) : "NULL");
}

/* ---- source: the protobuf form of fixed messages ------------------------------------
 */

/* The table shoal_pb_encode and shoal_pb_decode read (shoal/typed.h). */
static void emit_pb_table(sg_buf *b, const sg_message *msg)
{
    const char *T = msg->c_name;
    size_t n = 0;
    sg_buf_printf(b, "static const %s %s_pb_init = %s_INIT;\n", T, T, T);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->is_has_flag)
            continue;
        if (!n++)
            sg_buf_printf(b, "static const shoal_pb_field %s_pb_fields[] = {\n", T);
        sg_pb_info pi = sg_pb_info_of(msg, i);
        const char *flags = pi.oneof      ? "SHOAL_PB_ONEOF"
                            : pi.has      ? "SHOAL_PB_HAS"
                            : pi.packed   ? "SHOAL_PB_REPEATED | SHOAL_PB_PACKED"
                            : pi.repeated ? "SHOAL_PB_REPEATED"
                                          : "0";
        sg_buf_printf(b, "    {%u, %d, %s, %u, %u, %u, %u, %u, %u, %s, \"%s\"},\n",
                      f->number, f->proto_type, flags, f->offset, pi.has_offset,
                      f->elem_size, f->items_offset, f->max_len,
                      f->repeated ? f->max_count : 0,
                      f->msg ? sg_printf("&%s_pb", f->msg->c_name) : "NULL", f->name);
    }
    if (n)
        sg_buf_puts(b, "};\n");
    sg_buf_printf(
        b, "const shoal_pb_message %s_pb = {\"%s\", %u, &%s_pb_init, %zu, %s};\n", T,
        msg->full_name, msg->size, T, n, n ? sg_printf("%s_pb_fields", T) : "NULL");
}

/* ---- source: validation of fixed messages ---------------------------------------- */

static bool elem_needs_check(const sg_field *f)
{
    return f->kind == SG_STRING || f->kind == SG_BYTES || f->kind == SG_ENUM ||
           f->kind == SG_BOOL || f->kind == SG_MESSAGE;
}

/* Checks one element, reachable as the C expression `x`. */
static void check_elem(sg_buf *b, const sg_message *msg, const sg_field *f, const char *x,
                       int ind)
{
    const char *N = msg->full_name;
    indent(b, ind);
    switch (f->kind) {
    case SG_STRING:
    case SG_BYTES:
        sg_buf_printf(b, "if (%s.len > %u)\n", x, f->max_len);
        indent(b, ind + 1);
        sg_buf_printf(b,
                      "return shoal_invalid(\"%s.%s: length %%u over max_len %u\", "
                      "(unsigned)%s.len);\n",
                      N, f->name, f->max_len, x);
        if (f->kind == SG_BYTES)
            break;
        indent(b, ind); /* protobuf's strings are UTF-8 */
        sg_buf_printf(b, "if (!shoal_utf8_valid(%s.data, %s.len))\n", x, x);
        indent(b, ind + 1);
        sg_buf_printf(b, "return shoal_invalid(\"%s.%s: the string is not UTF-8\");\n", N,
                      f->name);
        break;
    case SG_ENUM:
        sg_buf_printf(b, "if (!%s_is_valid(%s))\n", f->enm->c_name, x);
        indent(b, ind + 1);
        sg_buf_printf(
            b, "return shoal_invalid(\"%s.%s: %%d is not a value of %s\", (int)%s);\n", N,
            f->name, f->enm->full_name, x);
        break;
    case SG_BOOL:
        sg_buf_printf(b, "if (shoal_gen_bad_bool(&%s))\n", x);
        indent(b, ind + 1);
        sg_buf_printf(b,
                      "return shoal_invalid(\"%s.%s: a bool holds neither 0 nor 1\");\n",
                      N, f->name);
        break;
    case SG_MESSAGE:
        sg_buf_printf(b, "if ((rc = %s_validate(&%s)) != 0)\n", f->msg->c_name, x);
        indent(b, ind + 1);
        sg_buf_puts(b, "return rc;\n");
        break;
    default:
        break;
    }
}

static void check_member(sg_buf *b, const sg_message *msg, const sg_field *f,
                         const char *x, int ind)
{
    if (!f->repeated) {
        if (elem_needs_check(f))
            check_elem(b, msg, f, x, ind);
        return;
    }
    indent(b, ind);
    sg_buf_printf(b, "if (%s.count > %u)\n", x, f->max_count);
    indent(b, ind + 1);
    sg_buf_printf(b,
                  "return shoal_invalid(\"%s.%s: count %%u over max_count %u\", "
                  "(unsigned)%s.count);\n",
                  msg->full_name, f->name, f->max_count, x);
    if (!elem_needs_check(f))
        return;
    indent(b, ind);
    sg_buf_printf(b, "for (uint32_t i = 0; i < %s.count; i++) {\n", x);
    check_elem(b, msg, f, sg_printf("%s.items[i]", x), ind + 1);
    indent(b, ind);
    sg_buf_puts(b, "}\n");
}

static bool uses_rc(const sg_message *msg)
{
    for (size_t i = 0; i < msg->nfields; i++)
        if (msg->fields[i].kind == SG_MESSAGE)
            return true;
    return false;
}

static void emit_validate(sg_buf *b, const sg_message *msg)
{
    sg_buf_printf(b, "int %s_validate(const %s *m)\n{\n", msg->c_name, msg->c_name);
    if (uses_rc(msg))
        sg_buf_puts(b, "    int rc;\n");
    sg_buf_puts(b, "    (void)m;\n");
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof < 0 && i > 0 && msg->fields[i - 1].is_has_flag &&
            f->kind == SG_ENUM) {
            /* an absent enum may hold anything: zeros are no value of some enums */
            sg_buf_printf(b, "    if (m->%s) {\n", msg->fields[i - 1].c_name);
            check_member(b, msg, f, sg_printf("m->%s", f->c_name), 2);
            sg_buf_puts(b, "    }\n");
            continue;
        }
        if (f->oneof < 0) {
            check_member(b, msg, f, sg_printf("m->%s", f->c_name), 1);
            continue;
        }
        const sg_oneof *o = &msg->oneofs[f->oneof];
        sg_buf_printf(b, "    switch (m->%s_case) {\n    case 0:\n        break;\n",
                      o->name);
        for (size_t j = o->first; j < o->first + o->count; j++) {
            const sg_field *mf = &msg->fields[j];
            sg_buf_printf(b, "    case %u:\n", mf->number);
            check_member(b, msg, mf, sg_printf("m->%s.%s", o->c_name, mf->c_name), 2);
            sg_buf_puts(b, "        break;\n");
        }
        sg_buf_printf(b,
                      "    default:\n        return shoal_invalid(\"%s.%s: unknown case "
                      "%%u\", (unsigned)m->%s_case);\n    }\n",
                      msg->full_name, o->name, o->name);
        i = o->first + o->count - 1;
    }
    sg_buf_puts(b, "    return 0;\n}\n\n");
}

/* ---- source: encoded messages --------------------------------------------------------
 */

/* Static helpers every .shoal.c with encoded messages carries: packing into a queue or
 * pipe, unpacking out of it, and checking the schema's bounds on protoc-c's structs
 * generically through their descriptors. */
/* Whether `to` is `from` or one of its imports, directly or not: the files whose
 * protoc-c descriptors `from`'s code sees (and whose messages its messages can hold). */
static bool file_reaches(const sg_file *from, const sg_file *to, int depth)
{
    if (from == to)
        return true;
    for (size_t i = 0; depth < 64 && i < from->ndeps; i++)
        if (file_reaches(from->deps[i], to, depth + 1))
            return true;
    return false;
}

/* The bounds of every message protoc-c's code of this file can reach, and its fields of
 * open enums. */
static void emit_bounds(sg_buf *b, const sg_model *m, const sg_file *file)
{
    size_t n = 0;
    sg_buf_puts(b, "static const shoal_pb_bound shoal_gen_bound_v_[] = {\n");
    for (size_t i = 0; i < m->nmessages; i++) {
        const sg_message *msg = m->messages[i];
        if (!msg->needs_pbc || !file_reaches(file, msg->file, 0))
            continue;
        for (size_t j = 0; j < msg->nfields; j++) {
            const sg_field *f = &msg->fields[j];
            bool open_enum = f->kind == SG_ENUM && f->enm->file->proto3;
            if (!f->max_len && !f->max_count && !open_enum)
                continue;
            sg_buf_printf(b, "    {&%s__descriptor, %u, %u, %u, %d},\n",
                          sg_pbc_lower(msg->full_name), f->number, f->max_len,
                          f->max_count, open_enum);
            n++;
        }
    }
    if (!n) /* keep the array non-empty for C */
        sg_buf_puts(b, "    {NULL, 0, 0, 0, 0},\n");
    sg_buf_printf(b,
                  "};\nstatic const shoal_pb_bounds shoal_gen_bounds_ = "
                  "{shoal_gen_bound_v_, %zu};\n\n",
                  n);
}

static void emit_source(sg_model *m, const sg_file *file, sg_outputs *out)
{
    sg_buf b = {0};
    sg_buf_printf(&b, "/* Generated by protoc-gen-shoal from %s. Do not edit. */\n",
                  file->name);
    if (file->needs_pbc)
        sg_buf_puts(&b,
                    "/* protoc-c's code below names deprecated fields: it must see no\n"
                    " * deprecation attributes, even through the header. */\n"
                    "#ifndef PROTOBUF_C__NO_DEPRECATED\n"
                    "#define PROTOBUF_C__NO_DEPRECATED\n#endif\n");
    sg_buf_printf(&b, "#include \"%s.shoal.h\"\n", file->base);
    if (file->needs_pbc)
        sg_buf_printf(&b, "#include \"%s.pb-c.c\" /* protoc-c's code */\n", file->base);
    sg_buf_puts(&b, "\n");
    for (size_t i = 0; i < file->nenums; i++)
        emit_enum_names(&b, file->enums[i]);
    if (file->has_encoded)
        emit_bounds(&b, m, file);
    for (size_t i = 0; i < file->nmessages; i++) {
        const sg_message *msg = file->messages[i];
        if (!emitted(msg))
            continue;
        if (msg->encoded) {
            sg_buf_printf(&b,
                          "SHOAL_GEN_ENCODED_DEFINE(%s, %s__descriptor, "
                          "shoal_gen_bounds_)\n",
                          msg->c_name, sg_pbc_lower(msg->full_name));
        } else {
            sg_buf_printf(&b, "/* %s */\n", msg->canon);
            emit_descriptor(&b, msg);
            emit_pb_table(&b, msg);
            emit_validate(&b, msg);
        }
    }
    sg_emit_c_services_source(&b, file);
    sg_output_add(out, sg_printf("%s.shoal.c", file->base), &b);
}

int sg_emit_c(sg_model *m, const sg_params *p, sg_outputs *out)
{
    (void)p;
    check_pbc_files(m);
    check_pbc_members(m);
    check_c_names(m);
    if (m->nerrors)
        return -1;
    for (size_t i = 0; i < m->nfiles; i++) {
        const sg_file *f = m->files[i];
        if (!f->generate)
            continue;
        emit_header(m, f, out);
        emit_source(m, f, out);
    }
    return m->nerrors ? -1 : 0;
}
