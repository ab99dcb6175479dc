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
 * with the wire-format primitives of pb_wire.h and no codec: one pass sizes the
 * answer, a second writes it; a set is checked to be such a sequence when it is
 * registered.
 *
 * The handlers are unary and run on the loop's thread; they read the server's tables
 * under its mutex and send after releasing it.
 */
#include <stdlib.h>
#include <string.h>

#include "pb_wire.h"
#include "rpc_internal.h"

/* The next field-1 length-delimited entry of a FileDescriptorSet: 1 with *entry /
 * *elen (the whole entry, tag included), 0 at the end, -1 when malformed. */
static int next_entry(pb_in *in, const uint8_t **entry, size_t *elen)
{
    if (in->p == in->end)
        return 0;
    const uint8_t *start = in->p, *data;
    uint64_t tag;
    size_t n;
    if (!pb_get_varint(in, &tag) || tag != ((1u << 3) | WT_LEN) ||
        !pb_get_len(in, &data, &n))
        return -1;
    *entry = start;
    *elen = (size_t)(in->p - start);
    return 1;
}

int rpc__descriptors_check(const void *set, size_t len)
{
    pb_in in = {set, (const uint8_t *)set + len};
    const uint8_t *e;
    size_t el;
    int rc;
    while ((rc = next_entry(&in, &e, &el)) == 1)
        ;
    return rc;
}

/* ---- the handlers ------------------------------------------------------------------ */

static void list_method(pb_out *o, const char *svc, const shoal_rpc_method *m)
{
    size_t a = strlen(svc), b = strlen(m->name);
    uint64_t kind = (uint64_t)m->kind;
    size_t kind_len = 0;
    if (kind) {
        pb_out k = {0};
        pb_put_varint(&k, kind);
        kind_len = 1 + k.len;
    }
    size_t name_len = a + 1 + b;
    pb_out one = {0}; /* the entry's size: name field, then kind field */
    pb_put_varint(&one, name_len);
    pb_put_tag(o, 1, WT_LEN);
    pb_put_varint(o, 1 + one.len + name_len + kind_len);
    pb_put_tag(o, 1, WT_LEN);
    pb_put_varint(o, name_len);
    pb_put(o, svc, a);
    pb_put(o, "/", 1);
    pb_put(o, m->name, b);
    if (kind) {
        pb_put_tag(o, 2, WT_VARINT);
        pb_put_varint(o, kind);
    }
}

static void build_list(pb_out *o, shoal_rpc_server *s)
{
    size_t n;
    const shoal_rpc_service *const *svcs = rpc__server_services(s, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_methods; j++)
            list_method(o, svcs[i]->name, &svcs[i]->methods[j]);
}

/* Whether entry e[el] of set d[i] occurs earlier: in a set before it or before it in
 * its own. */
static int seen(const rpc_descriptors *d, size_t i, const uint8_t *e, size_t el)
{
    for (size_t j = 0; j <= i; j++) {
        pb_in in = {d[j].set, (const uint8_t *)d[j].set + d[j].len};
        const uint8_t *x;
        size_t xl;
        while (next_entry(&in, &x, &xl) == 1 && x != e)
            if (xl == el && memcmp(x, e, el) == 0)
                return 1;
    }
    return 0;
}

static void build_descriptors(pb_out *o, shoal_rpc_server *s)
{
    size_t n;
    const rpc_descriptors *d = rpc__server_descriptors(s, &n);
    for (size_t i = 0; i < n; i++) {
        pb_in in = {d[i].set, (const uint8_t *)d[i].set + d[i].len};
        const uint8_t *e;
        size_t el;
        while (next_entry(&in, &e, &el) == 1)
            if (!seen(d, i, e, el))
                pb_put(o, e, el);
    }
}

/* A reflection method: takes the (empty) request, sizes and builds the answer from
 * the server's tables under its mutex, sends it after releasing it. */
static int answer(shoal_rpc_ctx *ctx, shoal_rpc_server *s,
                  void (*build)(pb_out *o, shoal_rpc_server *s))
{
    void *req;
    size_t len;
    if (shoal_rpc_ctx_recv(ctx, &req, &len) == 1)
        free(req);
    pb_out size = {0};
    rpc__server_lock(s);
    build(&size, s);
    pb_out o = {malloc(size.len ? size.len : 1), size.len, 0};
    if (o.p)
        build(&o, s);
    rpc__server_unlock(s);
    if (!o.p) {
        shoal_rpc_ctx_set_detail(ctx, "reflection: out of memory");
        return SHOAL_RPC_RESOURCE_EXHAUSTED;
    }
    int rc = shoal_rpc_ctx_send(ctx, o.p, o.len);
    free(o.p);
    return rc == 0 ? SHOAL_RPC_OK : SHOAL_RPC_CANCELLED;
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
