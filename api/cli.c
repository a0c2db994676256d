/* cli.c — the event options shared by replay, feed and serve (DESIGN.md §5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"

int64_t vigil_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t vigil_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *vigil_cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "vigil: option %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

void vigil_cli_event_opts_init(vigil_cli_event_opts *o) {
    memset(o, 0, sizeof *o);
    o->decode.time_fields[0] = "ts";
    o->decode.ntime_fields = 1;
    o->decode.id_fields[0] = "id";
    o->decode.nid_fields = 1;
    o->decode.time_format = VIGIL_TIME_AUTO;
}

void vigil_cli_event_opts_free(vigil_cli_event_opts *o) {
    free(o->time_store);
    free(o->id_store);
    o->time_store = o->id_store = NULL;
}

int vigil_cli_event_opt(int argc, char **argv, int *i, vigil_cli_event_opts *o) {
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
