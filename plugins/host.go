package plugins

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sidetrace/sidetrace/plugins/internal/instrument"
)

// Defaults for Options fields left zero.
const (
	DefaultTimeout     = 5 * time.Millisecond
	DefaultMemoryLimit = 64 << 20 // a stock Go wasip1 module starts at about 2.3 MiB
	pageSize           = 65536
)

// Options limits and tunes the plugin host. Zero fields take the defaults.
type Options struct {
	// CacheDir is the wazero compilation cache directory; "" = none. The proxy
	// reads it from SIDETRACE_PLUGIN_CACHE_DIR.
	CacheDir string
	// Timeout is the deadline per guest call (default DefaultTimeout). A guest
	// that overruns it is interrupted and its instance discarded.
	Timeout time.Duration
	// MemoryLimit is the memory cap per instance in bytes, rounded up to 64 KiB
	// pages (default DefaultMemoryLimit).
	MemoryLimit uint64
	// PoolSize bounds the instances per plugin, idle and busy together
	// (default GOMAXPROCS). A call that finds all of them busy waits for one,
	// at most Timeout.
	PoolSize int
	// Logger receives load, reload and guest log messages (default slog.Default()).
	Logger *slog.Logger
	// NoInterrupt runs guests without deadline checks: neither the ones the
	// host inserts (package internal/instrument) nor wazero's. Calls are a
	// little faster, but a guest stuck in a loop blocks its caller for ever.
	// An overrun is still counted as a timeout, and the instance discarded,
	// when the call returns. Only for plugins you trust.
	NoInterrupt bool
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MemoryLimit == 0 {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if o.PoolSize <= 0 {
		o.PoolSize = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o Options) memoryPages() uint32 {
	p := (o.MemoryLimit + pageSize - 1) / pageSize
	if p > 65536 {
		p = 65536
	}
	if p == 0 {
		p = 1
	}
	return uint32(p)
}

// Host runs a chain of WebAssembly plugins. It is safe for concurrent use. A
// nil *Host is a valid, empty chain.
type Host struct {
	opts  Options
	log   *slog.Logger
	rt    wazero.Runtime // with wazero's termination checks (unless Options.NoInterrupt), for guests instrument refused
	fast  wazero.Runtime // without them: instrumented and trusted guests; nil with Options.NoInterrupt
	cache wazero.CompilationCache

	plugins []*plugin
	cur     atomic.Pointer[chain]

	reloadMu sync.Mutex // serialises Reload and Close

	mu    sync.Mutex // guards insts
	insts map[*instance]struct{}

	stopWatchdog context.CancelFunc
	watchdogDone chan struct{}
	// The watchdog ticks only while calls come or may be running: after a tick with none since the last and
	// none in flight it sleeps, watchAsleep set, until a call's start wakes it through watchKick. An idle
	// sidecar then has no timer waking it.
	watchAsleep atomic.Bool
	watchKick   chan struct{}
	closed      atomic.Bool
}

// plugin is one configured plugin across its generations (hot reloads).
type plugin struct {
	spec Spec
	log  *slog.Logger

	calls, traps, timeouts, malformed, reported atomic.Uint64
	reloads, reloadFailures                     atomic.Uint64

	// guarded by Host.reloadMu
	loaded  fileSig // file the current generation came from
	tried   fileSig // last file a reload attempted (to not retry a broken file every poll)
	lastSum [32]byte
}

type fileSig struct {
	mtime time.Time
	size  int64
}

// chain is one snapshot of the plugins in run order. Exchanges pin it so
// that a request's hooks all run on the same generations.
type chain struct {
	gens []*generation
	refs atomic.Int64 // pins, plus one while the chain is current
	h    *Host
}

func (h *Host) pin() *chain {
	for {
		c := h.cur.Load()
		if c == nil {
			return nil
		}
		n := c.refs.Load()
		if n <= 0 { // retired and released meanwhile: the new one is in cur
			continue
		}
		if c.refs.CompareAndSwap(n, n+1) {
			return c
		}
	}
}

func (c *chain) unpin() {
	if c.refs.Add(-1) == 0 {
		for _, g := range c.gens {
			g.unhold()
		}
	}
}

func newChain(h *Host, gens []*generation) *chain {
	c := &chain{gens: gens, h: h}
	c.refs.Store(1)
	for _, g := range gens {
		g.holders.Add(1)
	}
	return c
}

// Load compiles and validates every plugin, initialises a first instance of
// each with its config, and returns the chain. Errors are one line prefixed
// "plugins: NAME: ". Close the Host to release everything.
func Load(ctx context.Context, specs []Spec, opts Options) (*Host, error) {
	opts = opts.withDefaults()
	h := &Host{opts: opts, log: opts.Logger, insts: map[*instance]struct{}{}}
	if opts.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugins: compilation cache %s: %w", opts.CacheDir, err)
		}
		h.cache = cache
	}
	fail := func(err error) (*Host, error) {
		h.closeRuntimes(ctx)
		return nil, err
	}
	var err error
	if h.rt, err = h.newRuntime(ctx, !opts.NoInterrupt); err != nil {
		return fail(err)
	}
	if !opts.NoInterrupt {
		if h.fast, err = h.newRuntime(ctx, false); err != nil {
			return fail(err)
		}
	}
	seen := map[string]bool{}
	for _, s := range specs {
		switch {
		case s.Name == "":
			return fail(errors.New("plugins: a plugin has no name"))
		case seen[s.Name]:
			return fail(fmt.Errorf("plugins: %s: duplicate name", s.Name))
		case s.Failure != "" && s.Failure != FailOpen && s.Failure != FailClosed:
			return fail(fmt.Errorf("plugins: %s: failure: got %q; want %q or %q", s.Name, s.Failure, FailOpen, FailClosed))
		}
		seen[s.Name] = true
	}
	// Compile in parallel, as many at once as there are CPUs to use: a Go guest takes about half a second,
	// and on one CPU compiling one after the other takes no longer but keeps one compiler's garbage at a time
	// (the start-up peak RSS).
	gens := make([]*generation, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, s := range specs {
		if s.Failure == "" {
			s.Failure = FailOpen
		}
		p := &plugin{spec: s, log: h.log.With("plugin", s.Name)}
		h.plugins = append(h.plugins, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			g, sig, sum, err := h.loadGeneration(ctx, p)
			gens[i], errs[i] = g, err
			p.loaded, p.tried, p.lastSum = sig, sig, sum
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil { // the first in chain order: one line
			return fail(err)
		}
	}
	h.cur.Store(newChain(h, gens))
	wctx, cancel := context.WithCancel(context.Background())
	h.stopWatchdog, h.watchdogDone, h.watchKick = cancel, make(chan struct{}), make(chan struct{}, 1)
	go h.watchdog(wctx)
	return h, nil
}

// Close stops the host and releases every module and instance. Calls made
// after Close behave as if there were no plugins.
func (h *Host) Close(ctx context.Context) error {
	if h == nil || h.closed.Swap(true) {
		return nil
	}
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	h.stopWatchdog()
	<-h.watchdogDone
	h.cur.Store(nil)
	return h.closeRuntimes(ctx)
}

// newRuntime creates a wazero runtime with WASI and the host module.
// interruptible compiles guests with termination checks
// (WithCloseOnContextDone), which let the watchdog interrupt a runaway guest.
func (h *Host) newRuntime(ctx context.Context, interruptible bool) (wazero.Runtime, error) {
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(interruptible).
		WithMemoryLimitPages(h.opts.memoryPages())
	if h.cache != nil {
		rc = rc.WithCompilationCache(h.cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("plugins: wasi: %w", err)
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("plugins: host module: %w", err)
	}
	return rt, nil
}

func (h *Host) closeRuntimes(ctx context.Context) error {
	var err error
	for _, rt := range []wazero.Runtime{h.rt, h.fast} {
		if rt != nil {
			err = errors.Join(err, rt.Close(ctx))
		}
	}
	if h.cache != nil {
		err = errors.Join(err, h.cache.Close(ctx))
	}
	return err
}

// compile compiles a plugin's binary: instrumented (deadline checks of its
// own, see package instrument) in the runtime without wazero's checks, or, if
// instrument refuses the binary, as is with wazero's checks. Trusted plugins
// and Options.NoInterrupt skip the checks. It returns the runtime to
// instantiate in and whether the module exports instrument.StopExport.
func (h *Host) compile(ctx context.Context, p *plugin, bin []byte) (wazero.CompiledModule, wazero.Runtime, bool, error) {
	if h.fast == nil || p.spec.Trusted {
		rt := h.rt
		if h.fast != nil {
			rt = h.fast
		}
		cm, err := rt.CompileModule(ctx, bin)
		return cm, rt, false, err
	}
	out, err := instrument.Module(bin)
	if err != nil {
		p.log.Warn("plugin not instrumented: wazero's termination checks enforce its deadline, several times slower", "err", err)
		cm, err := h.rt.CompileModule(ctx, bin)
		return cm, h.rt, false, err
	}
	cm, err := h.fast.CompileModule(ctx, out)
	if err == nil {
		return cm, h.fast, true, nil
	}
	// The original's error is the one to report; if the original compiles,
	// instrument has a bug: run the module with wazero's checks.
	cm, err2 := h.rt.CompileModule(ctx, bin)
	if err2 == nil {
		p.log.Error("instrumented plugin does not compile; wazero's termination checks enforce its deadline", "err", oneLine(err))
	}
	return cm, h.rt, false, err2
}

// Reload recompiles the plugins whose files changed (modification time or
// size, then content) and swaps them in atomically: exchanges already pinned
// finish on the old generation, which is closed after the last one. A file
// that fails to load leaves the old generation running; the error is logged
// and returned (joined, one line per plugin).
func (h *Host) Reload(ctx context.Context) error {
	if h == nil || h.closed.Load() {
		return nil
	}
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if h.closed.Load() {
		return nil
	}
	old := h.cur.Load()
	gens := append([]*generation(nil), old.gens...)
	changed := false
	var errs []error
	for i, p := range h.plugins {
		sig, err := statSig(p.spec.Path)
		if err != nil {
			if sig != p.tried {
				p.tried = sig
				p.reloadFailures.Add(1)
				err = fmt.Errorf("plugins: %s: reload: %w; keeping the running module", p.spec.Name, err)
				p.log.Error("plugin reload failed", "err", err)
				errs = append(errs, err)
			}
			continue
		}
		if sig == p.loaded || sig == p.tried {
			continue
		}
		p.tried = sig
		g, sig, sum, err := h.loadGeneration(ctx, p)
		if err != nil {
			p.reloadFailures.Add(1)
			err = fmt.Errorf("%w; keeping the running module", err)
			p.log.Error("plugin reload failed", "err", err)
			errs = append(errs, err)
			continue
		}
		p.loaded, p.tried = sig, sig
		if sum == p.lastSum { // touched, not changed
			g.close()
			continue
		}
		p.lastSum = sum
		p.reloads.Add(1)
		p.log.Info("plugin reloaded", "path", p.spec.Path)
		gens[i] = g
		changed = true
	}
	if changed {
		h.cur.Store(newChain(h, gens))
		old.unpin() // drop the "current" reference
	}
	return errors.Join(errs...)
}

// Watch polls the plugin files every interval and calls Reload when one
// changed. It returns when ctx is done.
func (h *Host) Watch(ctx context.Context, every time.Duration) {
	if h == nil {
		<-ctx.Done()
		return
	}
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = h.Reload(ctx) // logged by Reload
		}
	}
}

func statSig(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}, err
	}
	return fileSig{fi.ModTime(), fi.Size()}, nil
}

// Stats reports per-plugin counters, in chain order.
type Stats struct {
	Plugins []PluginStats
}

// Plugin returns the named plugin's stats (zero if unknown).
func (s Stats) Plugin(name string) PluginStats {
	for _, p := range s.Plugins {
		if p.Name == name {
			return p
		}
	}
	return PluginStats{}
}

// PluginStats are one plugin's counters since Load, across reloads.
type PluginStats struct {
	Name      string
	Calls     uint64 // guest hook calls
	Failures  uint64 // Traps + Timeouts + Malformed + Reported
	Traps     uint64 // the guest trapped (unreachable, out of bounds, panic, exit)
	Timeouts  uint64 // the guest overran Options.Timeout
	Malformed uint64 // the guest returned a result the host could not decode
	Reported  uint64 // the guest reported a failure itself (ABI op FAIL)

	Instances   int    // live instances of the current generation, idle and busy
	Idle        int    // of which idle in the pool
	Retired     int    // live instances of older generations still finishing requests
	MemoryBytes uint64 // linear memory of the current generation's live instances

	Reloads        uint64 // successful hot reloads
	ReloadFailures uint64 // reloads refused (the old module kept running)
}

// Stats returns a snapshot of the per-plugin counters.
func (h *Host) Stats() Stats {
	if h == nil {
		return Stats{}
	}
	var s Stats
	c := h.pin()
	idx := map[*plugin]int{}
	for i, p := range h.plugins {
		idx[p] = i
		st := PluginStats{
			Name: p.spec.Name, Calls: p.calls.Load(),
			Traps: p.traps.Load(), Timeouts: p.timeouts.Load(), Malformed: p.malformed.Load(), Reported: p.reported.Load(),
			Reloads: p.reloads.Load(), ReloadFailures: p.reloadFailures.Load(),
		}
		st.Failures = st.Traps + st.Timeouts + st.Malformed + st.Reported
		if c != nil {
			st.Idle = len(c.gens[i].pool.idle)
		}
		s.Plugins = append(s.Plugins, st)
	}
	h.mu.Lock()
	for in := range h.insts {
		st := &s.Plugins[idx[in.g.p]]
		if c != nil && c.gens[idx[in.g.p]] == in.g {
			st.Instances++
			st.MemoryBytes += in.memBytes.Load()
		} else {
			st.Retired++
		}
	}
	h.mu.Unlock()
	if c != nil {
		c.unpin()
	}
	return s
}

// watchdog interrupts guest calls that overran their deadline. One goroutine
// per Host checking a deadline word per instance costs a call two atomic
// stores, where a timer or a context per call would cost an allocation and,
// in wazero, a goroutine.
func (h *Host) watchdog(ctx context.Context) {
	defer close(h.watchdogDone)
	tick := h.opts.Timeout / 4
	tick = max(tick, 250*time.Microsecond)
	tick = min(tick, 50*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var late, stuck []*instance
	var seen uint64 // the plugins' call counts at the last tick
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := monotime()
		late, stuck = late[:0], stuck[:0]
		active := false
		var calls uint64
		h.mu.Lock()
		for in := range h.insts {
			calls += in.g.p.calls.Load()
			d := in.deadline.Load()
			if d > 0 && now > d && in.deadline.CompareAndSwap(d, -1) {
				late = append(late, in)
			} else if s := in.stoppedAt.Load(); d == -1 && s > 0 && now-s > backstop*int64(h.opts.Timeout) && in.stoppedAt.CompareAndSwap(s, -1) {
				stuck = append(stuck, in)
			} else if in.watched() {
				active = true
			}
		}
		h.mu.Unlock()
		for _, in := range late {
			// The caller sees the deadline word changed and discards the
			// instance when the call returns.
			if in.stop != nil {
				// Instrumented: the guest traps at its next loop or function entry.
				in.stoppedAt.Store(now)
				in.stop.Set(1)
				continue
			}
			// With wazero's checks (WithCloseOnContextDone) this interrupts
			// the running call; without (trusted), it only fails the call
			// when it returns.
			_ = in.mod.CloseWithExitCode(context.Background(), exitTimeout)
		}
		for _, in := range stuck {
			// The backstop; see RATIONALE.md for what it can and cannot do.
			h.log.Warn("plugin instance still running after its stop flag was set; closing it", "plugin", in.g.p.spec.Name, "timeouts", backstop)
			_ = in.mod.CloseWithExitCode(context.Background(), exitTimeout)
		}
		// Calls since the last tick keep it ticking: on one core a call is never seen in flight (the watchdog
		// runs when no call does, unless one overruns), and sleeping after each would make every call's
		// start wake it; ticking, it wakes at most once per tick however many calls come.
		busy := calls != seen
		seen = calls
		if active || busy || len(late) > 0 {
			continue
		}
		// Nothing to watch: sleep until a call starts. Asleep is published before the last look, so a call
		// starting meanwhile either is seen here or sees asleep and kicks.
		t.Stop()
		h.watchAsleep.Store(true)
		if h.anyCallInFlight() {
			h.watchAsleep.Store(false)
		} else {
			select {
			case <-ctx.Done():
				return
			case <-h.watchKick:
			}
		}
		t.Reset(tick)
	}
}

func (h *Host) anyCallInFlight() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for in := range h.insts {
		if in.watched() {
			return true
		}
	}
	return false
}

// watched reports whether the watchdog must keep ticking for in: a call in flight, or a stopped one still
// watched for the backstop.
func (in *instance) watched() bool {
	d := in.deadline.Load()
	return d > 0 || d == -1 && in.stoppedAt.Load() > 0
}

// wakeWatchdog is called after a call's deadline is set.
func (h *Host) wakeWatchdog() {
	if h.watchAsleep.Load() && h.watchAsleep.CompareAndSwap(true, false) {
		select {
		case h.watchKick <- struct{}{}:
		default:
		}
	}
}

// backstop is how many timeouts after its stop flag was set an instance still
// running is closed.
const backstop = 10

const exitTimeout = 0xdead

var epoch = time.Now()

// monotime is nanoseconds on the monotonic clock, always > 0.
func monotime() int64 { return int64(time.Since(epoch)) + 1 }

// loadGeneration compiles p's file, validates it and initialises a first
// instance.
func (h *Host) loadGeneration(ctx context.Context, p *plugin) (*generation, fileSig, [32]byte, error) {
	name := p.spec.Name
	sig, err := statSig(p.spec.Path)
	if err != nil {
		return nil, sig, [32]byte{}, fmt.Errorf("plugins: %s: %w", name, err)
	}
	bin, err := os.ReadFile(p.spec.Path)
	if err != nil {
		return nil, sig, [32]byte{}, fmt.Errorf("plugins: %s: %w", name, err)
	}
	sum := sha256.Sum256(bin)
	g, err := h.newGeneration(ctx, p, bin)
	if err != nil {
		return nil, sig, sum, fmt.Errorf("plugins: %s: %w", name, err)
	}
	return g, sig, sum, nil
}
