package su3_test

import (
	"fmt"
	"math"

	"pfmpi/su3"
)

// exp of an algebra element is in SU(3); its eigenphases are those of X.
func ExampleExp() {
	x := su3.FromComponents([8]float64{0, 0, 0.6, 0, 0, 0, 0, 0}) // 0.6·T_3 = diag(0.3i, −0.3i, 0)
	u := su3.Exp(x)
	theta, _ := su3.Phases(u)
	fmt.Printf("det = %.3f, distance from SU(3) < 1e-15: %v\n", real(u.Det()), u.DistanceFromSU3() < 1e-15)
	sum := 0.0
	for _, t := range theta {
		sum += math.Abs(t)
	}
	fmt.Printf("Σ|θ| = %.3f\n", sum)
	// Output:
	// det = 1.000, distance from SU(3) < 1e-15: true
	// Σ|θ| = 0.600
}
