// Package u1 is the arithmetic of U(1) and its Lie algebra u(1) on complex128
// values, and the angle representation the U(1) flows work in.
//
// An element is z = e^{iθ}; its angle θ = [Angle](z) lies in (−π, π]. The
// algebra is iℝ with generator T = i: X = x T = ix, and x = Im X
// ([Components]). The anti-Hermitian part of any z is [TA](z) = i Im z (the
// algebra has no traceless condition, unlike su(N)); for every X in u(1),
// Re(X z) = Re(X TA(z)). [Exp] maps u(1) to U(1) exactly.
//
// U(1) is the Nc = 1 case of pfmpi's gauge fields, which store an element as a
// 1×1 complex matrix.
package u1
