// The console's governance pages in the browser (called from journeys.mjs, which starts the
// OpenID provider, the binary and Chromium): an approver decides access review items in their
// inbox (one with a justification, then two at once) and sees the decisions; an operator asks
// for time-bound access and the approver approves it; the hygiene report and the leaver
// evidence with a download. Screenshots: reviews.png, jit.png, hygiene.png, evidence.png.
// Selectors are roles and labels, as a screen reader finds things.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// The server's [governance] section: the schedule on, and one requestable grant, the `support`
// group for up to eight hours, approved by April (named by SCIM userName, as policies name
// approvers).
export const governanceSection = `
[governance]
poll_interval_seconds = 1

[[governance.jit.policies]]
grant = "group:support"
max_duration = "PT8H"
approval = "approvers"
approvers = ["april@corp.example"]
`;

// The approver in the OpenID provider: her `email` claim is how reviews and policies know her.
export const approver = {
  april: { name: 'April Approver', email: 'april@corp.example', groups: ['console-approvers', 'all-staff'] },
};

export async function governanceJourneys({ browser, base, token, journey, signIn, shot, scim }) {
  const api = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  // April is a SCIM user too: an approver is named by SCIM userName.
  await scim('POST', 'Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
    userName: 'april@corp.example', displayName: 'April Approver', active: true,
    emails: [{ value: 'april@corp.example', type: 'work', primary: true }],
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'Audit' },
  });

  await journey('an approver decides access review items in the inbox: one, then two at once', async () => {
    // A campaign over who holds `eng` and `all-staff` in Graph (the bridge put the staff there),
    // April reviewing every item.
    const created = await api('POST', '/governance/v1/reviews', {
      name: 'Quarterly access review',
      scope: [{ group: 'eng' }, { group: 'all-staff' }],
      reviewers: { mode: 'named', reviewer: 'april@corp.example' },
      dueAt: new Date(Date.now() + 14 * 86_400_000).toISOString(),
      defaultDecision: 'keep',
      autoApply: false,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const review = created.body;
    assert.ok(review.counts.items >= 3, `the review has ${review.counts.items} items`);

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await signIn(context, 'april');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByRole('link', { name: 'review items waiting for you' }).click();
    await page.getByRole('heading', { name: 'Access reviews' }).waitFor();
    const inbox = page.getByRole('region', { name: 'Quarterly access review' });
    assert.match(await page.locator('main').innerText(), new RegExp(`Waiting for your decision \\(${review.counts.items}\\)`));
    await shot(page, 'reviews');

    // One item, from the keyboard's point of view: a link to its page, a labelled form.
    await inbox.getByRole('link', { name: /^Decide grace\.hopper@corp\.example – group .eng/ }).click();
    await page.getByRole('heading', { name: /grace\.hopper@corp\.example – group .eng/ }).waitFor();
    await page.getByLabel('Keep (approve the access)').check();
    // A blank justification passes the browser's `required` but not the server: the error is
    // next to the field.
    await page.getByLabel('Justification').fill('   ');
    await page.getByRole('button', { name: 'Record decision' }).click();
    await page.locator('#justification-error').waitFor();
    assert.match(await page.locator('#justification-error').innerText(), /justification/);
    assert.equal(await page.getByLabel('Justification').getAttribute('aria-invalid'), 'true');
    await page.getByLabel('Justification').fill('Still leads the compiler team');
    await page.getByRole('button', { name: 'Record decision' }).click();
    await page.getByText('Your decision is recorded').waitFor();
    assert.match(await page.locator('main').innerText(), /keep\s+Still leads the compiler team/);

    // Two at once, with one decision and one justification.
    await page.getByRole('link', { name: 'Back to your inbox' }).click();
    const again = page.getByRole('region', { name: 'Quarterly access review' });
    await again.getByRole('checkbox', { name: /^Select edsger\.dijkstra@corp\.example – group .eng/ }).check();
    await again.getByRole('checkbox', { name: /^Select alan\.turing@corp\.example – group .all-staff/ }).check();
    await again.getByLabel('Revoke', { exact: true }).check();
    await again.getByLabel('Justification').fill('No longer needed after the reorganisation');
    await again.getByRole('button', { name: 'Decide the selected items' }).click();
    await page.getByText('2 decisions are recorded').waitFor();

    await page.getByRole('link', { name: 'Your decided items' }).click();
    const decided = await page.locator('main').innerText();
    assert.match(decided, /Still leads the compiler team/);
    assert.match(decided, /edsger\.dijkstra@corp\.example[\s\S]*revoke: No longer needed after the reorganisation/);
    assert.match(decided, /alan\.turing@corp\.example[\s\S]*revoke: No longer needed after the reorganisation/);

    // The governance record names April (her console principal), as it names a credential for
    // an API decision.
    const events = await api('GET', `/governance/v1/events?subject=${review.id}`);
    const actors = events.body.events.filter((e) => e.kind === 'review.item.decided').map((e) => e.actor);
    assert.deepEqual(actors, ['console:april', 'console:april', 'console:april']);
    await context.close();

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const small = await signIn(phone, 'april');
    await small.goto(`${base}/console/reviews`);
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the inbox scrolls sideways by ${overflow}px at 390px`);
    await phone.close();
  });

  await journey('an operator asks for time-bound access; the approver approves it with the expiry shown', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await signIn(context, 'otto');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'JIT access' }).click();
    await page.getByRole('heading', { name: 'Time-bound access', exact: true }).waitFor();
    await page.getByLabel('Person (user name)').fill('katherine.johnson@corp.example');
    await page.getByLabel('Access', { exact: true }).selectOption('group:support');
    await page.getByLabel('Duration', { exact: true }).fill('PT12H');
    await page.getByLabel('Justification').fill('Covering the service desk during the launch');
    await page.getByRole('button', { name: 'Request access' }).click();
    // Longer than the policy allows: said next to the duration, the rest kept.
    await page.locator('#duration-error').waitFor();
    assert.match(await page.locator('#duration-error').innerText(), /longer than the policy allows/);
    assert.equal(await page.getByLabel('Justification').inputValue(), 'Covering the service desk during the launch');
    await page.getByLabel('Duration', { exact: true }).fill('PT4H');
    await page.getByRole('button', { name: 'Request access' }).click();
    await page.getByText('waits for an approver').waitFor();
    await context.close();

    const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const april = await signIn(ctx2, 'april');
    await april.getByRole('link', { name: 'time-bound grants waiting for approval' }).click();
    await april.getByRole('heading', { name: 'Time-bound access', exact: true }).waitFor();
    assert.match(await april.locator('main').innerText(), /katherine\.johnson@corp\.example\s+group:support\s+pending\s+PT4H from approval/);
    await shot(april, 'jit');
    await april.getByRole('link', { name: 'Approve or deny group:support for katherine.johnson@corp.example' }).click();
    await april.getByLabel('Note (optional)').fill('For the launch week');
    await april.getByRole('button', { name: 'Approve', exact: true }).click();
    await april.getByText(/Approved: group:support is held from .* and expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/).waitFor();
    const granted = await api('GET', '/governance/v1/grants?status=active');
    const grant = granted.body.grants.find((g) => g.grant === 'group:support');
    assert.ok(grant, JSON.stringify(granted.body));
    assert.ok(grant.expiresAt, 'an active grant has an expiry');
    await ctx2.close();
  });

  await journey('the hygiene report and the leaver evidence, with a download', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await signIn(context, 'ada');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Hygiene' }).click();
    await page.getByRole('heading', { name: 'Hygiene' }).waitFor();
    await page.getByText(/Report made/).waitFor();
    await page.getByRole('heading', { name: 'Stale accounts' }).waitFor();
    await page.getByRole('heading', { name: 'Orphaned accounts' }).waitFor();
    await shot(page, 'hygiene');

    // Mary was terminated in the operator's journey: her leaver evidence appears once the bridge
    // recorded the leaver plan.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Evidence' }).click();
    for (let i = 0; ; i++) {
      await page.getByRole('heading', { name: 'Leaver evidence' }).waitFor();
      if (/mary\.jackson@corp\.example/.test(await page.locator('main').innerText())) break;
      assert.ok(i < 60, 'no leaver evidence for mary within 30 s');
      await page.waitForTimeout(500);
      await page.reload();
    }
    await shot(page, 'evidence');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^leaver-evidence-default-.*\.csv$/);
    assert.match(readFileSync(await download.path(), 'utf8'), /mary\.jackson@corp\.example/);
    await context.close();
  });
}
