/*
 * seed_manager_records.c — tutorial B.3 ("Manager"): a list of (name, score) records
 * held by a manager; process p1 appends ("Jeff", 8) and prints "New record added!";
 * then p2 prints the four records. Exits non-zero if p2 did not see all four.
 */
#include "manager_seed.h"

static int insert_record(shoal_manager *m)
{
    shoal_mv *rec = shoal_mv_tuple();
    shoal_mv_append(rec, shoal_mv_str("Jeff"));
    shoal_mv_append(rec, shoal_mv_int(8));
    if (shoal_manager_call(m, "records", "append", 0, NULL, 1, rec) != 0)
        return 1;
    printf("New record added!\n\n");
    return 0;
}

static int print_records(shoal_manager *m)
{
    shoal_mv *records;
    if (shoal_manager_call(m, "records", "copy", 0, &records, 0) != 0)
        return 1;
    for (size_t i = 0; i < shoal_mv_len(records); i++) {
        const shoal_mv *r = shoal_mv_item(records, i);
        printf("Name: %s\nScore: %lld\n\n", shoal_mv_as_str(shoal_mv_item(r, 0)),
               (long long)shoal_mv_as_int(shoal_mv_item(r, 1)));
    }
    int rc = shoal_mv_len(records) != 4;
    shoal_mv_free(records);
    return rc;
}

int main(void)
{
    pid_t broker = seed_start_broker();
    if (broker < 0)
        return 1;
    shoal_manager *m = seed_connect();
    const char *names[] = {"Sam", "Adam", "Kevin"};
    const int scores[] = {10, 9, 9};
    shoal_mv *init = shoal_mv_list();
    for (int i = 0; i < 3; i++) {
        shoal_mv *rec = shoal_mv_tuple();
        shoal_mv_append(rec, shoal_mv_str(names[i]));
        shoal_mv_append(rec, shoal_mv_int(scores[i]));
        shoal_mv_append(init, rec);
    }
    int rc = shoal_manager_create(m, "records", SHOAL_M_LIST, init, NULL) != 1;
    rc = rc || seed_run(insert_record) || seed_run(print_records); /* p1, then p2 */
    shoal_manager_close(m);
    seed_stop_broker(broker);
    return rc;
}
