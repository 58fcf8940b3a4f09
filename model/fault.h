/* fault.h - fault injection for the loaders' error paths (SQLite-style).
 * bnn_fault_set(n) makes the n-th counted operation after the call fail: an
 * allocation returns NULL or a read reports an I/O error. Tests walk n = 1, 2,
 * ... until the load succeeds, checking every failure is reported and leaks
 * nothing. The counter is thread-local so concurrent threads (and tests in
 * other modules) are never affected; it is test-only state, off (0) by default.
 * Only the allocations and reads that model/ performs itself are counted
 * (jansson's and zlib's internal allocations are not).
 */
#ifndef BNN_FAULT_H
#define BNN_FAULT_H

#include <stddef.h>

/* Arms the hook: the nth counted operation from now fails (1-based), once.
 * nth = 0 disarms it. Resets the operation counter. */
void bnn_fault_set(long nth);

/* Counted operations since the last bnn_fault_set. */
long bnn_fault_ops(void);

/* Non-zero when the hook fired since the last bnn_fault_set. */
int bnn_fault_fired(void);

/* malloc / calloc / realloc that count as one operation and may fail. */
void *bnn_fault_malloc(size_t n);
void *bnn_fault_calloc(size_t n, size_t size);
void *bnn_fault_realloc(void *p, size_t n);

/* Call before each read: returns non-zero when this read must fail. */
int bnn_fault_io(void);

#endif
