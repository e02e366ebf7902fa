package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSlurmChain runs jobscripts/lib/chain.sh against stand-ins for srun,
// scontrol and sbatch (no Slurm here): a run stopped near the end of its
// allocation resubmits the job script with the next link number, a
// finished run does not, and the STOP file ends the chain.
func TestSlurmChain(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	os.Mkdir(bin, 0o755)
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sbatchLog := filepath.Join(tmp, "sbatch.log")
	stub("srun", `while [ "${1#-}" != "$1" ]; do shift; done; exec "$@"`) // drop srun's options
	stub("scontrol", `echo "   Command=/home/u/pfmpi/jobscripts/train.slurm run.toml"`)
	stub("sbatch", `echo "$@ PFMPI_CHAIN=$PFMPI_CHAIN" >> `+sbatchLog)

	out := filepath.Join(tmp, "run")
	run := writeFile(t, fmt.Sprintf(faultRun, out))
	chain := func(end time.Duration, link int) (string, error) {
		script := fmt.Sprintf(`set -euo pipefail
source %q
pfmpi_chain %q -ranks 2`, filepath.Join("..", "..", "jobscripts", "lib", "chain.sh"), run)
		cmd := exec.Command(bash, "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), asPfmpi+"=1", "PFMPI="+os.Args[0],
			"SLURM_JOB_ID=42", "SLURM_NTASKS=1", "SLURM_CPUS_PER_TASK=2", "MARGIN=1m",
			fmt.Sprintf("SLURM_JOB_END_TIME=%d", time.Now().Add(end).Unix()), fmt.Sprintf("PFMPI_CHAIN=%d", link))
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	// 30 s left with a 1 min margin: checkpoint, stop, resubmit link 2.
	if text, err := chain(30*time.Second, 1); err != nil || !strings.Contains(text, "submitting link 2") {
		t.Fatalf("near the end: %v\n%s", err, text)
	}
	if b, _ := os.ReadFile(sbatchLog); !strings.Contains(string(b), "--export=ALL,PFMPI_CHAIN=2 /home/u/pfmpi/jobscripts/train.slurm run.toml") {
		t.Errorf("sbatch was called as %q", b)
	}
	// The last link of the chain stops without resubmitting, and fails.
	if text, err := chain(30*time.Second, 20); err == nil || !strings.Contains(text, "MAX_CHAIN") {
		t.Errorf("at MAX_CHAIN: %v\n%s", err, text)
	}
	// STOP ends the chain without resubmission.
	os.WriteFile(filepath.Join(out, "STOP"), nil, 0o644)
	if text, err := chain(time.Hour, 3); err != nil || !strings.Contains(text, "OUTPUT/STOP ended the run") {
		t.Errorf("STOP: %v\n%s", err, text)
	}
	// Enough time: the run finishes and the chain ends.
	if text, err := chain(time.Hour, 4); err != nil || !strings.Contains(text, "the run is finished") {
		t.Fatalf("finish: %v\n%s", err, text)
	}
	if b, _ := os.ReadFile(sbatchLog); strings.Count(string(b), "\n") != 1 {
		t.Errorf("sbatch called %d times, want once:\n%s", strings.Count(string(b), "\n"), b)
	}
}
