# ---- services ----

from shoal import rpc as _rpc  # noqa: E402


class GenStub:
    """Client of service svct.Gen: one callable per method."""

    def __init__(self, channel):
        self.Ask = channel.unary_unary(
            "/svct.Gen/Ask",
            request_serializer=_rpc.serializer(Fix),
            response_deserializer=Enc.from_bytes)
        self.Count = channel.unary_stream(
            "/svct.Gen/Count",
            request_serializer=_rpc.serializer(Enc),
            response_deserializer=Fix.from_bytes)
        self.Sum = channel.stream_unary(
            "/svct.Gen/Sum",
            request_serializer=_rpc.serializer(Fix),
            response_deserializer=Fix.from_bytes)
        self.Chat = channel.stream_stream(
            "/svct.Gen/Chat",
            request_serializer=_rpc.serializer(Enc),
            response_deserializer=Enc.from_bytes)
        self.Wait = channel.unary_unary(
            "/svct.Gen/Wait",
            request_serializer=_rpc.serializer(Fix),
            response_deserializer=Fix.from_bytes)
        self.Missing = channel.unary_unary(
            "/svct.Gen/Missing",
            request_serializer=_rpc.serializer(Fix),
            response_deserializer=Fix.from_bytes)


class GenServicer:
    """Server side of service svct.Gen: override the methods."""

    def Ask(self, request, context):
        """Ask(svct.Fix) returns (svct.Enc)."""
        context.set_code(_rpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Count(self, request, context):
        """Count(svct.Enc) returns (stream svct.Fix)."""
        context.set_code(_rpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Sum(self, request_iterator, context):
        """Sum(stream svct.Fix) returns (svct.Fix)."""
        context.set_code(_rpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Chat(self, request_iterator, context):
        """Chat(stream svct.Enc) returns (stream svct.Enc)."""
        context.set_code(_rpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Wait(self, request, context):
        """Wait(svct.Fix) returns (svct.Fix)."""
        context.set_code(_rpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Missing(self, request, context):
        """Missing(svct.Fix) returns (svct.Fix)."""
        context.set_code(_rpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")


def add_GenServicer_to_server(servicer, server):
    """Adds servicer's methods to server as service svct.Gen."""
    handlers = {
        "Ask": _rpc.unary_unary_rpc_method_handler(
            servicer.Ask,
            request_deserializer=Fix.from_bytes,
            response_serializer=_rpc.serializer(Enc)),
        "Count": _rpc.unary_stream_rpc_method_handler(
            servicer.Count,
            request_deserializer=Enc.from_bytes,
            response_serializer=_rpc.serializer(Fix)),
        "Sum": _rpc.stream_unary_rpc_method_handler(
            servicer.Sum,
            request_deserializer=Fix.from_bytes,
            response_serializer=_rpc.serializer(Fix)),
        "Chat": _rpc.stream_stream_rpc_method_handler(
            servicer.Chat,
            request_deserializer=Enc.from_bytes,
            response_serializer=_rpc.serializer(Enc)),
        "Wait": _rpc.unary_unary_rpc_method_handler(
            servicer.Wait,
            request_deserializer=Fix.from_bytes,
            response_serializer=_rpc.serializer(Fix)),
        "Missing": _rpc.unary_unary_rpc_method_handler(
            servicer.Missing,
            request_deserializer=Fix.from_bytes,
            response_serializer=_rpc.serializer(Fix)),
    }
    server.add_generic_handlers(
        (_rpc.method_handlers_generic_handler("svct.Gen", handlers),))
