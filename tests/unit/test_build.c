/* test_build.c — the production library has no test pause points: nothing in it
 * reads $SHOAL_TEST_PAUSE or can stop the process, whatever the environment says. */
#include <dlfcn.h>

#include "testutil.h"

/* Whether the file at path contains the bytes of s. */
static bool file_contains(const char *path, const char *s)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = strlen(s), have = 0;
    bool found = false;
    int c;
    while (!found && (c = fgetc(f)) != EOF) {
        have = (unsigned char)c == (unsigned char)s[have] ? have + 1
               : (unsigned char)c == (unsigned char)s[0]  ? 1
                                                          : 0;
        found = have == n;
    }
    fclose(f);
    return found;
}

static void test_no_pause_points_in_production(void **state)
{
    (void)state;
    void *lib = dlopen(SHOAL_LIB_PATH, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    assert_non_null(dlsym(lib, "shoal_sem_acquire"));
    assert_null(dlsym(lib, "shoal__test_pause_at"));
    dlclose(lib);
    assert_false(file_contains(SHOAL_LIB_PATH, "SHOAL_TEST_PAUSE"));
    assert_false(file_contains(SHOAL_LIB_PATH, "wait.woken"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_pause_points_in_production),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
