import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import createWabt from 'wabt';

/** The exports of scripts/wat-inline.mjs used here. */
interface WatInline {
  inlineHelpers(text: string): string;
}

/** The parts of the global WebAssembly API used here (the project's TypeScript libs omit its types). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, (...args: number[]) => number> };
}
const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** A module whose exports call helpers nested in arguments, in one another and twice in a row. */
const MODULE = `
(module
  ;; a − b, so swapped arguments show.
  (func $difference (param $a i32) (param $b i32) (result i32)
    (i32.sub (local.get $a) (local.get $b)))
  ;; Counts up from its local, which must start at zero on every call.
  (func $fromZero (param $n i32) (result i32) (local $total i32)
    (local.set $total (i32.add (local.get $total) (local.get $n)))
    (local.get $total))
  (func $twiceDifference (param $a i32) (param $b i32) (result i32)
    (i32.mul (i32.const 2) (call $difference (local.get $a) (local.get $b))))
  (func $pair (param $x f32) (result f32 f32)
    (f32.neg (local.get $x)) (f32.mul (local.get $x) (local.get $x)))
  (func (export "nested") (param $x i32) (param $y i32) (result i32)
    (call $difference (call $difference (local.get $x) (local.get $y)) (call $twiceDifference (local.get $y) (i32.const 1))))
  (func (export "repeated") (param $n i32) (result i32)
    (i32.add (call $fromZero (local.get $n)) (call $fromZero (local.get $n))))
  (func (export "pairSum") (param $x f32) (result f32)
    (f32.add (call $pair (local.get $x))))
)`;

describe('wat-inline', () => {
  let inline: WatInline;
  let wabt: Awaited<ReturnType<typeof createWabt>>;

  before(async () => {
    // The script is plain JavaScript outside the compiled tree, loaded from the repository root.
    inline = (await import(new URL('../../../scripts/wat-inline.mjs', import.meta.url).href)) as WatInline;
    wabt = await createWabt();
  });

  /** Compiles WebAssembly text and returns its exports. */
  function instantiate(text: string): Record<string, (...args: number[]) => number> {
    const module = wabt.parseWat('test.wat', text, { simd: true, bulk_memory: true, multi_value: true });
    try {
      module.validate();
      return new webAssembly.Instance(new webAssembly.Module(module.toBinary({}).buffer), {}).exports;
    } finally {
      module.destroy();
    }
  }

  it('inlined module computes the same values', () => {
    const original = instantiate(MODULE);
    const inlined = instantiate(inline.inlineHelpers(MODULE));
    for (const [x, y] of [[7, 3], [-4, 9], [0, 0]]) {
      assert.equal(inlined.nested!(x!, y!), original.nested!(x!, y!), `nested(${x}, ${y})`);
    }
    // (7 − 3) − 2·(3 − 1) = 0 pins the argument order.
    assert.equal(inlined.nested!(7, 3), 0);
    assert.equal(inlined.repeated!(5), 10);
    assert.equal(inlined.pairSum!(3), 6);
  });

  it('inlined exports call no helper', () => {
    const text = inline.inlineHelpers(MODULE);
    const exported = text.slice(text.indexOf('(export'));
    assert.doesNotMatch(exported, /\(call \$/);
  });

  it('rejects helpers that use local indices', () => {
    const text = '(module (func $h (param i32) (result i32) (local.get 0)) (func (export "f") (result i32) (call $h (i32.const 1))))';
    assert.throws(() => inline.inlineHelpers(text), /helper \$h must name its parameters, locals and branch labels/);
  });

  it('rejects numbered branches in arguments', () => {
    const text = '(module (func $h (param $a i32) (result i32) (local.get $a)) (func (export "f") (result i32) (call $h (block (result i32) (br 0 (i32.const 1))))))';
    assert.throws(() => inline.inlineHelpers(text), /arguments of a call to \$h must name their branch labels/);
  });

  it('keeps recursive functions as calls', () => {
    const text = '(module (func $down (param $n i32) (result i32) (if (result i32) (local.get $n) (then (call $down (i32.sub (local.get $n) (i32.const 1)))) (else (i32.const 0)))) (func (export "f") (result i32) (call $down (i32.const 3))))';
    assert.match(inline.inlineHelpers(text), /\(call \$down/);
  });
});
