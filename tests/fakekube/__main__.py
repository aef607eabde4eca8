"""Run the fake API server on its own: ``python -m tests.fakekube --port 8001 --write-kubeconfig PATH``.

Then ``config-operator run --kubeconfig PATH`` talks to it. Objects can be preloaded from YAML files
with ``--load`` (multi-document), and added later with kubectl-free tools such as curl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from reloader import log as logsetup

from . import resources
from .server import DEFAULT_BOOKMARK_INTERVAL_S, FakeKube
from .store import ApiError

log = logging.getLogger("tests.fakekube")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see --help."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakekube", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8001, help="port to listen on; 0 picks one (default 8001)"
    )
    parser.add_argument(
        "--write-kubeconfig", metavar="PATH", type=Path, help="write a kubeconfig for this server"
    )
    parser.add_argument("--namespace", default="default", help="the kubeconfig's namespace (default default)")
    parser.add_argument(
        "--bookmark-interval",
        type=float,
        default=DEFAULT_BOOKMARK_INTERVAL_S,
        metavar="SECONDS",
        help=f"seconds between watch bookmarks (default {DEFAULT_BOOKMARK_INTERVAL_S})",
    )
    parser.add_argument(
        "--load", metavar="FILE", type=Path, action="append", default=[], help="YAML objects to create"
    )
    parser.add_argument("--log-format", choices=logsetup.FORMATS, default="logfmt")
    parser.add_argument("--log-level", choices=list(logsetup.LEVELS), default="info")
    return parser.parse_args(argv)


def load(kube: FakeKube, paths: Sequence[Path]) -> int:
    """Create (or replace) the objects in these YAML files, plus their namespaces; returns the count.

    Kinds the server does not serve are skipped with a warning.
    """
    count = 0
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict):
                continue
            try:
                resources.by_kind(doc.get("apiVersion", ""), doc.get("kind", ""))
            except KeyError:
                # CRDs, Deployments, RBAC...: a manifest file may hold kinds this server does not serve.
                log.warning(
                    "skipped an object of a kind not served",
                    extra={"file": str(path), "kind": doc.get("kind")},
                )
                continue
            namespace = doc.get("metadata", {}).get("namespace")
            if namespace and kube.find("namespaces", "", namespace) is None:
                kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            kube.apply(doc)
            count += 1
    return count


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FakeKube.running(
        host=args.host, port=args.port, bookmark_interval_s=args.bookmark_interval
    ) as kube:
        for name in ("default", "kube-system", args.namespace):
            if kube.find("namespaces", "", name) is None:
                kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        loaded = load(kube, args.load)
        if args.write_kubeconfig is not None:
            kube.write_kubeconfig(args.write_kubeconfig, namespace=args.namespace)
        log.info(
            "fake API server listening",
            extra={"url": kube.url, "kubeconfig": args.write_kubeconfig or "", "loaded": loaded},
        )
        await stop.wait()
    log.info("fake API server stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    logsetup.setup(args.log_format, args.log_level)
    try:
        asyncio.run(serve(args))
    except (OSError, ApiError, yaml.YAMLError, KeyError) as exc:
        log.error("fake API server failed", extra={"err": str(exc)})
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
