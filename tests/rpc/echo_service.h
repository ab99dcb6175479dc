/*
 * echo_service.h — a small typed service layer over shoal/rpc.h, written the way the
 * schema compiler emits one for
 *
 *   message Note { int32 n = 1; string text = 2 [(shoal.max_len) = 31]; }
 *   service Echo {
 *     rpc Say(Note) returns (Note);                // n + 1, text echoed
 *     rpc Count(Note) returns (stream Note);       // n notes: 0, 1, ..., n - 1
 *     rpc Sum(stream Note) returns (Note);         // the sum of the n's
 *     rpc Chat(stream Note) returns (stream Note); // each note back, n * 2
 *     rpc Fail(Note) returns (Note);               // ends with status n, detail text
 *     rpc Wait(Note) returns (Note);               // waits until cancelled
 *     rpc Relay(Note) returns (Note);              // calls Wait with no deadline of its
 * own rpc Stop(Note) returns (Note);               // stops the server's loop
 *   }
 *
 * A Note travels as its fixed layout; its check is the generated validation (the text
 * is NUL-terminated inside its 32 bytes, n is not negative).
 */
#ifndef ECHO_SERVICE_H
#define ECHO_SERVICE_H

#include <string.h>

#include "shoal.h"

typedef struct Note {
    int32_t n;
    char text[32];
} Note;

static inline int Note_check(const void *msg, size_t len)
{
    const Note *v = msg;
    return len == sizeof(Note) && v->n >= 0 && memchr(v->text, 0, sizeof(v->text)) ? 0
                                                                                   : -1;
}

enum {
    Echo_Say,
    Echo_Count,
    Echo_Sum,
    Echo_Chat,
    Echo_Fail,
    Echo_Wait,
    Echo_Relay,
    Echo_Stop,
    Echo_N_METHODS
};

#define Echo_SERVICE "test.Echo"

/* The methods as clients see them (no handlers). */
#define Echo_METHOD(name, kind, blocking)                                                \
    {                                                                                    \
        name, kind, Note_check, Note_check, NULL, blocking                               \
    }
static const shoal_rpc_method Echo_client[Echo_N_METHODS] = {
    Echo_METHOD("Say", SHOAL_RPC_UNARY, 0),
    Echo_METHOD("Count", SHOAL_RPC_SERVER_STREAMING, 0),
    Echo_METHOD("Sum", SHOAL_RPC_CLIENT_STREAMING, 0),
    Echo_METHOD("Chat", SHOAL_RPC_BIDI_STREAMING, 0),
    Echo_METHOD("Fail", SHOAL_RPC_UNARY, 0),
    Echo_METHOD("Wait", SHOAL_RPC_UNARY, 1),
    Echo_METHOD("Relay", SHOAL_RPC_UNARY, 1),
    Echo_METHOD("Stop", SHOAL_RPC_UNARY, 0)};

/* Server skeleton: the handler table and its context pointer become a service. */
typedef struct Echo_server {
    shoal_rpc_method methods[Echo_N_METHODS];
    shoal_rpc_service service;
} Echo_server;

static inline const shoal_rpc_service *
Echo_service(Echo_server *s, const shoal_rpc_handler h[Echo_N_METHODS], void *arg)
{
    for (int i = 0; i < Echo_N_METHODS; i++) {
        s->methods[i] = Echo_client[i];
        s->methods[i].handler = h[i];
    }
    s->service = (shoal_rpc_service){Echo_SERVICE, s->methods, Echo_N_METHODS, arg};
    return &s->service;
}

/* Client stub: a unary call of method i. Returns the status code. */
static inline int Echo_unary(shoal_rpc_channel *ch, int i, const Note *req, Note *resp,
                             const shoal_rpc_options *opts, char *detail, size_t cap)
{
    void *out;
    size_t len;
    int code = shoal_rpc_unary(ch, Echo_SERVICE, &Echo_client[i], req, sizeof(*req), &out,
                               &len, opts, detail, cap);
    if (code == SHOAL_RPC_OK) {
        memcpy(resp, out, sizeof(*resp)); /* checked: len == sizeof(Note) */
        free(out);
    }
    return code;
}

/* Client stub: starts a streaming call of method i (req: its one request, or NULL). */
static inline int Echo_start(shoal_rpc_call **call, shoal_rpc_channel *ch, int i,
                             const Note *req, const shoal_rpc_options *opts)
{
    return req ? shoal_rpc_call_start_request(call, ch, Echo_SERVICE, &Echo_client[i],
                                              req, sizeof(*req), opts)
               : shoal_rpc_call_start(call, ch, Echo_SERVICE, &Echo_client[i], opts);
}

/* Stream reader: 1 with *out, 0 at the end. */
static inline int Echo_next(shoal_rpc_call *call, Note *out)
{
    void *msg;
    size_t len;
    int rc = shoal_rpc_call_recv(call, &msg, &len);
    if (rc == 1) {
        memcpy(out, msg, sizeof(*out));
        free(msg);
    }
    return rc;
}

static inline int Echo_send(shoal_rpc_call *call, const Note *v)
{
    return shoal_rpc_call_send(call, v, sizeof(*v));
}

/* Server side: the next request of a stream, and a response. */
static inline int Echo_ctx_next(shoal_rpc_ctx *ctx, Note *out)
{
    void *msg;
    size_t len;
    int rc = shoal_rpc_ctx_recv(ctx, &msg, &len);
    if (rc == 1) {
        memcpy(out, msg, sizeof(*out));
        free(msg);
    }
    return rc;
}

static inline int Echo_ctx_send(shoal_rpc_ctx *ctx, const Note *v)
{
    return shoal_rpc_ctx_send(ctx, v, sizeof(*v));
}

#endif
