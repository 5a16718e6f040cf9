package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBar(w *bytes.Buffer) (*progressBar, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	p := newProgressOn(w, "fsck", "blobs")
	p.now = clock.now
	return p, clock
}

func TestProgressDrawsInPlace(t *testing.T) {
	var w bytes.Buffer
	p, _ := newTestBar(&w)
	p.Update(25, 100)
	want := "\rfsck [######..................]  25% 25/100 blobs"
	if w.String() != want {
		t.Fatalf("first draw %q, want %q", w.String(), want)
	}
	if strings.Contains(w.String(), "\n") {
		t.Fatalf("a progress bar must not start new lines: %q", w.String())
	}
}

func TestProgressThrottles(t *testing.T) {
	var w bytes.Buffer
	p, clock := newTestBar(&w)
	draws := func() int { return strings.Count(w.String(), "\r") }

	// 1000 updates over one simulated second: about 10 draws, not 1000.
	for i := range 1000 {
		p.Update(int64(i), 2000)
		clock.advance(time.Millisecond)
	}
	if n := draws(); n < 9 || n > 11 {
		t.Fatalf("%d draws for 1000 updates in 1 s, want about 10", n)
	}
	// An update within the interval is dropped...
	before := draws()
	p.Update(1001, 2000)
	clock.advance(progressInterval / 2)
	p.Update(1002, 2000)
	if draws() > before+1 {
		t.Fatalf("two draws within %v", progressInterval)
	}
	// ... but the one that reaches the total is always drawn.
	before = draws()
	p.Update(2000, 2000)
	if draws() != before+1 || !strings.HasSuffix(w.String(), "100% 2000/2000 blobs") {
		t.Fatalf("final update not drawn: %q", w.String())
	}
}

func TestProgressDoneClearsLine(t *testing.T) {
	var w bytes.Buffer
	p, _ := newTestBar(&w)
	p.Update(1, 3)
	line := strings.TrimPrefix(w.String(), "\r")
	w.Reset()
	p.Done()
	want := "\r" + strings.Repeat(" ", len(line)) + "\r"
	if w.String() != want {
		t.Fatalf("Done wrote %q, want %q", w.String(), want)
	}
	// Nothing drawn, nothing to clear.
	w.Reset()
	p.Done()
	if w.Len() != 0 {
		t.Fatalf("second Done wrote %q", w.String())
	}
}

func TestProgressShorterLineErasesLonger(t *testing.T) {
	var w bytes.Buffer
	p, clock := newTestBar(&w)
	p.Update(5, 1_000_000)
	long := len(strings.TrimPrefix(w.String(), "\r"))
	w.Reset()
	clock.advance(time.Second)
	p.Note("compacting")
	got := w.String()
	if !strings.HasPrefix(got, "\rfsck: compacting") {
		t.Fatalf("note drew %q", got)
	}
	// Spaces over the rest of the longer line, then back.
	pad := long - len("fsck: compacting")
	if !strings.HasSuffix(got, strings.Repeat(" ", pad)+strings.Repeat("\b", pad)) {
		t.Fatalf("note did not erase the longer line: %q", got)
	}
}

func TestProgressClampsAndTruncates(t *testing.T) {
	var w bytes.Buffer
	p, _ := newTestBar(&w)
	p.maxWidth = 20
	p.Update(150, 100) // more done than the total: shown as full
	if got := strings.TrimPrefix(w.String(), "\r"); len(got) != 20 || !strings.HasPrefix(got, "fsck [#####") {
		t.Fatalf("drew %q, want 20 columns of a full bar", got)
	}
}

func TestProgressNilAndNotTerminal(t *testing.T) {
	var none *progressBar
	none.Update(1, 2) // must not panic
	none.Note("x")
	none.Done()

	var buf bytes.Buffer
	if p := newProgress(&buf, "fsck", "blobs", false); p != nil {
		t.Fatal("a progress bar on a buffer")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := newProgress(f, "fsck", "blobs", false); p != nil {
		t.Fatal("a progress bar on a regular file")
	}
	if _, ok := terminalFd(f); ok {
		t.Fatal("a regular file taken for a terminal")
	}
}
