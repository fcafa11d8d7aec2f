;; Row reductions in WebAssembly SIMD: row sums for the wasm backend's Sum kernel (see
;; src/tensor/wasm-sum.ts), and the half squared norms of rows with their gradient (see
;; src/tensor/row-norms.ts).
;;
;; The module imports the memory of tfjs-backend-wasm; pointers are byte offsets into it.
;; tfjs-backend-wasm 4.22 adds a row's values one after another into a single float32, so each
;; addition waits for the previous one. Sixteen running sums (four vectors) keep the adder busy,
;; and their rounding error grows with rowSize/16 terms instead of rowSize.
;;
;; Compiled to reduce.wasm by scripts/build-wasm.mjs during `npm run build`.
(module
  (import "env" "memory" (memory 1))

  ;; Writes out[row] = Σ_j x[row·rowSize + j] for each of `rows` rows, in float32.
  (func (export "sum_rows") (param $x i32) (param $out i32) (param $rows i32) (param $rowSize i32)
    (local $row i32) (local $address i32) (local $rowEnd i32) (local $blockEnd i32) (local $vectorEnd i32)
    (local $sum0 v128) (local $sum1 v128) (local $sum2 v128) (local $sum3 v128) (local $total f32)
    (local.set $address (local.get $x))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
        (local.set $rowEnd (i32.add (local.get $address) (i32.shl (local.get $rowSize) (i32.const 2))))
        ;; Blocks of sixteen values, then of four, then single values.
        (local.set $blockEnd (i32.add (local.get $address) (i32.shl (i32.and (local.get $rowSize) (i32.const -16)) (i32.const 2))))
        (local.set $vectorEnd (i32.add (local.get $address) (i32.shl (i32.and (local.get $rowSize) (i32.const -4)) (i32.const 2))))
        (local.set $sum0 (v128.const i32x4 0 0 0 0))
        (local.set $sum1 (v128.const i32x4 0 0 0 0))
        (local.set $sum2 (v128.const i32x4 0 0 0 0))
        (local.set $sum3 (v128.const i32x4 0 0 0 0))
        (block $blocksDone
          (loop $blocks
            (br_if $blocksDone (i32.ge_u (local.get $address) (local.get $blockEnd)))
            (local.set $sum0 (f32x4.add (local.get $sum0) (v128.load align=4 (local.get $address))))
            (local.set $sum1 (f32x4.add (local.get $sum1) (v128.load offset=16 align=4 (local.get $address))))
            (local.set $sum2 (f32x4.add (local.get $sum2) (v128.load offset=32 align=4 (local.get $address))))
            (local.set $sum3 (f32x4.add (local.get $sum3) (v128.load offset=48 align=4 (local.get $address))))
            (local.set $address (i32.add (local.get $address) (i32.const 64)))
            (br $blocks)))
        (block $vectorsDone
          (loop $vectors
            (br_if $vectorsDone (i32.ge_u (local.get $address) (local.get $vectorEnd)))
            (local.set $sum0 (f32x4.add (local.get $sum0) (v128.load align=4 (local.get $address))))
            (local.set $address (i32.add (local.get $address) (i32.const 16)))
            (br $vectors)))
        (local.set $sum0 (f32x4.add (f32x4.add (local.get $sum0) (local.get $sum1)) (f32x4.add (local.get $sum2) (local.get $sum3))))
        (local.set $total
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $sum0)) (f32x4.extract_lane 1 (local.get $sum0)))
            (f32.add (f32x4.extract_lane 2 (local.get $sum0)) (f32x4.extract_lane 3 (local.get $sum0)))))
        (block $valuesDone
          (loop $values
            (br_if $valuesDone (i32.ge_u (local.get $address) (local.get $rowEnd)))
            (local.set $total (f32.add (local.get $total) (f32.load (local.get $address))))
            (local.set $address (i32.add (local.get $address) (i32.const 4)))
            (br $values)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $row) (i32.const 2))) (local.get $total))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowLoop))))

  ;; Writes out[row] = ½·Σ_j x[row·rowSize + j]² for each of `rows` rows, in float32, with
  ;; sixteen running sums like sum_rows.
  (func (export "half_square_sums") (param $x i32) (param $out i32) (param $rows i32) (param $rowSize i32)
    (local $row i32) (local $address i32) (local $rowEnd i32) (local $blockEnd i32) (local $vectorEnd i32)
    (local $sum0 v128) (local $sum1 v128) (local $sum2 v128) (local $sum3 v128) (local $value v128) (local $total f32) (local $scalar f32)
    (local.set $address (local.get $x))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
        (local.set $rowEnd (i32.add (local.get $address) (i32.shl (local.get $rowSize) (i32.const 2))))
        (local.set $blockEnd (i32.add (local.get $address) (i32.shl (i32.and (local.get $rowSize) (i32.const -16)) (i32.const 2))))
        (local.set $vectorEnd (i32.add (local.get $address) (i32.shl (i32.and (local.get $rowSize) (i32.const -4)) (i32.const 2))))
        (local.set $sum0 (v128.const i32x4 0 0 0 0))
        (local.set $sum1 (v128.const i32x4 0 0 0 0))
        (local.set $sum2 (v128.const i32x4 0 0 0 0))
        (local.set $sum3 (v128.const i32x4 0 0 0 0))
        (block $blocksDone
          (loop $blocks
            (br_if $blocksDone (i32.ge_u (local.get $address) (local.get $blockEnd)))
            (local.set $value (v128.load align=4 (local.get $address)))
            (local.set $sum0 (f32x4.add (local.get $sum0) (f32x4.mul (local.get $value) (local.get $value))))
            (local.set $value (v128.load offset=16 align=4 (local.get $address)))
            (local.set $sum1 (f32x4.add (local.get $sum1) (f32x4.mul (local.get $value) (local.get $value))))
            (local.set $value (v128.load offset=32 align=4 (local.get $address)))
            (local.set $sum2 (f32x4.add (local.get $sum2) (f32x4.mul (local.get $value) (local.get $value))))
            (local.set $value (v128.load offset=48 align=4 (local.get $address)))
            (local.set $sum3 (f32x4.add (local.get $sum3) (f32x4.mul (local.get $value) (local.get $value))))
            (local.set $address (i32.add (local.get $address) (i32.const 64)))
            (br $blocks)))
        (block $vectorsDone
          (loop $vectors
            (br_if $vectorsDone (i32.ge_u (local.get $address) (local.get $vectorEnd)))
            (local.set $value (v128.load align=4 (local.get $address)))
            (local.set $sum0 (f32x4.add (local.get $sum0) (f32x4.mul (local.get $value) (local.get $value))))
            (local.set $address (i32.add (local.get $address) (i32.const 16)))
            (br $vectors)))
        (local.set $sum0 (f32x4.add (f32x4.add (local.get $sum0) (local.get $sum1)) (f32x4.add (local.get $sum2) (local.get $sum3))))
        (local.set $total
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $sum0)) (f32x4.extract_lane 1 (local.get $sum0)))
            (f32.add (f32x4.extract_lane 2 (local.get $sum0)) (f32x4.extract_lane 3 (local.get $sum0)))))
        (block $valuesDone
          (loop $values
            (br_if $valuesDone (i32.ge_u (local.get $address) (local.get $rowEnd)))
            (local.set $scalar (f32.load (local.get $address)))
            (local.set $total (f32.add (local.get $total) (f32.mul (local.get $scalar) (local.get $scalar))))
            (local.set $address (i32.add (local.get $address) (i32.const 4)))
            (br $values)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $row) (i32.const 2))) (f32.mul (local.get $total) (f32.const 0.5)))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowLoop))))

  ;; Writes out[row·rowSize + j] = scales[row]·x[row·rowSize + j] for each of `rows` rows: the
  ;; gradient of the half squared norms for upstream gradients `scales`.
  (func (export "scale_rows") (param $x i32) (param $scales i32) (param $out i32) (param $rows i32) (param $rowSize i32)
    (local $row i32) (local $offset i32) (local $rowEnd i32) (local $vectorEnd i32) (local $scale v128)
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
        (local.set $rowEnd (i32.add (local.get $offset) (i32.shl (local.get $rowSize) (i32.const 2))))
        (local.set $vectorEnd (i32.add (local.get $offset) (i32.shl (i32.and (local.get $rowSize) (i32.const -4)) (i32.const 2))))
        (local.set $scale (v128.load32_splat align=4 (i32.add (local.get $scales) (i32.shl (local.get $row) (i32.const 2)))))
        (block $vectorsDone
          (loop $vectors
            (br_if $vectorsDone (i32.ge_u (local.get $offset) (local.get $vectorEnd)))
            (v128.store align=4 (i32.add (local.get $out) (local.get $offset))
              (f32x4.mul (local.get $scale) (v128.load align=4 (i32.add (local.get $x) (local.get $offset)))))
            (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
            (br $vectors)))
        (block $valuesDone
          (loop $values
            (br_if $valuesDone (i32.ge_u (local.get $offset) (local.get $rowEnd)))
            (f32.store (i32.add (local.get $out) (local.get $offset))
              (f32.mul (f32x4.extract_lane 0 (local.get $scale)) (f32.load (i32.add (local.get $x) (local.get $offset)))))
            (local.set $offset (i32.add (local.get $offset) (i32.const 4)))
            (br $values)))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowLoop))))
)
