package packaging

import (
	"fmt"
	"regexp"
	"strings"
)

// describeRE matches what git describe --tags --always --dirty prints: a
// release tag (digits and dots, optionally after a v) with optionally the
// number of commits since it and the commit, or the commit alone (hex, so a
// tag must have a dot to be told apart from a hash such as 7bf1b90), then
// optionally -dirty.
var describeRE = regexp.MustCompile(
	`^(?:v?(?P<tag>[0-9]+(?:\.[0-9A-Za-z]+)+)(?:-(?P<count>[0-9]+)-g(?P<hash>[0-9a-f]{4,40}))?|(?P<bare>[0-9a-f]{4,40}))(?P<dirty>-dirty)?$`)

// PackageVersion maps a git describe result to an upstream version that
// dpkg and rpm both accept and order the way releases happen:
//
//	v1.2.3               1.2.3
//	v1.2.3-4-gabc1234    1.2.3+git4.abc1234     (after 1.2.3, before 1.2.4)
//	abc1234              0.0.0~git.abc1234      (no tag yet: before any release)
//	...-dirty            ... .dirty appended   (uncommitted changes)
//
// "~" sorts before anything in both dpkg and rpm (4.10 and later), "+" after.
// Anything else, such as the "dev" of a build outside git, is an error:
// a package must say which source it was built from.
func PackageVersion(describe string) (string, error) {
	m := describeRE.FindStringSubmatch(strings.TrimSpace(describe))
	if m == nil {
		return "", fmt.Errorf("cannot derive a package version from %q: build from a git checkout (git describe --tags --always --dirty)", describe)
	}
	group := func(name string) string { return m[describeRE.SubexpIndex(name)] }
	var v string
	switch {
	case group("bare") != "":
		v = "0.0.0~git." + group("bare")
	case group("count") != "":
		v = group("tag") + "+git" + group("count") + "." + group("hash")
	default:
		v = group("tag")
	}
	if group("dirty") != "" {
		if strings.ContainsAny(v, "+~") {
			v += ".dirty"
		} else {
			v += "+dirty"
		}
	}
	return v, nil
}
