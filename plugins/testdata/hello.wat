;; hello.wat: a sidetrace ABI v1 plugin written by hand, proving the ABI needs
;; no SDK (see wasm-sdk/ABI.md). It implements all three hooks:
;;   init:      declares hooks 7, request header "x-tenant-id" and response
;;              header "content-type"; logs "hello ready".
;;   request:   adds wat.method = <method> (copied from the view),
;;              wat.request_id = get_header("x-request-id") when present,
;;              and decides record_and_sample.
;;   response:  adds wat.status = <status> (i64), wat.content_type = the first
;;              content-type value (from the view) when present, and asks to
;;              keep the span when status >= 500.
;;   span end:  deletes attribute "wat.delete_me" and sets wat.seen = true.
(module
  (import "sidetrace" "log" (func $log (param i32 i32 i32)))
  (import "sidetrace" "get_header" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)

  ;; 16: init output (38 bytes): OpHooks 7, OpRequestHeader "x-tenant-id",
  ;; OpResponseHeader "content-type"
  (data (i32.const 16) "\10\07\00\00\00\11\0b\00\00\00x-tenant-id\12\0c\00\00\00content-type")
  ;; 64: "hello ready" (11)
  (data (i32.const 64) "hello ready")
  ;; 96: "x-request-id" (12)
  (data (i32.const 96) "x-request-id")
  ;; 128: span-end output (33 bytes): OpDeleteAttr "wat.delete_me"; OpSetAttr "wat.seen" bool 1
  (data (i32.const 128) "\02\0d\00\00\00wat.delete_me\01\08\00\00\00wat.seen\02\01")

  ;; 65536..131071: the input buffer; 2048..: the output area (up to 63 KiB).
  (global $out i32 (i32.const 2048))

  (func (export "sidetrace_abi_v1"))

  (func (export "sidetrace_alloc") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))

  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  (func (export "sidetrace_init") (param $len i32) (result i64)
    (call $log (i32.const 0) (i32.const 64) (i32.const 11))
    (call $pack (i32.const 16) (i32.const 38)))

  ;; Request view: u8 kind, [16] trace id, str method, ...
  (func (export "sidetrace_on_request") (param $len i32) (result i64)
    (local $mlen i32) (local $p i32) (local $n i32)
    (local.set $mlen (i32.load (i32.const 65553)))     ;; 65536 + 1 + 16
    (local.set $p (global.get $out))
    ;; OpSetAttr, key "wat.method", type string, method
    (i32.store8 (local.get $p) (i32.const 0x01))
    (i32.store (i32.add (local.get $p) (i32.const 1)) (i32.const 10))
    (memory.copy (i32.add (local.get $p) (i32.const 5)) (i32.const 1024) (i32.const 10)) ;; "wat.method" from 1024
    (i32.store8 (i32.add (local.get $p) (i32.const 15)) (i32.const 0x01))
    (i32.store (i32.add (local.get $p) (i32.const 16)) (local.get $mlen))
    (memory.copy (i32.add (local.get $p) (i32.const 20)) (i32.const 65557) (local.get $mlen))
    (local.set $p (i32.add (i32.add (local.get $p) (i32.const 20)) (local.get $mlen)))
    ;; wat.request_id from the host, read on demand into p+24
    (local.set $n (call $get_header (i32.const 0) (i32.const 96) (i32.const 12)
                                    (i32.add (local.get $p) (i32.const 24)) (i32.const 256)))
    (if (i32.and (i32.ge_s (local.get $n) (i32.const 0)) (i32.le_s (local.get $n) (i32.const 256)))
      (then
        (i32.store8 (local.get $p) (i32.const 0x01))
        (i32.store (i32.add (local.get $p) (i32.const 1)) (i32.const 14))
        (memory.copy (i32.add (local.get $p) (i32.const 5)) (i32.const 1040) (i32.const 14)) ;; "wat.request_id"
        (i32.store8 (i32.add (local.get $p) (i32.const 19)) (i32.const 0x01))
        ;; value bytes are at p+24, its length at p+20
        (i32.store (i32.add (local.get $p) (i32.const 20)) (local.get $n))
        (local.set $p (i32.add (i32.add (local.get $p) (i32.const 24)) (local.get $n)))))
    ;; OpDecision record_and_sample
    (i32.store8 (local.get $p) (i32.const 0x06))
    (i32.store8 (i32.add (local.get $p) (i32.const 1)) (i32.const 3))
    (local.set $p (i32.add (local.get $p) (i32.const 2)))
    (call $pack (global.get $out) (i32.sub (local.get $p) (global.get $out))))

  (data (i32.const 1024) "wat.method")
  (data (i32.const 1040) "wat.request_id")
  (data (i32.const 1056) "wat.status")
  (data (i32.const 1072) "wat.content_type")

  ;; Response view: u8 kind, [16] trace id, str tenant, u32 status, u64 duration ns, headers.
  (func (export "sidetrace_on_response") (param $len i32) (result i64)
    (local $status i32) (local $p i32) (local $h i32) (local $n i32)
    ;; status at 65536 + 17 + 4 + tenant length
    (local.set $h (i32.add (i32.const 65557) (i32.load (i32.const 65553))))
    (local.set $status (i32.load (local.get $h)))
    ;; then u64 duration, then the declared header: u32 count, str values
    (local.set $h (i32.add (local.get $h) (i32.const 12)))
    (local.set $p (global.get $out))
    (i32.store8 (local.get $p) (i32.const 0x01))
    (i32.store (i32.add (local.get $p) (i32.const 1)) (i32.const 10))
    (memory.copy (i32.add (local.get $p) (i32.const 5)) (i32.const 1056) (i32.const 10))
    (i32.store8 (i32.add (local.get $p) (i32.const 15)) (i32.const 0x03))
    (i64.store (i32.add (local.get $p) (i32.const 16)) (i64.extend_i32_u (local.get $status)))
    (local.set $p (i32.add (local.get $p) (i32.const 24)))
    (if (i32.gt_u (i32.load (local.get $h)) (i32.const 0))
      (then
        ;; OpSetAttr "wat.content_type" string <first value>
        (local.set $n (i32.load (i32.add (local.get $h) (i32.const 4))))
        (i32.store8 (local.get $p) (i32.const 0x01))
        (i32.store (i32.add (local.get $p) (i32.const 1)) (i32.const 16))
        (memory.copy (i32.add (local.get $p) (i32.const 5)) (i32.const 1072) (i32.const 16))
        (i32.store8 (i32.add (local.get $p) (i32.const 21)) (i32.const 0x01))
        (i32.store (i32.add (local.get $p) (i32.const 22)) (local.get $n))
        (memory.copy (i32.add (local.get $p) (i32.const 26)) (i32.add (local.get $h) (i32.const 8)) (local.get $n))
        (local.set $p (i32.add (i32.add (local.get $p) (i32.const 26)) (local.get $n)))))
    (if (i32.ge_u (local.get $status) (i32.const 500))
      (then
        (i32.store8 (local.get $p) (i32.const 0x08))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))))
    (call $pack (global.get $out) (i32.sub (local.get $p) (global.get $out))))

  (func (export "sidetrace_on_span_end") (param $len i32) (result i64)
    (call $pack (i32.const 128) (i32.const 33)))
)
