/*
 * rpc_nng.c — the nng transports: ipc:///path, tcp://host:port, tls+tcp://host:port.
 *
 * Each connection is one nng byte stream (nng_stream: a Unix socket, a TCP
 * connection, or a TLS session over one) carrying frames, each a 4-byte big-endian length
 * followed by one shoal.rpc.Frame in the protobuf wire format (schemas/shoal/rpc.proto),
 * so a peer needs nothing of shoal but that schema. A frame longer than MAX_FRAME closes
 * the connection (a peer cannot make us allocate without bound).
 *
 * Receiving goes through a buffer per connection (rx_*): each read takes whatever
 * the stream has (up to the buffer's room), and the frames complete in it are then
 * taken one by one, so a frame costs no read of its own once its bytes are there, and
 * a pipelined batch costs one. The client reads on the calling thread
 * (rx_read_wait: nng reads at once when bytes are waiting, else its poller thread
 * wakes the caller; the read carries the caller's timeout; over tcp:// the caller
 * reads and waits on the socket itself, so no thread of nng's is involved: see
 * "A tcp:// connection's socket" below, and sock_wait: a spin, then ppoll). Over TLS it
 * keeps one read in flight instead, which it waits for until the caller's timeout; a read
 * still in flight then stays so for the next call (aborting one breaks a TLS stream). The
 * server's loop reads a tcp:// connection's socket itself (see "The loop reading a
 * socket" below). Else the server drives its reads from nng's completion callbacks,
 * which run on nng's threads:
 * each complete frame goes into its listener's inbox, and an eventfd watched by the
 * server's loop says the inbox is not empty, so the call machinery runs on the loop's
 * thread, as it does for shm://. Accepted connections, and connections lost, reach
 * the loop the same way, in order. A handler in direct receive (ipc://, tcp://: see
 * "Direct receive" below) reads its connection on its own thread instead, as the
 * client does. nng's threads do not survive fork: see fork_check.
 *
 * Sending: synchronous, under a per-connection mutex (send_mu), from whichever thread
 * sends; a frame is one write of its header and body. A handler in direct receive that
 * still has requests at hand sends its replies with send_later (rpc_conn.send_later):
 * they are appended to the connection's tx buffer and go out, in order, in one write —
 * ahead of the next frame any thread sends, or when its reader finds nothing more to
 * read and is about to wait (own_recv; a receive that only looks, with no time to wait,
 * writes nothing: the reply to the request at hand follows), or when the connection is
 * watched again (n_watch) or stopped; past TX_MAX bytes they are written at once. So a
 * pipelined batch of requests costs one read and one write, with no timer: what is kept
 * waits at most for the handling of requests already received. The loop's thread keeps
 * what it sends to a connection during that connection's turn the same way (turn_of),
 * and writes it at the turn's end.
 *
 * Lifetime: a connection counts its references — the call machinery's, one per inbox
 * entry naming it — and is freed when the last goes. Stopping it (connection lost,
 * server shut down) closes the stream and waits for its reader's callback, so nothing
 * more is posted; a listener is closed after its connections were stopped and drops
 * what its inbox still holds.
 *
 * Access: the Unix socket file of an ipc:// listener is created mode 0600 (owner
 * only; shoal_attr.mode overrides). tcp:// connections answer the token challenge
 * (rpc_auth.c). tls+tcp:// runs nng's TLS (mbedTLS): the client always verifies the
 * server's certificate against its CA file; the server asks for a client certificate
 * but lets the handshake complete without a valid one ("optional" mode), and its
 * challenge then refuses the client with UNAUTHENTICATED — so a client learns why it
 * was refused instead of seeing a broken handshake. The handshake runs on the first
 * I/O: so the server's ACCEPT, sent from the loop's thread, would wait for the
 * client's part of it; it is sent without waiting instead (first_send: later frames
 * of the connection wait for it), and a client that does not finish the handshake
 * within the send timeout is disconnected. Two habits of nng's TLS streams (1.5) shape
 * the client: aborting a read breaks the session, so reads carry no timeout (see n_recv);
 * and when the TCP connection fails while no read is queued, later reads never complete,
 * so a client that waited a slice for nothing checks that the connection still has a peer
 * address (NNG_OPT_REMADDR), which fails once nng closed it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "loop_internal.h"
#include "rpc_internal.h"
#include "wait.h"

#ifndef SHOAL_HAVE_NNG

int rpc__nng_connect(rpc_conn **out, const char *url, const shoal_rpc_channel_config *cfg)
{
    (void)out, (void)cfg;
    return shoal__err(SHOAL_EINVAL, "rpc %s: this libshoal was built without nng", url);
}

int rpc__nng_listen(shoal_rpc_server *s, const char *url, const shoal_attr *attr)
{
    (void)s, (void)attr;
    return shoal__err(SHOAL_EINVAL, "rpc %s: this libshoal was built without nng", url);
}

#else

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#define MAX_FRAME  (64u << 20)
#define TX_MAX     (256u << 10) /* frames kept by send_later: past this, written */
#define FLUSH_WAIT SHOAL_SEC(5) /* a peer not reading for this long is broken */
#define PEM_MAX    (1u << 20)
#define TLS_LINGER SHOAL_MS(50)

/* What nng's threads hand to the loop's thread, in order. */
typedef struct posted {
    struct posted *next;
    enum { P_ADOPT, P_FRAME, P_LOST } kind;
    struct nconn *c;
    uint8_t *frame;
    size_t len;
} posted;

typedef struct nconn {
    rpc_conn base;
    nng_stream *st;
    pthread_mutex_t send_mu;
    nng_aio *send_aio;
    /* the frames send_later kept (send_mu guards them): they go out first, with the
     * next frame sent or at the next flush (see "Sending" above) */
    uint8_t *tx;
    size_t tx_len, tx_cap;
    nng_aio *recv_aio; /* tls client, server: with a callback; else waited for */
    /* tcp://: the stream's socket, looked up when the connection is made (see "A
     * tcp:// connection's socket"); -1: none (ipc://, tls+tcp://, not found) */
    int fd;
    int fd_hint; /* the lowest free descriptor before the socket was made (-1: none) */
    /* the receive buffer: rb[rb_off, rb_len) is received and not yet taken */
    uint8_t *rb;
    size_t rb_cap, rb_len, rb_off;
    /* client side, tls: the read in flight (rx_mu guards the flags) */
    pthread_mutex_t rx_mu;
    pthread_cond_t rx_cv;
    int rx_busy, rx_ready;
    /* server side */
    shoal_loop *loop;
    struct nlistener *listener;
    _Atomic int refs;
    _Atomic int stopped;
    int tls;
    _Atomic int64_t last_send; /* tls: when the last send completed */
    _Atomic int closer;        /* server, tls: the lingering close (see close_later) */
    /* server side, tls: the first frame (ACCEPT) is sent without waiting, as it waits
     * for the TLS handshake; later sends wait for it (send_mu guards these) */
    nng_aio *first_aio;
    uint8_t *first_buf;
    int first_started, first_busy, first_failed;
    pthread_cond_t first_cv;
    /* server side, direct receive (see "Direct receive" above): the handler's thread
     * reads (owned; the listener's mu guards it and the pending list), with own_aio */
    int owned;
    nng_aio *own_aio;
    struct posted *pending, *pending_tail; /* posted before the hand-over, in order */
    struct posted *cur;                    /* the frame the owner's last recv gave */
    int turn;                              /* had frames in the loop's current turn */
    struct nconn *turn_next;
    /* server side, tcp://: the loop reads the socket itself (see "The loop reading a
     * socket" below) while this is set: its source on the loop */
    shoal_loop_source *sock_src;
} nconn;

static int nng_rc(int rv, const char *what, const char *url)
{
    return shoal__err(
        rv == NNG_ENOMEM                                                ? SHOAL_ENOMEM
        : rv == NNG_ETIMEDOUT                                           ? SHOAL_ETIMEDOUT
        : rv == NNG_EINVAL || rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? SHOAL_EINVAL
        : rv == NNG_EADDRINUSE                                          ? SHOAL_EBUSY
        : rv == NNG_ECONNREFUSED || rv == NNG_ENOENT                    ? SHOAL_ENOENT
        : rv == NNG_EPERM || rv == NNG_EPEERAUTH || rv == NNG_ECRYPTO   ? SHOAL_EACCES
                                                                        : SHOAL_ESYS,
        "rpc %s: %s: %s", url, what, nng_strerror(rv));
}

static int is_tls(const char *url)
{
    return strncmp(url, "tls+tcp://", 10) == 0;
}

static int is_tcp(const char *url)
{
    return strncmp(url, "tcp://", 6) == 0 || is_tls(url);
}

/* ---- fork ----------------------------------------------------------------------------
 */

/* nng's threads do not survive fork(): in a child of a process that used nng, reads
 * and sends would wait for them forever. Once this process uses nng, a fork handler
 * marks its children, where every entry point of this file fails at once instead. */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static _Atomic int forked_child;

static void on_fork_child(void)
{
    atomic_store(&forked_child, 1);
}

static void fork_watch(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

/* 0, or SHOAL_ECLOSED in a child forked after this process used nng. */
static int fork_check(const char *url)
{
    pthread_once(&fork_once, fork_watch);
    if (!atomic_load_explicit(&forked_child, memory_order_relaxed))
        return 0;
    return shoal__err(SHOAL_ECLOSED,
                      "rpc %s: nng is unusable in a process forked after its parent "
                      "used nng (nng's threads do not survive fork): connect from a "
                      "process started anew (spawn), or before the parent uses nng",
                      url);
}

/* ---- receiving: the buffer ----------------------------------------------------------
 */

#define RB_MIN  (16u << 10)

static uint32_t frame_len(const uint8_t *h)
{
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* Takes the next complete frame out of the receive buffer: 1 with *buf (pointing into
 * the buffer, valid until the next rx_room) and *len, 0 when it is not complete yet,
 * or a negative code for a frame we refuse. */
static int rx_take(nconn *c, const uint8_t **buf, size_t *len)
{
    size_t avail = c->rb_len - c->rb_off;
    if (avail < 4)
        return 0;
    uint32_t n = frame_len(c->rb + c->rb_off);
    if (n > MAX_FRAME)
        return shoal__err(SHOAL_EMSGSIZE, "rpc %s: a frame of %u bytes", c->base.peer, n);
    if (avail - 4 < n)
        return 0;
    *buf = c->rb + c->rb_off + 4;
    *len = n;
    c->rb_off += 4 + (size_t)n;
    return 1;
}

/* Room for the next read (*iov): moves what is left of the buffer to its start, and
 * sizes the buffer for the frame begun (at least RB_MIN; back to RB_MIN after a large
 * frame). Call after rx_take returned 0. Returns 0 or SHOAL_ENOMEM. */
static int rx_room(nconn *c, nng_iov *iov)
{
    size_t left = c->rb_len - c->rb_off;
    if (c->rb_off && left)
        memmove(c->rb, c->rb + c->rb_off, left);
    c->rb_len = left;
    c->rb_off = 0;
    size_t want = RB_MIN;
    if (left >= 4 && 4 + (size_t)frame_len(c->rb) > want)
        want = 4 + (size_t)frame_len(c->rb);
    if (c->rb_cap < want || (c->rb_cap > 4 * RB_MIN && want == RB_MIN)) {
        uint8_t *nb = realloc(c->rb, want);
        if (!nb)
            return shoal__err(SHOAL_ENOMEM, "rpc %s: no memory for a frame",
                              c->base.peer);
        c->rb = nb;
        c->rb_cap = want;
    }
    *iov = (nng_iov){c->rb + c->rb_len, c->rb_cap - c->rb_len};
    return 0;
}

/*
 * A tcp:// connection's socket, used without nng. A read through nng that finds
 * nothing makes nng arm its poller, whose thread then reads and wakes the caller: two
 * thread switches on every wait, where the kernel could wake the caller itself; and
 * each read or write through nng's aio costs locks and a hand-over of its own. nng
 * (1.5) does not give a stream's socket, so a tcp:// connection's is looked up once
 * (when it is made, before any thread uses it: c->fd), as a descriptor that is a
 * socket connected with the stream's two addresses (a TCP connection's pair names one
 * socket on a host). From then on the connection's bytes go straight through that
 * socket: reads with recv (sock_read: what is there, without waiting; the reading
 * thread waits with ppoll, sock_wait), writes with sendmsg (sock_write_all, waiting
 * for room with ppoll). One thread reads a connection at a time, and writes are
 * serialised by send_mu, as through nng.
 *
 * The lookup costs the same whatever the number of descriptors the process has open
 * (scanning them all took milliseconds with thousands open): the kernel gives a new
 * descriptor the lowest free number, so the socket is looked for among the FD_NEAR
 * numbers from the lowest that was free just before it was made (fd_hint: probed
 * before the dial, or before the accept was posted), then among the FD_NEAR numbers
 * below the lowest free now (the most recent ones, if a descriptor took the hint's
 * number meanwhile): 2 system calls per number looked at, at most 2 * FD_NEAR
 * numbers. A socket not found there (many descriptors opened by other threads in the
 * meantime) is read and written through nng, as over ipc://.
 *
 * Through a duplicate descriptor, which the connection closes when freed: nng still
 * owns and closes the socket (closing the stream shuts the socket down first, which
 * ends a read, poll or write on the duplicate too), and never reads it unless asked.
 * ipc:// and tls+tcp:// (its bytes go through mbedTLS), or a socket not found, keep
 * nng's reads and writes.
 *
 * Before it sleeps in ppoll, the reader spins for the spin budget (shoal__wait_spin,
 * the cadence of every spin in shoal), polling the socket without a timeout and
 * giving the CPU away (sched_yield) after each poll that found nothing. The spin is
 * for the peer on another CPU: a sleeping reader is woken through the scheduler, and
 * an idle virtual CPU takes tens of microseconds to wake (Redis's own round trip on
 * loopback, both processes sleeping in epoll, is 70 us on a 2-vCPU guest), where a
 * reply within the budget is seen at once. The yield is for the peer on the same CPU,
 * which runs at once instead of waiting for the spin to end (without it, a client at
 * depth 16 did 170-230 k requests/s instead of 670-860 k).
 */
#define FD_NEAR 16 /* descriptor numbers looked at from each of the two starts */

/* The lowest free descriptor number now (-1: none). */
static int lowest_free_fd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd;
}

static int same_addr(const struct sockaddr_storage *a, const nng_sockaddr *n)
{
    if (a->ss_family == AF_INET && n->s_family == NNG_AF_INET) {
        const struct sockaddr_in *i = (const struct sockaddr_in *)a;
        return i->sin_port == n->s_in.sa_port && i->sin_addr.s_addr == n->s_in.sa_addr;
    }
    if (a->ss_family == AF_INET6 && n->s_family == NNG_AF_INET6) {
        const struct sockaddr_in6 *i = (const struct sockaddr_in6 *)a;
        return i->sin6_port == n->s_in6.sa_port &&
               memcmp(&i->sin6_addr, n->s_in6.sa_addr, 16) == 0;
    }
    return 0;
}

/* Whether descriptor fd is a socket connected from `loc` to `rem`. */
static int fd_is(int fd, const nng_sockaddr *loc, const nng_sockaddr *rem)
{
    struct sockaddr_storage a;
    socklen_t n = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &n) != 0 || !same_addr(&a, loc))
        return 0;
    n = sizeof(a);
    return getpeername(fd, (struct sockaddr *)&a, &n) == 0 && same_addr(&a, rem);
}

/* For a stream of url about to be made: the number its socket most likely gets (the
 * lowest free now) when stream_fd will look for it (tcp://), else -1. */
static int fd_hint(const char *url)
{
    return strncmp(url, "tcp://", 6) == 0 ? lowest_free_fd() : -1;
}

/* The first of the descriptors [lo, lo + FD_NEAR) that is a socket connected from
 * `loc` to `rem`, or -1. */
static int fd_near(int lo, const nng_sockaddr *loc, const nng_sockaddr *rem)
{
    for (int fd = lo < 0 ? 0 : lo; fd < lo + FD_NEAR; fd++)
        if (fd_is(fd, loc, rem))
            return fd;
    return -1;
}

/* The socket of a tcp:// stream (not tls: its reads go through mbedTLS's buffer), or
 * -1 when not found. */
static int stream_fd(nconn *c)
{
    nng_sockaddr loc, rem;
    if (c->tls || strncmp(c->base.peer, "tcp://", 6) != 0 ||
        nng_stream_get_addr(c->st, NNG_OPT_LOCADDR, &loc) != 0 ||
        nng_stream_get_addr(c->st, NNG_OPT_REMADDR, &rem) != 0)
        return -1;
    int found = c->fd_hint >= 0 ? fd_near(c->fd_hint, &loc, &rem) : -1, now;
    if (found < 0 && (now = lowest_free_fd()) >= 0)
        found = fd_near(now - FD_NEAR, &loc, &rem);
    /* A descriptor of our own for the socket: nng closing its own (after shutting the
     * socket down, which wakes a poll on ours) cannot leave this one naming another
     * file that reuses the number. */
    return found >= 0 ? fcntl(found, F_DUPFD_CLOEXEC, 0) : -1;
}

/* shoal__wait_spin's poll of the socket: 1 once readable (or closed, or failed). */
static int sock_ready(void *obj)
{
    struct pollfd p = {*(int *)obj, POLLIN, 0};
    if (poll(&p, 1, 0) != 0)
        return 1;
    sched_yield();
    return 0;
}

/* Waits in ppoll until the socket has `events` (or failed) or `deadline`: 1 when it
 * has, 0 when the time ran out. */
static int sock_poll(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int64_t left = deadline - shoal__now_ns();
        if (left <= 0)
            return 0;
        struct timespec ts = {left / 1000000000, left % 1000000000};
        int n = ppoll(&p, 1, deadline == INT64_MAX ? NULL : &ts, NULL);
        if (n > 0 || (n < 0 && errno != EINTR))
            return 1;
        if (n == 0)
            return 0;
    }
}

/* Waits on the stream's socket (c->fd >= 0), spinning first (above), until bytes are
 * there or `deadline`: 1 when readable (or closed, or failed), 0 when the time ran
 * out. */
static int sock_wait(nconn *c, int64_t deadline)
{
    shoal__waitable w = {.ready = sock_ready, .obj = &c->fd};
    if (shoal__wait_spin(&w, &(shoal__deadline){deadline}))
        return 1;
    return sock_poll(c->fd, POLLIN, deadline);
}

/* Reads what the socket has into the buffer, without waiting: 1 when bytes came, 0
 * when none were there, or a negative code (the peer closed, the connection failed, no
 * memory for a frame begun). A read that took all there was tells the loop (src, when
 * the loop's thread reads). */
static int sock_read(nconn *c, shoal_loop_source *src)
{
    nng_iov iov;
    int rc = rx_room(c, &iov);
    if (rc < 0)
        return rc;
    ssize_t n;
    do
        n = recv(c->fd, iov.iov_buf, iov.iov_len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    int none = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (src && (none || (n > 0 && (size_t)n < iov.iov_len)))
        shoal__loop_fd_drained(src);
    if (n > 0) {
        c->rb_len += (size_t)n;
        return 1;
    }
    if (none)
        return 0;
    return shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost: %s", c->base.peer,
                      n == 0 ? "closed by the peer" : strerror(errno));
}

/* Reads once into the buffer on the calling thread, waiting at most until `deadline`:
 * 1 when bytes came, 0 when the time ran out, or a negative code when the connection
 * is gone. tcp://: from the socket (what is there, else after sock_wait). Else the
 * read completes on nng's poller thread, which wakes this one, or at once when bytes
 * are waiting. Not for TLS: a read that times out breaks a TLS session. */
static int rx_read_wait(nconn *c, nng_aio *aio, int64_t deadline)
{
    while (c->fd >= 0) {             /* tcp://: the socket itself, no thread of nng's */
        int rc = sock_read(c, NULL); /* a pipelining peer's bytes are there at once */
        if (rc != 0)
            return rc;
        if (sock_wait(c, deadline) == 0)
            return 0;
    }
    nng_iov iov;
    int rc = rx_room(c, &iov);
    if (rc < 0)
        return rc;
    int64_t left = deadline - shoal__now_ns();
    if (left <= 0)
        return 0;
    nng_aio_set_timeout(aio, deadline == INT64_MAX
                                 ? NNG_DURATION_INFINITE
                                 : (nng_duration)((left + 999999) / 1000000));
    nng_aio_set_iov(aio, 1, &iov);
    nng_stream_recv(c->st, aio);
    nng_aio_wait(aio);
    int rv = nng_aio_result(aio);
    c->rb_len += nng_aio_count(aio);
    if (rv == 0 || (rv == NNG_ETIMEDOUT && nng_aio_count(aio)))
        return 1;
    if (rv == NNG_ETIMEDOUT)
        return 0;
    return shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost: %s", c->base.peer,
                      nng_strerror(rv));
}

/* ---- the connection ---------------------------------------------------------------- */

static int first_send(nconn *c, const uint8_t hdr[4], const void *buf, size_t len,
                      shoal_duration timeout);

/* 0, or SHOAL_EMSGSIZE for a frame over MAX_FRAME. */
static int frame_check(nconn *c, size_t len)
{
    if (len <= MAX_FRAME)
        return 0;
    return shoal__err(SHOAL_EMSGSIZE, "rpc %s: a frame of %zu bytes", c->base.peer, len);
}

/* write_all on the socket itself (tcp://): sendmsg, waiting in ppoll for room when
 * the socket's buffer is full. */
static int sock_write_all(nconn *c, nng_iov *iov, unsigned n, shoal_duration timeout)
{
    int64_t deadline = timeout < 0 ? INT64_MAX : shoal__now_ns() + timeout;
    struct iovec v[4];
    for (unsigned i = 0; i < n; i++)
        v[i] = (struct iovec){iov[i].iov_buf, iov[i].iov_len};
    struct iovec *at = v;
    while (n) {
        struct msghdr mh = {.msg_iov = at, .msg_iovlen = n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost: %s",
                              c->base.peer, strerror(errno));
        if (w < 0) { /* full: wait for room */
            if (!sock_poll(c->fd, POLLOUT, deadline))
                return shoal__err(SHOAL_ETIMEDOUT, "rpc %s: send timed out",
                                  c->base.peer);
            continue;
        }
        size_t done = (size_t)w;
        for (; n && done >= at->iov_len; at++, n--)
            done -= at->iov_len;
        if (n) {
            at->iov_base = (uint8_t *)at->iov_base + done;
            at->iov_len -= done;
        }
    }
    return 0;
}

/* Writes iov[0, n) whole (n <= 4), in as few system calls as the socket allows
 * (send_mu held; no entry empty): 0, SHOAL_ETIMEDOUT or SHOAL_EPEERDEAD. */
static int write_all(nconn *c, nng_iov *iov, unsigned n, shoal_duration timeout)
{
    if (c->fd >= 0) /* tcp:// (never TLS: last_send is for the linger) */
        return sock_write_all(c, iov, n, timeout);
    int rc = 0;
    nng_aio_set_timeout(c->send_aio, timeout < 0 ? NNG_DURATION_INFINITE
                                                 : (nng_duration)(timeout / 1000000 + 1));
    while (n && rc == 0) {
        nng_aio_set_iov(c->send_aio, n, iov);
        nng_stream_send(c->st, c->send_aio);
        nng_aio_wait(c->send_aio);
        int rv = nng_aio_result(c->send_aio);
        if (rv == NNG_ETIMEDOUT)
            rc = shoal__err(SHOAL_ETIMEDOUT, "rpc %s: send timed out", c->base.peer);
        else if (rv != 0)
            rc = shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost: %s", c->base.peer,
                            nng_strerror(rv));
        size_t done = nng_aio_count(c->send_aio);
        while (n && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++, n--;
        }
        if (n) {
            iov->iov_buf = (uint8_t *)iov->iov_buf + done;
            iov->iov_len -= done;
        }
    }
    atomic_store(&c->last_send, shoal__now_ns());
    return rc;
}

/* Writes the frames send_later kept (send_mu held). */
static int tx_write(nconn *c, shoal_duration timeout)
{
    if (!c->tx_len)
        return 0;
    nng_iov iov = {c->tx, c->tx_len};
    c->tx_len = 0;
    return write_all(c, &iov, 1, timeout);
}

/* Writes the frames send_later kept: 0 or a code of write_all. */
static int tx_flush(nconn *c, shoal_duration timeout)
{
    pthread_mutex_lock(&c->send_mu);
    int rc = tx_write(c, timeout);
    pthread_mutex_unlock(&c->send_mu);
    return rc;
}

/* rpc_conn.flush */
static int n_flush(rpc_conn *base, shoal_duration timeout)
{
    return tx_flush((nconn *)base, timeout);
}

/* The server connection whose turn this thread (the loop's) is running (on_sock):
 * what it sends to that connection is kept and written at the turn's end. */
static __thread nconn *turn_of;

static int n_send_later(rpc_conn *base, const void *buf, size_t len,
                        shoal_duration timeout);

/* Writes the frames kept and then this one, now. */
static int send_now(nconn *c, const void *buf, size_t len, shoal_duration timeout)
{
    int bad = fork_check(c->base.peer);
    if (bad == 0)
        bad = frame_check(c, len);
    if (bad < 0)
        return bad;
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    pthread_mutex_lock(&c->send_mu);
    if (c->first_aio && !c->first_started) { /* server, tls: the ACCEPT */
        int rc = first_send(c, hdr, buf, len, timeout);
        pthread_mutex_unlock(&c->send_mu);
        return rc;
    }
    int64_t until = timeout < 0 ? INT64_MAX : shoal__now_ns() + timeout;
    int64_t left;
    while (c->first_busy && (left = until - shoal__now_ns()) > 0)
        rpc__cond_wait(&c->first_cv, &c->send_mu, left);
    if (c->first_busy || c->first_failed) {
        pthread_mutex_unlock(&c->send_mu);
        return shoal__err(c->first_busy ? SHOAL_ETIMEDOUT : SHOAL_EPEERDEAD,
                          "rpc %s: the TLS handshake %s", c->base.peer,
                          c->first_busy ? "is not over" : "failed");
    }
    nng_iov iov[3];
    unsigned n = 0;
    if (c->tx_len) /* the frames kept go first, in the same write */
        iov[n++] = (nng_iov){c->tx, c->tx_len};
    iov[n++] = (nng_iov){hdr, 4};
    if (len)
        iov[n++] = (nng_iov){(void *)buf, len};
    c->tx_len = 0;
    int rc = write_all(c, iov, n, timeout);
    pthread_mutex_unlock(&c->send_mu);
    return rc;
}

static int n_send(rpc_conn *base, const void *buf, size_t len, shoal_duration timeout)
{
    nconn *c = (nconn *)base;
    return turn_of == c ? n_send_later(base, buf, len, timeout)
                        : send_now(c, buf, len, timeout);
}

/* rpc_conn.send_later (the client's, and the server's in direct receive): appends the
 * frame to c->tx, or sends it with them at once when they would grow past TX_MAX. */
static int n_send_later(rpc_conn *base, const void *buf, size_t len,
                        shoal_duration timeout)
{
    nconn *c = (nconn *)base;
    int bad = frame_check(c, len);
    if (bad < 0)
        return bad;
    pthread_mutex_lock(&c->send_mu);
    size_t need = c->tx_len + 4 + len;
    if (need > c->tx_cap && need <= TX_MAX) {
        size_t cap = c->tx_cap ? c->tx_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(c->tx, cap);
        if (nb) {
            c->tx = nb;
            c->tx_cap = cap;
        }
    }
    if (need > c->tx_cap) {
        pthread_mutex_unlock(&c->send_mu);
        return send_now(c, buf, len, timeout);
    }
    uint8_t *p = c->tx + c->tx_len;
    p[0] = (uint8_t)(len >> 24), p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
    if (len)
        memcpy(p + 4, buf, len);
    c->tx_len = need;
    pthread_mutex_unlock(&c->send_mu);
    return 0;
}

/* Client side, tls: the read in flight completed. */
static void client_recv_cb(void *arg)
{
    nconn *c = arg;
    pthread_mutex_lock(&c->rx_mu);
    c->rx_ready = 1;
    pthread_cond_broadcast(&c->rx_cv);
    pthread_mutex_unlock(&c->rx_mu);
}

/* Client side, tls: waits at most until `deadline` for the read in flight (starting
 * one when none is). Returns 1 when it completed with bytes, 0 when it is still in
 * flight, or a negative code. */
static int client_read_tls(nconn *c, int64_t deadline)
{
    pthread_mutex_lock(&c->rx_mu);
    if (!c->rx_busy) {
        nng_iov iov;
        int rc = rx_room(c, &iov);
        if (rc < 0) {
            pthread_mutex_unlock(&c->rx_mu);
            return rc;
        }
        c->rx_busy = 1;
        nng_aio_set_iov(c->recv_aio, 1, &iov);
        nng_stream_recv(c->st, c->recv_aio);
    }
    int64_t left;
    while (!c->rx_ready && (left = deadline - shoal__now_ns()) > 0)
        rpc__cond_wait(&c->rx_cv, &c->rx_mu, left);
    int done = c->rx_ready;
    if (done)
        c->rx_ready = c->rx_busy = 0;
    pthread_mutex_unlock(&c->rx_mu);
    nng_sockaddr sa;
    if (!done && nng_stream_get_addr(c->st, NNG_OPT_REMADDR, &sa) != 0)
        return shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost", c->base.peer);
    if (!done) /* the TCP connection under the TLS session is gone (see above) */
        return 0;
    int rv = nng_aio_result(c->recv_aio);
    if (rv == NNG_EPEERAUTH || rv == NNG_ECRYPTO)
        return nng_rc(rv, "TLS handshake failed", c->base.peer);
    if (rv != 0)
        return shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost: %s", c->base.peer,
                          nng_strerror(rv));
    c->rb_len += nng_aio_count(c->recv_aio);
    return 1;
}

static int own_recv(nconn *c, const uint8_t **buf, size_t *len, int64_t deadline);

/* Receives the next frame: from the buffer when it holds one, else reading on the
 * calling thread (tls: a read that times out stays in flight for the next call, as
 * nng's TLS streams break when a read is aborted). A timeout of 0 only looks at the
 * buffer (tls: at the read in flight). */
static int n_recv(rpc_conn *base, const uint8_t **buf, size_t *len,
                  shoal_duration timeout)
{
    nconn *c = (nconn *)base;
    int bad = fork_check(c->base.peer);
    if (bad < 0)
        return bad;
    int64_t deadline =
        timeout < 0 || timeout > INT64_MAX / 2 ? INT64_MAX : shoal__now_ns() + timeout;
    if (c->listener)
        return own_recv(c, buf, len, deadline);
    for (;;) {
        int rc = rx_take(c, buf, len);
        if (rc != 0)
            return rc;
        if (!c->tls && timeout == 0)
            return 0;
        rc = c->tls ? client_read_tls(c, deadline)
                    : rx_read_wait(c, c->recv_aio, deadline);
        if (rc <= 0)
            return rc;
    }
}

static void conn_unref(nconn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->rb);
    free(c->tx);
    pthread_mutex_destroy(&c->send_mu);
    pthread_mutex_destroy(&c->rx_mu);
    pthread_cond_destroy(&c->rx_cv);
    pthread_cond_destroy(&c->first_cv);
    free(c);
}

/* A TLS send completes when the bytes are in the TLS layer's buffer, not yet on the
 * socket, and closing the stream drops that buffer: so a stream that sent lately
 * lingers a little before it closes (the last frames, often the trailers of the
 * last calls — the UNAUTHENTICATED of a failed login — reach the peer). */
static int must_linger(nconn *c)
{
    return c->tls && shoal__now_ns() - atomic_load(&c->last_send) < TLS_LINGER * 4;
}

static void close_stream(nconn *c)
{
    if (must_linger(c))
        usleep((useconds_t)(TLS_LINGER / 1000));
    nng_stream_close(c->st);
}

static void drop_pending(nconn *c);
static void sock_unwatch(nconn *c);

/* Frees the connection's nng parts and drops the call machinery's reference. */
static void teardown(nconn *c)
{
    nng_stream_close(c->st);
    nng_aio_stop(c->recv_aio);
    nng_aio_stop(c->send_aio);
    nng_aio_stop(c->first_aio); /* NULL: no-op */
    nng_aio_stop(c->own_aio);   /* NULL: no-op */
    nng_aio_free(c->recv_aio);
    nng_aio_free(c->own_aio);
    drop_pending(c);
    nng_aio_free(c->send_aio);
    nng_aio_free(c->first_aio);
    free(c->first_buf);
    nng_stream_free(c->st);
    conn_unref(c);
}

/*
 * The server's lingering close runs off the loop's thread, which must not sleep: a
 * detached thread waits out the linger with the stream open and its read in flight
 * (aborting a TLS read loses what is still unsent), then closes the stream and stops
 * the reader, as the loop's thread would have; it frees the connection if n_close came
 * meanwhile. Until the reader stopped its callbacks may still post to the listener,
 * which waits for its lingering connections before it goes (listener_linger_*).
 * c->closer: CLOSER_NONE; CLOSER_RUNNING; CLOSER_DONE (the stream is closed: n_close
 * frees it); CLOSER_FREE (n_close came: the closer frees it).
 */
enum { CLOSER_NONE, CLOSER_RUNNING, CLOSER_DONE, CLOSER_FREE };

struct nlistener;
static void listener_linger_start(struct nlistener *l);
static void listener_linger_done(struct nlistener *l);

static void *closer_main(void *arg)
{
    nconn *c = arg;
    usleep((useconds_t)(TLS_LINGER / 1000));
    nng_stream_close(c->st);
    nng_aio_stop(c->recv_aio);
    nng_aio_stop(c->first_aio); /* NULL: no-op */
    listener_linger_done(c->listener);
    int running = CLOSER_RUNNING;
    if (!atomic_compare_exchange_strong(&c->closer, &running, CLOSER_DONE))
        teardown(c); /* CLOSER_FREE */
    return NULL;
}

/* Starts the lingering close in `state` (CLOSER_RUNNING, or CLOSER_FREE when the
 * connection is to be freed too). Returns 1, or 0 when no thread could be started
 * (the caller closes inline). */
static int close_later(nconn *c, int state)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_store(&c->closer, state);
    listener_linger_start(c->listener);
    int rc = pthread_create(&t, &attr, closer_main, c);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        return 1;
    listener_linger_done(c->listener);
    atomic_store(&c->closer, CLOSER_NONE);
    return 0;
}

/* Server side, on the loop's thread: no frame is delivered any more (stopped), the
 * stream closes and the reader stops (nng_aio_stop waits for a callback running) —
 * now, or after the linger off the loop's thread. */
static void n_stop(rpc_conn *base)
{
    nconn *c = (nconn *)base;
    atomic_store(&c->stopped, 1);
    sock_unwatch(c);
    tx_flush(c, SHOAL_MS(100)); /* a peer still there gets them; a dead one fails */
    if (must_linger(c) && close_later(c, CLOSER_RUNNING))
        return;
    close_stream(c);
    nng_aio_stop(c->recv_aio);
}

static void n_close(rpc_conn *base)
{
    nconn *c = (nconn *)base;
    if (atomic_load(&forked_child))
        return; /* nng's parts would wait for threads gone: left as they are */
    atomic_store(&c->stopped, 1);
    int state = CLOSER_RUNNING;
    if (atomic_compare_exchange_strong(&c->closer, &state, CLOSER_FREE))
        return; /* the closer frees it */
    if (state == CLOSER_NONE && c->listener && must_linger(c) &&
        close_later(c, CLOSER_FREE))
        return;
    if (state == CLOSER_NONE)
        close_stream(c);
    teardown(c);
}

static int n_peer_verified(rpc_conn *base)
{
    nconn *c = (nconn *)base;
    bool v = false;
    return nng_stream_get_bool(c->st, NNG_OPT_TLS_VERIFIED, &v) == 0 && v;
}

static void n_unwatch(rpc_conn *base);
static int n_watch(rpc_conn *base);

/* tls+tcp:// (no direct receive: a TLS read cannot be aborted), and the client side */
static const rpc_conn_ops nng_ops = {n_send,          n_recv, n_stop, n_close,
                                     n_peer_verified, NULL,   NULL};
/* ipc://, tcp:// on the server side: with direct receive */
static const rpc_conn_ops nng_direct_ops = {n_send,          n_recv,  n_stop,   n_close,
                                            n_peer_verified, n_watch, n_unwatch};

static void server_recv_cb(void *arg);

static nconn *conn_new(nng_stream *st, const char *url, int server)
{
    nconn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->tls = is_tls(url);
    c->fd = -1;
    c->fd_hint = -1;
    void (*cb)(void *) = server ? server_recv_cb : c->tls ? client_recv_cb : NULL;
    if (nng_aio_alloc(&c->send_aio, NULL, NULL) != 0 ||
        nng_aio_alloc(&c->recv_aio, cb, c) != 0 ||
        (server && !c->tls && nng_aio_alloc(&c->own_aio, NULL, NULL) != 0)) {
        nng_aio_free(c->send_aio);
        nng_aio_free(c->recv_aio);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->send_mu, NULL);
    pthread_mutex_init(&c->rx_mu, NULL);
    pthread_cond_init(&c->rx_cv, NULL);
    pthread_cond_init(&c->first_cv, NULL);
    nng_aio_set_timeout(c->recv_aio, NNG_DURATION_INFINITE);
    c->st = st;
    c->base.ops = c->own_aio ? &nng_direct_ops : &nng_ops;
    if (c->own_aio || !server) { /* not the TLS server's: see first_send */
        c->base.send_later = n_send_later;
        c->base.flush = n_flush;
    }
    c->base.t = c;
    snprintf(c->base.peer, sizeof(c->base.peer), "%s", url);
    atomic_init(&c->refs, 1);
    atomic_init(&c->last_send, INT64_MIN / 2);
    return c;
}

/* ---- TLS -------------------------------------------------------------------------- */

/* Reads a PEM file into a NUL-terminated heap string. */
static int read_pem(const char *path, const char *url, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return shoal__err(errno == ENOENT   ? SHOAL_ENOENT
                          : errno == EACCES ? SHOAL_EACCES
                                            : SHOAL_ESYS,
                          "rpc %s: cannot read %s: %s", url, path, strerror(errno));
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf)
        return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", url);
    if (bad || n > PEM_MAX) {
        free(buf);
        return shoal__err(SHOAL_EINVAL, "rpc %s: %s: %s", url, path,
                          bad ? "read error" : "larger than 1 MiB");
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

/* Loads a certificate and its key into cfg. */
static int tls_own_cert(nng_tls_config *cfg, const char *cert_file, const char *key_file,
                        const char *url)
{
    char *cert = NULL, *key = NULL;
    int rc = read_pem(cert_file, url, &cert);
    if (rc == 0)
        rc = read_pem(key_file, url, &key);
    int rv = rc == 0 ? nng_tls_config_own_cert(cfg, cert, key, NULL) : 0;
    if (rv != 0)
        rc = shoal__err(SHOAL_EINVAL, "rpc %s: certificate %s with key %s: %s", url,
                        cert_file, key_file, nng_strerror(rv));
    free(cert);
    free(key);
    return rc;
}

/* A TLS configuration: the CA file (may be NULL), our certificate and key (may be
 * NULL), how to treat the peer's certificate, and (client) the server's name. */
static int tls_config(nng_tls_config **out, nng_tls_mode mode, const char *ca_file,
                      const char *cert_file, const char *key_file, nng_tls_auth_mode auth,
                      const char *server_name, const char *url)
{
    nng_tls_config *cfg;
    int rv = nng_tls_config_alloc(&cfg, mode);
    if (rv != 0)
        return nng_rc(rv, "TLS configuration", url);
    int rc = 0;
    if (ca_file && (rv = nng_tls_config_ca_file(cfg, ca_file)) != 0)
        rc = shoal__err(SHOAL_EINVAL, "rpc %s: CA file %s: %s", url, ca_file,
                        nng_strerror(rv));
    if (rc == 0 && cert_file)
        rc = tls_own_cert(cfg, cert_file, key_file, url);
    if (rc == 0 && server_name && (rv = nng_tls_config_server_name(cfg, server_name)))
        rc = nng_rc(rv, "TLS server name", url);
    if (rc == 0 && (rv = nng_tls_config_auth_mode(cfg, auth)) != 0)
        rc = nng_rc(rv, "TLS authentication mode", url);
    if (rc < 0) {
        nng_tls_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* The client's side of TLS on dialer d: verify the server, present our certificate. */
static int tls_dialer_setup(nng_stream_dialer *d, const char *url,
                            const shoal_rpc_channel_config *cfg)
{
    if (!cfg || !cfg->tls_ca_file)
        return shoal__err(SHOAL_EINVAL,
                          "rpc %s: tls+tcp:// needs tls_ca_file (the CA the server's "
                          "certificate must chain to)",
                          url);
    if (!cfg->tls_cert_file != !cfg->tls_key_file)
        return shoal__err(SHOAL_EINVAL,
                          "rpc %s: tls_cert_file and tls_key_file go together", url);
    nng_url *u = NULL;
    int rv = cfg->tls_server_name ? 0 : nng_url_parse(&u, url);
    if (rv != 0)
        return nng_rc(rv, "bad address", url);
    nng_tls_config *tc;
    int rc = tls_config(&tc, NNG_TLS_MODE_CLIENT, cfg->tls_ca_file, cfg->tls_cert_file,
                        cfg->tls_key_file, NNG_TLS_AUTH_MODE_REQUIRED,
                        cfg->tls_server_name ? cfg->tls_server_name : u->u_hostname, url);
    if (u)
        nng_url_free(u);
    if (rc < 0)
        return rc;
    rv = nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc);
    nng_tls_config_free(tc); /* the dialer holds it */
    return rv ? nng_rc(rv, "TLS configuration", url) : 0;
}

/* The server's side of TLS on listener l. */
static int tls_listener_setup(nng_stream_listener *l, const char *url,
                              shoal_rpc_server *s)
{
    const rpc_tls *t = rpc__server_tls(s);
    if (!t)
        return shoal__err(SHOAL_EINVAL,
                          "rpc %s: tls+tcp:// needs a certificate "
                          "(shoal_rpc_server_set_tls)",
                          url);
    if (!t->require_client_cert && !rpc__server_token(s))
        return shoal__err(SHOAL_EINVAL,
                          "rpc %s: tls+tcp:// needs client certificates required or a "
                          "token (shoal_rpc_server_set_token)",
                          url);
    nng_tls_config *tc;
    int rc = tls_config(&tc, NNG_TLS_MODE_SERVER, t->ca_file, t->cert_file, t->key_file,
                        t->ca_file ? NNG_TLS_AUTH_MODE_OPTIONAL : NNG_TLS_AUTH_MODE_NONE,
                        NULL, url);
    if (rc < 0)
        return rc;
    int rv = nng_stream_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tc);
    nng_tls_config_free(tc);
    return rv ? nng_rc(rv, "TLS configuration", url) : 0;
}

/* ---- client ------------------------------------------------------------------------ */

int rpc__nng_connect(rpc_conn **out, const char *url, const shoal_rpc_channel_config *cfg)
{
    nng_stream_dialer *d;
    nng_aio *aio;
    int rv = fork_check(url);
    if (rv < 0)
        return rv;
    rv = nng_stream_dialer_alloc(&d, url);
    if (rv != 0)
        return nng_rc(rv, "bad address", url);
    if (is_tcp(url)) /* frames are small and sent whole: no Nagle */
        nng_stream_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, true);
    int rc = is_tls(url) ? tls_dialer_setup(d, url, cfg) : 0;
    if (rc < 0) {
        nng_stream_dialer_free(d);
        return rc;
    }
    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        nng_stream_dialer_free(d);
        return nng_rc(rv, "aio", url);
    }
    shoal_duration t =
        cfg && cfg->connect_timeout > 0 ? cfg->connect_timeout : SHOAL_SEC(2);
    nng_aio_set_timeout(aio, (nng_duration)(t / 1000000));
    int hint = fd_hint(url);
    nng_stream_dialer_dial(d, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    nng_stream *st = rv == 0 ? nng_aio_get_output(aio, 0) : NULL;
    nng_aio_free(aio);
    nng_stream_dialer_free(d);
    if (rv != 0)
        return nng_rc(rv, "cannot connect", url);
    nconn *c = conn_new(st, url, 0);
    if (!c) {
        nng_stream_free(st);
        return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", url);
    }
    c->fd_hint = hint;
    c->fd = stream_fd(c); /* before any thread reads or writes (-1: none) */
    *out = &c->base;
    return 0;
}

/* ---- server ------------------------------------------------------------------------ */

typedef struct nlistener {
    rpc_listener base;
    shoal_rpc_server *s;
    nng_stream_listener *l;
    nng_aio *aio;
    char url[256];
    pthread_mutex_t mu; /* guards the inbox */
    posted *head, *tail;
    int efd;     /* signalled when the inbox becomes non-empty */
    int fd_hint; /* the lowest free descriptor when the pending accept was posted */
    shoal_loop_source *src;
    int needs_auth; /* tcp://, tls+tcp://: connections answer the challenge first */
    int needs_cert; /* tls+tcp://: ... with a verified client certificate */
    int lingering;  /* connections closing off the loop's thread (guarded by mu) */
    pthread_cond_t lingered;
} nlistener;

static void listener_linger_start(nlistener *l)
{
    pthread_mutex_lock(&l->mu);
    l->lingering++;
    pthread_mutex_unlock(&l->mu);
}

static void listener_linger_done(nlistener *l)
{
    pthread_mutex_lock(&l->mu);
    if (--l->lingering == 0)
        pthread_cond_broadcast(&l->lingered);
    pthread_mutex_unlock(&l->mu);
}

/* Appends p to a list (head, tail). */
static void append(posted **head, posted **tail, posted *p)
{
    if (*tail)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

/* Signals the inbox not empty any more. */
static void wake_loop(nlistener *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->efd, &one, sizeof(one));
    (void)w; /* a full eventfd is still readable */
}

/* From nng's threads: queues p for the loop and signals the eventfd — or, while a
 * handler's thread owns the connection, for that thread (c->pending). */
static void post(nlistener *l, nconn *c, int kind, uint8_t *frame, size_t len)
{
    posted *p = malloc(sizeof(*p));
    if (!p) {
        free(frame);
        return;
    }
    *p = (posted){NULL, kind, c, frame, len};
    if (kind != P_ADOPT)
        atomic_fetch_add(&c->refs, 1);
    pthread_mutex_lock(&l->mu);
    int was_empty = !l->head, owned = kind != P_ADOPT && c->owned;
    if (owned)
        append(&c->pending, &c->pending_tail, p);
    else
        append(&l->head, &l->tail, p);
    pthread_mutex_unlock(&l->mu);
    if (was_empty && !owned)
        wake_loop(l);
}

static void posted_free(posted *p)
{
    nconn *c = p->c;
    free(p->frame);
    free(p);
    if (c)
        conn_unref(c);
}

/* Frees what the connection's owner did not take (at close). */
static void drop_pending(nconn *c)
{
    if (c->cur)
        posted_free(c->cur);
    c->cur = NULL;
    while (c->pending) {
        posted *p = c->pending;
        c->pending = p->next;
        posted_free(p); /* drops a reference, not the last: the caller holds that */
    }
    c->pending_tail = NULL;
}

/* The first frame completed (or failed: the handshake did, or timed out). */
static void first_sent_cb(void *arg)
{
    nconn *c = arg;
    int rv = nng_aio_result(c->first_aio);
    if (rv == 0 && nng_aio_count(c->first_aio) != (size_t)c->first_started)
        rv = NNG_ECONNSHUT; /* a partial frame (never seen: it is tiny) */
    pthread_mutex_lock(&c->send_mu);
    c->first_busy = 0;
    c->first_failed = rv != 0;
    pthread_cond_broadcast(&c->first_cv);
    pthread_mutex_unlock(&c->send_mu);
    if (rv == 0)
        atomic_store(&c->last_send, shoal__now_ns());
    else if (!atomic_load(&c->stopped))
        post(c->listener, c, P_LOST, NULL, 0);
}

/* Starts sending the first frame of a server-side TLS connection without waiting for
 * it (send_mu held): the send completes only once the client finished the TLS
 * handshake, which the loop's thread must not wait for. A client that does not finish
 * it within `timeout` is disconnected. */
static int first_send(nconn *c, const uint8_t hdr[4], const void *buf, size_t len,
                      shoal_duration timeout)
{
    c->first_buf = malloc(len + 4);
    if (!c->first_buf)
        return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", c->base.peer);
    memcpy(c->first_buf, hdr, 4);
    if (len)
        memcpy(c->first_buf + 4, buf, len);
    c->first_started = (int)(len + 4);
    c->first_busy = 1;
    nng_iov iov = {c->first_buf, len + 4};
    nng_aio_set_iov(c->first_aio, 1, &iov);
    nng_aio_set_timeout(c->first_aio, timeout < 0
                                          ? NNG_DURATION_INFINITE
                                          : (nng_duration)(timeout / 1000000 + 1));
    nng_stream_send(c->st, c->first_aio);
    return 0;
}

/* Starts the next read of a connection the loop watches (its callback is
 * server_recv_cb). Returns 0 or SHOAL_ENOMEM. */
static int server_read(nconn *c)
{
    nng_iov iov;
    int rc = rx_room(c, &iov);
    if (rc == 0) {
        nng_aio_set_iov(c->recv_aio, 1, &iov);
        nng_stream_recv(c->st, c->recv_aio);
    }
    return rc;
}

/* Posts the frames complete in the buffer (copies). Returns 0, or a negative code for
 * a frame refused or no memory. */
static int post_frames(nconn *c)
{
    const uint8_t *f;
    size_t n;
    int rc;
    while ((rc = rx_take(c, &f, &n)) == 1) {
        uint8_t *copy = malloc(n ? n : 1);
        if (!copy)
            return shoal__err(SHOAL_ENOMEM, "rpc %s: no memory for a frame",
                              c->base.peer);
        memcpy(copy, f, n);
        post(c->listener, c, P_FRAME, copy, n);
    }
    return rc;
}

static int is_owned(nconn *c)
{
    pthread_mutex_lock(&c->listener->mu);
    int owned = c->owned;
    pthread_mutex_unlock(&c->listener->mu);
    return owned;
}

/* On nng's thread: a read of a connection the loop watches completed. It stops here
 * when a handler's thread took the connection over (n_unwatch cancelled the read). */
static void server_recv_cb(void *arg)
{
    nconn *c = arg;
    nlistener *l = c->listener;
    int rv = nng_aio_result(c->recv_aio);
    if (rv == NNG_ECANCELED && is_owned(c))
        return;
    int rc = -1;
    if (rv == 0) {
        c->rb_len += nng_aio_count(c->recv_aio);
        rc = post_frames(c);
    }
    if (rc == 0 && !is_owned(c)) {
        rc = server_read(c);
        if (rc == 0 && is_owned(c)) /* n_unwatch may have missed it: stop it here */
            nng_aio_cancel(c->recv_aio);
    }
    if (rc < 0 && !atomic_load(&c->stopped))
        post(l, c, P_LOST, NULL, 0);
}

/*
 * The loop reading a socket (tcp:// server side, its socket found: see stream_fd).
 * Frames reaching the loop through nng's callbacks cost a hand-off between threads
 * per read: nng's poller thread reads, then wakes the loop's. A connection whose
 * socket is known is instead watched by the loop itself (a descriptor source): the
 * loop's thread reads what the socket has (recv on the duplicate descriptor, which
 * reads the one socket: nng reads it only when asked, and only one thread at a time
 * reads a connection) and dispatches the complete frames in one turn
 * (rpc__server_turn_begin / _end), keeping what it sends to that connection meanwhile
 * (turn_of: n_send as send_later) and writing it in one write at the turn's end. A
 * pipelined batch thus costs the loop one wake, one read and one write, whatever the
 * number of connections, and such a connection may take inline receive
 * (rpc_conn.turn_batches): one thread serves many busy connections, as a Redis server
 * does. Direct receive works as over nng's reads: the hand-over (n_unwatch) removes
 * the source, the owner's thread reads the socket (own_recv), and n_watch adds the
 * source again and dispatches the frames the owner left complete in the buffer.
 */

/* Before the connection is made known to the server (on the loop's thread): its
 * socket, looked up once; a connection with one is read by the loop (above). */
static void sock_adopt(nconn *c)
{
    c->fd = stream_fd(c);
    c->base.turn_batches = c->fd >= 0;
}

/* The socket is readable (or failed): the frames it brings, in one turn. */
static void on_sock(shoal_loop *loop, shoal_loop_source *src, int events, void *arg)
{
    (void)loop, (void)events;
    nconn *c = arg;
    atomic_fetch_add(&c->refs, 1); /* a frame may lose the connection (authenticate) */
    int rc = sock_read(c, src), taken = 0, t = 0;
    const uint8_t *f;
    size_t n;
    turn_of = c;
    rpc__server_turn_begin(&c->base);
    while (!atomic_load(&c->stopped) && (t = rx_take(c, &f, &n)) == 1) {
        rpc__server_frame(&c->base, f, n);
        taken = 1;
    }
    if (!atomic_load(&c->stopped)) /* else its server side may be gone */
        rpc__server_turn_end(&c->base);
    turn_of = NULL;
    if (t < 0 && rc >= 0)
        rc = t;
    int sent = tx_flush(c, FLUSH_WAIT);
    if (rc >= 0 && sent < 0)
        rc = sent;
    if (!atomic_load(&c->stopped)) {
        if (rc < 0)
            rpc__server_conn_lost(&c->base);
        else if (taken)
            rpc__server_handoff(&c->base); /* a handler in direct receive: its reader */
    }
    conn_unref(c);
}

/* Watches the socket on the loop (on the loop's thread). 0 or a code of
 * shoal_loop_add_fd. */
static int sock_watch(nconn *c)
{
    return shoal_loop_add_fd(c->loop, c->fd, SHOAL_LOOP_READABLE, on_sock, c,
                             &c->sock_src);
}

/* Stops watching the socket, if the loop does (on the loop's thread). */
static void sock_unwatch(nconn *c)
{
    if (c->sock_src)
        shoal_loop_remove(c->loop, c->sock_src);
    c->sock_src = NULL;
}

/* On the loop's thread (or at close, with run = 0: dropped). A connection that had
 * frames goes on *turn, to be offered to its handler after the turn. */
static void handle(nlistener *l, posted *p, int run, nconn **turn)
{
    nconn *c = p->c;
    if (p->kind == P_ADOPT) {
        if (!run) {
            n_close(&c->base);
        } else {
            sock_adopt(c);
            if (rpc__server_conn_new(l->s, &c->base) < 0 ||
                (c->fd >= 0 ? sock_watch(c) : server_read(c)) < 0)
                rpc__server_conn_lost(&c->base);
        }
        free(p);
        return;
    }
    if (run && !atomic_load(&c->stopped)) {
        if (p->kind == P_FRAME)
            rpc__server_frame(&c->base, p->frame, p->len);
        else
            rpc__server_conn_lost(&c->base);
        if (p->kind == P_FRAME && !c->turn && c->own_aio) {
            c->turn = 1;
            c->turn_next = *turn;
            *turn = c;
            atomic_fetch_add(&c->refs, 1);
        }
    }
    posted_free(p);
}

static void drain(nlistener *l, int run)
{
    pthread_mutex_lock(&l->mu);
    posted *p = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    nconn *turn = NULL;
    while (p) {
        posted *next = p->next;
        handle(l, p, run, &turn);
        p = next;
    }
    while (turn) { /* a handler in direct receive: its own reader */
        nconn *c = turn;
        turn = c->turn_next;
        c->turn = 0;
        if (!atomic_load(&c->stopped))
            rpc__server_handoff(&c->base);
        conn_unref(c);
    }
}

/*
 * Direct receive (ipc://, tcp:// server side; rpc_server.c says when). n_unwatch, on
 * the loop's thread, hands the connection to the handler's thread: from then on
 * (c->owned) what nng's callback still posts goes to c->pending, the read in flight
 * is cancelled (nng aborts a plain stream's read without losing bytes), and the
 * frames already posted to the inbox move to c->pending, in order. The owner's
 * n_recv (own_recv) takes c->pending first, then the buffer, then reads on its own
 * thread (rx_read_wait): bytes waiting are read at once, and a request arriving
 * wakes that thread straight from nng's poller. n_watch, on the loop's thread again,
 * gives the connection back: c->pending goes back to the inbox, the frames complete
 * in the buffer after it, and the callback-driven read starts again.
 */
static void n_unwatch(rpc_conn *base)
{
    nconn *c = (nconn *)base;
    nlistener *l = c->listener;
    if (c->fd >= 0) { /* the loop reads the socket: it stops */
        sock_unwatch(c);
        return;
    }
    pthread_mutex_lock(&l->mu);
    c->owned = 1;
    pthread_mutex_unlock(&l->mu);
    nng_aio_cancel(c->recv_aio);
    nng_aio_wait(c->recv_aio); /* its callback ran: it reads no more */
    pthread_mutex_lock(&l->mu);
    posted *keep = NULL, *keep_tail = NULL, *p = l->head;
    l->head = l->tail = NULL;
    while (p) {
        posted *next = p->next;
        p->next = NULL;
        if (p->c == c && p->kind != P_ADOPT)
            append(&c->pending, &c->pending_tail, p);
        else
            append(&keep, &keep_tail, p);
        p = next;
    }
    l->head = keep;
    l->tail = keep_tail;
    pthread_mutex_unlock(&l->mu);
}

static int n_watch(rpc_conn *base)
{
    nconn *c = (nconn *)base;
    nlistener *l = c->listener;
    int sent = tx_flush(c, FLUSH_WAIT); /* what the owner kept */
    if (sent < 0)
        return sent;
    if (c->fd >= 0) { /* the loop reads the socket again */
        const uint8_t *at = c->rb + c->rb_off;
        size_t left = c->rb_len - c->rb_off;
        int rc = sock_watch(c);
        if (rc == 0 && left >= 4 && left - 4 >= frame_len(at))
            on_sock(c->loop, c->sock_src, SHOAL_LOOP_READABLE, c); /* frames left */
        return rc;
    }
    pthread_mutex_lock(&l->mu);
    c->owned = 0;
    int any = c->pending != NULL;
    if (c->pending)
        append(&l->head, &l->tail, c->pending);
    if (c->pending)
        l->tail = c->pending_tail;
    c->pending = c->pending_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    if (any)
        wake_loop(l);
    int rc = post_frames(c);
    return rc < 0 ? rc : server_read(c);
}

/* The owner's receive (n_recv on the server side). */
static int own_recv(nconn *c, const uint8_t **buf, size_t *len, int64_t deadline)
{
    nlistener *l = c->listener;
    if (c->cur)
        posted_free(c->cur);
    c->cur = NULL;
    pthread_mutex_lock(&l->mu);
    posted *p = c->pending;
    if (p && !(c->pending = p->next))
        c->pending_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    if (p && p->kind == P_LOST) {
        posted_free(p);
        return shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost", c->base.peer);
    }
    if (p) {
        c->cur = p;
        *buf = p->frame;
        *len = p->len;
        return 1;
    }
    for (;;) {
        int rc = rx_take(c, buf, len);
        if (rc != 0)
            return rc;
        if (deadline <= shoal__now_ns())
            return 0; /* a look only: what was kept goes with the next send or wait */
        rc = tx_flush(c, FLUSH_WAIT); /* nothing more at hand: what was kept goes */
        if (rc < 0)
            return rc;
        rc = rx_read_wait(c, c->own_aio, deadline);
        if (rc <= 0)
            return rc;
    }
}

static void on_inbox(shoal_loop *loop, shoal_loop_source *src, int events, void *arg)
{
    (void)loop, (void)src, (void)events;
    nlistener *l = arg;
    uint64_t n;
    ssize_t r = read(l->efd, &n, sizeof(n));
    (void)r;
    drain(l, 1);
}

static void accept_cb(void *arg)
{
    nlistener *l = arg;
    int rv = nng_aio_result(l->aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return;
    if (rv == 0) {
        nng_stream *st = nng_aio_get_output(l->aio, 0);
        nconn *c = conn_new(st, l->url, 1);
        if (c) {
            c->fd_hint = l->fd_hint;
            c->loop = rpc__server_loop(l->s);
            c->listener = l;
            c->base.needs_auth = l->needs_auth;
            c->base.needs_cert = l->needs_cert;
            if (c->tls && nng_aio_alloc(&c->first_aio, first_sent_cb, c) != 0)
                c->first_aio = NULL; /* then the ACCEPT is sent as any frame */
            post(l, c, P_ADOPT, NULL, 0);
        } else {
            nng_stream_free(st);
        }
    }
    l->fd_hint = fd_hint(l->url);
    nng_stream_listener_accept(l->l, l->aio);
}

/* Closed after the server's connections were stopped (no reader posts any more). */
static void n_listener_close(rpc_listener *base)
{
    nlistener *l = (nlistener *)base;
    nng_stream_listener_close(l->l);
    nng_aio_stop(l->aio);       /* no accept_cb runs after this */
    pthread_mutex_lock(&l->mu); /* nor, after this, a lingering connection's reader */
    while (l->lingering)
        pthread_cond_wait(&l->lingered, &l->mu);
    pthread_mutex_unlock(&l->mu);
    shoal_loop_remove(rpc__server_loop(l->s), l->src);
    drain(l, 0);
    close(l->efd);
    nng_aio_free(l->aio);
    nng_stream_listener_free(l->l);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->lingered);
    free(l);
}

int rpc__nng_listen(shoal_rpc_server *s, const char *url, const shoal_attr *attr)
{
    int tcp = strncmp(url, "tcp://", 6) == 0;
    int bad = fork_check(url);
    if (bad < 0)
        return bad;
    const rpc_tls *tls = is_tls(url) ? rpc__server_tls(s) : NULL;
    if (tcp && !rpc__server_token(s))
        return shoal__err(SHOAL_EINVAL,
                          "rpc %s: tcp:// needs a token "
                          "(shoal_rpc_server_set_token)",
                          url);
    nlistener *l = calloc(1, sizeof(*l));
    if (!l)
        return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", url);
    l->needs_cert = tls && tls->require_client_cert;
    l->needs_auth = tcp || is_tls(url);
    snprintf(l->url, sizeof(l->url), "%s", url);
    l->s = s;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->lingered, NULL);
    l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->efd < 0) {
        free(l);
        return shoal__err(SHOAL_ESYS, "rpc %s: eventfd: %s", url, strerror(errno));
    }
    int rc = 0, rv = nng_stream_listener_alloc(&l->l, url);
    if (rv == 0 && is_tcp(url))
        nng_stream_listener_set_bool(l->l, NNG_OPT_TCP_NODELAY, true);
    if (rv == 0 && is_tls(url))
        rc = tls_listener_setup(l->l, url, s);
    if (rv == 0 && strncmp(url, "ipc://", 6) == 0)
        rv = nng_stream_listener_set_int(l->l, NNG_OPT_IPC_PERMISSIONS,
                                         attr && attr->mode ? (int)attr->mode : 0600);
    if (rv == 0 && rc == 0)
        rv = nng_stream_listener_listen(l->l);
    if (rv == 0 && rc == 0)
        rv = nng_aio_alloc(&l->aio, accept_cb, l);
    if (rc == 0)
        rc = rv ? nng_rc(rv, "cannot listen", url)
                : shoal_loop_add_fd(rpc__server_loop(s), l->efd, SHOAL_LOOP_READABLE,
                                    on_inbox, l, &l->src);
    if (rc < 0) {
        nng_aio_free(l->aio);
        if (l->l)
            nng_stream_listener_free(l->l);
        close(l->efd);
        free(l);
        return rc;
    }
    l->base.close = n_listener_close;
    rpc__server_add_listener(s, &l->base);
    l->fd_hint = fd_hint(l->url);
    nng_stream_listener_accept(l->l, l->aio);
    return 0;
}

#endif
