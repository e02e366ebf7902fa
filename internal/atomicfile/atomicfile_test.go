package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cfg.bin")
	if err := Write(p, 0o644, func(w io.Writer) error { _, err := w.Write([]byte("first")); return err }); err != nil {
		t.Fatal(err)
	}
	// A failing writer leaves the old content and no temporary file.
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want the writer's error", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Fatalf("content after a failed write: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	if err := Write(p, 0o600, func(w io.Writer) error { _, err := w.Write([]byte("second")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "second" {
		t.Fatalf("content %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
}

// WriteSum's checksum is the file's.
func TestWriteSum(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	sum, err := WriteSum(path, 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, strings.Repeat("pfmpi ", 100000))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want, err := SHA256(path); err != nil || sum != want {
		t.Errorf("WriteSum gave %s, the file has %s (%v)", sum, want, err)
	}
}
