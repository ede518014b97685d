package main

import (
	"bytes"
	"strings"
	"testing"
)

func events(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func TestSummaryRepeatsTheEndOfFailedLeafTests(t *testing.T) {
	in := events(
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA/sub","Output":"    a_test.go:9: the reason\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA/ok","Output":"    a_test.go:12: fine\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestA/ok"}`,
		`{"Action":"fail","Package":"p","Test":"TestA/sub"}`,
		`{"Action":"fail","Package":"p","Test":"TestA"}`,
		`not json: a build error`,
		`{"Action":"output","Package":"p","Output":"FAIL\n"}`,
		`{"Action":"fail","Package":"p"}`,
	)
	s := &summary{lines: 10, output: map[key][]string{}}
	var out bytes.Buffer
	if err := s.read(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"=== RUN   TestA\n", "the reason\n", "not json: a build error\n", "FAIL\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the stream's output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	s.report(&out)
	got := out.String()
	if !strings.Contains(got, "1 failed test(s)") || !strings.Contains(got, "---- p TestA/sub\n    a_test.go:9: the reason\n") {
		t.Errorf("summary:\n%s", got)
	}
	if strings.Contains(got, "---- p TestA\n") || strings.Contains(got, "fine") {
		t.Errorf("the summary repeats a parent or a passed test:\n%s", got)
	}
}

func TestSummaryIsEmptyWhenAllPass(t *testing.T) {
	s := &summary{lines: 10, output: map[key][]string{}}
	var out bytes.Buffer
	if err := s.read(strings.NewReader(events(
		`{"Action":"output","Package":"p","Test":"TestA","Output":"ok\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestA"}`)), &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	s.report(&out)
	if out.Len() != 0 {
		t.Errorf("summary without failures: %q", out.String())
	}
}

func TestSummaryKeepsOnlyTheLastLinesAndShortensLongOnes(t *testing.T) {
	s := &summary{lines: 3, output: map[key][]string{}}
	var in strings.Builder
	for i := range 20 {
		in.WriteString(`{"Action":"output","Package":"p","Test":"T","Output":"line ` + string(rune('a'+i)) + `\n"}` + "\n")
	}
	in.WriteString(`{"Action":"output","Package":"p","Test":"T","Output":"` + strings.Repeat("x", 3*longLine) + `END\n"}` + "\n")
	in.WriteString(`{"Action":"fail","Package":"p","Test":"T"}` + "\n")
	var out bytes.Buffer
	if err := s.read(strings.NewReader(in.String()), &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	s.report(&out)
	got := out.String()
	if !strings.Contains(got, "line s\nline t\n") || strings.Contains(got, "line r\n") {
		t.Errorf("want the last 3 lines only:\n%.300s", got)
	}
	if len(got) > 2*longLine || !strings.Contains(got, "END\n") {
		t.Errorf("a long line is not shortened to its head and end (%d bytes)", len(got))
	}
}

func TestQuietPrintsOnlyLinesOfNoTest(t *testing.T) {
	s := &summary{lines: 10, quiet: true, output: map[key][]string{}}
	var out bytes.Buffer
	if err := s.read(strings.NewReader(events(
		`{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}`)), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "ok  \tp\t0.1s\n" {
		t.Errorf("quiet output: %q", got)
	}
}
