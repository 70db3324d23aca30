"""A JupyterHub pre_spawn_hook that asks hourmeter's quota service before a server starts.

Load it in jupyterhub_config.py:

    import sys
    sys.path.insert(0, '/etc/jupyterhub')          # the folder holding this file
    from hourmeter_quota_hook import pre_spawn_hook
    c.Spawner.pre_spawn_hook = pre_spawn_hook
    c.JupyterHub.template_paths = ['/etc/jupyterhub/hourmeter-templates']  # `hourmeter jupyterhub templates`

Settings (environment of the hub process, or the module's globals of the same name, or
make_hook's arguments):

    HOURMETER_URL         the service's base, e.g. http://127.0.0.1:10101/services/quota/
    HOURMETER_TOKEN_FILE  the file of `hourmeter serve --token-file`
    HOURMETER_QUOTA_FILE  the quota file: only its top-level `failure: open|closed` is read,
                          when the service cannot be reached (no file or no rule: closed)
    HOURMETER_TIMEOUT     seconds to wait for the service (default 5)

The request sent is what the spawner will ask for: cpu_guarantee, mem_guarantee and
extra_resource_guarantees["nvidia.com/gpu"]. KubeSpawner applies the chosen profile's
kubespawner_override in start(), after this hook, so the hook applies it first
(load_user_options, which start() repeats to the same effect). Groups are not sent: the
service reads them from the hub.
"""

import inspect
import json
import logging
import os
import re

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

HOURMETER_URL = os.environ.get('HOURMETER_URL', '')
HOURMETER_TOKEN_FILE = os.environ.get('HOURMETER_TOKEN_FILE', '')
HOURMETER_QUOTA_FILE = os.environ.get('HOURMETER_QUOTA_FILE', '')
HOURMETER_TIMEOUT = float(os.environ.get('HOURMETER_TIMEOUT', '5'))

UNAVAILABLE = (
    'Your server was not started: quota accounting is unavailable right now, so new servers '
    'cannot be checked against your quota. This is not about your usage; please try again later.'
)

log = logging.getLogger('hourmeter_quota_hook')


def _fail_open_counter():
    # The hub serves /hub/metrics from prometheus_client's default registry; a second load of
    # this module must find the counter the first one registered.
    try:
        from prometheus_client import REGISTRY, Counter
    except ImportError:
        return None
    try:
        return Counter(
            'hourmeter_quota_fail_open_total',
            'Spawns let through because the hourmeter quota service could not be reached',
        )
    except ValueError:
        return REGISTRY._names_to_collectors.get('hourmeter_quota_fail_open_total')


FAIL_OPEN = _fail_open_counter()


def spawn_request(spawner):
    """What the spawner will ask for, in the units /quota/check takes."""
    request = {}
    cpu = getattr(spawner, 'cpu_guarantee', None)
    if cpu:
        request['cpu'] = cpu
    mem = getattr(spawner, 'mem_guarantee', None)
    if mem:
        # Spawners hold bytes (ByteSpecification); GiB keeps the number exact enough.
        request['memory'] = '%gGiB' % (int(mem) / 2**30)
    extra = getattr(spawner, 'extra_resource_guarantees', None) or {}
    gpu = extra.get('nvidia.com/gpu')
    if gpu:
        request['gpu'] = int(gpu)
    return request


def failure_rule(quota_file):
    """The quota file's top-level `failure:` rule; closed when it cannot be read."""
    try:
        with open(quota_file, encoding='utf-8') as f:
            for line in f:
                m = re.match(r'failure:\s*["\']?(open|closed)["\']?\s*(#.*)?$', line.rstrip())
                if m:
                    return m.group(1)
    except OSError as e:
        log.warning('hourmeter quota hook: cannot read the quota file %r (%s): failing closed', quota_file, e)
    return 'closed'


def refuse(message, status=403):
    error = web.HTTPError(status, message)
    # Shown by the hub on the spawn-pending page, and by the error template shipped with the hook.
    error.jupyterhub_message = message
    return error


def make_hook(url=None, token_file=None, quota_file=None, timeout=None):
    """A pre_spawn_hook with these settings; None takes the module's setting at each call."""

    async def pre_spawn_hook(spawner):
        base = url or HOURMETER_URL
        if not base:
            raise refuse('The quota check is not configured (HOURMETER_URL is empty); ask the hub admins.', 500)
        name = spawner.user.name
        load_profile = getattr(spawner, 'load_user_options', None)
        if callable(load_profile):
            loaded = load_profile()
            if inspect.isawaitable(loaded):
                await loaded
        with open(token_file or HOURMETER_TOKEN_FILE, encoding='utf-8') as f:
            token = f.read().strip()
        body = {'user': name, 'request': spawn_request(spawner)}
        req = HTTPRequest(
            base.rstrip('/') + '/quota/check',
            method='POST',
            headers={'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'},
            body=json.dumps(body),
            request_timeout=timeout or HOURMETER_TIMEOUT,
            connect_timeout=timeout or HOURMETER_TIMEOUT,
        )
        why = None
        try:
            answer = json.loads((await AsyncHTTPClient().fetch(req)).body)
        except HTTPClientError as e:
            if e.code >= 500 or e.code == 599:
                why = 'HTTP %s' % e.code
            else:
                # 4xx: this hook or its token is wrong, which the failure rule is not meant to hide.
                detail = e.response.body.decode('utf-8', 'replace') if e.response is not None else str(e)
                log.error('hourmeter quota hook: %s answered %s: %s', req.url, e.code, detail)
                raise refuse('The quota check was refused (HTTP %s); ask the hub admins.' % e.code, 500)
        except (OSError, ValueError) as e:
            why = str(e) or type(e).__name__
        if why is not None:
            rule = failure_rule(quota_file or HOURMETER_QUOTA_FILE)
            if rule == 'open':
                if FAIL_OPEN is not None:
                    FAIL_OPEN.inc()
                log.warning('hourmeter quota hook: %s unreachable (%s): starting %s unchecked (failure: open)', req.url, why, name)
                return
            log.warning('hourmeter quota hook: %s unreachable (%s): refusing %s (failure: closed)', req.url, why, name)
            raise refuse(UNAVAILABLE)
        if not answer.get('allowed'):
            log.info('hourmeter quota hook: %s refused: %s', name, answer.get('reason'))
            raise refuse(answer.get('message') or 'Your server was not started: %s.' % answer.get('reason'))

    return pre_spawn_hook


pre_spawn_hook = make_hook()
