/* webhooks.h — webhook delivery as the server's lifecycle sees it: start,
 * append (memory store), metrics, stop.
 *
 * The alerts wing has ONE webhook sender, the outbox dispatcher
 * (dispatch.h), and three outboxes (outbox.h). This module picks the
 * outbox the server's configuration calls for and starts the dispatcher on
 * it, so the lifecycle (server/server.c) makes one call:
 *   - redis_url set:          the Redis stream <prefix>:outbox (workers XADD
 *                             in their commit, vigil_redis_store_commit)
 *   - else data_dir not "":   the file <data_dir>/outbox.log
 *   - else (nothing durable): the in-memory outbox (VIGIL_WEBHOOKS_MEM_CAP
 *                             alerts; full: alerts refused, counted, logged)
 *   - cluster mode:           the owned pairs' streams (vigil_webhooks_start_pairs)
 * Endpoint i is eps[i] for i < neps, then one endpoint with defaults per URL
 * in urls (the --webhook URLs); names as vigil_dispatch_endpoint_name. */
#ifndef VIGIL_WEBHOOKS_H
#define VIGIL_WEBHOOKS_H

#include <stddef.h>
#include "dispatch.h"
#include "endpoint.h"
#include "outbox.h"
#include "record.h"
#include "vigil/status.h"

#define VIGIL_WEBHOOKS_MAX 64             /* endpoints (the dispatcher's limit) */
#define VIGIL_WEBHOOKS_MEM_CAP 100000     /* alerts the in-memory outbox holds */
#define VIGIL_WEBHOOKS_SHUTDOWN_MS 2000   /* requests in flight at stop; memory: draining too */

/* Open the outbox and start the dispatcher. With no endpoint at all
 * (neps + nurls == 0) nothing starts: *outbox and *dispatch are NULL.
 * A Redis that is unreachable or LOADING is waited for (retried every
 * 0.5 s, logged each time) rather than started without: the server must
 * not run without its outbox. On success the caller owns both until
 * vigil_webhooks_stop. Errors: VIGIL_EINVAL (more than VIGIL_WEBHOOKS_MAX
 * endpoints, or a bad endpoint: err names it), the outbox's errors
 * (VIGIL_EIO, VIGIL_ESTORE, VIGIL_ENOMEM), the dispatcher's; *outbox and
 * *dispatch are NULL then. err may be NULL. */
vigil_status vigil_webhooks_start(const vigil_endpoint_config *eps, int neps, const char *const *urls, int nurls,
                                  const char *secret, const char *redis_url, const char *redis_prefix,
                                  const char *data_dir, int outbox_fsync, vigil_outbox **outbox,
                                  vigil_dispatch **dispatch, vigil_error *err);

/* Cluster mode (issue 14): the same on the pair outbox (outbox.h,
 * vigil_outbox_pairs_open) on redis_url/redis_prefix, which holds no pair
 * yet: the ownership wing's acquired/lost calls vigil_outbox_pairs_add /
 * vigil_outbox_pairs_remove on *outbox. It does not connect (its reads do,
 * and retry), so it never waits for Redis. Errors as above; VIGIL_EINVAL
 * without redis_url. */
vigil_status vigil_webhooks_start_pairs(const vigil_endpoint_config *eps, int neps, const char *const *urls,
                                        int nurls, const char *secret, const char *redis_url,
                                        const char *redis_prefix, vigil_outbox **outbox, vigil_dispatch **dispatch,
                                        vigil_error *err);

/* The memory store's commit: append a batch's alerts (shadow ones
 * included: the dispatcher filters them) to a file or memory outbox.
 * File: vigil_outbox_file_append (all or nothing; retry on error).
 * Memory: vigil_outbox_mem_append, except that alerts refused because the
 * outbox is full give VIGIL_OK (they are counted and logged there; retrying
 * would only hold the worker). Redis outboxes are appended to inside the
 * store's commit: VIGIL_EINVAL here. ob NULL (no endpoint): VIGIL_OK. */
vigil_status vigil_webhooks_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n, vigil_error *err);

/* The dispatcher's metrics (vigil_dispatch_metrics), plus for the memory
 * outbox:
 *   vigil_outbox_memory_refused_total   counter, alerts refused because it was full
 *   vigil_outbox_memory_held            gauge, alerts held (not acked by every endpoint)
 * Accepts NULLs (emits nothing). In dispatch_metrics.c. */
void vigil_webhooks_metrics(vigil_dispatch *d, vigil_outbox *ob, void (*emit)(void *ud, const char *text, size_t len),
                            void *ud);

/* Stop delivery and free both. Memory outbox: first let the dispatcher
 * deliver what is held for up to its shutdown_ms (vigil_dispatch_create;
 * VIGIL_WEBHOOKS_SHUTDOWN_MS when started here), since nothing else would
 * ever send it. Durable outboxes: stop at once; what is not acked is sent
 * after the restart. Then the dispatcher gives requests in flight up to
 * shutdown_ms: at most twice shutdown_ms in all. Accepts NULLs. */
void vigil_webhooks_stop(vigil_dispatch *d, vigil_outbox *ob);

#endif
