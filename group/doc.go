// Package group is the gauge group of a theory: U(1) or SU(3), told apart by
// the number of colours Nc, and the arithmetic of its elements and of its
// Lie algebra on Nc×Nc complex matrices stored row-major in slices (Nc² values;
// 2Nc² reals per link in the networks' layout).
//
// Conventions, written once for the whole code (see also packages su3 and u1):
//
//   - A link U_μ(x) is an Nc×Nc matrix; U(1) links are unit complex numbers.
//   - The algebra is anti-Hermitian: X = Σ_a x_a T_a with T = i for U(1) and
//     T_a = iλ_a/2 for SU(3), normalised Tr(T_a T_b) = −δ_ab/2 (SU(3)).
//   - The dual of a matrix m is Σ_a T_a Re Tr(T_a m): −i Im m for U(1),
//     −TA(m)/2 for SU(3), with TA the traceless anti-Hermitian part. Forces
//     ∂S/∂x_a are stored as duals.
//
// Helpers switch on Nc once and run the group's own code; none allocates.
// The run-file name of a group ("u1", "su3") is its String; package config
// maps names to groups.
package group
