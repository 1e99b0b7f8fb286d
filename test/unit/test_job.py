"""Unit tests for zerocloud.job.model: parsing, validation, expansion, scripts."""

import json

import pytest

from zerocloud.job.model import (
    CDR, READABLE, RANDOM, WRITABLE, Channel, Edge, FilePath, Job, JobError,
    NetworkPath, Node, SwiftPath, ZvmPath, job_from_script, parse_job,
    parse_location, substitute)

EXE = 'swift://a/c/exe'


class FakeLister:
    """Dict-backed lister: {account: {container: [objects]}}, records calls."""

    def __init__(self, tree):
        self.tree = tree
        self.calls = []

    def __call__(self, account, container):
        self.calls.append((account, container))
        if container is None:
            return list(self.tree.get(account, {}))
        return list(self.tree.get(account, {}).get(container, []))


FIXTURE = FakeLister({'a': {
    'c': ['o', 'exe'],
    'c_in1': ['input1', 'input2', 'junk', 'xin1', 'dir/'],
    'c_in2': ['input1', 'input2', 'junk'],
    'c_out1': [], 'c_out2': [],
    'd': ['x/y/in1', 'in2', 'x/in3'],
    'e': ['data1.csv', 'data1.csv.bak', 'data2.csv'],
}})


def node(name='sort', devices=None, **extra):
    doc = {'name': name, 'exec': {'path': EXE}}
    if devices is not None:
        doc['devices'] = devices
    doc.update(extra)
    return doc


def parse(*nodes, **kwargs):
    kwargs.setdefault('account', 'a')
    kwargs.setdefault('lister', FIXTURE)
    return parse_job(list(nodes), **kwargs)


def error_of(*nodes, **kwargs):
    with pytest.raises(JobError) as caught:
        parse(*nodes, **kwargs)
    return caught.value


def message(*nodes, **kwargs):
    err = error_of(*nodes, **kwargs)
    assert err.status == 400
    return err.message


# ---------------------------------------------------------------- locations

@pytest.mark.parametrize('url, expected', [
    ('swift://a/c/o', SwiftPath('a', 'c', 'o')),
    ('swift://a/c/dir/o.txt', SwiftPath('a', 'c', 'dir/o.txt')),
    ('swift://a/c', SwiftPath('a', 'c', None)),
    ('swift://a', SwiftPath('a', None, None)),
    ('file://python2.7:python', FilePath('python2.7', 'python')),
    ('file://bin/sh', FilePath(None, 'bin/sh')),
    ('zvm://merge:/dev/stdin', ZvmPath('merge', 'stdin')),
    ('zvm://merge:sort', ZvmPath('merge', 'sort')),
    ('tcp://127.0.0.1:8000', NetworkPath('tcp', '127.0.0.1', 8000)),
])
def test_parse_location(url, expected):
    assert parse_location(url) == expected


@pytest.mark.parametrize('url', [
    'aaa/bbb', 'http://x/y', 'zvm://merge', 'file://', 'file://img:',
    'tcp://host', 'cache://x', '', None])
def test_parse_location_unknown(url):
    assert parse_location(url) is None


def test_parse_location_expands_account_shortcuts():
    assert parse_location('swift://./c/o', 'acc') == SwiftPath('acc', 'c', 'o')
    assert parse_location('swift://~/c/o', 'acc') == SwiftPath('acc', 'c', 'o')
    assert parse_location('swift://~/c/o') == SwiftPath('~', 'c', 'o')


def test_swift_path_properties():
    path = SwiftPath('a', 'c', 'd/o')
    assert path.url == 'swift://a/c/d/o'
    assert path.path_info == '/a/c/d/o'
    assert not path.has_wildcard and not path.is_container
    container = SwiftPath('a', 'c*', None)
    assert container.has_wildcard and container.is_container
    assert container.path_info == '/a/c*'


def test_file_path_urls_round_trip():
    for url in ('file://img:bin/x', 'file://bin/x'):
        assert parse_location(url).url == url
    assert FilePath(None, 'python', relative=True).url == 'python'


# --------------------------------------------------------- document level

def test_unparsable_json_is_422():
    for text in (b'[{', '{"a": ', b'\xff\xfe\x00'):
        with pytest.raises(JobError) as caught:
            parse_job(text, account='a')
        assert caught.value.status == 422
        assert caught.value.message == 'Could not parse system map'


@pytest.mark.parametrize('doc', ['{}', '"x"', '3', '[1]', '[[]]'])
def test_top_level_must_be_list_of_objects(doc):
    with pytest.raises(JobError) as caught:
        parse_job(doc, account='a')
    assert caught.value.status == 400
    assert 'JSON array of node objects' in caught.value.message


def test_empty_job():
    with pytest.raises(JobError) as caught:
        parse_job('[]', account='a')
    assert caught.value.message == 'Config parser cannot resolve any job nodes'


def test_accepts_bytes_and_str():
    doc = [node(devices=[{'name': 'stdout'}])]
    for form in (json.dumps(doc), json.dumps(doc).encode()):
        job = parse_job(form, account='a')
        assert [n.name for n in job.nodes] == ['sort']


# ---------------------------------------------------- node validation 2.3

def test_missing_required_fields():
    assert message({'exec': {'path': EXE}}) == 'Must specify node name'
    assert message({'name': '', 'exec': {'path': EXE}}) == \
        'Must specify node name'
    assert message({'name': 'sort'}) == 'Must specify exec stanza for sort'
    assert message({'name': 'sort', 'exec': {}}) == \
        'Must specify exec stanza for sort'
    assert message({'name': 'sort', 'exec': {'args': 'x'}}) == \
        'Must specify executable path for sort'


@pytest.mark.parametrize('name', ['bad\x01', 'a\nb', 'x\x7f', 'a/b', 3,
                                  '\ud800', 'x\uffff', '\u2603', 'a,b',
                                  'a b', 'caf\xe9', '.', '..', 'a:b',
                                  'x\n', '*', 'n' * 65])
def test_invalid_node_name(name):
    assert message({'name': name, 'exec': {'path': EXE}}) == \
        'Invalid node name: use up to 64 letters, digits, "-", "_" and ' \
        '"." (not "." or "..")'


@pytest.mark.parametrize('name', ['sort', 'Map_2', 'a.b-c', '...', '.x',
                                  '0', 'n' * 64])
def test_valid_node_name(name):
    assert [n.name for n in parse(node(name)).nodes] == [name]


def test_instance_names_of_a_valid_name_stay_valid():
    job = parse(node('w.1_x', count=2),
                node('m.in', devices=[{'name': 'stdin',
                                        'path': 'swift://a/c_in1/input*'}]))
    names = [n.name for n in job.nodes]
    assert names == ['w.1_x-1', 'w.1_x-2', 'm.in-1', 'm.in-2']
    assert [n.name for name in names for n in parse(node(name)).nodes] == \
        names


def test_exec_path_forms():
    assert message(node(exec={'path': 'zvm://a:b'})) == \
        'Executable path cannot be a zvm path in sort'
    assert message(node(exec={'path': 'http://x/y'})) == \
        'Must specify executable path for sort'
    assert message(node(exec={'path': 'tcp://h:1'})) == \
        'Executable path must be swift:// or file:// in sort'
    assert message(node(exec={'path': 'swift://a/c'})) == \
        'Invalid path swift://a/c in sort'
    assert message(node(exec={'path': 'swift://a/c/e*'})) == \
        'Invalid path swift://a/c/e* in sort'
    assert message(node(exec={'path': 42})) == \
        'Must specify executable path for sort'


def test_exec_path_expansion_and_relative():
    job = parse(node(exec={'path': 'swift://./c/hello.nexe'}))
    assert job.nodes[0].exe == SwiftPath('a', 'c', 'hello.nexe')
    job = parse(node(exec={'path': 'python'}))
    assert job.nodes[0].exe == FilePath(None, 'python', relative=True)
    job = parse(node(exec={'path': 'file://python2.7:python'}))
    assert job.nodes[0].exe == FilePath('python2.7', 'python')


@pytest.mark.parametrize('stanza', [
    {'path': EXE, 'args': 'a\x01b'},
    {'path': EXE, 'args': 'a\nb'},
    {'path': EXE, 'env': {'k': 'v\x00'}},
    {'path': EXE, 'env': {'k\x02': 'v'}},
    {'path': EXE, 'env': {'a=b': 'v'}},
    {'path': EXE, 'name': 'x\x03'},
    {'path': 'bin/app\x05'},
])
def test_invalid_nexe_property(stanza):
    assert message(node(exec=stanza)) == 'Invalid nexe property for sort'


def test_exec_field_types():
    assert message(node(exec={'path': EXE, 'args': ['a']})) == \
        'Invalid exec args for sort: must be a string'
    assert message(node(exec={'path': EXE, 'env': ['a']})) == \
        'Invalid exec env for sort: must be an object of strings'
    assert message(node(exec={'path': EXE, 'env': {'a': 1}})) == \
        'Invalid exec env for sort: must be an object of strings'
    assert message(node(exec={'path': EXE, 'name': 5})) == \
        'Invalid exec name for sort: must be a non-empty string'


def test_exec_fields_kept():
    job = parse(node(exec={'path': EXE, 'args': 'aa bb', 'name': 'sorter',
                           'env': {'K': 'V'}}))
    sort = job.nodes[0]
    assert (sort.args, sort.exe_name, sort.env) == (
        'aa bb', 'sorter', {'K': 'V'})


@pytest.mark.parametrize('count, shown', [
    (0, '0'), (-1, '-1'), (True, 'true'), (False, 'false'), ('2', '"2"'),
    (1.5, '1.5'), (None, 'null')])
def test_invalid_count(count, shown):
    assert message(node(count=count)) == 'Invalid node count: %s' % shown


def test_count_limit():
    assert 'Too many node instances' in message(node(count=10 ** 9))
    assert 'Too many node instances' in message(
        node(count=3), node('b', count=3), max_instances=5)


@pytest.mark.parametrize('value', [0, 4, True, '2', None])
def test_invalid_replicate(value):
    assert message(node(replicate=value)) == \
        'Invalid replicate for sort: %s (must be 1 to 3)' % json.dumps(value)


def test_replicate_default_and_value():
    assert parse(node()).nodes[0].replicate == 1
    assert parse(node(replicate=3)).nodes[0].replicate == 3


def test_other_node_field_types():
    assert message(node(attach=3)) == \
        'Invalid attach for sort: must be a device name'
    assert message(node(attach='stdin')) == \
        'Invalid attach for sort: no device named stdin'
    assert message(node(location=5)) == \
        'Invalid location for sort: must be a string'
    assert message(node(connect='x')) == \
        'Invalid connect for sort: must be a list of node names'
    assert message(node(devices={'name': 'stdout'})) == \
        'Invalid devices for sort: must be a list'
    assert message(node(devices=['stdout'])) == \
        'Invalid device entry in sort: must be an object'


def test_duplicate_node_names():
    assert message(node(), node()) == 'Duplicate node name sort'
    assert message(node(count=2), node('sort-2')) == \
        'Duplicate node name sort-2'
    assert message(node('sort-1'), node(count=2)) == \
        'Duplicate node name sort-1'


def test_unknown_keys_are_ignored():
    job = parse(node(args='ignored', devices=[{'name': 'stdout',
                                               'whatever': 1}]))
    assert job.nodes[0].args == ''


# ------------------------------------------------ device validation 2.4

def test_device_name_errors():
    assert message(node(devices=[{'path': 'swift://a/c/o'}])) == \
        'Must specify device for file in sort'
    assert message(node(devices=[{'name': 'std\x01'}])) == \
        'Bad device name: "std\\u0001" in sort'
    assert message(node(devices=[{'name': 5}])) == \
        'Bad device name: 5 in sort'


def test_unknown_device_rejected_at_parse():
    assert message(node(devices=[{'name': 'stdtest'}])) == \
        'Could not resolve channel path "" for device: stdtest'
    assert message(node(devices=[{'name': 'stdtest',
                                  'path': 'swift://a/c/o'}])) == \
        'Could not resolve channel path "swift://a/c/o" for device: stdtest'


def test_sysimage_devices():
    job = parse(node(devices=[{'name': 'python2.7'}, {'name': 'stdout'}]),
                sysimages=['python2.7'])
    channel = job.nodes[0].channel('python2.7')
    assert channel.access == RANDOM | READABLE and channel.path is None
    assert message(node(devices=[{'name': 'python2.7'}])) == \
        'Could not resolve channel path "" for device: python2.7'
    assert message(node(devices=[{'name': 'python2.7',
                                  'path': 'swift://a/c/o'}]),
                   sysimages=['python2.7']) == \
        'Invalid path swift://a/c/o in sort'


def test_device_alias_keys():
    job = parse(node(devices=[{'device': 'stdout'}]))
    assert job.nodes[0].channels[0].device == 'stdout'
    both = node(file_list=[{'name': 'stderr'}], devices=[{'name': 'stdout'}])
    assert [c.device for c in parse(both).nodes[0].channels] == ['stderr']


def test_readable_device_paths():
    assert message(node(devices=[{'name': 'stdin',
                                  'path': 'file://img:x'}])) == \
        'Readable device must be a swift object'
    assert message(node(devices=[{'name': 'stdin',
                                  'path': 'zvm://b:stdin'}])) == \
        'Readable device must be a swift object'
    assert message(node(devices=[{'name': 'stdin', 'path': 'swift://*'}])) \
        == 'Invalid path swift://* in sort'
    assert message(node(devices=[{'name': 'input', 'path': 'swift://a'}])) \
        == 'Invalid path swift://a in sort'
    assert message(node(devices=[{'name': 'stdin',
                                  'path': 'swift://a*/c/o'}])) == \
        'Invalid path: swift://a*/c/o'
    assert message(node(devices=[{'name': 'input'}])) == \
        'Device input in sort needs a swift:// path'
    assert message(node(devices=[{'name': 'script'}])) == \
        'Device script in sort needs a swift:// path'


def test_container_path_is_readable_only():
    job = parse(node(devices=[{'name': 'input', 'path': 'swift://a/c'}]))
    assert job.nodes[0].channels[0].path.is_container
    assert message(node(devices=[{'name': 'stdout',
                                  'path': 'swift://a/c'}])) == \
        'Container path must be read-only'
    assert message(node(devices=[{'name': 'image',
                                  'path': 'swift://a/c'}])) == \
        'Container path must be read-only'


def test_other_device_paths():
    assert message(node(devices=[{'name': 'stdout',
                                  'path': 'nonsense'}])) == \
        'Invalid path nonsense in sort'
    assert message(node(devices=[{'name': 'image',
                                  'path': 'swift://a/c/i*'}])) == \
        'Wildcards are not allowed in path swift://a/c/i* of device image ' \
        'in sort'
    assert message(node(devices=[{'name': 'stdout', 'path': 7}])) == \
        'Invalid path 7 in sort'
    assert message(node(devices=[{'name': 'stdout',
                                  'path': 'swift://a*/c/o'}])) == \
        'Invalid path: swift://a*/c/o'
    job = parse(node(devices=[{'name': 'debug',
                               'path': 'tcp://127.0.0.1:5000'}]))
    assert job.nodes[0].channels[0].path == \
        NetworkPath('tcp', '127.0.0.1', 5000)


def test_device_attribute_validation():
    def dev(**kw):
        return node(devices=[dict(name='stdout', **kw)])
    assert message(dev(content_type=3)) == \
        'Invalid content_type for device stdout in sort'
    assert message(dev(meta=['x'])) == \
        'Invalid meta for device stdout in sort: must be an object of strings'
    assert message(dev(meta={'k': 1})) == \
        'Invalid meta for device stdout in sort: must be an object of strings'
    assert message(dev(mode='fifo')).startswith(
        'Invalid mode "fifo" for device stdout in sort')
    for bad in (-1, True, '3', 1.0):
        assert message(dev(min_size=bad)) == \
            'Invalid min_size for device stdout in sort: must be a ' \
            'non-negative integer'


def test_duplicate_device():
    assert message(node(devices=[{'name': 'stdout'},
                                 {'name': 'stdout',
                                  'path': 'swift://a/c/o'}])) == \
        'Duplicate device stdout in sort'


def test_channel_defaults_and_attributes():
    job = parse(node(devices=[
        {'name': 'stdin', 'path': 'swift://~/c/o'},
        {'name': 'stdout', 'path': 'swift://a/c/o2', 'meta': {'k': 'v'},
         'mode': 'char', 'min_size': 3},
        {'name': 'stderr'}]), default_content_type='application/x-test')
    stdin, stdout, stderr = job.nodes[0].channels
    assert stdin.path == SwiftPath('a', 'c', 'o') and stdin.readable
    assert stdout.content_type == 'application/x-test'
    assert (stdout.meta, stdout.mode, stdout.min_size) == ({'k': 'v'},
                                                           'char', 3)
    assert stdout.writable and not stdout.is_immediate
    assert stderr.content_type == 'text/html' and stderr.is_immediate
    assert stdin.mode == 'file' and stdin.min_size == 0


# -------------------------------------------- immediate outputs (DESIGN)

def test_pathless_output_allowed():
    job = parse(node(devices=[{'name': 'output'}]))
    assert job.nodes[0].immediate_channel().device == 'output'


def test_one_pathless_writable_per_node():
    msg = message(node(devices=[{'name': 'stdout'}, {'name': 'stderr'}]))
    assert 'sort' in msg and 'stdout, stderr' in msg
    job = parse(node(devices=[{'name': 'stdout'},
                              {'name': 'stderr', 'path': 'swift://a/c/e'}]))
    assert job.nodes[0].immediate_channel().device == 'stdout'


def test_pathless_stdin_wants_stream():
    job = parse(node(devices=[{'name': 'stdin'}, {'name': 'stdout'}]))
    assert job.nodes[0].wants_stream
    job = parse(node(devices=[{'name': 'stdin', 'path': 'swift://a/c/o'}]))
    assert not job.nodes[0].wants_stream


# ------------------------------------------------------ count & naming

def test_node_without_devices_honours_count():
    job = parse(node('reduce'))
    assert [(n.id, n.name, n.group) for n in job.nodes] == \
        [(1, 'reduce', 'reduce')]
    job = parse(node('reduce', count=3))
    assert [n.name for n in job.nodes] == ['reduce-1', 'reduce-2', 'reduce-3']
    assert all(n.channels == [] for n in job.nodes)


def test_ids_in_creation_order():
    job = parse(node('a', count=2), node('b'), node('c', count=2))
    assert [(n.id, n.name) for n in job.nodes] == [
        (1, 'a-1'), (2, 'a-2'), (3, 'b'), (4, 'c-1'), (5, 'c-2')]


def test_count_shares_inputs_and_immediate_output():
    job = parse(node(count=2, devices=[
        {'name': 'stdin', 'path': 'swift://a/c/o'}, {'name': 'stdout'}]))
    assert [n.name for n in job.nodes] == ['sort-1', 'sort-2']
    for n in job.nodes:
        assert n.channels[0].path == SwiftPath('a', 'c', 'o')
        assert n.channels[1].is_immediate


def test_write_wildcard_with_count_uses_instance_name():
    job = parse(node(count=2, devices=[
        {'name': 'stdout', 'path': 'swift://a/c_out1/wout.*'}]))
    assert [n.channels[0].path.url for n in job.nodes] == [
        'swift://a/c_out1/wout.sort-1', 'swift://a/c_out1/wout.sort-2']
    assert all(n.replicate == 1 for n in job.nodes)


def test_write_wildcard_single_instance_uses_node_name():
    job = parse(node(devices=[
        {'name': 'stdout', 'path': 'swift://a/c_out1/wout.*'}]))
    assert job.nodes[0].name == 'sort'
    assert job.nodes[0].channels[0].path.url == 'swift://a/c_out1/wout.sort'


def test_single_path_for_multiple_nodes():
    assert message(node(count=2, devices=[
        {'name': 'stdout', 'path': 'swift://a/c/o2'}])) == \
        'Single path swift://a/c/o2 for multiple node definition: sort, ' \
        'please use wildcard'
    assert message(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in1/in*'},
        {'name': 'stdout', 'path': 'swift://a/c/o2'}])) == \
        'Single path swift://a/c/o2 for multiple node definition: sort, ' \
        'please use wildcard'


def test_same_output_written_twice_is_rejected():
    assert message(
        node('a', devices=[{'name': 'stdout', 'path': 'swift://a/c/o'}]),
        node('b', devices=[{'name': 'stdout', 'path': 'swift://a/c/o'}])) \
        == 'Output path swift://a/c/o is written by more than one node: a, b'
    assert message(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in*/in*'},
        {'name': 'stdout', 'path': 'swift://a/c_out/out*'}])) == \
        'Output path swift://a/c_out/out1 is written by more than one ' \
        'node: sort-1, sort-2'


# ------------------------------------------------------------ wildcards

def readers(job):
    return [(n.name, n.channels[0].path.url, n.wildcards) for n in job.nodes]


def test_object_wildcard_p34():
    job = parse(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in1/in*'},
        {'name': 'stdout'}]))
    # whole-name match: xin1 does not match in*, dir/ is skipped
    assert readers(job) == [
        ('sort-1', 'swift://a/c_in1/input1', ['put1']),
        ('sort-2', 'swift://a/c_in1/input2', ['put2'])]
    assert all(n.channels[1].is_immediate for n in job.nodes)


def test_container_wildcard_p35():
    job = parse(node(devices=[{'name': 'stdin',
                               'path': 'swift://a/c_in*/*'}]))
    assert [n.channels[0].path.url for n in job.nodes] == [
        'swift://a/c_in1/input1', 'swift://a/c_in1/input2',
        'swift://a/c_in1/junk', 'swift://a/c_in1/xin1',
        'swift://a/c_in2/input1', 'swift://a/c_in2/input2',
        'swift://a/c_in2/junk']


def test_container_and_object_wildcard_p36():
    job = parse(node(devices=[{'name': 'stdin',
                               'path': 'swift://a/c_in*/in*'}]))
    assert readers(job) == [
        ('sort-1', 'swift://a/c_in1/input1', ['1', 'put1']),
        ('sort-2', 'swift://a/c_in1/input2', ['1', 'put2']),
        ('sort-3', 'swift://a/c_in2/input1', ['2', 'put1']),
        ('sort-4', 'swift://a/c_in2/input2', ['2', 'put2'])]


def test_group_transform_p37():
    job = parse(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in1/in*'},
        {'name': 'stdout', 'path': 'swift://a/c_out1/out*'}]))
    assert [n.channels[1].path.url for n in job.nodes] == [
        'swift://a/c_out1/output1', 'swift://a/c_out1/output2']


def test_group_transform_multiple_p39():
    job = parse(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in*/in*'},
        {'name': 'stdout', 'path': 'swift://a/c_out*/out*'}]))
    assert [(n.name, n.channels[1].path.url) for n in job.nodes] == [
        ('sort-1', 'swift://a/c_out1/output1'),
        ('sort-2', 'swift://a/c_out1/output2'),
        ('sort-3', 'swift://a/c_out2/output1'),
        ('sort-4', 'swift://a/c_out2/output2')]


def test_container_only_wildcard():
    job = parse(node(devices=[{'name': 'input', 'path': 'swift://a/c_in*'},
                              {'name': 'stdout',
                               'path': 'swift://a/c/list*',
                               'content_type': 'application/json'}]))
    assert [(n.channels[0].path, n.channels[1].path.url) for n in job.nodes] \
        == [(SwiftPath('a', 'c_in1', None), 'swift://a/c/list1'),
            (SwiftPath('a', 'c_in2', None), 'swift://a/c/list2')]


def test_literal_object_under_container_wildcard_must_exist():
    job = parse(node(devices=[{'name': 'input',
                               'path': 'swift://a/c*/junk'}]))
    assert [n.channels[0].path.url for n in job.nodes] == [
        'swift://a/c_in1/junk', 'swift://a/c_in2/junk']


def test_single_match_still_numbered():
    job = parse(node(devices=[{'name': 'input',
                               'path': 'swift://a/c/ex*'}]))
    assert [n.name for n in job.nodes] == ['sort-1']


def test_match_is_anchored_at_both_ends():
    job = parse(node(devices=[{'name': 'input',
                               'path': 'swift://a/e/data*.csv'}]))
    assert [n.channels[0].path.obj for n in job.nodes] == [
        'data1.csv', 'data2.csv']


def test_star_does_not_cross_slash_but_double_star_does():
    job = parse(node(devices=[{'name': 'input', 'path': 'swift://a/d/*'}]))
    assert [n.channels[0].path.obj for n in job.nodes] == ['in2']
    job = parse(node(devices=[{'name': 'input', 'path': 'swift://a/d/**'}]))
    assert [n.channels[0].path.obj for n in job.nodes] == [
        'x/y/in1', 'in2', 'x/in3']
    job = parse(node(devices=[{'name': 'input',
                               'path': 'swift://a/d/x/*'}]))
    assert [n.wildcards for n in job.nodes] == [['in3']]


def test_wildcard_values_fill_outputs_left_to_right():
    job = parse(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in*/in*'},
        {'name': 'stdout', 'path': 'swift://a/c_out/o*-*'}]))
    assert job.nodes[3].channels[1].path.url == 'swift://a/c_out/o2-put2'


def test_unresolvable_output_wildcards():
    assert message(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in1/in*'},
        {'name': 'stdout', 'path': 'swift://a/c_out*/out*'}])) == \
        'Wildcards in input cannot be resolved into output path ' \
        'swift://a/c_out*/out*'


def test_output_container_cannot_take_a_slash():
    assert message(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/d/**'},
        {'name': 'stdout', 'path': 'swift://a/*/out'}])) == \
        'Wildcards in input cannot be resolved into output path ' \
        'swift://a/*/out'


def test_no_objects_found():
    assert message(node(devices=[{'name': 'stdin',
                                  'path': 'swift://a/c_in1/zz*'}])) == \
        'No objects found in path swift://a/c_in1/zz*'
    assert message(node(devices=[{'name': 'stdin',
                                  'path': 'swift://a/none*/x'}])) == \
        'No objects found in path swift://a/none*/x'


def test_wildcard_needs_a_lister():
    err = error_of(node(devices=[{'name': 'stdin',
                                  'path': 'swift://a/c/i*'}]), lister=None)
    assert err.message == 'Wildcards cannot be resolved here: swift://a/c/i*'


def test_lister_errors_propagate():
    def failing(account, container):
        raise JobError('Error querying object server for account: %s'
                       % account)
    assert message(node(devices=[{'name': 'stdin', 'path': 'swift://a/c*'}]),
                   lister=failing) == \
        'Error querying object server for account: a'


def test_lister_called_only_for_wildcards():
    lister = FakeLister({})
    parse(node(devices=[{'name': 'stdin', 'path': 'swift://a/c/o'}]),
          lister=lister)
    assert lister.calls == []
    lister = FakeLister({'a': {'c_in1': ['input1']}})
    parse(node(devices=[{'name': 'stdin', 'path': 'swift://a/c_in1/in*'}]),
          lister=lister)
    assert lister.calls == [('a', 'c_in1')]


def test_wildcard_limits():
    assert message(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in1/in*'},
        {'name': 'input', 'path': 'swift://a/c_in2/in*'}])) == \
        'Cannot resolve wildcard for node sort: only one readable device ' \
        'may use wildcards'
    assert message(node(count=2, devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in1/in*'}])) == \
        'Cannot resolve wildcard for node sort: count cannot be combined ' \
        'with a wildcard input'


def test_shared_inputs_in_a_wildcard_group():
    job = parse(node(devices=[
        {'name': 'stdin', 'path': 'swift://a/c_in1/in*'},
        {'name': 'script', 'path': 'swift://a/c/o'}]))
    assert [n.name for n in job.nodes] == ['sort-1', 'sort-2']
    assert all(n.channels[1].path == SwiftPath('a', 'c', 'o')
               for n in job.nodes)


# -------------------------------------------------------------- placement

def test_default_attach_is_first_readable_as_listed():
    job = parse(node(devices=[
        {'name': 'stdout', 'path': 'swift://a/c/out'},
        {'name': 'image', 'path': 'swift://a/c/img'},
        {'name': 'stdin'},
        {'name': 'input', 'path': 'swift://a/c/first'},
        {'name': 'script', 'path': 'swift://a/c/second'}]))
    assert job.nodes[0].placement_channel().device == 'input'


def test_default_attach_fallbacks():
    def placed(devices, **kw):
        channel = parse(node(devices=devices, **kw)).nodes[0] \
            .placement_channel()
        return channel and channel.device
    assert placed([{'name': 'script', 'path': 'swift://a/c/s'},
                   {'name': 'stdin', 'path': 'swift://a/c/o'}]) == 'stdin'
    assert placed([{'name': 'script', 'path': 'swift://a/c/s'}]) == 'script'
    assert placed([{'name': 'stdout', 'path': 'swift://a/c/o'},
                   {'name': 'image', 'path': 'swift://a/c/i'}]) is None
    assert placed([{'name': 'stdout', 'path': 'swift://a/c/o'}]) is None
    assert placed([{'name': 'stdin'}, {'name': 'stdout'}]) is None
    assert placed([{'name': 'stdin', 'path': 'swift://a/c/o'},
                   {'name': 'image', 'path': 'swift://a/c/i'}],
                  attach='image') == 'image'
    assert placed([{'name': 'stdin', 'path': 'swift://a/c/o'},
                   {'name': 'stdout'}], attach='stdout') is None


def test_seed_job_places_next_to_input():
    seed_node = {
        'name': 'example',
        'exec': {'path': 'file://python2.7:python', 'args': 'main.py'},
        'devices': [{'name': 'python2.7'}, {'name': 'stdout'},
                    {'name': 'input', 'path': 'swift://~/example/data1.csv'},
                    {'name': 'image',
                     'path': 'swift://~/example/example.tar'}]}
    job = parse(seed_node, account='AUTH_test',
                sysimages=['python2.7', 'python3'])
    sole = job.nodes[0]
    assert sole.placement_channel().path.path_info == \
        '/AUTH_test/example/data1.csv'
    assert sole.immediate_channel().device == 'stdout'
    assert sole.channel('image').access == CDR


# ------------------------------------------------------------ connections

def test_connect_list_builds_edges():
    job = parse(node('map', count=2, connect=['red']), node('red', count=2))
    m1 = job.node('map-1')
    assert m1.connect == ['red-1', 'red-2'] and m1.bind == []
    assert m1.edges == [Edge('out', 'red-1', 'out/red-1'),
                        Edge('out', 'red-2', 'out/red-2')]
    r2 = job.node('red-2')
    assert r2.bind == ['map-1', 'map-2']
    assert Edge('in', 'map-2', 'in/map-2') in r2.edges
    assert [[n.name for n in stage] for stage in job.stages()] == [
        ['map-1', 'map-2'], ['red-1', 'red-2']]


def test_connect_errors():
    assert message(node(connect=['sort'])) == 'Cannot bind to itself: sort'
    assert message(node(connect=['nope'])) == \
        'Non-existing node in connect nope'
    assert message(node('a', connect=['b']), node('b', connect=['a'])) == \
        'Cycle in connect: a -> b -> a'


def test_group_self_connect_is_a_cycle():
    assert message(node(count=3, connect=['sort'])) == \
        'Cycle in connect: sort-1 -> sort-2 -> sort-1'


def test_longer_cycle_named_in_order():
    assert message(node('a', connect=['b']), node('b', connect=['c']),
                   node('c', connect=['a'])) == \
        'Cycle in connect: a -> b -> c -> a'


def test_connect_to_instance_name():
    job = parse(node('a', connect=['b-2']), node('b', count=2))
    assert job.node('a').connect == ['b-2']


def test_connections_are_bounded_before_any_is_made():
    mappers, reducers = node('map', count=300, connect=['red']), \
        node('red', count=300)
    err = error_of(mappers, reducers)
    assert (err.status, err.message) == (
        400, 'Too many connections in job: 90000 (this server allows 4096: '
             'zerovm_max_connections)')
    # Exactly at the bound is fine; one more is not.
    job = parse(node('map', count=4, connect=['red']), node('red', count=3),
                max_connections=12)
    assert sum(len(n.edges) for n in job.nodes) == 2 * 12
    assert '13 (this server allows 12' in message(
        node('map', count=4, connect=['red']), node('red', count=3),
        node('src', devices=[{'name': 'stdout',
                              'path': 'zvm://red-1:/dev/src'}]),
        max_connections=12)


def test_connections_to_the_own_group_count_without_the_node_itself():
    # map-1 -> map-2 would be a cycle: count only, checked first.
    assert message(node('map', count=3, connect=['map']),
                   max_connections=5) == (
        'Too many connections in job: 6 (this server allows 5: '
        'zerovm_max_connections)')


def test_stages_three_levels():
    job = parse(node('merge'), node('sort', connect=['merge']),
                node('src', connect=['sort', 'merge']))
    assert [[n.name for n in s] for s in job.stages()] == [
        ['src'], ['sort'], ['merge']]


def test_zvm_devices_multistage_p31():
    job = parse(
        node('stage1', devices=[
            {'name': 'stdin', 'path': 'swift://./c/o'},
            {'name': 'stdout', 'path': 'zvm://stage2:/dev/stdin'},
            {'name': 'stderr', 'path': 'swift://a/c/o2'}]),
        node('stage2', devices=[
            {'name': 'stdout', 'path': 'zvm://stage3:/dev/stdin'}]),
        node('stage3', devices=[
            {'name': 'stdout', 'content_type': 'text/plain'},
            {'name': 'stderr', 'path': 'swift://a/c/o3'}]))
    s1, s2, s3 = job.nodes
    assert [c.device for c in s1.channels] == ['stdin', 'stderr']
    assert s1.edges == [Edge('out', 'stage2', 'stdout')]
    assert s2.edges == [Edge('in', 'stage1', 'stdin'),
                        Edge('out', 'stage3', 'stdout')]
    assert s2.channels == [] and not s2.wants_stream
    assert s3.bind == ['stage2']
    assert [[n.name for n in s] for s in job.stages()] == [
        ['stage1'], ['stage2'], ['stage3']]


def test_zvm_custom_device_name_p30():
    job = parse(node('sort', devices=[
        {'name': 'stdout', 'path': 'zvm://merge:/dev/sort'}]), node('merge'))
    assert job.node('merge').edges == [Edge('in', 'sort', 'sort')]


def test_zvm_path_less_declared_receiver_yields():
    job = parse(node('a', devices=[{'name': 'stdout',
                                    'path': 'zvm://b:stdin'}]),
                node('b', devices=[{'name': 'stdin'}, {'name': 'stdout'}]))
    b = job.node('b')
    assert [c.device for c in b.channels] == ['stdout']
    assert not b.wants_stream


def test_zvm_errors():
    assert message(node('a', devices=[{'name': 'stdout',
                                       'path': 'zvm://a:stdin'}])) == \
        'Cannot bind to itself: a'
    assert message(node('a', devices=[{'name': 'stdout',
                                       'path': 'zvm://zz:stdin'}])) == \
        'Non-existing node in connect zz'
    assert message(node('a', devices=[{'name': 'stdout',
                                       'path': 'zvm://b:stdout'}]),
                   node('b')) == 'Invalid path zvm://b:stdout in a'
    assert message(node('a', devices=[{'name': 'stdout',
                                       'path': 'zvm://b:../x'}]),
                   node('b')) == 'Invalid path zvm://b:../x in a'
    assert message(
        node('a', devices=[{'name': 'stdout', 'path': 'zvm://b:stdin'}]),
        node('b', devices=[{'name': 'stdin', 'path': 'swift://a/c/o'}])) == \
        'Device stdin of node b is bound to swift://a/c/o and cannot also ' \
        'receive from a'
    assert message(
        node('a', count=2, devices=[{'name': 'stdout',
                                     'path': 'zvm://b:stdin'}]),
        node('b')) == \
        'Device stdin of node b receives from more than one node: a-1, a-2'


def test_zvm_wildcard_device_names():
    job = parse(
        node('map', devices=[
            {'name': 'stdin', 'path': 'swift://a/c_in1/in*'},
            {'name': 'stdout', 'path': 'zvm://red:/dev/in/*'}]),
        node('red'))
    assert [e.device for e in job.node('red').edges] == [
        'in/put1', 'in/put2']
    job = parse(node('map', count=2, devices=[
        {'name': 'stdout', 'path': 'zvm://red:from-*'}]), node('red'))
    assert [e.device for e in job.node('red').edges] == [
        'from-map-1', 'from-map-2']


def test_stages_detect_cycle_in_deserialised_nodes():
    a = Node(1, 'a', 'a', FilePath(None, 'x', True), None, '', {}, [],
             connect=['b'], bind=['b'])
    b = Node(2, 'b', 'b', FilePath(None, 'x', True), None, '', {}, [],
             connect=['a'], bind=['a'])
    with pytest.raises(JobError):
        Job([a, b]).stages()


# ------------------------------------------------------ sysmap round trip

def test_to_dict_from_dict_round_trip():
    job = parse(
        node('map', exec={'path': 'python', 'args': 'x', 'name': 'm',
                          'env': {'K': 'V'}},
             connect=['red'], location='here', replicate=2, devices=[
                 {'name': 'stdin', 'path': 'swift://a/c_in1/in*'},
                 {'name': 'stdout', 'path': 'swift://a/c_out1/out*',
                  'meta': {'k': 'v'}, 'mode': 'char', 'min_size': 2},
                 {'name': 'stderr'}, {'name': 'python2.7'},
                 {'name': 'debug', 'path': 'udp://h:9'}]),
        node('red', exec={'path': 'file://python2.7:python'}, attach='stdin',
             devices=[{'name': 'stdin'},
                      {'name': 'image', 'path': 'swift://a/c/i'}]),
        sysimages=['python2.7'])
    for original in job.nodes:
        data = json.loads(json.dumps(original.to_dict()))
        assert Node.from_dict(data) == original
    assert job.node('map-1').to_dict()['exe'] == 'python'
    assert job.node('map-2').to_dict()['channels'][0]['path'] == \
        'swift://a/c_in1/input2'


def test_from_dict_rejects_malformed():
    good = parse(node(devices=[{'name': 'stdout'}])).nodes[0].to_dict()
    for broken in ({}, dict(good, channels=[{'device': 'x'}]),
                   dict(good, exe='has space'), dict(good, id='x')):
        with pytest.raises(JobError) as caught:
            Node.from_dict(broken)
        assert caught.value.message.startswith('Invalid sysmap')


def test_channel_flags():
    channel = Channel('output', RANDOM | WRITABLE, None, 'text/plain')
    assert channel.writable and not channel.readable and channel.is_immediate


def test_job_node_lookup():
    job = parse(node('a'), node('b'))
    assert job.node('b').id == 2
    with pytest.raises(KeyError):
        job.node('zz')


# ------------------------------------------------------------ script jobs

def test_seed_script():
    doc = job_from_script(b'#!file://python2.7:python\nprint(1)\n',
                          account='AUTH_t')
    assert doc == [{'name': 'script',
                    'exec': {'path': 'file://python2.7:python',
                             'args': 'script'},
                    'devices': [{'name': 'stdout',
                                 'content_type': 'text/plain'},
                                {'name': 'python2.7'}]}]
    job = parse_job(doc, account='AUTH_t', sysimages=['python2.7'])
    assert job.nodes[0].immediate_channel().content_type == 'text/plain'


def test_script_args_and_swift_interpreter():
    doc = job_from_script(b'#! swift://~/c/exe2 -u -v\nbody',
                          account='a')
    assert doc[0]['exec'] == {'path': 'swift://a/c/exe2',
                              'args': '-u -v script'}
    assert [d['name'] for d in doc[0]['devices']] == ['stdout']


def test_script_posted_to_object_reads_it():
    doc = job_from_script(b'#!file://python3:python\n', account='a',
                          container='my c', obj='o "quoted"/x')
    assert doc[0]['devices'][0] == {
        'name': 'stdin', 'path': 'swift://a/my c/o "quoted"/x'}
    job = parse_job(json.dumps(doc), account='a', sysimages=['python3'])
    sole = job.nodes[0]
    assert sole.placement_channel().path == SwiftPath('a', 'my c',
                                                      'o "quoted"/x')
    assert not sole.wants_stream


@pytest.mark.parametrize('head, text', [
    (b'print 1\n', 'Unsupported Content-Type'),
    (b'', 'Unsupported Content-Type'),
    (b'#!file://python2.7:python', 'Cannot find shebang (#!) in script'),
    (b'#! aaa/bbb\n', 'Bad interpreter aaa/bbb'),
    (b'#!zvm://a:b\n', 'Bad interpreter zvm://a:b'),
    (b'#!   \n', 'Bad interpreter: the shebang line is empty'),
    (b'#!\xff\xfe\n', 'Bad interpreter: the shebang line is not UTF-8'),
    (b'#!file://python\n',
     'Must supply image name in shebang url file://python'),
])
def test_script_errors(head, text):
    with pytest.raises(JobError) as caught:
        job_from_script(head, account='a')
    assert caught.value.status == 400
    assert caught.value.message == text


# ------------------------------------------------------------ templates

def test_substitute_values_defaults_and_leftovers():
    template = '{"a": "{.x}", "b": "{.y=dflt}", "c": "{.z}", ' \
               '"d": "{.x=ignored}", "e": {.n=3}}'
    assert substitute(template, {'x': 'X'}) == \
        '{"a": "X", "b": "dflt", "c": "", "d": "X", "e": 3}'


def test_substitute_raw_and_single_pass():
    assert substitute('{.a}|{.b}', {'a': '"{.b}"', 'b': 'B'}) == '"{.b}"|B'


def test_substitute_object_path():
    template = '[{"path": "{.object_path}"}]'
    assert substitute(template, {'object_path': 'nope'},
                      'swift://a/c/o') == '[{"path": "swift://a/c/o"}]'
    assert substitute(template, {}) == '[{"path": ""}]'
