/*
 * test_schema_errors.c — schemas the compiler cannot lay out: each gives a message
 * naming the file, the message and the field, and protoc exits non-zero.
 */
#include "testutil.h"

/* Compiles `body` (after a header importing the options) as bad.proto; returns
 * protoc's exit status and its stderr in err. */
static int compile(const char *syntax, const char *body, const char *params, char *err,
                   size_t cap)
{
    char dir[300], path[400], errpath[400];
    snprintf(dir, sizeof(dir), "%s/bad-XXXXXX", t_root);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bad.proto", dir);
    snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "syntax = \"%s\";\npackage bad;\nimport \"shoal/options.proto\";\n%s\n",
            syntax, body);
    fclose(f);
    int rc =
        t_system("'%s' --plugin=protoc-gen-shoal='%s' --shoal_out='%s:%s' -I'%s' -I'%s' "
                 "bad.proto 2>'%s'",
                 SHOAL_PROTOC, SHOAL_PLUGIN, params, dir, dir, SHOAL_SCHEMA_DIR, errpath);
    f = fopen(errpath, "r");
    assert_non_null(f);
    size_t n = fread(err, 1, cap - 1, f);
    err[n] = '\0';
    fclose(f);
    return rc;
}

/* Expects compilation to fail with every one of the NULL-terminated texts. */
static void expect_error(const char *syntax, const char *body, ...)
{
    char err[8192];
    int rc = compile(syntax, body, "", err, sizeof(err));
    if (rc == 0)
        fail_msg("schema compiled, but should not:\n%s", body);
    va_list ap;
    va_start(ap, body);
    for (const char *want = va_arg(ap, const char *); want;
         want = va_arg(ap, const char *))
        if (!strstr(err, want))
            fail_msg("error output lacks \"%s\":\n%s", want, err);
    va_end(ap);
}

static void test_max_len_on_int(void **state)
{
    (void)state;
    expect_error(
        "proto3", "message M { int32 x = 1 [(shoal.max_len) = 4]; }",
        "bad.proto: message bad.M, field x: (shoal.max_len) applies to string and "
        "bytes fields, not int32",
        NULL);
}

static void test_max_count_on_singular(void **state)
{
    (void)state;
    expect_error(
        "proto3",
        "message M { string s = 1 [(shoal.max_count) = 4, (shoal.max_len) = 2]; }",
        "bad.proto: message bad.M, field s: (shoal.max_count) applies to repeated "
        "fields",
        NULL);
}

static void test_zero_bounds(void **state)
{
    (void)state;
    expect_error("proto3", "message M { string s = 1 [(shoal.max_len) = 0]; }",
                 "field s: (shoal.max_len) must be at least 1", NULL);
    expect_error("proto3", "message M { repeated int32 r = 1 [(shoal.max_count) = 0]; }",
                 "field r: (shoal.max_count) must be at least 1", NULL);
}

static void test_recursive_message(void **state)
{
    (void)state;
    expect_error(
        "proto3", "message A { B b = 1; }\nmessage B { A a = 1; int32 x = 2; }",
        "bad.proto: message bad.A: recursive message (bad.A.b -> bad.B.a -> bad.A)",
        "a fixed layout cannot contain itself", NULL);
    expect_error("proto3", "message Node { int32 v = 1; Node next = 2; }",
                 "message bad.Node: recursive message (bad.Node.next -> bad.Node)", NULL);
}

/* Recursion through an unbounded repeated field is fine: the message is encoded. */
static void test_recursive_through_unbounded_is_encoded(void **state)
{
    (void)state;
    char err[4096];
    int rc = compile("proto3", "message Tree { int32 v = 1; repeated Tree kids = 2; }",
                     "verbose", err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_non_null(strstr(err, "bad.Tree: encoded (field kids is repeated without "
                                "(shoal.max_count))"));
}

static void test_missing_max_len_when_fixed(void **state)
{
    (void)state;
    expect_error(
        "proto3",
        "message M { option (shoal.fixed) = true; int32 a = 1; string s = 2; "
        "repeated int32 r = 3; bytes b = 4 [(shoal.max_len) = 2]; }",
        "bad.proto: message bad.M, field s: a string needs (shoal.max_len) for a "
        "fixed layout, which (shoal.fixed) on the message requires",
        "bad.proto: message bad.M, field r: a repeated field needs (shoal.max_count)",
        NULL);
}

static void test_map_when_fixed(void **state)
{
    (void)state;
    expect_error("proto3",
                 "message M { option (shoal.fixed) = true; map<int32, int32> m = 1; }",
                 "message bad.M, field m: a map cannot have a fixed layout", NULL);
    expect_error("proto3",
                 "message M { map<int32, int32> m = 1 [(shoal.max_count) = 3]; }",
                 "field m: (shoal.max_count) does not apply to maps", NULL);
}

static void test_fixed_holding_encoded(void **state)
{
    (void)state;
    expect_error("proto3",
                 "message Text { string t = 1; }\n"
                 "message M { option (shoal.fixed) = true; Text text = 1; }",
                 "message bad.M, field text: message bad.Text is encoded (field t has no "
                 "(shoal.max_len)), so it cannot be part of the fixed layout",
                 NULL);
}

static void test_fixed_and_encoded(void **state)
{
    (void)state;
    expect_error(
        "proto3",
        "message M { option (shoal.fixed) = true; option (shoal.encoded) = true; "
        "int32 a = 1; }",
        "message bad.M: (shoal.fixed) and (shoal.encoded) are both set", NULL);
}

static void test_member_name_clash(void **state)
{
    (void)state;
    expect_error("proto3", "message M { optional int32 x = 1; bool has_x = 2; }",
                 "message bad.M: the C struct would have two members named has_x", NULL);
}

static void test_default_too_long(void **state)
{
    (void)state;
    expect_error("proto2",
                 "message M { optional string s = 1 [default = \"toolong\", "
                 "(shoal.max_len) = 3]; }",
                 "message bad.M, field s: the default value (7 bytes) is longer than "
                 "(shoal.max_len) 3",
                 NULL);
}

static void test_group_rejected(void **state)
{
    (void)state;
    expect_error("proto2", "message M { optional group G = 1 { optional int32 a = 2; } }",
                 "message bad.M, field g: groups are not supported", NULL);
}

static void test_c_name_clash(void **state)
{
    (void)state;
    expect_error(
        "proto3",
        "message A { message B { int32 x = 1; } }\nmessage A_B { int32 y = 1; }",
        "message bad.A.B: its C name A_B is also the C name of bad.proto: message "
        "bad.A_B",
        NULL);
}

static void test_unknown_parameter(void **state)
{
    (void)state;
    char err[4096];
    int rc = compile("proto3", "message M { int32 a = 1; }", "bogus=1", err, sizeof(err));
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "unknown parameter \"bogus\""));
}

/* Several errors in one schema are all reported, not only the first. */
static void test_all_errors_reported(void **state)
{
    (void)state;
    expect_error("proto3",
                 "message M { int32 a = 1 [(shoal.max_len) = 3]; int64 b = 2 "
                 "[(shoal.max_count) = 2]; }",
                 "field a: (shoal.max_len)", "field b: (shoal.max_count)", NULL);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_len_on_int),
        cmocka_unit_test(test_max_count_on_singular),
        cmocka_unit_test(test_zero_bounds),
        cmocka_unit_test(test_recursive_message),
        cmocka_unit_test(test_recursive_through_unbounded_is_encoded),
        cmocka_unit_test(test_missing_max_len_when_fixed),
        cmocka_unit_test(test_map_when_fixed),
        cmocka_unit_test(test_fixed_holding_encoded),
        cmocka_unit_test(test_fixed_and_encoded),
        cmocka_unit_test(test_member_name_clash),
        cmocka_unit_test(test_default_too_long),
        cmocka_unit_test(test_group_rejected),
        cmocka_unit_test(test_c_name_clash),
        cmocka_unit_test(test_unknown_parameter),
        cmocka_unit_test(test_all_errors_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
