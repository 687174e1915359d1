"""itte: Indicateurs Territoriaux de la Transition Écologique, as a stream."""

__version__ = "0.1.0"
