// Scenario options: defaults in code, overridden by `--name=value` / `--name value` flags or by
// LOAD_NAME environment variables (flags win). The type of each default decides the parsing.

export type OptionValue = string | number | boolean;

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function envName(name: string): string {
  return `LOAD_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

function parse(name: string, raw: string, fallback: OptionValue): OptionValue {
  if (typeof fallback === 'number') {
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new Error(`--${kebab(name)} must be a number, got ${JSON.stringify(raw)}`);
    return n;
  }
  if (typeof fallback === 'boolean') return raw === '' || /^(1|true|yes|on)$/i.test(raw);
  return raw;
}

/**
 * Reads the options of a scenario. `--help` prints them (flag, environment variable,
 * default, description) and exits.
 */
export function readOptions<T extends Record<string, OptionValue>>(
  scenario: string,
  defaults: T,
  help: Partial<Record<keyof T, string>> = {},
  argv: string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): T {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`${scenario} options (flag, or environment variable):`);
    for (const [name, value] of Object.entries(defaults)) {
      console.log(`  --${kebab(name)}  ${envName(name)}  (default ${JSON.stringify(value)})  ${help[name] ?? ''}`);
    }
    process.exit(0);
  }
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)} (see --help)`);
    const eq = arg.indexOf('=');
    if (eq > 0) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) flags.set(arg.slice(2), argv[++i]!);
    else flags.set(arg.slice(2), '');
  }
  const known = new Set(Object.keys(defaults).map(kebab));
  for (const flag of flags.keys()) {
    const bare = flag.startsWith('no-') ? flag.slice(3) : flag;
    if (!known.has(flag) && !known.has(bare)) throw new Error(`unknown option --${flag} (see --help)`);
  }
  const out: Record<string, OptionValue> = {};
  for (const [name, fallback] of Object.entries(defaults)) {
    const flag = kebab(name);
    if (flags.has(flag)) out[name] = parse(name, flags.get(flag)!, fallback);
    else if (typeof fallback === 'boolean' && flags.has(`no-${flag}`)) out[name] = false;
    else if (env[envName(name)] !== undefined) out[name] = parse(name, env[envName(name)]!, fallback);
    else out[name] = fallback;
  }
  return out as T;
}

/** "a,b, c" → ["a", "b", "c"] */
export function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
