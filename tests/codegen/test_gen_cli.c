/*
 * test_gen_cli.c — `shoal gen`, the compiler for users without CMake: it finds protoc,
 * the plugin and shoal/options.proto by itself, writes compilable code, and reports
 * schema errors and usage errors with distinct exit codes.
 */
#include "testutil.h"

static char out[512];

static int gen(const char *args)
{
    snprintf(out, sizeof(out), "%s/gen.out", t_root);
    return t_system("'%s' gen %s >'%s' 2>&1", SHOAL_CLI_PATH, args, out);
}

static void expect_output(const char *want)
{
    char text[8192];
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    if (!strstr(text, want))
        fail_msg("output lacks \"%s\":\n%s", want, text);
}

static void test_generates_compilable_code(void **state)
{
    (void)state;
    char args[1024], dir[600];
    snprintf(dir, sizeof(dir), "%s/gen/nested/out", t_root); /* created for us */
    snprintf(
        args, sizeof(args),
        "--lang c -v -I '%s/proto' -o '%s' features.proto common.proto features2.proto",
        CODEGEN_TEST_DIR, dir);
    assert_int_equal(gen(args), 0);
    expect_output("feat.Everything: fixed, 376 bytes, align 8");
    expect_output("feat.Journal: encoded (field text has no (shoal.max_len))");
    assert_int_equal(
        t_system("'%s' -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only "
                 "-I'%s' -I'%s' '%s/features.shoal.c' '%s/features2.shoal.c' "
                 "'%s/common.shoal.c'",
                 SHOAL_C_COMPILER, dir, SHOAL_RUNTIME_INCLUDE, dir, dir, dir),
        0);
}

static void test_schema_error_exit_code(void **state)
{
    (void)state;
    char dir[600], path[700], args[1600];
    snprintf(dir, sizeof(dir), "%s/badgen", t_root);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/wrong.proto", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("syntax = \"proto3\";\npackage w;\nimport \"shoal/options.proto\";\n"
          "message M { int32 x = 1 [(shoal.max_len) = 4]; }\n",
          f);
    fclose(f);
    snprintf(args, sizeof(args), "-I '%s' -o '%s/out' wrong.proto", dir, dir);
    assert_int_equal(gen(args), 1);
    expect_output(
        "wrong.proto: message w.M, field x: (shoal.max_len) applies to string and "
        "bytes fields, not int32");
}

static void test_usage(void **state)
{
    (void)state;
    assert_int_equal(gen("--help"), 0);
    expect_output("usage: shoal gen");
    assert_int_equal(gen(""), 2);
    expect_output("no .proto files given");
    assert_int_equal(gen("--lang cobol x.proto"), 2);
    expect_output("language \"cobol\" is not supported");
    assert_int_equal(gen("--frobnicate x.proto"), 2);
    assert_int_equal(gen("--plugin /nonexistent/protoc-gen-shoal x.proto"), 3);
    expect_output("protoc-gen-shoal not found");
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generates_compilable_code),
        cmocka_unit_test(test_schema_error_exit_code),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
