/* serve.h — `vigil serve` as a process: the server's life from start to a
 * clean stop, with signals (the command line is cli/serve.c). */
#ifndef VIGIL_SERVE_H
#define VIGIL_SERVE_H

#include "server.h"

/* Start the server on cfg, log what runs, wait for SIGINT or SIGTERM, then
 * drain and stop. SIGHUP is logged and ignored. config names the config
 * file for the log (may be NULL). cfg and its strings must outlive the
 * call. Returns the process exit code: 0 after a clean stop, 1 when the
 * server could not start (the reason is on stderr). */
int vigil_serve_run(const vigil_server_config *cfg, const char *config);

#endif
