/**
 * The report page (index.html: self-contained, inline SVG and CSS, no scripts) and its Markdown
 * twin (README.md), both built from the same tables, figures and environment summary.
 */
import { readFileSync } from 'node:fs';

import type { EnvironmentInfo } from '../runner/record.js';
import { scenarioPath, shippedScenarioNames } from '../scenarios/catalog.js';
import { describeBlas } from '../tensor/native-blas.js';
import type { KernelThreadStatus } from '../tensor/threads/pool.js';
import type { FigureDefinition, OmittedFigure } from './figures.js';
import { PAPER_CITATION } from './paper-results.js';
import type { LoadedResults, ResultSet } from './records.js';
import { formatCell, stateMarker, tableToMarkdown, type ReportTable, type RowState } from './table.js';

/** A figure after rendering: its definition, the inline SVG and the files written (relative to the report folder). */
export interface RenderedFigure {
  definition: FigureDefinition;
  svg: string;
  specFile: string;
  svgFile: string;
  pngFile: string;
}

export interface PageInput {
  /** Heading of the page and README. */
  title: string;
  generatedAt: string;
  /** The command that regenerates this report. */
  reportCommand: string;
  loaded: LoadedResults;
  sets: ResultSet[];
  labelOf: (set: ResultSet) => string;
  tables: ReportTable[];
  figures: RenderedFigure[];
  omitted: OmittedFigure[];
}

/** Returns the command that reruns a scenario file's benchmark. */
export function benchCommand(scenarioFile: string): string {
  // NOTE: assumes `npm run bench` takes the scenario file as its first argument.
  return `npm run bench -- ${scenarioFile}`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A machine and backend as the records describe them, with how many records ran there. */
interface EnvironmentGroup {
  environment: EnvironmentInfo;
  records: number;
}

/** Groups a set's records by machine, backend and code revision. */
export function environmentsOf(set: ResultSet): EnvironmentGroup[] {
  const groups = new Map<string, EnvironmentGroup>();
  for (const run of set.records) {
    const environment = run.record.environment;
    if (environment === undefined || environment === null) {
      continue;
    }
    const key = JSON.stringify([
      environment.backend,
      environment.blas === undefined ? 'not recorded' : describeBlas(environment.blas),
      describeKernelThreads(environment.kernelThreads),
      describeKernelThreads(environment.lapackThreads),
      environment.cpuModel,
      environment.cpuCount,
      environment.platform,
      environment.hostname,
      environment.nodeVersion,
      environment.codeRevision,
    ]);
    const group = groups.get(key) ?? { environment, records: 0 };
    group.records += 1;
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** Returns "2 (this thread and 1 worker thread)" for a record's kernel or LAPACK threads, or "not recorded". */
function describeKernelThreads(status: { threads: number; reason: string } | undefined): string {
  return status === undefined ? 'not recorded' : `${status.threads} (${status.reason})`;
}

function environmentLines(group: EnvironmentGroup): Array<[string, string]> {
  const environment = group.environment;
  const attempts = (environment.backendAttempts ?? [])
    .map((attempt) => (attempt.error === undefined ? attempt.name : `${attempt.name} (failed: ${attempt.error})`))
    .join(' → ');
  const packages = Object.entries(environment.packages ?? {})
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return [
    ['records', String(group.records)],
    ['backend', environment.backend],
    ['backends tried', attempts || 'not recorded'],
    ['BLAS', environment.blas === undefined ? 'not recorded' : describeBlas(environment.blas)],
    ['kernel threads', describeKernelThreads(environment.kernelThreads)],
    ['LAPACK threads', describeKernelThreads(environment.lapackThreads)],
    ['CPU', `${environment.cpuModel} × ${environment.cpuCount}`],
    ['platform', environment.platform],
    ['host', environment.hostname],
    ['Node.js', environment.nodeVersion],
    ['code revision', environment.codeRevision],
    ['packages', packages || 'not recorded'],
  ];
}

function outcomeSummary(set: ResultSet): string {
  const counts = new Map<string, number>();
  for (const run of set.records) {
    counts.set(run.record.outcome.status, (counts.get(run.record.outcome.status) ?? 0) + 1);
  }
  return [...counts.entries()].map(([status, count]) => `${count} ${status}`).join(', ');
}

const ROW_CLASSES: Record<RowState, string> = {
  ok: '',
  partial: 'state-partial',
  failed: 'state-failed',
  skipped: 'state-skipped',
  missing: 'state-missing',
};

const STYLE = `
body { font-family: "DejaVu Sans", Verdana, sans-serif; margin: 1.5rem auto; max-width: 82rem; padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05rem; }
nav ul { columns: 2; } code, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 0.9em; }
pre { background: #f4f4f4; padding: 0.6rem; overflow-x: auto; }
.scroll { overflow-x: auto; border: 1px solid #ddd; margin: 0.5rem 0; }
table { border-collapse: collapse; font-size: 0.78rem; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.4rem; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.text { text-align: left; }
td.missing { color: #888; font-style: italic; }
tr.state-missing td { background: #fafafa; }
tr.state-failed td { background: #fde2e1; }
tr.state-partial td { background: #fff3d6; }
tr.state-skipped td { background: #eef1f7; }
.marker { font-weight: bold; color: #b00020; }
.notes { font-size: 0.85rem; color: #444; }
.agreement { background: #eef6ee; padding: 0.5rem 0.8rem; border-left: 4px solid #4a8f4a; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.9rem; margin-top: 0.4rem; }
.warning { background: #fff3d6; border-left: 4px solid #d19a00; padding: 0.5rem 0.8rem; }
dl.env { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; font-size: 0.85rem; }
dl.env dt { font-weight: bold; } dl.env dd { margin: 0; }
`;

function htmlTable(table: ReportTable): string {
  const header = table.columns.map((column) => `<th>${escapeHtml(column.label)}</th>`).join('');
  const body = table.rows
    .map((row) => {
      const cells = table.columns
        .map((column, index) => {
          const value = row.values[column.key];
          const text = formatCell(row, column);
          const classes = [column.format === 'text' ? 'text' : '', value === null || value === undefined ? 'missing' : ''].filter(Boolean).join(' ');
          const marker = index === 0 && row.state !== 'ok' ? `<span class="marker">${escapeHtml(stateMarker(row.state))}</span>` : '';
          return `<td${classes ? ` class="${classes}"` : ''}>${escapeHtml(text)}${marker}</td>`;
        })
        .join('');
      const rowClass = ROW_CLASSES[row.state];
      return `<tr${rowClass ? ` class="${rowClass}" data-state="${row.state}"` : ' data-state="ok"'}>${cells}</tr>`;
    })
    .join('\n');
  return `<div class="scroll"><table id="table-${escapeHtml(table.id)}"><thead><tr>${header}</tr></thead>\n<tbody>\n${body}\n</tbody></table></div>`;
}

function htmlList(items: string[], className = ''): string {
  if (items.length === 0) {
    return '';
  }
  return `<ul${className ? ` class="${className}"` : ''}>${items.map((item) => `<li>${escapeHtml(item)}</li>`).join('')}</ul>`;
}

function setsSectionHtml(input: PageInput): string {
  const { loaded, sets } = input;
  const parts: string[] = ['<h2 id="result-sets">Result sets</h2>'];
  if (sets.length === 0) {
    parts.push(`<p class="warning">No result records were found under <code>${escapeHtml(loaded.resultsDir)}</code>. Every table below shows the paper’s cells as missing.</p>`);
  } else {
    const rows = sets
      .map(
        (set) =>
          `<tr><td class="text">${escapeHtml(input.labelOf(set))}</td><td class="text"><code>${escapeHtml(set.scenarioFile)}</code></td>` +
          `<td class="text"><code>${escapeHtml(set.scenarioHash)}</code></td><td>${set.records.length}</td><td class="text">${escapeHtml(outcomeSummary(set))}</td>` +
          `<td class="text">${escapeHtml(set.description ?? '')}</td></tr>`,
      )
      .join('\n');
    parts.push(
      `<div class="scroll"><table><thead><tr><th>scenario</th><th>file</th><th>hash</th><th>records</th><th>outcomes</th><th>description</th></tr></thead><tbody>${rows}</tbody></table></div>`,
    );
  }
  for (const entry of loaded.notComparable) {
    parts.push(
      `<p class="warning">Scenario <strong>${escapeHtml(entry.scenarioName)}</strong> has records of ${entry.hashes.length} different scenario hashes (${entry.hashes.map((hash) => escapeHtml(hash.slice(0, 12))).join(', ')}). They ran different definitions and are not comparable, so each appears as its own result set, labelled with its hash.</p>`,
    );
  }
  if (loaded.skipped.length > 0) {
    parts.push(`<h3>Skipped files (${loaded.skipped.length})</h3>`);
    parts.push(htmlList(loaded.skipped.map((entry) => `${entry.file}: ${entry.reason}`), 'notes'));
  }
  return parts.join('\n');
}

function environmentSectionHtml(input: PageInput): string {
  const parts: string[] = ['<h2 id="environment">Machine and backend</h2>'];
  if (input.sets.length === 0) {
    parts.push('<p>No records, so no machine to report.</p>');
  }
  for (const set of input.sets) {
    const groups = environmentsOf(set);
    parts.push(`<h3>${escapeHtml(input.labelOf(set))}</h3>`);
    if (groups.length > 1) {
      parts.push(`<p class="warning">The records of this set ran in ${groups.length} different environments; their numbers are pooled per cell.</p>`);
    }
    for (const group of groups) {
      parts.push(
        `<dl class="env">${environmentLines(group)
          .map(([name, value]) => `<dt>${escapeHtml(name)}</dt><dd>${escapeHtml(value)}</dd>`)
          .join('')}</dl>`,
      );
    }
  }
  return parts.join('\n');
}

/** A shipped scenario with no records in the report, with its estimated duration. */
interface AbsentScenario {
  name: string;
  /** Wall-clock minutes on a 2-core machine, from the scenario's estimatedMinutes, or null. */
  estimatedMinutes: number | null;
}

/** Lists the scenarios in benchmarks/ that have no result set here, longest first. */
function absentScenarios(input: PageInput): AbsentScenario[] {
  const present = new Set(input.sets.map((set) => set.scenarioName));
  const absent = shippedScenarioNames()
    .filter((name) => !present.has(name))
    .map((name) => {
      let estimatedMinutes: number | null = null;
      try {
        const document = JSON.parse(readFileSync(scenarioPath(name), 'utf8')) as { estimatedMinutes?: unknown };
        if (typeof document.estimatedMinutes === 'number') estimatedMinutes = document.estimatedMinutes;
      } catch {
        // An unreadable scenario is listed without an estimate; `npm run bench -- --list` names its problem.
      }
      return { name, estimatedMinutes };
    });
  return absent.sort((a, b) => (b.estimatedMinutes ?? Infinity) - (a.estimatedMinutes ?? Infinity) || a.name.localeCompare(b.name));
}

/** Describes an absent scenario; `markdown` puts the command in backticks, the page gets plain text. */
function describeAbsent(scenario: AbsentScenario, markdown = true): string {
  const duration = scenario.estimatedMinutes === null ? 'no estimated duration' : `about ${formatMinutes(scenario.estimatedMinutes)} on a 2-core machine (estimate)`;
  const command = `npm run bench -- ${scenario.name}`;
  return `${scenario.name}: ${duration}; run ${markdown ? `\`${command}\`` : command}`;
}

function formatMinutes(minutes: number): string {
  if (minutes < 90) return `${Math.round(minutes)} min`;
  return `${(minutes / 60).toFixed(1)} h`;
}

function commandsFor(input: PageInput): string[] {
  const scenarioFiles = [...new Set(input.sets.map((set) => set.scenarioFile).filter((file) => file !== ''))];
  return [...scenarioFiles.map(benchCommand), input.reportCommand];
}

/** Builds the self-contained report page. */
export function renderHtml(input: PageInput): string {
  const contents: string[] = [
    '<li><a href="#result-sets">Result sets</a></li>',
    '<li><a href="#environment">Machine and backend</a></li>',
    ...input.tables.map((table) => `<li><a href="#${escapeHtml(table.id)}">${escapeHtml(table.title)}</a></li>`),
    ...input.figures.map((figure) => `<li><a href="#figure-${escapeHtml(figure.definition.id)}">${escapeHtml(figure.definition.title)}</a></li>`),
    '<li><a href="#regenerate">Regenerate</a></li>',
  ];

  const tableSections = input.tables.map((table) =>
    [
      `<section id="${escapeHtml(table.id)}">`,
      `<h2>${escapeHtml(table.title)}</h2>`,
      `<p>${escapeHtml(table.description)}</p>`,
      table.agreement.length > 0 ? `<div class="agreement"><strong>Against the paper:</strong> ${escapeHtml(table.agreement.join(' '))}</div>` : '',
      htmlTable(table),
      htmlList(table.notes, 'notes'),
      `<p class="notes">CSV: <a href="tables/${escapeHtml(table.file)}">tables/${escapeHtml(table.file)}</a></p>`,
      '</section>',
    ].join('\n'),
  );

  const figureSections = input.figures.map((figure) =>
    [
      `<section id="figure-${escapeHtml(figure.definition.id)}">`,
      `<h2>${escapeHtml(figure.definition.title)}</h2>`,
      `<figure data-figure="${escapeHtml(figure.definition.id)}">${figure.svg}`,
      `<figcaption>${escapeHtml(figure.definition.caption)}</figcaption></figure>`,
      htmlList(figure.definition.notes, 'notes'),
      `<p class="notes">Files: <a href="${escapeHtml(figure.specFile)}">${escapeHtml(figure.specFile)}</a> (Vega-Lite), ` +
        `<a href="${escapeHtml(figure.svgFile)}">${escapeHtml(figure.svgFile)}</a>, <a href="${escapeHtml(figure.pngFile)}">${escapeHtml(figure.pngFile)}</a></p>`,
      '</section>',
    ].join('\n'),
  );

  const omitted =
    input.omitted.length > 0
      ? `<h2 id="omitted">Figures not drawn</h2>${htmlList(input.omitted.map((figure) => `${figure.title}: ${figure.reason}.`))}`
      : '';

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(input.title)}</h1>
<p>Generated ${escapeHtml(input.generatedAt)} from <code>${escapeHtml(input.loaded.resultsDir)}</code>: ${input.sets.length} result set(s), ${input.sets.reduce((sum, set) => sum + set.records.length, 0)} record(s). Published numbers: ${escapeHtml(PAPER_CITATION)}.</p>
<p class="notes">Row markers: <span class="marker">⚠ partial</span> some runs diverged or errored; <span class="marker">✗ failed</span> no run completed; “missing” means no record, never zero; “—” means not applicable, no published value, or a single run without an interval.</p>
<nav><h2>Contents</h2><ul>${contents.join('')}</ul></nav>
${setsSectionHtml(input)}
${environmentSectionHtml(input)}
${tableSections.join('\n')}
${figureSections.join('\n')}
${omitted}
${absentSectionHtml(input)}
<h2 id="regenerate">Regenerate</h2>
<p>The benchmarks, then this report:</p>
<pre>${commandsFor(input).map(escapeHtml).join('\n')}</pre>
</body>
</html>
`;
}

function absentSectionHtml(input: PageInput): string {
  const absent = absentScenarios(input);
  if (absent.length === 0) return '';
  const lines = absent.map((scenario) => describeAbsent(scenario, false));
  return `<h2 id="absent">Scenarios without results here</h2>\n<p>Shipped scenarios with no records in this report:</p>${htmlList(lines)}`;
}

/** Builds README.md: the same content as the page, with figures linked as SVG files. */
export function renderMarkdown(input: PageInput): string {
  const lines: string[] = [
    `# ${input.title}`,
    '',
    `Generated ${input.generatedAt} from \`${input.loaded.resultsDir}\`: ${input.sets.length} result set(s), ${input.sets.reduce((sum, set) => sum + set.records.length, 0)} record(s).`,
    `Published numbers: ${PAPER_CITATION}. The self-contained page is [index.html](index.html).`,
    '',
    'Row markers: “⚠ partial” means some runs diverged or errored, “✗ failed” means no run completed, and “missing” means no record (never zero). “—” means not applicable, no published value, or a single run without an interval.',
    '',
    '## Result sets',
    '',
  ];
  if (input.sets.length === 0) {
    lines.push(`No result records were found under \`${input.loaded.resultsDir}\`. Every table shows the paper’s cells as missing.`, '');
  } else {
    lines.push('| scenario | file | hash | records | outcomes |', '|---|---|---|---|---|');
    for (const set of input.sets) {
      lines.push(`| ${input.labelOf(set)} | \`${set.scenarioFile}\` | \`${set.scenarioHash.slice(0, 12)}\` | ${set.records.length} | ${outcomeSummary(set)} |`);
    }
    lines.push('');
  }
  for (const entry of input.loaded.notComparable) {
    lines.push(`**Not comparable:** scenario ${entry.scenarioName} has records of ${entry.hashes.length} scenario hashes (${entry.hashes.map((hash) => hash.slice(0, 12)).join(', ')}); each is its own result set.`, '');
  }
  if (input.loaded.skipped.length > 0) {
    lines.push(`Skipped files (${input.loaded.skipped.length}):`, '', ...input.loaded.skipped.map((entry) => `- \`${entry.file}\`: ${entry.reason}`), '');
  }

  lines.push('## Machine and backend', '');
  for (const set of input.sets) {
    lines.push(`### ${input.labelOf(set)}`, '');
    for (const group of environmentsOf(set)) {
      lines.push(...environmentLines(group).map(([name, value]) => `- ${name}: ${value}`), '');
    }
  }

  for (const table of input.tables) {
    lines.push(`## ${table.title}`, '', table.description, '');
    if (table.agreement.length > 0) {
      lines.push(`**Against the paper:** ${table.agreement.join(' ')}`, '');
    }
    lines.push(tableToMarkdown(table), '');
    lines.push(...table.notes.map((note) => `- ${note}`), '', `CSV: [tables/${table.file}](tables/${table.file})`, '');
  }

  for (const figure of input.figures) {
    lines.push(`## ${figure.definition.title}`, '', `![${figure.definition.title}](${figure.svgFile})`, '', figure.definition.caption, '');
    lines.push(...figure.definition.notes.map((note) => `- ${note}`));
    lines.push('', `Files: [${figure.specFile}](${figure.specFile}), [${figure.svgFile}](${figure.svgFile}), [${figure.pngFile}](${figure.pngFile})`, '');
  }
  if (input.omitted.length > 0) {
    lines.push('## Figures not drawn', '', ...input.omitted.map((figure) => `- ${figure.title}: ${figure.reason}.`), '');
  }

  const absent = absentScenarios(input);
  if (absent.length > 0) {
    lines.push('## Scenarios without results here', '', 'Shipped scenarios with no records in this report:', '', ...absent.map((scenario) => `- ${describeAbsent(scenario)}`), '');
  }

  lines.push('## Regenerate', '', '```sh', ...commandsFor(input), '```', '');
  return lines.join('\n');
}

/** Builds the self-contained comparison page of two result folders. */
export function renderComparisonHtml(table: ReportTable, generatedAt: string, command: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ebflow-bench comparison</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(table.title)}</h1>
<p>Generated ${escapeHtml(generatedAt)}. ${escapeHtml(table.description)}</p>
${table.agreement.length > 0 ? `<div class="agreement">${escapeHtml(table.agreement.join(' '))}</div>` : ''}
${htmlTable(table)}
${htmlList(table.notes, 'notes')}
<p class="notes">CSV: <a href="${escapeHtml(table.file)}">${escapeHtml(table.file)}</a></p>
<h2>Regenerate</h2>
<pre>${escapeHtml(command)}</pre>
</body>
</html>
`;
}

/** Builds the Markdown version of the comparison. */
export function renderComparisonMarkdown(table: ReportTable, generatedAt: string, command: string): string {
  return [
    `# ${table.title}`,
    '',
    `Generated ${generatedAt}. ${table.description}`,
    '',
    table.agreement.join(' '),
    '',
    tableToMarkdown(table),
    '',
    ...table.notes.map((note) => `- ${note}`),
    '',
    'Regenerate:',
    '',
    '```sh',
    command,
    '```',
    '',
  ].join('\n');
}
