package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// The deadline is enforced by checks the host inserts (package
// internal/instrument); these tests cover the host's side: the stop flag, the
// fallback to wazero's checks and the guest's sleep.

func TestDeadline_InstrumentedLoop_StoppedByTheFlag(t *testing.T) {
	const timeout = 5 * time.Millisecond
	h := load(t, Options{Timeout: timeout, PoolSize: 1}, faultySpec(modeLoop, FailOpen))
	if g := h.cur.Load().gens[0]; g.rt != h.fast || !g.stoppable {
		t.Fatal("faulty.wat not instrumented")
	}
	for range 3 {
		var x Exchange
		start := time.Now()
		if err := h.OnRequest(context.Background(), &Request{Kind: trace.SpanKindServer, Method: "GET"}, &x); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > timeout+500*time.Millisecond {
			t.Errorf("OnRequest took %v; want about %v", d, timeout)
		}
		if want := "faulty: timeout after 5ms"; len(x.Errors) != 1 || x.Errors[0] != want {
			t.Errorf("Errors: got %q; want [%q]", x.Errors, want)
		}
		x.Reset()
	}
	// Each call ran on a fresh instance (its flag at 0), or it would have
	// trapped at once and still been counted a trap, not a timeout.
	if st := h.Stats().Plugin("faulty"); st.Timeouts != 3 || st.Traps != 0 {
		t.Errorf("Stats: got %d timeouts, %d traps; want 3, 0", st.Timeouts, st.Traps)
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDeadline_ModuleInstrumentRefuses_FallsBackToWazeroChecks(t *testing.T) {
	// faulty.wat exporting the stop global's reserved name: instrument
	// refuses it, wazero runs it.
	src, err := os.ReadFile("testdata/faulty.wat")
	if err != nil {
		t.Fatal(err)
	}
	mod := strings.Replace(string(src), "(module\n", "(module\n  (global (export \"__sidetrace_stop\") (mut i32) (i32.const 0))\n", 1)
	watPath := filepath.Join(t.TempDir(), "taken.wat")
	wasmPath := strings.TrimSuffix(watPath, ".wat") + ".wasm"
	if err := os.WriteFile(watPath, []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("wat2wasm", watPath, "-o", wasmPath).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	var logs syncBuffer
	h := load(t, Options{Timeout: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		Spec{Name: "taken", Path: wasmPath, Config: json.RawMessage("1")})
	if g := h.cur.Load().gens[0]; g.rt != h.rt || g.stoppable {
		t.Fatal("module not in the runtime with wazero's checks")
	}
	if want := "already exports __sidetrace_stop"; !strings.Contains(logs.String(), want) {
		t.Errorf("log: got %q; want a line containing %q", logs.String(), want)
	}
	var x Exchange
	if err := h.OnRequest(context.Background(), &Request{Method: "GET"}, &x); err != nil {
		t.Fatal(err)
	}
	if want := "taken: timeout after 20ms"; len(x.Errors) != 1 || x.Errors[0] != want {
		t.Errorf("Errors: got %q; want [%q]", x.Errors, want)
	}
	x.Reset()
}

func TestDeadline_NoInterrupt_NotInstrumented(t *testing.T) {
	h := load(t, Options{NoInterrupt: true}, Spec{Name: "hello", Path: wat("hello")})
	if g := h.cur.Load().gens[0]; h.fast != nil || g.rt != h.rt || g.stoppable {
		t.Fatal("NoInterrupt: module instrumented, or a second runtime made")
	}
}

func TestDeadline_SleepCutAtTheDeadline(t *testing.T) {
	in := &instance{}
	start := time.Now()
	in.deadline.Store(monotime() + int64(10*time.Millisecond))
	in.sleep(int64(time.Hour))
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("slept %v; want about 10ms", d)
	}
	in.deadline.Store(-1) // interrupted
	start = time.Now()
	in.sleep(int64(time.Hour))
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("interrupted: slept %v; want 0", d)
	}
}

// With no call in flight the watchdog sleeps (an idle sidecar has no timer waking it); a call wakes it, and
// the deadline is enforced as before.
func TestDeadline_WatchdogSleepsWhenIdle(t *testing.T) {
	const timeout = 5 * time.Millisecond
	h := load(t, Options{Timeout: timeout, PoolSize: 1}, faultySpec(modeLoop, FailOpen))
	waitAsleep := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !h.watchAsleep.Load(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the watchdog did not go to sleep with no call in flight")
			}
		}
	}
	for range 2 {
		waitAsleep()
		var x Exchange
		start := time.Now()
		if err := h.OnRequest(context.Background(), &Request{Kind: trace.SpanKindServer, Method: "GET"}, &x); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > timeout+500*time.Millisecond {
			t.Errorf("OnRequest took %v; want about %v", d, timeout)
		}
		if len(x.Errors) != 1 || !strings.Contains(x.Errors[0], "timeout after 5ms") {
			t.Errorf("Errors: got %q; want a timeout", x.Errors)
		}
	}
}
