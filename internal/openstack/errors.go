package openstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gophercloud/gophercloud/v2"
)

// Error kinds. Every error a Client returns for a failed call wraps at most a few of these;
// test with errors.Is or the Is* helpers.
var (
	ErrNotFound     = errors.New("not found")
	ErrAmbiguous    = errors.New("ambiguous")
	ErrBadRequest   = errors.New("bad request")
	ErrConflict     = errors.New("conflict")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	// ErrUnavailable: the service could not be reached or answered 5xx after every retry, or
	// the host's cell is down.
	ErrUnavailable = errors.New("service unavailable")
	// ErrSourceServiceUp: Nova refused an evacuation because it still sees the source compute
	// service up. Force it down (after fencing) or wait for service_down_time.
	ErrSourceServiceUp = errors.New("source compute service is still up")
	// ErrEvacuationsPending: Nova refused to clear forced_down because evacuations from the
	// host are still "done"; they complete when the host's nova-compute restarts.
	ErrEvacuationsPending = errors.New("evacuations from the host are not completed")
)

// IsNotFound reports whether err means the resource does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether Nova refused the request because of the resource's state (409).
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsUnauthorized reports whether the credentials were refused (401, after one re-login) or the
// user may not do this (403).
func IsUnauthorized(err error) bool {
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden)
}

// IsUnavailable reports whether the service could not be reached or kept failing.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// IsSourceServiceUp reports whether an evacuation was refused because the source compute
// service is still up.
func IsSourceServiceUp(err error) bool { return errors.Is(err, ErrSourceServiceUp) }

// IsEvacuationsPending reports whether clearing forced_down was refused because evacuations
// from the host are still "done".
func IsEvacuationsPending(err error) bool { return errors.Is(err, ErrEvacuationsPending) }

// APIError is an OpenStack service answering with an error status.
type APIError struct {
	Service    string // "compute", "identity", "placement" or "image"
	Method     string
	Path       string // URL path without the endpoint's host; no query
	StatusCode int
	Message    string // the service's explanation, if it sent one
	RequestID  string // x-openstack-request-id, for the operator to find the server-side logs
	kinds      []error
	retryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: %d %s", e.Service, e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// Is matches the error kinds the status code and message map to.
func (e *APIError) Is(target error) bool {
	for _, k := range e.kinds {
		if k == target {
			return true
		}
	}
	return false
}

// Markers of Nova's explanations for the two refusals recovery reacts to. Nova answers both
// with 400 and no machine-readable code, so the text is all there is; the markers are the
// stable parts of exception.ComputeServiceInUse and of the forced-up check of os-services.
const (
	msgServiceInUse       = "is still in use"
	msgEvacuationsPending = "evacuation migration records remain"
)

// newAPIError builds an APIError from an unexpected response code.
func newAPIError(service string, rc gophercloud.ErrUnexpectedResponseCode) *APIError {
	e := &APIError{
		Service:    service,
		Method:     rc.Method,
		Path:       urlPath(rc.URL),
		StatusCode: rc.Actual,
		Message:    faultMessage(rc.Body),
	}
	if rc.ResponseHeader != nil {
		e.RequestID = rc.ResponseHeader.Get("X-Openstack-Request-Id")
		if e.RequestID == "" {
			e.RequestID = rc.ResponseHeader.Get("X-Compute-Request-Id")
		}
		e.retryAfter = parseRetryAfter(rc.ResponseHeader.Get("Retry-After"))
	}
	switch s := rc.Actual; {
	case s == http.StatusBadRequest:
		e.kinds = append(e.kinds, ErrBadRequest)
		switch {
		case strings.Contains(e.Message, msgServiceInUse):
			e.kinds = append(e.kinds, ErrSourceServiceUp)
		case strings.Contains(e.Message, msgEvacuationsPending):
			e.kinds = append(e.kinds, ErrEvacuationsPending)
		}
	case s == http.StatusUnauthorized:
		e.kinds = append(e.kinds, ErrUnauthorized)
	case s == http.StatusForbidden:
		e.kinds = append(e.kinds, ErrForbidden)
	case s == http.StatusNotFound:
		e.kinds = append(e.kinds, ErrNotFound)
	case s == http.StatusConflict:
		e.kinds = append(e.kinds, ErrConflict)
	case s == http.StatusTooManyRequests || s >= 500:
		e.kinds = append(e.kinds, ErrUnavailable)
	}
	return e
}

// urlPath keeps the path of a request URL: enough to name the call, and free of query values.
func urlPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Path
}

// faultMessage extracts the explanation from an OpenStack error body:
//
//	Nova:      {"badRequest": {"code": 400, "message": "..."}}
//	Keystone:  {"error": {"code": 401, "message": "...", "title": "Unauthorized"}}
//	Placement: {"errors": [{"status": 404, "title": "Not Found", "detail": "..."}]}
//	Glance:    plain text or HTML
func faultMessage(body []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		if raw, ok := obj["errors"]; ok {
			var list []struct {
				Detail string `json:"detail"`
				Title  string `json:"title"`
			}
			if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
				if list[0].Detail != "" {
					return oneLine(list[0].Detail)
				}
				return oneLine(list[0].Title)
			}
		}
		for _, raw := range obj {
			var f struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(raw, &f) == nil && f.Message != "" {
				return oneLine(f.Message)
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "<") {
		return "" // an HTML error page says nothing the status code does not
	}
	return oneLine(s)
}

// oneLine folds whitespace and caps length: messages go into logs and Pacemaker's exit reason.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const maxLen = 300
	if len(s) > maxLen {
		// Cut at a character's start, never inside one.
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// classify turns what gophercloud returned into this package's errors. service names the
// service the request went to.
func classify(service string, err error) error {
	if err == nil {
		return nil
	}
	// Re-login failed: report why the login failed, which is what the operator must fix.
	var reauthV gophercloud.ErrUnableToReauthenticate
	var reauthP *gophercloud.ErrUnableToReauthenticate
	switch {
	case errors.As(err, &reauthP):
		return fmt.Errorf("logging in again after the token was refused: %w", classify("identity", reauthP.ErrReauth))
	case errors.As(err, &reauthV):
		return fmt.Errorf("logging in again after the token was refused: %w", classify("identity", reauthV.ErrReauth))
	}
	if rc, ok := responseCode(err); ok {
		return newAPIError(service, rc)
	}
	return err
}

// responseCode finds an unexpected-status error, which gophercloud returns by value or by
// pointer depending on the path the request took.
func responseCode(err error) (gophercloud.ErrUnexpectedResponseCode, bool) {
	var v gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &v) {
		return v, true
	}
	var p *gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &p) && p != nil {
		return *p, true
	}
	return v, false
}
