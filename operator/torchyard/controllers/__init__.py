"""kopf handlers, one module per kind. Importing this package registers them all."""

from torchyard.controllers import compressionjob, health, modelversion, settings, trainingjob

__all__ = ["compressionjob", "health", "modelversion", "settings", "trainingjob"]
