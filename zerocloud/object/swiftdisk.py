"""Every call into Swift's private object- and container-server API.

``object_query`` needs a few things Swift keeps to itself: the server app
behind the pipeline's filters, where a policy's devices are, an object's
``.data`` file (held for a node by a hard link) and a container's
database.  They are reached here and nowhere else, so a Swift upgrade that
moves one of them breaks one module (the pinned Swift release is the one
these calls were checked against).
"""

import os
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


#: Times an object is opened again when it is replaced while being held.
HOLD_ATTEMPTS = 3


class ObjectChanging(Exception):
    """The object was replaced each time it was about to be held."""


def hold_object(app, device: str, partition: str, account: str,
                container: str, obj: str, policy: BaseStoragePolicy,
                dest: str) -> StoredObject:
    """Hold an object's ``.data`` file as it is now: a hard link at
    ``dest`` (under the device's ``tmp``: the same filesystem, as Swift's
    own writes need), checked to be the very file opened.  A PUT or DELETE
    of the object meanwhile leaves what ``dest`` holds alone; removing
    ``dest`` releases it.

    Raises Swift's ``DiskFileDeviceUnavailable``, ``DiskFileNotExist`` or
    ``DiskFileQuarantined``, or :class:`ObjectChanging`.
    """
    server = final_app(app)
    for _attempt in range(HOLD_ATTEMPTS):
        disk_file = server.get_diskfile(device, partition, account,
                                        container, obj, policy=policy)
        with disk_file.open():
            if disk_file._fp is None:
                continue   # gone between listing and opening
            opened = os.fstat(disk_file._fp.fileno())
            try:
                os.link(disk_file._data_file, dest)
            except FileNotFoundError:
                continue   # replaced or deleted since it was opened
            linked = os.stat(dest)
            if (linked.st_dev, linked.st_ino) == (opened.st_dev,
                                                  opened.st_ino):
                return StoredObject(dest, disk_file.content_length,
                                    disk_file.content_type,
                                    disk_file.get_metadata())
            os.unlink(dest)   # a newer file took the name: look again
    raise ObjectChanging()


def container_database(app, device: str, partition: str, account: str,
                       container: str) -> Optional[str]:
    """The container's database file; None when there is no container."""
    broker = final_app(app)._get_container_broker(device, partition,
                                                  account, container)
    if not os.path.exists(broker.db_file) or broker.is_deleted():
        return None
    return broker.db_file
