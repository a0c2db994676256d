/* decode.c — the JSON → event decode of the server's sources, alone: the
 * micro-benchmark of issue 16's decode steps (rows c and d: core NATS and
 * JetStream spend about half their CPU here).
 *
 * Reads an NDJSON file (bench_nats_pub --dump writes the card data that way:
 * one event a line, as `vigil feed` and bench_nats_pub send them), loads a
 * rule directory, then hands every line to vigil_batch_decode as core NATS
 * does (one message per event: LINES, SKIP_BAD, empty_ok, the server's
 * default limits 1000 fields / depth 32 / 1024 key bytes) and releases the
 * events. --batch K hands K lines per call instead (an NDJSON body, as HTTP
 * and the JetStream messages of `vigil feed --batch`). Measure it with
 * callgrind, counting only the decoding:
 *
 *   bench_nats_pub --dump ev.ndjson --input tx=tx.csv --time-field tx_datetime,report_datetime \
 *       --id-field transaction_id,report_id
 *   valgrind --tool=callgrind --toggle-collect=decode_all build-bench/bench_decode \
 *       --rules rules/fraud --input ev.ndjson
 *
 * and divide by the event count it prints. Prints: events, bad lines, and a
 * checksum over every event's id, time and keys (the same for two builds
 * that decode alike). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ingest/batch.h"
#include "vigil/event.h"
#include "vigil/rules.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * UINT64_C(1099511628211);
    return h;
}

static size_t total_events, total_bad;
static uint64_t sum = UINT64_C(14695981039346656037);

static __attribute__((noinline)) void decode_all(const vigil_ruleset *rs, const vigil_batch_opts *bo,
                                                 const char *data, size_t len, size_t per) {
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *q = p;
        for (size_t k = 0; k < per && q < end; k++) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            q = nl ? nl + 1 : end;
        }
        vigil_batch b;
        vigil_batch_error err;
        if (vigil_batch_decode(rs, bo, p, (size_t)(q - p), &b, &err) == VIGIL_OK) {
            total_events += b.n;
            total_bad += b.bad;
            for (size_t i = 0; i < b.n; i++) {
                const vigil_event *e = b.events[i];
                const char *id = vigil_event_id(e);
                int64_t ts = vigil_event_time(e);
                sum = fnv(sum, id, strlen(id) + 1);
                sum = fnv(sum, &ts, sizeof ts);
                for (int g = 0; g < vigil_ruleset_group_count(rs); g++) {
                    size_t kl = 0;
                    const char *k = vigil_event_key(e, g, &kl);
                    sum = k ? fnv(sum, k, kl) : fnv(sum, "-", 1);
                }
            }
            vigil_batch_release(&b);
        } else {
            total_bad++;
        }
        p = q;
    }
}

int main(int argc, char **argv) {
    const char *rules = NULL, *input = NULL;
    size_t per = 1;
    int rounds = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rules") == 0) rules = argv[i + 1];
        else if (strcmp(argv[i], "--input") == 0) input = argv[i + 1];
        else if (strcmp(argv[i], "--batch") == 0) per = (size_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
    }
    if (!rules || !input || per == 0 || rounds <= 0) {
        fprintf(stderr, "usage: bench_decode --rules DIR --input FILE.ndjson [--batch K] [--rounds R]\n");
        return 2;
    }
    FILE *f = fopen(input, "rb");
    if (!f) {
        perror(input);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc(sz > 0 ? (size_t)sz : 1);
    if (!data || fread(data, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "bench_decode: cannot read %s\n", input);
        return 1;
    }
    fclose(f);
    vigil_ruleset *rs = NULL;
    vigil_error errs[4];
    int nerrs = 0;
    if (vigil_rules_load(rules, NULL, &rs, errs, 4, &nerrs) != VIGIL_OK) {
        fprintf(stderr, "bench_decode: %s\n", nerrs ? errs[0].msg : "cannot load the rules");
        return 1;
    }
    vigil_decode_opts d = {.time_fields = {"tx_datetime", "report_datetime"}, .ntime_fields = 2,
                           .id_fields = {"transaction_id", "report_id"}, .nid_fields = 2};
    vigil_batch_opts bo = {.mode = VIGIL_BATCH_LINES, .policy = VIGIL_BATCH_SKIP_BAD, .decode = &d,
                           .max_events = SIZE_MAX, .empty_ok = 1, .max_fields = 1000, .max_depth = 32,
                           .max_key_bytes = 1024};
    for (int r = 0; r < rounds; r++) decode_all(rs, &bo, data, (size_t)sz, per);
    printf("events %zu bad %zu checksum %016llx\n", total_events, total_bad, (unsigned long long)sum);
    vigil_ruleset_release(rs);
    free(data);
    return 0;
}
