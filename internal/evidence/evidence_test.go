package evidence

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeCluster answers from decoded fixtures, or fails.
type fakeCluster struct {
	status *crm.Status
	cib    *crm.CIB
	err    error
}

func (f *fakeCluster) Status(context.Context) (*crm.Status, error) { return f.status, f.err }
func (f *fakeCluster) CIB(context.Context) (*crm.CIB, error)       { return f.cib, f.err }

func fixtureCluster(t *testing.T) *fakeCluster {
	t.Helper()
	open := func(name string) *os.File {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	st, err := crm.DecodeStatus(open("crm_mon-remote-unclean.xml"))
	if err != nil {
		t.Fatal(err)
	}
	cib, err := crm.DecodeCIB(open("cib-reach.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return &fakeCluster{status: st, cib: cib}
}

func healthConfig(dir string) *config.Health {
	h := config.DefaultHealth()
	h.SharedDir = dir
	h.Networks = []config.Network{{Name: "mgmt", Management: true}, {Name: "storage"}}
	h.Hosts = map[string]map[string]string{
		"cmp1": {"mgmt": "192.0.2.11", "storage": "198.51.100.11"},
		"cmp2": {"mgmt": "192.0.2.12", "storage": "198.51.100.12"},
		"ctl1": {"mgmt": "192.0.2.1", "storage": "198.51.100.1"},
	}
	return &h
}

func record(t *testing.T, r health.Record) *fstest.MapFile {
	t.Helper()
	b, err := health.MarshalRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return &fstest.MapFile{Data: b}
}

func TestGatherCombinesMembershipReachabilityAndRecords(t *testing.T) {
	cmp1 := health.Record{Host: "cmp1", Seq: 7, Time: t0.Add(-time.Second), Service: health.ServiceOK}
	cmp2 := health.Record{
		Host: "cmp2", Seq: 3, Time: t0.Add(-time.Minute), Service: health.ServiceDown,
		ServiceDownSince: t0.Add(-2 * time.Minute), Networks: map[string]string{"mgmt": "lost"},
	}
	var logs bytes.Buffer
	src := Sources{
		Cluster: fixtureCluster(t),
		Storage: &Storage{FS: fstest.MapFS{
			"cmp1.heartbeat": record(t, cmp1),
			"cmp2.heartbeat": record(t, cmp2),
			// Not a configured host: not read.
			"cmp9.heartbeat": &fstest.MapFile{Data: []byte("garbage")},
		}},
		Now: func() time.Time { return t0 },
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	got, err := Gather(context.Background(), src, healthConfig("/shared"))
	if err != nil {
		t.Fatal(err)
	}
	want := health.Observations{
		Now:     t0,
		Members: map[string]bool{"cmp1": true, "cmp2": false, "ctl1": true, "ctl2": true, "ctl3": true},
		Reach: map[string]map[string]map[string]health.Signal{
			"ctl1": {
				"mgmt":    {"cmp1": health.OK, "cmp2": health.Lost, "ctl2": health.OK, "ctl3": health.OK},
				"storage": {"cmp1": health.OK, "cmp2": health.Lost},
			},
			// ctl2's mgmt value is malformed and its tenant network is not configured.
			"cmp1": {
				"mgmt":    {"cmp2": health.Lost, "ctl1": health.OK},
				"storage": {},
			},
		},
		Records: map[string]health.Record{"cmp1": cmp1, "cmp2": cmp2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observations (-want +got):\n%s", diff)
	}
	for _, line := range []string{
		`level=WARN msg="ignoring a malformed reachability attribute" node=ctl2 attribute=computeha-reach-mgmt`,
		`level=DEBUG msg="ignoring reachability of a network not in the configuration" node=ctl2 attribute=computeha-reach-tenant`,
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log lacks %q:\n%s", line, logs.String())
		}
	}
}

func TestGatherFailsWhenTheClusterDoesNotAnswer(t *testing.T) {
	down := &crm.ToolError{Tool: "crm_mon", Code: crm.ExitDisconnect, Message: "Connection refused"}
	src := Sources{Cluster: &fakeCluster{err: down}, Storage: &Storage{FS: fstest.MapFS{}}}
	obs, err := Gather(context.Background(), src, healthConfig("/shared"))
	if !errors.Is(err, crm.ErrNotConnected) {
		t.Fatalf("err = %v, want ErrNotConnected", err)
	}
	if diff := cmp.Diff(health.Observations{}, obs); diff != "" {
		t.Errorf("observations returned with the error (-want +got):\n%s", diff)
	}
}

// hangFS blocks every access until release is closed, as a dead NFS or FUSE mount does.
type hangFS struct{ release chan struct{} }

func (h hangFS) Open(string) (fs.File, error) {
	<-h.release
	return nil, fs.ErrNotExist
}

// failFS fails every access with err.
type failFS struct{ err error }

func (f failFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
}

func TestADirectoryProblemMakesEveryStorageSignalUnknownButNotGatherFail(t *testing.T) {
	tests := []struct {
		name    string
		fs      fs.FS
		dir     string
		wantErr string
		wantIs  error
	}{
		{
			name:    "no shared directory configured is ErrNoSharedDir",
			dir:     "",
			wantErr: "no shared directory is configured",
			wantIs:  ErrNoSharedDir,
		},
		{
			name:    "a shared directory that is not there (mount missing) is an error, not every host silent",
			dir:     filepath.Join(t.TempDir(), "not-mounted"),
			wantErr: "no such file or directory",
			wantIs:  fs.ErrNotExist,
		},
		{
			name:    "an I/O error on the directory fails the read",
			fs:      failFS{err: errors.New("input/output error")},
			dir:     "/shared",
			wantErr: "input/output error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Sources{Cluster: fixtureCluster(t), Storage: &Storage{FS: tt.fs}}
			obs, err := Gather(context.Background(), src, healthConfig(tt.dir))
			if err != nil {
				t.Fatalf("Gather failed: %v", err)
			}
			if obs.StorageErr == nil || !strings.Contains(obs.StorageErr.Error(), tt.wantErr) {
				t.Errorf("StorageErr = %v, want it to contain %q", obs.StorageErr, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(obs.StorageErr, tt.wantIs) {
				t.Errorf("StorageErr = %v, want errors.Is %v", obs.StorageErr, tt.wantIs)
			}
			if obs.Records != nil || obs.RecordErrs != nil {
				t.Errorf("records returned with a storage error: %v %v", obs.Records, obs.RecordErrs)
			}
			if len(obs.Members) == 0 {
				t.Error("membership lost because of the storage")
			}
		})
	}
}

// oneFailFS is a MapFS where one file fails to open with err. (Not embedded: MapFS's own
// ReadFile would bypass Open.)
type oneFailFS struct {
	files fstest.MapFS
	name  string
	err   error
}

func (f oneFailFS) Open(name string) (fs.File, error) {
	if name == f.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
	}
	return f.files.Open(name)
}

func TestAnUnusableRecordMakesOnlyItsHostUnknown(t *testing.T) {
	cmp1 := health.Record{Host: "cmp1", Seq: 1, Time: t0, Service: health.ServiceOK}
	tests := []struct {
		name    string
		fs      fs.FS
		wantErr string
	}{
		{
			name:    "a torn record",
			fs:      fstest.MapFS{"cmp2.heartbeat": &fstest.MapFile{Data: []byte(`{"host":"cmp2","se`)}},
			wantErr: "cmp2.heartbeat: heartbeat record",
		},
		{
			name:    "a record naming another host",
			fs:      fstest.MapFS{"cmp2.heartbeat": record(t, health.Record{Host: "cmp1", Seq: 1, Time: t0, Service: health.ServiceOK})},
			wantErr: "cmp2.heartbeat: the record is cmp1's",
		},
		{
			name:    "an I/O error on the file",
			fs:      oneFailFS{files: fstest.MapFS{}, name: "cmp2.heartbeat", err: errors.New("input/output error")},
			wantErr: "input/output error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name+" makes only that host's record an error", func(t *testing.T) {
			fsys := tt.fs
			switch f := fsys.(type) {
			case fstest.MapFS:
				f["cmp1.heartbeat"] = record(t, cmp1)
			case oneFailFS:
				f.files["cmp1.heartbeat"] = record(t, cmp1)
			}
			src := Sources{Cluster: fixtureCluster(t), Storage: &Storage{FS: fsys}}
			obs, err := Gather(context.Background(), src, healthConfig("/shared"))
			if err != nil {
				t.Fatal(err)
			}
			if obs.StorageErr != nil {
				t.Errorf("StorageErr = %v, want nil: the directory reads", obs.StorageErr)
			}
			if diff := cmp.Diff(map[string]health.Record{"cmp1": cmp1}, obs.Records); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if len(obs.RecordErrs) != 1 || obs.RecordErrs["cmp2"] == nil || !strings.Contains(obs.RecordErrs["cmp2"].Error(), tt.wantErr) {
				t.Errorf("RecordErrs = %v, want only cmp2's, containing %q", obs.RecordErrs, tt.wantErr)
			}
		})
	}
}

func TestAHungStorageIsGivenUpOnAndNotPiledOn(t *testing.T) {
	release := make(chan struct{})
	st := &Storage{FS: hangFS{release: release}}
	cfg := healthConfig("/shared")
	cfg.Interval = 100 * time.Millisecond
	src := Sources{Cluster: fixtureCluster(t), Storage: st}

	start := time.Now()
	obs, err := Gather(context.Background(), src, cfg)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(obs.StorageErr, ErrStorageHung) || !strings.Contains(obs.StorageErr.Error(), "within 100ms") {
		t.Errorf("StorageErr = %v, want ErrStorageHung within 100ms", obs.StorageErr)
	}
	if took < 100*time.Millisecond || took > time.Second {
		t.Errorf("Gather took %s with a hung storage, want the 100ms bound", took)
	}

	// The first read is still stuck: the second fails at once rather than start another.
	start = time.Now()
	obs, err = Gather(context.Background(), src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(obs.StorageErr, ErrStorageHung) || !strings.Contains(obs.StorageErr.Error(), "an earlier read has not returned") {
		t.Errorf("second StorageErr = %v, want the earlier read named", obs.StorageErr)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("the second Gather waited %s on a storage known to hang", took)
	}

	// Once the stuck read returns, reading works again.
	close(release)
	deadline := time.Now().Add(time.Second)
	for {
		obs, err = Gather(context.Background(), src, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(obs.StorageErr, ErrStorageHung) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if errors.Is(obs.StorageErr, ErrStorageHung) {
		t.Errorf("the storage still reads as hung after it answered: %v", obs.StorageErr)
	}
}

func TestStorageWaitIsAnIntervalAtMostTwoSeconds(t *testing.T) {
	for _, tt := range []struct {
		interval, want time.Duration
	}{
		{time.Second, time.Second},
		{500 * time.Millisecond, 500 * time.Millisecond},
		{5 * time.Second, 2 * time.Second},
		{0, 2 * time.Second},
	} {
		if got := StorageWait(&config.Health{Interval: tt.interval}); got != tt.want {
			t.Errorf("StorageWait(interval %s) = %s, want %s", tt.interval, got, tt.want)
		}
	}
}

func TestRecordsAreReadFromARealDirectory(t *testing.T) {
	dir := t.TempDir()
	cmp1 := health.Record{Host: "cmp1", Seq: 42, Time: t0, Service: health.ServiceOK, Networks: map[string]string{"mgmt": "ok"}}
	b, err := health.MarshalRecord(cmp1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, health.RecordFile("cmp1")), b, 0o644); err != nil {
		t.Fatal(err)
	}
	hb, err := (&Storage{}).Read(context.Background(), dir, []string{"cmp1", "cmp2"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Heartbeats{Records: map[string]health.Record{"cmp1": cmp1}}, hb); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}
