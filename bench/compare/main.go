// Command compare measures the same work on cowfs and its peers, side by
// side, in one run: btrfs and XFS on loop devices, a tmpfs, go-fuse's
// loopback over a tmpfs, and cowfs through its Go API, its FUSE mount and
// its 9P server. It prints a markdown table of medians with each figure's
// ratio to the best peer and, with --out DIR, writes results.md,
// results.json and SVG plots there.
//
//	sudo go run ./bench/compare --out docs/bench          # the full run
//	sudo go run ./bench/compare --mode quick              # smaller sizes, 1 run
//	go run ./bench/compare --mode tiny                    # what CI runs
//
// As root it makes every target; without root it runs what it can (the
// Go API and the 9P server) and says what it skipped. bench/README.md
// describes each test.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// sizes are a mode's workload sizes.
type sizes struct {
	runs       int
	extents    []int // extent counts of the whole-file clone test
	maxExt9P   int   // most extents built over 9P (one round trip each)
	fileMiB    int64 // the cp, footprint and read tests' file
	rangeMiB   int64 // the range-clone test's file
	treeFiles  int   // cp -r
	snapFiles  int   // files in the snapshot test's volume
	fioMiB     int64
	fioSeconds int
	imageGiB   int64 // each loop device's image (sparse)
}

var modes = map[string]sizes{
	"tiny":  {runs: 1, extents: []int{1, 1000}, maxExt9P: 1000, fileMiB: 16, rangeMiB: 8, treeFiles: 200, snapFiles: 1000, fioMiB: 16, fioSeconds: 1, imageGiB: 1},
	"quick": {runs: 1, extents: []int{1, 1000, 65536}, maxExt9P: 65536, fileMiB: 256, rangeMiB: 64, treeFiles: 10000, snapFiles: 100000, fioMiB: 256, fioSeconds: 5, imageGiB: 8},
	"full":  {runs: 3, extents: []int{1, 1000, 65536, 1000000}, maxExt9P: 65536, fileMiB: 1024, rangeMiB: 256, treeFiles: 100000, snapFiles: 1000000, fioMiB: 1024, fioSeconds: 20, imageGiB: 24},
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("compare", flag.ContinueOnError)
	mode := fl.String("mode", "full", "full, quick or tiny")
	out := fl.String("out", "", "directory to write results.md, results.json and the SVG plots to")
	work := fl.String("work", os.TempDir(), "directory for scratch files (loop images, stores); should be on disk")
	only := fl.String("targets", strings.Join(allTargets, ","), "targets to run, comma-separated")
	from := fl.String("from", "", "measure nothing: write the report of this results.json again (after a change to the report's format)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *from != "" {
		return rerender(*from, *out)
	}
	sz, ok := modes[*mode]
	if !ok {
		return fmt.Errorf("--mode %q: want full, quick or tiny", *mode)
	}
	dir, err := os.MkdirTemp(*work, "cowfs-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rep := &Report{
		Command: "go run ./bench/compare " + strings.Join(args, " "),
		Started: time.Now().UTC(),
		Machine: machine(),
		Mode:    *mode,
	}
	b := &bench{sz: sz, dir: dir, rep: rep}
	defer b.teardown()
	for _, name := range strings.Split(*only, ",") {
		b.setup(name)
	}
	b.runAll()
	var md bytes.Buffer
	if err := rep.Markdown(&md); err != nil {
		return err
	}
	os.Stdout.Write(md.Bytes())
	if *out == "" {
		return nil
	}
	return writeOut(*out, rep, md.Bytes())
}

// rerender writes the report of an earlier run again.
func rerender(file, out string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	var md bytes.Buffer
	if err := rep.Markdown(&md); err != nil {
		return err
	}
	os.Stdout.Write(md.Bytes())
	if out == "" {
		return nil
	}
	return writeOut(out, &rep, md.Bytes())
}

// writeOut writes the report and its plots into dir.
func writeOut(dir string, rep *Report, md []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), md, 0o644); err != nil {
		return err
	}
	var js, clone, bars, fio bytes.Buffer
	if err := rep.JSON(&js); err != nil {
		return err
	}
	if err := rep.CloneSVG(&clone, testCloneWhole, "Whole-file clone time vs extent count"); err != nil {
		return err
	}
	if err := rep.BarsSVG(&bars, []string{testFioSeqRead, testFioSeqWrite}, "fio sequential throughput (MiB/s)"); err != nil {
		return err
	}
	if err := rep.BarsSVG(&fio, []string{testFioRandRead, testFioRandWrite}, "fio random 4 KiB (ops/s)"); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"results.json": js.Bytes(), "clone.svg": clone.Bytes(), "fio-seq.svg": bars.Bytes(), "fio-rand.svg": fio.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// machine describes this machine for the report.
func machine() map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			m["memory"] = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	return m
}
