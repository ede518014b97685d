package health

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseRecord(t *testing.T) {
	good := `{"host":"cmp1","seq":3,"time":"2025-11-21T12:00:00.5Z","service":"down","service_down_since":"2025-11-21T11:59:30Z","networks":{"mgmt":"ok","tenant":"lost"}}`
	tests := []struct {
		name    string
		data    string
		want    Record
		wantErr string
	}{
		{"a full record is decoded", good + "\n", Record{
			Host: "cmp1", Seq: 3, Time: time.Date(2025, 11, 21, 12, 0, 0, 5e8, time.UTC), Service: ServiceDown,
			ServiceDownSince: time.Date(2025, 11, 21, 11, 59, 30, 0, time.UTC),
			Networks:         map[string]string{"mgmt": "ok", "tenant": "lost"},
		}, ""},
		{"a record without its newline is decoded", `{"host":"cmp1","seq":1,"time":"2025-11-21T12:00:00Z","service":"ok"}`, Record{
			Host: "cmp1", Seq: 1, Time: time.Date(2025, 11, 21, 12, 0, 0, 0, time.UTC), Service: ServiceOK,
		}, ""},
		{"an empty file is an error", "", Record{}, "EOF"},
		{"a torn record is an error", good[:40], Record{}, "unexpected EOF"},
		{"a record followed by another write is an error", good + "\n" + good + "\n", Record{}, "trailing data"},
		{"a record followed by garbage is an error", good + "\x00\x00", Record{}, "trailing data"},
		{"an unknown field is an error", `{"host":"cmp1","seq":1,"time":"2025-11-21T12:00:00Z","service":"ok","load":3}`, Record{}, `unknown field "load"`},
		{"a record without a sequence number is an error", `{"host":"cmp1","time":"2025-11-21T12:00:00Z","service":"ok"}`, Record{}, "host, seq and time are required"},
		{"a record without a host is an error", `{"seq":1,"time":"2025-11-21T12:00:00Z","service":"ok"}`, Record{}, "host, seq and time are required"},
		{"a record without a time is an error", `{"host":"cmp1","seq":1,"service":"ok"}`, Record{}, "host, seq and time are required"},
		{"an unknown service word is an error", `{"host":"cmp1","seq":1,"time":"2025-11-21T12:00:00Z","service":"up"}`, Record{}, `service "up" is neither`},
		{"a time that is not RFC 3339 is an error", `{"host":"cmp1","seq":1,"time":"yesterday","service":"ok"}`, Record{}, "heartbeat record:"},
		{"a JSON value that is not an object is an error", `[1,2]`, Record{}, "heartbeat record:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if diff := cmp.Diff(Record{}, got); diff != "" {
					t.Errorf("a failed parse returned a record (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarshalRecordRoundTrips(t *testing.T) {
	r := Record{Host: "cmp1", Seq: 9, Time: time.Date(2025, 11, 21, 12, 0, 0, 123, time.UTC), Service: ServiceOK, Networks: map[string]string{"mgmt": "ok"}}
	b, err := MarshalRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "}\n") || strings.Count(string(b), "\n") != 1 {
		t.Errorf("MarshalRecord = %q, want one JSON line", b)
	}
	if strings.Contains(string(b), "service_down_since") {
		t.Errorf("a zero down-since is written: %s", b)
	}
	got, err := ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if RecordFile("cmp1") != "cmp1.heartbeat" {
		t.Errorf("RecordFile(cmp1) = %q", RecordFile("cmp1"))
	}
}

func TestParseReach(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]Signal
		wantErr string
	}{
		{"every state word is decoded", "cmp1=ok cmp2=lost ctl1=unknown", map[string]Signal{"cmp1": OK, "cmp2": Lost, "ctl1": Unknown}, ""},
		{"extra spaces are tolerated", "  cmp1=ok\tcmp2=lost \n", map[string]Signal{"cmp1": OK, "cmp2": Lost}, ""},
		{"an empty value is an empty view", "", map[string]Signal{}, ""},
		{"an unknown state word is an error", "cmp1=up", nil, `state "up" of cmp1 is not ok, lost or unknown`},
		{"a state in capitals is an error", "cmp1=OK", nil, `state "OK"`},
		{"a word without = is an error", "cmp1 ok", nil, `"cmp1" is not peer=state`},
		{"an empty peer is an error", "=ok", nil, `"=ok" is not peer=state`},
		{"a repeated peer is an error", "cmp1=ok cmp1=lost", nil, "peer cmp1 is listed twice"},
		{"a torn value is an error", "cmp1=ok cmp2=lo", nil, `state "lo" of cmp2`},
		{"a second = is an error", "cmp1==ok", nil, `state "=ok" of cmp1`},
		{"a lost peer's last answer is read", "cmp1=lost@1733480000123 cmp2=ok", map[string]Signal{"cmp1": Lost, "cmp2": OK}, ""},
		{"a time on a peer that is not lost is an error", "cmp1=ok@1733480000123", nil, `"ok@1733480000123" of cmp1 is not lost@MILLISECONDS`},
		{"a time that is not milliseconds is an error", "cmp1=lost@yesterday", nil, `is not lost@MILLISECONDS`},
		{"a time before the epoch is an error", "cmp1=lost@-5", nil, `is not lost@MILLISECONDS`},
		{"an empty time is an error", "cmp1=lost@", nil, `is not lost@MILLISECONDS`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReach(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("view (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFormatReachIsSortedAndNamesTheAttribute(t *testing.T) {
	got := FormatReach(map[string]Signal{"ctl1": Lost, "cmp2": OK, "cmp1": Unknown}, nil)
	if want := "cmp1=unknown cmp2=ok ctl1=lost"; got != want {
		t.Errorf("FormatReach = %q, want %q", got, want)
	}
	if FormatReach(nil, nil) != "" {
		t.Errorf("FormatReach(nil) = %q, want empty", FormatReach(nil, nil))
	}
	// Only a lost peer carries its last answer.
	at := time.UnixMilli(1733480000123)
	got = FormatReach(map[string]Signal{"ctl1": Lost, "cmp2": OK, "cmp3": Lost}, map[string]time.Time{"ctl1": at, "cmp2": at})
	if want := "cmp2=ok cmp3=lost ctl1=lost@1733480000123"; got != want {
		t.Errorf("FormatReach with times = %q, want %q", got, want)
	}
	view, lastOK, err := ParseReachTimes(got)
	if err != nil || view["ctl1"] != Lost || !lastOK["ctl1"].Equal(at) || len(lastOK) != 1 {
		t.Errorf("ParseReachTimes(%q) = %v, %v, %v", got, view, lastOK, err)
	}
	if got := ReachAttribute("tenant"); got != "computeha-reach-tenant" {
		t.Errorf("ReachAttribute(tenant) = %q", got)
	}
}

// FuzzParseRecord checks that no input panics, that a failed parse returns no record, and
// that what parses survives a MarshalRecord round trip. The seed corpus runs in every go test.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		`{"host":"cmp1","seq":3,"time":"2025-11-21T12:00:00.5Z","service":"down","service_down_since":"2025-11-21T11:59:30Z","networks":{"mgmt":"ok"}}` + "\n",
		`{"host":"cmp1","seq":1,"time":"2025-11-21T12:00:00+01:00","service":"ok","networks":{}}`,
		`{"host":"cmp1","seq":1,"time":"2025-11-21T12:00:00Z","service":"ok"} {}`,
		`{"host":"cmp1","seq":18446744073709551615,"time":"9999-12-31T23:59:59.999999999Z","service":"ok"}`,
		`{"host":"cmp1","seq":1,"time":"2025-11-21T12:00:00Z","service":"ok","host":"cmp2"}`,
		`{"host":"cmp1","seq":1,"ti`,
		"", "null", "{}", "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			if diff := cmp.Diff(Record{}, r); diff != "" {
				t.Fatalf("a failed parse returned a record: %s", diff)
			}
			return
		}
		if r.Host == "" || r.Seq == 0 || r.Time.IsZero() || (r.Service != ServiceOK && r.Service != ServiceDown) {
			t.Fatalf("accepted an incomplete record %+v", r)
		}
		b, err := MarshalRecord(r)
		if err != nil {
			t.Fatalf("a parsed record does not marshal: %v", err)
		}
		again, err := ParseRecord(b)
		if err != nil {
			t.Fatalf("a marshaled record %q does not parse: %v", b, err)
		}
		if diff := cmp.Diff(r, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzParseReach checks that no input panics and that what parses survives a FormatReach round
// trip. The seed corpus runs in every go test.
func FuzzParseReach(f *testing.F) {
	for _, s := range []string{
		"cmp1=ok cmp2=lost ctl1=unknown", "cmp1=lost@1733480000123", "a=lost@", "a=lost@1@2", "", " ", "=", "a=", "=ok", "a=ok a=ok", "a==ok", "a=ok\x00b=lost", "é=ok\u00a0b=lost",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		view, lastOK, err := ParseReachTimes(s)
		if err != nil {
			return
		}
		again, againOK, err := ParseReachTimes(FormatReach(view, lastOK))
		if err != nil {
			t.Fatalf("FormatReach(%v) does not parse: %v", view, err)
		}
		if diff := cmp.Diff(view, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		if diff := cmp.Diff(lastOK, againOK); diff != "" {
			t.Fatalf("round trip of the times (-first +second):\n%s", diff)
		}
	})
}
