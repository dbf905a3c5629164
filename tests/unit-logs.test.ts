// The pure pieces of log capture: lines cut from chunks, attribution, the history.
import t from 'tap'
import fc from 'fast-check'
import { LineBatch, LineSplitter } from '../lib/logs/lines.js'
import { isJsonObject, jsonLine, jsonLines, prettyLine, type LineSource } from '../lib/logs/format.js'
import { History, matches, type Entry, type Filter, type HistoryLimits } from '../lib/logs/history.js'

t.test('LineSplitter: whatever the chunks, the same lines come out, whole and in order; a last line without newline at the end', async (t) => {
  const text = fc.string({ unit: fc.constantFrom('a', 'b', 'é', '{', '}', ' ', '\r'), maxLength: 40 })
  fc.assert(fc.property(fc.array(text, { maxLength: 30 }), fc.boolean(), fc.array(fc.nat(50), { maxLength: 20 }), (lines, newlineAtEnd, cuts) => {
    const whole = Buffer.from(lines.join('\n') + (newlineAtEnd && lines.length ? '\n' : ''))
    const splitter = new LineSplitter(1024)
    const batch = new LineBatch()
    const got: string[] = []
    const take = (): void => {
      for (let i = 0; i < batch.count; i++) got.push(batch.line(i).toString())
      batch.clear()
    }
    let at = 0
    for (const cut of [...cuts, whole.length]) {
      const next = Math.min(whole.length, at + cut)
      splitter.push(whole.subarray(at, next), batch)
      take()
      at = next
    }
    splitter.end(batch)
    take()
    const want = whole.length === 0 ? [] : (newlineAtEnd ? lines : lines.filter((l, i) => i < lines.length - 1 || l.length > 0))
    return JSON.stringify(got) === JSON.stringify(want)
  }), { numRuns: 2000 })
  t.pass('checked over random lines and cuts')
})

t.test('LineSplitter: a line longer than the limit comes out in pieces of the limit; the memory held stays under it', async (t) => {
  const splitter = new LineSplitter(4)
  const batch = new LineBatch()
  splitter.push(Buffer.from('abcdefghij'), batch)
  t.equal(batch.count, 2, 'two pieces out before the line ends')
  splitter.push(Buffer.from('kl\nmn\n'), batch)
  t.same(Array.from({ length: batch.count }, (_, i) => batch.line(i).toString()), ['abcd', 'efgh', 'ijkl', 'mn'])
  batch.clear()
  t.equal(batch.count, 0)
  t.ok(batch.bufs.every((b) => b === undefined), 'a cleared batch lets go of its buffers')
})

const SOURCE: LineSource = { workerId: 2, pid: 42, generation: 3, stream: 'stdout' }
const out = (pieces: Buffer[]): string => Buffer.concat(pieces).toString()

t.test('jsonLine: a JSON object keeps its bytes with the worker\'s fields put first; other lines become worker.output', async (t) => {
  t.equal(String(jsonLine(Buffer.from('{"level":30,"msg":"hi"}'), SOURCE, 0)), '{"workerId":2,"generation":3,"pid":42,"level":30,"msg":"hi"}\n')
  t.equal(String(jsonLine(Buffer.from('{"pid":7,"a":1}'), SOURCE, 0)), '{"workerId":2,"generation":3,"pid":7,"a":1}\n', 'a line with its own pid keeps it, and gets no second one')
  t.equal(String(jsonLine(Buffer.from('  { }  '), SOURCE, 0)), '  {"workerId":2,"generation":3,"pid":42 }  \n', 'an empty object: no dangling comma; the spaces kept')
  t.same(JSON.parse(String(jsonLine(Buffer.from('plain "text"'), { ...SOURCE, stream: 'stderr' }, 0))), {
    level: 40, time: new Date(0).toISOString(), event: 'worker.output', workerId: 2, pid: 42, generation: 3, stream: 'stderr', text: 'plain "text"',
  })
  t.equal(isJsonObject(Buffer.from('{')), false)
  t.equal(isJsonObject(Buffer.from('[1]')), false)
  t.equal(isJsonObject(Buffer.from('{"a": 1} trailing')), false)
})

t.test('jsonLines: a read\'s lines in one buffer, byte for byte what jsonLine makes of each, whatever the lines and where the chunks were cut', async (t) => {
  const piece = fc.constantFrom('{', '}', ' ', '"pid":', '"pid":7', 'a', 'é', '"x":1', ',', '\t')
  const line = fc.oneof(
    fc.array(piece, { maxLength: 12 }).map((p) => p.join('')),
    fc.array(piece, { maxLength: 10 }).map((p) => `{${p.join('')}}`),
    fc.record({ pid: fc.boolean(), spaces: fc.boolean() }).map(({ pid, spaces }) => `${spaces ? ' ' : ''}{"level":30${pid ? ',"pid":9' : ''},"msg":"m"}${spaces ? ' ' : ''}`)
  )
  fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 20 }), fc.array(fc.nat(40), { maxLength: 6 }), (lines, cuts) => {
    const whole = Buffer.from(lines.map((l) => l + '\n').join(''))
    const splitter = new LineSplitter(1024)
    const batch = new LineBatch()
    const got: Buffer[] = []
    let at = 0
    for (const cut of [...cuts, whole.length]) {
      const next = Math.min(whole.length, at + cut)
      splitter.push(whole.subarray(at, next), batch)
      got.push(jsonLines(batch, SOURCE, 0))
      batch.clear()
      at = next
    }
    const want = Buffer.concat(lines.map((l) => jsonLine(Buffer.from(l), SOURCE, 0)))
    return Buffer.concat(got).equals(want)
  }), { numRuns: 1000 })
  t.pass('checked over random lines and cuts')
})

t.test('prettyLine: the worker\'s short name first, marked for stderr, coloured on a terminal', async (t) => {
  t.equal(out(prettyLine(Buffer.from('hello'), SOURCE, false)), 'w2 42 | hello\n')
  t.equal(out(prettyLine(Buffer.from('oops'), { ...SOURCE, stream: 'stderr' }, false)), 'w2 42! | oops\n')
  // eslint-disable-next-line no-control-regex -- the terminal's colour codes are what is checked
  t.match(out(prettyLine(Buffer.from('hello'), SOURCE, true)), /^\x1b\[\d+mw2 42 \|\x1b\[0m hello\n$/)
})

t.test('History: bounded by lines and by bytes, oldest out first; filters; followers see each new line', async (t) => {
  const history = new History({ lines: 3, bytes: 10 })
  const seen: number[] = []
  const stop = history.follow((e) => seen.push(e.seq))
  for (const text of ['aa', 'bb', 'cc', 'dd']) history.add(0, Buffer.from(text), SOURCE)
  t.same(history.last(10, { events: false }).map((e) => e.bytes.toString()), ['bb', 'cc', 'dd'], 'three lines at most')
  history.add(0, Buffer.from('eeeeeeee'), { ...SOURCE, workerId: 1, stream: 'stderr' })
  t.same(history.last(10, { events: false }).map((e) => e.bytes.toString()), ['dd', 'eeeeeeee'], '10 bytes at most')
  history.add(0, Buffer.from('{"event":"x"}'))
  t.same(history.last(10, { events: false }).map((e) => e.bytes.toString()), [], 'events only when asked for; a line over the byte limit alone is kept')
  t.same(history.last(10, { events: true }).map((e) => e.bytes.toString()), ['{"event":"x"}'])
  history.add(0, Buffer.from('f'), { ...SOURCE, workerId: 1, stream: 'stderr' })
  history.add(0, Buffer.from('g'), SOURCE)
  t.same(history.last(10, { events: false, workerId: 1 }).map((e) => e.bytes.toString()), ['f'])
  t.same(history.last(10, { events: false, stream: 'stdout' }).map((e) => e.bytes.toString()), ['g'])
  t.same(history.last(1, { events: true }).map((e) => e.bytes.toString()), ['g'], 'the last n')
  t.same(seen, [1, 2, 3, 4, 5, 6, 7, 8])
  stop()
  history.add(0, Buffer.from('h'), SOURCE)
  t.equal(seen.length, 8, 'a follower that stopped is told nothing more')
  const big = Buffer.alloc(8192, 120)
  history.add(0, big.subarray(0, 5), SOURCE)
  big.fill(121)
  const kept = history.last(1, { events: false })[0].bytes
  t.equal(kept.toString(), 'xxxxx', 'a copy, not a view of the caller\'s buffer')
  t.equal(kept.buffer.byteLength, 5, 'given out as a copy of its own size')
  history.add(0, Buffer.from('iiiiiiiii'), SOURCE)
  t.equal(kept.toString(), 'xxxxx', 'what was given out stays as it was when the ring is written over')
})

/** The history as a plain list of its entries: what the ring must behave as. */
class ListHistory {
  entries: Entry[] = []
  seq = 0
  constructor (readonly limits: HistoryLimits) {}
  add (time: number, bytes: Buffer, source?: LineSource): void {
    this.entries.push({ seq: ++this.seq, time, source, bytes: Buffer.from(bytes) })
    const total = (): number => this.entries.reduce((sum, e) => sum + e.bytes.length, 0)
    while (this.entries.length > this.limits.lines || (total() > this.limits.bytes && this.entries.length > 1)) this.entries.shift()
  }

  last (n: number, filter: Filter): Entry[] {
    return this.entries.filter((e) => matches(e, filter)).slice(-n).slice(0, n)
  }
}

t.test('History: the ring keeps exactly what a plain list bounded by lines and bytes keeps, whatever the line lengths and limits', async (t) => {
  const SOURCES: Array<LineSource | undefined> = [undefined, SOURCE, { ...SOURCE, workerId: 0, stream: 'stderr' }]
  const add = fc.record({ kind: fc.constant('add' as const), length: fc.oneof(fc.nat(12), fc.nat(60)), source: fc.nat(SOURCES.length - 1), byte: fc.integer({ min: 97, max: 122 }) })
  const last = fc.record({ kind: fc.constant('last' as const), n: fc.nat(12), workerId: fc.option(fc.nat(2), { nil: undefined }), events: fc.boolean() })
  fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 40 }), fc.array(fc.oneof(add, add, last), { maxLength: 80 }), (lines, bytes, steps) => {
    const ring = new History({ lines, bytes })
    const list = new ListHistory({ lines, bytes })
    const seen: string[] = []
    ring.follow((e) => seen.push(`${e.seq}:${e.bytes.toString()}`))
    let time = 0
    for (const step of steps) {
      if (step.kind === 'add') {
        // a view of a larger buffer, as the line splitter gives
        const bytesOf = Buffer.alloc(step.length + 4, step.byte).subarray(2, 2 + step.length)
        ring.add(++time, bytesOf, SOURCES[step.source])
        list.add(time, bytesOf, SOURCES[step.source])
        continue
      }
      const filter: Filter = { workerId: step.workerId, events: step.events }
      const show = (es: Entry[]): string[] => es.map((e) => `${e.seq}@${e.time}:${e.source?.workerId ?? '-'}:${e.bytes.toString()}`)
      if (JSON.stringify(show(ring.last(step.n, filter))) !== JSON.stringify(show(list.last(step.n, filter)))) return false
    }
    const size = ring.size
    return size.lines === list.entries.length && size.bytes === list.entries.reduce((sum, e) => sum + e.bytes.length, 0) &&
      seen.length === list.seq && JSON.stringify(ring.last(1000, { events: true }).map((e) => e.seq)) === JSON.stringify(list.entries.map((e) => e.seq))
  }), { numRuns: 500 })
  t.pass('checked over random lines, limits and reads')
})
