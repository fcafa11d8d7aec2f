/**
 * Opens the generated report page in headless Chromium from disk and checks that it loads without
 * errors and shows every figure. Skips, with the reason, when /usr/bin/chromium is not installed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { chromium } from 'playwright-core';

import { writeReports } from '../../src/report/index.js';
import { FIXTURE_RESULTS } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';

describe('report page in a browser', () => {
  it('loads from disk and shows every figure', async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is not installed; install Debian's chromium package to run the browser test`);
      return;
    }
    const out = await mkdtemp(path.join(os.tmpdir(), 'report-browser-'));
    const profile = await mkdtemp(path.join(os.tmpdir(), 'report-browser-profile-'));
    const result = await writeReports({ resultsDir: FIXTURE_RESULTS, reportsDir: out });
    const figureCount = result.files.filter((file) => file.endsWith('.svg')).length;
    assert.equal(figureCount, 6);

    // Playwright passes the fresh profile folder to Chromium as --user-data-dir.
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') {
          problems.push(`console error: ${message.text()}`);
        }
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('request', (request) => requests.push(request.url()));

      await page.goto(pathToFileURL(path.join(out, 'index.html')).href, { waitUntil: 'load' });

      const sizes = await page.$$eval('figure svg', (elements) =>
        elements.map((element) => {
          const box = element.getBoundingClientRect();
          return { width: box.width, height: box.height };
        }),
      );
      assert.equal(sizes.length, figureCount, `expected ${figureCount} figure SVGs, found ${sizes.length}`);
      for (const [index, size] of sizes.entries()) {
        assert.ok(size.width > 0, `figure ${index} has width ${size.width}`);
        assert.ok(size.height > 0, `figure ${index} has height ${size.height}`);
      }
      const failedRows = await page.$$eval('tr[data-state="failed"]', (rows) => rows.length);
      assert.ok(failedRows > 0, 'no row is marked failed');
      assert.deepEqual(problems, []);
      assert.deepEqual(
        requests.filter((url) => !url.startsWith('file:') && !url.startsWith('data:')),
        [],
        'the page requested something other than local files',
      );
    } finally {
      await browser.close();
      await rm(out, { recursive: true, force: true });
      await rm(profile, { recursive: true, force: true });
    }
  });
});
