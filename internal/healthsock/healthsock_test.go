package healthsock

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

type answer struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

func TestAskReadsWhatServeAnswersOnARootOnlySocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "h.sock")
	// A socket left behind by an earlier process is replaced.
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, func() answer { return answer{OK: false, Reason: "writer hung"} }) }()

	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer acancel()
	got, err := Ask[answer](actx, path)
	if err != nil || got != (answer{OK: false, Reason: "writer hung"}) {
		t.Errorf("Ask = %+v, %v", got, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after its context ended: %v, want nil", err)
	}
	if _, err := Ask[answer](actx, path); err == nil {
		t.Error("Ask succeeded with nobody serving")
	}
}

// otherGroup is a group this process may give a directory to, other than its own when it
// can: root may give any; others, one of their supplementary groups.
func otherGroup(t *testing.T) int {
	t.Helper()
	if os.Geteuid() == 0 {
		return 65534
	}
	groups, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g != os.Getegid() {
			return g
		}
	}
	return os.Getegid()
}

func TestListenCreatesOnlyAMissingDirectoryAndSharesItLikeTheRuntimeDirectory(t *testing.T) {
	gid := otherGroup(t)
	for _, tc := range []struct {
		name     string
		existing os.FileMode // mode of the directory before Listen, 0 when missing
		group    bool        // whether haclient exists
		check    func(t *testing.T, mode os.FileMode, gotGID int)
	}{
		{
			name:  "a missing directory is made root:haclient 3770 so the alert agent can still reach it",
			group: true,
			check: func(t *testing.T, mode os.FileMode, gotGID int) {
				if mode != os.ModeDir|os.ModeSetgid|os.ModeSticky|0o770 || gotGID != gid {
					t.Errorf("directory %v group %d, want %v group %d", mode, gotGID, os.ModeDir|os.ModeSetgid|os.ModeSticky|0o770, gid)
				}
			},
		},
		{
			name: "without haclient a missing directory is made private to root",
			check: func(t *testing.T, mode os.FileMode, gotGID int) {
				if mode&(os.ModeSetgid|0o027) != 0 || gotGID != os.Getegid() {
					t.Errorf("directory %v group %d, want at most 0750 and the creator's group", mode, gotGID)
				}
			},
		},
		{
			name:     "an existing directory keeps its mode and group, as the tmpfiles.d snippet or the watcher set them",
			existing: 0o700,
			group:    true,
			check: func(t *testing.T, mode os.FileMode, gotGID int) {
				if mode != os.ModeDir|0o700 || gotGID != os.Getegid() {
					t.Errorf("directory %v group %d, want it unchanged: %v group %d", mode, gotGID, os.ModeDir|0o700, os.Getegid())
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run", "computeha")
			if tc.existing != 0 {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			ln, err := listen(filepath.Join(dir, "h.sock"), func() (int, bool) { return gid, tc.group })
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, fi.Mode(), int(fi.Sys().(*syscall.Stat_t).Gid))
			sock, err := os.Stat(filepath.Join(dir, "h.sock"))
			if err != nil || sock.Mode().Perm() != 0o600 {
				t.Errorf("socket %v (%v), want 0600 whatever its directory", sock.Mode(), err)
			}
		})
	}
}
