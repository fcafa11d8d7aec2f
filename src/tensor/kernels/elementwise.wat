;; Element-wise kernels built on vectorised exp and log, in WebAssembly SIMD:
;; - the smooth leaky ReLU f(x) = c·x + a·softplus(x), the derivative terms the explicit score
;;   formulas need (forward, backward) and its Newton inverse, with a = 1 − α and c = α (or
;;   1 + α with the residual). From σ = σ(x):  f′ = c + a·σ,  f″ = a·σ(1−σ),
;;   f‴ = f″·(1−2σ),  f⁗ = f″·(1 − 6σ + 6σ²);
;; - the logit of the MaP preprocessing (logit, see src/data/preprocess.ts).
;;
;; The module imports the memory of tfjs-backend-wasm; pointers are byte offsets into it. Rows
;; hold `rowSize` values, a multiple of 4 (the caller checks). In forward and backward, a
;; pointer of 0 marks an output that is not wanted, or an upstream gradient that is zero.
;;
;; exp and log are the single-precision Cephes approximations (range reduction, then a
;; polynomial), vectorised; their error is a few float32 ulps, which the tests bound against
;; float64. exp's clamp and softplus's max(x, 0) use f32x4.pmax, one x86 instruction, where
;; f32x4.max's NaN and signed-zero rules cost V8 a sequence of them on the dependency chain; a
;; NaN lane stays NaN either way. On a 2-vCPU AMD EPYC these changes, Estrin's scheme for the polynomials and two
;; vectors per iteration took the forward kernel from 7.4 to 5.5 ns per value ([300, 784], y only).
;;
;; Compiled to elementwise.wasm by scripts/build-wasm.mjs during `npm run build`.
(module
  (import "env" "memory" (memory 1))

  ;; e^x for x ≤ 0, four lanes. x is clamped to −87 (e^−87 ≈ 1.6e−38, still a normal float).
  (func $exp (param $x v128) (result v128)
    (local $k v128) (local $r v128) (local $p v128) (local $r2 v128) (local $q v128)
    (local.set $x (f32x4.pmax (local.get $x) (f32x4.splat (f32.const -87))))
    ;; k = round(x·log₂e): adding 1.5·2²³ rounds to an integer, which the low mantissa bits of
    ;; the sum $q then hold. r = x − k·ln 2 in two parts.
    (local.set $q (f32x4.add (f32x4.mul (local.get $x) (f32x4.splat (f32.const 1.44269504088896341))) (f32x4.splat (f32.const 12582912))))
    (local.set $k (f32x4.sub (local.get $q) (f32x4.splat (f32.const 12582912))))
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $k) (f32x4.splat (f32.const 0.693359375)))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $k) (f32x4.splat (f32.const -2.12194440e-4)))))
    (local.set $r2 (f32x4.mul (local.get $r) (local.get $r)))
    ;; p = c₀ + c₁r + … + c₅r⁵ by Estrin's scheme (see $logOfFinite).
    (local.set $p
      (f32x4.add
        (f32x4.add (f32x4.splat (f32.const 5.0000001201e-1)) (f32x4.mul (local.get $r) (f32x4.splat (f32.const 1.6666665459e-1))))
        (f32x4.mul (local.get $r2)
          (f32x4.add
            (f32x4.add (f32x4.splat (f32.const 4.1665795894e-2)) (f32x4.mul (local.get $r) (f32x4.splat (f32.const 8.3334519073e-3))))
            (f32x4.mul (local.get $r2)
              (f32x4.add (f32x4.splat (f32.const 1.3981999507e-3)) (f32x4.mul (local.get $r) (f32x4.splat (f32.const 1.9875691500e-4)))))))))
    ;; e^r ≈ 1 + r + r²·p.
    (local.set $p (f32x4.add (f32x4.add (f32x4.mul (local.get $r2) (local.get $p)) (local.get $r)) (f32x4.splat (f32.const 1))))
    ;; Multiply by 2^k, built in the exponent field: (k + 127) << 23, with k = bits($q) − bits(1.5·2²³).
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.sub (local.get $q) (i32x4.splat (i32.const 0x4b400000))) (i32x4.splat (i32.const 127))) (i32.const 23))))

  ;; ln x for finite x > 0, four lanes; a NaN lane stays NaN.
  (func $log (param $x v128) (result v128)
    (v128.bitselect (local.get $x) (call $logOfFinite (local.get $x)) (f32x4.ne (local.get $x) (local.get $x))))

  ;; ln x for finite x > 0, four lanes, from the bits of x (a NaN would give a finite number).
  (func $logOfFinite (param $x v128) (result v128)
    (local $bits v128) (local $e v128) (local $m v128) (local $small v128) (local $z v128) (local $z2 v128) (local $p v128)
    (local.set $bits (local.get $x))
    ;; x = m·2^e with m in [0.5, 1).
    (local.set $e
      (i32x4.sub (i32x4.shr_u (v128.and (local.get $bits) (i32x4.splat (i32.const 0x7f800000))) (i32.const 23))
        (i32x4.splat (i32.const 126))))
    (local.set $m (v128.or (v128.and (local.get $bits) (i32x4.splat (i32.const 0x807fffff))) (i32x4.splat (i32.const 0x3f000000))))
    ;; For m < √½ use 2m − 1 and e − 1, otherwise m − 1, so m − 1 lies in [√½ − 1, √2 − 1).
    (local.set $small (f32x4.lt (local.get $m) (f32x4.splat (f32.const 0.707106781186547524))))
    (local.set $e (f32x4.convert_i32x4_s (i32x4.add (local.get $e) (local.get $small))))
    (local.set $m
      (f32x4.add (f32x4.sub (local.get $m) (f32x4.splat (f32.const 1))) (v128.and (local.get $m) (local.get $small))))
    (local.set $z (f32x4.mul (local.get $m) (local.get $m)))
    ;; p(m) = c₀ + c₁m + … + c₈m⁸ by Estrin's scheme in z = m² and z², whose shorter chain of
    ;; dependent operations lets the processor overlap more of it than Horner's rule.
    (local.set $z2 (f32x4.mul (local.get $z) (local.get $z)))
    (local.set $p
      (f32x4.add
        (f32x4.add (f32x4.add (f32x4.splat (f32.const 3.3333331174e-1)) (f32x4.mul (local.get $m) (f32x4.splat (f32.const -2.4999993993e-1))))
          (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const 2.0000714765e-1)) (f32x4.mul (local.get $m) (f32x4.splat (f32.const -1.6668057665e-1))))))
        (f32x4.mul (local.get $z2)
          (f32x4.add
            (f32x4.add (f32x4.add (f32x4.splat (f32.const 1.4249322787e-1)) (f32x4.mul (local.get $m) (f32x4.splat (f32.const -1.2420140846e-1))))
              (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const 1.1676998740e-1)) (f32x4.mul (local.get $m) (f32x4.splat (f32.const -1.1514610310e-1))))))
            (f32x4.mul (local.get $z2) (f32x4.splat (f32.const 7.0376836292e-2)))))))
    ;; ln x ≈ m − z/2 + m·z·p + e·ln 2, with ln 2 in two parts.
    (local.set $p (f32x4.mul (f32x4.mul (local.get $p) (local.get $m)) (local.get $z)))
    (local.set $p (f32x4.add (local.get $p) (f32x4.mul (local.get $e) (f32x4.splat (f32.const -2.12194440e-4)))))
    (local.set $p (f32x4.sub (local.get $p) (f32x4.mul (local.get $z) (f32x4.splat (f32.const 0.5)))))
    (f32x4.add (f32x4.add (local.get $m) (local.get $p)) (f32x4.mul (local.get $e) (f32x4.splat (f32.const 0.693359375)))))

  ;; σ(x) from t = e^−|x|: 1/(1 + t) for x ≥ 0, t/(1 + t) otherwise.
  (func $logistic (param $x v128) (param $t v128) (result v128)
    (f32x4.div
      (v128.bitselect (f32x4.splat (f32.const 1)) (local.get $t) (f32x4.ge (local.get $x) (f32x4.splat (f32.const 0))))
      (f32x4.add (f32x4.splat (f32.const 1)) (local.get $t))))

  ;; One vector of `forward` at byte offset $offset: stores y and the wanted terms, returns f′.
  (func $forwardVector
    (param $x v128) (param $offset i32) (param $y i32) (param $slope i32) (param $ratio i32) (param $logCurvature i32) (param $sigma i32)
    (param $as v128) (param $cs v128) (result v128)
    (local $t v128) (local $u v128) (local $s v128) (local $f1 v128) (local $f2 v128) (local $q v128) (local $reciprocal v128) (local $ones v128)
    (local.set $ones (f32x4.splat (f32.const 1)))
    (local.set $t (call $exp (f32x4.neg (f32x4.abs (local.get $x)))))
    (local.set $u (f32x4.add (local.get $ones) (local.get $t)))
    (local.set $reciprocal (f32x4.div (local.get $ones) (local.get $u)))
    ;; σ = 1/u for x ≥ 0 and t/u otherwise.
    (local.set $s
      (f32x4.mul
        (v128.bitselect (local.get $ones) (local.get $t) (f32x4.ge (local.get $x) (f32x4.splat (f32.const 0))))
        (local.get $reciprocal)))
    ;; y = c·x + a·(max(x, 0) + ln u − ((u − 1) − t)/u).
    (v128.store align=4 (i32.add (local.get $y) (local.get $offset))
      (f32x4.add (f32x4.mul (local.get $cs) (local.get $x))
        (f32x4.mul (local.get $as)
          (f32x4.add (f32x4.pmax (local.get $x) (f32x4.splat (f32.const 0)))
            (f32x4.sub (call $log (local.get $u))
              (f32x4.mul (f32x4.sub (f32x4.sub (local.get $u) (local.get $ones)) (local.get $t)) (local.get $reciprocal)))))))
    (local.set $f1 (f32x4.add (local.get $cs) (f32x4.mul (local.get $as) (local.get $s))))
    (if (local.get $slope)
      (then (v128.store align=4 (i32.add (local.get $slope) (local.get $offset)) (local.get $f1))))
    (if (local.get $sigma)
      (then (v128.store align=4 (i32.add (local.get $sigma) (local.get $offset)) (local.get $s))))
    (if (i32.or (local.get $ratio) (local.get $logCurvature))
      (then
        (local.set $f2 (f32x4.mul (local.get $as) (f32x4.mul (local.get $s) (f32x4.sub (local.get $ones) (local.get $s)))))
        (local.set $q (f32x4.div (local.get $f2) (local.get $f1)))
        (if (local.get $ratio)
          (then (v128.store align=4 (i32.add (local.get $ratio) (local.get $offset)) (local.get $q))))
        (if (local.get $logCurvature)
          (then
            ;; f‴/f′ − q² = q·(1 − 2σ) − q².
            (v128.store align=4 (i32.add (local.get $logCurvature) (local.get $offset))
              (f32x4.sub
                (f32x4.mul (local.get $q) (f32x4.sub (local.get $ones) (f32x4.add (local.get $s) (local.get $s))))
                (f32x4.mul (local.get $q) (local.get $q))))))))
    (local.get $f1))

  ;; Writes, for each of `rows` rows of `rowSize` values x:
  ;;   y = f(x), and when their pointers are not 0, slope = f′, ratio = f″/f′,
  ;;   logCurvature = f‴/f′ − (f″/f′)² and sigma = σ(x) (for `backward`); and
  ;;   rowLog[row] = Σ ln f′ over the row (float32).
  ;; softplus(x) = max(x, 0) + ln(1 + t) with t = e^−|x|, where ln(1 + t) is corrected by
  ;; ((u − 1) − t)/u for u = 1 + t, so it keeps its accuracy for small t. σ and the correction
  ;; share one reciprocal 1/u.
  ;; Σ ln f′ takes one logarithm per four vectors, of the lane-wise product of their f′: each f′
  ;; lies in (α, 1), or (1 + α, 2) with the residual, so a product of four stays far from
  ;; float32's underflow and overflow, and its rounding error (a few ulps) is that of the sum.
  (func (export "forward")
    (param $input i32) (param $y i32) (param $slope i32) (param $ratio i32) (param $logCurvature i32) (param $sigma i32) (param $rowLog i32)
    (param $rows i32) (param $rowSize i32) (param $a f32) (param $c f32)
    (local $row i32) (local $offset i32) (local $rowEnd i32) (local $pairsEnd i32)
    (local $first v128) (local $second v128) (local $sums v128) (local $as v128) (local $cs v128) (local $product v128) (local $grouped i32)
    (local.set $as (f32x4.splat (local.get $a)))
    (local.set $cs (f32x4.splat (local.get $c)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
        (local.set $rowEnd (i32.add (local.get $offset) (i32.shl (local.get $rowSize) (i32.const 2))))
        ;; Two vectors per iteration, so that the processor overlaps their exp and log.
        (local.set $pairsEnd (i32.add (local.get $offset) (i32.shl (i32.and (local.get $rowSize) (i32.const -8)) (i32.const 2))))
        (local.set $sums (f32x4.splat (f32.const 0)))
        (local.set $product (f32x4.splat (f32.const 1)))
        (local.set $grouped (i32.const 0))
        (block $pairsDone
          (loop $pairs
            (br_if $pairsDone (i32.ge_u (local.get $offset) (local.get $pairsEnd)))
            (local.set $first
              (call $forwardVector (v128.load align=4 (i32.add (local.get $input) (local.get $offset))) (local.get $offset)
                (local.get $y) (local.get $slope) (local.get $ratio) (local.get $logCurvature) (local.get $sigma) (local.get $as) (local.get $cs)))
            (local.set $second
              (call $forwardVector (v128.load offset=16 align=4 (i32.add (local.get $input) (local.get $offset))) (i32.add (local.get $offset) (i32.const 16))
                (local.get $y) (local.get $slope) (local.get $ratio) (local.get $logCurvature) (local.get $sigma) (local.get $as) (local.get $cs)))
            (local.set $product (f32x4.mul (local.get $product) (f32x4.mul (local.get $first) (local.get $second))))
            (local.set $grouped (i32.add (local.get $grouped) (i32.const 2)))
            (if (i32.eq (local.get $grouped) (i32.const 4))
              (then
                (local.set $sums (f32x4.add (local.get $sums) (call $log (local.get $product))))
                (local.set $product (f32x4.splat (f32.const 1)))
                (local.set $grouped (i32.const 0))))
            (local.set $offset (i32.add (local.get $offset) (i32.const 32)))
            (br $pairs)))
        ;; An odd last vector joins the open group, which then holds at most three.
        (if (i32.lt_u (local.get $offset) (local.get $rowEnd))
          (then
            (local.set $product
              (f32x4.mul (local.get $product)
                (call $forwardVector (v128.load align=4 (i32.add (local.get $input) (local.get $offset))) (local.get $offset)
                  (local.get $y) (local.get $slope) (local.get $ratio) (local.get $logCurvature) (local.get $sigma) (local.get $as) (local.get $cs))))
            (local.set $offset (i32.add (local.get $offset) (i32.const 16)))))
        ;; The last group, which may be empty: ln 1 is exactly 0.
        (local.set $sums (f32x4.add (local.get $sums) (call $log (local.get $product))))
        (f32.store align=4 (i32.add (local.get $rowLog) (i32.shl (local.get $row) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $sums)) (f32x4.extract_lane 1 (local.get $sums)))
            (f32.add (f32x4.extract_lane 2 (local.get $sums)) (f32x4.extract_lane 3 (local.get $sums)))))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowLoop))))

  ;; Writes dh = ∂/∂x of Σ (dy·y + dSlope·f′ + dRatio·(f″/f′) + dLogCurvature·(f‴/f′ − (f″/f′)²))
  ;; + Σ_row dRow[row]·Σ ln f′, element-wise:
  ;;   dh = dy·f′ + dSlope·f″ + dRatio·L + dRow·q + dLogCurvature·(f⁗/f′ − (f‴/f′)·q − 2q·L),
  ;; with q = f″/f′ and L = f‴/f′ − q², all functions of σ(x), which `forward` wrote to $sigma,
  ;; so no exponential is taken again. dSlope, dRatio and dLogCurvature may be 0 (zero).
  (func (export "backward")
    (param $sigma i32) (param $dy i32) (param $dSlope i32) (param $dRatio i32) (param $dLogCurvature i32) (param $dRow i32)
    (param $dh i32) (param $rows i32) (param $rowSize i32) (param $a f32) (param $c f32)
    (local $row i32) (local $offset i32) (local $rowEnd i32)
    (local $s v128) (local $f1 v128) (local $f2 v128) (local $w v128) (local $q v128) (local $r3 v128) (local $l v128)
    (local $sum v128) (local $rowGradient v128) (local $as v128) (local $cs v128) (local $ones v128)
    (local.set $as (f32x4.splat (local.get $a)))
    (local.set $cs (f32x4.splat (local.get $c)))
    (local.set $ones (f32x4.splat (f32.const 1)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
        (local.set $rowEnd (i32.add (local.get $offset) (i32.shl (local.get $rowSize) (i32.const 2))))
        (local.set $rowGradient (v128.load32_splat align=4 (i32.add (local.get $dRow) (i32.shl (local.get $row) (i32.const 2)))))
        (block $valuesDone
          (loop $values
            (br_if $valuesDone (i32.ge_u (local.get $offset) (local.get $rowEnd)))
            (local.set $s (v128.load align=4 (i32.add (local.get $sigma) (local.get $offset))))
            (local.set $f1 (f32x4.add (local.get $cs) (f32x4.mul (local.get $as) (local.get $s))))
            (local.set $f2 (f32x4.mul (local.get $as) (f32x4.mul (local.get $s) (f32x4.sub (local.get $ones) (local.get $s)))))
            ;; w = 1 − 2σ, so f‴ = f″·w; q = f″/f′; r3 = f‴/f′ = q·w; L = r3 − q².
            (local.set $w (f32x4.sub (local.get $ones) (f32x4.add (local.get $s) (local.get $s))))
            (local.set $q (f32x4.div (local.get $f2) (local.get $f1)))
            (local.set $r3 (f32x4.mul (local.get $q) (local.get $w)))
            (local.set $l (f32x4.sub (local.get $r3) (f32x4.mul (local.get $q) (local.get $q))))
            (local.set $sum
              (f32x4.add
                (f32x4.mul (v128.load align=4 (i32.add (local.get $dy) (local.get $offset))) (local.get $f1))
                (f32x4.mul (local.get $rowGradient) (local.get $q))))
            (if (local.get $dSlope)
              (then
                (local.set $sum
                  (f32x4.add (local.get $sum)
                    (f32x4.mul (v128.load align=4 (i32.add (local.get $dSlope) (local.get $offset))) (local.get $f2))))))
            (if (local.get $dRatio)
              (then
                (local.set $sum
                  (f32x4.add (local.get $sum)
                    (f32x4.mul (v128.load align=4 (i32.add (local.get $dRatio) (local.get $offset))) (local.get $l))))))
            (if (local.get $dLogCurvature)
              (then
                ;; f⁗/f′ = q·(1 − 6σ + 6σ²) = q·(1 − 6σ(1 − σ)).
                (local.set $sum
                  (f32x4.add (local.get $sum)
                    (f32x4.mul (v128.load align=4 (i32.add (local.get $dLogCurvature) (local.get $offset)))
                      (f32x4.sub
                        (f32x4.sub
                          (f32x4.mul (local.get $q)
                            (f32x4.sub (local.get $ones)
                              (f32x4.mul (f32x4.splat (f32.const 6)) (f32x4.mul (local.get $s) (f32x4.sub (local.get $ones) (local.get $s))))))
                          (f32x4.mul (local.get $r3) (local.get $q)))
                        (f32x4.mul (f32x4.add (local.get $q) (local.get $q)) (local.get $l))))))))
            (v128.store align=4 (i32.add (local.get $dh) (local.get $offset)) (local.get $sum))
            (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
            (br $values)))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowLoop))))

  ;; Solves f(x) = y for each of `count` values y (a multiple of 4) by the Newton iteration
  ;;   x ← x − (f(x) − y)/max(f′(x), floor)   from x = y, for `steps` steps,
  ;; in float32, writing the last iterate to $out. Each step is one pass over the values, so the
  ;; processor can work on neighbouring vectors at once instead of finishing one before the next.
  ;;
  ;; The step is a fixed function of x, so once step k + 1 returns an earlier iterate x_{k+1−p},
  ;; the iterates repeat with period p from there on, and the last one is known. Checking
  ;; p = 1 … 4 (in float32 most values end at a fixed point, in a 2-cycle, or in a 3-cycle
  ;; between neighbouring floats) settles such a value: its result is written and its iterate
  ;; becomes NaN. Each pass visits only the vectors with a value still moving, listed in
  ;; $active, and the iteration stops when none is left. A value that turns NaN without
  ;; settling (a NaN or infinite y) ends as NaN.
  ;;
  ;; Scratch: $x (`count` values), $back (three arrays of `count` values one after another:
  ;; x_{k−1}, x_{k−2}, x_{k−3}) and $active (count/4 int32 values).
  (func (export "inverse")
    (param $target i32) (param $out i32) (param $x i32) (param $back i32) (param $active i32) (param $count i32)
    (param $a f32) (param $c f32) (param $floor f32) (param $steps i32)
    (local $offset i32) (local $end i32) (local $step i32) (local $entry i32) (local $listed i32) (local $kept i32)
    (local $back2 i32) (local $back3 i32) (local $period2 i32) (local $period3 i32) (local $period4 i32)
    (local $y v128) (local $current v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $next v128)
    (local $open v128) (local $hit v128) (local $result v128)
    (local $t v128) (local $u v128) (local $softplus v128) (local $s v128)
    (local $as v128) (local $cs v128) (local $ones v128) (local $floors v128) (local $nans v128)
    (local.set $as (f32x4.splat (local.get $a)))
    (local.set $cs (f32x4.splat (local.get $c)))
    (local.set $ones (f32x4.splat (f32.const 1)))
    (local.set $floors (f32x4.splat (local.get $floor)))
    (local.set $nans (f32x4.splat (f32.const nan)))
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (local.set $back2 (i32.add (local.get $back) (local.get $end)))
    (local.set $back3 (i32.add (local.get $back2) (local.get $end)))
    ;; x = y, earlier iterates NaN (no step returns them), result NaN until a value settles,
    ;; every vector listed.
    (block $initialised
      (loop $initialise
        (br_if $initialised (i32.ge_u (local.get $offset) (local.get $end)))
        (v128.store align=4 (i32.add (local.get $x) (local.get $offset))
          (v128.load align=4 (i32.add (local.get $target) (local.get $offset))))
        (v128.store align=4 (i32.add (local.get $back) (local.get $offset)) (local.get $nans))
        (v128.store align=4 (i32.add (local.get $back2) (local.get $offset)) (local.get $nans))
        (v128.store align=4 (i32.add (local.get $back3) (local.get $offset)) (local.get $nans))
        (v128.store align=4 (i32.add (local.get $out) (local.get $offset)) (local.get $nans))
        (i32.store (i32.add (local.get $active) (i32.shr_u (local.get $offset) (i32.const 2))) (local.get $offset))
        (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
        (br $initialise)))
    (local.set $listed (i32.shr_u (local.get $count) (i32.const 2)))
    (block $stepsDone
      (loop $steps
        (br_if $stepsDone (i32.ge_u (local.get $step) (local.get $steps)))
        (local.set $kept (i32.const 0))
        (local.set $entry (i32.const 0))
        (local.set $period2 (call $stepsBack (i32.const 2) (local.get $step) (local.get $steps)))
        (local.set $period3 (call $stepsBack (i32.const 3) (local.get $step) (local.get $steps)))
        (local.set $period4 (call $stepsBack (i32.const 4) (local.get $step) (local.get $steps)))
        (block $pass
          (loop $vectors
            (br_if $pass (i32.ge_u (local.get $entry) (local.get $listed)))
            (local.set $offset (i32.load (i32.add (local.get $active) (i32.shl (local.get $entry) (i32.const 2)))))
            (local.set $current (v128.load align=4 (i32.add (local.get $x) (local.get $offset))))
            (local.set $x1 (v128.load align=4 (i32.add (local.get $back) (local.get $offset))))
            (local.set $x2 (v128.load align=4 (i32.add (local.get $back2) (local.get $offset))))
            (local.set $x3 (v128.load align=4 (i32.add (local.get $back3) (local.get $offset))))
            (local.set $y (v128.load align=4 (i32.add (local.get $target) (local.get $offset))))
            ;; f(x) and f′(x) from t = e^−|x|, as in "forward".
            (local.set $t (call $exp (f32x4.neg (f32x4.abs (local.get $current)))))
            (local.set $u (f32x4.add (local.get $ones) (local.get $t)))
            (local.set $softplus
              (f32x4.add (f32x4.pmax (local.get $current) (f32x4.splat (f32.const 0)))
                (f32x4.sub (call $log (local.get $u))
                  (f32x4.div (f32x4.sub (f32x4.sub (local.get $u) (local.get $ones)) (local.get $t)) (local.get $u)))))
            (local.set $s (call $logistic (local.get $current) (local.get $t)))
            (local.set $next
              (f32x4.sub (local.get $current)
                (f32x4.div
                  (f32x4.sub
                    (f32x4.add (f32x4.mul (local.get $cs) (local.get $current)) (f32x4.mul (local.get $as) (local.get $softplus)))
                    (local.get $y))
                  (f32x4.max (f32x4.add (local.get $cs) (f32x4.mul (local.get $as) (local.get $s))) (local.get $floors)))))
            ;; Period p = 1 … 4, the smallest that matches: the last iterate is x_k, x_{k−1},
            ;; x_{k−2} or x_{k−3}, $period<p> steps back from x_k (see $stepsBack; p = 1 is x_k).
            (local.set $result (v128.load align=4 (i32.add (local.get $out) (local.get $offset))))
            (local.set $open (v128.const i32x4 -1 -1 -1 -1))
            (local.set $hit (v128.and (local.get $open) (f32x4.eq (local.get $next) (local.get $current))))
            (local.set $result (v128.bitselect
              (local.get $current)
              (local.get $result) (local.get $hit)))
            (local.set $open (v128.andnot (local.get $open) (local.get $hit)))
            (local.set $hit (v128.and (local.get $open) (f32x4.eq (local.get $next) (local.get $x1))))
            (local.set $result (v128.bitselect
              (select (local.get $current) (local.get $x1) (i32.eqz (local.get $period2)))
              (local.get $result) (local.get $hit)))
            (local.set $open (v128.andnot (local.get $open) (local.get $hit)))
            (local.set $hit (v128.and (local.get $open) (f32x4.eq (local.get $next) (local.get $x2))))
            (local.set $result (v128.bitselect
              (select (local.get $current) (select (local.get $x1) (local.get $x2) (i32.eq (local.get $period3) (i32.const 1))) (i32.eqz (local.get $period3)))
              (local.get $result) (local.get $hit)))
            (local.set $open (v128.andnot (local.get $open) (local.get $hit)))
            (local.set $hit (v128.and (local.get $open) (f32x4.eq (local.get $next) (local.get $x3))))
            (local.set $result (v128.bitselect
              (select (local.get $current) (select (local.get $x1) (select (local.get $x2) (local.get $x3) (i32.eq (local.get $period4) (i32.const 2))) (i32.eq (local.get $period4) (i32.const 1))) (i32.eqz (local.get $period4)))
              (local.get $result) (local.get $hit)))
            (local.set $open (v128.andnot (local.get $open) (local.get $hit)))
            (v128.store align=4 (i32.add (local.get $out) (local.get $offset)) (local.get $result))
            (v128.store align=4 (i32.add (local.get $back3) (local.get $offset)) (local.get $x2))
            (v128.store align=4 (i32.add (local.get $back2) (local.get $offset)) (local.get $x1))
            (v128.store align=4 (i32.add (local.get $back) (local.get $offset)) (local.get $current))
            ;; Settled values continue as NaN, which no later step matches.
            (local.set $next (v128.bitselect (local.get $next) (local.get $nans) (local.get $open)))
            (v128.store align=4 (i32.add (local.get $x) (local.get $offset)) (local.get $next))
            ;; The vector stays listed while a value in it is still moving.
            (if (v128.any_true (f32x4.eq (local.get $next) (local.get $next)))
              (then
                (i32.store (i32.add (local.get $active) (i32.shl (local.get $kept) (i32.const 2))) (local.get $offset))
                (local.set $kept (i32.add (local.get $kept) (i32.const 1)))))
            (local.set $entry (i32.add (local.get $entry) (i32.const 1)))
            (br $vectors)))
        (local.set $listed (local.get $kept))
        (local.set $step (i32.add (local.get $step) (i32.const 1)))
        (br_if $steps (local.get $listed))))
    ;; Values still moving after the last step end at its iterate.
    (local.set $offset (i32.const 0))
    (block $finished
      (loop $finish
        (br_if $finished (i32.ge_u (local.get $offset) (local.get $end)))
        (local.set $current (v128.load align=4 (i32.add (local.get $x) (local.get $offset))))
        (v128.store align=4 (i32.add (local.get $out) (local.get $offset))
          (v128.bitselect (local.get $current) (v128.load align=4 (i32.add (local.get $out) (local.get $offset)))
            (f32x4.eq (local.get $current) (local.get $current))))
        (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
        (br $finish))))

;; For a sequence whose step k + 1 (k = $step) returned x_{k+1−p}, so that from x_{k+1−p} on
  ;; it repeats with period p, returns how many steps before x_k its iterate `steps` lies:
  ;; x_steps = x_{k+1−p+r} with r = (steps − (k + 1 − p)) mod p, which is p − 1 − r steps back.
  (func $stepsBack (param $p i32) (param $step i32) (param $steps i32) (result i32)
    (i32.sub (i32.sub (local.get $p) (i32.const 1))
      (i32.rem_u (i32.sub (local.get $steps) (i32.sub (i32.add (local.get $step) (i32.const 1)) (local.get $p))) (local.get $p))))

  ;; Maps `rows` rows of `rowSize` pixel values p (0 … 255) with their uniform noise u to the
  ;; logit space of the MaP preprocessing, in float32:
  ;;   s = ((p + u)·levels⁻¹ + shift)·oneMinusTwoShift,   x = (ln s − ln(1 − s))/scale,
  ;; and writes rowLog[row] = Σ (ln s + ln(1 − s)) over the row. levels⁻¹ = 1/256 is exact, so the
  ;; product equals the tensor version's division by 256. ln(1 − s) is the logarithm of the
  ;; float32 1 − s, where the tensor version takes log1p(−s): for s near 10⁻⁶ (pixel 0) that
  ;; rounding is about 3·10⁻⁸ absolute in ln(1 − s), below float32's resolution of x.
  (func (export "logit")
    (param $pixels i32) (param $noise i32) (param $x i32) (param $rowLog i32) (param $rows i32) (param $rowSize i32)
    (param $inverseLevels f32) (param $shift f32) (param $oneMinusTwoShift f32) (param $scale f32)
    (local $row i32) (local $offset i32) (local $rowEnd i32)
    (local $s v128) (local $logS v128) (local $logComplement v128) (local $sums v128)
    (local $levels v128) (local $shifts v128) (local $factors v128) (local $scales v128) (local $ones v128)
    (local.set $levels (f32x4.splat (local.get $inverseLevels)))
    (local.set $shifts (f32x4.splat (local.get $shift)))
    (local.set $factors (f32x4.splat (local.get $oneMinusTwoShift)))
    (local.set $scales (f32x4.splat (local.get $scale)))
    (local.set $ones (f32x4.splat (f32.const 1)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
        (local.set $rowEnd (i32.add (local.get $offset) (i32.shl (local.get $rowSize) (i32.const 2))))
        (local.set $sums (f32x4.splat (f32.const 0)))
        (block $valuesDone
          (loop $values
            (br_if $valuesDone (i32.ge_u (local.get $offset) (local.get $rowEnd)))
            (local.set $s
              (f32x4.mul
                (f32x4.add
                  (f32x4.mul
                    (f32x4.add
                      (v128.load align=4 (i32.add (local.get $pixels) (local.get $offset)))
                      (v128.load align=4 (i32.add (local.get $noise) (local.get $offset))))
                    (local.get $levels))
                  (local.get $shifts))
                (local.get $factors)))
            (local.set $logS (call $log (local.get $s)))
            (local.set $logComplement (call $log (f32x4.sub (local.get $ones) (local.get $s))))
            (v128.store align=4 (i32.add (local.get $x) (local.get $offset))
              (f32x4.div (f32x4.sub (local.get $logS) (local.get $logComplement)) (local.get $scales)))
            (local.set $sums (f32x4.add (local.get $sums) (f32x4.add (local.get $logS) (local.get $logComplement))))
            (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
            (br $values)))
        (f32.store align=4 (i32.add (local.get $rowLog) (i32.shl (local.get $row) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $sums)) (f32x4.extract_lane 1 (local.get $sums)))
            (f32.add (f32x4.extract_lane 2 (local.get $sums)) (f32x4.extract_lane 3 (local.get $sums)))))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowLoop))))
)
