"""Triggers: HTTP API, alert webhook, timers. Each parses, validates, starts a runbook and answers."""
