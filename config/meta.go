package config

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"pfmpi/group"
)

// sectionInfo and keyInfo are the schema read from the struct tags.
type sectionInfo struct {
	name  string
	phase string
	doc   string
	index int // field index in Config
	keys  []keyInfo
}

type keyInfo struct {
	name             string
	typ              reflect.Type
	index            int // field index in the section struct
	def              string
	hasDefault       bool
	was              string // the default when the key was added, where it has changed since (tag was)
	example          string
	enum             []string
	min, max, gt, lt *float64
	requiredBy       string
	doc              string
}

var schema = sync.OnceValue(func() []sectionInfo {
	var secs []sectionInfo
	ct := reflect.TypeFor[Config]()
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		if !f.IsExported() {
			continue
		}
		st := f.Type
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		sec := sectionInfo{name: f.Tag.Get("toml"), phase: f.Tag.Get("phase"), doc: f.Tag.Get("doc"), index: i}
		for j := 0; j < st.NumField(); j++ {
			kf := st.Field(j)
			k := keyInfo{name: kf.Tag.Get("toml"), typ: kf.Type, index: j, doc: kf.Tag.Get("doc"),
				example: kf.Tag.Get("example"), requiredBy: kf.Tag.Get("requiredby")}
			k.def, k.hasDefault = kf.Tag.Lookup("default")
			k.was = kf.Tag.Get("was")
			if e := kf.Tag.Get("enum"); e != "" {
				k.enum = strings.Split(e, "|")
			}
			for tag, dst := range map[string]**float64{"min": &k.min, "max": &k.max, "gt": &k.gt, "lt": &k.lt} {
				if s, ok := kf.Tag.Lookup(tag); ok {
					v, err := strconv.ParseFloat(s, 64)
					if err != nil {
						panic(fmt.Sprintf("config: bad %s tag on %s.%s", tag, sec.name, k.name))
					}
					*dst = &v
				}
			}
			if !k.hasDefault && k.example == "" {
				panic(fmt.Sprintf("config: %s.%s has neither a default nor an example", sec.name, k.name))
			}
			sec.keys = append(sec.keys, k)
		}
		secs = append(secs, sec)
	}
	return secs
})

func sections() []sectionInfo { return schema() }

func section(name string) (sectionInfo, bool) {
	for _, s := range sections() {
		if s.name == name {
			return s, true
		}
	}
	return sectionInfo{}, false
}

func sectionNames() []string {
	var n []string
	for _, s := range sections() {
		n = append(n, s.name)
	}
	return n
}

func (s sectionInfo) keyNames() []string {
	var n []string
	for _, k := range s.keys {
		n = append(n, k.name)
	}
	return n
}

// sectionOfKey names the section that has a key called name, if any.
func sectionOfKey(name string) string {
	for _, s := range sections() {
		if slices.Contains(s.keyNames(), name) {
			return s.name
		}
	}
	return ""
}

// lookup finds the key "section.key".
func lookup(key string) (keyInfo, bool) {
	sec, name, ok := strings.Cut(key, ".")
	if !ok {
		return keyInfo{}, false
	}
	s, ok := section(sec)
	if !ok {
		return keyInfo{}, false
	}
	for _, k := range s.keys {
		if k.name == name {
			return k, true
		}
	}
	return keyInfo{}, false
}

// typeName describes what a key takes.
func (k keyInfo) typeName() string {
	switch k.typ {
	case reflect.TypeFor[Grid]():
		return `"auto" or array of integers`
	case reflect.TypeFor[[]int](), reflect.TypeFor[[]int64]():
		return "array of integers"
	case reflect.TypeFor[[]float64]():
		return "array of numbers"
	case reflect.TypeFor[[]string]():
		return "array of strings"
	}
	switch k.typ.Kind() {
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "true or false"
	}
	return k.typ.String()
}

// constraint describes the allowed values, e.g. `≥ 0` or `"u1" | "su3"`.
func (k keyInfo) constraint() string {
	var parts []string
	if len(k.enum) > 0 {
		q := make([]string, len(k.enum))
		for i, e := range k.enum {
			q[i] = strconv.Quote(e)
		}
		parts = append(parts, strings.Join(q, " | "))
	}
	if k.min != nil {
		parts = append(parts, "≥ "+strconv.FormatFloat(*k.min, 'g', -1, 64))
	}
	if k.gt != nil {
		parts = append(parts, "> "+strconv.FormatFloat(*k.gt, 'g', -1, 64))
	}
	if k.max != nil {
		parts = append(parts, "≤ "+strconv.FormatFloat(*k.max, 'g', -1, 64))
	}
	if k.lt != nil {
		parts = append(parts, "< "+strconv.FormatFloat(*k.lt, 'g', -1, 64))
	}
	return strings.Join(parts, ", ")
}

// describe is the key's help in one phrase, for error messages.
func (k keyInfo) describe() string {
	s := "expects " + article(k.typeName())
	if c := k.constraint(); c != "" {
		s += " (" + c + ")"
	}
	ex := k.example
	if ex == "" {
		ex = k.def
	}
	return s + ", e.g. " + k.name + " = " + ex
}

func article(s string) string {
	switch {
	case strings.HasPrefix(s, "array"), strings.HasPrefix(s, "integer"):
		return "an " + s
	case strings.HasPrefix(s, "number"), strings.HasPrefix(s, "string"):
		return "a " + s
	}
	return s
}

// Defaults is the TOML document that a stored resolved run file lacking a
// key (it was written by a pfmpi older than the key) is read with: each
// key's default, or for a key whose default has changed since it was added
// the default it had then, which is how such a run behaved.
func Defaults() string {
	var b strings.Builder
	for _, s := range sections() {
		fmt.Fprintf(&b, "[%s]\n", s.name)
		for _, k := range s.keys {
			switch {
			case k.was != "":
				fmt.Fprintf(&b, "%s = %s\n", k.name, k.was)
			case k.hasDefault:
				fmt.Fprintf(&b, "%s = %s\n", k.name, k.def)
			}
		}
	}
	return b.String()
}

// defaults is the TOML document of every default, decoded before the file.
func defaults() string {
	var b strings.Builder
	for _, s := range sections() {
		fmt.Fprintf(&b, "[%s]\n", s.name)
		for _, k := range s.keys {
			if k.hasDefault {
				fmt.Fprintf(&b, "%s = %s\n", k.name, k.def)
			}
		}
	}
	return b.String()
}

// Help writes the documentation of every section and key, generated from the
// schema the parser uses, as an annotated run file.
func Help(w io.Writer) {
	fmt.Fprintln(w, "# pfmpi run file (TOML). `pfmpi run FILE.toml` runs the phases whose sections are")
	fmt.Fprintln(w, "# present, in the order hmc, train, sample, bench. Unknown keys are errors.")
	fmt.Fprintln(w, "# Every key is shown with its default; keys marked REQUIRED have none (an example is shown).")
	for _, s := range sections() {
		fmt.Fprintln(w)
		head := fmt.Sprintf("[%s]", s.name)
		if s.phase != "" {
			fmt.Fprintf(w, "%-23s # %s — optional: present = run the %s phase\n", head, s.doc, s.phase)
		} else {
			fmt.Fprintf(w, "%-23s # %s\n", head, s.doc)
		}
		for _, k := range s.keys {
			val, req := k.def, ""
			if !k.hasDefault {
				val, req = k.example, "REQUIRED · "
				if k.requiredBy != "" {
					req = "REQUIRED by " + strings.ReplaceAll(k.requiredBy, "|", ", ") + " · "
				}
			}
			line := fmt.Sprintf("%s = %s", k.name, val)
			c := k.typeName()
			if con := k.constraint(); con != "" {
				c += ", " + con
			}
			fmt.Fprintf(w, "%-23s # %s%s · %s\n", line, req, c, k.doc)
		}
	}
}

// Reference writes the run-file reference in Markdown (docs/run-file.md),
// generated from the same schema as Help: a table of the keys per section.
func Reference(w io.Writer) {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	fmt.Fprintln(w, "# Run-file reference")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Generated from the schema by `go test ./config -run TestReference -update`; `pfmpi help config`")
	fmt.Fprintln(w, "prints the same as an annotated run file. `pfmpi run FILE.toml` runs the phases whose sections")
	fmt.Fprintln(w, "are present, in the order hmc, train, sample, bench. Unknown keys are errors; keys without a")
	fmt.Fprintln(w, "default are required (an example value is shown).")
	for _, s := range sections() {
		fmt.Fprintf(w, "\n## [%s]\n\n%s", s.name, s.doc)
		if s.phase != "" {
			fmt.Fprintf(w, " — optional: present = run the %s phase", s.phase)
		}
		fmt.Fprintln(w, ".")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| key | default | type | meaning |")
		fmt.Fprintln(w, "|---|---|---|---|")
		for _, k := range s.keys {
			def := "`" + k.def + "`"
			if !k.hasDefault {
				def = "required"
				if k.requiredBy != "" {
					def = "required by " + strings.ReplaceAll(k.requiredBy, "|", ", ")
				}
				def += " (e.g. `" + k.example + "`)"
			}
			c := k.typeName()
			if con := k.constraint(); con != "" {
				c += ", " + con
			}
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", k.name, cell(def), cell(c), cell(k.doc))
		}
	}
}

// validate checks every key against its tags and the rules that join keys.
func (c *Config) validate(md toml.MetaData) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.Errorf(key, format, args...))
	}
	cv := reflect.ValueOf(c).Elem()
	for _, s := range sections() {
		sv := cv.Field(s.index)
		if sv.Kind() == reflect.Pointer {
			if sv.IsNil() {
				continue
			}
			sv = sv.Elem()
		}
		for _, k := range s.keys {
			if !k.hasDefault && !md.IsDefined(s.name, k.name) {
				continue
			}
			key := s.name + "." + k.name
			v := sv.Field(k.index)
			switch v.Kind() {
			case reflect.String:
				if len(k.enum) > 0 && !slices.Contains(k.enum, v.String()) {
					bad(key, "%q is not allowed; use %s", v.String(), k.constraint())
				}
			case reflect.Int, reflect.Int64, reflect.Float64:
				if msg := k.checkBound(number(v)); msg != "" {
					bad(key, "%v %s", v.Interface(), msg)
				}
			case reflect.Slice:
				for i := 0; i < v.Len(); i++ {
					e := v.Index(i)
					switch e.Kind() {
					case reflect.String:
						if len(k.enum) > 0 && !slices.Contains(k.enum, e.String()) {
							bad(key, "entry %d, %q, is not allowed; use %s", i, e.String(), k.constraint())
						}
					case reflect.Int, reflect.Int64, reflect.Float64:
						if msg := k.checkBound(number(e)); msg != "" {
							bad(key, "entry %d, %v, %s", i, e.Interface(), msg)
						}
					}
				}
			}
		}
	}
	if strings.TrimSpace(c.Run.Output) == "" {
		bad("run.output", "is empty; name the output directory, e.g. output = \"out/run1\"")
	}
	if n := len(c.Lattice.Dims); n < 2 || n > 4 {
		bad("lattice.dims", "%v has %d entries; pfmpi runs 2, 3 or 4 dimensions, e.g. dims = [8, 8]", c.Lattice.Dims, n)
	}
	if g := c.Parallel.Grid; !g.Auto && len(g.Dims) != len(c.Lattice.Dims) {
		bad("parallel.grid", "%v has %d entries but lattice.dims %v has %d; give one per direction or \"auto\"",
			g, len(g.Dims), c.Lattice.Dims, len(c.Lattice.Dims))
	}
	if h := c.Action.Hasenbusch; !slices.IsSorted(h) || len(slices.Compact(slices.Clone(h))) != len(h) {
		bad("action.hasenbusch", "%v must be strictly increasing (μ₁ < μ₂ < …)", h)
	}
	if len(c.Action.Hasenbusch) > 0 && c.Action.Kappa == 0 {
		bad("action.hasenbusch", "Hasenbusch shifts %v need fermions; set action.kappa > 0 or remove the shifts", c.Action.Hasenbusch)
	}
	if len(c.Model.PFPartition) == 0 {
		bad("model.pf_partition", "must name at least one pattern, e.g. [\"rows\"]")
	}
	if n, nPF := len(c.Model.PFMonomialLayers), len(c.Action.Hasenbusch)+1; n > 0 && (c.Action.Kappa == 0 || n != nPF) {
		bad("model.pf_monomial_layers", "%v has %d entries for %d pseudofermion monomials (one more than action.hasenbusch); give one depth each or leave it empty", c.Model.PFMonomialLayers, n, nPF)
	}
	if h := c.HMC; h != nil {
		nPF := 0
		if c.Action.Kappa > 0 {
			nPF = len(c.Action.Hasenbusch) + 1
		}
		if n := len(h.PFLevels); n > 0 && n != nPF {
			bad("hmc.pf_levels", "%v has %d entries for %d pseudofermion monomials (one more than action.hasenbusch); give one level each or leave it empty", h.PFLevels, n, nPF)
		}
		for i, l := range h.PFLevels {
			if l > len(h.InnerSteps) {
				bad("hmc.pf_levels", "entry %d, level %d, does not exist: hmc.inner_steps %v gives levels 0 … %d", i, l, h.InnerSteps, len(h.InnerSteps))
			}
		}
		if n := len(h.PionFit); n != 0 && n != 2 {
			bad("hmc.pion_fit", "%v must be [tmin, tmax] or empty", h.PionFit)
		} else if n == 2 && len(c.Lattice.Dims) > 0 && (h.PionFit[0] >= h.PionFit[1] || h.PionFit[1] > c.Lattice.Dims[0]/2) {
			bad("hmc.pion_fit", "%v must satisfy tmin < tmax ≤ T/2 = %d", h.PionFit, c.Lattice.Dims[0]/2)
		}
		if h.Start == "" {
			bad("hmc.start", "is empty; use \"cold\", \"hot\" or a configuration file")
		}
	}
	if c.Action.Kappa > 0 && c.Action.Precondition == "eo" {
		for mu, l := range c.Lattice.Dims {
			if l%2 != 0 {
				bad("action.precondition", "\"eo\" needs even extents, but lattice.dims[%d] = %d; use even extents or precondition = \"none\"", mu, l)
				break
			}
		}
	}
	if k := c.Model.GaugeKernel; k%2 == 0 {
		bad("model.gauge_kernel", "%d is even; convolution kernels are odd (1, 3, 5, …)", k)
	}
	if b := c.Model.SU3Bridge; c.Lattice.GaugeGroup() == group.SU3 && c.Model.SU3MarginalLayers() && len(c.Lattice.Dims) == 2 && b > c.Lattice.Dims[1]-1 {
		bad("model.su3_bridge", "%d exceeds the %d plaquettes the marginal column layer maps (lattice.dims[1] − 1); use at most %d", b, c.Lattice.Dims[1]-1, c.Lattice.Dims[1]-1)
	}
	if b := c.Model.U1Bridge; c.Lattice.GaugeGroup() == group.U1 && c.Model.U1Marginal && len(c.Lattice.Dims) == 2 && b > c.Lattice.Dims[1]-1 {
		bad("model.u1_bridge", "%d exceeds the %d plaquettes the marginal column layer maps (lattice.dims[1] − 1); use at most %d", b, c.Lattice.Dims[1]-1, c.Lattice.Dims[1]-1)
	}
	if c.Lattice.GaugeGroup() == group.U1 && c.Model.U1Marginal && c.Model.GaugeLayers < 2 {
		bad("model.u1_marginal", "needs gauge_layers ≥ 2 (the two marginal layers count in them), got %d", c.Model.GaugeLayers)
	}
	if len(c.Model.GaugeDilations) == 0 {
		bad("model.gauge_dilations", "must list at least one dilation, e.g. [1]")
	}
	if len(c.Model.PFContextDilations) == 0 {
		bad("model.pf_context_dilations", "must list at least one dilation, e.g. [1] (the paper's trunk)")
	}
	if k := c.Model.PFHeadKernel; k%2 == 0 {
		bad("model.pf_head_kernel", "%d is even; a head's kernel is centred on its site: use 1 or 3", k)
	}
	if t := c.Train; t != nil && t.LRMin > t.LR {
		bad("train.lr_min", "%v exceeds train.lr = %v: the cosine schedule decays from lr down to lr_min; use a value in [0, lr]", t.LRMin, t.LR)
	}
	if t := c.Train; t != nil && t.LRSchedule == "cosine" {
		// A step decay asked for in the file would silently not happen.
		// (A value at its default, as in `pfmpi help config`, asks nothing.)
		every := t.LRDecayEvery > 0 && changed(md, "train.lr_decay_every", strconv.Itoa(t.LRDecayEvery))
		factor := t.LRDecayEvery > 0 && t.LRDecayFactor != 1 &&
			changed(md, "train.lr_decay_factor", strconv.FormatFloat(t.LRDecayFactor, 'g', -1, 64))
		for k, set := range map[string]bool{"lr_decay_every": every, "lr_decay_factor": factor && !every} {
			if set {
				bad("train."+k, "is used by lr_schedule = \"step\" only, and the schedule is \"cosine\" (the default since 2026-12-07: from lr down to lr_min at the last step); add lr_schedule = \"step\" to keep the step decay, or remove %s", k)
			}
		}
	}
	if t := c.Train; t != nil && t.LRDecayFactor > 1 {
		bad("train.lr_decay_factor", "%v exceeds 1: the learning rate would grow; use a factor in (0, 1]", t.LRDecayFactor)
	}
	if s := c.Sample; s != nil && len(s.NPF) == 0 {
		bad("sample.npf", "must list at least one count, e.g. [1, 4, 16]")
	}
	if b := c.Bench; b != nil && len(b.Ops) == 0 {
		bad("bench.ops", "must list at least one kernel, e.g. [\"halo\"]")
	}
	return errors.Join(errs...)
}

// changed reports whether the run file sets key (section.name) to a value
// other than its default; value is the set value as the default is written.
func changed(md toml.MetaData, key, value string) bool {
	k, ok := lookup(key)
	sec, name, _ := strings.Cut(key, ".")
	return ok && md.IsDefined(sec, name) && k.def != value
}

func number(v reflect.Value) float64 {
	if v.Kind() == reflect.Float64 {
		return v.Float()
	}
	return float64(v.Int())
}

func (k keyInfo) checkBound(x float64) string {
	if k.min != nil && !(x >= *k.min) {
		return fmt.Sprintf("must be ≥ %v", *k.min)
	}
	if k.gt != nil && !(x > *k.gt) {
		return fmt.Sprintf("must be > %v", *k.gt)
	}
	if k.max != nil && !(x <= *k.max) {
		return fmt.Sprintf("must be ≤ %v", *k.max)
	}
	if k.lt != nil && !(x < *k.lt) {
		return fmt.Sprintf("must be < %v", *k.lt)
	}
	return ""
}
