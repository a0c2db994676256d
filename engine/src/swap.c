/* swap.c — an engine moves to a new ruleset between two feeds (hot reload,
 * DESIGN.md §6): nothing lost, nothing matched twice, nothing forgotten
 * that the new version can still use.
 *
 * The new ruleset descends from the old one (lineage.c): fields and key
 * groups keep their indexes, so keys stay in their table slots and events
 * stay valid. What changes is the list of rules per group, hence each key's
 * array of rule states. For every key of a group whose list changed, a new
 * key's array of rule states is rearranged (in place when the group keeps
 * its number of rules, else in a new allocation) and each rule state moves
 * by (name, version): to the same version, or to the new version that
 * inherits it (same layout: a compatible version has the same aggregate
 * table, steps, within and skip). What no new rule takes is freed. Timers
 * point at key states and rule slots: each follows its state to its new
 * slot (or is voided). A state no new rule takes goes to a graveyard,
 * freed a few per event afterwards (freeing touches its memory: cache
 * misses that would lengthen the pause). Keys of a group whose states all stay in their slots
 * (its rules unchanged, or a compatible version in place of the old one)
 * are not touched: the swap then costs no walk at all. Events
 * held for max_out_of_orderness are decoded again against the new field
 * table. Everything that can fail (memory) is done before anything
 * changes, so a failed swap leaves the engine on its old ruleset. */
#include <stdlib.h>
#include <string.h>
#include "engine_int.h"

/* For each rule slot of new group g, the old slot whose state it takes
 * (-1: starts empty). NULL when out of memory. */
static int *slot_map(const vigil_ruleset *old, const vigil_ruleset *rs, int g) {
    const vgroup *ng = &rs->groups[g];
    const vgroup *og = &old->groups[g];
    int *map = malloc((size_t)(ng->nrules ? ng->nrules : 1) * sizeof *map);
    if (!map) return NULL;
    for (int j = 0; j < ng->nrules; j++) {   /* its own version first */
        const vrule *b = &rs->rules[ng->rules[j]];
        map[j] = -1;
        for (int i = 0; i < og->nrules && map[j] < 0; i++) {
            const vrule *a = &old->rules[og->rules[i]];
            if (a->version == b->version && strcmp(a->name, b->name) == 0) map[j] = i;
        }
    }
    for (int j = 0; j < ng->nrules; j++) {   /* then a version it inherits, one no other rule took */
        const vrule *b = &rs->rules[ng->rules[j]];
        for (int i = 0; i < og->nrules && map[j] < 0; i++) {
            const vrule *a = &old->rules[og->rules[i]];
            if (strcmp(a->name, b->name) != 0 || !vrule_takes(b, (uint32_t)a->version)) continue;
            int taken = 0;
            for (int k = 0; k < ng->nrules && !taken; k++) taken = map[k] == i;
            if (!taken) map[j] = i;
        }
    }
    return map;
}

/* The group's rules are the same names and versions in the same order: its
 * keys stay as they are. */
static int same_group(const vigil_ruleset *old, const vigil_ruleset *rs, int g) {
    const vgroup *ng = &rs->groups[g];
    const vgroup *og = &old->groups[g];
    if (og->nrules != ng->nrules) return 0;
    for (int j = 0; j < ng->nrules; j++) {
        const vrule *a = &old->rules[og->rules[j]], *b = &rs->rules[ng->rules[j]];
        if (a->version != b->version || a->draining != b->draining || strcmp(a->name, b->name) != 0) return 0;
    }
    return 1;
}

vigil_status vigil_engine_swap(vigil_engine *eng, vigil_ruleset *rs, vigil_error *err) {
    vigil_ruleset *old = eng->rs;
    if (rs == old) return VIGIL_OK;
    if (!rs->finalized || rs->nfields < old->nfields || rs->ngroups < old->ngroups)
        return vigil_error_set(err, VIGIL_EINVAL, "the new ruleset does not descend from the running one");
    for (int f = 0; f < old->nfields; f++)
        if (strcmp(old->fields[f], rs->fields[f]) != 0)
            return vigil_error_set(err, VIGIL_EINVAL, "the new ruleset does not descend from the running one");
    for (int g = 0; g < old->ngroups; g++)
        if (strcmp(old->groups[g].key, rs->groups[g].key) != 0)
            return vigil_error_set(err, VIGIL_EINVAL, "the new ruleset does not descend from the running one");

    /* 1. everything that can fail, before anything changes */
    vigil_status st = VIGIL_ENOMEM;
    veng_rs_parts parts = {0};
    void *host = NULL;
    int ng = old->ngroups, maxr = 1, regrow = 0, walk = 0;
    int **maps = calloc((size_t)(ng ? ng : 1), sizeof *maps);    /* new slot -> old slot */
    int **inv = calloc((size_t)(ng ? ng : 1), sizeof *inv);     /* old slot -> new slot */
    char *changed = calloc((size_t)(ng ? ng : 1), 1);
    vkeystate **fresh = NULL;     /* per table slot: the key's new state when its size changes */
    void **tmp = NULL;
    vheld *held = NULL;
    size_t nheld = eng->nheld;
    if (!maps || !inv || !changed || veng_rs_parts_make(eng, rs, &parts) != 0) goto fail;
    for (int g = 0; g < ng; g++) {
        if (same_group(old, rs, g)) continue;
        const vgroup *og = &old->groups[g], *ngr = &rs->groups[g];
        if (!(maps[g] = slot_map(old, rs, g)) || !(inv[g] = malloc((size_t)(og->nrules ? og->nrules : 1) * sizeof(int))))
            goto fail;
        int identity = og->nrules == ngr->nrules;   /* every state stays in its slot (a compatible version) */
        for (int j = 0; identity && j < ngr->nrules; j++) identity = maps[g][j] == j;
        if (identity) continue;   /* its keys need nothing: the new rules read the same states */
        changed[g] = 1;
        walk = 1;
        for (int i = 0; i < og->nrules; i++) inv[g][i] = -1;
        for (int j = 0; j < ngr->nrules; j++)
            if (maps[g][j] >= 0) inv[g][maps[g][j]] = j;
        if (og->nrules != ngr->nrules) regrow = 1;
        if (ngr->nrules > maxr) maxr = ngr->nrules;
    }
    if (!(tmp = calloc((size_t)maxr, sizeof *tmp))) goto fail;
    /* room in the graveyard for every state no new rule takes (at most the
     * untaken old slots of a changed group, per key), and for old's reference */
    size_t dead = 0;
    for (int g = 0; walk && g < ng; g++)
        for (int i = 0; changed[g] && i < old->groups[g].nrules; i++) dead += inv[g][i] < 0;
    if (walk && dead) {
        size_t need = eng->ngrave + dead * (eng->nkeys ? eng->nkeys : 1);
        if (need > eng->capgrave) {
            struct vgrave *ng2 = realloc(eng->grave, need * sizeof *ng2);
            if (!ng2) goto fail;
            eng->grave = ng2;
            eng->capgrave = need;
        }
    }
    /* old's reference joins the graveyard when this swap puts states there
     * (they point into old); states an earlier swap left hold their own ruleset */
    if (walk && dead) {
        vigil_ruleset **nr = realloc(eng->grave_rs, (size_t)(eng->ngrave_rs + 1) * sizeof *nr);
        if (!nr) goto fail;
        eng->grave_rs = nr;
    }
    if (regrow && !(fresh = calloc(eng->cap, sizeof *fresh))) goto fail;
    for (size_t i = 0; regrow && i < eng->cap; i++) {   /* keys whose rule count changes: a new state */
        vkeystate *ks = eng->tab[i].ks;
        if (!ks || !changed[ks->group] || old->groups[ks->group].nrules == rs->groups[ks->group].nrules) continue;
        size_t nr = (size_t)rs->groups[ks->group].nrules;
        size_t head = sizeof(vkeystate) + nr * sizeof(void *);
        vkeystate *nk = calloc(1, head + ks->keylen + 1);
        if (!nk) goto fail;
        fresh[i] = nk;
        nk->key = (char *)nk + head;
        memcpy(nk->key, ks->key, ks->keylen + 1);
        nk->keylen = ks->keylen;
        nk->hash = ks->hash;
        nk->group = ks->group;
        nk->seq = ks->seq;
        nk->last_ts = ks->last_ts;
    }
    if (nheld) {   /* held events: decoded again against the new field table */
        if (!(held = calloc(nheld, sizeof *held))) goto fail;
        for (size_t i = 0; i < nheld; i++) {
            const vheld *h = &eng->held[i];
            size_t jl = 0;
            const char *js = vigil_event_json(h->ev, &jl);
            vigil_event *ne = NULL;
            if (!js || vev_from_record(rs, h->ev->id, strlen(h->ev->id), h->ev->ts, js, jl, &ne) != VIGIL_OK) {
                st = VIGIL_ENOMEM;
                goto fail;
            }
            held[i] = *h;
            held[i].ev = ne;
        }
    }
    if (rs->host.open && !(host = rs->host.open(rs->host_ud, rs))) {
        st = vigil_error_set(err, VIGIL_ECOMPILE, "the new rules' Lua functions could not be loaded");
        goto fail;
    }

    /* 2. commit: nothing below fails */
    size_t grave0 = eng->ngrave;   /* states an earlier swap left there are not this swap's */
    /* timers follow their state to its new slot (a state no rule takes: void) */
    for (size_t t = 0; walk && t < eng->ntimers; t++) {
        vtimer *tm = &eng->timers[t];
        int g = tm->ks->group;
        if (!changed[g]) continue;
        tm->slot = tm->slot >= 0 ? inv[g][tm->slot] : -1;
        if (fresh) {
            size_t i = veng_ks_slot(eng, g, tm->ks->key, tm->ks->keylen, tm->ks->hash);
            if (fresh[i]) tm->ks = fresh[i];
        }
    }
    for (size_t i = 0; walk && i < eng->cap; i++) {
        vkeystate *ks = eng->tab[i].ks;
        if (!ks || !changed[ks->group]) continue;
        const vgroup *og = &old->groups[ks->group];
        const int *map = maps[ks->group];
        int nr = rs->groups[ks->group].nrules;
        for (int j = 0; j < nr; j++) {   /* each new rule's state, taken from the old slots */
            tmp[j] = map[j] >= 0 ? ks->rs[map[j]] : NULL;
            if (map[j] >= 0) ks->rs[map[j]] = NULL;
        }
        for (int k = 0; k < og->nrules; k++)   /* what no rule took: freed after the pause */
            if (ks->rs[k]) eng->grave[eng->ngrave++] = (struct vgrave){.st = ks->rs[k], .r = &old->rules[og->rules[k]]};
        vkeystate *nk = fresh ? fresh[i] : NULL;
        if (nk) {   /* another rule count: the new allocation */
            nk->dirty = ks->dirty;
            nk->ntimers = ks->ntimers;
            free(ks);
            eng->tab[i].ks = nk;
            ks = nk;
        }
        memcpy(ks->rs, tmp, (size_t)nr * sizeof *tmp);
    }
    if (fresh && eng->ndirty) {   /* the dirty list pointed at replaced states: rebuilt from the flags */
        size_t n = 0;
        for (size_t i = 0; i < eng->cap && n < eng->capdirty; i++)
            if (eng->tab[i].ks && eng->tab[i].ks->dirty) eng->dirty[n++] = eng->tab[i].ks;
        eng->ndirty = n;
    }
    for (size_t i = 0; i < nheld; i++) {
        vigil_event_release(eng->held[i].ev);
        eng->held[i] = held[i];
    }
    if (eng->host) old->host.close(eng->host);
    eng->host = host;
    /* per-rule alert counts follow their (name, version) */
    for (int j = 0; j < rs->nrules; j++) {
        int i = vigil_ruleset_rule_find(old, rs->rules[j].name, rs->rules[j].version);
        if (i >= 0) parts.rule_alerts[j] = eng->rule_alerts[i];
    }
    veng_rs_parts_install(eng, &parts);
    eng->rs = rs;
    vigil_ruleset_retain(rs);
    if (eng->ngrave > grave0) {   /* the graveyard's new rules point into old: keep it until they are freed
                                     (room for it was made above, with the room for the states) */
        vigil_ruleset_retain(old);
        eng->grave_rs[eng->ngrave_rs++] = old;
    }
    for (int g = 0; g < ng; g++) free(maps[g]), free(inv[g]);
    free(maps);
    free(inv);
    free(changed);
    free(fresh);
    free(tmp);
    free(held);
    vigil_ruleset_release(old);
    return VIGIL_OK;

fail:
    if (host) rs->host.close(host);
    for (size_t i = 0; held && i < nheld; i++) vigil_event_release(held[i].ev);
    free(held);
    for (size_t i = 0; fresh && i < eng->cap; i++) free(fresh[i]);
    free(fresh);
    free(tmp);
    for (int g = 0; maps && g < ng; g++) free(maps[g]);
    for (int g = 0; inv && g < ng; g++) free(inv[g]);
    free(maps);
    free(inv);
    free(changed);
    veng_rs_parts_free(&parts);
    if (st == VIGIL_ENOMEM) vigil_error_set(err, st, "out of memory switching to the new rules");
    return st;
}

void veng_grave_drain(vigil_engine *eng, size_t n) {
    while (eng->ngrave && n--) {
        struct vgrave *g = &eng->grave[--eng->ngrave];
        if (g->r->nsteps) vnfa_free(g->st);
        else vwin_free(g->st, g->r);
    }
    if (eng->ngrave) return;
    for (int i = 0; i < eng->ngrave_rs; i++) vigil_ruleset_release(eng->grave_rs[i]);
    eng->ngrave_rs = 0;
    if (eng->capgrave > 4096) {   /* a large graveyard's memory goes back */
        free(eng->grave);
        eng->grave = NULL;
        eng->capgrave = 0;
    }
}

void vigil_engine_rule_live(const vigil_engine *eng, uint64_t *counts) {
    const vigil_ruleset *rs = eng->rs;
    memset(counts, 0, (size_t)rs->nrules * sizeof *counts);
    for (size_t i = 0; i < eng->cap; i++) {
        const vkeystate *ks = eng->tab[i].ks;
        if (!ks) continue;
        const vgroup *g = &rs->groups[ks->group];
        for (int j = 0; j < g->nrules; j++) {
            const vrule *r = &rs->rules[g->rules[j]];
            if (!ks->rs[j]) continue;
            if (r->nsteps ? ((const vpat *)ks->rs[j])->nruns > 0 : vwin_live(r, ks->rs[j]))
                counts[g->rules[j]]++;
        }
    }
}
