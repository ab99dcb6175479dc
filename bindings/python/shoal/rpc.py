"""shoal.rpc: gRPC-like services between processes, in grpcio's shape.

A grpcio user feels at home: ``shoal.rpc.channel(address)`` gives a channel for the
generated ``FooStub``; ``shoal.rpc.server()`` with ``add_port``, ``start``, ``stop``
and ``wait_for_termination`` serves a ``FooServicer`` added with the generated
``add_FooServicer_to_server``; handlers get a context with ``abort``,
``time_remaining``, ``is_active``, ``invocation_metadata`` and the rest; failures are
raised as :class:`RpcError` with ``code()`` and ``details()``; :class:`StatusCode` has
grpc's names and numbers. The address picks the transport, as in C: ``shm://name``
(shared memory on this host), ``ipc:///path``, ``tcp://host:port`` (with a token).

How it works. Everything below is libshoal's C service layer (shoal/rpc.h) through
ctypes; this module only converts.

* Client. A channel is one ``shoal_rpc_channel``. A call starts with
  ``shoal_rpc_call_start_request`` (one request) or ``shoal_rpc_call_start``
  (a request stream). The calling thread never blocks in C for long: it waits for
  each response with ``shoal_rpc_call_wait`` in slices of ``_SLICE`` seconds, so that
  Ctrl-C (KeyboardInterrupt) is raised between two slices, and the call is then
  cancelled and freed. The C call ends itself at its deadline (DEADLINE_EXCEEDED)
  or when the server dies (UNAVAILABLE). A request iterator is consumed on a thread
  of its own that sends each request (blocking in C while the server's window is
  full) and then half-closes; the call's handle is freed only under the lock that
  thread takes around each send, after a cancel has made any pending send return.
* Server. A server runs its own ``shoal_loop`` on a thread: that thread creates the
  C server, adds the services, listens on the ports, runs the loop until ``stop``,
  then destroys the C server (which cancels the calls still running and waits for
  their handlers). Every method is registered ``blocking``, so no handler runs on the
  loop's thread: without ``max_workers`` the server keeps ``_HANDLER_THREADS``
  Python threads of its own in ``shoal_rpc_server_work``, a blocking C call that runs
  the handler of each call handed to it on that thread (a call that finds none of
  them idle gets a thread of its own from the C layer); with ``max_workers`` the C
  server's pool runs them. A ctypes callback entering Python on a thread Python
  made reuses that thread's state: several times cheaper than on a thread C made
  for the call, the cost of a unary call between Python processes. The C handler
  is a ctypes callback per method that builds a :class:`ServicerContext`, reads and
  deserializes the request(s) (a request that does not deserialize ends the call
  INVALID_ARGUMENT), runs the Python behaviour and sends its response(s). Whatever
  the behaviour raises becomes the call's status — the code it set or UNKNOWN, with
  the exception's text — and never leaves the callback.
* Messages are bytes to the C layer; the generated stubs pass the generated classes'
  ``to_bytes`` / ``from_bytes`` (protobuf's encoding, the same as the C stubs'), so
  Python and C peers mix freely.
"""

import atexit
import ctypes
import enum
import threading
import time
import weakref
from ctypes import byref, c_char_p, c_size_t, c_void_p

from . import errors
from ._lib import (
    C, Place, check, encode_name, rpc_handler_t, shoal_rpc_channel_config, shoal_rpc_md,
    shoal_rpc_method, shoal_rpc_options, shoal_rpc_service,
)

__all__ = [
    "Channel", "RpcError", "Server", "ServicerContext", "StatusCode", "channel",
    "method_handlers_generic_handler", "serializer", "server",
    "stream_stream_rpc_method_handler", "stream_unary_rpc_method_handler",
    "unary_stream_rpc_method_handler", "unary_unary_rpc_method_handler",
]

# Longest wait in C before the interpreter gets a chance to raise KeyboardInterrupt.
_SLICE = 0.1
_SLICE_NS = int(_SLICE * 1e9)
_FOREVER = -1
_UNARY, _SERVER_STREAMING, _CLIENT_STREAMING, _BIDI = 0, 1, 2, 3
_DETAIL_MAX = 512
# Python threads serving the calls of a server without max_workers (more calls at
# once get threads of their own).
_HANDLER_THREADS = 4

_libc_free = ctypes.CDLL(None).free
_libc_free.argtypes = [c_void_p]
_libc_free.restype = None


class StatusCode(enum.Enum):
    """gRPC's status codes: the same names, and values (number, name in lower case)
    as grpc.StatusCode's."""

    OK = (0, "ok")
    CANCELLED = (1, "cancelled")
    UNKNOWN = (2, "unknown")
    INVALID_ARGUMENT = (3, "invalid argument")
    DEADLINE_EXCEEDED = (4, "deadline exceeded")
    NOT_FOUND = (5, "not found")
    ALREADY_EXISTS = (6, "already exists")
    PERMISSION_DENIED = (7, "permission denied")
    RESOURCE_EXHAUSTED = (8, "resource exhausted")
    FAILED_PRECONDITION = (9, "failed precondition")
    ABORTED = (10, "aborted")
    OUT_OF_RANGE = (11, "out of range")
    UNIMPLEMENTED = (12, "unimplemented")
    INTERNAL = (13, "internal")
    UNAVAILABLE = (14, "unavailable")
    DATA_LOSS = (15, "data loss")
    UNAUTHENTICATED = (16, "unauthenticated")

    @property
    def number(self):
        """The code's number on the wire (0 to 16)."""
        return self.value[0]


_BY_NUMBER = {c.value[0]: c for c in StatusCode}


def _code_of(number):
    return _BY_NUMBER.get(number, StatusCode.UNKNOWN)


class RpcError(Exception):
    """A call that ended with a status other than OK: ``code()`` (a StatusCode),
    ``details()`` (the detail message), ``initial_metadata()`` and
    ``trailing_metadata()`` (tuples of (key, value))."""

    def __init__(self, code, details, initial_metadata=(), trailing_metadata=()):
        super().__init__("%s: %s" % (code.name, details))
        self._code = code
        self._details = details
        self._initial = tuple(initial_metadata)
        self._trailing = tuple(trailing_metadata)

    def code(self):
        return self._code

    def details(self):
        return self._details

    def initial_metadata(self):
        return self._initial

    def trailing_metadata(self):
        return self._trailing


# ---- conversions ------------------------------------------------------------------


def _text(v):
    if isinstance(v, bytes):
        return v
    if not isinstance(v, str):
        raise TypeError("metadata keys and values must be str, not %s" %
                        type(v).__name__)
    return v.encode("utf-8")


def _md_tuple(md_p):
    """A C shoal_rpc_md as a tuple of (key, value) str pairs."""
    if not md_p:
        return ()
    md = md_p.contents
    return tuple((md.items[i].key.decode("utf-8", "replace"),
                  md.items[i].value.decode("utf-8", "replace")) for i in range(md.count))


def _pairs(metadata):
    if metadata is None:
        return ()
    if isinstance(metadata, dict):
        return tuple(metadata.items())
    return tuple(metadata)


def _take(msg, n):
    """The bytes of a message the C layer handed out (and frees them)."""
    try:
        return ctypes.string_at(msg, n.value)
    finally:
        _libc_free(msg)


def serializer(cls):
    """The request or response serializer for messages of generated class cls:
    protobuf's encoding, after checking the object's type (TypeError otherwise)."""

    def to_bytes(msg):
        if not isinstance(msg, cls):
            raise TypeError("expected a %s message, got %s" % (cls.__name__,
                                                                 type(msg).__name__))
        return msg.to_bytes()

    return to_bytes


def _identity(x):
    return x


# ---- client -------------------------------------------------------------------------


class _Options:
    """A call's shoal_rpc_options (timeout, metadata), freed with free()."""

    def __init__(self, timeout, metadata):
        self.md = shoal_rpc_md()
        for k, v in _pairs(metadata):
            check(C.rpc_md_add(byref(self.md), _text(k), _text(v)), "metadata")
        t = 0
        if timeout is not None:
            t = max(int(timeout * 1e9), 1)
        self.c = shoal_rpc_options(t, ctypes.pointer(self.md) if self.md.count else None)

    def free(self):
        C.rpc_md_clear(byref(self.md))


class _Call:
    """One running call: its handle, waiting in slices, its end."""

    def __init__(self, channel, method, request, timeout, metadata):
        self._lock = threading.Condition()
        self._sending = 0  # sends under way on the request thread
        self._h = c_void_p()
        self._method = method
        self._outcome = None  # (code, details) once finished
        self._initial = ()
        self._trailing = ()
        self._sender = None
        opts = _Options(timeout, metadata)
        try:
            if request is None:
                rc = C.rpc_call_start(byref(self._h), channel._handle(), method.service,
                                      byref(method.c), byref(opts.c))
            else:
                rc = C.rpc_call_start_request(byref(self._h), channel._handle(),
                                              method.service, byref(method.c), request,
                                              len(request), byref(opts.c))
            check(rc, "rpc call")
        finally:
            opts.free()
        self._channel = channel  # the channel outlives its calls' handles

    def recv(self):
        """The next response's bytes, or None at the end of the responses."""
        h = self._h
        while C.rpc_call_wait(h, _SLICE_NS) == 0:
            pass
        msg, n = c_void_p(), c_size_t()
        rc = C.rpc_call_recv(h, byref(msg), byref(n))
        check(rc, "rpc recv")
        return _take(msg, n) if rc == 1 else None

    def finish(self):
        """Waits for the status, discarding the responses not read; returns
        (StatusCode, details) and frees the handle."""
        if self._outcome is not None:
            return self._outcome
        if not self._h:
            self._outcome = (StatusCode.CANCELLED, "the call was abandoned")
            return self._outcome
        while self.recv() is not None:  # in slices: Ctrl-C still works
            pass
        detail = ctypes.create_string_buffer(_DETAIL_MAX)
        code = C.rpc_call_finish(self._h, detail, _DETAIL_MAX)
        self._initial = _md_tuple(C.rpc_call_headers(self._h))
        self._trailing = _md_tuple(C.rpc_call_trailers(self._h))
        self._outcome = (_code_of(code), detail.value.decode("utf-8", "replace"))
        self.free()
        return self._outcome

    def fail(self, code, details):
        """Ends the call on this side with a status of its own (a response that did
        not deserialize)."""
        self.cancel()
        self.finish()
        self._outcome = (code, details)

    def error(self):
        code, details = self._outcome
        return RpcError(code, details, self._initial, self._trailing)

    def cancel(self):
        with self._lock:
            if self._h:
                C.rpc_call_cancel(self._h)

    def free(self):
        """Frees the handle once no send is under way (a cancel makes a send waiting
        for credit return)."""
        with self._lock:
            h, self._h = self._h, c_void_p()
            if not h:
                return
            C.rpc_call_cancel(h)
            while self._sending:
                self._lock.wait()
        C.rpc_call_free(h)

    def send_all(self, iterator, ser):
        """Sends the requests of iterator on a thread of its own, then half-closes."""
        self._sender = threading.Thread(target=self._send_loop, args=(iterator, ser),
                                        name="shoal-rpc-requests", daemon=True)
        self._sender.start()

    def _begin_send(self):
        """The handle, counted as in use by a send; None when the call is freed."""
        with self._lock:
            if not self._h:
                return None
            self._sending += 1
            return self._h

    def _end_send(self):
        with self._lock:
            self._sending -= 1
            self._lock.notify_all()

    def _send_loop(self, iterator, ser):
        try:
            for req in iterator:
                data = ser(req)
                h = self._begin_send()
                if h is None:
                    return
                try:
                    if C.rpc_call_send(h, data, len(data)) < 0:
                        return  # the call is over: its status says why
                finally:
                    self._end_send()
            h = self._begin_send()
            if h is not None:
                C.rpc_call_close_send(h)
                self._end_send()
        except Exception:
            self.cancel()  # as grpc: a failing request iterator cancels the call

    def __del__(self):
        if getattr(self, "_h", None):
            self.free()


class _Method:
    """A method as the client names it: "/pkg.Service/Method", kind, serializers."""

    def __init__(self, channel, path, kind, ser, deser):
        service, sep, name = path.lstrip("/").rpartition("/")
        if not sep or not service or not name:
            raise ValueError("method path %r is not /package.Service/Method" % path)
        self.channel = channel
        self.service = service.encode("utf-8")
        self._name = name.encode("utf-8")
        self.c = shoal_rpc_method(self._name, kind, None, None, rpc_handler_t(), 0)
        self.ser = ser or _identity
        self.deser = deser or _identity
        self.path = path

    def start(self, request, timeout, metadata, stream):
        if stream:
            call = _Call(self.channel, self, None, timeout, metadata)
            call.send_all(request, self.ser)
            return call
        return _Call(self.channel, self, self.ser(request), timeout, metadata)

    def single(self, call):
        """The one response of a unary or client-streaming call, or raises RpcError."""
        try:
            data = call.recv()
            resp = None
            if data is not None:
                try:
                    resp = self.deser(data)
                except Exception as e:
                    call.fail(StatusCode.INVALID_ARGUMENT, "invalid response: %s" % e)
            code, _ = call.finish()
        except BaseException:  # KeyboardInterrupt included: cancel, then raise
            call.free()
            raise
        if code != StatusCode.OK:
            raise call.error()
        return resp


class _Outcome:
    """What .with_call returns besides the response: the call's status and
    metadata."""

    def __init__(self, call):
        self._call = call

    def code(self):
        return self._call._outcome[0]

    def details(self):
        return self._call._outcome[1]

    def initial_metadata(self):
        return self._call._initial

    def trailing_metadata(self):
        return self._call._trailing

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False


class _SingleResponse:
    """A unary or client-streaming method on a channel: call it as grpc's
    UnaryUnaryMultiCallable / StreamUnaryMultiCallable."""

    def __init__(self, method, stream):
        self._m = method
        self._stream = stream

    def __call__(self, request, timeout=None, metadata=None):
        return self.with_call(request, timeout, metadata)[0]

    def with_call(self, request, timeout=None, metadata=None):
        """(response, call): the call has code(), details(), initial_metadata() and
        trailing_metadata()."""
        call = self._m.start(request, timeout, metadata, self._stream)
        resp = self._m.single(call)
        return resp, _Outcome(call)


class _ResponseIterator:
    """The responses of a server-streaming or bidirectional call, as an iterator;
    cancel() cancels the call (iteration then raises RpcError CANCELLED). Also
    code(), details(), initial_metadata(), trailing_metadata() once it has ended,
    and is_active()."""

    def __init__(self, method, call):
        self._m = method
        self._call = call

    def __iter__(self):
        return self

    def __next__(self):
        call = self._call
        if call._outcome is None:
            try:
                data = call.recv() if call._h else None
                if data is not None:
                    try:
                        return self._m.deser(data)
                    except Exception as e:
                        call.fail(StatusCode.INVALID_ARGUMENT, "invalid response: %s" % e)
                call.finish()
            except BaseException:
                call.free()
                raise
        if call._outcome[0] != StatusCode.OK:
            raise call.error()
        raise StopIteration

    def cancel(self):
        """Cancels the call; the server's handler sees it. Returns whether the call
        was still running."""
        running = self._call._outcome is None
        self._call.cancel()
        return running

    def is_active(self):
        return self._call._outcome is None

    def code(self):
        self._call.finish()
        return self._call._outcome[0]

    def details(self):
        self._call.finish()
        return self._call._outcome[1]

    def initial_metadata(self):
        self._call.finish()
        return self._call._initial

    def trailing_metadata(self):
        self._call.finish()
        return self._call._trailing


class _StreamResponse:
    def __init__(self, method, stream):
        self._m = method
        self._stream = stream

    def __call__(self, request, timeout=None, metadata=None):
        return _ResponseIterator(self._m, self._m.start(request, timeout, metadata,
                                                        self._stream))


class Channel:
    """A connection to a server at an address (see :func:`channel`). Use it with the
    generated stubs; a context manager; close() cancels the calls still running."""

    def __init__(self, address, token=None, connect_timeout=None, root=None,
                 domain=None, tls=None):
        self.address = address
        self._h = c_void_p()
        place = Place(root, domain)
        self._attr = place.attr()
        tls = tls or {}
        unknown = set(tls) - {"ca_file", "cert_file", "key_file", "server_name"}
        if unknown:
            raise TypeError("unknown tls settings: %s" % ", ".join(sorted(unknown)))
        cfg = shoal_rpc_channel_config(
            0 if connect_timeout is None else max(int(connect_timeout * 1e9), 1),
            ctypes.pointer(self._attr), encode_name(token), 0,
            *(encode_name(tls.get(k)) for k in ("ca_file", "cert_file", "key_file",
                                                  "server_name")))
        rc = C.rpc_channel_open(byref(self._h), encode_name(address), byref(cfg))
        if rc in (errors.ENOENT, errors.ETIMEDOUT, errors.ESYS):
            raise RpcError(StatusCode.UNAVAILABLE, _detail(rc, address))
        if rc == errors.EACCES:
            raise RpcError(StatusCode.UNAUTHENTICATED, _detail(rc, address))
        check(rc, "channel %s" % address)

    def _handle(self):
        if not self._h:
            raise ValueError("channel to %s is closed" % self.address)
        return self._h

    def unary_unary(self, method, request_serializer=None, response_deserializer=None):
        return _SingleResponse(_Method(self, method, _UNARY, request_serializer,
                                       response_deserializer), False)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None):
        return _StreamResponse(_Method(self, method, _SERVER_STREAMING,
                                       request_serializer, response_deserializer), False)

    def stream_unary(self, method, request_serializer=None, response_deserializer=None):
        return _SingleResponse(_Method(self, method, _CLIENT_STREAMING,
                                       request_serializer, response_deserializer), True)

    def stream_stream(self, method, request_serializer=None, response_deserializer=None):
        return _StreamResponse(_Method(self, method, _BIDI, request_serializer,
                                       response_deserializer), True)

    def close(self):
        """Cancels the calls still running and disconnects. Idempotent."""
        h, self._h = self._h, c_void_p()
        if h:
            C.rpc_channel_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None):
            self.close()


def _detail(rc, what):
    d = C.errdetail()
    d = d.decode("utf-8", "replace") if d else ""
    return d or "%s: %s" % (what, C.strerror(rc).decode())


def channel(address, token=None, connect_timeout=None, root=None, domain=None, tls=None):
    """Opens a channel to a server: ``shm://name`` (root / domain: where its objects
    live, as for every shoal object), ``ipc:///path``, ``tcp://host:port`` (token:
    the server's token) or ``tls+tcp://host:port`` (tls: a dict of PEM file names,
    ``ca_file`` required, ``cert_file`` / ``key_file`` for a server that requires a
    client certificate, ``server_name`` when it differs from the address's host).
    Waits up to connect_timeout seconds (default 2) for the server to accept. Raises
    RpcError UNAVAILABLE when no server is there or it did not accept in time,
    UNAUTHENTICATED when the token or certificate is missing or wrong (or the server's
    certificate does not verify), and shoal.InvalidArgument for an address of no known
    scheme."""
    return Channel(address, token, connect_timeout, root, domain, tls)


# ---- server side ---------------------------------------------------------------------


class _Abort(Exception):
    """Raised by context.abort(): ends the handler with the status set."""


class _Closed(Exception):
    """The call ended while the handler was receiving or sending."""


class RpcMethodHandler:
    """A method's behaviour and (de)serializers, as grpc.RpcMethodHandler."""

    def __init__(self, kind, behavior, request_deserializer, response_serializer):
        self.kind = kind
        self.request_streaming = kind in (_CLIENT_STREAMING, _BIDI)
        self.response_streaming = kind in (_SERVER_STREAMING, _BIDI)
        self.behavior = behavior
        self.request_deserializer = request_deserializer or _identity
        self.response_serializer = response_serializer or _identity


def unary_unary_rpc_method_handler(behavior, request_deserializer=None,
                                   response_serializer=None):
    """behavior(request, context) -> response."""
    return RpcMethodHandler(_UNARY, behavior, request_deserializer, response_serializer)


def unary_stream_rpc_method_handler(behavior, request_deserializer=None,
                                    response_serializer=None):
    """behavior(request, context) -> iterator of responses."""
    return RpcMethodHandler(_SERVER_STREAMING, behavior, request_deserializer,
                            response_serializer)


def stream_unary_rpc_method_handler(behavior, request_deserializer=None,
                                    response_serializer=None):
    """behavior(request_iterator, context) -> response."""
    return RpcMethodHandler(_CLIENT_STREAMING, behavior, request_deserializer,
                            response_serializer)


def stream_stream_rpc_method_handler(behavior, request_deserializer=None,
                                     response_serializer=None):
    """behavior(request_iterator, context) -> iterator of responses."""
    return RpcMethodHandler(_BIDI, behavior, request_deserializer, response_serializer)


class _GenericHandler:
    def __init__(self, service, handlers):
        self._service = service
        self._handlers = dict(handlers)

    def service_name(self):
        return self._service

    def method_handlers(self):
        return self._handlers


def method_handlers_generic_handler(service, method_handlers):
    """A service ("pkg.Service") made of {method name: RpcMethodHandler}, for
    Server.add_generic_handlers."""
    return _GenericHandler(service, method_handlers)


class ServicerContext:
    """What a handler gets besides its request(s), as grpc.ServicerContext."""

    def __init__(self, ctx, server):
        self._ctx = c_void_p(ctx)
        self._server = server
        self._code = None
        self._details = ""
        self._metadata = None
        self._callbacks = []
        self._invalid = None

    # -- the call's state
    def is_active(self):
        """False once the call was cancelled, its deadline passed or its client
        died."""
        return not C.rpc_ctx_cancelled(self._ctx)

    def time_remaining(self):
        """Seconds left until the call's deadline (0 when passed), None without one."""
        ns = C.rpc_ctx_time_remaining(self._ctx)
        return None if ns == _FOREVER else max(ns, 0) / 1e9

    def invocation_metadata(self):
        """The request metadata: a tuple of (key, value)."""
        if self._metadata is None:
            self._metadata = _md_tuple(C.rpc_ctx_metadata(self._ctx))
        return self._metadata

    def method(self):
        """"pkg.Service/Method" of the call."""
        return C.rpc_ctx_method(self._ctx).decode("utf-8", "replace")

    def peer(self):
        return "shoal"

    # -- metadata and status
    def send_initial_metadata(self, initial_metadata):
        """Response headers: sent with the first response (or the status)."""
        for k, v in _pairs(initial_metadata):
            check(C.rpc_ctx_add_header(self._ctx, _text(k), _text(v)), "header")

    def set_trailing_metadata(self, trailing_metadata):
        for k, v in _pairs(trailing_metadata):
            check(C.rpc_ctx_add_trailer(self._ctx, _text(k), _text(v)), "trailer")

    def set_code(self, code):
        self._code = code

    def set_details(self, details):
        self._details = details

    def code(self):
        return self._code

    def details(self):
        return self._details

    def abort(self, code, details):
        """Ends the call with code (not OK) and details: raises an exception the
        server catches, so nothing after it runs."""
        if code == StatusCode.OK:
            raise ValueError("abort() needs a code other than OK")
        self._code = code
        self._details = details
        raise _Abort(details)

    def add_callback(self, callback):
        """callback() runs when the call has ended (after the handler). True."""
        self._callbacks.append(callback)
        return True

    # -- messages (the server's use)
    def _recv(self, deser):
        msg, n = c_void_p(), c_size_t()
        rc = C.rpc_ctx_recv(self._ctx, byref(msg), byref(n))
        if rc == 0:
            return None
        if rc < 0:
            raise _Closed()
        data = _take(msg, n)
        try:
            return (deser(data),)
        except Exception as e:
            self._invalid = "invalid request: %s" % e
            raise _Closed()

    def _send(self, ser, response):
        data = ser(response)
        if C.rpc_ctx_send(self._ctx, data, len(data)) < 0:
            raise _Closed()

    def _requests(self, deser):
        while True:
            try:
                got = self._recv(deser)
            except _Closed:
                return
            if got is None:
                return
            yield got[0]


class _Service:
    """A service's C tables and one ctypes callback per method."""

    def __init__(self, server, generic, inline_unary):
        self.name = generic.service_name()
        handlers = generic.method_handlers()
        self._names = [n.encode("utf-8") for n in handlers]
        self._funcs = [rpc_handler_t(self._callback(server, h))
                       for h in handlers.values()]
        arr = (shoal_rpc_method * len(handlers))()
        for i, h in enumerate(handlers.values()):
            blocking = not (inline_unary and h.kind == _UNARY)
            arr[i] = shoal_rpc_method(self._names[i], h.kind, None, None, self._funcs[i],
                                      blocking)
        self._methods = arr
        self._cname = self.name.encode("utf-8")
        self.c = shoal_rpc_service(self._cname, arr, len(handlers), None)

    @staticmethod
    def _callback(server, handler):
        def run(ctx, arg):
            try:
                return server._run(ctx, handler)
            except BaseException:  # nothing may unwind into C
                return StatusCode.INTERNAL.number

        return run


def _run_behavior(context, h):
    """Runs the behaviour of handler h with its request(s), sending its response(s)."""
    if h.request_streaming:
        arg = context._requests(h.request_deserializer)
    else:
        got = context._recv(h.request_deserializer)
        if got is None:
            context._invalid = "no request"
            raise _Closed()
        arg = got[0]
    result = h.behavior(arg, context)
    if h.response_streaming:
        try:
            for resp in result:
                context._send(h.response_serializer, resp)
        finally:  # a generator left at a yield runs its finally blocks now
            close = getattr(result, "close", None)
            if close is not None:
                close()
    else:
        context._send(h.response_serializer, result)


class Server:
    """A server: its own shoal_loop on a thread of its own (see :func:`server`)."""

    def __init__(self, max_workers=None, root=None, domain=None, inline_unary=False):
        self._inline = inline_unary
        self._services = {}
        self._ports = []
        self._token = None
        self._tls = None
        self._place = Place(root, domain)
        self._workers = max_workers
        self._mu = threading.Lock()  # guards _state
        self._state = "new"  # new, started, stopping, stopped
        self._loop = c_void_p()
        self._srv = c_void_p()
        self._thread = None
        self._stopped = threading.Event()
        self._start_error = None

    # -- configuration
    def add_generic_handlers(self, generic_handlers):
        """Adds services made with method_handlers_generic_handler (the generated
        add_XServicer_to_server calls this). Before start()."""
        self._configurable()
        for g in generic_handlers:
            name = g.service_name()
            if name in self._services:
                raise ValueError("service %s was added already" % name)
            self._services[name] = _Service(self, g, self._inline)

    def add_port(self, address):
        """Listens on address once started (shm://name, ipc:///path,
        tcp://host:port: set_token first). Returns the address."""
        self._configurable()
        self._ports.append(address)
        return address

    add_insecure_port = add_port

    def set_token(self, token):
        """The shared secret tcp:// clients must prove they know (8 characters or
        more; it never crosses the network)."""
        self._configurable()
        self._token = token

    def set_tls(self, cert_file, key_file, ca_file=None, require_client_cert=False):
        """The TLS identity of the tls+tcp:// ports (PEM files: certificate, its
        unencrypted key, and the CA client certificates must chain to). A tls+tcp://
        port needs require_client_cert or a token (set_token), or both."""
        self._configurable()
        self._tls = (cert_file, key_file, ca_file, require_client_cert)

    def _configurable(self):
        if self._state != "new":
            raise ValueError("the server was started already")

    # -- running
    def start(self):
        """Starts serving: creates the loop and the C server on a thread, adds the
        services and listens on every port. Raises the listening error (e.g.
        shoal.Busy: the address is in use) without leaving anything running."""
        self._configurable()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,),
                                        name="shoal-rpc-server", daemon=True)
        self._thread.start()
        ready.wait()
        if self._start_error is not None:
            self._thread.join()
            self._state = "stopped"
            raise self._start_error
        self._state = "started"
        _running.add(self)

    def _serve(self, ready):
        srv = c_void_p()
        try:
            check(C.loop_create(byref(self._loop)), "server loop")
            check(C.rpc_server_create(byref(srv), self._loop), "server")
            self._srv = srv
            if self._workers:  # the C server's pool runs the handlers
                check(C.rpc_server_set_workers(srv, self._workers, 0), "workers")
            for svc in self._services.values():
                check(C.rpc_server_add_service(srv, byref(svc.c)), svc.name)
            if self._token is not None:
                check(C.rpc_server_set_token(srv, encode_name(self._token)), "token")
            if self._tls is not None:
                cert, key, ca, require = self._tls
                check(C.rpc_server_set_tls(srv, encode_name(cert), encode_name(key),
                                           encode_name(ca), int(bool(require))), "tls")
            for port in self._ports:
                check(C.rpc_server_listen(srv, encode_name(port), self._place.attr()),
                      port)
            workers = self._handler_threads(srv)
        except Exception as e:
            self._start_error = e
            workers = []
        ready.set()
        if self._start_error is None:
            C.loop_run(self._loop)
        C.rpc_server_destroy(srv)  # cancels what runs, waits for the handlers
        for t in workers:
            t.join()
        C.loop_destroy(self._loop)
        self._loop = c_void_p()
        self._stopped.set()

    def _handler_threads(self, srv):
        """Without a pool: the Python threads that run the handlers in C's
        shoal_rpc_server_work until the server is destroyed."""
        if self._workers or not _HANDLER_THREADS:
            return []
        check(C.rpc_server_reserve_workers(srv, _HANDLER_THREADS), "handler threads")
        threads = [threading.Thread(target=C.rpc_server_work, args=(srv,),
                                    name="shoal-rpc-handler", daemon=True)
                   for _ in range(_HANDLER_THREADS)]
        for t in threads:
            t.start()
        return threads

    def stop(self, grace=None):
        """Stops serving: new calls get UNAVAILABLE at once; the calls running get
        grace seconds (None: none) to end, then are cancelled. Returns a
        threading.Event set once everything has stopped."""
        with self._mu:
            if self._state == "new":
                self._state = "stopped"
                self._stopped.set()
                return self._stopped
            if self._state != "started":
                return self._stopped
            self._state = "stopping"
        if grace:  # the calls running end (their statuses sent), or the grace does
            C.rpc_server_wait_idle(self._srv, int(grace * 1e9))
        C.loop_stop(self._loop)
        self._stopped.wait()
        self._thread.join()
        self._state = "stopped"
        _running.discard(self)
        return self._stopped

    def wait_for_termination(self, timeout=None):
        """Blocks until the server has stopped, or timeout seconds. Returns True when
        the timeout passed first (as grpc's)."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._stopped.is_set():
            step = _SLICE * 5
            if end is not None:
                step = min(step, end - time.monotonic())
                if step <= 0:
                    return True
            self._stopped.wait(step)
        return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(None)

    # -- a call (on the handler's thread)
    def _run(self, ctx, h):
        context = ServicerContext(ctx, self)
        with self._mu:
            if self._state != "started":
                return _status(context, StatusCode.UNAVAILABLE, "the server is stopping")
        code, details = _outcome(context, h)
        rc = _status(context, code, details)
        for cb in context._callbacks:
            try:
                cb()
            except Exception:
                pass
        return rc  # the C server sends the status: stop(grace) waits for that


# Servers still running when the interpreter exits are stopped first: their
# handler threads must not call into an interpreter that is shutting down.
_running = weakref.WeakSet()


@atexit.register
def _stop_all():
    for srv in list(_running):
        srv.stop(None)


def _outcome(context, h):
    """Runs the behaviour; returns the call's (StatusCode, details)."""
    try:
        _run_behavior(context, h)
    except _Abort:
        pass
    except _Closed:
        if context._invalid:
            return StatusCode.INVALID_ARGUMENT, context._invalid
        return StatusCode.CANCELLED, "the call ended"
    except Exception as e:
        if context._invalid:
            return StatusCode.INVALID_ARGUMENT, context._invalid
        if context._code is None or context._code == StatusCode.OK:
            return StatusCode.UNKNOWN, "Exception calling application: %s: %s" % (
                type(e).__name__, e)
    if context._invalid:
        return StatusCode.INVALID_ARGUMENT, context._invalid
    return context._code or StatusCode.OK, context._details or ""


def _status(context, code, details):
    if details:
        C.rpc_ctx_set_detail(context._ctx, b"%s",
                             str(details).encode("utf-8", "replace")[:_DETAIL_MAX - 1])
    return code.number


def server(max_workers=None, root=None, domain=None, inline_unary=False):
    """A new server (see Server): add services (add_XServicer_to_server) and ports,
    then start(). max_workers: the handlers run on a pool of that many threads, a call
    waiting first in, first out for a free one (its deadline and cancel still end it
    while it waits); None: each call has a thread of its own. root / domain: where shm:// objects live.
    inline_unary: run unary handlers on the server's loop thread — no thread per
    call, several times faster, but a handler that blocks holds up every other call
    of the server (streaming handlers always have a thread of their own)."""
    return Server(max_workers, root, domain, inline_unary)
