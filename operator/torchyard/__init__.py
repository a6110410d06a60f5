"""torchyard: a Kubernetes operator that takes PyTorch models to production."""

__version__ = "0.1.0"
