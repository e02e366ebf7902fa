package config

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/run-file.md from the schema")

// TestReference: docs/run-file.md is the reference generated from the
// schema (rewrite it with -update), and it documents every key that
// `pfmpi help config` shows, with the same default.
func TestReference(t *testing.T) {
	var ref, help bytes.Buffer
	Reference(&ref)
	Help(&help)
	const path = "../docs/run-file.md"
	if *update {
		if err := os.WriteFile(path, ref.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, ref.Bytes()) {
		t.Fatalf("%s is not the reference generated from the schema (%v); run go test ./config -run TestReference -update", path, err)
	}
	section := ""
	for _, line := range strings.Split(help.String(), "\n") {
		if strings.HasPrefix(line, "[") {
			section, _, _ = strings.Cut(line, " ")
			if !strings.Contains(ref.String(), "## "+section+"\n") {
				t.Errorf("help section %s missing from %s", section, path)
			}
			continue
		}
		key, rest, ok := strings.Cut(line, " = ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		val, _, _ := strings.Cut(rest, " #")
		val = strings.TrimSpace(val)
		if !strings.Contains(ref.String(), "| `"+key+"` | `"+strings.ReplaceAll(val, "|", `\|`)+"` |") &&
			!strings.Contains(ref.String(), "| `"+key+"` | required") {
			t.Errorf("%s.%s = %s of the help is not in %s", section, key, val, path)
		}
	}
}
