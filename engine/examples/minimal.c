/* minimal.c — the engine used as a library from a small C program
 * (DESIGN.md §2): compile a rule from a Lua string (lua/), create an engine,
 * feed a few JSON events, print the alerts.
 *
 * It is documentation that cannot go stale: ctest builds and runs it
 * (examples/minimal, label unit) and it exits 1 unless exactly the expected
 * alert came out. engine/include/vigil/engine.h shows the same calls. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vigil/engine.h"
#include "vigil/rules.h"

static void on_alert(void *ud, const vigil_alert *a) {   /* a lives only during this call */
    char *json = vigil_alert_to_json(a, a->ts);
    printf("%s\n", json ? json : "(out of memory)");
    free(json);
    ++*(int *)ud;
}

int main(void) {
    const char *rule = "rule { name = 'big_twice', key = 'card', within = '10m',\n"
                       "  pattern = begin('a'):where{ amount = gt(100) }:followed_by('b'):where{ amount = gt(100) } }";
    const char *events[] = {"{\"id\":\"1\",\"card\":\"c1\",\"amount\":150,\"ts\":1700000000000}",
                            "{\"id\":\"2\",\"card\":\"c1\",\"amount\":20,\"ts\":1700000060000}",
                            "{\"id\":\"3\",\"card\":\"c2\",\"amount\":500,\"ts\":1700000090000}",
                            "{\"id\":\"4\",\"card\":\"c1\",\"amount\":900,\"ts\":1700000120000}"};
    vigil_ruleset *rs = NULL;
    vigil_error err;
    int nerrs = 0, alerts = 0;
    if (vigil_rules_load_string("minimal.lua", rule, strlen(rule), NULL, &rs, &err, 1, &nerrs) != VIGIL_OK) {
        fprintf(stderr, "%s:%d: %s\n", err.file, err.line, err.msg);
        return 1;
    }
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &alerts);   /* takes a reference */
    if (!eng) return 1;
    vigil_decode_opts opts = {0};                 /* time in "ts", id in "id", time format auto */
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        vigil_event *ev = NULL;
        if (vigil_event_decode_json(rs, &opts, events[i], strlen(events[i]), NULL, 0, &ev, &err) != VIGIL_OK ||
            vigil_engine_feed(eng, ev, &err) != VIGIL_OK)
            fprintf(stderr, "event %zu: %s\n", i + 1, err.msg);
        vigil_event_release(ev);                  /* the engine keeps its own references */
    }
    vigil_engine_advance(eng, INT64_MAX);         /* end of input: fire pending timers */
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    printf("%d alert(s), expected 1 (events 1 and 4 of card c1)\n", alerts);
    return alerts == 1 ? 0 : 1;
}
