// Rendezvous (highest-random-weight) hashing of a client key over the slots: every
// slot gets a weight from hash(key, slot) and the key goes to the heaviest. A key
// maps to a slot, not a process, so a restarted or reloaded worker of the slot gets
// the same clients back; scaling from N to N+1 slots moves only the keys the new
// slot wins (about 1/(N+1)), and removing a slot moves only its own keys. Pure.

/** FNV-1a over the key's UTF-16 code units, 32 bits. */
function fnv1a (key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** A 32-bit finalizer (murmur3's fmix32) of the key's hash mixed with the slot. */
function weight (keyHash: number, slot: number): number {
  let h = (keyHash ^ Math.imul(slot + 1, 0x9e3779b9)) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The key's slot among those `available` (the next in its ranking while its own has no worker). */
export function pickSlot (key: string, slots: number, available: (slot: number) => boolean): number | undefined {
  const h = fnv1a(key)
  let best: number | undefined
  let bestWeight = -1
  for (let slot = 0; slot < slots; slot++) {
    if (!available(slot)) continue
    const w = weight(h, slot)
    if (w > bestWeight) {
      best = slot
      bestWeight = w
    }
  }
  return best
}
