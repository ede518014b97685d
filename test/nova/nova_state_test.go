package nova

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlaneLoadReadsWhatUpRecorded(t *testing.T) {
	type state struct {
		NetNS, Addr string
		Created     bool
	}
	tests := []struct {
		name    string
		content string
		want    state
		wantErr string
	}{
		{
			name:    "A namespace created by up, with the holder's mount namespace, is read back.",
			content: "NETNS='chanova'\nADDR='127.0.0.1'\nNETNS_CREATED=1\nHOLDER_MNT='mnt:[4026532201]'\n",
			want:    state{"chanova", "127.0.0.1", true},
		},
		{
			name:    "A namespace given by the caller is not marked as created.",
			content: "NETNS='lab-ctl'\nADDR='10.0.0.9'\nNETNS_CREATED=0\n",
			want:    state{"lab-ctl", "10.0.0.9", false},
		},
		{
			name:    "A state without an address is refused.",
			content: "NETNS='chanova'\n",
			wantErr: "namespace or address missing",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "state.env"), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			p := &Plane{Dir: dir}
			err := p.load()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("load() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("load(): %v", err)
			}
			if diff := cmp.Diff(tc.want, state{p.NetNS, p.Addr, p.NetNSCreated}); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlaneWithoutStateReportsTheMissingFile(t *testing.T) {
	p := &Plane{Dir: t.TempDir()}
	if _, err := p.Transport(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Transport() error = %v, want a missing state.env", err)
	}
}
