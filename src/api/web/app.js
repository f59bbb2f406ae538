// petal's web page: plain JavaScript over petal's own API, with the session cookie that
// POST /api/v1/session sets. Views are chosen by the URL's fragment (#/studies,
// #/study/UID, #/series/STUDY/SERIES, #/patient/KEY), so the back button and bookmarks work.
'use strict';

const state = { csrf: sessionStorage.getItem('petal-csrf'), me: null, refresh: null };
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = { Accept: 'application/json' };
  const method = options.method || 'GET';
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error(data && data.error ? data.error.message : response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function say(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

// DICOM JSON: the first value of a tag, as text.
function tag(dataset, key) {
  const element = dataset[key];
  if (!element || !element.Value || element.Value.length === 0) return '';
  const value = element.Value[0];
  return typeof value === 'object' && value !== null ? (value.Alphabetic || '') : String(value);
}

function cell(row, content) {
  const td = document.createElement('td');
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  row.appendChild(td);
  return td;
}

function link(text, href) {
  const a = document.createElement('a');
  a.textContent = text;
  a.href = href;
  return a;
}

function button(text, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.addEventListener('click', onClick);
  return b;
}

function show(view) {
  for (const section of document.querySelectorAll('main > section')) section.hidden = section.id !== `view-${view}`;
  if (state.refresh) { clearInterval(state.refresh); state.refresh = null; }
}

async function signIn(event) {
  event.preventDefault();
  try {
    const session = await api('/api/v1/session', { method: 'POST', body: { token: $('token').value } });
    $('token').value = '';
    state.csrf = session.csrf_token;
    sessionStorage.setItem('petal-csrf', state.csrf);
    say('');
    await route();
  } catch (error) {
    say(`Sign-in failed: ${error.message}`, true);
  }
}

async function signOut() {
  try { await api('/api/v1/session', { method: 'DELETE' }); } catch (_) { /* the session is gone either way */ }
  sessionStorage.removeItem('petal-csrf');
  state.csrf = null;
  state.me = null;
  location.hash = '#/studies';
  await route();
}

async function studies() {
  show('studies');
  const found = (await api('/dicomweb/studies?limit=200')) || [];
  const body = $('studies');
  body.replaceChildren();
  found.sort((a, b) => tag(b, '00080020').localeCompare(tag(a, '00080020')));
  for (const study of found) {
    const row = document.createElement('tr');
    const uid = tag(study, '0020000D');
    cell(row, link(tag(study, '00100010') || tag(study, '00100020') || 'unnamed', `#/study/${uid}`));
    cell(row, tag(study, '00080020'));
    cell(row, tag(study, '00081030'));
    cell(row, tag(study, '00201206'));
    body.appendChild(row);
  }
  if (found.length === 0) say('No studies yet.');
}

async function study(studyUid) {
  show('study');
  const series = (await api(`/dicomweb/studies/${studyUid}/series`)) || [];
  const body = $('series');
  body.replaceChildren();
  for (const item of series) {
    const uid = tag(item, '0020000E');
    const row = document.createElement('tr');
    cell(row, tag(item, '0008103E') || uid);
    cell(row, tag(item, '00201209'));
    const status = await api(`/api/v1/series/${uid}`).catch(() => null);
    cell(row, status ? status.state + (status.reason ? `: ${status.reason}` : '') : '');
    cell(row, status && status.model_version ? status.model_version.name : '');
    cell(row, status ? forwardSummary(status.forwards || []) : '');
    const view = status && status.state === 'done' && status.derived_series_uid
      ? link('Side by side', `#/series/${studyUid}/${uid}`) : '';
    cell(row, view);
    if (status && status.patient_key) {
      $('study-patient').replaceChildren(link('Model versions and rounds of this patient', `#/patient/${status.patient_key}`));
    }
    body.appendChild(row);
  }
}

// Where a series went, by destination: "pacs: sent; archive: queued (attempt 2: connection
// refused)".
function forwardSummary(forwards) {
  return forwards.map((f) => {
    const detail = f.state === 'sent' ? '' : ` (attempt ${f.attempts}${f.last_error ? `: ${f.last_error}` : ''})`;
    return `${f.destination}: ${f.state}${f.state === 'queued' && f.attempts === 0 ? '' : detail}`;
  }).join('; ');
}

async function instancesOf(studyUid, seriesUid) {
  const found = (await api(`/dicomweb/studies/${studyUid}/series/${seriesUid}/instances`)) || [];
  found.sort((a, b) => Number(tag(a, '00200013')) - Number(tag(b, '00200013')));
  return found.map((i) => tag(i, '00080018'));
}

async function viewer(studyUid, seriesUid) {
  show('viewer');
  // The slider stays disabled until it knows the series' slices: a key pressed earlier
  // would move a range that is about to be replaced.
  const slider = $('slice');
  slider.disabled = true;
  $('slice-number').textContent = '';
  const status = await api(`/api/v1/series/${seriesUid}`);
  const derived = status.derived_series_uid;
  const [original, denoised] = await Promise.all([instancesOf(studyUid, seriesUid), instancesOf(studyUid, derived)]);
  const version = status.model_version ? `${status.model_version.name} (version ${status.model_version.id})` : 'unknown';
  $('viewer-info').textContent = `${original.length} slices; denoised by ${version}.`;
  slider.max = String(original.length);
  slider.value = String(Math.ceil(original.length / 2));
  slider.disabled = false;
  const draw = () => {
    const n = Number(slider.value);
    const max = Math.max(0.5, Number($('suv-max').value) || 6);
    const window = `window=${max / 2},${max}`;
    $('slice-number').textContent = `${n} of ${original.length}`;
    $('image-original').src = `/dicomweb/studies/${studyUid}/series/${seriesUid}/instances/${original[n - 1]}/rendered?${window}`;
    $('image-original').alt = `Original slice ${n}, SUV 0 to ${max}`;
    $('image-denoised').src = `/dicomweb/studies/${studyUid}/series/${derived}/instances/${denoised[n - 1]}/rendered?${window}`;
    $('image-denoised').alt = `Denoised slice ${n}, SUV 0 to ${max}`;
    Promise.all([original[n - 1], denoised[n - 1]].map((uid) => api(`/api/v1/instances/${uid}/suv`)))
      .then(([a, b]) => {
        if (Number(slider.value) !== n) return;
        $('suv-readout').textContent = `SUVmax in slice ${n}: original ${a.suv_max.toFixed(2)}, denoised ${b.suv_max.toFixed(2)}`;
        $('suv-readout').dataset.instance = a.sop_instance_uid;
      })
      .catch((error) => { $('suv-readout').textContent = `SUV: ${error.message}`; });
  };
  slider.oninput = draw;
  $('suv-max').oninput = draw;
  draw();
}

function lossCurve(losses) {
  const svg = $('loss-curve');
  svg.replaceChildren();
  if (!losses || losses.length < 2) return;
  const values = losses.map((p) => p.loss);
  const top = Math.max(...values);
  const bottom = Math.min(...values);
  const points = losses.map((p, i) => {
    const x = 5 + (390 * i) / (losses.length - 1);
    const y = 115 - (110 * (p.loss - bottom)) / Math.max(top - bottom, 1e-12);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points.join(' '));
  svg.appendChild(line);
  $('loss-caption').textContent = `Training loss by step: ${values[0].toFixed(4)} at first, ${values[values.length - 1].toFixed(4)} at the end`;
}

async function showReport(versionId) {
  const version = await api(`/api/v1/models/${versionId}`);
  const report = version.report ? JSON.parse(version.report) : null;
  $('report').hidden = false;
  $('report-title').textContent = `Report of ${version.name} (version ${version.id})`;
  const summary = $('report-summary');
  summary.replaceChildren();
  const add = (term, text) => {
    const dt = document.createElement('dt'); dt.textContent = term;
    const dd = document.createElement('dd'); dd.textContent = text;
    summary.append(dt, dd);
  };
  if (!report || !report.round) { add('Report', version.report || 'none'); return; }
  const round = report.round;
  add('Pair', `${report.pair_source}`);
  add('Parameters retrained', `${(100 * round.fraction_retrained).toFixed(1)} %`);
  add('Held-out N2N loss', `${round.validation_loss_parent.toFixed(5)} (parent), ${round.validation_loss.toFixed(5)} (this version)`);
  add('Gate', report.gate.passed ? 'passed' : `failed: ${report.gate.reasons.join('; ')}`);
  const m = report.gate.measures;
  const num = (v, unit) => (v === null || v === undefined ? 'n/a' : `${v.toFixed(2)}${unit}`);
  const pair = (parent, mine, unit) => `${num(parent, unit)} (parent), ${num(mine, unit)} (this version)`;
  if (m.error_change) {
    const e = m.error_change;
    const pct = (v) => `${v >= 0 ? '+' : ''}${v.toFixed(2)} %`;
    add('Estimated error against the clean image', `${pct(e.change_percent)} (${Math.round(100 * e.confidence)} % interval ${pct(e.low_percent)} to ${pct(e.high_percent)}, ${e.blocks} held-out blocks; noise is ${e.noise_share_percent.toFixed(0)} % of the N2N loss)`);
  }
  if (m.drift) {
    const d = m.drift;
    add('Mean SUV against the input, on the held-out slices', `body ${pair(d.body_parent_percent, d.body_percent, ' %')}, uniform regions ${pair(d.uniform_parent_percent, d.uniform_percent, ' %')}`);
  }
  add('SUV changes against the parent', `body ${m.body_mean_change_percent.toFixed(2)} %, uniform regions ${m.uniform_mean_change_percent === null ? 'n/a' : m.uniform_mean_change_percent.toFixed(2) + ' %'}, hot spots ${m.hot_spot_max_change_percent === null ? 'n/a' : m.hot_spot_max_change_percent.toFixed(2) + ' %'}`);
  if (m.as_used) {
    const u = m.as_used;
    const on = u.series === 'full_count' ? 'the full-count series' : 'half A';
    add(`Mean SUV against the input, on ${on}`, `body ${pair(u.body_mean_drift_parent_percent, u.body_mean_drift_percent, ' %')}; uniform regions ${pair(u.uniform_mean_drift_parent_percent, u.uniform_mean_drift_percent, ' %')}`);
    add(`Hot spots of the input, on ${on}`, `${u.input_hot_spots} found; SUVpeak ${num(u.hot_spot_peak_further_points, ' points')} further from the input than the parent's; SUVmax ${num(u.hot_spot_max_beyond_percent, ' %')} beyond the range between the parent's and the input's`);
    add(`Noise in uniform regions, on ${on}`, `${num(u.noise_input_percent, ' %')} (input), ${pair(u.noise_parent_percent, u.noise_percent, ' %')}`);
    add(`Hot spots the input does not show, on ${on}`, `${u.new_hot_spots_parent} (parent), ${u.new_hot_spots} (this version)`);
  }
  lossCurve(round.losses);
  const layers = $('report-layers');
  layers.replaceChildren();
  for (const layer of (round.passes[0] || { layers: [] }).layers) {
    const row = document.createElement('tr');
    cell(row, layer.layer);
    cell(row, `${layer.channels_retrained} of ${layer.retrain.length}`);
    cell(row, `${layer.parameters_retrained} of ${layer.parameters}`);
    layers.appendChild(row);
  }
}

async function patient(key) {
  show('patient');
  const isAdmin = state.me && state.me.role === 'admin';
  for (const element of document.querySelectorAll('.admin-only')) element.hidden = !isAdmin;
  $('patient-title').textContent = `Patient ${key}`;
  const models = await api(`/api/v1/patients/${key}/models`);
  $('active-version').textContent = models.active_version === 0
    ? 'Active: the base model (version 0).' : `Active: version ${models.active_version}.`;
  const body = $('versions');
  body.replaceChildren();
  const rows = [];
  if (models.base) rows.push({ ...models.base, id: 0, label: `0: base model (${models.base.name})` });
  for (const v of models.versions) rows.push({ ...v, label: `${v.id}: ${v.name}` });
  for (const v of rows) {
    const row = document.createElement('tr');
    cell(row, v.label + (models.active_version === v.id ? ' (active)' : ''));
    cell(row, v.created_by || 'petal');
    cell(row, v.round_state || '');
    cell(row, v.created_ms ? new Date(v.created_ms).toLocaleString() : '');
    const actions = cell(row, '');
    if (v.id !== 0) actions.appendChild(button(`Report of version ${v.id}`, () => showReport(v.id)));
    if (isAdmin && models.active_version !== v.id && v.round_state !== 'rejected') {
      actions.appendChild(button(`Activate version ${v.id}`, async () => {
        try {
          await api(`/api/v1/patients/${key}/models/${v.id}/activate`, { method: 'POST' });
          say(`Version ${v.id} is active.`);
          await patient(key);
        } catch (error) { say(error.message, true); }
      }));
    }
    body.appendChild(row);
  }
  await rounds(key);
  state.refresh = setInterval(() => rounds(key).catch(() => {}), 2000);
}

async function rounds(key) {
  const listed = await api(`/api/v1/patients/${key}/rounds`);
  const isAdmin = state.me && state.me.role === 'admin';
  const body = $('rounds');
  body.replaceChildren();
  for (const r of listed.rounds) {
    const row = document.createElement('tr');
    cell(row, `${r.id} (${r.pair.source})`);
    cell(row, r.state + (r.error ? `: ${r.error}` : ''));
    cell(row, `step ${r.progress.step} of ${r.progress.total_steps}`);
    cell(row, r.progress.loss === null ? '' : r.progress.loss.toFixed(5));
    cell(row, r.progress.eta_seconds === null ? '' : `${Math.round(r.progress.eta_seconds)} s`);
    const actions = cell(row, '');
    if (isAdmin && (r.state === 'queued' || r.state === 'running')) {
      actions.appendChild(button(`Cancel round ${r.id}`, async () => {
        try { await api(`/api/v1/rounds/${r.id}/cancel`, { method: 'POST' }); say(`Round ${r.id}: cancel requested.`); await rounds(key); }
        catch (error) { say(error.message, true); }
      }));
    }
    body.appendChild(row);
  }
}

async function startRound() {
  const key = location.hash.split('/')[2];
  try {
    const round = await api(`/api/v1/patients/${key}/rounds`, { method: 'POST', body: {} });
    say(`Round ${round.id} is queued.`);
    await rounds(key);
  } catch (error) { say(error.message, true); }
}

async function route() {
  try {
    if (!state.me) {
      // A new tab brings the session cookie but not the CSRF token: ask for it.
      const session = await api('/api/v1/session');
      state.me = { name: session.name, role: session.role };
      if (session.csrf_token) {
        state.csrf = session.csrf_token;
        sessionStorage.setItem('petal-csrf', state.csrf);
      }
    }
  } catch (error) {
    if (error.status === 401) {
      $('account').hidden = true;
      show('sign-in');
      $('token').focus();
      return;
    }
    say(error.message, true);
    return;
  }
  $('account').hidden = false;
  $('whoami').textContent = `${state.me.name} (${state.me.role})`;
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  try {
    if (parts[0] === 'study' && parts[1]) await study(parts[1]);
    else if (parts[0] === 'series' && parts[2]) await viewer(parts[1], parts[2]);
    else if (parts[0] === 'patient' && parts[1]) await patient(parts[1]);
    else await studies();
  } catch (error) {
    say(error.message, true);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('start-round').addEventListener('click', startRound);
  window.addEventListener('hashchange', () => { say(''); route(); });
  route();
});
