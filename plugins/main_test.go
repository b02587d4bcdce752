package plugins

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// wasmDir holds the test plugins built once per test binary: the WAT ones in
// TestMain, the Go examples on first use.
var wasmDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sidetrace-plugins-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wasmDir = dir
	code := func() int {
		if err := buildWAT(dir); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			return 1
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildWAT compiles testdata/*.wat with wat2wasm.
func buildWAT(dir string) error {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		return fmt.Errorf("wat2wasm not found: install the Debian package wabt (apt-get install -y wabt): %v", err)
	}
	srcs, _ := filepath.Glob("testdata/*.wat")
	for _, src := range srcs {
		out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(src), ".wat")+".wasm")
		if b, err := exec.Command("wat2wasm", src, "-o", out).CombinedOutput(); err != nil {
			return fmt.Errorf("wat2wasm %s: %v\n%s", src, err, b)
		}
	}
	return nil
}

// wat returns the path of testdata/NAME.wat compiled.
func wat(name string) string { return filepath.Join(wasmDir, name+".wasm") }

var (
	examplesOnce sync.Once
	examplesErr  error
)

// example returns the path of examples/plugins/NAME built for wasip1, building
// the three examples on first use.
func example(t testing.TB, name string) string {
	t.Helper()
	examplesOnce.Do(func() {
		var wg sync.WaitGroup
		errs := make([]error, len(exampleNames))
		for i, n := range exampleNames {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = buildExample(n, filepath.Join(wasmDir, n+".wasm"))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				examplesErr = err
				return
			}
		}
	})
	if examplesErr != nil {
		t.Fatal(examplesErr)
	}
	return filepath.Join(wasmDir, name+".wasm")
}

var exampleNames = []string{"pii-redact", "tenant-sampler", "custom-attributes"}

func buildExample(name, out string) error {
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./"+name) // as build-examples.sh: same bytes, one compilation
	cmd.Dir = filepath.Join("..", "examples", "plugins")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building example %s (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared): %v\n%s", name, err, b)
	}
	return nil
}

// goTimeout is the call deadline for tests of Go plugins: a Go guest may run
// its garbage collector inside a call, and the race detector slows the host.
func goTimeout() time.Duration {
	if raceEnabled {
		return time.Second
	}
	return 100 * time.Millisecond
}

// testLogger discards logs unless -v.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(&tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tlogWriter struct{ t testing.TB }

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// load is Load for tests: the host is closed when the test ends, and the
// test fails if goroutines leaked.
func load(t testing.TB, opts Options, specs ...Spec) *Host {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Timeout == 0 {
		opts.Timeout = goTimeout() // tests share a loaded machine; deadline tests set their own
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(wasmDir, "cache") // compile each Go plugin once per test binary
	}
	before := runtime.NumGoroutine()
	h, err := Load(context.Background(), specs, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkGoroutines(t, before)
	})
	return h
}

func checkGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
