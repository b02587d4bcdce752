package main

import (
	"math/bits"
	"unsafe"
)

// Features of a value that decide which detectors can match.
const (
	hasAt    = 1 << iota // '@'
	hasDash              // '-'
	hasDot               // '.'
	hasSpace             // ' ' or '\t'
	hasB                 // 'b' or 'B'
	hasJ                 // 'J' (of "eyJ", the start of a JWT)
)

const (
	lo = 0x0101010101010101
	hi = 0x8080808080808080
)

// classify counts the ASCII digits of s and reports which of the features
// above it has. It reads eight bytes per step (SWAR): in a sandboxed Go
// guest every loop iteration costs a check by the host, so fewer iterations
// matter more than fewer instructions.
func classify(s string) (digits int, f uint8) {
	i := 0
	if len(s) >= 8 {
		p := unsafe.Pointer(unsafe.StringData(s))
		var at, dash, dot, space, b, j uint64
		for ; i+8 <= len(s); i += 8 {
			w := *(*uint64)(unsafe.Add(p, i))
			digits += bits.OnesCount64(inRange(w, '0', '9'))
			at |= zeroMask(w ^ (lo * '@'))
			dash |= zeroMask(w ^ (lo * '-'))
			dot |= zeroMask(w ^ (lo * '.'))
			space |= zeroMask(w^(lo*' ')) | zeroMask(w^(lo*'\t'))
			b |= zeroMask((w | (lo * 0x20)) ^ (lo * 'b')) // 'B' | 0x20 == 'b'
			j |= zeroMask(w ^ (lo * 'J'))
		}
		f = flag(at, hasAt) | flag(dash, hasDash) | flag(dot, hasDot) | flag(space, hasSpace) | flag(b, hasB) | flag(j, hasJ)
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '@':
			f |= hasAt
		case c == '-':
			f |= hasDash
		case c == '.':
			f |= hasDot
		case c == ' ' || c == '\t':
			f |= hasSpace
		case c == 'b' || c == 'B':
			f |= hasB
		case c == 'J':
			f |= hasJ
		}
	}
	return digits, f
}

// indexByte is strings.IndexByte eight bytes per step (see classify).
func indexByte(s string, c byte) int {
	i := 0
	if len(s) >= 8 {
		p := unsafe.Pointer(unsafe.StringData(s))
		for ; i+8 <= len(s); i += 8 {
			if m := zeroMask(*(*uint64)(unsafe.Add(p, i)) ^ (lo * uint64(c))); m != 0 {
				// The lowest flagged byte is exact (borrows only run upwards).
				return i + bits.TrailingZeros64(m)/8
			}
		}
	}
	for ; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func flag(mask uint64, f uint8) uint8 {
	if mask != 0 {
		return f
	}
	return 0
}

// zeroMask is non-zero if and only if some byte of v is zero.
func zeroMask(v uint64) uint64 { return (v - lo) &^ v & hi }

// inRange has the high bit of each byte of w set exactly when that byte is
// in [a, b] (ASCII, b < 0x7f).
func inRange(w uint64, a, b byte) uint64 {
	x := w &^ hi                           // low seven bits of each byte: no carries below
	ge := (x + lo*uint64(0x80-a)) & hi     // x >= a
	gt := (x + lo*uint64(0x80-(b+1))) & hi // x > b
	return ge &^ gt &^ (w & hi)            // and the byte itself is ASCII
}
