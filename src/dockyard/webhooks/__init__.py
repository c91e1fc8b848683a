"""Push webhooks: triggers, payloads, signed deliveries behind an SSRF guard."""
