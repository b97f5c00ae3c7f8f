"""Telegraf fixture (filled in by the Telegraf work)."""
