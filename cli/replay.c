/* replay.c — `vigil replay`: the engine over files, as a backtest.
 *
 * Reads every --input (merged by event time), feeds the engine on this one
 * thread, writes alerts as JSON Lines (stdout or --output) and prints a
 * per-rule summary on stderr; with --label-field it scores the rules:
 * an event whose label is true (non-zero, `true`, "1") counts as detected
 * when some alert's `event` is that event; precision counts events that
 * received at least one alert (DESIGN.md §5). --segment-field breaks recall
 * down per value (e.g. per fraud scenario). End of input advances the
 * watermark to infinity so that pending timers fire. --rule-version NAME=N
 * gives rule NAME version N whatever its source says, so that a replay
 * reproduces the alert ids of a version the server assigned (the id hashes
 * rule, version, key and event ids; DESIGN.md §3, §6). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include "cli.h"
#include "input.h"
#include "reader.h"
#include "score.h"
#include "lint.h"
#include "vigil/engine.h"
#include "vigil/rules.h"

#define MAX_INPUTS 32
#define MAX_SEGMENTS 64
#define MAX_RULE_VERSIONS 256

typedef struct replay {
    FILE *out;
    const vigil_ruleset *rs;
    int nrules;
    vigil_score *score;          /* by event id: alerts may name an earlier event */
    uint64_t *alerts;
    uint64_t total_alerts, out_errors, score_errors;
    int64_t detected_ms;
} replay;

static void on_alert(void *ud, const vigil_alert *a) {
    replay *r = ud;
    int ri = vigil_ruleset_rule_index(r->rs, a->rule);
    r->total_alerts++;
    if (ri >= 0) {
        r->alerts[ri]++;
        if (vigil_score_alert(r->score, a->event, ri) != 0) r->score_errors++;
    }
    char *js = vigil_alert_to_json(a, r->detected_ms);
    if (!js || fputs(js, r->out) == EOF || fputc('\n', r->out) == EOF) r->out_errors++;
    free(js);
}

static void on_input_error(void *ud, const vigil_error *err) {
    uint64_t *n = ud;
    char buf[1024];
    (*n)++;
    if (*n <= 20) {
        vigil_error_format(err, buf, sizeof buf);
        fprintf(stderr, "vigil replay: rejected: %s\n", buf);
    } else if (*n == 21) {
        fprintf(stderr, "vigil replay: further rejected lines are counted, not printed\n");
    }
}

static int label_true(const char *s) {
    if (!*s) return 0;
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) return 1;
    char *end;
    double d = strtod(s, &end);
    return end != s && *end == '\0' && d != 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: vigil replay --rules DIR|FILE --input [TYPE=]F [--input …] [--time-field N[,N2…]]\n"
            "                    [--time-format auto|s|ms|rfc3339] [--id-field N[,N2…]]\n"
            "                    [--label-field N [--segment-field N]] [--output F] [--allowed-lateness D]\n"
            "                    [--max-out-of-orderness D] [--late-output F] [--threads 1|2]\n"
            "                    [--rule-version NAME=N …]\n"
            "                    [--decode-only]   (benchmark: read and decode only, no engine)\n"
            "  --rule-version NAME=N  rule NAME gets version N (a whole number >= 1) whatever its\n"
            "                    source says: reproduces the alert ids of a version the server\n"
            "                    assigned (GET /v1/rules/NAME); repeat for several rules\n"
            "  --late-output F   late events (older than the watermark minus the allowed lateness,\n"
            "                    never matched) as JSON Lines\n"
            "  --threads 2       read and decode on a second thread while this one matches;\n"
            "                    1 (default): everything on one thread — faster on the 2-core VMs\n"
            "                    measured (bench/README.md), where the handover costs more than it saves\n");
}

/* --rule-version NAME=N: NAME [a-z0-9_]+ (at most VIGIL_MAX_RULE_NAME
 * characters), N a whole number >= 1. The name points into v (argv). 0, or
 * -1 with a message. */
static int parse_rule_version(const char *v, vigil_rule_version_set *out, char *name, size_t namecap) {
    const char *eq = strchr(v, '=');
    size_t n = eq ? (size_t)(eq - v) : 0;
    int ok = eq && n >= 1 && n <= VIGIL_MAX_RULE_NAME && n < namecap;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '_';
    long ver = 0;
    if (ok) {
        const char *d = eq + 1;
        char *end = NULL;
        errno = 0;
        ver = *d >= '0' && *d <= '9' ? strtol(d, &end, 10) : 0;
        ok = end && *end == '\0' && errno == 0 && ver >= 1 && ver <= INT_MAX;
    }
    if (!ok) {
        fprintf(stderr, "vigil replay: --rule-version '%s': expected NAME=N, a rule name ([a-z0-9_]+, at most %d "
                        "characters) and a whole version number >= 1, e.g. --rule-version card_testing=3\n",
                v, VIGIL_MAX_RULE_NAME);
        return -1;
    }
    memcpy(name, v, n);
    name[n] = '\0';
    out->name = name;
    out->version = (int)ver;
    return 0;
}

static double pct(uint64_t a, uint64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

int vigil_cmd_replay(int argc, char **argv) {
    const char *rules = NULL, *output = NULL, *label = NULL, *segment = NULL, *late_path = NULL;
    int threads = 1;
    const char *inputs[MAX_INPUTS];
    int ninputs = 0;
    int64_t lateness = 0, ooo = 0;
    int decode_only = 0;
    static vigil_rule_version_set versions[MAX_RULE_VERSIONS];
    static char version_names[MAX_RULE_VERSIONS][VIGIL_MAX_RULE_NAME + 1];
    int nversions = 0;
    vigil_event_opts eo;
    vigil_event_opts_init(&eo);
    for (int i = 1; i < argc; i++) {
        int r = vigil_cli_event_opt(argc, argv, &i, &eo);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (strcmp(a, "--decode-only") == 0) {   /* benchmark ceiling: read, decode, merge; no engine */
            decode_only = 1;
            continue;
        }
        if (!(v = vigil_cli_value(argc, argv, &i))) {
            usage();
            return 2;
        }
        if (strcmp(a, "--rules") == 0) rules = v;
        else if (strcmp(a, "--output") == 0) output = v;
        else if (strcmp(a, "--label-field") == 0) label = v;
        else if (strcmp(a, "--segment-field") == 0) segment = v;
        else if (strcmp(a, "--late-output") == 0) late_path = v;
        else if (strcmp(a, "--threads") == 0) {
            if (strcmp(v, "1") != 0 && strcmp(v, "2") != 0) {
                fprintf(stderr, "vigil replay: --threads '%s': expected 1 or 2\n", v);
                return 2;
            }
            threads = atoi(v);
        }
        else if (strcmp(a, "--allowed-lateness") == 0) {
            if (vigil_duration_parse(v, &lateness) != VIGIL_OK) {
                fprintf(stderr, "vigil replay: --allowed-lateness '%s': expected a duration like 10s, 5m\n", v);
                return 2;
            }
        } else if (strcmp(a, "--max-out-of-orderness") == 0) {
            if (vigil_duration_parse(v, &ooo) != VIGIL_OK) {
                fprintf(stderr, "vigil replay: --max-out-of-orderness '%s': expected a duration like 10s, 5m\n", v);
                return 2;
            }
        } else if (strcmp(a, "--input") == 0) {
            if (ninputs == MAX_INPUTS) {
                fprintf(stderr, "vigil replay: at most %d inputs\n", MAX_INPUTS);
                return 2;
            }
            inputs[ninputs++] = v;
        } else if (strcmp(a, "--rule-version") == 0) {
            if (nversions == MAX_RULE_VERSIONS) {
                fprintf(stderr, "vigil replay: at most %d --rule-version options\n", MAX_RULE_VERSIONS);
                return 2;
            }
            if (parse_rule_version(v, &versions[nversions], version_names[nversions], sizeof version_names[0]) != 0)
                return 2;
            for (int k = 0; k < nversions; k++)
                if (strcmp(versions[k].name, versions[nversions].name) == 0) {
                    fprintf(stderr, "vigil replay: --rule-version names rule '%s' twice\n", versions[k].name);
                    return 2;
                }
            nversions++;
        } else {
            fprintf(stderr, "vigil replay: unknown option '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (!rules || !ninputs) {
        fprintf(stderr, "vigil replay: --rules and at least one --input are required\n");
        usage();
        return 2;
    }
    if (segment && !label) {
        fprintf(stderr, "vigil replay: --segment-field needs --label-field\n");
        return 2;
    }
    vigil_error errs[32];
    int nerrs = 0;
    vigil_ruleset *rs = NULL;
    vigil_rules_opts ro = {.versions = versions, .nversions = nversions};
    if (vigil_rules_load(rules, &ro, &rs, errs, 32, &nerrs) != VIGIL_OK) {
        char buf[1024];
        for (int i = 0; i < nerrs; i++) {
            vigil_error_format(&errs[i], buf, sizeof buf);
            fprintf(stderr, "%s\n", buf);
        }
        fprintf(stderr, "vigil replay: rules in '%s' did not compile\n", rules);
        return 1;
    }
    for (int k = 0; k < nversions; k++)
        if (vigil_ruleset_rule_index(rs, versions[k].name) < 0) {
            fprintf(stderr, "vigil replay: --rule-version %s=%d: no rule '%s' in '%s'\n", versions[k].name,
                    versions[k].version, versions[k].name, rules);
            vigil_ruleset_release(rs);
            return 2;
        }
    vigil_input *ins[MAX_INPUTS];
    for (int i = 0; i < ninputs; i++) {
        vigil_error err;
        vigil_error_clear(&err);
        if (vigil_input_open(inputs[i], rs, &eo.decode, &ins[i], &err) != VIGIL_OK) {
            char buf[1024];
            vigil_error_format(&err, buf, sizeof buf);
            fprintf(stderr, "vigil replay: %s\n", buf);
            while (i--) vigil_input_close(ins[i]);
            vigil_ruleset_release(rs);
            return 1;
        }
    }
    uint64_t rejected = 0;
    vigil_merge *m;
    if (vigil_merge_create(ins, ninputs, on_input_error, &rejected, &m) != VIGIL_OK) return 1;
    replay R = {.rs = rs, .nrules = vigil_ruleset_rule_count(rs), .detected_ms = vigil_now_ms()};
    R.out = output ? fopen(output, "w") : stdout;
    if (!R.out) {
        fprintf(stderr, "vigil replay: cannot write '%s'\n", output);
        return 1;
    }
    FILE *late_out = late_path ? fopen(late_path, "w") : NULL;
    if (late_path && !late_out) {
        fprintf(stderr, "vigil replay: cannot write '%s'\n", late_path);
        return 1;
    }
    static char obuf[1 << 20];
    setvbuf(R.out, obuf, _IOFBF, sizeof obuf);
    size_t nr = (size_t)(R.nrules ? R.nrules : 1);
    R.alerts = calloc(nr, sizeof *R.alerts);
    R.score = vigil_score_create(R.nrules, MAX_SEGMENTS);
    vigil_engine_opts opts = {.allowed_lateness_ms = lateness, .max_out_of_orderness_ms = ooo};
    vigil_engine *eng = vigil_engine_create(rs, &opts, NULL, on_alert, &R);
    if (!R.alerts || !R.score || !eng) {
        fprintf(stderr, "vigil replay: out of memory\n");
        return 1;
    }
    char segs[MAX_SEGMENTS][64];
    int nseg = 0;
    uint64_t events = 0, nokey = 0, late = 0;
    int tty = isatty(2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vigil_event *ev;
    char lbuf[64], sbuf[64];
    /* with a reader thread, reading and decoding overlap matching */
    vigil_reader *rd = threads > 1 ? vigil_reader_start(m) : NULL;
    if (threads > 1 && !rd) fprintf(stderr, "vigil replay: cannot start the reader thread; reading on this one\n");
    vigil_lint *lint = decode_only ? NULL : vigil_lint_create(rs);   /* fields no event had, where never matched */
    vigil_event *batch[VIGIL_READER_BATCH];
    int nb = 0, bi = 0, more = 1;
    double progress = 0;
    for (;;) {
        if (bi == nb) {   /* next batch: read it, then warm its keys' state */
            if (rd && nb) vigil_reader_recycle(rd, batch, nb);   /* released on the reader thread */
            if (!more) break;
            nb = bi = 0;
            if (rd) {
                more = (nb = vigil_reader_next(rd, batch, &progress)) > 0;
            } else {
                while (nb < 64 && (more = vigil_merge_next(m, &batch[nb], NULL) == VIGIL_OK)) nb++;
                progress = vigil_merge_progress(m);
            }
            if (!nb) break;
            if (!decode_only) vigil_engine_warm(eng, batch, nb);
        }
        ev = batch[bi++];
        vigil_error err;
        events++;
        if (decode_only) {
            if (!rd) vigil_event_release(ev);
            continue;
        }
        /* remember the event's label before feeding: an alert names it */
        int pos = 0, segi = -1;
        if (label) {
            pos = vigil_event_field_text(ev, label, lbuf, sizeof lbuf) && label_true(lbuf);
            if (segment && pos && vigil_event_field_text(ev, segment, sbuf, sizeof sbuf)) {
                int k = 0;
                while (k < nseg && strcmp(segs[k], sbuf) != 0) k++;
                if (k == nseg && nseg < MAX_SEGMENTS) snprintf(segs[nseg++], sizeof segs[0], "%s", sbuf);
                if (k < nseg) segi = k;
            }
        }
        if (label && vigil_score_event(R.score, vigil_event_id(ev), pos, segi) != 0) R.score_errors++;
        vigil_lint_event(lint, ev);
        vigil_status s = vigil_engine_feed(eng, ev, &err);
        if (s == VIGIL_ENOKEY) nokey++;
        else if (s == VIGIL_ELATE) {
            late++;
            size_t jl;
            const char *js = late_out ? vigil_event_json(ev, &jl) : NULL;
            if (js && (fwrite(js, 1, jl, late_out) != jl || fputc('\n', late_out) == EOF)) R.out_errors++;
        }
        else if (s != VIGIL_OK) fprintf(stderr, "vigil replay: event %s: %s\n", vigil_event_id(ev), err.msg);
        if (!rd) vigil_event_release(ev);
        if (tty && (events & 0xFFFF) == 0) {
            double p = progress;
            int w = (int)(p * 40);
            fprintf(stderr, "\r[%.*s%*s] %5.1f%% %llu events, %llu alerts", w,
                    "########################################", 40 - w, "", 100 * p,
                    (unsigned long long)events, (unsigned long long)R.total_alerts);
        }
    }
    vigil_reader_destroy(rd);
    vigil_engine_advance(eng, INT64_MAX);   /* end of input: close windows, fire absences */
    if (late_out && fclose(late_out) != 0) R.out_errors++;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (tty) fprintf(stderr, "\r%*s\r", 80, "");
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fflush(R.out);
    if (output) fclose(R.out);
    /* summary */
    vigil_score_result sr;
    if (vigil_score_finish(R.score, &sr) != 0 || R.score_errors) {
        fprintf(stderr, "vigil replay: out of memory while scoring\n");
        return 1;
    }
    fprintf(stderr, "%-28s %9s %9s", "rule", "alerts", "events");
    if (label) fprintf(stderr, " %9s %9s %10s %8s", "TP", "FP", "precision", "recall");
    fprintf(stderr, "\n");
    for (int i = 0; i < R.nrules; i++) {
        fprintf(stderr, "%-28s %9llu %9llu", vigil_ruleset_rule_name(rs, i), (unsigned long long)R.alerts[i],
                (unsigned long long)sr.events_alerted[i]);
        if (label)
            fprintf(stderr, " %9llu %9llu %9.2f%% %7.2f%%", (unsigned long long)sr.tp[i],
                    (unsigned long long)(sr.events_alerted[i] - sr.tp[i]), pct(sr.tp[i], sr.events_alerted[i]),
                    pct(sr.tp[i], sr.positives));
        fprintf(stderr, "\n");
    }
    if (label) {
        fprintf(stderr, "%-28s %9llu %9llu %9llu %9llu %9.2f%% %7.2f%%\n", "all rules (distinct events)",
                (unsigned long long)R.total_alerts, (unsigned long long)sr.alerted, (unsigned long long)sr.alerted_tp,
                (unsigned long long)(sr.alerted - sr.alerted_tp), pct(sr.alerted_tp, sr.alerted),
                pct(sr.alerted_tp, sr.positives));
        fprintf(stderr, "labelled true: %llu events\n", (unsigned long long)sr.positives);
        for (int k = 0; k < nseg; k++)
            fprintf(stderr, "recall %s=%s: %.2f%% (%llu of %llu)\n", segment, segs[k], pct(sr.seg_hit[k], sr.seg_pos[k]),
                    (unsigned long long)sr.seg_hit[k], (unsigned long long)sr.seg_pos[k]);
    }
    vigil_score_result_free(&sr);
    if (!decode_only) vigil_lint_report(lint, eng, stderr, "vigil replay");
    vigil_lint_destroy(lint);
    fprintf(stderr, "events: %llu read in %.2f s (%.0f events/s), %llu rejected lines, %llu without any rule key, %llu late; %llu alerts\n",
            (unsigned long long)events, secs, secs > 0 ? (double)events / secs : 0, (unsigned long long)rejected,
            (unsigned long long)nokey, (unsigned long long)late, (unsigned long long)R.total_alerts);
    if (!decode_only) {
        vigil_engine_stats es;
        vigil_engine_get_stats(eng, &es);
        fprintf(stderr, "state: %llu keys at the end, %llu idle keys expired, %llu runs evicted by max_runs\n",
                (unsigned long long)es.keys, (unsigned long long)es.keys_expired, (unsigned long long)es.runs_evicted);
        if (es.function_errors)
            fprintf(stderr, "functions: %llu calls of Lua function predicates or alert functions failed "
                            "(false / built-in details; the first ones are reported above)\n",
                    (unsigned long long)es.function_errors);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "peak memory: %.1f MiB (max RSS)%s\n", (double)ru.ru_maxrss / 1024.0, decode_only ? "; decode only" : "");
    int rc = R.out_errors ? 1 : 0;
    if (R.out_errors) fprintf(stderr, "vigil replay: %llu alerts could not be written\n", (unsigned long long)R.out_errors);
    vigil_engine_destroy(eng);
    vigil_merge_destroy(m);
    vigil_ruleset_release(rs);
    free(R.alerts);
    vigil_score_destroy(R.score);
    vigil_event_opts_free(&eo);
    return rc;
}

int vigil_cmd_check(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: vigil check DIR|FILE\n");
        return 2;
    }
    vigil_error errs[64];
    int nerrs = 0;
    vigil_ruleset *rs = NULL;
    if (vigil_rules_load(argv[1], NULL, &rs, errs, 64, &nerrs) != VIGIL_OK) {
        char buf[1024];
        for (int i = 0; i < nerrs; i++) {
            vigil_error_format(&errs[i], buf, sizeof buf);
            fprintf(stderr, "%s\n", buf);
        }
        if (!nerrs) fprintf(stderr, "vigil check: '%s' did not load\n", argv[1]);
        return 1;
    }
    int n = vigil_ruleset_rule_count(rs);
    for (int i = 0; i < n; i++)
        printf("ok  %-28s key=%-14s v%d %s %s\n", vigil_ruleset_rule_name(rs, i), vigil_ruleset_rule_key(rs, i),
               vigil_ruleset_rule_version(rs, i), vigil_severity_str(vigil_ruleset_rule_severity(rs, i)),
               vigil_mode_str(vigil_ruleset_rule_mode(rs, i)));
    printf("%d rules compiled\n", n);
    vigil_ruleset_release(rs);
    return 0;
}
