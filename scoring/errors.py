"""The scoring core's errors, apart from the model code so that catching one (the command line
does, for every command) does not load LightGBM."""


class ModelMismatchError(RuntimeError):
    """The saved model does not fit this code or this data; the message says to retrain."""
