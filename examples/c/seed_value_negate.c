/*
 * seed_value_negate — tutorial D.2: with a shared Value('d', 0.0) and Array('i',
 * range(10)), a child sets the value to 3.1415927 and negates every element; the
 * parent prints
 *
 *   3.1415927
 *   [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal.h>

static void f(shoal_value *n, shoal_array *a)
{
    double pi = 3.1415927;
    shoal_value_write(n, &pi);
    for (size_t i = 0; i < shoal_array_len(a); i++) {
        int32_t x;
        shoal_array_get(a, i, &x);
        x = -x;
        shoal_array_set(a, i, &x);
    }
}

int main(void)
{
    double zero = 0.0;
    int32_t range[10];
    for (int i = 0; i < 10; i++)
        range[i] = i;
    shoal_value *num;
    shoal_array *arr;
    int rc = shoal_value_open(&num, NULL, SHOAL_CREATE, shoal_typecode('d'), &zero, NULL);
    if (!rc)
        rc = shoal_array_open(&arr, NULL, SHOAL_CREATE, shoal_typecode('i'), 10, range,
                              NULL);
    if (rc) {
        fprintf(stderr, "shoal: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    pid_t p = fork();
    if (p == 0) {
        f(num, arr);
        _exit(0);
    }
    waitpid(p, NULL, 0);

    double got;
    int32_t out[10];
    shoal_value_read(num, &got);
    shoal_array_read(arr, 0, 10, out);
    printf("%.7f\n[", got);
    int ok = got == 3.1415927;
    for (int i = 0; i < 10; i++) {
        printf("%s%d", i ? ", " : "", out[i]);
        ok &= out[i] == -i;
    }
    printf("]\n");
    shoal_value_close(num);
    shoal_array_close(arr);
    return ok ? 0 : 1;
}
