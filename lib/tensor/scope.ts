// Scopes free intermediate tensors deterministically (like tfjs `tidy`):
// every tensor made while a scope is open is disposed when it closes, except
// what the function returns and what was passed to keep().

interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const scopes: Array<Set<Disposable>> = [];
const kept = new WeakSet<Disposable>();

/** Called by every new Tensor: records it in the innermost open scope. */
export function track(t: Disposable): void {
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
}

/** Exempts a tensor from disposal by the scopes that are open now. */
export function keep<T extends Disposable>(t: T): T {
  kept.add(t);
  return t;
}

function collect(value: unknown, out: Set<unknown>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  out.add(value);
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, seen);
}

/**
 * Runs `fn` and disposes every tensor created inside it that is not part of
 * its result (arrays, plain objects and Maps are searched). Returned tensors
 * move to the enclosing scope. `fn` must be synchronous: tensors made after an
 * `await` would escape the scope, so a Promise result is an error.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) if (!kept.has(t)) t.dispose();
    throw err;
  }
  scopes.pop();
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    for (const t of scope) if (!kept.has(t)) t.dispose();
    throw new TypeError('tidy(fn): fn must be synchronous (it returned a Promise); await outside the scope');
  }
  const returned = new Set<unknown>();
  collect(result, returned, new Set());
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (returned.has(t) || kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}
