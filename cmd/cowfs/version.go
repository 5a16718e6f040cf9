package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionCommand is `cowfs version`, the same as `cowfs --version`.
func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version of cowfs (also cowfs --version)",
		Long: "version prints the module version of this cowfs binary and the revision of\n" +
			"the source it was built from, as the Go toolchain recorded them: \"devel\"\n" +
			"for a build that recorded no version, and no revision when none was\n" +
			"recorded (a build outside a git checkout, or with -buildvcs=false).",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintln(c.OutOrStdout(), version())
			return nil
		},
	}
}

// version returns the version line of this binary, from its build
// information.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return versionOf(nil)
	}
	return versionOf(info)
}

// versionOf formats a version line from build information (nil if none):
// "cowfs VERSION", then " (revision REV)" if the VCS revision is known, with
// ", modified" if the work tree had changes. VERSION is the main module's
// version, or "devel" if the build recorded none. Nothing else of info
// shows: no path of the machine that built it.
func versionOf(info *debug.BuildInfo) string {
	v := "devel"
	if info != nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	line := "cowfs " + v
	var rev, modified string
	if info != nil {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	if rev != "" {
		line += " (revision " + rev
		if modified == "true" {
			line += ", modified"
		}
		line += ")"
	}
	return line
}
