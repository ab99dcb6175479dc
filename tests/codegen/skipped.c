/* skipped.c — stands in for the codegen tests in builds without the schema compiler
 * (SHOAL_BUILD_CODEGEN=OFF or protobuf tools missing): they have nothing to test. */
#include <stdio.h>

int main(void)
{
    puts("skipped: this build has no schema compiler");
    return 0;
}
