"""A zapp project: its ``zapp.yaml``, the job it describes, ``zpm new``.

``zapp.yaml`` is zpm 0.3's format::

    execution:
      groups:                       # one job node per group
        - name: hello
          path: file://python:python
          args: hello.py a,b "c d"  # split like a shell line
          env: {GREETING: hi}       # optional; moves to exec.env
          devices: [{name: python}, {name: stdout}]
          # connect, count, replicate, attach: passed through
    meta: {name: hello, Version: '0.1', Author-email: '', Summary: ''}
    help: {description: ..., args: [[name, label], ...]}   # the web page
    bundling: [hello.py, 'lib/**']  # globs, relative to the project
    ui: [index.html.tmpl, style.css, zerocloud.js]        # optional
    dependencies: [six, [PyYAML, yaml]]  # pure-Python wheels (optional)

The job (``boot/system.map``) moves each group's ``path``, ``args`` and
``env`` into ``exec``.  ``args`` is split like a shell command line and
every word escaped (``\\xNN`` for backslash, ``"``, ``,``, space and control
characters) before the words are joined with spaces: ZeroCloud splits
``exec.args`` on spaces and decodes the escapes, so each word reaches the
program whole (``a,b`` and ``c d`` stay two arguments).
"""

import os
import shlex
from typing import Dict, List

import jinja2
import yaml

ZAPP_YAML = 'zapp.yaml'
#: Where bundled dependencies go in a zapp, and the ``PYTHONPATH`` the job
#: then gets (the image is mounted at ``/``).
DEPENDENCY_DIR = 'lib/python3.15/site-packages'
TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), 'templates')
#: ``zpm new`` files: always, and with ``--with-ui``.
PROJECT_FILES = ('zapp.yaml', 'main.py')
UI_FILES = ('index.html.tmpl', 'style.css', 'zerocloud.js')
#: Group keys that move into the node's ``exec`` stanza.
EXEC_KEYS = ('path', 'args', 'env')
_ESCAPED = set('\\", ')


class ProjectError(Exception):
    """A zapp project that cannot be read, bundled or created."""


def escape_arg(word: str) -> str:
    """``word`` as one space-free token of ``exec.args``."""
    return ''.join('\\x%02x' % ord(char)
                   if char in _ESCAPED or ord(char) < 0x20 or char == '\x7f'
                   else char for char in word)


def escape_args(text: str) -> str:
    """A shell-like argument line as ``exec.args``
    (``a,b "c d"`` → ``a\\x2cb c\\x20d``)."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise ProjectError('args %r: %s' % (text, err)) from None
    return ' '.join(escape_arg(word) for word in words)


def find_root(start: str) -> str:
    """The nearest directory at or above ``start`` holding zapp.yaml."""
    path = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(path, ZAPP_YAML)):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            raise ProjectError('no %s found in %s or any directory above it'
                               % (ZAPP_YAML, os.path.abspath(start)))
        path = parent


def _string_list(zapp: dict, key: str) -> List[str]:
    value = zapp.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str)
                                              for item in value):
        raise ProjectError('%s: %s must be a list of strings'
                           % (ZAPP_YAML, key))
    return value


def parse_zapp(text: str) -> dict:
    """zapp.yaml's content, checked enough for bundling and deploying."""
    try:
        zapp = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ProjectError('%s is not valid YAML: %s' % (ZAPP_YAML, err)) \
            from None
    if not isinstance(zapp, dict):
        raise ProjectError('%s must be a mapping' % ZAPP_YAML)
    name = (zapp.get('meta') or {}).get('name') \
        if isinstance(zapp.get('meta'), dict) else None
    if not isinstance(name, str) or not name or '/' in name \
            or name.startswith('.'):
        raise ProjectError('%s: meta.name must be a file name (it names the '
                           '.zapp)' % ZAPP_YAML)
    groups = (zapp.get('execution') or {}).get('groups') \
        if isinstance(zapp.get('execution'), dict) else None
    if not isinstance(groups, list) or not groups or not all(
            isinstance(g, dict) for g in groups):
        raise ProjectError('%s: execution.groups must be a non-empty list of '
                           'groups' % ZAPP_YAML)
    for number, group in enumerate(groups, 1):
        label = group.get('name') or '#%d' % number
        if not isinstance(group.get('path'), str):
            raise ProjectError('%s: group %s needs a path (the program)'
                               % (ZAPP_YAML, label))
        if not isinstance(group.get('args', ''), str):
            raise ProjectError('%s: group %s: args must be a string'
                               % (ZAPP_YAML, label))
    for key in ('bundling', 'ui'):
        _string_list(zapp, key)
    dependencies(zapp)
    help_args(zapp)
    return zapp


def load_zapp(root: str) -> dict:
    try:
        with open(os.path.join(root, ZAPP_YAML), encoding='utf-8') as handle:
            return parse_zapp(handle.read())
    except OSError as err:
        raise ProjectError('cannot read %s: %s' % (ZAPP_YAML, err.strerror)) \
            from None


def dependencies(zapp: dict) -> List[List[str]]:
    """``[requirement, module…]`` per entry (``pkg`` or ``[pkg, mod…]``)."""
    entries = zapp.get('dependencies') or []
    if not isinstance(entries, list):
        raise ProjectError('%s: dependencies must be a list' % ZAPP_YAML)
    result = []
    for entry in entries:
        if isinstance(entry, str):
            entry = [entry]
        if not isinstance(entry, list) or not entry or not all(
                isinstance(item, str) and item for item in entry):
            raise ProjectError('%s: each dependency is a name or a list '
                               '[name, module, ...]' % ZAPP_YAML)
        result.append(entry)
    return result


def help_args(zapp: dict) -> List[List[str]]:
    """``[name, label]`` pairs: one field each on the web page."""
    section = zapp.get('help') or {}
    pairs = section.get('args') or [] if isinstance(section, dict) else None
    if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(
                isinstance(x, str) for x in p) for p in pairs):
        raise ProjectError('%s: help.args must be a list of [name, label] '
                           'pairs' % ZAPP_YAML)
    return pairs


def job_description(zapp: dict) -> List[dict]:
    """The ``boot/system.map`` of a zapp."""
    with_deps = bool(dependencies(zapp))
    job = []
    for group in zapp['execution']['groups']:
        node = {key: value for key, value in group.items()
                if key not in EXEC_KEYS}
        stanza = {'path': group['path'],
                  'args': escape_args(group.get('args') or '')}
        env = dict(group.get('env') or {})
        if with_deps:
            env['PYTHONPATH'] = ':'.join(
                filter(None, ['/' + DEPENDENCY_DIR, env.get('PYTHONPATH')]))
        if env:
            stanza['env'] = env
        node['exec'] = stanza
        job.append(node)
    return job


def _render(name: str, context: Dict[str, object]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return environment.get_template(name).render(**context)


def create_project(directory: str, with_ui: bool) -> List[str]:
    """Write a new project's files; all or nothing (refuses to overwrite).

    Returns the paths written.
    """
    names = PROJECT_FILES + (UI_FILES if with_ui else ())
    targets = [os.path.join(directory, name) for name in names]
    existing = [path for path in targets if os.path.lexists(path)]
    if existing:
        raise ProjectError('%s already exists: nothing was created'
                           % ', '.join("'%s'" % path for path in existing))
    name = os.path.basename(os.path.abspath(directory))
    os.makedirs(directory, exist_ok=True)
    context: Dict[str, object] = {'name': name, 'with_ui': with_ui}
    for file_name, path in zip(names, targets):
        text = _render(file_name + '.j2', context) if file_name in \
            PROJECT_FILES else _read_template(file_name)
        with open(path, 'x', encoding='utf-8') as handle:
            handle.write(text)
    return targets


def _read_template(name: str) -> str:
    with open(os.path.join(TEMPLATE_DIR, name), encoding='utf-8') as handle:
        return handle.read()


def zapp_name(zapp: dict) -> str:
    return zapp['meta']['name']


def ui_patterns(zapp: dict) -> List[str]:
    return _string_list(zapp, 'ui')


def bundling_patterns(zapp: dict) -> List[str]:
    return _string_list(zapp, 'bundling')
