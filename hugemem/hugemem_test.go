package hugemem

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestMake checks that Make returns zeroed, writable memory of the asked
// length, advised on Linux when transparent huge pages can be requested
// (the kernel has them) and never below Threshold.
func TestMake(t *testing.T) {
	small := Make[complex128](100)
	if len(small) != 100 || Advise(small) {
		t.Errorf("a slice of %d bytes was advised (threshold %d)", 16*len(small), Threshold)
	}
	n := 3 * Threshold / 16
	big := Make[complex128](n)
	if len(big) != n {
		t.Fatalf("len %d, want %d", len(big), n)
	}
	for i := range big {
		if big[i] != 0 {
			t.Fatalf("element %d = %v, want 0", i, big[i])
		}
		big[i] = complex(float64(i), 1)
	}
	if big[n-1] != complex(float64(n-1), 1) {
		t.Fatal("write lost")
	}
	setting, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	wantAdvised := runtime.GOOS == "linux" && err == nil // the kernel takes the advice even when set to never
	if got := Advise(big); got != wantAdvised {
		t.Errorf("Advise on %d bytes: %v, want %v (transparent huge pages: %q)", 16*n, got, wantAdvised, strings.TrimSpace(string(setting)))
	}
}
