/* A program built against an installed shoal: shares a Value with a child. */
#include <shoal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    shoal_value *v;
    int rc = shoal_value_open(&v, NULL, SHOAL_CREATE, shoal_typecode('q'), NULL, NULL);
    if (rc) {
        fprintf(stderr, "%s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        shoal_value_add(v, 42, NULL);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    int64_t x = 0;
    shoal_value_load(v, &x);
    shoal_value_close(v);
    printf("installed shoal works: %lld\n", (long long)x);
    return x == 42 ? 0 : 1;
}
