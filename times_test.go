package cowfs

import (
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
	"pgregory.net/rapid"
)

// drawTime draws a time in the range cowfs keeps: mostly from 1901 to 2486
// (ext4's and XFS's bigtime range), also at and near both ends and around
// 1970, before it with a fraction of a second included.
func drawTime(t *rapid.T, label string) time.Time {
	nsec := rapid.OneOf(rapid.Just(int64(0)), rapid.Just(int64(999_999_999)), rapid.Int64Range(0, 999_999_999)).Draw(t, label+" ns")
	var sec int64
	switch rapid.IntRange(0, 4).Draw(t, label+" range") {
	case 0, 1: // 1901-12-13T20:45:52Z to 2486-07-02T20:20:15Z
		sec = rapid.Int64Range(-1<<31, 16299260415).Draw(t, label)
	case 2: // around 1970
		sec = rapid.Int64Range(-3, 3).Draw(t, label)
	case 3: // ends of int64 nanoseconds (1677, 2262) and of time.Time
		sec = rapid.SampledFrom([]int64{-9223372037, -9223372036, 9223372035, 9223372036, 9223372037,
			math.MinInt64, math.MinInt64 + 1, maxUnix - 1, maxUnix, -62135596800}).Draw(t, label)
	default:
		sec = rapid.Int64Range(math.MinInt64, maxUnix).Draw(t, label)
	}
	return time.Unix(sec, nsec)
}

// TestTimesRoundTrip: random access and modification times, set through
// Chtimes, Lchtimes, SetTimes and File.SetTimes, and creation times from a
// random clock (ctime and birth time), read back exactly, to the
// nanosecond: at once, from a snapshot, and after a commit and a reopen.
func TestTimesRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		st := mem.New()
		clock := drawTime(rt, "clock")
		f, err := Open(mdlStore{Store: st}, &Options{Now: func() time.Time { return clock }, Atime: Noatime})
		if err != nil {
			rt.Fatal(err)
		}
		v, err := f.CreateVolume("main")
		if err != nil {
			rt.Fatal(err)
		}
		type times struct{ a, m, c, b time.Time }
		want := map[string]*times{}
		for i := range rapid.IntRange(1, 6).Draw(rt, "files") {
			p := fmt.Sprintf("f%d", i)
			clock = drawTime(rt, p+" created")
			must(rt, v.WriteFile(p, []byte(p), 0o644))
			want[p] = &times{clock, clock, clock, clock}
		}
		for range rapid.IntRange(0, 12).Draw(rt, "changes") {
			p := fmt.Sprintf("f%d", rapid.IntRange(0, len(want)-1).Draw(rt, "file"))
			w := want[p]
			at, mt := drawTime(rt, "atime"), drawTime(rt, "mtime")
			setA, setM := rapid.Bool().Draw(rt, "set atime"), rapid.Bool().Draw(rt, "set mtime")
			var ap, mp *time.Time
			if setA {
				ap, w.a = &at, at
			}
			if setM {
				mp, w.m = &mt, mt
			}
			clock = drawTime(rt, "change time")
			w.c = clock
			switch rapid.IntRange(0, 2).Draw(rt, "how") {
			case 0:
				must(rt, v.SetTimes(p, ap, mp))
			case 1:
				h, err := v.OpenFile(p, os.O_RDWR, 0)
				must(rt, err)
				must(rt, h.SetTimes(ap, mp))
				must(rt, h.Close())
			default: // Chtimes: the zero time leaves a time as it is
				if !setA {
					at = time.Time{}
				}
				if !setM {
					mt = time.Time{}
				}
				if at.IsZero() && setA || mt.IsZero() && setM {
					must(rt, v.SetTimes(p, ap, mp))
				} else {
					must(rt, v.Chtimes(p, at, mt))
				}
			}
		}
		check := func(v *Volume, when string) {
			for p, w := range want {
				s := semStatT(rt, v, p)
				for _, c := range []struct {
					name      string
					got, want time.Time
				}{{"atime", s.Atime, w.a}, {"mtime", s.Mtime, w.m}, {"ctime", s.Ctime, w.c}, {"btime", s.Btime, w.b}} {
					if !c.got.Equal(c.want) {
						rt.Fatalf("%s: %s of %s is %v (%d s %d ns), want %v (%d s %d ns)", when, c.name, p,
							c.got, c.got.Unix(), c.got.Nanosecond(), c.want, c.want.Unix(), c.want.Nanosecond())
					}
				}
			}
		}
		check(v, "at once")
		must(rt, v.Snapshot("s"))
		snap, err := v.OpenSnapshot("s")
		must(rt, err)
		check(snap, "in a snapshot")
		must(rt, f.Close())
		f, err = Open(mdlStore{Store: st}, &Options{Atime: Noatime})
		must(rt, err)
		v, err = f.Volume("main")
		must(rt, err)
		check(v, "after reopening")
		rep, err := f.Check(t.Context())
		must(rt, err)
		must(rt, rep.Err())
	})
}

// TestTimesLocalStore: times from 1901 to 2486 and beyond, before 1970 with
// nanoseconds, year 1 (the zero time.Time, which only SetTimes sets) and
// the ends of the range survive closing and reopening a local store; and
// UnixTime keeps what the kernel or a client may send within the range.
func TestTimesLocalStore(t *testing.T) {
	dir := t.TempDir()
	st, err := local.Open(dir, nil)
	must(t, err)
	f, err := Open(st, &Options{Atime: Noatime})
	must(t, err)
	v, err := f.CreateVolume("main")
	must(t, err)
	cases := []struct{ atime, mtime time.Time }{
		{time.Date(1901, 12, 13, 20, 45, 52, 0, time.UTC), time.Date(2486, 7, 2, 20, 20, 15, 999999999, time.UTC)},
		{time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC)},
		{time.Unix(-1, 999999999), time.Unix(0, 0)},
		{time.Time{}, time.Date(1600, 1, 1, 0, 0, 0, 5, time.UTC)},
		{MinTime, MaxTime},
	}
	for i, c := range cases {
		p := fmt.Sprintf("f%d", i)
		must(t, v.WriteFile(p, nil, 0o644))
		must(t, v.SetTimes(p, &c.atime, &c.mtime))
	}
	must(t, f.Close())
	st, err = local.Open(dir, nil)
	must(t, err)
	f, err = Open(st, &Options{Atime: Noatime})
	must(t, err)
	defer f.Close()
	v, err = f.Volume("main")
	must(t, err)
	for i, c := range cases {
		s := semStat(t, v, fmt.Sprintf("f%d", i))
		if !s.Atime.Equal(c.atime) || !s.Mtime.Equal(c.mtime) {
			t.Errorf("f%d after reopening: atime %v mtime %v, want %v %v", i, s.Atime, s.Mtime, c.atime, c.mtime)
		}
	}
	checkClean(t, f)

	for _, c := range []struct {
		sec, nsec int64
		want      time.Time
	}{
		{math.MaxInt64, 0, MaxTime}, {maxUnix + 1, 0, MaxTime}, {maxUnix, 999999999, MaxTime},
		{math.MaxInt64, 2e9, MaxTime}, {math.MinInt64, 0, MinTime}, {math.MinInt64, -1, MinTime},
		{-1, 1e9, time.Unix(0, 0)}, {0, -1, time.Unix(-1, 999999999)},
	} {
		if got := UnixTime(c.sec, c.nsec); !got.Equal(c.want) {
			t.Errorf("UnixTime(%d, %d) = %v, want %v", c.sec, c.nsec, got, c.want)
		}
	}
}

// TestChtimesZero: Chtimes' zero time leaves a time unchanged and is the
// only time it cannot set; 1970-01-01T00:00:00Z and year 1 through
// SetTimes are times like any other.
func TestChtimesZero(t *testing.T) {
	_, _, v := semSetup(t)
	semWrite(t, v, "f", nil)
	epoch, old := time.Unix(0, 0), time.Date(1950, 1, 1, 0, 0, 0, 1, time.UTC)
	semOK(t, "Chtimes(epoch, old)", v.Chtimes("f", epoch, old))
	semOK(t, "Chtimes(zero, zero)", v.Chtimes("f", time.Time{}, time.Time{}))
	if s := semStat(t, v, "f"); !s.Atime.Equal(epoch) || !s.Mtime.Equal(old) {
		t.Fatalf("after Chtimes: atime %v mtime %v, want %v %v", s.Atime, s.Mtime, epoch, old)
	}
	zero := time.Time{}
	semOK(t, "SetTimes(nil, zero)", v.SetTimes("f", nil, &zero))
	if s := semStat(t, v, "f"); !s.Atime.Equal(epoch) || !s.Mtime.Equal(zero) {
		t.Fatalf("after SetTimes: atime %v mtime %v, want %v %v", s.Atime, s.Mtime, epoch, zero)
	}
}

func semStatT(t *rapid.T, v *Volume, p string) *Stat {
	fi, err := v.Lstat(p)
	if err != nil {
		t.Fatalf("Lstat(%q): %v", p, err)
	}
	return fi.Stat()
}
