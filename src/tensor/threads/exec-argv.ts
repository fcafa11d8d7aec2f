/**
 * Node options of this process that its worker threads can take. A worker inherits the
 * process's options, and `--input-type`, which Node accepts only with `--eval`, `--print` or
 * standard input, made every worker of a `node --input-type=module -e …` process fail before its
 * first line (ERR_INPUT_TYPE_NOT_ALLOWED). O(number of options).
 */
export function workerExecArgv(options: readonly string[] = process.execArgv): string[] {
  const kept: string[] = [];
  for (let i = 0; i < options.length; i++) {
    if (options[i] === '--input-type') {
      i++; // its value is the next option
      continue;
    }
    if (options[i].startsWith('--input-type=')) continue;
    kept.push(options[i]);
  }
  return kept;
}
