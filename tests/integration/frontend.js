// Drive ComfyUI's web frontend in headless Debian chromium (playwright-core, never a browser download).
//
//   node frontend.js build JOB.json   API graphs -> UI workflows saved by the frontend itself (stdout: JSON)
//   node frontend.js check JOB.json   open each UI workflow as a user does, convert, queue, screenshot (stdout: JSON)
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
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(url, { waitUntil: 'networkidle', timeout: 120000 });
  await page.waitForFunction(() => window.app && window.app.graph && window.LiteGraph, null, { timeout: 120000 });
  await page.waitForTimeout(1000);
  return page;
}

async function build(context, job) {
  const results = [];
  for (const workflow of job.workflows) {
    const errors = [];
    const page = await openPage(context, job.url, errors);
    const graph = await page.evaluate(async (w) => {
      const app = window.app;
      await app.loadApiJson(w.api, `${w.name}.json`);
      for (const node of app.graph.nodes) {
        const cell = w.layout[String(node.id)];
        if (cell) node.pos = [w.origin[0] + cell[0] * w.cell[0], w.origin[1] + cell[1] * w.cell[1]];
        for (const widget of node.widgets || []) {
          if (widget.name === 'control_after_generate') widget.value = 'fixed';
        }
      }
      const note = window.LiteGraph.createNode('Note');
      note.pos = [w.origin[0], w.origin[1]];
      note.size = [840, 180];
      note.title = 'Read me: files and folders';
      note.widgets[0].value = w.note;
      app.graph.add(note);
      app.graph.setDirtyCanvas(true, true);
      return app.graph.serialize();
    }, workflow);
    results.push({ name: workflow.name, graph, errors });
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
    let queuedBy = 'Run button';
    const run = page.getByRole('button', { name: /^Run$/ }).first();
    if (await run.count()) {
      await run.click();
    } else {
      queuedBy = 'app.queuePrompt';
      await page.evaluate(() => window.app.queuePrompt(0, 1));
    }
    await page.waitForFunction(() => window.__relightvidOutcome !== null, null, { timeout: workflow.timeoutMs });
    const outcome = await page.evaluate(() => window.__relightvidOutcome);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: workflow.screenshot });
    results.push({ name: workflow.name, opened, queuedBy, missingDialog, prompt, outcome, errors });
    await page.close();
  }
  return results;
}

(async () => {
  const [command, jobPath] = process.argv.slice(2);
  const job = JSON.parse(fs.readFileSync(jobPath, 'utf8'));
  // A fresh profile folder per run (the persistent context is how playwright takes --user-data-dir).
  const context = await chromium.launchPersistentContext(job.profile, {
    executablePath: job.chromium, args: FLAGS, headless: true, viewport: { width: 1800, height: 1100 },
  });
  try {
    const results = command === 'build' ? await build(context, job) : await check(context, job);
    process.stdout.write(JSON.stringify(results));
  } finally {
    await context.close();
  }
})().catch((error) => { console.error(error); process.exit(1); });
