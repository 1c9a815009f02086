"""One file per model, each registering its factory with ``@register_model``."""
