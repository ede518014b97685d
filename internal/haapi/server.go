package haapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/instancemon"
	"github.com/computeha/computeha/internal/openstack"
)

// Options configures the API's handler.
type Options struct {
	Tokens  Tokens
	Servers Servers
	Sink    Sink
	// MonitorRoles may report instance and host events and signal any server (default
	// DefaultMonitorRoles); SignalRoles may signal their project's servers (default
	// DefaultSignalRoles).
	MonitorRoles []string
	SignalRoles  []string
	// SignalWindow: a server signalled again within it after an accepted signal gets
	// "coalesced"; more than SignalBurst requests for one server within it get 429
	// (defaults 60 s and 5).
	SignalWindow time.Duration
	SignalBurst  int
	// TokenTTL bounds how long a validated token is trusted without asking Keystone again
	// (default 60 s; never beyond the token's expiry).
	TokenTTL time.Duration
	Clock    clock.Clock
	Log      *slog.Logger
}

type handler struct {
	o     Options
	clock clock.Clock
	log   *slog.Logger
	mux   *http.ServeMux

	mu      sync.Mutex
	tokens  map[[32]byte]cachedToken
	signals map[string]*signalWindow // by server
}

type cachedToken struct {
	info  Caller
	until time.Time
}

type signalWindow struct {
	start    time.Time // of the window
	accepted bool      // a signal was handed on in it
	requests int
}

// maxCachedTokens bounds the token cache (expired entries go first; then all).
const maxCachedTokens = 4096

// NewHandler returns the API's handler.
func NewHandler(o Options) http.Handler {
	if len(o.MonitorRoles) == 0 {
		o.MonitorRoles = DefaultMonitorRoles
	}
	if len(o.SignalRoles) == 0 {
		o.SignalRoles = DefaultSignalRoles
	}
	if o.SignalWindow <= 0 {
		o.SignalWindow = time.Minute
	}
	if o.SignalBurst <= 0 {
		o.SignalBurst = 5
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Minute
	}
	h := &handler{
		o: o, clock: clock.Or(o.Clock), mux: http.NewServeMux(),
		tokens: map[[32]byte]cachedToken{}, signals: map[string]*signalWindow{},
	}
	h.log = o.Log
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "haapi")
	h.mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	h.mux.HandleFunc("POST "+PathInstanceEvents, h.instanceEvent)
	h.mux.HandleFunc("POST "+PathHostEvents, h.hostEvent)
	h.mux.HandleFunc("POST "+PathSignal, h.signal)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such resource: "+r.URL.Path)
	})
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		// A bug of the daemon answers 500, said in JSON and logged with its stack, rather than
		// a connection closed without a word; the monitor retries a 500 as any 5xx.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.Error("a request failed on a bug: answered 500", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "the daemon failed on this request (its log says why); try again")
		}
	}()
	// A known path asked with another method: 405, said in JSON (the mux's catch-all would
	// say 404).
	allow := ""
	switch {
	case r.URL.Path == PathHealth:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			allow = "GET, HEAD"
		}
	case r.URL.Path == PathInstanceEvents, r.URL.Path == PathHostEvents, signalPath.MatchString(r.URL.Path):
		if r.Method != http.MethodPost {
			allow = http.MethodPost
		}
	}
	if allow != "" {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	h.mux.ServeHTTP(w, r)
}

var signalPath = regexp.MustCompile(`^/v1/servers/[^/]+/signal$`)

// uuidRE is Nova's server id (and the domain UUID Nova's libvirt driver gives its guests).
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// hostRE is a host name as Nova and Pacemaker take it.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

func (h *handler) instanceEvent(w http.ResponseWriter, r *http.Request) {
	caller, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if !caller.HasRole(h.o.MonitorRoles...) {
		writeError(w, http.StatusForbidden, "reporting instance events needs one of the roles "+strings.Join(h.o.MonitorRoles, ", "))
		return
	}
	var e instancemon.Event
	if !decode(w, r, &e) {
		return
	}
	if err := h.checkEvent(&e); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, err := h.o.Sink.InstanceFailed(r.Context(), e, caller)
	h.answer(w, r, ans, err, "server", e.Server, "event", string(e.Kind), "host", e.Host)
}

func (h *handler) hostEvent(w http.ResponseWriter, r *http.Request) {
	caller, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if !caller.HasRole(h.o.MonitorRoles...) {
		writeError(w, http.StatusForbidden, "reporting host events needs one of the roles "+strings.Join(h.o.MonitorRoles, ", "))
		return
	}
	var e instancemon.HostEvent
	if !decode(w, r, &e) {
		return
	}
	switch {
	case !hostRE.MatchString(e.Host):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("host: %q is not a host name", e.Host))
		return
	case !processRE.MatchString(e.Process):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("process: %q is not a process name", e.Process))
		return
	case e.State != instancemon.ProcessFailed && e.State != instancemon.ProcessRecovered:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state: %q is not failed or recovered", e.State))
		return
	case len(e.Detail) > 1024:
		writeError(w, http.StatusBadRequest, "detail: longer than 1024 bytes")
		return
	}
	if e.Time.IsZero() {
		e.Time = h.clock.Now()
	}
	ans, err := h.o.Sink.HostProcess(r.Context(), e, caller)
	h.answer(w, r, ans, err, "host", e.Host, "process", e.Process, "state", string(e.State))
}

// processRE is a process name.
var processRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$`)

// checkEvent validates a report and fills its defaults.
func (h *handler) checkEvent(e *instancemon.Event) error {
	switch {
	case !uuidRE.MatchString(e.Server):
		return fmt.Errorf("server: %q is not a server UUID", e.Server)
	case !e.Kind.Known():
		return fmt.Errorf("event: %q is not one of crashed, stopped, io-error, watchdog, control-error", e.Kind)
	case !hostRE.MatchString(e.Host):
		return fmt.Errorf("host: %q is not a host name", e.Host)
	case len(e.Domain) > 255 || len(e.Reason) > 255 || len(e.Action) > 64 || len(e.Device) > 4096:
		return errors.New("domain, reason, action or device too long")
	case e.Count < 0 || e.Count > 1_000_000:
		return fmt.Errorf("count: %d is out of range", e.Count)
	}
	switch e.Source {
	case "":
		e.Source = instancemon.FromEvent
	case instancemon.FromEvent, instancemon.FromReconcile:
	default:
		return fmt.Errorf("source: %q is not event or reconcile", e.Source)
	}
	if e.Count == 0 {
		e.Count = 1
	}
	if e.Time.IsZero() {
		e.Time = h.clock.Now()
	}
	return nil
}

func (h *handler) signal(w http.ResponseWriter, r *http.Request) {
	caller, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	monitor := caller.HasRole(h.o.MonitorRoles...)
	if !monitor && !caller.HasRole(h.o.SignalRoles...) {
		writeError(w, http.StatusForbidden, "signalling a server needs one of the roles "+strings.Join(h.o.SignalRoles, ", "))
		return
	}
	id := r.PathValue("id")
	if !uuidRE.MatchString(id) {
		writeError(w, http.StatusNotFound, "no server "+strconv.Quote(id))
		return
	}
	var req SignalRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Reason) > MaxReason {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reason: longer than %d bytes", MaxReason))
		return
	}
	s, err := h.o.Servers.Server(r.Context(), id)
	switch {
	case openstack.IsNotFound(err):
		writeError(w, http.StatusNotFound, "no server "+id)
		return
	case err != nil:
		h.log.Warn("finding a signalled server failed", "server", id, "error", err)
		writeError(w, http.StatusServiceUnavailable, "the server cannot be looked up now; try again")
		return
	}
	// Another project's server is not found, as in Nova: its existence is not told.
	if s.ProjectID != caller.ProjectID && !monitor {
		writeError(w, http.StatusNotFound, "no server "+id)
		return
	}
	coalesced, retry := h.throttle(id)
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
		writeError(w, http.StatusTooManyRequests, "server "+id+" was signalled too often; try again later")
		return
	}
	if coalesced {
		writeJSON(w, http.StatusAccepted, Answer{Status: Coalesced, Reason: "a signal for this server was taken less than " + h.o.SignalWindow.String() + " ago"})
		return
	}
	ans, err := h.o.Sink.Signal(r.Context(), s, req.Reason, caller)
	if err == nil && ans.Status == Accepted {
		// Only a signal the daemon took makes the next ones within the window coalesce: one
		// it could not take (503) or ignored may be sent again.
		h.accepted(id)
	}
	h.answer(w, r, ans, err, "server", id, "signal", req.Reason, "user", caller.UserName, "project", caller.ProjectName)
}

func (h *handler) accepted(server string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if win, ok := h.signals[server]; ok {
		win.accepted = true
	}
}

// throttle counts a signal for server: coalesced when one was accepted within the window, a
// wait (429) when the window has more than SignalBurst requests.
func (h *handler) throttle(server string) (coalesced bool, retry time.Duration) {
	now := h.clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s, win := range h.signals {
		if now.Sub(win.start) >= h.o.SignalWindow {
			delete(h.signals, s)
		}
	}
	win, ok := h.signals[server]
	if !ok {
		win = &signalWindow{start: now}
		h.signals[server] = win
	}
	win.requests++
	if win.requests > h.o.SignalBurst {
		return false, win.start.Add(h.o.SignalWindow).Sub(now)
	}
	return win.accepted, 0
}

// authenticate validates the request's token, answering 401 (or 503) itself when it fails.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (Caller, bool) {
	token := r.Header.Get("X-Auth-Token")
	if token == "" {
		writeError(w, http.StatusUnauthorized, "no X-Auth-Token: a Keystone token is needed")
		return Caller{}, false
	}
	key := sha256.Sum256([]byte(token))
	now := h.clock.Now()
	h.mu.Lock()
	c, ok := h.tokens[key]
	h.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.info, true
	}
	info, err := h.o.Tokens.Token(r.Context(), token)
	switch {
	case errors.Is(err, openstack.ErrUnauthorized):
		writeError(w, http.StatusUnauthorized, "the token is not valid")
		return Caller{}, false
	case err != nil:
		h.log.Warn("validating a token failed", "error", err)
		writeError(w, http.StatusServiceUnavailable, "Keystone cannot validate the token now; try again")
		return Caller{}, false
	}
	until := now.Add(h.o.TokenTTL)
	if !info.ExpiresAt.IsZero() && info.ExpiresAt.Before(until) {
		until = info.ExpiresAt
	}
	h.mu.Lock()
	if len(h.tokens) >= maxCachedTokens {
		for k, v := range h.tokens {
			if !now.Before(v.until) {
				delete(h.tokens, k)
			}
		}
		if len(h.tokens) >= maxCachedTokens {
			clear(h.tokens)
		}
	}
	h.tokens[key] = cachedToken{info: info, until: until}
	h.mu.Unlock()
	return info, true
}

// decode reads a JSON body strictly, answering 413, 415 or 400 itself when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "the body must be application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBody))
			return false
		}
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not the expected JSON: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "the body has more than one JSON value")
		return false
	}
	return true
}

func (h *handler) answer(w http.ResponseWriter, r *http.Request, ans Answer, err error, attrs ...any) {
	switch {
	case errors.Is(err, ErrUnavailable):
		h.log.Warn("request not decided", append(attrs, "error", err)...)
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The caller went away: nothing to answer.
	case err != nil:
		h.log.Error("request failed", append(attrs, "error", err)...)
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		h.log.Info("request taken", append(attrs, "status", string(ans.Status), "reason", ans.Reason)...)
		writeJSON(w, http.StatusAccepted, ans)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Title, b.Error.Message = code, http.StatusText(code), msg
	writeJSON(w, code, b)
}
