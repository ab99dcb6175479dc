/*
 * rpc_client.c — channels and client calls.
 *
 * A channel is one connection (made by the transport the address names) and the
 * calls running on it, under one mutex. Nobody reads the connection in the
 * background: a thread that must wait for its call (a response, credit to send, the
 * status) either becomes the channel's reader — it receives a frame with the mutex
 * released, then dispatches it, and whatever else already arrived, to the calls they
 * belong to (with no other thread asleep on the channel and no frame at hand in the
 * transport, only until its own call has what it waits for: a round trip makes no
 * receive that finds nothing) — or, when
 * another thread is reading, sleeps on its own call's condition variable. A frame wakes
 * only the thread of its call (not every thread waiting on the channel), and a thread
 * that leaves with nobody reading wakes one sleeper to take the reader's turn. So a
 * channel used by one thread costs no thread switch, and one used by many has exactly one
 * reader at a time and one wake-up per frame. Readers and sleepers wake at least every
 * READ_SLICE to check their deadline, so a call ends DEADLINE_EXCEEDED on time even when
 * another thread is the reader. A connection that fails (the server died or hung up) ends
 * every call on it UNAVAILABLE. A request sent with shoal_rpc_call_send_more may stay in
 * the transport's buffer (rpc_conn.send_later) until the next frame sent or until a
 * thread is about to wait on the channel, which writes it first (flush): a pipelined
 * burst leaves in one write. So does the credit (WINDOW) returned for responses taken
 * while more are at hand, or on a call that pipelines: the batch of requests that follows
 * carries it.
 *
 * A channel lives until it is closed and its last call is freed (calls keep a
 * reference), so call handles stay valid after shoal_rpc_channel_close().
 */
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

#define READ_SLICE   SHOAL_MS(20)
#define READ_BATCH   64           /* frames a reader dispatches at one go */
#define SEND_TIMEOUT SHOAL_SEC(5) /* a server not reading for this long is broken */

struct shoal_rpc_channel {
    pthread_mutex_t mu;
    rpc_conn *conn;
    int reading;
    int sleepers; /* threads asleep on their call's condition variable */
    int broken;   /* the connection failed: calls end UNAVAILABLE */
    char why[200];
    int closed;
    int refs; /* 1 while open, plus one per call */
    uint64_t next_id;
    struct shoal_rpc_call *calls;
};

struct shoal_rpc_call {
    rpc_call c;
    pthread_cond_t cv; /* the call's thread sleeps here while another one reads */
    int waiting;       /* ... and has not been woken to take over reading */
    shoal_rpc_channel *ch;
    struct shoal_rpc_call *next, *prev;
    shoal_rpc_md headers, trailers;
    int unary_response; /* unary / client streaming: responses seen */
    int pipelined;      /* sent with shoal_rpc_call_send_more: it sends or waits again */
};

/* ---- the channel ------------------------------------------------------------------- */

static void channel_unref(shoal_rpc_channel *ch) /* mu held; releases it */
{
    int last = --ch->refs == 0;
    pthread_mutex_unlock(&ch->mu);
    if (!last)
        return;
    if (ch->conn)
        ch->conn->ops->close(ch->conn);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
}

static void channel_break(shoal_rpc_channel *ch, const char *why)
{
    if (!ch->broken) {
        ch->broken = 1;
        snprintf(ch->why, sizeof(ch->why), "%s", why);
    }
    for (struct shoal_rpc_call *k = ch->calls; k; k = k->next)
        rpc__call_end(&k->c, SHOAL_RPC_UNAVAILABLE, "%s", ch->why);
}

static struct shoal_rpc_call *find_call(shoal_rpc_channel *ch, uint64_t id)
{
    for (struct shoal_rpc_call *k = ch->calls; k; k = k->next)
        if (k->c.id == id)
            return k;
    return NULL;
}

/* A frame from the server (mu held). Frames of calls already freed are dropped. */
static void dispatch(shoal_rpc_channel *ch, const uint8_t *buf, size_t len)
{
    rpc_frame f;
    shoal_rpc_md md = {0};
    if (rpc__frame_decode(buf, len, &f, &md) < 0) {
        char why[160];
        snprintf(why, sizeof(why), "server %s sent an undecodable frame: %s",
                 ch->conn->peer, shoal_errdetail());
        channel_break(ch, why);
        shoal_rpc_md_clear(&md);
        return;
    }
    struct shoal_rpc_call *k = find_call(ch, f.call);
    if (k && !k->c.done) {
        if (f.type == RPC_F_HEADERS || f.type == RPC_F_TRAILERS) {
            shoal_rpc_md *into = f.type == RPC_F_HEADERS ? &k->headers : &k->trailers;
            for (size_t i = 0; i < md.count; i++)
                shoal_rpc_md_add(into, md.items[i].key, md.items[i].value);
        }
        if (f.type == RPC_F_TRAILERS && f.code == SHOAL_RPC_OK && f.has_payload &&
            rpc__call_push(&k->c, f.payload, f.payload_len) < 0)
            f.code = SHOAL_RPC_RESOURCE_EXHAUSTED; /* out of memory for the response */
        if (f.type == RPC_F_TRAILERS)
            rpc__call_end_str(&k->c, f.code < 17 ? (int)f.code : SHOAL_RPC_UNKNOWN,
                              f.detail ? f.detail : "", f.detail_len);
        else
            rpc__call_frame(&k->c, &f);
    }
    shoal_rpc_md_clear(&md);
}

static int ready(const rpc_call *c, int what);

/* Whether the reader need not read on for others (mu held): no thread sleeps on the
 * channel and the transport says no frame is at hand (one that does not say: read). */
static int nothing_else(shoal_rpc_channel *ch)
{
    return !ch->sleepers && ch->conn->at_hand && !ch->conn->at_hand(ch->conn);
}

/* Receives and dispatches frames (one, then those already there, until the reader's
 * own call k has what it waits for — `what` — when nothing_else: a round trip then
 * pays for no receive that finds nothing), or waits for the thread that does (mu
 * held). */
static void pump(struct shoal_rpc_call *k, int what, int64_t deadline)
{
    shoal_rpc_channel *ch = k->ch;
    if (ch->reading) {
        k->waiting = 1;
        ch->sleepers++;
        rpc__cond_wait(&k->cv, &ch->mu, rpc__until(deadline, READ_SLICE));
        ch->sleepers--;
        k->waiting = 0;
        return;
    }
    ch->reading = 1;
    pthread_mutex_unlock(&ch->mu);
    const uint8_t *buf;
    size_t len;
    int rc = ch->conn->ops->recv(ch->conn, &buf, &len, rpc__until(deadline, READ_SLICE));
    pthread_mutex_lock(&ch->mu);
    for (int n = 0; rc == 1; n++) {
        dispatch(ch, buf, len);
        if (n == READ_BATCH || ch->broken || (nothing_else(ch) && ready(&k->c, what)))
            break;
        rc = ch->conn->ops->recv(ch->conn, &buf, &len, SHOAL_NOWAIT);
    }
    ch->reading = 0;
    if (rc < 0) { /* what the server sent broke the connection: the transport says */
        char why[200];
        snprintf(why, sizeof(why), "connection to %s lost: %s", ch->conn->peer,
                 rc == SHOAL_EINVALID_DATA ? shoal_errdetail() : shoal_strerror(rc));
        channel_break(ch, why);
    }
}

/* A thread stops waiting: if nobody reads, one sleeper is woken to take over (mu
 * held). */
static void hand_over(shoal_rpc_channel *ch)
{
    if (ch->reading)
        return;
    for (struct shoal_rpc_call *k = ch->calls; k; k = k->next)
        if (k->waiting) {
            k->waiting = 0; /* woken: the next hand-over wakes another */
            pthread_cond_signal(&k->cv);
            return;
        }
}

/* ---- waiting for a call ------------------------------------------------------------ */

enum { W_MESSAGE, W_CREDIT, W_DONE };

static int ready(const rpc_call *c, int what)
{
    switch (what) {
    case W_MESSAGE:
        return c->head || c->peer_done || c->done;
    case W_CREDIT:
        return c->credit > 0 || c->done;
    default:
        return c->done;
    }
}

/* Cancels the call on the server (mu held; a failure to send only means the
 * connection is gone, which frees the server's side anyway). */
static void send_cancel(struct shoal_rpc_call *k)
{
    if (!k->ch->broken)
        rpc__send_simple(k->c.conn, k->c.id, RPC_F_CANCEL, 0);
}

/* Writes what send_more kept (mu held): a thread about to wait needs its requests
 * gone first. */
static void flush(shoal_rpc_channel *ch)
{
    if (!ch->broken && ch->conn && ch->conn->flush &&
        ch->conn->flush(ch->conn, SEND_TIMEOUT) < 0)
        channel_break(ch, "connection lost while sending");
}

/* Waits until `what` holds for call k, or ends the call at its deadline, or returns
 * at `limit` (a shoal__now_ns() time; INT64_MAX: none). Returns whether `what`
 * holds (mu held). */
static int wait_until(struct shoal_rpc_call *k, int what, int64_t limit)
{
    int got = 1;
    while (!ready(&k->c, what)) {
        flush(k->ch); /* before this thread waits: what send_more kept goes */
        /* one clock read a round, none when there is neither deadline nor limit */
        int64_t now =
            k->c.deadline == INT64_MAX && limit == INT64_MAX ? 0 : shoal__now_ns();
        if (k->ch->broken) {
            rpc__call_end(&k->c, SHOAL_RPC_UNAVAILABLE, "%s", k->ch->why);
        } else if (now >= k->c.deadline) {
            rpc__call_end(&k->c, SHOAL_RPC_DEADLINE_EXCEEDED, "deadline exceeded");
            send_cancel(k);
        } else if (now >= limit) {
            got = 0;
            break;
        } else {
            pump(k, what, k->c.deadline < limit ? k->c.deadline : limit);
        }
    }
    hand_over(k->ch);
    return got;
}

static void wait_for(struct shoal_rpc_call *k, int what)
{
    wait_until(k, what, INT64_MAX);
}

/* ---- public: channels -------------------------------------------------------------- */

static int parse_scheme(const char *address, const char **rest)
{
    static const struct {
        const char *prefix;
        int nng;
    } schemes[] = {{"shm://", 0}, {"ipc://", 1}, {"tcp://", 1}, {"tls+tcp://", 1}};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncmp(address, schemes[i].prefix, n) == 0) {
            *rest = schemes[i].nng ? address : address + n;
            return schemes[i].nng;
        }
    }
    return shoal__err(SHOAL_EINVAL,
                      "rpc address \"%s\": expected shm://name, ipc:///path, "
                      "tcp://host:port or tls+tcp://host:port",
                      address);
}

/* Waits for the server's ACCEPT: 0 when accepted, 1 when it carries a challenge
 * (copied to challenge; NULL once answered: a second one is not taken), or a negative
 * code (SHOAL_EACCES: the server said UNAUTHENTICATED). */
static int await_accept(rpc_conn *c, const char *address, shoal_duration wait,
                        uint8_t *challenge)
{
    const uint8_t *buf;
    size_t len;
    rpc_frame f;
    int rc = c->ops->recv(c, &buf, &len, wait);
    if (rc == 0)
        return shoal__err(SHOAL_ETIMEDOUT, "rpc %s: no server accepted the connection",
                          address);
    if (rc < 0)
        return rc;
    if (rpc__frame_decode(buf, len, &f, NULL) < 0)
        return shoal__err(SHOAL_EINVALID_DATA,
                          "rpc %s: the server's first frame does not "
                          "decode",
                          address);
    if (f.type == RPC_F_TRAILERS)
        return shoal__err(SHOAL_EACCES, "rpc %s: %s: %.*s", address,
                          shoal_rpc_code_name(f.code < 17 ? (int)f.code : 2),
                          (int)(f.detail_len > 200 ? 200 : f.detail_len),
                          f.detail ? f.detail : "");
    if (f.type != RPC_F_ACCEPT)
        return shoal__err(SHOAL_EINVALID_DATA,
                          "rpc %s: the server's first frame is not "
                          "ACCEPT",
                          address);
    c->peer_window = rpc__peer_window(c, f.credit);
    if (!f.has_payload || !challenge)
        return 0;
    if (f.payload_len != RPC_CHALLENGE_LEN)
        return shoal__err(SHOAL_EINVALID_DATA, "rpc %s: a challenge of %zu bytes",
                          address, f.payload_len);
    memcpy(challenge, f.payload, RPC_CHALLENGE_LEN);
    return 1;
}

/* Answers the challenge: with the token's proof (the token never crosses the wire
 * itself), or with an empty answer when this channel has no token (a tls+tcp:// server
 * may need only the client's certificate; one that needs a token refuses it). */
static int answer(rpc_conn *c, const shoal_rpc_channel_config *cfg,
                  const uint8_t *challenge)
{
    uint8_t mac[32];
    rpc_frame f = {.type = RPC_F_AUTH, .payload = mac, .has_payload = 1};
    if (cfg && cfg->token) {
        rpc__auth_answer(cfg->token, challenge, RPC_CHALLENGE_LEN, mac);
        f.payload_len = 32;
    }
    return rpc__send(c, &f, NULL, SEND_TIMEOUT);
}

/* Connects by address: rpc__*_connect, then the server's ACCEPT (after the token
 * challenge, when the server sets one). */
static int connect_to(rpc_conn **out, const char *address,
                      const shoal_rpc_channel_config *cfg)
{
    const char *rest = NULL;
    int nng = parse_scheme(address, &rest);
    if (nng < 0)
        return nng;
    int rc = nng ? rpc__nng_connect(out, rest, cfg) : rpc__shm_connect(out, rest, cfg);
    if (rc < 0)
        return rc;
    shoal_duration wait =
        cfg && cfg->connect_timeout > 0 ? cfg->connect_timeout : SHOAL_SEC(2);
    uint8_t challenge[RPC_CHALLENGE_LEN];
    rc = await_accept(*out, address, wait, challenge);
    if (rc == 1 && (rc = answer(*out, cfg, challenge)) == 0)
        rc = await_accept(*out, address, wait, NULL);
    if (rc < 0) {
        (*out)->ops->close(*out);
        *out = NULL;
    }
    return rc;
}

int shoal_rpc_channel_open(shoal_rpc_channel **out, const char *address,
                           const shoal_rpc_channel_config *cfg)
{
    if (!out || !address)
        return shoal__err(SHOAL_EINVAL, "rpc channel: NULL argument");
    shoal_rpc_channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return shoal__err(SHOAL_ENOMEM, "rpc channel: out of memory");
    int rc = connect_to(&ch->conn, address, cfg);
    if (rc < 0) {
        free(ch);
        return rc;
    }
    pthread_mutex_init(&ch->mu, NULL);
    ch->refs = 1;
    ch->next_id = 1;
    *out = ch;
    return 0;
}

void shoal_rpc_channel_close(shoal_rpc_channel *ch)
{
    if (!ch)
        return;
    pthread_mutex_lock(&ch->mu);
    for (struct shoal_rpc_call *k = ch->calls; k; k = k->next)
        if (!k->c.done) {
            send_cancel(k);
            rpc__call_end(&k->c, SHOAL_RPC_CANCELLED, "channel closed");
        }
    ch->closed = 1;
    channel_break(ch, "channel closed");
    channel_unref(ch);
}

/* ---- public: calls ----------------------------------------------------------------- */

/* Starts a call; with has_req, START carries the only request and half-closes. */
static int call_begin(shoal_rpc_call **out, shoal_rpc_channel *ch, const char *service,
                      const shoal_rpc_method *m, const shoal_rpc_options *opts,
                      const void *req, size_t req_len, int has_req)
{
    if (!out || !ch || !service || !m || !m->name || (has_req && !req && req_len))
        return shoal__err(SHOAL_EINVAL, "rpc call: NULL argument");
    char method[512];
    size_t sl = strlen(service), ml = strlen(m->name);
    if (sl + 1 + ml >= sizeof(method))
        return shoal__err(SHOAL_EINVAL, "rpc call: method name too long");
    memcpy(method, service, sl);
    method[sl] = '/';
    memcpy(method + sl + 1, m->name, ml);
    size_t n = sl + 1 + ml;
    struct shoal_rpc_call *k = malloc(sizeof(*k));
    if (!k)
        return shoal__err(SHOAL_ENOMEM, "rpc call: out of memory");
    k->headers = k->trailers = (shoal_rpc_md){0};
    k->unary_response = k->pipelined = 0;
    k->waiting = 0;
    pthread_cond_init(&k->cv, NULL);
    /* The deadline: inherited from the handler this call is made in, or the caller's
     * timeout if sooner. One clock read, none for a call without either. */
    int64_t deadline = rpc__inherited_deadline(), left = INT64_MAX;
    if (deadline != INT64_MAX || (opts && opts->timeout > 0)) {
        int64_t now = shoal__now_ns();
        if (opts && opts->timeout > 0 && now + opts->timeout < deadline)
            deadline = now + opts->timeout;
        left = deadline - now;
    }

    pthread_mutex_lock(&ch->mu);
    rpc__call_init(&k->c, &ch->mu, &k->cv, ch->conn, ch->next_id++, m, deadline,
                   ch->conn->peer_window);
    k->ch = ch;
    ch->refs++;
    RPC_LINK(ch->calls, k);
    int send = 0;
    if (ch->broken) {
        rpc__call_end(&k->c, SHOAL_RPC_UNAVAILABLE, "%s", ch->why);
    } else if (left <= 0) {
        rpc__call_end(&k->c, SHOAL_RPC_DEADLINE_EXCEEDED,
                      "deadline exceeded before start");
    } else {
        k->c.credit -= has_req;
        k->c.send_closed = has_req;
        send = 1;
    }
    pthread_mutex_unlock(&ch->mu);
    *out = k;
    if (!send)
        return 0;
    /* START is sent without the channel's mutex, so that the threads of a busy channel
     * do not queue behind each other's sends (nothing else sends for this call yet). */
    rpc_frame f = {.call = k->c.id,
                   .type = RPC_F_START,
                   .method = method,
                   .method_len = n,
                   .timeout_ns = deadline == INT64_MAX ? 0 : left,
                   .payload = req,
                   .payload_len = req_len,
                   .has_payload = has_req,
                   .flags = has_req ? RPC_FLAG_END : 0,
                   .credit = (uint32_t)rpc__own_window(ch->conn)};
    int rc = rpc__send(ch->conn, &f, opts ? opts->metadata : NULL,
                       left < SEND_TIMEOUT ? left : SEND_TIMEOUT);
    if (rc < 0) {
        char why[SHOAL_RPC_DETAIL_MAX];
        snprintf(why, sizeof(why), "request too large: %s", shoal_errdetail());
        pthread_mutex_lock(&ch->mu);
        if (rc == SHOAL_EMSGSIZE)
            rpc__call_end(&k->c, SHOAL_RPC_RESOURCE_EXHAUSTED, "%s", why);
        else
            channel_break(ch, "connection lost while starting a call");
        pthread_mutex_unlock(&ch->mu);
    }
    return 0;
}

int shoal_rpc_call_start(shoal_rpc_call **out, shoal_rpc_channel *ch, const char *service,
                         const shoal_rpc_method *m, const shoal_rpc_options *opts)
{
    return call_begin(out, ch, service, m, opts, NULL, 0, 0);
}

int shoal_rpc_call_start_request(shoal_rpc_call **out, shoal_rpc_channel *ch,
                                 const char *service, const shoal_rpc_method *m,
                                 const void *req, size_t len,
                                 const shoal_rpc_options *opts)
{
    return call_begin(out, ch, service, m, opts, req, len, 1);
}

/* shoal_rpc_call_send, or (later) shoal_rpc_call_send_more. */
static int call_send(shoal_rpc_call *k, const void *msg, size_t len, int later)
{
    if (!k || (!msg && len))
        return shoal__err(SHOAL_EINVAL, "rpc call: NULL argument");
    shoal_rpc_channel *ch = k->ch;
    pthread_mutex_lock(&ch->mu);
    if (!ready(&k->c, W_CREDIT)) /* credit at hand: this thread neither waits nor reads */
        wait_for(k, W_CREDIT);
    if (k->c.done || k->c.send_closed) {
        pthread_mutex_unlock(&ch->mu);
        return shoal__err(SHOAL_ECLOSED, "rpc call: %s",
                          k->c.done ? "the call is over" : "sending was closed");
    }
    k->c.credit--;
    k->pipelined |= later;
    rpc_frame f = {.call = k->c.id,
                   .type = RPC_F_MESSAGE,
                   .payload = msg,
                   .payload_len = len,
                   .has_payload = 1};
    shoal_duration t = rpc__until(k->c.deadline, SEND_TIMEOUT);
    int rc =
        later ? rpc__send_later(ch->conn, &f, NULL, t) : rpc__send(ch->conn, &f, NULL, t);
    if (rc == SHOAL_EMSGSIZE) {
        k->c.credit++;
        pthread_mutex_unlock(&ch->mu);
        return rc;
    }
    if (rc < 0)
        channel_break(ch, "connection lost while sending");
    pthread_mutex_unlock(&ch->mu);
    return rc < 0 ? shoal__err(SHOAL_ECLOSED, "rpc call: connection lost") : 0;
}

int shoal_rpc_call_send(shoal_rpc_call *k, const void *msg, size_t len)
{
    return call_send(k, msg, len, 0);
}

int shoal_rpc_call_send_more(shoal_rpc_call *k, const void *msg, size_t len)
{
    return call_send(k, msg, len, 1);
}

int shoal_rpc_channel_flush(shoal_rpc_channel *ch)
{
    if (!ch)
        return shoal__err(SHOAL_EINVAL, "rpc channel: NULL");
    pthread_mutex_lock(&ch->mu);
    flush(ch);
    int rc = ch->broken ? shoal__err(SHOAL_ECLOSED, "rpc channel: %s", ch->why) : 0;
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

int shoal_rpc_call_send_ready(shoal_rpc_call *k)
{
    if (!k)
        return 0;
    pthread_mutex_lock(&k->ch->mu);
    int ready = k->c.credit > 0 || k->c.done || k->c.send_closed || k->ch->broken;
    pthread_mutex_unlock(&k->ch->mu);
    return ready;
}

int shoal_rpc_call_close_send(shoal_rpc_call *k)
{
    if (!k)
        return shoal__err(SHOAL_EINVAL, "rpc call: NULL");
    pthread_mutex_lock(&k->ch->mu);
    int rc = 0;
    if (k->c.done || k->c.send_closed)
        rc = shoal__err(SHOAL_ECLOSED, "rpc call: already over or half-closed");
    else {
        k->c.send_closed = 1;
        if (rpc__send_simple(k->c.conn, k->c.id, RPC_F_HALF_CLOSE, 0) < 0)
            channel_break(k->ch, "connection lost while half-closing");
    }
    pthread_mutex_unlock(&k->ch->mu);
    return rc;
}

/* Refuses a response the call cannot take (mu held): ends the call and cancels it on
 * the server. */
static int refuse(struct shoal_rpc_call *k, rpc_msg *m, int code, const char *why)
{
    rpc__call_end(&k->c, code, "%s", why);
    send_cancel(k);
    rpc__msg_free(m);
    return 0;
}

/* Takes the next response once wait_for(k, W_MESSAGE) returned (mu held): 1 with *m,
 * or 0 (none: the call ended, or the response was refused). */
static int take(struct shoal_rpc_call *k, rpc_msg **m)
{
    uint32_t credit = 0;
    /* Messages that arrived before an OK status are still delivered (another thread
     * may have read the message and the trailers behind it at one go). */
    int got =
        (!k->c.done || k->c.code == SHOAL_RPC_OK) && rpc__call_pop(&k->c, m, &credit);
    int single =
        k->c.m->kind == SHOAL_RPC_UNARY || k->c.m->kind == SHOAL_RPC_CLIENT_STREAMING;
    if (got && k->c.m->check_response && k->c.m->check_response((*m)->data, (*m)->len))
        got = refuse(k, *m, SHOAL_RPC_INVALID_ARGUMENT,
                     "the server sent an invalid response");
    else if (got && single && k->unary_response++)
        got = refuse(k, *m, SHOAL_RPC_INTERNAL,
                     "the server sent a second response to a single-response method");
    /* The credit stays in the transport's buffer (send_later) while this thread has
     * a further response at hand or pipelines its requests: it leaves with the next
     * request, or before any thread waits on the channel (flush). */
    if (credit && rpc__send_simple_later(k->c.conn, k->c.id, RPC_F_WINDOW, credit,
                                         k->c.head || k->pipelined) < 0)
        channel_break(k->ch, "connection lost while returning credit");
    return got;
}

int shoal_rpc_call_recv(shoal_rpc_call *k, void **msg, size_t *len)
{
    if (!k || !msg || !len)
        return shoal__err(SHOAL_EINVAL, "rpc call: NULL argument");
    pthread_mutex_lock(&k->ch->mu);
    if (!ready(&k->c, W_MESSAGE)) /* a response at hand: nothing to wait for */
        wait_for(k, W_MESSAGE);
    rpc_msg *m = NULL;
    int got = take(k, &m);
    pthread_mutex_unlock(&k->ch->mu);
    return got ? rpc__msg_hand_out(m, msg, len) : 0;
}

int shoal_rpc_call_wait(shoal_rpc_call *k, shoal_duration timeout)
{
    if (!k)
        return shoal__err(SHOAL_EINVAL, "rpc call: NULL");
    int64_t limit = timeout < 0 ? INT64_MAX : shoal__now_ns() + timeout;
    pthread_mutex_lock(&k->ch->mu);
    int rc = wait_until(k, W_MESSAGE, limit);
    pthread_mutex_unlock(&k->ch->mu);
    return rc;
}

void shoal_rpc_call_cancel(shoal_rpc_call *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->ch->mu);
    if (!k->c.done) {
        send_cancel(k);
        rpc__call_end(&k->c, SHOAL_RPC_CANCELLED, "cancelled by the client");
    }
    pthread_mutex_unlock(&k->ch->mu);
}

/* shoal_rpc_call_finish with mu held. */
static int finish(struct shoal_rpc_call *k, char *detail, size_t cap)
{
    while (!k->c.done) {
        wait_for(k, W_MESSAGE);
        rpc__call_drain(&k->c); /* responses nobody will read */
    }
    if (detail && cap) {
        size_t n = strnlen(k->c.detail, cap - 1);
        memcpy(detail, k->c.detail, n);
        detail[n] = 0;
    }
    return k->c.code;
}

int shoal_rpc_call_finish(shoal_rpc_call *k, char *detail, size_t cap)
{
    if (!k)
        return shoal__err(SHOAL_EINVAL, "rpc call: NULL");
    pthread_mutex_lock(&k->ch->mu);
    int code = finish(k, detail, cap);
    pthread_mutex_unlock(&k->ch->mu);
    return code;
}

const shoal_rpc_md *shoal_rpc_call_headers(const shoal_rpc_call *k)
{
    return &k->headers;
}

const shoal_rpc_md *shoal_rpc_call_trailers(const shoal_rpc_call *k)
{
    return &k->trailers;
}

/* shoal_rpc_call_free with mu held; releases it. */
static void release(struct shoal_rpc_call *k)
{
    shoal_rpc_channel *ch = k->ch;
    if (!k->c.done) {
        send_cancel(k);
        rpc__call_end(&k->c, SHOAL_RPC_CANCELLED, "call freed");
    }
    RPC_UNLINK(ch->calls, k);
    rpc__call_drain(&k->c);
    shoal_rpc_md_clear(&k->headers);
    shoal_rpc_md_clear(&k->trailers);
    pthread_cond_destroy(&k->cv);
    free(k);
    channel_unref(ch);
}

void shoal_rpc_call_free(shoal_rpc_call *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->ch->mu);
    release(k);
}

/* The whole call under the channel's mutex taken twice: to start it (call_begin),
 * then to take the response, the status and free it. */
int shoal_rpc_unary(shoal_rpc_channel *ch, const char *service, const shoal_rpc_method *m,
                    const void *req, size_t req_len, void **resp, size_t *resp_len,
                    const shoal_rpc_options *opts, char *detail, size_t cap)
{
    if (!resp || !resp_len)
        return shoal__err(SHOAL_EINVAL, "rpc unary: NULL response pointer");
    *resp = NULL;
    *resp_len = 0;
    shoal_rpc_call *k;
    int rc = call_begin(&k, ch, service, m, opts, req, req_len, 1);
    if (rc < 0)
        return rc;
    rpc_msg *msg = NULL;
    pthread_mutex_lock(&ch->mu);
    wait_for(k, W_MESSAGE);
    int got = take(k, &msg);
    int code = finish(k, detail, cap);
    release(k);
    if (code == SHOAL_RPC_OK && !got) {
        code = SHOAL_RPC_INTERNAL;
        if (detail && cap)
            snprintf(detail, cap, "the server sent no response");
    }
    if (code == SHOAL_RPC_OK)
        rpc__msg_hand_out(msg, resp, resp_len);
    else
        rpc__msg_free(msg);
    return code;
}
