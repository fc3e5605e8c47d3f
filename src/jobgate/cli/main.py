"""`jobgate`: submit, watch, cancel and collect jobs. Every flag has a JOBGATE_* variable
(JOBGATE_HOME, JOBGATE_DEST, ..., or JOBGATE_<COMMAND>_<FLAG>). Errors are one line."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from jobgate.cli.query import COMMANDS
from jobgate.cli.queue import queue
from jobgate.cli.results import results
from jobgate.cli.submit import resubmit, run, submit
from jobgate.cli.tokens import token, ui
from jobgate.errors import ConfigError, JobgateError, SpecError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobgateError as exc:
            _fail(str(exc), 2 if isinstance(exc, SpecError | ConfigError) else 1)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("JOBGATE_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (JOBGATE_DEBUG=1 shows more)", 70)


def _fail(message: str, code: int) -> None:
    click.echo(f"jobgate: error: {message}", err=True)
    sys.exit(code)


@click.group(
    cls=_Group,
    context_settings={"auto_envvar_prefix": "JOBGATE", "help_option_names": ["-h", "--help"]},
)
@click.option("--home", envvar="JOBGATE_HOME", help="Where jobgate keeps its store and runs.")
@click.option("--config", "config_path", envvar="JOBGATE_CONFIG", help="Path to jobgate.toml.")
@click.option("--database-url", envvar="JOBGATE_DATABASE_URL", help="SQLAlchemy URL of the store.")
@click.option("--server", envvar="JOBGATE_SERVER", help="URL of a jobgate server to use instead.")
@click.option("--token", envvar="JOBGATE_TOKEN", help="API token for --server.")
@click.pass_context
def cli(
    ctx: click.Context,
    home: str | None,
    config_path: str | None,
    database_url: str | None,
    server: str | None,
    token: str | None,
) -> None:
    """jobgate: one gateway for batch jobs."""
    ctx.obj = {"home": home, "config_path": config_path, "database_url": database_url}
    ctx.meta["server"] = (server, token)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the REST API.")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--no-api", is_flag=True, help="Only supervise jobs; no REST API.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, no_api: bool) -> None:
    """Run the gateway: supervise every destination and serve the REST API until stopped
    (Ctrl-C or SIGTERM stop it cleanly; running jobs keep running)."""
    from jobgate.cli.serving import serve_forever

    serve_forever(ctx.find_root().obj, host, port, api=not no_api)


for command in [submit, run, resubmit, *COMMANDS, results, queue, token, ui]:
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(prog_name="jobgate", standalone_mode=False)
    except click.UsageError as exc:  # one line, as every other error (no usage screen)
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
        _fail(f"{exc.format_message()}{hint}", 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("aborted", 1)
