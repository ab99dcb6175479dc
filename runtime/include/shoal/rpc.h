/*
 * shoal/rpc.h — services: gRPC-like calls between processes.
 *
 * A client opens a channel to an address and makes calls on it; a server, driven by a
 * shoal_loop, listens on one or more addresses and runs the handlers of the services
 * added to it. The address picks the transport; the API is the same for all:
 *
 *   shm://name          shared memory on this host: a connection queue `name` and one
 *                       pipe per channel (objects mode 0600, in $SHOAL_ROOT/$SHOAL_DOMAIN
 *                       as every shoal object); no system call per call while both
 *                       sides poll.
 *   ipc:///path         an nng byte stream over a Unix socket (socket file mode 0600),
 *   tcp://host:port     an nng byte stream over TCP; clients must prove they know
 *                       the server's token (shoal_rpc_server_set_token).
 *   tls+tcp://host:port the same over TLS (shoal_rpc_server_set_tls): the server's
 *                       certificate is checked against the client's CA file; clients
 *                       prove themselves with a certificate the server's CA signed
 *                       (when the server requires one) and/or the token (when the
 *                       server has one). All three when libshoal is built with nng.
 *
 * The frames on every transport are shoal.rpc.Frame messages in the protobuf wire
 * format (schemas/shoal/rpc.proto); docs/services.md describes them.
 *
 * Calls follow gRPC's semantics. A method is one of four kinds (unary, server
 * streaming, client streaming, bidirectional streaming). A call carries request
 * metadata and a deadline; it ends with a status (one of gRPC's seventeen codes, with
 * its numbers) and a detail message, after response headers, messages and trailers.
 * Streams are flow-controlled: a side may have at most a window of messages in flight
 * that the other side has not consumed — the receive window the other side announced
 * (SHOAL_RPC_WINDOW) — so a slow reader never makes the other side buffer without
 * bound. A client's cancel, or the death of its process,
 * reaches the handler (shoal_rpc_ctx_cancelled); the death of a server's process gives
 * its clients UNAVAILABLE (over shm:// within tens of milliseconds).
 *
 * Messages are opaque bytes to this layer (generated code puts protobuf or fixed
 * layouts in them). Each arrives in a private heap copy and is checked with the
 * method's check function, when it has one, before the handler or the caller sees it:
 * a request that fails ends the call with INVALID_ARGUMENT; a response that fails
 * ends it on the client side with INVALID_ARGUMENT (and cancels it on the server).
 *
 * Threads: a channel may be used by many threads at once, each with its own calls;
 * a call is used by one thread at a time. Unary handlers run on the loop's thread and
 * must not block (set shoal_rpc_method.blocking to run one off it); streaming
 * handlers run off the loop's thread and may block in shoal_rpc_ctx_recv /
 * shoal_rpc_ctx_send. "Off the loop's thread" is a thread per call by default, or a
 * worker of the server's pool (shoal_rpc_server_set_workers).
 *
 * Return values: functions return 0 (or 1, where said) or a negative SHOAL_E* code,
 * with shoal_errdetail() saying what was wrong. The outcome of a call is its status,
 * read with shoal_rpc_call_finish().
 */
#ifndef SHOAL_RPC_H
#define SHOAL_RPC_H

#include <stdarg.h>
#include <stddef.h>

#include "common.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC's status codes, with gRPC's numbers. */
typedef enum shoal_rpc_code {
    SHOAL_RPC_OK = 0,
    SHOAL_RPC_CANCELLED = 1,
    SHOAL_RPC_UNKNOWN = 2,
    SHOAL_RPC_INVALID_ARGUMENT = 3,
    SHOAL_RPC_DEADLINE_EXCEEDED = 4,
    SHOAL_RPC_NOT_FOUND = 5,
    SHOAL_RPC_ALREADY_EXISTS = 6,
    SHOAL_RPC_PERMISSION_DENIED = 7,
    SHOAL_RPC_RESOURCE_EXHAUSTED = 8,
    SHOAL_RPC_FAILED_PRECONDITION = 9,
    SHOAL_RPC_ABORTED = 10,
    SHOAL_RPC_OUT_OF_RANGE = 11,
    SHOAL_RPC_UNIMPLEMENTED = 12,
    SHOAL_RPC_INTERNAL = 13,
    SHOAL_RPC_UNAVAILABLE = 14,
    SHOAL_RPC_DATA_LOSS = 15,
    SHOAL_RPC_UNAUTHENTICATED = 16
} shoal_rpc_code;

/* gRPC's name of a code ("OK", "DEADLINE_EXCEEDED", ...), or NULL when out of range. */
SHOAL_API const char *shoal_rpc_code_name(int code);
/* The code named `name` (as shoal_rpc_code_name spells it), or -1. */
SHOAL_API int shoal_rpc_code_from_name(const char *name);

/* The kinds of method. */
typedef enum shoal_rpc_kind {
    SHOAL_RPC_UNARY = 0,
    SHOAL_RPC_SERVER_STREAMING = 1,
    SHOAL_RPC_CLIENT_STREAMING = 2,
    SHOAL_RPC_BIDI_STREAMING = 3
} shoal_rpc_kind;

/* The receive window this side announces: the messages of one call the other side may
 * send before this side has consumed them (it buffers at most that many a call). A
 * client announces it in each call's START frame, a server in its ACCEPT; a peer that
 * announces none is given 16 (the window of the versions before the announcement).
 * Over shm:// both sides announce 32 instead, half of what a connection's pipe holds,
 * and take a larger announcement for 32, so a sender with credit never finds the pipe
 * full. */
#define SHOAL_RPC_WINDOW 128
/* Length limits: a status detail, a metadata key, a metadata value. */
#define SHOAL_RPC_DETAIL_MAX 512
#define SHOAL_RPC_KEY_MAX    128
#define SHOAL_RPC_VALUE_MAX  4096

/* ---- metadata ---------------------------------------------------------------------- */

/* A list of string key/value pairs (request metadata, response headers, trailers).
 * Keys are not unique; order is kept. Zero-initialise; free with shoal_rpc_md_clear. */
typedef struct shoal_rpc_md {
    size_t count;
    struct shoal_rpc_kv {
        char *key;
        char *value;
    } * items;
} shoal_rpc_md;

/* Appends a copy of key/value. Returns 0, SHOAL_EINVAL (NULL, empty key, key or value
 * over SHOAL_RPC_KEY_MAX / SHOAL_RPC_VALUE_MAX) or SHOAL_ENOMEM. */
SHOAL_API int shoal_rpc_md_add(shoal_rpc_md *md, const char *key, const char *value);
/* The value of the first pair with `key`, or NULL. */
SHOAL_API const char *shoal_rpc_md_get(const shoal_rpc_md *md, const char *key);
/* Frees the pairs; md is empty afterwards. */
SHOAL_API void shoal_rpc_md_clear(shoal_rpc_md *md);

/* ---- methods and services ---------------------------------------------------------- */

typedef struct shoal_rpc_ctx shoal_rpc_ctx;

/*
 * A handler. It takes the request(s) with shoal_rpc_ctx_recv and sends the
 * response(s) with shoal_rpc_ctx_send (exactly one for unary and client-streaming
 * methods), then returns the call's status code (SHOAL_RPC_OK, or an error code with
 * a detail set by shoal_rpc_ctx_set_detail). `arg` is the service's arg.
 */
typedef int (*shoal_rpc_handler)(shoal_rpc_ctx *ctx, void *arg);

/* Checks a message (a private copy): 0 when valid, non-zero otherwise. */
typedef int (*shoal_rpc_check)(const void *msg, size_t len);

/* A method, as clients and servers describe it (generated code provides these). */
typedef struct shoal_rpc_method {
    const char *name;               /* the method's name, e.g. "Report" */
    int kind;                       /* enum shoal_rpc_kind */
    shoal_rpc_check check_request;  /* NULL: any bytes */
    shoal_rpc_check check_response; /* NULL: any bytes */
    shoal_rpc_handler handler;      /* server side */
    int blocking;                   /* unary: run the handler off the loop's thread */
} shoal_rpc_method;

/* A service: a table of methods under a full name ("pkg.Service"). */
typedef struct shoal_rpc_service {
    const char *name;
    const shoal_rpc_method *methods;
    size_t n_methods;
    void *arg; /* passed to every handler */
} shoal_rpc_service;

/* ---- client ------------------------------------------------------------------------ */

typedef struct shoal_rpc_channel shoal_rpc_channel;
typedef struct shoal_rpc_call shoal_rpc_call;

/* Options of a channel (NULL: defaults). */
typedef struct shoal_rpc_channel_config {
    shoal_duration connect_timeout; /* 0: 2 seconds */
    const shoal_attr *attr;         /* shm://: root, domain and mode of the objects */
    const char *token;              /* tcp://: the server's token (see
                                       shoal_rpc_server_set_token) */
    size_t max_frame;               /* shm://: largest frame (message + about 40 bytes
                                       of envelope); 0: 64 KiB */
    /* tls+tcp:// only. */
    const char *tls_ca_file;     /* required: the CA certificate(s), PEM, the server's
                                    certificate must chain to */
    const char *tls_cert_file;   /* this client's certificate, PEM (for a server that
                                    requires one), or NULL */
    const char *tls_key_file;    /* its private key, PEM (unencrypted) */
    const char *tls_server_name; /* the name the server's certificate must carry;
                                    NULL: the address's host */
} shoal_rpc_channel_config;

/*
 * Opens a channel to `address` and connects it. Returns 0 and sets *out, or
 * SHOAL_EINVAL (NULL, an address of no known scheme, a scheme this build lacks),
 * SHOAL_ENOENT (shm://: no server has ever listened there; nng: connection refused),
 * SHOAL_ETIMEDOUT (no server accepted within the connect timeout), SHOAL_EACCES (the
 * server said UNAUTHENTICATED: no token or a wrong one, no valid client certificate;
 * or tls+tcp://: the server's certificate did not verify against tls_ca_file or the
 * TLS handshake failed), SHOAL_ENOMEM, SHOAL_ESYS.
 */
SHOAL_API int shoal_rpc_channel_open(shoal_rpc_channel **out, const char *address,
                                     const shoal_rpc_channel_config *cfg);
/* Cancels the channel's calls still running (their handles stay valid and must still
 * be freed) and disconnects. NULL is ignored. */
SHOAL_API void shoal_rpc_channel_close(shoal_rpc_channel *ch);

/* Options of one call (NULL: none). */
typedef struct shoal_rpc_options {
    /* Time allowed for the whole call; 0 or negative: none. Inside a handler, the
     * handler's deadline applies when it is earlier. */
    shoal_duration timeout;
    const shoal_rpc_md *metadata; /* request metadata, or NULL */
} shoal_rpc_options;

/*
 * Starts a call of method `m` of service `service` ("pkg.Service") and sends its
 * headers. Returns 0 and sets *out, SHOAL_EINVAL or SHOAL_ENOMEM. A channel that
 * failed still gives a call, which ends UNAVAILABLE.
 */
SHOAL_API int shoal_rpc_call_start(shoal_rpc_call **out, shoal_rpc_channel *ch,
                                   const char *service, const shoal_rpc_method *m,
                                   const shoal_rpc_options *opts);
/*
 * Starts a call whose only request is req[len] (unary and server-streaming methods),
 * sent with the headers in one frame; the call is half-closed. As
 * shoal_rpc_call_start otherwise.
 */
SHOAL_API int shoal_rpc_call_start_request(shoal_rpc_call **out, shoal_rpc_channel *ch,
                                           const char *service, const shoal_rpc_method *m,
                                           const void *req, size_t len,
                                           const shoal_rpc_options *opts);
/*
 * Sends a message, waiting (until the deadline) while the server has its window's
 * worth of messages of this call unconsumed (SHOAL_RPC_WINDOW). Returns 0, SHOAL_ECLOSED
 * (the call is over, or sending was closed: see shoal_rpc_call_finish), SHOAL_EINVAL or
 * SHOAL_EMSGSIZE (larger than the transport carries).
 */
SHOAL_API int shoal_rpc_call_send(shoal_rpc_call *c, const void *msg, size_t len);
/*
 * As shoal_rpc_call_send, but over ipc://, tcp:// and tls+tcp:// the request may stay
 * in the channel's buffer (up to 256 KiB of frames) until the channel next sends a
 * frame of any call, until a thread of this process waits on the channel
 * (shoal_rpc_call_recv, _wait, _finish, a unary call, a send waiting for the
 * server's window) or until shoal_rpc_channel_flush: a burst of pipelined requests
 * then leaves in one write, and reaches the server as one read. From then on the
 * credit the call returns for the responses it takes (the server's window) waits in
 * the buffer the same way, to leave with the next requests. A caller that sends (or
 * takes responses) and then waits for nothing of this channel flushes. Over shm:// the
 * same, up to 16 KiB of frames, which then leave in one batch message (a server of
 * an earlier version, which reads no batch messages, gets each frame at once). Returns
 * as shoal_rpc_call_send; a connection lost while the request waits shows at the next
 * send or wait (the calls end UNAVAILABLE). A fork child does not send what its parent
 * kept (the parent does).
 */
SHOAL_API int shoal_rpc_call_send_more(shoal_rpc_call *c, const void *msg, size_t len);
/* Writes the requests shoal_rpc_call_send_more left in the channel's buffer. Returns
 * 0, SHOAL_EINVAL (NULL) or SHOAL_ECLOSED (the connection is lost). */
SHOAL_API int shoal_rpc_channel_flush(shoal_rpc_channel *ch);
/* Half-closes: the server's recv sees the end of the requests. Returns 0 or
 * SHOAL_ECLOSED. */
SHOAL_API int shoal_rpc_call_close_send(shoal_rpc_call *c);
/*
 * Non-zero when shoal_rpc_call_send would not wait for the server's window: the call
 * has room for another request (or it is over, and a send fails at once). It reads
 * nothing from the connection: the room a server frees arrives while this thread
 * receives or waits (shoal_rpc_call_recv, shoal_rpc_call_wait). A client that must
 * not block sending (a server may answer with many responses before it reads more
 * requests) sends only then and otherwise reads. 0 for NULL.
 */
SHOAL_API int shoal_rpc_call_send_ready(shoal_rpc_call *c);
/*
 * Receives the next response: returns 1 with *msg (free with free()) and *len, or 0
 * when the responses have ended (the status is then known: shoal_rpc_call_finish), or
 * SHOAL_EINVAL. Waits at most until the call's deadline.
 */
SHOAL_API int shoal_rpc_call_recv(shoal_rpc_call *c, void **msg, size_t *len);
/*
 * Waits at most `timeout` (SHOAL_FOREVER: no limit but the call's deadline) until
 * shoal_rpc_call_recv would not block: a response is there, the responses have ended
 * or the call is over (ended at its deadline or by a lost connection, as recv would).
 * Lets a caller wait in slices (to handle signals between them) and then receive.
 * Returns 1 when ready, 0 when the timeout passed first, SHOAL_EINVAL (NULL).
 */
SHOAL_API int shoal_rpc_call_wait(shoal_rpc_call *c, shoal_duration timeout);
/* Cancels the call: the server's handler sees it; the status becomes CANCELLED
 * unless the call had already ended. */
SHOAL_API void shoal_rpc_call_cancel(shoal_rpc_call *c);
/*
 * Waits for the end of the call (discarding responses not received) and returns its
 * status code (>= 0); copies the detail into detail[cap] when detail is not NULL.
 */
SHOAL_API int shoal_rpc_call_finish(shoal_rpc_call *c, char *detail, size_t cap);
/* Response headers and trailers received so far (never NULL). */
SHOAL_API const shoal_rpc_md *shoal_rpc_call_headers(const shoal_rpc_call *c);
SHOAL_API const shoal_rpc_md *shoal_rpc_call_trailers(const shoal_rpc_call *c);
/* Frees the call, cancelling it if still running. NULL is ignored. */
SHOAL_API void shoal_rpc_call_free(shoal_rpc_call *c);

/*
 * A unary call in one step: sends req, receives the one response into *resp (free
 * with free(); NULL unless OK), and returns the status code (>= 0) with the detail in
 * detail[cap] (when not NULL); or a negative SHOAL_E* code for bad arguments.
 */
SHOAL_API int shoal_rpc_unary(shoal_rpc_channel *ch, const char *service,
                              const shoal_rpc_method *m, const void *req, size_t req_len,
                              void **resp, size_t *resp_len,
                              const shoal_rpc_options *opts, char *detail, size_t cap);

/* ---- server ------------------------------------------------------------------------ */

typedef struct shoal_rpc_server shoal_rpc_server;

/* Creates a server whose connections and calls are served by `loop` (which the
 * caller runs); it serves SHOAL_RPC_REFLECTION from the start. Returns 0,
 * SHOAL_EINVAL or SHOAL_ENOMEM. */
SHOAL_API int shoal_rpc_server_create(shoal_rpc_server **out, shoal_loop *loop);
/* Adds a service (the tables are referenced, not copied: they must outlive the
 * server). Returns 0, SHOAL_EINVAL, SHOAL_EEXIST (a service of that name is there). */
SHOAL_API int shoal_rpc_server_add_service(shoal_rpc_server *s,
                                           const shoal_rpc_service *svc);
/*
 * Sets the shared secret tcp:// clients must prove they know (at least 8 characters).
 * The proof is a challenge–response (HMAC-SHA256 of a fresh random challenge): the
 * token never crosses the network. A client without it, or with another, gets
 * UNAUTHENTICATED and is disconnected. Returns 0, SHOAL_EINVAL or SHOAL_ENOMEM.
 */
SHOAL_API int shoal_rpc_server_set_token(shoal_rpc_server *s, const char *token);
/*
 * Every server also serves SHOAL_RPC_REFLECTION (schemas/shoal/reflection.proto):
 * List, the name and kind of every method it serves; Descriptors, a
 * google.protobuf.FileDescriptorSet of the .proto files registered with
 * shoal_rpc_server_add_descriptors — what `shoal call` needs to speak to it.
 */
#define SHOAL_RPC_REFLECTION "shoal.reflection.Reflection"
/*
 * Registers a serialized google.protobuf.FileDescriptorSet (a service's .proto file
 * after the files it imports) for the reflection service to return; referenced, not
 * copied (it must outlive the server); the same set registered again is ignored.
 * Generated Foo_server_add calls it. Returns 0, SHOAL_EINVAL (NULL, or bytes that are
 * not a sequence of FileDescriptorSet.file entries) or SHOAL_ENOMEM.
 */
SHOAL_API int shoal_rpc_server_add_descriptors(shoal_rpc_server *s, const void *set,
                                               size_t len);
/*
 * Runs the handlers that do not run on the loop's thread (streaming methods, and
 * unary methods marked blocking) on a pool of `workers` threads, started now, instead
 * of a thread per call (workers 0: a thread per call, the default). A call waits in
 * a first-in first-out queue until a worker is free; its deadline and its client's
 * cancel still end it while it waits (the handler then never runs). A streaming
 * handler holds its worker until it returns, so with more open streams than workers
 * the later ones wait for the earlier ones to end. max_calls (0: no bound) bounds the
 * calls served off the loop's thread, running or waiting, with or without a pool: a
 * call beyond it ends at once with RESOURCE_EXHAUSTED. Call it once, before the
 * server has connections. Returns 0, SHOAL_EINVAL (NULL, over 4096 workers, called
 * twice or too late), SHOAL_ENOMEM or SHOAL_ESYS (threads could not be started).
 */
SHOAL_API int shoal_rpc_server_set_workers(shoal_rpc_server *s, unsigned workers,
                                           unsigned max_calls);
/*
 * Threads of the caller's serving the calls that run off the loop's thread, for a
 * server without a pool: shoal_rpc_server_reserve_workers(s, n) announces n of them,
 * and each then calls shoal_rpc_server_work(s), which runs handlers on the calling
 * thread until the server is destroyed. While one of them waits idle, a call that
 * would get a thread of its own is handed to it instead (so a language binding's
 * callbacks run on its own threads, where entering the language is cheap); calls
 * beyond the idle ones still get threads of their own. shoal_rpc_server_destroy
 * waits until all n have returned from shoal_rpc_server_work (a thread reserved but
 * not yet arrived returns at once), so reserve only threads that will come.
 * reserve_workers returns 0, or SHOAL_EINVAL (NULL, a server with a pool, or one
 * being destroyed).
 */
SHOAL_API int shoal_rpc_server_reserve_workers(shoal_rpc_server *s, unsigned n);
SHOAL_API void shoal_rpc_server_work(shoal_rpc_server *s);
/*
 * Sets the TLS identity of the server's tls+tcp:// listeners (call it before
 * shoal_rpc_server_listen): cert_file and key_file are PEM files (the certificate,
 * optionally followed by its chain, and its unencrypted private key). ca_file (PEM,
 * may be NULL unless require_client_cert) holds the CA certificate(s) client
 * certificates are checked against. With require_client_cert, a client without a
 * certificate that chains to ca_file gets UNAUTHENTICATED and is disconnected (the
 * TLS handshake itself succeeds, so the client learns why). A tls+tcp:// listener
 * needs client certificates required or a token (shoal_rpc_server_set_token), or both
 * (then a client needs both). The files are read when listening. Returns 0,
 * SHOAL_EINVAL (NULL cert_file or key_file; require_client_cert without ca_file) or
 * SHOAL_ENOMEM.
 */
SHOAL_API int shoal_rpc_server_set_tls(shoal_rpc_server *s, const char *cert_file,
                                       const char *key_file, const char *ca_file,
                                       int require_client_cert);
/*
 * Listens on `address` (any number of addresses per server). shm://name creates the
 * connection queue `name` (or takes over the one a dead server left) and the block
 * `name:server` that marks the name as served: while a live process listens on
 * shm://name, another listen there (from any process, this one included) fails with
 * SHOAL_EBUSY; once that process died (even by SIGKILL) or its listener closed, the
 * name is free again. Returns 0,
 * SHOAL_EINVAL (bad address; tcp:// without a token set; tls+tcp:// without
 * shoal_rpc_server_set_tls, or with neither client certificates required nor a token,
 * or with certificate, key or CA files that do not load), SHOAL_EBUSY (the address is
 * in use: another server listens there) and the errors of creating the objects or
 * sockets. attr: shm:// root, domain and mode of the objects; ipc:// its mode gives the
 * socket file's (0: 0600).
 */
SHOAL_API int shoal_rpc_server_listen(shoal_rpc_server *s, const char *address,
                                      const shoal_attr *attr);
/*
 * Waits until no call runs off the loop's thread (handlers on the pool's threads, on
 * threads of their own or on the caller's, each up to the moment its status went
 * out), or timeout (SHOAL_FOREVER: no bound). Safe from any thread, the loop's
 * excepted while handlers need it. A server stopping with a grace period calls it
 * after refusing new calls and before shoal_rpc_server_destroy, which cancels what
 * still runs. Returns 0 (idle), SHOAL_ETIMEDOUT (calls still running) or
 * SHOAL_EINVAL (NULL).
 */
SHOAL_API int shoal_rpc_server_wait_idle(shoal_rpc_server *s, shoal_duration timeout);
/*
 * Stops listening, cancels the calls still running, waits for their handler threads
 * to return, closes the connections and frees the server. Call it on the loop's
 * thread while the loop is not running. NULL is ignored.
 */
SHOAL_API void shoal_rpc_server_destroy(shoal_rpc_server *s);

/* ---- inside a handler -------------------------------------------------------------- */

/*
 * Receives the next request: returns 1 with *msg (free with free()) and *len, 0 at
 * the end of the requests, or SHOAL_ECLOSED when the call was cancelled or its
 * deadline passed, SHOAL_EINVALID_DATA when a request failed its check (the call then
 * ends INVALID_ARGUMENT whatever the handler returns); in inline receive, SHOAL_EAGAIN
 * when the function turned it off (shoal_rpc_ctx_set_inline).
 */
SHOAL_API int shoal_rpc_ctx_recv(shoal_rpc_ctx *ctx, void **msg, size_t *len);
/* Sends a response, waiting while the client has its window's worth unconsumed (the
 * window its START announced: SHOAL_RPC_WINDOW, 16 from a client that announced none).
 * Returns 0, SHOAL_ECLOSED (cancelled, deadline passed, client gone), SHOAL_EMSGSIZE. */
SHOAL_API int shoal_rpc_ctx_send(shoal_rpc_ctx *ctx, const void *msg, size_t len);
/* shoal_rpc_ctx_send of a response that more responses follow at once: while the
 * handler's thread reads its connection (direct receive), the response may wait for
 * the next one in the connection's buffer, to leave with it in one write (shm://,
 * ipc://, tcp://); the last of the burst goes with shoal_rpc_ctx_send, which writes
 * them all (so does the handler's next receive that has to wait). Returns as
 * shoal_rpc_ctx_send. */
SHOAL_API int shoal_rpc_ctx_send_more(shoal_rpc_ctx *ctx, const void *msg, size_t len);
/* Non-zero when shoal_rpc_ctx_send would not wait for the client's window: it has
 * room for another response (or the call is over, and a send fails at once). A handler
 * that must not block (it also has requests to read) sends only then and leaves the
 * rest to another thread. Only the sending thread uses up the room: when one thread
 * sends on the call, the answer stays true until it sends. */
SHOAL_API int shoal_rpc_ctx_send_ready(const shoal_rpc_ctx *ctx);
/* How many responses shoal_rpc_ctx_send would send now without waiting for the
 * client's window (as shoal_rpc_ctx_send_ready, counted: a handler with several to
 * send asks once); SHOAL_RPC_WINDOW when the call is over (a send fails at once), 0
 * for a NULL ctx. */
SHOAL_API int shoal_rpc_ctx_send_room(const shoal_rpc_ctx *ctx);
/* Non-zero when shoal_rpc_ctx_recv would not wait: a request is there, or the
 * requests ended, or the call is over. */
SHOAL_API int shoal_rpc_ctx_recv_ready(const shoal_rpc_ctx *ctx);
/*
 * Direct receive (on: non-zero), for a streaming handler that reads its requests one
 * after another and does little between two: while its call is the only one on its
 * connection and the transport allows it (shm://, ipc://, tcp://; not tls+tcp://),
 * the handler's thread reads the connection itself — no hand-off from the server's
 * loop to the handler, and the client's request wakes the handler directly (over
 * shm://, after its spin, none at all). The
 * thread takes the connection when it would wait in shoal_rpc_ctx_recv (or in
 * shoal_rpc_ctx_send, for the client's window) and keeps it between two receives;
 * it gives it back to the loop when the handler returns, when a frame of another call
 * arrives, or when direct receive is turned off. Meanwhile nobody else reads the
 * connection: turn it off before the handler waits for anything but its own call
 * (another thread's work that needs the client's window, say), and on again after.
 * Cancellation, the deadline, a client gone and flow control work as without it.
 * Only on the call's handler thread. Returns 0, or SHOAL_EINVAL (ctx NULL, or another
 * thread).
 */
SHOAL_API int shoal_rpc_ctx_set_direct(shoal_rpc_ctx *ctx, int on);
/* A function given a streaming call's requests in inline receive: the request (free
 * msg with free()), whether another one is queued behind it (more), and the arg given
 * to shoal_rpc_ctx_set_inline. Returns 0 to go on, non-zero to turn inline receive off
 * (the requests after this one queue for shoal_rpc_ctx_recv again, and the handler's
 * thread takes over: its receive returns SHOAL_EAGAIN). */
typedef int (*shoal_rpc_msg_fn)(shoal_rpc_ctx *ctx, void *msg, size_t len, int more,
                                void *arg);
/*
 * Inline receive (fn non-NULL), for a streaming handler whose work per request is
 * short and never blocks: the call's requests are no longer queued for
 * shoal_rpc_ctx_recv but given to fn, in order and one at a time, on the thread that
 * reads the connection (the server's loop, as a unary handler runs there; those
 * already queued, at once on the calling thread) — no hand-off to the handler's
 * thread, and one thread can serve many connections. fn may send
 * (shoal_rpc_ctx_send, when shoal_rpc_ctx_send_ready says it would not wait) and
 * must not wait for anything else. Meanwhile shoal_rpc_ctx_recv waits for the end: it
 * returns 0 once the requests ended and fn has returned for the last of them,
 * SHOAL_ECLOSED once the call ended (no fn running any more either), or SHOAL_EAGAIN,
 * once, when fn turned inline receive off (the handler's thread then does what fn
 * left, and receives the requests after it, or turns inline receive on again). NULL
 * turns it off, after a fn running returned. Cancellation, the deadline, a client
 * gone and flow control work as without it (the window returns as fn takes the
 * requests). Only on the call's handler thread, for a call with a stream of
 * requests, and on a connection whose transport does not keep responses for a later
 * write or whose loop writes the responses of its turn on a connection together too
 * (shm://, tcp://, tls+tcp://; over ipc:// a handler in direct receive writes the
 * responses to a batch together, which the loop's thread cannot). Returns 0, or
 * SHOAL_EINVAL.
 */
SHOAL_API int shoal_rpc_ctx_set_inline(shoal_rpc_ctx *ctx, shoal_rpc_msg_fn fn,
                                       void *arg);
/* Time left until the call's deadline (SHOAL_FOREVER: none; 0: passed). */
SHOAL_API shoal_duration shoal_rpc_ctx_time_remaining(const shoal_rpc_ctx *ctx);
/* Non-zero once the call was cancelled, its deadline passed or its client died. */
SHOAL_API int shoal_rpc_ctx_cancelled(const shoal_rpc_ctx *ctx);
/* The request metadata. */
SHOAL_API const shoal_rpc_md *shoal_rpc_ctx_metadata(const shoal_rpc_ctx *ctx);
/* "pkg.Service/Method" of the call. */
SHOAL_API const char *shoal_rpc_ctx_method(const shoal_rpc_ctx *ctx);
/* Adds a response header (before the first send) or a trailer. Returns 0,
 * SHOAL_EINVAL (bad pair; a header after the first send) or SHOAL_ENOMEM. */
SHOAL_API int shoal_rpc_ctx_add_header(shoal_rpc_ctx *ctx, const char *key,
                                       const char *value);
SHOAL_API int shoal_rpc_ctx_add_trailer(shoal_rpc_ctx *ctx, const char *key,
                                        const char *value);
/* Sets the detail message of the status the handler returns. */
SHOAL_API void shoal_rpc_ctx_set_detail(shoal_rpc_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
