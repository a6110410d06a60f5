"""The `torchyard` command: operator, CRD rendering and the local cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torchyard import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]


def _crds(args: argparse.Namespace) -> int:
    from torchyard.api.crd import crd_kustomization, render_all, to_yaml

    out_dir = Path(args.dir)
    stale = []
    for name, crd in render_all().items():
        path = out_dir / name
        text = to_yaml(crd)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    kustomization = out_dir / "kustomization.yaml"
    text = crd_kustomization(sorted(render_all()))
    if args.check:
        if not kustomization.exists() or kustomization.read_text() != text:
            stale.append(str(kustomization))
    else:
        kustomization.write_text(text)
    reference = _reference_path(args)
    if reference is not None:
        from torchyard.api.reference import update_reference

        if not update_reference(reference, check=args.check):
            stale.append(f"{reference} (the field reference)")
    if stale:
        print(
            "stale generated files (the API models changed): "
            + ", ".join(stale)
            + "\nrun `torchyard crds` and commit the result",
            file=sys.stderr,
        )
        return 1
    return 0


def _reference_path(args: argparse.Namespace) -> Path | None:
    """--reference, or docs/reference.md when the CRDs go to their usual place."""
    if args.reference is not None:
        return Path(args.reference) if args.reference else None
    if Path(args.dir).resolve() == (REPO_ROOT / "crds").resolve():
        return REPO_ROOT / "docs" / "reference.md"
    return None


def _operator(args: argparse.Namespace) -> int:
    import kopf

    import torchyard.controllers  # noqa: F401  (registers the handlers)

    if not _configure_factories(args.allowed_factories):
        return 2

    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
    )
    if not args.verbose:
        # A line per API request (httpx2, lightkube's client) and per handler run
        # (kopf.objects) is a cost at scale; warnings and errors still show.
        for name in ("httpx2", "kopf.objects"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.metrics_port:
        from torchyard.metrics import serve

        serve(args.metrics_port)
    namespaces = tuple(args.namespace or ())
    settings = kopf.OperatorSettings()
    settings.peering.lifetime = args.peering_lifetime
    kopf.run(
        loop=_event_loop(args.event_loop),
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
        settings=settings,
        **peering_options(args.peering, args.priority),
    )
    return 0


def _configure_factories(flag: str | None) -> bool:
    """--allowed-factories (else $TORCHYARD_ALLOWED_FACTORIES) checked, and made the
    operator's environment, which admission and the pod builders read; False when it is
    not a valid list (the operator then refuses to start, saying why)."""
    import os

    from torchyard.factories import ALLOWED_FACTORIES_ENV, parse_allowed

    raw = flag if flag is not None else os.environ.get(ALLOWED_FACTORIES_ENV, "")
    try:
        allowed = parse_allowed(raw)
    except ValueError as error:
        print(f"torchyard operator: --allowed-factories: {error}", file=sys.stderr)
        return False
    os.environ[ALLOWED_FACTORIES_ENV] = ",".join(allowed)
    return True


def _event_loop(kind: str) -> Any:
    """uvloop's event loop unless told otherwise: once hundreds of jobs run, the operator
    is bound by the event loop's overhead per watch event and per request
    (docs/performance.md)."""
    if kind == "asyncio":
        return asyncio.new_event_loop()
    import uvloop

    return uvloop.new_event_loop()


def peering_options(name: str | None, priority: int | None) -> dict[str, Any]:
    """kopf.run's peering arguments. Without a name the operator is standalone (one
    replica). With one, replicas of the same name elect by priority: the highest acts,
    the others pause until its peering record goes (at once on a clean exit, after the
    lifetime when it died). Equal priorities would freeze them all (kopf's rule), so
    each replica draws its own unless told."""
    if not name:
        return {"standalone": True}
    return {
        "standalone": False,
        "peering_name": name,
        "priority": priority if priority is not None else secrets.randbelow(1_000_000) + 1,
    }


WORKLOADS = {
    "compress": "torchyard.workloads.compress",
    "train": "torchyard.workloads.train",
    "serve": "torchyard.workloads.serve",
    "client": "torchyard.workloads.serve.client",
    "router": "torchyard.router.app",
}


def _workload(args: argparse.Namespace) -> int:
    """Run a workload inside a pod: compress, train and serve read TORCHYARD_SPEC and
    report through the termination message (torchyard.workloads.report); client is a
    load generator for a served model; router splits a model's requests between its
    versions (torchyard.router)."""
    import importlib

    module = importlib.import_module(WORKLOADS[args.workload])
    return int(module.main(args.workload_args))


def _artifact_push(args: argparse.Namespace) -> int:
    """Publish a local model or dataset at a URI, with its DIGEST; print URI and digest
    (what a ModelVersion's spec.artifact or a ModelSource's digest takes)."""
    import json
    import os

    from torchyard.s3 import ENDPOINT_ENV
    from torchyard.storage import StorageError, push

    if args.endpoint:
        os.environ[ENDPOINT_ENV] = args.endpoint
    try:
        artifact = push(Path(args.source), args.uri, overwrite=args.overwrite)
    except StorageError as error:
        print(f"torchyard artifact push: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"uri": artifact.uri, "digest": artifact.digest, "bytes": artifact.bytes}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchyard", description=__doc__)
    parser.add_argument("--version", action="version", version=f"torchyard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    crds = commands.add_parser("crds", help="render crds/ from the API models")
    crds.add_argument("--dir", default=str(REPO_ROOT / "crds"), help="output directory")
    crds.add_argument(
        "--reference",
        help="field reference to write (default: docs/reference.md, unless --dir is given; "
        "'' for none)",
    )
    crds.add_argument(
        "--check", action="store_true", help="fail if crds/ or the reference is stale"
    )
    crds.set_defaults(func=_crds)

    operator = commands.add_parser("operator", help="run the operator (kopf)")
    operator.add_argument(
        "--namespace",
        action="append",
        help="watch only this namespace (repeatable); default: every namespace. Its RBAC "
        "can then be Roles in those namespaces (manifests/overlays/namespaced)",
    )
    operator.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL (empty to disable)",
    )
    operator.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port"
    )
    operator.add_argument("--verbose", action="store_true", help="debug logging")
    operator.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="log line format"
    )
    operator.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="asyncio event loop implementation (uvloop is faster at scale)",
    )
    operator.add_argument(
        "--peering",
        help="ClusterKopfPeering name: run as one of several replicas (HA); only the "
        "replica with the highest priority acts",
    )
    operator.add_argument(
        "--priority", type=int, help="peering priority (default: a random one per process)"
    )
    operator.add_argument(
        "--peering-lifetime",
        type=int,
        default=30,
        help="seconds after which a replica that stopped renewing its peering record is "
        "taken for dead and another takes over",
    )
    operator.add_argument(
        "--allowed-factories",
        help="model factories, besides torchyard's own, that jobs and serving pods may "
        "import and call (a spec's model.factory, an artifact's base.factory): "
        "comma-separated 'package.module:function' or 'package.module:*' "
        "(default: $TORCHYARD_ALLOWED_FACTORIES, else none)",
    )
    operator.set_defaults(func=_operator)

    artifact = commands.add_parser("artifact", help="model artifacts at a URI")
    artifact_commands = artifact.add_subparsers(dest="artifact_command", required=True)
    artifact_push = artifact_commands.add_parser(
        "push",
        help="publish a local file or directory at a file://, pvc:// or s3:// URI atomically, "
        "with its DIGEST; prints the URI and digest",
    )
    artifact_push.add_argument("source", help="local file or directory")
    artifact_push.add_argument("uri", help="destination, e.g. s3://bucket/models/minilm")
    artifact_push.add_argument(
        "--endpoint",
        help="S3-compatible endpoint URL (else $TORCHYARD_S3_ENDPOINT, else AWS S3); "
        "credentials and region come from the usual AWS_* variables",
    )
    artifact_push.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an artifact already at the URI (published artifacts are immutable "
        "otherwise: ModelVersions pin their digest)",
    )
    artifact_push.set_defaults(func=_artifact_push)

    workload = commands.add_parser("workload", help="run a workload (inside a pod)")
    workload.add_argument("workload", choices=sorted(WORKLOADS))
    workload.add_argument("workload_args", nargs=argparse.REMAINDER)
    workload.set_defaults(func=_workload)

    try:
        from torchyard.local.cli import add_local_commands
    except ModuleNotFoundError as missing:
        # The worker image carries no operator extra (cryptography, kopf): no local
        # cluster there, and every other command still works.
        module = missing.name or ""
        if module.startswith("torchyard"):
            raise
        local = commands.add_parser("local", help="the local cluster (not in this install)")
        local.add_argument("rest", nargs=argparse.REMAINDER)
        local.set_defaults(func=lambda args: _without_operator_extra(module))
    else:
        add_local_commands(commands)
    return parser


def _without_operator_extra(module: str) -> int:
    print(
        f"torchyard local: this install has no operator extra ({module} is missing); "
        "pip install 'torchyard[operator]'",
        file=sys.stderr,
    )
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
