package cowfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
	"pgregory.net/rapid"
)

// viewModel is the naive model of TestViewModel: files and views as plain
// byte slices, and each view's set of written pages.
type viewModel struct {
	f     *FS
	vol   *Volume
	files map[string]*File
	data  map[string][]byte
	views []*modelView
}

type modelView struct {
	v     *View
	bytes []byte
	pages map[int64]bool
}

// TestViewModel runs random sequences of file writes and truncations,
// deferred reads, writes into views, write-backs, rereads, releases and
// commits, checking every file and view byte for byte against the model,
// the exact bytes each write-back writes, and the invariant checker after
// every step.
func TestViewModel(t *testing.T) {
	viewModelOn(t, func(*rapid.T) store.Store { return mem.New() })
}

// TestViewModelLocal is TestViewModel on the local store.
func TestViewModelLocal(t *testing.T) { viewModelOn(t, mdlLocalStore) }

// viewModelOn runs the view model on the stores newStore makes, one for
// each check.
func viewModelOn(t *testing.T, newStore func(*rapid.T) store.Store) {
	steps := 40
	if s := os.Getenv("COWFS_MODEL_STEPS"); s != "" {
		fmt.Sscan(s, &steps)
	}
	rapid.Check(t, func(t *rapid.T) {
		f, err := Open(newStore(t), &Options{FlushBytes: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		vol, err := f.CreateVolume("v")
		if err != nil {
			t.Fatal(err)
		}
		m := &viewModel{f: f, vol: vol, files: map[string]*File{}, data: map[string][]byte{}}
		for _, name := range []string{"a", "b"} {
			fl, err := vol.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer fl.Close()
			m.files[name], m.data[name] = fl, nil
		}
		n := rapid.IntRange(1, steps).Draw(t, "steps")
		for range n {
			m.step(t)
			m.check(t)
		}
		for _, mv := range m.views {
			mv.v.Release()
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		m.checkStore(t)
	})
}

func (m *viewModel) file(t *rapid.T) string {
	return rapid.SampledFrom([]string{"a", "b"}).Draw(t, "file")
}

func (m *viewModel) view(t *rapid.T) *modelView {
	if len(m.views) == 0 {
		return nil
	}
	return m.views[rapid.IntRange(0, len(m.views)-1).Draw(t, "view")]
}

// put writes b at off of data, growing it with zeros as a file would.
func put(data []byte, b []byte, off int) []byte {
	if end := off + len(b); end > len(data) {
		data = append(data, make([]byte, end-len(data))...)
	}
	copy(data[off:], b)
	return data
}

func drawBytes(t *rapid.T, max int) []byte {
	n := rapid.IntRange(1, max).Draw(t, "len")
	b := make([]byte, n)
	seed := rapid.Byte().Draw(t, "seed")
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func (m *viewModel) step(t *rapid.T) {
	switch rapid.IntRange(0, 8).Draw(t, "op") {
	case 0: // write into a file
		name := m.file(t)
		b := drawBytes(t, 3*PageSize)
		off := rapid.IntRange(0, len(m.data[name])+PageSize).Draw(t, "off")
		if _, err := m.files[name].WriteAt(b, int64(off)); err != nil {
			t.Fatal(err)
		}
		m.data[name] = put(m.data[name], b, off)
	case 1: // truncate a file
		name := m.file(t)
		size := rapid.IntRange(0, len(m.data[name])+PageSize).Draw(t, "size")
		if err := m.files[name].Truncate(int64(size)); err != nil {
			t.Fatal(err)
		}
		if size <= len(m.data[name]) {
			m.data[name] = m.data[name][:size]
		} else {
			m.data[name] = append(m.data[name], make([]byte, size-len(m.data[name]))...)
		}
	case 2: // deferred read
		name := m.file(t)
		off := rapid.IntRange(0, len(m.data[name])+10).Draw(t, "off")
		n := rapid.IntRange(0, 5*PageSize).Draw(t, "n")
		v, err := m.files[name].ReadDeferred(int64(off), int64(n))
		if err != nil {
			t.Fatal(err)
		}
		var snap []byte
		if off < len(m.data[name]) {
			snap = slices.Clone(m.data[name][off:min(off+n, len(m.data[name]))])
		}
		m.views = append(m.views, &modelView{v: v, bytes: snap, pages: map[int64]bool{}})
	case 3: // write into a view
		mv := m.view(t)
		if mv == nil || len(mv.bytes) == 0 {
			return
		}
		off := rapid.IntRange(0, len(mv.bytes)-1).Draw(t, "off")
		b := drawBytes(t, min(2*PageSize, len(mv.bytes)-off))
		if k, err := mv.v.WriteAt(b, int64(off)); err != nil || k != len(b) {
			t.Fatalf("view write: %d, %v", k, err)
		}
		copy(mv.bytes[off:], b)
		for pg := off / PageSize; pg <= (off+len(b)-1)/PageSize; pg++ {
			mv.pages[int64(pg)] = true
		}
	case 4: // write a view back
		mv := m.view(t)
		if mv == nil {
			return
		}
		name := m.file(t)
		off := rapid.IntRange(0, len(m.data[name])+PageSize).Draw(t, "off")
		written, err := mv.v.WriteTo(m.files[name], int64(off))
		if err != nil {
			t.Fatal(err)
		}
		var want int64
		for pg := range mv.pages {
			want += min(PageSize, int64(len(mv.bytes))-pg*PageSize)
		}
		if written != want {
			t.Fatalf("write-back wrote %d bytes, want %d (the detached pages)", written, want)
		}
		if len(mv.bytes) > 0 {
			m.data[name] = put(m.data[name], mv.bytes, off)
		}
	case 5: // reread over a view
		mv := m.view(t)
		if mv == nil {
			return
		}
		name := m.file(t)
		off := rapid.IntRange(0, len(m.data[name])+10).Draw(t, "off")
		if err := mv.v.Reread(m.files[name], int64(off)); err != nil {
			t.Fatal(err)
		}
		n := len(mv.bytes)
		mv.bytes, mv.pages = nil, map[int64]bool{}
		if off < len(m.data[name]) {
			mv.bytes = slices.Clone(m.data[name][off:min(off+n, len(m.data[name]))])
		}
	case 6: // release a view
		mv := m.view(t)
		if mv == nil {
			return
		}
		mv.v.Release()
		m.views = slices.DeleteFunc(m.views, func(x *modelView) bool { return x == mv })
	default:
		if err := m.f.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// check compares every file and view with the model, and runs the
// invariant checker.
func (m *viewModel) check(t *rapid.T) {
	for name, want := range m.data {
		got := make([]byte, len(want)+1)
		n, _ := m.files[name].ReadAt(got, 0)
		if !bytes.Equal(got[:n], want) {
			t.Fatalf("file %s: %d bytes differ from the model's %d", name, n, len(want))
		}
	}
	for i, mv := range m.views {
		if mv.v.Len() != int64(len(mv.bytes)) {
			t.Fatalf("view %d: length %d, model %d", i, mv.v.Len(), len(mv.bytes))
		}
		got := make([]byte, len(mv.bytes))
		if n, err := mv.v.ReadAt(got, 0); n != len(got) || (err != nil && len(got) > 0) {
			t.Fatalf("view %d: read %d, %v", i, n, err)
		}
		if !bytes.Equal(got, mv.bytes) {
			t.Fatalf("view %d differs from the model", i)
		}
		var pages []int64
		for pg := range mv.pages {
			pages = append(pages, pg)
		}
		slices.Sort(pages)
		if d := mv.v.Detached(); !slices.Equal(d, pages) {
			t.Fatalf("view %d: detached pages %v, model %v", i, d, pages)
		}
	}
	m.checkStore(t)
}

func (m *viewModel) checkStore(t *rapid.T) {
	rep, err := m.f.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
}
