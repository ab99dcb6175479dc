/*
 * seed_semaphore_handoff — tutorial A.3: parent and child hand a shared Value('I', 1)
 * back and forth with two Semaphore(0)s, each seeing the other's change. The parent
 * adds 2 and the child prints 3; the child then adds 10 and the parent prints 13.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal.h>

struct shared {
    shoal_value *var;
    shoal_sem *to_child, *to_parent;
};

static int child(struct shared *s)
{
    if (shoal_sem_acquire(s->to_child, SHOAL_SEC(10)))
        return 1;
    uint32_t x;
    shoal_value_read(s->var, &x);
    printf("child sees %u\n", x);
    fflush(stdout);
    x += 10;
    shoal_value_write(s->var, &x);
    shoal_sem_release(s->to_parent);
    return x == 13 ? 0 : 1;
}

int main(void)
{
    struct shared s;
    uint32_t one = 1;
    int rc =
        shoal_value_open(&s.var, NULL, SHOAL_CREATE, shoal_typecode('I'), &one, NULL);
    if (!rc)
        rc = shoal_sem_open(&s.to_child, NULL, SHOAL_CREATE, 0, NULL);
    if (!rc)
        rc = shoal_sem_open(&s.to_parent, NULL, SHOAL_CREATE, 0, NULL);
    if (rc) {
        fprintf(stderr, "shoal: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child(&s));

    uint32_t x;
    shoal_value_read(s.var, &x);
    x += 2; /* var.value += 2 */
    shoal_value_write(s.var, &x);
    shoal_sem_release(s.to_child);
    int status;
    rc = shoal_sem_acquire(s.to_parent, SHOAL_SEC(10));
    waitpid(pid, &status, 0);
    shoal_value_read(s.var, &x);
    printf("parent sees %u\n", x);
    shoal_value_close(s.var);
    shoal_sem_close(s.to_child);
    shoal_sem_close(s.to_parent);
    return rc == 0 && x == 13 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
