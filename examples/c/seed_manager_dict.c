/*
 * seed_manager_dict.c — tutorial E.5 ("Manager dict"): the child sets a, b, c = 10,
 * 20, 30 in a managed dict; the parent prints {'a': 10, 'b': 20, 'c': 30}. Exits
 * non-zero on any other result.
 */
#include "manager_seed.h"

static int fill(shoal_manager *m)
{
    const char *keys[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        if (shoal_manager_call(m, "d", "set", 0, NULL, 2, shoal_mv_str(keys[i]),
                               shoal_mv_int(10 * (i + 1))) != 0)
            return 1;
    return 0;
}

int main(void)
{
    pid_t broker = seed_start_broker();
    if (broker < 0)
        return 1;
    shoal_manager *m = seed_connect();
    int rc =
        shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL) != 1 || seed_run(fill);
    shoal_mv *d = NULL;
    char buf[128] = "";
    if (!rc && shoal_manager_call(m, "d", "copy", 0, &d, 0) == 0) {
        seed_print(d);
        shoal_mv_format(d, buf, sizeof(buf));
    }
    rc = rc || strcmp(buf, "{'a': 10, 'b': 20, 'c': 30}") != 0;
    shoal_mv_free(d);
    shoal_manager_close(m);
    seed_stop_broker(broker);
    return rc;
}
