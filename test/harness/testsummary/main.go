// Command testsummary reads the JSON event stream of `go test -json`,
// prints each test's output as `go test -v` would, and, once the stream
// ends, prints again the last lines of every failed test's output. A long
// suite's log is usually read from its end; without this, the reason of a
// failure early in a suite is hundreds of lines above the FAIL lines.
//
// Usage: go test -json ... | testsummary [-lines N] [-quiet]
//
// With -quiet, only the lines that belong to no test (each package's
// result, build errors) are printed as they come, as a non-verbose go test
// would; the failed tests' output comes in the summary.
//
// It exits 0 whatever the tests did: the caller keeps go test's exit status
// (set -o pipefail). Lines that are not JSON events (build errors, a crash
// of the test binary) are printed as they are.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is the part of test2json's TestEvent this command uses.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// key names one test of one package.
type key struct{ pkg, test string }

type summary struct {
	lines  int
	quiet  bool
	output map[key][]string
	failed []key
}

func main() {
	lines := flag.Int("lines", 60, "how many of the last lines of each failed test to print again")
	quiet := flag.Bool("quiet", false, "print only the lines of no test as they come")
	flag.Parse()
	if flag.NArg() != 0 || *lines < 1 {
		fmt.Fprintln(os.Stderr, "usage: go test -json ... | testsummary [-lines N] [-quiet]")
		os.Exit(2)
	}
	s := &summary{lines: *lines, quiet: *quiet, output: map[key][]string{}}
	if err := s.read(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	s.report(os.Stdout)
}

// read copies the stream's output to w and keeps each test's lines.
func (s *summary) read(r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Action == "" {
			if _, err := fmt.Fprintf(w, "%s\n", line); err != nil {
				return err
			}
			continue
		}
		switch ev.Action {
		case "output", "build-output":
			// A package's bare PASS line is what a non-verbose run leaves out too.
			if !s.quiet || (ev.Test == "" && ev.Output != "PASS\n") {
				if _, err := io.WriteString(w, ev.Output); err != nil {
					return err
				}
			}
			if ev.Test != "" {
				k := key{ev.Package, ev.Test}
				s.output[k] = append(s.output[k], strings.TrimRight(ev.Output, "\n"))
				if n := len(s.output[k]); n > 4*s.lines {
					s.output[k] = append([]string(nil), s.output[k][n-s.lines:]...)
				}
			}
		case "fail":
			if ev.Test != "" {
				s.failed = append(s.failed, key{ev.Package, ev.Test})
			}
		}
	}
	return sc.Err()
}

// report prints the end of each failed test's output; a parent whose
// failure is only that of its subtests is left out.
func (s *summary) report(w io.Writer) {
	var leaves []key
	for _, k := range s.failed {
		parent := false
		for _, o := range s.failed {
			if o.pkg == k.pkg && strings.HasPrefix(o.test, k.test+"/") {
				parent = true
				break
			}
		}
		if !parent {
			leaves = append(leaves, k)
		}
	}
	if len(leaves) == 0 {
		return
	}
	fmt.Fprintf(w, "\n==== %d failed test(s); the end of each one's output again:\n", len(leaves))
	for _, k := range leaves {
		out := s.output[k]
		if len(out) > s.lines {
			out = out[len(out)-s.lines:]
		}
		fmt.Fprintf(w, "---- %s %s\n", k.pkg, k.test)
		for _, l := range out {
			fmt.Fprintln(w, shorten(l))
		}
	}
}

// longLine is the longest line printed again whole; of a longer one (a
// command's whole output quoted in one message), the head and the end are
// kept, the end being where a tool says what failed.
const longLine = 4000

func shorten(l string) string {
	if len(l) <= longLine {
		return l
	}
	return l[:longLine/4] + fmt.Sprintf(" [… %d bytes …] ", len(l)-longLine) + l[len(l)-3*longLine/4:]
}
