// tests/t_report.js - opens an `attn report` page in headless Chromium
// (puppeteer-core, /usr/bin/chromium) and checks: no console error or page
// error, no request other than the file itself, the grid/tables are filled,
// hovering a token draws lines and hovering another token changes them.
// usage: node tests/t_report.js REPORT.html L H T [SCREENSHOT.png]
// With ATTN_NONFINITE_HEAD=X (layer * H + head) it checks instead that
// thumbnail X, and only it, has magenta (non-finite) cells and the legend
// names them.
// Run by tests/t_report.py, which builds the page; prints PASS/FAIL lines.
'use strict';
const path = require('path');
const puppeteer = require('puppeteer-core');

const [file, L, H, T, shot] = process.argv.slice(2);
let failures = 0;
function check(ok, name, why) {
  if (ok) console.log('PASS ' + name);
  else { failures++; console.log('FAIL ' + name + ': ' + why); }
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    const url = 'file://' + path.resolve(file);
    const errors = [], requests = [];
    page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', e => errors.push(String(e)));
    page.on('request', r => { if (r.url() !== url) requests.push(r.url()); });
    await page.setViewport({ width: 1200, height: 900 });
    await page.goto(url, { waitUntil: 'load' });
    await new Promise(r => setTimeout(r, 300));

    const counts = await page.evaluate(() => ({
      canvases: document.querySelectorAll('#grid canvas').length,
      scoreRows: document.querySelectorAll('#scores tr').length,
      topRows: document.querySelectorAll('#topk tr').length,
      tokens: document.querySelectorAll('#view text').length,
    }));
    check(counts.canvases === L * H && counts.scoreRows === L * H + 1 && counts.topRows === +T + 1 &&
          counts.tokens === 2 * T, 'report_filled', JSON.stringify(counts));

    const bad = process.env.ATTN_NONFINITE_HEAD;
    if (bad !== undefined) {
      const r = await page.evaluate(() => ({
        magenta: Array.from(document.querySelectorAll('#grid canvas')).map(cv => {
          const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
          for (let o = 0; o < d.length; o += 4) if (d[o] === 255 && d[o + 1] === 0 && d[o + 2] === 255) return 1;
          return 0;
        }),
        legend: document.getElementById('legend').textContent,
      }));
      const want = r.magenta.map((_, x) => (x === +bad ? 1 : 0)).join('');
      check(r.magenta.join('') === want && r.legend.includes('non-finite'), 'report_nonfinite_magenta',
            `magenta thumbnails ${r.magenta.join('')}, want ${want}; legend "${r.legend}"`);
    }
    const lines = () => page.evaluate(() => Array.from(document.querySelectorAll('#lines line'))
      .map(l => [l.getAttribute('y1'), l.getAttribute('y2'), l.getAttribute('stroke'),
                 l.getAttribute('stroke-opacity')].join(',')).join(';'));
    const before = await lines();
    const hover = async (side, i) => {
      const el = await page.$(`#view text[data-side="${side}"][data-i="${i}"]`);
      await el.hover();
      await new Promise(r => setTimeout(r, 50));
      return lines();
    };
    const a = await hover('q', T - 1);
    const b = await hover('q', Math.floor(T / 2));
    const c = await hover('k', 0);
    check(before === '' && a !== '' && b !== '' && a !== b && c !== '' && c !== b, 'report_hover_lines',
          `lines before hover ${before.split(';').length - (before === '')}, after ${a.split(';').length}, ` +
          `${b.split(';').length}, ${c.split(';').length}`);
    // layer switch redraws with that layer's attention
    if (+L > 1) {
      await hover('q', T - 1);
      await page.select('#layer', String(L - 1));
      const d = await lines();
      check(d !== a, 'report_layer_switch', 'the lines did not change with the layer');
    }
    if (shot) {
      await hover('q', Math.min(T - 1, 12));
      await page.screenshot({ path: shot, fullPage: false });
    }
    check(errors.length === 0, 'report_no_console_errors', errors.slice(0, 3).join(' | '));
    check(requests.length === 0, 'report_no_network', requests.slice(0, 3).join(' '));
  } finally {
    await browser.close();
  }
  process.exit(failures ? 1 : 0);
})().catch(e => { console.log('FAIL report_browser: ' + String(e).split('\n')[0]); process.exit(1); });
