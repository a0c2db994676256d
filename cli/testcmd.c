/* testcmd.c — `vigil test DIR|FILE`: run every rule's `examples`.
 *
 * Each example is fed to a fresh engine over the whole ruleset, with the
 * example's max_out_of_orderness and allowed_lateness, then the watermark is
 * moved to the end so that held events are matched, windows close and
 * absences fire; only the alerts of the example's own rule count. An example
 * states how many alerts its rule must give (`alerts`) or exactly which
 * (`matches`: each alert's event ids, in emission order), and optionally
 * which events the engine must report late (`late`). Events take their id
 * from `id` (else "example:<n>") and their time from `ts`.
 *
 * Prints one line per example — "ok", "FAIL" with what was expected and what
 * came ("expected 1,3|2,4 got 1,3": alerts separated by '|', ids by ','), or
 * "skip" for the examples of files under a `pending/` directory of DIR (known
 * discrepancies, compiled but not run; tests/rules/README.md) — and a closing
 * "N passed, M failed" (", K pending" when some were skipped); exits 1 when
 * any fails or the rules do not compile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "lint.h"
#include "cli.h"
#include "vigil/engine.h"
#include "vigil/rules.h"

#define MAX_SHOWN 1500   /* bytes of an id list printed in a failure */

/* Ids in groups (one group per alert): group k is ids[start[k] .. start[k+1]). */
typedef struct idlist {
    char **ids;
    size_t n, cap;
    size_t *start;
    size_t ngroups, capgroups;
    int oom;
} idlist;

static void idl_free(idlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->ids[i]);
    free(l->ids);
    free(l->start);
    memset(l, 0, sizeof *l);
}

static void idl_group(idlist *l) {
    if (l->oom) return;
    if (l->ngroups == l->capgroups) {
        size_t nc = l->capgroups ? l->capgroups * 2 : 16;
        size_t *ns = realloc(l->start, nc * sizeof *ns);
        if (!ns) {
            l->oom = 1;
            return;
        }
        l->start = ns;
        l->capgroups = nc;
    }
    l->start[l->ngroups++] = l->n;
}

static void idl_push(idlist *l, const char *id) {
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        char **ni = realloc(l->ids, nc * sizeof *ni);
        if (!ni) {
            l->oom = 1;
            return;
        }
        l->ids = ni;
        l->cap = nc;
    }
    if (!(l->ids[l->n] = strdup(id ? id : ""))) {
        l->oom = 1;
        return;
    }
    l->n++;
}

static size_t idl_end(const idlist *l, size_t k) { return k + 1 < l->ngroups ? l->start[k + 1] : l->n; }

typedef struct run {
    const char *rule;
    int alerts;
    idlist got;                /* the rule's alerts: one group per alert */
    idlist late;               /* events reported late, one group */
} run;

static void on_alert(void *ud, const vigil_alert *a) {
    run *r = ud;
    if (strcmp(a->rule, r->rule) != 0) return;
    r->alerts++;
    idl_group(&r->got);
    for (int i = 0; i < a->nevents; i++) idl_push(&r->got, a->events[i]);
}

/* Feed one example; 0, or -1 with a message in why. */
static int run_example(vigil_ruleset *rs, const vigil_rule_example *x, run *r, vigil_lint *lint, char *why, size_t n) {
    vigil_engine_opts o = {.max_out_of_orderness_ms = x->max_out_of_orderness_ms,
                           .allowed_lateness_ms = x->allowed_lateness_ms};
    vigil_engine *eng = vigil_engine_create(rs, &o, NULL, on_alert, r);
    if (!eng) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    idl_group(&r->late);
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
        vigil_lint_event(lint, ev);
        st = vigil_engine_feed(eng, ev, &err);
        if (st == VIGIL_ELATE) idl_push(&r->late, vigil_event_id(ev));
        vigil_event_release(ev);
        if (st != VIGIL_OK && st != VIGIL_ENOKEY && st != VIGIL_ELATE) {
            snprintf(why, n, "event %d: %s", line, err.msg);
            rc = -1;
        }
        p += len + (nl != NULL);
    }
    vigil_engine_advance(eng, INT64_MAX);
    vigil_engine_destroy(eng);
    if (rc == 0 && (r->got.oom || r->late.oom)) {
        snprintf(why, n, "out of memory");
        rc = -1;
    }
    return rc;
}

/* ---- comparing and showing ------------------------------------------------------- */

typedef struct text {
    char buf[MAX_SHOWN + 8];
    size_t len;
} text;

static void put(text *t, const char *s) {
    size_t n = strlen(s);
    if (t->len >= MAX_SHOWN) return;
    if (t->len + n > MAX_SHOWN) {
        memcpy(t->buf + t->len, s, MAX_SHOWN - t->len);
        t->len = MAX_SHOWN;
        memcpy(t->buf + t->len, "...", 4);
        t->len += 3;
        return;
    }
    memcpy(t->buf + t->len, s, n + 1);
    t->len += n;
}

static const char *show_expected(const vigil_rule_example *x, text *t) {
    t->len = 0;
    t->buf[0] = '\0';
    for (int k = 0; k < x->nmatches; k++) {
        if (k) put(t, "|");
        for (int j = 0; j < x->matches[k].n; j++) {
            if (j) put(t, ",");
            put(t, x->matches[k].ids[j]);
        }
    }
    return x->nmatches ? t->buf : "(none)";
}

static const char *show_ids(const char *const *ids, size_t n, text *t) {
    t->len = 0;
    t->buf[0] = '\0';
    for (size_t j = 0; j < n; j++) {
        if (j) put(t, ",");
        put(t, ids[j]);
    }
    return n ? t->buf : "(none)";
}

static const char *show_got(const idlist *g, text *t) {
    t->len = 0;
    t->buf[0] = '\0';
    for (size_t k = 0; k < g->ngroups; k++) {
        if (k) put(t, "|");
        for (size_t j = g->start[k]; j < idl_end(g, k); j++) {
            if (j > g->start[k]) put(t, ",");
            put(t, g->ids[j]);
        }
    }
    return g->ngroups ? t->buf : "(none)";
}

static int same_matches(const vigil_rule_example *x, const idlist *g) {
    if (g->ngroups != (size_t)x->nmatches) return 0;
    for (size_t k = 0; k < g->ngroups; k++) {
        size_t b = g->start[k], e = idl_end(g, k);
        if (e - b != (size_t)x->matches[k].n) return 0;
        for (size_t j = b; j < e; j++)
            if (strcmp(g->ids[j], x->matches[k].ids[j - b]) != 0) return 0;
    }
    return 1;
}

static int has_id(const char *const *ids, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0) return 1;
    return 0;
}

/* The late events, compared as sets. */
static int same_late(const vigil_rule_example *x, const idlist *l) {
    if (l->n != (size_t)x->nlate) return 0;
    for (int i = 0; i < x->nlate; i++)
        if (!has_id((const char *const *)l->ids, l->n, x->late[i])) return 0;
    for (size_t i = 0; i < l->n; i++)
        if (!has_id(x->late, (size_t)x->nlate, l->ids[i])) return 0;
    return 1;
}

/* Examples of files below a `pending/` directory of root (a directory) are
 * known discrepancies: compiled, not run. Naming such a directory or file
 * itself runs them. */
static int is_pending(const char *root, int root_is_dir, const char *file) {
    size_t n = strlen(root);
    if (!root_is_dir || strncmp(file, root, n) != 0) return 0;
    const char *rel = file + n;
    while (*rel == '/') rel++;
    return strncmp(rel, "pending/", 8) == 0 || strstr(rel, "/pending/") != NULL;
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
    struct stat st;
    int root_is_dir = stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode);
    int pass = 0, fail = 0, pending = 0;
    static text t1, t2, t3, t4;
    vigil_lint *lint = vigil_lint_create(rs);   /* a field no example event had: a typo? */
    for (int i = 0; i < ex.n; i++) {
        const vigil_rule_example *x = &ex.v[i];
        if (is_pending(argv[1], root_is_dir, x->file)) {
            pending++;
            printf("skip  %s example %d (%s:%d): pending, not run\n", x->rule, x->index, x->file, x->line);
            continue;
        }
        char why[600] = "";
        run r = {.rule = x->rule};
        int rc = run_example(rs, x, &r, lint, why, sizeof why);
        int ok_alerts = x->has_matches ? same_matches(x, &r.got) : r.alerts == x->alerts;
        int ok_late = !x->has_late || same_late(x, &r.late);
        if (rc == 0 && ok_alerts && ok_late) {
            pass++;
            printf("ok    %s example %d (%s:%d)\n", x->rule, x->index, x->file, x->line);
        } else {
            fail++;
            printf("FAIL  %s example %d (%s:%d): ", x->rule, x->index, x->file, x->line);
            if (rc != 0) {
                printf("%s\n", why);
            } else {
                if (!ok_alerts && x->has_matches)
                    printf("expected %s got %s", show_expected(x, &t1), show_got(&r.got, &t2));
                else if (!ok_alerts)
                    printf("expected %d alert%s, got %d", x->alerts, x->alerts == 1 ? "" : "s", r.alerts);
                if (!ok_late)
                    printf("%slate: expected %s got %s", ok_alerts ? "" : "; ",
                           show_ids(x->late, (size_t)x->nlate, &t3),
                           show_ids((const char *const *)r.late.ids, r.late.n, &t4));
                printf("\n");
            }
        }
        idl_free(&r.got);
        idl_free(&r.late);
    }
    if (pending)
        printf("%d passed, %d failed, %d pending\n", pass, fail, pending);
    else
        printf("%d passed, %d failed\n", pass, fail);
    fflush(stdout);
    vigil_lint_report(lint, NULL, stdout, "vigil test");   /* warnings: the exit status stays the examples' */
    vigil_lint_destroy(lint);
    vigil_rule_examples_free(&ex);
    vigil_ruleset_release(rs);
    return fail ? 1 : 0;
}
