/* CPU kernels for STAPFormer training and inference (float32, one SIMD width of 8 lanes).
 *
 * 1. Attention: out = softmax(scale * q k^T) v for N independent sequences of L tokens and C
 *    channels (C = 8, 16, 32 or 64). STAPFormer attends over 17 joints, 27-243 frames or a few
 *    hundred STAP tokens with heads 8 or 16 channels wide: batched BLAS calls spend most of their
 *    time on per-matrix overhead at these sizes, and the softmax on rows of 17-27 values barely
 *    vectorizes. Here one sequence at a time stays in L1 cache, with 8 queries per SIMD vector:
 *    the scores of each key against a transposed copy of Q, the softmax down the columns (no
 *    horizontal reductions), and the products with V, and in the backward pass with K, Q and dO,
 *    accumulated in registers.
 *
 *    Each of q, k, v and out is a strided view into a float32 buffer, so the callers read the
 *    heads straight out of a fused qkv projection and write the result in the layout the next
 *    layer wants (no copies): token (n, l), channel c of a view w lives at
 *      w.off + n0 * w.s0 + n1 * w.s1 + n2 * w.s2 + l * w.row + c,  n = (n0 * N1 + n1) * N2 + n2.
 *    The gradients of q, k and v are written through the same views into a buffer laid out like
 *    the input. p holds the softmax probabilities transposed, (N, L keys, LP queries) with LP = L
 *    rounded up to 8; the forward pass fills it (if not NULL) and the backward pass reads it.
 *
 * 2. Batch norm with batch statistics on channel-last tokens (N, C), C a multiple of 8,
 *    optionally followed by the exact (erf) GELU, forward and backward in two passes each over
 *    the data (PyTorch's separate batch norm and GELU make three each way, with an intermediate
 *    tensor), with the statistics from per-block means and deviations merged in double precision.
 *
 * 3. The windows of a STAP aggregation whose stride equals its kernel (im2col, with the zero
 *    padding implicit) and their gradient, one pass each.
 *
 * The work is split across `threads` OpenMP threads. Built with -fopenmp, this library binds to
 * the libgomp that PyTorch loaded, so it shares PyTorch's (already spinning) thread pool; built
 * without it, it runs on the calling thread. The functions return 0, or 1 if scratch memory
 * could not be allocated. No fast-math: exp and erf below are polynomial approximations with
 * errors of about 1e-7, and NaN propagates.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define INLINE static inline __attribute__((always_inline))

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

typedef struct {
    int64_t off, s0, s1, s2, row;
} view_t;

typedef struct {
    int64_t n0, n1, n2, len; /* N = n0 * n1 * n2 sequences of len tokens */
    view_t q, k, v, o;
} plan_t;

INLINE v8 ld(const float* p) {
    v8 r;
    memcpy(&r, p, sizeof r);
    return r;
}
INLINE void st(float* p, v8 x) { memcpy(p, &x, sizeof x); }
INLINE v8 bc(float x) { return (v8){x, x, x, x, x, x, x, x}; }
INLINE v8 vmax(v8 a, v8 b) {
    v8i m = a > b;
    return (v8)((m & (v8i)a) | (~m & (v8i)b));
}

/* exp(x) for x <= 0: x = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-7 polynomial, times 2^n. */
INLINE v8 vexp(v8 x) {
    const v8 magic = bc(12582912.0f); /* 1.5 * 2^23: adding it rounds to the nearest integer */
    v8i nan = x != x;
    x = vmax(x, bc(-87.0f));
    v8 t = x * bc(1.44269504088896341f) + magic;
    v8 n = t - magic;
    v8 r = x - n * bc(0.693359375f) + n * bc(2.12194440e-4f);
    v8 y = bc(1.9875691500e-4f);
    y = y * r + bc(1.3981999507e-3f);
    y = y * r + bc(8.3334519073e-3f);
    y = y * r + bc(4.1665795894e-2f);
    y = y * r + bc(1.6666665459e-1f);
    y = y * r + bc(5.0000001201e-1f);
    y = y * r * r + r + bc(1.0f);
    v8i e = ((v8i)t - (v8i)magic + 127) << 23;
    y = y * (v8)e;
    return (v8)((nan & (v8i)bc(__builtin_nanf(""))) | (~nan & (v8i)y));
}

INLINE int64_t seq_offset(const view_t* w, const plan_t* pl, int64_t n) {
    int64_t i2 = n % pl->n2;
    n /= pl->n2;
    int64_t i1 = n % pl->n1;
    return w->off + (n / pl->n1) * w->s0 + i1 * w->s1 + i2 * w->s2;
}

/* Rows of sequence n of view w into cache ahead of use (the rows of strided views are far apart,
 * which the hardware prefetchers do not follow). */
INLINE void prefetch_rows(const float* base, const view_t* w, const plan_t* pl, int64_t n) {
    const float* r = base + seq_offset(w, pl, n);
    for (int64_t l = 0; l < pl->len; ++l) __builtin_prefetch(r + l * w->row);
}

enum { AHEAD = 8 }; /* sequences prefetched ahead: one group of heads of the next frame or joint */

INLINE void prefetch_qkv(const float* x, const plan_t* pl, int64_t n) {
    prefetch_rows(x, &pl->q, pl, n);
    prefetch_rows(x, &pl->k, pl, n);
    prefetch_rows(x, &pl->v, pl, n);
}

/* Scratch of one thread: a transposed (C x LP) block whose pad columns L..LP-1 are zero, then
 * `extra` more floats; NULL if out of memory. */
INLINE float* transposed_scratch(int C, int64_t L, int64_t LP, int64_t extra) {
    float* t = malloc(sizeof(float) * (size_t)(C * LP + extra));
    if (t)
        for (int64_t i = L; i < LP; ++i)
            for (int c = 0; c < C; ++c) t[c * LP + i] = 0.f;
    return t;
}

/* dst (C x LP) = src (L x C, row stride) transposed, pad columns zero. */
INLINE void transpose(int C, const float* src, int64_t row, int64_t L, int64_t LP, float* dst) {
    for (int64_t j = 0; j < L; ++j)
        for (int c = 0; c < C; ++c) dst[c * LP + j] = src[j * row + c];
}

/* R rows of a (rows x C) times bt (C x LP): out rows (stride LP) = a bt * scale. */
INLINE void rows_times_bt(int R, int C, const float* a, int64_t arow, const float* bt, int64_t LP,
                          float scale, float* out) {
    for (int64_t j = 0; j < LP; j += 8) {
        v8 acc[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r] = bc(0.f);
        for (int c = 0; c < C; ++c) {
            v8 b = ld(bt + c * LP + j);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) acc[r] += bc(a[r * arow + c]) * b;
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) st(out + r * LP + j, acc[r] * bc(scale));
    }
}

/* R rows of m (stride LP, first L columns used) times x (L x C, row stride): out rows (stride orow). */
INLINE void rows_times_x(int R, int CV, const float* m, int64_t LP, const float* x, int64_t xrow,
                         int64_t L, float* out, int64_t orow) {
    v8 acc[4][8] = {{bc(0.f)}};
    for (int64_t j = 0; j < L; ++j) {
#pragma GCC unroll 8
        for (int u = 0; u < CV; ++u) {
            v8 b = ld(x + j * xrow + 8 * u);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) acc[r][u] += bc(m[r * LP + j]) * b;
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
        for (int u = 0; u < CV; ++u) st(out + r * orow + 8 * u, acc[r][u]);
}

/* Rows i < n (n <= 8, stride orow) of the transpose of the 8 x 8 block r (r[c] holds rows 0..7 of
 * column c): out[i][c] = r[c][i]. */
INLINE void store_transposed(const v8 r[8], float* out, int64_t orow, int n) {
    v8 t[8], u[8], o[8];
    for (int k = 0; k < 8; k += 2) {
        t[k] = __builtin_shufflevector(r[k], r[k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[k + 1] = __builtin_shufflevector(r[k], r[k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int k = 0; k < 8; k += 4) {
        u[k] = __builtin_shufflevector(t[k], t[k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[k + 1] = __builtin_shufflevector(t[k], t[k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[k + 2] = __builtin_shufflevector(t[k + 1], t[k + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[k + 3] = __builtin_shufflevector(t[k + 1], t[k + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int k = 0; k < 4; ++k) {
        o[k] = __builtin_shufflevector(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        o[k + 4] = __builtin_shufflevector(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
    for (int i = 0; i < n; ++i) st(out + i * orow, o[i]);
}

/* out[i][c] = sum_j m[j][i] * x[j][c] for rows i < L: m is (L x LP) with rows j and the i in SIMD
 * lanes, x has L rows (stride xrow) of C = 8 CV channels, out rows have stride orow. */
INLINE void xt_times_m(int CV, const float* x, int64_t xrow, const float* m, int64_t LP, int64_t L,
                       float* out, int64_t orow) {
    for (int64_t i = 0; i < L; i += 8) {
        const int n = L - i < 8 ? (int)(L - i) : 8;
        for (int u = 0; u < CV; ++u) {
            v8 acc[8] = {bc(0.f)};
            for (int64_t j = 0; j < L; ++j) {
                const v8 mv = ld(m + j * LP + i);
                const float* xj = x + j * xrow + 8 * u;
#pragma GCC unroll 8
                for (int c = 0; c < 8; ++c) acc[c] += bc(xj[c]) * mv;
            }
            store_transposed(acc, out + i * orow + 8 * u, orow, n);
        }
    }
}

/* Softmax over the rows j < L of each column of s (L x LP), in place. */
INLINE void softmax_columns(float* s, int64_t L, int64_t LP) {
    for (int64_t i = 0; i < LP; i += 8) {
        v8 m = ld(s + i);
        for (int64_t j = 1; j < L; ++j) m = vmax(m, ld(s + j * LP + i));
        v8 sum = bc(0.f);
        for (int64_t j = 0; j < L; ++j) {
            const v8 e = vexp(ld(s + j * LP + i) - m);
            st(s + j * LP + i, e);
            sum += e;
        }
        const v8 inv = bc(1.0f) / sum;
        for (int64_t j = 0; j < L; ++j) st(s + j * LP + i, ld(s + j * LP + i) * inv);
    }
}

/* Rows of a (stride arow) times bt (C x LP) into out rows (stride LP), 4 rows at a time. */
INLINE void all_rows_times_bt(int C, const float* a, int64_t arow, int64_t L, const float* bt, int64_t LP,
                              float scale, float* out) {
    int64_t j = 0;
    for (; j + 4 <= L; j += 4) rows_times_bt(4, C, a + j * arow, arow, bt, LP, scale, out + j * LP);
    for (; j < L; ++j) rows_times_bt(1, C, a + j * arow, arow, bt, LP, scale, out + j * LP);
}

/* out rows j < L (stride orow) = sum_i m[j][i] x[i] for m (L x LP), 4 rows at a time. */
INLINE void all_rows_times_x(int CV, const float* m, int64_t LP, const float* x, int64_t xrow, int64_t L,
                             float* out, int64_t orow) {
    int64_t j = 0;
    for (; j + 4 <= L; j += 4) rows_times_x(4, CV, m + j * LP, LP, x, xrow, L, out + j * orow, orow);
    for (; j < L; ++j) rows_times_x(1, CV, m + j * LP, LP, x, xrow, L, out + j * orow, orow);
}

/* The probabilities are kept transposed: p[j][i] = P(query i attends to key j), keys in rows and 8
 * queries per SIMD vector, so that the softmax's max and sum run down the columns without horizontal
 * reductions. Lanes of queries i >= L hold a harmless uniform distribution (their q and dO are 0). */
INLINE int forward(int CV, const float* x, float* out, float* p, const plan_t* pl, float scale,
                   int threads) {
    const int C = 8 * CV;
    const int64_t L = pl->len, LP = (L + 7) & ~(int64_t)7, N = pl->n0 * pl->n1 * pl->n2;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float* qt = transposed_scratch(C, L, LP, p ? 0 : L * LP);
        float* scratch = qt + C * LP;
        if (!qt) failed = 1;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            if (!qt) continue;
            const float* q = x + seq_offset(&pl->q, pl, n);
            const float* k = x + seq_offset(&pl->k, pl, n);
            const float* v = x + seq_offset(&pl->v, pl, n);
            float* o = out + seq_offset(&pl->o, pl, n);
            float* s = p ? p + n * L * LP : scratch;
            if (n + AHEAD < N) prefetch_qkv(x, pl, n + AHEAD);
            transpose(C, q, pl->q.row, L, LP, qt);
            all_rows_times_bt(C, k, pl->k.row, L, qt, LP, scale, s); /* scores, keys in rows */
            softmax_columns(s, L, LP);
            xt_times_m(CV, v, pl->v.row, s, LP, L, o, pl->o.row);
        }
        free(qt);
    }
    return failed;
}

/* grad_x gets dq, dk, dv through the q, k, v views; grad_out is read through the o view. */
INLINE int backward(int CV, const float* x, const float* p, const float* grad_out, float* grad_x,
                    const plan_t* pl, float scale, int threads) {
    const int C = 8 * CV;
    const int64_t L = pl->len, LP = (L + 7) & ~(int64_t)7, N = pl->n0 * pl->n1 * pl->n2;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float* gt = transposed_scratch(C, L, LP, L * LP);
        float* ds = gt + C * LP;
        if (!gt) failed = 1;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            if (!gt) continue;
            const int64_t qo = seq_offset(&pl->q, pl, n), ko = seq_offset(&pl->k, pl, n);
            const int64_t vo = seq_offset(&pl->v, pl, n), oo = seq_offset(&pl->o, pl, n);
            const float *q = x + qo, *k = x + ko, *v = x + vo, *g = grad_out + oo;
            const float* pn = p + n * L * LP;
            const int64_t qr = pl->q.row, kr = pl->k.row, vr = pl->v.row;
            if (n + AHEAD < N) {
                prefetch_qkv(x, pl, n + AHEAD);
                prefetch_rows(grad_out, &pl->o, pl, n + AHEAD);
            }
            transpose(C, g, pl->o.row, L, LP, gt);
            all_rows_times_bt(C, v, vr, L, gt, LP, 1.0f, ds); /* dP, keys in rows */
            /* dS = P * (dP - sum_keys P dP) * scale, column by column */
            for (int64_t i = 0; i < LP; i += 8) {
                v8 d = bc(0.f);
                for (int64_t j = 0; j < L; ++j) d += ld(pn + j * LP + i) * ld(ds + j * LP + i);
                for (int64_t j = 0; j < L; ++j)
                    st(ds + j * LP + i, ld(pn + j * LP + i) * (ld(ds + j * LP + i) - d) * bc(scale));
            }
            /* dQ = dS K, dK = dS^T Q, dV = P^T dO */
            xt_times_m(CV, k, kr, ds, LP, L, grad_x + qo, qr);
            all_rows_times_x(CV, ds, LP, q, qr, L, grad_x + ko, kr);
            all_rows_times_x(CV, pn, LP, g, pl->o.row, L, grad_x + vo, vr);
        }
        free(gt);
    }
    return failed;
}

#define EXPORT(CC)                                                                                     \
    int p2m_attention_forward_c##CC(const float* x, float* out, float* p, const plan_t* pl, float scale, \
                                    int threads) {                                                    \
        return forward((CC) / 8, x, out, p, pl, scale, threads);                                       \
    }                                                                                                  \
    int p2m_attention_backward_c##CC(const float* x, const float* p, const float* grad_out,            \
                                     float* grad_x, const plan_t* pl, float scale, int threads) {      \
        return backward((CC) / 8, x, p, grad_out, grad_x, pl, scale, threads);                         \
    }

EXPORT(8)
EXPORT(16)
EXPORT(32)
EXPORT(64)

/* ------------------------------------------------------------------------ batch norm (+ GELU) */

INLINE v8 vabs(v8 x) { return (v8)(((v8i)x & (v8i)bc(-0.0f)) ^ (v8i)x); }

/* Standard normal cdf and pdf at z: Phi(z) = 1 - erfc(z / sqrt 2) / 2 with erfc from
 * Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), phi(z) = exp(-z^2 / 2) / sqrt(2 pi). */
INLINE void normal_cdf_pdf(v8 z, v8* cdf, v8* pdf) {
    v8 x = vabs(z) * bc(0.70710678118654752f);
    v8 e = vexp(-(x * x));
    v8 t = bc(1.0f) / (bc(1.0f) + bc(0.3275911f) * x);
    v8 p = bc(1.061405429f);
    p = p * t + bc(-1.453152027f);
    p = p * t + bc(1.421413741f);
    p = p * t + bc(-0.284496736f);
    p = p * t + bc(0.254829592f);
    v8 tail = bc(0.5f) * p * t * e; /* erfc(|z| / sqrt 2) / 2 */
    v8i neg = z < bc(0.0f);
    *cdf = (v8)((neg & (v8i)tail) | (~neg & (v8i)(bc(1.0f) - tail)));
    *pdf = e * bc(0.39894228040143268f);
}

INLINE v8 gelu(v8 z) {
    v8 cdf, pdf;
    normal_cdf_pdf(z, &cdf, &pdf);
    return z * cdf;
}

INLINE v8 gelu_grad(v8 z) {
    v8 cdf, pdf;
    normal_cdf_pdf(z, &cdf, &pdf);
    return cdf + z * pdf;
}

INLINE int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

enum { ROWS = 64 }; /* rows summed in float before the running sums in double */

/* Per-channel coefficients and buffers of one pass over the rows of an (N, C) batch. */
typedef struct {
    const float *x, *grad_y, *scale, *shift, *rstd, *offset, *k1, *k2, *k3;
    float* out;
    int act_gelu;
} pass_t;

/* What a pass does with channels c..c+7 of row i (the *_row functions below): it may write them, and
 * returns in s1, s2 the two values summed per channel over the rows. */

/* backward pass 1: g = grad_y * act'(z) stored in out; sums of g and g * xhat */
INLINE void grad_row(const pass_t* ps, int64_t i, int64_t c, int64_t C, v8* s1, v8* s2) {
    const v8 xi = ld(ps->x + i * C + c);
    v8 g = ld(ps->grad_y + i * C + c);
    if (ps->act_gelu) g *= gelu_grad(xi * ld(ps->scale + c) + ld(ps->shift + c));
    st(ps->out + i * C + c, g);
    *s1 = g;
    *s2 = g * (xi * ld(ps->rstd + c) + ld(ps->offset + c));
}

/* backward pass 2: grad_x = (g - mean(g) - xhat * mean(g * xhat)) * rstd * gamma in place; its sums */
INLINE void input_grad_row(const pass_t* ps, int64_t i, int64_t c, int64_t C, v8* s1, v8* s2) {
    const v8 xhat = ld(ps->x + i * C + c) * ld(ps->rstd + c) + ld(ps->offset + c);
    const v8 gx = ld(ps->out + i * C + c) * ld(ps->k1 + c) + ld(ps->k2 + c) + xhat * ld(ps->k3 + c);
    st(ps->out + i * C + c, gx);
    *s1 = gx;
    *s2 = bc(0.f);
}

/* NAME(ps, N, C, threads, sums): run ROW over all rows and channels on `threads` threads; column
 * sums[0..2C) = (sum s1, sum s2), summed in float over blocks of ROWS rows and in double across
 * blocks and threads. A macro, not a function pointer, so that ROW is inlined into the loop. */
#define COLUMN_SUMS(NAME, ROW)                                                                   \
    static int NAME(const pass_t* ps, int64_t N, int64_t C, int threads, double* sums) {         \
        double* partial = calloc((size_t)(2 * C * threads), sizeof(double));                     \
        if (!partial) return 1;                                                                  \
        int failed = 0;                                                                          \
        _Pragma("omp parallel num_threads(threads) reduction(| : failed)") {                     \
            double* mine = partial + 2 * C * thread_id();                                        \
            float* block = malloc(sizeof(float) * (size_t)(2 * C));                              \
            if (!block) failed = 1;                                                              \
            _Pragma("omp for schedule(static)") for (int64_t b = 0; b < (N + ROWS - 1) / ROWS; ++b) { \
                if (!block) continue;                                                            \
                memset(block, 0, sizeof(float) * (size_t)(2 * C));                               \
                const int64_t end = (b + 1) * ROWS < N ? (b + 1) * ROWS : N;                     \
                for (int64_t i = b * ROWS; i < end; ++i)                                         \
                    for (int64_t c = 0; c < C; c += 8) {                                         \
                        v8 s1, s2;                                                               \
                        ROW(ps, i, c, C, &s1, &s2);                                              \
                        st(block + c, ld(block + c) + s1);                                       \
                        st(block + C + c, ld(block + C + c) + s2);                               \
                    }                                                                            \
                for (int64_t c = 0; c < 2 * C; ++c) mine[c] += block[c];                         \
            }                                                                                    \
            free(block);                                                                         \
        }                                                                                        \
        for (int64_t c = 0; c < 2 * C && !failed; ++c) {                                         \
            sums[c] = 0.0;                                                                       \
            for (int t = 0; t < threads; ++t) sums[c] += partial[2 * C * t + c];                 \
        }                                                                                        \
        free(partial);                                                                           \
        return failed;                                                                           \
    }

COLUMN_SUMS(grad_sums, grad_row)
COLUMN_SUMS(input_grad_sums, input_grad_row)

/* Count, mean and sum of squared deviations of each column (double), merged pairwise (Chan et al.). */
typedef struct {
    double n, *mean, *m2;
} moments_t;

INLINE void merge_moments(moments_t* into, double n, const double* mean, const double* m2, int64_t C) {
    if (n == 0.0) return;
    const double total = into->n + n;
    for (int64_t c = 0; c < C; ++c) {
        const double delta = mean[c] - into->mean[c];
        into->mean[c] += delta * n / total;
        into->m2[c] += m2[c] + delta * delta * into->n * n / total;
    }
    into->n = total;
}

/* Column means and biased variances of x (N, C): per block of ROWS rows its mean, then the squared
 * deviations from that mean (the block is still in cache), in float; blocks and threads merged in
 * double. As accurate as a two-pass computation, whatever the data's offset or first row. */
static int column_moments(const float* x, int64_t N, int64_t C, int threads, float* mean, float* var) {
    double* all = calloc((size_t)(2 * C * threads + threads), sizeof(double));
    if (!all) return 1;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        const int tid = thread_id();
        moments_t mine = {0.0, all + 2 * C * tid, all + 2 * C * tid + C};
        float* block = malloc(sizeof(float) * (size_t)(2 * C));
        double* blockd = malloc(sizeof(double) * (size_t)(2 * C));
        if (!block || !blockd) failed = 1;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < (N + ROWS - 1) / ROWS; ++b) {
            if (!block || !blockd) continue;
            const int64_t start = b * ROWS, end = (b + 1) * ROWS < N ? (b + 1) * ROWS : N;
            const float inv = 1.0f / (float)(end - start);
            memset(block, 0, sizeof(float) * (size_t)(2 * C));
            for (int64_t i = start; i < end; ++i)
                for (int64_t c = 0; c < C; c += 8) st(block + c, ld(block + c) + ld(x + i * C + c));
            for (int64_t c = 0; c < C; c += 8) st(block + c, ld(block + c) * bc(inv));
            for (int64_t i = start; i < end; ++i)
                for (int64_t c = 0; c < C; c += 8) {
                    const v8 d = ld(x + i * C + c) - ld(block + c);
                    st(block + C + c, ld(block + C + c) + d * d);
                }
            for (int64_t c = 0; c < 2 * C; ++c) blockd[c] = block[c];
            merge_moments(&mine, (double)(end - start), blockd, blockd + C, C);
        }
        all[2 * C * threads + tid] = mine.n;
        free(block);
        free(blockd);
    }
    if (!failed) {
        moments_t total = {all[2 * C * threads], all, all + C}; /* thread 0's, then the others merged in */
        for (int t = 1; t < threads; ++t)
            merge_moments(&total, all[2 * C * threads + t], all + 2 * C * t, all + 2 * C * t + C, C);
        for (int64_t c = 0; c < C; ++c) {
            mean[c] = (float)total.mean[c];
            var[c] = (float)(total.m2[c] / (double)N);
        }
    }
    free(all);
    return failed;
}

/* y = act(x * scale + shift) per channel; mean, var (biased) and rstd of x's columns returned. */
int p2m_batch_norm_forward(const float* x, float* y, const float* gamma, const float* beta, float eps,
                           int64_t N, int64_t C, int act_gelu, float* mean, float* var, float* rstd,
                           int threads) {
    float* coef = malloc(sizeof(float) * (size_t)(2 * C));
    int failed = !coef || column_moments(x, N, C, threads, mean, var);
    if (!failed) {
        float *scale = coef, *shift = coef + C;
        for (int64_t c = 0; c < C; ++c) {
            const double r = 1.0 / sqrt((double)var[c] + (double)eps);
            rstd[c] = (float)r;
            scale[c] = (float)(r * gamma[c]);
            shift[c] = (float)(beta[c] - (double)mean[c] * r * gamma[c]);
        }
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < N; ++i)
            for (int64_t c = 0; c < C; c += 8) {
                v8 z = ld(x + i * C + c) * ld(scale + c) + ld(shift + c);
                st(y + i * C + c, act_gelu ? gelu(z) : z);
            }
    }
    free(coef);
    return failed;
}

/* Gradients of y = act(batch_norm(x)): grad_x, grad_gamma, grad_beta and, if grad_x_sum is not NULL,
 * the column sums of grad_x. */
int p2m_batch_norm_backward(const float* x, const float* grad_y, float* grad_x, const float* gamma,
                            const float* beta, const float* mean, const float* rstd, int64_t N, int64_t C,
                            int act_gelu, float* grad_gamma, float* grad_beta, float* grad_x_sum,
                            int threads) {
    double* sums = malloc(sizeof(double) * (size_t)(2 * C));
    float* coef = malloc(sizeof(float) * (size_t)(6 * C));
    int failed = !sums || !coef;
    if (!failed) {
        float *scale = coef, *shift = coef + C, *offset = coef + 2 * C;
        float *k1 = coef + 3 * C, *k2 = coef + 4 * C, *k3 = coef + 5 * C;
        for (int64_t c = 0; c < C; ++c) {
            scale[c] = rstd[c] * gamma[c];
            shift[c] = beta[c] - mean[c] * scale[c];
            offset[c] = -mean[c] * rstd[c]; /* xhat = x * rstd + offset */
        }
        const pass_t ps = {.x = x, .grad_y = grad_y, .scale = scale, .shift = shift, .rstd = rstd,
                           .offset = offset, .k1 = k1, .k2 = k2, .k3 = k3, .out = grad_x,
                           .act_gelu = act_gelu};
        failed = grad_sums(&ps, N, C, threads, sums);
        for (int64_t c = 0; c < C && !failed; ++c) {
            grad_beta[c] = (float)sums[c];
            grad_gamma[c] = (float)sums[C + c];
            k1[c] = scale[c];
            k2[c] = (float)(-sums[c] / (double)N * scale[c]);
            k3[c] = (float)(-sums[C + c] / (double)N * scale[c]);
        }
        if (!failed) failed = input_grad_sums(&ps, N, C, threads, sums);
        for (int64_t c = 0; c < C && !failed && grad_x_sum; ++c) grad_x_sum[c] = (float)sums[c];
    }
    free(sums);
    free(coef);
    return failed;
}

/* ------------------------------------------------------------------------ STAP windows */

/* Window (gt, gj) of x (B, T, J, C) gathers the rows t = gt KT - PT + a, j = gj KJ - PJ + b for
 * a < KT, b < KJ (zero outside the clip) into w (B, GT, GJ, KT KJ C): the input of a convolution
 * whose stride equals its kernel, in one pass (no padded copy, no reshaping copy). */
int p2m_windows_forward(const float* x, float* w, int64_t B, int64_t T, int64_t J, int64_t C, int64_t KT,
                        int64_t KJ, int64_t PT, int64_t PJ, int64_t GT, int64_t GJ, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < B * GT * GJ; ++n) {
        const int64_t gj = n % GJ, gt = (n / GJ) % GT, b = n / (GJ * GT);
        float* dst = w + n * KT * KJ * C;
        for (int64_t a = 0; a < KT; ++a) {
            const int64_t t = gt * KT - PT + a;
            for (int64_t k = 0; k < KJ; ++k, dst += C) {
                const int64_t j = gj * KJ - PJ + k;
                if (t < 0 || t >= T || j < 0 || j >= J)
                    memset(dst, 0, sizeof(float) * (size_t)C);
                else
                    memcpy(dst, x + ((b * T + t) * J + j) * C, sizeof(float) * (size_t)C);
            }
        }
    }
    return 0;
}

/* grad_x (B, T, J, C) from grad_w (B, GT, GJ, KT KJ C): the windows do not overlap, so each row of x
 * takes the gradient of the one window element it fed, or zero if it fed none. */
int p2m_windows_backward(const float* grad_w, float* grad_x, int64_t B, int64_t T, int64_t J, int64_t C,
                         int64_t KT, int64_t KJ, int64_t PT, int64_t PJ, int64_t GT, int64_t GJ, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t bt = 0; bt < B * T; ++bt) {
        const int64_t b = bt / T, t = bt % T, gt = (t + PT) / KT, a = (t + PT) % KT;
        for (int64_t j = 0; j < J; ++j) {
            float* dst = grad_x + (bt * J + j) * C;
            const int64_t gj = (j + PJ) / KJ, k = (j + PJ) % KJ;
            if (gt >= GT || gj >= GJ)
                memset(dst, 0, sizeof(float) * (size_t)C);
            else
                memcpy(dst, grad_w + ((((b * GT + gt) * GJ + gj) * KT + a) * KJ + k) * C,
                       sizeof(float) * (size_t)C);
        }
    }
    return 0;
}

/* Version of this interface (the loader checks it before use). */
int p2m_abi(void) { return 5; }
