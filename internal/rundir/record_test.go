package rundir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordFallback: WriteRecord keeps the record before the latest, and
// ReadRecord falls back to it when the latest is missing, unreadable or
// fails its check, says so, and refuses when neither verifies.
func TestRecordFallback(t *testing.T) {
	type rec struct{ Step int }
	good := func(r *rec) error { // step 13 stands for a damaged checkpoint
		if r.Step == 13 {
			return errors.New("step 13 is damaged")
		}
		return nil
	}
	for _, c := range []struct {
		name      string
		steps     []int            // records written in order
		spoil     func(dir string) // then done to the directory
		want      int              // step read; 0: none found
		warn, err string           // substrings; "" for none
	}{
		{"none", nil, func(string) {}, 0, "", ""},
		{"latest good", []int{5, 10}, func(string) {}, 10, "", ""},
		{"latest damaged", []int{5, 13}, func(string) {}, 5, "step 13 is damaged", ""},
		{"latest unreadable", []int{5, 10}, func(d string) { os.WriteFile(filepath.Join(d, "x.json"), []byte("{\"Step\": 1"), 0o644) }, 5, "x.json", ""},
		{"latest missing", []int{5, 10}, func(d string) { os.Remove(filepath.Join(d, "x.json")) }, 5, "x.json is missing", ""},
		{"only one, damaged", []int{13}, func(string) {}, 0, "", "step 13 is damaged"},
		{"both damaged", []int{13, 13}, func(string) {}, 0, "", "before it does not verify either"},
		{"missing, previous damaged", []int{13, 10}, func(d string) { os.Remove(filepath.Join(d, "x.json")) }, 0, "", "does not verify"},
	} {
		dir := t.TempDir()
		for _, s := range c.steps {
			if err := WriteRecord(dir, "x.json", rec{s}); err != nil {
				t.Fatal(err)
			}
		}
		c.spoil(dir)
		r, found, warn, err := ReadRecord(dir, "x.json", good)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || found):
			t.Errorf("%s: err %v, found %v; want an error with %q", c.name, err, found, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == "" && (found != (c.want != 0) || r.Step != c.want):
			t.Errorf("%s: step %d (found %v), want %d", c.name, r.Step, found, c.want)
		case c.warn == "" && warn != "", c.warn != "" && !strings.Contains(warn, c.warn):
			t.Errorf("%s: warning %q, want %q", c.name, warn, c.warn)
		}
	}
}
