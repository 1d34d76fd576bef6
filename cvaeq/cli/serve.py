"""``cvaeq serve``: a thin command starting the web explorer (:mod:`cvaeq.serve`) under uvicorn."""

from __future__ import annotations

import signal

import click

from ..limits import MAX_SEED, MAX_THREADS
from .group import main

__all__ = ["serve"]


@main.command()
@click.option(
    "--model",
    "model",
    metavar="CKPT",
    default=None,
    help="A checkpoint from cvaeq train (default: the shipped checkpoint if installed).",
)
@click.option(
    "--story",
    default=None,
    metavar="NAME|PATH",
    help="Explore a story: with the model shipped for it (default, pendulum), else its true tables "
    "(factor questions only).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the default is this machine only (0.0.0.0 opens it to the network, with a warning).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests for this Host name (repeatable; '*': any). Only localhost, loopback "
    "addresses and the address listened on are answered otherwise (DNS rebinding).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Seed of the questions that name none: the same seed gives the same answer.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    default=1,
    show_default=True,
    help="CPU threads of torch per answer (1 answers fastest on a machine shared with other work).",
)
def serve(
    model: str | None, story: str | None, host: str, port: int, allow_hosts: tuple[str, ...], seed: int, threads: int
) -> None:
    """Start the web explorer: a page to ask causal questions with controls and pictures.

    Prints the address; Ctrl-C stops it (docs/serve.md).
    """
    import torch
    import uvicorn

    from ..serve.app import create_app
    from ..serve.connections import listen, server_config
    from ..serve.explorer import Explorer
    from ..serve.guard import is_loopback, is_wildcard

    torch.set_num_threads(threads)
    explorer = Explorer(model=model, story=story, seed=seed)
    sock = listen(host, port)  # an address in use is an OSError: one line, exit 2
    address, bound = sock.getsockname()[:2]
    server = uvicorn.Server(server_config(create_app(explorer, bound=address, allow_hosts=allow_hosts)))

    def stop(signum, frame) -> None:
        # Ctrl-C from the moment the address is printed until uvicorn takes the signal over: stop as soon as
        # it has started. (A KeyboardInterrupt raised there could land in a finalizer, where Python prints
        # "Exception ignored" and goes on, and the server would then run on.)
        server.should_exit = True

    previous = signal.signal(signal.SIGINT, stop)
    if not is_loopback(address):
        where = "every network interface of this machine" if is_wildcard(address) else f"the address {address}"
        click.echo(
            f"warning: --host {host!r} listens on {where}: anyone who can reach it on port {bound} (other "
            "machines on the network, maybe the internet) can use the explorer and make it compute, with "
            "no login and no encryption; --host 127.0.0.1 keeps it to this machine",
            err=True,
        )
    shown_host = "127.0.0.1" if is_wildcard(address) else address
    shown = f"[{shown_host}]" if ":" in shown_host else shown_host
    source = f"model {explorer.model_name}" if explorer.has_model else "no model"
    click.echo(
        f"cvaeq explorer: http://{shown}:{bound}/  (world {explorer.world.name}, story {explorer.story.name}, "
        f"{source}; Ctrl-C stops it)"
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
        sock.close()
    click.echo("cvaeq explorer stopped")
