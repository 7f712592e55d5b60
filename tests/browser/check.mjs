// SPDX-License-Identifier: ISC
// Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
// Opens pages in Debian's headless Chromium (playwright-core, never a
// downloaded browser) and tells what a person's browser would show; the
// caller (tests/e2e/test_browser.py) judges.  JavaScript is off in every
// page, as in a mail client and as on the opt-out page (its CSP allows no
// script): what is measured below runs in Playwright's own world.
//
//   node check.mjs SPEC.json        (the answer, JSON, on standard output)
//
// SPEC: {"chromium": path, "outdir": dir for the PNGs,
//        "viewports": [{"name", "width", "height", "mobile", "scale"}],
//        "pages":  [{"name", "url", "locale", "selector"}],
//        "clicks": [{"name", "url", "locale", "selector", "viewport"}]}
// Each page is opened at every viewport (the pages of one locale in one
// tab): its layout, its target element (selector) scrolled into view, a
// full-page screenshot NAME-VIEWPORT.png.
// Each click opens its page, clicks the target with the mouse at its
// centre and waits for the POST the form sends: its answer, a screenshot
// NAME-VIEWPORT.png of the page after it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT = 15000;
// Debian's Chromium as root, on a machine with no network but loopback.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

// In the page: the layout, and the target scrolled into view; width is
// the viewport's, as set (a phone widens its layout to fit a page that
// is too wide).
function measure({ selector, width }) {
  const de = document.documentElement;
  const describe = (e) => e === null ? null : e.tagName.toLowerCase() +
    (e.id ? '#' + e.id : '') + (e.getAttribute('class') ?
      '.' + e.getAttribute('class') : '');
  const out = {
    lang: de.getAttribute('lang'),
    title: document.title,
    text: document.body ? document.body.innerText : '',
    innerWidth: window.innerWidth,
    innerHeight: window.innerHeight,
    clientWidth: de.clientWidth,
    scrollWidth: de.scrollWidth,
    bodyScrollWidth: document.body ? document.body.scrollWidth : 0,
    // What sticks out on the right, for a person reading a failure.
    wide: [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > width + 0.5)
      .slice(-3).map((e) => describe(e) + ' right=' +
        e.getBoundingClientRect().right.toFixed(1) + ' ' +
        JSON.stringify(e.innerText.slice(0, 60))),
    count: document.querySelectorAll(selector).length,
    target: null,
  };
  const el = document.querySelector(selector);
  if (el === null)
    return out;
  el.scrollIntoView({ block: 'center', inline: 'nearest' });
  const r = el.getBoundingClientRect();
  const cs = getComputedStyle(el);
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const hit = document.elementFromPoint(x, y);
  out.target = {
    tag: el.tagName.toLowerCase(),
    text: el.innerText,
    left: r.left, top: r.top, right: r.right, bottom: r.bottom,
    width: r.width, height: r.height, x, y,
    display: cs.display, visibility: cs.visibility,
    opacity: Number(cs.opacity),
    hitSelf: hit === el,
    hit: describe(hit),
    innerWidth: window.innerWidth,
    innerHeight: window.innerHeight,
  };
  return out;
}

async function newContext(browser, vp, locale) {
  return browser.newContext({
    viewport: { width: vp.width, height: vp.height },
    deviceScaleFactor: vp.scale,
    isMobile: vp.mobile,
    hasTouch: vp.mobile,
    locale,
    javaScriptEnabled: false,
    // The test's nginx has a self-signed certificate.
    ignoreHTTPSErrors: true,
  });
}

// Console lines of the page (a CSP violation shows there), with the URL
// they are about.
function listen(page) {
  const lines = [];
  page.on('console', (m) => lines.push(m.type() + ': ' + m.text() +
    (m.location().url ? ' (' + m.location().url + ')' : '')));
  page.on('pageerror', (e) => lines.push('pageerror: ' + e.message));
  return lines;
}

async function open(page, url) {
  const resp = await page.goto(url, { waitUntil: 'load', timeout: TIMEOUT });
  if (resp === null)
    return { status: null, acceptLanguage: null };
  const h = await resp.request().allHeaders();
  return { status: resp.status(), acceptLanguage: h['accept-language'] ??
    null };
}

// Is JavaScript really off?  A page whose script would set the title.
async function scriptsOff(browser, vp) {
  const ctx = await newContext(browser, vp, 'en');
  try {
    const page = await ctx.newPage();
    await page.setContent('<title>off</title>' +
      '<script>document.title = "on";</script>');
    return (await page.title()) === 'off';
  } finally {
    await ctx.close();
  }
}

// The pages of one locale at one viewport, in one tab of one context.
async function lookAll(browser, spec, pages, vp) {
  const ctx = await newContext(browser, vp, pages[0].locale);
  const out = [];
  try {
    const page = await ctx.newPage();
    const consoleLines = listen(page);
    for (const p of pages) {
      const t0 = Date.now();
      const nav = await open(page, p.url);
      const t1 = Date.now();
      const m = await page.evaluate(measure, { selector: p.selector,
        width: vp.width });
      const shot = join(spec.outdir, `${p.name}-${vp.name}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      out.push({ name: p.name, viewport: vp.name, ...nav, ...m,
        screenshot: shot, console: consoleLines.splice(0),
        ms: [t1 - t0, Date.now() - t1] });
    }
  } finally {
    await ctx.close();
  }
  return out;
}

async function click(browser, spec, c, vp) {
  const ctx = await newContext(browser, vp, c.locale);
  try {
    const page = await ctx.newPage();
    const consoleLines = listen(page);
    const nav = await open(page, c.url);
    const m = await page.evaluate(measure, { selector: c.selector,
      width: vp.width });
    const out = { name: c.name, viewport: vp.name, get: nav,
      target: m.target, console: consoleLines };
    if (m.target === null)
      return out;
    // A real mouse click where a person would put the pointer: the
    // button's centre, the page scrolled as measure() left it.
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST',
        { timeout: TIMEOUT }),
      page.mouse.click(m.target.x, m.target.y),
    ]);
    await page.waitForLoadState('load', { timeout: TIMEOUT });
    const req = resp.request();
    out.post = {
      url: req.url(),
      method: req.method(),
      contentType: (await req.allHeaders())['content-type'] ?? null,
      body: req.postData(),
      status: resp.status(),
      response: await resp.text(),
      pageUrl: page.url(),
    };
    out.screenshot = join(spec.outdir, `${c.name}-${vp.name}.png`);
    await page.screenshot({ path: out.screenshot, fullPage: true });
    return out;
  } finally {
    await ctx.close();
  }
}

async function main() {
  const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const browser = await chromium.launch({
    executablePath: spec.chromium,
    headless: true,
    args: ARGS,
    timeout: 30000,
  });
  try {
    const vps = Object.fromEntries(spec.viewports.map((v) => [v.name, v]));
    const out = { version: browser.version(),
      scriptsOff: await scriptsOff(browser, spec.viewports[0]),
      pages: [], clicks: [] };
    const byLocale = new Map();
    for (const p of spec.pages)
      byLocale.set(p.locale, [...(byLocale.get(p.locale) ?? []), p]);
    for (const pages of byLocale.values())
      for (const vp of spec.viewports)
        out.pages.push(...await lookAll(browser, spec, pages, vp));
    for (const c of spec.clicks)
      out.clicks.push(await click(browser, spec, c, vps[c.viewport]));
    process.stdout.write(JSON.stringify(out, null, 1) + '\n');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  process.stderr.write(`check.mjs: ${e.stack || e}\n`);
  process.exit(1);
});
