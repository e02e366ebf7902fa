// Package measure holds observables and the statistics of Monte Carlo time
// series.
//
// # Statistics
//
// [Gamma] is Wolff's Γ-method for a primary observable: the mean, its
// error including autocorrelations, and the integrated autocorrelation time
//
//	τ_int = ½ + Σ_{t=1}^{W} Γ(t)/Γ(0),   σ²(mean) = 2 τ_int Γ(0)/N,
//
// with the automatic window W (S = 1.5) and Wolff's bias corrections. So
// τ_int = ½ for independent data, and an estimate needs N ≫ τ_int. Several
// replicas (independent chains) may be combined. [Jackknife] gives errors
// of derived quantities (ratios, fits) from binned data; bins of ≳ 2τ_int
// measurements absorb autocorrelations.
//
// # Observables
//
// The plaquette, topological charge and Polyakov loop live with the gauge
// field (package gauge). [Pion] gives the zero-momentum pion correlator from
// point-source propagators,
//
//	C(t) = Σ_x⃗ Σ_{a,b} |D⁻¹(x⃗, t_src + t; src)_{ab}|²,
//
// [EffectiveMass] its cosh effective mass and [FitCosh] the fit of
// A(e^{−mt} + e^{−m(T−t)}) that gives aM_PS. [Extremes] estimates extreme
// eigenvalues (condition numbers) of the Hermitian kernels by Lanczos.
//
// # Exact results
//
// [U1Plaquette] is the exact finite-volume plaquette of 2D U(1) pure gauge
// theory, Σ_n I_n'(β) I_n(β)^{V−1} / Σ_n I_n(β)^V, against which HMC is
// tested.
package measure
