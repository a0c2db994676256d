/* cli.c — command-line helpers shared by the commands: an option's value and
 * the event options (--time-field, --id-field, --time-format; DESIGN.md §5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

const char *vigil_cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "vigil: option %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int vigil_cli_event_opt(int argc, char **argv, int *i, vigil_event_opts *o) {
    const char *a = argv[*i], *v;
    if (strcmp(a, "--time-field") == 0) {
        if (!(v = vigil_cli_value(argc, argv, i))) return -1;
        free(o->time_store);
        o->time_store = NULL;
        if (vigil_decode_opts_set_list(v, o->decode.time_fields, &o->decode.ntime_fields, &o->time_store) != VIGIL_OK) {
            fprintf(stderr, "vigil: --time-field '%s': expected a comma-separated list of at most %d field names\n", v,
                    VIGIL_MAX_NAME_FIELDS);
            return -1;
        }
        return 1;
    }
    if (strcmp(a, "--id-field") == 0) {
        if (!(v = vigil_cli_value(argc, argv, i))) return -1;
        free(o->id_store);
        o->id_store = NULL;
        if (vigil_decode_opts_set_list(v, o->decode.id_fields, &o->decode.nid_fields, &o->id_store) != VIGIL_OK) {
            fprintf(stderr, "vigil: --id-field '%s': expected a comma-separated list of at most %d field names\n", v,
                    VIGIL_MAX_NAME_FIELDS);
            return -1;
        }
        return 1;
    }
    if (strcmp(a, "--time-format") == 0) {
        if (!(v = vigil_cli_value(argc, argv, i))) return -1;
        if (vigil_time_format_parse(v, &o->decode.time_format) != VIGIL_OK) {
            fprintf(stderr, "vigil: --time-format '%s': expected auto, s, ms or rfc3339\n", v);
            return -1;
        }
        return 1;
    }
    return 0;
}
