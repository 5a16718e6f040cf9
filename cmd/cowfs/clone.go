package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs/ctl/ctlclient"
)

// cloneCommand is `cowfs clone SRC DST`: make DST an O(1) copy of the file,
// symlink or directory tree SRC, through the control file of the cowfs
// mount holding both.
func cloneCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "clone SRC DST",
		Short: "clone a file or directory tree in a mount, in O(1)",
		Long: "clone makes DST a copy of the file, symlink or whole directory tree SRC\n" +
			"in O(1), whatever its size: the copy shares all data with SRC until either\n" +
			"is changed. A final symlink SRC is cloned, not followed. SRC and DST must\n" +
			"be in the same cowfs mount; DST must not exist, its directory must.",
		Args: argsBetween(2, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			return runClone(args[0], args[1])
		},
	}
}

// runClone clones srcPath to dstPath.
func runClone(srcPath, dstPath string) error {
	src, err := ctlclient.Locate(srcPath, false)
	if err != nil {
		return err
	}
	dst, err := ctlclient.Locate(dstPath, false)
	if err != nil {
		return err
	}
	if src.Mount != dst.Mount {
		return fmt.Errorf("%s and %s are in different cowfs mounts (%s and %s)", src.Arg, dst.Arg, src.Mount.Root, dst.Mount.Root)
	}
	srcRel, err := src.VolumePath()
	if err != nil {
		return err
	}
	dstRel, err := dst.VolumePath()
	if err != nil {
		return err
	}
	if err := src.Mount.Clone(srcRel, dstRel); err != nil {
		return fmt.Errorf("%s -> %s: %w", src.Arg, dst.Arg, err)
	}
	return nil
}
