/*
 * seed_value_counter — tutorial C.1, done right: nine processes each add 1 fifty times
 * to one shared Value. `v.value += 1` is a read and a write, so the tutorial's 450 was
 * luck; here each process either holds the Value's lock around the read-modify-write,
 * or uses an atomic add that needs no lock. Both print 450, every time.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal.h>

#define PROCESSES 9
#define ADDS      50

static void add_under_lock(shoal_value *v)
{
    for (int i = 0; i < ADDS; i++) {
        shoal_lock *lock = shoal_value_get_lock(v);
        shoal_lock_acquire(lock, SHOAL_FOREVER); /* with v.get_lock(): */
        int32_t x;
        shoal_value_read(v, &x);
        x += 1;
        shoal_value_write(v, &x);
        shoal_lock_release(lock);
    }
}

static void add_atomically(shoal_value *v)
{
    for (int i = 0; i < ADDS; i++)
        shoal_value_add(v, 1, NULL);
}

static int32_t run(void (*worker)(shoal_value *), const shoal_attr *attr)
{
    shoal_value *v;
    int rc = shoal_value_open(&v, NULL, SHOAL_CREATE, shoal_typecode('i'), NULL, attr);
    if (rc) {
        fprintf(stderr, "shoal: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return -1;
    }
    pid_t pids[PROCESSES];
    for (int i = 0; i < PROCESSES; i++)
        if ((pids[i] = fork()) == 0) {
            worker(v);
            _exit(0);
        }
    for (int i = 0; i < PROCESSES; i++)
        waitpid(pids[i], NULL, 0);
    int32_t total;
    shoal_value_read(v, &total);
    shoal_value_close(v);
    return total;
}

int main(void)
{
    shoal_attr no_lock = {0};
    no_lock.lock = SHOAL_LOCK_NONE;
    int32_t locked = run(add_under_lock, NULL);
    int32_t atomic = run(add_atomically, &no_lock);
    printf("with the lock: %d\n", locked);
    printf("with atomic add, no lock: %d\n", atomic);
    return locked == PROCESSES * ADDS && atomic == PROCESSES * ADDS ? 0 : 1;
}
