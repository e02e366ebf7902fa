package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is a problem with a run file, located as precisely as the parser
// knows: file, line (0 if unknown) and key ("section.key", empty if none).
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
	}
	return loc + ": " + e.Msg
}

// Load reads and validates the run file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates the run file text data; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	c := &Config{file: file, lines: keyLines(data)}
	if _, err := toml.Decode(defaults(), c); err != nil {
		panic("config: the schema's defaults do not parse: " + err.Error())
	}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, c.decodeError(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, c.unknownKeys(md, und)
	}
	// Phase sections absent from the file are switched off.
	cv := reflect.ValueOf(c).Elem()
	for _, sec := range sections() {
		if sec.phase != "" && !md.IsDefined(sec.name) {
			cv.Field(sec.index).SetZero()
		}
	}
	if err := errors.Join(c.checkRequired(md), c.validate(md)); err != nil {
		return nil, err
	}
	return c, nil
}

// File is the name the run file was parsed under.
func (c *Config) File() string { return c.file }

// Line is the line of key ("section.key" or "section") in the file, 0 if the
// key is not in the file.
func (c *Config) Line(key string) int { return c.lines[key] }

// Errorf returns an Error for key, located at the key's line.
func (c *Config) Errorf(key, format string, args ...any) error {
	return &Error{File: c.file, Line: c.lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Phases lists the phases the file switches on, in execution order.
func (c *Config) Phases() []string {
	var p []string
	cv := reflect.ValueOf(c).Elem()
	for _, sec := range sections() {
		if sec.phase != "" && !cv.Field(sec.index).IsNil() {
			p = append(p, sec.phase)
		}
	}
	return p
}

// WriteTOML writes the fully resolved run file (every default filled in).
func (c *Config) WriteTOML(w io.Writer) error {
	fmt.Fprintf(w, "# resolved from %s by pfmpi; every default filled in\n", c.file)
	return toml.NewEncoder(w).Encode(c)
}

var (
	tomlError = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]+)"\): (.*)$`)
	typeError = regexp.MustCompile(`^incompatible types: TOML value has type (\w+).*$`)
)

// excerpt is the parser's message with an excerpt of the file around the
// error; toml v1.6.0's ErrorWithPosition panics on some inputs (an
// unterminated string escape at the end of the file, found by FuzzParse),
// and then the plain message serves.
func excerpt(pe toml.ParseError) (msg string) {
	defer func() {
		if recover() != nil {
			msg = pe.Error()
		}
	}()
	return pe.ErrorWithPosition()
}

// decodeError turns a decoder error into an Error naming file, line and key.
func (c *Config) decodeError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if k, ok := lookup(pe.LastKey); ok {
			return &Error{File: c.file, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message + "; " + k.describe()}
		}
		// A syntax error: show the parser's excerpt of the file.
		msg := strings.TrimPrefix(excerpt(pe), "toml: error: ")
		return &Error{File: c.file, Line: pe.Position.Line, Msg: strings.TrimRight(msg, "\n")}
	}
	if m := tomlError.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg := m[3]
		if t := typeError.FindStringSubmatch(msg); t != nil {
			msg = "got a TOML " + strings.ToLower(t[1])
		}
		if k, ok := lookup(m[2]); ok {
			msg = fmt.Sprintf("%s; %s", msg, k.describe())
		}
		return &Error{File: c.file, Line: line, Key: m[2], Msg: msg}
	}
	return &Error{File: c.file, Msg: err.Error()}
}

// unknownKeys reports every key of the file that the schema does not know.
func (c *Config) unknownKeys(md toml.MetaData, und []toml.Key) error {
	var errs []error
	reported := map[string]bool{}
	for _, k := range und {
		if len(k) == 0 || reported[k[0]] {
			continue
		}
		secName := k[0]
		sec, ok := section(secName)
		switch {
		case !ok && len(k) == 1 && md.Type(secName) != "Hash":
			// A key outside any section.
			msg := fmt.Sprintf("unknown key %q outside any section", secName)
			if owner := sectionOfKey(secName); owner != "" {
				msg += fmt.Sprintf("; it belongs in [%s]", owner)
			}
			errs = append(errs, &Error{File: c.file, Line: c.lines[secName], Msg: msg})
		case !ok:
			reported[secName] = true
			msg := fmt.Sprintf("unknown section [%s]", secName)
			if s := closest(secName, sectionNames()); s != "" {
				msg += fmt.Sprintf("; did you mean [%s]?", s)
			}
			msg += " Sections: " + strings.Join(sectionNames(), ", ") + " (see pfmpi help config)"
			errs = append(errs, &Error{File: c.file, Line: c.lines[secName], Msg: msg})
		default:
			name := k.String()
			keys := sec.keyNames()
			msg := fmt.Sprintf("unknown key %q in [%s]", strings.Join(k[1:], "."), secName)
			if s := closest(k[len(k)-1], keys); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			msg += fmt.Sprintf(" Keys of [%s]: %s (see pfmpi help config)", secName, strings.Join(keys, ", "))
			errs = append(errs, &Error{File: c.file, Line: c.lines[name], Msg: msg})
			reported[name] = true
		}
	}
	return errors.Join(errs...)
}

// checkRequired reports keys without a default that the file does not set.
func (c *Config) checkRequired(md toml.MetaData) error {
	phases := c.Phases()
	var errs []error
	for _, sec := range sections() {
		if sec.phase != "" && !slices.Contains(phases, sec.phase) {
			continue
		}
		for _, k := range sec.keys {
			if k.hasDefault || md.IsDefined(sec.name, k.name) {
				continue
			}
			if k.requiredBy != "" && !slices.ContainsFunc(phases, func(p string) bool {
				return slices.Contains(strings.Split(k.requiredBy, "|"), p)
			}) {
				continue
			}
			why := ""
			if k.requiredBy != "" {
				why = fmt.Sprintf(" by the %s phase", strings.Join(phases, "/"))
			}
			errs = append(errs, &Error{File: c.file, Line: c.lines[sec.name], Key: sec.name + "." + k.name,
				Msg: fmt.Sprintf("required%s but missing; add %s = %s to [%s] (%s)", why, k.name, k.example, sec.name, k.doc)})
		}
	}
	return errors.Join(errs...)
}

// keyLines maps "section.key" and "section" to their line numbers. The file
// has already parsed, so a light scan suffices.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
		case strings.HasPrefix(line, "[["):
			section = ""
		case line[0] == '[':
			if end := strings.IndexByte(line, ']'); end > 0 {
				section = strings.TrimSpace(line[1:end])
				if _, ok := lines[section]; !ok {
					lines[section] = n
				}
			}
		default:
			eq := strings.IndexByte(line, '=')
			if eq <= 0 {
				continue
			}
			key := strings.Trim(strings.TrimSpace(line[:eq]), `"'`)
			if section != "" {
				key = section + "." + key
			}
			if _, ok := lines[key]; !ok {
				lines[key] = n
			}
		}
	}
	return lines
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
