"""pgha's composition root: the Durable Functions app and the blueprints it is made of."""

import azure.durable_functions as df
import azure.functions as func

from activities import azure, backups, cluster, data, endpoints, monitoring, operations, restore, secrets
from orchestrations import deploy_cluster, restore_cluster, teardown_cluster, verify_backups
from triggers import backups as backup_routes
from triggers import clusters, schedules
from triggers import operations as operation_routes

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    deploy_cluster.bp, teardown_cluster.bp, verify_backups.bp, restore_cluster.bp,
    cluster.bp, secrets.bp, azure.bp, monitoring.bp, data.bp, backups.bp, restore.bp, endpoints.bp, operations.bp,
    clusters.bp, backup_routes.bp, operation_routes.bp, schedules.bp,
):
    app.register_functions(blueprint)
