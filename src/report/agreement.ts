/**
 * Sentences that compare our numbers with the paper's (Chao et al., NeurIPS 2023, numbers in
 * `paper-results.ts`), generated from the table rows, so each paragraph on the page says in
 * numbers where we agree and where not.
 */
import { objectiveRank } from './cells.js';
import { PAPER_TABLE_4 } from './paper-results.js';
import { formatSignificant, type ReportTable, type TableRow } from './table.js';

/** Most settings listed one by one in a paragraph; the rest are counted. */
const MAX_LISTED = 8;

function numberOf(row: TableRow, key: string): number | null {
  const value = row.values[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function textOf(row: TableRow, key: string): string {
  const value = row.values[key];
  return value === null || value === undefined ? '' : String(value);
}

function signedNats(value: number): string {
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}`;
}

function aboveOrBelow(value: number): string {
  return `${Math.abs(value).toFixed(1)} nats ${value >= 0 ? 'above' : 'below'}`;
}

function times(value: number): string {
  return `${formatSignificant(value, 3)}×`;
}

function upper(objective: string): string {
  return objective.toUpperCase();
}

/** Returns, of several rows for one paper cell, the one with the most completed runs (the first on ties). */
function bestRow(rows: TableRow[]): TableRow | undefined {
  return rows.reduce<TableRow | undefined>(
    (best, row) => (best === undefined || (numberOf(row, 'runs') ?? 0) > (numberOf(best, 'runs') ?? 0) ? row : best),
    undefined,
  );
}

function limited(sentences: string[], what: string): string[] {
  if (sentences.length <= MAX_LISTED) {
    return sentences;
  }
  return [...sentences.slice(0, MAX_LISTED), `${sentences.length - MAX_LISTED} more ${what} are in the CSV file.`];
}

/** Writes the Table 2 paragraph: NLL gaps to ML, absolute NLL differences, speed-ups and NLL rankings. */
export function describeTable2(table: ReportTable): string[] {
  const withData = table.rows.filter((row) => row.state !== 'missing');
  if (withData.length === 0) {
    return [`No records at the paper’s Table 2 setting yet: all ${table.rows.length} cells are missing.`];
  }
  const sentences: string[] = [];
  const settings = [...new Set(table.rows.map((row) => `${textOf(row, 'dataset')}|${textOf(row, 'architecture')}`))];
  for (const setting of settings) {
    const [dataset, architecture] = setting.split('|');
    const rows = table.rows.filter((row) => textOf(row, 'dataset') === dataset && textOf(row, 'architecture') === architecture);
    const byObjective = new Map<string, TableRow>();
    for (const objective of new Set(rows.map((row) => textOf(row, 'objective')))) {
      const chosen = bestRow(rows.filter((row) => textOf(row, 'objective') === objective && row.state !== 'missing'));
      if (chosen !== undefined) {
        byObjective.set(objective, chosen);
      }
    }
    const name = `${dataset} ${architecture.toUpperCase()}`;
    if (byObjective.size === 0) {
      continue;
    }
    const parts: string[] = [];
    for (const [objective, row] of byObjective) {
      const nll = numberOf(row, 'nll_nats');
      const paperNll = numberOf(row, 'paper_nll_nats');
      const gap = numberOf(row, 'nll_minus_ml');
      const paperGap = numberOf(row, 'paper_nll_minus_ml');
      if (objective !== 'ml' && gap !== null && paperGap !== null) {
        parts.push(`our ${upper(objective)} NLL is ${aboveOrBelow(gap)} our ML vs the paper’s ${signedNats(paperGap)}`);
      } else if (nll !== null && paperNll !== null) {
        const steps = numberOf(row, 'trained_steps');
        const after = steps === null ? '' : ` after ${steps} steps`;
        parts.push(`our ${upper(objective)} NLL${after} is ${nll.toFixed(1)} nats vs the paper’s ${paperNll.toFixed(1)} (${signedNats(nll - paperNll)})`);
      } else if (row.state === 'failed') {
        parts.push(`${upper(objective)} has no completed run (${textOf(row, 'status')})`);
      }
      const speedUp = numberOf(row, 'speedup_vs_ml');
      const paperSpeedUp = numberOf(row, 'paper_speedup_vs_ml');
      if (objective !== 'ml' && speedUp !== null && paperSpeedUp !== null) {
        parts.push(`${upper(objective)} iterates ${times(speedUp)} as fast as ML vs the paper’s ${times(paperSpeedUp)}`);
      }
    }
    if (parts.length > 0) {
      sentences.push(`${name}: ${parts.join('; ')}.`);
    }
    const ranked = [...byObjective.entries()].filter(([, row]) => numberOf(row, 'nll_nats') !== null);
    if (ranked.length >= 2) {
      const ours = [...ranked].sort((a, b) => numberOf(a[1], 'nll_nats')! - numberOf(b[1], 'nll_nats')!).map(([objective]) => upper(objective));
      const paper = [...ranked]
        .sort((a, b) => numberOf(a[1], 'paper_nll_nats')! - numberOf(b[1], 'paper_nll_nats')!)
        .map(([objective]) => upper(objective));
      const same = ours.join() === paper.join();
      sentences.push(
        `${name} ranking by NLL (best first): ours ${ours.join(' < ')}; the paper’s ${paper.join(' < ')}${same ? ' (the same order)' : ''}.`,
      );
    }
  }
  const missing = table.rows.filter((row) => row.state === 'missing').length;
  if (missing > 0) {
    sentences.push(`${missing} of the paper’s cells have no records yet.`);
  }
  return sentences;
}

/** Writes the Table 4 paragraph: the NLL drop from MaP and the spread change from EMA, ours beside the paper's. */
export function describeTable4(table: ReportTable): string[] {
  const withData = table.rows.filter((row) => numberOf(row, 'nll_nats') !== null);
  if (withData.length === 0) {
    return ['No ablation records with an NLL yet, so MaP and EMA cannot be compared with the paper.'];
  }
  const sentences: string[] = [];
  const rowsOf = (dataset: string, architecture: string, objective: string, ema: string, map: string): TableRow[] =>
    withData.filter(
      (row) =>
        textOf(row, 'dataset') === dataset &&
        textOf(row, 'architecture') === architecture &&
        textOf(row, 'objective') === objective &&
        textOf(row, 'ema') === ema &&
        textOf(row, 'map') === map,
    );
  // Rows of one scenario share a training budget, so a pair is taken from one scenario when one has both.
  const findPair = (dataset: string, architecture: string, objective: string, first: [string, string], second: [string, string]) => {
    const firstRows = rowsOf(dataset, architecture, objective, ...first);
    const secondRows = rowsOf(dataset, architecture, objective, ...second);
    const shared = firstRows.filter((row) => secondRows.some((other) => textOf(other, 'scenario') === textOf(row, 'scenario')));
    const firstRow = bestRow(shared.length > 0 ? shared : firstRows);
    const secondRow =
      firstRow === undefined ? undefined : bestRow(secondRows.filter((row) => shared.length === 0 || textOf(row, 'scenario') === textOf(firstRow, 'scenario')));
    return { firstRow, secondRow };
  };
  const paperValue = (architecture: string, objective: string, ema: boolean, map: boolean) =>
    PAPER_TABLE_4.find((cell) => cell.architecture === architecture && cell.objective === objective && cell.ema === ema && cell.matchAfterPreprocessing === map)?.nllNats;

  const combos = [...new Set(withData.map((row) => `${textOf(row, 'dataset')}|${textOf(row, 'architecture')}|${textOf(row, 'objective')}`))];
  for (const combo of combos) {
    const [dataset, architecture, objective] = combo.split('|');
    const name = `${dataset} ${architecture.toUpperCase()} ${upper(objective)}`;
    const { firstRow: withMap, secondRow: withoutMap } = findPair(dataset, architecture, objective, ['on', 'on'], ['on', 'off']);
    if (withMap !== undefined && withoutMap !== undefined) {
      const drop = numberOf(withoutMap, 'nll_nats')! - numberOf(withMap, 'nll_nats')!;
      const paperOn = paperValue(architecture, objective, true, true);
      const paperOff = paperValue(architecture, objective, true, false);
      const paperText =
        dataset === 'mnist' && paperOn !== undefined && paperOff !== undefined ? ` (paper: ${(paperOff.mean - paperOn.mean).toFixed(1)} nats)` : '';
      const scenarios = [...new Set([textOf(withMap, 'scenario'), textOf(withoutMap, 'scenario')])].join(' and ');
      sentences.push(`${name}: MaP ${drop >= 0 ? 'lowers' : 'raises'} our NLL by ${Math.abs(drop).toFixed(1)} nats in ${scenarios}${paperText}.`);
    }
    const { firstRow: emaOn, secondRow: emaOff } = findPair(dataset, architecture, objective, ['on', 'off'], ['off', 'off']);
    if (emaOn !== undefined && emaOff !== undefined) {
      const spreadOn = numberOf(emaOn, 'nll_nats_ci');
      const spreadOff = numberOf(emaOff, 'nll_nats_ci');
      const change = numberOf(emaOff, 'nll_nats')! - numberOf(emaOn, 'nll_nats')!;
      const paperOn = paperValue(architecture, objective, true, false);
      const paperOff = paperValue(architecture, objective, false, false);
      let text = `${name} without MaP: EMA ${change >= 0 ? 'lowers' : 'raises'} our NLL by ${Math.abs(change).toFixed(1)} nats`;
      if (dataset === 'mnist' && paperOn !== undefined && paperOff !== undefined) {
        text += ` (paper: ${(paperOff.mean - paperOn.mean).toFixed(1)})`;
      }
      if (spreadOn !== null && spreadOff !== null) {
        text += `, and its 95% half-width goes from ±${spreadOff.toFixed(1)} to ±${spreadOn.toFixed(1)}`;
        if (dataset === 'mnist' && paperOn?.halfWidth != null && paperOff?.halfWidth != null) {
          text += ` (paper: ±${paperOff.halfWidth.toFixed(1)} to ±${paperOn.halfWidth.toFixed(1)})`;
        }
      }
      sentences.push(`${text}.`);
    }
  }
  const withPaper = withData.filter((row) => numberOf(row, 'nll_diff_nats') !== null);
  if (withPaper.length > 0) {
    const differences = withPaper.map((row) => numberOf(row, 'nll_diff_nats')!);
    sentences.push(
      `Against the paper’s Table 4 cells, our NLL differs by ${signedNats(Math.min(...differences))} to ${signedNats(Math.max(...differences))} nats over ${withPaper.length} cell(s).`,
    );
  }
  if (sentences.length === 0) {
    sentences.push('Our ablation cells lack the on/off pairs needed to measure the effect of MaP or EMA.');
  }
  return sentences;
}

/** Writes the Table 1 paragraph: the paper's numbers are unavailable, so rank our objectives per data set. */
export function describeTable1(table: ReportTable): string[] {
  const withData = table.rows.filter((row) => numberOf(row, 'kl') !== null);
  const sentences = [
    'The paper’s Table 1 values were not available to us; it states that the score-matching objectives are on par with ML and SML on these densities.',
  ];
  if (withData.length === 0) {
    sentences.push('No toy records with KL or Fisher divergence yet.');
    return sentences;
  }
  for (const dataset of new Set(withData.map((row) => textOf(row, 'dataset')))) {
    const rows = withData.filter((row) => textOf(row, 'dataset') === dataset).sort((a, b) => numberOf(a, 'kl')! - numberOf(b, 'kl')!);
    const listed = rows.map((row) => `${upper(textOf(row, 'objective'))} ${formatSignificant(numberOf(row, 'kl')!, 4)}`);
    sentences.push(`${dataset}: KL from lowest to highest: ${listed.join(', ')}.`);
    const ml = rows.find((row) => textOf(row, 'objective') === 'ml');
    if (ml !== undefined) {
      const mlKl = numberOf(ml, 'kl')!;
      const gaps = rows
        .filter((row) => ['ssm', 'dsm', 'fdssm'].includes(textOf(row, 'objective')))
        .map((row) => `${upper(textOf(row, 'objective'))} ${numberOf(row, 'kl')! - mlKl >= 0 ? '+' : '−'}${formatSignificant(Math.abs(numberOf(row, 'kl')! - mlKl), 3)}`);
      if (gaps.length > 0) {
        sentences.push(`${dataset}: KL of the score-matching objectives minus ML: ${gaps.join(', ')} nats.`);
      }
    }
  }
  return sentences;
}

/** Writes the objective-table paragraph of one scenario: speed-ups over ML per setting and NLL differences from the paper. */
export function describeObjectiveTable(table: ReportTable): string[] {
  if (table.rows.length === 0) {
    return ['This scenario has no records.'];
  }
  const sentences: string[] = [];
  const settings = new Map<string, TableRow[]>();
  for (const row of table.rows) {
    const setting = ['dataset', 'architecture', 'variant', 'channels', 'dimension', 'layers', 'batch_size', 'map', 'ema', 'explicit_derivatives', 'measure']
      .map((key) => textOf(row, key))
      .join('|');
    settings.set(setting, [...(settings.get(setting) ?? []), row]);
  }
  const perSetting: string[] = [];
  for (const rows of settings.values()) {
    const speedUps = rows
      .filter((row) => numberOf(row, 'speedup_vs_ml') !== null && textOf(row, 'objective') !== 'ml')
      .sort((a, b) => objectiveRank(textOf(a, 'objective')) - objectiveRank(textOf(b, 'objective')));
    if (speedUps.length === 0) {
      continue;
    }
    const first = rows[0];
    const name = `${textOf(first, 'dataset')} ${textOf(first, 'architecture').toUpperCase()} D=${textOf(first, 'dimension')} L=${textOf(first, 'layers')} B=${textOf(first, 'batch_size')}`;
    const listed = speedUps.map((row) => {
      const paper = numberOf(row, 'paper_speedup_vs_ml');
      return `${upper(textOf(row, 'objective'))} ${times(numberOf(row, 'speedup_vs_ml')!)}${paper !== null ? ` (paper ${times(paper)})` : ''}`;
    });
    perSetting.push(`${name}: speed-up over ML ${listed.join(', ')}.`);
  }
  sentences.push(...limited(perSetting, 'settings'));
  const withPaper = table.rows.filter((row) => numberOf(row, 'nll_diff_nats') !== null);
  if (withPaper.length > 0) {
    const differences = withPaper.map((row) => numberOf(row, 'nll_diff_nats')!);
    sentences.push(
      `At the paper’s Table 2 settings our NLL differs from the published one by ${signedNats(Math.min(...differences))} to ${signedNats(Math.max(...differences))} nats (${withPaper.length} cell(s)).`,
    );
  }
  const failed = table.rows.filter((row) => row.state === 'failed' || row.state === 'partial');
  if (failed.length > 0) {
    sentences.push(
      `Cells with diverged or errored runs: ${failed.map((row) => `${textOf(row, 'dataset')}/${textOf(row, 'architecture')}/${textOf(row, 'objective')} D=${textOf(row, 'dimension')} (${textOf(row, 'status')})`).join('; ')}.`,
    );
  }
  if (sentences.length === 0) {
    sentences.push('No setting of this scenario has both an ML cell and another objective timed, and none matches a paper setting.');
  }
  return sentences;
}

/** Writes the runtime paragraph: our ms/iteration relative to the paper's Figure 2(a) values. */
export function describeRuntimeTable(table: ReportTable): string[] {
  const timed = table.rows.filter((row) => numberOf(row, 'median_ms') !== null);
  if (timed.length === 0) {
    return ['No timed cells yet.'];
  }
  const sentences: string[] = [];
  const compared = timed.filter((row) => numberOf(row, 'ms_ratio') !== null);
  if (compared.length === 0) {
    sentences.push('None of our timed cells is at a setting the paper’s Figure 2(a) shows (FC or CNN, C = 1 or 3, n = 16…40, default L).');
  }
  for (const objective of [...new Set(compared.map((row) => textOf(row, 'objective')))].sort((a, b) => objectiveRank(a) - objectiveRank(b))) {
    const ratios = compared.filter((row) => textOf(row, 'objective') === objective).map((row) => numberOf(row, 'ms_ratio')!);
    const low = Math.min(...ratios);
    const high = Math.max(...ratios);
    sentences.push(
      `${upper(objective)}: our ms/iteration is ${times(low)}${high !== low ? ` to ${times(high)}` : ''} the paper’s read-off Figure 2(a) value over ${ratios.length} setting(s) (different hardware and batch size, so only the trend is comparable).`,
    );
  }
  return sentences;
}

/** Writes the scaling paragraph: fitted exponents beside the stated cost and the paper's read-off slope. */
export function describeScalingTable(table: ReportTable): string[] {
  const ours = table.rows.filter((row) => textOf(row, 'source') === 'ours' && numberOf(row, 'exponent') !== null);
  if (ours.length === 0) {
    return ['No result set varies D or L over two or more timed cells, so no exponent of ours is fitted; the paper rows fit its Figure 2(a) values.'];
  }
  const paper = table.rows.filter((row) => textOf(row, 'source') === 'paper');
  const sentences = ours.map((row) => {
    const interval =
      numberOf(row, 'exponent_ci_low') !== null ? ` [${numberOf(row, 'exponent_ci_low')!.toFixed(2)}, ${numberOf(row, 'exponent_ci_high')!.toFixed(2)}]` : '';
    const variable = textOf(row, 'variable');
    const channels = textOf(row, 'channels');
    const paperRow = paper.find(
      (candidate) =>
        variable === 'D' &&
        textOf(candidate, 'architecture') === textOf(row, 'architecture') &&
        textOf(candidate, 'channels') === channels &&
        textOf(candidate, 'objective') === textOf(row, 'objective'),
    );
    const paperText = paperRow !== undefined && numberOf(paperRow, 'exponent') !== null ? `; the paper’s Figure 2(a) gives ${numberOf(paperRow, 'exponent')!.toFixed(2)}` : '';
    const stated = numberOf(row, 'stated_exponent');
    return (
      `${textOf(row, 'dataset')} ${textOf(row, 'architecture').toUpperCase()}${channels !== '' ? ` C=${channels}` : ''} ${textOf(row, 'fixed')} ${upper(textOf(row, 'objective'))}: ` +
      `runtime ∝ ${variable}^${numberOf(row, 'exponent')!.toFixed(2)}${interval} over ${textOf(row, 'range')}` +
      `${stated !== null ? `, stated ${textOf(row, 'stated_cost')} (exponent ${stated})` : ''}${paperText}.`
    );
  });
  return limited(sentences, 'fits');
}

/** Writes the speed-up paragraph: our speed-up over ML against the paper's at the same D, per objective. */
export function describeSpeedUpTable(table: ReportTable): string[] {
  const compared = table.rows.filter((row) => numberOf(row, 'speedup_vs_ml') !== null && numberOf(row, 'paper_speedup_vs_ml') !== null);
  const all = table.rows.filter((row) => numberOf(row, 'speedup_vs_ml') !== null);
  if (all.length === 0) {
    return ['No setting has an ML cell and another objective both timed.'];
  }
  const sentences: string[] = [];
  for (const objective of [...new Set(all.map((row) => textOf(row, 'objective')))].sort((a, b) => objectiveRank(a) - objectiveRank(b))) {
    const rows = all.filter((row) => textOf(row, 'objective') === objective);
    const values = rows.map((row) => numberOf(row, 'speedup_vs_ml')!);
    let text = `${upper(objective)} is ${times(Math.min(...values))}${values.length > 1 ? ` to ${times(Math.max(...values))}` : ''} as fast as ML over ${values.length} setting(s)`;
    const withPaper = compared.filter((row) => textOf(row, 'objective') === objective);
    if (withPaper.length > 0) {
      const paperValues = withPaper.map((row) => numberOf(row, 'paper_speedup_vs_ml')!);
      text += `; at the ${withPaper.length} D value(s) the paper’s Figure 2(a) shows, ours is ${times(Math.min(...withPaper.map((row) => numberOf(row, 'speedup_vs_ml')!)))} to ${times(Math.max(...withPaper.map((row) => numberOf(row, 'speedup_vs_ml')!)))} vs the paper’s ${times(Math.min(...paperValues))} to ${times(Math.max(...paperValues))}`;
    }
    sentences.push(`${text}.`);
  }
  return sentences;
}
