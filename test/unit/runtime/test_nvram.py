import pytest

from zerocloud.runtime import nvram
from zerocloud.runtime.errors import SessionFailure


def test_render_parse_roundtrip():
    args = ['python', 'a b', 'c,d', 'q"uote', 'back\\slash', 'new\nline']
    env = {'PATH_INFO': '/a,b', 'QUERY_STRING': 'x=1&y=2', 'EMPTY': ''}
    text = nvram.render(args, env, [('/dev/image', '/', True)],
                        {'/dev/stdin': 'pipe'}, 1400000000)
    assert 'args = python a\\x20b c\\x2cd q\\x22uote back\\x5cslash ' \
           'new\\x0aline\n' in text
    assert 'name=PATH_INFO, value=/a\\x2cb\n' in text
    assert ('channel=/dev/image, mountpoint=/, access=ro, removable=yes'
            in text)
    parsed = nvram.parse(text)
    assert parsed.args == args
    assert parsed.env == env
    assert [(f.channel, f.mountpoint, f.removable) for f in parsed.fstab] == [
        ('/dev/image', '/', True)]
    assert parsed.mapping == {'/dev/stdin': 'pipe'}
    assert parsed.time == 1400000000


def test_parse_zerocloud_style_text():
    parsed = nvram.parse('[args]\nargs = prog  -x\n[debug]\nverbosity=4\n'
                         '[env]\nname=A, value=1\\x2c2\n')
    assert parsed.args == ['prog', '-x']
    assert parsed.env == {'A': '1,2'}
    assert parsed.time is None


@pytest.mark.parametrize('text,message', [
    ('[args]\nargv = x\n', 'nvram 2: expected args = ...'),
    ('[env]\nname=A\n', 'nvram 2: env needs name= and value='),
    ('[env]\nnonsense\n', "nvram 2: expected key=value, got 'nonsense'"),
    ('[fstab]\nchannel=/dev/image, mountpoint=/, access=rw\n',
     'nvram 2: only access=ro mounts are supported'),
    ('[time]\nseconds=soon\n', 'nvram 2: invalid time seconds'),
])
def test_parse_errors(text, message):
    with pytest.raises(SessionFailure) as caught:
        nvram.parse(text)
    assert caught.value.status == message
