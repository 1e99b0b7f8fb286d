"""Filter options: read once, a bad value named at start."""

import os
import re
from typing import Set

import pytest
from swift.common.wsgi import loadapp

from test.unit.fakeswift import FakeSwift
from zerocloud import options
from zerocloud.object import filter as object_filter
from zerocloud.object.config import ObjectConfig
from zerocloud.options import ConfigError
from zerocloud.proxy import account_hosts
from zerocloud.proxy import chain as proxy_chain
from zerocloud.proxy import filter as proxy_filter
from zerocloud.proxy.account_hosts import AccountHostsConfig
from zerocloud.proxy.config import ChainConfig, ProxyConfig
from zerocloud.tarscan import ScanBounds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_sysimage_devices_are_name_path_pairs():
    assert options.sysimage_devices({'zerovm_sysimage_devices':
                                     'image1 path1 image2 path2'}) == {
        'image1': 'path1', 'image2': 'path2'}
    assert options.sysimage_devices({}) == {}
    with pytest.raises(ConfigError) as err:
        options.sysimage_devices({'zerovm_sysimage_devices':
                                  'image1 path1 image2'})
    assert 'zerovm_sysimage_devices' in str(err.value)
    assert "'image2'" in str(err.value)


@pytest.mark.parametrize('raw, expected', [
    (None, 7), ('', 7), (' 12 ', 12), ('0', 0)])
def test_integer_defaults_and_parses(raw, expected):
    conf = {} if raw is None else {'opt': raw}
    assert options.integer(conf, 'opt', 7) == expected


@pytest.mark.parametrize('raw', ['ten', '1.5', '1e3', '-1'])
def test_bad_integer_names_the_option(raw):
    with pytest.raises(ConfigError) as err:
        options.integer({'zerovm_maxpool': raw}, 'zerovm_maxpool', 2)
    assert str(err.value).startswith('zerovm_maxpool must be')


@pytest.mark.parametrize('raw', ['soon', '-0.5', 'nan'])
def test_bad_number_names_the_option(raw):
    with pytest.raises(ConfigError) as err:
        options.number({'conn_timeout': raw}, 'conn_timeout', 0.5)
    assert str(err.value).startswith('conn_timeout must be')


def test_scan_bounds_from_conf():
    assert options.scan_bounds({}) == ScanBounds(64 << 20, 10000)
    assert options.scan_bounds({'zerovm_image_scan_bytes': '4096',
                                'zerovm_image_scan_members': '5'}) == \
        ScanBounds(4096, 5)


def test_scan_bounds_that_fit_no_member_are_refused():
    with pytest.raises(ConfigError) as err:
        options.scan_bounds({'zerovm_image_scan_members': '0'})
    assert 'must' in str(err.value)


def test_object_config_defaults():
    config = ObjectConfig.from_conf({})
    assert (config.timeout, config.max_pool, config.max_queue) == (10, 2, 8)
    assert config.max_memory == 1 << 30
    assert config.mount_check is True


@pytest.mark.parametrize('name, raw', [
    ('zerovm_maxpool', '0'), ('zerovm_timeout', 'x'),
    ('zerovm_maxnexemem', '4k'), ('zerovm_kill_timeout', '-1')])
def test_object_config_refuses_bad_values_by_name(name, raw):
    with pytest.raises(ConfigError) as err:
        ObjectConfig.from_conf({name: raw})
    assert str(err.value).startswith(name)


def test_spool_dir_must_be_a_writable_directory(tmp_path):
    assert options.directory({}, 'zerovm_spool_dir') is None
    assert options.directory({'zerovm_spool_dir': str(tmp_path)},
                             'zerovm_spool_dir') == str(tmp_path)
    with pytest.raises(ConfigError, match='^zerovm_spool_dir must be a '
                       'directory this server can write in'):
        ProxyConfig.from_conf({'zerovm_spool_dir': str(tmp_path / 'gone')})


# -- every option documented, every bad one named at start --------------------

class RecordingConf(dict):
    """A filter's configuration that notes every option read from it."""

    def __init__(self):
        super().__init__()
        self.read: Set[str] = set()

    def get(self, name, default=None):
        self.read.add(name)
        return super().get(name, default)


def options_read(config_class) -> Set[str]:
    conf = RecordingConf()
    try:
        config_class.from_conf(conf)
    except ConfigError:
        pass   # a required option: every option was read before the check
    return conf.read


def sample(name: str) -> str:
    with open(os.path.join(REPO, 'etc', name)) as fp:
        return fp.read()


def section(text: str, name: str) -> str:
    """The lines of one ``[section]`` of a sample configuration."""
    return text.split('[%s]' % name, 1)[1].split('\n[', 1)[0]


@pytest.mark.parametrize('config_class, one_option, docstring, samples', [
    (ProxyConfig, 'client_timeout', proxy_filter.__doc__,
     [section(sample('proxy-server.conf-sample'), 'filter:proxy_query')]),
    (ChainConfig, 'chain_timeout', proxy_chain.__doc__,
     [section(sample('proxy-server.conf-sample'), 'filter:job_chain')]),
    (AccountHostsConfig, 'account_host_domain', account_hosts.__doc__,
     [section(sample('proxy-server.conf-sample'), 'filter:account_hosts')]),
    (ObjectConfig, 'zerovm_maxpool', object_filter.__doc__,
     [sample('object-server.conf-sample'),
      sample('container-server.conf-sample')]),
])
def test_every_option_read_is_documented(config_class, one_option,
                                         docstring, samples):
    names = options_read(config_class)
    assert one_option in names
    for name in sorted(names):
        pattern = r'\b%s\b' % re.escape(name)
        assert re.search(pattern, docstring), \
            '%s is not in the module docstring' % name
        for text in samples:
            assert re.search(pattern, text), \
                '%s is not in the sample configuration' % name


PIPELINE_CONF = '''[DEFAULT]

[pipeline:main]
pipeline = %(filter)s fake

[filter:%(filter)s]
use = egg:zerocloud#%(filter)s
%(option)s = %(value)s

[app:fake]
paste.app_factory = test.unit.fakeswift:app_factory
'''


@pytest.mark.parametrize('filter_name, option, value', [
    ('proxy_query', 'zerovm_maxinput', 'lots'),
    ('proxy_query', 'client_timeout', '0'),
    ('proxy_query', 'zerovm_sysimage_devices', 'python'),
    ('job_chain', 'chain_timeout', 'soon'),
    ('object_query', 'zerovm_maxpool', '0'),
    ('object_query', 'zerovm_fuel', '1e9'),
])
def test_loading_a_pipeline_with_a_bad_option_fails_naming_it(
        tmp_path, filter_name, option, value):
    path = tmp_path / 'server.conf'
    path.write_text(PIPELINE_CONF % {'filter': filter_name, 'option': option,
                                     'value': value})
    with pytest.raises(ConfigError, match='^%s must be' % option):
        loadapp(str(path))


def test_a_pipeline_with_good_options_loads(tmp_path):
    path = tmp_path / 'server.conf'
    path.write_text(PIPELINE_CONF % {'filter': 'proxy_query',
                                     'option': 'client_timeout',
                                     'value': '5'})
    app = loadapp(str(path))
    assert app.config.client_timeout == 5.0
    assert isinstance(app.app, FakeSwift)
