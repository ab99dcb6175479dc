/*
 * emit_node_service.c — the Node.js emitter's part for services: a client class per
 * service over the shoal package's rpc module, at the end of the file's
 * <base>_shoal.js, with its declaration in <base>_shoal.d.ts.
 *
 * For `service Fleet { rpc Report(Sample) returns (Note); ... }` in package `demo`:
 *
 *   class FleetClient       new FleetClient(channel) (a shoal.rpc.Channel), with
 *                           FleetClient.SERVICE = 'demo.Fleet' and one method per rpc,
 *                           lowerCamelCase: unary `report(request, opts)` -> Promise of
 *                           the response; server streaming `watch(request, opts)` -> a
 *                           Call to iterate with for await; client and bidirectional
 *                           streaming `x(opts)` -> a Call (send / closeSend / recv /
 *                           response / cancel);
 *   addFleetService(server, impl)
 *                           adds the service to a shoal.rpc.Server, each method
 *                           served by impl's async method of the same name (unary:
 *                           (request, call) -> response; server streaming: (request,
 *                           call), sending with call.send; client streaming: (call) ->
 *                           response, reading the requests with for await; bidi:
 *                           (call)); methods impl lacks answer UNIMPLEMENTED.
 *
 * Messages are typed: every call and handler is given its method's message types
 * ({request, response}, rpc.js), so a message, fixed or encoded, is an instance of its
 * generated class, carried as its protobuf form (toPb / fromPb) — the bytes the C,
 * Python and Rust stubs put on the wire. An invalid message is INVALID_ARGUMENT. Each
 * method's doc comment names its message types.
 */
#include <ctype.h>

#include "emit.h"

/* "GetFoo" -> "getFoo". */
static const char *lower_camel(const char *name)
{
    const char *s = sg_printf("%s", name);
    ((char *)s)[0] = (char)tolower((unsigned char)s[0]);
    return s;
}

static const char *channel_fn(const sg_method *me)
{
    if (me->client_streaming)
        return me->server_streaming ? "bidiStreaming" : "clientStreaming";
    return me->server_streaming ? "serverStreaming" : "unary";
}

/* The JS class of a message (its TypeScript type too). */
static const char *js_type(const sg_file *file, const sg_message *m)
{
    return sg_node_msg_class(file, m);
}

static const char *ts_type(const sg_file *file, const sg_message *m)
{
    return sg_node_msg_class(file, m);
}

/* "{ request: Fix, response: null }": a method's message types for rpc.js. */
static const char *types_of(const sg_file *file, const sg_method *me)
{
    return sg_printf("{ request: %s, response: %s }", js_type(file, me->input),
                     js_type(file, me->output));
}

static void emit_method(sg_buf *js, sg_buf *ts, const sg_file *file, const sg_service *s,
                        const sg_method *me)
{
    const char *fn = lower_camel(me->name);
    const char *doc =
        sg_printf("  /** %s(%s%s) returns (%s%s). */\n", me->name,
                  me->client_streaming ? "stream " : "", me->input->full_name,
                  me->server_streaming ? "stream " : "", me->output->full_name);
    const char *call = sg_printf("rpc.Call<%s, %s>", ts_type(file, me->input),
                                 ts_type(file, me->output));
    sg_buf_puts(js, doc);
    sg_buf_puts(ts, doc);
    if (me->client_streaming) {
        sg_buf_printf(js,
                      "  %s(opts) {\n"
                      "    return this.channel.%s('%s', '%s', opts, %s);\n"
                      "  }\n",
                      fn, channel_fn(me), s->full_name, me->name, types_of(file, me));
        sg_buf_printf(ts, "  %s(opts?: rpc.CallOptions): %s;\n", fn, call);
        return;
    }
    sg_buf_printf(js,
                  "  %s(request, opts) {\n"
                  "    return this.channel.%s('%s', '%s', request, opts, %s);\n"
                  "  }\n",
                  fn, channel_fn(me), s->full_name, me->name, types_of(file, me));
    sg_buf_printf(ts, "  %s(request: %s, opts?: rpc.CallOptions): %s;\n", fn,
                  ts_type(file, me->input),
                  me->server_streaming
                      ? call
                      : sg_printf("Promise<%s>", ts_type(file, me->output)));
}

/* add<Service>Service(server, impl): impl's methods (lowerCamelCase) as the handlers. */
static void emit_add(sg_buf *js, sg_buf *ts, const sg_file *file, const sg_service *s)
{
    const char *doc =
        sg_printf("/** Adds service %s to a shoal.rpc.Server, served by impl's methods "
                  "(async; those it lacks answer UNIMPLEMENTED). */\n",
                  s->full_name);
    sg_buf_puts(js, doc);
    sg_buf_printf(js, "function add%sService(server, impl) {\n  const h = {};\n",
                  s->name);
    sg_buf_puts(ts, doc);
    sg_buf_printf(ts,
                  "export declare function add%sService(server: rpc.Server, impl: {\n",
                  s->name);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        const char *fn = lower_camel(me->name);
        int kind = (me->client_streaming ? 2 : 0) + (me->server_streaming ? 1 : 0);
        const char *call = sg_printf("rpc.ServerCall<%s, %s>", ts_type(file, me->input),
                                     ts_type(file, me->output));
        sg_buf_printf(js,
                      "  if (impl.%s)\n"
                      "    h['%s'] = { kind: %d, fn: impl.%s.bind(impl), request: %s, "
                      "response: %s };\n",
                      fn, me->name, kind, fn, js_type(file, me->input),
                      js_type(file, me->output));
        sg_buf_printf(ts, "  %s?(%s): Promise<%s>;\n", fn,
                      me->client_streaming ? sg_printf("call: %s", call)
                                           : sg_printf("request: %s, call: %s",
                                                       ts_type(file, me->input), call),
                      me->server_streaming ? "void" : ts_type(file, me->output));
    }
    sg_buf_printf(js, "  return server.addService('%s', h);\n}\n\n", s->full_name);
    sg_buf_puts(ts, "}): rpc.Server;\n\n");
}

void sg_emit_node_services(sg_buf *js, sg_buf *ts, sg_buf *exports, const sg_file *file)
{
    if (!file->nservices)
        return;
    sg_buf_puts(js, "// ---- services ----\n\n");
    sg_buf_puts(ts, "import { rpc } from 'shoal';\n\n");
    for (size_t i = 0; i < file->nservices; i++) {
        const sg_service *s = &file->services[i];
        const char *doc =
            sg_printf("/** Client of service %s: one method per rpc. */\n", s->full_name);
        sg_buf_puts(js, doc);
        sg_buf_printf(js,
                      "class %sClient {\n"
                      "  /** @param channel a shoal.rpc.Channel */\n"
                      "  constructor(channel) {\n"
                      "    this.channel = channel;\n"
                      "  }\n",
                      s->name);
        sg_buf_puts(ts, doc);
        sg_buf_printf(ts,
                      "export declare class %sClient {\n"
                      "  constructor(channel: rpc.Channel);\n"
                      "  readonly channel: rpc.Channel;\n"
                      "  static readonly SERVICE: '%s';\n",
                      s->name, s->full_name);
        for (size_t j = 0; j < s->nmethods; j++) {
            sg_buf_puts(js, "\n");
            emit_method(js, ts, file, s, &s->methods[j]);
        }
        sg_buf_printf(js, "}\n%sClient.SERVICE = '%s';\n\n", s->name, s->full_name);
        sg_buf_puts(ts, "}\n\n");
        emit_add(js, ts, file, s);
        sg_buf_printf(exports, "  %sClient,\n  add%sService,\n", s->name, s->name);
    }
}
