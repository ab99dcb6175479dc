/* main.c — the `shoal` command. */
#include <stdio.h>
int main(void) { return 0; }
