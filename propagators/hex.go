package propagators

// Hexadecimal helpers shared by the parsers. W3C, B3 and X-Ray ids are lower-case hex (decodeHex rejects
// upper case); Jaeger clients accept either case (decodeHexRight). Writers always use lower case.

const hexDigits = "0123456789abcdef"

// unhex maps '0'-'9' and 'a'-'f' to their value and every other byte to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < 10; i++ {
		t['0'+i] = byte(i)
	}
	for i := 0; i < 6; i++ {
		t['a'+i] = byte(10 + i)
	}
	return t
}()

// unhexFold is unhex accepting upper-case 'A'-'F' too.
var unhexFold = func() (t [256]byte) {
	t = unhex
	for i := 0; i < 6; i++ {
		t['A'+i] = byte(10 + i)
	}
	return t
}()

// decodeHex decodes the lower-case hex string s, len(s) == 2*len(dst), into dst.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	var bad byte
	for i := range dst {
		hi, lo := unhex[s[2*i]], unhex[s[2*i+1]]
		dst[i] = hi<<4 | lo
		bad |= hi | lo
	}
	return bad&0xf0 == 0
}

// decodeHexRight decodes a hex string of 1..2*len(dst) digits, either case, into dst, right aligned
// (left-padded with zeros), as Jaeger's variable width ids require.
func decodeHexRight(dst []byte, s string) bool {
	if len(s) == 0 || len(s) > 2*len(dst) {
		return false
	}
	clear(dst)
	j := len(dst) - 1
	for i := len(s); i > 0; i -= 2 {
		lo := unhexFold[s[i-1]]
		hi := byte(0)
		if i >= 2 {
			hi = unhexFold[s[i-2]]
		}
		if (hi|lo)&0xf0 != 0 {
			return false
		}
		dst[j] = hi<<4 | lo
		j--
	}
	return true
}

// encodeHex writes the lower-case hex of src into dst (len(dst) >= 2*len(src)) and returns the bytes written.
func encodeHex(dst []byte, src []byte) int {
	for i, b := range src {
		dst[2*i] = hexDigits[b>>4]
		dst[2*i+1] = hexDigits[b&0x0f]
	}
	return 2 * len(src)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS trims optional white space (RFC 7230 OWS: space and horizontal tab) from both ends of s.
func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}
