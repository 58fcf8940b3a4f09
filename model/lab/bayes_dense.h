/* bayes_dense.h - one mean-field Gaussian dense layer of Bayes by backprop
 * (Blundell et al. 2015): each weight and bias is N(mu, sigma^2), sigma =
 * softplus(rho), sampled by local reparameterization (Kingma, Salimans &
 * Welling 2015); forward/backward pair, closed-form KL to N(0, ps^2), its gradient.
 * Invariant: var = sigma^2 of the current rho (bayes_dense_sigma), and a
 * backward sees the in, in_sq, eps and sd of the forward it follows.
 * Ownership: nothing here allocates or keeps a pointer; arrays are borrowed
 * for the call. No threads, randomness or errors: train.c owns those.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_BAYES_DENSE_H
#define BNN_BAYES_DENSE_H

#include <stddef.h>

/* softplus(x) = log(1 + e^x), the identity past 20 (where they agree in
 * float): sigma of a rho. */
float bayes_dense_softplus(float x);

/* sigma (n) = softplus(rho) and var (n) = sigma^2, elementwise. */
void bayes_dense_sigma(float *sigma, float *var, const float *rho, size_t n);

/* The two moments of the pre-activations given the layer input in (B, n_in):
 *     m (B, n_out) = in W_mu + b_mu,  sd (B, n_out) = sqrt(in^2 W_var + b_var)
 * with w_mu, w_var (n_in, n_out) and b_mu, b_var (n_out); in_sq (B, n_in)
 * receives in^2 (kept for the backward pass). */
void bayes_dense_moments(float *m, float *sd, float *in_sq, const float *in, const float *w_mu,
                         const float *w_var, const float *b_mu, const float *b_var, size_t B, size_t n_in,
                         size_t n_out);

/* z (B, n_out) = m + sd * eps: one LRT draw of the pre-activations, with
 * eps (B, n_out) ~ N(0,1) drawn by the caller; sd and in_sq as for
 * bayes_dense_moments. */
void bayes_dense_forward(float *z, float *sd, float *in_sq, const float *in, const float *eps,
                         const float *w_mu, const float *w_var, const float *b_mu, const float *b_var,
                         size_t B, size_t n_in, size_t n_out);

/* Given dz (B, n_out) = dL/dz after bayes_dense_forward on the same in, eps
 * and sd:
 *     dv = dz eps / (2 sd),  dW_mu = in^T dz,  dW_var = (in^2)^T dv,
 *     db = column sums,  din = dz W_mu^T + 2 in (dv W_var^T)
 * Overwrites (does not accumulate) dw_mu, dw_var (n_in, n_out), db_mu,
 * db_var (n_out) and, when din is non-NULL, din (B, n_in). dv (B, n_out) and
 * tmp (B, n_in) are scratch. */
void bayes_dense_backward(float *din, float *dw_mu, float *dw_var, float *db_mu, float *db_var, float *dv,
                          float *tmp, const float *dz, const float *in, const float *in_sq, const float *eps,
                          const float *sd, const float *w_mu, const float *w_var, size_t B, size_t n_in,
                          size_t n_out);

/* KL(q || prior) summed over n independent N(mu, sigma^2), closed form,
 * against the prior N(0, prior_scale^2) (nats). */
double bayes_dense_kl(const float *mu, const float *sigma, size_t n, double prior_scale);

/* The last step of the backward pass for n Gaussians (mu, rho, sigma =
 * softplus(rho)): adds kl_weight * dKL/dmu to d_mu, and turns d_rho from
 * dL/dvar (as bayes_dense_backward leaves it) into dL/drho of
 * L + kl_weight * KL. inv_ps2 = 1 / prior_scale^2. */
void bayes_dense_kl_backward(float *d_mu, float *d_rho, const float *mu, const float *rho, const float *sigma,
                             size_t n, float kl_weight, float inv_ps2);

#endif
