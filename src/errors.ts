// Every error the origin raises on purpose, in one catalogue (@fastify/error): a stable code, a
// message that says what is wrong and what to do, and the HTTP status where one applies.
// Recognise them with `instanceof`, never by their name or message text.
import createError from '@fastify/error';

/** The environment holds a bad value: the message names every bad variable and what is allowed. */
export const ConfigError = createError(
  'ORIGIN_CONFIG',
  'Invalid configuration: %s. See the Configuration table in README.md.',
);

/** The build directory holds no server build made with our adapter. */
export const BuildLoadError = createError('ORIGIN_BUILD_LOAD', 'Cannot load the Astro build at %s: %s');

/** The installed Astro lacks an internal the origin relies on (an upgrade moved it). */
export const AstroInternalsError = createError(
  'ORIGIN_ASTRO_INTERNALS',
  'This Astro version has no %s: astro-fastify-origin needs astro@~6.4 (the queue renderer with a node pool). Install astro@6.4 and rebuild the site.',
);

/** Load shedding: a configured limit is exceeded; expected under load, so not logged as an error. */
export const OverloadedError = createError('ORIGIN_OVERLOADED', 'The origin is overloaded; retry in %d s.', 503);

/** A plugin option is missing or wrong: thrown when the plugin is registered, before listening. */
export const PluginOptionsError = createError('ORIGIN_PLUGIN_OPTIONS', 'astro-fastify-origin: %s');

/** Start-up errors that are the operator's to fix: printed as one line, without a stack. */
export function isOperatorError(err: unknown): boolean {
  return (
    err instanceof ConfigError ||
    err instanceof BuildLoadError ||
    err instanceof AstroInternalsError ||
    err instanceof PluginOptionsError
  );
}
