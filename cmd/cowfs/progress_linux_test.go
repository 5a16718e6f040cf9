package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openPty returns the two ends of a new pseudo-terminal.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, slave
}

// cliOnTerminal runs `cowfs args...` with stderr on a pseudo-terminal and
// returns stdout and what reached the terminal.
func cliOnTerminal(t *testing.T, args ...string) (stdout, terminal string, status int) {
	t.Helper()
	master, slave := openPty(t)
	defer master.Close()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = cliEnviron(t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var term bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&term, master) // ends with EIO once the command has exited
		close(done)
	}()
	err := cmd.Wait()
	<-done
	if exit, ok := err.(*exec.ExitError); ok {
		status = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), term.String(), status
}

// TestProgressOnTerminal: with stderr on a terminal, fsck, scrub and gc
// draw a bar on it and clear it; with --json they draw nothing.
func TestProgressOnTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeVolume(t, dir, "t", map[string][]byte{"a.bin": randomBytes(7, 300_000), "b": []byte("b")})
	for _, tc := range []struct{ cmd, draws string }{
		{"fsck", "\rfsck ["},
		{"scrub", "\rscrub ["},
		{"gc", "\rgc: compacting the store"},
	} {
		out, term, status := cliOnTerminal(t, tc.cmd, "--store", dir)
		if status != 0 || out == "" {
			t.Fatalf("cowfs %s: status %d\nstdout:\n%s\nterminal: %q", tc.cmd, status, out, term)
		}
		if !strings.Contains(term, tc.draws) || strings.Contains(term, "\n") {
			t.Errorf("cowfs %s: terminal shows %q, want a bar %q on one line", tc.cmd, term, tc.draws)
		}
		// Cleared at the end: the last thing written blanks the line.
		if !strings.HasSuffix(term, "\r") {
			t.Errorf("cowfs %s: bar not cleared at the end: %q", tc.cmd, term)
		} else if last := term[strings.LastIndex(term[:len(term)-1], "\r"):]; strings.Trim(last, "\r ") != "" {
			t.Errorf("cowfs %s: bar not cleared at the end: %q", tc.cmd, term)
		}
		if strings.Contains(out, "\r") {
			t.Errorf("cowfs %s: bar on stdout: %q", tc.cmd, out)
		}

		out, term, status = cliOnTerminal(t, tc.cmd, "--json", "--store", dir)
		if status != 0 || !strings.HasPrefix(out, "{") || term != "" {
			t.Errorf("cowfs %s --json: status %d, terminal shows %q", tc.cmd, status, term)
		}
	}
}
