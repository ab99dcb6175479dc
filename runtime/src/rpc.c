/*
 * rpc.c — what both sides of a service call share: status codes, metadata, and the
 * state machine of one call.
 *
 * A call is a multiplexed stream on a connection, identified by a number the client
 * picks. Frames (rpc_wire.c) move it along:
 *
 *   client                               server
 *   START (method, timeout, metadata[, first message][, END])  ->  handler starts
 *   MESSAGE* [END] / HALF_CLOSE   ->           <-  HEADERS? MESSAGE*
 *   WINDOW (credit returned)     <->           <-  TRAILERS (code, detail, metadata)
 *   CANCEL                        ->  (client gave up: cancel, deadline, close)
 *
 * Each side keeps an rpc_call: an inbox of received messages (private heap copies),
 * whether the peer half-closed, its send credit, and, once known, the status. Flow
 * control is by message count: each side announces its receive window (a client in
 * START, a server in ACCEPT; SHOAL_RPC_WINDOW or the transport's less, rpc__own_window;
 * 16 for a peer that announces none: rpc__peer_window), a side starts with the other's
 * window as credits, spends one per message sent, and the receiver returns credit in a
 * WINDOW frame each time it has consumed half its window — so neither side ever queues
 * more than a window per call, and a unary call needs no WINDOW frame at all. A sender
 * that used its whole window (seen by the receiver as a window's worth of messages
 * unreturned, taken or queued) gets back, besides, all that was consumed once the
 * receiver's inbox is empty: a peer pipelining batches of a window then has its whole
 * credit again with each batch's answers, not half of it a batch later (which would split
 * each batch in two round trips); a sender that never fills the window never needs this
 * frame. A call ends once: the first of TRAILERS, a local deadline, a cancel, a dead
 * connection or an invalid message sets its code and detail, and later causes are
 * ignored.
 *
 * The client (rpc_client.c) and the server (rpc_server.c) wrap this state in their own
 * handles and differ in who reads the connection: on the client the waiting threads
 * take turns reading it; on the server the event loop reads it.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

/* ---- status codes ------------------------------------------------------------------ */

static const char *const code_names[] = {"OK",
                                         "CANCELLED",
                                         "UNKNOWN",
                                         "INVALID_ARGUMENT",
                                         "DEADLINE_EXCEEDED",
                                         "NOT_FOUND",
                                         "ALREADY_EXISTS",
                                         "PERMISSION_DENIED",
                                         "RESOURCE_EXHAUSTED",
                                         "FAILED_PRECONDITION",
                                         "ABORTED",
                                         "OUT_OF_RANGE",
                                         "UNIMPLEMENTED",
                                         "INTERNAL",
                                         "UNAVAILABLE",
                                         "DATA_LOSS",
                                         "UNAUTHENTICATED"};

#define N_CODES ((int)(sizeof(code_names) / sizeof(code_names[0])))

const char *shoal_rpc_code_name(int code)
{
    return code >= 0 && code < N_CODES ? code_names[code] : NULL;
}

int shoal_rpc_code_from_name(const char *name)
{
    for (int i = 0; name && i < N_CODES; i++)
        if (strcmp(name, code_names[i]) == 0)
            return i;
    return -1;
}

/* ---- metadata ---------------------------------------------------------------------- */

int shoal_rpc_md_add(shoal_rpc_md *md, const char *key, const char *value)
{
    if (!md || !key || !value || !*key || strlen(key) > SHOAL_RPC_KEY_MAX ||
        strlen(value) > SHOAL_RPC_VALUE_MAX)
        return shoal__err(SHOAL_EINVAL, "rpc metadata: NULL, empty or over-long pair");
    struct shoal_rpc_kv *items = realloc(md->items, (md->count + 1) * sizeof(*items));
    if (!items)
        return shoal__err(SHOAL_ENOMEM, "rpc metadata: out of memory");
    md->items = items;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return shoal__err(SHOAL_ENOMEM, "rpc metadata: out of memory");
    }
    items[md->count].key = k;
    items[md->count].value = v;
    md->count++;
    return 0;
}

const char *shoal_rpc_md_get(const shoal_rpc_md *md, const char *key)
{
    for (size_t i = 0; md && key && i < md->count; i++)
        if (strcmp(md->items[i].key, key) == 0)
            return md->items[i].value;
    return NULL;
}

void shoal_rpc_md_clear(shoal_rpc_md *md)
{
    if (!md || !md->items)
        return;
    for (size_t i = 0; i < md->count; i++) {
        free(md->items[i].key);
        free(md->items[i].value);
    }
    free(md->items);
    md->items = NULL;
    md->count = 0;
}

/* ---- deadlines --------------------------------------------------------------------- */

static __thread int64_t current_deadline = INT64_MAX;

int64_t rpc__inherited_deadline(void)
{
    return current_deadline;
}

void rpc__set_current_deadline(int64_t deadline)
{
    current_deadline = deadline;
}

shoal_duration rpc__until(int64_t deadline, shoal_duration cap)
{
    if (deadline == INT64_MAX)
        return cap;
    int64_t left = deadline - shoal__now_ns();
    if (left < 0)
        left = 0;
    return left < cap ? left : cap;
}

void rpc__cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, shoal_duration wait)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + wait;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- one call ---------------------------------------------------------------------- */

void rpc__call_init(rpc_call *c, pthread_mutex_t *mu, pthread_cond_t *cv, rpc_conn *conn,
                    uint64_t id, const shoal_rpc_method *m, int64_t deadline, int window)
{
    /* Field by field: of the detail buffer only the first byte needs clearing. */
    c->mu = mu;
    c->cv = cv;
    c->conn = conn;
    c->id = id;
    c->m = m;
    c->deadline = deadline;
    c->head = c->tail = NULL;
    c->peer_done = 0;
    c->consumed = c->queued = 0;
    c->starved = 0;
    c->credit = c->window = window;
    c->send_closed = c->sent = c->code = c->quiet = c->credit_wait = 0;
    __atomic_store_n(&c->done, 0, __ATOMIC_RELAXED); /* read without mu: rpc_server.c */
    c->detail[0] = 0;
}

/* A message and its payload are one heap block, the payload first (the user frees it
 * with free()), the rpc_msg after it at an aligned offset. */
#define MSG_OFFSET(len) (((len) + _Alignof(rpc_msg) - 1) & ~(_Alignof(rpc_msg) - 1))

rpc_msg *rpc__msg_new(const void *data, size_t len)
{
    uint8_t *block = malloc(MSG_OFFSET(len) + sizeof(rpc_msg));
    if (!block) {
        shoal__err(SHOAL_ENOMEM, "rpc call: out of memory for a message");
        return NULL;
    }
    rpc_msg *msg = (rpc_msg *)(block + MSG_OFFSET(len));
    msg->next = NULL;
    msg->len = len;
    msg->data = block;
    if (len)
        memcpy(block, data, len);
    return msg;
}

void rpc__call_append(rpc_call *c, rpc_msg *head, rpc_msg *tail, unsigned n)
{
    if (c->tail)
        c->tail->next = head;
    else
        c->head = head;
    c->tail = tail;
    c->queued += n;
    if (!c->quiet)
        pthread_cond_broadcast(c->cv);
}

int rpc__call_push(rpc_call *c, const void *data, size_t len)
{
    rpc_msg *msg = rpc__msg_new(data, len);
    if (!msg)
        return SHOAL_ENOMEM;
    rpc__call_append(c, msg, msg, 1);
    return 0;
}

uint32_t rpc__call_consumed(rpc_call *c, unsigned n)
{
    unsigned window = (unsigned)rpc__own_window(c->conn);
    if (c->consumed + c->queued >= window)
        c->starved = 1; /* the peer has no credit left */
    c->queued -= n;
    c->consumed += n;
    /* Half a window consumed; or, the peer having run out of credit, the inbox empty:
     * all that was consumed goes back. `starved` outlives an inbox emptied by a
     * half-window return (the peer may still send the rest of the batch it had no
     * credit for: that rest's end returns it). */
    int half = c->consumed >= window / 2, rest = !c->head && c->starved;
    if (!(half || rest) || c->peer_done || c->done)
        return 0;
    uint32_t credit = c->consumed;
    c->consumed = 0;
    if (!half)
        c->starved = 0;
    return credit;
}

int rpc__call_pop(rpc_call *c, rpc_msg **msg, uint32_t *credit)
{
    *credit = 0;
    if (!c->head)
        return 0;
    *msg = c->head;
    c->head = c->head->next;
    if (!c->head)
        c->tail = NULL;
    *credit = rpc__call_consumed(c, 1);
    return 1;
}

int rpc__msg_hand_out(rpc_msg *m, void **msg, size_t *len)
{
    *msg = m->data; /* m lives inside this block: it goes with it */
    *len = m->len;
    return 1;
}

void rpc__msg_free(rpc_msg *m)
{
    if (m)
        free(m->data);
}

void rpc__call_end_str(rpc_call *c, int code, const char *detail, size_t len)
{
    if (c->done)
        return;
    __atomic_store_n(&c->done, 1, __ATOMIC_RELAXED);
    c->peer_done = 1;
    c->code = code;
    if (len >= sizeof(c->detail))
        len = sizeof(c->detail) - 1;
    memcpy(c->detail, detail, len);
    c->detail[len] = 0;
    pthread_cond_broadcast(c->cv);
}

void rpc__call_end(rpc_call *c, int code, const char *fmt, ...)
{
    if (c->done)
        return;
    char detail[SHOAL_RPC_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    rpc__call_end_str(c, code, detail, n < 0 ? 0 : (size_t)n);
}

void rpc__call_drain(rpc_call *c)
{
    while (c->head) {
        rpc_msg *m = c->head;
        c->head = m->next;
        rpc__msg_free(m);
    }
    c->tail = NULL;
    c->queued = 0;
}

int rpc__call_frame(rpc_call *c, const rpc_frame *f)
{
    switch (f->type) {
    case RPC_F_MESSAGE:
        if (c->peer_done)
            return 1; /* after the end: ignored */
        if (f->has_payload && rpc__call_push(c, f->payload, f->payload_len) < 0)
            rpc__call_end(c, SHOAL_RPC_RESOURCE_EXHAUSTED, "out of memory for a message");
        if (f->flags & RPC_FLAG_END)
            c->peer_done = 1;
        if (c->quiet && !c->peer_done)
            return 1; /* nobody waits for it */
        break;
    case RPC_F_HALF_CLOSE:
        c->peer_done = 1;
        break;
    case RPC_F_WINDOW:
        if (f->credit > (uint32_t)c->window)
            break;
        /* atomically: a server's stream takes its credit without mu (rpc_server.c) */
        __atomic_fetch_add(&c->credit, (int)f->credit, __ATOMIC_RELAXED);
        if (c->quiet && !c->credit_wait)
            return 1; /* no sender waits for it */
        break;
    default:
        return 0;
    }
    pthread_cond_broadcast(c->cv);
    return 1;
}

/* ---- sending ----------------------------------------------------------------------- */

/* Encodes f and sends it: at once, or (later) through conn->send_later; the
 * transport encodes it itself when it can (conn->send_frame). */
static int send_frame(rpc_conn *conn, const rpc_frame *f, const shoal_rpc_md *md,
                      shoal_duration timeout, int later)
{
    if (conn->send_frame)
        return conn->send_frame(conn, f, md, later, timeout);
    uint8_t stack[RPC_FRAME_STACK];
    uint8_t *buf = stack;
    size_t len;
    int rc = rpc__frame_encode(f, md, &buf, sizeof(stack), &len);
    if (rc < 0)
        return rc;
    rc = later && conn->send_later ? conn->send_later(conn, buf, len, timeout)
                                   : conn->ops->send(conn, buf, len, timeout);
    if (buf != stack)
        free(buf);
    return rc;
}

int rpc__send(rpc_conn *conn, const rpc_frame *f, const shoal_rpc_md *md,
              shoal_duration timeout)
{
    return send_frame(conn, f, md, timeout, 0);
}

int rpc__send_later(rpc_conn *conn, const rpc_frame *f, const shoal_rpc_md *md,
                    shoal_duration timeout)
{
    return send_frame(conn, f, md, timeout, 1);
}

int rpc__send_simple_later(rpc_conn *conn, uint64_t id, uint32_t type, uint32_t credit,
                           int later)
{
    rpc_frame f = {.call = id, .type = type, .credit = credit};
    return send_frame(conn, &f, NULL, SHOAL_SEC(1), later);
}

int rpc__send_simple(rpc_conn *conn, uint64_t id, uint32_t type, uint32_t credit)
{
    return rpc__send_simple_later(conn, id, type, credit, 0);
}
