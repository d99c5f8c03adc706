/* Per-example SGD for plain matrix factorization, the way Surprise's SVD and implicit's BPR train: one
 * rating (or one positive and its sampled negatives) at a time, several threads updating the shared tables
 * without locks (Hogwild, Recht et al. 2011). Python calls mf_sgd() from one thread per slice of the
 * epoch's order; ctypes releases the GIL for the call.
 *
 * Every step is the exact gradient of the per-example objective that embedrec's autograd optimisers
 * minimise (train.py, losses.py), so train.lr and the weight decays mean the same thing there and here:
 *   mse: (r - mu - b_u - b_m - p.q)^2 + wu |p|^2 + wm |q|^2 + wb (b_u^2 + b_m^2)
 *   bpr: mean_j -log sigmoid(x_j) + wu |p|^2 + wm |q_i|^2 + wm mean_j |q_j|^2 (no L2 on biases),
 *        x_j = p.(q_i - q_j) + b_i - b_j, negatives j drawn uniformly (re-drawn when the user rated j)
 * Returns the summed objective over the slice (for the epoch's mean loss), measured before each step.
 *
 * Rows are random accesses into large tables, so the loop runs a software pipeline: the ids of example
 * t+2D are prefetched, the rows (and drawn negatives) of example t+D, and example t is computed.
 */
#include <stdint.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#define MAXNEG 64
#define D 4            /* prefetch distance, in examples */
#define RING 16        /* > 2 * D, a power of two */

static inline uint64_t next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline int64_t below(uint64_t *s, int64_t n) { return (int64_t)((next(s) >> 11) % (uint64_t)n); }

static inline int rated(const int64_t *indptr, const int32_t *indices, int64_t u, int32_t m) {
    int64_t lo = indptr[u], hi = indptr[u + 1];
    while (lo < hi) {
        int64_t mid = (lo + hi) >> 1;
        if (indices[mid] < m) lo = mid + 1; else hi = mid;
    }
    return lo < indptr[u + 1] && indices[lo] == m;
}

static inline void prefetch_row(const float *row, int dim) {
    for (int k = 0; k < dim; k += 16) __builtin_prefetch(row + k, 1, 3);
}

static inline float softplus_neg(float x) { /* -log sigmoid(x), stable both ways */
    return (x > 0 ? 0.f : -x) + log1pf(expf(-fabsf(x)));
}

double mf_sgd(int bpr, float *P, float *Q, float *BU, float *BM, int dim,
              const int64_t *users, const int64_t *movies, const float *ratings,
              const int64_t *order, int64_t start, int64_t end, float mu,
              float lr, float wu, float wm, float wb,
              int negatives, int64_t n_movies, const int64_t *indptr, const int32_t *indices, uint64_t seed) {
    double total = 0.0;
    uint64_t rng = seed;
    float gp[4096], z[MAXNEG];
    int64_t ru[RING], ri[RING], rn[RING][MAXNEG];
    if (dim > 4096 || negatives > MAXNEG || negatives < 1) return NAN;
    const int nneg = bpr ? negatives : 0;
    const float inv = 1.f / (float)negatives;
    for (int64_t t = start - 2 * D; t < end; t++) {
        int64_t a = t + 2 * D; /* stage 1: fetch the ids */
        if (a >= start && a < end) {
            int64_t x = order[a];
            __builtin_prefetch(users + x, 0, 3);
            __builtin_prefetch(movies + x, 0, 3);
            if (!bpr) __builtin_prefetch(ratings + x, 0, 3);
        }
        int64_t b = t + D; /* stage 2: read the ids, draw negatives, fetch the rows */
        if (b >= start && b < end) {
            int64_t x = order[b], u = users[x], i = movies[x], s = b & (RING - 1);
            ru[s] = u; ri[s] = i;
            prefetch_row(P + u * (int64_t)dim, dim);
            prefetch_row(Q + i * (int64_t)dim, dim);
            if (BU) __builtin_prefetch(BU + u, 1, 3);
            if (BM) __builtin_prefetch(BM + i, 1, 3);
            for (int j = 0; j < nneg; j++) {
                int64_t n = below(&rng, n_movies);
                if (indptr) /* implicit's verify_negative_samples: a few re-draws, then accept */
                    for (int tries = 0; tries < 8 && rated(indptr, indices, u, (int32_t)n); tries++)
                        n = below(&rng, n_movies);
                rn[s][j] = n;
                prefetch_row(Q + n * (int64_t)dim, dim);
                if (BM) __builtin_prefetch(BM + n, 1, 3);
            }
        }
        if (t < start) continue;
        const int s = t & (RING - 1); /* stage 3: the step */
        const int64_t u = ru[s], i = ri[s];
        float *restrict p = P + u * (int64_t)dim, *restrict q = Q + i * (int64_t)dim;
        if (!bpr) {
            float pred = mu, pp = 0.f, qq = 0.f;
            for (int k = 0; k < dim; k++) pred += p[k] * q[k];
            if (BU) pred += BU[u];
            if (BM) pred += BM[i];
            const float e = ratings[order[t]] - pred, c = 2.f * lr;
            for (int k = 0; k < dim; k++) {
                const float pk = p[k], qk = q[k];
                pp += pk * pk;
                qq += qk * qk;
                p[k] = pk + c * (e * qk - wu * pk);
                q[k] = qk + c * (e * pk - wm * qk);
            }
            total += (double)e * e + wu * pp + wm * qq;
            if (BU) { total += wb * BU[u] * BU[u]; BU[u] += c * (e - wb * BU[u]); }
            if (BM) { total += wb * BM[i] * BM[i]; BM[i] += c * (e - wb * BM[i]); }
        } else if (negatives == 1) { /* the common case, one fused pass like implicit's */
            const int64_t n = rn[s][0];
            float *restrict qn = Q + n * (int64_t)dim;
            float x = BM ? BM[i] - BM[n] : 0.f, pp = 0.f, qq = 0.f, nn = 0.f;
            for (int k = 0; k < dim; k++) x += p[k] * (q[k] - qn[k]);
            const float zz = 1.f / (1.f + expf(x)); /* sigmoid(-x) */
            for (int k = 0; k < dim; k++) {
                const float pk = p[k], qk = q[k], nk = qn[k];
                pp += pk * pk;
                qq += qk * qk;
                nn += nk * nk;
                p[k] = pk + lr * (zz * (qk - nk) - 2.f * wu * pk);
                q[k] = qk + lr * (zz * pk - 2.f * wm * qk);
                qn[k] = nk + lr * (-zz * pk - 2.f * wm * nk);
            }
            total += softplus_neg(x) + wu * pp + wm * (qq + nn);
            if (BM) { BM[i] += lr * zz; BM[n] -= lr * zz; }
        } else {
            float zsum = 0.f, pp = 0.f, qq = 0.f;
            for (int k = 0; k < dim; k++) { pp += p[k] * p[k]; qq += q[k] * q[k]; gp[k] = 0.f; }
            total += wu * pp + wm * qq;
            for (int j = 0; j < negatives; j++) {
                const float *restrict qn = Q + rn[s][j] * (int64_t)dim;
                float x = BM ? BM[i] - BM[rn[s][j]] : 0.f, nn = 0.f;
                for (int k = 0; k < dim; k++) { x += p[k] * (q[k] - qn[k]); nn += qn[k] * qn[k]; }
                total += inv * (softplus_neg(x) + wm * nn);
                z[j] = inv / (1.f + expf(x));
                zsum += z[j];
                for (int k = 0; k < dim; k++) gp[k] -= z[j] * qn[k];
            }
            /* gp = sum_j z_j (q_i - q_j), computed before any row moves */
            for (int k = 0; k < dim; k++) gp[k] += zsum * q[k];
            for (int j = 0; j < negatives; j++) {
                float *restrict qn = Q + rn[s][j] * (int64_t)dim;
                const float w = 2.f * wm * inv;
                for (int k = 0; k < dim; k++) qn[k] += lr * (-z[j] * p[k] - w * qn[k]);
            }
            for (int k = 0; k < dim; k++) {
                const float pk = p[k];
                q[k] += lr * (zsum * pk - 2.f * wm * q[k]);
                p[k] = pk + lr * (gp[k] - 2.f * wu * pk);
            }
            if (BM) {
                BM[i] += lr * zsum;
                for (int j = 0; j < negatives; j++) BM[rn[s][j]] -= lr * z[j];
            }
        }
    }
    return total;
}

/* Per-example SGD for SVD++ (Koren 2008), a user's ratings one after another: score = mu + b_u + b_m +
 * (p_u + z_u).q_m, z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j, and each example's objective is mf_sgd's mse plus
 * SVD++'s term for the implicit vectors as embedrec's autograd trainers weigh it (model/mf.py
 * implicit_penalty): wm |N(u)|^-1/2 sum_{j in N(u)} |y_j|^2. Every y_j of N(u) gets the same step from an
 * example, (1 - 2 lr wm n) y_j + 2 lr e n q (n = |N(u)|^-1/2), so they are kept as a shared scale a and
 * increment g (y_j = a y_j0 + g) while the user's examples run, z_u updated exactly in O(dim) per example,
 * and written back once per user: the exact per-example steps in O(dim) each, not O(|N(u)| dim). Users go in
 * ``order[start:end]``; a user's examples (rows indptr[u]..indptr[u+1] of movies/ratings, grouped by user)
 * in a seeded random order. N(u): nptr/nidx. Returns the summed objective over the slice, each example's
 * measured before its step (the y_j term from the user's start).
 */
double svdpp_sgd(float *P, float *Q, float *Y, float *BU, float *BM, int dim,
                 const int64_t *indptr, const int64_t *movies, const float *ratings,
                 const int64_t *nptr, const int64_t *nidx, const int64_t *order, int64_t start, int64_t end,
                 float mu, float lr, float wu, float wm, float wb, uint64_t seed) {
    double total = 0.0;
    uint64_t rng = seed;
    float z[4096], g[4096], pe[4096];
    if (dim > 4096) return NAN;
    int64_t most = 0;
    for (int64_t a = start; a < end; a++) {
        const int64_t u = order[a], c = indptr[u + 1] - indptr[u];
        if (c > most) most = c;
    }
    int64_t *idx = malloc((size_t)(most > 0 ? most : 1) * sizeof(int64_t));
    if (!idx) return NAN;
    for (int64_t a = start; a < end; a++) {
        const int64_t u = order[a], r0 = indptr[u], cnt = indptr[u + 1] - r0;
        if (cnt == 0) continue;
        const int64_t n0 = nptr[u], nn = nptr[u + 1] - n0;
        const float nrm = nn > 0 ? 1.f / sqrtf((float)nn) : 0.f;
        float *restrict p = P + u * (int64_t)dim;
        float ysq = 0.f;
        for (int k = 0; k < dim; k++) { z[k] = 0.f; g[k] = 0.f; }
        for (int64_t t = 0; t < nn; t++) {
            const float *restrict y = Y + nidx[n0 + t] * (int64_t)dim;
            for (int k = 0; k < dim; k++) { z[k] += y[k]; ysq += y[k] * y[k]; }
        }
        for (int k = 0; k < dim; k++) z[k] *= nrm;
        for (int64_t t = 0; t < cnt; t++) idx[t] = r0 + t;
        for (int64_t t = cnt - 1; t > 0; t--) { /* Fisher-Yates */
            const int64_t j = below(&rng, t + 1), x = idx[t];
            idx[t] = idx[j]; idx[j] = x;
        }
        const float decay = 1.f - 2.f * lr * wm * nrm;
        float scale = 1.f;
        total += (double)cnt * wm * nrm * ysq;
        for (int64_t t = 0; t < cnt; t++) {
            const int64_t x = idx[t], i = movies[x];
            float *restrict q = Q + i * (int64_t)dim;
            float pred = mu, pp = 0.f, qq = 0.f;
            for (int k = 0; k < dim; k++) { pe[k] = p[k] + z[k]; pred += pe[k] * q[k]; }
            if (BU) pred += BU[u];
            if (BM) pred += BM[i];
            const float e = ratings[x] - pred, c = 2.f * lr, gy = c * e * nrm;
            for (int k = 0; k < dim; k++) {
                const float pk = p[k], qk = q[k];
                pp += pk * pk;
                qq += qk * qk;
                p[k] = pk + c * (e * qk - wu * pk);
                q[k] = qk + c * (e * pe[k] - wm * qk);
                /* every y_j: y <- decay y + gy q; so g <- decay g + gy q, and z <- decay z + n |N| gy q */
                g[k] = decay * g[k] + gy * qk;
                z[k] = decay * z[k] + nrm * (float)nn * gy * qk;
            }
            scale *= decay;
            total += (double)e * e + wu * pp + wm * qq;
            if (BU) { total += wb * BU[u] * BU[u]; BU[u] += c * (e - wb * BU[u]); }
            if (BM) { total += wb * BM[i] * BM[i]; BM[i] += c * (e - wb * BM[i]); }
        }
        for (int64_t t = 0; t < nn; t++) {
            float *restrict y = Y + nidx[n0 + t] * (int64_t)dim;
            for (int k = 0; k < dim; k++) y[k] = scale * y[k] + g[k];
        }
    }
    free(idx);
    return total;
}

/* One half-sweep of implicit alternating least squares (iALS: Hu, Koren & Volinsky 2008; the objective and
 * frequency-scaled regularisation of Rendle et al. 2021), solved by conjugate gradient the way implicit's
 * ALS does it: for each row u in [start, end), `steps` CG steps warm-started from X[u] on
 *     (G + reg_u I + sum_{i in I_u} y_i y_i^T) x = sum_{i in I_u} y_i
 * where G = a0 * Y^T Y (the weight of every unobserved pair, computed once per half-sweep by the caller)
 * and I_u = indices[indptr[u]:indptr[u+1]], with weights w_i = W[t] (1 when W is NULL) on the y_i y_i^T and
 * y_i terms. That is the exact minimiser over x_u of
 *     sum_{i in I_u} w_i (1 - x.y_i)^2 + a0 sum_{all i} (x.y_i)^2 + reg_u |x|^2.
 * Returns `total` plus that objective summed over the rows, measured before each row's update, added to it row
 * by row: rows solved in several calls, each given the last one's return, add up as in one call.
 * G is diagonal, passed as its dim entries: the caller solves in the eigenbasis of a0 Y^T Y (Y and X rotated
 * by its eigenvectors), where CG's iterates are the same up to the rotation and the d^2 product with G at
 * every step becomes d multiplications. */
#define ROW_AHEAD 4   /* als_cg prefetches the rated row this many entries ahead, every cache line of it */

double als_cg(const float *Y, float *X, const float *G, const int64_t *indptr, const int32_t *indices,
              const float *W, const float *reg, int dim, int64_t start, int64_t end, int steps, double total) {
    /* CG's vectors and scalars in double, its products over the rated rows in float32 (the time is there). In
     * float32 the recurrences lost orthogonality by step 5 or 6 where one direction dominates (popularity):
     * 6 steps landed 2e-4 to 7e-3 from the same 6 steps in float64 (now 5e-5 to 9e-4; more with heavy
     * confidence weights), and torchrun's ranks (G summed in another order) re-solved users 3e-4 from one
     * process's (now 1.4e-5). All in double cost 1.5-1.75x here; this, 1.03-1.2x of the kernel and nothing
     * measurable in a train (BENCHMARKS.md, session 22). The buffers are on the heap: 160 KB of stack per call
     * would overflow a small thread stack (musl's 128 KB). */
    if (dim > 4096) return -1.0;               /* the objective is >= 0: a negative total says "not solved" */
    double *r = malloc(sizeof(double) * 4 * (size_t)dim);
    float *pf = malloc(sizeof(float) * 2 * (size_t)dim);
    if (r == NULL || pf == NULL) {
        free(r);
        free(pf);
        return -1.0;
    }
    double *p = r + dim, *ap = r + 2 * dim, *xd = r + 3 * dim;
    float *sum = pf + dim;
    for (int64_t u = start; u < end; u++) {
        float *x = X + u * (int64_t)dim;
        const int64_t lo = indptr[u], hi = indptr[u + 1];
        const double lam = reg[u];
        double obj = 0.0, xgx = 0.0, xx = 0.0;
        for (int k = 0; k < dim; k++) sum[k] = 0.f;
        for (int64_t t = lo; t < hi; t++) {       /* sum_i w_i (1 - x.y_i) y_i */
            const float *y = Y + (int64_t)indices[t] * dim;
            if (t + ROW_AHEAD < hi) prefetch_row(Y + (int64_t)indices[t + ROW_AHEAD] * dim, dim);
            float d = 0.f;
            for (int k = 0; k < dim; k++) d += y[k] * x[k];
            const float w = W ? W[t] : 1.f, c = 1.f - d;
            obj += (double)w * c * c;
            for (int k = 0; k < dim; k++) sum[k] += w * c * y[k];
        }
        double rs = 0.0;
        for (int k = 0; k < dim; k++) {           /* r = b - A x = that sum - (G + reg) x */
            xd[k] = x[k];
            const double s = (double)G[k] * xd[k];
            xgx += s * xd[k];
            xx += xd[k] * xd[k];
            r[k] = (double)sum[k] - s - lam * xd[k];
            p[k] = r[k];
            rs += r[k] * r[k];
        }
        total += obj + xgx + lam * xx;
        for (int s = 0; s < steps && rs > 1e-20; s++) {
            /* ap = (G + reg) p + sum_i w_i (y_i.p) y_i */
            for (int k = 0; k < dim; k++) { pf[k] = (float)p[k]; sum[k] = 0.f; }
            for (int64_t t = lo; t < hi; t++) {
                const float *y = Y + (int64_t)indices[t] * dim;
                if (t + ROW_AHEAD < hi) prefetch_row(Y + (int64_t)indices[t + ROW_AHEAD] * dim, dim);
                float d = 0.f;
                for (int k = 0; k < dim; k++) d += y[k] * pf[k];
                if (W) d *= W[t];
                for (int k = 0; k < dim; k++) sum[k] += d * y[k];
            }
            double pap = 0.0;
            for (int k = 0; k < dim; k++) {
                ap[k] = ((double)G[k] + lam) * p[k] + (double)sum[k];
                pap += p[k] * ap[k];
            }
            if (!(pap > 0.0)) break;
            const double a = rs / pap;
            double rsn = 0.0;
            for (int k = 0; k < dim; k++) {
                xd[k] += a * p[k];
                r[k] -= a * ap[k];
                rsn += r[k] * r[k];
            }
            const double beta = rsn / rs;
            for (int k = 0; k < dim; k++) p[k] = r[k] + beta * p[k];
            rs = rsn;
        }
        for (int k = 0; k < dim; k++) x[k] = (float)xd[k];
    }
    free(r);
    free(pf);
    return total;
}

/* Row-wise top-k of a float32 score matrix (rows row0..row1 of n_rows x n_cols), for per-epoch validation: the
 * k largest entries above -inf of each row, best first, ties to the lower column; slots left over get -1 and
 * -inf. One pass per row with a sorted insertion list (k is small), instead of numpy's argpartition + argsort;
 * once the list is full, blocks of TOPK_BLOCK scores none of which beats its last entry are skipped with one
 * vectorised comparison (NaN never beats it, as in the scalar test). */
#define TOPK_BLOCK 16

static inline int block_beats(const float *s, float th) {
    int any = 0;
    for (int q = 0; q < TOPK_BLOCK; q++) any |= s[q] > th;
    return any;
}

void topk_rows(const float *S, int64_t n_cols, int k, int64_t row0, int64_t row1, int64_t *idx, float *val)
{
    for (int64_t r = row0; r < row1; r++) {
        const float *s = S + r * n_cols;
        int64_t *ix = idx + r * k;
        float *v = val + r * k;
        int m = 0;
        int64_t scanned = 0;  /* scores before this are either skipped or in a block being walked one by one */
        for (int64_t j = 0; j < n_cols; j++) {
            if (m == k && j >= scanned) {
                while (j + TOPK_BLOCK <= n_cols && !block_beats(s + j, v[k - 1])) j += TOPK_BLOCK;
                if (j >= n_cols) break;
                scanned = j + TOPK_BLOCK;  /* this block has a score that enters: walk all of it */
            }
            float x = s[j];
            if (m == k ? !(x > v[k - 1]) : !(x > -INFINITY))
                continue;
            int p = m < k ? m++ : k - 1;
            while (p > 0 && v[p - 1] < x) {
                v[p] = v[p - 1];
                ix[p] = ix[p - 1];
                p--;
            }
            v[p] = x;
            ix[p] = j;
        }
        for (int p = m; p < k; p++) {
            ix[p] = -1;
            v[p] = -INFINITY;
        }
    }
}
