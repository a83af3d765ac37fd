// Drive ComfyUI's web frontend in headless Debian chromium (playwright-core, never a browser download).
//
//   node frontend.js build JOB.json   API graphs -> UI workflows saved by the frontend itself (stdout: JSON)
//   node frontend.js check JOB.json   open each UI workflow as a user does, convert, queue, screenshot (stdout: JSON)
//   node frontend.js view JOB.json    open each UI workflow and screenshot its opening view
//   node frontend.js templates JOB.json  the Templates browser on one pack's category: thumbnails, screenshot
//   node frontend.js preview JOB.json    run one workflow and screenshot the sampler's latent preview
//   node frontend.js refuse JOB.json     queue one workflow with a bad widget: the error dialog's text, screenshot
//
// JOB.json: {"url": ..., "chromium": "/usr/bin/chromium", "workflows": [...]} (see build_workflows.py and
// test_frontend.py for the entries). Page errors are collected; benign 404s of optional resources are not.
const fs = require('fs');
const { chromium } = require('playwright-core');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const MISSING_TEXT = /missing node types|nodes are missing|missing nodes/i;

async function openPage(context, url, errors) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message} ${(e.stack || '').split('\n').slice(1, 3).join(' ')}`));
  await page.goto(url, { waitUntil: 'networkidle', timeout: 120000 });
  await page.waitForFunction(() => window.app && window.app.graph && window.LiteGraph, null, { timeout: 120000 });
  await page.waitForTimeout(1000);
  return page;
}

// A page with the UI workflow at job.path opened through the app's file input, and the widgets set to
// job.tweaks ({node id: {widget: value}}), as a user edits them.
async function openWorkflow(context, job, errors) {
  const page = await openPage(context, job.url, errors);
  await (await page.$('#comfy-file-input')).setInputFiles(job.path);
  await page.waitForFunction((n) => window.app.graph.nodes.length === n, job.nodeCount, { timeout: 30000 });
  await page.evaluate((tweaks) => {
    for (const [id, values] of Object.entries(tweaks)) {
      const node = window.app.graph.getNodeById(Number(id));
      for (const [name, value] of Object.entries(values)) node.widgets.find((x) => x.name === name).value = value;
    }
  }, job.tweaks);
  return page;
}

async function build(context, job) {
  const results = [];
  for (const workflow of job.workflows) {
    const errors = [];
    const page = await openPage(context, job.url, errors);
    const built = await page.evaluate(async (w) => {
      const { app, LiteGraph } = window;
      await app.loadApiJson(w.api, `${w.name}.json`);
      const note = LiteGraph.createNode('Note');
      note.size = w.noteSize;
      note.title = 'Read me: files, folders and time';
      note.widgets[0].value = w.note;
      app.graph.add(note);
      for (const node of app.graph.nodes) {
        for (const widget of node.widgets || []) {
          if (widget.name === 'control_after_generate') widget.value = 'fixed';
        }
      }
      // Columns of nodes stacked top to bottom ("note" is the Note); the gap leaves room for group titles.
      const byId = (id) => {
        const node = id === 'note' ? note : app.graph.getNodeById(Number(id));
        return node && (id === 'note' || node !== note) ? node : null; // the Note may have taken a free id
      };
      // Load Video/Image grow by their preview once a file is picked: keep room for it below them.
      const height = (node) => node.size[1] + (w.previewTypes.includes(node.type) ? w.previewHeight : 0);
      let x = w.origin[0];
      const top = w.origin[1];
      for (const column of w.columns) {
        const nodes = column.map(byId).filter(Boolean);
        if (!nodes.length) continue;
        let y = top;
        for (const node of nodes) {
          node.pos = [x, y];
          y += height(node) + LiteGraph.NODE_TITLE_HEIGHT + w.gap;
        }
        x += Math.max(...nodes.map((node) => node.size[0])) + w.gap;
      }
      for (const [title, color, ids] of w.groups) {
        const nodes = ids.map(byId).filter(Boolean);
        if (!nodes.length) continue;
        const group = new LiteGraph.LGraphGroup(title);
        group.color = color;
        app.graph.add(group);
        // From positions and sizes (the nodes' cached bounding boxes are only refreshed when drawn).
        const pad = w.groupPadding;
        const left = Math.min(...nodes.map((n) => n.pos[0])) - pad;
        const upper = Math.min(...nodes.map((n) => n.pos[1])) - LiteGraph.NODE_TITLE_HEIGHT - pad - group.titleHeight;
        const right = Math.max(...nodes.map((n) => n.pos[0] + n.size[0])) + pad;
        const lower = Math.max(...nodes.map((n) => n.pos[1] + height(n))) + pad;
        group.pos[0] = left;
        group.pos[1] = upper;
        group.size[0] = right - left;
        group.size[1] = lower - upper;
      }
      // Open fitted to the whole graph (within view.width x view.height screen pixels, never above 1:1).
      const items = [...app.graph.nodes.map((n) => [n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, n.size[0],
        height(n) + LiteGraph.NODE_TITLE_HEIGHT]), ...app.graph.groups.map((g) => [g.pos[0], g.pos[1], g.size[0], g.size[1]])];
      const left = Math.min(...items.map((b) => b[0]));
      const upper = Math.min(...items.map((b) => b[1]));
      const extentX = Math.max(...items.map((b) => b[0] + b[2])) - left;
      const extentY = Math.max(...items.map((b) => b[1] + b[3])) - upper;
      const scale = Math.min(1, w.view.width / extentX, w.view.height / extentY);
      const ds = { scale, offset: [w.view.left / scale - left, w.view.top / scale - upper] };
      app.graph.setDirtyCanvas(true, true);
      return { graph: app.graph.serialize(), ds, extent: [extentX, extentY] };
    }, workflow);
    results.push({ name: workflow.name, ...built, errors });
    await page.close();
  }
  return results;
}

async function check(context, job) {
  const results = [];
  for (const workflow of job.workflows) {
    const errors = [];
    const page = await openPage(context, job.url, errors);
    // Open the file as a user does: the app's hidden file input (what the Open dialog fills).
    const input = await page.$('#comfy-file-input');
    let opened = 'file input';
    if (input) {
      await input.setInputFiles(workflow.path);
    } else {
      opened = 'handleFile';
      await page.evaluate(async (w) => window.app.handleFile(new File([w.text], w.fileName, { type: 'application/json' })),
        { text: fs.readFileSync(workflow.path, 'utf8'), fileName: workflow.path.split('/').pop() });
    }
    await page.waitForFunction((n) => window.app.graph.nodes.length === n, workflow.nodeCount, { timeout: 30000 });
    await page.waitForTimeout(1500);
    const bodyText = await page.evaluate(() => document.body.innerText);
    const missingDialog = MISSING_TEXT.test(bodyText);
    const prompt = await page.evaluate(async () => (await window.app.graphToPrompt()).output);
    // Shrink the run to the test's scale, as a user edits widgets, then press Run.
    await page.evaluate((tweaks) => {
      for (const [id, values] of Object.entries(tweaks)) {
        const node = window.app.graph.getNodeById(Number(id));
        for (const [name, value] of Object.entries(values)) {
          const widget = node.widgets.find((w) => w.name === name);
          widget.value = value;
          if (widget.callback) widget.callback(value);
        }
      }
      window.app.graph.setDirtyCanvas(true, true);
      const api = window.app.api;
      window.__relightvidOutcome = null;
      for (const type of ['execution_success', 'execution_error', 'execution_interrupted']) {
        api.addEventListener(type, (event) => { window.__relightvidOutcome = { type, detail: event.detail }; });
      }
    }, workflow.tweaks);
    const started = Date.now();
    let queuedBy = 'Run button';
    const run = page.getByRole('button', { name: /^Run$/ }).first();
    if (await run.count()) {
      await run.click();
    } else {
      queuedBy = 'app.queuePrompt';
      await page.evaluate(() => window.app.queuePrompt(0, 1));
    }
    await page.waitForFunction(() => window.__relightvidOutcome !== null, null, { timeout: workflow.timeoutMs });
    const elapsedMs = Date.now() - started;
    const outcome = await page.evaluate(() => window.__relightvidOutcome);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: workflow.screenshot });
    results.push({ name: workflow.name, opened, queuedBy, missingDialog, prompt, outcome, elapsedMs, errors });
    await page.close();
  }
  return results;
}

// Open each UI workflow as a user does and screenshot its opening view (no run).
async function view(context, job) {
  const results = [];
  for (const workflow of job.workflows) {
    const errors = [];
    const page = await openPage(context, job.url, errors);
    await (await page.$('#comfy-file-input')).setInputFiles(workflow.path);
    await page.waitForFunction((n) => window.app.graph.nodes.length === n, workflow.nodeCount, { timeout: 30000 });
    await page.waitForTimeout(2000);
    await page.screenshot({ path: workflow.screenshot });
    results.push({ name: workflow.name, errors });
    await page.close();
  }
  return results;
}

// The Templates browser on this pack's category: every card's title and whether its thumbnail loaded.
async function templates(context, job) {
  const errors = [];
  const page = await openPage(context, job.url, errors);
  await page.evaluate(() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates'));
  await page.getByText(job.category, { exact: true }).first().click({ timeout: 30000 });
  await page.waitForTimeout(3000);
  // Cards below the fold load their pictures lazily: bring each into view first.
  const count = await page.locator('img').count();
  for (let index = 0; index < count; index += 1) {
    await page.locator('img').nth(index).scrollIntoViewIfNeeded().catch(() => {});
  }
  await page.waitForTimeout(2000);
  // The frontend shows each thumbnail from a blob: URL, so a card is found by its title (the template's name).
  const cards = await page.evaluate((names) => names.map((name) => {
    const label = [...document.querySelectorAll('*')]
      .find((element) => element.childElementCount === 0 && element.textContent.trim() === name);
    let card = label;
    while (card && !card.querySelector('img')) card = card.parentElement;
    const img = card ? card.querySelector('img') : null;
    return { name, found: Boolean(label), loaded: Boolean(img && img.complete && img.naturalWidth > 0), width: img ? img.naturalWidth : 0 };
  }), job.names);
  await page.screenshot({ path: job.screenshot });
  await page.close();
  return [{ cards, errors }];
}

// Queue one workflow with widget edits and screenshot the sampler while it samples (its latent preview).
async function preview(context, job) {
  const errors = [];
  const page = await openWorkflow(context, job, errors);
  await page.evaluate((w) => {
    // Count the sampler's preview images and fingerprint each, so the test can tell one still from a clip.
    window.__previews = 0;
    window.__fingerprints = [];
    window.app.api.addEventListener('b_preview_with_metadata', ({ detail }) => {
      if (String(detail.displayNodeId) !== String(w.samplerId)) return;
      window.__previews += 1;
      detail.blob.arrayBuffer().then((buffer) => {
        let hash = 0;
        for (const byte of new Uint8Array(buffer)) hash = (hash * 31 + byte) >>> 0;
        window.__fingerprints.push(hash);
      });
    });
    const canvas = window.app.canvas;
    canvas.ds.scale = w.scale;
    const node = window.app.graph.getNodeById(Number(w.samplerId));
    canvas.ds.offset = [-node.pos[0] + 40 / w.scale, -node.pos[1] + 80 / w.scale];
    canvas.setDirty(true, true);
  }, job);
  await page.evaluate(() => window.app.queuePrompt(0, 1));
  await page.waitForFunction((n) => window.__previews >= n, job.previews, { timeout: job.timeoutMs });
  await page.waitForTimeout(1500);
  await page.screenshot({ path: job.screenshot });
  const seen = await page.evaluate(() => window.__previews);
  const fingerprints = await page.evaluate(() => window.__fingerprints);
  await page.evaluate(() => window.app.api.interrupt());
  await page.waitForTimeout(3000);
  await page.close();
  return [{ previews: seen, fingerprints, errors }];
}

// Queue one workflow with widget edits the server refuses: what the user is shown (the dialog's text, the
// node errors the canvas marks), and a screenshot.
async function refuse(context, job) {
  const errors = [];
  const page = await openWorkflow(context, job, errors);
  const before = await page.evaluate(() => document.body.innerText);
  const run = page.getByRole('button', { name: /^Run$/ }).first();
  if (await run.count()) await run.click();
  else await page.evaluate(() => window.app.queuePrompt(0, 1));
  await page.waitForFunction((text) => document.body.innerText.includes(text), job.expect, { timeout: 60000 });
  await page.waitForTimeout(1500);
  await page.screenshot({ path: job.screenshot });
  const shown = await page.evaluate(() => document.body.innerText);
  const nodeErrors = await page.evaluate(() => window.app.lastNodeErrors);
  const marked = await page.evaluate(() => window.app.graph.nodes
    .flatMap((node) => (node.inputs || []).filter((slot) => slot.hasErrors).map((slot) => `${node.id}.${slot.name}`)));
  await page.close();
  return [{ before, shown, nodeErrors, marked, errors }];
}

const COMMANDS = { build, check, view, templates, preview, refuse };

(async () => {
  const [command, jobPath] = process.argv.slice(2);
  const job = JSON.parse(fs.readFileSync(jobPath, 'utf8'));
  // A fresh profile folder per run (the persistent context is how playwright takes --user-data-dir).
  const context = await chromium.launchPersistentContext(job.profile, {
    executablePath: job.chromium, args: FLAGS, headless: true, viewport: { width: 1800, height: 1100 },
  });
  try {
    const results = await COMMANDS[command](context, job);
    process.stdout.write(JSON.stringify(results));
  } finally {
    await context.close();
  }
})().catch((error) => { console.error(error); process.exit(1); });
