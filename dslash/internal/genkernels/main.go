// Command genkernels writes dslash/kernels_gen.go: the Wilson hop kernels
// for 2D U(1), 2D SU(3) and 4D SU(3), for D and for D†, with every sign of
// the projectors (1 ± γ_μ) written as an addition or subtraction (the
// compiler then needs no multiplication by ±1). Run `go generate ./dslash`.
//
// The γ matrices are those of dslash/gamma.go: γ_μ = [[0, A_μ], [A_μ†, 0]]
// with A_μ monomial; (1 + sγ_μ)ψ = (h, s A_μ† h), h = ψ_up + s A_μ ψ_dn.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
	"strings"
)

// mono is A_μ: row i has phase[i] ∈ {"1", "-1", "i", "-i"} in column col[i].
type mono struct {
	col   []int
	phase []string
}

var basis = map[int][]mono{
	2: {{[]int{0}, []string{"1"}}, {[]int{0}, []string{"-i"}}},
	4: {
		{[]int{0, 1}, []string{"1", "1"}},
		{[]int{1, 0}, []string{"-i", "-i"}},
		{[]int{1, 0}, []string{"-1", "1"}},
		{[]int{0, 1}, []string{"-i", "i"}},
	},
}

// combine returns the sign and whether a factor i remains in s·phase (s = ±1).
func combine(s int, phase string) (sign int, imag bool) {
	switch phase {
	case "1":
		return s, false
	case "-1":
		return -s, false
	case "i":
		return s, true
	case "-i":
		return -s, true
	}
	panic(phase)
}

func conj(phase string) string {
	switch phase {
	case "i":
		return "-i"
	case "-i":
		return "i"
	}
	return phase
}

// term writes "± x" or "± mi(x)".
func term(sign int, imag bool, x string) string {
	if imag {
		x = "mi(" + x + ")"
	}
	if sign > 0 {
		return " + " + x
	}
	return " - " + x
}

type kernel struct {
	nd, nc int
	dag    bool
}

func (k kernel) name() string {
	d := "D"
	if k.dag {
		d = "Ddag"
	}
	g := "1"
	if k.nc == 3 {
		g = "3"
	}
	return fmt.Sprintf("hop%dD%s%s", k.nd, g, d)
}

func (k kernel) write(b *bytes.Buffer) {
	nd, nc := k.nd, k.nc
	ns := nd // 2 in 2D, 4 in 4D
	half := ns / 2
	n := ns * nc
	nl := nd * nc * nc
	sF, sB := -1, 1
	if k.dag {
		sF, sB = 1, -1
	}
	fmt.Fprintf(b, "// %s is the hop of %s for %dD %s.\n", k.name(), map[bool]string{false: "D", true: "D†"}[k.dag], nd, map[int]string{1: "U(1)", 3: "SU(3)"}[nc])
	fmt.Fprintf(b, "func (w *Wilson) %s(out []complex128, outLo int, sites []int32, in []complex128, inLo int, x []complex128, kappa float64) {\n", k.name())
	b.WriteString("\tlinks := w.u.Data().Data()\n\thh := w.ex.halfHalo\n\tv := w.v\n\tk := -kappa\n")
	for mu := 0; mu < nd; mu++ {
		fmt.Fprintf(b, "\tup%d, dn%d := w.up[%d], w.dn[%d]\n", mu, mu, mu, mu)
	}
	b.WriteString("\tfor _, ys := range sites {\n\t\ty := int(ys)\n")
	fmt.Fprintf(b, "\t\tvar acc [%d]complex128\n", n)
	typ := "complex128"
	if nc == 3 {
		typ = "c3"
	}
	if half == 2 {
		fmt.Fprintf(b, "\t\tvar h0, h1 %s\n", typ)
	} else {
		fmt.Fprintf(b, "\t\tvar h0 %s\n", typ)
	}
	for mu := 0; mu < nd; mu++ {
		if nc == 3 {
			fmt.Fprintf(b, "\t\tu%d := (*[9]complex128)(links[%d*y+%d : %d*y+%d])\n", mu, nl, 9*mu, nl, 9*mu+9)
		} else {
			fmt.Fprintf(b, "\t\tu%d := links[%d*y+%d]\n", mu, nl, mu)
		}
	}
	a := basis[nd]
	for mu := 0; mu < nd; mu++ {
		for _, hop := range []struct {
			fwd bool
			s   int
		}{{true, sF}, {false, sB}} {
			v, tab := "f", fmt.Sprintf("up%d", mu)
			if !hop.fwd {
				v, tab = "b", fmt.Sprintf("dn%d", mu)
			}
			fmt.Fprintf(b, "\t\t// μ = %d, %s: (1 %+d·γ_%d)\n", mu, map[bool]string{true: "forward", false: "backward"}[hop.fwd], hop.s, mu)
			fmt.Fprintf(b, "\t\tif %s := int(%s[y]); %s < v {\n", v, tab, v)
			fmt.Fprintf(b, "\t\t\tp := (*[%d]complex128)(in[%d*(%s-inLo) : %d*(%s-inLo)+%d])\n", n, n, v, n, v, n)
			if !hop.fwd {
				if nc == 3 {
					fmt.Fprintf(b, "\t\t\tub := (*[9]complex128)(links[%d*b+%d : %d*b+%d])\n", nl, 9*mu, nl, 9*mu+9)
				} else {
					fmt.Fprintf(b, "\t\t\tub := links[%d*b+%d]\n", nl, mu)
				}
			}
			for i := 0; i < half; i++ {
				sign, im := combine(hop.s, a[mu].phase[i])
				col := half + a[mu].col[i]
				var comps []string
				for c := 0; c < nc; c++ {
					comps = append(comps, fmt.Sprintf("p[%d]%s", i*nc+c, term(sign, im, fmt.Sprintf("p[%d]", col*nc+c))))
				}
				switch {
				case nc == 3 && hop.fwd:
					fmt.Fprintf(b, "\t\t\th%d = mv(u%d, c3{%s})\n", i, mu, strings.Join(comps, ", "))
				case nc == 3:
					fmt.Fprintf(b, "\t\t\th%d = amv(ub, c3{%s})\n", i, strings.Join(comps, ", "))
				case hop.fwd:
					fmt.Fprintf(b, "\t\t\th%d = (%s) * u%d\n", i, comps[0], mu)
				default:
					fmt.Fprintf(b, "\t\t\th%d = conjMul(ub, %s)\n", i, comps[0])
				}
			}
			b.WriteString("\t\t} else {\n")
			fmt.Fprintf(b, "\t\t\tc := (*[%d]complex128)(hh[%d*(%s-v) : %d*(%s-v)+%d])\n", half*nc, half*nc, v, half*nc, v, half*nc)
			for i := 0; i < half; i++ {
				src := fmt.Sprintf("c[%d]", i)
				if nc == 3 {
					src = fmt.Sprintf("c3{c[%d], c[%d], c[%d]}", 3*i, 3*i+1, 3*i+2)
				}
				switch {
				case hop.fwd && nc == 3:
					fmt.Fprintf(b, "\t\t\th%d = mv(u%d, %s)\n", i, mu, src)
				case hop.fwd:
					fmt.Fprintf(b, "\t\t\th%d = %s * u%d\n", i, src, mu)
				default:
					fmt.Fprintf(b, "\t\t\th%d = %s\n", i, src)
				}
			}
			b.WriteString("\t\t}\n")
			// reconstruction: upper += h_i; lower[col_i] += s conj(phase_i) h_i
			fields := []string{""}
			if nc == 3 {
				fields = []string{".x", ".y", ".z"}
			}
			for i := 0; i < half; i++ {
				for c, f := range fields {
					fmt.Fprintf(b, "\t\tacc[%d] += h%d%s\n", i*nc+c, i, f)
				}
			}
			for i := 0; i < half; i++ {
				sign, im := combine(hop.s, conj(a[mu].phase[i]))
				col := half + a[mu].col[i]
				op := "+="
				if sign < 0 {
					op = "-="
				}
				for c, f := range fields {
					x := fmt.Sprintf("h%d%s", i, f)
					if im {
						x = "mi(" + x + ")"
					}
					fmt.Fprintf(b, "\t\tacc[%d] %s %s\n", col*nc+c, op, x)
				}
			}
		}
	}
	fmt.Fprintf(b, "\t\to := (*[%d]complex128)(out[%d*(y-outLo) : %d*(y-outLo)+%d])\n", n, n, n, n)
	fmt.Fprintf(b, "\t\tif x != nil {\n\t\t\txy := (*[%d]complex128)(x[%d*(y-outLo) : %d*(y-outLo)+%d])\n", n, n, n, n)
	b.WriteString("\t\t\tfor i := range o {\n\t\t\t\to[i] = xy[i] + sc(acc[i], k)\n\t\t\t}\n")
	b.WriteString("\t\t} else {\n\t\t\tfor i := range o {\n\t\t\t\to[i] = sc(acc[i], k)\n\t\t\t}\n\t\t}\n\t}\n}\n\n")
}

func main() {
	var b bytes.Buffer
	b.WriteString("// Code generated by go run ./internal/genkernels; DO NOT EDIT.\n\npackage dslash\n\n")
	for _, k := range []kernel{{2, 1, false}, {2, 1, true}, {2, 3, false}, {2, 3, true}, {4, 3, false}, {4, 3, true}} {
		k.write(&b)
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		log.Fatalf("generated code does not parse: %v\n%s", err, b.String())
	}
	if err := os.WriteFile("kernels_gen.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
}
