package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runAsCLI makes the test binary act as the cowfs command when it is run
// with this variable set, so that tests can check real exit statuses.
const runAsCLI = "COWFS_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(runAsCLI) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// cli runs the test binary as `cowfs args...` and returns its output and exit
// status. Its default store is a fresh temporary directory, never the
// user's.
func cli(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	return cliEnv(t, nil, args...)
}

// cliEnv is cli with extra environment variables (NAME=value), which take
// precedence.
func cliEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(cliEnviron(t), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		status = exit.ExitCode()
	default:
		t.Fatalf("run cowfs %v: %v", args, err)
	}
	return out.String(), errb.String(), status
}

// cliEnviron is the environment of the command run by a test: this
// process's, with a fresh default store, and no second of sleep at exit
// under the race detector.
func cliEnviron(t *testing.T) []string {
	return append(os.Environ(), runAsCLI+"=1",
		"COWFS_STORE="+filepath.Join(t.TempDir(), "default-store"),
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// demoLines are lines every successful demo prints.
var demoLines = []string{
	`volume "demo" created`,
	"cloned src -> copy",
	"copy holds the same bytes as src",
	"appended to copy/docs/readme.txt; src/docs/readme.txt is unchanged",
	"copy range: 1000003 bytes of src/data/big.bin at 12345 -> spliced.bin at 777",
	"spliced.bin: 1066330 bytes in",
	"identical data is stored once",
	`snapshot "before-cleanup" taken`,
	"contents of snapshot demo@before-cleanup:",
	"the snapshot keeps the old files and contents, and refuses writes",
	"every inode number distinct",
	"demo: all checks passed",
}

// checkDemoOutput checks the output of a successful demo.
func checkDemoOutput(t *testing.T, out string) {
	t.Helper()
	for _, line := range demoLines {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q", line)
		}
	}
	// The stats table lists files with their inode number, size and extents.
	found := false
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[0] == "src/data/big.bin" {
			found = f[2] == "file" && f[3] == "4194307" && f[4] != "0"
		}
	}
	if !found {
		t.Errorf("no stats line for src/data/big.bin in:\n%s", out)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

func TestDemo(t *testing.T) {
	out, errOut, status := cli(t, "demo", "--store", "mem:")
	if status != 0 {
		t.Fatalf("cowfs demo exited %d\nstdout:\n%s\nstderr:\n%s", status, out, errOut)
	}
	if errOut != "" {
		t.Errorf("cowfs demo wrote to stderr:\n%s", errOut)
	}
	if !strings.Contains(out, "demo: store mem:") {
		t.Errorf("output does not name the store:\n%s", out)
	}
	checkDemoOutput(t, out)
}

// TestDemoDefaultStore runs the demo in this process with no --store: it
// must use the default local store ($COWFS_STORE here) and create it.
func TestDemoDefaultStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	t.Setenv("COWFS_STORE", dir)
	var out, errb bytes.Buffer
	if status := run([]string{"demo"}, &out, &errb); status != 0 {
		t.Fatalf("run demo: status %d\n%s%s", status, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "demo: store "+dir+"\n") {
		t.Fatalf("demo did not run on %s:\n%s", dir, out.String())
	}
	checkDemoOutput(t, out.String())
	if _, err := os.Stat(filepath.Join(dir, "index.db")); err != nil {
		t.Fatalf("no local store in %s after the demo: %v", dir, err)
	}
}

// TestDefaultStoreFromEnvironment checks, through the real binary, that a
// command with no --store looks in $XDG_DATA_HOME/cowfs, then in
// $HOME/.local/share/cowfs, when COWFS_STORE is not set.
func TestDefaultStoreFromEnvironment(t *testing.T) {
	xdg, home := t.TempDir(), t.TempDir()
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"COWFS_STORE=", "XDG_DATA_HOME=" + xdg, "HOME=" + home}, filepath.Join(xdg, "cowfs")},
		{[]string{"COWFS_STORE=", "XDG_DATA_HOME=", "HOME=" + home}, filepath.Join(home, ".local", "share", "cowfs")},
	} {
		// fsck never creates a store: it names the one it looked for.
		_, errOut, status := cliEnv(t, tc.env, "fsck")
		if want := "cowfs fsck: FAILED: no store at " + tc.want + " "; status != 1 || !strings.HasPrefix(errOut, want) {
			t.Errorf("env %v: status %d, stderr %q, want 1 and %q", tc.env, status, errOut, want)
		}
	}
}

// TestDefaultStoreSpec: $COWFS_STORE is any store spec, as --store takes,
// and one the registry cannot parse fails the command (it is no usage
// error: the command line is fine).
func TestDefaultStoreSpec(t *testing.T) {
	out, errOut, status := cliEnv(t, []string{"COWFS_STORE=mem:"}, "fsck")
	if status != 0 || errOut != "" || !strings.HasPrefix(out, "fsck: store mem:: ") {
		t.Errorf("fsck with COWFS_STORE=mem:: status %d, stdout %q, stderr %q; want 0 on store mem:", status, out, errOut)
	}
	_, errOut, status = cliEnv(t, []string{"COWFS_STORE=s3:bucket"}, "fsck")
	if want := "cowfs fsck: FAILED: unknown store \"s3:bucket\" (a store is a directory or mem:)\n"; status != 1 || errOut != want {
		t.Errorf("fsck with COWFS_STORE=s3:bucket: status %d, stderr %q; want 1 and %q", status, errOut, want)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args     []string
		status   int
		stdout   string // substring expected in stdout ("" for none)
		stderr   string // substring expected in stderr ("" for none)
		noStdout bool
	}{
		{args: nil, status: 2, stderr: "Usage:", noStdout: true},
		{args: []string{"help"}, status: 0, stdout: "demo [--store S] [--volume NAME]"},
		{args: []string{"help"}, status: 0, stdout: "fsck [--store S] [--json] [--repair]"},
		{args: []string{"help"}, status: 0, stdout: "scrub [--store S] [--json]"},
		{args: []string{"help"}, status: 0, stdout: "gc [--store S] [--json]"},
		{args: []string{"help"}, status: 0, stdout: "Without --store, commands use the default store: $COWFS_STORE (any S)\nif set, else the local store in the first of $XDG_DATA_HOME/cowfs\n(if XDG_DATA_HOME is set) and $HOME/.local/share/cowfs; the same for root."},
		{args: []string{"help"}, status: 0, stdout: "\tDIR    the local store in directory DIR (durable; one process at a time)\n\tmem:   an in-memory store; nothing outlives the process\n"},
		{args: []string{"fsck", "-h"}, status: 0, stdout: "the store S, one of DIR, mem: (cowfs help says what each is)"},
		{args: []string{"help"}, status: 0, stdout: "Flags may come before or after the arguments"},
		{args: []string{"-h"}, status: 0, stdout: "Commands:"},
		{args: []string{"--help"}, status: 0, stdout: "completion bash|zsh|fish|powershell"},
		{args: []string{"frob"}, status: 2, stderr: `unknown command "frob"`, noStdout: true},
		{args: []string{"help", "frob"}, status: 2, stderr: `cowfs help: unknown command "frob"`, noStdout: true},
		{args: []string{"--bogus"}, status: 2, stderr: "cowfs: unknown flag: --bogus", noStdout: true},
		{args: []string{"demo", "--store", "s3:bucket"}, status: 2, stderr: `unknown store "s3:bucket"`, noStdout: true},
		{args: []string{"fsck", "--store", "mem:x"}, status: 2, stderr: `the mem store takes no location, got "mem:x"`, noStdout: true},
		{args: []string{"demo", "--bogus"}, status: 2, stderr: "cowfs demo: unknown flag: --bogus\nRun 'cowfs demo -h' for its flags.\n", noStdout: true},
		{args: []string{"fsck", "--store"}, status: 2, stderr: "cowfs fsck: flag needs an argument: --store", noStdout: true},
		{args: []string{"fsck", "--json=maybe"}, status: 2, stderr: `invalid argument "maybe" for "--json" flag`, noStdout: true},
		{args: []string{"demo", "extra"}, status: 2, stderr: "unexpected arguments", noStdout: true},
		{args: []string{"gc", "extra"}, status: 2, stderr: "unexpected arguments", noStdout: true},
		{args: []string{"completion"}, status: 2, stderr: "want a shell", noStdout: true},
		{args: []string{"completion", "tcsh"}, status: 2, stderr: `unknown command "tcsh"`, noStdout: true},
		{args: []string{"demo", "-h"}, status: 0, stdout: "--store S"},
		{args: []string{"fsck", "-h"}, status: 0, stdout: "--repair"},
		{args: []string{"scrub", "-h"}, status: 0, stdout: "every stored blob"},
		{args: []string{"gc", "-h"}, status: 0, stdout: "freed_bytes"},
		{args: []string{"gc", "--help"}, status: 0, stdout: "freed_bytes"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		status := run(tc.args, &out, &errb)
		if status != tc.status {
			t.Errorf("cowfs %q: status %d, want %d", tc.args, status, tc.status)
		}
		if !strings.Contains(out.String(), tc.stdout) {
			t.Errorf("cowfs %q: stdout lacks %q:\n%s", tc.args, tc.stdout, out.String())
		}
		if !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("cowfs %q: stderr lacks %q:\n%s", tc.args, tc.stderr, errb.String())
		}
		if tc.noStdout && out.Len() != 0 {
			t.Errorf("cowfs %q: unexpected stdout:\n%s", tc.args, out.String())
		}
		if tc.status == 0 && errb.Len() != 0 {
			t.Errorf("cowfs %q: unexpected stderr:\n%s", tc.args, errb.String())
		}
	}
}

// TestJSONFieldsDocumented checks that every field of the JSON objects of
// fsck, scrub and gc is described in the command's -h text.
func TestJSONFieldsDocumented(t *testing.T) {
	for _, args := range [][]string{
		{"fsck", "--json", "--repair"},
		{"scrub", "--json"},
		{"gc", "--json"},
	} {
		var out, errb bytes.Buffer
		if status := run(append(args, "--store", "mem:"), &out, &errb); status != 0 {
			t.Fatalf("cowfs %q: status %d\n%s", args, status, errb.String())
		}
		var obj map[string]any
		if err := json.Unmarshal(out.Bytes(), &obj); err != nil {
			t.Fatalf("cowfs %q: %v:\n%s", args, err, out.String())
		}
		var help bytes.Buffer
		if status := run([]string{args[0], "-h"}, &help, io.Discard); status != 0 {
			t.Fatalf("cowfs %s -h: status %d", args[0], status)
		}
		keys := jsonKeys(obj)
		if len(keys) < 7 {
			t.Fatalf("cowfs %q: only %d keys: %v", args, len(keys), keys)
		}
		for _, k := range keys {
			// A field is described on a line of its own: "  name   what it is".
			if !regexp.MustCompile(`(?m)^ +` + k + ` +\S`).MatchString(help.String()) {
				t.Errorf("cowfs %s -h does not describe JSON field %q", args[0], k)
			}
		}
	}
}

// jsonKeys returns the keys of obj and of the objects inside it.
func jsonKeys(obj map[string]any) []string {
	var keys []string
	for k, v := range obj {
		keys = append(keys, k)
		if m, ok := v.(map[string]any); ok {
			keys = append(keys, jsonKeys(m)...)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestExitStatusOnUsageError(t *testing.T) {
	_, errOut, status := cli(t, "demo", "--store", "nowhere:")
	if status != 2 || !strings.Contains(errOut, `unknown store "nowhere:"`) {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
}

// TestStoreSpecs checks what --store takes for a directory: any path, a
// colon included, and that commands other than demo never create one.
func TestStoreSpecs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a:b")
	for _, cmd := range []string{"fsck", "scrub", "gc"} {
		_, errOut, status := cli(t, cmd, "--store", dir)
		if want := "cowfs " + cmd + ": FAILED: no store at " + dir + " "; status != 1 || !strings.HasPrefix(errOut, want) {
			t.Errorf("cowfs %s on a missing store: status %d, stderr %q, want 1 and %q", cmd, status, errOut, want)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a command that does not write created %s: %v", dir, err)
	}
}

func TestFailureExitStatus(t *testing.T) {
	saved := commands
	defer func() { commands = saved }()
	commands = append(commands[:len(commands):len(commands)], func() *cobra.Command {
		return &cobra.Command{
			Use: "fail",
			RunE: func(*cobra.Command, []string) error {
				return errors.New("check failed: something")
			},
		}
	})
	var out, errb bytes.Buffer
	if status := run([]string{"fail"}, &out, &errb); status != 1 {
		t.Fatalf("status %d, want 1", status)
	}
	if want := "cowfs fail: FAILED: check failed: something\n"; errb.String() != want {
		t.Fatalf("stderr %q, want %q", errb.String(), want)
	}
}
