"""The GA4GH Task Execution Service door (TES 1.1): docs/tes.md."""

from jobgate.api.tes.routes import PREFIX, install

__all__ = ["PREFIX", "install"]
