"""Slakh-style synthetic multitracks: MIDI (procedural or user files) rendered per instrument
with FluidSynth and written in the Slakh2100 layout."""
