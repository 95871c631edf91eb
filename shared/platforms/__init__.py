"""Adapters of the Platform port; `platform_for` picks one from the settings. The one way in from outside
`shared/platforms/`: each adapter (and its SDKs) is imported here, when it is first asked for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any

from shared.platform import Platform
from shared.settings import Settings
from shared.spec import ClusterSpec

if TYPE_CHECKING:
    from shared.platforms.aks.plan import PlanWorld
    from shared.platforms.local.platform import LocalPlatform

_installed: list[Platform] = []
# a plan's recorders, seen only by the thread (or task) walking the plan: never by a real run beside it
_planning: ContextVar[Platform | None] = ContextVar("planning", default=None)


@cache
def _platform(kind: str, home: str, service_user: str) -> Platform:
    if kind == "local":  # each adapter's own libraries load only where it runs
        from shared.platforms.local.platform import LocalPlatform

        return LocalPlatform(Settings.from_env())
    if kind == "aks":
        from shared.platforms.aks.platform import AksPlatform

        return AksPlatform.from_env()
    raise ValueError(f"PGHA_PLATFORM={kind!r}: use `local` (Patroni on this machine) or `aks` (CNPG on AKS)")


def plan_world(existing: ClusterSpec | None = None) -> PlanWorld:
    """The AKS adapter on recorders that touch nothing (`pgha plan`, `?dryRun=true`); `existing` is the
    cluster a runbook other than deploy acts on."""
    from shared.platforms.aks.config import AksSettings  # the AKS SDKs load only when a plan is asked for
    from shared.platforms.aks.plan import PlanWorld

    return PlanWorld(AksSettings.from_env(), existing)


def monitoring_plan(namespaces: list[str]) -> list[dict[str, Any]]:
    """`pgha plan monitoring`: the alert rules, the action group and the routes to pgha on AKS."""
    from shared.platforms.aks.config import AksSettings
    from shared.platforms.aks.plan import monitoring_plan as aks_monitoring_plan

    return aks_monitoring_plan(AksSettings.from_env(), namespaces)


def local_platform(settings: Settings | None = None) -> LocalPlatform:
    """The local platform itself, for what only it has: its stack (`pgha up`, `down`, `status`; the devhost's
    Azurite) and its members' processes."""
    from shared.platforms.local.platform import LocalPlatform

    return LocalPlatform(settings or Settings.from_env())


def reap_exited() -> None:
    """Collect the local members that ended (a drill's kill, a crash), so none stays <defunct>."""
    from shared.platforms.local import processes

    processes.reap_exited()


def platform_for(settings: Settings | None = None) -> Platform:
    if (planned := _planning.get()) is not None:
        return planned
    if _installed:
        return _installed[-1]
    settings = settings or Settings.from_env()
    return _platform(settings.platform, str(settings.home), settings.service_user)


@contextmanager
def planning(platform: Platform) -> Iterator[Platform]:
    """Serve `platform` to what runs in this context only (a plan's walk), not to the process."""
    token = _planning.set(platform)
    try:
        yield platform
    finally:
        _planning.reset(token)


@contextmanager
def installed(platform: Platform) -> Iterator[Platform]:
    """Serve `platform` to every activity and trigger of this process (the scripted platform in tests)."""
    _installed.append(platform)
    try:
        yield platform
    finally:
        _installed.remove(platform)
