#!/usr/bin/env node
/**
 * @module The `shiparr` command line: serve (default), validate, deploy, plan, decrypt, notify-test.
 * Exit codes: 0 ok, 1 failure (invalid config, failed deploy…), 2 usage or settings error.
 */
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { loadSettings, unauthenticatedExposure, type Settings } from './config/settings.ts';
import { SettingsError } from './errors.ts';
import { VERSION } from './version.ts';

const USAGE = `Shiparr ${VERSION} — GitOps deployer for Docker Compose

Usage:
  shiparr [serve]                    run the daemon (settings from SHIPARR_* environment variables)
  shiparr validate [dir]             check project files (default: SHIPARR_CONFIG_PATH); exit 1 on errors
  shiparr deploy <project>/<repo>    deploy one repository now through the full pipeline; exit 1 if it fails
  shiparr plan <project>/<repo> [--commit=<sha>] [--json]
                                     what a deploy would change, per service (nothing is touched)
  shiparr decrypt <file> [--format dotenv|yaml|json|binary]
                                     decrypt a SOPS file with SOPS_AGE_KEY_FILE / SOPS_AGE_KEY to stdout
  shiparr notify-test <url>          send a test notification to a Shoutrrr URL
  shiparr --version | --help
`;

function settingsOrExit(env: NodeJS.ProcessEnv): Settings | number {
  try {
    return loadSettings(env);
  } catch (err) {
    if (err instanceof SettingsError) {
      process.stderr.write(`shiparr: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [cmd = 'serve', ...args] = argv;
  switch (cmd) {
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'serve': {
      const settings = settingsOrExit(env);
      if (typeof settings === 'number') return settings;
      const exposure = unauthenticatedExposure(settings);
      if (exposure) {
        process.stderr.write(`shiparr: ${exposure}\n`);
        return 2;
      }
      const { serveCommand } = await import('./cli/serve.ts');
      return serveCommand(settings, env);
    }
    case 'validate': {
      const { validateCommand } = await import('./cli/validate.ts');
      return validateCommand(args, env, process.stdout, process.stderr);
    }
    case 'deploy': {
      const settings = settingsOrExit(env);
      if (typeof settings === 'number') return settings;
      const { deployCommand } = await import('./cli/deploy.ts');
      return deployCommand(args, settings, env, process.stdout, process.stderr);
    }
    case 'plan': {
      const settings = settingsOrExit(env);
      if (typeof settings === 'number') return settings;
      const { planCommand } = await import('./cli/plan.ts');
      return planCommand(args, settings, env, process.stdout, process.stderr);
    }
    case 'decrypt': {
      const { decryptCommand } = await import('./cli/decrypt.ts');
      return decryptCommand(args, env, process.stdout, process.stderr);
    }
    case 'notify-test': {
      const { notifyTestCommand } = await import('./cli/notify-test.ts');
      return notifyTestCommand(args, process.stdout, process.stderr);
    }
    default:
      process.stderr.write(`shiparr: unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      // serve resolves only after shutdown; other commands exit with their code.
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`shiparr: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
