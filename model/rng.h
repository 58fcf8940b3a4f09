/* rng.h - counter-based randomness: Philox4x32-10 (Random123) keyed by the
 * request seed. A normal is addressed by (seed, stream, pass, unit): the same
 * address gives the same bits whatever the thread, block size or call order.
 * Normals by Box-Muller, four per Philox call.
 *
 * Exact layout (a replay in another language needs only this):
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { block & 0xffffffff, block >> 32, pass, stream },
 *             block = unit / 4, lane = unit % 4
 *   output words w0..w3 of philox4x32_R(10, counter, key);
 *   u(w)    = ((w >> 8) + 0.5) / 2^24, in the open interval (0, 1), so
 *             log(u) is finite (|normal| <= sqrt(2 ln 2^25) = 5.89);
 *   units 4b+0, 4b+1 = r cos(2 pi u(w1)), r sin(2 pi u(w1)), r = sqrt(-2 ln u(w0))
 *   units 4b+2, 4b+3 = the same with (w2, w3).
 *   uniforms: unit 4b+j = u(wj).   rng_u64 index i: block i/2, words
 *   (2(i%2), 2(i%2)+1) as (low, high).
 * u(w) is rounded to float and capped at the float below 1 (it would round
 * to 1 for w >> 8 = 2^24 - 1). log, sin and cos are float polynomials
 * accurate to a few 1e-7; the square root is IEEE. The Philox words are
 * exact everywhere; the normals' last bit depends on the CPU code path
 * (cpu.h: the avx2 and avx512 paths fuse multiply-adds, baseline does not).
 * Within one build and path a draw depends only on its address.
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

/* The raw Philox block (w0..w3) at the address above, computed with
 * Random123's own philox4x32 - the reference the vectorised generator used
 * by rng_normals is tested against. */
void rng_philox_block(uint32_t out[4], uint64_t seed, uint32_t stream, uint32_t pass, uint64_t block);

#endif
