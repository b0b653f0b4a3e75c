"""The built-in architectures' networks (torch), one module each: imported only when a model is
built, so that listing and describing models needs no torch."""
