/*
 * test_fuzz_finds.c — defects the fuzz target (tests/fuzz) found, each replayed on a
 * segment file damaged the same way.
 */
#include <pthread.h>

#include "testutil.h"

#include "segfile.h"

static int read_value(void *arg)
{
    shoal_value *v;
    if (shoal_value_open(&v, arg, SHOAL_OPEN, NULL, NULL, NULL))
        return 1;
    shoal_lock *lk = shoal_value_get_lock(v);
    int rc = shoal_lock_try(lk);
    int32_t x;
    shoal_value_read(v, &x); /* takes the lock with no timeout */
    if (rc == 0)
        shoal_lock_release(lk);
    shoal_value_close(v);
    return rc == SHOAL_ECORRUPT ? 0 : 2;
}

/* A lock whose mutex bytes say "private, not robust" (a damaged or hostile segment):
 * glibc let the try take it without recording the holder, and the next lock call of
 * the same thread (shoal_value_read) waited for itself forever. It is refused. */
static void test_lock_with_foreign_mutex_kind(void **state)
{
    (void)state;
    shoal_value *v;
    int32_t x = 5;
    T_OK(shoal_value_open(&v, "counter", SHOAL_CREATE, shoal_typecode('i'), &x, NULL));
    shoal_value_close(v);
    int kind = 0; /* PTHREAD_MUTEX_NORMAL, private, not robust */
    /* The Value's control block starts with its lock, which starts with the mutex. */
    sf_write("counter", SHOAL_HEADER_SIZE + offsetof(pthread_mutex_t, __data.__kind),
             &kind, sizeof(kind));
    pid_t pid = t_fork(read_value, "counter");
    int st = 0;
    pid_t done = 0;
    for (int i = 0; i < 500 && (done = waitpid(pid, &st, WNOHANG)) == 0; i++)
        usleep(10000);
    if (done != pid) {
        t_kill(pid);
        fail_msg("reading the value hangs on a lock with a foreign mutex kind");
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    T_OK(shoal_value_open(&v, "counter", SHOAL_OPEN, NULL, NULL, NULL));
    assert_int_equal(shoal_lock_try(shoal_value_get_lock(v)), SHOAL_ECORRUPT);
    assert_non_null(strstr(shoal_errdetail(), "damaged (mutex kind 0)"));
    shoal_value_close(v);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_with_foreign_mutex_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
