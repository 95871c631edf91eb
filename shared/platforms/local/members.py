"""A local cluster's members: each a Patroni process (which runs its PostgreSQL) with its configuration, on
two loopback ports; made, started, stopped and deleted here, as CNPG's operator does with pods."""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from shared import ports
from shared.outcome import Outcome, done, unchanged
from shared.platforms.local import patroni, processes, tls
from shared.platforms.local.archive import Archive
from shared.platforms.local.patroni import Member
from shared.platforms.local.stack import PG_BIN, TOOLS_BIN, Stack
from shared.platforms.local.state import Records, utcnow
from shared.secrets import scram_verifier
from shared.spec import ClusterSpec
from shared.status import serial_of


class Members:
    def __init__(self, records: Records, stack: Stack, archive: Archive, account: pwd.struct_passwd | None) -> None:
        self.records = records
        self.stack = stack
        self.archive = archive
        self.account = account

    def apply(self, spec: ClusterSpec) -> Outcome:
        stack = self.stack.require()
        self.archive.serve()
        base = self.records.cluster_dir(spec.namespace, spec.name)
        state = self.records.read(spec.namespace, spec.name)
        created = state is None
        if state is None:
            base.mkdir(parents=True, exist_ok=True)
            os.chmod(base, 0o755)
            state = {"spec": spec.dump(), "members": {}, "scope": f"{spec.namespace}--{spec.name}",
                     "createdAt": time.time()}
        previous = ClusterSpec.model_validate(state["spec"])
        changed = not created and previous.dump() != spec.dump()
        if not changed:
            state["spec"] = spec.dump()
        removed = self._scale(spec, state)
        gone = [m for m in self.records.members(spec.namespace, spec.name, state) if m.name in removed]
        self.stack.monitoring.unwatch(spec.namespace, spec.name, gone)
        for member in gone:
            self.stop([member])
            shutil.rmtree(member.dir, ignore_errors=True)
        for member_name in removed:
            del state["members"][member_name]
        self.records.save(spec.namespace, spec.name, state)

        post_bootstrap, recovery = None, None
        if spec.recovery is None:
            post_bootstrap = self._write_bootstrap(spec)
        else:
            recovery = patroni.recovery_bootstrap(spec, self.archive.write_restore_script(spec),
                                                  self.archive.restore_command(spec))
        passwords = self.records.passwords(spec.namespace, spec.name, create=True)
        archive = self.archive.archive_command(spec)
        _, cert, key = tls.ensure_certificates(base, spec.namespace, spec.name, self.account)
        started = []
        for member in self.records.members(spec.namespace, spec.name, state):
            processes.chown_to(member.dir, self.account)
            processes.chown_to(member.socket_dir, self.account)
            config = patroni.member_config(
                spec, state["scope"], member, stack.etcd_hosts, archive, passwords, post_bootstrap, PG_BIN, recovery,
                (cert, key),
            )
            processes.write_private(member.dir / "patroni.yml", yaml.safe_dump(config), self.account)
            if not member.patroni.running:
                self.start(member)
                started.append(member.name)
        self.watch(spec.namespace, spec.name, state)
        if changed:  # then the new spec recorded: a delivery whose PATCH failed finds the change still to make
            self._patch_dynamic_config(spec)
            state["spec"] = spec.dump()
            self.records.save(spec.namespace, spec.name, state)
        verb = "created" if created else "changed" if changed else "applied"
        detail = f"cluster {spec.namespace}/{spec.name} {verb}; started {', '.join(started) or 'nothing'}"
        if removed:
            detail += f"; removed {', '.join(removed)}"
        return (done if created or changed or started or removed else unchanged)(detail, started=started,
                                                                                  removed=removed)

    def watch(self, namespace: str, name: str, state: dict[str, Any] | None = None) -> None:
        """Prometheus scrapes every member: an exporter port for members recorded before there was one."""
        state = state or self.records.read(namespace, name)
        if state is None:
            return
        missing = [m for m, p in state["members"].items() if "exporterPort" not in p]
        if missing:
            used = {p for ports in state["members"].values() for p in ports.values()}
            for member, port in zip(missing, ports.free_ports(len(missing), avoid=used), strict=True):
                state["members"][member]["exporterPort"] = port
            self.records.save(namespace, name, state)
        members = self.records.members(namespace, name, state)
        self.stack.monitoring.watch(namespace, self.records.cluster_dir(namespace, name), members, self.account)

    def _scale(self, spec: ClusterSpec, state: dict[str, Any]) -> list[str]:
        """Members to match spec.instances, as CNPG numbers pods: a new one takes the next serial (never one
        used before: `latestGeneratedNode`), scale down removes the highest-serial standby, never the primary.
        Answers the members to remove (the caller stops them and drops them from `state`)."""
        serials = sorted(serial_of(m) for m in state["members"])
        latest = max([state.get("latestGeneratedNode", 0), *serials])
        used = {p for ports in state["members"].values() for p in ports.values()}
        while len(state["members"]) < spec.instances:
            latest += 1
            pg_port, rest_port, exporter_port = ports.free_ports(3, avoid=used)
            used |= {pg_port, rest_port, exporter_port}
            state["members"][f"{spec.name}-{latest}"] = {"pgPort": pg_port, "restPort": rest_port,
                                                         "exporterPort": exporter_port}
        state["latestGeneratedNode"] = latest
        surplus = len(state["members"]) - spec.instances
        if surplus <= 0:
            return []
        primary = self.primary_of(spec.namespace, spec.name, state)
        if primary is None:
            raise RuntimeError("no primary answers: which member may go is not known, so none is removed")
        standbys = sorted((m for m in state["members"] if m != primary), key=serial_of, reverse=True)
        return standbys[:surplus]

    def primary_of(self, namespace: str, name: str, state: dict[str, Any] | None = None) -> str | None:
        """The leader in Patroni's /cluster, as any member answers it."""
        for member in self.records.members(namespace, name, state):
            topology = patroni.get(member, "/cluster")
            if topology:
                return next((m["name"] for m in topology.get("members", []) if m.get("role") == "leader"), None)
        return None

    def _write_bootstrap(self, spec: ClusterSpec) -> Path:
        """CNPG's initdb bootstrap: the app owner and database, created from a SCRAM verifier, not the password."""
        base = self.records.cluster_dir(spec.namespace, spec.name)
        script, sql = base / "post_bootstrap.sh", base / "bootstrap.sql"
        if not sql.exists():
            secret = self.records.read_secret(spec.namespace, spec.bootstrap.secret_name)
            owner, database = spec.bootstrap.owner, spec.bootstrap.database
            processes.write_private(sql, (
                f"CREATE ROLE \"{owner}\" LOGIN PASSWORD '{scram_verifier(secret['password'])}';\n"
                f"CREATE DATABASE \"{database}\" OWNER \"{owner}\";\n"
            ), self.account)
            processes.write_private(
                script, f'#!/bin/sh\nexec {PG_BIN}/psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f {sql}\n',
                self.account, mode=0o700,
            )
        return script

    def _patch_dynamic_config(self, spec: ClusterSpec) -> None:
        """Patroni's PATCH /config merges: a parameter the spec no longer has is sent as null, or it would stay."""
        config = patroni.dynamic_config(spec, self.archive.archive_command(spec))
        for member in self.records.members(spec.namespace, spec.name):
            try:
                current = patroni.HTTP.get(f"{member.api}/config", timeout=5)
                if current.status_code != 200:
                    continue
                held = (current.json().get("postgresql") or {}).get("parameters") or {}
                wanted = config["postgresql"]["parameters"]
                wanted.update({name: None for name in held if name not in wanted})
                response = patroni.HTTP.patch(f"{member.api}/config", json=config, timeout=5)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                continue
        raise RuntimeError("no member answered the configuration change")

    def start(self, member: Member, delay: float = 0) -> int:
        """Start a member's Patroni; with `delay`, after it (the shell execs Patroni, keeping the PID)."""
        command = [f"{TOOLS_BIN}/patroni", str(member.dir / "patroni.yml")]
        with open(member.log, "a") as log:  # where failure_reason starts reading
            log.write(f"{utcnow()} {patroni.START_MARK}\n")
        if delay:
            command = ["/bin/sh", "-c", f"sleep {delay}; exec {command[0]} {command[1]}"]
        return processes.spawn(
            command, member.dir / "patroni.log", member.patroni,
            env=self.archive.env(), account=self.account, cwd=member.dir,
        )

    def stop(self, members: list[Member], graceful: bool = True) -> list[str]:
        """Stop members together (Patroni stops its PostgreSQL), then any postmaster a killed Patroni left.

        Not graceful is for clusters whose data and archive are deleted right after: Patroni killed,
        PostgreSQL's immediate shutdown (SIGQUIT) — nothing left to flush for anyone.
        """
        if graceful:
            stopped = processes.stop_all([m.patroni for m in members], timeout=40)
            # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave)
            processes.stop_all([m.postmaster for m in members], timeout=20, sig=signal.SIGINT)
        else:
            stopped = processes.stop_all([m.patroni for m in members], timeout=5, sig=signal.SIGKILL)
            processes.stop_all([m.postmaster for m in members], timeout=10, sig=signal.SIGQUIT)
        for member in members:  # what a killed Patroni left running in its session: initdb, a restore, a clone
            processes.stop_session(member.patroni, str(member.dir))
        return [m.name for m in members if m.patroni in stopped]

    def delete_cluster(self, namespace: str, name: str, graceful: bool = True) -> Outcome:
        state = self.records.read(namespace, name)
        base = self.records.cluster_dir(namespace, name)
        if state is None and not base.exists():
            return unchanged(f"cluster {namespace}/{name} does not exist")
        members = self.records.members(namespace, name, state)
        stopped = self.stop(members, graceful)
        self.stack.monitoring.forget(namespace, name, members)
        if state is not None:
            self.records.retain(namespace, name, state)
            self._forget_in_dcs(state["scope"])
        shutil.rmtree(base, ignore_errors=True)
        return done(f"cluster {namespace}/{name} deleted; stopped {', '.join(stopped) or 'nothing running'}")

    def _forget_in_dcs(self, scope: str) -> None:
        """Remove the cluster's keys from etcd, or a new cluster of that name would never bootstrap."""
        state = self.stack.state()
        if state is None or not self.stack.running().get("etcd"):
            raise RuntimeError("etcd is not running: the cluster's keys cannot be removed (run `pgha up`)")
        key = f"/pgha/{scope}/".encode()
        end = key[:-1] + bytes([key[-1] + 1])
        patroni.HTTP.post(
            f"http://{state.etcd_hosts}/v3/kv/deleterange",
            json={"key": base64.b64encode(key).decode(), "range_end": base64.b64encode(end).decode()},
            timeout=5,
        ).raise_for_status()

    def superuser_dsn(self, spec: ClusterSpec, member_name: str, database: str = "postgres") -> str:
        """One member as the superuser, over loopback (what `kubectl cnpg psql` reaches in its pod)."""
        state = self.records.read(spec.namespace, spec.name) or {"members": {}}
        port = state["members"][member_name]["pgPort"]
        password = self.records.passwords(spec.namespace, spec.name)["superuser"]
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1", port=port, user=patroni.SUPERUSER, password=password, dbname=database, connect_timeout=3
        )

    # ---- the stack -------------------------------------------------------------------------------
    def stop_all(self) -> list[str]:
        """`pgha down`: every member of every cluster, then the WAL service, monitoring, etcd and Azurite."""
        stopped = []
        for namespace, name in self.records.names():
            stopped += self.stop(self.records.members(namespace, name))
        return stopped + self.stack.down()

    def start_all(self) -> list[str]:
        """`pgha up`: the stack, then every member whose cluster exists but is not running."""
        self.stack.up()
        self.archive.serve()
        started = []
        for namespace, name in self.records.names():
            for member in self.records.members(namespace, name):
                if not member.patroni.running:
                    self.start(member)
                    started.append(member.name)
            self.watch(namespace, name)
        return started
