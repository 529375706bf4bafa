"""Mail: rendering and sending (render, transport, mailgun, eml) and Mailgun's confirmations
(events: webhooks and their mapping; mailgun_logs: the Logs API for reconciliation)."""
