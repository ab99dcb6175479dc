/*
 * test_schema_errors.c — schemas the compiler cannot lay out: each gives a message
 * naming the file, the message and the field, and protoc exits non-zero.
 */
#include "testutil.h"

/* Writes `body` (after a header importing the options) as dir/name. */
static void write_proto(const char *dir, const char *name, const char *syntax,
                        const char *package, const char *imports, const char *body)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "syntax = \"%s\";\npackage %s;\nimport \"shoal/options.proto\";\n%s%s\n",
            syntax, package, imports, body);
    fclose(f);
}

/* Compiles `body` as bad.proto (package bad), and `dep` (if not NULL) as dep.proto
 * (package dep), which bad.proto imports but protoc is not asked to compile; returns
 * protoc's exit status and its stderr in err. */
static int compile_with(const char *syntax, const char *body, const char *dep,
                        const char *params, char *err, size_t cap)
{
    char dir[300], errpath[400];
    snprintf(dir, sizeof(dir), "%s/bad-XXXXXX", t_root);
    assert_non_null(mkdtemp(dir));
    snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
    if (dep)
        write_proto(dir, "dep.proto", syntax, "dep", "", dep);
    write_proto(dir, "bad.proto", syntax, "bad", dep ? "import \"dep.proto\";\n" : "",
                body);
    int rc =
        t_system("'%s' --plugin=protoc-gen-shoal='%s' --shoal_out='%s:%s' -I'%s' -I'%s' "
                 "bad.proto 2>'%s'",
                 SHOAL_PROTOC, SHOAL_PLUGIN, params, dir, dir, SHOAL_SCHEMA_DIR, errpath);
    FILE *f = fopen(errpath, "r");
    assert_non_null(f);
    size_t n = fread(err, 1, cap - 1, f);
    err[n] = '\0';
    fclose(f);
    return rc;
}

static int compile(const char *syntax, const char *body, const char *params, char *err,
                   size_t cap)
{
    return compile_with(syntax, body, NULL, params, err, cap);
}

/* Expects compilation with `params` to fail with every one of the NULL-terminated
 * texts. */
static void expect_error_v(const char *params, const char *syntax, const char *body,
                           va_list ap)
{
    char err[16384];
    int rc = compile(syntax, body, params, err, sizeof(err));
    if (rc == 0)
        fail_msg("schema compiled (%s), but should not:\n%s", params, body);
    for (const char *want = va_arg(ap, const char *); want;
         want = va_arg(ap, const char *))
        if (!strstr(err, want))
            fail_msg("error output lacks \"%s\":\n%s", want, err);
}

static void expect_error(const char *syntax, const char *body, ...)
{
    va_list ap;
    va_start(ap, body);
    expect_error_v("", syntax, body, ap);
    va_end(ap);
}

static void expect_python_error(const char *syntax, const char *body, ...)
{
    va_list ap;
    va_start(ap, body);
    expect_error_v("lang=python", syntax, body, ap);
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

static void test_service_name_clash(void **state)
{
    (void)state;
    expect_error("proto3",
                 "message M { int32 a = 1; }\nmessage Fleet_stub { int32 a = 1; }\n"
                 "service Fleet { rpc Report(M) returns (M); }",
                 "the C name Fleet_stub is also generated for", "service bad.Fleet",
                 NULL);
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
        "bad.proto: message bad.A.B: the C name A_B is also generated for message "
        "bad.A_B (bad.proto); rename one or set (shoal.c_prefix)",
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

/* Issue 9 defect 1: a bound near UINT32_MAX must not wrap the size computation. */
static void test_huge_bounds(void **state)
{
    (void)state;
    expect_error("proto3", "message M { string s = 1 [(shoal.max_len) = 4294967290]; }",
                 "message bad.M: field s is too large for a fixed layout", NULL);
    expect_error("proto3", "message M { bytes s = 1 [(shoal.max_len) = 4294967295]; }",
                 "message bad.M: field s is too large for a fixed layout", NULL);
    expect_error("proto3",
                 "message M { repeated int64 r = 1 [(shoal.max_count) = 4294967295]; }",
                 "message bad.M: field r is too large for a fixed layout", NULL);
    expect_error("proto3",
                 "message M { oneof o { string a = 1 [(shoal.max_len) = 1000000000]; }\n"
                 "  string b = 2 [(shoal.max_len) = 1000000000]; }",
                 "message bad.M: field b makes it too large for a fixed layout", NULL);
}

/* Defect 4: a message or enum named like a C type or keyword. */
static void test_c_reserved_type_names(void **state)
{
    (void)state;
    expect_error("proto3",
                 "message size_t { int32 a = 1; }\nmessage uint32_t { int32 a = 1; }\n"
                 "message int { int32 a = 1; }\nmessage FILE { int32 a = 1; }\n"
                 "enum INT_MAX { X = 0; }",
                 "bad.proto: message bad.size_t: its C name size_t is a C or C++ keyword",
                 "message bad.uint32_t: its C name uint32_t",
                 "message bad.int: its C name", "message bad.FILE: its C name FILE",
                 "enum bad.INT_MAX: its C name", NULL);
}

/* Defect 5: two generated names that would be one C identifier. */
static void test_generated_name_clashes(void **state)
{
    (void)state;
    /* enum constants: A.B_C and A_B.C both become A_B_C */
    expect_error("proto3", "enum A { B_C = 0; }\nenum A_B { C = 0; }",
                 "enum bad.A: the C name A_B_C is also generated for enum bad.A_B", NULL);
    /* setters of string fields a and a_n */
    expect_error("proto3",
                 "message M { string a = 1 [(shoal.max_len) = 2];\n"
                 "  string a_n = 2 [(shoal.max_len) = 2]; }",
                 "message bad.M: the C name M_set_a_n is generated twice for it", NULL);
    /* a oneof case constant and an enum constant */
    expect_error("proto3", "message M { oneof o { int32 x = 1; } }\nenum M_o { x = 0; }",
                 "the C name M_o_x is also generated for", NULL);
    /* a message Foo_type next to Foo's descriptor */
    expect_error("proto3",
                 "message Foo { int32 a = 1; }\nmessage Foo_type { int32 b = 1; }",
                 "the C name Foo_type is also generated for", NULL);
    /* a nested message against an enum constant */
    expect_error("proto3",
                 "enum Color { Red_Light = 0; }\n"
                 "message Color_Red { message Light { int32 a = 1; } }",
                 "the C name Color_Red_Light is also generated for", NULL);
}

/* Defect 6: a message named like another's wrapper handle. */
static void test_wrapper_name_clashes(void **state)
{
    (void)state;
    expect_error("proto3",
                 "message Foo { int32 a = 1; }\nmessage Foo_queue { int32 b = 1; }",
                 "the C name Foo_queue is also generated for", NULL);
    expect_error("proto3", "message Foo { int32 a = 1; message value { int32 b = 1; } }",
                 "the C name Foo_value is also generated for", NULL);
    expect_error("proto3",
                 "message Foo { string s = 1; }\nmessage Foo_pipe { int32 b = 1; }",
                 "the C name Foo_pipe is also generated for", NULL);
}

/* Defect 7: Python attribute names that clash. */
static void test_python_name_clashes(void **state)
{
    (void)state;
    expect_python_error(
        "proto3", "message M { string x = 1 [(shoal.max_len) = 2]; int32 _r_x = 2; }",
        "bad.proto: message bad.M, field _r_x: its Python attribute _r_x "
        "is also",
        NULL);
    char err[8192];
    assert_int_equal(compile("proto3",
                             "message M { int32 _fields_ = 1; int32 _pack_ = 2; "
                             "int32 _shoal_names_ = 3; }",
                             "lang=python", err, sizeof(err)),
                     0);
}

/* Defect 9: a (shoal.fixed) message with a map and an encoded message: both. */
static void test_fixed_reports_every_field(void **state)
{
    (void)state;
    expect_error("proto3",
                 "message Text { string t = 1; }\n"
                 "message M { option (shoal.fixed) = true; map<int32, int32> m = 1;\n"
                 "  Text text = 2; repeated Text texts = 3; }",
                 "message bad.M, field m: a map cannot have a fixed layout",
                 "message bad.M, field text: message bad.Text is encoded",
                 "message bad.M, field texts: a repeated field needs (shoal.max_count)",
                 NULL);
}

/* Defect 10: rules that only concern C do not refuse Python. */
static void test_python_skips_c_rules(void **state)
{
    (void)state;
    char err[8192];
    /* an encoded message using a message of a file not being compiled */
    const char *dep = "message D { int32 a = 1; }";
    const char *body = "message E { string s = 1; dep.D d = 2; }";
    assert_int_not_equal(compile_with("proto3", body, dep, "", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "must be compiled too"));
    assert_int_equal(compile_with("proto3", body, dep, "lang=python", err, sizeof(err)),
                     0);
    /* a C name also used by protoc-c, or by C's standard headers */
    assert_int_equal(compile("proto3", "message size_t { int32 a = 1; }", "lang=python",
                             err, sizeof(err)),
                     0);
    assert_int_equal(compile("proto3", "enum A { B_C = 0; }\nenum A_B { C = 0; }",
                             "lang=python", err, sizeof(err)),
                     0);
}

/* protoc-c escapes only C++98's keywords in its structs: a file whose encoded
 * messages need protoc-c's code refuses the field names it would leave as they are;
 * without encoded messages the same names are escaped by shoal and compile. */
static void test_protoc_c_member_names(void **state)
{
    (void)state;
    expect_error("proto3",
                 "message E { string text = 1; int32 export = 2; int32 restrict = 3;\n"
                 "  int32 unix = 4; int32 size_t = 5; int32 class = 6; }",
                 "bad.proto: message bad.E, field export: protoc-c's code (which the "
                 "file's encoded messages need) names its member export",
                 "field restrict: protoc-c", "field unix: protoc-c",
                 "field size_t: protoc-c", NULL);
    char err[8192];
    assert_int_equal(compile("proto3",
                             "message F { int32 export = 2; int32 restrict = 3; "
                             "int32 unix = 4; int32 size_t = 5; int32 class = 6; }",
                             "", err, sizeof(err)),
                     0);
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
        cmocka_unit_test(test_service_name_clash),
        cmocka_unit_test(test_default_too_long),
        cmocka_unit_test(test_group_rejected),
        cmocka_unit_test(test_c_name_clash),
        cmocka_unit_test(test_unknown_parameter),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_huge_bounds),
        cmocka_unit_test(test_c_reserved_type_names),
        cmocka_unit_test(test_generated_name_clashes),
        cmocka_unit_test(test_wrapper_name_clashes),
        cmocka_unit_test(test_python_name_clashes),
        cmocka_unit_test(test_fixed_reports_every_field),
        cmocka_unit_test(test_python_skips_c_rules),
        cmocka_unit_test(test_protoc_c_member_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
