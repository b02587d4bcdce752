package instrument_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/plugins"
	"github.com/sidetrace/sidetrace/plugins/internal/instrument"
)

// dir holds the test modules: plugins/testdata/*.wat and the WAT sources
// below, built in TestMain, and the Go examples, built on first use.
var dir string

// Test-only modules: runaways of each kind, with the ABI's memory export.
var watSources = map[string]string{
	// loop: an infinite loop in a function called through another.
	"loop": `(module (memory (export "memory") 1)
	  (func $spin (loop $l (br $l)))
	  (func (export "run") (call $spin)))`,
	// recursion: f(n) calls f(n-1) twice, no loop: 2^n calls within a
	// stack depth of n, so the stack limit does not stop it.
	"recursion": `(module (memory (export "memory") 1)
	  (func $f (param i32)
	    (if (i32.eqz (local.get 0)) (then return))
	    (call $f (i32.sub (local.get 0) (i32.const 1)))
	    (call $f (i32.sub (local.get 0) (i32.const 1))))
	  (func (export "run") (call $f (i32.const 60))))`,
	// counted: a loop that ends, with a multi-value block type, a loop with
	// parameters and a result, to check the inserted code keeps the stack.
	"counted": `(module (memory (export "memory") 1)
	  (type $t (func (param i32) (result i32)))
	  (func (export "run") (param $n i32) (result i32)
	    (local.get $n)
	    (loop $l (type $t) (param i32) (result i32)
	      (i32.sub (i32.const 1))
	      (local.tee $n)
	      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
	    (i32.add (i32.const 100))))`,
}

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "sidetrace-instrument-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir = d
	code := func() int {
		if err := buildWAT(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			return 1
		}
		return m.Run()
	}()
	os.RemoveAll(d)
	os.Exit(code)
}

func buildWAT() error {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		return fmt.Errorf("wat2wasm not found: install the Debian package wabt: %v", err)
	}
	srcs, _ := filepath.Glob("../../testdata/*.wat")
	for name, src := range watSources {
		p := filepath.Join(dir, name+".wat")
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			return err
		}
		srcs = append(srcs, p)
	}
	for _, src := range srcs {
		out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(src), ".wat")+".wasm")
		if b, err := exec.Command("wat2wasm", src, "-o", out).CombinedOutput(); err != nil {
			return fmt.Errorf("wat2wasm %s: %v\n%s", src, err, b)
		}
	}
	return nil
}

func wat(name string) string { return filepath.Join(dir, name+".wasm") }

var exampleNames = []string{"pii-redact", "tenant-sampler", "custom-attributes"}

var (
	examplesOnce sync.Once
	examplesErr  error
)

func example(t testing.TB, name string) string {
	t.Helper()
	examplesOnce.Do(func() {
		var wg sync.WaitGroup
		errs := make([]error, len(exampleNames))
		for i, n := range exampleNames {
			wg.Go(func() {
				cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", filepath.Join(dir, n+".wasm"), "./"+n)
				cmd.Dir = filepath.Join("..", "..", "..", "examples", "plugins")
				cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
				if b, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("building example %s: %v\n%s", n, err, b)
				}
			})
		}
		wg.Wait()
		examplesErr = errors.Join(errs...)
	})
	if examplesErr != nil {
		t.Fatal(examplesErr)
	}
	return filepath.Join(dir, name+".wasm")
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// instrumented writes path instrumented beside it and returns its path.
func instrumented(t testing.TB, path string) string {
	t.Helper()
	out, err := instrument.Module(read(t, path))
	if err != nil {
		t.Fatalf("Module(%s): %v", filepath.Base(path), err)
	}
	p := strings.TrimSuffix(path, ".wasm") + ".instrumented.wasm"
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func diff(got, want any) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	return fmt.Sprintf("\ngot  %+v\nwant %+v", got, want)
}

func TestModule_ModulesCompileAndExportStop(t *testing.T) {
	paths := []string{wat("hello"), wat("faulty"), wat("abi_v2"), wat("loop"), wat("recursion"), wat("counted")}
	for _, n := range exampleNames {
		paths = append(paths, example(t, n))
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			out, err := instrument.Module(read(t, p))
			if err != nil {
				t.Fatal(err)
			}
			cm, err := rt.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("CompileModule: %v", err)
			}
			cm.Close(ctx)
			if !bytes.Contains(out, []byte(instrument.StopExport)) {
				t.Errorf("no export %s", instrument.StopExport)
			}
		})
	}
}

// run instantiates bin (without wazero's termination checks) and calls
// "run"; stopAfter > 0 sets the stop flag that long after the call starts.
func run(t *testing.T, bin []byte, stopAfter time.Duration, params ...uint64) ([]uint64, error) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	if stopAfter > 0 {
		stop := mod.ExportedGlobal(instrument.StopExport).(api.MutableGlobal)
		tm := time.AfterFunc(stopAfter, func() { stop.Set(1) })
		defer tm.Stop()
	}
	return mod.ExportedFunction("run").Call(ctx, params...)
}

func TestModule_RunawaysStop(t *testing.T) {
	for _, name := range []string{"loop", "recursion"} {
		t.Run(name, func(t *testing.T) {
			bin, err := instrument.Module(read(t, wat(name)))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = run(t, bin, 5*time.Millisecond)
			if err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("got error %v; want an unreachable trap", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("stopped after %v; want about 5ms", d)
			}
		})
	}
}

func TestModule_CountedLoopUnchanged(t *testing.T) {
	orig := read(t, wat("counted"))
	inst, err := instrument.Module(orig)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{1, 5, 3 * instrument.Budget} { // the last one yields twice
		want, err := run(t, orig, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := run(t, inst, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(got, want); d != "" {
			t.Errorf("run(%d): %s", n, d)
		}
	}
}

// TestModule_LoopDuringGC_Stops: native wasm code cannot be preempted, so a
// garbage collection's stop-the-world waits for a looping guest, and the
// goroutine that would set the stop flag is stopped too. Without $yield's
// exits to Go, each 5 ms run below took 0.7 to 2.9 s, and so did the
// collections.
func TestModule_LoopDuringGC_Stops(t *testing.T) {
	bin, err := instrument.Module(read(t, wat("loop")))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); <-done }()
	for range 5 {
		start := time.Now()
		if _, err := run(t, bin, 5*time.Millisecond); err == nil {
			t.Fatal("no trap")
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("a 5ms run during garbage collections took %v", d)
		}
	}
}

func TestModule_Refuses(t *testing.T) {
	mod := func(code ...byte) []byte {
		// (module (memory 1) (func)) with the given function body.
		b := []byte("\x00asm\x01\x00\x00\x00")
		b = append(b, 1, 4, 1, 0x60, 0, 0) // type: func () -> ()
		b = append(b, 3, 2, 1, 0)          // function: type 0
		b = append(b, 5, 3, 1, 0, 1)       // memory: min 1
		body := append([]byte{0}, code...)
		b = append(b, 10, byte(len(body)+2), 1, byte(len(body)))
		return append(b, body...)
	}
	for _, tt := range []struct {
		name string
		bin  []byte
		want string
	}{
		{"not wasm", []byte("hello"), "not a WebAssembly binary"},
		{"unknown opcode", mod(0xd3, 0x0b), "unknown opcode 0xd3"},
		{"unknown 0xfc opcode", mod(0xfc, 0x20, 0x0b), "unknown opcode 0xfc 32"},
		{"truncated", mod(0x41), "unexpected end"},
		{"already stoppable", func() []byte {
			b := mod(0x0b)
			i := len(b) - 6 // before the code section
			exp := append([]byte{7, byte(len(instrument.StopExport) + 4), 1, byte(len(instrument.StopExport))}, instrument.StopExport...)
			exp = append(exp, 2, 0) // memory 0
			return append(append(append([]byte{}, b[:i]...), exp...), b[i:]...)
		}(), "already exports"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := instrument.Module(tt.bin)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v; want one containing %q", err, tt.want)
			}
		})
	}
	// The last one is a valid module: wazero runs it.
	if _, err := wazero.NewRuntime(context.Background()).CompileModule(context.Background(), mod(0x0b)); err != nil {
		t.Errorf("test module: %v", err)
	}
}

// TestModule_Differential runs the same cases on each module as is and
// instrumented, both through the plugin host without its own checks
// (NoInterrupt), and compares what the chain did.
func TestModule_Differential(t *testing.T) {
	sampler := `{"header":"x-tenant-id","default":0.1,"tenants":{"acme":1.0,"free":0.0,"half":0.5}}`
	custom := `{"headers":{"x-user-agent-class":"app.client_class"},"static":{"deployment.environment":"prod"}}`
	specs := []plugins.Spec{
		{Name: "hello", Path: wat("hello")},
		{Name: "tenant", Path: example(t, "tenant-sampler"), Config: json.RawMessage(sampler)},
		{Name: "custom", Path: example(t, "custom-attributes"), Config: json.RawMessage(custom)},
		{Name: "pii", Path: example(t, "pii-redact")},
	}
	for _, mode := range []string{"0", "2", "3", "4", "5", "6", "7", "9"} {
		specs = append(specs, plugins.Spec{Name: "faulty-" + mode, Path: wat("faulty"), Config: json.RawMessage(mode)})
	}
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			want := exercise(t, s)
			s.Path = instrumented(t, s.Path)
			got := exercise(t, s)
			if d := diff(got, want); d != "" {
				t.Error(d)
			}
		})
	}
}

// exercise runs requests, responses and spans through one plugin and
// returns everything observable.
func exercise(t *testing.T, s plugins.Spec) []string {
	ctx := context.Background()
	h, err := plugins.Load(ctx, []plugins.Spec{s}, plugins.Options{NoInterrupt: true, Timeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	var out []string
	for i, tenant := range []string{"acme", "free", "half", "unknown", ""} {
		var x plugins.Exchange
		r := &plugins.Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "https", Host: "shop", Path: "/cart/" + tenant,
			Query: "password=x&id=1", Header: http.Header{"X-Tenant-Id": {tenant}, "X-User-Agent-Class": {"mobile"}, "X-Request-Id": {"r1"}},
			TraceID: trace.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, byte(i * 37)}}
		err := h.OnRequest(ctx, r, &x)
		out = append(out, fmt.Sprintf("request %d: %v %+v %q %v %q", i, err, x.Attributes, x.Tenant, x.Decision, x.Errors))
		err = h.OnResponse(ctx, &plugins.Response{Status: 200 + 100*i, Header: http.Header{"Content-Type": {"text/plain"}}}, &x)
		out = append(out, fmt.Sprintf("response %d: %v %+v %v %q", i, err, x.Attributes, x.Keep, x.Errors))
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	for _, attrs := range [][]attribute.KeyValue{
		{attribute.String("url.full", "https://shop/cart?password=hunter2&id=1"), attribute.String("user.email", "bob@example.org")},
		{attribute.String("wat.delete_me", "x"), attribute.String("card", "4111 1111 1111 1111"), attribute.Int("n", 3)},
		{attribute.String("note", strings.Repeat("lorem ipsum ", 500)+"mail alice@example.com")},
	} {
		_, sp := tp.Tracer("test").Start(ctx, "span", trace.WithAttributes(attrs...))
		sp.AddEvent("log", trace.WithAttributes(attribute.String("message", "login by carol@example.net")))
		sp.End()
	}
	for i, sp := range h.ProcessSpans(ctx, rec.Ended()) {
		out = append(out, fmt.Sprintf("span %d: %+v %+v", i, sp.Attributes(), sp.Events()[0].Attributes))
	}
	st := h.Stats().Plugin(s.Name)
	out = append(out, fmt.Sprintf("stats: calls %d traps %d timeouts %d malformed %d reported %d",
		st.Calls, st.Traps, st.Timeouts, st.Malformed, st.Reported))
	return out
}

// FuzzInstrument: no input makes Module panic, and when the input is a
// module wazero compiles, so is the output. (Module does not validate: from
// an invalid input it may produce an invalid output, which the host, that
// compiles the original on failure, reports as the original's error.)
func FuzzInstrument(f *testing.F) {
	for _, p := range []string{"hello", "faulty", "abi_v2", "loop", "recursion", "counted", "bad_signature", "missing_export"} {
		f.Add(read(f, wat(p)))
	}
	// The Go examples (4 MB each) are seeds of the plain test run only: in
	// fuzzing mode, compiling one with coverage on exceeds the 10 s a
	// fuzzing input may take.
	if fl := flag.Lookup("test.fuzz"); fl == nil || fl.Value.String() == "" {
		for _, n := range exampleNames {
			f.Add(read(f, example(f, n)))
		}
	}
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "cache")) // shared with TestModule_Differential
	if err != nil {
		f.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, err := instrument.Module(bin)
		if err != nil {
			return
		}
		cm, err := rt.CompileModule(ctx, bin)
		if err != nil {
			return
		}
		cm.Close(ctx)
		cm, err = rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("input compiles, instrumented output does not: %v", err)
		}
		cm.Close(ctx)
	})
}

// BenchmarkModule measures the rewrite of a Go example (about 4 MB) at load.
func BenchmarkModule(b *testing.B) {
	bin := read(b, example(b, "pii-redact"))
	b.SetBytes(int64(len(bin)))
	for b.Loop() {
		if _, err := instrument.Module(bin); err != nil {
			b.Fatal(err)
		}
	}
}
