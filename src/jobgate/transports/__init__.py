"""Transports: how a scheduler's commands and files reach its host (here, or over SSH)."""
