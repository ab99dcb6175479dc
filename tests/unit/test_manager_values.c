/* test_manager_values.c — the manager's values that a client may only pass on: a
 * schema-typed message (a Python proxy's reference is one) and an opted-in pickle,
 * made, read, compared and copied (the bindings' manager tests send them through a
 * broker and back). */
#include <shoal/manager.h>

#include "testutil.h"

static void test_message_and_pickle(void **state)
{
    (void)state;
    static const unsigned char pb[] = {0x0a, 0x03, 'a', 'b', 'c', 0x10, 0x07};
    shoal_mv *m = shoal_mv_message("shop.Order", pb, sizeof(pb));
    assert_non_null(m);
    assert_int_equal(shoal_mv_type(m), SHOAL_MV_MESSAGE);
    assert_string_equal(shoal_mv_message_type(m), "shop.Order");
    size_t len = 0;
    const void *p = shoal_mv_as_bytes(m, &len);
    assert_int_equal(len, sizeof(pb));
    assert_memory_equal(p, pb, sizeof(pb));

    shoal_mv *same = shoal_mv_copy(m);
    shoal_mv *other = shoal_mv_message("shop.Refund", pb, sizeof(pb));
    shoal_mv *empty = shoal_mv_message("shop.Order", NULL, 0); /* all fields default */
    assert_true(shoal_mv_equal(m, same));
    assert_false(shoal_mv_equal(m, other));
    assert_false(shoal_mv_equal(m, empty));
    assert_int_equal(shoal_mv_type(empty), SHOAL_MV_MESSAGE);
    assert_null(shoal_mv_message(NULL, pb, 1));
    assert_null(shoal_mv_message("", pb, 1));
    assert_null(shoal_mv_message("shop.Order", NULL, 3));
    assert_string_equal(shoal_mv_message_type(NULL), "");

    static const unsigned char pk[] = {0x80, 0x05, 0x4b, 0x2a, 0x2e}; /* pickle of 42 */
    shoal_mv *k = shoal_mv_pickle(pk, sizeof(pk));
    assert_int_equal(shoal_mv_type(k), SHOAL_MV_PICKLE);
    assert_string_equal(shoal_mv_message_type(k), "");
    p = shoal_mv_as_bytes(k, &len);
    assert_int_equal(len, sizeof(pk));
    assert_memory_equal(p, pk, sizeof(pk));
    assert_null(shoal_mv_pickle(NULL, 2));

    /* In a map, copied with it: both kept as they are. */
    shoal_mv *map = shoal_mv_map();
    T_OK(shoal_mv_put(map, shoal_mv_str("m"), m));
    T_OK(shoal_mv_put(map, shoal_mv_str("k"), k));
    shoal_mv *back = shoal_mv_copy(map);
    assert_true(shoal_mv_equal(back, map));
    shoal_mv *key = shoal_mv_str("m");
    const shoal_mv *bm = shoal_mv_get(back, key);
    assert_string_equal(shoal_mv_message_type(bm), "shop.Order");
    p = shoal_mv_as_bytes(bm, &len);
    assert_int_equal(len, sizeof(pb));
    assert_memory_equal(p, pb, sizeof(pb));
    char text[128];
    shoal_mv_format(bm, text, sizeof(text));
    assert_non_null(strstr(text, "shop.Order"));

    shoal_mv_free(key);
    shoal_mv_free(back);
    shoal_mv_free(map);
    shoal_mv_free(same);
    shoal_mv_free(other);
    shoal_mv_free(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_and_pickle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
