package plugins

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

const (
	samplerConfig = `{"header":"x-tenant-id","default":0.1,"tenants":{"acme":1.0,"free":0.0,"half":0.5}}`
	customConfig  = `{"headers":{"x-user-agent-class":"app.client_class"},"static":{"deployment.environment":"prod"}}`
)

func exampleSpecs(t testing.TB) []Spec {
	return []Spec{
		{Name: "tenant", Path: example(t, "tenant-sampler"), Config: json.RawMessage(samplerConfig)},
		{Name: "custom", Path: example(t, "custom-attributes"), Config: json.RawMessage(customConfig)},
		{Name: "pii", Path: example(t, "pii-redact"), Failure: FailClosed},
	}
}

func TestExamples_RequestAndResponse(t *testing.T) {
	h := load(t, Options{Timeout: goTimeout()}, exampleSpecs(t)...)
	var x Exchange
	r := &Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "http", Host: "shop", Path: "/cart", Query: "password=x",
		Header:  http.Header{"X-Tenant-Id": {"acme"}, "X-User-Agent-Class": {"mobile"}},
		TraceID: testTraceID}
	if err := h.OnRequest(context.Background(), r, &x); err != nil {
		t.Fatal(err)
	}
	want := []attribute.KeyValue{
		attribute.String("tenant.id", "acme"),
		attribute.String("app.client_class", "mobile"),
		attribute.String("deployment.environment", "prod"),
	}
	if d := diff(x.Attributes, want); d != "" {
		t.Errorf("Attributes %s", d)
	}
	if x.Tenant != "acme" || x.Decision != RecordAndSample || len(x.Errors) != 0 {
		t.Errorf("got tenant %q, decision %v, errors %q; want acme, record_and_sample, none", x.Tenant, x.Decision, x.Errors)
	}
	if err := h.OnResponse(context.Background(), &Response{Status: 502}, &x); err != nil {
		t.Fatal(err)
	}
	if !x.Keep {
		t.Errorf("Keep: got false for status 502; want true")
	}
	for _, p := range h.Stats().Plugins {
		if p.Failures != 0 {
			t.Errorf("%s: %d failures", p.Name, p.Failures)
		}
	}
}

func TestTenantSampler_SampledFractionPerTenant(t *testing.T) {
	h := load(t, Options{Timeout: goTimeout()}, Spec{Name: "tenant", Path: example(t, "tenant-sampler"), Config: json.RawMessage(samplerConfig)})
	rng := rand.New(rand.NewPCG(42, 7))
	const n = 4000
	for _, tc := range []struct {
		tenant string
		ratio  float64
	}{{"acme", 1}, {"free", 0}, {"half", 0.5}, {"unknown", 0.1}, {"", 0.1}} {
		sampled := 0
		r := &Request{Kind: trace.SpanKindServer, Header: http.Header{}}
		if tc.tenant != "" {
			r.Header.Set("X-Tenant-Id", tc.tenant)
		}
		var x Exchange
		for range n {
			for i := range r.TraceID {
				r.TraceID[i] = byte(rng.Uint32())
			}
			x.Reset()
			if err := h.OnRequest(context.Background(), r, &x); err != nil {
				t.Fatal(err)
			}
			switch x.Decision {
			case RecordAndSample:
				sampled++
			case RecordOnly:
			default:
				t.Fatalf("decision %v; want record_and_sample or record_only (errors %q)", x.Decision, x.Errors)
			}
		}
		x.Reset()
		got := float64(sampled) / n
		bound := 4 * math.Sqrt(tc.ratio*(1-tc.ratio)/n)
		if math.Abs(got-tc.ratio) > bound {
			t.Errorf("tenant %q: sampled fraction %.4f; want %.2f ± %.4f (4σ)", tc.tenant, got, tc.ratio, bound)
		}
	}
}

// secrets are planted in span attributes and events; none may survive.
var secrets = []string{
	"alice@example.com", "4111 1111 1111 1111", "4111111111111111", "078-05-1120",
	"Bearer sk_live_abcdef123456", "sk_live_abcdef123456",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", "hunter2", "s3ss10n",
}

func TestPIIRedact_NoSecretLeavesTheProcess(t *testing.T) {
	h := load(t, Options{Timeout: goTimeout()}, exampleSpecs(t)...)
	spans := finishedSpans(t,
		span("GET /login", []attribute.KeyValue{
			attribute.String("url.full", "https://shop/login?user=al&password=hunter2"),
			attribute.String("url.query", "password=hunter2"),
			attribute.StringSlice("http.request.header.authorization", []string{"Bearer sk_live_abcdef123456"}),
			attribute.StringSlice("http.request.header.cookie", []string{"sid=s3ss10n"}),
			attribute.String("enduser.email", "alice@example.com"),
			attribute.String("http.route", "/login"),
			attribute.Int("http.response.status_code", 200),
		}, sdktrace.Event{Name: "exception", Attributes: []attribute.KeyValue{
			attribute.String("exception.message", "card 4111 1111 1111 1111 declined for 078-05-1120"),
			attribute.String("exception.stacktrace", "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"),
		}}),
		span("GET /ok", []attribute.KeyValue{attribute.String("http.route", "/ok")}),
	)
	got := h.ProcessSpans(context.Background(), spans)
	if len(got) != 2 {
		t.Fatalf("got %d spans; want 2", len(got))
	}
	for _, s := range got {
		for _, text := range spanTexts(s) {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %q: secret %q leaked in %q", s.Name(), secret, text)
				}
			}
		}
	}
	want := []attribute.KeyValue{
		attribute.String("url.full", "https://shop/login?user=al&password=[REDACTED:param]"),
		attribute.String("url.query", "password=[REDACTED:param]"),
		attribute.StringSlice("http.request.header.authorization", []string{"[REDACTED:header]"}),
		attribute.StringSlice("http.request.header.cookie", []string{"[REDACTED:header]"}),
		attribute.String("enduser.email", "[REDACTED:email]"),
		attribute.String("http.route", "/login"),
		attribute.Int("http.response.status_code", 200),
	}
	if d := diff(got[0].Attributes(), want); d != "" {
		t.Errorf("attributes %s", d)
	}
	wantEvent := []attribute.KeyValue{
		attribute.String("exception.message", "card [REDACTED:card] declined for [REDACTED:ssn]"),
		attribute.String("exception.stacktrace", "token [REDACTED:jwt]"),
	}
	if d := diff(got[0].Events()[0].Attributes, wantEvent); d != "" {
		t.Errorf("event attributes %s", d)
	}
	if got[1] != spans[1] {
		t.Errorf("an unedited span was wrapped")
	}
}

// spanTexts is every attribute and event attribute value of s, as text.
func spanTexts(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, kv := range s.Attributes() {
		out = append(out, kv.Value.Emit())
	}
	for _, e := range s.Events() {
		for _, kv := range e.Attributes {
			out = append(out, kv.Value.Emit())
		}
	}
	return out
}

func TestPIIRedact_LargeSpanGrowsTheBuffer(t *testing.T) {
	h := load(t, Options{}, Spec{Name: "pii", Path: example(t, "pii-redact"), Failure: FailClosed})
	mid := strings.Repeat("lorem ipsum ", 1000) + "mail bob@example.org"   // 12 KB: scanned whole
	huge := strings.Repeat("lorem ipsum ", 20000) + "mail eve@example.org" // 240 KB: truncated to 16 KiB, then scanned
	spans := finishedSpans(t, span("big", []attribute.KeyValue{attribute.String("mid", mid), attribute.String("huge", huge)}))
	got := h.ProcessSpans(context.Background(), spans)
	if len(got) != 1 {
		t.Fatalf("got %d spans; want 1 (errors: %+v)", len(got), h.Stats().Plugin("pii"))
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range got[0].Attributes() {
		attrs[kv.Key] = kv.Value
	}
	if v := attrs["mid"].AsString(); v != strings.TrimSuffix(mid, "bob@example.org")+"[REDACTED:email]" {
		t.Errorf("mid: got a %d-byte value ending %q", len(v), v[max(0, len(v)-40):])
	}
	if v := attrs["huge"].AsString(); strings.Contains(v, "eve@") || len(v) != 16384+len("[TRUNCATED]") {
		t.Errorf("huge: got a %d-byte value ending %q", len(v), v[max(0, len(v)-40):])
	}
}
