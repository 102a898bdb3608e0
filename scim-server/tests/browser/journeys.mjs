// Browser journeys through the real scim-server binary's console, in Debian's headless Chromium
// (driven by playwright-core), signing in against a real OpenID provider (oidc-provider) on
// loopback. Run by the cargo test `console_browser` (tests/it/console_browser.rs), which passes:
//   SCIM_SERVER_BIN    the scim-server binary
//   SCIM_WORK_DIR      a scratch directory (database, config)
//   SCREENSHOT_DIR     where the page screenshots go (under target/; copied to docs/console
//                      only with SCIM_UPDATE_SCREENSHOTS=1)
//   GRAPH_SECTION      the server's [graph] section, for the fake Graph the cargo test runs
//   CHROMIUM           the browser (default /usr/bin/chromium)
// Selectors are roles and labels, as a screen reader finds things.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import Provider from 'oidc-provider';
import { chromium } from 'playwright-core';
import { uploadConfig, uploadJourney, uploadRefusals } from './upload.mjs';
import { adminJourney } from './admin.mjs';
import { approver, governanceJourneys, governanceSection } from './governance.mjs';

const serverBin = process.env.SCIM_SERVER_BIN;
const workDir = process.env.SCIM_WORK_DIR;
const shots = process.env.SCREENSHOT_DIR;
const graphSection = process.env.GRAPH_SECTION || '';
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
for (const [name, value] of Object.entries({ SCIM_SERVER_BIN: serverBin, SCIM_WORK_DIR: workDir, SCREENSHOT_DIR: shots })) {
  if (!value) throw new Error(`${name} is not set (run through the cargo test console_browser)`);
}
mkdirSync(shots, { recursive: true });

const results = [];
async function journey(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`not ok - ${name}\n${e.stack}`);
  }
}

async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

// ---- the OpenID provider: a client for the console, people with groups ----
const people = {
  ada: { name: 'Ada Admin', email: 'ada@corp.example', groups: ['console-admins', 'all-staff'] },
  vic: { name: 'Vic Viewer', email: 'vic@corp.example', groups: ['console-viewers', 'all-staff'] },
  otto: { name: 'Otto Operator', email: 'otto@corp.example', groups: ['console-operators', 'all-staff'] },
  nora: { name: 'Nora Nobody', email: 'nora@corp.example', groups: ['all-staff'] },
  ...approver,
};
const idpPort = await freePort();
const consolePort = await freePort();
const issuer = `http://127.0.0.1:${idpPort}`;
const consoleBase = `http://127.0.0.1:${consolePort}`;
const clientSecret = 'browser-test-client-secret-0123456789';
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'scim-console',
    client_secret: clientSecret,
    redirect_uris: [`${consoleBase}/console/auth/callback`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [{ ...signingKey, kid: 'browser-test', use: 'sig', alg: 'RS256' }] },
  // Like Entra ID's groups claim: in the ID token, with no extra scope.
  claims: { openid: ['sub', 'groups'], profile: ['name'], email: ['email'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true, methods: ['S256'] },
  findAccount: async (_ctx, id) => {
    const person = people[id];
    if (!person) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...person }) };
  },
});
provider.proxy = false;
const idp = provider.listen(idpPort, '127.0.0.1');
await once(idp, 'listening');

// ---- the scim-server binary with [console.oidc] ----
const token = 'browser-test-scim-token-0123456789';
const configPath = path.join(workDir, 'scim.toml');
writeFileSync(configPath, `
listen = "127.0.0.1:${consolePort}"
database_url = "sqlite://${path.join(workDir, 'scim.db')}"

[console.oidc]
issuer = "${issuer}"
client_id = "scim-console"
client_secret = "${clientSecret}"

[console.roles.default]
admin = ["console-admins"]
operator = ["console-operators"]
viewer = ["console-viewers"]
approver = ["console-approvers"]

${graphSection}
${uploadConfig(workDir)}
${governanceSection}
`);
const server = spawn(serverBin, ['serve', '--config', configPath], {
  env: { PATH: process.env.PATH, SCIM_TOKEN: token, SCIM_LOG: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const listening = new Promise((resolve, reject) => {
  const lines = readline.createInterface({ input: server.stdout });
  lines.on('line', (line) => { if (line.startsWith('scim-server listening on')) resolve(); });
  server.on('exit', (code) => reject(new Error(`scim-server exited with ${code}`)));
  setTimeout(() => reject(new Error('scim-server did not start within 60 s')), 60_000);
});
const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function scim(method, resource, body) {
  const res = await fetch(`${consoleBase}/scim/v2/${resource}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
    body: body && JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${resource}: ${res.status} ${await res.clone().text()}`);
  return res.status === 204 ? null : res.json();
}

async function signIn(context, login) {
  const page = await context.newPage();
  await page.goto(`${consoleBase}/console`);
  await page.getByRole('link', { name: 'Sign in with your organisation account' }).click();
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  // The provider asks for consent once per client.
  await page.getByRole('button', { name: 'Continue' }).click();
  return page;
}

async function csrfOf(page) {
  return page.locator('form[action="/console/signout"] input[name=csrf]').getAttribute('value');
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

try {
  await listening;
  // People and groups through the SCIM API, as an HR system or Entra ID would send them.
  const staff = [
    ['grace.hopper@corp.example', 'Grace', 'Hopper', 'Engineering'],
    ['alan.turing@corp.example', 'Alan', 'Turing', 'Research'],
    ['katherine.johnson@corp.example', 'Katherine', 'Johnson', 'Flight'],
    ['edsger.dijkstra@corp.example', 'Edsger', 'Dijkstra', 'Engineering'],
    ['barbara.liskov@corp.example', 'Barbara', 'Liskov', 'Research'],
  ];
  const ids = {};
  for (const [userName, given, family, department] of staff) {
    const user = await scim('POST', 'Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
      userName, displayName: `${given} ${family}`, name: { givenName: given, familyName: family },
      emails: [{ value: userName, type: 'work', primary: true }], active: true,
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department },
    });
    ids[userName] = user.id;
  }
  const engineering = await scim('POST', 'Groups', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Engineering',
    members: [{ value: ids['grace.hopper@corp.example'] }, { value: ids['edsger.dijkstra@corp.example'] }],
  });
  await scim('PATCH', `Users/${ids['grace.hopper@corp.example']}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'replace', path: 'title', value: 'Rear Admiral' }],
  });

  await journey('an admin signs in, searches a person and opens their page', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await signIn(context, 'ada');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    assert.match(await page.locator('header').innerText(), /Ada Admin · admin · tenant default/);
    await shot(page, 'dashboard');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'People' }).click();
    await page.getByRole('heading', { name: 'People' }).waitFor();
    await page.getByLabel('Search people (user name starts with)').fill('grace');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('Showing 1–1 of 1.').waitFor();
    await shot(page, 'people');
    await page.getByRole('link', { name: 'grace.hopper@corp.example' }).click();
    await page.getByRole('heading', { name: 'grace.hopper@corp.example' }).waitFor();
    const timeline = await page.locator('section[aria-labelledby=timeline]').innerText();
    assert.match(timeline, /patch User/);
    assert.match(timeline, /create User/);
    assert.match(await page.locator('section[aria-labelledby=memberships]').innerText(), /Engineering/);
    await shot(page, 'person');

    await page.getByRole('link', { name: 'Engineering' }).click();
    await page.getByRole('heading', { name: 'Engineering' }).waitFor();
    assert.equal(new URL(page.url()).pathname, `/console/groups/${engineering.id}`);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Label').fill('Okta provisioning');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = await page.getByLabel('Secret').inputValue();
    assert.match(secret, /^scim_/);
    const me = await fetch(`${consoleBase}/scim/v2/Users?count=1`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(me.status, 200, 'the token created in the console authenticates');
    await page.getByRole('link', { name: 'Back to tokens' }).click();
    await shot(page, 'tokens');
    await context.close();
  });

  await journey('typing in the search box refreshes the results in place (htmx), within the CSP', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await signIn(context, 'ada');
    const violations = [];
    page.on('console', (msg) => { if (/Content Security Policy|Refused to/i.test(msg.text())) violations.push(msg.text()); });
    await page.goto(`${consoleBase}/console/people`);
    await page.getByText('Showing 1–5 of 5.').waitFor();
    await page.evaluate(() => { window.notReloaded = true; });
    await page.getByLabel('Search people (user name starts with)').fill('barb');
    await page.getByText('Showing 1–1 of 1.').waitFor();
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was updated, not reloaded');
    assert.match(page.url(), /q=barb/, 'the address keeps the search');
    assert.deepEqual(violations, []);
    await context.close();
  });

  await journey('the people page is readable at phone width', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await signIn(context, 'ada');
    await page.goto(`${consoleBase}/console/people`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px`);
    await shot(page, 'people-phone');
    await context.close();
  });

  await journey('an operator hires a person, sees their Graph plan, and terminates them: the leaver steps', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await signIn(context, 'otto');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'People' }).click();
    await page.getByRole('link', { name: 'New hire' }).click();
    await page.getByRole('heading', { name: 'New hire' }).waitFor();
    await page.getByLabel('User name', { exact: true }).fill('mary.jackson@corp.example');
    await page.getByLabel('Given name').fill('Mary');
    await page.getByLabel('Family name').fill('Jackson');
    await page.getByLabel('Work e-mail').fill('mary.jackson@corp.example');
    await page.getByLabel('Employee id').fill('E-1001');
    await page.getByLabel('Department').fill('Engineering');
    await page.getByLabel('Manager (user name)').fill('nobody@corp.example');
    await shot(page, 'new-hire');
    await page.getByRole('button', { name: 'Hire' }).click();
    // The error is next to its field, and the form keeps what was typed.
    const managerError = page.locator('#manager-error');
    await managerError.waitFor();
    assert.match(await managerError.innerText(), /no person has the user name "nobody@corp.example"/);
    assert.equal(await page.getByLabel('Manager (user name)').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByLabel('Family name').inputValue(), 'Jackson');
    await shot(page, 'new-hire-error');
    await page.getByLabel('Manager (user name)').fill('grace.hopper@corp.example');
    await page.getByRole('button', { name: 'Hire' }).click();
    await page.getByText('mary.jackson@corp.example is hired and active.').waitFor();
    await page.getByRole('link', { name: "Open the person's page" }).click();
    await page.getByRole('heading', { name: 'mary.jackson@corp.example' }).waitFor();
    const timeline = await page.locator('section[aria-labelledby=timeline]').innerText();
    assert.match(timeline, /create User[\s\S]*console:otto/, 'the change record names the operator');

    // The bridge plans and applies within seconds; the page shows the current plan.
    const current = page.getByRole('article', { name: 'Current plan' });
    for (let i = 0; ; i++) {
      if (await current.count() > 0 && /applied/.test(await current.innerText())) break;
      assert.ok(i < 60, 'no applied plan within 30 s');
      await page.waitForTimeout(500);
      await page.reload();
    }
    const joiner = await current.innerText();
    assert.match(joiner, /Current plan: create/);
    assert.match(joiner, /create_user/);
    assert.match(joiner, /add_group eng — done/);
    await shot(page, 'person-plan');

    await page.getByRole('navigation', { name: 'Actions' }).getByRole('link', { name: 'Terminate' }).click();
    await page.getByRole('heading', { name: 'Terminate mary.jackson@corp.example' }).waitFor();
    await shot(page, 'terminate');
    await page.getByRole('button', { name: 'Terminate' }).click();
    await page.getByText('The person is terminated.').waitFor();
    await page.getByRole('link', { name: "Open the person's page" }).click();
    for (let i = 0; ; i++) {
      if (/Current plan: leaver/.test(await current.innerText().catch(() => ''))) break;
      assert.ok(i < 60, 'no leaver plan within 30 s');
      await page.waitForTimeout(500);
      await page.reload();
    }
    const leaver = await current.innerText();
    assert.match(leaver, /disable_account/);
    assert.match(leaver, /revoke_sessions/);
    assert.match(leaver, /remove_group eng/);
    assert.match(await page.locator('section[aria-labelledby=timeline]').innerText(), /patch User[\s\S]*console:otto/);
    await shot(page, 'leaver-plan');

    await page.goto(`${consoleBase}/console/activity`);
    assert.match(await page.locator('main').innerText(), /Otto Operator[\s\S]*terminate/);
    await page.goto(`${consoleBase}/console/bridge`);
    await page.getByRole('heading', { name: 'Graph bridge' }).waitFor();
    await shot(page, 'bridge');
    await page.goto(`${consoleBase}/console/intake`);
    await page.getByRole('heading', { name: 'HR intake' }).waitFor();
    await shot(page, 'intake');
    await context.close();
  });

  await uploadJourney({ journey, browser, signIn, consoleBase, shot, scim, workDir });
  const graphSecret = (graphSection.match(/client_secret = "([^"]*)"/) || [])[1];
  await adminJourney({ journey, browser, signIn, consoleBase, shot, secrets: [clientSecret, token, graphSecret].filter(Boolean) });
  await governanceJourneys({ browser, base: consoleBase, token, journey, signIn, shot, scim });

  await journey('a form post without the session CSRF token is refused', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'ada');
    const before = (await scim('GET', 'Users?count=0')).totalResults;
    for (const form of [{ label: 'forged' }, { label: 'forged', csrf: 'not-the-token' }]) {
      const res = await page.request.post(`${consoleBase}/console/admin/tokens`, { form, maxRedirects: 0 });
      assert.equal(res.status(), 403, JSON.stringify(form));
      assert.match(await res.text(), /not sent from a console page/);
    }
    await page.goto(`${consoleBase}/console/admin/tokens`);
    assert.equal(await page.getByRole('cell', { name: 'forged' }).count(), 0, 'no forged token was created');
    const ok = await page.request.post(`${consoleBase}/console/admin/tokens`, { form: { label: 'real', csrf: await csrfOf(page) } });
    assert.equal(ok.status(), 200);
    assert.equal((await scim('GET', 'Users?count=0')).totalResults, before);
    await context.close();
  });

  await journey('a viewer gets 403 for every action', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'vic');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    assert.match(await page.locator('header').innerText(), /Vic Viewer · viewer/);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
    assert.equal(await page.getByRole('button', { name: 'Create token' }).count(), 0);
    const csrf = await csrfOf(page);
    const create = await page.request.post(`${consoleBase}/console/admin/tokens`, { form: { label: 'sneaky', csrf } });
    assert.equal(create.status(), 403);
    assert.match(await create.text(), /the viewer role may not create tokens/);
    const tokenId = (await page.locator('td code').first().innerText()).trim();
    const revoke = await page.request.post(`${consoleBase}/console/admin/tokens/${tokenId}/revoke`, { form: { csrf } });
    assert.equal(revoke.status(), 403);
    assert.match(await revoke.text(), /the viewer role may not revoke tokens/);
    // Opening the form URL directly is no way around it either.
    await page.goto(`${consoleBase}/console/admin/tokens/${tokenId}/revoke`);
    await page.getByRole('button', { name: 'Revoke token' }).click();
    await page.getByRole('heading', { name: 'Not allowed' }).waitFor();
    await shot(page, 'forbidden');
    // Every joiner, mover, leaver and retry action too, whatever the page shows.
    const grace = ids['grace.hopper@corp.example'];
    for (const [path, what] of [
      ['/console/people/new', 'hire people'],
      [`/console/people/${grace}/update`, 'update people'],
      [`/console/people/${grace}/terminate`, 'terminate people'],
      [`/console/people/${grace}/rehire`, 'rehire people'],
      ['/console/intake/any-job/retry', 'retry intake jobs'],
      ['/console/bridge/dead-letters/any-letter/retry', 'retry Graph bridge work'],
      ['/console/admin/tenants', 'create tenants'],
    ]) {
      const res = await page.request.post(`${consoleBase}${path}`, { form: { csrf, user_name: 'sneaky@corp.example', title: 'x' } });
      assert.equal(res.status(), 403, path);
      assert.match(await res.text(), new RegExp(`the viewer role may not ${what}`), path);
    }
    await uploadRefusals(page, consoleBase, csrf);
    assert.equal((await scim('GET', `Users/${grace}`)).active, true, 'the viewer changed nothing');
    await page.goto(`${consoleBase}/console/people/${grace}`);
    assert.equal(await page.getByRole('navigation', { name: 'Actions' }).count(), 0, 'no action buttons for a viewer');
    await page.goto(`${consoleBase}/console/activity`);
    assert.match(await page.locator('main').innerText(), /Vic Viewer[\s\S]*revoke_token\s+\S+\s+refused/);
    await shot(page, 'activity');
    await context.close();
  });

  await journey('a person without a console role is turned away; sign-out ends the session', async () => {
    const context = await browser.newContext();
    const nobody = await signIn(context, 'nora');
    await nobody.getByRole('heading', { name: 'No console role' }).waitFor();
    await context.close();

    const ctx2 = await browser.newContext();
    const page = await signIn(ctx2, 'ada');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are signed out.').waitFor();
    await shot(page, 'signin');
    await page.goto(`${consoleBase}/console`);
    assert.equal(new URL(page.url()).pathname, '/console/signin');
    await ctx2.close();
  });

  await journey('the sign-in state is bound to the browser that started it', async () => {
    // A callback with a state this browser was never given (login CSRF) is refused.
    const context = await browser.newContext();
    const page = await context.newPage();
    const res = await page.goto(`${consoleBase}/console/auth/callback?code=x&state=forged`);
    assert.equal(res.status(), 401);
    assert.match(await page.locator('main').innerText(), /not started in this browser/);
    await context.close();
  });
} finally {
  await browser.close().catch(() => {});
  server.kill('SIGTERM');
  idp.close();
}

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
