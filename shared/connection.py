"""How a client reaches a cluster: its rw and ro endpoints and the Secret that holds the credentials, never
the password itself."""

from __future__ import annotations

from pydantic import Field

from shared.model import Model


class Endpoint(Model):
    address: str  # host:port; several, comma-separated, where the client finds the member by its role
    libpq: str  # a connection string without the password (it is the secret's `password`)


class Connection(Model):
    database: str
    user: str
    secret_name: str  # in the cluster's namespace: `username` and `password`
    rw: Endpoint | None = None  # reachable from outside the cluster (None: not exposed, or no address yet)
    ro: Endpoint | None = None
    in_cluster: dict[str, str] = Field(default_factory=dict)  # AKS: role -> the Service's in-cluster address
    note: str = ""
