"""The devhost: runs function_app.py without Azure, on durabletask's engine, for `pgha` and the tests."""
