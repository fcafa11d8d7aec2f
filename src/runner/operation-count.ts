/**
 * Operation counts of tfjs kernels, for rates of whole training steps (`bench-flops`).
 */

/** The fields of one kernel in `tf.profile`'s result that the count reads. */
export interface ProfiledKernel {
  name: string;
  inputShapes: number[][];
  outputShapes: number[][];
}

/**
 * Returns the floating-point operations of one profiled kernel by the usual counts:
 * BatchMatMul and _FusedMatMul 2·batch·m·k·n (bias and activation not counted), Conv2D
 * 2·(output size)·Kh·Kw·Cin, and 0 for every other kernel.
 */
export function kernelOperations(kernel: ProfiledKernel): number {
  const outputSize = sizeOf(kernel.outputShapes[0] ?? []);
  if (kernel.name === 'BatchMatMul' || kernel.name === '_FusedMatMul') {
    const [a, b] = kernel.inputShapes;
    const batchA = sizeOf(a.slice(0, -2));
    const batchB = sizeOf(b.slice(0, -2));
    // Per batch entry A contains m·k values, B k·n and the output m·n, so k² = (m·k)(k·n)/(m·n).
    const inner = Math.sqrt(((sizeOf(a) / batchA) * (sizeOf(b) / batchB) * Math.max(batchA, batchB)) / outputSize);
    return 2 * outputSize * Math.round(inner);
  }
  if (kernel.name === 'Conv2D') {
    const [kernelHeight, kernelWidth, inputChannels] = kernel.inputShapes[1];
    return 2 * outputSize * kernelHeight * kernelWidth * inputChannels;
  }
  return 0;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}
