import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildArtifactFigures } from '../../src/report/figures.js';

test('artifact gallery keeps scenarios apart', () => {
  const image = 'data:image/png;base64,iVBORw0KGgo=';
  const artifacts = ['smoke', 'default'].map((scenario) => ({
    kind: 'samples',
    scenario,
    cellId: 'mnist/fc/ml/D784/L2/B100/seed0',
    path: 'mnist_fc_ml_D784_L2_B100_seed0-samples.png',
    dataUrl: image,
    problem: null,
  }));
  const [figure] = buildArtifactFigures(artifacts);
  assert.ok('spec' in figure, 'the gallery is drawn');
  const values = (figure.spec.data as { values: Array<{ label: string }> }).values;
  assert.deepEqual(
    values.map((value) => value.label),
    ['smoke: mnist/fc/ml/D784/L2/B100/seed0', 'default: mnist/fc/ml/D784/L2/B100/seed0'],
  );
});
