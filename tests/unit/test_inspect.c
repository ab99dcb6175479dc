/*
 * test_inspect.c — the inspection API (shoal/inspect.h): every kind read without
 * knowing its type, and hostile segment files (header checksum recomputed) that must
 * give a named SHOAL_ECORRUPT instead of a crash, a heap overflow or an endless loop.
 */
#include "testutil.h"

#include "segfile.h"

/* A described struct, laid out as the schema compiler would lay it out. */
struct tick {
    int32_t id;
    uint32_t pad;
    double price;
    uint32_t sym_len;
    char sym[8];
    uint32_t pad2;
};

static const shoal_field tick_fields[] = {
    {"id", 1, SHOAL_FIELD_INT32, 0, 4, 0, 0, NULL},
    {"price", 2, SHOAL_FIELD_DOUBLE, 8, 8, 0, 0, NULL},
    {"sym", 3, SHOAL_FIELD_STRING, 16, 12, 0, 8, NULL},
};
static const shoal_type tick_type = {
    "test.Tick", 0x5eedf00dULL, sizeof(struct tick), 8, 0, 3, tick_fields};

static shoal_inspect *open_in(const char *name)
{
    shoal_inspect *in;
    T_OK(shoal_inspect_open(&in, name, NULL));
    return in;
}

static void expect_format(shoal_inspect *in, const void *elem, size_t len,
                          const char *want)
{
    char text[256];
    T_OK(shoal_inspect_format(in, elem, len, text, sizeof(text)));
    assert_string_equal(text, want);
}

/* ---- every kind -------------------------------------------------------------------- */

static void test_value_and_array(void **state)
{
    (void)state;
    struct tick t = {.id = 7, .price = 1.5, .sym_len = 4, .sym = "ACME"};
    shoal_value *v;
    T_OK(shoal_value_open(&v, "tick", SHOAL_CREATE, &tick_type, &t, NULL));
    shoal_inspect *in = open_in("tick");
    shoal_inspect_header h;
    T_OK(shoal_inspect_header_get(in, &h));
    assert_int_equal(h.kind, SHOAL_KIND_VALUE);
    assert_string_equal(h.type_name, "test.Tick");
    assert_int_equal(h.elem_size, sizeof(struct tick));
    assert_int_equal(h.creator_pid, getpid());
    assert_true(h.creator_alive);
    assert_int_equal(h.file_mode, 0600);
    assert_true(h.desc_size > 0);
    /* Users: this process through its value handle, not the inspection handle. */
    shoal_inspect_user users[4];
    assert_int_equal(shoal_inspect_users(in, users, 4), 1);
    assert_int_equal(users[0].pid, getpid());
    assert_true(users[0].alive);
    shoal_inspect_lock lk;
    T_OK(shoal_inspect_lock_get(in, &lk));
    assert_int_equal(lk.state, SHOAL_LOCKSTATE_FREE);
    assert_true(lk.recursive);
    const shoal_type *ty;
    T_OK(shoal_inspect_type(in, &ty));
    assert_int_equal(ty->nfields, 3);
    assert_string_equal(ty->fields[2].name, "sym");
    struct tick got;
    assert_int_equal(shoal_inspect_elements(in, 0, &got, 1), 1);
    assert_int_equal(got.id, 7);
    expect_format(in, &got, sizeof(got), "{id: 7, price: 1.5, sym: \"ACME\"}");
    expect_format(in, "ab", 2, "61 62"); /* not an element: bytes */
    char small[8];
    T_OK(shoal_inspect_format(in, &got, sizeof(got), small, sizeof(small)));
    assert_string_equal(small, "{id:...");
    assert_int_equal(shoal_inspect_elements(in, 1, &got, 1), SHOAL_ERANGE);
    shoal_queue_stats st;
    assert_int_equal(shoal_inspect_ring_stats(in, 0, &st), SHOAL_EKIND);
    shoal_inspect_sync sy;
    assert_int_equal(shoal_inspect_sync_get(in, &sy), SHOAL_EKIND);
    assert_non_null(strstr(shoal_errdetail(), "\"tick\" is a value"));
    T_OK(shoal_inspect_close(in));
    shoal_value_close(v);

    double d[5] = {1, 4, 9, 16.5, -2};
    shoal_array *a;
    shoal_attr nolock = {.lock = SHOAL_LOCK_NONE};
    T_OK(shoal_array_open(&a, "squares", SHOAL_CREATE, shoal_typecode('d'), 5, d,
                          &nolock));
    in = open_in("squares");
    T_OK(shoal_inspect_lock_get(in, &lk));
    assert_int_equal(lk.state, SHOAL_LOCKSTATE_NONE);
    double two[2];
    assert_int_equal(shoal_inspect_elements(in, 3, two, 2), 2);
    assert_true(two[0] == 16.5 && two[1] == -2);
    assert_int_equal(shoal_inspect_elements(in, 4, two, 2), 1);
    assert_int_equal(shoal_inspect_elements(in, 6, two, 2), SHOAL_ERANGE);
    expect_format(in, &two[0], sizeof(double), "-2");
    shoal_inspect_close(in);
    shoal_array_close(a);
}

static int hold_and_stop(void *arg)
{
    shoal_lock *lk;
    if (shoal_lock_open(&lk, arg, SHOAL_OPEN, NULL) ||
        shoal_lock_acquire(lk, SHOAL_SEC(5)))
        return 1;
    raise(SIGSTOP);
    return 0;
}

static void test_lock_states(void **state)
{
    (void)state;
    shoal_lock *lk;
    T_OK(shoal_lock_open(&lk, "guard", SHOAL_CREATE, NULL));
    pid_t pid = t_fork(hold_and_stop, "guard");
    int st;
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    shoal_inspect *in = open_in("guard");
    shoal_inspect_lock s;
    T_OK(shoal_inspect_lock_get(in, &s));
    assert_int_equal(s.state, SHOAL_LOCKSTATE_HELD);
    assert_int_equal(s.holder_tid, pid);
    assert_int_equal(s.recursive, 0);
    shoal_inspect_close(in);
    /* A copy of the file made while the lock was held names a thread that is gone
     * once the holder dies (a segment saved and restored). */
    char from[512], to[512];
    assert_int_equal(t_system("cp '%s' '%s'", sf_path(from, sizeof(from), "guard"),
                              sf_path(to, sizeof(to), "guard-copy")),
                     0);
    t_kill(pid);
    in = open_in("guard");
    T_OK(shoal_inspect_lock_get(in, &s));
    assert_int_equal(s.state, SHOAL_LOCKSTATE_OWNER_DIED);
    shoal_inspect_close(in);
    in = open_in("guard-copy");
    T_OK(shoal_inspect_lock_get(in, &s));
    assert_int_equal(s.state, SHOAL_LOCKSTATE_HELD_DEAD);
    assert_int_equal(s.holder_tid, pid);
    /* Copied: our registrations and the dead holder's (a fork child is registered
     * from its first instant, then again by its own open). */
    shoal_inspect_user users[8];
    int nusers = shoal_inspect_users(in, users, 8), nalive = 0;
    assert_in_range(nusers, 2, 4);
    for (int i = 0; i < nusers; i++)
        nalive += users[i].alive != 0;
    assert_true(nalive >= 1 && nalive < nusers);
    shoal_inspect_close(in);
    shoal_lock_close(lk);
}

static void test_sync_kinds(void **state)
{
    (void)state;
    shoal_sem *sem;
    shoal_event *ev;
    shoal_barrier *b;
    shoal_cond *c;
    T_OK(shoal_bsem_open(&sem, "slots", SHOAL_CREATE, 3, NULL));
    T_OK(shoal_sem_acquire(sem, SHOAL_NOWAIT));
    T_OK(shoal_event_open(&ev, "ready", SHOAL_CREATE, NULL));
    T_OK(shoal_event_set(ev));
    T_OK(shoal_barrier_open(&b, "gate", SHOAL_CREATE, 3, NULL));
    T_OK(shoal_cond_open(&c, "cv", SHOAL_CREATE, NULL));
    shoal_inspect_sync s;
    shoal_inspect *in = open_in("slots");
    T_OK(shoal_inspect_sync_get(in, &s));
    assert_int_equal(s.value, 2);
    shoal_inspect_lock lk;
    assert_int_equal(shoal_inspect_lock_get(in, &lk), SHOAL_EKIND);
    const shoal_type *t;
    assert_int_equal(shoal_inspect_type(in, &t), SHOAL_EKIND);
    shoal_inspect_close(in);
    in = open_in("ready");
    T_OK(shoal_inspect_sync_get(in, &s));
    assert_int_equal(s.set, 1);
    shoal_inspect_close(in);
    in = open_in("gate");
    T_OK(shoal_inspect_sync_get(in, &s));
    assert_int_equal(s.parties, 3);
    assert_int_equal(s.waiting, 0);
    shoal_inspect_close(in);
    in = open_in("cv");
    T_OK(shoal_inspect_sync_get(in, &s));
    assert_int_equal(s.waiters, 0);
    shoal_inspect_close(in);
    /* An uninitialised primitive (its magic zeroed) is damaged, not a value of 0. */
    uint32_t zero[4] = {0};
    sf_write("cv", SHOAL_HEADER_SIZE, zero, sizeof(zero));
    in = open_in("cv");
    assert_int_equal(shoal_inspect_sync_get(in, &s), SHOAL_ECORRUPT);
    assert_non_null(strstr(shoal_errdetail(), "condition \"cv\": not initialised"));
    shoal_inspect_close(in);
    shoal_sem_close(sem);
    shoal_event_close(ev);
    shoal_barrier_close(b);
    shoal_cond_close(c);
}

struct seen {
    int n;
    char text[8][64];
};

static void collect(void *arg, const void *msg, size_t len)
{
    struct seen *s = arg;
    if (s->n < 8)
        snprintf(s->text[s->n], sizeof(s->text[0]), "%.*s", (int)len, (const char *)msg);
    s->n++;
}

static void test_queue_and_pipe(void **state)
{
    (void)state;
    shoal_queue *q;
    shoal_queue_config cfg = {.max_msg = 40, .capacity = 4};
    T_OK(shoal_queue_open(&q, "words", SHOAL_CREATE, &cfg, NULL));
    T_OK(shoal_queue_put(q, "one", 3, SHOAL_NOWAIT));
    T_OK(shoal_queue_put(q, "two", 3, SHOAL_NOWAIT));
    shoal_inspect *in = open_in("words");
    assert_int_equal(shoal_inspect_rings(in), 1);
    shoal_queue_stats st;
    T_OK(shoal_inspect_ring_stats(in, 0, &st));
    assert_int_equal(st.depth, 2);
    assert_int_equal(st.capacity, 4);
    assert_int_equal(shoal_inspect_ring_stats(in, 1, &st), SHOAL_ERANGE);
    struct seen s = {0};
    assert_int_equal(shoal_inspect_messages(in, 0, 10, collect, &s), 2);
    assert_string_equal(s.text[0], "one");
    assert_string_equal(s.text[1], "two");
    memset(&s, 0, sizeof(s));
    assert_int_equal(shoal_inspect_messages(in, 0, 1, collect, &s), 1);
    expect_format(in, "one", 3, "6f 6e 65");
    shoal_inspect_end e;
    assert_int_equal(shoal_inspect_pipe_end(in, 0, &e), SHOAL_EKIND);
    shoal_inspect_close(in);
    shoal_queue_close(q);

    shoal_pipe *p0, *p1;
    shoal_queue_config pcfg = {.type = shoal_typecode('i'), .capacity = 8, .spsc = 1};
    T_OK(shoal_pipe_pair(&p0, &p1, "duplex", &pcfg, NULL));
    int32_t x = 42;
    T_OK(shoal_pipe_send(p1, &x, sizeof(x), SHOAL_NOWAIT));
    T_OK(shoal_pipe_close(p0));
    in = open_in("duplex");
    assert_int_equal(shoal_inspect_rings(in), 2);
    T_OK(shoal_inspect_ring_stats(in, 0, &st));
    assert_int_equal(st.depth, 0);
    T_OK(shoal_inspect_ring_stats(in, 1, &st));
    assert_int_equal(st.depth, 1);
    assert_true(st.spsc);
    T_OK(shoal_inspect_pipe_end(in, 0, &e));
    assert_true(e.opened && e.closed && !e.alive && e.pid == 0);
    T_OK(shoal_inspect_pipe_end(in, 1, &e));
    assert_true(e.opened && !e.closed && e.alive);
    assert_int_equal(shoal_inspect_pipe_end(in, 2, &e), SHOAL_ERANGE);
    memset(&s, 0, sizeof(s));
    assert_int_equal(shoal_inspect_messages(in, 1, 8, collect, &s), 1);
    expect_format(in, &x, sizeof(x), "42");
    shoal_inspect_close(in);
    shoal_pipe_close(p1);
}

static void test_shm_and_errors(void **state)
{
    (void)state;
    shoal_shm *shm;
    T_OK(shoal_shm_open(&shm, "raw", SHOAL_CREATE, 100, NULL));
    memcpy(shoal_shm_data(shm), "\x01\x02\x03", 3);
    shoal_inspect *in = open_in("raw");
    unsigned char buf[8];
    assert_int_equal(shoal_inspect_bytes(in, 0, buf, 3), 3);
    assert_int_equal(buf[2], 3);
    assert_int_equal(shoal_inspect_bytes(in, 98, buf, 8), 2);
    assert_int_equal(shoal_inspect_bytes(in, 101, buf, 8), SHOAL_ERANGE);
    expect_format(in, buf, 0, "");
    shoal_inspect_close(in);
    shoal_shm_close(shm);
    assert_int_equal(shoal_inspect_open(&in, "no-such-thing", NULL), SHOAL_ENOENT);
    assert_int_equal(shoal_inspect_open(&in, "bad/name", NULL), SHOAL_ENAME);
    assert_int_equal(shoal_inspect_open(NULL, "raw", NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_inspect_close(NULL), SHOAL_EINVAL);
}

/* ---- hostile files ----------------------------------------------------------------- */

/* Defect 1: a damaged layout descriptor (it follows the checksum, so nothing notices)
 * made inspect print through it and crash; elem_size 0 overflowed a heap buffer. */
static void test_damaged_descriptor(void **state)
{
    (void)state;
    struct tick t = {.id = 1};
    shoal_value *v;
    T_OK(shoal_value_open(&v, "dtick", SHOAL_CREATE, &tick_type, &t, NULL));
    shoal_value_close(v);
    sf_page p;
    sf_read_page("dtick", &p);
    /* 'S' 'L' version, tag 0, name length + name, hash: then the struct's size. */
    size_t at = 3 + 1 + 1 + strlen("test.Tick") + 8;
    uint32_t huge = 1u << 20, far = (1u << 20) - 8;
    memcpy(p.h.desc + at, &huge, 4);
    /* first field: name length + "id", number, kind: then its offset */
    memcpy(p.h.desc + at + 4 + 4 + 2 + 1 + 2 + 4 + 1, &far, 4);
    sf_write_page("dtick", &p);
    shoal_inspect *in = open_in("dtick");
    const shoal_type *ty;
    assert_int_equal(shoal_inspect_type(in, &ty), SHOAL_ECORRUPT);
    assert_non_null(strstr(shoal_errdetail(), "value \"dtick\": layout descriptor"));
    struct tick got = t;
    assert_int_equal(shoal_inspect_elements(in, 0, &got, 1), SHOAL_ECORRUPT);
    char text[64];
    T_OK(shoal_inspect_format(in, &got, sizeof(got), text, sizeof(text)));
    assert_non_null(strstr(text, "01 00 00 00")); /* shown as bytes, never decoded */
    shoal_inspect_close(in);
    /* A descriptor that does not decode at all. */
    memset(p.h.desc + 3, 0xff, 16);
    sf_write_page("dtick", &p);
    in = open_in("dtick");
    assert_int_equal(shoal_inspect_type(in, &ty), SHOAL_ECORRUPT);
    shoal_inspect_close(in);
    /* A header (checksum valid) with element size 0. */
    sf_read_page("dtick", &p);
    p.h.elem_size = 0;
    sf_write_page("dtick", &p);
    in = open_in("dtick");
    assert_int_equal(shoal_inspect_type(in, &ty), SHOAL_ECORRUPT);
    assert_non_null(strstr(shoal_errdetail(), "element size 0"));
    assert_int_equal(shoal_inspect_elements(in, 0, &got, 1), SHOAL_ECORRUPT);
    shoal_inspect_close(in);
    T_OK(shoal_unlink("dtick", NULL));
}

/* A descriptor whose types refer to each other so that the expanded tree is
 * exponentially large: refused, where printing through it would never end. */
static void test_descriptor_bomb(void **state)
{
    (void)state;
    enum { LEVELS = 21 };
    static shoal_field fields[LEVELS][2];
    static shoal_type types[LEVELS];
    static char names[LEVELS][8];
    for (int i = 0; i < LEVELS; i++) {
        snprintf(names[i], sizeof(names[i]), "t%d", i);
        types[i] = (shoal_type){names[i], (uint64_t)i + 1, 8, 8, 0, 2, fields[i]};
        for (int f = 0; f < 2; f++)
            fields[i][f] = (shoal_field){f ? "b" : "a",
                                         (uint32_t)f + 1,
                                         i ? SHOAL_FIELD_MESSAGE : SHOAL_FIELD_INT64,
                                         0,
                                         8,
                                         0,
                                         0,
                                         i ? &types[i - 1] : NULL};
    }
    /* 2^22 fields expanded, from a descriptor of about 1 KiB. */
    shoal_value *v;
    T_OK(shoal_value_open(&v, "bomb", SHOAL_CREATE, &types[20], NULL, NULL));
    shoal_inspect *in = open_in("bomb");
    const shoal_type *ty;
    assert_int_equal(shoal_inspect_type(in, &ty), SHOAL_ECORRUPT);
    shoal_inspect_close(in);
    shoal_value_close(v);
    /* A small one of the same shape decodes and prints. */
    T_OK(shoal_value_open(&v, "small-bomb", SHOAL_CREATE, &types[2], NULL, NULL));
    in = open_in("small-bomb");
    T_OK(shoal_inspect_type(in, &ty));
    uint64_t zero = 0;
    expect_format(in, &zero, 8,
                  "{a: {a: {a: 0, b: 0}, b: {a: 0, b: 0}}, b: {a: {a: 0, "
                  "b: 0}, b: {a: 0, b: 0}}}");
    shoal_inspect_close(in);
    shoal_value_close(v);
}

/* Defect 3: a header page only (payload_size 0, checksum valid): inspect read past
 * the mapping for locks, semaphores, barriers, events, values and arrays. */
static void test_empty_payload(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('q'), .capacity = 4};
    T_OK(sf_make_each_kind(&cfg));
    for (size_t i = 0; i < SF_EACH_KIND; i++) {
        const char *name = sf_each_kind[i];
        sf_make_empty(name);
        shoal_inspect *in = open_in(name);
        shoal_inspect_lock l;
        shoal_inspect_sync s;
        shoal_queue_stats st;
        int64_t buf[4];
        int rc = shoal_inspect_lock_get(in, &l);
        assert_true(rc == SHOAL_EKIND || rc == SHOAL_ECORRUPT);
        rc = shoal_inspect_sync_get(in, &s);
        assert_true(rc == SHOAL_EKIND || rc == SHOAL_ECORRUPT);
        rc = shoal_inspect_ring_stats(in, 0, &st);
        assert_true(rc == SHOAL_EKIND || rc == SHOAL_ECORRUPT);
        rc = shoal_inspect_elements(in, 0, buf, 1);
        assert_true(rc == SHOAL_EKIND || rc == SHOAL_ECORRUPT);
        /* Each object fails with a named error in at least one of them. */
        assert_int_equal(shoal_inspect_lock_get(in, &l) == SHOAL_ECORRUPT ||
                             shoal_inspect_sync_get(in, &s) == SHOAL_ECORRUPT ||
                             shoal_inspect_ring_stats(in, 0, &st) == SHOAL_ECORRUPT ||
                             shoal_inspect_elements(in, 0, buf, 1) == SHOAL_ECORRUPT,
                         1);
        assert_non_null(strstr(shoal_errdetail(), name));
        shoal_inspect_close(in);
        T_OK(shoal_unlink(name, NULL));
    }
}

/* The payload offset of the ring's tail word, found as the 8-byte word that the
 * first put moves from 0 to 1 (the ring's layout is private to the library). */
static long find_tail(const char *name, shoal_queue *q, const void *msg, size_t len)
{
    unsigned char before[256];
    sf_read(name, SHOAL_HEADER_SIZE, before, sizeof(before));
    T_OK(shoal_queue_put(q, msg, len, SHOAL_NOWAIT));
    long at = sf_find_change(name, before, sizeof(before), 8, 0, 1);
    assert_true(at >= 0);
    return at;
}

/* Defect 5: a garbage tail made inspect loop ~2^63 times or list messages again. */
static void test_garbage_tail(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        const char *name = spsc ? "g-spsc" : "g-mpmc";
        shoal_queue *q;
        shoal_queue_config cfg = {
            .type = shoal_typecode('q'), .capacity = 8, .spsc = spsc};
        T_OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
        int64_t one = 1;
        long tail = find_tail(name, q, &one, sizeof(one));
        uint64_t garbage = (1ull << 62) + 5;
        sf_write(name, SHOAL_HEADER_SIZE + (size_t)tail, &garbage, 8);
        shoal_inspect *in = open_in(name);
        shoal_queue_stats st;
        assert_int_equal(shoal_inspect_ring_stats(in, 0, &st), SHOAL_ECORRUPT);
        assert_non_null(strstr(shoal_errdetail(), "slots"));
        struct seen s = {0};
        assert_int_equal(shoal_inspect_messages(in, 0, SIZE_MAX, collect, &s),
                         SHOAL_ECORRUPT);
        assert_int_equal(s.n, 0);
        shoal_inspect_close(in);
        /* A tail one lap ahead: at most one lap is listed, never a message twice. */
        uint64_t lap = 8;
        sf_write(name, SHOAL_HEADER_SIZE + (size_t)tail, &lap, 8);
        in = open_in(name);
        int n = shoal_inspect_messages(in, 0, SIZE_MAX, collect, &s);
        assert_true(n >= 1 && n <= 8);
        shoal_inspect_close(in);
        shoal_queue_close(q);
    }
}

/* Defect 2 (inspect side): a variable-size slot whose length says 65,000 bytes in a
 * queue whose max_msg is 40: inspect copied that much (SIGBUS past the mapping). */
static void test_slot_length_over_max(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        const char *name = spsc ? "l-spsc" : "l-mpmc";
        shoal_queue *q;
        shoal_queue_config cfg = {.max_msg = 40, .capacity = 2, .spsc = spsc};
        T_OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
        unsigned char before[4096]; /* the ring header and the first slots */
        sf_read(name, SHOAL_HEADER_SIZE, before, sizeof(before));
        T_OK(shoal_queue_put(q, "abc", 3, SHOAL_NOWAIT));
        long len_at = sf_find_len(name, before, sizeof(before), 3, "abc");
        assert_true(len_at >= 0);
        uint32_t bogus = 65000;
        sf_write(name, SHOAL_HEADER_SIZE + (size_t)len_at, &bogus, 4);
        shoal_inspect *in = open_in(name);
        struct seen s = {0};
        int n = shoal_inspect_messages(in, 0, 8, collect, &s);
        assert_int_equal(n, 0); /* the damaged message is left out */
        shoal_inspect_close(in);
        shoal_queue_close(q);
    }
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_and_array),
        cmocka_unit_test(test_lock_states),
        cmocka_unit_test(test_sync_kinds),
        cmocka_unit_test(test_queue_and_pipe),
        cmocka_unit_test(test_shm_and_errors),
        cmocka_unit_test(test_damaged_descriptor),
        cmocka_unit_test(test_descriptor_bomb),
        cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_garbage_tail),
        cmocka_unit_test(test_slot_length_over_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
