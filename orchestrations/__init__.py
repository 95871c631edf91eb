"""Orchestrations: one module per runbook, read top to bottom like the runbook itself."""
