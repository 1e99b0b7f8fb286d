"""Send Swift server logs to a plain file instead of syslog.

Swift only logs to syslog: to ``/dev/log`` when it is a socket, otherwise
(silently) over UDP to localhost:514, where the lines are lost when nothing
listens (containers, developer machines).  Swift has no file option, but it
calls every hook named in ``log_custom_handlers`` for each logger it builds.
This module is such a hook::

    [DEFAULT]
    log_custom_handlers = zerocloud.logfile.add_file_handler
    # Required by the hook: the file every log line of this server goes to
    # (absolute: servers chdir to / at start).
    log_file_path = /var/log/swift/proxy-server.log
    # Optional, default empty: comma-separated logging routes that go to the
    # same file although Swift builds their loggers without the hook, e.g. the
    # proxy access log of the proxy-logging filter (route ``proxy-access``).
    # log_file_extra_routes = proxy-access

Put both options in ``[DEFAULT]`` so that the server and every filter of its
pipeline (which all build their own loggers) write to the file.  Lines look
like ``2025-01-31 12:00:00,123 INFO proxy-server: message (txn: tx...)``;
tracebacks stay on one line (``#012`` for newlines), as in syslog.

Swift builds loggers more than once (the app is loaded in the parent and again
in each worker), so the hook adds at most one handler per logger and file.
The syslog handler Swift installs stays in place.
"""

import logging
import os

from swift.common.utils.logs import SwiftLogFormatter

LOG_FILE_OPTION = 'log_file_path'
EXTRA_ROUTES_OPTION = 'log_file_extra_routes'


class LogFileConfigError(Exception):
    """The hook is configured without a file (Swift swallows ValueError)."""


def add_file_handler(conf: dict, name: str, log_to_console: bool,
                     log_route: str, fmt: str, logger: logging.Logger,
                     adapted_logger: logging.LoggerAdapter) -> None:
    """``log_custom_handlers`` hook: also log to the ``log_file_path`` file.

    Raises LogFileConfigError when the option is missing, so a misconfigured
    server fails at start instead of logging nowhere.
    """
    path = (conf.get(LOG_FILE_OPTION) or '').strip()
    if not path:
        raise LogFileConfigError('%s.add_file_handler needs the %s option'
                                 % (__name__, LOG_FILE_OPTION))
    max_line_length = int(conf.get('log_max_line_length', 0))
    routes = [route.strip() for route in
              conf.get(EXTRA_ROUTES_OPTION, '').split(',') if route.strip()]
    targets = [logger] + [logging.getLogger(route) for route in routes]
    for target in targets:
        _attach(target, path, fmt, max_line_length)


def _attach(logger: logging.Logger, path: str, fmt: str,
            max_line_length: int) -> None:
    """Add a FileHandler for ``path`` unless ``logger`` already has one."""
    path = os.path.abspath(path)
    if any(isinstance(existing, logging.FileHandler)
           and existing.baseFilename == path
           for existing in logger.handlers):
        return
    handler = logging.FileHandler(path, delay=True)
    handler.setFormatter(SwiftLogFormatter(
        fmt='%(asctime)s %(levelname)s ' + fmt,
        max_line_length=max_line_length))
    logger.addHandler(handler)
