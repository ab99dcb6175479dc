/*
 * rpc_shm.c — the shm:// transport: connections are shoal pipes.
 *
 * A server listening on shm://NAME owns the queue NAME (variable-size messages): its
 * connection queue, created when it starts listening or, when an earlier server left
 * it, opened as it is. A client creates a pipe named NAME:c<pid>.<n> (mode 0600 unless
 * the attributes say otherwise), holds end 0, and puts the pipe's name into the
 * connection queue. The server's loop, watching the queue, opens end 1, watches it for
 * frames and answers ACCEPT. From then on each pipe message is a frame, or a batch
 * message carrying several, copied out of shared memory into a private buffer by
 * shoal_pipe_recv before it is decoded, so a client cannot change a frame while the
 * server checks it.
 *
 * Batch messages: byte 0 (BATCH_MARK: no frame starts with it, as a frame's first byte
 * is a protobuf tag and field number 0 does not exist, so a peer of an earlier version
 * finds an undecodable frame, never a wrong one), byte 1 the version (BATCH_V1), then
 * for each frame its length (4 bytes, little-endian, at least 1) and its bytes. A
 * receiver checks every length before it takes any frame, and hands the frames out one
 * by one (shm_recv) before it reads the pipe again; a batch that does not check out is
 * dropped whole — the client's connection breaks, saying what was wrong; the server
 * counts it as one undecodable frame and reads on. Only a peer that said it reads them
 * gets batch messages: a client puts batch_hello after its pipe's name (and its NUL) in
 * its connection request, which a server of an earlier version does not look at; a
 * server reads batch messages only from a client that said so, and answers it with
 * its ACCEPT in a batch message of one frame, which tells the client that this server
 * reads them too (a server of an earlier version sends a plain ACCEPT: its client then
 * writes every frame alone). Frames are kept (out, under out_mu; a client keeping none
 * sends, and has nothing to flush, without taking out_mu: client_idle) to leave
 * together in one message (one alone as a plain frame; up to BATCH_BYTES or the pipe's
 * largest message a message), encoded there in place (rpc_conn.send_frame: no copy of
 * an encoded frame), so a peer pipelining N requests or responses writes, and its
 * peer reads and is woken for, one message instead of N:
 *
 *   - the server: the frames its loop's thread sends to a connection during on_pipe's
 *     turn — the responses of the unary calls it ran and of the inline receive
 *     (rpc_server.c) of the requests it read — leave when the turn ends (kept
 *     without out_mu: nobody else writes out or the pipe during the turn, shm_put);
 *     a handler's thread in direct receive keeps what it sends with
 *     rpc_conn.send_later (its responses while it has further requests at hand),
 *     which leaves with its next send, before its receive waits, or when the loop
 *     watches the connection again;
 *   - the client: what shoal_rpc_call_send_more sends (send_later) leaves with the next
 *     send, or when the rpc layer flushes before a thread waits on the channel.
 *
 * A frame sent meanwhile by another thread goes after the ones kept, in the same
 * write (during a turn, kept in side for the turn's end, and the turn's own frames
 * after it too); one too big for a batch goes alone, after them; one larger than the pipe
 * allows fails SHOAL_EMSGSIZE as always. Stopping or closing the connection sends what
 * was kept first. A turn whose kept frames cannot go (the client dead, or not reading
 * for SEND_TIMEOUT) loses the connection, as a failed send would. Frames kept by a
 * process that then forked are its to send: the child forgets them (out_pid), so a
 * request is never sent twice.
 *
 * Both sides poll before they sleep (the pipe's and the loop's spin budget), so while
 * both are busy a call costs no system call. A receive that waits (a client for its
 * reply, a server thread in direct receive for the next request) spins from its
 * connection end's seat in the name's spin table (wait.h): the block NAME:spin,
 * which the server opens when it listens and each client when it connects, so the
 * spinners of the server and of all its client processes are counted together and a
 * wait spins only while they leave it a CPU. A connection without a seat (the block
 * could not be opened, the table full) spins uncounted, as without a table. Death is the
 * pipe's business: when the other end's process dies, the survivor's receive (or the
 * loop) reports SHOAL_EPEERDEAD within tens of milliseconds — the client's calls end
 * UNAVAILABLE; the server cancels the client's calls. Whoever closes a connection first
 * unlinks its pipe; the other side's handle stays usable until it closes it. A client
 * that forks keeps its connection (its end was in use: pipe.c), and a child that calls on
 * the inherited channel shares it.
 *
 * A connection whose one call is a handler in direct receive (rpc_server.c) is not
 * watched by the loop: the handler's thread receives from the pipe itself, and
 * shm_watch gives the pipe back to the loop.
 *
 * The server's loop, woken by a readable pipe, takes up to 64 frames a turn, and the
 * rest of a batch message begun (requests for a call in inline receive run at the
 * turn's end, all together: rpc__server_turn_begin / _end); only the first receive asks
 * after the client's process (the loop watching the pipe reports a client gone), so a
 * busy connection costs no peer check per frame. Frames of a batch that a handler's
 * thread in direct receive left unread when it gave the connection back are in no pipe to
 * wake the loop: shm_watch takes them at once.
 *
 * Flow control: a pipe holds PIPE_CAPACITY messages, and a sender that finds it full
 * waits (up to SEND_TIMEOUT) — the server's loop too, holding up its other
 * connections. Each side therefore announces a receive window (rpc_conn.window) of half
 * the pipe, not SHOAL_RPC_WINDOW: a call's frames in flight, even sent one a message,
 * leave room for the WINDOW frames and another call's, so a sender with credit does
 * not find the pipe full. (With a larger window a client whose threads were busy
 * elsewhere filled its reply pipe, the loop waited on it while the client's next
 * requests waited on the full request pipe, and the session was lost at the timeout.)
 *
 * One server per name: beside the queue, a listener holds the small block
 * NAME:server, whose one word names the listening process by its owner id in that
 * block (owner.c: alive exactly while the process has the block open, whatever its
 * pid becomes). A listener claims the word by compare-and-swap when it is 0 or names
 * a process that is gone, so a second server on a live one's name gets SHOAL_EBUSY
 * (in the same process too), and a server killed with SIGKILL leaves a name the next
 * server takes over (or `shoal gc` removes); a listener that closes removes NAME,
 * NAME:spin and NAME:server while it still holds the word, then gives it back, so a
 * cleanly stopped server leaves nothing behind. A client that connects meanwhile
 * either finds no NAME (SHOAL_ENOENT, as with no server) or put its request in the
 * queue just removed: no server accepts it, as when none comes back after a SIGKILL,
 * and its calls wait for their timeouts.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc_internal.h"
#include "wait.h"

#define ACCEPT_MSG_MAX (SHOAL_NAME_MAX + 1)
#define PIPE_CAPACITY  (2 * RPC_SHM_WINDOW)
#define DEFAULT_FRAME  (64 * 1024)
#define SEND_TIMEOUT   SHOAL_SEC(5)

/* Batch messages (see the top comment). */
#define BATCH_MARK  0x00 /* a frame's first byte is a tag: never field number 0 */
#define BATCH_V1    1
#define BATCH_HDR   2                       /* the mark and the version */
#define BATCH_LEN   4                       /* each frame's length, little-endian */
#define BATCH_BYTES (16 * 1024)             /* a batch message's bytes at most */
static const char batch_hello[] = "batch1"; /* after the pipe's name in a request */

/* Attributes with their own copies of the strings. */
typedef struct attr_copy {
    shoal_attr attr;
    char root[256], domain[SHOAL_DOMAIN_MAX + 1];
} attr_copy;

static void attr_keep(attr_copy *a, const shoal_attr *attr)
{
    if (!attr)
        return;
    a->attr = *attr;
    if (attr->root) {
        snprintf(a->root, sizeof(a->root), "%s", attr->root);
        a->attr.root = a->root;
    }
    if (attr->domain) {
        snprintf(a->domain, sizeof(a->domain), "%s", attr->domain);
        a->attr.domain = a->domain;
    }
}

typedef struct shm_conn {
    rpc_conn base;
    shoal_pipe *pipe;
    char name[SHOAL_NAME_MAX + 1];
    attr_copy attr;
    uint8_t *buf; /* receive buffer, grown to the largest frame seen */
    size_t cap;
    const uint8_t *next; /* the frames of a batch message (in buf) not yet taken */
    size_t left;         /* ... their bytes */
    /* batch messages out: whether the peer reads them; the frames kept to go in the
     * next one (out[0..out_len), out_n frames, kept by process out_pid), under out_mu */
    int batch;
    pthread_mutex_t out_mu;
    uint8_t *out;
    size_t out_len, out_n, out_max;
    int32_t out_pid;
    int heard; /* client: a frame of the server arrived (its ACCEPT, first) */
    /* server: a turn runs (set and cleared under out_mu by its thread, turn_conn):
     * that thread keeps its frames in out without out_mu, while the frames other
     * threads send go to side, after them (side_n of them, under out_mu) */
    int keeping;
    uint8_t *side;
    size_t side_len, side_cap, side_n;
    struct spin_block *spin; /* the name's spin table (NULL: none) */
    shoal__spin_seat seat;   /* this end's seat in it */
    shoal_loop *loop;        /* server side */
    shoal_loop_source *src;
} shm_conn;

/* The connection whose turn (on_pipe's) this thread runs, or NULL. */
static __thread shm_conn *turn_conn;

/* ---- the spin table ------------------------------------------------------------------
 * NAME:spin holds the spin table of the server on NAME and its clients (wait.h). The
 * server's connections share the listener's handle, which the last of them closes. */

typedef struct spin_block {
    shoal__seg *seg;
    _Atomic int refs;
} spin_block;

static spin_block *spin_open(const char *name, int mode, const shoal_attr *attr)
{
    char sname[SHOAL_NAME_MAX + 16];
    snprintf(sname, sizeof(sname), "%s:spin", name);
    shoal__seg_spec spec = {.kind = SHOAL_KIND_SHM,
                            .what = "rpc spin table",
                            .count = sizeof(shoal__spin_table),
                            .check_count = true,
                            .payload_size = sizeof(shoal__spin_table)};
    spin_block *b = strlen(sname) <= SHOAL_NAME_MAX ? calloc(1, sizeof(*b)) : NULL;
    if (b && shoal__seg_open(&b->seg, sname, mode, &spec, attr) == 0) {
        b->refs = 1;
        return b;
    }
    free(b);
    shoal__err_clear(); /* no table: waits spin uncounted */
    return NULL;
}

static spin_block *spin_ref(spin_block *b)
{
    if (b)
        atomic_fetch_add(&b->refs, 1);
    return b;
}

static void spin_unref(spin_block *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
        shoal__seg_close(b->seg);
        free(b);
    }
}

/* Gives c a seat in b (which c now holds a reference to). */
static void spin_seat(shm_conn *c, spin_block *b)
{
    c->spin = b;
    if (b)
        shoal__spin_seat_take(&c->seat, (shoal__spin_table *)b->seg->payload, b->seg);
}

/* ---- frames out -------------------------------------------------------------------- */

static void le32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Forgets the frames kept by the process this one was forked from (out_mu held):
 * they are its to send, once. */
static void out_forked(shm_conn *c)
{
    if (c->out_n && c->out_pid != shoal__self_pid()) {
        c->out_len = BATCH_HDR;
        __atomic_store_n(&c->out_n, 0, __ATOMIC_RELEASE);
    }
}

/* Sends the frames kept (out_mu held): one alone as it is (unless `as_batch`), several
 * as a batch message. 0 or a code of shoal_pipe_send. */
static int out_flush(shm_conn *c, shoal_duration timeout, int as_batch)
{
    out_forked(c);
    if (!c->out_n)
        return 0;
    int rc = c->out_n == 1 && !as_batch
                 ? shoal_pipe_send(c->pipe, c->out + BATCH_HDR + BATCH_LEN,
                                   c->out_len - BATCH_HDR - BATCH_LEN, timeout)
                 : shoal_pipe_send(c->pipe, c->out, c->out_len, timeout);
    c->out_len = BATCH_HDR;
    __atomic_store_n(&c->out_n, 0, __ATOMIC_RELEASE); /* after the send: see shm_send */
    return rc;
}

/* What a send writes: frame f with md, encoded by the send, or (f NULL) the bytes of
 * an encoded frame, buf[len]. */
typedef struct shm_src {
    const rpc_frame *f;
    const shoal_rpc_md *md;
    const void *buf;
    size_t len;
} shm_src;

/* Sends src as a message of its own. */
static int src_send(shm_conn *c, const shm_src *src, shoal_duration timeout)
{
    if (!src->f)
        return shoal_pipe_send(c->pipe, src->buf, src->len, timeout);
    uint8_t stack[RPC_FRAME_STACK];
    uint8_t *buf = stack;
    size_t len;
    int rc = rpc__frame_encode(src->f, src->md, &buf, sizeof(stack), &len);
    if (rc == 0)
        rc = shoal_pipe_send(c->pipe, buf, len, timeout);
    if (buf != stack)
        free(buf);
    return rc;
}

/* Keeps the frame buf[len] (out_mu held), sending the kept ones first when it would
 * not fit; a frame too big for a batch goes at once, after them. */
static int out_keep_bytes(shm_conn *c, const void *buf, size_t len,
                          shoal_duration timeout)
{
    if (len > shoal__pipe_max_msg(c->pipe))
        return shoal_pipe_send(c->pipe, buf, len, timeout); /* SHOAL_EMSGSIZE */
    int rc = 0;
    if (c->out_len + BATCH_LEN + len > c->out_max)
        rc = out_flush(c, timeout, 0);
    if (rc == 0 && BATCH_HDR + BATCH_LEN + len > c->out_max)
        return shoal_pipe_send(c->pipe, buf, len, timeout);
    if (rc < 0)
        return rc;
    out_forked(c);
    if (!c->out_n)
        c->out_pid = shoal__self_pid();
    le32_put(c->out + c->out_len, (uint32_t)len);
    memcpy(c->out + c->out_len + BATCH_LEN, buf, len);
    c->out_len += BATCH_LEN + len;
    __atomic_store_n(&c->out_n, c->out_n + 1, __ATOMIC_RELEASE);
    return 0;
}

/* Keeps src for the next batch message (out_mu held, out_forked done): a frame whose
 * encoding surely fits after the kept ones is encoded there, in place; else as
 * out_keep_bytes, once encoded. */
static int out_keep(shm_conn *c, const shm_src *src, shoal_duration timeout)
{
    if (src->f &&
        c->out_len + BATCH_LEN + rpc__frame_bound(src->f, src->md) <= c->out_max) {
        size_t len = rpc__frame_write(c->out + c->out_len + BATCH_LEN, src->f, src->md);
        if (!c->out_n)
            c->out_pid = shoal__self_pid();
        le32_put(c->out + c->out_len, (uint32_t)len);
        c->out_len += BATCH_LEN + len;
        __atomic_store_n(&c->out_n, c->out_n + 1, __ATOMIC_RELEASE);
        return 0;
    }
    if (!src->f)
        return out_keep_bytes(c, src->buf, src->len, timeout);
    uint8_t stack[RPC_FRAME_STACK];
    uint8_t *buf = stack;
    size_t len;
    int rc = rpc__frame_encode(src->f, src->md, &buf, sizeof(stack), &len);
    if (rc == 0)
        rc = out_keep_bytes(c, buf, len, timeout);
    if (buf != stack)
        free(buf);
    return rc;
}

/* A peer that reads batch messages: room for one (0 or SHOAL_ENOMEM). */
static int batch_on(shm_conn *c)
{
    size_t max = shoal__pipe_max_msg(c->pipe);
    c->out_max = max < BATCH_BYTES ? max : BATCH_BYTES;
    if (!(c->out = malloc(c->out_max)))
        return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", c->base.peer);
    c->out[0] = BATCH_MARK;
    c->out[1] = BATCH_V1;
    c->out_len = BATCH_HDR;
    c->batch = 1;
    return 0;
}

/* Whether client connection c keeps no frame: then a send goes at once and a flush
 * has nothing to do, without out_mu. The client's sends and keeps are serialised by
 * its rpc channel's mutex, which the thread sending holds; the one thing that runs
 * beside them is a receiving thread's flush (shm_recv), which only empties `out`, and
 * stores out_n = 0 only after its write: a sender that sees 0 writes after every frame
 * kept before it. A forked child's inherited frames (not 0) take the locked way,
 * which forgets them (out_forked). */
static int client_idle(shm_conn *c)
{
    return !c->loop && !__atomic_load_n(&c->out_n, __ATOMIC_ACQUIRE);
}

/* Keeps src, sent by another thread during a turn or by the turn's after such
 * frames, in side (out_mu held), for the turn's end to send after the turn's own
 * frames (side_take): 0 or SHOAL_ENOMEM. */
static int side_keep(shm_conn *c, const shm_src *src)
{
    size_t bound = src->f ? rpc__frame_bound(src->f, src->md) : src->len;
    if (c->side_len + BATCH_LEN + bound > c->side_cap) {
        size_t cap = c->side_cap ? c->side_cap : 4096;
        while (cap < c->side_len + BATCH_LEN + bound)
            cap *= 2;
        uint8_t *p = realloc(c->side, cap);
        if (!p)
            return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", c->base.peer);
        c->side = p;
        c->side_cap = cap;
    }
    uint8_t *at = c->side + c->side_len + BATCH_LEN;
    size_t len = src->len;
    if (src->f)
        len = rpc__frame_write(at, src->f, src->md);
    else
        memcpy(at, src->buf, len);
    le32_put(c->side + c->side_len, (uint32_t)len);
    c->side_len += BATCH_LEN + len;
    __atomic_store_n(&c->side_n, c->side_n + 1, __ATOMIC_RELEASE);
    return 0;
}

/* At the turn's end (out_mu held, keeping cleared): the frames side kept join out, in
 * order (a full batch sent on the way). 0 or a code of shoal_pipe_send (the rest are
 * dropped: the connection is broken). */
static int side_take(shm_conn *c)
{
    int rc = 0;
    for (size_t at = 0; at < c->side_len && rc == 0;) {
        uint32_t len = le32_get(c->side + at);
        rc = out_keep_bytes(c, c->side + at + BATCH_LEN, len, SEND_TIMEOUT);
        at += BATCH_LEN + len;
    }
    c->side_len = 0;
    __atomic_store_n(&c->side_n, 0, __ATOMIC_RELAXED);
    return rc;
}

/* Sends one frame (later: as send_later), after the ones kept. On the server, the frames
 * its loop's thread sends during on_pipe's turn are kept in out — without out_mu, as
 * no other thread writes out or the pipe then: a frame another thread sends meanwhile
 * goes to side, and so do the turn's after it, for the turn's end to write after the
 * turn's (all in order). Outside a turn the server keeps nothing (its end sent it): a
 * send that happens after it goes at once. The client keeps what send_later gave it
 * until a send or a flush; keeping nothing, it writes at once without out_mu
 * (client_idle). To a peer that does not read batch messages, every frame goes at
 * once. */
static int shm_put(shm_conn *c, const shm_src *src, int later, shoal_duration timeout)
{
    if (!c->batch || (!later && client_idle(c)))
        return src_send(c, src, timeout);
    if (turn_conn == c && !__atomic_load_n(&c->side_n, __ATOMIC_ACQUIRE)) {
        out_forked(c);
        return out_keep(c, src, timeout);
    }
    pthread_mutex_lock(&c->out_mu);
    int rc;
    if (c->keeping) {
        rc = side_keep(c, src);
    } else {
        out_forked(c);
        if (later)
            rc = out_keep(c, src, timeout);
        else if (!c->out_n)
            rc = src_send(c, src, timeout);
        else if ((rc = out_keep(c, src, timeout)) == 0)
            rc = out_flush(c, timeout, 0);
    }
    pthread_mutex_unlock(&c->out_mu);
    return rc;
}

static int shm_send(rpc_conn *base, const void *buf, size_t len, shoal_duration timeout)
{
    return shm_put((shm_conn *)base, &(shm_src){.buf = buf, .len = len}, 0, timeout);
}

/* rpc_conn.send_later (the client's, and the server's in direct receive): to a peer
 * that reads batch messages, keeps the frame for the next send, flush or waiting
 * receive (a pipelined burst leaves as one message); else sends it at once. */
static int shm_send_later(rpc_conn *base, const void *buf, size_t len,
                          shoal_duration timeout)
{
    return shm_put((shm_conn *)base, &(shm_src){.buf = buf, .len = len}, 1, timeout);
}

/* rpc_conn.send_frame: shm_put of a frame that, kept, is encoded in place. */
static int shm_send_frame(rpc_conn *base, const rpc_frame *f, const shoal_rpc_md *md,
                          int later, shoal_duration timeout)
{
    return shm_put((shm_conn *)base, &(shm_src){.f = f, .md = md}, later, timeout);
}

/* rpc_conn.flush: sends what send_later kept (nothing during a turn: its end does). */
static int shm_flush(rpc_conn *base, shoal_duration timeout)
{
    shm_conn *c = (shm_conn *)base;
    if (!c->batch || client_idle(c))
        return 0;
    pthread_mutex_lock(&c->out_mu);
    int rc = c->keeping ? 0 : out_flush(c, timeout, 0);
    pthread_mutex_unlock(&c->out_mu);
    return rc;
}

/* ---- frames in --------------------------------------------------------------------- */

/* Takes the batch message m[len] (in c->buf) apart after checking every length: 0, or
 * SHOAL_EINVALID_DATA naming what is wrong. */
static int batch_open(shm_conn *c, const uint8_t *m, size_t len)
{
    if (len < BATCH_HDR + BATCH_LEN || m[1] != BATCH_V1)
        return shoal__err(SHOAL_EINVALID_DATA,
                          "rpc %s: a batch message of %zu bytes, version %u (this "
                          "side reads version %d)",
                          c->base.peer, len, len > 1 ? m[1] : 0, BATCH_V1);
    size_t at = BATCH_HDR, n = 0;
    for (; at < len; n++) {
        uint32_t flen = len - at >= BATCH_LEN ? le32_get(m + at) : 0;
        if (flen == 0 || flen > len - at - BATCH_LEN)
            return shoal__err(SHOAL_EINVALID_DATA,
                              "rpc %s: a corrupt batch message: frame %zu of %s bytes "
                              "at offset %zu of %zu",
                              c->base.peer, n, flen ? "too many" : "no", at, len);
        at += BATCH_LEN + flen;
    }
    c->next = m + BATCH_HDR;
    c->left = len - BATCH_HDR;
    return 0;
}

/* The next frame of the batch message at hand (c->left > 0). */
static int batch_take(shm_conn *c, const uint8_t **buf, size_t *len)
{
    *len = le32_get(c->next);
    *buf = c->next + BATCH_LEN;
    c->next += BATCH_LEN + *len;
    c->left -= BATCH_LEN + *len;
    return 1;
}

/* Receives one frame into c->buf: 1, 0 (timeout / nothing), or a negative code. With
 * `quick` (a timeout of 0 that does not look at the peer: shoal__pipe_try_recv). */
static int recv_frame(shm_conn *c, const uint8_t **buf, size_t *len,
                      shoal_duration timeout, int quick)
{
    if (c->left)
        return batch_take(c, buf, len);
    for (;;) {
        int rc = quick ? shoal__pipe_try_recv(c->pipe, c->buf, c->cap, len)
                       : shoal_pipe_recv(c->pipe, c->buf, c->cap, len, timeout);
        if (rc == 0 && *len && c->buf[0] == BATCH_MARK && (!c->loop || c->batch)) {
            if ((rc = batch_open(c, c->buf, *len)) == 0) {
                if (!c->loop && !c->heard && batch_on(c) < 0)
                    shoal__err_clear(); /* the ACCEPT came in one; no room: send alone */
                c->heard = 1;
                return batch_take(c, buf, len);
            }
            if (!c->loop) /* the client: the connection is broken */
                return rc;
            rc = 0; /* the server: one undecodable frame, dropped and counted */
        }
        if (rc == 0) {
            c->heard = 1;
            *buf = c->buf;
            return 1;
        }
        if (rc == SHOAL_ETIMEDOUT || rc == SHOAL_EAGAIN)
            return 0;
        if (rc != SHOAL_EMSGSIZE)
            return rc;
        size_t cap = c->cap * 2; /* the message stays in the pipe: grow and retry */
        uint8_t *nb = cap <= (64u << 20) ? realloc(c->buf, cap) : NULL;
        if (!nb)
            return shoal__err(SHOAL_ENOMEM, "rpc %s: no buffer for a frame",
                              c->base.peer);
        c->buf = nb;
        c->cap = cap;
    }
}

/* A receive that must not wait skips the peer check: a waiting one does it, and spins
 * from the connection's seat, once what send_later kept is sent. */
static int shm_recv(rpc_conn *base, const uint8_t **buf, size_t *len,
                    shoal_duration timeout)
{
    shm_conn *c = (shm_conn *)base;
    if (timeout == 0 || c->left)
        return recv_frame(c, buf, len, timeout, 1);
    int sent = shm_flush(base, SEND_TIMEOUT);
    if (sent < 0)
        return sent;
    shoal__spin_seat *was = shoal__spin_seat_use(&c->seat);
    int rc = recv_frame(c, buf, len, timeout, 0);
    shoal__spin_seat_use(was);
    return rc;
}

/* rpc_conn.at_hand: frames of a batch message not taken yet (the receiving thread's). */
static int shm_at_hand(rpc_conn *base)
{
    return ((shm_conn *)base)->left != 0;
}

/* What a turn kept goes before the connection is let go (best effort: the peer may
 * be gone); during a turn, only by the turn's thread. */
static void out_drain(shm_conn *c)
{
    if (c->batch && c->pipe) {
        pthread_mutex_lock(&c->out_mu);
        if (!c->keeping || turn_conn == c)
            out_flush(c, SEND_TIMEOUT, 0);
        pthread_mutex_unlock(&c->out_mu);
    }
}

static void shm_stop(rpc_conn *base)
{
    shm_conn *c = (shm_conn *)base;
    out_drain(c);
    if (c->src)
        shoal_loop_remove(c->loop, c->src);
    c->src = NULL;
}

static void on_pipe(shoal_loop *loop, shoal_loop_source *src, int events, void *arg);

/* Watches the pipe again; frames of a batch message that a handler's thread left
 * unread are in no pipe to wake the loop: they are taken at once, as a turn. */
static int shm_watch(rpc_conn *base)
{
    shm_conn *c = (shm_conn *)base;
    int rc = shm_flush(base, SEND_TIMEOUT); /* what a handler's thread kept */
    if (rc == 0)
        rc = shoal_loop_add_pipe(c->loop, c->pipe, SHOAL_LOOP_READABLE, on_pipe, c,
                                 &c->src);
    if (rc == 0 && c->left)
        on_pipe(c->loop, c->src, SHOAL_LOOP_READABLE, c); /* may free c */
    return rc;
}

static void shm_close(rpc_conn *base)
{
    shm_conn *c = (shm_conn *)base;
    out_drain(c);
    if (c->pipe) {
        shoal_pipe_close(c->pipe);
        shoal_unlink(c->name, &c->attr.attr);
    }
    shoal__spin_seat_give(&c->seat);
    spin_unref(c->spin);
    pthread_mutex_destroy(&c->out_mu);
    free(c->side);
    free(c->out);
    free(c->buf);
    free(c);
}

static const rpc_conn_ops shm_ops = {shm_send, shm_recv,  shm_stop, shm_close,
                                     NULL,     shm_watch, NULL};

static shm_conn *conn_new(const char *pipe_name, const shoal_attr *attr)
{
    shm_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cap = 4096;
    c->buf = malloc(c->cap);
    if (!c->buf) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->out_mu, NULL);
    c->base.ops = &shm_ops;
    c->base.send_frame = shm_send_frame;
    c->base.window = RPC_SHM_WINDOW; /* see the top: flow control */
    c->base.t = c;
    snprintf(c->name, sizeof(c->name), "%s", pipe_name);
    snprintf(c->base.peer, sizeof(c->base.peer), "shm pipe %s", pipe_name);
    attr_keep(&c->attr, attr);
    return c;
}

/* ---- client ------------------------------------------------------------------------ */

int rpc__shm_connect(rpc_conn **out, const char *name,
                     const shoal_rpc_channel_config *cfg)
{
    static _Atomic unsigned counter;
    const shoal_attr *attr = cfg ? cfg->attr : NULL;
    int rc = shoal_name_check(name);
    if (rc < 0)
        return rc;
    char pname[SHOAL_NAME_MAX + 16];
    snprintf(pname, sizeof(pname), "%s:c%d.%u", name, (int)getpid(), counter++);
    if (strlen(pname) > SHOAL_NAME_MAX)
        return shoal__err(SHOAL_ENAME, "rpc shm://%s: name too long for its pipes", name);

    shoal_queue *accept_q;
    if ((rc = shoal_queue_open(&accept_q, name, SHOAL_OPEN, NULL, attr)) < 0)
        return rc;
    shm_conn *c = conn_new(pname, attr);
    if (!c) {
        shoal_queue_close(accept_q);
        return shoal__err(SHOAL_ENOMEM, "rpc shm://%s: out of memory", name);
    }
    shoal_queue_config pcfg = {.max_msg =
                                   cfg && cfg->max_frame ? cfg->max_frame : DEFAULT_FRAME,
                               .capacity = PIPE_CAPACITY};
    rc = shoal_pipe_open(&c->pipe, pname, 0, SHOAL_CREATE, &pcfg, attr);
    /* the request: the pipe's name, then (when the server's queue has room for it)
     * batch_hello, which a server that does not read batch messages ignores */
    char req[ACCEPT_MSG_MAX + sizeof(batch_hello)];
    size_t rlen = strlen(pname) + 1;
    memcpy(req, pname, rlen);
    if (rlen + sizeof(batch_hello) - 1 <= ACCEPT_MSG_MAX) {
        memcpy(req + rlen, batch_hello, sizeof(batch_hello) - 1);
        rlen += sizeof(batch_hello) - 1;
    }
    if (rc == 0)
        rc = shoal_queue_put(accept_q, req, rlen,
                             cfg && cfg->connect_timeout > 0 ? cfg->connect_timeout
                                                             : SHOAL_SEC(2));
    shoal_queue_close(accept_q);
    if (rc < 0) {
        shm_close(&c->base);
        return rc;
    }
    spin_seat(c, spin_open(name, SHOAL_OPEN, attr));
    c->base.send_later = shm_send_later; /* at once until the ACCEPT says batch */
    c->base.flush = shm_flush;
    c->base.at_hand = shm_at_hand;
    *out = &c->base;
    return 0;
}

/* ---- server ------------------------------------------------------------------------ */

typedef struct shm_listener {
    rpc_listener base;
    shoal_rpc_server *s;
    shoal_queue *q;
    shoal_loop_source *src;
    attr_copy attr;
    shoal__seg *claim; /* NAME:server, holding our owner id */
    spin_block *spin;  /* NAME:spin (NULL: none) */
    char name[SHOAL_NAME_MAX + 1];
} shm_listener;

/* The word of NAME:server: the owner id of the listening process, or 0. */
static _Atomic uint32_t *claim_word(shoal__seg *seg)
{
    return (_Atomic uint32_t *)seg->payload;
}

/* Makes this process the one listening on `name`: 0, SHOAL_EBUSY (a live process
 * listens there), or the errors of opening NAME:server. */
static int claim(shoal__seg **out, const char *name, const shoal_attr *attr)
{
    char cname[SHOAL_NAME_MAX + 16];
    snprintf(cname, sizeof(cname), "%s:server", name);
    int rc = shoal_name_check(name);
    if (rc < 0)
        return rc;
    if (strlen(cname) > SHOAL_NAME_MAX)
        return shoal__err(SHOAL_ENAME, "rpc shm://%s: name too long", name);
    shoal__seg_spec spec = {.kind = SHOAL_KIND_SHM,
                            .what = "rpc server claim",
                            .count = sizeof(uint64_t),
                            .check_count = true,
                            .payload_size = sizeof(uint64_t)};
    shoal__seg *seg;
    rc = shoal__seg_open(&seg, cname, SHOAL_OPEN_OR_CREATE, &spec, attr);
    if (rc < 0)
        return rc;
    uint32_t me = shoal__seg_owner(seg);
    uint32_t cur = atomic_load(claim_word(seg));
    for (;;) {
        if (!me || (cur && shoal__owner_alive(seg, cur))) {
            int32_t pid = me ? shoal__owner_pid(seg, cur) : 0;
            shoal__seg_close(seg);
            return me ? shoal__err(SHOAL_EBUSY,
                                   "rpc shm://%s: a server (process %d) already "
                                   "listens there",
                                   name, (int)pid)
                      : shoal__err(SHOAL_EBUSY, "rpc shm://%s: %s has no free user slot",
                                   name, cname);
        }
        if (atomic_compare_exchange_weak(claim_word(seg), &cur, me))
            break;
    }
    *out = seg;
    return 0;
}

static void unclaim(shoal__seg *seg)
{
    uint32_t me = shoal__seg_owner(seg);
    atomic_compare_exchange_strong(claim_word(seg), &me, 0);
    shoal__seg_close(seg);
}

/* Starts (on) or ends on_pipe's turn on c, on the loop's thread: at its end, the
 * responses it kept go, and after them those other threads sent meanwhile (0 or a code
 * of shoal_pipe_send), as a batch message even when alone with `as_batch`. */
static int turn(shm_conn *c, int on, int as_batch)
{
    if (!c->batch)
        return 0;
    pthread_mutex_lock(&c->out_mu);
    int rc = 0;
    c->keeping = on;
    turn_conn = on ? c : NULL;
    if (!on && c->side_n)
        rc = side_take(c);
    if (!on && rc == 0)
        rc = out_flush(c, SEND_TIMEOUT, as_batch);
    pthread_mutex_unlock(&c->out_mu);
    return rc;
}

/* The client's pipe is readable (or failed: events < 0): its frames, up to 64 a turn.
 * Only the first receive asks after the peer: the loop watching the pipe reports a
 * peer gone, so the ones that find the pipe empty need not. */
static void on_pipe(shoal_loop *loop, shoal_loop_source *src, int events, void *arg)
{
    (void)loop, (void)src;
    shm_conn *c = arg;
    const uint8_t *buf;
    size_t len;
    int rc = events < 0 ? events : 1;
    turn(c, 1, 0);
    rpc__server_turn_begin(&c->base);
    for (int n = 0; rc == 1 && (n < 64 || c->left); n++) {
        rc = recv_frame(c, &buf, &len, SHOAL_NOWAIT, n > 0);
        if (rc == 1)
            rpc__server_frame(&c->base, buf, len);
    }
    rpc__server_turn_end(&c->base); /* inline receive: the turn's requests in a row */
    int sent = turn(c, 0, 0);
    if (rc >= 0 && sent < 0)
        rc = sent; /* a response kept could not go: the connection is broken */
    if (rc < 0)
        rpc__server_conn_lost(&c->base); /* may free c */
    else
        rpc__server_handoff(&c->base); /* a handler in direct receive: its own reader */
}

/* A connection request: the name of a client's pipe. */
static void accept_one(shm_listener *l, const char *pname, int batch)
{
    shm_conn *c = conn_new(pname, &l->attr.attr);
    if (!c)
        return;
    c->loop = rpc__server_loop(l->s);
    if (shoal_name_check(pname) < 0 ||
        shoal_pipe_open(&c->pipe, pname, 1, SHOAL_OPEN, NULL, &l->attr.attr) < 0) {
        c->pipe = NULL; /* a request with a bad name, or its client gone: nothing */
        shm_close(&c->base);
        return;
    }
    if (batch && batch_on(c) < 0) {
        shm_close(&c->base);
        return;
    }
    if (batch) { /* a handler in direct receive keeps its responses too */
        c->base.send_later = shm_send_later;
        c->base.flush = shm_flush;
        c->base.turn_batches = 1;
    }
    spin_seat(c, spin_ref(l->spin));
    if (shm_watch(&c->base) < 0) {
        shm_close(&c->base);
        return;
    }
    /* to a client that reads batch messages, the ACCEPT goes as one: this side reads
     * them too */
    turn(c, 1, 0);
    int rc = rpc__server_conn_new(l->s, &c->base);
    if (turn(c, 0, 1) < 0 || rc < 0)
        rpc__server_conn_lost(&c->base);
}

static void on_accept(shoal_loop *loop, shoal_loop_source *src, int events, void *arg)
{
    (void)loop, (void)src, (void)events;
    shm_listener *l = arg;
    char pname[ACCEPT_MSG_MAX + 1];
    size_t len;
    for (int n = 0; n < 16; n++) {
        int rc = shoal_queue_try_get(l->q, pname, ACCEPT_MSG_MAX, &len);
        if (rc < 0)
            return;
        pname[len < ACCEPT_MSG_MAX ? len : ACCEPT_MSG_MAX] = 0;
        size_t nlen = strlen(pname);
        int batch = len == nlen + sizeof(batch_hello) &&
                    !memcmp(pname + nlen + 1, batch_hello, sizeof(batch_hello) - 1);
        accept_one(l, pname, batch);
    }
}

/* Removes the names of the listener on `name` (NAME, NAME:spin, then NAME:server),
 * if this process still holds the claim `seg`: while it does, no other server is past
 * claim(), so none uses the names removed; one that opened NAME:server before its
 * removal finds the claim live (SHOAL_EBUSY), one that opens it after makes a new one.
 * A process that inherited the listener (a fork child) holds no claim: it removes
 * nothing. */
static void unlink_names(shoal__seg *seg, const char *name, const shoal_attr *attr)
{
    if (atomic_load(claim_word(seg)) != shoal__seg_owner(seg))
        return;
    char n[SHOAL_NAME_MAX + 16];
    shoal_unlink(name, attr);
    snprintf(n, sizeof(n), "%s:spin", name);
    shoal_unlink(n, attr);
    snprintf(n, sizeof(n), "%s:server", name);
    shoal_unlink(n, attr);
    shoal__err_clear(); /* a name already gone (shoal gc, by hand): nothing to do */
}

static void shm_listener_close(rpc_listener *base)
{
    shm_listener *l = (shm_listener *)base;
    shoal_loop_remove(rpc__server_loop(l->s), l->src);
    unlink_names(l->claim, l->name, &l->attr.attr);
    shoal_queue_close(l->q);
    spin_unref(l->spin);
    unclaim(l->claim);
    free(l);
}

int rpc__shm_listen(shoal_rpc_server *s, const char *name, const shoal_attr *attr)
{
    shm_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return shoal__err(SHOAL_ENOMEM, "rpc shm://%s: out of memory", name);
    attr_keep(&l->attr, attr);
    snprintf(l->name, sizeof(l->name), "%s", name);
    /* The connection queue of a killed server outlives it: a later server on the same
     * name (once this one is gone: claim) takes over the requests still there (a
     * client gone meanwhile is skipped by accept_one). A server that closes removes
     * it (unlink_names). */
    shoal_queue_config qcfg = {.max_msg = ACCEPT_MSG_MAX, .capacity = 256};
    int rc = claim(&l->claim, name, &l->attr.attr);
    if (rc < 0) {
        free(l);
        return rc;
    }
    rc = shoal_queue_open(&l->q, name, SHOAL_OPEN_OR_CREATE, &qcfg, &l->attr.attr);
    if (rc == 0)
        rc = shoal_loop_add_queue(rpc__server_loop(s), l->q, SHOAL_LOOP_READABLE,
                                  on_accept, l, &l->src);
    if (rc < 0) {
        if (l->q)
            shoal_queue_close(l->q);
        unclaim(l->claim);
        free(l);
        return rc;
    }
    l->spin = spin_open(name, SHOAL_OPEN_OR_CREATE, &l->attr.attr);
    l->base.close = shm_listener_close;
    l->s = s;
    rpc__server_add_listener(s, &l->base);
    return 0;
}
