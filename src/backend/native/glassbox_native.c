// glassbox's native kernel pack: the heavy kernels of a GPT training step in C, over tfjs tensors'
// own typed arrays (no copies). Matrix products go to OpenBLAS; everything else is a single pass
// over memory, split across threads with OpenMP where the tensor is large enough to pay for it.
//
// Determinism: every reduction is computed in a fixed order that does not depend on the thread
// count (per-row sums run inside one thread; column sums are split by column, never by row), so a
// run resumed on the same machine gives bit-identical numbers. OpenBLAS splits a product by
// output blocks, so each output element's sum order is fixed as well.
#include <math.h>
#include <node_api.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef GLASSBOX_ACCELERATE
#include <Accelerate/Accelerate.h>
static void blas_threads(int n) { (void)n; }
static int blas_max_threads(void) { return 1; }
#else
#include <cblas.h>
static int current_blas_threads = -1;
static int max_blas_threads = 1;
static void blas_threads(int n) {
  if (n != current_blas_threads) {
    openblas_set_num_threads(n);
    current_blas_threads = n;
  }
}
static int blas_max_threads(void) { return max_blas_threads; }
#endif

// ---------------------------------------------------------------------------------------------
// Σ x[0..n) in a fixed order: 16 running lanes (which the compiler keeps in one vector register),
// then the lanes in order. Deterministic for any thread count, and ~10x a plain scalar loop.
static inline double sum_f32(const float* restrict x, int64_t n) {
  float lane[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) lane[j] += x[i + j];
  double total = 0;
  for (int j = 0; j < 16; j++) total += lane[j];
  for (; i < n; i++) total += x[i];
  return total;
}

// Σ a·b in the same fixed 16-lane order as sum_f32.
static inline double dot_f32(const float* restrict a, const float* restrict b, int64_t n) {
  float lane[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) lane[j] += a[i + j] * b[i + j];
  double total = 0;
  for (int j = 0; j < 16; j++) total += lane[j];
  for (; i < n; i++) total += (double)a[i] * b[i];
  return total;
}

// Σ (x − μ)² in the same fixed 16-lane order as sum_f32 (a serial double sum is latency-bound:
// one add per 4 cycles; 16 lanes run 6x faster on a 128-wide row).
static inline double sum_sq_dev_f32(const float* restrict x, int64_t n, float mu) {
  float lane[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) {
      const float c = x[i + j] - mu;
      lane[j] += c * c;
    }
  double total = 0;
  for (int j = 0; j < 16; j++) total += lane[j];
  for (; i < n; i++) total += (double)(x[i] - mu) * (x[i] - mu);
  return total;
}

// LayerNorm backward's two row sums, Σ ĝ and Σ ĝ·x̂ with ĝ = dy·γ and x̂ = (x − μ)ρ, in 16 lanes.
static inline void ln_grad_sums(const float* restrict x, const float* restrict dy, const float* restrict gamma, float mu, float rho,
                                int64_t n, double* sg, double* sgx) {
  float a[16] = {0}, b[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) {
      const float g = dy[i + j] * gamma[i + j];
      a[j] += g;
      b[j] += g * ((x[i + j] - mu) * rho);
    }
  double s = 0, t = 0;
  for (int j = 0; j < 16; j++) {
    s += a[j];
    t += b[j];
  }
  for (; i < n; i++) {
    const float g = dy[i] * gamma[i];
    s += g;
    t += (double)g * ((x[i] - mu) * rho);
  }
  *sg = s;
  *sgx = t;
}

// eˣ in single precision without a library call, so loops over it vectorise: x = k·ln2 + r with
// |r| ≤ ln2/2, eʳ by its degree-6 Taylor-like minimax polynomial (Cephes), 2ᵏ by building the
// exponent bits. Within 2 ulp of expf over the float range; NaN stays NaN, −inf gives 0-ish
// (1e-38), which softmax treats as zero.
static inline float fast_expf(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // k = round(x/ln2), by the float trick of adding and removing 1.5·2²³ (vectorises, unlike floorf).
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)k + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// tanh u = 1 − 2/(e^{2u} + 1): exact at 0 and ±inf, and vectorises through fast_expf.
static inline float fast_tanhf(float u) { return 1.0f - 2.0f / (fast_expf(2.0f * u) + 1.0f); }

// max of x[0..n) over 16 lanes held in one vector (GCC/Clang vector extensions: written as 16
// scalar lanes with `a > b || a != a ? a : b`, the compiler emitted scalar compares and branches,
// 4.5x slower); NaN is tracked beside the max, so a NaN anywhere makes the result NaN.
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
static inline float max_f32(const float* restrict x, int64_t n) {
  f32x16 m;
  i32x16 nan = {0};
  for (int j = 0; j < 16; j++) m[j] = -INFINITY;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    f32x16 v;
    memcpy(&v, x + i, sizeof v);
    const i32x16 greater = v > m;
    m = (f32x16)(((i32x16)v & greater) | ((i32x16)m & ~greater));
    nan |= v != v;
  }
  float r = -INFINITY;
  int bad = 0;
  for (int j = 0; j < 16; j++) {
    r = m[j] > r ? m[j] : r;
    bad |= nan[j];
  }
  for (; i < n; i++) {
    r = x[i] > r ? x[i] : r;
    bad |= x[i] != x[i];
  }
  return bad ? NAN : r;
}

// One row's softmax: out = exp(in − max) / Σ exp(in − max), in and out may be the same array.
// Returns the max and the sum, from which logsumexp = log(sum) + max.
typedef struct {
  float max;
  double sum;
} softmax_stats;

static inline softmax_stats softmax_row(const float* in, float* out, int64_t n) {
  float max = max_f32(in, n);
  if (max == -INFINITY) max = 0;  // a fully masked row
  for (int64_t j = 0; j < n; j++) out[j] = fast_expf(in[j] - max);
  const double sum = sum_f32(out, n);
  const float inv = (float)(1.0 / sum);
  for (int64_t j = 0; j < n; j++) out[j] *= inv;
  return (softmax_stats){max, sum};
}

// One LayerNorm row (see layernorm_forward), in its own function over restrict pointers so the
// loops vectorise (inside OpenMP's outlined loop bodies they would not).
__attribute__((noinline)) static void ln_row_forward(const float* restrict x, float* restrict y, const float* restrict gamma,
                                                     const float* restrict beta, int64_t d, double eps, float* mean, float* rstd) {
  const double mu = sum_f32(x, d) / (double)d;
  const double rho = 1.0 / sqrt(sum_sq_dev_f32(x, d, (float)mu) / (double)d + eps);
  *mean = (float)mu;
  *rstd = (float)rho;
  const float muf = (float)mu, rhof = (float)rho;
  for (int64_t j = 0; j < d; j++) y[j] = (x[j] - muf) * rhof * gamma[j] + beta[j];
}

__attribute__((noinline)) static void ln_row_backward(const float* restrict x, const float* restrict dy, const float* restrict gamma,
                                                      float mu, float rho, float* restrict dx, int64_t d) {
  double sg, sgx;
  ln_grad_sums(x, dy, gamma, mu, rho, d, &sg, &sgx);
  const float mg = (float)(sg / (double)d), mgx = (float)(sgx / (double)d);
  for (int64_t j = 0; j < d; j++) {
    const float g = dy[j] * gamma[j];
    const float xh = (x[j] - mu) * rho;
    dx[j] = rho * (g - mg - xh * mgx);
  }
}

// dγ = Σ_rows dy·x̂ and dβ = Σ_rows dy for columns [j0, j1), rows in order, in double.
#define LN_COLS 64
#define MIN(a, b) ((a) < (b) ? (a) : (b))
__attribute__((noinline)) static void ln_column_sums(const float* restrict dy, const float* restrict x, const float* restrict mean,
                                                     const float* restrict rstd, int64_t rows, int64_t d, int64_t j0, int64_t j1,
                                                     float* restrict dgamma, float* restrict dbeta) {
  double sg[LN_COLS] = {0}, sb[LN_COLS] = {0};
  const int64_t w = j1 - j0;
  for (int64_t r = 0; r < rows; r++) {
    const float* g = dy + r * d + j0;
    const float* xr = x + r * d + j0;
    const float m = mean[r], rs = rstd[r];
    for (int64_t j = 0; j < w; j++) {
      sg[j] += (double)g[j] * ((xr[j] - m) * rs);
      sb[j] += g[j];
    }
  }
  for (int64_t j = 0; j < w; j++) {
    dgamma[j0 + j] = (float)sg[j];
    dbeta[j0 + j] = (float)sb[j];
  }
}

// Below these sizes one thread is faster: waking the others costs more than the work.
static double gemm_thread_flops = 4e6;  // 2·M·N·K; measured by bench/native-threshold.ts
static int64_t parallel_elements = 32768;
static int n_threads = 1;

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "glassbox_native: bad argument in " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Argument helpers: typed arrays give their storage pointer; numbers are doubles or int64.

static int get_f32(napi_env env, napi_value v, float** out, size_t* len) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok) return 0;
  if (type != napi_float32_array) return 0;
  *out = (float*)data;
  if (len) *len = length;
  return 1;
}

static int get_i32(napi_env env, napi_value v, int32_t** out, size_t* len) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok) return 0;
  if (type != napi_int32_array) return 0;
  *out = (int32_t*)data;
  if (len) *len = length;
  return 1;
}

static double num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

static int64_t inum(napi_env env, napi_value v) {
  int64_t i = 0;
  napi_get_value_int64(env, v, &i);
  return i;
}

static napi_value make_double(napi_env env, double d) {
  napi_value r;
  napi_create_double(env, d, &r);
  return r;
}

#define ARGS(n)                                               \
  size_t argc = n;                                            \
  napi_value argv[n];                                         \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  if (argc < n) {                                             \
    napi_throw_error(env, NULL, "glassbox_native: too few arguments"); \
    return NULL;                                              \
  }

#define F32(i, name)                                                         \
  float* name;                                                               \
  size_t name##_len;                                                         \
  if (!get_f32(env, argv[i], &name, &name##_len)) {                          \
    napi_throw_type_error(env, NULL, "glassbox_native: argument " #i " (" #name ") must be a Float32Array"); \
    return NULL;                                                             \
  }

#define I32(i, name)                                                         \
  int32_t* name;                                                             \
  size_t name##_len;                                                         \
  if (!get_i32(env, argv[i], &name, &name##_len)) {                          \
    napi_throw_type_error(env, NULL, "glassbox_native: argument " #i " (" #name ") must be an Int32Array"); \
    return NULL;                                                             \
  }

#define REQUIRE(cond, msg)                                  \
  if (!(cond)) {                                            \
    napi_throw_range_error(env, NULL, "glassbox_native: " msg); \
    return NULL;                                            \
  }

// ---------------------------------------------------------------------------------------------
// C[b] = op(A[b]) · op(B[b]) (+ beta·C[b]), row-major, for b < batch, with element strides
// between batch members (0 broadcasts one operand). Large products use every BLAS thread; small
// ones run on one, and a batch of small products is spread over threads one product each.
// sgemm(transA, transB, M, N, K, A, B, C, batch, strideA, strideB, strideC, beta)
static napi_value sgemm(napi_env env, napi_callback_info info) {
  ARGS(13);
  int ta = (int)inum(env, argv[0]);
  int tb = (int)inum(env, argv[1]);
  int64_t M = inum(env, argv[2]), N = inum(env, argv[3]), K = inum(env, argv[4]);
  F32(5, A);
  F32(6, B);
  F32(7, C);
  int64_t batch = inum(env, argv[8]);
  int64_t sA = inum(env, argv[9]), sB = inum(env, argv[10]), sC = inum(env, argv[11]);
  float beta = (float)num(env, argv[12]);
  REQUIRE(M >= 0 && N >= 0 && K >= 0 && batch >= 0, "negative size");
  REQUIRE(batch == 0 || (uint64_t)((batch - 1) * sA + M * K) <= A_len || M * K == 0, "A is too short");
  REQUIRE(batch == 0 || (uint64_t)((batch - 1) * sB + K * N) <= B_len || K * N == 0, "B is too short");
  REQUIRE(batch == 0 || (uint64_t)((batch - 1) * sC + M * N) <= C_len || M * N == 0, "C is too short");
  if (M == 0 || N == 0 || batch == 0) return NULL;
  if (K == 0) {
    for (int64_t b = 0; b < batch; b++) {
      float* c = C + b * sC;
      if (beta == 0.0f) memset(c, 0, sizeof(float) * M * N);
      else for (int64_t i = 0; i < M * N; i++) c[i] *= beta;
    }
    return NULL;
  }
  const enum CBLAS_TRANSPOSE opA = ta ? CblasTrans : CblasNoTrans;
  const enum CBLAS_TRANSPOSE opB = tb ? CblasTrans : CblasNoTrans;
  const int lda = ta ? (int)M : (int)K;
  const int ldb = tb ? (int)K : (int)N;
  const int ldc = (int)N;
  const double flops = 2.0 * (double)M * (double)N * (double)K;
  // One row times a matrix (decoding one token: h·Wᵀ over the vocabulary) is a matrix-vector
  // product, which OpenBLAS's gemv streams faster than its gemm. A one-row A is contiguous
  // whether transposed or not.
  if (M == 1 && batch == 1 && beta == 0.0f) {
    blas_threads(flops >= gemm_thread_flops ? blas_max_threads() : 1);
    if (tb) cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)K, 1.0f, B, (int)K, A, 1, 0.0f, C, 1);
    else cblas_sgemv(CblasRowMajor, CblasTrans, (int)K, (int)N, 1.0f, B, (int)N, A, 1, 0.0f, C, 1);
    return NULL;
  }
  if (flops >= gemm_thread_flops) {
    blas_threads(blas_max_threads());
    for (int64_t b = 0; b < batch; b++)
      cblas_sgemm(CblasRowMajor, opA, opB, (int)M, (int)N, (int)K, 1.0f, A + b * sA, lda, B + b * sB, ldb, beta, C + b * sC, ldc);
  } else {
    blas_threads(1);
    int spread = batch > 1 && flops * (double)batch >= gemm_thread_flops;
#pragma omp parallel for schedule(static) if (spread) num_threads(n_threads)
    for (int64_t b = 0; b < batch; b++)
      cblas_sgemm(CblasRowMajor, opA, opB, (int)M, (int)N, (int)K, 1.0f, A + b * sA, lda, B + b * sB, ldb, beta, C + b * sC, ldc);
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy over rows of logits z [n, V] with integer targets t [n], fused with softmax:
//   loss_r = logsumexp(z_r) − z_r[t_r]
// Forward overwrites z with softmax(z) (kept for backward) and returns Σ_r loss_r, summed in row
// order. Backward turns those probabilities into the logits' gradient in place:
//   ∂loss/∂z_r = (softmax(z_r) − onehot(t_r)) · scale
static napi_value xent_forward(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, z);
  I32(1, t);
  int64_t n = inum(env, argv[2]), V = inum(env, argv[3]);
  REQUIRE((uint64_t)(n * V) <= z_len && (uint64_t)n <= t_len, "xent_forward: arrays too short");
  double* losses = (double*)malloc(sizeof(double) * (n > 0 ? n : 1));
  int bad = 0;
#pragma omp parallel for schedule(static) if (n * V >= parallel_elements) num_threads(n_threads) reduction(|| : bad)
  for (int64_t r = 0; r < n; r++) {
    float* row = z + r * V;
    int32_t target = t[r];
    if (target < 0 || target >= V) {
      bad = 1;
      losses[r] = NAN;
      continue;
    }
    const float picked = row[target];
    const softmax_stats st = softmax_row(row, row, V);
    losses[r] = log(st.sum) + (double)st.max - (double)picked;
  }
  double total = 0;
  for (int64_t r = 0; r < n; r++) total += losses[r];
  free(losses);
  if (bad) {
    napi_throw_range_error(env, NULL, "glassbox_native: a target token id is outside the vocabulary");
    return NULL;
  }
  return make_double(env, total);
}

static napi_value xent_backward(napi_env env, napi_callback_info info) {
  ARGS(5);
  F32(0, p);
  I32(1, t);
  int64_t n = inum(env, argv[2]), V = inum(env, argv[3]);
  const float scale = (float)num(env, argv[4]);
  REQUIRE((uint64_t)(n * V) <= p_len && (uint64_t)n <= t_len, "xent_backward: arrays too short");
#pragma omp parallel for schedule(static) if (n * V >= parallel_elements) num_threads(n_threads)
  for (int64_t r = 0; r < n; r++) {
    float* row = p + r * V;
    for (int64_t j = 0; j < V; j++) row[j] *= scale;
    const int32_t target = t[r];
    if (target >= 0 && target < V) row[target] -= scale;
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// LayerNorm over the last axis of x [rows, d]:  y = (x − μ)·ρ·γ + β, with ρ = 1/√(σ² + ε) and σ²
// the biased variance. mean and rstd [rows] are kept for backward, which is, with x̂ = (x − μ)ρ
// and ĝ = dy·γ:
//   dx = ρ · (ĝ − mean(ĝ) − x̂ · mean(ĝ·x̂))        dγ = Σ_rows dy·x̂        dβ = Σ_rows dy
static napi_value layernorm_forward(napi_env env, napi_callback_info info) {
  ARGS(9);
  F32(0, x);
  F32(1, gamma);
  F32(2, beta);
  F32(3, y);
  F32(4, mean);
  F32(5, rstd);
  int64_t rows = inum(env, argv[6]), d = inum(env, argv[7]);
  const double eps = num(env, argv[8]);
  REQUIRE((uint64_t)(rows * d) <= x_len && (uint64_t)(rows * d) <= y_len && (uint64_t)d <= gamma_len && (uint64_t)d <= beta_len &&
              (uint64_t)rows <= mean_len && (uint64_t)rows <= rstd_len,
          "layernorm_forward: arrays too short");
#pragma omp parallel for schedule(static) if (rows * d >= parallel_elements) num_threads(n_threads)
  for (int64_t r = 0; r < rows; r++) ln_row_forward(x + r * d, y + r * d, gamma, beta, d, eps, mean + r, rstd + r);
  return NULL;
}

// layernorm_backward(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, d)
static napi_value layernorm_backward(napi_env env, napi_callback_info info) {
  ARGS(10);
  F32(0, dy);
  F32(1, x);
  F32(2, gamma);
  F32(3, mean);
  F32(4, rstd);
  F32(5, dx);
  F32(6, dgamma);
  F32(7, dbeta);
  int64_t rows = inum(env, argv[8]), d = inum(env, argv[9]);
  REQUIRE((uint64_t)(rows * d) <= x_len && (uint64_t)(rows * d) <= dy_len && (uint64_t)(rows * d) <= dx_len &&
              (uint64_t)d <= gamma_len && (uint64_t)d <= dgamma_len && (uint64_t)d <= dbeta_len && (uint64_t)rows <= mean_len &&
              (uint64_t)rows <= rstd_len,
          "layernorm_backward: arrays too short");
  const int big = rows * d >= parallel_elements;
#pragma omp parallel for schedule(static) if (big) num_threads(n_threads)
  for (int64_t r = 0; r < rows; r++) ln_row_backward(x + r * d, dy + r * d, gamma, mean[r], rstd[r], dx + r * d, d);
  // Column sums over rows in order, one block of LN_COLS columns per thread: deterministic for any
  // thread count, and each row's slice is read contiguously.
  const int64_t blocks = (d + LN_COLS - 1) / LN_COLS;
#pragma omp parallel for schedule(static) if (big && blocks > 1) num_threads(n_threads)
  for (int64_t b = 0; b < blocks; b++) ln_column_sums(dy, x, mean, rstd, rows, d, b * LN_COLS, MIN((b + 1) * LN_COLS, d), dgamma, dbeta);
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// GELU, GPT-2's tanh form: y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³). Its derivative:
//   dy/dx = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

// Each pass runs over blocks of BLOCK elements; a block is a plain loop over restrict pointers,
// which the compiler vectorises (inside OpenMP's outlined loop bodies it would not).
#define BLOCK 4096

__attribute__((noinline)) static void gelu_fwd_block(const float* restrict x, float* restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float u = GELU_C * (v + GELU_A * v * v * v);
    y[i] = 0.5f * v * (1.0f + fast_tanhf(u));
  }
}

__attribute__((noinline)) static void gelu_bwd_block(const float* restrict x, const float* restrict dy, float* restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float th = fast_tanhf(GELU_C * (v + GELU_A * v * v * v));
    const float d = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * GELU_C * (1.0f + 3.0f * GELU_A * v * v);
    dx[i] = dy[i] * d;
  }
}

static napi_value gelu_forward(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, x);
  F32(1, y);
  int64_t n = inum(env, argv[2]);
  REQUIRE((uint64_t)n <= x_len && (uint64_t)n <= y_len, "gelu_forward: arrays too short");
#pragma omp parallel for schedule(static) if (n >= parallel_elements) num_threads(n_threads)
  for (int64_t b = 0; b < n; b += BLOCK) gelu_fwd_block(x + b, y + b, MIN(BLOCK, n - b));
  return NULL;
}

static napi_value gelu_backward(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, x);
  F32(1, dy);
  F32(2, dx);
  int64_t n = inum(env, argv[3]);
  REQUIRE((uint64_t)n <= x_len && (uint64_t)n <= dy_len && (uint64_t)n <= dx_len, "gelu_backward: arrays too short");
#pragma omp parallel for schedule(static) if (n >= parallel_elements) num_threads(n_threads)
  for (int64_t b = 0; b < n; b += BLOCK) gelu_bwd_block(x + b, dy + b, dx + b, MIN(BLOCK, n - b));
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// Softmax over the last axis of x [rows, cols] (attention patterns), and its backward:
//   dx = y ⊙ (dy − Σ_j dy_j·y_j)
static napi_value softmax_forward(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, x);
  F32(1, y);
  int64_t rows = inum(env, argv[2]), cols = inum(env, argv[3]);
  REQUIRE((uint64_t)(rows * cols) <= x_len && (uint64_t)(rows * cols) <= y_len, "softmax_forward: arrays too short");
#pragma omp parallel for schedule(static) if (rows * cols >= parallel_elements) num_threads(n_threads)
  for (int64_t r = 0; r < rows; r++) softmax_row(x + r * cols, y + r * cols, cols);
  return NULL;
}

static napi_value softmax_backward(napi_env env, napi_callback_info info) {
  ARGS(5);
  F32(0, y);
  F32(1, dy);
  F32(2, dx);
  int64_t rows = inum(env, argv[3]), cols = inum(env, argv[4]);
  REQUIRE((uint64_t)(rows * cols) <= y_len && (uint64_t)(rows * cols) <= dy_len && (uint64_t)(rows * cols) <= dx_len,
          "softmax_backward: arrays too short");
#pragma omp parallel for schedule(static) if (rows * cols >= parallel_elements) num_threads(n_threads)
  for (int64_t r = 0; r < rows; r++) {
    const float* yr = y + r * cols;
    const float* gr = dy + r * cols;
    float* out = dx + r * cols;
    const float dot = (float)dot_f32(gr, yr, cols);
    for (int64_t j = 0; j < cols; j++) out[j] = yr[j] * (gr[j] - dot);
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// Attention's core for one (batch, head) pair, q [T, dh], k and v [Tk, dh], bias [T, Tk] (the causal
// mask and ALiBi, −inf where a key is hidden), in three passes instead of six tfjs ops:
//   P = softmax(s·q·kᵀ + bias)  (written into p, kept for backward)      z = P·v
// and backward, with dS the gradient at the softmax's input:
//   dv = Pᵀ·dz     dP = dz·vᵀ     dS = P ⊙ (dP − rowsum(dP ⊙ P))     dq = s·dS·k     dk = s·dSᵀ·q
static inline void gemm(int ta, int tb, int M, int N, int K, float alpha, const float* A, const float* B, float* C) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, 0.0f,
              C, N);
}

// Rows [r0, r1) of the scores: add the bias, then softmax in place.
__attribute__((noinline)) static void attn_rows_forward(float* p, const float* bias, int64_t r0, int64_t r1, int64_t Tk) {
  for (int64_t r = r0; r < r1; r++) {
    float* row = p + r * Tk;
    if (bias != NULL) {
      const float* br = bias + r * Tk;
      for (int64_t j = 0; j < Tk; j++) row[j] += br[j];
    }
    softmax_row(row, row, Tk);
  }
}

// Rows [r0, r1) of dP become dS = P ⊙ (dP − rowsum(dP ⊙ P)).
__attribute__((noinline)) static void attn_rows_backward(float* ds, const float* p, int64_t r0, int64_t r1, int64_t Tk) {
  for (int64_t r = r0; r < r1; r++) {
    float* d = ds + r * Tk;
    const float* pr = p + r * Tk;
    const float dot = (float)dot_f32(d, pr, Tk);
    for (int64_t j = 0; j < Tk; j++) d[j] = pr[j] * (d[j] - dot);
  }
}

// Rows of one pair in blocks, split over the threads when `parallel` (a large pair: pairs then run
// one by one); otherwise serial, inside whichever thread runs the pair.
#define ATTN_ROW_BLOCK 16
static void attn_rows(int forward, float* a, const float* b, int64_t T, int64_t Tk, int parallel) {
  const int64_t blocks = (T + ATTN_ROW_BLOCK - 1) / ATTN_ROW_BLOCK;
#pragma omp parallel for schedule(static) if (parallel) num_threads(n_threads)
  for (int64_t blk = 0; blk < blocks; blk++) {
    const int64_t r0 = blk * ATTN_ROW_BLOCK, r1 = MIN(r0 + ATTN_ROW_BLOCK, T);
    if (forward) attn_rows_forward(a, b, r0, r1, Tk);
    else attn_rows_backward(a, b, r0, r1, Tk);
  }
}

// attention_forward(q, k, v, bias, z, p, B, H, T, Tk, dh, biasB, biasH, scale); bias [biasB, biasH, T, Tk]
// with biasB ∈ {1, B} and biasH ∈ {1, H} (broadcast), or an empty array for none.
static napi_value attention_forward(napi_env env, napi_callback_info info) {
  ARGS(14);
  F32(0, q);
  F32(1, k);
  F32(2, v);
  F32(3, bias);
  F32(4, z);
  F32(5, p);
  const int64_t B = inum(env, argv[6]), H = inum(env, argv[7]), T = inum(env, argv[8]), Tk = inum(env, argv[9]), dh = inum(env, argv[10]);
  const int64_t bB = inum(env, argv[11]), bH = inum(env, argv[12]);
  const float scale = (float)num(env, argv[13]);
  const int64_t pairs = B * H;
  const int has_bias = bias_len > 0;
  REQUIRE(B >= 0 && H >= 0 && T >= 0 && Tk >= 0 && dh >= 0 && (bB == 1 || bB == B) && (bH == 1 || bH == H), "attention_forward: bad shape");
  REQUIRE((uint64_t)(pairs * T * dh) <= q_len && (uint64_t)(pairs * Tk * dh) <= k_len && (uint64_t)(pairs * Tk * dh) <= v_len &&
              (uint64_t)(pairs * T * dh) <= z_len && (uint64_t)(pairs * T * Tk) <= p_len && (!has_bias || (uint64_t)(bB * bH * T * Tk) <= bias_len),
          "attention_forward: arrays too short");
  if (pairs == 0 || T == 0) return NULL;
  if (Tk == 0 || dh == 0) {
    memset(z, 0, sizeof(float) * pairs * T * dh);
    return NULL;
  }
  // Pairs spread over the threads (each pair's products single-threaded, no synchronisation inside
  // a pair) unless there are fewer pairs than threads and each product is worth threading.
  const double gemm_flops = 2.0 * (double)T * (double)Tk * (double)dh;
  const int big = pairs < n_threads && gemm_flops >= gemm_thread_flops;
  blas_threads(big ? blas_max_threads() : 1);
#pragma omp parallel for schedule(static) if (!big && pairs > 1 && 2.0 * gemm_flops * (double)pairs >= gemm_thread_flops) num_threads(n_threads)
  for (int64_t pr = 0; pr < pairs; pr++) {
    const int64_t b = pr / H, h = pr % H;
    float* pp = p + pr * T * Tk;
    const float* bp = has_bias ? bias + ((bB == 1 ? 0 : b) * bH + (bH == 1 ? 0 : h)) * T * Tk : NULL;
    gemm(0, 1, (int)T, (int)Tk, (int)dh, scale, q + pr * T * dh, k + pr * Tk * dh, pp);
    attn_rows(1, pp, bp, T, Tk, big && T * Tk >= parallel_elements);
    gemm(0, 0, (int)T, (int)dh, (int)Tk, 1.0f, pp, v + pr * Tk * dh, z + pr * T * dh);
  }
  return NULL;
}

// attention_backward(q, k, v, p, dz, dq, dk, dv, B·H, T, Tk, dh, scale)
static napi_value attention_backward(napi_env env, napi_callback_info info) {
  ARGS(13);
  F32(0, q);
  F32(1, k);
  F32(2, v);
  F32(3, p);
  F32(4, dz);
  F32(5, dq);
  F32(6, dk);
  F32(7, dv);
  const int64_t pairs = inum(env, argv[8]), T = inum(env, argv[9]), Tk = inum(env, argv[10]), dh = inum(env, argv[11]);
  const float scale = (float)num(env, argv[12]);
  REQUIRE(pairs >= 0 && T >= 0 && Tk >= 0 && dh >= 0, "attention_backward: bad shape");
  REQUIRE((uint64_t)(pairs * T * dh) <= q_len && (uint64_t)(pairs * Tk * dh) <= k_len && (uint64_t)(pairs * Tk * dh) <= v_len &&
              (uint64_t)(pairs * T * Tk) <= p_len && (uint64_t)(pairs * T * dh) <= dz_len && (uint64_t)(pairs * T * dh) <= dq_len &&
              (uint64_t)(pairs * Tk * dh) <= dk_len && (uint64_t)(pairs * Tk * dh) <= dv_len,
          "attention_backward: arrays too short");
  if (pairs == 0 || dh == 0) return NULL;
  if (T == 0 || Tk == 0) {
    memset(dq, 0, sizeof(float) * pairs * T * dh);
    memset(dk, 0, sizeof(float) * pairs * Tk * dh);
    memset(dv, 0, sizeof(float) * pairs * Tk * dh);
    return NULL;
  }
  const double gemm_flops = 2.0 * (double)T * (double)Tk * (double)dh;
  const int big = pairs < n_threads && gemm_flops >= gemm_thread_flops;
  const int spread = !big && pairs > 1 && 4.0 * gemm_flops * (double)pairs >= gemm_thread_flops;
  const int workers = spread ? n_threads : 1;
  // dS for one pair per worker; large pairs run one at a time and share one.
  float* scratch = malloc(sizeof(float) * (size_t)(T * Tk) * (size_t)workers);
  REQUIRE(scratch != NULL, "attention_backward: out of memory");
  blas_threads(big ? blas_max_threads() : 1);
#pragma omp parallel for schedule(static) if (spread) num_threads(n_threads)
  for (int64_t pr = 0; pr < pairs; pr++) {
    float* ds = scratch + (spread ? (int64_t)omp_get_thread_num() : 0) * T * Tk;
    const float* pp = p + pr * T * Tk;
    const float *qp = q + pr * T * dh, *kp = k + pr * Tk * dh, *vp = v + pr * Tk * dh, *dzp = dz + pr * T * dh;
    gemm(1, 0, (int)Tk, (int)dh, (int)T, 1.0f, pp, dzp, dv + pr * Tk * dh);
    gemm(0, 1, (int)T, (int)Tk, (int)dh, 1.0f, dzp, vp, ds);
    attn_rows(0, ds, pp, T, Tk, big && T * Tk >= parallel_elements);
    gemm(0, 0, (int)T, (int)dh, (int)Tk, scale, ds, kp, dq + pr * T * dh);
    gemm(1, 0, (int)Tk, (int)dh, (int)T, scale, ds, qp, dk + pr * Tk * dh);
  }
  free(scratch);
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// AdamW over every parameter in one call, in place, in PyTorch's order (src/train/adamw.ts):
//   θ ← θ(1 − lr·λ) where λ applies;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
//   θ ← θ − lr · (m/c₁) / (√(v/c₂) + ε),   c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ
// adamw(params[], grads[], m[], v[], decay[] (0/1), lr, beta1, beta2, eps, weightDecay, c1, c2, gradScale)
// gradScale multiplies every gradient first (averaging micro-batches, clipping).
static napi_value adamw(napi_env env, napi_callback_info info) {
  ARGS(13);
  uint32_t count;
  CHECK(napi_get_array_length(env, argv[0], &count));
  const float lr = (float)num(env, argv[5]);
  const float b1 = (float)num(env, argv[6]), b2 = (float)num(env, argv[7]);
  const float eps = (float)num(env, argv[8]), wd = (float)num(env, argv[9]);
  const float c1 = (float)num(env, argv[10]), c2 = (float)num(env, argv[11]);
  const float gscale = (float)num(env, argv[12]);
  for (uint32_t k = 0; k < count; k++) {
    napi_value vp, vg, vm, vv, vd;
    CHECK(napi_get_element(env, argv[0], k, &vp));
    CHECK(napi_get_element(env, argv[1], k, &vg));
    CHECK(napi_get_element(env, argv[2], k, &vm));
    CHECK(napi_get_element(env, argv[3], k, &vv));
    CHECK(napi_get_element(env, argv[4], k, &vd));
    float *p, *g, *m, *v;
    size_t np, ng, nm, nv;
    if (!get_f32(env, vp, &p, &np) || !get_f32(env, vg, &g, &ng) || !get_f32(env, vm, &m, &nm) || !get_f32(env, vv, &v, &nv)) {
      napi_throw_type_error(env, NULL, "glassbox_native: adamw takes Float32Arrays");
      return NULL;
    }
    REQUIRE(ng == np && nm == np && nv == np, "adamw: parameter, gradient and moments differ in size");
    bool dflag = false;
    napi_get_value_bool(env, vd, &dflag);
    const float shrink = dflag ? 1.0f - lr * wd : 1.0f;
    const int64_t n = (int64_t)np;
#pragma omp parallel for schedule(static) if (n >= parallel_elements) num_threads(n_threads)
    for (int64_t i = 0; i < n; i++) {
      const float gi = g[i] * gscale;
      const float mi = b1 * m[i] + (1.0f - b1) * gi;
      const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * shrink - lr * ((mi / c1) / (sqrtf(vi / c2) + eps));
    }
  }
  return NULL;
}

// Σ of squares of every array, each summed in order, then in array order: the global gradient
// norm² without a tfjs op per parameter.
static napi_value sum_squares(napi_env env, napi_callback_info info) {
  ARGS(1);
  uint32_t count;
  CHECK(napi_get_array_length(env, argv[0], &count));
  double total = 0;
  for (uint32_t k = 0; k < count; k++) {
    napi_value va;
    CHECK(napi_get_element(env, argv[0], k, &va));
    float* a;
    size_t n;
    if (!get_f32(env, va, &a, &n)) {
      napi_throw_type_error(env, NULL, "glassbox_native: sum_squares takes Float32Arrays");
      return NULL;
    }
    // Fixed 4096-element blocks summed in block order: the same result for any thread count.
    const int64_t blocks = ((int64_t)n + 4095) / 4096;
    double* partial = (double*)malloc(sizeof(double) * (blocks > 0 ? blocks : 1));
#pragma omp parallel for schedule(static) if ((int64_t)n >= parallel_elements) num_threads(n_threads)
    for (int64_t b = 0; b < blocks; b++) {
      double s = 0;
      const int64_t end = (b + 1) * 4096 < (int64_t)n ? (b + 1) * 4096 : (int64_t)n;
      for (int64_t i = b * 4096; i < end; i++) s += (double)a[i] * a[i];
      partial[b] = s;
    }
    for (int64_t b = 0; b < blocks; b++) total += partial[b];
    free(partial);
  }
  return make_double(env, total);
}

// ---------------------------------------------------------------------------------------------
// Elementwise binary ops with the broadcasts a transformer uses. out[i] = a[ia(i)] ∘ b[ib(i)],
// where each operand is read as [outer, mid, inner] with its own strides (0 where broadcast):
// shapes are folded to three dimensions in TypeScript.
enum { OP_ADD = 0, OP_SUB = 1, OP_MUL = 2, OP_DIV = 3, OP_SQDIFF = 4 };

static inline float apply_op(int op, float x, float y) {
  switch (op) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    case OP_DIV: return x / y;
    default: { const float d = x - y; return d * d; }
  }
}

// binary(op, a, b, out, outer, mid, inner, aStrides[3], bStrides[3])
static napi_value binary(napi_env env, napi_callback_info info) {
  ARGS(9);
  int op = (int)inum(env, argv[0]);
  F32(1, a);
  F32(2, b);
  F32(3, out);
  int64_t NO = inum(env, argv[4]), NM = inum(env, argv[5]), NI = inum(env, argv[6]);
  I32(7, sa);
  I32(8, sb);
  REQUIRE((uint64_t)(NO * NM * NI) <= out_len, "binary: output too short");
  const int64_t a0 = sa[0], a1 = sa[1], a2 = sa[2], b0 = sb[0], b1 = sb[1], b2 = sb[2];
  REQUIRE(NO * NM * NI == 0 || ((uint64_t)((NO - 1) * a0 + (NM - 1) * a1 + (NI - 1) * a2) < a_len &&
                              (uint64_t)((NO - 1) * b0 + (NM - 1) * b1 + (NI - 1) * b2) < b_len),
          "binary: operand too short");
  const int64_t total = NO * NM * NI;
#pragma omp parallel for collapse(2) schedule(static) if (total >= parallel_elements) num_threads(n_threads)
  for (int64_t o = 0; o < NO; o++) {
    for (int64_t m = 0; m < NM; m++) {
      const float* ap = a + o * a0 + m * a1;
      const float* bp = b + o * b0 + m * b1;
      float* q = out + (o * NM + m) * NI;
      if (a2 == 1 && b2 == 1) {
        switch (op) {
          case OP_ADD: for (int64_t i = 0; i < NI; i++) q[i] = ap[i] + bp[i]; break;
          case OP_SUB: for (int64_t i = 0; i < NI; i++) q[i] = ap[i] - bp[i]; break;
          case OP_MUL: for (int64_t i = 0; i < NI; i++) q[i] = ap[i] * bp[i]; break;
          case OP_DIV: for (int64_t i = 0; i < NI; i++) q[i] = ap[i] / bp[i]; break;
          default: for (int64_t i = 0; i < NI; i++) q[i] = apply_op(op, ap[i], bp[i]);
        }
      } else if (a2 == 1 && b2 == 0) {
        const float y = bp[0];
        switch (op) {
          case OP_ADD: for (int64_t i = 0; i < NI; i++) q[i] = ap[i] + y; break;
          case OP_SUB: for (int64_t i = 0; i < NI; i++) q[i] = ap[i] - y; break;
          case OP_MUL: for (int64_t i = 0; i < NI; i++) q[i] = ap[i] * y; break;
          case OP_DIV: for (int64_t i = 0; i < NI; i++) q[i] = ap[i] / y; break;
          default: for (int64_t i = 0; i < NI; i++) q[i] = apply_op(op, ap[i], y);
        }
      } else {
        for (int64_t i = 0; i < NI; i++) q[i] = apply_op(op, ap[i * a2], bp[i * b2]);
      }
    }
  }
  return NULL;
}

// Elementwise unary ops: out[i] = f(x[i]).
enum { U_EXP = 0, U_TANH = 1, U_NEG = 2, U_SQRT = 3, U_RSQRT = 4, U_SQUARE = 5, U_LOG = 6, U_RECIP = 7 };

static napi_value unary(napi_env env, napi_callback_info info) {
  ARGS(4);
  int op = (int)inum(env, argv[0]);
  F32(1, x);
  F32(2, y);
  int64_t n = inum(env, argv[3]);
  REQUIRE((uint64_t)n <= x_len && (uint64_t)n <= y_len, "unary: arrays too short");
#define UNARY_LOOP(expr)                                                                      \
  _Pragma("omp parallel for schedule(static) if (n >= parallel_elements) num_threads(n_threads)") \
  for (int64_t i = 0; i < n; i++) { const float v = x[i]; y[i] = (expr); }
  switch (op) {
    case U_EXP: UNARY_LOOP(expf(v)); break;
    case U_TANH: UNARY_LOOP(tanhf(v)); break;
    case U_NEG: UNARY_LOOP(-v); break;
    case U_SQRT: UNARY_LOOP(sqrtf(v)); break;
    case U_RSQRT: UNARY_LOOP(1.0f / sqrtf(v)); break;
    case U_SQUARE: UNARY_LOOP(v * v); break;
    case U_LOG: UNARY_LOOP(logf(v)); break;
    case U_RECIP: UNARY_LOOP(1.0f / v); break;
    default: napi_throw_range_error(env, NULL, "glassbox_native: unknown unary op"); return NULL;
  }
  return NULL;
}

// Sums of x viewed as [outer, mid, inner] over mid: out [outer, inner]. Summing the last axis
// is inner = 1; summing leading rows (a bias gradient) is outer = 1. Each output element's sum
// runs over mid in order inside one thread.
static napi_value sum_mid(napi_env env, napi_callback_info info) {
  ARGS(5);
  F32(0, x);
  F32(1, out);
  int64_t NO = inum(env, argv[2]), NM = inum(env, argv[3]), NI = inum(env, argv[4]);
  REQUIRE((uint64_t)(NO * NM * NI) <= x_len && (uint64_t)(NO * NI) <= out_len, "sum_mid: arrays too short");
  const int big = NO * NM * NI >= parallel_elements;
  if (NI == 1) {
#pragma omp parallel for schedule(static) if (big) num_threads(n_threads)
    for (int64_t o = 0; o < NO; o++) {
      const float* r = x + o * NM;
      float s = 0;
      for (int64_t m = 0; m < NM; m++) s += r[m];
      out[o] = s;
    }
    return NULL;
  }
  // Column blocks of 64: each thread owns whole output columns and walks the rows in order.
  const int64_t blocks = (NI + 63) / 64;
#pragma omp parallel for collapse(2) schedule(static) if (big) num_threads(n_threads)
  for (int64_t o = 0; o < NO; o++) {
    for (int64_t cb = 0; cb < blocks; cb++) {
      const int64_t c0 = cb * 64, c1 = c0 + 64 < NI ? c0 + 64 : NI;
      float* q = out + o * NI;
      for (int64_t c = c0; c < c1; c++) q[c] = 0;
      for (int64_t m = 0; m < NM; m++) {
        const float* r = x + (o * NM + m) * NI;
        for (int64_t c = c0; c < c1; c++) q[c] += r[c];
      }
    }
  }
  return NULL;
}

// Max over the middle axis, like sum_mid (used by softmax-style max-subtraction).
static napi_value max_mid(napi_env env, napi_callback_info info) {
  ARGS(5);
  F32(0, x);
  F32(1, out);
  int64_t NO = inum(env, argv[2]), NM = inum(env, argv[3]), NI = inum(env, argv[4]);
  REQUIRE((uint64_t)(NO * NM * NI) <= x_len && (uint64_t)(NO * NI) <= out_len && NM > 0, "max_mid: arrays too short");
#pragma omp parallel for schedule(static) if (NO * NM * NI >= parallel_elements) num_threads(n_threads)
  for (int64_t o = 0; o < NO; o++) {
    float* q = out + o * NI;
    const float* r0 = x + o * NM * NI;
    for (int64_t c = 0; c < NI; c++) q[c] = r0[c];
    for (int64_t m = 1; m < NM; m++) {
      const float* r = r0 + m * NI;
      for (int64_t c = 0; c < NI; c++) {
        const float v = r[c];
        if (v > q[c] || isnan(v)) q[c] = v;
      }
    }
  }
  return NULL;
}

// Transpose of a float32 tensor up to rank 6: out = permute(x, perm). shape and perm are Int32Arrays.
static napi_value transpose(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, x);
  F32(1, out);
  I32(2, shape);
  I32(3, perm);
  const int rank = (int)shape_len;
  REQUIRE(rank >= 1 && rank <= 6 && perm_len == shape_len, "transpose: rank must be 1..6");
  int64_t inStride[6], outShape[6], srcStride[6];
  int64_t total = 1;
  for (int i = rank - 1; i >= 0; i--) {
    inStride[i] = total;
    total *= shape[i];
  }
  REQUIRE((uint64_t)total <= x_len && (uint64_t)total <= out_len, "transpose: arrays too short");
  for (int i = 0; i < rank; i++) {
    outShape[i] = shape[perm[i]];
    srcStride[i] = inStride[perm[i]];
  }
  // Pad to rank 6 with leading ones so one loop nest covers every rank.
  int64_t S[6], T[6];
  for (int i = 0; i < 6; i++) {
    const int k = i - (6 - rank);
    S[i] = k >= 0 ? outShape[k] : 1;
    T[i] = k >= 0 ? srcStride[k] : 0;
  }
  const int64_t rowsOut = S[0] * S[1] * S[2] * S[3] * S[4];
#pragma omp parallel for schedule(static) if (total >= parallel_elements) num_threads(n_threads)
  for (int64_t row = 0; row < rowsOut; row++) {
    int64_t rem = row, idx[5];
    for (int i = 4; i >= 0; i--) {
      idx[i] = rem % S[i];
      rem /= S[i];
    }
    const float* src = x + idx[0] * T[0] + idx[1] * T[1] + idx[2] * T[2] + idx[3] * T[3] + idx[4] * T[4];
    float* dst = out + row * S[5];
    const int64_t st = T[5];
    if (st == 1) memcpy(dst, src, sizeof(float) * S[5]);
    else for (int64_t j = 0; j < S[5]; j++) dst[j] = src[j * st];
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// configure(threads, gemmThreadFlops, parallelElements): pins the thread counts, so that a run
// and its resumption use the same ones.
static napi_value configure(napi_env env, napi_callback_info info) {
  ARGS(3);
  int threads = (int)inum(env, argv[0]);
  if (threads < 1) threads = 1;
  n_threads = threads;
#ifndef GLASSBOX_ACCELERATE
  max_blas_threads = threads;
  current_blas_threads = -1;
  blas_threads(threads);
#endif
  omp_set_num_threads(threads);
  const double flops = num(env, argv[1]);
  if (flops > 0) gemm_thread_flops = flops;
  const int64_t elems = inum(env, argv[2]);
  if (elems > 0) parallel_elements = elems;
  return NULL;
}

static napi_value describe(napi_env env, napi_callback_info info) {
  napi_value obj, v;
  napi_create_object(env, &obj);
  napi_create_int32(env, n_threads, &v);
  napi_set_named_property(env, obj, "threads", v);
  napi_create_double(env, gemm_thread_flops, &v);
  napi_set_named_property(env, obj, "gemmThreadFlops", v);
  napi_create_int64(env, parallel_elements, &v);
  napi_set_named_property(env, obj, "parallelElements", v);
#ifdef GLASSBOX_ACCELERATE
  napi_create_string_utf8(env, "Accelerate", NAPI_AUTO_LENGTH, &v);
#else
  char* config = openblas_get_config();
  napi_create_string_utf8(env, config ? config : "OpenBLAS", NAPI_AUTO_LENGTH, &v);
#endif
  napi_set_named_property(env, obj, "blas", v);
  napi_create_int32(env, omp_get_max_threads(), &v);
  napi_set_named_property(env, obj, "ompMaxThreads", v);
  return obj;
}

#define EXPORT(name)                                                     \
  do {                                                                   \
    napi_value fn;                                                       \
    napi_create_function(env, #name, NAPI_AUTO_LENGTH, name, NULL, &fn); \
    napi_set_named_property(env, exports, #name, fn);                    \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT(sgemm);
  EXPORT(xent_forward);
  EXPORT(xent_backward);
  EXPORT(layernorm_forward);
  EXPORT(layernorm_backward);
  EXPORT(gelu_forward);
  EXPORT(gelu_backward);
  EXPORT(softmax_forward);
  EXPORT(attention_forward);
  EXPORT(attention_backward);
  EXPORT(softmax_backward);
  EXPORT(adamw);
  EXPORT(sum_squares);
  EXPORT(binary);
  EXPORT(unary);
  EXPORT(sum_mid);
  EXPORT(max_mid);
  EXPORT(transpose);
  EXPORT(configure);
  EXPORT(describe);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
