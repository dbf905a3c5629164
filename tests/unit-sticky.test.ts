// Rendezvous hashing and key extraction for sticky sessions: pure.
import t from 'tap'
import fc from 'fast-check'
import { pickSlot } from '../lib/balancer/rendezvous.js'
import { headEnd, headerValue } from '../lib/balancer/key.js'
import { tcpTarget } from '../lib/worker/listen-target.js'

const key = fc.string({ minLength: 1, maxLength: 40 })

/** The key's order of preference, as pickSlot gives it: its pick, then its pick without that one, and so on. */
function preference (k: string, n: number): number[] {
  const order: number[] = []
  for (let i = 0; i < n; i++) order.push(pickSlot(k, n, (s) => !order.includes(s))!)
  return order
}

t.test('a key keeps its slot while the slot has a worker, and goes to the next in its order of preference while not', async (t) => {
  fc.assert(fc.property(key, fc.integer({ min: 1, max: 16 }), fc.integer({ min: 0, max: 0xffff }), (k, n, mask) => {
    const order = preference(k, n)
    if (new Set(order).size !== n) return false
    // whichever slots have no ready worker, the key goes to the first of its order that has one
    const available = (s: number): boolean => ((mask >> s) & 1) === 1
    return pickSlot(k, n, available) === order.find(available)
  }), { numRuns: 2000 })
  t.equal(pickSlot('x', 4, () => false), undefined, 'no slot available: none')
})

t.test('scaling moves only the keys of the added or removed slot', async (t) => {
  fc.assert(fc.property(fc.array(key, { minLength: 50, maxLength: 200 }), fc.integer({ min: 1, max: 12 }), (keys, n) => {
    for (const k of keys) {
      const before = pickSlot(k, n, () => true)!
      const grown = pickSlot(k, n + 1, () => true)!
      // a key either stays or moves to the new slot
      if (grown !== before && grown !== n) return false
      // removing the last slot moves only its own keys
      const shrunk = pickSlot(k, n + 1, (s) => s < n)!
      if (grown !== n && shrunk !== grown) return false
    }
    return true
  }), { numRuns: 300 })
  t.pass('checked over random key sets and sizes')
})

t.test('keys spread evenly over the slots', async (t) => {
  const counts = [0, 0, 0, 0]
  for (let i = 0; i < 4000; i++) counts[pickSlot(`10.0.${i >> 8}.${i & 255}`, 4, () => true)!]++
  t.ok(counts.every((c) => c > 800 && c < 1200), `4000 addresses over 4 slots: ${counts.join(', ')}`)
})

t.test('headerValue: the first item of the header, case-insensitive; headEnd', async (t) => {
  const head = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For:  203.0.113.7 , 10.0.0.1\r\n\r\nbody')
  t.equal(headerValue(head, 'x-forwarded-for'), '203.0.113.7')
  t.equal(headerValue(head, 'X-FORWARDED-FOR'), '203.0.113.7')
  t.equal(headerValue(head, 'x-real-ip'), undefined)
  t.equal(headEnd(head), head.indexOf('body'))
  t.equal(headEnd(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n')), -1, 'incomplete')
  t.equal(headerValue(Buffer.from('GET / HTTP/1.1\r\nX-Forwarded-For:\r\n\r\n'), 'x-forwarded-for'), undefined, 'empty')
  t.equal(headerValue(Buffer.from('GET / HTTP/1.1\r\nX-Forwarded-For: a\r\n'), 'x-forwarded-for'), 'a', 'found in an incomplete head too')
  t.equal(headerValue(Buffer.from('GET /x-forwarded-for: no HTTP/1.1\r\n\r\n'), 'x-forwarded-for'), undefined, 'not in the request line')
})

t.test('tcpTarget: which listen() calls are made sticky', async (t) => {
  t.same(tcpTarget([3000]), { port: 3000, host: undefined, backlog: undefined })
  t.same(tcpTarget(['3000', '127.0.0.1', () => {}]), { port: 3000, host: '127.0.0.1', backlog: undefined })
  t.same(tcpTarget([3000, '::1', 511]), { port: 3000, host: '::1', backlog: 511 })
  t.same(tcpTarget([3000, 128]), { port: 3000, host: undefined, backlog: 128 })
  t.same(tcpTarget([{ port: 8080, host: '0.0.0.0' }]), { port: 8080, host: '0.0.0.0', backlog: undefined })
  t.equal(tcpTarget([0]), undefined, 'port 0 listens as usual')
  t.equal(tcpTarget([]), undefined)
  t.equal(tcpTarget(['/tmp/app.sock']), undefined, 'a pipe')
  t.equal(tcpTarget([{ path: '/tmp/app.sock' }]), undefined)
  t.equal(tcpTarget([{ fd: 3 }]), undefined)
})
