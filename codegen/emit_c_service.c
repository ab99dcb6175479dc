/*
 * emit_c_service.c — the C emitter's part for services: typed client stubs and server
 * skeletons over shoal/rpc.h, in the same .shoal.h / .shoal.c as the messages.
 *
 * For `service Fleet { rpc Report(Sample) returns (Note); ... }` the header gets
 *
 *   Fleet_SERVICE, enum { Fleet_METHOD_Report, ..., Fleet_N_METHODS }, Fleet_methods[]
 *   (the shoal_rpc_method table as clients see it);
 *   Fleet_stub with Fleet_stub_open / Fleet_stub_close, and per method:
 *     unary            Fleet_Report(stub, &req, resp, opts, detail, cap) -> status
 *     streaming        Fleet_Watch_call with _start, _send / _close_send (client
 *                      streams), _next, _cancel, _finish -> status, _free;
 *   Fleet_handlers (one typed handler per method, plus a `blocking` mask), Fleet_server
 *   and Fleet_server_add(rpc_server, &server, &handlers, arg); inside a handler
 *   Fleet_X_ctx_next (client streams) and Fleet_X_ctx_send (every method).
 *
 * Fixed messages are read into a caller's struct (`Note *`); encoded ones come back as a
 * new protoc-c message (`Note **`, freed with Note_free), as their queues do.
 *
 * On the wire every message is its protobuf encoding (fixed: Foo_to_pb / Foo_from_pb's
 * encoder; encoded: protoc-c's pack / unpack), so any protobuf peer can speak to a
 * shoal service. The .shoal.c holds, per message a service of the file uses, a codec
 * (pack, unpack, release) and a check function that decodes and validates the private
 * copy the rpc layer hands it: a message that fails ends the call INVALID_ARGUMENT
 * before a handler or a caller sees it. The generic steps (pack and send, receive and
 * unpack, the one request of a unary handler) are a few static inline functions
 * written once per generated file (inline: a file need not use them all) and shared
 * by all its methods.
 *
 * Reflection: the .shoal.c of a file with services holds shoal_svc_descriptors_, the
 * google.protobuf.FileDescriptorSet of the file after every file it imports (the
 * FileDescriptorProtos protoc handed the plugin, without their source locations),
 * and Fleet_server_add registers it (shoal_rpc_server_add_descriptors) so the
 * server's reflection service can give it to `shoal call`.
 */
#include <stdio.h>
#include <string.h>

#include "emit.h"

/* ---- what a message type looks like in the API ------------------------------------ */

/* The pointer a reader fills: "Note *" (fixed) or "Note **" (encoded, a new message). */
static const char *out_type(const sg_message *msg)
{
    return sg_printf("%s *%s", msg->c_name, msg->encoded ? "*" : "");
}

/* The method's member in the handlers table: keywords get a trailing '_'. */
static const char *member(const sg_method *me)
{
    return sg_is_keyword(me->name) ? sg_printf("%s_", me->name) : me->name;
}

static bool is_streaming(const sg_method *me)
{
    return me->client_streaming || me->server_streaming;
}

static const char *kind_name(const sg_method *me)
{
    if (me->client_streaming && me->server_streaming)
        return "SHOAL_RPC_BIDI_STREAMING";
    if (me->client_streaming)
        return "SHOAL_RPC_CLIENT_STREAMING";
    if (me->server_streaming)
        return "SHOAL_RPC_SERVER_STREAMING";
    return "SHOAL_RPC_UNARY";
}

/* Whether the request is the call's only one, passed to the handler. */
static bool single_request(const sg_method *me)
{
    return !me->client_streaming;
}

/* ---- header ------------------------------------------------------------------------ */

static void header_client(sg_buf *b, const sg_service *s)
{
    const char *S = s->c_name;
    sg_buf_printf(
        b,
        "/* Client stub: a channel to a server of %s. %s_stub_open connects to\n"
        " * an address (shm://, ipc://, tcp://; cfg may be NULL); a stub may also\n"
        " * be made over an open channel ({channel}). Calls return the status\n"
        " * code (>= 0, SHOAL_RPC_OK on success) with the detail in detail[cap]\n"
        " * when not NULL, or a negative SHOAL_E* code for bad arguments (an\n"
        " * invalid request). */\n"
        "typedef struct %s_stub {\n    shoal_rpc_channel *channel;\n} %s_stub;\n"
        "int %s_stub_open(%s_stub *stub, const char *address,\n"
        "    const shoal_rpc_channel_config *cfg);\n"
        "void %s_stub_close(%s_stub *stub);\n\n",
        s->full_name, S, S, S, S, S, S, S);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        const char *M = sg_printf("%s_%s", S, me->name);
        const char *in = me->input->c_name;
        if (!is_streaming(me)) {
            sg_buf_printf(
                b,
                "/* rpc %s(%s) returns (%s) */\n"
                "int %s(%s_stub *stub, const %s *req, %sresp,\n"
                "    const shoal_rpc_options *opts, char *detail, size_t cap);\n\n",
                me->name, me->input->full_name, me->output->full_name, M, S, in,
                out_type(me->output));
            continue;
        }
        sg_buf_printf(b,
                      "/* rpc %s(%s%s) returns (%s%s): _start, %s_next (1 with a "
                      "response,\n * 0 at the end), _cancel, _finish (the status), "
                      "_free. */\n"
                      "typedef struct %s_call {\n    shoal_rpc_call *call;\n} %s_call;\n",
                      me->name, me->client_streaming ? "stream " : "",
                      me->input->full_name, me->server_streaming ? "stream " : "",
                      me->output->full_name,
                      me->client_streaming ? "_send, _close_send" : "", M, M);
        if (single_request(me))
            sg_buf_printf(b,
                          "int %s_start(%s_call *c, %s_stub *stub, const %s *req,\n"
                          "    const shoal_rpc_options *opts);\n",
                          M, M, S, in);
        else
            sg_buf_printf(b,
                          "int %s_start(%s_call *c, %s_stub *stub, "
                          "const shoal_rpc_options *opts);\n"
                          "int %s_send(%s_call *c, const %s *req);\n"
                          "int %s_close_send(%s_call *c);\n",
                          M, M, S, M, M, in, M, M);
        sg_buf_printf(b,
                      "int %s_next(%s_call *c, %sresp);\n"
                      "void %s_cancel(%s_call *c);\n"
                      "int %s_finish(%s_call *c, char *detail, size_t cap);\n"
                      "void %s_free(%s_call *c);\n\n",
                      M, M, out_type(me->output), M, M, M, M, M, M);
    }
}

static void header_server(sg_buf *b, const sg_service *s)
{
    const char *S = s->c_name;
    sg_buf_printf(
        b,
        "/* Server skeleton: one handler per method (NULL: UNIMPLEMENTED), each\n"
        " * returning the call's status code. Unary and server-streaming handlers\n"
        " * get their request decoded and validated; every handler sends its\n"
        " * response(s) with _ctx_send (once for unary and client streaming) and\n"
        " * client-streaming and bidi handlers read requests with _ctx_next.\n"
        " * blocking: bit %s_METHOD_X set runs unary handler X on a thread of its\n"
        " * own (it may block). */\n"
        "typedef struct %s_handlers {\n",
        S, S);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        if (single_request(me))
            sg_buf_printf(
                b, "    int (*%s)(shoal_rpc_ctx *ctx, const %s *req, void *arg);\n",
                member(me), me->input->c_name);
        else
            sg_buf_printf(b, "    int (*%s)(shoal_rpc_ctx *ctx, void *arg);\n",
                          member(me));
    }
    sg_buf_printf(
        b,
        "    unsigned long blocking;\n} %s_handlers;\n"
        "typedef struct %s_server {\n    %s_handlers handlers;\n    void *arg;\n"
        "    shoal_rpc_method methods[%s_N_METHODS];\n"
        "    shoal_rpc_service service;\n} %s_server;\n"
        "/* Fills *server (which must outlive rpc_server) with the handlers and\n"
        " * arg (passed to each) and adds it: shoal_rpc_server_add_service's\n"
        " * return. */\n"
        "int %s_server_add(shoal_rpc_server *rpc_server, %s_server *server,\n"
        "    const %s_handlers *handlers, void *arg);\n",
        S, S, S, S, S, S, S, S);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        const char *M = sg_printf("%s_%s", S, me->name);
        if (!single_request(me))
            sg_buf_printf(b, "int %s_ctx_next(shoal_rpc_ctx *ctx, %sreq);\n", M,
                          out_type(me->input));
        sg_buf_printf(b, "int %s_ctx_send(shoal_rpc_ctx *ctx, const %s *resp);\n", M,
                      me->output->c_name);
    }
    sg_buf_puts(b, "\n");
}

void sg_emit_c_services_header(sg_buf *b, const sg_file *file)
{
    for (size_t i = 0; i < file->nservices; i++) {
        const sg_service *s = &file->services[i];
        sg_buf_printf(b, "/* ---- service %s ---- */\n#define %s_SERVICE \"%s\"\nenum {",
                      s->full_name, s->name, s->full_name);
        for (size_t j = 0; j < s->nmethods; j++)
            sg_buf_printf(b, " %s_METHOD_%s = %zu,", s->c_name, s->methods[j].name, j);
        sg_buf_printf(b,
                      " %s_N_METHODS = %zu };\n"
                      "extern const shoal_rpc_method %s_methods[%s_N_METHODS];\n\n",
                      s->c_name, s->nmethods, s->c_name, s->c_name);
        header_client(b, s);
        header_server(b, s);
    }
}

/* ---- source: codecs ---------------------------------------------------------------- */

/* Whether msg is the input or output of a method before method j of service i. */
static bool seen(const sg_file *file, size_t i, size_t j, const sg_message *msg)
{
    for (size_t si = 0; si <= i; si++) {
        const sg_service *s = &file->services[si];
        for (size_t mj = 0; mj < (si == i ? j : s->nmethods); mj++)
            if (s->methods[mj].input == msg || s->methods[mj].output == msg)
                return true;
    }
    return false;
}

static void codec(sg_buf *b, const sg_message *msg)
{
    const char *T = msg->c_name;
    if (msg->encoded)
        sg_buf_printf(
            b,
            "static int %s_svc_pack_(const void *m, void **buf, size_t *len)\n{\n"
            "    int rc = %s_validate((const %s *)m);\n"
            "    return rc ? rc : shoal_svc_pbc_pack_(&((const %s *)m)->base, "
            "buf, len);\n}\n"
            "static int %s_svc_unpack_(void *out, const void *buf, size_t len)\n{\n"
            "    %s **m = (%s **)out;\n    int rc;\n"
            "    *m = (%s *)protobuf_c_message_unpack(&%s__descriptor, NULL, len,\n"
            "        (const uint8_t *)buf);\n"
            "    if (!*m)\n        return SHOAL_EINVALID_DATA;\n"
            "    if ((rc = %s_validate(*m)) != 0) {\n"
            "        %s_free(*m);\n        *m = NULL;\n    }\n    return rc;\n}\n"
            "static void %s_svc_release_(void *out)\n{\n"
            "    %s_free(*(%s **)out);\n}\n"
            "static const shoal_svc_codec_ %s_svc_ = {%s_svc_pack_, "
            "%s_svc_unpack_,\n    %s_svc_release_, sizeof(%s *)};\n",
            T, T, T, T, T, T, T, T, sg_pbc_lower(msg->full_name), T, T, T, T, T, T, T, T,
            T, T);
    else
        sg_buf_printf(
            b,
            "static int %s_svc_pack_(const void *m, void **buf, size_t *len)\n{\n"
            "    int rc = %s_validate((const %s *)m);\n"
            "    return rc ? rc : shoal_svc_pb_pack_(&%s_pb, m, buf, len);\n}\n"
            "static int %s_svc_unpack_(void *out, const void *buf, size_t len)\n{\n"
            "    return %s_from_pb((%s *)out, buf, len);\n}\n"
            "static const shoal_svc_codec_ %s_svc_ = {%s_svc_pack_, "
            "%s_svc_unpack_,\n    shoal_svc_keep_, sizeof(%s)};\n",
            T, T, T, T, T, T, T, T, T, T, T);
    sg_buf_printf(b,
                  "static int %s_svc_check_(const void *buf, size_t len)\n{\n"
                  "    return shoal_svc_check_(&%s_svc_, buf, len);\n}\n\n",
                  T, T);
}

/* The generic steps, once per file. */
static void generic_steps(sg_buf *b, bool fixed, bool encoded)
{
    sg_buf_puts(
        b, "#include <stdio.h>\n#include <stdlib.h>\n\n"
           "/* How one message type travels: pack validates and encodes into a new\n"
           " * buffer; unpack decodes and validates into *out (a struct, or a pointer\n"
           " * to a new protoc-c message); release frees what unpack made. */\n"
           "typedef struct shoal_svc_codec_ {\n"
           "    int (*pack)(const void *m, void **buf, size_t *len);\n"
           "    int (*unpack)(void *out, const void *buf, size_t len);\n"
           "    void (*release)(void *out);\n"
           "    size_t out_size;\n} shoal_svc_codec_;\n\n");
    if (fixed)
        sg_buf_puts(
            b, "static inline void shoal_svc_keep_(void *out)\n{\n    (void)out;\n}\n\n"
               "static inline int shoal_svc_pb_pack_(const shoal_pb_message *d, const "
               "void *m,\n"
               "                              void **buf, size_t *len)\n{\n"
               "    unsigned char probe[1];\n    size_t need = 0;\n    int rc;\n"
               "    shoal_pb_encode(d, m, probe, 0, &need);\n"
               "    if (!(*buf = malloc(need ? need : 1)))\n"
               "        return SHOAL_ENOMEM;\n"
               "    if ((rc = shoal_pb_encode(d, m, *buf, need, len)) != 0) {\n"
               "        free(*buf);\n        *buf = NULL;\n    }\n    return rc;\n}\n\n");
    if (encoded)
        sg_buf_puts(
            b, "static inline int shoal_svc_pbc_pack_(const ProtobufCMessage *m, void "
               "**buf,\n"
               "                               size_t *len)\n{\n"
               "    *len = protobuf_c_message_get_packed_size(m);\n"
               "    if (!(*buf = malloc(*len ? *len : 1)))\n"
               "        return SHOAL_ENOMEM;\n"
               "    protobuf_c_message_pack(m, (uint8_t *)*buf);\n    return 0;\n}\n\n");
    sg_buf_puts(
        b,
        "/* A method's check: the private copy decodes and validates. */\n"
        "static inline int shoal_svc_check_(const shoal_svc_codec_ *k, const void *buf, "
        "size_t "
        "len)\n{\n"
        "    void *out = malloc(k->out_size);\n    int rc;\n"
        "    if (!out)\n        return -1;\n"
        "    if ((rc = k->unpack(out, buf, len)) == 0)\n        k->release(out);\n"
        "    free(out);\n    return rc;\n}\n\n"
        "/* Packs m and sends it on call c (client) or ctx (handler). */\n"
        "static inline int shoal_svc_send_(shoal_rpc_call *c, shoal_rpc_ctx *ctx,\n"
        "                           const shoal_svc_codec_ *k, const void *m)\n{\n"
        "    void *buf;\n    size_t len;\n    int rc = k->pack(m, &buf, &len);\n"
        "    if (rc)\n        return rc;\n"
        "    rc = c ? shoal_rpc_call_send(c, buf, len) : shoal_rpc_ctx_send(ctx, buf, "
        "len);\n"
        "    free(buf);\n    return rc;\n}\n\n"
        "/* Receives the next message of c (client) or ctx (handler) into out: 1, 0 at\n"
        " * the end, or a negative SHOAL_E* code. */\n"
        "static inline int shoal_svc_next_(shoal_rpc_call *c, shoal_rpc_ctx *ctx,\n"
        "                           const shoal_svc_codec_ *k, void *out)\n{\n"
        "    void *buf;\n    size_t len;\n"
        "    int rc = c ? shoal_rpc_call_recv(c, &buf, &len) : shoal_rpc_ctx_recv(ctx, "
        "&buf, &len);\n"
        "    if (rc != 1)\n        return rc;\n"
        "    rc = k->unpack(out, buf, len);\n    free(buf);\n    return rc ? rc : "
        "1;\n}\n\n"
        "/* Starts a call, with its one request when req is not NULL. */\n"
        "static inline int shoal_svc_start_(shoal_rpc_call **out, shoal_rpc_channel "
        "*ch,\n"
        "                            const char *service, const shoal_rpc_method *m,\n"
        "                            const shoal_svc_codec_ *k, const void *req,\n"
        "                            const shoal_rpc_options *opts)\n{\n"
        "    void *buf;\n    size_t len;\n    int rc;\n"
        "    *out = NULL;\n"
        "    if (!req)\n        return shoal_rpc_call_start(out, ch, service, m, opts);\n"
        "    if ((rc = k->pack(req, &buf, &len)) != 0)\n        return rc;\n"
        "    rc = shoal_rpc_call_start_request(out, ch, service, m, buf, len, opts);\n"
        "    free(buf);\n    return rc;\n}\n\n"
        "static inline int shoal_svc_unary_(shoal_rpc_channel *ch, const char *service,\n"
        "                            const shoal_rpc_method *m, const shoal_svc_codec_ "
        "*qk,\n"
        "                            const void *req, const shoal_svc_codec_ *rk, void "
        "*resp,\n"
        "                            const shoal_rpc_options *opts, char *detail, size_t "
        "cap)\n{\n"
        "    void *buf, *out = NULL;\n    size_t len, out_len = 0;\n"
        "    int code = qk->pack(req, &buf, &len);\n"
        "    if (code)\n        return code;\n"
        "    code = shoal_rpc_unary(ch, service, m, buf, len, &out, &out_len, opts, "
        "detail, "
        "cap);\n"
        "    free(buf);\n"
        "    if (code == SHOAL_RPC_OK && rk->unpack(resp, out, out_len) != 0) {\n"
        "        code = SHOAL_RPC_INVALID_ARGUMENT;\n"
        "        if (detail && cap)\n"
        "            snprintf(detail, cap, \"%s\", shoal_errdetail());\n    }\n"
        "    free(out);\n    return code;\n}\n\n"
        "/* The one request of a unary or server-streaming call, for its handler. */\n"
        "static inline int shoal_svc_request_(shoal_rpc_ctx *ctx, const shoal_svc_codec_ "
        "*k, void "
        "*req)\n{\n"
        "    int rc = shoal_svc_next_(NULL, ctx, k, req);\n"
        "    if (rc == 1)\n        return SHOAL_RPC_OK;\n"
        "    if (rc == SHOAL_ECLOSED)\n        return SHOAL_RPC_CANCELLED;\n"
        "    shoal_rpc_ctx_set_detail(ctx, \"%s\", rc == 0 ? \"no request\" : "
        "shoal_errdetail());\n"
        "    return SHOAL_RPC_INVALID_ARGUMENT;\n}\n\n"
        "static inline int shoal_svc_unimplemented_(shoal_rpc_ctx *ctx, void *arg)\n{\n"
        "    (void)arg;\n"
        "    shoal_rpc_ctx_set_detail(ctx, \"%s: no handler\", "
        "shoal_rpc_ctx_method(ctx));\n"
        "    return SHOAL_RPC_UNIMPLEMENTED;\n}\n\n");
}

/* ---- source: one service ----------------------------------------------------------- */

static void source_client(sg_buf *b, const sg_service *s)
{
    const char *S = s->c_name;
    sg_buf_printf(
        b,
        "int %s_stub_open(%s_stub *stub, const char *address,\n"
        "    const shoal_rpc_channel_config *cfg)\n{\n"
        "    stub->channel = NULL;\n"
        "    return shoal_rpc_channel_open(&stub->channel, address, cfg);\n}\n\n"
        "void %s_stub_close(%s_stub *stub)\n{\n"
        "    shoal_rpc_channel_close(stub->channel);\n"
        "    stub->channel = NULL;\n}\n\n",
        S, S, S, S);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        const char *M = sg_printf("%s_%s", S, me->name);
        const char *in = me->input->c_name, *out = me->output->c_name;
        const char *m = sg_printf("&%s_methods[%s_METHOD_%s]", S, S, me->name);
        if (!is_streaming(me)) {
            sg_buf_printf(
                b,
                "int %s(%s_stub *stub, const %s *req, %sresp,\n"
                "    const shoal_rpc_options *opts, char *detail, size_t cap)\n{\n"
                "    return shoal_svc_unary_(stub->channel, %s_SERVICE, %s, "
                "&%s_svc_, req,\n        &%s_svc_, resp, opts, detail, cap);\n}\n\n",
                M, S, in, out_type(me->output), S, m, in, out);
            continue;
        }
        if (single_request(me))
            sg_buf_printf(
                b,
                "int %s_start(%s_call *c, %s_stub *stub, const %s *req,\n"
                "    const shoal_rpc_options *opts)\n{\n"
                "    return shoal_svc_start_(&c->call, stub->channel, %s_SERVICE, "
                "%s,\n        &%s_svc_, req, opts);\n}\n\n",
                M, M, S, in, S, m, in);
        else
            sg_buf_printf(
                b,
                "int %s_start(%s_call *c, %s_stub *stub, "
                "const shoal_rpc_options *opts)\n{\n"
                "    return shoal_svc_start_(&c->call, stub->channel, %s_SERVICE, "
                "%s,\n        &%s_svc_, NULL, opts);\n}\n\n"
                "int %s_send(%s_call *c, const %s *req)\n{\n"
                "    return shoal_svc_send_(c->call, NULL, &%s_svc_, req);\n}\n\n"
                "int %s_close_send(%s_call *c)\n{\n"
                "    return shoal_rpc_call_close_send(c->call);\n}\n\n",
                M, M, S, S, m, in, M, M, in, in, M, M);
        sg_buf_printf(b,
                      "int %s_next(%s_call *c, %sresp)\n{\n"
                      "    return shoal_svc_next_(c->call, NULL, &%s_svc_, resp);\n}\n\n"
                      "void %s_cancel(%s_call *c)\n{\n"
                      "    shoal_rpc_call_cancel(c->call);\n}\n\n"
                      "int %s_finish(%s_call *c, char *detail, size_t cap)\n{\n"
                      "    return shoal_rpc_call_finish(c->call, detail, cap);\n}\n\n"
                      "void %s_free(%s_call *c)\n{\n"
                      "    shoal_rpc_call_free(c->call);\n    c->call = NULL;\n}\n\n",
                      M, M, out_type(me->output), out, M, M, M, M, M, M);
    }
}

static void source_server(sg_buf *b, const sg_service *s)
{
    const char *S = s->c_name;
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        const char *M = sg_printf("%s_%s", S, me->name);
        const sg_message *in = me->input;
        if (single_request(me))
            sg_buf_printf(b,
                          "static int %s_serve_(shoal_rpc_ctx *ctx, void *arg)\n{\n"
                          "    const %s_server *s = (const %s_server *)arg;\n"
                          "    %s req%s;\n"
                          "    int code = shoal_svc_request_(ctx, &%s_svc_, &req);\n"
                          "    if (code != SHOAL_RPC_OK)\n        return code;\n"
                          "    code = s->handlers.%s(ctx, %sreq, s->arg);\n"
                          "    %s_svc_.release(&req);\n    return code;\n}\n\n",
                          M, S, S,
                          in->encoded ? sg_printf("%s *", in->c_name) : in->c_name,
                          in->encoded ? " = NULL" : "", in->c_name, member(me),
                          in->encoded ? "" : "&", in->c_name);
        else
            sg_buf_printf(b,
                          "static int %s_serve_(shoal_rpc_ctx *ctx, void *arg)\n{\n"
                          "    const %s_server *s = (const %s_server *)arg;\n"
                          "    return s->handlers.%s(ctx, s->arg);\n}\n\n"
                          "int %s_ctx_next(shoal_rpc_ctx *ctx, %sreq)\n{\n"
                          "    return shoal_svc_next_(NULL, ctx, &%s_svc_, req);\n}\n\n",
                          M, S, S, member(me), M, out_type(in), in->c_name);
        sg_buf_printf(b,
                      "int %s_ctx_send(shoal_rpc_ctx *ctx, const %s *resp)\n{\n"
                      "    return shoal_svc_send_(NULL, ctx, &%s_svc_, resp);\n}\n\n",
                      M, me->output->c_name, me->output->c_name);
    }
    sg_buf_printf(b, "const shoal_rpc_method %s_methods[%s_N_METHODS] = {\n", S, S);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        sg_buf_printf(b, "    {\"%s\", %s, %s_svc_check_, %s_svc_check_, NULL, 0},\n",
                      me->name, kind_name(me), me->input->c_name, me->output->c_name);
    }
    sg_buf_printf(
        b,
        "};\n\n"
        "int %s_server_add(shoal_rpc_server *rpc_server, %s_server *server,\n"
        "    const %s_handlers *handlers, void *arg)\n{\n"
        "    server->handlers = *handlers;\n    server->arg = arg;\n"
        "    for (int i = 0; i < %s_N_METHODS; i++) {\n"
        "        server->methods[i] = %s_methods[i];\n"
        "        server->methods[i].blocking = (int)((handlers->blocking >> i) & "
        "1);\n    }\n",
        S, S, S, S, S);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        sg_buf_printf(b,
                      "    server->methods[%s_METHOD_%s].handler =\n"
                      "        handlers->%s ? %s_%s_serve_ : shoal_svc_unimplemented_;\n",
                      S, me->name, member(me), S, me->name);
    }
    sg_buf_printf(
        b,
        "    server->service.name = %s_SERVICE;\n"
        "    server->service.methods = server->methods;\n"
        "    server->service.n_methods = %s_N_METHODS;\n"
        "    server->service.arg = server;\n"
        "    int rc = shoal_rpc_server_add_descriptors(rpc_server, "
        "shoal_svc_descriptors_,\n"
        "                                              sizeof(shoal_svc_descriptors_));\n"
        "    return rc < 0 ? rc : shoal_rpc_server_add_service(rpc_server, "
        "&server->service);\n"
        "}\n\n",
        S, S);
}

/* Appends f's FileDescriptorProto as a FileDescriptorSet.file entry to set, after
 * those of the files it imports (each once: done marks the files appended). */
typedef struct file_set {
    const sg_file **v;
    size_t n, cap;
} file_set;

static void descriptor_entries(sg_buf *set, const sg_file *f, file_set *done)
{
    for (size_t i = 0; i < done->n; i++)
        if (done->v[i] == f)
            return;
    done->v = sg_grow(done->v, sizeof(*done->v), &done->cap, done->n + 1);
    done->v[done->n++] = f;
    for (size_t i = 0; i < f->ndeps; i++)
        descriptor_entries(set, f->deps[i], done);
    sg_file_proto copy = *f->proto;
    copy.source_code_info = NULL;
    size_t n = google__protobuf__file_descriptor_proto__get_packed_size(&copy);
    uint8_t *bytes = sg_alloc(n ? n : 1);
    google__protobuf__file_descriptor_proto__pack(&copy, bytes);
    uint8_t hdr[11] = {0x0a};
    size_t h = 1;
    for (uint64_t v = n; h == 1 || v; v >>= 7)
        hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    sg_buf_add(set, hdr, h);
    sg_buf_add(set, bytes, n);
}

/* static const uint8_t shoal_svc_descriptors_[] = {...}; for the file's services. */
static void descriptors(sg_buf *b, const sg_file *file)
{
    sg_buf set = {0};
    file_set done = {0};
    descriptor_entries(&set, file, &done);
    sg_buf_puts(b,
                "/* google.protobuf.FileDescriptorSet of this file and its imports, for "
                "the\n * reflection service. */\n"
                "static const uint8_t shoal_svc_descriptors_[] = {");
    for (size_t i = 0; i < set.len; i++)
        sg_buf_printf(b, "%s0x%02x,", i % 16 ? " " : "\n    ",
                      (unsigned char)set.data[i]);
    sg_buf_puts(b, "\n};\n\n");
    sg_buf_free(&set);
}

void sg_emit_c_services_source(sg_buf *b, const sg_file *file)
{
    bool fixed = false, encoded = false;
    for (size_t i = 0; i < file->nservices; i++)
        for (size_t j = 0; j < file->services[i].nmethods; j++) {
            const sg_method *me = &file->services[i].methods[j];
            fixed |= !me->input->encoded || !me->output->encoded;
            encoded |= me->input->encoded || me->output->encoded;
        }
    if (!fixed && !encoded)
        return;
    sg_buf_puts(b, "/* ---- services ---- */\n");
    descriptors(b, file);
    generic_steps(b, fixed, encoded);
    for (size_t i = 0; i < file->nservices; i++)
        for (size_t j = 0; j < file->services[i].nmethods; j++) {
            const sg_method *me = &file->services[i].methods[j];
            if (!seen(file, i, j, me->input))
                codec(b, me->input);
            if (me->output != me->input && !seen(file, i, j, me->output))
                codec(b, me->output);
        }
    for (size_t i = 0; i < file->nservices; i++) {
        sg_buf_printf(b, "/* service %s */\n", file->services[i].full_name);
        source_client(b, &file->services[i]);
        source_server(b, &file->services[i]);
    }
}
