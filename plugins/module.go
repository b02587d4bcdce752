package plugins

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/sidetrace/sidetrace/plugins/internal/abi"
	"github.com/sidetrace/sidetrace/plugins/internal/instrument"
)

// generation is one compiled version of a plugin's file with its pool.
type generation struct {
	h        *Host
	p        *plugin
	compiled wazero.CompiledModule
	rt       wazero.Runtime // the one compiled must be instantiated in
	// stoppable: instrumented, the module exports instrument.StopExport.
	stoppable bool
	hooks     uint32
	reqHdr    []string // canonical names of the declared request headers, in order
	respHdr   []string
	hasStart  bool
	pool      pool
	holders   atomic.Int32 // chains that include this generation
}

func (g *generation) unhold() {
	if g.holders.Add(-1) == 0 {
		g.close()
	}
}

func (g *generation) close() {
	g.pool.close()
	_ = g.compiled.Close(context.Background())
}

type sig struct {
	params, results []api.ValueType
}

var (
	i32, i64 = api.ValueTypeI32, api.ValueTypeI64

	// guestExports are the ABI's exports and their signatures.
	guestExports = map[string]sig{
		abi.ExportVersionMarker: {},
		abi.ExportAlloc:         {[]api.ValueType{i32}, []api.ValueType{i32}},
		abi.ExportInit:          {[]api.ValueType{i32}, []api.ValueType{i64}},
		abi.ExportOnRequest:     {[]api.ValueType{i32}, []api.ValueType{i64}},
		abi.ExportOnResponse:    {[]api.ValueType{i32}, []api.ValueType{i64}},
		abi.ExportOnSpanEnd:     {[]api.ValueType{i32}, []api.ValueType{i64}},
		abi.ExportInitialize:    {},
	}
	hostImports = map[string]sig{
		abi.ImportLog:       {[]api.ValueType{i32, i32, i32}, nil},
		abi.ImportGetHeader: {[]api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}},
	}
	hookExports = []struct {
		bit  uint32
		name string
	}{
		{abi.HookRequest, abi.ExportOnRequest},
		{abi.HookResponse, abi.ExportOnResponse},
		{abi.HookSpanEnd, abi.ExportOnSpanEnd},
	}
)

func sigString(s sig) string {
	f := func(ts []api.ValueType) string {
		var b []string
		for _, t := range ts {
			b = append(b, api.ValueTypeName(t))
		}
		return strings.Join(b, ",")
	}
	return "(" + f(s.params) + ")->(" + f(s.results) + ")"
}

func sameSig(d api.FunctionDefinition, s sig) bool {
	eq := func(a, b []api.ValueType) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	return eq(d.ParamTypes(), s.params) && eq(d.ResultTypes(), s.results)
}

// validate checks the version marker, the exports the ABI requires and the
// signatures of every ABI export and host import.
func validate(cm wazero.CompiledModule) error {
	exports := cm.ExportedFunctions()
	if _, ok := exports[abi.ExportVersionMarker]; !ok {
		var other []string
		for n := range exports {
			if strings.HasPrefix(n, abi.VersionMarkerPrefix) {
				other = append(other, strings.TrimPrefix(n, abi.VersionMarkerPrefix))
			}
		}
		if len(other) > 0 {
			sort.Strings(other)
			return fmt.Errorf("guest speaks ABI %s; host speaks %s (func[%s])", strings.Join(other, ","), abi.Version, abi.ExportVersionMarker)
		}
		return fmt.Errorf("guest doesn't export func[%s]: not a sidetrace %s plugin", abi.ExportVersionMarker, abi.Version)
	}
	if _, ok := cm.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("guest doesn't export memory[%s]", abi.ExportMemory)
	}
	for _, n := range []string{abi.ExportAlloc, abi.ExportInit} {
		if _, ok := exports[n]; !ok {
			return fmt.Errorf("guest doesn't export func[%s]", n)
		}
	}
	names := make([]string, 0, len(exports))
	for n := range exports {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if want, ok := guestExports[n]; ok && !sameSig(exports[n], want) {
			d := exports[n]
			return fmt.Errorf("guest exports func[%s] with signature %s; want %s", n, sigString(sig{d.ParamTypes(), d.ResultTypes()}), sigString(want))
		}
	}
	for _, d := range cm.ImportedFunctions() {
		mod, n, _ := d.Import()
		switch mod {
		case abi.HostModule:
			want, ok := hostImports[n]
			if !ok {
				return fmt.Errorf("guest imports func[%s.%s], which the host does not provide", mod, n)
			}
			if !sameSig(d, want) {
				return fmt.Errorf("guest imports func[%s.%s] with signature %s; want %s", mod, n, sigString(sig{d.ParamTypes(), d.ResultTypes()}), sigString(want))
			}
		case "wasi_snapshot_preview1":
			// Provided by wazero, without preopens, environment or arguments.
		default:
			return fmt.Errorf("guest imports func[%s.%s], which the host does not provide", mod, n)
		}
	}
	return nil
}

func (h *Host) newGeneration(ctx context.Context, p *plugin, bin []byte) (*generation, error) {
	cm, rt, stoppable, err := h.compile(ctx, p, bin)
	if err != nil {
		return nil, fmt.Errorf("compile: %v", oneLine(err))
	}
	if err := validate(cm); err != nil {
		cm.Close(ctx)
		return nil, err
	}
	g := &generation{h: h, p: p, compiled: cm, rt: rt, stoppable: stoppable}
	_, g.hasStart = cm.ExportedFunctions()[abi.ExportInitialize]
	g.pool.init(g, h.opts.PoolSize)
	in, out, err := g.instantiate(ctx)
	if err != nil {
		cm.Close(ctx)
		return nil, err
	}
	if err := g.declare(out); err != nil {
		h.discard(in)
		cm.Close(ctx)
		return nil, err
	}
	for _, hk := range hookExports {
		if g.hooks&hk.bit != 0 && in.hooks[hookIndex(hk.bit)] == nil {
			h.discard(in)
			cm.Close(ctx)
			return nil, fmt.Errorf("guest doesn't export func[%s]", hk.name)
		}
	}
	g.pool.live.Store(1) // the first instance, made outside get
	g.pool.put(in)
	return g, nil
}

// declare reads the first instance's init output: hooks and headers.
func (g *generation) declare(out []byte) error {
	d := decoder{b: out}
	seen := map[string]bool{}
	for !d.done() {
		switch op := d.u8(); op {
		case abi.OpHooks:
			g.hooks = d.u32()
			if g.hooks&^abi.HookAll != 0 {
				return fmt.Errorf("init: unknown hook bits %#x", g.hooks&^abi.HookAll)
			}
		case abi.OpRequestHeader, abi.OpResponseHeader:
			name := textproto.CanonicalMIMEHeaderKey(d.str())
			if d.err != nil {
				break
			}
			if name == "" || !validHeaderName(name) {
				return fmt.Errorf("init: invalid header name %q", name)
			}
			if len(g.reqHdr)+len(g.respHdr) >= abi.MaxDeclaredHeaders {
				return fmt.Errorf("init: more than %d declared headers", abi.MaxDeclaredHeaders)
			}
			key := fmt.Sprint(op, name)
			if seen[key] {
				continue
			}
			seen[key] = true
			if op == abi.OpRequestHeader {
				g.reqHdr = append(g.reqHdr, name)
			} else {
				g.respHdr = append(g.respHdr, name)
			}
		case abi.OpFail:
			msg := d.str()
			if d.err == nil {
				return fmt.Errorf("init: %s", oneLine(errors.New(msg)))
			}
		default:
			return fmt.Errorf("init: malformed result: unknown op %#x at byte %d", op, d.off-1)
		}
	}
	if d.err != nil {
		return fmt.Errorf("init: malformed result: %v", d.err)
	}
	return nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func hookIndex(bit uint32) int {
	switch bit {
	case abi.HookRequest:
		return 0
	case abi.HookResponse:
		return 1
	}
	return 2
}

// instance is one instantiated module; not safe for concurrent use.
type instance struct {
	g     *generation
	mod   api.Module
	mem   api.Memory
	alloc api.Function
	hooks [3]api.Function // request, response, span end; nil if not exported
	ctx   context.Context // carries the instance to host functions

	buf    uint32 // input buffer in guest memory
	bufCap uint32
	stack  [1]uint64
	enc    encoder
	keys   keyCache

	hdrNames map[string]string // canonical header names for get_header

	deadline atomic.Int64 // monotime deadline of the running call; 0 idle; -1 interrupted
	// stop is the instrumented module's stop flag (nil if not instrumented);
	// the watchdog sets it to 1 and the guest traps at its next check.
	stop      api.MutableGlobal
	stoppedAt atomic.Int64 // monotime the watchdog set stop; -1 once closed by the backstop
	memBytes  atomic.Uint64

	// The request or response being processed, for get_header.
	req  *Request
	resp *Response
}

type instKey struct{}

// instantiate creates an instance and calls its init export with the
// plugin's config, returning the init output.
func (g *generation) instantiate(ctx context.Context) (*instance, []byte, error) {
	h := g.h
	w := &guestWriter{log: g.p.log}
	in := &instance{g: g}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module
		WithStartFunctions().
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(in.sleep).
		WithStdout(w).
		WithStderr(w)
	in.ctx = context.WithValue(context.Background(), instKey{}, in)
	mod, err := g.rt.InstantiateModule(in.ctx, g.compiled, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("instantiate: %v", oneLine(err))
	}
	in.mod = mod
	if g.stoppable {
		// A new instance starts with the flag's initial value, 0.
		if gl, ok := mod.ExportedGlobal(instrument.StopExport).(api.MutableGlobal); ok {
			in.stop = gl
		}
	}
	in.mem = mod.ExportedMemory(abi.ExportMemory)
	in.alloc = mod.ExportedFunction(abi.ExportAlloc)
	for i, hk := range hookExports {
		if f := mod.ExportedFunction(hk.name); f != nil {
			in.hooks[i] = f
		}
	}
	h.mu.Lock()
	h.insts[in] = struct{}{}
	h.mu.Unlock()
	if g.hasStart {
		if _, err := in.callTimeout(mod.ExportedFunction(abi.ExportInitialize), nil, initTimeout); err != nil {
			h.discard(in)
			return nil, nil, fmt.Errorf("%s: %v", abi.ExportInitialize, err)
		}
	}
	cfgBytes := []byte(g.p.spec.Config)
	if err := in.write(cfgBytes); err != nil {
		h.discard(in)
		return nil, nil, fmt.Errorf("init: %v", err)
	}
	in.stack[0] = uint64(len(cfgBytes))
	res, err := in.callTimeout(mod.ExportedFunction(abi.ExportInit), in.stack[:], initTimeout)
	if err != nil {
		h.discard(in)
		return nil, nil, fmt.Errorf("%s: %v", abi.ExportInit, err)
	}
	out, err := in.result(res)
	if err != nil {
		h.discard(in)
		return nil, nil, fmt.Errorf("%s: malformed result: %v", abi.ExportInit, err)
	}
	return in, out, nil
}

// newInstance is instantiate for refills: the init output must only not fail.
func (g *generation) newInstance(ctx context.Context) (*instance, error) {
	in, out, err := g.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	d := decoder{b: out}
	for !d.done() && d.err == nil {
		switch d.u8() {
		case abi.OpHooks:
			d.u32()
		case abi.OpRequestHeader, abi.OpResponseHeader:
			d.str()
		case abi.OpFail:
			msg := d.str()
			g.h.discard(in)
			return nil, fmt.Errorf("init: %s", oneLine(errors.New(msg)))
		default:
			d.err = errors.New("unknown op")
		}
	}
	if d.err != nil {
		g.h.discard(in)
		return nil, fmt.Errorf("init: malformed result: %v", d.err)
	}
	return in, nil
}

// sleep is the guest's sleep (WASI poll_oneoff with a clock), cut at the
// call's deadline: neither a stop flag nor a close reaches a guest blocked in
// a host function.
func (in *instance) sleep(ns int64) {
	if d := in.deadline.Load(); d != 0 {
		ns = min(ns, max(d-monotime(), 0)) // -1 (interrupted): do not sleep
	}
	if ns > 0 {
		time.Sleep(time.Duration(ns))
	}
}

// discard closes an instance and forgets it.
func (h *Host) discard(in *instance) {
	h.mu.Lock()
	delete(h.insts, in)
	h.mu.Unlock()
	_ = in.mod.Close(context.Background())
}

var errTimeout = errors.New("timeout")

// callRaw calls fn under the deadline and classifies failures.
func (in *instance) callRaw(fn api.Function, stack []uint64) (uint64, error) {
	return in.callTimeout(fn, stack, in.g.h.opts.Timeout)
}

// initTimeout bounds _initialize and sidetrace_init, which run the guest
// language's start-up (a Go runtime takes milliseconds).
const initTimeout = 5 * time.Second

func (in *instance) callTimeout(fn api.Function, stack []uint64, timeout time.Duration) (uint64, error) {
	if stack == nil {
		stack = in.stack[:]
		stack[0] = 0
	}
	d := monotime() + int64(timeout)
	in.deadline.Store(d)
	in.g.h.wakeWatchdog()
	err := fn.CallWithStack(in.ctx, stack)
	if !in.deadline.CompareAndSwap(d, 0) {
		return 0, &callError{kind: failTimeout, msg: "timeout after " + timeout.String()}
	}
	in.memBytes.Store(uint64(in.mem.Size()))
	if err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			return 0, &callError{kind: failTrap, msg: fmt.Sprintf("trap: guest exited with code %d", exit.ExitCode())}
		}
		return 0, &callError{kind: failTrap, msg: "trap: " + oneLine(err)}
	}
	return stack[0], nil
}

// write copies data to the guest's input buffer, growing it if needed.
func (in *instance) write(data []byte) error {
	if uint32(len(data)) > in.bufCap || in.buf == 0 {
		size := max(uint32(len(data)), abi.InitialBuffer)
		if in.bufCap > 0 {
			size = max(size, 2*in.bufCap)
		}
		in.stack[0] = uint64(size)
		res, err := in.callRaw(in.alloc, in.stack[:])
		if err != nil {
			return err
		}
		ptr := uint32(res)
		if ptr == 0 {
			return &callError{kind: failMalformed, msg: fmt.Sprintf("%s(%d) returned 0", abi.ExportAlloc, size)}
		}
		if _, ok := in.mem.Read(ptr, size); !ok {
			return &callError{kind: failMalformed, msg: fmt.Sprintf("%s(%d) returned %d, outside memory of %d bytes", abi.ExportAlloc, size, ptr, in.mem.Size())}
		}
		in.buf, in.bufCap = ptr, size
	}
	if !in.mem.Write(in.buf, data) {
		return &callError{kind: failMalformed, msg: "input buffer outside memory"}
	}
	return nil
}

// result returns a view of the guest's output; valid until the next call.
func (in *instance) result(res uint64) ([]byte, error) {
	if res == 0 {
		return nil, nil
	}
	ptr, n := abi.Unpack(res)
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, &callError{kind: failMalformed, msg: fmt.Sprintf("malformed result: output [%d, +%d) outside memory of %d bytes", ptr, n, in.mem.Size())}
	}
	return b, nil
}

// hook calls one hook with the view in in.enc and returns the output.
func (in *instance) hook(i int) ([]byte, error) {
	if err := in.write(in.enc.b); err != nil {
		return nil, err
	}
	in.stack[0] = uint64(len(in.enc.b))
	res, err := in.callRaw(in.hooks[i], in.stack[:])
	if err != nil {
		return nil, err
	}
	return in.result(res)
}

type failKind uint8

const (
	failTrap failKind = iota + 1
	failTimeout
	failMalformed
	failReported
	failUnavailable // no instance could be had; not the guest's fault
)

type callError struct {
	kind failKind
	msg  string
}

func (e *callError) Error() string { return e.msg }

// count records a failed call and says whether the instance must go.
func (p *plugin) count(err error) (discard bool) {
	var ce *callError
	if !errors.As(err, &ce) {
		p.traps.Add(1)
		return true
	}
	switch ce.kind {
	case failTimeout:
		p.timeouts.Add(1)
	case failMalformed:
		p.malformed.Add(1)
	case failReported:
		p.reported.Add(1)
		return false
	case failUnavailable:
		return false
	default:
		p.traps.Add(1)
	}
	return true
}

// pool is a bounded set of instances of one generation. It instantiates
// only to refill (up to max live) and closes what it discards.
type pool struct {
	g      *generation
	idle   chan *instance
	live   atomic.Int32
	max    int32
	closed atomic.Bool
}

func (p *pool) init(g *generation, size int) {
	p.g, p.max, p.idle = g, int32(size), make(chan *instance, size)
	p.live.Store(0)
}

func (p *pool) get(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.idle:
		return in, nil
	default:
	}
	for {
		n := p.live.Load()
		if n >= p.max {
			break
		}
		if p.live.CompareAndSwap(n, n+1) {
			in, err := p.g.newInstance(ctx)
			if err != nil {
				p.live.Add(-1)
				p.g.p.log.Error("plugin instance refill failed", "err", err)
				return nil, &callError{kind: failUnavailable, msg: "no instance: " + err.Error()}
			}
			return in, nil
		}
	}
	t := time.NewTimer(p.g.h.opts.Timeout)
	defer t.Stop()
	select {
	case in := <-p.idle:
		return in, nil
	case <-t.C:
		return nil, &callError{kind: failUnavailable, msg: fmt.Sprintf("no idle instance within %s (pool of %d busy)", p.g.h.opts.Timeout, p.max)}
	case <-ctx.Done():
		return nil, &callError{kind: failUnavailable, msg: "no idle instance: " + ctx.Err().Error()}
	}
}

// put returns an instance after a call; bad instances are closed.
func (p *pool) put(in *instance) {
	in.req, in.resp = nil, nil
	if p.closed.Load() {
		p.drop(in)
		return
	}
	select {
	case p.idle <- in:
	default:
		p.drop(in)
	}
	if p.closed.Load() {
		p.drain()
	}
}

// drop closes an instance that leaves the pool.
func (p *pool) drop(in *instance) {
	p.live.Add(-1)
	p.g.h.discard(in)
}

// drain closes the idle instances.
func (p *pool) drain() {
	for {
		select {
		case in := <-p.idle:
			p.drop(in)
		default:
			return
		}
	}
}

func (p *pool) close() {
	p.closed.Store(true)
	p.drain()
}

// host functions

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder(abi.HostModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostLog), hostImports[abi.ImportLog].params, nil).
		WithParameterNames("level", "ptr", "len").
		Export(abi.ImportLog).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostGetHeader), hostImports[abi.ImportGetHeader].params, hostImports[abi.ImportGetHeader].results).
		WithParameterNames("which", "name_ptr", "name_len", "buf_ptr", "buf_limit").
		Export(abi.ImportGetHeader).
		Instantiate(ctx)
	return err
}

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	in, _ := ctx.Value(instKey{}).(*instance)
	if in == nil {
		return
	}
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	n = min(n, 4096)
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		return
	}
	in.g.p.log.Log(context.Background(), slog.Level(level), string(b))
}

func hostGetHeader(ctx context.Context, mod api.Module, stack []uint64) {
	in, _ := ctx.Value(instKey{}).(*instance)
	which, np, nl, bp, bl := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3]), uint32(stack[4])
	stack[0] = uint64(uint32(0xffffffff)) // -1
	if in == nil {
		return
	}
	var hdr http.Header
	switch {
	case which == abi.HeaderRequest && in.req != nil:
		hdr = in.req.Header
	case which == abi.HeaderResponse && in.resp != nil:
		hdr = in.resp.Header
	default:
		return
	}
	name, ok := mod.Memory().Read(np, nl)
	if !ok {
		return
	}
	vs := hdr[in.canonical(name)]
	if len(vs) == 0 {
		return
	}
	v := vs[0]
	if len(vs) > 1 {
		v = strings.Join(vs, ", ")
	}
	if uint32(len(v)) <= bl && len(v) > 0 {
		if !mod.Memory().WriteString(bp, v) {
			return
		}
	}
	stack[0] = uint64(uint32(len(v)))
}

// canonical returns the canonical form of a header name read from guest
// memory, remembered per instance: plugins ask for the same few names.
func (in *instance) canonical(name []byte) string {
	if k, ok := in.hdrNames[string(name)]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(string(name))
	if in.hdrNames == nil {
		in.hdrNames = map[string]string{}
	}
	if len(in.hdrNames) < 64 && len(name) <= 128 {
		in.hdrNames[string(name)] = k
	}
	return k
}

// guestWriter sends the guest's stdout and stderr (a Go panic message, for
// instance) to the log.
type guestWriter struct{ log *slog.Logger }

func (w *guestWriter) Write(p []byte) (int, error) {
	if s := strings.TrimSpace(string(p)); s != "" {
		w.log.Warn("plugin output", "text", s)
	}
	return len(p), nil
}

func oneLine(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
