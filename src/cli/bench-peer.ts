#!/usr/bin/env node
/**
 * `npm run bench:peer`: times our training steps and a peer engine's side by side, interleaved,
 * and writes reports/peer/peer-comparison.{csv,json,vl.json,svg}, and peer-scaling.csv for a grid
 * of three sizes D or more. Progress goes to standard error; the tables go to standard output.
 * `--help` lists the options.
 */
import { dirname } from 'node:path';

import { BackendRequestError } from '../backend/select.js';
import { runPeerComparison } from '../peer/bench.js';
import { EngineSide } from '../peer/engine-side.js';
import { BENCH_PEER_HELP, parseBenchPeerArgs, type BenchPeerOptions } from '../peer/options.js';
import { formatPeerTable, writePeerReport } from '../peer/report.js';
import { formatPeerScaling, peerScalingFits } from '../peer/scaling.js';
import type { SweepEvent } from '../peer/sweep.js';

function logEvent(event: SweepEvent | { type: 'notice'; message: string }): void {
  switch (event.type) {
    case 'notice':
      console.error(`bench:peer: WARNING: ${event.message}`);
      break;
    case 'peer-started': {
      const hello = event.hello;
      console.error(`bench:peer: peer started: ${hello.engine} ${hello.version}, BLAS ${hello.blas ?? 'unknown'} (${event.command})`);
      break;
    }
    case 'peer-unavailable':
      console.error(`bench:peer: ERROR: ${event.message}; the remaining peer runs are skipped`);
      break;
    case 'run-start':
      break;
    case 'run-complete':
      console.error(`bench:peer: ${event.cellId} ${roundLabel(event.round)} ${event.series}: median ${event.medianMs.toFixed(1)} ms`);
      break;
    case 'run-error':
      console.error(`bench:peer: ERROR: ${event.cellId} ${roundLabel(event.round)} ${event.series} failed: ${event.message}`);
      break;
  }
}

/** Returns "1 cell", "2 cells" and so on. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Returns a round's name for the log: round 0 is the untimed warm-up before the sweep. */
function roundLabel(round: number): string {
  return round === 0 ? 'warm-up' : `round ${round}`;
}

async function main(): Promise<number> {
  let options: BenchPeerOptions;
  try {
    options = parseBenchPeerArgs(process.argv.slice(2));
  } catch (error) {
    const message = (error as Error).message;
    console.error(message.startsWith('bench:peer') ? message : `bench:peer: ${message}`);
    console.error('Run with --help for the options.');
    return 2;
  }
  if (options.help) {
    process.stdout.write(BENCH_PEER_HELP);
    return 0;
  }

  let ourSide: EngineSide;
  try {
    ourSide = await EngineSide.create(options.backend);
  } catch (error) {
    if (!(error instanceof BackendRequestError)) throw error;
    console.error(`bench:peer: ${error.message}`);
    return 2;
  }
  const runs = (options.cells.length * options.timing.rounds + (options.timing.sweepWarmup ?? 0)) * (1 + options.peerThreads.length);
  console.error(`bench:peer: ${count(options.cells.length, 'cell')}, ${count(options.timing.rounds, 'round')}, up to ` +
    `${count(runs, 'run')}; our backend ${ourSide.backend}`);

  const report = await runPeerComparison(ourSide, {
    cells: options.cells,
    timing: options.timing,
    peerThreads: options.peerThreads,
    peerCommand: options.peerCommand,
    ompWaitPolicy: options.ompWaitPolicy,
    runTimeoutMs: options.runTimeoutMs,
    onEvent: logEvent,
  });
  const paths = await writePeerReport(report, options.outDir);

  console.log(formatPeerTable(report));
  const fits = peerScalingFits(report);
  if (fits.length > 0) console.log(`\nfitted exponent of step time in D, with its 95% interval:\n${formatPeerScaling(fits)}\n`);
  for (const notice of report.notices) console.log(`NOTE: ${notice}`);
  const ourBlas = report.ours.blas === undefined ? '' : ` (${report.ours.blas})`;
  console.log(`machine: ${report.machine.cpuModel} (${report.machine.cpuCount} CPUs); ours: ${report.ours.backend}${ourBlas}; ` +
    `peer: ${report.peer === null ? 'none' : `${report.peer.engine} ${report.peer.version}, BLAS ${report.peer.blas ?? 'unknown'}, ` +
      `OpenMP wait ${report.peer.ompWaitPolicy ?? 'libgomp default'}`}`);
  console.log(`wrote ${[paths.csv, paths.json, paths.spec, paths.svg, paths.scaling].filter((file) => file !== undefined).join(', ')}`);
  if (paths.keptComparison !== undefined) {
    console.log(`NOTE: this run has no timings of the peer, so the comparison with them in ${paths.keptComparison} was kept, and this run's files went to ${dirname(paths.json)}.`);
  }
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    console.error(`bench:peer: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
