// Expecting an error of a given class: it must be thrown (or the promise must
// reject), be an instance of the class (t.type: tap's t.match does not check
// classes) and carry the given fields. The error is returned for more checks.
import type { Test } from 'tap'

type ErrorClass<E> = abstract new (...args: any[]) => E

function check<E> (t: Test, err: unknown, type: ErrorClass<E>, fields: object): E {
  t.type(err, type)
  t.match(err, fields)
  return err as E
}

/** Calls `fn`, which must throw an `type` matching `fields`; `what` names the call when it does not. */
export function thrown<E> (t: Test, fn: () => unknown, type: ErrorClass<E>, fields: object, what: string): E {
  try {
    fn()
  } catch (err) {
    return check(t, err, type, fields)
  }
  t.fail(`${what} did not throw`)
  throw new Error(`${what} did not throw`)
}

/** Awaits `fn()`, which must reject with an `type` matching `fields`; `what` names the call when it does not. */
export async function rejected<E> (t: Test, fn: () => Promise<unknown>, type: ErrorClass<E>, fields: object, what: string): Promise<E> {
  let result: unknown
  try {
    result = await fn()
  } catch (err) {
    return check(t, err, type, fields)
  }
  t.fail(`${what} did not reject`, { result })
  throw new Error(`${what} did not reject`)
}
