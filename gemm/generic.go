package gemm

import "unsafe"

// microGo is the portable kernel: panels consecutive 4 × 4 tiles.
func microGo[T Float](kc int, a *T, lda int, b, c *T, ldc int, acc int, panels int) {
	as := unsafe.Slice(a, (4*panels-1)*lda+kc)
	cs := unsafe.Slice(c, (4*panels-1)*ldc+4)
	bp := unsafe.Slice(b, 4*kc)
	for p := range panels {
		microGo1(kc, as[4*p*lda:], lda, bp, cs[4*p*ldc:], ldc, acc != 0)
	}
}

// microGo1 computes one 4 × 4 tile.
func microGo1[T Float](kc int, ap []T, lda int, bp []T, cs []T, ldc int, acc bool) {
	a0s, a1s, a2s, a3s := ap[:kc], ap[lda:lda+kc], ap[2*lda:2*lda+kc], ap[3*lda:3*lda+kc]
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 T
	for q := 0; q < kc; q++ {
		bv := bp[4*q : 4*q+4 : 4*q+4]
		a0, a1, a2, a3 := a0s[q], a1s[q], a2s[q], a3s[q]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	t := [4][4]T{{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}}
	for r := range 4 {
		row := cs[r*ldc : r*ldc+4 : r*ldc+4]
		if acc {
			row[0] += t[r][0]
			row[1] += t[r][1]
			row[2] += t[r][2]
			row[3] += t[r][3]
		} else {
			row[0], row[1], row[2], row[3] = t[r][0], t[r][1], t[r][2], t[r][3]
		}
	}
}
