package packaging

import (
	"os/exec"
	"strings"
	"testing"
)

func TestPackageVersionMapsGitDescribeToVersionsDpkgAndRpmOrderLikeReleases(t *testing.T) {
	tests := []struct {
		name, describe, want string
	}{
		{"a release tag is the version", "v1.2.3", "1.2.3"},
		{"a tag without v is the version too", "0.4.0", "0.4.0"},
		{"commits after a tag sort after it", "v1.2.3-4-gabc1234", "1.2.3+git4.abc1234"},
		{"a dirty release tag is marked", "v1.2.3-dirty", "1.2.3+dirty"},
		{"dirty commits after a tag are marked", "v1.2.3-4-gabc1234-dirty", "1.2.3+git4.abc1234.dirty"},
		{"a commit without any tag sorts before every release", "abc1234", "0.0.0~git.abc1234"},
		{"a commit hash made only of digits is not taken for a tag", "7123456", "0.0.0~git.7123456"},
		{"a hash starting with a digit is not taken for a tag", "7bf1b90-dirty", "0.0.0~git.7bf1b90.dirty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PackageVersion(tt.describe)
			if err != nil || got != tt.want {
				t.Errorf("PackageVersion(%q) = %q, %v; want %q", tt.describe, got, err, tt.want)
			}
		})
	}
}

func TestPackageVersionRefusesWhatIsNotGitDescribe(t *testing.T) {
	for _, describe := range []string{"", "dev", "v1.2.3-4-gXYZ", "1.2.3; rm -rf /", "release-1"} {
		if got, err := PackageVersion(describe); err == nil {
			t.Errorf("PackageVersion(%q) = %q, want an error", describe, got)
		}
	}
}

// dpkg is the reference for ordering; rpm agrees on ~ and + (rpm >= 4.10).
func TestMappedVersionsSortInReleaseOrderForDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	order := []string{"abc1234", "v0.1.0", "v0.1.0-1-gabc1234", "v0.1.0-2-gdef5678", "v0.1.1", "v1.0.0"}
	for i := 1; i < len(order); i++ {
		lo, _ := PackageVersion(order[i-1])
		hi, _ := PackageVersion(order[i])
		if out, err := exec.Command("dpkg", "--compare-versions", lo, "lt", hi).CombinedOutput(); err != nil {
			t.Errorf("dpkg does not sort %s before %s: %v %s", lo, hi, err, strings.TrimSpace(string(out)))
		}
	}
}
