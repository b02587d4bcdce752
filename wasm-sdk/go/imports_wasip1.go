package sdk

import "unsafe"

//go:wasmimport sidetrace log
func sidetraceLog(level int32, ptr, n uint32)

//go:wasmimport sidetrace get_header
func sidetraceGetHeader(which int32, namePtr, nameLen, bufPtr, bufLimit uint32) int32

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func strPtr(s string) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func hostLog(level int32, msg string) {
	sidetraceLog(level, strPtr(msg), uint32(len(msg)))
}

var headerBuf = make([]byte, 256)

func hostGetHeader(which int32, name string) (string, bool) {
	for {
		n := sidetraceGetHeader(which, strPtr(name), uint32(len(name)), ptr(headerBuf), uint32(len(headerBuf)))
		if n < 0 {
			return "", false
		}
		if int(n) <= len(headerBuf) {
			return string(headerBuf[:n]), true
		}
		headerBuf = make([]byte, n)
	}
}
