package cdc

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	buf := make([]byte, n)
	rand.NewChaCha8(s).Read(buf)
	return buf
}

var (
	data64Once sync.Once
	data64     []byte
)

// random64MiB returns a shared 64 MiB random buffer. Callers must not modify it.
func random64MiB() []byte {
	data64Once.Do(func() { data64 = randomBytes(1, 64<<20) })
	return data64
}

// chunkAll splits data into chunks with Cut and returns the chunk lengths.
// It checks the contract of every single Cut call.
func chunkAll(tb testing.TB, data []byte) []int {
	tb.Helper()
	var lens []int
	for len(data) > 0 {
		n, found := Cut(data)
		checkCut(tb, data, n, found)
		lens = append(lens, n)
		data = data[n:]
		if !found && len(data) != 0 {
			tb.Fatalf("Cut returned found=false with %d bytes left over", len(data))
		}
	}
	return lens
}

// checkCut fails unless (n, found) is an answer Cut may give for data.
func checkCut(tb testing.TB, data []byte, n int, found bool) {
	tb.Helper()
	switch {
	case found && (n < MinSize || n > MaxSize || n > len(data)):
		tb.Fatalf("Cut(len %d) = (%d, true): want MinSize <= n <= min(MaxSize, len)", len(data), n)
	case !found && len(data) >= MaxSize:
		tb.Fatalf("Cut(len %d) = (%d, false): want found with len >= MaxSize", len(data), n)
	case !found && n != len(data):
		tb.Fatalf("Cut(len %d) = (%d, false): want n = len(data)", len(data), n)
	}
}

func TestDeterministic(t *testing.T) {
	data := random64MiB()
	a := chunkAll(t, data)
	b := chunkAll(t, slices.Clone(data))
	if !slices.Equal(a, b) {
		t.Fatalf("two runs over the same data gave different chunks")
	}
	if len(a) < 2 {
		t.Fatalf("64 MiB gave %d chunks", len(a))
	}
}

// TestFormatStable pins the gear table and the boundaries of a fixed input.
// The chunk boundaries are part of the on-disk format (they decide what
// deduplicates across versions); if this test fails, the format changed.
func TestFormatStable(t *testing.T) {
	h := sha256.New()
	for _, v := range gear {
		var b [8]byte
		for i := range b {
			b[i] = byte(v >> (8 * i))
		}
		h.Write(b[:])
	}
	if got, want := h.Sum(nil), goldenGearSHA256; !bytes.Equal(got, want[:]) {
		t.Errorf("gear table SHA-256 = %x, want %x", got, want)
	}
	// Input from a SplitMix64 stream (independent of math/rand).
	data := make([]byte, 4<<20)
	s := uint64(42)
	for i := 0; i < len(data); i += 8 {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		for j := range 8 {
			data[i+j] = byte(z >> (8 * j))
		}
	}
	if got := chunkAll(t, data); !slices.Equal(got, goldenLens) {
		t.Errorf("chunk lengths = %#v\nwant %#v", got, goldenLens)
	}
}

var goldenGearSHA256 = [32]byte{
	0x4a, 0x9d, 0x88, 0x1a, 0x8b, 0x28, 0x2e, 0x37, 0xc4, 0x04, 0x68, 0x65, 0x52, 0xb4, 0xcf, 0xc9, 0x8e, 0xed, 0x1e, 0x9a, 0xe5, 0xeb, 0xba, 0xc3, 0xac, 0xdc, 0xf6, 0x3a, 0x5a, 0xf6, 0x5d, 0xc0,
}

// goldenLens are the chunk lengths of the 4 MiB input of TestFormatStable.
var goldenLens = []int{
	132354, 84806, 28811, 139603, 79712, 62211, 56832, 91120, 68860, 76064, 128086, 69715, 77938, 66591, 97485, 87094, 70204, 72615, 73881, 65743, 85977, 51909, 96232, 31633, 74660, 91001, 65954, 102441, 85359, 71213, 51452, 70891, 18031, 83551, 83764, 68457, 67392, 96993, 75994, 71713, 89784, 56014, 75684, 110872, 71866, 59817, 109612, 85143, 69187, 41705, 67754, 83945, 57084, 113681, 27814,
}

func TestChunkBounds(t *testing.T) {
	data := random64MiB()
	lens := chunkAll(t, data)
	for i, n := range lens {
		if i == len(lens)-1 {
			if n < 1 || n > MaxSize {
				t.Errorf("final chunk %d has length %d", i, n)
			}
			continue
		}
		if n < MinSize || n > MaxSize {
			t.Errorf("chunk %d has length %d, want in [%d, %d]", i, n, MinSize, MaxSize)
		}
	}
	// The chunks, copied out and concatenated, give back the input.
	out := make([]byte, 0, len(data))
	off := 0
	for _, n := range lens {
		out = append(out, data[off:off+n]...)
		off += n
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("concatenated chunks (%d bytes) differ from the input (%d bytes)", len(out), len(data))
	}
}

// TestCutDependsOnlyOnPrefix checks that a cut at n is decided by data[:n]
// alone: cutting data[:n] finds the same cut, replacing everything after n by
// other bytes keeps it, and no shorter prefix reports a cut.
func TestCutDependsOnlyOnPrefix(t *testing.T) {
	data := random64MiB()[:16<<20]
	rng := rand.New(rand.NewPCG(3, 4))
	junk := randomBytes(99, MaxSize)
	contentDefined := 0
	for len(data) >= MaxSize {
		n, found := Cut(data)
		if !found {
			t.Fatalf("no cut in %d bytes", len(data))
		}
		if n2, found2 := Cut(data[:n]); n2 != n || !found2 {
			t.Fatalf("Cut(data) = %d but Cut(data[:%d]) = (%d, %v)", n, n, n2, found2)
		}
		if n < MaxSize {
			contentDefined++
			// A shorter prefix has no cut yet.
			k := MinSize + rng.IntN(n-MinSize)
			if n2, found2 := Cut(data[:k]); found2 || n2 != k {
				t.Fatalf("Cut(data) = %d but Cut(data[:%d]) = (%d, %v)", n, k, n2, found2)
			}
		}
		other := append(slices.Clone(data[:n]), junk[:rng.IntN(len(junk))]...)
		if n2, found2 := Cut(other); n2 != n || !found2 {
			t.Fatalf("Cut(data) = %d but with other bytes after the cut: (%d, %v)", n, n2, found2)
		}
		data = data[n:]
	}
	if contentDefined == 0 {
		t.Fatalf("no content-defined cut found")
	}
}

// TestStreaming feeds data in random-sized pieces to a pending buffer and
// checks that it gives the same chunks as cutting the whole buffer.
func TestStreaming(t *testing.T) {
	data := random64MiB()[:32<<20]
	want := chunkAll(t, data)
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var got []int
		var pending []byte
		for off := 0; off < len(data); {
			// Piece sizes from 1 byte up to 1 MiB, log-uniformly.
			size := 1 + rng.IntN(1<<rng.IntN(21))
			size = min(size, len(data)-off)
			pending = append(pending, data[off:off+size]...)
			off += size
			for {
				n, found := Cut(pending)
				checkCut(t, pending, n, found)
				if !found {
					break
				}
				got = append(got, n)
				pending = pending[n:]
			}
		}
		if len(pending) > 0 {
			got = append(got, len(pending))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: streaming gave %d chunks, whole buffer %d; first difference at %d",
				seed, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestShiftResistance inserts a few bytes near the start and checks that most
// chunks survive unchanged.
func TestShiftResistance(t *testing.T) {
	orig := random64MiB()[:16<<20]
	origLens := chunkAll(t, orig)
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := []int{1, 2, 3, 7, 8, 31, 64, 65, 99, 100}
	if !testing.Short() && !raceEnabled {
		sizes = sizes[:0]
		for k := 1; k <= 100; k++ {
			sizes = append(sizes, k)
		}
	}
	minRatio := 1.0
	for _, k := range sizes {
		pos := rng.IntN(64 << 10)
		ins := randomBytes(uint64(1000+k), k)
		mod := slices.Concat(orig[:pos], ins, orig[pos:])
		// A chunk [a, b) of orig lies unchanged in mod at [a, b) if it ends
		// before the insertion and at [a+k, b+k) if it starts after it, so
		// it appears unchanged exactly when mod has a chunk there. Chunks
		// around the insertion point count as changed.
		type span struct{ a, b int }
		have := make(map[span]bool)
		off := 0
		for _, n := range chunkAll(t, mod) {
			have[span{off, off + n}] = true
			off += n
		}
		if off != len(mod) {
			t.Fatalf("chunks of the modified buffer cover %d of %d bytes", off, len(mod))
		}
		kept := 0
		off = 0
		for _, n := range origLens {
			a, b := off, off+n
			if (b <= pos && have[span{a, b}]) || (a >= pos && have[span{a + k, b + k}]) {
				if !bytes.Equal(orig[a:b], mod[a+k*boolInt(a >= pos):][:n]) {
					t.Fatalf("test bug: chunk [%d, %d) mapped to different bytes", a, b)
				}
				kept += n
			}
			off = b
		}
		ratio := float64(kept) / float64(len(orig))
		minRatio = min(minRatio, ratio)
		if ratio < 0.9 {
			t.Errorf("insert %d bytes at %d: %.1f%% of the bytes in unchanged chunks, want >= 90%%",
				k, pos, 100*ratio)
		}
	}
	t.Logf("%d insertions: at least %.2f%% of the bytes in unchanged chunks", len(sizes), 100*minRatio)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestAverageSize(t *testing.T) {
	data := random64MiB()
	lens := chunkAll(t, data)
	// Leave out the final, possibly short chunk.
	full := len(data) - lens[len(lens)-1]
	avg := float64(full) / float64(len(lens)-1)
	forced := 0
	for _, n := range lens {
		if n == MaxSize {
			forced++
		}
	}
	t.Logf("64 MiB random: %d chunks, average %.0f bytes (%.2f x AvgSize), %d cut at MaxSize",
		len(lens), avg, avg/AvgSize, forced)
	if avg < 0.7*AvgSize || avg > 1.5*AvgSize {
		t.Errorf("average chunk size %.0f, want in [%.0f, %.0f]", avg, 0.7*AvgSize, 1.5*AvgSize)
	}
}

func TestZeros(t *testing.T) {
	data := make([]byte, 4*MaxSize+5)
	lens := chunkAll(t, data)
	want := []int{MaxSize, MaxSize, MaxSize, MaxSize, 5}
	if !slices.Equal(lens, want) {
		t.Errorf("zeros: chunks %v, want %v", lens, want)
	}
	if n, found := Cut(data[:MaxSize-1]); n != MaxSize-1 || found {
		t.Errorf("Cut(MaxSize-1 zeros) = (%d, %v), want (%d, false)", n, found, MaxSize-1)
	}
	if n, found := Cut(data[:MaxSize]); n != MaxSize || !found {
		t.Errorf("Cut(MaxSize zeros) = (%d, %v), want (%d, true)", n, found, MaxSize)
	}
}

func TestTinyInputs(t *testing.T) {
	cases := []struct {
		data  []byte
		n     int
		found bool
	}{
		{nil, 0, false},
		{[]byte{}, 0, false},
		{[]byte{0}, 1, false},
		{[]byte{0xff}, 1, false},
		{randomBytes(8, MinSize), MinSize, false},
		{randomBytes(9, MinSize+1), MinSize + 1, false}, // no cut on this input
	}
	for _, c := range cases {
		if n, found := Cut(c.data); n != c.n || found != c.found {
			t.Errorf("Cut(%d bytes) = (%d, %v), want (%d, %v)", len(c.data), n, found, c.n, c.found)
		}
	}
	// Every length below MinSize, whatever the content.
	rnd := randomBytes(10, MinSize)
	for k := range MinSize + 1 {
		if n, found := Cut(rnd[:k]); n != k || found {
			t.Fatalf("Cut(%d random bytes) = (%d, %v), want (%d, false)", k, n, found, k)
		}
	}
}

func FuzzCut(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("hello"), uint16(3))
	f.Add(bytes.Repeat([]byte{0xab, 0xcd}, 100), uint16(1000))
	f.Fuzz(func(t *testing.T, seed []byte, extra uint16) {
		// Stretch the fuzz input so that cuts are reachable.
		data := bytes.Repeat(seed, 1+(MinSize+int(extra)*8)/(len(seed)+1))
		n, found := Cut(data)
		checkCut(t, data, n, found)
		if found {
			if n2, found2 := Cut(data[:n]); n2 != n || !found2 {
				t.Fatalf("Cut = %d but Cut(data[:%d]) = (%d, %v)", n, n, n2, found2)
			}
		}
	})
}

func BenchmarkCut(b *testing.B) {
	data := random64MiB()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rest := data
		for len(rest) > 0 {
			n, _ := Cut(rest)
			rest = rest[n:]
		}
	}
}
