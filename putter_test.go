package cowfs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
	"github.com/cowfs/cowfs/store/storetest"
)

// TestPutter: blobs are stored many at once and their IDs come back in
// the order added.
func TestPutter(t *testing.T) {
	st := storetest.NewSlow(mem.New(), storetest.Latency{Put: 10 * time.Millisecond})
	p := newPutter(context.Background(), st)
	var blobs [][]byte
	for i := range 64 {
		b := randBytes(uint64(i), 1000+i)
		blobs = append(blobs, b)
		p.add(b)
	}
	ids, err := p.wait()
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blobs {
		if ids[i] != store.Sum(b) {
			t.Fatalf("ID %d is not its blob's", i)
		}
	}
	if st.Peak() < putWorkers/2 {
		t.Errorf("at most %d Puts in flight, want up to %d", st.Peak(), putWorkers)
	}
}

// failingPuts fails every Put after the first ok.
type failingPuts struct {
	store.Store
	ok atomic.Int64
}

var errPut = errors.New("put failed")

func (s *failingPuts) Put(ctx context.Context, b []byte) (store.ID, error) {
	if s.ok.Add(-1) < 0 {
		return store.ID{}, errPut
	}
	return s.Store.Put(ctx, b)
}

// TestPutterError: after a failed Put, wait returns that error and the
// IDs of exactly the blobs that were stored.
func TestPutterError(t *testing.T) {
	base := mem.New()
	st := &failingPuts{Store: base}
	st.ok.Store(5)
	p := newPutter(context.Background(), st)
	for i := range 40 {
		p.add(randBytes(uint64(i), 2000))
	}
	ids, err := p.wait()
	if !errors.Is(err, errPut) {
		t.Fatalf("wait: %v, want the Put's error", err)
	}
	stored := 0
	for _, id := range ids {
		if !id.IsZero() {
			stored++
			if _, err := base.Stat(context.Background(), id); err != nil {
				t.Errorf("returned ID %s is not stored: %v", id.Short(), err)
			}
		}
	}
	u, _ := base.Usage(context.Background())
	if stored != 5 || u.Blobs != 5 {
		t.Errorf("%d IDs returned, %d blobs stored; want 5 and 5", stored, u.Blobs)
	}
}
