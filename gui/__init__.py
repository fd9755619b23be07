"""The Chronoscope preview app (PyQt6): see the speed, compare the retime, render.

It talks to the engine only through ``engine.server.client`` and never loads models.
"""
