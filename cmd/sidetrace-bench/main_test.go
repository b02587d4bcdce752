package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestMain lets the test binary stand in for the two binaries the driver starts: itself (for the
// upstream, receiver and load children) and, in TestRun, sidetrace.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv("SIDETRACE_BENCH_AS_MAIN") == "1":
		main()
	case os.Getenv("SIDETRACE_BENCH_STANDIN") == "1" && os.Getenv("SIDETRACE_INBOUND_ADDR") != "":
		os.Exit(standInProxy())
	default:
		os.Exit(m.Run())
	}
}

// standInProxy is what the driver needs of sidetrace: it reads the same environment, proxies the
// inbound address to the upstream, serves /readyz on the admin address, exports one span per request
// to the OTLP endpoint and exits on SIGTERM.
func standInProxy() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	upstream, err := url.Parse(os.Getenv("SIDETRACE_UPSTREAM"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var pending atomic.Int64
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(upstream)
		pending.Add(1)
	}}
	admin := http.NewServeMux()
	admin.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
	for addr, h := range map[string]http.Handler{os.Getenv("SIDETRACE_INBOUND_ADDR"): rp, os.Getenv("SIDETRACE_ADMIN_ADDR"): admin} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go serve(ctx, newServer(h), ln)
	}
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") + "/v1/traces"
	export := os.Getenv("OTEL_TRACES_SAMPLER") != "always_off"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
		if n := pending.Swap(0); n > 0 && export {
			body, _ := proto.Marshal(exportRequest(int(n)))
			if resp, err := http.Post(endpoint, "application/x-protobuf", bytes.NewReader(body)); err == nil {
				resp.Body.Close()
			}
		}
	}
}

func exportRequest(spans int) *coltracepb.ExportTraceServiceRequest {
	ss := &tracepb.ScopeSpans{}
	for i := range spans {
		ss.Spans = append(ss.Spans, &tracepb.Span{Name: "GET", TraceId: bytes.Repeat([]byte{1}, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, byte(i + 1)}})
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{ss}}}}
}

// noLeaks fails the test if it leaves goroutines behind.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: got %d; want at most %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// startInProcess serves h on a loopback port until the test ends and returns its address.
func startInProcess(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, newServer(h), ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func startUpstream(t *testing.T, size int) string {
	t.Helper()
	return startInProcess(t, newUpstreamServer(size).Handler)
}

// checkSane checks what any successful load run must satisfy, whatever the machine's speed.
func checkSane(t *testing.T, res loadResult) {
	t.Helper()
	if res.Requests == 0 || res.Errors != 0 || res.Dropped != 0 {
		t.Errorf("requests, errors, dropped: got %d, %d, %d; want > 0, 0, 0 (first error %q)", res.Requests, res.Errors, res.Dropped, res.FirstErr)
	}
	if res.RPS <= 0 || res.Seconds <= 0 {
		t.Errorf("rps, seconds: got %g, %g; want > 0", res.RPS, res.Seconds)
	}
	if !(0 < res.P50us && res.P50us <= res.P90us && res.P90us <= res.P99us && res.P99us <= res.P999us && res.P999us <= res.MaxUs) {
		t.Errorf("percentiles: got p50 %g p90 %g p99 %g p99.9 %g max %g µs; want positive and ordered",
			res.P50us, res.P90us, res.P99us, res.P999us, res.MaxUs)
	}
}

func TestLoad_ClosedLoop_CountsEveryRequest(t *testing.T) {
	noLeaks(t)
	var served atomic.Uint64
	up := newUpstreamServer(1024).Handler
	addr := startInProcess(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		up.ServeHTTP(w, r)
	}))
	for _, tc := range []struct {
		name  string
		cfg   loadConfig
		proto string
	}{
		{"http1 minimal client", loadConfig{Conc: 4}, "http/1.1"},
		{"http1 net/http client", loadConfig{Conc: 4, Std: true}, "http/1.1 (net/http)"},
		{"h2c minimal client", loadConfig{Conc: 4, H2C: true}, "h2c"},
		{"h2c net/http client", loadConfig{Conc: 4, H2C: true, Conns: 2}, "h2c (net/http)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served.Store(0)
			cfg := tc.cfg
			cfg.URL = "http://" + addr + "/"
			cfg.Duration = 300 * time.Millisecond
			res, err := runLoad(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkSane(t, res)
			if res.Mode != "closed" || res.Proto != tc.proto || res.Conc != 4 {
				t.Errorf("mode, proto, conc: got %q, %q, %d; want %q, %q, 4", res.Mode, res.Proto, res.Conc, "closed", tc.proto)
			}
			if got := served.Load(); got != res.Requests {
				t.Errorf("served: got %d; want %d, the requests the generator counted", got, res.Requests)
			}
		})
	}
}

func TestLoad_H2C_SpeaksHTTP2(t *testing.T) {
	noLeaks(t)
	var mu sync.Mutex
	protos := map[string]bool{}
	addr := startInProcess(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto] = true
		mu.Unlock()
	}))
	res, err := runLoad(context.Background(), loadConfig{URL: "http://" + addr + "/", Conc: 2, H2C: true, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]bool{"HTTP/2.0": true}; !maps.Equal(protos, want) {
		t.Errorf("protocols seen: got %v; want %v", protos, want)
	}
}

func TestLoad_OpenLoop_SendsRateTimesDuration(t *testing.T) {
	noLeaks(t)
	addr := startUpstream(t, 1024)
	const rate, d = 400, 500 * time.Millisecond
	res, err := runLoad(context.Background(), loadConfig{URL: "http://" + addr + "/", Rate: rate, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, res)
	want := uint64(rate * d.Seconds())
	if res.Requests < want*9/10 || res.Requests > want {
		t.Errorf("requests: got %d; want %d (at least 90%% of it)", res.Requests, want)
	}
	if res.Mode != "open" || res.Rate != rate || res.Conc != 64 {
		t.Errorf("mode, rate, conc: got %q, %g, %d; want %q, %d, 64", res.Mode, res.Rate, res.Conc, "open", int(rate))
	}
	if res.LagP50us <= 0 || res.LagP99us < res.LagP50us {
		t.Errorf("send lag p50, p99: got %g, %g µs; want positive and ordered", res.LagP50us, res.LagP99us)
	}
}

// With a baseline, direct requests are interleaved at the same rate and reported apart: a target 5ms
// slower than its baseline shows about 5ms added.
func TestLoad_OpenLoop_BaselineInterleaved(t *testing.T) {
	noLeaks(t)
	fast := startUpstream(t, 1024)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.Write(make([]byte, 1024))
	}))
	defer slow.Close()
	const rate, d = 200, 500 * time.Millisecond
	res, err := runLoad(context.Background(), loadConfig{URL: slow.URL + "/", BaselineURL: "http://" + fast + "/", Rate: rate, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(rate * d.Seconds())
	for name, got := range map[string]uint64{"target": res.Requests, "baseline": res.BaseRequests} {
		if got < want*9/10 || got > want {
			t.Errorf("%s requests: got %d; want %d (at least 90%% of it)", name, got, want)
		}
	}
	if res.P50us < 5000 || res.BaseP50us >= 5000 || res.BaseP99us <= 0 {
		t.Errorf("p50 target %gµs, baseline %gµs (p99 %gµs); want the target's at least 5ms, the baseline's below", res.P50us, res.BaseP50us, res.BaseP99us)
	}
	if _, err := runLoad(context.Background(), loadConfig{URL: slow.URL + "/", BaselineURL: "http://" + fast + "/", Duration: d}); err == nil {
		t.Error("a baseline without -rate: no error; want one")
	}
}

// With a second target, the proxied requests alternate between the two slice by slice, each at the rate in
// its slices, and the interleaved baseline is reported for the slices of each: a second target 5ms slower
// shows about 5ms more than the first, which is not slowed.
func TestLoad_OpenLoop_AlternatesTargets(t *testing.T) {
	noLeaks(t)
	fast := startUpstream(t, 1024)
	var slowAt []time.Time // when the slow target got each request
	var mu sync.Mutex
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		slowAt = append(slowAt, time.Now())
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		w.Write(make([]byte, 1024))
	}))
	defer slow.Close()
	const rate, d, slice = 200, time.Second, 100 * time.Millisecond
	start := time.Now()
	res, err := runLoad(context.Background(), loadConfig{URL: "http://" + fast + "/", AltURL: slow.URL + "/", Slice: slice,
		BaselineURL: "http://" + fast + "/", Rate: rate, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	if res.Alt == nil {
		t.Fatal("no alt result")
	}
	half := uint64(rate * d.Seconds() / 2)
	for name, got := range map[string]uint64{"first": res.Requests, "second": res.Alt.Requests, "first's baseline": res.BaseRequests, "second's baseline": res.Alt.BaseRequests} {
		if got < half*9/10 || got > half {
			t.Errorf("%s: %d requests; want %d (at least 90%% of it)", name, got, half)
		}
	}
	if res.RPS < rate*0.9 || res.RPS > rate*1.1 {
		t.Errorf("first target's rate over its slices: %g req/s; want about %d", res.RPS, rate)
	}
	if res.P50us >= 5000 || res.Alt.P50us < 5000 || res.BaseP50us >= 5000 || res.Alt.BaseP50us >= 5000 {
		t.Errorf("p50s: first %gµs (p99 %gµs), second %gµs, baselines %gµs and %gµs; want only the second's at 5ms or more",
			res.P50us, res.P99us, res.Alt.P50us, res.BaseP50us, res.Alt.BaseP50us)
	}
	// The slow target got requests in every other slice only: none well into a first target's slice (the
	// allowance covers the send lag and the connections dialled before the schedule starts).
	mu.Lock()
	defer mu.Unlock()
	for _, at := range slowAt {
		if off := at.Sub(start) % (2 * slice); off >= 25*time.Millisecond && off < slice {
			t.Errorf("the second target got a request %s into a %s cycle; want it in the second %s only", off, 2*slice, slice)
			break
		}
	}
	// With the first half of each slice settling, half of each target's requests count, at the same rate.
	res, err = runLoad(context.Background(), loadConfig{URL: "http://" + fast + "/", AltURL: "http://" + fast + "/", Slice: slice,
		Settle: slice / 2, BaselineURL: "http://" + fast + "/", Rate: rate, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]uint64{"first": res.Requests, "second": res.Alt.Requests, "first's baseline": res.BaseRequests, "second's baseline": res.Alt.BaseRequests} {
		if got < half/2*9/10 || got > half/2 {
			t.Errorf("settling: %s: %d requests counted; want %d (at least 90%% of it)", name, got, half/2)
		}
	}
	if res.RPS < rate*0.9 || res.RPS > rate*1.1 {
		t.Errorf("settling: first target's rate over its counted time: %g req/s; want about %d", res.RPS, rate)
	}
	for _, cfg := range []loadConfig{
		{URL: "http://" + fast + "/", AltURL: slow.URL + "/", Slice: slice, Settle: slice, Rate: rate, Duration: d}, // settles the whole slice
		{URL: "http://" + fast + "/", AltURL: slow.URL + "/", Slice: slice, Duration: d},                            // no rate
		{URL: "http://" + fast + "/", AltURL: slow.URL + "/", Slice: d, Rate: rate, Duration: d},                    // slice over half of -d
		{URL: "http://" + fast + "/", AltURL: "ftp://x/", Slice: slice, Rate: rate, Duration: d},                    // not http
	} {
		if _, err := runLoad(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error; want one", cfg)
		}
	}
}

func TestLoad_UpstreamDown_CountsErrors(t *testing.T) {
	noLeaks(t)
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	res, err := runLoad(context.Background(), loadConfig{URL: "http://" + addr + "/", Conc: 1, Duration: 50 * time.Millisecond})
	if err == nil {
		t.Fatalf("got no error; want one (result %+v)", res)
	}
	if res.Errors == 0 || res.FirstErr == "" {
		t.Errorf("errors, first error: got %d, %q; want > 0 and set", res.Errors, res.FirstErr)
	}
}

func TestH1Conn_ReadsEveryResponseShape(t *testing.T) {
	noLeaks(t)
	body := strings.Repeat("x", 3000)
	mux := http.NewServeMux()
	mux.HandleFunc("/length", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 3 {
			io.WriteString(w, body)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, body)
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/missing", http.NotFound)
	addr := startInProcess(t, mux)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/length", 200},
		{"/chunked", 200},
		{"/close", 200},
		{"/empty", 204},
		{"/missing", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			u, _ := url.Parse("http://" + addr + tc.path)
			c := newH1Conn(u, []string{"X-Test: 1"}, 5*time.Second)
			defer c.close()
			for i := range 3 { // the same connection, or a new one after Connection: close
				status, err := c.do()
				if err != nil || status != tc.status {
					t.Fatalf("request %d: got %d, %v; want %d, nil", i, status, err, tc.status)
				}
			}
		})
	}
}

// h2Conn against net/http's HTTP/2 server over h2c: bodies larger than the default windows (65,535 bytes
// per stream and connection, so both of its windows must be open), several DATA frames, trailers, an
// informational response, statuses, a request header, streams one after another on the same connection,
// a reset stream, and a server that goes away (the next request dials again).
func TestH2Conn_ReadsEveryResponseShape(t *testing.T) {
	noLeaks(t)
	big := strings.Repeat("x", 200<<10)
	var sawHeader atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") == "1" && r.ProtoMajor == 2 {
			sawHeader.Store(true)
		}
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, big[:3000])
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", "42")
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	addr := startInProcess(t, mux)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/small", 200},
		{"/big", 200},
		{"/trailers", 200},
		{"/early", 202},
		{"/empty", 204},
		{"/missing", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			u, _ := url.Parse("http://" + addr + tc.path)
			c := newH2Conn(u, []string{"X-Test: 1"}, 5*time.Second)
			defer c.close()
			for i := range 40 { // 40 × 200 KiB: past the default connection window many times over
				status, err := c.do()
				if err != nil || status != tc.status {
					t.Fatalf("request %d: got %d, %v; want %d, nil", i, status, err, tc.status)
				}
			}
			if c.stream != 79 {
				t.Errorf("last stream id %d; want 79: the 40 requests on one connection", c.stream)
			}
		})
	}
	if !sawHeader.Load() {
		t.Error("the server did not see the request header over HTTP/2")
	}

	t.Run("reset", func(t *testing.T) {
		u, _ := url.Parse("http://" + addr + "/reset")
		c := newH2Conn(u, nil, 5*time.Second)
		defer c.close()
		if _, err := c.do(); !errors.Is(err, errStreamReset) {
			t.Fatalf("got %v; want the reset", err)
		}
		u, _ = url.Parse("http://" + addr + "/small")
		ok := newH2Conn(u, nil, 5*time.Second)
		defer ok.close()
		if status, err := ok.do(); err != nil || status != 200 {
			t.Fatalf("after a reset: got %d, %v", status, err)
		}
	})

	t.Run("server gone", func(t *testing.T) {
		srv := &http.Server{Handler: mux, Protocols: new(http.Protocols)}
		srv.Protocols.SetUnencryptedHTTP2(true)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		u, _ := url.Parse("http://" + ln.Addr().String() + "/small")
		c := newH2Conn(u, nil, 5*time.Second)
		defer c.close()
		if status, err := c.do(); err != nil || status != 200 {
			t.Fatalf("first request: got %d, %v", status, err)
		}
		srv.Close() // closes the connection
		if _, err := c.do(); err == nil {
			t.Fatal("a request to a closed server succeeded")
		}
		if _, err := c.do(); err == nil {
			t.Fatal("a request after the server closed succeeded")
		}
	})
}

func TestReceiver_CountsRequestsAndSpans(t *testing.T) {
	noLeaks(t)
	rc := newReceiver(true)
	addr := startInProcess(t, rc)
	pb, err := proto.Marshal(exportRequest(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, contentType, encoding string
		body                        []byte
		wantStatus                  int
		wantType                    string
	}{
		{"protobuf", "application/x-protobuf", "", pb, 200, "application/x-protobuf"},
		{"protobuf gzip", "application/x-protobuf", "gzip", gzipped(t, pb), 200, "application/x-protobuf"},
		{"json", "application/json", "", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a"},{"name":"b"},{"name":"c"}]}]}]}`), 200, "application/json"},
		{"garbage", "application/x-protobuf", "", []byte("\xff\xff\xff"), 400, "text/plain; charset=utf-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/traces", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("status, content type: got %d, %q; want %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"), tc.wantStatus, tc.wantType)
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
	got, err := newReceiverClient(addr).stats()
	if err != nil {
		t.Fatal(err)
	}
	want := receiverStats{Requests: 3, Spans: 9, Bytes: got.Bytes, Errors: 1}
	if got != want || got.Bytes == 0 {
		t.Errorf("stats: got %+v; want %+v with bytes > 0", got, want)
	}
}

func TestRunMain_UsageAndUnknownCommand(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{nil, 2, "usage: sidetrace-bench COMMAND"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"load"}, 1, "-url \"\": want http://HOST:PORT/PATH"},
		{[]string{"run", "-scenarios", "bogus"}, 1, `unknown scenario "bogus"`},
		{[]string{"run", "-scenarios", "sidetrace"}, 1, "-sidetrace BIN is required"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runMain(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("got exit %d, stderr %q; want %d, containing %q", code, stderr.String(), tc.wantCode, tc.wantErr)
			}
		})
	}
}

// runStandIn runs the driver, unpinned, one round of short runs, with this test binary standing in for
// sidetrace, and returns what it printed: the tables and the progress lines.
func runStandIn(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	noLeaks(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIDETRACE_BENCH_STANDIN", "1")
	t.Setenv("BENCH_QUICK", "")
	var out, progress bytes.Buffer
	args = append([]string{"run", "-sidetrace", self, "-c", "4", "-d", "300ms", "-warmup", "100ms", "-rounds", "1",
		"-max-rounds", "1", "-max-foreign", "100", "-no-pin"}, args...)
	if code := runMain(context.Background(), args, &out, &progress); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, progress.String())
	}
	return out.String(), progress.String()
}

// TestRun_DirectAndStandInProxy runs the whole driver, with this test binary standing in for
// sidetrace, and checks the table has a sane row per scenario.
func TestRun_DirectAndStandInProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and generates load for a few seconds")
	}
	out, _ := runStandIn(t, "-scenarios", "direct,sidetrace-off,sidetrace", "-rates", "200")
	// Rows by table (closed, open) and scenario.
	rows := map[string][]string{}
	table := ""
	for line := range strings.Lines(out) {
		switch {
		case strings.HasPrefix(line, "Closed loop"):
			table = "closed"
		case strings.HasPrefix(line, "Open loop"):
			table = "open"
		case strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| scenario"):
			cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows[table+" "+cells[0]] = cells
		}
	}
	for _, name := range []string{"direct", "sidetrace-off", "sidetrace"} {
		closed, open := rows["closed "+name], rows["open "+name]
		if closed == nil || open == nil {
			t.Fatalf("no closed- or open-loop row for %s in:\n%s", name, out)
		}
		hasProxy := name != "direct"
		if got := closed[7] != "–"; got != hasProxy { // proxy CPU ms / 1000 req
			t.Errorf("%s: proxy CPU %q; want a figure: %v", name, closed[7], hasProxy)
		}
		if got := closed[8] != "–" && closed[8] != "0.0"; got != hasProxy { // proxy peak RSS
			t.Errorf("%s: proxy peak RSS %q; want a figure: %v", name, closed[8], hasProxy)
		}
		if open[3] != "200" { // achieved req/s
			t.Errorf("%s: open loop achieved %q req/s; want 200", name, open[3])
		}
	}
	if !strings.Contains(out, "Processes not pinned") || strings.Contains(out, "errors") {
		t.Errorf("want no errors and the pinning stated, in:\n%s", out)
	}
	if strings.Contains(out, "receiver got 0 spans") {
		t.Errorf("want spans exported for sidetrace, in:\n%s", out)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The receiver's wire walk counts what a full decode counts, resources, scopes and attributes in between.
func TestCountSpans_AgreesWithADecode(t *testing.T) {
	req := &coltracepb.ExportTraceServiceRequest{}
	for r := range 3 {
		rs := &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "svc"}}}}}, SchemaUrl: "https://x"}
		for s := range r + 1 {
			ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "sidetrace"}}
			for i := range 5*r + s {
				ss.Spans = append(ss.Spans, &tracepb.Span{Name: "GET", SpanId: []byte{0, 0, 0, 0, 0, 0, 0, byte(i + 1)}, Attributes: []*commonpb.KeyValue{{Key: "k"}}})
			}
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		req.ResourceSpans = append(req.ResourceSpans, rs)
	}
	pb, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			want += len(ss.Spans)
		}
	}
	if got, err := countSpans(pb); got != uint64(want) || err != nil {
		t.Errorf("countSpans: %d, %v; want %d, nil", got, err, want)
	}
	if _, err := countSpans(pb[:len(pb)-3]); err == nil {
		t.Error("countSpans of a truncated request: nil error; want one")
	}
}

// A paired run starts nginx and the stand-in proxy side by side and alternates the load between them:
// its table has both added latencies and their difference. Needs nginx (Debian's nginx-light, which
// .ci/run installs).
func TestRun_PairedWithNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and generates load for a few seconds")
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not installed (apt-get install nginx-light)")
	}
	out, progress := runStandIn(t, "-scenarios", "nginx,sidetrace", "-paired", "sidetrace", "-rates", "",
		"-paired-rate", "200", "-paired-d", "1s", "-slice", "100ms", "-settle", "20ms")
	var row []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "| sidetrace | 1 | ") && strings.Contains(line, " / ") {
			row = strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		}
	}
	if len(row) != 6 {
		t.Fatalf("no paired row for sidetrace in:\n%s", out)
	}
	for i, c := range row[2:] {
		if c = strings.TrimSpace(c); c == "–" || c == "" {
			t.Errorf("paired row cell %d is empty: %q, in:\n%s", i+2, row, out)
		}
	}
	if !strings.Contains(out, "Side by side with nginx") || !strings.Contains(progress, "nginx|sidetrace open") {
		t.Errorf("want the paired table and the paired run's progress line; stdout:\n%s\nstderr:\n%s", out, progress)
	}
}
