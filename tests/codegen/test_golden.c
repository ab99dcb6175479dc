/*
 * test_golden.c — the compiler's output for the feature schemas, byte for byte.
 *
 * tests/codegen/proto/{features,common,features2}.proto cover every feature; what
 * protoc-gen-shoal makes of them must equal tests/codegen/golden/. After an intended
 * change of the generated code, rerun with SHOAL_UPDATE_GOLDEN=1 to rewrite the
 * golden files, and review the diff.
 */
#include "testutil.h"

static const char *const outputs[] = {
    "features.shoal.h", "features.shoal.c",  "common.shoal.h",
    "common.shoal.c",   "features2.shoal.h", "features2.shoal.c",
};

/* Runs the compiler on the feature schemas into a new directory under the test root. */
static void generate(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/gen-XXXXXX", t_root);
    assert_non_null(mkdtemp(dir));
    int rc = t_system("'%s' --plugin=protoc-gen-shoal='%s' "
                      "--shoal_out='protoc-gen-c=%s:%s' -I'%s/proto' -I'%s' "
                      "features.proto common.proto features2.proto",
                      SHOAL_PROTOC, SHOAL_PLUGIN, SHOAL_PROTOC_GEN_C, dir,
                      CODEGEN_TEST_DIR, SHOAL_SCHEMA_DIR);
    assert_int_equal(rc, 0);
}

/* Reads a whole file; returns NULL if it cannot. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

/* Line number of the first difference (1-based). */
static int first_diff_line(const char *a, const char *b)
{
    int line = 1;
    for (; *a && *a == *b; a++, b++)
        line += *a == '\n';
    return line;
}

static void compare(const char *dir, const char *name)
{
    char got_path[1024], want_path[1024];
    snprintf(got_path, sizeof(got_path), "%s/%s", dir, name);
    snprintf(want_path, sizeof(want_path), "%s/golden/%s", CODEGEN_TEST_DIR, name);
    size_t got_len = 0, want_len = 0;
    char *got = slurp(got_path, &got_len);
    assert_non_null(got);
    if (getenv("SHOAL_UPDATE_GOLDEN")) {
        FILE *f = fopen(want_path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(got, 1, got_len, f), got_len);
        fclose(f);
        free(got);
        return;
    }
    char *want = slurp(want_path, &want_len);
    if (!want)
        fail_msg("no golden file %s (run with SHOAL_UPDATE_GOLDEN=1 to create it)",
                 want_path);
    if (got_len != want_len || memcmp(got, want, got_len) != 0)
        fail_msg("%s differs from %s from line %d on (if the change is intended, rerun "
                 "with SHOAL_UPDATE_GOLDEN=1)",
                 got_path, want_path, first_diff_line(got, want));
    free(got);
    free(want);
}

static void test_output_matches_golden(void **state)
{
    (void)state;
    char dir[512];
    generate(dir, sizeof(dir));
    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++)
        compare(dir, outputs[i]);
}

/* The same input always gives the same bytes (no timestamps, no pointer order). */
static void test_output_is_deterministic(void **state)
{
    (void)state;
    char a[512], b[512];
    generate(a, sizeof(a));
    generate(b, sizeof(b));
    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
        char pa[600], pb[600];
        snprintf(pa, sizeof(pa), "%s/%s", a, outputs[i]);
        snprintf(pb, sizeof(pb), "%s/%s", b, outputs[i]);
        size_t la = 0, lb = 0;
        char *da = slurp(pa, &la), *db = slurp(pb, &lb);
        assert_non_null(da);
        assert_non_null(db);
        assert_int_equal(la, lb);
        assert_memory_equal(da, db, la);
        free(da);
        free(db);
    }
}

/* Encoded messages bring protoc-c's code, its headers and those of the imports; files
 * with only fixed messages need no protobuf-c at all. */
static void test_protoc_c_output_only_where_needed(void **state)
{
    (void)state;
    char dir[512], path[700];
    generate(dir, sizeof(dir));
    const char *present[] = {"features.pb-c.c",      "features.pb-c.h",
                             "common.pb-c.c",        "common.pb-c.h",
                             "shoal/options.pb-c.h", "google/protobuf/descriptor.pb-c.h"};
    const char *absent[] = {"features2.pb-c.c", "features2.pb-c.h",
                            "shoal/options.pb-c.c", "google/protobuf/descriptor.pb-c.c"};
    for (size_t i = 0; i < sizeof(present) / sizeof(present[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, present[i]);
        if (access(path, F_OK) != 0)
            fail_msg("%s is missing", path);
    }
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, absent[i]);
        if (access(path, F_OK) == 0)
            fail_msg("%s should not be generated", path);
    }
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_matches_golden),
        cmocka_unit_test(test_output_is_deterministic),
        cmocka_unit_test(test_protoc_c_output_only_where_needed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
