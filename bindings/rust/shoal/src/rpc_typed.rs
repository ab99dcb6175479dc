//! Typed calls and handlers: what the code `shoal gen --lang rust` emits for a service
//! builds on, over the bytes-level [`Channel`], [`Call`], [`Service`] and [`ServerCtx`].
//!
//! A message type of a method is an [`RpcMessage`]: every generated message, fixed or
//! encoded (its protobuf form, [`Message::to_pb`] / [`Message::from_pb`]), and
//! `Vec<u8>`, the protobuf bytes themselves, for untyped use. A message that does not encode (invalid) fails the call INVALID_ARGUMENT
//! before anything is sent; a request that does not decode ends the call
//! INVALID_ARGUMENT without running the handler; a response that does not decode is
//! an INVALID_ARGUMENT status for the caller. Streams are [`Streaming`] on the client
//! and [`ServerStream`] in handlers: the bytes-level call or context with typed `send`
//! and `recv`.
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::message::Message;
use crate::rpc::{Call, CallOptions, Channel, Code, Kind, ServerCtx, Service, Status};

type Res<T> = std::result::Result<T, Status>;

/// A message a generated stub sends or receives.
pub trait RpcMessage: Sized + Send + 'static {
    /// The protobuf encoding (INVALID_ARGUMENT when the message is invalid).
    fn encode_msg(&self) -> Res<Vec<u8>>;
    /// The message of protobuf bytes (INVALID_ARGUMENT when they are not one).
    fn decode_msg(bytes: &[u8]) -> Res<Self>;
}

impl<T: Message> RpcMessage for T {
    fn encode_msg(&self) -> Res<Vec<u8>> {
        self.to_pb().map_err(|e| Status::new(Code::InvalidArgument, e.to_string()))
    }
    fn decode_msg(bytes: &[u8]) -> Res<Self> {
        T::from_pb(bytes).map_err(|e| Status::new(Code::InvalidArgument, e.to_string()))
    }
}

impl RpcMessage for Vec<u8> {
    fn encode_msg(&self) -> Res<Vec<u8>> {
        Ok(self.clone())
    }
    fn decode_msg(bytes: &[u8]) -> Res<Self> {
        Ok(bytes.to_vec())
    }
}

impl Channel {
    /// A typed unary call.
    pub fn call_unary<Req: RpcMessage, Resp: RpcMessage>(
        &self,
        service: &str,
        method: &str,
        request: &Req,
        opts: &CallOptions,
    ) -> Res<Resp> {
        Resp::decode_msg(&self.unary(service, method, &request.encode_msg()?, opts)?)
    }

    /// Starts a typed streaming call (`request`: the one request of a
    /// server-streaming call, `None` for client and bidirectional streaming).
    pub fn call_streaming<Req: RpcMessage, Resp: RpcMessage>(
        &self,
        service: &str,
        method: &str,
        kind: Kind,
        request: Option<&Req>,
        opts: &CallOptions,
    ) -> Res<Streaming<Req, Resp>> {
        let bytes = request.map(|r| r.encode_msg()).transpose()?;
        let call = self.start(service, method, kind, bytes.as_deref(), opts)?;
        Ok(Streaming { call, _types: PhantomData })
    }
}

/// A typed streaming call: requests of type `Req` go out, responses of type `Resp` come
/// in. Iterating over it yields the responses, then (if the call did not end OK) one
/// `Err(status)`. The bytes-level [`Call`] is reachable through `Deref` (`cancel`,
/// `finish`, `headers`, `trailers`, `wait`).
pub struct Streaming<Req, Resp> {
    call: Call,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: RpcMessage, Resp: RpcMessage> Streaming<Req, Resp> {
    /// Sends a request (client and bidirectional streams).
    pub fn send(&mut self, msg: &Req) -> Res<()> {
        let bytes = msg.encode_msg()?;
        self.call.send(&bytes)
    }

    /// Half-closes: the server sees the end of the requests.
    pub fn close_send(&mut self) -> Res<()> {
        self.call.close_send()
    }

    /// The next response, `Ok(None)` once they ended with status OK, or the status
    /// the call ended with. A response that does not decode cancels the call.
    pub fn recv(&mut self) -> Res<Option<Resp>> {
        match self.call.recv()? {
            None => Ok(None),
            Some(b) => Resp::decode_msg(&b).map(Some).inspect_err(|_| self.call.cancel()),
        }
    }

    /// A client-streaming call's end: half-closes, then returns the one response.
    pub fn close_and_recv(&mut self) -> Res<Resp> {
        let bytes = self.call.close_and_recv()?;
        Resp::decode_msg(&bytes)
    }

    /// Waits at most `timeout` until [`Streaming::recv`] would not block.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.call.wait(timeout)
    }

    /// The bytes-level call.
    pub fn into_inner(self) -> Call {
        self.call
    }
}

impl<Req, Resp> Deref for Streaming<Req, Resp> {
    type Target = Call;
    fn deref(&self) -> &Call {
        &self.call
    }
}

impl<Req, Resp> DerefMut for Streaming<Req, Resp> {
    fn deref_mut(&mut self) -> &mut Call {
        &mut self.call
    }
}

impl<Req: RpcMessage, Resp: RpcMessage> Iterator for Streaming<Req, Resp> {
    type Item = Res<Resp>;

    fn next(&mut self) -> Option<Self::Item> {
        self.call.next().map(|r| {
            r.and_then(|b| Resp::decode_msg(&b)).inspect_err(|st| {
                if st.code == Code::InvalidArgument {
                    self.call.cancel();
                }
            })
        })
    }
}

/// A streaming handler's call: typed `recv` of requests and `send` of responses; the
/// rest of [`ServerCtx`] (deadline, metadata, headers and trailers) through `Deref`.
pub struct ServerStream<'a, Req, Resp> {
    ctx: &'a mut ServerCtx,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<'a, Req: RpcMessage, Resp: RpcMessage> ServerStream<'a, Req, Resp> {
    /// The typed view of `ctx`.
    pub fn new(ctx: &'a mut ServerCtx) -> Self {
        ServerStream { ctx, _types: PhantomData }
    }

    /// The next request: `Ok(None)` at their end; an `Err` when the call was
    /// cancelled, its deadline passed or a request was invalid (return it).
    pub fn recv(&mut self) -> Res<Option<Req>> {
        self.ctx.recv()?.map(|b| Req::decode_msg(&b)).transpose()
    }

    /// Sends a response (INVALID_ARGUMENT, nothing sent, when it is invalid).
    pub fn send(&mut self, msg: &Resp) -> Res<()> {
        let bytes = msg.encode_msg()?;
        self.ctx.send(&bytes)
    }
}

impl<Req, Resp> Deref for ServerStream<'_, Req, Resp> {
    type Target = ServerCtx;
    fn deref(&self) -> &ServerCtx {
        self.ctx
    }
}

impl<Req, Resp> DerefMut for ServerStream<'_, Req, Resp> {
    fn deref_mut(&mut self) -> &mut ServerCtx {
        self.ctx
    }
}

impl Service {
    /// A typed unary method.
    pub fn typed_unary<Req, Resp, F>(self, name: &str, f: F) -> Service
    where
        Req: RpcMessage,
        Resp: RpcMessage,
        F: Fn(&mut ServerCtx, Req) -> Res<Resp> + Send + Sync + 'static,
    {
        self.unary(name, move |ctx, req| f(ctx, Req::decode_msg(&req)?)?.encode_msg())
    }

    /// A typed server-streaming method: the handler sends with `stream.send`.
    pub fn typed_server_streaming<Req, Resp, F>(self, name: &str, f: F) -> Service
    where
        Req: RpcMessage,
        Resp: RpcMessage,
        F: Fn(&mut ServerStream<'_, Req, Resp>, Req) -> Res<()> + Send + Sync + 'static,
    {
        self.server_streaming(name, move |ctx, req| {
            let req = Req::decode_msg(&req)?;
            f(&mut ServerStream::new(ctx), req)
        })
    }

    /// A typed client-streaming method: the handler reads with `stream.recv` and
    /// returns the one response.
    pub fn typed_client_streaming<Req, Resp, F>(self, name: &str, f: F) -> Service
    where
        Req: RpcMessage,
        Resp: RpcMessage,
        F: Fn(&mut ServerStream<'_, Req, Resp>) -> Res<Resp> + Send + Sync + 'static,
    {
        self.client_streaming(name, move |ctx| f(&mut ServerStream::new(ctx))?.encode_msg())
    }

    /// A typed bidirectional method.
    pub fn typed_bidi_streaming<Req, Resp, F>(self, name: &str, f: F) -> Service
    where
        Req: RpcMessage,
        Resp: RpcMessage,
        F: Fn(&mut ServerStream<'_, Req, Resp>) -> Res<()> + Send + Sync + 'static,
    {
        self.bidi_streaming(name, move |ctx| f(&mut ServerStream::new(ctx)))
    }
}
