"""Tar member names, read alike by every server and the sandbox."""

import pytest

from zerocloud.tarscan import member_path


@pytest.mark.parametrize('name, path', [
    ('bin/prog', 'bin/prog'),
    ('./bin/prog', 'bin/prog'),            # tar -C dir .
    ('bin//prog/', 'bin/prog'),
    ('usr/./lib', 'usr/lib'),
    ('.hidden', '.hidden'),                # a leading dot is the name's own
    ('./.hidden/prog', '.hidden/prog'),
    ('...', '...'),
    ('..hidden', '..hidden'),
    ('.', ''), ('./', ''),                 # the root itself
    ('../usr/x', None),                    # leaves the root
    ('..', None),
    ('a/../b', None),                      # a '..' part anywhere
    ('usr/lib/..', None),
    ('/etc/passwd', None),                 # absolute
    ('//bin/prog', None),
])
def test_member_path(name, path):
    assert member_path(name) == path
