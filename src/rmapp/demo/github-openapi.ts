/**
 * GitHub's official OpenAPI description (the `@octokit/openapi` package, api.github.com) as a checker
 * for the GitHub emulator of the tests and of `rmapp demo`: a route the emulator serves must be an operation of the real API, and a
 * request it receives must carry what the real API requires. Without this an emulator drifts into
 * accepting calls GitHub would refuse, and the adapters pass tests against a fiction.
 *
 * Only what a wrong adapter call would get wrong is checked: the operation exists (method + path
 * template), required path/query parameters are present and path parameters have their type, a
 * required body is present, its required fields are present (`allOf` merged, one `oneOf`/`anyOf`
 * branch satisfied), and the top-level fields it carries have the declared JSON type.
 */
import { createRequire } from 'node:module';

type Json = Record<string, unknown>;

interface Spec {
  paths: Record<string, Record<string, Json>>;
  components: Record<string, Record<string, Json>>;
}

/** One operation of the spec, reduced to what the checks need. */
export interface SpecOperation {
  method: string;
  /** The path template, e.g. `/repos/{owner}/{repo}/pulls`. */
  path: string;
  operationId: string;
  /** Path parameters and their JSON type (`integer` parameters match only digits). */
  pathParams: Record<string, string>;
  requiredQuery: string[];
  /** The operation requires a JSON body. */
  bodyRequired: boolean;
  /** The body schema, `$ref`s resolved at the top level; null when the operation takes no body. */
  bodySchema: Json | null;
}

let cached: Spec | undefined;

/**
 * The parsed description (13 MB, ~100 ms): loaded once per process, on first use. Only the emulator
 * (tests, `rmapp demo`) asks for it, so `serve` and `worker` never load it; it is a runtime dependency
 * because the demo ships in the package (README, "Try it: rmapp demo").
 */
export function githubSpec(): Spec {
  cached ??= createRequire(import.meta.url)('@octokit/openapi/generated/api.github.com.json') as Spec;
  return cached;
}

function resolveRef(value: unknown): Json {
  let v = value as Json;
  for (let i = 0; i < 10 && v && typeof v.$ref === 'string'; i++) {
    const parts = (v.$ref as string).replace(/^#\//, '').split('/');
    let target: unknown = githubSpec();
    for (const p of parts) target = (target as Json)[p];
    v = target as Json;
  }
  return v;
}

/** The operation for `method` and `path` (a template, exactly as the spec spells it), or undefined. */
export function findOperation(method: string, path: string): SpecOperation | undefined {
  const item = githubSpec().paths[path];
  const op = item?.[method.toLowerCase()];
  if (!item || !op) return undefined;
  const params = [
    ...((item.parameters as unknown as unknown[] | undefined) ?? []),
    ...((op.parameters as unknown[] | undefined) ?? []),
  ].map(resolveRef);
  const pathParams: Record<string, string> = {};
  for (const p of params.filter((p) => p.in === 'path'))
    pathParams[p.name as string] = String((resolveRef(p.schema) ?? {}).type ?? 'string');
  const requestBody = op.requestBody ? resolveRef(op.requestBody) : null;
  const content = (requestBody?.content as Record<string, Json> | undefined)?.['application/json'];
  return {
    method: method.toUpperCase(),
    path,
    operationId: String(op.operationId),
    pathParams,
    requiredQuery: params.filter((p) => p.in === 'query' && p.required === true).map((p) => p.name as string),
    bodyRequired: requestBody?.required === true,
    bodySchema: content?.schema ? resolveRef(content.schema) : null,
  };
}

function typeMatches(type: unknown, value: unknown): boolean {
  if (type === undefined) return true;
  if (Array.isArray(type)) return type.some((t) => typeMatches(t, value));
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'null':
      return value === null;
    default:
      return true;
  }
}

/** Problems of `body` against an object schema: missing required fields, top-level fields of the wrong type. */
function bodyProblems(schema: Json, body: Json): string[] {
  const problems: string[] = [];
  const required = new Set<string>((schema.required as string[] | undefined) ?? []);
  const properties: Record<string, Json> = { ...((schema.properties as Record<string, Json> | undefined) ?? {}) };
  for (const part of ((schema.allOf as unknown[]) ?? []).map(resolveRef)) {
    for (const r of (part.required as string[] | undefined) ?? []) required.add(r);
    Object.assign(properties, part.properties ?? {});
  }
  for (const field of required) if (body[field] === undefined) problems.push(`missing required field "${field}"`);
  for (const [field, value] of Object.entries(body)) {
    const prop = properties[field] ? resolveRef(properties[field]) : undefined;
    if (!prop || value === undefined) continue;
    const nullable = prop.nullable === true && value === null;
    if (!nullable && !typeMatches(prop.type, value))
      problems.push(`field "${field}" should be ${JSON.stringify(prop.type)}, got ${JSON.stringify(value)}`);
  }
  const alternatives = ((schema.oneOf as unknown[] | undefined) ?? (schema.anyOf as unknown[] | undefined) ?? []).map(resolveRef);
  if (alternatives.length > 0) {
    const results = alternatives.map((alt) => bodyProblems(alt, body));
    if (results.every((r) => r.length > 0))
      problems.push(`matches none of the ${alternatives.length} alternatives (${results.map((r) => r.join(', ')).join(' | ')})`);
  }
  return problems;
}

/**
 * What is wrong with a request for `op` (empty when GitHub would accept its shape).
 *
 * @example
 * checkRequest(findOperation('POST', '/repos/{owner}/{repo}/pulls')!, { params, query, body: { head: 'x' } });
 * // → ['missing required field "base"']
 */
export function checkRequest(
  op: SpecOperation,
  request: { params: Record<string, string>; query: URLSearchParams; body: unknown },
): string[] {
  const problems: string[] = [];
  for (const [name, type] of Object.entries(op.pathParams)) {
    const value = request.params[name];
    if (value === undefined || value === '') problems.push(`missing path parameter "${name}"`);
    else if (type === 'integer' && !/^\d+$/.test(value)) problems.push(`path parameter "${name}" should be an integer, got "${value}"`);
  }
  for (const name of op.requiredQuery) if (!request.query.has(name)) problems.push(`missing required query parameter "${name}"`);
  if (request.body === undefined) {
    if (op.bodyRequired) problems.push('missing the required JSON body');
    return problems;
  }
  if (!op.bodySchema) return problems;
  if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
    if (op.bodySchema.type === 'object') problems.push('the body should be a JSON object');
    return problems;
  }
  return [...problems, ...bodyProblems(op.bodySchema, request.body as Json)];
}
