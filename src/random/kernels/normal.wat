;; The bulk draws of RandomStream (src/random/stream.ts) in WebAssembly: xoshiro128** uniforms,
;; and standard normals by the Box–Muller transform in float32 SIMD.
;;
;; The generator state lives in four globals that the caller sets before and reads after each
;; call, so the stream continues exactly as the JavaScript methods would. Uniforms come out bit
;; for bit as `uniform()` rounded to float32. Normals use the same uniform pairs as `normal()`:
;;   z₀ = r·cos θ,  z₁ = r·sin θ,  r = √(−2·ln(1 − u₁)),  θ = 2π·u₂,
;; with ln, sin and cos the single-precision Cephes approximations (range reduction, then a
;; polynomial), so each value is within a few float32 rounding errors of `normal()`.
;;
;; The module has its own memory, which the caller grows; pointers are byte offsets into it.
;; Compiled to normal.wasm by scripts/build-wasm.mjs during `npm run build`.
(module
  (memory (export "memory") 1)
  (global $s0 (mut i32) (i32.const 0))
  (global $s1 (mut i32) (i32.const 0))
  (global $s2 (mut i32) (i32.const 0))
  (global $s3 (mut i32) (i32.const 1))

  (func (export "set_state") (param $a i32) (param $b i32) (param $c i32) (param $d i32)
    (global.set $s0 (local.get $a))
    (global.set $s1 (local.get $b))
    (global.set $s2 (local.get $c))
    (global.set $s3 (local.get $d)))

  ;; Returns state word $i (0 to 3).
  (func (export "state") (param $i i32) (result i32)
    (if (result i32) (i32.eqz (local.get $i)) (then (global.get $s0))
      (else (if (result i32) (i32.eq (local.get $i) (i32.const 1)) (then (global.get $s1))
        (else (if (result i32) (i32.eq (local.get $i) (i32.const 2)) (then (global.get $s2)) (else (global.get $s3))))))))

;; One xoshiro128** step, as RandomStream.nextUint32: takes the state words and returns the
  ;; output followed by the new words. Callers keep the state in locals inside their loops.
  (func $step (param $a i32) (param $b i32) (param $c i32) (param $d i32) (result i32 i32 i32 i32 i32)
    (local $t i32)
    (local.set $t (i32.shl (local.get $b) (i32.const 9)))
    (i32.mul (i32.rotl (i32.mul (local.get $b) (i32.const 5)) (i32.const 7)) (i32.const 9))
    (local.set $c (i32.xor (local.get $c) (local.get $a)))
    (local.set $d (i32.xor (local.get $d) (local.get $b)))
    (local.set $b (i32.xor (local.get $b) (local.get $c)))
    (local.set $a (i32.xor (local.get $a) (local.get $d)))
    (local.set $c (i32.xor (local.get $c) (local.get $t)))
    (local.set $d (i32.rotl (local.get $d) (i32.const 11)))
    (local.get $a) (local.get $b) (local.get $c) (local.get $d))

  ;; Converts a 32-bit output to the uniform in [0, 1) that RandomStream.uniform returns.
  (func $toUniform (param $bits i32) (result f64)
    (f64.div (f64.convert_i32_u (local.get $bits)) (f64.const 4294967296)))

;; Writes n uniforms, rounded to float32, at $out.
  (func (export "uniforms") (param $out i32) (param $n i32)
    (local $end i32) (local $bits i32) (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    (local.set $a (global.get $s0))
    (local.set $b (global.get $s1))
    (local.set $c (global.get $s2))
    (local.set $d (global.get $s3))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
        (call $step (local.get $a) (local.get $b) (local.get $c) (local.get $d))
        (local.set $d) (local.set $c) (local.set $b) (local.set $a) (local.set $bits)
        (f32.store (local.get $out) (f32.demote_f64 (call $toUniform (local.get $bits))))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $next)))
    (global.set $s0 (local.get $a))
    (global.set $s1 (local.get $b))
    (global.set $s2 (local.get $c))
    (global.set $s3 (local.get $d)))

  ;; ln x for finite x > 0, four lanes (Cephes logf).
  (func $log (param $x v128) (result v128)
    (local $e v128) (local $m v128) (local $small v128) (local $z v128) (local $p v128)
    (local.set $e
      (i32x4.sub (i32x4.shr_u (v128.and (local.get $x) (i32x4.splat (i32.const 0x7f800000))) (i32.const 23))
        (i32x4.splat (i32.const 126))))
    (local.set $m (v128.or (v128.and (local.get $x) (i32x4.splat (i32.const 0x807fffff))) (i32x4.splat (i32.const 0x3f000000))))
    (local.set $small (f32x4.lt (local.get $m) (f32x4.splat (f32.const 0.707106781186547524))))
    (local.set $e (f32x4.convert_i32x4_s (i32x4.add (local.get $e) (local.get $small))))
    (local.set $m
      (f32x4.add (f32x4.sub (local.get $m) (f32x4.splat (f32.const 1))) (v128.and (local.get $m) (local.get $small))))
    (local.set $z (f32x4.mul (local.get $m) (local.get $m)))
    (local.set $p (f32x4.splat (f32.const 7.0376836292e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $m)) (f32x4.splat (f32.const -1.1514610310e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $m)) (f32x4.splat (f32.const 1.1676998740e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $m)) (f32x4.splat (f32.const -1.2420140846e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $m)) (f32x4.splat (f32.const 1.4249322787e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $m)) (f32x4.splat (f32.const -1.6668057665e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $m)) (f32x4.splat (f32.const 2.0000714765e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $m)) (f32x4.splat (f32.const -2.4999993993e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $m)) (f32x4.splat (f32.const 3.3333331174e-1))))
    (local.set $p (f32x4.mul (f32x4.mul (local.get $p) (local.get $m)) (local.get $z)))
    (local.set $p (f32x4.add (local.get $p) (f32x4.mul (local.get $e) (f32x4.splat (f32.const -2.12194440e-4)))))
    (local.set $p (f32x4.sub (local.get $p) (f32x4.mul (local.get $z) (f32x4.splat (f32.const 0.5)))))
    (f32x4.add (f32x4.add (local.get $m) (local.get $p)) (f32x4.mul (local.get $e) (f32x4.splat (f32.const 0.693359375)))))

  ;; Writes 2·pairs standard normals at $out, [z₀, z₁] per pair. With p = pairs rounded up to a
  ;; multiple of 4, it uses 3·p float32 values of scratch space at $scratch, and the output needs
  ;; room for 2·p values, because the last group of four pairs is computed whole.
  (func (export "normal_pairs") (param $out i32) (param $scratch i32) (param $pairs i32)
    (local $i i32) (local $u i32) (local $uniform f64) (local $plane i32) (local $end i32)
    (local $bits i32) (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    (local $v v128) (local $u1 v128) (local $near v128) (local $l v128) (local $radius v128)
    (local $y v128) (local $x v128) (local $j v128) (local $z v128) (local $z2 v128)
    (local $sinZ v128) (local $cosZ v128) (local $quarter v128) (local $half v128)
    (local $sinX v128) (local $cosX v128) (local $first v128) (local $second v128)
    ;; 1. The uniforms, in three planes: 1 − u₁ (rounded once, from float64), u₁, and u₂.
    (local.set $plane (i32.shl (i32.and (i32.add (local.get $pairs) (i32.const 3)) (i32.const -4)) (i32.const 2)))
    (local.set $a (global.get $s0))
    (local.set $b (global.get $s1))
    (local.set $c (global.get $s2))
    (local.set $d (global.get $s3))
    (block $drawn
      (loop $draw
        (br_if $drawn (i32.ge_u (local.get $i) (local.get $pairs)))
        (local.set $u (i32.add (local.get $scratch) (i32.shl (local.get $i) (i32.const 2))))
        (call $step (local.get $a) (local.get $b) (local.get $c) (local.get $d))
        (local.set $d) (local.set $c) (local.set $b) (local.set $a) (local.set $bits)
        (local.set $uniform (call $toUniform (local.get $bits)))
        (f32.store (local.get $u) (f32.demote_f64 (f64.sub (f64.const 1) (local.get $uniform))))
        (f32.store (i32.add (local.get $u) (local.get $plane)) (f32.demote_f64 (local.get $uniform)))
        (call $step (local.get $a) (local.get $b) (local.get $c) (local.get $d))
        (local.set $d) (local.set $c) (local.set $b) (local.set $a) (local.set $bits)
        (f32.store (i32.add (local.get $u) (i32.shl (local.get $plane) (i32.const 1))) (f32.demote_f64 (call $toUniform (local.get $bits))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $draw)))
    (global.set $s0 (local.get $a))
    (global.set $s1 (local.get $b))
    (global.set $s2 (local.get $c))
    (global.set $s3 (local.get $d))
    ;; 2. Four pairs at a time.
    (local.set $end (i32.add (local.get $scratch) (local.get $plane)))
    (block $transformed
      (loop $transform
        (br_if $transformed (i32.ge_u (local.get $scratch) (local.get $end)))
        ;; ln(1 − u₁): for 1 − u₁ ≥ ½ the rounding of 1 − u₁ is corrected by −u₁/((1 − u₁) − 1),
        ;; and where 1 − u₁ rounds to 1, ln(1 − u₁) ≈ −u₁.
        (local.set $v (v128.load (local.get $scratch)))
        (local.set $u1 (v128.load (i32.add (local.get $scratch) (local.get $plane))))
        (local.set $l (call $log (local.get $v)))
        (local.set $near (f32x4.ge (local.get $v) (f32x4.splat (f32.const 0.5))))
        (local.set $l
          (v128.bitselect
            (f32x4.div (f32x4.mul (local.get $l) (f32x4.neg (local.get $u1))) (f32x4.sub (local.get $v) (f32x4.splat (f32.const 1))))
            (local.get $l)
            (v128.and (local.get $near) (f32x4.ne (local.get $v) (f32x4.splat (f32.const 1))))))
        (local.set $l (v128.bitselect (f32x4.neg (local.get $u1)) (local.get $l) (f32x4.eq (local.get $v) (f32x4.splat (f32.const 1)))))
        (local.set $radius (f32x4.sqrt (f32x4.mul (f32x4.splat (f32.const -2)) (local.get $l))))
        ;; θ = 2π·u₂ and y = θ − π in [−π, π), so sin θ = −sin y and cos θ = −cos y.
        (local.set $y
          (f32x4.sub
            (f32x4.mul (v128.load (i32.add (local.get $scratch) (i32.shl (local.get $plane) (i32.const 1))))
              (f32x4.splat (f32.const 6.28318530717958648)))
            (f32x4.splat (f32.const 3.14159265358979324))))
        ;; |y| = j·π/4 + z with j in {0, 2, 4} and |z| ≤ π/4; π/4 in three parts.
        (local.set $x (f32x4.abs (local.get $y)))
        (local.set $j
          (f32x4.mul (f32x4.splat (f32.const 2))
            (f32x4.floor (f32x4.add (f32x4.mul (local.get $x) (f32x4.splat (f32.const 0.636619772367581343))) (f32x4.splat (f32.const 0.5))))))
        (local.set $z (f32x4.sub (local.get $x) (f32x4.mul (local.get $j) (f32x4.splat (f32.const 0.78515625)))))
        (local.set $z (f32x4.sub (local.get $z) (f32x4.mul (local.get $j) (f32x4.splat (f32.const 2.4187564849853515625e-4)))))
        (local.set $z (f32x4.sub (local.get $z) (f32x4.mul (local.get $j) (f32x4.splat (f32.const 3.77489497744594108e-8)))))
        (local.set $z2 (f32x4.mul (local.get $z) (local.get $z)))
        ;; sin z ≈ z + z³·P(z²), cos z ≈ 1 − z²/2 + z⁴·Q(z²) (Cephes sinf and cosf).
        (local.set $sinZ
          (f32x4.add (local.get $z)
            (f32x4.mul (f32x4.mul (local.get $z) (local.get $z2))
              (f32x4.add (f32x4.splat (f32.const -1.6666654611e-1))
                (f32x4.mul (local.get $z2)
                  (f32x4.add (f32x4.splat (f32.const 8.3321608736e-3))
                    (f32x4.mul (local.get $z2) (f32x4.splat (f32.const -1.9515295891e-4)))))))))
        (local.set $cosZ
          (f32x4.add
            (f32x4.sub (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $z2) (f32x4.splat (f32.const 0.5))))
            (f32x4.mul (f32x4.mul (local.get $z2) (local.get $z2))
              (f32x4.add (f32x4.splat (f32.const 4.166664568298827e-2))
                (f32x4.mul (local.get $z2)
                  (f32x4.add (f32x4.splat (f32.const -1.388731625493765e-3))
                    (f32x4.mul (local.get $z2) (f32x4.splat (f32.const 2.443315711809948e-5)))))))))
        ;; j = 0: (sin, cos)|y| = (S, C); j = 2: (C, −S); j = 4: (−S, −C).
        (local.set $quarter (f32x4.eq (local.get $j) (f32x4.splat (f32.const 2))))
        (local.set $half (f32x4.eq (local.get $j) (f32x4.splat (f32.const 4))))
        (local.set $sinX (v128.bitselect (local.get $cosZ) (local.get $sinZ) (local.get $quarter)))
        (local.set $sinX (v128.bitselect (f32x4.neg (local.get $sinZ)) (local.get $sinX) (local.get $half)))
        (local.set $cosX (v128.bitselect (f32x4.neg (local.get $sinZ)) (local.get $cosZ) (local.get $quarter)))
        (local.set $cosX (v128.bitselect (f32x4.neg (local.get $cosZ)) (local.get $cosX) (local.get $half)))
        ;; sin y carries the sign of y; then sin θ = −sin y and cos θ = −cos |y|.
        (local.set $sinX (v128.xor (local.get $sinX) (v128.and (local.get $y) (i32x4.splat (i32.const 0x80000000)))))
        (local.set $first (f32x4.mul (local.get $radius) (f32x4.neg (local.get $cosX))))
        (local.set $second (f32x4.mul (local.get $radius) (f32x4.neg (local.get $sinX))))
        (v128.store (local.get $out)
          (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $first) (local.get $second)))
        (v128.store (i32.add (local.get $out) (i32.const 16))
          (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $first) (local.get $second)))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (local.set $scratch (i32.add (local.get $scratch) (i32.const 16)))
        (br $transform))))
)
