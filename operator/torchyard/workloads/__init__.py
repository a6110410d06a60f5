"""Torch code that runs inside torchyard's pods. Never imports kopf."""
