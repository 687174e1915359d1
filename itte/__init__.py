"""itte: Indicateurs Territoriaux de la Transition Écologique, as a stream.

This package is the command, the top layer: it reads the settings once,
starts each service through its bootstrap, and runs the whole pipeline
(``itte up``). Nothing below imports it.
"""

__version__ = "0.1.0"
