package cowfs

import (
	"math"
	"time"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// The range of times cowfs keeps, to the nanosecond: every time.Time whose
// Unix seconds fit in an int64 (about 292 billion years either side of
// 1970; time.Time ends a little sooner, 62,135,596,800 seconds, after
// 1970, and cannot go before the first). Times outside are kept as the
// nearest end.
var (
	MinTime = time.Unix(math.MinInt64, 0).UTC()
	MaxTime = time.Unix(maxUnix, 999_999_999).UTC()
)

// maxUnix is MaxTime's Unix seconds: time.Time counts seconds from year 1
// in an int64.
const maxUnix = math.MaxInt64 - 62_135_596_800

// UnixTime returns the time sec seconds and nsec nanoseconds after
// 1970-01-01T00:00:00Z, as time.Unix does, but kept within MinTime and
// MaxTime: the frontends turn the seconds the kernel or a 9P client sends
// (any int64) into times with it.
func UnixTime(sec, nsec int64) time.Time {
	q, r := nsec/1e9, nsec%1e9
	if r < 0 {
		q, r = q-1, r+1e9
	}
	switch {
	case q > 0 && sec > math.MaxInt64-q:
		return MaxTime
	case q < 0 && sec < math.MinInt64-q:
		return MinTime
	case sec+q > maxUnix:
		return MaxTime
	}
	return time.Unix(sec+q, r)
}

// toTime converts a stored time, keeping it within MaxTime.
func toTime(t dirtree.Time) time.Time { return UnixTime(t.Sec, int64(t.Nsec)) }

// fromTime converts a time to store, keeping it within MinTime.
func fromTime(t time.Time) dirtree.Time {
	if t.Before(MinTime) {
		t = MinTime
	}
	return dirtree.Time{Sec: t.Unix(), Nsec: uint32(t.Nanosecond())}
}
