/* testcmd.c — `vigil test DIR|FILE`: run every rule's `examples`.
 *
 * Each example (events and the number of alerts its rule must give) is fed
 * to a fresh engine over the whole ruleset, then the watermark is moved to
 * the end so that windows close and absences fire; only the alerts of the
 * example's own rule count. Events need no id (they get "example:<n>") and
 * take their time from `ts`. Prints one line per example and a closing
 * "N passed, M failed"; exits 1 when any fails or the rules do not compile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "vigil/engine.h"
#include "vigil/rules.h"

typedef struct counter { const char *rule; int n; } counter;

static void on_alert(void *ud, const vigil_alert *a) {
    counter *c = ud;
    if (strcmp(a->rule, c->rule) == 0) c->n++;
}

/* Run one example; returns the alert count, or -1 with a message. */
static int run_example(vigil_ruleset *rs, const vigil_rule_example *x, char *why, size_t n) {
    counter c = {.rule = x->rule};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &c);
    if (!eng) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    const char *p = x->events;
    int line = 0, rc = 0;
    while (*p && rc == 0) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char fid[32];
        snprintf(fid, sizeof fid, "example:%d", ++line);
        vigil_event *ev;
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = vigil_event_decode_json(rs, NULL, p, len, fid, 0, &ev, &err);
        if (st != VIGIL_OK) {
            snprintf(why, n, "event %d: %s", line, err.msg);
            rc = -1;
            break;
        }
        st = vigil_engine_feed(eng, ev, &err);
        vigil_event_release(ev);
        if (st != VIGIL_OK && st != VIGIL_ENOKEY) {
            snprintf(why, n, "event %d: %s", line, err.msg);
            rc = -1;
        }
        p += len + (nl != NULL);
    }
    vigil_engine_advance(eng, INT64_MAX);
    vigil_engine_destroy(eng);
    return rc < 0 ? -1 : c.n;
}

int vigil_cmd_test(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: vigil test DIR|FILE\n");
        return 2;
    }
    vigil_rule_examples ex = {0};
    vigil_rules_opts opts = {.examples = &ex};
    vigil_error errs[64];
    int nerrs = 0;
    vigil_ruleset *rs = NULL;
    if (vigil_rules_load(argv[1], &opts, &rs, errs, 64, &nerrs) != VIGIL_OK) {
        char buf[1024];
        for (int i = 0; i < nerrs; i++) {
            vigil_error_format(&errs[i], buf, sizeof buf);
            fprintf(stderr, "%s\n", buf);
        }
        vigil_rule_examples_free(&ex);
        return 1;
    }
    int pass = 0, fail = 0;
    for (int i = 0; i < ex.n; i++) {
        const vigil_rule_example *x = &ex.v[i];
        char why[600] = "";
        int got = run_example(rs, x, why, sizeof why);
        if (got == x->alerts) {
            pass++;
            printf("ok    %s example %d (%s:%d)\n", x->rule, x->index, x->file, x->line);
        } else {
            fail++;
            if (got < 0)
                printf("FAIL  %s example %d (%s:%d): %s\n", x->rule, x->index, x->file, x->line, why);
            else
                printf("FAIL  %s example %d (%s:%d): expected %d alert%s, got %d\n", x->rule, x->index, x->file,
                       x->line, x->alerts, x->alerts == 1 ? "" : "s", got);
        }
    }
    printf("%d passed, %d failed\n", pass, fail);
    vigil_rule_examples_free(&ex);
    vigil_ruleset_release(rs);
    return fail ? 1 : 0;
}
