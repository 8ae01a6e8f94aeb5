/* Measured fp32 FMA peak of this machine: 12 independent FMA chains per thread (enough to hide
 * the FMA latency on both pipes), held in registers, one thread per core. Prints GFLOP/s.
 * AVX-512 where the compiler targets it; elsewhere a portable loop the compiler vectorizes. */
#include <omp.h>
#include <stdio.h>

#define STEPS 50000000L

#ifdef __AVX512F__
#include <immintrin.h>
#define LANES 16
static float run_chains(void) {
  __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  /* distinct starts: equal chains would be merged into one by the compiler */
  __m512 c0 = _mm512_set1_ps(0.10f), c1 = _mm512_set1_ps(0.11f), c2 = _mm512_set1_ps(0.12f);
  __m512 c3 = _mm512_set1_ps(0.13f), c4 = _mm512_set1_ps(0.14f), c5 = _mm512_set1_ps(0.15f);
  __m512 c6 = _mm512_set1_ps(0.16f), c7 = _mm512_set1_ps(0.17f), c8 = _mm512_set1_ps(0.18f);
  __m512 c9 = _mm512_set1_ps(0.19f), c10 = _mm512_set1_ps(0.20f), c11 = _mm512_set1_ps(0.21f);
  for (long s = 0; s < STEPS; ++s) {
    c0 = _mm512_fmadd_ps(c0, a, b); c1 = _mm512_fmadd_ps(c1, a, b);
    c2 = _mm512_fmadd_ps(c2, a, b); c3 = _mm512_fmadd_ps(c3, a, b);
    c4 = _mm512_fmadd_ps(c4, a, b); c5 = _mm512_fmadd_ps(c5, a, b);
    c6 = _mm512_fmadd_ps(c6, a, b); c7 = _mm512_fmadd_ps(c7, a, b);
    c8 = _mm512_fmadd_ps(c8, a, b); c9 = _mm512_fmadd_ps(c9, a, b);
    c10 = _mm512_fmadd_ps(c10, a, b); c11 = _mm512_fmadd_ps(c11, a, b);
  }
  __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  sum = _mm512_add_ps(sum, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
  return _mm512_reduce_add_ps(sum);
}
#else
#define LANES 8
static float run_chains(void) {
  float acc[12][LANES];
  for (int c = 0; c < 12; ++c)
    for (int l = 0; l < LANES; ++l) acc[c][l] = 0.1f + 0.01f * c + 0.001f * l;
  for (long s = 0; s < STEPS; ++s)
    for (int c = 0; c < 12; ++c)
      for (int l = 0; l < LANES; ++l) acc[c][l] = acc[c][l] * 0.999999f + 1e-7f;
  float sum = 0;
  for (int c = 0; c < 12; ++c)
    for (int l = 0; l < LANES; ++l) sum += acc[c][l];
  return sum;
}
#endif

int main(void) {
  float sink = 0.0f;
  double start = omp_get_wtime();
#pragma omp parallel reduction(+ : sink)
  sink += run_chains();
  double seconds = omp_get_wtime() - start;
  double flops = 2.0 * 12 * LANES * (double)STEPS * omp_get_max_threads();
  printf("%.1f\n", flops / seconds / 1e9);
  return sink == 12345.0f; /* keeps the chains alive */
}
