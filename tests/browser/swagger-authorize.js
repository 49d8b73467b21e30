// Drives Swagger UI in headless Chromium: Authorize with the OAuth2 password
// flow, then "Try it out" on GET /users/me. Prints a JSON verdict and exits 1
// unless the call returned 200 with the username and no console error other
// than the favicon 404.
//
// Usage: node swagger-authorize.js http://127.0.0.1:8000 USERNAME PASSWORD
// Needs: Debian's chromium at /usr/bin/chromium, npm's playwright-core.
const { chromium } = require('playwright-core');
(async () => {
  const base = process.argv[2];
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox','--disable-gpu','--disable-quic','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync'] });
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.goto(base + '/docs');
  await page.waitForSelector('.btn.authorize', { timeout: 15000 });
  await page.click('.btn.authorize');
  await page.fill('#oauth_username', process.argv[3]);
  await page.fill('#oauth_password', process.argv[4]);
  await page.click('.auth-container:has(#oauth_username) .btn.modal-btn.auth.authorize');
  await page.waitForSelector('.auth-container h6:has-text("Authorized")', { timeout: 10000 });
  await page.click('.close-modal');
  await page.click('#operations-Users-getMe .opblock-summary');
  await page.click('#operations-Users-getMe .try-out__btn');
  await page.click('#operations-Users-getMe .execute');
  await page.waitForSelector('#operations-Users-getMe .live-responses-table tbody .response-col_status', { timeout: 10000 });
  const status = await page.textContent('#operations-Users-getMe .live-responses-table tbody .response-col_status');
  const body = await page.textContent('#operations-Users-getMe .live-responses-table tbody .response-col_description');
  await page.locator('#operations-Users-getMe').scrollIntoViewIfNeeded(); await page.screenshot({ path: process.env.SCREENSHOT || 'swagger-authorize.png', fullPage: true });
  const verdict = { status: status.trim(), hasUsername: body.includes(`"${process.argv[3]}"`), consoleErrors };
  console.log(JSON.stringify(verdict));
  await browser.close();
  const unexpected = consoleErrors.filter(e => !e.includes('404'));
  if (verdict.status !== '200' || !verdict.hasUsername || unexpected.length > 0) process.exit(1);
})().catch(e => { console.error(e); process.exit(1); });
