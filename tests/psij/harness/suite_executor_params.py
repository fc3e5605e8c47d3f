"""`executor_test_params.py` for PSI/J's suite: one `--executors` item,
`executor[:launcher[:url]]`. The url is everything after the second ':', so it may
contain colons (jobgate+http://host:port)."""

from __future__ import annotations


class ExecutorTestParams:
    def __init__(self, spec: str) -> None:
        executor, _, rest = spec.partition(":")
        launcher, _, url = rest.partition(":")
        self.executor = executor
        self.launcher: str | None = launcher or None
        self.url: str | None = url or None
        # Read by newer versions of the suite's tools; nothing sets them here.
        self.custom_attributes: dict[str, object] | None = None
        self.account: str | None = None
        self.queue_name: str | None = None
        self.multi_node_queue_name: str | None = None

    def __str__(self) -> str:
        text = self.executor
        if self.launcher is not None or self.url is not None:
            text += f":{self.launcher or ''}"
        if self.url is not None:
            text += f":{self.url}"
        return text

    def __repr__(self) -> str:
        return str(self)
