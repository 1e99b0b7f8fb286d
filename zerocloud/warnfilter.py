"""Keep other projects' deprecation warnings away from operators.

A library warning that another library's API is deprecated (dnspython
using cryptography's DSA classes, printed on every import) is nothing an
operator of ZeroCloud can act on, yet it buried the launcher's one-line
messages.  Our processes (the ``zerocloud-saio`` launcher, every Swift
server it starts, ``zerocloud-sysimage``) call
:func:`hide_third_party_deprecations` before they import Swift, eventlet or
wasmtime.

Only warnings whose category is a deprecation (``DeprecationWarning``,
``PendingDeprecationWarning`` or a library's own ``...DeprecationWarning``
class, which may derive from ``UserWarning``) *and* that point at code
outside the ``zerocloud`` package are dropped.  Every other warning, and
every warning about ZeroCloud's own code, is shown as before.
"""

import os
import warnings

#: Files under this directory are ours: their warnings are always shown.
OWN_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_third_party_deprecation(category: type, filename: str) -> bool:
    """Whether a warning is a deprecation about code that is not ours."""
    deprecation = (issubclass(category, (DeprecationWarning,
                                         PendingDeprecationWarning))
                   or category.__name__.endswith('DeprecationWarning'))
    return deprecation and not os.path.abspath(filename).startswith(
        OWN_PACKAGE_DIR)


def hide_third_party_deprecations() -> None:
    """Drop third-party deprecation warnings in this process (idempotent)."""
    shown = warnings.showwarning
    if getattr(shown, 'hides_third_party_deprecations', False):
        return

    def showwarning(message, category, filename, lineno, file=None,
                    line=None):
        if not is_third_party_deprecation(category, filename):
            shown(message, category, filename, lineno, file, line)

    showwarning.hides_third_party_deprecations = True
    warnings.showwarning = showwarning
