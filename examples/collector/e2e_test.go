package collector_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sidetrace/sidetrace/internal/otlptest"
	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

// e2eEnv turns on TestCollector_EndToEnd: building the collector in otelcol/ compiles some 2,000 packages (the
// load_balancing exporter brings the Kubernetes and AWS clients), minutes on a cold cache, too long for every
// `go test ./...`. Set it to 1 to build otelcol/ (then cached by the go build cache), or to the path of a
// collector binary that has the same components (otelcol-contrib v0.161 or later).
const e2eEnv = "SIDETRACE_COLLECTOR_E2E"

func collectorBinary(t *testing.T) string {
	t.Helper()
	v := os.Getenv(e2eEnv)
	switch v {
	case "":
		t.Skipf("set %s=1 to build the collector in otelcol/ and run the two tiers (minutes on a cold build cache)", e2eEnv)
	case "1":
	default:
		return v
	}
	bin := filepath.Join(t.TempDir(), "otelcol")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = "otelcol"
	cmd.Env = append(os.Environ(), "GOWORK=off")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build otelcol/: %v\n%s", err, out)
	}
	t.Logf("built otelcol/ in %v", time.Since(start).Round(time.Second))
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// collector runs the binary on file with the overrides (collector confmap "yaml:" URIs), stopped when the test
// ends; it waits until addr accepts connections.
func collector(t *testing.T, bin, name, file, addr string, env []string, overrides ...string) {
	t.Helper()
	args := []string{"--config=file:" + file, "--config=yaml:service::telemetry::metrics::level: none"}
	for _, o := range overrides {
		args = append(args, "--config=yaml:"+o)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var log bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &log}, lockedWriter{&mu, &log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when the process is gone; waitErr is then set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("%s log:\n%s", name, log.String())
			mu.Unlock()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited: %v", name, waitErr) // the cleanup logs its output
		default:
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: %s not listening after 30s:\n%s", name, addr, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// The whole setup, for real: otel-lb and two otel-tail instances from the shipped files (only addresses, the
// decision wait and the collectors' own metrics overridden), a backend (an OTLP receiver), and two sidecars in
// a row configured from sidetrace.env, so that each trace has two spans, of two services. Of 200 requests, 20
// fail (503 from the service) and 20 are slow (600 ms): the backend gets every failed and every slow trace
// whole, both spans, and about 10% of the other 160 (binomial bounds, 4 sigma), also whole; each trace was
// decided by one otel-tail instance, and both instances had traces.
func TestCollector_EndToEnd(t *testing.T) {
	bin := collectorBinary(t)
	// One backend per otel-tail, to see where each trace was decided.
	backends := []*otlptest.Receiver{otlptest.NewReceiver(t), otlptest.NewReceiver(t)}
	tails := []string{freePort(t), freePort(t)}
	for i, addr := range tails {
		collector(t, bin, fmt.Sprintf("otel-tail-%d", i+1), "otel-tail.yaml", addr,
			[]string{"TRACES_BACKEND=" + backends[i].Endpoint()},
			"receivers::otlp::protocols::grpc::endpoint: "+addr,
			"processors::tail_sampling::decision_wait: 2s")
	}
	lbHTTP, lbGRPC := freePort(t), freePort(t)
	collector(t, bin, "otel-lb", "otel-lb.yaml", lbHTTP, nil,
		"receivers::otlp::protocols::http::endpoint: "+lbHTTP,
		"receivers::otlp::protocols::grpc::endpoint: "+lbGRPC,
		fmt.Sprintf("exporters::load_balancing::resolver::static::hostnames: [%s, %s]", tails[0], tails[1]))

	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			time.Sleep(600 * time.Millisecond) // a floor: the trace lasts longer than the 500 ms policy
		}
	}))
	defer service.Close()
	env := loadEnvFile(t, "sidetrace.env")
	endpoint := "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + lbHTTP
	orders := sidecartest.Start(t, append(env, "SIDETRACE_UPSTREAM="+service.URL, endpoint, "SIDETRACE_ACCESS_LOG=off")...)
	edge := sidecartest.Start(t, append(env, "OTEL_SERVICE_NAME=edge", "SIDETRACE_UPSTREAM="+orders.URL("inbound"), endpoint, "SIDETRACE_ACCESS_LOG=off")...)

	const n, failing, slow = 200, 20, 20
	kind := func(i int) string {
		switch {
		case i < failing:
			return "/fail"
		case i < failing+slow:
			return "/slow"
		}
		return "/ok"
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	c := &http.Client{}
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodGet, edge.URL("inbound")+kind(i), nil)
			req.Header.Set("X-Correlation-Id", fmt.Sprintf("req-%03d", i))
			res, err := c.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			res.Body.Close()
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, sc := range []*sidecartest.Sidecar{edge, orders} {
		// A span ends just after its response is sent: wait for the last ones before flushing.
		for st := sc.ExportStats(); st.Enqueued < n && ctx.Err() == nil; st = sc.ExportStats() {
			time.Sleep(5 * time.Millisecond)
		}
		if err := sc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if st := sc.ExportStats(); st.Enqueued != n || st.Exported != n {
			t.Fatalf("sidecar export stats %+v; want all %d spans exported (always_on)", st, n)
		}
	}

	// Group what the backend got by trace, with the request each trace was (the correlation id).
	type tr struct {
		path     string
		services map[string]bool
		tails    map[int]bool // the otel-tail instances that exported spans of the trace
		dur      time.Duration
	}
	traces := func() map[string]*tr {
		out := map[string]*tr{}
		for i, b := range backends {
			for _, s := range b.Spans() {
				x := out[s.TraceID]
				if x == nil {
					x = &tr{services: map[string]bool{}, tails: map[int]bool{}}
					out[s.TraceID] = x
				}
				x.tails[i] = true
				x.services[s.Service] = true
				if s.Service == "edge" {
					x.path, _ = s.Attrs["url.path"].(string)
					x.dur = s.End.Sub(s.Start)
				}
			}
		}
		return out
	}
	count := func(path string) int {
		k := 0
		for _, x := range traces() {
			if x.path == path && len(x.services) == 2 {
				k++
			}
		}
		return k
	}
	// Every failed and every slow trace must arrive; then give the tails one more decision round for the rest.
	for deadline := time.Now().Add(60 * time.Second); count("/fail") != failing || count("/slow") != slow; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the backends have %d of %d failed and %d of %d slow traces whole", count("/fail"), failing, count("/slow"), slow)
		}
	}
	time.Sleep(3 * time.Second) // not an assertion: lets the last probabilistic decisions through

	got := traces()
	kept, keptSlowOK := 0, 0
	perTail := make([]int, len(backends))
	for id, x := range got {
		if len(x.services) != 2 {
			t.Errorf("trace %s (%s) reached the backend with services %v; want both edge and orders (whole traces)", id, x.path, x.services)
		}
		if len(x.tails) != 1 {
			t.Errorf("trace %s (%s) was exported by otel-tail instances %v; want one (routed by trace id)", id, x.path, x.tails)
		}
		for i := range x.tails {
			perTail[i]++
		}
		if x.path == "/ok" {
			if x.dur > 500*time.Millisecond {
				keptSlowOK++ // slow for a reason of the machine's: kept by the latency policy, rightly
			} else {
				kept++
			}
		}
	}
	rest := n - failing - slow - keptSlowOK
	mean, sd := 0.1*float64(rest), math.Sqrt(float64(rest)*0.1*0.9)
	lo, hi := int(math.Floor(mean-4*sd)), int(math.Ceil(mean+4*sd))
	t.Logf("backends: %d traces (%d via otel-tail-1, %d via otel-tail-2): %d/%d failed, %d/%d slow, %d of %d others (bounds %d..%d; %d others over 500 ms)",
		len(got), perTail[0], perTail[1], count("/fail"), failing, count("/slow"), slow, kept, rest, max(lo, 0), hi, keptSlowOK)
	if perTail[0] == 0 || perTail[1] == 0 {
		t.Errorf("traces per otel-tail instance: %v; want both used", perTail)
	}
	if kept < lo || kept > hi {
		t.Errorf("kept %d of %d fast successful traces; want %d..%d (10%%, 4 sigma)", kept, rest, lo, hi)
	}
}
