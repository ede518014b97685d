package openstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// do runs one request, attempt by attempt, until it succeeds, fails in a way retrying cannot
// fix, or the retry budget or the caller's context runs out. service names where the request
// goes (for errors); op says what the call was doing. idempotent says whether sending the
// request twice is harmless, which decides what may be retried (see the package doc).
func (c *nova) do(ctx context.Context, service, op string, idempotent bool, attempt func(context.Context) error) error {
	var err error
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, c.callTimeout)
		err = attempt(actx)
		timedOut := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		err = classify(service, err)
		switch {
		case timedOut:
			err = fmt.Errorf("no answer within %s: %w", c.callTimeout, ErrUnavailable)
		case isTransport(err):
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if n >= c.retry.Attempts || !retryable(err, idempotent, timedOut) {
			break
		}
		wait := c.backoff(n, err)
		c.log.Warn("OpenStack request failed; retrying", "op", op, "attempt", n, "wait", wait, "error", err)
		if serr := c.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%s: %w (while waiting to retry after: %v)", op, serr, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// retryable decides whether a failed attempt is worth another.
func retryable(err error, idempotent, timedOut bool) bool {
	if timedOut {
		return idempotent
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.StatusCode {
		case 429, 503:
			// Refused before any work: rate limited, or no worker/backend took the request.
			return true
		case 500, 502, 504:
			// The request may have been processed before the failure.
			return idempotent
		}
		return false
	}
	if isTransport(err) {
		// A failed dial never reached the server; anything later might have.
		return idempotent || isDial(err)
	}
	return false
}

// isTransport reports whether err is a failure to exchange HTTP messages, as opposed to an
// answer.
func isTransport(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// isDial reports whether the connection could not be opened, so the request was never sent.
func isDial(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// backoff is the wait before retry n (1-based): BaseDelay doubled per retry, jittered between
// half and all of it so that concurrent callers spread out, or the server's Retry-After.
func (c *nova) backoff(n int, err error) time.Duration {
	p := c.retry
	d := p.BaseDelay << (n - 1)
	if d <= 0 || d > p.MaxDelay {
		d = p.MaxDelay
	}
	d = d/2 + rand.N(d/2+1)
	var ae *APIError
	if errors.As(err, &ae) && ae.retryAfter > 0 {
		d = min(ae.retryAfter, p.MaxDelay)
	}
	return d
}

// parseRetryAfter reads a Retry-After header given in seconds (the form OpenStack services
// and proxies send); 0 when absent or in another form.
func parseRetryAfter(v string) time.Duration {
	s, err := strconv.Atoi(v)
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
