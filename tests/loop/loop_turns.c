/*
 * loop_turns.c — servers take turns watching one named MPMC queue from a loop: each
 * turn a server opens the queue by name, creates a loop, watches the queue READABLE,
 * sleeps in the engine, and must see the client's put promptly; then it stops cleanly
 * (removes the source, destroys the loop, closes the queue) and the next server takes
 * over. The servers are long-lived processes taking turns, so whatever a stopped
 * server leaves in the kernel (an engine wait not yet torn down) is still there when
 * the next one sleeps. Also with CPU hogs running, and with servers SIGKILLed while
 * asleep on the queue. Runs on the engine $SHOAL_LOOP_ENGINE names.
 *
 * Only a lost wake-up may fail it, never a slow machine: PROMPT counts from the
 * moment a server reports itself asleep (starting a turn — open, fork — may take
 * long under load), and the client waits for the servers with sleeps between its
 * looks (a spinning client takes a CPU from the servers it waits for), within bounds
 * (30 s) that only a server that never gets there exceeds.
 */
#include <signal.h>

#include "looptest.h"

#define SERVERS 3
#define TURNS   60
#define PROMPT  SHOAL_SEC(8) /* a lost wake-up: a sleeping server that waits longer */
#define KILLED  30           /* servers killed asleep, in turn */
#define QNAME   "turns.q"

struct board {
    _Atomic int turn;   /* whose turn: turn % SERVERS */
    _Atomic int asleep; /* turn t's server is watching (t + 1) */
    _Atomic int seen;   /* turn t's server saw the message (t + 1) */
    _Atomic int quit;
    _Atomic int late;                 /* turns whose message was not seen promptly */
    _Atomic int64_t put_ns, worst_ns; /* when the last put returned; longest wait */
    _Atomic int get_rc;               /* a server's failed try_get (not EAGAIN) */
    char get_detail[256];
};

static struct board *bd;

static void on_msg(shoal_loop *l, shoal_loop_source *s, int ev, void *arg)
{
    (void)l, (void)s, (void)ev;
    shoal_queue *q = arg;
    int64_t v;
    size_t len;
    int rc = shoal_queue_try_get(q, &v, sizeof(v), &len);
    if (rc != 0 && rc != SHOAL_EAGAIN && atomic_load(&bd->get_rc) == 0) {
        /* woken but not taking the message: say why, should a turn come out late */
        snprintf(bd->get_detail, sizeof(bd->get_detail), "%s", shoal_errdetail());
        atomic_store(&bd->get_rc, rc);
    }
    if (rc == 0) {
        int64_t d = shoal__now_ns() - atomic_load(&bd->put_ns);
        if (d > atomic_load(&bd->worst_ns))
            atomic_store(&bd->worst_ns, d);
        atomic_store(&bd->seen, (int)v + 1);
    }
}

/* A process a server starts while its loop runs (it inherits the loop's descriptors)
 * and that outlives the loop. */
static int linger(void *arg)
{
    pid_t server = (pid_t)(intptr_t)arg;
    while (!atomic_load(&bd->quit) && getppid() == server)
        usleep(1000);
    return 0;
}

static bool spawn; /* servers start lingering processes */

/* One turn: open, watch, sleep until the message for turn t came, stop cleanly.
 * Returns 0, or 1 when it did not come within PROMPT. */
static int serve_turn(int t)
{
    shoal_queue *q;
    shoal_loop *l;
    shoal_loop_source *src;
    if (shoal_queue_open(&q, QNAME, SHOAL_OPEN, NULL, NULL) || shoal_loop_create(&l) ||
        shoal_loop_add_queue(l, q, SHOAL_LOOP_READABLE, on_msg, q, &src))
        return 2;
    if (spawn && t % 2 == 0 && t_fork(linger, (void *)(intptr_t)getpid()) < 0)
        return 4;
    int64_t end = INT64_MAX; /* PROMPT from the report on: starting may be slow */
    bool told = false;
    while (atomic_load(&bd->seen) != t + 1 && shoal__now_ns() < end) {
        /* The first call spins, arms the queue and returns at the deadline given:
         * from then on this loop sleeps in the engine. */
        if (shoal_loop_run_once(l, told ? SHOAL_MS(100) : SHOAL_MS(1)) < 0)
            return 3;
        if (!told) {
            atomic_store(&bd->asleep, t + 1);
            told = true;
            end = shoal__now_ns() + PROMPT;
        }
    }
    int late = atomic_load(&bd->seen) != t + 1;
    shoal_loop_remove(l, src);
    shoal_loop_destroy(l);
    shoal_queue_close(q);
    return late;
}

/* A long-lived server process: serves every turn t with t % SERVERS == me. */
static int server(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (;;) {
        int t;
        while ((t = atomic_load(&bd->turn)) % SERVERS != me && t < TURNS)
            usleep(200);
        if (t >= TURNS)
            return 0;
        if (spawn)
            signal(SIGCHLD, SIG_IGN); /* lingering children reap themselves */
        int rc = serve_turn(t);
        if (rc > 1)
            return rc;
        if (rc)
            atomic_fetch_add(&bd->late, 1);
        atomic_store(&bd->turn, t + 1);
    }
}

static int hog(void *arg)
{
    (void)arg;
    for (volatile unsigned long i = 0;; i++)
        ;
    return 0;
}

/* Waits until *v == want, yielding the processor between looks: a waiter spinning
 * here would take a CPU from the servers it waits for. The bound only catches a
 * hang (a server that never gets there), however slow the machine. */
static void wait_for(_Atomic int *v, int want, const char *what)
{
    int64_t end = shoal__now_ns() + SHOAL_SEC(30);
    while (atomic_load(v) != want) {
        if (shoal__now_ns() >= end)
            fail_msg("%s %d: not within 30 s", what, want);
        usleep(100);
    }
}

/* The client: waits until turn t's server sleeps, then puts turn t's message. */
static void put_for(shoal_queue *q, int t)
{
    wait_for(&bd->asleep, t + 1, "no server reported asleep for turn");
    usleep(1000); /* let it reach the engine's wait */
    int64_t v = t;
    atomic_store(&bd->put_ns, shoal__now_ns());
    T_OK(shoal_queue_put(q, &v, sizeof(v), SHOAL_SEC(2)));
}

static shoal_queue *board_setup(void)
{
    bd = t_shared_alloc(sizeof(*bd));
    memset(bd, 0, sizeof(*bd));
    shoal_unlink(QNAME, NULL);
    shoal_queue_config cfg = {.type = shoal_typecode('q'), .capacity = 16};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, QNAME, SHOAL_CREATE, &cfg, NULL));
    return q;
}

static void turns(int hogs, bool with_children)
{
    spawn = with_children;
    shoal_queue *q = board_setup();
    pid_t hp[4], sp[SERVERS];
    for (int i = 0; i < hogs; i++)
        hp[i] = t_fork(hog, NULL);
    for (int i = 0; i < SERVERS; i++)
        sp[i] = t_fork(server, (void *)(intptr_t)i);
    for (int t = 0; t < TURNS; t++) {
        put_for(q, t);
        wait_for(&bd->turn, t + 1, "no server ended turn");
    }
    atomic_store(&bd->quit, 1);
    for (int i = 0; i < SERVERS; i++)
        assert_int_equal(t_wait(sp[i]), 0);
    for (int i = 0; i < hogs; i++)
        t_kill(hp[i]);
    if (atomic_load(&bd->get_rc))
        printf("a server's try_get failed: %s\n", bd->get_detail);
    printf("turns: %d of %d late, slowest %.1f ms\n", atomic_load(&bd->late), TURNS,
           (double)atomic_load(&bd->worst_ns) / 1e6);
    assert_int_equal(atomic_load(&bd->late), 0);
    shoal_queue_close(q);
    shoal_unlink(QNAME, NULL);
}

static void test_turns(void **state)
{
    (void)state;
    turns(0, false);
}

static void test_turns_with_children(void **state)
{
    (void)state;
    turns(0, true);
}

static void test_turns_under_load(void **state)
{
    (void)state;
    turns(2, false);
}

/* One-turn servers: each sleeps on the queue and is SIGKILLed there, or serves. */
static int one_turn(void *arg)
{
    return serve_turn((int)(intptr_t)arg);
}

/* Servers SIGKILLed while their loop sleeps on the queue; the next one, started
 * after, still sees the put promptly. */
static void test_killed_asleep(void **state)
{
    (void)state;
    shoal_queue *q = board_setup();
    for (int t = 0; t < KILLED; t++) {
        pid_t dead = t_fork(one_turn, (void *)(intptr_t)(-2 - t)); /* never served */
        wait_for(&bd->asleep, -2 - t + 1, "no doomed server reported asleep for turn");
        usleep(1000);
        t_kill(dead);
        pid_t p = t_fork(one_turn, (void *)(intptr_t)t);
        put_for(q, t);
        int rc = t_wait(p);
        if (rc && atomic_load(&bd->get_rc))
            printf("kill %d: the next server's try_get failed: %s\n", t, bd->get_detail);
        assert_int_equal(rc, 0);
    }
    shoal_queue_close(q);
    shoal_unlink(QNAME, NULL);
}

int main(void)
{
    t_setup_root();
    if (lt_engine_unavailable())
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turns),
        cmocka_unit_test(test_turns_under_load),
        cmocka_unit_test(test_turns_with_children),
        cmocka_unit_test(test_killed_asleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
