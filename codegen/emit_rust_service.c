/*
 * emit_rust_service.c — the Rust emitter's part for services: a client struct and a
 * server trait per service over the shoal crate's rpc module, at the end of the file's
 * <base>_shoal.rs.
 *
 * For `service Fleet { rpc Report(Sample) returns (Note); ... }` in package `demo`:
 *
 *   FLEET_SERVICE           "demo.Fleet";
 *   FleetClient             FleetClient::new(channel) (an Arc<Channel>, shared), one
 *                           method per rpc, snake_case: unary `report(&Sample, &opts)
 *                           -> Result<Note, Status>`; server streaming `watch(&req,
 *                           &opts) -> Result<Streaming<Req, Resp>, Status>` (iterate
 *                           over the responses); client and bidirectional streaming
 *                           `x(&opts) -> Result<Streaming<Req, Resp>, Status>` (send /
 *                           close_send / recv / close_and_recv / cancel);
 *   FleetServer             a trait with one method per rpc whose default answers
 *                           UNIMPLEMENTED: unary `report(&self, ctx, req: Sample) ->
 *                           Result<Note, Status>`; server streaming `(stream, req) ->
 *                           Result<(), Status>` sending with stream.send; client
 *                           streaming `(stream) -> Result<Resp, Status>` reading with
 *                           stream.recv; bidi `(stream) -> Result<(), Status>`, the
 *                           stream a ServerStream<Req, Resp>;
 *   fleet_service(imp)      the shoal::rpc::Service running an Arc<impl FleetServer>,
 *                           for Server::add_service.
 *
 * Messages are typed: a fixed message is its generated #[repr(C)] struct, an encoded one
 * its generated struct of owned fields (emit_rust.c), both carried as their protobuf
 * form (shoal::Message) — the bytes the C and Python stubs put on the wire, so Rust
 * peers mix with theirs. The shoal crate's typed layer (rpc_typed.rs) encodes, decodes
 * and validates: an invalid message is INVALID_ARGUMENT.
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

static void emit_client(sg_buf *b, const sg_file *file, const sg_service *s,
                        const char *konst)
{
    sg_buf_printf(
        b,
        "/// Client of service %s: one method per rpc.\n"
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
        const char *in = sg_rust_msg_type(file, me->input);
        const char *out = sg_rust_msg_type(file, me->output);
        sg_buf_printf(b, "\n    /// %s.\n", signature(me));
        if (!me->client_streaming && !me->server_streaming)
            sg_buf_printf(
                b,
                "    pub fn %s(&self, request: &%s, opts: &shoal::rpc::CallOptions)"
                " -> Result<%s, shoal::rpc::Status> {\n"
                "        self.channel.call_unary(%s, \"%s\", request, opts)\n"
                "    }\n",
                fn, in, out, konst, me->name);
        else
            sg_buf_printf(
                b,
                "    pub fn %s(&self, %sopts: &shoal::rpc::CallOptions)"
                " -> Result<shoal::rpc::Streaming<%s, %s>, shoal::rpc::Status> {\n"
                "        self.channel.call_streaming(%s, \"%s\", shoal::rpc::Kind::%s, "
                "%s,"
                " opts)\n"
                "    }\n",
                fn, me->client_streaming ? "" : sg_printf("request: &%s, ", in), in, out,
                konst, me->name, kind_name(me),
                me->client_streaming ? "None" : "Some(request)");
    }
    sg_buf_puts(b, "}\n\n");
}

/* The handler's parameters and result type, by kind. */
static void handler_sig(sg_buf *b, const sg_file *file, const sg_method *me)
{
    const char *in = sg_rust_msg_type(file, me->input);
    const char *out = sg_rust_msg_type(file, me->output);
    bool streams = me->client_streaming || me->server_streaming;
    sg_buf_printf(
        b, "&self, %s%s) -> Result<%s, shoal::rpc::Status>",
        streams ? sg_printf("_stream: &mut shoal::rpc::ServerStream<'_, %s, %s>", in, out)
                : "_ctx: &mut shoal::rpc::ServerCtx",
        me->client_streaming ? "" : sg_printf(", _request: %s", in),
        me->server_streaming ? "()" : out);
}

static void emit_server(sg_buf *b, const sg_file *file, const sg_service *s,
                        const char *konst, const char *fn_prefix)
{
    sg_buf_printf(
        b,
        "/// Server side of service %s: implement the methods (each not\n"
        "/// implemented answers UNIMPLEMENTED) and add `%s_service(imp)` to a\n"
        "/// server. Streaming handlers send with `stream.send` and read requests\n"
        "/// with `stream.recv`.\n"
        "pub trait %sServer: Send + Sync + 'static {\n",
        s->full_name, fn_prefix, s->name);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        sg_buf_printf(b, "    /// %s.\n    fn %s(", signature(me), snake(me->name));
        handler_sig(b, file, me);
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
    static const char *const builder[2][2] = {
        {"typed_unary", "typed_server_streaming"},
        {"typed_client_streaming", "typed_bidi_streaming"}};
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        bool streams = me->client_streaming || me->server_streaming;
        const char *param = streams ? "s" : "ctx";
        const char *args = me->client_streaming ? param : sg_printf("%s, req", param);
        sg_buf_printf(b,
                      "    let i = imp.clone();\n"
                      "    let svc = svc.%s(\"%s\", move |%s| i.%s(%s));\n",
                      builder[me->client_streaming][me->server_streaming], me->name, args,
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
        emit_client(b, file, s, konst);
        emit_server(b, file, s, konst, fn_prefix);
        if (i + 1 < file->nservices)
            sg_buf_puts(b, "\n");
    }
}
