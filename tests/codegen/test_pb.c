/*
 * test_pb.c — the protobuf form of fixed messages (Foo_to_pb / Foo_from_pb): byte for
 * byte what protoc-c's own pack writes, read back by protoc-c's unpack and by
 * `protoc --decode`, parsed from protoc-c's pack and `protoc --encode`, and every
 * value that does not fit the layout refused by name.
 */
#include "features.shoal.h"
#include "features2.shoal.h"
#include "testutil.h"

static void expect_invalid(int rc, const char *detail)
{
    assert_int_equal(rc, SHOAL_EINVALID_DATA);
    if (!strstr(shoal_errdetail(), detail))
        fail_msg("detail \"%s\" lacks \"%s\"", shoal_errdetail(), detail);
}

/* A message with every kind of field set, negative and extreme values included. */
static void full_everything(Everything *e)
{
    *e = (Everything)Everything_INIT;
    Scalars *s = &e->scalars;
    s->f_double = -2.5;
    s->f_float = 1.25f;
    s->f_int32 = -7;
    s->f_int64 = INT64_MIN;
    s->f_uint32 = UINT32_MAX;
    s->f_uint64 = UINT64_MAX;
    s->f_sint32 = -3;
    s->f_sint64 = -1234567890123LL;
    s->f_fixed32 = 0xdeadbeef;
    s->f_fixed64 = 0x0123456789abcdefULL;
    s->f_sfixed32 = -9;
    s->f_sfixed64 = -10;
    s->f_bool = true;
    T_OK(Scalars_set_f_string(s, "h\xc3\xa9llo"));
    T_OK(Scalars_set_f_bytes(s, "\x00\xff\x01", 3));
    s->f_enum = Level_HIGH;
    e->inner.mode = Everything_Inner_Mode_FAST;
    T_OK(Everything_Inner_set_tag(&e->inner, "ab", 2));
    e->origin.x = -1;
    e->origin.y = 2;
    T_OK(Point_set_label(&e->origin, "here"));
    e->color = Color_BLUE; /* a negative enum value */
    e->r_int32.count = 3;
    e->r_int32.items[0] = -1;
    e->r_int32.items[1] = 0;
    e->r_int32.items[2] = 300;
    e->r_double.count = 1;
    e->r_double.items[0] = 0.5;
    e->r_bool.count = 2;
    e->r_bool.items[1] = true;
    e->r_string.count = 2;
    memcpy(e->r_string.items[0].data, "ab", 2);
    e->r_string.items[0].len = 2;
    e->r_bytes.count = 1;
    e->r_bytes.items[0].len = 1;
    e->r_point.count = 2;
    e->r_point.items[1].y = 5;
    e->r_level.count = 1;
    e->r_level.items[0] = Level_LOW;
    e->choice_case = Everything_choice_c_text;
    memcpy(e->choice.c_text.data, "choice", 6);
    e->choice.c_text.len = 6;
    e->has_maybe = true;
    e->maybe = 0; /* present, although zero */
    e->default_ = 18;
    e->small.flag = true;
    T_OK(Everything_validate(e));
}

/* Our bytes equal protoc-c's for the same message, both ways. */
static void test_same_bytes_as_protoc_c(void **state)
{
    (void)state;
    Everything e;
    full_everything(&e);
    uint8_t ours[1024], theirs[1024];
    size_t n = 0;
    T_OK(Everything_to_pb(&e, ours, sizeof(ours), &n));
    Feat__Everything *pc = feat__everything__unpack(NULL, n, ours);
    assert_non_null(pc);
    assert_int_equal(pc->scalars->f_int64, INT64_MIN);
    assert_int_equal(pc->scalars->f_uint64, UINT64_MAX);
    assert_int_equal(pc->scalars->f_sint32, -3);
    assert_int_equal(pc->scalars->f_sint64, -1234567890123LL);
    assert_string_equal(pc->scalars->f_string, "h\xc3\xa9llo");
    assert_int_equal(pc->scalars->f_bytes.len, 3);
    assert_int_equal(pc->color, FEAT__COMMON__COLOR__BLUE);
    assert_int_equal(pc->n_r_int32, 3);
    assert_int_equal(pc->r_int32[2], 300);
    assert_int_equal(pc->n_r_point, 2);
    assert_int_equal(pc->r_point[1]->y, 5);
    assert_int_equal(pc->choice_case, FEAT__EVERYTHING__CHOICE_C_TEXT);
    assert_string_equal(pc->c_text, "choice");
    assert_int_equal(pc->default_, 18);
    size_t m = feat__everything__pack(pc, theirs);
    assert_int_equal(m, n);
    assert_memory_equal(ours, theirs, n);
    feat__everything__free_unpacked(pc, NULL);

    Everything back;
    T_OK(Everything_from_pb(&back, theirs, m));
    uint8_t again[1024];
    size_t k = 0;
    T_OK(Everything_to_pb(&back, again, sizeof(again), &k));
    assert_int_equal(k, n);
    assert_memory_equal(again, ours, n);
    assert_int_equal(back.scalars.f_sint64, -1234567890123LL);
    assert_true(back.has_maybe);
    assert_int_equal(back.choice_case, Everything_choice_c_text);

    /* an empty message encodes to nothing but its always-present nested messages */
    Scalars z = Scalars_INIT;
    T_OK(Scalars_to_pb(&z, ours, sizeof(ours), &n));
    assert_int_equal(n, 0);
    Empty em = Empty_INIT;
    T_OK(Empty_to_pb(&em, ours, sizeof(ours), &n));
    assert_int_equal(n, 0);
}

/* proto2: presence flags, defaults applied when a field is absent, unpacked repeats. */
static void test_proto2(void **state)
{
    (void)state;
    Defaults d = Defaults_INIT;
    d.id = 7;
    d.list.count = 2;
    d.list.items[0] = 1;
    d.list.items[1] = 2;
    uint8_t buf[256];
    size_t n;
    T_OK(Defaults_to_pb(&d, buf, sizeof(buf), &n));
    /* only id (required) and list (unpacked: two tags): defaults stay implicit */
    static const uint8_t want[] = {0x08, 0x07, 0x70, 0x01, 0x70, 0x02};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, n);
    Defaults back;
    T_OK(Defaults_from_pb(&back, buf, n));
    assert_int_equal(back.answer, 42); /* the schema's default */
    assert_false(back.has_answer);
    assert_int_equal(back.kind, Kind_FIRST);
    /* packed input is accepted for a repeated scalar too */
    static const uint8_t packed[] = {0x08, 0x01, 0x72, 0x02, 0x05, 0x06};
    T_OK(Defaults_from_pb(&back, packed, sizeof(packed)));
    assert_int_equal(back.list.count, 2);
    assert_int_equal(back.list.items[1], 6);
}

/* Values that do not fit the layout, and bytes that do not decode, are refused by
 * name; unknown fields are skipped; a small buffer says how much it needs. */
static void test_bounds_and_garbage(void **state)
{
    (void)state;
    Feat__Scalars s = FEAT__SCALARS__INIT;
    s.f_string = (char *)"eleven char";
    uint8_t buf[256];
    size_t n = feat__scalars__pack(&s, buf);
    Scalars out;
    expect_invalid(Scalars_from_pb(&out, buf, n), "feat.Scalars.f_string: 11 bytes over "
                                                  "max_len 10");
    Feat__Everything e = FEAT__EVERYTHING__INIT;
    int32_t four[4] = {1, 2, 3, 4};
    e.n_r_int32 = 4;
    e.r_int32 = four;
    n = feat__everything__pack(&e, buf);
    Everything ev;
    expect_invalid(Everything_from_pb(&ev, buf, n),
                   "feat.Everything.r_int32: more than max_count 3 elements");
    /* an enum value the schema does not know: decoded, then refused by validation */
    static const uint8_t level9[] = {0x80, 0x01, 0x09};
    expect_invalid(Scalars_from_pb(&out, level9, sizeof(level9)),
                   "feat.Scalars.f_enum: 9 is not a value");
    /* cut short, a bad length, the wrong wire type, a group */
    static const uint8_t cut[] = {0x08};
    expect_invalid(Scalars_from_pb(&out, cut, 1), "feat.Scalars.f_double:");
    static const uint8_t longlen[] = {0x72, 0x50, 'a'};
    expect_invalid(Scalars_from_pb(&out, longlen, 3), "a length runs past the end");
    static const uint8_t wrongwt[] = {0x18, 0x01, 0x1d, 0, 0, 0, 0};
    expect_invalid(Scalars_from_pb(&out, wrongwt, sizeof(wrongwt)),
                   "feat.Scalars.f_int32: the wire type does not match");
    static const uint8_t group[] = {0xfb, 0x07};
    expect_invalid(Scalars_from_pb(&out, group, 2), "an unknown field does not decode");
    /* unknown fields of every wire type are skipped */
    static const uint8_t unknown[] = {0xb8, 0x3e, 0x05, 0xc2, 0x3e, 0x01, 'x',
                                      0xc9, 0x3e, 1,    2,    3,    4,    5,
                                      6,    7,    8,    0x18, 0x2a};
    T_OK(Scalars_from_pb(&out, unknown, sizeof(unknown)));
    assert_int_equal(out.f_int32, 42);
    /* a buffer too small: SHOAL_EMSGSIZE and the size needed */
    Everything full;
    full_everything(&full);
    size_t need = 0;
    assert_int_equal(Everything_to_pb(&full, buf, 10, &need), SHOAL_EMSGSIZE);
    assert_true(need > 10);
    T_OK(Everything_to_pb(&full, buf, sizeof(buf), &n));
    assert_int_equal(n, need);
    /* an invalid message is not encoded */
    full.scalars.f_string.len = 11;
    expect_invalid(Everything_to_pb(&full, buf, sizeof(buf), &n), "length 11 over");
}

/* protoc reads what we write and writes what we read (its text format). */
static void test_protoc_text(void **state)
{
    (void)state;
    Everything e;
    full_everything(&e);
    uint8_t buf[1024];
    size_t n;
    T_OK(Everything_to_pb(&e, buf, sizeof(buf), &n));
    char bin[400], txt[400];
    snprintf(bin, sizeof(bin), "%s/every.bin", t_root);
    snprintf(txt, sizeof(txt), "%s/every.txt", t_root);
    FILE *f = fopen(bin, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    assert_int_equal(
        t_system("'%s' --decode=feat.Everything -I'%s' -I'%s' features.proto "
                 "<'%s' >'%s'",
                 SHOAL_PROTOC, PROTO_DIR, SHOAL_SCHEMA_DIR, bin, txt),
        0);
    char text[4096];
    f = fopen(txt, "r");
    assert_non_null(f);
    size_t got = fread(text, 1, sizeof(text) - 1, f);
    text[got] = '\0';
    fclose(f);
    static const char *const want[] = {
        "f_int64: -9223372036854775808",
        "f_uint64: 18446744073709551615",
        "f_sint32: -3",
        "f_fixed32: 3735928559",
        "f_enum: HIGH",
        "color: BLUE",
        "c_text: \"choice\"",
        "maybe: 0",
        "default: 18",
        "r_int32: 300",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(text, want[i]))
            fail_msg("protoc --decode output lacks \"%s\":\n%s", want[i], text);

    /* and back: protoc --encode of its own text gives the same message */
    assert_int_equal(
        t_system("'%s' --encode=feat.Everything -I'%s' -I'%s' features.proto "
                 "<'%s' >'%s'",
                 SHOAL_PROTOC, PROTO_DIR, SHOAL_SCHEMA_DIR, txt, bin),
        0);
    f = fopen(bin, "rb");
    assert_non_null(f);
    uint8_t enc[1024];
    size_t m = fread(enc, 1, sizeof(enc), f);
    fclose(f);
    Everything back;
    T_OK(Everything_from_pb(&back, enc, m));
    uint8_t again[1024];
    size_t k;
    T_OK(Everything_to_pb(&back, again, sizeof(again), &k));
    assert_int_equal(k, n);
    assert_memory_equal(again, buf, n);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_protoc_c),
        cmocka_unit_test(test_proto2),
        cmocka_unit_test(test_bounds_and_garbage),
        cmocka_unit_test(test_protoc_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
