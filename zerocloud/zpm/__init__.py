"""zpm, the ZeroCloud client: ``zapp.yaml`` projects, zapps, deployment,
execution and the zapp web page (:mod:`zerocloud.zpm.cli`)."""

from zerocloud.zpm.cli import main

__all__ = ['main']
