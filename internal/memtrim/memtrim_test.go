package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile is this process's resident file-backed memory in kB (/proc/self/status).
func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

func TestReleaseDropsTheExecutablesResidentPagesAndTheProcessRunsOn(t *testing.T) {
	before := rssFile(t)
	n, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	if n == 0 {
		t.Fatal("no read-only mapping of the executable was found")
	}
	// The code this test runs comes back as it runs; the rest stays out.
	if after >= before {
		t.Errorf("resident file-backed memory %d kB before, %d kB after releasing %d bytes", before, after, n)
	}
	t.Logf("RssFile %d kB -> %d kB (%d kB of mappings released)", before, after, n/1024)
	// Everything still works: code and read-only data are mapped again on use.
	if s := strings.Repeat("ok", 3); s != "okokok" {
		t.Fatal(s)
	}
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
}
