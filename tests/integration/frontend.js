// Drive ComfyUI's web frontend in headless Debian chromium (playwright-core, never a browser download).
//
//   node frontend.js build JOB.json   API graphs -> UI workflows saved by the frontend itself (stdout: JSON)
//   node frontend.js check JOB.json   open each UI workflow as a user does, convert, queue, screenshot (stdout: JSON)
//   node frontend.js view JOB.json    open each UI workflow and screenshot its opening view
//   node frontend.js templates JOB.json  the Templates browser on one pack's category: thumbnails, screenshot
//   node frontend.js preview JOB.json    run one workflow and screenshot the sampler's latent preview
//   node frontend.js refuse JOB.json     queue one workflow with a bad widget: the error dialog's text, screenshot
//   node frontend.js opening JOB.json    each UI workflow's opening view on a page of job.viewport: rectangles
//                                        of nodes, groups and what covers the canvas, the Note's font; screenshot
//   node frontend.js models JOB.json     each UI workflow opened with the missing-models warning on: the dialog
//
// JOB.json: {"url": ..., "chromium": "/usr/bin/chromium", "workflows": [...]} (see build_workflows.py and
// test_frontend.py for the entries). Page errors are collected; benign 404s of optional resources are not.
const fs = require('fs');
const { chromium } = require('playwright-core');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const MISSING_TEXT = /missing node types|nodes are missing|missing nodes/i;

async function openPage(context, url, errors, viewport = null) {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
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
      const frame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      await app.loadApiJson(w.api, `${w.name}.json`);
      for (const node of app.graph.nodes) {
        for (const widget of node.widgets || []) {
          if (widget.name === 'control_after_generate') widget.value = 'fixed';
        }
        // The frontend's missing-models metadata: {name, url, directory} of the files the node's widgets name.
        if (w.models[String(node.id)]) node.properties.models = w.models[String(node.id)];
      }
      const note = LiteGraph.createNode('Note');
      note.title = 'Read me: files, folders and time';
      note.widgets[0].value = w.note;
      app.graph.add(note);
      note.size = [w.noteWidth, 200];
      const titleHeight = LiteGraph.NODE_TITLE_HEIGHT;
      const byId = (id) => {
        const node = app.graph.getNodeById(Number(id));
        return node && node !== note ? node : null; // the Note may have taken a free id
      };
      // Load Video/Image grow by their preview once a file is picked: keep room for it below them.
      const height = (node) => node.size[1] + (w.previewTypes.includes(node.type) ? w.previewHeight : 0);
      const measure = document.createElement('canvas').getContext('2d');
      // One group at (left, top): its lines of nodes, columns side by side (each stacked top to bottom) or, with
      // direction 'rows', rows top to bottom (each laid left to right); the group is as wide as its nodes and its
      // title, so no title runs into the next group.
      const placeGroup = ([title, color, lines, direction = 'columns'], left, top) => {
        const group = new LiteGraph.LGraphGroup(title);
        group.color = color;
        const pad = w.groupPadding;
        const bodyTop = top + group.titleHeight + pad + titleHeight;
        let right = null;
        let bottom = null;
        let lineStart = direction === 'rows' ? bodyTop : left + pad;
        for (const line of lines) {
          const nodes = line.map(byId).filter(Boolean);
          if (!nodes.length) continue;
          let [x, y] = direction === 'rows' ? [left + pad, lineStart] : [lineStart, bodyTop];
          for (const node of nodes) {
            node.pos = [x, y];
            right = Math.max(right ?? 0, x + node.size[0]);
            bottom = Math.max(bottom ?? 0, y + height(node));
            if (direction === 'rows') x += node.size[0] + w.gap;
            else y += height(node) + titleHeight + w.gap;
          }
          lineStart = direction === 'rows' ? bottom + titleHeight + w.gap : right + w.gap;
        }
        if (bottom === null) return null;
        measure.font = `${group.font_size}px ${LiteGraph.GROUP_FONT}`;
        const titleWidth = measure.measureText(title).width + 2 * LiteGraph.LGraphGroup.padding;
        app.graph.add(group);
        group.pos = [left, top];
        group.size = [Math.max(right + pad - left, titleWidth + 2 * pad), bottom + pad - top];
        return group;
      };
      // The graph: stacks of groups, left to right.
      const top = w.origin[1];
      let x = w.origin[0];
      for (const stack of w.stacks) {
        let y = top;
        let right = null;
        for (const spec of stack) {
          const group = placeGroup(spec, x, y);
          if (!group) continue;
          y = group.pos[1] + group.size[1] + w.gap;
          right = Math.max(right ?? 0, group.pos[0] + group.size[0]);
        }
        if (right !== null) x = right + w.gap;
      }
      // The opening view, right of the graph: the Note, then the opening groups, at view.scale.
      const openLeft = x - w.gap + w.openingGap;
      note.pos = [openLeft, top + titleHeight];
      const ds = app.canvas.ds;
      ds.scale = w.view.scale;
      ds.offset = [w.view.left / w.view.scale - openLeft, w.view.top / w.view.scale - top];
      // The Note as tall as its text at its width (the textarea is laid out in graph units, then scaled).
      for (let attempt = 0; attempt < 8; attempt += 1) {
        app.canvas.setDirty(true, true);
        app.canvas.draw(true, true);
        await frame();
        await new Promise((resolve) => setTimeout(resolve, 150));
        const area = note.widgets[0].inputEl;
        const missing = area.scrollHeight - area.clientHeight;
        if (area.clientHeight > 0 && missing <= 0) break;
        note.size = [w.noteWidth, note.size[1] + Math.max(missing, 20) + 4];
      }
      let groupLeft = openLeft + note.size[0] + w.gap;
      for (const spec of w.openingGroups) {
        const group = placeGroup(spec, groupLeft, top);
        if (group) groupLeft = group.pos[0] + group.size[0] + w.gap;
      }
      app.graph.setDirtyCanvas(true, true);
      return { graph: app.graph.serialize(), ds: { scale: ds.scale, offset: [...ds.offset] } };
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

// What the opening view of each UI workflow shows on a page of job.viewport, in screen pixels: the canvas,
// every node's rectangle (title bar included) and every group's (with its title's drawn width and its nodes),
// everything that covers part of the canvas (minimap, canvas menu, workflow tabs, the canvas info text), and the
// Note's font size as drawn and whether its whole text shows.
async function opening(context, job) {
  const results = [];
  for (const workflow of job.workflows) {
    const errors = [];
    const page = await openPage(context, job.url, errors, job.viewport);
    await (await page.$('#comfy-file-input')).setInputFiles(workflow.path);
    await page.waitForFunction((n) => window.app.graph.nodes.length === n, workflow.nodeCount, { timeout: 30000 });
    await page.waitForTimeout(2500);
    const view = await page.evaluate(() => {
      const { app, LiteGraph } = window;
      const canvas = app.canvas.canvas;
      const box = canvas.getBoundingClientRect();
      const { scale, offset } = app.canvas.ds;
      const screen = ([x, y, w, h]) => [box.left + (x + offset[0]) * scale, box.top + (y + offset[1]) * scale, w * scale, h * scale];
      const titleHeight = LiteGraph.NODE_TITLE_HEIGHT;
      const nodes = app.graph.nodes.map((node) => ({
        id: String(node.id),
        type: node.type,
        rect: screen([node.pos[0], node.pos[1] - titleHeight, node.size[0], node.size[1] + titleHeight]),
      }));
      const measure = document.createElement('canvas').getContext('2d');
      const groups = app.graph.groups.map((group) => {
        group.recomputeInsideNodes();
        measure.font = `${group.font_size}px ${LiteGraph.GROUP_FONT}`;
        return {
          title: group.title,
          rect: screen([group.pos[0], group.pos[1], group.size[0], group.size[1]]),
          titleWidth: (measure.measureText(group.title).width + 2 * LiteGraph.LGraphGroup.padding) * scale,
          nodes: group.nodes.map((node) => String(node.id)),
        };
      });
      const covers = [];
      const area = box.width * box.height;
      for (const element of document.querySelectorAll('body *')) {
        const style = getComputedStyle(element);
        if (!['absolute', 'fixed'].includes(style.position) || style.display === 'none') continue;
        if (style.visibility === 'hidden' || Number(style.opacity) === 0) continue;
        if (element.closest('.dom-widget') || element.contains(canvas)) continue;
        const r = element.getBoundingClientRect();
        const overlaps = r.right > box.left && r.left < box.right && r.bottom > box.top && r.top < box.bottom;
        if (r.width < 2 || r.height < 2 || !overlaps || r.width * r.height > area / 2) continue;
        covers.push({ what: String(element.className?.baseVal ?? element.className).slice(0, 60), rect: [r.left, r.top, r.width, r.height] });
      }
      // LGraphCanvas.renderInfo draws five 13 px lines from 80 px above the canvas's bottom, 10 px from its left.
      if (app.canvas.show_info) covers.push({ what: 'canvas info', rect: [box.left + 10, box.top + canvas.offsetHeight - 80, 80, 70] });
      const note = app.graph.nodes.find((node) => node.type === 'Note');
      const text = note.widgets[0].inputEl;
      const drawn = text.getBoundingClientRect();
      return {
        canvas: [box.left, box.top, box.width, box.height],
        scale,
        nodes,
        groups,
        covers,
        note: {
          id: String(note.id),
          fontPx: parseFloat(getComputedStyle(text).fontSize) * (drawn.height / text.offsetHeight),
          shown: drawn.height > 0 && getComputedStyle(text).display !== 'none',
          overflow: text.scrollHeight - text.clientHeight,
        },
      };
    });
    await page.screenshot({ path: workflow.screenshot });
    results.push({ name: workflow.name, ...view, errors });
    await page.close();
  }
  return results;
}

// Each UI workflow opened as a user opens a file, with the missing-models warning on: the dialog's entries
// (label, the Download button's address and whether it is enabled), or none when no dialog shows.
async function models(context, job) {
  const results = [];
  for (const workflow of job.workflows) {
    const errors = [];
    const page = await openPage(context, job.url, errors);
    await (await page.$('#comfy-file-input')).setInputFiles(workflow.path);
    await page.waitForFunction((n) => window.app.graph.nodes.length === n, workflow.nodeCount, { timeout: 30000 });
    await page.waitForTimeout(2500);
    const entries = await page.evaluate(() => [...document.querySelectorAll('.comfy-missing-models li')].map((item) => {
      const buttons = [...item.querySelectorAll('button')];
      const download = buttons.find((button) => button.title);
      return {
        text: item.innerText.replace(/\s+/g, ' ').trim(),
        url: download ? download.title : null,
        enabled: Boolean(download) && !download.disabled,
      };
    }));
    await page.screenshot({ path: workflow.screenshot });
    results.push({ name: workflow.name, entries, errors });
    await page.close();
  }
  return results;
}

const COMMANDS = { build, check, view, templates, preview, refuse, opening, models };

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
