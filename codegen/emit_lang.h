/*
 * emit_lang.h — what the emitters of the binding languages (emit_rust.c, emit_node.c)
 * share: indented output lines, the questions every validation walk asks, and the
 * checks of imported files.
 */
#ifndef SHOAL_CODEGEN_EMIT_LANG_H
#define SHOAL_CODEGEN_EMIT_LANG_H

#include "emit.h"

/* Appends one line: `ind` levels of `width` spaces, the formatted text, a newline. */
void sg_line(sg_buf *b, int width, int ind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Whether one element of f needs a validation check (strings and bytes: length; enums:
 * known value; bools: 0 or 1; nested messages: their own checks). */
bool sg_elem_needs_check(const sg_field *f);

/* Whether the messages of `file` use a type (message or enum) of `dep`. */
bool sg_file_uses(const sg_file *file, const sg_file *dep);

/* Records a schema error when `file` uses types of an import that is not being
 * generated (its module would be missing). Returns whether `file` uses `dep`. */
bool sg_check_import(sg_model *m, const sg_file *file, const sg_file *dep);

/* The number an enum field starts at: its proto2 [default = NAME], else the enum's
 * first value (0 in proto3). */
int32_t sg_enum_default(const sg_field *f);

/* The numbers of field i's entry in a message's protobuf table (shoal/typed.h's
 * shoal_pb_field, as emit_c.c writes it): "number, type, flags, offset, has_offset,
 * elem_size, items_offset, max_len, max_count". */
const char *sg_pb_entry_numbers(const sg_message *msg, size_t i);

#endif
