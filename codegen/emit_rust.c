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
 * after the file (a/b.proto: a_b_shoal).
 *
 * An encoded message (and a map entry) is a plain struct of owned fields instead —
 * String, Vec<u8>, Vec<T>, Option<Box<M>> for a nested message, Option<T> for an
 * optional scalar, an enum per oneof — whose protobuf codec is the shoal crate's pb
 * module driven by the generated shoal::pb::Fields (write each field, read one field,
 * check the schema's bounds and closed enums with libshoal's messages). Every message,
 * fixed or encoded, implements shoal::Message (to_pb / from_pb), what queues, pipes and
 * services carry. The output is deterministic.
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
    return type_ref(from, m->file, m->c_name);
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
    line(b, 0, "impl ::shoal::pb::EnumValue for %s {", e->c_name);
    line(b, 1, "fn from_i32(v: i32) -> Self {");
    line(b, 2, "%s(v)", e->c_name);
    line(b, 1, "}");
    line(b, 1, "fn to_i32(self) -> i32 {");
    line(b, 2, "self.0");
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

/* impl shoal::Message over shoal::FixedMessage: the table libshoal's protobuf codec reads
 * (emit_c.c's emit_pb_table has the same numbers), built on first use. */
static void emit_pb_table(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    line(b, 0, "impl ::shoal::Message for %s {", msg->c_name);
    line(b, 1, "fn to_pb(&self) -> ::shoal::Result<Vec<u8>> {");
    line(b, 2, "::shoal::message::fixed_to_pb(self)");
    line(b, 1, "}");
    line(b, 1, "fn from_pb(bytes: &[u8]) -> ::shoal::Result<Self> {");
    line(b, 2, "::shoal::message::fixed_from_pb(bytes)");
    line(b, 1, "}");
    line(b, 0, "}\n");
    line(b, 0, "impl ::shoal::FixedMessage for %s {", msg->c_name);
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
             f->msg ? sg_printf("Some(<%s as ::shoal::FixedMessage>::pb_table())",
                                type_ref(file, f->msg->file, f->msg->c_name))
                    : "None");
    }
    line(b, 3, "])");
    line(b, 2, "})");
    line(b, 1, "}");
    line(b, 0, "}\n");
}

/* ---- encoded messages ------------------------------------------------------------ */

/* An encoded message is a plain struct of owned fields (a singular message field is an
 * Option<Box<M>>, a oneof an Option of an enum with a variant per member, a proto2 /
 * proto3 optional scalar an Option), with shoal::pb::Fields (the codec's view of its
 * fields) and shoal::Message. Map entries are such structs too: a map is a Vec of its
 * entries, in the order of the bytes. */

/* The shoal::pb marker type of a scalar protobuf type. */
static const char *pb_marker(const sg_file *file, const sg_field *f)
{
    static const char *const m[19] = {
        [1] = "Double",  [2] = "Float",     [3] = "Int64",     [4] = "Uint64",
        [5] = "Int32",   [6] = "Fixed64",   [7] = "Fixed32",   [8] = "Bool",
        [13] = "Uint32", [15] = "Sfixed32", [16] = "Sfixed64", [17] = "Sint32",
        [18] = "Sint64",
    };
    if (f->kind == SG_ENUM)
        return sg_printf("::shoal::pb::Enum<%s>",
                         type_ref(file, f->enm->file, f->enm->c_name));
    int t = f->proto_type;
    return sg_printf("::shoal::pb::%s", t > 0 && t < 19 && m[t] ? m[t] : "?");
}

/* The Rust type of one element of a field of an encoded message. */
static const char *enc_elem(const sg_file *file, const sg_field *f)
{
    static const char *const t[19] = {
        [1] = "f64",  [2] = "f32",  [3] = "i64",  [4] = "u64",  [5] = "i32",
        [6] = "u64",  [7] = "u32",  [8] = "bool", [13] = "u32", [15] = "i32",
        [16] = "i64", [17] = "i32", [18] = "i64",
    };
    switch (f->kind) {
    case SG_STRING:
        return "String";
    case SG_BYTES:
        return "Vec<u8>";
    case SG_MESSAGE:
        return type_ref(file, f->msg->file, f->msg->c_name);
    case SG_ENUM:
        return type_ref(file, f->enm->file, f->enm->c_name);
    default:
        return f->proto_type > 0 && f->proto_type < 19 && t[f->proto_type]
                   ? t[f->proto_type]
                   : "?";
    }
}

/* The type of a oneof member's variant (a message boxed). */
static const char *enc_variant(const sg_file *file, const sg_field *f)
{
    const char *e = enc_elem(file, f);
    return f->kind == SG_MESSAGE ? sg_printf("Box<%s>", e) : e;
}

static const char *enc_member(const sg_file *file, const sg_field *f)
{
    const char *e = enc_elem(file, f);
    if (f->repeated)
        return sg_printf("Vec<%s>", e);
    if (f->kind == SG_MESSAGE)
        return sg_printf("Option<Box<%s>>", e);
    return f->presence ? sg_printf("Option<%s>", e) : e;
}

static bool is_required(const sg_field *f)
{
    return f->proto->label ==
           GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REQUIRED;
}

/* Whether a field of an encoded message is written even at its default (proto2's
 * required fields; proto3 implicit presence skips zeros). */
static const char *enc_zero_test(const sg_field *f, const char *x)
{
    switch (f->kind) {
    case SG_STRING:
    case SG_BYTES:
        return sg_printf("!%s.is_empty()", x);
    case SG_BOOL:
        return x;
    case SG_ENUM:
        return sg_printf("%s.0 != 0", x);
    case SG_FLOAT:
    case SG_DOUBLE: /* -0.0 is written, as protoc does (its bits are not zero) */
        return sg_printf("%s.to_bits() != 0", x);
    default:
        return sg_printf("%s != 0", x);
    }
}

/* The statement writing one value of f: v is a reference to it, or (by_value) a
 * place of it. */
static const char *enc_put(const sg_file *file, const sg_field *f, const char *v,
                           bool by_value)
{
    switch (f->kind) {
    case SG_STRING:
        return sg_printf("w.bytes(%u, %s.as_bytes());", f->number, v);
    case SG_BYTES:
        return sg_printf("w.bytes(%u, %s%s);", f->number, by_value ? "&" : "", v);
    case SG_MESSAGE:
        return sg_printf("w.message(%u, &**%s)?;", f->number, v);
    default:
        return sg_printf("w.put::<%s>(%u, %s%s);", pb_marker(file, f), f->number,
                         by_value ? "" : "*", v);
    }
}

/* The expression reading one value of f from r. */
static const char *enc_get(const sg_file *file, const sg_field *f)
{
    switch (f->kind) {
    case SG_STRING:
        return sg_printf("r.string(wire, \"%s\")?", f->name);
    case SG_BYTES:
        return sg_printf("r.bytes(wire, \"%s\")?.to_vec()", f->name);
    case SG_MESSAGE:
        return sg_printf("Box::new(r.new_message(wire, \"%s\")?)", f->name);
    default:
        return sg_printf("r.get::<%s>(wire, \"%s\")?", pb_marker(file, f), f->name);
    }
}

static const char *oneof_enum(const sg_message *msg, const sg_oneof *o)
{
    return sg_printf("%s__%s", msg->c_name, o->name);
}

/* Calls fn for each unit of an encoded message in order: a field (o NULL) or a whole
 * oneof (i its first member); has_ flags are the layout's, not the struct's. */
typedef void enc_unit_fn(sg_buf *b, const sg_file *file, const sg_message *msg, size_t i,
                         const sg_oneof *o);

static void enc_each(sg_buf *b, const sg_file *file, const sg_message *msg,
                     enc_unit_fn *fn)
{
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->is_has_flag)
            continue;
        const sg_oneof *o = f->oneof >= 0 ? &msg->oneofs[f->oneof] : NULL;
        fn(b, file, msg, i, o);
        if (o)
            i = o->first + o->count - 1;
    }
}

static void enc_write_field(sg_buf *b, const sg_file *file, const sg_message *msg,
                            size_t i)
{
    const sg_field *f = &msg->fields[i];
    const char *n = rs_name(f->name);
    if (f->repeated && (f->kind == SG_STRING || f->kind == SG_BYTES)) {
        line(b, 2, "for v in &self.%s {", n);
        line(b, 3, "%s", enc_put(file, f, "v", false));
        line(b, 2, "}");
    } else if (f->repeated && f->kind == SG_MESSAGE) {
        line(b, 2, "for v in &self.%s {", n);
        line(b, 3, "w.message(%u, v)?;", f->number);
        line(b, 2, "}");
    } else if (f->repeated) {
        line(b, 2, "w.put_repeated::<%s>(%u, &self.%s, %s);", pb_marker(file, f),
             f->number, n, sg_pb_info_of(msg, i).packed ? "true" : "false");
    } else if (f->kind == SG_MESSAGE || f->presence) {
        line(b, 2, "if let Some(v) = &self.%s {", n);
        line(b, 3, "%s", enc_put(file, f, "v", false));
        line(b, 2, "}");
    } else if (is_required(f)) {
        line(b, 2, "%s", enc_put(file, f, sg_printf("self.%s", n), true));
    } else {
        line(b, 2, "if %s {", enc_zero_test(f, sg_printf("self.%s", n)));
        line(b, 3, "%s", enc_put(file, f, sg_printf("self.%s", n), true));
        line(b, 2, "}");
    }
}

static void enc_write_oneof(sg_buf *b, const sg_file *file, const sg_message *msg,
                            const sg_oneof *o)
{
    line(b, 2, "match &self.%s {", rs_name(o->name));
    line(b, 3, "None => {}");
    for (size_t j = o->first; j < o->first + o->count; j++) {
        const sg_field *f = &msg->fields[j];
        line(b, 3, "Some(%s::%s(v)) => %s", oneof_enum(msg, o), rs_name(f->name),
             sg_printf("{ %s }", enc_put(file, f, "v", false)));
    }
    line(b, 2, "}");
}

static void enc_write_unit(sg_buf *b, const sg_file *file, const sg_message *msg,
                           size_t i, const sg_oneof *o)
{
    if (o)
        enc_write_oneof(b, file, msg, o);
    else
        enc_write_field(b, file, msg, i);
}

static void enc_read_field(sg_buf *b, const sg_file *file, const sg_message *msg,
                           const sg_field *f)
{
    const char *n = rs_name(f->name);
    if (f->oneof >= 0) {
        const sg_oneof *o = &msg->oneofs[f->oneof];
        if (f->kind == SG_MESSAGE) { /* the same member again merges */
            line(b, 3, "%u => match &mut self.%s {", f->number, rs_name(o->name));
            line(b, 4, "Some(%s::%s(m)) => r.message(wire, \"%s\", &mut **m)?,",
                 oneof_enum(msg, o), n, f->name);
            line(b, 4, "_ => self.%s = Some(%s::%s(%s)),", rs_name(o->name),
                 oneof_enum(msg, o), n, enc_get(file, f));
            line(b, 3, "},");
            return;
        }
        line(b, 3, "%u => self.%s = Some(%s::%s(%s)),", f->number, rs_name(o->name),
             oneof_enum(msg, o), n, enc_get(file, f));
    } else if (f->repeated && f->kind != SG_STRING && f->kind != SG_BYTES &&
               f->kind != SG_MESSAGE) {
        line(b, 3, "%u => r.get_repeated::<%s>(wire, \"%s\", &mut self.%s)?,", f->number,
             pb_marker(file, f), f->name, n);
    } else if (f->repeated && f->kind == SG_MESSAGE) {
        line(b, 3, "%u => self.%s.push(r.new_message(wire, \"%s\")?),", f->number, n,
             f->name);
    } else if (f->repeated) {
        line(b, 3, "%u => self.%s.push(%s),", f->number, n, enc_get(file, f));
    } else if (f->kind == SG_MESSAGE) {
        line(b, 3,
             "%u => r.message(wire, \"%s\", &mut "
             "**self.%s.get_or_insert_with(Default::default))?,",
             f->number, f->name, n);
    } else {
        line(b, 3, "%u => self.%s = %s%s%s,", f->number, n, f->presence ? "Some(" : "",
             enc_get(file, f), f->presence ? ")" : "");
    }
}

/* The check of one element reachable as the Rust expression x (a reference). */
static void enc_check_elem(sg_buf *b, const sg_message *msg, const sg_field *f,
                           const char *x, int ind)
{
    /* a message: x is a &Box<M> (singular, oneof) or a &M (repeated) */
    const char *m = f->repeated ? x : sg_printf("&**%s", x);
    const char *N = msg->full_name;
    if ((f->kind == SG_STRING || f->kind == SG_BYTES) && f->max_len) {
        line(b, ind, "if %s.len() > %u {", x, f->max_len);
        line(b, ind + 1,
             "return Err(::shoal::schema::invalid(format!(\"%s.%s: length {} over "
             "max_len %u\", %s.len())));",
             N, f->name, f->max_len, x);
        line(b, ind, "}");
    } else if (f->kind == SG_ENUM && !f->enm->file->proto3) { /* closed enums */
        line(b, ind, "if !%s.is_valid() {", x);
        line(b, ind + 1,
             "return Err(::shoal::schema::invalid(format!(\"%s.%s: {} is not a value of "
             "%s\", %s.0)));",
             N, f->name, f->enm->full_name, x);
        line(b, ind, "}");
    } else if (f->kind == SG_MESSAGE && f->msg->encoded) {
        line(b, ind, "::shoal::pb::Fields::check(%s)?;", m);
    } else if (f->kind == SG_MESSAGE) {
        line(b, ind, "::shoal::Element::validate(%s)?;", m);
    }
}

static bool enc_needs_check(const sg_field *f)
{
    return ((f->kind == SG_STRING || f->kind == SG_BYTES) && f->max_len) ||
           (f->kind == SG_ENUM && !f->enm->file->proto3) || f->kind == SG_MESSAGE;
}

static void enc_check_field(sg_buf *b, const sg_message *msg, const sg_field *f)
{
    const char *n = rs_name(f->name);
    if (f->repeated) {
        if (f->max_count) {
            line(b, 2, "if self.%s.len() > %u {", n, f->max_count);
            line(b, 3,
                 "return Err(::shoal::schema::invalid(format!(\"%s.%s: count {} over "
                 "max_count %u\", self.%s.len())));",
                 msg->full_name, f->name, f->max_count, n);
            line(b, 2, "}");
        }
        if (enc_needs_check(f)) {
            line(b, 2, "for v in &self.%s {", n);
            enc_check_elem(b, msg, f, "v", 3);
            line(b, 2, "}");
        }
    } else if (enc_needs_check(f) && (f->kind == SG_MESSAGE || f->presence)) {
        line(b, 2, "if let Some(v) = &self.%s {", n);
        enc_check_elem(b, msg, f, "v", 3);
        line(b, 2, "}");
    } else if (enc_needs_check(f)) {
        enc_check_elem(b, msg, f, sg_printf("self.%s", n), 2);
    }
}

static void enc_check_oneof(sg_buf *b, const sg_message *msg, const sg_oneof *o)
{
    bool any = false;
    for (size_t j = o->first; j < o->first + o->count; j++)
        any |= enc_needs_check(&msg->fields[j]);
    if (!any)
        return;
    line(b, 2, "match &self.%s {", rs_name(o->name));
    for (size_t j = o->first; j < o->first + o->count; j++) {
        const sg_field *f = &msg->fields[j];
        if (!enc_needs_check(f))
            continue;
        line(b, 3, "Some(%s::%s(v)) => {", oneof_enum(msg, o), rs_name(f->name));
        enc_check_elem(b, msg, f, "v", 4);
        line(b, 3, "}");
    }
    line(b, 3, "_ => {}");
    line(b, 2, "}");
}

static void enc_check_unit(sg_buf *b, const sg_file *file, const sg_message *msg,
                           size_t i, const sg_oneof *o)
{
    (void)file;
    if (o)
        enc_check_oneof(b, msg, o);
    else
        enc_check_field(b, msg, &msg->fields[i]);
}

static void enc_member_unit(sg_buf *b, const sg_file *file, const sg_message *msg,
                            size_t i, const sg_oneof *o)
{
    if (o)
        line(b, 1, "pub %s: Option<%s>,", rs_name(o->name), oneof_enum(msg, o));
    else
        line(b, 1, "pub %s: %s,", rs_name(msg->fields[i].name),
             enc_member(file, &msg->fields[i]));
}

static void enc_default_unit(sg_buf *b, const sg_file *file, const sg_message *msg,
                             size_t i, const sg_oneof *o)
{
    const sg_field *f = &msg->fields[i];
    if (o)
        line(b, 3, "%s: None,", rs_name(o->name));
    else if (f->kind == SG_ENUM && !f->repeated && !f->presence)
        line(b, 3, "%s: %s(%d),", rs_name(f->name), enc_elem(file, f),
             sg_enum_default(f));
    else
        line(b, 3, "%s: Default::default(),", rs_name(f->name));
}

/* Whether an encoded message can derive Debug and PartialEq: no fixed message (they
 * have neither) in it, however deep. */
static bool enc_derivable(const sg_message *msg, int depth)
{
    for (size_t i = 0; depth < 64 && i < msg->nfields; i++) {
        const sg_message *sub = msg->fields[i].msg;
        if (sub && sub != msg && (!sub->encoded || !enc_derivable(sub, depth + 1)))
            return false;
    }
    return depth < 64;
}

static void enc_struct(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    const char *derive =
        enc_derivable(msg, 0) ? "#[derive(Clone, Debug, PartialEq)]" : "#[derive(Clone)]";
    for (size_t k = 0; k < msg->noneofs; k++) {
        const sg_oneof *o = &msg->oneofs[k];
        line(b, 0, "/// The oneof %s.%s: the member that is set.", msg->full_name,
             o->name);
        line(b, 0, "%s", derive);
        line(b, 0, "#[allow(non_camel_case_types)]");
        line(b, 0, "pub enum %s {", oneof_enum(msg, o));
        for (size_t j = o->first; j < o->first + o->count; j++)
            line(b, 1, "%s(%s),", rs_name(msg->fields[j].name),
                 enc_variant(file, &msg->fields[j]));
        line(b, 0, "}\n");
    }
    line(b, 0, "/// %s: encoded (%s); owned fields, carried as protobuf.", msg->full_name,
         msg->reason);
    line(b, 0, "%s", derive);
    line(b, 0, "#[allow(non_camel_case_types, non_snake_case)]");
    line(b, 0, "pub struct %s {", msg->c_name);
    enc_each(b, file, msg, enc_member_unit);
    line(b, 0, "}\n");
    line(b, 0, "impl Default for %s {", msg->c_name);
    line(b, 1, "/// Every field empty, zero or its enum's first value.");
    line(b, 1, "fn default() -> Self {");
    line(b, 2, "%s {", msg->c_name);
    enc_each(b, file, msg, enc_default_unit);
    line(b, 2, "}");
    line(b, 1, "}");
    line(b, 0, "}\n");
}

static void enc_impls(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    const char *T = msg->c_name;
    line(b, 0, "impl ::shoal::pb::Fields for %s {", T);
    line(b, 1, "const NAME: &'static str = \"%s\";", msg->full_name);
    sg_buf req = {0};
    for (size_t i = 0; i < msg->nfields; i++)
        if (!msg->fields[i].is_has_flag && is_required(&msg->fields[i]))
            sg_buf_printf(&req, "%s(%u, \"%s\")", req.len ? ", " : "",
                          msg->fields[i].number, msg->fields[i].name);
    if (req.len)
        line(b, 1, "const REQUIRED: &'static [(u32, &'static str)] = &[%s];", req.data);
    sg_buf_free(&req);
    line(b, 1,
         "fn write_fields(&self, w: &mut ::shoal::pb::Writer) -> ::shoal::Result<()> {");
    line(b, 2, "let _ = &w;");
    enc_each(b, file, msg, enc_write_unit);
    line(b, 2, "Ok(())");
    line(b, 1, "}");
    line(b, 1, "#[allow(unreachable_code)]");
    line(b, 1,
         "fn read_field(&mut self, r: &mut ::shoal::pb::Reader<'_>, number: u32, wire: "
         "u32) -> ::shoal::Result<bool> {");
    line(b, 2, "let _ = (&r, wire);");
    line(b, 2, "match number {");
    for (size_t i = 0; i < msg->nfields; i++)
        if (!msg->fields[i].is_has_flag)
            enc_read_field(b, file, msg, &msg->fields[i]);
    line(b, 3, "_ => return Ok(false),");
    line(b, 2, "}");
    line(b, 2, "Ok(true)");
    line(b, 1, "}");
    line(b, 1, "fn check(&self) -> ::shoal::Result<()> {");
    enc_each(b, file, msg, enc_check_unit);
    line(b, 2, "Ok(())");
    line(b, 1, "}");
    line(b, 0, "}\n");
    line(b, 0, "impl ::shoal::Message for %s {", T);
    line(b, 1, "fn to_pb(&self) -> ::shoal::Result<Vec<u8>> {");
    line(b, 2, "::shoal::pb::encode(self)");
    line(b, 1, "}");
    line(b, 1, "fn from_pb(bytes: &[u8]) -> ::shoal::Result<Self> {");
    line(b, 2, "::shoal::pb::decode(bytes)");
    line(b, 1, "}");
    line(b, 1,
         "fn merge_nested(&mut self, bytes: &[u8], depth: u32) -> ::shoal::Result<()> {");
    line(b, 2, "::shoal::pb::merge(self, bytes, depth)");
    line(b, 1, "}");
    line(b, 0, "}\n");
    line(b, 0, "#[allow(dead_code)]");
    line(b, 0, "impl %s {", T);
    line(b, 1, "pub const FULL_NAME: &'static str = \"%s\";", msg->full_name);
    line(b, 1, "/// The schema's checks (bounds, closed enums, nested messages).");
    line(b, 1, "pub fn validate(&self) -> ::shoal::Result<()> {");
    line(b, 2, "::shoal::pb::Fields::check(self)");
    line(b, 1, "}");
    line(b, 0, "}\n");
}

static void emit_encoded(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    line(b, 0, "// %s: encoded", msg->full_name);
    enc_struct(b, file, msg);
    enc_impls(b, file, msg);
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
    for (size_t i = 0; i < n; i++) {
        const sg_message *msg = order[i];
        if (msg->failed)
            continue;
        if (msg->encoded)
            emit_encoded(&b, file, msg);
        else if (!msg->is_map_entry)
            emit_message(&b, file, msg);
    }
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
