// The dashboard page: one stream of server-sent events from the primary (a snapshot of
// the last 15 minutes, then a tick a second, events and log lines as they come), drawn
// with uPlot. When the stream breaks (a reload of the primary's config does not break
// it; an upgrade or a restart of the primary does) the browser reconnects by itself and
// the page keeps what it had, with a gap until the new snapshot.
/* global document, window, EventSource, getComputedStyle, fetch, sessionStorage */
'use strict'

const Plot = window.uPlot

const WINDOW_S = 15 * 60
const MAX_LOG_LINES = 500
const MAX_EVENTS = 200

/** The charts: a figure each (its index in the snapshot's figures), and the cluster's counts. */
const CHARTS = [
  { figure: 'requestsPerSecond', title: 'Requests per second' },
  { figure: 'cpuPercent', title: 'CPU, % of one core' },
  { figure: 'rssMb', title: 'RSS, MiB' },
  { figure: 'heapMb', title: 'Heap used, MiB' },
  { figure: 'loopDelayMs', title: 'Event-loop delay p99, ms' },
  { figure: 'inflight', title: 'In-flight requests' },
  { figure: 'connections', title: 'Open connections' },
  { cluster: true, title: 'Workers: ready and wanted' },
]

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf']
const colourOf = (workerId) => PALETTE[workerId % PALETTE.length]

const state = {
  figures: [],
  /** seconds since the epoch, oldest first */
  times: [],
  ready: [],
  desired: [],
  /** workerId → { pid: [], values: [[...] per figure] }, aligned with times */
  slots: new Map(),
  marks: [],
  logs: [],
  cluster: null,
  charts: [],
  /** the slots the charts were made for; new ones rebuild them */
  charted: '',
}

const $ = (id) => document.getElementById(id)

function connect () {
  const stream = new EventSource('/dashboard/stream')
  const status = $('connection')
  stream.addEventListener('open', () => { status.dataset.state = 'live'; status.textContent = 'live' })
  stream.addEventListener('error', () => {
    status.dataset.state = 'lost'
    status.textContent = 'disconnected: reconnecting…'
    addGap()
  })
  stream.addEventListener('snapshot', (e) => onSnapshot(JSON.parse(e.data)))
  stream.addEventListener('tick', (e) => { addTick(JSON.parse(e.data)); draw() })
  stream.addEventListener('mark', (e) => { addMark(JSON.parse(e.data)); draw() })
  stream.addEventListener('log', (e) => addLog(JSON.parse(e.data)))
}

function onSnapshot (snapshot) {
  const restarted = state.cluster !== null && state.cluster.pid !== snapshot.cluster.pid
  state.cluster = snapshot.cluster
  state.figures = snapshot.figures
  const s = snapshot.series
  const first = s.times.length ? s.times[0] / 1000 : Infinity
  // keep what came before this snapshot (a primary that restarted or was upgraded starts empty)
  const keep = state.times.findIndex((t) => t >= first)
  const cut = keep === -1 ? state.times.length : keep
  state.times.length = cut
  state.ready.length = cut
  state.desired.length = cut
  for (const slot of state.slots.values()) {
    slot.pid.length = cut
    for (const column of slot.values) column.length = cut
  }
  if (cut > 0) addGap()
  for (let i = 0; i < s.times.length; i++) {
    addTick({
      time: s.times[i],
      ready: s.ready[i],
      desired: s.desired[i],
      slots: s.slots.filter((slot) => slot.pid[i] !== null).map((slot) => ({
        workerId: slot.workerId,
        pid: slot.pid[i],
        generation: slot.generation[i],
        values: slot.values.map((column) => column[i]),
      })),
    }, i === s.times.length - 1)
  }
  const seen = new Set(state.marks.map((m) => m.time + m.event + (m.fields.pid ?? '')))
  for (const mark of snapshot.marks) if (!seen.has(mark.time + mark.event + (mark.fields.pid ?? ''))) addMark(mark)
  if (snapshot.logs === null) {
    $('logs').textContent = 'The log is shown only when the metrics listener is on loopback.'
  } else if (!state.logs.length || restarted) {
    state.logs = []
    for (const line of snapshot.logs) addLog(line, false)
    renderLogs()
  }
  setActions(snapshot.actions)
  $('title').textContent = `cluster-run: ${snapshot.cluster.name}`
  document.title = `${snapshot.cluster.name}: cluster-run`
  draw()
}

/** The latest second, as a table: the charts' figures in words. */
function renderNow (tick) {
  const figures = ['requestsPerSecond', 'cpuPercent', 'rssMb', 'heapMb', 'loopDelayMs', 'inflight', 'connections'].map((f) => state.figures.indexOf(f))
  $('now').tBodies[0].replaceChildren(...tick.slots.map((slot) => {
    const row = document.createElement('tr')
    const cells = [`worker ${slot.workerId}`, slot.pid, slot.generation, ...figures.map((i) => slot.values[i] ?? '–')]
    row.replaceChildren(...cells.map((value, i) => {
      const cell = document.createElement(i === 0 ? 'th' : 'td')
      if (i === 0) cell.scope = 'row'
      cell.textContent = String(value)
      return cell
    }))
    return row
  }))
}

/** Appends one second; a slot without a sample gets null (a gap in its line). */
function addTick (tick, live = true) {
  const at = state.times.length
  state.times.push(tick.time / 1000)
  state.ready.push(tick.ready)
  state.desired.push(tick.desired)
  for (const sample of tick.slots) {
    let slot = state.slots.get(sample.workerId)
    if (!slot) {
      slot = { pid: new Array(at).fill(null), values: state.figures.map(() => new Array(at).fill(null)) }
      state.slots.set(sample.workerId, slot)
    }
    slot.pid.push(sample.pid)
    sample.values.forEach((v, i) => slot.values[i].push(v))
  }
  for (const slot of state.slots.values()) {
    if (slot.pid.length === at) {
      slot.pid.push(null)
      for (const column of slot.values) column.push(null)
    }
  }
  if (live) {
    renderNow(tick)
    renderRecyclable(tick)
  }
  $('summary').textContent = `${tick.ready} of ${tick.desired} workers ready · pid ${state.cluster ? state.cluster.pid : '?'} · ${state.cluster ? state.cluster.schedulingPolicy : ''}`
  trim()
}

/** A row of nulls just after the last second: the lines break there. */
function addGap () {
  if (!state.times.length || state.ready[state.ready.length - 1] === null) return
  state.times.push(state.times[state.times.length - 1] + 0.001)
  state.ready.push(null)
  state.desired.push(null)
  for (const slot of state.slots.values()) {
    slot.pid.push(null)
    for (const column of slot.values) column.push(null)
  }
  draw()
}

function trim () {
  const oldest = state.times[state.times.length - 1] - WINDOW_S
  let drop = 0
  while (drop < state.times.length && state.times[drop] < oldest) drop++
  if (!drop) return
  state.times.splice(0, drop)
  state.ready.splice(0, drop)
  state.desired.splice(0, drop)
  for (const [workerId, slot] of state.slots) {
    slot.pid.splice(0, drop)
    for (const column of slot.values) column.splice(0, drop)
    if (slot.pid.every((p) => p === null)) state.slots.delete(workerId)
  }
  while (state.marks.length && state.marks[0].time / 1000 < oldest) state.marks.shift()
}

function addMark (mark) {
  state.marks.push(mark)
  const item = document.createElement('li')
  const time = document.createElement('time')
  time.dateTime = new Date(mark.time).toISOString()
  time.textContent = new Date(mark.time).toLocaleTimeString()
  item.append(time, describe(mark))
  item.className = kindOf(mark)
  const list = $('events')
  list.prepend(item)
  while (list.children.length > MAX_EVENTS) list.lastChild.remove()
}

function kindOf (mark) {
  const f = mark.fields
  if (mark.event === 'worker.exit') return f.expected ? '' : 'bad'
  if (/aborted|exceeded|failed|hung|killed/.test(mark.event)) return 'bad'
  if (/^(reload|upgrade|scale)/.test(mark.event)) return 'note'
  return ''
}

function describe (mark) {
  const f = mark.fields
  const who = f.workerId !== undefined ? `worker ${f.workerId}${f.pid !== undefined ? ` (pid ${f.pid})` : ''}` : ''
  switch (mark.event) {
    case 'worker.fork': return `${who} started, generation ${f.generation}`
    case 'worker.exit': return `${who} exited: ${f.reason}${f.signal ? ` (${f.signal})` : f.code !== null && f.code !== undefined ? ` (code ${f.code})` : ''}${f.cause ? `, ${f.cause}` : ''}`
    case 'worker.recycle': return `${who} recycled: ${f.reason}`
    case 'worker.hung': return `${who} hung: no heartbeat`
    case 'worker.killed': return `${who} killed at its drain's deadline`
    case 'reload.start': return `reload started: generation ${f.generation}, ${f.workers} workers`
    case 'reload.complete': return `reload complete: generation ${f.generation} in ${f.durationMs} ms`
    case 'reload.aborted': return `reload aborted: ${f.reason}`
    case 'scale': return `scaled from ${f.from} to ${f.to}`
    case 'crash-rate.exceeded': return 'crash rate exceeded: the cluster stops'
    case 'boot.failed': return `boot failed: ${f.reason}`
    case 'shutdown.start': return `shutdown (${f.signal ?? ''})`
    case 'upgrade.start': return `upgrade started: new primary pid ${f.pid}`
    case 'upgrade.complete': return `upgrade complete: pid ${f.pid} in ${f.durationMs} ms`
    case 'upgrade.aborted': return `upgrade aborted: ${f.reason}`
  }
  return `${mark.event} ${who}`
}

function addLog (line, render = true) {
  state.logs.push(line)
  if (state.logs.length > MAX_LOG_LINES) state.logs.shift()
  if (line.workerId !== null) {
    const select = $('log-worker')
    const value = String(line.workerId)
    if (![...select.options].some((o) => o.value === value)) {
      const option = document.createElement('option')
      option.value = value
      option.textContent = `worker ${value}`
      select.append(option)
    }
  }
  if (render && matches(line)) {
    const logs = $('logs')
    logs.append(logNode(line))
    while (logs.childNodes.length > MAX_LOG_LINES) logs.firstChild.remove()
    if ($('log-follow').checked) logs.scrollTop = logs.scrollHeight
  }
}

function matches (line) {
  const worker = $('log-worker').value
  const stream = $('log-stream').value
  return (worker === '' || String(line.workerId) === worker) && (stream === '' || line.stream === stream)
}

function logNode (line) {
  const node = document.createElement('div')
  if (line.stream === 'stderr') node.className = 'stderr'
  const who = document.createElement('span')
  who.className = 'who'
  who.textContent = `${new Date(line.time).toLocaleTimeString()} ${line.workerId === null ? 'primary' : `w${line.workerId}`} `
  node.append(who, line.text)
  return node
}

function renderLogs () {
  const logs = $('logs')
  logs.replaceChildren(...state.logs.filter(matches).map(logNode))
  if ($('log-follow').checked) logs.scrollTop = logs.scrollHeight
}

// ── actions ───────────────────────────────────────────────────────────────────

const ACTION_BUTTONS = ['reload', 'scale-up', 'scale-down', 'recycle']

/** The token: from the address's #token=… (then taken out of it), or kept for this tab. */
function readToken () {
  const match = /^#token=([A-Za-z0-9_-]+)$/.exec(window.location.hash)
  if (match) {
    sessionStorage.setItem('cluster-run-token', match[1])
    window.history.replaceState(null, '', window.location.pathname)
  }
  return sessionStorage.getItem('cluster-run-token') ?? ''
}

function setActions (actions) {
  const note = $('actions-note')
  const off = !actions.enabled
  note.textContent = off
    ? `Read-only: ${actions.reason}.`
    : 'Actions need the token: the file named by tokenFile in the primary.start event (beside the control socket).'
  $('token').disabled = off
  for (const id of ACTION_BUTTONS) $(id).disabled = off
}

async function act (action, body) {
  const result = $('action-result')
  result.dataset.ok = ''
  result.textContent = `${action}…`
  try {
    const res = await fetch(`/dashboard/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    const answer = await res.json()
    result.dataset.ok = String(res.ok)
    result.textContent = res.ok ? `${action}: ${answer.outcome ?? 'done'}` : `${action} refused: ${answer.error}`
  } catch (err) {
    result.dataset.ok = 'false'
    result.textContent = `${action} failed: ${err.message}`
  }
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault()
  sessionStorage.setItem('cluster-run-token', $('token').value.trim())
  $('token').value = ''
  $('action-result').textContent = 'token kept for this tab'
})
$('reload').addEventListener('click', () => act('reload', {}))
$('scale-up').addEventListener('click', () => act('scale', { delta: 1 }))
$('scale-down').addEventListener('click', () => act('scale', { delta: -1 }))
$('recycle').addEventListener('click', () => act('recycle', { workerId: Number($('recycle-worker').value) }))

/** The recycle list follows the slots that have a ready worker. */
function renderRecyclable (tick) {
  const select = $('recycle-worker')
  const ids = tick.slots.map((s) => String(s.workerId))
  if ([...select.options].map((o) => o.value).join() === ids.join()) return
  const chosen = select.value
  select.replaceChildren(...ids.map((id) => {
    const option = document.createElement('option')
    option.value = id
    option.textContent = `worker ${id}`
    return option
  }))
  if (ids.includes(chosen)) select.value = chosen
}

// ── charts ────────────────────────────────────────────────────────────────────

let pending = false
function draw () {
  if (pending) return
  pending = true
  window.requestAnimationFrame(() => {
    pending = false
    const ids = [...state.slots.keys()].sort((a, b) => a - b)
    if (typeof Plot !== 'function') {
      // uPlot did not load (a browser whose language tag its number formats reject, "C" on a
      // Linux box without locales): the table, the events and the log still work
      $('charts').textContent = 'The charts could not load; the table above has the latest figures.'
      return
    }
    if (ids.join() !== state.charted || !state.charts.length) build(ids)
    for (const { plot, data } of state.charts) plot.setData(data())
  })
}

function build (ids) {
  state.charted = ids.join()
  for (const { plot } of state.charts) plot.destroy()
  const holder = $('charts')
  holder.replaceChildren()
  const css = getComputedStyle(document.documentElement)
  const fg = css.getPropertyValue('--muted').trim()
  const grid = css.getPropertyValue('--line').trim()
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } }
  const legend = $('legend')
  legend.replaceChildren(...ids.map((id) => {
    const item = document.createElement('span')
    item.style.setProperty('--swatch', colourOf(id))
    item.textContent = `worker ${id}`
    return item
  }))
  state.charts = CHARTS.map((chart) => {
    const box = document.createElement('div')
    box.className = 'chart'
    box.setAttribute('role', 'img')
    box.setAttribute('aria-label', `${chart.title}, per worker, over the last 15 minutes`)
    holder.append(box)
    const figure = state.figures.indexOf(chart.figure)
    const series = chart.cluster
      ? [{ label: 'ready', stroke: PALETTE[2], width: 2 }, { label: 'wanted', stroke: fg, width: 1, dash: [4, 4] }]
      : ids.map((id) => ({ label: `worker ${id}`, stroke: colourOf(id), width: 1.5 }))
    const data = chart.cluster
      ? () => [state.times, state.ready, state.desired]
      : () => [state.times, ...ids.map((id) => state.slots.get(id).values[figure])]
    const plot = new Plot({
      title: chart.title,
      width: Math.max(300, box.clientWidth - 8),
      height: 200,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [axis, { ...axis, size: 50 }],
      series: [{}, ...series],
      hooks: { draw: [drawMarks] },
    }, data(), box)
    return { plot, data, box }
  })
}

/** The timeline's events as vertical lines on every chart. */
function drawMarks (u) {
  const { ctx, bbox } = u
  const css = getComputedStyle(document.documentElement)
  ctx.save()
  ctx.lineWidth = 1
  for (const mark of state.marks) {
    const x = Math.round(u.valToPos(mark.time / 1000, 'x', true))
    if (x < bbox.left || x > bbox.left + bbox.width) continue
    const kind = kindOf(mark)
    ctx.strokeStyle = css.getPropertyValue(kind === 'bad' ? '--bad' : kind === 'note' ? '--note' : '--line').trim()
    ctx.beginPath()
    ctx.moveTo(x + 0.5, bbox.top)
    ctx.lineTo(x + 0.5, bbox.top + bbox.height)
    ctx.stroke()
  }
  ctx.restore()
}

window.addEventListener('resize', () => {
  for (const { plot, box } of state.charts) plot.setSize({ width: Math.max(300, box.clientWidth - 8), height: 200 })
})
readToken()
$('log-worker').addEventListener('change', renderLogs)
$('log-stream').addEventListener('change', renderLogs)
connect()
