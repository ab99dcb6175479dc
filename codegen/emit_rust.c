/*
 * emit_rust.c — the Rust emitter (lang=rust): <base>_shoal.rs per schema file, for the
 * `shoal` crate (bindings/rust).
 *
 * Each fixed message becomes a #[repr(C)] struct with exactly the C struct's members, in
 * the same order and of the same sizes and alignments, so Rust's C layout reproduces
 * the model's offsets; a `const` block asserts the size, the alignment, every member's
 * offset and every member type's size against the model's numbers at compile time, as
 * the C header's static assertions do. Bounded strings and bytes are
 * shoal::schema::Str<N>, repeated fields shoal::schema::Repeated<T, K>, bools
 * shoal::schema::Bool, enums a #[repr(transparent)] i32 newtype with associated
 * constants, oneofs a u32 case word and a #[repr(C)] union: each accepts every bit
 * pattern, since another process may have written it, and validation (mirroring the C
 * one, with the same messages) decides. The struct implements shoal::Element with a
 * static layout descriptor (name, layout hash, size, alignment, fields) so Values, Arrays
 * and Queues of it are checked against every other language's build of the schema.
 * Accessors read and set bounded strings and repeated fields, refusing what does not fit.
 *
 * The file holds only items (no inner attributes), for `include!` inside a module;
 * types of an imported file are reached as super::<its module>, its module being named
 * after the file (a/b.proto: a_b_shoal). Encoded messages are listed in a comment: the
 * Rust binding moves fixed layouts only. The output is deterministic.
 */
#include <stdio.h>
#include <string.h>

#include "emit_lang.h"

/* ---- names ---------------------------------------------------------------------- */

static bool rust_keyword(const char *s)
{
    static const char *const kw[] = {
        "as",     "async",  "await",    "break",    "const",  "continue", "crate",
        "dyn",    "else",   "enum",     "extern",   "false",  "fn",       "for",
        "if",     "impl",   "in",       "let",      "loop",   "match",    "mod",
        "move",   "mut",    "pub",      "ref",      "return", "self",     "Self",
        "static", "struct", "super",    "trait",    "true",   "type",     "unsafe",
        "use",    "where",  "while",    "abstract", "become", "box",      "do",
        "final",  "macro",  "override", "priv",     "typeof", "unsized",  "virtual",
        "yield",  "try",    "gen",      "union",
    };
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
        if (!strcmp(s, kw[i]))
            return true;
    return false;
}

/* A member or method name: keywords get a trailing '_' (as in C). */
static const char *rs_name(const char *name)
{
    return rust_keyword(name) ? sg_printf("%s_", name) : name;
}

/* The module a schema file's code is included as: "a/b.proto" -> "a_b_shoal". */
static const char *module_of(const sg_file *f)
{
    char *s = sg_printf("%s_shoal", f->base);
    for (char *p = s; *p; p++)
        if (*p == '/' || *p == '-' || *p == '.')
            *p = '_';
    return s;
}

static const char *type_ref(const sg_file *from, const sg_file *def, const char *c_name)
{
    return from == def ? c_name : sg_printf("super::%s::%s", module_of(def), c_name);
}

const char *sg_rust_msg_type(const sg_file *from, const sg_message *m)
{
    return m->encoded ? "Vec<u8>" : type_ref(from, m->file, m->c_name);
}

/* ---- types ---------------------------------------------------------------------- */

static const char *scalar_type(enum sg_kind k)
{
    switch (k) {
    case SG_INT8:
        return "i8";
    case SG_UINT8:
    case SG_CHAR:
        return "u8";
    case SG_INT16:
        return "i16";
    case SG_UINT16:
        return "u16";
    case SG_INT32:
        return "i32";
    case SG_UINT32:
        return "u32";
    case SG_INT64:
        return "i64";
    case SG_UINT64:
        return "u64";
    case SG_FLOAT:
        return "f32";
    case SG_DOUBLE:
        return "f64";
    case SG_BOOL:
        return "::shoal::schema::Bool";
    default:
        return "?";
    }
}

static const char *elem_type(const sg_file *file, const sg_field *f)
{
    switch (f->kind) {
    case SG_STRING:
    case SG_BYTES:
        return sg_printf("::shoal::schema::Str<%u>", f->max_len);
    case SG_MESSAGE:
        return type_ref(file, f->msg->file, f->msg->c_name);
    case SG_ENUM:
        return type_ref(file, f->enm->file, f->enm->c_name);
    default:
        return scalar_type(f->kind);
    }
}

static const char *member_type(const sg_file *file, const sg_field *f)
{
    if (f->repeated)
        return sg_printf("::shoal::schema::Repeated<%s, %u>", elem_type(file, f),
                         f->max_count);
    return elem_type(file, f);
}

static const char *union_name(const sg_message *msg, const sg_oneof *o)
{
    return sg_printf("%s__%s", msg->c_name, o->name);
}

/* Rust code is indented by four spaces. */
#define line(b, ind, ...) sg_line(b, 4, ind, __VA_ARGS__)

/* ---- enums ---------------------------------------------------------------------- */

static void emit_enum(sg_buf *b, const sg_enum *e)
{
    line(b, 0, "/// %s: an int32 in memory; unknown values fail validation.",
         e->full_name);
    line(b, 0, "#[repr(transparent)]");
    line(b, 0, "#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]");
    line(b, 0, "#[allow(non_camel_case_types)]");
    line(b, 0, "pub struct %s(pub i32);\n", e->c_name);
    line(b, 0, "#[allow(non_upper_case_globals, dead_code)]");
    line(b, 0, "impl %s {", e->c_name);
    for (size_t i = 0; i < e->nvalues; i++)
        line(b, 1, "pub const %s: %s = %s(%d);", rs_name(e->values[i].name), e->c_name,
             e->c_name, e->values[i].number);
    line(b, 1, "/// The value's name, or None for a number the schema does not know.");
    line(b, 1, "pub fn name(self) -> Option<&'static str> {");
    line(b, 2, "match self.0 {");
    for (size_t i = 0; i < e->nvalues; i++) {
        bool alias = false; /* allow_alias: the first name of a number names it */
        for (size_t j = 0; j < i && !alias; j++)
            alias = e->values[j].number == e->values[i].number;
        if (!alias)
            line(b, 3, "%d => Some(\"%s\"),", e->values[i].number, e->values[i].name);
    }
    line(b, 3, "_ => None,");
    line(b, 2, "}");
    line(b, 1, "}");
    line(b, 1, "pub fn is_valid(self) -> bool {");
    line(b, 2, "self.name().is_some()");
    line(b, 1, "}");
    line(b, 0, "}\n");
    line(b, 0, "impl ::core::fmt::Debug for %s {", e->c_name);
    line(b, 1,
         "fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {");
    line(b, 2, "match self.name() {");
    line(b, 3, "Some(n) => f.write_str(n),");
    line(b, 3, "None => write!(f, \"%s({})\", self.0),", e->c_name);
    line(b, 2, "}");
    line(b, 1, "}");
    line(b, 0, "}\n");
}

/* ---- the struct ----------------------------------------------------------------- */

static void emit_union(sg_buf *b, const sg_file *file, const sg_message *msg,
                       const sg_oneof *o)
{
    line(b, 0, "/// The oneof %s.%s (its case word is `%s_case`).", msg->full_name,
         o->name, rs_name(o->name));
    line(b, 0, "#[repr(C)]");
    line(b, 0, "#[derive(Clone, Copy)]");
    line(b, 0, "#[allow(non_camel_case_types, non_snake_case)]");
    line(b, 0, "pub union %s {", union_name(msg, o));
    for (size_t j = o->first; j < o->first + o->count; j++)
        line(b, 1, "pub %s: %s,", rs_name(msg->fields[j].name),
             member_type(file, &msg->fields[j]));
    line(b, 0, "}\n");
}

static void emit_struct(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    line(b, 0, "/// %s: fixed layout, %u bytes, align %u, layout hash %016llx.",
         msg->full_name, msg->size, msg->align, (unsigned long long)msg->hash);
    line(b, 0, "#[repr(C)]");
    line(b, 0, msg->noneofs ? "#[derive(Clone, Copy)]" : "#[derive(Clone, Copy, Debug)]");
    line(b, 0, "#[allow(non_camel_case_types, non_snake_case)]");
    line(b, 0, "pub struct %s {", msg->c_name);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            line(b, 1, "pub %s_case: u32,", o->name);
            line(b, 1, "pub %s: %s,", rs_name(o->name), union_name(msg, o));
            i = o->first + o->count - 1;
            continue;
        }
        line(b, 1, "pub %s: %s,", rs_name(f->name), member_type(file, f));
    }
    if (!msg->nfields)
        line(b, 1, "pub _shoal_empty: u8, // C has no empty structs");
    line(b, 0, "}\n");
}

/* Compile-time checks of the layout against the model's numbers. */
static void emit_asserts(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    const char *T = msg->c_name;
    line(b, 0, "const _: () = {");
    line(b, 1, "use ::core::mem::{align_of, size_of};");
    line(b, 1, "assert!(size_of::<%s>() == %u);", T, msg->size);
    line(b, 1, "assert!(align_of::<%s>() == %u);", T, msg->align);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            line(b, 1, "assert!(::core::mem::offset_of!(%s, %s_case) == %u);", T, o->name,
                 o->case_offset);
            line(b, 1, "assert!(::core::mem::offset_of!(%s, %s) == %u);", T,
                 rs_name(o->name), o->union_offset);
            line(b, 1, "assert!(size_of::<%s>() == %u);", union_name(msg, o),
                 o->union_size);
            for (size_t j = o->first; j < o->first + o->count; j++)
                line(b, 1, "assert!(size_of::<%s>() == %u);",
                     member_type(file, &msg->fields[j]), msg->fields[j].size);
            i = o->first + o->count - 1;
            continue;
        }
        line(b, 1, "assert!(::core::mem::offset_of!(%s, %s) == %u);", T, rs_name(f->name),
             f->offset);
        line(b, 1, "assert!(size_of::<%s>() == %u);", member_type(file, f), f->size);
    }
    line(b, 0, "};\n");
}

/* ---- the descriptor ------------------------------------------------------------- */

static const char *nested_ref(const sg_file *file, const sg_field *f)
{
    if (!f->msg)
        return "::core::ptr::null()";
    return sg_printf("&%s.0",
                     type_ref(file, f->msg->file, sg_printf("%s_TYPE", f->msg->c_name)));
}

static void field_entry(sg_buf *b, const sg_file *file, const sg_field *f,
                        uint32_t offset)
{
    line(b, 1, "::shoal::schema::field(c\"%s\", %u, %u, %u, %u, %u, %u, %s),", f->name,
         f->number, (unsigned)f->kind, offset, f->size, f->repeated ? f->max_count : 0,
         f->max_len, nested_ref(file, f));
}

static size_t top_entries(const sg_message *msg)
{
    size_t n = 0;
    for (size_t i = 0; i < msg->nfields; i++, n++)
        if (msg->fields[i].oneof >= 0)
            i = msg->oneofs[msg->fields[i].oneof].first +
                msg->oneofs[msg->fields[i].oneof].count - 1;
    return n;
}

static void emit_descriptor(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    const char *T = msg->c_name;
    for (size_t k = 0; k < msg->noneofs; k++) {
        const sg_oneof *o = &msg->oneofs[k];
        line(b, 0, "#[allow(non_upper_case_globals)]");
        line(b, 0,
             "static %s_%s_MEMBERS: ::shoal::schema::Fields<%zu> = "
             "::shoal::schema::Fields([",
             T, o->name, o->count);
        for (size_t j = o->first; j < o->first + o->count; j++)
            field_entry(b, file, &msg->fields[j], o->union_offset - o->case_offset);
        line(b, 0, "]);");
        line(b, 0, "#[allow(non_upper_case_globals)]");
        line(
            b, 0,
            "static %s_%s_UNION: ::shoal::schema::TypeDesc = "
            "::shoal::schema::TypeDesc(::shoal::schema::desc(c\"%s\", 0x%016llx, %u, %u, "
            "%s_%s_MEMBERS.0.as_ptr(), %zu));",
            T, o->name, o->name, (unsigned long long)o->hash, o->size,
            o->union_align > 4 ? o->union_align : 4, T, o->name, o->count);
    }
    size_t n = top_entries(msg);
    line(b, 0, "#[allow(non_upper_case_globals)]");
    line(b, 0,
         "static %s_FIELDS: ::shoal::schema::Fields<%zu> = ::shoal::schema::Fields([", T,
         n);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof < 0) {
            field_entry(b, file, f, f->offset);
            continue;
        }
        const sg_oneof *o = &msg->oneofs[f->oneof];
        line(b, 1,
             "::shoal::schema::field(c\"%s\", 0, %u, %u, %u, 0, 0, &%s_%s_UNION.0),",
             o->name, (unsigned)SG_UNION, o->case_offset, o->size, T, o->name);
        i = o->first + o->count - 1;
    }
    line(b, 0, "]);");
    line(b, 0, "/// The layout descriptor of %s.", msg->full_name);
    line(b, 0, "#[allow(non_upper_case_globals)]");
    line(b, 0,
         "pub static %s_TYPE: ::shoal::schema::TypeDesc = "
         "::shoal::schema::TypeDesc(::shoal::schema::desc(c\"%s\", 0x%016llx, %u, %u, "
         "%s_FIELDS.0.as_ptr(), %zu));\n",
         T, msg->full_name, (unsigned long long)msg->hash, msg->size, msg->align, T, n);
}

/* ---- validation ----------------------------------------------------------------- */

/* Checks one element reachable as the Rust place x (the C emitter's messages). */
static void check_elem(sg_buf *b, const sg_message *msg, const sg_field *f, const char *x,
                       int ind)
{
    const char *N = msg->full_name;
    switch (f->kind) {
    case SG_STRING:
    case SG_BYTES:
        line(b, ind, "if %s.len > %u {", x, f->max_len);
        line(
            b, ind + 1,
            "return Err(::shoal::schema::invalid(format!(\"%s.%s: length {} over max_len "
            "%u\", %s.len)));",
            N, f->name, f->max_len, x);
        line(b, ind, "}");
        break;
    case SG_ENUM:
        line(b, ind, "if !%s.is_valid() {", x);
        line(b, ind + 1,
             "return Err(::shoal::schema::invalid(format!(\"%s.%s: {} is not a value of "
             "%s\", %s.0)));",
             N, f->name, f->enm->full_name, x);
        line(b, ind, "}");
        break;
    case SG_BOOL:
        line(b, ind, "if %s.0 > 1 {", x);
        line(b, ind + 1,
             "return Err(::shoal::schema::invalid(\"%s.%s: a bool holds neither 0 nor "
             "1\".to_string()));",
             N, f->name);
        line(b, ind, "}");
        break;
    case SG_MESSAGE:
        line(b, ind, "::shoal::Element::validate(&%s)?;", x);
        break;
    default:
        break;
    }
}

static void check_member(sg_buf *b, const sg_message *msg, const sg_field *f,
                         const char *x, int ind)
{
    if (!f->repeated) {
        if (sg_elem_needs_check(f))
            check_elem(b, msg, f, x, ind);
        return;
    }
    line(b, ind, "if %s.count > %u {", x, f->max_count);
    line(b, ind + 1,
         "return Err(::shoal::schema::invalid(format!(\"%s.%s: count {} over max_count "
         "%u\", %s.count)));",
         msg->full_name, f->name, f->max_count, x);
    line(b, ind, "}");
    if (!sg_elem_needs_check(f))
        return;
    line(b, ind, "for &e in %s.as_slice() {", x);
    check_elem(b, msg, f, "e", ind + 1);
    line(b, ind, "}");
}

static void emit_validate(sg_buf *b, const sg_message *msg)
{
    line(b, 1, "fn validate(&self) -> ::shoal::Result<()> {");
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof < 0) {
            check_member(b, msg, f, sg_printf("self.%s", rs_name(f->name)), 2);
            continue;
        }
        const sg_oneof *o = &msg->oneofs[f->oneof];
        line(b, 2, "match self.%s_case {", o->name);
        line(b, 3, "0 => {}");
        for (size_t j = o->first; j < o->first + o->count; j++) {
            const sg_field *mf = &msg->fields[j];
            line(b, 3, "%u => {", mf->number);
            line(b, 4, "// SAFETY: the case word says this member is the one set.");
            line(b, 4, "let m = unsafe { self.%s.%s };", rs_name(o->name),
                 rs_name(mf->name));
            line(b, 4, "let _ = &m;");
            check_member(b, msg, mf, "m", 4);
            line(b, 3, "}");
        }
        line(b, 3,
             "c => return Err(::shoal::schema::invalid(format!(\"%s.%s: unknown case "
             "{}\", "
             "c))),",
             msg->full_name, o->name);
        line(b, 2, "}");
        i = o->first + o->count - 1;
    }
    line(b, 2, "Ok(())");
    line(b, 1, "}");
}

static void emit_element(sg_buf *b, const sg_message *msg)
{
    line(b, 0,
         "// SAFETY: %s_TYPE describes the struct, whose members accept every bit "
         "pattern.",
         msg->c_name);
    line(b, 0, "unsafe impl ::shoal::Element for %s {", msg->c_name);
    line(b, 1, "fn shoal_type() -> *const ::shoal::sys::shoal_type {");
    line(b, 2, "&%s_TYPE.0", msg->c_name);
    line(b, 1, "}");
    emit_validate(b, msg);
    line(b, 0, "}\n");
}

/* ---- the protobuf form ------------------------------------------------------------ */

/* impl shoal::Message: the table libshoal's protobuf codec reads (emit_c.c's
 * emit_pb_table has the same numbers), built on first use. */
static void emit_pb_table(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    line(b, 0, "impl ::shoal::Message for %s {", msg->c_name);
    line(b, 1, "fn pb_table() -> &'static ::shoal::message::PbTable {");
    line(b, 2,
         "static TABLE: ::std::sync::OnceLock<::shoal::message::PbTable> = "
         "::std::sync::OnceLock::new();");
    line(b, 2, "TABLE.get_or_init(|| {");
    line(b, 3, "::shoal::message::PbTable::new::<Self>(c\"%s\", vec![", msg->full_name);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->is_has_flag)
            continue;
        line(b, 4, "::shoal::message::pb_field(c\"%s\", %s, %s),", f->name,
             sg_pb_entry_numbers(msg, i),
             f->msg ? sg_printf("Some(<%s as ::shoal::Message>::pb_table())",
                                type_ref(file, f->msg->file, f->msg->c_name))
                    : "None");
    }
    line(b, 3, "])");
    line(b, 2, "})");
    line(b, 1, "}");
    line(b, 0, "}\n");
}

/* ---- defaults and accessors ----------------------------------------------------- */

/* The statement setting f's proto2 default on m, or NULL. */
static const char *default_stmt(const sg_message *msg, const sg_field *f)
{
    const char *d = f->default_value;
    const char *n = rs_name(f->name);
    if (f->repeated || f->oneof >= 0)
        return NULL;
    if (f->kind == SG_ENUM) {
        int32_t v = sg_enum_default(f);
        return v ? sg_printf("m.%s.0 = %d;", n, v) : NULL;
    }
    if (!d)
        return NULL;
    const char *what = sg_printf("\"%s.%s\"", msg->full_name, f->name);
    switch (f->kind) {
    case SG_STRING:
        return sg_printf("let _ = m.%s.set(%s, %s);", n, sg_bytes_literal(d, strlen(d)),
                         what);
    case SG_BYTES: {
        sg_buf raw = sg_unescape(d);
        const char *s =
            sg_printf("let _ = m.%s.set(%s, %s);", n,
                      sg_bytes_literal(raw.data ? raw.data : "", raw.len), what);
        sg_buf_free(&raw);
        return s;
    }
    case SG_BOOL:
        return !strcmp(d, "true") ? sg_printf("m.%s = ::shoal::schema::Bool(1);", n)
                                  : NULL;
    case SG_FLOAT:
    case SG_DOUBLE: {
        const char *t = f->kind == SG_FLOAT ? "f32" : "f64";
        if (!strcmp(d, "inf"))
            return sg_printf("m.%s = %s::INFINITY;", n, t);
        if (!strcmp(d, "-inf"))
            return sg_printf("m.%s = %s::NEG_INFINITY;", n, t);
        if (!strcmp(d, "nan"))
            return sg_printf("m.%s = %s::NAN;", n, t);
        return sg_printf("m.%s = %s_%s;", n, d, t);
    }
    case SG_MESSAGE:
        return NULL;
    default:
        return sg_printf("m.%s = %s;", n, d);
    }
}

static void emit_default(sg_buf *b, const sg_message *msg)
{
    line(b, 0, "impl Default for %s {", msg->c_name);
    line(b, 1, "/// Every field at its default: zero, or the proto2 `[default = ...]`.");
    line(b, 1, "fn default() -> Self {");
    line(b, 2, "#[allow(unused_mut)]");
    line(b, 2, "let mut m: Self = ::shoal::schema::zeroed();");
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->kind == SG_MESSAGE && !f->repeated && f->oneof < 0)
            line(b, 2, "m.%s = Default::default();", rs_name(f->name));
        const char *s = f->is_has_flag ? NULL : default_stmt(msg, f);
        if (s)
            line(b, 2, "%s", s);
    }
    line(b, 2, "m");
    line(b, 1, "}");
    line(b, 0, "}\n");
}

static void emit_accessors(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    line(b, 0, "#[allow(dead_code, non_snake_case)]");
    line(b, 0, "impl %s {", msg->c_name);
    line(b, 1, "pub const FULL_NAME: &'static str = \"%s\";", msg->full_name);
    line(b, 1, "pub const LAYOUT_HASH: u64 = 0x%016llx;", (unsigned long long)msg->hash);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0 || f->is_has_flag)
            continue;
        const char *n = rs_name(f->name);
        const char *what = sg_printf("\"%s.%s\"", msg->full_name, f->name);
        const char *has = i > 0 && msg->fields[i - 1].is_has_flag
                              ? sg_printf(" self.%s = ::shoal::schema::Bool(1);",
                                          rs_name(msg->fields[i - 1].name))
                              : "";
        if (f->repeated) {
            const char *e = elem_type(file, f);
            line(b, 1, "pub fn %s_items(&self) -> &[%s] {", f->name, e);
            line(b, 2, "self.%s.as_slice()", n);
            line(b, 1, "}");
            line(b, 1, "/// Replaces the elements (at most %u).", f->max_count);
            line(b, 1, "pub fn set_%s(&mut self, v: &[%s]) -> ::shoal::Result<()> {",
                 f->name, e);
            line(b, 2, "self.%s.set(v, %s)", n, what);
            line(b, 1, "}");
            line(b, 1, "pub fn push_%s(&mut self, v: %s) -> ::shoal::Result<()> {",
                 f->name, e);
            line(b, 2, "self.%s.push(v, %s)", n, what);
            line(b, 1, "}");
        } else if (f->kind == SG_STRING || f->kind == SG_BYTES) {
            bool str = f->kind == SG_STRING;
            if (str) {
                line(b, 1, "pub fn %s_str(&self) -> ::shoal::Result<&str> {", f->name);
                line(b, 2, "self.%s.as_str()", n);
                line(b, 1, "}");
            }
            line(b, 1, "pub fn %s_bytes(&self) -> &[u8] {", f->name);
            line(b, 2, "self.%s.as_bytes()", n);
            line(b, 1, "}");
            line(b, 1, "/// Stores v, refusing more than %u bytes.", f->max_len);
            line(b, 1, "pub fn set_%s(&mut self, v: %s) -> ::shoal::Result<()> {",
                 f->name, str ? "&str" : "&[u8]");
            line(b, 2, "self.%s.set(v%s, %s)?;%s", n, str ? ".as_bytes()" : "", what,
                 has);
            line(b, 2, "Ok(())");
            line(b, 1, "}");
        }
    }
    line(b, 0, "}\n");
}

static void emit_message(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    line(b, 0, "// %s", msg->canon);
    for (size_t i = 0; i < msg->noneofs; i++)
        emit_union(b, file, msg, &msg->oneofs[i]);
    emit_struct(b, file, msg);
    emit_asserts(b, file, msg);
    emit_descriptor(b, file, msg);
    emit_element(b, msg);
    emit_pb_table(b, file, msg);
    emit_default(b, msg);
    emit_accessors(b, file, msg);
}

/* ---- files ---------------------------------------------------------------------- */

static void emit_file(sg_model *m, const sg_file *file, sg_outputs *out)
{
    for (size_t d = 0; d < file->ndeps; d++)
        sg_check_import(m, file, file->deps[d]);
    sg_buf b = {0};
    line(&b, 0, "// Generated by protoc-gen-shoal from %s. Do not edit.", file->name);
    line(&b, 0, "//");
    line(&b, 0,
         "// shoal types of %s: #[repr(C)] structs laid out exactly as the C structs.",
         file->name);
    line(&b, 0, "// Include it as a module of a crate depending on `shoal`:");
    line(&b, 0, "//     mod %s { include!(\"<dir>/%s_shoal.rs\"); }\n", module_of(file),
         file->base);
    for (size_t i = 0; i < file->nenums; i++)
        emit_enum(&b, file->enums[i]);
    size_t n;
    const sg_message **order = sg_file_messages_ordered(file, &n);
    sg_buf encoded = {0};
    for (size_t i = 0; i < n; i++) {
        const sg_message *msg = order[i];
        if (msg->is_map_entry || msg->failed)
            continue;
        if (msg->encoded)
            sg_buf_printf(&encoded, "//   %s (%s)\n", msg->full_name, msg->reason);
        else
            emit_message(&b, file, msg);
    }
    if (encoded.len) {
        sg_buf_puts(&b,
                    "// Encoded messages (no fixed layout; not available in Rust):\n");
        sg_buf_add(&b, encoded.data, encoded.len);
    }
    sg_buf_free(&encoded);
    sg_emit_rust_services(&b, file); /* emit_rust_service.c */
    while (b.len > 1 && b.data[b.len - 1] == '\n' && b.data[b.len - 2] == '\n')
        b.data[--b.len] = '\0';
    sg_output_add(out, sg_printf("%s_shoal.rs", file->base), &b);
}

int sg_emit_rust(sg_model *m, const sg_params *p, sg_outputs *out)
{
    (void)p;
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i]->generate)
            emit_file(m, m->files[i], out);
    return m->nerrors ? -1 : 0;
}
