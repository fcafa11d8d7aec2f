;; The squeeze permutation of src/layers/squeeze.ts in WebAssembly, for NHWC float32 tensors:
;;   squeezed[b, i, j, 4c + 2·dh + dw] = image[b, 2i + dh, 2j + dw, c],   dh, dw ∈ {0, 1},
;; with image [B, 2H, 2W, C] and squeezed [B, H, W, 4C]. `squeeze` writes the squeezed tensor
;; and `unsqueeze` the image. tfjs 4.22's wasm backend runs the same permutation as a 6-D
;; transpose, 0.2 to 0.8 ms for the [100 to 300, 28, 28, 1] and [100 to 300, 14, 14, 4] images
;; of the MNIST CNN on a 2-vCPU AMD EPYC.
;;
;; For each output pixel the four source pixels (dh, dw) each hold C contiguous values, which
;; interleave with stride 4. With C a multiple of 4, four vectors of four channels are
;; transposed as a 4×4 block with shuffles, otherwise the values move one at a time.
;;
;; The module imports the memory of tfjs-backend-wasm; pointers are byte offsets into it.
;; Compiled to squeeze.wasm by scripts/build-wasm.mjs during `npm run build`.
(module
  (import "env" "memory" (memory 1))

  ;; Byte offset of image pixel (b, 2i + dh, 2j + dw) in an image of width 2·$width and C channels.
  (func $imagePixel (param $b i32) (param $i i32) (param $j i32) (param $dh i32) (param $dw i32) (param $height i32) (param $width i32) (param $channels i32) (result i32)
    (i32.shl
      (i32.mul
        (i32.add
          (i32.mul
            (i32.add (i32.mul (local.get $b) (i32.shl (local.get $height) (i32.const 1))) (i32.add (i32.shl (local.get $i) (i32.const 1)) (local.get $dh)))
            (i32.shl (local.get $width) (i32.const 1)))
          (i32.add (i32.shl (local.get $j) (i32.const 1)) (local.get $dw)))
        (local.get $channels))
      (i32.const 2)))

  ;; Moves between the image at $image and the squeezed tensor at $squeezed: towards the squeezed
  ;; tensor when $toSqueezed is 1, back to the image when it is 0. $height and $width are the
  ;; squeezed tensor's, half the image's.
  (func $permute (param $image i32) (param $squeezed i32) (param $batch i32) (param $height i32) (param $width i32) (param $channels i32) (param $toSqueezed i32)
    (local $b i32) (local $i i32) (local $j i32) (local $c i32) (local $k i32) (local $out i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $out (local.get $squeezed))
    (block $batchDone
      (loop $batchLoop
        (br_if $batchDone (i32.ge_u (local.get $b) (local.get $batch)))
        (local.set $i (i32.const 0))
        (block $rowsDone
          (loop $rows
            (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $height)))
            (local.set $j (i32.const 0))
            (block $columnsDone
              (loop $columns
                (br_if $columnsDone (i32.ge_u (local.get $j) (local.get $width)))
                ;; The four source pixels, in the order k = 2·dh + dw.
                (local.set $p0 (i32.add (local.get $image)
                  (call $imagePixel (local.get $b) (local.get $i) (local.get $j) (i32.const 0) (i32.const 0) (local.get $height) (local.get $width) (local.get $channels))))
                (local.set $p1 (i32.add (local.get $p0) (i32.shl (local.get $channels) (i32.const 2))))
                (local.set $p2 (i32.add (local.get $p0) (i32.shl (i32.mul (local.get $width) (local.get $channels)) (i32.const 3))))
                (local.set $p3 (i32.add (local.get $p2) (i32.shl (local.get $channels) (i32.const 2))))
                (local.set $c (i32.const 0))
                (if (i32.eqz (i32.and (local.get $channels) (i32.const 3)))
                  (then
                    (block $blocksDone
                      (loop $blocks
                        (br_if $blocksDone (i32.ge_u (local.get $c) (local.get $channels)))
                        (local.set $k (i32.shl (local.get $c) (i32.const 2)))
                        (if (local.get $toSqueezed)
                          (then
                            (local.set $a0 (v128.load align=4 (i32.add (local.get $p0) (local.get $k))))
                            (local.set $a1 (v128.load align=4 (i32.add (local.get $p1) (local.get $k))))
                            (local.set $a2 (v128.load align=4 (i32.add (local.get $p2) (local.get $k))))
                            (local.set $a3 (v128.load align=4 (i32.add (local.get $p3) (local.get $k))))
                            ;; Transpose: output vector m holds lane m of a0, a1, a2 and a3.
                            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1)))
                            (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1)))
                            (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3)))
                            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3)))
                            (v128.store align=4 (local.get $out) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
                            (v128.store offset=16 align=4 (local.get $out) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
                            (v128.store offset=32 align=4 (local.get $out) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
                            (v128.store offset=48 align=4 (local.get $out) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3))))
                          (else
                            ;; The same 4×4 transpose, which is its own inverse, from squeezed to image.
                            (local.set $a0 (v128.load align=4 (local.get $out)))
                            (local.set $a1 (v128.load offset=16 align=4 (local.get $out)))
                            (local.set $a2 (v128.load offset=32 align=4 (local.get $out)))
                            (local.set $a3 (v128.load offset=48 align=4 (local.get $out)))
                            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1)))
                            (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1)))
                            (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3)))
                            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3)))
                            (v128.store align=4 (i32.add (local.get $p0) (local.get $k)) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
                            (v128.store align=4 (i32.add (local.get $p1) (local.get $k)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
                            (v128.store align=4 (i32.add (local.get $p2) (local.get $k)) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
                            (v128.store align=4 (i32.add (local.get $p3) (local.get $k)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))))
                        (local.set $out (i32.add (local.get $out) (i32.const 64)))
                        (local.set $c (i32.add (local.get $c) (i32.const 4)))
                        (br $blocks))))
                  (else
                    (block $valuesDone
                      (loop $values
                        (br_if $valuesDone (i32.ge_u (local.get $c) (local.get $channels)))
                        (local.set $k (i32.shl (local.get $c) (i32.const 2)))
                        (if (local.get $toSqueezed)
                          (then
                            (f32.store align=4 (local.get $out) (f32.load align=4 (i32.add (local.get $p0) (local.get $k))))
                            (f32.store offset=4 align=4 (local.get $out) (f32.load align=4 (i32.add (local.get $p1) (local.get $k))))
                            (f32.store offset=8 align=4 (local.get $out) (f32.load align=4 (i32.add (local.get $p2) (local.get $k))))
                            (f32.store offset=12 align=4 (local.get $out) (f32.load align=4 (i32.add (local.get $p3) (local.get $k)))))
                          (else
                            (f32.store align=4 (i32.add (local.get $p0) (local.get $k)) (f32.load align=4 (local.get $out)))
                            (f32.store align=4 (i32.add (local.get $p1) (local.get $k)) (f32.load offset=4 align=4 (local.get $out)))
                            (f32.store align=4 (i32.add (local.get $p2) (local.get $k)) (f32.load offset=8 align=4 (local.get $out)))
                            (f32.store align=4 (i32.add (local.get $p3) (local.get $k)) (f32.load offset=12 align=4 (local.get $out)))))
                        (local.set $out (i32.add (local.get $out) (i32.const 16)))
                        (local.set $c (i32.add (local.get $c) (i32.const 1)))
                        (br $values)))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $columns)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $rows)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $batchLoop))))

  ;; Writes squeezed [batch, height, width, 4·channels] from image [batch, 2·height, 2·width, channels].
  (func (export "squeeze") (param $image i32) (param $squeezed i32) (param $batch i32) (param $height i32) (param $width i32) (param $channels i32)
    (call $permute (local.get $image) (local.get $squeezed) (local.get $batch) (local.get $height) (local.get $width) (local.get $channels) (i32.const 1)))

  ;; Writes image [batch, 2·height, 2·width, channels] from squeezed [batch, height, width, 4·channels].
  (func (export "unsqueeze") (param $squeezed i32) (param $image i32) (param $batch i32) (param $height i32) (param $width i32) (param $channels i32)
    (call $permute (local.get $image) (local.get $squeezed) (local.get $batch) (local.get $height) (local.get $width) (local.get $channels) (i32.const 0)))
)
