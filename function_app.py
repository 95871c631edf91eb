"""pgha's composition root: the Durable Functions app and the blueprints it is made of."""

import azure.durable_functions as df
import azure.functions as func

from activities import azure, backups, cluster, data, drills, endpoints, monitoring, operations, restore, secrets
from orchestrations import deploy_cluster, failover_drill, restore_cluster, teardown_cluster, verify_backups
from triggers import backups as backup_routes
from triggers import clusters, schedules
from triggers import drills as drill_routes
from triggers import operations as operation_routes

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    deploy_cluster.bp, teardown_cluster.bp, verify_backups.bp, restore_cluster.bp, failover_drill.bp,
    cluster.bp, secrets.bp, azure.bp, monitoring.bp, data.bp, backups.bp, restore.bp, drills.bp, endpoints.bp,
    operations.bp,
    clusters.bp, backup_routes.bp, drill_routes.bp, operation_routes.bp, schedules.bp,
):
    app.register_functions(blueprint)
