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
	"tenant-sampler":    {"go", "rust", "c", "assemblyscript"},
	"pii-redact":        {"go", "rust"},
	"custom-attributes": {"go", "rust"},
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

// redactSpans runs one span per attribute through pii-redact (module path, config) and returns
// each span's attributes and its first event's attributes after the chain.
func redactSpans(t *testing.T, path, config string, attrs []attribute.KeyValue, event []attribute.KeyValue) (got [][]attribute.KeyValue, gotEvent []attribute.KeyValue) {
	t.Helper()
	h := load(t, Options{Timeout: langTimeout()}, Spec{Name: "pii", Path: path, Config: json.RawMessage(config), Failure: FailClosed})
	var fns []func(trace.Tracer)
	for _, a := range attrs {
		fns = append(fns, span("GET /x", []attribute.KeyValue{a}))
	}
	if event != nil {
		fns = append(fns, span("GET /e", nil, sdktrace.Event{Name: "exception", Attributes: event}))
	}
	out := h.ProcessSpans(context.Background(), finishedSpans(t, fns...))
	if len(out) != len(fns) {
		t.Fatalf("got %d spans; want %d (a span was dropped: the plugin failed)", len(out), len(fns))
	}
	for i := range attrs {
		got = append(got, out[i].Attributes())
	}
	if event != nil {
		gotEvent = out[len(out)-1].Events()[0].Attributes
	}
	return got, gotEvent
}

const jwtSample = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"

func TestLanguages_PIIRedact_Defaults(t *testing.T) {
	tests := []struct {
		name      string
		kv        attribute.KeyValue
		wantValue attribute.Value
	}{
		{"email", attribute.String("msg", "contact bob.smith+x@mail.example.co.uk now"), attribute.StringValue("contact [REDACTED:email] now")},
		{"emails two", attribute.String("m", "two a@b.io,c@d.io"), attribute.StringValue("two [REDACTED:email],[REDACTED:email]")},
		{"email trailing dot", attribute.String("m", "x a.b+c@mail.example.org. y"), attribute.StringValue("x [REDACTED:email]. y")},
		{"not emails", attribute.String("m", "not @ an email, a@b, a@b.c, @x.io"), attribute.StringValue("not @ an email, a@b, a@b.c, @x.io")},
		{"email localhost kept", attribute.String("m", "user@localhost"), attribute.StringValue("user@localhost")},
		{"email digit tld kept", attribute.String("m", "a@b.c0m"), attribute.StringValue("a@b.c0m")},
		{"email double at kept", attribute.String("m", "a@@b.io"), attribute.StringValue("a@@b.io")},
		{"card spaced", attribute.String("msg", "card 4111 1111 1111 1111 ok"), attribute.StringValue("card [REDACTED:card] ok")},
		{"card dashed", attribute.String("msg", "5500-0000-0000-0004"), attribute.StringValue("[REDACTED:card]")},
		{"card bad luhn kept", attribute.String("msg", "order 4111111111111112"), attribute.StringValue("order 4111111111111112")},
		{"card 19 digits", attribute.String("m", "x 6011000990139424000 y"), attribute.StringValue("x 6011000990139424000 y")},
		{"card in word kept", attribute.String("m", "id4111111111111111"), attribute.StringValue("id4111111111111111")},
		{"ssn", attribute.String("msg", "ssn 123-45-6789."), attribute.StringValue("ssn [REDACTED:ssn].")},
		{"ssn invalid area kept", attribute.String("msg", "id 666-45-6789"), attribute.StringValue("id 666-45-6789")},
		{"ssn 9xx kept", attribute.String("m", "900-12-3456 and 078-05-1120"), attribute.StringValue("900-12-3456 and [REDACTED:ssn]")},
		{"ssn glued kept", attribute.String("m", "1123-45-6789 123-45-67890"), attribute.StringValue("1123-45-6789 123-45-67890")},
		{"bearer", attribute.String("msg", "Authorization: Bearer abc.def-123"), attribute.StringValue("Authorization: Bearer [REDACTED:bearer]")},
		{"bearer lower, padding", attribute.String("m", "bearer\tabc+/== rest"), attribute.StringValue("bearer [REDACTED:bearer] rest")},
		{"bearer glued kept", attribute.String("m", "xbearer abc"), attribute.StringValue("xbearer abc")},
		{"jwt", attribute.String("msg", "token="+jwtSample), attribute.StringValue("token=[REDACTED:jwt]")},
		{"jwt glued kept", attribute.String("m", "a"+jwtSample), attribute.StringValue("a" + jwtSample)},
		{"authorization header", attribute.StringSlice("http.request.header.authorization", []string{"Basic dXNlcjpwYXNz"}), attribute.StringSliceValue([]string{"[REDACTED:header]"})},
		{"cookie header string", attribute.String("http.request.header.cookie", "sid=1"), attribute.StringValue("[REDACTED:header]")},
		{"set-cookie response, two values", attribute.StringSlice("http.response.header.set-cookie", []string{"a=1", "b=2"}), attribute.StringSliceValue([]string{"[REDACTED:header]", "[REDACTED:header]"})},
		{"x-api-key int", attribute.Int("http.request.header.x-api-key", 7), attribute.StringValue("[REDACTED:header]")},
		{"query params", attribute.String("url.query", "q=shoes&password=hunter2&api_key=k1&page=2"), attribute.StringValue("q=shoes&password=[REDACTED:param]&api_key=[REDACTED:param]&page=2")},
		{"url.full", attribute.String("url.full", "https://h/p?access_token=t0k&x=1#frag"), attribute.StringValue("https://h/p?access_token=[REDACTED:param]&x=1#frag")},
		{"url without query kept", attribute.String("url.full", "https://h/p=1"), attribute.StringValue("https://h/p=1")},
		{"query param case", attribute.String("http.target", "/a?PassWord=x&monkey=y&k"), attribute.StringValue("/a?PassWord=[REDACTED:param]&monkey=[REDACTED:param]&k")},
		{"query on other key kept", attribute.String("msg", "password=hunter2"), attribute.StringValue("password=hunter2")},
		{"slice element", attribute.StringSlice("tags", []string{"ok", "a@b.io"}), attribute.StringSliceValue([]string{"ok", "[REDACTED:email]"})},
		{"untouched int", attribute.Int64("n", 4111111111111111), attribute.Int64Value(4111111111111111)},
		{"untouched bool slice", attribute.BoolSlice("b", []bool{true}), attribute.BoolSliceValue([]bool{true})},
		{"untouched text", attribute.String("msg", "GET /api/v1/items 200"), attribute.StringValue("GET /api/v1/items 200")},
		{"unicode around", attribute.String("m", "é a@b.io ü 4111 1111 1111 1111"), attribute.StringValue("é [REDACTED:email] ü [REDACTED:card]")},
		{"everything", attribute.String("m", "Bearer x.y a@b.io 4111-1111-1111-1111 / 078-05-1120 "+jwtSample), attribute.StringValue("Bearer [REDACTED:bearer] [REDACTED:email] [REDACTED:card] / [REDACTED:ssn] [REDACTED:jwt]")},
		{"card run takes the next group", attribute.String("m", "4111-1111-1111-1111 078-05-1120"), attribute.StringValue("[REDACTED:card]-05-1120")},
	}
	var attrs []attribute.KeyValue
	for _, tt := range tests {
		attrs = append(attrs, tt.kv)
	}
	forEachLanguage(t, "pii-redact", func(t *testing.T, path string) {
		got, _ := redactSpans(t, path, "", attrs, nil)
		for i, tt := range tests {
			if d := diff(got[i], []attribute.KeyValue{{Key: tt.kv.Key, Value: tt.wantValue}}); d != "" {
				t.Errorf("%s: %s", tt.name, d)
			}
		}
	})
}

func TestLanguages_PIIRedact_ConfigKeysPatternsAndEvents(t *testing.T) {
	config := `{"keys":["enduser.id","url.query"],"patterns":{"phone":"\\+1-\\d{3}-\\d{3}-\\d{4}","b_order":"(?i)order-[a-z0-9]{4,}"},"typed":false,"max_value_bytes":40}`
	attrs := []attribute.KeyValue{
		attribute.String("enduser.id", "u-42"),
		attribute.String("note", "call +1-555-123-4567 about ORDER-ab12cd"),
		attribute.String("url.query", "q=1"),
		attribute.String("long", "a@b.io then a very long value that goes past forty bytes é"),
		attribute.String("long2", "0123456789012345678901234567890123456é789"),
	}
	want := [][]attribute.KeyValue{
		{attribute.String("enduser.id", "[REDACTED]")},
		{attribute.String("note", "call [REDACTED] about [REDACTED]")},
		{attribute.String("url.query", "[REDACTED]")},
		{attribute.String("long", "[REDACTED] then a very long value that goes [TRUNCATED]")},
		{attribute.String("long2", "0123456789012345678901234567890123456é7[TRUNCATED]")},
	}
	event := []attribute.KeyValue{attribute.String("exception.message", "no user x@y.org"), attribute.String("enduser.id", "u-1"), attribute.Int("code", 3)}
	wantEvent := []attribute.KeyValue{attribute.String("exception.message", "no user [REDACTED]"), attribute.String("enduser.id", "[REDACTED]"), attribute.Int("code", 3)}
	forEachLanguage(t, "pii-redact", func(t *testing.T, path string) {
		got, gotEvent := redactSpans(t, path, config, attrs, event)
		if d := diff(got, want); d != "" {
			t.Errorf("attributes %s", d)
		}
		if d := diff(gotEvent, wantEvent); d != "" {
			t.Errorf("event %s", d)
		}
	})
}

func TestLanguages_PIIRedact_BadConfigRefused(t *testing.T) {
	const prefix = "plugins: pii: init: pii-redact: config: "
	for _, cfg := range []string{
		`{"patterns":{"x":"("}}`, `{"patterns":{"x":"a**"}}`, `{"patterns":{"x":"[z-a]"}}`, `{"patterns":{"x":"a{1001}"}}`,
		`{"patterns":{"x":"\\8"}}`, `{"nope":1}`, `[]`, `{"keys":[""]}`, `{"keys":"a"}`, `{"typed":"yes"}`,
		`{"max_value_bytes":-2}`, `{"max_value_bytes":1.5}`, `{"max_value_bytes":1e3}`, `{"patterns":{"x":1}}`, `{`,
	} {
		t.Run(cfg, func(t *testing.T) {
			forEachLanguage(t, "pii-redact", func(t *testing.T, path string) {
				h, err := Load(context.Background(), []Spec{{Name: "pii", Path: path, Config: json.RawMessage(cfg)}}, Options{Logger: testLogger(t), CacheDir: filepath.Join(wasmDir, "cache")})
				if err == nil {
					h.Close(context.Background())
					t.Fatalf("got no error; want %q...", prefix)
				}
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("got %q; want %q...", err, prefix)
				}
			})
		})
	}
}

// piiCorpus is text for the differential tests: each string goes through every language's
// pii-redact under several keys and configs, and must come out as from the Go module.
var piiCorpus = []string{
	"", "plain text", "a@b.io", "A.B-C_D%E+F@Sub-1.Example.COM", "x@y.z", "x@y.zz.", "x@-y.io", "x@y..io", "x@.io", "@@a@b.io@",
	"mail:a@b.io;c@d.io d@e.f", "é@ü.io ä@b.io", "4111111111111111", "4111 1111 1111 1111", "4111--1111-1111-1111",
	"4111 1111 1111 1111 1111 1111", "378282246310005", "1234567890123", "0000000000000", "4111111111111111x", "x4111111111111111",
	"12345678901234567890", "5105 1051 0510 5100-", "078-05-1120", "078-05-11201", "a078-05-1120", "000-12-3456", "123-00-4567",
	"123-45-0000", "123-45-6789-12-345-67-8901", "Bearer abc", "BEARER abc==", "bearer  a/b+c~d.e-f_g=== tail", "Bearer\n",
	"Bearer ==", "token Bearer, x", "eyJabcd.efgh.", "eyJabc.efgh.ijk", "xeyJabcd.efgh.ijkl", "eyJabcd.efgh.ijkl-_ x eyJaaaa.bbbb.",
	"https://u:p@h.io/p?secret=1&Token=2&apikey=3&monkey=4&keys=5&a=b#k=v", "/p?x=1&pwd=2", "a=1&b", "?password=&x", "no=query=here",
	"http://h/a?b=c", "&&password=1&&", "/p?PassWord=1&API_KEY=2&TOKENS=3&kee=4", "/p?api\u212Aey=1&\u212Aey2=2", "/p?\u0130token=1&\u017Fecret=2&pw\u0130d=3",
	"?ke=1&y=2&key", "/p?s\u00E9cret=1&secret\u00E9=2", "a@b.io 4111 1111 1111 1111 078-05-1120 Bearer x " + jwtSample,
	strings.Repeat("a@b.io ", 30), strings.Repeat("4111111111111111 ", 10), strings.Repeat("é", 50) + "a@b.io",
}

func TestLanguages_PIIRedact_SameAsGo(t *testing.T) {
	configs := []string{"", `{"typed":false}`, `{"max_value_bytes":24}`, `{"max_value_bytes":-1}`}
	keys := []string{"msg", "url.full", "url.query", "http.target"}
	var attrs []attribute.KeyValue
	for _, k := range keys {
		for _, s := range piiCorpus {
			attrs = append(attrs, attribute.String(k, s))
		}
		attrs = append(attrs, attribute.StringSlice(k, piiCorpus))
	}
	for _, cfg := range configs {
		t.Run(cfg, func(t *testing.T) {
			want, _ := redactSpans(t, languageModule(t, "pii-redact", "go"), cfg, attrs, nil)
			forEachLanguage(t, "pii-redact", func(t *testing.T, path string) {
				got, _ := redactSpans(t, path, cfg, attrs, nil)
				for i := range attrs {
					if d := diff(got[i], want[i]); d != "" {
						t.Errorf("%s=%q: %s", attrs[i].Key, attrs[i].Value.Emit(), d)
					}
				}
			})
		})
	}
}

// TestLanguages_PIIRedact_PatternsSameAsGo runs config patterns, compiled by Go's regexp in the
// Go module and by the Rust SDK's engine, on the corpus and compares the results.
func TestLanguages_PIIRedact_PatternsSameAsGo(t *testing.T) {
	patterns := []string{
		`\+1-\d{3}-\d{3}-\d{4}`, `(?i)bearer\s+\S+`, `\bkey\b`, `[0-9]{4}`, `a+?`, `a*`, `(?:ab|a)(?:c|bcd)`, `x|`, `^a`, `o$`, `(?m)^.`,
		`[^a-z@ ]+`, `(?i)[a-c]+`, `\d{2,3}?`, `[[:alpha:]]{3}`, `(a|ab)(c|bcd)(d*)`, `\B.\B`, `(?s).{3}`, `[\w.]+@`, `é+`, `(?i)É`,
		`(?U)a+`, `[^\x00-\x7f]`, `\x{e9}`, `a{0}b`, `(?i:A)b`, `[\]\-^]`, `\.\*\?`, `(\d)(\d)?`,
		`(?i)k`, `(?i)s+`, `[[:^digit:]]+`, `\W+`, `\S+\s`, `(a*)+b`, `(|a)+`, `(a|b)*?c`, `x*y*`, `^$`, `\A.`, `.\z`,
		`(?i)[^k]`, `[a-c-e]`, `\d+(?:\.\d+)?`, `[^\n]+$`, `(?-i:a)`, `a{2,}`, `(?:a{1,2}){2}`, `\bé`, `[é-ü]+`,
	}
	var attrs []attribute.KeyValue
	for _, s := range append(piiCorpus, "call +1-555-123-4567", "my key is key-key", "aaab abcd abcbcd", "abc\ndef", "ÉéE éa",
		"Kelvin \u212a k K ſ S s", "aab c bac", "1.5 2. .3 x12.34y", "line1\nline2\n", "aaaa", "x\x00y\ty") {
		attrs = append(attrs, attribute.String("m", s))
	}
	for _, p := range patterns {
		t.Run(p, func(t *testing.T) {
			b, _ := json.Marshal(map[string]any{"patterns": map[string]string{"p": p}})
			cfg := string(b)
			want, _ := redactSpans(t, languageModule(t, "pii-redact", "go"), cfg, attrs, nil)
			forEachLanguage(t, "pii-redact", func(t *testing.T, path string) {
				got, _ := redactSpans(t, path, cfg, attrs, nil)
				for i := range attrs {
					if d := diff(got[i], want[i]); d != "" {
						t.Errorf("%q: %s", attrs[i].Value.AsString(), d)
					}
				}
			})
		})
	}
}

func TestLanguages_CustomAttributes_Request(t *testing.T) {
	s, i, f, b := attribute.String, attribute.Int64, attribute.Float64, attribute.Bool
	ua := http.Header{"X-User-Agent-Class": {"mobile"}}
	tests := []struct {
		name   string
		config string
		header http.Header
		want   []attribute.KeyValue
	}{
		{"header and static", customConfig, ua, []attribute.KeyValue{s("app.client_class", "mobile"), s("deployment.environment", "prod")}},
		{"header absent", customConfig, http.Header{"X-Other": {"x"}}, []attribute.KeyValue{s("deployment.environment", "prod")}},
		{"header empty", customConfig, http.Header{"X-User-Agent-Class": {""}}, []attribute.KeyValue{s("deployment.environment", "prod")}},
		{"header repeated", customConfig, http.Header{"X-User-Agent-Class": {"a", "b", "c"}}, []attribute.KeyValue{s("app.client_class", "a, b, c"), s("deployment.environment", "prod")}},
		{"header repeated empty", customConfig, http.Header{"X-User-Agent-Class": {"", ""}}, []attribute.KeyValue{s("app.client_class", ", "), s("deployment.environment", "prod")}},
		{"header unicode", customConfig, http.Header{"X-User-Agent-Class": {"café ü"}}, []attribute.KeyValue{s("app.client_class", "café ü"), s("deployment.environment", "prod")}},
		{"config name any case", `{"headers":{"X-USER-agent-Class":"c"}}`, ua, []attribute.KeyValue{s("c", "mobile")}},
		{"names differing in case: both, byte order", `{"headers":{"x-user-agent-class":"lower","X-User-Agent-Class":"upper"}}`, ua,
			[]attribute.KeyValue{s("upper", "mobile"), s("lower", "mobile")}},
		{"headers in name order", `{"headers":{"x-b":"b","x-c":"c","x-a":"a"}}`, http.Header{"X-A": {"1"}, "X-B": {"2"}, "X-C": {"3"}},
			[]attribute.KeyValue{s("a", "1"), s("b", "2"), s("c", "3")}},
		{"two names, one key", `{"headers":{"x-a":"k","x-b":"k"}}`, http.Header{"X-A": {"1"}, "X-B": {"2"}}, []attribute.KeyValue{s("k", "1"), s("k", "2")}},
		{"header name with spaces", `{"headers":{" X-A ":"k"}}`, http.Header{"X-A": {"1"}}, nil},
		{"static key equal to a header's", `{"headers":{"x-a":"k"},"static":{"k":"s"}}`, http.Header{"X-A": {"1"}}, []attribute.KeyValue{s("k", "1"), s("k", "s")}},
		{"static types in key order", `{"static":{"s":"x","t":true,"f":false,"i":3,"n":-42,"z":-0,"fl":1.5,"e":1E2,"d":3.0,"nz":-0.0,"tiny":1e-400,"max":9223372036854775807,"min":-9223372036854775808,"big":9223372036854775808}}`, nil,
			[]attribute.KeyValue{f("big", 9223372036854775808), f("d", 3), f("e", 100), b("f", false), f("fl", 1.5), i("i", 3), i("max", math.MaxInt64), i("min", math.MinInt64), i("n", -42), f("nz", math.Copysign(0, -1)), s("s", "x"), b("t", true), f("tiny", 0), i("z", 0)}},
		{"static number out of range: empty", `{"static":{"a":1e999,"b":"1e999","c":-1E+400}}`, nil, []attribute.KeyValue{s("a", ""), s("b", "1e999"), s("c", "")}},
		{"static escapes and unicode", `{"static":{"k\u00e9y":"v\"w\n","\ud83d\ude00":"\ud800x"}}`, nil, []attribute.KeyValue{s("kéy", "v\"w\n"), s("\U0001F600", "\uFFFDx")}},
		{"empty config", "", ua, nil},
		{"null config", "null", ua, nil},
		{"empty object", "{}", ua, nil},
		{"null fields", `{"headers":null,"static":null}`, ua, nil},
		{"field names any case", `{"HEADERS":{"x-user-agent-class":"c"},"Static":{"a":1}}`, ua, []attribute.KeyValue{s("c", "mobile"), i("a", 1)}},
		{"field names folded (long s)", `{"headerſ":{"x-user-agent-class":"c"},"ſtatic":{"a":1}}`, ua, []attribute.KeyValue{s("c", "mobile"), i("a", 1)}},
		{"repeated fields merge", `{"headers":{"x-a":"a"},"Headers":{"x-b":"b"},"static":{"s":1},"static":{"t":2}}`, http.Header{"X-A": {"1"}, "X-B": {"2"}},
			[]attribute.KeyValue{s("a", "1"), s("b", "2"), i("s", 1), i("t", 2)}},
		{"repeated keys: last wins", `{"headers":{"x-a":"a","x-a":"b"},"static":{"s":null,"s":1}}`, http.Header{"X-A": {"1"}}, []attribute.KeyValue{s("b", "1"), i("s", 1)}},
		{"null after a field clears it", `{"headers":{"x-a":"a"},"headers":null,"static":{"s":1},"static":null,"static":{"t":2}}`, http.Header{"X-A": {"1"}}, []attribute.KeyValue{i("t", 2)}},
		{"trailing data ignored", `{"static":{"a":1}} {"static":{"b":2}} x`, nil, []attribute.KeyValue{i("a", 1)}},
	}
	run := func(t *testing.T, path, config string, header http.Header) requestResult {
		h := load(t, Options{Timeout: langTimeout()}, Spec{Name: "custom", Path: path, Config: json.RawMessage(config)})
		x := Exchange{Tenant: "t0"}
		r := &Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "https", Host: "shop", Path: "/cart", Header: header, TraceID: testTraceID}
		if err := h.OnRequest(context.Background(), r, &x); err != nil {
			t.Fatal(err)
		}
		res := requestResult{x.Tenant, x.Decision, append([]attribute.KeyValue(nil), x.Attributes...), append([]string(nil), x.Errors...)}
		x.Reset()
		return res
	}
	forEachLanguage(t, "custom-attributes", func(t *testing.T, path string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if d := diff(run(t, path, tt.config, tt.header), requestResult{"t0", NoOpinion, tt.want, nil}); d != "" {
					t.Errorf("%s", d)
				}
			})
		}
	})
}

func TestLanguages_CustomAttributes_ConfigRefused(t *testing.T) {
	const prefix = "plugins: custom: init: custom-attributes: config: "
	tests := []struct {
		config string
		want   string // the whole message after prefix
	}{
		{`{"headers":1}`, "json: cannot unmarshal number into Go struct field config.headers of type map[string]string"},
		{`{"headers":[]}`, "json: cannot unmarshal array into Go struct field config.headers of type map[string]string"},
		{`{"Headers":"x"}`, "json: cannot unmarshal string into Go struct field config.headers of type map[string]string"},
		{`{"headers":1e999}`, "json: cannot unmarshal number into Go struct field config.headers of type map[string]string"},
		{`{"headers":{"x":1}}`, "json: cannot unmarshal number into Go struct field config.headers of type string"},
		{`{"headers":{"x":true}}`, "json: cannot unmarshal bool into Go struct field config.headers of type string"},
		{`{"headers":{"x":{}}}`, "json: cannot unmarshal object into Go struct field config.headers of type string"},
		{`{"headers":{"x":[]}}`, "json: cannot unmarshal array into Go struct field config.headers of type string"},
		{`{"headers":{"x":1e999}}`, "json: cannot unmarshal number into Go struct field config.headers of type string"},
		{`{"headers":{"x":null}}`, `headers: empty header or key in "x": ""`},
		{`{"headers":{"":"k"}}`, `headers: empty header or key in "": "k"`},
		{`{"headers":{"x-a":""}}`, `headers: empty header or key in "x-a": ""`},
		{`{"headers":{"x\n\"\\\u0001\u00a0é":""}}`, `headers: empty header or key in "x\n\"\\\x01\u00a0é": ""`},
		{`{"static":{"a":[1]},"headers":{"":"k"}}`, `headers: empty header or key in "": "k"`},
		{`{"static":1}`, "json: cannot unmarshal number into Go struct field config.static of type map[string]interface {}"},
		{`{"STATIC":[]}`, "json: cannot unmarshal array into Go struct field config.static of type map[string]interface {}"},
		{`{"static":{"a":[1]}}`, "static.a: want a string, number or boolean"},
		{`{"static":{"a":1,"":"x"}}`, "static: empty key"},
		{`{"static":{"":[1],"b":{}}}`, "static: empty key"},
		{`{"static":{"a":null}}`, "static.a: want a string, number or boolean"},
		{`{"static":{"a.b":{}}}`, "static.a.b: want a string, number or boolean"},
		{`{"static":{"a":1,"a":[]}}`, "static.a: want a string, number or boolean"},
		{`{"other":1}`, `json: unknown field "other"`},
		{`{"Other":1,"headers":1}`, `json: unknown field "Other"`},
		{`{"headers":1,"other":1}`, "json: cannot unmarshal number into Go struct field config.headers of type map[string]string"},
		{`{"headers":{"x":1}} trailing`, "json: cannot unmarshal number into Go struct field config.headers of type string"},
		{`[]`, "json: cannot unmarshal array into Go value of type main.config"},
		{`1`, "json: cannot unmarshal number into Go value of type main.config"},
		{`1e999`, "json: cannot unmarshal number into Go value of type main.config"},
		{`"x"`, "json: cannot unmarshal string into Go value of type main.config"},
		{`true`, "json: cannot unmarshal bool into Go value of type main.config"},
		{` `, "EOF"},
		{`{`, "unexpected EOF"},
		{`{"static":{"a":1}`, "unexpected EOF"},
		{`{"static":{"a":1},`, "unexpected EOF"},
		{`{"static":{"a":nul`, "unexpected EOF"},
		{`["\u00`, "unexpected EOF"},
		{`-`, "unexpected EOF"},
		{`x`, "invalid character 'x' looking for beginning of value"},
		{`}`, "invalid character '}' looking for beginning of value"},
		{`{"a" 1}`, "invalid character '1' after object key"},
		{`{"headers":{"x":"y",}}`, "invalid character '}' looking for beginning of object key string"},
		{`{'a':1}`, `invalid character '\'' looking for beginning of object key string`},
		{`{1e999:1}`, "invalid character '1' looking for beginning of object key string"},
		{`{"static":{"a":01}}`, "invalid character '1' after object key:value pair"},
		{`{"static":{"a":1 "b":2}}`, "invalid character '\"' after object key:value pair"},
		{`{"static":{"a":-}}`, "invalid character '}' in numeric literal"},
		{`{"static":{"a":1.}}`, "invalid character '}' after decimal point in numeric literal"},
		{`{"static":{"a":1e+}}`, "invalid character '}' in exponent of numeric literal"},
		{`{"static":{"a":.5}}`, "invalid character '.' looking for beginning of value"},
		{`{"static":{"a":tru}}`, "invalid character '}' in literal true (expecting 'e')"},
		{`{"static":{"a":fals}}`, "invalid character '}' in literal false (expecting 'e')"},
		{`{"static":{"a":nUll}}`, "invalid character 'U' in literal null (expecting 'u')"},
		{`{"static":{"a":"\x"}}`, "invalid character 'x' in string escape code"},
		{`{"static":{"a":"\u12g4"}}`, "invalid character 'g' in \\u hexadecimal character escape"},
		{"{\"static\":{\"a\":\"\t\"}}", `invalid character '\t' in string literal`},
		{"{\"static\":{\"a\":\"\x01\"}}", `invalid character '\x01' in string literal`},
		{`{"static":{"a":[1,]}}`, "invalid character ']' looking for beginning of value"},
		{`{"static":{"a":[1 2]}}`, "invalid character '2' after array element"},
		{`{"static":{"a":é}}`, "invalid character 'Ã' looking for beginning of value"},
		{`{"static":{"a":+1}}`, "invalid character '+' looking for beginning of value"},
	}
	forEachLanguage(t, "custom-attributes", func(t *testing.T, path string) {
		for _, tt := range tests {
			t.Run(tt.config, func(t *testing.T) {
				h, err := Load(context.Background(), []Spec{{Name: "custom", Path: path, Config: json.RawMessage(tt.config)}}, Options{Logger: testLogger(t), CacheDir: filepath.Join(wasmDir, "cache")})
				if err == nil {
					h.Close(context.Background())
					t.Fatalf("got no error; want %q", prefix+tt.want)
				}
				msg := err.Error()
				if msg != prefix+tt.want {
					t.Errorf("got %q; want %q", msg, prefix+tt.want)
				}
			})
		}
	})
}

// TestLanguages_SDKReadmePlugins runs the plugin each SDK's README shows (wasm-sdk/LANG/example/)
// through the host: all three hooks, and span views carrying every value type.
func TestLanguages_SDKReadmePlugins(t *testing.T) {
	allTypes := []attribute.KeyValue{
		attribute.String("s", "x"), attribute.Bool("b", true), attribute.Int64("i", -7), attribute.Float64("f", 1.5),
		attribute.StringSlice("ss", []string{"a", "", "é"}), attribute.BoolSlice("bs", []bool{true, false}),
		attribute.Int64Slice("is", []int64{1, -2}), attribute.Float64Slice("fs", []float64{0.5}),
	}
	for _, lang := range []string{"rust", "c", "assemblyscript"} {
		t.Run(lang, func(t *testing.T) {
			languageModule(t, "", lang) // builds everything once
			path := filepath.Join(wasmDir, "languages", "readme-"+lang+".wasm")
			h := load(t, Options{Timeout: langTimeout()}, Spec{Name: "readme", Path: path, Failure: FailClosed})
			for _, tc := range []struct {
				header http.Header
				want   requestResult
			}{
				{http.Header{"X-Tenant-Id": {"acme"}}, requestResult{"acme", NoOpinion, []attribute.KeyValue{attribute.String("tenant.id", "acme")}, nil}},
				{http.Header{"X-Tenant-Id": {"a", "b"}}, requestResult{"a, b", NoOpinion, []attribute.KeyValue{attribute.String("tenant.id", "a, b")}, nil}},
				{http.Header{}, requestResult{"", NoOpinion, nil, nil}},
			} {
				var x Exchange
				r := &Request{Kind: trace.SpanKindServer, Method: "GET", Header: tc.header, TraceID: testTraceID}
				if err := h.OnRequest(context.Background(), r, &x); err != nil {
					t.Fatal(err)
				}
				if d := diff(requestResult{x.Tenant, x.Decision, x.Attributes, x.Errors}, tc.want); d != "" {
					t.Errorf("request %v: %s", tc.header, d)
				}
				if err := h.OnResponse(context.Background(), &Response{Status: 503}, &x); err != nil || !x.Keep {
					t.Errorf("response 503: err %v, keep %v; want keep", err, x.Keep)
				}
			}
			spans := finishedSpans(t,
				span("a", append([]attribute.KeyValue{attribute.String("enduser.email", "a@b.io")}, allTypes...),
					sdktrace.Event{Name: "e", Attributes: allTypes}),
				span("b", allTypes))
			out := h.ProcessSpans(context.Background(), spans)
			if len(out) != 2 {
				t.Fatalf("got %d spans; want 2", len(out))
			}
			if d := diff(out[0].Attributes(), append([]attribute.KeyValue{attribute.String("enduser.email", "[REDACTED]")}, allTypes...)); d != "" {
				t.Errorf("span a %s", d)
			}
			if d := diff(out[1].Attributes(), allTypes); d != "" {
				t.Errorf("span b %s", d)
			}
			if st := h.Stats().Plugin("readme"); st.Failures != 0 {
				t.Errorf("%d failures", st.Failures)
			}
		})
	}
}

// TestLanguages_LargeViews sends views larger than the first input buffer (4096 bytes), so that
// the host asks each module for a bigger one.
func TestLanguages_LargeViews(t *testing.T) {
	big := strings.Repeat("t", 70000)
	forEachLanguage(t, "tenant-sampler", func(t *testing.T, path string) {
		h := load(t, Options{Timeout: langTimeout()}, Spec{Name: "tenant", Path: path, Config: json.RawMessage(samplerConfig)})
		for _, n := range []int{10, 5000, 70000, 100} {
			var x Exchange
			r := &Request{Kind: trace.SpanKindServer, Header: http.Header{"X-Tenant-Id": {big[:n]}}, TraceID: traceIDWithRandomness(0)}
			if err := h.OnRequest(context.Background(), r, &x); err != nil {
				t.Fatal(err)
			}
			want := requestResult{big[:n], RecordOnly, []attribute.KeyValue{attribute.String("tenant.id", big[:n])}, nil}
			if d := diff(requestResult{x.Tenant, x.Decision, x.Attributes, x.Errors}, want); d != "" {
				t.Errorf("tenant of %d bytes: %.300s", n, d)
			}
			x.Reset()
		}
	})
	value := strings.Repeat("x a@b.io 4111 1111 1111 1111 ", 3000) // 90 KB
	attrs := []attribute.KeyValue{attribute.String("m", value), attribute.String("m", value[:20000])}
	for _, cfg := range []string{"", `{"max_value_bytes":-1}`} {
		want, _ := redactSpans(t, languageModule(t, "pii-redact", "go"), cfg, attrs, nil)
		forEachLanguage(t, "pii-redact", func(t *testing.T, path string) {
			got, _ := redactSpans(t, path, cfg, attrs, nil)
			if d := diff(got, want); d != "" {
				t.Errorf("config %q: %.500s", cfg, d)
			}
		})
	}
}

// TestLanguages_MixedChain runs a chain of plugins in different languages and checks it does what
// the chain of Go plugins does.
func TestLanguages_MixedChain(t *testing.T) {
	run := func(t *testing.T, tenant, pii string) (Exchange, [][]attribute.KeyValue) {
		h := load(t, Options{Timeout: langTimeout()},
			Spec{Name: "tenant", Path: tenant, Config: json.RawMessage(samplerConfig)},
			Spec{Name: "pii", Path: pii, Failure: FailClosed})
		var x Exchange
		r := &Request{Kind: trace.SpanKindServer, Method: "GET", Path: "/login", Header: http.Header{"X-Tenant-Id": {"half"}}, TraceID: testTraceID}
		if err := h.OnRequest(context.Background(), r, &x); err != nil {
			t.Fatal(err)
		}
		if err := h.OnResponse(context.Background(), &Response{Status: 502}, &x); err != nil {
			t.Fatal(err)
		}
		x.release()
		spans := h.ProcessSpans(context.Background(), finishedSpans(t, span("GET /login", []attribute.KeyValue{
			attribute.String("url.full", "https://shop/login?user=al&password=hunter2"),
			attribute.String("enduser.email", "alice@example.com"),
		})))
		var attrs [][]attribute.KeyValue
		for _, s := range spans {
			attrs = append(attrs, s.Attributes())
		}
		x.chain = nil
		return x, attrs
	}
	wantX, wantSpans := run(t, languageModule(t, "tenant-sampler", "go"), languageModule(t, "pii-redact", "go"))
	for _, lang := range []string{"rust", "c", "assemblyscript"} {
		t.Run("tenant-sampler in "+lang+", pii-redact in rust", func(t *testing.T) {
			gotX, gotSpans := run(t, languageModule(t, "tenant-sampler", lang), languageModule(t, "pii-redact", "rust"))
			if d := diff(gotX, wantX); d != "" {
				t.Errorf("exchange %s", d)
			}
			if d := diff(gotSpans, wantSpans); d != "" {
				t.Errorf("spans %s", d)
			}
		})
	}
}
