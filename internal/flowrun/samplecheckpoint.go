package flowrun

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"pfmpi/flow"
	"pfmpi/internal/atomicfile"
	"pfmpi/mpi"
)

// sampleCheckpoint points at the proposals a sample phase has drawn so far
// (checkpoints/sample.json); the data file holds them gob-encoded.
type sampleCheckpoint struct {
	Phase  string `json:"phase"` // "sample"
	Done   int    `json:"proposals"`
	Draws  int    `json:"draws"`
	Model  string `json:"model_sha256"` // the model checkpoint they were drawn from
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

const sampleCheckpointName = "sample.json"

// saveSamples checkpoints smp, the first proposals of the sample phase
// (rank 0 writes; collective verdict).
func (m *model) saveSamples(smp *flow.Samples) error {
	var err error
	if m.env.World.Rank() == 0 {
		err = m.saveSamplesRoot(smp)
	}
	return mpi.RootError(m.env.World, err)
}

func (m *model) saveSamplesRoot(smp *flow.Samples) error {
	dir := m.env.Dir.Checkpoints()
	name := fmt.Sprintf("sample-%09d.gob", len(smp.LogW))
	path := filepath.Join(dir, name)
	sum, err := atomicfile.WriteSum(path, 0o644, func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(smp)
	})
	if err != nil {
		return err
	}
	if err := m.env.Dir.Sync(); err != nil {
		return err
	}
	ck := sampleCheckpoint{Phase: "sample", Done: len(smp.LogW), Draws: smp.Draws, Model: m.modelSHA, File: name, SHA256: sum}
	if err := atomicfile.WriteJSON(filepath.Join(dir, sampleCheckpointName), ck); err != nil {
		return err
	}
	atomicfile.RemoveOthers(dir, "sample-*.gob", name)
	return nil
}

// loadSamples returns the proposals of a checkpointed sample phase drawn
// from the loaded model with draws pseudofermion draws, cut to at most n
// and to a multiple of the replicas; nil if there are none usable
// (collective: every rank gets them).
func (m *model) loadSamples(n, draws int) (*flow.Samples, error) {
	var data []byte
	var err error
	if m.env.World.Rank() == 0 {
		data, err = m.readSamples(draws)
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
	replicas := m.env.World.Size() / m.env.Domain.Size()
	keep := min(n, len(smp.LogW)) / replicas * replicas
	if keep == 0 {
		return nil, nil
	}
	smp.Truncate(keep)
	return &smp, nil
}

// readSamples reads and verifies the sample checkpoint (rank 0); nil if
// there is none or it belongs to another model or number of draws.
func (m *model) readSamples(draws int) ([]byte, error) {
	dir := m.env.Dir.Checkpoints()
	path := filepath.Join(dir, sampleCheckpointName)
	var ck sampleCheckpoint
	if found, err := atomicfile.ReadJSON(path, &ck); !found || err != nil {
		return nil, err
	}
	if ck.Model != m.modelSHA || ck.Draws != draws {
		m.printf("  sample checkpoint of another model or number of draws: drawing afresh\n")
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, ck.File))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if sum := atomicfile.SHA256Bytes(data); sum != ck.SHA256 {
		return nil, fmt.Errorf("%s: %s has SHA-256 %s, the checkpoint records %s: the file is damaged; remove %s to draw the samples afresh",
			path, ck.File, sum, ck.SHA256, path)
	}
	return data, nil
}
