/* main.c — the vigil binary: one subcommand per job (DESIGN.md §5). */
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "cli.h"
#include "gen.h"
#include "server/common/version.h"

static void usage(void) {
    fprintf(stderr,
            "usage: vigil <command> [options]\n"
            "  serve   run the server (HTTP, NATS, webhooks, dashboard)\n"
            "  check   compile rules: vigil check DIR|FILE\n"
            "  test    run every rule's examples: vigil test DIR|FILE\n"
            "  replay  run rules over event files (CSV, JSON Lines, .gz)\n"
            "  feed    publish event files over NATS or HTTP\n"
            "  gen     generate an endless realistic card-transaction stream (NDJSON)\n"
            "  rules   change a running server's rules: vigil rules push DIR --server URL\n"
            "  --version  print the version and the commit it was built from\n"
            "Run `vigil <command> --help` for its options.\n");
}

static void rules_usage(void) {
    fprintf(stderr,
            "usage: vigil rules <subcommand>\n"
            "  push    push every rule file of a directory to a running server (rules API):\n"
            "          vigil rules push DIR --server URL [--token T] [--dry-run]\n"
            "Run `vigil rules push --help` for its options.\n");
}

/* `vigil rules …`: the rules API from the command line. */
static int cmd_rules(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "push") == 0) return vigil_cmd_rules_push(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        rules_usage();
        return 0;
    }
    if (argc >= 2) fprintf(stderr, "vigil rules: unknown subcommand '%s'\n", argv[1]);
    rules_usage();
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "replay") == 0) return vigil_cmd_replay(argc - 1, argv + 1);
    if (strcmp(c, "check") == 0) return vigil_cmd_check(argc - 1, argv + 1);
    if (strcmp(c, "test") == 0) return vigil_cmd_test(argc - 1, argv + 1);
    if (strcmp(c, "serve") == 0) return vigil_cmd_serve(argc - 1, argv + 1);
    if (strcmp(c, "feed") == 0) return vigil_cmd_feed(argc - 1, argv + 1);
    if (strcmp(c, "gen") == 0) return vigil_cmd_gen(argc - 1, argv + 1);
    if (strcmp(c, "rules") == 0) return cmd_rules(argc - 1, argv + 1);
    if (strcmp(c, "--version") == 0 || strcmp(c, "version") == 0) {
        printf("vigil %s (commit %s)\n", vigil_version(), vigil_commit());
        return 0;
    }
    if (strcmp(c, "-h") == 0 || strcmp(c, "--help") == 0 || strcmp(c, "help") == 0) {
        usage();
        return 0;
    }
    fprintf(stderr, "vigil: unknown command '%s'\n", c);
    usage();
    return 2;
}
