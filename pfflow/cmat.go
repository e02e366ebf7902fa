package pfflow

import "math/cmplx"

// Small dense complex matrices (n × n, row-major, n = Ns·Nc) for the A(x)
// of the layers; colour matrices (links) use the group's own arithmetic
// (package group).

// invert sets inv = a⁻¹ by Gauss–Jordan elimination with partial pivoting
// and returns det a; work holds 2n² values. A singular matrix gives det 0
// and leaves inv undefined.
func invert(inv, a, work []complex128, n int) complex128 {
	m := work[:n*n]
	copy(m, a)
	for i := range n {
		for j := range n {
			inv[i*n+j] = 0
		}
		inv[i*n+i] = 1
	}
	det := complex(1, 0)
	for col := range n {
		p := col
		for r := col + 1; r < n; r++ {
			if cmplx.Abs(m[r*n+col]) > cmplx.Abs(m[p*n+col]) {
				p = r
			}
		}
		if m[p*n+col] == 0 {
			return 0
		}
		if p != col {
			for j := range n {
				m[p*n+j], m[col*n+j] = m[col*n+j], m[p*n+j]
				inv[p*n+j], inv[col*n+j] = inv[col*n+j], inv[p*n+j]
			}
			det = -det
		}
		d := m[col*n+col]
		det *= d
		for j := range n {
			m[col*n+j] /= d
			inv[col*n+j] /= d
		}
		for r := range n {
			if r == col || m[r*n+col] == 0 {
				continue
			}
			f := m[r*n+col]
			for j := range n {
				m[r*n+j] -= f * m[col*n+j]
				inv[r*n+j] -= f * inv[col*n+j]
			}
		}
	}
	return det
}

// cget reads the complex number at Data[i], Data[i+1].
func cget(d []float64, i int) complex128 { return complex(d[i], d[i+1]) }

// cadd adds z to the complex number at d[i], d[i+1].
func cadd(d []float64, i int, z complex128) {
	d[i] += real(z)
	d[i+1] += imag(z)
}

// cset stores z at d[i], d[i+1].
func cset(d []float64, i int, z complex128) {
	d[i] = real(z)
	d[i+1] = imag(z)
}
