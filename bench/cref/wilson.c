/*
 * wilson-cref: a plain C reference of pfmpi's Wilson hopping term, for
 * `pfmpi bench -compare` (not part of the Go build).
 *
 *   (Dψ)(x) = ψ(x) − κ Σ_μ [(1 − γ_μ) U_μ(x) ψ(x+μ̂) + (1 + γ_μ) U_μ†(x−μ̂) ψ(x−μ̂)]
 *
 * antiperiodic in direction 0, periodic in the others, with the γ matrices of
 * pfmpi's dslash package (chiral block form γ_μ = [[0, A_μ], [A_μ†, 0]]):
 *   2D: A_0 = 1, A_1 = −i;  4D: A_0 = 1, A_k = −iσ_k.
 * Every hop projects onto a half spinor h = ψ_up ∓ A_μ ψ_dn, multiplies h by
 * the link and reconstructs (h, ∓A_μ† h). Sites are in lexicographic order
 * with direction 0 slowest, fields array-of-structures: a spinor is Ns·Nc
 * complex numbers spin-major, a link Nc×Nc row-major, links [site][μ].
 *
 * usage: wilson-cref DIR ND NC L_0 … L_{ND−1} KAPPA REPS
 *   reads DIR/links.bin (V·ND·NC² complex) and DIR/in.bin (V·NS·NC complex),
 *   writes DIR/out.bin = D in, times REPS applications five times and prints
 *   the best as "ns_per_site <value>".
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
	double re, im;
} cplx;

static inline cplx cadd(cplx a, cplx b) { return (cplx){a.re + b.re, a.im + b.im}; }
static inline cplx cmul(cplx a, cplx b) { return (cplx){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
/* conj(a)·b */
static inline cplx cjmul(cplx a, cplx b) { return (cplx){a.re * b.re + a.im * b.im, a.re * b.im - a.im * b.re}; }
static inline cplx rmul(double s, cplx a) { return (cplx){s * a.re, s * a.im}; }

/* Phases of A_μ as codes: 0: +1, 1: −1, 2: +i, 3: −i. */
static inline cplx phase(int code, cplx z)
{
	switch (code) {
	case 0: return z;
	case 1: return (cplx){-z.re, -z.im};
	case 2: return (cplx){-z.im, z.re};
	default: return (cplx){z.im, -z.re};
	}
}
/* the code of the conjugate phase */
static inline int conjcode(int code) { return code < 2 ? code : 5 - code; }
/* the code of −phase */
static inline int negcode(int code) { return code ^ 1; }

/* A_μ row i: column col[nd/4][μ][i], phase code pc[nd/4][μ][i]. */
static const int col[2][4][2] = {{{0, 0}, {0, 0}}, {{0, 1}, {1, 0}, {1, 0}, {0, 1}}};
static const int pc[2][4][2] = {{{0, 0}, {3, 3}}, {{0, 0}, {3, 3}, {1, 0}, {3, 2}}};

/* g = U h (dag = 0) or U† h (dag = 1) for NC colours. */
static inline __attribute__((always_inline)) void link(int nc, int dag, const cplx *restrict u, const cplx *h, cplx *g)
{
	for (int a = 0; a < nc; a++) {
		cplx s = {0, 0};
		for (int b = 0; b < nc; b++)
			s = cadd(s, dag ? cjmul(u[b * nc + a], h[b]) : cmul(u[a * nc + b], h[b]));
		g[a] = s;
	}
}

static inline __attribute__((always_inline)) void dslash(int nd, int nc, long v, long vt, const int32_t *restrict nb,
							 const cplx *restrict u, const cplx *restrict in, cplx *restrict out, double kappa)
{
	const int half = nd / 2, n = nd * nc, d4 = nd / 4;
	for (long s = 0; s < v; s++) {
		cplx acc[12];
		for (int i = 0; i < n; i++)
			acc[i] = (cplx){0, 0};
		_Pragma("GCC unroll 4") for (int mu = 0; mu < nd; mu++) {
			_Pragma("GCC unroll 2") for (int dir = 0; dir < 2; dir++) {
				/* forward (1 − γ_μ) U_μ(x) ψ(x+μ̂); backward (1 + γ_μ) U_μ†(x−μ̂) ψ(x−μ̂) */
				long y = nb[(s * nd + mu) * 2 + dir];
				double sign = 1;
				if (mu == 0 && (dir == 0 ? s >= v - vt : s < vt))
					sign = -1;
				const cplx *p = in + y * n;
				const cplx *uu = u + ((dir == 0 ? s : y) * nd + mu) * nc * nc;
				cplx h[6], g[6];
				for (int i = 0; i < half; i++) {
					int c = col[d4][mu][i], code = pc[d4][mu][i];
					if (dir == 0)
						code = negcode(code);
					for (int k = 0; k < nc; k++)
						h[i * nc + k] = cadd(p[i * nc + k], phase(code, p[(half + c) * nc + k]));
				}
				for (int i = 0; i < half; i++)
					link(nc, dir, uu, h + i * nc, g + i * nc);
				for (int i = 0; i < half; i++) {
					int c = col[d4][mu][i], code = conjcode(pc[d4][mu][i]);
					if (dir == 0)
						code = negcode(code);
					for (int k = 0; k < nc; k++) {
						cplx z = rmul(sign, g[i * nc + k]);
						acc[i * nc + k] = cadd(acc[i * nc + k], z);
						acc[(half + c) * nc + k] = cadd(acc[(half + c) * nc + k], phase(code, z));
					}
				}
			}
		}
		for (int i = 0; i < n; i++)
			out[s * n + i] = cadd(in[s * n + i], rmul(-kappa, acc[i]));
	}
}

static void d2u1(long v, long vt, const int32_t *nb, const cplx *u, const cplx *in, cplx *out, double k) { dslash(2, 1, v, vt, nb, u, in, out, k); }
static void d2su3(long v, long vt, const int32_t *nb, const cplx *u, const cplx *in, cplx *out, double k) { dslash(2, 3, v, vt, nb, u, in, out, k); }
static void d4su3(long v, long vt, const int32_t *nb, const cplx *u, const cplx *in, cplx *out, double k) { dslash(4, 3, v, vt, nb, u, in, out, k); }

static void *load(const char *dir, const char *name, size_t bytes)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
	if (!p || fread(p, 1, bytes, f) != bytes) {
		fprintf(stderr, "%s: cannot read %zu bytes\n", path, bytes);
		exit(1);
	}
	fclose(f);
	return p;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: wilson-cref DIR ND NC L_0 … L_{ND−1} KAPPA REPS\n");
		return 2;
	}
	const char *dir = argv[1];
	int nd = atoi(argv[2]), nc = atoi(argv[3]);
	if (!((nd == 2 && (nc == 1 || nc == 3)) || (nd == 4 && nc == 3)) || argc != 6 + nd) {
		fprintf(stderr, "wilson-cref: ND NC must be 2 1, 2 3 or 4 3, followed by ND extents, KAPPA and REPS\n");
		return 2;
	}
	int dims[4];
	long v = 1;
	for (int mu = 0; mu < nd; mu++) {
		dims[mu] = atoi(argv[4 + mu]);
		v *= dims[mu];
	}
	double kappa = atof(argv[4 + nd]);
	int reps = atoi(argv[5 + nd]);
	int n = nd * nc;
	long vt = v / dims[0];
	int32_t *nb = aligned_alloc(64, (v * nd * 2 * sizeof(int32_t) + 63) / 64 * 64);
	for (long s = 0; s < v; s++) {
		int x[4];
		long r = s;
		for (int mu = nd - 1; mu >= 0; mu--) {
			x[mu] = r % dims[mu];
			r /= dims[mu];
		}
		for (int mu = 0; mu < nd; mu++)
			for (int dir = 0; dir < 2; dir++) {
				int y[4];
				memcpy(y, x, sizeof y);
				y[mu] = (y[mu] + (dir == 0 ? 1 : dims[mu] - 1)) % dims[mu];
				long i = 0;
				for (int nu = 0; nu < nd; nu++)
					i = i * dims[nu] + y[nu];
				nb[(s * nd + mu) * 2 + dir] = (int32_t)i;
			}
	}
	cplx *u = load(dir, "links.bin", v * nd * nc * nc * sizeof(cplx));
	cplx *in = load(dir, "in.bin", v * n * sizeof(cplx));
	cplx *out = aligned_alloc(64, (v * n * sizeof(cplx) + 63) / 64 * 64);
	void (*op)(long, long, const int32_t *, const cplx *, const cplx *, cplx *, double) = nd == 4 ? d4su3 : nc == 3 ? d2su3 : d2u1;
	op(v, vt, nb, u, in, out, kappa);
	char path[4096];
	snprintf(path, sizeof path, "%s/out.bin", dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(out, sizeof(cplx), v * n, f) != (size_t)(v * n) || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	double best = 1e300;
	for (int t = 0; t < 5; t++) {
		double t0 = now();
		for (int r = 0; r < reps; r++)
			op(v, vt, nb, u, in, out, kappa);
		double dt = (now() - t0) / reps;
		if (dt < best)
			best = dt;
	}
	printf("ns_per_site %.6g\n", best * 1e9 / v);
	return 0;
}
