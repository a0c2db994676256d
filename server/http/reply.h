/* reply.h — answering an HTTP request: JSON, text and RFC 9457 problem
 * details (application/problem+json). Every wing's handlers answer through
 * these, so errors look the same everywhere. Each returns the result of
 * MHD_queue_response (MHD_NO when out of memory). */
#ifndef VIGIL_HTTP_REPLY_H
#define VIGIL_HTTP_REPLY_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

/* Add X-Request-Id (the request this thread handles, server/common/log.h)
 * to a response built outside these helpers. Every helper below does it. */
void vigil_http_tag(struct MHD_Response *r);

/* body (len bytes) is copied. Adds Cache-Control: no-store. */
enum MHD_Result vigil_http_send_text(struct MHD_Connection *c, unsigned status, const char *type, const char *body,
                                     size_t len);
/* Serialises o and deletes it. */
enum MHD_Result vigil_http_send_json(struct MHD_Connection *c, unsigned status, cJSON *o);
/* {"type":"about:blank","title","status","detail"} merged into extra (taken
 * over and deleted; may be NULL); retry_after (may be NULL) becomes the
 * Retry-After header. detail may be NULL. */
enum MHD_Result vigil_http_problem(struct MHD_Connection *c, unsigned status, const char *title, const char *detail,
                                   cJSON *extra, const char *retry_after);

/* The same with one more header (WWW-Authenticate on a 401). */
enum MHD_Result vigil_http_problem_h(struct MHD_Connection *c, unsigned status, const char *title, const char *detail,
                                     cJSON *extra, const char *header, const char *value);

#endif
