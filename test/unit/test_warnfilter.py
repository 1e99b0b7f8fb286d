"""Third-party deprecation noise is dropped; our own warnings are not.

Each case runs in a fresh interpreter with ``-W default`` (every warning
shown once), as an operator with PYTHONWARNINGS set would see it.
"""

import os
import subprocess
import sys
import textwrap

from zerocloud import warnfilter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

#: A library of someone else's: its own deprecation class derives from
#: UserWarning (as cryptography's does), so only its name says what it is.
NOISY_LIBRARY = '''
import warnings

class LibraryDeprecationWarning(UserWarning):
    pass

warnings.warn('old API of another library', LibraryDeprecationWarning)
warnings.warn('stdlib-style deprecation', DeprecationWarning)
warnings.warn('pending deprecation', PendingDeprecationWarning)
warnings.warn('a real problem', RuntimeWarning)
'''


def run_python(code, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    return subprocess.run([sys.executable, '-W', 'default', '-c', code],
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def test_library_deprecations_are_hidden_other_warnings_shown(tmp_path):
    (tmp_path / 'noisy_library.py').write_text(NOISY_LIBRARY)
    code = textwrap.dedent('''
        from zerocloud import warnfilter
        warnfilter.hide_third_party_deprecations()
        warnfilter.hide_third_party_deprecations()  # idempotent
        import noisy_library
    ''')
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'a real problem' in result.stderr
    for hidden in ('old API', 'stdlib-style', 'pending deprecation'):
        assert hidden not in result.stderr, result.stderr


def test_without_the_filter_the_same_library_is_noisy(tmp_path):
    """The case above is not quiet by accident."""
    (tmp_path / 'noisy_library.py').write_text(NOISY_LIBRARY)
    result = run_python('import noisy_library', tmp_path)
    for shown in ('old API', 'stdlib-style', 'pending deprecation',
                  'a real problem'):
        assert shown in result.stderr, result.stderr


def test_deprecations_in_our_own_code_are_shown():
    own_file = os.path.join(os.path.dirname(warnfilter.__file__), 'saio.py')
    assert not warnfilter.is_third_party_deprecation(DeprecationWarning,
                                                     own_file)
    assert warnfilter.is_third_party_deprecation(
        DeprecationWarning, '/usr/lib/python3/dist-packages/dns/x.py')
    assert not warnfilter.is_third_party_deprecation(
        RuntimeWarning, '/usr/lib/python3/dist-packages/dns/x.py')


def test_the_launchers_imports_print_nothing(tmp_path):
    """Swift, eventlet and dnspython imported the launcher's way: silent,
    whatever versions of their dependencies are installed."""
    result = run_python('import zerocloud.saio', tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
