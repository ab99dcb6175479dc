/* test_version.c — the version macros agree with the library the test runs with. */
#include "testutil.h"

static void test_version(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR,
             SHOAL_VERSION_PATCH);
    assert_string_equal(SHOAL_VERSION, want);
    assert_string_equal(shoal_version(), SHOAL_VERSION);
    assert_int_equal(shoal_version_number(), SHOAL_VERSION_NUMBER);
    assert_int_equal(SHOAL_VERSION_NUMBER, SHOAL_VERSION_MAJOR * 10000 +
                                               SHOAL_VERSION_MINOR * 100 +
                                               SHOAL_VERSION_PATCH);
#if SHOAL_VERSION_NUMBER < 100
#error "SHOAL_VERSION_NUMBER must be usable in #if"
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_version)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
