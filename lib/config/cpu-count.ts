// How many CPUs this process may really use, for `workers: 'auto'`.
// On Node 20, os.availableParallelism() honours CPU affinity but not the cgroup
// CPU quota, so a container limited to 1.5 CPUs on a 64-core host would start 64
// workers. We take the smallest of the affinity and every cgroup v1/v2 quota on
// the process's own cgroup and its ancestors (a parent's limit applies to its
// children), rounded up, at least 1.
// All file access goes through an injectable readFile so the logic is testable
// over a fake file tree.
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface CpuCount {
  /** what 'auto' means: >= 1 */
  count: number
  /** os.availableParallelism() (or the injected value) */
  affinity: number
  /** the smallest cgroup quota in CPUs (unrounded, e.g. 1.5), when one applies */
  quota?: number
  /** which limit decided */
  source: 'affinity' | 'cgroup-v2' | 'cgroup-v1'
  /** one short human sentence */
  reason: string
}

export interface CpuCountSources {
  /** returns undefined when the file is missing/unreadable; default reads the real fs */
  readFile?: (path: string) => string | undefined
  /** default os.availableParallelism() */
  affinity?: number
}

export interface MountInfoEntry {
  /** field 4: the path inside the filesystem that is mounted (not '/' for bind mounts and v1 in containers) */
  root: string
  /** field 5 */
  mountPoint: string
  fsType: string
  /** per-superblock options; for cgroup v1 these name the controllers (e.g. rw,cpu,cpuacct) */
  superOptions: string[]
}

export interface CgroupEntry {
  /** '0' for the cgroup v2 line */
  hierarchyId: string
  /** empty for the v2 line; e.g. ['cpu', 'cpuacct'] for v1 */
  controllers: string[]
  path: string
}

export interface Quota {
  quota: number
  period: number
}

const V2_FALLBACK = '/sys/fs/cgroup'
// Distros mount the v1 cpu controller either combined or on its own.
const V1_FALLBACKS = ['/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/cpu']

/** Reads a file as UTF-8, or undefined when it is missing or unreadable. */
export function readFileOrUndefined (file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
function unescapeMountPath (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/**
 * Parses /proc/self/mountinfo:
 * `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`.
 * The optional fields vary in number, so the lone '-' separator is searched for.
 */
export function parseMountInfo (text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = []
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/)
    const sep = fields.indexOf('-', 6)
    if (fields.length < 7 || sep === -1 || fields.length < sep + 3) continue
    entries.push({
      root: unescapeMountPath(fields[3]),
      mountPoint: unescapeMountPath(fields[4]),
      fsType: fields[sep + 1],
      superOptions: (fields[sep + 3] ?? '').split(','),
    })
  }
  return entries
}

/** Parses /proc/self/cgroup: `hierarchy-id:controller,list:/path` (v2: `0::/path`). */
export function parseProcCgroup (text: string): CgroupEntry[] {
  const entries: CgroupEntry[] = []
  for (const line of text.split('\n')) {
    // The path may itself contain ':', so only the first two split the fields.
    const m = /^([^:]*):([^:]*):(.*)$/.exec(line.trim())
    if (!m) continue
    entries.push({
      hierarchyId: m[1],
      controllers: m[2] === '' ? [] : m[2].split(','),
      path: m[3],
    })
  }
  return entries
}

// Quota and period are plain positive integers; anything else is treated as no limit.
function positiveInt (s: string | undefined): number | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined
  const n = Number(s)
  return n > 0 ? n : undefined
}

/** Parses cgroup v2 cpu.max (`150000 100000` or `max 100000`); undefined means no limit. */
export function parseCpuMax (text: string | undefined): Quota | undefined {
  if (text === undefined) return undefined
  const [q, p] = text.trim().split(/\s+/)
  const quota = positiveInt(q)
  const period = positiveInt(p)
  if (quota === undefined || period === undefined) return undefined
  return { quota, period }
}

/** Parses cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us; `-1` quota (or a missing file) means no limit. */
export function parseCfsQuota (quotaText: string | undefined, periodText: string | undefined): Quota | undefined {
  const quota = positiveInt(quotaText?.trim())
  const period = positiveInt(periodText?.trim())
  if (quota === undefined || period === undefined) return undefined
  return { quota, period }
}

// The cgroup path relative to a mount's root, or undefined when it lies outside it.
function relativeToRoot (mountRoot: string, cgroupPath: string): string | undefined {
  const rel = path.posix.relative(path.posix.normalize('/' + mountRoot), path.posix.normalize('/' + cgroupPath))
  return rel === '..' || rel.startsWith('../') ? undefined : rel
}

/**
 * The directories holding the limits that apply to a cgroup, leaf first, then
 * each ancestor up to the mount point. The cgroup path from /proc/self/cgroup is
 * made relative to the mount's root (mountinfo field 4): inside a container the
 * mount may expose /docker/abc as its top, so /docker/abc/x lives at mountPoint/x.
 * A path outside the mount's root (e.g. `/../other` under a cgroup namespace)
 * cannot be reached, so only the mount point itself is checked.
 */
export function cgroupDirs (mountPoint: string, mountRoot: string, cgroupPath: string): string[] {
  const rel = relativeToRoot(mountRoot, cgroupPath)
  const parts = rel === undefined || rel === '' ? [] : rel.split('/')
  const dirs: string[] = []
  for (let i = parts.length; i >= 0; i--) {
    dirs.push(path.posix.join(mountPoint, ...parts.slice(0, i)))
  }
  return dirs
}

// Prefer a mount whose root contains our cgroup: a container may see several
// bind mounts of the same hierarchy, only one of which holds the process.
function pickMount (mounts: MountInfoEntry[], cgroupPath: string): MountInfoEntry | undefined {
  return mounts.find((m) => relativeToRoot(m.root, cgroupPath) !== undefined) ?? mounts[0]
}

interface Limit {
  cpus: number
  source: 'cgroup-v2' | 'cgroup-v1'
  text: string
  dir: string
}

function fmt (n: number): string {
  return String(Math.round(n * 1000) / 1000)
}

/** The number of CPUs this process may really use: min(affinity, cgroup quotas), rounded up, >= 1. */
export function availableCpus (sources: CpuCountSources = {}): CpuCount {
  const readFile = sources.readFile ?? readFileOrUndefined
  const rawAffinity = sources.affinity ?? os.availableParallelism()
  // Guard against a nonsense injected value: the result must stay a usable worker count.
  const affinity = Number.isFinite(rawAffinity) && rawAffinity >= 1 ? Math.floor(rawAffinity) : 1

  const cgroups = parseProcCgroup(readFile('/proc/self/cgroup') ?? '')
  const mounts = parseMountInfo(readFile('/proc/self/mountinfo') ?? '')

  let best: Limit | undefined
  const consider = (limit: Limit): void => {
    if (best === undefined || limit.cpus < best.cpus) best = limit
  }

  // cgroup v2: the `0::/path` line. In hybrid setups the cpu controller usually
  // sits on v1 and cpu.max is simply absent here, which is fine.
  const v2 = cgroups.find((c) => c.hierarchyId === '0' && c.controllers.length === 0)
  if (v2) {
    const mount = pickMount(mounts.filter((m) => m.fsType === 'cgroup2'), v2.path)
    for (const dir of cgroupDirs(mount?.mountPoint ?? V2_FALLBACK, mount?.root ?? '/', v2.path)) {
      const q = parseCpuMax(readFile(path.posix.join(dir, 'cpu.max')))
      if (q) consider({ cpus: q.quota / q.period, source: 'cgroup-v2', text: `cpu.max ${q.quota}/${q.period}`, dir })
    }
  }

  // cgroup v1: the line whose controller list contains exactly 'cpu' (not 'cpuacct').
  const v1 = cgroups.find((c) => c.hierarchyId !== '0' && c.controllers.includes('cpu'))
  if (v1) {
    const mount = pickMount(mounts.filter((m) => m.fsType === 'cgroup' && m.superOptions.includes('cpu')), v1.path)
    const bases = mount
      ? [{ point: mount.mountPoint, root: mount.root }]
      : V1_FALLBACKS.map((point) => ({ point, root: '/' }))
    for (const base of bases) {
      for (const dir of cgroupDirs(base.point, base.root, v1.path)) {
        const q = parseCfsQuota(
          readFile(path.posix.join(dir, 'cpu.cfs_quota_us')),
          readFile(path.posix.join(dir, 'cpu.cfs_period_us'))
        )
        if (q) {
          consider({
            cpus: q.quota / q.period,
            source: 'cgroup-v1',
            text: `cpu.cfs_quota_us/cpu.cfs_period_us ${q.quota}/${q.period}`,
            dir,
          })
        }
      }
    }
  }

  // Re-read through a typed alias: TS does not see the assignments made inside consider().
  const limit: Limit | undefined = best
  if (limit === undefined) {
    return { count: affinity, affinity, source: 'affinity', reason: `CPU affinity allows ${affinity} CPU(s); no cgroup CPU quota applies` }
  }
  const rounded = Math.max(1, Math.ceil(limit.cpus))
  if (affinity <= rounded) {
    return {
      count: affinity,
      affinity,
      quota: limit.cpus,
      source: 'affinity',
      reason: `CPU affinity allows ${affinity} CPU(s); the cgroup quota of ${fmt(limit.cpus)} CPUs at ${limit.dir} does not lower that`,
    }
  }
  const how = limit.cpus < 1 ? ', raised to 1' : Number.isInteger(limit.cpus) ? '' : ', rounded up'
  const version = limit.source === 'cgroup-v2' ? 'v2' : 'v1'
  return {
    count: rounded,
    affinity,
    quota: limit.cpus,
    source: limit.source,
    reason: `cgroup ${version} ${limit.text} at ${limit.dir} (${fmt(limit.cpus)} CPUs${how})`,
  }
}
