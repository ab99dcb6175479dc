/*
 * model.c — builds the language-neutral schema model: types, options, the fixed or
 * encoded decision, layouts and layout hashes. See model.h and docs/schema.md.
 */
#include "model.h"

#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#define T(x) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_##x
#define L(x) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_##x

/* Largest fixed layout accepted: sizes stay far from uint32 overflow. */
#define SG_MAX_SIZE (1u << 30)

void sg_error(sg_model *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sg_buf_vprintf(&m->errors, fmt, ap);
    va_end(ap);
    sg_buf_puts(&m->errors, "\n");
    m->nerrors++;
}

/* "orders.proto: message orders.Order, field symbol: " */
static const char *field_ctx(const sg_message *msg, const sg_field *f)
{
    return sg_printf("%s: message %s, field %s: ", msg->file->name, msg->full_name,
                     f->name);
}

static const char *msg_ctx(const sg_message *msg)
{
    return sg_printf("%s: message %s: ", msg->file->name, msg->full_name);
}

static const ProtobufCMessage *opts(const void *options)
{
    return (const ProtobufCMessage *)options;
}

const char *sg_kind_name(enum sg_kind k)
{
    switch (k) {
    case SG_INT8:
        return "int8";
    case SG_UINT8:
        return "uint8";
    case SG_INT16:
        return "int16";
    case SG_UINT16:
        return "uint16";
    case SG_INT32:
        return "int32";
    case SG_UINT32:
        return "uint32";
    case SG_INT64:
        return "int64";
    case SG_UINT64:
        return "uint64";
    case SG_FLOAT:
        return "float32";
    case SG_DOUBLE:
        return "float64";
    case SG_BOOL:
        return "bool";
    case SG_CHAR:
        return "char";
    case SG_ENUM:
        return "enum";
    case SG_STRING:
        return "string";
    case SG_BYTES:
        return "bytes";
    case SG_MESSAGE:
        return "message";
    case SG_UNION:
        return "oneof";
    }
    return "?";
}

/* The schema's spelling of a field's type, for messages. */
static const char *proto_type_name(const sg_field_proto *fp)
{
    static const char *const names[] = {
        [T(DOUBLE)] = "double",     [T(FLOAT)] = "float",     [T(INT64)] = "int64",
        [T(UINT64)] = "uint64",     [T(INT32)] = "int32",     [T(FIXED64)] = "fixed64",
        [T(FIXED32)] = "fixed32",   [T(BOOL)] = "bool",       [T(STRING)] = "string",
        [T(GROUP)] = "group",       [T(MESSAGE)] = "message", [T(BYTES)] = "bytes",
        [T(UINT32)] = "uint32",     [T(ENUM)] = "enum",       [T(SFIXED32)] = "sfixed32",
        [T(SFIXED64)] = "sfixed64", [T(SINT32)] = "sint32",   [T(SINT64)] = "sint64",
    };
    if (fp->type == T(MESSAGE) || fp->type == T(ENUM))
        return sg_printf("%s %s", names[fp->type],
                         fp->type_name ? fp->type_name + 1 : "?");
    if ((unsigned)fp->type < sizeof(names) / sizeof(names[0]) && names[fp->type])
        return names[fp->type];
    return "unknown";
}

static enum sg_kind kind_of(int type)
{
    switch (type) {
    case T(DOUBLE):
        return SG_DOUBLE;
    case T(FLOAT):
        return SG_FLOAT;
    case T(INT64):
    case T(SINT64):
    case T(SFIXED64):
        return SG_INT64;
    case T(UINT64):
    case T(FIXED64):
        return SG_UINT64;
    case T(INT32):
    case T(SINT32):
    case T(SFIXED32):
        return SG_INT32;
    case T(UINT32):
    case T(FIXED32):
        return SG_UINT32;
    case T(BOOL):
        return SG_BOOL;
    case T(STRING):
        return SG_STRING;
    case T(BYTES):
        return SG_BYTES;
    case T(MESSAGE):
        return SG_MESSAGE;
    case T(ENUM):
        return SG_ENUM;
    default:
        return 0;
    }
}

/* In 64 bits: a bound near UINT32_MAX must not wrap (the result is checked against
 * SG_MAX_SIZE before it is stored in 32 bits). */
static uint64_t round_up(uint64_t n, uint64_t a)
{
    return (n + a - 1) / a * a;
}

/* ---- registering types ---------------------------------------------------------- */

static void add_enum(sg_model *m, sg_file *file, const sg_enum_proto *ep,
                     const char *scope, const char *c_scope)
{
    sg_enum *e = sg_alloc(sizeof(*e));
    e->full_name = *scope ? sg_printf("%s.%s", scope, ep->name) : sg_strdup(ep->name);
    e->c_name = sg_printf("%s%s", c_scope, ep->name);
    e->file = file;
    e->nvalues = ep->n_value;
    e->values = sg_alloc(sizeof(*e->values) * (ep->n_value ? ep->n_value : 1));
    for (size_t i = 0; i < ep->n_value; i++) {
        e->values[i].name = ep->value[i]->name;
        e->values[i].number = ep->value[i]->number;
    }
    size_t cap = m->nenums;
    m->enums = sg_grow(m->enums, sizeof(*m->enums), &cap, m->nenums + 1);
    m->enums[m->nenums++] = e;
    cap = file->nenums;
    file->enums = sg_grow(file->enums, sizeof(*file->enums), &cap, file->nenums + 1);
    file->enums[file->nenums++] = e;
}

static void add_message(sg_model *m, sg_file *file, const sg_message_proto *mp,
                        const char *scope, const char *c_scope, sg_message *parent)
{
    sg_message *msg = sg_alloc(sizeof(*msg));
    msg->full_name = *scope ? sg_printf("%s.%s", scope, mp->name) : sg_strdup(mp->name);
    msg->name = mp->name;
    msg->c_name = sg_printf("%s%s", c_scope, mp->name);
    msg->file = file;
    msg->parent = parent;
    msg->proto = mp;
    msg->is_map_entry =
        mp->options && mp->options->has_map_entry && mp->options->map_entry;
    size_t cap = m->nmessages;
    m->messages = sg_grow(m->messages, sizeof(*m->messages), &cap, m->nmessages + 1);
    m->messages[m->nmessages++] = msg;
    cap = file->nmessages;
    file->messages =
        sg_grow(file->messages, sizeof(*file->messages), &cap, file->nmessages + 1);
    file->messages[file->nmessages++] = msg;

    const char *inner_c = sg_printf("%s_", msg->c_name);
    for (size_t i = 0; i < mp->n_enum_type; i++)
        add_enum(m, file, mp->enum_type[i], msg->full_name, inner_c);
    for (size_t i = 0; i < mp->n_nested_type; i++)
        add_message(m, file, mp->nested_type[i], msg->full_name, inner_c, msg);
}

static sg_message *find_message(sg_model *m, const char *type_name)
{
    if (!type_name || type_name[0] != '.')
        return NULL;
    for (size_t i = 0; i < m->nmessages; i++)
        if (!strcmp(m->messages[i]->full_name, type_name + 1))
            return m->messages[i];
    return NULL;
}

static sg_enum *find_enum(sg_model *m, const char *type_name)
{
    if (!type_name || type_name[0] != '.')
        return NULL;
    for (size_t i = 0; i < m->nenums; i++)
        if (!strcmp(m->enums[i]->full_name, type_name + 1))
            return m->enums[i];
    return NULL;
}

static sg_file *find_file(sg_model *m, const char *name)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (!strcmp(m->files[i]->name, name))
            return m->files[i];
    return NULL;
}

static void add_file(sg_model *m, const sg_file_proto *fp,
                     const Google__Protobuf__Compiler__CodeGeneratorRequest *req)
{
    sg_file *f = sg_alloc(sizeof(*f));
    f->proto = fp;
    f->name = fp->name;
    size_t n = strlen(fp->name);
    f->base = n > 6 && !strcmp(fp->name + n - 6, ".proto") ? sg_strndup(fp->name, n - 6)
                                                           : fp->name;
    f->package = fp->package ? fp->package : "";
    f->proto3 = fp->syntax && !strcmp(fp->syntax, "proto3");
    for (size_t i = 0; i < req->n_file_to_generate; i++)
        if (!strcmp(req->file_to_generate[i], fp->name))
            f->generate = true;
    f->c_prefix = "";
    int rc = sg_option_string(opts(fp->options), SG_OPT_C_PREFIX, &f->c_prefix);
    if (rc < 0)
        sg_error(m, "%s: (shoal.c_prefix) has a malformed value", f->name);
    f->deps = sg_alloc(sizeof(*f->deps) * (fp->n_dependency + 1));
    for (size_t i = 0; i < fp->n_dependency; i++) {
        sg_file *d = find_file(m, fp->dependency[i]);
        if (d)
            f->deps[f->ndeps++] = d;
    }
    size_t cap = m->nfiles;
    m->files = sg_grow(m->files, sizeof(*m->files), &cap, m->nfiles + 1);
    m->files[m->nfiles++] = f;

    for (size_t i = 0; i < fp->n_enum_type; i++)
        add_enum(m, f, fp->enum_type[i], f->package, f->c_prefix);
    for (size_t i = 0; i < fp->n_message_type; i++)
        add_message(m, f, fp->message_type[i], f->package, f->c_prefix, NULL);
}

/* ---- fields and options ---------------------------------------------------------- */

/* Reads (shoal.max_len) / (shoal.max_count) of a field, reporting misuse. */
static void field_options(sg_model *m, sg_message *msg, sg_field *f)
{
    const ProtobufCMessage *o = opts(f->proto->options);
    uint64_t v;
    int rc = sg_option_varint(o, SG_OPT_MAX_LEN, &v);
    if (rc < 0 || (rc > 0 && v > UINT32_MAX)) {
        sg_error(m, "%s(shoal.max_len) has a malformed value", field_ctx(msg, f));
    } else if (rc > 0) {
        if (f->kind != SG_STRING && f->kind != SG_BYTES)
            sg_error(m, "%s(shoal.max_len) applies to string and bytes fields, not %s",
                     field_ctx(msg, f), proto_type_name(f->proto));
        else if (v == 0)
            sg_error(m, "%s(shoal.max_len) must be at least 1", field_ctx(msg, f));
        else
            f->max_len = (uint32_t)v;
    }
    rc = sg_option_varint(o, SG_OPT_MAX_COUNT, &v);
    if (rc < 0 || (rc > 0 && v > UINT32_MAX)) {
        sg_error(m, "%s(shoal.max_count) has a malformed value", field_ctx(msg, f));
    } else if (rc > 0) {
        if (!f->repeated)
            sg_error(m,
                     "%s(shoal.max_count) applies to repeated fields; this %s field is "
                     "not repeated",
                     field_ctx(msg, f), proto_type_name(f->proto));
        else if (f->is_map)
            sg_error(m,
                     "%s(shoal.max_count) does not apply to maps: a message with a map "
                     "is always encoded",
                     field_ctx(msg, f));
        else if (v == 0)
            sg_error(m, "%s(shoal.max_count) must be at least 1", field_ctx(msg, f));
        else
            f->max_count = (uint32_t)v;
    }
}

static bool is_synthetic_oneof(const sg_message_proto *mp, int index)
{
    for (size_t i = 0; i < mp->n_field; i++)
        if (mp->field[i]->has_oneof_index && mp->field[i]->oneof_index == index &&
            mp->field[i]->has_proto3_optional && mp->field[i]->proto3_optional)
            return true;
    return false;
}

static const char *c_member(const char *name)
{
    return sg_is_keyword(name) ? sg_printf("%s_", name) : name;
}

/* Fills in one schema field (and returns whether it needs a has_ flag). */
static void make_field(sg_model *m, sg_message *msg, sg_field *f,
                       const sg_field_proto *fp, const int *oneof_map)
{
    f->proto = fp;
    f->name = fp->name;
    f->c_name = c_member(fp->name);
    f->number = (uint32_t)fp->number;
    f->proto_type = fp->type;
    f->kind = kind_of(fp->type);
    f->repeated = fp->label == L(REPEATED);
    f->proto3_optional = fp->has_proto3_optional && fp->proto3_optional;
    f->oneof = fp->has_oneof_index ? oneof_map[fp->oneof_index] : -1;
    f->default_value = fp->default_value;
    if (fp->type == T(GROUP)) {
        sg_error(m, "%sgroups are not supported", field_ctx(msg, f));
        msg->failed = true;
        return;
    }
    if (fp->type == T(MESSAGE)) {
        f->msg = find_message(m, fp->type_name);
        f->is_map = f->msg && f->msg->is_map_entry && f->repeated;
    } else if (fp->type == T(ENUM)) {
        f->enm = find_enum(m, fp->type_name);
    }
    if ((fp->type == T(MESSAGE) && !f->msg) || (fp->type == T(ENUM) && !f->enm)) {
        sg_error(m, "%sunknown type %s", field_ctx(msg, f), fp->type_name);
        msg->failed = true;
    }
    bool scalarish = fp->type != T(MESSAGE) && !f->repeated && f->oneof < 0;
    f->presence = scalarish && (f->proto3_optional ||
                                (!msg->file->proto3 && fp->label == L(OPTIONAL)));
}

static void add_member(sg_message *msg, size_t *cap, sg_field *f)
{
    msg->fields = sg_grow(msg->fields, sizeof(*msg->fields), cap, msg->nfields + 1);
    msg->fields[msg->nfields++] = *f;
}

static void build_fields(sg_model *m, sg_message *msg)
{
    const sg_message_proto *mp = msg->proto;
    int *oneof_map = sg_alloc(sizeof(int) * (mp->n_oneof_decl + 1));
    msg->oneofs = sg_alloc(sizeof(*msg->oneofs) * (mp->n_oneof_decl + 1));
    for (size_t i = 0; i < mp->n_oneof_decl; i++) {
        oneof_map[i] = -1;
        if (is_synthetic_oneof(mp, (int)i))
            continue;
        sg_oneof *o = &msg->oneofs[msg->noneofs];
        o->name = mp->oneof_decl[i]->name;
        o->c_name = c_member(o->name);
        oneof_map[i] = (int)msg->noneofs++;
    }
    size_t cap = 0;
    for (size_t i = 0; i < mp->n_field; i++) {
        sg_field f = {0};
        make_field(m, msg, &f, mp->field[i], oneof_map);
        if (f.presence) {
            sg_field h = {0};
            h.name = sg_printf("has_%s", f.name);
            h.c_name = h.name;
            h.kind = SG_BOOL;
            h.is_has_flag = true;
            h.oneof = -1;
            add_member(msg, &cap, &h);
        }
        if (f.oneof >= 0) {
            sg_oneof *o = &msg->oneofs[f.oneof];
            if (!o->count)
                o->first = msg->nfields;
            o->count++;
        }
        add_member(msg, &cap, &f);
    }
    uint64_t v;
    const ProtobufCMessage *o = opts(mp->options);
    int fixed = sg_option_varint(o, SG_OPT_FIXED, &v) > 0 && v;
    int encoded = sg_option_varint(o, SG_OPT_ENCODED, &v) > 0 && v;
    if (fixed && encoded) {
        sg_error(m, "%s(shoal.fixed) and (shoal.encoded) are both set", msg_ctx(msg));
        msg->failed = true;
    }
    msg->mode = fixed ? SG_FIXED : encoded ? SG_ENCODED : SG_AUTO;
}

/* Two members of one C struct must not share a name (has_x, x_case, ...). */
static void check_member_names(sg_model *m, sg_message *msg)
{
    size_t n = msg->nfields + 2 * msg->noneofs;
    const char **names = sg_alloc(sizeof(*names) * (n + 1));
    size_t k = 0;
    for (size_t i = 0; i < msg->nfields; i++)
        if (msg->fields[i].oneof < 0)
            names[k++] = msg->fields[i].c_name;
    for (size_t i = 0; i < msg->noneofs; i++) {
        names[k++] = sg_printf("%s_case", msg->oneofs[i].name);
        names[k++] = msg->oneofs[i].c_name;
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++)
            if (!strcmp(names[i], names[j])) {
                sg_error(m,
                         "%sthe C struct would have two members named %s (a field "
                         "clashes with a generated has_ flag or oneof case)",
                         msg_ctx(msg), names[i]);
                msg->failed = true;
            }
}

/* ---- relevance: what the files being generated reach ---------------------------- */

static void mark_relevant(sg_message *msg, bool *seen, sg_model *m)
{
    size_t idx = 0;
    while (m->messages[idx] != msg)
        idx++;
    if (seen[idx])
        return;
    seen[idx] = true;
    for (size_t i = 0; i < msg->nfields; i++)
        if (msg->fields[i].msg)
            mark_relevant(msg->fields[i].msg, seen, m);
}

/* ---- fixed or encoded ------------------------------------------------------------ */

/* Why a message's own fields prevent a fixed layout, or NULL. With (shoal.fixed) set,
 * each such field is an error. */
static const char *own_reason(sg_model *m, sg_message *msg)
{
    const char *reason = NULL;
    if (msg->is_map_entry)
        return "it is a map entry";
    if (msg->mode == SG_ENCODED)
        return "(shoal.encoded) is set";
    for (size_t i = 0; i < msg->nfields; i++) {
        sg_field *f = &msg->fields[i];
        const char *r = NULL, *fix = NULL;
        if (f->is_has_flag)
            continue;
        if (f->is_map) {
            r = sg_printf("field %s is a map", f->name);
            fix = "a map cannot have a fixed layout";
        } else if ((f->kind == SG_STRING || f->kind == SG_BYTES) && !f->max_len) {
            r = sg_printf("field %s has no (shoal.max_len)", f->name);
            fix = sg_printf("a %s needs (shoal.max_len) for a fixed layout",
                            f->kind == SG_STRING ? "string" : "bytes field");
        } else if (f->repeated && !f->max_count) {
            r = sg_printf("field %s is repeated without (shoal.max_count)", f->name);
            fix = "a repeated field needs (shoal.max_count) for a fixed layout";
        }
        if (!r)
            continue;
        if (msg->mode == SG_FIXED) {
            sg_error(m, "%s%s, which (shoal.fixed) on the message requires",
                     field_ctx(msg, f), fix);
            msg->failed = true;
        } else if (!reason) {
            reason = r;
        }
    }
    return reason;
}

/* Spreads "encoded" to every message holding an encoded one. Returns whether anything
 * changed. Messages with (shoal.fixed) never become encoded: check_fixed reports
 * their fields once the spreading is done. */
static bool propagate(sg_model *m, const bool *relevant)
{
    bool changed = false;
    for (size_t i = 0; i < m->nmessages; i++) {
        sg_message *msg = m->messages[i];
        if (!relevant[i] || msg->encoded || msg->failed || msg->mode == SG_FIXED)
            continue;
        for (size_t j = 0; j < msg->nfields; j++) {
            sg_field *f = &msg->fields[j];
            if (!f->msg || (!f->msg->encoded && !f->msg->failed))
                continue;
            if (f->msg->failed) {
                msg->failed = true; /* already reported where it happened */
            } else {
                msg->encoded = true;
                msg->reason = sg_printf("field %s holds the encoded message %s", f->name,
                                        f->msg->full_name);
            }
            changed = true;
            break;
        }
    }
    return changed;
}

/* Reports every field of a (shoal.fixed) message that holds an encoded message (all
 * of them, beside the errors own_reason found). */
static void check_fixed(sg_model *m, const bool *relevant)
{
    for (size_t i = 0; i < m->nmessages; i++) {
        sg_message *msg = m->messages[i];
        if (!relevant[i] || msg->mode != SG_FIXED)
            continue;
        for (size_t j = 0; j < msg->nfields; j++) {
            sg_field *f = &msg->fields[j];
            if (!f->msg || f->is_map || (f->repeated && !f->max_count) ||
                !f->msg->encoded)
                continue; /* own_reason reported a map or an unbounded field */
            sg_error(m,
                     "%smessage %s is encoded (%s), so it cannot be part of the "
                     "fixed layout (shoal.fixed) requires",
                     field_ctx(msg, f), f->msg->full_name, f->msg->reason);
            msg->failed = true;
        }
    }
}

/* ---- layout ----------------------------------------------------------------------- */

const char *sg_elem_token(const sg_field *f)
{
    switch (f->kind) {
    case SG_ENUM:
        return sg_printf("enum(%s)", f->enm->full_name);
    case SG_STRING:
    case SG_BYTES:
        return sg_printf("%s[%u]", sg_kind_name(f->kind), f->max_len);
    case SG_MESSAGE:
        return sg_printf("%s#%016llx", f->msg->full_name,
                         (unsigned long long)f->msg->hash);
    default:
        return sg_kind_name(f->kind);
    }
}

static const char *member_token(const sg_field *f)
{
    const char *t = sg_elem_token(f);
    return f->repeated ? sg_printf("%s*%u", t, f->max_count) : t;
}

static void scalar_layout(sg_field *f)
{
    switch (f->kind) {
    case SG_INT8:
    case SG_UINT8:
    case SG_BOOL:
    case SG_CHAR:
        f->elem_size = f->elem_align = 1;
        break;
    case SG_INT16:
    case SG_UINT16:
        f->elem_size = f->elem_align = 2;
        break;
    case SG_INT32:
    case SG_UINT32:
    case SG_FLOAT:
    case SG_ENUM:
        f->elem_size = f->elem_align = 4;
        break;
    default:
        f->elem_size = f->elem_align = 8;
        break;
    }
}

/* Lays out one member (not its offset). Returns false if it is too large. */
static bool member_layout(sg_field *f)
{
    uint64_t elem;
    if (f->kind == SG_STRING || f->kind == SG_BYTES) {
        elem = round_up(4 + (uint64_t)f->max_len, 4);
        f->elem_align = 4;
    } else if (f->kind == SG_MESSAGE) {
        elem = f->msg->size;
        f->elem_align = f->msg->align;
    } else {
        scalar_layout(f);
        elem = f->elem_size;
    }
    if (elem > SG_MAX_SIZE)
        return false;
    f->elem_size = (uint32_t)elem;
    if (!f->repeated) {
        f->size = f->elem_size;
        f->align = f->elem_align;
        return true;
    }
    f->align = f->elem_align > 4 ? f->elem_align : 4;
    f->items_offset = (uint32_t)round_up(4, f->elem_align);
    uint64_t total =
        round_up(f->items_offset + (uint64_t)f->max_count * f->elem_size, f->align);
    if (total > SG_MAX_SIZE)
        return false;
    f->size = (uint32_t)total;
    return true;
}

struct cycle {
    const sg_message *msg[64];
    const sg_field *via[64];
    int n;
};

static bool layout_message(sg_model *m, sg_message *msg, struct cycle *path);

/* Lays out the messages msg's fields hold; false if one cannot be. */
static bool layout_children(sg_model *m, sg_message *msg, struct cycle *path)
{
    for (size_t i = 0; i < msg->nfields; i++) {
        sg_field *f = &msg->fields[i];
        if (!f->msg)
            continue;
        if (path->n < 64) {
            path->msg[path->n] = msg;
            path->via[path->n] = f;
        }
        path->n++;
        bool ok = layout_message(m, f->msg, path);
        path->n--;
        if (!ok)
            return false;
    }
    return true;
}

static void report_cycle(sg_model *m, sg_message *msg, struct cycle *path)
{
    sg_buf b = {0};
    int start = path->n < 64 ? path->n : 64;
    while (start > 0 && path->msg[start - 1] != msg)
        start--;
    if (start > 0)
        start--;
    for (int i = start; i < path->n && i < 64; i++)
        sg_buf_printf(&b, "%s.%s -> ", path->msg[i]->full_name, path->via[i]->name);
    sg_buf_puts(&b, msg->full_name);
    sg_error(m,
             "%srecursive message (%s): a fixed layout cannot contain itself; mark a "
             "message on the cycle (shoal.encoded), or make a field on it a repeated "
             "field without (shoal.max_count)",
             msg_ctx(msg), b.data);
    sg_buf_free(&b);
}

static void layout_oneof(sg_message *msg, sg_oneof *o, uint32_t *off, uint32_t *align,
                         sg_buf *canon)
{
    uint32_t ua = 1, us = 0;
    for (size_t i = o->first; i < o->first + o->count; i++) {
        sg_field *f = &msg->fields[i];
        if (f->align > ua)
            ua = f->align;
        if (f->size > us)
            us = f->size;
    }
    o->case_offset = round_up(*off, 4);
    o->union_offset = round_up(o->case_offset + 4, ua);
    o->union_align = ua;
    o->union_size = round_up(us, ua);
    o->size = o->union_offset + o->union_size - o->case_offset;
    *off = o->union_offset + o->union_size;
    if (ua > *align)
        *align = ua;
    if (4 > *align)
        *align = 4;
    sg_buf tok = {0};
    sg_buf_puts(&tok, "oneof(");
    for (size_t i = o->first; i < o->first + o->count; i++) {
        sg_field *f = &msg->fields[i];
        f->offset = o->union_offset;
        sg_buf_printf(&tok, "%u:%s:%s@%u+%u;", f->number, f->name, member_token(f),
                      o->union_offset - o->case_offset, f->size);
    }
    sg_buf_puts(&tok, ")");
    o->hash = sg_fnv1a(tok.data, tok.len);
    sg_buf_printf(canon, "0:%s:%s@%u+%u;", o->name, tok.data, o->case_offset, o->size);
    sg_buf_free(&tok);
}

/* Offsets, size, alignment and the canonical text of a message whose children are
 * laid out. */
static bool place_members(sg_model *m, sg_message *msg)
{
    uint32_t off = 0, align = 1;
    sg_buf canon = {0};
    sg_buf_printf(&canon, "%s{", msg->full_name);
    for (size_t i = 0; i < msg->nfields; i++) {
        sg_field *f = &msg->fields[i];
        if (!member_layout(f) || off > SG_MAX_SIZE) {
            sg_error(m, "%sfield %s is too large for a fixed layout", msg_ctx(msg),
                     f->name);
            sg_buf_free(&canon);
            return false;
        }
    }
    for (size_t i = 0; i < msg->nfields; i++) {
        sg_field *f = &msg->fields[i];
        if (f->oneof >= 0) {
            sg_oneof *o = &msg->oneofs[f->oneof];
            layout_oneof(msg, o, &off, &align, &canon);
            i = o->first + o->count - 1;
        } else {
            off = (uint32_t)round_up(off, f->align);
            f->offset = off;
            off += f->size;
            if (f->align > align)
                align = f->align;
            sg_buf_printf(&canon, "%u:%s:%s@%u+%u;", f->number, f->name, member_token(f),
                          f->offset, f->size);
        }
        if (off > SG_MAX_SIZE) {
            sg_error(m,
                     "%sfield %s makes it too large for a fixed layout (over %u bytes)",
                     msg_ctx(msg), f->name, SG_MAX_SIZE);
            sg_buf_free(&canon);
            return false;
        }
    }
    msg->align = align;
    msg->size = off ? round_up(off, align) : 1; /* C has no empty structs */
    sg_buf_printf(&canon, "}size=%u,align=%u", msg->size, msg->align);
    msg->canon = sg_strdup(canon.data);
    msg->hash = sg_fnv1a(canon.data, canon.len);
    sg_buf_free(&canon);
    return true;
}

static bool layout_message(sg_model *m, sg_message *msg, struct cycle *path)
{
    if (msg->visit == 2)
        return msg->laid_out;
    if (msg->visit == 1) {
        report_cycle(m, msg, path);
        return false;
    }
    if (msg->encoded || msg->failed) {
        msg->visit = 2;
        return false;
    }
    msg->visit = 1;
    bool ok = layout_children(m, msg, path) && place_members(m, msg);
    msg->visit = 2;
    msg->laid_out = ok;
    if (!ok)
        msg->failed = true;
    if (ok && strlen(msg->full_name) > 63) {
        sg_error(m, "%sthe full name is longer than the 63 bytes a segment header holds",
                 msg_ctx(msg));
        msg->failed = true;
        msg->laid_out = false;
    }
    return msg->laid_out;
}

/* ---- protoc-c's share ------------------------------------------------------------- */

static void mark_pbc(sg_message *msg)
{
    if (msg->needs_pbc)
        return;
    msg->needs_pbc = true;
    msg->file->needs_pbc = true;
    for (size_t i = 0; i < msg->nfields; i++) {
        if (msg->fields[i].msg)
            mark_pbc(msg->fields[i].msg);
        if (msg->fields[i].enm)
            msg->fields[i].enm->file->needs_pbc = true;
    }
}

static void mark_pbc_header(sg_file *f)
{
    if (f->needs_pbc_header)
        return;
    f->needs_pbc_header = true;
    for (size_t i = 0; i < f->ndeps; i++)
        mark_pbc_header(f->deps[i]);
}

static void plan_pbc(sg_model *m)
{
    for (size_t i = 0; i < m->nmessages; i++) {
        sg_message *msg = m->messages[i];
        if (msg->file->generate && msg->encoded) {
            msg->file->has_encoded = true;
            mark_pbc(msg);
        }
    }
    /* protoc-c's code for a file describes all of its messages, fixed ones too: the
     * messages and enums they use need their protoc-c code as well. */
    for (bool more = true; more;) {
        more = false;
        for (size_t i = 0; i < m->nmessages; i++) {
            sg_message *msg = m->messages[i];
            if (msg->file->needs_pbc && !msg->needs_pbc && !msg->is_map_entry) {
                mark_pbc(msg);
                more = true;
            }
        }
    }
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i]->needs_pbc)
            mark_pbc_header(m->files[i]);
}

/* ---- services ---------------------------------------------------------------------- */

static void build_services(sg_model *m, sg_file *f)
{
    const sg_file_proto *fp = f->proto;
    f->services = sg_alloc(sizeof(*f->services) * (fp->n_service + 1));
    for (size_t i = 0; i < fp->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *sp = fp->service[i];
        sg_service *s = &f->services[f->nservices++];
        s->name = sp->name;
        s->full_name = *f->package ? sg_printf("%s.%s", f->package, sp->name) : sp->name;
        s->c_name = sg_printf("%s%s", f->c_prefix, sp->name);
        s->methods = sg_alloc(sizeof(*s->methods) * (sp->n_method + 1));
        for (size_t j = 0; j < sp->n_method; j++) {
            const Google__Protobuf__MethodDescriptorProto *mp = sp->method[j];
            sg_method *me = &s->methods[s->nmethods++];
            me->name = mp->name;
            me->input = find_message(m, mp->input_type);
            me->output = find_message(m, mp->output_type);
            me->client_streaming = mp->has_client_streaming && mp->client_streaming;
            me->server_streaming = mp->has_server_streaming && mp->server_streaming;
        }
    }
}

/* ---- the whole model --------------------------------------------------------------- */

int sg_model_build(sg_model *m,
                   const Google__Protobuf__Compiler__CodeGeneratorRequest *req)
{
    for (size_t i = 0; i < req->n_proto_file; i++)
        add_file(m, req->proto_file[i], req);
    for (size_t i = 0; i < m->nmessages; i++)
        build_fields(m, m->messages[i]);
    for (size_t i = 0; i < m->nfiles; i++) {
        build_services(m, m->files[i]);
        for (size_t j = 0; j < m->files[i]->nmessages; j++)
            for (size_t k = 0; k < m->files[i]->messages[j]->nfields; k++)
                if (m->files[i]->messages[j]->fields[k].proto3_optional)
                    m->files[i]->has_proto3_optional = true;
    }

    bool *relevant = sg_alloc(sizeof(bool) * (m->nmessages + 1));
    for (size_t i = 0; i < m->nmessages; i++)
        if (m->messages[i]->file->generate)
            mark_relevant(m->messages[i], relevant, m);
    for (size_t i = 0; i < m->nmessages; i++) {
        sg_message *msg = m->messages[i];
        if (!relevant[i])
            continue;
        for (size_t j = 0; j < msg->nfields; j++)
            if (!msg->fields[j].is_has_flag)
                field_options(m, msg, &msg->fields[j]);
        check_member_names(m, msg);
        const char *r = own_reason(m, msg);
        if (r && !msg->failed) {
            msg->encoded = true;
            msg->reason = r;
        }
    }
    while (propagate(m, relevant))
        ;
    check_fixed(m, relevant);
    for (size_t i = 0; i < m->nmessages; i++) {
        struct cycle path = {.n = 0};
        if (relevant[i])
            layout_message(m, m->messages[i], &path);
    }
    plan_pbc(m);
    return m->nerrors ? -1 : 0;
}

void sg_model_free(sg_model *m)
{
    sg_buf_free(&m->errors);
}

sg_pb_info sg_pb_info_of(const sg_message *msg, size_t i)
{
    const sg_field *f = &msg->fields[i];
    sg_pb_info r = {0};
    r.repeated = f->repeated;
    if (f->repeated && f->kind != SG_STRING && f->kind != SG_BYTES &&
        f->kind != SG_MESSAGE) { /* by default in proto3, on request in proto2 */
        const Google__Protobuf__FieldOptions *o = f->proto->options;
        r.packed = o && o->has_packed ? o->packed : msg->file->proto3;
    }
    if (f->oneof >= 0) {
        r.oneof = true;
        r.has_offset = msg->oneofs[f->oneof].case_offset;
    } else if (i > 0 && msg->fields[i - 1].is_has_flag) {
        r.has = true;
        r.has_offset = msg->fields[i - 1].offset;
    }
    return r;
}

/* Puts msg into out after the fixed messages of the same file that it contains. */
static void order_visit(const sg_message *msg, const sg_message **out, size_t *n,
                        bool *done, const sg_file *file)
{
    size_t idx = 0;
    while (file->messages[idx] != msg)
        idx++;
    if (done[idx])
        return;
    done[idx] = true;
    for (size_t i = 0; i < msg->nfields; i++) {
        const sg_message *c = msg->fields[i].msg;
        if (c && c->file == file && !c->encoded)
            order_visit(c, out, n, done, file);
    }
    out[(*n)++] = msg;
}

const sg_message **sg_file_messages_ordered(const sg_file *file, size_t *n)
{
    const sg_message **out = sg_alloc(sizeof(*out) * (file->nmessages + 1));
    bool *done = sg_alloc(file->nmessages + 1);
    *n = 0;
    for (size_t i = 0; i < file->nmessages; i++)
        order_visit(file->messages[i], out, n, done, file);
    return out;
}
