// Package verify asks Toloka whether an API key is accepted, with one
// GET /api/v1/requester per key. The key travels only in the Authorization
// header: never in a URL, never in an error text.
package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"

	"strconv"
	"strings"
	"syscall"
	"time"
)

// Status of a key as Toloka answered.
type Status string

const (
	// Valid: Toloka accepted the key (HTTP 200).
	Valid Status = "valid"
	// Invalid: Toloka rejected the key (401, or an authentication error code).
	Invalid Status = "invalid"
	// Denied: the key authenticates but the account may not use the API (other 403).
	Denied Status = "denied"
	// NoAnswer: no usable answer (network, timeout, retries exhausted,
	// redirect, other status, unreadable body); the stored status stays.
	NoAnswer Status = ""
)

// Account is what a 200 answer tells about the key's owner.
type Account struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CompanyID string `json:"company_id"`
}

// Result of one Check.
type Result struct {
	Status     Status
	Account    *Account // nil unless Valid
	Balance    *float64 // nil unless given in a 200 body
	HTTPStatus int      // last HTTP status seen, 0 if none
	RequestID  string   // request_id of an error body, else the X-Request-Id header
	Err        string   // "" unless NoAnswer; never contains the key
	Tries      int      // requests made
}

// Checker is what the command line needs, so its tests can fake it.
type Checker interface {
	Check(ctx context.Context, base, key string) Result
}

const (
	requesterPath = "api/v1/requester"
	maxBody       = 1 << 20
	redacted      = "[redacted]"
	defaultUA     = "toloka-vault"
	authErr       = "AUTHENTICATION_ERROR"
	oauthAuthEr   = "OAUTH_AUTHENTICATION_ERROR"
)

// Scheme returns "apikey" for the current key shape (exactly two dots, the
// first at index 22, 23 or 24), else "oauth". toloka-kit and the Java SDK
// decide the same way.
func Scheme(key string) string {
	if i := strings.IndexByte(key, '.'); i >= 22 && i <= 24 && strings.Count(key, ".") == 2 {
		return "apikey"
	}
	return "oauth"
}

// AuthHeader returns the Authorization value for key: "ApiKey <key>" or
// "OAuth <key>" by Scheme.
func AuthHeader(key string) string {
	if Scheme(key) == "apikey" {
		return "ApiKey " + key
	}
	return "OAuth " + key
}

// ErrBaseURL is wrapped by CheckBaseURL for a base URL a key must not be sent to.
var ErrBaseURL = errors.New("invalid base url")

// CheckBaseURL returns nil for an https URL, or an http one whose host is
// loopback (127.0.0.0/8, ::1, localhost): anything else could carry the key in
// clear text or to an unintended place. The error names the URL, which never
// holds a key.
func CheckBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w %q: cannot parse", ErrBaseURL, raw)
	}
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBaseURL, raw, why) }
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return bad("scheme must be https")
	case u.Opaque != "" || u.Hostname() == "":
		return bad("no host")
	case u.User != nil:
		return bad("user info not allowed")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("query not allowed")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("fragment not allowed")
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return bad("http is allowed only for loopback hosts")
	}
	return nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Client checks keys. The zero value is ready to use; zero fields take the
// defaults below.
type Client struct {
	// HTTP sends the requests; nil means a private client on
	// http.DefaultTransport (so proxy settings apply). Redirects are never
	// followed: Check uses a copy whose CheckRedirect stops at the first
	// response, whatever the given client says.
	HTTP *http.Client
	// UserAgent, e.g. "toloka-vault/v0.1.0"; default "toloka-vault".
	UserAgent string
	// Timeout bounds each try, body included; default 10s.
	Timeout time.Duration
	// Tries in all, first included; default 3.
	Tries int
	// MaxRetryAfter caps a server's Retry-After and the backoff; default 30s.
	MaxRetryAfter time.Duration
	// Sleep waits d or until ctx is done; tests replace it to run fast.
	// Default: a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// BaseDelay of the backoff, default 500ms: after try n the wait is
	// BaseDelay*2^(n-1) with jitter in [d/2, d], unless Retry-After says otherwise.
	BaseDelay time.Duration
}

var _ Checker = (*Client)(nil)

// noRedirect keeps the key from following a redirect to another host: the
// 3xx response itself is returned.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

var privateHTTP = &http.Client{CheckRedirect: noRedirect}

func (c *Client) httpClient() *http.Client {
	if c.HTTP == nil {
		return privateHTTP
	}
	hc := *c.HTTP // a copy: the caller's client is not changed
	hc.CheckRedirect = noRedirect
	return &hc
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// answer is what one try got: a response (status, header, body) or err.
type answer struct {
	status   int
	header   http.Header
	body     []byte
	tooLarge bool
	err      error
}

// Check asks base (e.g. "https://toloka.dev") whether key is accepted:
// GET {base}/api/v1/requester, retrying 408, 429, 500, 502, 503, 504 and
// network errors up to Tries in all. A base refused by CheckBaseURL is never
// contacted. Cancelling ctx stops everything.
func (c *Client) Check(ctx context.Context, base, key string) Result {
	res := c.check(ctx, base, key)
	// Whatever came from the server, or an error text, is cleaned: control
	// characters out, the key (or a long piece of it) redacted, length capped.
	if key != "" {
		res.Err = strings.ReplaceAll(res.Err, key, redacted)
		res.RequestID = strings.ReplaceAll(res.RequestID, key, redacted)
	}
	res.Err = clean(res.Err, key, maxErr)
	res.RequestID = clean(res.RequestID, key, maxField)
	if a := res.Account; a != nil {
		res.Account = &Account{ID: clean(a.ID, key, maxField), Name: clean(a.Name, key, maxField), CompanyID: clean(a.CompanyID, key, maxField)}
	}
	return res
}

func (c *Client) check(ctx context.Context, base, key string) Result {
	var res Result
	if err := CheckBaseURL(base); err != nil {
		res.Err = err.Error()
		return res
	}
	u, _ := url.Parse(base) // checked above
	u = u.JoinPath(requesterPath)
	target := u.String()

	tries := max(orDefault(c.Tries, 3), 1)
	timeout := orDefault(c.Timeout, 10*time.Second)
	sleep := c.Sleep
	if sleep == nil {
		sleep = realSleep
	}
	hc := c.httpClient()

	for try := 1; ; try++ {
		res.Tries = try
		a := c.once(ctx, hc, target, key, timeout)
		if err := ctx.Err(); err != nil {
			res.Err = "canceled: " + err.Error()
			return res
		}
		var wait time.Duration
		var told bool // the server said when to come back
		if a.err != nil {
			res.Err = u.Host + ": " + a.err.Error()
			if try > 1 {
				res.Err += " (" + nTries(try) + ")"
			}
		} else {
			res.HTTPStatus = a.status
			res.RequestID = a.header.Get("X-Request-Id")
			if done := classify(&res, a); done {
				return res
			}
			res.Err = fmt.Sprintf("HTTP %d after %s", a.status, nTries(try))
			wait, told = retryAfter(a.header.Get("Retry-After"), time.Now())
		}
		if try >= tries {
			return res
		}
		if !told {
			wait = c.backoff(try)
		}
		if err := sleep(ctx, min(wait, orDefault(c.MaxRetryAfter, 30*time.Second))); err != nil {
			res.Err = "canceled: " + err.Error()
			return res
		}
	}
}

// once makes one request and reads at most maxBody+1 bytes of its body, all
// within timeout. a.err is a short, already described network error.
func (c *Client) once(ctx context.Context, hc *http.Client, target, key string, timeout time.Duration) (a answer) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if a.err != nil {
			a.err = describe(ctx, a.err, timeout)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Authorization", AuthHeader(key))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", orDefault(c.UserAgent, defaultUA))
	resp, err := hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	// Closing without draining drops the connection, which is what an
	// oversized body deserves.
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return answer{err: fmt.Errorf("reading answer: %w", err)}
	}
	return answer{
		status:   resp.StatusCode,
		header:   resp.Header,
		body:     body[:min(len(body), maxBody)],
		tooLarge: len(body) > maxBody,
	}
}

// classify fills res from a; false means a retryable status.
func classify(res *Result, a answer) bool {
	var e struct {
		Code      string `json:"code"`
		RequestID string `json:"request_id"`
	}
	if a.status >= 300 && a.status < 400 {
		// Not followed, whatever its body says: no answer from Toloka.
		res.Err = fmt.Sprintf("HTTP %d: redirected to another location (not followed)", a.status)
		return true
	}
	if !a.tooLarge && json.Unmarshal(a.body, &e) == nil {
		if e.RequestID != "" {
			res.RequestID = e.RequestID
		}
		// Toloka's status for a deleted key is unconfirmed, so the code
		// decides first.
		if e.Code == authErr || e.Code == oauthAuthEr {
			res.Status, res.Err = Invalid, ""
			return true
		}
	}
	res.Err = ""
	switch s := a.status; {
	case s == http.StatusOK:
		if a.tooLarge {
			res.Err = "body too large"
			return true
		}
		acct, bal, err := parseRequester(a.body)
		if err != nil {
			res.Err = "unreadable answer: " + err.Error()
			return true
		}
		res.Status, res.Account, res.Balance = Valid, &acct, bal
	case s == http.StatusUnauthorized:
		res.Status = Invalid
	case s == http.StatusForbidden:
		res.Status = Denied
	case retryable(s):
		return false
	default:
		res.Err = fmt.Sprintf("unexpected HTTP %d", s)
	}
	return true
}

// nTries says how many tries were made: "1 try", "3 tries".
func nTries(n int) string {
	if n == 1 {
		return "1 try"
	}
	return strconv.Itoa(n) + " tries"
}

func retryable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// parseRequester reads a 200 body, which must be one JSON object. Its
// fields only describe the account, so each is read leniently: an
// unexpected type gives an empty value, never an error.
func parseRequester(body []byte) (Account, *float64, error) {
	var r map[string]json.RawMessage
	if err := json.Unmarshal(body, &r); err != nil || r == nil {
		return Account{}, nil, errors.New("not a json object")
	}
	acct := Account{ID: text(r["id"]), Name: publicName(r["public_name"])}
	var company map[string]json.RawMessage
	if json.Unmarshal(r["company"], &company) == nil {
		acct.CompanyID = text(company["id"])
	}
	return acct, number(r["balance"]), nil
}

// text reads a string or a number; anything else is "".
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// publicName reads a name given as a string, or as an object by language:
// EN, else the first name given (in the answer's order).
func publicName(raw json.RawMessage) string {
	d := json.NewDecoder(bytes.NewReader(raw))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return text(raw)
	}
	first := ""
	for d.More() {
		lang, err := d.Token()
		var v json.RawMessage
		if err != nil || d.Decode(&v) != nil {
			break
		}
		n := text(v)
		if lang == "EN" && n != "" {
			return n
		}
		if first == "" {
			first = n
		}
	}
	return first
}

// number reads a number, or a string holding one; anything else is nil.
func number(raw json.RawMessage) *float64 {
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return &f
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return &f
		}
	}
	return nil
}

// retryAfter reads a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		// Large values saturate rather than overflow; the caller caps them.
		return time.Duration(min(s, int64(time.Duration(1<<62)/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// backoff is the wait after try n: BaseDelay*2^(n-1) with full jitter in
// [d/2, d], so parallel checks do not retry in step.
func (c *Client) backoff(n int) time.Duration {
	d := orDefault(c.BaseDelay, 500*time.Millisecond)
	limit := orDefault(c.MaxRetryAfter, 30*time.Second)
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

func realSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// describe turns a network error into a short lowercase reason. tryCtx is the
// per-try context, whose deadline is the timeout.
func describe(tryCtx context.Context, err error, timeout time.Duration) error {
	var ne net.Error
	var dns *net.DNSError
	switch {
	case errors.Is(tryCtx.Err(), context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("timeout after %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("connection reset")
	case errors.As(err, &dns):
		return fmt.Errorf("cannot resolve host: %s", dns.Err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err // without the "Get <url>:" prefix
	}
	return err
}
