"""The scoring core's errors, apart from the model code so that catching one (the command line
does, for every command) does not load LightGBM."""


class ModelMismatchError(RuntimeError):
    """The saved model does not fit this code or this data; the message says to retrain."""


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used (unreachable, no workers, other versions, lost during a
    run, or Dask not installed); the message says which and how to fix it."""
