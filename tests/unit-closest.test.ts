// Unit tests for lib/issues.ts: the edit distance (with transpositions) and "did you mean".
import t from 'tap'
import { closest, distance } from '../lib/common/issues.js'
import { configSchema, maxCrashRateSchema, restartBackoffSchema } from '../lib/config/schema.js'

const TOP = Object.keys(configSchema.shape)

t.test('distance: Levenshtein with adjacent transpositions', async (t) => {
  t.equal(distance('', ''), 0)
  t.equal(distance('abc', ''), 3)
  t.equal(distance('', 'abc'), 3)
  t.equal(distance('same', 'same'), 0)
  t.equal(distance('kitten', 'sitting'), 3)
  t.equal(distance('flaw', 'lawn'), 2)
  t.equal(distance('workers', 'worker'), 1, 'deletion')
  t.equal(distance('worker', 'workers'), 1, 'insertion')
  t.equal(distance('workers', 'wirkers'), 1, 'substitution')
  t.equal(distance('ab', 'ba'), 1, 'a transposition is one edit')
  t.equal(distance('jsno', 'json'), 1)
  t.equal(distance('statsu', 'status'), 1)
  t.equal(distance('ca', 'abc'), 3, 'optimal string alignment: no edit of a transposed pair')
})

t.test('distance: case-insensitive and symmetric', async (t) => {
  t.equal(distance('Workers', 'workers'), 0)
  t.equal(distance('RESTARTBACKOFF', 'restartBackoff'), 0)
  t.equal(distance('schedulingpolicy', 'schedulingPolicy'), 0)
  t.equal(distance('restartBackof', 'restartBackoff'), distance('restartBackoff', 'restartBackof'))
})

t.test('closest: typos get a suggestion', async (t) => {
  t.equal(closest('worker', TOP), 'workers')
  t.equal(closest('wrokers', TOP), 'workers')
  t.equal(closest('restartBackof', TOP), 'restartBackoff')
  t.equal(closest('restart_backoff', TOP), 'restartBackoff')
  t.equal(closest('shedulingPolicy', TOP), 'schedulingPolicy')
  t.equal(closest('Workers', TOP), 'workers', 'case only')
  t.equal(closest('crashs', Object.keys(maxCrashRateSchema.shape)), 'crashes')
  t.equal(closest('window', Object.keys(maxCrashRateSchema.shape)), 'windowMs')
  t.equal(closest('initialMS', Object.keys(restartBackoffSchema.shape)), 'initialMs')
  t.equal(closest('ap', TOP), 'app')
})

t.test('closest: unrelated words get no suggestion', async (t) => {
  t.equal(closest('banana', TOP), undefined)
  t.equal(closest('somethingElseEntirely', TOP), undefined)
  t.equal(closest('port', TOP), undefined)
  t.equal(closest('zzzzz', Object.keys(maxCrashRateSchema.shape)), undefined)
})

t.test('closest: no known keys, no suggestion', async (t) => {
  t.equal(closest('anything', []), undefined)
})

t.test('closest: the threshold grows with the length of the key', async (t) => {
  t.equal(closest('abcX', ['abcd']), 'abcd', '1 edit on a 4-letter key')
  t.equal(closest('aXYZ', ['abcd']), undefined, '3 edits on a 4-letter key')
  t.equal(closest('abcdefXYZ', ['abcdefghi']), 'abcdefghi', '3 edits on a 9-letter key')
  t.equal(closest('abcdeWXYZ', ['abcdefghi']), undefined, '4 edits on a 9-letter key')
})

t.test('closest: the first of equally close keys wins', async (t) => {
  t.equal(closest('ab', ['aa', 'bb']), 'aa')
  t.equal(closest('ab', ['bb', 'aa']), 'bb')
})

t.test('closest: unrelated 3-letter words are not matched to 3-letter keys (foo → log)', async (t) => {
  t.equal(closest('foo', TOP), undefined, 'foo is not a typo of log')
  t.equal(closest('dev', TOP), undefined, 'dev is not a typo of env')
})
