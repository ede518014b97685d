package crm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultAlertSocket is where the watcher listens for the alert agent,
// unless the alert's recipient names another path.
const DefaultAlertSocket = "/run/computeha/alert.sock"

// AlertRecord is one Pacemaker alert as the alert agent forwards it: the
// CRM_alert_* variables Pacemaker set for it.
type AlertRecord struct {
	Kind      string `json:"kind"` // node, fencing, attribute, resource
	Node      string `json:"node"`
	NodeID    string `json:"node_id,omitempty"`
	Desc      string `json:"desc,omitempty"`
	Task      string `json:"task,omitempty"`
	RC        string `json:"rc,omitempty"`
	AttrName  string `json:"attr_name,omitempty"`
	AttrValue string `json:"attr_value,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	Sequence  int64  `json:"sequence"`
	// Time is when Pacemaker raised the alert.
	Time time.Time `json:"time"`
}

// AlertRecordFromEnv builds a record from the alert agent's environment
// (getenv is os.Getenv in production).
func AlertRecordFromEnv(getenv func(string) string) (AlertRecord, error) {
	r := AlertRecord{
		Kind:      getenv("CRM_alert_kind"),
		Node:      getenv("CRM_alert_node"),
		NodeID:    getenv("CRM_alert_nodeid"),
		Desc:      getenv("CRM_alert_desc"),
		Task:      getenv("CRM_alert_task"),
		RC:        getenv("CRM_alert_rc"),
		AttrName:  getenv("CRM_alert_attribute_name"),
		AttrValue: getenv("CRM_alert_attribute_value"),
		Recipient: getenv("CRM_alert_recipient"),
	}
	if r.Kind == "" {
		return r, errors.New("CRM_alert_kind is not set: this program is run by Pacemaker as an alert agent")
	}
	if s := getenv("CRM_alert_node_sequence"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return r, fmt.Errorf("CRM_alert_node_sequence %q is not a number", s)
		}
		r.Sequence = n
	}
	r.Time = time.Now().UTC()
	if s := getenv("CRM_alert_timestamp_epoch"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return r, fmt.Errorf("CRM_alert_timestamp_epoch %q is not a number", s)
		}
		usec, _ := strconv.ParseInt(getenv("CRM_alert_timestamp_usec"), 10, 64)
		r.Time = time.Unix(sec, usec*1000).UTC()
	}
	return r, nil
}

// alertSendTimeout bounds the agent's delivery: Pacemaker waits for alert
// agents, and a stuck one must never hold it up.
const alertSendTimeout = 200 * time.Millisecond

// SpoolDir is where records wait when the watcher does not listen.
func SpoolDir(socket string) string { return filepath.Join(filepath.Dir(socket), "spool") }

// ForwardAlert delivers rec to the watcher's datagram socket, or, when no
// watcher listens (or it is too busy to take it at once), writes it to the
// spool directory beside the socket, where the watcher picks it up when it
// starts. It never blocks for more than a fraction of a second.
func ForwardAlert(rec AlertRecord, socket string) (spooled bool, err error) {
	if socket == "" || !filepath.IsAbs(socket) {
		socket = DefaultAlertSocket
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	if sendErr := sendDatagram(socket, data); sendErr == nil {
		return false, nil
	}
	dir := SpoolDir(socket)
	if err := spool(dir, rec, data); err != nil {
		return false, fmt.Errorf("watcher unreachable at %s and spooling failed: %w", socket, err)
	}
	trimSpool(dir, maxSpooled)
	return true, nil
}

// maxSpooled bounds the spool: alerts are raised on every controller, and
// only the one running the watcher drains its spool. The newest records
// are kept; the watcher's snapshot comparison covers what older ones said.
const maxSpooled = 1000

// trimSpool removes the oldest records beyond max (names sort by time).
func trimSpool(dir string, max int) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= max {
		return
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) <= max {
		return
	}
	slices.Sort(names)
	for _, n := range names[:len(names)-max] {
		_ = os.Remove(filepath.Join(dir, n))
	}
}

func sendDatagram(socket string, data []byte) error {
	conn, err := net.DialTimeout("unixgram", socket, alertSendTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(alertSendTimeout)); err != nil {
		return err
	}
	_, err = conn.Write(data)
	return err
}

// spool writes one record atomically; names sort by alert time.
func spool(dir string, rec AlertRecord, data []byte) error {
	name := fmt.Sprintf("%020d-%06d-%d.json", rec.Time.UnixNano(), rec.Sequence%1000000, os.Getpid())
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return errors.Join(werr, cerr)
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// readSpool returns the spooled records in alert order and the files they
// came from. Unreadable files are reported, not fatal.
func readSpool(dir string) (recs []AlertRecord, files []string, bad []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			bad = append(bad, err)
		}
		return nil, nil, bad
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		var r AlertRecord
		if err := json.Unmarshal(b, &r); err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", p, err))
			files = append(files, p) // unreadable forever: drop it
			continue
		}
		recs = append(recs, r)
		files = append(files, p)
	}
	return recs, files, bad
}
