"""The devhost: runs function_app.py without Azure, on durabletask's engine, for `pgha` and the tests."""

import os

# gRPC's core logs every normal channel shutdown ("Got goaway") at INFO on stderr; keep its errors only.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
