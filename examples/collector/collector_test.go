package collector_test

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sidetrace/sidetrace/config"
)

// yamlPaths flattens the block-style YAML of a collector configuration into "a.b.c" -> value, enough to check
// where each key sits: list items add their index ("policies.0.type"); flow lists stay values ("[ERROR]");
// comments are dropped. It fails the test on a tab or on a line it cannot read, so a file it accepts has the
// nesting the checks below expect. (gopkg.in/yaml.v3 is not a dependency of the root module; the end-to-end
// test runs the real collector on these files.)
func yamlPaths(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type level struct {
		indent int
		key    string
	}
	var stack []level
	items := map[string]int{}
	paths := map[string]string{}
	join := func() string {
		keys := make([]string, len(stack))
		for i, l := range stack {
			keys[i] = l.key
		}
		return strings.Join(keys, ".")
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.Contains(line, "\t") {
			t.Fatalf("%s:%d: a tab; YAML indents with spaces", file, n)
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		content := strings.TrimSpace(line)
		if content == "" || strings.HasPrefix(content, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		if item, ok := strings.CutPrefix(content, "- "); ok {
			parent := join()
			stack = append(stack, level{indent, strconv.Itoa(items[parent])})
			items[parent]++
			content, indent = strings.TrimSpace(item), indent+2
			if !strings.Contains(content, ": ") && !strings.HasSuffix(content, ":") {
				paths[join()] = content
				continue
			}
		}
		key, value, ok := strings.Cut(content, ":")
		if !ok || strings.ContainsAny(key, " {}[]") {
			t.Fatalf("%s:%d: %q is not a key", file, n, content)
		}
		stack = append(stack, level{indent, key})
		if value = strings.TrimSpace(value); value != "" {
			paths[join()] = value
		}
	}
	return paths
}

func checkPaths(t *testing.T, file string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s: got %q; want %q", file, k, got[k], v)
		}
	}
}

// policy returns the path prefix of the tail_sampling policy of the given type.
func policy(t *testing.T, paths map[string]string, typ string) string {
	t.Helper()
	for i := 0; ; i++ {
		p := "processors.tail_sampling.policies." + strconv.Itoa(i)
		switch paths[p+".type"] {
		case typ:
			return p
		case "":
			t.Fatalf("otel-tail.yaml: no tail_sampling policy of type %s", typ)
		}
	}
}

func port(hostport string) string { return hostport[strings.LastIndex(hostport, ":")+1:] }

// loadEnvFile reads KEY=VALUE lines, skipping blank lines and # comments, as docker --env-file does.
func loadEnvFile(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			t.Fatalf("%s: %q is not KEY=VALUE", file, line)
		}
		env = append(env, line)
	}
	return env
}

// The shipped files say what the README says: otel-lb routes by trace id to the otel-tail instances' OTLP
// port; otel-tail keeps errors, traces over 500 ms and 10% of the rest; sidetrace.env loads, samples
// everything and exports to otel-lb's OTLP/HTTP port.
func TestCollector_ConfigFiles(t *testing.T) {
	lb := yamlPaths(t, "otel-lb.yaml")
	checkPaths(t, "otel-lb.yaml", lb, map[string]string{
		"receivers.otlp.protocols.http.endpoint":              "0.0.0.0:4318",
		"exporters.load_balancing.routing_key":                "traceID",
		"exporters.load_balancing.protocol.otlp.tls.insecure": "true",
		"service.pipelines.traces.receivers":                  "[otlp]",
		"service.pipelines.traces.exporters":                  "[load_balancing]",
	})
	tail := yamlPaths(t, "otel-tail.yaml")
	tailPort := port(tail["receivers.otlp.protocols.grpc.endpoint"])
	for i := 0; ; i++ {
		h, ok := lb["exporters.load_balancing.resolver.static.hostnames."+strconv.Itoa(i)]
		if !ok {
			if i < 2 {
				t.Errorf("otel-lb.yaml: %d static backends; want at least 2, to show the routing", i)
			}
			break
		}
		if port(h) != tailPort {
			t.Errorf("otel-lb.yaml: backend %s; want otel-tail's OTLP/gRPC port %s", h, tailPort)
		}
	}
	checkPaths(t, "otel-tail.yaml", tail, map[string]string{
		policy(t, tail, "status_code") + ".status_code.status_codes":            "[ERROR]",
		policy(t, tail, "latency") + ".latency.threshold_ms":                    "500",
		policy(t, tail, "probabilistic") + ".probabilistic.sampling_percentage": "10",
		"exporters.otlp_http.endpoint":                                          "${env:TRACES_BACKEND:-http://tempo:4318}",
		"service.pipelines.traces.receivers":                                    "[otlp]",
		"service.pipelines.traces.processors":                                   "[tail_sampling]",
		"service.pipelines.traces.exporters":                                    "[otlp_http]",
	})

	cfg, err := config.Load(loadEnvFile(t, "sidetrace.env"))
	if err != nil {
		t.Fatalf("sidetrace.env: %v", err)
	}
	if cfg.Sampling.Sampler != "always_on" {
		t.Errorf("sidetrace.env: OTEL_TRACES_SAMPLER %q; want always_on (the collector decides)", cfg.Sampling.Sampler)
	}
	want := "http://otel-lb:" + port(lb["receivers.otlp.protocols.http.endpoint"]) + "/v1/traces"
	if got := cfg.Telemetry.TracesURL(); got != want {
		t.Errorf("sidetrace.env: traces go to %q; want otel-lb's OTLP/HTTP receiver %q", got, want)
	}

	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"OTEL_TRACES_SAMPLER=always_on", "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-lb:4318", "tail_sampling", "routing_key: traceID"} {
		if !strings.Contains(string(readme), s) {
			t.Errorf("README.md does not mention %q", s)
		}
	}
}
