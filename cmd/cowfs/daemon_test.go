package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is a long-running cowfs command (mount, serve) started by a test.
type daemon struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	stdout []string // the lines printed on stdout: all of them once wait has returned
	exited chan error
}

// startDaemon runs `cowfs args...` and returns once it prints a line ending
// in "ready". The test's cleanup stops it with SIGTERM if the test did not.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = cliEnviron(t)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &daemon{cmd: cmd, stderr: new(bytes.Buffer), exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.stdout = append(p.stdout, sc.Text())
			if strings.HasSuffix(sc.Text(), "ready") {
				select {
				case ready <- sc.Text():
				default: // a second ready line: the test sees it in stdout
				}
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			p.wait(t)
		}
	})
	select {
	case <-ready:
	case err := <-p.exited:
		t.Fatalf("cowfs %s exited before it was ready: %v\n%s", args[0], err, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("cowfs %s not ready after 30 s\n%s", args[0], p.stderr)
	}
	return p
}

// wait waits for the process to exit and returns its exit status.
func (p *daemon) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatalf("%s: %v", p.cmd.Args[1], err)
		}
		return 0
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("%s did not exit within 60 s\n%s", p.cmd.Args[1], p.stderr)
		return -1
	}
}
