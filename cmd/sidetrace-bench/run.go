package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runConfig is what the driver measures and how.
type runConfig struct {
	Sidetrace    string        // sidetrace binary for the sidetrace* scenarios
	SidetraceEnv []string      // extra KEY=VALUE for every sidetrace scenario
	PluginsEnv   []string      // extra KEY=VALUE for sidetrace-plugins
	Nginx        string        // nginx binary
	RequireNginx bool          // fail instead of skipping nginx when it is missing
	Scenarios    []string      // in the order they run within a round
	Conc         int           // closed loop: connections
	OpenConc     int           // open loop: connections
	Duration     time.Duration // per measured run
	Warmup       time.Duration // unmeasured load before each scenario's runs
	Rounds       int           // at least this many rounds
	MaxRounds    int           // at most this many, while req/s spread stays above Spread
	Spread       float64       // percent
	Rates        []float64     // open-loop rates; none for closed loop only
	Size         int           // response body bytes
	ProxyCPUs    string        // taskset list for the proxy under test
	LoadCPUs     string        // taskset list for the load generator, upstream and receiver
	Pin          bool
	JSONOut      string // file for the raw measurements
	Quick        bool
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var cfg runConfig
	fs.StringVar(&cfg.Sidetrace, "sidetrace", "", "sidetrace binary (required by the sidetrace* scenarios)")
	sidetraceEnv := fs.String("sidetrace-env", "", "extra environment for sidetrace, KEY=VALUE separated by spaces")
	pluginsEnv := fs.String("plugins-env", "", "extra environment for scenario sidetrace-plugins, KEY=VALUE separated by spaces")
	fs.StringVar(&cfg.Nginx, "nginx", "nginx", "nginx binary")
	scenarios := fs.String("scenarios", "direct,nginx,sidetrace-off,sidetrace",
		"comma-separated scenarios: "+strings.Join(scenarioNames(), ", "))
	fs.IntVar(&cfg.Conc, "c", 32, "closed loop: concurrent connections")
	fs.IntVar(&cfg.OpenConc, "open-c", 64, "open loop: connections available to the schedule")
	fs.DurationVar(&cfg.Duration, "d", 5*time.Second, "duration of each measured run")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured load before measuring each scenario")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each runs every scenario once, interleaved")
	fs.IntVar(&cfg.MaxRounds, "max-rounds", 5, "keep adding rounds up to this many while the req/s spread of a scenario is above -spread")
	fs.Float64Var(&cfg.Spread, "spread", 5, "target spread of req/s across rounds, in percent of the median")
	rates := fs.String("rates", "", "open-loop rates in req/s, comma-separated (e.g. 1000,5000); empty: closed loop only")
	fs.IntVar(&cfg.Size, "size", 1024, "response body bytes")
	fs.StringVar(&cfg.ProxyCPUs, "proxy-cpus", "0", "CPUs for the proxy under test (taskset -c)")
	fs.StringVar(&cfg.LoadCPUs, "load-cpus", "1", "CPUs for the load generator, upstream and receiver (taskset -c)")
	noPin := fs.Bool("no-pin", false, "do not pin processes to CPUs")
	fs.StringVar(&cfg.JSONOut, "json", "", "also write every measurement to this file as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.SidetraceEnv = strings.Fields(*sidetraceEnv)
	cfg.PluginsEnv = strings.Fields(*pluginsEnv)
	cfg.RequireNginx = os.Getenv("BENCH_REQUIRE_NGINX") == "1"
	for s := range strings.SplitSeq(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Scenarios = append(cfg.Scenarios, s)
		}
	}
	for s := range strings.SplitSeq(*rates, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("-rates: %q is not a positive number", s)
		}
		cfg.Rates = append(cfg.Rates, r)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if os.Getenv("BENCH_QUICK") == "1" {
		cfg.Quick = true
		if !set["d"] {
			cfg.Duration = 2 * time.Second
		}
		if !set["warmup"] {
			cfg.Warmup = 300 * time.Millisecond
		}
		if !set["rounds"] {
			cfg.Rounds = 1
		}
		if !set["max-rounds"] {
			cfg.MaxRounds = cfg.Rounds
		}
	}
	cfg.MaxRounds = max(cfg.MaxRounds, cfg.Rounds)
	_, err := exec.LookPath("taskset")
	cfg.Pin = !*noPin && err == nil && runtime.NumCPU() >= 2
	if !*noPin && !cfg.Pin {
		fmt.Fprintln(stderr, "not pinning to CPUs: needs taskset and at least 2 CPUs")
	}
	rep, err := runBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.JSONOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.JSONOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return rep.writeMarkdown(stdout)
}

// measurement is one scenario measured once: a closed-loop run and the open-loop runs, with what the
// proxy process used meanwhile.
type measurement struct {
	Round   int             `json:"round"`
	Closed  loadResult      `json:"closed"`
	Open    []loadResult    `json:"open,omitempty"`
	CPU     time.Duration   `json:"cpu_ns,omitempty"`      // proxy CPU during the closed-loop run
	OpenCPU []time.Duration `json:"open_cpu_ns,omitempty"` // proxy CPU during each open-loop run
	HWMKiB  uint64          `json:"peak_rss_kib,omitempty"`
	Export  receiverStats   `json:"export"` // what the receiver got during the closed-loop run
}

// report holds every measurement of a run of the driver.
type report struct {
	Config  runConfig                `json:"config"`
	Machine string                   `json:"machine"`
	Skipped map[string]string        `json:"skipped,omitempty"` // scenario: why
	Results map[string][]measurement `json:"results"`
	Rounds  int                      `json:"rounds"`
	Elapsed time.Duration            `json:"elapsed_ns"`
}

// env is what the scenarios share within one run of the driver.
type env struct {
	cfg      runConfig
	self     string // this binary, to start the other roles
	upstream string // host:port
	receiver string // host:port
	rc       *receiverClient
	tmp      string
}

// pinned prefixes argv with taskset when pinning is on.
func (e *env) pinned(cpus string, argv ...string) []string {
	if !e.cfg.Pin {
		return argv
	}
	return append([]string{"taskset", "-c", cpus}, argv...)
}

// selfEnv marks a child started from this binary, so that a test binary standing in for it dispatches
// to the command instead of running its tests.
var selfEnv = []string{"SIDETRACE_BENCH_AS_MAIN=1"}

func runBench(ctx context.Context, cfg runConfig, progress io.Writer) (*report, error) {
	began := time.Now()
	if len(cfg.Scenarios) == 0 {
		return nil, errors.New("no scenarios")
	}
	if cfg.Rounds < 1 || cfg.Conc < 1 || cfg.Duration <= 0 {
		return nil, errors.New("-rounds, -c and -d must be positive")
	}
	scs := make([]scenario, 0, len(cfg.Scenarios))
	rep := &report{Config: cfg, Machine: machine(), Skipped: map[string]string{}, Results: map[string][]measurement{}}
	for _, name := range cfg.Scenarios {
		sc, ok := scenarioByName(name)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q; known: %s", name, strings.Join(scenarioNames(), ", "))
		}
		if sc.check != nil {
			if why, err := sc.check(cfg); err != nil {
				return nil, err
			} else if why != "" {
				rep.Skipped[name] = why
				continue
			}
		}
		scs = append(scs, sc)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "sidetrace-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	e := &env{cfg: cfg, self: self, tmp: tmp}

	// The upstream and the receiver live for the whole run, on the load generator's CPUs.
	if e.upstream, err = freeAddr(); err != nil {
		return nil, err
	}
	up, err := startChild("upstream", e.pinned(cfg.LoadCPUs, self, "upstream", "-addr", e.upstream, "-size", strconv.Itoa(cfg.Size)), selfEnv, nil)
	if err != nil {
		return nil, err
	}
	defer up.stop(5 * time.Second)
	if err := up.waitReady(ctx, 10*time.Second, tcpOpen(e.upstream)); err != nil {
		return nil, err
	}
	if e.receiver, err = freeAddr(); err != nil {
		return nil, err
	}
	recv, err := startChild("receiver", e.pinned(cfg.LoadCPUs, self, "receiver", "-addr", e.receiver), selfEnv, nil)
	if err != nil {
		return nil, err
	}
	defer recv.stop(5 * time.Second)
	e.rc = newReceiverClient(e.receiver)
	defer e.rc.client.CloseIdleConnections()
	if err := recv.waitReady(ctx, 10*time.Second, httpOK("http://"+e.receiver+"/stats")); err != nil {
		return nil, err
	}

	for round := 1; round <= cfg.MaxRounds; round++ {
		if round > cfg.Rounds && rep.stable(cfg.Spread) {
			break
		}
		for _, sc := range scs {
			m, err := measure(ctx, e, sc, round)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, sc.name, err)
			}
			fmt.Fprintf(progress, "round %d/%d %-16s %s\n", round, cfg.Rounds, sc.name, m.Closed)
			for _, o := range m.Open {
				fmt.Fprintf(progress, "round %d/%d %-16s %s\n", round, cfg.Rounds, sc.name, o)
			}
			rep.Results[sc.name] = append(rep.Results[sc.name], m)
		}
		rep.Rounds = round
	}
	rep.Elapsed = time.Since(began)
	return rep, nil
}

// measure starts the scenario's target, warms it up, measures it and stops it.
func measure(ctx context.Context, e *env, sc scenario, round int) (measurement, error) {
	m := measurement{Round: round}
	t, err := sc.start(ctx, e)
	if err != nil {
		return m, err
	}
	defer t.stop()
	loadArgs := []string{"-url", t.url}
	if sc.h2c {
		loadArgs = append(loadArgs, "-h2c")
	}
	closedArgs := append(slices.Clone(loadArgs), "-c", strconv.Itoa(e.cfg.Conc))
	if e.cfg.Warmup > 0 {
		if _, err := runLoadChild(ctx, e, append(slices.Clone(closedArgs), "-d", e.cfg.Warmup.String())); err != nil {
			return m, fmt.Errorf("warm-up: %w", err)
		}
	}
	// sample runs a load and returns what the proxy used meanwhile.
	sample := func(args []string) (loadResult, time.Duration, error) {
		var before procUsage
		if t.proc != nil {
			if before, err = readProcUsage(t.proc.pid()); err != nil {
				return loadResult{}, 0, err
			}
		}
		res, err := runLoadChild(ctx, e, args)
		if err != nil {
			return res, 0, err
		}
		if t.proc == nil {
			return res, 0, nil
		}
		if t.proc.exited() {
			return res, 0, t.proc.failure()
		}
		after, err := readProcUsage(t.proc.pid())
		if err != nil {
			return res, 0, err
		}
		m.HWMKiB = max(m.HWMKiB, after.HWMKiB)
		return res, ticksToDuration(after.CPUTicks - before.CPUTicks), nil
	}

	exportBefore, err := e.rc.stats()
	if err != nil {
		return m, err
	}
	if m.Closed, m.CPU, err = sample(append(closedArgs, "-d", e.cfg.Duration.String())); err != nil {
		return m, err
	}
	exportAfter, err := e.rc.stats()
	if err != nil {
		return m, err
	}
	m.Export = receiverStats{
		Requests: exportAfter.Requests - exportBefore.Requests,
		Spans:    exportAfter.Spans - exportBefore.Spans,
		Bytes:    exportAfter.Bytes - exportBefore.Bytes,
		Errors:   exportAfter.Errors - exportBefore.Errors,
	}
	for _, rate := range e.cfg.Rates {
		args := append(slices.Clone(loadArgs), "-c", strconv.Itoa(e.cfg.OpenConc),
			"-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-d", e.cfg.Duration.String())
		res, cpu, err := sample(args)
		if err != nil {
			return m, err
		}
		m.Open = append(m.Open, res)
		m.OpenCPU = append(m.OpenCPU, cpu)
	}
	return m, nil
}

// runLoadChild runs "sidetrace-bench load" pinned to the load CPUs and returns its result.
func runLoadChild(ctx context.Context, e *env, args []string) (loadResult, error) {
	var out bytes.Buffer
	argv := e.pinned(e.cfg.LoadCPUs, append([]string{e.self, "load", "-json"}, args...)...)
	c, err := startChild("load", argv, selfEnv, &out)
	if err != nil {
		return loadResult{}, err
	}
	if err := c.wait(ctx); err != nil {
		return loadResult{}, err
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return res, fmt.Errorf("load: reading its result %q: %w", out.String(), err)
	}
	return res, nil
}

// stable reports whether every scenario's closed-loop req/s spread is within spread percent.
func (r *report) stable(spread float64) bool {
	for _, ms := range r.Results {
		if s := summarize(ms); s.rpsSpread > spread {
			return false
		}
	}
	return true
}

func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	s := fmt.Sprintf("%d CPUs", runtime.NumCPU())
	if model != "" {
		s += " (" + model + ")"
	}
	return s + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
