/*
 * emit_python_service.c — the Python emitter's part for services: grpcio-shaped
 * client stubs and servicers over shoal.rpc, at the end of the file's <base>_shoal.py.
 *
 * For `service Fleet { rpc Report(Sample) returns (Note); ... }` in package `demo`:
 *
 *   FleetStub(channel)     one attribute per method, the channel's unary_unary /
 *                          unary_stream / stream_unary / stream_stream multicallable
 *                          of "/demo.Fleet/Report";
 *   FleetServicer          a base class whose methods answer UNIMPLEMENTED;
 *   add_FleetServicer_to_server(servicer, server)
 *                          registers the servicer's methods as service demo.Fleet.
 *
 * Requests and responses are serialized with shoal.rpc.serializer(cls) (the generated
 * class's to_bytes after a type check) and deserialized with cls.from_bytes — protobuf's
 * encoding for fixed and encoded messages alike, the bytes the C stubs put on the
 * wire — so Python and C clients and servers mix freely. The section comes after every
 * class of the module (its names refer to them); the message types of other files are
 * reached through the module's imports (emit_python.c counts the services' types among
 * a file's uses).
 */
#include "emit.h"

static const char *multicallable(const sg_method *me)
{
    if (me->client_streaming)
        return me->server_streaming ? "stream_stream" : "stream_unary";
    return me->server_streaming ? "unary_stream" : "unary_unary";
}

static void emit_stub(sg_buf *b, const sg_file *file, const sg_service *s)
{
    sg_buf_printf(b,
                  "class %sStub:\n"
                  "    \"\"\"Client of service %s: one callable per method.\"\"\"\n\n"
                  "    def __init__(self, channel):\n",
                  s->name, s->full_name);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        sg_buf_printf(b,
                      "        self.%s = channel.%s(\n"
                      "            \"/%s/%s\",\n"
                      "            request_serializer=_rpc.serializer(%s),\n"
                      "            response_deserializer=%s.from_bytes)\n",
                      me->name, multicallable(me), s->full_name, me->name,
                      sg_py_msg_ref(file, me->input), sg_py_msg_ref(file, me->output));
    }
    if (!s->nmethods)
        sg_buf_puts(b, "        pass\n");
    sg_buf_puts(b, "\n\n");
}

static void emit_servicer(sg_buf *b, const sg_service *s)
{
    sg_buf_printf(b,
                  "class %sServicer:\n"
                  "    \"\"\"Server side of service %s: override the methods.\"\"\"\n",
                  s->name, s->full_name);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        sg_buf_printf(b,
                      "\n    def %s(self, %s, context):\n"
                      "        \"\"\"%s(%s%s) returns (%s%s).\"\"\"\n"
                      "        context.set_code(_rpc.StatusCode.UNIMPLEMENTED)\n"
                      "        context.set_details(\"Method not implemented!\")\n"
                      "        raise NotImplementedError(\"Method not implemented!\")\n",
                      me->name, me->client_streaming ? "request_iterator" : "request",
                      me->name, me->client_streaming ? "stream " : "",
                      me->input->full_name, me->server_streaming ? "stream " : "",
                      me->output->full_name);
    }
    sg_buf_puts(b, "\n\n");
}

static void emit_add(sg_buf *b, const sg_file *file, const sg_service *s)
{
    sg_buf_printf(b,
                  "def add_%sServicer_to_server(servicer, server):\n"
                  "    \"\"\"Adds servicer's methods to server as service %s.\"\"\"\n"
                  "    handlers = {\n",
                  s->name, s->full_name);
    for (size_t i = 0; i < s->nmethods; i++) {
        const sg_method *me = &s->methods[i];
        sg_buf_printf(b,
                      "        \"%s\": _rpc.%s_rpc_method_handler(\n"
                      "            servicer.%s,\n"
                      "            request_deserializer=%s.from_bytes,\n"
                      "            response_serializer=_rpc.serializer(%s)),\n",
                      me->name, multicallable(me), me->name,
                      sg_py_msg_ref(file, me->input), sg_py_msg_ref(file, me->output));
    }
    sg_buf_printf(b,
                  "    }\n"
                  "    server.add_generic_handlers(\n"
                  "        (_rpc.method_handlers_generic_handler(\"%s\", handlers),))\n",
                  s->full_name);
}

void sg_emit_python_services(sg_buf *b, const sg_file *file)
{
    if (!file->nservices)
        return;
    sg_buf_puts(b, "\n\n# ---- services ----\n\n"
                   "from shoal import rpc as _rpc  # noqa: E402\n\n\n");
    for (size_t i = 0; i < file->nservices; i++) {
        const sg_service *s = &file->services[i];
        emit_stub(b, file, s);
        emit_servicer(b, s);
        emit_add(b, file, s);
        if (i + 1 < file->nservices)
            sg_buf_puts(b, "\n\n");
    }
}
