import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { JUPYTERHUB_FILES } from '../../util/program-files.js';
import type { CliIO } from '../io.js';

/** `hourmeter jupyterhub ...`: the files a hub loads to check quotas before a server starts. */

export const HOOK_FILE = 'hourmeter_quota_hook.py';

export function jupyterhubCommand(_program: Command, io: CliIO): Command {
  const hub = new Command('jupyterhub')
    .summary("JupyterHub: the quota check run before a user's server starts")
    .description(
      "Prints the files a JupyterHub loads so that a spawn over quota stops with its reason: the pre_spawn_hook, which asks `hourmeter serve --quota` (the hub's service) before each server starts, and the folder of the template that shows the hook's message.",
    );
  hub.addHelpText('after', '\nExamples:\n  hourmeter jupyterhub hook > /etc/jupyterhub/hourmeter_quota_hook.py\n  cp -r "$(hourmeter jupyterhub templates)" /etc/jupyterhub/hourmeter-templates');

  const hook = new Command('hook')
    .summary('print the pre_spawn_hook (Python) to save next to jupyterhub_config.py')
    .description(
      "Prints hourmeter_quota_hook.py. Saved where the hub's Python finds it, `from hourmeter_quota_hook import pre_spawn_hook` and " +
        '`c.Spawner.pre_spawn_hook = pre_spawn_hook` load it. It is set by the environment of the hub process: HOURMETER_URL (the ' +
        "service's base, e.g. http://127.0.0.1:10101/services/quota/), HOURMETER_TOKEN_FILE (the file of serve's --token-file), " +
        "HOURMETER_QUOTA_FILE (its `failure: open|closed` decides when the service cannot be reached) and HOURMETER_TIMEOUT (seconds, default 5).",
    )
    .addHelpText(
      'after',
      '\nExamples:\n  hourmeter jupyterhub hook > /etc/jupyterhub/hourmeter_quota_hook.py\n\n' +
        '  # jupyterhub_config.py\n  import sys\n  sys.path.insert(0, "/etc/jupyterhub")\n  from hourmeter_quota_hook import pre_spawn_hook\n  c.Spawner.pre_spawn_hook = pre_spawn_hook',
    )
    .action(() => {
      io.stdout(readFileSync(new URL(HOOK_FILE, JUPYTERHUB_FILES), 'utf8'));
    });

  const templates = new Command('templates')
    .summary("print the folder of the hub template that shows the hook's message")
    .description(
      "Prints the path of a folder holding error.html, which extends the hub's own: when a spawn is refused within a second, " +
        "JupyterHub 3 shows a generic \"Failed to start your server\" where the user lands; this template shows the hook's reason instead. " +
        'Add the folder to c.JupyterHub.template_paths (copy it first if the hub runs elsewhere).',
    )
    .addHelpText('after', '\nExamples:\n  hourmeter jupyterhub templates\n  cp -r "$(hourmeter jupyterhub templates)" /etc/jupyterhub/hourmeter-templates\n\n  # jupyterhub_config.py\n  c.JupyterHub.template_paths = ["/etc/jupyterhub/hourmeter-templates"]')
    .action(() => {
      io.stdout(fileURLToPath(new URL('templates/', JUPYTERHUB_FILES)).replace(/\/$/, '') + '\n');
    });

  hub.addCommand(hook);
  hub.addCommand(templates);
  return hub;
}
