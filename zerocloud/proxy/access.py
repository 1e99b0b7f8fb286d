"""Who may do what in a job: setuid grants, foreign origins, allowed writes.

Every object a job touches is first checked with the deployment's own
``swift.authorize`` as the caller.  This module holds the rules ZeroCloud adds
on top (README "Security model"):

* **setuid** — a container whose ``X-Container-Meta-Rest-Endpoint`` names the
  stored job being run and which sets ``X-Container-Meta-Zerovm-Suid`` lends
  that ACL to the job, on the objects of that container only.  Its read part
  (the whole ACL, referrers included) grants executing and reading; writing
  needs an explicit user or account entry, because Swift has no ``.w:``
  referrer and tempauth's referrer check ignores the method.  Setuid
  sub-requests are never pre-authorized: the caller's own authorization hook
  is wrapped so that only paths in a lending container get the suid ACL, and
  a symlink or manifest there is followed to other paths with the caller's
  own rights.
* **foreign origin** — a job whose description, or any code it executes
  (:func:`code_paths`: a program, a user image, a script), is stored in an
  account the caller does not own may write only its response, where a
  lending container grants writing, and under the prefixes the caller lists
  in ``X-Zerovm-Allow-Write``; so may every job it chains.  What runs
  decides, not only where the description was found: a user's own job
  running another account's public code runs that account's code.
"""

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from swift.common.swob import Request, wsgi_to_str

from zerocloud.job.model import JobError, Node, SwiftPath

#: Devices whose content runs as code: the user image and a script (a
#: system image's device takes no Swift path).
CODE_DEVICES = ('image', 'script')
#: Request header: ``swift://`` prefixes a foreign job may write under.
ALLOW_WRITE_HEADER = 'X-Zerovm-Allow-Write'
#: Methods that only read; every other method of a sub-request writes.
READ_METHODS = ('GET', 'HEAD')

Authorize = Callable[[Request], Optional[Callable]]


@dataclass(frozen=True)
class SetuidGrant:
    """What one container's ``Zerovm-Suid`` lends to its endpoint's job."""
    account: str
    container: str
    read_acl: str
    write_acl: str

    @classmethod
    def parse(cls, account: str, container: str, suid: str
              ) -> 'SetuidGrant':
        entries = [e.strip() for e in suid.split(',') if e.strip()]
        # ".r:<referrer>" and ".rlistings" are read designators; only named
        # users and accounts may be lent writing.
        named = [e for e in entries if not e.startswith('.')]
        return cls(account, container, ','.join(entries), ','.join(named))

    def acl(self, write: bool) -> str:
        return self.write_acl if write else self.read_acl


class Grants:
    """The setuid grants a job earned, by lending container."""

    def __init__(self) -> None:
        self._by_container: Dict[Tuple[str, str], SetuidGrant] = {}

    def __bool__(self) -> bool:
        return bool(self._by_container)

    def add(self, grant: SetuidGrant) -> None:
        self._by_container[(grant.account, grant.container)] = grant

    def lending(self, account: str, container: Optional[str]
                ) -> Optional[SetuidGrant]:
        if container is None:
            return None
        return self._by_container.get((account, container))

    def wrap(self, authorize: Authorize) -> Authorize:
        """``authorize`` with this job's grants as a second chance.

        Installed as ``swift.authorize`` of the job's sub-requests instead of
        pre-authorizing them, so every middleware's own sub-requests (symlink
        targets, SLO/DLO segments) inherit it: a path in a lending container
        is tried again with the suid ACL, any other path keeps the caller's
        verdict.
        """
        def authorize_with_grants(req: Request):
            denial = authorize(req)
            if denial is None:
                return None
            try:
                _ver, account, container, _obj = req.split_path(2, 4, True)
            except ValueError:
                return denial
            grant = self.lending(wsgi_to_str(account),
                                 container and wsgi_to_str(container))
            acl = grant and grant.acl(write=req.method not in READ_METHODS)
            if not acl:
                return denial
            own_acl = req.acl
            req.acl = acl
            try:
                return authorize(req)
            finally:
                req.acl = own_acl
        return authorize_with_grants


def code_paths(node: Node) -> List[SwiftPath]:
    """The stored objects whose content ``node`` runs as code."""
    paths = [node.exe] if isinstance(node.exe, SwiftPath) else []
    paths += [ch.path for ch in node.channels
              if isinstance(ch.path, SwiftPath) and ch.device in CODE_DEVICES]
    return paths


def parse_allowed_writes(value: Optional[str], account: str) -> List[str]:
    """``X-Zerovm-Allow-Write`` → path prefixes (``/account/...``).

    The value is a comma-separated list of ``swift://`` prefixes, compared
    as strings (``swift://AUTH_me/out/`` covers ``out/a`` but not ``out2``);
    ``~`` stands for the request's account.
    """
    prefixes = []
    for item in (value or '').split(','):
        item = item.strip()
        if not item:
            continue
        rest = item[len('swift://'):] if item.startswith('swift://') else ''
        acct, sep, tail = rest.partition('/')
        if acct in ('~', '.'):
            acct = account
        if not acct or '*' in item:
            raise JobError('%s must list swift://account/... prefixes, not '
                           '%r' % (ALLOW_WRITE_HEADER, item))
        prefixes.append('/' + acct + sep + tail)
    return prefixes


def is_allowed_write(path: SwiftPath, prefixes: List[str]) -> bool:
    return any(path.path_info.startswith(prefix) for prefix in prefixes)


def foreign_write_refusal(path: SwiftPath, origin: str) -> JobError:
    return JobError(
        'This job comes from account %s, which you do not own, and wants to '
        'write %s: a job from another account may write only its response, '
        'into containers whose setuid lends it writing, and under prefixes '
        'you list in %s' % (origin, path.url, ALLOW_WRITE_HEADER), 403)


#: environ keys only an auth middleware sets once it established who the
#: caller is: tempauth's and keystoneauth's ``REMOTE_USER`` (tempurl's too),
#: and keystoneauth's ``keystone.identity``.  Request headers (``HTTP_*``,
#: such as ``X-Identity-Status``) are not among them: tempauth passes a
#: client's own headers on unchanged.
IDENTITY_KEYS = ('REMOTE_USER', 'keystone.identity')


def is_anonymous(environ: dict) -> bool:
    """No identity was established for the request (no valid token)."""
    return not any(environ.get(key) for key in IDENTITY_KEYS)


def caller_account_candidates(environ: dict) -> List[str]:
    """Accounts the caller may own, as the auth middleware told us.

    tempauth lists an account admin's storage account among the groups in
    ``REMOTE_USER``; other auth systems give nothing here (keystoneauth's
    ``REMOTE_USER`` is a (project id, name) pair, not a list of groups).
    """
    remote_user = environ.get('REMOTE_USER')
    if not isinstance(remote_user, str):
        return []
    groups = remote_user.split(',')
    return [g for g in groups[1:] if g and ':' not in g
            and not g.startswith('.')]
