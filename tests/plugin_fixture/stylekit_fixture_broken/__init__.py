"""A deliberately broken stylekit plugin: importing it fails, as with a missing dependency.

The tests check that it is reported by name and that the other plugins still load.
"""

from stylekit_fixture_missing_dependency import styles  # noqa: F401
