package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLoad_Defaults(t *testing.T) {
	c, err := Load([]string{"SIDETRACE_UPSTREAM=http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"InboundAddr", c.Proxy.InboundAddr, "0.0.0.0:15006"},
		{"EgressAddr", c.Proxy.EgressAddr, "127.0.0.1:15001"},
		{"AdminAddr", c.Proxy.AdminAddr, "127.0.0.1:15000"},
		{"StoreTraces", c.Telemetry.StoreTraces, 1000},
		{"Sampler", c.Sampling.Sampler, "parentbased_always_on"},
		{"Inject", c.Telemetry.Inject, "preserve,tracecontext"},
		{"TrustIncoming", c.Sampling.TrustIncoming, true},
		{"DrainTimeout", c.Proxy.DrainTimeout, 15 * time.Second},
		{"PluginTimeout", c.Plugins.Timeout, 5 * time.Millisecond},
		{"MemoryLimit", c.Plugins.MemoryLimit, ByteSize(64 << 20)},
		{"TracesURL", c.Telemetry.TracesURL(), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, tc.got, tc.want)
		}
	}
}

// A bad value is one line naming the variable and the problem.
func TestLoad_Errors(t *testing.T) {
	up := "SIDETRACE_UPSTREAM=http://127.0.0.1:8080"
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "SIDETRACE_UPSTREAM: required"},
		{[]string{"SIDETRACE_UPSTREAM=ftp://x"}, `SIDETRACE_UPSTREAM: "ftp://x" is not an http:// URL with a host`},
		{[]string{up, "SIDETRACE_INBOUND_ADDR=15006"}, `SIDETRACE_INBOUND_ADDR: "15006" is not HOST:PORT`},
		{[]string{up, "SIDETRACE_ADMIN_ADDR=localhost:99999"}, `SIDETRACE_ADMIN_ADDR: "localhost:99999" has no valid port`},
		{[]string{up, "SIDETRACE_DIAL_TIMEOUT=soon"}, `SIDETRACE_DIAL_TIMEOUT: "soon" is not a valid duration`},
		{[]string{up, "SIDETRACE_UPSTREAM_TIMEOUT=0s"}, "SIDETRACE_UPSTREAM_TIMEOUT: 0s must be positive"},
		{[]string{up, "SIDETRACE_STORE_TRACES=-1"}, "SIDETRACE_STORE_TRACES: -1 is below the minimum 1"},
		{[]string{up, "SIDETRACE_STORE_TRACES=many"}, `SIDETRACE_STORE_TRACES: "many" is not a valid whole number`},
		{[]string{up, "SIDETRACE_TRUST_INCOMING=maybe"}, `SIDETRACE_TRUST_INCOMING: "maybe" is not a valid boolean`},
		{[]string{up, "SIDETRACE_ACCESS_LOG=verbose"}, `SIDETRACE_ACCESS_LOG: "verbose" is not on or off`},
		{[]string{up, "SIDETRACE_UPSTREAM_PROTOCOL=h3"}, `SIDETRACE_UPSTREAM_PROTOCOL: "h3" is not auto, http1 or h2c`},
		{[]string{up, "SIDETRACE_EGRESS_ROUTES=127.0.0.1:1=http://a:1,broken"}, `SIDETRACE_EGRESS_ROUTES: entry "broken" is not LISTEN_ADDR=UPSTREAM_URL`},
		{[]string{up, "SIDETRACE_EGRESS_ROUTES=127.0.0.1:1=http://a:1;retries=3"}, `SIDETRACE_EGRESS_ROUTES: entry "127.0.0.1:1=http://a:1;retries=3": option "retries=3" is not inject=FORMATS`},
		{[]string{up, "OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318"}, `OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" is not an http:// or https:// URL`},
		{[]string{up, "OTEL_EXPORTER_OTLP_HEADERS=api-key"}, `OTEL_EXPORTER_OTLP_HEADERS: "api-key" is not key=value`},
		{[]string{up, "OTEL_RESOURCE_ATTRIBUTES=team=%zz"}, `OTEL_RESOURCE_ATTRIBUTES: value of "team"`},
		{[]string{up, "OTEL_BSP_MAX_QUEUE_SIZE=10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=20"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 20 is larger than OTEL_BSP_MAX_QUEUE_SIZE (10)"},
		{[]string{up, "SIDETRACE_PLUGIN_MEMORY_LIMIT=lots"}, `SIDETRACE_PLUGIN_MEMORY_LIMIT: "lots" is not a valid size`},
		{[]string{up, "SIDETRACE_PLUGINS=[{"}, "SIDETRACE_PLUGINS: not valid JSON"},
		{[]string{up, "SIDETRACE_PLUGINS_FILE=/does/not/exist"}, "SIDETRACE_PLUGINS_FILE: stat /does/not/exist: no such file or directory"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Load(tc.env)
			if err == nil {
				t.Fatalf("got no error; want %q", tc.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("got %q; want one line starting %q", msg, tc.want)
			}
		})
	}
}

func TestLoad_InboundOffNeedsNoUpstream(t *testing.T) {
	if _, err := Load([]string{"SIDETRACE_INBOUND_ADDR=off"}); err != nil {
		t.Errorf("got %v; want no error", err)
	}
}

func TestTelemetry_TracesURLAndHeaders(t *testing.T) {
	c, err := Load([]string{"SIDETRACE_INBOUND_ADDR=off", "OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318/",
		"OTEL_EXPORTER_OTLP_HEADERS=api-key=abc%20def,tenant=a", "OTEL_EXPORTER_OTLP_TRACES_HEADERS=tenant=b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Telemetry.TracesURL(); got != "http://collector:4318/v1/traces" {
		t.Errorf("TracesURL: got %q", got)
	}
	h := c.Telemetry.ExportHeaders()
	if h["api-key"] != "abc def" || h["tenant"] != "b" {
		t.Errorf("headers: got %v; want api-key decoded and the traces-specific tenant", h)
	}
	c.Telemetry.TracesEndpoint = "http://other:4318/custom"
	if got := c.Telemetry.TracesURL(); got != "http://other:4318/custom" {
		t.Errorf("TracesURL with the traces endpoint: got %q", got)
	}
}

func TestRoutes(t *testing.T) {
	p := Proxy{EgressRoutes: "127.0.0.1:16001=http://orders:8080, 127.0.0.1:16002=http://legacy:9411/api;inject=b3multi"}
	rs, err := p.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Listen != "127.0.0.1:16001" || rs[0].Upstream.String() != "http://orders:8080" || rs[1].Inject != "b3multi" || rs[1].Upstream.Path != "/api" {
		t.Errorf("got %+v", rs)
	}
}

// Every variable appears in the help, with its default, because both come from the same struct tags.
func TestUsage_ListsEveryVariable(t *testing.T) {
	var b bytes.Buffer
	Usage(&b)
	for _, f := range fields() {
		if f.help == "" {
			t.Errorf("%s has no help tag", f.env)
		}
		line := ""
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), f.env+" ") {
				line = l
			}
		}
		if line == "" || (f.def != "" && !strings.Contains(line, f.def)) {
			t.Errorf("help line for %s: %q; want it with default %q", f.env, line, f.def)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"16MiB": 16 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "4096": 4096, "10 MiB": 10 << 20} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("%q: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "1TB", "MiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q: got no error", in)
		}
	}
}
