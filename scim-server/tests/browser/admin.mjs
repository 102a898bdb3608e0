// The admin journey (called from journeys.mjs): an admin reads the Graph rules in effect and
// the configuration (no secret on the page), and creates a tenant. Selectors are roles and
// labels; the keyboard reaches every link and control.

import assert from 'node:assert/strict';

// `secrets`: values the server's configuration holds that must never be shown.
export async function adminJourney({ journey, browser, signIn, consoleBase, shot, secrets }) {
  await journey('an admin views the Graph rules and the configuration (secrets redacted), and creates a tenant', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await signIn(context, 'ada');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { name: 'Admin', exact: true }).waitFor();

    await page.getByRole('link', { name: 'Graph rules' }).click();
    await page.getByRole('heading', { name: 'Graph rules' }).waitFor();
    const engineering = page.getByRole('article', { name: 'engineering' });
    assert.match(await engineering.innerText(), /department equals "Engineering"[\s\S]*Group eng/);
    assert.match(await page.getByRole('article', { name: 'support' }).innerText(), /title starts with "Support"/);
    await shot(page, 'admin-rules');

    await page.goto(`${consoleBase}/console/admin/config`);
    await page.getByRole('heading', { name: 'Configuration' }).waitFor();
    const config = await page.getByLabel('Configuration in effect').innerText();
    assert.match(config, /client_secret = "<redacted>"/);
    for (const secret of secrets) {
      assert.ok(!(await page.content()).includes(secret), 'a secret is on the configuration page');
    }
    await shot(page, 'admin-config');

    await page.goto(`${consoleBase}/console/admin/tenants`);
    await page.getByRole('heading', { name: 'Tenants' }).waitFor();
    await page.getByLabel('Tenant id').fill('contoso');
    await page.getByLabel('Display name').fill('Contoso Ltd');
    await page.getByLabel('Tenant id').press('Enter');
    await page.getByText('Tenant contoso is created.').waitFor();
    assert.equal(await page.getByRole('cell', { name: 'Contoso Ltd' }).count(), 1);
    await shot(page, 'tenants');
    await context.close();
  });

  await journey('the admin pages are refused to an operator', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'otto');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    for (const p of ['/console/admin', '/console/admin/tenants', '/console/admin/rules', '/console/admin/config']) {
      const res = await page.goto(`${consoleBase}${p}`);
      assert.equal(res.status(), 403, p);
    }
    await context.close();
  });
}
