import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import {
  availableCpus,
  cgroupDirs,
  parseCfsQuota,
  parseCpuMax,
  parseMountInfo,
  parseProcCgroup,
  readFileOrUndefined,
} from '../lib/config/cpu-count.js'

// A fake file tree: every path not listed is "missing". Records what was read.
function tree (files: Record<string, string>): { readFile: (p: string) => string | undefined, reads: string[] } {
  const reads: string[] = []
  return {
    reads,
    readFile: (p: string) => {
      reads.push(p)
      return Object.prototype.hasOwnProperty.call(files, p) ? files[p] : undefined
    },
  }
}

// Mountinfo lines as the kernel writes them.
const MI_V2 = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n'
const MI_V1_CPU = '33 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct\n'
const MI_V1_MEM = '34 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory\n'
const MI_HYBRID_V2 = '26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate\n'

t.test('parseMountInfo', async (t) => {
  const entries = parseMountInfo(
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n' +
    // no optional fields between the options and '-'
    '32 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n' +
    // several optional fields
    MI_V1_CPU.replace('shared:11', 'shared:11 master:3 propagate_from:2') +
    // escaped space in the mount point
    '40 31 0:38 / /mnt/my\\040cgroup rw,relatime shared:5 - cgroup2 cgroup2 rw\n' +
    'garbage line\n' +
    '1 2 3 4 5 6 7 no separator here\n' +
    '1 2 3:4 / /x rw - onlyfstype\n' +
    '\n'
  )
  t.same(entries, [
    { root: '/', mountPoint: '/', fsType: 'ext4', superOptions: ['rw', 'discard'] },
    { root: '/docker/abc', mountPoint: '/sys/fs/cgroup/cpu', fsType: 'cgroup', superOptions: ['rw', 'cpu'] },
    { root: '/', mountPoint: '/sys/fs/cgroup/cpu,cpuacct', fsType: 'cgroup', superOptions: ['rw', 'cpu', 'cpuacct'] },
    { root: '/', mountPoint: '/mnt/my cgroup', fsType: 'cgroup2', superOptions: ['rw'] },
  ])
  // a source but no super options: still a mount, with no options
  t.same(parseMountInfo('1 2 3:4 / /x rw - tmpfs tmpfs'), [
    { root: '/', mountPoint: '/x', fsType: 'tmpfs', superOptions: [''] },
  ])
  t.same(parseMountInfo(''), [])
})

t.test('parseProcCgroup', async (t) => {
  t.same(parseProcCgroup('12:cpu,cpuacct:/foo\n4:memory:/bar\n1:name=systemd:/init.scope\n0::/user.slice/a:b\n\nnot a cgroup line\n'), [
    { hierarchyId: '12', controllers: ['cpu', 'cpuacct'], path: '/foo' },
    { hierarchyId: '4', controllers: ['memory'], path: '/bar' },
    { hierarchyId: '1', controllers: ['name=systemd'], path: '/init.scope' },
    // ':' inside the path stays in the path
    { hierarchyId: '0', controllers: [], path: '/user.slice/a:b' },
  ])
  t.same(parseProcCgroup(''), [])
})

t.test('parseCpuMax', async (t) => {
  t.same(parseCpuMax('150000 100000\n'), { quota: 150000, period: 100000 })
  t.same(parseCpuMax('50000 100000'), { quota: 50000, period: 100000 })
  t.equal(parseCpuMax('max 100000\n'), undefined, 'max means no limit')
  t.equal(parseCpuMax('max'), undefined)
  t.equal(parseCpuMax('150000'), undefined, 'no period: malformed, ignored')
  t.equal(parseCpuMax('0 100000'), undefined, 'zero quota ignored')
  t.equal(parseCpuMax('100000 0'), undefined, 'zero period ignored')
  t.equal(parseCpuMax('-5 100000'), undefined)
  t.equal(parseCpuMax('1e5 100000'), undefined, 'only plain integers')
  t.equal(parseCpuMax(''), undefined)
  t.equal(parseCpuMax(undefined), undefined, 'missing file')
})

t.test('parseCfsQuota', async (t) => {
  t.same(parseCfsQuota('150000\n', '100000\n'), { quota: 150000, period: 100000 })
  t.equal(parseCfsQuota('-1\n', '100000\n'), undefined, '-1 means no limit')
  t.equal(parseCfsQuota(undefined, '100000'), undefined, 'missing quota file')
  t.equal(parseCfsQuota('50000', undefined), undefined, 'missing period file: cannot tell, ignored')
  t.equal(parseCfsQuota('50000', '0'), undefined)
  t.equal(parseCfsQuota('abc', '100000'), undefined)
})

t.test('cgroupDirs', async (t) => {
  t.same(cgroupDirs('/sys/fs/cgroup', '/', '/a/b'), ['/sys/fs/cgroup/a/b', '/sys/fs/cgroup/a', '/sys/fs/cgroup'])
  t.same(cgroupDirs('/sys/fs/cgroup', '/', '/'), ['/sys/fs/cgroup'], 'container view 0::/')
  t.same(cgroupDirs('/sys/fs/cgroup/cpu', '/docker/abc', '/docker/abc'), ['/sys/fs/cgroup/cpu'], 'path equal to mount root')
  t.same(cgroupDirs('/sys/fs/cgroup/cpu', '/docker/abc', '/docker/abc/x/'), ['/sys/fs/cgroup/cpu/x', '/sys/fs/cgroup/cpu'], 'path under mount root, trailing slash')
  t.same(cgroupDirs('/sys/fs/cgroup/cpu', '/docker/abc', '/other'), ['/sys/fs/cgroup/cpu'], 'outside the mount root: only the mount point')
  t.same(cgroupDirs('/sys/fs/cgroup', '/', '/../sibling'), ['/sys/fs/cgroup/sibling', '/sys/fs/cgroup'], 'leading .. cannot climb above /')
  t.same(cgroupDirs('/sys/fs/cgroup', '/ns', '/ns/../x'), ['/sys/fs/cgroup'], '.. out of the namespace root')
  t.same(cgroupDirs('/sys/fs/cgroup', '/a', '/a/..b'), ['/sys/fs/cgroup/..b', '/sys/fs/cgroup'], 'a name starting with .. is a child')
})

t.test('readFileOrUndefined', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cpu-count-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'cpu.max')
  writeFileSync(file, '150000 100000\n')
  t.equal(readFileOrUndefined(file), '150000 100000\n')
  t.equal(readFileOrUndefined(path.join(dir, 'missing')), undefined)
  t.equal(readFileOrUndefined(dir), undefined, 'a directory is unreadable as a file: undefined, no throw')
})

t.test('availableCpus: cgroup v2', async (t) => {
  const fs = tree({
    '/proc/self/cgroup': '0::/app\n',
    '/proc/self/mountinfo': MI_V2,
    '/sys/fs/cgroup/app/cpu.max': '150000 100000\n',
  })
  t.same(availableCpus({ readFile: fs.readFile, affinity: 8 }), {
    count: 2,
    affinity: 8,
    quota: 1.5,
    source: 'cgroup-v2',
    reason: 'cgroup v2 cpu.max 150000/100000 at /sys/fs/cgroup/app (1.5 CPUs, rounded up)',
  })
})

t.test('availableCpus: cgroup v2 whole quota', async (t) => {
  const fs = tree({
    '/proc/self/cgroup': '0::/app\n',
    '/proc/self/mountinfo': MI_V2,
    '/sys/fs/cgroup/app/cpu.max': '300000 100000\n',
  })
  const r = availableCpus({ readFile: fs.readFile, affinity: 8 })
  t.equal(r.count, 3)
  t.equal(r.quota, 3)
  t.equal(r.source, 'cgroup-v2')
  t.equal(r.reason, 'cgroup v2 cpu.max 300000/100000 at /sys/fs/cgroup/app (3 CPUs)')
})

t.test('availableCpus: cgroup v2 max means no limit', async (t) => {
  const fs = tree({
    '/proc/self/cgroup': '0::/app\n',
    '/proc/self/mountinfo': MI_V2,
    '/sys/fs/cgroup/app/cpu.max': 'max 100000\n',
    '/sys/fs/cgroup/cpu.max': 'max 100000\n',
  })
  const r = availableCpus({ readFile: fs.readFile, affinity: 6 })
  t.same(r, { count: 6, affinity: 6, source: 'affinity', reason: 'CPU affinity allows 6 CPU(s); no cgroup CPU quota applies' })
  t.equal(r.quota, undefined)
})

t.test('availableCpus: cgroup v1', async (t) => {
  const fs = tree({
    '/proc/self/cgroup': '5:memory:/app\n4:cpu,cpuacct:/app\n1:name=systemd:/app\n',
    '/proc/self/mountinfo': MI_V1_MEM + MI_V1_CPU,
    '/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_quota_us': '250000\n',
    '/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_period_us': '100000\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
  })
  t.same(availableCpus({ readFile: fs.readFile, affinity: 16 }), {
    count: 3,
    affinity: 16,
    quota: 2.5,
    source: 'cgroup-v1',
    reason: 'cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us 250000/100000 at /sys/fs/cgroup/cpu,cpuacct/app (2.5 CPUs, rounded up)',
  })
  // the memory controller's mount must not be mistaken for cpu
  t.notOk(fs.reads.some((p) => p.startsWith('/sys/fs/cgroup/memory')))
})

t.test('availableCpus: cgroup v1 -1 quota means no limit', async (t) => {
  const fs = tree({
    '/proc/self/cgroup': '4:cpu,cpuacct:/app\n',
    '/proc/self/mountinfo': MI_V1_CPU,
    '/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_quota_us': '-1\n',
    '/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_period_us': '100000\n',
  })
  const r = availableCpus({ readFile: fs.readFile, affinity: 4 })
  t.equal(r.count, 4)
  t.equal(r.source, 'affinity')
  t.equal(r.quota, undefined)
})

t.test('availableCpus: cgroup v1 cpuacct alone is not cpu', async (t) => {
  // cpu and cpuacct on separate hierarchies, as on some hosts
  const fs = tree({
    '/proc/self/cgroup': '2:cpuacct:/acct\n1:cpu:/app\n0::/\n',
    '/proc/self/mountinfo':
      '32 31 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n' +
      '33 31 0:30 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n',
    '/sys/fs/cgroup/cpuacct/acct/cpu.cfs_quota_us': '10000\n',
    '/sys/fs/cgroup/cpuacct/acct/cpu.cfs_period_us': '100000\n',
    '/sys/fs/cgroup/cpu/app/cpu.cfs_quota_us': '200000\n',
    '/sys/fs/cgroup/cpu/app/cpu.cfs_period_us': '100000\n',
  })
  const r = availableCpus({ readFile: fs.readFile, affinity: 4 })
  t.equal(r.count, 2)
  t.equal(r.source, 'cgroup-v1')
  t.match(r.reason, 'at /sys/fs/cgroup/cpu/app ')
})

t.test('availableCpus: hybrid v1 cpu + v2 unified', async (t) => {
  const files = {
    '/proc/self/cgroup': '12:memory:/svc\n4:cpu,cpuacct:/svc\n0::/svc\n',
    '/proc/self/mountinfo': MI_HYBRID_V2 + MI_V1_CPU + MI_V1_MEM,
    '/sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_quota_us': '300000\n',
    '/sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_period_us': '100000\n',
  }
  // the cpu controller is on v1; the v2 hierarchy has no cpu.max
  const fs = tree(files)
  const r = availableCpus({ readFile: fs.readFile, affinity: 8 })
  t.equal(r.count, 3)
  t.equal(r.source, 'cgroup-v1')
  t.ok(fs.reads.includes('/sys/fs/cgroup/unified/svc/cpu.max'), 'v2 mount found in mountinfo')
  t.notOk(fs.reads.includes('/sys/fs/cgroup/svc/cpu.max'), 'no fallback when mountinfo names the v2 mount')

  // both present: the smaller wins, whichever version it is in
  const both = tree({ ...files, '/sys/fs/cgroup/unified/svc/cpu.max': '120000 100000\n' })
  const r2 = availableCpus({ readFile: both.readFile, affinity: 8 })
  t.equal(r2.count, 2)
  t.equal(r2.quota, 1.2)
  t.equal(r2.source, 'cgroup-v2')
})

t.test('availableCpus: missing files are ignored', async (t) => {
  // nothing at all readable
  const none = availableCpus({ readFile: () => undefined, affinity: 3 })
  t.same(none, { count: 3, affinity: 3, source: 'affinity', reason: 'CPU affinity allows 3 CPU(s); no cgroup CPU quota applies' })

  // the real reader over whatever this machine has: must not throw
  t.doesNotThrow(() => availableCpus({ readFile: readFileOrUndefined, affinity: 2 }))

  // /proc/self/cgroup readable, mountinfo missing: fall back to the usual mount points
  const v2 = tree({
    '/proc/self/cgroup': '0::/app\n',
    '/sys/fs/cgroup/app/cpu.max': '100000 100000\n',
  })
  t.equal(availableCpus({ readFile: v2.readFile, affinity: 4 }).count, 1)

  const v1combined = tree({
    '/proc/self/cgroup': '4:cpu,cpuacct:/app\n',
    '/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_quota_us': '200000\n',
    '/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_period_us': '100000\n',
  })
  t.equal(availableCpus({ readFile: v1combined.readFile, affinity: 4 }).count, 2)

  const v1alone = tree({
    '/proc/self/cgroup': '4:cpu:/app\n',
    '/proc/self/mountinfo': MI_V1_MEM, // readable but without a cpu mount
    '/sys/fs/cgroup/cpu/app/cpu.cfs_quota_us': '300000\n',
    '/sys/fs/cgroup/cpu/app/cpu.cfs_period_us': '100000\n',
  })
  const r = availableCpus({ readFile: v1alone.readFile, affinity: 4 })
  t.equal(r.count, 3)
  t.match(r.reason, 'at /sys/fs/cgroup/cpu/app ')

  // quota readable but period missing: ignored, not guessed
  const half = tree({
    '/proc/self/cgroup': '4:cpu:/app\n',
    '/proc/self/mountinfo': MI_V1_CPU,
    '/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_quota_us': '100000\n',
  })
  t.equal(availableCpus({ readFile: half.readFile, affinity: 4 }).source, 'affinity')
})

t.test('availableCpus: quota below one CPU gives 1', async (t) => {
  const fs = tree({
    '/proc/self/cgroup': '0::/tiny\n',
    '/proc/self/mountinfo': MI_V2,
    '/sys/fs/cgroup/tiny/cpu.max': '20000 100000\n',
  })
  t.same(availableCpus({ readFile: fs.readFile, affinity: 4 }), {
    count: 1,
    affinity: 4,
    quota: 0.2,
    source: 'cgroup-v2',
    reason: 'cgroup v2 cpu.max 20000/100000 at /sys/fs/cgroup/tiny (0.2 CPUs, raised to 1)',
  })
})

t.test('availableCpus: nested limits, the smallest wins', async (t) => {
  const base = {
    '/proc/self/cgroup': '0::/parent/child\n',
    '/proc/self/mountinfo': MI_V2,
  }
  const parentSmaller = tree({
    ...base,
    '/sys/fs/cgroup/parent/child/cpu.max': '400000 100000\n',
    '/sys/fs/cgroup/parent/cpu.max': '150000 100000\n',
  })
  const r1 = availableCpus({ readFile: parentSmaller.readFile, affinity: 8 })
  t.equal(r1.count, 2)
  t.equal(r1.quota, 1.5)
  t.match(r1.reason, 'at /sys/fs/cgroup/parent ')

  const childSmaller = tree({
    ...base,
    '/sys/fs/cgroup/parent/child/cpu.max': '100000 100000\n',
    '/sys/fs/cgroup/parent/cpu.max': '400000 100000\n',
    '/sys/fs/cgroup/cpu.max': 'max 100000\n',
  })
  const r2 = availableCpus({ readFile: childSmaller.readFile, affinity: 8 })
  t.equal(r2.count, 1)
  t.equal(r2.quota, 1)
  t.match(r2.reason, 'at /sys/fs/cgroup/parent/child ')

  // different periods compare by CPUs, not by raw quota
  const periods = tree({
    ...base,
    '/sys/fs/cgroup/parent/child/cpu.max': '50000 10000\n', // 5 CPUs
    '/sys/fs/cgroup/parent/cpu.max': '300000 100000\n', // 3 CPUs
  })
  t.equal(availableCpus({ readFile: periods.readFile, affinity: 8 }).count, 3)

  // v1 ancestors too
  const v1 = tree({
    '/proc/self/cgroup': '3:cpu,cpuacct:/kubepods/pod1/ctr\n',
    '/proc/self/mountinfo': MI_V1_CPU,
    '/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/ctr/cpu.cfs_quota_us': '-1\n',
    '/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/ctr/cpu.cfs_period_us': '100000\n',
    '/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us': '50000\n',
    '/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_period_us': '100000\n',
  })
  const r3 = availableCpus({ readFile: v1.readFile, affinity: 8 })
  t.equal(r3.count, 1)
  t.equal(r3.quota, 0.5)
  t.equal(r3.source, 'cgroup-v1')
  t.match(r3.reason, 'at /sys/fs/cgroup/cpu,cpuacct/kubepods/pod1 ')
})

t.test('availableCpus: container view', async (t) => {
  // cgroup namespace: the process sees its own cgroup as the root
  const ns = tree({
    '/proc/self/cgroup': '0::/\n',
    '/proc/self/mountinfo': '600 500 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n',
    '/sys/fs/cgroup/cpu.max': '200000 100000\n',
  })
  const r = availableCpus({ readFile: ns.readFile, affinity: 32 })
  t.equal(r.count, 2)
  t.equal(r.source, 'cgroup-v2')
  t.match(r.reason, 'at /sys/fs/cgroup (')

  // same, mountinfo unavailable: the /sys/fs/cgroup fallback still finds it
  const noMi = tree({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '200000 100000\n' })
  t.equal(availableCpus({ readFile: noMi.readFile, affinity: 32 }).count, 2)

  // v1 without a cgroup namespace: /proc/self/cgroup shows the host path, the
  // mount's root (field 4) is that same path, bind-mounted at the mount point
  const v1 = tree({
    '/proc/self/cgroup': '4:cpu,cpuacct:/docker/0123abcd\n0::/\n',
    '/proc/self/mountinfo':
      '700 600 0:40 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:20 - cgroup cgroup rw,cpu,cpuacct\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '150000\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
  })
  const r2 = availableCpus({ readFile: v1.readFile, affinity: 32 })
  t.equal(r2.count, 2)
  t.equal(r2.source, 'cgroup-v1')
  t.match(r2.reason, 'at /sys/fs/cgroup/cpu,cpuacct (')
  t.notOk(v1.reads.some((p) => p.includes('docker')), 'the host path is not appended to the mount point')

  // several bind mounts of the cpu hierarchy: the one whose root holds our cgroup is used
  const multi = tree({
    '/proc/self/cgroup': '4:cpu:/docker/mine/sub\n',
    '/proc/self/mountinfo':
      '701 600 0:40 /docker/other /mnt/other-cpu rw - cgroup cgroup rw,cpu\n' +
      '702 600 0:40 /docker/mine /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n',
    '/sys/fs/cgroup/cpu/sub/cpu.cfs_quota_us': '400000\n',
    '/sys/fs/cgroup/cpu/sub/cpu.cfs_period_us': '100000\n',
  })
  t.equal(availableCpus({ readFile: multi.readFile, affinity: 32 }).count, 4)
  t.notOk(multi.reads.some((p) => p.startsWith('/mnt/other-cpu')))

  // no mount holds our cgroup: the first one's mount point is still checked
  const outside = tree({
    '/proc/self/cgroup': '4:cpu:/elsewhere\n',
    '/proc/self/mountinfo': '701 600 0:40 /docker/other /mnt/cpu rw - cgroup cgroup rw,cpu\n',
    '/mnt/cpu/cpu.cfs_quota_us': '100000\n',
    '/mnt/cpu/cpu.cfs_period_us': '100000\n',
  })
  t.equal(availableCpus({ readFile: outside.readFile, affinity: 32 }).count, 1)
})

t.test('availableCpus: affinity smaller than the quota', async (t) => {
  const fs = tree({
    '/proc/self/cgroup': '0::/app\n',
    '/proc/self/mountinfo': MI_V2,
    '/sys/fs/cgroup/app/cpu.max': '400000 100000\n',
  })
  t.same(availableCpus({ readFile: fs.readFile, affinity: 2 }), {
    count: 2,
    affinity: 2,
    quota: 4,
    source: 'affinity',
    reason: 'CPU affinity allows 2 CPU(s); the cgroup quota of 4 CPUs at /sys/fs/cgroup/app does not lower that',
  })
  // a tie: the quota does not lower anything, so affinity is reported as deciding
  const tieFs = tree({
    '/proc/self/cgroup': '0::/app\n',
    '/proc/self/mountinfo': MI_V2,
    '/sys/fs/cgroup/app/cpu.max': '150000 100000',
  })
  const tie = availableCpus({ readFile: tieFs.readFile, affinity: 2 })
  t.equal(tie.count, 2)
  t.equal(tie.source, 'affinity')
  t.equal(tie.quota, 1.5)
})

t.test('availableCpus: affinity value', async (t) => {
  const none = (): undefined => undefined
  t.equal(availableCpus({ readFile: none }).affinity, os.availableParallelism(), 'defaults to os.availableParallelism()')
  t.equal(availableCpus({ readFile: none, affinity: 0 }).count, 1, 'never below 1')
  t.equal(availableCpus({ readFile: none, affinity: Number.NaN }).count, 1)
  t.equal(availableCpus({ readFile: none, affinity: 3.7 }).count, 3)
})

t.test('availableCpus on this machine: invariants only', async (t) => {
  const r = availableCpus()
  t.ok(Number.isInteger(r.count), 'count is an integer')
  t.ok(r.count >= 1, 'count >= 1')
  t.ok(r.count <= r.affinity, 'count <= affinity')
  t.equal(r.affinity, os.availableParallelism())
  t.type(r.reason, 'string')
  t.ok(r.reason.length > 0, 'reason is not empty')
  t.ok(['affinity', 'cgroup-v2', 'cgroup-v1'].includes(r.source))
  if (r.quota !== undefined) t.ok(r.quota > 0, 'quota is positive')
  t.comment(JSON.stringify(r))
})
