/*
 * main.c — protoc-gen-shoal, the shoal schema compiler: a protoc plugin.
 *
 * protoc runs it with a CodeGeneratorRequest on stdin (decoded with protobuf-c) and
 * expects a CodeGeneratorResponse on stdout. Schema errors travel in the response's
 * error field, which protoc prints before exiting non-zero; the plugin itself exits 0
 * unless it could not talk to protoc at all.
 *
 *   protoc --plugin=protoc-gen-shoal=PATH
 * --shoal_out=[lang=c,protoc-gen-c=PATH,verbose:]OUT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "emit.h"

#define FEATURE_PROTO3_OPTIONAL                                                          \
    GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL

typedef Google__Protobuf__Compiler__CodeGeneratorRequest request;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse response;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse__File response_file;

void sg_output_add(sg_outputs *o, const char *name, sg_buf *content)
{
    o->files = sg_grow(o->files, sizeof(*o->files), &o->cap, o->n + 1);
    o->files[o->n].name = sg_strdup(name);
    o->files[o->n].content = *content;
    *content = (sg_buf){0};
    o->n++;
}

static void outputs_free(sg_outputs *o)
{
    for (size_t i = 0; i < o->n; i++)
        sg_buf_free(&o->files[i].content);
}

static int read_all(FILE *in, sg_buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
        sg_buf_add(b, chunk, n);
    return ferror(in) ? -1 : 0;
}

/* Parses "lang=c,protoc-gen-c=/usr/bin/protoc-gen-c,verbose". */
static int parse_params(sg_model *m, const char *s, sg_params *p)
{
    p->lang = "c";
    if (!s)
        return 0;
    char *copy = sg_strdup(s);
    for (char *save = NULL, *kv = strtok_r(copy, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        const char *val = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        if (!strcmp(kv, "lang"))
            p->lang = val;
        else if (!strcmp(kv, "protoc-gen-c"))
            p->protoc_gen_c = *val ? val : NULL;
        else if (!strcmp(kv, "verbose"))
            p->verbose = true;
        else
            sg_error(m,
                     "protoc-gen-shoal: unknown parameter \"%s\" (known: lang=c, "
                     "protoc-gen-c=PATH, verbose)",
                     kv);
    }
    return m->nerrors ? -1 : 0;
}

/* One line per message of the generated files: fixed (and its layout) or encoded. */
static void print_summary(const sg_model *m)
{
    for (size_t i = 0; i < m->nmessages; i++) {
        const sg_message *msg = m->messages[i];
        if (!msg->file->generate || msg->is_map_entry || msg->failed)
            continue;
        if (msg->encoded)
            fprintf(stderr, "%s: encoded (%s)\n", msg->full_name, msg->reason);
        else
            fprintf(stderr, "%s: fixed, %u bytes, align %u, layout hash %016llx\n",
                    msg->full_name, msg->size, msg->align, (unsigned long long)msg->hash);
    }
}

/* One emitter per language, all over the same model. */
static const struct {
    const char *lang;
    int (*emit)(sg_model *m, const sg_params *p, sg_outputs *out);
    bool uses_protoc_c; /* its encoded messages use protoc-c's code */
} emitters[] = {
    {"c", sg_emit_c, true},
    {"python", sg_emit_python, false},
    {"rust", sg_emit_rust, false},
    {"node", sg_emit_node, false},
};

static int generate(const request *req, sg_model *m, sg_outputs *out)
{
    sg_params p = {0};
    if (parse_params(m, req->parameter, &p))
        return -1;
    if (sg_model_build(m, req))
        return -1;
    if (p.verbose)
        print_summary(m);
    for (size_t i = 0; i < sizeof(emitters) / sizeof(emitters[0]); i++) {
        if (strcmp(p.lang, emitters[i].lang) != 0)
            continue;
        if (emitters[i].emit(m, &p, out))
            return -1;
        return emitters[i].uses_protoc_c ? sg_run_protoc_gen_c(m, req, &p, out) : 0;
    }
    sg_error(m,
             "protoc-gen-shoal: language \"%s\" is not supported (known: c, python, "
             "rust, node)",
             p.lang);
    return -1;
}

static int write_response(const sg_model *m, const sg_outputs *out, int failed)
{
    response resp = GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
    resp.has_supported_features = 1;
    resp.supported_features = FEATURE_PROTO3_OPTIONAL;
    response_file *files = NULL, **ptrs = NULL;
    if (failed) {
        resp.error = m->errors.data ? m->errors.data : (char *)"protoc-gen-shoal failed";
        size_t n = resp.error ? strlen(resp.error) : 0;
        if (n && resp.error[n - 1] == '\n')
            resp.error[n - 1] = '\0'; /* protoc adds its own */
    } else {
        files = calloc(out->n + 1, sizeof(*files));
        ptrs = calloc(out->n + 1, sizeof(*ptrs));
        if (!files || !ptrs)
            return -1;
        for (size_t i = 0; i < out->n; i++) {
            google__protobuf__compiler__code_generator_response__file__init(&files[i]);
            files[i].name = (char *)out->files[i].name;
            files[i].content =
                out->files[i].content.data ? out->files[i].content.data : (char *)"";
            ptrs[i] = &files[i];
        }
        resp.n_file = out->n;
        resp.file = ptrs;
    }
    size_t len =
        google__protobuf__compiler__code_generator_response__get_packed_size(&resp);
    uint8_t *buf = malloc(len ? len : 1);
    int rc = -1;
    if (buf) {
        google__protobuf__compiler__code_generator_response__pack(&resp, buf);
        rc = fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -1;
    }
    free(buf);
    free(files);
    free(ptrs);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr,
                "%s is a protoc plugin; run it through protoc:\n"
                "  protoc --plugin=protoc-gen-shoal=%s --shoal_out=OUTDIR "
                "file.proto\n"
                "or use `shoal gen`.\n",
                argv[0], argv[0]);
        return strcmp(argv[1], "--help") ? 2 : 0;
    }
    sg_buf in = {0};
    if (read_all(stdin, &in)) {
        perror("protoc-gen-shoal: reading the request");
        return 1;
    }
    request *req = google__protobuf__compiler__code_generator_request__unpack(
        NULL, in.len, (const uint8_t *)(in.data ? in.data : ""));
    sg_buf_free(&in);
    if (!req) {
        fputs("protoc-gen-shoal: stdin is not a CodeGeneratorRequest (run me through "
              "protoc)\n",
              stderr);
        return 1;
    }
    sg_model m = {0};
    sg_outputs out = {0};
    int failed = generate(req, &m, &out) != 0;
    int rc = write_response(&m, &out, failed);
    outputs_free(&out);
    sg_model_free(&m);
    google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
    sg_free_all();
    if (rc)
        perror("protoc-gen-shoal: writing the response");
    return rc ? 1 : 0;
}
