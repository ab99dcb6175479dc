/*
 * test_evolution.c — opening an object made with one version of a message with a
 * changed version of it fails with a layout mismatch naming both (the same type name,
 * two layout hashes), instead of reading bytes laid out differently.
 */
#include "evo_v1.shoal.h"
#include "evo_v2.shoal.h"
#include "testutil.h"

static void expect_mismatch(int rc)
{
    char v1[64], v2[64];
    snprintf(v1, sizeof(v1), "evo.Order#%016llx",
             (unsigned long long)V1_Order_LAYOUT_HASH);
    snprintf(v2, sizeof(v2), "evo.Order#%016llx",
             (unsigned long long)V2_Order_LAYOUT_HASH);
    assert_int_equal(rc, SHOAL_ELAYOUT);
    const char *d = shoal_errdetail();
    if (!strstr(d, "layout mismatch") || !strstr(d, v1) || !strstr(d, v2))
        fail_msg("detail \"%s\" should name %s and %s", d, v1, v2);
}

static void test_versions_differ(void **state)
{
    (void)state;
    assert_string_equal(V1_Order_type.name, V2_Order_type.name);
    assert_true(V1_Order_LAYOUT_HASH != V2_Order_LAYOUT_HASH);
}

static void test_queue_of_other_version(void **state)
{
    (void)state;
    V1_Order_queue *q1;
    V2_Order_queue *q2 = (V2_Order_queue *)1;
    T_OK(V1_Order_queue_open(&q1, "orders", SHOAL_CREATE, NULL, NULL));
    expect_mismatch(V2_Order_queue_open(&q2, "orders", SHOAL_OPEN, NULL, NULL));
    assert_null(q2);
    /* the same version opens, of course */
    V1_Order_queue *again;
    T_OK(V1_Order_queue_open(&again, "orders", SHOAL_OPEN, NULL, NULL));
    V1_Order_queue_close(again);
    V1_Order_queue_close(q1);
}

static void test_value_array_pipe_of_other_version(void **state)
{
    (void)state;
    V1_Order o = V1_Order_INIT;
    V1_Order_value *v1;
    V2_Order_value *v2;
    T_OK(V1_Order_value_open(&v1, "order", SHOAL_CREATE, &o, NULL));
    expect_mismatch(V2_Order_value_open(&v2, "order", SHOAL_OPEN, NULL, NULL));
    V1_Order_value_close(v1);

    V1_Order_array *a1;
    V2_Order_array *a2;
    T_OK(V1_Order_array_open(&a1, "order-list", SHOAL_CREATE, 4, NULL, NULL));
    expect_mismatch(V2_Order_array_open(&a2, "order-list", SHOAL_OPEN, 0, NULL, NULL));
    V1_Order_array_close(a1);

    V1_Order_pipe *p1;
    V2_Order_pipe *p2;
    T_OK(V1_Order_pipe_open(&p1, "order-pipe", 0, SHOAL_CREATE, NULL, NULL));
    expect_mismatch(V2_Order_pipe_open(&p2, "order-pipe", 1, SHOAL_OPEN, NULL, NULL));
    V1_Order_pipe_close(p1);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions_differ),
        cmocka_unit_test(test_queue_of_other_version),
        cmocka_unit_test(test_value_array_pipe_of_other_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
