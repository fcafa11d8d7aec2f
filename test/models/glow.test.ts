import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { ActNormLayer } from '../../src/layers/actnorm.js';
import { AffineCouplingLayer, LEAKY_RELU_SLOPE, type CouplingActivation } from '../../src/layers/affine-coupling.js';
import { Conv1x1Layer } from '../../src/layers/conv1x1.js';
import type { FlowLayer } from '../../src/layers/layer.js';
import { ActiveChannelsLayer, SplitPriorLayer } from '../../src/layers/split-prior.js';
import { SqueezeLayer } from '../../src/layers/squeeze.js';
import { createGlow, type GlowFlow } from '../../src/models/glow.js';
import { dsmObjective, ssmObjective } from '../../src/objectives/index.js';
import type { ObjectiveOptions } from '../../src/objectives/objective.js';
import { RandomStream } from '../../src/random/stream.js';
import { logAbsDetFloat64 } from '../../src/tensor/linalg.js';
import { firstMismatch, forEachBackend } from '../helpers/backends.js';
import { registerFlowKit } from '../helpers/bijection-kit.js';
import { directionalDerivative } from '../helpers/finite-difference.js';

// ---------------------------------------------------------------------------------------------
// A float64 Glow in plain TypeScript, written in the reference's own formulation. A split prior
// drops its second half and adds log N(z₂) to its log-det, the base scores only the kept
// channels, and ActNorm's log-det is part of the energy. It reads the parameters of a GlowFlow.
// ---------------------------------------------------------------------------------------------

/** One sample as an NHWC array [height, width, channels]. */
interface Image {
  height: number;
  width: number;
  channels: number;
  data: Float64Array;
}

type Step =
  | { kind: 'squeeze' }
  | { kind: 'actnorm'; location: Float64Array; logScale: Float64Array }
  | { kind: 'conv1x1'; weight: number }
  | { kind: 'coupling'; parameters: CouplingIndices; activation: CouplingActivation; split: boolean };

/** Indices into the parameter list (the order of `model.variables`). */
interface CouplingIndices {
  inputFilter: number;
  inputBias: number;
  hiddenWeight: number;
  hiddenBias: number;
  outputFilter: number;
  outputBias: number;
  outputLogScale: number;
}

/**
 * The activation pattern of every ReLU and leaky ReLU of one forward pass, in evaluation order.
 * Replaying a recorded pattern evaluates the smooth branch that autodiff differentiates, so
 * finite differences never step across a kink.
 */
class ActivationPattern {
  private readonly masks: Uint8Array[] = [];
  private cursor = 0;
  constructor(private readonly recording: boolean) {}

  /** Returns 1 where the activation takes its positive branch. */
  next(preActivation: Float64Array): Uint8Array {
    if (this.recording) {
      const mask = Uint8Array.from(preActivation, (value) => (value > 0 ? 1 : 0));
      this.masks.push(mask);
      return mask;
    }
    return this.masks[this.cursor++];
  }

  /** Returns a replaying copy that starts from the first mask. */
  replay(): ActivationPattern {
    const copy = new ActivationPattern(false);
    copy.masks.push(...this.masks);
    return copy;
  }
}

/** The energy terms of one sample under the reference formulation. */
interface ReferenceTerms {
  /** −[log N(z_base) + Σ log s + Σ_split log N(z₂) + Σ_ActNorm log-det], the reference's energy. */
  referenceEnergy: number;
  /** Σ_ActNorm −H·W·Σ s. */
  actNormLogDet: number;
  /** Σ_Conv1x1 H·W·log|det W|. */
  conv1x1LogDet: number;
}

function describeLayer(layer: FlowLayer, variables: readonly tf.Variable[]): Step {
  const inner = layer instanceof ActiveChannelsLayer ? layer.inner : layer;
  const index = (variable: tf.Variable): number => {
    const position = variables.indexOf(variable);
    assert.ok(position >= 0, `${variable.name} is not among the model's variables`);
    return position;
  };
  const couplingIndices = (coupling: AffineCouplingLayer): CouplingIndices => ({
    inputFilter: index(coupling.inputFilter),
    inputBias: index(coupling.inputBias),
    hiddenWeight: index(coupling.hiddenWeight),
    hiddenBias: index(coupling.hiddenBias),
    outputFilter: index(coupling.outputFilter),
    outputBias: index(coupling.outputBias),
    outputLogScale: index(coupling.outputLogScale),
  });
  if (inner instanceof SqueezeLayer) return { kind: 'squeeze' };
  if (inner instanceof ActNormLayer) {
    return { kind: 'actnorm', location: Float64Array.from(inner.location.dataSync()), logScale: Float64Array.from(inner.logScale.dataSync()) };
  }
  if (inner instanceof Conv1x1Layer) return { kind: 'conv1x1', weight: index(inner.weight) };
  if (inner instanceof SplitPriorLayer) {
    return { kind: 'coupling', parameters: couplingIndices(inner.coupling), activation: 'relu', split: true };
  }
  if (inner instanceof AffineCouplingLayer) {
    return { kind: 'coupling', parameters: couplingIndices(inner), activation: inner.activation, split: false };
  }
  throw new Error(`no float64 reference for layer ${layer.name}`);
}

/** Reads the model's layers and parameters for the float64 reference. */
function describeModel(model: GlowFlow): { steps: Step[]; parameters: Float64Array[] } {
  return {
    steps: model.layers.map((layer) => describeLayer(layer, model.variables)),
    parameters: model.variables.map((variable) => Float64Array.from(variable.dataSync())),
  };
}

function squeeze64(image: Image): Image {
  const { height, width, channels, data } = image;
  const out = new Float64Array(data.length);
  const outWidth = width / 2;
  for (let h = 0; h < height / 2; h++) {
    for (let w = 0; w < outWidth; w++) {
      for (let c = 0; c < channels; c++) {
        for (let dh = 0; dh < 2; dh++) {
          for (let dw = 0; dw < 2; dw++) {
            out[(h * outWidth + w) * 4 * channels + 4 * c + 2 * dh + dw] = data[((2 * h + dh) * width + 2 * w + dw) * channels + c];
          }
        }
      }
    }
  }
  return { height: height / 2, width: outWidth, channels: 4 * channels, data: out };
}

/** "Same" 3×3 convolution with zero padding: filter [3, 3, Cin, Cout], PyTorch cross-correlation. */
function conv3x3(image: Image, filter: Float64Array, bias: Float64Array, outChannels: number): Image {
  const { height, width, channels, data } = image;
  const out = new Float64Array(height * width * outChannels);
  for (let p = 0; p < height; p++) {
    for (let q = 0; q < width; q++) {
      for (let o = 0; o < outChannels; o++) {
        let sum = bias[o];
        for (let i = 0; i < 3; i++) {
          for (let j = 0; j < 3; j++) {
            const row = p + i - 1;
            const column = q + j - 1;
            if (row < 0 || row >= height || column < 0 || column >= width) continue;
            for (let c = 0; c < channels; c++) sum += filter[((i * 3 + j) * channels + c) * outChannels + o] * data[(row * width + column) * channels + c];
          }
        }
        out[(p * width + q) * outChannels + o] = sum;
      }
    }
  }
  return { height, width, channels: outChannels, data: out };
}

function activate(values: Float64Array, activation: CouplingActivation, pattern: ActivationPattern): Float64Array {
  const mask = pattern.next(values);
  const negativeSlope = activation === 'relu' ? 0 : LEAKY_RELU_SLOPE;
  return values.map((value, i) => (mask[i] === 1 ? value : negativeSlope * value));
}

function logNormal(values: Float64Array): number {
  let squared = 0;
  for (const value of values) squared += value * value;
  return -0.5 * squared - 0.5 * values.length * Math.log(2 * Math.PI);
}

/** Runs one sample through the reference Glow. */
function referenceTerms(steps: Step[], parameters: Float64Array[], sample: Float64Array, shape: number[], pattern: ActivationPattern): ReferenceTerms {
  let image: Image = { height: shape[0], width: shape[1], channels: shape[2], data: sample };
  let logUnnormalised = 0;
  let actNormLogDet = 0;
  let conv1x1LogDet = 0;
  for (const step of steps) {
    const { height, width, channels } = image;
    const pixels = height * width;
    if (step.kind === 'squeeze') {
      image = squeeze64(image);
    } else if (step.kind === 'actnorm') {
      const data = image.data.map((value, i) => (value - step.location[i % channels]) * Math.exp(-step.logScale[i % channels]));
      const logDet = -pixels * step.logScale.reduce((sum, s) => sum + s, 0);
      actNormLogDet += logDet;
      logUnnormalised += logDet;
      image = { ...image, data };
    } else if (step.kind === 'conv1x1') {
      const weight = parameters[step.weight];
      const data = new Float64Array(image.data.length);
      for (let p = 0; p < pixels; p++) {
        for (let o = 0; o < channels; o++) {
          let sum = 0;
          for (let c = 0; c < channels; c++) sum += weight[o * channels + c] * image.data[p * channels + c];
          data[p * channels + o] = sum;
        }
      }
      conv1x1LogDet += pixels * logAbsDetFloat64(weight, channels);
      image = { ...image, data };
    } else {
      const result = referenceCoupling(step, parameters, image, pattern);
      logUnnormalised += result.logDet;
      image = result.output;
    }
  }
  logUnnormalised += logNormal(image.data);
  return { referenceEnergy: -logUnnormalised, actNormLogDet, conv1x1LogDet };
}

/** Runs one affine coupling. A split prior also drops z₂ and adds log N(z₂) to the log-det. */
function referenceCoupling(
  step: Extract<Step, { kind: 'coupling' }>,
  parameters: Float64Array[],
  image: Image,
  pattern: ActivationPattern,
): { output: Image; logDet: number } {
  const { height, width, channels } = image;
  const half = channels / 2;
  const pixels = height * width;
  const indices = step.parameters;
  const hiddenWidth = parameters[indices.inputBias].length;

  const passive = new Float64Array(pixels * half);
  for (let p = 0; p < pixels; p++) for (let c = 0; c < half; c++) passive[p * half + c] = image.data[p * channels + c];
  const first = conv3x3({ height, width, channels: half, data: passive }, parameters[indices.inputFilter], parameters[indices.inputBias], hiddenWidth);
  const firstActive = activate(first.data, step.activation, pattern);

  const hiddenWeight = parameters[indices.hiddenWeight];
  const hiddenBias = parameters[indices.hiddenBias];
  const second = new Float64Array(pixels * hiddenWidth);
  for (let p = 0; p < pixels; p++) {
    for (let o = 0; o < hiddenWidth; o++) {
      let sum = hiddenBias[o];
      for (let c = 0; c < hiddenWidth; c++) sum += firstActive[p * hiddenWidth + c] * hiddenWeight[c * hiddenWidth + o];
      second[p * hiddenWidth + o] = sum;
    }
  }
  const secondActive = activate(second, step.activation, pattern);

  const convolved = conv3x3({ height, width, channels: hiddenWidth, data: secondActive }, parameters[indices.outputFilter], parameters[indices.outputBias], channels);
  const logScaleFactor = parameters[indices.outputLogScale].map((logs) => Math.exp(3 * logs));

  const data = Float64Array.from(image.data);
  let logDet = 0;
  for (let p = 0; p < pixels; p++) {
    for (let j = 0; j < half; j++) {
      const rawScale = convolved.data[p * channels + 2 * j] * logScaleFactor[2 * j];
      const shift = convolved.data[p * channels + 2 * j + 1] * logScaleFactor[2 * j + 1];
      const logS = 2 * Math.tanh(rawScale / 2);
      data[p * channels + half + j] = image.data[p * channels + half + j] * Math.exp(logS) + shift;
      logDet += logS;
    }
  }
  if (!step.split) return { output: { height, width, channels, data }, logDet };

  const kept = new Float64Array(pixels * half);
  const factored = new Float64Array(pixels * half);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < half; c++) {
      kept[p * half + c] = data[p * channels + c];
      factored[p * half + c] = data[p * channels + half + c];
    }
  }
  return { output: { height, width, channels: half, data: kept }, logDet: logDet + logNormal(factored) };
}

/** E(x) with ActNorm counted in log Z, as GlowFlow computes it, for one sample. */
function glowEnergy64(steps: Step[], parameters: Float64Array[], sample: Float64Array, shape: number[], pattern: ActivationPattern): number {
  const terms = referenceTerms(steps, parameters, sample, shape, pattern);
  return terms.referenceEnergy + terms.actNormLogDet;
}

function rows(tensor: tf.Tensor): Float64Array[] {
  const values = tensor.dataSync();
  const size = values.length / tensor.shape[0];
  return Array.from({ length: tensor.shape[0] }, (_, b) => Float64Array.from(values.subarray(b * size, (b + 1) * size)));
}

/** Returns parameters + t·direction, per variable. */
function shifted(parameters: Float64Array[], direction: Float64Array[], t: number): Float64Array[] {
  return parameters.map((values, v) => values.map((value, i) => value + t * direction[v][i]));
}

/**
 * Float64 step of the central differences of the loss tests. The loss and the energy are smooth
 * on a fixed activation pattern, so the truncation error, about h²·f‴/6, is near 1e-8 relative,
 * far below the float32 error of the values under test.
 */
const DIFFERENCE_STEP = 1e-4;

/** Returns ∇f(x) by one central difference per coordinate (2 evaluations each), in float64. */
function inputGradient(energy: (sample: Float64Array) => number, sample: Float64Array): Float64Array {
  const gradient = new Float64Array(sample.length);
  const point = Float64Array.from(sample);
  for (let i = 0; i < sample.length; i++) {
    point[i] = sample[i] + DIFFERENCE_STEP;
    const above = energy(point);
    point[i] = sample[i] - DIFFERENCE_STEP;
    const below = energy(point);
    point[i] = sample[i];
    gradient[i] = (above - below) / (2 * DIFFERENCE_STEP);
  }
  return gradient;
}

/** Builds the tiny Glow of these tests, moved away from its identity initialisation. */
function tinyGlow(seed: number, blocks = 2): GlowFlow {
  const random = new RandomStream(seed);
  const model = createGlow({ imageShape: [8, 8, 1], blocks, blockSize: 2, width: 8, random });
  for (const variable of model.variables) {
    const noise = random.normalArray(variable.size);
    tf.tidy(() => variable.assign(tf.add(variable, tf.mul(tf.tensor(noise, variable.shape), 0.2))));
  }
  return model;
}

const OBJECTIVE_OPTIONS: ObjectiveOptions = {
  sigma: 0.3,
  epsilon: 0.1,
  slices: 1,
  energyWeight: 0,
  channels: 1,
  explicitDerivatives: false,
};

/**
 * Names the role of a variable, such as "conv1x1.weight" or "split-prior.hiddenWeight", so the
 * gradient check can perturb all variables of one role together.
 */
function variableRoles(model: GlowFlow): string[] {
  const roles = new Map<tf.Variable, string>();
  for (const layer of model.layers) {
    const inner = layer instanceof ActiveChannelsLayer ? layer.inner : layer;
    const level = layer instanceof ActiveChannelsLayer ? 'after split' : 'before split';
    let coupling: AffineCouplingLayer | null = null;
    if (inner instanceof SplitPriorLayer) coupling = inner.coupling;
    if (inner instanceof AffineCouplingLayer) coupling = inner;
    if (inner instanceof Conv1x1Layer) roles.set(inner.weight, `conv1x1.weight ${level}`);
    if (coupling === null) continue;
    const kind = inner instanceof SplitPriorLayer ? 'split-prior' : `coupling ${level}`;
    const named: Array<[string, tf.Variable]> = [
      ['inputFilter', coupling.inputFilter],
      ['inputBias', coupling.inputBias],
      ['hiddenWeight', coupling.hiddenWeight],
      ['hiddenBias', coupling.hiddenBias],
      ['outputFilter', coupling.outputFilter],
      ['outputBias', coupling.outputBias],
      ['outputLogScale', coupling.outputLogScale],
    ];
    for (const [name, variable] of named) roles.set(variable, `${kind}.${name}`);
  }
  return model.variables.map((variable) => {
    const role = roles.get(variable);
    assert.ok(role !== undefined, `no role for ${variable.name}`);
    return role;
  });
}

/**
 * Compares the θ-gradient of a score-matching loss with float64 central differences of the same
 * loss along random directions. One direction moves all parameters, and one per variable role
 * moves only the variables of that role (all Conv1x1 weights after the split, all split-prior
 * hidden weights, …).
 */
function checkLossGradient(
  model: GlowFlow,
  tfjsGradients: Float64Array[],
  loss64: (parameters: Float64Array[]) => number,
  label: string,
): void {
  const { parameters } = describeModel(model);
  const roles = variableRoles(model);
  const random = new RandomStream(77);
  const randomDirection = (keep: (v: number) => boolean): Float64Array[] =>
    parameters.map((values, v) => (keep(v) ? Float64Array.from(random.normalArray(values.length)) : new Float64Array(values.length)));
  const directions = [{ name: 'all parameters', direction: randomDirection(() => true) }];
  for (const role of new Set(roles)) directions.push({ name: role, direction: randomDirection((v) => roles[v] === role) });

  let largest = 0;
  const results = directions.map(({ name, direction }) => {
    let fromAutodiff = 0;
    direction.forEach((values, v) => values.forEach((d, i) => (fromAutodiff += d * tfjsGradients[v][i])));
    const above = loss64(shifted(parameters, direction, DIFFERENCE_STEP));
    const below = loss64(shifted(parameters, direction, -DIFFERENCE_STEP));
    const fromDifferences = (above - below) / (2 * DIFFERENCE_STEP);
    largest = Math.max(largest, Math.abs(fromDifferences));
    return { name, fromAutodiff, fromDifferences };
  });
  for (const { name, fromAutodiff, fromDifferences } of results) {
    const tolerance = { relative: 2e-3, absolute: 1e-4 * largest };
    assert.equal(firstMismatch([fromAutodiff], [fromDifferences], tolerance, `${label}: derivative along ${name}`), null);
  }
}

/**
 * Runs the data-dependent ActNorm initialisation on a batch of 4 standard normal images, so the
 * kit checks one fixed function: otherwise whichever check runs first would set t and s.
 */
function initialized(model: GlowFlow, random: RandomStream): GlowFlow {
  const batch = tf.tensor(random.normalArray(4 * model.dimension), [4, ...model.sampleShape]);
  model.initialize(batch);
  batch.dispose();
  return model;
}

forEachBackend((backend) => {
  registerFlowKit(
    {
      name: 'Glow 8×8×1, 2 blocks of 2 steps, width 8',
      sampleShape: [8, 8, 1],
      // With the default step 0.05 a difference stencil crosses a leaky-ReLU kink of this draw
      // and the Jacobian is 0.03 nats off; 0.01 stays on one side of every kink.
      step: 0.01,
      create: (random) => initialized(createGlow({ imageShape: [8, 8, 1], blocks: 2, blockSize: 2, width: 8, random }), random),
    },
    backend,
  );
  registerFlowKit(
    {
      name: 'Glow 8×8×1, 3 blocks of 1 step, width 4',
      sampleShape: [8, 8, 1],
      // A smaller step than the default 0.05 keeps the stencils off the leaky-ReLU kinks.
      step: 0.01,
      create: (random) => initialized(createGlow({ imageShape: [8, 8, 1], blocks: 3, blockSize: 1, width: 4, random }), random),
    },
    backend,
  );
  registerFlowKit(
    {
      name: 'Glow 4×4×2, 1 block, tied Conv2dZero',
      sampleShape: [4, 4, 2],
      perturbation: 0.2,
      create: (random) =>
        initialized(createGlow({ imageShape: [4, 4, 2], blocks: 1, blockSize: 3, width: 6, tieZeroBiasAndLogScale: true, random }), random),
    },
    backend,
  );

  test('MNIST Glow layout follows the paper', () => {
    const model = createGlow({ imageShape: [28, 28, 1], random: new RandomStream(1) });
    assert.equal(model.architecture, 'glow');
    assert.equal(model.layers.length, 2 + 2 * 16 * 3 + 1);
    assert.deepEqual(model.latentShape, [7, 7, 16]);
    assert.deepEqual(model.baseShape, [7, 7, 8]);
    assert.equal(model.dimension, 784);
    const kinds = model.layers.slice(0, 5).map((layer) => layer.name);
    assert.deepEqual(kinds, ['squeeze[0]', 'actnorm[0.0]', 'conv1x1[0.0]', 'coupling[0.0]', 'actnorm[0.1]']);
    assert.equal(model.layers[49].name, 'split-prior[0]');
    assert.equal(model.layers[50].name, 'squeeze[1]');
    assert.ok(model.layers[51] instanceof ActiveChannelsLayer, 'second-block layers act on the kept channels');
    assert.equal((model.layers[51] as ActiveChannelsLayer).activeChannels, 8);
    assert.equal((model.layers[51] as ActiveChannelsLayer).totalChannels, 16);
    assert.deepEqual(
      model.layers.filter((layer) => layer.constantJacobian).map((layer) => layer.name.replace(/\[.*\]/, '')).filter((name, i, all) => all.indexOf(name) === i),
      ['squeeze', 'actnorm', 'conv1x1'],
    );
    // Couplings: 17 on 14×14×4 (16 steps and the split prior), 16 on 7×7×8, each with
    // 9·(C/2)·512 + 512 + 512² + 512 + 9·512·C + 2C parameters; Conv1x1: 16·4² + 16·8².
    const coupling = (c: number): number => 9 * (c / 2) * 512 + 512 + 512 * 512 + 512 + 9 * 512 * c + 2 * c;
    const expected = 17 * coupling(4) + 16 * coupling(8) + 16 * 16 + 16 * 64;
    const count = model.variables.reduce((total, variable) => total + variable.size, 0);
    assert.equal(count, expected);
    assert.equal(model.buffers.length, 32 * 3);
    model.dispose();
  });

  for (const blocks of [2, 3]) {
    test(`glow energy matches the float64 reference, ${blocks} blocks`, () => {
      const model = tinyGlow(11, blocks);
      const x = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 12);
      const energy = model.energy(x);
      const logProb = model.logProb(x);
      const logNormalizer = model.logNormalizer();
      const { steps, parameters } = describeModel(model);

      const terms = rows(x).map((sample) => referenceTerms(steps, parameters, sample, [8, 8, 1], new ActivationPattern(true)));
      // GlowFlow moves ActNorm's log-det from the energy to log Z.
      const expectedEnergy = terms.map((t) => t.referenceEnergy + t.actNormLogDet);
      const expectedLogProb = terms.map((t) => -t.referenceEnergy + t.conv1x1LogDet);
      const expectedLogNormalizer = -(terms[0].actNormLogDet + terms[0].conv1x1LogDet);
      const tolerance = { relative: 1e-5, absolute: 1e-3 };
      assert.equal(firstMismatch(energy.dataSync(), expectedEnergy, tolerance, 'E(x)'), null);
      assert.equal(firstMismatch(logProb.dataSync(), expectedLogProb, tolerance, 'log p(x)'), null);
      assert.equal(firstMismatch(logNormalizer.dataSync(), [expectedLogNormalizer], tolerance, 'log Z'), null);
      assert.ok(Math.abs(terms[0].actNormLogDet) > 1, 'ActNorm log-dets are not trivially 0 after initialisation');
      tf.dispose([x, energy, logProb, logNormalizer]);
      model.dispose();
    });
  }

  test('glow initialises every ActNorm on the first forward', () => {
    const model = tinyGlow(13);
    assert.equal(model.initialized, false);
    const x = tf.randomNormal([4, 8, 8, 1], 2, 3, 'float32', 14);
    const energy = model.energy(x);
    assert.equal(model.initialized, true);
    // The first ActNorm receives the squeezed batch, so its t is the mean of each squeezed channel.
    const squeezed = tf.tidy(() => new SqueezeLayer().forward(x).y.dataSync());
    const sums = [0, 0, 0, 0];
    squeezed.forEach((value, i) => (sums[i % 4] += value));
    const means = sums.map((sum) => sum / (squeezed.length / 4));
    assert.equal(firstMismatch(model.actNorms[0].location.dataSync(), means, backend.accumulated, 'first ActNorm t'), null);
    tf.dispose([x, energy]);
    model.dispose();
  });

  test('glow state restores ActNorm values', () => {
    const original = tinyGlow(15);
    const x = tf.randomNormal([4, 8, 8, 1], 0, 1, 'float32', 16);
    original.initialize(x);
    const state = JSON.parse(JSON.stringify(original.getState()));

    const restored = tinyGlow(15);
    restored.setState(state);
    assert.equal(restored.initialized, true);
    const other = tf.randomNormal([2, 8, 8, 1], 5, 2, 'float32', 17);
    const fromOriginal = original.energy(other);
    const fromRestored = restored.energy(other);
    assert.deepEqual(Array.from(fromRestored.dataSync()), Array.from(fromOriginal.dataSync()));
    assert.throws(() => restored.setState({ actNorms: state.actNorms.slice(1) }), /with 4 entries, received 3/);
    tf.dispose([x, other, fromOriginal, fromRestored]);
    original.dispose();
    restored.dispose();
  });

  test('glow samples finite images of the MNIST shape', () => {
    const random = new RandomStream(18);
    const model = createGlow({ imageShape: [28, 28, 1], blockSize: 2, width: 16, random });
    for (const variable of model.variables) {
      const noise = random.normalArray(variable.size);
      tf.tidy(() => variable.assign(tf.add(variable, tf.mul(tf.tensor(noise, variable.shape), 0.05))));
    }
    const data = tf.randomNormal([8, 28, 28, 1], 0, 1, 'float32', 19);
    model.initialize(data);
    const samples = model.sample(5, random);
    assert.deepEqual(samples.shape, [5, 28, 28, 1]);
    assert.ok(samples.dataSync().every((value) => Number.isFinite(value)), 'samples have non-finite values');
    // Sampling a latent and mapping it back recovers the latent.
    const z = tf.tensor(random.normalArray(2 * 784), [2, 7, 7, 16]);
    const images = model.inverse(z);
    const latent = tf.tidy(() => {
      let current = images;
      for (const layer of model.layers) current = layer.forward(current).y;
      return current;
    });
    assert.equal(firstMismatch(latent.dataSync(), z.dataSync(), { relative: 1e-3, absolute: 1e-3 }, 'g(g⁻¹(z))'), null);
    tf.dispose([data, samples, z, images, latent]);
    model.dispose();
  });

  test('glow rejects bad options and shapes', () => {
    const random = new RandomStream(1);
    assert.throws(() => createGlow({ imageShape: [28, 28, 1], blocks: 3, random }), /divisible by 8/);
    assert.throws(() => createGlow({ imageShape: [8, 8, 1], blockSize: 0, random }), /blockSize must be an integer ≥ 1/);
    const model = createGlow({ imageShape: [4, 4, 1], blocks: 1, blockSize: 1, width: 2, random });
    const wrong = tf.zeros([2, 5]);
    assert.throws(() => model.energy(wrong), /expected a batch of shape \[B, 4, 4, 1\] or \[B, 16\], received \[2, 5\]/);
    assert.throws(() => model.sample(0, random), /count must be a positive integer/);
    wrong.dispose();
    model.dispose();
  });

  if (backend.name !== 'wasm') return;

  test('glow SSM θ-gradient matches float64 differences', () => {
    const model = tinyGlow(21);
    const random = new RandomStream(22);
    const x = tf.tensor4d(random.normalArray(2 * 64), [2, 8, 8, 1]);
    const prepared = ssmObjective.prepare(model, x, random, OBJECTIVE_OPTIONS);
    // The first forward pass, which initialises the ActNorms, runs inside the nested tapes.
    const { value, grads } = tf.variableGrads(() => ssmObjective.loss(model, x, prepared, OBJECTIVE_OPTIONS), model.variables);
    assert.equal(model.initialized, true);
    const tfjsGradients = model.variables.map((variable) => Float64Array.from(grads[variable.name].dataSync()));

    const { steps } = describeModel(model);
    const samples = rows(x);
    const directions = rows(prepared.directions);
    const patterns = samples.map((sample) => {
      const pattern = new ActivationPattern(true);
      referenceTerms(steps, describeModel(model).parameters, sample, [8, 8, 1], pattern);
      return pattern;
    });
    // L = (1/(B·D)) Σ_b [½‖∇ₓE‖² − vᵀ(∇²ₓE)v].
    const loss64 = (parameters: Float64Array[]): number => {
      let total = 0;
      samples.forEach((sample, b) => {
        const energy = (point: Float64Array): number => glowEnergy64(steps, parameters, point, [8, 8, 1], patterns[b].replay());
        const gradient = inputGradient(energy, sample);
        const curvature = directionalDerivative(energy, sample, directions[b], 2);
        total += 0.5 * gradient.reduce((sum, g) => sum + g * g, 0) - curvature;
      });
      return total / (samples.length * 64);
    };
    const base = describeModel(model).parameters;
    assert.equal(firstMismatch(value.dataSync(), [loss64(base)], { relative: 1e-3, absolute: 1e-4 }, 'SSM loss'), null);
    checkLossGradient(model, tfjsGradients, loss64, 'SSM');
    tf.dispose([x, value, ...Object.values(grads), ...Object.values(prepared)]);
    model.dispose();
  });

  test('glow DSM θ-gradient matches float64 differences', () => {
    const model = tinyGlow(23);
    const random = new RandomStream(24);
    const x = tf.tensor4d(random.normalArray(2 * 64), [2, 8, 8, 1]);
    model.initialize(x);
    const prepared = dsmObjective.prepare(model, x, random, OBJECTIVE_OPTIONS);
    const { value, grads } = tf.variableGrads(() => dsmObjective.loss(model, x, prepared, OBJECTIVE_OPTIONS), model.variables);
    const tfjsGradients = model.variables.map((variable) => Float64Array.from(grads[variable.name].dataSync()));

    const { steps, parameters: base } = describeModel(model);
    const sigma = OBJECTIVE_OPTIONS.sigma;
    const noise = rows(prepared.noise);
    const noisy = rows(x).map((sample, b) => sample.map((value, i) => value + sigma * noise[b][i]));
    const patterns = noisy.map((sample) => {
      const pattern = new ActivationPattern(true);
      referenceTerms(steps, base, sample, [8, 8, 1], pattern);
      return pattern;
    });
    // L = (1/(B·D)) Σ_b ½‖n_b/σ − ∇ₓE(x̃_b)‖².
    const loss64 = (parameters: Float64Array[]): number => {
      let total = 0;
      noisy.forEach((sample, b) => {
        const energy = (point: Float64Array): number => glowEnergy64(steps, parameters, point, [8, 8, 1], patterns[b].replay());
        const gradient = inputGradient(energy, sample);
        gradient.forEach((g, i) => (total += 0.5 * (noise[b][i] / sigma - g) ** 2));
      });
      return total / (noisy.length * 64);
    };
    assert.equal(firstMismatch(value.dataSync(), [loss64(base)], { relative: 1e-4, absolute: 1e-4 }, 'DSM loss'), null);
    checkLossGradient(model, tfjsGradients, loss64, 'DSM');
    tf.dispose([x, value, ...Object.values(grads), ...Object.values(prepared)]);
    model.dispose();
  });
});
