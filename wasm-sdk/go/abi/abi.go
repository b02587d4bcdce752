// Package abi holds the numbers and names of the sidetrace plugin ABI v1. It is a
// mirror of the host's plugins/internal/abi (a test in the root module checks that
// both declare the same constants). The prose specification is wasm-sdk/ABI.md; each
// constant names the section it belongs to.
//
// Everything crossing the boundary is a number: i32 offsets and lengths into
// the guest's exported memory, and one packed i64 result per guest call.
// Multi-byte integers are little-endian; a "str" is a u32 byte length followed
// by that many bytes of UTF-8.
package abi

// Version is the ABI version this package describes.
const Version = "v1"

// Guest exports (ABI.md, "Guest exports").
const (
	// ExportMemory is the guest's linear memory; the host reads and writes views in it.
	ExportMemory = "memory"

	// ExportVersionMarker is an empty function whose presence says the guest speaks ABI v1.
	//
	// # Parameters
	//
	// None.
	//
	// # Result
	//
	// None. The host never calls it.
	ExportVersionMarker = "sidetrace_abi_v1"

	// VersionMarkerPrefix starts every version marker; a guest exporting
	// "sidetrace_abi_v2" speaks an ABI this host does not.
	VersionMarkerPrefix = "sidetrace_abi_"

	// ExportAlloc returns the guest's input buffer, of at least size bytes.
	//
	// # Parameters
	//
	//   - size (i32): the number of bytes the host needs to write.
	//
	// # Result
	//
	//   - ptr (i32): offset of a buffer of at least size bytes, valid until the
	//     next call to sidetrace_alloc; 0 if the guest cannot provide it.
	//
	// # Example
	//
	// The host calls sidetrace_alloc(4096) once per instance, then again only
	// when a view does not fit.
	ExportAlloc = "sidetrace_alloc"

	// ExportInit initialises an instance with the plugin's config.
	//
	// # Parameters
	//
	//   - len (i32): the config bytes (JSON, possibly empty) written at the
	//     start of the input buffer.
	//
	// # Result
	//
	//   - (i64) packed output: ptr<<32 | len of an op list made of OpHooks,
	//     OpRequestHeader, OpResponseHeader and OpFail ops.
	ExportInit = "sidetrace_init"

	// ExportOnRequest is the request hook.
	//
	// # Parameters
	//
	//   - len (i32): a request view (ABI.md, "Request view") written at the
	//     start of the input buffer.
	//
	// # Result
	//
	//   - (i64) packed output: an op list of OpSetAttr, OpSetTenant,
	//     OpDecision and OpFail; 0 means no edits and no opinion.
	ExportOnRequest = "sidetrace_on_request"

	// ExportOnResponse is the response hook.
	//
	// # Parameters
	//
	//   - len (i32): a response view (ABI.md, "Response view").
	//
	// # Result
	//
	//   - (i64) packed output: an op list of OpSetAttr, OpMarkError, OpKeep
	//     and OpFail; 0 means no edits.
	ExportOnResponse = "sidetrace_on_response"

	// ExportOnSpanEnd is the span-end (redaction) hook.
	//
	// # Parameters
	//
	//   - len (i32): a span view (ABI.md, "Span view").
	//
	// # Result
	//
	//   - (i64) packed output: an op list of OpSetAttr, OpDeleteAttr,
	//     OpSetEventAttr, OpDeleteEventAttr and OpFail; 0 means no edits.
	ExportOnSpanEnd = "sidetrace_on_span_end"

	// ExportInitialize is WASI's reactor initialiser (Go's c-shared build
	// mode exports it); the host calls it, if present, before anything else.
	ExportInitialize = "_initialize"
)

// Host imports, all in module HostModule (ABI.md, "Host imports").
const (
	HostModule = "sidetrace"

	// ImportLog writes a message to the host's log, attributed to the plugin.
	//
	// # Parameters
	//
	//   - level (i32): LogDebug, LogInfo, LogWarn or LogError.
	//   - ptr, len (i32, i32): the UTF-8 message in guest memory.
	//
	// # Result
	//
	// None.
	ImportLog = "log"

	// ImportGetHeader reads one header of the current request or response on
	// demand, for headers the plugin did not declare at init. Values of a
	// repeated header are joined with ", ".
	//
	// # Parameters
	//
	//   - which (i32): HeaderRequest or HeaderResponse.
	//   - name_ptr, name_len (i32, i32): the header name, any case.
	//   - buf_ptr, buf_limit (i32, i32): where to write the value.
	//
	// # Result
	//
	//   - (i32) the value's length in bytes, written only if it is <=
	//     buf_limit; -1 if the header is absent or no request (response) is
	//     being processed.
	//
	// # Example
	//
	// get_header(0, "x-tenant-id", buf, 64) returns 4 and writes "acme".
	ImportGetHeader = "get_header"
)

// Log levels for ImportLog, equal to log/slog's.
const (
	LogDebug = -4
	LogInfo  = 0
	LogWarn  = 4
	LogError = 8
)

// Header selectors for ImportGetHeader.
const (
	HeaderRequest  = 0
	HeaderResponse = 1
)

// Hook bits for OpHooks (ABI.md, "Init output").
const (
	HookRequest  = 1 << 0
	HookResponse = 1 << 1
	HookSpanEnd  = 1 << 2
	HookAll      = HookRequest | HookResponse | HookSpanEnd
)

// Span kinds in views, the OTLP numbers.
const (
	KindUnspecified = 0
	KindInternal    = 1
	KindServer      = 2
	KindClient      = 3
	KindProducer    = 4
	KindConsumer    = 5
)

// Decisions for OpDecision (ABI.md, "Decision").
const (
	DecisionNoOpinion       = 0
	DecisionDrop            = 1
	DecisionRecordOnly      = 2
	DecisionRecordAndSample = 3
)

// Value types: a value is a u8 type followed by its payload (ABI.md, "Values").
const (
	ValueOther        = 0 // str: textual form of a type the ABI does not carry (bytes, maps, mixed slices); the guest may replace it
	ValueString       = 1 // str
	ValueBool         = 2 // u8: 0 or 1
	ValueInt64        = 3 // i64
	ValueFloat64      = 4 // f64 (IEEE 754 bits)
	ValueStringSlice  = 5 // u32 count, count × str
	ValueBoolSlice    = 6 // u32 count, count × u8
	ValueInt64Slice   = 7 // u32 count, count × i64
	ValueFloat64Slice = 8 // u32 count, count × f64
)

// Output ops: an output is a sequence of ops, each a u8 code followed by its
// operands (ABI.md, "Output ops").
const (
	OpSetAttr         = 0x01 // str key, value: add (request, response) or set (span end) a span attribute
	OpDeleteAttr      = 0x02 // str key: delete a span attribute (span end)
	OpSetEventAttr    = 0x03 // u32 event index, str key, value (span end)
	OpDeleteEventAttr = 0x04 // u32 event index, str key (span end)
	OpSetTenant       = 0x05 // str tenant (request)
	OpDecision        = 0x06 // u8 decision (request)
	OpMarkError       = 0x07 // str description, may be empty (response)
	OpKeep            = 0x08 // no operands (response)
	OpFail            = 0x09 // str message: the call failed (any hook, init)
	OpHooks           = 0x10 // u32 hook bits (init)
	OpRequestHeader   = 0x11 // str header name to include in request views (init)
	OpResponseHeader  = 0x12 // str header name to include in response views (init)
)

// Sizes of fixed-width fields.
const (
	TraceIDSize = 16
	SpanIDSize  = 8
)

// Limits the host enforces.
const (
	// InitialBuffer is the size the host asks sidetrace_alloc for first.
	InitialBuffer = 4096
	// MaxDeclaredHeaders bounds OpRequestHeader + OpResponseHeader ops.
	MaxDeclaredHeaders = 64
)

// Pack builds a packed i64 result from an output's offset and length.
func Pack(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// Unpack splits a packed i64 result into the output's offset and length.
func Unpack(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }
