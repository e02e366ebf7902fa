package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"pfmpi/internal/atomicfile"
)

// A checkpoint record (checkpoints/NAME.json) names the files of one
// checkpoint with their SHA-256. WriteRecord keeps the record before it as
// NAME.prev.json, and the phases keep that record's files too, so that a
// damaged latest checkpoint falls back to the one before (ReadRecord).

// PreviousName is the name of the record kept before name ("train.json":
// "train.prev.json").
func PreviousName(name string) string {
	return strings.TrimSuffix(name, ".json") + ".prev.json"
}

// WriteRecord makes rec the latest checkpoint record name in dir: the
// current record, if any, becomes the previous one (PreviousName), and rec
// is written atomically. The caller has written and synced the files rec
// names.
func WriteRecord(dir, name string, rec any) error {
	cur := filepath.Join(dir, name)
	if _, err := os.Stat(cur); err == nil {
		if err := os.Rename(cur, filepath.Join(dir, PreviousName(name))); err != nil {
			return err
		}
	}
	return atomicfile.WriteJSON(cur, rec)
}

// ReadRecord reads the latest checkpoint record name in dir and checks it
// (and the files it names) with verify. When the latest is damaged or
// missing, the previous record is used if it verifies, and warning says
// which file was damaged and which checkpoint is used instead. found is
// false when there is no record at all; err is set when no record verifies.
func ReadRecord[T any](dir, name string, verify func(*T) error) (rec T, found bool, warning string, err error) {
	cur := filepath.Join(dir, name)
	prev := filepath.Join(dir, PreviousName(name))
	curFound, curErr := atomicfile.ReadJSON(cur, &rec)
	if curFound && curErr == nil {
		if curErr = verify(&rec); curErr == nil {
			return rec, true, "", nil
		}
	}
	var old T
	prevFound, prevErr := atomicfile.ReadJSON(prev, &old)
	if prevFound && prevErr == nil {
		prevErr = verify(&old)
	}
	var zero T
	switch {
	case !curFound && curErr == nil && !prevFound && prevErr == nil:
		return zero, false, "", nil // no checkpoint
	case prevFound && prevErr == nil:
		why := curErr
		if why == nil {
			why = fmt.Errorf("%s is missing (a checkpoint was cut short)", cur)
		}
		return old, true, fmt.Sprintf("%v; resuming from the checkpoint before it (%s)", why, prev), nil
	case curErr == nil:
		return zero, false, "", fmt.Errorf("%s is missing and %s does not verify: %w", cur, prev, prevErr)
	case prevFound || prevErr != nil:
		return zero, false, "", errors.Join(curErr, fmt.Errorf("and the checkpoint before it does not verify either: %w", prevErr))
	}
	return zero, false, "", curErr
}

// VerifyFile checks that the file name in dir has the SHA-256 want that the
// checkpoint record named record gives it.
func VerifyFile(dir, name, want, record string) error {
	path := filepath.Join(dir, name)
	sum, err := atomicfile.SHA256(path)
	if err != nil {
		return err
	}
	if sum != want {
		return fmt.Errorf("%s has SHA-256 %s, its record %s says %s: the file is damaged", path, sum, record, want)
	}
	return nil
}
