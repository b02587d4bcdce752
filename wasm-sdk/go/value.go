package sdk

import (
	"strconv"
	"strings"

	"github.com/sidetrace/sidetrace/wasm-sdk/go/abi"
)

// Type is a Value's type.
type Type uint8

const (
	TypeOther        Type = abi.ValueOther // a type the ABI does not carry, as text (AsString)
	TypeString       Type = abi.ValueString
	TypeBool         Type = abi.ValueBool
	TypeInt64        Type = abi.ValueInt64
	TypeFloat64      Type = abi.ValueFloat64
	TypeStringSlice  Type = abi.ValueStringSlice
	TypeBoolSlice    Type = abi.ValueBoolSlice
	TypeInt64Slice   Type = abi.ValueInt64Slice
	TypeFloat64Slice Type = abi.ValueFloat64Slice
)

// Value is an attribute value.
type Value struct {
	typ Type
	s   string
	n   int64
	f   float64
	b   bool
	ss  []string
	bs  []bool
	ns  []int64
	fs  []float64
}

func String(s string) Value               { return Value{typ: TypeString, s: s} }
func Bool(b bool) Value                   { return Value{typ: TypeBool, b: b} }
func Int64(n int64) Value                 { return Value{typ: TypeInt64, n: n} }
func Int(n int) Value                     { return Int64(int64(n)) }
func Float64(f float64) Value             { return Value{typ: TypeFloat64, f: f} }
func StringSlice(s []string) Value        { return Value{typ: TypeStringSlice, ss: s} }
func BoolSlice(s []bool) Value            { return Value{typ: TypeBoolSlice, bs: s} }
func Int64Slice(s []int64) Value          { return Value{typ: TypeInt64Slice, ns: s} }
func Float64Slice(s []float64) Value      { return Value{typ: TypeFloat64Slice, fs: s} }
func (v Value) Type() Type                { return v.typ }
func (v Value) AsBool() bool              { return v.b }
func (v Value) AsInt64() int64            { return v.n }
func (v Value) AsFloat64() float64        { return v.f }
func (v Value) AsStringSlice() []string   { return v.ss }
func (v Value) AsBoolSlice() []bool       { return v.bs }
func (v Value) AsInt64Slice() []int64     { return v.ns }
func (v Value) AsFloat64Slice() []float64 { return v.fs }
func (v Value) IsString() bool            { return v.typ == TypeString || v.typ == TypeOther }

// AsString returns a string value (or the text of a TypeOther value); for
// other types, their text.
func (v Value) AsString() string {
	switch v.typ {
	case TypeString, TypeOther:
		return v.s
	case TypeBool:
		return strconv.FormatBool(v.b)
	case TypeInt64:
		return strconv.FormatInt(v.n, 10)
	case TypeFloat64:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case TypeStringSlice:
		return "[" + strings.Join(v.ss, ",") + "]"
	}
	return ""
}
