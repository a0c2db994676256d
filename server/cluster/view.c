/* view.c — GET /v1/cluster: the members and who owns which pair, as the
 * last heartbeat saw them (nothing here waits on NATS or Redis), with the
 * lag of this instance's pairs from the lead's hook. Role viewer: names,
 * URLs and counts, no secret. */
#include <stdlib.h>
#include <string.h>
#include "cluster_int.h"
#include "server/http/reply.h"

typedef struct owned {
    int g, p;
    cJSON *item;
} owned;

cJSON *vigil_cluster_json(vigil_cluster *c) {
    if (!c) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    pthread_mutex_lock(&c->mu);
    int P = c->cfg.partitions, ng = c->ngroups;
    uint64_t (*lag)(void *, int, int) = c->lag;
    void *lag_ud = c->lag_ud;
    cJSON_AddStringToObject(o, "instance", c->instance);
    cJSON_AddNumberToObject(o, "lease_ms", (double)c->cfg.lease_ms);
    cJSON_AddNumberToObject(o, "heartbeat_ms", (double)c->cfg.heartbeat_ms);
    cJSON_AddNumberToObject(o, "partitions", P);
    cJSON *groups = cJSON_AddArrayToObject(o, "groups");
    for (int g = 0; g < ng; g++) cJSON_AddItemToArray(groups, cJSON_CreateString(c->groups[g]));

    cJSON *members = cJSON_AddArrayToObject(o, "members");
    for (int i = 0; i < c->nmembers; i++) {
        const vcl_member *m = &c->members[i];
        int n = 0;
        for (int g = 0; g < ng; g++)
            for (int p = 0; p < P; p++)
                if (strcmp(c->pairs[g][p].owner, m->instance) == 0) n++;
        cJSON *mo = cJSON_CreateObject();
        cJSON_AddStringToObject(mo, "instance", m->instance);
        if (m->http) cJSON_AddStringToObject(mo, "http", m->http);
        else cJSON_AddNullToObject(mo, "http");
        cJSON_AddNumberToObject(mo, "age_ms", (double)m->age_ms);
        cJSON_AddBoolToObject(mo, "live", m->live);
        cJSON_AddBoolToObject(mo, "self", strcmp(m->instance, c->instance) == 0);
        cJSON *v = m->versions ? cJSON_Parse(m->versions) : NULL;
        cJSON_AddItemToObject(mo, "versions", v ? v : cJSON_CreateObject());
        cJSON_AddNumberToObject(mo, "pairs", n);
        cJSON_AddItemToArray(members, mo);
    }

    cJSON *pairs = cJSON_AddArrayToObject(o, "pairs");
    owned *mine = lag ? calloc((size_t)ng * (size_t)P + 1, sizeof *mine) : NULL;
    int nmine = 0;
    for (int g = 0; g < ng; g++) {
        for (int p = 0; p < P; p++) {
            const vcl_pair *pr = &c->pairs[g][p];
            cJSON *po = cJSON_CreateObject();
            cJSON_AddStringToObject(po, "group", c->groups[g]);
            cJSON_AddNumberToObject(po, "p", p);
            if (pr->owner[0]) cJSON_AddStringToObject(po, "owner", pr->owner);
            else cJSON_AddNullToObject(po, "owner");
            cJSON_AddNumberToObject(po, "epoch", (double)pr->seen_epoch);
            if (pr->lease_age_ms >= 0) cJSON_AddNumberToObject(po, "lease_age_ms", (double)pr->lease_age_ms);
            else cJSON_AddNullToObject(po, "lease_age_ms");
            cJSON_AddItemToArray(pairs, po);
            if (mine && pr->held) mine[nmine++] = (owned){g, p, po};
        }
    }
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < nmine; i++)   /* outside the lock: the hook reads other wings */
        cJSON_AddNumberToObject(mine[i].item, "lag", (double)lag(lag_ud, mine[i].g, mine[i].p));
    free(mine);
    return o;
}

static enum MHD_Result get_cluster(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r) {
    (void)url;
    (void)r;
    cJSON *o = vigil_cluster_json(ctx);
    if (!o) return vigil_http_problem(conn, 500, "Internal Server Error", "out of memory", NULL, NULL);
    return vigil_http_send_json(conn, 200, o);
}

void vigil_cluster_http(vigil_cluster *c, vigil_http *h) {
    vigil_http_route(h, "GET", "/v1/cluster", 0, get_cluster, c);
}
