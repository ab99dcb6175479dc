/*
 * emit_node.c — the Node.js emitter (lang=node): <base>_shoal.js and <base>_shoal.d.ts
 * per schema file, for the `shoal` npm package (bindings/node).
 *
 * Each fixed message becomes a class (extending shoal's gen.Message) over a DataView of
 * exactly its C layout: every accessor reads or writes at the offset the model computed
 * (the numbers the C header's static assertions check), through an element codec of
 * lib/gen.js — scalars (64-bit integers as BigInt), bool, bounded string/bytes (u32
 * length then max_len bytes), nested messages (a live view into the parent's bytes),
 * repeated fields (u32 count then the elements, as arrays), oneof members (present when
 * the case word says so; setting one sets the case). A message is its bytes: queues and
 * values move them without encoding. Setters refuse what does not fit; validate()
 * mirrors the C validation with the same messages. The class carries SIZE, ALIGN,
 * FULL_NAME, LAYOUT_HASH and the layout descriptor (shoalType) the addon registers with
 * libshoal, so objects of it are checked against every other language's build of the
 * schema. Enums are frozen objects of their values. The .d.ts declares the same.
 *
 * An encoded message (and a map entry) is a class of plain properties instead (strings,
 * Uint8Arrays, arrays, null or a message), extending gen.Encoded, with its field table
 * for lib/pb.js's protobuf codec and checks. Every class has toPb / fromPb, what
 * services carry.
 *
 * Imported files' types come from their own generated modules (require of the relative
 * path). The output is deterministic.
 */
#include <stdio.h>
#include <string.h>

#include "emit_lang.h"

/* ---- names ---------------------------------------------------------------------- */

/* Property names the base class uses get a trailing '_'. */
static const char *js_name(const char *name)
{
    static const char *const taken[] = {"bytes",  "view",        "validate", "clone",
                                        "toJSON", "constructor", "__proto__"};
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
        if (!strcmp(name, taken[i]))
            return sg_printf("%s_", name);
    return name;
}

/* The path from file `from`'s module to file `to`'s: "./b_shoal", "../c_shoal". */
static const char *module_path(const sg_file *from, const sg_file *to)
{
    sg_buf b = {0};
    const char *p = from->base;
    int up = 0;
    for (; *p; p++)
        up += *p == '/';
    if (!up)
        sg_buf_puts(&b, "./");
    for (int i = 0; i < up; i++)
        sg_buf_puts(&b, "../");
    sg_buf_printf(&b, "%s_shoal", to->base);
    const char *s = sg_strdup(b.data);
    sg_buf_free(&b);
    return s;
}

static int dep_index(const sg_file *from, const sg_file *def)
{
    for (size_t d = 0; d < from->ndeps; d++)
        if (from->deps[d] == def)
            return (int)d;
    return -1;
}

static const char *type_ref(const sg_file *from, const sg_file *def, const char *name)
{
    return from == def ? name : sg_printf("_d%d.%s", dep_index(from, def), name);
}

const char *sg_node_msg_class(const sg_file *from, const sg_message *m)
{
    return type_ref(from, m->file, m->c_name);
}

/* JavaScript is indented by two spaces. */
#define line(b, ind, ...) sg_line(b, 2, ind, __VA_ARGS__)

/* ---- element codecs ------------------------------------------------------------- */

static const char *scalar_codec(enum sg_kind k)
{
    switch (k) {
    case SG_INT8:
        return "_g.i8";
    case SG_UINT8:
    case SG_CHAR:
        return "_g.u8";
    case SG_INT16:
        return "_g.i16";
    case SG_UINT16:
        return "_g.u16";
    case SG_INT32:
    case SG_ENUM:
        return "_g.i32";
    case SG_UINT32:
        return "_g.u32";
    case SG_INT64:
        return "_g.i64";
    case SG_UINT64:
        return "_g.u64";
    case SG_FLOAT:
        return "_g.f32";
    case SG_DOUBLE:
        return "_g.f64";
    case SG_BOOL:
        return "_g.bool";
    default:
        return "?";
    }
}

/* The codec of one element of f: a shared scalar codec or a module constant. */
static const char *elem_codec(const sg_message *msg, const sg_field *f)
{
    if (f->kind == SG_STRING || f->kind == SG_BYTES || f->kind == SG_MESSAGE)
        return sg_printf("_e_%s_%s", msg->c_name, f->name);
    return scalar_codec(f->kind);
}

/* Declares the module constant of f's element codec, if it needs one. */
static void declare_codec(sg_buf *b, const sg_file *file, const sg_message *msg,
                          const sg_field *f)
{
    if (f->kind == SG_STRING || f->kind == SG_BYTES)
        line(b, 0, "const %s = _g.text(%u, %s);", elem_codec(msg, f), f->max_len,
             f->kind == SG_STRING ? "true" : "false");
    else if (f->kind == SG_MESSAGE)
        line(b, 0, "const %s = _g.message(%s);", elem_codec(msg, f),
             type_ref(file, f->msg->file, f->msg->c_name));
}

/* The TypeScript type of one element / of the member. */
static const char *ts_elem(const sg_file *file, const sg_field *f)
{
    switch (f->kind) {
    case SG_INT64:
    case SG_UINT64:
        return "bigint";
    case SG_BOOL:
        return "boolean";
    case SG_STRING:
        return "string";
    case SG_BYTES:
        return "Uint8Array";
    case SG_MESSAGE:
        return type_ref(file, f->msg->file, f->msg->c_name);
    default:
        return "number";
    }
}

static const char *ts_member(const sg_file *file, const sg_field *f)
{
    return f->repeated ? sg_printf("%s[]", ts_elem(file, f)) : ts_elem(file, f);
}

/* ---- enums ---------------------------------------------------------------------- */

static void emit_enum(sg_buf *js, sg_buf *ts, const sg_enum *e)
{
    line(js, 0, "/** %s */", e->full_name);
    sg_buf_printf(js, "const %s = Object.freeze({", e->c_name);
    sg_buf_printf(ts, "/** %s */\nexport declare const %s: Readonly<{", e->full_name,
                  e->c_name);
    for (size_t i = 0; i < e->nvalues; i++) {
        sg_buf_printf(js, "%s%s: %d", i ? ", " : " ", e->values[i].name,
                      e->values[i].number);
        sg_buf_printf(ts, "%s%s: %d", i ? "; " : " ", e->values[i].name,
                      e->values[i].number);
    }
    sg_buf_puts(js, " });\n");
    sg_buf_puts(ts, " }>;\n\n");
    line(js, 0, "const _V_%s = new Set(Object.values(%s));\n", e->c_name, e->c_name);
}

/* ---- accessors ------------------------------------------------------------------ */

/* Getter and setter of a plain member at `off` (has: the offset of its has_ flag, or
 * -1). */
static void accessors(sg_buf *b, const sg_message *msg, const sg_field *f, uint32_t off,
                      long has)
{
    const char *n = js_name(f->name);
    const char *c = elem_codec(msg, f);
    const char *where = sg_printf("'%s.%s'", msg->full_name, f->name);
    const char *set_has =
        has >= 0 ? sg_printf(" _g.bool.set(this, %ld, true);", has) : "";
    if (f->repeated) {
        uint32_t items = f->items_offset;
        line(b, 1, "get %s() { return _g.list(this, %u, %u, %u, %s); }", n, off, items,
             f->max_count, c);
        line(b, 1, "set %s(v) { _g.setList(this, %u, %u, %u, %s, v, %s); }", n, off,
             items, f->max_count, c, where);
        return;
    }
    line(b, 1, "get %s() { return %s.get(this, %u); }", n, c, off);
    line(b, 1, "set %s(v) { %s.set(this, %u, v, %s);%s }", n, c, off, where, set_has);
}

static void oneof_accessors(sg_buf *b, const sg_message *msg, const sg_oneof *o)
{
    line(b, 1, "/** Field number of the member of %s that is set (0: none). */", o->name);
    line(b, 1, "get %s_case() { return _g.u32.get(this, %u); }", o->name, o->case_offset);
    line(b, 1, "set %s_case(v) { _g.u32.set(this, %u, v); }", o->name, o->case_offset);
    for (size_t j = o->first; j < o->first + o->count; j++) {
        const sg_field *f = &msg->fields[j];
        const char *n = js_name(f->name);
        const char *c = elem_codec(msg, f);
        const char *where = sg_printf("'%s.%s'", msg->full_name, f->name);
        if (f->repeated) {
            line(
                b, 1,
                "get %s() { return this.%s_case === %u ? _g.list(this, %u, %u, %u, %s) : "
                "undefined; }",
                n, o->name, f->number, o->union_offset, f->items_offset, f->max_count, c);
            line(b, 1,
                 "set %s(v) { _g.setList(this, %u, %u, %u, %s, v, %s); this.%s_case = "
                 "%u; }",
                 n, o->union_offset, f->items_offset, f->max_count, c, where, o->name,
                 f->number);
        } else {
            line(
                b, 1,
                "get %s() { return this.%s_case === %u ? %s.get(this, %u) : undefined; }",
                n, o->name, f->number, c, o->union_offset);
            line(b, 1, "set %s(v) { %s.set(this, %u, v, %s); this.%s_case = %u; }", n, c,
                 o->union_offset, where, o->name, f->number);
        }
    }
}

/* ---- defaults ------------------------------------------------------------------- */

static const char *hex_of(const char *p, size_t n)
{
    sg_buf b = {0};
    for (size_t i = 0; i < n; i++)
        sg_buf_printf(&b, "%02x", (unsigned char)p[i]);
    const char *s = sg_strdup(b.data ? b.data : "");
    sg_buf_free(&b);
    return s;
}

/* The JS literal of f's proto2 default (or a non-zero first enum value), or NULL. */
static const char *default_literal(const sg_field *f)
{
    const char *d = f->default_value;
    if (f->repeated || f->oneof >= 0 || f->is_has_flag)
        return NULL;
    if (f->kind == SG_ENUM) {
        int32_t v = sg_enum_default(f);
        return v ? sg_printf("%d", v) : NULL;
    }
    if (!d)
        return NULL;
    switch (f->kind) {
    case SG_STRING:
        return sg_printf("Buffer.from('%s', 'hex').toString('utf8')",
                         hex_of(d, strlen(d)));
    case SG_BYTES: {
        sg_buf raw = sg_unescape(d);
        const char *s = sg_printf("Buffer.from('%s', 'hex')",
                                  hex_of(raw.data ? raw.data : "", raw.len));
        sg_buf_free(&raw);
        return s;
    }
    case SG_BOOL:
        return !strcmp(d, "true") ? "true" : NULL;
    case SG_FLOAT:
    case SG_DOUBLE:
        if (!strcmp(d, "inf"))
            return "Infinity";
        if (!strcmp(d, "-inf"))
            return "-Infinity";
        if (!strcmp(d, "nan"))
            return "NaN";
        return d;
    case SG_INT64:
    case SG_UINT64:
        return sg_printf("%sn", d);
    case SG_MESSAGE:
        return NULL;
    default:
        return d;
    }
}

/* A constructor giving a new message its defaults (nested messages' too), if any. */
static void emit_constructor(sg_buf *b, const sg_message *msg)
{
    sg_buf body = {0};
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        const char *lit = default_literal(f);
        if (lit)
            line(&body, 3, "_d_%s_%s(this, %s);", msg->c_name, f->name, lit);
        else if (f->kind == SG_MESSAGE && !f->repeated && f->oneof < 0)
            line(&body, 3, "this.bytes.set(new %s.cls().bytes, %u);", elem_codec(msg, f),
                 f->offset);
    }
    if (body.len) {
        line(b, 1,
             "/** A message over bytes (default: a new one with every field at its "
             "default). */");
        line(b, 1, "constructor(bytes) {");
        line(b, 2, "super(bytes);");
        line(b, 2, "if (bytes === undefined) {");
        sg_buf_add(b, body.data, body.len);
        line(b, 2, "}");
        line(b, 1, "}");
    }
    sg_buf_free(&body);
}

/* The raw setters a constructor uses for defaults (they do not set has_ flags). */
static void declare_default_setters(sg_buf *b, const sg_message *msg)
{
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (default_literal(f))
            line(b, 0, "const _d_%s_%s = (m, v) => %s.set(m, %u, v, '%s.%s');",
                 msg->c_name, f->name, elem_codec(msg, f), f->offset, msg->full_name,
                 f->name);
    }
}

/* ---- validation ----------------------------------------------------------------- */

/* Checks the element at the JS offset expression `off` (the C emitter's messages). */
static void check_elem(sg_buf *b, const sg_file *file, const sg_message *msg,
                       const sg_field *f, const char *off, int ind)
{
    const char *N = msg->full_name;
    switch (f->kind) {
    case SG_STRING:
    case SG_BYTES:
        line(b, ind, "if (_g.u32.get(this, %s) > %u)", off, f->max_len);
        line(b, ind + 1,
             "_g.invalid(`%s.%s: length ${_g.u32.get(this, %s)} over max_len %u`);", N,
             f->name, off, f->max_len);
        break;
    case SG_ENUM:
        line(b, ind, "if (!%s.has(_g.i32.get(this, %s)))",
             type_ref(file, f->enm->file, sg_printf("_V_%s", f->enm->c_name)), off);
        line(b, ind + 1,
             "_g.invalid(`%s.%s: ${_g.i32.get(this, %s)} is not a value of %s`);", N,
             f->name, off, f->enm->full_name);
        break;
    case SG_BOOL:
        line(b, ind, "if (_g.u8.get(this, %s) > 1)", off);
        line(b, ind + 1, "_g.invalid('%s.%s: a bool holds neither 0 nor 1');", N,
             f->name);
        break;
    case SG_MESSAGE:
        line(b, ind, "%s.get(this, %s).validate();", elem_codec(msg, f), off);
        break;
    default:
        break;
    }
}

static void check_member(sg_buf *b, const sg_file *file, const sg_message *msg,
                         const sg_field *f, uint32_t off, int ind)
{
    if (!f->repeated) {
        if (sg_elem_needs_check(f))
            check_elem(b, file, msg, f, sg_printf("%u", off), ind);
        return;
    }
    line(b, ind, "if (_g.u32.get(this, %u) > %u)", off, f->max_count);
    line(b, ind + 1,
         "_g.invalid(`%s.%s: count ${_g.u32.get(this, %u)} over max_count %u`);",
         msg->full_name, f->name, off, f->max_count);
    if (!sg_elem_needs_check(f))
        return;
    line(b, ind, "for (let i = 0, n = Math.min(_g.u32.get(this, %u), %u); i < n; i++) {",
         off, f->max_count);
    check_elem(b, file, msg, f,
               sg_printf("%u + i * %u", off + f->items_offset, f->elem_size), ind + 1);
    line(b, ind, "}");
}

static void emit_validate(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    line(b, 1,
         "/** Throws ShoalError EINVALID_DATA naming the first field out of bounds. */");
    line(b, 1, "validate() {");
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof < 0) {
            check_member(b, file, msg, f, f->offset, 2);
            continue;
        }
        const sg_oneof *o = &msg->oneofs[f->oneof];
        line(b, 2, "switch (this.%s_case) {", o->name);
        line(b, 3, "case 0:");
        line(b, 4, "break;");
        for (size_t j = o->first; j < o->first + o->count; j++) {
            line(b, 3, "case %u:", msg->fields[j].number);
            check_member(b, file, msg, &msg->fields[j], o->union_offset, 4);
            line(b, 4, "break;");
        }
        line(b, 3, "default:");
        line(b, 4, "_g.invalid(`%s.%s: unknown case ${this.%s_case}`);", msg->full_name,
             o->name, o->name);
        line(b, 2, "}");
        i = o->first + o->count - 1;
    }
    line(b, 1, "}");
}

/* ---- descriptor ----------------------------------------------------------------- */

static void field_entry(sg_buf *b, const sg_file *file, const sg_field *f,
                        uint32_t offset, int ind)
{
    line(b, ind, "['%s', %u, %u, %u, %u, %u, %u, %s],", f->name, f->number,
         (unsigned)f->kind, offset, f->size, f->repeated ? f->max_count : 0, f->max_len,
         f->msg ? sg_printf("%s.shoalType", type_ref(file, f->msg->file, f->msg->c_name))
                : "null");
}

/* The protobuf table (gen.js's toPb / fromPb hand it to libshoal's codec): emit_c.c's
 * emit_pb_table has the same numbers, nested messages are their classes. */
static void emit_pb_table(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    line(b, 0, "%s.shoalPb = Object.freeze({", msg->c_name);
    line(b, 1, "name: '%s',", msg->full_name);
    line(b, 1, "fields: [");
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->is_has_flag)
            continue;
        line(b, 2, "[%s, %s, '%s'],", sg_pb_entry_numbers(msg, i),
             f->msg ? type_ref(file, f->msg->file, f->msg->c_name) : "null", f->name);
    }
    line(b, 1, "],");
    line(b, 0, "});\n");
}

static void emit_statics(sg_buf *b, const sg_file *file, const sg_message *msg)
{
    const char *T = msg->c_name;
    line(b, 0, "%s.SIZE = %u;", T, msg->size);
    line(b, 0, "%s.ALIGN = %u;", T, msg->align);
    line(b, 0, "%s.FULL_NAME = '%s';", T, msg->full_name);
    line(b, 0, "%s.LAYOUT_HASH = 0x%016llxn;", T, (unsigned long long)msg->hash);
    sg_buf_printf(b, "%s.FIELD_NAMES = Object.freeze([", T);
    size_t n = 0;
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0 && f->number == msg->fields[msg->oneofs[f->oneof].first].number)
            sg_buf_printf(b, "%s'%s_case'", n++ ? ", " : "", msg->oneofs[f->oneof].name);
        sg_buf_printf(b, "%s'%s'", n++ ? ", " : "", js_name(f->name));
    }
    sg_buf_puts(b, "]);\n");
    line(b, 0, "%s.shoalType = Object.freeze({", T);
    line(b, 1, "name: '%s',", msg->full_name);
    line(b, 1, "hash: 0x%016llxn,", (unsigned long long)msg->hash);
    line(b, 1, "size: %u,", msg->size);
    line(b, 1, "align: %u,", msg->align);
    line(b, 1, "fields: [");
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof < 0) {
            field_entry(b, file, f, f->offset, 2);
            continue;
        }
        const sg_oneof *o = &msg->oneofs[f->oneof];
        line(b, 2, "['%s', 0, %u, %u, %u, 0, 0, {", o->name, (unsigned)SG_UNION,
             o->case_offset, o->size);
        line(b, 3, "name: '%s', hash: 0x%016llxn, size: %u, align: %u, fields: [",
             o->name, (unsigned long long)o->hash, o->size,
             o->union_align > 4 ? o->union_align : 4);
        for (size_t j = o->first; j < o->first + o->count; j++)
            field_entry(b, file, &msg->fields[j], o->union_offset - o->case_offset, 4);
        line(b, 3, "],");
        line(b, 2, "}],");
        i = o->first + o->count - 1;
    }
    line(b, 1, "],");
    line(b, 0, "});");
    emit_pb_table(b, file, msg);
}

/* ---- messages ------------------------------------------------------------------- */

static void emit_message(sg_buf *js, sg_buf *ts, const sg_file *file,
                         const sg_message *msg)
{
    const char *T = msg->c_name;
    line(js, 0, "// %s", msg->canon);
    for (size_t i = 0; i < msg->nfields; i++)
        declare_codec(js, file, msg, &msg->fields[i]);
    declare_default_setters(js, msg);
    line(js, 0, "/** %s: fixed layout, %u bytes, align %u. */", msg->full_name, msg->size,
         msg->align);
    line(js, 0, "class %s extends _g.Message {", T);
    sg_buf_printf(ts, "/** %s: fixed layout, %u bytes, align %u. */\n", msg->full_name,
                  msg->size, msg->align);
    sg_buf_printf(ts, "export declare class %s extends gen.Message {\n", T);
    emit_constructor(js, msg);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->oneof >= 0) {
            const sg_oneof *o = &msg->oneofs[f->oneof];
            oneof_accessors(js, msg, o);
            sg_buf_printf(ts, "  %s_case: number;\n", o->name);
            for (size_t j = o->first; j < o->first + o->count; j++)
                sg_buf_printf(
                    ts, "  get %s(): %s | undefined;\n  set %s(v: %s);\n",
                    js_name(msg->fields[j].name), ts_member(file, &msg->fields[j]),
                    js_name(msg->fields[j].name), ts_member(file, &msg->fields[j]));
            i = o->first + o->count - 1;
            continue;
        }
        long has = i > 0 && msg->fields[i - 1].is_has_flag
                       ? (long)msg->fields[i - 1].offset
                       : -1;
        accessors(js, msg, f, f->offset, has);
        sg_buf_printf(ts, "  %s: %s;\n", js_name(f->name), ts_member(file, f));
    }
    emit_validate(js, file, msg);
    line(js, 0, "}");
    sg_buf_printf(ts,
                  "  validate(): void;\n"
                  "  static readonly SIZE: %u;\n"
                  "  static readonly ALIGN: %u;\n"
                  "  static readonly FULL_NAME: '%s';\n"
                  "  static readonly LAYOUT_HASH: bigint;\n"
                  "  static readonly FIELD_NAMES: readonly string[];\n"
                  "  static readonly shoalType: object;\n"
                  "  static readonly shoalPb: object;\n"
                  "  static fromPb(bytes: Uint8Array): %s;\n"
                  "}\n\n",
                  msg->size, msg->align, msg->full_name, T);
    emit_statics(js, file, msg);
}

/* ---- encoded messages ------------------------------------------------------------ */

/* An encoded message (and a map entry) is a class of plain properties over lib/pb.js:
 * `class Note extends _g.Encoded {}` and its field table, registered by _g.encoded
 * (each row: number, property, proto name, protobuf type, flags, class of a message or
 * the values of a closed enum, max_len, max_count, oneof, enum default). A message's
 * class is given as a function returning it, since it may be defined further on. */

static const char *enc_ref(const sg_file *file, const sg_field *f)
{
    if (f->kind == SG_MESSAGE)
        return sg_printf("() => %s", type_ref(file, f->msg->file, f->msg->c_name));
    if (f->kind == SG_ENUM && !f->enm->file->proto3) /* closed */
        return sg_printf("{ values: %s, name: '%s' }",
                         type_ref(file, f->enm->file, sg_printf("_V_%s", f->enm->c_name)),
                         f->enm->full_name);
    return "null";
}

static unsigned enc_flags(const sg_message *msg, size_t i)
{
    enum { REPEATED = 1, PACKED = 2, PRESENCE = 4, REQUIRED = 8 }; /* lib/pb.js */
    const sg_field *f = &msg->fields[i];
    unsigned flags = 0;
    if (f->repeated)
        flags |= REPEATED | (sg_pb_info_of(msg, i).packed ? PACKED : 0);
    if (f->presence)
        flags |= PRESENCE;
    if (f->proto->label ==
        GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REQUIRED)
        flags |= REQUIRED;
    return flags;
}

/* The TypeScript type of an encoded message's property. */
static const char *enc_ts(const sg_file *file, const sg_field *f)
{
    const char *e = ts_elem(file, f);
    if (f->repeated)
        return sg_printf("%s[]", e);
    if (f->kind == SG_MESSAGE || f->presence)
        return sg_printf("%s | null", e);
    return e;
}

static void emit_encoded(sg_buf *js, sg_buf *ts, const sg_file *file,
                         const sg_message *msg)
{
    const char *T = msg->c_name;
    line(js, 0, "/** %s: encoded (%s); plain properties, carried as protobuf. */",
         msg->full_name, msg->reason);
    line(js, 0, "class %s extends _g.Encoded {}", T);
    line(js, 0, "_g.encoded(%s, '%s', [", T, msg->full_name);
    sg_buf_printf(ts, "/** %s: encoded (%s). */\n", msg->full_name, msg->reason);
    sg_buf_printf(ts, "export declare class %s extends gen.Encoded {\n", T);
    sg_buf_printf(ts, "  constructor(init?: Partial<Omit<%s, keyof gen.Encoded>>);\n", T);
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_field *f = &msg->fields[i];
        if (f->is_has_flag)
            continue;
        const sg_oneof *o = f->oneof >= 0 ? &msg->oneofs[f->oneof] : NULL;
        line(js, 1, "[%u, '%s', '%s', %d, %u, %s, %u, %u, %s, %d],", f->number,
             js_name(f->name), f->name, f->proto_type, enc_flags(msg, i),
             enc_ref(file, f), f->max_len, f->max_count,
             o ? sg_printf("'%s'", o->name) : "null",
             f->kind == SG_ENUM ? sg_enum_default(f) : 0);
        if (o && i == o->first)
            sg_buf_printf(ts, "  %s_case: number;\n", o->name);
        if (o)
            sg_buf_printf(
                ts, "  get %s(): %s | undefined;\n  set %s(v: %s | undefined);\n",
                js_name(f->name), ts_elem(file, f), js_name(f->name), ts_elem(file, f));
        else
            sg_buf_printf(ts, "  %s: %s;\n", js_name(f->name), enc_ts(file, f));
    }
    line(js, 0, "]);\n");
    sg_buf_printf(ts,
                  "  static readonly FULL_NAME: '%s';\n"
                  "  static fromPb(bytes: Uint8Array): %s;\n"
                  "}\n\n",
                  msg->full_name, T);
}

/* ---- files ---------------------------------------------------------------------- */

static void emit_imports(sg_model *m, sg_buf *js, sg_buf *ts, const sg_file *file)
{
    for (size_t d = 0; d < file->ndeps; d++) {
        const sg_file *dep = file->deps[d];
        if (!sg_check_import(m, file, dep))
            continue;
        line(js, 0, "const _d%zu = require('%s.js');", d, module_path(file, dep));
        line(ts, 0, "import * as _d%zu from '%s';", d, module_path(file, dep));
    }
}

static void emit_file(sg_model *m, const sg_file *file, sg_outputs *out)
{
    sg_buf js = {0}, ts = {0};
    line(&js, 0, "// Generated by protoc-gen-shoal from %s. Do not edit.", file->name);
    line(&js, 0, "// shoal types of %s: classes over the bytes of the C layouts.",
         file->name);
    line(&js, 0, "'use strict';\n");
    line(&js, 0, "const _g = require('shoal').gen;");
    line(&ts, 0, "// Generated by protoc-gen-shoal from %s. Do not edit.", file->name);
    line(&ts, 0, "import { gen } from 'shoal';");
    emit_imports(m, &js, &ts, file);
    sg_buf_puts(&js, "\n");
    sg_buf_puts(&ts, "\n");
    sg_buf exports = {0};
    for (size_t i = 0; i < file->nenums; i++) {
        emit_enum(&js, &ts, file->enums[i]);
        sg_buf_printf(&exports, "  %s,\n  _V_%s,\n", file->enums[i]->c_name,
                      file->enums[i]->c_name);
    }
    size_t n;
    const sg_message **order = sg_file_messages_ordered(file, &n);
    for (size_t i = 0; i < n; i++) {
        const sg_message *msg = order[i];
        if (msg->failed || (msg->is_map_entry && !msg->encoded))
            continue;
        if (msg->encoded)
            emit_encoded(&js, &ts, file, msg);
        else
            emit_message(&js, &ts, file, msg);
        sg_buf_printf(&exports, "  %s,\n", msg->c_name);
    }
    sg_emit_node_services(&js, &ts, &exports, file); /* emit_node_service.c */
    sg_buf_puts(&js, "module.exports = {\n");
    if (exports.len)
        sg_buf_add(&js, exports.data, exports.len);
    sg_buf_puts(&js, "};\n");
    sg_buf_free(&exports);
    while (ts.len > 1 && ts.data[ts.len - 1] == '\n' && ts.data[ts.len - 2] == '\n')
        ts.data[--ts.len] = '\0';
    sg_output_add(out, sg_printf("%s_shoal.js", file->base), &js);
    sg_output_add(out, sg_printf("%s_shoal.d.ts", file->base), &ts);
}

int sg_emit_node(sg_model *m, const sg_params *p, sg_outputs *out)
{
    (void)p;
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i]->generate)
            emit_file(m, m->files[i], out);
    return m->nerrors ? -1 : 0;
}
