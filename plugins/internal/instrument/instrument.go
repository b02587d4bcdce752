// Package instrument rewrites a WebAssembly binary so that the host can
// interrupt it cheaply: a deadline check the guest runs itself, instead of
// wazero's termination checks (WithCloseOnContextDone), which exit to Go at
// every loop iteration.
//
// Module appends two mutable i32 globals, a function, a function type and an
// export to the module, and inserts a check at the start of every loop body
// and every function body (binary format:
// https://webassembly.github.io/spec/core/binary/index.html):
//
//	global.get $stop  if  unreachable  end          ;; the host set the stop flag
//	global.get $budget  i32.eqz  if  call $yield  end
//	global.get $budget  i32.const 1  i32.sub  global.set $budget
//
// $stop is exported as StopExport; the host sets it to 1 (api.MutableGlobal)
// from its watchdog goroutine and the guest traps at its next check.
//
// $yield runs every Budget checks: it executes memory.grow 0, which wazero
// implements as an exit to Go. Native wasm code cannot be preempted by the Go
// scheduler, so without these exits a looping guest holds up a garbage
// collection's stop-the-world, which also stops the watchdog that would set
// the flag: measured here, a 5 ms deadline then took 0.7 to 2.9 s, and every
// goroutine of the process waited as long (TestModule_LoopDuringGC_Stops).
//
// Loops alone are not enough: a recursion without loops (f calls f twice)
// runs for exponential time without exceeding the stack limit, so function
// entries are checked too, except where the body starts with a loop (the
// loop's check runs first anyway; every Go function does).
//
// Everything is appended after the existing entries of each index space, so
// no index in the module changes: calls, exports, element and data segments,
// constant expressions and the name section stay valid. DWARF sections
// (.debug_*) describe code offsets that move, so they are dropped.
package instrument

import (
	"errors"
	"fmt"
	"strings"
)

// StopExport is the name of the exported stop global. Modules that already
// export it are refused.
const StopExport = "__sidetrace_stop"

// Budget is how many checks run between two exits to Go ($yield).
const Budget = 1 << 14

// Section ids, https://webassembly.github.io/spec/core/binary/modules.html#sections
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secGlobal   = 6
	secExport   = 7
	secCode     = 10
	secMemory   = 5
)

// order is the position a section must have; the tag section (13, exception
// handling) sits between memory and global, data count (12) before code.
var order = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// Error is returned for a binary Module cannot rewrite: malformed, or using
// an instruction it does not know.
type Error struct {
	Offset int // in the input binary
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("instrument: %s at byte %#x", e.Msg, e.Offset) }

var errTruncated = errors.New("unexpected end")

type section struct {
	id   byte
	body []byte // without id and size
	off  int    // offset of body in the input
}

// Module returns bin rewritten as the package documentation says. A module
// without functions is returned as is (it has nothing to interrupt and no
// StopExport). The output is valid if the input is.
func Module(bin []byte) ([]byte, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, &Error{0, "not a WebAssembly binary"}
	}
	if bin[4] != 1 || bin[5] != 0 || bin[6] != 0 || bin[7] != 0 {
		return nil, &Error{4, "unsupported binary version"}
	}
	var secs []section
	r := reader{b: bin, off: 8}
	last := 0
	for !r.done() {
		id := r.byte()
		n := r.u32()
		start := r.off
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, &Error{start, "section: " + r.err.Error()}
		}
		if id != secCustom {
			o, ok := order[id]
			if !ok {
				return nil, &Error{start - 1, fmt.Sprintf("unknown section id %d", id)}
			}
			if o <= last {
				return nil, &Error{start - 1, fmt.Sprintf("section %d out of order or repeated", id)}
			}
			last = o
		}
		secs = append(secs, section{id, body, start})
	}
	find := func(id byte) *section {
		for i := range secs {
			if secs[i].id == id {
				return &secs[i]
			}
		}
		return nil
	}
	code := find(secCode)
	if code == nil {
		return bin, nil
	}
	fn, typ := find(secFunction), find(secType)
	if fn == nil || typ == nil {
		return nil, &Error{code.off, "code section without function or type section"}
	}

	// Index spaces: imports come first.
	var nFuncImports, nGlobalImports uint32
	hasMemory := false
	if m := find(secMemory); m != nil {
		n, _, err := vecHead(m)
		if err != nil {
			return nil, err
		}
		hasMemory = n > 0
	}
	if imp := find(secImport); imp != nil {
		ir := reader{b: imp.body, base: imp.off}
		for n := ir.u32(); n > 0 && ir.err == nil; n-- {
			ir.name()
			ir.name()
			switch kind := ir.byte(); kind {
			case 0x00: // func
				ir.u32()
				nFuncImports++
			case 0x01: // table
				ir.refType()
				ir.limits()
			case 0x02: // memory
				ir.limits()
				hasMemory = true
			case 0x03: // global
				ir.valType()
				ir.byte()
				nGlobalImports++
			case 0x04: // tag
				ir.byte()
				ir.u32()
			default:
				return nil, &Error{ir.base + ir.off - 1, fmt.Sprintf("unknown import kind %#x", kind)}
			}
		}
		if ir.err != nil {
			return nil, &Error{ir.base + ir.off, "import section: " + ir.err.Error()}
		}
	}
	if !hasMemory {
		return nil, &Error{code.off, "module has no memory (the yield needs memory.grow)"}
	}
	nTypes, typRest, err := vecHead(typ)
	if err != nil {
		return nil, err
	}
	nFuncs, fnRest, err := vecHead(fn)
	if err != nil {
		return nil, err
	}
	var nGlobals uint32
	var globRest []byte
	if g := find(secGlobal); g != nil {
		if nGlobals, globRest, err = vecHead(g); err != nil {
			return nil, err
		}
	}
	var nExports uint32
	var expRest []byte
	if e := find(secExport); e != nil {
		if nExports, expRest, err = vecHead(e); err != nil {
			return nil, err
		}
		er := reader{b: expRest, base: e.off}
		for i := uint32(0); i < nExports && er.err == nil; i++ {
			if er.name() == StopExport {
				return nil, &Error{e.off, "module already exports " + StopExport}
			}
			er.byte()
			er.u32()
		}
		if er.err != nil {
			return nil, &Error{er.base + er.off, "export section: " + er.err.Error()}
		}
	}
	stop := nGlobalImports + nGlobals
	budget := stop + 1
	yield := nFuncImports + nFuncs
	yieldType := nTypes

	nBodies, codeRest, err := vecHead(code)
	if err != nil {
		return nil, err
	}
	if nBodies != nFuncs {
		return nil, &Error{code.off, fmt.Sprintf("%d function bodies for %d functions", nBodies, nFuncs)}
	}
	check := checkSeq(stop, budget, yield)
	var newCode []byte
	newCode = appendU32(newCode, nBodies+1)
	cr := reader{b: codeRest, base: code.off + (len(code.body) - len(codeRest))}
	var fnBuf []byte
	for i := uint32(0); i < nBodies; i++ {
		size := cr.u32()
		start := cr.off
		body := cr.bytes(int(size))
		if cr.err != nil {
			return nil, &Error{cr.base + cr.off, fmt.Sprintf("function %d: %v", yield-nBodies+i, cr.err)}
		}
		fnBuf, err = rewriteBody(fnBuf[:0], body, cr.base+start, check)
		if err != nil {
			return nil, err
		}
		newCode = appendU32(newCode, uint32(len(fnBuf)))
		newCode = append(newCode, fnBuf...)
	}
	if !cr.done() {
		return nil, &Error{cr.base + cr.off, "code section: trailing bytes"}
	}
	y := yieldBody(stop, budget)
	newCode = appendU32(newCode, uint32(len(y)))
	newCode = append(newCode, y...)

	// The new entries of each section.
	newTyp := append(appendU32(nil, nTypes+1), typRest...)
	newTyp = append(newTyp, 0x60, 0x00, 0x00) // func () -> ()
	newFn := append(appendU32(nil, nFuncs+1), fnRest...)
	newFn = appendU32(newFn, yieldType)
	newGlob := append(appendU32(nil, nGlobals+2), globRest...)
	newGlob = append(newGlob, 0x7f, 0x01, 0x41, 0x00, 0x0b) // $stop: (mut i32) (i32.const 0)
	newGlob = append(newGlob, 0x7f, 0x01, 0x41)             // $budget: (mut i32) (i32.const Budget)
	newGlob = appendS32(newGlob, Budget)
	newGlob = append(newGlob, 0x0b)
	newExp := append(appendU32(nil, nExports+1), expRest...)
	newExp = appendU32(newExp, uint32(len(StopExport)))
	newExp = append(newExp, StopExport...)
	newExp = append(newExp, 0x03)
	newExp = appendU32(newExp, stop)

	out := make([]byte, 0, len(bin)+len(newCode)-len(code.body)+64)
	out = append(out, bin[:8]...)
	replaced := map[byte][]byte{secType: newTyp, secFunction: newFn, secGlobal: newGlob, secExport: newExp, secCode: newCode}
	put := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		delete(replaced, id)
	}
	// insertMissing writes the new sections (global, export) that the input
	// lacks and that must come before a section of position o.
	insertMissing := func(o int) {
		for _, id := range []byte{secGlobal, secExport} {
			if b, ok := replaced[id]; ok && order[id] < o && find(id) == nil {
				put(id, b)
			}
		}
	}
	for _, s := range secs {
		if s.id == secCustom {
			if r := (reader{b: s.body}); strings.HasPrefix(r.name(), ".debug_") {
				continue
			}
			out = append(out, s.id)
			out = appendU32(out, uint32(len(s.body)))
			out = append(out, s.body...)
			continue
		}
		insertMissing(order[s.id])
		if b, ok := replaced[s.id]; ok {
			put(s.id, b)
			continue
		}
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.body)))
		out = append(out, s.body...)
	}
	insertMissing(1 << 30)
	return out, nil
}

// vecHead reads the element count of a vector section.
func vecHead(s *section) (uint32, []byte, error) {
	r := reader{b: s.body, base: s.off}
	n := r.u32()
	if r.err != nil {
		return 0, nil, &Error{s.off, fmt.Sprintf("section %d: %v", s.id, r.err)}
	}
	return n, s.body[r.off:], nil
}

// checkSeq is the check inserted at loop and function starts.
func checkSeq(stop, budget, yield uint32) []byte {
	var b []byte
	b = append(b, 0x23) // global.get $stop
	b = appendU32(b, stop)
	b = append(b, 0x04, 0x40, 0x00, 0x0b) // if unreachable end
	b = append(b, 0x23)                   // global.get $budget
	b = appendU32(b, budget)
	b = append(b, 0x45, 0x04, 0x40, 0x10) // i32.eqz if call $yield
	b = appendU32(b, yield)
	b = append(b, 0x0b, 0x23) // end global.get $budget
	b = appendU32(b, budget)
	b = append(b, 0x41, 0x01, 0x6b, 0x24) // i32.const 1 i32.sub global.set $budget
	b = appendU32(b, budget)
	return b
}

// yieldBody is $yield: trap if stopped, exit to Go, refill the budget.
func yieldBody(stop, budget uint32) []byte {
	b := []byte{0x00}   // no locals
	b = append(b, 0x23) // global.get $stop
	b = appendU32(b, stop)
	b = append(b, 0x04, 0x40, 0x00, 0x0b)       // if unreachable end
	b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1a) // i32.const 0 memory.grow 0 drop
	b = append(b, 0x41)                         // i32.const Budget
	b = appendS32(b, Budget)
	b = append(b, 0x24) // global.set $budget
	b = appendU32(b, budget)
	return append(b, 0x0b)
}

// rewriteBody appends to dst the function body with check inserted at its
// entry (unless it starts with a loop) and after every loop instruction.
func rewriteBody(dst, body []byte, base int, check []byte) ([]byte, error) {
	r := reader{b: body, base: base}
	for n := r.u32(); n > 0 && r.err == nil; n-- { // locals
		r.u32()
		r.valType()
	}
	if r.err != nil {
		return nil, &Error{base + r.off, "locals: " + r.err.Error()}
	}
	dst = append(dst, body[:r.off]...)
	if r.off >= len(body) || body[r.off] != 0x03 {
		dst = append(dst, check...)
	}
	from := r.off
	for !r.done() {
		at := r.off
		op := r.byte()
		if err := r.skipImmediates(op); err != nil {
			return nil, &Error{base + at, err.Error()}
		}
		if r.err != nil {
			return nil, &Error{base + at, fmt.Sprintf("opcode %#x: %v", op, r.err)}
		}
		if op == 0x03 { // loop
			dst = append(dst, body[from:r.off]...)
			dst = append(dst, check...)
			from = r.off
		}
	}
	return append(dst, body[from:]...), nil
}

// skipImmediates reads the immediates of the instruction op
// (https://webassembly.github.io/spec/core/binary/instructions.html).
func (r *reader) skipImmediates(op byte) error {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x0a, op == 0x19,
		op == 0x1a, op == 0x1b, op >= 0x45 && op <= 0xc4, op == 0xd1:
		// unreachable nop else end return throw_ref catch_all drop select,
		// numeric (MVP and sign extension), ref.is_null: no immediates
	case op >= 0x02 && op <= 0x04, op == 0x06: // block loop if try: block type (s33)
		r.s64()
	case op >= 0x07 && op <= 0x09, op == 0x0c, op == 0x0d, op == 0x10, op == 0x12, op == 0x18,
		op >= 0x20 && op <= 0x26, op == 0xd2:
		// catch throw rethrow br br_if call return_call delegate
		// local/global/table get set tee, ref.func: one index
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11, op == 0x13: // call_indirect return_call_indirect: type table
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.valType()
		}
	case op == 0x1f: // try_table: block type, catch clauses
		r.s64()
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			switch k := r.byte(); k {
			case 0x00, 0x01: // catch, catch_ref: tag label
				r.u32()
				r.u32()
			case 0x02, 0x03: // catch_all, catch_all_ref: label
				r.u32()
			default:
				return fmt.Errorf("try_table: unknown catch kind %#x", k)
			}
		}
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f, op == 0x40: // memory.size memory.grow: memory index
		r.u32()
	case op == 0x41: // i32.const
		r.s64()
	case op == 0x42: // i64.const
		r.s64()
	case op == 0x43: // f32.const
		r.bytes(4)
	case op == 0x44: // f64.const
		r.bytes(8)
	case op == 0xd0: // ref.null: heap type
		r.s64()
	case op == 0xfc:
		return r.skipFC()
	case op == 0xfd:
		return r.skipSIMD()
	case op == 0xfe:
		return r.skipAtomic()
	default:
		return fmt.Errorf("unknown opcode %#x", op)
	}
	return nil
}

// skipFC: saturating truncation (0-7), bulk memory and tables (8-17).
func (r *reader) skipFC() error {
	sub := r.u32()
	switch {
	case sub <= 7: // trunc_sat
	case sub == 8: // memory.init data mem
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17:
		// data.drop memory.fill elem.drop table.grow table.size table.fill
		r.u32()
	case sub == 10, sub == 12, sub == 14: // memory.copy table.init table.copy
		r.u32()
		r.u32()
	default:
		if r.err != nil {
			return nil
		}
		return fmt.Errorf("unknown opcode 0xfc %d", sub)
	}
	return nil
}

// skipSIMD: the fixed-width SIMD proposal (0xfd prefix).
func (r *reader) skipSIMD() error {
	sub := r.u32()
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load zero
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		r.byte()
	case sub >= 84 && sub <= 91: // load_lane, store_lane
		r.memarg()
		r.byte()
	case sub <= 255: // arithmetic, comparisons, conversions
	default:
		if r.err != nil {
			return nil
		}
		return fmt.Errorf("unknown opcode 0xfd %d", sub)
	}
	return nil
}

// skipAtomic: the threads proposal (0xfe prefix).
func (r *reader) skipAtomic() error {
	sub := r.u32()
	switch {
	case sub == 3: // atomic.fence
		r.byte()
	case sub <= 2, sub >= 0x10 && sub <= 0x4e:
		r.memarg()
	default:
		if r.err != nil {
			return nil
		}
		return fmt.Errorf("unknown opcode 0xfe %d", sub)
	}
	return nil
}

// reader decodes the binary format; the first error sticks.
type reader struct {
	b    []byte
	off  int
	base int // offset of b in the input, for errors
	err  error
}

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errTruncated
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = errTruncated
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

// leb reads an LEB128 number of at most maxBytes bytes.
func (r *reader) leb(maxBytes int, signed bool) uint64 {
	var v uint64
	var shift uint
	for i := 0; i < maxBytes; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if signed && shift < 64 && c&0x40 != 0 {
				v |= ^uint64(0) << shift
			}
			return v
		}
	}
	r.err = errors.New("LEB128 number too long")
	return 0
}

func (r *reader) u32() uint32 { return uint32(r.leb(5, false)) }
func (r *reader) s64() int64  { return int64(r.leb(10, true)) }

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

// valType reads a value type: a number, vector or reference type byte, or
// (function references) 0x63/0x64 with a heap type.
func (r *reader) valType() {
	switch c := r.byte(); c {
	case 0x63, 0x64:
		r.s64()
	}
}

func (r *reader) refType() { r.valType() }

func (r *reader) limits() {
	flags := r.byte()
	r.leb(10, false)
	if flags&0x01 != 0 {
		r.leb(10, false)
	}
	if flags&^0x07 != 0 && r.err == nil {
		r.err = fmt.Errorf("unknown limits flags %#x", flags)
	}
}

// memarg reads align (with the multi-memory flag) and offset.
func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 {
		r.u32()
	}
	r.leb(10, false)
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
