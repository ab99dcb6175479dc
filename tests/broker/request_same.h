/*
 * request_same.h — whether two decodings of a broker Request are the same message:
 * field by field, values by kind and bits (a double's bits, a string's bytes up to
 * its terminator, a bytes field's length and bytes, whatever holds them), unknown
 * fields left out (protobuf-c keeps them, the broker's own decoder drops them). Used
 * by broker_codec.c and the differential fuzz target fuzz_request.c.
 */
#ifndef SHOAL_TESTS_REQUEST_SAME_H
#define SHOAL_TESTS_REQUEST_SAME_H

#include <stdbool.h>
#include <string.h>

#include "manager_internal.h"

static bool same_bin(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static bool same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool same_value(const bv *a, const bv *b);

static bool same_values(bv *const *a, size_t na, bv *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!same_value(a[i], b[i]))
            return false;
    return true;
}

static bool same_value(const bv *a, const bv *b)
{
    if (!a || !b)
        return a == b;
    if (a->kind_case != b->kind_case)
        return false;
    switch ((int)a->kind_case) {
    case BV_NONE:
        return !a->none == !b->none;
    case BV_BOOL:
        return !a->b == !b->b;
    case BV_INT:
        return a->i == b->i;
    case BV_DOUBLE:
        return memcmp(&a->d, &b->d, sizeof(double)) == 0;
    case BV_STR:
        return same_str(a->s, b->s);
    case BV_BYTES:
        return same_bin(a->bytes, b->bytes);
    case BV_PICKLE:
        return same_bin(a->pickle, b->pickle);
    case BV_LIST:
    case BV_TUPLE: {
        const Shoal__Broker__Seq *x = a->kind_case == BV_LIST ? a->list : a->tuple,
                                 *y = b->kind_case == BV_LIST ? b->list : b->tuple;
        return same_values(x->items, x->n_items, y->items, y->n_items);
    }
    case BV_MAP:
        if (a->map->n_entries != b->map->n_entries)
            return false;
        for (size_t i = 0; i < a->map->n_entries; i++)
            if (!same_value(a->map->entries[i]->key, b->map->entries[i]->key) ||
                !same_value(a->map->entries[i]->value, b->map->entries[i]->value))
                return false;
        return true;
    case BV_MSG:
        return same_str(a->message->type, b->message->type) &&
               same_bin(a->message->data, b->message->data);
    default:
        return true; /* no kind: both */
    }
}

static bool same_request(const breq *a, const breq *b)
{
    if (a->id != b->id || !same_str(a->object, b->object) || !same_str(a->op, b->op) ||
        a->timeout_ms != b->timeout_ms || a->thread != b->thread ||
        !same_values(a->path, a->n_path, b->path, b->n_path) ||
        !same_values(a->args, a->n_args, b->args, b->n_args) || a->n_batch != b->n_batch)
        return false;
    for (size_t i = 0; i < a->n_batch; i++)
        if (!same_bin(a->batch[i], b->batch[i]))
            return false;
    return true;
}

#endif
