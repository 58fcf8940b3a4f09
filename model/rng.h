/* rng.h - counter-based randomness: Philox4x32-10 (Random123) keyed by the
 * request seed. A normal is addressed by (seed, stream, pass, unit): the same
 * address gives the same bits whatever the thread, block size or call order.
 * Normals by Box-Muller, four per Philox call.
 */
#ifndef BNN_RNG_H
#define BNN_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Fills out[0..n) with N(0,1) draws for units first_unit..first_unit+n-1 of
 * the given pass in the given stream (stream = layer index, or any tag that
 * separates independent uses; bit 31 is reserved for the bias draws of
 * weight sampling). first_unit need not be a multiple of 4. */
void rng_normals(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass, uint64_t first_unit);

/* Uniform in (0, 1), addressed the same way (for dropout, shuffling). */
void rng_uniforms(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass, uint64_t first_unit);

/* A 64-bit value from the same address space (stream, pass, index). */
uint64_t rng_u64(uint64_t seed, uint32_t stream, uint32_t pass, uint64_t index);

#endif
