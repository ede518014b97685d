package nova

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// NetNSDir is where `ip netns` keeps its named namespaces.
const NetNSDir = "/run/netns"

// NetNSDialer makes connections inside the named network namespace (as
// created by `ip netns add`). A socket belongs to the namespace of the
// thread that created it, for its whole life: the dialer locks its
// goroutine to an OS thread, switches that thread into the namespace,
// creates and connects the socket, and switches back. Needs CAP_SYS_ADMIN.
type NetNSDialer struct {
	// Name is the namespace's name under /run/netns.
	Name string
	// Timeout bounds each connection attempt (default 10 s).
	Timeout time.Duration
}

// errRestore marks a thread that could not be switched back to its own
// namespace; the thread is then left locked so that the runtime discards
// it instead of reusing it for other goroutines.
var errRestore = errors.New("switching the thread back to its network namespace failed")

// DialContext connects to address (an IP literal and port: name
// resolution would use the root namespace's configuration) from inside the
// namespace. It satisfies the signature of http.Transport.DialContext.
func (d *NetNSDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s in netns %s: %w", address, d.Name, err)
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("dial %s in netns %s: %q is not an IP address", address, d.Name, host)
	}
	target, err := os.Open(filepath.Join(NetNSDir, d.Name))
	if err != nil {
		return nil, fmt.Errorf("dial %s in netns %s: %w", address, d.Name, err)
	}
	defer target.Close()

	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	// A fresh goroutine: if switching back fails, it exits with its
	// thread still locked and the runtime terminates that thread.
	go func() {
		conn, err := d.dialLocked(ctx, target, network, address)
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

func (d *NetNSDialer) dialLocked(ctx context.Context, target *os.File, network, address string) (net.Conn, error) {
	runtime.LockOSThread()
	// /proc/thread-self: the namespace of this thread, which may differ
	// from the process's main thread.
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("dial %s in netns %s: %w", address, d.Name, err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("dial %s in netns %s: setns: %w", address, d.Name, err)
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// FallbackDelay < 0: no parallel attempts, whose sockets would be
	// created by other goroutines on other threads, outside the namespace.
	nd := net.Dialer{Timeout: timeout, FallbackDelay: -1}
	conn, dialErr := nd.DialContext(ctx, network, address)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		// Thread stays locked: see errRestore.
		return nil, fmt.Errorf("dial %s in netns %s: %w: %w", address, d.Name, errRestore, err)
	}
	runtime.UnlockOSThread()
	if dialErr != nil {
		return nil, fmt.Errorf("dial %s in netns %s: %w", address, d.Name, dialErr)
	}
	return conn, nil
}

// NetNSTransport is an HTTP transport whose connections are made inside the
// named network namespace; use it as the Transport of the http.Client given
// to gophercloud. Proxies from the environment are ignored (they live
// outside the namespace), and keep-alives are off: the test APIs close
// every connection.
func NetNSTransport(name string) *http.Transport {
	d := &NetNSDialer{Name: name}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		DisableKeepAlives:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
	}
}
