;; faulty.wat: a plugin that misbehaves on purpose in every hook, the way its
;; config (a JSON number, first digit) says:
;;   0 ok (no edits)          1 infinite loop         2 trap (unreachable)
;;   3 grow memory until the cap refuses, then return normally
;;   4 result outside memory  5 truncated op list    6 unknown op
;;   7 reports a failure (OpFail)
;;   8 loops on every second call of an instance (to watch the pool refill)
;;   9 grow memory until the cap refuses, then trap (a guest out of memory)
(module
  (memory (export "memory") 1)
  (global $mode (mut i32) (i32.const 0))
  (global $calls (mut i32) (i32.const 0))
  ;; 16: init output: OpHooks 7
  (data (i32.const 16) "\10\07\00\00\00")
  ;; 32: truncated: OpSetAttr with a key length of 100 and no key
  (data (i32.const 32) "\01\64\00\00\00")
  ;; 48: unknown op 0x7f
  (data (i32.const 48) "\7f")
  ;; 64: OpFail "on purpose" (1+4+10)
  (data (i32.const 64) "\09\0a\00\00\00on purpose")

  (func (export "sidetrace_abi_v1"))
  (func (export "sidetrace_alloc") (param i32) (result i32)
    (if (i32.gt_u (local.get 0) (i32.const 32768)) (then (return (i32.const 0))))
    (i32.const 32768))
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))
  (func (export "sidetrace_init") (param $len i32) (result i64)
    (if (i32.gt_u (local.get $len) (i32.const 0))
      (then (global.set $mode (i32.sub (i32.load8_u (i32.const 32768)) (i32.const 48)))))
    (call $pack (i32.const 16) (i32.const 5)))

  (func $fault (result i64)
    (local $m i32)
    (local.set $m (global.get $mode))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.eq (local.get $m) (i32.const 8))
      (then (local.set $m (select (i32.const 0) (i32.const 1)
                                  (i32.and (global.get $calls) (i32.const 1))))))
    (block $done
      (br_if $done (i32.eqz (local.get $m)))
      (if (i32.eq (local.get $m) (i32.const 1)) (then (loop $forever (br $forever))))
      (if (i32.eq (local.get $m) (i32.const 2)) (then unreachable))
      (if (i32.or (i32.eq (local.get $m) (i32.const 3)) (i32.eq (local.get $m) (i32.const 9)))
        (then
          (loop $grow
            (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
          (br_if $done (i32.eq (local.get $m) (i32.const 3)))
          unreachable))
      (if (i32.eq (local.get $m) (i32.const 4)) (then (return (call $pack (i32.const 0x7fff0000) (i32.const 4096)))))
      (if (i32.eq (local.get $m) (i32.const 5)) (then (return (call $pack (i32.const 32) (i32.const 5)))))
      (if (i32.eq (local.get $m) (i32.const 6)) (then (return (call $pack (i32.const 48) (i32.const 1)))))
      (if (i32.eq (local.get $m) (i32.const 7)) (then (return (call $pack (i32.const 64) (i32.const 15))))))
    (i64.const 0))

  (func (export "sidetrace_on_request") (param i32) (result i64) (call $fault))
  (func (export "sidetrace_on_response") (param i32) (result i64) (call $fault))
  (func (export "sidetrace_on_span_end") (param i32) (result i64) (call $fault))
)
