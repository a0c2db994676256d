/* event_opts.c — decode options with their owned field lists (event.h),
 * shared by every command and the server's config. */
#include <stdlib.h>
#include <string.h>
#include "vigil/event.h"

void vigil_event_opts_init(vigil_event_opts *o) {
    memset(o, 0, sizeof *o);
    o->decode.time_fields[0] = "ts";
    o->decode.ntime_fields = 1;
    o->decode.id_fields[0] = "id";
    o->decode.nid_fields = 1;
    o->decode.time_format = VIGIL_TIME_AUTO;
}

void vigil_event_opts_free(vigil_event_opts *o) {
    free(o->time_store);
    free(o->id_store);
    o->time_store = o->id_store = NULL;
}
