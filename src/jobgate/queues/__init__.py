"""The drop-box door: job files in a folder or an object-store prefix become jobs."""

from jobgate.queues.watcher import QueueWatcher

__all__ = ["QueueWatcher"]
