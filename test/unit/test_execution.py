import dataclasses
import io
import tarfile

import pytest

from zerocloud.object import execution
from zerocloud.object.execution import ExecutionError, Limits, LocalObject
from zerocloud.job.model import Node, SwiftPath, parse_job
from zerocloud.runtime import nvram
from zerocloud.runtime.image import read_member
from zerocloud.runtime.manifest import load_manifest
from zerocloud.tarscan import ScanBounds

LIMITS = Limits(timeout=7, memory=1 << 26, max_input=1000, max_output=2000,
                max_iops=10, scratch=4096)


def make_tar(path, members):
    with tarfile.open(path, 'w') as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def node_of(devices, exe='file://python:python', args='main.py', **extra):
    doc = [dict({'name': 'n', 'exec': {'path': exe, 'args': args},
                 'devices': devices}, **extra)]
    job = parse_job(doc, account='a', sysimages={'python'},
                    lister=lambda a, c: [])
    return Node.from_dict(job.nodes[0].to_dict())


@pytest.fixture
def sysimage(tmp_path):
    return {'python': make_tar(tmp_path / 'py.tar', {'python': b'\0asm'})}


def test_seed_flow_three_binds_local_object_and_image(tmp_path, sysimage):
    node = node_of([{'name': 'python'}, {'name': 'stdout'},
                    {'name': 'input', 'path': 'swift://a/c/data.csv'},
                    {'name': 'image', 'path': 'swift://a/c/app.tar'}])
    image = make_tar(tmp_path / 'in.image', {'main.py': b'print(1)'})
    local = LocalObject(SwiftPath('a', 'c', 'data.csv'), '/srv/x.data', 42,
                        'text/csv', {'X-Object-Meta-Color': 'red'})
    session = execution.prepare_session(
        node, str(tmp_path), {'image': image}, sysimage, local, LIMITS)
    manifest = load_manifest(session.manifest_path)
    assert manifest.program == sysimage['python']
    assert manifest.program_member == 'python'
    assert manifest.timeout == 7 and manifest.memory == 1 << 26
    by_alias = {c.alias: c for c in manifest.channels}
    assert by_alias['/dev/input'].uri == '/srv/x.data'
    assert (by_alias['/dev/input'].getsize, by_alias['/dev/input'].puts) == (
        1000, 0)
    assert by_alias['/dev/image'].uri == image
    assert by_alias['/dev/python'].uri == sysimage['python']
    assert by_alias['/dev/stdout'].putsize == 2000
    assert by_alias['/dev/stdout'].etag
    assert by_alias['/dev/stdin'].uri == '/dev/null'
    assert by_alias['/dev/stderr'].uri == session.stderr_path
    [output] = session.outputs
    assert output.device == 'stdout' and output.immediate
    with open(by_alias['/dev/nvram'].uri) as fp:
        text = nvram.parse(fp.read())
    assert text.args == ['n', 'main.py']
    assert text.env['LOCAL_CONTENT_LENGTH'] == '42'
    assert [(e.channel, e.mountpoint) for e in text.fstab] == [
        ('/dev/image', '/')]


def test_program_from_user_image_is_extracted(tmp_path):
    image = make_tar(tmp_path / 'in.image', {'bin/app.wasm': b'\0asmcode'})
    node = node_of([{'name': 'stdout'}], exe='file://image:bin/app.wasm')
    session = execution.prepare_session(node, str(tmp_path),
                                        {'image': image}, {}, None, LIMITS)
    program = load_manifest(session.manifest_path).program
    with open(program, 'rb') as fp:
        assert fp.read() == b'\0asmcode'


def test_swift_executable_comes_as_boot_member(tmp_path):
    boot = str(tmp_path / 'in.boot')
    open(boot, 'wb').close()
    node = node_of([{'name': 'stdout'}], exe='swift://a/c/app.wasm')
    session = execution.prepare_session(node, str(tmp_path), {'boot': boot},
                                        {}, None, LIMITS)
    assert load_manifest(session.manifest_path).program == boot
    with pytest.raises(ExecutionError) as err:
        execution.prepare_session(node, str(tmp_path), {}, {}, None, LIMITS)
    assert err.value.message == 'No executable found in request'


def test_missing_program_in_sysimage(tmp_path, sysimage):
    node = node_of([{'name': 'stdout'}], exe='file://python:nope')
    with pytest.raises(ExecutionError) as err:
        execution.prepare_session(node, str(tmp_path), {}, sysimage, None,
                                  LIMITS)
    assert (err.value.status, err.value.message) == (
        400, 'No executable found in request')


def test_unresolvable_remote_input(tmp_path, sysimage):
    node = node_of([{'name': 'python'},
                    {'name': 'input', 'path': 'swift://a/c/elsewhere'}])
    with pytest.raises(ExecutionError) as err:
        execution.prepare_session(node, str(tmp_path), {}, sysimage, None,
                                  LIMITS)
    assert err.value.message == ('Could not resolve channel path '
                                 '"swift://a/c/elsewhere" for device: input')


def test_stored_and_edge_outputs_are_not_immediate(tmp_path, sysimage):
    doc = [{'name': 'm', 'exec': {'path': 'file://python:python'},
            'devices': [{'name': 'python'},
                        {'name': 'stderr', 'path': 'swift://a/c/log',
                         'content_type': 'text/x-log', 'meta': {'k': 'v'}}],
            'connect': ['r']},
           {'name': 'r', 'exec': {'path': 'file://python:python'},
            'devices': [{'name': 'python'}, {'name': 'stdout'}]}]
    job = parse_job(doc, account='a', sysimages={'python'})
    mapper, reducer = job.nodes
    (tmp_path / 'm').mkdir()
    session = execution.prepare_session(mapper, str(tmp_path / 'm'), {},
                                        sysimage, None, LIMITS)
    outputs = {o.device: o for o in session.outputs}
    assert outputs['stderr'].swift_path == SwiftPath('a', 'c', 'log')
    assert outputs['stderr'].meta == {'k': 'v'}
    assert outputs['out/r'].edge and not outputs['out/r'].immediate
    aliases = {c.alias for c in load_manifest(
        session.manifest_path).channels}
    assert '/dev/out/r' in aliases
    with pytest.raises(ExecutionError):
        execution.prepare_session(reducer, str(tmp_path), {}, sysimage, None,
                                  LIMITS)
    edge = str(tmp_path / 'in.edge')
    open(edge, 'wb').close()
    session = execution.prepare_session(reducer, str(tmp_path),
                                        {'in/m': edge}, sysimage, None, LIMITS)
    by_alias = {c.alias: c for c in load_manifest(
        session.manifest_path).channels}
    assert by_alias['/dev/in/m'].uri == edge


def test_deterministic_sessions_pin_clock_and_seed(tmp_path, sysimage):
    node = node_of([{'name': 'python'}, {'name': 'stdout'}])
    session = execution.prepare_session(node, str(tmp_path), {}, sysimage,
                                        None, LIMITS, deterministic_clock=123,
                                        seed=9)
    manifest = load_manifest(session.manifest_path)
    assert manifest.deterministic and manifest.seed == 9
    nvram_path = {c.alias: c.uri for c in manifest.channels}['/dev/nvram']
    with open(nvram_path) as fp:
        assert nvram.parse(fp.read()).time == 123


def test_exec_args_are_split_on_spaces_and_unescaped(tmp_path, sysimage):
    """zpm writes ``hello.py a,b "c d"`` as ``hello.py a\\x2cb c\\x20d``; the
    program must see the original words, as under ZeroVM's runtime."""
    node = node_of([{'name': 'python'}, {'name': 'stdout'}],
                   args='hello.py  a\\x2cb c\\x20d q\\x22 back\\x5cx20')
    session = execution.prepare_session(node, str(tmp_path), {}, sysimage,
                                        None, LIMITS)
    nvram_path = {c.alias: c.uri for c in load_manifest(
        session.manifest_path).channels}['/dev/nvram']
    with open(nvram_path) as fp:
        assert nvram.parse(fp.read()).args == [
            'n', 'hello.py', 'a,b', 'c d', 'q"', 'back\\x20']


def test_relative_program_is_looked_up_in_user_image_then_sysimages(
        tmp_path, sysimage):
    node = node_of([{'name': 'stdout'}], exe='python')
    session = execution.prepare_session(node, str(tmp_path), {}, sysimage,
                                        None, LIMITS)
    manifest = load_manifest(session.manifest_path)
    assert (manifest.program, manifest.program_member) == (
        sysimage['python'], 'python')
    image = make_tar(tmp_path / 'in.image', {'python': b'\0asmmine'})
    session = execution.prepare_session(node, str(tmp_path),
                                        {'image': image}, sysimage, None,
                                        LIMITS)
    with open(load_manifest(session.manifest_path).program, 'rb') as fp:
        assert fp.read() == b'\0asmmine'


def gzip_image(path, members):
    """A gzip tar of (name, data) pairs, in order."""
    with tarfile.open(path, 'w:gz') as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


SMALL_SCAN = ScanBounds(max_bytes=65536, max_members=3)
SCANNING = dataclasses.replace(LIMITS, image_scan=SMALL_SCAN)
BOMB = b'\0' * (4 << 20)


def run_program(tmp_path, image, limits=SCANNING):
    node = node_of([{'name': 'stdout'}], exe='file://image:bin/app.wasm')
    session = execution.prepare_session(node, str(tmp_path),
                                        {'image': image}, {}, None, limits)
    with open(load_manifest(session.manifest_path).program, 'rb') as fp:
        return fp.read()


def test_program_from_gzip_image_within_the_bounds(tmp_path):
    image = gzip_image(tmp_path / 'in.image', [('a', b''), ('b', b''),
                                               ('bin/app.wasm', b'\0asm')])
    assert run_program(tmp_path, image) == b'\0asm'


def test_program_behind_a_huge_member_is_refused_unexpanded(tmp_path,
                                                           expansion):
    image = gzip_image(tmp_path / 'in.image', [('data', BOMB),
                                               ('bin/app.wasm', b'\0asm')])
    with pytest.raises(ExecutionError) as err:
        run_program(tmp_path, image)
    assert (err.value.status, err.value.message) == (
        400, 'Program bin/app.wasm was not found within the first 65536 '
             'bytes (uncompressed) of the image')
    assert 0 < expansion.total <= SMALL_SCAN.max_bytes


def test_program_beyond_the_member_bound(tmp_path):
    image = gzip_image(tmp_path / 'in.image', [
        ('a', b''), ('b', b''), ('c', b''), ('bin/app.wasm', b'\0asm')])
    with pytest.raises(ExecutionError) as err:
        run_program(tmp_path, image)
    assert err.value.message == ('Program bin/app.wasm was not found within '
                                 'the first 3 members of the image')


def test_program_larger_than_maxinput_is_413(tmp_path):
    image = gzip_image(tmp_path / 'in.image', [('bin/app.wasm', b'x' * 1001)])
    with pytest.raises(ExecutionError) as err:
        run_program(tmp_path, image)
    assert (err.value.status, err.value.message) == (
        413, 'Program bin/app.wasm in the image is larger than 1000 bytes')


def test_unreadable_user_image(tmp_path):
    image = tmp_path / 'in.image'
    image.write_bytes(b'not a tar' * 100)
    with pytest.raises(ExecutionError) as err:
        run_program(tmp_path, str(image))
    assert (err.value.status, err.value.message) == (
        422, 'Could not read image of the node')


@pytest.mark.parametrize('stored', ['./bin/prog', 'bin/prog', 'bin//prog'])
@pytest.mark.parametrize('compress', [False, True])
def test_system_image_program_found_here_is_the_one_the_sandbox_reads(
        tmp_path, stored, compress):
    """The server's check and the sandbox's lookup read names alike: a
    ``./bin/prog`` member found here is read there."""
    path = tmp_path / 'sys.tar'
    with tarfile.open(path, 'w:gz' if compress else 'w') as tar:
        info = tarfile.TarInfo(stored)
        info.size = 6
        tar.addfile(info, io.BytesIO(b'\0asm!!'))
    node = node_of([{'name': 'stdout'}], exe='file://tools:/bin/prog')
    session = execution.prepare_session(node, str(tmp_path), {},
                                        {'tools': str(path)}, None, LIMITS)
    manifest = load_manifest(session.manifest_path)
    assert manifest.program == str(path)
    assert read_member(manifest.program,
                       manifest.program_member) == b'\0asm!!'


def test_user_image_program_below_a_dot_directory(tmp_path):
    user_image = make_tar(tmp_path / 'in.image',
                          {'./.bin/app.wasm': b'\0asmcode'})
    node = node_of([{'name': 'stdout'}], exe='file://image:.bin/app.wasm')
    session = execution.prepare_session(node, str(tmp_path),
                                        {'image': user_image}, {}, None,
                                        LIMITS)
    with open(load_manifest(session.manifest_path).program, 'rb') as fp:
        assert fp.read() == b'\0asmcode'


@pytest.mark.parametrize('stored', [
    '.bin/app.wasm',          # another name than bin/app.wasm
    '../bin/app.wasm',        # outside the image
    'a/../bin/app.wasm'])
def test_user_image_member_of_another_name_is_not_the_program(tmp_path,
                                                              stored):
    user_image = make_tar(tmp_path / 'in.image', {stored: b'\0asmcode'})
    node = node_of([{'name': 'stdout'}], exe='file://image:bin/app.wasm')
    with pytest.raises(ExecutionError) as err:
        execution.prepare_session(node, str(tmp_path), {'image': user_image},
                                  {}, None, LIMITS)
    assert err.value.message == 'No executable found in request'
