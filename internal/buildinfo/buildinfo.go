// Package buildinfo says which build of fednode is running: the version
// the release build stamped into the binary, else the one the Go toolchain
// recorded, the Go version, and the VCS revision and commit time when the
// binary was built from a checkout. `fednode --version` prints it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set by the release builds (make build, the Dockerfile):
//
//	go build -ldflags "-X github.com/fednode/fednode/internal/buildinfo.version=v1.2.3"
var version string

// Info is what is known of this binary's build. Empty fields are unknown.
type Info struct {
	Version    string // the stamped version, else the module's, else "(devel)"
	GoVersion  string // the toolchain that built it, e.g. go1.26.11
	Platform   string // GOOS/GOARCH
	Revision   string // vcs.revision
	CommitTime string // vcs.time: when that revision was committed (RFC 3339)
	Modified   bool   // vcs.modified: built from a work tree with changes
}

// Read returns this binary's build information.
func Read() Info {
	i := Info{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		i = fromBuildInfo(i, bi)
	}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	return i
}

// fromBuildInfo fills in what the Go toolchain recorded; the stamped
// version wins over the module's.
func fromBuildInfo(i Info, bi *debug.BuildInfo) Info {
	if i.Version == "" && bi.Main.Version != "" {
		i.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.CommitTime = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// Format is the human form `--version` prints: the program and version on
// the first line, then one "key: value" line per known fact.
func (i Info) Format(program string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", program, i.Version)
	fmt.Fprintf(&b, "go: %s %s\n", i.GoVersion, i.Platform)
	if i.Revision != "" {
		rev := i.Revision
		if i.Modified {
			rev += " (modified)"
		}
		fmt.Fprintf(&b, "revision: %s\n", rev)
	}
	if i.CommitTime != "" {
		fmt.Fprintf(&b, "commit time: %s\n", i.CommitTime)
	}
	return b.String()
}
