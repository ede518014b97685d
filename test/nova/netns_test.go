package nova

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// testNetNS creates a private network namespace with lo up, removed at the
// end of the test. Skips without root or iproute2.
func testNetNS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	name := fmt.Sprintf("chanova-t%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", name, err, out)
	}
	return name
}

// listenIn opens a TCP listener on 127.0.0.1 inside the namespace, the way
// the dialer creates its sockets.
func listenIn(t *testing.T, name string) net.Listener {
	t.Helper()
	ch := make(chan struct {
		l   net.Listener
		err error
	}, 1)
	go func() {
		runtime.LockOSThread()
		target, err := os.Open(filepath.Join(NetNSDir, name))
		if err != nil {
			ch <- struct {
				l   net.Listener
				err error
			}{nil, err}
			return // thread stays locked and is discarded
		}
		defer target.Close()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- struct {
				l   net.Listener
				err error
			}{nil, err}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- struct {
				l   net.Listener
				err error
			}{nil, err}
			return
		}
		l, lerr := net.Listen("tcp4", "127.0.0.1:0")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- struct {
				l   net.Listener
				err error
			}{nil, err}
			return
		}
		runtime.UnlockOSThread()
		ch <- struct {
			l   net.Listener
			err error
		}{l, lerr}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", name, r.err)
	}
	t.Cleanup(func() { _ = r.l.Close() })
	return r.l
}

// serveToken answers every connection with token and a newline.
func serveToken(l net.Listener, token string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, token+"\n")
		_ = c.Close()
	}
}

func readToken(c net.Conn) (string, error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestNetNSDialerReachesAServerThatListensOnlyInsideTheNamespace(t *testing.T) {
	name := testNetNS(t)
	l := listenIn(t, name)
	go serveToken(l, "inside")

	d := &NetNSDialer{Name: name}
	c, err := d.DialContext(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("DialContext: %v", err)
	}
	got, err := readToken(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if diff := cmp.Diff("inside", got); diff != "" {
		t.Errorf("answer through the namespace (-want +got):\n%s", diff)
	}

	// The same address in the root namespace is somebody else (or nobody).
	if c, err := net.DialTimeout("tcp", l.Addr().String(), 2*time.Second); err == nil {
		if tok, _ := readToken(c); tok == "inside" {
			t.Errorf("the server in the namespace was reachable from the root namespace")
		}
	}
}

func TestNetNSDialerLeavesNoThreadInsideTheNamespaceAfterConcurrentDials(t *testing.T) {
	name := testNetNS(t)
	l := listenIn(t, name)
	go serveToken(l, "inside")
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(NetNSDir, name), &st); err != nil {
		t.Fatalf("stat namespace: %v", err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)

	d := &NetNSDialer{Name: name}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			c, err := d.DialContext(context.Background(), "tcp", l.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			if tok, err := readToken(c); err != nil || tok != "inside" {
				errs <- fmt.Errorf("answer %q, %v", tok, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("dial: %v", err)
	}

	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatalf("read threads: %v", err)
	}
	for _, task := range tasks {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
		if err != nil {
			continue // thread exited meanwhile
		}
		if ns == want {
			t.Errorf("thread %s is still in namespace %s", task.Name(), name)
		}
	}
}

func TestNetNSDialerRefusesBadInput(t *testing.T) {
	tests := []struct {
		name    string
		netns   string
		address string
		want    string
	}{
		{
			"A host name is refused because it would be resolved outside the namespace.",
			"chanova-none", "localhost:80", `"localhost" is not an IP address`,
		},
		{"An address without a port is refused.", "chanova-none", "127.0.0.1", "missing port"},
		{
			"A namespace that does not exist is reported.", "chanova-does-not-exist", "127.0.0.1:80",
			"no such file or directory",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &NetNSDialer{Name: tc.netns}
			c, err := d.DialContext(context.Background(), "tcp", tc.address)
			if err == nil {
				_ = c.Close()
				t.Fatalf("DialContext(%q) succeeded, want an error", tc.address)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if errors.Is(err, errRestore) {
				t.Errorf("error %q claims the thread could not be restored", err)
			}
		})
	}
}

func TestNetNSTransportCarriesHTTPIntoTheNamespace(t *testing.T) {
	name := testNetNS(t)
	l := listenIn(t, name)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "hello from "+name)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	client := &http.Client{Transport: NetNSTransport(name), Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if diff := cmp.Diff("hello from "+name, string(body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}
