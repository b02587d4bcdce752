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
	PluginsGoEnv []string      // extra KEY=VALUE for sidetrace-plugins-go
	Nginx        string        // nginx binary
	RequireNginx bool          // fail instead of skipping nginx when it is missing
	Scenarios    []string      // in the order they run within a round
	Conc         int           // closed loop: connections
	OpenConc     int           // open loop: connections
	Duration     time.Duration // per measured run
	ClosedD      time.Duration // per closed-loop run; Duration when zero
	Warmup       time.Duration // unmeasured load before each scenario's runs
	Rounds       int           // at least this many rounds
	MaxRounds    int           // at most this many, while req/s spread stays above Spread
	Spread       float64       // percent
	MaxForeign   float64       // percent of the machine other processes may use during a kept run
	Budget       time.Duration // no extra round once it would end after this
	Rates        []float64     // open-loop rates; none for closed loop only
	Interleave   bool          // open loop through a proxy: direct requests interleaved, for the added latency
	Size         int           // response body bytes
	ProxyCPUs    string        // taskset list for the proxy under test
	LoadCPUs     string        // taskset list for the load generator, upstream and receiver
	Pin          bool
	Nice         int    // niceness of every process of the benchmark; negative favours it over the rest of the machine
	JSONOut      string // file for the raw measurements
	Quick        bool
	// Paired runs: nginx and each of these scenarios run side by side on the proxy CPUs, the open-loop
	// load at PairedRate switching between them every Slice (load -alt-url), so that their added
	// latencies come from the same moments. Once per round, when nginx is among the scenarios.
	Paired     []string
	PairedRate float64       // 0: no paired runs
	PairedD    time.Duration // Duration when zero
	Slice      time.Duration
	Settle     time.Duration // the start of each slice, not counted
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sidetrace-bench run -sidetrace BIN [flags]

Starts an upstream and an OTLP receiver, then for each round runs every scenario in turn: starts the
proxy under test (pinned to -proxy-cpus), warms it up, measures a closed-loop run at -c connections
and an open-loop run at each of -rates, reads its CPU time and peak RSS from /proc, and stops it.
Prints Markdown tables of the medians. BENCH_QUICK=1: one round of 2s runs (a smoke test).
BENCH_REQUIRE_NGINX=1: fail instead of skipping the nginx row when nginx is missing.

`)
		fs.PrintDefaults()
	}
	var cfg runConfig
	fs.StringVar(&cfg.Sidetrace, "sidetrace", "", "sidetrace binary (required by the sidetrace* scenarios)")
	fs.Func("sidetrace-env", "extra `KEY=VALUE` in the environment of every sidetrace scenario (repeatable)", appendEnv(&cfg.SidetraceEnv))
	fs.Func("plugins-env", "extra `KEY=VALUE` for scenario sidetrace-plugins (repeatable), e.g. SIDETRACE_PLUGINS_FILE=bench/plugins.json", appendEnv(&cfg.PluginsEnv))
	fs.Func("plugins-go-env", "extra `KEY=VALUE` for scenario sidetrace-plugins-go (repeatable), e.g. SIDETRACE_PLUGINS_FILE=bench/plugins-go.json", appendEnv(&cfg.PluginsGoEnv))
	fs.StringVar(&cfg.Nginx, "nginx", "nginx", "nginx binary")
	scenarios := fs.String("scenarios", "direct,nginx,sidetrace-off,sidetrace",
		"comma-separated scenarios: "+strings.Join(scenarioNames(), ", "))
	fs.IntVar(&cfg.Conc, "c", 32, "closed loop: concurrent connections")
	fs.IntVar(&cfg.OpenConc, "open-c", 64, "open loop: connections available to the schedule")
	fs.BoolVar(&cfg.Interleave, "interleave", true, "open loop through a proxy: send a direct request to the upstream between every two proxied ones and take the added p99 from the same run (false: from separate runs of the direct scenario)")
	fs.DurationVar(&cfg.Duration, "d", 5*time.Second, "duration of each measured run")
	fs.DurationVar(&cfg.ClosedD, "closed-d", 0, "duration of each closed-loop run (default -d), e.g. shorter when only the open loop's latency is wanted")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured load before measuring each scenario")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each runs every scenario once, interleaved")
	fs.IntVar(&cfg.MaxRounds, "max-rounds", 5, "keep adding rounds up to this many while a scenario's req/s spread is above -spread or it lacks undisturbed runs")
	fs.DurationVar(&cfg.Budget, "budget", 9*time.Minute, "start no round beyond -rounds that would end after this much time")
	fs.Float64Var(&cfg.Spread, "spread", 5, "target spread of req/s across rounds, in percent of the median")
	fs.Float64Var(&cfg.MaxForeign, "max-foreign", 10, "leave out runs during which other processes used more than this percentage of the CPUs in use (and add rounds for them)")
	rates := fs.String("rates", "1000,5000", "open-loop rates in req/s, comma-separated; empty: closed loop only")
	fs.IntVar(&cfg.Size, "size", 1024, "response body bytes")
	fs.StringVar(&cfg.ProxyCPUs, "proxy-cpus", "", "CPUs for the proxy under test (taskset -c list; default the first CPU this process may use)")
	fs.StringVar(&cfg.LoadCPUs, "load-cpus", "", "CPUs for the load generator, upstream and receiver (taskset -c list; default the second)")
	noPin := fs.Bool("no-pin", false, "do not pin processes to CPUs")
	fs.IntVar(&cfg.Nice, "nice", 0, "run every process of the benchmark with this niceness (e.g. -10, as root, on a shared machine)")
	fs.StringVar(&cfg.JSONOut, "json", "", "also write every measurement to this file as JSON")
	paired := fs.String("paired", "sidetrace,sidetrace-plugins", "scenarios also measured side by side with nginx, the load alternating between the two (with nginx among -scenarios; empty: none)")
	fs.Float64Var(&cfg.PairedRate, "paired-rate", 1000, "open-loop rate of the paired runs, in req/s (0: none)")
	fs.DurationVar(&cfg.PairedD, "paired-d", 0, "duration of each paired run, half of it for each proxy (default -d)")
	fs.DurationVar(&cfg.Slice, "slice", time.Second, "paired runs: how long one proxy keeps the load before the other takes it")
	fs.DurationVar(&cfg.Settle, "settle", 100*time.Millisecond, "paired runs: requests in the first part of each slice are sent but not counted (a proxy idle for a slice starts the next one cold)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.RequireNginx = os.Getenv("BENCH_REQUIRE_NGINX") == "1"
	for s := range strings.SplitSeq(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Scenarios = append(cfg.Scenarios, s)
		}
	}
	for s := range strings.SplitSeq(*paired, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Paired = append(cfg.Paired, s)
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
	if !*noPin {
		cpus, err := allowedCPUs()
		_, tasksetErr := exec.LookPath("taskset")
		switch {
		case err != nil || tasksetErr != nil || len(cpus) < 2:
			fmt.Fprintln(stderr, "not pinning to CPUs: needs taskset and at least 2 CPUs")
		default:
			cfg.Pin = true
			if cfg.ProxyCPUs == "" {
				cfg.ProxyCPUs = strconv.Itoa(cpus[0])
			}
			if cfg.LoadCPUs == "" {
				cfg.LoadCPUs = strconv.Itoa(cpus[1])
			}
		}
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

// appendEnv returns a flag function that appends a KEY=VALUE to env.
func appendEnv(env *[]string) func(string) error {
	return func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%q: want KEY=VALUE", kv)
		}
		*env = append(*env, kv)
		return nil
	}
}

// measurement is one scenario measured once: a closed-loop run and the open-loop runs, with what the
// proxy process used meanwhile.
type measurement struct {
	Round    int             `json:"round"`
	Closed   loadResult      `json:"closed"`
	Open     []loadResult    `json:"open,omitempty"`
	CPU      time.Duration   `json:"cpu_ns,omitempty"`      // proxy CPU during the closed-loop run
	OpenCPU  []time.Duration `json:"open_cpu_ns,omitempty"` // proxy CPU during each open-loop run
	HWMKiB   uint64          `json:"peak_rss_kib,omitempty"`
	Export   receiverStats   `json:"export"`   // what the receiver got from the proxy, start to stop
	Answered uint64          `json:"answered"` // requests the proxy answered, warm-up included
	// Share of the machine's CPU time that went to other processes during the closed-loop run
	// and during each open-loop run.
	Foreign     float64   `json:"foreign_cpu"`
	OpenForeign []float64 `json:"open_foreign_cpu,omitempty"`
}

// report holds every measurement of a run of the driver.
type report struct {
	Config  runConfig                `json:"config"`
	Machine string                   `json:"machine"`
	Skipped map[string]string        `json:"skipped,omitempty"` // scenario: why
	Results map[string][]measurement `json:"results"`
	Paired  map[string][]pairedRun   `json:"paired,omitempty"` // scenario: its runs side by side with nginx
	Rounds  int                      `json:"rounds"`
	Elapsed time.Duration            `json:"elapsed_ns"`
}

// env is what the scenarios share within one run of the driver.
type env struct {
	cfg                      runConfig
	self                     string // this binary, to start the other roles
	upstream                 string // host:port
	receiver                 string // host:port
	upstreamPid, receiverPid int
	// CPUs the load generator and the proxy are pinned to, nil if they are not: what a run uses of the
	// machine, and so where other processes' work disturbs it.
	loadCPUs, proxyCPUs []int
	rc                  *receiverClient
	tmp                 string
}

// pinned prefixes argv with taskset when pinning is on.
// and with nice when a niceness is set.
func (e *env) pinned(cpus string, argv ...string) []string {
	if e.cfg.Pin {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	if e.cfg.Nice != 0 {
		argv = append([]string{"nice", "-n", strconv.Itoa(e.cfg.Nice)}, argv...)
	}
	return argv
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
	if cfg.Pin {
		if e.loadCPUs, err = parseCPUList(cfg.LoadCPUs); err != nil {
			return nil, fmt.Errorf("-load-cpus: %w", err)
		}
		if e.proxyCPUs, err = parseCPUList(cfg.ProxyCPUs); err != nil {
			return nil, fmt.Errorf("-proxy-cpus: %w", err)
		}
	}

	// The upstream and the receiver live for the whole run, on the load generator's CPUs.
	if e.upstream, err = freeAddr(); err != nil {
		return nil, err
	}
	up, err := startChild("upstream", e.pinned(cfg.LoadCPUs, self, "upstream", "-addr", e.upstream, "-size", strconv.Itoa(cfg.Size)), selfEnv, nil)
	if err != nil {
		return nil, err
	}
	defer up.stop(5 * time.Second)
	e.upstreamPid = up.pid()
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
	e.receiverPid = recv.pid()
	e.rc = newReceiverClient(e.receiver)
	defer e.rc.client.CloseIdleConnections()
	if err := recv.waitReady(ctx, 10*time.Second, httpOK("http://"+e.receiver+"/stats")); err != nil {
		return nil, err
	}

	for round := 1; round <= cfg.MaxRounds; round++ {
		if round > cfg.Rounds {
			if rep.stable() {
				break
			}
			elapsed := time.Since(began)
			if perRound := elapsed / time.Duration(round-1); cfg.Budget > 0 && elapsed+perRound > cfg.Budget {
				fmt.Fprintf(progress, "not stable after %d rounds, but another would exceed the %s budget\n", round-1, cfg.Budget)
				break
			}
		}
		for _, sc := range scs {
			m, err := measure(ctx, e, sc, round)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, sc.name, err)
			}
			fmt.Fprintf(progress, "round %d %-16s %s; other processes %.0f%% CPU\n", round, sc.name, m.Closed, m.Foreign*100)
			for i, o := range m.Open {
				fmt.Fprintf(progress, "round %d %-16s %s; other processes %.0f%% CPU\n", round, sc.name, o, m.OpenForeign[i]*100)
			}
			rep.Results[sc.name] = append(rep.Results[sc.name], m)
		}
		if err := runPaired(ctx, e, scs, round, rep, progress); err != nil {
			return nil, err
		}
		rep.Rounds = round
	}
	rep.Elapsed = time.Since(began)
	return rep, nil
}

// measure starts the scenario's target, warms it up, measures it and stops it.
func measure(ctx context.Context, e *env, sc scenario, round int) (measurement, error) {
	m := measurement{Round: round}
	// Spans are counted from before the proxy starts to after it stops, when it has flushed its
	// exporter, and compared with every request it answered.
	exportBefore, err := e.rc.stats()
	if err != nil {
		return m, err
	}
	t, err := sc.start(ctx, e)
	if err != nil {
		return m, err
	}
	defer t.stop()
	answered := func(r loadResult) { m.Answered += r.Requests + r.Non2xx }
	loadArgs := []string{"-url", t.url}
	if sc.h2c {
		loadArgs = append(loadArgs, "-h2c")
	}
	closedArgs := append(slices.Clone(loadArgs), "-c", strconv.Itoa(e.cfg.Conc))
	if e.cfg.Warmup > 0 {
		res, _, err := runLoadChild(ctx, e, append(slices.Clone(closedArgs), "-d", e.cfg.Warmup.String()))
		if err != nil {
			return m, fmt.Errorf("warm-up: %w", err)
		}
		answered(res)
	}
	// sample runs a load and returns what the proxy used meanwhile, and how much of the machine
	// went to processes that are not part of the benchmark.
	sample := func(args []string) (res loadResult, proxyCPU time.Duration, foreign float64, err error) {
		before, err := e.usage(t.proc)
		if err != nil {
			return res, 0, 0, err
		}
		res, loadCPU, err := runLoadChild(ctx, e, args)
		if err != nil {
			return res, 0, 0, err
		}
		answered(res)
		if t.proc != nil && t.proc.exited() {
			return res, 0, 0, t.proc.failure()
		}
		after, err := e.usage(t.proc)
		if err != nil {
			return res, 0, 0, err
		}
		m.HWMKiB = max(m.HWMKiB, after.proxy.HWMKiB)
		return res, ticksToDuration(after.proxy.CPUTicks - before.proxy.CPUTicks), after.foreignSince(before, loadCPU), nil
	}

	closedD := e.cfg.Duration
	if e.cfg.ClosedD > 0 {
		closedD = e.cfg.ClosedD
	}
	if m.Closed, m.CPU, m.Foreign, err = sample(append(closedArgs, "-d", closedD.String())); err != nil {
		return m, err
	}
	for _, rate := range e.cfg.Rates {
		args := append(slices.Clone(loadArgs), "-c", strconv.Itoa(e.cfg.OpenConc),
			"-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-d", e.cfg.Duration.String())
		if t.proc != nil && e.cfg.Interleave {
			// Direct requests interleaved with the proxied ones: the added latency from the same moments.
			args = append(args, "-baseline-url", "http://"+e.upstream+"/")
		}
		res, cpu, foreign, err := sample(args)
		if err != nil {
			return m, err
		}
		m.Open = append(m.Open, res)
		m.OpenCPU = append(m.OpenCPU, cpu)
		m.OpenForeign = append(m.OpenForeign, foreign)
	}
	if err := t.stop(); err != nil {
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
	return m, nil
}

// pairedRun is one paired run: nginx (the load's first target) and a sidetrace scenario (its second),
// the load alternating between them.
type pairedRun struct {
	Round   int        `json:"round"`
	Load    loadResult `json:"load"`
	Foreign float64    `json:"foreign_cpu"`
}

// runPaired measures each of the paired scenarios side by side with nginx, once, when nginx runs.
func runPaired(ctx context.Context, e *env, scs []scenario, round int, rep *report, progress io.Writer) error {
	i := slices.IndexFunc(scs, func(sc scenario) bool { return sc.name == "nginx" })
	if i < 0 || e.cfg.PairedRate <= 0 {
		return nil
	}
	for _, sc := range scs {
		if sc.h2c || !slices.Contains(e.cfg.Paired, sc.name) || sc.name == "nginx" {
			continue
		}
		p, err := measurePaired(ctx, e, scs[i], sc, round)
		if err != nil {
			return fmt.Errorf("round %d, nginx paired with %s: %w", round, sc.name, err)
		}
		fmt.Fprintf(progress, "round %d nginx|%s %s; other processes %.0f%% CPU\n", round, sc.name, p.Load, p.Foreign*100)
		if rep.Paired == nil {
			rep.Paired = map[string][]pairedRun{}
		}
		rep.Paired[sc.name] = append(rep.Paired[sc.name], p)
	}
	return nil
}

// measurePaired starts a and b side by side, warms each up, and runs the open-loop load at the paired
// rate, alternating between them with direct requests interleaved.
func measurePaired(ctx context.Context, e *env, a, b scenario, round int) (pairedRun, error) {
	p := pairedRun{Round: round}
	ta, err := a.start(ctx, e)
	if err != nil {
		return p, err
	}
	defer ta.stop()
	tb, err := b.start(ctx, e)
	if err != nil {
		return p, err
	}
	defer tb.stop()
	if e.cfg.Warmup > 0 {
		for _, t := range []*target{ta, tb} {
			if _, _, err := runLoadChild(ctx, e, []string{"-url", t.url, "-c", strconv.Itoa(e.cfg.Conc), "-d", e.cfg.Warmup.String()}); err != nil {
				return p, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	d := e.cfg.PairedD
	if d <= 0 {
		d = e.cfg.Duration
	}
	before, err := e.usage(ta.proc, tb.proc)
	if err != nil {
		return p, err
	}
	res, loadCPU, err := runLoadChild(ctx, e, []string{"-url", ta.url, "-alt-url", tb.url, "-slice", e.cfg.Slice.String(), "-settle", e.cfg.Settle.String(),
		"-baseline-url", "http://" + e.upstream + "/", "-c", strconv.Itoa(e.cfg.OpenConc),
		"-rate", strconv.FormatFloat(e.cfg.PairedRate, 'f', -1, 64), "-d", d.String()})
	if err != nil {
		return p, err
	}
	for _, t := range []*target{ta, tb} {
		if t.proc != nil && t.proc.exited() {
			return p, t.proc.failure()
		}
	}
	after, err := e.usage(ta.proc, tb.proc)
	if err != nil {
		return p, err
	}
	p.Load, p.Foreign = res, after.foreignSince(before, loadCPU)
	return p, errors.Join(ta.stop(), tb.stop())
}

// usageSnapshot is the CPU time used so far by the machine and by the benchmark's own processes.
type usageSnapshot struct {
	hostBusy, hostTotal uint64    // ticks, all CPUs, from /proc/stat
	ours                uint64    // ticks of the driver, upstream, receiver and proxy
	proxy               procUsage // the proxy under test, zero without one
}

// usage reads the machine's CPU time and the benchmark's; proxies are the proxies under test (nil: none),
// the first of which is also read on its own.
func (e *env) usage(proxies ...*child) (usageSnapshot, error) {
	var s usageSnapshot
	var err error
	proxies = slices.DeleteFunc(slices.Clone(proxies), func(c *child) bool { return c == nil })
	cpus := e.loadCPUs // nil when not pinned: the whole machine
	if len(proxies) > 0 && cpus != nil {
		cpus = append(slices.Clone(cpus), e.proxyCPUs...)
	}
	if s.hostBusy, s.hostTotal, err = readHostCPU(cpus); err != nil {
		return s, err
	}
	for _, pid := range []int{os.Getpid(), e.upstreamPid, e.receiverPid} {
		if u, err := readProcUsage(pid); err == nil {
			s.ours += u.CPUTicks
		}
	}
	for i, c := range proxies {
		u, err := readProcUsage(c.pid())
		if err != nil {
			return s, err
		}
		if i == 0 {
			s.proxy = u
		}
		s.ours += u.CPUTicks
	}
	return s, nil
}

// foreignSince returns the share of the CPU time of the CPUs the run used (the whole machine when
// not pinned) since before that went to anything other than the benchmark's processes (and loadCPU, the load child's): other work on a shared host, or
// time stolen by the hypervisor. Figures measured while it is high are not to be trusted.
func (s usageSnapshot) foreignSince(before usageSnapshot, loadCPU time.Duration) float64 {
	total := float64(s.hostTotal - before.hostTotal)
	if total <= 0 {
		return 0
	}
	ours := float64(s.ours-before.ours) + loadCPU.Seconds()*userHZ
	return max(0, float64(s.hostBusy-before.hostBusy)-ours) / total
}

// runLoadChild runs "sidetrace-bench load" pinned to the load CPUs and returns its result.
// It also returns the CPU time the load child used.
func runLoadChild(ctx context.Context, e *env, args []string) (loadResult, time.Duration, error) {
	var out bytes.Buffer
	argv := e.pinned(e.cfg.LoadCPUs, append([]string{e.self, "load", "-json"}, args...)...)
	c, err := startChild("load", argv, selfEnv, &out)
	if err != nil {
		return loadResult{}, 0, err
	}
	if err := c.wait(ctx); err != nil {
		return loadResult{}, 0, err
	}
	cpu := c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return res, cpu, fmt.Errorf("load: reading its result %q: %w", out.String(), err)
	}
	return res, cpu, nil
}

// stable reports whether every scenario has the rounds asked for, undisturbed by other processes,
// with a closed-loop req/s spread within the target.
func (r *report) stable() bool {
	for _, ms := range r.Results {
		if s := summarize(ms, r.Config.MaxForeign); s.disturbed || s.runs < r.Config.Rounds || s.rpsSpread > r.Config.Spread {
			return false
		}
	}
	return true
}

// allowedCPUs returns the CPUs this process may run on, from Cpus_allowed_list in
// /proc/self/status.
func allowedCPUs() ([]int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(b)) {
		if list, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return parseCPUList(strings.TrimSpace(list))
		}
	}
	return nil, errors.New("/proc/self/status: no Cpus_allowed_list")
}

// parseCPUList parses a CPU list as taskset -c and /proc take it: "0-3,8".
func parseCPUList(list string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err1 := strconv.Atoi(lo)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.Atoi(hi)
		}
		if err := errors.Join(err1, err2); err != nil || first < 0 || last < first {
			return nil, fmt.Errorf("CPU list %q: want numbers and ranges like 0-3,8", list)
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
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
	if runtime.NumCPU() == 1 {
		s = "1 CPU"
	}
	if model != "" {
		s += " (" + model + ")"
	}
	s += ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	// The commit measured, when run from a checkout (make bench).
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		s += ", commit " + strings.TrimSpace(string(out))
		if err := exec.Command("git", "diff", "--quiet", "HEAD").Run(); err != nil {
			s += " (with uncommitted changes)"
		}
	}
	return s
}
