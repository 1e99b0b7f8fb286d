"""Filter options: read once, a bad value named at start."""

import pytest

from zerocloud import options
from zerocloud.object.config import ObjectConfig
from zerocloud.options import ConfigError
from zerocloud.tarscan import ScanBounds


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
