// The CSV upload journey (called from journeys.mjs): an operator chooses a file and the `hr`
// mapping, previews it (htmx swaps the dry run into the page, the file stays chosen), imports
// it, watches the progress region reach done (htmx polling the intake job) and downloads the
// per-row report. Selectors are roles and labels.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const MAPPING = `
[attributes]
externalId = { from = "Employee ID" }
userName = { from = "Email", transform = ["trim", "lowercase"] }
"name.givenName" = { from = "First" }
"name.familyName" = { from = "Last" }
displayName = { concat = ["First", "Last"] }
'emails[type eq "work"].value' = { from = "Email", transform = ["trim", "lowercase"] }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = { from = "Department" }
`;

const CSV = `Employee ID,First,Last,Email,Department
E-2001,Dorothy,Vaughan,dorothy.vaughan@corp.example,Engineering
E-2002,Annie,Easley,annie.easley@corp.example,Research
E-2003,Christine,Darden,christine.darden@corp.example,Flight
`;

// The server configuration's part for uploads: the mapping file, written into `workDir`.
export function uploadConfig(workDir) {
  const mapping = path.join(workDir, 'hr-mapping.toml');
  writeFileSync(mapping, MAPPING);
  return `[inbound.mappings]\nhr = ${JSON.stringify(mapping)}\n`;
}

// The viewer's refusals of the upload actions (multipart posts with the session's token).
export async function uploadRefusals(page, consoleBase, csrf) {
  for (const [action, what] of [['/console/upload/preview', 'preview CSV uploads'], ['/console/upload', 'upload CSV files']]) {
    const res = await page.request.post(`${consoleBase}${action}`, {
      multipart: { csrf, mapping: 'hr', file: { name: 'staff.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) } },
    });
    assert.equal(res.status(), 403, action);
    assert.match(await res.text(), new RegExp(`the viewer role may not ${what}`), action);
  }
}

export async function uploadJourney({ journey, browser, signIn, consoleBase, shot, scim, workDir }) {
  await journey('an operator uploads a CSV file: preview, import, progress to done, report', async () => {
    const file = path.join(workDir, 'staff.csv');
    writeFileSync(file, CSV);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await signIn(context, 'otto');
    const violations = [];
    page.on('console', (msg) => { if (/Content Security Policy|Refused to/i.test(msg.text())) violations.push(msg.text()); });
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Upload' }).click();
    await page.getByRole('heading', { name: 'Upload a CSV file' }).waitFor();
    await page.getByLabel('CSV file').setInputFiles(file);
    await page.getByLabel('Mapping').selectOption('hr');

    await page.evaluate(() => { window.notReloaded = true; });
    await page.getByRole('button', { name: 'Preview (dry run)' }).click();
    await page.getByText('Dry run of 3 rows: nothing was written.').waitFor();
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the preview was swapped in, not a new page');
    const preview = await page.locator('section#preview').innerText();
    assert.match(preview, /Every row passes/);
    assert.equal((preview.match(/\bcreated\b/g) || []).length >= 3, true, preview);
    assert.equal((await scim('GET', 'Users?filter=externalId%20eq%20%22E-2001%22')).totalResults, 0, 'the preview wrote nothing');
    await shot(page, 'upload');

    // The file is still chosen: import it.
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByRole('heading', { name: 'CSV upload' }).waitFor();
    // htmx polls the job until the intake worker is done.
    await page.getByText('Done: 3 of 3 rows.').waitFor({ timeout: 30_000 });
    assert.match(await page.locator('#progress').innerText(), /Created\s*3/);
    await shot(page, 'upload-report');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download the report (CSV)' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^upload-.*-report\.csv$/);
    const report = readFileSync(await download.path(), 'utf8');
    assert.equal(report, 'row,employeeId,outcome,column,error\n2,E-2001,created,,\n3,E-2002,created,,\n4,E-2003,created,,\n');

    const dorothy = await scim('GET', 'Users?filter=externalId%20eq%20%22E-2001%22');
    assert.equal(dorothy.totalResults, 1);
    assert.equal(dorothy.Resources[0].userName, 'dorothy.vaughan@corp.example');
    assert.deepEqual(violations, []);
    await context.close();
  });

  await journey('the upload page is readable at phone width', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await signIn(context, 'otto');
    await page.goto(`${consoleBase}/console/upload`);
    await page.getByRole('heading', { name: 'Upload a CSV file' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px`);
    await context.close();
  });
}
