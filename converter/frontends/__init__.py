"""Front ends: one module (or package) per source framework, each exposing
``load(source, *, format, inputs=None, **options) -> ir.Model``.

``converter.formats.FORMATS`` maps each format to its front end.
"""
