package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Fault modes of testdata/faulty.wat (its config).
const (
	modeOK = iota
	modeLoop
	modeTrap
	modeGrow
	modeOutOfBounds
	modeTruncated
	modeUnknownOp
	modeReport
	modeLoopEverySecondCall
	modeGrowThenTrap
)

func faultySpec(mode int, failure string) Spec {
	return Spec{Name: "faulty", Path: wat("faulty"), Config: json.RawMessage(string(rune('0' + mode))), Failure: failure}
}

const faultyTimeout = 200 * time.Millisecond // long enough that a loaded machine does not time out the other faults

func TestFaulty_FailOpen_RequestGoesOnAndInstanceIsDiscarded(t *testing.T) {
	tests := []struct {
		mode      int
		wantErr   string // prefix of x.Errors[0]
		wantStats PluginStats
	}{
		{modeLoop, "faulty: timeout after 200ms", PluginStats{Calls: 1, Failures: 1, Timeouts: 1}},
		{modeTrap, "faulty: trap: wasm error: unreachable", PluginStats{Calls: 1, Failures: 1, Traps: 1}},
		{modeGrowThenTrap, "faulty: trap: wasm error: unreachable", PluginStats{Calls: 1, Failures: 1, Traps: 1}},
		{modeOutOfBounds, "faulty: malformed result: output [2147418112, +4096) outside memory of 65536 bytes", PluginStats{Calls: 1, Failures: 1, Malformed: 1}},
		{modeTruncated, "faulty: malformed result: truncated: need 100 bytes at byte 5 of 5", PluginStats{Calls: 1, Failures: 1, Malformed: 1}},
		{modeUnknownOp, "faulty: malformed result: op 0x7f not allowed in the request hook", PluginStats{Calls: 1, Failures: 1, Malformed: 1}},
		// A reported failure keeps the instance: the guest is healthy.
		{modeReport, "faulty: plugin failed: on purpose", PluginStats{Calls: 1, Failures: 1, Reported: 1, Instances: 1, Idle: 1, MemoryBytes: 65536}},
	}
	for _, tt := range tests {
		t.Run(tt.wantErr, func(t *testing.T) {
			h := load(t, Options{Timeout: faultyTimeout, MemoryLimit: 1 << 20, PoolSize: 2}, faultySpec(tt.mode, FailOpen))
			var x Exchange
			x.Attributes = append(x.Attributes, attribute.String("before", "1"))
			start := time.Now()
			err := h.OnRequest(context.Background(), &Request{Kind: trace.SpanKindServer, Method: "GET"}, &x)
			if err != nil {
				t.Fatalf("OnRequest: got %v; want nil (fail-open)", err)
			}
			if d := time.Since(start); d > faultyTimeout+time.Second {
				t.Errorf("OnRequest took %v", d)
			}
			if len(x.Errors) != 1 || !strings.HasPrefix(x.Errors[0], tt.wantErr) {
				t.Errorf("Errors: got %q; want one starting %q", x.Errors, tt.wantErr)
			}
			if d := diff(x.Attributes, []attribute.KeyValue{attribute.String("before", "1")}); d != "" {
				t.Errorf("Attributes %s", d)
			}
			got := h.Stats().Plugin("faulty")
			tt.wantStats.Name = "faulty"
			if d := diff(got, tt.wantStats); d != "" {
				t.Errorf("Stats %s", d)
			}
		})
	}
}

func TestFaulty_FailClosed_Refuses(t *testing.T) {
	h := load(t, Options{Timeout: faultyTimeout}, faultySpec(modeLoop, FailClosed))
	var x Exchange
	err := h.OnRequest(context.Background(), &Request{Method: "GET"}, &x)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("OnRequest: got %v; want ErrRefused", err)
	}
	if want := "plugins: refused: faulty: timeout after 200ms"; err.Error() != want {
		t.Errorf("error: got %q; want %q", err, want)
	}
	err = h.OnResponse(context.Background(), &Response{Status: 200}, &x)
	if !errors.Is(err, ErrRefused) {
		t.Errorf("OnResponse: got %v; want ErrRefused", err)
	}
}

func TestFaulty_MemoryCapHolds(t *testing.T) {
	h := load(t, Options{MemoryLimit: 1 << 20, Timeout: time.Second}, faultySpec(modeGrow, FailOpen))
	var x Exchange
	if err := h.OnRequest(context.Background(), &Request{}, &x); err != nil || len(x.Errors) != 0 {
		t.Fatalf("OnRequest: %v, %q", err, x.Errors)
	}
	if got, want := h.Stats().Plugin("faulty").MemoryBytes, uint64(1<<20); got != want {
		t.Errorf("memory after growing to the cap: got %d; want %d", got, want)
	}
}

func TestFaulty_PoolRefillsAndNothingLeaks(t *testing.T) {
	h := load(t, Options{Timeout: faultyTimeout, PoolSize: 1}, faultySpec(modeLoopEverySecondCall, FailOpen))
	var timeouts int
	for i := range 7 {
		var x Exchange
		if err := h.OnRequest(context.Background(), &Request{}, &x); err != nil {
			t.Fatal(err)
		}
		timeouts += len(x.Errors)
		st := h.Stats().Plugin("faulty")
		// Even calls time out and discard the instance; the next call refills.
		wantLive := 1
		if i%2 == 1 {
			wantLive = 0
		}
		if st.Instances != wantLive || st.Retired != 0 {
			t.Errorf("call %d: %d instances live, %d retired; want %d, 0", i+1, st.Instances, st.Retired, wantLive)
		}
	}
	st := h.Stats().Plugin("faulty")
	if st.Calls != 7 || st.Timeouts != 3 || timeouts != 3 {
		t.Errorf("got %d calls, %d timeouts (%d errors); want 7, 3, 3", st.Calls, st.Timeouts, timeouts)
	}
	h.mu.Lock()
	n := len(h.insts)
	h.mu.Unlock()
	if live := h.cur.Load().gens[0].pool.live.Load(); n != 1 || live != 1 {
		t.Errorf("host tracks %d instances, pool counts %d live; want 1, 1", n, live)
	}
}

func TestPool_BoundedUnderConcurrency(t *testing.T) {
	const size = 3
	h := load(t, Options{PoolSize: size}, Spec{Name: "hello", Path: wat("hello")})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				var x Exchange
				if err := h.OnRequest(context.Background(), &Request{Method: "GET"}, &x); err != nil || len(x.Errors) > 0 {
					t.Errorf("OnRequest: %v %q", err, x.Errors)
					return
				}
				x.Reset()
			}
		}()
	}
	wg.Wait()
	st := h.Stats().Plugin("hello")
	if st.Instances > size || st.Instances != st.Idle || st.Failures != 0 {
		t.Errorf("got %d instances (%d idle), %d failures; want at most %d, all idle, none", st.Instances, st.Idle, st.Failures, size)
	}
	if live := h.cur.Load().gens[0].pool.live.Load(); int(live) != st.Instances {
		t.Errorf("pool counts %d live; host tracks %d", live, st.Instances)
	}
}

func TestFaulty_SpanEnd_FailClosedDropsFailOpenMarks(t *testing.T) {
	spans := finishedSpans(t, span("s", []attribute.KeyValue{attribute.String("k", "v")}))
	t.Run("closed", func(t *testing.T) {
		h := load(t, Options{Timeout: faultyTimeout}, faultySpec(modeTrap, FailClosed))
		if got := h.ProcessSpans(context.Background(), spans); len(got) != 0 {
			t.Errorf("got %d spans; want the span dropped", len(got))
		}
	})
	t.Run("open", func(t *testing.T) {
		h := load(t, Options{Timeout: faultyTimeout}, faultySpec(modeLoop, FailOpen))
		got := h.ProcessSpans(context.Background(), spans)
		if len(got) != 1 {
			t.Fatalf("got %d spans; want 1", len(got))
		}
		want := []attribute.KeyValue{attribute.String("k", "v"), attribute.String(ErrorAttribute, "faulty: timeout after 200ms")}
		if d := diff(got[0].Attributes(), want); d != "" {
			t.Errorf("attributes %s", d)
		}
	})
}

func TestSpanEnd_TimeoutRetriedOnceOnAFreshInstance(t *testing.T) {
	h := load(t, Options{Timeout: faultyTimeout}, faultySpec(modeLoopEverySecondCall, FailClosed))
	spans := finishedSpans(t, span("a", nil), span("b", nil), span("c", nil))
	if got := h.ProcessSpans(context.Background(), spans); len(got) != 3 {
		t.Errorf("got %d spans; want 3 (each timeout retried once)", len(got))
	}
	if st := h.Stats().Plugin("faulty"); st.Timeouts != 2 || st.Calls != 5 {
		t.Errorf("got %d calls, %d timeouts; want 5, 2", st.Calls, st.Timeouts)
	}
}

func TestLoad_RefusesBadModules(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk.wasm")
	os.WriteFile(junk, []byte("not wasm"), 0o644)
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Name: "bad", Path: wat("missing_export")}, "plugins: bad: guest doesn't export func[sidetrace_on_request]"},
		{Spec{Name: "v2", Path: wat("abi_v2")}, "plugins: v2: guest speaks ABI v2; host speaks v1 (func[sidetrace_abi_v1])"},
		{Spec{Name: "sig", Path: wat("bad_signature")}, "plugins: sig: guest exports func[sidetrace_on_request] with signature (i32)->(i32); want (i32)->(i64)"},
		{Spec{Name: "junk", Path: junk}, "plugins: junk: compile: invalid magic number"},
		{Spec{Name: "gone", Path: "/nonexistent/x.wasm"}, "plugins: gone: stat /nonexistent/x.wasm: no such file or directory"},
		{Spec{Name: "tenant", Path: wat("hello")}, ""}, // sanity: a good module loads
	}
	for _, tt := range tests {
		t.Run(tt.spec.Name, func(t *testing.T) {
			h, err := Load(context.Background(), []Spec{tt.spec}, Options{Logger: testLogger(t)})
			if h != nil {
				defer h.Close(context.Background())
			}
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Errorf("error is not one line: %q", got)
			}
		})
	}
}
