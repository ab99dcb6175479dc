/*
 * test_roundtrip.c — every field type of the feature schemas through a Value, an Array,
 * a queue and a pipe, fixed and encoded, between this process and a separately exec'd
 * one that shares nothing with it but the objects it opens by name.
 */
#include <math.h>

#include "features.shoal.h"
#include "features2.shoal.h"
#include "testutil.h"

#define N_MSGS 10
#define WAIT   SHOAL_SEC(20)

/* ---- fixed messages ------------------------------------------------------------------
 */

static void fill_scalars(Scalars *s, int seed)
{
    memset(s, 0, sizeof(*s)); /* padding too: whole structs are compared */
    s->f_double = seed + 0.25;
    s->f_float = (float)seed * 1.5f;
    s->f_int32 = -1000 * seed;
    s->f_int64 = INT64_MIN + seed;
    s->f_uint32 = UINT32_MAX - (uint32_t)seed;
    s->f_uint64 = UINT64_MAX - (uint64_t)seed;
    s->f_sint32 = -7 * seed;
    s->f_sint64 = -((int64_t)seed << 40);
    s->f_fixed32 = 0xdeadbeefu ^ (uint32_t)seed;
    s->f_fixed64 = 0x0123456789abcdefULL + (uint64_t)seed;
    s->f_sfixed32 = INT32_MIN + seed;
    s->f_sfixed64 = INT64_MAX - seed;
    s->f_bool = seed & 1;
    char text[16];
    snprintf(text, sizeof(text), "s-%d", seed);
    assert_int_equal(Scalars_set_f_string(s, text), 0);
    const unsigned char bytes[7] = {0, 0xff, 1, 2, (unsigned char)seed, 0x80, 0};
    assert_int_equal(Scalars_set_f_bytes(s, bytes, sizeof(bytes)), 0);
    s->f_enum = seed % 2 ? Level_HIGH : Level_LOW;
}

static void fill_point(Point *p, int seed)
{
    p->x = seed;
    p->y = -seed;
    assert_int_equal(Point_set_label(p, seed % 2 ? "origin" : "pt"), 0);
}

static void fill_everything(Everything *e, int seed)
{
    memset(e, 0, sizeof(*e));
    fill_scalars(&e->scalars, seed);
    e->inner.mode = Everything_Inner_Mode_FAST;
    assert_int_equal(Everything_Inner_set_tag(&e->inner, "\x01\x02\x03", 3), 0);
    fill_point(&e->origin, seed);
    e->color = Color_BLUE; /* a negative enum value */
    e->r_int32.count = 3;
    for (int i = 0; i < 3; i++)
        e->r_int32.items[i] = seed * 10 + i;
    e->r_double.count = 2;
    e->r_double.items[0] = -0.0;
    e->r_double.items[1] = 1e300;
    e->r_bool.count = 5;
    for (int i = 0; i < 5; i++)
        e->r_bool.items[i] = (i + seed) % 2;
    const char *words[3] = {"a", "bb", "cccc"};
    e->r_string.count = 3;
    for (int i = 0; i < 3; i++) {
        e->r_string.items[i].len = (uint32_t)strlen(words[i]);
        memcpy(e->r_string.items[i].data, words[i], strlen(words[i]));
    }
    e->r_bytes.count = 2;
    e->r_bytes.items[0].len = 2;
    e->r_bytes.items[0].data[0] = 0xfe;
    e->r_bytes.items[0].data[1] = (uint8_t)seed;
    e->r_bytes.items[1].len = 0;
    e->r_point.count = 2;
    fill_point(&e->r_point.items[0], seed + 1);
    fill_point(&e->r_point.items[1], seed + 2);
    e->r_level.count = 2;
    e->r_level.items[0] = Level_TOP;
    e->r_level.items[1] = Level_LEVEL_UNSET;
    switch (seed % 4) {
    case 0:
        e->choice_case = Everything_choice_c_int;
        e->choice.c_int = -(int64_t)seed;
        break;
    case 1:
        e->choice_case = Everything_choice_c_text;
        e->choice.c_text.len = 9;
        memcpy(e->choice.c_text.data, "ninechars", 9);
        break;
    case 2:
        e->choice_case = Everything_choice_c_inner;
        e->choice.c_inner.mode = Everything_Inner_Mode_FAST;
        e->choice.c_inner.tag.len = 1;
        e->choice.c_inner.tag.data[0] = (uint8_t)seed;
        break;
    default:
        e->choice_case = Everything_choice_c_double;
        e->choice.c_double = seed / 3.0;
        break;
    }
    e->has_maybe = true;
    e->maybe = seed;
    e->has_maybe_text = seed & 1;
    if (seed & 1)
        assert_int_equal(Everything_set_maybe_text(e, "opt"), 0);
    e->default_ = (uint32_t)seed * 3;
    e->small.flag = true;
    assert_int_equal(Everything_validate(e), 0);
}

/* Whether e holds exactly what fill_everything(seed) makes, every byte of it. */
static bool is_everything(const Everything *e, int seed)
{
    Everything want;
    fill_everything(&want, seed);
    return memcmp(e, &want, sizeof(want)) == 0;
}

/* ---- encoded messages: protoc-c structs ------------------------------------------- */

/* A Journal and everything it points to, in one place. */
struct journal_store {
    Journal j;
    Feat__Everything every;
    Feat__Scalars scalars;
    char text[400];
    char tag_text[3][9];
    char *tags[3];
    Feat__Journal__CountsEntry entries[2], *entry_ptrs[2];
    char keys[2][8];
    int32_t r_int32[3];
    int64_t ids[4];
    char f_string[16];
    uint8_t bytes[3];
};

static Journal *make_journal(struct journal_store *st, int seed)
{
    memset(st, 0, sizeof(*st));
    feat__journal__init(&st->j);
    feat__everything__init(&st->every);
    feat__scalars__init(&st->scalars);
    /* far longer than any fixed slot would hold: this one is why Journal is encoded */
    for (size_t i = 0; i < sizeof(st->text) - 1; i++)
        st->text[i] = (char)('a' + (i + (size_t)seed) % 26);
    st->j.text = st->text;
    st->j.n_tags = 3;
    st->j.tags = st->tags;
    for (int i = 0; i < 3; i++) {
        snprintf(st->tag_text[i], sizeof(st->tag_text[i]), "t%d-%d", i, seed % 1000);
        st->tags[i] = st->tag_text[i];
    }
    st->j.n_counts = 2;
    st->j.counts = st->entry_ptrs;
    for (int i = 0; i < 2; i++) {
        feat__journal__counts_entry__init(&st->entries[i]);
        snprintf(st->keys[i], sizeof(st->keys[i]), "k%d", i);
        st->entries[i].key = st->keys[i];
        st->entries[i].value = seed * 100 + i;
        st->entry_ptrs[i] = &st->entries[i];
    }
    snprintf(st->f_string, sizeof(st->f_string), "j%d", seed % 100000);
    st->scalars.f_string = st->f_string;
    st->scalars.f_int64 = INT64_MIN + seed;
    st->scalars.f_enum = FEAT__LEVEL__HIGH;
    st->scalars.f_double = seed / 7.0;
    st->scalars.f_bool = 1;
    st->scalars.f_sint32 = -seed;
    st->scalars.f_fixed64 = UINT64_MAX - (uint64_t)seed;
    st->bytes[0] = 0;
    st->bytes[1] = 0xff;
    st->bytes[2] = (uint8_t)seed;
    st->scalars.f_bytes.len = 3;
    st->scalars.f_bytes.data = st->bytes;
    st->every.scalars = &st->scalars;
    st->every.n_r_int32 = 3;
    st->every.r_int32 = st->r_int32;
    for (int i = 0; i < 3; i++)
        st->r_int32[i] = seed + i;
    st->j.everything = &st->every;
    st->j.level = FEAT__LEVEL__LOW;
    st->j.n_ids = 4;
    st->j.ids = st->ids;
    for (int i = 0; i < 4; i++)
        st->ids[i] = (int64_t)seed << (8 * i);
    return &st->j;
}

static bool is_journal(const Journal *j, int seed)
{
    struct journal_store want;
    const Journal *w = make_journal(&want, seed);
    if (strcmp(j->text, w->text) || j->n_tags != 3 || j->n_counts != 2 || j->n_ids != 4 ||
        j->level != w->level || !j->everything || !j->everything->scalars)
        return false;
    for (int i = 0; i < 3; i++)
        if (strcmp(j->tags[i], w->tags[i]))
            return false;
    for (int i = 0; i < 2; i++)
        if (strcmp(j->counts[i]->key, w->counts[i]->key) ||
            j->counts[i]->value != w->counts[i]->value)
            return false;
    for (int i = 0; i < 4; i++)
        if (j->ids[i] != w->ids[i])
            return false;
    const Feat__Everything *e = j->everything;
    return e->n_r_int32 == 3 && !memcmp(e->r_int32, w->everything->r_int32, 3 * 4) &&
           !strcmp(e->scalars->f_string, w->everything->scalars->f_string) &&
           e->scalars->f_int64 == w->everything->scalars->f_int64 &&
           e->scalars->f_enum == FEAT__LEVEL__HIGH &&
           e->scalars->f_double == w->everything->scalars->f_double &&
           e->scalars->f_bool && e->scalars->f_sint32 == -seed &&
           e->scalars->f_fixed64 == UINT64_MAX - (uint64_t)seed &&
           e->scalars->f_bytes.len == 3 &&
           !memcmp(e->scalars->f_bytes.data, want.bytes, 3);
}

/* ---- the other process --------------------------------------------------------------
 */

/* Checks the Value and Array the parent made, then writes new contents. */
static int child_value(void)
{
    Everything_value *v;
    Everything e;
    if (Everything_value_open(&v, "ev", SHOAL_OPEN, NULL, NULL))
        return 10;
    if (Everything_value_read(v, &e) || !is_everything(&e, 1))
        return 11;
    fill_everything(&e, 2);
    if (Everything_value_write(v, &e))
        return 12;
    Everything_value_close(v);

    Everything_array *a;
    if (Everything_array_open(&a, "ea", SHOAL_OPEN, 0, NULL, NULL) ||
        Everything_array_len(a) != 3)
        return 20;
    for (int i = 0; i < 3; i++)
        if (Everything_array_get(a, (size_t)i, &e) || !is_everything(&e, 10 + i))
            return 21;
    fill_everything(&e, 20);
    if (Everything_array_set(a, 1, &e))
        return 22;
    Everything_array_close(a);
    return 0;
}

static int child_queue(void)
{
    Everything_queue *q;
    if (Everything_queue_open(&q, "eq", SHOAL_OPEN, NULL, NULL))
        return 10;
    for (int i = 0; i < N_MSGS; i++) {
        Everything e;
        fill_everything(&e, 100 + i);
        if (Everything_queue_put(q, &e, WAIT))
            return 11;
    }
    Everything_queue_shutdown(q);
    Everything_queue_close(q);
    return 0;
}

/* Echoes Scalars back with the seed plus one, until the parent closes its end. */
static int child_pipe(void)
{
    Scalars_pipe *p;
    Scalars s, want;
    if (Scalars_pipe_open(&p, "sp", 1, SHOAL_OPEN, NULL, NULL))
        return 10;
    for (int i = 0;; i++) {
        int rc = Scalars_pipe_recv(p, &s, WAIT);
        if (rc == SHOAL_EEOF)
            break;
        fill_scalars(&want, 200 + i);
        if (rc || memcmp(&s, &want, sizeof(s)))
            return 11;
        fill_scalars(&s, 201 + i);
        if (Scalars_pipe_send(p, &s, WAIT))
            return 12;
    }
    Scalars_pipe_close(p);
    return 0;
}

static int child_journal(void)
{
    Journal_queue *q;
    struct journal_store st;
    if (Journal_queue_open(&q, "jq", SHOAL_OPEN, NULL, NULL))
        return 10;
    for (int i = 0; i < N_MSGS; i++)
        if (Journal_queue_put(q, make_journal(&st, 300 + i), WAIT))
            return 11;
    Journal_queue_shutdown(q);
    Journal_queue_close(q);

    Journal_pipe *p;
    Journal *in;
    if (Journal_pipe_open(&p, "jp", 1, SHOAL_OPEN, NULL, NULL))
        return 20;
    if (Journal_pipe_recv(p, &in, WAIT) || !is_journal(in, 400))
        return 21;
    Journal_free(in);
    if (Journal_pipe_send(p, make_journal(&st, 401), WAIT))
        return 22;
    Journal_pipe_close(p);
    return 0;
}

static int run_child(const char *role)
{
    if (!strcmp(role, "value"))
        return child_value();
    if (!strcmp(role, "queue"))
        return child_queue();
    if (!strcmp(role, "pipe"))
        return child_pipe();
    if (!strcmp(role, "journal"))
        return child_journal();
    return 99;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_value_and_array_across_processes(void **state)
{
    (void)state;
    Everything e;
    Everything_value *v;
    fill_everything(&e, 1);
    T_OK(Everything_value_open(&v, "ev", SHOAL_CREATE, &e, NULL));
    Everything init[3];
    for (int i = 0; i < 3; i++)
        fill_everything(&init[i], 10 + i);
    Everything_array *a;
    T_OK(Everything_array_open(&a, "ea", SHOAL_CREATE, 3, init, NULL));

    assert_int_equal(t_wait(t_spawn_self("value", NULL)), 0);

    T_OK(Everything_value_read(v, &e));
    assert_true(is_everything(&e, 2));
    T_OK(Everything_value_snapshot(v, &e));
    assert_true(is_everything(&e, 2));
    Everything all[3];
    T_OK(Everything_array_read(a, 0, 3, all));
    assert_true(is_everything(&all[0], 10));
    assert_true(is_everything(&all[1], 20));
    assert_true(is_everything(&all[2], 12));

    /* in-place update through modify/commit */
    Everything *m = Everything_value_modify(v);
    m->scalars.f_int32 = 77;
    T_OK(Everything_value_commit(v, m));
    T_OK(Everything_value_read(v, &e));
    assert_int_equal(e.scalars.f_int32, 77);
    Everything_value_close(v);
    Everything_array_close(a);
}

static void test_fixed_queue_across_processes(void **state)
{
    (void)state;
    Everything_queue *q;
    shoal_queue_config cfg = {.capacity = 4}; /* fewer slots than messages: real flow */
    T_OK(Everything_queue_open(&q, "eq", SHOAL_CREATE, &cfg, NULL));
    pid_t child = t_spawn_self("queue", NULL);
    for (int i = 0; i < N_MSGS; i++) {
        Everything e;
        T_OK(Everything_queue_get(q, &e, WAIT));
        assert_true(is_everything(&e, 100 + i));
    }
    Everything e;
    assert_int_equal(Everything_queue_get(q, &e, WAIT), SHOAL_EEOF);
    assert_int_equal(t_wait(child), 0);
    Everything_queue_close(q);
}

static void test_fixed_queue_loan_peek_batch(void **state)
{
    (void)state;
    Everything_queue *q;
    T_OK(Everything_queue_open(&q, NULL, SHOAL_CREATE, NULL, NULL));
    Everything *slot;
    T_OK(Everything_queue_loan(q, &slot, WAIT));
    fill_everything(slot, 5);
    T_OK(Everything_queue_commit(q, slot));
    const Everything *in;
    T_OK(Everything_queue_peek(q, &in, WAIT));
    assert_true(is_everything(in, 5));
    T_OK(Everything_queue_release(q, in));

    Everything batch[3], out[3];
    for (int i = 0; i < 3; i++)
        fill_everything(&batch[i], 30 + i);
    size_t done = 0;
    T_OK(Everything_queue_put_batch(q, batch, 3, &done, WAIT));
    assert_int_equal(done, 3);
    T_OK(Everything_queue_get_batch(q, out, 3, &done, WAIT));
    assert_int_equal(done, 3);
    for (int i = 0; i < 3; i++)
        assert_true(is_everything(&out[i], 30 + i));
    assert_int_equal(Everything_queue_try_get(q, out), SHOAL_EAGAIN);
    Everything_queue_close(q);
}

static void test_fixed_pipe_across_processes(void **state)
{
    (void)state;
    Scalars_pipe *p;
    T_OK(Scalars_pipe_open(&p, "sp", 0, SHOAL_CREATE, NULL, NULL));
    pid_t child = t_spawn_self("pipe", NULL);
    for (int i = 0; i < N_MSGS; i++) {
        Scalars s, want;
        fill_scalars(&s, 200 + i);
        T_OK(Scalars_pipe_send(p, &s, WAIT));
        T_OK(Scalars_pipe_recv(p, &s, WAIT));
        fill_scalars(&want, 201 + i);
        assert_memory_equal(&s, &want, sizeof(s));
    }
    Scalars_pipe_close(p);
    assert_int_equal(t_wait(child), 0);
}

static void test_encoded_queue_and_pipe_across_processes(void **state)
{
    (void)state;
    Journal_queue *q;
    shoal_queue_config cfg = {.capacity = 4, .max_msg = 2048};
    T_OK(Journal_queue_open(&q, "jq", SHOAL_CREATE, &cfg, NULL));
    Journal_pipe *p;
    T_OK(Journal_pipe_open(&p, "jp", 0, SHOAL_CREATE, &cfg, NULL));
    pid_t child = t_spawn_self("journal", NULL);
    for (int i = 0; i < N_MSGS; i++) {
        Journal *j;
        T_OK(Journal_queue_get(q, &j, WAIT));
        assert_true(is_journal(j, 300 + i));
        Journal_free(j);
    }
    Journal *j = NULL;
    assert_int_equal(Journal_queue_get(q, &j, WAIT), SHOAL_EEOF);
    assert_null(j);

    struct journal_store st;
    T_OK(Journal_pipe_send(p, make_journal(&st, 400), WAIT));
    T_OK(Journal_pipe_recv(p, &j, WAIT));
    assert_true(is_journal(j, 401));
    Journal_free(j);
    assert_int_equal(t_wait(child), 0);
    Journal_pipe_close(p);
    Journal_queue_close(q);
}

/* A message that packs to nothing (all defaults) and one forced to be encoded. */
static void test_encoded_empty_and_forced(void **state)
{
    (void)state;
    Tiny_queue *q;
    T_OK(Tiny_queue_open(&q, NULL, SHOAL_CREATE, NULL, NULL));
    Tiny t = Tiny_INIT, *out;
    T_OK(Tiny_queue_put(q, &t, WAIT));
    t.v = -5;
    T_OK(Tiny_queue_put(q, &t, WAIT));
    T_OK(Tiny_queue_get(q, &out, WAIT));
    assert_int_equal(out->v, 0);
    Tiny_free(out);
    T_OK(Tiny_queue_get(q, &out, WAIT));
    assert_int_equal(out->v, -5);
    Tiny_free(out);
    assert_int_equal(Tiny_queue_try_get(q, &out), SHOAL_EAGAIN);
    Tiny_queue_close(q);
}

static void test_proto2_defaults(void **state)
{
    (void)state;
    Defaults d = Defaults_INIT;
    assert_int_equal(d.answer, 42);
    assert_false(d.has_answer);
    assert_true(d.big == INT64_MIN);
    assert_true(d.ubig == UINT64_MAX);
    assert_true(d.ratio == 0.5f);
    assert_true(isinf(d.top) && d.top > 0);
    assert_true(isinf(d.bottom) && d.bottom < 0);
    assert_true(isnan(d.missing));
    assert_true(d.on);
    assert_int_equal(d.name.len, 5);
    assert_memory_equal(d.name.data, "shoal", 5);
    assert_int_equal(d.magic.len, 3);
    assert_memory_equal(d.magic.data, "\x01\xffq", 3);
    assert_int_equal(d.kind, Kind_FIRST); /* proto2: the first value */
    assert_int_equal(d.second, Kind_SECOND);
    T_OK(Defaults_validate(&d));

    /* the setter of an optional string sets its presence flag too */
    T_OK(Defaults_set_name(&d, "ipc"));
    assert_true(d.has_name);

    Defaults_value *v;
    Defaults back;
    T_OK(Defaults_value_open(&v, NULL, SHOAL_CREATE, &d, NULL));
    T_OK(Defaults_value_read(v, &back));
    assert_memory_equal(&back.name, &d.name, sizeof(d.name));
    assert_true(isinf(back.top));
    Defaults_value_close(v);
}

static void test_empty_message(void **state)
{
    (void)state;
    Empty e = Empty_INIT;
    Empty_value *v;
    T_OK(Empty_value_open(&v, NULL, SHOAL_CREATE, &e, NULL));
    T_OK(Empty_value_read(v, &e));
    Empty_value_close(v);
    assert_int_equal(sizeof(Empty), 1);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1)
        return run_child(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_and_array_across_processes),
        cmocka_unit_test(test_fixed_queue_across_processes),
        cmocka_unit_test(test_fixed_queue_loan_peek_batch),
        cmocka_unit_test(test_fixed_pipe_across_processes),
        cmocka_unit_test(test_encoded_queue_and_pipe_across_processes),
        cmocka_unit_test(test_encoded_empty_and_forced),
        cmocka_unit_test(test_proto2_defaults),
        cmocka_unit_test(test_empty_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
