"""Mailgun: webhooks and event mapping (events.py), the Logs API (mailgun_logs.py)."""
