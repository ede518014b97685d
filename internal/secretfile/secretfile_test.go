package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOnlyAPrivateRegularFileOfOurUserIsASecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("s3cr3t\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", 0o400)
	if b, err := Read(good, 64); err != nil || string(b) != "s3cr3t\n" {
		t.Fatalf("a private file: %q, %v", b, err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		is   error
		text string
	}{
		{write("group", 0o640), ErrOpenToAll, "group is readable by others (mode 0640): make it 0600"},
		{write("world-writable", 0o602), ErrOpenToAll, "is writable or executable by others (mode 0602)"},
		{link, ErrSymlink, "link is a symbolic link"},
		{dir, ErrNotRegular, "is not a regular file"},
		{fifo, ErrNotRegular, "fifo is not a regular file"}, // and opening it did not wait for a writer
		{filepath.Join(dir, "missing"), fs.ErrNotExist, "no such file"},
	} {
		_, err := Read(tt.path, 64)
		if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %v, want %v saying %q", filepath.Base(tt.path), err, tt.is, tt.text)
		}
	}
	if _, err := Read(good, 3); err == nil || !strings.Contains(err.Error(), "larger than 3 bytes") {
		t.Errorf("a file over the limit: %v", err)
	}
}

func TestAFileOfAnotherUserIsNoSecretFileOfOurs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	p := filepath.Join(t.TempDir(), "theirs")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p, 64); !errors.Is(err, ErrNotOurs) {
		t.Errorf("a file of nobody's: %v, want %v", err, ErrNotOurs)
	}
}
