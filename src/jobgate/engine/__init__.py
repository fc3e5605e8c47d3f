"""The engine: the supervisor that moves jobs through their states."""
