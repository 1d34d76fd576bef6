"""Built-in worlds, one package each, registered through the ``register_worlds``
hook like any third-party world (:mod:`cvaeq.default_plugins.worlds`).

Nothing outside a world's own package imports it: the core reads a world's
factors, image and renderer from the :class:`~cvaeq.world.World` object
(``tests/test_import_graph.py`` holds this).
"""
