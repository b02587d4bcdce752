;; bad_signature.wat: sidetrace_on_request returns i32, not i64; Load must refuse it.
(module
  (memory (export "memory") 1)
  (func (export "sidetrace_abi_v1"))
  (func (export "sidetrace_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "sidetrace_init") (param i32) (result i64) (i64.const 0))
  (func (export "sidetrace_on_request") (param i32) (result i32) (i32.const 0))
)
