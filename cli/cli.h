/* cli.h — command-line pieces shared by `vigil replay`, `feed` and `serve`:
 * the event options (--time-field, --id-field, --time-format) and the
 * subcommand entry points that main.c dispatches to. */
#ifndef VIGIL_CLI_H
#define VIGIL_CLI_H

#include <stdint.h>
#include "vigil/event.h"
#include "vigil/clock.h"


/* If argv[*i] is an event option, consume it (and its value), set o and
 * return 1; return 0 if it is not one; -1 (message printed) if its value is
 * missing or bad. */
int vigil_cli_event_opt(int argc, char **argv, int *i, vigil_event_opts *o);

/* The value of option argv[*i] (advancing *i), or NULL with a message. */
const char *vigil_cli_value(int argc, char **argv, int *i);


int vigil_cmd_replay(int argc, char **argv);
int vigil_cmd_check(int argc, char **argv);
int vigil_cmd_test(int argc, char **argv);
int vigil_cmd_feed(int argc, char **argv);
int vigil_cmd_serve(int argc, char **argv);
int vigil_cmd_rules_push(int argc, char **argv);   /* argv[0] is "push" */

#endif
