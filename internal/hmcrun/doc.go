// Package hmcrun runs the [hmc] phase of a run file: it builds the monomials
// and the integrator from the configuration, runs one chain per replica,
// measures, logs every trajectory to metrics.jsonl, checkpoints so that a
// resumed run continues bit for bit, and writes summary.json.
package hmcrun
