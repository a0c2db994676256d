/* fuzz_csv.c — libFuzzer target for the CSV reader of `vigil replay` and
 * `vigil feed` (api/input.c over vigil_csv_header_create and
 * vigil_event_decode_csv, engine/src/event.c).
 *
 * The input is a whole CSV file, header line first. It is read twice, merged
 * the way replay merges its inputs (vigil_merge over vigil_input_next):
 *   a.csv        the bytes as they are (zlib reads plain files too; bytes
 *                that start with the gzip magic exercise the gzip path);
 *   tx=b.csv.gz  the bytes gzip-compressed, with a TYPE= default and the
 *                card data's time and id columns as decode options.
 * Both files are memfds reached through symlinks in a private temporary
 * directory (/tmp/vigil-fuzz-csv.<pid>, removed at exit; one left by a
 * crashed run is swept by the next), so nothing is written to disk per input. Each event's JSON
 * rendering, field texts and keys are read back; every event is released
 * and every input closed (LeakSanitizer checks ownership). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "input.h"
#include "vigil/event.h"
#include "vigil/rules.h"
#include "fuzz_common.h"


#define MAX_EVENTS 256

static vigil_ruleset *rs;
static vigil_decode_opts opts_a, opts_b;
static char dir[96], path_a[128], path_b[128], spec_b[144];
static int fd_a = -1, fd_b = -1;
static unsigned char *gzbuf;
static size_t gzcap;

static const char rules_src[] =
    "rule{ name='large', key='customer_id', where={ type='tx', tx_amount=gt(220) },\n"
    "  window=sliding('1h'), when=ge(count(), 1) }\n"
    "rule{ name='terminal', key='terminal_id', window=sliding('7d'),\n"
    "  when=all_of{ eq(e.type, 'tx'), ge(count{ type='report' }, 2) } }\n"
    "rule{ name='spike', key='customer_id', window=sliding('30d'),\n"
    "  when=all_of{ ge(prior(count()), 5), gt(e.tx_amount, 3 * prior(avg('tx_amount'))) } }\n"
    "rule{ name='probe', key='customer_id', within='1h',\n"
    "  pattern=begin('p'):where{ tx_amount=lt(10), note=matches('^card[ -]test', 'i') }:times(2)\n"
    "          :followed_by('c'):where{ tx_fraud_scenario=one_of{ 1, '2' }, ts=exists() } }\n";

static void remove_dir(const char *d) {
    char p[160];
    snprintf(p, sizeof p, "%s/a.csv", d);
    unlink(p);
    snprintf(p, sizeof p, "%s/b.csv.gz", d);
    unlink(p);
    rmdir(d);
}

static void cleanup(void) {
    if (dir[0]) remove_dir(dir);
}

/* A crash exits without atexit handlers: remove the directories of dead runs. */
static void sweep(const char *tmp) {
    DIR *d = opendir(tmp);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        if (strncmp(de->d_name, "vigil-fuzz-csv.", 15) != 0) continue;
        long pid = strtol(de->d_name + 15, &end, 10);
        if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive or not ours */
        char p[160];
        snprintf(p, sizeof p, "%s/%s", tmp, de->d_name);
        remove_dir(p);
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    rs = fuzz_ruleset("fuzz_csv", rules_src);
    opts_b = (vigil_decode_opts){.time_fields = {"tx_datetime", "report_datetime", "ts"}, .ntime_fields = 3,
                                 .id_fields = {"transaction_id", "report_id"}, .nid_fields = 2,
                                 .time_format = VIGIL_TIME_AUTO};
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 60) tmp = "/tmp";
    sweep(tmp);
    snprintf(dir, sizeof dir, "%s/vigil-fuzz-csv.%ld", tmp, (long)getpid());
    remove_dir(dir);   /* a reused pid */
    fd_a = memfd_create("fuzz_csv_a", 0);
    fd_b = memfd_create("fuzz_csv_b", 0);
    if (mkdir(dir, 0700) != 0 || fd_a < 0 || fd_b < 0) {
        perror("fuzz_csv: mkdir/memfd_create");
        abort();
    }
    atexit(cleanup);
    char target[64];
    snprintf(path_a, sizeof path_a, "%s/a.csv", dir);
    snprintf(path_b, sizeof path_b, "%s/b.csv.gz", dir);
    snprintf(spec_b, sizeof spec_b, "tx=%s", path_b);
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd_a);
    if (symlink(target, path_a) != 0) abort();
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd_b);
    if (symlink(target, path_b) != 0) abort();
    return 0;
}

static int put(int fd, const void *p, size_t n) {
    if (ftruncate(fd, 0) != 0) return -1;
    const char *c = p;
    off_t off = 0;
    while (n) {
        ssize_t w = pwrite(fd, c, n, off);
        if (w <= 0) return -1;
        c += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

/* gzip (not zlib) framing, fast level: the point is input.c's gz path */
static size_t gzip(const uint8_t *data, size_t size) {
    size_t need = size + size / 100 + 64;
    if (need > gzcap) {
        unsigned char *b = realloc(gzbuf, need);
        if (!b) return 0;
        gzbuf = b;
        gzcap = need;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)size;
    z.next_out = gzbuf;
    z.avail_out = (uInt)gzcap;
    int r = deflate(&z, Z_FINISH);
    size_t n = gzcap - z.avail_out;
    deflateEnd(&z);
    return r == Z_STREAM_END ? n : 0;
}

static void touch(const vigil_event *e) {
    char buf[128];
    volatile size_t sink = strlen(vigil_event_id(e)) + (size_t)vigil_event_time(e);
    for (int g = 0; g < 4; g++) {
        size_t len = 0;
        const char *k = vigil_event_key(e, g, &len);
        if (k) sink += len ? (unsigned char)k[len - 1] : 0;
    }
    int nf = vigil_ruleset_field_count(rs);
    for (int f = 0; f < nf; f++) {
        const vigil_value *v = vigil_event_slot(e, f);
        if (v->type == VIGIL_T_STR && v->len) sink += (unsigned char)v->u.str[v->len - 1];
    }
    size_t jl;
    const char *js = vigil_event_json(e, &jl);
    sink += jl ? (unsigned char)js[jl - 1] : 0;
    sink += (size_t)vigil_event_field_text(e, "tx_amount", buf, sizeof buf);
    sink += (size_t)vigil_event_field_text(e, "tx_fraud", buf, sizeof buf);
    sink += (size_t)vigil_event_field_text(e, "nope", buf, 1);
    (void)sink;
}

static void on_error(void *ud, const vigil_error *err) {
    char buf[1024];
    vigil_error_format(err, buf, sizeof buf);
    (*(size_t *)ud) += strlen(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t gzn = gzip(data, size);
    if (put(fd_a, data, size) != 0 || put(fd_b, gzbuf, gzn) != 0) return 0;
    vigil_input *ins[2] = {NULL, NULL};
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_input_open(path_a, rs, &opts_a, &ins[0], &err) != VIGIL_OK) ins[0] = NULL;
    vigil_error_clear(&err);
    if (vigil_input_open(spec_b, rs, &opts_b, &ins[1], &err) != VIGIL_OK) ins[1] = NULL;
    int n = 0;
    if (ins[0]) ins[n++] = ins[0];
    if (ins[1]) ins[n++] = ins[1];
    if (!n) return 0;
    vigil_merge *m = NULL;
    size_t errlen = 0;
    if (vigil_merge_create(ins, n, on_error, &errlen, &m) != VIGIL_OK) {
        for (int i = 0; i < n; i++) vigil_input_close(ins[i]);
        return 0;
    }
    vigil_event *ev;
    int which, count = 0;
    while (count < MAX_EVENTS && vigil_merge_next(m, &ev, &which) == VIGIL_OK) {
        touch(ev);
        vigil_event_release(ev);
        count++;
    }
    volatile double progress = vigil_merge_progress(m);
    if (getenv("FUZZ_VERBOSE"))   /* to check that seeds decode: FUZZ_VERBOSE=1 ./fuzz_csv -runs=0 corpus/csv */
        fprintf(stderr, "fuzz_csv: %d inputs open, %d events, %llu bad lines, progress %.2f\n", n, count,
                (unsigned long long)vigil_merge_errors(m), progress);
    vigil_merge_destroy(m);
    return 0;
}
