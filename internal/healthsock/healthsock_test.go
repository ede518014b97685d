package healthsock

import (
	"context"
	"os"
	"path/filepath"
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
