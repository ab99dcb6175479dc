/*
 * emit_rust_service.c — the Rust emitter's part for services: a client struct and a
 * server trait per service over the shoal crate's rpc module, at the end of the file's
 * <base>_shoal.rs.
 *
 * For `service Fleet { rpc Report(Sample) returns (Note); ... }` in package `demo`:
 *
 *   FLEET_SERVICE           "demo.Fleet";
 *   FleetClient             FleetClient::new(channel) (an Arc<Channel>, shared), one
 *                           method per rpc, snake_case: unary `report(&req, &opts) ->
 *                           Result<Vec<u8>, Status>`; server streaming `watch(&req,
 *                           &opts) -> Result<Call, Status>` (the Call iterates over the
 *                           responses); client and bidirectional streaming
 *                           `x(&opts) -> Result<Call, Status>` (send / close_send /
 *                           recv / cancel);
 *   FleetServer             a trait with one method per rpc whose default answers
 *                           UNIMPLEMENTED: unary `report(&self, ctx, req) -> Result<
 *                           Vec<u8>, Status>`; server streaming `(ctx, req) -> Result<(),
 *                           Status>` sending with ctx.send; client streaming `(ctx) ->
 *                           Result<Vec<u8>, Status>` reading with ctx.recv; bidi
 *                           `(ctx) -> Result<(), Status>`;
 *   fleet_service(imp)      the shoal::rpc::Service running an Arc<impl FleetServer>,
 *                           for Server::add_service.
 *
 * Requests and responses are the protobuf encodings of the messages, the bytes the
 * C and Python stubs put on the wire (the Rust emitter has no protobuf codec of its
 * own: a crate encodes them with the protobuf library of its choice), so fixed and
 * encoded messages are served alike and Rust peers mix with C and Python ones. The doc
 * comment of each method names its message types.
 */
#include <ctype.h>
#include <string.h>

#include "emit.h"

/* "GetFoo" -> "get_foo"; Rust keywords get the raw-identifier prefix. */
static const char *snake(const char *name)
{
    static const char *const kw[] = {
        "abstract", "as",    "async",  "await",  "become",  "box",   "break",    "const",
        "continue", "crate", "do",     "dyn",    "else",    "enum",  "extern",   "false",
        "final",    "fn",    "for",    "gen",    "if",      "impl",  "in",       "let",
        "loop",     "macro", "match",  "mod",    "move",    "mut",   "override", "priv",
        "pub",      "ref",   "return", "static", "struct",  "super", "trait",    "true",
        "try",      "type",  "typeof", "unsafe", "unsized", "use",   "virtual",  "where",
        "while",    "yield"};
    sg_buf b = {0};
    for (const char *p = name; *p; p++) {
        if (isupper((unsigned char)*p)) {
            if (p != name && p[-1] != '_' && !isupper((unsigned char)p[-1]))
                sg_buf_puts(&b, "_");
            sg_buf_printf(&b, "%c", tolower((unsigned char)*p));
        } else {
            sg_buf_printf(&b, "%c", *p);
        }
    }
    const char *s = sg_printf("%s", b.data ? b.data : "");
    sg_buf_free(&b);
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
        if (strcmp(s, kw[i]) == 0)
            return sg_printf("r#%s", s);
    return s;
}

/* "FLEET" of "Fleet" (the constant's prefix). */
static const char *upper(const char *snake_name)
{
    sg_buf b = {0};
    for (const char *p = snake_name; *p; p++)
        sg_buf_printf(&b, "%c", toupper((unsigned char)*p));
    const char *s = sg_printf("%s", b.data);
    sg_buf_free(&b);
    return s;
}

static const char *kind_name(const sg_method *me)
{
    if (me->client_streaming)
        return me->server_streaming ? "BidiStreaming" : "ClientStreaming";
    return me->server_streaming ? "ServerStreaming" : "Unary";
}

/* "rpc Report(Sample) returns (stream Note)" of a doc comment. */
static const char *signature(const sg_method *me)
{
    return sg_printf("`%s(%s%s) returns (%s%s)`", me->name,
                     me->client_streaming ? "stream " : "", me->input->full_name,
                     me->server_streaming ? "stream " : "", me->output->full_name);
}

static void emit_client(sg_buf *b, const sg_service *s, const char *konst)
{
    sg_buf_printf(
        b,
        "/// Client of service %s: one method per rpc. Messages are their\n"
        "/// protobuf encodings.\n"
        "#[derive(Clone)]\n"
        "pub struct %sClient {\n"
        "    channel: std::sync::Arc<shoal::rpc::Channel>,\n"
        "}\n\n"
        "#[allow(dead_code)]\n"
        "impl %sClient {\n"
        "    pub fn new(channel: std::sync::Arc<shoal::rpc::Channel>) -> Self {\n"
        "        %sClient { channel }\n"
        "    }\n",
        s->full_name, s->name, s->name, s->name);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        const char *fn = snake(me->name);
        if (strcmp(fn, "new") == 0) /* the constructor's name */
            fn = "new_";
        sg_buf_printf(b, "\n    /// %s.\n", signature(me));
        if (!me->client_streaming && !me->server_streaming)
            sg_buf_printf(
                b,
                "    pub fn %s(&self, request: &[u8], opts: &shoal::rpc::CallOptions)"
                " -> Result<Vec<u8>, shoal::rpc::Status> {\n"
                "        self.channel.unary(%s, \"%s\", request, opts)\n"
                "    }\n",
                fn, konst, me->name);
        else
            sg_buf_printf(
                b,
                "    pub fn %s(&self, %sopts: &shoal::rpc::CallOptions)"
                " -> Result<shoal::rpc::Call, shoal::rpc::Status> {\n"
                "        self.channel.start(%s, \"%s\", shoal::rpc::Kind::%s, %s,"
                " opts)\n"
                "    }\n",
                fn, me->client_streaming ? "" : "request: &[u8], ", konst, me->name,
                kind_name(me), me->client_streaming ? "None" : "Some(request)");
    }
    sg_buf_puts(b, "}\n\n");
}

/* The handler's parameters and result type, by kind. */
static void handler_sig(sg_buf *b, const sg_method *me)
{
    sg_buf_printf(b,
                  "&self, _ctx: &mut shoal::rpc::ServerCtx%s) -> Result<%s, "
                  "shoal::rpc::Status>",
                  me->client_streaming ? "" : ", _request: Vec<u8>",
                  me->server_streaming ? "()" : "Vec<u8>");
}

static void emit_server(sg_buf *b, const sg_service *s, const char *konst,
                        const char *fn_prefix)
{
    sg_buf_printf(
        b,
        "/// Server side of service %s: implement the methods (each not\n"
        "/// implemented answers UNIMPLEMENTED) and add `%s_service(imp)` to a\n"
        "/// server. Streaming handlers send with `ctx.send` and read requests\n"
        "/// with `ctx.recv`.\n"
        "pub trait %sServer: Send + Sync + 'static {\n",
        s->full_name, fn_prefix, s->name);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        sg_buf_printf(b, "    /// %s.\n    fn %s(", signature(me), snake(me->name));
        handler_sig(b, me);
        sg_buf_printf(
            b,
            " {\n"
            "        Err(shoal::rpc::Status::new(shoal::rpc::Code::Unimplemented,"
            " \"%s/%s: not implemented\"))\n"
            "    }\n",
            s->full_name, me->name);
    }
    sg_buf_printf(
        b,
        "}\n\n"
        "/// Service %s served by `imp`, for `shoal::rpc::Server::add_service`.\n"
        "#[allow(dead_code)]\n"
        "pub fn %s_service<T: %sServer>(imp: std::sync::Arc<T>)"
        " -> shoal::rpc::Service {\n"
        "    let svc = shoal::rpc::Service::new(%s);\n",
        s->full_name, fn_prefix, s->name, konst);
    static const char *const builder[2][2] = {{"unary", "server_streaming"},
                                              {"client_streaming", "bidi_streaming"}};
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        const char *args = me->client_streaming ? "ctx" : "ctx, req";
        sg_buf_printf(b,
                      "    let i = imp.clone();\n"
                      "    let svc = svc.%s(\"%s\", move |%s| i.%s(%s));\n",
                      builder[me->client_streaming][me->server_streaming], me->name,
                      me->client_streaming ? "ctx: &mut shoal::rpc::ServerCtx"
                                           : "ctx: &mut shoal::rpc::ServerCtx, req",
                      snake(me->name), args);
    }
    sg_buf_puts(b, "    drop(imp);\n    svc\n}\n");
}

void sg_emit_rust_services(sg_buf *b, const sg_file *file)
{
    if (!file->nservices)
        return;
    sg_buf_puts(b, "\n// ---- services ----\n\n");
    for (size_t i = 0; i < file->nservices; i++) {
        const sg_service *s = &file->services[i];
        const char *fn_prefix = snake(s->name);
        if (strncmp(fn_prefix, "r#", 2) == 0)
            fn_prefix += 2;
        const char *konst = sg_printf("%s_SERVICE", upper(fn_prefix));
        sg_buf_printf(
            b, "/// The full name of service %s.\npub const %s: &str = \"%s\";\n\n",
            s->full_name, konst, s->full_name);
        emit_client(b, s, konst);
        emit_server(b, s, konst, fn_prefix);
        if (i + 1 < file->nservices)
            sg_buf_puts(b, "\n");
    }
}
