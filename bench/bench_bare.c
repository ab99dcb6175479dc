/*
 * bench_bare.c — the physical limits every other row is compared with, written here
 * with nothing between the processes but shared memory and the kernel's futex:
 *
 *   ring   a single-producer single-consumer ring of fixed slots (BENCH_CAPACITY),
 *          busy-polling, with each side caching the other's index: throughput. This
 *          is the textbook ring, the reference of the SPSC target.
 *   ring_mark  the same ring with a ready marker per slot (the typed slot layout of
 *          the SPSC queue in segment format 5): a slot is an 8-byte word holding the
 *          marker, then the message, so a 64-byte message
 *          takes a 72-byte slot and slots straddle cache lines; the producer writes
 *          the slot, its marker, then the tail; the consumer polls the marker of the
 *          head slot alone. Beside `ring` (dense slots of the message's size, no
 *          marker, the consumer polling the tail), it shows what each layout costs.
 *   ring_hyst  the same ring whose producer, finding it full, waits until an eighth
 *          of it is free before writing again. The two sides then stop trading cache
 *          lines on every message once the ring is full: a higher ceiling, shown
 *          beside the textbook ring.
 *   spin   one cache line, two processes polling it in turn: round trip.
 *   spin2  the same exchange in the shape of a ring with an index: each message is
 *          written to a data line, then announced in a flag line of its own, which
 *          the other side polls before it reads the data line (two lines cross per
 *          message, where spin moves one): the floor of a ring whose slots carry no
 *          ready marker, shown beside spin.
 *   spin1d the exchange in the shape of a ring whose slots carry a ready marker:
 *          each direction has a line of its own, holding the message and its flag
 *          (one line crosses per message, as in spin, but the two directions no
 *          longer share it): the floor of a queue pair or a Pipe, whose two
 *          directions are two rings.
 *   spin1c the exchange over two rings of BENCH_CAPACITY one-line slots with the
 *          steps of an MPMC slot's state word (ring_mpmc.c): the sender reserves the
 *          slot with a compare-and-swap, writes the message, stores the commit; the
 *          receiver polls the word, claims the message with a compare-and-swap and
 *          stores the next lap's free word: the MPMC slot's steps with no index
 *          and no code around them, beside spin1d (the same without the two
 *          compare-and-swaps).
 *   spin1b the exchange over two rings of BENCH_CAPACITY one-line slots with ready
 *          markers, each side biased to one process: before each attempt a side
 *          stores its busy word (on its own line, with the index) and loads its bias
 *          word (on a line only a revoker writes), and clears busy after it (the
 *          biased SPSC ring of a Pipe, pipe.c), beside spin1d (the same with no
 *          busy or bias word).
 *   futex  one word, each side sleeping in FUTEX_WAIT at once (no spinning) until
 *          the other writes it and calls FUTEX_WAKE: round trip with the receiver
 *          asleep.
 *   futex2t  the same with one word per direction, on lines of their own, and
 *          each FUTEX_WAIT bounded by a timeout of 5 ms: what any channel made of
 *          two rings whose sleeps are sliced (wait.c) pays at least, beside futex.
 *   futexsc  futex2t with a ring's sleeper protocol (ring.c, "Sleepers"): per
 *          direction a message word and a side word (futex word and sleeper
 *          count), on lines of their own; the sender stores the message, loads the
 *          count and, only when someone is counted, bumps the futex word and
 *          empties the count in one compare-and-swap, then calls FUTEX_WAKE; the
 *          receiver counts itself, looks once more, sleeps (5 ms at most) and
 *          takes itself off the count unless a waker did. No ring, no spinning:
 *          what the protocol costs a queue pair, beside futex and futex2t.
 *   clock  the cost of one clock_gettime(CLOCK_MONOTONIC), included in every
 *          round-trip sample of every row.
 */
#include <linux/futex.h>
#include <sys/syscall.h>

#include "common.h"

/* ---- ring ----------------------------------------------------------------------------
 */

struct ring {
    _Alignas(64) _Atomic uint64_t head; /* next slot the consumer reads */
    _Alignas(64) _Atomic uint64_t tail; /* next slot the producer writes */
    _Alignas(64) unsigned char slots[];
};

struct ring_arg {
    struct ring *r;
    size_t size, stride;
    size_t data_off; /* ring_mark: the message's offset in its slot (after the marker) */
    uint64_t warm, count;
    uint64_t hyst; /* free slots the producer waits for once the ring is full */
};

static int ring_producer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ring_arg *a = p;
    struct ring *r = a->r;
    unsigned char msg[65536];
    memset(msg, 0xab, a->size);
    uint64_t total = a->warm + a->count, tail = 0, head = 0;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        if (tail - head == BENCH_CAPACITY) {
            do {
                head = atomic_load_explicit(&r->head, memory_order_acquire);
                if (tail - head > BENCH_CAPACITY - a->hyst)
                    cpu_relax();
            } while (tail - head > BENCH_CAPACITY - a->hyst);
        }
        msg_stamp(msg, i);
        memcpy(r->slots + (tail % BENCH_CAPACITY) * a->stride, msg, a->size);
        atomic_store_explicit(&r->tail, ++tail, memory_order_release);
    }
    return 0;
}

static int ring_consumer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ring_arg *a = p;
    struct ring *r = a->r;
    unsigned char buf[65536];
    uint64_t total = a->warm + a->count, head = 0, tail = 0;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        if (i == a->warm)
            ctl->t0 = now_ns();
        while (head == tail) {
            tail = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (head == tail)
                cpu_relax();
        }
        memcpy(buf, r->slots + (head % BENCH_CAPACITY) * a->stride, a->size);
        atomic_store_explicit(&r->head, ++head, memory_order_release);
        msg_check("ring", buf, i);
    }
    ctl->t1 = now_ns();
    return 0;
}

/* ring_mark: the marker of the slot at position i is i + 1 once its message is there. */
static _Atomic uint32_t *mark_at(const struct ring_arg *a, uint64_t i)
{
    return (_Atomic uint32_t *)(void *)(a->r->slots + (i % BENCH_CAPACITY) * a->stride);
}

static int mark_producer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ring_arg *a = p;
    struct ring *r = a->r;
    unsigned char msg[65536];
    memset(msg, 0xab, a->size);
    uint64_t total = a->warm + a->count, tail = 0, head = 0;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        while (tail - head == BENCH_CAPACITY) {
            head = atomic_load_explicit(&r->head, memory_order_acquire);
            if (tail - head == BENCH_CAPACITY)
                cpu_relax();
        }
        msg_stamp(msg, i);
        memcpy((unsigned char *)mark_at(a, tail) + a->data_off, msg, a->size);
        atomic_store_explicit(mark_at(a, tail), (uint32_t)(tail + 1),
                              memory_order_release);
        atomic_store_explicit(&r->tail, ++tail, memory_order_release);
    }
    return 0;
}

static int mark_consumer(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct ring_arg *a = p;
    struct ring *r = a->r;
    unsigned char buf[65536];
    uint64_t total = a->warm + a->count, head = 0;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        if (i == a->warm)
            ctl->t0 = now_ns();
        while (atomic_load_explicit(mark_at(a, head), memory_order_acquire) !=
               (uint32_t)(head + 1))
            cpu_relax();
        memcpy(buf, (unsigned char *)mark_at(a, head) + a->data_off, a->size);
        atomic_store_explicit(&r->head, ++head, memory_order_release);
        msg_check("ring_mark", buf, i);
    }
    ctl->t1 = now_ns();
    return 0;
}

/* mark: slots with a ready marker (ring_mark), else dense slots (ring, ring_hyst). */
static int run_ring(struct bargs a, uint64_t hyst, bool mark)
{
    struct ring_arg ra = {0};
    ra.hyst = hyst;
    ra.size = a.size;
    ra.data_off = mark ? 8 : 0;
    ra.stride = (ra.data_off + a.size + 7) & ~(size_t)7;
    ra.r = shared_alloc(sizeof(struct ring) + ra.stride * BENCH_CAPACITY);
    ra.count = a.count;
    ra.warm = BENCH_WARM(a.count);
    struct bctl *ctl = ctl_new();
    if (mark ? run_pair(ctl, mark_producer, &ra, mark_consumer, &ra)
             : run_pair(ctl, ring_producer, &ra, ring_consumer, &ra))
        return 1;
    report_tput(a.name, a.size, a.count, ctl);
    return 0;
}

/* ---- spin ping-pong ------------------------------------------------------------------
 */

struct pp_arg {
    _Atomic uint32_t *word;
    uint64_t warm, count;
    size_t data_off; /* spin2 / spin1d: the data word's distance from its flag;
                        futex2t: the reply word's from the request word */
};

/* A step of a ping-pong whose two directions are apart (two rings, two lines): sends
 * message i in direction d (0: ping to pong, 1: back), or waits for it; `me` names the
 * role (1: ping, 2: pong). */
typedef void pp_step(struct pp_arg *a, int d, uint64_t i, uint64_t me);

/* The two roles over such steps. Always inlined into each case's role functions with
 * constant steps, so the steps are direct calls, as with the roles written out. */
static inline __attribute__((always_inline)) int pp_ping(struct bctl *ctl, void *p,
                                                         pp_step *send, pp_step *recv)
{
    struct pp_arg *a = p;
    int64_t *lat = lat_alloc(a->count);
    uint64_t total = a->warm + a->count;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        int64_t t = now_ns();
        send(a, 0, i, 1);
        recv(a, 1, i, 1);
        if (i >= a->warm)
            lat[i - a->warm] = now_ns() - t;
    }
    lat_summarise(ctl, lat, a->count);
    return 0;
}

static inline __attribute__((always_inline)) int pp_pong(struct bctl *ctl, void *p,
                                                         pp_step *send, pp_step *recv)
{
    struct pp_arg *a = p;
    uint64_t total = a->warm + a->count;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        recv(a, 0, i, 2);
        send(a, 1, i, 2);
    }
    return 0;
}

/* Defines NAME_ping and NAME_pong over the steps SEND and RECV. */
#define PP_ROLES(name, send, recv)                                                       \
    static int name##_ping(struct bctl *ctl, int idx, void *p)                           \
    {                                                                                    \
        (void)idx;                                                                       \
        return pp_ping(ctl, p, send, recv);                                              \
    }                                                                                    \
    static int name##_pong(struct bctl *ctl, int idx, void *p)                           \
    {                                                                                    \
        (void)idx;                                                                       \
        return pp_pong(ctl, p, send, recv);                                              \
    }

static int spin_ping(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct pp_arg *a = p;
    int64_t *lat = lat_alloc(a->count);
    uint64_t total = a->warm + a->count;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        uint32_t want = (uint32_t)(2 * i + 2);
        int64_t t = now_ns();
        atomic_store_explicit(a->word, want - 1, memory_order_release);
        while (atomic_load_explicit(a->word, memory_order_acquire) != want)
            cpu_relax();
        if (i >= a->warm)
            lat[i - a->warm] = now_ns() - t;
    }
    lat_summarise(ctl, lat, a->count);
    return 0;
}

static int spin_pong(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct pp_arg *a = p;
    uint64_t total = a->warm + a->count;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        uint32_t want = (uint32_t)(2 * i + 1);
        while (atomic_load_explicit(a->word, memory_order_acquire) != want)
            cpu_relax();
        atomic_store_explicit(a->word, want + 1, memory_order_release);
    }
    return 0;
}

/* ---- spin ping-pong through a flag and a data word
 * --------------------------------------------------------
 */

/* Per direction: the flag (the index) and the data (the slot), data_off bytes apart:
 * 128 puts them in two lines (spin2), 8 in one (spin1d). Directions are 256 B apart. */
struct pp2_dir {
    _Atomic uint64_t *flag, *data;
};

static struct pp2_dir pp2_dir_at(const struct pp_arg *a, int which)
{
    unsigned char *base = (unsigned char *)(void *)a->word + 256 * which;
    return (struct pp2_dir){(_Atomic uint64_t *)(void *)base,
                            (_Atomic uint64_t *)(void *)(base + a->data_off)};
}

/* Sends message i on d. */
static void pp2_send(struct pp2_dir *d, uint64_t i)
{
    atomic_store_explicit(d->data, i, memory_order_relaxed);
    atomic_store_explicit(d->flag, i + 1, memory_order_release);
}

static void pp2_recv(struct pp2_dir *d, uint64_t i)
{
    while (atomic_load_explicit(d->flag, memory_order_acquire) != i + 1)
        cpu_relax();
    if (atomic_load_explicit(d->data, memory_order_relaxed) != i)
        bfail("spin2/spin1d: message %llu lost", (unsigned long long)i);
}

static int spin2_ping(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct pp_arg *a = p;
    struct pp2_dir dir[2] = {pp2_dir_at(a, 0), pp2_dir_at(a, 1)};
    int64_t *lat = lat_alloc(a->count);
    uint64_t total = a->warm + a->count;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        int64_t t = now_ns();
        pp2_send(&dir[0], i);
        pp2_recv(&dir[1], i);
        if (i >= a->warm)
            lat[i - a->warm] = now_ns() - t;
    }
    lat_summarise(ctl, lat, a->count);
    return 0;
}

static int spin2_pong(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct pp_arg *a = p;
    struct pp2_dir dir[2] = {pp2_dir_at(a, 0), pp2_dir_at(a, 1)};
    uint64_t total = a->warm + a->count;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        pp2_recv(&dir[0], i);
        pp2_send(&dir[1], i);
    }
    return 0;
}

/* ---- spin ping-pong through MPMC slot steps
 * ----------------------------------------------------------
 */

/* A slot's state word for the message at position i: free i, reserved i | C_OWN,
 * committed (i + 1) | C_FULL, claimed with C_CLAIM too, freed i + BENCH_CAPACITY. */
#define C_OWN   (1ull << 32)
#define C_FULL  (1ull << 61)
#define C_CLAIM (1ull << 63)

struct cslot {
    _Alignas(64) _Atomic uint64_t word;
    _Atomic uint64_t data;
};

static struct cslot *c_ring(const struct pp_arg *a, int which)
{
    return (struct cslot *)(void *)a->word + (size_t)which * BENCH_CAPACITY;
}

static void c_send(struct pp_arg *a, int d, uint64_t i, uint64_t me)
{
    (void)me;
    struct cslot *s = &c_ring(a, d)[i % BENCH_CAPACITY];
    uint64_t w = i;
    if (!atomic_compare_exchange_strong(&s->word, &w, i | C_OWN))
        bfail("spin1c: slot not free for message %llu", (unsigned long long)i);
    atomic_store_explicit(&s->data, i, memory_order_relaxed);
    atomic_store_explicit(&s->word, (i + 1) | C_FULL, memory_order_release);
}

static void c_recv(struct pp_arg *a, int d, uint64_t i, uint64_t me)
{
    (void)me;
    struct cslot *s = &c_ring(a, d)[i % BENCH_CAPACITY];
    uint64_t w;
    while ((w = atomic_load_explicit(&s->word, memory_order_acquire)) !=
           ((i + 1) | C_FULL))
        cpu_relax();
    if (atomic_load_explicit(&s->data, memory_order_relaxed) != i ||
        !atomic_compare_exchange_strong(&s->word, &w, w | C_CLAIM | C_OWN))
        bfail("spin1c: message %llu lost", (unsigned long long)i);
    atomic_store_explicit(&s->word, i + BENCH_CAPACITY, memory_order_release);
}

/* Every slot free for its first message. */
static void c_format(struct pp_arg *a)
{
    for (int which = 0; which < 2; which++)
        for (uint64_t i = 0; i < BENCH_CAPACITY; i++)
            atomic_init(&c_ring(a, which)[i].word, i);
}

PP_ROLES(spin1c, c_send, c_recv)

/* ---- spin ping-pong through biased SPSC rings
 * ---------------------------------------------------------
 */

/* A ring of spin1b: the producer's line (its busy word, the tail), the consumer's
 * line (its busy word, the head), a line only a revoker or a closer writes (the two
 * sides' bias words, closed), then BENCH_CAPACITY one-line slots of a ready marker
 * and the message. */
struct bring {
    _Alignas(64) _Atomic uint64_t put_busy;
    _Atomic uint64_t tail;
    _Alignas(64) _Atomic uint64_t get_busy;
    _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t put_bias, get_bias;
    _Atomic uint32_t closed;
    struct cslot slots[BENCH_CAPACITY];
};

static struct bring *b_ring(const struct pp_arg *a, int which)
{
    return (struct bring *)(void *)a->word + which;
}

/* Marks the side busy (a plain store on the holder's line), then checks that the
 * side's bias still names the holder: the holder's half of the revoking handshake. */
static void b_enter(_Atomic uint64_t *busy, _Atomic uint64_t *bias, uint64_t me)
{
    atomic_store_explicit(busy, me, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load_explicit(bias, memory_order_relaxed) != me)
        bfail("spin1b: bias lost");
}

static void b_send(struct pp_arg *a, int d, uint64_t i, uint64_t me)
{
    struct bring *r = b_ring(a, d);
    b_enter(&r->put_busy, &r->put_bias, me);
    if (atomic_load_explicit(&r->closed, memory_order_relaxed))
        bfail("spin1b: closed");
    struct cslot *s = &r->slots[i % BENCH_CAPACITY];
    atomic_store_explicit(&s->data, i, memory_order_relaxed);
    atomic_store_explicit(&s->word, i + 1, memory_order_release);
    atomic_store_explicit(&r->tail, i + 1, memory_order_release);
    atomic_store_explicit(&r->put_busy, 0, memory_order_release);
}

static void b_recv(struct pp_arg *a, int d, uint64_t i, uint64_t me)
{
    struct bring *r = b_ring(a, d);
    for (;;) {
        b_enter(&r->get_busy, &r->get_bias, me);
        uint64_t hd = atomic_load_explicit(&r->head, memory_order_relaxed);
        struct cslot *s = &r->slots[hd % BENCH_CAPACITY];
        if (atomic_load_explicit(&s->word, memory_order_acquire) == hd + 1) {
            if (hd != i || atomic_load_explicit(&s->data, memory_order_relaxed) != i)
                bfail("spin1b: message %llu lost", (unsigned long long)i);
            atomic_store_explicit(&r->head, hd + 1, memory_order_release);
            atomic_store_explicit(&r->get_busy, 0, memory_order_release);
            return;
        }
        atomic_store_explicit(&r->get_busy, 0, memory_order_release);
        cpu_relax();
    }
}

/* Each ring's sides biased to the one process that uses them. */
static void b_format(struct pp_arg *a)
{
    atomic_init(&b_ring(a, 0)->put_bias, 1);
    atomic_init(&b_ring(a, 0)->get_bias, 2);
    atomic_init(&b_ring(a, 1)->put_bias, 2);
    atomic_init(&b_ring(a, 1)->get_bias, 1);
}

PP_ROLES(spin1b, b_send, b_recv)

/* ---- futex ping-pong -----------------------------------------------------------------
 */

/* Timed: a 5 ms timeout, as a sliced sleep has (futex2t). */
static void futex_wait(_Atomic uint32_t *w, uint32_t val, bool timed)
{
    struct timespec slice = {0, 5000000};
    syscall(SYS_futex, w, FUTEX_WAIT, val, timed ? &slice : NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Sleeps until *w == want; never spins, so the waiter is always asleep when woken. */
static void futex_await(_Atomic uint32_t *w, uint32_t want, bool timed)
{
    uint32_t v;
    while ((v = atomic_load_explicit(w, memory_order_acquire)) != want)
        futex_wait(w, v, timed);
}

/* futex: both directions on one word; futex2t: the reply on a word of its own. */
static _Atomic uint32_t *futex_reply_word(const struct pp_arg *a)
{
    return (_Atomic uint32_t *)((char *)a->word + a->data_off);
}

static int futex_ping(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct pp_arg *a = p;
    int64_t *lat = lat_alloc(a->count);
    uint64_t total = a->warm + a->count;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        uint32_t want = (uint32_t)(2 * i + 2);
        int64_t t = now_ns();
        atomic_store_explicit(a->word, want - 1, memory_order_release);
        futex_wake(a->word);
        futex_await(futex_reply_word(a), want, a->data_off != 0);
        if (i >= a->warm)
            lat[i - a->warm] = now_ns() - t;
    }
    lat_summarise(ctl, lat, a->count);
    return 0;
}

static int futex_pong(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct pp_arg *a = p;
    uint64_t total = a->warm + a->count;
    ctl_ready(ctl);
    for (uint64_t i = 0; i < total; i++) {
        uint32_t want = (uint32_t)(2 * i + 1);
        futex_await(a->word, want, a->data_off != 0);
        atomic_store_explicit(futex_reply_word(a), want + 1, memory_order_release);
        futex_wake(futex_reply_word(a));
    }
    return 0;
}

/* ---- futexsc: the sleeper protocol alone ---------------------------------------------
 */

#define SC_SLEEPER (1ull << 32) /* one sleeper in a side word */

struct sc_dir {
    _Alignas(64) _Atomic uint32_t msg;
    _Alignas(64) _Atomic uint64_t side; /* futex word (low half), sleepers (high) */
};

static struct sc_dir *sc_dir(const struct pp_arg *a, int d)
{
    return (struct sc_dir *)(void *)a->word + d;
}

/* The futex word: the side word's low half, wherever the byte order puts it. */
static _Atomic uint32_t *sc_word(struct sc_dir *s)
{
    return (_Atomic uint32_t *)(void *)&s->side +
           (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
}

static void sc_send(struct pp_arg *a, int d, uint64_t i, uint64_t me)
{
    (void)me;
    struct sc_dir *s = sc_dir(a, d);
    atomic_store_explicit(&s->msg, (uint32_t)(i + 1), memory_order_release);
    atomic_signal_fence(memory_order_seq_cst); /* the ring's store_load_order */
    uint64_t w = atomic_load_explicit(&s->side, memory_order_relaxed);
    do
        if (w < SC_SLEEPER)
            return;
    while (!atomic_compare_exchange_weak(&s->side, &w, (uint32_t)(w + 1)));
    futex_wake(sc_word(s)); /* one receiver a direction: waking one wakes all */
}

static void sc_recv(struct pp_arg *a, int d, uint64_t i, uint64_t me)
{
    (void)me;
    struct sc_dir *s = sc_dir(a, d);
    uint32_t want = (uint32_t)(i + 1);
    while (atomic_load_explicit(&s->msg, memory_order_acquire) != want) {
        uint32_t v = atomic_load(sc_word(s));
        uint32_t token = (uint32_t)atomic_fetch_add(&s->side, SC_SLEEPER);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&s->msg, memory_order_acquire) != want)
            futex_wait(sc_word(s), v, true);
        uint64_t w = atomic_load(&s->side);
        while ((uint32_t)w == token &&
               !atomic_compare_exchange_weak(&s->side, &w, w - SC_SLEEPER))
            ;
    }
}

PP_ROLES(sc, sc_send, sc_recv)

static int run_pingpong(struct bargs a, role_fn ping, role_fn pong, size_t data_off)
{
    struct pp_arg pa = {0};
    /* Room for spin1c's or spin1b's two rings; the other cases use the first lines. */
    pa.word = shared_alloc(2 * sizeof(struct bring));
    if (ping == spin1c_ping)
        c_format(&pa);
    if (ping == spin1b_ping)
        b_format(&pa);
    pa.data_off = data_off;
    pa.count = a.count;
    pa.warm = BENCH_WARM(a.count);
    struct bctl *ctl = ctl_new();
    if (run_pair(ctl, ping, &pa, pong, &pa))
        return 1;
    report_rtt(a.name, a.size, a.count, ctl);
    return 0;
}

/* ---- clock ---------------------------------------------------------------------------
 */

static int run_clock(struct bargs a)
{
    volatile int64_t sink = 0;
    int64_t t0 = now_ns();
    for (uint64_t i = 0; i < a.count; i++)
        sink += now_ns();
    report_op(a.name, a.count, now_ns() - t0);
    (void)sink;
    return 0;
}

int main(int argc, char **argv)
{
    struct bargs a = parse_args(argc, argv,
                                "ring ring_mark ring_hyst spin spin2 spin1d spin1c "
                                "spin1b futex futex2t futexsc clock");
    if (!strcmp(a.name, "ring"))
        return run_ring(a, 1, false);
    if (!strcmp(a.name, "ring_mark"))
        return run_ring(a, 1, true);
    if (!strcmp(a.name, "ring_hyst"))
        return run_ring(a, BENCH_CAPACITY / 8, false);
    if (!strcmp(a.name, "spin"))
        return run_pingpong(a, spin_ping, spin_pong, 0);
    if (!strcmp(a.name, "spin2"))
        return run_pingpong(a, spin2_ping, spin2_pong, 128);
    if (!strcmp(a.name, "spin1d"))
        return run_pingpong(a, spin2_ping, spin2_pong, 8);
    if (!strcmp(a.name, "spin1c"))
        return run_pingpong(a, spin1c_ping, spin1c_pong, 0);
    if (!strcmp(a.name, "spin1b"))
        return run_pingpong(a, spin1b_ping, spin1b_pong, 0);
    if (!strcmp(a.name, "futex"))
        return run_pingpong(a, futex_ping, futex_pong, 0);
    if (!strcmp(a.name, "futex2t"))
        return run_pingpong(a, futex_ping, futex_pong, 128);
    if (!strcmp(a.name, "futexsc"))
        return run_pingpong(a, sc_ping, sc_pong, 0);
    if (!strcmp(a.name, "clock"))
        return run_clock(a);
    fprintf(stderr, "bench_bare: unknown case %s\n", a.name);
    return 2;
}
