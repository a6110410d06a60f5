"""What an image is built from, and one key for all of it.

An image's inputs are its Dockerfile, the files of the build context that its COPY
instructions take (less what .dockerignore leaves out, as the builder does), the build
arguments that change its content, and the base image's ID. The input key is a sha256
over all of them: `scripts/images build` skips an image whose label carries the key of
the current inputs, and builds it otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

INPUTS_LABEL = "io.torchyard.inputs"
"""The image label holding the key of the inputs it was built from."""


# -- .dockerignore ------------------------------------------------------------------------


def ignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, in order (comments and blank lines dropped)."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


@functools.cache
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over slash-separated relative paths: `**` any
    number of directories, `*` and `?` within one name. A pattern names a file or a
    directory, and a directory stands for everything under it."""
    pattern = pattern.strip("/")
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + "(?:/.*)?")


def ignored(path: str, patterns: Sequence[str]) -> bool:
    """Whether the builder leaves `path` out of the context: the last pattern that matches
    it decides (`!pattern` takes it back in), as Docker and buildah do."""
    left_out = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _pattern_regex(pattern.lstrip("!")).fullmatch(path):
            left_out = not negated
    return left_out


# -- the Dockerfile -----------------------------------------------------------------------


def _instructions(dockerfile: str) -> Iterator[tuple[str, list[str]]]:
    """(INSTRUCTION, words) for each instruction, continuation lines joined."""
    logical = re.sub(r"\\\n", " ", dockerfile)
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        yield keyword.upper(), shlex.split(rest, comments=False, posix=True)


def copy_sources(dockerfile: str) -> list[str]:
    """The context paths that the Dockerfile's COPY and ADD instructions take (not those
    that copy from another stage or image)."""
    sources: list[str] = []
    for keyword, words in _instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        if any(word.startswith("--from=") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")]
        sources.extend(path.strip("/") or "." for path in paths[:-1])
    return sources


def arg_defaults(dockerfile: str) -> dict[str, str | None]:
    """The Dockerfile's ARG instructions: name -> default (None without one)."""
    defaults: dict[str, str | None] = {}
    for keyword, words in _instructions(dockerfile):
        if keyword == "ARG":
            for word in words:
                name, eq, default = word.partition("=")
                defaults[name] = default if eq else None
    return defaults


# -- the key ------------------------------------------------------------------------------


def context_files(context: Path, sources: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """Every file under the given sources of the context that the builder would send,
    as sorted relative paths. A source that matches nothing is an error, as in a build."""
    found: set[str] = set()
    for source in sources:
        matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else []
        matches = matches or [context / source]
        for match in matches:
            if not match.exists():
                raise FileNotFoundError(f"{match.relative_to(context)}: no such file in {context}")
            files = (
                [match] if match.is_file() else sorted(p for p in match.rglob("*") if p.is_file())
            )
            for path in files:
                relative = path.relative_to(context).as_posix()
                if not ignored(relative, patterns):
                    found.add(relative)
    return sorted(found)


def input_key(
    dockerfile: str,
    files: Mapping[str, bytes],
    build_args: Mapping[str, str],
    base_id: str,
) -> str:
    """sha256 of an image's inputs: the Dockerfile, each context file by path and content,
    the build arguments that shape the image and the base image's ID."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {
                "dockerfile": hashlib.sha256(dockerfile.encode()).hexdigest(),
                "files": {path: hashlib.sha256(data).hexdigest() for path, data in files.items()},
                "args": dict(sorted(build_args.items())),
                "base": base_id,
            },
            sort_keys=True,
        ).encode()
    )
    return digest.hexdigest()


def image_inputs(context: Path, dockerfile: Path) -> tuple[str, dict[str, bytes]]:
    """The Dockerfile's text and the files its build takes from the context, by path."""
    text = dockerfile.read_text()
    ignore_file = context / ".dockerignore"
    patterns = ignore_patterns(ignore_file.read_text()) if ignore_file.exists() else []
    files = context_files(context, copy_sources(text), patterns)
    return text, {path: (context / path).read_bytes() for path in files}
