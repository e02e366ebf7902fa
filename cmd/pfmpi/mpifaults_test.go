package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mpiBinary names, in the environment, a pfmpi built with -tags mpi: the
// MPI fault tests run it under mpirun (.ci/run sets it).
const mpiBinary = "PFMPI_MPI_BINARY"

// mpirunCommand is `mpirun -n ranks pfmpi run file` with the MPI build.
func mpirunCommand(t *testing.T, ranks int, file string) *exec.Cmd {
	t.Helper()
	bin := os.Getenv(mpiBinary)
	if bin == "" {
		t.Skip("set " + mpiBinary + " to a pfmpi built with -tags mpi (.ci/run does)")
	}
	args := []string{"-n", strconv.Itoa(ranks)}
	if ranks > 2 {
		args = append(args, "--oversubscribe")
	}
	cmd := exec.Command("mpirun", append(args, bin, "run", file)...)
	cmd.Env = append(os.Environ(), "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "GOMAXPROCS=1")
	return cmd
}

// TestMPIKillAndResume is TestKillAndResume under mpirun -n 2: mpirun and
// its ranks are killed (SIGKILL) once in each phase, and the resumed runs end in the
// state an uninterrupted mpirun run ends in, bit for bit.
func TestMPIKillAndResume(t *testing.T) {
	tmp := t.TempDir()
	ref := filepath.Join(tmp, "ref")
	span, err := runTimed(t, mpirunCommand(t, 2, writeFile(t, fmt.Sprintf(faultRun, ref))), "", 0)
	if err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	t.Logf("uninterrupted: phases take %v", span)
	killed := filepath.Join(tmp, "killed")
	file := writeFile(t, fmt.Sprintf(faultRun, killed))
	for i, phase := range []string{"hmc", "train", "sample"} {
		at := span[phase] / 4 // the phase spans its summary and plots too
		_, err := runTimed(t, mpirunCommand(t, 2, file), phase, at)
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && !ee.Success():
			t.Logf("kill %d: %v into the %s phase", i+1, at.Round(time.Millisecond), phase)
		case err != nil:
			t.Fatalf("run %d: %v", i+1, err)
		default:
			t.Logf("kill %d: the run finished first", i+1)
		}
	}
	if _, err := runTimed(t, mpirunCommand(t, 2, file), "", 0); err != nil {
		t.Fatalf("final resumed run: %v", err)
	}
	sameFinalState(t, ref, killed)
}

// TestMPIRankDies kills one rank of a running mpirun -n 2 job (SIGKILL):
// the job must end, non-zero and saying which rank died, instead of the
// other rank waiting in a collective for ever.
func TestMPIRankDies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	file := writeFile(t, fmt.Sprintf(faultRun, dir))
	cmd := mpirunCommand(t, 2, file)
	errOut, wait := startUntil(t, cmd, "phase hmc")
	ranks := descendants(cmd.Process.Pid, filepath.Base(os.Getenv(mpiBinary)))
	if len(ranks) != 2 {
		t.Fatalf("found rank processes %v under mpirun %d, want 2", ranks, cmd.Process.Pid)
	}
	victim := ranks[len(ranks)-1]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		for _, p := range ranks {
			syscall.Kill(p, syscall.SIGKILL)
		}
		t.Fatalf("the job still ran 60 s after process %d died: it hangs", victim)
	}
	if err == nil {
		t.Fatalf("the job exited 0 after a rank died\n%s", errOut.String())
	}
	t.Logf("mpirun: %v; it said:\n%s", err, errOut.String())
	if !strings.Contains(errOut.String(), strconv.Itoa(victim)) && !strings.Contains(errOut.String(), "signal 9") {
		t.Errorf("the message does not name the dead process %d", victim)
	}
}

// descendants lists the processes below pid whose command name is comm.
func descendants(pid int, comm string) []int {
	parent := map[int]int{}
	name := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(s[j+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p], name[p] = pp, s[i+1:j]
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				if strings.HasPrefix(comm, name[p]) { // comm is cut to 15 bytes
					out = append(out, p)
				}
				break
			}
		}
	}
	return out
}
