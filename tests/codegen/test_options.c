/*
 * test_options.c — reading custom options from protobuf-c's unknown fields, as the
 * schema compiler receives them: varints and length-prefixed strings, repeated
 * entries of one tag merged (the last wins, protobuf's rule for scalars), malformed
 * entries refused.
 */
#include <protobuf-c/protobuf-c.h>

#include "model.h"
#include "testutil.h"

static ProtobufCMessageUnknownField entry(uint32_t tag, ProtobufCWireType wt,
                                          const void *data, size_t len)
{
    ProtobufCMessageUnknownField f;
    f.tag = tag;
    f.wire_type = wt;
    f.len = len;
    f.data = (uint8_t *)data;
    return f;
}

static ProtobufCMessage with(ProtobufCMessageUnknownField *fields, unsigned n)
{
    ProtobufCMessage m;
    memset(&m, 0, sizeof(m));
    m.n_unknown_fields = n;
    m.unknown_fields = fields;
    return m;
}

static void test_varint_options(void **state)
{
    (void)state;
    const uint8_t eight[] = {8}, three_hundred[] = {0xac, 0x02}, twelve[] = {12};
    ProtobufCMessageUnknownField f[] = {
        entry(SG_OPT_MAX_LEN, PROTOBUF_C_WIRE_TYPE_VARINT, eight, 1),
        entry(SG_OPT_MAX_COUNT, PROTOBUF_C_WIRE_TYPE_VARINT, three_hundred, 2),
        entry(SG_OPT_MAX_LEN, PROTOBUF_C_WIRE_TYPE_VARINT, twelve, 1), /* repeated tag */
    };
    ProtobufCMessage m = with(f, 3);
    uint64_t v = 0;
    assert_int_equal(sg_option_varint(&m, SG_OPT_MAX_LEN, &v), 1);
    assert_int_equal(v, 12);
    assert_int_equal(sg_option_varint(&m, SG_OPT_MAX_COUNT, &v), 1);
    assert_int_equal(v, 300);
    assert_int_equal(sg_option_varint(&m, SG_OPT_FIXED, &v), 0);
    assert_int_equal(sg_option_varint(NULL, SG_OPT_FIXED, &v), 0);
}

static void test_malformed_varints(void **state)
{
    (void)state;
    const uint8_t unterminated[] = {0x80, 0x80};
    ProtobufCMessageUnknownField f[] = {
        entry(SG_OPT_MAX_LEN, PROTOBUF_C_WIRE_TYPE_VARINT, unterminated, 2),
        entry(SG_OPT_MAX_COUNT, PROTOBUF_C_WIRE_TYPE_32BIT, "\1\0\0\0", 4),
    };
    ProtobufCMessage m = with(f, 2);
    uint64_t v;
    assert_int_equal(sg_option_varint(&m, SG_OPT_MAX_LEN, &v), -1);
    assert_int_equal(sg_option_varint(&m, SG_OPT_MAX_COUNT, &v), -1);
}

static void test_string_options(void **state)
{
    (void)state;
    /* a length-delimited entry's data starts with its length prefix */
    const uint8_t first[] = {2, 'x', '_'}, last[] = {4, 'o', 'r', 'd', '_'};
    const uint8_t short_data[] = {9, 'a'};
    ProtobufCMessageUnknownField f[] = {
        entry(SG_OPT_C_PREFIX, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, first,
              sizeof(first)),
        entry(SG_OPT_C_PREFIX, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, last, sizeof(last)),
        entry(SG_OPT_MAX_LEN, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, short_data, 2),
    };
    ProtobufCMessage m = with(f, 3);
    const char *s = NULL;
    assert_int_equal(sg_option_string(&m, SG_OPT_C_PREFIX, &s), 1);
    assert_string_equal(s, "ord_");
    assert_int_equal(sg_option_string(&m, SG_OPT_MAX_LEN, &s), -1); /* length past end */
    uint64_t v;
    assert_int_equal(sg_option_varint(&m, SG_OPT_C_PREFIX, &v), -1); /* wrong wire type */
    sg_free_all();
}

/* protoc-c's names, which generated code uses for encoded messages. */
static void test_protoc_c_names(void **state)
{
    (void)state;
    assert_string_equal(sg_pbc_type("orders.Order.In_ner"), "Orders__Order__InNer");
    assert_string_equal(sg_pbc_lower("orders.OrderItem.MEntry"),
                        "orders__order_item__mentry");
    assert_string_equal(sg_pbc_upper("feat.Journal.CountsEntry"),
                        "FEAT__JOURNAL__COUNTS_ENTRY");
    assert_string_equal(sg_pbc_type("Top"), "Top");
    sg_free_all();
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_options),
        cmocka_unit_test(test_malformed_varints),
        cmocka_unit_test(test_string_options),
        cmocka_unit_test(test_protoc_c_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
