package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/websocket"

	"github.com/sidetrace/sidetrace/internal/otlptest"
	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginsDir != "" {
		os.RemoveAll(pluginsDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const wait = 10 * time.Second

// upstream is a real HTTP/1.1 server on loopback recording what it was sent.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	conns    atomic.Int64
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.requests = append(u.requests, r.Clone(context.Background()))
		u.mu.Unlock()
		h(w, r)
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.requests) == 0 {
		t.Fatal("upstream received no request")
	}
	return u.requests[len(u.requests)-1]
}

func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return res, string(body)
}

func spanNamed(t *testing.T, spans []otlptest.Span, kind tracepb.Span_SpanKind, name string) otlptest.Span {
	t.Helper()
	for _, s := range spans {
		if s.Kind == kind && s.Name == name {
			return s
		}
	}
	t.Fatalf("no %s span named %q in:%s", kind, name, otlptest.Summary(spans))
	return otlptest.Span{}
}

func checkAttrs(t *testing.T, s otlptest.Span, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got, ok := s.Attrs[k]; !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("span %q attribute %s: got %v; want %v", s.Name, k, got, v)
		}
	}
}

func TestInbound_HTTP1_SpanHeadersAndAccessLog(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "must not reach the client")
		fmt.Fprint(w, strings.Repeat("x", 1024))
	})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t,
		"SIDETRACE_UPSTREAM="+up.URL,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
		"OTEL_SERVICE_NAME=checkout",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test,team=payments%20core",
	)
	c := client(t)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/orders/42?expand=items", nil)
	req.Host = "shop.example:8443"
	req.Header.Set("traceparent", parent)
	req.Header.Set("User-Agent", "sidetrace-test/1")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Correlation-Id", "order-42-abc")
	req.Header.Set("Connection", "X-Secret-Hop")
	req.Header.Set("X-Secret-Hop", "hop-by-hop")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || len(body) != 1024 {
		t.Fatalf("got %d with %d bytes; want 200 with 1024", res.StatusCode, len(body))
	}
	if got := res.Header.Get("X-Correlation-Id"); got != "order-42-abc" {
		t.Errorf("response X-Correlation-Id: got %q; want %q", got, "order-42-abc")
	}
	if got := res.Header.Get("X-Hop"); got != "" {
		t.Errorf("hop-by-hop response header X-Hop reached the client: %q", got)
	}

	fwd := up.last(t)
	for k, want := range map[string]string{
		"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example:8443",
		"X-Correlation-Id":  "order-42-abc",
		"X-Secret-Hop":      "",
		"User-Agent":        "sidetrace-test/1",
	} {
		if got := fwd.Header.Get(k); got != want {
			t.Errorf("forwarded %s: got %q; want %q", k, got, want)
		}
	}
	if fwd.Host != "shop.example:8443" {
		t.Errorf("forwarded Host: got %q; want the client's %q", fwd.Host, "shop.example:8443")
	}

	spans := rcv.WaitSpans(t, 1, wait)
	s := spanNamed(t, spans, tracepb.Span_SPAN_KIND_SERVER, "GET")
	if s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || s.ParentSpanID != "00f067aa0ba902b7" {
		t.Errorf("span trace/parent: got %s/%s; want the incoming traceparent's", s.TraceID, s.ParentSpanID)
	}
	wantTP := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + s.SpanID + "-01"
	if got := fwd.Header.Get("traceparent"); got != wantTP {
		t.Errorf("forwarded traceparent: got %q; want the hop's span as parent %q", got, wantTP)
	}
	checkAttrs(t, s, map[string]any{
		"http.request.method":       "GET",
		"url.path":                  "/orders/42",
		"url.query":                 "expand=items",
		"url.scheme":                "http",
		"server.address":            "shop.example",
		"server.port":               8443,
		"network.protocol.version":  "1.1",
		"user_agent.original":       "sidetrace-test/1",
		"client.address":            "203.0.113.7",
		"network.peer.address":      "127.0.0.1",
		"http.response.status_code": 200,
		"http.response.body.size":   1024,
		"sidetrace.correlation_id":  "order-42-abc",
		"sidetrace.outcome":         "completed",
	})
	if s.StatusCode != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("status: got %v; want unset", s.StatusCode)
	}
	if s.Service != "checkout" || s.Resource["deployment.environment"] != "test" || s.Resource["team"] != "payments core" {
		t.Errorf("resource: got %v; want service checkout with the OTEL_RESOURCE_ATTRIBUTES", s.Resource)
	}

	lines := sc.WaitAccessLog(t, 1)
	l := lines[0]
	for k, want := range map[string]any{
		"trace_id": s.TraceID, "span_id": s.SpanID, "correlation_id": "order-42-abc", "method": "GET",
		"path": "/orders/42", "status": float64(200), "bytes": float64(1024), "hop": "inbound",
	} {
		if l[k] != want {
			t.Errorf("access log %s: got %v; want %v", k, l[k], want)
		}
	}
	if d, ok := l["duration_ms"].(float64); !ok || d <= 0 {
		t.Errorf("access log duration_ms: got %v; want a positive number", l["duration_ms"])
	}
}

func TestInbound_CorrelationID_GeneratedWhenMissingOrInvalid(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL)
	c := client(t)
	for _, in := range []string{"", "has spaces and \"quotes\"", strings.Repeat("a", 200)} {
		res, _ := get(t, c, sc.URL("inbound")+"/", map[string]string{"X-Correlation-Id": in})
		got := res.Header.Get("X-Correlation-Id")
		if len(got) != 36 || got[14] != '4' {
			t.Errorf("correlation id for %q: got %q; want a new UUIDv4", in, got)
		}
		if fwd := up.last(t).Header.Get("X-Correlation-Id"); fwd != got {
			t.Errorf("forwarded correlation id: got %q; want the returned %q", fwd, got)
		}
	}
}

func TestInbound_NoIncomingContext_StartsNewTrace(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	// A malformed traceparent is ignored: a new trace starts, and the request goes through.
	res, _ := get(t, client(t), sc.URL("inbound")+"/", map[string]string{"traceparent": "00-zzzz-not-a-context"})
	if res.StatusCode != 200 {
		t.Fatalf("status: got %d; want 200", res.StatusCode)
	}
	s := rcv.WaitSpans(t, 1, wait)[0]
	if s.ParentSpanID != "" {
		t.Errorf("parent: got %q; want none (a new trace)", s.ParentSpanID)
	}
	tp := up.last(t).Header.Get("traceparent")
	if tp != "00-"+s.TraceID+"-"+s.SpanID+"-01" {
		t.Errorf("forwarded traceparent: got %q; want the new trace with the hop's span", tp)
	}
}

func TestInbound_UnknownMethod_RecordedAsOther(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	req, _ := http.NewRequest("PURGE", sc.URL("inbound")+"/cache", nil)
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_SERVER, "HTTP")
	checkAttrs(t, s, map[string]any{"http.request.method": "_OTHER", "http.request.method_original": "PURGE"})
}

func TestInbound_H2CPriorKnowledge_ForwardsAsHTTP1(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s", r.Proto)
	})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	h2c := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer h2c.CloseIdleConnections()
	res, body := get(t, &http.Client{Transport: h2c}, sc.URL("inbound")+"/", nil)
	if res.ProtoMajor != 2 || body != "upstream saw HTTP/1.1" {
		t.Fatalf("got %s %q; want HTTP/2 to the client and HTTP/1.1 to the upstream", res.Proto, body)
	}
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_SERVER, "GET")
	checkAttrs(t, s, map[string]any{"network.protocol.version": "2"})
}

// RFC 9113 §3.1 deprecates "Upgrade: h2c": the request is served as HTTP/1.1 and the offer is not passed on.
func TestInbound_H2CUpgrade_ServedAsHTTP1(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upgrade=%q settings=%q", r.Header.Get("Upgrade"), r.Header.Get("HTTP2-Settings"))
	})
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL)
	conn, err := net.Dial("tcp", sc.Addr("inbound"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<10))
	res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 1 || string(body) != `upgrade="" settings=""` {
		t.Fatalf("got %d %s %q; want 200 HTTP/1.1 with no upgrade forwarded", res.StatusCode, res.Proto, body)
	}
}

func TestInbound_UpstreamConnectionsReused(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "SIDETRACE_ACCESS_LOG=off")
	c := client(t)
	for i := 0; i < 20; i++ {
		get(t, c, sc.URL("inbound")+"/", nil)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("upstream connections for 20 sequential requests: got %d; want 1 (reused)", n)
	}
}

func TestInbound_UpstreamDown_Returns502AndErrorSpan(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String()
	ln.Close()
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+down, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	res, body := get(t, client(t), sc.URL("inbound")+"/", nil)
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("status: got %d %q; want 502", res.StatusCode, body)
	}
	if res.Header.Get("X-Correlation-Id") == "" {
		t.Error("a 502 carries no X-Correlation-Id")
	}
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_SERVER, "GET")
	checkAttrs(t, s, map[string]any{"http.response.status_code": 502, "error.type": "502"})
	if s.StatusCode != tracepb.Status_STATUS_CODE_ERROR || !strings.Contains(s.StatusMessage, "connection refused") {
		t.Errorf("status: got %v %q; want Error naming the refused connection", s.StatusCode, s.StatusMessage)
	}
	if len(s.Events) == 0 || s.Events[0].Name != "exception" {
		t.Errorf("events: got %+v; want the error recorded as an exception event", s.Events)
	}
}

func TestInbound_UpstreamSlow_Returns504(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; ends when sidetrace gives up
	})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "SIDETRACE_UPSTREAM_TIMEOUT=150ms")
	res, _ := get(t, client(t), sc.URL("inbound")+"/", nil)
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status: got %d; want 504", res.StatusCode)
	}
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_SERVER, "GET")
	checkAttrs(t, s, map[string]any{"http.response.status_code": 504, "error.type": "504"})
	if s.StatusCode != tracepb.Status_STATUS_CODE_ERROR || !strings.Contains(s.StatusMessage, "SIDETRACE_UPSTREAM_TIMEOUT") {
		t.Errorf("status: got %v %q; want Error naming the timeout", s.StatusCode, s.StatusMessage)
	}
}

func TestInbound_Upstream5xx_ErrorStatus4xxNot(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		code := 503
		if r.URL.Path == "/missing" {
			code = 404
		}
		w.WriteHeader(code)
	})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	c := client(t)
	get(t, c, sc.URL("inbound")+"/missing", nil)
	get(t, c, sc.URL("inbound")+"/broken", nil)
	spans := rcv.WaitSpans(t, 2, wait)
	for _, s := range spans {
		want := tracepb.Status_STATUS_CODE_UNSET
		if s.Attrs["url.path"] == "/broken" {
			want = tracepb.Status_STATUS_CODE_ERROR
			checkAttrs(t, s, map[string]any{"error.type": "503"})
		} else if _, ok := s.Attrs["error.type"]; ok {
			t.Errorf("404 on a SERVER span has error.type %v; want none", s.Attrs["error.type"])
		}
		if s.StatusCode != want {
			t.Errorf("%v: status %v; want %v", s.Attrs["url.path"], s.StatusCode, want)
		}
	}
}

// Server-sent events arrive as they are written: the upstream sends its second event only after the client
// has read the first through the proxy, so a buffering proxy deadlocks this test.
func TestInbound_ServerSentEvents_Unbuffered(t *testing.T) {
	gotFirst := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-gotFirst:
		case <-time.After(wait):
			return
		}
		fmt.Fprint(w, "data: two\n\n")
	})
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL)
	res, err := client(t).Get(sc.URL("inbound") + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: got %q, %v", line, err)
	}
	close(gotFirst)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest of the stream: got %q", rest)
	}
}

// A client that goes away mid-stream ends the span as client_gone and leaves no goroutine behind
// (TestMain checks).
func TestInbound_ClientAbortMidStream_SpanEnded(t *testing.T) {
	upstreamDone := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(upstreamDone)
		for {
			if _, err := fmt.Fprint(w, "data: tick\n\n"); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	c := client(t)
	res, err := c.Get(sc.URL("inbound") + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	res.Body.Close() // the client goes away
	select {
	case <-upstreamDone:
	case <-time.After(wait):
		t.Fatal("the upstream request was not cancelled after the client went away")
	}
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_SERVER, "GET")
	checkAttrs(t, s, map[string]any{"sidetrace.outcome": "client_gone"})
}

// A client that goes away while the upstream has not answered yet ends the upstream request (its connection
// is closed) and the span, as client_gone.
func TestInbound_ClientGoneBeforeUpstreamAnswers(t *testing.T) {
	upstreamDone := make(chan error, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			upstreamDone <- nil
		case <-time.After(wait):
			upstreamDone <- errors.New("the upstream request was not cancelled after the client went away")
		}
	})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	c, err := net.Dial("tcp", sc.Addr("inbound"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: svc\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the request is with the upstream
	c.Close()
	if err := <-upstreamDone; err != nil {
		t.Fatal(err)
	}
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_SERVER, "GET")
	checkAttrs(t, s, map[string]any{"sidetrace.outcome": "client_gone"})
}

func TestInbound_WebSocket_PassesThrough(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) }).ServeHTTP(w, r)
	})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	ws, err := websocket.Dial("ws://"+sc.Addr("inbound")+"/echo", "", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"hello", "through", "sidetrace"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
			t.Fatalf("echo: got %q, %v; want %q", got, err, msg)
		}
	}
	ws.Close()
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_SERVER, "GET")
	checkAttrs(t, s, map[string]any{"http.response.status_code": 101, "sidetrace.outcome": "completed"})
}

// Two sidecars in a chain, A's egress to B's inbound, make one trace: SERVER (A) -> CLIENT (A egress) ->
// SERVER (B). Service A is an instrumented app: it passes the traceparent it received to the call it makes.
func TestChain_TwoSidecars_OneTrace(t *testing.T) {
	rcv := otlptest.NewReceiver(t)
	svcB := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "from B") })
	sideB := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+svcB.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "OTEL_SERVICE_NAME=b")

	var egress atomic.Value
	appTransport := &http.Transport{Proxy: func(*http.Request) (*url.URL, error) { return url.Parse(egress.Load().(string)) }}
	t.Cleanup(appTransport.CloseIdleConnections)
	svcA := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, sideB.URL("inbound")+"/b", nil)
		req.Header.Set("traceparent", r.Header.Get("traceparent"))
		res, err := appTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer res.Body.Close()
		io.Copy(w, res.Body)
	})
	sideA := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+svcA.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "OTEL_SERVICE_NAME=a")
	egress.Store(sideA.URL("egress"))

	res, body := get(t, client(t), sideA.URL("inbound")+"/a", nil)
	if res.StatusCode != 200 || body != "from B" {
		t.Fatalf("got %d %q; want 200 from B", res.StatusCode, body)
	}
	spans := rcv.WaitSpans(t, 3, wait)
	var serverA, clientA, serverB otlptest.Span
	for _, s := range spans {
		switch {
		case s.Service == "a" && s.Kind == tracepb.Span_SPAN_KIND_SERVER:
			serverA = s
		case s.Service == "a" && s.Kind == tracepb.Span_SPAN_KIND_CLIENT:
			clientA = s
		case s.Service == "b" && s.Kind == tracepb.Span_SPAN_KIND_SERVER:
			serverB = s
		}
	}
	if serverA.TraceID == "" || clientA.TraceID != serverA.TraceID || serverB.TraceID != serverA.TraceID {
		t.Fatalf("want one trace of SERVER(a), CLIENT(a), SERVER(b); got:%s", otlptest.Summary(spans))
	}
	if serverA.ParentSpanID != "" || clientA.ParentSpanID != serverA.SpanID || serverB.ParentSpanID != clientA.SpanID {
		t.Errorf("parentage: want SERVER(a) -> CLIENT(a) -> SERVER(b); got:%s", otlptest.Summary(spans))
	}
	checkAttrs(t, clientA, map[string]any{"url.full": sideB.URL("inbound") + "/b", "http.response.status_code": 200})
	if b := sideB.WaitAccessLog(t, 1)[0]; b["trace_id"] != serverA.TraceID {
		t.Errorf("B's access log trace_id: got %v; want %s", b["trace_id"], serverA.TraceID)
	}
}

func TestEgress_OriginFormRequest_Refused(t *testing.T) {
	sc := sidecartest.Start(t, "SIDETRACE_INBOUND_ADDR=off")
	res, body := get(t, client(t), sc.URL("egress")+"/not-absolute", nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "HTTP_PROXY") {
		t.Errorf("got %d %q; want 400 explaining HTTP_PROXY", res.StatusCode, body)
	}
}

func TestEgress_Client4xx_IsError(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) })
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_INBOUND_ADDR=off", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	proxyURL, _ := url.Parse(sc.URL("egress"))
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
	defer tr.CloseIdleConnections()
	res, _ := get(t, &http.Client{Transport: tr}, up.URL+"/nope?q=1", nil)
	if res.StatusCode != 404 {
		t.Fatalf("status: got %d; want 404", res.StatusCode)
	}
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_CLIENT, "GET")
	checkAttrs(t, s, map[string]any{"url.full": up.URL + "/nope?q=1", "error.type": "404", "http.response.status_code": 404})
	if s.StatusCode != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("status: got %v; want Error for a 4xx CLIENT span", s.StatusCode)
	}
}

func TestEgress_Connect_TunnelWithSpan(t *testing.T) {
	tlsUp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret hello") }))
	defer tlsUp.Close()
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_INBOUND_ADDR=off", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	proxyURL, _ := url.Parse(sc.URL("egress"))
	tr := tlsUp.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(proxyURL)
	res, body := get(t, &http.Client{Transport: tr}, tlsUp.URL+"/", nil)
	tr.CloseIdleConnections()
	if res.StatusCode != 200 || body != "secret hello" {
		t.Fatalf("got %d %q; want 200 through the tunnel", res.StatusCode, body)
	}
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_CLIENT, "CONNECT")
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(tlsUp.URL, "https://"))
	checkAttrs(t, s, map[string]any{"server.address": host, "server.port": port, "http.request.method": "CONNECT", "http.response.status_code": 200})
	if up, _ := s.Attrs["sidetrace.tunnel.bytes_sent"].(int64); up == 0 {
		t.Errorf("tunnel bytes sent: got %v; want > 0", s.Attrs["sidetrace.tunnel.bytes_sent"])
	}
}

func TestEgress_Route_FixedListener(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "orders %s", r.URL.Path) })
	rcv := otlptest.NewReceiver(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	routeAddr := ln.Addr().String()
	ln.Close()
	sc := sidecartest.Start(t, "SIDETRACE_INBOUND_ADDR=off", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
		"SIDETRACE_EGRESS_ROUTES="+routeAddr+"="+up.URL+"/api")
	res, body := get(t, client(t), sc.URL("route "+routeAddr)+"/orders/7", map[string]string{"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"})
	if res.StatusCode != 200 || body != "orders /api/orders/7" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_CLIENT, "GET")
	if s.TraceID != "11111111111111111111111111111111" || s.ParentSpanID != "2222222222222222" {
		t.Errorf("CLIENT span: got trace %s parent %s; want the application's context as parent", s.TraceID, s.ParentSpanID)
	}
	checkAttrs(t, s, map[string]any{"url.full": up.URL + "/api/orders/7"})
	if host := up.last(t).Host; host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("Host the route's upstream sees: got %q; want its own %q", host, strings.TrimPrefix(up.URL, "http://"))
	}
	if tp := up.last(t).Header.Get("traceparent"); !strings.Contains(tp, s.SpanID) {
		t.Errorf("forwarded traceparent %q does not name the CLIENT span %s", tp, s.SpanID)
	}
}
