// The ABI's exports (ABI.md, "Guest exports"). A plugin's entry file re-exports them:
//
//   export * from "<sdk>/assembly/exports";

import { __alloc_input, __init, __on_request, __on_response, __on_span_end } from "./index";

/** Version marker: the module speaks ABI v1. Never called. */
export function sidetrace_abi_v1(): void {}

export function sidetrace_alloc(size: u32): u32 {
  return __alloc_input(size);
}

// The SDK is built with AssemblyScript's minimal runtime, whose garbage collector runs only
// when asked and sees only globals: it runs at the end of a call (no managed reference is then
// live on the stack), every COLLECT_EVERY calls, so the garbage of a few calls is all a plugin
// keeps between collections.
const COLLECT_EVERY = 32;
let calls = 0;

function done(res: u64): u64 {
  if (++calls >= COLLECT_EVERY) {
    calls = 0;
    __collect();
  }
  return res;
}

export function sidetrace_init(len: u32): u64 {
  const res = __init(len);
  __collect();
  return res;
}

export function sidetrace_on_request(len: u32): u64 {
  return done(__on_request(len));
}

export function sidetrace_on_response(len: u32): u64 {
  return done(__on_response(len));
}

export function sidetrace_on_span_end(len: u32): u64 {
  return done(__on_span_end(len));
}
