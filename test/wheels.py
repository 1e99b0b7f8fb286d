"""A pure-Python wheel made on the spot, so dependency bundling is tested
without a package index (pip gets ``--no-index --find-links``)."""

import os
import zipfile
from typing import Dict


def pure_wheel(directory: str, name: str, version: str,
               files: Dict[str, str]) -> str:
    """Write ``<name>-<version>-py3-none-any.whl`` holding ``files``."""
    info = '%s-%s.dist-info' % (name, version)
    members = dict(files)
    members[info + '/METADATA'] = (
        'Metadata-Version: 2.1\nName: %s\nVersion: %s\n' % (name, version))
    members[info + '/WHEEL'] = ('Wheel-Version: 1.0\nGenerator: test\n'
                                'Root-Is-Purelib: true\nTag: py3-none-any\n')
    members[info + '/RECORD'] = ''.join('%s,,\n' % member
                                        for member in members) + \
        info + '/RECORD,,\n'
    path = os.path.join(directory, '%s-%s-py3-none-any.whl' % (name, version))
    with zipfile.ZipFile(path, 'w') as wheel:
        for member, text in members.items():
            wheel.writestr(member, text)
    return path


def offline_pip_env(wheel_dir: str) -> Dict[str, str]:
    """Environment variables making pip use only ``wheel_dir``."""
    return {'PIP_NO_INDEX': '1', 'PIP_FIND_LINKS': wheel_dir,
            'PIP_CONFIG_FILE': os.devnull}
