/* clock.h — the wall clock, in the units vigil uses everywhere.
 *
 * Event time drives matching (engine.h); the wall clock is only for what
 * happens around it: detection times in alerts, commit and latency
 * measurements, outbox timestamps, idle-source watermarks. It lives in the
 * core so that every layer reads one clock instead of keeping a copy. */
#ifndef VIGIL_CLOCK_H
#define VIGIL_CLOCK_H

#include <stdint.h>

int64_t vigil_now_ms(void);   /* CLOCK_REALTIME, ms since the epoch */
int64_t vigil_now_us(void);   /* CLOCK_REALTIME, µs since the epoch */

#endif
