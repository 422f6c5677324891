// Package version says which build of trunkd or trunkctl is running: the
// module version and the VCS commit from the binary's build information.
package version

import "runtime/debug"

// String is "VERSION (COMMIT[+dirty]) GOVERSION", with what the build
// recorded; `go build` in a git checkout records the commit.
func String() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (built without module information)"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev != "" {
		v += " (" + rev + dirty + ")"
	}
	return v + " " + bi.GoVersion
}
