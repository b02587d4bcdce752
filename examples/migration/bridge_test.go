package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"

	"github.com/sidetrace/sidetrace/internal/otlptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const wait = 10 * time.Second

// fleet is a running bridge exporting to a real OTLP receiver, with what each service received.
type fleet struct {
	*Bridge
	recv   *otlptest.Receiver
	client *http.Client
	logs   syncBuffer

	mu     sync.Mutex
	visits []Visit
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{recv: otlptest.NewReceiver(t)}
	tr := &http.Transport{}
	f.client = &http.Client{Transport: tr, Timeout: wait}
	var err error
	f.Bridge, err = Start(context.Background(), Options{
		OTLPEndpoint: f.recv.Endpoint(),
		Env:          []string{"OTEL_BSP_SCHEDULE_DELAY=20"},
		Stdout:       &f.logs,
		Stderr:       &f.logs,
		OnRequest: func(v Visit) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.visits = append(f.visits, v)
		},
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		f.stop(t)
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", f.logs.String())
		}
	})
	return f
}

// stop shuts the fleet down: every sidecar has flushed its spans when it returns.
func (f *fleet) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// visit returns the one request service received.
func (f *fleet) visit(t *testing.T, service string) Visit {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var got []Visit
	for _, v := range f.visits {
		if v.Service == service {
			got = append(got, v)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%s received %d requests; want 1", service, len(got))
	}
	return got[0]
}

// entry is how a client enters the fleet: the context it sends (none, or one in some format).
type entry struct {
	name    string
	prop    propagation.TextMapPropagator // nil: the client sends no context
	sampled bool
}

var (
	entryTraceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	entrySpanID  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

func (e entry) request(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.prop != nil {
		flags := trace.TraceFlags(0)
		if e.sampled {
			flags = trace.FlagsSampled
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: entryTraceID, SpanID: entrySpanID, TraceFlags: flags, Remote: true})
		e.prop.Inject(trace.ContextWithRemoteSpanContext(context.Background(), sc), propagation.HeaderCarrier(req.Header))
	}
	return req
}

// wantHeaders are the trace-context headers each service must receive: its own format's, nothing else.
var wantHeaders = map[string][]string{
	"orders":   {"X-B3-Sampled", "X-B3-Spanid", "X-B3-Traceid"},
	"payments": {"Traceparent"},
	"ledger":   {"Uber-Trace-Id"},
}

// wantChain is the trace, each span with its parent: SERVER orders -> CLIENT orders -> SERVER payments ->
// CLIENT payments -> SERVER ledger.
const wantChain = `SERVER orders <- %s
CLIENT orders <- SERVER orders
SERVER payments <- CLIENT orders
CLIENT payments <- SERVER payments
SERVER ledger <- CLIENT payments`

func TestBridge_SampledRequest_ExportsOneTraceWithCorrectParentage(t *testing.T) {
	for _, e := range []entry{
		{name: "new_trace"},
		{name: "client_sends_w3c", prop: propagation.TraceContext{}, sampled: true},
		{name: "client_sends_b3multi", prop: b3Multi.prop, sampled: true},
		{name: "client_sends_jaeger", prop: jaegerTrace.prop, sampled: true},
	} {
		t.Run(e.name, func(t *testing.T) {
			f := startFleet(t)
			body := f.get(t, e.request(t, f.EntryURL()+"/order"))

			f.recv.WaitSpans(t, 5, wait)
			f.stop(t) // flushes: nothing more can arrive
			spans := f.recv.Spans()
			if len(spans) != 5 {
				t.Fatalf("got %d spans; want 5:%s", len(spans), otlptest.Summary(spans))
			}

			traceIDs := map[string]bool{}
			for _, s := range spans {
				traceIDs[s.TraceID] = true
			}
			if len(traceIDs) != 1 {
				t.Fatalf("got %d trace ids; want one:%s", len(traceIDs), otlptest.Summary(spans))
			}
			tid := spans[0].TraceID
			if e.prop != nil && tid != entryTraceID.String() {
				t.Errorf("trace id: got %s; want the client's %s", tid, entryTraceID)
			}

			root := "(none: a new trace)"
			if e.prop != nil {
				root = "the client's span " + entrySpanID.String()
			}
			if got, want := chainOf(spans, entrySpanID.String()), fmt.Sprintf(wantChain, root); got != want {
				t.Errorf("parentage:\ngot:\n%s\nwant:\n%s%s", got, want, otlptest.Summary(spans))
			}

			for _, svc := range []string{"orders", "payments", "ledger"} {
				v := f.visit(t, svc)
				server := spanOf(t, spans, tracepb.Span_SPAN_KIND_SERVER, svc)
				got := fmt.Sprintf("trace=%s parent=%s sampled=%v", v.Context.TraceID(), v.Context.SpanID(), v.Context.IsSampled())
				want := fmt.Sprintf("trace=%s parent=%s sampled=true", tid, server.SpanID)
				if got != want {
					t.Errorf("%s read (its own format): got %s; want %s (its sidecar's SERVER span)", svc, got, want)
				}
				if got := traceHeaders(v.Header); !slices.Equal(got, wantHeaders[svc]) {
					t.Errorf("%s's trace headers: got %q; want %q (headers %v)", svc, got, wantHeaders[svc], v.Header)
				}
				if !strings.Contains(body, fmt.Sprintf("trace=%s parent=%s sampled=true", tid, server.SpanID)) {
					t.Errorf("answer does not show what %s read:\n%s", svc, body)
				}
			}
		})
	}
}

func TestBridge_UnsampledRequest_ExportsNothingAndEveryServiceSeesUnsampled(t *testing.T) {
	for _, e := range []entry{
		{name: "client_sends_w3c_flags_00", prop: propagation.TraceContext{}},
		{name: "client_sends_b3multi_sampled_0", prop: b3Multi.prop},
		{name: "client_sends_jaeger_flags_0", prop: jaegerTrace.prop},
	} {
		t.Run(e.name, func(t *testing.T) {
			f := startFleet(t)
			f.get(t, e.request(t, f.EntryURL()+"/order"))
			f.stop(t) // flushes every sidecar's spans
			if spans := f.recv.Spans(); len(spans) != 0 {
				t.Errorf("got %d spans exported; want none:%s", len(spans), otlptest.Summary(spans))
			}
			for _, svc := range []string{"orders", "payments", "ledger"} {
				v := f.visit(t, svc)
				got := fmt.Sprintf("trace=%s sampled=%v", v.Context.TraceID(), v.Context.IsSampled())
				want := fmt.Sprintf("trace=%s sampled=false", entryTraceID)
				if got != want {
					t.Errorf("%s read (its own format): got %s; want %s (headers %v)", svc, got, want, v.Header)
				}
				if v.Context.SpanID() == entrySpanID {
					t.Errorf("%s's parent is the client's span %s; want its sidecar's (unsampled) span", svc, entrySpanID)
				}
				if got := traceHeaders(v.Header); !slices.Equal(got, wantHeaders[svc]) {
					t.Errorf("%s's trace headers: got %q; want %q (headers %v)", svc, got, wantHeaders[svc], v.Header)
				}
			}
		})
	}
}

// A legacy service that does not get its own format says so: this is what happens when its sidecar injects
// the wrong one.
func TestService_WithoutItsFormat_Answers500NamingIt(t *testing.T) {
	f := startFleet(t)
	for _, tc := range []struct {
		service string
		header  http.Header
		want    string
	}{
		{"orders", http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
			"orders reads only B3 (multi-header): the request has no X-B3-TraceId, X-B3-SpanId header\n"},
		{"payments", http.Header{"X-B3-Traceid": {"4bf92f3577b34da6a3ce929d0e0e4736"}, "X-B3-Spanid": {"00f067aa0ba902b7"}},
			"payments reads only W3C Trace Context: the request has no traceparent header\n"},
		{"ledger", http.Header{"Uber-Trace-Id": {"not-a-context"}},
			"ledger reads only Jaeger: uber-trace-id present but not a valid context\n"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			var svc *Service
			for _, s := range f.Services {
				if s.Name == tc.service {
					svc = s
				}
			}
			req, _ := http.NewRequest(http.MethodGet, svc.URL()+"/", nil) // straight to the service, no sidecar
			req.Header = tc.header
			res, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusInternalServerError || string(b) != tc.want {
				t.Errorf("got %d %q; want 500 %q", res.StatusCode, b, tc.want)
			}
		})
	}
}

func (f *fleet) get(t *testing.T, req *http.Request) string {
	t.Helper()
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("entry: got %s; want 200 OK:\n%s", res.Status, b)
	}
	return string(b)
}

// chainOf describes each span as "KIND service <- its parent", in the order of wantChain.
func chainOf(spans []otlptest.Span, clientSpan string) string {
	label := map[string]string{}
	for _, s := range spans {
		label[s.SpanID] = kindName(s.Kind) + " " + s.Service
	}
	order := []string{"SERVER orders", "CLIENT orders", "SERVER payments", "CLIENT payments", "SERVER ledger"}
	rank := func(s otlptest.Span) int {
		if i := slices.Index(order, label[s.SpanID]); i >= 0 {
			return i
		}
		return len(order)
	}
	sorted := slices.Clone(spans)
	slices.SortStableFunc(sorted, func(a, b otlptest.Span) int { return rank(a) - rank(b) })
	var lines []string
	for _, s := range sorted {
		parent, ok := label[s.ParentSpanID]
		switch {
		case s.ParentSpanID == "":
			parent = "(none: a new trace)"
		case s.ParentSpanID == clientSpan:
			parent = "the client's span " + clientSpan
		case !ok:
			parent = "unknown span " + s.ParentSpanID
		}
		lines = append(lines, label[s.SpanID]+" <- "+parent)
	}
	return strings.Join(lines, "\n")
}

func kindName(k tracepb.Span_SpanKind) string {
	return strings.TrimPrefix(k.String(), "SPAN_KIND_")
}

func spanOf(t *testing.T, spans []otlptest.Span, kind tracepb.Span_SpanKind, service string) otlptest.Span {
	t.Helper()
	for _, s := range spans {
		if s.Kind == kind && s.Service == service {
			return s
		}
	}
	t.Fatalf("no %s span of %s:%s", kindName(kind), service, otlptest.Summary(spans))
	return otlptest.Span{}
}

// traceHeaders returns the sorted names of the trace-context headers in h, of every format sidetrace knows.
func traceHeaders(h http.Header) []string {
	var out []string
	for k := range h {
		switch {
		case k == "Traceparent", k == "Tracestate", k == "Baggage", k == "B3", k == "Uber-Trace-Id",
			k == "X-Amzn-Trace-Id", strings.HasPrefix(k, "X-B3-"), strings.HasPrefix(k, "Uberctx-"):
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The command as a user runs it: built, started, called at the entry it prints; the trace is in the three
// embedded stores, and SIGINT stops it with status 0.
func TestCommand_RunCurlFindTraceInStores_StopsOnSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "migration")
	if out, err := exec.Command(goTool(), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-q")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var printed syncBuffer
	go func() {
		io.Copy(&printed, stdout)
		exited <- cmd.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", printed.String(), stderr.String())
		}
	})

	deadline := time.Now().Add(wait)
	for !strings.Contains(printed.String(), "Ctrl-C stops.") {
		if time.Now().After(deadline) {
			t.Fatalf("the command did not print its entry within %v", wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := printed.String()
	entry := regexp.MustCompile(`entry \(orders' sidecar\): (http://\S+)/`).FindStringSubmatch(out)
	stores := regexp.MustCompile(`curl (http://\S+)/debug/traces/<traceId>   # (\w+)`).FindAllStringSubmatch(out, -1)
	if entry == nil || len(stores) != 3 {
		t.Fatalf("want the entry and three stores in the output:\n%s", out)
	}

	c := &http.Client{Transport: &http.Transport{}, Timeout: wait}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, entry[1]+"/order", nil)
	body := (&fleet{client: c}).get(t, req)
	m := regexp.MustCompile(`^orders\s+read b3multi\s+trace=([0-9a-f]{32}) `).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("answer: no trace id in\n%s", body)
	}
	traceID := m[1]

	// Each store has its sidecar's spans; together they are the chain.
	var spans []otlptest.Span
	for _, s := range stores {
		want := 2
		if s[2] == "ledger" {
			want = 1
		}
		got := storedSpans(t, c, s[1]+"/debug/traces/"+traceID, want)
		for _, sp := range got {
			if sp.Service != s[2] {
				t.Errorf("%s's store has a span of %s", s[2], sp.Service)
			}
		}
		spans = append(spans, got...)
	}
	if got, want := chainOf(spans, ""), fmt.Sprintf(wantChain, "(none: a new trace)"); got != want {
		t.Errorf("parentage across the stores:\ngot:\n%s\nwant:\n%s%s", got, want, otlptest.Summary(spans))
	}

	stopped = true
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGINT: %v; want exit status 0", err)
		}
	case <-time.After(wait):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("still running %v after SIGINT", wait)
	}
}

// storedSpans polls an embedded store's /debug/traces/{traceId} until it holds want spans (they arrive after
// the export delay).
func storedSpans(t *testing.T, c *http.Client, url string, want int) []otlptest.Span {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		var doc struct {
			Spans []struct {
				TraceID      string `json:"traceId"`
				SpanID       string `json:"spanId"`
				ParentSpanID string `json:"parentSpanId"`
				Kind         string `json:"kind"`
				Service      string `json:"service"`
			} `json:"spans"`
		}
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&doc)
		res.Body.Close()
		if err == nil && len(doc.Spans) >= want {
			var out []otlptest.Span
			for _, s := range doc.Spans {
				kind := tracepb.Span_SpanKind(tracepb.Span_SpanKind_value["SPAN_KIND_"+strings.ToUpper(s.Kind)])
				out = append(out, otlptest.Span{TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID, Kind: kind, Service: s.Service})
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d spans after %v; want %d", url, len(doc.Spans), wait, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goTool is the go command: the one running the tests (go test sets GOROOT), else the one on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}
