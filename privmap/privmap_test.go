package privmap

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPrivatePagesAndWriteBack maps a file privately, writes into some
// pages, and checks that exactly those are private, that the file is
// unchanged, and that a write-back makes another file equal to the mapping
// while writing only those pages.
func TestPrivatePagesAndWriteBack(t *testing.T) {
	ps := os.Getpagesize()
	size := 10*ps + 123
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Map(src)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Bytes()
	// Reading pages keeps them the file's.
	var sum byte
	for i := 0; i < size; i += ps {
		sum += b[i]
	}
	_ = sum
	if p, err := m.PrivatePages(); err != nil || len(p) != 0 {
		t.Fatalf("after reads: private pages %v, %v", p, err)
	}
	b[3*ps+5] ^= 0xff
	b[7*ps] ^= 0xff
	b[8*ps-1] ^= 0xff // the last byte of page 7
	b[size-1] ^= 0xff // the short last page, 10
	want := []int64{3, 7, 10}
	if p, err := m.PrivatePages(); err != nil || !slices.Equal(p, want) {
		t.Fatalf("private pages %v, %v; want %v", p, err, want)
	}
	if got, _ := os.ReadFile(src); !bytes.Equal(got, data) {
		t.Fatal("a private mapping changed its file")
	}
	dst, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	written, err := m.WriteBack(dst, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2*ps + 123); written != want {
		t.Errorf("wrote %d bytes, want %d (pages 3, 7 and the last)", written, want)
	}
	if got, _ := os.ReadFile(dst.Name()); !bytes.Equal(got, b) {
		t.Fatal("after write-back the file differs from the mapping")
	}
}
