// A build-time edit of Astro's FetchState (astro/dist/core/fetch/fetch-state.js, bundled into
// every server build) so the objects of a render die in the young generation, as garbage
// should. Measured with --trace-gc-nvp (bare server, 50 connections): the demo's tiny page
// promoted 9.3 KB of every request to the old generation before, 1.0 KB after; the page of 20
// async components 14.2 KB before, 1.5 KB after (README, *Short-lived render objects*).
//
// Why they lived on: V8 keeps the getter of an accessor property in an AccessorPair allocated in
// the old generation, and keeps a prototype from the old generation too (its map). A getter
// made per request (an object literal's `get x() {}`, Object.defineProperty with an arrow) is a
// closure over the request's scope, and a per-request object used as a prototype holds the
// request's objects: both stay reachable from the old generation until the next mark-compact,
// however dead, so every scavenge kept whole renders (FetchState, its Request, result, cookies,
// locals) and promoted them. FetchState made such getters on every request (the result's
// `response.headers`, the action API context, the provider getters `session` and `cache`, the
// page partial of the Astro global) and made the page partial the prototype of every component's
// Astro global. Here:
// - the getters close over nothing of the request: they read the FetchState from a
//   non-enumerable own property (a string key, so the copy Astro's actions make of a context's
//   descriptors carries it); provider getters are one shared function a key; the response's
//   getter closes over its Headers alone;
// - an Astro global inherits the partial's properties from a prototype shared by every render
//   (one a shape of partial), whose accessors read the partial from the global; what is own and
//   what inherited, and what assigning to each does, stay as Astro made them.
//
// Every edit matches Astro's text exactly; if one does not (another Astro version), the file is
// left as it was and the build warns: renders are then as Astro makes them, correct but with
// more garbage-collection work a request.
import type { AstroConfig } from 'astro';

/** A Vite plugin, typed through Astro's config (this package does not depend on vite itself). */
type VitePlugin = Extract<NonNullable<NonNullable<AstroConfig['vite']>['plugins']>[number], { name: string }>;

export const SHORT_LIVED_RENDER_OBJECTS_PLUGIN = 'astro-fastify-origin:short-lived-render-objects';
/** The module edited, as its id ends (any package manager's layout). */
const FETCH_STATE_MODULE = /[\\/]astro[\\/]dist[\\/]core[\\/]fetch[\\/]fetch-state\.js$/;
/** Where the context's getters find their FetchState. */
export const FETCH_STATE_KEY = '__astroFetchState';

interface Edit {
  name: string;
  find: string;
  replace: string;
}

const EDITS: readonly Edit[] = [
  {
    name: 'response headers getter',
    find: `    const response = {
      status: actionResult?.error ? actionResult?.error.status : status,
      statusText: actionResult?.error ? actionResult?.error.type : "OK",
      get headers() {
        return headers;
      },
      set headers(_) {
        throw new AstroError(AstroErrorData.AstroResponseHeadersReassigned);
      }
    };`,
    replace: `    const response = __afoResponse(
      actionResult?.error ? actionResult?.error.status : status,
      actionResult?.error ? actionResult?.error.type : "OK",
      headers
    );`,
  },
  {
    name: 'provider getters',
    find: `    const state = this;
    for (const key of this.#providers.keys()) {
      Object.defineProperty(target, key, {
        get: () => state.resolve(key),`,
    replace: `    __afoHoldState(target, this);
    for (const key of this.#providers.keys()) {
      Object.defineProperty(target, key, {
        get: __afoProviderGetter(key),`,
  },
  {
    name: 'action API context getters',
    find: `    const state = this;
    const ctx = {
      get cookies() {
        return state.cookies;
      },
      routePattern: this.routeData.route,
      isPrerendered: this.routeData.prerender,
      get clientAddress() {
        return state.getClientAddress();
      },
      get currentLocale() {
        return state.computeCurrentLocale();
      },
      generator: ASTRO_GENERATOR,
      get locals() {
        return state.locals;
      },
      set locals(_) {
        throw new AstroError(AstroErrorData.LocalsReassigned);
      },
      // SAFETY: getActionAPIContext is only called after route resolution,
      // so routeData is always set and the params getter always returns a value.
      params: this.params,
      get preferredLocale() {
        return state.computePreferredLocale();
      },
      get preferredLocaleList() {
        return state.computePreferredLocaleList();
      },
      request: this.request,
      site: this.pipeline.site,
      url: this.url,
      get originPathname() {
        return getOriginPathname(state.request);
      },
      get csp() {
        return state.getCsp();
      },
      get logger() {
        if (!state.pipeline.manifest.experimentalLogger) {
          state.pipeline.logger.warn(
            null,
            "The Astro.logger is available only when experimental.logger is defined."
          );
          return void 0;
        }
        return {
          info(msg) {
            state.pipeline.logger.info(null, msg);
          },
          warn(msg) {
            state.pipeline.logger.warn(null, msg);
          },
          error(msg) {
            state.pipeline.logger.error(null, msg);
          }
        };
      }
    };
    this.defineProviderGetters(ctx);`,
    replace: `    const ctx = __afoActionAPIContext(this);
    this.defineProviderGetters(ctx);`,
  },
  {
    name: 'Astro global prototype',
    find: `    const astroComponentPartial = { props, self: null };
    const Astro = Object.assign(
      Object.create(astroPagePartial),
      astroComponentPartial
    );
    let _slots;
    Object.defineProperty(Astro, "slots", {
      get: () => {
        if (!_slots) {
          _slots = new Slots(
            result,
            slotValues,
            this.pipeline.logger
          );
        }
        return _slots;
      }
    });
    return Astro;`,
    replace: `    return __afoAstro(astroPagePartial, props, result, slotValues, this.pipeline.logger);`,
  },
  {
    name: 'Astro page partial getters',
    find: `    const partial = {
      generator: ASTRO_GENERATOR,
      routePattern: this.routeData.route,
      isPrerendered: this.routeData.prerender,
      cookies,
      get clientAddress() {
        return state.getClientAddress();
      },
      get currentLocale() {
        return state.computeCurrentLocale();
      },
      params,
      get preferredLocale() {
        return state.computePreferredLocale();
      },
      get preferredLocaleList() {
        return state.computePreferredLocaleList();
      },
      locals,
      redirect,
      rewrite,
      request: this.request,
      response,
      site: pipeline.site,
      getActionResult: createGetActionResult(locals),
      get callAction() {
        return callAction;
      },
      url,
      get originPathname() {
        return getOriginPathname(state.request);
      },
      get csp() {
        return state.getCsp();
      },
      get logger() {
        return {
          info(msg) {
            pipeline.logger.info(null, msg);
          },
          warn(msg) {
            pipeline.logger.warn(null, msg);
          },
          error(msg) {
            pipeline.logger.error(null, msg);
          }
        };
      }
    };
    this.defineProviderGetters(partial);`,
    replace: `    const partial = __afoPagePartial(state, {
      cookies,
      params,
      locals,
      redirect,
      rewrite,
      request: this.request,
      response,
      site: pipeline.site,
      getActionResult: createGetActionResult(locals),
      callAction,
      url
    });
    this.defineProviderGetters(partial);`,
  },
];

/** Module-level helpers the edits call: nothing in them closes over a request's scope. */
const HELPERS = `
// astro-fastify-origin: getters that close over nothing of the request, so a render's objects
// die young (astro-fastify-origin/src/adapter/short-lived-render-objects.ts says why).
const __afoKey = ${JSON.stringify(FETCH_STATE_KEY)};
function __afoHoldState(target, state) {
  if (!Object.hasOwn(target, __afoKey)) Object.defineProperty(target, __afoKey, { value: state });
}
function __afoResponse(status, statusText, headers) {
  return {
    status,
    statusText,
    get headers() {
      return headers;
    },
    set headers(_) {
      throw new AstroError(AstroErrorData.AstroResponseHeadersReassigned);
    }
  };
}
const __afoProviderGetters = new Map();
function __afoProviderGetter(key) {
  let get = __afoProviderGetters.get(key);
  if (!get) {
    get = function() {
      return this[__afoKey].resolve(key);
    };
    __afoProviderGetters.set(key, get);
  }
  return get;
}
const __afoCallAction = Symbol("astro-fastify-origin.callAction");
function __afoPagePartial(state, data) {
  const partial = {
    generator: ASTRO_GENERATOR,
    routePattern: state.routeData.route,
    isPrerendered: state.routeData.prerender,
    cookies: data.cookies,
    get clientAddress() {
      return this[__afoKey].getClientAddress();
    },
    get currentLocale() {
      return this[__afoKey].computeCurrentLocale();
    },
    params: data.params,
    get preferredLocale() {
      return this[__afoKey].computePreferredLocale();
    },
    get preferredLocaleList() {
      return this[__afoKey].computePreferredLocaleList();
    },
    locals: data.locals,
    redirect: data.redirect,
    rewrite: data.rewrite,
    request: data.request,
    response: data.response,
    site: data.site,
    getActionResult: data.getActionResult,
    get callAction() {
      return this[__afoCallAction];
    },
    url: data.url,
    get originPathname() {
      return getOriginPathname(this[__afoKey].request);
    },
    get csp() {
      return this[__afoKey].getCsp();
    },
    get logger() {
      const pipeline = this[__afoKey].pipeline;
      return {
        info(msg) {
          pipeline.logger.info(null, msg);
        },
        warn(msg) {
          pipeline.logger.warn(null, msg);
        },
        error(msg) {
          pipeline.logger.error(null, msg);
        }
      };
    }
  };
  __afoHoldState(partial, state);
  Object.defineProperty(partial, __afoCallAction, { value: data.callAction });
  return partial;
}
// The Astro global of a component: its own props, self and slots, and the page partial's
// properties through one prototype shared by every render (made once a shape of partial),
// where Astro made each request's partial the prototype. What is own and what inherited, and
// what assigning to each does, stay as they were: a partial's data property is shadowed by an
// own one, its getters have no setter.
const __afoOwn = Symbol("astro-fastify-origin.astro");
const __afoProtos = new Map();
const __afoProtoOf = Symbol("astro-fastify-origin.astroPrototype");
function __afoAstroPrototype(partial) {
  let proto = partial[__afoProtoOf];
  if (proto) return proto;
  const keys = Object.keys(partial);
  const shape = keys.join("\0");
  proto = __afoProtos.get(shape);
  if (!proto) {
    proto = {};
    for (const key of keys) {
      const descriptor = {
        get() {
          return this[__afoOwn].partial[key];
        },
        enumerable: true,
        configurable: true
      };
      if (!Object.getOwnPropertyDescriptor(partial, key).get) {
        descriptor.set = function(value) {
          Object.defineProperty(this, key, { value, writable: true, enumerable: true, configurable: true });
        };
      }
      Object.defineProperty(proto, key, descriptor);
    }
    __afoProtos.set(shape, proto);
  }
  Object.defineProperty(partial, __afoProtoOf, { value: proto });
  return proto;
}
function __afoSlots() {
  const own = this[__afoOwn];
  return own.slots ??= new Slots(own.result, own.slotValues, own.logger);
}
function __afoAstro(partial, props, result, slotValues, logger) {
  const Astro = Object.create(__afoAstroPrototype(partial));
  Astro.props = props;
  Astro.self = null;
  Object.defineProperty(Astro, __afoOwn, { value: { partial, result, slotValues, logger, slots: void 0 } });
  Object.defineProperty(Astro, "slots", { get: __afoSlots });
  return Astro;
}
function __afoActionAPIContext(state) {
  const ctx = {
    get cookies() {
      return this[__afoKey].cookies;
    },
    routePattern: state.routeData.route,
    isPrerendered: state.routeData.prerender,
    get clientAddress() {
      return this[__afoKey].getClientAddress();
    },
    get currentLocale() {
      return this[__afoKey].computeCurrentLocale();
    },
    generator: ASTRO_GENERATOR,
    get locals() {
      return this[__afoKey].locals;
    },
    set locals(_) {
      throw new AstroError(AstroErrorData.LocalsReassigned);
    },
    params: state.params,
    get preferredLocale() {
      return this[__afoKey].computePreferredLocale();
    },
    get preferredLocaleList() {
      return this[__afoKey].computePreferredLocaleList();
    },
    request: state.request,
    site: state.pipeline.site,
    url: state.url,
    get originPathname() {
      return getOriginPathname(this[__afoKey].request);
    },
    get csp() {
      return this[__afoKey].getCsp();
    },
    get logger() {
      const state = this[__afoKey];
      if (!state.pipeline.manifest.experimentalLogger) {
        state.pipeline.logger.warn(
          null,
          "The Astro.logger is available only when experimental.logger is defined."
        );
        return void 0;
      }
      return {
        info(msg) {
          state.pipeline.logger.info(null, msg);
        },
        warn(msg) {
          state.pipeline.logger.warn(null, msg);
        },
        error(msg) {
          state.pipeline.logger.error(null, msg);
        }
      };
    }
  };
  __afoHoldState(ctx, state);
  return ctx;
}
`;

/** What transformFetchState did: the new text, or why it left the module alone. */
export type FetchStateEdit = { code: string } | { missing: string[] };

/** Applies every edit to fetch-state.js, or none: `missing` names the edits whose text was not found. */
export function transformFetchState(code: string): FetchStateEdit {
  const missing = EDITS.filter((edit) => code.split(edit.find).length !== 2).map((edit) => edit.name);
  if (missing.length) return { missing };
  let edited = code;
  for (const edit of EDITS) edited = edited.replace(edit.find, () => edit.replace);
  return { code: edited + HELPERS };
}

/** The Vite plugin the adapter adds to the build (adapter option `shortLivedRenderObjects`). */
export function shortLivedRenderObjects(): VitePlugin {
  return {
    name: SHORT_LIVED_RENDER_OBJECTS_PLUGIN,
    transform(code, id) {
      if (!FETCH_STATE_MODULE.test(id.split('?')[0]!)) return undefined;
      const edit = transformFetchState(code);
      if ('code' in edit) return { code: edit.code, map: null };
      this.warn(
        `Astro's fetch-state.js is not the one this adapter knows (Astro 6.4.8; not found: ${edit.missing.join(', ')}): ` +
          'renders keep Astro’s own objects, correct but with more garbage-collection work a request. ' +
          'Pin astro to 6.4.8, or pass `shortLivedRenderObjects: false` to silence this.',
      );
      return undefined;
    },
  };
}
