/*
 * rpc_internal.h — what the parts of the services share: the frame every transport
 * carries (rpc_wire.c), the connection a transport gives the call machinery (rpc.c),
 * and the transports' entry points (rpc_shm.c, rpc_nng.c).
 */
#ifndef SHOAL_RPC_INTERNAL_H
#define SHOAL_RPC_INTERNAL_H

#include <pthread.h>

#include "internal.h"

/* ---- frames (rpc_wire.c) ----------------------------------------------------------- */

/* What a frame says. Clients send START, MESSAGE, HALF_CLOSE, CANCEL, WINDOW; servers
 * send ACCEPT (once per connection), HEADERS, MESSAGE, TRAILERS, WINDOW. */
enum rpc_frame_type {
    RPC_F_ACCEPT = 1,     /* the server took the connection */
    RPC_F_START = 2,      /* a new call: method, timeout, metadata[, payload][, END] */
    RPC_F_MESSAGE = 3,    /* a message of the call[, END] */
    RPC_F_HALF_CLOSE = 4, /* no more messages from this side */
    RPC_F_HEADERS = 5,    /* response headers (metadata) */
    RPC_F_TRAILERS = 6,   /* the end of the call: code, detail, metadata */
    RPC_F_CANCEL = 7,     /* the client gave the call up */
    RPC_F_WINDOW = 8,     /* the sender of this frame consumed `credit` more messages */
    RPC_F_AUTH = 9        /* the client's answer to the challenge ACCEPT carried */
};
#define RPC_F_TYPE_MAX 9

#define RPC_FLAG_END 1 /* with START / MESSAGE: the sender half-closes after it */

/* A decoded frame; pointers point into the decoded buffer. */
typedef struct rpc_frame {
    uint64_t call;
    uint32_t type;
    uint32_t flags;
    const char *method; /* START: "pkg.Service/Method", not NUL-terminated */
    size_t method_len;
    int64_t timeout_ns; /* START; 0: none */
    const uint8_t *payload;
    size_t payload_len;
    int has_payload;
    uint32_t code; /* TRAILERS */
    const char *detail;
    size_t detail_len;
    uint32_t credit; /* WINDOW */
} rpc_frame;

/* At least the encoded size of f and md (may be NULL). */
size_t rpc__frame_bound(const rpc_frame *f, const shoal_rpc_md *md);
/* Encodes f and md (may be NULL) at buf, which has room for rpc__frame_bound()
 * bytes; returns the encoded length. */
size_t rpc__frame_write(uint8_t *buf, const rpc_frame *f, const shoal_rpc_md *md);
/* Encodes f and md (may be NULL): into *out when it fits in cap bytes (*out: a
 * buffer of the caller's, NULL when cap is 0), else into a new heap buffer that *out
 * then points to. Returns 0 or SHOAL_ENOMEM. */
int rpc__frame_encode(const rpc_frame *f, const shoal_rpc_md *md, uint8_t **out,
                      size_t cap, size_t *len);
/* The stack buffer rpc__send encodes into: most frames fit. */
#define RPC_FRAME_STACK 1024
/* Decodes buf into f, appending its metadata to md when md is not NULL. Returns 0 or
 * SHOAL_EINVALID_DATA (shoal_errdetail() says what is wrong). */
int rpc__frame_decode(const uint8_t *buf, size_t len, rpc_frame *f, shoal_rpc_md *md);

/* ---- connections ------------------------------------------------------------------- */

typedef struct rpc_conn rpc_conn;

/* What a transport does for a connection. send and recv may be called from several
 * threads at once. */
typedef struct rpc_conn_ops {
    /* Sends one frame: 0, SHOAL_ETIMEDOUT, SHOAL_EMSGSIZE, or a code meaning the
     * connection is gone (SHOAL_EEOF, SHOAL_EPEERDEAD, SHOAL_ECLOSED, ...). */
    int (*send)(rpc_conn *c, const void *buf, size_t len, shoal_duration timeout);
    /* Client side: receives one frame into the connection's private buffer (*buf is
     * valid until the next recv; one thread receives at a time): 1, 0 when the timeout
     * expired, or a negative code when the connection is gone or broken. With a
     * timeout of 0 a connection gone may show only at the next receive that waits. */
    int (*recv)(rpc_conn *c, const uint8_t **buf, size_t *len, shoal_duration timeout);
    /* Server side: stops watching c on the server's loop (on the loop's thread). */
    void (*stop)(rpc_conn *c);
    /* Frees the connection (server side: after stop). */
    void (*close)(rpc_conn *c);
    /* Server side, tls+tcp:// (NULL elsewhere): 1 when the client presented a
     * certificate that chains to the server's CA, else 0. Valid once a frame of the
     * client arrived (the TLS handshake is over). */
    int (*peer_verified)(rpc_conn *c);
    /* Server side, shm://, ipc://, tcp:// (NULL elsewhere): watches c on the server's
     * loop again after stop (or unwatch), on the loop's thread; 0 or a negative code.
     * Between the two, a handler's thread reads c with recv (rpc_server.c, "direct
     * receive"). */
    int (*watch)(rpc_conn *c);
    /* Server side, with watch (NULL: stop does it): stops watching c for a handler's
     * thread to read it (rpc__server_handoff), on the loop's thread; unlike stop it
     * leaves the connection open. */
    void (*unwatch)(rpc_conn *c);
} rpc_conn_ops;

struct rpc_server_conn; /* the server's bookkeeping (rpc.c) */

struct rpc_conn {
    const rpc_conn_ops *ops;
    int needs_auth; /* server side, set by the transport: challenge first */
    int needs_cert; /* ... and the client must have a verified TLS certificate */
    void *t;        /* the transport's state */
    char peer[64];  /* for messages: "shm pipe x", "tcp 1.2.3.4:5", ... */
    struct rpc_server_conn *srv; /* server side: rpc.c's bookkeeping */
    int peer_window; /* client side: the server's receive window (its ACCEPT's credit,
                        rpc__peer_window), each call's first credit */
    /* Set by the transport (0: SHOAL_RPC_WINDOW): the receive window this side
     * announces on c, when the transport holds fewer frames in flight than that
     * without blocking their sender (rpc__own_window). */
    int window;
    /* Optional, set by the transport (NULL: rpc__send_later sends at once): keeps one
     * frame (a copy) to go out, in order, with the connection's next send or flush.
     * Server side: also when the thread reading c in direct receive finds nothing more
     * to read, or when c is watched again or stopped — so the replies to a batch of
     * requests at hand leave in one write; only that thread calls it, for a response
     * while it has a further request at hand (the wait is bounded by handling that),
     * for a WINDOW frame always (it leaves with the response to the request taken, or
     * before that thread waits). Client side (shoal_rpc_call_send_more, and WINDOW
     * frames while more responses are at hand or on a pipelining call): rpc_client.c
     * flushes before any thread waits on the channel. Same returns as ops->send (a
     * later failure shows at the next send or receive). */
    int (*send_later)(rpc_conn *c, const void *buf, size_t len, shoal_duration timeout);
    /* With send_later: writes the frames it kept now. 0 or a code of ops->send. */
    int (*flush)(rpc_conn *c, shoal_duration timeout);
    /* Optional, set by the transport (NULL: rpc__send encodes into a buffer and calls
     * ops->send or send_later): sends frame f and md as ops->send (later: as
     * send_later) would send their encoding, encoding it straight into the frames the
     * transport keeps when it keeps it (shm://: no copy of the encoded frame). Same
     * returns as ops->send, and SHOAL_ENOMEM. */
    int (*send_frame)(rpc_conn *c, const rpc_frame *f, const shoal_rpc_md *md, int later,
                      shoal_duration timeout);
    /* Client side, optional (NULL: not known): 1 when a frame is at hand, one that a
     * recv returns without reading the connection (the rest of a shm:// batch
     * message), else 0. A reader whose call got what it waits for stops there when
     * nothing is at hand (rpc_client.c, pump), instead of a receive that finds none. */
    int (*at_hand)(rpc_conn *c);
    /* Server side, set by the transport: the responses sent while the loop's thread
     * reads c leave together too (shm://, tcp://), so inline receive keeps them together
     * and is offered despite send_later. */
    int turn_batches;
};

/* ---- calls (rpc.c), the state both sides of a call keep ------------------------------
 */

/* A message received, in a private heap copy: one block holding the payload (data,
 * first, so that it is handed to the user as it is) and this header. */
typedef struct rpc_msg {
    struct rpc_msg *next;
    size_t len;
    void *data; /* the block's start */
} rpc_msg;

/*
 * One side of a call. The same flow control runs on both sides: `credit` is how many
 * messages this side may still send (the peer's announced window, `window`, at the
 * start, plus what the peer's WINDOW frames return); `consumed` counts the messages taken
 * from the inbox since this side last returned credit, `queued` the messages in the
 * inbox, `starved` whether the peer used its whole window since the inbox was last
 * emptied with credit returned. All fields are guarded by *mu; on the server, credit and
 * done are also read without it, and credit taken (rpc_server.c, ctx_send): both are
 * changed atomically.
 */
typedef struct rpc_call {
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    rpc_conn *conn;
    uint64_t id;
    const shoal_rpc_method *m;
    int64_t deadline; /* CLOCK_MONOTONIC ns; INT64_MAX: none */
    rpc_msg *head, *tail;
    int peer_done; /* the peer sends no more messages */
    unsigned consumed, queued;
    int starved;
    int credit;
    int window;      /* the peer's receive window: this side's first credit, and the
                      * most a WINDOW frame may return */
    int send_closed; /* this side half-closed */
    int sent;        /* server: the response of a single-response method was sent */
    int done;        /* the status is known: code, detail */
    int code;
    int quiet;       /* messages go to a function, not to a waiting reader: their arrival
                      * wakes nobody (the server's inline receive) */
    int credit_wait; /* threads waiting for credit (server side) */
    char detail[SHOAL_RPC_DETAIL_MAX];
} rpc_call;

/* window: the peer's receive window (rpc__peer_window), the call's first credit. */
void rpc__call_init(rpc_call *c, pthread_mutex_t *mu, pthread_cond_t *cv, rpc_conn *conn,
                    uint64_t id, const shoal_rpc_method *m, int64_t deadline, int window);

/* The window a peer that announces none gets (a build that predates the announcement
 * had this one window on both sides), and the most an announcement is taken for. */
#define RPC_WINDOW_UNANNOUNCED 16
#define RPC_WINDOW_MAX         4096
/* The most messages of a call transport c holds without blocking their sender:
 * rpc_conn.window, or RPC_WINDOW_MAX when the transport sets none. A sender with credit
 * must never find the transport full: it would block there, and — both sides' senders
 * blocked on their full directions, nobody reading — the connection would be lost at
 * the send's timeout instead of the sender waiting for credit while its reads go on. */
static inline int rpc__transport_window(const rpc_conn *c)
{
    return c->window > 0 && c->window < RPC_WINDOW_MAX ? c->window : RPC_WINDOW_MAX;
}
/* The window a side sends by on c: what the peer announced (ACCEPT's or START's
 * credit; 0: none, RPC_WINDOW_UNANNOUNCED), at most rpc__transport_window — a peer
 * announcing more (its transport's limit unknown to it, or a hostile one) must not
 * make this side's sends block on a full transport (over shm://, the server's loop:
 * every connection's turn). */
static inline int rpc__peer_window(const rpc_conn *c, uint32_t announced)
{
    uint32_t want = announced ? announced : RPC_WINDOW_UNANNOUNCED;
    int most = rpc__transport_window(c);
    return want < (uint32_t)most ? (int)want : most;
}
/* The receive window this side announces on c, and returns credit by: SHOAL_RPC_WINDOW,
 * at most rpc__transport_window. */
static inline int rpc__own_window(const rpc_conn *c)
{
    int most = rpc__transport_window(c);
    return SHOAL_RPC_WINDOW < most ? SHOAL_RPC_WINDOW : most;
}
/* The receive window of shm:// connections (rpc_shm.c, "Flow control"): a pipe holds
 * twice as many messages. */
#define RPC_SHM_WINDOW 32
/* A message holding a copy of data[len], or NULL (SHOAL_ENOMEM recorded). */
rpc_msg *rpc__msg_new(const void *data, size_t len);
/* Appends a copy of a received payload (mu held). Returns 0 or SHOAL_ENOMEM. */
int rpc__call_push(rpc_call *c, const void *data, size_t len);
/* Appends the n received messages head..tail, linked by next (mu held), waking the
 * call's waiters unless it is quiet. */
void rpc__call_append(rpc_call *c, rpc_msg *head, rpc_msg *tail, unsigned n);
/* Takes the next message (mu held): 1 with *msg, 0 when none is queued. Returns credit
 * to the peer when half a window was consumed, or when this message empties the inbox
 * and the peer had used its whole window (*credit is then set to the frame's credit,
 * to send after unlocking). */
int rpc__call_pop(rpc_call *c, rpc_msg **msg, uint32_t *credit);
/* Counts n messages, taken off the inbox, as consumed (mu held): the credit to return
 * to the peer now (rpc__call_pop's rule), or 0. */
uint32_t rpc__call_consumed(rpc_call *c, unsigned n);
/* Gives m's payload to the user (*msg, to free with free(), which frees m too;
 * *len). Returns 1. */
int rpc__msg_hand_out(rpc_msg *m, void **msg, size_t *len);
/* Frees a message. */
void rpc__msg_free(rpc_msg *m);
/* Ends the call with code and detail unless already done (mu held); wakes waiters. */
void rpc__call_end(rpc_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* rpc__call_end with a detail of len bytes taken as they are (no formatting). */
void rpc__call_end_str(rpc_call *c, int code, const char *detail, size_t len);
/* Frees the queued messages (mu held or the call unreachable). */
void rpc__call_drain(rpc_call *c);
/* Applies a frame common to both sides (MESSAGE, HALF_CLOSE, WINDOW) (mu held). Returns
 * 1 when handled, 0 when the frame is of another type. */
int rpc__call_frame(rpc_call *c, const rpc_frame *f);
/* Encodes and sends one frame on conn. */
int rpc__send(rpc_conn *conn, const rpc_frame *f, const shoal_rpc_md *md,
              shoal_duration timeout);
/* rpc__send through conn->send_later (see struct rpc_conn) when it has one. */
int rpc__send_later(rpc_conn *conn, const rpc_frame *f, const shoal_rpc_md *md,
                    shoal_duration timeout);
/* Sends a frame of `type` with no body for call id (later: through send_later). */
int rpc__send_simple_later(rpc_conn *conn, uint64_t id, uint32_t type, uint32_t credit,
                           int later);
/* Sends a frame of `type` with no body for call id. */
int rpc__send_simple(rpc_conn *conn, uint64_t id, uint32_t type, uint32_t credit);
/* Waits on cv (mu held) for at most `wait`. */
void rpc__cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, shoal_duration wait);

/* Links x at the head of the doubly linked list *head / unlinks it (next, prev). */
#define RPC_LINK(head, x)                                                                \
    do {                                                                                 \
        (x)->prev = NULL;                                                                \
        (x)->next = (head);                                                              \
        if (head)                                                                        \
            (head)->prev = (x);                                                          \
        (head) = (x);                                                                    \
    } while (0)
#define RPC_UNLINK(head, x)                                                              \
    do {                                                                                 \
        if ((x)->prev)                                                                   \
            (x)->prev->next = (x)->next;                                                 \
        else                                                                             \
            (head) = (x)->next;                                                          \
        if ((x)->next)                                                                   \
            (x)->next->prev = (x)->prev;                                                 \
    } while (0)

/* How long to wait from now until the deadline, at most `cap`. */
shoal_duration rpc__until(int64_t deadline, shoal_duration cap);
/* The deadline of the handler running on this thread (INT64_MAX: none). */
int64_t rpc__inherited_deadline(void);
void rpc__set_current_deadline(int64_t deadline);

/* ---- the transports' side of the server (rpc.c) ------------------------------------ */

/* A transport made a connection: the server adopts it (and sends ACCEPT). */
int rpc__server_conn_new(shoal_rpc_server *s, rpc_conn *c);
/* A frame arrived on c (the buffer stays the caller's). On the loop's thread. */
void rpc__server_frame(rpc_conn *c, const uint8_t *buf, size_t len);
/* Around a turn of frames on c (on the loop's thread): between them the requests of a
 * call in inline receive are only queued, and turn_end runs the function for each
 * call that has some — for all of them in a row, so that it sees the later ones at
 * hand (its `more`) and answers them together. */
void rpc__server_turn_begin(rpc_conn *c);
void rpc__server_turn_end(rpc_conn *c);
/* c is gone (peer closed or died, or the server is shutting down): stops watching
 * it, cancels its calls; c->ops->close runs once the last handler using it has
 * returned. On the loop's thread; the transport calls it once. */
void rpc__server_conn_lost(rpc_conn *c);
/* After a turn of frames on c (on the loop's thread, c watched): when c carries one
 * call only, in direct receive, stops watching c (ops->unwatch, else ops->stop) and hands
 * it to that call's handler thread, which reads it itself until it gives it back
 * (ops->watch). Returns 1 when c was handed over, else 0. */
int rpc__server_handoff(rpc_conn *c);
shoal_loop *rpc__server_loop(shoal_rpc_server *s);

/* A listener the server closes when destroyed. */
typedef struct rpc_listener {
    void (*close)(struct rpc_listener *l);
    struct rpc_listener *next;
} rpc_listener;
void rpc__server_add_listener(shoal_rpc_server *s, rpc_listener *l);

/* ---- reflection (rpc_reflect.c) --------------------------------------------------- */

/* A FileDescriptorSet registered with shoal_rpc_server_add_descriptors. */
typedef struct rpc_descriptors {
    const void *set;
    size_t len;
} rpc_descriptors;
/* 0 when set[len] is a sequence of field-1 length-delimited entries, else -1. */
int rpc__descriptors_check(const void *set, size_t len);
/* Fills *svc with the reflection service of server s; returns svc. */
const shoal_rpc_service *rpc__reflection_service(shoal_rpc_service *svc,
                                                 shoal_rpc_server *s);
/* What the reflection handlers read, under the server's mutex (lock / unlock). */
void rpc__server_lock(shoal_rpc_server *s);
void rpc__server_unlock(shoal_rpc_server *s);
const shoal_rpc_service *const *rpc__server_services(shoal_rpc_server *s, size_t *n);
const rpc_descriptors *rpc__server_descriptors(shoal_rpc_server *s, size_t *n);

/* ---- the token challenge-response (rpc_auth.c) ------------------------------------ */

#define RPC_CHALLENGE_LEN 32
void rpc__hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len,
                      uint8_t out[32]);
int rpc__auth_challenge(uint8_t challenge[RPC_CHALLENGE_LEN]);
/* The client's answer: HMAC-SHA256(token, label || challenge). */
void rpc__auth_answer(const char *token, const uint8_t *challenge, size_t len,
                      uint8_t out[32]);
/* 1 when answer is right (constant time), else 0. */
int rpc__auth_check(const char *token, const uint8_t challenge[RPC_CHALLENGE_LEN],
                    const uint8_t *answer, size_t len);
/* The server's token (NULL: none). */
const char *rpc__server_token(shoal_rpc_server *s);

/* The server's TLS settings (shoal_rpc_server_set_tls). */
typedef struct rpc_tls {
    char *cert_file, *key_file, *ca_file; /* ca_file may be NULL */
    int require_client_cert;
} rpc_tls;
/* NULL when shoal_rpc_server_set_tls was not called. */
const rpc_tls *rpc__server_tls(shoal_rpc_server *s);

/* shoal_pipe_recv without waiting and without asking after the peer (pipe.c): 0, or
 * SHOAL_EAGAIN when nothing is there even if the peer is gone (for a caller that
 * learns of that otherwise, as a loop watching the pipe does), SHOAL_EMSGSIZE. */
int shoal__pipe_try_recv(shoal_pipe *p, void *buf, size_t cap, size_t *len);
/* The largest message p's handle may send (pipe.c). */
size_t shoal__pipe_max_msg(const shoal_pipe *p);

/* ---- transports ----------------------------------------------------------------------
 */

int rpc__shm_connect(rpc_conn **out, const char *name,
                     const shoal_rpc_channel_config *cfg);
int rpc__shm_listen(shoal_rpc_server *s, const char *name, const shoal_attr *attr);
int rpc__nng_connect(rpc_conn **out, const char *url,
                     const shoal_rpc_channel_config *cfg);
int rpc__nng_listen(shoal_rpc_server *s, const char *url, const shoal_attr *attr);

#endif
