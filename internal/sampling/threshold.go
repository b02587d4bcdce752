package sampling

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/otel/trace"
)

// Consistent probability sampling, as in
// https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/ : a 56-bit randomness
// value R (the explicit rv sub-key of the ot tracestate entry, else the 56 least-significant bits of the
// trace id) is compared with a 56-bit rejection threshold T = (1 - p) * 2^56; the span is kept iff R >= T.
const (
	// randomnessBits is the width of R and T.
	randomnessBits = 56
	// maxAdjustedCount is 2^56, the number of distinct randomness values.
	maxAdjustedCount = uint64(1) << randomnessBits
	// randomnessMask keeps the 56 least-significant bits of a uint64.
	randomnessMask = maxAdjustedCount - 1
	// thresholdDigits is the number of hex digits of a full-precision threshold and of an rv value.
	thresholdDigits = randomnessBits / 4
	// defaultPrecision is the number of significant hex digits of the encoded threshold: "OpenTelemetry
	// SDKs are recommended to use 4 digits of precision by default."
	defaultPrecision = 4
	// neverThreshold is a threshold no 56-bit randomness reaches: the probability is 0.
	neverThreshold = maxAdjustedCount
)

// traceIDRandomness returns the 56 least-significant bits of the trace id (bytes 9 to 15), the randomness
// W3C Trace Context Level 2 specifies for random trace ids.
func traceIDRandomness(id trace.TraceID) uint64 {
	return binary.BigEndian.Uint64(id[8:16]) & randomnessMask
}

// probabilityToThreshold converts p to a rejection threshold rounded to precision significant hex digits,
// following "Converting floating-point probability to threshold value": the precision is raised by one
// digit for each leading 'f' a small probability produces, and trailing digits are rounded half up.
// p >= 1 gives 0 (always sample); p too small to encode gives neverThreshold.
func probabilityToThreshold(p float64, precision int) uint64 {
	if p >= 1 {
		return 0
	}
	if !(p > 0) {
		return neverThreshold
	}
	_, exp := math.Frexp(p) // p = frac * 2^exp with frac in [0.5, 1), exp <= 0 here
	precision = min(thresholdDigits, max(1, precision+(-exp)/4))
	t := maxAdjustedCount - uint64(math.Round(p*float64(maxAdjustedCount)))
	if shift := 4 * (thresholdDigits - precision); shift > 0 {
		t = (t + uint64(1)<<(shift-1)) >> shift << shift
	}
	if t >= maxAdjustedCount {
		return neverThreshold
	}
	return t
}

// thresholdToProbability is (2^56 - T) / 2^56 ("Converting threshold to a sampling probability").
func thresholdToProbability(t uint64) float64 {
	if t >= maxAdjustedCount {
		return 0
	}
	return float64(maxAdjustedCount-t) / float64(maxAdjustedCount)
}

const hexDigits = "0123456789abcdef"

// encodeThreshold returns the th value of t: 14 lowercase hex digits with trailing zeros removed, "0"
// for 100% sampling ("Converting integer threshold to a th-value").
func encodeThreshold(t uint64) string {
	if t == 0 {
		return "0"
	}
	var b [thresholdDigits]byte
	for i := thresholdDigits - 1; i >= 0; i-- {
		b[i] = hexDigits[t&0xf]
		t >>= 4
	}
	n := thresholdDigits
	for n > 1 && b[n-1] == '0' {
		n--
	}
	return string(b[:n])
}

// decodeThreshold parses a th value: 1 to 14 hex digits, extended with trailing zeros to 14 digits.
func decodeThreshold(s string) (uint64, bool) {
	if len(s) < 1 || len(s) > thresholdDigits {
		return 0, false
	}
	v, ok := parseHex(s)
	if !ok {
		return 0, false
	}
	return v << (4 * (thresholdDigits - len(s))), true
}

// decodeRandomness parses an rv value: exactly 14 hex digits.
func decodeRandomness(s string) (uint64, bool) {
	if len(s) != thresholdDigits {
		return 0, false
	}
	return parseHex(s)
}

func parseHex(s string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}
