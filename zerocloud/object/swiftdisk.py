"""Every call into Swift's private object- and container-server API.

``object_query`` needs a few things Swift keeps to itself: the server app
behind the pipeline's filters, where a policy's devices are, an object's
``.data`` file and a container's database.  They are reached here and
nowhere else, so a Swift upgrade that moves one of them breaks one module
(the pinned Swift release is the one these calls were checked against).
"""

import os
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Dict, Optional

from swift.common.storage_policy import BaseStoragePolicy


def final_app(app):
    """The object (or container) server app behind the pipeline."""
    return getattr(app, '_pipeline_final_app', app)


def devices_root(app, policy: BaseStoragePolicy) -> str:
    """The directory holding the server's devices for ``policy``."""
    server = final_app(app)
    router = getattr(server, '_diskfile_router', None)
    if router is not None:
        return router[policy].devices
    return server.root


@dataclass
class StoredObject:
    """One object's ``.data`` file as this server holds it."""
    data_file: str
    size: int
    content_type: Optional[str]
    metadata: Dict[str, str]


def open_object(app, stack: ExitStack, device: str, partition: str,
                account: str, container: str, obj: str,
                policy: BaseStoragePolicy) -> StoredObject:
    """Open an object's ``.data`` file, kept open until ``stack`` closes.

    Raises Swift's ``DiskFileDeviceUnavailable``, ``DiskFileNotExist`` or
    ``DiskFileQuarantined``.
    """
    disk_file = final_app(app).get_diskfile(device, partition, account,
                                            container, obj, policy=policy)
    disk_file.open()
    stack.callback(disk_file.__exit__, None, None, None)
    return StoredObject(disk_file._data_file, disk_file.content_length,
                        disk_file.content_type, disk_file.get_metadata())


def container_database(app, device: str, partition: str, account: str,
                       container: str) -> Optional[str]:
    """The container's database file; None when there is no container."""
    broker = final_app(app)._get_container_broker(device, partition,
                                                  account, container)
    if not os.path.exists(broker.db_file) or broker.is_deleted():
        return None
    return broker.db_file
