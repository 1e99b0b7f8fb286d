"""``zpm deploy TARGET ZAPP``: store a zapp, its job and its web page.

``TARGET`` is ``container`` or ``container/folder``.  A missing container
is created; one that already holds objects (under the folder, if one is
given) is refused unless ``--force``.  Uploads, in order:

1. ``TARGET/<zapp file name>``: the zapp as a plain tar (the jobs read it
   as their ``image``);
2. ``TARGET/boot/system.map``: the zapp's job, each node with an ``image``
   device pointing at 1.;
3. the zapp's ``ui`` files, ``*.tmpl`` ones rendered (Jinja2, HTML-escaped)
   with ``zapp`` (zapp.yaml's content) and, for zpm 0.3 templates,
   ``auth_opts`` (only the storage URL: a page never holds credentials).

The page loads in a browser once the container is readable without a
token: ``swift post -r '.r:*' CONTAINER`` (no listing rights needed).  It
signs in only on its account's own host (``account_hosts`` in the
cluster's ``/info``): the URL printed is the page's there.
"""

import fnmatch
import gzip
import json
import logging
import mimetypes
import os
import shutil
import tarfile
import tempfile
from typing import Dict, List, Optional, Tuple

import jinja2
from markupsafe import Markup
from swiftclient.client import Connection
from swiftclient.exceptions import ClientException

from zerocloud.account_host import account_url
from zerocloud.zpm import project, progress
from zerocloud.zpm.bundle import SYSTEM_MAP
from zerocloud.zpm.execute import account_of, split_target
from zerocloud.zpm.project import ProjectError

LOG = logging.getLogger('zpm')
TEMPLATE_SUFFIX = '.tmpl'
INDEX = 'index.html'
PUBLIC_READ = '.r:*'


def _read_zapp(path: str) -> Tuple[list, dict, Dict[str, bytes]]:
    """(job, zapp.yaml content, {member: data} of the ui files)."""
    try:
        with tarfile.open(path, 'r:*') as tar:
            def data(name: str) -> bytes:
                try:
                    handle = tar.extractfile(name)
                except KeyError:
                    handle = None
                if handle is None:
                    raise ProjectError('%s has no %s: not a zapp (zpm bundle '
                                       'makes one)' % (path, name))
                return handle.read()
            job = json.loads(data(SYSTEM_MAP))
            zapp = project.parse_zapp(data(project.ZAPP_YAML).decode('utf-8'))
            patterns = project.ui_patterns(zapp)
            ui = {member.name: data(member.name)
                  for member in sorted(tar.getmembers(), key=lambda m: m.name)
                  if member.isfile() and any(fnmatch.fnmatch(member.name, p)
                                             for p in patterns)}
    except (tarfile.TarError, OSError, EOFError, ValueError) as err:
        raise ProjectError('cannot read %s: %s' % (path, err)) from None
    if not isinstance(job, list) or not all(isinstance(node, dict)
                                            for node in job):
        raise ProjectError('%s: %s is not a job (a JSON list of nodes)'
                           % (path, SYSTEM_MAP))
    return job, zapp, ui


def with_image(job: list, image_url: str) -> list:
    """The job with every node's ``image`` device reading ``image_url``."""
    nodes = []
    for node in job:
        # Malformed devices pass through: the proxy refuses them clearly.
        devices = [d for d in node.get('devices') or []
                   if not (isinstance(d, dict) and d.get('name') == 'image')]
        nodes.append(dict(node, devices=devices + [
            {'name': 'image', 'path': image_url}]))
    return nodes


def swift_object(url: str) -> str:
    """``container/object`` of a ``swift://account/container/object`` URL
    (what the page shows in its path fields)."""
    if url.startswith('swift://'):
        return url[len('swift://'):].partition('/')[2]
    return url


def render_page(template: str, zapp: dict, storage_url: str) -> str:
    environment = jinja2.Environment(autoescape=True,
                                     extensions=['jinja2.ext.do'])
    environment.filters['swift_object'] = swift_object
    auth_opts = Markup(json.dumps({'version': '0.0',
                                   'swiftUrl': storage_url}))
    return environment.from_string(template).render(zapp=zapp,
                                                     auth_opts=auth_opts)


def ui_uploads(ui: Dict[str, bytes], zapp: dict, storage_url: str
               ) -> List[Tuple[str, bytes]]:
    """(object name under the target, body) of each ui file."""
    uploads = []
    for name, data in ui.items():
        if name.endswith(TEMPLATE_SUFFIX):
            try:
                text = render_page(data.decode('utf-8'), zapp, storage_url)
            except (UnicodeDecodeError, jinja2.TemplateError) as err:
                raise ProjectError('cannot render %s: %s' % (name, err)) \
                    from None
            uploads.append((name[:-len(TEMPLATE_SUFFIX)], text.encode()))
        else:
            uploads.append((name, data))
    return uploads


def _check_target(conn: Connection, container: str, prefix: str,
                  force: bool) -> None:
    try:
        _, listing = conn.get_container(container, prefix=prefix, limit=1)
    except ClientException as err:
        if err.http_status != 404:
            raise
        conn.put_container(container)
        return
    if listing and not force:
        where = container + ('/' + prefix.rstrip('/') if prefix else '')
        raise ProjectError(
            "Target container ('%s') is not empty. Deploying there could "
            "overwrite its objects; specify --force/-f to deploy anyway."
            % where)


def _upload_tar(conn: Connection, container: str, name: str,
                zapp_path: str) -> None:
    """The zapp, gunzipped on the way (a plain tar serves as ``image``)."""
    with tempfile.TemporaryFile() as plain:
        try:
            with gzip.open(zapp_path) as packed:
                shutil.copyfileobj(packed, plain)
        except gzip.BadGzipFile:
            with open(zapp_path, 'rb') as raw:
                shutil.copyfileobj(raw, plain)
        size = plain.tell()
        plain.seek(0)
        conn.put_object(container, name,
                        progress.ProgressReader(plain, size, 'upload'),
                        content_length=size,
                        content_type='application/x-tar')


def account_host_domain(conn: Connection) -> Optional[str]:
    """The cluster's account host domain, None when it has none."""
    try:
        info = conn.get_capabilities()
    except (ClientException, ValueError):   # no /info, or not JSON
        return None
    domain = (info.get('account_hosts') or {}).get('domain')
    return domain if isinstance(domain, str) and domain else None


def page_url(conn: Connection, url: str) -> str:
    """``url`` of a page on its account's own host, the only place it
    signs in; ``url`` itself, with a warning, where there is none."""
    domain = account_host_domain(conn)
    there = domain and account_url(url, account_of(conn.url), domain)
    if there:
        return there
    LOG.warning('the page signs in only on its account\'s own host, which '
                'this cluster does not give %s (its operator adds the '
                'account_hosts filter; see the README, "The zapp page")',
                account_of(conn.url)[:100])
    return url


def deploy(conn: Connection, target: str, zapp_path: str,
           force: bool) -> str:
    """Deploy; returns the URL to show (the page, else the target)."""
    container, prefix = split_target(target)
    if not container:
        raise ProjectError('the target must name a container')
    job, zapp, ui = _read_zapp(zapp_path)
    # Rendered first: a broken template stores nothing.
    uploads = ui_uploads(ui, zapp, conn.url)
    _check_target(conn, container, prefix, force)
    zapp_name = os.path.basename(zapp_path)
    _upload_tar(conn, container, prefix + zapp_name, zapp_path)
    image_url = 'swift://%s/%s/%s%s' % (account_of(conn.url), container,
                                        prefix, zapp_name)
    conn.put_object(container, prefix + SYSTEM_MAP,
                    json.dumps(with_image(job, image_url), indent=2),
                    content_type='application/json')
    for name, data in uploads:
        conn.put_object(container, prefix + name, data,
                        content_type=mimetypes.guess_type(name)[0]
                        or 'application/octet-stream')
    pages = [name for name, _ in uploads
             if name == INDEX or name.endswith('/' + INDEX)]
    if pages:
        read_acl = conn.head_container(container).get('x-container-read', '')
        if PUBLIC_READ not in read_acl:
            LOG.warning("browsers load the page once the container is "
                        "public-read: swift post -r '%s' %s", PUBLIC_READ,
                        container)
        return page_url(conn, '%s/%s/%s%s' % (conn.url, container, prefix,
                                              pages[0]))
    return '%s/%s/%s' % (conn.url, container, prefix)
