/* fuzz_json.c — libFuzzer target for the JSON event decoder
 * (vigil_event_decode_json, engine/src/event_json.c) and an NDJSON batch
 * through the engine, and the differential test of the decoder's scanner
 * (engine/src/json_scan.c) against cJSON: every line, under every option,
 * is decoded a second time with the scanner off (cJSON's path), and the
 * two must give the same status, message, id, time, text, slots and keys
 * (abort otherwise).
 *
 * The first stage of the flow takes bytes from HTTP, NATS and replay files,
 * so it must survive anything. The input is NDJSON: every line is decoded
 * against a ruleset built once (fields of every type, nested paths, a
 * literal dotted key, regexes, an in_list(), refs, aggregates, several key
 * groups) under four decode options (defaults; several time/id fields with
 * a TYPE= default; epoch seconds; RFC 3339 only with epoch ms for numbers),
 * the accessors are read back, and the events of the first option (or, for
 * half of the input lengths, of the epoch-seconds option, whose times reach
 * ±9e18 ms) are fed to a fresh engine (held for out-of-orderness, then
 * drained) so that slot values and extreme times reach the matcher. Every
 * event is released and the engine destroyed: LeakSanitizer checks
 * ownership. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vigil/engine.h"
#include "vigil/event.h"
#include "vigil/rules.h"
#include "fuzz_common.h"
#include "json_scan.h"

/* The same outcome of one line on the scanner's and on cJSON's path. */
static int same(const vigil_ruleset *r, vigil_status sa, const vigil_error *ea, const vigil_event *a,
                vigil_status sb, const vigil_error *eb, const vigil_event *b) {
    if (sa != sb || strcmp(ea->msg, eb->msg) != 0 || (a != NULL) != (b != NULL)) return 0;
    if (!a) return 1;
    size_t la, lb;
    const char *ja = vigil_event_json(a, &la), *jb = vigil_event_json(b, &lb);
    if (strcmp(vigil_event_id(a), vigil_event_id(b)) != 0 || vigil_event_time(a) != vigil_event_time(b) || la != lb ||
        memcmp(ja, jb, la) != 0)
        return 0;
    for (int f = 0; f < vigil_ruleset_field_count(r); f++) {
        const vigil_value *x = vigil_event_slot(a, f), *y = vigil_event_slot(b, f);
        if (x->type != y->type) return 0;
        if (x->type == VIGIL_T_NUM && memcmp(&x->u.num, &y->u.num, sizeof(double)) != 0) return 0;
        if (x->type == VIGIL_T_STR && (x->len != y->len || memcmp(x->u.str, y->u.str, x->len) != 0)) return 0;
        if (x->type == VIGIL_T_BOOL && x->u.b != y->u.b) return 0;
    }
    for (int g = 0; g < vigil_ruleset_group_count(r); g++) {
        size_t ka = 0, kb = 0;
        const char *x = vigil_event_key(a, g, &ka), *y = vigil_event_key(b, g, &kb);
        if ((x != NULL) != (y != NULL) || (x && (ka != kb || memcmp(x, y, ka) != 0))) return 0;
    }
    return 1;
}


#define MAX_LINES 64            /* lines fed to the engine per input */

static vigil_ruleset *rs;

static const char rules_src[] =
    "rule{ name='probe_then_cashout', key='customer_id', within='1h', skip='skip_past_last_event',\n"
    "  pattern = begin('probe'):where{ type='tx', tx_amount=lt(10), ['card.bin']=one_of{'4111','5500'} }\n"
    "            :times_or_more(2)\n"
    "            :followed_by('cash'):where{ type='tx', tx_amount=gt(ref('probe','tx_amount')),\n"
    "                                        email=matches('@(mailinator|guerrillamail)\\\\.com$','i') } }\n"
    "rule{ name='terminal_reports', key='terminal_id', window=sliding('7d'),\n"
    "  when = all_of{ eq(e.type,'tx'), ge(count{ type='report' }, 2), ge(distinct('device.id'), 1) } }\n"
    "rule{ name='login_fail', key='card.id', within='10m',\n"
    "  pattern = begin('fail'):where{ type='login', ok=false, promo=missing(), device=exists() }:times(2)\n"
    "            :not_followed_by('ok'):where{ type='login', ok=true } }\n"
    "rule{ name='session_sum', key='k', window=session('30s'), suppress='1h',\n"
    "  when = any_of{ ge(sum('amount'), 100), gt(e.amount, 2 * prior(avg('amount')) + 1), is_new('geo.country') } }\n"
    "rule{ name='bins', key='customer_id', where={ ['card.bin']=in_list('fuzz_bins'), ['a.b']=ne(0) },\n"
    "  window=tumbling('1m'), when=all_of{ ge(count(), 2), lt(min('tx_amount'), max('tx_amount')) } }\n"
    "rule{ name='regex_any', key='k', skip='no_skip',\n"
    "  pattern = begin('a'):where{ name=matches('^[a-z]+[0-9]{2,}$'), score=between(0.5, 1e9) }\n"
    "            :followed_by_any('b'):where{ code=596 }:or_where{ code='596' }:optional()\n"
    "            :next('c'):where{ flag=true, nul=eq(0) } }\n"
    "rule{ name='within_suppress', key='k', within='9000000000000s', suppress='9000000000000s',\n"
    "  pattern = begin('a'):where{ code=exists() }:followed_by('b'):where{ code=exists() } }\n";

/* Decode options, each pointing at static strings. */
static vigil_decode_opts opts[4];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    rs = fuzz_ruleset("fuzz_json", rules_src);
    /* 0: zero-initialised = "ts", "id", auto */
    opts[1] = (vigil_decode_opts){.time_fields = {"tx_datetime", "report_datetime", "ts"}, .ntime_fields = 3,
                                  .id_fields = {"transaction_id", "report_id", "card.id"}, .nid_fields = 3,
                                  .time_format = VIGIL_TIME_AUTO, .type_default = "tx"};
    opts[2] = (vigil_decode_opts){.time_fields = {"ts"}, .ntime_fields = 1, .id_fields = {"id"},
                                  .nid_fields = 1, .time_format = VIGIL_TIME_S};
    opts[3] = (vigil_decode_opts){.time_fields = {"when.at", "ts"}, .ntime_fields = 2, .id_fields = {"k"},
                                  .nid_fields = 1, .time_format = VIGIL_TIME_RFC3339};
    return 0;
}

static void touch(const vigil_event *e) {
    char tb[32], buf[128];
    vigil_time_format_rfc3339(vigil_event_time(e), tb, sizeof tb);
    volatile size_t sink = strlen(vigil_event_id(e)) + strlen(tb);
    for (int g = 0; g < 8; g++) {   /* past the group count on purpose: must return NULL */
        size_t len = 0;
        const char *k = vigil_event_key(e, g, &len);
        if (k) sink += len ? (size_t)(unsigned char)k[len - 1] : 0;
    }
    int nf = vigil_ruleset_field_count(rs);
    for (int f = 0; f < nf; f++) {
        const vigil_value *v = vigil_event_slot(e, f);
        if (v->type == VIGIL_T_STR && v->len) sink += (unsigned char)v->u.str[v->len - 1];
    }
    size_t jl;
    const char *js = vigil_event_json(e, &jl);
    sink += jl ? (unsigned char)js[jl - 1] : 0;
    sink += (size_t)vigil_event_field_text(e, "card.bin", buf, sizeof buf);
    sink += (size_t)vigil_event_field_text(e, "label", buf, sizeof buf);
    (void)sink;
}

static void on_alert(void *ud, const vigil_alert *a) {
    char *j = vigil_alert_to_json(a, 0);
    (*(int *)ud)++;
    free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size;
    vigil_event *evs[MAX_LINES];
    int nev = 0;
    int feed_opt = (size >> 1) & 1 ? 2 : 0;   /* which decode option's events go to the engine */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        /* the decoder is given exactly len bytes: copy so that ASan sees any over-read */
        char *line = malloc(len ? len : 1);
        if (!line) return 0;
        memcpy(line, p, len);
        for (int o = 0; o < 4; o++) {
            vigil_event *ev = NULL;
            vigil_error err;
            vigil_error_clear(&err);
            const char *fid = o == 1 ? "in.ndjson:7" : NULL;
            vigil_status s = vigil_event_decode_json(rs, o ? &opts[o] : NULL, line, len, fid, o & 1, &ev, &err);
            {   /* the differential test: the same line on cJSON's path */
                vigil_event *cev = NULL;
                vigil_error cerr;
                vigil_error_clear(&cerr);
                vjs_enabled = 0;
                vigil_status cs = vigil_event_decode_json(rs, o ? &opts[o] : NULL, line, len, fid, o & 1, &cev, &cerr);
                vjs_enabled = 1;
                if (!same(rs, s, &err, ev, cs, &cerr, cev)) {
                    fprintf(stderr, "json_scan.c and cJSON differ (option %d): %d \"%s\" / %d \"%s\"\n", o, s, err.msg,
                            cs, cerr.msg);
                    abort();
                }
                vigil_event_release(cev);
            }
            if (s == VIGIL_OK) {
                touch(ev);
                if (o == feed_opt && nev < MAX_LINES) {
                    evs[nev++] = ev;
                    continue;
                }
            } else if (ev) {
                abort();   /* a failed decode must leave *out NULL */
            }
            vigil_event_release(ev);
        }
        free(line);
        p += len + (nl != NULL);
    }
    if (nev) {
        int alerts = 0;
        vigil_engine_opts eo = {.max_runs = 8, .max_out_of_orderness_ms = (size & 1) ? 60000 : 0};
        vigil_engine *eng = vigil_engine_create(rs, &eo, NULL, on_alert, &alerts);
        if (eng) {
            for (int i = 0; i < nev; i++) {
                vigil_error err;
                vigil_engine_feed(eng, evs[i], &err);
            }
            vigil_engine_advance(eng, INT64_MAX);
            vigil_engine_destroy(eng);
        }
        for (int i = 0; i < nev; i++) vigil_event_release(evs[i]);
    }
    return 0;
}
