/*
 * rpc_reflect.c — the reflection service every server serves
 * (schemas/shoal/reflection.proto, service shoal.reflection.Reflection).
 *
 * List answers with the name and kind of every method of every service the server has
 * (its own included), read from the services' tables. Descriptors answers with a
 * google.protobuf.FileDescriptorSet: the sets generated code registered with
 * shoal_rpc_server_add_descriptors (each the serialized FileDescriptorProto of a
 * service's .proto file after those of the files it imports), concatenated with the
 * entries already sent dropped, so a file two services share appears once. A
 * FileDescriptorSet is a sequence of field-1 entries, so both answers are written
 * here with two wire-format primitives (a varint; a length-delimited field) and no
 * codec; a set is checked to be such a sequence when it is registered.
 *
 * The handlers are unary and run on the loop's thread; they read the server's tables
 * under its mutex and send after releasing it.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

/* ---- the wire format, the little of it needed here ----------------------------------
 */

typedef struct pbw {
    uint8_t *p;
    size_t len, cap;
    int failed;
} pbw;

static void put(pbw *w, const void *data, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->failed = 1;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, data, n);
    w->len += n;
}

static void put_varint(pbw *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(w, b, n);
}

/* A length-delimited field. */
static void put_bytes(pbw *w, unsigned field, const void *data, size_t n)
{
    put_varint(w, (uint64_t)field << 3 | 2);
    put_varint(w, n);
    put(w, data, n);
}

/* The next field-1 length-delimited entry of a FileDescriptorSet at *p (of n left):
 * 1 with *entry / *elen (the whole entry, tag included), 0 at the end, -1 when
 * malformed. */
static int next_entry(const uint8_t **p, size_t *n, const uint8_t **entry, size_t *elen)
{
    if (*n == 0)
        return 0;
    const uint8_t *q = *p, *end = *p + *n;
    if (*q++ != 0x0a)
        return -1;
    uint64_t len = 0;
    for (int shift = 0;; shift += 7) {
        if (q == end || shift > 63)
            return -1;
        len |= (uint64_t)(*q & 0x7f) << shift;
        if (!(*q++ & 0x80))
            break;
    }
    if (len > (uint64_t)(end - q))
        return -1;
    *entry = *p;
    *elen = (size_t)(q - *p) + (size_t)len;
    *p = q + len;
    *n = (size_t)(end - *p);
    return 1;
}

int rpc__descriptors_check(const void *set, size_t len)
{
    const uint8_t *p = set, *e;
    size_t n = len, el;
    int rc;
    while ((rc = next_entry(&p, &n, &e, &el)) == 1)
        ;
    return rc;
}

/* ---- the handlers ------------------------------------------------------------------ */

static int send_answer(shoal_rpc_ctx *ctx, pbw *w)
{
    if (w->failed) {
        free(w->p);
        shoal_rpc_ctx_set_detail(ctx, "reflection: out of memory");
        return SHOAL_RPC_RESOURCE_EXHAUSTED;
    }
    int rc = shoal_rpc_ctx_send(ctx, w->p ? w->p : (const void *)"", w->len);
    free(w->p);
    return rc == 0 ? SHOAL_RPC_OK : SHOAL_RPC_CANCELLED;
}

static void list_method(pbw *w, const char *svc, const shoal_rpc_method *m)
{
    pbw one = {0};
    size_t a = strlen(svc), b = strlen(m->name);
    char *name = malloc(a + b + 2);
    if (!name) {
        w->failed = 1;
        return;
    }
    memcpy(name, svc, a);
    name[a] = '/';
    memcpy(name + a + 1, m->name, b + 1);
    put_bytes(&one, 1, name, a + b + 1);
    if (m->kind) {
        put_varint(&one, 2 << 3);
        put_varint(&one, (uint64_t)m->kind);
    }
    free(name);
    w->failed |= one.failed;
    put_bytes(w, 1, one.p, one.len);
    free(one.p);
}

static void build_list(pbw *w, shoal_rpc_server *s)
{
    size_t n;
    const shoal_rpc_service *const *svcs = rpc__server_services(s, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_methods; j++)
            list_method(w, svcs[i]->name, &svcs[i]->methods[j]);
}

/* Whether entry e[el] is in w already. */
static int sent(const pbw *w, const uint8_t *e, size_t el)
{
    const uint8_t *p = w->p, *x;
    size_t n = w->len, xl;
    while (next_entry(&p, &n, &x, &xl) == 1)
        if (xl == el && memcmp(x, e, el) == 0)
            return 1;
    return 0;
}

static void build_descriptors(pbw *w, shoal_rpc_server *s)
{
    size_t n;
    const rpc_descriptors *d = rpc__server_descriptors(s, &n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = d[i].set, *e;
        size_t left = d[i].len, el;
        while (next_entry(&p, &left, &e, &el) == 1)
            if (!sent(w, e, el))
                put(w, e, el);
    }
}

/* A reflection method: takes the (empty) request, builds the answer from the
 * server's tables under its mutex, sends it after releasing it. */
static int answer(shoal_rpc_ctx *ctx, shoal_rpc_server *s,
                  void (*build)(pbw *w, shoal_rpc_server *s))
{
    pbw w = {0};
    void *req;
    size_t len;
    if (shoal_rpc_ctx_recv(ctx, &req, &len) == 1)
        free(req);
    rpc__server_lock(s);
    build(&w, s);
    rpc__server_unlock(s);
    return send_answer(ctx, &w);
}

static int h_list(shoal_rpc_ctx *ctx, void *arg)
{
    return answer(ctx, arg, build_list);
}

static int h_descriptors(shoal_rpc_ctx *ctx, void *arg)
{
    return answer(ctx, arg, build_descriptors);
}

const shoal_rpc_service *rpc__reflection_service(shoal_rpc_service *svc,
                                                 shoal_rpc_server *s)
{
    static const shoal_rpc_method methods[] = {
        {"List", SHOAL_RPC_UNARY, NULL, NULL, h_list, 0},
        {"Descriptors", SHOAL_RPC_UNARY, NULL, NULL, h_descriptors, 0},
    };
    *svc = (shoal_rpc_service){SHOAL_RPC_REFLECTION, methods, 2, s};
    return svc;
}
