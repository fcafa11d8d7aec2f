import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatMedianConfidence, formatMedianInterval } from '../../src/cli/format.js';

test('median interval at 95% coverage', () => {
  const timing = { medianCiMs: [12.81, 30.7] as [number, number], medianCiLevel: 0.961 };
  assert.equal(formatMedianConfidence(timing), '95% CI 12.81–30.70 ms');
  assert.equal(formatMedianInterval(timing), '12.81–30.70');
});

test('median interval from few steps', () => {
  const timing = { medianCiMs: [12.81, 30.7] as [number, number], medianCiLevel: 0.75 };
  assert.equal(formatMedianConfidence(timing), '75% CI 12.81–30.70 ms, too few steps for 95%');
  assert.equal(formatMedianInterval(timing), '12.81–30.70 (75%)');
});

test('median interval from one step', () => {
  const timing = { medianCiMs: [12.81, 12.81] as [number, number], medianCiLevel: 0 };
  assert.equal(formatMedianConfidence(timing), 'no CI from 1 timed step');
});
