/**
 * Returns the `execArgv` option for this process's worker threads. Node accepts `--input-type`
 * only with `--eval`, `--print` or standard input, and a worker that inherited it from a
 * `node --input-type=module -e …` process failed before its first line (ERR_INPUT_TYPE_NOT_ALLOWED).
 * So when the process's options contain it, this returns the other options. Otherwise it returns
 * undefined and the worker inherits them, because an explicit list with a V8 or per-process
 * option, such as `--max-old-space-size` or `--title`, makes `new Worker` throw
 * ERR_WORKER_INVALID_EXEC_ARGV (Node 20.20). O(number of options).
 *
 * NOTE: a process started with `--input-type` and such an option still cannot start workers.
 */
export function workerExecArgv(options: readonly string[] = process.execArgv): string[] | undefined {
  const otherOptions: string[] = [];
  let dropped = false;
  for (let i = 0; i < options.length; i++) {
    if (options[i] === '--input-type') {
      dropped = true;
      i++; // its value is the next option
      continue;
    }
    if (options[i].startsWith('--input-type=')) {
      dropped = true;
      continue;
    }
    otherOptions.push(options[i]);
  }
  return dropped ? otherOptions : undefined;
}
