// The ABI's exports (ABI.md, "Guest exports"). A plugin's entry file re-exports them:
//
//   export * from "<sdk>/assembly/exports";

import { __alloc_input, __init, __on_request, __on_response, __on_span_end } from "./index";

/** Version marker: the module speaks ABI v1. Never called. */
export function sidetrace_abi_v1(): void {}

export function sidetrace_alloc(size: u32): u32 {
  return __alloc_input(size);
}

export function sidetrace_init(len: u32): u64 {
  return __init(len);
}

export function sidetrace_on_request(len: u32): u64 {
  return __on_request(len);
}

export function sidetrace_on_response(len: u32): u64 {
  return __on_response(len);
}

export function sidetrace_on_span_end(len: u32): u64 {
  return __on_span_end(len);
}
