// Package plugins runs sidetrace's WebAssembly plugins: per request, a request
// hook and a response hook that add span attributes, set a tenant and decide
// sampling; per finished span, a span-end hook that redacts attributes before
// any exporter sees them.
//
// Plugins speak ABI v1, specified in wasm-sdk/ABI.md; its numbers and names
// are in plugins/internal/abi. Each module is compiled once (wazero,
// optionally with an on-disk compilation cache) and runs in a bounded pool of
// instances that are never shared between concurrent calls; each call has a
// deadline, each instance a memory cap and no filesystem, network, environment
// or arguments. A trap, a timeout or a malformed result discards the instance
// and counts the failure; the pool refills on demand.
//
// The chain is configured by SIDETRACE_PLUGINS (see ParseSpecs) and can be
// hot-reloaded (Reload, Watch) without disturbing requests in flight.
package plugins
