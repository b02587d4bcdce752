package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sidetrace/sidetrace/wasm-sdk/go/abi"
)

// input is the buffer the host writes views into (sidetrace_alloc).
var input []byte

// alloc returns a buffer of at least size bytes for the host to write to.
func alloc(size uint32) []byte {
	if uint32(cap(input)) < size {
		input = make([]byte, size)
	}
	return input[:cap(input)]
}

// output is the op list a hook returns, reused between calls.
type output struct{ b []byte }

var out output

func (o *output) reset()       { o.b = o.b[:0] }
func (o *output) op(op uint8)  { o.b = append(o.b, op) }
func (o *output) u8(v uint8)   { o.b = append(o.b, v) }
func (o *output) u32(v uint32) { o.b = binary.LittleEndian.AppendUint32(o.b, v) }
func (o *output) u64(v uint64) { o.b = binary.LittleEndian.AppendUint64(o.b, v) }
func (o *output) str(s string) { o.u32(uint32(len(s))); o.b = append(o.b, s...) }

func (o *output) setAttr(key string, v Value) {
	o.op(abi.OpSetAttr)
	o.str(key)
	o.value(v)
}

func (o *output) fail(msg string) {
	o.op(abi.OpFail)
	o.str(msg)
}

func (o *output) value(v Value) {
	o.u8(uint8(v.typ))
	switch v.typ {
	case TypeString, TypeOther:
		o.str(v.s)
	case TypeBool:
		o.u8(b2u(v.b))
	case TypeInt64:
		o.u64(uint64(v.n))
	case TypeFloat64:
		o.u64(math.Float64bits(v.f))
	case TypeStringSlice:
		o.u32(uint32(len(v.ss)))
		for _, s := range v.ss {
			o.str(s)
		}
	case TypeBoolSlice:
		o.u32(uint32(len(v.bs)))
		for _, b := range v.bs {
			o.u8(b2u(b))
		}
	case TypeInt64Slice:
		o.u32(uint32(len(v.ns)))
		for _, n := range v.ns {
			o.u64(uint64(n))
		}
	case TypeFloat64Slice:
		o.u32(uint32(len(v.fs)))
		for _, f := range v.fs {
			o.u64(math.Float64bits(f))
		}
	}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// reader decodes a view; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("sdk: truncated view")

func (r *reader) need(n int) bool {
	if r.err == nil && (n < 0 || len(r.b)-r.off < n) {
		r.err = errTruncated
	}
	return r.err == nil
}

func (r *reader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	r.off += 4
	return binary.LittleEndian.Uint32(r.b[r.off-4:])
}

func (r *reader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	r.off += 8
	return binary.LittleEndian.Uint64(r.b[r.off-8:])
}

func (r *reader) bytes(n int) []byte {
	if !r.need(n) {
		return nil
	}
	r.off += n
	return r.b[r.off-n : r.off]
}

// span is a string's position in the view, decoded on demand.
type span struct{ off, n uint32 }

func (r *reader) strSpan() span {
	n := r.u32()
	if !r.need(int(n)) {
		return span{}
	}
	s := span{uint32(r.off), n}
	r.off += int(n)
	return s
}

func (r *reader) str() string {
	s := r.strSpan()
	return string(r.b[s.off : s.off+s.n])
}

// keys interns attribute keys: spans repeat the same few, in the same order,
// and every allocation in a guest costs garbage collection inside a host
// call. A key is first compared with the one seen at the same position in
// the previous view (no hashing), then looked up.
var (
	keys      = map[string]string{}
	keysByPos []string
)

const maxKeys = 1024

func (r *reader) key(pos int) string {
	s := r.strSpan()
	b := r.b[s.off : s.off+s.n]
	if pos < len(keysByPos) && keysByPos[pos] == string(b) {
		return keysByPos[pos]
	}
	k, ok := keys[string(b)]
	if !ok {
		k = string(b)
		if len(keys) < maxKeys && len(k) <= 128 {
			keys[k] = k
		}
	}
	if pos < len(keysByPos) {
		keysByPos[pos] = k
	} else if pos == len(keysByPos) && pos < 256 {
		keysByPos = append(keysByPos, k)
	}
	return k
}

func (r *reader) value() Value {
	switch t := Type(r.u8()); t {
	case TypeString, TypeOther:
		return Value{typ: t, s: r.str()}
	case TypeBool:
		return Bool(r.u8() != 0)
	case TypeInt64:
		return Int64(int64(r.u64()))
	case TypeFloat64:
		return Float64(math.Float64frombits(r.u64()))
	case TypeStringSlice:
		s := make([]string, r.count(4))
		for i := range s {
			s[i] = r.str()
		}
		return StringSlice(s)
	case TypeBoolSlice:
		s := make([]bool, r.count(1))
		for i := range s {
			s[i] = r.u8() != 0
		}
		return BoolSlice(s)
	case TypeInt64Slice:
		s := make([]int64, r.count(8))
		for i := range s {
			s[i] = int64(r.u64())
		}
		return Int64Slice(s)
	case TypeFloat64Slice:
		s := make([]float64, r.count(8))
		for i := range s {
			s[i] = math.Float64frombits(r.u64())
		}
		return Float64Slice(s)
	default:
		if r.err == nil {
			r.err = fmt.Errorf("sdk: unknown value type %d", t)
		}
		return Value{}
	}
}

func (r *reader) count(min int) int {
	n := r.u32()
	if r.err == nil && int64(n)*int64(min) > int64(len(r.b)-r.off) {
		r.err = errTruncated
		return 0
	}
	return int(n)
}

func (r *reader) attrs(dst []Attribute) []Attribute {
	n := r.count(5)
	for i := 0; i < n && r.err == nil; i++ {
		k := r.key(i)
		dst = append(dst, Attribute{k, r.value()})
	}
	return dst
}

// viewHeaders are the declared headers in a view: for each, the offset of
// its u32 value count.
type viewHeaders struct {
	b    []byte
	offs []uint32
}

func (h *viewHeaders) read(r *reader, n int) {
	h.b, h.offs = r.b, h.offs[:0]
	for i := 0; i < n && r.err == nil; i++ {
		h.offs = append(h.offs, uint32(r.off))
		c := r.count(4)
		for j := 0; j < c; j++ {
			r.strSpan()
		}
	}
}

func (h *viewHeaders) values(i int) []string {
	r := reader{b: h.b, off: int(h.offs[i])}
	vs := make([]string, r.count(4))
	for j := range vs {
		vs[j] = r.str()
	}
	return vs
}

func indexHeader(declared []string, name string) int {
	for i, d := range declared {
		if strings.EqualFold(d, name) {
			return i
		}
	}
	return -1
}

func header(h *viewHeaders, which int32, declared []string, name string) string {
	if i := indexHeader(declared, name); i >= 0 && i < len(h.offs) {
		r := reader{b: h.b, off: int(h.offs[i])}
		switch n := r.count(4); n {
		case 0:
			return ""
		case 1:
			return r.str()
		}
		return strings.Join(h.values(i), ", ")
	}
	v, _ := hostGetHeader(which, name)
	return v
}

func headerValues(h *viewHeaders, which int32, declared []string, name string) []string {
	if i := indexHeader(declared, name); i >= 0 && i < len(h.offs) {
		return h.values(i)
	}
	if v, ok := hostGetHeader(which, name); ok {
		return []string{v}
	}
	return nil
}

type requestView struct {
	b                                               []byte
	kind                                            uint8
	traceID                                         TraceID
	method, scheme, host, path, query, peer, tenant span
	tenantSet                                       bool
	newTenant                                       string
	viewHeaders
}

func (v *requestView) str(s span) string {
	if s == v.tenant && v.tenantSet {
		return v.newTenant
	}
	return string(v.b[s.off : s.off+s.n])
}

type responseView struct {
	b        []byte
	kind     uint8
	traceID  TraceID
	tenant   span
	status   uint32
	duration time.Duration
	viewHeaders
}

func (v *responseView) str(s span) string { return string(v.b[s.off : s.off+s.n]) }

var (
	reqView  requestView
	respView responseView
	spanView Span
)

// handleInit runs sidetrace_init: config in, declarations out.
func handleInit(config []byte) (res []byte) {
	out.reset()
	defer recoverFail(&res)
	reg.config = append([]byte(nil), config...)
	reg.dynReq, reg.dynResp = nil, nil
	reg.reqHdr, reg.respHdr = appendNames(nil, reg.staticReq), appendNames(nil, reg.staticResp)
	if reg.init != nil {
		reg.initing = true
		err := reg.init(reg.config)
		reg.initing = false
		if err != nil {
			out.reset()
			out.fail(err.Error())
			return out.b
		}
	}
	var hooks uint32
	if reg.onRequest != nil {
		hooks |= abi.HookRequest
	}
	if reg.onResponse != nil {
		hooks |= abi.HookResponse
	}
	if reg.onSpanEnd != nil {
		hooks |= abi.HookSpanEnd
	}
	out.op(abi.OpHooks)
	out.u32(hooks)
	for _, h := range reg.reqHdr {
		out.op(abi.OpRequestHeader)
		out.str(h)
	}
	for _, h := range reg.respHdr {
		out.op(abi.OpResponseHeader)
		out.str(h)
	}
	return out.b
}

// handleRequest runs sidetrace_on_request on a request view.
func handleRequest(view []byte) (res []byte) {
	out.reset()
	defer recoverFail(&res)
	if reg.onRequest == nil {
		return nil
	}
	v := &reqView
	r := reader{b: view}
	v.b = view
	v.kind = r.u8()
	copy(v.traceID[:], r.bytes(16))
	v.method, v.scheme, v.host = r.strSpan(), r.strSpan(), r.strSpan()
	v.path, v.query, v.peer, v.tenant = r.strSpan(), r.strSpan(), r.strSpan(), r.strSpan()
	v.tenantSet, v.newTenant = false, ""
	v.viewHeaders.read(&r, len(reg.reqHdr))
	if r.err != nil {
		out.fail(r.err.Error())
		return out.b
	}
	if d := reg.onRequest(Request{v}); d != NoOpinion {
		out.op(abi.OpDecision)
		out.u8(uint8(d))
	}
	return out.b
}

// handleResponse runs sidetrace_on_response on a response view.
func handleResponse(view []byte) (res []byte) {
	out.reset()
	defer recoverFail(&res)
	if reg.onResponse == nil {
		return nil
	}
	v := &respView
	r := reader{b: view}
	v.b = view
	v.kind = r.u8()
	copy(v.traceID[:], r.bytes(16))
	v.tenant = r.strSpan()
	v.status = r.u32()
	v.duration = time.Duration(r.u64())
	v.viewHeaders.read(&r, len(reg.respHdr))
	if r.err != nil {
		out.fail(r.err.Error())
		return out.b
	}
	reg.onResponse(Response{v})
	return out.b
}

// handleSpanEnd runs sidetrace_on_span_end on a span view.
func handleSpanEnd(view []byte) (res []byte) {
	out.reset()
	defer recoverFail(&res)
	if reg.onSpanEnd == nil {
		return nil
	}
	s := &spanView
	r := reader{b: view}
	s.kind = SpanKind(r.u8())
	copy(s.traceID[:], r.bytes(16))
	copy(s.spanID[:], r.bytes(8))
	s.name = r.str()
	clear(s.attrs)
	s.attrs = r.attrs(s.attrs[:0])
	clear(s.events)
	s.events = s.events[:0]
	n := r.count(16)
	for i := 0; i < n && r.err == nil; i++ {
		name := r.str()
		t := int64(r.u64())
		s.events = append(s.events, Event{Name: name, Time: time.Unix(0, t), Attributes: r.attrs(nil)})
	}
	if r.err != nil {
		out.fail(r.err.Error())
		return out.b
	}
	reg.onSpanEnd(s)
	return out.b
}

// recoverFail turns a panic in a hook into a reported failure, so the
// instance survives.
func recoverFail(res *[]byte) {
	if e := recover(); e != nil {
		reg.initing = false
		out.reset()
		out.fail(fmt.Sprint("panic: ", e))
		*res = out.b
	}
}
