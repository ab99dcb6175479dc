/*
 * test_cli_damaged.c — `shoal inspect` and `shoal ls` on segment files damaged as a
 * hostile writer would damage them (header checksum recomputed): each gives a named
 * error and an exit code, never a signal or an endless loop, and the undamaged parts
 * are still shown.
 */
#include "clirun.h"
#include "segfile.h"

/* Runs inspect on name; fails the test if it did not exit normally with `want`. */
static void inspect_exits(const char *name, int want)
{
    char args[256];
    snprintf(args, sizeof(args), "inspect %s", name);
    int rc = run_cli(args);
    if (rc != want)
        fail_msg("shoal inspect %s: exit %d, expected %d:\n%s", name, rc, want, out);
}

/* Defect 3: a header page only, for every kind with a payload. */
static void test_empty_payload_every_kind(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.max_msg = 32, .capacity = 4};
    T_OK(sf_make_each_kind(&cfg));
    for (size_t i = 0; i < SF_EACH_KIND; i++) {
        sf_make_empty(sf_each_kind[i]);
        inspect_exits(sf_each_kind[i], 1);
        ASSERT_OUT_HAS("(corrupt)");
        ASSERT_OUT_HAS("kind  "); /* the header is still shown */
    }
    assert_int_equal(run_cli("ls"), 0);
    ASSERT_OUT_HAS("e-array");
    for (size_t i = 0; i < SF_EACH_KIND; i++)
        T_OK(shoal_unlink(sf_each_kind[i], NULL));
}

/* Defect 1: elem_size 0 (checksum valid) and a damaged layout descriptor. */
static void test_bad_element_type(void **state)
{
    (void)state;
    static const shoal_field fields[] = {
        {"x", 1, SHOAL_FIELD_INT64, 0, 8, 0, 0, NULL},
        {"y", 2, SHOAL_FIELD_INT64, 8, 8, 0, 0, NULL},
    };
    static const shoal_type point = {"test.Point", 0x1234, 16, 8, 0, 2, fields};
    int64_t xy[2] = {3, 4};
    shoal_value *v;
    T_OK(shoal_value_open(&v, "point", SHOAL_CREATE, &point, xy, NULL));
    shoal_value_close(v);
    inspect_exits("point", 0);
    ASSERT_OUT_HAS("value         {x: 3, y: 4}\n");
    sf_page p;
    sf_read_page("point", &p);
    /* The descriptor's struct size (after 'S' 'L' version, tag, name, hash). */
    uint32_t big = 1u << 16;
    memcpy(p.h.desc + 3 + 1 + 1 + strlen("test.Point") + 8, &big, 4);
    sf_write_page("point", &p);
    inspect_exits("point", 1);
    ASSERT_OUT_HAS("layout descriptor describes test.Point (65536 bytes");
    sf_read_page("point", &p);
    p.h.elem_size = 0;
    sf_write_page("point", &p);
    inspect_exits("point", 1);
    ASSERT_OUT_HAS("element size 0");
    T_OK(shoal_unlink("point", NULL));
}

/* Defects 5 and 2: a garbage ring tail; a slot length far over max_msg. */
static void test_bad_ring(void **state)
{
    (void)state;
    shoal_queue *q;
    shoal_queue_config cfg = {.max_msg = 40, .capacity = 4, .spsc = 1};
    T_OK(shoal_queue_open(&q, "ring", SHOAL_CREATE, &cfg, NULL));
    unsigned char before[4096]; /* the ring header and the first slots */
    sf_read("ring", SHOAL_HEADER_SIZE, before, sizeof(before));
    T_OK(shoal_queue_put(q, "abc", 3, SHOAL_NOWAIT));
    long tail = sf_find_change("ring", before, sizeof(before), 8, 0, 1);
    long len = sf_find_change("ring", before, sizeof(before), 4, 0, 3);
    assert_true(tail >= 0 && len >= 0);
    uint32_t bogus = 65000;
    sf_write("ring", SHOAL_HEADER_SIZE + (size_t)len, &bogus, 4);
    inspect_exits("ring", 0); /* the damaged message is left out */
    ASSERT_OUT_HAS("depth 1 of 4");
    uint64_t garbage = UINT64_MAX >> 2;
    sf_write("ring", SHOAL_HEADER_SIZE + (size_t)tail, &garbage, 8);
    inspect_exits("ring", 1);
    ASSERT_OUT_HAS("messages are queued in 4 slots (corrupt)");
    shoal_queue_close(q);
    T_OK(shoal_unlink("ring", NULL));
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_payload_every_kind),
        cmocka_unit_test(test_bad_element_type),
        cmocka_unit_test(test_bad_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
