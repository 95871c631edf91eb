"""The devhost: the local stack, function_app.py on durabletask, its HTTP routes and its timers."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import httpx

from devhost.engine import DurableLimits, Engine, collect
from devhost.keys import function_key
from devhost.server import DevServer
from devhost.timers import Timers
from orchestrations.runbook import HOST_RESTARTED
from shared.platforms import local_platform, reap_exited
from shared.settings import Settings

log = logging.getLogger("pgha.devhost")
REAP_SECONDS = 1.0


class DevHost:
    def __init__(self, port: int = 7071, app_module: str = "function_app", timers: bool = True) -> None:
        self.port = port
        self.app_module = app_module
        self.with_timers = timers
        self.engine: Engine | None = None
        self.server: DevServer | None = None
        self.timers: Timers | None = None
        self.key = ""
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None

    def start(self) -> DevHost:
        settings = Settings.from_env()
        if settings.platform == "local":
            state = local_platform(settings).stack.up()
            # The Functions host's own storage is Azurite here, as `UseDevelopmentStorage=true` would be.
            os.environ.setdefault("AzureWebJobsStorage", state.connection_string)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}", settings.task_hub):
            raise ValueError(f"PGHA_TASK_HUB {settings.task_hub!r}: letters, digits and '-', at most 63")
        module = importlib.import_module(self.app_module)
        functions = collect(module.app)
        # the task hub's local stand-in: runs survive a restart of the devhost (devhost/backend.py)
        self.engine = Engine(functions, store=settings.home / "devhost" / "hubs" / f"{settings.task_hub}.sqlite",
                             interrupt_on_restart=getattr(module, "INTERRUPT_ON_RESTART", frozenset()),
                             restart_event=HOST_RESTARTED,
                             limits=DurableLimits.from_host_json(Path(module.__file__ or ".").parent / "host.json"))
        self.engine.start()
        resumed = getattr(self.engine.backend, "resumed", [])
        if resumed:
            log.info("task hub %s: %d run(s) picked up after a restart: %s", settings.task_hub, len(resumed),
                     ", ".join(resumed[:20]))
        self.key = function_key(settings.home)
        self.server = DevServer(self.engine, functions.http, self.key, port=self.port)
        self.server.start()
        if self.with_timers:
            self.timers = Timers(functions.timers, self.server.starter_binding, self.server.loop)
            self.timers.start()
        if settings.platform == "local" and settings.route_alerts:
            self.route_alerts()
        self._reaper = threading.Thread(target=self._reap, name="reaper", daemon=True)
        self._reaper.start()
        # what start-up made (the app, its libraries, the engine) lives as long as the host: out of the
        # collector's sight, so a full collection no longer walks it and stalls an answer for tens of ms
        gc.collect()
        gc.freeze()
        return self

    def _reap(self) -> None:
        """Members this host started and that ended (a drill's kill, a crash, a stop) are collected within
        a second or two, never left <defunct> until the host exits."""
        while not self._stopping.wait(REAP_SECONDS):
            reap_exited()

    def route_alerts(self, namespaces: list[str] | None = None, on: bool = True) -> None:
        """The local Alertmanager sends its alerts (of these namespaces, when given) to this devhost too, or,
        with `on=False`, no more to it. The function key rides in the URL's `?code=`: Alertmanager 0.25 sends
        no header of our choosing."""
        platform = local_platform(Settings.from_env())
        if on:
            platform.route_alerts(self.alerts_url, namespaces or [])
        else:
            platform.unroute_alerts(self.alerts_url)

    @property
    def alerts_url(self) -> str:
        return f"{self.url}/api/alerts?code={self.key}"

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def client(self, **options: Any) -> httpx.Client:
        """An HTTP client for this devhost's API, carrying its function key as a caller would."""
        return keyed_client(self.url, self.key, **options)

    def stop(self) -> None:
        self._stopping.set()
        if Settings.from_env().platform == "local" and self.server is not None:
            try:
                self.route_alerts(on=False)  # nobody answers at this address any more
            except Exception as err:  # the host stops all the same; the doctor names a route left behind
                log.warning("could not take this devhost's alert route back: %s", type(err).__name__)
        if self.timers:
            self.timers.stop()
        if self.server:
            self.server.stop()
        if self.engine:
            self.engine.stop()

    def __enter__(self) -> DevHost:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def keyed_client(url: str, key: str, **options: Any) -> httpx.Client:
    headers = {"x-functions-key": key, **options.pop("headers", {})}
    return httpx.Client(base_url=url, headers=headers, **{"timeout": 60, **options})
