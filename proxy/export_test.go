package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidetrace/sidetrace/internal/otlptest"
	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

// A collector that is down costs requests nothing: they all succeed, and the failed exports are counted.
func TestExport_CollectorDown_RequestsUnaffected(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+dead, "OTEL_EXPORTER_OTLP_TIMEOUT=500")
	c := client(t)
	for i := 0; i < 50; i++ {
		if res, _ := get(t, c, sc.URL("inbound")+"/", nil); res.StatusCode != 200 {
			t.Fatalf("request %d: got %d; want 200", i, res.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_ = sc.Flush(ctx)
	if st := sc.ExportStats(); st.Failed == 0 || st.Exported != 0 {
		t.Errorf("export stats: got %+v; want failures counted and nothing exported", st)
	}
}

// A collector that hangs fills the bounded queue: requests still complete while it hangs, the spans beyond the
// queue are dropped and counted, and /metrics reports them.
func TestExport_CollectorStuck_DropsCountedRequestsComplete(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	rcv := otlptest.NewReceiver(t)
	rcv.Block()
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
		"OTEL_BSP_MAX_QUEUE_SIZE=8", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4", "SIDETRACE_ACCESS_LOG=off")
	c := client(t)
	const n = 100
	for i := 0; i < n; i++ {
		if res, _ := get(t, c, sc.URL("inbound")+"/", nil); res.StatusCode != 200 {
			t.Fatalf("request %d: got %d; want 200", i, res.StatusCode)
		}
	}
	// The last span ends just after its response reached the client.
	st := sc.ExportStats()
	for deadline := time.Now().Add(wait); st.Enqueued+st.Dropped < n && time.Now().Before(deadline); st = sc.ExportStats() {
		time.Sleep(time.Millisecond)
	}
	// At most one batch is held by the stuck export and QueueSize wait; the rest must have been dropped.
	if st.Dropped < n-8-4 || st.Enqueued+st.Dropped != n {
		t.Errorf("export stats with a stuck collector: got %+v; want >= %d dropped of %d", st, n-12, n)
	}
	_, metrics := get(t, c, sc.URL("admin")+"/metrics", nil)
	if !strings.Contains(metrics, fmt.Sprintf("sidetrace_spans_dropped_total %d", st.Dropped)) {
		t.Errorf("/metrics does not report %d dropped spans:\n%s", st.Dropped, metrics)
	}
	rcv.Release()
	rcv.WaitSpans(t, int(st.Enqueued), wait) // what was queued is delivered once the collector answers
}

// With no endpoint, the embedded store keeps the traces and the admin server serves them.
func TestStore_DebugTraces(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(500)
		case "/slow":
			time.Sleep(60 * time.Millisecond)
		}
	})
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_SERVICE_NAME=store-test", "SIDETRACE_STORE_TRACES=3")
	c := client(t)
	for _, p := range []string{"/a", "/fail", "/slow", "/b"} {
		get(t, c, sc.URL("inbound")+p, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := sc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	type summary struct {
		TraceID    string  `json:"traceId"`
		DurationMs float64 `json:"durationMs"`
		Error      bool    `json:"error"`
		Services   []string
	}
	list := func(query string) []summary {
		res, body := get(t, c, sc.URL("admin")+"/debug/traces"+query, nil)
		if res.StatusCode != 200 {
			t.Fatalf("/debug/traces%s: %d %s", query, res.StatusCode, body)
		}
		var out struct{ Traces []summary }
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		return out.Traces
	}
	all := list("")
	if len(all) != 3 {
		t.Fatalf("traces: got %d; want 3 (SIDETRACE_STORE_TRACES bounds the store)", len(all))
	}
	log := sc.WaitAccessLog(t, 4)
	if all[0].TraceID != log[3]["trace_id"] {
		t.Errorf("newest first: got %s; want the last request's trace %v", all[0].TraceID, log[3]["trace_id"])
	}
	if errs := list("?error=true"); len(errs) != 1 || errs[0].TraceID != log[1]["trace_id"] {
		t.Errorf("?error=true: got %+v; want the /fail trace", errs)
	}
	if slow := list("?min_duration=50ms"); len(slow) != 1 || slow[0].TraceID != log[2]["trace_id"] {
		t.Errorf("?min_duration=50ms: got %+v; want the /slow trace", slow)
	}
	if none := list("?service=other"); len(none) != 0 {
		t.Errorf("?service=other: got %+v; want none", none)
	}
	if mine := list("?service=store-test&limit=2"); len(mine) != 2 {
		t.Errorf("?service=store-test&limit=2: got %d; want 2", len(mine))
	}
	res, body := get(t, c, sc.URL("admin")+"/debug/traces/"+all[0].TraceID, nil)
	var tr struct {
		Spans []struct {
			SpanID     string         `json:"spanId"`
			Kind       string         `json:"kind"`
			Attributes map[string]any `json:"attributes"`
		}
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil || res.StatusCode != 200 || len(tr.Spans) != 1 {
		t.Fatalf("/debug/traces/{id}: %d %s", res.StatusCode, body)
	}
	if tr.Spans[0].Kind != "server" || tr.Spans[0].Attributes["url.path"] != "/b" {
		t.Errorf("span: got %+v; want the SERVER span of /b", tr.Spans[0])
	}
	for path, want := range map[string]int{
		"/debug/traces/00000000000000000000000000000001": 404,
		"/debug/traces/nothex":                           400,
		"/debug/traces?min_duration=soon":                400,
	} {
		if res, _ := get(t, c, sc.URL("admin")+path, nil); res.StatusCode != want {
			t.Errorf("%s: got %d; want %d", path, res.StatusCode, want)
		}
	}
}

// In-flight requests finish during a drain, new connections are refused, and every span is flushed.
func TestShutdown_DrainsInFlightAndFlushes(t *testing.T) {
	started := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(100 * time.Millisecond)
		fmt.Fprint(w, "finished")
	})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "OTEL_BSP_SCHEDULE_DELAY=60000")
	c := client(t)
	var wg sync.WaitGroup
	wg.Add(1)
	var status int
	var body string
	go func() {
		defer wg.Done()
		res, err := c.Get(sc.URL("inbound") + "/")
		if err != nil {
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		status, body = res.StatusCode, string(b)
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	inbound := sc.Addr("inbound")
	if err := sc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if status != 200 || body != "finished" {
		t.Errorf("in-flight request: got %d %q; want 200 finished", status, body)
	}
	// The 60 s schedule delay has not passed: only Shutdown's flush can have delivered the span.
	if spans := rcv.Spans(); len(spans) != 1 {
		t.Errorf("spans at the collector after shutdown: got %d; want 1", len(spans))
	}
	if _, err := net.DialTimeout("tcp", inbound, time.Second); err == nil {
		t.Error("the inbound listener still accepts after shutdown")
	}
}

// SIDETRACE_ADMIN_PPROF serves Go's profiler on the admin server; it is off by default.
func TestAdmin_Pprof_OptIn(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	c := client(t)
	off := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "SIDETRACE_ACCESS_LOG=off")
	if res, _ := get(t, c, off.URL("admin")+"/debug/pprof/", nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("pprof without SIDETRACE_ADMIN_PPROF: got %d; want 404", res.StatusCode)
	}
	on := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "SIDETRACE_ACCESS_LOG=off", "SIDETRACE_ADMIN_PPROF=true")
	res, body := get(t, c, on.URL("admin")+"/debug/pprof/heap?debug=1", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Fatalf("heap profile: got %d %.80q", res.StatusCode, body)
	}
}
