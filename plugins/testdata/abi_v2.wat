;; abi_v2.wat: speaks a future ABI version; Load must refuse it.
(module
  (memory (export "memory") 1)
  (func (export "sidetrace_abi_v2"))
  (func (export "sidetrace_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "sidetrace_init") (param i32) (result i64) (i64.const 0))
)
