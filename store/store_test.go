package store_test

import (
	"math"
	"testing"

	"github.com/cowfs/cowfs/store"
)

// TestStatFSAvail: Avail counts Bavail blocks of Frsize bytes (of Bsize
// when Frsize is 0) and stops at math.MaxInt64.
func TestStatFSAvail(t *testing.T) {
	for _, tc := range []struct {
		s    store.StatFS
		want int64
	}{
		{store.StatFS{Bsize: 4096, Frsize: 1024, Bavail: 3}, 3072},
		{store.StatFS{Bsize: 4096, Bavail: 3}, 12288},
		{store.StatFS{Frsize: 4096}, 0},
		{store.StatFS{Frsize: 4096, Bavail: math.MaxInt64 / 4096}, math.MaxInt64 / 4096 * 4096},
		{store.StatFS{Frsize: 4096, Bavail: math.MaxInt64/4096 + 1}, math.MaxInt64},
		{store.StatFS{Frsize: 1 << 31, Bavail: math.MaxUint64}, math.MaxInt64},
		{store.StatFS{Bavail: 7}, 0}, // no block size: nothing known
	} {
		if got := tc.s.Avail(); got != tc.want {
			t.Errorf("%+v.Avail() = %d, want %d", tc.s, got, tc.want)
		}
	}
}
