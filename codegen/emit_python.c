/*
 * emit_python.c — the Python emitter (lang=python): <base>_shoal.py per schema file.
 *
 * Each fixed message becomes a ctypes.Structure subclass (of shoal's generated-message
 * base) with exactly the C struct's layout: the same members in the same order with
 * the same types, so ctypes' natural alignment reproduces the model's offsets. The
 * module checks this when imported (shoal._gen.finish compares ctypes' size,
 * alignment and every member's offset with the model's numbers, as the C header's
 * static assertions do), records the layout hash and descriptor, and has a validation
 * method mirroring the C one. Members that need converting (strings, bytes, bools,
 * enums, repeated fields, oneof members, fields with a has_ flag) are stored under
 * "_r_<name>" and reached through a property named after the field. Enums become
 * IntEnum classes.
 *
 * Each encoded message (no fixed layout) becomes a plain class of shoal's
 * _gen.Encoded whose attributes are the schema's fields, and a table passed to
 * _gen.encoded at the end of the module (after every class, so that tables may refer
 * to any of them): per field its attribute, number, protobuf type, label (implicit,
 * optional, repeated, packed, map; closed enums marked), the nested class, enum class
 * or map (key type, value type, value ref, closedness), its oneof and its shoal
 * bounds. _gen's one table-driven codec writes and reads protobuf's encoding from it.
 * The output is deterministic.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

/* ---- names ---------------------------------------------------------------------- */

static bool py_reserved(const char *s)
{
    static const char *const kw[] = {
        "False",
        "None",
        "True",
        "and",
        "as",
        "assert",
        "async",
        "await",
        "break",
        "class",
        "continue",
        "def",
        "del",
        "elif",
        "else",
        "except",
        "finally",
        "for",
        "from",
        "global",
        "if",
        "import",
        "in",
        "is",
        "lambda",
        "nonlocal",
        "not",
        "or",
        "pass",
        "raise",
        "return",
        "try",
        "while",
        "with",
        "yield",
        /* methods of the generated classes */
        "validate",
        "to_dict",
        "to_bytes",
        "from_bytes",
        "which_oneof",
        "pipe_open",
        "Pipe",
        "Queue",
        "Value",
        "Array",
        /* attributes ctypes gives a meaning */
        "_fields_",
        "_pack_",
        "_align_",
        "_anonymous_",
        "_layout_",
        "_swappedbytes_",
        "_objects",
        "_b_base_",
        "_b_needsfree_",
        "_type_",
        "_length_",
    };
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
        if (!strcmp(s, kw[i]))
            return true;
    return !strncmp(s, "_shoal_", 7) || !strncmp(s, "__", 2); /* the base class's */
}

/* The attribute name of a field (a keyword gets a '_' appended). */
static const char *py_name(const char *name)
{
    return py_reserved(name) ? sg_printf("%s_", name) : name;
}

/* Whether a member is reached through a converting property. */
static bool converted(const sg_message *msg, size_t i)
{
    const sg_field *f = &msg->fields[i];
    bool has_flag = i > 0 && msg->fields[i - 1].is_has_flag;
    return f->repeated || f->oneof >= 0 || has_flag || f->kind == SG_STRING ||
           f->kind == SG_BYTES || f->kind == SG_BOOL || f->kind == SG_ENUM;
}

static const char *raw_name(const sg_message *msg, size_t i)
{
    const sg_field *f = &msg->fields[i];
    return converted(msg, i) ? sg_printf("_r_%s", f->name) : py_name(f->name);
}

/* The module of a schema file: "a/b.proto" -> "a.b_shoal". */
static const char *module_of(const sg_file *f)
{
    char *s = sg_printf("%s_shoal", f->base);
    for (char *p = s; *p; p++)
        if (*p == '/')
            *p = '.';
    return s;
}

/* How file `from` names a type defined in file `def`. */
static const char *type_ref(const sg_file *from, const sg_file *def, const char *c_name)
{
    if (from == def)
        return c_name;
    for (size_t d = 0; d < from->ndeps; d++)
        if (from->deps[d] == def)
            return sg_printf("_d%zu.%s", d, c_name);
    return c_name; /* not reached: a used type's file is a dependency */
}

static const char *enum_ref(const sg_file *from, const sg_enum *e)
{
    return type_ref(from, e->file, e->c_name);
}

static const char *msg_ref(const sg_file *from, const sg_message *m)
{
    return type_ref(from, m->file, m->c_name);
}

const char *sg_py_msg_ref(const sg_file *from, const sg_message *m)
{
    return msg_ref(from, m);
}

/* ---- types ---------------------------------------------------------------------- */

static const char *ctype_of(enum sg_kind k)
{
    switch (k) {
    case SG_INT8:
        return "_c.c_int8";
    case SG_UINT8:
    case SG_BOOL:
        return "_c.c_uint8";
    case SG_INT16:
        return "_c.c_int16";
    case SG_UINT16:
        return "_c.c_uint16";
    case SG_INT32:
    case SG_ENUM:
        return "_c.c_int32";
    case SG_UINT32:
        return "_c.c_uint32";
    case SG_INT64:
        return "_c.c_int64";
    case SG_UINT64:
        return "_c.c_uint64";
    case SG_FLOAT:
        return "_c.c_float";
    case SG_DOUBLE:
        return "_c.c_double";
    case SG_CHAR:
        return "_c.c_char";
    default:
        return "?";
    }
}

static const char *kind_name(enum sg_kind k)
{
    static const char *const names[] = {
        [SG_INT8] = "INT8",       [SG_UINT8] = "UINT8",   [SG_INT16] = "INT16",
        [SG_UINT16] = "UINT16",   [SG_INT32] = "INT32",   [SG_UINT32] = "UINT32",
        [SG_INT64] = "INT64",     [SG_UINT64] = "UINT64", [SG_FLOAT] = "FLOAT",
        [SG_DOUBLE] = "DOUBLE",   [SG_BOOL] = "BOOL",     [SG_CHAR] = "CHAR",
        [SG_ENUM] = "ENUM",       [SG_STRING] = "STRING", [SG_BYTES] = "BYTES",
        [SG_MESSAGE] = "MESSAGE", [SG_UNION] = "UNION",
    };
    return sg_printf("_t.F_%s", names[k]);
}

/* The ctypes type of one element of f. */
static const char *elem_type(const sg_file *file, const sg_field *f)
{
    if (f->kind == SG_STRING || f->kind == SG_BYTES)
        return sg_printf("_g.String(%u)", f->max_len);
    if (f->kind == SG_MESSAGE)
        return msg_ref(file, f->msg);
    return ctype_of(f->kind);
}

static const char *member_type(const sg_file *file, const sg_field *f)
{
    if (f->repeated)
        return sg_printf("_g.Repeated(%s, %u)", elem_type(file, f), f->max_count);
    return elem_type(file, f);
}

/* The converter of one element of f (see shoal/_gen.py). */
static const char *elem_conv(const sg_file *file, const sg_message *msg,
                             const sg_field *f)
{
    const char *w = sg_printf("\"%s.%s\"", msg->full_name, f->name);
    switch (f->kind) {
    case SG_STRING:
    case SG_BYTES:
        return sg_printf("_g.Text(%s, %u, %s)", w, f->max_len,
                         f->kind == SG_STRING ? "True" : "False");
    case SG_BOOL:
        return sg_printf("_g.Bool(%s)", w);
    case SG_ENUM:
        return sg_printf("_g.Enum(%s, %s)", w, enum_ref(file, f->enm));
    case SG_MESSAGE:
        return sg_printf("_g.Nested(%s, %s)", w, msg_ref(file, f->msg));
    default:
        return sg_printf("_g.Scalar(%s)", w);
    }
}

static const char *member_conv(const sg_file *file, const sg_message *msg,
                               const sg_field *f)
{
    if (f->repeated)
        return sg_printf("_g.List(\"%s.%s\", %s, %u)", msg->full_name, f->name,
                         elem_conv(file, msg, f), f->max_count);
    return elem_conv(file, msg, f);
}

/* ---- literals ------------------------------------------------------------------- */

/* The Python literal of f's schema default, or NULL when it has none. */
static const char *default_literal(const sg_field *f)
{
    const char *d = f->default_value;
    if (f->repeated || f->oneof >= 0)
        return NULL;
    if (f->kind == SG_ENUM && f->enm->nvalues) {
        /* proto2: the named default, else the first value (proto3's first is 0) */
        int32_t v = f->enm->values[0].number;
        for (size_t i = 0; d && i < f->enm->nvalues; i++)
            if (!strcmp(f->enm->values[i].name, d))
                v = f->enm->values[i].number;
        return v ? sg_printf("%d", v) : NULL;
    }
    if (!d)
        return NULL;
    switch (f->kind) {
    case SG_STRING:
        return sg_printf("%s.decode(\"utf-8\")", sg_bytes_literal(d, strlen(d)));
    case SG_BYTES: {
        sg_buf raw = sg_unescape(d);
        const char *s = sg_bytes_literal(raw.data ? raw.data : "", raw.len);
        sg_buf_free(&raw);
        return s;
    }
    case SG_BOOL:
        return !strcmp(d, "true") ? "True" : NULL;
    case SG_FLOAT:
    case SG_DOUBLE:
        if (!strcmp(d, "inf"))
            return "float(\"inf\")";
        if (!strcmp(d, "-inf"))
            return "float(\"-inf\")";
        if (!strcmp(d, "nan"))
            return "float(\"nan\")";
        return sg_printf("%s", d);
    case SG_MESSAGE:
        return NULL;
    default:
        return sg_printf("%s", d);
    }
}

/* ---- enums ---------------------------------------------------------------------- */

static void emit_enum(sg_buf *b, const sg_enum *e)
{
    sg_buf_printf(b, "class %s(_enum.IntEnum):\n    \"\"\"%s\"\"\"\n\n", e->c_name,
                  e->full_name);
    for (size_t i = 0; i < e->nvalues; i++)
        sg_buf_printf(b, "    %s = %d\n", py_name(e->values[i].name),
                      e->values[i].number);
    if (!e->nvalues)
        sg_buf_puts(b, "    pass\n");
    sg_buf_printf(b, "\n\n_V_%s = frozenset(%s._value2member_map_)\n\n\n", e->c_name,
                  e->c_name);
}

/* ---- messages ------------------------------------------------------------------- */

/* One entry of a layout descriptor (as the C emitter's field_entry). */
static void field_entry(sg_buf *b, const sg_file *file, const sg_field *f,
                        uint32_t offset, int ind)
{
    for (int i = 0; i < ind; i++)
        sg_buf_puts(b, "    ");
    sg_buf_printf(b, "(\"%s\", %u, %s, %u, %u, %u, %u, %s),\n", f->name, f->number,
                  kind_name(f->kind), offset, f->size, f->repeated ? f->max_count : 0,
                  f->max_len, f->msg ? msg_ref(file, f->msg) : "None");
}

static void emit_union(sg_buf *b, const sg_file *file, const sg_message *msg,
                       const sg_oneof *o)
{
    sg_buf_printf(b, "class _%s_%s(_c.Union):\n    _fields_ = [\n", msg->c_name, o->name);
    for (size_t j = o->first; j < o->first + o->count; j++)
        sg_buf_printf(b, "        (\"%s\", %s),\n", raw_name(msg, j),
                      member_type(file, &msg->fields[j]));
    sg_buf_puts(b, "    ]\n\n\n");
    sg_buf_printf(b, "_U_%s_%s = _g.union(\"%s\", 0x%016llx, %u, %u, (\n", msg->c_name,
                  o->name, o->name, (unsigned long long)o->hash, o->size,
                  o->union_align > 4 ? o->union_align : 4);
    for (size_t j = o->first; j < o->first + o->count; j++)
        field_entry(b, file, &msg->fields[j], o->union_offset - o->case_offset, 1);
    sg_buf_puts(b, "))\n\n\n");
}

static void emit_members(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    sg_buf_puts(b, "    _fields_ = [\n");
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            sg_buf_printf(b, "        (\"%s_case\", _c.c_uint32),\n", o->name);
            sg_buf_printf(b, "        (\"_r_%s\", _%s_%s),\n", o->name, msg->c_name,
                          o->name);
            i = o->first + o->count - 1;
            continue;
        }
        sg_buf_printf(b, "        (\"%s\", %s),\n", raw_name(msg, i),
                      member_type(file, f));
    }
    if (!msg->nfields)
        sg_buf_puts(
            b, "        (\"_shoal_empty_\", _c.c_uint8),  # C has no empty structs\n");
    sg_buf_puts(b, "    ]\n");
}

static void emit_properties(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (!converted(msg, i))
            continue;
        const char *extra = "";
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            extra = sg_printf(", container=\"_r_%s\", case=\"%s_case\", number=%u",
                              o->name, o->name, f->number);
        } else if (i > 0 && msg->fields[i - 1].is_has_flag) {
            extra = sg_printf(", has=\"_r_%s\"", msg->fields[i - 1].name);
        }
        sg_buf_printf(b, "    %s = _g.Field(\"%s\", %s%s)\n", py_name(f->name),
                      raw_name(msg, i), member_conv(file, msg, f), extra);
    }
}

static void emit_names(sg_buf *b, const sg_message *msg)
{
    /* Tuples: "(a, b)", "(a,)" or "()". */
    sg_buf_puts(b, "    _shoal_names_ = (");
    size_t n = 0;
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0 || f->is_has_flag)
            continue;
        sg_buf_printf(b, "%s\"%s\"", n++ ? ", " : "", py_name(f->name));
    }
    sg_buf_puts(b, n == 1 ? ",)\n" : ")\n");
    sg_buf_puts(b, "    _shoal_defaults_ = (");
    n = 0;
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        const char *lit = f->is_has_flag ? NULL : default_literal(f);
        if (lit)
            sg_buf_printf(b, "%s(\"%s\", %s)", n++ ? ", " : "", py_name(f->name), lit);
    }
    sg_buf_puts(b, n == 1 ? ",)\n" : ")\n");
    if (msg->noneofs) {
        sg_buf_puts(b, "    _shoal_oneofs_ = (\n");
        for (size_t k = 0; k < msg->noneofs; k++) {
            const sg_oneof *o = &msg->oneofs[k];
            sg_buf_printf(b, "        (\"%s_case\", (", o->name);
            for (size_t j = o->first; j < o->first + o->count; j++)
                sg_buf_printf(b, "(\"%s\", %u),%s", py_name(msg->fields[j].name),
                              msg->fields[j].number,
                              j + 1 < o->first + o->count ? " " : "");
            sg_buf_puts(b, ")),\n");
        }
        sg_buf_puts(b, "    )\n");
    }
}

static void line(sg_buf *b, int ind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void line(sg_buf *b, int ind, const char *fmt, ...)
{
    for (int i = 0; i < ind; i++)
        sg_buf_puts(b, "    ");
    va_list ap;
    va_start(ap, fmt);
    sg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    sg_buf_puts(b, "\n");
}

/* Checks one element reachable as the Python expression x (the C emitter's
 * check_elem, with the same messages). */
static void check_elem(sg_buf *b, const sg_file *file, const sg_message *msg,
                       const sg_field *f, const char *x, int ind)
{
    const char *N = msg->full_name;
    switch (f->kind) {
    case SG_STRING:
    case SG_BYTES:
        line(b, ind, "if %s.len > %u:", x, f->max_len);
        line(b, ind + 1, "_g.invalid(\"%s.%s: length %%d over max_len %u\", %s.len)", N,
             f->name, f->max_len, x);
        if (f->kind == SG_STRING) /* as the C validator, and protobuf */
            line(b, ind, "_g.check_utf8(%s, \"%s.%s\")", x, N, f->name);
        break;
    case SG_ENUM: {
        const char *set =
            type_ref(file, f->enm->file, sg_printf("_V_%s", f->enm->c_name));
        line(b, ind, "if %s not in %s:", x, set);
        line(b, ind + 1, "_g.invalid(\"%s.%s: %%d is not a value of %s\", %s)", N,
             f->name, f->enm->full_name, x);
        break;
    }
    case SG_BOOL:
        line(b, ind, "if %s > 1:", x);
        line(b, ind + 1, "_g.invalid(\"%s.%s: a bool holds neither 0 nor 1\")", N,
             f->name);
        break;
    case SG_MESSAGE:
        line(b, ind, "%s._shoal_validate_()", x);
        break;
    default:
        break;
    }
}

static bool elem_needs_check(const sg_field *f)
{
    return f->kind == SG_STRING || f->kind == SG_BYTES || f->kind == SG_ENUM ||
           f->kind == SG_BOOL || f->kind == SG_MESSAGE;
}

static void check_member(sg_buf *b, const sg_file *file, const sg_message *msg,
                         const sg_field *f, const char *x, int ind)
{
    if (!f->repeated) {
        if (elem_needs_check(f))
            check_elem(b, file, msg, f, x, ind);
        return;
    }
    line(b, ind, "r = %s", x);
    line(b, ind, "if r.count > %u:", f->max_count);
    line(b, ind + 1, "_g.invalid(\"%s.%s: count %%d over max_count %u\", r.count)",
         msg->full_name, f->name, f->max_count);
    if (!elem_needs_check(f))
        return;
    line(b, ind, "items = r.items");
    line(b, ind, "for i in range(r.count):");
    check_elem(b, file, msg, f, "items[i]", ind + 1);
}

static void emit_validate(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    sg_buf body = {0};
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof < 0 && i > 0 && msg->fields[i - 1].is_has_flag &&
            f->kind == SG_ENUM) {
            /* an absent enum may hold anything: zeros are no value of some enums */
            line(&body, 2, "if self.%s:", raw_name(msg, i - 1));
            check_member(&body, file, msg, f, sg_printf("self.%s", raw_name(msg, i)), 3);
            continue;
        }
        if (f->oneof < 0) {
            check_member(&body, file, msg, f, sg_printf("self.%s", raw_name(msg, i)), 2);
            continue;
        }
        const sg_oneof *o = &msg->oneofs[f->oneof];
        line(&body, 2, "case = self.%s_case", o->name);
        line(&body, 2, "if case == 0:");
        line(&body, 3, "pass");
        for (size_t j = o->first; j < o->first + o->count; j++) {
            const sg_field *mf = &msg->fields[j];
            line(&body, 2, "elif case == %u:", mf->number);
            size_t before = body.len;
            check_member(&body, file, msg, mf,
                         sg_printf("self._r_%s.%s", o->name, raw_name(msg, j)), 3);
            if (body.len == before)
                line(&body, 3, "pass");
        }
        line(&body, 2, "else:");
        line(&body, 3, "_g.invalid(\"%s.%s: unknown case %%d\", case)", msg->full_name,
             o->name);
        i = o->first + o->count - 1;
    }
    if (!body.len)
        return;
    sg_buf_puts(b, "\n    def _shoal_validate_(self):\n");
    sg_buf_add(b, body.data, body.len);
    sg_buf_free(&body);
}

static void emit_finish(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    sg_buf_printf(b, "_g.finish(%s, \"%s\", 0x%016llx, %u, %u, (\n", msg->c_name,
                  msg->full_name, (unsigned long long)msg->hash, msg->size, msg->align);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof < 0) {
            field_entry(b, file, f, f->offset, 1);
            continue;
        }
        const sg_oneof *o = &msg->oneofs[f->oneof];
        sg_buf_printf(b, "    (\"%s\", 0, _t.F_UNION, %u, %u, 0, 0, _U_%s_%s),\n",
                      o->name, o->case_offset, o->size, msg->c_name, o->name);
        i = o->first + o->count - 1;
    }
    sg_buf_puts(b, "), (\n");
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof < 0) {
            sg_buf_printf(b, "    (\"%s\", %u, %u),\n", raw_name(msg, i), f->offset,
                          f->size);
            continue;
        }
        const sg_oneof *o = &msg->oneofs[f->oneof];
        sg_buf_printf(b, "    (\"%s_case\", %u, 4),\n    (\"_r_%s\", %u, %u),\n", o->name,
                      o->case_offset, o->name, o->union_offset, o->union_size);
        i = o->first + o->count - 1;
    }
    sg_buf_puts(b, "))\n\n\n");
}

/* The protobuf form's table (shoal._gen.pb; the C emitter writes the same one). */
static void emit_pb_table(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    sg_buf_printf(b, "_g.pb(%s, (\n", msg->c_name);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->is_has_flag)
            continue;
        sg_pb_info pi = sg_pb_info_of(msg, i);
        const char *flags = pi.oneof      ? "_g.PB_ONEOF"
                            : pi.has      ? "_g.PB_HAS"
                            : pi.packed   ? "_g.PB_REPEATED | _g.PB_PACKED"
                            : pi.repeated ? "_g.PB_REPEATED"
                                          : "0";
        sg_buf_printf(b, "    (%u, %d, %s, %u, %u, %u, %u, %u, %u, %s, \"%s\"),\n",
                      f->number, f->proto_type, flags, f->offset, pi.has_offset,
                      f->elem_size, f->items_offset, f->max_len,
                      f->repeated ? f->max_count : 0,
                      f->msg ? msg_ref(file, f->msg) : "None", f->name);
    }
    sg_buf_puts(b, "))\n\n\n");
}

static void emit_message(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    for (size_t i = 0; i < msg->noneofs; i++)
        emit_union(b, file, msg, &msg->oneofs[i]);
    sg_buf_printf(b,
                  "class %s(_g.Message):\n"
                  "    \"\"\"%s: fixed layout, %u bytes, align %u.\"\"\"\n\n",
                  msg->c_name, msg->full_name, msg->size, msg->align);
    emit_members(b, file, msg);
    emit_properties(b, file, msg);
    emit_names(b, msg);
    emit_validate(b, file, msg);
    sg_buf_puts(b, "\n\n");
    emit_finish(b, file, msg);
    emit_pb_table(b, file, msg);
}

/* ---- encoded messages ----------------------------------------------------------- */

static void emit_encoded_class(sg_buf *b, const sg_message *msg)
{
    sg_buf_printf(b,
                  "class %s(_g.Encoded):\n"
                  "    \"\"\"%s: encoded (%s).\"\"\"\n\n\n",
                  msg->c_name, msg->full_name, msg->reason ? msg->reason : "by request");
}

static bool closed_enum(const sg_field *f)
{
    return f->kind == SG_ENUM && !f->enm->file->proto3;
}

/* The ref column of a field element: nested class, enum class or None. */
static const char *encoded_ref(const sg_file *file, const sg_field *f)
{
    if (f->kind == SG_MESSAGE)
        return msg_ref(file, f->msg);
    if (f->kind == SG_ENUM)
        return enum_ref(file, f->enm);
    return "None";
}

static void emit_encoded_table(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    sg_buf_printf(b, "_g.encoded(%s, \"%s\", (\n", msg->c_name, msg->full_name);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->is_has_flag)
            continue;
        const char *label, *ref = encoded_ref(file, f);
        if (f->is_map) {
            const sg_field *k = NULL, *v = NULL;
            for (size_t j = 0; j < f->msg->nfields; j++) {
                const sg_field *e = &f->msg->fields[j];
                if (e->number == 1)
                    k = e;
                else if (e->number == 2)
                    v = e;
            }
            label = "_g.L_MAP";
            ref = sg_printf("(%d, %d, %s, %s)", k->proto_type, v->proto_type,
                            encoded_ref(file, v), closed_enum(v) ? "True" : "False");
        } else if (f->repeated) {
            label = sg_pb_info_of(msg, i).packed ? "_g.L_PACKED" : "_g.L_REPEATED";
        } else if (f->presence || f->oneof >= 0 || f->kind == SG_MESSAGE ||
                   !file->proto3) {
            label = "_g.L_OPTIONAL";
        } else {
            label = "_g.L_IMPLICIT";
        }
        if (closed_enum(f))
            label = sg_printf("%s | _g.L_CLOSED", label);
        const char *oneof =
            f->oneof >= 0 ? sg_printf("\"%s\"", msg->oneofs[f->oneof].name) : "None";
        sg_buf_printf(b, "    (\"%s\", %u, %d, %s, %s, %s, %u, %u),\n", py_name(f->name),
                      f->number, f->proto_type, label, ref, oneof, f->max_len,
                      f->repeated ? f->max_count : 0);
    }
    sg_buf_puts(b, "))\n\n\n");
}

/* ---- names ---------------------------------------------------------------------- */

typedef struct py_name_use {
    const char *name;
    const char *what; /* "field x", "oneof o" */
} py_name_use;

static void use(py_name_use *u, size_t *n, const char *name, const char *what)
{
    u[(*n)++] = (py_name_use){name, what};
}

/* Reports two uses of one name in one namespace; `ctx` names the namespace. */
static void report_clashes(sg_model *m, const char *ctx, const py_name_use *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(u[i].name, u[j].name)) {
                sg_error(m, "%s, %s: its Python attribute %s is also that of %s", ctx,
                         u[i].what, u[i].name, u[j].what);
                break;
            }
}

/* The attributes of a message's class (members and properties) are distinct. */
static void check_attributes(sg_model *m, const sg_message *msg)
{
    py_name_use *u = sg_alloc(sizeof(*u) * (2 * msg->nfields + 2 * msg->noneofs + 1));
    size_t n = 0;
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        const char *what = sg_printf("field %s", f->name);
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            if (i == o->first) {
                const char *ow = sg_printf("oneof %s", o->name);
                use(u, &n, sg_printf("%s_case", o->name), ow);
                use(u, &n, sg_printf("_r_%s", o->name), ow);
            }
            use(u, &n, py_name(f->name), what);
            continue;
        }
        use(u, &n, raw_name(msg, i), what);
        if (converted(msg, i))
            use(u, &n, py_name(f->name), what);
    }
    report_clashes(m, sg_printf("%s: message %s", msg->file->name, msg->full_name), u, n);
}

/* The attributes of an encoded message's class (one per field) are distinct. */
static void check_encoded_attributes(sg_model *m, const sg_message *msg)
{
    py_name_use *u = sg_alloc(sizeof(*u) * (msg->nfields + 1));
    size_t n = 0;
    for (size_t i = 0; i < msg->nfields; i++)
        if (!msg->fields[i].is_has_flag)
            use(u, &n, py_name(msg->fields[i].name),
                sg_printf("field %s", msg->fields[i].name));
    report_clashes(m, sg_printf("%s: message %s", msg->file->name, msg->full_name), u, n);
}

/* The module's names (classes and their helpers) are distinct. */
static void check_py_names(sg_model *m, const sg_file *file)
{
    size_t cap = 2 * file->nenums + 1;
    for (size_t i = 0; i < file->nmessages; i++)
        cap += 1 + 2 * file->messages[i]->noneofs;
    py_name_use *u = sg_alloc(sizeof(*u) * cap);
    size_t n = 0;
    for (size_t i = 0; i < file->nenums; i++) {
        const sg_enum *e = file->enums[i];
        const char *what = sg_printf("enum %s", e->full_name);
        use(u, &n, e->c_name, what);
        use(u, &n, sg_printf("_V_%s", e->c_name), what);
    }
    for (size_t i = 0; i < file->nmessages; i++) {
        const sg_message *msg = file->messages[i];
        if (msg->is_map_entry || msg->failed)
            continue;
        const char *what = sg_printf("message %s", msg->full_name);
        use(u, &n, msg->c_name, what);
        if (msg->encoded) {
            check_encoded_attributes(m, msg);
            continue;
        }
        for (size_t k = 0; k < msg->noneofs; k++) {
            use(u, &n, sg_printf("_%s_%s", msg->c_name, msg->oneofs[k].name), what);
            use(u, &n, sg_printf("_U_%s_%s", msg->c_name, msg->oneofs[k].name), what);
        }
        check_attributes(m, msg);
    }
    report_clashes(m, sg_printf("%s: module %s", file->name, module_of(file)), u, n);
}

/* ---- files ---------------------------------------------------------------------- */

/* Imports the modules of the files whose types file uses. A fixed message's types are
 * needed to lay it out, so their files must be generated in the same run; an encoded
 * message only refers to them when encoding, so their module may come from another
 * run (an import error names it otherwise). */
static void emit_imports(sg_model *m, sg_buf *b, const sg_file *file)
{
    for (size_t d = 0; d < file->ndeps; d++) {
        const sg_file *dep = file->deps[d];
        bool used = false, by_fixed = false;
        for (size_t i = 0; i < file->nmessages; i++) {
            const sg_message *msg = file->messages[i];
            if (msg->failed)
                continue;
            for (size_t j = 0; j < msg->nfields; j++) {
                const sg_field *f = &msg->fields[j];
                if ((f->msg && f->msg->file == dep) || (f->enm && f->enm->file == dep)) {
                    used = true;
                    by_fixed |= !msg->encoded && !msg->is_map_entry;
                }
            }
        }
        for (size_t i = 0; i < file->nservices; i++) /* emit_python_service.c */
            for (size_t j = 0; j < file->services[i].nmethods; j++)
                used |= file->services[i].methods[j].input->file == dep ||
                        file->services[i].methods[j].output->file == dep;
        if (!used)
            continue;
        if (by_fixed && !dep->generate)
            sg_error(m,
                     "%s: it uses types of %s, which is not being generated: list %s "
                     "among the files to compile",
                     file->name, dep->name, dep->name);
        sg_buf_printf(b, "import %s as _d%zu  # noqa: E402\n", module_of(dep), d);
    }
}

static void emit_file(sg_model *m, const sg_file *file, sg_outputs *out)
{
    sg_buf b = {0};
    sg_buf_printf(&b,
                  "# Generated by protoc-gen-shoal from %s. Do not edit.\n"
                  "\"\"\"shoal types of %s: ctypes structures laid out exactly as the "
                  "C structs.\"\"\"\n\n"
                  "import ctypes as _c\nimport enum as _enum\n\n"
                  "from shoal import _gen as _g\nfrom shoal import types as _t\n\n"
                  "_g.require(2)\n",
                  file->name, file->name);
    sg_buf imports = {0};
    emit_imports(m, &imports, file);
    if (imports.len) {
        sg_buf_puts(&b, "\n");
        sg_buf_add(&b, imports.data, imports.len);
    }
    sg_buf_free(&imports);
    sg_buf_puts(&b, "\n\n");
    for (size_t i = 0; i < file->nenums; i++)
        emit_enum(&b, file->enums[i]);
    size_t n;
    const sg_message **order = sg_file_messages_ordered(file, &n);
    for (size_t i = 0; i < n; i++) /* before the fixed ones, which never use them */
        if (order[i]->encoded && !order[i]->is_map_entry && !order[i]->failed)
            emit_encoded_class(&b, order[i]);
    for (size_t i = 0; i < n; i++) {
        const sg_message *msg = order[i];
        if (!msg->is_map_entry && !msg->failed && !msg->encoded)
            emit_message(&b, file, msg);
    }
    for (size_t i = 0; i < n; i++)
        if (order[i]->encoded && !order[i]->is_map_entry && !order[i]->failed)
            emit_encoded_table(&b, file, order[i]);
    sg_emit_python_services(&b, file);
    /* No trailing blank lines. */
    while (b.len > 1 && b.data[b.len - 1] == '\n' && b.data[b.len - 2] == '\n')
        b.data[--b.len] = '\0';
    sg_output_add(out, sg_printf("%s_shoal.py", file->base), &b);
}

int sg_emit_python(sg_model *m, const sg_params *p, sg_outputs *out)
{
    (void)p;
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i]->generate)
            check_py_names(m, m->files[i]);
    if (m->nerrors)
        return -1;
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i]->generate)
            emit_file(m, m->files[i], out);
    return m->nerrors ? -1 : 0;
}
