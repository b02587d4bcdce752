package plugins

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkHook measures one request hook call into one plugin.
func BenchmarkHook(b *testing.B) {
	b.Run("wat", func(b *testing.B) {
		h := load(b, Options{Timeout: goTimeout()}, Spec{Name: "hello", Path: wat("hello")})
		r := &Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "http", Host: "shop", Path: "/cart", Header: http.Header{}, TraceID: testTraceID}
		var x Exchange
		b.ReportAllocs()
		for b.Loop() {
			x.Reset()
			if err := h.OnRequest(context.Background(), r, &x); err != nil {
				b.Fatal(err)
			}
		}
		x.Reset()
	})
	b.Run("wat-nointerrupt", func(b *testing.B) {
		h := load(b, Options{Timeout: goTimeout(), NoInterrupt: true}, Spec{Name: "hello", Path: wat("hello")})
		r := &Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "http", Host: "shop", Path: "/cart", Header: http.Header{}, TraceID: testTraceID}
		var x Exchange
		b.ReportAllocs()
		for b.Loop() {
			x.Reset()
			if err := h.OnRequest(context.Background(), r, &x); err != nil {
				b.Fatal(err)
			}
		}
		x.Reset()
	})
	b.Run("go/tenant-sampler", func(b *testing.B) {
		h := load(b, Options{Timeout: goTimeout()}, Spec{Name: "tenant", Path: example(b, "tenant-sampler"), Config: json.RawMessage(samplerConfig)})
		r := &Request{Kind: trace.SpanKindServer, Method: "GET", Header: http.Header{"X-Tenant-Id": {"acme"}}, TraceID: testTraceID}
		var x Exchange
		b.ReportAllocs()
		for b.Loop() {
			x.Reset()
			if err := h.OnRequest(context.Background(), r, &x); err != nil {
				b.Fatal(err)
			}
		}
		x.Reset()
	})
}

// BenchmarkSpanEnd measures the pii-redact span-end hook on one typical span.
func BenchmarkSpanEnd(b *testing.B) {
	for _, ni := range []bool{false, true} {
		name := "pii-redact"
		if ni {
			name += "-nointerrupt"
		}
		b.Run(name, func(b *testing.B) {
			h := load(b, Options{Timeout: goTimeout(), NoInterrupt: ni}, Spec{Name: "pii", Path: example(b, "pii-redact")})
			spans := benchSpans(b)
			b.ReportAllocs()
			for b.Loop() {
				if out := h.ProcessSpans(context.Background(), spans); len(out) != 1 {
					b.Fatal("span dropped")
				}
			}
		})
	}
}

func benchSpans(b testing.TB) []sdktrace.ReadOnlySpan {
	return finishedSpans(b, span("GET /cart", []attribute.KeyValue{
		attribute.String("http.request.method", "GET"),
		attribute.String("url.full", "https://shop/cart?id=1"),
		attribute.String("url.query", "id=1"),
		attribute.String("http.route", "/cart"),
		attribute.String("server.address", "shop"),
		attribute.Int("http.response.status_code", 200),
		attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
		attribute.String("tenant.id", "acme"),
		attribute.String("app.client_class", "mobile"),
		attribute.String("deployment.environment", "prod"),
	}))
}

// BenchmarkChain measures the three example plugins on one request: request
// and response hooks and the span-end hook on its span.
func BenchmarkChain(b *testing.B) {
	b.Run("examples", func(b *testing.B) { benchChain(b, Options{Timeout: goTimeout()}) })
	// The same three plugins, all Rust ports: what the chain costs when no plugin is Go.
	b.Run("examples-rust", func(b *testing.B) {
		benchChainSpecs(b, Options{Timeout: goTimeout()}, []Spec{
			{Name: "tenant", Path: languageModule(b, "tenant-sampler", "rust"), Config: json.RawMessage(samplerConfig)},
			{Name: "custom", Path: languageModule(b, "custom-attributes", "rust"), Config: json.RawMessage(customConfig)},
			{Name: "pii", Path: languageModule(b, "pii-redact", "rust"), Failure: FailClosed},
		})
	})
	b.Run("examples-parallel", func(b *testing.B) {
		// Every goroutine runs the chain: the pools fill up to PoolSize
		// (GOMAXPROCS); the metrics give the memory of full pools.
		h := load(b, Options{Timeout: goTimeout()}, exampleSpecs(b)...)
		spans := benchSpans(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := &Request{Kind: trace.SpanKindServer, Method: "GET", Header: http.Header{"X-Tenant-Id": {"acme"}}, TraceID: testTraceID}
			var x Exchange
			for pb.Next() {
				x.Reset()
				h.OnRequest(context.Background(), r, &x)
				h.OnResponse(context.Background(), &Response{Status: 200}, &x)
				h.ProcessSpans(context.Background(), spans)
			}
		})
		b.StopTimer()
		reportPools(b, h)
	})
}

// reportPools reports each plugin's live instances and their memory.
func reportPools(b *testing.B, h *Host) {
	for _, p := range h.Stats().Plugins {
		b.ReportMetric(float64(p.MemoryBytes)/(1<<20), p.Name+"-MiB")
		b.ReportMetric(float64(p.Instances), p.Name+"-instances")
		if p.Failures > 0 { // a loaded machine can stall a call past its deadline
			b.Logf("%s: %d failures in %d calls", p.Name, p.Failures, p.Calls)
		}
	}
}

func benchChain(b *testing.B, opts Options) { benchChainSpecs(b, opts, exampleSpecs(b)) }

func benchChainSpecs(b *testing.B, opts Options, specs []Spec) {
	{
		h := load(b, opts, specs...)
		r := &Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "https", Host: "shop", Path: "/cart", Query: "id=1",
			Header:  http.Header{"X-Tenant-Id": {"acme"}, "X-User-Agent-Class": {"mobile"}},
			TraceID: testTraceID, PeerAddr: "10.0.0.1:5555"}
		resp := &Response{Status: 200, Duration: time.Millisecond}
		spans := benchSpans(b)
		var x Exchange
		b.ReportAllocs()
		for b.Loop() {
			x.Reset()
			if err := h.OnRequest(context.Background(), r, &x); err != nil {
				b.Fatal(err)
			}
			if err := h.OnResponse(context.Background(), resp, &x); err != nil {
				b.Fatal(err)
			}
			if out := h.ProcessSpans(context.Background(), spans); len(out) != 1 {
				b.Fatal("span dropped")
			}
		}
		b.StopTimer()
		reportPools(b, h)
	}
}

// BenchmarkChainNoInterrupt is BenchmarkChain with Options.NoInterrupt, to
// measure the cost of the deadline checks.
func BenchmarkChainNoInterrupt(b *testing.B) {
	benchChain(b, Options{Timeout: goTimeout(), NoInterrupt: true})
}
