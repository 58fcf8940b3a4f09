/* rng.c - Philox4x32-10 normals and uniforms (layout in rng.h). The
 * generator itself is a dispatched kernel (kernels.c, one build per CPU code
 * path, cpu.h); Random123's philox4x32 here (rng_philox_block) is the
 * reference it is tested against bit for bit.
 */
#include "rng.h"
#include "kernels.h"

#include <Random123/philox.h>
#include <string.h>

void rng_philox_block(uint32_t out[4], uint64_t seed, uint32_t stream, uint32_t pass, uint64_t block)
{
    philox4x32_ctr_t ctr = {{(uint32_t)block, (uint32_t)(block >> 32), pass, stream}};
    philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    philox4x32_ctr_t r = philox4x32_R(10, ctr, key);
    memcpy(out, r.v, sizeof r.v);
}

void rng_normals(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass, uint64_t first_unit)
{
    bnn_kernels()->normals(out, n, seed, stream, pass, first_unit);
}

void rng_uniforms(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass, uint64_t first_unit)
{
    bnn_kernels()->uniforms(out, n, seed, stream, pass, first_unit);
}

uint64_t rng_u64(uint64_t seed, uint32_t stream, uint32_t pass, uint64_t index)
{
    uint32_t w[4];
    rng_philox_block(w, seed, stream, pass, index / 2);
    int j = (int)(index % 2) * 2;
    return (uint64_t)w[j] | (uint64_t)w[j + 1] << 32;
}
