/* A program built against an installed shoal: shares a Value with a child, and runs an
 * event loop and refers to the services' channels, which a static link must bring in
 * with the libraries they need (liburing, nng: shoal.pc's Libs.private). */
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
    shoal_loop *loop;
    if ((rc = shoal_loop_create(&loop)) != 0) {
        fprintf(stderr, "loop: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    shoal_loop_destroy(loop);
    int (*volatile channel_open)(shoal_rpc_channel **, const char *,
                                 const shoal_rpc_channel_config *) =
        shoal_rpc_channel_open;
    printf("installed shoal works: %lld\n", (long long)x);
    return x == 42 && channel_open ? 0 : 1;
}
