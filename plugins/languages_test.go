package plugins

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The example plugins written again in other languages (examples/plugins/NAME/LANG/), built by
// wasm-sdk/build-languages.sh. Every test here runs one table of cases through the real host
// for the Go module and for each other language's module of the same example, so that a
// difference between languages is a failing test.
var exampleLanguages = map[string][]string{
	"tenant-sampler": {"go", "rust", "c", "assemblyscript"},
	"pii-redact":     {"go", "rust"},
}

var (
	languagesOnce sync.Once
	languagesErr  error
)

// languageModule returns the path of example NAME built in LANG ("go" for the Go original),
// running build-languages.sh once per test binary. A missing toolchain fails the test with the
// script's message, which names the package to install.
func languageModule(t testing.TB, name, lang string) string {
	t.Helper()
	if lang == "go" {
		return example(t, name)
	}
	languagesOnce.Do(func() {
		cmd := exec.Command("sh", filepath.Join("..", "wasm-sdk", "build-languages.sh"), filepath.Join(wasmDir, "languages"))
		if b, err := cmd.CombinedOutput(); err != nil {
			languagesErr = fmt.Errorf("wasm-sdk/build-languages.sh: %v\n%s", err, b)
		}
	})
	if languagesErr != nil {
		t.Fatal(languagesErr)
	}
	return filepath.Join(wasmDir, "languages", name+"-"+lang+".wasm")
}

// forEachLanguage runs f as a subtest for every language of example name.
func forEachLanguage(t *testing.T, name string, f func(t *testing.T, path string)) {
	for _, lang := range exampleLanguages[name] {
		path := languageModule(t, name, lang)
		t.Run(lang, func(t *testing.T) {
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("%s in %s was not built: %v", name, lang, err)
			}
			f(t, path)
		})
	}
}

// langTimeout is generous: the race detector slows the host, and tests share a loaded machine.
func langTimeout() time.Duration { return goTimeout() }

// traceIDWithRandomness returns a trace id whose low 56 bits (the sampler's randomness) are r.
func traceIDWithRandomness(r uint64) trace.TraceID {
	var id trace.TraceID
	id[0] = 0x4b
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], r)
	copy(id[8:], b[:])
	id[8] = 0xa5 // not part of the randomness
	return id
}

// goThreshold is the Go example's rejection threshold of a ratio.
func goThreshold(ratio float64) uint64 {
	return uint64(math.Round((1 - ratio) * float64(uint64(1)<<56)))
}

type requestResult struct {
	Tenant     string
	Decision   Decision
	Attributes []attribute.KeyValue
	Errors     []string
}

func TestLanguages_TenantSampler_Request(t *testing.T) {
	half, tenth := goThreshold(0.5), goThreshold(0.1)
	third := goThreshold(1.0 / 3)
	tests := []struct {
		name    string
		config  string
		header  http.Header
		tenant  string // set by an earlier plugin
		traceID trace.TraceID
		want    requestResult
	}{
		{"sampled tenant", samplerConfig, http.Header{"X-Tenant-Id": {"acme"}}, "", traceIDWithRandomness(0), requestResult{
			"acme", RecordAndSample, []attribute.KeyValue{attribute.String("tenant.id", "acme")}, nil}},
		{"ratio 0 tenant", samplerConfig, http.Header{"X-Tenant-Id": {"free"}}, "", traceIDWithRandomness(1<<56 - 1), requestResult{
			"free", RecordOnly, []attribute.KeyValue{attribute.String("tenant.id", "free")}, nil}},
		{"half: just below", samplerConfig, http.Header{"X-Tenant-Id": {"half"}}, "", traceIDWithRandomness(half - 1), requestResult{
			"half", RecordOnly, []attribute.KeyValue{attribute.String("tenant.id", "half")}, nil}},
		{"half: at threshold", samplerConfig, http.Header{"X-Tenant-Id": {"half"}}, "", traceIDWithRandomness(half), requestResult{
			"half", RecordAndSample, []attribute.KeyValue{attribute.String("tenant.id", "half")}, nil}},
		{"unknown tenant: default below", samplerConfig, http.Header{"X-Tenant-Id": {"other"}}, "", traceIDWithRandomness(tenth - 1), requestResult{
			"other", RecordOnly, []attribute.KeyValue{attribute.String("tenant.id", "other")}, nil}},
		{"unknown tenant: default at", samplerConfig, http.Header{"X-Tenant-Id": {"other"}}, "", traceIDWithRandomness(tenth), requestResult{
			"other", RecordAndSample, []attribute.KeyValue{attribute.String("tenant.id", "other")}, nil}},
		{"no header: default", samplerConfig, http.Header{}, "", traceIDWithRandomness(tenth - 1), requestResult{"", RecordOnly, nil, nil}},
		{"empty header: default", samplerConfig, http.Header{"X-Tenant-Id": {""}}, "", traceIDWithRandomness(tenth), requestResult{"", RecordAndSample, nil, nil}},
		{"repeated header joined", samplerConfig, http.Header{"X-Tenant-Id": {"acme", "free"}}, "", traceIDWithRandomness(tenth - 1), requestResult{
			"acme, free", RecordOnly, []attribute.KeyValue{attribute.String("tenant.id", "acme, free")}, nil}},
		{"tenant from an earlier plugin kept", samplerConfig, http.Header{}, "pre", traceIDWithRandomness(0), requestResult{"pre", RecordOnly, nil, nil}},
		{"header replaces earlier tenant", samplerConfig, http.Header{"X-Tenant-Id": {"acme"}}, "pre", traceIDWithRandomness(0), requestResult{
			"acme", RecordAndSample, []attribute.KeyValue{attribute.String("tenant.id", "acme")}, nil}},
		{"unicode tenant", samplerConfig, http.Header{"X-Tenant-Id": {"café-ü"}}, "", traceIDWithRandomness(tenth), requestResult{
			"café-ü", RecordAndSample, []attribute.KeyValue{attribute.String("tenant.id", "café-ü")}, nil}},
		{"no config: ratio 1", "", http.Header{"X-Tenant-Id": {"x"}}, "", traceIDWithRandomness(0), requestResult{
			"x", RecordAndSample, []attribute.KeyValue{attribute.String("tenant.id", "x")}, nil}},
		{"null config: ratio 1", "null", http.Header{}, "", traceIDWithRandomness(0), requestResult{"", RecordAndSample, nil, nil}},
		{"custom header, any case", `{"header":"X-Org","default":0}`, http.Header{"X-Org": {"o1"}, "X-Tenant-Id": {"acme"}}, "", traceIDWithRandomness(1<<56 - 1), requestResult{
			"o1", RecordOnly, []attribute.KeyValue{attribute.String("tenant.id", "o1")}, nil}},
		{"field names any case", `{"Header":"x-org","DEFAULT":1,"Tenants":{"o1":0}}`, http.Header{"X-Org": {"o1"}}, "", traceIDWithRandomness(1<<56 - 1), requestResult{
			"o1", RecordOnly, []attribute.KeyValue{attribute.String("tenant.id", "o1")}, nil}},
		{"null fields keep defaults", `{"header":null,"default":null,"tenants":null}`, http.Header{"X-Tenant-Id": {"t"}}, "", traceIDWithRandomness(0), requestResult{
			"t", RecordAndSample, []attribute.KeyValue{attribute.String("tenant.id", "t")}, nil}},
		{"duplicate tenant: last wins", `{"tenants":{"t":1,"t":0}}`, http.Header{"X-Tenant-Id": {"t"}}, "", traceIDWithRandomness(1<<56 - 1), requestResult{
			"t", RecordOnly, []attribute.KeyValue{attribute.String("tenant.id", "t")}, nil}},
		{"third: below", `{"default":0.3333333333333333}`, http.Header{}, "", traceIDWithRandomness(third - 1), requestResult{"", RecordOnly, nil, nil}},
		{"third: at", `{"default":0.3333333333333333}`, http.Header{}, "", traceIDWithRandomness(third), requestResult{"", RecordAndSample, nil, nil}},
		{"exponent and escapes", `{"header":"x-\u0074enant-id","default":1e-1,"tenants":{"a\"b":5E-1}}`, http.Header{"X-Tenant-Id": {`a"b`}}, "", traceIDWithRandomness(half), requestResult{
			`a"b`, RecordAndSample, []attribute.KeyValue{attribute.String("tenant.id", `a"b`)}, nil}},
		{"trailing data ignored", `{"default":0} trailing`, http.Header{}, "", traceIDWithRandomness(1<<56 - 1), requestResult{"", RecordOnly, nil, nil}},
	}
	forEachLanguage(t, "tenant-sampler", func(t *testing.T, path string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := load(t, Options{Timeout: langTimeout()}, Spec{Name: "tenant", Path: path, Config: json.RawMessage(tt.config)})
				x := Exchange{Tenant: tt.tenant}
				r := &Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "https", Host: "shop", Path: "/cart", Header: tt.header, TraceID: tt.traceID}
				if err := h.OnRequest(context.Background(), r, &x); err != nil {
					t.Fatal(err)
				}
				got := requestResult{x.Tenant, x.Decision, x.Attributes, x.Errors}
				if d := diff(got, tt.want); d != "" {
					t.Errorf("%s", d)
				}
				x.Reset()
			})
		}
	})
}

// TestLanguages_TenantSampler_SameDecisions compares every language's decisions with the Go
// module's on random trace ids, for each tenant of the config.
func TestLanguages_TenantSampler_SameDecisions(t *testing.T) {
	const n = 1000
	config := `{"default":0.1,"tenants":{"acme":1.0,"free":0.0,"half":0.5,"p":0.123456789,"q":0.999}}`
	tenants := []string{"acme", "free", "half", "p", "q", "unknown", ""}
	run := func(t *testing.T, path string) []Decision {
		h := load(t, Options{Timeout: langTimeout()}, Spec{Name: "tenant", Path: path, Config: json.RawMessage(config)})
		rng := rand.New(rand.NewPCG(3, 4))
		var out []Decision
		r := &Request{Kind: trace.SpanKindServer, Header: http.Header{}}
		var x Exchange
		for _, tenant := range tenants {
			r.Header.Set("X-Tenant-Id", tenant)
			for range n {
				for i := range r.TraceID {
					r.TraceID[i] = byte(rng.Uint32())
				}
				x.Reset()
				if err := h.OnRequest(context.Background(), r, &x); err != nil || len(x.Errors) > 0 {
					t.Fatalf("OnRequest: %v %q", err, x.Errors)
				}
				out = append(out, x.Decision)
			}
		}
		x.Reset()
		return out
	}
	want := run(t, languageModule(t, "tenant-sampler", "go"))
	forEachLanguage(t, "tenant-sampler", func(t *testing.T, path string) {
		got := run(t, path)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("tenant %q, trace %d: got %v; want %v (as the Go module)", tenants[i/n], i%n, got[i], want[i])
			}
		}
	})
}

func TestLanguages_TenantSampler_Response(t *testing.T) {
	type result struct {
		Keep, MarkError bool
		Attributes      []attribute.KeyValue
		Errors          []string
	}
	tests := []struct {
		status int
		want   result
	}{
		{200, result{}}, {302, result{}}, {404, result{}}, {499, result{}},
		{500, result{Keep: true}}, {502, result{Keep: true}}, {503, result{Keep: true}}, {599, result{Keep: true}}, {600, result{Keep: true}},
	}
	forEachLanguage(t, "tenant-sampler", func(t *testing.T, path string) {
		h := load(t, Options{Timeout: langTimeout()}, Spec{Name: "tenant", Path: path, Config: json.RawMessage(samplerConfig)})
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
				var x Exchange
				r := &Request{Kind: trace.SpanKindClient, Header: http.Header{"X-Tenant-Id": {"free"}}, TraceID: testTraceID}
				if err := h.OnRequest(context.Background(), r, &x); err != nil {
					t.Fatal(err)
				}
				x.Attributes = nil
				if err := h.OnResponse(context.Background(), &Response{Status: tt.status}, &x); err != nil {
					t.Fatal(err)
				}
				if d := diff(result{x.Keep, x.MarkError, x.Attributes, x.Errors}, tt.want); d != "" {
					t.Errorf("%s", d)
				}
			})
		}
	})
}

func TestLanguages_TenantSampler_ConfigRefused(t *testing.T) {
	const prefix = "plugins: tenant: init: tenant-sampler: config: "
	tests := []struct {
		config string
		want   string // the whole message after prefix, or "" to check the prefix only
	}{
		{`{"default":2}`, "default: ratio 2 outside [0, 1]"},
		{`{"default":-0.5}`, "default: ratio -0.5 outside [0, 1]"},
		{`{"tenants":{"a":-1}}`, "tenants.a: ratio -1 outside [0, 1]"},
		{`{"tenants":{"a":1.5}}`, "tenants.a: ratio 1.5 outside [0, 1]"},
		{`{"header":""}`, "header: empty"},
		{`{"x":1}`, ""},
		{`[]`, ""},
		{`1`, ""},
		{`"x"`, ""},
		{`{`, ""},
		{`{"default":"0.5"}`, ""},
		{`{"header":1}`, ""},
		{`{"tenants":[]}`, ""},
		{`{"tenants":{"a":"1"}}`, ""},
		{`{"default":01}`, ""},
		{`{"default":.5}`, ""},
		{`{"default":1e999}`, ""},
		{` `, ""},
	}
	forEachLanguage(t, "tenant-sampler", func(t *testing.T, path string) {
		for _, tt := range tests {
			t.Run(tt.config, func(t *testing.T) {
				h, err := Load(context.Background(), []Spec{{Name: "tenant", Path: path, Config: json.RawMessage(tt.config)}}, Options{Logger: testLogger(t), CacheDir: filepath.Join(wasmDir, "cache")})
				if err == nil {
					h.Close(context.Background())
					t.Fatalf("got no error; want %q", prefix+tt.want)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, prefix) || (tt.want != "" && msg != prefix+tt.want) {
					t.Errorf("got %q; want %q", msg, prefix+tt.want)
				}
			})
		}
	})
}

// keep the imports used while the span-end tests grow.
var _ = sdktrace.Event{}
