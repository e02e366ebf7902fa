package rng

import "math/bits"

// Philox4x64 constants: the round multipliers and the Weyl key increments
// (golden ratio and √3 − 1 in 64-bit fixed point).
const (
	philoxM0 = 0xD2E7470EE14C6C93
	philoxM1 = 0xCA5A826395121157
	philoxW0 = 0x9E3779B97F4A7C15
	philoxW1 = 0xBB67AE8584CAA73B
)

// philox4x64 returns the Philox4x64-10 block of counter ctr under key.
func philox4x64(ctr [4]uint64, key [2]uint64) [4]uint64 {
	k0, k1 := key[0], key[1]
	x0, x1, x2, x3 := ctr[0], ctr[1], ctr[2], ctr[3]
	for round := 0; round < 10; round++ {
		if round > 0 {
			k0 += philoxW0
			k1 += philoxW1
		}
		hi0, lo0 := bits.Mul64(philoxM0, x0)
		hi1, lo1 := bits.Mul64(philoxM1, x2)
		x0, x1, x2, x3 = hi1^x1^k0, lo1, hi0^x3^k1, lo0
	}
	return [4]uint64{x0, x1, x2, x3}
}
