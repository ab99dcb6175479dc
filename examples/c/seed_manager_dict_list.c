/*
 * seed_manager_dict_list.c — tutorial D.4 ("Manager"): a child sets d[1] = '1',
 * d['2'] = 2, d[0.25] = None and reverses l = list(range(10)); the parent prints
 * {1: '1', '2': 2, 0.25: None} and [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]. Exits non-zero on
 * any other result.
 */
#include "manager_seed.h"

static int f(shoal_manager *m)
{
    int rc =
        shoal_manager_call(m, "d", "set", 0, NULL, 2, shoal_mv_int(1), shoal_mv_str("1"));
    rc = rc ? rc
            : shoal_manager_call(m, "d", "set", 0, NULL, 2, shoal_mv_str("2"),
                                 shoal_mv_int(2));
    rc = rc ? rc
            : shoal_manager_call(m, "d", "set", 0, NULL, 2, shoal_mv_double(0.25),
                                 shoal_mv_none());
    rc = rc ? rc : shoal_manager_call(m, "l", "reverse", 0, NULL, 0);
    return rc != 0;
}

static int print_copy(shoal_manager *m, const char *name, const char *want)
{
    shoal_mv *v;
    char buf[256];
    if (shoal_manager_call(m, name, "copy", 0, &v, 0) != 0)
        return 1;
    shoal_mv_format(v, buf, sizeof(buf));
    seed_print(v);
    shoal_mv_free(v);
    return strcmp(buf, want) != 0;
}

int main(void)
{
    pid_t broker = seed_start_broker();
    if (broker < 0)
        return 1;
    shoal_manager *m = seed_connect();
    shoal_mv *range = shoal_mv_list();
    for (int i = 0; i < 10; i++)
        shoal_mv_append(range, shoal_mv_int(i));
    int rc = shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL) != 1 ||
             shoal_manager_create(m, "l", SHOAL_M_LIST, range, NULL) != 1 || seed_run(f);
    rc = rc || print_copy(m, "d", "{1: '1', '2': 2, 0.25: None}");
    rc = rc || print_copy(m, "l", "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    shoal_manager_close(m);
    seed_stop_broker(broker);
    return rc;
}
