/*
 * pipe.c — Pipe: a duplex channel, two rings in one segment.
 *
 * Payload: a control block with one line per end (its holders and a closed flag) and
 * the busy words of the two rings (one line per user slot and ring), then ring 0
 * (what end 0 sends, end 1 receives) and ring 1 (the other way). The rings are SPSC
 * rings (ring_spsc.c: a small message moves in the one line of its marked slot) made
 * biased (ring_bias.c), whatever the configuration's spsc says: several processes, and
 * several threads of each, may use one end at once, taking turns on each side of a
 * ring by a right that stays with the process that last used it — so the common case,
 * one process at each end, costs what an SPSC queue pair costs — and a process killed
 * in the middle of a send or receive leaves the ring usable.
 *
 * Holding an end: an end may be held by several processes at once, as a file
 * descriptor may. Each end has one holder entry per user slot of the segment (owner
 * ids, owner.c): a process holds the end of a handle it opened, and a fork child
 * holds the ends of the handles it inherits from its first instant (the fork handler
 * writes its entries before fork() returns), so a child that dies before it ever
 * touches its end is a holder that died. Who keeps an end across fork() depends on
 * whether the parent had used its handle (sent, received or polled with it): an end
 * only opened is one being handed to a child (shoal_pipe_pair, fork, the child uses
 * one end); an end in use stays the parent's (a client that forks a worker). An entry
 * is one of:
 *
 *   plain      the holder uses the end;
 *   FORKED     a plain entry whose holder forked after it had used the end: it still
 *              holds the end, and closing it hands the end to the children still
 *              holding it tentatively (the entry becomes HANDED);
 *   HANDED     the holder forked before it used the end, or closed a FORKED one: it
 *              has handed the end to its children until it sends, receives or polls
 *              with it again;
 *   TENTATIVE  a fork child that has not used the end yet (the owner id of the entry
 *              it inherited from in the high half): it holds the end only while that
 *              entry is HANDED — a child does not keep open, nor take away, the end
 *              its parent goes on using; its first use makes its entry plain.
 *
 * The holders that count are the plain and forked ones and the tentative ones whose
 * parent handed the end. Closing a handle removes a plain entry and marks the end
 * closed; a forked one with a live tentative child becomes handed (else it is closed
 * as a plain one); a tentative one goes without marking anything (a child letting go
 * of a handle it inherited and never used). Opening an end by name is refused with
 * SHOAL_EBUSY while another process's holder counts and is alive, unless the opener
 * asks to join the holders (SHOAL_PIPE_TAKEOVER); it forgets dead holders.
 *
 * The peer's state, decided from its end's entries when a call would wait (once per
 * sleep slice; a blocking call that sleeps at every message relies on a live peer it
 * found less than PEER_RECHECK_NS ago, peer_hook), every 64 sends and after a close:
 * while a counting holder is alive
 * the stream goes on; when none is left, SHOAL_EPEERDEAD if one of them died without
 * closing, else SHOAL_EEOF if one closed. The receiver always drains what was sent
 * first.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

#define PIPE_MAGIC 0x45504950u /* "PIPE" */
#define OWNER_BITS 0x1fffffffu
#define FORKED     (1u << 29)
#define TENTATIVE  (1u << 30)
#define HANDED     (1u << 31)
/* How long a blocking call may rely on a peer found alive (peer_hook). */
#define PEER_RECHECK_NS 1000000LL

struct pipe_end {
    _Atomic uint64_t holder[SHOAL_MAX_USERS]; /* per user slot; 0: none */
    _Atomic uint32_t closed;                  /* a holder closed it */
};

struct pipe_ctl {
    uint32_t magic;
    uint32_t pad;
    struct pipe_end end[2];
    /* Per ring, the busy words of each user slot (ring_bias.c). */
    struct shoal__bias_line busy[2][SHOAL_MAX_USERS];
};

#define CTL_BYTES ((sizeof(struct pipe_ctl) + 63) & ~(size_t)63)

struct shoal_pipe {
    shoal__seg *seg;
    struct pipe_ctl *ctl;
    int end;
    shoal__ring tx, rx;
    unsigned sends;
    bool used; /* this process sent, received or polled with the handle */
    shoal__ring_hook hook;
    _Atomic(shoal_readyfd *) rfd; /* shoal_pipe_fd(), kept in step by recv and poll */
    _Atomic int64_t peer_seen;    /* when peer_state last found a live peer (ns) */
};

/* ---- holders ----------------------------------------------------------------------- */

static inline uint32_t entry_owner(uint64_t v)
{
    return (uint32_t)v & OWNER_BITS;
}

/* This process's entry for the handle's end (NULL when it has no user slot). */
static inline _Atomic uint64_t *my_entry(shoal_pipe *p)
{
    int slot = p->seg->user_slot;
    return slot >= 0 && p->seg->owner_pid == shoal__self_pid()
               ? &p->ctl->end[p->end].holder[slot]
               : NULL;
}

/* Records this process as a user of the handle's end: a plain entry (a forked one
 * stays forked). */
static inline void hold(shoal_pipe *p)
{
    uint32_t me = shoal__seg_owner(p->seg);
    _Atomic uint64_t *e = my_entry(p);
    if (SHOAL_LIKELY(e && me) &&
        SHOAL_UNLIKELY(
            (atomic_load_explicit(e, memory_order_relaxed) & ~(uint64_t)FORKED) != me))
        atomic_store(e, me);
}

/* hold() for a send, receive or poll: the handle is in use. */
static inline void use(shoal_pipe *p)
{
    if (SHOAL_UNLIKELY(!p->used))
        p->used = true;
    hold(p);
}

/* Before fork: the child holds the end tentatively; this process keeps an end it used
 * (FORKED) and hands over one it did not (HANDED). A tentative holder that forks makes
 * its child tentative on the same parent. */
static void hold_after_fork(shoal__seg *seg, uint32_t child_owner, int child_slot)
{
    shoal_pipe *p = seg->on_fork_arg;
    _Atomic uint64_t *mine = my_entry(p);
    uint64_t v = mine ? atomic_load(mine) : 0;
    uint64_t parent = v & TENTATIVE ? v >> 32 : seg->owner;
    atomic_store(&p->ctl->end[p->end].holder[child_slot],
                 parent << 32 | TENTATIVE | child_owner);
    if (v && entry_owner(v) == seg->owner && !(v & (TENTATIVE | HANDED)))
        atomic_compare_exchange_strong(mine, &v, v | (p->used ? FORKED : HANDED));
}

/* Whether entry v of end e counts as a holder (see the top of the file). */
static bool counts(const struct pipe_end *e, uint64_t v)
{
    if (!v || (v & HANDED))
        return false;
    if (!(v & TENTATIVE))
        return true;
    uint32_t parent = (uint32_t)(v >> 32);
    int slot = shoal__owner_slot(parent);
    if (slot < 0)
        return false;
    uint64_t pv = atomic_load(&e->holder[slot]);
    return entry_owner(pv) == parent && (pv & HANDED);
}

/* Scans end `end`: 1 when a counting holder (outside this process, if `others`) is
 * alive (*pid: one of them); else 0, with *dead the pid of a counting holder that
 * died (-1: unknown) or 0. */
static int holders(shoal_pipe *p, int end, bool others, int32_t *pid, int32_t *dead)
{
    const struct pipe_end *e = &p->ctl->end[end];
    *dead = 0;
    for (int i = 0; i < SHOAL_MAX_USERS; i++) {
        uint64_t v = atomic_load(&e->holder[i]);
        if (!counts(e, v))
            continue;
        uint32_t o = entry_owner(v);
        if (others && shoal__owner_is_self(p->seg, o))
            continue;
        int32_t who = shoal__owner_pid(p->seg, o);
        if (shoal__owner_alive(p->seg, o)) {
            *pid = who;
            return 1;
        }
        *dead = who ? who : -1;
    }
    return 0;
}

/* Forgets the holders of the handle's end that are gone without closing it. */
static void forget_dead(shoal_pipe *p)
{
    struct pipe_end *e = &p->ctl->end[p->end];
    for (int i = 0; i < SHOAL_MAX_USERS; i++) {
        uint64_t v = atomic_load(&e->holder[i]);
        if (v && !shoal__owner_alive(p->seg, entry_owner(v)))
            atomic_compare_exchange_strong(&e->holder[i], &v, 0);
    }
}

/* Whether a tentative holder inheriting from owner `parent` is alive on end e. */
static bool live_child(shoal_pipe *p, const struct pipe_end *e, uint32_t parent)
{
    for (int i = 0; i < SHOAL_MAX_USERS; i++) {
        uint64_t v = atomic_load(&e->holder[i]);
        if ((v & TENTATIVE) && (uint32_t)(v >> 32) == parent &&
            shoal__owner_alive(p->seg, entry_owner(v)))
            return true;
    }
    return false;
}

/* Closing the handle: removes a plain entry and marks the end closed; a handed one
 * stays with the children, and a forked one is handed to them if one is alive. */
static void let_go(shoal_pipe *p)
{
    struct pipe_end *e = &p->ctl->end[p->end];
    _Atomic uint64_t *mine = my_entry(p);
    uint64_t v = mine ? atomic_load(mine) : 0;
    if (v && entry_owner(v) == p->seg->owner) {
        if (v & HANDED)
            return;
        if ((v & FORKED) && live_child(p, e, p->seg->owner) &&
            atomic_compare_exchange_strong(mine, &v, (v & ~(uint64_t)FORKED) | HANDED))
            return;
        atomic_compare_exchange_strong(mine, &v, 0);
        if (v & TENTATIVE)
            return; /* an inherited handle never used here: only the handle goes */
    }
    atomic_store(&e->closed, 1);
    shoal__ring_wake_all(&p->tx);
    shoal__ring_wake_all(&p->rx);
}

/* ---- the peer ---------------------------------------------------------------------- */

/* 0 while the peer may still send or receive; SHOAL_EEOF / SHOAL_EPEERDEAD when it
 * will not. */
static int peer_state(shoal_pipe *p)
{
    int32_t pid, dead;
    if (holders(p, 1 - p->end, false, &pid, &dead))
        return 0;
    if (dead)
        return shoal__err(SHOAL_EPEERDEAD,
                          "pipe \"%s\": the last process holding end %d (%d) died",
                          p->seg->name, 1 - p->end, (int)dead);
    if (atomic_load(&p->ctl->end[1 - p->end].closed))
        return shoal__err(SHOAL_EEOF, "pipe \"%s\": end %d was closed", p->seg->name,
                          1 - p->end);
    return 0;
}

/* The ring's hook. A blocking call about to sleep again takes a live peer found less
 * than PEER_RECHECK_NS ago as still alive, unless the peer's end was closed since: the
 * liveness test is a system call (owner.c), which a call that sleeps at every message
 * would otherwise make at every message. A peer that died in that time is found by the
 * check of the next sleep slice instead. */
static int peer_hook(void *arg, bool producer, bool between_sleeps)
{
    (void)producer;
    shoal_pipe *p = arg;
    if (!between_sleeps) /* a try form or the loop: no clock read, nothing cached */
        return peer_state(p);
    int64_t now = shoal__now_ns();
    if (now - atomic_load_explicit(&p->peer_seen, memory_order_relaxed) <
            PEER_RECHECK_NS &&
        !atomic_load(&p->ctl->end[1 - p->end].closed))
        return 0;
    int rc = peer_state(p);
    if (rc == 0)
        atomic_store_explicit(&p->peer_seen, now, memory_order_relaxed);
    return rc;
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

/* Checks the payload of an open pipe segment of geometry g and attaches its two
 * rings (ring[i] carries what end i sends). */
static int pipe_rings(shoal__seg *seg, const shoal__ring_geom *g, shoal__ring ring[2])
{
    const struct pipe_ctl *ctl = (const struct pipe_ctl *)seg->payload;
    size_t rb = shoal__ring_bytes(g);
    if (seg->hdr->payload_size < CTL_BYTES + 2 * rb || ctl->magic != PIPE_MAGIC ||
        !(g->flags & SHOAL__RING_SPSC))
        return shoal__err(SHOAL_ECORRUPT,
                          "pipe \"%s\": payload fails validation (corrupt)", seg->name);
    int rc;
    for (int i = 0; i < 2; i++)
        if ((rc = shoal__ring_attach(&ring[i], seg, seg->payload + CTL_BYTES + i * rb, rb,
                                     g, "pipe", seg->name)))
            return rc;
    return 0;
}

int shoal__pipe_view(shoal__seg *seg, shoal__ring ring[2], shoal__pipe_end_view end[2])
{
    shoal__ring_geom g;
    int rc;
    if ((rc = shoal__ring_geom_of(seg, "pipe", &g)) || (rc = pipe_rings(seg, &g, ring)))
        return rc;
    /* A handle-less view: holders() reads only the segment and the control block. */
    shoal_pipe view = {.seg = seg, .ctl = (struct pipe_ctl *)seg->payload};
    for (int i = 0; i < 2; i++) {
        const struct pipe_end *e = &view.ctl->end[i];
        int32_t pid = 0, dead = 0;
        end[i].closed = atomic_load(&e->closed) != 0;
        end[i].opened = end[i].closed;
        for (int k = 0; k < SHOAL_MAX_USERS && !end[i].opened; k++)
            end[i].opened = counts(e, atomic_load(&e->holder[k]));
        end[i].alive = holders(&view, i, false, &pid, &dead) == 1;
        end[i].pid = end[i].alive ? pid : dead > 0 ? dead : 0;
    }
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
    shoal_queue_config spsc;
    if (mode != SHOAL_OPEN || cfg) {
        if (mode == SHOAL_OPEN && cfg && !cfg->type && cfg->max_msg == 0)
            cfg = NULL; /* any variable-size pipe */
        else if (cfg) {
            spsc = *cfg;
            spsc.spsc = 1; /* biased SPSC rings, whatever cfg says (see the top) */
            cfg = &spsc;
        }
        if (cfg && (rc = shoal__ring_geom_make(cfg, "pipe", name, &g)))
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
    p->ctl = (struct pipe_ctl *)p->seg->payload;
    p->end = end;
    p->hook = (shoal__ring_hook){peer_hook, p};
    shoal__ring ring[2];
    if ((rc = shoal__ring_geom_of(p->seg, "pipe", &g)) ||
        (rc = shoal__ring_check_cfg(&g, cfg, "pipe", p->seg->name)) ||
        (rc = pipe_rings(p->seg, &g, ring)))
        goto fail;
    for (int i = 0; i < 2; i++)
        shoal__ring_set_bias(&ring[i], p->ctl->busy[i]);
    p->tx = ring[end];
    p->rx = ring[1 - end];
    p->seg->on_fork = hold_after_fork;
    p->seg->on_fork_arg = p;
    shoal__ring_set_hook(&p->tx, &p->hook);
    shoal__ring_set_hook(&p->rx, &p->hook);
    *out = p;
    return 0;
fail:
    shoal__seg_close(p->seg);
    free(p);
    return rc;
}

int shoal_pipe_open(shoal_pipe **out, const char *name, int end, int mode,
                    const shoal_queue_config *cfg, const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL output pointer");
    *out = NULL;
    bool join = (end & SHOAL_PIPE_TAKEOVER) != 0;
    end &= ~SHOAL_PIPE_TAKEOVER;
    shoal_pipe *p;
    int rc = pipe_attach(&p, name, end, mode, cfg, attr);
    if (rc)
        return rc;
    int32_t pid, dead;
    if (!join && holders(p, end, true, &pid, &dead)) {
        rc = shoal__err(SHOAL_EBUSY, "pipe \"%s\": end %d is held by process %d",
                        p->seg->name, end, (int)pid);
        shoal__seg_close(p->seg);
        free(p);
        return rc;
    }
    forget_dead(p);
    atomic_store(&p->ctl->end[end].closed, 0);
    hold(p);
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
    hold(a);
    hold(b);
    *end0 = a;
    *end1 = b;
    return 0;
}

int shoal_pipe_close(shoal_pipe *p)
{
    if (!p)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    shoal_readyfd_close(atomic_load(&p->rfd)); /* before the rings go away */
    let_go(p);
    shoal__seg_close(p->seg);
    free(p);
    return 0;
}

const char *shoal_pipe_name(const shoal_pipe *p)
{
    return p ? p->seg->name : NULL;
}

/* Keeps the end's readiness descriptor in step after a receive or poll (readyfd.c). */
static inline void sync_fd(shoal_pipe *p)
{
    shoal_readyfd *r = atomic_load_explicit(&p->rfd, memory_order_relaxed);
    if (SHOAL_UNLIKELY(r != NULL))
        shoal_readyfd_sync(r);
}

/* ---- messages ---------------------------------------------------------------------- */

int shoal_pipe_send(shoal_pipe *p, const void *msg, size_t len, shoal_duration timeout)
{
    if (SHOAL_UNLIKELY(!p))
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    use(p);
    int rc;
    if (SHOAL_UNLIKELY((++p->sends & 63) == 0 ||
                       atomic_load_explicit(&p->ctl->end[1 - p->end].closed,
                                            memory_order_relaxed)) &&
        (rc = peer_state(p)))
        return rc;
    return shoal__ring_put(&p->tx, msg, len, timeout, &p->hook);
}

int shoal_pipe_recv(shoal_pipe *p, void *buf, size_t cap, size_t *len,
                    shoal_duration timeout)
{
    if (SHOAL_UNLIKELY(!p))
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    use(p);
    int rc = shoal__ring_get(&p->rx, buf, cap, len, timeout, &p->hook);
    sync_fd(p);
    return rc;
}

int shoal__pipe_try_recv(shoal_pipe *p, void *buf, size_t cap, size_t *len)
{
    use(p);
    int rc = shoal__ring_get(&p->rx, buf, cap, len, SHOAL_NOWAIT, NULL);
    sync_fd(p);
    return rc;
}

size_t shoal__pipe_max_msg(const shoal_pipe *p)
{
    return p->tx.g.max_msg;
}

int shoal_pipe_poll(shoal_pipe *p, shoal_duration timeout)
{
    if (!p)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    use(p);
    int rc = shoal__ring_poll(&p->rx, timeout, &p->hook);
    sync_fd(p);
    return rc;
}

int shoal_pipe_fd(shoal_pipe *p)
{
    if (!p)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL handle");
    shoal_readyfd *r = atomic_load(&p->rfd);
    int fd = r ? shoal_readyfd_fd(r) : -1;
    if (fd >= 0)
        return fd;
    if (r && atomic_compare_exchange_strong(&p->rfd, &r, NULL))
        shoal_readyfd_close(r); /* inherited across fork(): start our own */
    shoal_readyfd *mine;
    int rc = shoal_readyfd_open_pipe(&mine, p);
    if (rc)
        return rc;
    r = NULL;
    if (!atomic_compare_exchange_strong(&p->rfd, &r, mine)) {
        shoal_readyfd_close(mine); /* another thread was first */
        return shoal_pipe_fd(p);
    }
    return shoal_readyfd_fd(mine);
}

int shoal__pipe_waitable(shoal_pipe *p, bool writable, shoal__waitable *out)
{
    if (!p || !out)
        return shoal__err(SHOAL_EINVAL, "pipe: NULL argument");
    shoal__ring_waitable(writable ? &p->tx : &p->rx, writable, out);
    return 0;
}
