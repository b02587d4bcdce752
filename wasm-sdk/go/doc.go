// Package sdk writes sidetrace plugins in Go. A plugin registers its hooks in
// an init function and is built with the stock toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// For example, a plugin that tags each request with a header's value:
//
//	package main
//
//	import sdk "github.com/sidetrace/sidetrace/wasm-sdk/go"
//
//	func init() {
//		sdk.RequestHeaders("x-client")
//		sdk.OnRequest(func(r sdk.Request) sdk.Decision {
//			if c := r.Header("x-client"); c != "" {
//				r.SetAttribute("app.client", sdk.String(c))
//			}
//			return sdk.NoOpinion
//		})
//	}
//
//	func main() {}
//
// The package hides the ABI (wasm-sdk/ABI.md): the buffers, the views the
// host writes and the op lists the hooks return. Outside wasip1 it compiles
// against stubs, so plugins unit-test natively (see Test).
package sdk
