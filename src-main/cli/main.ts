/**
 * `boxwood <command> ...`: one dispatcher, one file per command. Each command module exports
 * `main(args): Promise<number>` and returns the process exit code.
 */
const commands: Record<string, { load: () => Promise<{ main(args: string[]): Promise<number> }>; help: string }> = {
  run: { load: () => import('./run'), help: 'boot a machine headless (kernel, CD-ROM or disk)' },
  image: { load: () => import('./image'), help: 'create, inspect, convert and check disk images' },
  serve: { load: () => import('./serve'), help: 'serve the UI to a browser on 127.0.0.1 (the web twin)' },
  vm: { load: () => import('./vm'), help: 'manage the VM library: create, list, start, snapshot, clone' },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.help}`);
  return `usage: boxwood <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`boxwood: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  let mod;
  try {
    mod = await command.load();
  } catch (err) {
    process.stderr.write(`boxwood: the '${name}' command is not available in this build (${(err as Error).message})\n`);
    return 2;
  }
  return mod.main(rest);
}
