package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/sidetrace/sidetrace/internal/otlptest"
	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

var (
	pluginsOnce sync.Once
	pluginsDir  string
	pluginsErr  error
)

// plugin returns the path of a real compiled plugin: the example plugins (Go, wasip1) and the WAT test
// plugins, built once per test binary by plugins/build-examples.sh, as `make plugins` does.
func plugin(t *testing.T, name string) string {
	t.Helper()
	pluginsOnce.Do(func() {
		pluginsDir, pluginsErr = os.MkdirTemp("", "sidetrace-proxy-plugins-")
		if pluginsErr != nil {
			return
		}
		out, err := exec.Command("../plugins/build-examples.sh", pluginsDir).CombinedOutput()
		if err != nil {
			pluginsErr = fmt.Errorf("plugins/build-examples.sh: %v\n%s", err, out)
		}
	})
	if pluginsErr != nil {
		t.Fatal(pluginsErr)
	}
	return filepath.Join(pluginsDir, name+".wasm")
}

func pluginsEnv(t *testing.T, specs ...map[string]any) string {
	b, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	return "SIDETRACE_PLUGINS=" + string(b)
}

// startPlugged starts a sidecar with a compilation cache shared by the test's sidecars: compiling a Go
// module under the race detector takes seconds, and the cache is what SIDETRACE_PLUGIN_CACHE_DIR is for.
func startPlugged(t *testing.T, env ...string) *sidecartest.Sidecar {
	plugin(t, "hello") // makes pluginsDir
	return sidecartest.Start(t, append([]string{"SIDETRACE_PLUGIN_CACHE_DIR=" + filepath.Join(pluginsDir, "cache")}, env...)...)
}

// The three example plugins in a chain: custom-attributes adds attributes (one copied from the
// Authorization header), pii-redact redacts them and everything else secret before the span leaves the
// process. The secrets appear nowhere in the bytes the OTLP receiver got.
func TestPlugins_RedactionBeforeExport(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := startPlugged(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
		pluginsEnv(t,
			map[string]any{"name": "attrs", "path": plugin(t, "custom-attributes"), "config": map[string]any{
				"headers": map[string]string{"authorization": "http.request.header.authorization", "x-customer": "app.customer"},
				"static":  map[string]string{"deployment.environment": "test"},
			}},
			map[string]any{"name": "pii", "path": plugin(t, "pii-redact")},
		))
	secrets := []string{"hunter2", "alice@example.com", "4111111111111111", "078-05-1120", "s3cr3t-t0ken"}
	get(t, client(t), sc.URL("inbound")+"/pay?password=hunter2&card=4111111111111111", map[string]string{
		"Authorization": "Bearer s3cr3t-t0ken",
		"X-Customer":    "alice@example.com ssn 078-05-1120",
	})
	s := spanNamed(t, rcv.WaitSpans(t, 1, wait), tracepb.Span_SPAN_KIND_SERVER, "GET")
	raw := rcv.Raw()
	for _, secret := range secrets {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("secret %q left the process in the OTLP export", secret)
		}
	}
	checkAttrs(t, s, map[string]any{"deployment.environment": "test"})
	for _, k := range []string{"http.request.header.authorization", "app.customer", "url.query"} {
		if v, _ := s.Attrs[k].(string); !strings.Contains(v, "REDACTED") {
			t.Errorf("attribute %s: got %q; want it redacted", k, v)
		}
	}
	// The upstream still got the real request: redaction is about telemetry, not traffic.
	if got := up.last(t).Header.Get("Authorization"); got != "Bearer s3cr3t-t0ken" {
		t.Errorf("upstream Authorization: got %q", got)
	}
}

// Redaction also runs before the embedded store sees a span.
func TestPlugins_RedactionBeforeStore(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	sc := startPlugged(t, "SIDETRACE_UPSTREAM="+up.URL, pluginsEnv(t, map[string]any{"name": "pii", "path": plugin(t, "pii-redact")}))
	c := client(t)
	get(t, c, sc.URL("inbound")+"/login?token=abc123secret&next=/home", nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := sc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, list := get(t, c, sc.URL("admin")+"/debug/traces", nil)
	var l struct{ Traces []struct{ TraceID string } }
	json.Unmarshal([]byte(list), &l)
	if len(l.Traces) != 1 {
		t.Fatalf("traces: %s", list)
	}
	_, body := get(t, c, sc.URL("admin")+"/debug/traces/"+l.Traces[0].TraceID, nil)
	if strings.Contains(body, "abc123secret") || !strings.Contains(body, "REDACTED") {
		t.Errorf("stored trace still holds the token or shows no redaction:\n%s", body)
	}
}

// Per-tenant head sampling over thousands of requests: acme 100%, free 0%, everyone else 10%, decided from
// the trace id. The exported traces and the sampled flag each upstream request carries agree with the
// decision, within binomial bounds, and errors are kept whatever the tenant.
func TestPlugins_TenantSampling(t *testing.T) {
	var mu sync.Mutex
	flags := map[string]string{} // trace id -> sampled flag the upstream saw
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		tp := r.Header.Get("traceparent")
		if len(tp) == 55 {
			mu.Lock()
			flags[tp[3:35]] = tp[53:]
			mu.Unlock()
		}
		if r.URL.Path == "/fail" {
			w.WriteHeader(500)
		}
	})
	rcv := otlptest.NewReceiver(t)
	sc := startPlugged(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
		"SIDETRACE_ACCESS_LOG=off", "OTEL_BSP_MAX_QUEUE_SIZE=8192", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=1024",
		"SIDETRACE_PLUGIN_TIMEOUT=2s", // this test is about the decisions, not about a slow race-detector build

		pluginsEnv(t, map[string]any{"name": "tenants", "path": plugin(t, "tenant-sampler"), "config": map[string]any{
			"header": "x-tenant-id", "default": 0.1, "tenants": map[string]float64{"acme": 1.0, "free": 0.0},
		}}))
	c := client(t)
	const per = 500
	tenants := []string{"acme", "free", "other"}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, tenant := range tenants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
				req.Header.Set("x-tenant-id", tenant)
				res, err := c.Do(req)
				if err != nil || res.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed", n)
	}
	// An error of the never-sampled tenant is exported all the same.
	req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/fail", nil)
	req.Header.Set("x-tenant-id", "free")
	if res, err := c.Do(req); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	// Every span the upstream saw sampled (plus the kept error) reaches the receiver: a span ends just after its
	// response, so wait for them rather than flush at once.
	mu.Lock()
	sampledFlags := 0
	for _, f := range flags {
		if f == "01" {
			sampledFlags++
		}
	}
	mu.Unlock()
	rcv.WaitFor(t, wait, fmt.Sprintf("%d spans", sampledFlags+1), func(s []otlptest.Span) bool { return len(s) >= sampledFlags+1 })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sc.Flush(ctx) // and nothing more than those

	exported := map[string]int{}
	sawError := false
	for _, s := range rcv.Spans() {
		tenant, _ := s.Attrs["tenant.id"].(string)
		if s.Attrs["url.path"] == "/fail" {
			sawError = tenant == "free" && s.Attrs["sidetrace.sampling.reason"] != nil
			continue
		}
		if e := s.Attrs["sidetrace.plugin.error"]; e != nil {
			t.Errorf("plugin failed: %v", e)
		}
		exported[tenant]++
		mu.Lock()
		flag := flags[s.TraceID]
		mu.Unlock()
		if flag != "01" {
			t.Errorf("tenant %s trace %s exported but the upstream saw flags %q", tenant, s.TraceID, flag)
		}
	}
	total := exported["acme"] + exported["free"] + exported["other"]
	if sampledFlags != total {
		t.Errorf("upstream saw %d sampled requests; %d spans were exported: the propagated flag must match the decision", sampledFlags, total)
	}
	if exported["acme"] != per || exported["free"] != 0 {
		t.Errorf("exported: acme %d (want %d), free %d (want 0)", exported["acme"], per, exported["free"])
	}
	mean, sd := per*0.1, math.Sqrt(per*0.1*0.9)
	if got := float64(exported["other"]); math.Abs(got-mean) > 4*sd {
		t.Errorf("exported for the default tenant: %v; want %v ± %.0f (4 sigma)", got, mean, 4*sd)
	}
	if !sawError {
		t.Error("the 500 of tenant free was not exported with a sampling reason")
	}
}

// A broken plugin never takes a request down in fail-open mode (the span records the failure), refuses it in
// fail-closed mode, and the instances it broke are replaced, not leaked.
func TestPlugins_FaultyPlugin_FailOpenAndClosed(t *testing.T) {
	modes := map[string]int{"infinite loop": 1, "trap": 2, "memory growth to the cap": 9, "garbage result": 4, "unknown op": 6}
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "upstream") })
			rcv := otlptest.NewReceiver(t)
			open := startPlugged(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "SIDETRACE_PLUGIN_TIMEOUT=20ms",
				"SIDETRACE_PLUGIN_MEMORY_LIMIT=2MiB", pluginsEnv(t, map[string]any{"name": "faulty", "path": plugin(t, "faulty"), "config": mode}))
			closed := startPlugged(t, "SIDETRACE_UPSTREAM="+up.URL, "SIDETRACE_PLUGIN_TIMEOUT=20ms", "SIDETRACE_PLUGIN_MEMORY_LIMIT=2MiB",
				pluginsEnv(t, map[string]any{"name": "faulty", "path": plugin(t, "faulty"), "config": mode, "failure": "closed"}))
			c := client(t)
			for i := 0; i < 5; i++ {
				if res, body := get(t, c, open.URL("inbound")+"/", nil); res.StatusCode != 200 || body != "upstream" {
					t.Fatalf("fail-open request %d: got %d %q; want the upstream's 200", i, res.StatusCode, body)
				}
				if res, _ := get(t, c, closed.URL("inbound")+"/", nil); res.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("fail-closed request %d: got %d; want 503", i, res.StatusCode)
				}
			}
			s := rcv.WaitSpans(t, 5, wait)[0]
			if e, _ := s.Attrs["sidetrace.plugin.error"].(string); !strings.HasPrefix(e, "faulty") {
				t.Errorf("sidetrace.plugin.error: got %q; want the plugin named", e)
			}
			_, metrics := get(t, c, open.URL("admin")+"/metrics", nil)
			if !strings.Contains(metrics, `sidetrace_plugin_failures_total{plugin="faulty"}`) || strings.Contains(metrics, `sidetrace_plugin_failures_total{plugin="faulty"} 0`) {
				t.Errorf("/metrics does not count the failures:\n%s", metrics)
			}
			if inst := metricValue(metrics, `sidetrace_plugin_instances{plugin="faulty"}`); inst > 4 {
				t.Errorf("live instances after 5 failures: %v; want at most the pool size (broken ones closed)", inst)
			}
		})
	}
}

func metricValue(metrics, name string) float64 {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// A plugin that fails to load is refused at start-up with one line naming it.
func TestPlugins_BadModuleRefusedAtStart(t *testing.T) {
	for file, want := range map[string]string{
		"missing_export": "plugins: bad: ",
		"abi_v2":         "plugins: bad: ",
	} {
		var out bytes.Buffer
		cmd := exec.Command(sidetraceBinary(t))
		cmd.Env = append(os.Environ(), "SIDETRACE_UPSTREAM=http://127.0.0.1:1", "SIDETRACE_INBOUND_ADDR=127.0.0.1:0",
			"SIDETRACE_EGRESS_ADDR=off", "SIDETRACE_ADMIN_ADDR=off", pluginsEnv(t, map[string]any{"name": "bad", "path": plugin(t, file)}))
		cmd.Stderr = &out
		if err := cmd.Run(); err == nil {
			t.Errorf("%s: sidetrace started; want it refused", file)
			continue
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "sidetrace: "+want) {
			t.Errorf("%s: last line %q; want it to start %q", file, last, "sidetrace: "+want)
		}
	}
}

// Hot reload under load: the plugin file is replaced while requests flow; none fails, and the new module's
// behaviour shows up.
func TestPlugins_HotReloadUnderLoad(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "live.wasm")
	copyFile(t, plugin(t, "faulty"), path) // mode 0: a plugin that does nothing
	sc := startPlugged(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "SIDETRACE_ACCESS_LOG=off",
		"SIDETRACE_PLUGIN_WATCH=20ms", pluginsEnv(t, map[string]any{"name": "live", "path": path, "config": 0}))
	c := client(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
				req.Header.Set("x-request-id", "r")
				res, err := c.Do(req)
				sent.Add(1)
				if err != nil || res.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	for sent.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	// Swap in the hand-written WAT plugin, which tags every span with wat.method.
	tmp := filepath.Join(dir, "next.wasm")
	copyFile(t, plugin(t, "hello"), tmp)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	rcv.WaitFor(t, wait, "a span tagged by the reloaded plugin", func(spans []otlptest.Span) bool {
		for _, s := range spans {
			if s.Attrs["wat.method"] == "GET" {
				return true
			}
		}
		return false
	})
	before := sent.Load()
	for sent.Load() < before+50 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across the reload", n, sent.Load())
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// sidetraceBinary builds cmd/sidetrace once per test binary.
func sidetraceBinary(t *testing.T) string {
	binOnce.Do(func() {
		plugin(t, "hello") // makes pluginsDir, removed by TestMain
		binPath = filepath.Join(pluginsDir, "sidetrace")
		if out, err := exec.Command("go", "build", "-o", binPath, "../cmd/sidetrace").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
