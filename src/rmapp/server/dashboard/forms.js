// The dashboard's forms: starting a run (fields generated from the workflow's input JSON Schema, which
// GET /api/workflows gives from its zod schema) and sending an event to a run (the events its current
// state accepts, with an optional JSON payload). Both POST under the API's CSRF header rule.
import { esc, plain } from '/html.js';

/** Form fields for an object schema's properties; one JSON box for any other schema. */
export function schemaFields(schema) {
  if (!schema || schema.type !== 'object' || !schema.properties) {
    return '<label>Input (JSON)<textarea name="$json" data-kind="whole" rows="4">{}</textarea></label>';
  }
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties).map(([name, p]) => {
    const req = required.has(name) ? ' required' : '';
    const label = `<span>${esc(name)}${req ? ' *' : ''}</span>`;
    const title = p.description ? ` title="${esc(p.description)}"` : '';
    const attrs = `name="${esc(name)}"${req}`;
    if (Array.isArray(p.enum)) {
      const options = p.enum.map((v) => `<option value="${esc(JSON.stringify(v))}">${esc(v)}</option>`).join('');
      return `<label${title}>${label}<select ${attrs} data-kind="json">${req ? '' : '<option value=""></option>'}${options}</select></label>`;
    }
    if (p.type === 'boolean')
      return `<label${title} class="check"><input type="checkbox" name="${esc(name)}" data-kind="boolean"> ${label}</label>`;
    if (p.type === 'integer' || p.type === 'number') {
      const bounds = `${p.minimum !== undefined ? ` min="${p.minimum}"` : ''}${p.maximum !== undefined ? ` max="${p.maximum}"` : ''}`;
      return `<label${title}>${label}<input type="number" ${attrs} data-kind="number" step="${p.type === 'integer' ? 1 : 'any'}"${bounds}></label>`;
    }
    if (p.type === 'string') {
      const bounds = `${p.minLength ? ` minlength="${p.minLength}"` : ''}${p.maxLength ? ` maxlength="${p.maxLength}"` : ''}`;
      return `<label${title}>${label}<input type="text" ${attrs} data-kind="string"${bounds}></label>`;
    }
    return `<label${title}>${label} <span class="muted">(JSON)</span><textarea ${attrs} data-kind="json" rows="2"></textarea></label>`;
  });
  return fields.join('') || '<p class="muted">This workflow takes no input.</p>';
}

/** The input the form describes; an Error naming the field when a JSON field does not parse. */
export function readFields(form) {
  const parse = (text, what) => {
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${what} is not valid JSON.`);
    }
  };
  const whole = form.querySelector('[data-kind="whole"]');
  if (whole) return parse(whole.value || '{}', 'The input');
  const input = {};
  for (const el of form.querySelectorAll('[data-kind]')) {
    const kind = el.dataset.kind;
    if (kind === 'boolean') input[el.name] = el.checked;
    else if (el.value === '') continue;
    else if (kind === 'number') input[el.name] = Number(el.value);
    else if (kind === 'json') input[el.name] = parse(el.value, `Field "${el.name}"`);
    else input[el.name] = el.value;
  }
  return input;
}

async function post(path, body) {
  const res = await fetch(`/api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-rmapp-request': '1' },
    body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(answer.error || `${res.status} ${res.statusText}`);
  return answer;
}

/** The "Start a run" form in `container`; `onStarted(id)` when a run was created. */
export function startForm(container, workflows, onStarted) {
  if (!workflows.length) {
    container.innerHTML = '';
    return;
  }
  container.innerHTML = `<details id="start"><summary>Start a run</summary><form id="start-form">
    <label><span>Workflow</span><select name="workflow" id="start-workflow">${workflows.map((w) => `<option value="${esc(w.name)}">${esc(w.name)}</option>`).join('')}</select></label>
    <div id="start-fields" class="fields"></div>
    <label><span>Idempotency key</span><input type="text" id="start-key" placeholder="optional: starting twice with one key gives the first run"></label>
    <button type="submit">Start</button> <span id="start-result" class="muted"></span></form></details>`;
  const form = container.querySelector('#start-form');
  const select = container.querySelector('#start-workflow');
  const fields = container.querySelector('#start-fields');
  const show = () => (fields.innerHTML = schemaFields(workflows.find((w) => w.name === select.value)?.inputSchema));
  select.onchange = show;
  show();
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const result = container.querySelector('#start-result');
    try {
      const key = container.querySelector('#start-key').value;
      const { id } = await post('/runs', { workflow: select.value, input: readFields(fields), ...(key ? { idempotencyKey: key } : {}) });
      onStarted(id);
    } catch (err) {
      result.textContent = plain(err.message);
      result.className = 'error';
    }
  };
}

/** Event types the states `active` (ids) accept, from the chart: events, not `done`/`error`/`after`/`always`. */
export function acceptedEvents(chart, active) {
  const out = new Map();
  const walk = (node) => {
    if (active.has(node.id)) {
      for (const t of node.transitions) {
        if (/^(done|error): |^after |^always$|^xstate\./.test(t.label) || t.label === '*') continue;
        out.set(t.label, (out.get(t.label) ?? false) || t.guarded);
      }
    }
    node.states.forEach(walk);
  };
  walk(chart);
  return [...out].map(([type, guarded]) => ({ type, guarded }));
}

/** What the form says of each outcome the API reports (the engine's SendResult). */
const OUTCOMES = {
  received: (type) => `The run took ${type}.`,
  ignored: (type) => `The run ignored ${type}: its state no longer accepts it (a guard, or it moved on).`,
  expired: (type) => `${type} expired in the run's inbox before a state accepted it.`,
  queued: (type) => `${type} is queued: the run takes it when its worker next runs it.`,
  duplicate: (type) => `Not sent: ${type} with this key was sent before.`,
};

/** The "Send an event" form in `container` (kept across re-renders while the accepted events stay the same). */
export function eventForm(container, runId, events, onSent) {
  const signature = events.map((e) => e.type).join('\n');
  if (container.dataset.events === signature) return;
  container.dataset.events = signature;
  if (!events.length) {
    // The run took the event and left the states that accept any: the answer stays in view.
    const last = container.dataset.result;
    container.innerHTML = last ? `<p id="event-result" class="muted">${esc(last)}</p>` : '';
    return;
  }
  container.innerHTML = `<section><h2>Send an event</h2><form id="event-form">
    <label><span>Event</span><select id="event-type">${events.map((e) => `<option value="${esc(e.type)}">${esc(e.type)}${e.guarded ? ' (guarded)' : ''}</option>`).join('')}</select></label>
    <label><span>Payload <span class="muted">(JSON object, optional)</span></span><textarea id="event-payload" rows="2" placeholder='{"comment":"looks good"}'></textarea></label>
    <button type="submit">Send</button> <span id="event-result" class="muted"></span></form></section>`;
  container.querySelector('#event-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const result = container.querySelector('#event-result');
    try {
      const text = container.querySelector('#event-payload').value.trim();
      let payload = {};
      if (text) {
        try {
          payload = JSON.parse(text);
        } catch {
          throw new Error('The payload is not valid JSON.');
        }
      }
      const type = container.querySelector('#event-type').value;
      result.className = 'muted';
      result.textContent = `Sending ${type}…`;
      const answer = await post(`/runs/${encodeURIComponent(runId)}/events?waitMs=3000`, { ...payload, type });
      const outcome = OUTCOMES[answer.outcome] ?? ((t) => `${t}: ${answer.outcome}.`);
      result.className = answer.outcome === 'received' ? 'muted' : 'error';
      result.textContent = outcome(type);
      container.dataset.result = result.textContent;
      onSent();
    } catch (err) {
      result.className = 'error';
      result.textContent = plain(err.message);
    }
  };
}
