// Picks JSON or plain text for an error body from the Accept header. Small on
// purpose: two candidate types do not need a full negotiator.

export type BodyFormat = 'json' | 'text'

interface Match {
  specificity: number
  q: number
}

const NO_MATCH: Match = { specificity: -1, q: 0 }

// RFC 9110 12.5.1: the most specific range that matches sets the quality.
function better (current: Match, range: string, type: string, subtype: string, q: number): Match {
  let specificity = -1
  if (range === `${type}/${subtype}`) specificity = 2
  else if (range === `${type}/*`) specificity = 1
  else if (range === '*/*') specificity = 0
  return specificity > current.specificity ? { specificity, q } : current
}

function quality (params: string[]): number {
  for (const param of params) {
    const [name, value] = param.split('=')
    if (name?.trim().toLowerCase() === 'q' && value !== undefined) {
      const q = Number(value.trim())
      return Number.isFinite(q) ? q : 0
    }
  }
  return 1
}

/** JSON unless the client ranks plain text strictly higher (ties and no header give JSON). */
export function preferredFormat (accept: string | undefined): BodyFormat {
  if (accept === undefined || accept.trim() === '') return 'json'
  let json = NO_MATCH
  let text = NO_MATCH
  for (const part of accept.split(',')) {
    const [rangePart = '', ...params] = part.split(';')
    const range = rangePart.trim().toLowerCase()
    const q = quality(params)
    json = better(json, range, 'application', 'json', q)
    text = better(text, range, 'text', 'plain', q)
  }
  return text.q > json.q ? 'text' : 'json'
}
