/*
 * seed_array_squares — tutorial B.2: a child process writes the squares of [1,2,3,4]
 * into a shared Array and their sum into a shared Value; the parent prints both.
 *
 *   Result(in main program): [1, 4, 9, 16]
 *   Sum of squares(in main program): 30
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal.h>

static void square_list(const int *mylist, int n, shoal_array *result,
                        shoal_value *square_sum)
{
    int32_t sum = 0;
    for (int i = 0; i < n; i++) {
        int32_t sq = mylist[i] * mylist[i];
        shoal_array_set(result, (size_t)i, &sq);
        sum += sq;
    }
    shoal_value_write(square_sum, &sum);
}

int main(void)
{
    const int mylist[] = {1, 2, 3, 4};
    shoal_array *result;
    shoal_value *square_sum;
    /* No names: like multiprocessing, the objects are anonymous and removed at the end.
     */
    int rc =
        shoal_array_open(&result, NULL, SHOAL_CREATE, shoal_typecode('i'), 4, NULL, NULL);
    if (!rc)
        rc = shoal_value_open(&square_sum, NULL, SHOAL_CREATE, shoal_typecode('i'), NULL,
                              NULL);
    if (rc) {
        fprintf(stderr, "shoal: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    pid_t p1 = fork();
    if (p1 == 0) {
        square_list(mylist, 4, result, square_sum);
        _exit(0);
    }
    waitpid(p1, NULL, 0);

    int32_t got[4], sum;
    shoal_array_read(result, 0, 4, got);
    shoal_value_read(square_sum, &sum);
    printf("Result(in main program): [%d, %d, %d, %d]\n", got[0], got[1], got[2], got[3]);
    printf("Sum of squares(in main program): %d\n", sum);
    shoal_array_close(result);
    shoal_value_close(square_sum);
    return got[0] == 1 && got[1] == 4 && got[2] == 9 && got[3] == 16 && sum == 30 ? 0 : 1;
}
