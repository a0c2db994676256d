/* reply.c — JSON, text and problem+json answers (reply.h). */
#include <stdlib.h>
#include <string.h>
#include "reply.h"
#include "server/common/log.h"

void vigil_http_tag(struct MHD_Response *r) {
    const char *id = vigil_log_request();
    if (r && id) MHD_add_response_header(r, "X-Request-Id", id);
}

enum MHD_Result vigil_http_send_text(struct MHD_Connection *c, unsigned status, const char *type, const char *body,
                                     size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    vigil_http_tag(r);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result vigil_http_send_json(struct MHD_Connection *c, unsigned status, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return MHD_NO;
    enum MHD_Result r = vigil_http_send_text(c, status, "application/json", s, strlen(s));
    free(s);
    return r;
}

enum MHD_Result vigil_http_problem(struct MHD_Connection *c, unsigned status, const char *title, const char *detail,
                                   cJSON *extra, const char *retry_after) {
    return vigil_http_problem_h(c, status, title, detail, extra, retry_after ? "Retry-After" : NULL, retry_after);
}

enum MHD_Result vigil_http_problem_h(struct MHD_Connection *c, unsigned status, const char *title, const char *detail,
                                     cJSON *extra, const char *header, const char *value) {
    cJSON *o = extra ? extra : cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "about:blank");
    cJSON_AddStringToObject(o, "title", title);
    cJSON_AddNumberToObject(o, "status", status);
    if (detail) cJSON_AddStringToObject(o, "detail", detail);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/problem+json");
    if (header && value) MHD_add_response_header(r, header, value);
    vigil_http_tag(r);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}
