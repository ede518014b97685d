package haapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/instancemon"
)

// Login is what a client needs of a Keystone login (openstack.LazySession).
type Login interface {
	// Token is the login's token (logging in if need be).
	Token(ctx context.Context) (string, error)
	// Relogin logs in again after the API refused the token old.
	Relogin(ctx context.Context, old string) error
	// Do sends a request the way the login does (TLS settings, dialer).
	Do(req *http.Request) (*http.Response, error)
}

// Client calls the API at URL (http://VIP:PORT) with Login's token.
type Client struct {
	URL   string
	Login Login
	// Timeout bounds each request (default 20 s): a daemon that froze on a connection kept
	// alive must not hold a report for the kernel's retransmission time.
	Timeout time.Duration
}

var _ instancemon.Reporter = (*Client)(nil)

// APIError is an error answer of the API.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HA API: %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Report sends a guest failure (POST /v1/instance-events). An answer saying the request
// itself is wrong (400, 404, 405, 413, 415) is final: the error wraps
// instancemon.ErrRejected; any other failure may pass.
func (c *Client) Report(ctx context.Context, e instancemon.Event) error {
	_, err := c.post(ctx, PathInstanceEvents, e)
	return err
}

// ReportHost sends a provisioning process's event (POST /v1/host-events), as Report does.
func (c *Client) ReportHost(ctx context.Context, e instancemon.HostEvent) error {
	_, err := c.post(ctx, PathHostEvents, e)
	return err
}

// Signal asks for the recovery of server (POST /v1/servers/{id}/signal).
func (c *Client) Signal(ctx context.Context, server, reason string) (Answer, error) {
	return c.post(ctx, SignalPath(url.PathEscape(server)), SignalRequest{Reason: reason})
}

func (c *Client) post(ctx context.Context, path string, body any) (Answer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Answer{}, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	for attempt := 0; ; attempt++ {
		a, err := c.attempt(ctx, timeout, path, b, attempt)
		if errors.Is(err, errRelogin) {
			continue
		}
		return a, err
	}
}

// errRelogin asks post for another attempt, after a new login.
var errRelogin = errors.New("logged in again")

func (c *Client) attempt(ctx context.Context, timeout time.Duration, path string, b []byte, attempt int) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	token, err := c.Login.Token(ctx)
	if err != nil {
		return Answer{}, fmt.Errorf("logging in to Keystone: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Auth-Token", token)
	resp, err := c.Login.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("HA API at %s: %w", c.URL, err)
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		var a Answer
		if err := json.Unmarshal(data, &a); err != nil {
			return Answer{}, fmt.Errorf("HA API at %s: the answer is not JSON: %w", c.URL, err)
		}
		return a, nil
	}
	ae := &APIError{Code: resp.StatusCode, Message: strings.TrimSpace(string(data))}
	var eb ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
		ae.Message = eb.Error.Message
	}
	// An expired token: logged in again once.
	if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
		if err := c.Login.Relogin(ctx, token); err != nil {
			return Answer{}, fmt.Errorf("%w (logging in again: %v)", ae, err)
		}
		return Answer{}, errRelogin
	}
	switch resp.StatusCode {
	// The request itself is wrong: sending it again changes nothing. A refused token
	// or a missing role (401, 403) may be set right by an operator: tried again.
	case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return Answer{}, errors.Join(ae, instancemon.ErrRejected)
	}
	return Answer{}, ae
}
