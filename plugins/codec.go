package plugins

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sidetrace/sidetrace/plugins/internal/abi"
)

// encoder builds a view (ABI.md, "Views") in a reused buffer.
type encoder struct{ b []byte }

func (e *encoder) reset()       { e.b = e.b[:0] }
func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) raw(v []byte) { e.b = append(e.b, v...) }
func (e *encoder) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }
func (e *encoder) strs(s []string) {
	e.u32(uint32(len(s)))
	for _, v := range s {
		e.str(v)
	}
}

func (e *encoder) value(v attribute.Value) {
	switch v.Type() {
	case attribute.STRING:
		e.u8(abi.ValueString)
		e.str(v.AsString())
	case attribute.BOOL:
		e.u8(abi.ValueBool)
		if v.AsBool() {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case attribute.INT64:
		e.u8(abi.ValueInt64)
		e.u64(uint64(v.AsInt64()))
	case attribute.FLOAT64:
		e.u8(abi.ValueFloat64)
		e.u64(math.Float64bits(v.AsFloat64()))
	case attribute.STRINGSLICE:
		e.u8(abi.ValueStringSlice)
		e.strs(v.AsStringSlice())
	case attribute.BOOLSLICE:
		e.u8(abi.ValueBoolSlice)
		s := v.AsBoolSlice()
		e.u32(uint32(len(s)))
		for _, b := range s {
			if b {
				e.u8(1)
			} else {
				e.u8(0)
			}
		}
	case attribute.INT64SLICE:
		e.u8(abi.ValueInt64Slice)
		s := v.AsInt64Slice()
		e.u32(uint32(len(s)))
		for _, n := range s {
			e.u64(uint64(n))
		}
	case attribute.FLOAT64SLICE:
		e.u8(abi.ValueFloat64Slice)
		s := v.AsFloat64Slice()
		e.u32(uint32(len(s)))
		for _, f := range s {
			e.u64(math.Float64bits(f))
		}
	default:
		e.u8(abi.ValueOther)
		e.str(v.Emit())
	}
}

func (e *encoder) attrs(kvs []attribute.KeyValue) {
	e.u32(uint32(len(kvs)))
	for _, kv := range kvs {
		e.str(string(kv.Key))
		e.value(kv.Value)
	}
}

// decoder reads an op list from guest memory. The first error sticks; reads
// after it return zero values.
type decoder struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("truncated")

func (d *decoder) done() bool { return d.err != nil || d.off >= len(d.b) }

// reportedFailure reads the message of an OpFail: the plugin reporting its own failure.
func (d *decoder) reportedFailure() error {
	msg := d.str()
	if d.err != nil {
		return nil // result reports the decode error
	}
	return &callError{kind: failReported, msg: "plugin failed: " + msg}
}

// result is a hook's decode outcome: err from the ops, else the decoder's own error as a malformed result.
func (d *decoder) result(err error) error {
	if err == nil && d.err != nil {
		return malformed(d.err.Error())
	}
	return err
}

func (d *decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || len(d.b)-d.off < n {
		d.err = fmt.Errorf("%w: need %d bytes at byte %d of %d", errShort, n, d.off, len(d.b))
		return false
	}
	return true
}

func (d *decoder) u8() uint8 {
	if !d.need(1) {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// str copies a string out of guest memory.
func (d *decoder) str() string {
	n := d.u32()
	if !d.need(int(n)) {
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

// key reads an attribute key, interned: plugins set the same few keys on
// every call.
func (d *decoder) key(c *keyCache) attribute.Key {
	n := d.u32()
	if !d.need(int(n)) {
		return ""
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	if k, ok := c.m[string(b)]; ok {
		return k
	}
	k := attribute.Key(b)
	if c.m == nil {
		c.m = map[string]attribute.Key{}
	}
	if len(c.m) < maxInternedKeys && len(b) <= 128 {
		c.m[string(k)] = k
	}
	return k
}

// keyCache interns attribute keys per instance (no locking needed).
type keyCache struct{ m map[string]attribute.Key }

const maxInternedKeys = 256

// count reads an element count, bounded by the bytes left (each element
// takes at least min bytes), so a garbage count cannot make the host allocate.
func (d *decoder) count(min int) int {
	n := d.u32()
	if d.err == nil && int64(n)*int64(min) > int64(len(d.b)-d.off) {
		d.err = fmt.Errorf("count %d at byte %d exceeds the output", n, d.off-4)
		return 0
	}
	return int(n)
}

func (d *decoder) value() attribute.Value {
	switch t := d.u8(); t {
	case abi.ValueString, abi.ValueOther:
		return attribute.StringValue(d.str())
	case abi.ValueBool:
		return attribute.BoolValue(d.u8() != 0)
	case abi.ValueInt64:
		return attribute.Int64Value(int64(d.u64()))
	case abi.ValueFloat64:
		return attribute.Float64Value(math.Float64frombits(d.u64()))
	case abi.ValueStringSlice:
		s := make([]string, d.count(4))
		for i := range s {
			s[i] = d.str()
		}
		return attribute.StringSliceValue(s)
	case abi.ValueBoolSlice:
		s := make([]bool, d.count(1))
		for i := range s {
			s[i] = d.u8() != 0
		}
		return attribute.BoolSliceValue(s)
	case abi.ValueInt64Slice:
		s := make([]int64, d.count(8))
		for i := range s {
			s[i] = int64(d.u64())
		}
		return attribute.Int64SliceValue(s)
	case abi.ValueFloat64Slice:
		s := make([]float64, d.count(8))
		for i := range s {
			s[i] = math.Float64frombits(d.u64())
		}
		return attribute.Float64SliceValue(s)
	default:
		if d.err == nil {
			d.err = fmt.Errorf("unknown value type %d at byte %d", t, d.off-1)
		}
		return attribute.Value{}
	}
}
