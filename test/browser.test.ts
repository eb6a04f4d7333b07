// A real browser (Debian's Chromium, driven by playwright-core) loads an MDX page through the
// origin, runs the island's script from /_astro/ and clicks it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import type { RunningOrigin } from '../src/standalone.ts';
import { startTestOrigin } from './helpers/origin.ts';

const CHROMIUM = '/usr/bin/chromium';
let origin: RunningOrigin;
let browser: Browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: run bash scripts/install-test-deps.sh`);
  origin = await startTestOrigin();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
after(async () => {
  await browser?.close();
  await origin?.close();
});

test('the island on an MDX page hydrates from /_astro/ and counts clicks', async () => {
  const page = await browser.newPage();
  const scripts: string[] = [];
  const failures: string[] = [];
  page.on('response', (res) => {
    if (res.url().includes('/_astro/') && res.url().endsWith('.js')) scripts.push(`${res.status()} ${res.url()}`);
    if (res.status() >= 400) failures.push(`${res.status()} ${res.url()}`);
  });
  page.on('pageerror', (err) => failures.push(err.message));
  await page.goto(`${origin.url}/docs/interactive-islands`, { waitUntil: 'load' });
  assert.match(await page.title(), /Origin Docs|island/i);
  assert.ok(scripts.length > 0 && scripts.every((s) => s.startsWith('200 ')), `island script: ${scripts.join(', ')}`);
  const button = page.locator('origin-counter [data-counter-button]').first();
  const value = page.locator('origin-counter [data-counter-value]').first();
  assert.equal(await value.textContent(), '0');
  await button.click();
  await button.click();
  await button.click();
  await page.waitForFunction(
    () => document.querySelector('origin-counter [data-counter-value]')?.textContent === '3',
    undefined,
    { timeout: 5000 },
  );
  assert.deepEqual(failures, []);
});
