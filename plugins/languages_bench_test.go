package plugins

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/plugins/internal/abi"
)

// BenchmarkLanguages measures each example plugin in each language (the figures table in
// wasm-sdk/README.md):
//
//	go test -run '^$' -bench Languages -benchmem ./plugins/
//
// For each module, "instantiate" is the time to make a ready instance as the pool does it
// (InstantiateModule with the host's module config, _initialize if exported, sidetrace_alloc and
// sidetrace_init with the config) and reports the module's size (module-bytes) and the linear
// memory of an instance after init (memory-bytes); "request" and "span-end" are one hook call
// through the Host (tenant-sampler: X-Tenant-Id: acme; custom-attributes: customConfig and
// X-User-Agent-Class: mobile, two attributes). Each runs with the default options (wazero's
// termination checks on, so a runaway guest can be interrupted) and "-trusted" (Spec.Trusted:
// without them).
func BenchmarkLanguages(b *testing.B) {
	configs := map[string]string{"tenant-sampler": samplerConfig, "pii-redact": "", "custom-attributes": customConfig}
	for _, name := range []string{"tenant-sampler", "pii-redact", "custom-attributes"} {
		for _, lang := range exampleLanguages[name] {
			path := languageModule(b, name, lang)
			for _, trusted := range []bool{false, true} {
				suffix := ""
				if trusted {
					suffix = "-trusted"
				}
				b.Run(name+"/"+lang+"/instantiate"+suffix, func(b *testing.B) { benchInstantiate(b, path, configs[name], !trusted) })
				switch name {
				case "tenant-sampler":
					b.Run(name+"/"+lang+"/request"+suffix, func(b *testing.B) {
						benchRequest(b, path, configs[name], trusted, http.Header{"X-Tenant-Id": {"acme"}}, RecordAndSample, 1)
					})
				case "custom-attributes":
					b.Run(name+"/"+lang+"/request"+suffix, func(b *testing.B) {
						benchRequest(b, path, configs[name], trusted, http.Header{"X-User-Agent-Class": {"mobile"}}, NoOpinion, 2)
					})
				case "pii-redact":
					b.Run(name+"/"+lang+"/span-end"+suffix, func(b *testing.B) { benchSpanEnd(b, path, configs[name], trusted) })
				}
			}
		}
	}
}

func benchInstantiate(b *testing.B, path, config string, interruptible bool) {
	ctx := context.Background()
	bin, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	h := &Host{opts: Options{}.withDefaults()}
	rt, err := h.newRuntime(ctx, interruptible)
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		b.Fatal(err)
	}
	// As generation.instantiate.
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().WithRandSource(rand.Reader).
		WithSysWalltime().WithSysNanotime().WithStdout(io.Discard).WithStderr(io.Discard)
	ready := func() api.Module {
		mod, err := rt.InstantiateModule(ctx, cm, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if f := mod.ExportedFunction(abi.ExportInitialize); f != nil {
			if _, err := f.Call(ctx); err != nil {
				b.Fatal(err)
			}
		}
		res, err := mod.ExportedFunction(abi.ExportAlloc).Call(ctx, abi.InitialBuffer)
		if err != nil || res[0] == 0 {
			b.Fatalf("sidetrace_alloc: %v", err)
		}
		mod.Memory().Write(uint32(res[0]), []byte(config))
		if _, err := mod.ExportedFunction(abi.ExportInit).Call(ctx, uint64(len(config))); err != nil {
			b.Fatal(err)
		}
		return mod
	}
	first := ready()
	memBytes := first.Memory().Size()
	first.Close(ctx)
	b.ReportAllocs()
	for b.Loop() {
		ready().Close(ctx)
	}
	b.ReportMetric(float64(len(bin)), "module-bytes")
	b.ReportMetric(float64(memBytes), "memory-bytes")
}

// benchRequest runs the request hook of the plugin at path on a request with header, and checks
// its decision and the number of attributes it sets.
func benchRequest(b *testing.B, path, config string, trusted bool, header http.Header, want Decision, attrs int) {
	h := load(b, Options{Timeout: langTimeout()}, Spec{Name: "plugin", Path: path, Config: json.RawMessage(config), Trusted: trusted})
	r := &Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "https", Host: "shop", Path: "/cart", Query: "id=1",
		Header: header, TraceID: testTraceID, PeerAddr: "10.0.0.1:5555"}
	var x Exchange
	b.ReportAllocs()
	for b.Loop() {
		x.Reset()
		if err := h.OnRequest(context.Background(), r, &x); err != nil || x.Decision != want || len(x.Attributes) != attrs || len(x.Errors) > 0 {
			b.Fatalf("OnRequest: %v, decision %v, %d attributes, errors %q", err, x.Decision, len(x.Attributes), x.Errors)
		}
	}
	x.Reset()
}

func benchSpanEnd(b *testing.B, path, config string, trusted bool) {
	h := load(b, Options{Timeout: langTimeout()}, Spec{Name: "pii", Path: path, Config: json.RawMessage(config), Failure: FailClosed, Trusted: trusted})
	spans := benchSpans(b)
	b.ReportAllocs()
	for b.Loop() {
		if out := h.ProcessSpans(context.Background(), spans); len(out) != 1 {
			b.Fatal("span dropped")
		}
	}
}
