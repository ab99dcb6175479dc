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
 * control is by message count: a side starts with SHOAL_RPC_WINDOW credits, spends one
 * per message sent, and the receiver returns credit in a WINDOW frame each time it has
 * consumed half a window — so neither side ever queues more than a window per call,
 * and a unary call needs no WINDOW frame at all. A call ends once: the first of
 * TRAILERS, a local deadline, a cancel, a dead connection or an invalid message sets
 * its code and detail, and later causes are ignored.
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
    if (!md)
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
                    uint64_t id, const shoal_rpc_method *m, int64_t deadline)
{
    memset(c, 0, sizeof(*c));
    c->mu = mu;
    c->cv = cv;
    c->conn = conn;
    c->id = id;
    c->m = m;
    c->deadline = deadline;
    c->credit = SHOAL_RPC_WINDOW;
}

int rpc__call_push(rpc_call *c, const void *data, size_t len)
{
    rpc_msg *msg = malloc(sizeof(*msg));
    void *copy = malloc(len ? len : 1);
    if (!msg || !copy) {
        free(msg);
        free(copy);
        return shoal__err(SHOAL_ENOMEM, "rpc call: out of memory for a message");
    }
    msg->next = NULL;
    msg->len = len;
    msg->data = copy;
    if (len)
        memcpy(copy, data, len);
    if (c->tail)
        c->tail->next = msg;
    else
        c->head = msg;
    c->tail = msg;
    pthread_cond_broadcast(c->cv);
    return 0;
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
    if (++c->consumed >= SHOAL_RPC_WINDOW / 2 && !c->peer_done && !c->done) {
        *credit = c->consumed;
        c->consumed = 0;
    }
    return 1;
}

int rpc__msg_hand_out(rpc_msg *m, void **msg, size_t *len)
{
    *msg = m->data;
    *len = m->len;
    free(m);
    return 1;
}

void rpc__msg_free(rpc_msg *m)
{
    if (m)
        free(m->data);
    free(m);
}

void rpc__call_end(rpc_call *c, int code, const char *fmt, ...)
{
    if (c->done)
        return;
    c->done = 1;
    c->peer_done = 1;
    c->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
    pthread_cond_broadcast(c->cv);
}

void rpc__call_drain(rpc_call *c)
{
    while (c->head) {
        rpc_msg *m = c->head;
        c->head = m->next;
        rpc__msg_free(m);
    }
    c->tail = NULL;
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
        break;
    case RPC_F_HALF_CLOSE:
        c->peer_done = 1;
        break;
    case RPC_F_WINDOW:
        if (f->credit <= SHOAL_RPC_WINDOW)
            c->credit += (int)f->credit;
        break;
    default:
        return 0;
    }
    pthread_cond_broadcast(c->cv);
    return 1;
}

/* ---- sending ----------------------------------------------------------------------- */

int rpc__send(rpc_conn *conn, const rpc_frame *f, const shoal_rpc_md *md,
              shoal_duration timeout)
{
    uint8_t *buf;
    size_t len;
    int rc = rpc__frame_encode(f, md, &buf, &len);
    if (rc < 0)
        return rc;
    rc = conn->ops->send(conn, buf, len, timeout);
    free(buf);
    return rc;
}

int rpc__send_simple(rpc_conn *conn, uint64_t id, uint32_t type, uint32_t credit)
{
    rpc_frame f = {.call = id, .type = type, .credit = credit};
    return rpc__send(conn, &f, NULL, SHOAL_SEC(1));
}
