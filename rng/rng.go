package rng

import (
	"fmt"
	"hash/fnv"
	"math"
)

// Key selects a family of independent streams. The zero Key is valid but
// should not be used for physics: build keys with New.
type Key struct {
	w [2]uint64
}

// New returns the key of a purpose within a run: seed is the run's seed,
// purpose a short fixed name such as "gauge-start".
func New(seed uint64, purpose string) Key {
	h := fnv.New64a()
	h.Write([]byte(purpose))
	return Key{w: [2]uint64{seed, h.Sum64()}}
}

// deriveMark marks the part of the counter space used by Derive.
const deriveMark = 1 << 63

// Derive returns the i-th child key, independent of k and of its other children.
func (k Key) Derive(i uint64) Key {
	b := philox4x64([4]uint64{i, 0, 0, deriveMark}, k.w)
	return Key{w: [2]uint64{b[0], b[1]}}
}

// Words returns the key's two words (for checkpoints); FromWords inverts it.
func (k Key) Words() [2]uint64 { return k.w }

// FromWords rebuilds a key from its words.
func FromWords(w [2]uint64) Key { return Key{w: w} }

func (k Key) String() string { return fmt.Sprintf("rng.Key{%016x %016x}", k.w[0], k.w[1]) }

// Stream is the random sequence of one (key, site) pair. The zero Stream is
// not usable; get one from Key.Stream.
type Stream struct {
	key      [2]uint64
	site     uint64
	block    uint64    // index of the next block to generate
	buf      [4]uint64 // current block
	pos      int       // next unused word of buf; 4 means empty
	spare    float64   // second normal of the last Box–Muller pair
	hasSpare bool
}

// Stream returns the stream of global site index site.
func (k Key) Stream(site uint64) Stream {
	return Stream{key: k.w, site: site, pos: 4}
}

// Uint64 returns the next 64 random bits.
func (s *Stream) Uint64() uint64 {
	if s.pos == 4 {
		s.buf = philox4x64([4]uint64{s.site, s.block, 0, 0}, s.key)
		s.block++
		s.pos = 0
	}
	u := s.buf[s.pos]
	s.pos++
	return u
}

// Float64 returns a uniform number in the open interval (0, 1).
func (s *Stream) Float64() float64 {
	return (float64(s.Uint64()>>12) + 0.5) * 0x1p-52
}

// Normal returns a standard normal number.
func (s *Stream) Normal() float64 {
	if s.hasSpare {
		s.hasSpare = false
		return s.spare
	}
	r := math.Sqrt(-2 * math.Log(s.Float64()))
	sin, cos := math.Sincos(2 * math.Pi * s.Float64())
	s.spare, s.hasSpare = r*sin, true
	return r * cos
}

// ComplexNormal returns a complex number with density exp(−|z|²)/π.
func (s *Stream) ComplexNormal() complex128 {
	r := math.Sqrt(-math.Log(s.Float64()))
	sin, cos := math.Sincos(2 * math.Pi * s.Float64())
	return complex(r*cos, r*sin)
}

// Phase returns a Haar-random element of U(1).
func (s *Stream) Phase() complex128 {
	sin, cos := math.Sincos(2 * math.Pi * s.Float64())
	return complex(cos, sin)
}

// Unitary fills dst (n×n, row-major) with a Haar-random element of U(n).
func (s *Stream) Unitary(dst []complex128, n int) {
	if len(dst) != n*n {
		panic(fmt.Sprintf("rng: Unitary needs %d elements for n = %d, got %d", n*n, n, len(dst)))
	}
	for i := range dst {
		dst[i] = s.ComplexNormal()
	}
	// Modified Gram–Schmidt on the columns, each projection done twice
	// ("twice is enough") to keep U†U = 1 to rounding for ill-conditioned
	// draws. R then has a positive diagonal, which makes Q Haar-distributed.
	for j := 0; j < n; j++ {
		for k := 0; k < 2*j; k++ {
			k := k % j
			var dot complex128 // ⟨q_k, v_j⟩
			for i := 0; i < n; i++ {
				q := dst[i*n+k]
				dot += complex(real(q), -imag(q)) * dst[i*n+j]
			}
			for i := 0; i < n; i++ {
				dst[i*n+j] -= dot * dst[i*n+k]
			}
		}
		var norm float64
		for i := 0; i < n; i++ {
			v := dst[i*n+j]
			norm += real(v)*real(v) + imag(v)*imag(v)
		}
		inv := complex(1/math.Sqrt(norm), 0)
		for i := 0; i < n; i++ {
			dst[i*n+j] *= inv
		}
	}
}
