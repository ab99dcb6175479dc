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
 *                           response / cancel).
 *
 * Requests and responses are the protobuf encodings of the messages (Uint8Arrays), the
 * bytes the C, Python and Rust stubs put on the wire (the Node emitter has no protobuf
 * codec: encode them with any protobuf library), so fixed and encoded messages are
 * called alike. Each method's doc comment names its message types. Serving a service
 * from Node is not generated: the package has no rpc server.
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

static void emit_method(sg_buf *js, sg_buf *ts, const sg_service *s, const sg_method *me)
{
    const char *fn = lower_camel(me->name);
    const char *doc =
        sg_printf("  /** %s(%s%s) returns (%s%s). */\n", me->name,
                  me->client_streaming ? "stream " : "", me->input->full_name,
                  me->server_streaming ? "stream " : "", me->output->full_name);
    sg_buf_puts(js, doc);
    sg_buf_puts(ts, doc);
    if (me->client_streaming) {
        sg_buf_printf(
            js, "  %s(opts) {\n    return this.channel.%s('%s', '%s', opts);\n  }\n", fn,
            channel_fn(me), s->full_name, me->name);
        sg_buf_printf(ts, "  %s(opts?: rpc.CallOptions): rpc.Call;\n", fn);
        return;
    }
    sg_buf_printf(js,
                  "  %s(request, opts) {\n"
                  "    return this.channel.%s('%s', '%s', request, opts);\n"
                  "  }\n",
                  fn, channel_fn(me), s->full_name, me->name);
    sg_buf_printf(ts, "  %s(request: Uint8Array, opts?: rpc.CallOptions): %s;\n", fn,
                  me->server_streaming ? "rpc.Call" : "Promise<Uint8Array>");
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
            sg_printf("/** Client of service %s: one method per rpc; messages "
                      "are their protobuf encodings. */\n",
                      s->full_name);
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
            emit_method(js, ts, s, &s->methods[j]);
        }
        sg_buf_printf(js, "}\n%sClient.SERVICE = '%s';\n\n", s->name, s->full_name);
        sg_buf_puts(ts, "}\n\n");
        sg_buf_printf(exports, "  %sClient,\n", s->name);
    }
}
