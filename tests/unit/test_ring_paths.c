/* test_ring_paths.c — the ring's fast paths and what they hand to the general one:
 * every message length through the inline copy (nothing written past a message),
 * each case an SPSC put or get leaves to the general path (bad length, NULL
 * arguments, an outstanding loan, a small buffer, a shut-down ring, the first put of
 * a fork child) and the try forms it answers itself (a full or empty open ring), the
 * two slot layouts of an SPSC ring (marked, tail-published) at the sizes around their
 * boundary, SPSC producers taking turns (each keeps its own copy of the tail), an MPMC
 * producer that guessed a free slot on a full ring, and an MPMC consumer asleep when the
 * process holding its message dies. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#include "internal.h"
#include "ring_internal.h"
#include "testutil.h"

#define MAXLEN 200
#define BIGLEN 1024 /* the largest element of test_spsc_layouts */

static shoal_queue *make_var(const char *name, int spsc, size_t cap)
{
    shoal_queue_config cfg = {.max_msg = MAXLEN, .capacity = cap, .spsc = spsc};
    shoal_queue *q = NULL;
    T_OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
    return q;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 31u + i * 7u + 1u);
}

/* Gets one message into a buffer guarded by a canary and checks its bytes and that
 * nothing was written past it. */
static void get_check(shoal_queue *q, size_t want, unsigned seed)
{
    unsigned char buf[BIGLEN + 64], ref[BIGLEN];
    memset(buf, 0xee, sizeof(buf));
    fill(ref, want, seed);
    size_t len = 12345;
    T_OK(shoal_queue_get(q, buf, sizeof(buf), &len, SHOAL_SEC(5)));
    assert_int_equal(len, want);
    assert_memory_equal(buf, ref, want);
    for (size_t i = want; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xee);
}

/* Every length from 0 to MAXLEN, one at a time and a ring's worth at a time (the
 * slots of a variable-size ring are not rewritten between laps: a short message
 * after a long one must not show the long one's tail). */
static void var_lengths(int spsc)
{
    shoal_queue *q = make_var(spsc ? "len-spsc" : "len-mpmc", spsc, 8);
    unsigned char msg[MAXLEN];
    for (size_t n = 0; n <= MAXLEN; n++) {
        fill(msg, n, (unsigned)n);
        T_OK(shoal_queue_put(q, msg, n, SHOAL_SEC(5)));
        get_check(q, n, (unsigned)n);
    }
    for (size_t base = 0; base <= MAXLEN; base += 8) {
        for (size_t k = 0; k < 8; k++) {
            size_t n = (base + k * 37) % (MAXLEN + 1);
            fill(msg, n, (unsigned)(base + k));
            T_OK(shoal_queue_put(q, msg, n, SHOAL_SEC(5)));
        }
        for (size_t k = 0; k < 8; k++)
            get_check(q, (base + k * 37) % (MAXLEN + 1), (unsigned)(base + k));
    }
    shoal_queue_close(q);
}

static void test_var_lengths_spsc(void **state)
{
    (void)state;
    var_lengths(1);
}

static void test_var_lengths_mpmc(void **state)
{
    (void)state;
    var_lengths(0);
}

/* Typed rings of element sizes around each boundary of the inline copy. */
static void test_typed_sizes(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1,  2,  3,  4,  5,  7,  8,  9,  15,  16,
                                     17, 31, 32, 33, 48, 63, 64, 65, 100, 200};
    for (int spsc = 0; spsc < 2; spsc++)
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            char name[64], tname[64];
            snprintf(name, sizeof(name), "typed-%u-%d", sizes[i], spsc);
            snprintf(tname, sizeof(tname), "test.Bytes%u", sizes[i]);
            shoal_type t = {.name = tname,
                            .layout_hash = 0x5151 + sizes[i],
                            .size = sizes[i],
                            .align = 1};
            shoal_queue_config cfg = {.type = &t, .capacity = 4, .spsc = spsc};
            shoal_queue *q;
            T_OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
            unsigned char msg[MAXLEN];
            for (unsigned k = 0; k < 10; k++) { /* more than a lap */
                fill(msg, sizes[i], k);
                T_OK(shoal_queue_put(q, msg, sizes[i], SHOAL_SEC(5)));
                get_check(q, sizes[i], k);
            }
            assert_int_equal(shoal_queue_put(q, msg, sizes[i] + 1, 0), SHOAL_EMSGSIZE);
            shoal_queue_close(q);
        }
}

/* The ring header of queue `name` as its segment file holds it. */
static struct shoal__ringhdr ring_header(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/default/%s", t_root, name);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct shoal__ringhdr h;
    assert_int_equal(pread(fd, &h, sizeof(h), SHOAL_HEADER_SIZE), (ssize_t)sizeof(h));
    close(fd);
    return h;
}

/* shoal_inspect_messages' callback: checks each listed message against the next seed
 * (*arg: the seed, then the length). */
static void listed(void *arg, const void *msg, size_t len)
{
    unsigned *want = arg;
    unsigned char ref[BIGLEN];
    assert_int_equal(len, want[1]);
    fill(ref, len, want[0]++);
    assert_memory_equal(msg, ref, len);
}

/* Puts and gets every way on queue q (capacity 4, elements or messages of up to max
 * bytes; typed: every message is max bytes): laps of single messages, a full batch,
 * a loan and a peek, inspection, the counters, shutdown with a message queued. */
static void exercise(shoal_queue *q, const char *name, size_t max, bool typed)
{
    unsigned char msg[BIGLEN] = {0}, batch[4 * BIGLEN];
    uint64_t n = 0;
    for (unsigned k = 0; k < 10; k++, n++) {   /* more than two laps */
        size_t less = k % 3 < max ? k % 3 : 0; /* var: max, a byte or two less, 0 */
        size_t len = typed ? max : k % 5 == 4 ? 0 : max - less;
        fill(msg, len, k);
        T_OK(shoal_queue_put(q, msg, len, SHOAL_SEC(5)));
        get_check(q, len, k);
    }
    if (typed) {
        for (unsigned k = 0; k < 4; k++)
            fill(batch + k * max, max, 100 + k);
        size_t done = 0;
        T_OK(shoal_queue_put_batch(q, batch, 4, &done, SHOAL_SEC(5)));
        assert_int_equal(done, 4);
        assert_int_equal(shoal_queue_try_put(q, msg, max), SHOAL_EAGAIN); /* full */
        memset(batch, 0, sizeof(batch));
        T_OK(shoal_queue_get_batch(q, batch, 4, &done, SHOAL_SEC(5)));
        assert_int_equal(done, 4);
        for (unsigned k = 0; k < 4; k++) {
            fill(msg, max, 100 + k);
            assert_memory_equal(batch + k * max, msg, max);
        }
        n += 4;
    }
    void *slot;
    size_t cap = 0, len = 0;
    T_OK(shoal_queue_loan(q, &slot, &cap, SHOAL_SEC(5)));
    assert_int_equal(cap, max);
    fill(slot, max, 7);
    T_OK(shoal_queue_commit(q, slot, max));
    const void *peeked;
    T_OK(shoal_queue_peek(q, &peeked, &len, SHOAL_SEC(5)));
    assert_int_equal(len, max);
    fill(msg, max, 7);
    assert_memory_equal(peeked, msg, max);
    T_OK(shoal_queue_release(q, peeked));
    n++;
    /* two messages queued: inspection lists them, the counters count them */
    for (unsigned k = 0; k < 2; k++) {
        fill(msg, max, 200 + k);
        T_OK(shoal_queue_put(q, msg, max, SHOAL_SEC(5)));
    }
    shoal_inspect *in;
    T_OK(shoal_inspect_open(&in, name, NULL));
    unsigned want[2] = {200, (unsigned)max};
    assert_int_equal(shoal_inspect_messages(in, 0, 8, listed, want), 2);
    assert_int_equal(want[0], 202);
    T_OK(shoal_inspect_close(in));
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, n + 2);
    assert_int_equal(st.gets, n);
    assert_int_equal(st.depth, 2);
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(shoal_queue_put(q, msg, max, 0), SHOAL_ECLOSED);
    get_check(q, max, 200);
    get_check(q, max, 201);
    assert_int_equal(shoal_queue_try_get(q, msg, sizeof(msg), &len), SHOAL_EEOF);
}

/* The two layouts of an SPSC ring's slots (ring_spsc.c): a typed element that does not
 * fit behind its marker in a line, but fits in one alone or (rounded to its alignment)
 * fills whole lines, is a dense slot of its own, published by the tail (data_off 0);
 * any other has its marker; variable-size slots always do. */
static void test_spsc_layouts(void **state)
{
    (void)state;
    static const struct {
        uint32_t size, align, data_off, stride;
    } typed[] = {
        {1, 1, 4, 8},     {8, 8, 8, 16},      {56, 8, 8, 64},     {60, 4, 4, 64},
        {61, 1, 0, 61},   {64, 8, 0, 64},     {64, 4, 0, 64},     {48, 16, 16, 64},
        {64, 16, 0, 64},  {72, 8, 8, 80},     {120, 8, 8, 128},   {124, 4, 4, 128},
        {128, 8, 0, 128}, {128, 4, 0, 128},   {126, 2, 4, 132},   {192, 16, 0, 192},
        {200, 8, 8, 208}, {1000, 8, 8, 1008}, {1016, 8, 8, 1024}, {1024, 8, 0, 1024},
    };
    for (size_t i = 0; i < sizeof(typed) / sizeof(typed[0]); i++) {
        char name[64], tname[64];
        snprintf(name, sizeof(name), "layout-%u-%u", typed[i].size, typed[i].align);
        snprintf(tname, sizeof(tname), "test.Layout%u_%u", typed[i].size, typed[i].align);
        shoal_type t = {.name = tname,
                        .layout_hash = 0x1a70 + i,
                        .size = typed[i].size,
                        .align = typed[i].align};
        shoal_queue_config cfg = {.type = &t, .capacity = 4, .spsc = 1};
        shoal_queue *q;
        T_OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
        struct shoal__ringhdr h = ring_header(name);
        assert_int_equal(h.data_off, typed[i].data_off);
        assert_int_equal(h.stride, typed[i].stride);
        exercise(q, name, typed[i].size, true);
        shoal_queue_close(q);
    }
    /* variable-size rings whose slots end just inside, at and past a line */
    static const uint32_t var_max[] = {1, 55, 56, 57, 60, 64, 65};
    for (size_t i = 0; i < sizeof(var_max) / sizeof(var_max[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "layout-var-%u", var_max[i]);
        shoal_queue_config cfg = {.max_msg = var_max[i], .capacity = 4, .spsc = 1};
        shoal_queue *q;
        T_OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
        struct shoal__ringhdr h = ring_header(name);
        assert_int_equal(h.data_off, 8);
        assert_int_equal(h.stride, (8 + var_max[i] + 7) / 8 * 8);
        exercise(q, name, var_max[i], false);
        shoal_queue_close(q);
    }
}

/* What the SPSC fast attempt leaves to the general path still gets its answer. */
static void test_spsc_refusals(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 2, .spsc = 1};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, "refusals", SHOAL_CREATE, &cfg, NULL));
    int64_t v = 5, got = 0;
    size_t len = 0;
    assert_int_equal(shoal_queue_put(q, &v, 4, 0), SHOAL_EMSGSIZE);
    assert_int_equal(shoal_queue_put(q, NULL, 8, 0), SHOAL_EINVAL);
    void *slot;
    T_OK(shoal_queue_loan(q, &slot, NULL, 0));
    assert_int_equal(shoal_queue_put(q, &v, 8, 0), SHOAL_EINVAL);
    memcpy(slot, &v, 8);
    T_OK(shoal_queue_commit(q, slot, 8));
    v = 6;
    T_OK(shoal_queue_put(q, &v, 8, 0));
    assert_int_equal(shoal_queue_put(q, &v, 8, 0), SHOAL_EAGAIN); /* full */
    assert_int_equal(shoal_queue_get(q, &got, 4, &len, 0), SHOAL_EMSGSIZE);
    assert_int_equal(len, 8); /* the size needed; the message stays */
    assert_int_equal(shoal_queue_get(q, NULL, 8, &len, 0), SHOAL_EINVAL);
    T_OK(shoal_queue_get(q, &got, sizeof(got), NULL, 0)); /* no length wanted */
    assert_int_equal(got, 5);
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(shoal_queue_put(q, &v, 8, 0), SHOAL_ECLOSED);
    T_OK(shoal_queue_get(q, &got, sizeof(got), &len, 0));
    assert_int_equal(got, 6);
    assert_int_equal(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_SEC(5)),
                     SHOAL_EEOF);
    shoal_queue_close(q);

    /* A variable-size SPSC ring: an empty message with no buffer at all. */
    q = make_var("refusals-var", 1, 2);
    T_OK(shoal_queue_put(q, NULL, 0, 0));
    len = 99;
    T_OK(shoal_queue_get(q, NULL, 0, &len, 0));
    assert_int_equal(len, 0);
    shoal_queue_close(q);
}

/* The try forms a fast attempt answers itself (no room, no message, the ring open)
 * and those it must leave to the general path once the ring is shut down. */
static void test_spsc_try_answers(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 2, .spsc = 1};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, "try-answers", SHOAL_CREATE, &cfg, NULL));
    int64_t v = 1, got = 0;
    size_t len = 0;
    assert_int_equal(shoal_queue_try_get(q, &got, sizeof(got), &len), SHOAL_EAGAIN);
    T_OK(shoal_queue_try_put(q, &v, 8));
    v = 2;
    T_OK(shoal_queue_try_put(q, &v, 8));
    assert_int_equal(shoal_queue_try_put(q, &v, 8), SHOAL_EAGAIN); /* full */
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(shoal_queue_try_put(q, &v, 8), SHOAL_ECLOSED); /* full and shut */
    for (int64_t want = 1; want <= 2; want++) {
        T_OK(shoal_queue_try_get(q, &got, sizeof(got), &len));
        assert_int_equal(got, want);
    }
    assert_int_equal(shoal_queue_try_get(q, &got, sizeof(got), &len), SHOAL_EEOF);
    shoal_queue_close(q);
}

/* A fork child's first put marks itself in flight with its own owner id: the
 * parent's shutdown waits for nothing once it is done, and what it put comes
 * before the end of the stream. */
static int child_puts(void *arg)
{
    for (int64_t v = 10; v < 13; v++)
        if (shoal_queue_put(arg, &v, 8, SHOAL_SEC(5)))
            return 1;
    return 0;
}

static void test_spsc_fork_child_puts(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 8, .spsc = 1};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, "forked", SHOAL_CREATE, &cfg, NULL));
    int64_t v = 1, got;
    size_t len;
    T_OK(shoal_queue_put(q, &v, 8, 0)); /* the parent has put before the fork */
    pid_t pid = t_fork(child_puts, q);
    assert_int_equal(t_wait(pid), 0);
    T_OK(shoal_queue_shutdown(q));
    const int64_t want[] = {1, 10, 11, 12};
    for (int i = 0; i < 4; i++) {
        T_OK(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_SEC(5)));
        assert_int_equal(got, want[i]);
    }
    assert_int_equal(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_SEC(5)),
                     SHOAL_EEOF);
    shoal_queue_close(q);
}

/* A child that puts 20 and 21, then is killed after publishing 22 (pause point
 * queue.published: before it ends its put). */
static int child_puts_dies(void *arg)
{
    shoal__test_pause_at(NULL); /* armed for 22 only */
    for (int64_t v = 20; v < 23; v++) {
        if (v == 22)
            shoal__test_pause_at("queue.published");
        if (shoal_queue_put(arg, &v, 8, SHOAL_SEC(5)))
            return 1;
    }
    return 0;
}

static void put_via(shoal_queue *q, int64_t v)
{
    T_OK(shoal_queue_put(q, &v, 8, SHOAL_SEC(5)));
}

/* An SPSC producer keeps its own copy of the tail while its puts are the last ones
 * (ring_spsc.c). Producers that take turns — two handles of one process, fork
 * children, one of them killed just after publishing, loans, batches — each put
 * after the others' messages: nothing overwritten, nothing lost, order kept. */
static void test_spsc_producers_take_turns(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 8, .spsc = 1};
    shoal_queue *q, *q2;
    T_OK(shoal_queue_open(&q, "turns", SHOAL_CREATE, &cfg, NULL));
    T_OK(shoal_queue_open(&q2, "turns", SHOAL_OPEN, &cfg, NULL));
    int64_t want[32], got;
    int n = 0, next = 0;
    size_t len;
#define PUT(h, v) (put_via((h), (v)), want[n++] = (v))
    PUT(q, 1);
    PUT(q, 2);
    PUT(q2, 3);
    PUT(q, 4); /* q's copy of the tail is stale: q2 put since */
    assert_int_equal(t_wait(t_fork(child_puts, q)), 0); /* the child's copy of q */
    for (int64_t v = 10; v < 13; v++)
        want[n++] = v;
    for (; next < n; next++) { /* wrap the ring of 8 */
        T_OK(shoal_queue_get(q2, &got, sizeof(got), &len, SHOAL_SEC(5)));
        assert_int_equal(got, want[next]);
    }
    PUT(q, 5);
    pid_t pid = t_fork_paused("queue.published", child_puts_dies, q);
    assert_true(pid > 0);
    t_kill(pid);
    for (int64_t v = 20; v < 23; v++)
        want[n++] = v;
    PUT(q, 6);
    void *slot;
    size_t cap;
    T_OK(shoal_queue_loan(q2, &slot, &cap, SHOAL_SEC(5)));
    memcpy(slot, &(int64_t){7}, 8);
    T_OK(shoal_queue_commit(q2, slot, 8));
    want[n++] = 7;
    for (; next < n; next++) {
        T_OK(shoal_queue_get(q2, &got, sizeof(got), &len, SHOAL_SEC(5)));
        assert_int_equal(got, want[next]);
    }
    const int64_t two[2] = {8, 9};
    size_t done;
    T_OK(shoal_queue_put_batch(q2, two, 2, &done, SHOAL_SEC(5)));
    assert_int_equal(done, 2);
    want[n++] = 8;
    want[n++] = 9;
    PUT(q, 30);
#undef PUT
    T_OK(shoal_queue_shutdown(q));
    for (; next < n; next++) {
        T_OK(shoal_queue_get(q2, &got, sizeof(got), &len, SHOAL_SEC(5)));
        assert_int_equal(got, want[next]);
    }
    assert_int_equal(shoal_queue_get(q2, &got, sizeof(got), &len, SHOAL_SEC(5)),
                     SHOAL_EEOF);
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q2, &st));
    assert_int_equal(st.puts, (uint64_t)n);
    assert_int_equal(st.gets, (uint64_t)n);
    shoal_queue_close(q2);
    shoal_queue_close(q);
}

/* An MPMC producer finds the ring full (its guess of a free slot fails), then room,
 * then puts on as usual: order and counts are kept. */
static void test_mpmc_full_then_room(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 2};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, "full-room", SHOAL_CREATE, &cfg, NULL));
    int64_t next_put = 0, next_get = 0, got;
    size_t len;
    for (int round = 0; round < 5; round++) {
        while (shoal_queue_try_put(q, &next_put, 8) == 0)
            next_put++;
        assert_int_equal(shoal_queue_try_put(q, &next_put, 8), SHOAL_EAGAIN);
        T_OK(shoal_queue_get(q, &got, sizeof(got), &len, 0));
        assert_int_equal(got, next_get++);
        T_OK(shoal_queue_try_put(q, &next_put, 8)); /* after a full ring */
        next_put++;
        while (shoal_queue_try_get(q, &got, sizeof(got), &len) == 0)
            assert_int_equal(got, next_get++);
    }
    assert_int_equal(next_get, next_put);
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, (uint64_t)next_put);
    assert_int_equal(st.gets, (uint64_t)next_get);
    shoal_queue_close(q);
}

/* An MPMC consumer asleep on an empty ring while another process holds a claimed
 * message: when that process is SIGKILLed, the sleeper takes the message over (it
 * looks for dead owners before each sleep, not only every so many polls). */
struct taker {
    shoal_queue *q;
    int64_t got;
    int rc;
};

static void *take(void *arg)
{
    struct taker *t = arg;
    size_t len;
    t->rc = shoal_queue_get(t->q, &t->got, sizeof(t->got), &len, SHOAL_SEC(10));
    return NULL;
}

static int claim_one(void *arg)
{
    int64_t v;
    size_t len;
    return shoal_queue_get(arg, &v, sizeof(v), &len, SHOAL_SEC(5)) == 0 ? 0 : 1;
}

static void test_mpmc_sleeper_takes_over(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 4};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, "takeover", SHOAL_CREATE, &cfg, NULL));
    int64_t v = 42;
    T_OK(shoal_queue_put(q, &v, 8, 0));
    pid_t pid = t_fork_paused("queue.claimed", claim_one, q);
    assert_true(pid > 0);
    int64_t spin = shoal_spin_ns();
    shoal_set_spin_ns(0);
    struct taker t = {q, 0, -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, take, &t), 0);
    usleep(100000); /* the taker sleeps: the claim's owner is alive (stopped) */
    t_kill(pid);
    assert_int_equal(pthread_join(th, NULL), 0);
    shoal_set_spin_ns(spin);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.got, 42);
    size_t len;
    assert_int_equal(shoal_queue_try_get(q, &v, sizeof(v), &len), SHOAL_EAGAIN);
    shoal_queue_close(q);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_var_lengths_spsc),
        cmocka_unit_test(test_var_lengths_mpmc),
        cmocka_unit_test(test_typed_sizes),
        cmocka_unit_test(test_spsc_layouts),
        cmocka_unit_test(test_spsc_refusals),
        cmocka_unit_test(test_spsc_try_answers),
        cmocka_unit_test(test_spsc_fork_child_puts),
        cmocka_unit_test(test_spsc_producers_take_turns),
        cmocka_unit_test(test_mpmc_full_then_room),
        cmocka_unit_test(test_mpmc_sleeper_takes_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
