/* input.c — event files for replay and feed: CSV or JSON Lines, gzip or
 * plain (zlib), merged stably by (event time, input order, line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include "input.h"

#define MAX_LINE (1 << 20)

struct vigil_input {
    gzFile gz;
    char *path;
    char *type;              /* TYPE= or NULL */
    int csv;
    vigil_csv_header *hdr;
    const vigil_ruleset *rs;
    vigil_decode_opts opts;  /* copy with type_default set */
    char *buf;
    uint64_t line;
    uint64_t size;
    char idbuf[300];
    int csv_has_id;          /* the header has one of the id fields */
};

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

vigil_status vigil_input_open(const char *spec, const vigil_ruleset *rs, const vigil_decode_opts *opts,
                              vigil_input **out, vigil_error *err) {
    vigil_input *in = calloc(1, sizeof *in);
    if (!in || !(in->buf = malloc(MAX_LINE))) {
        free(in);
        return VIGIL_ENOMEM;
    }
    const char *eq = strchr(spec, '=');
    const char *slash = strchr(spec, '/');
    if (eq && (!slash || eq < slash)) {
        in->type = strndup(spec, (size_t)(eq - spec));
        in->path = strdup(eq + 1);
    } else {
        in->path = strdup(spec);
    }
    in->rs = rs;
    if (opts) in->opts = *opts;
    in->opts.type_default = in->type;
    in->csv = ends_with(in->path, ".csv") || ends_with(in->path, ".csv.gz");
    struct stat st;
    if (stat(in->path, &st) == 0) in->size = (uint64_t)st.st_size;
    in->gz = gzopen(in->path, "rb");
    if (!in->gz) {
        vigil_error_set(err, VIGIL_EIO, "cannot open input '%s'", in->path);
        vigil_input_close(in);
        return VIGIL_EIO;
    }
    gzbuffer(in->gz, 1 << 18);
    if (in->csv) {
        if (!gzgets(in->gz, in->buf, MAX_LINE)) {
            vigil_error_set(err, VIGIL_EPARSE, "input '%s' is empty: expected a CSV header", in->path);
            vigil_input_close(in);
            return VIGIL_EPARSE;
        }
        in->line = 1;
        vigil_status s = vigil_csv_header_create(rs, in->buf, strlen(in->buf), &in->hdr, err);
        if (s == VIGIL_OK) {
            int nid = in->opts.nid_fields ? in->opts.nid_fields : 1;
            for (int i = 0; i < nid; i++) {
                const char *name = in->opts.nid_fields ? in->opts.id_fields[i] : "id";
                size_t nl = strlen(name);
                const char *h = in->buf;   /* header text: look for the column name */
                for (const char *p = strstr(h, name); p; p = strstr(p + 1, name))
                    if ((p == h || p[-1] == ',' || p[-1] == '"') &&
                        (p[nl] == ',' || p[nl] == '"' || p[nl] == '\n' || p[nl] == '\r' || p[nl] == '\0'))
                        in->csv_has_id = 1;
            }
        }
        if (s != VIGIL_OK) {
            if (err) {
                snprintf(err->file, sizeof err->file, "%s", in->path);
                err->line = 1;
            }
            vigil_input_close(in);
            return s;
        }
    }
    *out = in;
    return VIGIL_OK;
}

void vigil_input_close(vigil_input *in) {
    if (!in) return;
    if (in->gz) gzclose(in->gz);
    vigil_csv_header_destroy(in->hdr);
    free(in->buf);
    free(in->path);
    free(in->type);
    free(in);
}

vigil_status vigil_input_next(vigil_input *in, vigil_event **ev, vigil_error *err) {
    for (;;) {
        if (!gzgets(in->gz, in->buf, MAX_LINE)) {
            int e;
            gzerror(in->gz, &e);
            if (e != Z_OK && e != Z_STREAM_END) {
                vigil_error_set(err, VIGIL_EIO, "read error in '%s'", in->path);
                return VIGIL_EIO;
            }
            return VIGIL_ENOTFOUND;
        }
        in->line++;
        size_t len = strlen(in->buf);
        if (len == MAX_LINE - 1 && in->buf[len - 1] != '\n') {
            /* skip the rest of an over-long line, then report it */
            size_t sl;   /* (a NUL byte in the data can make a chunk look empty) */
            while (gzgets(in->gz, in->buf, MAX_LINE) && ((sl = strlen(in->buf)) == 0 || in->buf[sl - 1] != '\n')) {}
            vigil_error_set(err, VIGIL_ETOOBIG, "line longer than %d bytes", MAX_LINE - 1);
            snprintf(err->file, sizeof err->file, "%s", in->path);
            err->line = (int)in->line;
            return VIGIL_ETOOBIG;
        }
        while (len && (in->buf[len - 1] == '\n' || in->buf[len - 1] == '\r')) len--;
        if (len == 0) continue;
        /* the fallback id "<input>:<line>" only where the rows may lack an id */
        const char *fid = NULL;
        if (!in->csv || !in->csv_has_id) {
            snprintf(in->idbuf, sizeof in->idbuf, "%s:%llu", in->path, (unsigned long long)in->line);
            fid = in->idbuf;
        }
        vigil_status s = in->csv ? vigil_event_decode_csv(in->rs, &in->opts, in->hdr, in->buf, len, fid, 0, ev, err)
                                 : vigil_event_decode_json(in->rs, &in->opts, in->buf, len, fid, 0, ev, err);
        if (s == VIGIL_OK && in->csv && !vigil_event_id(*ev)[0]) {   /* an empty id cell: retry with the fallback */
            vigil_event_release(*ev);
            snprintf(in->idbuf, sizeof in->idbuf, "%s:%llu", in->path, (unsigned long long)in->line);
            s = vigil_event_decode_csv(in->rs, &in->opts, in->hdr, in->buf, len, in->idbuf, 0, ev, err);
        }
        if (s != VIGIL_OK && err) {
            snprintf(err->file, sizeof err->file, "%s", in->path);
            err->line = (int)in->line;
        }
        return s;
    }
}

uint64_t vigil_input_bytes_read(const vigil_input *in) { return (uint64_t)gzoffset(in->gz); }
uint64_t vigil_input_size(const vigil_input *in) { return in->size; }

/* ---- merge ------------------------------------------------------------------ */

struct vigil_merge {
    int n;
    vigil_input **ins;
    vigil_event **head;      /* next event of each input, NULL at its end */
    uint64_t errors;
    vigil_merge_error_fn fn;
    void *ud;
};

static void fill(vigil_merge *m, int i) {
    m->head[i] = NULL;
    if (!m->ins[i]) return;
    for (;;) {
        vigil_error err;
        err.file[0] = err.rule[0] = err.msg[0] = '\0';   /* not a full clear: this runs per event */
        err.line = 0;
        vigil_status s = vigil_input_next(m->ins[i], &m->head[i], &err);
        if (s == VIGIL_OK) return;
        if (s == VIGIL_ENOTFOUND || s == VIGIL_EIO) {
            if (s == VIGIL_EIO) {
                m->errors++;
                if (m->fn) m->fn(m->ud, &err);
            }
            m->head[i] = NULL;
            return;
        }
        m->errors++;
        if (m->fn) m->fn(m->ud, &err);
    }
}

vigil_status vigil_merge_create(vigil_input **ins, int n, vigil_merge_error_fn fn, void *ud, vigil_merge **out) {
    vigil_merge *m = calloc(1, sizeof *m);
    if (!m || !(m->ins = calloc((size_t)n, sizeof *m->ins)) || !(m->head = calloc((size_t)n, sizeof *m->head))) {
        if (m) free(m->ins);
        free(m);
        return VIGIL_ENOMEM;
    }
    m->n = n;
    m->fn = fn;
    m->ud = ud;
    memcpy(m->ins, ins, (size_t)n * sizeof *ins);
    for (int i = 0; i < n; i++) fill(m, i);
    *out = m;
    return VIGIL_OK;
}

vigil_status vigil_merge_next(vigil_merge *m, vigil_event **ev, int *input) {
    int best = -1;
    for (int i = 0; i < m->n; i++)   /* few inputs: a linear scan beats a heap */
        if (m->head[i] && (best < 0 || vigil_event_time(m->head[i]) < vigil_event_time(m->head[best]))) best = i;
    if (best < 0) return VIGIL_ENOTFOUND;
    *ev = m->head[best];
    if (input) *input = best;
    fill(m, best);
    return VIGIL_OK;
}

uint64_t vigil_merge_errors(const vigil_merge *m) { return m->errors; }

double vigil_merge_progress(const vigil_merge *m) {
    uint64_t done = 0, total = 0;
    for (int i = 0; i < m->n; i++) {
        done += vigil_input_bytes_read(m->ins[i]);
        total += vigil_input_size(m->ins[i]);
    }
    return total ? (double)done / (double)total : 0;
}

void vigil_merge_destroy(vigil_merge *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) {
        vigil_event_release(m->head[i]);
        vigil_input_close(m->ins[i]);
    }
    free(m->ins);
    free(m->head);
    free(m);
}
