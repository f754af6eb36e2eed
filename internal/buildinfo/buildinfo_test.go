package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.11",
		Main:      debug.Module{Path: "github.com/fednode/fednode", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.time", Value: "2025-11-27T11:34:00Z"},
			{Key: "vcs.modified", Value: "true"},
			{Key: "-trimpath", Value: "true"},
		},
	}
	t.Run("the module's version when none is stamped", func(t *testing.T) {
		i := fromBuildInfo(Info{Platform: "linux/amd64"}, bi)
		want := "fednode v0.3.0\ngo: go1.26.11 linux/amd64\nrevision: 0123456789abcdef (modified)\ncommit time: 2025-11-27T11:34:00Z\n"
		if got := i.Format("fednode"); got != want {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("the stamped version wins", func(t *testing.T) {
		if i := fromBuildInfo(Info{Version: "v1.0.0"}, bi); i.Version != "v1.0.0" {
			t.Fatalf("version %q", i.Version)
		}
	})
	t.Run("no VCS lines without VCS data", func(t *testing.T) {
		i := fromBuildInfo(Info{}, &debug.BuildInfo{GoVersion: "go1.26.11", Main: debug.Module{Version: "(devel)"}})
		if got := i.Format("fednode"); strings.Contains(got, "revision") || strings.Contains(got, "commit time") {
			t.Fatalf("printed VCS lines it does not have:\n%s", got)
		}
	})
}

func TestReadKnowsTheToolchain(t *testing.T) {
	i := Read()
	if i.Version == "" || i.GoVersion != runtime.Version() || i.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("%+v", i)
	}
}
