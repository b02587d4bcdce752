package telemetry

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sidetrace/sidetrace/config"
)

// recordSpans makes real SDK spans covering every field and attribute type: two resources, two scopes,
// remote and local parents, events, links with a tracestate, error status, dropped counts.
func recordSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	limits := sdktrace.NewSpanLimits()
	limits.AttributeCountLimit = 16
	limits.EventCountLimit = 2
	var spans []sdktrace.ReadOnlySpan
	for i, res := range []*resource.Resource{
		resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "a"), attribute.Int("n", 1)),
		resource.NewSchemaless(attribute.String("service.name", "b")),
	} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(rec), sdktrace.WithRawSpanLimits(limits))
		tr := tp.Tracer("scope-one", trace.WithInstrumentationVersion("1.2.3"), trace.WithSchemaURL("https://example/schema"),
			trace.WithInstrumentationAttributes(attribute.Bool("scoped", true)))
		tr2 := tp.Tracer("scope-two")

		ts, _ := trace.ParseTraceState("vendor=abc,ot=th:8")
		remote := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
		})
		linked := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, Remote: true})
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
		ctx, server := tr.Start(ctx, "GET /users/{id}", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithTimestamp(time.Unix(1700000000, 123)),
			trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("sidetrace.link.reason", "other_format")}}),
			trace.WithAttributes(
				attribute.String("http.request.method", "GET"),
				attribute.Int64("http.response.status_code", 503),
				attribute.Float64("ratio", 0.25),
				attribute.Bool("flag", true),
				attribute.StringSlice("ss", []string{"x", "", "y"}),
				attribute.Int64Slice("is", []int64{-1, 0, 1 << 40}),
				attribute.Float64Slice("fs", []float64{1.5, -2}),
				attribute.BoolSlice("bs", []bool{true, false}),
				attribute.String("long", strings.Repeat("é", 300)),
			))
		for j := range 20 { // beyond the limit: dropped attributes counted
			server.SetAttributes(attribute.Int("extra."+string(rune('a'+j)), j))
		}
		for j := range 3 { // beyond the limit: a dropped event
			server.AddEvent("retry", trace.WithTimestamp(time.Unix(1700000000, int64(500+j))), trace.WithAttributes(attribute.Int("attempt", j)))
		}
		_, client := tr2.Start(ctx, "GET", trace.WithSpanKind(trace.SpanKindClient))
		client.SetStatus(codes.Ok, "")
		client.End()
		server.SetStatus(codes.Error, "upstream timed out")
		server.End(trace.WithTimestamp(time.Unix(1700000001, 0)))
		_, internal := tr.Start(context.Background(), "internal-"+string(rune('0'+i)))
		internal.End()
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range rec.Ended() {
		spans = append(spans, s)
	}
	return spans
}

// captureServer is a collector keeping every request body and header.
type captureServer struct {
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
}

func (c *captureServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.headers = append(c.headers, r.Header.Clone())
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(out)
}

func (c *captureServer) last(t *testing.T) (*coltracepb.ExportTraceServiceRequest, http.Header) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bodies) == 0 {
		t.Fatal("the collector received nothing")
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(c.bodies[len(c.bodies)-1], &req); err != nil {
		t.Fatalf("the export does not decode as an ExportTraceServiceRequest: %v", err)
	}
	return &req, c.headers[len(c.headers)-1]
}

// normalize orders resources and scopes (the SDK's exporter groups through maps) and drops link trace
// states, which the SDK's exporter leaves out and this one sends.
func normalize(req *coltracepb.ExportTraceServiceRequest) (linkStates []string) {
	slices.SortFunc(req.ResourceSpans, func(a, b *tracepb.ResourceSpans) int {
		return strings.Compare(a.GetResource().String(), b.GetResource().String())
	})
	for _, rs := range req.ResourceSpans {
		slices.SortFunc(rs.ScopeSpans, func(a, b *tracepb.ScopeSpans) int {
			return strings.Compare(a.GetScope().GetName(), b.GetScope().GetName())
		})
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				for _, l := range sp.Links {
					if l.TraceState != "" {
						linkStates = append(linkStates, l.TraceState)
					}
					l.TraceState = ""
				}
			}
		}
	}
	return linkStates
}

// The encoding is checked against the OpenTelemetry SDK's own OTLP/HTTP exporter on the same spans: both
// exports, decoded with the official protobuf types, must be equal.
func TestOTLPExporter_SameAsSDKExporter(t *testing.T) {
	spans := recordSpans(t)
	if len(spans) != 6 {
		t.Fatalf("recorded %d spans, want 6", len(spans))
	}
	var oracle, ours captureServer
	osrv := httptest.NewServer(&oracle)
	defer osrv.Close()
	srv := httptest.NewServer(&ours)
	defer srv.Close()
	ctx := context.Background()

	sdkExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(osrv.URL+"/v1/traces"), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sdkExp.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	sdkExp.Shutdown(ctx)
	exp := NewOTLPExporter(OTLPOptions{URL: srv.URL + "/v1/traces", Timeout: 5 * time.Second, Headers: map[string]string{"Authorization": "Bearer x"}, UserAgent: "sidetrace/test"})
	defer exp.Shutdown(ctx)
	if err := exp.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}

	want, _ := oracle.last(t)
	got, hdr := ours.last(t)
	normalize(want)
	states := normalize(got)
	if !proto.Equal(want, got) {
		t.Fatalf("the export differs from the SDK exporter's:\nSDK:  %v\nours: %v", want, got)
	}
	if len(states) != 0 { // the recorded links carry no trace state
		t.Fatalf("link trace states: %q", states)
	}
	if hdr.Get("Content-Type") != "application/x-protobuf" || hdr.Get("Authorization") != "Bearer x" || hdr.Get("User-Agent") != "sidetrace/test" {
		t.Fatalf("headers: %v", hdr)
	}
	// Sanity: the fields the comparison rests on are really there.
	var n, dropped, events int
	for _, rs := range got.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				n++
				dropped += int(sp.DroppedAttributesCount)
				events += len(sp.Events)
			}
		}
	}
	if n != 6 || dropped == 0 || events != 4 {
		t.Fatalf("spans %d, dropped attributes %d, events %d", n, dropped, events)
	}
}

func TestOTLPExporter_LinkTraceStateKept(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ts, _ := trace.ParseTraceState("vendor=abc")
	linked := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, TraceState: ts})
	_, s := tp.Tracer("t").Start(context.Background(), "s", trace.WithLinks(trace.Link{SpanContext: linked}))
	s.End()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(appendExportRequest(nil, rec.Ended(), false), &req); err != nil {
		t.Fatal(err)
	}
	if got := req.ResourceSpans[0].ScopeSpans[0].Spans[0].Links[0].TraceState; got != "vendor=abc" {
		t.Fatalf("link trace_state = %q", got)
	}
}

func TestOTLPExporter_GzipAndErrors(t *testing.T) {
	spans := recordSpans(t)
	var c captureServer
	srv := httptest.NewServer(&c)
	defer srv.Close()
	ctx := context.Background()
	exp := NewOTLPExporter(OTLPOptions{URL: srv.URL, Timeout: 5 * time.Second, Gzip: true})
	defer exp.Shutdown(ctx)
	for range 2 { // the gzip writer is reused
		if err := exp.ExportSpans(ctx, spans); err != nil {
			t.Fatal(err)
		}
	}
	req, hdr := c.last(t)
	if hdr.Get("Content-Encoding") != "gzip" || len(req.ResourceSpans) != 2 {
		t.Fatalf("gzip export: encoding %q, %d resources", hdr.Get("Content-Encoding"), len(req.ResourceSpans))
	}

	partial := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too old"}})
		w.Write(out)
	}))
	defer partial.Close()
	pexp := NewOTLPExporter(OTLPOptions{URL: partial.URL, Timeout: 5 * time.Second})
	if err := pexp.ExportSpans(ctx, spans); err == nil || !strings.Contains(err.Error(), "rejected 2 of 6 spans: too old") {
		t.Fatalf("partial success: err = %v", err)
	}

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "quota exceeded", http.StatusTooManyRequests)
	}))
	defer failing.Close()
	fexp := NewOTLPExporter(OTLPOptions{URL: failing.URL, Timeout: 5 * time.Second})
	if err := fexp.ExportSpans(ctx, spans); err == nil || !strings.Contains(err.Error(), "429 Too Many Requests: quota exceeded") {
		t.Fatalf("429: err = %v", err)
	}
}

// An https collector verified with OTEL_EXPORTER_OTLP_CERTIFICATE, requiring the client certificate of
// OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _KEY.
func TestOTLPExporter_MutualTLSFromConfig(t *testing.T) {
	var c captureServer
	srv := httptest.NewUnstartedServer(&c)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writePEM(t, ca, "CERTIFICATE", srv.Certificate().Raw)
	// The test server's own certificate and key double as the client's.
	cert := filepath.Join(dir, "client.pem")
	key := filepath.Join(dir, "client-key.pem")
	pair := srv.TLS.Certificates[0]
	writePEM(t, cert, "CERTIFICATE", pair.Certificate[0])
	der, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, key, "PRIVATE KEY", der)

	cfg, err := config.Load([]string{"SIDETRACE_UPSTREAM=http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_ENDPOINT=" + srv.URL,
		"OTEL_EXPORTER_OTLP_CERTIFICATE=" + ca, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=" + cert, "OTEL_EXPORTER_OTLP_CLIENT_KEY=" + key})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := cfg.Telemetry.ExportTLS()
	if err != nil {
		t.Fatal(err)
	}
	exp := NewOTLPExporter(OTLPOptions{URL: cfg.Telemetry.TracesURL(), Timeout: 5 * time.Second, TLS: tlsCfg})
	defer exp.Shutdown(context.Background())
	if err := exp.ExportSpans(context.Background(), recordSpans(t)); err != nil {
		t.Fatal(err)
	}
	c.last(t)

	_, err = config.Load([]string{"SIDETRACE_UPSTREAM=http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=" + cert})
	if err == nil || !strings.HasPrefix(err.Error(), "OTEL_EXPORTER_OTLP_CLIENT_KEY: required with OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE") {
		t.Fatalf("certificate without key: err = %v", err)
	}
	_, err = config.Load([]string{"SIDETRACE_UPSTREAM=http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE=" + key})
	if err == nil || !strings.HasPrefix(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: ") {
		t.Fatalf("a key as CA file: err = %v", err)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The length varint grows past one byte at 128: messages either side of it, nested, decode.
func TestOTLPEncoding_LengthBoundaries(t *testing.T) {
	for _, n := range []int{0, 1, 100, 110, 120, 127, 128, 129, 200, 16383, 16384, 70000} {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		_, s := tp.Tracer("t").Start(context.Background(), strings.Repeat("n", n), trace.WithAttributes(attribute.String("k", strings.Repeat("v", n))))
		s.End()
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(appendExportRequest(nil, rec.Ended(), false), &req); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		sp := req.ResourceSpans[0].ScopeSpans[0].Spans[0]
		if len(sp.Name) != n || len(sp.Attributes[0].Value.GetStringValue()) != n {
			t.Fatalf("n=%d: name %d bytes, attribute %d bytes", n, len(sp.Name), len(sp.Attributes[0].Value.GetStringValue()))
		}
	}
}

func BenchmarkOTLPEncode(b *testing.B) {
	spans := serverSpans(512)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf = appendExportRequest(buf[:0], spans, false)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
}

// BenchmarkOTLPExport posts a batch of 512 server spans to a loopback collector that discards them, with this
// exporter and, as the baseline, the SDK's otlptracehttp.
func BenchmarkOTLPExport(b *testing.B) {
	spans := serverSpans(512)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	ctx := context.Background()
	sdkExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		b.Fatal(err)
	}
	defer sdkExp.Shutdown(ctx)
	ours := NewOTLPExporter(OTLPOptions{URL: srv.URL + "/v1/traces", Timeout: 5 * time.Second})
	defer ours.Shutdown(ctx)
	// Without its yields, whose sleeps on this otherwise idle machine would be counted as the exporter's time
	// (the poller sleeps a whole millisecond when nothing else runs).
	ours.noYield = true
	for _, e := range []struct {
		name string
		exp  sdktrace.SpanExporter
	}{{"otlptracehttp", sdkExp}, {"sidetrace", ours}} {
		b.Run(e.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := e.exp.ExportSpans(ctx, spans); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
		})
	}
}

// serverSpans makes n ended SERVER spans with the attributes of a proxied request.
func serverSpans(n int) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	for range n {
		_, s := tp.Tracer("github.com/sidetrace/sidetrace").Start(context.Background(), "GET", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("url.path", "/users/42"),
				attribute.String("url.scheme", "http"), attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", 15006),
				attribute.String("client.address", "127.0.0.1"), attribute.String("network.protocol.version", "1.1"),
				attribute.String("user_agent.original", "bench/1"), attribute.Int("http.response.status_code", 200),
				attribute.Int("http.response.body.size", 1024), attribute.String("sidetrace.outcome", "completed"),
				attribute.String("sidetrace.correlation_id", "55abaea2-ae1d-42bc-87e6-9da33450f0af")))
		s.End()
	}
	return rec.Ended()
}
