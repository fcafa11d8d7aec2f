;; The transposed Toeplitz matrix Tᵀ [D, D] (D = H·W·C, row-major) of a stride-1 "same" C→C
;; convolution with a K×K filter [K, K, C, C], and the filter gradient from ∂L/∂Tᵀ.
;;
;; Row k of Tᵀ is the basis image at (h0, w0, c0) and column m the output at (h, w, c), both in
;; NHWC order. For every output position (h, w) within the kernel's reach of (h0, w0), the C
;; entries of output channels c = 0 … C − 1 are contiguous in the row, and equal the C
;; contiguous filter values at tap (h0 − h + p, w0 − w + p), input channel c0, p = (K − 1)/2.
;; Both functions walk these runs in the order of `toeplitzEntries` in toeplitz.ts, so the
;; gradient adds its terms in the same order as the JavaScript loop over that list.
;;
;; The module imports the memory of tfjs-backend-wasm; pointers are byte offsets into it.
;; Compiled to toeplitz.wasm by scripts/build-wasm.mjs during `npm run build`.
(module
  (import "env" "memory" (memory 1))

  ;; Writes Tᵀ at $out from the filter at $filter: zeroes the D² values, then copies each run of
  ;; C filter values into place. O(D²) writes.
  (func (export "fill")
    (param $filter i32) (param $out i32) (param $height i32) (param $width i32) (param $channels i32) (param $kernel i32)
    (local $dimension i32) (local $pad i32) (local $runBytes i32)
    (local $h0 i32) (local $w0 i32) (local $c0 i32) (local $h i32) (local $w i32) (local $hEnd i32) (local $wEnd i32)
    (local $row i32) (local $tap i32)
    (local.set $dimension (i32.mul (i32.mul (local.get $height) (local.get $width)) (local.get $channels)))
    (local.set $pad (i32.shr_u (i32.sub (local.get $kernel) (i32.const 1)) (i32.const 1)))
    (local.set $runBytes (i32.shl (local.get $channels) (i32.const 2)))
    (memory.fill (local.get $out) (i32.const 0)
      (i32.shl (i32.mul (local.get $dimension) (local.get $dimension)) (i32.const 2)))
    (local.set $h0 (i32.const 0))
    (loop $rowsOfH
      (local.set $w0 (i32.const 0))
      (loop $rowsOfW
        (local.set $c0 (i32.const 0))
        (loop $rowsOfC
          ;; Byte offset of row k = (h0·W + w0)·C + c0.
          (local.set $row
            (i32.add (local.get $out)
              (i32.shl
                (i32.mul
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $h0) (local.get $width)) (local.get $w0)) (local.get $channels)) (local.get $c0))
                  (local.get $dimension))
                (i32.const 2))))
          (local.set $h (call $max (i32.const 0) (i32.sub (local.get $h0) (local.get $pad))))
          (local.set $hEnd (call $min (i32.sub (local.get $height) (i32.const 1)) (i32.add (local.get $h0) (local.get $pad))))
          (loop $outputsOfH
            (local.set $w (call $max (i32.const 0) (i32.sub (local.get $w0) (local.get $pad))))
            (local.set $wEnd (call $min (i32.sub (local.get $width) (i32.const 1)) (i32.add (local.get $w0) (local.get $pad))))
            (loop $outputsOfW
              (local.set $tap (call $tap (local.get $h0) (local.get $w0) (local.get $c0) (local.get $h) (local.get $w) (local.get $pad) (local.get $kernel) (local.get $channels)))
              (memory.copy
                (i32.add (local.get $row) (i32.mul (i32.add (i32.mul (local.get $h) (local.get $width)) (local.get $w)) (local.get $runBytes)))
                (i32.add (local.get $filter) (i32.mul (local.get $tap) (local.get $runBytes)))
                (local.get $runBytes))
              (local.set $w (i32.add (local.get $w) (i32.const 1)))
              (br_if $outputsOfW (i32.le_s (local.get $w) (local.get $wEnd))))
            (local.set $h (i32.add (local.get $h) (i32.const 1)))
            (br_if $outputsOfH (i32.le_s (local.get $h) (local.get $hEnd))))
          (local.set $c0 (i32.add (local.get $c0) (i32.const 1)))
          (br_if $rowsOfC (i32.lt_u (local.get $c0) (local.get $channels))))
        (local.set $w0 (i32.add (local.get $w0) (i32.const 1)))
        (br_if $rowsOfW (i32.lt_u (local.get $w0) (local.get $width))))
      (local.set $h0 (i32.add (local.get $h0) (i32.const 1)))
      (br_if $rowsOfH (i32.lt_u (local.get $h0) (local.get $height)))))

  ;; Writes the filter gradient [K, K, C, C] at $gradient: for every nonzero entry of Tᵀ, adds
  ;; ∂L/∂Tᵀ at that entry (read from $upstream, [D, D]) to the filter value it was copied from.
  ;; Four channels at a time when C is a multiple of 4. O(D·K²·C) reads.
  (func (export "gradient")
    (param $upstream i32) (param $gradient i32) (param $height i32) (param $width i32) (param $channels i32) (param $kernel i32)
    (local $dimension i32) (local $pad i32) (local $runBytes i32)
    (local $h0 i32) (local $w0 i32) (local $c0 i32) (local $h i32) (local $w i32) (local $hEnd i32) (local $wEnd i32)
    (local $row i32) (local $source i32) (local $target i32) (local $offset i32)
    (local.set $dimension (i32.mul (i32.mul (local.get $height) (local.get $width)) (local.get $channels)))
    (local.set $pad (i32.shr_u (i32.sub (local.get $kernel) (i32.const 1)) (i32.const 1)))
    (local.set $runBytes (i32.shl (local.get $channels) (i32.const 2)))
    (memory.fill (local.get $gradient) (i32.const 0)
      (i32.mul (i32.mul (i32.mul (local.get $kernel) (local.get $kernel)) (i32.mul (local.get $channels) (local.get $channels))) (i32.const 4)))
    (local.set $h0 (i32.const 0))
    (loop $rowsOfH
      (local.set $w0 (i32.const 0))
      (loop $rowsOfW
        (local.set $c0 (i32.const 0))
        (loop $rowsOfC
          (local.set $row
            (i32.add (local.get $upstream)
              (i32.shl
                (i32.mul
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $h0) (local.get $width)) (local.get $w0)) (local.get $channels)) (local.get $c0))
                  (local.get $dimension))
                (i32.const 2))))
          (local.set $h (call $max (i32.const 0) (i32.sub (local.get $h0) (local.get $pad))))
          (local.set $hEnd (call $min (i32.sub (local.get $height) (i32.const 1)) (i32.add (local.get $h0) (local.get $pad))))
          (loop $outputsOfH
            (local.set $w (call $max (i32.const 0) (i32.sub (local.get $w0) (local.get $pad))))
            (local.set $wEnd (call $min (i32.sub (local.get $width) (i32.const 1)) (i32.add (local.get $w0) (local.get $pad))))
            (loop $outputsOfW
              (local.set $source
                (i32.add (local.get $row) (i32.mul (i32.add (i32.mul (local.get $h) (local.get $width)) (local.get $w)) (local.get $runBytes))))
              (local.set $target
                (i32.add (local.get $gradient)
                  (i32.mul
                    (call $tap (local.get $h0) (local.get $w0) (local.get $c0) (local.get $h) (local.get $w) (local.get $pad) (local.get $kernel) (local.get $channels))
                    (local.get $runBytes))))
              (local.set $offset (i32.const 0))
              (if (i32.eqz (i32.and (local.get $channels) (i32.const 3)))
                (then
                  (loop $lanes
                    (v128.store align=4 (i32.add (local.get $target) (local.get $offset))
                      (f32x4.add
                        (v128.load align=4 (i32.add (local.get $target) (local.get $offset)))
                        (v128.load align=4 (i32.add (local.get $source) (local.get $offset)))))
                    (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
                    (br_if $lanes (i32.lt_u (local.get $offset) (local.get $runBytes)))))
                (else
                  (loop $values
                    (f32.store align=4 (i32.add (local.get $target) (local.get $offset))
                      (f32.add
                        (f32.load align=4 (i32.add (local.get $target) (local.get $offset)))
                        (f32.load align=4 (i32.add (local.get $source) (local.get $offset)))))
                    (local.set $offset (i32.add (local.get $offset) (i32.const 4)))
                    (br_if $values (i32.lt_u (local.get $offset) (local.get $runBytes))))))
              (local.set $w (i32.add (local.get $w) (i32.const 1)))
              (br_if $outputsOfW (i32.le_s (local.get $w) (local.get $wEnd))))
            (local.set $h (i32.add (local.get $h) (i32.const 1)))
            (br_if $outputsOfH (i32.le_s (local.get $h) (local.get $hEnd))))
          (local.set $c0 (i32.add (local.get $c0) (i32.const 1)))
          (br_if $rowsOfC (i32.lt_u (local.get $c0) (local.get $channels))))
        (local.set $w0 (i32.add (local.get $w0) (i32.const 1)))
        (br_if $rowsOfW (i32.lt_u (local.get $w0) (local.get $width))))
      (local.set $h0 (i32.add (local.get $h0) (i32.const 1)))
      (br_if $rowsOfH (i32.lt_u (local.get $h0) (local.get $height)))))

  ;; Index of the first filter value of the run for (h0, w0, c0) → (h, w), in units of C values:
  ;; ((h0 − h + p)·K + (w0 − w + p))·C + c0.
  (func $tap
    (param $h0 i32) (param $w0 i32) (param $c0 i32) (param $h i32) (param $w i32) (param $pad i32) (param $kernel i32) (param $channels i32)
    (result i32)
    (i32.add
      (i32.mul
        (i32.add
          (i32.mul (i32.add (i32.sub (local.get $h0) (local.get $h)) (local.get $pad)) (local.get $kernel))
          (i32.add (i32.sub (local.get $w0) (local.get $w)) (local.get $pad)))
        (local.get $channels))
      (local.get $c0)))

  (func $max (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.gt_s (local.get $a) (local.get $b))))

  (func $min (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.lt_s (local.get $a) (local.get $b))))
)
