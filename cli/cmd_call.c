/*
 * cmd_call.c — `shoal call`: call a method of a running service from the command line,
 * with requests and responses in protobuf text format, as grpcurl does for gRPC.
 *
 *   shoal call [options] ADDRESS package.Service/Method 'text-format request'
 *   shoal call [options] --list ADDRESS
 *
 * Every shoal server serves the reflection service (schemas/shoal/reflection.proto):
 * --list prints what its List method returns; a call first asks Descriptors for the
 * FileDescriptorSet of the server's generated services, finds the method's kind and
 * its request and response types in it, and writes it to a temporary file for protoc,
 * which turns text into binary (--encode) and back (--decode) with
 * --descriptor_set_in: protoc, already what compiles shoal schemas, is the only text
 * format codec needed. Unary and server-streaming methods take one request; client
 * streaming and bidirectional ones any number: the arguments after the method, or
 * with `-` the blocks of standard input separated by blank lines (--lines: one request
 * per line). Every request is encoded before the call starts (a typo fails before
 * anything is sent); they are then sent in order, each only when the call has room for
 * it, the responses there printed in between and while there is no room (a
 * bidirectional server that answers with many responses before it reads the next
 * request never waits for a reader while this side waits to send), the sending side
 * closed, and the remaining responses printed. Each response is printed as protoc decodes
 * it, one after another, separated by a blank line; protoc decodes the responses that
 * arrive together as one batch (see BATCH_TYPE), so a fast stream costs a few protoc
 * runs, not one each. A status other than OK is printed as "ERROR: CODE: detail" on
 * stderr, with exit code 1.
 *
 * What is read from the descriptors is walked in the wire format directly (a
 * FileDescriptorSet's files, their package, messages, services and methods), and the
 * batch type written the same way: the few fields needed do not justify a codec.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal/rpc.h>

#include "cli.h"

extern char **environ;

static const char *help =
    "usage: shoal call [options] ADDRESS package.Service/Method 'text-format "
    "request'...\n"
    "       shoal call [options] ADDRESS package.Service/Method - < requests\n"
    "       shoal call [options] --list ADDRESS\n\n"
    "Calls a method of the server at ADDRESS (shm://name, ipc:///path, tcp://host:port,\n"
    "tls+tcp://host:port) and prints the response(s) in protobuf text format; --list\n"
    "prints the methods the server serves. protoc turns text into binary and back, with\n"
    "the schemas the server's reflection service returns (generated services register\n"
    "theirs). Unary and server-streaming methods take one request (none: the empty\n"
    "message); client-streaming and bidirectional ones take any number, sent in order\n"
    "before the sending side closes: one argument each, or `-` to read them from\n"
    "standard input, separated by blank lines (a request may span several lines).\n"
    "Responses are printed one after another, separated by a blank line.\n\n"
    "Options:\n"
    "  --lines             with `-`: one request per line (blank lines are empty "
    "requests)\n"
    "  --token TOKEN       tcp:// (and tls+tcp://) token (default $SHOAL_TOKEN)\n"
    "  --ca FILE, --cert FILE, --key FILE, --server-name NAME\n"
    "                      tls+tcp://: the CA to check the server with, this client's\n"
    "                      certificate and key, the name the server's certificate has\n"
    "  --timeout SECONDS   deadline of the call (default 30)\n"
    "  --protoc PATH       the protoc to run (default $PROTOC or protoc)\n"
    "  --root DIR, --domain NAME   shm://: where the objects live\n\n"
    "Exit codes: 0 OK; 1 the call ended with another status (printed on stderr), no\n"
    "such server or method; 2 usage error; 3 protoc or system error.\n";

typedef struct call_opts {
    shoal_rpc_channel_config ch;
    shoal_attr attr;
    double timeout;
    const char *protoc;
    int list, lines;
    const char *args[2]; /* ADDRESS, then package.Service/Method */
    int nargs;
    char **reqs; /* the text-format requests (argv's, or split from stdin's "-") */
    int nreqs;
} call_opts;

/* ---- the wire format, read ----------------------------------------------------------
 */

typedef struct pb_field {
    unsigned num;
    uint64_t v;       /* varint value */
    const uint8_t *p; /* length-delimited: the bytes */
    size_t len;
} pb_field;

static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p == end)
            return -1;
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* The next field of msg at *p: 1, 0 at the end, -1 when malformed. Fixed-width fields
 * are skipped over but reported (with no value). */
static int pb_next(const uint8_t **p, const uint8_t *end, pb_field *f)
{
    uint64_t key;
    if (*p == end)
        return 0;
    if (pb_varint(p, end, &key) < 0)
        return -1;
    *f = (pb_field){.num = (unsigned)(key >> 3)};
    switch (key & 7) {
    case 0:
        return pb_varint(p, end, &f->v) < 0 ? -1 : 1;
    case 1:
    case 5: {
        size_t n = (key & 7) == 1 ? 8 : 4;
        if ((size_t)(end - *p) < n)
            return -1;
        *p += n;
        return 1;
    }
    case 2:
        if (pb_varint(p, end, &f->v) < 0 || f->v > (uint64_t)(end - *p))
            return -1;
        f->p = *p;
        f->len = (size_t)f->v;
        *p += f->len;
        return 1;
    default:
        return -1;
    }
}

/* A method, as the descriptors describe it. */
typedef struct method_info {
    char in[256], out[256]; /* "pkg.Req" (no leading dot) */
    int client_streaming, server_streaming;
    char out_file[256]; /* the file defining `out` ("" when not found: no batches) */
} method_info;

static void copy_name(char *dst, size_t cap, const pb_field *f)
{
    const uint8_t *p = f->p;
    size_t n = f->len;
    if (n && *p == '.') /* ".pkg.Req": fully qualified */
        p++, n--;
    snprintf(dst, cap, "%.*s", (int)n, (const char *)p);
}

static int field_is(const pb_field *f, const char *s, size_t n)
{
    return f->len == n && memcmp(f->p, s, n) == 0;
}

/* Looks for method `m` of service `svc` in service descriptor sd. 1 when found. */
static int find_in_service(const pb_field *sd, const char *svc, size_t svc_len,
                           const char *m, method_info *out)
{
    const uint8_t *p = sd->p, *end = sd->p + sd->len;
    pb_field f;
    int named = 0;
    while (pb_next(&p, end, &f) == 1) {
        if (f.num == 1 && f.p)
            named = field_is(&f, svc, svc_len);
        if (f.num != 2 || !f.p || !named)
            continue;
        const uint8_t *q = f.p, *qend = f.p + f.len;
        pb_field g;
        method_info mi = {0};
        int this = 0;
        while (pb_next(&q, qend, &g) == 1) {
            if (g.num == 1 && g.p)
                this = field_is(&g, m, strlen(m));
            else if (g.num == 2 && g.p)
                copy_name(mi.in, sizeof(mi.in), &g);
            else if (g.num == 3 && g.p)
                copy_name(mi.out, sizeof(mi.out), &g);
            else if (g.num == 5)
                mi.client_streaming = g.v != 0;
            else if (g.num == 6)
                mi.server_streaming = g.v != 0;
        }
        if (this) {
            *out = mi;
            return 1;
        }
    }
    return 0;
}

/* Finds "pkg.Service/Method" in a FileDescriptorSet. 1 when found. */
static int find_method(const uint8_t *set, size_t len, const char *full, method_info *out)
{
    const char *slash = strrchr(full, '/');
    const char *dot = memrchr(full, '.', (size_t)(slash - full));
    size_t pkg_len = dot ? (size_t)(dot - full) : 0;
    const char *svc = dot ? dot + 1 : full;
    const uint8_t *p = set, *end = set + len;
    pb_field file;
    while (pb_next(&p, end, &file) == 1) {
        if (file.num != 1 || !file.p)
            continue;
        const uint8_t *q = file.p, *qend = file.p + file.len;
        pb_field f;
        int pkg_ok = pkg_len == 0; /* a file without package */
        while (pb_next(&q, qend, &f) == 1) {
            if (f.num == 2 && f.p)
                pkg_ok = field_is(&f, full, pkg_len);
            else if (f.num == 6 && f.p && pkg_ok &&
                     find_in_service(&f, svc, (size_t)(slash - svc), slash + 1, out))
                return 1;
        }
    }
    return 0;
}

/* Whether file descriptor fd defines message `type` ("pkg.Msg", "pkg.Msg.Nested"). */
static int file_defines(const pb_field *fd, const char *type)
{
    const uint8_t *p = fd->p, *end = fd->p + fd->len;
    pb_field f;
    const char *rest = type; /* the name in the file's package */
    while (pb_next(&p, end, &f) == 1)
        if (f.num == 2 && f.p) {
            if (strncmp(type, (const char *)f.p, f.len) != 0 || type[f.len] != '.')
                return 0;
            rest = type + f.len + 1;
        }
    for (p = fd->p; pb_next(&p, end, &f) == 1;) {
        if (f.num != 4 || !f.p)
            continue;
        const uint8_t *q = f.p, *qend = f.p + f.len;
        pb_field g;
        while (pb_next(&q, qend, &g) == 1)
            if (g.num == 1 && g.p && strncmp(rest, (const char *)g.p, g.len) == 0 &&
                (rest[g.len] == 0 || rest[g.len] == '.'))
                return 1;
    }
    return 0;
}

/* The name of the file of the set that defines message `type`, into out[cap] ("" when
 * none does). */
static void find_file_of(const uint8_t *set, size_t len, const char *type, char *out,
                         size_t cap)
{
    const uint8_t *p = set, *end = set + len;
    pb_field file;
    out[0] = 0;
    while (pb_next(&p, end, &file) == 1) {
        if (file.num != 1 || !file.p || !file_defines(&file, type))
            continue;
        const uint8_t *q = file.p, *qend = file.p + file.len;
        pb_field f;
        while (pb_next(&q, qend, &f) == 1)
            if (f.num == 1 && f.p)
                snprintf(out, cap, "%.*s", (int)f.len, (const char *)f.p);
        return;
    }
}

/* ---- the wire format, written -------------------------------------------------------
 */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int failed;
} wbuf;

static void put_raw(wbuf *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_varint(wbuf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put_raw(b, tmp, n);
}

/* A length-delimited field. */
static void put_field(wbuf *b, unsigned num, const void *data, size_t n)
{
    put_varint(b, (uint64_t)num << 3 | 2);
    put_varint(b, n);
    put_raw(b, data, n);
}

static void put_str(wbuf *b, unsigned num, const char *s)
{
    put_field(b, num, s, strlen(s));
}

/*
 * Responses are decoded by protoc a batch at a time, as one message of a type added to
 * the server's descriptors: `shoal_call.Batch { repeated Out r = 1; }` in a file of its
 * own importing the file that defines Out. protoc prints each response as an "r {"
 * block, its fields indented by two spaces, which print_batch turns back into the
 * response's own text. The batch is the responses there when printing starts, so one
 * protoc run prints many of a fast stream instead of one each.
 */
#define BATCH_TYPE "shoal_call.Batch"

/* Appends the file of the batch type to the FileDescriptorSet in *b. */
static void add_batch_type(wbuf *b, const method_info *mi)
{
    wbuf field = {0}, msg = {0}, file = {0};
    char type_name[300];
    snprintf(type_name, sizeof(type_name), ".%s", mi->out);
    put_str(&field, 1, "r");                            /* name */
    put_varint(&field, 3 << 3), put_varint(&field, 1);  /* number */
    put_varint(&field, 4 << 3), put_varint(&field, 3);  /* label: repeated */
    put_varint(&field, 5 << 3), put_varint(&field, 11); /* type: message */
    put_str(&field, 6, type_name);
    put_str(&msg, 1, "Batch");
    put_field(&msg, 2, field.p, field.len);
    put_str(&file, 1, "shoal_call_batch.proto");
    put_str(&file, 2, "shoal_call");
    put_str(&file, 3, mi->out_file); /* dependency */
    put_field(&file, 4, msg.p, msg.len);
    if (field.failed || msg.failed || file.failed)
        b->failed = 1;
    else
        put_field(b, 1, file.p, file.len);
    free(field.p);
    free(msg.p);
    free(file.p);
}

/* ---- talking to the server --------------------------------------------------------- */

/* A unary call with an empty request to reflection's method `name`: the response, or
 * NULL after printing why. */
static void *reflect(shoal_rpc_channel *ch, const char *name, size_t *len,
                     const call_opts *o)
{
    shoal_rpc_method m = {name, SHOAL_RPC_UNARY, NULL, NULL, NULL, 0};
    shoal_rpc_options opts = {.timeout = (shoal_duration)(o->timeout * 1e9)};
    void *resp = NULL;
    char detail[SHOAL_RPC_DETAIL_MAX];
    int code = shoal_rpc_unary(ch, SHOAL_RPC_REFLECTION, &m, "", 0, &resp, len, &opts,
                               detail, sizeof(detail));
    if (code != SHOAL_RPC_OK) {
        fprintf(stderr, "shoal call: reflection %s: %s: %s\n", name,
                shoal_rpc_code_name(code), detail);
        return NULL;
    }
    return resp;
}

static int list(shoal_rpc_channel *ch, const call_opts *o)
{
    static const char *kinds[] = {"unary", "server streaming", "client streaming",
                                  "bidirectional streaming"};
    size_t len;
    uint8_t *resp = reflect(ch, "List", &len, o);
    if (!resp)
        return CLI_SYSTEM;
    const uint8_t *p = resp, *end = resp + len;
    pb_field f;
    while (pb_next(&p, end, &f) == 1) {
        if (f.num != 1 || !f.p)
            continue;
        const uint8_t *q = f.p, *qend = f.p + f.len;
        pb_field g;
        char name[512] = "";
        uint64_t kind = 0;
        while (pb_next(&q, qend, &g) == 1) {
            if (g.num == 1 && g.p)
                snprintf(name, sizeof(name), "%.*s", (int)g.len, (const char *)g.p);
            else if (g.num == 2)
                kind = g.v;
        }
        printf("%s (%s)\n", name, kind < 4 ? kinds[kind] : "?");
    }
    free(resp);
    return CLI_OK;
}

/* ---- protoc ------------------------------------------------------------------------ */

/* A temporary file holding data[len] (data NULL: empty); its path in path[cap]. */
static int temp_file(char *path, size_t cap, const void *data, size_t len)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, cap, "%s/shoal-call-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    close(fd);
    return 0;
}

/* Runs protoc --descriptor_set_in=set --MODE=type with stdin from in_path and stdout
 * to out_path (NULL: ours). Returns 0 when it succeeded. */
static int protoc(const call_opts *o, const char *set, const char *mode, const char *type,
                  const char *in_path, const char *out_path)
{
    char a1[300], a2[300];
    snprintf(a1, sizeof(a1), "--descriptor_set_in=%s", set);
    snprintf(a2, sizeof(a2), "--%s=%s", mode, type);
    char *argv[] = {(char *)o->protoc, a1, a2, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
    if (out_path)
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_TRUNC, 0);
    fflush(stdout);
    pid_t pid;
    int rc = posix_spawnp(&pid, o->protoc, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "shoal call: cannot run %s: %s\n", o->protoc, strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Reads a whole file into a new buffer. */
static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Decodes and prints one response. */
static int print_response(const call_opts *o, const char *set, const method_info *mi,
                          const void *msg, size_t len)
{
    char path[300];
    if (temp_file(path, sizeof(path), msg, len) < 0)
        return -1;
    int rc = protoc(o, set, "decode", mi->out, path, NULL);
    unlink(path);
    return rc;
}

/* ---- the call ---------------------------------------------------------------------- */

typedef struct encoded {
    void *p;
    size_t len;
} encoded;

/* Prints protoc's text of a batch (BATCH_TYPE): each "r {" block, un-indented, as one
 * response. */
static void print_batch(const char *text, size_t len, int *n)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        size_t l = (size_t)(eol - p);
        if (l == 3 && memcmp(p, "r {", 3) == 0) {
            if ((*n)++)
                printf("\n");
        } else if (!(l == 1 && *p == '}')) {
            size_t skip = l >= 2 && p[0] == ' ' && p[1] == ' ' ? 2 : 0;
            printf("%.*s\n", (int)(l - skip), p + skip);
        }
        p = nl ? nl + 1 : end;
    }
}

/* Decodes and prints the batch of responses in b (BATCH_TYPE's encoding). */
static int flush_batch(const call_opts *o, const char *set, wbuf *b, int *n)
{
    char in_path[300], out_path[300];
    int rc = -1;
    if (b->failed || temp_file(in_path, sizeof(in_path), b->p, b->len) < 0)
        return -1;
    if (temp_file(out_path, sizeof(out_path), NULL, 0) == 0) {
        size_t len;
        char *text = NULL;
        if (protoc(o, set, "decode", BATCH_TYPE, in_path, out_path) == 0 &&
            (text = slurp(out_path, &len))) {
            print_batch(text, len, n);
            rc = 0;
        }
        free(text);
        unlink(out_path);
    }
    unlink(in_path);
    b->len = 0;
    return rc;
}

/* At most this many responses, or bytes of them, are decoded by one protoc run; a
 * batch takes the responses that arrive while the previous one is at most GATHER
 * old (receiving them is what lets a fast server send the next ones). */
enum { BATCH_MAX = 4096, BATCH_BYTES = 4 << 20 };
#define GATHER SHOAL_MS(5)

/* Receives the next response of a batch holding k already into it (or prints it at
 * once when the response type's file is unknown): 1 when one was there (waiting for
 * the first only when `block`), 0 when none, 2 when the responses ended, -1 when
 * protoc failed. */
static int gather_one(shoal_rpc_call *c, const call_opts *o, const char *set,
                      const method_info *mi, wbuf *batch, int k, int block, int *n)
{
    if (k >= BATCH_MAX || batch->len >= BATCH_BYTES)
        return 0;
    if (!(block && k == 0) && shoal_rpc_call_wait(c, k ? GATHER : 0) != 1)
        return 0;
    void *msg;
    size_t len;
    if (shoal_rpc_call_recv(c, &msg, &len) != 1)
        return 2;
    int rc = 1;
    if (mi->out_file[0]) {
        put_field(batch, 1, msg, len);
    } else {
        if ((*n)++)
            printf("\n");
        rc = print_response(o, set, mi, msg, len) < 0 ? -1 : 1;
    }
    free(msg);
    return rc;
}

/* Receives and prints responses: all of them up to their end when `all`, else those
 * already there, a batch at a time (one at a time when the response type's file is
 * unknown). Returns 1 when the responses ended, 0 when not yet, -1 when protoc failed
 * to decode one; *n counts the responses printed. */
static int print_responses(shoal_rpc_call *c, const call_opts *o, const char *set,
                           const method_info *mi, int all, int *n)
{
    wbuf batch = {0};
    int rc;
    do {
        int k = 0;
        while ((rc = gather_one(c, o, set, mi, &batch, k, all, n)) == 1)
            k++;
        int full = k >= BATCH_MAX || batch.len >= BATCH_BYTES;
        if (rc >= 0 && batch.len && flush_batch(o, set, &batch, n) < 0)
            rc = -1;
        if (rc == 0 && !all && !full)
            break; /* the ones there are printed */
    } while (rc == 0);
    free(batch.p);
    return rc < 0 ? -1 : rc == 2;
}

/* How long the sending loop waits for a response at a time while the call has no room
 * for a request (the room the server frees arrives meanwhile). */
#define SEND_SLICE SHOAL_MS(1)

/* Sends the requests and closes the sending side, never waiting to send while
 * responses wait to be read: a bidirectional server may answer with many responses
 * before it reads further requests, and it waits for this side to read them, so a
 * request goes out only when the call has room for it (shoal_rpc_call_send_ready);
 * otherwise the responses there are printed, waiting a slice at a time. Returns 0, 1
 * when the responses ended early (the status tells why), -1 when a response did not
 * decode. */
static int send_requests(shoal_rpc_call *c, const call_opts *o, const char *set,
                         const method_info *mi, const encoded *req, int nreq, int *n)
{
    for (int i = 0; i < nreq;) {
        int rc = print_responses(c, o, set, mi, 0, n);
        if (rc != 0)
            return rc;
        if (!shoal_rpc_call_send_ready(c)) {
            shoal_rpc_call_wait(c, SEND_SLICE);
            continue;
        }
        if (shoal_rpc_call_send(c, req[i].p, req[i].len) < 0)
            return 1; /* the call is over: its status says why */
        i++;
    }
    shoal_rpc_call_close_send(c);
    return 0;
}

/* Sends the requests and prints the responses; returns the exit code. */
static int run_call(shoal_rpc_channel *ch, const call_opts *o, const char *set,
                    const method_info *mi, const encoded *req, int nreq)
{
    const char *full = o->args[1];
    const char *slash = strrchr(full, '/');
    char service[512];
    snprintf(service, sizeof(service), "%.*s", (int)(slash - full), full);
    shoal_rpc_method m = {
        slash + 1, (mi->server_streaming ? 1 : 0) | (mi->client_streaming ? 2 : 0),
        NULL,      NULL,
        NULL,      0};
    shoal_rpc_options opts = {.timeout = (shoal_duration)(o->timeout * 1e9)};
    shoal_rpc_call *c;
    int rc = mi->client_streaming ? shoal_rpc_call_start(&c, ch, service, &m, &opts)
                                  : shoal_rpc_call_start_request(
                                        &c, ch, service, &m, req[0].p, req[0].len, &opts);
    if (rc < 0)
        return cli_fail("call", rc);
    int n = 0, bad = 0;
    if (mi->client_streaming)
        bad = send_requests(c, o, set, mi, req, nreq, &n) < 0;
    if (!bad)
        bad = print_responses(c, o, set, mi, 1, &n) < 0;
    char detail[SHOAL_RPC_DETAIL_MAX];
    int code = bad ? -1 : shoal_rpc_call_finish(c, detail, sizeof(detail));
    shoal_rpc_call_free(c);
    if (bad) {
        fprintf(stderr, "shoal call: protoc could not decode a response as %s\n",
                mi->out);
        return CLI_SYSTEM;
    }
    if (code != SHOAL_RPC_OK) {
        fprintf(stderr, "ERROR: %s: %s\n", shoal_rpc_code_name(code), detail);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Encodes text as a message of type `type` with protoc into *out. Returns 0, or -1
 * (reported) when protoc refused it. */
static int encode(const call_opts *o, const char *set_path, const char *type,
                  const char *text, encoded *out)
{
    char in_path[300], out_path[300];
    int rc = -1;
    out->p = NULL;
    if (temp_file(in_path, sizeof(in_path), text, strlen(text)) < 0)
        return -1;
    if (temp_file(out_path, sizeof(out_path), NULL, 0) == 0) {
        if (protoc(o, set_path, "encode", type, in_path, out_path) == 0 &&
            (out->p = slurp(out_path, &out->len)))
            rc = 0;
        unlink(out_path);
    }
    unlink(in_path);
    if (rc < 0)
        fprintf(stderr, "shoal call: protoc could not encode the request as %s%s%s\n",
                type, o->nreqs > 1 ? ": " : "", o->nreqs > 1 ? text : "");
    return rc;
}

/* Encodes every request, then makes the call; returns the exit code. */
static int encode_and_call(shoal_rpc_channel *ch, const call_opts *o,
                           const char *set_path, const method_info *mi)
{
    if (!mi->client_streaming && o->nreqs > 1) {
        fprintf(stderr, "shoal call: %s takes one request, not %d\n", o->args[1],
                o->nreqs);
        return CLI_USAGE;
    }
    static char empty[] = "";
    char *none[] = {empty};
    char *const *texts = o->nreqs ? o->reqs : none;
    int n = o->nreqs ? o->nreqs : !mi->client_streaming;
    encoded *req = calloc((size_t)n + 1, sizeof(*req));
    int rc = req ? CLI_OK : CLI_SYSTEM;
    for (int i = 0; rc == CLI_OK && i < n; i++)
        if (encode(o, set_path, mi->in, texts[i], &req[i]) < 0)
            rc = CLI_SYSTEM;
    if (rc == CLI_OK)
        rc = run_call(ch, o, set_path, mi, req, n);
    for (int i = 0; req && i < n; i++)
        free(req[i].p);
    free(req);
    return rc;
}

/* Finds the method, encodes the requests with protoc and makes the call. */
static int call(shoal_rpc_channel *ch, const call_opts *o)
{
    const char *full = o->args[1];
    const char *slash = strrchr(full, '/');
    if (!slash || slash == full || !slash[1]) {
        fprintf(stderr, "shoal call: \"%s\": expected package.Service/Method\n", full);
        return CLI_USAGE;
    }
    size_t set_len;
    uint8_t *set = reflect(ch, "Descriptors", &set_len, o);
    if (!set)
        return CLI_SYSTEM;
    method_info mi;
    if (!find_method(set, set_len, full, &mi)) {
        fprintf(stderr,
                "shoal call: the server's descriptors have no method %s (services "
                "written by hand register none; see shoal call --list)\n",
                full);
        free(set);
        return CLI_FAIL;
    }
    find_file_of(set, set_len, mi.out, mi.out_file, sizeof(mi.out_file));
    wbuf full_set = {0};
    put_raw(&full_set, set, set_len);
    if (mi.out_file[0])
        add_batch_type(&full_set, &mi);
    if (full_set.failed)
        mi.out_file[0] = 0;
    char set_path[300];
    int rc = CLI_SYSTEM;
    if (temp_file(set_path, sizeof(set_path), full_set.failed ? set : full_set.p,
                  full_set.failed ? set_len : full_set.len) == 0) {
        rc = encode_and_call(ch, o, set_path, &mi);
        unlink(set_path);
    }
    free(full_set.p);
    free(set);
    return rc;
}

/* ---- the requests of standard input ------------------------------------------------ */

static int blank(const char *line, const char *end)
{
    for (; line < end; line++)
        if (*line != ' ' && *line != '\t' && *line != '\r')
            return 0;
    return 1;
}

/* Appends req to o->reqs (an array of its own, *cap long). Returns 0 or -1. */
static int add_request(call_opts *o, size_t *cap, char *req)
{
    if ((size_t)o->nreqs == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        char **r = realloc(o->reqs, ncap * sizeof(*r));
        if (!r)
            return -1;
        o->reqs = r;
        *cap = ncap;
    }
    o->reqs[o->nreqs++] = req;
    return 0;
}

/* Splits text (modified in place) into o's requests: its lines (--lines), or its
 * blocks of lines separated by blank lines. Returns 0 or -1 (no memory). */
static int split_requests(char *text, call_opts *o)
{
    size_t cap = 0;
    char *block = NULL;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        char *end = nl ? nl : line + strlen(line);
        char *next = nl ? nl + 1 : end;
        if (o->lines) {
            *end = '\0';
            if (add_request(o, &cap, line) < 0)
                return -1;
        } else if (blank(line, end)) {
            *line = '\0'; /* ends the block before this line */
            if (block && add_request(o, &cap, block) < 0)
                return -1;
            block = NULL;
        } else if (!block) {
            block = line;
        }
        line = next;
    }
    return block ? add_request(o, &cap, block) : 0;
}

/* Reads standard input's requests into o; *text receives the text (to free). */
static int read_stdin_requests(call_opts *o, char **text)
{
    size_t len;
    *text = slurp("/dev/stdin", &len);
    if (!*text)
        return -1;
    (*text)[len] = '\0'; /* slurp leaves room: its buffer grows when full */
    return split_requests(*text, o);
}

/* ---- the command line -------------------------------------------------------------- */

/* Reads the command line into *o. Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, call_opts *o)
{
    size_t cap = 0;
    *o = (call_opts){.timeout = 30,
                     .protoc = getenv("PROTOC") ? getenv("PROTOC") : "protoc"};
    o->ch.token = getenv("SHOAL_TOKEN");
    o->ch.connect_timeout = SHOAL_SEC(5);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **opt = strcmp(a, "--token") == 0         ? &o->ch.token
                           : strcmp(a, "--ca") == 0          ? &o->ch.tls_ca_file
                           : strcmp(a, "--cert") == 0        ? &o->ch.tls_cert_file
                           : strcmp(a, "--key") == 0         ? &o->ch.tls_key_file
                           : strcmp(a, "--server-name") == 0 ? &o->ch.tls_server_name
                           : strcmp(a, "--protoc") == 0      ? &o->protoc
                           : strcmp(a, "--root") == 0        ? &o->attr.root
                           : strcmp(a, "--domain") == 0      ? &o->attr.domain
                                                             : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (strcmp(a, "--list") == 0) {
            o->list = 1;
        } else if (strcmp(a, "--lines") == 0) {
            o->lines = 1;
        } else if ((opt || strcmp(a, "--timeout") == 0) && !v) {
            fprintf(stderr, "shoal call: %s needs a value\n", a);
            return CLI_USAGE;
        } else if (opt) {
            *opt = argv[++i];
        } else if (strcmp(a, "--timeout") == 0) {
            o->timeout = atof(argv[++i]);
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "shoal call: unknown option %s\n\n%s", a, help);
            return CLI_USAGE;
        } else if (o->nargs < 2) {
            o->args[o->nargs++] = a;
        } else if (add_request(o, &cap, argv[i]) < 0) {
            return CLI_SYSTEM;
        }
    }
    if (o->list ? o->nargs != 1 || o->nreqs : o->nargs < 2 || o->timeout <= 0) {
        fprintf(stderr, "%s", help);
        return CLI_USAGE;
    }
    o->ch.attr = &o->attr;
    return -1;
}

int cli_call(int argc, char **argv)
{
    call_opts o;
    char *text = NULL;
    int rc = parse(argc, argv, &o);
    if (rc < 0 && o.nreqs == 1 && strcmp(o.reqs[0], "-") == 0) {
        o.nreqs = 0;
        if (read_stdin_requests(&o, &text) < 0) {
            fprintf(stderr, "shoal call: cannot read the requests: %s\n",
                    strerror(errno));
            rc = CLI_SYSTEM;
        }
    }
    if (rc < 0) {
        shoal_rpc_channel *ch;
        if ((rc = shoal_rpc_channel_open(&ch, o.args[0], &o.ch)) < 0) {
            rc = cli_fail("call", rc);
        } else {
            rc = o.list ? list(ch, &o) : call(ch, &o);
            shoal_rpc_channel_close(ch);
        }
    }
    free(o.reqs);
    free(text);
    return rc;
}
