package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"pfmpi/gaugeio"
)

func infoCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	asJSON := fs.Bool("json", false, "print one JSON object")
	beta := fs.Float64("beta", 0, "gauge coupling β for the action (default: the file's)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "pfmpi info: give one configuration file: pfmpi info CONFIG [-json] [-beta B]")
		return exitUsage
	}
	rep, err := gaugeio.Inspect(pos[0], *beta)
	if err != nil {
		fmt.Fprintln(stderr, "pfmpi info:", err)
		return exitError
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return exitOK
	}
	rep.WriteText(stdout)
	return exitOK
}

func convertCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	beta := fs.Float64("beta", 0, "record this gauge coupling β (default: the input's)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "pfmpi convert: give an input and an output file: pfmpi convert IN OUT (format from OUT's extension: .pfg, .npy, .lime, .ildg)")
		return exitUsage
	}
	in, out := pos[0], pos[1]
	if _, err := gaugeio.FormatOf(out); err != nil {
		fmt.Fprintln(stderr, "pfmpi convert:", err)
		return exitUsage
	}
	meta, plaq, err := gaugeio.Convert(in, out, *beta)
	if err != nil {
		fmt.Fprintln(stderr, "pfmpi convert:", err)
		return exitError
	}
	f, _ := gaugeio.FormatOf(out)
	fmt.Fprintf(stdout, "pfmpi convert: %s (%s) -> %s (%s), average plaquette %.15f\n", in, meta.Format, out, f, plaq)
	return exitOK
}
