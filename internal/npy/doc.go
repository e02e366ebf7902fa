// Package npy writes NumPy .npy files (format 1.0, NEP 1) of complex128 arrays
// of any shape in C order. Reading is left to codeberg.org/sbinet/npyio, whose
// writer only produces one-dimensional shapes for slices.
package npy
