"""The container node's one error type: its message says what to do."""


class NodeError(RuntimeError):
    """The container node could not be set up, started or stopped."""
