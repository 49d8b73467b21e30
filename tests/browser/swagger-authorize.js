// Drives Swagger UI in headless Chromium: Authorize with the OAuth2 password
// flow, then "Try it out" on GET /users/me. Prints a JSON verdict and exits 1
// unless the call returned 200 with the username, the page raised no
// Content-Security-Policy violation and no uncaught exception, and there was
// no console error other than the favicon 404.
//
// Usage: node swagger-authorize.js http://127.0.0.1:8000 USERNAME PASSWORD
// Env:   SCREENSHOT=path.png  where to save the full-page screenshot
//        CSP_OVERRIDE=policy  negative control for CI: serve /docs with this
//                             Content-Security-Policy instead of the server's,
//                             load it, and exit 1 when a violation was seen
//                             (0 means the CSP check is blind)
// Needs: Debian's chromium at /usr/bin/chromium, npm's playwright-core.
const { chromium } = require('playwright-core');
const consoleErrors = [];   // every console error, with the URL it is about
const cspViolations = [];   // from the DOM's securitypolicyviolation events and the console
const pageErrors = [];      // uncaught exceptions
(async () => {
  const [base, username, password] = process.argv.slice(2);
  if (!base || !username || !password) {
    console.error('usage: node swagger-authorize.js BASE_URL USERNAME PASSWORD');
    process.exit(2);
  }
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox','--disable-gpu','--disable-quic','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync'] });
  const page = await browser.newPage();
  page.on('console', m => {
    if (m.type() !== 'error') return;
    const url = (m.location() && m.location().url) || '';
    consoleErrors.push({ text: m.text(), url });
    if (/Content[- ]Security[- ]Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', e => pageErrors.push(String(e)));
  // Chromium fires securitypolicyviolation for every violation, whatever it
  // prints to the console; report them through a binding.
  await page.exposeBinding('__reportCsp', (_src, v) => cspViolations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', e => {
      window.__reportCsp(`${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  if (process.env.CSP_OVERRIDE) {
    await page.route('**/docs', async route => {
      const response = await route.fetch();
      await route.fulfill({ response,
        headers: { ...response.headers(), 'content-security-policy': process.env.CSP_OVERRIDE } });
    });
  }
  await page.goto(base + '/docs', { waitUntil: 'load' });
  if (process.env.CSP_OVERRIDE) {
    // Negative control: only the page load matters; a violation must be seen.
    await page.waitForTimeout(1000);
    await browser.close();
    console.log(JSON.stringify({ control: true, cspViolations, pageErrors, consoleErrors }));
    process.exit(cspViolations.length > 0 ? 1 : 0);
  }
  await page.waitForSelector('.btn.authorize', { timeout: 15000 });
  await page.click('.btn.authorize');
  await page.fill('#oauth_username', username);
  await page.fill('#oauth_password', password);
  await page.click('.auth-container:has(#oauth_username) .btn.modal-btn.auth.authorize');
  await page.waitForSelector('.auth-container h6:has-text("Authorized")', { timeout: 10000 });
  await page.click('.close-modal');
  await page.click('#operations-Users-getMe .opblock-summary');
  await page.click('#operations-Users-getMe .try-out__btn');
  await page.click('#operations-Users-getMe .execute');
  await page.waitForSelector('#operations-Users-getMe .live-responses-table tbody .response-col_status', { timeout: 10000 });
  const status = await page.textContent('#operations-Users-getMe .live-responses-table tbody .response-col_status');
  const body = await page.textContent('#operations-Users-getMe .live-responses-table tbody .response-col_description');
  await page.locator('#operations-Users-getMe').scrollIntoViewIfNeeded();
  await page.screenshot({ path: process.env.SCREENSHOT || 'swagger-authorize.png', fullPage: true });
  await browser.close();
  // The only tolerated console error: the browser's own request for
  // /favicon.ico, which the API answers 404.
  const unexpected = consoleErrors.filter(e => !(new URL(e.url || 'about:blank', base).pathname === '/favicon.ico'
    && e.text.includes('404')));
  const verdict = { status: status.trim(), hasUsername: body.includes(`"${username}"`),
    cspViolations, pageErrors, consoleErrors, unexpectedConsoleErrors: unexpected };
  console.log(JSON.stringify(verdict));
  if (verdict.status !== '200' || !verdict.hasUsername || cspViolations.length > 0
      || pageErrors.length > 0 || unexpected.length > 0) process.exit(1);
})().catch(e => {
  console.error(e);
  console.log(JSON.stringify({ error: String(e).split('\n')[0], cspViolations, pageErrors, consoleErrors }));
  process.exit(1);
});
