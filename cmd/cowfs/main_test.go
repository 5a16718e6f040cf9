package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
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
// status.
func cli(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsCLI+"=1")
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

func TestDemo(t *testing.T) {
	out, errOut, status := cli(t, "demo", "--store", "mem:")
	if status != 0 {
		t.Fatalf("cowfs demo exited %d\nstdout:\n%s\nstderr:\n%s", status, out, errOut)
	}
	if errOut != "" {
		t.Errorf("cowfs demo wrote to stderr:\n%s", errOut)
	}
	for _, line := range []string{
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
	} {
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

func TestDemoDefaultStore(t *testing.T) {
	var out, errb bytes.Buffer
	if status := run([]string{"demo"}, &out, &errb); status != 0 {
		t.Fatalf("run demo: status %d\n%s%s", status, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "demo: all checks passed") {
		t.Fatalf("output:\n%s", out.String())
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
		{args: []string{"help"}, status: 0, stdout: "demo [--store mem:]"},
		{args: []string{"-h"}, status: 0, stdout: "Commands:"},
		{args: []string{"frob"}, status: 2, stderr: `unknown command "frob"`, noStdout: true},
		{args: []string{"demo", "--store", "s3:bucket"}, status: 2, stderr: `unknown store "s3:bucket"`, noStdout: true},
		{args: []string{"demo", "--bogus"}, status: 2, stderr: "flag provided but not defined", noStdout: true},
		{args: []string{"demo", "extra"}, status: 2, stderr: "unexpected arguments", noStdout: true},
		{args: []string{"demo", "-h"}, status: 0, stderr: "-store", noStdout: true},
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
	}
}

func TestExitStatusOnUsageError(t *testing.T) {
	_, errOut, status := cli(t, "demo", "--store", "nowhere:")
	if status != 2 || !strings.Contains(errOut, `unknown store "nowhere:"`) {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
}

func TestFailureExitStatus(t *testing.T) {
	saved := commands
	defer func() { commands = saved }()
	commands = append(commands[:len(commands):len(commands)], command{
		name: "fail",
		run: func([]string, io.Writer, io.Writer) error {
			return errors.New("check failed: something")
		},
	})
	var out, errb bytes.Buffer
	if status := run([]string{"fail"}, &out, &errb); status != 1 {
		t.Fatalf("status %d, want 1", status)
	}
	if want := "cowfs fail: FAILED: check failed: something\n"; errb.String() != want {
		t.Fatalf("stderr %q, want %q", errb.String(), want)
	}
}
