package evidence

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeCluster answers from decoded fixtures, or fails: crm_mon's status, and each attribute
// as attrd_updater --query --all printed it. It records the attributes asked for.
type fakeCluster struct {
	status  *crm.Status
	attrs   map[string][]crm.AttributeValue // by attribute name; absent: attrd never held it
	err     error                           // every call fails with it
	attrErr error                           // attribute queries fail with it

	mu    sync.Mutex
	asked []string
}

func (f *fakeCluster) Status(context.Context) (*crm.Status, error) { return f.status, f.err }

func (f *fakeCluster) AttributeAllNodes(_ context.Context, name string) (map[string]string, error) {
	f.mu.Lock()
	f.asked = append(f.asked, name)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.attrErr != nil {
		return nil, f.attrErr
	}
	// As crm.Client does: attrd keeps deleted values as empty ones, which are not values.
	m := map[string]string{}
	for _, v := range f.attrs[name] {
		if v.Value != "" {
			m[v.Node] = v.Value
		}
	}
	return m, nil
}

func (f *fakeCluster) askedFor() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.asked))
}

// fixtureCluster is crm_mon with cmp2 unclean, and the reachability that attrd held for the
// mgmt and storage networks (captured from a live attrd).
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
	f := &fakeCluster{status: st, attrs: map[string][]crm.AttributeValue{}}
	for _, network := range []string{"mgmt", "storage"} {
		name := health.ReachAttribute(network)
		vals, err := crm.DecodeAttributes(open("attrd_updater-" + name + ".xml"))
		if err != nil {
			t.Fatal(err)
		}
		f.attrs[name] = vals
	}
	// A network only other nodes' configuration names: never asked for.
	f.attrs[health.ReachAttribute("tenant")] = []crm.AttributeValue{{Name: health.ReachAttribute("tenant"), Node: "ctl2", Value: "cmp1=ok"}}
	return f
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
	cluster := fixtureCluster(t)
	src := Sources{
		Cluster: cluster,
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
			// ctl2's mgmt value is malformed and its tenant network is not configured; cmp1's
			// storage value was deleted.
			"cmp1": {
				"mgmt": {"cmp2": health.Lost, "ctl1": health.OK},
			},
		},
		Records: map[string]health.Record{"cmp1": cmp1, "cmp2": cmp2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observations (-want +got):\n%s", diff)
	}
	line := `level=WARN msg="ignoring a malformed reachability attribute" node=ctl2 attribute=computeha-reach-mgmt`
	if !strings.Contains(logs.String(), line) {
		t.Errorf("the log lacks %q:\n%s", line, logs.String())
	}
	if diff := cmp.Diff([]string{"computeha-reach-mgmt", "computeha-reach-storage"}, cluster.askedFor()); diff != "" {
		t.Errorf("attributes asked of attrd (-want +got):\n%s", diff)
	}
}

func TestWithHostsJoiningByGossipEveryRecordInTheDirectoryIsRead(t *testing.T) {
	cmp1 := health.Record{Host: "cmp1", Seq: 7, Time: t0.Add(-time.Second), Service: health.ServiceOK}
	cmp9 := health.Record{
		Host: "cmp9", Seq: 2, Time: t0.Add(-time.Second), Service: health.ServiceOK,
		Addresses: map[string]string{"mgmt": "192.0.2.19"},
	}
	src := Sources{
		Cluster: fixtureCluster(t),
		Storage: &Storage{FS: fstest.MapFS{
			"cmp1.heartbeat": record(t, cmp1),
			"cmp9.heartbeat": record(t, cmp9),
			// Torn: its host is known, its storage signal unknown.
			"cmp8.heartbeat": &fstest.MapFile{Data: []byte(`{"host":"cmp8","se`)},
			// Not heartbeats, or not a node's.
			"cmp7.pill":        &fstest.MapFile{Data: []byte("{}")},
			"cmp6.heartbeat.1": &fstest.MapFile{Data: []byte("{}")},
			"a b.heartbeat":    &fstest.MapFile{Data: []byte("{}")},
			"dir.heartbeat/x":  &fstest.MapFile{Data: []byte("{}")},
		}},
		Now: func() time.Time { return t0 },
	}
	cfg := healthConfig("/shared")
	cfg.Networks[0].Subnet = "192.0.2.0/24"
	cfg.Gossip = config.Gossip{KeyFile: "/k", Seeds: []string{"ctl1"}}
	got, err := Gather(context.Background(), src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]health.Record{"cmp1": cmp1, "cmp9": cmp9}, got.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if _, ok := got.RecordErrs["cmp8"]; !ok || len(got.RecordErrs) != 1 {
		t.Errorf("record errors %v: want cmp8's alone", got.RecordErrs)
	}
	// Without the gossip, the listed hosts' records alone.
	cfg.Gossip = config.Gossip{}
	if got, err = Gather(context.Background(), src, cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Records["cmp9"]; ok || len(got.RecordErrs) != 0 {
		t.Errorf("without the gossip, read %v (errors %v): want cmp1's alone", got.Records, got.RecordErrs)
	}
}

func TestGatherFailsWhenTheClusterDoesNotAnswer(t *testing.T) {
	tests := []struct {
		name    string
		cluster func(t *testing.T) *fakeCluster
		wantErr string
	}{
		{
			name: "neither crm_mon nor attrd answers",
			cluster: func(*testing.T) *fakeCluster {
				return &fakeCluster{err: &crm.ToolError{Tool: "crm_mon", Code: crm.ExitDisconnect, Message: "Connection refused"}}
			},
			wantErr: "cluster state: crm_mon: Connection refused",
		},
		{
			name: "crm_mon answers but attrd does not: the reachability is missing, so is the evidence",
			cluster: func(t *testing.T) *fakeCluster {
				f := fixtureCluster(t)
				f.attrErr = &crm.ToolError{Tool: "attrd_updater", Code: crm.ExitDisconnect, Message: "Not connected: Could not connect to attrd"}
				return f
			},
			wantErr: "cluster state: attrd_updater: Not connected: Could not connect to attrd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Sources{Cluster: tt.cluster(t), Storage: &Storage{FS: fstest.MapFS{}}}
			obs, err := Gather(context.Background(), src, healthConfig("/shared"))
			if !errors.Is(err, crm.ErrNotConnected) || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrNotConnected starting %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(health.Observations{}, obs); diff != "" {
				t.Errorf("observations returned with the error (-want +got):\n%s", diff)
			}
		})
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

// A read that returned is over: the next one, at once after it, is never refused as piled on a
// hung one (its goroutine must count as returned before its result is handed back).
func TestAReadRightAfterAnotherIsNeverTakenForAHungOne(t *testing.T) {
	st := &Storage{FS: fstest.MapFS{"cmp1.heartbeat": &fstest.MapFile{Data: []byte("x")}}}
	for i := range 20000 {
		if _, err := st.Read(context.Background(), "/shared", []string{"cmp1"}, time.Second); err != nil {
			t.Fatalf("read %d: %v", i+1, err)
		}
	}
}
