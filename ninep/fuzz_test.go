package ninep

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz tests' seeds are the client messages of the trace files; the
// corpus found by fuzzing is kept under testdata/fuzz. Run one with, e.g.,
//
//	go test ./ninep -run XXX -fuzz FuzzUnmarshalLinux -fuzztime 1m

// traceMessages returns the client messages of every trace file.
func traceMessages(f *testing.F) [][]byte {
	files, _ := filepath.Glob("testdata/traces/*.trace")
	var msgs [][]byte
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if hx, ok := strings.CutPrefix(sc.Text(), "> "); ok {
				b, err := hex.DecodeString(hx)
				if err != nil {
					f.Fatal(err)
				}
				msgs = append(msgs, b)
			}
		}
	}
	if len(msgs) == 0 {
		f.Fatal("no trace messages to seed with")
	}
	return msgs
}

// fuzzUnmarshal checks that decoding any bytes in dialect d never panics,
// and that what decodes encodes back to the same bytes.
func fuzzUnmarshal(f *testing.F, d Dialect) {
	for _, m := range traceMessages(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(d, b)
		if err != nil {
			return
		}
		again, err := m.Marshal(d, nil)
		if err != nil {
			t.Fatalf("%v decodes but does not encode: %v", m, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%v: decoded from %x, encodes to %x", m, b, again)
		}
	})
}

func FuzzUnmarshalPlan9(f *testing.F) { fuzzUnmarshal(f, Plan9) }
func FuzzUnmarshalLinux(f *testing.F) { fuzzUnmarshal(f, Linux) }

// fuzzConn is a connection whose client side is a fixed byte stream; the
// server's replies are collected.
type fuzzConn struct {
	io.Reader
	out bytes.Buffer
}

func (c *fuzzConn) Write(b []byte) (int, error) { return c.out.Write(b) }
func (c *fuzzConn) Close() error                { return nil }

// FuzzServe feeds a session that starts with a good Tversion and Tattach
// (the dialect chosen by the first byte) and goes on with arbitrary bytes
// to a server. It must not panic (handler panics are not caught here) and
// every reply must be well-framed and within msize.
func FuzzServe(f *testing.F) {
	msgs := traceMessages(f)
	for i := 0; i+4 <= len(msgs); i += 4 {
		f.Add(byte(i), bytes.Join(msgs[i:i+4], nil))
	}
	catchPanics = false
	defer func() { catchPanics = true }()
	f.Fuzz(func(t *testing.T, which byte, stream []byte) {
		d := Linux
		if which%2 == 1 {
			d = Plan9
		}
		const msize = 8192
		start, _ := (&Msg{Type: Tversion, Tag: NoTag, Msize: msize, Version: d.String()}).Marshal(NoDialect, nil)
		start, _ = (&Msg{Type: Tattach, Afid: NoFid, Uname: "root", NUname: 0}).Marshal(d, start)
		s := newServer(t)
		c := &fuzzConn{Reader: io.MultiReader(bytes.NewReader(start), bytes.NewReader(stream))}
		s.Serve(c)
		out := c.out.Bytes()
		for len(out) > 0 {
			if len(out) < headerSz {
				t.Fatalf("a reply cut short: %x", out)
			}
			n := binary.LittleEndian.Uint32(out)
			if n < headerSz || int(n) > len(out) || n > msize {
				t.Fatalf("a reply of %d bytes (msize %d, %d left)", n, msize, len(out))
			}
			out = out[n:]
		}
	})
}
