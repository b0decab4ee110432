package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	// apiKey has the current shape: 22 "." 4 "." 107 characters.
	apiKey   = strings.Repeat("k", 22) + "." + "abcd" + "." + strings.Repeat("Z", 107)
	oauthKey = "AQAAAAAAbcdefghijklmnopqrstuvwxyz"
)

// sleeps records the waits Check asks for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newClient() (*Client, *sleeps) {
	s := &sleeps{}
	return &Client{UserAgent: "toloka-vault/test", Sleep: s.sleep}, s
}

// check runs c.Check and asserts what must hold for every result: the key
// is in no text Check returns.
func check(t *testing.T, c *Client, ctx context.Context, base, key string) Result {
	t.Helper()
	res := c.Check(ctx, base, key)
	for name, s := range map[string]string{"Err": res.Err, "RequestID": res.RequestID} {
		if strings.Contains(s, key) {
			t.Fatalf("%s contains the key: %q", name, s)
		}
	}
	if res.Status != NoAnswer && res.Err != "" {
		t.Errorf("Status %q with Err %q", res.Status, res.Err)
	}
	if (res.Account != nil) != (res.Status == Valid) {
		t.Errorf("Account %v with Status %q", res.Account, res.Status)
	}
	return res
}

// reply answers as Toloka would: JSON with a request id unless body is HTML.
func reply(w http.ResponseWriter, status int, body string) {
	if strings.HasPrefix(body, "<") {
		w.Header().Set("Content-Type", "text/html")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// script answers the n-th request with steps[n] (the last step repeats) and
// counts requests.
type script struct {
	hits  atomic.Int32
	steps []func(w http.ResponseWriter, r *http.Request)
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.hits.Add(1)) - 1
	s.steps[min(n, len(s.steps)-1)](w, r)
}

func respond(status int, body string, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		reply(w, status, body)
	}
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func ptr[T any](v T) *T { return &v }

func TestScheme(t *testing.T) {
	seg := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		key, want string
	}{
		{apiKey, "apikey"},
		{seg(22) + "." + seg(4) + "." + seg(107), "apikey"},
		{seg(23) + "." + seg(4) + "." + seg(107), "apikey"},
		{seg(24) + "." + seg(4) + "." + seg(107), "apikey"},
		{seg(24) + ".." + seg(107), "apikey"},
		{seg(21) + "." + seg(4) + "." + seg(107), "oauth"},
		{seg(25) + "." + seg(4) + "." + seg(107), "oauth"},
		{seg(22) + "." + seg(4) + "." + seg(10) + "." + seg(5), "oauth"},
		{seg(22) + "." + seg(111), "oauth"},
		{oauthKey, "oauth"},
		{"", "oauth"},
	} {
		if got := Scheme(tc.key); got != tc.want {
			t.Errorf("Scheme(%d chars, first dot %d) = %q, want %q",
				len(tc.key), strings.IndexByte(tc.key, '.'), got, tc.want)
		}
	}
}

func TestAuthHeader(t *testing.T) {
	if got := AuthHeader(apiKey); got != "ApiKey "+apiKey {
		t.Errorf("AuthHeader(api key) = %q", got)
	}
	if got := AuthHeader(oauthKey); got != "OAuth "+oauthKey {
		t.Errorf("AuthHeader(oauth) = %q", got)
	}
}

func TestCheckBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://toloka.dev", true},
		{"https://sandbox.toloka.dev/", true},
		{"https://toloka.dev:8443/proxy", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.5.6.7", true},
		{"http://[::1]:1", true},
		{"http://localhost", true},
		{"http://LOCALHOST:9/x", true},
		{"http://example.com", false},
		{"http://10.0.0.1", false},
		{"http://localhost.example.com", false},
		{"http://[::2]", false},
		{"ftp://x", false},
		{"", false},
		{"https://", false},
		{"https:toloka.dev", false},
		{"toloka.dev", false},
		{"https://user:pw@toloka.dev", false},
		{"https://toloka.dev/?a=1", false},
		{"https://toloka.dev?", false},
		{"https://toloka.dev/#x", false},
		{"https://toloka.dev/#", false},
		{"https://toloka.dev:port", false},
		{"https://tol oka.dev", false},
	} {
		err := CheckBaseURL(tc.url)
		if tc.ok {
			if err != nil {
				t.Errorf("CheckBaseURL(%q) = %v, want nil", tc.url, err)
			}
			continue
		}
		if !errors.Is(err, ErrBaseURL) {
			t.Errorf("CheckBaseURL(%q) = %v, want ErrBaseURL", tc.url, err)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.url)) {
			t.Errorf("CheckBaseURL(%q) = %v, want the url named", tc.url, err)
		}
	}
}

func TestCheckClassify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		header    []string
		want      Status
		account   *Account
		balance   *float64
		requestID string
		err       string
	}{
		{
			name:   "200 full",
			status: 200,
			body:   `{"id":"acc-1","balance":121.3,"public_name":{"EN":"Jack Smith","RU":"Джек Смит"},"company":{"id":"co-1","superintendent_id":"acc-0"}}`,
			want:   Valid, account: &Account{"acc-1", "Jack Smith", "co-1"}, balance: ptr(121.3),
		},
		{
			name: "200 without company", status: 200,
			body: `{"id":"acc-2","balance":0,"public_name":{"EN":"Solo"}}`,
			want: Valid, account: &Account{ID: "acc-2", Name: "Solo"}, balance: ptr(0.0),
		},
		{
			name: "200 only RU name", status: 200,
			body: `{"id":"acc-3","public_name":{"RU":"Иван"}}`,
			want: Valid, account: &Account{ID: "acc-3", Name: "Иван"},
		},
		{
			name: "200 first name by language", status: 200,
			body: `{"id":"acc-4","public_name":{"DE":"","TR":"Ali","FR":"Jean","EN":""}}`,
			want: Valid, account: &Account{ID: "acc-4", Name: "Ali"},
		},
		{
			name: "200 empty object", status: 200, body: `{}`,
			want: Valid, account: &Account{},
		},
		{
			name: "200 request id header", status: 200, body: `{"id":"a"}`,
			header: []string{"X-Request-Id", "hdr-1"},
			want:   Valid, account: &Account{ID: "a"}, requestID: "hdr-1",
		},
		{
			name: "200 invalid json", status: 200, body: `{"id": "acc`,
			want: NoAnswer, err: "unreadable answer",
		},
		{name: "200 null", status: 200, body: `null`, want: NoAnswer, err: "unreadable answer"},
		{name: "200 array", status: 200, body: `[]`, want: NoAnswer, err: "unreadable answer"},
		{name: "200 html", status: 200, body: `<html>portal</html>`, want: NoAnswer, err: "unreadable answer"},
		// Display fields of unexpected types never fail the check.
		{name: "200 id number", status: 200, body: `{"id":7}`, want: Valid, account: &Account{ID: "7"}},
		{
			name: "200 public_name string, balance string", status: 200,
			body: `{"id":"a","public_name":"Jack","balance":"12.5"}`,
			want: Valid, account: &Account{ID: "a", Name: "Jack"}, balance: ptr(12.5),
		},
		{
			name: "200 odd types", status: 200,
			body: `{"id":{"x":1},"public_name":["a"],"balance":true,"company":"co"}`,
			want: Valid, account: &Account{},
		},
		{
			name: "200 odd nested types", status: 200,
			body: `{"public_name":{"EN":5,"RU":null},"balance":"NaN","company":{"id":[1]}}`,
			want: Valid, account: &Account{Name: "5"},
		},
		{
			name: "401", status: 401,
			body: `{"request_id":"rq-1","code":"AUTHENTICATION_ERROR","message":"Authentication failed"}`,
			want: Invalid, requestID: "rq-1",
		},
		{name: "401 no body", status: 401, want: Invalid},
		{
			name: "401 oauth", status: 401,
			body: `{"request_id":"rq-2","code":"OAUTH_AUTHENTICATION_ERROR","message":"x"}`,
			want: Invalid, requestID: "rq-2",
		},
		{
			name: "403 authentication error", status: 403,
			body:   `{"request_id":"rq-3","code":"AUTHENTICATION_ERROR","message":"x"}`,
			header: []string{"X-Request-Id", "hdr-3"},
			want:   Invalid, requestID: "rq-3",
		},
		{
			name: "403 access denied", status: 403,
			body: `{"request_id":"rq-4","code":"ACCESS_DENIED","message":"x","payload":{}}`,
			want: Denied, requestID: "rq-4",
		},
		{name: "403 html", status: 403, body: `<html>forbidden</html>`, want: Denied},
		{
			name: "404", status: 404,
			body: `{"request_id":"rq-5","code":"DOES_NOT_EXIST"}`,
			want: NoAnswer, requestID: "rq-5", err: "unexpected HTTP 404",
		},
		{name: "418", status: 418, body: `short and stout`, want: NoAnswer, err: "unexpected HTTP 418"},
		{name: "501 not retried", status: 501, want: NoAnswer, err: "unexpected HTTP 501"},
		{name: "304", status: 304, want: NoAnswer, err: "not followed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{steps: []func(http.ResponseWriter, *http.Request){respond(tc.status, tc.body, tc.header...)}}
			srv := serve(t, s)
			c, sl := newClient()
			res := check(t, c, t.Context(), srv.URL, apiKey)
			if res.Status != tc.want {
				t.Errorf("Status = %q, want %q (Err %q)", res.Status, tc.want, res.Err)
			}
			if (res.Account == nil) != (tc.account == nil) || res.Account != nil && *res.Account != *tc.account {
				t.Errorf("Account = %+v, want %+v", res.Account, tc.account)
			}
			if (res.Balance == nil) != (tc.balance == nil) || res.Balance != nil && *res.Balance != *tc.balance {
				t.Errorf("Balance = %v, want %v", res.Balance, tc.balance)
			}
			if res.HTTPStatus != tc.status {
				t.Errorf("HTTPStatus = %d, want %d", res.HTTPStatus, tc.status)
			}
			if res.RequestID != tc.requestID {
				t.Errorf("RequestID = %q, want %q", res.RequestID, tc.requestID)
			}
			if tc.err == "" && res.Err != "" || !strings.Contains(res.Err, tc.err) {
				t.Errorf("Err = %q, want it to contain %q", res.Err, tc.err)
			}
			if res.Tries != 1 || s.hits.Load() != 1 || len(sl.got()) != 0 {
				t.Errorf("Tries = %d, requests = %d, sleeps = %v; want one try", res.Tries, s.hits.Load(), sl.got())
			}
		})
	}
}

func TestCheckRequestShape(t *testing.T) {
	for _, tc := range []struct {
		key, auth, base, path string
	}{
		{apiKey, "ApiKey " + apiKey, "", "/api/v1/requester"},
		{oauthKey, "OAuth " + oauthKey, "", "/api/v1/requester"},
		{apiKey, "ApiKey " + apiKey, "/", "/api/v1/requester"},
		{apiKey, "ApiKey " + apiKey, "/proxy", "/proxy/api/v1/requester"},
		{apiKey, "ApiKey " + apiKey, "/proxy/", "/proxy/api/v1/requester"},
	} {
		var got *http.Request
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r.Clone(context.Background())
			reply(w, 200, `{"id":"a"}`)
		}))
		c, _ := newClient()
		if res := check(t, c, t.Context(), srv.URL+tc.base, tc.key); res.Status != Valid {
			t.Fatalf("base %q: Status %q, Err %q", tc.base, res.Status, res.Err)
		}
		if got.Method != http.MethodGet || got.URL.Path != tc.path || got.URL.RawQuery != "" || got.URL.ForceQuery {
			t.Errorf("base %q: request %s %s, want GET %s with no query", tc.base, got.Method, got.URL, tc.path)
		}
		for h, want := range map[string]string{
			"Authorization": tc.auth,
			"Accept":        "application/json",
			"User-Agent":    "toloka-vault/test",
		} {
			if v := got.Header.Values(h); len(v) != 1 || v[0] != want {
				t.Errorf("base %q: header %s = %q, want %q", tc.base, h, v, want)
			}
		}
		if strings.Contains(got.URL.String(), tc.key) {
			t.Errorf("the key is in the URL")
		}
	}
}

func TestCheckDefaultUserAgent(t *testing.T) {
	var ua string
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua = r.UserAgent()
		reply(w, 200, `{}`)
	}))
	check(t, &Client{}, t.Context(), srv.URL, apiKey)
	if ua != "toloka-vault" {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestCheckRetryAfter(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		respond(429, `{"request_id":"rq","code":"TOO_MANY_REQUESTS"}`, "Retry-After", "1"),
		respond(200, `{"id":"acc"}`),
	}}
	srv := serve(t, s)
	c, sl := newClient()
	res := check(t, c, t.Context(), srv.URL, apiKey)
	if res.Status != Valid || res.Tries != 2 || res.HTTPStatus != 200 || s.hits.Load() != 2 {
		t.Errorf("got %+v after %d requests, want Valid after 2 tries", res, s.hits.Load())
	}
	if got := sl.got(); len(got) != 1 || got[0] != time.Second {
		t.Errorf("sleeps = %v, want [1s]", got)
	}
}

func TestCheckRetryAfterCapped(t *testing.T) {
	for _, tc := range []struct {
		max, want time.Duration
	}{{0, 30 * time.Second}, {5 * time.Second, 5 * time.Second}} {
		s := &script{steps: []func(http.ResponseWriter, *http.Request){
			respond(429, `{"code":"TOO_MANY_REQUESTS"}`, "Retry-After", "3600"),
		}}
		srv := serve(t, s)
		c, sl := newClient()
		c.MaxRetryAfter = tc.max
		res := check(t, c, t.Context(), srv.URL, apiKey)
		if res.Status != NoAnswer || res.Err != "HTTP 429 after 3 tries" || res.Tries != 3 || s.hits.Load() != 3 {
			t.Errorf("got %+v after %d requests", res, s.hits.Load())
		}
		if got := sl.got(); len(got) != 2 || got[0] != tc.want || got[1] != tc.want {
			t.Errorf("MaxRetryAfter %v: sleeps = %v, want two of %v", tc.max, got, tc.want)
		}
	}
}

func TestCheckRetryAfterDate(t *testing.T) {
	at := time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		respond(503, `{"code":"REMOTE_SERVICE_UNAVAILABLE"}`, "Retry-After", at),
		respond(200, `{}`),
	}}
	srv := serve(t, s)
	c, sl := newClient()
	if res := check(t, c, t.Context(), srv.URL, apiKey); res.Status != Valid {
		t.Fatalf("got %+v", res)
	}
	if got := sl.got(); len(got) != 1 || got[0] < 7*time.Second || got[0] > 10*time.Second {
		t.Errorf("sleeps = %v, want about 10s", got)
	}
}

func TestCheck503HTMLThenOK(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		respond(503, `<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>`),
		respond(200, `{"id":"acc","public_name":{"EN":"N"}}`),
	}}
	srv := serve(t, s)
	c, sl := newClient()
	res := check(t, c, t.Context(), srv.URL, apiKey)
	if res.Status != Valid || res.Account.Name != "N" || res.Tries != 2 {
		t.Errorf("got %+v", res)
	}
	if got := sl.got(); len(got) != 1 || got[0] < 250*time.Millisecond || got[0] > 500*time.Millisecond {
		t.Errorf("sleeps = %v, want one in [250ms, 500ms]", got)
	}
}

func TestCheck503Always(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){respond(503, `<html>down</html>`)}}
	srv := serve(t, s)
	c, sl := newClient()
	res := check(t, c, t.Context(), srv.URL, apiKey)
	if res.Status != NoAnswer || res.Err != "HTTP 503 after 3 tries" || res.HTTPStatus != 503 || res.Tries != 3 {
		t.Errorf("got %+v", res)
	}
	if n := s.hits.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	got := sl.got()
	if len(got) != 2 ||
		got[0] < 250*time.Millisecond || got[0] > 500*time.Millisecond ||
		got[1] < 500*time.Millisecond || got[1] > time.Second {
		t.Errorf("sleeps = %v, want [250ms..500ms, 500ms..1s]", got)
	}
}

func TestCheckRetryableStatuses(t *testing.T) {
	for _, status := range []int{408, 429, 500, 502, 503, 504} {
		s := &script{steps: []func(http.ResponseWriter, *http.Request){
			respond(status, `{"code":"INTERNAL_ERROR"}`),
			respond(200, `{"id":"x"}`),
		}}
		srv := serve(t, s)
		c, _ := newClient()
		if res := check(t, c, t.Context(), srv.URL, apiKey); res.Status != Valid || res.Tries != 2 {
			t.Errorf("HTTP %d then 200: got %+v", status, res)
		}
	}
}

func TestCheckTries(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){respond(500, `{}`)}}
	srv := serve(t, s)
	c, sl := newClient()
	c.Tries = 1
	res := check(t, c, t.Context(), srv.URL, apiKey)
	if res.Err != "HTTP 500 after 1 try" || s.hits.Load() != 1 || len(sl.got()) != 0 {
		t.Errorf("Tries 1: got %+v, %d requests, sleeps %v", res, s.hits.Load(), sl.got())
	}
}

func TestCheckTimeout(t *testing.T) {
	var hits atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		reply(w, 200, `{}`)
	}))
	c, sl := newClient()
	c.Timeout = 150 * time.Millisecond
	start := time.Now()
	res := check(t, c, t.Context(), srv.URL, apiKey)
	elapsed := time.Since(start)
	if res.Status != NoAnswer || !strings.Contains(res.Err, "timeout after 150ms") || res.Tries != 3 || res.HTTPStatus != 0 {
		t.Errorf("got %+v", res)
	}
	if !strings.Contains(res.Err, strings.TrimPrefix(srv.URL, "http://")) {
		t.Errorf("Err %q does not name the host", res.Err)
	}
	if elapsed > 10*time.Second { // 3 tries of 150 ms; only a lost bound takes this long
		t.Errorf("took %v", elapsed)
	}
	if len(sl.got()) != 2 {
		t.Errorf("sleeps = %v, want 2", sl.got())
	}
	// The server may see the last request a moment after the client gave up.
	deadline := time.Now().Add(time.Second)
	for hits.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// A slow body counts against the same per-try timeout as the headers.
func TestCheckSlowBody(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	c, _ := newClient()
	c.Timeout = 100 * time.Millisecond
	res := check(t, c, t.Context(), srv.URL, apiKey)
	if res.Status != NoAnswer || !strings.Contains(res.Err, "timeout after 100ms") || res.Tries != 3 {
		t.Errorf("got %+v", res)
	}
}

func TestCheckConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c, _ := newClient()
	res := check(t, c, t.Context(), base, apiKey)
	if res.Status != NoAnswer || !strings.Contains(res.Err, "connection refused") || res.Tries != 3 {
		t.Errorf("got %+v", res)
	}
}

func TestCheckRedirect(t *testing.T) {
	for name, hc := range map[string]*http.Client{
		"private":   nil,
		"given":     {},
		"following": {CheckRedirect: func(*http.Request, []*http.Request) error { return nil }},
	} {
		t.Run(name, func(t *testing.T) {
			var otherHits atomic.Int32
			other := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				otherHits.Add(1)
				reply(w, 200, `{"id":"thief"}`)
			}))
			// Its body says the key is wrong: a redirect is still no answer.
			s := &script{steps: []func(http.ResponseWriter, *http.Request){
				respond(302, `{"code":"AUTHENTICATION_ERROR","message":"login required"}`, "Location", other.URL+"/api/v1/requester"),
			}}
			srv := serve(t, s)
			c, _ := newClient()
			c.HTTP = hc
			var before func(*http.Request, []*http.Request) error
			if hc != nil {
				before = hc.CheckRedirect
			}
			res := check(t, c, t.Context(), srv.URL, apiKey)
			if res.Status != NoAnswer || !strings.Contains(res.Err, "redirected") || res.HTTPStatus != 302 || res.Tries != 1 {
				t.Errorf("got %+v", res)
			}
			if n := otherHits.Load(); n != 0 {
				t.Errorf("the other server got %d requests", n)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			if hc != nil && (hc.CheckRedirect == nil) != (before == nil) {
				t.Errorf("the given client was changed")
			}
		})
	}
}

// bigBody streams size bytes of a JSON-looking body and reports how much was
// written before the client hung up.
func bigBody(status int, size int64, written chan<- int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		chunk := []byte(strings.Repeat(" ", 32<<10))
		var n int64
		defer func() { written <- n }()
		if _, err := io.WriteString(w, `{"code":"ACCESS_DENIED","x":"`); err != nil {
			return
		}
		for n < size {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				return
			}
		}
	}
}

func TestCheckLargeBody(t *testing.T) {
	const size = 64 << 20
	for _, tc := range []struct {
		status int
		want   Status
		err    string
	}{
		{200, NoAnswer, "body too large"},
		{401, Invalid, ""},
		{403, Denied, ""},
	} {
		written := make(chan int64, 1)
		srv := serve(t, bigBody(tc.status, size, written))
		c, _ := newClient()
		res := check(t, c, t.Context(), srv.URL, apiKey)
		if res.Status != tc.want || res.Err != tc.err || res.Tries != 1 {
			t.Errorf("HTTP %d: got %+v", tc.status, res)
		}
		select {
		case n := <-written:
			// Socket buffers hold a few MiB at most; the rest was never sent.
			if n >= 32<<20 {
				t.Errorf("HTTP %d: the server wrote %d MiB before the client hung up", tc.status, n>>20)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("HTTP %d: the server is still writing: the client did not hang up", tc.status)
		}
	}
}

func TestCheckCanceled(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){respond(503, `{}`)}}
	srv := serve(t, s)

	ctx, cancel := context.WithCancel(t.Context())
	c, _ := newClient()
	c.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	res := check(t, c, ctx, srv.URL, apiKey)
	if res.Status != NoAnswer || !strings.Contains(res.Err, "canceled") || res.Tries != 1 || s.hits.Load() != 1 {
		t.Errorf("canceled while waiting: got %+v, %d requests", res, s.hits.Load())
	}

	// With the real timer, cancellation ends the wait at once.
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	c = &Client{BaseDelay: time.Minute}
	start := time.Now()
	res = check(t, c, ctx, srv.URL, apiKey)
	if res.Status != NoAnswer || !strings.Contains(res.Err, "canceled") || time.Since(start) > 2*time.Second {
		t.Errorf("deadline while waiting: got %+v after %v", res, time.Since(start))
	}

	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	res = check(t, &Client{}, ctx, srv.URL, apiKey)
	if res.Status != NoAnswer || !strings.Contains(res.Err, "canceled") || res.Tries != 1 {
		t.Errorf("canceled before: got %+v", res)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckRefusedBaseIsNotContacted(t *testing.T) {
	c, _ := newClient()
	c.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("request sent to %s", r.URL)
		return nil, errors.New("no")
	})}
	for _, base := range []string{"http://example.com", "https://toloka.dev/?x=1", "", "ftp://toloka.dev"} {
		res := check(t, c, t.Context(), base, apiKey)
		if res.Status != NoAnswer || res.Tries != 0 || !strings.Contains(res.Err, ErrBaseURL.Error()) {
			t.Errorf("base %q: got %+v", base, res)
		}
	}
}

func TestCheckScrubsKey(t *testing.T) {
	c, _ := newClient()
	c.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("proxy said no to %s", r.Header.Get("Authorization"))
	})}
	res := check(t, c, t.Context(), "https://toloka.dev", apiKey)
	if res.Status != NoAnswer || !strings.Contains(res.Err, "[redacted]") {
		t.Errorf("got %+v", res)
	}

	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echo, _ := json.Marshal(r.Header.Get("Authorization"))
		reply(w, 418, `{"request_id":`+string(echo)+`}`)
	}))
	c, _ = newClient()
	if res := check(t, c, t.Context(), srv.URL, apiKey); !strings.Contains(res.RequestID, "[redacted]") {
		t.Errorf("got %+v", res)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 2 ", 2 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999999", time.Duration(1<<62) / time.Second * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		if got, ok := retryAfter(tc.v, now); got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{}
	for i := 0; i < 100; i++ {
		for n, hi := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second, 50: 30 * time.Second} {
			if d := c.backoff(n); d < hi/2 || d > hi {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, hi/2, hi)
			}
		}
	}
}

func TestParseRequester(t *testing.T) {
	acct, bal, err := parseRequester([]byte(`{"id":"a","balance":1.5,"public_name":{"RU":"Б","DE":"A"},"company":{"id":"c"},"extra":[1]}`))
	if err != nil || acct != (Account{"a", "Б", "c"}) || bal == nil || *bal != 1.5 {
		t.Errorf("got %+v, %v, %v", acct, bal, err)
	}
	for _, body := range []string{``, `null`, `"x"`, `{} {}`, `[]`, `<html>`} {
		if _, _, err := parseRequester([]byte(body)); err == nil {
			t.Errorf("parseRequester(%q) accepted", body)
		}
	}
}

// FuzzParseRequester: a body is refused exactly when it is not one JSON
// object; display fields never make it fail.
// Seeds are in testdata/fuzz/FuzzParseRequester.
func FuzzParseRequester(f *testing.F) {
	f.Add([]byte(`{"id":"a","balance":1,"public_name":{"EN":"x"},"company":{"id":"c"}}`))
	f.Add([]byte(`{"public_name":"x","balance":"2"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		acct, _, err := parseRequester(body)
		var obj map[string]any
		isObject := json.Unmarshal(body, &obj) == nil && obj != nil
		if (err == nil) != isObject {
			t.Fatalf("parseRequester(%q): err %v, object %v", body, err, isObject)
		}
		if err != nil && acct != (Account{}) {
			t.Errorf("account %+v with error %v", acct, err)
		}
	})
}

// TestCheckCleansAnswer: what a server sends is data, not terminal input.
// Control characters, escape sequences and bidirectional overrides are
// removed from every text Check returns, and each is capped.
func TestCheckCleansAnswer(t *testing.T) {
	esc := "\x1b]0;pwned\x07\x1b[31m\r\u202e\u009b2J"
	body, _ := json.Marshal(map[string]any{
		"id":          "acc" + esc,
		"public_name": map[string]string{"EN": "Jack" + esc + " Smith"},
		"company":     map[string]string{"id": "co" + esc},
		"request_id":  "rq\x1b[2J",
	})
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reply(w, 200, string(body)) }))
	c, _ := newClient()
	res := check(t, c, t.Context(), srv.URL, apiKey)
	want := Account{ID: "acc]0;pwned[31m2J", Name: "Jack]0;pwned[31m2J Smith", CompanyID: "co]0;pwned[31m2J"}
	if res.Status != Valid || *res.Account != want || res.RequestID != "rq[2J" {
		t.Errorf("got %+v %+v", res, res.Account)
	}

	huge, _ := json.Marshal(map[string]any{"id": strings.Repeat("i", 300<<10), "public_name": strings.Repeat("é", 200<<10)})
	srv = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reply(w, 200, string(huge)) }))
	res = check(t, c, t.Context(), srv.URL, apiKey)
	if res.Status != Valid {
		t.Fatalf("got %+v", res)
	}
	if len(res.Account.ID) != maxField || len(res.Account.Name) > maxField || !utf8.ValidString(res.Account.Name) {
		t.Errorf("not capped: id %d bytes, name %d bytes", len(res.Account.ID), len(res.Account.Name))
	}
}

// TestCheckScrubsEchoedKey: a server that puts the key, or a piece of it
// of 16 characters or more, into a field gets it redacted.
func TestCheckScrubsEchoedKey(t *testing.T) {
	for _, key := range []string{apiKey, oauthKey} {
		piece := key[3:19]
		body, _ := json.Marshal(map[string]any{
			"id":          key,
			"public_name": map[string]string{"EN": "Hi " + key[5:20] + "\x1b" + key[20:] + " there"},
			"company":     map[string]string{"id": "c-" + piece},
		})
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-Id", "rq-"+key[len(key)-16:])
			reply(w, 200, string(body))
		}))
		c, _ := newClient()
		res := check(t, c, t.Context(), srv.URL, key)
		if res.Status != Valid {
			t.Fatalf("got %+v", res)
		}
		a := res.Account
		if a.ID != "[redacted]" || a.CompanyID != "c-[redacted]" || res.RequestID != "rq-[redacted]" ||
			!strings.HasPrefix(a.Name, "Hi ") || !strings.HasSuffix(a.Name, "[redacted] there") {
			t.Errorf("got %+v, request id %q", a, res.RequestID)
		}
		for _, f := range []string{a.ID, a.Name, a.CompanyID, res.RequestID, res.Err} {
			for i := 0; i+minFragment <= len(key); i++ {
				if strings.Contains(f, key[i:i+minFragment]) {
					t.Fatalf("a piece of the key in %q", f)
				}
			}
		}
	}
	// Invisible characters between the key's do not hide it.
	if got := clean("x "+strings.Join(strings.Split(apiKey, ""), "\u200b")+" y", apiKey, maxField); got != "x [redacted] y" {
		t.Errorf("clean of a key split by zero-width spaces = %q", got)
	}
	// Short runs of key characters are not the key.
	if got := scrub("name kkkk", apiKey); got != "name kkkk" {
		t.Errorf("scrub = %q", got)
	}
}

func BenchmarkCheck(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, `{"id":"acc","balance":1,"public_name":{"EN":"N"},"company":{"id":"c"}}`)
	}))
	defer srv.Close()
	c := &Client{}
	ctx := context.Background()
	for b.Loop() {
		if res := c.Check(ctx, srv.URL, apiKey); res.Status != Valid {
			b.Fatalf("got %+v", res)
		}
	}
}
