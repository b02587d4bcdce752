module github.com/sidetrace/sidetrace/wasm-sdk/go

go 1.26
