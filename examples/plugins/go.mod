module github.com/sidetrace/sidetrace/examples/plugins

go 1.26

require github.com/sidetrace/sidetrace/wasm-sdk/go v0.0.0

replace github.com/sidetrace/sidetrace/wasm-sdk/go => ../../wasm-sdk/go
