// Package memtrim gives back the executable's pages that starting the multi-call binary
// touched: every subcommand's packages are initialized, and the kernel maps the pages around
// each one read, so a small daemon starts with most of the binary's code and read-only data
// resident. A long-running subcommand calls Release as it starts: the pages it needs come
// back from the page cache as it uses them, and the others no longer count in its RSS.
package memtrim

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Release drops this process's mappings of the executable's read-only segments (code and
// read-only data) from its page tables, and returns how many bytes those mappings span. Their
// pages are clean copies of the file: nothing is lost, and any page used again is mapped
// again from the page cache. Writable segments are left alone.
func Release() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	defer func() { _ = f.Close() }()
	var spans [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[5] != exe || len(fs[1]) < 4 || fs[1][1] == 'w' || fs[1][3] != 'p' {
			continue
		}
		lo, hi, ok := strings.Cut(fs[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return 0, fmt.Errorf("memtrim: unreadable mapping %q", sc.Text())
		}
		spans = append(spans, [2]uintptr{uintptr(start), uintptr(end)})
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	var n int64
	for _, s := range spans {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s[0], s[1]-s[0], unix.MADV_DONTNEED); e != 0 {
			return n, fmt.Errorf("memtrim: madvise %#x-%#x: %w", s[0], s[1], e)
		}
		n += int64(s[1] - s[0])
	}
	return n, nil
}
