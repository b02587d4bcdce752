package sdk

import "github.com/sidetrace/sidetrace/wasm-sdk/go/abi"

// The ABI's guest exports (wasm-sdk/ABI.md, "Guest exports").

//go:wasmexport sidetrace_abi_v1
func exportVersionMarker() {}

//go:wasmexport sidetrace_alloc
func exportAlloc(size int32) int32 {
	return int32(ptr(alloc(uint32(size))))
}

//go:wasmexport sidetrace_init
func exportInit(n int32) int64 { return result(handleInit(input[:n])) }

//go:wasmexport sidetrace_on_request
func exportOnRequest(n int32) int64 { return result(handleRequest(input[:n])) }

//go:wasmexport sidetrace_on_response
func exportOnResponse(n int32) int64 { return result(handleResponse(input[:n])) }

//go:wasmexport sidetrace_on_span_end
func exportOnSpanEnd(n int32) int64 { return result(handleSpanEnd(input[:n])) }

func result(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	return int64(abi.Pack(ptr(b), uint32(len(b))))
}
