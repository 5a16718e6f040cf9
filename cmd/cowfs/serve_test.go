package main

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"9fans.net/go/plan9"
	"9fans.net/go/plan9/client"
)

// startServe runs `cowfs serve --store store --listen addr` and returns once
// it says it is ready.
func startServe(t *testing.T, store, addr string) *daemon {
	t.Helper()
	return startDaemon(t, "serve", "--store", store, "--listen", addr)
}

// freeAddr returns a loopback TCP address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServe writes a file over 9P, stops the server with SIGTERM (exit 0),
// and reads the file back from a new server on the same store, over a unix
// socket this time.
func TestServe(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	addr := freeAddr(t)
	cmd := startServe(t, store, addr)
	c, err := client.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := c.Attach(nil, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	fid, err := fsys.Create("kept", plan9.OWRITE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fid.Write([]byte("over 9P")); err != nil {
		t.Fatal(err)
	}
	fid.Close()
	c.Close()
	cmd.cmd.Process.Signal(syscall.SIGTERM)
	if status := cmd.wait(t); status != 0 {
		t.Fatalf("cowfs serve exited with %d after SIGTERM\n%s", status, cmd.stderr)
	}
	sock := filepath.Join(t.TempDir(), "9p.sock")
	startServe(t, store, sock)
	c, err = client.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fsys, err = c.Attach(nil, "root", "main")
	if err != nil {
		t.Fatal(err)
	}
	fid, err = fsys.Open("kept", plan9.OREAD)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(fid)
	fid.Close()
	if err != nil || string(got) != "over 9P" {
		t.Errorf("after restart: %q, %v", got, err)
	}
}

// TestServeRefusesOpenAddress: a non-loopback address needs the explicit
// flag.
func TestServeRefusesOpenAddress(t *testing.T) {
	_, errs, status := cli(t, "serve", "--store", "mem:", "--listen", "0.0.0.0:5640")
	if status != exitUsage || !strings.Contains(errs, "unauthenticated") {
		t.Errorf("status %d, %q", status, errs)
	}
}
