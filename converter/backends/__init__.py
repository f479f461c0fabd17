"""Back ends: one module (or package) per target format, each exposing
``save(model, path, *, format, **options) -> None``.

The API stages every write in a temporary location beside the destination and
moves it into place only when the whole conversion succeeded, so back ends
simply write to the path they are given.
"""
