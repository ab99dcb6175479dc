/*
 * pipe.c — Pipe: a duplex 1:1 channel, two rings in one segment.
 *
 * Payload: a control block with one line per end (its owner and a closed flag), then
 * ring 0 (what end 0 sends, end 1 receives) and ring 1 (the other way). The rings are
 * those of queue.c, so a process killed in the middle of a send or receive leaves the
 * ring usable, and the MPMC rings (the default) even let several threads, or a parent
 * and its child, use one end at once without corrupting it.
 *
 * Ownership of an end: it belongs to one process, recorded as pid | start time << 22
 * in one word so it is read whole. Opening an end by name takes it, unless a live
 * process holds it (SHOAL_EBUSY); an end whose holder died or closed it is taken over.
 * A handle that crosses fork() is claimed by the first process that uses it (send,
 * recv or poll) — the usual "parent keeps end 0, child uses end 1" pattern.
 * shoal_pipe_close() marks the end closed only when this process is its holder and has
 * not forked since it last used it; otherwise (e.g. the parent closing the end it
 * handed to a child) it only releases the handle.
 *
 * The peer's state is checked when a call would wait (and every 64 sends): closed ->
 * SHOAL_EEOF, holder dead -> SHOAL_EPEERDEAD, in both cases after the receiver has
 * drained what was sent. Sleeps are sliced (see queue.c), so a death is noticed within
 * a few tens of milliseconds even by a receiver asleep without a timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

#define PIPE_MAGIC    0x45504950u      /* "PIPE" */
#define LIVE_CHECK_NS (10 * 1000000LL) /* liveness of the peer at most this often */
#define OWNER_PID(o)  ((int32_t)((o)&0x3fffffu))

struct pipe_end {
    _Alignas(64) _Atomic uint64_t owner; /* pid | start << 22; 0: never opened */
    _Atomic uint32_t closed;
};

struct pipe_ctl {
    uint32_t magic;
    uint32_t pad;
    struct pipe_end end[2];
};

#define CTL_BYTES ((sizeof(struct pipe_ctl) + 63) & ~(size_t)63)

struct shoal_pipe {
    shoal__seg *seg;
    struct pipe_ctl *ctl;
    int end;
    shoal__ring tx, rx;
    int32_t used_pid; /* the process that last used this handle */
    uint64_t me;      /* its owner value */
    unsigned use_gen; /* fork generation at that use */
    unsigned sends;
    int64_t next_live_ns;
    shoal__ring_hook hook;
};

static uint64_t owner_self(void)
{
    return (uint64_t)shoal__q_pid() | shoal__q_start() << 22;
}

static bool owner_live(uint64_t o)
{
    return shoal__q_alive(OWNER_PID(o), o >> 22);
}

/* ---- the peer ---------------------------------------------------------------------- */

static int peer_closed(const shoal_pipe *p)
{
    return shoal__err(SHOAL_EEOF, "pipe \"%s\": end %d was closed", p->seg->name,
                      1 - p->end);
}

/* 0 while the peer may still send or receive; SHOAL_EEOF / SHOAL_EPEERDEAD when it
 * will not. Liveness (a /proc look-up) at most every LIVE_CHECK_NS. */
static int peer_state(shoal_pipe *p)
{
    struct pipe_end *peer = &p->ctl->end[1 - p->end];
    if (atomic_load(&peer->closed))
        return peer_closed(p);
    uint64_t o = atomic_load(&peer->owner);
    if (o == 0 || o == p->me)
        return 0;
    int64_t now = shoal__now_ns();
    if (now < p->next_live_ns)
        return 0;
    p->next_live_ns = now + LIVE_CHECK_NS;
    if (owner_live(o) || atomic_load(&peer->owner) != o)
        return 0;
    if (atomic_load(&peer->closed)) /* it closed, then exited */
        return peer_closed(p);
    return shoal__err(SHOAL_EPEERDEAD, "pipe \"%s\": process %d, holding end %d, died",
                      p->seg->name, (int)OWNER_PID(o), 1 - p->end);
}

static int peer_hook(void *arg, bool producer)
{
    (void)producer;
    return peer_state(arg);
}

/* Marks this process as the user of the handle's end (after fork: claims it). */
static inline void pipe_enter(shoal_pipe *p)
{
    int32_t pid = shoal__q_pid();
    struct pipe_end *e = &p->ctl->end[p->end];
    if (SHOAL_UNLIKELY(pid != p->used_pid)) {
        p->used_pid = pid;
        p->me = owner_self();
        p->next_live_ns = 0;
    }
    if (SHOAL_UNLIKELY(atomic_load_explicit(&e->owner, memory_order_relaxed) != p->me)) {
        atomic_store(&e->owner, p->me);
        atomic_store(&e->closed, 0);
    }
    p->use_gen = shoal__q_fork_gen();
}

/* ---- open -------------------------------------------------------------------------- */

static int pipe_init_cb(shoal__seg *seg, void *arg)
{
    const shoal__ring_geom *g = arg;
    struct pipe_ctl *ctl = (struct pipe_ctl *)seg->payload;
    ctl->magic = PIPE_MAGIC;
    shoal__ring_format(seg->payload + CTL_BYTES, g);
    shoal__ring_format(seg->payload + CTL_BYTES + shoal__ring_bytes(g), g);
    return 0;
}

/* Opens the segment and attaches the rings, without taking the end. */
static int pipe_attach(shoal_pipe **out, const char *name, int end, int mode,
                       const shoal_queue_config *cfg, const shoal_attr *attr)
{
    shoal__ring_geom g;
    shoal_type bytes;
    shoal__seg_spec spec = {.kind = SHOAL_KIND_PIPE, .what = "pipe"};
    int rc;
    if (end != 0 && end != 1)
        return shoal__err(SHOAL_EINVAL, "pipe: end %d is not 0 or 1", end);
    if (mode != SHOAL_OPEN || cfg) {
        if (mode == SHOAL_OPEN && cfg && !cfg->type && cfg->max_msg == 0)
            cfg = NULL; /* any variable-size pipe */
        else if ((rc = shoal__ring_geom_make(cfg, "pipe", name, &g)))
            return rc;
    }
    if (cfg) {
        shoal__ring_spec(&spec, &g, "pipe");
        if (!cfg->type)
            shoal__ring_bytes_type(&bytes, g.max_msg);
        spec.type = cfg->type ? cfg->type : &bytes;
        spec.payload_size = CTL_BYTES + 2 * shoal__ring_bytes(&g);
        spec.init = pipe_init_cb;
        spec.arg = &g;
    }
    shoal_pipe *p = calloc(1, sizeof(*p));
    if (!p)
        return shoal__err(SHOAL_ENOMEM, "out of memory");
    if ((rc = shoal__seg_open(&p->seg, name, mode, &spec, attr))) {
        free(p);
        return rc;
    }
    const char *pn = p->seg->name;
    size_t payload = p->seg->hdr->payload_size;
    p->ctl = (struct pipe_ctl *)p->seg->payload;
    p->end = end;
    p->hook = (shoal__ring_hook){peer_hook, p};
    if ((rc = shoal__ring_geom_of(p->seg, "pipe", &g)) ||
        (rc = shoal__ring_check_cfg(&g, cfg, "pipe", pn)))
        goto fail;
    size_t rb = shoal__ring_bytes(&g);
    if (payload < CTL_BYTES + 2 * rb || p->ctl->magic != PIPE_MAGIC) {
        rc = shoal__err(SHOAL_ECORRUPT, "pipe \"%s\": payload fails validation (corrupt)",
                        pn);
        goto fail;
    }
    unsigned char *ring[2] = {p->seg->payload + CTL_BYTES,
                              p->seg->payload + CTL_BYTES + rb};
    if ((rc = shoal__ring_attach(&p->tx, ring[end], rb, &g, "pipe", pn)) ||
        (rc = shoal__ring_attach(&p->rx, ring[1 - end], rb, &g, "pipe", pn)))
        goto fail;
    shoal__ring_set_hook(&p->tx, &p->hook);
    shoal__ring_set_hook(&p->rx, &p->hook);
    *out = p;
    return 0;
fail:
    shoal__seg_close(p->seg);
    free(p);
    return rc;
}

/* Takes the handle's end for this process: SHOAL_EBUSY if a live process holds it
 * (unless `takeover`). */
static int pipe_claim(shoal_pipe *p, bool takeover)
{
    struct pipe_end *e = &p->ctl->end[p->end];
    uint64_t me = owner_self();
    for (;;) {
        uint64_t o = atomic_load(&e->owner);
        if (o && o != me && !takeover && !atomic_load(&e->closed) && owner_live(o))
            return shoal__err(SHOAL_EBUSY, "pipe \"%s\": end %d is held by process %d",
                              p->seg->name, p->end, (int)OWNER_PID(o));
        if (atomic_compare_exchange_strong(&e->owner, &o, me))
            break;
    }
    atomic_store(&e->closed, 0);
    p->used_pid = shoal__q_pid();
    p->me = me;
    p->use_gen = shoal__q_fork_gen();
    return 0;
}

int shoal_pipe_open(shoal_pipe **out, const char *name, int end, int mode,
                    const shoal_queue_config *cfg, const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL output pointer");
    *out = NULL;
    bool takeover = (end & SHOAL_PIPE_TAKEOVER) != 0;
    end &= ~SHOAL_PIPE_TAKEOVER;
    shoal_pipe *p;
    int rc = pipe_attach(&p, name, end, mode, cfg, attr);
    if (rc)
        return rc;
    if ((rc = pipe_claim(p, takeover))) {
        shoal__seg_close(p->seg);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int shoal_pipe_pair(shoal_pipe **end0, shoal_pipe **end1, const char *name,
                    const shoal_queue_config *cfg, const shoal_attr *attr)
{
    if (!end0 || !end1)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL output pointer");
    *end0 = *end1 = NULL;
    shoal_pipe *a, *b;
    int rc = pipe_attach(&a, name, 0, SHOAL_CREATE, cfg, attr);
    if (rc)
        return rc;
    if ((rc = pipe_attach(&b, a->seg->name, 1, SHOAL_OPEN, cfg, attr))) {
        shoal__seg_close(a->seg);
        free(a);
        return rc;
    }
    pipe_claim(a, false); /* new: cannot be busy */
    pipe_claim(b, false);
    *end0 = a;
    *end1 = b;
    return 0;
}

int shoal_pipe_close(shoal_pipe *p)
{
    if (!p)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    struct pipe_end *e = &p->ctl->end[p->end];
    if (p->used_pid == shoal__q_pid() && p->use_gen == shoal__q_fork_gen() &&
        atomic_load(&e->owner) == p->me) {
        atomic_store(&e->closed, 1);
        shoal__ring_wake_all(&p->tx);
        shoal__ring_wake_all(&p->rx);
    }
    shoal__seg_close(p->seg);
    free(p);
    return 0;
}

const char *shoal_pipe_name(const shoal_pipe *p)
{
    return p ? p->seg->name : NULL;
}

/* ---- messages ---------------------------------------------------------------------- */

int shoal_pipe_send(shoal_pipe *p, const void *msg, size_t len, shoal_duration timeout)
{
    if (SHOAL_UNLIKELY(!p))
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    pipe_enter(p);
    int rc;
    if (SHOAL_UNLIKELY((++p->sends & 63) == 0) && (rc = peer_state(p)))
        return rc;
    if (SHOAL_UNLIKELY(
            atomic_load_explicit(&p->ctl->end[1 - p->end].closed, memory_order_relaxed)))
        return peer_closed(p);
    return shoal__ring_put(&p->tx, msg, len, timeout, &p->hook);
}

int shoal_pipe_recv(shoal_pipe *p, void *buf, size_t cap, size_t *len,
                    shoal_duration timeout)
{
    if (SHOAL_UNLIKELY(!p))
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    pipe_enter(p);
    return shoal__ring_get(&p->rx, buf, cap, len, timeout, &p->hook);
}

int shoal_pipe_poll(shoal_pipe *p, shoal_duration timeout)
{
    if (!p)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    pipe_enter(p);
    return shoal__ring_poll(&p->rx, timeout, &p->hook);
}

int shoal__pipe_waitable(shoal_pipe *p, bool writable, shoal__waitable *out)
{
    if (!p || !out)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL argument");
    shoal__ring_waitable(writable ? &p->tx : &p->rx, writable, out);
    return 0;
}
