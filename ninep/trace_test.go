package ninep

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"9fans.net/go/plan9"
)

// Trace-replay tests: testdata/traces/*.trace hold exact message
// exchanges, a line "> HEX" per message the client sends and "< HEX" per
// reply the server must send, byte for byte, each after a "#" line that
// decodes it. TestTraceReplay replays every file against a fresh server
// (in-memory store, fixed clock). The scripts below wrote the files; after
// a deliberate protocol change, rewrite them with
//
//	go test ./ninep -run TestTraceReplay -update-traces
//
// and review the decoded lines of the diff.
var updateTraces = flag.Bool("update-traces", false, "rewrite testdata/traces from the scripts")

// traceScript sends messages through send (raw bytes) or call (a message
// to encode in the dialect negotiated so far).
type traceScript func(call func(*Msg), send func([]byte))

var traceScripts = map[string]traceScript{
	// A 9P2000.L session as Linux's v9fs or diod's tools run it: files,
	// directories, links, attributes, extended attributes, renames.
	"linux-session": func(call func(*Msg), send func([]byte)) {
		call(&Msg{Type: Tversion, Tag: NoTag, Msize: 8192, Version: "9P2000.L"})
		call(&Msg{Type: Tauth, Afid: 0, NUname: 0})
		call(&Msg{Type: Tattach, Fid: 0, Afid: NoFid, Aname: "main", NUname: 0})
		call(&Msg{Type: Twalk, Tag: 1, Fid: 0, Newfid: 1})
		call(&Msg{Type: Tlcreate, Tag: 1, Fid: 1, Name: "hello", Flags: syscall.O_RDWR, Mode: 0o640, Gid: 0})
		call(&Msg{Type: Twrite, Tag: 1, Fid: 1, Offset: 0, Data: []byte("hello, world\n")})
		call(&Msg{Type: Tread, Tag: 1, Fid: 1, Offset: 7, Count: 100})
		call(&Msg{Type: Tsetattr, Tag: 1, Fid: 1, Attr: Attr{Valid: setattrSize, Size: 5}})
		call(&Msg{Type: Tgetattr, Tag: 1, Fid: 1, Mask: attrBasic})
		call(&Msg{Type: Tfsync, Tag: 1, Fid: 1})
		call(&Msg{Type: Tclunk, Tag: 1, Fid: 1})
		call(&Msg{Type: Tmkdir, Tag: 2, Dfid: 0, Name: "dir", Mode: 0o755, Gid: 0})
		call(&Msg{Type: Tsymlink, Tag: 2, Fid: 0, Name: "link", Target: "hello", Gid: 0})
		call(&Msg{Type: Twalk, Tag: 2, Fid: 0, Newfid: 2, Names: []string{"link"}})
		call(&Msg{Type: Treadlink, Tag: 2, Fid: 2})
		call(&Msg{Type: Twalk, Tag: 2, Fid: 0, Newfid: 3, Names: []string{"hello"}})
		call(&Msg{Type: Tlink, Tag: 2, Dfid: 0, Fid: 3, Name: "hard"})
		call(&Msg{Type: Txattrcreate, Tag: 3, Fid: 3, Name: "user.color", Size: 4})
		call(&Msg{Type: Twrite, Tag: 3, Fid: 3, Data: []byte("blue")})
		call(&Msg{Type: Tclunk, Tag: 3, Fid: 3})
		call(&Msg{Type: Txattrwalk, Tag: 3, Fid: 0, Newfid: 4, Name: ""})
		call(&Msg{Type: Tclunk, Tag: 3, Fid: 4})
		call(&Msg{Type: Twalk, Tag: 3, Fid: 0, Newfid: 4, Names: []string{"hard"}})
		call(&Msg{Type: Txattrwalk, Tag: 3, Fid: 4, Newfid: 5, Name: "user.color"})
		call(&Msg{Type: Tread, Tag: 3, Fid: 5, Count: 100})
		call(&Msg{Type: Txattrwalk, Tag: 3, Fid: 4, Newfid: 6, Name: "user.none"})
		call(&Msg{Type: Trenameat, Tag: 4, Fid: 0, Name: "hard", Dfid: 0, NewName: "moved"})
		call(&Msg{Type: Tgetattr, Tag: 4, Fid: 4, Mask: attrBasic}) // follows the rename
		call(&Msg{Type: Twalk, Tag: 4, Fid: 0, Newfid: 6, Names: []string{"dir", "..", "missing"}})
		call(&Msg{Type: Twalk, Tag: 4, Fid: 0, Newfid: 6})
		call(&Msg{Type: Tlopen, Tag: 4, Fid: 6, Flags: syscall.O_RDONLY | syscall.O_DIRECTORY})
		call(&Msg{Type: Treaddir, Tag: 4, Fid: 6, Offset: 0, Count: 8000})
		call(&Msg{Type: Treaddir, Tag: 4, Fid: 6, Offset: 2, Count: 60})
		call(&Msg{Type: Treaddir, Tag: 4, Fid: 6, Offset: 6, Count: 8000})
		call(&Msg{Type: Tunlinkat, Tag: 5, Fid: 0, Name: "dir"})
		call(&Msg{Type: Tunlinkat, Tag: 5, Fid: 0, Name: "dir", Flags: atRemoveDir})
		call(&Msg{Type: Tremove, Tag: 5, Fid: 2})
		call(&Msg{Type: Tclunk, Tag: 5, Fid: 6})
		call(&Msg{Type: Tclunk, Tag: 5, Fid: 0})
	},
	// A 9P2000 session as Plan 9 or 9fans.net/go/plan9/client runs it.
	"plan9-session": func(call func(*Msg), send func([]byte)) {
		call(&Msg{Type: Tversion, Tag: NoTag, Msize: 8192, Version: "9P2000"})
		call(&Msg{Type: Tauth, Afid: 0, Uname: "root"})
		call(&Msg{Type: Tattach, Fid: 0, Afid: NoFid, Uname: "root", Aname: ""})
		call(&Msg{Type: Twalk, Tag: 1, Fid: 0, Newfid: 1})
		call(&Msg{Type: Tcreate, Tag: 1, Fid: 1, Name: "notes", Perm: 0o644, OMode: 2})
		call(&Msg{Type: Twrite, Tag: 1, Fid: 1, Data: []byte("some notes\n")})
		call(&Msg{Type: Tstat, Tag: 1, Fid: 1})
		call(&Msg{Type: Tclunk, Tag: 1, Fid: 1})
		call(&Msg{Type: Twalk, Tag: 2, Fid: 0, Newfid: 1})
		call(&Msg{Type: Tcreate, Tag: 2, Fid: 1, Name: "sub", Perm: 0x80000000 | 0o750, OMode: 0})
		call(&Msg{Type: Tclunk, Tag: 2, Fid: 1})
		call(&Msg{Type: Twalk, Tag: 3, Fid: 0, Newfid: 2, Names: []string{"notes"}})
		// wstat: rename to "renamed", length 4, everything else untouched.
		null := wstatNull()
		null.Name, null.Length = "renamed", 4
		st, _ := null.Bytes()
		call(&Msg{Type: Twstat, Tag: 3, Fid: 2, Stat: st})
		call(&Msg{Type: Topen, Tag: 3, Fid: 2, OMode: 0})
		call(&Msg{Type: Tread, Tag: 3, Fid: 2, Count: 100})
		call(&Msg{Type: Twalk, Tag: 4, Fid: 0, Newfid: 3})
		call(&Msg{Type: Topen, Tag: 4, Fid: 3, OMode: 0})
		call(&Msg{Type: Tread, Tag: 4, Fid: 3, Count: 8000})
		call(&Msg{Type: Tread, Tag: 4, Fid: 3, Offset: 5, Count: 8000}) // a bad offset
		call(&Msg{Type: Twalk, Tag: 5, Fid: 0, Newfid: 4, Names: []string{".cowfs", "ctl"}})
		call(&Msg{Type: Topen, Tag: 5, Fid: 4, OMode: 2})
		call(&Msg{Type: Twrite, Tag: 5, Fid: 4, Data: []byte("clone renamed copy\n")})
		call(&Msg{Type: Twrite, Tag: 5, Fid: 4, Data: []byte("clone missing copy2\n")})
		call(&Msg{Type: Tread, Tag: 5, Fid: 4, Count: 200})
		call(&Msg{Type: Tremove, Tag: 6, Fid: 2})
		call(&Msg{Type: Tclunk, Tag: 6, Fid: 2})
	},
	// Bad input: the server answers each message with an error and goes on,
	// until a size field under 7 breaks the framing.
	"bad-input": func(call func(*Msg), send func([]byte)) {
		send(msg(Tattach, 1, u32(0), u32(NoFid), []byte{0, 0, 0, 0}))
		call(&Msg{Type: Tversion, Tag: NoTag, Msize: 100, Version: "9P2000.L"})
		call(&Msg{Type: Tversion, Tag: NoTag, Msize: 8192, Version: "9P2000.L"})
		send(msg(Tclunk, 2, u32(0), make([]byte, 9000)))
		send(msg(Twalk, 3, u32(0), u32(1), []byte{1, 0, 5, 0, 'a'}))
		send(walk17(strings.Split("abcdefghijklmnopq", "")))
		send(msg(Tstat, 5, u32(0)))
		send(msg(Rlerror, 6, u32(2)))
		call(&Msg{Type: Tattach, Tag: 7, Fid: 0, Afid: NoFid, Aname: "main", NUname: 0})
		call(&Msg{Type: Tattach, Tag: 8, Fid: 0, Afid: NoFid, Aname: "main", NUname: 0})
		call(&Msg{Type: Tattach, Tag: 8, Fid: 1, Afid: NoFid, Aname: "nosuchvolume", NUname: 0})
		call(&Msg{Type: Tread, Tag: 9, Fid: 0, Count: 10})
		call(&Msg{Type: Twalk, Tag: 10, Fid: 0, Newfid: 0, Names: []string{".cowfs", "nothing"}})
		send([]byte{6, 0, 0, 0, Tclunk, 11})
	},
}

// TestTraceReplay replays every trace file byte for byte.
func TestTraceReplay(t *testing.T) {
	if *updateTraces {
		for name, script := range traceScripts {
			writeTrace(t, name, script)
		}
	}
	files, _ := filepath.Glob("testdata/traces/*.trace")
	if len(files) < len(traceScripts) {
		t.Fatalf("%d trace files for %d scripts: run with -update-traces", len(files), len(traceScripts))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".trace"), func(t *testing.T) { replay(t, file) })
	}
}

// wstatNull is a Twstat record that changes nothing.
func wstatNull() *plan9.Dir {
	var d plan9.Dir
	d.Null()
	return &d
}

// writeTrace runs a script against a fresh server and records the exchange.
func writeTrace(t *testing.T, name string, script traceScript) {
	r := dial(t, newServer(t))
	var out bytes.Buffer
	fmt.Fprintf(&out, "# %s: written by TestTraceReplay's script; replayed byte for byte.\n", name)
	record := func(dir string, d Dialect, b []byte) {
		m, err := Unmarshal(d, b)
		if err != nil {
			fmt.Fprintf(&out, "# %s (malformed: %v)\n", dir, err)
		} else {
			fmt.Fprintf(&out, "# %s %v\n", dir, m)
		}
		fmt.Fprintf(&out, "%s %x\n", dir, b)
	}
	exchange := func(b []byte) {
		d := r.dialect
		if d == NoDialect {
			d = Plan9
		}
		record(">", d, b)
		r.send(b)
		if b[0] < headerSz && b[1]|b[2]|b[3] == 0 {
			r.closed()
			fmt.Fprintf(&out, "# the server ends the conversation\n= closed\n")
			return
		}
		rep := r.recv()
		if rep[4] == Rversion {
			m, _ := Unmarshal(NoDialect, rep)
			switch m.Version {
			case "9P2000.L":
				r.dialect = Linux
			case "9P2000":
				r.dialect = Plan9
			}
		}
		record("<", r.dialect, rep)
	}
	script(func(m *Msg) {
		d := r.dialect
		if d == NoDialect {
			d = Plan9
		}
		b, err := m.Marshal(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		exchange(b)
	}, exchange)
	if err := os.MkdirAll("testdata/traces", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata/traces", name+".trace"), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replay sends a trace's client messages to a fresh server and compares
// every reply byte for byte.
func replay(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := dial(t, newServer(t))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	line, lastSent := 0, ""
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" || text[0] == '#' {
			continue
		}
		if text == "= closed" {
			if err := r.closed(); !errors.Is(err, errFraming) {
				t.Fatalf("%s:%d: Serve returned %v, want a framing error", file, line, err)
			}
			continue
		}
		dir, hx, ok := strings.Cut(text, " ")
		b, err := hex.DecodeString(hx)
		if !ok || err != nil || (dir != ">" && dir != "<") {
			t.Fatalf("%s:%d: bad line", file, line)
		}
		if dir == ">" {
			r.send(b)
			lastSent = hx
			continue
		}
		if got := r.recv(); !bytes.Equal(got, b) {
			gm, _ := Unmarshal(Linux, got)
			wm, _ := Unmarshal(Linux, b)
			t.Fatalf("%s:%d: after %s\ngot  %x (%v)\nwant %x (%v)", file, line, lastSent, got, gm, b, wm)
		}
	}
}
