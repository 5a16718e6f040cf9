package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/internal/fusetest"
)

// TestDuCopiedFile is the case du must get right (see "Usage" in
// docs/design.md), through a real `cowfs mount`, the system's cp and
// `cowfs du --json`: a directory e holding a 3 MiB file x
// and its copy y stores 3 MiB, all of it e's own; either file alone frees
// nothing until the other is removed.
func TestDuCopiedFile(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), fusetest.TempDir(t)
	startMount(t, store, mnt)
	e := filepath.Join(mnt, "e")
	x, y := filepath.Join(e, "x"), filepath.Join(e, "y")
	const n = 3 << 20
	data := make([]byte, n)
	rand.Read(data)
	mkdirs(t, e)
	if err := os.WriteFile(x, data, 0o644); err != nil {
		t.Fatal(err)
	}

	du := func(paths ...string) []ctl.UsageReply {
		t.Helper()
		out, errs, status := cli(t, append([]string{"du", "--json"}, paths...)...)
		var rows []ctl.UsageReply
		if err := json.Unmarshal([]byte(out), &rows); status != 0 || err != nil || len(rows) != len(paths) {
			t.Fatalf("cowfs du --json %q: status %d, %v\n%s%s", paths, status, err, out, errs)
		}
		return rows
	}
	want := func(got ctl.UsageReply, logical, shared, exclusive int64) {
		t.Helper()
		if got.Logical != logical || got.Shared != shared || got.Exclusive != exclusive {
			t.Errorf("du %s: logical %d, shared %d, exclusive %d; want %d, %d, %d",
				got.Path, got.Logical, got.Shared, got.Exclusive, logical, shared, exclusive)
		}
	}
	// storeBytes is what the mount's store holds; du commits first, so
	// it is current after a du.
	storeBytes := func() int64 {
		t.Helper()
		out, errs, status := cli(t, "stats", "--json", mnt)
		var st ctl.StatsReply
		if err := json.Unmarshal([]byte(out), &st); status != 0 || err != nil {
			t.Fatalf("cowfs stats --json: status %d, %v\n%s%s", status, err, out, errs)
		}
		return st.Store.Bytes
	}

	want(du(e)[0], n, 0, n)
	before := storeBytes()
	if before < n {
		t.Fatalf("the store holds %d bytes after writing %d", before, n)
	}
	if out, err := exec.Command("cp", x, y).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if !bytes.Equal(mustReadFile(t, y), data) {
		t.Fatal("the copy differs from its source")
	}
	rows := du(e, x, y)
	want(rows[0], 2*n, 0, n)
	want(rows[1], n, n, 0)
	want(rows[2], n, n, 0)
	// The copy stored no data: the store grew by a few tree nodes only.
	if grown := storeBytes() - before; grown < 0 || grown > 64<<10 {
		t.Errorf("the store grew by %d bytes with the copy", grown)
	}

	if err := os.Remove(y); err != nil {
		t.Fatal(err)
	}
	want(du(x)[0], n, 0, n)
	before = storeBytes()
	// Removing e frees what du called exclusive, and some tree nodes.
	if err := os.RemoveAll(e); err != nil {
		t.Fatal(err)
	}
	want(du(mnt)[0], 0, 0, 0)
	if freed := before - storeBytes(); freed < n || freed > n+64<<10 {
		t.Errorf("removing e freed %d bytes; du said %d exclusive", freed, n)
	}
}
func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0:         "0 B",
		1023:      "1023 B",
		1024:      "1.0 KiB",
		1536:      "1.5 KiB",
		300000:    "293.0 KiB",
		5 << 30:   "5.0 GiB",
		1<<63 - 1: "8.0 EiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
