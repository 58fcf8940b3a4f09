/* bayes_dense.c - the mean-field Gaussian dense layer (see bayes_dense.h).
 *
 * With h the layer input (batch, n_in), the local reparameterization trick
 * samples the pre-activations instead of the weights (Kingma, Salimans &
 * Welling 2015):
 *     m = h W_mu + b_mu,  v = h^2 W_var + b_var,  z = m + sqrt(v) eps
 *     dm = dz,  dv = dz eps / (2 sqrt v)
 *     dW_mu = h^T dm,  dW_var = (h^2)^T dv,  db = column sums
 *     dh = dm W_mu^T + 2 h (dv W_var^T)
 * and through sigma = softplus(rho): dL/drho = dL/dvar 2 sigma sigmoid(rho).
 */
#include "bayes_dense.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

float bayes_dense_softplus(float x)
{
    return x > 20.0f ? x : log1pf(expf(x));
}

static float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

void bayes_dense_sigma(float *sigma, float *var, const float *rho, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float s = bayes_dense_softplus(rho[i]);
        sigma[i] = s;
        var[i] = s * s;
    }
}

/* ------------------------------------------------------- forward, backward */

void bayes_dense_moments(float *m, float *sd, float *in_sq, const float *in, const float *w_mu,
                         const float *w_var, const float *b_mu, const float *b_var, size_t B, size_t n_in,
                         size_t n_out)
{
    for (size_t i = 0; i < B * n_in; i++)
        in_sq[i] = in[i] * in[i];
    for (size_t b = 0; b < B; b++) {
        memcpy(m + b * n_out, b_mu, n_out * sizeof(float));
        memcpy(sd + b * n_out, b_var, n_out * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)n_out, (int)n_in, 1.0f, in, (int)n_in,
                w_mu, (int)n_out, 1.0f, m, (int)n_out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)n_out, (int)n_in, 1.0f, in_sq,
                (int)n_in, w_var, (int)n_out, 1.0f, sd, (int)n_out);
    for (size_t i = 0; i < B * n_out; i++)
        sd[i] = sqrtf(sd[i]);
}

void bayes_dense_forward(float *z, float *sd, float *in_sq, const float *in, const float *eps,
                         const float *w_mu, const float *w_var, const float *b_mu, const float *b_var,
                         size_t B, size_t n_in, size_t n_out)
{
    bayes_dense_moments(z, sd, in_sq, in, w_mu, w_var, b_mu, b_var, B, n_in, n_out);
    for (size_t i = 0; i < B * n_out; i++)
        z[i] += sd[i] * eps[i];
}

void bayes_dense_backward(float *din, float *dw_mu, float *dw_var, float *db_mu, float *db_var, float *dv,
                          float *tmp, const float *dz, const float *in, const float *in_sq, const float *eps,
                          const float *sd, const float *w_mu, const float *w_var, size_t B, size_t n_in,
                          size_t n_out)
{
    /* z = m + sqrt(v) eps  =>  dz/dv = eps / (2 sqrt v) */
    for (size_t i = 0; i < B * n_out; i++)
        dv[i] = dz[i] * eps[i] / (2.0f * sd[i]);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n_in, (int)n_out, (int)B, 1.0f, in, (int)n_in,
                dz, (int)n_out, 0.0f, dw_mu, (int)n_out);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n_in, (int)n_out, (int)B, 1.0f, in_sq,
                (int)n_in, dv, (int)n_out, 0.0f, dw_var, (int)n_out);
    for (size_t o = 0; o < n_out; o++)
        db_mu[o] = db_var[o] = 0.0f;
    for (size_t b = 0; b < B; b++) {
        for (size_t o = 0; o < n_out; o++) {
            db_mu[o] += dz[b * n_out + o];
            db_var[o] += dv[b * n_out + o];
        }
    }
    if (!din)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n_in, (int)n_out, 1.0f, dz, (int)n_out,
                w_mu, (int)n_out, 0.0f, din, (int)n_in);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n_in, (int)n_out, 1.0f, dv, (int)n_out,
                w_var, (int)n_out, 0.0f, tmp, (int)n_in);
    for (size_t i = 0; i < B * n_in; i++)
        din[i] += 2.0f * in[i] * tmp[i];
}

/* -------------------------------------------------------------------- KL */

double bayes_dense_kl(const float *mu, const float *sigma, size_t n, double prior_scale)
{
    /* KL(N(mu, s^2) || N(0, ps^2)) = log(ps / s) + (s^2 + mu^2) / (2 ps^2) - 1/2 */
    double ps2 = prior_scale * prior_scale, log_ps = log(prior_scale), acc = 0;
    for (size_t i = 0; i < n; i++) {
        double s = sigma[i], m = mu[i];
        acc += log_ps - log(s) + (s * s + m * m) / (2 * ps2) - 0.5;
    }
    return acc;
}

/*   dKL/dmu = mu / ps^2,  dKL/dsigma = -1/sigma + sigma / ps^2,
 *   dvar/dsigma = 2 sigma,  dsigma/drho = sigmoid(rho). */
void bayes_dense_kl_backward(float *d_mu, float *d_rho, const float *mu, const float *rho, const float *sigma,
                             size_t n, float kl_weight, float inv_ps2)
{
    for (size_t i = 0; i < n; i++) {
        float s = sigma[i];
        d_mu[i] += kl_weight * mu[i] * inv_ps2;
        float dsigma = d_rho[i] * 2.0f * s + kl_weight * (s * inv_ps2 - 1.0f / s);
        d_rho[i] = dsigma * sigmoidf(rho[i]);
    }
}
