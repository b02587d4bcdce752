package plugins

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

var testTraceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}

func helloHost(t testing.TB, opts Options) *Host {
	t.Helper()
	return load(t, opts, Spec{Name: "hello", Path: wat("hello"), Failure: FailOpen})
}

func TestWAT_RequestHook_AddsAttributesAndDecides(t *testing.T) {
	h := helloHost(t, Options{})
	tests := []struct {
		name   string
		header http.Header
		want   []attribute.KeyValue
	}{
		{"no request id", http.Header{}, []attribute.KeyValue{attribute.String("wat.method", "POST")}},
		{"request id read on demand", http.Header{"X-Request-Id": {"r-123"}}, []attribute.KeyValue{
			attribute.String("wat.method", "POST"), attribute.String("wat.request_id", "r-123")}},
		{"repeated header joined", http.Header{"X-Request-Id": {"a", "b"}}, []attribute.KeyValue{
			attribute.String("wat.method", "POST"), attribute.String("wat.request_id", "a, b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var x Exchange
			r := &Request{Kind: trace.SpanKindServer, Method: "POST", Scheme: "http", Host: "example.com", Path: "/a", Header: tt.header, TraceID: testTraceID}
			if err := h.OnRequest(context.Background(), r, &x); err != nil {
				t.Fatalf("OnRequest: %v", err)
			}
			if d := diff(x.Attributes, tt.want); d != "" {
				t.Errorf("Attributes %s", d)
			}
			if x.Decision != RecordAndSample {
				t.Errorf("Decision: got %v; want %v", x.Decision, RecordAndSample)
			}
			if len(x.Errors) != 0 {
				t.Errorf("Errors: got %q; want none", x.Errors)
			}
			x.Reset()
		})
	}
}

func TestWAT_ResponseHook_StatusAndKeep(t *testing.T) {
	h := helloHost(t, Options{})
	for _, status := range []int{200, 404, 500, 503} {
		var x Exchange
		x.Tenant = "acme" // shifts the status in the view: the guest must read the tenant's length
		if err := h.OnRequest(context.Background(), &Request{Kind: trace.SpanKindClient, Method: "GET", TraceID: testTraceID}, &x); err != nil {
			t.Fatal(err)
		}
		hdr := http.Header{"Content-Type": {"text/plain", "ignored"}}
		if status == 404 {
			hdr = nil // absent: count 0 in the view
		}
		if err := h.OnResponse(context.Background(), &Response{Status: status, Header: hdr, Duration: time.Millisecond}, &x); err != nil {
			t.Fatal(err)
		}
		want := []attribute.KeyValue{attribute.String("wat.method", "GET"), attribute.Int64("wat.status", int64(status))}
		if hdr != nil {
			want = append(want, attribute.String("wat.content_type", "text/plain"))
		}
		if d := diff(x.Attributes, want); d != "" {
			t.Errorf("status %d: Attributes %s", status, d)
		}
		if got, want := x.Keep, status >= 500; got != want {
			t.Errorf("status %d: Keep: got %v; want %v", status, got, want)
		}
		if x.chain != nil {
			t.Errorf("status %d: exchange still pinned after OnResponse", status)
		}
	}
}

func TestNilHost_IsAnEmptyChain(t *testing.T) {
	var h *Host
	var x Exchange
	if err := h.OnRequest(context.Background(), &Request{}, &x); err != nil {
		t.Errorf("OnRequest: got %v; want nil", err)
	}
	if err := h.OnResponse(context.Background(), &Response{}, &x); err != nil {
		t.Errorf("OnResponse: got %v; want nil", err)
	}
	if got := h.ProcessSpans(context.Background(), nil); got != nil {
		t.Errorf("ProcessSpans: got %v; want nil", got)
	}
	if err := h.Reload(context.Background()); err != nil {
		t.Errorf("Reload: got %v; want nil", err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Errorf("Close: got %v; want nil", err)
	}
	if d := diff(h.Stats(), Stats{}); d != "" {
		t.Errorf("Stats %s", d)
	}
}
