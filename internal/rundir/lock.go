package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockName is the file a running job holds an exclusive lock on, so that
// two jobs never write one output directory (a resubmitted job starting
// while the previous one is still writing its last checkpoint, two
// users' runs pointed at one directory).
const lockName = ".lock"

// lock takes the directory's lock (rank 0) and writes this process's id
// into the lock file. File systems without flock (some parallel file
// systems mounted without it) are not locked.
func lock(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
	case errors.Is(err, syscall.EWOULDBLOCK):
		b, _ := os.ReadFile(path)
		f.Close()
		pid, host := holder(b)
		return nil, fmt.Errorf("%s is in use by another pfmpi run (process %s on %s); wait for it to end or stop it (touch %s), or choose another run.output",
			dir, pid, host, filepath.Join(dir, StopFile))
	case errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EINVAL):
		return f, nil // no locking here: go on without
	default:
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	host, _ := os.Hostname()
	f.Truncate(0)
	f.WriteAt([]byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), host)), 0)
	return f, nil
}

// holder reads the process id and host from a lock file.
func holder(b []byte) (pid, host string) {
	pid, host = "unknown", "an unknown host"
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if _, err := strconv.Atoi(lines[0]); err == nil {
		pid = lines[0]
	}
	if len(lines) > 1 && lines[1] != "" {
		host = lines[1]
	}
	return pid, host
}
