"""pgha's settings: app settings in Azure, environment variables locally; read in activities and
triggers only (orchestrators stay deterministic and get what they need as input)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from shared.runs import DEFAULTS as OPTIONS
from shared.runs import RunOptions

SETTINGS_DOC: dict[str, str] = {
    "PGHA_PLATFORM": "where PostgreSQL runs: `local` (Patroni on this machine) or `aks` (CNPG on AKS)",
    "PGHA_HOME": "local platform: state directory (clusters, secrets, logs); must be reachable by the "
    "service user",
    "PGHA_SERVICE_USER": "local platform: the unprivileged user that runs PostgreSQL and Patroni when pgha "
    "runs as root",
    "PGHA_DEFAULT_NAMESPACE": "namespace used when a request names none",
    "PGHA_STORAGE_CONNECTION": "storage for reports and per-cluster locks (default: AzureWebJobsStorage)",
    "PGHA_RETRY_AFTER_SECONDS": "Retry-After the operation routes answer while a run is going",
    "PGHA_READY_TIMEOUT_SECONDS": "how long a deploy waits for the cluster to be ready",
    "PGHA_POLL_SECONDS": "interval of the orchestrations' polling loops (seconds; default 0.25 on local, 5 on aks)",
    "PGHA_ACTIVITY_ATTEMPTS": "attempts (total calls) of a failing activity before its step fails",
    "PGHA_ACTIVITY_RETRY_SECONDS": "first retry interval of a failing activity",
    "PGHA_MAX_RECOVERY_POINT_AGE_SECONDS": "backup verification fails when the newest archived WAL is older",
    "PGHA_BACKUP_TIMEOUT_SECONDS": "how long a backup may take before its verification fails",
    "PGHA_BACKUP_PATIENCE_SECONDS": "how long a backup may stay held back (WAL archiving failing, the object store "
    "not answering) before its run fails and the Backup is released",
    "PGHA_RESTORE_TIMEOUT_SECONDS": "how long a restore may take to be ready before it fails",
    "PGHA_DRILL_TIMEOUT_SECONDS": "how long each wait of a failover drill (a new primary, the old one back) may take "
    "before the drill fails and puts the original primary back",
    "PGHA_DRILL_MAX_LAG_BYTES": "a failover drill is refused while an in-sync standby lags more than this",
    "PGHA_LOG_LEVEL": "devhost: `debug`, `info`, `warning` or `error`; the Azure SDK's HTTP logging shows only at "
    "`debug`",
    "PGHA_DRILLS_ENABLED": "`true` lets the periodic timer run the failover drills clusters schedule",
    "PGHA_ALERT_POLICY": "per-playbook policy of the alert response, `auto` or `approval`, as "
    "`primaryUnavailable=approval,walArchivingFailing=auto,backupStale=auto` (unnamed playbooks: auto)",
    "PGHA_ALERT_APPROVAL_TIMEOUT_SECONDS": "how long an alert response waits for an approval; no approval, no action",
    "PGHA_ALERT_GRACE_SECONDS": "primary unavailable: how long the HA manager gets to promote before pgha looks at it",
    "PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS": "how long an alert response waits for the cluster to recover before it "
    "escalates",
    "PGHA_ALERT_CLAIM_RETENTION_HOURS": "how long an alert's claim (blob container `alerts/`) is kept after the alert "
    "resolved: a late copy of its firing within it is answered as the same run; the claim of an alert that never "
    "resolves is kept",
    "PGHA_FUNCTION_KEY": "devhost: the function key every route but /api/health wants (x-functions-key header or "
    "?code=); unset, one is made in PGHA_HOME/devhost/function-key and `pgha serve` prints it",
    "PGHA_TASK_HUB": "devhost: the task hub whose runs it keeps, in PGHA_HOME/devhost/hubs/<name>.sqlite, and "
    "resumes after a restart (on Azure, host.json's hubName); one devhost at a time per hub",
    "PGHA_CANCEL_TIMEOUT_SECONDS": "how long a cancelled run may take to stop by itself before the periodic timer "
    "terminates it and compensates",
    "PGHA_CALLBACK_HOSTS": "hosts a request's callbackUrl may name, comma-separated, `*` wildcards (default: "
    "`*.logic.azure.com`, and loopback on the local platform); anything else is a 400, so pgha never posts "
    "reports wherever a caller points it",
    "PGHA_MONITORING_PACE": "local platform: how fast the local Prometheus and Alertmanager see and say, "
    "`standard` (30 s scrapes, CNPG's `for:` durations) or `quick` (1 s scrapes and evaluations, `for:` at most 5 s: "
    "tests and the demo)",
    "PGHA_ROUTE_ALERTS": "devhost: `true` routes the local Alertmanager's alerts to this devhost's /api/alerts "
    "(off by default, so that a drill never starts an alert response)",
    "PGHA_ALERT_CALLBACK_URL": "where alert responses POST their report when they end (e.g. a Logic App's HTTP "
    "trigger); a secret, never written to history or reports",
}

DEFAULT_CALLBACK_HOSTS = {False: ("*.logic.azure.com",), True: ("*.logic.azure.com", "localhost", "127.0.0.1")}
ACTING_PLAYBOOKS = ("primaryUnavailable", "walArchivingFailing", "backupStale")


# the `aks` adapter's surroundings (read by shared.platforms.aks.config)
SETTINGS_DOC.update({
    "PGHA_AKS_SUBSCRIPTION_ID": "aks: the subscription of the AKS cluster and the workload identity",
    "PGHA_AKS_RESOURCE_GROUP": "aks: the AKS cluster's resource group",
    "PGHA_AKS_CLUSTER": "aks: the AKS cluster's name (its user kubeconfig is fetched with an Azure AD token)",
    "PGHA_KUBECONFIG": "aks: a kubeconfig file to use instead of fetching one from AKS; `in-cluster` for the "
    "pod's service account",
    "PGHA_AKS_NODE_RESOURCE_GROUP": "aks: the node resource group, where the public IP of the rw/ro "
    "LoadBalancers lives",
    "PGHA_AKS_IDENTITY_NAME": "aks: the user-assigned managed identity the clusters' service accounts federate with",
    "PGHA_AKS_IDENTITY_RESOURCE_GROUP": "aks: that identity's resource group (default: PGHA_AKS_RESOURCE_GROUP)",
    "PGHA_AKS_IDENTITY_CLIENT_ID": "aks: that identity's client id (azure.workload.identity/client-id)",
    "PGHA_CNPG_NAMESPACE": "aks: the CNPG operator's namespace",
    "PGHA_CNPG_DEPLOYMENT": "aks: the CNPG operator's deployment",
    "PGHA_SQL_ACCESS": "aks: how checks and probes reach PostgreSQL: `serviceDns` (in-cluster "
    "<cluster>-rw.<namespace>.svc) or `loadBalancer` (the rw/ro LoadBalancer IPs)",
    "PGHA_PROMETHEUS_ENDPOINT": "aks: the Azure Monitor workspace's Prometheus query endpoint",
    "PGHA_LOG_ANALYTICS_WORKSPACE_ID": "aks: the Log Analytics workspace id for container logs",
    "PGHA_LOG_ANALYTICS_ENDPOINT": "aks: Log Analytics' query endpoint (sovereign clouds)",
    "PGHA_ARM_ENDPOINT": "aks: Azure Resource Manager's endpoint (sovereign clouds)",
    "PGHA_CA_BUNDLE": "aks: a CA bundle the Azure clients verify TLS with (a proxy's, or a test's)",
    "PGHA_OUTBOUND_ADDRESSES": "aks: pgha's own outbound IPs, comma-separated (the Function App's), which the "
    "doctor checks against endpoints.sourceRanges when PGHA_SQL_ACCESS is loadBalancer",
    "PGHA_MONITORING_APPLY": "aks: `true` makes each deploy apply the alert rules every cluster shares (the Azure "
    "Monitor Prometheus rule group, and a PrometheusRule where kube-prometheus-stack is)",
    "PGHA_MONITOR_WORKSPACE_ID": "aks: the Azure Monitor workspace's resource id, which the rule groups are "
    "scoped to (beside the AKS cluster)",
    "PGHA_ACTION_GROUP_ID": "aks: the action group every rule calls (infra/azuredeploy.json makes it, its "
    "webhook carrying pgha's key)",
    "PGHA_ALERTS_URL": "aks: pgha's own /api/alerts URL, without its key (`pgha plan monitoring` renders the "
    "action group and the AlertmanagerConfig with it)",
    "PGHA_CRASHLOOP_RESTARTS": "aks: an instance container in CrashLoopBackOff after this many restarts ends a "
    "run's wait for the cluster as failed, quoting its last exit (fewer restarts are routine)",
})


def default_home() -> Path:
    """/var/lib/pgha for root (the service user must reach it); the user's data directory otherwise."""
    if os.geteuid() == 0:
        return Path("/var/lib/pgha")
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "pgha"


Number = TypeVar("Number", int, float)


def _number(name: str, default: Number, kind: type[Number], low: Number, high: Number) -> Number:
    """A numeric setting within bounds; a bad value is refused with its name, never silently defaulted."""
    raw = os.environ.get(name, "")
    try:
        value = kind(raw) if raw else default
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ValueError(f"setting {name} must be {noun}, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"setting {name} must be between {low} and {high}, got {value}")
    return value


def _int(name: str, default: int) -> int:
    return _number(name, default, int, 1, 86400)


def _policy(raw: str) -> tuple[tuple[str, str], ...]:
    """`playbook=auto|approval,...`; a typo is refused with the setting's name, never read as `auto`."""
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        playbook, _, policy = (text.strip() for text in item.partition("="))
        if playbook not in ACTING_PLAYBOOKS or policy not in ("auto", "approval"):
            raise ValueError(
                f"setting PGHA_ALERT_POLICY: {item!r} is not <playbook>=auto|approval with a playbook among "
                f"{', '.join(ACTING_PLAYBOOKS)}"
            )
        pairs.append((playbook, policy))
    return tuple(pairs)


@dataclass(frozen=True)
class Settings:
    platform: str = "local"
    home: Path = Path("/var/lib/pgha")
    task_hub: str = "pgha"
    service_user: str = "postgres"
    default_namespace: str = "default"
    storage_connection: str = ""
    retry_after_seconds: int = 2
    ready_timeout_seconds: int = OPTIONS.ready_timeout_seconds
    poll_seconds: float = 1.0
    activity_attempts: int = OPTIONS.activity_attempts
    activity_retry_seconds: int = OPTIONS.activity_retry_seconds
    max_recovery_point_age_seconds: int = 900
    backup_timeout_seconds: int = OPTIONS.backup_timeout_seconds
    backup_patience_seconds: int = OPTIONS.backup_patience_seconds
    restore_timeout_seconds: int = OPTIONS.restore_timeout_seconds
    drill_timeout_seconds: int = OPTIONS.drill_timeout_seconds
    drill_max_lag_bytes: int = 16 * 1024 * 1024
    drills_enabled: bool = False
    route_alerts: bool = False
    alert_policy: tuple[tuple[str, str], ...] = ()
    alert_approval_timeout_seconds: int = OPTIONS.approval_timeout_seconds
    alert_grace_seconds: int = OPTIONS.alert_grace_seconds
    alert_recovery_timeout_seconds: int = OPTIONS.alert_recovery_timeout_seconds
    alert_callback_url: str = ""
    alert_claim_retention_hours: int = 168
    callback_hosts: tuple[str, ...] = ("*.logic.azure.com",)
    cancel_timeout_seconds: int = 300
    crashloop_restarts: int = 3

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            platform=env.get("PGHA_PLATFORM", "local"),
            home=Path(env.get("PGHA_HOME") or default_home()),
            task_hub=env.get("PGHA_TASK_HUB") or "pgha",
            service_user=env.get("PGHA_SERVICE_USER", "postgres"),
            default_namespace=env.get("PGHA_DEFAULT_NAMESPACE", "default"),
            storage_connection=env.get("PGHA_STORAGE_CONNECTION") or env.get("AzureWebJobsStorage", ""),
            retry_after_seconds=_int("PGHA_RETRY_AFTER_SECONDS", 2),
            ready_timeout_seconds=_int("PGHA_READY_TIMEOUT_SECONDS", OPTIONS.ready_timeout_seconds),
            poll_seconds=_number(
                "PGHA_POLL_SECONDS", 0.25 if env.get("PGHA_PLATFORM", "local") == "local" else 5.0, float, 0.1, 3600.0
            ),
            activity_attempts=_int("PGHA_ACTIVITY_ATTEMPTS", OPTIONS.activity_attempts),
            activity_retry_seconds=_int("PGHA_ACTIVITY_RETRY_SECONDS", OPTIONS.activity_retry_seconds),
            max_recovery_point_age_seconds=_int("PGHA_MAX_RECOVERY_POINT_AGE_SECONDS", 900),
            backup_timeout_seconds=_int("PGHA_BACKUP_TIMEOUT_SECONDS", OPTIONS.backup_timeout_seconds),
            backup_patience_seconds=_int("PGHA_BACKUP_PATIENCE_SECONDS", OPTIONS.backup_patience_seconds),
            restore_timeout_seconds=_int("PGHA_RESTORE_TIMEOUT_SECONDS", OPTIONS.restore_timeout_seconds),
            drill_timeout_seconds=_int("PGHA_DRILL_TIMEOUT_SECONDS", OPTIONS.drill_timeout_seconds),
            drill_max_lag_bytes=_number("PGHA_DRILL_MAX_LAG_BYTES", 16 * 1024 * 1024, int, 0, 1 << 40),
            drills_enabled=env.get("PGHA_DRILLS_ENABLED", "false").lower() in ("1", "true", "yes"),
            route_alerts=env.get("PGHA_ROUTE_ALERTS", "false").lower() in ("1", "true", "yes"),
            alert_policy=_policy(env.get("PGHA_ALERT_POLICY", "")),
            alert_approval_timeout_seconds=_int("PGHA_ALERT_APPROVAL_TIMEOUT_SECONDS",
                                                OPTIONS.approval_timeout_seconds),
            alert_grace_seconds=_int("PGHA_ALERT_GRACE_SECONDS", OPTIONS.alert_grace_seconds),
            alert_recovery_timeout_seconds=_int("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS",
                                                OPTIONS.alert_recovery_timeout_seconds),
            alert_callback_url=env.get("PGHA_ALERT_CALLBACK_URL", ""),
            alert_claim_retention_hours=_number("PGHA_ALERT_CLAIM_RETENTION_HOURS", 168, int, 24, 24 * 366),
            cancel_timeout_seconds=_int("PGHA_CANCEL_TIMEOUT_SECONDS", 300),
            crashloop_restarts=_int("PGHA_CRASHLOOP_RESTARTS", 3),
            callback_hosts=tuple(
                h.strip().lower() for h in env.get("PGHA_CALLBACK_HOSTS", "").split(",") if h.strip()
            ) or DEFAULT_CALLBACK_HOSTS[env.get("PGHA_PLATFORM", "local") == "local"],
        )

    def policy_for(self, playbook: str) -> str:
        """`approval` or `auto`: whether an alert response waits for a person before it acts."""
        return dict(self.alert_policy).get(playbook, "auto")

    def run_options(self) -> RunOptions:
        """The knobs an orchestration needs, passed in its input so it never reads the environment."""
        return RunOptions(
            ready_timeout_seconds=self.ready_timeout_seconds, poll_seconds=self.poll_seconds,
            activity_attempts=self.activity_attempts, activity_retry_seconds=self.activity_retry_seconds,
            backup_timeout_seconds=self.backup_timeout_seconds, backup_patience_seconds=self.backup_patience_seconds,
            restore_timeout_seconds=self.restore_timeout_seconds, drill_timeout_seconds=self.drill_timeout_seconds,
            approval_timeout_seconds=self.alert_approval_timeout_seconds, alert_grace_seconds=self.alert_grace_seconds,
            alert_recovery_timeout_seconds=self.alert_recovery_timeout_seconds,
        )
