// Package specrun computes what `pfmpi spectrum` reports for one gauge
// configuration and the Wilson–Dirac operator on it: log|det D|² and
// log det D_sc D_sc† from dense matrices on small lattices (package
// spectrum), the extreme eigenvalues and condition number of M + μ
// (M = D D†, or D_sc D_sc† with even/odd preconditioning, Eq. (34) of
// arXiv:2207.08945) by Lanczos, and φ†(M + μ)⁻¹φ for a pseudofermion read
// from a NumPy file — the numbers a pseudofermion action and its solver
// depend on.
package specrun
