/* test_value.c — Value and Array: typecodes, locks, atomics, snapshots, bounds, and
 * writers that die half way through. */
#include <pthread.h>

#include "internal.h"
#include "testutil.h"

static void test_typecodes(void **state)
{
    (void)state;
    struct {
        char code;
        const char *name;
        uint32_t size;
    } want[] = {{'b', "int8", 1},   {'B', "uint8", 1},   {'h', "int16", 2},
                {'H', "uint16", 2}, {'i', "int32", 4},   {'I', "uint32", 4},
                {'l', "int64", 8},  {'L', "uint64", 8},  {'q', "int64", 8},
                {'Q', "uint64", 8}, {'f', "float32", 4}, {'d', "float64", 8},
                {'c', "char", 1}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const shoal_type *t = shoal_typecode(want[i].code);
        assert_non_null(t);
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->size, want[i].size);
        assert_int_equal(t->align, want[i].size);
        assert_true(t->layout_hash ==
                    shoal_fnv1a(SHOAL_FNV_OFFSET, want[i].name, strlen(want[i].name)));
    }
    assert_null(shoal_typecode('z'));
    /* 'l' and 'q' are one type: a Value made with one opens with the other. */
    shoal_value *a, *b;
    T_OK(shoal_value_open(&a, "lq", SHOAL_CREATE, shoal_typecode('l'), NULL, NULL));
    T_OK(shoal_value_open(&b, "lq", SHOAL_OPEN, shoal_typecode('q'), NULL, NULL));
    shoal_value_close(a);
    shoal_value_close(b);
}

static void test_read_write_and_layout(void **state)
{
    (void)state;
    shoal_value *v, *w;
    double pi = 3.1415, got;
    T_OK(shoal_value_open(&v, "pi", SHOAL_CREATE, shoal_typecode('d'), &pi, NULL));
    T_OK(shoal_value_read(v, &got));
    assert_true(got == 3.1415);
    got = 11.24;
    T_OK(shoal_value_write(v, &got));
    T_OK(shoal_value_snapshot(v, &pi));
    assert_true(pi == 11.24);
    /* Wrong type on open: a clear layout error naming both types. */
    assert_int_equal(
        shoal_value_open(&w, "pi", SHOAL_OPEN, shoal_typecode('i'), NULL, NULL),
        SHOAL_ELAYOUT);
    assert_non_null(strstr(shoal_errdetail(), "float64"));
    assert_non_null(strstr(shoal_errdetail(), "int32"));
    /* Opening without a type adopts the segment's. */
    T_OK(shoal_value_open(&w, "pi", SHOAL_OPEN, NULL, NULL, NULL));
    assert_int_equal(shoal_value_type(w)->typecode, 'd');
    shoal_value_close(w);
    /* Atomics need an integer. */
    assert_int_equal(shoal_value_add(v, 1, NULL), SHOAL_ETYPE);
    assert_int_equal(shoal_value_open(&w, "x", SHOAL_CREATE, NULL, NULL, NULL),
                     SHOAL_EINVAL);
    shoal_value_close(v);
}

static void test_atomics(void **state)
{
    (void)state;
    shoal_value *v;
    int8_t init = 120;
    T_OK(shoal_value_open(&v, "i8", SHOAL_CREATE, shoal_typecode('b'), &init, NULL));
    int64_t old;
    T_OK(shoal_value_add(v, 10, &old)); /* wraps at 8 bits */
    assert_int_equal(old, 120);
    T_OK(shoal_value_load(v, &old));
    assert_int_equal(old, -126);
    T_OK(shoal_value_exchange(v, -1, &old));
    assert_int_equal(old, -126);
    int64_t expect = 5;
    assert_int_equal(shoal_value_cas(v, &expect, 9), SHOAL_EAGAIN);
    assert_int_equal(expect, -1);
    T_OK(shoal_value_cas(v, &expect, 9));
    T_OK(shoal_value_load(v, &old));
    assert_int_equal(old, 9);
    shoal_value_close(v);

    uint32_t big = 0xfffffffe;
    T_OK(shoal_value_open(&v, "u32", SHOAL_CREATE, shoal_typecode('I'), &big, NULL));
    T_OK(shoal_value_add(v, 1, &old));
    assert_int_equal(old, 0xfffffffeLL); /* zero-extended */
    T_OK(shoal_value_store(v, 77));
    uint32_t raw;
    T_OK(shoal_value_read(v, &raw));
    assert_int_equal(raw, 77);
    shoal_value_close(v);
}

static void test_lock_modes(void **state)
{
    (void)state;
    shoal_value *v;
    shoal_attr none = {0};
    none.lock = SHOAL_LOCK_NONE;
    T_OK(shoal_value_open(&v, "nolock", SHOAL_CREATE, shoal_typecode('i'), NULL, &none));
    assert_null(shoal_value_get_lock(v));
    shoal_value_close(v);

    /* Default: a recursive lock, so get/set inside `with get_lock()` works. */
    T_OK(shoal_value_open(&v, "rlocked", SHOAL_CREATE, shoal_typecode('i'), NULL, NULL));
    shoal_lock *lk = shoal_value_get_lock(v);
    assert_non_null(lk);
    T_OK(shoal_lock_acquire(lk, SHOAL_SEC(1)));
    int32_t x = 0;
    T_OK(shoal_value_read(v, &x));
    x += 1;
    T_OK(shoal_value_write(v, &x));
    T_OK(shoal_lock_release(lk));
    assert_int_equal(shoal_lock_locked(lk), 0);
    shoal_value_close(v);

    /* A caller's named lock: every opener uses that same lock. */
    shoal_lock *mine;
    T_OK(shoal_lock_open(&mine, "my-lock", SHOAL_CREATE, NULL));
    shoal_attr caller = {0};
    caller.lock = SHOAL_LOCK_CALLER;
    caller.caller_lock = mine;
    T_OK(shoal_value_open(&v, "callerlocked", SHOAL_CREATE, shoal_typecode('i'), NULL,
                          &caller));
    shoal_value *v2;
    T_OK(shoal_value_open(&v2, "callerlocked", SHOAL_OPEN, shoal_typecode('i'), NULL,
                          NULL));
    T_OK(shoal_lock_acquire(mine, SHOAL_SEC(1)));
    /* v2's lock is the same lock, held by this thread. */
    assert_int_equal(shoal_lock_try(shoal_value_get_lock(v2)), SHOAL_EDEADLK);
    /* Reading while holding the plain caller lock must not release it. */
    T_OK(shoal_value_read(v2, &x));
    assert_int_equal(shoal_lock_locked(mine), 1);
    T_OK(shoal_lock_release(mine));
    shoal_value_close(v2);
    shoal_value_close(v);
    /* A lock that is not a named object is refused. */
    shoal_lock embedded;
    T_OK(shoal_lock_init(&embedded, 0));
    caller.caller_lock = &embedded;
    assert_int_equal(
        shoal_value_open(&v, "bad", SHOAL_CREATE, shoal_typecode('i'), NULL, &caller),
        SHOAL_EINVAL);
    shoal_lock_close(mine);
}

/* A struct whose fields must always agree: any torn read shows as a mismatch. */
typedef struct {
    uint64_t a[16];
} pattern;

static const shoal_type pattern_type = {
    "test.Pattern", 0x1234abcd, sizeof(pattern), 8, 0, 0, NULL};

static int pattern_writer(void *arg)
{
    (void)arg;
    shoal_value *v;
    if (shoal_value_open(&v, "pattern", SHOAL_OPEN, &pattern_type, NULL, NULL))
        return 1;
    pattern p;
    for (uint64_t i = 1; i <= 200000; i++) {
        for (int k = 0; k < 16; k++)
            p.a[k] = i;
        if (i % 2) {
            shoal_value_write(v, &p);
        } else { /* in place, under the lock */
            shoal_lock_acquire(shoal_value_get_lock(v), SHOAL_FOREVER);
            pattern *q = shoal_value_modify(v);
            for (int k = 0; k < 16; k++)
                q->a[k] = i;
            shoal_value_commit(v);
            shoal_lock_release(shoal_value_get_lock(v));
        }
    }
    shoal_value_close(v);
    return 0;
}

static void test_snapshot_never_torn(void **state)
{
    (void)state;
    shoal_value *v;
    pattern p = {{0}};
    T_OK(shoal_value_open(&v, "pattern", SHOAL_CREATE, &pattern_type, &p, NULL));
    pid_t w = t_fork(pattern_writer, NULL);
    uint64_t last = 0, reads = 0;
    int status = -1;
    while (waitpid(w, &status, WNOHANG) == 0) {
        T_OK(shoal_value_snapshot(v, &p));
        for (int k = 1; k < 16; k++)
            assert_true(p.a[k] == p.a[0]);
        assert_true(p.a[0] >= last); /* never goes back in time */
        last = p.a[0];
        reads++;
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    T_OK(shoal_value_snapshot(v, &p));
    assert_true(p.a[0] == 200000 && p.a[15] == 200000);
    assert_true(reads > 0);
    shoal_value_close(v);
}

static int die_mid_write(void *arg)
{
    shoal_value *v;
    if (shoal_value_open(&v, "midwrite", SHOAL_OPEN, &pattern_type, NULL, arg))
        return 1;
    pattern p;
    for (int k = 0; k < 16; k++)
        p.a[k] = 666;
    shoal_value_write(v, &p); /* stops at "value.write", half copied */
    return 0;
}

static void check_mid_write(int lock_mode)
{
    shoal_attr attr = {0};
    attr.lock = lock_mode;
    shoal_value *v;
    pattern p;
    for (int k = 0; k < 16; k++)
        p.a[k] = 42;
    T_OK(shoal_value_open(&v, "midwrite", SHOAL_CREATE, &pattern_type, &p, &attr));
    pid_t pid = t_fork_paused("value.write", die_mid_write, &attr);
    assert_true(pid > 0);
    t_kill(pid);
    /* Readers see the last complete value, never the half write. */
    T_OK(shoal_value_snapshot(v, &p));
    for (int k = 0; k < 16; k++)
        assert_true(p.a[k] == 42);
    /* Writers recover (the dead writer's lock and write slot are taken over). */
    for (int k = 0; k < 16; k++)
        p.a[k] = 43;
    T_OK(shoal_value_write(v, &p));
    T_OK(shoal_value_read(v, &p));
    for (int k = 0; k < 16; k++)
        assert_true(p.a[k] == 43);
    shoal_value_close(v);
    T_OK(shoal_unlink("midwrite", NULL));
}

static void test_writer_dies_mid_write(void **state)
{
    (void)state;
    check_mid_write(SHOAL_LOCK_RLOCK);
    check_mid_write(SHOAL_LOCK_NONE);
}

static void test_array(void **state)
{
    (void)state;
    shoal_array *a, *b;
    int32_t init[5] = {0, 1, 2, 3, 4};
    T_OK(shoal_array_open(&a, "arr", SHOAL_CREATE, shoal_typecode('i'), 5, init, NULL));
    assert_int_equal(shoal_array_len(a), 5);
    T_OK(shoal_array_open(&b, "arr", SHOAL_OPEN, shoal_typecode('i'), 0, NULL, NULL));
    assert_int_equal(shoal_array_len(b), 5);
    int32_t x;
    T_OK(shoal_array_get(b, 4, &x));
    assert_int_equal(x, 4);
    x = 100;
    T_OK(shoal_array_set(a, 0, &x));
    int32_t all[5];
    T_OK(shoal_array_read(b, 0, 5, all));
    assert_int_equal(all[0], 100);
    int64_t old;
    T_OK(shoal_array_add(b, 2, 5, &old));
    assert_int_equal(old, 2);
    /* Bounds. */
    assert_int_equal(shoal_array_get(a, 5, &x), SHOAL_ERANGE);
    assert_non_null(strstr(shoal_errdetail(), "outside"));
    assert_int_equal(shoal_array_read(a, 3, 3, all), SHOAL_ERANGE);
    assert_int_equal(shoal_array_write(a, SIZE_MAX, 2, all), SHOAL_ERANGE);
    assert_int_equal(shoal_array_add(a, 9, 1, NULL), SHOAL_ERANGE);
    /* Length and type are checked on open. */
    shoal_array *c;
    assert_int_equal(
        shoal_array_open(&c, "arr", SHOAL_OPEN, shoal_typecode('i'), 6, NULL, NULL),
        SHOAL_ELAYOUT);
    assert_int_equal(
        shoal_array_open(&c, "arr", SHOAL_OPEN, shoal_typecode('d'), 5, NULL, NULL),
        SHOAL_ELAYOUT);
    shoal_array *d;
    T_OK(shoal_array_open(&d, "arrd", SHOAL_CREATE, shoal_typecode('d'), 3, NULL, NULL));
    assert_int_equal(shoal_array_add(d, 0, 1, NULL), SHOAL_ETYPE);
    shoal_array_close(d);
    shoal_array_close(a);
    shoal_array_close(b);
}

struct holder {
    shoal_lock *lock;
    _Atomic int held, release;
};

static void *hold_lock(void *arg)
{
    struct holder *h = arg;
    if (shoal_lock_acquire(h->lock, SHOAL_SEC(10)))
        return NULL;
    atomic_store(&h->held, 1);
    while (!atomic_load(&h->release))
        usleep(1000);
    shoal_lock_release(h->lock);
    return NULL;
}

/* A read waits for a live holder of the value's lock no longer than it was told. */
static void test_read_timed_on_live_holder(void **state)
{
    (void)state;
    shoal_value *v;
    int32_t x = 7, got = -1;
    T_OK(shoal_value_open(&v, NULL, SHOAL_CREATE, shoal_typecode('i'), &x, NULL));
    struct holder h = {.lock = shoal_value_get_lock(v)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_lock, &h), 0);
    assert_true(t_wait_atleast(&h.held, 1, SHOAL_SEC(10)));
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_value_read_timed(v, &got, SHOAL_MS(100)), SHOAL_ETIMEDOUT);
    int64_t took = shoal__now_ns() - t0;
    assert_true(took >= SHOAL_MS(100) && took < SHOAL_SEC(5));
    assert_non_null(strstr(shoal_errdetail(), "held by live thread"));
    assert_int_equal(got, -1); /* untouched */
    assert_int_equal(shoal_value_read_timed(v, &got, SHOAL_NOWAIT), SHOAL_ETIMEDOUT);
    int32_t owner;
    shoal_lock_state(h.lock, NULL, &owner, NULL);
    assert_int_not_equal(owner, shoal__tid()); /* the read left no level behind */
    atomic_store(&h.release, 1);
    pthread_join(th, NULL);
    T_OK(shoal_value_read_timed(v, &got, SHOAL_MS(100)));
    assert_int_equal(got, 7);
    shoal_lock_state(h.lock, NULL, &owner, NULL);
    assert_int_equal(owner, 0);
    T_OK(shoal_value_close(v));
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typecodes),
        cmocka_unit_test(test_read_timed_on_live_holder),
        cmocka_unit_test(test_read_write_and_layout),
        cmocka_unit_test(test_atomics),
        cmocka_unit_test(test_lock_modes),
        cmocka_unit_test(test_snapshot_never_torn),
        cmocka_unit_test(test_writer_dies_mid_write),
        cmocka_unit_test(test_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
