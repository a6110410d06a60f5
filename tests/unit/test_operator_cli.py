"""`torchyard operator` flags: standalone by default, peering (HA) on request."""

from __future__ import annotations

from torchyard.cli import build_parser, peering_options


def test_standalone_without_a_peering_name():
    assert peering_options(None, None) == {"standalone": True}


def test_peering_replicas_draw_distinct_priorities_unless_told():
    drawn = {peering_options("torchyard", None)["priority"] for _ in range(20)}
    assert len(drawn) > 1 and min(drawn) > 0
    assert peering_options("torchyard", 7) == {
        "standalone": False,
        "peering_name": "torchyard",
        "priority": 7,
    }


def test_production_flags_parse():
    args = build_parser().parse_args(
        ["operator", "--peering=torchyard", "--peering-lifetime=30", "--log-format=json"]
    )
    assert (args.peering, args.peering_lifetime, args.priority) == ("torchyard", 30, None)


def test_version_names_the_package_version(capsys):
    import pytest

    from torchyard import __version__

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"torchyard {__version__}"


def test_without_the_operator_extra_every_command_but_local_works():
    """The worker image installs no operator extra: `torchyard workload ...` must parse."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "for name in ('cryptography', 'kopf', 'lightkube'):\n"
        "    sys.modules[name] = None\n"
        "from torchyard.cli import build_parser, main\n"
        "assert build_parser().parse_args(['workload', 'compress']).workload == 'compress'\n"
        "sys.exit(main(['local', 'up']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "no operator extra" in done.stderr and "torchyard[operator]" in done.stderr
