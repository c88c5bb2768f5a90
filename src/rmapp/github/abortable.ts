/**
 * A GitHub client whose every request carries a step's AbortSignal. A step is aborted when its run is
 * cancelled or leaves the worker (a stop, a lost lease); from then on it must reach GitHub no more —
 * another worker may be running the same step. Octokit hands `request.signal` to fetch, so a request
 * in flight is cut off, and the retry plugin's later attempts (1, 4 and 9 s apart) fail at once
 * instead of reaching GitHub: a stopped `rmapp serve` went on asking GitHub for a permission 10 s
 * after it said "stopped".
 */

const targets = new WeakMap<object, object>();
/** The view already made of a client for a signal: a step asking again gets the same one. */
const views = new WeakMap<AbortSignal, WeakMap<object, object>>();

/** The client `gh` was made from by {@link withSignal} (itself for any other), for per-client caches. */
export function unwrapClient<T extends object>(gh: T): T {
  return (targets.get(gh) as T | undefined) ?? gh;
}

/**
 * `gh` with `signal` added to the options of every request made through it: its endpoint methods
 * (`gh.issues.get(params)`), `gh.request(route, params)`, `gh.graphql(query, params)` and
 * `gh.paginate(method or route, params)` (whose later pages go through the same method). Nothing is
 * copied: the client's auth, throttling and hooks are the same. Not covered: a function made from the
 * client (`gh.request.defaults(…)`), which is the client's own.
 */
export function withSignal<T extends object>(gh: T, signal: AbortSignal): T {
  let made = views.get(signal);
  if (!made) views.set(signal, (made = new WeakMap()));
  const known = made.get(gh);
  if (known) return known as T;
  const proxies = new WeakMap<object, object>();
  const withOptions = (params: unknown): Record<string, unknown> => {
    const p = params && typeof params === 'object' ? (params as Record<string, unknown>) : {};
    const request = p.request && typeof p.request === 'object' ? p.request : {};
    return { ...p, request: { ...request, signal } };
  };
  const wrap = <T extends object>(value: T, key: PropertyKey | null): T => {
    const known = proxies.get(value);
    if (known) return known as T;
    let proxy: object;
    if (typeof value === 'function') {
      // A request function: `request`/`graphql`/`paginate` take a route, query or method first (or, for
      // `request` and `graphql`, one object of options), an endpoint method its parameters.
      const named = key === 'request' || key === 'graphql' || key === 'paginate';
      proxy = new Proxy(value, {
        apply(target, thisArg, args: unknown[]) {
          const list = [...args];
          const paramsAt = named && !(key !== 'paginate' && list[0] !== null && typeof list[0] === 'object') ? 1 : 0;
          while (list.length < paramsAt) list.push(undefined);
          list[paramsAt] = withOptions(list[paramsAt]);
          // `paginate('GET /route', params)` sends every page through the client's own `request`: given
          // the route as a request function bound to the signal instead, its pages carry the signal.
          if (key === 'paginate' && typeof list[0] === 'string') list[0] = routeRequest(gh, list[0], signal);
          return Reflect.apply(target as (...a: unknown[]) => unknown, thisArg === proxy ? value : thisArg, list);
        },
      });
    } else {
      // A namespace of endpoint methods (`gh.issues`, `gh.rest.pulls`).
      proxy = new Proxy(value, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          return isRequesting(v, prop) || isNamespace(v) ? wrap(v as object, prop) : v;
        },
      });
    }
    proxies.set(value, proxy);
    targets.set(proxy, unwrapClient(value));
    return proxy as T;
  };
  const client = new Proxy(gh, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'hook' || prop === 'log' || prop === 'auth') return v;
      return isRequesting(v, prop) || isNamespace(v) ? wrap(v as object, prop) : v;
    },
  });
  targets.set(client, gh);
  made.set(gh, client);
  return client;
}

/** `route` as `paginate` takes an endpoint method: its requests carry `signal`. */
function routeRequest(gh: object, route: string, signal: AbortSignal): unknown {
  const request = (
    gh as { request: ((options: Record<string, unknown>) => unknown) & { endpoint: (route: string, params?: unknown) => unknown } }
  ).request;
  return Object.assign(
    (options: Record<string, unknown>) => request({ ...options, request: { ...(options.request as object | undefined), signal } }),
    { endpoint: (params?: unknown) => request.endpoint(route, params) },
  );
}

/** Octokit's request functions: endpoint methods and `request`/`graphql` carry `.endpoint`; `paginate` its `.iterator`. */
function isRequesting(v: unknown, prop: PropertyKey): boolean {
  return typeof v === 'function' && (typeof (v as { endpoint?: unknown }).endpoint === 'function' || prop === 'paginate');
}

/** A plain object of endpoint methods. */
function isNamespace(v: unknown): boolean {
  return !!v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
}
