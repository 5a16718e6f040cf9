package store

import "fmt"

// CheckBatch validates b against the state of a store, as a backend's Commit
// must before it changes anything: every rule of Batch and RootSwap, in one
// place, so that every backend refuses the same batches with the same
// errors. It checks Refs, then Delete, then the names and targets of Roots,
// and only then the roots' expected values, so an error wrapping ErrConflict
// means the batch was otherwise valid.
//
// blob returns the committed count of a stored blob (0 for one Put and not
// yet named by a commit) and true, or false for a blob not stored; root
// returns the ID a root is bound to now, the zero ID if it does not exist.
// An error of either is returned as it is. The errors CheckBatch makes start
// with prefix (the backend's name, as "mem") and wrap ErrNotFound,
// ErrInvalid or ErrConflict.
func CheckBatch(prefix string, b Batch, blob func(ID) (refs int64, ok bool, err error), root func(name string) (ID, error)) error {
	count := func(id ID) (int64, error) {
		n, ok, err := blob(id)
		if err == nil && !ok {
			err = fmt.Errorf("%s: blob %s: %w", prefix, id.Short(), ErrNotFound)
		}
		return n, err
	}
	for id, d := range b.Refs {
		n, err := count(id)
		if err != nil {
			return err
		}
		if n+d < 0 { // counts are >= 0, so an overflow also wraps below zero
			return fmt.Errorf("%s: blob %s: count %d%+d: %w", prefix, id.Short(), n, d, ErrInvalid)
		}
	}
	deleted := make(map[ID]bool, len(b.Delete))
	for _, id := range b.Delete {
		n, err := count(id)
		if err != nil {
			return err
		}
		if deleted[id] {
			return fmt.Errorf("%s: blob %s deleted twice in one batch: %w", prefix, id.Short(), ErrInvalid)
		}
		if n += b.Refs[id]; n != 0 {
			return fmt.Errorf("%s: delete blob %s with count %d: %w", prefix, id.Short(), n, ErrInvalid)
		}
		deleted[id] = true
	}
	names := make(map[string]bool, len(b.Roots))
	for _, sw := range b.Roots {
		if !ValidRootName(sw.Name) {
			return fmt.Errorf("%s: root name %q: %w", prefix, sw.Name, ErrInvalid)
		}
		if names[sw.Name] {
			return fmt.Errorf("%s: root %q swapped twice in one batch: %w", prefix, sw.Name, ErrInvalid)
		}
		names[sw.Name] = true
		if sw.New.IsZero() {
			continue
		}
		_, ok, err := blob(sw.New)
		if err != nil {
			return err
		}
		if !ok || deleted[sw.New] {
			return fmt.Errorf("%s: root %q: target blob %s does not exist: %w", prefix, sw.Name, sw.New.Short(), ErrInvalid)
		}
	}
	for _, sw := range b.Roots {
		cur, err := root(sw.Name)
		if err != nil {
			return err
		}
		if cur != sw.Old {
			return fmt.Errorf("%s: root %q is %s, batch expects %s: %w", prefix, sw.Name, cur.Short(), sw.Old.Short(), ErrConflict)
		}
	}
	return nil
}
