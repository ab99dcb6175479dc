/* test_corrupt.c — segments damaged the way a buggy or hostile writer would (fields
 * changed and the header checksum recomputed): every open or operation gets its named
 * error quickly, and nothing reads outside the mapping. */
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>

#include "internal.h"
#include "queue_internal.h"
#include "testutil.h"

/* The file of object `name` in the test root's default domain. */
static const char *obj_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/default/%s", t_root, name);
    return path;
}

/* Maps the whole file of `name` (a second, independent mapping). */
static unsigned char *map_obj(const char *name, size_t *size)
{
    int fd = open(obj_path(name), O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(p != MAP_FAILED);
    *size = (size_t)st.st_size;
    return p;
}

static void reseal(struct shoal__header *h)
{
    h->checksum =
        shoal_fnv1a(SHOAL_FNV_OFFSET, h, offsetof(struct shoal__header, checksum));
}

/* ---- defect: impossible element types and descriptors -------------------------------
 */

static void test_value_elem_size_zero(void **state)
{
    (void)state;
    shoal_value *v;
    T_OK(shoal_value_open(&v, "v-zero", SHOAL_CREATE, shoal_typecode('i'), NULL, NULL));
    T_OK(shoal_value_close(v));
    size_t n;
    struct shoal__header *h = (struct shoal__header *)map_obj("v-zero", &n);
    h->elem_size = 0;
    reseal(h);
    assert_int_equal(shoal_value_open(&v, "v-zero", SHOAL_OPEN, NULL, NULL, NULL),
                     SHOAL_ECORRUPT);
    assert_non_null(strstr(shoal_errdetail(), "v-zero"));
    /* A struct type name with size 0: the same. */
    snprintf(h->type_name, sizeof(h->type_name), "%s", "t.Broken");
    reseal(h);
    assert_int_equal(shoal_value_open(&v, "v-zero", SHOAL_OPEN, NULL, NULL, NULL),
                     SHOAL_ECORRUPT);
    munmap(h, n);
    T_OK(shoal_unlink("v-zero", NULL));
}

static const shoal_field point_fields[] = {
    {.name = "x", .number = 1, .kind = SHOAL_FIELD_INT32, .offset = 0, .size = 4},
    {.name = "y", .number = 2, .kind = SHOAL_FIELD_INT32, .offset = 4, .size = 4},
};
static const shoal_type point = {.name = "t.Point",
                                 .layout_hash = 0x1234567890abcdefULL,
                                 .size = 8,
                                 .align = 4,
                                 .nfields = 2,
                                 .fields = point_fields};

static void test_descriptor_checked(void **state)
{
    (void)state;
    shoal_value *v;
    T_OK(shoal_value_open(&v, "v-desc", SHOAL_CREATE, &point, NULL, NULL));
    T_OK(shoal_value_close(v));
    size_t n;
    struct shoal__header *h = (struct shoal__header *)map_obj("v-desc", &n);
    assert_true(h->desc_size > 0);
    T_OK(shoal_value_open(&v, "v-desc", SHOAL_OPEN, NULL, NULL, NULL));
    T_OK(shoal_value_close(v));
    /* The root type's size in the descriptor: "SL", version, tag, name length, name,
     * hash (8), then the size (4). */
    size_t size_at = 2 + 1 + 1 + 1 + strlen(point.name) + 8;
    uint32_t huge = 1u << 20, was;
    memcpy(&was, h->desc + size_at, 4);
    assert_int_equal(was, point.size);
    memcpy(h->desc + size_at, &huge, 4);
    assert_int_equal(shoal_value_open(&v, "v-desc", SHOAL_OPEN, NULL, NULL, NULL),
                     SHOAL_ECORRUPT);
    assert_non_null(strstr(shoal_errdetail(), "descriptor"));
    assert_int_equal(shoal_value_open(&v, "v-desc", SHOAL_OPEN, &point, NULL, NULL),
                     SHOAL_ECORRUPT);
    memcpy(h->desc + size_at, &was, 4);
    h->desc[0] = 'X'; /* does not decode */
    assert_int_equal(shoal_value_open(&v, "v-desc", SHOAL_OPEN, NULL, NULL, NULL),
                     SHOAL_ECORRUPT);
    h->desc[0] = 'S';
    h->desc_size = SHOAL_DESC_MAX + 1; /* runs past the header page */
    assert_int_equal(shoal_value_open(&v, "v-desc", SHOAL_OPEN, NULL, NULL, NULL),
                     SHOAL_ECORRUPT);
    shoal_object_info info;
    assert_int_equal(shoal_stat("v-desc", NULL, &info), SHOAL_ECORRUPT);
    munmap(h, n);
    T_OK(shoal_unlink("v-desc", NULL));
}

/* ---- defect: count x element size overflows ---------------------------------------- */

static void test_array_count_overflow(void **state)
{
    (void)state;
    shoal_array *a;
    T_OK(shoal_array_open(&a, "arr-ovf", SHOAL_CREATE, shoal_typecode('i'), 4, NULL,
                          NULL));
    T_OK(shoal_array_close(a));
    size_t n;
    struct shoal__header *h = (struct shoal__header *)map_obj("arr-ovf", &n);
    h->count = (1ull << 62) + 1; /* x 4 bytes wraps to 4 */
    reseal(h);
    assert_int_equal(shoal_array_open(&a, "arr-ovf", SHOAL_OPEN, NULL, 0, NULL, NULL),
                     SHOAL_ECORRUPT);
    assert_non_null(strstr(shoal_errdetail(), "arr-ovf"));
    h->count = 0;
    reseal(h);
    assert_int_equal(shoal_array_open(&a, "arr-ovf", SHOAL_OPEN, NULL, 0, NULL, NULL),
                     SHOAL_ECORRUPT);
    munmap(h, n);
    T_OK(shoal_unlink("arr-ovf", NULL));
}

/* ---- defect: a variable-size queue's per-slot length is not trusted ------------------
 */

static void count_msg(void *arg, const void *msg, size_t len)
{
    (void)msg;
    assert_true(len <= 40);
    (*(int *)arg)++;
}

static void test_queue_slot_length_bounded(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        shoal_queue_config cfg = {.capacity = 4, .max_msg = 40, .spsc = spsc};
        shoal_queue *q;
        T_OK(shoal_queue_open(&q, NULL, SHOAL_CREATE, &cfg, NULL));
        void *slot;
        size_t cap;
        T_OK(shoal_queue_loan(q, &slot, &cap, 0));
        memcpy(slot, "hello", 5);
        T_OK(shoal_queue_commit(q, slot, 5));
        /* Both layouts keep the length 8 bytes before the message bytes. */
        uint32_t bogus = 65000;
        memcpy((unsigned char *)slot - 8, &bogus, 4);
        static unsigned char buf[65536];
        size_t len = 0;
        assert_int_equal(shoal_queue_try_get(q, buf, sizeof(buf), &len), SHOAL_ECORRUPT);
        assert_non_null(strstr(shoal_errdetail(), shoal_queue_name(q)));
        assert_int_equal(shoal_queue_get(q, buf, sizeof(buf), &len, SHOAL_MS(10)),
                         SHOAL_ECORRUPT);
        const void *msg;
        assert_int_equal(shoal_queue_peek(q, &msg, &len, 0), SHOAL_ECORRUPT);
        int shown = 0;
        T_OK(shoal__queue_inspect(q, 10, count_msg, &shown));
        assert_int_equal(shown, 0);
        /* Repaired, the message is still there. */
        uint32_t five = 5;
        memcpy((unsigned char *)slot - 8, &five, 4);
        T_OK(shoal_queue_try_get(q, buf, sizeof(buf), &len));
        assert_int_equal(len, 5);
        T_OK(shoal_queue_close(q));
    }
}

/* ---- defects: garbage indexes and sequence words ----------------------------------- */

/* Ring header offsets (queue.c): tail at 64, head at 128. */
#define RING_TAIL 64
#define RING_HEAD 128

static void test_inspect_garbage_tail(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        shoal_queue_config cfg = {.capacity = 4, .max_msg = 40, .spsc = spsc};
        shoal_queue *q;
        T_OK(shoal_queue_open(&q, "q-tail", SHOAL_CREATE, &cfg, NULL));
        T_OK(shoal_queue_put(q, "a", 1, 0));
        T_OK(shoal_queue_put(q, "b", 1, 0));
        size_t n;
        unsigned char *f = map_obj("q-tail", &n);
        uint64_t garbage = (1ull << 62) + 3;
        memcpy(f + SHOAL_HEADER_SIZE + RING_TAIL, &garbage, 8);
        int shown = 0;
        int64_t t0 = shoal__now_ns();
        T_OK(shoal__queue_inspect(q, 1000, count_msg, &shown));
        assert_true(shoal__now_ns() - t0 < SHOAL_SEC(1));
        assert_true(shown <= 4);
        munmap(f, n);
        T_OK(shoal_queue_close(q));
        T_OK(shoal_unlink("q-tail", NULL));
    }
}

static void test_try_forms_never_wait(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.capacity = 8, .max_msg = 40};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, NULL, SHOAL_CREATE, &cfg, NULL));
    void *slot;
    size_t cap;
    T_OK(shoal_queue_loan(q, &slot, &cap, 0)); /* slot 0 */
    T_OK(shoal_queue_commit(q, slot, 1));
    /* MPMC slots: 64 bytes apart (16-byte slot header + 40, rounded), the state word
     * 16 bytes before the message. Make every sequence word far ahead. */
    unsigned char *slot0 = (unsigned char *)slot - 16;
    for (uint64_t i = 0; i < 8; i++) {
        uint64_t w = (uint32_t)(i + 0x40000000u);
        memcpy(slot0 + i * 64, &w, 8);
    }
    char buf[64];
    size_t len;
    int64_t t0 = shoal__now_ns();
    int rc = shoal_queue_try_get(q, buf, sizeof(buf), &len);
    assert_true(rc < 0);
    rc = shoal_queue_try_put(q, "x", 1);
    assert_true(rc < 0);
    assert_true(shoal__now_ns() - t0 < SHOAL_MS(500));
    T_OK(shoal_queue_close(q));
}

/* ---- defect: a root that is a regular file ----------------------------------------- */

static void test_root_is_a_file(void **state)
{
    (void)state;
    char file[512];
    snprintf(file, sizeof(file), "%s/not-a-dir", t_root);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    shoal_attr attr = {.root = file};
    shoal_value *v;
    assert_int_equal(
        shoal_value_open(&v, "x", SHOAL_OPEN, shoal_typecode('i'), NULL, &attr),
        SHOAL_ENOENT);
    assert_non_null(strstr(shoal_errdetail(), "not a directory"));
    assert_int_equal(
        shoal_value_open(&v, "x", SHOAL_OPEN_OR_CREATE, shoal_typecode('i'), NULL, &attr),
        SHOAL_ENOENT);
    assert_non_null(strstr(shoal_errdetail(), "not a directory"));
    assert_int_equal(shoal_gc(&attr), SHOAL_ENOENT);
    assert_non_null(strstr(shoal_errdetail(), "not a directory"));
    unlink(file);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_elem_size_zero),
        cmocka_unit_test(test_descriptor_checked),
        cmocka_unit_test(test_array_count_overflow),
        cmocka_unit_test(test_queue_slot_length_bounded),
        cmocka_unit_test(test_inspect_garbage_tail),
        cmocka_unit_test(test_try_forms_never_wait),
        cmocka_unit_test(test_root_is_a_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
