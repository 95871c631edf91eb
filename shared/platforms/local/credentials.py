"""The app owner's password rotated on the local platform: the secret file's keys moved step by step
(shared/credentials.py), the role's password set on the primary as a SCRAM verifier (the password never
reaches the server), and a login through the rw endpoint tried with a given key."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg

from shared import credentials
from shared.outcome import Outcome, done, unchanged
from shared.platforms.local import processes
from shared.platforms.local.members import Members
from shared.platforms.local.sql import Sessions
from shared.platforms.local.state import Records
from shared.platforms.local.status import Status
from shared.secrets import scram_verifier
from shared.spec import ClusterSpec


class Credentials:
    def __init__(self, records: Records, members: Members, status: Status, sessions: Sessions) -> None:
        self.records = records
        self.members = members
        self.status = status
        self.sessions = sessions

    def move(self, spec: ClusterSpec, step: Callable[[credentials.Keys], credentials.Keys | None],
             said: str) -> Outcome:
        name = spec.bootstrap.secret_name
        keys = self.records.read_secret(spec.namespace, name)
        changed = step(keys)
        if changed is None:
            return unchanged(f"secret {name}: already {said}", secretName=name)
        processes.write_private(self.records.secret_file(spec.namespace, name), json.dumps(changed))
        return done(f"secret {name}: {said}", secretName=name)

    def set_owner_password(self, spec: ClusterSpec, which: credentials.Which) -> Outcome:
        """ALTER ROLE with the verifier of the secret's `which` password; sessions already open go on."""
        keys = self.records.read_secret(spec.namespace, spec.bootstrap.secret_name)
        if which not in keys:
            raise RuntimeError(f"secret {spec.bootstrap.secret_name} holds no {which} password")
        primary = self.status.cluster_status(spec.namespace, spec.name).current_primary
        if primary is None:
            raise RuntimeError("no primary to set the owner's password on")
        with psycopg.connect(self.members.superuser_dsn(spec, primary), autocommit=True) as conn:
            conn.execute(f'ALTER ROLE "{spec.bootstrap.owner}" PASSWORD \'{scram_verifier(keys[which])}\'')
        return done(f"{spec.bootstrap.owner}'s password on {spec.name} set from the secret's {which} one")

    def app_login(self, spec: ClusterSpec, which: credentials.Which) -> str | None:
        """None when the owner logs in through rw with the secret's `which` password; else the refusal."""
        keys = self.records.read_secret(spec.namespace, spec.bootstrap.secret_name)
        return credentials.login(keys, which, spec.bootstrap.secret_name,
                                 lambda password: self.sessions.session(spec, "rw", password))
