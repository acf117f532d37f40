"""Accounts: sign-up, log-in, passwords and profile settings."""
