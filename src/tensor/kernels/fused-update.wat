;; Fused element-wise kernels of a training step's parameter update, in WebAssembly SIMD.
;;
;; The module imports the memory of tfjs-backend-wasm, so it reads and writes tensors where the
;; backend keeps them. Pointers are byte offsets into that memory; `n` counts float32 values.
;; Each kernel runs four lanes at a time and finishes the last n mod 4 values one by one, with
;; the same float32 operations in the same order as the tensor-op version it replaces
;; (src/train/rmsprop.ts, src/train/ema.ts), so both agree to float32 rounding.
;;
;; Compiled to fused-update.wasm by scripts/build-wasm.mjs during `npm run build`.
(module
  (import "env" "memory" (memory 1))

  ;; Returns Σ x_i² over n values at $x. Squares are rounded to float32, sums kept in float64,
  ;; in two independent accumulators (lanes 0–1 and 2–3 of each vector) so that consecutive
  ;; additions do not wait on one another.
  (func (export "sum_squares") (param $x i32) (param $n i32) (result f64)
    (local $vectorEnd i32) (local $end i32) (local $square v128) (local $sums v128) (local $highSums v128) (local $total f64) (local $value f32)
    (local.set $vectorEnd (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $sums (f64x2.splat (f64.const 0)))
    (local.set $highSums (f64x2.splat (f64.const 0)))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $x) (local.get $vectorEnd)))
        (local.set $square (f32x4.mul (v128.load align=4 (local.get $x)) (v128.load align=4 (local.get $x))))
        (local.set $sums (f64x2.add (local.get $sums) (f64x2.promote_low_f32x4 (local.get $square))))
        (local.set $highSums
          (f64x2.add (local.get $highSums)
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $square) (local.get $square)))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br $vectors)))
    (local.set $sums (f64x2.add (local.get $sums) (local.get $highSums)))
    (local.set $total (f64.add (f64x2.extract_lane 0 (local.get $sums)) (f64x2.extract_lane 1 (local.get $sums))))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $value (f32.load align=4 (local.get $x)))
        (local.set $total (f64.add (local.get $total) (f64.promote_f32 (f32.mul (local.get $value) (local.get $value)))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (br $tail)))
    (local.get $total))

  ;; One RMSprop update of n parameters (PyTorch's semantics, see src/train/rmsprop.ts):
  ;;   g = scale·∇ + λ·θ,   v' = ρ·v + (1 − ρ)·g²,   θ' = θ − (lr·g)/(√v' + ε),
;; with 1 − ρ passed in, rounded once as the tensor-op version rounds it,
  ;; reading θ, ∇ and v and writing θ' and v' to separate memory. Returns Σ ∇², the raw
  ;; gradient's sum of squares that sum_squares returns, so a caller without clipping gets the
  ;; gradient norm from this pass and needs no pass of its own.
  (func (export "rmsprop")
    (param $theta i32) (param $gradient i32) (param $average i32) (param $thetaOut i32) (param $averageOut i32) (param $n i32)
    (param $scale f32) (param $weightDecay f32) (param $rho f32) (param $oneMinusRho f32) (param $learningRate f32) (param $epsilon f32)
    (result f64)
    (local $offset i32) (local $vectorBytes i32) (local $bytes i32)
    (local $scales v128) (local $decays v128) (local $rhos v128) (local $oneMinusRhos v128) (local $rates v128) (local $epsilons v128)
    (local $p v128) (local $g v128) (local $v v128) (local $raw v128) (local $square v128) (local $sums v128) (local $highSums v128)
    (local $ps f32) (local $gs f32) (local $vs f32) (local $raws f32) (local $total f64)
    (local.set $vectorBytes (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $scales (f32x4.splat (local.get $scale)))
    (local.set $decays (f32x4.splat (local.get $weightDecay)))
    (local.set $rhos (f32x4.splat (local.get $rho)))
    (local.set $oneMinusRhos (f32x4.splat (local.get $oneMinusRho)))
    (local.set $rates (f32x4.splat (local.get $learningRate)))
    (local.set $epsilons (f32x4.splat (local.get $epsilon)))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $offset) (local.get $vectorBytes)))
        (local.set $p (v128.load align=4 (i32.add (local.get $theta) (local.get $offset))))
        (local.set $raw (v128.load align=4 (i32.add (local.get $gradient) (local.get $offset))))
        ;; Σ raw², accumulated as sum_squares does, so the norm is the same to the bit.
        (local.set $square (f32x4.mul (local.get $raw) (local.get $raw)))
        (local.set $sums (f64x2.add (local.get $sums) (f64x2.promote_low_f32x4 (local.get $square))))
        (local.set $highSums
          (f64x2.add (local.get $highSums)
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $square) (local.get $square)))))
        (local.set $g
          (f32x4.add
            (f32x4.mul (local.get $raw) (local.get $scales))
            (f32x4.mul (local.get $decays) (local.get $p))))
        (local.set $v
          (f32x4.add
            (f32x4.mul (local.get $rhos) (v128.load align=4 (i32.add (local.get $average) (local.get $offset))))
            (f32x4.mul (local.get $oneMinusRhos) (f32x4.mul (local.get $g) (local.get $g)))))
        (v128.store align=4 (i32.add (local.get $averageOut) (local.get $offset)) (local.get $v))
        (v128.store align=4 (i32.add (local.get $thetaOut) (local.get $offset))
          (f32x4.sub (local.get $p)
            (f32x4.div (f32x4.mul (local.get $rates) (local.get $g)) (f32x4.add (f32x4.sqrt (local.get $v)) (local.get $epsilons)))))
        (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
        (br $vectors)))
    ;; The two halves of the vector sums, then the tail one value at a time, as sum_squares.
    (local.set $sums (f64x2.add (local.get $sums) (local.get $highSums)))
    (local.set $total (f64.add (f64x2.extract_lane 0 (local.get $sums)) (f64x2.extract_lane 1 (local.get $sums))))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $offset) (local.get $bytes)))
        (local.set $ps (f32.load align=4 (i32.add (local.get $theta) (local.get $offset))))
        (local.set $raws (f32.load align=4 (i32.add (local.get $gradient) (local.get $offset))))
        (local.set $total (f64.add (local.get $total) (f64.promote_f32 (f32.mul (local.get $raws) (local.get $raws)))))
        (local.set $gs
          (f32.add
            (f32.mul (local.get $raws) (local.get $scale))
            (f32.mul (local.get $weightDecay) (local.get $ps))))
        (local.set $vs
          (f32.add
            (f32.mul (local.get $rho) (f32.load align=4 (i32.add (local.get $average) (local.get $offset))))
            (f32.mul (local.get $oneMinusRho) (f32.mul (local.get $gs) (local.get $gs)))))
        (f32.store align=4 (i32.add (local.get $averageOut) (local.get $offset)) (local.get $vs))
        (f32.store align=4 (i32.add (local.get $thetaOut) (local.get $offset))
          (f32.sub (local.get $ps)
            (f32.div (f32.mul (local.get $learningRate) (local.get $gs)) (f32.add (f32.sqrt (local.get $vs)) (local.get $epsilon)))))
        (local.set $offset (i32.add (local.get $offset) (i32.const 4)))
        (br $tail)))
    (local.get $total))

  ;; One EMA update of n shadow values (see src/train/ema.ts): s' = s − (1 − d)·(s − θ).
  (func (export "ema")
    (param $shadow i32) (param $theta i32) (param $shadowOut i32) (param $n i32) (param $oneMinusDecay f32)
    (local $offset i32) (local $vectorBytes i32) (local $bytes i32) (local $weights v128) (local $s v128) (local $ss f32)
    (local.set $vectorBytes (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $weights (f32x4.splat (local.get $oneMinusDecay)))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $offset) (local.get $vectorBytes)))
        (local.set $s (v128.load align=4 (i32.add (local.get $shadow) (local.get $offset))))
        (v128.store align=4 (i32.add (local.get $shadowOut) (local.get $offset))
          (f32x4.sub (local.get $s)
            (f32x4.mul (local.get $weights)
              (f32x4.sub (local.get $s) (v128.load align=4 (i32.add (local.get $theta) (local.get $offset)))))))
        (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
        (br $vectors)))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $offset) (local.get $bytes)))
        (local.set $ss (f32.load align=4 (i32.add (local.get $shadow) (local.get $offset))))
        (f32.store align=4 (i32.add (local.get $shadowOut) (local.get $offset))
          (f32.sub (local.get $ss)
            (f32.mul (local.get $oneMinusDecay)
              (f32.sub (local.get $ss) (f32.load align=4 (i32.add (local.get $theta) (local.get $offset)))))))
        (local.set $offset (i32.add (local.get $offset) (i32.const 4)))
        (br $tail))))
)
