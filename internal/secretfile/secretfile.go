// Package secretfile opens the files that hold computeha's secrets (keys, tokens, kept
// logins) only when no one but this process's user can have read or replaced them: a regular
// file, not a symbolic link, owned by this user, with no permission for its group or others.
// Secrets never come from the command line, the environment shown by ps, or the CIB.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Errors of [Open], each wrapped with the file's name.
var (
	ErrSymlink    = errors.New("is a symbolic link: a secret must be in the file itself")
	ErrNotRegular = errors.New("is not a regular file")
	ErrOpenToAll  = errors.New("is open to others")
	ErrNotOurs    = errors.New("is not owned by this process's user")
)

// Open opens path for reading if it is a secret file as the package says; the error names the
// file and what is wrong with it.
func Open(path string) (*os.File, error) {
	// O_NONBLOCK: opening a FIFO (refused below) must not wait for a writer; it changes
	// nothing for a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s %w", path, ErrSymlink)
	}
	if err != nil {
		return nil, err
	}
	if err := check(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s %w", path, err)
	}
	return f, nil
}

func check(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return ErrNotRegular
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return openError(perm)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || int(sys.Uid) != os.Geteuid() {
		uid := -1
		if ok {
			uid = int(sys.Uid)
		}
		return fmt.Errorf("%w (owner uid %d, this process %d)", ErrNotOurs, uid, os.Geteuid())
	}
	return nil
}

// openError is [ErrOpenToAll], saying how.
type openError os.FileMode

func (e openError) Error() string {
	how := "writable or executable"
	if os.FileMode(e)&0o044 != 0 {
		how = "readable"
	}
	return fmt.Sprintf("is %s by others (mode %04o): make it 0600", how, os.FileMode(e))
}

func (openError) Is(target error) bool { return target == ErrOpenToAll }

// Read reads a secret file of at most limit bytes.
func Read(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a secret of ours", path, limit)
	}
	return b, nil
}
