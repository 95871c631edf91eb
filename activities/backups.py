"""The object store side of a cluster: pre-flight, WAL archiving, schedules, deletion of backups."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import platform, spec_of

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def preflight_backup_destination(payload: dict[str, Any]) -> dict[str, Any]:
    """Refuse to archive under a server name that already holds WAL (two clusters would mix their WAL)."""
    return platform().preflight_backup_destination(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def check_wal_archiving(payload: dict[str, Any]) -> dict[str, Any]:
    """Switch WAL on the primary and find that very segment in the object store."""
    return platform().switch_wal_and_find_segment(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def ensure_scheduled_backup(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().ensure_scheduled_backup(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def remove_scheduled_backups(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().remove_scheduled_backups(payload["namespace"], payload["name"]).to_dict()


@bp.activity_trigger(input_name="payload")
def delete_backups(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().delete_backups(spec_of(payload)).to_dict()
