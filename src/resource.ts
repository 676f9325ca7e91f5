/**
 * Typed resource names. A `Resource<T>` is a name that carries the type of the
 * output behind it, so that `getResource(db)` returns a `Db` without a cast.
 */

declare const resourceType: unique symbol;

/**
 * A typed name. Create one with {@link resource}; use it as a manifold's name,
 * in another manifold's `inputs`, and with `getResource`. Two tokens with the
 * same name refer to the same manifold.
 */
export interface Resource<T> {
  /** The manifold name this token stands for. */
  readonly name: string;
  /** Phantom field carrying `T`; it never exists at run time. */
  readonly [resourceType]?: T;
}

/** A manifold name, as a plain string or a typed {@link Resource} token. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type InputName = string | Resource<any>;

/**
 * Creates a typed resource token: `const db = resource<Db>("db")`.
 * @throws TypeError if `name` is not a non-empty string.
 */
export function resource<T>(name: string): Resource<T> {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(`resource(name): name must be a non-empty string (got ${typeof name === "string" ? "an empty string" : String(name)})`);
  }
  return Object.freeze({ name }) as Resource<T>;
}

/**
 * The name behind an input: the string itself, or the token's `name`.
 * Returns `undefined` for anything that is neither a non-empty string nor a token.
 * @internal
 */
export function nameOf(input: unknown): string | undefined {
  if (typeof input === "string") return input.length > 0 ? input : undefined;
  if (input !== null && typeof input === "object") {
    const name = (input as { name?: unknown }).name;
    if (typeof name === "string" && name.length > 0) return name;
  }
  return undefined;
}
