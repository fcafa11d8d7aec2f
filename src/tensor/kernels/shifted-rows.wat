;; The element-wise steps around a product shared by shifted rows (see src/tensor/shifted-rows.ts),
;; in WebAssembly SIMD. With P = [R; S]·Wᵀ = [C; Δ], the rows [R; R + S; R − S]·Wᵀ are
;; [C; C + Δ; C − Δ] (`expand`), and the gradient [G₀; G₊; G₋] of those rows pulls back to
;; [G₀ + G₊ + G₋; G₊ − G₋] on [C; Δ] (`combine`).
;;
;; The module imports the memory of tfjs-backend-wasm; pointers are byte offsets into it, and
;; `count` is the number of values in one block (C, Δ or a G).
;;
;; Compiled to shifted-rows.wasm by scripts/build-wasm.mjs during `npm run build`.
(module
  (import "env" "memory" (memory 1))

  ;; Writes out = [C; C + Δ; C − Δ] (3·count values) from both = [C; Δ] (2·count values).
  (func (export "expand") (param $both i32) (param $out i32) (param $count i32)
    (local $i i32) (local $bytes i32) (local $vectorBytes i32) (local $centre v128) (local $difference v128)
    (local $centreValue f32) (local $differenceValue f32)
    (local.set $bytes (i32.shl (local.get $count) (i32.const 2)))
    (local.set $vectorBytes (i32.shl (i32.and (local.get $count) (i32.const -4)) (i32.const 2)))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $i) (local.get $vectorBytes)))
        (local.set $centre (v128.load align=4 (i32.add (local.get $both) (local.get $i))))
        (local.set $difference (v128.load align=4 (i32.add (i32.add (local.get $both) (local.get $bytes)) (local.get $i))))
        (v128.store align=4 (i32.add (local.get $out) (local.get $i)) (local.get $centre))
        (v128.store align=4 (i32.add (i32.add (local.get $out) (local.get $bytes)) (local.get $i))
          (f32x4.add (local.get $centre) (local.get $difference)))
        (v128.store align=4 (i32.add (i32.add (local.get $out) (i32.shl (local.get $bytes) (i32.const 1))) (local.get $i))
          (f32x4.sub (local.get $centre) (local.get $difference)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vectors)))
    (block $valuesDone
      (loop $values
        (br_if $valuesDone (i32.ge_u (local.get $i) (local.get $bytes)))
        (local.set $centreValue (f32.load (i32.add (local.get $both) (local.get $i))))
        (local.set $differenceValue (f32.load (i32.add (i32.add (local.get $both) (local.get $bytes)) (local.get $i))))
        (f32.store (i32.add (local.get $out) (local.get $i)) (local.get $centreValue))
        (f32.store (i32.add (i32.add (local.get $out) (local.get $bytes)) (local.get $i))
          (f32.add (local.get $centreValue) (local.get $differenceValue)))
        (f32.store (i32.add (i32.add (local.get $out) (i32.shl (local.get $bytes) (i32.const 1))) (local.get $i))
          (f32.sub (local.get $centreValue) (local.get $differenceValue)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $values))))

  ;; Writes out = [G₀ + G₊ + G₋; G₊ − G₋] (2·count values) from gradient = [G₀; G₊; G₋] (3·count values).
  (func (export "combine") (param $gradient i32) (param $out i32) (param $count i32)
    (local $i i32) (local $bytes i32) (local $vectorBytes i32) (local $centre v128) (local $plus v128) (local $minus v128)
    (local $centreValue f32) (local $plusValue f32) (local $minusValue f32)
    (local.set $bytes (i32.shl (local.get $count) (i32.const 2)))
    (local.set $vectorBytes (i32.shl (i32.and (local.get $count) (i32.const -4)) (i32.const 2)))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $i) (local.get $vectorBytes)))
        (local.set $centre (v128.load align=4 (i32.add (local.get $gradient) (local.get $i))))
        (local.set $plus (v128.load align=4 (i32.add (i32.add (local.get $gradient) (local.get $bytes)) (local.get $i))))
        (local.set $minus (v128.load align=4 (i32.add (i32.add (local.get $gradient) (i32.shl (local.get $bytes) (i32.const 1))) (local.get $i))))
        (v128.store align=4 (i32.add (local.get $out) (local.get $i))
          (f32x4.add (f32x4.add (local.get $centre) (local.get $plus)) (local.get $minus)))
        (v128.store align=4 (i32.add (i32.add (local.get $out) (local.get $bytes)) (local.get $i))
          (f32x4.sub (local.get $plus) (local.get $minus)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vectors)))
    (block $valuesDone
      (loop $values
        (br_if $valuesDone (i32.ge_u (local.get $i) (local.get $bytes)))
        (local.set $centreValue (f32.load (i32.add (local.get $gradient) (local.get $i))))
        (local.set $plusValue (f32.load (i32.add (i32.add (local.get $gradient) (local.get $bytes)) (local.get $i))))
        (local.set $minusValue (f32.load (i32.add (i32.add (local.get $gradient) (i32.shl (local.get $bytes) (i32.const 1))) (local.get $i))))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (f32.add (f32.add (local.get $centreValue) (local.get $plusValue)) (local.get $minusValue)))
        (f32.store (i32.add (i32.add (local.get $out) (local.get $bytes)) (local.get $i))
          (f32.sub (local.get $plusValue) (local.get $minusValue)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $values))))
)
