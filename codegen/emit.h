/*
 * emit.h — what the driver (main.c) and the emitters share: the generator
 * parameters and the list of output files. One emitter per language (emit_c.c, ...)
 * turns the model into files; pbc.c adds protoc-c's code for encoded messages.
 */
#ifndef SHOAL_CODEGEN_EMIT_H
#define SHOAL_CODEGEN_EMIT_H

#include "model.h"

/* The SHOAL_GEN_ABI of runtime/include/shoal/typed.h the C emitter writes for: change
 * both together whenever generated code and the runtime's macros or helpers change
 * their contract. */
#define SG_GEN_ABI 3

/* Parameters from --shoal_out=k=v,k=v:outdir (or --shoal_opt). */
typedef struct sg_params {
    const char *lang;         /* "c" (default) */
    const char *protoc_gen_c; /* protobuf-c's plugin; NULL: found on PATH */
    bool verbose;             /* print each message's layout decision on stderr */
} sg_params;

typedef struct sg_output {
    const char *name; /* relative to the output directory */
    sg_buf content;
} sg_output;

typedef struct sg_outputs {
    sg_output *files;
    size_t n, cap;
} sg_outputs;

/* Adds an output file, taking over content. */
void sg_output_add(sg_outputs *o, const char *name, sg_buf *content);

/* The C emitter: <base>.shoal.h and <base>.shoal.c for every file to generate.
 * Returns 0, or -1 after recording errors in the model. */
int sg_emit_c(sg_model *m, const sg_params *p, sg_outputs *out);

/* The C emitter's services (emit_c_service.c): typed client stubs and server
 * skeletons for the file's services, in its header and in its source. */
void sg_emit_c_services_header(sg_buf *b, const sg_file *file);
void sg_emit_c_services_source(sg_buf *b, const sg_file *file);

/* The Python emitter: <base>_shoal.py (ctypes structures, enums, validation, layout
 * descriptors) for every file to generate. Returns 0, or -1 after recording errors. */
int sg_emit_python(sg_model *m, const sg_params *p, sg_outputs *out);

/* The Python emitter's services (emit_python_service.c): stubs, servicers and
 * add_XServicer_to_server at the end of the module; how the module names a message. */
void sg_emit_python_services(sg_buf *b, const sg_file *file);
const char *sg_py_msg_ref(const sg_file *from, const sg_message *m);

/* The Rust emitter: <base>_shoal.rs (#[repr(C)] structs for the shoal crate, with
 * compile-time layout assertions, descriptors and validation). Returns 0 or -1. */
int sg_emit_rust(sg_model *m, const sg_params *p, sg_outputs *out);

/* The Rust emitter's services (emit_rust_service.c): client structs, server traits
 * and their registration, at the end of the file's module. */
void sg_emit_rust_services(sg_buf *b, const sg_file *file);
/* The Rust type of message m as file `from`'s code names it (emit_rust.c): its
 * generated struct (#[repr(C)] for a fixed message, owned fields for an encoded one). */
const char *sg_rust_msg_type(const sg_file *from, const sg_message *m);

/* The Node.js emitter: <base>_shoal.js and <base>_shoal.d.ts (a class per fixed message
 * over a DataView of its bytes, for the shoal npm package). Returns 0 or -1. */
int sg_emit_node(sg_model *m, const sg_params *p, sg_outputs *out);

/* The Node.js emitter's services (emit_node_service.c): a client class per service at
 * the end of the .js, declared in the .d.ts, its name added to the exports. */
void sg_emit_node_services(sg_buf *js, sg_buf *ts, sg_buf *exports, const sg_file *file);
/* The class of message m as file `from`'s code names it (emit_node.c): its generated
 * class (over the C layout for a fixed message, of plain properties for an encoded
 * one). */
const char *sg_node_msg_class(const sg_file *from, const sg_message *m);

/*
 * Runs protobuf-c's code generator (protoc-gen-c) on the files whose encoded
 * messages need it, and adds its headers (and, for files being generated, its
 * sources) to the outputs. Returns 0, or -1 after recording an error in the model.
 */
int sg_run_protoc_gen_c(sg_model *m,
                        const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
                        const sg_params *p, sg_outputs *out);

#endif
