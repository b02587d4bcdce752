;; missing_export.wat: declares the request hook (OpHooks 1) but does not
;; export sidetrace_on_request; Load must refuse it.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "\10\01\00\00\00")
  (func (export "sidetrace_abi_v1"))
  (func (export "sidetrace_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "sidetrace_init") (param i32) (result i64) (i64.const 0x1000000005)) ;; ptr 16, len 5
)
