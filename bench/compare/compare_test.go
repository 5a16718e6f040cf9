package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTinyRun runs the whole comparison in its tiny mode, as CI does to
// prove it still works: as root every target must come up and every test
// must give a figure or say why it does not apply; without root the run
// must still cover the Go API and the 9P server and say what it skipped.
// Under CI=true it must run as root.
func TestTinyRun(t *testing.T) {
	root := os.Geteuid() == 0
	if !root && os.Getenv("CI") == "true" {
		t.Fatal("CI must run the benchmark's tiny mode as root")
	}
	if testing.Short() {
		t.Skip("builds and mounts: not in -short")
	}
	out := t.TempDir()
	if err := run([]string{"--mode", "tiny", "--out", out, "--work", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	want := []string{"cowfs-api", "cowfs-9p"}
	if root {
		want = allTargets
		if len(rep.Skipped) != 0 {
			t.Errorf("skipped as root: %q", rep.Skipped)
		}
	} else if len(rep.Skipped) == 0 {
		t.Error("without root nothing was reported skipped")
	}
	if strings.Join(rep.Targets, ",") != strings.Join(want, ",") {
		t.Errorf("targets %v, want %v", rep.Targets, want)
	}
	figures := map[string]int{}
	for _, r := range rep.Results {
		if r.Err == "" {
			if len(r.Runs) != 1 || !(r.Median > 0) {
				t.Errorf("%s %s on %s: runs %v median %v", r.Test, r.Param, r.Target, r.Runs, r.Median)
			}
			figures[r.Target]++
		}
	}
	// Every target gives figures for the tests that apply to it.
	least := map[string]int{"btrfs": 14, "xfs": 13, "tmpfs": 13, "loopback": 13, "cowfs-fuse": 14, "cowfs-api": 10, "cowfs-9p": 8}
	for _, name := range want {
		if figures[name] < least[name] {
			t.Errorf("%s: %d figures, want at least %d", name, figures[name], least[name])
		}
	}
	for _, f := range []string{"results.md", "clone.svg", "fio-seq.svg", "fio-rand.svg"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
