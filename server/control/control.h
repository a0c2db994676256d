/* control.h — the control wing: the running rule set and what the API
 * says and does about it (GET /v1/rules, POST /v1/rules:test; hot reload
 * and versions next, DESIGN.md §6). */
#ifndef VIGIL_CONTROL_H
#define VIGIL_CONTROL_H

#include "vigil/event.h"
#include "server/http/http.h"
#include "server/alerts/sinks.h"

typedef struct vigil_control vigil_control;

typedef struct vigil_control_config {
    vigil_ruleset *rs;                /* retained */
    const vigil_decode_opts *decode;  /* borrowed: events of a dry run use the server's fields */
    vigil_sinks *sinks;               /* borrowed: per-rule alert counts */
} vigil_control_config;

vigil_status vigil_control_create(const vigil_control_config *cfg, vigil_control **out);
/* Register the wing's routes with the HTTP edge. */
void vigil_control_register(vigil_control *ctl, vigil_http *h);
void vigil_control_destroy(vigil_control *ctl);   /* accepts NULL */

#endif
