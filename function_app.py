"""pgha's composition root: the Durable Functions app and the blueprints it is made of."""

import azure.durable_functions as df
import azure.functions as func

import activities.alerts
import activities.azure
import activities.backups
import activities.cluster
import activities.credentials
import activities.data
import activities.drills
import activities.endpoints
import activities.monitoring
import activities.operations
import activities.restore
import activities.secrets
import activities.updates
import orchestrations.compensate_run
import orchestrations.deploy_cluster
import orchestrations.failover_drill
import orchestrations.respond_to_alert
import orchestrations.restore_cluster
import orchestrations.rotate_credentials
import orchestrations.switchover_cluster
import orchestrations.teardown_cluster
import orchestrations.update_cluster
import orchestrations.verify_backups
import triggers.alerts
import triggers.backups
import triggers.clusters
import triggers.credentials
import triggers.dashboard
import triggers.doctor
import triggers.drills
import triggers.health
import triggers.openapi
import triggers.operations
import triggers.schedules
import triggers.subscriptions
import triggers.switchover
import triggers.updates

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

# Runs the devhost ends as "interrupted" after a restart instead of resuming: a drill or a switchover holds
# its write probe and changes the primary, an update restarts instances beside its probe, so replaying their
# steps blind would be wrong; they compensate instead.
# Every other runbook resumes (its activities are idempotent).
INTERRUPT_ON_RESTART = frozenset({"failover_drill", "switchover_cluster", "update_cluster"})

RUNBOOKS = (
    orchestrations.deploy_cluster, orchestrations.teardown_cluster, orchestrations.verify_backups,
    orchestrations.restore_cluster, orchestrations.failover_drill, orchestrations.switchover_cluster,
    orchestrations.update_cluster, orchestrations.rotate_credentials, orchestrations.respond_to_alert,
    orchestrations.compensate_run,
)
STEPS = (
    activities.cluster, activities.secrets, activities.azure, activities.monitoring, activities.data,
    activities.backups, activities.restore, activities.drills, activities.alerts, activities.endpoints,
    activities.operations, activities.updates, activities.credentials,
)
STARTERS = (
    triggers.clusters, triggers.updates, triggers.credentials, triggers.backups, triggers.drills, triggers.switchover,
    triggers.alerts, triggers.operations, triggers.schedules, triggers.subscriptions, triggers.openapi,
    triggers.health, triggers.doctor, triggers.dashboard,
)

for module in (*RUNBOOKS, *STEPS, *STARTERS):
    app.register_functions(module.bp)
