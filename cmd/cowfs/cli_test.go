package main

// Tests of the command line itself: where flags go, help, version,
// completion, the log flags, what the daemons print, and the human units of
// stats, fsck and gc.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"9fans.net/go/plan9"
	"9fans.net/go/plan9/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
)

// TestFlagsAfterArguments: du, stats and snapshot take their flags before
// or after their arguments, in a real mount; an argument that starts with
// "-" follows "--".
func TestFlagsAfterArguments(t *testing.T) {
	mnt := serveMem(t)
	file := filepath.Join(mnt, "f.bin")
	if err := os.WriteFile(file, randomBytes(30, 200_000), 0o644); err != nil {
		t.Fatal(err)
	}

	before := cowfsOK(t, "du", "--json", file)
	after := cowfsOK(t, "du", file, "--json")
	var usage []ctl.UsageReply
	if err := json.Unmarshal([]byte(after), &usage); err != nil || len(usage) != 1 || usage[0].Path != file || usage[0].Logical != 200_000 {
		t.Fatalf("du FILE --json: %v\n%s", err, after)
	}
	if after != before {
		t.Errorf("du FILE --json printed\n%s\ndu --json FILE printed\n%s", after, before)
	}

	for _, args := range [][]string{{"stats", mnt, "--json"}, {"stats", "--json", mnt}} {
		var st ctl.StatsReply
		if out := cowfsOK(t, args...); json.Unmarshal([]byte(out), &st) != nil || st.Volume != "main" || st.Store.Blobs == 0 {
			t.Errorf("cowfs %q printed\n%s", args, out)
		}
	}

	cowfsOK(t, "snapshot", "create", mnt, "s1")
	for _, args := range [][]string{
		{"snapshot", "list", mnt, "--json"},
		{"snapshot", "list", "--json", mnt},
		{"snapshot", "--json", "list", mnt},
	} {
		var snaps []ctl.SnapshotReply
		if out := cowfsOK(t, args...); json.Unmarshal([]byte(out), &snaps) != nil || len(snaps) != 1 || snaps[0].Name != "s1" {
			t.Errorf("cowfs %q printed\n%s", args, out)
		}
	}

	t.Chdir(mnt)
	if err := os.WriteFile("-dash", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := cowfsOK(t, "du", "--json", "--", "-dash")
	if err := json.Unmarshal([]byte(out), &usage); err != nil || len(usage) != 1 || usage[0].Path != "-dash" || usage[0].Logical != 1 {
		t.Errorf("du --json -- -dash: %v\n%s", err, out)
	}
	var errb bytes.Buffer
	if status := run([]string{"du", "-dash"}, &bytes.Buffer{}, &errb); status != exitUsage || !strings.Contains(errb.String(), "unknown shorthand flag") {
		t.Errorf("du -dash: status %d, stderr %q; want 2 and an unknown flag", status, errb.String())
	}
}

// TestFsckFlagsInAnyOrder: the flags of fsck give the same report in any
// order, as --flag VALUE or --flag=VALUE.
func TestFsckFlagsInAnyOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeVolume(t, dir, "t", map[string][]byte{"a": randomBytes(32, 50_000)})
	var first string
	for _, args := range [][]string{
		{"fsck", "--json", "--store", dir},
		{"fsck", "--store", dir, "--json"},
		{"fsck", "--store=" + dir, "--json", "--repair=false"},
	} {
		out, errOut, status := cli(t, args...)
		var rep report
		if status != 0 || errOut != "" || json.Unmarshal([]byte(out), &rep) != nil || rep.Store != dir || !rep.Clean {
			t.Fatalf("cowfs %q: status %d\nstdout:\n%s\nstderr:\n%s", args, status, out, errOut)
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("cowfs %q printed\n%s\nwant, as in the first order,\n%s", args, out, first)
		}
	}
}

// TestMountFlagsAfterMountPoint runs `cowfs mount MNT --store S --volume
// V`: the flags after the mount point choose the store and the volume.
func TestMountFlagsAfterMountPoint(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) }) // if it was killed
	p := startDaemon(t, "mount", mnt, "--store", store, "--volume", "v2")
	if !mounted(t, mnt) {
		t.Fatalf("cowfs mount said ready but %s is not mounted", mnt)
	}
	if err := os.WriteFile(filepath.Join(mnt, "here"), []byte("in v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d after SIGTERM\n%s", status, p.stderr)
	}
	if want := "cowfs mount: volume v2 of store " + store + " at " + mnt + ": ready"; len(p.stdout) == 0 || p.stdout[0] != want {
		t.Errorf("ready line %q, want %q", p.stdout, want)
	}
	checkVolume(t, store, "v2", map[string][]byte{"here": []byte("in v2")})
}

// TestMountPrintsOnlyReady: a mount doing ordinary work, then stopped,
// prints its ready line on stdout and nothing else, and nothing on stderr.
func TestMountPrintsOnlyReady(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	p := startMount(t, store, mnt)
	files := writeTree(t, mnt)
	checkTree(t, mnt, files)
	f, err := os.OpenFile(filepath.Join(mnt, "hello.txt"), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("more\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // a commit
		t.Fatal(err)
	}
	f.Close()
	if err := os.Rename(filepath.Join(mnt, "sub/deep/empty"), filepath.Join(mnt, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mnt, "link")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"clone", filepath.Join(mnt, "sub"), filepath.Join(mnt, "sub2")},
		{"snapshot", "create", mnt, "snap"},
		{"snapshot", "list", mnt},
		{"du", filepath.Join(mnt, "sub2")},
		{"stats", mnt},
	} {
		if out, errs, status := cli(t, args...); status != 0 {
			t.Fatalf("cowfs %q: status %d\n%s%s", args, status, out, errs)
		}
	}
	if _, err := os.ReadFile(filepath.Join(mnt, ".cowfs/snapshots/snap/sub/big.bin")); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d after SIGTERM\n%s", status, p.stderr)
	}
	if len(p.stdout) != 1 || p.stdout[0] != "cowfs mount: volume main of store "+store+" at "+mnt+": ready" {
		t.Errorf("stdout %q, want only the ready line", p.stdout)
	}
	if p.stderr.Len() != 0 {
		t.Errorf("stderr of a normal run:\n%s", p.stderr)
	}
}

// TestServePrintsOnlyReady: a 9P server doing ordinary work, then stopped
// with a client still connected, prints its ready line on stdout and
// nothing else, and nothing on stderr.
func TestServePrintsOnlyReady(t *testing.T) {
	store, addr := filepath.Join(t.TempDir(), "store"), freeAddr(t)
	p := startServe(t, store, addr)
	c, err := client.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := c.Attach(nil, "root", "main")
	if err != nil {
		t.Fatal(err)
	}
	fid, err := fsys.Create("f", plan9.ORDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(33, 3<<20)
	if n, err := fid.WriteAt(data, 0); err != nil || n != len(data) {
		t.Fatalf("write: %d, %v", n, err)
	}
	fid.Close()
	d, err := fsys.Create("d", plan9.OREAD, plan9.DMDIR|0o755)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := fsys.Stat("f"); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Open("missing", plan9.OREAD); err == nil { // an Rerror is ordinary too
		t.Fatal("opened a missing file")
	}
	fid, err = fsys.Open("f", plan9.OREAD)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if n, err := fid.ReadAt(got, 0); n != len(data) || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v)", n, err)
	}
	fid.Close()
	// A second client comes and goes.
	c2, err := client.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Attach(nil, "root", "main"); err != nil {
		t.Fatal(err)
	}
	c2.Close()

	p.cmd.Process.Signal(syscall.SIGTERM) // c is still connected
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d after SIGTERM\n%s", status, p.stderr)
	}
	c.Close()
	if len(p.stdout) != 1 || p.stdout[0] != "cowfs serve: store "+store+" on tcp "+addr+": ready" {
		t.Errorf("stdout %q, want only the ready line", p.stdout)
	}
	if p.stderr.Len() != 0 {
		t.Errorf("stderr of a normal run:\n%s", p.stderr)
	}
}

// TestLogFlags: --log-level and --log-format take their values on mount
// and serve, and a bad value is a usage error.
func TestLogFlags(t *testing.T) {
	mnt := t.TempDir()
	for _, args := range [][]string{
		{"mount", "--log-level", "loud", "--store", "mem:", mnt},
		{"mount", mnt, "--store", "mem:", "--log-format=xml"},
		{"serve", "--store", "mem:", "--log-level", "verbose"},
		{"serve", "--store", "mem:", "--log-format", ""},
		{"serve", "--store", "mem:", "--log-level"},
	} {
		out, errs, status := cli(t, args...)
		flag := "--log-level"
		if strings.Contains(strings.Join(args, " "), "--log-format") {
			flag = "--log-format"
		}
		if status != exitUsage || out != "" || !strings.HasPrefix(errs, "cowfs "+args[0]+": ") || !strings.Contains(errs, flag) {
			t.Errorf("cowfs %q: status %d, stdout %q, stderr %q; want 2 and a word on %s", args, status, out, errs, flag)
		}
	}
	// Every value is accepted: the server starts, and stops cleanly; in
	// JSON, anything it logs is one JSON object a line.
	for _, lf := range [][2]string{{"debug", "json"}, {"info", "text"}, {"warn", "json"}, {"error", "text"}, {"DEBUG", "JSON"}} {
		sock := filepath.Join(t.TempDir(), "9p.sock")
		p := startDaemon(t, "serve", "--store", "mem:", "--listen", sock, "--log-level", lf[0], "--log-format", lf[1])
		c, err := client.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Attach(nil, "root", "main"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		p.cmd.Process.Signal(syscall.SIGTERM)
		if status := p.wait(t); status != 0 {
			t.Fatalf("serve --log-level %s --log-format %s: exit status %d\n%s", lf[0], lf[1], status, p.stderr)
		}
		if strings.EqualFold(lf[1], "json") {
			for _, l := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
				var rec map[string]any
				if l != "" && (json.Unmarshal([]byte(l), &rec) != nil || rec["level"] == nil || rec["msg"] == nil) {
					t.Errorf("serve --log-format json logged a line that is no record: %q", l)
				}
			}
		}
	}
}

// TestLogger checks the logger the flags build: its least level (by
// default warn) and its format.
func TestLogger(t *testing.T) {
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
	for i, name := range []string{"debug", "info", "warn", "error"} {
		var buf bytes.Buffer
		l, err := (&logFlags{level: name, format: "text"}).logger(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for j, level := range levels {
			if got := l.Enabled(context.Background(), level); got != (j >= i) {
				t.Errorf("--log-level %s: %v enabled: %v", name, level, got)
			}
		}
	}
	c := &cobra.Command{Use: "x"}
	var lf logFlags
	lf.add(c)
	if err := c.Flags().Parse(nil); err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	l, err := lf.logger(&text) // the defaults
	if err != nil {
		t.Fatal(err)
	}
	l.Info("routine")
	l.Warn("act on this", "store", "s")
	if got := text.String(); strings.Contains(got, "routine") || !strings.Contains(got, `level=WARN msg="act on this" store=s`) || strings.Count(got, "\n") != 1 {
		t.Errorf("default logger wrote %q, want one warn record, key=value", got)
	}
	l, err = (&logFlags{level: "warn", format: "json"}).logger(&js)
	if err != nil {
		t.Fatal(err)
	}
	l.Error("failed", "err", "boom")
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil || rec["level"] != "ERROR" || rec["msg"] != "failed" || rec["err"] != "boom" {
		t.Errorf("json logger wrote %q (%v)", js.String(), err)
	}
	for _, bad := range []logFlags{{"loud", "text"}, {"warn", "xml"}, {"", "text"}, {"warn+1", "text"}} {
		if _, err := bad.logger(&text); err == nil {
			t.Errorf("%+v: no error", bad)
		} else if _, ok := err.(*usageError); !ok {
			t.Errorf("%+v: %v is not a usage error", bad, err)
		}
	}
}

// TestMountLogsAsJSON stops a busy mount started with --log-format json:
// what it says about the detach is a JSON record on stderr.
func TestMountLogsAsJSON(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) }) // if it was killed
	p := startDaemon(t, "mount", "--log-format", "json", "--store", store, mnt)
	f, err := os.Create(filepath.Join(mnt, "open"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for mounted(t, mnt) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	f.Close()
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d\n%s", status, p.stderr)
	}
	var rec struct{ Level, Msg, Mountpoint string }
	if err := json.Unmarshal(p.stderr.Bytes(), &rec); err != nil || rec.Level != "WARN" || !strings.Contains(rec.Msg, "detached") || rec.Mountpoint != mnt {
		t.Errorf("stderr %q (%v), want one JSON warning of the detach of %s", p.stderr, err, mnt)
	}
}

// TestMountDebugThroughLogger: with --debug and --log-format json, go-fuse's
// trace of the requests goes through the logger: one JSON record a line.
func TestMountDebugThroughLogger(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) }) // if it was killed
	p := startDaemon(t, "mount", mnt, "--store", store, "--debug", "--log-format", "json")
	if _, err := os.Stat(filepath.Join(mnt, "no-such-name")); !os.IsNotExist(err) {
		t.Fatalf("stat: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d\n%s", status, p.stderr)
	}
	lookups := 0
	for _, l := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Level == "" {
			t.Fatalf("stderr line %q is no JSON record (%v)", l, err)
		}
		if rec.Level == "INFO" && strings.HasPrefix(rec.Msg, "rx ") && strings.Contains(rec.Msg, "LOOKUP") && strings.Contains(rec.Msg, "no-such-name") {
			lookups++
		}
	}
	if lookups == 0 {
		t.Errorf("no trace of the lookup of no-such-name in\n%s", p.stderr)
	}
}

// commandPaths returns the command lines ([]string{"fsck"},
// []string{"completion", "bash"}, ...) of every command a user can see.
func commandPaths(root *cobra.Command) [][]string {
	var paths [][]string
	for _, c := range root.Commands() {
		if c.Hidden {
			continue
		}
		paths = append(paths, []string{c.Name()})
		for _, sub := range c.Commands() {
			if !sub.Hidden {
				paths = append(paths, []string{c.Name(), sub.Name()})
			}
		}
	}
	return paths
}

// TestHelpListsEveryFlag: for every command, `cowfs help CMD`, `cowfs CMD
// -h` and `cowfs CMD --help` print the same help on stdout, naming every
// flag of CMD, and exit 0 with nothing on stderr.
func TestHelpListsEveryFlag(t *testing.T) {
	root := newRoot()
	paths := commandPaths(root)
	if len(paths) < len(commands)+2+4 { // help, completion and its four shells
		t.Fatalf("only %d commands: %q", len(paths), paths)
	}
	help := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if status := run(args, &out, &errb); status != 0 || errb.Len() != 0 || out.Len() == 0 {
			t.Errorf("cowfs %q: status %d, stdout %d bytes, stderr %q", args, status, out.Len(), errb.String())
		}
		return out.String()
	}
	for _, path := range paths {
		text := help(append([]string{"help"}, path...)...)
		for _, args := range [][]string{append(slices.Clone(path), "-h"), append(slices.Clone(path), "--help")} {
			if other := help(args...); other != text {
				t.Errorf("cowfs %q printed\n%s\ncowfs help %q printed\n%s", args, other, path, text)
			}
		}
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text, "Usage: cowfs "+strings.Join(path, " ")) {
			t.Errorf("cowfs help %q does not start with its usage:\n%s", path, text)
		}
		cmd.InitDefaultHelpFlag()
		n := 0
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			n++
			name := "--" + f.Name
			if f.Shorthand != "" {
				name = "-" + f.Shorthand + ", " + name
			}
			if !regexp.MustCompile(`(?m)^ +` + regexp.QuoteMeta(name) + `\b.* \S`).MatchString(text) {
				t.Errorf("cowfs help %q does not describe flag %s:\n%s", path, name, text)
			}
		})
		if n == 0 {
			t.Errorf("cowfs %q has no flag, not even -h", path)
		}
	}
	// The root's help names every command, the same with -h and --help.
	text := help("help")
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		if other := help(args...); other != text {
			t.Errorf("cowfs %q printed\n%s\ncowfs help printed\n%s", args, other, text)
		}
	}
	for _, c := range root.Commands() {
		if !c.Hidden && !strings.Contains(text, "\t"+c.Use+" ") && !strings.Contains(text, "\t"+c.Use+"\n") {
			t.Errorf("cowfs help does not list %q:\n%s", c.Use, text)
		}
	}
	// And in a real process.
	out, errs, status := cli(t, "help", "mount")
	if status != 0 || errs != "" || !strings.Contains(out, "--log-level LEVEL") || !strings.Contains(out, `(default "warn")`) {
		t.Errorf("cowfs help mount: status %d, stderr %q, stdout:\n%s", status, errs, out)
	}
}

// TestBadFlagExits2: an unknown flag, before or after the arguments, is a
// usage error of the command, in a real process, for every command.
func TestBadFlagExits2(t *testing.T) {
	for _, path := range commandPaths(newRoot()) {
		for _, args := range [][]string{append(slices.Clone(path), "--no-such-flag"), append(slices.Clone(path), "x", "--no-such-flag")} {
			out, errs, status := cli(t, args...)
			name := strings.Join(path, " ")
			hint := "Run 'cowfs " + name + " -h' for its flags.\n"
			if name == "help" {
				hint = "Run 'cowfs help' for the commands.\n"
			}
			want := "cowfs " + name + ": unknown flag: --no-such-flag\n" + hint
			if status != exitUsage || out != "" || errs != want {
				t.Errorf("cowfs %q: status %d, stdout %q, stderr %q; want 2 and %q", args, status, out, errs, want)
			}
		}
	}
}

// TestVersion: `cowfs version`, `--version` and `-v` print the same line.
// The test binary records no module version and no VCS revision.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		out, errs, status := cli(t, args...)
		if status != 0 || errs != "" || out != "cowfs devel\n" {
			t.Errorf("cowfs %q: status %d, stdout %q, stderr %q; want \"cowfs devel\"", args, status, out, errs)
		}
	}
	if _, errs, status := cli(t, "version", "extra"); status != exitUsage || !strings.Contains(errs, "unexpected arguments") {
		t.Errorf("cowfs version extra: status %d, stderr %q", status, errs)
	}
}

// TestVersionOf checks the version line made from build information.
func TestVersionOf(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	paths := settings("-ldflags", "-X main.where=/home/someone/src", "CGO_CFLAGS", "-I/usr/local/include", "GOROOT", "/usr/local/go")
	for _, tc := range []struct {
		info *debug.BuildInfo
		want string
	}{
		{nil, "cowfs devel"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "cowfs devel"},
		{&debug.BuildInfo{Main: debug.Module{Path: "github.com/cowfs/cowfs", Version: "v1.2.3"}, Settings: paths}, "cowfs v1.2.3"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: append(paths, settings("vcs.revision", "0123abcd", "vcs.modified", "true")...)},
			"cowfs devel (revision 0123abcd, modified)"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201220710-5022397d3ef6"},
			Settings: settings("vcs", "git", "vcs.revision", "5022397d3ef663e3f5879569dc4464e23e1bcbcb", "vcs.modified", "false", "vcs.time", "2026-12-01T22:07:10Z")},
			"cowfs v0.0.0-20261201220710-5022397d3ef6 (revision 5022397d3ef663e3f5879569dc4464e23e1bcbcb)"},
	} {
		if got := versionOf(tc.info); got != tc.want {
			t.Errorf("versionOf(%+v) = %q, want %q", tc.info, got, tc.want)
		}
	}
}

// TestVersionOfBuiltBinary builds cowfs from this checkout, as a user
// would, and checks that version prints the module version and the
// revision checked out, and no path. Go reads the revision only where .git
// is a directory; in a git worktree (.git a file) it builds a clone.
func TestVersionOfBuiltBinary(t *testing.T) {
	t.Parallel() // a build of its own: let the other tests run meanwhile
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git rev-parse: %v (CI runs in a git checkout)", err)
		}
		t.Skip("not in a git checkout")
	}
	src := strings.TrimSpace(string(out))
	if fi, err := os.Stat(filepath.Join(src, ".git")); err != nil || !fi.IsDir() {
		clone := filepath.Join(t.TempDir(), "src")
		if out, err := exec.Command("git", "clone", "-q", src, clone).CombinedOutput(); err != nil {
			t.Fatalf("git clone: %v\n%s", err, out)
		}
		src = clone
	}
	rev, err := exec.Command("git", "-C", src, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "cowfs")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/cowfs")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// A work tree with changes adds "+dirty" to the version and ", modified".
	want := regexp.MustCompile(`^cowfs v[0-9][^ /]* \(revision ` + strings.TrimSpace(string(rev)) + `(, modified)?\)\n$`)
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil || !want.Match(out) {
			t.Errorf("cowfs %s built from %s: %q (%v), want %s", arg, src, out, err, want)
		}
	}
}

// TestCompletion: completion prints a script for bash, zsh, fish and
// powershell, and the completions it asks the binary for are right.
func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash":       "complete -o default -F __start_cowfs cowfs",
		"zsh":        "#compdef cowfs",
		"fish":       "complete -c cowfs",
		"powershell": "Register-ArgumentCompleter",
	} {
		out, errs, status := cli(t, "completion", shell)
		if status != 0 || errs != "" || !strings.Contains(out, marker) || !strings.Contains(out, "__complete") {
			t.Errorf("cowfs completion %s: status %d, stderr %q, script lacks %q:\n%.300s", shell, status, errs, marker, out)
		}
	}
	// What the scripts ask: `cowfs __complete ARGS... PARTIAL` prints the
	// candidates and then :DIRECTIVE.
	dirs := fmt.Sprintf(":%d", cobra.ShellCompDirectiveFilterDirs)
	for _, tc := range []struct {
		args []string
		want []string // the lines printed, descriptions cut
	}{
		{[]string{"st"}, []string{"stats", ":4"}},
		{[]string{"mount", "--log-level", ""}, []string{"debug", "info", "warn", "error", ":4"}},
		{[]string{"serve", "--log-format", ""}, []string{"text", "json", ":4"}},
		{[]string{"snapshot", ""}, []string{"create", "list", "delete", ":4"}},
		{[]string{"snapshot", "list", ""}, []string{dirs}},
		{[]string{"stats", ""}, []string{dirs}},
		{[]string{"mount", ""}, []string{dirs}},
		{[]string{"fsck", "--store", ""}, []string{dirs}},
		{[]string{"du", ""}, []string{":0"}},
		{[]string{"fsck", "--re"}, []string{"--repair", ":4"}},
		{[]string{"du", "file", "--js"}, []string{"--json", ":4"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish", "powershell", ":4"}},
	} {
		out, _, status := cli(t, append([]string{"__complete"}, tc.args...)...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			name, _, _ := strings.Cut(l, "\t")
			got = append(got, name)
		}
		if status != 0 || !slices.Equal(got, tc.want) {
			t.Errorf("cowfs __complete %q: status %d, %q; want %q", tc.args, status, got, tc.want)
		}
	}
}

// TestBashCompletion sources the bash script in bash and completes command
// lines with it, the binary on PATH as cowfs. _get_comp_words_by_ref, which
// the script takes from Debian's bash-completion package, is stood in for
// by the few lines that split the words.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "cowfs")); err != nil {
		t.Fatal(err)
	}
	script, _, status := cli(t, "completion", "bash")
	if status != 0 {
		t.Fatalf("completion bash: status %d", status)
	}
	harness := `_get_comp_words_by_ref() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]:0:COMP_CWORD+1}"); cword=$COMP_CWORD; }
compopt() { :; }
` + script + `
try() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=(); __start_cowfs; echo "${COMPREPLY[*]}"; }
try cowfs st
try cowfs mount --log-level ""
try cowfs snapshot ""
try cowfs fsck --st
try cowfs du big --js
try cowfs help snapshot-f
`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", harness)
	cmd.Env = append(cliEnviron(t), "PATH="+dir+":"+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash: %v\n%s", err, errb.String())
	}
	want := "stats\ndebug info warn error\ncreate list delete\n--store\n--json\nsnapshot-file\n"
	if out.String() != want || errb.Len() != 0 {
		t.Errorf("bash completed\n%s\nwant\n%s\nstderr: %s", out.String(), want, errb.String())
	}
}

// noBigNumber matches a number of 5 digits or more: a size in bytes that
// text output should have shown in binary units.
var noBigNumber = regexp.MustCompile(`\d{5,}`)

// TestStatsText: stats shows sizes in binary units and the mount's
// counters under one heading, a count and its bytes on one line.
func TestStatsText(t *testing.T) {
	mnt := serveMem(t)
	f, err := os.Create(filepath.Join(mnt, "a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(34, 3<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var st ctl.StatsReply
	if err := json.Unmarshal([]byte(cowfsOK(t, "stats", "--json", mnt)), &st); err != nil {
		t.Fatal(err)
	}
	fuse := st.Frontend["fuse"].(map[string]any)
	if st.Store.Bytes < 3<<20 || fuse["write_bytes"] != float64(3<<20) {
		t.Fatalf("stats --json: %+v", st)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(cowfsOK(t, "stats", "--json", mnt)), &obj); err != nil {
		t.Fatal(err)
	}
	help := cowfsOK(t, "stats", "-h")
	keys := jsonKeys(obj)
	if len(keys) < 25 {
		t.Fatalf("stats --json: only %d keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		// A field is described on a line of its own: "  name   what it is".
		if !regexp.MustCompile(`(?m)^ +` + k + ` +\S`).MatchString(help) {
			t.Errorf("cowfs stats -h does not describe JSON field %q", k)
		}
	}

	out := cowfsOK(t, "stats", mnt)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	// Lines as the user reads them: the width of the padding does not matter.
	squeezed := map[string]bool{}
	for _, l := range lines {
		squeezed[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range []string{
		"volume main",
		fmt.Sprintf("store %s in %d blobs", humanSize(st.Store.Bytes), st.Store.Blobs),
		"zombies 0 blobs waiting for deletion",
		"mount (fuse)",
		fmt.Sprintf("writes %v (3.0 MiB)", fuse["writes"]),
		"fsyncs 1",
	} {
		if !squeezed[want] {
			t.Errorf("stats lacks the line %q:\n%s", want, out)
		}
	}
	heading := slices.Index(lines, "mount (fuse)")
	for i, l := range lines {
		if strings.HasPrefix(l, "mount") && i != heading || strings.Contains(l, "_bytes") || i > heading && !strings.HasPrefix(l, "  ") {
			t.Errorf("stats line %q: want the mount's counters indented under one heading, sizes in units:\n%s", l, out)
		}
	}
	if heading < 0 || len(lines)-heading-1 < 6 { // reads, writes, copy_ranges, fsyncs, ctl_commands, ctl_failures
		t.Errorf("want 6 counters under the heading:\n%s", out)
	}
	if m := noBigNumber.FindString(out); m != "" {
		t.Errorf("stats shows %s, not in binary units:\n%s", m, out)
	}
	if !regexp.MustCompile(`(?m)^node cache  \S+ [KMG]?i?B in \d+ entr(y|ies); \d+ hits?, \d+ miss(es)?, \d+ evictions?$`).MatchString(out) {
		t.Errorf("no node cache line:\n%s", out)
	}
}

// TestStatsHelpExplainsCaches: stats -h says why the node cache of a fresh
// mount counts nothing, and that is so: a fresh mount whose files were all
// written since it started shows no node cache hits or misses, and a mount
// of a store written before does.
func TestStatsHelpExplainsCaches(t *testing.T) {
	fusetest.Require(t)
	help := cowfsOK(t, "stats", "-h")
	if !strings.Contains(help, "on a fresh mount whose\nfiles were all written since it started, its hits and misses stay at zero") {
		t.Fatalf("stats -h does not explain the node cache:\n%s", help)
	}
	nodes := func(mnt string) ctl.CacheCounters {
		var st ctl.StatsReply
		out, errs, status := cli(t, "stats", "--json", mnt)
		if status != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("stats: %d %s%s", status, out, errs)
		}
		return st.Cache.Nodes
	}
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	p := startMount(t, store, mnt)
	files := map[string][]byte{}
	for i := range 20 {
		files[fmt.Sprintf("d/f%d", i)] = randomBytes(uint64(40+i), 50_000)
	}
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(mnt, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if c := nodes(mnt); c.Hits != 0 || c.Misses != 0 {
		t.Errorf("fresh mount: node cache %+v, want no hits and no misses", c)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d\n%s", status, p.stderr)
	}
	startMount(t, store, mnt)
	checkTree := func() {
		for name, want := range files {
			if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	checkTree()
	if c := nodes(mnt); c.Misses == 0 {
		t.Errorf("remount, files read: node cache %+v, want misses", c)
	}
}

// TestFsckAndGCText: fsck and gc print sizes in binary units.
func TestFsckAndGCText(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := map[string][]byte{}
	for i := range 8 {
		big[fmt.Sprintf("f%d.bin", i)] = randomBytes(uint64(50+i), 100_000)
	}
	makeVolume(t, dir, "big", big)
	makeVolume(t, dir, "keep", map[string][]byte{"k.bin": randomBytes(60, 50_000)})

	rep := checkJSONRun(t, 0, "fsck", dir)
	out, errOut, status := cli(t, "fsck", "--store", dir)
	want := fmt.Sprintf("fsck: store %s: %d roots, %d blobs (%s), %d reachable (reachable blobs read and verified)\n",
		dir, rep.Roots, rep.Blobs, humanSize(rep.Bytes), rep.Reachable)
	if status != 0 || errOut != "" || !strings.Contains(out, want) || !strings.HasSuffix(humanSize(rep.Bytes), "iB") {
		t.Errorf("fsck: status %d, stderr %q, stdout\n%s\nwant the line %q", status, errOut, out, want)
	}
	if m := noBigNumber.FindString(strings.ReplaceAll(out, dir, "DIR")); m != "" {
		t.Errorf("fsck shows %s, not in binary units:\n%s", m, out)
	}

	withFS(t, dir, &cowfs.Options{ReleaseBudget: 1}, func(f *cowfs.FS) {
		if err := f.DeleteVolume("big"); err != nil {
			t.Fatal(err)
		}
	})
	usage := func() (u store.Usage) {
		withStore(t, dir, func(st *local.Store) {
			var err error
			if u, err = st.Usage(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		return u
	}
	before := usage()
	out, errOut, status = cli(t, "gc", "--store", dir)
	after := usage()
	freed := regexp.MustCompile(`(?m)^gc: store ` + regexp.QuoteMeta(dir) + fmt.Sprintf(`: freed %d blobs \(%s\) in \d+ commits?$`,
		before.Blobs-after.Blobs, regexp.QuoteMeta(humanSize(before.Bytes-after.Bytes))))
	holds := fmt.Sprintf("gc: the store now holds %d blobs (%s)\n", after.Blobs, humanSize(after.Bytes))
	if status != 0 || errOut != "" || !freed.MatchString(out) || !strings.Contains(out, holds) || before.Bytes-after.Bytes < 800_000 {
		t.Errorf("gc: status %d, stderr %q, stdout\n%s\nwant %s and %q", status, errOut, out, freed, holds)
	}
	if m := noBigNumber.FindString(strings.ReplaceAll(out, dir, "DIR")); m != "" {
		t.Errorf("gc shows %s, not in binary units:\n%s", m, out)
	}
}

// TestErrorsSaidOnce: a directory that is no store, and a --listen address
// without a port, are each named and explained once.
func TestErrorsSaidOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, status := cli(t, "fsck", "--store", dir)
	if want := "cowfs fsck: FAILED: " + dir + " is not a cowfs store: "; status != exitFail || !strings.HasPrefix(errs, want) ||
		strings.Count(errs, "cowfs store") != 1 || strings.Count(errs, dir) != 1 || strings.Count(errs, "\n") != 1 {
		t.Errorf("fsck of a directory that is no store: status %d, stderr %q; want 1 and %q..., said once", status, errs, want)
	}
	_, errs, status = cli(t, "serve", "--store", "mem:", "--listen", "nonsense")
	if status != exitUsage || strings.Count(errs, "nonsense") != 1 || !strings.Contains(errs, "missing port") {
		t.Errorf("serve --listen nonsense: status %d, stderr %q", status, errs)
	}
}
