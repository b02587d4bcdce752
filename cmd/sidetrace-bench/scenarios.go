package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// scenario is one way of reaching the upstream: directly, or through a proxy the driver starts.
type scenario struct {
	name     string
	about    string // one line for the table's legend
	h2c      bool   // the load generator speaks HTTP/2 with prior knowledge
	baseline string // scenario its ratios are computed against
	// check says why the scenario cannot run here ("" if it can); an error stops the whole run.
	check func(cfg runConfig) (skip string, err error)
	// start starts the target and returns once it is ready for load.
	start func(ctx context.Context, e *env) (*target, error)
}

// target is a started scenario.
type target struct {
	url  string
	proc *child // the proxy under test, measured from /proc; nil when there is none
}

func (t *target) stop() error {
	if t.proc == nil {
		return nil
	}
	return t.proc.stop(20 * time.Second)
}

var scenarios = []scenario{
	{
		name: "direct", about: "load generator straight to the upstream", baseline: "direct",
		start: func(_ context.Context, e *env) (*target, error) {
			return &target{url: "http://" + e.upstream + "/"}, nil
		},
	},
	{
		name: "nginx", about: "nginx, 1 worker, upstream keep-alive", baseline: "direct",
		check: checkNginx, start: startNginx,
	},
	{
		name: "sidetrace-off", about: "sidetrace, sampler always_off", baseline: "direct",
		check: checkSidetrace, start: sidetraceWith("always_off", false),
	},
	{
		name: "sidetrace", about: "sidetrace, sampler always_on, exporting OTLP/HTTP to a local receiver", baseline: "direct",
		check: checkSidetrace, start: sidetraceWith("always_on", false),
	},
	{
		name: "sidetrace-plugins", about: "sidetrace always_on with the plugins given by -plugins-env", baseline: "direct",
		check: func(cfg runConfig) (string, error) {
			if len(cfg.PluginsEnv) == 0 {
				return "no -plugins-env given", nil
			}
			return checkSidetrace(cfg)
		},
		start: sidetraceWith("always_on", true),
	},
	{
		name: "sidetrace-plugins-go", about: "sidetrace always_on with the plugins given by -plugins-go-env", baseline: "direct",
		check: func(cfg runConfig) (string, error) {
			if len(cfg.PluginsGoEnv) == 0 {
				return "no -plugins-go-env given", nil
			}
			return checkSidetrace(cfg)
		},
		start: sidetraceWithPlugins("always_on", true, true),
	},
	{
		name: "direct-h2c", about: "direct, HTTP/2 with prior knowledge", h2c: true, baseline: "direct-h2c",
		start: func(_ context.Context, e *env) (*target, error) {
			return &target{url: "http://" + e.upstream + "/"}, nil
		},
	},
	{
		name: "sidetrace-h2c", about: "sidetrace always_on, client to proxy over h2c", h2c: true, baseline: "direct-h2c",
		check: checkSidetrace, start: sidetraceWith("always_on", false),
	},
}

func scenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

func scenarioByName(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

func checkSidetrace(cfg runConfig) (string, error) {
	if cfg.Sidetrace == "" {
		return "", fmt.Errorf("-sidetrace BIN is required by the sidetrace scenarios (go build -o /tmp/sidetrace ./cmd/sidetrace)")
	}
	if _, err := exec.LookPath(cfg.Sidetrace); err != nil {
		return "", fmt.Errorf("-sidetrace: %w", err)
	}
	return "", nil
}

// sidetraceWith starts sidetrace configured through its environment, on the proxy CPUs with
// GOMAXPROCS=1, and waits for its admin /readyz.
func sidetraceWith(sampler string, plugins bool) func(context.Context, *env) (*target, error) {
	return sidetraceWithPlugins(sampler, plugins, false)
}

func sidetraceWithPlugins(sampler string, plugins, goPlugins bool) func(context.Context, *env) (*target, error) {
	return func(ctx context.Context, e *env) (*target, error) {
		inbound, err := freeAddr()
		if err != nil {
			return nil, err
		}
		admin, err := freeAddr()
		if err != nil {
			return nil, err
		}
		vars := []string{
			"GOMAXPROCS=1",
			"SIDETRACE_INBOUND_ADDR=" + inbound,
			"SIDETRACE_UPSTREAM=http://" + e.upstream,
			"SIDETRACE_ADMIN_ADDR=" + admin,
			"SIDETRACE_EGRESS_ADDR=off",
			"SIDETRACE_ACCESS_LOG=off",
			"OTEL_TRACES_SAMPLER=" + sampler,
			"OTEL_TRACES_EXPORTER=otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + e.receiver,
		}
		vars = append(vars, e.cfg.SidetraceEnv...)
		if plugins && goPlugins {
			vars = append(vars, e.cfg.PluginsGoEnv...)
		} else if plugins {
			vars = append(vars, e.cfg.PluginsEnv...)
		}
		c, err := startChild("sidetrace", e.pinned(e.cfg.ProxyCPUs, e.cfg.Sidetrace), vars, nil)
		if err != nil {
			return nil, err
		}
		if err := c.waitReady(ctx, 15*time.Second, httpOK("http://"+admin+"/readyz")); err != nil {
			c.stop(5 * time.Second)
			return nil, err
		}
		return &target{url: "http://" + inbound + "/", proc: c}, nil
	}
}

func checkNginx(cfg runConfig) (string, error) {
	if _, err := exec.LookPath(cfg.Nginx); err != nil {
		if cfg.RequireNginx {
			return "", fmt.Errorf("nginx not found (BENCH_REQUIRE_NGINX=1): apt-get install nginx-light")
		}
		return "nginx not found: apt-get install nginx-light to add this row", nil
	}
	return "", nil
}

// nginxConf proxies to the upstream the way a tuned sidecar would: one worker, HTTP/1.1 to the
// upstream over a pool of kept-alive connections, no access log, and no limit on requests per client
// connection so the load generator never has to reconnect.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`worker_processes 1;
daemon off;
master_process on;
error_log stderr warn;
pid {{.Dir}}/nginx.pid;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    upstream up {
        server {{.Upstream}};
        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen {{.Listen}} backlog=4096;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`))

func startNginx(ctx context.Context, e *env) (*target, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(e.tmp, "nginx-")
	if err != nil {
		return nil, err
	}
	var conf strings.Builder
	if err := nginxConf.Execute(&conf, map[string]string{"Dir": dir, "Upstream": e.upstream, "Listen": listen}); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	c, err := startChild("nginx", e.pinned(e.cfg.ProxyCPUs, e.cfg.Nginx, "-e", "stderr", "-p", dir, "-c", file), nil, nil)
	if err != nil {
		return nil, err
	}
	url := "http://" + listen + "/"
	if err := c.waitReady(ctx, 10*time.Second, httpOK(url)); err != nil {
		c.stop(5 * time.Second)
		return nil, err
	}
	return &target{url: url, proc: c}, nil
}

// receiverClient reads the counters of the receiver the driver started.
type receiverClient struct {
	url    string
	client *http.Client
}

func newReceiverClient(addr string) *receiverClient {
	return &receiverClient{url: "http://" + addr + "/stats", client: &http.Client{Timeout: 5 * time.Second}}
}

func (r *receiverClient) stats() (receiverStats, error) {
	var s receiverStats
	resp, err := r.client.Get(r.url)
	if err != nil {
		return s, fmt.Errorf("receiver: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("receiver: GET /stats: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("receiver: GET /stats: %w", err)
	}
	return s, nil
}
