/*
 * test_layout.c — the layout hash algorithm as docs/schema.md writes it down, the
 * layout descriptor a segment header stores, and decoding values through it (what
 * `shoal inspect` shows), including from damaged descriptors.
 */
#include "features.shoal.h"
#include "internal.h"
#include "testutil.h"

static uint64_t fnv(const char *text)
{
    return shoal_fnv1a(SHOAL_FNV_OFFSET, text, strlen(text));
}

/* Recomputes hashes from canonical texts written by hand, as a binding would. */
static void test_layout_hash_algorithm(void **state)
{
    (void)state;
    const char *point = "feat.common.Point{1:x:int32@0+4;2:y:int32@4+4;"
                        "3:label:string[6]@8+12;}size=20,align=4";
    assert_true(fnv(point) == Point_LAYOUT_HASH);
    assert_true(Point_type.layout_hash == Point_LAYOUT_HASH);

    char inner[160];
    snprintf(inner, sizeof(inner),
             "feat.Everything.Inner{1:mode:enum(feat.Everything.Inner.Mode)@0+4;"
             "2:tag:bytes[3]@4+8;}size=12,align=4");
    assert_true(fnv(inner) == Everything_Inner_LAYOUT_HASH);

    assert_true(fnv("feat.Empty{}size=1,align=1") == Empty_LAYOUT_HASH);
    assert_true(fnv("feat.int8ish{1:flag:bool@0+1;}size=1,align=1") ==
                int8ish_LAYOUT_HASH);
    /* nested messages enter by name and hash; repeated fields, has_ flags, a oneof */
    char every[1200];
    unsigned long long sc = Scalars_LAYOUT_HASH, in = Everything_Inner_LAYOUT_HASH,
                       pt = Point_LAYOUT_HASH, i8 = int8ish_LAYOUT_HASH;
    snprintf(every, sizeof(every),
             "feat.Everything{1:scalars:feat.Scalars#%016llx@0+128;"
             "2:inner:feat.Everything.Inner#%016llx@128+12;"
             "3:origin:feat.common.Point#%016llx@140+20;"
             "4:color:enum(feat.common.Color)@160+4;5:r_int32:int32*3@164+16;"
             "6:r_double:float64*2@184+24;7:r_bool:bool*5@208+12;"
             "8:r_string:string[4]*3@220+28;9:r_bytes:bytes[2]*2@248+20;"
             "10:r_point:feat.common.Point#%016llx*2@268+44;"
             "11:r_level:enum(feat.Level)*2@312+12;"
             "0:choice:oneof(12:c_int:int64@4+8;13:c_text:string[9]@4+16;"
             "14:c_inner:feat.Everything.Inner#%016llx@4+12;15:c_double:float64@4+8;)"
             "@324+20;0:has_maybe:bool@344+1;16:maybe:int32@348+4;"
             "0:has_maybe_text:bool@352+1;17:maybe_text:string[5]@356+12;"
             "18:default:uint32@368+4;19:small:feat.int8ish#%016llx@372+1;}"
             "size=376,align=8",
             sc, in, pt, pt, in, i8);
    assert_true(fnv(every) == Everything_LAYOUT_HASH);
    assert_int_equal(Everything_type.size, sizeof(Everything));
    assert_int_equal(Everything_type.align, _Alignof(Everything));
}

static void check_same_type(const shoal_type *a, const shoal_type *b, int depth)
{
    assert_true(depth < 8);
    assert_string_equal(a->name, b->name);
    assert_true(a->layout_hash == b->layout_hash);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->align, b->align);
    assert_int_equal(a->nfields, b->nfields);
    for (uint32_t i = 0; i < a->nfields; i++) {
        const shoal_field *x = &a->fields[i], *y = &b->fields[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->number, y->number);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->offset, y->offset);
        assert_int_equal(x->size, y->size);
        assert_int_equal(x->max_count, y->max_count);
        assert_int_equal(x->max_len, y->max_len);
        assert_true(!x->type == !y->type);
        if (x->type)
            check_same_type(x->type, y->type, depth + 1);
    }
}

static void test_descriptor_round_trip(void **state)
{
    (void)state;
    unsigned char buf[4096];
    size_t n = shoal__layout_encode(&Everything_type, buf, SHOAL_DESC_MAX);
    assert_true(n > 0 && n <= SHOAL_DESC_MAX);
    shoal_type *t;
    T_OK(shoal__layout_decode(buf, n, &t));
    check_same_type(&Everything_type, t, 0);
    free(t);
    /* too small a buffer: no descriptor rather than a partial one */
    assert_int_equal(shoal__layout_encode(&Everything_type, buf, 40), 0);
    /* scalars have none */
    assert_int_equal(shoal__layout_encode(shoal_typecode('i'), buf, sizeof(buf)), 0);
}

static char *print_to_string(const unsigned char *desc, size_t n, const void *data)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    int rc = shoal__layout_print(desc, n, data, f);
    fclose(f);
    if (rc) {
        free(text);
        return NULL;
    }
    return text;
}

static void expect_contains(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("\"%s\" not in:\n%s", want, text);
}

static void test_print_through_descriptor(void **state)
{
    (void)state;
    Everything e = Everything_INIT;
    T_OK(Scalars_set_f_string(&e.scalars, "hi \"x\""));
    e.scalars.f_int64 = -42;
    e.scalars.f_enum = Level_HIGH;
    e.r_int32.count = 2;
    e.r_int32.items[0] = 7;
    e.r_int32.items[1] = -8;
    e.r_point.count = 1;
    e.r_point.items[0].x = 3;
    T_OK(Point_set_label(&e.r_point.items[0], "p"));
    e.choice_case = Everything_choice_c_text;
    e.choice.c_text.len = 2;
    memcpy(e.choice.c_text.data, "ok", 2);
    e.has_maybe = true;
    e.maybe = 9;
    unsigned char desc[4096];
    size_t n = shoal__layout_encode(&Everything_type, desc, sizeof(desc));
    char *text = print_to_string(desc, n, &e);
    assert_non_null(text);
    expect_contains(text, "{scalars: {f_double: 0, ");
    expect_contains(text, "f_int64: -42, ");
    expect_contains(text, "f_string: \"hi \\\"x\\\"\", f_bytes: \"\", f_enum: 2}");
    expect_contains(text, "r_int32: [7, -8]");
    expect_contains(text, "r_point: [{x: 3, y: 0, label: \"p\"}]");
    expect_contains(text, "c_text: \"ok\"");
    expect_contains(text, "has_maybe: true, maybe: 9");
    free(text);

    /* values that break the layout are shown, not trusted */
    e.r_int32.count = 1000;
    e.scalars.f_string.len = 99;
    e.choice_case = 77;
    text = print_to_string(desc, n, &e);
    assert_non_null(text);
    expect_contains(text, "f_string: <length 99 over max_len 10>");
    expect_contains(text, "r_int32: <count 1000 over max_count 3>");
    expect_contains(text, "choice: <unknown case 77>");
    free(text);
}

/* A damaged header must not crash the reader: every descriptor either decodes into
 * something consistent or is refused. */
static void test_damaged_descriptors(void **state)
{
    (void)state;
    unsigned char desc[4096], bad[4096];
    size_t n = shoal__layout_encode(&Everything_type, desc, sizeof(desc));
    assert_true(n > 0);
    Everything e = Everything_INIT;
    shoal_type *t;
    assert_int_equal(shoal__layout_decode(desc, n - 1, &t), SHOAL_ECORRUPT);
    assert_int_equal(shoal__layout_decode(desc, 2, &t), SHOAL_ECORRUPT);
    memcpy(bad, desc, n);
    bad[2] = 9; /* version */
    assert_int_equal(shoal__layout_decode(bad, n, &t), SHOAL_ECORRUPT);
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        memcpy(bad, desc, n);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            bad[3 + (seed >> 8) % (n - 3)] = (unsigned char)(seed >> 16);
        }
        char *text = print_to_string(bad, n, &e); /* ASan watches the reads */
        free(text);
    }
}

/* A segment of a generated type stores its descriptor; `shoal inspect` decodes it. */
static void test_segment_header_and_inspect(void **state)
{
    (void)state;
    Everything e = Everything_INIT;
    T_OK(Scalars_set_f_string(&e.scalars, "inspected"));
    e.r_int32.count = 1;
    e.r_int32.items[0] = 31337;
    Everything_value *v;
    T_OK(Everything_value_open(&v, "inspect-me", SHOAL_CREATE, &e, NULL));

    char path[600];
    const char *domain = getenv("SHOAL_DOMAIN");
    snprintf(path, sizeof(path), "%s/%s/inspect-me", t_root, domain ? domain : "default");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char page[SHOAL_HEADER_SIZE];
    assert_int_equal(fread(page, 1, sizeof(page), f), sizeof(page));
    fclose(f);
    const struct shoal__header *h = (const struct shoal__header *)page;
    assert_true(h->desc_size > 0);
    shoal_type *t;
    T_OK(shoal__layout_decode(h->desc, h->desc_size, &t));
    check_same_type(&Everything_type, t, 0);
    free(t);

    char out[600];
    snprintf(out, sizeof(out), "%s/inspect.out", t_root);
    int rc = t_system("'%s' inspect inspect-me >'%s' 2>&1", SHOAL_CLI_PATH, out);
    f = fopen(out, "r");
    assert_non_null(f);
    char text[16384];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    text[len] = '\0';
    fclose(f);
    assert_int_equal(rc, 0);
    expect_contains(text, "feat.Everything");
    expect_contains(text, "f_string: \"inspected\"");
    expect_contains(text, "r_int32: [31337]");
    Everything_value_close(v);

    /* an Array: every element decoded */
    Point pts[2] = {Point_INIT, Point_INIT};
    pts[1].x = 5;
    T_OK(Point_set_label(&pts[1], "second"));
    Point_array *a;
    T_OK(Point_array_open(&a, "points", SHOAL_CREATE, 2, pts, NULL));
    rc = t_system("'%s' inspect points >'%s' 2>&1", SHOAL_CLI_PATH, out);
    f = fopen(out, "r");
    assert_non_null(f);
    len = fread(text, 1, sizeof(text) - 1, f);
    text[len] = '\0';
    fclose(f);
    assert_int_equal(rc, 0);
    expect_contains(text, "{x: 0, y: 0, label: \"\"}, {x: 5, y: 0, label: \"second\"}");
    Point_array_close(a);

    /* a queue: the oldest waiting elements decoded */
    Point_queue *q;
    T_OK(Point_queue_open(&q, "point-queue", SHOAL_CREATE, NULL, NULL));
    T_OK(Point_queue_put(q, &pts[1], SHOAL_NOWAIT));
    rc = t_system("'%s' inspect point-queue >'%s' 2>&1", SHOAL_CLI_PATH, out);
    f = fopen(out, "r");
    assert_non_null(f);
    len = fread(text, 1, sizeof(text) - 1, f);
    text[len] = '\0';
    fclose(f);
    assert_int_equal(rc, 0);
    expect_contains(text, "[0]         {x: 5, y: 0, label: \"second\"}");
    Point_queue_close(q);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_hash_algorithm),
        cmocka_unit_test(test_descriptor_round_trip),
        cmocka_unit_test(test_print_through_descriptor),
        cmocka_unit_test(test_damaged_descriptors),
        cmocka_unit_test(test_segment_header_and_inspect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
