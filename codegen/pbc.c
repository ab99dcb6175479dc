/*
 * pbc.c — protoc-c's code for encoded messages.
 *
 * Encoded messages travel as protobuf bytes produced by the code protobuf-c's
 * generator writes. Rather than asking every build to run protoc twice (and to know
 * in advance which files need it), the plugin runs protoc-gen-c itself — it is a
 * protoc plugin too — on exactly the files that need it, and returns its files with
 * its own: the .pb-c.h of every such file and of everything they import (their
 * headers include one another), and the .pb-c.c of the files being generated, which
 * their .shoal.c includes. protoc-gen-c sees the files without their services: shoal
 * has its own, and protoc-c's service code does not compile as C++ for some method
 * names.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "emit.h"

typedef Google__Protobuf__Compiler__CodeGeneratorRequest request;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse response;

/* Finds protoc-gen-c: the parameter, else $PATH. */
static const char *find_generator(const sg_params *p)
{
    if (p->protoc_gen_c)
        return p->protoc_gen_c;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = sg_strdup(path);
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        char *cand = sg_printf("%s/protoc-gen-c", *dir ? dir : ".");
        if (access(cand, X_OK) == 0)
            return cand;
    }
    return NULL;
}

/* Runs prog with `in` on stdin; returns its stdout in *out. 0 or -1 (errno set). */
static int run_filter(const char *prog, const void *in, size_t in_len, sg_buf *out,
                      int *status)
{
    FILE *tmp = tmpfile(); /* stdin from a file: no pipe deadlock on large requests */
    if (!tmp)
        return -1;
    if (fwrite(in, 1, in_len, tmp) != in_len || fflush(tmp) || fseek(tmp, 0, SEEK_SET)) {
        fclose(tmp);
        return -1;
    }
    int pfd[2];
    if (pipe(pfd)) {
        fclose(tmp);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fclose(tmp);
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fileno(tmp), 0);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(prog, "protoc-gen-c", (char *)NULL);
        fprintf(stderr, "protoc-gen-shoal: cannot run %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    fclose(tmp);
    char chunk[65536];
    ssize_t n;
    while ((n = read(pfd[0], chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        sg_buf_add(out, chunk, (size_t)n);
    }
    close(pfd[0]);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

/* Keeps the headers of every file that needs them and the sources of the files
 * being generated. */
static bool wanted(const sg_model *m, const char *name)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        const sg_file *f = m->files[i];
        if (!f->needs_pbc_header)
            continue;
        if (!strcmp(name, sg_printf("%s.pb-c.h", f->base)))
            return true;
        if (f->needs_pbc && f->generate && !strcmp(name, sg_printf("%s.pb-c.c", f->base)))
            return true;
    }
    return false;
}

static int take_response(sg_model *m, const sg_buf *raw, sg_outputs *out)
{
    response *resp = google__protobuf__compiler__code_generator_response__unpack(
        NULL, raw->len, (const uint8_t *)(raw->data ? raw->data : ""));
    if (!resp) {
        sg_error(m, "protoc-gen-shoal: protoc-gen-c gave no valid response");
        return -1;
    }
    int rc = 0;
    if (resp->error) {
        sg_error(m, "protoc-gen-c (for encoded messages): %s", resp->error);
        rc = -1;
    }
    for (size_t i = 0; !rc && i < resp->n_file; i++) {
        const char *name = resp->file[i]->name;
        if (!name || !wanted(m, name))
            continue;
        sg_buf b = {0};
        sg_buf_puts(&b, resp->file[i]->content ? resp->file[i]->content : "");
        sg_output_add(out, name, &b);
    }
    google__protobuf__compiler__code_generator_response__free_unpacked(resp, NULL);
    return rc;
}

int sg_run_protoc_gen_c(sg_model *m, const request *req, const sg_params *p,
                        sg_outputs *out)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        n += m->files[i]->needs_pbc_header;
    if (!n)
        return 0;
    const char *gen = find_generator(p);
    if (!gen) {
        sg_error(m, "protoc-gen-shoal: encoded messages need protobuf-c's code generator "
                    "protoc-gen-c (Debian package protobuf-c-compiler), which is not on "
                    "PATH; pass protoc-gen-c=PATH in the parameters");
        return -1;
    }
    request sub = *req;
    sub.base.n_unknown_fields = 0;
    sub.base.unknown_fields = NULL;
    sub.parameter = NULL;
    sub.n_file_to_generate = 0;
    /* shoal does not use protoc-c's RPC code, whose members are named after the
     * methods (a method Export gives a member `export`, a C++ keyword): protoc-gen-c
     * sees the files without their services. */
    sub.proto_file = sg_alloc(sizeof(*sub.proto_file) * (req->n_proto_file + 1));
    for (size_t i = 0; i < req->n_proto_file; i++) {
        Google__Protobuf__FileDescriptorProto *fp = sg_alloc(sizeof(*fp));
        *fp = *req->proto_file[i];
        fp->n_service = 0;
        fp->service = NULL;
        sub.proto_file[i] = fp;
    }
    sub.file_to_generate = sg_alloc(sizeof(char *) * n);
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i]->needs_pbc_header)
            sub.file_to_generate[sub.n_file_to_generate++] = (char *)m->files[i]->name;
    size_t len =
        google__protobuf__compiler__code_generator_request__get_packed_size(&sub);
    uint8_t *buf = sg_alloc(len + 1);
    google__protobuf__compiler__code_generator_request__pack(&sub, buf);

    sg_buf raw = {0};
    int status = 0;
    if (run_filter(gen, buf, len, &raw, &status)) {
        sg_error(m, "protoc-gen-shoal: cannot run %s: %s", gen, strerror(errno));
        sg_buf_free(&raw);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        sg_error(m, "protoc-gen-shoal: %s failed (status %d)", gen, status);
        sg_buf_free(&raw);
        return -1;
    }
    int rc = take_response(m, &raw, out);
    sg_buf_free(&raw);
    return rc;
}
