/* score.c — the replay scorer: event id → label, segment and the set of
 * rules that alerted on it, in an open-addressing table over a flat entry
 * array (ids copied into chunked storage). See score.h. */
#include <stdlib.h>
#include <string.h>
#include "score.h"
#include "vigil/ruleset.h"

typedef struct entry {
    uint64_t hash;
    uint32_t id;                 /* offset of the id text in the string chunks (global offset) */
    int8_t label;
    uint8_t seg;                 /* 255: none */
} entry;

struct vigil_score {
    int nrules, nsegs, words;    /* words: 64-bit words per entry's rule bitset */
    entry *ents;
    uint64_t *bits;              /* nents * words */
    size_t nents, capents;
    uint32_t *table;             /* entry index + 1; 0 = empty */
    size_t cap;
    char *strs;
    size_t slen, scap;
};

vigil_score *vigil_score_create(int nrules, int nsegs) {
    vigil_score *sc = calloc(1, sizeof *sc);
    if (!sc) return NULL;
    sc->nrules = nrules;
    sc->nsegs = nsegs;
    sc->words = (nrules + 63) / 64;
    if (sc->words == 0) sc->words = 1;
    sc->cap = 1 << 16;
    sc->table = calloc(sc->cap, sizeof *sc->table);
    if (!sc->table) {
        free(sc);
        return NULL;
    }
    return sc;
}

void vigil_score_destroy(vigil_score *sc) {
    if (!sc) return;
    free(sc->ents);
    free(sc->bits);
    free(sc->table);
    free(sc->strs);
    free(sc);
}

static int grow_table(vigil_score *sc) {
    size_t cap = sc->cap * 2;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    for (size_t i = 0; i < sc->nents; i++) {
        size_t j = sc->ents[i].hash & (cap - 1);
        while (t[j]) j = (j + 1) & (cap - 1);
        t[j] = (uint32_t)(i + 1);
    }
    free(sc->table);
    sc->table = t;
    sc->cap = cap;
    return 0;
}

/* The entry of id, created when absent (label -1); NULL when out of memory. */
static entry *find(vigil_score *sc, const char *id, int create, size_t *index) {
    uint64_t h = vigil_hash(id, strlen(id));
    size_t j = h & (sc->cap - 1);
    while (sc->table[j]) {
        entry *e = &sc->ents[sc->table[j] - 1];
        if (e->hash == h && strcmp(sc->strs + e->id, id) == 0) {
            *index = sc->table[j] - 1;
            return e;
        }
        j = (j + 1) & (sc->cap - 1);
    }
    if (!create) return NULL;
    if ((sc->nents + 1) * 2 > sc->cap) {
        if (grow_table(sc) != 0) return NULL;
        return find(sc, id, create, index);
    }
    if (sc->nents == sc->capents) {
        size_t c = sc->capents ? sc->capents * 2 : 1 << 16;
        entry *ne = realloc(sc->ents, c * sizeof *ne);
        if (!ne) return NULL;
        sc->ents = ne;
        uint64_t *nb = realloc(sc->bits, c * (size_t)sc->words * sizeof *nb);
        if (!nb) return NULL;
        sc->bits = nb;
        sc->capents = c;
    }
    size_t l = strlen(id) + 1;
    if (sc->slen + l > sc->scap) {
        size_t c = sc->scap ? sc->scap * 2 : 1 << 20;
        while (c < sc->slen + l) c *= 2;
        char *ns = realloc(sc->strs, c);
        if (!ns) return NULL;
        sc->strs = ns;
        sc->scap = c;
    }
    if (sc->slen > UINT32_MAX - l) return NULL;
    memcpy(sc->strs + sc->slen, id, l);
    entry *e = &sc->ents[sc->nents];
    e->hash = h;
    e->id = (uint32_t)sc->slen;
    e->label = -1;
    e->seg = 255;
    sc->slen += l;
    memset(&sc->bits[sc->nents * (size_t)sc->words], 0, (size_t)sc->words * sizeof *sc->bits);
    sc->table[j] = (uint32_t)(sc->nents + 1);
    *index = sc->nents++;
    return e;
}

int vigil_score_event(vigil_score *sc, const char *id, int label, int seg) {
    size_t i;
    entry *e = find(sc, id, 1, &i);
    if (!e) return -1;
    if (e->label < 0) {
        e->label = (int8_t)(label != 0);
        e->seg = seg >= 0 && seg < 255 ? (uint8_t)seg : 255;
    }
    return 0;
}

int vigil_score_alert(vigil_score *sc, const char *id, int rule) {
    size_t i;
    if (rule < 0 || rule >= sc->nrules) return 0;
    entry *e = find(sc, id, 1, &i);
    if (!e) return -1;
    sc->bits[i * (size_t)sc->words + (size_t)(rule / 64)] |= 1ULL << (rule % 64);
    return 0;
}

int vigil_score_finish(const vigil_score *sc, vigil_score_result *r) {
    memset(r, 0, sizeof *r);
    size_t nr = (size_t)(sc->nrules ? sc->nrules : 1), ns = (size_t)(sc->nsegs ? sc->nsegs : 1);
    r->events_alerted = calloc(nr, sizeof *r->events_alerted);
    r->tp = calloc(nr, sizeof *r->tp);
    r->seg_pos = calloc(ns, sizeof *r->seg_pos);
    r->seg_hit = calloc(ns, sizeof *r->seg_hit);
    if (!r->events_alerted || !r->tp || !r->seg_pos || !r->seg_hit) {
        vigil_score_result_free(r);
        return -1;
    }
    for (size_t i = 0; i < sc->nents; i++) {
        const entry *e = &sc->ents[i];
        const uint64_t *b = &sc->bits[i * (size_t)sc->words];
        int any = 0, pos = e->label == 1;
        for (int w = 0; w < sc->words; w++) any |= b[w] != 0;
        for (int k = 0; k < sc->nrules; k++)
            if (b[k / 64] >> (k % 64) & 1) {
                r->events_alerted[k]++;
                r->tp[k] += pos;
            }
        r->alerted += any;
        r->alerted_tp += any && pos;
        r->positives += pos;
        if (pos && e->seg != 255 && e->seg < sc->nsegs) {
            r->seg_pos[e->seg]++;
            r->seg_hit[e->seg] += any;
        }
    }
    return 0;
}

void vigil_score_result_free(vigil_score_result *r) {
    free(r->events_alerted);
    free(r->tp);
    free(r->seg_pos);
    free(r->seg_hit);
    memset(r, 0, sizeof *r);
}
