/*
 * broker_view.c — the broker's read view (broker/view.c, runtime/src/manager_view.c),
 * with real processes: the broker (shoal_broker_serve) in a forked child, clients here
 * and in forked children.
 *
 * Hits: a read repeated with nothing changed is answered by the view (the client's
 * hit counter moves) with the broker's value. Linearizability: a reader told of each
 * acknowledged write (through a pipe) never reads an older value; a writer's own read
 * after pipelined writes sees them. Every way an object changes makes its cached
 * replies stale: del, pop, a nested path's append, clear, update, incr, cas, the
 * object deleted and made again as another kind, a lock freed by its holder's death,
 * an Event set and cleared, a broker restarted on its data directory. Durable mode: a
 * broker stopped between a write and its commit, then SIGKILLed, never let the view
 * show the uncommitted value. A dead broker's view is never used (gets fail as the
 * session does); a restarted broker's new view is. A corrupt view (bad magic,
 * lengths past the slot, an object slot out of range) is ignored, with no crash. A
 * read by round trip of a reply the view holds, current, does not write it again;
 * after a change it does. The clients' list of pure operations is the broker's.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forked.h"
#include "manager_view.h"
#include "view.h"

static char data_dir[300];

static int setup(void **state)
{
    static int n;
    snprintf(addr, sizeof(addr), "shm://view-%d-%d", (int)getpid(), ++n);
    snprintf(data_dir, sizeof(data_dir), "%s/data-%d", t_root, n);
    *state = NULL;
    return 0;
}

#define S(x) shoal_mv_str(x)
#define I(x) shoal_mv_int(x)

/* Reads twice: the second read must be a hit with the same value, which is returned. */
static const char *cached(shoal_manager *m, const char *name, const char *opname,
                          shoal_mv *arg)
{
    static char first[512];
    bool hit;
    shoal_mv *again = arg ? shoal_mv_copy(arg) : NULL;
    snprintf(first, sizeof(first), "%s",
             arg ? op(m, name, opname, 1, arg) : op(m, name, opname, 0));
    const char *second =
        arg ? opx(m, &hit, name, opname, 1, again) : opx(m, &hit, name, opname, 0);
    assert_string_equal(second, first);
    if (!hit)
        fail_msg("%s %s: not answered by the view the second time", name, opname);
    return first;
}

static void test_hits_across_processes(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_view_stats(m, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(1)));
    assert_string_equal(cached(m, "d", "get", S("k")), "1");
    /* another process reads it from the view, then a write of ours changes it */
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        shoal_manager *r = connect_to(addr, NULL);
        char ch;
        bool hit;
        int ok = !strcmp(opx(r, &hit, "d", "get", 1, S("k")), "1") && hit;
        ok = ok && write(done[1], "x", 1) == 1 && read(go[0], &ch, 1) == 1;
        ok = ok && !strcmp(opx(r, &hit, "d", "get", 1, S("k")), "2") && !hit;
        ok = ok && !strcmp(opx(r, &hit, "d", "get", 1, S("k")), "2") && hit;
        shoal_manager_close(r);
        _exit(ok ? 0 : 1);
    }
    char ch;
    assert_int_equal(read(done[0], &ch, 1), 1);
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(2)));
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(t_wait(c), 0);
    shoal_manager_close(m);
    stop_broker(b);
}

/* The reader of test_linearizable: reads k over and over (taking the values it is
 * told of without waiting for them) until the pipe closes, never older than the last
 * value it was told of; exits 0, or 1 on a stale read, 2 with no hit. */
static int lin_reader(int from)
{
    shoal_manager *r = connect_to(addr, NULL);
    int64_t told = 0;
    if (fcntl(from, F_SETFL, O_NONBLOCK) < 0)
        return 4;
    for (;;) {
        int64_t v;
        ssize_t n;
        while ((n = read(from, &v, sizeof(v))) == sizeof(v)) /* 8 bytes: atomic */
            told = v;
        if (n == 0)
            break;
        shoal_mv *res = NULL;
        if (shoal_manager_call(r, "d", "get", 0, &res, 1, S("k")) < 0)
            return 3;
        int64_t got = shoal_mv_as_int(res);
        shoal_mv_free(res);
        if (got < told) {
            fprintf(stderr, "stale read: %lld after %lld was acknowledged\n",
                    (long long)got, (long long)told);
            return 1;
        }
    }
    uint64_t hits = hits_of(r), misses = 0;
    shoal_manager_view_stats(r, NULL, &misses);
    fprintf(stderr, "reader: %llu hits, %llu misses\n", (unsigned long long)hits,
            (unsigned long long)misses);
    shoal_manager_close(r);
    return hits ? 0 : 2;
}

static void test_linearizable(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(0)));
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        close(p[1]);
        _exit(lin_reader(p[0]));
    }
    close(p[0]);
    enum { N = 3000 };
    for (int64_t i = 1; i <= N; i++) {
        T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(i)));
        assert_int_equal(write(p[1], &i, sizeof(i)), sizeof(i));
        if (i % 16 == 0) /* some reads of our own between the writes */
            for (int j = 0; j < 3; j++) {
                char want[32];
                snprintf(want, sizeof(want), "%lld", (long long)i);
                assert_string_equal(op(m, "d", "get", 1, S("k")), want);
            }
    }
    close(p[1]);
    assert_int_equal(t_wait(c), 0);
    /* pipelined writes, then a read of ours: it sees them, view or not */
    for (int round = 0; round < 50; round++) {
        assert_string_equal(cached(m, "d", "get", S("k")),
                            round ? "7" : "3000"); /* the view holds the old value */
        uint64_t ids[16];
        for (int i = 0; i < 16; i++) {
            shoal_mv *a[2] = {S("k"), I(i == 15 ? 7 : 100 + i)};
            shoal_manager_request r = {"d", "set", NULL, 0, a, 2, 0};
            T_OK(shoal_manager_submit(m, &r, &ids[i]));
        }
        bool hit;
        assert_string_equal(opx(m, &hit, "d", "get", 1, S("k")), "7");
        assert_false(hit);
        for (int i = 0; i < 16; i++)
            T_OK(shoal_manager_wait(m, ids[i], NULL));
    }
    shoal_manager_close(m);
    stop_broker(b);
}

/* Holds lock "lk" in a forked child's session until it is killed. */
static pid_t hold_lock(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        shoal_manager *h = connect_to(addr, NULL);
        int rc = shoal_manager_call(h, "lk", "acquire", SHOAL_FOREVER, NULL, 0);
        if (write(p[1], &rc, sizeof(rc)) != sizeof(rc))
            _exit(1);
        pause();
        _exit(0);
    }
    int rc = -1;
    assert_int_equal(read(p[0], &rc, sizeof(rc)), sizeof(rc));
    assert_int_equal(rc, 0);
    close(p[0]);
    close(p[1]);
    return c;
}

static void test_every_change_invalidates(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.no_lock_table = 1},
                                NULL); /* a lock's locked in the view */
    shoal_manager *w = connect_to(addr, NULL), *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(w, "d", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(w, "d", "set", 0, NULL, 2, S("a"), I(1)));
    T_OK(shoal_manager_call(w, "d", "set", 0, NULL, 2, S("b"), I(2)));
    T_OK(shoal_manager_call(w, "d", "set", 0, NULL, 2, S("x"), shoal_mv_list()));
    assert_string_equal(cached(m, "d", "len", NULL), "3");
    assert_string_equal(cached(m, "d", "contains", S("a")), "True");
    T_OK(shoal_manager_call(w, "d", "del", 0, NULL, 1, S("a")));
    assert_string_equal(cached(m, "d", "contains", S("a")), "False");
    assert_string_equal(cached(m, "d", "len", NULL), "2");
    assert_string_equal(cached(m, "d", "get", S("b")), "2");
    T_OK(shoal_manager_call(w, "d", "pop", 0, NULL, 1, S("b")));
    assert_string_equal(op(m, "d", "get", 1, S("b")), "E-3"); /* no such key */
    assert_string_equal(cached(m, "d", "get", S("x")), "[]");
    shoal_mv *path[1] = {S("x")}, *args[1] = {I(7)};
    shoal_manager_request r = {"d", "append", path, 1, args, 1, 0};
    uint64_t id;
    T_OK(shoal_manager_submit(w, &r, &id));
    T_OK(shoal_manager_wait(w, id, NULL));
    assert_string_equal(cached(m, "d", "get", S("x")), "[7]");
    shoal_mv *u = shoal_mv_map();
    shoal_mv_put(u, S("x"), I(1));
    shoal_mv_put(u, S("c"), I(3));
    T_OK(shoal_manager_call(w, "d", "update", 0, NULL, 1, u));
    assert_string_equal(cached(m, "d", "get", S("x")), "1");
    T_OK(shoal_manager_call(w, "d", "incr", 0, NULL, 2, S("x"), I(5)));
    assert_string_equal(cached(m, "d", "get", S("x")), "6");
    T_OK(shoal_manager_call(w, "d", "cas", 0, NULL, 3, S("x"), I(6), I(9)));
    assert_string_equal(cached(m, "d", "get", S("x")), "9");
    assert_string_equal(cached(m, "d", "keys", NULL), "['x', 'c']");
    T_OK(shoal_manager_call(w, "d", "clear", 0, NULL, 0));
    assert_string_equal(cached(m, "d", "len", NULL), "0");
    assert_string_equal(op(m, "d", "get", 1, S("x")), "E-3");
    /* deleted and made again as another kind: the old replies are not its own */
    T_OK(shoal_manager_call(w, "d", "set", 0, NULL, 2, S("x"), I(1)));
    assert_string_equal(cached(m, "d", "len", NULL), "1");
    assert_int_equal(shoal_manager_delete(w, "d"), 0);
    assert_string_equal(op(m, "d", "len", 0), "E-3");
    shoal_mv *three = shoal_mv_list();
    shoal_mv_append(three, I(4));
    shoal_mv_append(three, I(5));
    shoal_mv_append(three, I(6));
    assert_int_equal(shoal_manager_create(w, "d", SHOAL_M_LIST, three, NULL), 1);
    assert_string_equal(cached(m, "d", "len", NULL), "3");
    assert_string_equal(cached(m, "d", "get", I(0)), "4");
    /* a Value */
    assert_int_equal(shoal_manager_create(w, "v", SHOAL_M_VALUE, I(1), "i"), 1);
    assert_string_equal(cached(m, "v", "get", NULL), "1");
    T_OK(shoal_manager_call(w, "v", "incr", 0, NULL, 1, I(1)));
    assert_string_equal(cached(m, "v", "get", NULL), "2");
    /* an Event set and cleared */
    assert_int_equal(shoal_manager_create(w, "ev", SHOAL_M_EVENT, NULL, NULL), 1);
    assert_string_equal(cached(m, "ev", "is_set", NULL), "False");
    T_OK(shoal_manager_call(w, "ev", "set", 0, NULL, 0));
    assert_string_equal(cached(m, "ev", "is_set", NULL), "True");
    T_OK(shoal_manager_call(w, "ev", "clear", 0, NULL, 0));
    assert_string_equal(cached(m, "ev", "is_set", NULL), "False");
    /* a lock freed by its holder's death: `locked` must not report it held */
    assert_int_equal(shoal_manager_create(w, "lk", SHOAL_M_LOCK, NULL, NULL), 1);
    assert_string_equal(cached(m, "lk", "locked", NULL), "False");
    pid_t holder = hold_lock();
    assert_string_equal(cached(m, "lk", "locked", NULL), "True");
    t_kill(holder);
    const char *now = "True";
    for (int i = 0; i < 500 && !strcmp(now, "True"); i++) { /* the broker sees it */
        usleep(2000);
        now = op(m, "lk", "locked", 0);
    }
    assert_string_equal(now, "False");
    assert_string_equal(cached(m, "lk", "locked", NULL), "False");
    /* a queue's size, with a put and a get */
    assert_int_equal(shoal_manager_create(w, "q", SHOAL_M_QUEUE, NULL, NULL), 1);
    assert_string_equal(cached(m, "q", "qsize", NULL), "0");
    T_OK(shoal_manager_call(w, "q", "put", 0, NULL, 1, I(1)));
    assert_string_equal(cached(m, "q", "qsize", NULL), "1");
    T_OK(shoal_manager_call(w, "q", "get", 0, NULL, 0));
    assert_string_equal(cached(m, "q", "empty", NULL), "True");
    shoal_manager_close(m);
    shoal_manager_close(w);
    stop_broker(b);
}

/* The view key of `get key` on obj into k: its length. */
static size_t get_key(const char *obj, const char *key, uint8_t *k)
{
    shoal_mv *args[1] = {S(key)};
    breq q = SHOAL__BROKER__REQUEST__INIT;
    q.id = 1;
    q.object = (char *)obj;
    q.op = "get";
    q.args = (bv **)args;
    q.n_args = 1;
    q.thread = (uint64_t)pthread_self();
    uint8_t stack[256];
    size_t len;
    void *buf = shoal__bv_pack_request(&q, stack, sizeof(stack), &len);
    assert_ptr_equal(buf, stack);
    shoal_mv_free(args[0]);
    uint64_t id;
    size_t kl = shoal__view_key(buf, len, k, SHOAL_VIEW_SLOT, &id);
    assert_true(kl > 0);
    return kl;
}

/* The view's reply to `get key` on obj, looked up directly in view v (NULL: none). */
static const char *view_get(shoal__view *v, const char *obj, const char *key)
{
    static char out[256];
    uint8_t k[SHOAL_VIEW_SLOT], reply[SHOAL_VIEW_SLOT];
    size_t kl = get_key(obj, key, k);
    size_t n =
        shoal__view_lookup(v, k, kl, shoal__view_hash(k, kl), reply, sizeof(reply));
    if (!n)
        return NULL;
    shoal_bv_reply r;
    assert_int_equal(shoal__bv_unpack_reply(reply, n, &r), 0);
    shoal_mv_format((shoal_mv *)r.result, out, sizeof(out));
    shoal__bv_reply_free(&r);
    return out;
}

static void test_durable_commit_first(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.data_dir = data_dir}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(1)));
    shoal_manager_close(m);
    stop_broker(b);

    /* stopped at each commit: the write is applied, not committed */
    b = start_broker_with(&(broker_args){.data_dir = data_dir}, "broker.before_commit");
    shoal_manager *w = connect_to(addr, NULL), *r = connect_to(addr, NULL);
    assert_string_equal(cached(r, "d", "get", S("k")), "1");
    shoal__view *v = shoal__view_open(addr + 6, NULL);
    assert_non_null(v);
    assert_string_equal(view_get(v, "d", "k"), "1");
    shoal_mv *a[2] = {S("k"), I(2)};
    shoal_manager_request q = {"d", "set", NULL, 0, a, 2, 0};
    uint64_t id;
    T_OK(shoal_manager_submit(w, &q, &id));
    T_OK(shoal_manager_flush(w)); /* sent now: the submit may keep it */
    int st;
    assert_int_equal(waitpid(b, &st, WUNTRACED), b);
    assert_true(WIFSTOPPED(st));
    /* applied, not committed: the view has no current reply (not 1, never 2) */
    assert_null(view_get(v, "d", "k"));
    t_kill(b);
    assert_int_equal(shoal_manager_wait(w, id, NULL), SHOAL_EPEERDEAD);
    assert_null(view_get(v, "d", "k"));
    bool hit;
    assert_string_equal(opx(r, &hit, "d", "get", 1, S("k")),
                        "E-22"); /* SHOAL_EPEERDEAD */
    shoal_manager_close(w);
    shoal_manager_close(r);

    b = start_broker_with(&(broker_args){.data_dir = data_dir}, NULL);
    r = connect_to(addr, NULL);
    assert_string_equal(cached(r, "d", "get", S("k")), "1"); /* the write was lost */
    assert_null(view_get(v, "d", "k"));                      /* the old view: dead */
    shoal__view_close(v);
    v = shoal__view_open(addr + 6, NULL);
    assert_string_equal(view_get(v, "d", "k"), "1");
    shoal__view_close(v);
    shoal_manager_close(r);
    stop_broker(b);
}

/* A durable broker runs a session's pipelined requests as one batch with one commit:
 * a read staged between two writes of the batch is not published (the second write
 * moved the generation), so a reader never sees the value between them. */
static void test_read_between_batched_writes(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.data_dir = data_dir}, NULL);
    shoal_manager *w = connect_to(addr, NULL), *r = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(w, "d", SHOAL_M_DICT, NULL, NULL), 1);
    for (int round = 0; round < 200; round++) {
        uint64_t ids[3];
        for (int i = 0; i < 3; i++) {
            shoal_mv *a[2] = {S("k"), I(round * 10 + i)};
            shoal_manager_request q = {"d", i == 1 ? "get" : "set", NULL, 0,
                                       a,   i == 1 ? 1 : 2,         0};
            if (i == 1)
                shoal_mv_free(a[1]);
            T_OK(shoal_manager_submit(w, &q, &ids[i]));
        }
        for (int i = 0; i < 3; i++)
            T_OK(shoal_manager_wait(w, ids[i], NULL));
        char want[32];
        snprintf(want, sizeof(want), "%d", round * 10 + 2);
        assert_string_equal(op(r, "d", "get", 1, S("k")), want);
        assert_string_equal(op(r, "d", "get", 1, S("k")), want);
    }
    assert_true(hits_of(r) > 0);
    shoal_manager_close(w);
    shoal_manager_close(r);
    stop_broker(b);
}

static void test_dead_broker(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(1)));
    assert_string_equal(cached(m, "d", "get", S("k")), "1");
    shoal__view *v = shoal__view_open(addr + 6, NULL);
    assert_string_equal(view_get(v, "d", "k"), "1");
    t_kill(b);
    assert_null(view_get(v, "d", "k"));
    bool hit;
    const char *got = opx(m, &hit, "d", "get", 1, S("k"));
    assert_false(hit);
    assert_true(!strcmp(got, "E-22") || !strcmp(got, "E-20"));
    /* a new broker on the name (memory only: it starts empty) */
    b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *n = connect_to(addr, NULL);
    assert_string_equal(op(n, "d", "get", 1, S("k")), "E-3"); /* no such object */
    assert_int_equal(shoal_manager_create(n, "d", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(n, "d", "set", 0, NULL, 2, S("k"), I(5)));
    assert_string_equal(cached(n, "d", "get", S("k")), "5");
    assert_null(view_get(v, "d", "k")); /* the old one never lies */
    got = opx(m, &hit, "d", "get", 1, S("k"));
    assert_false(hit);
    assert_true(!strcmp(got, "E-22") || !strcmp(got, "E-20"));
    shoal__view_close(v);
    shoal_manager_close(m);
    shoal_manager_close(n);
    /* stopped cleanly: the view is withdrawn, and its name removed */
    v = shoal__view_open(addr + 6, NULL);
    assert_non_null(v);
    stop_broker(b);
    assert_null(view_get(v, "d", "k"));
    shoal__view_close(v);
    assert_null(shoal__view_open(addr + 6, NULL));
}

/* A client connecting while its broker starts, with the dead view of a killed
 * broker still there: the connection completes only once the broker serves, which it
 * does after it published its new view (the broker stopped between its listen and its
 * view, and let go by another process), so the connection maps the new one. */
static void test_view_of_a_starting_broker(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_view_stats(m, NULL, NULL), 1);
    shoal_manager_close(m);
    t_kill(b);
    b = start_broker_with(&(broker_args){0}, "broker.before_view");
    int st;
    assert_int_equal(waitpid(b, &st, WUNTRACED), b);
    assert_true(WIFSTOPPED(st));
    fflush(NULL);
    pid_t waker = fork();
    if (waker == 0) {
        usleep(200 * 1000);
        _exit(kill(b, SIGCONT) == 0 ? 0 : 1);
    }
    m = connect_to(addr, NULL);
    assert_int_equal(t_wait(waker), 0);
    assert_int_equal(shoal_manager_view_stats(m, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(3)));
    assert_string_equal(cached(m, "d", "get", S("k")), "3");
    shoal_manager_close(m);
    stop_broker(b);
}

/* The slots the broker has written in its view so far (each write moves a slot's
 * seq by 2). */
static uint64_t slot_writes(void)
{
    char name[200];
    snprintf(name, sizeof(name), "%s:view", addr + 6);
    shoal_shm *shm;
    T_OK(shoal_shm_open(&shm, name, SHOAL_OPEN, 0, NULL));
    shoal_view_header *h = shoal_shm_data(shm);
    shoal_view_slot *s = (shoal_view_slot *)((uint8_t *)h + h->slots_off);
    uint64_t n = 0;
    for (uint32_t i = 0; i < h->nslots; i++)
        n += atomic_load(&s[i].seq) / 2;
    shoal_shm_close(shm);
    return n;
}

/* d.get(k) by round trip: submitted behind a write of another object, so that the
 * client does not consult the view. */
static const char *round_trip_get(shoal_manager *m)
{
    uint64_t ids[2];
    shoal_mv *args[2] = {S("x"), I(1)};
    shoal_manager_request w = {"other", "set", NULL, 0, args, 2, 0};
    T_OK(shoal_manager_submit(m, &w, &ids[0]));
    shoal_mv *key[1] = {S("k")};
    shoal_manager_request r = {"d", "get", NULL, 0, key, 1, 0};
    T_OK(shoal_manager_submit(m, &r, &ids[1]));
    T_OK(shoal_manager_wait(m, ids[0], NULL));
    shoal_mv *res = NULL;
    T_OK(shoal_manager_wait(m, ids[1], &res));
    static char out[64];
    shoal_mv_format(res, out, sizeof(out));
    shoal_mv_free(res);
    return out;
}

/* A read that comes by round trip while the view holds its reply, still current,
 * leaves the slot as it is; once the object changed, the same read writes its new
 * reply (a stale slot is never kept as if current: the next read is a hit with the
 * new value). */
static void test_current_reply_not_rewritten(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(shoal_manager_create(m, "other", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(1)));
    assert_string_equal(cached(m, "d", "get", S("k")), "1");
    uint64_t writes = slot_writes(), hits = hits_of(m);
    for (int i = 0; i < 10; i++)
        assert_string_equal(round_trip_get(m), "1");
    assert_int_equal(hits_of(m), hits); /* they were round trips */
    assert_int_equal(slot_writes(), writes);
    assert_string_equal(cached(m, "d", "get", S("k")), "1");
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(2)));
    assert_string_equal(round_trip_get(m), "2");
    assert_int_equal(slot_writes(), writes + 1);
    bool hit;
    assert_string_equal(opx(m, &hit, "d", "get", 1, S("k")), "2");
    assert_true(hit);
    shoal_manager_close(m);
    stop_broker(b);
}

/* The clients' list of pure operations (manager_view.h) is the broker's (core.c). */
static void test_pure_ops_agree(void **state)
{
    (void)state;
    const char *differs = broker__view_ops_check();
    if (differs)
        fail_msg("operation \"%s\": F_PURE in core.c's ops[] and SHOAL_VIEW_PURE_OPS "
                 "(manager_view.h) differ",
                 differs);
}

/* Makes NAME:view by hand: a header as the broker's (magic given), its liveness lock
 * held by this thread, and every slot holding the key of `get k` on d, with the
 * reply's length and the object slot given. */
static shoal_shm *fake_view(uint64_t magic, uint16_t rlen, uint32_t obj)
{
    uint8_t key[SHOAL_VIEW_SLOT];
    size_t klen = get_key("d", "k", key);
    char name[200];
    snprintf(name, sizeof(name), "%s:view", addr + 6);
    size_t size = shoal__view_size(64, 64);
    shoal_shm *shm;
    T_OK(shoal_shm_open(&shm, name, SHOAL_CREATE, size, NULL));
    shoal_view_header *h = shoal_shm_data(shm);
    *h = (shoal_view_header){.magic = magic,
                             .version = SHOAL_VIEW_VERSION,
                             .slot_size = SHOAL_VIEW_SLOT,
                             .nslots = 64,
                             .nobjs = 64,
                             .gens_off = sizeof(*h),
                             .slots_off = sizeof(*h) + 64 * 8,
                             .size = size};
    T_OK(shoal_lock_init(&h->live, 0));
    T_OK(shoal_lock_acquire(&h->live, SHOAL_FOREVER));
    shoal_view_slot *s = (shoal_view_slot *)((uint8_t *)h + h->slots_off);
    for (int i = 0; i < 64; i++) {
        s[i].hash = shoal__view_hash(key, klen);
        s[i].klen = (uint16_t)klen;
        s[i].rlen = rlen;
        s[i].obj = obj;
        memset(s[i].data, 0xab, sizeof(s[i].data));
        memcpy(s[i].data, key, klen);
    }
    return shm;
}

static void test_corrupt_view(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.no_view = 1}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_view_stats(m, NULL, NULL), 0); /* none */
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    T_OK(shoal_manager_call(m, "d", "set", 0, NULL, 2, S("k"), I(1)));
    shoal_manager_close(m);
    char name[200];
    snprintf(name, sizeof(name), "%s:view", addr + 6);
    struct {
        uint64_t magic;
        uint16_t rlen;
        uint32_t obj;
        int used;
    } cases[] = {{0x1234, 4, 1, 0},                  /* not a view */
                 {SHOAL_VIEW_MAGIC, 220, 1, 1},      /* the reply past the slot */
                 {SHOAL_VIEW_MAGIC, 0xffff, 1, 1},   /* far past it */
                 {SHOAL_VIEW_MAGIC, 4, 1u << 30, 1}, /* object slot out of range */
                 {SHOAL_VIEW_MAGIC, 4, 0, 1}};       /* no object */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        shoal_shm *shm = fake_view(cases[i].magic, cases[i].rlen, cases[i].obj);
        m = connect_to(addr, NULL);
        assert_int_equal(shoal_manager_view_stats(m, NULL, NULL), cases[i].used);
        uint64_t hits = 1;
        for (int j = 0; j < 20; j++)
            assert_string_equal(op(m, "d", "get", 1, S("k")), "1");
        shoal_manager_view_stats(m, &hits, NULL);
        assert_int_equal(hits, 0);
        shoal_manager_close(m);
        shoal_lock_release(&((shoal_view_header *)shoal_shm_data(shm))->live);
        shoal_shm_close(shm);
        T_OK(shoal_unlink(name, NULL));
    }
    /* a header whose parts lie past the segment */
    shoal_shm *shm = fake_view(SHOAL_VIEW_MAGIC, 4, 1);
    ((shoal_view_header *)shoal_shm_data(shm))->slots_off = 1u << 30;
    m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_view_stats(m, NULL, NULL), 0);
    assert_string_equal(op(m, "d", "get", 1, S("k")), "1");
    shoal_manager_close(m);
    shoal_shm_close(shm);
    stop_broker(b);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_hits_across_processes, setup),
        cmocka_unit_test_setup(test_linearizable, setup),
        cmocka_unit_test_setup(test_every_change_invalidates, setup),
        cmocka_unit_test_setup(test_durable_commit_first, setup),
        cmocka_unit_test_setup(test_read_between_batched_writes, setup),
        cmocka_unit_test_setup(test_dead_broker, setup),
        cmocka_unit_test_setup(test_corrupt_view, setup),
        cmocka_unit_test_setup(test_view_of_a_starting_broker, setup),
        cmocka_unit_test_setup(test_current_reply_not_rewritten, setup),
        cmocka_unit_test(test_pure_ops_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
