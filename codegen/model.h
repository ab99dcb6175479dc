/*
 * model.h — the language-neutral model of a schema, built once from protoc's request
 * and shared by every emitter (emit_c.c, and later other languages).
 *
 * It resolves types across files, reads the shoal options, decides for each message
 * whether it has a fixed layout or is encoded, lays fixed messages out (offsets,
 * sizes, alignment: the rules of docs/schema.md, which are C's natural layout) and
 * computes each fixed message's canonical layout text and layout hash. Schema errors
 * are collected with the file, message and field they concern.
 */
#ifndef SHOAL_CODEGEN_MODEL_H
#define SHOAL_CODEGEN_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "google/protobuf/compiler/plugin.pb-c.h"
#include "util.h"

typedef Google__Protobuf__FileDescriptorProto sg_file_proto;
typedef Google__Protobuf__DescriptorProto sg_message_proto;
typedef Google__Protobuf__FieldDescriptorProto sg_field_proto;
typedef Google__Protobuf__EnumDescriptorProto sg_enum_proto;

typedef struct sg_file sg_file;
typedef struct sg_message sg_message;
typedef struct sg_enum sg_enum;

/* What an element of a field is (numbers as in shoal/type.h's shoal_field_kind). */
enum sg_kind {
    SG_INT8 = 1,
    SG_UINT8 = 2,
    SG_INT16 = 3,
    SG_UINT16 = 4,
    SG_INT32 = 5,
    SG_UINT32 = 6,
    SG_INT64 = 7,
    SG_UINT64 = 8,
    SG_FLOAT = 9,
    SG_DOUBLE = 10,
    SG_BOOL = 11,
    SG_CHAR = 12,
    SG_ENUM = 13,
    SG_STRING = 14,
    SG_BYTES = 15,
    SG_MESSAGE = 16,
    SG_UNION = 17
};

/* How a message is to be laid out. */
enum sg_mode { SG_AUTO = 0, SG_FIXED = 1, SG_ENCODED = 2 };

typedef struct sg_enum_value {
    const char *name;
    int32_t number;
} sg_enum_value;

struct sg_enum {
    const char *full_name; /* "orders.Side" */
    const char *c_name;    /* "Side", "Order_Side" (c_prefix + nested path) */
    sg_file *file;
    sg_enum_value *values;
    size_t nvalues;
};

/* A member of a message: a schema field, or a has_ flag the layout adds. */
typedef struct sg_field {
    const char *name;   /* as in the schema */
    const char *c_name; /* name as a C member (keyword-safe) */
    uint32_t number;    /* 0 for a has_ flag */
    int proto_type;     /* Google__Protobuf__FieldDescriptorProto__Type; 0 for has_ */
    enum sg_kind kind;  /* of one element */
    bool repeated;
    bool is_map;
    bool presence; /* proto2 optional / proto3 optional scalar: has a has_ flag */
    bool proto3_optional;
    bool is_has_flag;          /* this member is the has_ flag of the next one */
    int oneof;                 /* index in the message's oneofs, -1 if none */
    uint32_t max_len;          /* (shoal.max_len), 0 if unset */
    uint32_t max_count;        /* (shoal.max_count), 0 if unset */
    sg_message *msg;           /* SG_MESSAGE */
    sg_enum *enm;              /* SG_ENUM */
    const char *default_value; /* proto2 [default = ...], or NULL */
    /* layout, for fixed messages */
    uint32_t elem_size, elem_align; /* one element */
    uint32_t size, align;           /* the whole member (all elements, count word) */
    uint32_t items_offset;          /* repeated: where the elements start in the member */
    uint32_t offset;                /* in the message (oneof members: the union's) */
    const sg_field_proto *proto;
} sg_field;

typedef struct sg_oneof {
    const char *name;
    const char *c_name;
    size_t first, count; /* its members: fields[first .. first+count) */
    /* layout: a uint32 case word, then a union of the members */
    uint32_t case_offset, union_offset, union_size, union_align;
    uint32_t size; /* from the case word to the end of the union */
    uint64_t hash; /* of its canonical text (for descriptors) */
} sg_oneof;

struct sg_message {
    const char *full_name; /* "orders.Order" */
    const char *name;      /* "Order" */
    const char *c_name;    /* "Order", "Order_Leg", with the file's c_prefix */
    sg_file *file;
    sg_message *parent;
    sg_field *fields; /* schema order, has_ flags inserted before their field */
    size_t nfields;
    sg_oneof *oneofs; /* real oneofs only (not proto3 optional's synthetic ones) */
    size_t noneofs;
    enum sg_mode mode; /* requested by (shoal.fixed) / (shoal.encoded) */
    bool is_map_entry;
    /* results */
    bool encoded;
    const char *reason; /* why it is encoded ("field notes has no max_len") */
    bool laid_out;
    int visit;   /* layout recursion state: 0 new, 1 in progress, 2 done */
    bool failed; /* a schema error concerns it */
    uint32_t size, align;
    const char *canon; /* canonical layout text */
    uint64_t hash;     /* FNV-1a-64 of canon */
    bool needs_pbc;    /* protoc-c's code for it is compiled in (encoded or used by
                          an encoded message) */
    const sg_message_proto *proto;
};

typedef struct sg_method {
    const char *name;
    sg_message *input, *output;
    bool client_streaming, server_streaming;
} sg_method;

typedef struct sg_service {
    const char *full_name, *name;
    const char *c_name; /* "Fleet", with the file's c_prefix */
    sg_method *methods;
    size_t nmethods;
} sg_service;

struct sg_file {
    const char *name;    /* "orders/orders.proto" */
    const char *base;    /* "orders/orders" */
    const char *package; /* "" if none */
    bool proto3;
    bool generate; /* listed in file_to_generate */
    const char *c_prefix;
    sg_file **deps;
    size_t ndeps;
    sg_message **messages; /* every message of the file, nested ones included */
    size_t nmessages;
    sg_enum **enums;
    size_t nenums;
    sg_service *services;
    size_t nservices;
    bool has_encoded;      /* defines an encoded message */
    bool needs_pbc;        /* protoc-c's code for it is compiled in */
    bool needs_pbc_header; /* protoc-c's header is needed (a dependency of one that is) */
    bool has_proto3_optional;
    const sg_file_proto *proto;
};

typedef struct sg_model {
    sg_file **files; /* in protoc's order: every file after its imports */
    size_t nfiles;
    sg_message **messages;
    size_t nmessages;
    sg_enum **enums;
    size_t nenums;
    sg_buf errors; /* one line per schema error */
    int nerrors;
} sg_model;

/* Builds the model of every file in req. Returns 0, or -1 when there are schema
 * errors (see m->errors). */
int sg_model_build(sg_model *m,
                   const Google__Protobuf__Compiler__CodeGeneratorRequest *req);
void sg_model_free(sg_model *m);

/* Records a schema error. */
void sg_error(sg_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The canonical type token of a field element ("int32", "string[8]", ...). */
const char *sg_elem_token(const sg_field *f);
/* The shoal type name of a scalar kind ("int32", "float64", "bool", ...). */
const char *sg_kind_name(enum sg_kind k);

/* How field i (not a has_ flag) of a fixed message travels in protobuf's encoding,
 * for the emitters' tables (shoal/typed.h's shoal_pb_field). */
typedef struct sg_pb_info {
    bool repeated, packed; /* packed: repeated scalars written packed, as protoc does */
    bool has;              /* present when its has_ flag (at has_offset) is set */
    bool oneof;            /* present when the case word at has_offset holds its number */
    uint32_t has_offset;
} sg_pb_info;
sg_pb_info sg_pb_info_of(const sg_message *msg, size_t i);

/* The file's messages (arena array, *n of them), each after the fixed messages of the
 * same file that it contains, so that languages declaring types in order can. */
const sg_message **sg_file_messages_ordered(const sg_file *file, size_t *n);

/* ---- options.c ----------------------------------------------------------------------
 */

typedef struct ProtobufCMessage ProtobufCMessage;

/* Reads a varint-valued custom option (tag) from an options message's unknown
 * fields: returns 1 and sets *out if present (the last occurrence wins, as protobuf
 * merges scalars), 0 if absent, -1 if present with the wrong wire type. */
int sg_option_varint(const ProtobufCMessage *options, uint32_t tag, uint64_t *out);
/* Reads a string-valued custom option; returns 1 and sets *out (arena), 0, or -1. */
int sg_option_string(const ProtobufCMessage *options, uint32_t tag, const char **out);

/* Option numbers of schemas/shoal/options.proto. */
#define SG_OPT_MAX_LEN   50001
#define SG_OPT_MAX_COUNT 50002
#define SG_OPT_FIXED     50101
#define SG_OPT_ENCODED   50102
#define SG_OPT_C_PREFIX  50201

#endif
