"""torchyard's container images, built here with podman (`scripts/images`).

`inputs` says what an image is built from and keys it, `podman` builds the command
lines, `base` makes a Python base from Debian packages, `build` builds each image only
when its inputs changed, and `__main__` is the command.
"""
