package fusefs

import (
	"context"
	"sync"
	"time"
)

// interruptGrace is how long an interrupted request may go on waiting (for
// the FS lock or for the store) before it gives up with EINTR.
//
// The kernel interrupts a request whenever a signal reaches its caller,
// and a Go program's preemption signals do, many times a second, to calls
// nobody gave up on: failing those at once would fail a Go program's
// os.Chtimes (which, unlike most of package os, does not retry EINTR) now
// and then for nothing. A request that finishes within the grace answers
// as if it had not been interrupted; one still waiting after it (a read
// stuck on a store that does not answer, a chmod queued behind a long
// commit) answers EINTR, so that ^C ends the program that made it.
var interruptGrace = 50 * time.Millisecond

// call is the context of the engine calls that serve one FUSE request: the
// request's values (the caller, as cowfs.Cred), done when the kernel
// interrupted the request and it has waited interruptGrace since.
//
// It costs nothing while nobody waits: Err reports only what Done's
// watcher decided, and the watcher (a goroutine) starts at the first call
// of Done, which the engine makes only when it has to wait. end, which
// the handler defers, stops the watcher.
type call struct {
	context.Context                 // values only: never done
	interrupt       <-chan struct{} // closed by go-fuse when the kernel interrupts the request
	done            chan struct{}   // closed by the watcher

	mu      sync.Mutex
	watched bool          // the watcher was started
	over    bool          // end was called
	ended   chan struct{} // closed by end when the watcher runs
}

// newCall returns the call for a request with values in vals and go-fuse's
// interrupt channel (the request context's Done).
func newCall(vals context.Context, interrupt <-chan struct{}) *call {
	return &call{Context: vals, interrupt: interrupt, done: make(chan struct{})}
}

// Done returns a channel closed interruptGrace after the request was
// interrupted, starting the watcher that closes it.
func (c *call) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watched && !c.over && c.interrupt != nil {
		c.watched = true
		c.ended = make(chan struct{})
		go c.watch(c.ended)
	}
	return c.done
}

// Err returns context.Canceled once Done is closed.
func (c *call) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// watch closes c.done interruptGrace after the interrupt, unless the
// request ends first.
func (c *call) watch(ended <-chan struct{}) {
	select {
	case <-c.interrupt:
	case <-ended:
		return
	}
	t := time.NewTimer(interruptGrace)
	defer t.Stop()
	select {
	case <-t.C:
		close(c.done)
	case <-ended:
	}
}

// end marks the request served: its watcher, if any, stops.
func (c *call) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over {
		return
	}
	c.over = true
	if c.watched {
		close(c.ended)
	}
}
