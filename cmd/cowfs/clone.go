package main

import (
	"fmt"
	"io"
)

// runClone is `cowfs clone SRC DST`: make DST an O(1) copy of the file,
// symlink or directory tree SRC, through the control file of the cowfs
// mount holding both.
func runClone(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("clone", stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cowfs clone SRC DST\n\n"+
			"clone makes DST a copy of the file, symlink or whole directory tree SRC\n"+
			"in O(1), whatever its size: the copy shares all data with SRC until either\n"+
			"is changed. A final symlink SRC is cloned, not followed. SRC and DST must\n"+
			"be in the same cowfs mount; DST must not exist, its directory must.\n")
	}
	rest, err := parseArgs(flags, args, 2, 2)
	if err != nil {
		return err
	}
	src, err := locate(rest[0], false)
	if err != nil {
		return err
	}
	dst, err := locate(rest[1], false)
	if err != nil {
		return err
	}
	if src.root != dst.root {
		return fmt.Errorf("%s and %s are in different cowfs mounts (%s and %s)", src.arg, dst.arg, src.root, dst.root)
	}
	srcRel, err := src.volumePath()
	if err != nil {
		return err
	}
	dstRel, err := dst.volumePath()
	if err != nil {
		return err
	}
	if _, err := ctlExec(src.root, "clone", srcRel, dstRel); err != nil {
		return fmt.Errorf("%s -> %s: %w", src.arg, dst.arg, err)
	}
	return nil
}
