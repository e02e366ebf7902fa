// Package rundir manages a run's output directory (CONFIG.md): the resolved
// run file config.toml, the per-step log metrics.jsonl, summary.json and the
// checkpoints/ directory. World rank 0 does all file work; the other ranks
// receive its verdicts, so every rank returns the same errors.
//
// A directory holding config.toml holds a run. With resume = "auto" it is
// resumed if its ensemble-defining keys agree with the new run file (the
// keys in [Changeable] may differ), and refused otherwise; "never" refuses
// it, "require" refuses a directory without one. Nothing is overwritten
// silently. A resumed directory is repaired first: a metrics record cut by a
// kill is dropped and temporary files of unfinished writes are removed.
// While a run lasts it holds a lock on OUTPUT/.lock, so that no second job
// writes the same directory.
//
// Phases ask [Dir.StopReason] before each unit of work whether to stop
// early — the wall-time [Limits], a signal, or the file OUTPUT/STOP — and
// end with [Dir.Stop] after writing their checkpoint.
//
// A checkpoint is a record (checkpoints/PHASE.json) naming its files with
// their SHA-256. [WriteRecord] keeps the record before the latest
// (PHASE.prev.json) and the phases keep its files; [ReadRecord] verifies
// the latest and, when it is damaged or missing, falls back to the one
// before with a warning naming the damaged file. A file that fails its
// checksum is never loaded.
package rundir
