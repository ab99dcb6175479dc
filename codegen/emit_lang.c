/*
 * emit_lang.c — helpers shared by the binding-language emitters (see emit_lang.h).
 */
#include <stdarg.h>
#include <string.h>

#include "emit_lang.h"

void sg_line(sg_buf *b, int width, int ind, const char *fmt, ...)
{
    for (int i = 0; i < ind * width; i++)
        sg_buf_puts(b, " ");
    va_list ap;
    va_start(ap, fmt);
    sg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    sg_buf_puts(b, "\n");
}

bool sg_elem_needs_check(const sg_field *f)
{
    return f->kind == SG_STRING || f->kind == SG_BYTES || f->kind == SG_ENUM ||
           f->kind == SG_BOOL || f->kind == SG_MESSAGE;
}

bool sg_file_uses(const sg_file *file, const sg_file *dep)
{
    for (size_t i = 0; i < file->nmessages; i++) {
        const sg_message *msg = file->messages[i];
        if (msg->failed)
            continue;
        for (size_t j = 0; j < msg->nfields; j++) {
            const sg_field *f = &msg->fields[j];
            if ((f->msg && f->msg->file == dep) || (f->enm && f->enm->file == dep))
                return true;
        }
    }
    return false;
}

bool sg_check_import(sg_model *m, const sg_file *file, const sg_file *dep)
{
    if (!sg_file_uses(file, dep))
        return false;
    if (!dep->generate)
        sg_error(m,
                 "%s: it uses types of %s, which is not being generated: list %s among "
                 "the files to compile",
                 file->name, dep->name, dep->name);
    return true;
}

int32_t sg_enum_default(const sg_field *f)
{
    const sg_enum *e = f->enm;
    if (!e || !e->nvalues)
        return 0;
    for (size_t i = 0; f->default_value && i < e->nvalues; i++)
        if (!strcmp(e->values[i].name, f->default_value))
            return e->values[i].number;
    return e->values[0].number;
}

const char *sg_pb_entry_numbers(const sg_message *msg, size_t i)
{
    enum { REPEATED = 1, PACKED = 2, HAS = 4, ONEOF = 8 }; /* SHOAL_PB_* */
    const sg_field *f = &msg->fields[i];
    sg_pb_info pi = sg_pb_info_of(msg, i);
    unsigned flags = pi.oneof      ? ONEOF
                     : pi.has      ? HAS
                     : pi.packed   ? REPEATED | PACKED
                     : pi.repeated ? REPEATED
                                   : 0;
    return sg_printf("%u, %d, %u, %u, %u, %u, %u, %u, %u", f->number, f->proto_type,
                     flags, f->offset, pi.has_offset, f->elem_size, f->items_offset,
                     f->max_len, f->repeated ? f->max_count : 0);
}
