"""One file per model, each registering its names with ``register_model`` (see ``base.py``).

Every public module here is imported by the model registry before its first lookup, so a new
model is a new file and nothing else.
"""
