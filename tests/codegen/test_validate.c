/*
 * test_validate.c — generated validation: a string over its max_len, a count over its
 * max_count, an unknown enum value, a bad bool or oneof case are each rejected with
 * SHOAL_EINVALID_DATA and a detail naming the field, whether the caller tries to put
 * it or another process already wrote it into shared memory.
 */
#include "features.shoal.h"
#include "features2.shoal.h"
#include "testutil.h"

#define WAIT SHOAL_SEC(10)

static void expect_invalid(int rc, const char *detail)
{
    assert_int_equal(rc, SHOAL_EINVALID_DATA);
    if (!strstr(shoal_errdetail(), detail))
        fail_msg("detail \"%s\" lacks \"%s\"", shoal_errdetail(), detail);
}

static void valid_everything(Everything *e)
{
    *e = (Everything)Everything_INIT;
    e->r_point.count = 2;
    T_OK(Everything_validate(e));
}

static void test_string_over_max_len(void **state)
{
    (void)state;
    Everything e;
    valid_everything(&e);
    e.scalars.f_string.len = 11;
    expect_invalid(Everything_validate(&e),
                   "feat.Scalars.f_string: length 11 over max_len 10");
    Scalars s = Scalars_INIT;
    expect_invalid(Scalars_set_f_string(&s, "eleven char"),
                   "feat.Scalars.f_string: 11 bytes over max_len 10");
    assert_int_equal(s.f_string.len, 0); /* unchanged */
    T_OK(Scalars_set_f_string(&s, "ten chars!"));
    assert_int_equal(s.f_string.len, 10);
    expect_invalid(Scalars_set_f_bytes(&s, "12345678", 8),
                   "f_bytes: 8 bytes over max_len 7");
}

static void test_count_over_max_count(void **state)
{
    (void)state;
    Everything e;
    valid_everything(&e);
    e.r_int32.count = 4;
    expect_invalid(Everything_validate(&e),
                   "feat.Everything.r_int32: count 4 over max_count 3");
    valid_everything(&e);
    e.r_string.count = 3;
    e.r_string.items[2].len = 5; /* an element over its max_len */
    expect_invalid(Everything_validate(&e),
                   "feat.Everything.r_string: length 5 over max_len 4");
    valid_everything(&e);
    e.r_point.items[1].label.len = 7; /* inside a repeated imported message */
    expect_invalid(Everything_validate(&e),
                   "feat.common.Point.label: length 7 over max_len 6");
    valid_everything(&e);
    e.r_point.count = 3;
    expect_invalid(Everything_validate(&e), "r_point: count 3 over max_count 2");
}

static void test_unknown_enum(void **state)
{
    (void)state;
    Everything e;
    valid_everything(&e);
    e.scalars.f_enum = 7;
    expect_invalid(Everything_validate(&e),
                   "feat.Scalars.f_enum: 7 is not a value of feat.Level");
    valid_everything(&e);
    e.color = Color_BLUE; /* negative, but known */
    T_OK(Everything_validate(&e));
    e.color = -1;
    expect_invalid(Everything_validate(&e), "feat.Everything.color: -1 is not a value of "
                                            "feat.common.Color");
    valid_everything(&e);
    e.r_level.count = 2;
    e.r_level.items[1] = 3;
    expect_invalid(Everything_validate(&e), "r_level: 3 is not a value of feat.Level");
    assert_true(Level_is_valid(Level_TOP));
    assert_string_equal(Level_name(2), "HIGH");
    assert_null(Level_name(3));
}

static void test_bool_and_oneof(void **state)
{
    (void)state;
    Everything e;
    valid_everything(&e);
    memset(&e.scalars.f_bool, 2, 1); /* what a foreign writer could leave */
    expect_invalid(Everything_validate(&e),
                   "feat.Scalars.f_bool: a bool holds neither 0 nor 1");
    valid_everything(&e);
    e.choice_case = 99;
    expect_invalid(Everything_validate(&e), "feat.Everything.choice: unknown case 99");
    valid_everything(&e);
    e.choice_case = Everything_choice_c_text;
    e.choice.c_text.len = 10;
    expect_invalid(Everything_validate(&e), "c_text: length 10 over max_len 9");
    valid_everything(&e);
    e.choice_case = Everything_choice_c_inner;
    e.choice.c_inner.mode = 5;
    expect_invalid(Everything_validate(&e),
                   "feat.Everything.Inner.mode: 5 is not a value");
}

/* Invalid messages never enter a channel or a Value; the old contents stay. */
static void test_puts_and_writes_reject(void **state)
{
    (void)state;
    Everything good, bad, out;
    valid_everything(&good);
    bad = good;
    bad.r_int32.count = 9;

    Everything_queue *q;
    T_OK(Everything_queue_open(&q, NULL, SHOAL_CREATE, NULL, NULL));
    expect_invalid(Everything_queue_put(q, &bad, WAIT), "count 9 over max_count 3");
    size_t done = 7;
    Everything two[2] = {good, bad};
    expect_invalid(Everything_queue_put_batch(q, two, 2, &done, WAIT), "r_int32");
    assert_int_equal(done, 0);
    shoal_queue_stats st;
    T_OK(Everything_queue_stats(q, &st));
    assert_int_equal(st.depth, 0);

    /* a loaned slot with bad contents is not published; fixed, it is */
    Everything *slot;
    T_OK(Everything_queue_loan(q, &slot, WAIT));
    *slot = bad;
    expect_invalid(Everything_queue_commit(q, slot), "r_int32");
    slot->r_int32.count = 1;
    T_OK(Everything_queue_commit(q, slot));
    T_OK(Everything_queue_get(q, &out, WAIT));
    assert_int_equal(out.r_int32.count, 1);
    Everything_queue_close(q);

    Everything_value *v;
    expect_invalid(Everything_value_open(&v, "bad-init", SHOAL_CREATE, &bad, NULL),
                   "r_int32");
    T_OK(Everything_value_open(&v, NULL, SHOAL_CREATE, &good, NULL));
    expect_invalid(Everything_value_write(v, &bad), "r_int32");
    T_OK(Everything_value_read(v, &out));
    assert_int_equal(out.r_int32.count, 0);
    Everything_value_close(v);
}

/* Bytes another process wrote behind the typed API are checked when read. */
static void test_reads_check_foreign_data(void **state)
{
    (void)state;
    Everything bad;
    valid_everything(&bad);
    bad.scalars.f_string.len = 1000; /* would overflow a reader trusting it */

    shoal_value *raw;
    T_OK(shoal_value_open(&raw, "foreign", SHOAL_CREATE, &Everything_type, NULL, NULL));
    T_OK(shoal_value_write(raw, &bad));
    Everything_value *v;
    Everything out;
    T_OK(Everything_value_open(&v, "foreign", SHOAL_OPEN, NULL, NULL));
    expect_invalid(Everything_value_read(v, &out), "length 1000 over max_len 10");
    expect_invalid(Everything_value_snapshot(v, &out), "length 1000 over max_len 10");
    Everything_value_close(v);
    shoal_value_close(raw);

    shoal_queue *rq;
    shoal_queue_config cfg = {.type = &Everything_type};
    T_OK(shoal_queue_open(&rq, "foreign-q", SHOAL_CREATE, &cfg, NULL));
    T_OK(shoal_queue_put(rq, &bad, sizeof(bad), WAIT));
    Everything_queue *q;
    T_OK(Everything_queue_open(&q, "foreign-q", SHOAL_OPEN, NULL, NULL));
    expect_invalid(Everything_queue_get(q, &out, WAIT), "length 1000 over max_len 10");
    Everything_queue_close(q);
    shoal_queue_close(rq);
}

/* Encoded messages: the schema's bounds and enums are checked on protoc-c's structs,
 * nested ones included, and bytes that do not decode are rejected. */
static void test_encoded_validation(void **state)
{
    (void)state;
    Journal_queue *q;
    T_OK(Journal_queue_open(&q, "jv", SHOAL_CREATE, NULL, NULL));
    Journal j = Journal_INIT;
    char *tags[1] = {(char *)"nine char"};
    j.n_tags = 1;
    j.tags = tags;
    expect_invalid(Journal_queue_put(q, &j, WAIT),
                   "feat.Journal.tags: length 9 over max_len 8");
    j.n_tags = 0;
    int64_t ids[5] = {1, 2, 3, 4, 5};
    j.n_ids = 5;
    j.ids = ids;
    expect_invalid(Journal_queue_put(q, &j, WAIT),
                   "feat.Journal.ids: count 5 over max_count 4");
    j.n_ids = 0;
    /* feat.Level is open (proto3): a number it does not name is kept, as protobuf
     * (and the Python binding) keeps it */
    j.level = (Feat__Level)9;
    T_OK(Journal_queue_put(q, &j, WAIT));
    Journal *out;
    T_OK(Journal_queue_get(q, &out, WAIT));
    assert_int_equal(out->level, 9);
    Journal_free(out);
    j.level = FEAT__LEVEL__LOW;
    Feat__Everything every = FEAT__EVERYTHING__INIT;
    Feat__Scalars sc = FEAT__SCALARS__INIT;
    sc.f_string = (char *)"way over ten";
    every.scalars = &sc;
    j.everything = &every;
    expect_invalid(Journal_queue_put(q, &j, WAIT),
                   "feat.Scalars.f_string: length 12 over");
    sc.f_string = (char *)"fine";
    T_OK(Journal_queue_put(q, &j, WAIT));
    T_OK(Journal_queue_get(q, &out, WAIT));
    assert_string_equal(out->everything->scalars->f_string, "fine");
    Journal_free(out);

    /* garbage put behind the typed API */
    shoal_queue *raw;
    T_OK(shoal_queue_open(&raw, "jv", SHOAL_OPEN, NULL, NULL));
    T_OK(shoal_queue_put(raw, "\xff\xff\xff", 3, WAIT));
    expect_invalid(Journal_queue_get(q, &out, WAIT),
                   "feat.Journal: a message of 3 bytes does "
                   "not decode");
    assert_null(out);
    shoal_queue_close(raw);
    Journal_queue_close(q);
}

/* Strings are UTF-8, as protobuf requires: checked when set, validated when read. */
static void test_utf8_strings(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xff",             /* never in UTF-8 */
        "a\x80",            /* a lone continuation byte */
        "\xc3",             /* cut short */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* a UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
    };
    Scalars s = Scalars_INIT;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_invalid(Scalars_set_f_string(&s, bad[i]),
                       "feat.Scalars.f_string: the string is not UTF-8");
        assert_int_equal(s.f_string.len, 0); /* unchanged */
        Everything e;
        valid_everything(&e);
        memcpy(e.scalars.f_string.data, bad[i], strlen(bad[i]));
        e.scalars.f_string.len = (uint32_t)strlen(bad[i]);
        expect_invalid(Everything_validate(&e),
                       "feat.Scalars.f_string: the string is not UTF-8");
    }
    T_OK(Scalars_set_f_string(&s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")); /* é€😀 */
    assert_int_equal(s.f_string.len, 9);
    /* bytes fields hold anything */
    T_OK(Scalars_set_f_bytes(&s, "\xff\x00\x80", 3));

    /* another process wrote a string that is not UTF-8: the typed get refuses it */
    Everything e;
    valid_everything(&e);
    memcpy(e.scalars.f_string.data, "\xff\xfe", 2);
    e.scalars.f_string.len = 2;
    shoal_queue_config cfg = {.type = &Everything_type, .capacity = 4};
    shoal_queue *raw;
    T_OK(shoal_queue_open(&raw, "utf8-q", SHOAL_CREATE, &cfg, NULL));
    T_OK(shoal_queue_put(raw, &e, sizeof(e), WAIT));
    Everything_queue *q;
    T_OK(Everything_queue_open(&q, "utf8-q", SHOAL_OPEN, NULL, NULL));
    Everything out;
    expect_invalid(Everything_queue_get(q, &out, WAIT), "the string is not UTF-8");
    Everything_queue_close(q);
    shoal_queue_close(raw);

    /* encoded messages too, on the way in and out */
    Journal_queue *jq;
    T_OK(Journal_queue_open(&jq, NULL, SHOAL_CREATE, NULL, NULL));
    Journal j = Journal_INIT;
    j.text = (char *)"caf\xe9";
    expect_invalid(Journal_queue_put(jq, &j, WAIT),
                   "feat.Journal.text: the string is not UTF-8");
    j.text = (char *)"caf\xc3\xa9";
    T_OK(Journal_queue_put(jq, &j, WAIT));
    Journal *jo;
    T_OK(Journal_queue_get(jq, &jo, WAIT));
    assert_string_equal(jo->text, "caf\xc3\xa9");
    Journal_free(jo);
    Journal_queue_close(jq);
}

/* A proto2 enum without a 0 value: an absent field's zeros are not checked, and a
 * Value made without an initial value starts at the defaults (as in Python). */
static void test_enum_without_zero(void **state)
{
    (void)state;
    Defaults d;
    memset(&d, 0, sizeof(d));
    T_OK(Defaults_validate(&d)); /* kind 0, but has_kind is false */
    d.has_kind = true;
    expect_invalid(Defaults_validate(&d), "feat2.Defaults.kind: 0 is not a value");
    Defaults_value *v;
    T_OK(Defaults_value_open(&v, NULL, SHOAL_CREATE, NULL, NULL));
    Defaults out, want = Defaults_INIT;
    T_OK(Defaults_value_read(v, &out));
    assert_int_equal(out.kind, Kind_FIRST);
    assert_int_equal(out.second, Kind_SECOND);
    assert_int_equal(out.answer, 42);
    assert_int_equal(out.name.len, 5);
    assert_int_equal(out.kind, want.kind);
    Defaults_value_close(v);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_over_max_len),
        cmocka_unit_test(test_count_over_max_count),
        cmocka_unit_test(test_unknown_enum),
        cmocka_unit_test(test_bool_and_oneof),
        cmocka_unit_test(test_puts_and_writes_reject),
        cmocka_unit_test(test_reads_check_foreign_data),
        cmocka_unit_test(test_encoded_validation),
        cmocka_unit_test(test_utf8_strings),
        cmocka_unit_test(test_enum_without_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
