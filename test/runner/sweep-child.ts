/**
 * A child process for the crash tests. It runs the fake 10-cell scenario and can stop dead at a
 * chosen point: inside a step, inside an evaluation, or between a record's temporary write and
 * its rename. There it prints "STALLED", so the parent can kill it with SIGKILL at that point.
 *
 * Runs only with EBFLOW_SWEEP_CHILD set (the test runner also loads every file under test/);
 * the variable contains JSON: { root, log, stall?: { at: 'step' | 'evaluate' | 'rename', cell, step? } }.
 * Every cell-end event appends "DONE <cell id>" to the log file.
 */
import { appendFileSync, writeSync } from 'node:fs';

import { runScenario } from '../../src/runner/sweep.js';
import { resolveDocument } from '../../src/scenarios/catalog.js';
import type { StepResult, TrainingConfig, TrainingSession } from '../../src/train/session.js';
import { FAKE_ENVIRONMENT, FakeSession, fakeScenarioDocument } from './fake-session.js';

interface ChildOptions {
  root: string;
  log: string;
  /** Where to stall; `cell` is the 1-based position among the cells this process runs. */
  stall?: { at: 'step' | 'evaluate' | 'rename'; cell: number; step?: number };
}

function announceAndBlock(): void {
  writeSync(1, 'STALLED\n');
  // Block the thread so the process stays exactly here until the parent kills it.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}

async function main(options: ChildOptions): Promise<void> {
  const resolved = resolveDocument(fakeScenarioDocument(), 'fake.json');
  let cellsStarted = 0;
  let writes = 0;

  const createSession = async (config: TrainingConfig): Promise<TrainingSession> => {
    cellsStarted += 1;
    const position = cellsStarted;
    const session = new FakeSession(config, { stepDelayMs: 1 });
    const stall = options.stall;
    if (stall?.cell === position && stall.at === 'step') {
      const step = session.step.bind(session);
      session.step = async (): Promise<StepResult> => {
        if (session.steps + 1 === stall.step) announceAndBlock();
        return step();
      };
    }
    if (stall?.cell === position && stall.at === 'evaluate') {
      session.evaluate = async () => {
        announceAndBlock();
        throw new Error('unreachable');
      };
    }
    return session;
  };

  await runScenario(resolved, {
    resultsRoot: options.root,
    backend: { name: 'fake', attempts: [{ name: 'fake' }] },
    createSession,
    environment: FAKE_ENVIRONMENT,
    tensorBytes: () => 0,
    writeHooks: {
      beforeRename: () => {
        writes += 1;
        // Write 1 is the manifest; write k + 1 is the record of the k-th cell run here.
        if (options.stall?.at === 'rename' && writes === options.stall.cell + 1) announceAndBlock();
      },
    },
    onEvent: (event) => {
      if (event.type === 'cell-end') appendFileSync(options.log, `DONE ${event.cellId}\n`);
    },
  });
  writeSync(1, 'FINISHED\n');
}

const request = process.env.EBFLOW_SWEEP_CHILD;
if (request) {
  main(JSON.parse(request) as ChildOptions).catch((error: unknown) => {
    writeSync(2, `sweep-child failed: ${String(error)}\n`);
    process.exitCode = 1;
  });
}
