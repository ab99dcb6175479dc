/*
 * bench_pb.c — the protobuf form of a fixed message: shoal's table-driven encoder and
 * decoder (Order_to_pb / Order_from_pb, validation included) against protobuf-c's own
 * generated pack and unpack of the same message, in one process, no I/O.
 *
 *   bench_pb CASE SIZE COUNT    (SIZE is ignored: the message is the orders example's)
 *
 * Cases: shoal_to_pb, shoal_from_pb, protobuf_c_pack, protobuf_c_unpack (unpack and
 * free, as a reader of protoc-c messages must). Each prints ns_per_op.
 */
#include "common.h"
#include "orders.shoal.h"
#include "pb_bench.shoal.h"

static void make_order(Order *o)
{
    *o = (Order)Order_INIT;
    o->id = 123456789;
    Order_set_symbol(o, "NVDA");
    o->price = 101.25;
    o->quantity = 300;
    o->side = Side_BUY;
    o->fills.count = 3;
    for (uint32_t k = 0; k < 3; k++)
        o->fills.items[k] = 100;
}

static volatile size_t sink;

static int64_t run(const char *c, uint64_t count, const Order *o, const uint8_t *bytes,
                   size_t n)
{
    uint8_t buf[256];
    size_t len = 0;
    Order out;
    Orders__Order pc = ORDERS__ORDER__INIT;
    uint32_t fills[4] = {100, 100, 100};
    char sym[] = "NVDA";
    pc.id = o->id;
    pc.symbol = sym;
    pc.price = o->price;
    pc.quantity = o->quantity;
    pc.side = ORDERS__SIDE__BUY;
    pc.n_fills = 3;
    pc.fills = fills;
    uint64_t warm = BENCH_WARM(count);
    int64_t t0 = 0;
    for (uint64_t i = 0; i < warm + count; i++) {
        if (i == warm)
            t0 = now_ns();
        if (!strcmp(c, "shoal_to_pb")) {
            if (Order_to_pb(o, buf, sizeof(buf), &len))
                bfail("%s: %s", c, shoal_errdetail());
        } else if (!strcmp(c, "shoal_from_pb")) {
            if (Order_from_pb(&out, bytes, n))
                bfail("%s: %s", c, shoal_errdetail());
            len = out.fills.count;
        } else if (!strcmp(c, "protobuf_c_pack")) {
            len = orders__order__pack(&pc, buf);
        } else {
            Orders__Order *u = orders__order__unpack(NULL, n, bytes);
            if (!u)
                bfail("%s: unpack failed", c);
            len = u->n_fills;
            orders__order__free_unpacked(u, NULL);
        }
        sink = len;
    }
    return now_ns() - t0;
}

int main(int argc, char **argv)
{
    static const char *const cases[] = {"shoal_to_pb", "shoal_from_pb", "protobuf_c_pack",
                                        "protobuf_c_unpack"};
    struct bargs b = parse_args(
        argc, argv, "shoal_to_pb shoal_from_pb protobuf_c_pack protobuf_c_unpack");
    int known = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        known |= !strcmp(cases[i], b.name);
    if (!known) {
        fprintf(stderr, "bench_pb: unknown case %s\n", b.name);
        return 2;
    }
    Order o;
    make_order(&o);
    uint8_t bytes[256];
    size_t n = 0;
    if (Order_to_pb(&o, bytes, sizeof(bytes), &n))
        bfail("encode: %s", shoal_errdetail());
    report_op(b.name, b.count, run(b.name, b.count, &o, bytes, n));
    return 0;
}
