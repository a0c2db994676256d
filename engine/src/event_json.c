/* event_json.c — decoding a JSON object into an event with typed slots.
 *
 * First stage of the flow, the server's hot path (HTTP, core NATS and
 * JetStream bodies come here through server/ingest/batch.c; replay's JSON
 * Lines through cli/input.c). Two paths give the same event: an event of
 * plain JSON is read by json_scan.c's single pass (no tree, no copies);
 * any other, and every error, goes through cJSON, which parses and
 * validates it in a per-thread arena (json_arena.c), after which
 * json_text.c refuses what cJSON accepts and JSON does not. Only the
 * ruleset's fields (paths like "card.bin": nested objects, or a literal key
 * with a dot) are copied into slots. Keys and ids are taken as text:
 * strings as they are, numbers by their raw JSON text (1, 1.0 and 1e0 are
 * three keys). An event is one allocation (event, slots, keys, text,
 * strings). Split from event.c, which keeps the CSV decoder, the event's
 * allocation and the time parsers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/sha.h>
#include "internal.h"
#include "json_arena.h"
#include "json_scan.h"
#include "json_text.h"

/* ---- string pool for one event ------------------------------------------------ */

typedef struct spool { char *buf; size_t len, cap; int heap; } spool;

/* Append s and return its offset, or (size_t)-1. Offsets, not pointers:
 * the buffer may move while it grows (from the draft's own bytes to the
 * heap, then within it). */
static size_t spool_add(spool *p, const char *s, size_t n) {
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 128;
        while (cap < p->len + n + 1) cap *= 2;
        char *b = p->heap ? realloc(p->buf, cap) : malloc(cap);
        if (!b) return (size_t)-1;
        if (!p->heap && p->len) memcpy(b, p->buf, p->len);
        p->buf = b;
        p->cap = cap;
        p->heap = 1;
    }
    size_t off = p->len;
    memcpy(p->buf + off, s, n);
    p->buf[off + n] = '\0';
    p->len += n + 1;
    return off;
}

/* Slots and keys hold offsets into the pool while decoding (as pointers
 * cast from offset + 1, 0 meaning none); fix them up once the pool is in
 * its place. */
#define OFFPTR(o) ((const char *)(uintptr_t)((o) + 1))
static void fixup(vigil_event *e, char *strs) {
    e->strs = strs;
    for (int i = 0; i < e->nslots; i++)
        if (e->slots[i].type == VIGIL_T_STR) e->slots[i].u.str = strs + ((uintptr_t)e->slots[i].u.str - 1);
    for (int g = 0; g < e->ngroups; g++)
        if (e->keys[g].s) e->keys[g].s = strs + ((uintptr_t)e->keys[g].s - 1);
    e->id = strs + ((uintptr_t)e->id - 1);
}

/* An event while it is decoded: its slots and keys in the draft's arrays
 * (on the stack for rulesets of up to 64 fields and 16 key groups), its
 * strings in a pool (512 bytes on the stack, then the heap). draft_finish
 * makes it one allocation: the event, slots, keys, JSON text, strings. */
#define DRAFT_SLOTS 64
#define DRAFT_KEYS 16
typedef struct draft {
    vigil_event e;
    spool p;
    vigil_value sbuf[DRAFT_SLOTS];
    vkey kbuf[DRAFT_KEYS];
    char pbuf[512];
} draft;

static vigil_status draft_init(draft *d, int nslots, int ngroups) {
    memset(&d->e, 0, sizeof d->e);
    d->p = (spool){.buf = d->pbuf, .cap = sizeof d->pbuf};
    d->e.nslots = nslots;
    d->e.ngroups = ngroups;
    d->e.slots = nslots <= DRAFT_SLOTS ? d->sbuf : malloc((size_t)nslots * sizeof(vigil_value));
    d->e.keys = ngroups <= DRAFT_KEYS ? d->kbuf : malloc((size_t)ngroups * sizeof(vkey));
    if (!d->e.slots || !d->e.keys) return VIGIL_ENOMEM;
    memset(d->e.slots, 0, (size_t)nslots * sizeof(vigil_value));
    memset(d->e.keys, 0, (size_t)ngroups * sizeof(vkey));
    return VIGIL_OK;
}

static void draft_free(draft *d) {
    if (d->e.slots != d->sbuf) free(d->e.slots);
    if (d->e.keys != d->kbuf) free(d->e.keys);
    if (d->p.heap) free(d->p.buf);
}

/* The draft as an event of one allocation with the JSON text json[0..len).
 * NULL: out of memory. The draft is freed either way. */
static vigil_event *draft_finish(draft *d, const char *json, size_t len) {
    vigil_event *e = vev_alloc(d->e.nslots, d->e.ngroups, len + 1 + d->p.len);
    if (e) {
        memcpy(e->slots, d->e.slots, (size_t)d->e.nslots * sizeof(vigil_value));
        memcpy(e->keys, d->e.keys, (size_t)d->e.ngroups * sizeof(vkey));
        e->ts = d->e.ts;
        e->id = d->e.id;
        char *t = vev_text(e);
        memcpy(t, json, len);
        t[len] = '\0';
        e->json = t;
        e->json_len = len;
        memcpy(t + len + 1, d->p.buf, d->p.len);
        fixup(e, t + len + 1);
    }
    draft_free(d);
    return e;
}

/* Format an integral double exactly, as an id or key text. */
static int num_text(double v, char *buf, size_t n) {
    if (fabs(v) < 9007199254740992.0 && v == floor(v)) return snprintf(buf, n, "%.0f", v);
    return snprintf(buf, n, "%.17g", v);
}

/* ---- JSON -------------------------------------------------------------------- */

/* The event's tree on cJSON's path: its bytes, its tree and where its
 * top-level members' ':' are (json_text.h), for numbers' raw text. */
typedef struct jdoc {
    const char *buf;
    size_t len;
    const cJSON *root;
    const uint32_t *colons;
    int ncolons;
} jdoc;

#define MAX_COLONS 64   /* members past it take event_raw.c's search */

/* Where an event's values come from: cJSON's tree, or the scan of
 * json_scan.c (one of the two is set). */
typedef struct jsrc {
    const jdoc *d;
    const vjs_doc *s;
} jsrc;

/* A value as the decoder needs it, from either source. */
typedef struct jval {
    int type;            /* VIGIL_T_*: objects and arrays are VIGIL_T_MISSING */
    int b;               /* BOOL */
    const char *s;       /* STR: its text (NUL-terminated on cJSON's path only) */
    size_t n;
    double num;          /* NUM (from the scan: once jnum has read tok) */
    int ord;             /* a top-level member: its position among the root's members; else -1 */
    const char *tok;     /* NUM, from the scan: its token */
    size_t toklen;
} jval;

int vjs_enabled = 1;

/* A member of obj by name, as cJSON_GetObjectItemCaseSensitive finds it (the
 * first of that name); *ord: its position among obj's members. */
static const cJSON *member(const cJSON *obj, const char *name, int *ord) {
    int i = 0;
    for (const cJSON *c = obj->child; c && c->string; c = c->next, i++)
        if (c->string[0] == name[0] && strcmp(c->string, name) == 0) {
            *ord = i;
            return c;
        }
    return NULL;
}

/* The value at path: a top-level member of that name (*ord its position),
 * else, for a path with dots, the nested members along them (*ord -1). */
static const cJSON *json_path_at(const cJSON *obj, const char *path, int *ord) {
    *ord = -1;
    const cJSON *it = member(obj, path, ord);
    if (it || !strchr(path, '.')) return it;
    char seg[256];
    const char *p = path;
    const cJSON *cur = obj;
    int o;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof seg) return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (!cJSON_IsObject(cur)) return NULL;
        cur = member(cur, seg, &o);
        p = dot ? dot + 1 : p + n;
    }
    return cur;
}

static const cJSON *json_path(const cJSON *obj, const char *path) {
    int ord;
    return json_path_at(obj, path, &ord);
}

/* The scan's first member of object obj named name[0..nl), or -1. */
static int scan_member(const vjs_doc *d, int obj, const char *name, size_t nl, int *ord) {
    int k = 0;
    for (int i = 0; i < d->n; i++) {
        const vjs_member *m = &d->m[i];
        if (m->obj != obj) continue;
        if (m->name_len == nl && vbytes_eq(d->buf + m->name, name, nl)) {
            *ord = k;
            return i;
        }
        k++;
    }
    return -1;
}

/* json_path_at over the scan: the member at path, or -1. */
static int scan_path(const vjs_doc *d, const char *path, int *ord) {
    int o;
    *ord = -1;
    int i = scan_member(d, 0, path, strlen(path), ord);
    if (i >= 0 || !strchr(path, '.')) return i;
    *ord = -1;
    const char *p = path;
    int cur = -2;   /* -2: the root object; else a member */
    while (cur != -1 && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= 256) return -1;   /* as json_path_at's segment buffer */
        if (cur != -2 && d->m[cur].type != VJS_OBJ) return -1;
        cur = scan_member(d, cur == -2 ? 0 : d->m[cur].child, p, n, &o);
        p = dot ? dot + 1 : p + n;
    }
    return cur == -2 ? -1 : cur;
}

/* The value at path from either source: 1, or 0 when there is none. */
static int get(const jsrc *src, const char *path, jval *v) {
    if (src->d) {
        const cJSON *it = json_path_at(src->d->root, path, &v->ord);
        if (!it) return 0;
        v->tok = NULL;
        if (cJSON_IsNumber(it)) {
            v->type = VIGIL_T_NUM;
            v->num = it->valuedouble;
        } else if (cJSON_IsString(it)) {
            v->type = VIGIL_T_STR;
            v->s = it->valuestring;
            v->n = strlen(it->valuestring);
        } else if (cJSON_IsBool(it)) {
            v->type = VIGIL_T_BOOL;
            v->b = cJSON_IsTrue(it) != 0;
        } else if (cJSON_IsNull(it)) {
            v->type = VIGIL_T_NULL;
        } else {
            v->type = VIGIL_T_MISSING;   /* objects and arrays are not comparable values */
        }
        return 1;
    }
    const vjs_doc *d = src->s;
    int i = scan_path(d, path, &v->ord);
    if (i < 0) return 0;
    const vjs_member *m = &d->m[i];
    switch (m->type) {
    case VJS_STR:
        v->type = VIGIL_T_STR;
        v->s = d->buf + m->val;
        v->n = m->val_len;
        break;
    case VJS_NUM:   /* its double when it is asked for (jnum): a key or id needs only its text */
        v->type = VIGIL_T_NUM;
        v->tok = d->buf + m->val;
        v->toklen = m->val_len;
        break;
    case VJS_TRUE:
    case VJS_FALSE:
        v->type = VIGIL_T_BOOL;
        v->b = m->type == VJS_TRUE;
        break;
    case VJS_NULL:
        v->type = VIGIL_T_NULL;
        break;
    default:
        v->type = VIGIL_T_MISSING;
    }
    return 1;
}

/* A number's value: cJSON's, or what cJSON's strtod of the scan's token
 * gives. */
static double jnum(const jval *v) { return v->tok ? vev_json_number(v->tok, v->toklen) : v->num; }

/* The raw text of the number that is top-level member ord on cJSON's path:
 * after its ':', past what cJSON skips as whitespace (bytes up to 0x20),
 * the token's bytes. cJSON took that token whole (strtod stopped at its
 * end, or the object's syntax would have failed). 0, or -1: not known. */
static int raw_at(const jdoc *d, int ord, const char **out, size_t *olen) {
    if (ord < 0 || ord >= d->ncolons) return -1;
    size_t i = (d->colons[ord] & ~VJSON_NAME_ESCAPED) + 1, j;
    while (i < d->len && (unsigned char)d->buf[i] <= 0x20) i++;
    for (j = i; j < d->len; j++) {
        char c = d->buf[j];
        if (!((unsigned char)(c - '0') < 10 || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E')) break;
    }
    if (j == i) return -1;
    *out = d->buf + i;
    *olen = j - i;
    return 0;
}

/* A key's or id's text: strings as they are, numbers by their raw text
 * (1, 1.0, 1e0 are three keys: DESIGN.md §3), booleans as true/false. */
static vigil_status value_text(const jsrc *src, const jval *v, const char *name, spool *p, size_t *off) {
    char tmp[64];
    if (v->type == VIGIL_T_STR) {
        *off = spool_add(p, v->s, v->n);
    } else if (v->type == VIGIL_T_NUM) {
        const char *raw;
        size_t rl;
        int r;
        /* a top-level member's text where the scan (or the text check) saw
         * it; on cJSON's path a name written with escapes gets the double's
         * text, as event_raw.c (which looks for the name's bytes) always
         * gave it; nested members and members past MAX_COLONS are searched
         * for by event_raw.c */
        const jdoc *d = src->d;
        if (v->tok && v->ord >= 0) {
            raw = v->tok;
            rl = v->toklen;
            r = 0;
        } else if (d && v->ord >= 0 && v->ord < d->ncolons) {
            r = (d->colons[v->ord] & VJSON_NAME_ESCAPED) ? -1 : raw_at(d, v->ord, &raw, &rl);
        } else {
            r = d ? vev_raw_number(d->buf, d->len, name, v->num, &raw, &rl)
                  : vev_raw_number(src->s->buf, src->s->len, name, jnum(v), &raw, &rl);
        }
        if (r == 0) {
            *off = spool_add(p, raw, rl);
        } else {
            int n = num_text(jnum(v), tmp, sizeof tmp);
            *off = spool_add(p, tmp, (size_t)n);
        }
    } else if (v->type == VIGIL_T_BOOL) {
        *off = spool_add(p, v->b ? "true" : "false", v->b ? 4 : 5);
    } else {
        return VIGIL_EPARSE;
    }
    return *off == (size_t)-1 ? VIGIL_ENOMEM : VIGIL_OK;
}

#define KEEP_VALS 64   /* the fields' values kept for the key groups (a key is a field too) */

static vigil_status json_fill(const vigil_ruleset *rs, const jsrc *src, vigil_event *e, spool *p) {
    jval v, vals[KEEP_VALS];
    unsigned char found[KEEP_VALS];
    for (int f = 0; f < rs->nfields; f++) {
        vigil_value *sv = &e->slots[f];
        int have = get(src, rs->fields[f], &v);
        if (f < KEEP_VALS) {
            found[f] = (unsigned char)have;
            if (have) vals[f] = v;
        }
        if (!have) {
            sv->type = VIGIL_T_MISSING;
            continue;
        }
        sv->type = (vigil_type)v.type;
        if (v.type == VIGIL_T_NUM) {
            sv->u.num = jnum(&v);
        } else if (v.type == VIGIL_T_STR) {
            size_t off = spool_add(p, v.s, v.n);
            if (off == (size_t)-1) return VIGIL_ENOMEM;
            sv->len = (uint32_t)v.n;
            sv->u.str = OFFPTR(off);
        } else if (v.type == VIGIL_T_BOOL) {
            sv->u.b = v.b;
        }
    }
    for (int g = 0; g < rs->ngroups; g++) {
        size_t off;
        const char *key = rs->groups[g].key;
        int f = rs->groups[g].field, have;
        e->keys[g].s = NULL;
        if (f >= 0 && f < rs->nfields && f < KEEP_VALS && strcmp(rs->fields[f], key) == 0) {   /* looked up above */
            have = found[f];
            v = vals[f];
        } else {
            have = get(src, key, &v);
        }
        if (!have || value_text(src, &v, key, p, &off) != VIGIL_OK) continue;
        e->keys[g].s = OFFPTR(off);
        e->keys[g].len = (uint32_t)strlen(p->buf + off);
    }
    return VIGIL_OK;
}

static void hash_id(const char *buf, size_t len, char out[17]) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)buf, len, d);
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The event from its values (either source): slots, keys, type, time, id. */
static vigil_status fill_event(const vigil_ruleset *rs, const vigil_decode_opts *o, const jsrc *src, const char *buf,
                               size_t len, const char *fallback_id, int require_keys, vigil_event **out,
                               vigil_error *err) {
    draft dr;
    vigil_event *e = &dr.e;
    spool *p = &dr.p;
    vigil_status s = draft_init(&dr, rs->nfields, rs->ngroups);
    if (s != VIGIL_OK) goto fail;
    if ((s = json_fill(rs, src, e, p)) != VIGIL_OK) goto fail;
    if (o->type_default && rs->type_field >= 0 && e->slots[rs->type_field].type == VIGIL_T_MISSING) {
        size_t off = spool_add(p, o->type_default, strlen(o->type_default));
        if (off == (size_t)-1) goto fail;
        e->slots[rs->type_field] = (vigil_value){.type = VIGIL_T_STR, .len = (uint32_t)strlen(o->type_default),
                                                 .u.str = OFFPTR(off)};
    }
    /* time */
    jval t;
    int have = 0;
    const char *tname = o->ntime_fields ? o->time_fields[0] : "ts";
    for (int i = 0; i < o->ntime_fields && !have; i++)
        if ((have = get(src, o->time_fields[i], &t))) tname = o->time_fields[i];
    if (!o->ntime_fields) have = get(src, "ts", &t);
    if (!have) {
        char names[256];
        vev_join_names(o->ntime_fields ? o->time_fields : NULL, o->ntime_fields, names, sizeof names);
        s = vigil_error_set(err, VIGIL_ENOTIME, "missing event time field (looked for %s)", names);
        goto fail;
    }
    if (t.type == VIGIL_T_NUM) s = vigil_time_from_number(jnum(&t), o->time_format, &e->ts);
    else if (t.type == VIGIL_T_STR && o->time_format != VIGIL_TIME_S && o->time_format != VIGIL_TIME_MS)
        s = vigil_time_parse_rfc3339(t.s, t.n, &e->ts);
    else s = VIGIL_EPARSE;
    if (s != VIGIL_OK) {
        s = vigil_error_set(err, VIGIL_ENOTIME, "event time field '%s' is not a valid time (expected RFC 3339 text or epoch s/ms)", tname);
        goto fail;
    }
    /* id */
    jval idv;
    have = 0;
    const char *idname = "id";
    for (int i = 0; i < o->nid_fields && !have; i++)
        if ((have = get(src, o->id_fields[i], &idv))) idname = o->id_fields[i];
    if (!o->nid_fields) have = get(src, "id", &idv);
    size_t off;
    if (have && (s = value_text(src, &idv, idname, p, &off)) == VIGIL_OK) {
        e->id = OFFPTR(off);
    } else if (fallback_id) {
        if ((off = spool_add(p, fallback_id, strlen(fallback_id))) == (size_t)-1) goto fail;
        e->id = OFFPTR(off);
    } else {
        char h[17];
        hash_id(buf, len, h);
        if ((off = spool_add(p, h, 16)) == (size_t)-1) goto fail;
        e->id = OFFPTR(off);
    }
    if ((s = vev_check_keys(rs, e, require_keys, err)) != VIGIL_OK) {   /* on the draft: nothing to copy */
        draft_free(&dr);
        return s;
    }
    if (!(e = draft_finish(&dr, buf, len))) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory decoding an event");
    *out = e;
    return VIGIL_OK;
fail:
    draft_free(&dr);
    if (s == VIGIL_ENOMEM) vigil_error_set(err, s, "out of memory decoding an event");
    return s;
}

/* vigil_event_decode_json inside the arena: the tree is never deleted, the
 * arena's end takes it. An event the scan understands skips cJSON. */
static vigil_status decode_json(const vigil_ruleset *rs, const vigil_decode_opts *o, const char *buf, size_t len,
                                const char *fallback_id, int require_keys, vigil_event **out, vigil_error *err) {
    vjs_doc sd;
    if (vjs_enabled && vjs_scan(buf, len, &sd))
        return fill_event(rs, o, &(jsrc){.s = &sd}, buf, len, fallback_id, require_keys, out, err);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        long at = ep && ep >= buf && ep <= buf + len ? (long)(ep - buf) : -1;
        return vigil_error_set(err, VIGIL_EPARSE, "invalid JSON near byte %ld", at);
    }
    /* what cJSON accepts and JSON does not: the event keeps its text as it
     * came and its alerts quote it as evidence (json_text.h) */
    const char *why = NULL;
    uint32_t colons[MAX_COLONS];
    jdoc d = {.buf = buf, .len = len, .root = root, .colons = colons};
    size_t bad = vjson_text_bad(buf, len, end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len, &why,
                                colons, MAX_COLONS, &d.ncolons);
    if (bad < len) return vigil_error_set(err, VIGIL_EPARSE, "invalid JSON near byte %ld: %s", (long)bad, why);
    if (!cJSON_IsObject(root)) return vigil_error_set(err, VIGIL_EPARSE, "expected a JSON object");
    return fill_event(rs, o, &(jsrc){.d = &d}, buf, len, fallback_id, require_keys, out, err);
}

static vigil_status from_record(const vigil_ruleset *rs, const char *id, size_t idlen, int64_t ts,
                                const char *json, size_t len, vigil_event **out) {
    vjs_doc sd;
    jdoc d;
    uint32_t colons[MAX_COLONS];   /* where the members are (none if the text is not JSON: then searched) */
    jsrc src = {.s = &sd};
    if (!vjs_enabled || !vjs_scan(json, len, &sd)) {
        const char *end = NULL, *why;
        cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
        if (!root) return VIGIL_EPARSE;
        d = (jdoc){.buf = json, .len = len, .root = root, .colons = colons};
        (void)vjson_text_bad(json, len, end && end >= json && end <= json + len ? (size_t)(end - json) : len, &why,
                             colons, MAX_COLONS, &d.ncolons);
        src = (jsrc){.d = &d};
    }
    draft dr;
    size_t off;
    vigil_status s = draft_init(&dr, rs->nfields, rs->ngroups);
    if (s != VIGIL_OK) goto fail;
    if ((s = json_fill(rs, &src, &dr.e, &dr.p)) != VIGIL_OK) goto fail;
    s = VIGIL_ENOMEM;
    if ((off = spool_add(&dr.p, id, idlen)) == (size_t)-1) goto fail;
    dr.e.id = OFFPTR(off);
    dr.e.ts = ts;
    if (!(*out = draft_finish(&dr, json, len))) return VIGIL_ENOMEM;
    return VIGIL_OK;
fail:
    draft_free(&dr);
    return s;
}

vigil_status vigil_event_decode_json(const vigil_ruleset *rs, const vigil_decode_opts *o, const char *buf,
                                     size_t len, const char *fallback_id, int require_keys,
                                     vigil_event **out, vigil_error *err) {
    static const vigil_decode_opts defaults = {.time_fields = {"ts"}, .ntime_fields = 1,
                                               .id_fields = {"id"}, .nid_fields = 1};
    *out = NULL;
    vjson_arena_begin();
    vigil_status s = decode_json(rs, o ? o : &defaults, buf, len, fallback_id, require_keys, out, err);
    vjson_arena_end();
    return s;
}

vigil_status vev_from_record(const vigil_ruleset *rs, const char *id, size_t idlen, int64_t ts,
                             const char *json, size_t len, vigil_event **out) {
    vjson_arena_begin();
    vigil_status s = from_record(rs, id, idlen, ts, json, len, out);
    vjson_arena_end();
    return s;
}

vigil_status vigil_event_redecode(const vigil_ruleset *rs, const vigil_event *e, vigil_event **out) {
    size_t len = 0;
    const char *js = vigil_event_json(e, &len);
    if (!js) return VIGIL_ENOMEM;
    return vev_from_record(rs, e->id, strlen(e->id), e->ts, js, len, out);
}

int vev_json_field_text(const vigil_event *e, const char *path, char *buf, size_t n) {
    size_t len;
    const char *js = vigil_event_json(e, &len);
    cJSON *root = cJSON_ParseWithLength(js, len);
    const cJSON *it = root ? json_path(root, path) : NULL;
    int ok = 0;
    if (it && cJSON_IsString(it)) ok = snprintf(buf, n, "%s", it->valuestring) >= 0;
    else if (it && cJSON_IsNumber(it)) ok = num_text(it->valuedouble, buf, n) > 0;
    else if (it && cJSON_IsBool(it)) ok = snprintf(buf, n, "%s", cJSON_IsTrue(it) ? "true" : "false") > 0;
    cJSON_Delete(root);
    return ok;
}
