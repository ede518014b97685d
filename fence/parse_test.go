package fence

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var fakeSpec = SpecOf(&FakeParams{})

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     map[string]string
		warnings int
		verbose  int
	}{
		{
			"long options with = and with a separate value",
			[]string{"--action=off", "--plug", "n1"},
			map[string]string{"action": "off", "plug": "n1"},
			0, 0,
		},
		{
			"short options with a separate or attached value",
			[]string{"-o", "on", "-nn7"},
			map[string]string{"action": "on", "plug": "n7"},
			0, 0,
		},
		{
			"clustered boolean short options count verbosity",
			[]string{"-vv", "-o", "status"},
			map[string]string{"verbose": "1", "action": "status"},
			0, 2,
		},
		{
			"a unique prefix of a long option",
			[]string{"--power-t=4", "--password-s=x"},
			map[string]string{"power_timeout": "4", "password_script": "x"},
			0, 0,
		},
		{
			"a short option whose value follows a boolean in one cluster",
			[]string{"-vo", "off"},
			map[string]string{"verbose": "1", "action": "off"},
			0, 1,
		},
		{
			"arguments after -- are warned about, not read",
			[]string{"-o", "off", "--", "--plug=x"},
			map[string]string{"action": "off"},
			1, 0,
		},
		{
			"a stray argument is warned about",
			[]string{"stray", "-o", "off"},
			map[string]string{"action": "off"},
			1, 0,
		},
		{
			"a later value replaces an earlier one",
			[]string{"-o", "off", "--action=on"},
			map[string]string{"action": "on"},
			0, 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseArgs(fakeSpec, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, in.Values); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if len(in.Warnings) != tt.warnings {
				t.Errorf("warnings = %q, want %d", in.Warnings, tt.warnings)
			}
			if in.VerboseLevel != tt.verbose {
				t.Errorf("verbose level = %d, want %d", in.VerboseLevel, tt.verbose)
			}
		})
	}
}

func TestParseArgsRejectsAnAmbiguousPrefix(t *testing.T) {
	// --p could be --plug, --password, --password-script, --power-*.
	_, err := ParseArgs(fakeSpec, []string{"--p=1"})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not a unique prefix") {
		t.Errorf("err = %v, want an ambiguity usage error", err)
	}
}

func TestParseStdin(t *testing.T) {
	in, err := ParseStdin(fakeSpec, strings.NewReader(`
# Pacemaker's fencer writes one option per line
action=off
port=n1
passwd="quoted value"
power-timeout = 9
login_timeout=
  retry_on=3  
unknown_key=1
nodename=n1
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"action": "off", "plug": "n1", "password": "quoted value",
		"power_timeout": " 9", "login_timeout": "", "retry_on": "3",
	}
	if diff := cmp.Diff(want, in.Values); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Parse error: Ignoring unknown option 'unknown_key'"}, in.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestParseStdinNeverRepeatsAMalformedLine(t *testing.T) {
	_, err := ParseStdin(fakeSpec, strings.NewReader("action=off\ntopsecretpassword\n"))
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("err = %v: want an error that does not quote the line", err)
	}
}

func TestParseStdinBoundsItsInput(t *testing.T) {
	_, err := ParseStdin(fakeSpec, strings.NewReader("plug="+strings.Repeat("x", 2*maxStdin)))
	if err == nil {
		t.Errorf("a 2 MiB line was accepted")
	}
}

func TestSpecOfRejectsDuplicateNames(t *testing.T) {
	type dup struct {
		A string `fence:"ip" help:"a"`
		B string `fence:"addr" old:"ip" help:"b"`
	}
	defer func() {
		if recover() == nil {
			t.Errorf("a spec naming ip twice was accepted")
		}
	}()
	SpecOf(&dup{})
}

// FuzzParseStdin checks that no input makes the parser or decoder panic, and
// that whatever parses decodes or fails with a usage error.
func FuzzParseStdin(f *testing.F) {
	for _, seed := range []string{
		"action=off\nplug=n1\n",
		"action=reboot\nport=\"n 1\"\npower_timeout=0.5\nverbose=yes\n",
		"# comment\n\n=\n==\nplug==x\n",
		"count=99999999999999999999\n",
		"power_timeout=1e309\nretry_on=-1\n",
		"\x00\xff=\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := ParseStdin(fakeSpec, strings.NewReader(s))
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("non-usage error %T: %v", err, err)
			}
			return
		}
		var p FakeParams
		if err := Decode(fakeSpec, in, &p); err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("non-usage error %T: %v", err, err)
			}
		}
	})
}

// FuzzParseArgs does the same for command lines (arguments split at NUL).
func FuzzParseArgs(f *testing.F) {
	for _, seed := range []string{
		"-o\x00off\x00--plug=n1",
		"-vvvo\x00status",
		"--\x00--plug",
		"--power-t\x00",
		"-",
		"--=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := ParseArgs(fakeSpec, strings.Split(s, "\x00"))
		if err != nil {
			return
		}
		var p FakeParams
		_ = Decode(fakeSpec, in, &p)
	})
}
