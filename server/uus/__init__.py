"""UUS, the Ubuntu Update Server."""

__version__ = "0.1.0"
