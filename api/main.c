/* main.c — the vigil binary: one command per subcommand (DESIGN.md §5). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    fprintf(stderr, "usage: vigil serve|check|test|replay|feed|gen …\n");
    return 2;
}
