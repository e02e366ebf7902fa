package flowrun

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"pfmpi/flow"
	"pfmpi/internal/atomicfile"
	"pfmpi/internal/rundir"
	"pfmpi/mpi"
)

// sampleCheckpoint lists the chunks of proposals a sample phase has drawn
// so far (checkpoints/sample.json). Each chunk is written once, to its own
// gob file with its SHA-256: a checkpoint costs the new proposals only.
type sampleCheckpoint struct {
	Phase  string        `json:"phase"` // "sample"
	Done   int           `json:"proposals"`
	Draws  int           `json:"draws"`
	Model  string        `json:"model_sha256"` // the model checkpoint they were drawn from
	Chunks []sampleChunk `json:"chunks"`
}

type sampleChunk struct {
	File      string `json:"file"`
	SHA256    string `json:"sha256"`
	Proposals int    `json:"proposals"`
}

const sampleCheckpointName = "sample.json"

// saveSamples checkpoints part, the proposals drawn after those already
// checkpointed (rank 0 writes; collective verdict).
func (m *model) saveSamples(part *flow.Samples) error {
	var err error
	if m.env.World.Rank() == 0 {
		err = m.saveSamplesRoot(part)
	}
	return mpi.RootError(m.env.World, err)
}

func (m *model) saveSamplesRoot(part *flow.Samples) error {
	ck := m.sampled
	dir := m.env.Dir.Checkpoints()
	name := fmt.Sprintf("sample-%09d-%09d.gob", ck.Done, ck.Done+len(part.LogW))
	sum, err := atomicfile.WriteSum(filepath.Join(dir, name), 0o644, func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(part)
	})
	if err != nil {
		return err
	}
	if err := m.env.Dir.Sync(); err != nil {
		return err
	}
	next := *ck
	next.Chunks = append(append([]sampleChunk(nil), ck.Chunks...), sampleChunk{File: name, SHA256: sum, Proposals: len(part.LogW)})
	next.Done += len(part.LogW)
	if err := rundir.WriteRecord(dir, sampleCheckpointName, next); err != nil {
		return err
	}
	*ck = next
	// The chunks of this checkpoint and of the one before it stay.
	var keep []string
	var prev sampleCheckpoint
	atomicfile.ReadJSON(filepath.Join(dir, rundir.PreviousName(sampleCheckpointName)), &prev)
	for _, c := range slices.Concat(ck.Chunks, prev.Chunks) {
		keep = append(keep, c.File)
	}
	atomicfile.RemoveOthers(dir, "sample-*.gob", keep...)
	return nil
}

// loadSamples returns the proposals of a checkpointed sample phase drawn
// from the loaded model with draws pseudofermion draws, cut to at most n;
// nil if there are none usable
// (collective: every rank gets them). It prepares the checkpoint that
// saveSamples extends.
func (m *model) loadSamples(n, draws int) (*flow.Samples, error) {
	var data []byte
	var err error
	if m.env.World.Rank() == 0 {
		data, err = m.readSamples(n, draws)
	}
	if err := mpi.RootError(m.env.World, err); err != nil {
		return nil, err
	}
	size := []float64{float64(len(data))}
	m.env.World.Bcast(0, mpi.Bytes(size))
	if size[0] == 0 {
		return nil, nil
	}
	if m.env.World.Rank() != 0 {
		data = make([]byte, int(size[0]))
	}
	m.env.World.Bcast(0, data)
	var smp flow.Samples
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&smp); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(m.env.Dir.Checkpoints(), sampleCheckpointName), err)
	}
	return &smp, nil
}

// readSamples reads and verifies the sample checkpoint's chunks (rank 0)
// and returns the usable proposals gob-encoded (nil if none: no
// checkpoint, or one of another model or number of draws).
func (m *model) readSamples(n, draws int) ([]byte, error) {
	m.sampled = &sampleCheckpoint{Phase: "sample", Draws: draws, Model: m.modelSHA}
	dir := m.env.Dir.Checkpoints()
	path := filepath.Join(dir, sampleCheckpointName)
	ck, found, warning, err := rundir.ReadRecord(dir, sampleCheckpointName, func(ck *sampleCheckpoint) error {
		for _, c := range ck.Chunks {
			if err := rundir.VerifyFile(dir, c.File, c.SHA256, sampleCheckpointName); err != nil {
				return err
			}
		}
		return nil
	})
	if warning != "" {
		m.printf("  warning      %s\n", warning)
	}
	if err != nil {
		return nil, fmt.Errorf("%w; remove %s and %s to draw the samples afresh", err, path, rundir.PreviousName(sampleCheckpointName))
	}
	if !found {
		return nil, nil
	}
	if ck.Model != m.modelSHA || ck.Draws != draws {
		m.printf("  sample checkpoint of another model or number of draws: drawing afresh\n")
		return nil, nil
	}
	var smp *flow.Samples
	for _, c := range ck.Chunks {
		data, err := os.ReadFile(filepath.Join(dir, c.File))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var part flow.Samples
		if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&part); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, c.File, err)
		}
		if smp == nil {
			smp = &part
		} else if err := smp.Append(&part); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, c.File, err)
		}
	}
	if smp == nil {
		return nil, nil
	}
	keep := min(n, len(smp.LogW))
	if keep < len(smp.LogW) {
		// Fewer proposals: the checkpoint restarts as one chunk of the
		// proposals kept.
		smp.Truncate(keep)
		if err := m.saveSamplesRoot(smp); err != nil {
			return nil, err
		}
	} else {
		*m.sampled = ck
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(smp); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
