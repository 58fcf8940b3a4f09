/* timing.h - the daemon's one monotonic clock, in milliseconds, for request
 * durations, queue waits, job deadlines and the drain wait. Header-only.
 */
#ifndef BNN_TIMING_H
#define BNN_TIMING_H

#include <time.h>

static inline double timing_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
