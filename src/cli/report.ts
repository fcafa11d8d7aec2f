/**
 * `npm run report`: writes the tables, figures and page of the result records, or compares two
 * result folders.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

import { writeReports, type WriteReportsOptions } from '../report/index.js';
import { readResults } from '../runner/results.js';

const HELP = `Usage: npm run report -- [options]

Turns the result records under a results folder into the report: CSV tables under <out>/tables,
figures (Vega-Lite spec, SVG, PNG) under <out>/figures, <out>/index.html and <out>/README.md.

Options:
  --results <dir>      Folder of result records, searched recursively (default: results/).
  --out <dir>          Folder the report is written to (default: reports/).
  --scenario <name>    Report only the records of this scenario name.
  --title <text>       Heading of index.html and README.md (default: "ebflow-bench report"), for
                       example the machine and date of a reference report.
  --compare <a> <b>    Compare two result folders instead: writes <out>/comparison.{csv,md,html}
                       with B ÷ A ms ratios per matching cell; scenarios whose hashes differ are
                       reported as not comparable.
  --help               Print this text.
`;

/** Parsed command line, or the text to print for --help. */
export type ReportArguments = { help: true } | { help: false; options: WriteReportsOptions };

/** Parses the report command's arguments; throws with the offending argument and the fix. */
export function parseReportArguments(argv: readonly string[]): ReportArguments {
  let resultsDir = 'results';
  let reportsDir = 'reports';
  let scenario: string | undefined;
  let compare: [string, string] | undefined;
  let title: string | undefined;

  const valueAfter = (index: number, name: string): string => {
    const value = argv[index + 1];
    if (value === undefined || value.startsWith('--')) {
      throw new Error(`report: option ${name} needs a value; see --help.`);
    }
    return value;
  };

  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    switch (argument) {
      case '--help':
      case '-h':
        return { help: true };
      case '--results':
        resultsDir = valueAfter(index, argument);
        index += 1;
        break;
      case '--out':
        reportsDir = valueAfter(index, argument);
        index += 1;
        break;
      case '--title':
        title = valueAfter(index, argument);
        index += 1;
        break;
      case '--scenario':
        scenario = valueAfter(index, argument);
        index += 1;
        break;
      case '--compare': {
        const first = valueAfter(index, argument);
        const second = valueAfter(index + 1, argument);
        compare = [first, second];
        index += 2;
        break;
      }
      default:
        throw new Error(`report: unknown argument "${argument}"; allowed: --results, --out, --scenario, --title, --compare, --help.`);
    }
  }
  if (compare !== undefined && scenario !== undefined) {
    throw new Error('report: --compare and --scenario cannot be combined; a comparison covers every scenario of both folders.');
  }
  return { help: false, options: { resultsDir, reportsDir, scenario, compare, ...(title === undefined ? {} : { title }) } };
}

async function main(): Promise<void> {
  const parsed = parseReportArguments(process.argv.slice(2));
  if (parsed.help) {
    process.stdout.write(HELP);
    return;
  }
  for (const folder of parsed.options.compare ?? [parsed.options.resultsDir]) {
    if (!existsSync(folder)) {
      throw new Error(`report: the results folder ${folder} does not exist; run \`npm run bench\` first or pass an existing folder with --results`);
    }
    if (readResults(folder).length === 0) {
      throw new Error(
        `report: the results folder ${folder} contains no result records; run \`npm run bench\` first or pass a folder ` +
          'with records (for example results/, whose scenario subfolders hold <cell>.json files) with --results',
      );
    }
  }
  const result = await writeReports(parsed.options);
  for (const skipped of result.skipped) {
    process.stderr.write(`warning: skipped ${skipped.file}: ${skipped.reason}\n`);
  }
  for (const entry of result.notComparable) {
    process.stderr.write(
      `warning: scenario ${entry.scenarioName} has records of ${entry.hashes.length} scenario hashes (${entry.hashes.map((hash) => hash.slice(0, 12)).join(', ')}); they are reported separately as not comparable\n`,
    );
  }
  process.stdout.write(`Wrote ${result.files.length} files:\n${result.files.map((file) => `  ${file}`).join('\n')}\n`);
}

// Run only when executed as a program, so tests can import the argument parser.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  });
}
