package cowfs

import (
	"context"
	"sync"
)

// fsLock is the FS-wide lock (FS.mu): a mutex that a waiter can give up on.
// A one-slot channel is the semaphore; holding the lock is having put into
// it. It also records the context of the operation that holds it, so that
// store calls made under the lock run with that operation's context.
type fsLock struct {
	once sync.Once
	ch   chan struct{}
	ctx  context.Context // the holder's context; nil: none (Background)
}

// sem returns the semaphore, making it on first use (the zero fsLock is
// an unlocked lock).
func (l *fsLock) sem() chan struct{} {
	l.once.Do(func() { l.ch = make(chan struct{}, 1) })
	return l.ch
}

// Lock takes the lock, waiting as long as it takes. The holder runs with
// context.Background.
func (l *fsLock) Lock() { l.sem() <- struct{}{} }

// LockAs takes the lock, waiting as long as it takes, and records ctx as
// the holder's context.
func (l *fsLock) LockAs(ctx context.Context) {
	l.sem() <- struct{}{}
	l.ctx = ctx
}

// LockContext takes the lock and records ctx as the holder's context, or
// gives up and returns ctx's error when ctx is done first (also when it is
// done already).
func (l *fsLock) LockContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// A free lock is taken without asking for ctx.Done, which may cost
	// something to make (a FUSE request's context starts a watcher).
	select {
	case l.sem() <- struct{}{}:
		l.ctx = ctx
		return nil
	default:
	}
	select {
	case l.sem() <- struct{}{}:
		l.ctx = ctx
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unlock releases the lock. Unlocking a lock that is not held panics,
// as it is an error with sync.Mutex.
func (l *fsLock) Unlock() {
	l.ctx = nil
	select {
	case <-l.sem():
	default:
		panic("cowfs: unlock of unlocked FS lock")
	}
}

// lockOp takes the FS lock for an operation running with ctx: the store
// calls it makes under the lock (through ioCtx) run with ctx. When ctx is
// done before the lock is free it returns an *Error with Errno EINTR.
func (f *FS) lockOp(ctx context.Context) error { return f.lockFor(ctx, "lock", "") }

// lockFor is lockOp naming the operation and path in its error.
func (f *FS) lockFor(ctx context.Context, op, path string) error {
	if err := f.mu.LockContext(ctx); err != nil {
		return wrapIO(op, path, err)
	}
	return nil
}

// unlockOp releases the FS lock taken by lockOp (or by f.mu.Lock).
func (f *FS) unlockOp() { f.mu.Unlock() }

// ioCtx returns the context of the operation that holds the FS lock, for
// the store calls it makes: context.Background when it was taken by
// f.mu.Lock. Only the holder of the lock may call it.
func (f *FS) ioCtx() context.Context {
	if ctx := f.mu.ctx; ctx != nil {
		return ctx
	}
	return context.Background()
}
